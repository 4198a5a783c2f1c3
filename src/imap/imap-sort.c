/*
 * imap-sort.c - SORT and UID SORT (RFC 5256 BASE.6.4.SORT; SORT=DISPLAY, RFC
 * 5957; ESORT, RFC 5267 3, through imap_esearch_put), and the sort
 * keys THREAD (imap-thread.c) shares.  Protocol layer (imap-private.h).
 *
 * The search keys go through the SEARCH evaluator (imap_search_parse /
 * imap_search_run in imap-search.c), so SORT matches exactly what SEARCH
 * would; header values come from its header cache (decoded header text in
 * the account database, filled from the message file when missing).  For
 * each match only its keys are kept, each string cut at SORT_STRING_MAX
 * octets, so a mailbox of n messages needs O(n) memory whatever its
 * headers hold.  Then one qsort, with the sequence number as the last
 * criterion (RFC 5256: messages that compare equal keep mailbox order).
 *
 * Strings compare as octets after sortkey_fold (i;unicode-casemap without
 * normalisation, as SEARCH matches); an absent field is the empty string,
 * which sorts first.
 */
#include <stdlib.h>
#include <string.h>

#include "imap-private.h"
#include "mime.h"
#include "sortkey.h"
#include "xalloc.h"

/* Sort criteria per command (repeats allowed, but bounded). */
#define SORT_MAX_CRITERIA 32

enum sort_key {
	SORT_ARRIVAL,
	SORT_CC,
	SORT_DATE,
	SORT_DISPLAYFROM,
	SORT_DISPLAYTO,
	SORT_FROM,
	SORT_SIZE,
	SORT_SUBJECT,
	SORT_TO,
};
/* String keys are stored in this order in struct sort_item. */
enum { STR_SUBJECT, STR_FROM, STR_TO, STR_CC, STR_DFROM, STR_DTO, STR_N };

struct sort_crit {
	enum sort_key key;
	bool reverse;
};

struct sort_item {
	uint32_t seq, uid;
	int64_t arrival, date;
	uint64_t size, modseq;
	char *str[STR_N]; /* folded, NUL-terminated; NULL when not a criterion */
};

struct sort_ctx {
	struct sort_crit crit[SORT_MAX_CRITERIA];
	size_t n_crit;
	bool need[STR_N];
	bool need_date;
	struct sort_item *items;
	size_t n, cap;
	uint64_t modseq; /* highest of the hits (RFC 7162 3.1.9) */
};

void imap_sort_field(const struct imap_search_hit *h, const char *name, struct buf *out)
{
	buf_reset(out);
	if (imap_search_header(h, name, out) < 0) {
		buf_reset(out);
		return;
	}
	const char *nl = out->data ? memchr(out->data, '\n', out->len) : NULL;
	if (nl != NULL)
		out->len = (size_t)(nl - out->data);
}

/* A string key: folded and cut at SORT_STRING_MAX octets (at a UTF-8
 * character boundary). */
static char *key_string(const char *p, size_t n)
{
	struct buf f = BUF_INIT;
	(void)sortkey_fold(p, n, &f);
	if (f.len > SORT_STRING_MAX) {
		size_t k = SORT_STRING_MAX;
		while (k > 0 && ((unsigned char)f.data[k] & 0xC0) == 0x80)
			k--;
		f.len = k;
	}
	return buf_steal(&f, NULL);
}

char *imap_sort_base_subject(const struct imap_search_hit *h, bool *reply)
{
	struct buf v = BUF_INIT, base = BUF_INIT;
	imap_sort_field(h, "Subject", &v);
	(void)sortkey_base_subject(v.data ? v.data : "", v.len, &base, reply);
	char *r = key_string(base.data ? base.data : "", base.len);
	buf_free(&v);
	buf_free(&base);
	return r;
}

int64_t imap_sort_sent_date(const struct imap_search_hit *h)
{
	struct buf v = BUF_INIT;
	int64_t t;
	imap_sort_field(h, "Date", &v);
	if (v.len == 0 || sortkey_sent_date(v.data, v.len, &t) < 0)
		t = h->m->internaldate; /* RFC 5256 2.2 */
	buf_free(&v);
	return t;
}

/* addr-mailbox of the first address of a field, folded; with display,
 * the RFC 5957 display name (ENVELOPE's addr-name, else local@domain). */
