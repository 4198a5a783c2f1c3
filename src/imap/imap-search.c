/*
 * imap-search.c - SEARCH and UID SEARCH (RFC 9051 6.4.4) with the RFC
 * 4731 / RFC 9051 ESEARCH return options MIN, MAX, ALL and COUNT.
 * Protocol layer (imap-private.h); decoded header and body text come from
 * src/mail/mime.h.
 *
 * The search keys are parsed into a small tree first (bounded depth), so a
 * syntax error is BAD before any work.  Then every message of the view is
 * tested; a message's file is read and parsed only when a key needs it
 * (body, text, and header or sent-date keys of a message whose header text
 * is not cached), and at most once.
 *
 * Header keys (FROM, SUBJECT, HEADER..., SENT*) are answered from the
 * decoded header text cached in the account database beside the ENVELOPE
 * (store_imap_headers_list: one query per HDR_LIST_CHUNK messages).  The cached text
 * is mime_search_header(t, "") of the message; it is stored only when it is
 * small and splits back into exactly the fields mime_search_header gives
 * for each name (a decoded value holding a newline could fake a field),
 * otherwise a marker that sends the search to the file.  A message without
 * cached text is parsed once and its row is written at the end.
 *
 * Matching of strings: substring after simple case folding of both sides
 * (fold_utf8), on text that mime.h has RFC 2047-decoded and converted to
 * UTF-8.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imap-private.h"
#include "log.h"
#include "mime.h"
#include "sortkey.h"
#include "strutil.h"
#include "textmatch.h"
#include "xalloc.h"

#define SEARCH_MAX_DEPTH 16
#define SEARCH_MAX_KEYS 1000

enum sk_type {
	SK_ALL,
	SK_FLAG,    /* flag bit set (or not, if neg) */
	SK_RECENT,  /* \Recent in this session (or not, if neg: OLD) */
	SK_NEW,     /* \Recent and not \Seen */
	SK_KEYWORD, /* keyword present (or not) */
	SK_HEADER,  /* str = value, name = field */
	SK_ADDRESS, /* SK_HEADER of an address field: the addr-specs match too */
	SK_BODY,
	SK_TEXT,
	SK_BEFORE, /* internal date, days */
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE,
	SK_SENTON,
	SK_SENTSINCE,
	SK_OLDER,   /* RFC 5032: internal date before num (now - interval) */
	SK_YOUNGER, /* RFC 5032: internal date at or after num */
	SK_LARGER,
	SK_SMALLER,
	SK_MODSEQ,   /* RFC 7162 3.1.5: modseq >= num */
	SK_EMAILID,  /* RFC 8474 6: str = the message file id */
	SK_THREADID, /* num = the thread id (-1: none of ours) */
	SK_UIDSET,
	SK_SEQSET,
	SK_NOT,
	SK_OR,
	SK_AND,
};

struct skey {
	enum sk_type type;
	bool neg; /* for SK_FLAG / SK_KEYWORD */
	unsigned flag;
	char *name, *str; /* owned */
	int64_t num;
	struct imap_seqset set;
	struct skey *kids; /* SK_NOT (1), SK_OR (2), SK_AND (n) */
	size_t n_kids;
};

static void skey_free(struct skey *k)
{
	free(k->name);
	free(k->str);
	imap_seqset_free(&k->set);
	for (size_t i = 0; i < k->n_kids; i++)
		skey_free(&k->kids[i]);
	free(k->kids);
}

struct sparse {
	struct imap_cmdctx *x;
	const struct imap_tok *a;
	size_t n, i;
	size_t n_keys;
	const char *bad;
	bool need_file;
	bool need_hdr; /* header or sent-date keys */
	bool modseq;   /* a MODSEQ key (RFC 7162 3.1.5) */
	bool threads;  /* thread ids given (a THREADID key) */
};

static char *tok_dup(const struct imap_tok *t)
{
	return xmemdup0(t->p, t->len);
}

/* A search string, case-folded once (see fold_utf8). */
static char *tok_folded(const struct imap_tok *t);

static int parse_key(struct sparse *p, struct skey *k, int depth);

/* Keys up to a ")" (or the end) into an AND node. */
static int parse_list(struct sparse *p, struct skey *k, int depth, bool paren)
{
	memset(k, 0, sizeof k[0]);
	k->type = SK_AND;
	size_t cap = 0;
	while (p->i < p->n && !(paren && p->a[p->i].type == IMAP_TOK_RPAREN)) {
		if (k->n_kids == cap) {
			cap = cap ? cap * 2 : 4;
			k->kids = xreallocarray(k->kids, cap, sizeof *k->kids);
		}
		k->n_kids++; /* counted first, so skey_free frees a half-parsed key */
		if (parse_key(p, &k->kids[k->n_kids - 1], depth + 1) < 0)
			return -1;
	}
	if (paren) {
		if (p->i >= p->n)
			return -1;
		p->i++;
	}
	if (k->n_kids == 0) {
		p->bad = "Empty search key list";
		return -1;
	}
	return 0;
}

static const struct imap_tok *next_arg(struct sparse *p)
{
	if (p->i >= p->n || !imap_tok_is_string(&p->a[p->i]))
		return NULL;
	return &p->a[p->i++];
}

