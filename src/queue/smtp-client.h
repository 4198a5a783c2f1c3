/*
 * smtp-client.h - one outgoing SMTP connection (RFC 5321) on libevent.
 *
 * The queue runner owns the client.  The life of a connection:
 *
 *   smtp_client_connect(addr)  -> TCP connect, 220 greeting, EHLO (HELO
 *                                 if EHLO is refused) -> ready_cb
 *   [smtp_client_set_auth]     -> AUTH PLAIN after EHLO (RFC 4954), over
 *                                 TLS only (loopback excepted)
 *   smtp_client_send(txn)      -> MAIL, RCPT... (one write with
 *                                 PIPELINING), then the body when a
 *                                 recipient was accepted: "BDAT n LAST"
 *                                 and the bytes as they are when the
 *                                 server offers CHUNKING (RFC 3030), else
 *                                 DATA and the dot-stuffed body ->
 *                                 txn_cb with a result per recipient
 *   ... more smtp_client_send on the same connection (reuse) ...
 *   smtp_client_free           -> QUIT (best effort) and close
 *
 * STARTTLS (RFC 3207), opportunistic: with smtp_client_set_tls, when the
 * server's EHLO offers STARTTLS the client upgrades, runs the handshake
 * (SNI and certificate name = the MX host name) and sends EHLO again; a
 * certificate that cannot be verified still encrypts and is recorded as
 * such (smtp_client_tls).  A "454 TLS not available" answer continues in
 * plaintext.  A failed handshake ends the connection with
 * SMTP_CLIENT_TLS: the caller may reconnect without TLS.  All I/O goes
 * through one bufferevent, which the upgrade replaces.
 *
 * Timeouts follow RFC 5321 4.5.3.2 (greeting 5 min, MAIL/RCPT 5 min, DATA
 * 2 min, each body write 3 min, final dot 10 min) and are configurable.
 *
 * Callbacks are never called from inside smtp_client_connect or
 * smtp_client_send.  A callback may free the client (smtp_client_free
 * inside a callback is safe: the free is deferred to the loop).
 */
#ifndef TERN_SMTP_CLIENT_H
#define TERN_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "smtp-reply.h"

struct event_base;
struct smtp_client;

struct smtp_client_timeouts {
	unsigned connect; /* seconds; all must be > 0 */
	unsigned greeting;
	unsigned command;    /* EHLO, MAIL, RCPT, RSET, QUIT */
	unsigned data_init;  /* reply to DATA */
	unsigned data_block; /* progress while sending the body */
	unsigned data_end;   /* reply to the final dot */
};

/* How a step ended. */
enum smtp_client_result {
	SMTP_CLIENT_OK,
	SMTP_CLIENT_REPLY,   /* the server answered with an error (reply set) */
	SMTP_CLIENT_NETWORK, /* connection refused/reset/closed (why set) */
	SMTP_CLIENT_TIMEOUT,
	SMTP_CLIENT_PROTOCOL, /* malformed reply */
	SMTP_CLIENT_TLS,      /* the TLS handshake after STARTTLS failed */
	SMTP_CLIENT_AUTH,     /* AUTH refused, not offered, or not safe (no TLS) */
};

/* The TLS state of a connection (valid after ready). */
struct smtp_client_tls {
	bool on;          /* the session is encrypted */
	char version[16]; /* "TLSv1.3" */
	char cipher[64];  /* "TLS_AES_256_GCM_SHA384" */
	bool verified;    /* certificate chains to a trusted CA and names the host */
	char why[160];    /* when on and not verified: why ("self-signed certificate") */
};

/* One recipient's outcome in a transaction. */
struct smtp_client_rcpt {
	const char *addr; /* set by the caller */
	const char *dsn_params; /* " NOTIFY=... ORCPT=..." for RCPT TO, sent only
				 * when the server offers DSN; NULL: none */
	int code;         /* 250 delivered; 4xx/5xx refused; 0 not known
			   * (connection lost before an answer) */
	char status[16];  /* enhanced status, "" if none */
	char reply[512];  /* one-line reply, or our reason when code 0 */
};

