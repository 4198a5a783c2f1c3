/*
 * sieve-ext-editheader.c - the "editheader" extension (RFC 5293):
 *   addheader [:last] NAME VALUE
 *   deleteheader [:index N [:last]] [COMPARATOR] [MATCH-TYPE] NAME [VALUE-PATTERNS]
 *
 * The run's header (r->hdr, which every test reads) is edited in place:
 * kept fields still point into the message, added ones into texts the run
 * owns (r->added), already folded and RFC 2047-encoded as they will be
 * stored.  Each keep, fileinto, redirect and vacation taken after an edit
 * carries the header section as it is at that moment (RFC 5293 7:
 * "the current set of header fields"), serialized with the kept fields'
 * bytes exactly as received; reject's notice and the implicit keep after
 * a runtime error use the message as received.
 *
 * Protected (RFC 5293 6, attempts silently ignored): Received and
 * Auto-Submitted are never deleted, Received and Return-Path never added
 * and Return-Path never deleted (trace fields of this delivery).  A new
 * field goes first, after a leading Return-Path; with :last at the end.
 * Bounds: SIEVE_MAX_ADDED bytes added per run and HEADER_MAX_FIELDS fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "buf.h"
#include "mime.h"
#include "sieve-private.h"
#include "xalloc.h"

#define FOLD_AT 78

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > HEADER_MAX_NAME)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 33 || (unsigned char)*s > 126 || *s == ':')
			return false;
	return true;
}

static bool is_name(const struct header_field *f, const char *name)
{
	return f->name_len == strlen(name) && !strncasecmp(f->name, name, f->name_len);
}

static bool plain_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80 || (c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* The longest run of non-blanks in s. */
static size_t longest_word(const char *s, size_t n)
{
	size_t best = 0, cur = 0;
	for (size_t i = 0; i < n; i++) {
		cur = s[i] == ' ' || s[i] == '\t' ? 0 : cur + 1;
		if (cur > best)
			best = cur;
	}
	return best;
}

/* An ASCII value folded before blanks so that lines stay within FOLD_AT
 * where a word allows; col is the length of the line so far. */
static void put_folded(struct buf *out, const char *s, size_t n, size_t col)
{
	size_t i = 0;
	while (i < n) {
		size_t j = i + 1;
		while (j < n && s[j] != ' ' && s[j] != '\t')
			j++;
		/* s[i..j) is a word with its leading blank (except the first) */
		if (i > 0 && col + (j - i) > FOLD_AT) {
			buf_append(out, "\r\n", 2);
			col = 0;
		}
		buf_append(out, s + i, j - i);
		col += j - i;
		i = j;
	}
}

/* s as RFC 2047 "B" encoded words of whole UTF-8 characters, each line
 * within FOLD_AT. */
