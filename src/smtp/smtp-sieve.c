/*
 * smtp-sieve.c - Sieve at local delivery (see smtp-sieve.h).
 *
 * The scripts run in order: sieve.before, the account's active script,
 * sieve.after.  Their actions add up; the implicit keep happens unless
 * some script cancelled it (RFC 5228 2.10.2: an explicit keep, fileinto,
 * discard...); the same mailbox twice is stored once.  `stop` ends the
 * script it is in.  The runs are bounded by the library's limits (steps,
 * actions), so they take little time on the event loop.  Vacation replies
 * and redirects are sent as each script's actions are read: delivered at
 * once to local targets, queued for remote ones (section "vacation and
 * redirect").
 */
#include "smtp-sieve.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "buf.h"
#include "config.h"
#include "dkim-keys.h"
#include "fsutil.h"
#include "header.h"
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
	time_t now;
	const struct smtp_sieve_msg *m;
	const struct config *cfg;
};

/* include (RFC 6609): a personal script is one of the account's stored
 * scripts, a global one the file NAME.sieve in sieve.global_dir (none
 * when that is not set).  The library checked the name (no '/', no
 * leading '.'). */
static int include_get(void *ctx, bool global, const char *name, char **src, size_t *len)
{
	struct exists_ctx *c = ctx;
	char err[256] = "";
	if (!global) {
		int r = store_sieve_get(c->a, name, src, len, NULL, err, sizeof err);
		if (r < 0)
			log_error("sieve id=%s action=include script=\"%s\" error=\"%s\"", c->m->id,
				  name, err);
		return r;
	}
	const char *dir = c->cfg->sieve_global_dir;
	if (dir[0] == '\0')
		return 0;
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof path, "%s/%s.sieve", dir, name) >= sizeof path)
		return 0;
	*src = fsutil_read_file(path, sieve_default_limits.max_script, len);
	if (*src != NULL)
		return 1;
	if (errno == ENOENT)
		return 0;
	log_error("sieve id=%s action=include script=\"%s\" key=sieve.global_dir error=\"%m\"",
		  c->m->id, path);
	return -1;
}

/* duplicate (RFC 7352): asks the account's tracking list. */
static int duplicate_seen(void *ctx, const char *handle, const char *id)
{
	struct exists_ctx *c = ctx;
	char err[256] = "";
	int r = store_duplicate_seen(c->a, handle, id, c->now, err, sizeof err);
	if (r < 0)
		log_error("sieve id=%s action=duplicate error=\"%s\"", c->m->id, err);
	return r;
}

/* Keeps a successful run's duplicate entries in the plan, to be recorded
 * once the message is delivered (smtp_sieve_delivered). */
static void plan_dups(struct smtp_sieve_plan *p, const struct config *cfg,
		      const struct sieve_result *res, time_t now)
{
	if (res->n_dups == 0)
		return;
	p->dups = xreallocarray(p->dups, p->n_dups + res->n_dups, sizeof *p->dups);
	for (size_t i = 0; i < res->n_dups; i++) {
		const struct sieve_duplicate *d = &res->dups[i];
		uint64_t period = d->seconds > 0 ? d->seconds : cfg->sieve_duplicate_period;
		if (period > cfg->sieve_duplicate_max_period)
			period = cfg->sieve_duplicate_max_period;
		if (period > INT32_MAX)
			period = INT32_MAX;
		p->dups[p->n_dups++] = (struct smtp_sieve_dup){xstrdup(d->handle), xstrdup(d->id),
							       (int64_t)now + (int64_t)period,
							       d->last};
	}
}

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

/* ------------------------------------------------ vacation and redirect */

/* Redirects of one message for one recipient, all scripts together (the
 * library allows sieve_default_limits.max_redirects per script). */
#define REDIRECT_MAX 4
/* A message with this many Received: fields is not redirected again: it
 * is going round in a loop (RFC 5321 6.3 counts hops the same way). */
#define REDIRECT_MAX_HOPS 50

/* What sending needs for one recipient. */
struct send_ctx {
	struct store *st;
	const struct config *cfg;
	const struct smtp_sieve_msg *m;
	struct store_account *a;
	const char *env_to;
	char account[256]; /* the account's address */
	const struct sieve_input *in;
	size_t redirects;
	char sent[REDIRECT_MAX][ADDR_PATH_MAX + 1]; /* addresses redirected to */
	bool jmap_vacation; /* the JMAP VacationResponse answered this message */
};

