/*
 * sieve-ext-imap4flags.c - the "imap4flags" extension (RFC 5232):
 * setflag, addflag, removeflag on the internal variable, the hasflag
 * test, and :flags on keep and fileinto.  Flags are space-separated in
 * each string; duplicates are dropped (case-insensitively, as IMAP flag
 * names compare).  Without :flags, keep, fileinto and the implicit keep
 * take the internal variable's flags at the time of the action.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sieve-private.h"

static bool has(const struct sieve_strlist *l, const char *f, size_t n)
{
	for (size_t i = 0; i < l->n; i++)
		if (strlen(l->s[i]) == n && !strncasecmp(l->s[i], f, n))
			return true;
	return false;
}

void sieve_flags_add(struct sieve_strlist *dst, const struct sieve_strlist *src)
{
	for (size_t i = 0; i < src->n; i++) {
		const char *p = src->s[i];
		while (*p != '\0') {
			while (*p == ' ')
				p++;
			size_t n = strcspn(p, " ");
			if (n > 0 && !has(dst, p, n))
				sieve_strlist_add(dst, p, n);
			p += n;
		}
	}
}

static int run_setflag(struct sieve_run *r, const struct sieve_node *n)
{
	sieve_strlist_free(&r->flags);
	sieve_flags_add(&r->flags, &n->pos[0]);
	return 0;
}

static int run_addflag(struct sieve_run *r, const struct sieve_node *n)
{
	sieve_flags_add(&r->flags, &n->pos[0]);
	return 0;
}

static int run_removeflag(struct sieve_run *r, const struct sieve_node *n)
{
	struct sieve_strlist gone = {NULL, 0}, kept = {NULL, 0};
	sieve_flags_add(&gone, &n->pos[0]);
	for (size_t i = 0; i < r->flags.n; i++)
		if (!has(&gone, r->flags.s[i], strlen(r->flags.s[i])))
			sieve_strlist_add(&kept, r->flags.s[i], strlen(r->flags.s[i]));
	sieve_strlist_free(&r->flags);
	sieve_strlist_free(&gone);
	r->flags = kept;
	return 0;
}

static int run_hasflag(struct sieve_run *r, const struct sieve_node *n)
{
	return sieve_match_any(n, &r->flags, &n->pos[0]);
}

static const struct sieve_def defs[] = {
    {"setflag", false, "l", 0, false, 0, run_setflag, NULL},
    {"addflag", false, "l", 0, false, 0, run_addflag, NULL},
    {"removeflag", false, "l", 0, false, 0, run_removeflag, NULL},
    {"hasflag", true, "l", 0, false, TAGS_MATCH, run_hasflag, NULL},
};

const struct sieve_ext sieve_ext_imap4flags = {"imap4flags", defs, sizeof defs / sizeof defs[0],
					       TAGS_FLAGS, 0};
