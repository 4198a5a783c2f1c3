/*
 * msgauth.c - SPF, DKIM and DMARC for one received message, with
 * asynchronous DNS, and its Authentication-Results field.
 *
 * Three parts run at once on the loop: the SPF state machine (one query at
 * a time), the key records of every DKIM signature (all asked at once, the
 * signatures are then verified with the answers), and the DMARC policy
 * record (the From: domain, then its Organizational Domain).  When all
 * have their answers, or the time limit passes (what is missing is then a
 * temperror), DMARC is evaluated and the callback runs.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "dkim-fetch.h"
#include "dns.h"
#include "fsutil.h"
#include "header.h"
#include "msgauth.h"
#include "spf-dns.h"
#include "xalloc.h"

struct msgauth {
	struct event_base *base;
	struct dns_resolver *res;
	struct msgauth_request req;
	char ip[64], helo[256], mail_from[512], from_domain[256], receiver[256];
	msgauth_cb cb;
	void *ctx;

	struct spf_check *spf;
	struct spf_dns_run *spf_run;
	bool spf_done;

	struct dkim_fetch *keys; /* the key records of the signatures */

	int dmarc_stage; /* 0 asking the From: domain, 1 its org domain, 2 done */
	struct dns_query *dmarc_q;
	struct dmarc_record rec;
	bool have_rec, rec_temp;
	char rec_domain[256];

	struct event *timer, *done_ev;
	bool finished, called;
	struct msgauth_result out;
};

static void maybe_finish(struct msgauth *m);

/* ----------------------------------------------------------------- SPF */

static void spf_finished(void *ctx)
{
	struct msgauth *m = ctx;
	m->spf_done = true;
	maybe_finish(m);
}

/* ---------------------------------------------------------------- DKIM */

static void key_answered(void *ctx)
{
	maybe_finish(ctx);
}

/* Asks for the key record of every signature (d= and s= of each
 * DKIM-Signature field, at most DKIM_SIGS_MAX, each name once). */
static void keys_start(struct msgauth *m)
{
	struct header h = {0};
	if (header_parse(m->req.msg, m->req.len, &h) != HEADER_OK)
		return; /* dkim_verify says why */
	size_t seen = 0;
	for (size_t i = 0; i < h.n_fields && seen < DKIM_SIGS_MAX; i++) {
		const struct header_field *f = &h.fields[i];
		if (f->name_len != 14 || strncasecmp(f->name, "DKIM-Signature", 14) != 0)
			continue;
		seen++;
		struct dkim_taglist tl;
		if (dkim_taglist_parse(f->value, f->value_len, &tl, NULL, 0) < 0)
			continue;
		const struct dkim_tag *d = dkim_taglist_get(&tl, "d");
		const struct dkim_tag *s = dkim_taglist_get(&tl, "s");
		if (d != NULL && s != NULL)
			dkim_fetch_add(m->keys, s->val, s->val_len, d->val, d->val_len);
	}
	header_free(&h);
	/* The keys of the ARC chain's signatures and seals, too. */
	struct arc_key *ak = xcalloc(ARC_KEYS_MAX, sizeof *ak);
	size_t n = arc_keys_needed(m->req.msg, m->req.len, ak, ARC_KEYS_MAX);
	for (size_t i = 0; i < n; i++)
		dkim_fetch_add(m->keys, ak[i].selector, strlen(ak[i].selector), ak[i].domain,
			       strlen(ak[i].domain));
	free(ak);
}

/* --------------------------------------------------------------- DMARC */

static void dmarc_ask(struct msgauth *m, const char *domain);