/* DKIM signature fields for msg into sig (left empty if no key or on an
 * error, logged: the mail goes unsigned rather than not at all). */
static void sign(const struct send_ctx *c, const char *from_domain, const char *msg, size_t len,
		 struct buf *sig)
{
	if (c->m->dkim == NULL)
		return;
	const char *cand[3] = {from_domain, addr_domain_of(c->env_to), c->cfg->hostname};
	char used[256], err[256];
	if (dkim_keyring_sign(c->m->dkim, cand, 3, msg, len, time(NULL), sig, used, sizeof used,
			      err, sizeof err) < 0) {
		log_error("sieve id=%s action=dkim_sign error=\"%s\" note=\"sent unsigned\"",
			  c->m->id, err);
		buf_reset(sig);
	}
}

/* Sends msg[0..len) (CRLF lines, without Return-Path) to rcpt: delivered
 * at once to the INBOX of its local targets (with a Return-Path of
 * sender, as dsn_deliver of the queue runner does), queued (DKIM-signed,
 * envelope sender qsender, NOTIFY notify) for its remote ones.  0, or -1
 * with err. */
static int send_one(const struct send_ctx *c, const char *sender, const char *qsender,
		    const char *rcpt, const char *from_domain, const char *msg, size_t len,
		    unsigned notify, char *err, size_t errsz)
{
	struct store_targets *tg = xcalloc(1, sizeof *tg);
	enum store_rcpt_result res = store_resolve(c->st, rcpt, c->cfg->recipient_delimiter, tg);
	if (res == STORE_RCPT_NOT_OURS) {
		tg->n_remote = 1;
		snprintf(tg->remote[0], sizeof tg->remote[0], "%s", rcpt);
	} else if (res != STORE_RCPT_OK) {
		snprintf(err, errsz, "%s",
			 res == STORE_RCPT_ERROR ? "recipient lookup failed"
						 : "no such local address");
		free(tg);
		return -1;
	}
	char path[PATH_MAX];
	int ret = 0;
	if (tg->n_local > 0) {
		struct buf rp;
		buf_init(&rp, 1024);
		buf_printf(&rp, "Return-Path: <%s>\r\n", sender);
		int fd = store_spool_write(c->st, rp.data, rp.len, msg, len, path, sizeof path);
		buf_free(&rp);
		if (fd < 0) {
			snprintf(err, errsz, "spool: %s", strerror(errno));
			ret = -1;
		} else {
			if (store_deliver(c->st, path, tg->local, tg->n_local, time(NULL), NULL,
					  err, errsz) < 0)
				ret = -1;
			store_spool_drop(&fd, path);
		}
	}
	if (ret == 0 && tg->n_remote > 0) {
		/* A message checked on port 25 that we pass on gets our ARC set
		 * (RFC 8617), then the DKIM signatures over it all. */
		struct buf arc, whole, sig;
		buf_init(&arc, 0);
		buf_init(&whole, 0);
		buf_init(&sig, 0);
		const char *out = msg;
		size_t out_len = len;
		if (c->m->arc_results != NULL && c->m->dkim != NULL) {
			const char *cand[2] = {addr_domain_of(c->env_to), c->cfg->hostname};
			char aerr[256];
			int a = dkim_keyring_arc_seal(c->m->dkim, cand, 2, msg, len, c->m->authserv_id,
						      c->m->arc_results, c->m->arc_cv, &arc, aerr,
						      sizeof aerr);
			if (a < 0)
				log_error("sieve id=%s action=arc_seal error=\"%s\" note=\"sent "
					  "without\"",
					  c->m->id, aerr);
			else if (a == 0 && buf_append(&whole, arc.data, arc.len) == 0 &&
				 buf_append(&whole, msg, len) == 0) {
				out = whole.data;
				out_len = whole.len;
			}
		}
		sign(c, from_domain, out, out_len, &sig);
		int fd = store_spool_write(c->st, sig.data, sig.len, out, out_len, path, sizeof path);
		buf_free(&sig);
		buf_free(&whole);
		buf_free(&arc);
		if (fd < 0) {
			snprintf(err, errsz, "spool: %s", strerror(errno));
			ret = -1;
		} else {
			struct store_queue_new_rcpt *q = xcalloc(tg->n_remote, sizeof *q);
			for (size_t i = 0; i < tg->n_remote; i++) {
				q[i].addr = tg->remote[i];
				q[i].notify = notify;
			}
			if (store_queue_add_dsn(c->st, path, qsender, STORE_DSN_RET_NONE, NULL, q,
						tg->n_remote, err, errsz) < 0)
				ret = -1;
			free(q);
			store_spool_drop(&fd, path);
		}
	}
	free(tg);
	return ret;
}

