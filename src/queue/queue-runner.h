/*
 * queue-runner.h - outbound delivery: the queue runner drives recipients
 * from "deferred" to "delivered" or "bounced" (docs/outbound.md).
 *
 * It runs in its own process (main.c starts and restarts it like a
 * worker), on one libevent loop: it claims due recipients from server.db,
 * groups them per message and destination domain, resolves the MX hosts
 * (src/dns), talks SMTP to them (smtp-client.c) with a bounded number of
 * connections per destination and in total, records every outcome at once,
 * and sends bounces and delay notices (queue-dsn.c).
 *
 * Ownership: the runner keeps pointers to base, store and cfg, which must
 * outlive it (set_config swaps cfg).
 */
#ifndef TERN_QUEUE_RUNNER_H
#define TERN_QUEUE_RUNNER_H

#include <stddef.h>

struct event_base;
struct store;
struct config;
struct queue_runner;

/* Makes the runner: puts recipients a dead runner left in "sending" back,
 * and schedules the first scan at once.  NULL with err on failure (the DNS
 * resolver could not be set up). */
struct queue_runner *queue_runner_new(struct event_base *base, struct store *store,
				      const struct config *cfg, char *err, size_t errsz);
/* Uses a new config from the next step on (timeouts, limits, retry times;
 * the DNS resolver address needs a restart). */
void queue_runner_set_config(struct queue_runner *r, const struct config *cfg);
/* New mail is in the queue: scan now (coalesced). */
void queue_runner_kick(struct queue_runner *r);
/* Connections open now (for logs and tests). */
size_t queue_runner_connections(const struct queue_runner *r);
/* Stops everything at once (open connections are dropped; recipients in
 * flight go back to deferred, due now) and frees.  Accepts NULL. */
void queue_runner_free(struct queue_runner **r);

#endif
