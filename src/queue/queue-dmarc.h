/*
 * queue-dmarc.h - the DMARC reports the queue runner sends (queue-dmarc.c):
 * aggregate reports (RFC 7489 7.2) and failure reports (7.3).
 */
#ifndef TERN_QUEUE_DMARC_H
#define TERN_QUEUE_DMARC_H

#include <time.h>

#include "buf.h"
#include "config.h"
#include "store.h"

struct dns_resolver;
struct queue_dmarc;

/* Delivers a message we wrote to rcpt (local, or through the queue with
 * the null sender); 0 or -1. */
typedef int (*queue_dmarc_deliver_fn)(void *ctx, const char *rcpt, const struct buf *msg);

struct queue_dmarc *queue_dmarc_new(struct store *store, queue_dmarc_deliver_fn deliver,
				    void *ctx);
/* Cancels the external-destination lookups in flight (their reports are
 * not sent). */
void queue_dmarc_free(struct queue_dmarc **qd);
/* The same, without freeing qd (before its resolver goes away). */
void queue_dmarc_cancel(struct queue_dmarc *qd);
/* Sends the aggregate reports that are due at now (when
 * mailauth.reports) and the failure reports kept so far. */
void queue_dmarc_run(struct queue_dmarc *qd, struct dns_resolver *dns, const struct config *cfg,
		     time_t now);

#endif
