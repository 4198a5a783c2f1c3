/*
 * sieve-ext-envelope.c - the "envelope" test (RFC 5228 5.4): "from" and
 * "to" of the SMTP envelope, with address parts.  The null reverse-path
 * is the empty string.
 */
#include <string.h>
#include <strings.h>

#include "sieve-private.h"

static int run_envelope(struct sieve_run *r, const struct sieve_node *n)
{
	struct sieve_strlist parts = {NULL, 0};
	for (size_t i = 0; i < n->pos[0].n; i++) {
		const char *v = NULL;
		if (!strcasecmp(n->pos[0].s[i], "from"))
			v = r->in->env_from != NULL ? r->in->env_from : "";
		else if (!strcasecmp(n->pos[0].s[i], "to"))
			v = r->in->env_to != NULL ? r->in->env_to : "";
		if (v == NULL)
			continue;
		if (v[0] == '\0') {                  /* the null path has no parts but "" */
			if (n->match != MATCH_COUNT) /* and counts 0: RFC 5231 4.2 */
				sieve_strlist_add(&parts, "", 0);
		} else
			sieve_address_part(v, strlen(v), n->part, &parts);
	}
	bool m = sieve_match_any(r, n, &parts, &n->pos[1]);
	sieve_strlist_free(&parts);
	return m;
}

static const struct sieve_def defs[] = {
    {"envelope", true, "ll", 0, false, TAGS_MATCH | TAGS_PART, run_envelope, NULL},
};

const struct sieve_ext sieve_ext_envelope = {"envelope", defs, 1, 0, 0};