static int parse_key(struct sparse *p, struct skey *k, int depth)
{
	memset(k, 0, sizeof *k);
	if (depth > SEARCH_MAX_DEPTH || ++p->n_keys > SEARCH_MAX_KEYS) {
		p->bad = "Search too complex";
		return -1;
	}
	if (p->i >= p->n)
		return -1;
	const struct imap_tok *t = &p->a[p->i++];
	if (t->type == IMAP_TOK_LPAREN)
		return parse_list(p, k, depth, true);
	if (t->type != IMAP_TOK_ATOM)
		return -1;
	static const struct {
		const char *name;
		unsigned flag;
		bool neg;
	} flags[] = {
	    {"ANSWERED", STORE_F_ANSWERED, false}, {"DELETED", STORE_F_DELETED, false},
	    {"DRAFT", STORE_F_DRAFT, false},       {"FLAGGED", STORE_F_FLAGGED, false},
	    {"SEEN", STORE_F_SEEN, false},         {"UNANSWERED", STORE_F_ANSWERED, true},
	    {"UNDELETED", STORE_F_DELETED, true},  {"UNDRAFT", STORE_F_DRAFT, true},
	    {"UNFLAGGED", STORE_F_FLAGGED, true},  {"UNSEEN", STORE_F_SEEN, true},
	};
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
		if (imap_tok_eq(t, flags[i].name)) {
			k->type = SK_FLAG;
			k->flag = flags[i].flag;
			k->neg = flags[i].neg;
			return 0;
		}
	if (imap_tok_eq(t, "ALL")) {
		k->type = SK_ALL;
		return 0;
	}
	/* RFC 3501 6.4.4; in an IMAP4rev2 session no message is recent, so
	 * RECENT and NEW match nothing and OLD everything. */
	if (imap_tok_eq(t, "RECENT") || imap_tok_eq(t, "OLD")) {
		k->type = SK_RECENT;
		k->neg = imap_tok_eq(t, "OLD");
		return 0;
	}
	if (imap_tok_eq(t, "NEW")) {
		k->type = SK_NEW;
		return 0;
	}
	static const struct {
		const char *name;
		const char *field;
	} hdr[] = {
	    {"BCC", "Bcc"}, {"CC", "Cc"}, {"FROM", "From"}, {"SUBJECT", "Subject"}, {"TO", "To"},
	};
	for (size_t i = 0; i < sizeof hdr / sizeof hdr[0]; i++)
		if (imap_tok_eq(t, hdr[i].name)) {
			const struct imap_tok *v = next_arg(p);
			if (v == NULL)
				return -1;
			k->type = strcmp(hdr[i].name, "SUBJECT") ? SK_ADDRESS : SK_HEADER;
			k->name = xstrdup(hdr[i].field);
			k->str = tok_folded(v);
			p->need_hdr = true;
			return 0;
		}
	if (imap_tok_eq(t, "HEADER")) {
		const struct imap_tok *f = next_arg(p), *v = f ? next_arg(p) : NULL;
		if (v == NULL || f->len == 0 || memchr(f->p, ':', f->len) ||
		    memchr(f->p, 0, f->len))
			return -1;
		k->type = SK_HEADER;
		k->name = tok_dup(f);
		k->str = tok_folded(v);
		p->need_hdr = true;
		return 0;
	}
	if (imap_tok_eq(t, "BODY") || imap_tok_eq(t, "TEXT")) {
		const struct imap_tok *v = next_arg(p);
		if (v == NULL)
			return -1;
		k->type = imap_tok_eq(t, "BODY") ? SK_BODY : SK_TEXT;
		k->str = tok_folded(v);
		p->need_file = true;
		return 0;
	}
	if (imap_tok_eq(t, "KEYWORD") || imap_tok_eq(t, "UNKEYWORD")) {
		const struct imap_tok *v = next_arg(p);
		if (v == NULL || v->type != IMAP_TOK_ATOM)
			return -1;
		k->type = SK_KEYWORD;
		k->neg = imap_tok_eq(t, "UNKEYWORD");
		k->str = tok_dup(v);
		return 0;
	}
	static const struct {
		const char *name;
		enum sk_type type;
	} dates[] = {
	    {"BEFORE", SK_BEFORE},         {"ON", SK_ON},         {"SINCE", SK_SINCE},
	    {"SENTBEFORE", SK_SENTBEFORE}, {"SENTON", SK_SENTON}, {"SENTSINCE", SK_SENTSINCE},
	};
	for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++)
		if (imap_tok_eq(t, dates[i].name)) {
			const struct imap_tok *v = next_arg(p);
			if (v == NULL || imap_parse_date(v->p, v->len, &k->num) < 0) {
				p->bad = "Invalid date";
				return -1;
			}
			k->type = dates[i].type;
			if (k->type >= SK_SENTBEFORE)
				p->need_hdr = true;
			return 0;
		}
	if (imap_tok_eq(t, "OLDER") || imap_tok_eq(t, "YOUNGER")) {
		/* RFC 5032: "OLDER" / "YOUNGER" SP nz-number, in seconds
		 * before now, against the internal date */
		uint64_t v;
		if (p->i >= p->n || imap_tok_number(&p->a[p->i], UINT32_MAX, &v) < 0 || v == 0) {
			p->bad = "Invalid interval";
			return -1;
		}
		p->i++;
		k->type = imap_tok_eq(t, "OLDER") ? SK_OLDER : SK_YOUNGER;
		k->num = (int64_t)time(NULL) - (int64_t)v;
		return 0;
	}
	if (imap_tok_eq(t, "LARGER") || imap_tok_eq(t, "SMALLER")) {
		uint64_t v;
		if (p->i >= p->n || imap_tok_number(&p->a[p->i], UINT32_MAX, &v) < 0)
			return -1;
		p->i++;
		k->type = imap_tok_eq(t, "LARGER") ? SK_LARGER : SK_SMALLER;
		k->num = (int64_t)v;
		return 0;
	}
	if (imap_tok_eq(t, "MODSEQ")) {
		/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer: one
		 * modseq per message here, so the entry is ignored (3.1.5) */
		if (p->i < p->n && p->a[p->i].type != IMAP_TOK_ATOM) {
			const struct imap_tok *e = next_arg(p);
			if (e == NULL || p->i >= p->n || p->a[p->i].type != IMAP_TOK_ATOM ||
			    !(imap_tok_eq(&p->a[p->i], "priv") ||
			      imap_tok_eq(&p->a[p->i], "shared") ||
			      imap_tok_eq(&p->a[p->i], "all"))) {
				p->bad = "Invalid MODSEQ entry";
				return -1;
			}
			p->i++;
		}
		uint64_t v;
		if (p->i >= p->n || imap_modseq_arg(&p->a[p->i], true, &v) < 0) {
			p->bad = "Invalid mod-sequence";
			return -1;
		}
		p->i++;
		k->type = SK_MODSEQ;
		k->num = (int64_t)v;
		p->modseq = true;
		return 0;
	}
	if (imap_tok_eq(t, "EMAILID") || imap_tok_eq(t, "THREADID")) {
		/* objectid = 1*255(ALPHA / DIGIT / "_" / "-"), case-sensitive */
		bool email = imap_tok_eq(t, "EMAILID");
		const struct imap_tok *v = p->i < p->n ? &p->a[p->i] : NULL;
		bool ok = v != NULL && v->type == IMAP_TOK_ATOM && v->len >= 1 && v->len <= 255;
		for (size_t j = 0; ok && j < v->len; j++) {
			char ch = v->p[j];
			ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
		}
		if (!ok) {
			p->bad = "Invalid object id";
			return -1;
		}
		p->i++;
		if (email) {
			k->type = SK_EMAILID;
			k->str = v->p[0] == 'E' ? xmemdup0(v->p + 1, v->len - 1) : xstrdup("");
			return 0;
		}
		k->type = SK_THREADID;
		k->num = -1;
		uint64_t id = 0;
		size_t j = 1;
		for (; v->p[0] == 'T' && j < v->len && v->p[j] >= '0' && v->p[j] <= '9' &&
		       id < (uint64_t)INT64_MAX / 10;
		     j++)
			id = id * 10 + (uint64_t)(v->p[j] - '0');
		if (v->p[0] == 'T' && j == v->len && j > 1 && v->p[1] != '0')
			k->num = (int64_t)id;
		if (!p->threads) {
			/* THREADID compares the store's thread ids: give the
			 * unthreaded messages theirs first (as FETCH THREADID) */
			char err[256];
			p->threads = true;
			if (store_jmap_thread_assign(p->x->s->sel->acct, err, sizeof err) < 0)
				log_error("imap session=%s action=thread_assign error=\"%s\"",
					  p->x->s->id, err);
		}
		return 0;
	}
	if (imap_tok_eq(t, "NOT")) {
		k->type = SK_NOT;
		k->kids = xcalloc(1, sizeof *k->kids);
		k->n_kids = 1;
		return parse_key(p, &k->kids[0], depth + 1);
	}
	if (imap_tok_eq(t, "OR")) {
		k->type = SK_OR;
		k->kids = xcalloc(2, sizeof *k->kids);
		k->n_kids = 1;
		if (parse_key(p, &k->kids[0], depth + 1) < 0)
			return -1;
		k->n_kids = 2;
		return parse_key(p, &k->kids[1], depth + 1);
	}
	bool uid = imap_tok_eq(t, "UID");
	if (uid) {
		if (p->i >= p->n)
			return -1;
		t = &p->a[p->i++];
	}
	struct imap_sel *sel = p->x->s->sel;
	if (t->type == IMAP_TOK_ATOM && t->len == 1 && t->p[0] == '$') {
		/* RFC 5182: the saved result (UIDs), with or without "UID" */
		k->type = SK_UIDSET;
		imap_seqset_copy(&k->set, &sel->saved);
		return 0;
	}
	/* a sequence set (or UID set) */
	if (t->type != IMAP_TOK_ATOM || imap_parse_seqset(t->p, t->len, &k->set) < 0) {
		p->bad = uid ? "Invalid UID set" : "Unknown search key";
		return -1;
	}
	k->type = uid ? SK_UIDSET : SK_SEQSET;
	if (uid) {
		imap_seqset_resolve(&k->set, imap_view_last(&sel->v));
	} else {
		for (size_t i = 0; i < k->set.n; i++)
			if (k->set.r[i].lo > sel->v.n || k->set.r[i].hi > sel->v.n) {
				p->bad = "Invalid message sequence number";
				return -1;
			}
		imap_seqset_resolve(&k->set, sel->v.n);
	}
	return 0;
}