static void dmarc_dns_cb(void *ctx, const struct dns_rr_result *r)
{
	struct msgauth *m = ctx;
	m->dmarc_q = NULL;
	enum dmarc_select sel = DMARC_SELECT_EMPTY;
	if (r->status == DNS_TEMPFAIL) {
		m->rec_temp = true;
		m->dmarc_stage = 2;
		maybe_finish(m);
		return;
	}
	if (r->status == DNS_OK && r->n > 0) {
		const char *txt[DNS_MAX_RRS];
		size_t len[DNS_MAX_RRS];
		for (size_t i = 0; i < r->n; i++) {
			txt[i] = (const char *)r->rr[i].data;
			len[i] = r->rr[i].len;
		}
		sel = dmarc_select(txt, len, r->n, &m->rec);
	}
	if (sel == DMARC_SELECT_FOUND) {
		m->have_rec = true;
		m->dmarc_stage = 2;
	} else if (sel == DMARC_SELECT_STOP) {
		m->dmarc_stage = 2;
	} else if (m->dmarc_stage == 0) {
		/* RFC 7489 6.6.3 step 3: the Organizational Domain next. */
		char org[256];
		if (dmarc_org_domain(m->from_domain, org, sizeof org) > 0 &&
		    strcasecmp(org, m->from_domain) != 0) {
			m->dmarc_stage = 1;
			snprintf(m->rec_domain, sizeof m->rec_domain, "%s", org);
			dmarc_ask(m, org);
		} else {
			m->dmarc_stage = 2;
		}
	} else {
		m->dmarc_stage = 2;
	}
	maybe_finish(m);
}

static void dmarc_ask(struct msgauth *m, const char *domain)
{
	char name[300], err[256];
	snprintf(name, sizeof name, "_dmarc.%s", domain);
	m->dmarc_q = dns_lookup(m->res, DNS_RR_TXT, name, dmarc_dns_cb, m, err, sizeof err);
	if (m->dmarc_q == NULL) {
		m->rec_temp = true;
		m->dmarc_stage = 2;
	}
}

static enum dmarc_auth spf_for_dmarc(enum spf_result r)
{
	switch (r) {
	case SPF_PASS:
		return DMARC_AUTH_PASS;
	case SPF_NONE:
		return DMARC_AUTH_NONE;
	case SPF_TEMPERROR:
		return DMARC_AUTH_TEMPERROR;
	case SPF_PERMERROR:
		return DMARC_AUTH_PERMERROR;
	default:
		return DMARC_AUTH_FAIL;
	}
}

static enum dmarc_auth dkim_for_dmarc(enum dkim_status s)
{
	switch (s) {
	case DKIM_PASS:
		return DMARC_AUTH_PASS;
	case DKIM_TEMPERROR:
		return DMARC_AUTH_TEMPERROR;
	case DKIM_PERMERROR:
		return DMARC_AUTH_PERMERROR;
	default:
		return DMARC_AUTH_FAIL;
	}
}

/* ------------------------------------------------------------- the end */

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct msgauth *m = arg;
	m->called = true;
	m->cb(m->ctx, &m->out);
}

/* All answers in (or the time is up): verify, evaluate, call back. */
static void finish(struct msgauth *m)
{
	if (m->finished)
		return;
	m->finished = true;
	evtimer_del(m->timer);
	struct msgauth_result *o = &m->out;
	/* SPF */
	struct spf_query q;
	if (m->spf_done && spf_step(m->spf, &q) == SPF_STEP_DONE) {
		o->spf = spf_result(m->spf);
		snprintf(o->spf_reason, sizeof o->spf_reason, "%s", spf_reason(m->spf));
	} else {
		o->spf = SPF_TEMPERROR;
		snprintf(o->spf_reason, sizeof o->spf_reason, "no DNS answer in time");
	}
	snprintf(o->spf_domain, sizeof o->spf_domain, "%s", spf_domain(m->spf));
	size_t rec_len;
	const char *rec = spf_record(m->spf, &rec_len);
	if (rec != NULL && rec_len < sizeof o->spf_record)
		snprintf(o->spf_record, sizeof o->spf_record, "%.*s", (int)rec_len, rec);
	o->spf_helo = m->mail_from[0] == '\0';
	/* DKIM */
	int n = dkim_verify(m->req.msg, m->req.len, time(NULL), dkim_fetch_lookup, m->keys, o->dkim,
			    DKIM_SIGS_MAX, o->dkim_error, sizeof o->dkim_error);
	o->n_dkim = n > 0 ? (size_t)n : 0;
	/* ARC */
	arc_validate(m->req.msg, m->req.len, time(NULL), dkim_fetch_lookup, m->keys, &o->arc);
	/* DMARC */
	snprintf(o->from_domain, sizeof o->from_domain, "%s", m->from_domain);
	if (m->from_domain[0] != '\0') {
		o->dmarc_checked = true;
		struct dmarc_dkim_input dk[DKIM_SIGS_MAX];
		for (size_t i = 0; i < o->n_dkim; i++) {
			dk[i].domain = o->dkim[i].domain;
			dk[i].result = dkim_for_dmarc(o->dkim[i].status);
		}
		unsigned char rnd = 0;
		(void)fsutil_random(&rnd, 1);
		if (m->have_rec && m->dmarc_stage != 1 && m->rec_domain[0] == '\0')
			snprintf(m->rec_domain, sizeof m->rec_domain, "%s", m->from_domain);
		struct dmarc_input in = {
		    .from_domain = m->from_domain,
		    .record = m->have_rec ? &m->rec : NULL,
		    .record_domain = m->have_rec ? m->rec_domain : NULL,
		    .record_temperror = m->rec_temp || (m->dmarc_stage != 2),
		    .spf_domain = o->spf_domain,
		    .spf = spf_for_dmarc(o->spf),
		    .dkim = dk,
		    .n_dkim = o->n_dkim,
		    .sample = (unsigned)(rnd % 100),
		};
		dmarc_evaluate(&in, &o->dmarc);
		if (m->have_rec) {
			snprintf(o->dmarc_domain, sizeof o->dmarc_domain, "%s", m->rec_domain);
			o->have_record = true;
			o->record = m->rec;
		}
	}
	event_active(m->done_ev, EV_TIMEOUT, 0);
}

