/*
 * smtp-commit.c - the group commit of accepted messages (smtp-commit.h):
 * queue copies (ARC, DKIM), fsync, Sieve, local delivery, the queue and
 * the delivery log.  Protocol layer, but no session: the SMTP receiver
 * and JMAP EmailSubmission both call it.
 */
#include "smtp-commit.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "dkim-keys.h"
#include "fsutil.h"
#include "log.h"
#include "smtp-quota.h"
#include "smtp-sieve.h"
#include "smtp-spam.h"
#include "strutil.h"
#include "xalloc.h"

/* What the commit works with. */
struct commit_env {
	struct store *store;
	const struct config *cfg;
	struct dkim_keyring *dkim;
};

/* Signs a message leaving for other servers with the DKIM keys of the
 * first of these domains that has keys: its From: domain (aligned, for
 * DMARC), the envelope sender's, those of the recipients it came for (a
 * forwarding alias of ours), our host name's.  Appends the signature
 * fields to sig.  Failing to sign is logged; the message goes unsigned
 * rather than not at all. */
static void dkim_sign_copy(const struct commit_env *srv, const struct smtp_commit_msg *t,
			   const char *msg, size_t len, struct buf *sig)
{
	char from_domain[ADDR_DOMAIN_MAX + 1];
	/* the From: domain DMARC aligns with ("" when unclear: the other
	 * candidates then) */
	smtp_parse_from_domain(msg, len, from_domain);
	size_t max = 3 + t->n_rcpts, n = 0;
	const char **cand = xcalloc(max, sizeof *cand);
	cand[n++] = from_domain;
	cand[n++] = addr_domain_of(t->from);
	for (size_t i = 0; i < t->n_rcpts; i++)
		cand[n++] = addr_domain_of(t->rcpts[i].addr);
	cand[n++] = srv->cfg->hostname;
	char used[256], err[256];
	int r = dkim_keyring_sign(srv->dkim, cand, n, msg, len, time(NULL), sig, used, sizeof used,
				  err, sizeof err);
	if (r < 0) {
		log_error("smtp id=%s action=dkim_sign error=\"%s\" note=\"sent unsigned\"", t->id,
			  err);
		buf_reset(sig);
	} else if (r > 0) {
		log_debug("smtp id=%s action=dkim_sign domain=%s signatures=%d", t->id, used, r);
	}
	free(cand);
}

/* Our ARC set over msg into out (nothing when the chain already failed
 * or no domain of ours has a key): sealed with an RSA key (what most
 * validators support) of the domain the message came for. */
static void arc_seal_copy(const struct commit_env *srv, const struct smtp_commit_msg *t,
			  const char *msg, size_t len, struct buf *out)
{
	size_t max = 1 + t->n_rcpts, n = 0;
	const char **cand = xcalloc(max, sizeof *cand);
	for (size_t i = 0; i < t->n_rcpts; i++)
		cand[n++] = addr_domain_of(t->rcpts[i].addr);
	cand[n++] = srv->cfg->hostname;
	char err[256];
	int r = dkim_keyring_arc_seal(srv->dkim, cand, n, msg, len, srv->cfg->hostname,
				      t->arc_results, t->arc_cv, out, err, sizeof err);
	free(cand);
	if (r < 0) {
		log_error("smtp id=%s action=arc_seal error=\"%s\" note=\"sent without\"", t->id,
			  err);
		buf_reset(out);
	} else if (r == 0) {
		log_info("smtp id=%s action=arc_seal cv=%s", t->id, arc_status_name(t->arc_cv));
	}
}

/* Copies the spool file without its first line (our Return-Path, which
 * belongs only to final delivery) into a new spool file for the queue,
 * DKIM-signed, synced.  Returns its descriptor (held until
 * store_spool_drop) or -1. */
static int make_queue_copy(const struct commit_env *srv, const struct smtp_commit_msg *t,
			   char *path, size_t pathsz)
{
	size_t len;
	char *data = fsutil_read_file(t->spool_path, SIZE_MAX, &len);
	if (data == NULL)
		return -1;
	const char *nl = memchr(data, '\n', len);
	size_t skip = nl ? (size_t)(nl - data) + 1 : 0;
	/* Mail checked on port 25 that we pass on (an alias or a redirect to
	 * another server) gets our ARC set first (RFC 8617 5.1), so the next
	 * hop can trust our verdict; then the DKIM signatures cover it all. */
	struct buf arc, sig;
	buf_init(&arc, 0);
	buf_init(&sig, 0);
	if (t->arc_results != NULL)
		arc_seal_copy(srv, t, data + skip, len - skip, &arc);
	struct buf whole;
	buf_init(&whole, 0);
	const char *body = data + skip;
	size_t body_len = len - skip;
	if (arc.len > 0 && buf_append(&whole, arc.data, arc.len) == 0 &&
	    buf_append(&whole, data + skip, len - skip) == 0) {
		body = whole.data;
		body_len = whole.len;
	}
	dkim_sign_copy(srv, t, body, body_len, &sig);
	int fd = store_spool_write(srv->store, sig.data, sig.len, body, body_len, path, pathsz);
	buf_free(&whole);
	buf_free(&arc);
	buf_free(&sig);
	free(data);
	return fd;
}