/* -------------------------------------------------------- evaluation */

/* Cached header rows read per query (bounds the memory of a search). */
#define HDR_LIST_CHUNK 512
/* Cache rows one search writes at most (the next search fills more). */
#define HDR_PUT_MAX 512

/* BODY and TEXT keys answered from the full-text index (store-fts.c): the
 * uids the index lists for each key, and the uids it cannot answer for
 * alone (not indexed, or in part), whose files are read on a miss. */
#define FTS_KEYS_MAX 16
struct fts_key {
	const struct skey *k;
	uint32_t *uids;
	size_t n;
};
struct fts_state {
	struct fts_key keys[FTS_KEYS_MAX];
	size_t n_keys;
	uint32_t *unsure;
	size_t n_unsure;
};

struct smsg {
	struct imap_session *s;
	const struct fts_state *fts;
	const struct store_message *m;
	uint32_t seq;
	char *file;
	size_t file_len;
	struct mime_tree *tree;
	bool tried;
	struct buf body; /* decoded body text, when loaded */
	bool body_done;
	/* the cached header row of this message (NULL: none listed) */
	const struct store_imap_headers *hrow;
	struct store_imapfill *put; /* NULL: do not fill the cache */
	bool hdr_tried, hdr_ok; /* hdr_ok: hdr_text answers header keys */
	const char *hdr_text;
	size_t hdr_len;
	struct buf hdr_own; /* text computed here */
};

