/*
 * smtp-connect.c - the connection stage of port 25 (see smtp-connect.h and
 * docs/spam.md).
 */
#include "smtp-connect.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "config.h"
#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "netaddr.h"
#include "xalloc.h"

#define FCRDNS_MAX_NAMES 3 /* PTR names whose addresses are asked */

enum lookup_kind { LK_DNSBL, LK_DNSWL, LK_PTR, LK_FORWARD };

struct lookup {
	struct smtp_connect *c;
	enum lookup_kind kind;
	size_t zone; /* LK_DNSBL, LK_DNSWL: index in bl/wl */
	struct dns_query *q;
	bool listed;
	bool tempfail;
};

enum fcrdns_state { FC_UNKNOWN, FC_NONE, FC_UNCONFIRMED, FC_OK };

struct smtp_connect {
	unsigned fcrdns_weight; /* the config's values at the start (a reload may */
	unsigned dns_timeout;   /* free that config before the answers come) */
	struct dns_resolver *dns;
	char ip[INET6_ADDRSTRLEN];
	char log_id[32];
	char rev[DNSBL_REVERSED_MAX];
	bool v6;
	unsigned char addr[16]; /* the client's address, 4 or 16 bytes */
	struct dnsbl_zone bl[DNSBL_MAX_ZONES], wl[DNSBL_MAX_ZONES];
	size_t n_bl, n_wl;
	struct lookup lk[2 * DNSBL_MAX_ZONES + 1 + FCRDNS_MAX_NAMES];
	size_t n_lk;
	size_t pending;
	enum fcrdns_state fcrdns;
	char ptr_name[256];     /* the first PTR name (FC_UNCONFIRMED), the confirmed one (FC_OK) */
	size_t forward_pending; /* forward lookups of PTR names still out */
	bool forward_tempfail;
	bool wait_over; /* spam.pregreet_wait has passed */
	bool timed_out;
	struct event *ev_wait, *ev_dns, *ev_done;
	smtp_connect_cb cb;
	void *ctx;
};

bool smtp_connect_wanted(const struct config *cfg, const char *ip)
{
	if (netaddr_in_list(ip, cfg->mailauth_trusted))
		return false;
	return cfg->spam_pregreet_wait > 0 || cfg->spam_dnsbl[0] || cfg->spam_dnswl[0] ||
	       cfg->spam_fcrdns_weight > 0;
}

static void maybe_done(struct smtp_connect *c)
{
	if (c->wait_over && c->pending == 0)
		event_active(c->ev_done, EV_TIMEOUT, 0);
}

static const char *zone_of(const struct lookup *l)
{
	return l->kind == LK_DNSBL ? l->c->bl[l->zone].name : l->c->wl[l->zone].name;
}

static void list_cb(void *ctx, const struct dns_rr_result *r)
{
	struct lookup *l = ctx;
	struct smtp_connect *c = l->c;
	l->q = NULL;
	c->pending--;
	const char *what = l->kind == LK_DNSBL ? "dnsbl" : "dnswl";
	if (r->status == DNS_TEMPFAIL) {
		l->tempfail = true;
		log_info("smtp session=%s client=%s action=%s zone=%s status=tempfail "
			 "note=\"%s; counted as not listed\"",
			 c->log_id, c->ip, what, zone_of(l), r->why);
	}
	for (size_t i = 0; r->status == DNS_OK && i < r->n; i++) {
		if (r->rr[i].len != 4)
			continue;
		const unsigned char *a = r->rr[i].data;
		enum dnsbl_answer k = dnsbl_classify(a);
		if (k == DNSBL_LISTED) {
			l->listed = true;
			continue;
		}
		log_info("smtp session=%s client=%s action=%s zone=%s answer=%u.%u.%u.%u "
			 "note=\"%s; counted as not listed\"",
			 c->log_id, c->ip, what, zone_of(l), a[0], a[1], a[2], a[3],
			 k == DNSBL_ERROR_CODE ? "an error or quota code of the list"
					       : "not a listing code (127.0.0.2 and up)");
	}
	maybe_done(c);
}

