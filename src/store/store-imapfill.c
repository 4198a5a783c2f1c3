/*
 * store-imapfill.c - rows of the IMAP cache (store-imap.c: ENVELOPE,
 * BODY, BODYSTRUCTURE and the decoded header text searches read) made
 * from messages a search had to parse anyway, queued and written in one
 * transaction when the search ends (not while the store is listing
 * messages).  IMAP SEARCH (imap-search.c) and JMAP Email/query
 * (jmap-email-query.c) fill the cache this way, so the next search, by
 * either, reads the header text instead of the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "store-private.h"
#include "xalloc.h"

void store_imapfill_add(struct store_imapfill *q, const char *file_id, const struct mime_tree *t,
			const char *headers, size_t headers_len)
{
	if (q->n == q->max)
		return;
	if (q->e == NULL) {
		q->e = xcalloc(q->max, sizeof *q->e);
		q->ids = xcalloc(q->max, sizeof *q->ids);
		q->bufs = xcalloc(q->max * 4, sizeof *q->bufs);
	}
	size_t i = q->n;
	struct buf *b = &q->bufs[i * 4];
	for (int k = 0; k < 4; k++)
		buf_init(&b[k], 0);
	if (mime_imap_envelope(t, &b[0]) < 0 || mime_imap_bodystructure(t, false, &b[1]) < 0 ||
	    mime_imap_bodystructure(t, true, &b[2]) < 0 ||
	    buf_append(&b[3], headers, headers_len) < 0) {
		for (int k = 0; k < 4; k++)
			buf_free(&b[k]);
		return;
	}
	snprintf(q->ids[i], sizeof q->ids[i], "%s", file_id);
	struct store_imap_cache *e = &q->e[i];
	e->file_id = q->ids[i];
	e->envelope = b[0].data ? b[0].data : "";
	e->envelope_len = b[0].len;
	e->body = b[1].data ? b[1].data : "";
	e->body_len = b[1].len;
	e->bodystructure = b[2].data ? b[2].data : "";
	e->bodystructure_len = b[2].len;
	e->headers = b[3].data ? b[3].data : "";
	e->headers_len = b[3].len;
	q->n++;
}

int store_imapfill_flush(struct store_account *a, struct store_imapfill *q, char *err,
			 size_t errsz)
{
	int r = 0;
	if (q->n > 0)
		r = store_imap_cache_put(a, q->e, q->n, err, errsz);
	for (size_t i = 0; i < q->n; i++)
		for (int k = 0; k < 4; k++)
			buf_free(&q->bufs[i * 4 + k]);
	free(q->e);
	free(q->ids);
	free(q->bufs);
	size_t max = q->max;
	memset(q, 0, sizeof *q);
	q->max = max;
	return r;
}
