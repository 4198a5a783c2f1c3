/*
 * jmap-email-query.c - Email/query, Email/queryChanges (RFC 8621 4.4,
 * 4.5; RFC 8620 5.5, 5.6) and SearchSnippet/get (RFC 8621 5.1).  Above
 * the store (store-jmapquery.c: the account's Emails, the IMAP header
 * cache, the full-text index) and src/mail (textmatch.h: the string
 * matching IMAP SEARCH does; sortkey.h and mime.h: the sort keys of IMAP
 * SORT).  docs/jmap.md "Email/query" says what is answered and how.
 *
 * A query reads every Email of the account once (one SQL query, grouped
 * by message file), then tests the filter on each: the cheap conditions
 * first (a FilterCondition's properties are ANDed in the order of
 * cond_rank), header conditions on the cached decoded header text (the
 * file is parsed only when there is no usable cache row), text and body
 * on the full-text index (the file is read only for a file the index
 * cannot answer for alone).  The matches are sorted with their keys
 * computed once each, then collapsed by thread and windowed.
 * Email/queryChanges runs the query again and tells the changes from the
 * Email change log (store-jmap.c; see jmap_email_query_changes).
 */
#include "jmap-email-query.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "caldate.h"
#include "fsutil.h"
#include "jmap-email-parts.h"
#include "jmap-mail-util.h"
#include "jmap-mail.h"
#include "log.h"
#include "mime.h"
#include "sortkey.h"
#include "store.h"
#include "textmatch.h"
#include "xalloc.h"

/* FilterOperator nesting, and FilterConditions in one filter. */
#define FILTER_MAX_DEPTH 16
#define FILTER_MAX_NODES 256
/* Comparators of one sort. */
#define SORT_MAX 16
/* Distinct keywords the thread conditions and sorts of one query name. */
#define THREAD_KW_MAX 16
/* The most ids one Email/query returns (RFC 8620 5.5: the server may cap
 * limit, and says so in "limit"). */
#define QUERY_LIMIT_MAX 1000
/* A string key is compared on at most this many octets. */
#define SORT_STRING_MAX 256
/* Largest message file read for a search. */
#define FILE_MAX ((size_t)256 * 1024 * 1024)
/* Header cache rows one query writes at most (the next one writes more). */
#define CACHE_FILL_MAX 2048
/* SearchSnippet: the most octets of a preview (RFC 8621 5.1). */
#define PREVIEW_MAX 255

/* ------------------------------------------------------------- filter */

enum fk {
	F_AND,
	F_OR,
	F_NOT,
	F_IN_MAILBOX,
	F_IN_OTHER,
	F_BEFORE,
	F_AFTER,
	F_MIN_SIZE,
	F_MAX_SIZE,
	F_HAS_KW,
	F_NOT_KW,
	F_ALL_KW,
	F_SOME_KW,
	F_NONE_KW,
	F_HEADER,  /* name, value (NULL: the field exists) */
	F_ADDRESS, /* from/to/cc/bcc: name, value */
	F_SUBJECT,
	F_BODY,
	F_HAS_ATTACHMENT, /* num: 1 true, 0 false (the file is parsed) */
	F_TEXT,
};

struct fnode {
	enum fk k;
	struct fnode *kids;
	size_t n_kids;
	int64_t num;  /* dates, sizes */
	int64_t *ids; /* mailboxes */
	size_t n_ids;
	char *kw;         /* keyword, lower case */
	size_t kw_slot;   /* thread keywords: its slot */
	const char *name; /* header field name (static or owned below) */
	char *name_own;
	char *str;   /* the needle, folded */
	int fts;     /* the index query of str in the body, -1 none */
	int fts_all; /* text: that of str in header and body, -1 none */
};

static void fnode_free(struct fnode *f)
{
	for (size_t i = 0; i < f->n_kids; i++)
		fnode_free(&f->kids[i]);
	free(f->kids);
	free(f->ids);
	free(f->kw);
	free(f->name_own);
	free(f->str);
}

struct query {
	struct fnode root;
	bool has_filter;
	size_t n_nodes;
	bool need_hdr;                  /* a header condition or sort */
	char *thread_kw[THREAD_KW_MAX]; /* lower case */
	size_t n_thread_kw;
	struct store_jmapq_fts fts[32];
	size_t n_fts;
	char (*unsure)[25];
	size_t n_unsure;
};

/* A method error whose description is msg and arg. */
static json_t *fail(json_t **error, const char *type, const char *msg, const char *arg)
{
	char d[320];
	snprintf(d, sizeof d, "%s%.200s", msg, arg);
	return jmap_mail_fail(error, type, d);
}

/* RFC 8621 4.1.1: 1-255 of %x21-7E but ( ) { ] % * " \ */
static bool keyword_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x21 || c > 0x7e || strchr("(){]%*\"\\", c) != NULL)
			return false;
	}
	return true;
}

static char *lower_dup(const char *s)
{
	char *r = xstrdup(s);
	for (char *p = r; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return r;
}

/* The slot of a thread keyword (added when new); SIZE_MAX when full. */
static size_t thread_kw_slot(struct query *q, const char *kw)
{
	for (size_t i = 0; i < q->n_thread_kw; i++)
		if (strcmp(q->thread_kw[i], kw) == 0)
			return i;
	if (q->n_thread_kw == THREAD_KW_MAX)
		return SIZE_MAX;
	q->thread_kw[q->n_thread_kw] = xstrdup(kw);
	return q->n_thread_kw++;
}

/* A UTCDate (RFC 8620 1.4: RFC 3339 date-time, "Z", no or a fraction of
 * seconds) as seconds since the epoch; *frac set when the fraction is not
 * zero. */
static bool parse_utcdate(const char *s, int64_t *t, bool *frac)
{
	size_t n = strlen(s);
	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':' || (s[n - 1] != 'Z' && s[n - 1] != 'z'))
		return false;
	static const size_t dig[] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18};
	for (size_t i = 0; i < sizeof dig / sizeof dig[0]; i++)
		if (!isdigit((unsigned char)s[dig[i]]))
			return false;
	*frac = false;
	if (n > 20) {
		if (s[19] != '.' || n == 21)
			return false;
		for (size_t i = 20; i < n - 1; i++) {
			if (!isdigit((unsigned char)s[i]))
				return false;
			if (s[i] != '0')
				*frac = true;
		}
	}
#define NUM2(p) (((p)[0] - '0') * 10 + ((p)[1] - '0'))
	int y = NUM2(s) * 100 + NUM2(s + 2);
	int mo = NUM2(s + 5), d = NUM2(s + 8), h = NUM2(s + 11), mi = NUM2(s + 14),
	    se = NUM2(s + 17);
#undef NUM2
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return false;
	*t = caldate_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return true;
}

/* A header field name (RFC 5322 3.6.8: printable ASCII but ':'). */
static bool field_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126 || s[i] == ':')
			return false;
	return true;
}

/* Cheap tests first when a condition ANDs several properties. */
static int cond_rank(enum fk k)
{
	switch (k) {
	case F_HAS_ATTACHMENT:
		return 4;
	case F_BODY:
	case F_TEXT:
		return 3;
	case F_HEADER:
	case F_ADDRESS:
	case F_SUBJECT:
		return 2;
	default:
		return 1;
	}
}