/* The message as a script edited its header (editheader, RFC 5293): the
 * header section hdr replacing the first hdr_skip bytes of the message
 * file's content. */
struct edit {
	const char *hdr;
	size_t len, skip;
};

/* The message of e as one buffer (malloc'ed, *len bytes). */
static char *edited_message(const struct smtp_sieve_msg *m, const struct edit *e, size_t *len)
{
	size_t skip = e->skip <= m->len ? e->skip : m->len;
	*len = e->len + (m->len - skip);
	char *out = xmalloc(*len + 1);
	memcpy(out, e->hdr, e->len);
	memcpy(out + e->len, m->data + skip, m->len - skip);
	out[*len] = '\0';
	return out;
}

/* RFC 5230: replies unless a rule says not to or the sender had this
 * reply within the period; records the reply once it is sent. */
/* Whether addr (a bare address) reaches this account: its own address,
 * a subaddress of it, an alias or group with it among the targets. */
static bool reaches_account(const struct send_ctx *c, const char *addr)
{
	struct store_targets *tg = xcalloc(1, sizeof *tg);
	bool ok = false;
	if (store_resolve(c->st, addr, c->cfg->recipient_delimiter, tg) == STORE_RCPT_OK)
		for (size_t i = 0; i < tg->n_local && !ok; i++)
			ok = tg->local[i] == store_account_id(c->a);
	free(tg);
	return ok;
}

/* Whether addr[0..n) is a non-empty address that reaches the account. */
static bool part_is_users(const struct send_ctx *c, const char *addr, size_t n)
{
	while (n > 0 && (*addr == ' ' || *addr == '\t'))
		addr++, n--;
	while (n > 0 && (addr[n - 1] == ' ' || addr[n - 1] == '\t'))
		n--;
	char a[ADDR_PATH_MAX + 1];
	if (n == 0 || n >= sizeof a)
		return false;
	memcpy(a, addr, n);
	a[n] = '\0';
	return reaches_account(c, a);
}

/* Whether every address of a vacation :from (an address list the
 * library checked) is the user's: each <...> when it has angle
 * brackets ("Doe, John" <j@x> included), else each comma-separated one. */
static bool from_is_users(const struct send_ctx *c, const char *from)
{
	bool any = false;
	if (strchr(from, '<') != NULL) {
		for (const char *lt = strchr(from, '<'); lt != NULL; lt = strchr(lt + 1, '<')) {
			const char *gt = strchr(lt, '>');
			if (gt == NULL || !part_is_users(c, lt + 1, (size_t)(gt - lt - 1)))
				return false;
			any = true;
		}
		return any;
	}
	for (const char *p = from;; p++) {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (!part_is_users(c, p, n))
			return false;
		any = true;
		if (comma == NULL)
			return any;
		p = comma;
	}
}

static void vacation_send(struct send_ctx *c, const struct sieve_action *act);

static void vacation(struct send_ctx *c, const struct sieve_action *act, const struct edit *e)
{
	/* a :from that is not one of the user's addresses (RFC 5230 4.3
	 * lets the server refuse it) gives way to the recipient address */
	struct sieve_action own;
	if (act->from != NULL && !from_is_users(c, act->from)) {
		log_info("sieve id=%s to=<%s> action=vacation from=\"%s\" note=\"not the user's "
			 "address: the reply is from <%s>\"",
			 c->m->id, c->env_to, act->from, c->env_to);
		own = *act;
		own.from = NULL;
		act = &own;
	}
	/* the header as the script had edited it (RFC 5293 7) */
	struct sieve_input edited;
	char *buf = NULL;
	const struct sieve_input *orig = c->in;
	if (e->hdr != NULL) {
		edited = *c->in;
		buf = edited_message(c->m, e, &edited.msg_len);
		edited.msg = buf;
		c->in = &edited;
	}
	vacation_send(c, act);
	c->in = orig;
	free(buf);
}

