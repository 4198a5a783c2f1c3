/*
 * spf-dns.c - an SPF check driven by asynchronous DNS (spf-dns.h).
 */
#include <stdlib.h>

#include "dns.h"
#include "spf-dns.h"
#include "xalloc.h"

struct spf_dns_run {
	struct dns_resolver *res;
	struct spf_check *check;
	struct dns_query *q;  /* the lookup in flight */
	enum spf_qtype qtype; /* its type */
	bool finished;
	spf_dns_done_fn done;
	void *ctx;
};

static void advance(struct spf_dns_run *r);

static void answer_cb(void *ctx, const struct dns_rr_result *res)
{
	struct spf_dns_run *r = ctx;
	r->q = NULL;
	struct spf_rr *rr = xcalloc(DNS_MAX_RRS, sizeof *rr);
	for (size_t i = 0; i < res->n; i++) {
		rr[i].data = res->rr[i].data;
		rr[i].len = res->rr[i].len;
	}
	enum spf_dns st = res->status == DNS_OK         ? SPF_DNS_OK
			  : res->status == DNS_NXDOMAIN ? SPF_DNS_NXDOMAIN
							: SPF_DNS_TEMPFAIL;
	/* A TXT RRset not read whole might hide a second SPF record:
	 * better a temperror than a wrong answer. */
	if (st == SPF_DNS_OK && r->qtype == SPF_Q_TXT && res->n_dropped > 0)
		st = SPF_DNS_TEMPFAIL;
	spf_answer(r->check, st, rr, st == SPF_DNS_OK ? res->n : 0);
	free(rr);
	advance(r);
}

/* Steps the check; starts its next lookup, or says it is done. */
static void advance(struct spf_dns_run *r)
{
	static const enum dns_rrtype types[] = {
	    [SPF_Q_TXT] = DNS_RR_TXT, [SPF_Q_A] = DNS_RR_A,     [SPF_Q_AAAA] = DNS_RR_AAAA,
	    [SPF_Q_MX] = DNS_RR_MX,   [SPF_Q_PTR] = DNS_RR_PTR,
	};
	struct spf_query q;
	while (spf_step(r->check, &q) == SPF_STEP_QUERY) {
		r->qtype = q.type;
		char err[256];
		r->q = dns_lookup(r->res, types[q.type], q.name, answer_cb, r, err, sizeof err);
		if (r->q != NULL)
			return;
		/* Could not even ask (a name the resolver refuses): a DNS
		 * error for this question. */
		spf_answer(r->check, SPF_DNS_TEMPFAIL, NULL, 0);
	}
	r->finished = true;
	r->done(r->ctx);
}

struct spf_dns_run *spf_dns_start(struct dns_resolver *res, struct spf_check *c,
				  spf_dns_done_fn done, void *ctx)
{
	struct spf_dns_run *r = xcalloc(1, sizeof *r);
	r->res = res;
	r->check = c;
	r->done = done;
	r->ctx = ctx;
	advance(r);
	return r;
}

bool spf_dns_finished(const struct spf_dns_run *r)
{
	return r != NULL && r->finished;
}

void spf_dns_free(struct spf_dns_run **rp)
{
	struct spf_dns_run *r = *rp;
	if (r == NULL)
		return;
	dns_query_cancel(&r->q);
	free(r);
	*rp = NULL;
}
