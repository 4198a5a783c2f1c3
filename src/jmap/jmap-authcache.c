/*
 * jmap-authcache.c - see jmap-authcache.h.  Part of src/jmap's core (no
 * HTTP, no store).
 *
 * A plain array searched linearly: it holds a few hundred entries at most
 * (one per user and password in use on this worker), and one scan costs
 * far less than the query the caller makes on every hit anyway.
 */
#include "jmap-authcache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "xalloc.h"

struct jmap_authcache {
	unsigned char secret[32];
	size_t n, max;
	struct jmap_authcache_entry *e;
};

struct jmap_authcache *jmap_authcache_new(size_t max)
{
	struct jmap_authcache *c = xcalloc(1, sizeof *c);
	if (getrandom(c->secret, sizeof c->secret, 0) != (ssize_t)sizeof c->secret) {
		log_error("jmap action=auth_cache error=\"getrandom failed\" note=\"no credential "
			  "cache\"");
		free(c);
		return NULL;
	}
	c->max = max ? max : 1;
	c->e = xcalloc(c->max, sizeof *c->e);
	return c;
}

void jmap_authcache_free(struct jmap_authcache **cp)
{
	struct jmap_authcache *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	OPENSSL_cleanse(c->e, c->max * sizeof *c->e);
	OPENSSL_cleanse(c->secret, sizeof c->secret);
	free(c->e);
	free(c);
}

void jmap_authcache_key(const struct jmap_authcache *c, const char *user, const void *password,
			size_t len, unsigned char out[JMAP_AUTHCACHE_KEY_LEN])
{
	/* user NUL password: no two (user, password) pairs give one input */
	size_t un = strlen(user);
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
			       OSSL_PARAM_construct_end()};
	size_t got = 0;
	if (m == NULL || !EVP_MAC_init(m, c->secret, sizeof c->secret, params) ||
	    !EVP_MAC_update(m, (const unsigned char *)user, un + 1) ||
	    !EVP_MAC_update(m, password, len) ||
	    !EVP_MAC_final(m, out, &got, JMAP_AUTHCACHE_KEY_LEN) || got != JMAP_AUTHCACHE_KEY_LEN) {
		/* A random key then: it matches nothing, so no hit is possible. */
		if (getrandom(out, JMAP_AUTHCACHE_KEY_LEN, 0) != JMAP_AUTHCACHE_KEY_LEN)
			memset(out, 0xff, JMAP_AUTHCACHE_KEY_LEN);
	}
	EVP_MAC_CTX_free(m);
	EVP_MAC_free(mac);
}

static size_t find(const struct jmap_authcache *c, const char *user, const unsigned char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (CRYPTO_memcmp(c->e[i].key, key, JMAP_AUTHCACHE_KEY_LEN) == 0 &&
		    strcmp(c->e[i].user, user) == 0)
			return i;
	return c->n;
}

static void remove_at(struct jmap_authcache *c, size_t i)
{
	c->e[i] = c->e[c->n - 1];
	OPENSSL_cleanse(&c->e[c->n - 1], sizeof c->e[0]);
	c->n--;
}

const struct jmap_authcache_entry *jmap_authcache_find(struct jmap_authcache *c, const char *user,
						       const unsigned char *key, int64_t now,
						       int64_t ttl)
{
	size_t i = find(c, user, key);
	if (i == c->n)
		return NULL;
	/* A clock stepped back counts as expired too. */
	if (now < c->e[i].at || now - c->e[i].at >= ttl) {
		remove_at(c, i);
		return NULL;
	}
	return &c->e[i];
}

void jmap_authcache_put(struct jmap_authcache *c, const struct jmap_authcache_entry *e)
{
	size_t i = find(c, e->user, e->key);
	if (i == c->n && c->n == c->max) {
		size_t old = 0;
		for (size_t j = 1; j < c->n; j++)
			if (c->e[j].at < c->e[old].at)
				old = j;
		remove_at(c, old);
		i = c->n;
	}
	c->e[i] = *e;
	if (i == c->n)
		c->n++;
}

void jmap_authcache_drop(struct jmap_authcache *c, const char *user, const unsigned char *key)
{
	size_t i = find(c, user, key);
	if (i < c->n)
		remove_at(c, i);
}

size_t jmap_authcache_count(const struct jmap_authcache *c)
{
	return c->n;
}
