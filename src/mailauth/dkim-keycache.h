/*
 * dkim-keycache.h - decoded DKIM public keys (EVP_PKEY) kept between
 * messages, so that a key record seen again is not base64-decoded and
 * d2i-parsed again.  An entry is found by selector, domain, key type and
 * the exact bytes of the TXT record: a record that changed in DNS is a
 * miss, never a stale key.  Bounded (oldest entry evicted) and aged out.
 * Thread-safe (one mutex per cache).
 */
#ifndef TERN_DKIM_KEYCACHE_H
#define TERN_DKIM_KEYCACHE_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define DKIM_KEYCACHE_MAX 256	/* entries of the process cache */
#define DKIM_KEYCACHE_AGE 3600	/* seconds an entry of the process cache lives */

struct dkim_keycache;

/* A new empty cache of at most max entries (>= 1), each living age
 * seconds.  Never fails. */
struct dkim_keycache *dkim_keycache_new(size_t max, time_t age);
/* Frees c and its keys.  Accepts NULL; sets *c NULL. */
void dkim_keycache_free(struct dkim_keycache **c);

/* The process cache (DKIM_KEYCACHE_MAX, DKIM_KEYCACHE_AGE), made on first
 * use and freed at exit. */
struct dkim_keycache *dkim_keycache_process(void);

/* The key cached for sel, dom, type and rec[0..len) at time now, with a
 * reference the caller frees (EVP_PKEY_free), and the record's t=y and
 * t=s flags in *testing and *strict; NULL on a miss (expired entries
 * miss). */
EVP_PKEY *dkim_keycache_get(struct dkim_keycache *c, const char *sel, const char *dom, int type,
			    const char *rec, size_t len, time_t now, bool *testing, bool *strict);

/* Keeps pk (the cache takes its own reference) for sel, dom, type and
 * rec[0..len) from now on, replacing an entry of the same key and
 * evicting an expired or else the oldest entry when full. */
void dkim_keycache_put(struct dkim_keycache *c, const char *sel, const char *dom, int type,
		       const char *rec, size_t len, EVP_PKEY *pk, bool testing, bool strict,
		       time_t now);

/* Number of entries (expired ones included until evicted). */
size_t dkim_keycache_count(struct dkim_keycache *c);

#endif