static void vacation_send(struct send_ctx *c, const struct sieve_action *act)
{
	const char *env_from = c->in->env_from;
	const char *mine[2] = {c->env_to, c->account};
	const char *why = NULL;
	if (!sieve_vacation_allowed(c->in, act, mine, 2, &why)) {
		log_info("sieve id=%s to=<%s> action=vacation result=skipped reason=\"%s\"",
			 c->m->id, c->env_to, why);
		return;
	}
	uint64_t period = act->seconds;
	if (period > c->cfg->sieve_vacation_max_period)
		period = c->cfg->sieve_vacation_max_period;
	if (period < c->cfg->sieve_vacation_min_period)
		period = c->cfg->sieve_vacation_min_period;
	time_t now = time(NULL);
	char err[256] = "";
	int seen = store_vacation_seen(c->a, env_from, act->handle, now, err, sizeof err);
	if (seen != 0) {
		if (seen > 0)
			log_info("sieve id=%s to=<%s> action=vacation result=skipped "
				 "reason=\"replied to <%s> within the period\"",
				 c->m->id, c->env_to, env_from);
		else
			log_error("sieve id=%s to=<%s> action=vacation error=\"%s\" result=skipped",
				  c->m->id, c->env_to, err);
		return;
	}
	char date[64], id[25], msgid[400];
	struct tm tm;
	localtime_r(&now, &tm);
	if (strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		date[0] = '\0';
	fsutil_unique_id(id);
	snprintf(msgid, sizeof msgid, "%s.vacation@%s", id, c->cfg->hostname);
	struct buf reply;
	buf_init(&reply, 1024 * 1024);
	const char *from = c->env_to;
	if (sieve_vacation_reply(c->in, act, from, date, msgid, &reply, &why) < 0) {
		log_error("sieve id=%s to=<%s> action=vacation error=\"%s\" result=skipped",
			  c->m->id, c->env_to, why);
	} else if (send_one(c, "", "", env_from, addr_domain_of(c->env_to), reply.data, reply.len,
			    STORE_DSN_NOTIFY_NEVER, err, sizeof err) < 0) {
		log_error(
		    "sieve id=%s to=<%s> action=vacation rcpt=<%s> error=\"%s\" result=skipped",
		    c->m->id, c->env_to, env_from, err);
	} else {
		log_info("sieve id=%s to=<%s> action=vacation rcpt=<%s> result=sent", c->m->id,
			 c->env_to, env_from);
		if (store_vacation_record(c->a, env_from, act->handle, now, now + (int64_t)period,
					  err, sizeof err) < 0)
			log_error("sieve id=%s to=<%s> action=vacation_record error=\"%s\"",
				  c->m->id, c->env_to, err);
	}
	buf_free(&reply);
}

/* The message without our Return-Path line (it belongs to final delivery
 * only); the Received: trace stays. */
static const char *without_return_path(const char *data, size_t len, size_t *out_len)
{
	size_t skip = 0;
	if (len > 12 && !strncasecmp(data, "Return-Path:", 12)) {
		const char *nl = memchr(data, '\n', len);
		skip = nl != NULL ? (size_t)(nl - data) + 1 : 0;
	}
	*out_len = len - skip;
	return data + skip;
}

/* The envelope sender of a redirected copy that leaves for another
 * server: a sender of a domain not ours rewritten with SRS into the
 * domain of the recipient address (store-srs.c, as for mail an alias
 * forwards), so that SPF at the next hop passes; else as it is. */
static void redirect_sender(const struct send_ctx *c, char *out, size_t outsz)
{
	const char *from = c->in->env_from;
	snprintf(out, outsz, "%s", from);
	const char *at = strrchr(from, '@');
	const char *domain = addr_domain_of(c->env_to);
	if (at == NULL || domain[0] == '\0' || store_domain_exists(c->st, at + 1) != 0)
		return;
	char srs[ADDR_PATH_MAX + 64];
	if (store_srs_forward(c->st, from, domain, srs, sizeof srs) == 0 && strlen(srs) < outsz) {
		snprintf(out, outsz, "%s", srs);
		log_info("sieve id=%s to=<%s> action=srs from=<%s> rewritten=<%s>", c->m->id,
			 c->env_to, from, srs);
	}
}

/* Redirect (RFC 5228 4.2): the message as received; the envelope sender
 * kept for local targets, SRS-rewritten for remote ones (redirect_sender).
 * 0 done, -1 not (logged; the caller keeps the message). */
static int redirect_msg(struct send_ctx *c, const struct sieve_action *act, const char *msg,
			size_t len)
{
	const char *why = NULL;
	char err[256] = "", to[ADDR_PATH_MAX + 1] = "";
	struct addr a;
	struct header h;
	if (addr_parse_mailbox(act->arg, strlen(act->arg), true, &a) != ADDR_OK ||
	    addr_format(&a, to, sizeof to) < 0) {
		why = "not a valid address";
	} else {
		/* the same address from two scripts: sent once */
		for (size_t i = 0; i < c->redirects && i < REDIRECT_MAX; i++)
			if (!strcasecmp(c->sent[i], to))
				return 0;
		if (c->redirects >= REDIRECT_MAX)
			why = "more than 4 redirects";
	}
	if (why == NULL && header_parse(msg, len, &h) == HEADER_OK) {
		if (header_count(&h, "Received") >= REDIRECT_MAX_HOPS)
			why = "loop: too many Received fields";
		header_free(&h);
	}
	char qsender[ADDR_PATH_MAX + 64];
	if (why == NULL) {
		redirect_sender(c, qsender, sizeof qsender);
		if (send_one(c, c->in->env_from, qsender, to, addr_domain_of(c->env_to), msg, len, 0,
			     err, sizeof err) < 0)
			why = err;
	}
	if (why != NULL) {
		log_error("sieve id=%s to=<%s> action=redirect rcpt=<%s> error=\"%s\" result=keep",
			  c->m->id, c->env_to, act->arg, why);
		return -1;
	}
	snprintf(c->sent[c->redirects++], sizeof c->sent[0], "%s", to);
	log_info("sieve id=%s to=<%s> action=redirect rcpt=<%s>%s result=sent", c->m->id, c->env_to,
		 to, act->copy ? " copy=yes" : "");
	return 0;
}

/* The message to redirect: as received, or with the header as the script
 * had edited it (RFC 5293 7); without our Return-Path either way. */
static int redirect(struct send_ctx *c, const struct sieve_action *act, const struct edit *e)
{
	size_t len, elen = 0;
	char *ebuf = e->hdr != NULL ? edited_message(c->m, e, &elen) : NULL;
	const char *msg = ebuf != NULL ? without_return_path(ebuf, elen, &len)
				       : without_return_path(c->m->data, c->m->len, &len);
	int rc = redirect_msg(c, act, msg, len);
	free(ebuf);
	return rc;
}

/* Adds a copy (taking flags) unless one for that mailbox is there
 * already.  With an edited header (e not NULL) the copy is a file of its
 * own in the spool, the edited header and the body exactly as received;
 * if it cannot be written the copy is the message as received (logged). */
static void add_copy(struct smtp_sieve_plan *p, const char *mailbox, bool create, char *flags,
		     const struct send_ctx *sc, const struct edit *e)
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
	struct smtp_sieve_copy *c = &p->v[p->n++];
	memset(c, 0, sizeof *c);
	c->mailbox = is_inbox(mailbox) ? NULL : xstrdup(mailbox);
	c->create = create;
	c->flags = flags;
	c->fd = -1;
	if (e == NULL || e->hdr == NULL || sc == NULL)
		return;
	char path[PATH_MAX];
	size_t skip = e->skip <= sc->m->len ? e->skip : sc->m->len;
	c->fd = store_spool_write(sc->st, e->hdr, e->len, sc->m->data + skip, sc->m->len - skip,
				  path, sizeof path);
	if (c->fd < 0)
		log_error("sieve id=%s to=<%s> action=editheader error=\"spool: %s\" "
			  "result=unedited",
			  sc->m->id, sc->env_to, strerror(errno));
	else
		c->path = xstrdup(path);
}

