/*
 * spf-dns.h - runs an SPF check (spf.h) with asynchronous DNS (dns.h):
 * asks each query the check needs through dns_lookup and answers it, until
 * the check is done.  Used by msgauth.c and `tern auth-check spf`.
 */
#ifndef TERN_SPF_DNS_H
#define TERN_SPF_DNS_H

#include <stdbool.h>

#include "spf.h"

struct dns_resolver;
struct spf_dns_run;

/* Called once when the check is done (possibly from inside
 * spf_dns_start, when it needs no DNS at all). */
typedef void (*spf_dns_done_fn)(void *ctx);

/* Starts running c (owned by the caller, kept until the run is freed). */
struct spf_dns_run *spf_dns_start(struct dns_resolver *res, struct spf_check *c,
				  spf_dns_done_fn done, void *ctx);
bool spf_dns_finished(const struct spf_dns_run *r);
/* Cancels a lookup in flight (done is not called) and frees.  Accepts
 * NULL; sets *r to NULL. */
void spf_dns_free(struct spf_dns_run **r);

#endif
