/*
 * dns.c - MX resolution for outbound delivery (see dns.h), on libunbound.
 *
 * Layer src/dns: below src/queue, above src/lib.  libunbound resolves in a
 * thread of its own (ub_ctx_async(ctx, 1)) and signals finished queries
 * through a pipe, ub_fd(); an EV_READ event on that descriptor calls
 * ub_process(), which runs our callbacks on the loop's thread.  So every
 * callback here runs on the event loop, never inside dns_resolve_mx.
 *
 * One dns_resolve_mx is a small tree of queries: MX first, then AAAA and A
 * for every exchange (or for the domain itself: the implicit MX), all in
 * flight at once.  A timer bounds the whole tree; whatever has not
 * answered by then counts as a temporary failure.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <unbound.h>

#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "strutil.h"
#include "xalloc.h"

#define RR_A 1
#define RR_MX 15
#define RR_AAAA 28
#define RCODE_NXDOMAIN 3

/* One libunbound query of a dns_query. */
struct dns_sub {
	struct dns_query *q;
	int async_id;
	bool pending;
	size_t host; /* index into q->res.hosts, for A/AAAA */
	int type;
};

struct dns_query {
	struct dns_resolver *r;
	struct dns_query *prev, *next; /* the resolver's list */
	uint64_t started_us;           /* metrics_now_us() when made */
	char domain[256];
	dns_mx_cb cb;
	void *ctx;
	struct event *timer;
	struct dns_mx_result res;
	/* A dns_lookup: its callback and answer (NULL for MX/host queries). */
	dns_rr_cb rr_cb;
	struct dns_rr_result *rr;
	/* sub 0 is the MX query; then AAAA and A per host. */
	struct dns_sub subs[1 + 2 * DNS_MAX_HOSTS];
	size_t n_subs, n_pending;
	bool host_temp[DNS_MAX_HOSTS]; /* an address query failed temporarily */
	/* Addresses as they come, v6 and v4 apart, merged at the end. */
	struct {
		size_t n6, n4;
		struct sockaddr_in6 v6[DNS_MAX_ADDRS];
		struct sockaddr_in v4[DNS_MAX_ADDRS];
	} addrs[DNS_MAX_HOSTS];
};

struct dns_resolver {
	struct ub_ctx *ub;
	struct event *ev;
	unsigned timeout_s;
	struct dns_query *queries;
	bool forwarder;                   /* dns.resolver given (else /etc/resolv.conf) */
	char name[DNS_RESOLVER_NAME_MAX]; /* dns_resolver_name */
};

/* ------------------------------------------------------------ pure parts */

const char *dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_TEMPFAIL:
		return "tempfail";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NULLMX:
		return "nullmx";
	case DNS_NOHOST:
		return "nohost";
	}
	return "unknown";
}

/* Reads a domain name in wire format from p[*i..n) into out[256] (lower-
 * case, labels joined by dots, "" for the root).  host_only: labels of
 * letters, digits, '-' and '_' only; else any visible ASCII but '.' and
 * '\\', the bytes the presentation form out could not tell apart.
 * Returns 0 or -1. */
static int parse_name(const unsigned char *p, size_t n, size_t *ip, bool host_only,
		      char out[256])
{
	size_t i = *ip, o = 0;
	for (;;) {
		if (i >= n)
			return -1;
		unsigned len = p[i++];
		if (len == 0)
			break;
		if (len > 63 || i + len > n)
			return -1; /* compression pointers do not belong in rdata here */
		if (o + len + 2 > 256)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (unsigned k = 0; k < len; k++) {
			unsigned char c = p[i + k];
			/* Host names are letters, digits, '-' and '_' in practice;
			 * anything else could not be an SMTP server name. */
			if (host_only ? !(isalnum(c) || c == '-' || c == '_')
				      : c < 0x21 || c > 0x7e || c == '.' || c == '\\')
				return -1;
			out[o++] = (char)tolower(c);
		}
		i += len;
	}
	out[o] = '\0';
	*ip = i;
	return 0;
}