static char *first_mailbox(const struct imap_search_hit *h, const char *field, bool display)
{
	struct buf v = BUF_INIT, mb = BUF_INIT;
	imap_sort_field(h, field, &v);
	if (display)
		(void)mime_addr_first_display(v.data ? v.data : "", v.len, &mb);
	else
		(void)mime_addr_first_mailbox(v.data ? v.data : "", v.len, &mb);
	char *r = key_string(mb.data ? mb.data : "", mb.len);
	buf_free(&v);
	buf_free(&mb);
	return r;
}

static int sort_hit(void *ctx, const struct imap_search_hit *h)
{
	struct sort_ctx *c = ctx;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 256;
		c->items = xreallocarray(c->items, c->cap, sizeof *c->items);
	}
	struct sort_item *it = &c->items[c->n++];
	memset(it, 0, sizeof *it);
	it->seq = h->seq;
	it->uid = h->m->uid;
	it->arrival = h->m->internaldate;
	it->size = h->m->size;
	it->modseq = h->m->modseq;
	if (h->m->modseq > c->modseq)
		c->modseq = h->m->modseq;
	if (c->need_date)
		it->date = imap_sort_sent_date(h);
	if (c->need[STR_SUBJECT])
		it->str[STR_SUBJECT] = imap_sort_base_subject(h, NULL);
	static const char *const fields[STR_N] = {NULL, "From", "To", "Cc", "From", "To"};
	for (int k = STR_FROM; k < STR_N; k++)
		if (c->need[k])
			it->str[k] = first_mailbox(h, fields[k], k >= STR_DFROM);
	return 0;
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

/* qsort has no context argument; one sort runs at a time per process. */
static const struct sort_ctx *sort_current;