static struct mime_tree *smsg_tree(struct smsg *d)
{
	if (d->tried)
		return d->tree;
	d->tried = true;
	char path[PATH_MAX];
	if (store_message_path(d->s->sel->acct, d->m->file_id, path, sizeof path) < 0)
		return NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t want = (size_t)d->m->size, got = 0;
	d->file = xmalloc(want + 1);
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
	d->tree = mime_parse(d->file, got);
	return d->tree;
}

/* Appends p[0..n) case-folded to out (sortkey_fold, i;unicode-casemap
 * without normalisation). */
static void fold_utf8(const char *p, size_t n, struct buf *out)
{
	(void)sortkey_fold(p, n, out);
}

static char *tok_folded(const struct imap_tok *t)
{
	return textmatch_needle(t->p, t->len);
}

/* Days since the epoch of an RFC 5322 date ("[Day, ]d Mon yyyy ..."),
 * in its own zone (RFC 9051: the time and zone are disregarded). */
static int sent_days(const char *p, size_t n, int64_t *days)
{
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	const char *comma = memchr(p + i, ',', n - i);
	if (comma)
		i = (size_t)(comma - p) + 1;
	while (i < n && p[i] == ' ')
		i++;
	char date[16];
	size_t o = 0;
	/* day */
	while (i < n && p[i] >= '0' && p[i] <= '9' && o < 2)
		date[o++] = p[i++];
	if (o == 0 || i >= n || p[i] != ' ')
		return -1;
	date[o++] = '-';
	while (i < n && p[i] == ' ')
		i++;
	if (n - i < 3)
		return -1;
	memcpy(date + o, p + i, 3);
	o += 3;
	i += 3;
	date[o++] = '-';
	while (i < n && p[i] == ' ')
		i++;
	size_t y = i;
	while (i < n && p[i] >= '0' && p[i] <= '9')
		i++;
	if (i - y == 2) { /* obsolete two-digit year (RFC 5322 4.3) */
		bool old = p[y] >= '5';
		date[o++] = old ? '1' : '2';
		date[o++] = old ? '9' : '0';
	} else if (i - y != 4) {
		return -1;
	}
	memcpy(date + o, p + y, i - y);
	o += i - y;
	return imap_parse_date(date, o, days);
}

/* Writes the queued cache rows. */
static void hdr_flush(struct imap_session *s, struct store_imapfill *q)
{
	char err[256];
	if (store_imapfill_flush(s->sel->acct, q, err, sizeof err) < 0)
		log_warn("imap session=%s action=cache_put error=\"%s\"", s->id, err);
}

/* Appends what mime_search_header(tree of d, name) appends: from the
 * cached header text when it can answer, else from the file (parsed once
 * and queued for the cache).  -1 if the file cannot be read. */
static int smsg_header(struct smsg *d, const char *name, struct buf *out)
{
	if (!d->hdr_tried) {
		d->hdr_tried = true;
		if (d->hrow != NULL && d->hrow->has) {
			d->hdr_text = d->hrow->text;
			d->hdr_len = d->hrow->len;
		} else if (d->put != NULL) {
			struct mime_tree *t = smsg_tree(d);
			if (t != NULL) {
				textmatch_header_text(t, &d->hdr_own);
				d->hdr_text = d->hdr_own.data ? d->hdr_own.data : "";
				d->hdr_len = d->hdr_own.len;
				store_imapfill_add(d->put, d->m->file_id, t, d->hdr_text,
						   d->hdr_len);
			}
		}
		/* real text is empty or ends with a newline; else the marker */
		d->hdr_ok =
		    d->hdr_text != NULL && (d->hdr_len == 0 || d->hdr_text[d->hdr_len - 1] == '\n');
	}
	if (d->hdr_ok) {
		if (textmatch_header_fields(d->hdr_text, d->hdr_len, name, out) == 0)
			return 0;
		d->hdr_ok = false; /* a damaged row: use the file */
		buf_reset(out);
	}
	struct mime_tree *t = smsg_tree(d);
	if (t == NULL)
		return -1;
	(void)mime_search_header(t, name, out);
	return 0;
}

static bool uid_listed(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] == uid)
			return true;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* What the index says of key k for uid: 1 a match, 0 none, -1 it cannot
 * tell (the file must be read). */
static int fts_answer(const struct fts_state *f, const struct skey *k, uint32_t uid)
{
	if (f == NULL)
		return -1;
	for (size_t i = 0; i < f->n_keys; i++) {
		if (f->keys[i].k != k)
			continue;
		if (uid_listed(f->keys[i].uids, f->keys[i].n, uid))
			return 1;
		return uid_listed(f->unsure, f->n_unsure, uid) ? -1 : 0;
	}
	return -1;
}

/* The BODY and TEXT keys of the tree at k that the index can answer. */
static void fts_collect(struct fts_state *f, const struct skey *k)
{
	if ((k->type == SK_BODY || k->type == SK_TEXT) && f->n_keys < FTS_KEYS_MAX &&
	    store_fts_needle_ok(k->str))
		f->keys[f->n_keys++].k = k;
	for (size_t i = 0; i < k->n_kids; i++)
		fts_collect(f, &k->kids[i]);
}

