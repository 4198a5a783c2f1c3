/*
 * sieve-ext-fileinto.c - "fileinto" (RFC 5228 4.1), with :copy (RFC
 * 3894), :create (RFC 5490 3.2) and :flags (RFC 5232 5) when those
 * extensions are required.
 */
#include "sieve-private.h"

static int run_fileinto(struct sieve_run *r, const struct sieve_node *n)
{
	const char *mbox = n->pos[0].s[0];
	if (mbox[0] == '\0')
		return sieve_run_fail(r, "fileinto an empty mailbox name");
	struct sieve_action *a = sieve_run_add(r, SIEVE_ACT_FILEINTO, mbox, !n->copy);
	if (a == NULL)
		return -1;
	a->create = a->create || n->create;
	sieve_run_set_flags(r, a, n->has_flags ? &n->flags : NULL);
	return 0;
}

static const struct sieve_def defs[] = {
    {"fileinto", false, "s", 0, false, TAGS_COPY | TAGS_CREATE | TAGS_FLAGS, run_fileinto, NULL},
};

const struct sieve_ext sieve_ext_fileinto = {"fileinto", defs, 1, 0, 0};
