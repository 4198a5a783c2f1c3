/*
 * sieve-ext-spamtest.c - the "spamtest", "spamtestplus" and "virustest"
 * extensions (RFC 5235):
 *   spamtest [:percent] [COMPARATOR] [MATCH-TYPE] VALUE
 *   virustest [COMPARATOR] [MATCH-TYPE] VALUE
 * compare the normalized result the caller gives (sieve_input.spamtest,
 * .spamtest_percent, .virustest: "0".."10", "0".."100", "0".."5") with
 * VALUE.  A result the caller does not give (NULL) means the message was
 * not tested: the value "0" and a :count of 0 (RFC 5235 3.1).  :percent
 * needs spamtestplus; spamtest and spamtestplus share the one test.
 */
#include <string.h>

#include "sieve-private.h"

static int compare_result(struct sieve_run *r, const struct sieve_node *n, const char *result)
{
	struct sieve_strlist v = {NULL, 0};
	if (result != NULL)
		sieve_strlist_add(&v, result, strlen(result));
	else if (n->match != MATCH_COUNT)
		sieve_strlist_add(&v, "0", 1);
	bool m = sieve_match_any(r, n, &v, &n->pos[0]);
	sieve_strlist_free(&v);
	return m;
}

static int run_spamtest(struct sieve_run *r, const struct sieve_node *n)
{
	return compare_result(r, n, n->percent ? r->in->spamtest_percent : r->in->spamtest);
}

static int run_virustest(struct sieve_run *r, const struct sieve_node *n)
{
	return compare_result(r, n, r->in->virustest);
}

static const struct sieve_def spam_defs[] = {
    {"spamtest", true, "s", 0, false, TAGS_MATCH | TAGS_PERCENT, run_spamtest, NULL},
};

static const struct sieve_def virus_defs[] = {
    {"virustest", true, "s", 0, false, TAGS_MATCH, run_virustest, NULL},
};

const struct sieve_ext sieve_ext_spamtest = {"spamtest", spam_defs, 1, 0, 0};
const struct sieve_ext sieve_ext_spamtestplus = {"spamtestplus", spam_defs, 1, TAGS_PERCENT, 0};
const struct sieve_ext sieve_ext_virustest = {"virustest", virus_defs, 1, 0, 0};
