/*
 * sieve-ext-vacation.c - the "vacation" extension (RFC 5230) and its
 * "vacation-seconds" parameter (RFC 6131, which implies "vacation").
 *
 * The action records the reply to send: period, subject, from, the
 * user's other addresses, :mime and the tracking handle.  It does not
 * cancel the implicit keep, runs at most once per script and conflicts
 * with reject (RFC 5230 4.7).  The library sends nothing: delivery asks
 * sieve_vacation_allowed whether a reply is due (RFC 5230 4.5, 4.6), keeps
 * the response tracking (4.2) and sends what sieve_vacation_reply builds.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "buf.h"
#include "header.h"
#include "sieve-private.h"
#include "xalloc.h"

static bool has_line_break(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* Whether s is "local@domain" with both parts non-empty and no blanks. */
static bool bare_address(const char *s)
{
	const char *at = strrchr(s, '@');
	return at != NULL && at != s && at[1] != '\0' && strpbrk(s, " \t\r\n<>,;") == NULL;
}

static int check_vacation(const struct sieve_node *n, struct sieve_error *err)
{
	if (n->subject.n > 0 && has_line_break(n->subject.s[0]))
		return sieve_fail(err, n->line, n->col, "vacation :subject has a line break");
	if (n->from.n > 0) {
		const char *f = n->from.s[0];
		struct sieve_strlist parts = {NULL, 0};
		if (!has_line_break(f))
			sieve_address_parts(f, strlen(f), PART_ALL, &parts);
		bool ok = parts.n > 0;
		for (size_t i = 0; i < parts.n; i++)
			ok = ok && bare_address(parts.s[i]);
		sieve_strlist_free(&parts);
		if (!ok)
			return sieve_fail(err, n->line, n->col,
					  "vacation :from \"%.100s\" is not a valid address", f);
	}
	for (size_t i = 0; i < n->addresses.n; i++)
		if (!bare_address(n->addresses.s[i]))
			return sieve_fail(err, n->line, n->col,
					  "vacation :addresses \"%.100s\" is not an address",
					  n->addresses.s[i]);
	if (n->mime) {
		/* RFC 5230 5: no 8bit in the MIME entity's header */
		const char *r = n->pos[0].s[0];
		const char *end = strstr(r, "\n\n");
		const char *end2 = strstr(r, "\r\n\r\n");
		if (end == NULL || (end2 != NULL && end2 < end))
			end = end2;
		size_t hlen = end != NULL ? (size_t)(end - r) : strlen(r);
		for (size_t i = 0; i < hlen; i++)
			if ((unsigned char)r[i] >= 0x80)
				return sieve_fail(err, n->line, n->col,
						  "vacation :mime header has 8-bit characters");
	}
	return 0;
}

/* At compile time; arguments with variables are checked once expanded
 * (run_vacation). */
static int check_vacation_compile(const struct sieve_node *n, struct sieve_error *err)
{
	return n->has_vars ? 0 : check_vacation(n, err);
}

/* FNV-1a, 64 bits, over a counted string (so that "ab","c" and "a","bc"
 * differ, RFC 5230 4.2's implementation note). */
static uint64_t hash_add(uint64_t h, const char *s, bool present)
{
	size_t n = present ? strlen(s) : 0;
	unsigned char head[9];
	head[0] = present ? 1 : 0;
	for (int i = 0; i < 8; i++)
		head[1 + i] = (unsigned char)(n >> (8 * i));
	for (size_t i = 0; i < sizeof head; i++)
		h = (h ^ head[i]) * 1099511628211u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211u;
	return h;
}

static char *default_handle(const struct sieve_node *n)
{
	uint64_t h = 14695981039346656037u;
	h = hash_add(h, n->subject.n ? n->subject.s[0] : "", n->subject.n > 0);
	h = hash_add(h, n->from.n ? n->from.s[0] : "", n->from.n > 0);
	h = hash_add(h, n->mime ? "mime" : "", n->mime);
	h = hash_add(h, n->pos[0].s[0], true);
	struct buf b;
	buf_init(&b, 64);
	buf_printf(&b, "d:%016llx", (unsigned long long)h);
	return buf_steal(&b, NULL);
}