/* "550 5.7.1 REASON" on one line of printable ASCII, at most 400 bytes
 * of reason (RFC 5429 2.1: the reason goes in the SMTP reply). */
static char *reject_reply(const char *reason)
{
	struct buf b;
	buf_init(&b, 1024);
	buf_puts(&b, "550 5.7.1 ");
	size_t n = 0;
	for (const char *r = reason; *r != '\0' && n < 400; r++, n++) {
		unsigned char c = (unsigned char)*r;
		buf_putc(&b, c == '\r' || c == '\n' || c == '\t' ? ' '
			     : c < 0x20 || c >= 0x7f             ? '?'
								 : *r);
	}
	if (n == 0)
		buf_puts(&b, "Message rejected");
	return buf_steal(&b, NULL);
}

/* The implicit keep's edited header: that of the last script whose
 * implicit keep had one (each script sees the message as received). */
struct implicit_edit {
	char *hdr;
	size_t len, skip;
};

/* Runs one script; adds its explicit copies to p.  Returns true if the
 * implicit keep survived, with its flags copied into *implicit_flags and
 * its edited header, if any, into *ie. */
static bool run_one(const struct sieve_script *s, const char *what, const struct sieve_input *in,
		    const struct smtp_sieve_msg *m, const char *env_to, struct smtp_sieve_plan *p,
		    char **implicit_flags, struct implicit_edit *ie, struct send_ctx *sc)
{
	struct sieve_result res;
	if (sieve_run(s, in, &res) < 0)
		log_error("sieve id=%s to=<%s> script=\"%s\" action=run error=\"%s\" result=keep",
			  m->id, env_to, what, res.error);
	plan_dups(p, sc->cfg, &res, ((const struct exists_ctx *)in->ctx)->now);
	bool keep = false;
	for (size_t i = 0; i < res.n_actions; i++) {
		const struct sieve_action *a = &res.actions[i];
		struct edit e = {a->header, a->header_len, res.header_len};
		switch (a->type) {
		case SIEVE_ACT_KEEP:
			if (a->implicit) {
				keep = true;
				if (a->header != NULL) {
					free(ie->hdr);
					ie->hdr = xmemdup0(a->header, a->header_len);
					ie->len = a->header_len;
					ie->skip = res.header_len;
				}
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
				add_copy(p, NULL, false, join_flags(a), sc, &e);
			}
			break;
		case SIEVE_ACT_FILEINTO:
			add_copy(p, a->arg, a->create, join_flags(a), sc, &e);
			break;
		case SIEVE_ACT_DISCARD:
			break;
		case SIEVE_ACT_VACATION:
			if (sc->jmap_vacation)
				log_info("sieve id=%s to=<%s> script=\"%s\" action=vacation "
					 "result=skipped reason=\"the JMAP VacationResponse is on\"",
					 m->id, env_to, what);
			else
				vacation(sc, a, &e);
			break;
		case SIEVE_ACT_REDIRECT:
			if (redirect(sc, a, &e) < 0 && !a->copy)
				add_copy(p, NULL, false, NULL, NULL, NULL); /* not sent: kept */
			break;
		case SIEVE_ACT_REJECT:
		case SIEVE_ACT_EREJECT:
			/* Refused at SMTP time if the server can
			 * (smtp_sieve_refuse); else kept in the INBOX. */
			if (p->reject == NULL) {
				p->reject = reject_reply(a->arg);
				p->reject_reason = xstrdup(a->arg);
				p->reject_dsn = a->type == SIEVE_ACT_EREJECT;
				p->reject_to = xstrdup(env_to);
			}
			add_copy(p, NULL, false, NULL, NULL, NULL);
			break;
		}
	}
	sieve_result_free(&res);
	return keep;
}