static void forward_cb(void *ctx, const struct dns_rr_result *r)
{
	struct lookup *l = ctx;
	struct smtp_connect *c = l->c;
	l->q = NULL;
	c->pending--;
	c->forward_pending--;
	if (r->status == DNS_TEMPFAIL)
		c->forward_tempfail = true;
	size_t alen = c->v6 ? 16 : 4;
	for (size_t i = 0; r->status == DNS_OK && i < r->n && c->fcrdns != FC_OK; i++) {
		if (r->rr[i].len == alen && memcmp(r->rr[i].data, c->addr, alen) == 0)
			c->fcrdns = FC_OK;
	}
	if (c->forward_pending == 0 && c->fcrdns != FC_OK)
		c->fcrdns = c->forward_tempfail ? FC_UNKNOWN : FC_UNCONFIRMED;
	maybe_done(c);
}

static struct lookup *add_lookup(struct smtp_connect *c, enum lookup_kind kind, size_t zone,
				 enum dns_rrtype type, const char *name, dns_rr_cb cb)
{
	if (c->n_lk == sizeof c->lk / sizeof c->lk[0])
		return NULL;
	struct lookup *l = &c->lk[c->n_lk];
	*l = (struct lookup){.c = c, .kind = kind, .zone = zone};
	char err[256];
	l->q = dns_lookup(c->dns, type, name, cb, l, err, sizeof err);
	if (l->q == NULL) {
		log_info("smtp session=%s client=%s action=spam_dns name=%s error=\"%s\"",
			 c->log_id, c->ip, name, err);
		return NULL;
	}
	c->n_lk++;
	c->pending++;
	return l;
}

static void ptr_cb(void *ctx, const struct dns_rr_result *r)
{
	struct lookup *l = ctx;
	struct smtp_connect *c = l->c;
	l->q = NULL;
	c->pending--;
	if (r->status == DNS_NXDOMAIN || (r->status == DNS_OK && r->n == 0)) {
		c->fcrdns = FC_NONE;
	} else if (r->status == DNS_OK) {
		c->fcrdns = FC_UNCONFIRMED;
		snprintf(c->ptr_name, sizeof c->ptr_name, "%s", (const char *)r->rr[0].data);
		for (size_t i = 0; i < r->n && i < FCRDNS_MAX_NAMES; i++) {
			const char *name = (const char *)r->rr[i].data;
			if (name[0] == '\0')
				continue;
			if (add_lookup(c, LK_FORWARD, i, c->v6 ? DNS_RR_AAAA : DNS_RR_A, name,
				       forward_cb) != NULL)
				c->forward_pending++;
		}
		if (c->forward_pending > 0)
			c->fcrdns = FC_UNKNOWN; /* until the forward answers say */
	}
	maybe_done(c);
}

static void append(char *buf, size_t sz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t sz, const char *fmt, ...)
{
	size_t o = strlen(buf);
	if (o + 1 >= sz)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + o, sz - o, fmt, ap);
	va_end(ap);
}