/* The queue's recipients of t (remote targets, and local recipients whose
 * success DSN the queue runner sends), for store_queue_add_batch.  The
 * array points into t; free it. */
static struct store_queue_new_rcpt *queue_rcpts(const struct smtp_commit_msg *t, size_t *n)
{
	*n = t->n_remote + t->n_ok_local;
	struct store_queue_new_rcpt *q = xcalloc(*n ? *n : 1, sizeof *q);
	for (size_t j = 0; j < t->n_remote; j++) {
		q[j].addr = t->remote[j];
		q[j].notify = t->remote_notify[j];
		q[j].orcpt = t->remote_orcpt[j];
	}
	for (size_t j = 0; j < t->n_ok_local; j++) {
		q[t->n_remote + j].addr = t->ok_local[j].addr;
		q[t->n_remote + j].notify = SMTP_DSN_NOTIFY_SUCCESS;
		q[t->n_remote + j].orcpt = t->ok_local_orcpt[j];
		q[t->n_remote + j].delivered = true;
		q[t->n_remote + j].expanded = t->ok_local_expanded[j];
	}
	return q;
}

/* The envelope sender for the queue copy of t: on port 25 the queue
 * only forwards (an alias of ours to another server), and a sender of a
 * domain not ours is rewritten with SRS into the domain of the address it
 * came for, so that SPF at the next hop passes (store-srs.c); else the
 * sender as it is.  Into out. */
static void forward_sender(const struct commit_env *srv, const struct smtp_commit_msg *t, char *out,
			   size_t outsz)
{
	snprintf(out, outsz, "%s", t->from);
	if (t->submitted || t->from[0] == '\0' || t->n_remote == 0)
		return;
	const char *at = strrchr(t->from, '@');
	if (at == NULL || store_domain_exists(srv->store, at + 1) != 0)
		return;
	for (size_t i = 0; i < t->n_rcpts; i++) {
		const char *rat = strrchr(t->rcpts[i].addr, '@');
		if (rat == NULL || store_domain_exists(srv->store, rat + 1) != 1)
			continue;
		char srs[ADDR_PATH_MAX + 64];
		if (store_srs_forward(srv->store, t->from, rat + 1, srs, sizeof srs) == 0 &&
		    strlen(srs) < outsz) {
			snprintf(out, outsz, "%s", srs);
			log_info("smtp id=%s action=srs from=<%s> rewritten=<%s>", t->id, t->from,
				 srs);
		}
		return;
	}
}

/* The local deliveries of a commit batch, for the delivery log that `tern
 * trace` reads: per message (parallel to the batch), per recipient
 * account, each copy stored (its folder, and what Sieve did) or its
 * discarding.  item[i].n is 0 for a message with none. */
struct local_log {
	struct store_local_item *item;
	struct store_local_record *rec;
	char (*notes)[700];
};

/* What Sieve did with one stored copy, for its log row: NULL (no
 * fileinto), or a note written into buf. */
static const char *copy_note(const struct store_delivery *d, char *buf, size_t bufsz)
{
	if (d->mailbox == NULL)
		return NULL;
	if (d->filed)
		return "filed there by Sieve";
	snprintf(buf, bufsz, "Sieve chose the folder %s, which does not exist", d->mailbox);
	return buf;
}

/* Fills lg from the outcome of store_deliver_batch (plans and items in
 * commit_cb's order); a copy that was not delivered is not recorded (its
 * client hears 451).  Free with local_log_free. */
