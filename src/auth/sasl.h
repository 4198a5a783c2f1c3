/*
 * sasl.h - the server side of SASL (RFC 4422), independent of the protocol
 * that carries it (SMTP AUTH, IMAP AUTHENTICATE, POP3 AUTH).
 *
 * Mechanisms: PLAIN (RFC 4616), LOGIN (the de-facto "Username:" /
 * "Password:" exchange), SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802,
 * RFC 7677).
 *
 * A session makes one struct sasl_server per AUTH command and feeds it the
 * client's responses, already base64-decoded (see lib/base64.h).  Each
 * call returns what to do next:
 *
 *   SASL_CONTINUE  send sasl_server_data() as a challenge (the session
 *                  base64-encodes it; it may be empty) and feed the
 *                  client's next response to sasl_server_step();
 *   SASL_VERIFY    a password must be checked against a crypt(3) hash:
 *                  call sasl_server_verify(), which is pure CPU work (no
 *                  I/O, no shared state: it may run on another thread)
 *                  and returns SASL_OK or SASL_FAIL;
 *   SASL_OK        authenticated as sasl_server_account().  If
 *                  sasl_server_data() is not empty (SCRAM's
 *                  server-final-message "v=..."), the protocol must send
 *                  it to the client: as a last challenge whose (empty)
 *                  answer precedes the success reply (SMTP 334, POP3 "+",
 *                  IMAP "+"), or inside the success reply where the
 *                  protocol allows it;
 *   SASL_FAIL      sasl_server_error() says why.
 *
 * Credentials come from a lookup callback (struct sasl_params), called at
 * most once per exchange, on the caller's thread, from start or step.
 *
 * App passwords (apppass.h): with PLAIN and LOGIN, a password of an app
 * password's shape is looked up by its id (app_lookup) and checked
 * against that one hash; a password of any other shape, or whose id the
 * user has none of, against the main hash.  So a login costs one hash
 * check either way (two only when a main password has the shape of one
 * of the user's app passwords and is not it: then the main hash is
 * checked too, so such a main password still works).
 *
 * Usernames are what the client sent (full addresses); the lookup
 * canonicalises them (store_account_get does).  No SASLprep is applied to
 * usernames: they are passed on byte for byte, and control characters or
 * NUL make the response malformed.  Passwords: SCRAM keys are only made
 * for passwords of printable ASCII (sasl_scram_password_ok), for which
 * SASLprep is the identity, so a client's SASLprep cannot disagree with
 * the stored keys; users with other passwords (and users whose hash was
 * imported) have no SCRAM keys and get SASL_ERR_UNAVAILABLE from SCRAM.
 *
 * Bounds: each decoded response is at most SASL_MAX_RESPONSE bytes; PLAIN
 * and LOGIN fields at most 255 bytes; SCRAM messages at most
 * SASL_SCRAM_MAX_ATTRS attributes.  Secrets are compared in constant time
 * and wiped when the server is freed.
 */
#ifndef TERN_SASL_H
#define TERN_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "apppass.h"

/* Longest decoded client response accepted, in bytes.  A session's line
 * limit for AUTH responses should allow base64 of this (4/3 of it). */
#define SASL_MAX_RESPONSE 2048
/* Most attributes in one SCRAM message (RFC 5802 needs at most 5). */
#define SASL_SCRAM_MAX_ATTRS 8
/* Size of a SCRAM record buffer (RFC 5803 text, see sasl_scram_make). */
#define SASL_SCRAM_RECORD_MAX 256
/* Iteration counts accepted in SCRAM records; new records default to
 * SASL_SCRAM_ITER_DEFAULT and never use fewer than SASL_SCRAM_ITER_MIN. */
#define SASL_SCRAM_ITER_MIN 4096
#define SASL_SCRAM_ITER_DEFAULT 4096
#define SASL_SCRAM_ITER_MAX 10000000
/* Most channel-binding types a caller may offer at once. */
#define SASL_MAX_CBIND 2
#define SASL_MAX_CBIND_DATA 128

enum sasl_mech {
	SASL_MECH_PLAIN,
	SASL_MECH_LOGIN,
	SASL_MECH_SCRAM_SHA_256,
	SASL_MECH_SCRAM_SHA_256_PLUS,
};

enum sasl_status { SASL_CONTINUE, SASL_VERIFY, SASL_OK, SASL_FAIL };

enum sasl_error {
	SASL_ERR_NONE,
	SASL_ERR_MALFORMED,       /* response does not parse, or too long */
	SASL_ERR_CREDENTIALS,     /* unknown user or wrong password/proof */
	SASL_ERR_AUTHZ,           /* authzid other than the authcid */
	SASL_ERR_UNAVAILABLE,     /* mechanism unusable: no SCRAM keys for the
				   * user, or -PLUS without channel binding */
	SASL_ERR_CHANNEL_BINDING, /* binding type/data mismatch, or "y" while
				   * we offer -PLUS (downgrade, RFC 5802 6) */
	SASL_ERR_TEMPORARY,       /* the lookup failed (database error) */
};

/* What the lookup callback fills in.  Strings are NUL-terminated; "" when
 * absent. */
struct sasl_creds {
	char address[256];                 /* canonical account address */
	char pwhash[256];                  /* crypt(3) string, "" if none */
	char scram[SASL_SCRAM_RECORD_MAX]; /* SCRAM-SHA-256 record, "" if none */
};

/* Looks up user (NUL-terminated, as sent by the client).  Returns 1 and
 * fills *out, 0 if there is no such user, -1 on a temporary error. */
typedef int (*sasl_lookup_fn)(void *ctx, const char *user, struct sasl_creds *out);