static void done_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_connect *c = ctx;
	struct smtp_connect_result r = {0};
	int top = 0; /* the weight of the listing in r.reason */
	for (size_t i = 0; i < c->n_lk; i++) {
		const struct lookup *l = &c->lk[i];
		if (l->kind != LK_DNSBL && l->kind != LK_DNSWL)
			continue;
		const char *what_s = l->kind == LK_DNSBL ? "dnsbl" : "dnswl";
		if (l->tempfail) {
			append(r.parts, sizeof r.parts, "%s%s=%s:tempfail", r.parts[0] ? " " : "",
			       what_s, zone_of(l));
			continue;
		}
		if (!l->listed)
			continue;
		int w = l->kind == LK_DNSBL ? c->bl[l->zone].weight : c->wl[l->zone].weight;
		r.score += w;
		if (l->kind == LK_DNSWL && r.dnswl[0] == '\0')
			snprintf(r.dnswl, sizeof r.dnswl, "%s", zone_of(l));
		append(r.parts, sizeof r.parts, "%s%s=%s:%d", r.parts[0] ? " " : "", what_s,
		       zone_of(l), w);
		if (l->kind == LK_DNSBL && w > top) {
			top = w;
			snprintf(r.reason, sizeof r.reason,
				 "is listed by %s (a list of addresses that send spam)",
				 zone_of(l));
		}
	}
	if (c->fcrdns_weight > 0) {
		int w = (int)c->fcrdns_weight;
		const char *st = c->fcrdns == FC_OK            ? "ok"
				 : c->fcrdns == FC_NONE        ? "none"
				 : c->fcrdns == FC_UNCONFIRMED ? "unconfirmed"
							       : "unknown";
		if (c->fcrdns == FC_NONE || c->fcrdns == FC_UNCONFIRMED) {
			r.score += w;
			append(r.parts, sizeof r.parts, "%sfcrdns=%s:%d", r.parts[0] ? " " : "", st,
			       w);
			if (w > top) {
				top = w;
				if (c->fcrdns == FC_NONE)
					snprintf(r.reason, sizeof r.reason,
						 "has no reverse DNS name");
				else
					snprintf(
					    r.reason, sizeof r.reason,
					    "has the reverse DNS name %s, which does not point "
					    "back to it",
					    c->ptr_name);
			}
		} else {
			append(r.parts, sizeof r.parts, "%sfcrdns=%s:0", r.parts[0] ? " " : "", st);
		}
	}
	if (c->timed_out)
		append(r.parts, sizeof r.parts, "%stimeout=%llus", r.parts[0] ? " " : "",
		       (unsigned long long)c->dns_timeout);
	c->cb(c->ctx, &r);
}

static void wait_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_connect *c = ctx;
	c->wait_over = true;
	maybe_done(c);
}

static void dns_timeout_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_connect *c = ctx;
	if (c->pending == 0)
		return;
	for (size_t i = 0; i < c->n_lk; i++) {
		if (c->lk[i].q == NULL)
			continue;
		const struct lookup *l = &c->lk[i];
		log_info("smtp session=%s client=%s action=spam_dns lookup=%s status=timeout "
			 "note=\"no answer in %llus; counted as not listed\"",
			 c->log_id, c->ip,
			 l->kind == LK_DNSBL || l->kind == LK_DNSWL ? zone_of(l)
			 : l->kind == LK_PTR                        ? "ptr"
								    : "forward",
			 (unsigned long long)c->dns_timeout);
		dns_query_cancel(&c->lk[i].q);
		c->lk[i].tempfail = true;
	}
	if (c->fcrdns != FC_OK && c->fcrdns != FC_NONE && c->forward_pending > 0)
		c->fcrdns = FC_UNKNOWN;
	c->pending = 0;
	c->timed_out = true;
	maybe_done(c);
}

