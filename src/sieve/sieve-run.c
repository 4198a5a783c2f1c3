/*
 * sieve-run.c - the interpreter: walks the checked tree for one message
 * and builds the action list, with the implicit keep and cancel rules of
 * RFC 5228 2.10.2 and the compatibility rule of reject (RFC 5429 2.1).
 *
 * Part of src/sieve.  The walk recurses only into blocks and tests, whose
 * nesting the parser bounded; the step budget bounds the work of a run.
 * Any runtime error leaves exactly the implicit keep.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sieve-private.h"
#include "xalloc.h"

int sieve_run_fail(struct sieve_run *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->res->error, sizeof r->res->error, fmt, ap);
	va_end(ap);
	return -1;
}

static void action_clear(struct sieve_action *a)
{
	free(a->arg);
	for (size_t i = 0; i < a->n_flags; i++)
		free(a->flags[i]);
	free(a->flags);
	free(a->subject);
	free(a->from);
	for (size_t i = 0; i < a->n_addresses; i++)
		free(a->addresses[i]);
	free(a->addresses);
	free(a->handle);
	free(a->header);
	memset(a, 0, sizeof *a);
}

void sieve_result_free(struct sieve_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n_actions; i++)
		action_clear(&res->actions[i]);
	free(res->actions);
	res->actions = NULL;
	res->n_actions = 0;
	for (size_t i = 0; i < res->n_dups; i++) {
		free(res->dups[i].handle);
		free(res->dups[i].id);
	}
	free(res->dups);
	res->dups = NULL;
	res->n_dups = 0;
}

static bool stores(enum sieve_action_type t)
{
	return t == SIEVE_ACT_KEEP || t == SIEVE_ACT_FILEINTO;
}

struct sieve_action *sieve_run_add(struct sieve_run *r, enum sieve_action_type type,
				   const char *arg, bool cancels)
{
	struct sieve_result *res = r->res;
	bool is_reject = type == SIEVE_ACT_REJECT || type == SIEVE_ACT_EREJECT;
	bool is_vacation = type == SIEVE_ACT_VACATION;
	for (size_t i = 0; i < res->n_actions; i++) {
		struct sieve_action *a = &res->actions[i];
		bool other_reject = a->type == SIEVE_ACT_REJECT || a->type == SIEVE_ACT_EREJECT;
		/* RFC 5429 2.1: reject is incompatible with keep, fileinto,
		 * redirect and another reject. */
		if ((is_reject &&
		     (other_reject || stores(a->type) || a->type == SIEVE_ACT_REDIRECT)) ||
		    (other_reject && (stores(type) || type == SIEVE_ACT_REDIRECT)))
			return sieve_run_fail(r, "reject conflicts with an earlier action"), NULL;
		/* RFC 5230 4.7: vacation once per script, never with reject */
		if ((is_reject && a->type == SIEVE_ACT_VACATION) || (is_vacation && other_reject))
			return sieve_run_fail(r, "vacation conflicts with reject"), NULL;
		if (is_vacation && a->type == SIEVE_ACT_VACATION)
			return sieve_run_fail(r, "vacation executed twice"), NULL;
		if (a->type == type && (arg == NULL || (a->arg != NULL && !strcmp(a->arg, arg)))) {
			if (cancels)
				r->implicit_keep = false;
			if (type == SIEVE_ACT_REDIRECT || type == SIEVE_ACT_FILEINTO)
				a->copy = a->copy && !cancels;
			return a; /* a duplicate is done once (RFC 5228 2.10.3) */
		}
	}
	if (type == SIEVE_ACT_REDIRECT && r->redirects++ >= r->script->lim.max_redirects)
		return sieve_run_fail(r, "more than %zu redirects", r->script->lim.max_redirects),
		       NULL;
	if (res->n_actions >= r->script->lim.max_actions)
		return sieve_run_fail(r, "more than %zu actions", r->script->lim.max_actions), NULL;
	res->actions = xreallocarray(res->actions, res->n_actions + 1, sizeof *res->actions);
	struct sieve_action *a = &res->actions[res->n_actions++];
	memset(a, 0, sizeof *a);
	a->type = type;
	a->arg = arg != NULL ? xstrdup(arg) : NULL;
	a->copy = (type == SIEVE_ACT_REDIRECT || type == SIEVE_ACT_FILEINTO) && !cancels;
	if (cancels)
		r->implicit_keep = false;
	/* RFC 5293 7: what is stored or sent has the header as it is now */
	if (stores(type) || type == SIEVE_ACT_REDIRECT || type == SIEVE_ACT_VACATION)
		sieve_edit_snapshot(r, a);
	return a;
}

