/*
 * imap-message.c - IMAP commands that change messages of the selected
 * mailbox: STORE, COPY, MOVE (RFC 6851), EXPUNGE, UID EXPUNGE and CLOSE,
 * with the RFC 4315 UIDPLUS response codes.  Each command is one store
 * transaction (store-imap.c), so it happens entirely or not at all.
 * Protocol layer (imap-private.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-private.h"
#include "log.h"
#include "strutil.h"
#include "xalloc.h"

/* The view's uids for an argument set: 0 and *uids, *n; or -1 (replied). */
static int set_uids(struct imap_cmdctx *x, const struct imap_tok *t, uint32_t **uids, size_t *n)
{
	struct imap_seqset set;
	if (imap_seqset_arg(x, t, &set) < 0)
		return -1;
	uint32_t *seqs;
	*n = imap_set_seqs(x->s->sel, &set, &seqs);
	imap_seqset_free(&set);
	*uids = xcalloc(*n ? *n : 1, sizeof **uids);
	for (size_t i = 0; i < *n; i++)
		(*uids)[i] = imap_view_uid(&x->s->sel->v, seqs[i]);
	free(seqs);
	return 0;
}

/* ------------------------------------------------------------- STORE */

struct store_ctx {
	struct imap_cmdctx *x;
	struct buf out;
	bool silent;
	const uint32_t *uids; /* the STORE's uids, ascending */
	const bool *modified; /* per uid: refused by UNCHANGEDSINCE */
	size_t n;
	struct buf refused;        /* MODIFIED set (RFC 7162 3.1.3) */
	uint32_t last_lo, last_hi; /* open range of refused */
};

/* Adds v (ascending) to the MODIFIED set being built. */
static void refused_add(struct store_ctx *c, uint32_t v)
{
	if (c->last_hi != 0 && v == c->last_hi + 1) {
		c->last_hi = v;
		return;
	}
	if (c->last_hi != 0) {
		if (c->refused.len)
			buf_putc(&c->refused, ',');
		if (c->last_lo == c->last_hi)
			buf_printf(&c->refused, "%lu", (unsigned long)c->last_lo);
		else
			buf_printf(&c->refused, "%lu:%lu", (unsigned long)c->last_lo,
				   (unsigned long)c->last_hi);
	}
	c->last_lo = c->last_hi = v;
}

static bool was_refused(const struct store_ctx *c, uint32_t uid)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n && c->uids[lo] == uid && c->modified[lo];
}

static int stored_cb(void *ctx, const struct store_message *m)
{
	struct store_ctx *c = ctx;
	struct imap_session *s = c->x->s;
	uint32_t seq = imap_seq_of(s->sel, m->uid);
	if (seq == 0)
		return 0;
	bool refused = c->modified != NULL && was_refused(c, m->uid);
	if (refused)
		refused_add(c, c->x->uid ? m->uid : seq);
	/* .SILENT still answers the modseq to a CONDSTORE client (3.1.3);
	 * a refused message shows its flags so the client need not ask */
	bool flags = !c->silent || refused;
	if (!flags && !s->condstore)
		return 0;
	if (flags)
		imap_keywords_announce(s, m->keywords, &c->out);
	buf_printf(&c->out, "* %lu FETCH (", (unsigned long)seq);
	if (c->x->uid)
		buf_printf(&c->out, "UID %lu ", (unsigned long)m->uid);
	if (flags) {
		buf_puts(&c->out, "FLAGS ");
		imap_flags_out(&c->out, m->flags, imap_recent_has(s, m->uid), m->keywords);
	}
	if (s->condstore)
		buf_printf(&c->out, "%sMODSEQ (%llu)", flags ? " " : "",
			   (unsigned long long)m->modseq);
	buf_puts(&c->out, ")\r\n");
	if (c->out.len > 65536) {
		imap_send(c->x->s, c->out.data, c->out.len);
		buf_reset(&c->out);
	}
	return 0;
}

