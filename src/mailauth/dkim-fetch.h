/*
 * dkim-fetch.h - asking DNS for DKIM key records in advance, all at once,
 * on an event loop (dns_lookup), so that the synchronous verifiers
 * (dkim_verify, arc_validate) can then read the answers through their
 * dkim_lookup_fn.  Used by msgauth.c (DKIM on port 25) and by
 * `tern auth-check arc`.
 */
#ifndef TERN_DKIM_FETCH_H
#define TERN_DKIM_FETCH_H

#include <stddef.h>

#include "buf.h"

#define DKIM_FETCH_MAX 128 /* distinct key records one fetch asks for */

struct dns_resolver;
struct dkim_fetch;

/* Called after each answer (from the DNS callback); see
 * dkim_fetch_pending. */
typedef void (*dkim_fetch_cb)(void *ctx);

/* A new, empty fetch; res must outlive it.  Never fails. */
struct dkim_fetch *dkim_fetch_new(struct dns_resolver *res, dkim_fetch_cb cb, void *ctx);
/* Frees f and cancels what is still asked.  Accepts NULL; sets *f NULL. */
void dkim_fetch_free(struct dkim_fetch **f);

/* Asks for selector._domainkey.domain (lengths given, not NUL-terminated)
 * unless it was asked already.  Names empty or too long (64 / 256), and
 * pairs beyond DKIM_FETCH_MAX, are not asked (their lookup says "key not
 * looked up", a temporary failure). */
void dkim_fetch_add(struct dkim_fetch *f, const char *selector, size_t sl, const char *domain,
		    size_t dl);

/* Number of answers still awaited. */
size_t dkim_fetch_pending(const struct dkim_fetch *f);

/* Gives up on the answers still awaited: they become temporary failures. */
void dkim_fetch_cancel(struct dkim_fetch *f);

/* A dkim_lookup_fn over the answers (ctx is the struct dkim_fetch): 0
 * with the record (the first TXT string of the RRset that parses as a
 * key record, else the first), 1 when there is none, -1 when the lookup
 * failed, was not made or has not answered. */
int dkim_fetch_lookup(void *ctx, const char *selector, const char *domain, struct buf *rec,
		      char *err, size_t errsz);

#endif
