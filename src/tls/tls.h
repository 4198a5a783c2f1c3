/*
 * tls.h - TLS for every protocol (OpenSSL 3 under libevent's OpenSSL
 * bufferevents): server contexts, certificates chosen by SNI, reload, and
 * what sessions need (implicit TLS, STARTTLS, facts about the connection,
 * channel bindings for SCRAM-PLUS).
 *
 * Two objects, because private keys are read by the master (root) and used
 * by the workers (unprivileged), see docs/architecture.md "TLS":
 *
 *   struct tls_bundle  the PEM bytes of every certificate and key, plus the
 *                      session-ticket key, read and checked by the master
 *                      (tls_bundle_load).  It crosses fork by memory and a
 *                      reload by a memfd passed over a socketpair
 *                      (tls_bundle_send / tls_bundle_recv).
 *   struct tls         one per worker: the OpenSSL contexts built from the
 *                      current bundle (tls_set_bundle).  A new bundle
 *                      replaces the contexts for new connections only;
 *                      established connections keep theirs (OpenSSL reference
 *                      counts), so a reload drops nothing.
 *
 * Policy (the same for every context): TLS 1.2 and 1.3 only; TLS 1.2 with
 * ECDHE and AEAD ciphers only, server preference; groups X25519 and P-256;
 * no compression, no renegotiation; session resumption through tickets
 * whose key is shared by every worker (and kept across reloads), so a
 * session resumes on any worker.
 *
 * Errors: functions that can fail return -1 or NULL and write a message
 * naming the file at fault into err (size errsz).
 */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct tls_bundle;
struct tls;

/* ------------------------------------------------------------ master side */

/* Reads tls.cert/tls.key and every pair under tls.sni_dir (DOMAIN/cert.pem
 * and DOMAIN/key.pem) and checks each: readable, PEM, key matching its
 * certificate, usable with our TLS policy.  The ticket key is taken from
 * prev (so a reload keeps sessions resumable) or made at random when prev
 * is NULL.
 *
 * Returns 1 and sets *out (caller frees with tls_bundle_free); 0 with *out
 * NULL when TLS is not configured (tls.cert and tls.key both empty); -1 with
 * err naming the key and file at fault. */
int tls_bundle_load(const struct config *cfg, const struct tls_bundle *prev,
		    struct tls_bundle **out, char *err, size_t errsz);

/* Number of certificate pairs (1 + the SNI domains). */
size_t tls_bundle_pairs(const struct tls_bundle *b);

/* Wipes the key bytes and frees.  Accepts NULL and *b == NULL. */
void tls_bundle_free(struct tls_bundle **b);

/* Sends the bundle over a connected AF_UNIX socket as a sealed memfd
 * (SCM_RIGHTS), never blocking.  Returns 0 or -1 (err). */
int tls_bundle_send(const struct tls_bundle *b, int sock, char *err, size_t errsz);

/* Receives one bundle sent by tls_bundle_send.  Returns 1 with *out set, 0
 * if nothing is waiting, -1 on error (err; includes the peer closing). */
int tls_bundle_recv(int sock, struct tls_bundle **out, char *err, size_t errsz);

/* ------------------------------------------------------------ worker side */

/* A TLS state with no certificate yet (tls_available is false).  Never
 * NULL. */
struct tls *tls_new(void);

/* Builds contexts from the bundle and makes them current for new
 * connections; the old ones live on in the connections that use them.
 * The bundle stays owned by the caller.  Returns 0, or -1 (err) and the
 * current contexts are kept. */
int tls_set_bundle(struct tls *t, const struct tls_bundle *b, char *err, size_t errsz);

/* True once a certificate is loaded (STARTTLS may be offered). */
bool tls_available(const struct tls *t);

/* Frees the state; connections still open keep their contexts.  Accepts
 * NULL. */
void tls_free(struct tls **t);

/* ----------------------------------------------------------- for sessions */

/* Implicit TLS (RFC 8314): a new bufferevent that owns fd (closed on free)
 * and runs the server handshake first.  Bytes written before the handshake
 * completes are sent after it.  BEV_EVENT_CONNECTED is reported once the
 * handshake is done; a failed handshake is BEV_EVENT_ERROR.  Returns NULL
 * (fd left open) if TLS is not available or on allocation failure. */
struct bufferevent *tls_accept(struct tls *t, struct event_base *base, evutil_socket_t fd);

/* Implicit TLS for a socket given later (libevent's evhttp makes the
 * bufferevent first, then sets its fd): the same as tls_accept, the
 * BIO made by libevent once the socket is set.  Returns NULL if TLS is not
 * available or on allocation failure. */
struct bufferevent *tls_accept_later(struct tls *t, struct event_base *base);

/* STARTTLS / STLS: replaces a plain socket bufferevent by a TLS one on the
 * same socket.  Call it once the "go ahead" reply has been written out
 * (the output buffer is empty).  Whatever the client sent after the
 * command and before the handshake is discarded: the plain input buffer
 * is dropped with the old bufferevent, and bytes still in the socket are
 * read by the TLS handshake (where plaintext makes it fail).  The caller's
 * own buffered input (line reader) must be reset by the caller.
 *
 * plain is freed in every case (its socket too if this fails) and must not
 * be used afterwards.  Returns the new bufferevent (callbacks unset,
 * nothing enabled), or NULL. */