int dns_parse_mx_rdata(const unsigned char *p, size_t n, struct dns_mx *out)
{
	memset(out, 0, sizeof *out);
	if (n < 3)
		return -1;
	out->pref = (unsigned)p[0] << 8 | p[1];
	size_t i = 2;
	if (parse_name(p, n, &i, true, out->host) < 0 || i != n) {
		out->host[0] = '\0';
		return -1;
	}
	return 0; /* "" is the root: a Null MX */
}

int dns_parse_ptr_rdata(const unsigned char *p, size_t n, char out[256])
{
	size_t i = 0;
	out[0] = '\0';
	if (parse_name(p, n, &i, false, out) < 0 || i != n) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

int dns_parse_txt_rdata(const unsigned char *p, size_t n, char *out, size_t outsz, size_t *outlen)
{
	size_t i = 0, o = 0;
	if (outsz == 0)
		return -1;
	while (i < n) {
		size_t len = p[i++];
		if (i + len > n || o + len >= outsz)
			return -1;
		memcpy(out + o, p + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
	*outlen = o;
	return 0;
}

static int mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;
	return x->pref < y->pref ? -1 : x->pref > y->pref;
}

size_t dns_mx_sort(struct dns_mx *mx, size_t n, uint32_t (*rnd)(uint32_t bound))
{
	qsort(mx, n, sizeof *mx, mx_cmp);
	/* Drop repeated hosts (the sort put the lowest preference first). */
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			if (!strcmp(mx[j].host, mx[i].host))
				dup = true;
		if (!dup)
			mx[k++] = mx[i];
	}
	/* Fisher-Yates within each run of equal preference (RFC 5321 5.1:
	 * spread the load over equal MX). */
	if (rnd != NULL) {
		for (size_t lo = 0; lo < k;) {
			size_t hi = lo + 1;
			while (hi < k && mx[hi].pref == mx[lo].pref)
				hi++;
			for (size_t i = hi - 1; i > lo; i--) {
				size_t j = lo + rnd((uint32_t)(i - lo + 1));
				struct dns_mx t = mx[i];
				mx[i] = mx[j];
				mx[j] = t;
			}
			lo = hi;
		}
	}
	return k;
}

bool dns_mx_is_null(const struct dns_mx *mx, size_t n)
{
	return n == 1 && mx[0].host[0] == '\0';
}

void dns_resolvconf_name(const char *text, size_t len, char *out, size_t outsz)
{
	size_t n_servers = 0, used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < len;) {
		size_t end = i;
		while (end < len && text[end] != '\n')
			end++;
		size_t p = i;
		while (p < end && (text[p] == ' ' || text[p] == '\t'))
			p++;
		if (end - p > 10 && !memcmp(text + p, "nameserver", 10) &&
		    (text[p + 10] == ' ' || text[p + 10] == '\t')) {
			p += 10;
			while (p < end && (text[p] == ' ' || text[p] == '\t'))
				p++;
			size_t q = p;
			while (q < end && text[q] != ' ' && text[q] != '\t' && text[q] != '\r' &&
			       text[q] != '#' && text[q] != ';')
				q++;
			/* Addresses only, as the libc takes them (no names); a
			 * fourth and later one are "...". */
			size_t k = q - p;
			bool ok = k > 0 && k < 64, zone = false;
			for (size_t c = p; ok && c < q; c++) {
				unsigned char ch = (unsigned char)text[c];
				if (ch == '%' && !zone)
					zone = true; /* fe80::1%eth0: an interface name */
				else
					ok = zone ? isalnum(ch) || ch == '-' || ch == '_'
						  : isxdigit(ch) || ch == '.' || ch == ':';
			}
			if (ok && n_servers < 3) {
				int w = snprintf(out + used, outsz - used, "%s%.*s",
						 n_servers ? " or " : "", (int)k, text + p);
				if (w < 0 || (size_t)w >= outsz - used)
					break;
				used += (size_t)w;
				n_servers++;
			} else if (ok && n_servers == 3) {
				int w = snprintf(out + used, outsz - used, " or ...");
				if (w > 0 && (size_t)w < outsz - used)
					used += (size_t)w;
				n_servers++;
			}
		}
		i = end + 1;
	}
	if (n_servers == 0)
		snprintf(out, outsz,
			 "built into Tern (recursive: /etc/resolv.conf names no "
			 "nameserver)");
	else
		snprintf(out + used, outsz - used, " (from /etc/resolv.conf)");
}

