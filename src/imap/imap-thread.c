/*
 * imap-thread.c - THREAD and UID THREAD (RFC 5256 BASE.6.4.THREAD) with
 * the ORDEREDSUBJECT and REFERENCES algorithms.  Protocol layer
 * (imap-private.h); the search runs through the SEARCH evaluator and the
 * keys come from imap-sort.c and src/mail/sortkey.c.
 *
 * REFERENCES builds the RFC's tree of containers ("nodes": a message or a
 * dummy for a Message ID no searched message has) while the search
 * delivers matches in sequence order, which is exactly the order step 1
 * asks for, so a message's references need not be kept.  Message IDs are
 * interned once in a hash table; a message contributes at most its own ID
 * and the last THREAD_MAX_REFS references, and all IDs together at most
 * THREAD_ID_BYTES octets (past that, new IDs are not interned: the
 * message gets a unique ID and unknown references are ignored), so memory
 * is O(messages).  Every walk over the tree (pruning, sorting, output) is
 * iterative: a thread may be as deep as the mailbox is large.
 */
#include <stdlib.h>
#include <string.h>

#include "imap-private.h"
#include "sortkey.h"
#include "xalloc.h"

/* References of one message used (the last ones). */
#define THREAD_MAX_REFS 64
/* Octets of interned Message IDs per command. */
#define THREAD_ID_BYTES (64u * 1024 * 1024)

#define NIL UINT32_MAX

struct tmsg {
	uint32_t seq, uid;
	int64_t date;
	char *subj; /* base subject, folded */
	bool reply; /* RFC 5256: the base subject extraction removed a reply/forward marker */
};

struct node {
	uint32_t msg; /* index into msgs, NIL for a dummy */
	uint32_t parent, first, last, prev, next;
	uint32_t n_kids;
	char *id; /* interned Message ID (owned), NULL if none */
};

/* Open addressing from strings to node (or message) indexes. */
struct strmap {
	uint32_t *slot; /* NIL: empty */
	size_t cap, n;
};

struct thread_ctx {
	bool refs; /* REFERENCES, else ORDEREDSUBJECT */
	struct tmsg *msgs;
	size_t n_msgs, cap_msgs;
	struct node *nodes;
	size_t n_nodes, cap_nodes;
	struct strmap ids; /* Message ID -> node */
	size_t id_bytes;
};

/* ------------------------------------------------------------ strmap */

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* The slot of key (its value or an empty slot); key_of gives the string
 * of a stored value. */
