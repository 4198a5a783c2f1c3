/*
 * smtp-grey.c - greylisting at RCPT (see smtp-grey.h): the policy; the
 * triplets are kept by the store (store-greylist.c).
 *
 * Reply: RFC 5321 4.2.3 451 "requested action aborted" is a temporary
 * refusal the client retries (4.5.4.1); RFC 3463 X.7.1 "delivery not
 * authorized".  The triplet's network is the client's /24 (IPv4) or /64
 * (IPv6), so a sender whose retries leave from another address of its
 * farm is still recognised.
 */
#include "smtp-grey.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "addr.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "spf-dns.h"
#include "spf.h"
#include "netaddr.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

#define GREY_PREFIX_V4 24
#define GREY_PREFIX_V6 64
/* How often one process forgets expired triplets. */
#define EXPIRE_EVERY_S 600

/* True if sender (lower-cased) or the client matches spam.greylist_allow. */
static bool allowed(const char *list, const char *ip, const char *sender)
{
	const char *sdom = strrchr(sender, '@');
	sdom = sdom != NULL ? sdom + 1 : NULL;
	for (const char *p = list; *p != '\0';) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, " \t,");
		if (n == 0)
			break;
		const char *w = p;
		p += n;
		const char *at = memchr(w, '@', n);
		if (at == NULL && netaddr_is_net(w, n)) {
			char one[64];
			snprintf(one, sizeof one, "%.*s", (int)n, w);
			if (netaddr_in_list(ip, one))
				return true;
			continue;
		}
		if (sdom == NULL)
			continue; /* <> has no address nor domain to allow */
		if (at != NULL && at != w) {
			/* local@domain: that sender */
			if (strutil_eq_ci(w, n, sender))
				return true;
			continue;
		}
		if (at == w) {
			w++;
			n--;
		}
		/* a domain: it and its subdomains */
		size_t dl = strlen(sdom);
		if (n > 0 && dl >= n && (dl == n || sdom[dl - n - 1] == '.') &&
		    strutil_eq_ci(w, n, sdom + dl - n))
			return true;
	}
	return false;
}

static void lower_copy(char *out, size_t outsz, const char *in)
{
	snprintf(out, outsz, "%s", in);
	strutil_lower(out, strlen(out));
}

static const char *result_name(enum store_greylist_result r)
{
	switch (r) {
	case STORE_GREYLIST_NEW:
		return "new";
	case STORE_GREYLIST_EARLY:
		return "early";
	case STORE_GREYLIST_PASS:
		return "pass";
	case STORE_GREYLIST_KNOWN:
		return "known";
	case STORE_GREYLIST_NET:
		return "network";
	}
	return "?";
}

bool smtp_grey_rcpt(struct store *st, const struct config *cfg, const struct smtp_grey_client *c,
		    const char *sender, const char *rcpt, const char *rcpt_domain, char *line,
		    size_t linesz)
{
	int on = store_greylist_domain_get(st, rcpt_domain);
	if (on == 0)
		return true;
	char from[ADDR_PATH_MAX + 1], to[ADDR_PATH_MAX + 1];
	lower_copy(from, sizeof from, sender);
	lower_copy(to, sizeof to, rcpt);
	char from_log[ADDR_PATH_MAX * 4 + 1], to_log[ADDR_PATH_MAX * 4 + 1];
	log_escape(from_log, sizeof from_log, from, strlen(from));
	log_escape(to_log, sizeof to_log, to, strlen(to));
	char net[INET6_ADDRSTRLEN + 8];
	if (on < 0 || netaddr_network(c->ip, GREY_PREFIX_V4, GREY_PREFIX_V6, net, sizeof net) < 0) {
		log_warn("smtp session=%s client=%s action=greylist from=<%s> to=<%s> result=skip "
			 "reason=%s",
			 c->log_id, c->ip, from_log, to_log, on < 0 ? "store_error" : "no_address");
		return true;
	}
	const char *skip = c->dnswl[0]                                      ? "dnswl"
			   : allowed(cfg->spam_greylist_allow, c->ip, from) ? "allowlist"
									    : NULL;
	if (skip != NULL) {
		log_info("smtp session=%s client=%s action=greylist net=%s from=<%s> to=<%s> "
			 "result=skip reason=%s%s%s",
			 c->log_id, c->ip, net, from_log, to_log, skip, c->dnswl[0] ? " zone=" : "",
			 c->dnswl);
		return true;
	}
	int64_t now = (int64_t)time(NULL);
	unsigned need = (unsigned)cfg->spam_greylist_spf_passes;
	if (need != 0 && c->spf_domain != NULL) {
		int n = store_greylist_sender_passes(st, c->spf_domain, now,
						     (int64_t)cfg->spam_greylist_keep);
		if (n >= 0 && (unsigned)n >= need) {
			log_info("smtp session=%s client=%s action=greylist net=%s from=<%s> "
				 "to=<%s> result=skip reason=spf domain=%s passes=%d",
				 c->log_id, c->ip, net, from_log, to_log, c->spf_domain, n);
			return true;
		}
	}
	struct store_greylist_policy p = {
	    .delay = (int64_t)cfg->spam_greylist_delay,
	    .expire = (int64_t)cfg->spam_greylist_expire,
	    .keep = (int64_t)cfg->spam_greylist_keep,
	    .auto_allow = (unsigned)cfg->spam_greylist_auto_allow,
	};
	static int64_t last_expire;
	char err[256];
	if (now - last_expire >= EXPIRE_EVERY_S) {
		last_expire = now;
		if (store_greylist_expire(st, now, &p, err, sizeof err) < 0)
			log_warn("action=greylist_expire error=\"%s\"", err);
	}
	struct store_greylist_key k = {net, from, to};
	struct store_greylist_answer a;
	if (store_greylist_check(st, &k, now, &p, &a, err, sizeof err) < 0) {
		log_warn("smtp session=%s client=%s action=greylist net=%s from=<%s> to=<%s> "
			 "result=skip reason=store_error error=\"%s\"",
			 c->log_id, c->ip, net, from_log, to_log, err);
		return true;
	}
	if (a.result == STORE_GREYLIST_PASS && need != 0 && c->spf_domain != NULL &&
	    store_greylist_sender_pass(st, c->spf_domain, now, p.keep, err, sizeof err) < 0)
		log_warn("smtp session=%s action=greylist_history domain=%s error=\"%s\"",
			 c->log_id, c->spf_domain, err);
	bool refuse = a.result == STORE_GREYLIST_NEW || a.result == STORE_GREYLIST_EARLY;
	if (refuse)
		log_info("smtp session=%s client=%s action=greylist net=%s from=<%s> to=<%s> "
			 "result=%s wait=%lld",
			 c->log_id, c->ip, net, from_log, to_log, result_name(a.result),
			 (long long)a.wait);
	else if (a.result == STORE_GREYLIST_NET)
		log_info("smtp session=%s client=%s action=greylist net=%s from=<%s> to=<%s> "
			 "result=network",
			 c->log_id, c->ip, net, from_log, to_log);
	else
		log_info("smtp session=%s client=%s action=greylist net=%s from=<%s> to=<%s> "
			 "result=%s after=%lld",
			 c->log_id, c->ip, net, from_log, to_log, result_name(a.result),
			 (long long)(now - a.first));
	if (!refuse)
		return true;
	metrics_inc(M_GREYLIST_DEFER);
	snprintf(line, linesz,
		 "451 4.7.1 <%s>: Greylisted: a first message from this sender to this "
		 "recipient is accepted when it is sent again; try again in %lld seconds",
		 rcpt, (long long)a.wait);
	return false;
}