bool dns_special_use(const char *domain, bool test_asked)
{
	/* The names libunbound answers itself with NXDOMAIN (its default
	 * local zones; RFC 6761, 6762, 7686, 8375): no server is asked. */
	static const char *const zones[] = {"localhost",     "invalid",      "onion", "home.arpa",
					    "resolver.arpa", "service.arpa", "test"};
	size_t n = strlen(domain);
	while (n > 0 && domain[n - 1] == '.')
		n--;
	for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
		if (test_asked && !strcmp(zones[i], "test"))
			continue;
		size_t z = strlen(zones[i]);
		if (n < z || !strutil_eq_ci(domain + n - z, z, zones[i]))
			continue;
		if (n == z || domain[n - z - 1] == '.')
			return true;
	}
	return false;
}

enum dns_status dns_classify(int failed, int rcode, bool havedata, bool nxdomain)
{
	if (failed)
		return DNS_TEMPFAIL;
	if (havedata)
		return DNS_OK;
	if (nxdomain || rcode == RCODE_NXDOMAIN)
		return DNS_NXDOMAIN;
	if (rcode != 0)
		return DNS_TEMPFAIL; /* SERVFAIL, REFUSED, ... */
	return DNS_OK;               /* the name exists, without this type */
}

/* ---------------------------------------------------------------- queries */

static uint32_t rnd_uniform(uint32_t bound)
{
	return arc4random_uniform(bound);
}

