/*
 * dkim-keys.h - our domains' DKIM keys (kept by the store, store-dkim.c):
 * making a domain's pair of keys, and signing outgoing mail with them.
 */
#ifndef TERN_DKIM_KEYS_H
#define TERN_DKIM_KEYS_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "arc.h"
#include "dkim.h"
#include "store.h"

/* Makes two new keys for domain, Ed25519 (RFC 8463) and RSA-2048, with
 * selectors dated now ("ed-YYYYMMDD", "rsa-YYYYMMDD", "-2" ... when the
 * day's name is taken) into selectors[0] and [1].  They become the
 * domain's active keys; keys active before stay published (they verify,
 * but sign no more) until retired.  0, or -1 with err (nothing changed). */
int dkim_keys_make(struct store *s, const char *domain, time_t now, char selectors[2][64],
		   char *err, size_t errsz);

/* Loaded signing keys of one process (one owner; not thread-safe). */
struct dkim_keyring;
struct dkim_keyring *dkim_keyring_new(struct store *s);
void dkim_keyring_free(struct dkim_keyring **kr);

/* Signs msg with every active key of the first of domains (or the nearest
 * parent of one) that has keys: appends one DKIM-Signature field per key
 * to out, to go at the top of the message; used gets the signing domain.
 * Returns the number of signatures (0: no domain has a key), or -1 with
 * err (a key file could not be loaded, signing failed). */
int dkim_keyring_sign(struct dkim_keyring *kr, const char *const *domains, size_t n_domains,
		      const char *msg, size_t len, time_t now, struct buf *out, char *used,
		      size_t usedsz, char *err, size_t errsz);

/* The loaded key (of type prefer if it has one active) of the first of
 * domains (or the nearest parent) that has active keys, for other
 * signatures than DKIM's (ARC seals); NULL with err when none.  Owned by
 * the keyring. */
const struct dkim_signer *dkim_keyring_signer(struct dkim_keyring *kr, const char *const *domains,
					      size_t n_domains, enum dkim_keytype prefer,
					      char *err, size_t errsz);

/* Our ARC set (RFC 8617 5.1) over msg, for mail we pass on: sealed with
 * the RSA key (else the other) of the first of domains that has keys,
 * results (our verdict, RFC 8601 resinfo text) in the AAR, cv the chain
 * as it arrived.  Appends to out; 0 sealed, 1 nothing to do (no key, or
 * the chain had already failed), -1 with err. */
int dkim_keyring_arc_seal(struct dkim_keyring *kr, const char *const *domains, size_t n_domains,
			  const char *msg, size_t len, const char *authserv_id, const char *results,
			  enum arc_status cv, struct buf *out, char *err, size_t errsz);

#endif
