/*
 * sieve-ext-include.c - the "include" extension (RFC 6609):
 *   include [:personal / :global] [:once] [:optional] NAME
 *   return
 *   global NAMES            (with "variables"; and the "global." namespace)
 *
 * The library stores no scripts: the caller's include callback gives the
 * source of a personal or global script, which is compiled (with the
 * including script's limits) the first time a run includes it and kept
 * for the rest of the run.  An included script runs with its own
 * variables and match variables, shares the global ones (those it
 * declares with `global`, or names in the "global." namespace), and adds
 * its actions to the one result, with the one implicit keep (RFC 6609
 * 3.2).  `return` ends the script it is in; `stop` ends them all.
 *
 * Runtime errors (the implicit keep, RFC 6609): a script that does
 * not exist (unless :optional), does not compile, is included while it
 * runs (a loop), or more than SIEVE_MAX_INCLUDE_DEPTH deep or
 * SIEVE_MAX_INCLUDES distinct scripts.  A missing script is no compile
 * error: scripts can be uploaded in any order.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sieve-private.h"
#include "xalloc.h"

/* A script name: 1..128 bytes, no '/', no control character, not
 * starting with '.' (it may name a file in the global directory). */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/')
			return false;
	return true;
}

static int check_include(const struct sieve_node *n, struct sieve_error *err)
{
	/* RFC 6609: the name is a constant, variables are not expanded */
	if (n->has_vars)
		return sieve_fail(err, n->line, n->col, "include takes a constant script name");
	if (!name_ok(n->pos[0].s[0]))
		return sieve_fail(err, n->line, n->col, "include: \"%.100s\" is not a script name",
				  n->pos[0].s[0]);
	return 0;
}

static struct sieve_inc *find_inc(struct sieve_run *r, bool global, const char *name)
{
	for (size_t i = 0; i < r->n_incs; i++)
		if (r->incs[i].global == global && !strcmp(r->incs[i].name, name))
			return &r->incs[i];
	return NULL;
}

/* The compiled script for (global, name), loaded now if needed; NULL
 * with *missing when it does not exist, NULL after sieve_run_fail. */
static struct sieve_inc *load(struct sieve_run *r, bool global, const char *name, bool *missing)
{
	*missing = false;
	struct sieve_inc *inc = find_inc(r, global, name);
	if (inc != NULL)
		return inc;
	const char *where = global ? "global" : "personal";
	if (r->n_incs >= SIEVE_MAX_INCLUDES)
		return sieve_run_fail(r, "include: more than %d scripts", SIEVE_MAX_INCLUDES), NULL;
	char *src = NULL;
	size_t len = 0;
	int rc = r->in->include != NULL ? r->in->include(r->in->ctx, global, name, &src, &len) : 0;
	if (rc < 0)
		return sieve_run_fail(r, "include: the %s script \"%.100s\" cannot be read", where,
				      name),
		       NULL;
	if (rc == 0) {
		*missing = true;
		return NULL;
	}
	struct sieve_script *s;
	struct sieve_error e;
	rc = sieve_compile(src, len, &r->script->lim, &s, &e);
	free(src);
	if (rc < 0)
		return sieve_run_fail(r, "include: %s script \"%.100s\" %d:%d: %s", where, name,
				      e.line, e.col, e.msg),
		       NULL;
	r->incs = xreallocarray(r->incs, r->n_incs + 1, sizeof *r->incs);
	inc = &r->incs[r->n_incs++];
	*inc = (struct sieve_inc){global, xstrdup(name), s, false, false};
	return inc;
}

/* What a script has of its own while it runs (variables, match variables,
 * its global declarations), set aside while another runs. */
struct saved {
	const struct sieve_script *script;
	struct sieve_strlist names, values, gdecl;
	char *match[SIEVE_MAX_MATCHVAR + 1];
};

static void save(struct sieve_run *r, struct saved *sv)
{
	sv->script = r->script;
	sv->names = r->var_names;
	sv->values = r->var_values;
	sv->gdecl = r->gdecl;
	memcpy(sv->match, r->match, sizeof sv->match);
	r->var_names = r->var_values = r->gdecl = (struct sieve_strlist){NULL, 0};
	memset(r->match, 0, sizeof r->match);
}

static void restore(struct sieve_run *r, struct saved *sv)
{
	sieve_vars_free(r); /* the included script's locals */
	sieve_strlist_free(&r->gdecl);
	r->script = sv->script;
	r->var_names = sv->names;
	r->var_values = sv->values;
	r->gdecl = sv->gdecl;
	memcpy(r->match, sv->match, sizeof r->match);
}

static int run_include(struct sieve_run *r, const struct sieve_node *n)
{
	const char *name = n->pos[0].s[0];
	bool global = n->inc_global, missing;
	const char *where = global ? "global" : "personal";
	if (r->inc_depth >= SIEVE_MAX_INCLUDE_DEPTH)
		return sieve_run_fail(r, "include: nested deeper than %d", SIEVE_MAX_INCLUDE_DEPTH);
	struct sieve_inc *inc = load(r, global, name, &missing);
	if (inc == NULL && missing && n->inc_optional)
		return 0;
	if (inc == NULL && missing)
		return sieve_run_fail(r, "include: no %s script \"%.100s\"", where, name);
	if (inc == NULL)
		return -1;
	if (inc->active)
		return sieve_run_fail(r, "include: %s script \"%.100s\" includes itself", where,
				      name);
	if (n->inc_once && inc->ran)
		return 0;
	size_t idx = (size_t)(inc - r->incs); /* r->incs may move while it runs */
	struct saved sv;
	save(r, &sv);
	r->script = inc->script;
	inc->active = true;
	r->inc_depth++;
	int rc = sieve_run_block(r, inc->script->top);
	r->inc_depth--;
	r->incs[idx].active = false;
	r->incs[idx].ran = true;
	r->returned = false;
	restore(r, &sv);
	return rc;
}

static int run_return(struct sieve_run *r, const struct sieve_node *n)
{
	/* at the top it ends the run, as stop (RFC 6609) */
	if (r->inc_depth == 0)
		r->stopped = true;
	else
		r->returned = true;
	return 0;
}

static int run_global(struct sieve_run *r, const struct sieve_node *n)
{
	for (size_t i = 0; i < n->pos[0].n; i++) {
		const char *v = n->pos[0].s[i];
		size_t k;
		for (k = 0; k < r->gdecl.n; k++)
			if (!strcasecmp(r->gdecl.s[k], v))
				break;
		if (k == r->gdecl.n && r->gdecl.n < SIEVE_MAX_VARIABLES)
			sieve_strlist_add(&r->gdecl, v, strlen(v));
	}
	return 0;
}

static const struct sieve_def defs[] = {
    {"include", false, "s", 0, false, TAGS_INCLUDE, run_include, check_include},
    {"return", false, "", 0, false, 0, run_return, NULL},
    {"global", false, "l", 0, false, 0, run_global, NULL},
};

const struct sieve_ext sieve_ext_include = {"include", defs, 3, TAGS_INCLUDE, 0};