static void query_unlink(struct dns_query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		q->r->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void query_free(struct dns_query *q)
{
	for (size_t i = 0; i < q->n_subs; i++) {
		if (q->subs[i].pending)
			(void)ub_cancel(q->r->ub, q->subs[i].async_id);
		q->subs[i].pending = false;
	}
	if (q->timer)
		event_free(q->timer);
	if (q->rr != NULL) {
		for (size_t i = 0; i < q->rr->n; i++)
			free(q->rr->rr[i].data);
		free(q->rr);
	}
	free(q);
}

static void query_finish(struct dns_query *q, enum dns_status st, const char *why)
{
	q->res.status = st;
	if (why != NULL)
		snprintf(q->res.why, sizeof q->res.why, "%.511s", why);
	metrics_observe_since(METRICS_H_DNS, q->started_us);
	metrics_add(M_DNS_FAILURES, st == DNS_TEMPFAIL);
	query_unlink(q);
	dns_mx_cb cb = q->cb;
	void *ctx = q->ctx;
	/* Cancel what is left before the callback, which may start new
	 * queries or cancel others. */
	for (size_t i = 0; i < q->n_subs; i++) {
		if (q->subs[i].pending)
			(void)ub_cancel(q->r->ub, q->subs[i].async_id);
		q->subs[i].pending = false;
	}
	cb(ctx, &q->res);
	query_free(q);
}

/* All address queries answered: merge, drop hosts without addresses. */
static void query_addrs_done(struct dns_query *q)
{
	size_t k = 0;
	bool temp = false;
	for (size_t i = 0; i < q->res.n_hosts; i++) {
		struct dns_host h = q->res.hosts[i];
		h.n_addrs = 0;
		for (size_t j = 0; j < q->addrs[i].n6 && h.n_addrs < DNS_MAX_ADDRS; j++) {
			memcpy(&h.addrs[h.n_addrs], &q->addrs[i].v6[j], sizeof q->addrs[i].v6[j]);
			h.addr_lens[h.n_addrs++] = sizeof(struct sockaddr_in6);
		}
		for (size_t j = 0; j < q->addrs[i].n4 && h.n_addrs < DNS_MAX_ADDRS; j++) {
			memcpy(&h.addrs[h.n_addrs], &q->addrs[i].v4[j], sizeof q->addrs[i].v4[j]);
			h.addr_lens[h.n_addrs++] = sizeof(struct sockaddr_in);
		}
		if (h.n_addrs == 0) {
			if (q->host_temp[i])
				temp = true;
			continue;
		}
		q->res.hosts[k++] = h;
	}
	q->res.n_hosts = k;
	char why[512];
	if (k > 0) {
		query_finish(q, DNS_OK, NULL);
	} else if (temp) {
		snprintf(why, sizeof why,
			 "the DNS resolver %s failed to look up the addresses of the mail servers "
			 "of %.200s (temporary DNS failure)",
			 q->r->name, q->domain);
		query_finish(q, DNS_TEMPFAIL, why);
	} else {
		snprintf(why, sizeof why, "the mail servers of %.200s have no address", q->domain);
		query_finish(q, DNS_NOHOST, why);
	}
}

static void addr_cb(void *arg, int err, struct ub_result *result)
{
	struct dns_sub *sub = arg;
	struct dns_query *q = sub->q;
	sub->pending = false;
	q->n_pending--;
	size_t h = sub->host;
	if (err != 0 || result == NULL) {
		q->host_temp[h] = true;
	} else {
		enum dns_status st =
		    dns_classify(0, result->rcode, result->havedata != 0, result->nxdomain != 0);
		if (st == DNS_TEMPFAIL)
			q->host_temp[h] = true;
		for (size_t i = 0; result->havedata && result->data[i] != NULL; i++) {
			if (sub->type == RR_AAAA && result->len[i] == 16 &&
			    q->addrs[h].n6 < DNS_MAX_ADDRS) {
				struct sockaddr_in6 *a = &q->addrs[h].v6[q->addrs[h].n6++];
				memset(a, 0, sizeof *a);
				a->sin6_family = AF_INET6;
				memcpy(&a->sin6_addr, result->data[i], 16);
			} else if (sub->type == RR_A && result->len[i] == 4 &&
				   q->addrs[h].n4 < DNS_MAX_ADDRS) {
				struct sockaddr_in *a = &q->addrs[h].v4[q->addrs[h].n4++];
				memset(a, 0, sizeof *a);
				a->sin_family = AF_INET;
				memcpy(&a->sin_addr, result->data[i], 4);
			}
		}
	}
	if (result)
		ub_resolve_free(result);
	if (q->n_pending == 0)
		query_addrs_done(q);
}

static int start_sub(struct dns_query *q, const char *name, int type, size_t host,
		     ub_callback_type cb)
{
	struct dns_sub *sub = &q->subs[q->n_subs];
	sub->q = q;
	sub->host = host;
	sub->type = type;
	int rc = ub_resolve_async(q->r->ub, name, type, 1, sub, cb, &sub->async_id);
	if (rc != 0)
		return -1;
	sub->pending = true;
	q->n_subs++;
	q->n_pending++;
	return 0;
}

/* AAAA and A for every host of q->res. */
static int start_addr_subs(struct dns_query *q)
{
	for (size_t i = 0; i < q->res.n_hosts; i++)
		if (start_sub(q, q->res.hosts[i].name, RR_AAAA, i, addr_cb) < 0 ||
		    start_sub(q, q->res.hosts[i].name, RR_A, i, addr_cb) < 0)
			return -1;
	return 0;
}

static void mx_cb(void *arg, int err, struct ub_result *result)
{
	struct dns_sub *sub = arg;
	struct dns_query *q = sub->q;
	sub->pending = false;
	q->n_pending--;
	char why[512];
	enum dns_status st =
	    err != 0 || result == NULL
		? DNS_TEMPFAIL
		: dns_classify(0, result->rcode, result->havedata != 0, result->nxdomain != 0);
	if (st != DNS_OK) {
		/* Name who said so: a broken resolver must not read like a
		 * typing mistake in the address. */
		if (st == DNS_NXDOMAIN && dns_special_use(q->domain, q->r->forwarder))
			snprintf(why, sizeof why,
				 "the domain %.200s does not exist: it is a special-use name "
				 "(RFC 6761) that no DNS server is asked about (NXDOMAIN)",
				 q->domain);
		else if (st == DNS_NXDOMAIN)
			snprintf(why, sizeof why,
				 "the DNS resolver %s says the domain %.200s does not exist "
				 "(NXDOMAIN)",
				 q->r->name, q->domain);
		else
			snprintf(why, sizeof why,
				 "the DNS resolver %s failed to look up MX of %.200s (temporary DNS "
				 "failure: %s)",
				 q->r->name, q->domain,
				 err != 0 ? ub_strerror(err)
				 : result ? "server failure"
					  : "no answer");
		if (result)
			ub_resolve_free(result);
		query_finish(q, st, why);
		return;
	}
	struct dns_mx mx[DNS_MAX_HOSTS * 2];
	size_t n = 0;
	bool bad = false;
	for (size_t i = 0; result->havedata && result->data[i] != NULL; i++) {
		if (n == sizeof mx / sizeof mx[0])
			break;
		if (dns_parse_mx_rdata((const unsigned char *)result->data[i],
				       (size_t)result->len[i], &mx[n]) == 0)
			n++;
		else
			bad = true;
	}
	bool had_data = result->havedata != 0;
	ub_resolve_free(result);
	if (dns_mx_is_null(mx, n) && !bad) {
		snprintf(why, sizeof why, "the domain %.200s accepts no mail (Null MX, RFC 7505)",
			 q->domain);
		query_finish(q, DNS_NULLMX, why);
		return;
	}
	if (had_data) {
		/* A "." among other MX records is meaningless: skip it. */
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (mx[i].host[0] != '\0')
				mx[k++] = mx[i];
		n = dns_mx_sort(mx, k, rnd_uniform);
		if (n == 0) {
			snprintf(why, sizeof why, "the MX records of %.200s are unusable",
				 q->domain);
			query_finish(q, DNS_NOHOST, why);
			return;
		}
		if (n > DNS_MAX_HOSTS)
			n = DNS_MAX_HOSTS;
		for (size_t i = 0; i < n; i++) {
			memcpy(q->res.hosts[i].name, mx[i].host, sizeof q->res.hosts[i].name);
			q->res.hosts[i].pref = mx[i].pref;
		}
		q->res.n_hosts = n;
	} else {
		/* RFC 5321 5.1: no MX, the domain itself is the implicit MX. */
		snprintf(q->res.hosts[0].name, sizeof q->res.hosts[0].name, "%s", q->domain);
		q->res.hosts[0].implicit = true;
		q->res.n_hosts = 1;
	}
	if (start_addr_subs(q) < 0)
		query_finish(q, DNS_TEMPFAIL, "cannot start DNS address lookups");
}

/* Ends a dns_lookup: the callback, then the query is freed. */
static void rr_finish(struct dns_query *q, enum dns_status st, const char *why)
{
	q->rr->status = st;
	if (why != NULL)
		snprintf(q->rr->why, sizeof q->rr->why, "%.255s", why);
	metrics_observe_since(METRICS_H_DNS, q->started_us);
	metrics_add(M_DNS_FAILURES, st == DNS_TEMPFAIL);
	query_unlink(q);
	for (size_t i = 0; i < q->n_subs; i++) {
		if (q->subs[i].pending)
			(void)ub_cancel(q->r->ub, q->subs[i].async_id);
		q->subs[i].pending = false;
	}
	q->rr_cb(q->ctx, q->rr);
	query_free(q);
}

/* Decodes one record of a dns_lookup answer into a fresh buffer. */
static unsigned char *rr_decode(int type, const unsigned char *p, size_t n, size_t *outlen)
{
	char name[256];
	switch (type) {
	case DNS_RR_A:
	case DNS_RR_AAAA:
		if (n != (type == DNS_RR_A ? 4u : 16u))
			return NULL;
		*outlen = n;
		return (unsigned char *)xmemdup0(p, n);
	case DNS_RR_TXT: {
		if (n > DNS_RR_DATA_MAX)
			return NULL;
		char *out = xmalloc(n + 1);
		if (dns_parse_txt_rdata(p, n, out, n + 1, outlen) < 0) {
			free(out);
			return NULL;
		}
		return (unsigned char *)out;
	}
	case DNS_RR_MX:
	case DNS_RR_PTR:
		/* The exchange of an MX (after its preference) is a name as
		 * the PTR's is; a dns_lookup caller (SPF) takes any name the
		 * DNS can carry, not only host names (OpenSPF mx-colon-domain:
		 * "foo:bar/baz.example.com"). */
		if (type == DNS_RR_MX) {
			if (n < 3)
				return NULL;
			p += 2;
			n -= 2;
		}
		if (dns_parse_ptr_rdata(p, n, name) < 0)
			return NULL;
		*outlen = strlen(name);
		return (unsigned char *)xmemdup0(name, *outlen);
	default:
		return NULL;
	}
}

static void lookup_cb(void *arg, int err, struct ub_result *result)
{
	struct dns_sub *sub = arg;
	struct dns_query *q = sub->q;
	sub->pending = false;
	q->n_pending--;
	enum dns_status st =
	    err != 0 || result == NULL
		? DNS_TEMPFAIL
		: dns_classify(0, result->rcode, result->havedata != 0, result->nxdomain != 0);
	char why[512];
	if (st == DNS_TEMPFAIL) {
		snprintf(why, sizeof why, "temporary DNS failure looking up %.200s (%s)", q->domain,
			 err != 0 ? ub_strerror(err)
			 : result ? "server failure"
				  : "no answer");
	} else if (st == DNS_NXDOMAIN) {
		snprintf(why, sizeof why, "%.200s does not exist (NXDOMAIN)", q->domain);
	} else {
		why[0] = '\0';
		for (size_t i = 0; result->havedata && result->data[i] != NULL; i++) {
			size_t len = 0;
			unsigned char *d =
			    q->rr->n < DNS_MAX_RRS
				? rr_decode(sub->type, (const unsigned char *)result->data[i],
					    (size_t)result->len[i], &len)
				: NULL;
			if (d == NULL) {
				q->rr->n_dropped++;
				continue;
			}
			q->rr->rr[q->rr->n].data = d;
			q->rr->rr[q->rr->n++].len = len;
		}
	}
	if (result)
		ub_resolve_free(result);
	rr_finish(q, st, why[0] ? why : NULL);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query *q = arg;
	char why[512];
	if (q->rr_cb != NULL) {
		snprintf(why, sizeof why,
			 "the DNS resolver %s did not answer in time looking up %.200s (DNS timeout)",
			 q->r->name, q->domain);
		rr_finish(q, DNS_TEMPFAIL, why);
		return;
	}
	snprintf(why, sizeof why,
		 "the DNS resolver %s did not answer in time looking up the mail servers of "
		 "%.200s (DNS timeout)",
		 q->r->name, q->domain);
	if (q->res.n_hosts > 0) {
		/* Addresses of some hosts may be in: use what arrived. */
		for (size_t i = 0; i < q->res.n_hosts; i++)
			q->host_temp[i] = true;
		for (size_t i = 0; i < q->res.n_hosts; i++)
			if (q->addrs[i].n4 + q->addrs[i].n6 > 0) {
				query_addrs_done(q);
				return;
			}
	}
	query_finish(q, DNS_TEMPFAIL, why);
}

static void ub_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	int rc = ub_process(r->ub);
	if (rc != 0)
		log_warn("dns action=process error=\"%s\"", ub_strerror(rc));
}