void sieve_run_set_flags(struct sieve_run *r, struct sieve_action *a,
			 const struct sieve_strlist *list)
{
	struct sieve_strlist f = {NULL, 0};
	sieve_flags_add(&f, list != NULL ? list : &r->flags);
	for (size_t i = 0; i < a->n_flags; i++)
		free(a->flags[i]);
	free(a->flags);
	a->flags = f.s;
	a->n_flags = f.n;
}

static void expand_list(struct sieve_run *r, struct sieve_strlist *l)
{
	struct sieve_strlist e = {NULL, 0};
	for (size_t i = 0; i < l->n; i++) {
		size_t len;
		char *s = sieve_vars_expand(r, l->s[i], &len);
		e.s = xreallocarray(e.s, e.n + 1, sizeof *e.s);
		e.s[e.n++] = s;
	}
	*l = e;
}

/* Runs n, with its strings expanded first when they refer to variables
 * (RFC 5229 3: the values current when control reaches the command). */
static int run_node(struct sieve_run *r, const struct sieve_node *n)
{
	if (!n->has_vars)
		return n->def->run(r, n);
	struct sieve_node x = *n; /* shallow: tests and blocks stay shared */
	struct sieve_strlist *lists[] = {&x.flags, &x.pos[0], &x.pos[1],    &x.pos[2],  &x.subject,
					 &x.from,  &x.handle, &x.addresses, &x.content, &x.zone,
					 &x.dupid};
	size_t nl = sizeof lists / sizeof lists[0];
	for (size_t i = 0; i < nl; i++)
		expand_list(r, lists[i]);
	int rc = n->def->run(r, &x);
	for (size_t i = 0; i < nl; i++)
		sieve_strlist_free(lists[i]);
	return rc;
}

int sieve_run_test(struct sieve_run *r, const struct sieve_node *t)
{
	if (++r->steps > r->script->lim.max_steps)
		return sieve_run_fail(r, "step budget of %llu exceeded",
				      (unsigned long long)r->script->lim.max_steps);
	return run_node(r, t);
}

int sieve_run_block(struct sieve_run *r, const struct sieve_node *n)
{
	for (; n != NULL && !r->stopped && !r->returned; n = n->next) {
		if (++r->steps > r->script->lim.max_steps)
			return sieve_run_fail(r, "step budget of %llu exceeded",
					      (unsigned long long)r->script->lim.max_steps);
		if (run_node(r, n) < 0)
			return -1;
	}
	return 0;
}

static void only_implicit_keep(struct sieve_run *r)
{
	sieve_result_free(r->res);
	r->res->actions = xcalloc(1, sizeof *r->res->actions);
	r->res->n_actions = 1;
	r->res->actions[0].type = SIEVE_ACT_KEEP;
	r->res->actions[0].implicit = true;
}

int sieve_run(const struct sieve_script *s, const struct sieve_input *in, struct sieve_result *res)
{
	return sieve_run_at(s, in, 0, res);
}

int sieve_run_at(const struct sieve_script *s, const struct sieve_input *in, int64_t now,
		 struct sieve_result *res)
{
	memset(res, 0, sizeof *res);
	struct sieve_run r;
	memset(&r, 0, sizeof r);
	r.script = s;
	r.in = in;
	r.res = res;
	r.implicit_keep = true;
	r.now = now;
	r.hdr_ok = header_parse(in->msg, in->msg_len, &r.hdr) == HEADER_OK;
	int rc = sieve_run_block(&r, s->top);
	if (rc == 0 && r.implicit_keep) {
		struct sieve_action *a = sieve_run_add(&r, SIEVE_ACT_KEEP, NULL, false);
		if (a == NULL) {
			rc = -1;
		} else {
			if (!a->implicit && a->n_flags == 0)
				sieve_run_set_flags(&r, a, NULL);
			a->implicit = true;
		}
	}
	if (rc < 0)
		only_implicit_keep(&r);
	res->header_len = r.hdr_ok ? r.hdr.header_len : 0;
	header_free(&r.hdr);
	sieve_strlist_free(&r.added);
	for (size_t i = 0; i < r.n_incs; i++) {
		free(r.incs[i].name);
		sieve_script_free(&r.incs[i].script);
	}
	free(r.incs);
	sieve_strlist_free(&r.gvar_names);
	sieve_strlist_free(&r.gvar_values);
	sieve_strlist_free(&r.gdecl);
	sieve_strlist_free(&r.flags);
	sieve_vars_free(&r);
	sieve_strlist_free(&r.body_raw);
	sieve_strlist_free(&r.body_types);
	sieve_strlist_free(&r.body_texts);
	return rc;
}