struct smtp_connect *smtp_connect_start(struct event_base *base, struct dns_resolver *dns,
					const struct config *cfg, const char *ip,
					const char *log_id, smtp_connect_cb cb, void *ctx)
{
	struct smtp_connect *c = xcalloc(1, sizeof *c);
	c->fcrdns_weight = (unsigned)cfg->spam_fcrdns_weight;
	c->dns_timeout = (unsigned)cfg->spam_dns_timeout;
	c->dns = dns;
	c->cb = cb;
	c->ctx = ctx;
	snprintf(c->ip, sizeof c->ip, "%s", ip);
	snprintf(c->log_id, sizeof c->log_id, "%s", log_id);
	c->ev_wait = evtimer_new(base, wait_cb, c);
	c->ev_dns = evtimer_new(base, dns_timeout_cb, c);
	c->ev_done = event_new(base, -1, 0, done_cb, c);
	if (c->ev_wait == NULL || c->ev_dns == NULL || c->ev_done == NULL)
		fatal(1, "cannot create event");
	char err[200];
	int rs = (int)cfg->spam_reject_score;
	int n = dnsbl_parse_zones(cfg->spam_dnsbl, rs, c->bl, DNSBL_MAX_ZONES, err, sizeof err);
	c->n_bl = n < 0 ? 0 : (size_t)n;
	n = dnsbl_parse_zones(cfg->spam_dnswl, -rs, c->wl, DNSBL_MAX_ZONES, err, sizeof err);
	c->n_wl = n < 0 ? 0 : (size_t)n;
	c->fcrdns = FC_UNKNOWN;
	if (dnsbl_reverse(ip, c->rev, &c->v6) == 0 && dns != NULL) {
		if (c->v6)
			inet_pton(AF_INET6, ip, c->addr);
		else if (inet_pton(AF_INET, ip, c->addr) != 1) {
			/* an IPv4-mapped IPv6 address */
			unsigned char m[16];
			inet_pton(AF_INET6, ip, m);
			memcpy(c->addr, m + 12, 4);
		}
		char name[DNSBL_REVERSED_MAX + DNSBL_ZONE_MAX + 2];
		for (size_t i = 0; i < c->n_bl + c->n_wl; i++) {
			bool bl = i < c->n_bl;
			size_t z = bl ? i : i - c->n_bl;
			snprintf(name, sizeof name, "%s.%s", c->rev,
				 bl ? c->bl[z].name : c->wl[z].name);
			add_lookup(c, bl ? LK_DNSBL : LK_DNSWL, z, DNS_RR_A, name, list_cb);
		}
		if (cfg->spam_fcrdns_weight > 0) {
			snprintf(name, sizeof name, "%s.%s", c->rev,
				 c->v6 ? "ip6.arpa" : "in-addr.arpa");
			add_lookup(c, LK_PTR, 0, DNS_RR_PTR, name, ptr_cb);
		}
	}
	struct timeval tw = {(time_t)cfg->spam_pregreet_wait, 0};
	struct timeval td = {(time_t)cfg->spam_dns_timeout, 0};
	if (cfg->spam_pregreet_wait > 0)
		evtimer_add(c->ev_wait, &tw);
	else
		c->wait_over = true;
	if (c->pending > 0)
		evtimer_add(c->ev_dns, &td);
	maybe_done(c);
	return c;
}

bool smtp_connect_helo(struct smtp_connect_result *r, const struct config *cfg, const char *helo)
{
	const char *fault = dnsbl_helo_fault(helo);
	if (fault == NULL || cfg->spam_helo_weight == 0)
		return false;
	int w = (int)cfg->spam_helo_weight;
	char shown[256]; /* the client's text, printable ASCII only */
	size_t i = 0;
	for (; helo[i] && i < sizeof shown - 1; i++)
		shown[i] = helo[i] > ' ' && helo[i] < 127 ? helo[i] : '?';
	shown[i] = '\0';
	helo = shown;
	r->score += w;
	append(r->parts, sizeof r->parts, "%shelo=%s:%d", r->parts[0] ? " " : "", fault, w);
	append(r->reason, sizeof r->reason, "%ssays HELO %s, which is %s",
	       r->reason[0] ? ", and " : "", helo,
	       !strcmp(fault, "bare_ip") ? "an address without brackets, not a domain name"
					 : "not a full domain name");
	return true;
}

void smtp_connect_free(struct smtp_connect **cp)
{
	struct smtp_connect *c = *cp;
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_lk; i++)
		dns_query_cancel(&c->lk[i].q);
	event_free(c->ev_wait);
	event_free(c->ev_dns);
	event_free(c->ev_done);
	free(c);
	*cp = NULL;
}