static int cmp_node_rank(const void *a, const void *b)
{
	const struct fnode *x = a, *y = b;
	return cond_rank(x->k) - cond_rank(y->k);
}

static bool parse_filter(struct query *q, json_t *f, size_t depth, struct fnode *out,
			 json_t **error);

/* The needle of a text condition: folded; the index is asked when it can
 * answer (store_fts_needle_ok). */
static void set_needle(struct query *q, struct fnode *n, const char *s, bool fts_field)
{
	n->str = textmatch_needle(s, strlen(s));
	n->fts = n->fts_all = -1;
	if (!fts_field || !store_fts_needle_ok(n->str))
		return;
	size_t max = sizeof q->fts / sizeof q->fts[0];
	if (q->n_fts < max) {
		q->fts[q->n_fts].field = STORE_FTS_BODY;
		q->fts[q->n_fts].needle = n->str;
		n->fts = (int)q->n_fts++;
	}
	/* text: the index of every header field and the body tells which
	 * Emails cannot match, without their header fields */
	if (n->k == F_TEXT && q->n_fts < max) {
		q->fts[q->n_fts].field = STORE_FTS_TEXT;
		q->fts[q->n_fts].needle = n->str;
		n->fts_all = (int)q->n_fts++;
	}
}

/* One property of a FilterCondition into n. */
static bool parse_cond(struct query *q, const char *key, json_t *v, struct fnode *n, json_t **error)
{
	memset(n, 0, sizeof *n);
	n->fts = n->fts_all = -1;
	static const struct {
		const char *name;
		enum fk k;
	} names[] = {
	    {"inMailbox", F_IN_MAILBOX},
	    {"inMailboxOtherThan", F_IN_OTHER},
	    {"before", F_BEFORE},
	    {"after", F_AFTER},
	    {"minSize", F_MIN_SIZE},
	    {"maxSize", F_MAX_SIZE},
	    {"allInThreadHaveKeyword", F_ALL_KW},
	    {"someInThreadHaveKeyword", F_SOME_KW},
	    {"noneInThreadHaveKeyword", F_NONE_KW},
	    {"hasKeyword", F_HAS_KW},
	    {"notKeyword", F_NOT_KW},
	    {"text", F_TEXT},
	    {"from", F_ADDRESS},
	    {"to", F_ADDRESS},
	    {"cc", F_ADDRESS},
	    {"bcc", F_ADDRESS},
	    {"subject", F_SUBJECT},
	    {"body", F_BODY},
	    {"header", F_HEADER},
	    {"hasAttachment", F_HAS_ATTACHMENT},
	};
	size_t i = 0;
	while (i < sizeof names / sizeof names[0] && strcmp(names[i].name, key) != 0)
		i++;
	if (i == sizeof names / sizeof names[0]) {
		fail(error, "unsupportedFilter", "unsupported filter condition ", key);
		return false;
	}
	n->k = names[i].k;
	switch (n->k) {
	case F_IN_MAILBOX:
		if (!json_is_string(v))
			break;
		n->ids = xmalloc(sizeof *n->ids);
		n->ids[0] = jmap_mail_parse_mailbox_id(json_string_value(v));
		n->n_ids = 1;
		return true;
	case F_IN_OTHER: {
		if (!json_is_array(v))
			break;
		size_t k;
		json_t *id;
		n->ids = xcalloc(json_array_size(v) + 1, sizeof *n->ids);
		json_array_foreach(v, k, id)
		{
			if (!json_is_string(id))
				return fail(error, "invalidArguments", "inMailboxOtherThan is Id[]",
					    ""),
				       false;
			n->ids[n->n_ids++] = jmap_mail_parse_mailbox_id(json_string_value(id));
		}
		return true;
	}
	case F_BEFORE:
	case F_AFTER: {
		bool frac;
		if (!json_is_string(v) || !parse_utcdate(json_string_value(v), &n->num, &frac))
			break;
		/* receivedAt is whole seconds: "< t.f" is "<= t", ">= t.f" is ">= t + 1" */
		if (frac)
			n->num++;
		return true;
	}
	case F_HAS_ATTACHMENT:
		if (!json_is_boolean(v))
			break;
		n->num = json_is_true(v) ? 1 : 0;
		return true;
	case F_MIN_SIZE:
	case F_MAX_SIZE:
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			break;
		n->num = json_integer_value(v);
		return true;
	case F_HAS_KW:
	case F_NOT_KW:
	case F_ALL_KW:
	case F_SOME_KW:
	case F_NONE_KW:
		if (!json_is_string(v) || !keyword_ok(json_string_value(v)))
			break;
		n->kw = lower_dup(json_string_value(v));
		if (n->k == F_ALL_KW || n->k == F_SOME_KW || n->k == F_NONE_KW) {
			n->kw_slot = thread_kw_slot(q, n->kw);
			if (n->kw_slot == SIZE_MAX)
				return fail(error, "unsupportedFilter",
					    "more than 16 thread keywords", ""),
				       false;
		}
		return true;
	case F_TEXT:
		if (!json_is_string(v))
			break;
		set_needle(q, n, json_string_value(v), true);
		q->need_hdr = true;
		return true;
	case F_BODY:
		if (!json_is_string(v))
			break;
		set_needle(q, n, json_string_value(v), true);
		return true;
	case F_SUBJECT:
	case F_ADDRESS:
		if (!json_is_string(v))
			break;
		n->name = n->k == F_SUBJECT          ? "Subject"
			  : strcmp(key, "from") == 0 ? "From"
			  : strcmp(key, "to") == 0   ? "To"
			  : strcmp(key, "cc") == 0   ? "Cc"
						     : "Bcc";
		set_needle(q, n, json_string_value(v), false);
		q->need_hdr = true;
		return true;
	case F_HEADER: {
		size_t len = json_array_size(v);
		json_t *nm = json_array_get(v, 0), *val = json_array_get(v, 1);
		if (!json_is_array(v) || len < 1 || len > 2 || !json_is_string(nm) ||
		    (len == 2 && !json_is_string(val)) || !field_name_ok(json_string_value(nm)))
			return fail(error, "invalidArguments",
				    "header is [name] or [name, value] (a field name)", ""),
			       false;
		n->name_own = xstrdup(json_string_value(nm));
		n->name = n->name_own;
		if (len == 2)
			set_needle(q, n, json_string_value(val), false);
		q->need_hdr = true;
		return true;
	}
	default:
		break;
	}
	fail(error, "invalidArguments", "wrong type for the filter condition ", key);
	return false;
}

