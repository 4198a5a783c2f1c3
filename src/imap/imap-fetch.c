/*
 * imap-fetch.c - FETCH and UID FETCH (RFC 9051 6.4.5, RFC 3501 for the
 * RFC822 items, RFC 3516 BINARY).  Protocol layer (imap-private.h); the
 * MIME work is src/mail/mime.h.
 *
 * A FETCH is parsed into a list of items first (a bad item means BAD and
 * nothing is sent).  Messages are then taken in chunks: for each chunk the
 * rows come from the store, \Seen is set in one transaction for the
 * messages that a non-PEEK body item reads (so the FLAGS in the same
 * response already show it), and each message's file is read and parsed
 * only if an item needs it.  ENVELOPE, BODY and BODYSTRUCTURE come from
 * the store's cache; what is missing is computed and cached at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imap-private.h"
#include "log.h"
#include "mime.h"
#include "preview.h"
#include "strutil.h"
#include "xalloc.h"

#define FETCH_CHUNK 128
/* Characters of a FETCH PREVIEW: RFC 8970 3.3 says SHOULD 200 (256 at
 * most). */
#define IMAP_PREVIEW_CHARS 200
#define MAX_ITEMS 64
#define MAX_PATH_DEPTH 32
#define MAX_FIELDS 64
/* A whole message at least this big is sent from its file (sendfile)
 * rather than read into memory.  Smaller ones are copied, so a FETCH of
 * many small messages does not hold a descriptor per message. */
#define FETCH_FILE_MIN (256 * 1024)
/* Cache rows written in one transaction. */
#define CACHE_BATCH 64

enum item_kind {
	IT_UID,
	IT_FLAGS,
	IT_INTERNALDATE,
	IT_SIZE,
	IT_ENVELOPE,
	IT_BODY, /* BODY (no section): non-extensible BODYSTRUCTURE */
	IT_BODYSTRUCTURE,
	IT_SECTION, /* BODY[...] / BODY.PEEK[...] / RFC822 / RFC822.HEADER / .TEXT */
	IT_BINARY,  /* BINARY[...] / BINARY.PEEK[...] */
	IT_BINARY_SIZE,
	IT_MODSEQ,  /* RFC 7162 3.1.4.2 */
	IT_EMAILID, /* RFC 8474 5.3 */
	IT_THREADID,
	IT_PREVIEW, /* RFC 8970 */
};

struct item {
	enum item_kind kind;
	bool peek;
	enum mime_sect sect;
	bool fields, fields_not;
	unsigned path[MAX_PATH_DEPTH];
	size_t n_path;
	bool partial;
	uint64_t start, count;
	const char *name; /* response name: "RFC822", or NULL for BODY[...] */
	char *sect_text;  /* text between [ and ] as sent (owned) */
	size_t sect_len;
	char *field_names[MAX_FIELDS];
	size_t n_fields;
};

/* A FETCH in progress: it runs while the client keeps up with the output
 * and resumes from the write callback (imap_fetch_more), so memory stays
 * bounded whatever the number and size of the messages. */
struct imap_fetch {
	struct imap_session *s;
	bool uid;
	char tag[IMAP_TAG_MAX + 1];
	uint32_t *uids; /* the messages, ascending */
	size_t n, pos;  /* pos: first uid of the next chunk */
	struct store_message rows[FETCH_CHUNK];
	bool seen_now[FETCH_CHUNK];
	size_t n_rows, k; /* rows of the current chunk; next to send */
	int failed;       /* 1 store error, 2 unknown CTE */
	char err[256];
	struct item items[MAX_ITEMS];
	size_t n_items;
	bool need_file, need_cache, set_seen, want_flags;
	bool expunged;         /* some messages were gone */
	uint64_t changedsince; /* CHANGEDSINCE (RFC 7162 3.1.4.1); 0: none */
	bool want_modseq;      /* MODSEQ item or CHANGEDSINCE */
	bool vanished;         /* VANISHED modifier (RFC 7162 3.2.6) */
	char ok_text[48];      /* if set, the tagged OK's text (SELECT QRESYNC) */
	bool bad_cte;
	/* cache entries to write */
	struct store_imap_cache cache[CACHE_BATCH];
	char cache_ids[CACHE_BATCH][25];
	char *cache_bufs[CACHE_BATCH][3];
	size_t n_cache;
};

static void items_free(struct imap_fetch *f)
{
	for (size_t i = 0; i < f->n_items; i++) {
		for (size_t k = 0; k < f->items[i].n_fields; k++)
			free(f->items[i].field_names[k]);
		free(f->items[i].sect_text);
	}
}

/* ------------------------------------------------------------ parsing */

