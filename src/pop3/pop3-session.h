/*
 * pop3-session.h - the POP3 server (RFC 1939, RFC 2449 CAPA, RFC 5034
 * SASL) on one worker's event loop.  The maildrop is the user's INBOX.
 *
 * Same shape as smtp-session.h: one struct pop3_server per worker, one
 * session per connection, never freed inside its own callbacks.
 */
#ifndef TERN_POP3_SESSION_H
#define TERN_POP3_SESSION_H

#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct store;
struct pop3_server;
struct tls;

/* cfg and store stay owned by the caller and outlive the server. */
struct pop3_server *pop3_server_new(struct event_base *base, struct store *store,
				    const struct config *cfg);
void pop3_server_set_config(struct pop3_server *srv, const struct config *cfg);
/* Gives the server the worker's TLS state (owned by the caller, outlives
 * the server).  STLS is offered while tls_available(tls); implicit: every
 * session starts with a TLS handshake (pop3s, RFC 8314). */
void pop3_server_set_tls(struct pop3_server *srv, struct tls *tls, bool implicit);
/* Takes ownership of an accepted socket and starts a session. */
void pop3_server_accept(struct pop3_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
			int salen);
/* Ends every session ("-ERR [SYS/TEMP] shutting down" between commands;
 * nothing is expunged for a session that did not QUIT); cb once none is
 * left. */
void pop3_server_shutdown(struct pop3_server *srv, void (*cb)(void *ctx), void *ctx);
size_t pop3_server_sessions(const struct pop3_server *srv);
void pop3_server_free(struct pop3_server **srv);

#endif
