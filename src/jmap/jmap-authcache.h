/*
 * jmap-authcache.h - a small per-process cache of successful HTTP Basic
 * logins, so that a JMAP client sending the same credentials with every
 * request does not pay a password hash check (yescrypt, tens of ms) each
 * time (docs/jmap.md "Authentication").
 *
 * An entry is found by the user name and a keyed hash (HMAC-SHA256 with a
 * random key made per process from getrandom) of user and password: the
 * password itself is never kept, and the hash is useless outside this
 * process.  It holds what the login proved (account id and address, the
 * app password's id, "" for the main one) and the credential tag the
 * login matched (authglue_result.cred_tag: a digest of the stored hash),
 * which the caller compares with the store's current one before trusting
 * a hit, so that a new password or a revoked app password ends the cached
 * login at once.  Only successes are put; failures never.
 *
 * Bounded: at most `max` entries; a put into a full cache evicts the
 * oldest.  Pure (no store, no event loop): tests/unit/test-jmap.c.
 */
#ifndef TERN_JMAP_AUTHCACHE_H
#define TERN_JMAP_AUTHCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JMAP_AUTHCACHE_KEY_LEN 32

struct jmap_authcache;

struct jmap_authcache_entry {
	char user[256];                            /* as the client gave it (lower-cased) */
	unsigned char key[JMAP_AUTHCACHE_KEY_LEN]; /* jmap_authcache_key of user+password */
	int64_t account_id;
	char account[256]; /* the canonical address */
	char app_id[8];    /* the app password's id, "" for the main password */
	char app_name[65]; /* its name, for logs; "" for the main password */
	unsigned char cred_tag[32];
	int64_t at; /* unix time the password was checked */
	/* a web app sign-in (never in the cache): the SHA-256 of its session
	 * id, so that its event streams end when the session does */
	bool web;
	unsigned char web_hash[32];
};

/* A cache of at most max (>= 1) entries with a fresh random key.  NULL
 * (with a log line) if getrandom fails: the caller then checks every
 * password.  Owned by the caller: jmap_authcache_free. */
struct jmap_authcache *jmap_authcache_new(size_t max);

/* Frees the cache and wipes its key; sets *c to NULL; accepts NULL. */
void jmap_authcache_free(struct jmap_authcache **c);

/* The keyed hash of user and password (HMAC-SHA256, this cache's key). */
void jmap_authcache_key(const struct jmap_authcache *c, const char *user, const void *password,
			size_t len, unsigned char out[JMAP_AUTHCACHE_KEY_LEN]);

/* The entry of user and key checked less than ttl seconds before now, or
 * NULL (an older one is dropped).  The pointer is valid until the next
 * put or drop. */
const struct jmap_authcache_entry *jmap_authcache_find(struct jmap_authcache *c, const char *user,
						       const unsigned char *key, int64_t now,
						       int64_t ttl);

/* Adds e (copied), replacing an entry of the same user and key; a full
 * cache first drops its oldest entry. */
void jmap_authcache_put(struct jmap_authcache *c, const struct jmap_authcache_entry *e);

/* Drops the entry of user and key, if any (its credentials changed). */
void jmap_authcache_drop(struct jmap_authcache *c, const char *user, const unsigned char *key);

/* Entries held (for tests). */
size_t jmap_authcache_count(const struct jmap_authcache *c);

#endif