/* Parses the section text p[0..n) (between the brackets) into it. */
static int parse_section(struct item *it, const char *p, size_t n, bool binary)
{
	size_t i = 0;
	it->n_path = 0;
	it->sect = MIME_SECT_BODY;
	while (i < n && p[i] >= '0' && p[i] <= '9') {
		size_t d = i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		uint64_t v;
		if (strutil_parse_u64(p + d, i - d, UINT32_MAX, &v) < 0 || v == 0 ||
		    it->n_path >= MAX_PATH_DEPTH)
			return -1;
		it->path[it->n_path++] = (unsigned)v;
		if (i < n && p[i] == '.') {
			i++;
			if (i >= n)
				return -1;
			continue;
		}
		break;
	}
	if (i == n)
		return 0;
	if (binary)
		return -1;
	const char *rest = p + i;
	size_t rl = n - i;
	if (strutil_eq_ci(rest, rl, "HEADER")) {
		it->sect = MIME_SECT_HEADER;
		return 0;
	}
	if (strutil_eq_ci(rest, rl, "TEXT")) {
		it->sect = MIME_SECT_TEXT;
		return 0;
	}
	if (strutil_eq_ci(rest, rl, "MIME")) {
		if (it->n_path == 0)
			return -1;
		it->sect = MIME_SECT_MIME;
		return 0;
	}
	size_t kl;
	if (strutil_prefix_ci(rest, rl, "HEADER.FIELDS.NOT ")) {
		it->fields_not = true;
		kl = strlen("HEADER.FIELDS.NOT ");
	} else if (strutil_prefix_ci(rest, rl, "HEADER.FIELDS ")) {
		kl = strlen("HEADER.FIELDS ");
	} else {
		return -1;
	}
	it->fields = true;
	it->sect = MIME_SECT_HEADER;
	rest += kl;
	rl -= kl;
	if (rl < 2 || rest[0] != '(' || rest[rl - 1] != ')')
		return -1;
	size_t j = 1;
	while (j < rl - 1) {
		if (rest[j] == ' ') {
			j++;
			continue;
		}
		struct buf nb = BUF_INIT;
		if (rest[j] == '"') {
			j++;
			while (j < rl - 1 && rest[j] != '"') {
				if (rest[j] == '\\' && j + 1 < rl - 1)
					j++;
				buf_putc(&nb, rest[j]);
				j++;
			}
			if (j >= rl - 1) {
				buf_free(&nb);
				return -1;
			}
			j++;
		} else {
			while (j < rl - 1 && rest[j] != ' ') {
				unsigned char c = (unsigned char)rest[j];
				if (c <= 0x20 || c >= 0x7f || c == ':' || c == '(' || c == ')') {
					buf_free(&nb);
					return -1;
				}
				buf_putc(&nb, rest[j]);
				j++;
			}
		}
		if (nb.len == 0 || it->n_fields >= MAX_FIELDS) {
			buf_free(&nb);
			return -1;
		}
		it->field_names[it->n_fields++] = buf_steal(&nb, NULL);
	}
	return it->n_fields > 0 ? 0 : -1;
}

/* Parses "<start.count>" at p[0..n). */
static int parse_partial(struct item *it, const char *p, size_t n)
{
	if (n < 5 || p[0] != '<' || p[n - 1] != '>')
		return -1;
	const char *dot = memchr(p, '.', n);
	if (dot == NULL)
		return -1;
	size_t a = (size_t)(dot - p) - 1;
	if (strutil_parse_u64(p + 1, a, UINT32_MAX, &it->start) < 0 ||
	    strutil_parse_u64(dot + 1, n - a - 3, UINT32_MAX, &it->count) < 0 || it->count == 0)
		return -1;
	it->partial = true;
	return 0;
}

static int add_simple(struct imap_fetch *f, enum item_kind k)
{
	if (f->n_items >= MAX_ITEMS)
		return -1;
	struct item *it = &f->items[f->n_items++];
	memset(it, 0, sizeof *it);
	it->kind = k;
	if (k == IT_FLAGS)
		f->want_flags = true;
	if (k == IT_MODSEQ)
		f->want_modseq = true;
	return 0;
}