static int cmp_items(const void *pa, const void *pb)
{
	const struct sort_item *a = pa, *b = pb;
	const struct sort_ctx *c = sort_current;
	for (size_t i = 0; i < c->n_crit; i++) {
		int r = 0;
		switch (c->crit[i].key) {
		case SORT_ARRIVAL:
			r = cmp_i64(a->arrival, b->arrival);
			break;
		case SORT_DATE:
			r = cmp_i64(a->date, b->date);
			break;
		case SORT_SIZE:
			r = a->size < b->size ? -1 : a->size > b->size;
			break;
		case SORT_SUBJECT:
			r = strcmp(a->str[STR_SUBJECT], b->str[STR_SUBJECT]);
			break;
		case SORT_FROM:
			r = strcmp(a->str[STR_FROM], b->str[STR_FROM]);
			break;
		case SORT_TO:
			r = strcmp(a->str[STR_TO], b->str[STR_TO]);
			break;
		case SORT_CC:
			r = strcmp(a->str[STR_CC], b->str[STR_CC]);
			break;
		case SORT_DISPLAYFROM:
			r = strcmp(a->str[STR_DFROM], b->str[STR_DFROM]);
			break;
		case SORT_DISPLAYTO:
			r = strcmp(a->str[STR_DTO], b->str[STR_DTO]);
			break;
		}
		if (r != 0)
			return c->crit[i].reverse ? -r : r;
	}
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

int imap_sort_charset(struct imap_cmdctx *x, size_t i)
{
	if (i >= x->n || !imap_tok_is_string(&x->a[i])) {
		imap_bad(x, "Missing charset");
		return -1;
	}
	if (!imap_tok_eq(&x->a[i], "UTF-8") && !imap_tok_eq(&x->a[i], "US-ASCII")) {
		imap_reply(x->s, "%s NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset", x->tag);
		return -1;
	}
	return 0;
}

/* The sort program "(" sort-criterion *(SP sort-criterion) ")" at
 * x->a[*next..]: 0 and *next (index after it), or -1 after replying BAD. */
static int parse_criteria(struct imap_cmdctx *x, struct sort_ctx *c, size_t *next)
{
	size_t i0 = *next;
	static const struct {
		const char *name;
		enum sort_key key;
	} keys[] = {
	    {"ARRIVAL", SORT_ARRIVAL},
	    {"CC", SORT_CC},
	    {"DATE", SORT_DATE},
	    {"DISPLAYFROM", SORT_DISPLAYFROM}, /* RFC 5957 */
	    {"DISPLAYTO", SORT_DISPLAYTO},
	    {"FROM", SORT_FROM},
	    {"SIZE", SORT_SIZE},
	    {"SUBJECT", SORT_SUBJECT},
	    {"TO", SORT_TO},
	};
	size_t i = i0;
	if (i0 >= x->n || x->a[i0].type != IMAP_TOK_LPAREN) {
		imap_bad(x, "SORT needs a list of sort criteria");
		return -1;
	}
	for (i = i0 + 1; i < x->n && x->a[i].type != IMAP_TOK_RPAREN; i++) {
		bool rev = false;
		if (imap_tok_eq(&x->a[i], "REVERSE") && x->a[i].type == IMAP_TOK_ATOM) {
			rev = true;
			i++;
		}
		size_t k = 0;
		while (i < x->n && x->a[i].type == IMAP_TOK_ATOM &&
		       k < sizeof keys / sizeof keys[0] && !imap_tok_eq(&x->a[i], keys[k].name))
			k++;
		if (i >= x->n || x->a[i].type != IMAP_TOK_ATOM ||
		    k == sizeof keys / sizeof keys[0]) {
			imap_bad(x, "Unknown sort criterion");
			return -1;
		}
		if (c->n_crit == SORT_MAX_CRITERIA) {
			imap_bad(x, "Too many sort criteria");
			return -1;
		}
		c->crit[c->n_crit].key = keys[k].key;
		c->crit[c->n_crit].reverse = rev;
		c->n_crit++;
		switch (keys[k].key) {
		case SORT_SUBJECT:
			c->need[STR_SUBJECT] = true;
			break;
		case SORT_FROM:
			c->need[STR_FROM] = true;
			break;
		case SORT_TO:
			c->need[STR_TO] = true;
			break;
		case SORT_CC:
			c->need[STR_CC] = true;
			break;
		case SORT_DISPLAYFROM:
			c->need[STR_DFROM] = true;
			break;
		case SORT_DISPLAYTO:
			c->need[STR_DTO] = true;
			break;
		case SORT_DATE:
			c->need_date = true;
			break;
		default:
			break;
		}
	}
	if (i >= x->n || c->n_crit == 0) {
		imap_bad(x, "Invalid sort criteria");
		return -1;
	}
	*next = i + 1;
	return 0;
}

static void sort_free(struct sort_ctx *c)
{
	for (size_t i = 0; i < c->n; i++)
		for (int k = 0; k < STR_N; k++)
			free(c->items[i].str[k]);
	free(c->items);
	c->items = NULL;
	c->n = c->cap = 0;
}

void imap_cmd_sort(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	struct sort_ctx c;
	memset(&c, 0, sizeof c);
	size_t i = 0;
	unsigned ret = 0;
	int rr = imap_search_return(x, &i, &ret); /* ESORT (RFC 5267 3.1) */
	if (rr < 0)
		return;
	if (ret & IMAP_RET_SAVE) {
		imap_bad(x, "SAVE is not supported in SORT");
		return;
	}
	if (parse_criteria(x, &c, &i) < 0 || imap_sort_charset(x, i) < 0)
		return;
	struct imap_search *q;
	if (imap_search_parse(x, i + 1, &q) < 0)
		return;
	bool hdr = c.need_date;
	for (int k = 0; k < STR_N; k++)
		hdr = hdr || c.need[k];
	char err[256];
	int r = imap_search_run(s, q, hdr, sort_hit, &c, err, sizeof err);
	bool modseq = imap_search_has_modseq(q);
	imap_search_free(&q);
	if (r < 0) {
		sort_free(&c);
		imap_no_store(x, "sort", err);
		return;
	}
	sort_current = &c;
	if (c.n > 1)
		qsort(c.items, c.n, sizeof *c.items, cmp_items);
	sort_current = NULL;
	struct buf b = BUF_INIT;
	if (rr > 0) {
		uint32_t *hits = xcalloc(c.n ? c.n : 1, sizeof *hits);
		uint64_t *ms = xcalloc(c.n ? c.n : 1, sizeof *ms);
		for (size_t k = 0; k < c.n; k++) {
			hits[k] = x->uid ? c.items[k].uid : c.items[k].seq;
			ms[k] = c.items[k].modseq;
		}
		imap_esearch_put(&b, x, ret, hits, modseq ? ms : NULL, c.n);
		free(hits);
		free(ms);
	} else {
		buf_puts(&b, "* SORT");
		for (size_t k = 0; k < c.n; k++)
			buf_printf(&b, " %lu",
				   (unsigned long)(x->uid ? c.items[k].uid : c.items[k].seq));
		if (modseq && c.n > 0)
			buf_printf(&b, " (MODSEQ %llu)", (unsigned long long)c.modseq);
		buf_puts(&b, "\r\n");
	}
	imap_send(s, b.data, b.len);
	buf_free(&b);
	sort_free(&c);
	imap_reply(s, "%s OK Sort completed", x->tag);
}
