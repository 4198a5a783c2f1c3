/*
 * smtp-session.h - the SMTP receiver (RFC 5321) on one worker's event loop.
 *
 * One struct smtp_server per worker holds what all its sessions share (the
 * event base, the store, the current config); one struct smtp_session per
 * connection holds the protocol state, and one struct smtp_txn per mail
 * transaction (MAIL ... end of data), so that RSET frees the transaction
 * without touching the session.  docs/smtp.md lists every reply.
 *
 * Lifetimes: the server owns its sessions; a session is never freed inside
 * its own callbacks: it is marked closing and reaped by a deferred event.
 */
#ifndef TERN_SMTP_SESSION_H
#define TERN_SMTP_SESSION_H

#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct store;
struct smtp_server;
struct tls;

/* Creates the server state for one worker.  cfg and store stay owned by the
 * caller and must outlive the server (the config may be swapped with
 * smtp_server_set_config).  Never NULL. */
struct smtp_server *smtp_server_new(struct event_base *base, struct store *store,
				    const struct config *cfg);
/* Points the server at a new config (after SIGHUP); sessions use it from
 * their next command on. */
void smtp_server_set_config(struct smtp_server *srv, const struct config *cfg);
/* Makes this a submission server (RFC 6409; submission.listen and
 * submissions.listen): AUTH offered (over TLS), MAIL refused before it,
 * senders checked against the account, Message-ID/Date added, remote
 * recipients relayed.  Without it (smtp.listen) AUTH is not offered. */
void smtp_server_set_submission(struct smtp_server *srv, bool on);
/* Gives the server the worker's TLS state (owned by the caller, outlives
 * the server).  STARTTLS is offered while tls_available(tls); implicit:
 * every session starts with a TLS handshake (port 465, RFC 8314). */
void smtp_server_set_tls(struct smtp_server *srv, struct tls *tls, bool implicit);
/* Takes ownership of an accepted, connected socket and starts a session. */
void smtp_server_accept(struct smtp_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
			int salen);
/* Says "421 shutting down" to every session and closes them once their
 * output is flushed (or after a short grace period).  cb is called once
 * no session is left. */
void smtp_server_shutdown(struct smtp_server *srv, void (*cb)(void *ctx), void *ctx);
/* Number of open sessions. */
size_t smtp_server_sessions(const struct smtp_server *srv);
/* Frees the server and any session left.  Accepts NULL. */
void smtp_server_free(struct smtp_server **srv);

#endif