static int parse_item(struct imap_fetch *f, const struct imap_tok *t)
{
	if (t->type != IMAP_TOK_ATOM)
		return -1;
	const char *p = t->p;
	size_t n = t->len;
	static const struct {
		const char *name;
		enum item_kind kind;
	} simple[] = {
	    {"UID", IT_UID},
	    {"FLAGS", IT_FLAGS},
	    {"INTERNALDATE", IT_INTERNALDATE},
	    {"RFC822.SIZE", IT_SIZE},
	    {"ENVELOPE", IT_ENVELOPE},
	    {"BODY", IT_BODY},
	    {"BODYSTRUCTURE", IT_BODYSTRUCTURE},
	    {"MODSEQ", IT_MODSEQ},
	    {"EMAILID", IT_EMAILID},
	    {"THREADID", IT_THREADID},
	    {"PREVIEW", IT_PREVIEW},
	};
	for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
		if (strutil_eq_ci(p, n, simple[i].name))
			return add_simple(f, simple[i].kind);
	static const struct {
		const char *name;
		enum mime_sect sect;
		bool peek;
	} rfc822[] = {
	    {"RFC822", MIME_SECT_BODY, false},
	    {"RFC822.HEADER", MIME_SECT_HEADER, true},
	    {"RFC822.TEXT", MIME_SECT_TEXT, false},
	};
	for (size_t i = 0; i < sizeof rfc822 / sizeof rfc822[0]; i++)
		if (strutil_eq_ci(p, n, rfc822[i].name)) {
			if (add_simple(f, IT_SECTION) < 0)
				return -1;
			struct item *it = &f->items[f->n_items - 1];
			it->sect = rfc822[i].sect;
			it->peek = rfc822[i].peek;
			it->name = rfc822[i].name;
			return 0;
		}
	enum item_kind kind;
	bool peek = false;
	size_t kl;
	if (strutil_prefix_ci(p, n, "BODY.PEEK[")) {
		kind = IT_SECTION;
		peek = true;
		kl = 10;
	} else if (strutil_prefix_ci(p, n, "BODY[")) {
		kind = IT_SECTION;
		kl = 5;
	} else if (strutil_prefix_ci(p, n, "BINARY.PEEK[")) {
		kind = IT_BINARY;
		peek = true;
		kl = 12;
	} else if (strutil_prefix_ci(p, n, "BINARY.SIZE[")) {
		kind = IT_BINARY_SIZE;
		peek = true;
		kl = 12;
	} else if (strutil_prefix_ci(p, n, "BINARY[")) {
		kind = IT_BINARY;
		kl = 7;
	} else {
		return -1;
	}
	const char *close = memchr(p + kl, ']', n - kl);
	if (close == NULL)
		return -1;
	if (add_simple(f, kind) < 0)
		return -1;
	struct item *it = &f->items[f->n_items - 1];
	it->peek = peek;
	it->sect_len = (size_t)(close - (p + kl));
	it->sect_text = xmemdup0(p + kl, it->sect_len);
	if (parse_section(it, it->sect_text, it->sect_len, kind != IT_SECTION) < 0)
		return -1;
	size_t rest = n - (size_t)(close + 1 - p);
	if (rest > 0) {
		if (kind == IT_BINARY_SIZE || parse_partial(it, close + 1, rest) < 0)
			return -1;
	}
	return 0;
}

/* The preview-mod list "(LAZY ...)" (RFC 8970 6) at a[0..n): its
 * token count, or 0 when a does not start with one. */
static size_t preview_mods(const struct imap_tok *a, size_t n)
{
	if (n < 3 || a[0].type != IMAP_TOK_LPAREN)
		return 0;
	size_t i = 1;
	while (i < n && a[i].type == IMAP_TOK_ATOM && imap_tok_eq(&a[i], "LAZY"))
		i++;
	return i > 1 && i < n && a[i].type == IMAP_TOK_RPAREN ? i + 1 : 0;
}

/* The item at a[*i] and, after PREVIEW, its modifiers; *i moves past. */
static int parse_item_at(struct imap_fetch *f, const struct imap_tok *a, size_t n, size_t *i)
{
	if (parse_item(f, &a[*i]) < 0)
		return -1;
	(*i)++;
	/* LAZY lets the server say NIL rather than wait (RFC 8970 4.1): a
	 * preview here is always made, so it changes nothing */
	if (f->items[f->n_items - 1].kind == IT_PREVIEW)
		*i += preview_mods(a + *i, n - *i);
	return 0;
}

static int parse_items(struct imap_fetch *f, const struct imap_tok *a, size_t n)
{
	if (n >= 1 && a[0].type == IMAP_TOK_ATOM && imap_tok_eq(&a[0], "PREVIEW")) {
		size_t i = 0;
		return parse_item_at(f, a, n, &i) == 0 && i == n ? 0 : -1;
	}
	if (n == 1 && a[0].type == IMAP_TOK_ATOM) {
		if (imap_tok_eq(&a[0], "ALL") || imap_tok_eq(&a[0], "FAST") ||
		    imap_tok_eq(&a[0], "FULL")) {
			add_simple(f, IT_FLAGS);
			add_simple(f, IT_INTERNALDATE);
			add_simple(f, IT_SIZE);
			if (!imap_tok_eq(&a[0], "FAST"))
				add_simple(f, IT_ENVELOPE);
			if (imap_tok_eq(&a[0], "FULL"))
				add_simple(f, IT_BODY);
			return 0;
		}
		return parse_item(f, &a[0]);
	}
	if (n < 3 || a[0].type != IMAP_TOK_LPAREN || a[n - 1].type != IMAP_TOK_RPAREN)
		return -1;
	for (size_t i = 1; i + 1 < n;)
		if (parse_item_at(f, a, n - 1, &i) < 0)
			return -1;
	return 0;
}