/* An app password of the user (auth/apppass.h), for PLAIN and LOGIN. */
struct sasl_app_creds {
	char name[APPPASS_NAME_MAX + 1]; /* for logs and sasl_server_app_name */
	char pwhash[256];                /* crypt(3) hash of the canonical text */
};

/* Looks up the app password with id (APPPASS_ID_LEN symbols) of the
 * account address (the lookup's canonical address), after the password a
 * client sent turned out to have an app password's shape.  Returns 1 and
 * fills *out, 0 if the account has none with that id, -1 on a temporary
 * error.  Called at most once per exchange, on the caller's thread, right
 * after the lookup, with the same ctx. */
typedef int (*sasl_app_lookup_fn)(void *ctx, const char *address, const char *id,
				  struct sasl_app_creds *out);

/* One channel binding the TLS layer can offer: type "tls-exporter" (TLS
 * 1.3, RFC 9266) or "tls-server-end-point" (RFC 5929), and its data. */
struct sasl_cbind {
	const char *type;
	const unsigned char *data;
	size_t len; /* 1..SASL_MAX_CBIND_DATA */
};

struct sasl_params {
	sasl_lookup_fn lookup;
	void *lookup_ctx;
	/* Channel bindings of this connection.  n_cbind > 0 means the
	 * session advertises SCRAM-SHA-256-PLUS (so a client's "y" flag is a
	 * downgrade); 0 on a connection without TLS. */
	struct sasl_cbind cbind[SASL_MAX_CBIND];
	size_t n_cbind;
	/* App passwords (PLAIN and LOGIN only); NULL: the main password only.
	 * SCRAM's keys come from the main password, so SCRAM ignores it. */
	sasl_app_lookup_fn app_lookup;
};

struct sasl_server;

/* The mechanism named name[0..len) (case-insensitive).  Returns 0 and sets
 * *out, or -1 for a name we do not implement. */
int sasl_mech_from_name(const char *name, size_t len, enum sasl_mech *out);
/* "PLAIN", "LOGIN", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS". */
const char *sasl_mech_name(enum sasl_mech m);
/* A short name for logs: "malformed", "credentials", ... */
const char *sasl_error_name(enum sasl_error e);

/* A new exchange for mechanism m.  params is copied (channel-binding data
 * too); the lookup context must outlive the server.  Never NULL. */
struct sasl_server *sasl_server_new(enum sasl_mech m, const struct sasl_params *params);
/* Wipes and frees; sets *s to NULL.  Accepts NULL. */
void sasl_server_free(struct sasl_server **s);

/* Starts the exchange.  ir is the initial response (SASL-IR, RFC 4959 /
 * RFC 4954 "AUTH PLAIN xxx"): NULL for "no initial response", non-NULL
 * with len 0 for an empty one ("=").  Returns as described at the top. */
enum sasl_status sasl_server_start(struct sasl_server *s, const void *ir, size_t len);
/* Feeds the client's next response (after SASL_CONTINUE). */
enum sasl_status sasl_server_step(struct sasl_server *s, const void *resp, size_t len);
/* Checks the password after SASL_VERIFY; returns SASL_OK or SASL_FAIL. */
enum sasl_status sasl_server_verify(struct sasl_server *s);

/* The challenge (after SASL_CONTINUE) or final server data (after
 * SASL_OK), *len bytes, owned by s and valid until the next call on s. */
const unsigned char *sasl_server_data(const struct sasl_server *s, size_t *len);
/* After SASL_OK: the authenticated account (the lookup's address). */
const char *sasl_server_account(const struct sasl_server *s);
/* After SASL_OK: the name of the app password that matched, or "" when
 * it was the main password. */
const char *sasl_server_app_name(const struct sasl_server *s);
/* The username the client gave so far ("" if none yet), for logs and the
 * brute-force limiter; not escaped (use log_escape). */
const char *sasl_server_user(const struct sasl_server *s);
enum sasl_error sasl_server_error(const struct sasl_server *s);
enum sasl_mech sasl_server_mech(const struct sasl_server *s);

/* For tests only: use nonce (printable ASCII without ',') as the SCRAM
 * server nonce instead of a random one.  Call before start. */
void sasl_server_set_nonce(struct sasl_server *s, const char *nonce);

/* ------------------------------------------------------------ SCRAM keys */

/* The keys of one SCRAM-SHA-256 record. */
struct sasl_scram_keys {
	unsigned iterations;
	unsigned char salt[64];
	size_t salt_len;
	unsigned char stored_key[32];
	unsigned char server_key[32];
};

/* True if password can have SCRAM keys: 1..1023 bytes of printable ASCII
 * (0x20..0x7e), for which SASLprep changes nothing. */
bool sasl_scram_password_ok(const char *password);
/* Computes the RFC 5803-style record
 *   "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>"
 * from password, salt (1..64 bytes) and iterations into out (size outsz,
 * SASL_SCRAM_RECORD_MAX is enough).  Returns 0, or -1 if the password is
 * not sasl_scram_password_ok, iterations is out of range, or out is too
 * small. */
int sasl_scram_compute(const char *password, const unsigned char *salt, size_t salt_len,
		       unsigned iterations, char *out, size_t outsz);
/* As sasl_scram_compute with a fresh random 16-byte salt. */
int sasl_scram_make(const char *password, unsigned iterations, char *out, size_t outsz);
/* Parses a record into *k.  Returns 0, or -1 if it is not a well-formed
 * SCRAM-SHA-256 record. */
int sasl_scram_parse(const char *record, struct sasl_scram_keys *k);

#endif