static bool parse_filter(struct query *q, json_t *f, size_t depth, struct fnode *out,
			 json_t **error)
{
	memset(out, 0, sizeof *out);
	out->fts = out->fts_all = -1;
	out->k = F_AND;
	if (!json_is_object(f)) {
		fail(error, "invalidArguments", "a filter is an object", "");
		return false;
	}
	if (depth > FILTER_MAX_DEPTH || ++q->n_nodes > FILTER_MAX_NODES) {
		fail(error, "unsupportedFilter", "the filter is nested too deep or too large", "");
		return false;
	}
	json_t *conds;
	int opk;
	int r = jmap_mail_filter_operator(f, &conds, &opk, error);
	if (r < 0)
		return false;
	if (r > 0) {
		out->k = opk == 0 ? F_AND : opk == 1 ? F_OR : F_NOT;
		out->kids = xcalloc(json_array_size(conds) + 1, sizeof *out->kids);
		size_t i;
		json_t *c;
		json_array_foreach(conds, i, c)
		{
			bool ok = parse_filter(q, c, depth + 1, &out->kids[i], error);
			out->n_kids = i + 1;
			if (!ok)
				return false;
		}
		return true;
	}
	out->kids = xcalloc(json_object_size(f) + 1, sizeof *out->kids);
	const char *key;
	json_t *v;
	json_object_foreach(f, key, v)
	{
		bool ok = parse_cond(q, key, v, &out->kids[out->n_kids], error);
		out->n_kids++;
		if (!ok)
			return false;
	}
	qsort(out->kids, out->n_kids, sizeof *out->kids, cmp_node_rank);
	return true;
}

/* --------------------------------------------------------------- sort */

enum sk {
	S_RECEIVED,
	S_SIZE,
	S_FROM,
	S_TO,
	S_SUBJECT,
	S_SENT,
	S_HAS_KW,
	S_ALL_KW,
	S_SOME_KW,
};

enum coll { C_UNICODE, C_ASCII, C_OCTET };

struct comparator {
	enum sk k;
	bool asc;
	enum coll coll;
	char *kw; /* lower case */
	size_t kw_slot;
};

struct sort {
	struct comparator c[SORT_MAX];
	size_t n;
};

static void sort_free(struct sort *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->c[i].kw);
}

static bool parse_sort(struct query *q, json_t *sort, struct sort *s, json_t **error)
{
	memset(s, 0, sizeof *s);
	if (sort == NULL || json_is_null(sort))
		return true;
	if (!json_is_array(sort)) {
		fail(error, "invalidArguments", "sort must be null or Comparator[]", "");
		return false;
	}
	if (json_array_size(sort) > SORT_MAX) {
		fail(error, "unsupportedSort", "at most 16 Comparators", "");
		return false;
	}
	static const struct {
		const char *name;
		enum sk k;
	} props[] = {
	    {"receivedAt", S_RECEIVED},
	    {"size", S_SIZE},
	    {"from", S_FROM},
	    {"to", S_TO},
	    {"subject", S_SUBJECT},
	    {"sentAt", S_SENT},
	    {"hasKeyword", S_HAS_KW},
	    {"allInThreadHaveKeyword", S_ALL_KW},
	    {"someInThreadHaveKeyword", S_SOME_KW},
	};
	size_t i;
	json_t *c;
	json_array_foreach(sort, i, c)
	{
		json_t *p = json_object_get(c, "property");
		json_t *asc = json_object_get(c, "isAscending");
		json_t *coll = json_object_get(c, "collation");
		json_t *kw = json_object_get(c, "keyword");
		const char *ck;
		json_t *cv;
		bool extra = false;
		json_object_foreach(c, ck, cv)
		{
			if (strcmp(ck, "property") != 0 && strcmp(ck, "isAscending") != 0 &&
			    strcmp(ck, "collation") != 0 && strcmp(ck, "keyword") != 0)
				extra = true;
		}
		if (!json_is_object(c) || !json_is_string(p) || extra ||
		    (asc != NULL && !json_is_boolean(asc)) ||
		    (coll != NULL && !json_is_string(coll)) ||
		    (kw != NULL && !json_is_string(kw))) {
			fail(error, "invalidArguments",
			     "a Comparator has property, isAscending, collation (and keyword)", "");
			return false;
		}
		struct comparator *x = &s->c[s->n];
		size_t k = 0;
		while (k < sizeof props / sizeof props[0] &&
		       strcmp(props[k].name, json_string_value(p)) != 0)
			k++;
		if (k == sizeof props / sizeof props[0]) {
			fail(error, "unsupportedSort", "cannot sort by ", json_string_value(p));
			return false;
		}
		x->k = props[k].k;
		x->asc = asc == NULL || json_is_true(asc);
		x->coll = C_UNICODE;
		if (coll != NULL) {
			const char *cn = json_string_value(coll);
			if (strcmp(cn, "i;unicode-casemap") == 0)
				x->coll = C_UNICODE;
			else if (strcmp(cn, "i;ascii-casemap") == 0)
				x->coll = C_ASCII;
			else if (strcmp(cn, "i;octet") == 0)
				x->coll = C_OCTET;
			else {
				fail(error, "unsupportedSort", "no collation ", cn);
				return false;
			}
		}
		bool kw_prop = x->k == S_HAS_KW || x->k == S_ALL_KW || x->k == S_SOME_KW;
		if (kw_prop != (kw != NULL) || (kw != NULL && !keyword_ok(json_string_value(kw)))) {
			fail(error, "invalidArguments",
			     "keyword (a keyword) goes with the keyword sorts, and only", "");
			return false;
		}
		if (kw != NULL) {
			x->kw = lower_dup(json_string_value(kw));
			if (x->k != S_HAS_KW) {
				x->kw_slot = thread_kw_slot(q, x->kw);
				if (x->kw_slot == SIZE_MAX) {
					s->n++;
					fail(error, "unsupportedSort",
					     "more than 16 thread keywords", "");
					return false;
				}
			}
		}
		if (x->k == S_FROM || x->k == S_TO || x->k == S_SUBJECT || x->k == S_SENT)
			q->need_hdr = true;
		s->n++;
	}
	return true;
}

static void query_free(struct query *q)
{
	fnode_free(&q->root);
	for (size_t i = 0; i < q->n_thread_kw; i++)
		free(q->thread_kw[i]);
	for (size_t i = 0; i < q->n_fts; i++)
		free(q->fts[i].ids);
	free(q->unsure);
}

/* ---------------------------------------------------------- evaluation */

/* JMAP keyword kw (lower case) on e: the system flags as $seen... (RFC
 * 8621 4.1.1), else a keyword of a copy, case-insensitively. */
static bool email_has_kw(const struct store_jmapq_email *e, const char *kw)
{
	static const struct {
		const char *kw;
		unsigned flag;
	} sys[] = {{"$seen", STORE_F_SEEN},
		   {"$answered", STORE_F_ANSWERED},
		   {"$flagged", STORE_F_FLAGGED},
		   {"$draft", STORE_F_DRAFT}};
	for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
		if (strcmp(kw, sys[i].kw) == 0)
			return (e->flags & sys[i].flag) != 0;
	return store_jmapq_keyword_in(e->keywords, kw);
}

/* What the threads say of the thread keywords: per Email, bit k of all /
 * some for thread keyword k. */
struct thread_info {
	size_t *dense; /* per Email: its thread as 0..n_threads */
	size_t n_threads;
	uint32_t *all, *some; /* per thread */
};

static const struct store_jmapq_email *sort_emails;

