/*
 * sieve-ext-reject.c - "reject" and "ereject" (RFC 5429).  Both cancel
 * the implicit keep and are incompatible with keep, fileinto and
 * redirect (sieve_run_add enforces that).  The library only records the
 * reason; delivery decides between a refusal at SMTP time and an MDN.
 */
#include "sieve-private.h"

static int run_reject(struct sieve_run *r, const struct sieve_node *n)
{
	return sieve_run_add(r, SIEVE_ACT_REJECT, n->pos[0].s[0], true) != NULL ? 0 : -1;
}

static int run_ereject(struct sieve_run *r, const struct sieve_node *n)
{
	return sieve_run_add(r, SIEVE_ACT_EREJECT, n->pos[0].s[0], true) != NULL ? 0 : -1;
}

static const struct sieve_def reject_defs[] = {
    {"reject", false, "s", 0, false, 0, run_reject, NULL},
};
static const struct sieve_def ereject_defs[] = {
    {"ereject", false, "s", 0, false, 0, run_ereject, NULL},
};

const struct sieve_ext sieve_ext_reject = {"reject", reject_defs, 1, 0, 0};
const struct sieve_ext sieve_ext_ereject = {"ereject", ereject_defs, 1, 0, 0};
