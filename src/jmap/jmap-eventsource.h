/*
 * jmap-eventsource.h - JMAP push over an event source (RFC 8620 7.3;
 * docs/jmap.md "Push"): the long-lived text/event-stream answers of
 * GET /jmap/eventsource/, with "state" events (StateChange objects, 7.1)
 * when the account's JMAP state moves, learnt from the store's change
 * notifications (store_notify, forwarded between worker processes), and
 * "ping" events.  jmap-server.c authenticates the request and hands it
 * over; the streams of a worker are kept here.
 */
#ifndef TERN_JMAP_EVENTSOURCE_H
#define TERN_JMAP_EVENTSOURCE_H

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jmap-authcache.h"

struct store;
struct http_server;
struct jmap_es;

/* Event streams at most, per user and per worker process. */
#define JMAP_ES_PER_USER 8
#define JMAP_ES_PER_WORKER 1000
/* Seconds between checks that a stream's credentials still hold. */
#define JMAP_ES_RECHECK 2
/* The ping interval is kept within these (RFC 8620 7.3 allows a minimum
 * up to 30, a maximum from 300). */
#define JMAP_ES_PING_MIN 1
#define JMAP_ES_PING_MAX 300
/* Bytes an event stream may have waiting to go out before it is ended
 * (a client that does not read). */
#define JMAP_ES_MAX_PENDING (64 * 1024)

/* cred_ok: 1 if the login e proved still holds (the password or app
 * password not changed), 0 not, -1 cannot tell now. */
struct jmap_es *jmap_es_new(struct event_base *base, struct store *store,
			    struct http_server *http,
			    int (*cred_ok)(void *ctx, const struct jmap_authcache_entry *e),
			    void *cred_ctx);
/* Ends every stream (without touching the requests: the HTTP server is
 * going away) and frees es. */
void jmap_es_free(struct jmap_es **es);

/* Answers req (GET /jmap/eventsource/?types=&closeafter=&ping=), whose
 * login cred proved (cred->account_id, cred->account): an error answer,
 * or a stream kept until the client leaves, closeafter=state ends it,
 * or the credentials no longer hold.  id names it in the log. */
void jmap_es_start(struct jmap_es *es, struct evhttp_request *req,
		   const struct jmap_authcache_entry *cred, const char *id, const char *client_ip);

/* The parameters of the event source URL (RFC 8620 7.3; NULL: absent):
 * types as bits (1 Mailbox, 2 Thread, 4 Email; names we do not push are
 * ignored), closeafter=state, ping in seconds (0: none; else clamped to
 * JMAP_ES_PING_MIN..JMAP_ES_PING_MAX).  NULL, or what is wrong. */
const char *jmap_es_parse_params(const char *types, const char *closeafter, const char *ping,
				 unsigned *types_out, bool *close_after, unsigned *ping_out);

/* The connection evcon is closing: its stream, if any, ends. */
void jmap_es_closed(struct jmap_es *es, struct evhttp_connection *evcon);

/* Streams open in this worker. */
size_t jmap_es_count(const struct jmap_es *es);

#endif