/* Nothing, or "(" modifiers ")": CHANGEDSINCE n (RFC 7162 3.1.4.1) and
 * VANISHED (3.2.6), each at most once, in any order. */
static int parse_modifiers(struct imap_fetch *f, const struct imap_tok *a, size_t n)
{
	if (n == 0)
		return 0;
	if (n < 3 || a[0].type != IMAP_TOK_LPAREN || a[n - 1].type != IMAP_TOK_RPAREN)
		return -1;
	for (size_t i = 1; i + 1 < n; i++) {
		if (a[i].type != IMAP_TOK_ATOM)
			return -1;
		if (imap_tok_eq(&a[i], "CHANGEDSINCE") && f->changedsince == 0 && i + 2 < n &&
		    imap_modseq_arg(&a[i + 1], false, &f->changedsince) == 0) {
			i++;
			f->want_modseq = true; /* implied */
		} else if (imap_tok_eq(&a[i], "VANISHED") && !f->vanished) {
			f->vanished = true;
		} else {
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ output */

struct msgdata {
	const struct store_message *m;
	char *file; /* contents, or NULL */
	size_t file_len;
	struct mime_tree *tree;
	struct buf cached[3]; /* ENVELOPE, BODY, BODYSTRUCTURE */
	bool have_cached;
};

static int open_message(struct imap_session *s, const struct store_message *m)
{
	char path[PATH_MAX];
	if (store_message_path(s->sel->acct, m->file_id, path, sizeof path) < 0)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC);
}

static int load_file(struct imap_session *s, struct msgdata *d)
{
	if (d->file)
		return 0;
	int fd = open_message(s, d->m);
	if (fd < 0)
		return -1;
	size_t want = (size_t)d->m->size;
	d->file = xmalloc(want + 1);
	size_t got = 0;
	while (got < want) {
		ssize_t r = read(fd, d->file + got, want - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	d->file_len = got;
	d->file[got] = '\0';
	return 0;
}

static struct mime_tree *tree_of(struct imap_session *s, struct msgdata *d)
{
	if (d->tree == NULL && load_file(s, d) == 0)
		d->tree = mime_parse(d->file, d->file_len);
	return d->tree;
}

static void flush_cache(struct imap_fetch *f)
{
	if (f->n_cache == 0)
		return;
	char err[256];
	if (store_imap_cache_put(f->s->sel->acct, f->cache, f->n_cache, err, sizeof err) < 0)
		log_warn("imap session=%s action=cache_put error=\"%s\"", f->s->id, err);
	for (size_t i = 0; i < f->n_cache; i++)
		for (int k = 0; k < 3; k++)
			free(f->cache_bufs[i][k]);
	f->n_cache = 0;
}

/* The cached ENVELOPE/BODY/BODYSTRUCTURE of a message, computing and
 * queueing them for the cache when missing. */
static int get_cached(struct imap_fetch *f, struct msgdata *d)
{
	if (d->have_cached)
		return 0;
	struct imap_session *s = f->s;
	for (int k = 0; k < 3; k++)
		buf_init(&d->cached[k], 0);
	bool hit = true;
	for (int k = 0; k < 3 && hit; k++)
		hit = store_imap_cache_get(s->sel->acct, d->m->file_id, k, &d->cached[k]) == 1;
	if (!hit) {
		for (int k = 0; k < 3; k++)
			buf_reset(&d->cached[k]);
		struct mime_tree *t = tree_of(s, d);
		if (t == NULL)
			return -1;
		if (mime_imap_envelope(t, &d->cached[0]) < 0 ||
		    mime_imap_bodystructure(t, false, &d->cached[1]) < 0 ||
		    mime_imap_bodystructure(t, true, &d->cached[2]) < 0)
			return -1;
		if (f->n_cache == CACHE_BATCH)
			flush_cache(f);
		size_t i = f->n_cache++;
		memcpy(f->cache_ids[i], d->m->file_id, 25);
		struct store_imap_cache *e = &f->cache[i];
		e->file_id = f->cache_ids[i];
		for (int k = 0; k < 3; k++)
			f->cache_bufs[i][k] =
			    xmemdup0(d->cached[k].data ? d->cached[k].data : "", d->cached[k].len);
		e->envelope = f->cache_bufs[i][0];
		e->envelope_len = d->cached[0].len;
		e->body = f->cache_bufs[i][1];
		e->body_len = d->cached[1].len;
		e->bodystructure = f->cache_bufs[i][2];
		e->bodystructure_len = d->cached[2].len;
	}
	d->have_cached = true;
	return 0;
}

/* Appends a literal for p[0..n) (literal8 "~{n}" if binary and a NUL is in
 * it), applying the partial range of it.  An ordinary literal cannot carry
 * NUL (RFC 9051 4.3): outside BINARY each NUL is sent as 0x80, as other
 * servers do, so sizes and offsets stay those of the stored message. */
static void put_literal(struct buf *b, const struct item *it, const char *p, size_t n, bool binary)
{
	if (it->partial) {
		if (it->start >= n) {
			n = 0;
		} else {
			p += it->start;
			n -= (size_t)it->start;
			if (n > it->count)
				n = (size_t)it->count;
		}
	}
	bool l8 = binary && n > 0 && memchr(p, '\0', n) != NULL;
	buf_printf(b, "%s{%zu}\r\n", l8 ? "~" : "", n);
	size_t at = b->len;
	if (buf_append(b, p, n) < 0 || binary)
		return;
	char *q = b->data + at;
	size_t left = n;
	char *z;
	while (left > 0 && (z = memchr(q, '\0', left)) != NULL) {
		*z = (char)0x80;
		left -= (size_t)(z - q) + 1;
		q = z + 1;
	}
}

/* True if the file fd holds a NUL byte (or cannot be read whole). */
static bool file_has_nul(int fd, off_t size)
{
	char chunk[65536];
	off_t at = 0;
	while (at < size) {
		ssize_t r = pread(fd, chunk, sizeof chunk, at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return true;
		if (memchr(chunk, '\0', (size_t)r) != NULL)
			return true;
		at += r;
	}
	return false;
}

static void put_item_name(struct buf *b, const struct item *it, const char *base)
{
	buf_printf(b, "%s[%.*s]", base, (int)it->sect_len, it->sect_text);
	if (it->partial)
		buf_printf(b, "<%llu>", (unsigned long long)it->start);
}

/* Writes one message's FETCH response into b.  -1 on a file problem (the
 * message is then skipped), -2 on an unknown CTE. */
static int fetch_one(struct imap_fetch *f, struct msgdata *d, uint32_t seq, bool seen_now,
		     struct buf *b)
{
	struct imap_session *s = f->s;
	const struct store_message *m = d->m;
	if (f->want_flags || seen_now) /* FLAGS shown: announce new keywords first */
		imap_keywords_announce(s, m->keywords, b);
	size_t start = b->len;
	bool committed = false; /* part of the response is sent already */
	buf_printf(b, "* %lu FETCH (", (unsigned long)seq);
	bool first = true;
	bool flags_done = false;
	/* MODSEQ when asked for, and once CONDSTORE is on wherever FLAGS are
	 * shown (RFC 7162 3.1: the client keeps flags and modseqs together) */
	bool modseq_done = !(f->want_modseq || (s->condstore && (f->want_flags || seen_now)));
#define SEP()                                                                                      \
	do {                                                                                       \
		if (!first)                                                                        \
			buf_putc(b, ' ');                                                          \
		first = false;                                                                     \
	} while (0)
	if (f->uid) {
		SEP();
		buf_printf(b, "UID %lu", (unsigned long)m->uid);
	}
	for (size_t i = 0; i < f->n_items; i++) {
		const struct item *it = &f->items[i];
		switch (it->kind) {
		case IT_UID:
			if (f->uid)
				break;
			SEP();
			buf_printf(b, "UID %lu", (unsigned long)m->uid);
			break;
		case IT_MODSEQ:
			break; /* at the end, once */
		case IT_FLAGS:
			if (flags_done)
				break;
			SEP();
			buf_puts(b, "FLAGS ");
			imap_flags_out(b, m->flags, imap_recent_has(s, m->uid), m->keywords);
			flags_done = true;
			break;
		case IT_INTERNALDATE: {
			char date[32];
			imap_format_datetime((time_t)m->internaldate, date);
			SEP();
			buf_printf(b, "INTERNALDATE \"%s\"", date);
			break;
		}
		case IT_SIZE:
			SEP();
			buf_printf(b, "RFC822.SIZE %llu", (unsigned long long)m->size);
			break;
		case IT_EMAILID: /* the JMAP Email id: the message file's */
			SEP();
			buf_printf(b, "EMAILID (E%s)", m->file_id);
			break;
		case IT_THREADID: /* the JMAP Thread id (given before the FETCH) */
			SEP();
			if (m->thread_id > 0)
				buf_printf(b, "THREADID (T%lld)", (long long)m->thread_id);
			else
				buf_puts(b, "THREADID NIL");
			break;
		case IT_PREVIEW: { /* "" when there is no text (RFC 8970 3.2) */
			struct mime_tree *t = tree_of(s, d);
			struct buf pv = BUF_INIT;
			if (t == NULL || preview_message(t, IMAP_PREVIEW_CHARS, &pv) < 0) {
				buf_free(&pv);
				goto fail;
			}
			SEP();
			buf_puts(b, "PREVIEW ");
			mime_imap_string(b, pv.data != NULL ? pv.data : "", pv.len);
			buf_free(&pv);
			break;
		}
		case IT_ENVELOPE:
		case IT_BODY:
		case IT_BODYSTRUCTURE: {
			if (get_cached(f, d) < 0)
				goto fail;
			int k = it->kind == IT_ENVELOPE ? 0 : it->kind == IT_BODY ? 1 : 2;
			SEP();
			buf_puts(b, k == 0 ? "ENVELOPE " : k == 1 ? "BODY " : "BODYSTRUCTURE ");
			buf_append(b, d->cached[k].data, d->cached[k].len);
			break;
		}
		case IT_SECTION: {
			size_t off = 0, len = 0;
			int r = 1;
			if (it->n_path == 0 && it->sect == MIME_SECT_BODY && !it->partial &&
			    d->file == NULL && m->size >= FETCH_FILE_MIN) {
				/* a big whole message goes from the file, unparsed */
				int fd = open_message(s, m);
				struct stat st;
				if (fd < 0 || fstat(fd, &st) < 0) {
					if (fd >= 0)
						close(fd);
					goto fail;
				}
				if (file_has_nul(fd, st.st_size)) {
					/* through memory, where NULs are replaced */
					close(fd);
					goto whole;
				}
				SEP();
				buf_printf(b, "%s {%lld}\r\n", it->name ? it->name : "BODY[]",
					   (long long)st.st_size);
				imap_send(s, b->data, b->len);
				buf_reset(b);
				start = 0;
				committed = true;
				evbuffer_add_file(bufferevent_get_output(s->bev), fd, 0,
						  st.st_size);
				break;
			}
		whole:
			if (it->n_path == 0 && it->sect == MIME_SECT_BODY) {
				/* the whole message: no need to parse it */
				if (load_file(s, d) < 0)
					goto fail;
				len = d->file_len;
			} else {
				struct mime_tree *t = tree_of(s, d);
				if (t == NULL)
					goto fail;
				r = mime_section(t, it->path, it->n_path, it->sect, &off, &len);
			}
			SEP();
			if (it->name)
				buf_puts(b, it->name);
			else
				put_item_name(b, it, "BODY");
			buf_putc(b, ' ');
			if (r == 1 && it->fields) {
				struct buf fb = BUF_INIT;
				mime_header_fields(d->file, off, len,
						   (const char *const *)it->field_names,
						   it->n_fields, it->fields_not, &fb);
				put_literal(b, it, fb.data ? fb.data : "", fb.len, false);
				buf_free(&fb);
			} else if (r == 1) {
				put_literal(b, it, d->file + off, len, false);
			} else {
				put_literal(b, it, "", 0, false);
			}
			break;
		}
		case IT_BINARY:
		case IT_BINARY_SIZE: {
			struct mime_tree *t = tree_of(s, d);
			if (t == NULL)
				goto fail;
			struct buf bb = BUF_INIT;
			int r = mime_binary(t, it->path, it->n_path, &bb);
			if (r == -2) {
				buf_free(&bb);
				b->len = start;
				return -2;
			}
			SEP();
			if (it->kind == IT_BINARY_SIZE) {
				put_item_name(b, it, "BINARY.SIZE");
				buf_printf(b, " %zu", r == 1 ? bb.len : 0);
			} else {
				put_item_name(b, it, "BINARY");
				buf_putc(b, ' ');
				if (r == 1)
					put_literal(b, it, bb.data ? bb.data : "", bb.len, true);
				else
					buf_puts(b, "NIL");
			}
			buf_free(&bb);
			break;
		}
		}
	}
	if (seen_now && !flags_done) {
		SEP();
		buf_puts(b, "FLAGS ");
		imap_flags_out(b, m->flags, imap_recent_has(s, m->uid), m->keywords);
	}
	if (!modseq_done) {
		SEP();
		buf_printf(b, "MODSEQ (%llu)", (unsigned long long)m->modseq);
	}
#undef SEP
	buf_puts(b, ")\r\n");
	return 0;
fail:
	if (committed) {
		/* cannot take back what was sent: end the response as it is */
		buf_puts(b, ")\r\n");
		return -1;
	}
	b->len = start;
	return -1;
}

/* ------------------------------------------------------------ command */

struct chunk_ctx {
	struct store_message *rows;
	size_t n;
	const uint32_t *uids; /* the chunk's uids, ascending */
	size_t n_uids;
	uint64_t changedsince; /* rows not above it are left out */
	size_t n_old;          /* rows left out for that */
};

static int chunk_cb(void *ctx, const struct store_message *m)
{
	struct chunk_ctx *c = ctx;
	/* keep rows that belong to the chunk (binary search) */
	size_t lo = 0, hi = c->n_uids;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->uids[mid] < m->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < c->n_uids && c->uids[lo] == m->uid) {
		if (m->modseq <= c->changedsince)
			c->n_old++;
		else
			c->rows[c->n++] = *m;
	}
	return 0;
}

static int seen_cb(void *ctx, const struct store_message *m)
{
	struct chunk_ctx *c = ctx;
	for (size_t i = 0; i < c->n; i++)
		if (c->rows[i].uid == m->uid) {
			c->rows[i].flags = m->flags;
			c->rows[i].modseq = m->modseq;
			break;
		}
	return 0;
}

void imap_fetch_free(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;
	if (f == NULL)
		return;
	flush_cache(f);
	items_free(f);
	free(f->uids);
	free(f);
	s->fetch = NULL;
}

/* Loads the next chunk's rows and sets \Seen where a body item reads a
 * message.  0, or -1 with f->failed set. */
static int next_chunk(struct imap_fetch *f)
{
	struct imap_session *s = f->s;
	size_t cn = f->n - f->pos < FETCH_CHUNK ? f->n - f->pos : FETCH_CHUNK;
	struct chunk_ctx c = {f->rows, 0, f->uids + f->pos, cn, f->changedsince, 0};
	f->n_rows = f->k = 0;
	if (store_message_list(s->sel->acct, s->sel->id, f->uids[f->pos], f->uids[f->pos + cn - 1],
			       chunk_cb, &c, f->err, sizeof f->err) < 0) {
		f->failed = 1;
		return -1;
	}
	f->pos += cn;
	if (c.n + c.n_old < cn)
		f->expunged = true;
	memset(f->seen_now, 0, sizeof f->seen_now);
	if (f->set_seen) {
		uint32_t need[FETCH_CHUNK];
		size_t nn = 0;
		for (size_t k = 0; k < c.n; k++)
			if (!(f->rows[k].flags & STORE_F_SEEN)) {
				need[nn++] = f->rows[k].uid;
				f->seen_now[k] = true;
			}
		uint64_t modseq = 0;
		if (nn > 0 &&
		    store_imap_store_flags(s->sel->acct, s->sel->id, need, nn, 1, STORE_F_SEEN, NULL,
					   seen_cb, &c, &modseq, f->err, sizeof f->err) < 0) {
			f->failed = 1;
			return -1;
		}
		imap_own_modseq(s, modseq);
	}
	f->n_rows = c.n;
	return 0;
}

bool imap_fetch_more(struct imap_session *s)
{
	struct imap_fetch *f = s->fetch;
	struct evbuffer *ev = bufferevent_get_output(s->bev);
	struct buf out = BUF_INIT;
	while (!f->failed && (f->k < f->n_rows || f->pos < f->n)) {
		if (evbuffer_get_length(ev) + out.len >= IMAP_FETCH_OUTPUT_HIGH) {
			/* wait for the client to read; the write callback resumes */
			log_debug("imap session=%s action=fetch_wait sent=%zu of %zu", s->id,
				  f->pos, f->n);
			if (out.len)
				imap_send(s, out.data, out.len);
			buf_free(&out);
			return false;
		}
		if (f->k == f->n_rows) {
			if (next_chunk(f) < 0)
				break;
			continue;
		}
		struct msgdata d;
		memset(&d, 0, sizeof d);
		d.m = &f->rows[f->k];
		uint32_t seq = imap_seq_of(s->sel, d.m->uid);
		int r = fetch_one(f, &d, seq, f->seen_now[f->k], &out);
		f->k++;
		free(d.file);
		mime_tree_free(&d.tree);
		if (d.have_cached)
			for (int j = 0; j < 3; j++)
				buf_free(&d.cached[j]);
		if (r == -2)
			f->failed = 2;
		else if (r == -1)
			f->expunged = true;
		if (out.len >= 65536) {
			imap_send(s, out.data, out.len);
			buf_reset(&out);
		}
	}
	if (out.len)
		imap_send(s, out.data, out.len);
	buf_free(&out);
	if (f->failed == 1) {
		log_error("imap session=%s user=%s action=fetch error=\"%s\"", s->id, s->address,
			  f->err);
		imap_reply(s, "%s NO [SERVERBUG] Internal error, try again later", f->tag);
	} else if (f->failed == 2) {
		imap_reply(s, "%s NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding", f->tag);
	} else if (f->ok_text[0]) {
		/* SELECT (QRESYNC): expunges since are told by the next sync */
		imap_reply(s, "%s OK %s", f->tag, f->ok_text);
	} else if (f->expunged) {
		imap_reply(s, "%s NO [EXPUNGEISSUED] Some messages were expunged", f->tag);
	} else {
		imap_reply(s, "%s OK Fetch completed", f->tag);
	}
	imap_fetch_free(s);
	return true;
}

void imap_cmd_fetch(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	struct imap_fetch *f = xcalloc(1, sizeof *f);
	f->s = s;
	f->uid = x->uid;
	snprintf(f->tag, sizeof f->tag, "%s", x->tag);
	/* the items: one atom (PREVIEW with its modifiers) or a list (nested
	 * only for those), then maybe the fetch-modifiers list (RFC 4466 2.4) */
	size_t end = 2;
	if (x->n >= 2 && x->a[1].type == IMAP_TOK_LPAREN) {
		size_t depth = 1;
		while (end < x->n && depth > 0) {
			if (x->a[end].type == IMAP_TOK_LPAREN)
				depth++;
			else if (x->a[end].type == IMAP_TOK_RPAREN)
				depth--;
			end++;
		}
		if (depth > 0)
			end = x->n + 1;
	} else if (x->n >= 2 && imap_tok_eq(&x->a[1], "PREVIEW")) {
		end += preview_mods(x->a + 2, x->n - 2);
	}
	if (x->n < 2 || end > x->n || parse_items(f, x->a + 1, end - 1) < 0 ||
	    parse_modifiers(f, x->a + end, x->n - end) < 0) {
		items_free(f);
		free(f);
		imap_bad(x, "Invalid FETCH items");
		return;
	}
	for (size_t i = 0; i < f->n_items; i++) {
		const struct item *it = &f->items[i];
		if (it->kind == IT_SECTION || it->kind == IT_BINARY || it->kind == IT_BINARY_SIZE)
			f->need_file = true;
		if ((it->kind == IT_SECTION || it->kind == IT_BINARY) && !it->peek)
			f->set_seen = true;
	}
	if (s->sel->readonly || !imap_acl_has(s->sel->rights, 's'))
		f->set_seen = false; /* RFC 4314 4: setting \Seen needs 's' */
	bool want_thread = false;
	for (size_t i = 0; i < f->n_items; i++)
		want_thread |= f->items[i].kind == IT_THREADID;
	char terr[256];
	if (want_thread && store_jmap_thread_assign(s->sel->acct, terr, sizeof terr) < 0) {
		/* messages not threaded yet would show THREADID NIL and then
		 * an id: RFC 8474 5.2 forbids a THREADID to change */
		items_free(f);
		free(f);
		imap_no_store(x, "fetch", terr);
		return;
	}
	/* RFC 7162 3.2.6: VANISHED only in UID FETCH, with CHANGEDSINCE,
	 * after ENABLE QRESYNC; each a BAD */
	const char *bad = !f->vanished           ? NULL
			  : !x->uid              ? "VANISHED is only allowed in UID FETCH"
			  : !s->qresync          ? "VANISHED needs ENABLE QRESYNC first"
			  : f->changedsince == 0 ? "VANISHED needs CHANGEDSINCE"
						 : NULL;
	if (bad != NULL) {
		items_free(f);
		free(f);
		imap_bad(x, bad);
		return;
	}
	struct imap_seqset set;
	if (imap_seqset_arg(x, &x->a[0], &set) < 0) {
		items_free(f);
		free(f);
		return;
	}
	if (f->want_modseq)
		imap_condstore_enable(s); /* RFC 7162 3.1 */
	if (f->vanished) {
		/* before any FETCH response (3.2.6) */
		struct buf b = BUF_INIT;
		char err[256];
		if (imap_vanished_earlier(s, &set, 1, f->changedsince, &b, err, sizeof err) < 0) {
			buf_free(&b);
			imap_seqset_free(&set);
			items_free(f);
			free(f);
			imap_no_store(x, "fetch", err);
			return;
		}
		if (b.len)
			imap_send(s, b.data, b.len);
		buf_free(&b);
	}
	uint32_t *seqs;
	f->n = imap_set_seqs(s->sel, &set, &seqs);
	imap_seqset_free(&set);
	f->uids = xcalloc(f->n ? f->n : 1, sizeof *f->uids);
	for (size_t i = 0; i < f->n; i++)
		f->uids[i] = imap_view_uid(&s->sel->v, seqs[i]);
	free(seqs);
	s->fetch = f;
	imap_fetch_start(s);
}

void imap_fetch_changed(struct imap_session *s, const char *tag, uint32_t *uids, size_t n,
			uint64_t since, const char *ok_text)
{
	struct imap_fetch *f = xcalloc(1, sizeof *f);
	f->s = s;
	f->uid = true;
	snprintf(f->tag, sizeof f->tag, "%s", tag);
	snprintf(f->ok_text, sizeof f->ok_text, "%s", ok_text);
	add_simple(f, IT_FLAGS);
	f->changedsince = since;
	f->want_modseq = true;
	f->uids = uids;
	f->n = n;
	s->fetch = f;
	imap_fetch_start(s);
}
