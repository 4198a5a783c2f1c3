/*
 * jmap-websession.h - the web app's sign-in (docs/webmail.md "Sessions"):
 * POST /jmap/web/login with {"username", "password"} checks the password
 * as HTTP Basic does (authglue, the same limiter), then makes a session:
 * a random 256-bit id sent as the cookie JMAP_WEB_COOKIE (Secure;
 * HttpOnly; SameSite=Strict; Path=/) and kept in server.db only as its
 * SHA-256 (store-websession.c).  JMAP requests may then authenticate by
 * the cookie instead of Authorization; all of them but downloads and the
 * event stream (which a browser makes without custom headers, and which
 * change nothing) must also carry JMAP_WEB_CSRF_HEADER with the session's
 * CSRF token: SHA-256 of a fixed label and the id, hex, which the login
 * answer and GET /jmap/web/session return to the app.
 *
 * Pure (no event loop, no HTTP library): jmap-server.c does the
 * requests; tests/unit and fuzz/fuzz-websession.c call these directly.
 */
#ifndef TERN_JMAP_WEBSESSION_H
#define TERN_JMAP_WEBSESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jmap-authcache.h"

struct store;

#define JMAP_WEB_COOKIE "__Host-tern_session"
#define JMAP_WEB_CSRF_HEADER "X-Tern-CSRF"
#define JMAP_WEB_ID_LEN 32
#define JMAP_WEB_CSRF_LEN 64 /* hex characters */
#define JMAP_WEB_LIFETIME (14 * 24 * 3600) /* seconds from sign-in */
#define JMAP_WEB_SET_COOKIE_MAX 192

enum jmap_web_route {
	JMAP_WEB_NONE,
	JMAP_WEB_LOGIN,      /* POST: sign in */
	JMAP_WEB_SESSION,    /* GET: who is signed in, and the CSRF token */
	JMAP_WEB_LOGOUT,     /* POST: end this session */
	JMAP_WEB_LOGOUT_ALL, /* POST: end every session of the account */
};

/* The route of a /jmap/web/ path; JMAP_WEB_NONE for any other path. */
enum jmap_web_route jmap_web_route_of(const char *path);

/* User u and password pw as a SASL PLAIN initial response
 * "\0user\0password" into out, the user lower-cased into user (also for
 * HTTP Basic, jmap-server.c).  Its length, or -1 (user empty or over 255
 * bytes, or out too small).  The caller checks for NULs. */
long jmap_web_plain(const char *u, size_t un, const char *pw, size_t pn, char *out,
		    size_t outsz, char user[256]);

/* The login body, JSON {"username": S, "password": S} (at most 4 KiB), as
 * a SASL PLAIN initial response "\0user\0password" into out; the user,
 * lower-cased, into user.  Its length, or -1 (malformed).  The caller
 * wipes out. */
long jmap_web_login_plain(const char *body, size_t len, char *out, size_t outsz,
			  char user[256]);

/* The session id in a Cookie header value (RFC 6265 5.4: "a=b; c=d").
 * 1 found (id filled), 0 no such cookie (or h NULL), -1 one that is not
 * 64 hex digits. */
int jmap_web_cookie_id(const char *h, unsigned char id[JMAP_WEB_ID_LEN]);

/* SHA-256 of the id: the key of its row. */
void jmap_web_id_hash(const unsigned char id[JMAP_WEB_ID_LEN], unsigned char hash[32]);

/* The id's CSRF token, hex, NUL-terminated. */
void jmap_web_csrf(const unsigned char id[JMAP_WEB_ID_LEN], char out[JMAP_WEB_CSRF_LEN + 1]);

/* Is h (the header's value, NULL if absent) the id's token?  Constant time. */
bool jmap_web_csrf_ok(const unsigned char id[JMAP_WEB_ID_LEN], const char *h);

/* Makes and stores a session for what a login proved (cred: account id,
 * app id, cred_tag).  set_cookie gets the Set-Cookie value, csrf the
 * token.  0, or -1 (random bytes or the database failed; logged). */
int jmap_web_create(struct store *s, const struct jmap_authcache_entry *cred, int64_t now,
		    char set_cookie[JMAP_WEB_SET_COOKIE_MAX], char csrf[JMAP_WEB_CSRF_LEN + 1]);

/* The Set-Cookie value that deletes the cookie. */
const char *jmap_web_clear_cookie(void);

/* {"username": account, "csrfToken": csrf} as a string to free; its length
 * in *len. */
char *jmap_web_session_json(const char *account, const char *csrf, size_t *len);

#endif