/* A new query for name (trailing dots removed), not started yet. */
static struct dns_query *query_new(struct dns_resolver *r, const char *name, dns_mx_cb cb,
				   void *ctx, char *err, size_t errsz)
{
	size_t len = strlen(name);
	if (len == 0 || len > 253) {
		snprintf(err, errsz, "bad domain name");
		return NULL;
	}
	struct dns_query *q = xcalloc(1, sizeof *q);
	q->r = r;
	memcpy(q->domain, name, len + 1);
	while (len > 1 && q->domain[len - 1] == '.')
		q->domain[--len] = '\0';
	q->cb = cb;
	q->ctx = ctx;
	q->started_us = metrics_now_us();
	return q;
}

/* Arms the timeout of a started query and links it into the resolver. */
static struct dns_query *query_link(struct dns_query *q)
{
	struct dns_resolver *r = q->r;
	q->timer = evtimer_new(event_get_base(r->ev), timeout_cb, q);
	if (q->timer == NULL)
		fatal(1, "out of memory (event)");
	struct timeval tv = {(time_t)r->timeout_s, 0};
	evtimer_add(q->timer, &tv);
	q->next = r->queries;
	if (r->queries)
		r->queries->prev = q;
	r->queries = q;
	return q;
}

struct dns_query *dns_resolve_mx(struct dns_resolver *r, const char *domain, dns_mx_cb cb,
				 void *ctx, char *err, size_t errsz)
{
	struct dns_query *q = query_new(r, domain, cb, ctx, err, errsz);
	if (q == NULL)
		return NULL;
	if (start_sub(q, q->domain, RR_MX, 0, mx_cb) < 0) {
		snprintf(err, errsz, "cannot start a DNS query");
		query_free(q); /* not linked, no timer yet */
		return NULL;
	}
	return query_link(q);
}