static void maybe_finish(struct msgauth *m)
{
	if (m->spf_done && dkim_fetch_pending(m->keys) == 0 && m->dmarc_stage == 2)
		finish(m);
}

static void cancel_queries(struct msgauth *m)
{
	spf_dns_free(&m->spf_run);
	dns_query_cancel(&m->dmarc_q);
	dkim_fetch_cancel(m->keys);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct msgauth *m = arg;
	m->out.timed_out = true;
	cancel_queries(m);
	finish(m);
}

struct msgauth *msgauth_start(struct event_base *base, struct dns_resolver *res,
			      const struct msgauth_request *req, msgauth_cb cb, void *ctx)
{
	struct msgauth *m = xcalloc(1, sizeof *m);
	m->base = base;
	m->res = res;
	m->cb = cb;
	m->ctx = ctx;
	snprintf(m->ip, sizeof m->ip, "%s", req->ip);
	snprintf(m->helo, sizeof m->helo, "%s", req->helo ? req->helo : "");
	snprintf(m->mail_from, sizeof m->mail_from, "%s", req->mail_from ? req->mail_from : "");
	snprintf(m->from_domain, sizeof m->from_domain, "%s",
		 req->from_domain ? req->from_domain : "");
	snprintf(m->receiver, sizeof m->receiver, "%s", req->receiver ? req->receiver : "");
	m->req = *req;
	m->req.ip = m->ip;
	m->req.helo = m->helo;
	m->req.mail_from = m->mail_from;
	m->req.from_domain = m->from_domain;
	m->req.receiver = m->receiver;
	m->keys = dkim_fetch_new(res, key_answered, m);
	m->timer = evtimer_new(base, timeout_cb, m);
	m->done_ev = event_new(base, -1, 0, done_cb, m);
	if (m->timer == NULL || m->done_ev == NULL) {
		fprintf(stderr, "tern: out of memory (event)\n");
		abort();
	}
	struct timeval tv = {req->timeout_s ? (time_t)req->timeout_s : 20, 0};
	evtimer_add(m->timer, &tv);

	struct spf_request sr = {0};
	if (spf_ip_parse(m->ip, &sr.ip) < 0) {
		/* Not an IP address we can check: none, said plainly. */
		m->spf_done = true;
	}
	sr.identity = SPF_ID_MAILFROM;
	sr.helo = m->helo;
	sr.mail_from = m->mail_from;
	sr.receiver = m->receiver;
	m->spf = spf_check_new(&sr);
	if (!m->spf_done)
		m->spf_run = spf_dns_start(m->res, m->spf, spf_finished, m);
	keys_start(m);
	if (m->from_domain[0] != '\0')
		dmarc_ask(m, m->from_domain);
	else
		m->dmarc_stage = 2;
	maybe_finish(m);
	return m;
}

