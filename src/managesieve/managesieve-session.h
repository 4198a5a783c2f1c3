/*
 * managesieve-session.h - the ManageSieve server (RFC 5804) on one
 * worker's event loop: users list, upload (checked by the Sieve
 * compiler), download, activate, rename and delete their Sieve scripts,
 * kept by the store (store_sieve_*, docs/sieve.md).
 *
 * Same shape as pop3-session.h: one struct managesieve_server per worker,
 * one session per connection, never freed inside its own callbacks.
 */
#ifndef TERN_MANAGESIEVE_SESSION_H
#define TERN_MANAGESIEVE_SESSION_H

#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct store;
struct managesieve_server;
struct tls;

/* cfg and store stay owned by the caller and outlive the server. */
struct managesieve_server *managesieve_server_new(struct event_base *base, struct store *store,
						  const struct config *cfg);
void managesieve_server_set_config(struct managesieve_server *srv, const struct config *cfg);
/* The worker's TLS state (owned by the caller, outlives the server).
 * STARTTLS is offered while tls_available(tls); implicit: every session
 * starts with a TLS handshake. */
void managesieve_server_set_tls(struct managesieve_server *srv, struct tls *tls, bool implicit);
/* Takes ownership of an accepted socket and starts a session. */
void managesieve_server_accept(struct managesieve_server *srv, evutil_socket_t fd,
			       const struct sockaddr *sa, int salen);
/* Ends every session (BYE between commands); cb once none is left. */
void managesieve_server_shutdown(struct managesieve_server *srv, void (*cb)(void *ctx),
				 void *ctx);
size_t managesieve_server_sessions(const struct managesieve_server *srv);
void managesieve_server_free(struct managesieve_server **srv);

#endif