void imap_cmd_store(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	const struct imap_tok *a = x->a;
	size_t na = x->n;
	/* store-modifiers (RFC 4466 2.5): only UNCHANGEDSINCE (RFC 7162) */
	uint64_t unchangedsince = UINT64_MAX;
	if (na >= 2 && a[1].type == IMAP_TOK_LPAREN) {
		if (na < 5 || a[2].type != IMAP_TOK_ATOM || !imap_tok_eq(&a[2], "UNCHANGEDSINCE") ||
		    imap_modseq_arg(&a[3], true, &unchangedsince) < 0 ||
		    a[4].type != IMAP_TOK_RPAREN) {
			imap_bad(x, "Invalid STORE modifiers");
			return;
		}
		/* the set stays a[0]; the item and flags follow the modifiers */
		na -= 4;
	}
	struct imap_tok set_tok = a[0];
	if (na != x->n)
		a += 4;
	if (na < 3 || a[1].type != IMAP_TOK_ATOM) {
		imap_bad(x, "STORE needs a set, an item and flags");
		return;
	}
	const char *item = a[1].p;
	size_t il = a[1].len;
	int mode = 0;
	if (il > 0 && (item[0] == '+' || item[0] == '-')) {
		mode = item[0] == '+' ? 1 : -1;
		item++;
		il--;
	}
	bool silent = false;
	if (strutil_eq_ci(item, il, "FLAGS.SILENT"))
		silent = true;
	else if (!strutil_eq_ci(item, il, "FLAGS")) {
		imap_bad(x, "Unknown STORE item");
		return;
	}
	unsigned flags;
	char kw[1024];
	size_t used;
	if (a[2].type == IMAP_TOK_LPAREN) {
		if (imap_flags_arg(a + 2, na - 2, &used, &flags, kw, sizeof kw) < 0 ||
		    used != na - 2) {
			imap_bad(x, "Invalid flags");
			return;
		}
	} else {
		/* RFC 3501 allows a flag list without parentheses */
		flags = 0;
		kw[0] = '\0';
		for (size_t i = 2; i < na; i++) {
			unsigned f;
			char k[1024];
			if (imap_flags_arg(&a[i], 1, &used, &f, k, sizeof k) < 0) {
				imap_bad(x, "Invalid flags");
				return;
			}
			flags |= f;
			size_t have = strlen(kw), add = strlen(k);
			if (add > 0 && have + add + 2 < sizeof kw) {
				if (have)
					kw[have++] = ' ';
				memcpy(kw + have, k, add + 1);
			}
		}
	}
	uint32_t *uids;
	size_t n;
	if (set_uids(x, &set_tok, &uids, &n) < 0)
		return;
	/* RFC 4314 4: \Seen needs 's', \Deleted 't', the other flags 'w';
	 * replacing all of them needs the three */
	const char *rg = s->sel->rights;
	if (((flags & STORE_F_SEEN || mode == 0) && !imap_acl_has(rg, 's')) ||
	    (mode == 0 && !imap_acl_has(rg, 't')) ||
	    ((flags & STORE_F_DELETED) && !imap_acl_has(rg, 't')) ||
	    (((flags & ~(unsigned)(STORE_F_SEEN | STORE_F_DELETED)) || kw[0] != '\0' ||
	      mode == 0) &&
	     !imap_acl_has(rg, 'w'))) {
		free(uids);
		imap_reply(s, "%s NO [NOPERM] Permission denied", x->tag);
		return;
	}
	if (s->sel->readonly) {
		free(uids);
		imap_reply(s, "%s NO [READ-ONLY] Mailbox is read-only", x->tag);
		return;
	}
	bool cond = unchangedsince != UINT64_MAX;
	if (cond)
		imap_condstore_enable(s);
	bool *modified = cond ? xcalloc(n ? n : 1, sizeof *modified) : NULL;
	struct store_ctx c = {x, BUF_INIT, silent, uids, modified, n, BUF_INIT, 0, 0};
	char err[256];
	uint64_t modseq = 0;
	bool want_cb = !silent || s->condstore;
	int r = store_imap_store_flags_if(s->sel->acct, s->sel->id, uids, n, mode, flags, kw,
					  unchangedsince, modified, want_cb ? stored_cb : NULL, &c,
					  &modseq, err, sizeof err);
	if (r == 0)
		imap_spam_stored(s, mode, kw, uids, n);
	free(uids);
	free(modified);
	if (c.last_hi != 0)
		refused_add(&c, 0); /* closes the last range */
	if (r < 0) {
		buf_free(&c.refused);
		buf_free(&c.out);
		if (strstr(err, "keyword"))
			imap_reply(s, "%s NO [LIMIT] %s", x->tag, err);
		else
			imap_no_store(x, "store", err);
		return;
	}
	imap_own_modseq(s, modseq);
	if (c.out.len)
		imap_send(s, c.out.data, c.out.len);
	buf_free(&c.out);
	if (c.refused.len)
		imap_reply(s, "%s OK [MODIFIED %s] Conditional STORE failed", x->tag,
			   buf_cstr(&c.refused));
	else
		imap_reply(s, "%s OK Store completed", x->tag);
	buf_free(&c.refused);
}