static int cmp_by_thread(const void *a, const void *b)
{
	const struct store_jmapq_email *x = &sort_emails[*(const size_t *)a],
				       *y = &sort_emails[*(const size_t *)b];
	return x->thread_id < y->thread_id ? -1 : x->thread_id > y->thread_id;
}

static void thread_info_load(struct thread_info *t, const struct store_jmapq_email *v, size_t n,
			     const struct query *q)
{
	memset(t, 0, sizeof *t);
	t->dense = xcalloc(n + 1, sizeof *t->dense);
	t->all = xcalloc(n + 1, sizeof *t->all);
	t->some = xcalloc(n + 1, sizeof *t->some);
	size_t *ord = xcalloc(n + 1, sizeof *ord);
	for (size_t i = 0; i < n; i++)
		ord[i] = i;
	sort_emails = v;
	qsort(ord, n, sizeof *ord, cmp_by_thread);
	uint32_t full = q->n_thread_kw == 0 ? 0 : (uint32_t)((1u << q->n_thread_kw) - 1);
	for (size_t i = 0; i < n; i++) {
		const struct store_jmapq_email *e = &v[ord[i]];
		/* thread 0 (not threaded yet) is a thread of its own per Email */
		if (i == 0 || e->thread_id == 0 || e->thread_id != v[ord[i - 1]].thread_id) {
			t->all[t->n_threads] = full;
			t->n_threads++;
		}
		size_t th = t->n_threads - 1;
		t->dense[ord[i]] = th;
		for (size_t k = 0; k < q->n_thread_kw; k++) {
			if (email_has_kw(e, q->thread_kw[k]))
				t->some[th] |= 1u << k;
			else
				t->all[th] &= ~(1u << k);
		}
	}
	free(ord);
}

static void thread_info_free(struct thread_info *t)
{
	free(t->dense);
	free(t->all);
	free(t->some);
}

/* One Email being tested: its file and header text, read when needed. */
struct ectx {
	struct store_account *a;
	const struct store_jmapq_email *e;
	size_t idx;
	const struct thread_info *th;
	const struct query *q;
	bool tried;
	char *file;
	size_t file_len;
	struct mime_tree *tree;
	bool body_done;
	struct buf body; /* mime_search_text, folded */
	bool hdr_bad;    /* the cached text cannot answer */
	bool own_done;
	struct buf own;             /* the header text made from the file */
	struct store_imapfill *put; /* NULL: do not fill the IMAP cache */
};

static void ectx_free(struct ectx *x)
{
	mime_tree_free(&x->tree);
	free(x->file);
	buf_free(&x->body);
	buf_free(&x->own);
}

static struct mime_tree *ectx_tree(struct ectx *x)
{
	if (x->tried)
		return x->tree;
	x->tried = true;
	char path[4096];
	if (store_message_path(x->a, x->e->file_id, path, sizeof path) < 0)
		return NULL;
	size_t len = 0;
	x->file = fsutil_read_file(path, FILE_MAX, &len);
	if (x->file == NULL)
		return NULL;
	x->file_len = len;
	x->tree = mime_parse(x->file, len);
	return x->tree;
}

/* What mime_search_header(tree, name) appends (each value followed by
 * "\n"): from the cached header text when it answers, else from the
 * file, whose header text is then queued for the cache. */
static void ectx_header(struct ectx *x, const char *name, struct buf *out)
{
	const struct store_jmapq_email *e = x->e;
	if (!x->hdr_bad && e->headers != NULL &&
	    (e->headers_len == 0 || e->headers[e->headers_len - 1] == '\n')) {
		if (textmatch_header_fields(e->headers, e->headers_len, name, out) == 0)
			return;
		buf_reset(out);
	}
	x->hdr_bad = true;
	struct mime_tree *t = ectx_tree(x);
	if (t == NULL)
		return;
	if (!x->own_done) {
		x->own_done = true;
		textmatch_header_text(t, &x->own);
		/* a row with the marker is there already: not again */
		if (x->put != NULL && e->headers == NULL)
			store_imapfill_add(x->put, e->file_id, t, x->own.data ? x->own.data : "",
					   x->own.len);
	}
	if (x->own.len > 0 && x->own.data[x->own.len - 1] == '\n' &&
	    textmatch_header_fields(x->own.data, x->own.len, name, out) == 0)
		return;
	buf_reset(out);
	(void)mime_search_header(t, name, out);
}

/* The first value of a header field (unfolded, decoded), into out. */
static void ectx_field(struct ectx *x, const char *name, struct buf *out)
{
	buf_reset(out);
	ectx_header(x, name, out);
	const char *nl = out->data ? memchr(out->data, '\n', out->len) : NULL;
	if (nl != NULL)
		out->len = (size_t)(nl - out->data);
}

static bool uid_listed(char (*v)[25], size_t n, const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v[mid], id);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool header_match(struct ectx *x, const struct fnode *f)
{
	struct buf b = BUF_INIT;
	ectx_header(x, f->name, &b);
	bool r;
	if (f->str == NULL)
		r = b.len > 0; /* header [name]: the field is there */
	else
		r = b.len > 0 && textmatch_contains(b.data, b.len, f->str);
	if (!r && f->str != NULL && f->k == F_ADDRESS)
		r = textmatch_addr_specs_contain(b.data ? b.data : "", b.len, f->str);
	buf_free(&b);
	return r;
}

/* The decoded text parts hold f->str (the index's answer when it has
 * one). */
static bool body_match(struct ectx *x, const struct fnode *f)
{
	if (f->fts >= 0) {
		const struct store_jmapq_fts *q = &x->q->fts[f->fts];
		if (uid_listed(q->ids, q->n, x->e->file_id))
			return true;
		if (!uid_listed(x->q->unsure, x->q->n_unsure, x->e->file_id))
			return false;
	}
	if (!x->body_done) {
		x->body_done = true;
		struct mime_tree *t = ectx_tree(x);
		struct buf raw = BUF_INIT;
		if (t != NULL)
			(void)mime_search_text(t, &raw);
		(void)sortkey_fold(raw.data ? raw.data : "", raw.len, &x->body);
		buf_free(&raw);
	}
	return textmatch_contains_folded(x->body.data ? x->body.data : "", x->body.len, f->str);
}