void msgauth_free(struct msgauth **mp)
{
	struct msgauth *m = *mp;
	if (m == NULL)
		return;
	cancel_queries(m);
	dkim_fetch_free(&m->keys);
	spf_check_free(&m->spf);
	event_free(m->timer);
	event_free(m->done_ev);
	free(m);
	*mp = NULL;
}

/* ------------------------------------------------------------ A-R field */

/* True if s can stand as a header "value" token (RFC 2045 token, without
 * the characters that would need quoting) or a domain/address. */
static bool safe_value(const char *s)
{
	if (*s == '\0' || strlen(s) > 255)
		return false;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr(".-_@+=", *p) != NULL))
			return false;
	return true;
}

static const char *spf_word(enum spf_result r)
{
	return spf_result_name(r);
}

int msgauth_header(const struct msgauth_result *r, const char *authserv_id,
		   const struct msgauth_request *req, struct buf *out)
{
	int e = buf_printf(out, "Authentication-Results: %s;\r\n\t", authserv_id);
	e |= msgauth_results(r, req, out);
	e |= buf_puts(out, "\r\n");
	return e ? -1 : 0;
}

int msgauth_results(const struct msgauth_result *r, const struct msgauth_request *req,
		    struct buf *out)
{
	/* SPF: smtp.mailfrom, or smtp.helo for the null sender */
	const char *mf = req->mail_from ? req->mail_from : "";
	int e = buf_printf(out, "spf=%s", spf_word(r->spf));
	if (!r->spf_helo && safe_value(mf))
		e |= buf_printf(out, " smtp.mailfrom=%s", mf);
	else if (!r->spf_helo && safe_value(r->spf_domain))
		e |= buf_printf(out, " smtp.mailfrom=%s", r->spf_domain);
	else if (r->spf_helo && req->helo && safe_value(req->helo))
		e |= buf_printf(out, " smtp.helo=%s", req->helo);
	/* DKIM: one result per signature */
	if (r->n_dkim == 0)
		e |= buf_printf(out, ";\r\n\tdkim=none");
	for (size_t i = 0; i < r->n_dkim; i++) {
		const struct dkim_result *d = &r->dkim[i];
		e |= buf_printf(out, ";\r\n\tdkim=%s", dkim_status_name(d->status));
		if (safe_value(d->domain))
			e |= buf_printf(out, " header.d=%s", d->domain);
		if (safe_value(d->selector))
			e |= buf_printf(out, " header.s=%s", d->selector);
		if (safe_value(d->algo))
			e |= buf_printf(out, " header.a=%s", d->algo);
	}
	/* DMARC */
	if (r->dmarc_checked) {
		e |= buf_printf(out, ";\r\n\tdmarc=%s", dmarc_result_name(r->dmarc.result));
		if (r->dmarc.result != DMARC_RESULT_NONE)
			e |= buf_printf(out, " (p=%s dis=%s)", dmarc_policy_name(r->dmarc.policy),
					dmarc_policy_name(r->dmarc.disposition));
		if (safe_value(r->from_domain))
			e |= buf_printf(out, " header.from=%s", r->from_domain);
	}
	/* ARC (RFC 8617 8.1: the method, and the oldest instance that passed) */
	e |= buf_printf(out, ";\r\n\tarc=%s", arc_status_name(r->arc.status));
	if (r->arc.status == ARC_PASS)
		e |= buf_printf(out, " header.oldest-pass=%u", r->arc.oldest_pass);
	return e ? -1 : 0;
}

bool msgauth_is_ours(const char *value, size_t n, const char *authserv_id)
{
	size_t i = 0;
	while (i < n && (value[i] == ' ' || value[i] == '\t' || value[i] == '\r' || value[i] == '\n'))
		i++;
	size_t id = strlen(authserv_id);
	if (n - i < id || strncasecmp(value + i, authserv_id, id) != 0)
		return false;
	i += id;
	return i == n || strchr(" \t\r\n;(", value[i]) != NULL;
}