struct dns_query *dns_resolve_host(struct dns_resolver *r, const char *host, dns_mx_cb cb,
				   void *ctx, char *err, size_t errsz)
{
	struct dns_query *q = query_new(r, host, cb, ctx, err, errsz);
	if (q == NULL)
		return NULL;
	snprintf(q->res.hosts[0].name, sizeof q->res.hosts[0].name, "%s", q->domain);
	q->res.n_hosts = 1;
	if (start_addr_subs(q) < 0) {
		snprintf(err, errsz, "cannot start a DNS query");
		query_free(q); /* not linked, no timer yet */
		return NULL;
	}
	return query_link(q);
}

struct dns_query *dns_lookup(struct dns_resolver *r, enum dns_rrtype type, const char *name,
			     dns_rr_cb cb, void *ctx, char *err, size_t errsz)
{
	switch (type) {
	case DNS_RR_A:
	case DNS_RR_AAAA:
	case DNS_RR_MX:
	case DNS_RR_TXT:
	case DNS_RR_PTR:
		break;
	default:
		snprintf(err, errsz, "unsupported record type %d", (int)type);
		return NULL;
	}
	struct dns_query *q = query_new(r, name, NULL, ctx, err, errsz);
	if (q == NULL)
		return NULL;
	q->rr_cb = cb;
	q->rr = xcalloc(1, sizeof *q->rr);
	/* libunbound reads the name in presentation form, where '\\' starts
	 * an escape; an SPF target may hold that byte, a space, ':' ...
	 * Every byte but letters, digits, '-', '_' and the dots goes as
	 * \DDD, so the name asked is the name given. */
	char wire_name[253 * 4 + 1];
	size_t o = 0;
	for (const char *c = q->domain; *c != '\0'; c++) {
		unsigned char b = (unsigned char)*c;
		if (isalnum(b) || b == '-' || b == '_' || b == '.')
			wire_name[o++] = (char)b;
		else
			o += (size_t)snprintf(wire_name + o, sizeof wire_name - o, "\\%03u", b);
	}
	wire_name[o] = '\0';
	if (start_sub(q, wire_name, (int)type, 0, lookup_cb) < 0) {
		snprintf(err, errsz, "cannot start a DNS query");
		query_free(q); /* not linked, no timer yet */
		return NULL;
	}
	return query_link(q);
}