static int run_vacation(struct sieve_run *r, const struct sieve_node *n)
{
	/* values from variables get the compile-time checks now: no line
	 * break in :subject, valid :from and :addresses, an ASCII :mime header */
	struct sieve_error e;
	if (n->has_vars && check_vacation(n, &e) < 0)
		return sieve_run_fail(r, "%s", e.msg);
	struct sieve_action *a = sieve_run_add(r, SIEVE_ACT_VACATION, n->pos[0].s[0], false);
	if (a == NULL)
		return -1;
	if (!n->has_period)
		a->seconds = SIEVE_VACATION_DEFAULT;
	else if (n->period_seconds)
		a->seconds = n->period;
	else
		a->seconds = n->period > UINT64_MAX / SIEVE_VACATION_DAY
				 ? UINT64_MAX
				 : n->period * SIEVE_VACATION_DAY;
	a->subject = n->subject.n > 0 ? xstrdup(n->subject.s[0]) : NULL;
	a->from = n->from.n > 0 ? xstrdup(n->from.s[0]) : NULL;
	a->mime = n->mime;
	if (n->addresses.n > 0) {
		a->addresses = xcalloc(n->addresses.n, sizeof *a->addresses);
		for (size_t i = 0; i < n->addresses.n; i++)
			a->addresses[i] = xstrdup(n->addresses.s[i]);
		a->n_addresses = n->addresses.n;
	}
	if (n->handle.n > 0) {
		struct buf b;
		buf_init(&b, r->script->lim.max_string + 8);
		buf_puts(&b, "h:");
		buf_puts(&b, n->handle.s[0]);
		a->handle = buf_steal(&b, NULL);
	} else {
		a->handle = default_handle(n);
	}
	return 0;
}

/* ------------------------------------------------------- at delivery */

/* The unfolded value of the first field named name, malloc'ed, or NULL. */
static char *field(const struct header *h, const char *name)
{
	const struct header_field *f = header_find(h, name);
	if (f == NULL)
		return NULL;
	char *v = xmalloc(f->value_len + 1);
	header_unfold(f->value, f->value_len, v, f->value_len + 1);
	return v;
}

/* The first word of a structured value (before blanks, ';' or '('). */
static bool first_word_is(const char *v, const char *word)
{
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strcspn(v, " \t;(");
	return strlen(word) == n && !strncasecmp(v, word, n);
}

static bool automated_sender(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = at != NULL ? (size_t)(at - addr) : strlen(addr);
	static const char *const names[] = {"mailer-daemon", "listserv", "majordomo"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i]) == n && !strncasecmp(addr, names[i], n))
			return true;
	return (n >= 6 && !strncasecmp(addr, "owner-", 6)) ||
	       (n >= 8 && !strncasecmp(addr + n - 8, "-request", 8));
}

static bool is_mine(const char *addr, const struct sieve_action *a, const char *const *mine,
		    size_t n_mine)
{
	for (size_t i = 0; i < n_mine; i++)
		if (mine[i] != NULL && mine[i][0] != '\0' && !strcasecmp(addr, mine[i]))
			return true;
	for (size_t i = 0; i < a->n_addresses; i++)
		if (!strcasecmp(addr, a->addresses[i]))
			return true;
	return false;
}

bool sieve_vacation_allowed(const struct sieve_input *in, const struct sieve_action *a,
			    const char *const *mine, size_t n_mine, const char **why)
{
	const char *from = in->env_from != NULL ? in->env_from : "";
	if (from[0] == '\0')
		return *why = "null sender", false;
	if (automated_sender(from))
		return *why = "automated sender", false;
	if (is_mine(from, a, mine, n_mine))
		return *why = "sender is the user", false;
	struct header h;
	if (header_parse(in->msg, in->msg_len, &h) != HEADER_OK)
		return *why = "message header unreadable", false;
	static const char *const lists[] = {"List-Id",          "List-Help", "List-Subscribe",
					    "List-Unsubscribe", "List-Post", "List-Owner",
					    "List-Archive"};
	bool ok = true;
	for (size_t i = 0; ok && i < sizeof lists / sizeof lists[0]; i++)
		if (header_find(&h, lists[i]) != NULL)
			ok = false, *why = "mailing list";
	char *v;
	if (ok && (v = field(&h, "Precedence")) != NULL) {
		if (first_word_is(v, "bulk") || first_word_is(v, "list") ||
		    first_word_is(v, "junk"))
			ok = false, *why = "precedence bulk, list or junk";
		free(v);
	}
	if (ok && (v = field(&h, "Auto-Submitted")) != NULL) {
		if (!first_word_is(v, "no"))
			ok = false, *why = "auto-submitted";
		free(v);
	}
	static const char *const to[] = {"To", "Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc"};
	bool addressed = false;
	for (size_t i = 0; ok && !addressed && i < h.n_fields; i++) {
		const struct header_field *f = &h.fields[i];
		size_t k;
		for (k = 0; k < sizeof to / sizeof to[0]; k++)
			if (f->name_len == strlen(to[k]) &&
			    !strncasecmp(f->name, to[k], f->name_len))
				break;
		if (k == sizeof to / sizeof to[0])
			continue;
		char *u = xmalloc(f->value_len + 1);
		size_t un = header_unfold(f->value, f->value_len, u, f->value_len + 1);
		struct sieve_strlist parts = {NULL, 0};
		sieve_address_parts(u, un, PART_ALL, &parts);
		for (size_t j = 0; j < parts.n && !addressed; j++)
			addressed = is_mine(parts.s[j], a, mine, n_mine);
		sieve_strlist_free(&parts);
		free(u);
	}
	if (ok && !addressed)
		ok = false, *why = "not addressed to the user";
	header_free(&h);
	return ok;
}