static void fts_free(struct fts_state *f)
{
	for (size_t i = 0; i < f->n_keys; i++)
		free(f->keys[i].uids);
	free(f->unsure);
	memset(f, 0, sizeof *f);
}

/* Fills f for the search root over the selected mailbox's view; on an
 * index error every key is answered from the files. */
static void fts_load(struct imap_session *s, struct fts_state *f, const struct skey *root)
{
	memset(f, 0, sizeof *f);
	struct imap_sel *sel = s->sel;
	if (sel->v.n == 0)
		return;
	fts_collect(f, root);
	if (f->n_keys == 0)
		return;
	struct store_fts_query q[FTS_KEYS_MAX];
	for (size_t i = 0; i < f->n_keys; i++) {
		q[i].field = f->keys[i].k->type == SK_BODY ? STORE_FTS_BODY : STORE_FTS_TEXT;
		q[i].needle = f->keys[i].k->str;
	}
	char err[256];
	if (store_fts_search(s->sel->acct, sel->id, imap_view_first(&sel->v), imap_view_last(&sel->v), q,
			     f->n_keys, &f->unsure, &f->n_unsure, err, sizeof err) < 0) {
		log_warn("imap session=%s action=search_index error=\"%s\"", s->id, err);
		memset(f, 0, sizeof *f);
		return;
	}
	for (size_t i = 0; i < f->n_keys; i++) {
		f->keys[i].uids = q[i].uids;
		f->keys[i].n = q[i].n;
	}
}

static bool eval(const struct skey *k, struct smsg *d)
{
	const struct store_message *m = d->m;
	switch (k->type) {
	case SK_ALL:
		return true;
	case SK_FLAG:
		return ((m->flags & k->flag) != 0) != k->neg;
	case SK_RECENT:
		return imap_recent_has(d->s, m->uid) != k->neg;
	case SK_NEW:
		return imap_recent_has(d->s, m->uid) && !(m->flags & STORE_F_SEEN);
	case SK_KEYWORD: {
		/* keywords are space-separated, compared case-insensitively */
		size_t wl = strlen(k->str);
		const char *p = m->keywords;
		bool found = false;
		while (*p && !found) {
			const char *w = p;
			while (*p && *p != ' ')
				p++;
			found = (size_t)(p - w) == wl && strncasecmp(w, k->str, wl) == 0;
			while (*p == ' ')
				p++;
		}
		return found != k->neg;
	}
	case SK_HEADER:
	case SK_ADDRESS: {
		struct buf b = BUF_INIT;
		if (smsg_header(d, k->name, &b) < 0) {
			buf_free(&b);
			return false;
		}
		bool r = b.len > 0 && textmatch_contains(b.data, b.len, k->str);
		if (!r && k->type == SK_ADDRESS)
			r = textmatch_addr_specs_contain(b.data, b.len, k->str);
		buf_free(&b);
		return r;
	}
	case SK_BODY:
	case SK_TEXT: {
		switch (fts_answer(d->fts, k, m->uid)) {
		case 1:
			return true;
		case 0:
			return false;
		default:
			break; /* read the file */
		}
		struct mime_tree *t = smsg_tree(d);
		if (t == NULL)
			return false;
		if (k->type == SK_TEXT) {
			struct buf b = BUF_INIT;
			mime_search_header(t, "", &b);
			bool r = textmatch_contains(b.data ? b.data : "", b.len, k->str);
			buf_free(&b);
			if (r)
				return true;
		}
		if (!d->body_done) {
			struct buf raw = BUF_INIT;
			buf_init(&d->body, 0);
			(void)mime_search_text(t, &raw);
			fold_utf8(raw.data ? raw.data : "", raw.len, &d->body);
			buf_free(&raw);
			d->body_done = true;
		}
		return textmatch_contains_folded(d->body.data ? d->body.data : "", d->body.len,
						 k->str);
	}
	case SK_BEFORE:
	case SK_ON:
	case SK_SINCE: {
		int64_t days = m->internaldate >= 0 ? m->internaldate / 86400
						    : (m->internaldate - 86399) / 86400;
		return k->type == SK_BEFORE ? days < k->num
		       : k->type == SK_ON   ? days == k->num
					    : days >= k->num;
	}
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE: {
		struct buf b = BUF_INIT;
		if (smsg_header(d, "Date", &b) < 0) {
			buf_free(&b);
			return false;
		}
		int64_t days;
		bool ok = b.len > 0 && sent_days(b.data, b.len, &days) == 0;
		buf_free(&b);
		if (!ok)
			return false;
		return k->type == SK_SENTBEFORE ? days < k->num
		       : k->type == SK_SENTON   ? days == k->num
						: days >= k->num;
	}
	case SK_OLDER:
		return m->internaldate < k->num;
	case SK_YOUNGER:
		return m->internaldate >= k->num;
	case SK_LARGER:
		return m->size > (uint64_t)k->num;
	case SK_SMALLER:
		return m->size < (uint64_t)k->num;
	case SK_MODSEQ:
		return m->modseq >= (uint64_t)k->num;
	case SK_EMAILID:
		return strcmp(m->file_id, k->str) == 0;
	case SK_THREADID:
		return k->num > 0 && m->thread_id == k->num;
	case SK_UIDSET:
		return imap_seqset_has(&k->set, m->uid);
	case SK_SEQSET:
		return imap_seqset_has(&k->set, d->seq);
	case SK_NOT:
		return !eval(&k->kids[0], d);
	case SK_OR:
		return eval(&k->kids[0], d) || eval(&k->kids[1], d);
	case SK_AND:
		for (size_t i = 0; i < k->n_kids; i++)
			if (!eval(&k->kids[i], d))
				return false;
		return true;
	}
	return false;
}