void dns_query_cancel(struct dns_query **qp)
{
	if (qp == NULL || *qp == NULL)
		return;
	struct dns_query *q = *qp;
	query_unlink(q);
	query_free(q);
	*qp = NULL;
}

/* "IP", "IP:PORT", "[V6]:PORT" -> unbound's "IP@PORT". */
static int forwarder_spec(const char *in, char *out, size_t outsz)
{
	char host[256];
	uint16_t port;
	struct in6_addr a6;
	struct in_addr a4;
	if (inet_pton(AF_INET, in, &a4) == 1 || inet_pton(AF_INET6, in, &a6) == 1) {
		snprintf(out, outsz, "%s", in);
		return 0;
	}
	if (config_split_hostport(in, host, sizeof host, &port) < 0)
		return -1;
	if (inet_pton(AF_INET, host, &a4) != 1 && inet_pton(AF_INET6, host, &a6) != 1)
		return -1;
	int n = snprintf(out, outsz, "%s@%u", host, (unsigned)port);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* unbound's own empty zones (beyond the RFC 1918 ones unblock-lan-zones
 * opens) that a forwarder answers instead; localhost, onion and invalid
 * stay local. */
static const char *const forwarded_zones[] = {
    "test. transparent",
    "0.in-addr.arpa. nodefault",
    "127.in-addr.arpa. transparent", /* loopback clients' names (FCrDNS tests) */
    "254.169.in-addr.arpa. nodefault",
    "2.0.192.in-addr.arpa. nodefault",
    "100.51.198.in-addr.arpa. nodefault",
    "113.0.203.in-addr.arpa. nodefault",
    "8.b.d.0.1.0.0.2.ip6.arpa. nodefault",
    "d.f.ip6.arpa. nodefault",
    "8.e.f.ip6.arpa. nodefault",
    "9.e.f.ip6.arpa. nodefault",
    "a.e.f.ip6.arpa. nodefault",
    "b.e.f.ip6.arpa. nodefault",
};