struct bufferevent *tls_starttls(struct tls *t, struct bufferevent *plain);

/* Sends the TLS close_notify alert (RFC 8446 6.1) on a TLS bufferevent
 * whose output is written out, just before the session frees it; a no-op
 * for a plain one.  Never blocks. */
void tls_close_notify(struct bufferevent *bev);

/* What a session may log and show (Received:, log lines). */
struct tls_info {
	char version[16]; /* "TLSv1.3" */
	char cipher[64];  /* "TLS_AES_256_GCM_SHA384" */
	char sni[256];    /* server name the client asked for; "" if none */
	bool resumed;     /* session resumed (ticket) */
};

/* Fills info for a TLS bufferevent whose handshake is done.  Returns true,
 * or false (info zeroed) for a plain bufferevent or before the handshake. */
bool tls_get_info(struct bufferevent *bev, struct tls_info *info);

/* Describes the last TLS error of bev (for a log line) into buf. */
void tls_error_string(struct bufferevent *bev, char *buf, size_t bufsz);

/* The part of a session's bufferevent event callback that concerns a TLS
 * handshake in progress (*pending true after tls_accept/tls_starttls).
 * Returns 1 if the event is the handshake's end (logged as "PROTO
 * session=ID client=IP action=tls version=... cipher=... sni=...
 * resumed=...", *pending cleared): the caller just returns; -1 if the
 * handshake failed (error, EOF or timeout while pending; logged): the
 * caller closes the session without a word, nothing can be said to such a
 * client; 0 for any other event, which the caller handles. */
int tls_session_event(struct bufferevent *bev, short what, bool *pending, const char *proto,
		      const char *id, const char *ip);

enum tls_binding {
	TLS_BINDING_EXPORTER,         /* tls-exporter, RFC 9266 (32 octets) */
	TLS_BINDING_SERVER_END_POINT, /* tls-server-end-point, RFC 5929 */
};

/* Channel-binding data of a TLS connection into out (outsz >= 64).
 * tls-exporter needs TLS 1.3 (or TLS 1.2 with extended master secret);
 * tls-server-end-point hashes our certificate with the hash of its
 * signature (SHA-256 for MD5/SHA-1).  Returns the length, or -1 if the
 * binding is not available for this connection. */
int tls_channel_binding(struct bufferevent *bev, enum tls_binding type, unsigned char *out,
			size_t outsz);

/* ------------------------------------------------------------ client side */

/* A client context for outgoing connections (the queue runner's SMTP
 * client): TLS 1.2 and 1.3, certificates checked against the system CA
 * store (SSL_CTX_set_default_verify_paths) plus ca_file when not NULL or
 * "".  The handshake never fails because of the certificate (opportunistic
 * TLS, RFC 7435): tls_client_verified tells the result.  Returns NULL with
 * err if the context cannot be made or ca_file cannot be loaded. */
struct tls_client;
struct tls_client *tls_client_new(const char *ca_file, char *err, size_t errsz);
/* Another reference to tc (single-threaded count); returns tc.  Accepts
 * NULL. */
struct tls_client *tls_client_ref(struct tls_client *tc);
/* Drops one reference (the last frees the context; connections made with
 * it keep their own).  Accepts NULL and *tc == NULL; sets *tc NULL. */
void tls_client_free(struct tls_client **tc);

/* STARTTLS, client side: replaces a plain socket bufferevent by a TLS one
 * on the same socket and starts the client handshake, with SNI and the
 * certificate name check set to host (a trailing dot is ignored).  Input
 * the server sent before the handshake is discarded (RFC 3207 5).  plain
 * is freed in every case (its socket too if this fails).  Returns the new
 * bufferevent (callbacks unset, nothing enabled; BEV_EVENT_CONNECTED once
 * the handshake is done, BEV_EVENT_ERROR if it fails), or NULL. */
struct bufferevent *tls_client_start(struct tls_client *tc, struct bufferevent *plain,
				     const char *host);

/* After the client handshake: true if the server's certificate chains to a
 * trusted CA and names the host given to tls_client_start; else false with
 * the reason ("self-signed certificate", "hostname mismatch", ...) in
 * why. */
bool tls_client_verified(struct bufferevent *bev, char *why, size_t whysz);

/* Writes data straight into the TLS session of bev, bypassing its output
 * buffer (which must be empty), without blocking: for a last "QUIT" just
 * before the bufferevent is freed.  Best effort; a no-op for a plain
 * bufferevent. */
void tls_send_now(struct bufferevent *bev, const void *data, size_t len);

/* ------------------------------------------------------- exposed for tests */

/* Which certificate a server name selects: the name of the matching
 * domain folder ("mail.example.org" or "*.example.org"), or "" for the
 * default certificate.  The name is matched case-insensitively, without a
 * trailing dot; "*.D" matches exactly one label before D. */
const char *tls_select_name(const struct tls *t, const char *servername);

#endif