static bool eval(const struct fnode *f, struct ectx *x)
{
	const struct store_jmapq_email *e = x->e;
	switch (f->k) {
	case F_AND:
		for (size_t i = 0; i < f->n_kids; i++)
			if (!eval(&f->kids[i], x))
				return false;
		return true;
	case F_OR:
		for (size_t i = 0; i < f->n_kids; i++)
			if (eval(&f->kids[i], x))
				return true;
		return false;
	case F_NOT:
		for (size_t i = 0; i < f->n_kids; i++)
			if (eval(&f->kids[i], x))
				return false;
		return true;
	case F_IN_MAILBOX:
		for (size_t i = 0; i < e->n_mailboxes; i++)
			if (e->mailboxes[i] == f->ids[0])
				return true;
		return false;
	case F_IN_OTHER:
		/* in a mailbox that is none of the given ones */
		for (size_t i = 0; i < e->n_mailboxes; i++) {
			bool listed = false;
			for (size_t k = 0; k < f->n_ids && !listed; k++)
				listed = e->mailboxes[i] == f->ids[k];
			if (!listed)
				return true;
		}
		return false;
	case F_BEFORE:
		return e->received < f->num;
	case F_AFTER:
		return e->received >= f->num;
	case F_MIN_SIZE:
		return e->size >= (uint64_t)f->num;
	case F_MAX_SIZE:
		return e->size < (uint64_t)f->num;
	case F_HAS_KW:
		return email_has_kw(e, f->kw);
	case F_NOT_KW:
		return !email_has_kw(e, f->kw);
	case F_ALL_KW:
		return (x->th->all[x->th->dense[x->idx]] >> f->kw_slot) & 1u;
	case F_SOME_KW:
		return (x->th->some[x->th->dense[x->idx]] >> f->kw_slot) & 1u;
	case F_NONE_KW:
		return !((x->th->some[x->th->dense[x->idx]] >> f->kw_slot) & 1u);
	case F_HEADER:
	case F_ADDRESS:
	case F_SUBJECT:
		return header_match(x, f);
	case F_BODY:
		return body_match(x, f);
	case F_HAS_ATTACHMENT:
		/* the rule of Email/get's hasAttachment (RFC 8621 4.1.4) */
		if (ectx_tree(x) == NULL)
			return false;
		return jmap_email_has_attachment(x->file, x->file_len) == (f->num == 1);
	case F_TEXT: {
		/* RFC 8621 4.4.1: From, To, Cc, Bcc, Subject, or the text parts */
		static const char *const fields[] = {"From", "To", "Cc", "Bcc", "Subject"};
		if (f->fts_all >= 0) {
			const struct store_jmapq_fts *q = &x->q->fts[f->fts_all];
			if (!uid_listed(q->ids, q->n, e->file_id) &&
			    !uid_listed(x->q->unsure, x->q->n_unsure, e->file_id))
				return false; /* in no header field, nor the body */
		}
		struct fnode h = *f;
		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
			/* the decoded field's text (what the index holds) */
			h.k = F_HEADER;
			h.name = fields[i];
			if (header_match(x, &h))
				return true;
		}
		return body_match(x, f);
	}
	}
	return false;
}

/* ------------------------------------------------------------ sorting */

struct item {
	size_t idx; /* into the Emails */
	int64_t received, sent;
	uint64_t size;
	char *str[SORT_MAX]; /* string keys, by comparator; NULL if none */
	uint32_t kw;         /* bit i: comparator i's keyword holds */
};

/* A string key under collation c, cut at SORT_STRING_MAX octets (at a
 * character boundary). */
static char *collate(const char *p, size_t n, enum coll c)
{
	struct buf f = BUF_INIT;
	if (c == C_UNICODE) {
		(void)sortkey_fold(p, n, &f);
	} else {
		(void)buf_append(&f, p, n);
		for (size_t i = 0; c == C_ASCII && i < f.len; i++)
			f.data[i] = (char)tolower((unsigned char)f.data[i]);
	}
	if (f.len > SORT_STRING_MAX) {
		size_t k = SORT_STRING_MAX;
		while (k > 0 && ((unsigned char)f.data[k] & 0xC0) == 0x80)
			k--;
		f.len = k;
	}
	char *r = buf_steal(&f, NULL);
	return r != NULL ? r : xstrdup("");
}