/* ------------------------------------------------------------ SPF at RCPT */

bool smtp_grey_wants_spf(struct store *st, const struct config *cfg, const char *rcpt_domain)
{
	return cfg->spam_greylist_spf_passes != 0 && cfg->mailauth_check &&
	       store_greylist_domain_get(st, rcpt_domain) == 1;
}

struct smtp_grey_spf {
	struct spf_check *check;
	struct spf_dns_run *run;
	struct event *ev; /* the time bound; made active when the check is done */
	bool done;
	smtp_grey_spf_cb cb;
	void *ctx;
};

static void spf_finished(void *ctx)
{
	struct smtp_grey_spf *g = ctx;
	g->done = true;
	event_active(g->ev, EV_TIMEOUT, 0);
}

static void spf_event(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	struct smtp_grey_spf *g = ctx;
	event_del(g->ev);
	if (!g->done)
		spf_dns_free(&g->run); /* timed out: no answer counts */
	g->cb(g->ctx);
}

struct smtp_grey_spf *smtp_grey_spf_start(struct event_base *base, struct dns_resolver *dns,
					  const char *ip, const char *helo, const char *mail_from,
					  const char *receiver, unsigned timeout_s,
					  smtp_grey_spf_cb cb, void *ctx)
{
	struct smtp_grey_spf *g = xcalloc(1, sizeof *g);
	g->cb = cb;
	g->ctx = ctx;
	g->ev = evtimer_new(base, spf_event, g);
	if (g->ev == NULL)
		fatal(1, "cannot create event");
	struct spf_request sr = {0};
	sr.identity = SPF_ID_MAILFROM;
	sr.helo = helo;
	sr.mail_from = mail_from;
	sr.receiver = receiver;
	bool ip_ok = spf_ip_parse(ip, &sr.ip) == 0;
	g->check = spf_check_new(&sr);
	struct timeval tv = {(time_t)timeout_s, 0};
	evtimer_add(g->ev, &tv);
	if (!ip_ok || dns == NULL)
		spf_finished(g); /* nothing to ask: not a pass */
	else
		g->run = spf_dns_start(dns, g->check, spf_finished, g);
	return g;
}

bool smtp_grey_spf_passed(const struct smtp_grey_spf *g, const char *log_id, char domain[256])
{
	domain[0] = '\0';
	enum spf_result r = g->done && g->run != NULL ? spf_result(g->check) : SPF_NONE;
	bool pass = r == SPF_PASS;
	if (pass)
		lower_copy(domain, 256, spf_domain(g->check));
	log_info("smtp session=%s action=greylist_spf spf=%s domain=%s%s", log_id,
		 g->done ? spf_result_name(r) : "timeout",
		 spf_domain(g->check)[0] ? spf_domain(g->check) : "-",
		 g->done ? "" : " note=\"no answer within spam.dns_timeout; not a pass\"");
	return pass;
}

void smtp_grey_spf_free(struct smtp_grey_spf **gp)
{
	struct smtp_grey_spf *g = *gp;
	if (g == NULL)
		return;
	spf_dns_free(&g->run);
	if (g->ev != NULL)
		event_free(g->ev);
	spf_check_free(&g->check);
	free(g);
	*gp = NULL;
}
