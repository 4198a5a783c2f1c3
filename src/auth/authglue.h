/*
 * authglue.h - runs one SASL exchange (auth/sasl.h) for a protocol session
 * on a worker's libevent loop, so SMTP AUTH, POP3 AUTH/USER/PASS (and IMAP
 * AUTHENTICATE) share one implementation of what surrounds the mechanism:
 *
 *   - credentials come from the store (store_account_get);
 *   - the brute-force limiter (auth/authlimit.h) is consulted in the order
 *     that header documents: the IP when the exchange starts, the account
 *     once the username is known; failures are counted and answered after
 *     the limiter's delay, waited with a libevent timer (never sleeping);
 *   - the password check (sasl_server_verify: yescrypt, tens of
 *     milliseconds of CPU) runs on a small pool of threads, so one login
 *     never stalls the other sessions of the worker.  Only
 *     sasl_server_verify runs there (it touches no shared state); the
 *     lookup, the limiter, logging and every callback run on the loop;
 *   - app passwords (auth/apppass.h, store_apppass_*): the main password
 *     or any of the user's app passwords logs in, with one hash check
 *     either way (sasl.h); a login with one logs its name and updates its
 *     last-used time (at most once a minute).  Every protocol that
 *     authenticates through here (SMTP, IMAP, POP3, ManageSieve, HTTP
 *     Basic) takes them, so new protocols should too rather than call
 *     sasl.h themselves;
 *   - one log line per exchange outcome: proto, session, client IP, mech,
 *     user, result and reason (and app_password=NAME, escaped, when one was used).
 *
 * The session never waits inside a call: every outcome is delivered later
 * by the callback, from the event loop (never from inside authglue_start
 * or authglue_step).  Between a start/step and its callback the session
 * should read nothing (it has nothing to feed us).
 *
 * Errors: the callback gets AUTHGLUE_FAIL with a sasl_error; a database
 * error is SASL_ERR_TEMPORARY.
 */
#ifndef TERN_AUTHGLUE_H
#define TERN_AUTHGLUE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sasl.h"

struct store;
struct authglue;

enum authglue_status {
	AUTHGLUE_CHALLENGE, /* send data (may be empty) as a challenge; then
			     * authglue_step with the client's answer */
	AUTHGLUE_OK,        /* authenticated as account; data is the final
			     * server data (SCRAM "v=..."), often empty */
	AUTHGLUE_FAIL,      /* failed; error says why (the delay is over) */
	AUTHGLUE_BLOCKED,   /* the limiter refuses this address for now:
			     * answer with the protocol's temporary failure */
	AUTHGLUE_BUSY,      /* too many checks for this account in flight:
			     * a temporary failure, try again shortly */
};

struct authglue_result {
	enum authglue_status status;
	enum sasl_error error;     /* AUTHGLUE_FAIL */
	const unsigned char *data; /* CHALLENGE / OK: owned by the exchange */
	size_t len;
	const char *account;   /* OK: canonical address; else "" */
	const char *app_password; /* OK: name of the app password used, "" for
				   * the main password (owned by the exchange);
				   * NULL in other outcomes */
	int64_t account_id;    /* OK: the store's account id */
	const char *app_id;    /* OK: the id of the app password used, "" for
				* the main password (owned by the exchange) */
	/* OK: SHA-256 of the stored hash (crypt string) that matched, the
	 * main password's or the app password's: a credential cache keeps
	 * it and compares it with the store's current one, so a new password
	 * or a revoked app password ends a cached login at once. */
	unsigned char cred_tag[32];
	int64_t blocked_until; /* BLOCKED: unix time the block ends */
};

/* Called from the loop with each outcome.  After OK, FAIL, BLOCKED or BUSY the
 * exchange is over: the callback may (and should, once it has copied what
 * it needs from r) free it with authglue_free. */
typedef void (*authglue_cb)(void *ctx, const struct authglue_result *r);

struct authglue_params {
	struct event_base *base;
	struct store *store;
	enum sasl_mech mech;
	const struct sockaddr *client; /* for the limiter; may be NULL */
	const char *client_ip;         /* text, for logs */
	const char *proto;             /* "smtp", "pop3", "imap": for logs */
	const char *session_id;        /* for logs */
	/* Channel bindings of a TLS connection (see struct sasl_params);
	 * n_cbind 0 without TLS.  Copied. */
	const struct sasl_cbind *cbind;
	size_t n_cbind;
	authglue_cb cb;
	void *cb_ctx;
};

/* Starts an exchange.  ir is the initial response (already base64-decoded):
 * NULL for none, non-NULL with len 0 for an empty one.  The outcome comes
 * through p->cb.  Never NULL. */
struct authglue *authglue_start(const struct authglue_params *p, const void *ir, size_t len);

/* Feeds the client's (decoded) answer to the last CHALLENGE.  The next
 * outcome comes through the callback. */
void authglue_step(struct authglue *x, const void *resp, size_t len);

/* The username the client gave so far ("" if none yet; not escaped). */
const char *authglue_user(const struct authglue *x);

/* The credential tag of a stored password hash (crypt string): what
 * authglue_result.cred_tag holds for the one that matched.  All zero if
 * the digest could not be made (cache nothing then). */
void authglue_cred_tag(const char *pwhash, unsigned char out[32]);

/* A login with app password app_id of the account that skipped the check
 * (a credential cache's hit): updates its last-used time as a checked
 * login does (at most once a minute; last_used as just read from the
 * store).  Errors are logged. */
void authglue_app_used(struct store *s, const char *proto, const char *session,
		       int64_t account_id, const char *app_id, int64_t last_used);

/* Ends the exchange (cancel, session closed, or after a final outcome):
 * nothing more is delivered.  A password check running on a thread is
 * left to finish and then dropped.  Sets *x to NULL; accepts NULL. */
void authglue_free(struct authglue **x);


#endif
