/*
 * smtp-sieve.c - Sieve at local delivery (see smtp-sieve.h).
 *
 * The scripts run in order: sieve.before, the account's active script,
 * sieve.after.  Their actions add up; the implicit keep happens unless
 * some script cancelled it (RFC 5228 2.10.2: an explicit keep, fileinto,
 * discard...); the same mailbox twice is stored once.  `stop` ends the
 * script it is in.  The runs are bounded by the library's limits (steps,
 * actions), so they take little time on the event loop.
 */
#include "smtp-sieve.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "sieve.h"
#include "store.h"
#include "xalloc.h"

static const char *const global_keys[2] = {"sieve.before", "sieve.after"};

static const char *global_path(const struct config *cfg, int i)
{
	return i == 0 ? cfg->sieve_before : cfg->sieve_after;
}

/* Compiles src; NULL (logged) if it has an error. */
static struct sieve_script *compile(const char *what, const char *src, size_t len,
				    const struct smtp_sieve_msg *m)
{
	struct sieve_script *s;
	struct sieve_error err;
	if (sieve_compile(src, len, NULL, &s, &err) < 0) {
		log_error(
		    "sieve id=%s script=\"%s\" action=compile error=\"%d:%d: %s\" result=skipped",
		    m->id, what, err.line, err.col, err.msg);
		return NULL;
	}
	return s;
}

static void load_globals(const struct config *cfg, struct smtp_sieve_msg *m)
{
	if (m->globals_done)
		return;
	m->globals_done = true;
	for (int i = 0; i < 2; i++) {
		const char *path = global_path(cfg, i);
		if (path[0] == '\0')
			continue;
		size_t len;
		char *src = fsutil_read_file(path, sieve_default_limits.max_script, &len);
		if (src == NULL) {
			log_error("sieve id=%s script=\"%s\" key=%s action=read error=\"%m\" "
				  "result=skipped",
				  m->id, path, global_keys[i]);
			continue;
		}
		m->global[i] = compile(path, src, len, m);
		free(src);
	}
}

/* 0 with the message in m->data, or -1 (logged once). */
static int load_message(const struct config *cfg, struct smtp_sieve_msg *m)
{
	if (m->loaded == 0) {
		/* The spool file holds our trace lines too. */
		size_t max = (size_t)cfg->smtp_max_message_size + 64 * 1024;
		m->data = fsutil_read_file(m->path, max, &m->len);
		m->loaded = m->data != NULL ? 1 : -1;
		if (m->data == NULL)
			log_error("sieve id=%s action=read_message error=\"%m\" result=keep",
				  m->id);
	}
	return m->loaded > 0 ? 0 : -1;
}

struct exists_ctx {
	struct store_account *a;
};

static bool mailbox_exists(void *ctx, const char *name)
{
	struct exists_ctx *c = ctx;
	struct store_mailbox mb;
	return store_mailbox_get(c->a, name, &mb) > 0;
}

static bool is_inbox(const char *name)
{
	return name == NULL || !strcasecmp(name, "INBOX");
}

static char *join_flags(const struct sieve_action *a)
{
	if (a->n_flags == 0)
		return NULL;
	struct buf b;
	buf_init(&b, 64 * 1024);
	for (size_t i = 0; i < a->n_flags; i++)
		if ((i > 0 && buf_append(&b, " ", 1) < 0) ||
		    buf_append(&b, a->flags[i], strlen(a->flags[i])) < 0)
			break;
	return buf_steal(&b, NULL);
}

/* Adds a copy (taking flags) unless one for that mailbox is there
 * already. */
static void add_copy(struct smtp_sieve_plan *p, const char *mailbox, bool create, char *flags)
{
	for (size_t i = 0; i < p->n; i++) {
		const char *have = p->v[i].mailbox;
		if (is_inbox(have) ? is_inbox(mailbox)
				   : mailbox != NULL && !strcmp(have, mailbox)) {
			free(flags);
			return;
		}
	}
	p->v = xreallocarray(p->v, p->n + 1, sizeof *p->v);
	p->v[p->n].mailbox = is_inbox(mailbox) ? NULL : xstrdup(mailbox);
	p->v[p->n].create = create;
	p->v[p->n].flags = flags;
	p->n++;
}

/* Runs one script; adds its explicit copies to p.  Returns true if the
 * implicit keep survived, with its flags copied into *implicit_flags. */