/* -------------------------------------------------------- COPY, MOVE */

void imap_cmd_copy(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	bool move = strutil_eq_ci(x->uid ? x->c->tok[0].p : x->c->name,
				  x->uid ? x->c->tok[0].len : x->c->name_len, "MOVE");
	if (x->n != 2) {
		imap_bad(x, "A message set and a mailbox are expected");
		return;
	}
	char name[512];
	uint32_t *uids;
	size_t n;
	if (set_uids(x, &x->a[0], &uids, &n) < 0)
		return;
	if (imap_mailbox_arg(x, &x->a[1], name) < 0) {
		free(uids);
		return;
	}
	if (move && s->sel->readonly) {
		free(uids);
		imap_reply(s, "%s NO [READ-ONLY] Mailbox is read-only", x->tag);
		return;
	}
	if (s->sel->shared || strncasecmp(name, IMAP_ACL_NS_OTHERS, strlen(IMAP_ACL_NS_OTHERS)) == 0) {
		/* the store copies within one account */
		free(uids);
		imap_reply(s, "%s NO [CANNOT] Copying between accounts is not supported", x->tag);
		return;
	}
	struct store_mailbox mb;
	int r = store_mailbox_get(s->acct, name, &mb);
	if (r <= 0) {
		free(uids);
		if (r == 0)
			imap_reply(s, "%s NO [TRYCREATE] Mailbox does not exist", x->tag);
		else
			imap_no_store(x, "copy", "database error");
		return;
	}
	if (n == 0) {
		free(uids);
		imap_reply(s, "%s OK %s completed", x->tag, move ? "Move" : "Copy");
		return;
	}
	uint32_t *nu = xcalloc(n, sizeof *nu);
	char err[256];
	uint64_t modseq = 0;
	int cr = store_imap_copy(s->acct, s->sel->id, uids, n, mb.id, move, nu, &modseq, err,
				 sizeof err);
	if (cr < 0) {
		free(uids);
		free(nu);
		if (cr == -2)
			imap_reply(s, "%s NO [OVERQUOTA] Quota exceeded, nothing was %s", x->tag,
				   move ? "moved" : "copied");
		else
			imap_no_store(x, move ? "move" : "copy", err);
		return;
	}
	imap_spam_copied(s, &mb, nu, n);
	/* only the messages that still existed */
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (nu[i]) {
			uids[k] = uids[i];
			nu[k] = nu[i];
			k++;
		}
	struct buf code = BUF_INIT;
	if (k > 0) {
		buf_printf(&code, "[COPYUID %lu ", (unsigned long)mb.uidvalidity);
		imap_uids_format(&code, uids, k);
		buf_putc(&code, ' ');
		imap_uids_format(&code, nu, k);
		buf_puts(&code, "] ");
	}
	if (move) {
		imap_own_modseq(s, modseq);
		if (k > 0)
			imap_reply(s, "* OK %sMoved", buf_cstr(&code));
		struct buf b = BUF_INIT;
		imap_expunged_out(s, uids, k, &b);
		imap_send(s, b.data, b.len);
		buf_free(&b);
	}
	/* into the selected mailbox: EXISTS; a move: the marks move past it */
	if (move || mb.id == s->sel->id)
		imap_sync(s, x->uid);
	/* RFC 6851 4.4: the mailbox's new HIGHESTMODSEQ after a move */
	if (move && k > 0 && s->qresync)
		imap_reply(s, "%s OK [HIGHESTMODSEQ %llu] Move completed", x->tag,
			   (unsigned long long)imap_sel_highestmodseq(s->sel));
	else if (move)
		imap_reply(s, "%s OK Move completed", x->tag);
	else
		imap_reply(s, "%s OK %sCopy completed", x->tag, buf_cstr(&code));
	buf_free(&code);
	free(uids);
	free(nu);
}