static void local_log_build(struct local_log *lg, const struct smtp_commit_msg *batch, size_t n,
			    const bool *ok, const struct smtp_sieve_plan *plans,
			    const struct store_delivery *items)
{
	size_t n_rec = 0, p = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		for (size_t j = 0; j < batch[i].n_local; j++, p++)
			n_rec += plans[p].n ? plans[p].n : 1;
	}
	lg->item = xcalloc(n ? n : 1, sizeof *lg->item);
	lg->rec = xcalloc(n_rec ? n_rec : 1, sizeof *lg->rec);
	lg->notes = xcalloc(n_rec ? n_rec : 1, sizeof *lg->notes);
	struct store_local_record *rec = lg->rec;
	size_t r = 0, k = 0;
	p = 0;
	for (size_t i = 0; i < n; i++) {
		const struct smtp_commit_msg *t = &batch[i];
		struct store_local_item *it = &lg->item[i];
		it->path = t->spool_path;
		it->sender = t->from;
		it->v = rec + r;
		if (!ok[i])
			continue;
		size_t first = r;
		for (size_t j = 0; j < t->n_local; j++) {
			const struct smtp_sieve_plan *pl = &plans[p++];
			struct store_local_record base = {t->local_to[j].addr, t->local[j],
							  t->local_via[j], NULL, NULL};
			if (pl->n == 0) {
				rec[r] = base;
				rec[r++].note = "discarded by Sieve";
				continue;
			}
			for (size_t c = 0; c < pl->n; c++) {
				const struct store_delivery *d = &items[k++];
				if (d->status != 0)
					continue;
				rec[r] = base;
				rec[r].folder = d->filed ? d->mailbox : "INBOX";
				rec[r].note = copy_note(d, lg->notes[r], sizeof lg->notes[r]);
				if (t->spam != NULL && d->mailbox == t->spam->r[j].junk) {
					char score[32];
					smtp_spam_score_text(t->spam->r[j].score10, score,
							     sizeof score);
					snprintf(lg->notes[r], sizeof lg->notes[r],
						 "spam score %s, %s: filed into %s", score,
						 t->spam->r[j].why, d->mailbox);
					rec[r].note = lg->notes[r];
				}
				r++;
			}
		}
		it->n = r - first;
	}
}

/* Records what the queue's transaction did not (messages without queued
 * recipients, or whose queueing failed), in a transaction of server.db
 * without a sync of its own.  A failure is logged and changes no reply:
 * the mail is delivered. */
static void local_log_write(const struct commit_env *srv, struct local_log *lg, size_t n,
			    const struct store_queue_item *qi, const size_t *qi_of)
{
	struct store_local_item *rest = xcalloc(n ? n : 1, sizeof *rest);
	size_t n_rest = 0;
	for (size_t i = 0; i < n; i++)
		if (lg->item[i].n > 0 && (qi_of[i] == 0 || qi[qi_of[i] - 1].status != 0))
			rest[n_rest++] = lg->item[i];
	char err[256];
	if (n_rest > 0 && store_queue_local_log(srv->store, rest, n_rest, err, sizeof err) < 0)
		log_error("smtp action=local_log items=%zu error=\"%s\"", n_rest, err);
	free(rest);
}

static void local_log_free(struct local_log *lg)
{
	free(lg->item);
	free(lg->rec);
	free(lg->notes);
}

/* Makes the batch durable (group commit): per message one fsync (of the
 * spool file when it has local recipients, of its queue copy when it has
 * remote ones; both when it has both), one store_deliver_batch for all
 * local copies (one folder fsync and one commit per account) and one
 * store_queue_add_batch for all queued copies (one folder fsync and one
 * commit); 250 only for a message that is durable everywhere. */
void smtp_commit_batch(struct store *st, const struct config *cfg, struct dkim_keyring *dkim,
		       const struct smtp_commit_msg *batch, size_t n,
		       struct smtp_commit_result *res)
{
	const struct commit_env env = {st, cfg, dkim};
	const struct commit_env *srv = &env;
	if (n == 0)
		return;

