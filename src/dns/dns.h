/*
 * dns.h - asynchronous DNS lookups for outbound mail, on a libevent loop,
 * through libunbound.
 *
 * The one question the queue asks is "where does mail for DOMAIN go?":
 * dns_resolve_mx answers it as RFC 5321 5.1 says, with every address of
 * every host, in the order they should be tried:
 *
 *   - MX records sorted by preference, random order among equal
 *     preferences (dns_mx_sort);
 *   - no MX record but the domain exists: the domain itself is the one
 *     host (the "implicit MX"), with its A/AAAA records;
 *   - a Null MX (RFC 7505: exactly one MX whose exchange is ".") and a
 *     domain that does not exist (NXDOMAIN) are permanent failures; the
 *     text of an NXDOMAIN names the resolver that said so
 *     (dns_resolver_name), so that a broken resolver is not taken for a
 *     typing mistake;
 *   - SERVFAIL, a timeout or no answer are temporary failures.
 *
 * For each host both AAAA and A are asked (IPv6 addresses first).  The
 * pure parts (MX record parsing, sorting, classification of an answer)
 * are exposed for the unit tests.
 *
 * Ownership: the resolver belongs to its creator (dns_resolver_free); a
 * query handle belongs to the resolver until its callback runs or it is
 * cancelled: the result passed to the callback is valid during the call
 * only.  A callback is never called from inside dns_resolve_mx itself.
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct dns_resolver;
struct dns_query;

/* How one lookup ended. */
enum dns_status {
	DNS_OK,       /* at least one host with at least one address */
	DNS_TEMPFAIL, /* SERVFAIL, timeout, refused: try again later */
	DNS_NXDOMAIN, /* the domain does not exist: permanent */
	DNS_NULLMX,   /* the domain says it accepts no mail (RFC 7505) */
	DNS_NOHOST,   /* MX hosts (or the implicit MX) have no address */
};

#define DNS_MAX_HOSTS 16
#define DNS_MAX_ADDRS 8 /* per host */

struct dns_mx {
	char host[256]; /* lower-case, no trailing dot */
	unsigned pref;
};

struct dns_host {
	char name[256];
	unsigned pref;
	bool implicit; /* the implicit MX (the domain itself) */
	size_t n_addrs;
	struct sockaddr_storage addrs[DNS_MAX_ADDRS]; /* port 0 */
	socklen_t addr_lens[DNS_MAX_ADDRS];
};

struct dns_mx_result {
	enum dns_status status;
	char why[512]; /* for logs and bounces: what failed, in words */
	size_t n_hosts;
	struct dns_host hosts[DNS_MAX_HOSTS];
};

typedef void (*dns_mx_cb)(void *ctx, const struct dns_mx_result *r);

/* Makes a resolver on base.  forwarder is "IP", "IP:PORT" or "[IPv6]:PORT"
 * (all queries go to that server) or ""/NULL for the system resolvers of
 * /etc/resolv.conf.  timeout_s bounds one whole dns_resolve_mx.  Returns
 * NULL with err on failure. */
struct dns_resolver *dns_resolver_new(struct event_base *base, const char *forwarder,
				      unsigned timeout_s, char *err, size_t errsz);
/* Who answers this resolver's questions, for failure texts ("the DNS
 * resolver NAME says ..."): the forwarder as configured ("127.0.0.1:5353"),
 * or the nameservers of /etc/resolv.conf ("10.0.0.1 or 10.0.0.2 (from
 * /etc/resolv.conf)").  Owned by the resolver. */
#define DNS_RESOLVER_NAME_MAX 200
const char *dns_resolver_name(const struct dns_resolver *r);

/* Cancels every pending query (their callbacks are not called) and frees
 * the resolver.  Accepts NULL. */
void dns_resolver_free(struct dns_resolver **r);

/* Starts the MX resolution of domain (ASCII or A-label form).  Returns a
 * handle (for dns_query_cancel) or NULL if the query could not even be
 * started (then cb is not called; err says why). */
struct dns_query *dns_resolve_mx(struct dns_resolver *r, const char *domain, dns_mx_cb cb,
				 void *ctx, char *err, size_t errsz);
/* Resolves one host's AAAA and A records, without any MX lookup (the
 * relay host, outbound.relay): the result has that one host, or
 * DNS_NOHOST / DNS_TEMPFAIL as for the hosts of an MX lookup. */
struct dns_query *dns_resolve_host(struct dns_resolver *r, const char *host, dns_mx_cb cb,
				   void *ctx, char *err, size_t errsz);
/* ------------------------------------------- single lookups (TXT, ...) */