/* ----------------------------------------------------------- EXPUNGE */

struct del_ctx {
	const struct imap_sel *sel;
	const struct imap_seqset *set;
	uint32_t *uids;
	size_t n, cap;
};

static int deleted_cb(void *ctx, const struct store_message *m)
{
	struct del_ctx *c = ctx;
	if (!(m->flags & STORE_F_DELETED) || imap_seq_of(c->sel, m->uid) == 0)
		return 0;
	if (c->set && !imap_seqset_has(c->set, m->uid))
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->uids = xreallocarray(c->uids, c->cap, sizeof *c->uids);
	}
	c->uids[c->n++] = m->uid;
	return 0;
}

int imap_expunge_deleted(struct imap_session *s, const struct imap_seqset *set, bool silent,
			 char *err, size_t errsz)
{
	struct imap_sel *sel = s->sel;
	struct del_ctx c = {sel, set, NULL, 0, 0};
	if (sel->v.n == 0)
		return 0;
	if (store_message_list(s->sel->acct, sel->id, imap_view_first(&sel->v), imap_view_last(&sel->v),
			       deleted_cb, &c, err, errsz) < 0) {
		free(c.uids);
		return -1;
	}
	if (c.n == 0)
		return 0;
	bool *done = xcalloc(c.n, sizeof *done);
	uint64_t modseq;
	if (store_imap_expunge(s->sel->acct, sel->id, c.uids, c.n, done, &modseq, err, errsz) < 0) {
		free(done);
		free(c.uids);
		return -1;
	}
	struct buf b = BUF_INIT;
	imap_expunged_out(s, c.uids, c.n, silent ? NULL : &b);
	if (b.len)
		imap_send(s, b.data, b.len);
	buf_free(&b);
	log_info("imap session=%s user=%s action=expunge mailbox_id=%lld count=%zu", s->id,
		 s->address, (long long)sel->id, c.n);
	free(done);
	free(c.uids);
	return 0;
}

void imap_cmd_expunge(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	struct imap_seqset set = {NULL, 0};
	if (x->uid ? x->n != 1 : x->n != 0) {
		imap_bad(x, x->uid ? "UID EXPUNGE needs a UID set" : "EXPUNGE takes no arguments");
		return;
	}
	if (x->uid && imap_seqset_arg(x, &x->a[0], &set) < 0)
		return;
	if (!imap_acl_has(s->sel->rights, 'e')) {
		imap_seqset_free(&set);
		imap_reply(s, "%s NO [NOPERM] Permission denied", x->tag);
		return;
	}
	if (s->sel->readonly) {
		imap_seqset_free(&set);
		imap_reply(s, "%s NO [READ-ONLY] Mailbox is read-only", x->tag);
		return;
	}
	char err[256];
	uint32_t before = s->sel->v.n;
	int r = imap_expunge_deleted(s, x->uid ? &set : NULL, false, err, sizeof err);
	imap_seqset_free(&set);
	if (r < 0) {
		imap_no_store(x, "expunge", err);
		return;
	}
	bool some = s->sel->v.n < before;
	imap_sync(s, true);
	/* RFC 7162 3.2.7, 3.2.9: the new HIGHESTMODSEQ once QRESYNC is on */
	if (some && s->qresync)
		imap_reply(s, "%s OK [HIGHESTMODSEQ %llu] Expunge completed", x->tag,
			   (unsigned long long)imap_sel_highestmodseq(s->sel));
	else
		imap_reply(s, "%s OK Expunge completed", x->tag);
}

void imap_cmd_close(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n != 0) {
		imap_bad(x, "CLOSE takes no arguments");
		return;
	}
	char err[256];
	/* without 'e' CLOSE expunges nothing (RFC 4314 4) */
	if (!s->sel->readonly && imap_acl_has(s->sel->rights, 'e') && imap_expunge_deleted(s, NULL, true, err, sizeof err) < 0)
		log_error("imap session=%s action=close_expunge error=\"%s\"", s->id, err);
	imap_unselect(s);
	imap_reply(s, "%s OK Close completed", x->tag);
}
