/*
 * spf.h - SPF (RFC 7208): check_host() as a restartable state machine.
 *
 * The evaluator does no I/O.  The caller creates a check, then loops:
 *
 *     struct spf_query q;
 *     while (spf_step(c, &q) == SPF_STEP_QUERY) {
 *             ... resolve q.type / q.name, possibly asynchronously ...
 *             spf_answer(c, rcode, records, n);
 *     }
 *     result = spf_result(c);
 *
 * so an event loop can run the DNS queries without blocking, and tests can
 * answer from an in-memory zone.  Every DNS limit of RFC 7208 4.6.4 is
 * enforced here (10 DNS-querying terms, 2 void lookups, 10 MX names, 10
 * PTR names), so at most SPF_MAX_QUERIES queries are ever asked; the
 * overall time limit (20 s or more, 4.6.4) is the caller's: a query that
 * times out is answered with SPF_DNS_TEMPFAIL.
 *
 * Record text, DNS answers and the identities are untrusted and bounded:
 * SPF_RECORD_MAX bytes per record, SPF_MAX_TERMS terms, SPF_EXPAND_MAX
 * bytes of macro expansion, 253 bytes per domain (truncated from the left
 * as RFC 7208 7.3 says).
 */
#ifndef TERN_SPF_H
#define TERN_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SPF_RECORD_MAX 4096   /* one SPF record (its TXT strings joined) */
#define SPF_MAX_TERMS 128     /* terms in one record */
#define SPF_EXPAND_MAX 4096   /* one macro expansion, before truncation */
#define SPF_EXPLAIN_MAX 512   /* the explanation string (cut there) */
#define SPF_DOMAIN_MAX 253    /* a domain name, presentation form */
#define SPF_DNS_TERM_LIMIT 10 /* RFC 7208 4.6.4 */
#define SPF_VOID_LIMIT 2      /* RFC 7208 4.6.4, the recommended default */
#define SPF_MX_LIMIT 10       /* MX names per "mx" mechanism */
#define SPF_PTR_LIMIT 10      /* PTR names looked at per "ptr" / %{p} */
#define SPF_MAX_QUERIES 256   /* defensive bound; the limits keep it far */

enum spf_result {
	SPF_NONE = 0,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* Which identity is checked (RFC 7208 2.3, 2.4). */
enum spf_identity {
	SPF_ID_MAILFROM = 0, /* the MAIL FROM address (postmaster@HELO if empty) */
	SPF_ID_HELO,         /* the HELO/EHLO name, as postmaster@HELO */
};

/* The client address; IPv4-mapped IPv6 addresses are taken as IPv4. */
struct spf_ip {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

/* Parses "192.0.2.1" or "2001:db8::1" (or ::ffff:192.0.2.1, which becomes
 * IPv4).  Returns 0, or -1 when text is not an address. */
int spf_ip_parse(const char *text, struct spf_ip *out);

struct spf_request {
	struct spf_ip ip;
	const char *helo;      /* the HELO/EHLO argument; NULL = "" */
	const char *mail_from; /* the reverse-path address, "" or NULL if null */
	enum spf_identity identity;
	const char *receiver; /* %{r}: our host name; NULL = "unknown" */
	time_t now;           /* %{t}: 0 = time(NULL) when the check is made */
};

enum spf_qtype {
	SPF_Q_TXT = 0,
	SPF_Q_A,
	SPF_Q_AAAA,
	SPF_Q_MX,
	SPF_Q_PTR,
};

struct spf_query {
	enum spf_qtype type;
	char name[SPF_DOMAIN_MAX + 1]; /* no trailing dot */
};

/* How a query ended. */
enum spf_dns {
	SPF_DNS_OK = 0,   /* RCODE 0; zero records = "no data" */
	SPF_DNS_NXDOMAIN, /* RCODE 3 */
	SPF_DNS_TEMPFAIL, /* any other RCODE, a timeout, no answer */
};

/* One record of an answer.  TXT: the record's strings concatenated (RFC
 * 7208 3.3); A: 4 bytes; AAAA: 16 bytes; MX: the exchange's name, PTR:
 * the target name, as text (a trailing dot is allowed).  Records of the
 * wrong size for A/AAAA are ignored. */
struct spf_rr {
	const void *data;
	size_t len;
};

enum spf_step {
	SPF_STEP_DONE = 0, /* spf_result() has the result */
	SPF_STEP_QUERY,    /* answer *q with spf_answer(), then step again */
};

struct spf_check;

/* Starts a check of req (the strings are copied).  For SPF_ID_MAILFROM
 * with an empty mail_from, and for SPF_ID_HELO, the sender is
 * postmaster@HELO (2.4).  A sender domain that is not a valid multi-label
 * domain name (an address literal, say) gives SPF_NONE without a query
 * (4.3).  Never fails (out of memory is fatal); free with spf_check_free. */
struct spf_check *spf_check_new(const struct spf_request *req);
void spf_check_free(struct spf_check **c);

/* Advances the check: SPF_STEP_DONE, or SPF_STEP_QUERY with the next
 * question in *q.  Stepping again without an answer asks the same
 * question again. */
enum spf_step spf_step(struct spf_check *c, struct spf_query *q);
/* Answers the question of the last SPF_STEP_QUERY (ignored if none is
 * pending).  rr[0..n) are copied as needed; they may be freed after the
 * call.  rr may be NULL when n is 0. */
void spf_answer(struct spf_check *c, enum spf_dns status, const struct spf_rr *rr, size_t n);

/* After SPF_STEP_DONE: the result, a reason in plain words (for logs and
 * the Received-SPF/Authentication-Results comment), and for a "fail"
 * produced by a record with a usable exp= modifier its explanation (US-
 * ASCII, at most SPF_EXPLAIN_MAX bytes), else "".  The strings belong to
 * c. */
enum spf_result spf_result(const struct spf_check *c);
const char *spf_reason(const struct spf_check *c);
const char *spf_explanation(const struct spf_check *c);
/* The domain that was checked first (the sender's domain or HELO), "". */
const char *spf_domain(const struct spf_check *c);
/* The SPF record of that first domain as its TXT answer gave it (the
 * strings joined; not NUL-terminated, *len bytes), or NULL when it had
 * none or not exactly one.  It belongs to c. */
const char *spf_record(const struct spf_check *c, size_t *len);
/* How many questions the check asked so far. */
size_t spf_queries(const struct spf_check *c);

/* "none", "neutral", "pass", ... (the RFC 7208 2.6 / RFC 8601 names). */
const char *spf_result_name(enum spf_result r);

/* ------------------------------------------- pure parts (tests, fuzzing) */

/* Checks the syntax of one record txt[0..n) as check_host() would before
 * evaluating it (4.6): returns 0 if it is a valid "v=spf1" record, -1
 * with a reason in why (may be NULL) otherwise. */
int spf_record_check(const char *txt, size_t n, char *why, size_t whysz);

/* Expands the macro-string s[0..n) (RFC 7208 7) for sender, domain, ip and
 * helo, without DNS: %{p} expands to "unknown".  explain: the exp text
 * context (c, r, t allowed, spaces allowed); domain: truncate the result
 * to 253 bytes as 7.3 says.  Returns the length written to out (NUL-
 * terminated), or -1 (syntax error, too long, or outsz too small). */
int spf_macro_expand(const char *s, size_t n, const char *sender, const char *domain,
		     const struct spf_ip *ip, const char *helo, bool explain, bool as_domain,
		     char *out, size_t outsz);

#endif
