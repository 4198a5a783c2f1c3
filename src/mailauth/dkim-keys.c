/*
 * dkim-keys.c - our domains' DKIM keys: making them (both kinds, dated
 * selectors), and signing outgoing mail with them through a per-process
 * cache of loaded keys.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim-keys.h"
#include "xalloc.h"

#define KEYRING_MAX 32 /* loaded keys kept per process */

struct cached_key {
	char domain[256];
	char selector[64];
	struct dkim_signer *signer;
	unsigned long long used; /* for eviction: the oldest use goes */
};

struct dkim_keyring {
	struct store *store;
	struct cached_key keys[KEYRING_MAX];
	size_t n;
	unsigned long long clock;
};

static const struct {
	enum dkim_keytype type;
	const char *name;   /* in store_dkim_key.type */
	const char *prefix; /* of the selector */
} kinds[2] = {{DKIM_KEY_ED25519, "ed25519", "ed"}, {DKIM_KEY_RSA, "rsa", "rsa"}};

/* A selector of prefix for the day of now that domain does not use yet:
 * "ed-20261206", then "ed-20261206-2", ... */
static int new_selector(const struct store_dkim_key *have, size_t n_have, const char *prefix,
			time_t now, char out[64])
{
	struct tm tm;
	gmtime_r(&now, &tm);
	char day[16];
	strftime(day, sizeof day, "%Y%m%d", &tm);
	for (int k = 1; k < 100; k++) {
		if (k == 1)
			snprintf(out, 64, "%s-%s", prefix, day);
		else
			snprintf(out, 64, "%s-%s-%d", prefix, day, k);
		bool taken = false;
		for (size_t i = 0; i < n_have && !taken; i++)
			taken = strcmp(have[i].selector, out) == 0;
		if (!taken)
			return 0;
	}
	return -1;
}

int dkim_keys_make(struct store *s, const char *domain, time_t now, char selectors[2][64],
		   char *err, size_t errsz)
{
	struct store_dkim_key *have = xcalloc(STORE_DKIM_KEYS_MAX, sizeof *have);
	size_t n_have;
	int ret = -1;
	struct buf pem, rec;
	buf_init(&pem, 4096);
	buf_init(&rec, 1024);
	if (store_dkim_list(s, domain, have, STORE_DKIM_KEYS_MAX, &n_have, err, errsz) < 0)
		goto out;
	if (n_have + 2 > STORE_DKIM_KEYS_MAX) {
		snprintf(err, errsz, "%s has %zu DKIM keys; retire old ones first", domain, n_have);
		goto out;
	}
	size_t made = 0;
	for (size_t i = 0; i < 2; i++) {
		buf_reset(&pem);
		buf_reset(&rec);
		if (new_selector(have, n_have, kinds[i].prefix, now, selectors[i]) < 0) {
			snprintf(err, errsz, "no free selector for %s today", domain);
			break;
		}
		if (dkim_keygen(kinds[i].type, &pem, &rec, err, errsz) < 0 ||
		    buf_append(&rec, "", 1) < 0)
			break;
		if (store_dkim_add(s, domain, selectors[i], kinds[i].name, pem.data, pem.len,
				   rec.data, err, errsz) < 0)
			break;
		made++;
	}
	if (made == 2) {
		/* Only now do the old keys stop signing. */
		const char *keep[2] = {selectors[0], selectors[1]};
		ret = store_dkim_rotate_out(s, domain, keep, 2, err, errsz);
	} else {
		for (size_t i = 0; i < made; i++)
			(void)store_dkim_remove(s, domain, selectors[i], NULL, 0);
	}
out:
	explicit_bzero(pem.data, pem.cap);
	buf_free(&pem);
	buf_free(&rec);
	free(have);
	return ret;
}

struct dkim_keyring *dkim_keyring_new(struct store *s)
{
	struct dkim_keyring *kr = xcalloc(1, sizeof *kr);
	kr->store = s;
	return kr;
}

void dkim_keyring_free(struct dkim_keyring **krp)
{
	struct dkim_keyring *kr = *krp;
	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->n; i++)
		dkim_signer_free(&kr->keys[i].signer);
	free(kr);
	*krp = NULL;
}