static bool ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* s as RFC 2047 "B" encoded words of at most 75 characters, folded, each
 * holding whole UTF-8 characters. */
static void put_encoded(struct buf *out, const char *s)
{
	size_t n = strlen(s), i = 0;
	bool first = true;
	while (i < n) {
		size_t take = n - i < 45 ? n - i : 45;
		while (i + take < n && take > 1 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		char enc[64];
		long e = base64_encode(s + i, take, enc, sizeof enc);
		if (e < 0)
			return;
		buf_printf(out, "%s=?UTF-8?B?%.*s?=", first ? "" : "\r\n ", (int)e, enc);
		first = false;
		i += take;
	}
}

/* Appends text with every line ending made CRLF; -1 if a line is longer
 * than 998 bytes. */
static int put_crlf(struct buf *out, const char *s, bool end_with_crlf)
{
	size_t line = 0;
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n') {
			if (*s == '\r' && s[1] == '\n')
				s++;
			buf_append(out, "\r\n", 2);
			line = 0;
			continue;
		}
		if (++line > 998)
			return -1;
		buf_putc(out, *s);
	}
	if (end_with_crlf && line > 0)
		buf_append(out, "\r\n", 2);
	return 0;
}

/* A field value of ours stays on one line of at most 998 bytes: v cut at
 * a UTF-8 boundary if needed. */
static void put_bounded(struct buf *out, const char *v, size_t room)
{
	size_t n = strlen(v);
	if (n > room) {
		n = room;
		while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
			n--;
	}
	buf_append(out, v, n);
}

int sieve_vacation_reply(const struct sieve_input *in, const struct sieve_action *a,
			 const char *from_default, const char *date, const char *msgid,
			 struct buf *out, const char **why)
{
	struct header h;
	bool hdr_ok = header_parse(in->msg, in->msg_len, &h) == HEADER_OK;
	char *subject = hdr_ok ? field(&h, "Subject") : NULL;
	char *orig_id = hdr_ok ? field(&h, "Message-ID") : NULL;
	char *refs = hdr_ok ? field(&h, "References") : NULL;
	if (hdr_ok)
		header_free(&h);
	buf_printf(out, "From: %s\r\nTo: <%s>\r\nSubject: ", a->from ? a->from : from_default,
		   in->env_from);
	if (a->subject != NULL && ascii(a->subject))
		put_bounded(out, a->subject, 900);
	else if (a->subject != NULL)
		put_encoded(out, a->subject);
	else if (subject != NULL && subject[0] != '\0') {
		buf_puts(out, "Auto: ");
		put_bounded(out, subject, 900);
	} else
		buf_puts(out, "Automated reply");
	buf_printf(out, "\r\nDate: %s\r\nMessage-ID: <%s>\r\n", date, msgid);
	/* In-Reply-To and References (RFC 5230 5.8, RFC 5322 3.6.4) when the
	 * original has a usable Message-ID. */
	if (orig_id != NULL && orig_id[0] == '<' && strlen(orig_id) < 500 &&
	    strchr(orig_id, '>') == orig_id + strlen(orig_id) - 1) {
		buf_printf(out, "In-Reply-To: %s\r\nReferences: ", orig_id);
		if (refs != NULL && refs[0] != '\0' && strlen(refs) + strlen(orig_id) < 900)
			buf_printf(out, "%s ", refs);
		buf_printf(out, "%s\r\n", orig_id);
	}
	buf_puts(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	int rc = 0;
	if (a->mime) {
		bool sep = strstr(a->arg, "\n\n") != NULL || strstr(a->arg, "\r\n\r\n") != NULL ||
			   a->arg[0] == '\n' || a->arg[0] == '\r';
		rc = put_crlf(out, a->arg, true);
		if (rc == 0 && !sep)
			buf_append(out, "\r\n", 2);
	} else {
		buf_printf(out,
			   "Content-Type: text/plain; charset=utf-8\r\n"
			   "Content-Transfer-Encoding: %s\r\n\r\n",
			   ascii(a->arg) ? "7bit" : "8bit");
		rc = put_crlf(out, a->arg, true);
	}
	free(subject);
	free(orig_id);
	free(refs);
	if (rc < 0)
		return *why = "a line of the reason is longer than 998 bytes", -1;
	return 0;
}

static const struct sieve_def defs[] = {
    {"vacation", false, "s", 0, false, TAGS_VACATION | TAGS_VACSEC, run_vacation,
     check_vacation_compile},
};

const struct sieve_ext sieve_ext_vacation = {"vacation", defs, 1, TAGS_VACATION, 0};
const struct sieve_ext sieve_ext_vacation_seconds = {"vacation-seconds", defs, 1,
						     TAGS_VACATION | TAGS_VACSEC, 0};
