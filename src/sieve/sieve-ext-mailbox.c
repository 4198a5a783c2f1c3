/*
 * sieve-ext-mailbox.c - the "mailbox" extension (RFC 5490 3): fileinto
 * :create and the "mailboxexists" test, answered by the caller's
 * mailbox_exists callback.
 */
#include "sieve-private.h"

static int run_mailboxexists(struct sieve_run *r, const struct sieve_node *n)
{
	for (size_t i = 0; i < n->pos[0].n; i++)
		if (r->in->mailbox_exists == NULL ||
		    !r->in->mailbox_exists(r->in->ctx, n->pos[0].s[i]))
			return 0;
	return 1;
}

static const struct sieve_def defs[] = {
    {"mailboxexists", true, "l", 0, false, 0, run_mailboxexists, NULL},
};

const struct sieve_ext sieve_ext_mailbox = {"mailbox", defs, 1, TAGS_CREATE, 0};