struct run_ctx {
	struct imap_session *s;
	const struct skey *root;
	uint32_t *hits;
	uint64_t *modseqs; /* of the hits, when a MODSEQ key asks for them */
	size_t n, cap;
	bool uid, want_modseq;
	/* cached header texts of the view, a chunk at a time in uid order,
	 * for searches with header keys (use_hdr) */
	bool use_hdr, hdr_end;
	uint32_t uid_hi;
	struct store_imap_headers *hrows;
	size_t n_hrows, hpos;
	struct store_imapfill put;
	struct fts_state fts;
	/* SORT and THREAD (imap_search_run): matches go to hit_cb */
	int (*hit_cb)(void *ctx, const struct imap_search_hit *h);
	void *hit_ctx;
};

/* The cached header row of uid (NULL: none), reading the next chunk of
 * rows when uid is past the loaded ones. */
static const struct store_imap_headers *hdr_row(struct run_ctx *c, uint32_t uid)
{
	while (c->hpos < c->n_hrows && c->hrows[c->hpos].uid < uid)
		c->hpos++;
	if (c->hpos == c->n_hrows && !c->hdr_end) {
		store_imap_headers_free(c->hrows, c->n_hrows);
		c->hrows = NULL;
		c->n_hrows = c->hpos = 0;
		char err[256];
		if (store_imap_headers_list(c->s->sel->acct, c->s->sel->id, uid, c->uid_hi,
					    HDR_LIST_CHUNK, &c->hrows, &c->n_hrows, err,
					    sizeof err) < 0) {
			log_warn("imap session=%s action=search_headers error=\"%s\"", c->s->id,
				 err);
			c->hdr_end = true; /* the rest from the files */
		} else {
			c->hdr_end = c->n_hrows < HDR_LIST_CHUNK;
		}
	}
	if (c->hpos < c->n_hrows && c->hrows[c->hpos].uid == uid)
		return &c->hrows[c->hpos];
	return NULL;
}

static void push_hit(struct run_ctx *c, uint32_t uid, uint32_t seq, uint64_t modseq)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->hits = xreallocarray(c->hits, c->cap, sizeof *c->hits);
		if (c->want_modseq)
			c->modseqs = xreallocarray(c->modseqs, c->cap, sizeof *c->modseqs);
	}
	if (c->want_modseq)
		c->modseqs[c->n] = modseq;
	c->hits[c->n++] = c->uid ? uid : seq;
}

static int search_cb(void *ctx, const struct store_message *m)
{
	struct run_ctx *c = ctx;
	uint32_t seq = imap_seq_of(c->s->sel, m->uid);
	if (seq == 0)
		return 0;
	struct smsg d;
	memset(&d, 0, sizeof d);
	d.s = c->s;
	d.fts = &c->fts;
	d.m = m;
	d.seq = seq;
	if (c->use_hdr) {
		d.hrow = hdr_row(c, m->uid);
		d.put = &c->put;
	}
	bool hit = eval(c->root, &d);
	if (hit && c->hit_cb != NULL) {
		struct imap_search_hit h = {m, seq, &d};
		(void)c->hit_cb(c->hit_ctx, &h);
		hit = false;
	}
	buf_free(&d.hdr_own);
	mime_tree_free(&d.tree);
	free(d.file);
	if (d.body_done)
		buf_free(&d.body);
	if (hit)
		push_hit(c, m->uid, seq, m->modseq);
	return 0;
}

/* Messages whose files a search answered from the index may read at most
 * (beyond: every message of the view is gone through). */
#define FTS_FAST_UNSURE 256

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* A search of one BODY or TEXT key the index answers, without going
 * through every message of the view: its hits, and the few unsure
 * messages read from their files.  1 done (c filled), 0 not such a
 * search, -1 store error (err set). */
static int search_fast(struct run_ctx *c, const struct skey *root, char *err, size_t errsz)
{
	const struct fts_state *f = &c->fts;
	if (root->type != SK_AND || root->n_kids != 1 || f->n_keys != 1 ||
	    f->keys[0].k != &root->kids[0] || c->want_modseq || c->use_hdr ||
	    f->n_unsure > FTS_FAST_UNSURE)
		return 0;
	struct imap_sel *sel = c->s->sel;
	for (size_t i = 0; i < f->keys[0].n; i++) {
		uint32_t uid = f->keys[0].uids[i], seq = imap_seq_of(sel, uid);
		if (seq != 0)
			push_hit(c, uid, seq, 0);
	}
	for (size_t i = 0; i < f->n_unsure; i++) {
		uint32_t uid = f->unsure[i];
		if (uid_listed(f->keys[0].uids, f->keys[0].n, uid))
			continue;
		if (store_message_list(c->s->sel->acct, sel->id, uid, uid, search_cb, c, err, errsz) < 0)
			return -1;
	}
	/* uids and sequence numbers rise together in a view */
	if (c->n > 1)
		qsort(c->hits, c->n, sizeof *c->hits, cmp_u32);
	return 1;
}

enum {
	RET_MIN = IMAP_RET_MIN,
	RET_MAX = IMAP_RET_MAX,
	RET_ALL = IMAP_RET_ALL,
	RET_COUNT = IMAP_RET_COUNT,
	RET_SAVE = IMAP_RET_SAVE,
};