static size_t strmap_find(const struct strmap *m, const char *key,
			  const char *(*key_of)(const void *ctx, uint32_t v), const void *ctx)
{
	size_t i = (size_t)str_hash(key) & (m->cap - 1);
	while (m->slot[i] != NIL && strcmp(key_of(ctx, m->slot[i]), key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void strmap_grow(struct strmap *m, const char *(*key_of)(const void *ctx, uint32_t v),
			const void *ctx)
{
	if (m->cap != 0 && (m->n + 1) * 2 <= m->cap)
		return;
	struct strmap o = *m;
	m->cap = o.cap ? o.cap * 2 : 1024;
	m->slot = xreallocarray(NULL, m->cap, sizeof *m->slot);
	for (size_t i = 0; i < m->cap; i++)
		m->slot[i] = NIL;
	for (size_t i = 0; i < o.cap; i++)
		if (o.slot[i] != NIL)
			m->slot[strmap_find(m, key_of(ctx, o.slot[i]), key_of, ctx)] = o.slot[i];
	free(o.slot);
}

/* -------------------------------------------------------------- tree */

static uint32_t node_new(struct thread_ctx *t, uint32_t msg)
{
	if (t->n_nodes == t->cap_nodes) {
		t->cap_nodes = t->cap_nodes ? t->cap_nodes * 2 : 256;
		t->nodes = xreallocarray(t->nodes, t->cap_nodes, sizeof *t->nodes);
	}
	struct node *n = &t->nodes[t->n_nodes];
	memset(n, 0, sizeof *n);
	n->msg = msg;
	n->parent = n->first = n->last = n->prev = n->next = NIL;
	return (uint32_t)t->n_nodes++;
}

static void unlink_node(struct thread_ctx *t, uint32_t c)
{
	struct node *n = &t->nodes[c];
	if (n->parent == NIL)
		return;
	struct node *p = &t->nodes[n->parent];
	if (n->prev != NIL)
		t->nodes[n->prev].next = n->next;
	else
		p->first = n->next;
	if (n->next != NIL)
		t->nodes[n->next].prev = n->prev;
	else
		p->last = n->prev;
	p->n_kids--;
	n->parent = n->prev = n->next = NIL;
}

/* Appends c (without a parent) to p's children. */
static void add_child(struct thread_ctx *t, uint32_t p, uint32_t c)
{
	struct node *pn = &t->nodes[p], *cn = &t->nodes[c];
	cn->parent = p;
	cn->prev = pn->last;
	cn->next = NIL;
	if (pn->last != NIL)
		t->nodes[pn->last].next = c;
	else
		pn->first = c;
	pn->last = c;
	pn->n_kids++;
}

/* Puts c (without a parent) where old is among its siblings; old loses
 * its parent. */
static void replace_node(struct thread_ctx *t, uint32_t old, uint32_t c)
{
	struct node *o = &t->nodes[old], *n = &t->nodes[c];
	n->parent = o->parent;
	n->prev = o->prev;
	n->next = o->next;
	struct node *p = &t->nodes[o->parent];
	if (o->prev != NIL)
		t->nodes[o->prev].next = c;
	else
		p->first = c;
	if (o->next != NIL)
		t->nodes[o->next].prev = c;
	else
		p->last = c;
	o->parent = o->prev = o->next = NIL;
}

/* True if a is b or one of b's descendants. */
static bool is_within(const struct thread_ctx *t, uint32_t a, uint32_t b)
{
	if (t->nodes[b].first == NIL) /* cheap: b has no descendants */
		return a == b;
	for (; a != NIL; a = t->nodes[a].parent)
		if (a == b)
			return true;
	return false;
}

static const char *node_id(const void *ctx, uint32_t v)
{
	const struct thread_ctx *t = ctx;
	return t->nodes[v].id;
}

/* The node for Message ID id: found, else a new dummy (interned); NIL
 * when the ID budget is used up. */
static uint32_t id_node(struct thread_ctx *t, const char *id, size_t len, bool *created)
{
	*created = false;
	if (t->ids.cap != 0) {
		size_t i = strmap_find(&t->ids, id, node_id, t);
		if (t->ids.slot[i] != NIL)
			return t->ids.slot[i];
	}
	if (t->id_bytes + len + 1 > THREAD_ID_BYTES)
		return NIL;
	strmap_grow(&t->ids, node_id, t);
	uint32_t c = node_new(t, NIL);
	t->nodes[c].id = xmemdup0(id, len);
	t->id_bytes += len + 1;
	t->ids.slot[strmap_find(&t->ids, id, node_id, t)] = c;
	t->ids.n++;
	*created = true;
	return c;
}

/* RFC 5256 REFERENCES step 1 for one message (idx), in sequence order. */
static void link_message(struct thread_ctx *t, const struct imap_search_hit *h, uint32_t idx)
{
	struct buf v = BUF_INIT, id = BUF_INIT;
	bool created;
	size_t pos = 0;

	/* its own container: a dummy waiting for this ID, else a new one (a
	 * unique ID when it has none or a lower message took it) */
	uint32_t me = NIL;
	imap_sort_field(h, "Message-ID", &v);
	if (sortkey_msgid_next(v.data ? v.data : "", v.len, &pos, &id) == 1) {
		me = id_node(t, id.data, id.len, &created);
		if (me != NIL && !created && t->nodes[me].msg != NIL)
			me = NIL; /* a duplicate */
	}
	if (me == NIL)
		me = node_new(t, idx);
	t->nodes[me].msg = idx;

	/* its references: References, else the first of In-Reply-To */
	uint32_t refs[THREAD_MAX_REFS];
	size_t n_refs = 0, seen = 0;
	imap_sort_field(h, "References", &v);
	pos = 0;
	buf_reset(&id);
	while (sortkey_msgid_next(v.data ? v.data : "", v.len, &pos, &id) == 1) {
		uint32_t r = id_node(t, id.data, id.len, &created);
		buf_reset(&id);
		if (r == NIL)
			continue;
		if (n_refs == THREAD_MAX_REFS) { /* keep the last ones */
			memmove(refs, refs + 1, sizeof refs - sizeof refs[0]);
			n_refs--;
		}
		refs[n_refs++] = r;
		seen++;
	}
	if (seen == 0) {
		imap_sort_field(h, "In-Reply-To", &v);
		pos = 0;
		if (sortkey_msgid_next(v.data ? v.data : "", v.len, &pos, &id) == 1) {
			uint32_t r = id_node(t, id.data, id.len, &created);
			if (r != NIL)
				refs[n_refs++] = r;
		}
	}
	buf_free(&v);
	buf_free(&id);

	/* (A) each reference the parent of the next, unless that one has a
	 * parent already or the link would make a loop */
	for (size_t k = 0; k + 1 < n_refs; k++) {
		uint32_t p = refs[k], c = refs[k + 1];
		if (t->nodes[c].parent == NIL && !is_within(t, p, c))
			add_child(t, p, c);
	}
	/* (B) the last reference is the parent of this message */
	unlink_node(t, me);
	if (n_refs > 0 && !is_within(t, refs[n_refs - 1], me))
		add_child(t, refs[n_refs - 1], me);
}

static int thread_hit(void *ctx, const struct imap_search_hit *h)
{
	struct thread_ctx *t = ctx;
	if (t->n_msgs == t->cap_msgs) {
		t->cap_msgs = t->cap_msgs ? t->cap_msgs * 2 : 256;
		t->msgs = xreallocarray(t->msgs, t->cap_msgs, sizeof *t->msgs);
	}
	uint32_t idx = (uint32_t)t->n_msgs++;
	struct tmsg *m = &t->msgs[idx];
	m->seq = h->seq;
	m->uid = h->m->uid;
	m->date = imap_sort_sent_date(h);
	m->subj = imap_sort_base_subject(h, &m->reply);
	if (t->refs)
		link_message(t, h, idx);
	return 0;
}

/* ------------------------------------------------------ tree passes */

/* The nodes under root (not root itself) in post-order: children before
 * their parent.  *n gets the count; the caller frees the array. */
static uint32_t *post_order(const struct thread_ctx *t, uint32_t root, size_t *n)
{
	uint32_t *out = xreallocarray(NULL, t->n_nodes + 1, sizeof *out);
	uint32_t *stack = xreallocarray(NULL, t->n_nodes + 1, sizeof *stack);
	size_t o = 0, sp = 0;
	/* reverse pre-order (node, then children last-to-first) read backwards
	 * is a post-order */
	for (uint32_t c = t->nodes[root].first; c != NIL; c = t->nodes[c].next)
		stack[sp++] = c;
	while (sp > 0) {
		uint32_t x = stack[--sp];
		out[o++] = x;
		for (uint32_t c = t->nodes[x].first; c != NIL; c = t->nodes[c].next)
			stack[sp++] = c;
	}
	free(stack);
	for (size_t i = 0; i < o / 2; i++) {
		uint32_t tmp = out[i];
		out[i] = out[o - 1 - i];
		out[o - 1 - i] = tmp;
	}
	*n = o;
	return out;
}

/* Step 3 on the children of p: dummies without children go, dummies with
 * children are replaced by them (at the root level only if there is one). */
static void prune_children(struct thread_ctx *t, uint32_t p, bool is_root)
{
	uint32_t c = t->nodes[p].first;
	while (c != NIL) {
		uint32_t next = t->nodes[c].next;
		struct node *n = &t->nodes[c];
		if (n->msg == NIL && (n->n_kids == 0 || !is_root || n->n_kids == 1)) {
			while (n->first != NIL) {
				uint32_t k = n->first;
				unlink_node(t, k);
				add_child(t, p, k);
			}
			unlink_node(t, c);
		}
		c = next;
	}
}

/* The message a node sorts by: its own, or a dummy's first child's. */
static const struct tmsg *sort_msg(const struct thread_ctx *t, uint32_t c)
{
	while (t->nodes[c].msg == NIL && t->nodes[c].first != NIL)
		c = t->nodes[c].first;
	return t->nodes[c].msg == NIL ? NULL : &t->msgs[t->nodes[c].msg];
}

static const struct thread_ctx *cmp_ctx; /* qsort has no context argument */

/* Sent date, then sequence number (RFC 5256 2.2). */
static int cmp_nodes(const void *pa, const void *pb)
{
	const struct tmsg *a = sort_msg(cmp_ctx, *(const uint32_t *)pa);
	const struct tmsg *b = sort_msg(cmp_ctx, *(const uint32_t *)pb);
	if (a == NULL || b == NULL)
		return (a == NULL) - (b == NULL);
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts p's children by cmp_nodes. */
static void sort_children(struct thread_ctx *t, uint32_t p, uint32_t **tmp, size_t *tmp_cap)
{
	struct node *pn = &t->nodes[p];
	if (pn->n_kids < 2)
		return;
	if (*tmp_cap < pn->n_kids) {
		*tmp_cap = pn->n_kids;
		*tmp = xreallocarray(*tmp, *tmp_cap, sizeof **tmp);
	}
	size_t k = 0;
	for (uint32_t c = pn->first; c != NIL; c = t->nodes[c].next)
		(*tmp)[k++] = c;
	cmp_ctx = t;
	qsort(*tmp, k, sizeof **tmp, cmp_nodes);
	cmp_ctx = NULL;
	pn->first = pn->last = NIL;
	pn->n_kids = 0;
	for (size_t i = 0; i < k; i++) {
		t->nodes[(*tmp)[i]].parent = NIL;
		add_child(t, p, (*tmp)[i]);
	}
}

/* The thread subject of a root child (its own, or a dummy's first
 * child's); "" when none. */
static const char *thread_subject(const struct thread_ctx *t, uint32_t c)
{
	const struct tmsg *m = sort_msg(t, c);
	return m != NULL ? m->subj : "";
}

static const char *subj_key(const void *ctx, uint32_t v)
{
	return thread_subject(ctx, v);
}

static bool is_dummy(const struct thread_ctx *t, uint32_t c)
{
	return t->nodes[c].msg == NIL;
}

static bool is_reply(const struct thread_ctx *t, uint32_t c)
{
	return !is_dummy(t, c) && t->msgs[t->nodes[c].msg].reply;
}

/* Step 5: threads under root with the same base subject are merged. */
static void merge_subjects(struct thread_ctx *t, uint32_t root)
{
	struct strmap m = {0};
	/* (B) one thread per subject */
	for (uint32_t c = t->nodes[root].first; c != NIL; c = t->nodes[c].next) {
		const char *s = thread_subject(t, c);
		if (*s == '\0')
			continue;
		strmap_grow(&m, subj_key, t);
		size_t i = strmap_find(&m, s, subj_key, t);
		if (m.slot[i] == NIL) {
			m.slot[i] = c;
			m.n++;
		} else if (!is_dummy(t, m.slot[i]) &&
			   (is_dummy(t, c) || (is_reply(t, m.slot[i]) && !is_reply(t, c)))) {
			m.slot[i] = c;
		}
	}
	/* (C) merge the others into it */
	for (uint32_t c = t->nodes[root].first, next; c != NIL; c = next) {
		next = t->nodes[c].next;
		const char *s = thread_subject(t, c);
		if (*s == '\0')
			continue;
		size_t i = strmap_find(&m, s, subj_key, t);
		uint32_t k = m.slot[i];
		if (k == NIL || k == c)
			continue;
		if (is_dummy(t, k) && is_dummy(t, c)) {
			while (t->nodes[c].first != NIL) {
				uint32_t x = t->nodes[c].first;
				unlink_node(t, x);
				add_child(t, k, x);
			}
			unlink_node(t, c);
		} else if (is_dummy(t, k) || (is_reply(t, c) && !is_reply(t, k))) {
			unlink_node(t, c);
			add_child(t, k, c);
		} else {
			/* a new dummy takes k's place, with k and c under it; the
			 * table key (the dummy's first child's subject) stays the
			 * same, as k stays the first child */
			uint32_t d = node_new(t, NIL);
			replace_node(t, k, d);
			unlink_node(t, c);
			add_child(t, d, k);
			add_child(t, d, c);
			m.slot[i] = d;
			if (next == k)
				next = d;
		}
	}
	free(m.slot);
}

/* ----------------------------------------------------------- output */

static void put_num(const struct thread_ctx *t, uint32_t c, bool uid, struct buf *out)
{
	const struct tmsg *m = &t->msgs[t->nodes[c].msg];
	buf_printf(out, "%lu", (unsigned long)(uid ? m->uid : m->seq));
}

/* Writes c and its only-child chain ("3 6"); returns the last node of the
 * chain, after a " " when that one is a message with several children. */
static uint32_t put_chain(const struct thread_ctx *t, uint32_t c, bool uid, struct buf *out)
{
	if (!is_dummy(t, c)) {
		put_num(t, c, uid, out);
		while (t->nodes[c].n_kids == 1) {
			c = t->nodes[c].first;
			buf_putc(out, ' ');
			put_num(t, c, uid, out);
		}
		if (t->nodes[c].n_kids > 1)
			buf_putc(out, ' ');
	}
	return c;
}

/* "(" thread ")" for each child of root (RFC 5256 thread-list), with an
 * explicit stack of sibling cursors. */
static void put_threads(const struct thread_ctx *t, uint32_t root, bool uid, struct buf *out)
{
	uint32_t *stack = xreallocarray(NULL, t->n_nodes + 1, sizeof *stack);
	for (uint32_t top = t->nodes[root].first; top != NIL; top = t->nodes[top].next) {
		size_t sp = 0;
		buf_putc(out, '(');
		uint32_t x = put_chain(t, top, uid, out);
		if (t->nodes[x].n_kids == 0) {
			buf_putc(out, ')');
			continue;
		}
		stack[sp++] = t->nodes[x].first;
		while (sp > 0) {
			uint32_t c = stack[sp - 1];
			if (c == NIL) {
				sp--;
				buf_putc(out, ')');
				continue;
			}
			stack[sp - 1] = t->nodes[c].next;
			buf_putc(out, '(');
			uint32_t y = put_chain(t, c, uid, out);
			if (t->nodes[y].n_kids > 0)
				stack[sp++] = t->nodes[y].first;
			else
				buf_putc(out, ')');
		}
	}
	free(stack);
}

/* -------------------------------------------------------- algorithms */

static void run_references(struct thread_ctx *t, uint32_t root)
{
	/* (2) the root adopts every container without a parent */
	size_t n_before = t->n_nodes - 1; /* root is the last node */
	for (size_t c = 0; c < n_before; c++)
		if (t->nodes[c].parent == NIL)
			add_child(t, root, (uint32_t)c);
	/* (3) prune dummies, bottom-up */
	size_t n;
	uint32_t *order = post_order(t, root, &n);
	for (size_t i = 0; i < n; i++)
		prune_children(t, order[i], false);
	prune_children(t, root, true);
	free(order);
	/* (4) sort the threads (a dummy's children first) */
	uint32_t *tmp = NULL;
	size_t tmp_cap = 0;
	for (uint32_t c = t->nodes[root].first; c != NIL; c = t->nodes[c].next)
		if (is_dummy(t, c))
			sort_children(t, c, &tmp, &tmp_cap);
	sort_children(t, root, &tmp, &tmp_cap);
	/* (5) merge threads by subject */
	merge_subjects(t, root);
	/* (6) sort every set of siblings, the youngest first */
	order = post_order(t, root, &n);
	for (size_t i = 0; i < n; i++)
		sort_children(t, order[i], &tmp, &tmp_cap);
	sort_children(t, root, &tmp, &tmp_cap);
	free(order);
	free(tmp);
}

static const struct thread_ctx *os_ctx; /* for cmp_subject */

/* Base subject, then sent date, then sequence number. */
static int cmp_subject(const void *pa, const void *pb)
{
	const struct tmsg *a = &os_ctx->msgs[*(const uint32_t *)pa];
	const struct tmsg *b = &os_ctx->msgs[*(const uint32_t *)pb];
	int r = strcmp(a->subj, b->subj);
	if (r != 0)
		return r;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* ORDEREDSUBJECT: sorted by subject and date, split by subject; the first
 * message of each thread is the parent of all the others; threads sorted
 * by the date of their first message. */
static void run_orderedsubject(struct thread_ctx *t, uint32_t root)
{
	uint32_t *idx = xreallocarray(NULL, t->n_msgs + 1, sizeof *idx);
	for (size_t i = 0; i < t->n_msgs; i++)
		idx[i] = (uint32_t)i;
	os_ctx = t;
	qsort(idx, t->n_msgs, sizeof *idx, cmp_subject);
	os_ctx = NULL;
	uint32_t head = NIL;
	const char *hs = NULL;
	for (size_t i = 0; i < t->n_msgs; i++) {
		uint32_t c = node_new(t, idx[i]);
		const char *s = t->msgs[idx[i]].subj;
		if (head != NIL && strcmp(s, hs) == 0) {
			add_child(t, head, c);
			continue;
		}
		add_child(t, root, c);
		head = c;
		hs = s;
	}
	free(idx);
	uint32_t *tmp = NULL;
	size_t tmp_cap = 0;
	sort_children(t, root, &tmp, &tmp_cap);
	free(tmp);
}

static void thread_free(struct thread_ctx *t)
{
	for (size_t i = 0; i < t->n_msgs; i++)
		free(t->msgs[i].subj);
	for (size_t i = 0; i < t->n_nodes; i++)
		free(t->nodes[i].id);
	free(t->msgs);
	free(t->nodes);
	free(t->ids.slot);
	memset(t, 0, sizeof *t);
}

void imap_cmd_thread(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	struct thread_ctx t;
	memset(&t, 0, sizeof t);
	if (x->n == 0 || x->a[0].type != IMAP_TOK_ATOM) {
		imap_bad(x, "THREAD needs an algorithm");
		return;
	}
	if (imap_tok_eq(&x->a[0], "REFERENCES")) {
		t.refs = true;
	} else if (!imap_tok_eq(&x->a[0], "ORDEREDSUBJECT")) {
		imap_bad(x, "Unknown threading algorithm");
		return;
	}
	if (imap_sort_charset(x, 1) < 0)
		return;
	struct imap_search *q;
	if (imap_search_parse(x, 2, &q) < 0)
		return;
	char err[256];
	int r = imap_search_run(s, q, true, thread_hit, &t, err, sizeof err);
	imap_search_free(&q);
	if (r < 0) {
		thread_free(&t);
		imap_no_store(x, "thread", err);
		return;
	}
	uint32_t root = node_new(&t, NIL);
	if (t.refs)
		run_references(&t, root);
	else
		run_orderedsubject(&t, root);
	struct buf b = BUF_INIT;
	buf_puts(&b, "* THREAD");
	if (t.nodes[root].first != NIL)
		buf_putc(&b, ' ');
	put_threads(&t, root, x->uid, &b);
	buf_puts(&b, "\r\n");
	imap_send(s, b.data, b.len);
	buf_free(&b);
	thread_free(&t);
	imap_reply(s, "%s OK Thread completed", x->tag);
}
