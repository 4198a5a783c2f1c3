/*
 * sieve-ext-ihave.c - the "ihave" extension (RFC 5463): the test
 *   ihave CAPABILITIES
 * true when this build implements every extension named, and the command
 *   error MESSAGE
 * which ends the run with a runtime error (so the implicit keep).
 *
 * The parser (sieve-parse.c, ihave_guard) does the rest: the block of an
 * if or elsif whose test is ihave (or an allof with ihave in it) may use
 * the extensions named without require; when one is not supported the
 * block is read for syntax only and never runs, so a script can carry
 * commands of extensions this server lacks.  "variables" counts as
 * missing: it must be required (sieve_ihave_ok).
 */
#include <string.h>

#include "sieve-private.h"

bool sieve_ihave_ok(const char *name)
{
	/* variables changes how every string of the script is read, so it
	 * cannot be switched on for a block (Pigeonhole refuses it too) */
	if (!strcmp(name, "variables"))
		return false;
	for (size_t e = 1; e < sieve_ext_count; e++)
		if (!strcmp(sieve_ext_table[e]->name, name))
			return true;
	return false;
}

static int check_ihave(const struct sieve_node *n, struct sieve_error *err)
{
	if (n->has_vars)
		return sieve_fail(err, n->line, n->col, "ihave takes constant names");
	return 0;
}

static int run_ihave(struct sieve_run *r, const struct sieve_node *n)
{
	for (size_t i = 0; i < n->pos[0].n; i++)
		if (!sieve_ihave_ok(n->pos[0].s[i]))
			return 0;
	return 1;
}

static int run_error(struct sieve_run *r, const struct sieve_node *n)
{
	return sieve_run_fail(r, "error: %.200s", n->pos[0].s[0]);
}

static const struct sieve_def defs[] = {
    {"ihave", true, "l", 0, false, 0, run_ihave, check_ihave},
    {"error", false, "s", 0, false, 0, run_error, NULL},
};

const struct sieve_ext sieve_ext_ihave = {"ihave", defs, 2, 0, 0};