static void put_words(struct buf *out, const char *s, size_t n, size_t col)
{
	static const char pre[] = "=?UTF-8?B?";
	size_t i = 0;
	bool first = true;
	while (i < n) {
		/* room for the word on this line: " " + pre + text + "?=" */
		size_t room = FOLD_AT > col + 13 ? FOLD_AT - col - 13 : 0;
		size_t take = room / 4 * 3;
		if (take < 4 && !first) {
			buf_append(out, "\r\n", 2);
			col = 0;
			continue;
		}
		if (take < 4)
			take = 4;
		if (take > n - i)
			take = n - i;
		while (i + take < n && take > 1 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		char enc[128];
		long e = base64_encode(s + i, take, enc, sizeof enc);
		if (e < 0)
			return;
		buf_printf(out, "%s%s%.*s?=", first ? "" : " ", pre, (int)e, enc);
		col += (first ? 0 : 1) + sizeof pre - 1 + (size_t)e + 2;
		first = false;
		i += take;
	}
}

/* "NAME: VALUE" as stored (no line end), NUL-terminated, *len bytes. */
static char *make_field(const char *name, const char *value, size_t *len)
{
	struct buf b;
	buf_init(&b, 0);
	size_t nlen = strlen(name), vlen = strlen(value);
	buf_printf(&b, "%s: ", name);
	if (plain_ascii(value, vlen) && longest_word(value, vlen) + nlen + 3 <= HEADER_MAX_LINE)
		put_folded(&b, value, vlen, nlen + 2);
	else
		put_words(&b, value, vlen, nlen + 2);
	return buf_steal(&b, len);
}

static int check_name(const struct sieve_node *n, const char *name, struct sieve_error *err)
{
	if (!name_ok(name))
		return sieve_fail(err, n->line, n->col, "%s: \"%.100s\" is not a valid field name",
				  n->def->name, name);
	return 0;
}

static int check_edit(const struct sieve_node *n, struct sieve_error *err)
{
	return n->has_vars ? 0 : check_name(n, n->pos[0].s[0], err);
}

/* The name is checked at run time when it came from a variable. */
static int runtime_name(struct sieve_run *r, const struct sieve_node *n)
{
	struct sieve_error e;
	if (!r->hdr_ok)
		return sieve_run_fail(r, "%s: the message header cannot be read", n->def->name);
	if (n->has_vars && check_name(n, n->pos[0].s[0], &e) < 0)
		return sieve_run_fail(r, "%s", e.msg);
	return 0;
}

static int run_addheader(struct sieve_run *r, const struct sieve_node *n)
{
	if (runtime_name(r, n) < 0)
		return -1;
	const char *name = n->pos[0].s[0];
	if (!strcasecmp(name, "Received") || !strcasecmp(name, "Return-Path"))
		return 0; /* protected: ignored (RFC 5293 6) */
	size_t len;
	char *text = make_field(name, n->pos[1].s[0], &len);
	if (r->added_bytes + len + 2 > SIEVE_MAX_ADDED) {
		free(text);
		return sieve_run_fail(r, "addheader: more than %d bytes added", SIEVE_MAX_ADDED);
	}
	if (r->hdr.n_fields >= HEADER_MAX_FIELDS) {
		free(text);
		return sieve_run_fail(r, "addheader: more than %d fields", HEADER_MAX_FIELDS);
	}
	r->added_bytes += len + 2;
	r->added.s = xreallocarray(r->added.s, r->added.n + 1, sizeof *r->added.s);
	r->added.s[r->added.n++] = text;
	struct header *h = &r->hdr;
	h->fields = xreallocarray(h->fields, h->n_fields + 1, sizeof *h->fields);
	size_t at = h->n_fields;
	if (!n->last)
		at = h->n_fields > 0 && is_name(&h->fields[0], "Return-Path") ? 1 : 0;
	memmove(&h->fields[at + 1], &h->fields[at], (h->n_fields - at) * sizeof *h->fields);
	size_t nlen = strlen(name);
	h->fields[at] = (struct header_field){text, nlen, text + nlen + 1, len - nlen - 1};
	h->n_fields++;
	r->edited = true;
	return 0;
}

/* Whether field f's value matches the patterns as a header test would
 * (unfolded, decoded; RFC 5293 5). */
static bool value_matches(struct sieve_run *r, const struct sieve_node *n,
			  const struct header_field *f)
{
	char *u = xmalloc(f->value_len + 1);
	size_t un = header_unfold(f->value, f->value_len, u, f->value_len + 1);
	struct buf b;
	buf_init(&b, f->value_len * 4 + 16);
	struct sieve_strlist v = {NULL, 0};
	if (mime_decode_2047(u, un, &b) == 0)
		sieve_strlist_add(&v, b.data != NULL ? b.data : "", b.len);
	else
		sieve_strlist_add(&v, u, un);
	bool m = sieve_match_any(r, n, &v, &n->pos[1]);
	sieve_strlist_free(&v);
	buf_free(&b);
	free(u);
	return m;
}

static int run_deleteheader(struct sieve_run *r, const struct sieve_node *n)
{
	if (runtime_name(r, n) < 0)
		return -1;
	const char *name = n->pos[0].s[0];
	if (!strcasecmp(name, "Received") || !strcasecmp(name, "Auto-Submitted") ||
	    !strcasecmp(name, "Return-Path"))
		return 0; /* protected: ignored (RFC 5293 6) */
	struct header *h = &r->hdr;
	size_t total = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		total += is_name(&h->fields[i], name);
	if (n->index > total)
		return 0;
	/* the occurrence :index names, counted before matching (RFC 5293 5) */
	size_t pick = n->index == 0 ? 0 : n->last ? total - n->index + 1 : n->index;
	size_t seen = 0, out = 0;
	for (size_t i = 0; i < h->n_fields; i++) {
		struct header_field f = h->fields[i];
		bool del = false;
		if (is_name(&f, name)) {
			seen++;
			del = (pick == 0 || seen == pick) &&
			      (n->pos[1].n == 0 || value_matches(r, n, &f));
		}
		if (del)
			r->edited = true;
		else
			h->fields[out++] = f;
	}
	h->n_fields = out;
	return 0;
}

void sieve_edit_snapshot(struct sieve_run *r, struct sieve_action *a)
{
	if (!r->edited)
		return;
	const char *msg = r->in->msg, *end = msg + r->in->msg_len;
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < r->hdr.n_fields; i++) {
		const struct header_field *f = &r->hdr.fields[i];
		const char *stop = f->value + f->value_len;
		buf_append(&b, f->name, (size_t)(stop - f->name));
		uintptr_t at = (uintptr_t)f->name;
		if (at >= (uintptr_t)msg && at < (uintptr_t)end) {
			/* a received field: its own line end */
			size_t k = 0;
			if (stop < end && *stop == '\r')
				k++;
			if (stop + k < end && stop[k] == '\n')
				k++;
			buf_append(&b, stop, k);
		} else {
			buf_append(&b, "\r\n", 2);
		}
	}
	if (r->hdr.has_body_separator) {
		size_t hl = r->hdr.header_len;
		bool crlf = hl >= 2 && msg[hl - 2] == '\r';
		buf_append(&b, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
	}
	free(a->header);
	a->header = buf_steal(&b, &a->header_len);
}

static const struct sieve_def defs[] = {
    {"addheader", false, "ss", 0, false, TAGS_ADDLAST, run_addheader, check_edit},
    {"deleteheader", false, "sL", 0, false, TAGS_MATCH | TAGS_DELINDEX, run_deleteheader,
     check_edit},
};

const struct sieve_ext sieve_ext_editheader = {"editheader", defs, 2,
					       TAGS_ADDLAST | TAGS_DELINDEX, 0};
