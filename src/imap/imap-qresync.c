/*
 * imap-qresync.c - QRESYNC (RFC 7162 3.2): how expunges are told to a
 * session (VANISHED once QRESYNC is enabled, else EXPUNGE), VANISHED
 * (EARLIER) for UID FETCH (VANISHED) and SELECT/EXAMINE (QRESYNC ...), and
 * the rest of a QRESYNC select.  Protocol layer (imap-private.h).
 *
 * Expunged uids come from the store with their modseqs; the store keeps a
 * bounded number per mailbox (STORE_EXPUNGED_MAX).  When the client's
 * modseq is older than the oldest expunge the store still knows, the
 * answer is every uid of the client's set that is not in the mailbox
 * (RFC 7162 3.2.6: "as if it was requested to report all expunged
 * messages from the provided UID set"), below the session's UIDNEXT and
 * above what the sequence match data proves the client knows.
 */
#include <stdlib.h>

#include "imap-private.h"
#include "log.h"
#include "xalloc.h"

void imap_uids_format(struct buf *b, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (i)
			buf_putc(b, ',');
		if (j > i)
			buf_printf(b, "%lu:%lu", (unsigned long)uids[i], (unsigned long)uids[j]);
		else
			buf_printf(b, "%lu", (unsigned long)uids[i]);
		i = j + 1;
	}
}

void imap_expunged_out(struct imap_session *s, const uint32_t *uids, size_t n, struct buf *out)
{
	struct imap_sel *sel = s->sel;
	if (out != NULL && s->qresync) {
		/* RFC 7162 3.2.10.2: only uids the client has in its view */
		uint32_t *gone = xcalloc(n ? n : 1, sizeof *gone);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			uint32_t seq = imap_seq_of(sel, uids[i]);
			if (seq == 0)
				continue;
			imap_view_remove(&sel->v, seq);
			gone[k++] = uids[i];
		}
		if (k > 0) {
			buf_puts(out, "* VANISHED ");
			imap_uids_format(out, gone, k);
			buf_puts(out, "\r\n");
		}
		free(gone);
		return;
	}
	for (size_t i = n; i-- > 0;) {
		uint32_t seq = imap_seq_of(sel, uids[i]);
		if (seq == 0)
			continue;
		imap_view_remove(&sel->v, seq);
		if (out != NULL)
			buf_printf(out, "* %lu EXPUNGE\r\n", (unsigned long)seq);
	}
}

int imap_vanished_earlier(struct imap_session *s, const struct imap_seqset *set,
			  uint32_t min_uid, uint64_t modseq, struct buf *out, char *err,
			  size_t errsz)
{
	struct imap_sel *sel = s->sel;
	uint32_t *gone;
	size_t n;
	bool complete;
	if (set->n == 0)
		return 0;
	if (store_imap_expunged_since(s->sel->acct, sel->id, modseq, &gone, &n, &complete, err,
				      errsz) < 0)
		return -1;
	size_t start = out->len;
	buf_puts(out, "* VANISHED (EARLIER) ");
	size_t head = out->len;
	if (complete) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (gone[i] >= min_uid && imap_seqset_has(set, gone[i]) &&
			    imap_seq_of(sel, gone[i]) == 0)
				gone[k++] = gone[i];
		imap_uids_format(out, gone, k);
	} else if (sel->uidnext > 1) {
		struct imap_seqset miss = {NULL, 0};
		imap_view_missing(&sel->v, set, min_uid, sel->uidnext - 1, &miss);
		if (miss.n > 0)
			imap_seqset_format(&miss, out);
		imap_seqset_free(&miss);
	}
	free(gone);
	if (out->len == head)
		out->len = start; /* none */
	else
		buf_puts(out, "\r\n");
	return 0;
}

void imap_qresync_select(struct imap_cmdctx *x, const struct imap_qresync *q,
			 const char *ok_text)
{
	struct imap_session *s = x->s;
	struct imap_sel *sel = s->sel;
	/* the client's known uids, or 1:UIDNEXT-1 (3.2.5.1) */
	struct imap_seqset known = {NULL, 0};
	if (q->known.n > 0) {
		imap_seqset_copy(&known, &q->known);
		imap_seqset_resolve(&known, imap_view_last(&sel->v));
	} else if (sel->uidnext > 1) {
		known.r = xcalloc(1, sizeof *known.r);
		known.r[0].lo = 1;
		known.r[0].hi = sel->uidnext - 1;
		known.n = 1;
	}
	uint32_t min_uid = q->seqs.n > 0 ? imap_view_match(&sel->v, &q->seqs, &q->uids) : 1;
	struct buf b = BUF_INIT;
	char err[256];
	if (imap_vanished_earlier(s, &known, min_uid, q->modseq, &b, err, sizeof err) < 0) {
		buf_free(&b);
		imap_seqset_free(&known);
		log_error("imap session=%s user=%s action=qresync error=\"%s\"", s->id, s->address,
			  err);
		imap_unselect(s);
		imap_reply(s, "%s NO [SERVERBUG] Internal error, try again later", x->tag);
		return;
	}
	if (b.len)
		imap_send(s, b.data, b.len);
	buf_free(&b);
	/* then the flags changed since (FETCH responses with UID and MODSEQ) */
	uint32_t *seqs;
	size_t n = imap_set_seqs(sel, &known, &seqs);
	imap_seqset_free(&known);
	uint32_t *uids = xcalloc(n ? n : 1, sizeof *uids);
	for (size_t i = 0; i < n; i++)
		uids[i] = imap_view_uid(&sel->v, seqs[i]);
	free(seqs);
	imap_fetch_changed(s, x->tag, uids, n, q->modseq, ok_text);
}