/* The JMAP VacationResponse (docs/jmap.md "VacationResponse") as the
 * vacation action of a script run before the user's: the reply and its
 * rules are a Sieve vacation's (RFC 5230 with the default period, the
 * handle "j:" and the object's state, so that a changed response is
 * sent again).  True if it is on for a message arriving now (*v then
 * holds it). */
static bool jmap_vacation_load(struct store_account *a, const struct smtp_sieve_msg *m,
			       const char *env_to, time_t now, struct store_jmapvacation *v)
{
	char err[256] = "";
	if (a == NULL)
		return false;
	if (store_jmapvacation_get(a, v, err, sizeof err) < 0) {
		log_error("sieve id=%s to=<%s> action=jmap_vacation error=\"%s\" result=skipped",
			  m->id, env_to, err);
		return false;
	}
	if (store_jmapvacation_active(v, (int64_t)now))
		return true;
	store_jmapvacation_free(v);
	return false;
}

static void jmap_vacation_run(struct send_ctx *sc, struct store_jmapvacation *v)
{
	char handle[32];
	snprintf(handle, sizeof handle, "j:%llu", (unsigned long long)v->state);
	struct sieve_action act = {.type = SIEVE_ACT_VACATION,
				   .arg = v->reason,
				   .seconds = SIEVE_VACATION_DEFAULT,
				   .subject = v->subject,
				   .mime = v->mime,
				   .handle = handle};
	struct edit none = {NULL, 0, 0};
	log_info("sieve id=%s to=<%s> script=\"(jmap-vacation)\" action=vacation", sc->m->id,
		 sc->env_to);
	vacation(sc, &act, &none);
	sc->jmap_vacation = true;
}