int imap_search_return(struct imap_cmdctx *x, size_t *i, unsigned *ret)
{
	const struct imap_tok *a = x->a;
	size_t j = *i;
	*ret = 0;
	if (j >= x->n || !imap_tok_eq(&a[j], "RETURN") || a[j].type != IMAP_TOK_ATOM)
		return 0;
	j++;
	if (j >= x->n || a[j].type != IMAP_TOK_LPAREN) {
		imap_bad(x, "RETURN needs a list");
		return -1;
	}
	for (j++; j < x->n && a[j].type != IMAP_TOK_RPAREN; j++) {
		if (imap_tok_eq(&a[j], "MIN"))
			*ret |= RET_MIN;
		else if (imap_tok_eq(&a[j], "MAX"))
			*ret |= RET_MAX;
		else if (imap_tok_eq(&a[j], "ALL"))
			*ret |= RET_ALL;
		else if (imap_tok_eq(&a[j], "COUNT"))
			*ret |= RET_COUNT;
		else if (imap_tok_eq(&a[j], "SAVE"))
			*ret |= RET_SAVE;
		else {
			imap_bad(x, "Unknown RETURN option");
			return -1;
		}
	}
	if (j >= x->n) {
		imap_bad(x, "RETURN needs a list");
		return -1;
	}
	*i = j + 1;
	if (*ret == 0)
		*ret = RET_ALL; /* RETURN () */
	return 1;
}

void imap_esearch_put(struct buf *b, const struct imap_cmdctx *x, unsigned ret,
		      const uint32_t *hits, const uint64_t *modseqs, size_t n)
{
	buf_printf(b, "* ESEARCH (TAG \"%s\")", x->tag);
	if (x->uid)
		buf_puts(b, " UID");
	if (n > 0 && (ret & RET_MIN))
		buf_printf(b, " MIN %lu", (unsigned long)hits[0]);
	if (n > 0 && (ret & RET_MAX))
		buf_printf(b, " MAX %lu", (unsigned long)hits[n - 1]);
	if (n > 0 && (ret & RET_ALL)) {
		/* ranges only upwards (RFC 5267 3.2, for a sorted result) */
		buf_puts(b, " ALL ");
		for (size_t i = 0; i < n;) {
			size_t j = i;
			while (j + 1 < n && hits[j + 1] == hits[j] + 1)
				j++;
			if (i)
				buf_putc(b, ',');
			if (i == j)
				buf_printf(b, "%lu", (unsigned long)hits[i]);
			else
				buf_printf(b, "%lu:%lu", (unsigned long)hits[i],
					   (unsigned long)hits[j]);
			i = j + 1;
		}
	}
	if (ret & RET_COUNT)
		buf_printf(b, " COUNT %zu", n);
	if (modseqs != NULL && n > 0 && (ret & ~(unsigned)RET_SAVE)) {
		/* RFC 4731 3.2: of the MIN / MAX message(s) when only they
		 * are returned, else of all */
		uint64_t ms = imap_modseq_highest(modseqs, n);
		if (!(ret & (RET_ALL | RET_COUNT))) {
			ms = 0;
			if ((ret & RET_MIN) && modseqs[0] > ms)
				ms = modseqs[0];
			if ((ret & RET_MAX) && modseqs[n - 1] > ms)
				ms = modseqs[n - 1];
		}
		buf_printf(b, " MODSEQ %llu", (unsigned long long)ms);
	}
	buf_puts(b, "\r\n");
}

/* RFC 5182: the result saved by RETURN (SAVE), as UIDs; with MIN and/or
 * MAX only those messages are saved. */
static void save_result(struct imap_session *s, const uint32_t *hits, size_t n, bool uid,
			unsigned ret)
{
	struct imap_sel *sel = s->sel;
	imap_seqset_free(&sel->saved);
	if (n == 0)
		return;
	size_t pick[2], np = 0;
	if (ret & (RET_MIN | RET_MAX)) {
		if (ret & RET_MIN)
			pick[np++] = 0;
		if ((ret & RET_MAX) && !(np == 1 && n == 1))
			pick[np++] = n - 1;
	}
	size_t cnt = np ? np : n;
	sel->saved.r = xcalloc(cnt, sizeof *sel->saved.r);
	for (size_t i = 0; i < cnt; i++) {
		uint32_t v = hits[np ? pick[i] : i];
		uint32_t u = uid ? v : imap_view_uid(&sel->v, v);
		struct imap_seqset *sv = &sel->saved;
		if (sv->n > 0 && sv->r[sv->n - 1].hi + 1 == u) {
			sv->r[sv->n - 1].hi = u;
		} else {
			sv->r[sv->n].lo = sv->r[sv->n].hi = u;
			sv->n++;
		}
	}
}

/* A SEARCH with SAVE that fails leaves an empty saved result. */
static void fail_save(struct imap_session *s, unsigned ret)
{
	if (ret & RET_SAVE)
		imap_seqset_free(&s->sel->saved);
}

