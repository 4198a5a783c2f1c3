/*
 * queue-dmarc.c - sending DMARC aggregate reports (RFC 7489 7.2): once a
 * domain's oldest unreported evaluation is mailauth.report_interval old,
 * one report of everything unreported for it goes to each of its rua=
 * mailto: addresses, through the same path as our DSNs (local, or the
 * queue with the null sender, DKIM-signed).  A rua address outside the
 * domain's Organizational Domain gets it only if its domain says so
 * (7.1: a "v=DMARC1" TXT record at DOMAIN._report._dmarc.RUA-DOMAIN).
 * Reports are best effort: one that cannot be made or sent is logged and
 * not tried again (the next one covers the new evaluations).
 *
 * The same run sends the failure reports (RFC 7489 7.3) the SMTP sessions
 * have kept in the store, to the ruf= addresses, under the same rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmarc-report.h"
#include "dmarc.h"
#include "dns.h"
#include "fsutil.h"
#include "log.h"
#include "queue-dmarc.h"
#include "xalloc.h"

#define ROWS_MAX 2000 /* rows in one report */
#define DUE_MAX 64    /* domains per run */
#define FAILURES_MAX 200 /* failure reports per run */

/* What is sent: an aggregate report (rua=) or a failure report (ruf=);
 * the words of its log lines. */
struct kind {
	const char *action; /* "dmarc_report", "dmarc_failure_report" */
	const char *tag;    /* "rua", "ruf" */
};
static const struct kind AGGREGATE = {"dmarc_report", "rua"};
static const struct kind FAILURE = {"dmarc_failure_report", "ruf"};

/* Makes the message of a report for the address to (appended to out).
 * 0 or -1. */
typedef int (*make_fn)(const void *arg, const char *to, struct buf *out);

/* A report waiting for the answer of its external-destination check. */
struct pending {
	struct queue_dmarc *qd;
	struct pending *next;
	struct dns_query *q;
	const struct kind *kind;
	char to[DMARC_URI_MAX + 32];
	char policy_domain[256];
	struct buf msg;
};

struct queue_dmarc {
	struct store *store;
	queue_dmarc_deliver_fn deliver;
	void *ctx;
	struct pending *pending;
};

struct queue_dmarc *queue_dmarc_new(struct store *store, queue_dmarc_deliver_fn deliver,
				    void *ctx)
{
	struct queue_dmarc *qd = xcalloc(1, sizeof *qd);
	qd->store = store;
	qd->deliver = deliver;
	qd->ctx = ctx;
	return qd;
}

static void pending_unlink(struct queue_dmarc *qd, struct pending *p)
{
	for (struct pending **pp = &qd->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	buf_free(&p->msg);
	free(p);
}

void queue_dmarc_cancel(struct queue_dmarc *qd)
{
	while (qd->pending) {
		log_warn("queue action=%s domain=%s %s=<%s> result=skipped "
			 "why=\"stopped while checking the address\"",
			 qd->pending->kind->action, qd->pending->policy_domain,
			 qd->pending->kind->tag, qd->pending->to);
		dns_query_cancel(&qd->pending->q);
		pending_unlink(qd, qd->pending);
	}
}

void queue_dmarc_free(struct queue_dmarc **qdp)
{
	struct queue_dmarc *qd = *qdp;
	if (qd == NULL)
		return;
	queue_dmarc_cancel(qd);
	free(qd);
	*qdp = NULL;
}

static void send_one(struct queue_dmarc *qd, const struct kind *k, const char *to,
		     const char *domain, const struct buf *msg)
{
	if (qd->deliver(qd->ctx, to, msg) < 0)
		log_error("queue action=%s domain=%s %s=<%s> result=failed", k->action, domain,
			  k->tag, to);
	else
		log_info("queue action=%s domain=%s %s=<%s> size=%zu result=sent", k->action,
			 domain, k->tag, to, msg->len);
}

static void ext_cb(void *ctx, const struct dns_rr_result *r)
{
	struct pending *p = ctx;
	p->q = NULL;
	bool ok = false;
	for (size_t i = 0; r->status == DNS_OK && i < r->n && !ok; i++)
		ok = r->rr[i].len >= 8 && strncasecmp((const char *)r->rr[i].data, "v=DMARC1", 8) == 0;
	if (ok)
		send_one(p->qd, p->kind, p->to, p->policy_domain, &p->msg);
	else
		log_warn("queue action=%s domain=%s %s=<%s> result=skipped why=\"the "
			 "address is outside the domain and its domain does not accept reports for "
			 "it (RFC 7489 7.1)\"",
			 p->kind->action, p->policy_domain, p->kind->tag, p->to);
	pending_unlink(p->qd, p);
}

/* Sends a report about policy_domain to each mailto: URI of list (its
 * rua= or ruf=, space-separated, each maybe with "!size"), the message
 * made per address by make. */
static void send_report(struct queue_dmarc *qd, struct dns_resolver *dns, const struct kind *k,
			const char *policy_domain, const char *list, make_fn make,
			const void *arg)
{
	char org_policy[256];
	if (dmarc_org_domain(policy_domain, org_policy, sizeof org_policy) < 0)
		return;
	const char *p = list;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		char uri[DMARC_URI_MAX + 32];
		snprintf(uri, sizeof uri, "%.*s", (int)n, p);
		p += n;
		uint64_t limit = 0;
		char *bang = strrchr(uri, '!');
		if (bang != NULL) {
			limit = strtoull(bang + 1, NULL, 10);
			*bang = '\0';
		}
		if (strncasecmp(uri, "mailto:", 7) != 0)
			continue; /* only mailto: reports are sent */
		const char *to = uri + 7;
		const char *at = strrchr(to, '@');
		if (at == NULL || strchr(to, '?') != NULL)
			continue;
		struct buf msg;
		buf_init(&msg, 0);
		if (make(arg, to, &msg) < 0) {
			buf_free(&msg);
			continue;
		}
		if (limit != 0 && msg.len > limit) {
			log_warn("queue action=%s domain=%s %s=<%s> result=skipped "
				 "why=\"larger than the %llu bytes the address accepts\"",
				 k->action, policy_domain, k->tag, to, (unsigned long long)limit);
			buf_free(&msg);
			continue;
		}
		char org_rua[256];
		if (dmarc_org_domain(at + 1, org_rua, sizeof org_rua) > 0 &&
		    strcasecmp(org_rua, org_policy) == 0) {
			send_one(qd, k, to, policy_domain, &msg);
			buf_free(&msg);
			continue;
		}
		struct pending *pd = xcalloc(1, sizeof *pd);
		pd->qd = qd;
		pd->kind = k;
		snprintf(pd->to, sizeof pd->to, "%s", to);
		snprintf(pd->policy_domain, sizeof pd->policy_domain, "%s", policy_domain);
		pd->msg = msg;
		char name[600], err[256];
		snprintf(name, sizeof name, "%s._report._dmarc.%s", policy_domain, at + 1);
		pd->next = qd->pending;
		qd->pending = pd;
		pd->q = dns_lookup(dns, DNS_RR_TXT, name, ext_cb, pd, err, sizeof err);
		if (pd->q == NULL) {
			log_warn("queue action=%s domain=%s %s=<%s> result=skipped why=\"%s\"",
				 k->action, policy_domain, k->tag, to, err);
			pending_unlink(qd, pd);
		}
	}
}