void smtp_sieve_plan(struct store *st, const struct config *cfg, struct smtp_sieve_msg *m,
		     int64_t account, const char *env_to, struct smtp_sieve_plan *plan)
{
	memset(plan, 0, sizeof *plan);
	plan->account = account;
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
	struct store_jmapvacation jv;
	bool jv_on = jmap_vacation_load(a, m, env_to, time(NULL), &jv);
	bool any = run[0] != NULL || run[1] != NULL || run[2] != NULL || jv_on;
	bool keep = true;
	char *implicit_flags = NULL;
	struct implicit_edit ie = {NULL, 0, 0};
	struct exists_ctx ec = {a, time(NULL), m, cfg};
	/* environment (RFC 5183): Sieve runs at final delivery ("MDA"), in
	 * the SMTP transaction ("during"); the client's host name is not
	 * known ("") */
	const char *const env[] = {"domain",	  addr_domain_of(env_to),
				   "host",	  cfg->hostname,
				   "location",	  "MDA",
				   "name",	  "Tern",
				   "phase",	  "during",
				   "remote-host", "",
				   "remote-ip",	  m->remote_ip != NULL ? m->remote_ip : "",
				   "version",	  TERN_VERSION,
				   NULL};
	/* spamtest (RFC 5235): our content score, when the message had one;
	 * virustest: Tern scans for no viruses, so always "not tested" */
	struct sieve_input in = {m->env_from,
				 env_to,
				 m->data,
				 m->len,
				 mailbox_exists,
				 &ec,
				 duplicate_seen,
				 include_get,
				 env,
				 m->spamtest[0] != '\0' ? m->spamtest : NULL,
				 m->spamtest_percent[0] != '\0' ? m->spamtest_percent : NULL,
				 NULL};
	struct send_ctx sc = {st, cfg, m, a, env_to, "", &in, 0, {""}, false};
	if (any && a != NULL && load_message(cfg, m) == 0) {
		in.msg = m->data;
		in.msg_len = m->len;
		if (store_account_address(st, account, sc.account) < 0)
			sc.account[0] = '\0';
		for (int i = 0; i < 3; i++) {
			if (i == 1 && jv_on)
				jmap_vacation_run(&sc, &jv);
			if (run[i] != NULL && !run_one(run[i], names[i], &in, m, env_to, plan,
						       &implicit_flags, &ie, &sc))
				keep = false;
		}
	}
	if (jv_on)
		store_jmapvacation_free(&jv);
	if (keep) {
		size_t before = plan->n;
		struct edit e = {ie.hdr, ie.len, ie.skip};
		add_copy(plan, NULL, false, implicit_flags, &sc, &e);
		if (plan->n > before)
			plan->v[before].implicit = true;
	} else
		free(implicit_flags);
	free(ie.hdr);
	sieve_script_free(&user);
	if (plan->n > 0 || !any)
		return;
	log_info("sieve id=%s to=<%s> action=discard", m->id, env_to);
}

/* Drops the copies of a plan: the recipient gets nothing. */
static void plan_clear(struct smtp_sieve_plan *plan)
{
	for (size_t i = 0; i < plan->n; i++) {
		free(plan->v[i].mailbox);
		free(plan->v[i].flags);
		if (plan->v[i].path != NULL)
			store_spool_drop(&plan->v[i].fd, plan->v[i].path);
		free(plan->v[i].path);
	}
	plan->n = 0;
}

void smtp_sieve_plan_free(struct smtp_sieve_plan *plan)
{
	plan_clear(plan);
	free(plan->v);
	for (size_t i = 0; i < plan->n_dups; i++) {
		free(plan->dups[i].handle);
		free(plan->dups[i].id);
	}
	free(plan->dups);
	free(plan->reject);
	free(plan->reject_reason);
	free(plan->reject_to);
	memset(plan, 0, sizeof *plan);
}


/* Why no notice may go to the sender of m: the null sender (RFC 5429
 * 2.1.2, 2.2.1), or one our checks on port 25 found forged (SPF or DMARC
 * failed: a notice would be backscatter to someone who sent nothing); NULL
 * if one may. */
static const char *no_notice(const struct smtp_sieve_msg *m)
{
	if (m->env_from[0] == '\0')
		return "the envelope sender is empty";
	const char *r = m->arc_results;
	if (r != NULL && (strstr(r, "spf=fail") != NULL || strstr(r, "dmarc=fail") != NULL))
		return "the sender failed SPF or DMARC: it may be forged";
	return NULL;
}