/* The loaded signer of a key, loading it on first use. */
static struct dkim_signer *signer_for(struct dkim_keyring *kr, const struct store_dkim_key *k,
				      char *err, size_t errsz)
{
	for (size_t i = 0; i < kr->n; i++)
		if (!strcmp(kr->keys[i].domain, k->domain) &&
		    !strcmp(kr->keys[i].selector, k->selector)) {
			kr->keys[i].used = ++kr->clock;
			return kr->keys[i].signer;
		}
	char path[PATH_MAX];
	if (store_dkim_key_path(kr->store, k->domain, k->selector, path, sizeof path) < 0) {
		snprintf(err, errsz, "bad key name %s/%s", k->domain, k->selector);
		return NULL;
	}
	struct dkim_signer *sg = dkim_signer_load(k->domain, k->selector, path, err, errsz);
	if (sg == NULL)
		return NULL;
	size_t slot = kr->n;
	if (kr->n == KEYRING_MAX) {
		slot = 0;
		for (size_t i = 1; i < kr->n; i++)
			if (kr->keys[i].used < kr->keys[slot].used)
				slot = i;
		dkim_signer_free(&kr->keys[slot].signer);
	} else {
		kr->n++;
	}
	struct cached_key *c = &kr->keys[slot];
	snprintf(c->domain, sizeof c->domain, "%s", k->domain);
	snprintf(c->selector, sizeof c->selector, "%s", k->selector);
	c->signer = sg;
	c->used = ++kr->clock;
	return sg;
}

int dkim_keyring_sign(struct dkim_keyring *kr, const char *const *domains, size_t n_domains,
		      const char *msg, size_t len, time_t now, struct buf *out, char *used,
		      size_t usedsz, char *err, size_t errsz)
{
	struct store_dkim_key *keys = xcalloc(STORE_DKIM_KEYS_MAX, sizeof *keys);
	int ret = 0;
	if (usedsz > 0)
		used[0] = '\0';
	for (size_t d = 0; d < n_domains && ret == 0; d++) {
		/* The domain, then its parents (mail from a subdomain is
		 * aligned with a parent's signature under relaxed DMARC), but
		 * never a bare top-level name. */
		for (const char *p = domains[d]; p != NULL && *p != '\0' && strchr(p, '.') != NULL;
		     p = strchr(p, '.') + 1) {
			size_t n;
			if (store_dkim_list(kr->store, p, keys, STORE_DKIM_KEYS_MAX, &n, NULL, 0) <
			    0)
				continue; /* not a domain name, or no database: next */
			size_t signed_n = 0;
			for (size_t i = 0; i < n; i++) {
				if (!keys[i].active)
					continue;
				struct dkim_signer *sg = signer_for(kr, &keys[i], err, errsz);
				if (sg == NULL || dkim_sign(sg, msg, len, now, out, err, errsz) < 0) {
					ret = -1;
					break;
				}
				signed_n++;
			}
			if (ret == 0 && signed_n > 0) {
				snprintf(used, usedsz, "%s", p);
				ret = (int)signed_n;
			}
			if (ret != 0)
				break;
		}
	}
	free(keys);
	return ret;
}

const struct dkim_signer *dkim_keyring_signer(struct dkim_keyring *kr, const char *const *domains,
					      size_t n_domains, enum dkim_keytype prefer,
					      char *err, size_t errsz)
{
	struct store_dkim_key *keys = xcalloc(STORE_DKIM_KEYS_MAX, sizeof *keys);
	const struct dkim_signer *found = NULL;
	snprintf(err, errsz, "no domain with DKIM keys");
	for (size_t d = 0; d < n_domains && found == NULL; d++) {
		for (const char *p = domains[d];
		     found == NULL && p != NULL && *p != '\0' && strchr(p, '.') != NULL;
		     p = strchr(p, '.') + 1) {
			size_t n;
			if (store_dkim_list(kr->store, p, keys, STORE_DKIM_KEYS_MAX, &n, NULL, 0) < 0)
				continue;
			const struct store_dkim_key *pick = NULL;
			for (size_t i = 0; i < n; i++) {
				if (!keys[i].active)
					continue;
				bool want = !strcmp(keys[i].type, prefer == DKIM_KEY_RSA ? "rsa" : "ed25519");
				if (pick == NULL || want)
					pick = &keys[i];
				if (want)
					break;
			}
			if (pick != NULL)
				found = signer_for(kr, pick, err, errsz);
		}
	}
	free(keys);
	return found;
}

int dkim_keyring_arc_seal(struct dkim_keyring *kr, const char *const *domains, size_t n_domains,
			  const char *msg, size_t len, const char *authserv_id, const char *results,
			  enum arc_status cv, struct buf *out, char *err, size_t errsz)
{
	const struct dkim_signer *sg =
	    dkim_keyring_signer(kr, domains, n_domains, DKIM_KEY_RSA, err, errsz);
	if (sg == NULL)
		return 1;
	return arc_seal(sg, msg, len, authserv_id, results, cv, time(NULL), out, err, errsz);
}