void imap_cmd_search(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	struct sparse p = {x, x->a, x->n, 0, 0, NULL, false, false, false, false};
	unsigned ret = 0;
	int rr = imap_search_return(x, &p.i, &ret);
	if (rr < 0)
		return;
	bool esearch = s->rev2 || rr > 0;
	if (esearch && ret == 0)
		ret = RET_ALL; /* rev2 SEARCH; RETURN (SAVE) stays SAVE */
	if (p.i < p.n && imap_tok_eq(&p.a[p.i], "CHARSET")) {
		p.i++;
		if (p.i >= p.n || !imap_tok_is_string(&p.a[p.i])) {
			fail_save(s, ret);
			imap_bad(x, "CHARSET needs a name");
			return;
		}
		if (!imap_tok_eq(&p.a[p.i], "UTF-8") && !imap_tok_eq(&p.a[p.i], "US-ASCII")) {
			fail_save(s, ret);
			imap_reply(s, "%s NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset",
				   x->tag);
			return;
		}
		p.i++;
	}
	struct skey root;
	memset(&root, 0, sizeof root);
	if (p.i >= p.n || parse_list(&p, &root, 0, false) < 0) {
		skey_free(&root);
		fail_save(s, ret);
		imap_bad(x, p.bad ? p.bad : "Invalid search keys");
		return;
	}
	if (p.modseq)
		imap_condstore_enable(s); /* RFC 7162 3.1 */
	struct run_ctx c;
	memset(&c, 0, sizeof c);
	c.put.max = HDR_PUT_MAX;
	c.s = s;
	c.root = &root;
	c.uid = x->uid;
	c.want_modseq = p.modseq;
	char err[256];
	struct imap_sel *sel = s->sel;
	c.use_hdr = p.need_hdr;
	if (sel->v.n > 0)
		c.uid_hi = imap_view_last(&sel->v);
	fts_load(s, &c.fts, &root);
	int lr = search_fast(&c, &root, err, sizeof err);
	if (lr == 0 && sel->v.n > 0)
		lr = store_message_list(s->sel->acct, sel->id, imap_view_first(&sel->v),
					imap_view_last(&sel->v), search_cb, &c, err, sizeof err);
	fts_free(&c.fts);
	store_imap_headers_free(c.hrows, c.n_hrows);
	hdr_flush(s, &c.put);
	if (lr < 0) {
		skey_free(&root);
		free(c.hits);
		free(c.modseqs);
		fail_save(s, ret);
		imap_no_store(x, "search", err);
		return;
	}
	skey_free(&root);
	if (ret & RET_SAVE) {
		save_result(s, c.hits, c.n, x->uid, ret);
		if ((ret & ~(unsigned)RET_SAVE) == 0) {
			/* SAVE alone: no ESEARCH answer (RFC 5182 2.4) */
			free(c.hits);
			free(c.modseqs);
			imap_reply(s, "%s OK Search completed, result saved", x->tag);
			return;
		}
	}
	struct buf b = BUF_INIT;
	if (!esearch) {
		buf_puts(&b, "* SEARCH");
		for (size_t i = 0; i < c.n; i++)
			buf_printf(&b, " %lu", (unsigned long)c.hits[i]);
		if (c.want_modseq && c.n > 0) /* RFC 7162 3.1.6 */
			buf_printf(&b, " (MODSEQ %llu)",
				   (unsigned long long)imap_modseq_highest(c.modseqs, c.n));
		buf_puts(&b, "\r\n");
	} else {
		imap_esearch_put(&b, x, ret, c.hits, c.want_modseq ? c.modseqs : NULL, c.n);
	}
	imap_send(s, b.data, b.len);
	buf_free(&b);
	free(c.hits);
	free(c.modseqs);
	imap_reply(s, "%s OK Search completed", x->tag);
}

/* ------------------------------------------- for SORT and THREAD */

struct imap_search {
	struct skey root;
	bool need_hdr;
	bool modseq;
};

uint64_t imap_modseq_highest(const uint64_t *v, size_t n)
{
	uint64_t hi = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] > hi)
			hi = v[i];
	return hi;
}

bool imap_search_has_modseq(const struct imap_search *q)
{
	return q->modseq;
}

int imap_search_parse(struct imap_cmdctx *x, size_t i, struct imap_search **out)
{
	struct sparse p = {x, x->a, x->n, i, 0, NULL, false, false, false, false};
	struct imap_search *q = xcalloc(1, sizeof *q);
	*out = NULL;
	if (p.i >= p.n || parse_list(&p, &q->root, 0, false) < 0) {
		skey_free(&q->root);
		free(q);
		imap_bad(x, p.bad ? p.bad : "Invalid search keys");
		return -1;
	}
	q->need_hdr = p.need_hdr;
	q->modseq = p.modseq;
	if (p.modseq)
		imap_condstore_enable(x->s);
	*out = q;
	return 0;
}

void imap_search_free(struct imap_search **q)
{
	if (q == NULL || *q == NULL)
		return;
	skey_free(&(*q)->root);
	free(*q);
	*q = NULL;
}

int imap_search_run(struct imap_session *s, const struct imap_search *q, bool want_hdr,
		    int (*cb)(void *ctx, const struct imap_search_hit *h), void *ctx, char *err,
		    size_t errsz)
{
	struct run_ctx c;
	memset(&c, 0, sizeof c);
	c.put.max = HDR_PUT_MAX;
	c.s = s;
	c.root = &q->root;
	c.use_hdr = q->need_hdr || want_hdr;
	c.hit_cb = cb;
	c.hit_ctx = ctx;
	struct imap_sel *sel = s->sel;
	if (sel->v.n == 0)
		return 0;
	c.uid_hi = imap_view_last(&sel->v);
	fts_load(s, &c.fts, &q->root);
	int lr = store_message_list(s->sel->acct, sel->id, imap_view_first(&sel->v),
				    imap_view_last(&sel->v), search_cb, &c, err, errsz);
	fts_free(&c.fts);
	store_imap_headers_free(c.hrows, c.n_hrows);
	hdr_flush(s, &c.put);
	free(c.hits);
	return lr < 0 ? -1 : 0;
}

int imap_search_header(const struct imap_search_hit *h, const char *name, struct buf *out)
{
	return smsg_header(h->d, name, out);
}