/* Sends the notice of one rejecting plan; 0 sent, -1 not (err). */
static int send_notice(struct store *st, const struct config *cfg, struct smtp_sieve_msg *m,
		       const struct smtp_sieve_plan *p, char *err, size_t errsz)
{
	if (load_message(cfg, m) < 0) {
		snprintf(err, errsz, "the message cannot be read");
		return -1;
	}
	size_t len;
	const char *msg = without_return_path(m->data, m->len, &len);
	time_t now = time(NULL);
	char date[64], id[25], msgid[400], boundary[64];
	struct tm tm;
	localtime_r(&now, &tm);
	if (strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		date[0] = '\0';
	fsutil_unique_id(id);
	snprintf(msgid, sizeof msgid, "%s.reject@%s", id, cfg->hostname);
	snprintf(boundary, sizeof boundary, "=_tern_reject_%s", id);
	struct sieve_notice n = {p->reject_dsn, cfg->hostname, m->env_from, p->reject_to,
				 p->reject_reason, date, date, msgid, boundary, msg, len};
	struct buf out;
	buf_init(&out, 0);
	int rc = sieve_notice_build(&n, &out);
	if (rc < 0)
		snprintf(err, errsz, "the notice could not be made");
	/* our own message: signed for our host name (its From:), no ARC seal */
	struct smtp_sieve_msg own = *m;
	own.arc_results = NULL;
	struct send_ctx sc = {st, cfg, &own, NULL, p->reject_to, "", NULL, 0, {""}, false};
	if (rc == 0)
		rc = send_one(&sc, "", "", m->env_from, cfg->hostname, out.data, out.len,
			      STORE_DSN_NOTIFY_NEVER, err, errsz);
	buf_free(&out);
	return rc;
}

bool smtp_sieve_refuse(struct store *st, const struct config *cfg, struct smtp_sieve_msg *m,
		       struct smtp_sieve_plan *plans, size_t n, bool others, char *reply,
		       size_t replysz)
{
	bool all = n > 0 && !others;
	for (size_t i = 0; i < n; i++)
		all = all && plans[i].reject != NULL;
	if (all) {
		for (size_t i = 0; i < n; i++)
			log_info("sieve id=%s action=reject reply=\"%s\" result=refused", m->id,
				 plans[i].reject);
		snprintf(reply, replysz, "%s", plans[0].reject);
		return true;
	}
	/* Other recipients take the message: one SMTP reply cannot refuse it
	 * for some of them only (RFC 5429 2.1.2). */
	for (size_t i = 0; i < n; i++) {
		struct smtp_sieve_plan *p = &plans[i];
		if (p->reject == NULL)
			continue;
		const char *kind = p->reject_dsn ? "dsn" : "mdn";
		const char *why = no_notice(m);
		char err[256] = "";
		if (why != NULL) {
			log_info("sieve id=%s to=<%s> action=reject result=discarded notice=none "
				 "why=\"%s\"",
				 m->id, p->reject_to, why);
			plan_clear(p);
		} else if (send_notice(st, cfg, m, p, err, sizeof err) < 0) {
			log_error("sieve id=%s to=<%s> action=reject notice=%s rcpt=<%s> error=\"%s\" "
				  "result=keep",
				  m->id, p->reject_to, kind, m->env_from, err);
		} else {
			log_info("sieve id=%s to=<%s> action=reject notice=%s rcpt=<%s> "
				 "result=discarded",
				 m->id, p->reject_to, kind, m->env_from);
			plan_clear(p);
		}
	}
	return false;
}

void smtp_sieve_delivered(struct store *st, const struct smtp_sieve_plan *plan, const char *id)
{
	if (plan->n_dups == 0)
		return;
	struct store_account *a = NULL;
	char err[256] = "";
	struct store_duplicate *e = xcalloc(plan->n_dups, sizeof *e);
	for (size_t i = 0; i < plan->n_dups; i++)
		e[i] = (struct store_duplicate){plan->dups[i].handle, plan->dups[i].id,
						plan->dups[i].expires, plan->dups[i].last};
	int rc = store_account_open_id(st, plan->account, &a);
	if (rc <= 0 ||
	    store_duplicate_record(a, e, plan->n_dups, time(NULL), err, sizeof err) < 0)
		log_error("sieve id=%s action=duplicate_record entries=%zu error=\"%s\"", id,
			  plan->n_dups, rc <= 0 ? "no account" : err);
	free(e);
}

void smtp_sieve_msg_free(struct smtp_sieve_msg *m)
{
	free(m->data);
	m->data = NULL;
	sieve_script_free(&m->global[0]);
	sieve_script_free(&m->global[1]);
}
