/*
 * sieve-ext-environment.c - the "environment" extension (RFC 5183):
 *   environment [COMPARATOR] [MATCH-TYPE] NAME KEYS
 * is true when the item NAME (compared case-insensitively) has a value
 * matching one of KEYS.  The caller gives the items (sieve_input.env);
 * an item it does not give is unknown and the test is false (with
 * :count, the count is 0).
 */
#include <string.h>
#include <strings.h>

#include "sieve-private.h"

static int run_environment(struct sieve_run *r, const struct sieve_node *n)
{
	struct sieve_strlist v = {NULL, 0};
	const char *const *e = r->in->env;
	for (size_t i = 0; e != NULL && e[i] != NULL; i += 2)
		if (!strcasecmp(e[i], n->pos[0].s[0]) && e[i + 1] != NULL) {
			sieve_strlist_add(&v, e[i + 1], strlen(e[i + 1]));
			break;
		}
	bool m = sieve_match_any(r, n, &v, &n->pos[1]);
	sieve_strlist_free(&v);
	return m;
}

static const struct sieve_def defs[] = {
    {"environment", true, "sl", 0, false, TAGS_MATCH, run_environment, NULL},
};

const struct sieve_ext sieve_ext_environment = {"environment", defs, 1, 0, 0};