	bool *ok = xcalloc(n, sizeof *ok);
	char(*qpath)[PATH_MAX] = xcalloc(n, sizeof *qpath);
	int *qfd = xcalloc(n, sizeof *qfd);
	size_t n_items = 0;
	for (size_t i = 0; i < n; i++) {
		const struct smtp_commit_msg *t = &batch[i];
		ok[i] = true;
		qfd[i] = -1;
		if (t->n_remote + t->n_ok_local > 0 &&
		    (qfd[i] = make_queue_copy(srv, t, qpath[i], PATH_MAX)) < 0) {
			log_error("smtp id=%s action=queue_copy error=\"%s\"", t->id,
				  strerror(errno));
			qpath[i][0] = '\0';
			ok[i] = false;
		}
		/* A message only for the queue is durable through its copy:
		 * the spool file itself goes away unread. */
		if (ok[i] && t->n_local > 0 && fsync(t->spool_fd) < 0) {
			log_error("smtp id=%s action=fsync error=\"%s\"", t->id, strerror(errno));
			ok[i] = false;
		}
	}
	/* Sieve decides the copies of each local recipient (none: discarded). */
	size_t *n_items_of = xcalloc(n, sizeof *n_items_of);
	char(*refused)[512] = xcalloc(n, sizeof *refused); /* a Sieve reject's reply */
	struct smtp_sieve_plan *plans = NULL;
	size_t n_plans = 0;
	size_t *plan_item = NULL; /* plan -> its first item */
	size_t *plan_msg = NULL;  /* plan -> its message */
	struct store_delivery *items = NULL;
	time_t now = time(NULL);
	for (size_t i = 0; i < n; i++) {
		const struct smtp_commit_msg *t = &batch[i];
		if (!ok[i] || t->n_local == 0)
			continue;
		struct smtp_sieve_msg sm = {t->spool_path,
					    t->from,
					    t->id,
					    NULL,
					    0,
					    0,
					    false,
					    {NULL, NULL},
					    srv->dkim,
					    t->arc_results,
					    t->arc_cv,
					    srv->cfg->hostname,
					    t->client,
					    "",
					    ""};
		plans = xreallocarray(plans, n_plans + t->n_local, sizeof *plans);
		plan_item = xreallocarray(plan_item, n_plans + t->n_local, sizeof *plan_item);
		plan_msg = xreallocarray(plan_msg, n_plans + t->n_local, sizeof *plan_msg);
		size_t first_plan = n_plans;
		for (size_t j = 0; j < t->n_local; j++) {
			/* spamtest (RFC 5235): this recipient's content score */
			sm.spamtest[0] = sm.spamtest_percent[0] = '\0';
			if (t->spam != NULL)
				smtp_spam_sieve_results(&t->spam->r[j], sm.spamtest,
							sm.spamtest_percent);
			smtp_sieve_plan(srv->store, srv->cfg, &sm, t->local[j], t->local_to[j].addr,
					&plans[n_plans++]);
		}
		/* Sieve reject (RFC 5429) at SMTP time: nothing is stored,
		 * and the message leaves the plans and the delivery log; else
		 * each rejecting recipient's notice goes to the sender. */
		bool refuse =
		    smtp_sieve_refuse(srv->store, srv->cfg, &sm, plans + first_plan, t->n_local,
				      t->n_remote > 0, refused[i], sizeof refused[i]);
		smtp_sieve_msg_free(&sm);
		if (refuse) {
			while (n_plans > first_plan)
				smtp_sieve_plan_free(&plans[--n_plans]);
			continue;
		}
		for (size_t j = 0; j < t->n_local; j++) {
			struct smtp_sieve_plan *p = &plans[first_plan + j];
			plan_item[first_plan + j] = n_items;
			plan_msg[first_plan + j] = i;
			items = xreallocarray(items, n_items + p->n + 1, sizeof *items);
			for (size_t c = 0; c < p->n; c++) {
				struct store_delivery *d = &items[n_items++];
				memset(d, 0, sizeof *d);
				/* a copy whose header a script edited has
				 * its own file (RFC 5293) */
				d->path = p->v[c].path != NULL ? p->v[c].path : t->spool_path;
				d->account_id = t->local[j];
				d->internaldate = now;
				d->mailbox = p->v[c].mailbox;
				d->create = p->v[c].create;
				/* A spam score at the junk level files the
				 * implicit keep into Junk; a Sieve fileinto
				 * or keep (even into INBOX) wins. */
				if (t->spam != NULL && d->mailbox == NULL && p->v[c].implicit &&
				    t->spam->r[j].verdict != SMTP_SPAM_INBOX) {
					d->mailbox = t->spam->r[j].junk;
					d->create = true;
				}
				/* DMARC quarantine: what would go to the INBOX
				 * goes to Junk (a script's folders stay). */
				if ((t->junk || (t->junk_of && t->junk_of[j])) &&
				    (d->mailbox == NULL ||
				     strutil_eq_ci(d->mailbox, strlen(d->mailbox), "INBOX"))) {
					d->mailbox = "Junk";
					d->create = true;
				}
				d->flags = p->v[c].flags;
				n_items_of[i]++;
			}
		}
	}
	bool *logged = xcalloc(n, sizeof *logged);
	for (size_t i = 0; i < n; i++)
		logged[i] = ok[i] && !refused[i][0];
	if (items == NULL)
		items = xcalloc(1, sizeof *items);
	size_t k = 0;
	char err[256] = "";
	if (n_items > 0 && store_deliver_batch(srv->store, items, n_items, err, sizeof err) < 0)
		log_error("smtp action=deliver_batch items=%zu error=\"%s\"", n_items, err);
	smtp_quota_warn(srv->store, srv->cfg, items, n_items);
	/* Sieve duplicate IDs count once every copy of a recipient is stored. */
	for (size_t p = 0; p < n_plans; p++) {
		bool all = true;
		for (size_t c = 0; c < plans[p].n; c++)
			all = all && items[plan_item[p] + c].status == 0;
		if (all)
			smtp_sieve_delivered(srv->store, &plans[p], batch[plan_msg[p]].id);
	}

