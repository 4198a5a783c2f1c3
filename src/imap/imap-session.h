/*
 * imap-session.h - the IMAP server (RFC 9051 IMAP4rev2 with RFC 3501
 * IMAP4rev1 compatibility) on one worker's event loop.  See docs/imap.md.
 *
 * Same shape as pop3-session.h: one struct imap_server per worker, one
 * session per connection, never freed inside its own callbacks.
 */
#ifndef TERN_IMAP_SESSION_H
#define TERN_IMAP_SESSION_H

#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct store;
struct imap_server;
struct tls;

/* cfg and store stay owned by the caller and outlive the server. */
struct imap_server *imap_server_new(struct event_base *base, struct store *store,
				    const struct config *cfg);
void imap_server_set_config(struct imap_server *srv, const struct config *cfg);
/* Gives the server the worker's TLS state (owned by the caller, outlives
 * the server).  STARTTLS is offered while tls_available(tls); implicit:
 * every session starts with a TLS handshake (imaps, RFC 8314). */
void imap_server_set_tls(struct imap_server *srv, struct tls *tls, bool implicit);
/* Takes ownership of an accepted socket and starts a session. */
void imap_server_accept(struct imap_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
			int salen);
/* Ends every session ("* BYE" between commands); cb once none is left. */
void imap_server_shutdown(struct imap_server *srv, void (*cb)(void *ctx), void *ctx);
size_t imap_server_sessions(const struct imap_server *srv);
void imap_server_free(struct imap_server **srv);

#endif