/* Record types dns_lookup asks for. */
enum dns_rrtype {
	DNS_RR_A = 1,
	DNS_RR_PTR = 12,
	DNS_RR_MX = 15,
	DNS_RR_TXT = 16,
	DNS_RR_AAAA = 28,
};

#define DNS_MAX_RRS 64       /* records kept per answer (the rest: n_dropped) */
#define DNS_RR_DATA_MAX 65535 /* the RDATA maximum: no TXT record is cut */

/* One record, decoded: A 4 bytes, AAAA 16 bytes, TXT its strings
 * concatenated (RFC 7208 3.3), MX the exchange's name and PTR the target
 * name as lower-case text without the trailing dot ("" for the root). */
struct dns_rr {
	unsigned char *data; /* NUL-terminated for convenience */
	size_t len;
};

struct dns_rr_result {
	/* DNS_OK (n may be 0: the name exists without that type),
	 * DNS_NXDOMAIN or DNS_TEMPFAIL. */
	enum dns_status status;
	char why[256];
	size_t n;
	struct dns_rr rr[DNS_MAX_RRS];
	size_t n_dropped; /* records that did not fit or did not parse */
};

typedef void (*dns_rr_cb)(void *ctx, const struct dns_rr_result *r);

/* Starts one lookup of type for name (no CNAME games beyond what the
 * resolver does); cb gets the answer, valid during the call only.  The
 * resolver's timeout applies.  Returns a handle (dns_query_cancel) or
 * NULL with err. */
struct dns_query *dns_lookup(struct dns_resolver *r, enum dns_rrtype type, const char *name,
			     dns_rr_cb cb, void *ctx, char *err, size_t errsz);

/* Cancels a pending query: its callback will not be called.  Accepts
 * NULL; sets *q to NULL. */
void dns_query_cancel(struct dns_query **q);

/* ------------------------------------------------ pure parts (tested) */

/* Parses the RDATA of one MX record (preference, then an uncompressed
 * domain name in wire format) into out.  Returns 0 or -1 (malformed). */
int dns_parse_mx_rdata(const unsigned char *p, size_t n, struct dns_mx *out);

/* Sorts mx[0..n) by preference; records of equal preference are shuffled
 * with rnd (returns a value in 0..bound-1; NULL: no shuffling).  Removes
 * duplicates of the same host (keeping the lowest preference). Returns the
 * new count. */
size_t dns_mx_sort(struct dns_mx *mx, size_t n, uint32_t (*rnd)(uint32_t bound));

/* Concatenates the character-strings of one TXT record's RDATA into out
 * (outsz bytes; NUL-terminated) and sets *outlen.  Returns 0, or -1 when
 * the RDATA is malformed or out is too small. */
int dns_parse_txt_rdata(const unsigned char *p, size_t n, char *out, size_t outsz, size_t *outlen);
/* Parses the RDATA of a PTR record (an uncompressed domain name) into
 * out (lower-case, no trailing dot).  Unlike an MX exchange above, which
 * must be a host name, labels may hold any visible ASCII but '.' and '\\'
 * (SPF targets like "foo:bar/baz.example").  Returns 0 or -1. */
int dns_parse_ptr_rdata(const unsigned char *p, size_t n, char out[256]);

/* True if the MX set is a Null MX (RFC 7505: one record, exchange "."). */
bool dns_mx_is_null(const struct dns_mx *mx, size_t n);

/* Classifies one answer as libunbound reports it: rcode, whether any data
 * came, whether the name does not exist, and whether the query failed
 * outright (err: libunbound error, timeout).  DNS_OK means "answered, look
 * at the data (which may be empty: the name exists without that type)". */
enum dns_status dns_classify(int failed, int rcode, bool havedata, bool nxdomain);

/* The resolver name (dns_resolver_name) for the system resolvers, from
 * the text of a resolv.conf: its first three "nameserver ADDRESS" lines,
 * " or "-separated, then " (from /etc/resolv.conf)"; a text without any
 * says that libunbound resolves recursively itself.  out is always
 * NUL-terminated (truncated to outsz). */
void dns_resolvconf_name(const char *text, size_t len, char *out, size_t outsz);

/* True if domain (any case, trailing dot or not) is at or under a name
 * that libunbound answers itself with NXDOMAIN, without asking a server:
 * localhost, invalid, onion, home.arpa, resolver.arpa, service.arpa and,
 * unless test_asked (a forwarder is configured: then the forwarder is
 * asked about test.), test. */
bool dns_special_use(const char *domain, bool test_asked);

/* A short text for a status, for logs. */
const char *dns_status_name(enum dns_status s);

#endif