struct smtp_client_txn {
	const char *sender; /* "" for <> */
	struct smtp_client_rcpt *rcpts;
	size_t n_rcpts;
	int body_fd;    /* message file, read from offset 0; the caller
			 * closes it after txn_cb */
	uint64_t size;  /* for SIZE= */
	bool body_8bit; /* send BODY=8BITMIME */
	bool smtputf8;  /* send SMTPUTF8 */
	const char *dsn_params; /* " RET=... ENVID=..." for MAIL FROM, sent only
				 * when the server offers DSN (RFC 3461); NULL: none */
	bool requiretls; /* send REQUIRETLS (RFC 8689), when the server offers it */
	/* Outcome of the transaction as a whole (MAIL refused, connection
	 * lost, ...): result and, for REPLY, the one-line reply. */
	enum smtp_client_result result;
	char why[512];
};

struct smtp_client_cbs {
	/* Greeting and EHLO/HELO done (result OK) or failed: result says why,
	 * code/why hold the reply or our reason.  After a failure the client
	 * is dead: free it. */
	void (*ready)(void *ctx, struct smtp_client *c, enum smtp_client_result result, int code,
		      const char *why);
	/* A transaction ended; per-recipient results are in txn.  If
	 * smtp_client_alive() is false afterwards, free the client. */
	void (*txn_done)(void *ctx, struct smtp_client *c, struct smtp_client_txn *txn);
};

/* Starts a connection to addr (port set by the caller) from a client
 * named helo_name.  Returns NULL only if no socket could be made (err).
 * peer_name is the MX host name, for logs. */
struct smtp_client *smtp_client_connect(struct event_base *base, const struct sockaddr *addr,
					socklen_t addrlen, const char *peer_name,
					const char *helo_name,
					const struct smtp_client_timeouts *to,
					const struct smtp_client_cbs *cbs, void *ctx, char *err,
					size_t errsz);
/* Lets the client use STARTTLS with tc (the client takes its own
 * reference, tls_client_ref).  Call right after smtp_client_connect, before the loop
 * runs; NULL (the default) means plaintext only. */
struct tls_client;
void smtp_client_set_tls(struct smtp_client *c, struct tls_client *tc);
/* Authenticates with AUTH PLAIN (RFC 4616) after EHLO, as a client of a
 * relay host.  The client copies both strings.  The password is only sent
 * over TLS with a verified certificate, or, if loopback_plain (the
 * allow_plaintext_loopback setting), to a loopback address; otherwise, or
 * when the server does not offer AUTH PLAIN or refuses it, ready reports
 * SMTP_CLIENT_AUTH.  Call right after smtp_client_connect. */
void smtp_client_set_auth(struct smtp_client *c, const char *user, const char *password,
			  bool loopback_plain);
/* The connection's TLS state (all zero for plaintext). */
const struct smtp_client_tls *smtp_client_tls(const struct smtp_client *c);
/* Starts a transaction on a ready, idle client.  txn and the strings and
 * array it points to must stay valid until txn_done. */
void smtp_client_send(struct smtp_client *c, struct smtp_client_txn *txn);
/* True if the connection can take another transaction. */
bool smtp_client_alive(const struct smtp_client *c);
/* The server's extensions (valid after ready). */
const struct smtp_caps *smtp_client_caps(const struct smtp_client *c);
/* The peer's address as text ("192.0.2.1", "2001:db8::1"). */
const char *smtp_client_peer_ip(const struct smtp_client *c);
/* Sends QUIT if idle, closes and frees (deferred when called from a
 * callback).  No callback runs afterwards.  Accepts NULL; sets *c NULL. */
void smtp_client_free(struct smtp_client **c);

#endif