/* An aggregate report's message for one address. */
struct aggregate {
	const struct dmarc_report_meta *meta;
	const struct buf *gz;
};

static int make_aggregate(const void *arg, const char *to, struct buf *out)
{
	const struct aggregate *a = arg;
	return dmarc_report_message(a->meta, to, a->gz->data, a->gz->len, time(NULL), out);
}

/* A failure report's message for one address: the one kept, with To:. */
static int make_failure(const void *arg, const char *to, struct buf *out)
{
	const struct buf *kept = arg;
	int e = buf_printf(out, "To: <%s>\r\n", to);
	e |= buf_append(out, kept->data, kept->len);
	return e ? -1 : 0;
}

/* Sends the failure reports the sessions have kept (RFC 7489 7.3:
 * "almost immediately"; at the latest at the next run). */
static void send_failures(struct queue_dmarc *qd, struct dns_resolver *dns, time_t now)
{
	int64_t after = 0;
	char err[256];
	for (size_t i = 0; i < FAILURES_MAX; i++) {
		struct store_dmarc_failure f;
		struct buf msg;
		buf_init(&msg, 0);
		int r = store_dmarc_failure_next(qd->store, after, &f, &msg, err, sizeof err);
		if (r <= 0) {
			if (r < 0)
				log_error("queue action=dmarc_failure_reports error=\"%s\"", err);
			buf_free(&msg);
			return;
		}
		after = f.id;
		send_report(qd, dns, &FAILURE, f.policy_domain, f.ruf, make_failure, &msg);
		buf_free(&msg);
		/* sent (or given up on) either way; the row counts towards
		 * mailauth.failure_report_limit for the hour */
		if (store_dmarc_failure_sent(qd->store, f.id, (int64_t)now - 3600, err, sizeof err) < 0)
			log_error("queue action=dmarc_failure_reports error=\"%s\"", err);
	}
}

void queue_dmarc_run(struct queue_dmarc *qd, struct dns_resolver *dns, const struct config *cfg,
		     time_t now)
{
	struct store_dmarc_due *due = xcalloc(DUE_MAX, sizeof *due);
	struct store_dmarc_row *rows = xcalloc(ROWS_MAX, sizeof *rows);
	size_t n_due = 0;
	char err[256];
	if (cfg->mailauth_reports &&
	    store_dmarc_due(qd->store, (int64_t)now - (int64_t)cfg->mailauth_report_interval, due,
			    DUE_MAX, &n_due, err, sizeof err) < 0)
		log_error("queue action=dmarc_reports error=\"%s\"", err);
	for (size_t i = 0; i < n_due; i++) {
		size_t n;
		int64_t first;
		if (store_dmarc_rows(qd->store, due[i].policy_domain, (int64_t)now, rows, ROWS_MAX,
				     &n, &first, err, sizeof err) < 0) {
			log_error("queue action=dmarc_reports error=\"%s\"", err);
			continue;
		}
		char id[25], email[300];
		fsutil_unique_id(id);
		snprintf(email, sizeof email, "postmaster@%s", cfg->hostname);
		struct dmarc_report_meta meta = {cfg->hostname, email,      id, due[i].policy_domain,
						 due[i].policy, first,      (int64_t)now};
		struct buf xml, gz;
		buf_init(&xml, 0);
		buf_init(&gz, 0);
		if (n > 0 && dmarc_report_xml(&meta, rows, n, &xml) == 0 &&
		    dmarc_report_gzip(xml.data, xml.len, &gz) == 0)
			send_report(qd, dns, &AGGREGATE, meta.policy_domain, due[i].rua,
				    make_aggregate, &(struct aggregate){&meta, &gz});
		buf_free(&xml);
		buf_free(&gz);
		/* Reported (or given up on) either way; evaluations are kept
		 * a day more, for `tern` to show. */
		if (store_dmarc_done(qd->store, due[i].policy_domain, (int64_t)now,
				     (int64_t)now - 86400, err, sizeof err) < 0)
			log_error("queue action=dmarc_reports error=\"%s\"", err);
	}
	free(rows);
	free(due);
	send_failures(qd, dns, now);
}
