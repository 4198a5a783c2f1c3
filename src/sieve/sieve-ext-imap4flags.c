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

#include "buf.h"
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

static void flags_remove(struct sieve_strlist *flags, const struct sieve_strlist *list)
{
	struct sieve_strlist gone = {NULL, 0}, kept = {NULL, 0};
	sieve_flags_add(&gone, list);
	for (size_t i = 0; i < flags->n; i++)
		if (!has(&gone, flags->s[i], strlen(flags->s[i])))
			sieve_strlist_add(&kept, flags->s[i], strlen(flags->s[i]));
	sieve_strlist_free(flags);
	sieve_strlist_free(&gone);
	*flags = kept;
}

enum flag_op { OP_SET, OP_ADD, OP_REMOVE };

static void flags_apply(struct sieve_strlist *flags, enum flag_op op,
			const struct sieve_strlist *list)
{
	if (op == OP_SET)
		sieve_strlist_free(flags);
	if (op == OP_REMOVE)
		flags_remove(flags, list);
	else
		sieve_flags_add(flags, list);
}

/* The flags a variable holds (space-separated, RFC 5232 3). */
static void var_flags(struct sieve_run *r, const char *name, struct sieve_strlist *out)
{
	struct sieve_strlist one = {NULL, 0};
	sieve_strlist_add(&one, sieve_var_get(r, name), strlen(sieve_var_get(r, name)));
	sieve_flags_add(out, &one);
	sieve_strlist_free(&one);
}

/* setflag/addflag/removeflag on the internal variable, or with the
 * variables extension on the variables named first (RFC 5232 3). */
static int flag_command(struct sieve_run *r, const struct sieve_node *n, enum flag_op op)
{
	if (!n->has_opt) {
		flags_apply(&r->flags, op, &n->pos[1]);
		return 0;
	}
	for (size_t i = 0; i < n->pos[0].n; i++) {
		struct sieve_strlist f = {NULL, 0};
		var_flags(r, n->pos[0].s[i], &f);
		flags_apply(&f, op, &n->pos[1]);
		struct buf b = BUF_INIT;
		for (size_t k = 0; k < f.n; k++)
			buf_printf(&b, "%s%s", k > 0 ? " " : "", f.s[k]);
		sieve_var_set(r, n->pos[0].s[i], buf_cstr(&b), b.len);
		buf_free(&b);
		sieve_strlist_free(&f);
	}
	return 0;
}

static int run_setflag(struct sieve_run *r, const struct sieve_node *n)
{
	return flag_command(r, n, OP_SET);
}

static int run_addflag(struct sieve_run *r, const struct sieve_node *n)
{
	return flag_command(r, n, OP_ADD);
}

static int run_removeflag(struct sieve_run *r, const struct sieve_node *n)
{
	return flag_command(r, n, OP_REMOVE);
}

static int run_hasflag(struct sieve_run *r, const struct sieve_node *n)
{
	if (!n->has_opt)
		return sieve_match_any(r, n, &r->flags, &n->pos[1]);
	struct sieve_strlist f = {NULL, 0};
	for (size_t i = 0; i < n->pos[0].n; i++)
		var_flags(r, n->pos[0].s[i], &f);
	bool m = sieve_match_any(r, n, &f, &n->pos[1]);
	sieve_strlist_free(&f);
	return m;
}

static const struct sieve_def defs[] = {
    {"setflag", false, "ol", 0, false, 0, run_setflag, NULL},
    {"addflag", false, "ol", 0, false, 0, run_addflag, NULL},
    {"removeflag", false, "ol", 0, false, 0, run_removeflag, NULL},
    {"hasflag", true, "ol", 0, false, TAGS_MATCH, run_hasflag, NULL},
};

const struct sieve_ext sieve_ext_imap4flags = {"imap4flags", defs, sizeof defs / sizeof defs[0],
					       TAGS_FLAGS, 0};
