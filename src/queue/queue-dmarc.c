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

/* A report waiting for the answer of its external-destination check. */
struct pending {
	struct queue_dmarc *qd;
	struct pending *next;
	struct dns_query *q;
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
		log_warn("queue action=dmarc_report domain=%s rua=<%s> result=skipped "
			 "why=\"stopped while checking the address\"",
			 qd->pending->policy_domain, qd->pending->to);
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

static void send_one(struct queue_dmarc *qd, const char *to, const char *domain,
		     const struct buf *msg)
{
	if (qd->deliver(qd->ctx, to, msg) < 0)
		log_error("queue action=dmarc_report domain=%s rua=<%s> result=failed", domain, to);
	else
		log_info("queue action=dmarc_report domain=%s rua=<%s> size=%zu result=sent", domain,
			 to, msg->len);
}

static void ext_cb(void *ctx, const struct dns_rr_result *r)
{
	struct pending *p = ctx;
	p->q = NULL;
	bool ok = false;
	for (size_t i = 0; r->status == DNS_OK && i < r->n && !ok; i++)
		ok = r->rr[i].len >= 8 && strncasecmp((const char *)r->rr[i].data, "v=DMARC1", 8) == 0;
	if (ok)
		send_one(p->qd, p->to, p->policy_domain, &p->msg);
	else
		log_warn("queue action=dmarc_report domain=%s rua=<%s> result=skipped why=\"the "
			 "address is outside the domain and its domain does not accept reports for "
			 "it (RFC 7489 7.1)\"",
			 p->policy_domain, p->to);
	pending_unlink(p->qd, p);
}

/* Sends the report in msg (its To: is written per address) for due. */
static void send_report(struct queue_dmarc *qd, struct dns_resolver *dns,
			const struct dmarc_report_meta *meta, const struct buf *gz,
			const char *rua_list)
{
	char org_policy[256];
	if (dmarc_org_domain(meta->policy_domain, org_policy, sizeof org_policy) < 0)
		return;
	const char *p = rua_list;
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
		if (dmarc_report_message(meta, to, gz->data, gz->len, time(NULL), &msg) < 0) {
			buf_free(&msg);
			continue;
		}
		if (limit != 0 && msg.len > limit) {
			log_warn("queue action=dmarc_report domain=%s rua=<%s> result=skipped "
				 "why=\"larger than the %llu bytes the address accepts\"",
				 meta->policy_domain, to, (unsigned long long)limit);
			buf_free(&msg);
			continue;
		}
		char org_rua[256];
		if (dmarc_org_domain(at + 1, org_rua, sizeof org_rua) > 0 &&
		    strcasecmp(org_rua, org_policy) == 0) {
			send_one(qd, to, meta->policy_domain, &msg);
			buf_free(&msg);
			continue;
		}
		struct pending *pd = xcalloc(1, sizeof *pd);
		pd->qd = qd;
		snprintf(pd->to, sizeof pd->to, "%s", to);
		snprintf(pd->policy_domain, sizeof pd->policy_domain, "%s", meta->policy_domain);
		pd->msg = msg;
		char name[600], err[256];
		snprintf(name, sizeof name, "%s._report._dmarc.%s", meta->policy_domain, at + 1);
		pd->next = qd->pending;
		qd->pending = pd;
		pd->q = dns_lookup(dns, DNS_RR_TXT, name, ext_cb, pd, err, sizeof err);
		if (pd->q == NULL) {
			log_warn("queue action=dmarc_report domain=%s rua=<%s> result=skipped "
				 "why=\"%s\"",
				 meta->policy_domain, to, err);
			pending_unlink(qd, pd);
		}
	}
}

void queue_dmarc_run(struct queue_dmarc *qd, struct dns_resolver *dns, const struct config *cfg,
		     time_t now)
{
	struct store_dmarc_due *due = xcalloc(DUE_MAX, sizeof *due);
	struct store_dmarc_row *rows = xcalloc(ROWS_MAX, sizeof *rows);
	size_t n_due = 0;
	char err[256];
	if (store_dmarc_due(qd->store, (int64_t)now - (int64_t)cfg->mailauth_report_interval, due,
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
			send_report(qd, dns, &meta, &gz, due[i].rua);
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
}