static bool run_one(const struct sieve_script *s, const char *what, const struct sieve_input *in,
		    const struct smtp_sieve_msg *m, const char *env_to, struct smtp_sieve_plan *p,
		    char **implicit_flags)
{
	struct sieve_result res;
	if (sieve_run(s, in, &res) < 0)
		log_error("sieve id=%s to=<%s> script=\"%s\" action=run error=\"%s\" result=keep",
			  m->id, env_to, what, res.error);
	bool keep = false;
	for (size_t i = 0; i < res.n_actions; i++) {
		const struct sieve_action *a = &res.actions[i];
		switch (a->type) {
		case SIEVE_ACT_KEEP:
			if (a->implicit) {
				keep = true;
				char *f = join_flags(a);
				if (f != NULL && *implicit_flags != NULL) {
					/* every script's flags go with the one implicit keep */
					size_t n1 = strlen(*implicit_flags), n2 = strlen(f);
					char *both = xmalloc(n1 + n2 + 2);
					memcpy(both, *implicit_flags, n1);
					both[n1] = ' ';
					memcpy(both + n1 + 1, f, n2 + 1);
					free(f);
					f = both;
				}
				if (f != NULL) {
					free(*implicit_flags);
					*implicit_flags = f;
				}
			} else {
				add_copy(p, NULL, false, join_flags(a));
			}
			break;
		case SIEVE_ACT_FILEINTO:
			add_copy(p, a->arg, a->create, join_flags(a));
			break;
		case SIEVE_ACT_DISCARD:
		case SIEVE_ACT_VACATION:
			break;
		case SIEVE_ACT_REDIRECT:
		case SIEVE_ACT_REJECT:
		case SIEVE_ACT_EREJECT:
			/* Not performed at delivery yet (docs/sieve.md): the
			 * message stays in the INBOX instead. */
			log_warn("sieve id=%s to=<%s> script=\"%s\" action=%s result=keep "
				 "reason=\"not done at delivery\"",
				 m->id, env_to, what,
				 a->type == SIEVE_ACT_REDIRECT ? "redirect"
				 : a->type == SIEVE_ACT_REJECT ? "reject"
							       : "ereject");
			add_copy(p, NULL, false, NULL);
			break;
		}
	}
	sieve_result_free(&res);
	return keep;
}

void smtp_sieve_plan(struct store *st, const struct config *cfg, struct smtp_sieve_msg *m,
		     int64_t account, const char *env_to, struct smtp_sieve_plan *plan)
{
	plan->v = NULL;
	plan->n = 0;
	load_globals(cfg, m);
	struct store_account *a = NULL;
	char *user_src = NULL;
	size_t user_len = 0;
	char err[256];
	if (store_account_open_id(st, account, &a) > 0 &&
	    store_sieve_get(a, NULL, &user_src, &user_len, NULL, err, sizeof err) < 0)
		log_error("sieve id=%s to=<%s> action=read_script error=\"%s\" result=skipped",
			  m->id, env_to, err);
	struct sieve_script *user =
	    user_src != NULL ? compile("(user)", user_src, user_len, m) : NULL;
	free(user_src);
	const struct sieve_script *run[3] = {m->global[0], user, m->global[1]};
	const char *names[3] = {global_path(cfg, 0), "(user)", global_path(cfg, 1)};
	bool any = run[0] != NULL || run[1] != NULL || run[2] != NULL;
	bool keep = true;
	char *implicit_flags = NULL;
	if (any && a != NULL && load_message(cfg, m) == 0) {
		struct exists_ctx ec = {a};
		struct sieve_input in = {m->env_from, env_to, m->data, m->len, mailbox_exists, &ec};
		for (int i = 0; i < 3; i++)
			if (run[i] != NULL &&
			    !run_one(run[i], names[i], &in, m, env_to, plan, &implicit_flags))
				keep = false;
	}
	if (keep)
		add_copy(plan, NULL, false, implicit_flags);
	else
		free(implicit_flags);
	sieve_script_free(&user);
	if (plan->n > 0 || !any)
		return;
	log_info("sieve id=%s to=<%s> action=discard", m->id, env_to);
}

void smtp_sieve_plan_free(struct smtp_sieve_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		free(plan->v[i].mailbox);
		free(plan->v[i].flags);
	}
	free(plan->v);
	plan->v = NULL;
	plan->n = 0;
}

void smtp_sieve_msg_free(struct smtp_sieve_msg *m)
{
	free(m->data);
	m->data = NULL;
	sieve_script_free(&m->global[0]);
	sieve_script_free(&m->global[1]);
}