	struct local_log lg;
	local_log_build(&lg, batch, n, logged, plans, items);

	/* Which messages were delivered to every local recipient, and the
	 * queue items of those that also go to the queue. */
	size_t *delivered = xcalloc(n, sizeof *delivered);
	struct store_queue_item *qi = xcalloc(n, sizeof *qi);
	size_t *qi_of = xcalloc(n, sizeof *qi_of);                /* message -> qi index + 1 */
	char(*srs)[ADDR_PATH_MAX + 64] = xcalloc(n, sizeof *srs); /* envelope senders */
	size_t n_qi = 0;
	k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct smtp_commit_msg *t = &batch[i];
		if (!ok[i] || refused[i][0])
			continue;
		for (size_t j = 0; j < n_items_of[i]; j++, k++)
			if (items[k].status == 0)
				delivered[i]++;
		if (delivered[i] == n_items_of[i] && qpath[i][0]) {
			forward_sender(srv, t, srs[i], sizeof srs[i]);
			qi[n_qi] = (struct store_queue_item){
			    qpath[i], srs[i], t->dsn_ret, t->dsn_envid, NULL,
			    0,        -1,     0,          NULL,         t->requiretls};
			qi[n_qi].rcpts = queue_rcpts(t, &qi[n_qi].n_rcpts);
			/* Its local deliveries go into the queue's own transaction. */
			if (lg.item[i].n > 0)
				qi[n_qi].local = &lg.item[i];
			qi_of[i] = ++n_qi;
		}
	}
	char qerr[256] = "";
	if (n_qi > 0 && store_queue_add_batch(srv->store, qi, n_qi, qerr, sizeof qerr) < 0)
		log_error("smtp action=queue_batch items=%zu error=\"%s\"", n_qi, qerr);
	local_log_write(srv, &lg, n, qi, qi_of);

	for (size_t i = 0; i < n; i++) {
		const struct smtp_commit_msg *t = &batch[i];
		struct smtp_commit_result *r = &res[i];
		r->queue_id = 0;
		if (!ok[i]) {
			/* the spool file or its queue copy is not durable */
			r->code = 451;
			snprintf(r->reply, sizeof r->reply, "%s",
				 "451 4.3.0 Error: could not store the message, try again later");
		} else if (refused[i][0]) {
			r->code = 550;
			snprintf(r->reply, sizeof r->reply, "%s", refused[i]);
		} else if (delivered[i] == n_items_of[i] &&
			   (qi_of[i] == 0 || qi[qi_of[i] - 1].status == 0)) {
			r->code = 250;
			snprintf(r->reply, sizeof r->reply, "250 2.0.0 Ok: queued as %s", t->id);
			if (qi_of[i] != 0)
				r->queue_id = qi[qi_of[i] - 1].id;
		} else {
			/* Some mailboxes may already have it; the client retries
			 * the whole message: a duplicate, never a loss. */
			log_error("smtp id=%s action=deliver delivered=%zu of=%zu error=\"%s\"",
				  t->id, delivered[i], n_items_of[i], qi_of[i] ? qerr : err);
			r->code = 451;
			snprintf(r->reply, sizeof r->reply, "%s",
				 "451 4.3.0 Error: local delivery failed, try again later");
		}
	}
	for (size_t i = 0; i < n_qi; i++)
		free((void *)qi[i].rcpts);
	for (size_t i = 0; i < n; i++)
		store_spool_drop(&qfd[i], qpath[i]);
	free(qfd);
	free(srs);
	local_log_free(&lg);
	free(qi_of);
	free(qi);
	free(delivered);
	free(items);
	for (size_t i = 0; i < n_plans; i++)
		smtp_sieve_plan_free(&plans[i]);
	free(plans);
	free(plan_item);
	free(plan_msg);
	free(n_items_of);
	free(refused);
	free(logged);
	free(qpath);
	free(ok);
}