static void item_keys(struct item *it, struct ectx *x, const struct sort *s)
{
	const struct store_jmapq_email *e = x->e;
	it->idx = x->idx;
	it->received = e->received;
	it->size = e->size;
	it->sent = e->received;
	struct buf v = BUF_INIT, k = BUF_INIT;
	for (size_t i = 0; i < s->n; i++) {
		const struct comparator *c = &s->c[i];
		buf_reset(&k);
		switch (c->k) {
		case S_SENT:
			ectx_field(x, "Date", &v);
			if (v.len == 0 || sortkey_sent_date(v.data, v.len, &it->sent) < 0)
				it->sent = e->received; /* as IMAP SORT (RFC 5256 2.2) */
			break;
		case S_SUBJECT:
			ectx_field(x, "Subject", &v);
			(void)sortkey_base_subject(v.data ? v.data : "", v.len, &k, NULL);
			it->str[i] = collate(k.data ? k.data : "", k.len, c->coll);
			break;
		case S_FROM:
		case S_TO:
			ectx_field(x, c->k == S_FROM ? "From" : "To", &v);
			(void)mime_addr_first_display(v.data ? v.data : "", v.len, &k);
			it->str[i] = collate(k.data ? k.data : "", k.len, c->coll);
			break;
		case S_HAS_KW:
			if (email_has_kw(e, c->kw))
				it->kw |= 1u << i;
			break;
		case S_ALL_KW:
			if ((x->th->all[x->th->dense[x->idx]] >> c->kw_slot) & 1u)
				it->kw |= 1u << i;
			break;
		case S_SOME_KW:
			if ((x->th->some[x->th->dense[x->idx]] >> c->kw_slot) & 1u)
				it->kw |= 1u << i;
			break;
		default:
			break;
		}
	}
	buf_free(&v);
	buf_free(&k);
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

/* qsort has no context argument; one sort runs at a time per process. */
static const struct sort *sort_current;

static int cmp_items(const void *pa, const void *pb)
{
	const struct item *a = pa, *b = pb;
	const struct sort *s = sort_current;
	for (size_t i = 0; i < s->n; i++) {
		int r = 0;
		switch (s->c[i].k) {
		case S_RECEIVED:
			r = cmp_i64(a->received, b->received);
			break;
		case S_SIZE:
			r = a->size < b->size ? -1 : a->size > b->size;
			break;
		case S_SENT:
			r = cmp_i64(a->sent, b->sent);
			break;
		case S_FROM:
		case S_TO:
		case S_SUBJECT:
			r = strcmp(a->str[i], b->str[i]);
			break;
		case S_HAS_KW:
		case S_ALL_KW:
		case S_SOME_KW:
			r = (int)((a->kw >> i) & 1u) - (int)((b->kw >> i) & 1u);
			break;
		}
		if (r != 0)
			return s->c[i].asc ? r : -r;
	}
	/* then oldest first, then by id (Emails are in id order) */
	int r = cmp_i64(a->received, b->received);
	return r != 0 ? r : a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* ------------------------------------------------------------- running */

/* The matches of q, sorted by s: their indexes into v (a new array, *n);
 * th loaded (the caller frees it).  0. */
static int run_query(struct store_account *a, struct query *q, const struct sort *s,
		     const struct store_jmapq_email *v, size_t nv, struct thread_info *th,
		     size_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	char err[256];
	if (q->n_fts > 0 &&
	    store_jmapq_fts(a, q->fts, q->n_fts, &q->unsure, &q->n_unsure, err, sizeof err) < 0) {
		/* the files answer instead */
		log_warn("jmap action=query_index error=\"%s\"", err);
		for (size_t i = 0; i < q->n_fts; i++)
			q->fts[i].ids = NULL;
		q->n_fts = 0;
		struct fnode *stack[FILTER_MAX_NODES * 2];
		size_t sp = 0;
		stack[sp++] = &q->root;
		while (sp > 0) {
			struct fnode *f = stack[--sp];
			f->fts = f->fts_all = -1;
			for (size_t i = 0; i < f->n_kids && sp < sizeof stack / sizeof stack[0];
			     i++)
				stack[sp++] = &f->kids[i];
		}
	}
	thread_info_load(th, v, nv, q);
	struct item *items = xcalloc(nv + 1, sizeof *items);
	struct store_imapfill put = {.max = CACHE_FILL_MAX};
	size_t k = 0;
	for (size_t i = 0; i < nv; i++) {
		struct ectx x = {.a = a, .e = &v[i], .idx = i, .th = th, .q = q, .put = &put};
		if (!q->has_filter || eval(&q->root, &x))
			item_keys(&items[k++], &x, s);
		ectx_free(&x);
	}
	if (store_imapfill_flush(a, &put, err, sizeof err) < 0)
		log_warn("jmap action=cache_put error=\"%s\"", err);
	sort_current = s;
	qsort(items, k, sizeof *items, cmp_items);
	*out = xcalloc(k + 1, sizeof **out);
	for (size_t i = 0; i < k; i++) {
		(*out)[i] = items[i].idx;
		for (size_t c = 0; c < s->n; c++)
			free(items[i].str[c]);
	}
	*n = k;
	free(items);
	return 0;
}

static void email_id(const struct store_jmapq_email *e, char out[32])
{
	snprintf(out, 32, "E%s", e->file_id);
}

/* The parts of Email/query and Email/queryChanges that check filter and
 * sort. */
static bool parse_query(json_t *args, struct query *q, struct sort *s, json_t **error)
{
	memset(q, 0, sizeof *q);
	memset(s, 0, sizeof *s);
	q->root.k = F_AND;
	q->root.fts = q->root.fts_all = -1;
	json_t *filter = json_object_get(args, "filter");
	if (filter != NULL && !json_is_null(filter)) {
		q->has_filter = true;
		if (!parse_filter(q, filter, 0, &q->root, error))
			return false;
	}
	return parse_sort(q, json_object_get(args, "sort"), s, error);
}

/* The complete results of a query now: the Emails (v), the matches in
 * order (res, total), the threads (th) and the state they are of. */
struct results {
	struct store_jmapq_email *v;
	size_t nv;
	size_t *res, total;
	struct thread_info th;
	char state[24];
	uint64_t state_num;
	bool thread_dep; /* other Emails of a thread decide (collapse, thread keywords) */
};

static void results_free(struct results *r)
{
	free(r->res);
	store_jmapq_emails_free(r->v, r->nv);
	thread_info_free(&r->th);
	memset(r, 0, sizeof *r);
}

/* Checks collapseThreads and calculateTotal, parses filter and sort,
 * syncs the state and runs the query into r (results_free it on
 * success). */
static bool results_get(const struct jmap_api_env *env, json_t *args, struct results *r,
			json_t **error)
{
	memset(r, 0, sizeof *r);
	static const char *const bools[] = {"calculateTotal", "collapseThreads"};
	for (size_t i = 0; i < 2; i++) {
		json_t *b = json_object_get(args, bools[i]);
		if (b != NULL && !json_is_boolean(b)) {
			jmap_mail_fail(error, "invalidArguments",
				       "calculateTotal and collapseThreads are Booleans");
			return false;
		}
	}
	bool collapse = json_is_true(json_object_get(args, "collapseThreads"));
	struct query q;
	struct sort s;
	const struct jmap_mail_ctx *c = env->methods_ctx;
	char err[256];
	if (!parse_query(args, &q, &s, error) ||
	    !jmap_mail_sync_state(env, r->state, &r->state_num, error)) {
		query_free(&q);
		sort_free(&s);
		return false;
	}
	r->thread_dep = collapse || q.n_thread_kw > 0;
	if (store_jmapq_emails(c->account, q.need_hdr, &r->v, &r->nv, err, sizeof err) < 0) {
		log_error("jmap action=email_query error=\"%s\"", err);
		query_free(&q);
		sort_free(&s);
		jmap_mail_fail(error, "serverFail", "the store failed");
		return false;
	}
	(void)run_query(c->account, &q, &s, r->v, r->nv, &r->th, &r->res, &r->total);
	query_free(&q);
	sort_free(&s);
	if (collapse) {
		/* the first Email of each thread in the sorted list */
		bool *seen = xcalloc(r->nv + 1, sizeof *seen);
		size_t k = 0;
		for (size_t i = 0; i < r->total; i++) {
			size_t t = r->th.dense[r->res[i]];
			if (!seen[t]) {
				seen[t] = true;
				r->res[k++] = r->res[i];
			}
		}
		r->total = k;
		free(seen);
	}
	return true;
}

json_t *jmap_email_query(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {
	    "accountId",    "filter", "sort",           "position",        "anchor",
	    "anchorOffset", "limit",  "calculateTotal", "collapseThreads", NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	struct jmap_mail_window w;
	if (!jmap_mail_window_args(args, &w, error))
		return NULL;
	json_int_t limit = w.limit;
	struct results q;
	if (!results_get(env, args, &q, error))
		return NULL;
	char fid[25];
	size_t at = 0;
	if (w.anchor != NULL && jmap_mail_parse_email_id(json_string_value(w.anchor), fid))
		while (at < q.total && strcmp(q.v[q.res[at]].file_id, fid) != 0)
			at++;
	else
		at = q.total;
	json_int_t start;
	if (!jmap_mail_window_start(&w, q.total, at, &start, error)) {
		results_free(&q);
		return NULL;
	}
	if (start > (json_int_t)q.total)
		start = (json_int_t)q.total;
	bool capped = limit < 0 || limit > QUERY_LIMIT_MAX;
	if (capped)
		limit = QUERY_LIMIT_MAX;
	json_t *ids = json_array();
	for (json_int_t i = start; i < (json_int_t)q.total && i - start < limit; i++) {
		char id[32];
		email_id(&q.v[q.res[i]], id);
		json_array_append_new(ids, json_string(id));
	}
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set_new(r, "queryState", json_string(q.state));
	json_object_set_new(r, "canCalculateChanges", json_true());
	json_object_set_new(r, "position", json_integer(start));
	json_object_set_new(r, "ids", ids);
	if (json_is_true(json_object_get(args, "calculateTotal")))
		json_object_set_new(r, "total", json_integer((json_int_t)q.total));
	if (capped)
		json_object_set_new(r, "limit", json_integer(QUERY_LIMIT_MAX));
	results_free(&q);
	return r;
}

static int cmp_change_key(const void *a, const void *b)
{
	return strcmp(((const struct store_jmap_change *)a)->key,
		      ((const struct store_jmap_change *)b)->key);
}

static int cmp_change_id(const void *a, const void *b)
{
	int64_t x = ((const struct store_jmap_change *)a)->id,
		y = ((const struct store_jmap_change *)b)->id;
	return x < y ? -1 : x > y;
}

/* The change of file_id in ch (sorted by key), else NULL. */
static const struct store_jmap_change *find_change(const struct store_jmap_change *ch, size_t n,
						   const char *file_id)
{
	struct store_jmap_change k;
	memset(&k, 0, sizeof k);
	snprintf(k.key, sizeof k.key, "%s", file_id);
	return n == 0 ? NULL : bsearch(&k, ch, n, sizeof *ch, cmp_change_key);
}

/* RFC 8620 5.6, from the Email change log instead of old results: every
 * Email changed since the old state (and, when other Emails of a thread
 * decide, every Email of a thread that changed or holds a changed Email)
 * is removed and, if in the results now, added at its index.  The others
 * did not change, nor did anything their place depends on, so they keep
 * their order: the client's list with these changes applied is the new
 * one.  upToId is not used (the changes after it are sent too). */
json_t *jmap_email_query_changes(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId",       "filter",          "sort",
					      "sinceQueryState", "maxChanges",      "upToId",
					      "calculateTotal",  "collapseThreads", NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	json_t *since = json_object_get(args, "sinceQueryState");
	if (!json_is_string(since))
		return jmap_mail_fail(error, "invalidArguments",
				      "sinceQueryState (String) is required");
	json_t *maxv = json_object_get(args, "maxChanges");
	if (maxv != NULL && !json_is_null(maxv) &&
	    (!json_is_integer(maxv) || json_integer_value(maxv) <= 0))
		return jmap_mail_fail(error, "invalidArguments",
				      "maxChanges must be null or a positive integer");
	json_t *up = json_object_get(args, "upToId");
	if (up != NULL && !json_is_null(up) && !json_is_string(up))
		return jmap_mail_fail(error, "invalidArguments", "upToId must be null or an Id");
	struct results q;
	/* the results must be exactly those of the new state: read again
	 * when something changed meanwhile */
	for (int attempt = 0;; attempt++) {
		if (!results_get(env, args, &q, error))
			return NULL;
		char now[24];
		uint64_t num;
		if (!jmap_mail_sync_state(env, now, &num, error)) {
			results_free(&q);
			return NULL;
		}
		if (num == q.state_num)
			break;
		results_free(&q);
		if (attempt == 2)
			return jmap_mail_fail(error, "cannotCalculateChanges",
					      "the mailbox is changing: try again");
	}
	uint64_t old;
	if (!jmap_mail_parse_state(json_string_value(since), &old) || old > q.state_num) {
		results_free(&q);
		return jmap_mail_fail(error, "cannotCalculateChanges",
				      "not a state of this server");
	}
	const struct jmap_mail_ctx *c = env->methods_ctx;
	struct store_jmap_change *ch = NULL, *tch = NULL;
	size_t n = 0, tn = 0;
	char err[256];
	if (store_jmap_email_changes(c->account, old, &ch, &n, err, sizeof err) < 0 ||
	    (q.thread_dep &&
	     store_jmap_thread_changes(c->account, old, &tch, &tn, err, sizeof err) < 0)) {
		log_error("jmap action=email_query_changes error=\"%s\"", err);
		free(ch);
		results_free(&q);
		return jmap_mail_fail(error, "serverFail", "the store failed");
	}
	if (n > 1)
		qsort(ch, n, sizeof *ch, cmp_change_key);
	if (tn > 1)
		qsort(tch, tn, sizeof *tch, cmp_change_id);
	/* which Emails of now count as changed */
	bool *changed = xcalloc(q.nv + 1, sizeof *changed);
	bool *thread_hit = xcalloc(q.th.n_threads + 1, sizeof *thread_hit);
	for (size_t i = 0; i < q.nv; i++) {
		changed[i] = find_change(ch, n, q.v[i].file_id) != NULL;
		if (!q.thread_dep)
			continue;
		struct store_jmap_change k = {.id = q.v[i].thread_id};
		if (changed[i] || (q.v[i].thread_id != 0 && tn > 0 &&
				   bsearch(&k, tch, tn, sizeof *tch, cmp_change_id) != NULL))
			thread_hit[q.th.dense[i]] = true;
	}
	for (size_t i = 0; q.thread_dep && i < q.nv; i++)
		if (thread_hit[q.th.dense[i]])
			changed[i] = true;
	json_t *removed = json_array(), *added = json_array();
	char id[32];
	/* removed: what may have been in the old results; those created
	 * since too, as the old results may be younger than their state (an
	 * Email stored between a query's sync and its reading shows in it) */
	for (size_t i = 0; i < n; i++) {
		if (ch[i].kind == STORE_JMAP_DESTROYED) {
			snprintf(id, sizeof id, "E%s", ch[i].key);
			json_array_append_new(removed, json_string(id));
		}
	}
	for (size_t i = 0; i < q.nv; i++) {
		if (changed[i]) {
			email_id(&q.v[i], id);
			json_array_append_new(removed, json_string(id));
		}
	}
	for (size_t p = 0; p < q.total; p++) {
		if (!changed[q.res[p]])
			continue;
		email_id(&q.v[q.res[p]], id);
		json_array_append_new(added, json_pack("{sssI}", "id", id, "index", (json_int_t)p));
	}
	free(changed);
	free(thread_hit);
	free(ch);
	free(tch);
	size_t count = json_array_size(removed) + json_array_size(added);
	if (maxv != NULL && json_is_integer(maxv) && (json_int_t)count > json_integer_value(maxv)) {
		json_decref(removed);
		json_decref(added);
		results_free(&q);
		return jmap_mail_fail(error, "tooManyChanges", "more changes than maxChanges");
	}
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set(r, "oldQueryState", since);
	json_object_set_new(r, "newQueryState", json_string(q.state));
	if (json_is_true(json_object_get(args, "calculateTotal")))
		json_object_set_new(r, "total", json_integer((json_int_t)q.total));
	json_object_set_new(r, "removed", removed);
	json_object_set_new(r, "added", added);
	results_free(&q);
	return r;
}

/* ----------------------------------------------------- SearchSnippet/get */

struct terms {
	char *subject[FILTER_MAX_NODES]; /* text and subject needles */
	size_t n_subject;
	char *body[FILTER_MAX_NODES]; /* text and body needles */
	size_t n_body;
};

/* The needles of f that a match must hold (not those under a NOT). */
static void collect_terms(const struct fnode *f, struct terms *t)
{
	if (f->k == F_NOT)
		return;
	if (f->str != NULL && (f->k == F_TEXT || f->k == F_SUBJECT) &&
	    t->n_subject < FILTER_MAX_NODES)
		t->subject[t->n_subject++] = f->str;
	if (f->str != NULL && (f->k == F_TEXT || f->k == F_BODY) && t->n_body < FILTER_MAX_NODES)
		t->body[t->n_body++] = f->str;
	for (size_t i = 0; i < f->n_kids; i++)
		collect_terms(&f->kids[i], t);
}

/* Appends text[from..to) HTML-escaped (RFC 8621 5.1), the spans wrapped
 * in <mark></mark>, stopping before the output would pass max octets (at
 * a character boundary, never inside a mark).  Whether a mark was
 * written. */
static bool render(const char *text, size_t from, size_t to, const struct textmatch_span *sp,
		   size_t n_sp, size_t max, struct buf *out)
{
	bool marked = false;
	size_t k = 0;
	while (k < n_sp && sp[k].end <= from)
		k++;
	size_t i = from;
	while (i < to) {
		bool in = k < n_sp && sp[k].start <= i;
		size_t end = in                             ? (sp[k].end < to ? sp[k].end : to)
			     : k < n_sp && sp[k].start < to ? sp[k].start
							    : to;
		struct buf piece = BUF_INIT;
		if (in)
			(void)buf_puts(&piece, "<mark>");
		size_t j = i;
		while (j < end) {
			char c = text[j];
			size_t before = piece.len;
			(void)(c == '&'   ? buf_puts(&piece, "&amp;")
			       : c == '<' ? buf_puts(&piece, "&lt;")
			       : c == '>' ? buf_puts(&piece, "&gt;")
					  : buf_putc(&piece, c));
			j++;
			/* outside a mark, stop at the last character that fits */
			if (!in && out->len + piece.len > max) {
				piece.len = before;
				j--;
				while (piece.len > 0 && j > i &&
				       ((unsigned char)text[j] & 0xC0) == 0x80) {
					piece.len--;
					j--;
				}
				break;
			}
		}
		if (in)
			(void)buf_puts(&piece, "</mark>");
		bool fits = out->len + piece.len <= max;
		if (fits)
			(void)buf_append(out, piece.data ? piece.data : "", piece.len);
		buf_free(&piece);
		if (!fits || j < end)
			break;
		if (in) {
			marked = true;
			k++;
		}
		i = end;
	}
	return marked;
}

struct body_text {
	struct buf b;
};

static int body_part(void *ctx, const char *ctype, const char *text, size_t len)
{
	struct body_text *bt = ctx;
	if (strncmp(ctype, "text/", 5) != 0)
		return 0;
	if (strcmp(ctype, "text/html") == 0)
		(void)textmatch_html_text(text, len, &bt->b);
	else
		(void)buf_append(&bt->b, text, len);
	(void)buf_putc(&bt->b, ' ');
	return 0;
}

/* The text parts of t with white space runs made one space. */
static void preview_text(const struct mime_tree *t, struct buf *out)
{
	struct body_text bt = {BUF_INIT};
	(void)mime_body_walk(t, MIME_SEARCH_BODY_MAX, body_part, &bt);
	bool space = true;
	for (size_t i = 0; i < bt.b.len; i++) {
		char c = bt.b.data[i];
		bool ws = c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
		if (ws && space)
			continue;
		(void)buf_putc(out, ws ? ' ' : c);
		space = ws;
	}
	while (out->len > 0 && out->data[out->len - 1] == ' ')
		out->len--;
	buf_free(&bt.b);
}

/* The SearchSnippet of the Email file_id (its file parsed). */
static json_t *snippet(struct store_account *a, const char *file_id, const struct terms *t)
{
	json_t *o = json_object();
	char eid[32];
	snprintf(eid, sizeof eid, "E%s", file_id);
	json_object_set_new(o, "emailId", json_string(eid));
	json_t *subject = json_null(), *preview = json_null();
	struct store_jmapq_email e;
	memset(&e, 0, sizeof e);
	snprintf(e.file_id, sizeof e.file_id, "%s", file_id);
	struct ectx x = {.a = a, .e = &e};
	struct mime_tree *tree = ectx_tree(&x);
	struct buf v = BUF_INIT, out = BUF_INIT;
	struct textmatch_span *sp = NULL;
	size_t n_sp = 0;
	if (tree != NULL && t->n_subject > 0) {
		ectx_field(&x, "Subject", &v);
		textmatch_find(v.data ? v.data : "", v.len, t->subject, t->n_subject, &sp, &n_sp);
		if (n_sp > 0 && render(v.data, 0, v.len, sp, n_sp, SIZE_MAX, &out))
			subject = json_stringn(out.data, out.len);
		free(sp);
		sp = NULL;
	}
	if (tree != NULL && t->n_body > 0) {
		buf_reset(&v);
		buf_reset(&out);
		preview_text(tree, &v);
		textmatch_find(v.data ? v.data : "", v.len, t->body, t->n_body, &sp, &n_sp);
		if (n_sp > 0) {
			/* from a little before the first match, at a word start */
			size_t from = sp[0].start > 40 ? sp[0].start - 40 : 0;
			while (from > 0 && from < sp[0].start && v.data[from - 1] != ' ')
				from++;
			if (render(v.data, from, v.len, sp, n_sp, PREVIEW_MAX, &out))
				preview = json_stringn(out.data, out.len);
		}
		free(sp);
	}
	/* a value that is not UTF-8 cannot be a JSON string: null */
	json_object_set_new(o, "subject", subject != NULL ? subject : json_null());
	json_object_set_new(o, "preview", preview != NULL ? preview : json_null());
	buf_free(&v);
	buf_free(&out);
	ectx_free(&x);
	return o;
}

json_t *jmap_search_snippet_get(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId", "filter", "emailIds", NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	json_t *ids = json_object_get(args, "emailIds");
	if (!json_is_array(ids))
		return jmap_mail_fail(error, "invalidArguments", "emailIds (Id[]) is required");
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id)
	{
		if (!json_is_string(id))
			return jmap_mail_fail(error, "invalidArguments", "emailIds is Id[]");
	}
	if (json_array_size(ids) > JMAP_MAX_OBJECTS_IN_GET)
		return jmap_mail_fail(error, "requestTooLarge",
				      "more emailIds than maxObjectsInGet");
	struct query q;
	struct sort s;
	if (!parse_query(args, &q, &s, error)) {
		query_free(&q);
		sort_free(&s);
		return NULL;
	}
	sort_free(&s);
	const struct jmap_mail_ctx *c = env->methods_ctx;
	char state[24];
	if (!jmap_mail_sync_state(env, state, NULL, error)) {
		query_free(&q);
		return NULL;
	}
	struct terms t;
	memset(&t, 0, sizeof t);
	if (q.has_filter)
		collect_terms(&q.root, &t);
	json_t *list = json_array(), *not_found = json_array();
	json_array_foreach(ids, i, id)
	{
		char fid[25], err[256];
		struct store_jmap_copy *copies = NULL;
		size_t n = 0;
		int r = jmap_mail_parse_email_id(json_string_value(id), fid)
			    ? store_jmap_email_copies(c->account, fid, &copies, &n, err, sizeof err)
			    : 0;
		free(copies);
		if (r < 0) {
			log_error("jmap action=search_snippet error=\"%s\"", err);
			json_decref(list);
			json_decref(not_found);
			query_free(&q);
			return jmap_mail_fail(error, "serverFail", "the store failed");
		}
		if (r == 0)
			json_array_append(not_found, id);
		else
			json_array_append_new(list, snippet(c->account, fid, &t));
	}
	query_free(&q);
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set_new(r, "list", list);
	json_object_set_new(r, "notFound", not_found);
	return r;
}
