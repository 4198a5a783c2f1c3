/*
 * sieve-ext-duplicate.c - the "duplicate" extension (RFC 7352): the test
 *   duplicate [:handle H] [:header NAME / :uniqueid VALUE] [:seconds N] [:last]
 * is true when the tracking list holds the message's unique ID (the
 * Message-ID field, the first field NAME, or VALUE) under handle H.
 *
 * The library keeps no list: it asks the caller's duplicate_seen callback
 * and returns, with the result of a run that ended without error, the
 * entries to add or refresh (struct sieve_duplicate); the caller stores
 * them once the message is delivered (RFC 7352 3).  Within one run the
 * same handle and ID answer the same every time, as the list only changes
 * after the run.  A message without the field has no ID: the test is
 * false and nothing is recorded.
 */
#include <stdlib.h>
#include <string.h>

#include "sieve-private.h"
#include "xalloc.h"

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The unique ID of the message for n, malloc'ed, or NULL when it has none. */
static char *unique_id(struct sieve_run *r, const struct sieve_node *n)
{
	if (n->dupid.n > 0 && !n->dupid_header)
		return xstrdup(n->dupid.s[0]);
	const char *name = n->dupid.n > 0 ? n->dupid.s[0] : "Message-ID";
	struct sieve_strlist v = {NULL, 0};
	sieve_header_values(r, name, false, &v);
	char *id = NULL;
	if (v.n > 0) {
		const char *s = v.s[0];
		size_t len = strlen(s);
		while (len > 0 && blank(s[len - 1]))
			len--;
		while (len > 0 && blank(*s))
			s++, len--;
		if (len > 0)
			id = xstrndup(s, len);
	}
	sieve_strlist_free(&v);
	return id;
}

static int run_duplicate(struct sieve_run *r, const struct sieve_node *n)
{
	char *id = unique_id(r, n);
	if (id == NULL)
		return 0;
	const char *handle = n->handle.n > 0 ? n->handle.s[0] : "";
	uint64_t seconds = n->has_period ? n->period : 0;
	struct sieve_result *res = r->res;
	for (size_t i = 0; i < res->n_dups; i++) {
		struct sieve_duplicate *d = &res->dups[i];
		if (strcmp(d->handle, handle) != 0 || strcmp(d->id, id) != 0)
			continue;
		free(id);
		if (n->last) {
			d->last = true;
			d->seconds = seconds;
		}
		return d->seen ? 1 : 0;
	}
	int seen = 0;
	if (r->in->duplicate_seen != NULL)
		seen = r->in->duplicate_seen(r->in->ctx, handle, id);
	if (seen < 0) {
		free(id);
		return sieve_run_fail(r, "duplicate: the tracking list cannot be read");
	}
	if (res->n_dups >= r->script->lim.max_actions) {
		free(id);
		return sieve_run_fail(r, "more than %zu distinct duplicate tests",
				      r->script->lim.max_actions);
	}
	res->dups = xreallocarray(res->dups, res->n_dups + 1, sizeof *res->dups);
	res->dups[res->n_dups++] = (struct sieve_duplicate){
	    xstrdup(handle), id, seconds, n->last, seen > 0};
	return seen > 0 ? 1 : 0;
}

static int check_duplicate(const struct sieve_node *n, struct sieve_error *err)
{
	if (n->dupid.n > 0 && n->dupid_header && !n->has_vars && n->dupid.s[0][0] == '\0')
		return sieve_fail(err, n->line, n->col, "duplicate :header needs a field name");
	return 0;
}

static const struct sieve_def defs[] = {
    {"duplicate", true, "", 0, false, TAGS_DUPLICATE, run_duplicate, check_duplicate},
};

const struct sieve_ext sieve_ext_duplicate = {"duplicate", defs, 1, TAGS_DUPLICATE, 0};