struct dns_resolver *dns_resolver_new(struct event_base *base, const char *forwarder,
				      unsigned timeout_s, char *err, size_t errsz)
{
	struct ub_ctx *ub = ub_ctx_create();
	if (ub == NULL) {
		snprintf(err, errsz, "cannot create the DNS resolver");
		return NULL;
	}
	int rc;
	/* A forwarder or a resolv.conf server on loopback is normal (a local
	 * cache, or the test DNS server): unbound refuses those by default. */
	if ((rc = ub_ctx_set_option(ub, "do-not-query-localhost:", "no")) != 0)
		goto ub_fail;
	char name[DNS_RESOLVER_NAME_MAX];
	if (forwarder != NULL && forwarder[0] != '\0') {
		snprintf(name, sizeof name, "%s", forwarder);
		char spec[300];
		if (forwarder_spec(forwarder, spec, sizeof spec) < 0) {
			snprintf(err, errsz, "dns.resolver \"%s\": expected IP or IP:PORT",
				 forwarder);
			ub_ctx_delete(ub);
			return NULL;
		}
		if ((rc = ub_ctx_set_fwd(ub, spec)) != 0)
			goto ub_fail;
		/* unbound answers some names itself, without asking anyone: the
		 * special-use TLD "test." (RFC 6761) and the reverse zones of
		 * private, loopback and documentation addresses (RFC 6303,
		 * RFC 5737, RFC 3849), with NXDOMAIN.  With a forwarder given, ask it
		 * instead: test setups serve their zones under .test, and the
		 * forwarder is the one that knows a LAN's reverse zone (the PTR
		 * of a 192.168.x.y client, the SPF "ptr" mechanism). */
		for (size_t i = 0; i < sizeof forwarded_zones / sizeof forwarded_zones[0]; i++)
			if ((rc = ub_ctx_set_option(ub, "local-zone:", forwarded_zones[i])) != 0)
				goto ub_fail;
		if ((rc = ub_ctx_set_option(ub, "unblock-lan-zones:", "yes")) != 0)
			goto ub_fail;
	} else if ((rc = ub_ctx_resolvconf(ub, NULL)) != 0) {
		goto ub_fail;
	} else {
		/* The file libunbound just read, for dns_resolver_name. */
		size_t len = 0;
		char *text = fsutil_read_file("/etc/resolv.conf", 64 * 1024, &len);
		dns_resolvconf_name(text ? text : "", text ? len : 0, name, sizeof name);
		free(text);
	}
	if ((rc = ub_ctx_async(ub, 1)) != 0)
		goto ub_fail;
	struct dns_resolver *r = xcalloc(1, sizeof *r);
	r->ub = ub;
	r->timeout_s = timeout_s ? timeout_s : 30;
	r->forwarder = forwarder != NULL && forwarder[0] != '\0';
	memcpy(r->name, name, sizeof r->name);
	r->ev = event_new(base, ub_fd(ub), EV_READ | EV_PERSIST, ub_ready_cb, r);
	if (r->ev == NULL || event_add(r->ev, NULL) < 0) {
		snprintf(err, errsz, "cannot watch the DNS resolver");
		if (r->ev)
			event_free(r->ev);
		ub_ctx_delete(ub);
		free(r);
		return NULL;
	}
	return r;
ub_fail:
	snprintf(err, errsz, "DNS resolver setup: %s", ub_strerror(rc));
	ub_ctx_delete(ub);
	return NULL;
}

const char *dns_resolver_name(const struct dns_resolver *r)
{
	return r->name;
}

void dns_resolver_free(struct dns_resolver **rp)
{
	if (rp == NULL || *rp == NULL)
		return;
	struct dns_resolver *r = *rp;
	while (r->queries) {
		struct dns_query *q = r->queries;
		query_unlink(q);
		query_free(q);
	}
	event_free(r->ev);
	ub_ctx_delete(r->ub);
	free(r);
	*rp = NULL;
}
