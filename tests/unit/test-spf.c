/*
 * test-spf.c - unit tests for src/mailauth/spf.c (RFC 7208): record
 * syntax, macro expansion (the 7.4 examples exactly), every mechanism and
 * modifier, the 4.6.4 limits, include/redirect semantics, exp, HELO and
 * the postmaster@HELO fallback.  DNS is an in-memory zone answering the
 * questions of the state machine.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "spf.h"
#include "test.h"

/* ----------------------------------------------------------- the zone */

/* One record: type and data as text (TXT text, an address, a name).  The
 * data "TEMPFAIL" makes every query of that name and type fail
 * temporarily. */
struct zrec {
	const char *name;
	enum spf_qtype type;
	const char *data;
};

struct run {
	enum spf_result result;
	char reason[320];
	char exp[SPF_EXPLAIN_MAX + 1];
	size_t n_queries;
	char log[64][300]; /* "TXT name" ... in order */
};

static const char *qtype_name(enum spf_qtype t)
{
	static const char *names[] = {"TXT", "A", "AAAA", "MX", "PTR"};
	return names[t];
}

static void answer(const struct zrec *zone, struct spf_check *c, const struct spf_query *q)
{
	struct spf_rr rr[32];
	unsigned char bin[32][16];
	size_t n = 0;
	bool exists = false, temp = false;
	for (const struct zrec *z = zone; z->name != NULL; z++) {
		if (strcasecmp(z->name, q->name) != 0)
			continue;
		exists = true;
		if (z->type != q->type)
			continue;
		if (strcmp(z->data, "TEMPFAIL") == 0) {
			temp = true;
			continue;
		}
		if (n == 32)
			abort();
		if (z->type == SPF_Q_A || z->type == SPF_Q_AAAA) {
			int fam = z->type == SPF_Q_A ? AF_INET : AF_INET6;
			if (inet_pton(fam, z->data, bin[n]) != 1)
				abort();
			rr[n].data = bin[n];
			rr[n].len = z->type == SPF_Q_A ? 4 : 16;
		} else {
			rr[n].data = z->data;
			rr[n].len = strlen(z->data);
		}
		n++;
	}
	if (temp)
		spf_answer(c, SPF_DNS_TEMPFAIL, NULL, 0);
	else if (!exists)
		spf_answer(c, SPF_DNS_NXDOMAIN, NULL, 0);
	else
		spf_answer(c, SPF_DNS_OK, rr, n);
}

static void check_full(const struct zrec *zone, const char *ip, const char *helo, const char *from,
		       enum spf_identity id, struct run *out)
{
	memset(out, 0, sizeof *out);
	struct spf_request req = {0};
	if (spf_ip_parse(ip, &req.ip) != 0)
		abort();
	req.helo = helo;
	req.mail_from = from;
	req.identity = id;
	req.receiver = "mx.receiver.example";
	req.now = 1400000000;
	struct spf_check *c = spf_check_new(&req);
	struct spf_query q;
	size_t steps = 0;
	while (spf_step(c, &q) == SPF_STEP_QUERY) {
		if (++steps > 1000)
			abort();
		if (out->n_queries < 64)
			snprintf(out->log[out->n_queries], sizeof out->log[0], "%s %s",
				 qtype_name(q.type), q.name);
		out->n_queries++;
		/* Asking again without an answer repeats the question. */
		struct spf_query q2;
		if (spf_step(c, &q2) != SPF_STEP_QUERY || q2.type != q.type ||
		    strcmp(q2.name, q.name) != 0)
			abort();
		answer(zone, c, &q);
	}
	out->result = spf_result(c);
	snprintf(out->reason, sizeof out->reason, "%s", spf_reason(c));
	snprintf(out->exp, sizeof out->exp, "%s", spf_explanation(c));
	if (spf_queries(c) != out->n_queries)
		abort();
	spf_check_free(&c);
	if (c != NULL)
		abort();
}

static enum spf_result check(const struct zrec *zone, const char *ip, const char *from)
{
	struct run r;
	check_full(zone, ip, "helo.example.org", from, SPF_ID_MAILFROM, &r);
	return r.result;
}

#define TXT(n, t)                                                                                  \
	{                                                                                          \
		n, SPF_Q_TXT, t                                                                    \
	}
#define A(n, t)                                                                                    \
	{                                                                                          \
		n, SPF_Q_A, t                                                                      \
	}
#define AAAA(n, t)                                                                                 \
	{                                                                                          \
		n, SPF_Q_AAAA, t                                                                   \
	}
#define MX(n, t)                                                                                   \
	{                                                                                          \
		n, SPF_Q_MX, t                                                                     \
	}
#define PTR(n, t)                                                                                  \
	{                                                                                          \
		n, SPF_Q_PTR, t                                                                    \
	}
#define END                                                                                        \
	{                                                                                          \
		NULL, SPF_Q_TXT, NULL                                                              \
	}

/* ------------------------------------------------------------ syntax */

static int rec(const char *s)
{
	return spf_record_check(s, strlen(s), NULL, 0);
}

TEST(spf_record_syntax)
{
	CHECK_INT(rec("v=spf1"), 0);
	CHECK_INT(rec("v=spf1 "), 0);
	CHECK_INT(rec("V=SPF1 -ALL"), 0);
	CHECK_INT(rec("v=spf1   a  mx  -all  "), 0);
	CHECK_INT(rec("v=spf10 -all"), -1);
	CHECK_INT(rec("v=spf1-all"), -1);
	CHECK_INT(rec("spf1 -all"), -1);
	CHECK_INT(rec("v=spf1 a:example.com/24//64 mx/24 mx//0 a//128 ptr ptr:x.example.org"), 0);
	CHECK_INT(rec("v=spf1 ip4:192.0.2.0/24 ip4:10.0.0.1 ip6:2001:db8::/32 ip6:::1"), 0);
	CHECK_INT(rec("v=spf1 ip6:::ffff:1.2.3.4/128 ip4:0.0.0.0/0 ip6:::/0"), 0);
	CHECK_INT(rec("v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} ?all"), 0);
	CHECK_INT(rec("v=spf1 redirect=_spf.example.com exp=explain.%{d}"), 0);
	CHECK_INT(rec("v=spf1 foo=bar x-y.z_w=%{d}% unknown="), -1); /* "%" alone */
	CHECK_INT(rec("v=spf1 foo=bar x-y.z_w=%{d}%% unknown="), 0);
	CHECK_INT(rec("v=spf1 a:example.com."), 0);
	CHECK_INT(rec("v=spf1 a:%{d}"), 0);
	CHECK_INT(rec("v=spf1 a:foo-%%"), 0);
	CHECK_INT(rec("v=spf1 a:1-2.3-4"), 0); /* a toplabel with '-' may be digits */
	/* Syntax errors anywhere are permerror, even after "all". */
	CHECK_INT(rec("v=spf1 -all foo"), -1);
	CHECK_INT(rec("v=spf1 -all include"), -1);
	CHECK_INT(rec("v=spf1 include:"), -1);
	CHECK_INT(rec("v=spf1 include:foo"), -1);   /* no "." toplabel */
	CHECK_INT(rec("v=spf1 a:example.123"), -1); /* all-digit toplabel */
	CHECK_INT(rec("v=spf1 a:example.com-"), -1);
	CHECK_INT(rec("v=spf1 a:example.com/33"), -1);
	CHECK_INT(rec("v=spf1 a:example.com//129"), -1);
	CHECK_INT(rec("v=spf1 a/024"), -1);
	CHECK_INT(rec("v=spf1 a:example.com/"), -1);
	CHECK_INT(rec("v=spf1 ip4:192.0.2"), -1);
	CHECK_INT(rec("v=spf1 ip4:192.0.2.256"), -1);
	CHECK_INT(rec("v=spf1 ip4:192.0.2.01"), -1);
	CHECK_INT(rec("v=spf1 ip4:192.0.2.1//64"), -1);
	CHECK_INT(rec("v=spf1 ip4:192.0.2.1/33"), -1);
	CHECK_INT(rec("v=spf1 ip6:2001:db8::/129"), -1);
	CHECK_INT(rec("v=spf1 ip6:192.0.2.1"), -1);
	CHECK_INT(rec("v=spf1 ip4"), -1);
	CHECK_INT(rec("v=spf1 all:x.com"), -1);
	CHECK_INT(rec("v=spf1 exists"), -1);
	CHECK_INT(rec("v=spf1 *all"), -1);
	CHECK_INT(rec("v=spf1 a:%(ir).sbl.example.org"), -1);
	CHECK_INT(rec("v=spf1 a:%{x}.example.org"), -1);
	CHECK_INT(rec("v=spf1 a:%{d0}.example.org"), -1);
	CHECK_INT(rec("v=spf1 a:%{c}.example.org"), -1); /* c, r, t: exp only */
	CHECK_INT(rec("v=spf1 a:%{d"), -1);
	CHECK_INT(rec("v=spf1 redirect=a.example.com redirect=b.example.com"), -1);
	CHECK_INT(rec("v=spf1 exp=a.example.com exp=b.example.com"), -1);
	CHECK_INT(rec("v=spf1\t-all"), -1);
	/* Cases from the usual SPF test suites. */
	CHECK_INT(rec("v=spf1 a:museum"), -1);
	CHECK_INT(rec("v=spf1 a:museum."), -1);
	CHECK_INT(rec("v=spf1 include:e.example.com/24"), -1);
	CHECK_INT(rec("v=spf1 ptr:example.com/24"), -1);
	CHECK_INT(rec("v=spf1 exists:mail.example.com/24"), -1);
	CHECK_INT(rec("v=spf1 -all."), -1);
	CHECK_INT(rec("v=spf1 all/8"), -1);
	CHECK_INT(rec("v=spf1 -all exp=%{r}.example.com"), -1); /* r: exp text only */
	CHECK_INT(rec("v=spf1 -all exp="), -1);
	CHECK_INT(rec("v=spf1 -all exp=-all"), -1);
	CHECK_INT(rec("v=spf1 -all moo.cow-far_out=man:dog/cat"), 0);
	CHECK_INT(rec("v=spf1 default=-"), 0); /* an obsolete modifier: unknown */
	CHECK_INT(rec("v=spf1 ip4:1.2.3.4:8080"), -1);
	CHECK_INT(rec("v=spf1 ip4:1.2.3.4/032"), -1);
	CHECK_INT(rec("v=spf1 a:foo:bar/baz.example.com"), 0);
	CHECK_INT(rec("v=spf1 a:example.com//64/24"), -1);
	CHECK_INT(rec("v=spf1 mx:example.com//"), -1);
	CHECK_INT(rec("v=spf1 a:111.222.33.44"), -1);
	CHECK_INT(rec("v=spf1 a:foo.example.-com"), -1);
	CHECK_INT(rec("v=spf1 %{d}"), -1); /* a macro is no mechanism */
	CHECK_INT(rec(" v=spf1 -all"), -1);
	char why[160];
	CHECK_INT(spf_record_check("v=spf1 a:foo", 12, why, sizeof why), -1);
	CHECK_STR(why, "syntax error in 'a:foo'");
	CHECK_INT(spf_record_check("v=spf1 foo:x.com", 16, why, sizeof why), -1);
	CHECK_STR(why, "unknown mechanism 'foo:x.com'");
	CHECK_INT(rec("v=spf1 a:caf\xc3\xa9.example"), -1);
	/* Bounds: record length and term count. */
	char big[SPF_RECORD_MAX + 8];
	memset(big, 'a', sizeof big);
	memcpy(big, "v=spf1 ", 7);
	for (size_t i = 8; i < sizeof big; i += 2)
		big[i] = ' ';
	CHECK_INT(spf_record_check(big, SPF_RECORD_MAX + 1, NULL, 0), -1);
	char terms[2 * SPF_MAX_TERMS + 16];
	size_t n = 6;
	memcpy(terms, "v=spf1", 6);
	for (int i = 0; i < SPF_MAX_TERMS; i++) {
		terms[n++] = ' ';
		terms[n++] = 'a';
	}
	CHECK_INT(spf_record_check(terms, n, NULL, 0), 0);
	terms[n++] = ' ';
	terms[n++] = 'a';
	CHECK_INT(spf_record_check(terms, n, why, sizeof why), -1);
	CHECK_STR(why, "more than 128 terms");
}

/* ------------------------------------------------------------ macros */

static const char *mexp(const char *s, const char *ip, bool explain)
{
	static char out[SPF_EXPAND_MAX + 1];
	struct spf_ip a;
	if (spf_ip_parse(ip, &a) != 0)
		abort();
	if (spf_macro_expand(s, strlen(s), "strong-bad@email.example.com", "email.example.com", &a,
			     "mx.example.org", explain, !explain, out, sizeof out) < 0)
		return "(error)";
	return out;
}

TEST(spf_macro_rfc7208_7_4)
{
	const char *v4 = "192.0.2.3";
	CHECK_STR(mexp("%{s}", v4, false), "strong-bad@email.example.com");
	CHECK_STR(mexp("%{o}", v4, false), "email.example.com");
	CHECK_STR(mexp("%{d}", v4, false), "email.example.com");
	CHECK_STR(mexp("%{d4}", v4, false), "email.example.com");
	CHECK_STR(mexp("%{d3}", v4, false), "email.example.com");
	CHECK_STR(mexp("%{d2}", v4, false), "example.com");
	CHECK_STR(mexp("%{d1}", v4, false), "com");
	CHECK_STR(mexp("%{dr}", v4, false), "com.example.email");
	CHECK_STR(mexp("%{d2r}", v4, false), "example.email");
	CHECK_STR(mexp("%{l}", v4, false), "strong-bad");
	CHECK_STR(mexp("%{l-}", v4, false), "strong.bad");
	CHECK_STR(mexp("%{lr}", v4, false), "strong-bad");
	CHECK_STR(mexp("%{lr-}", v4, false), "bad.strong");
	CHECK_STR(mexp("%{l1r-}", v4, false), "strong");
	CHECK_STR(mexp("%{ir}.%{v}._spf.%{d2}", v4, false), "3.2.0.192.in-addr._spf.example.com");
	CHECK_STR(mexp("%{lr-}.lp._spf.%{d2}", v4, false), "bad.strong.lp._spf.example.com");
	CHECK_STR(mexp("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", v4, false),
		  "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
	CHECK_STR(mexp("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", v4, false),
		  "3.2.0.192.in-addr.strong.lp._spf.example.com");
	CHECK_STR(mexp("%{d2}.trusted-domains.example.net", v4, false),
		  "example.com.trusted-domains.example.net");
	CHECK_STR(mexp("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01", false),
		  "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf."
		  "example.com");
}

TEST(spf_macro_details)
{
	const char *v4 = "192.0.2.3";
	CHECK_STR(mexp("%{i}", v4, false), "192.0.2.3");
	CHECK_STR(mexp("%{i}", "2001:db8::cb01", false),
		  "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1");
	CHECK_STR(mexp("%{h}", v4, false), "mx.example.org");
	CHECK_STR(mexp("%{p}", v4, false), "unknown"); /* no DNS here */
	CHECK_STR(mexp("%{v}", "2001:db8::1", false), "ip6");
	/* Upper case: URL-escaped (RFC 3986 unreserved kept). */
	CHECK_STR(mexp("%{S}", v4, true), "strong-bad%40email.example.com");
	CHECK_STR(mexp("%{L}", v4, true), "strong-bad");
	CHECK_STR(mexp("%{IR}", v4, true), "3.2.0.192");
	/* Literals, %% %_ %-, several delimiters, empty parts kept. */
	CHECK_STR(mexp("a%%b%_c%-d", v4, true), "a%b c%20d");
	CHECK_STR(mexp("%{l-+}", v4, false), "strong.bad");
	CHECK_STR(mexp("%{d127}", v4, false), "email.example.com");
	CHECK_STR(mexp("%{d99999}", v4, false), "email.example.com");
	/* explain-only letters, and spaces only in explain text. */
	CHECK_STR(mexp("%{c} %{r} %{t}", v4, true), "192.0.2.3 unknown 0");
	CHECK_STR(mexp("%{c}", "2001:db8::cb01", true), "2001:db8::cb01");
	CHECK_STR(mexp("%{c}", v4, false), "(error)");
	CHECK_STR(mexp("a b", v4, false), "(error)");
	CHECK_STR(mexp("%", v4, false), "(error)");
	CHECK_STR(mexp("%{d0}", v4, false), "(error)");
	CHECK_STR(mexp("%{dx}", v4, false), "(error)");
	CHECK_STR(mexp("%{q}", v4, false), "(error)");
	CHECK_STR(mexp("\x7f", v4, false), "(error)");
	/* A trailing dot is dropped from domain names. */
	CHECK_STR(mexp("%{d}.", v4, false), "email.example.com");
}

TEST(spf_macro_truncation)
{
	/* 7.3: over 253 bytes, labels are removed from the left. */
	struct spf_ip ip;
	CHECK_INT(spf_ip_parse("192.0.2.3", &ip), 0);
	char local[200];
	memset(local, 'x', sizeof local);
	for (size_t i = 9; i < sizeof local; i += 10)
		local[i] = '.';
	local[sizeof local - 1] = '\0'; /* "xxxxxxxxx." x19 + "xxxxxxxxx" */
	char sender[400];
	snprintf(sender, sizeof sender, "%s@example.com", local);
	char out[SPF_EXPAND_MAX + 1];
	const char *spec = "%{l}.%{l}.example.com";
	int n = spf_macro_expand(spec, strlen(spec), sender, "example.com", &ip, "h.example", false,
				 true, out, sizeof out);
	CHECK(n > 0 && n <= 253);
	CHECK_INT(strlen(out), (size_t)n);
	/* The full name is 199+1+199+12 = 411; dropping 16 labels of 10
	 * bytes leaves 251. */
	CHECK_INT(n, 251);
	CHECK(strncmp(out, "xxxxxxxxx.", 10) == 0);
	CHECK(strcmp(out + n - 12, ".example.com") == 0);
	/* A single label over 253 bytes cannot be cut: an error. */
	char one[300];
	memset(one, 'y', 280);
	one[280] = '\0';
	snprintf(sender, sizeof sender, "%s@example.com", one);
	CHECK_INT(spf_macro_expand("%{l}", 4, sender, "example.com", &ip, "h.example", false, true,
				   out, sizeof out),
		  -1);
	/* Not a domain: no truncation, and too small a buffer is an error. */
	CHECK_INT(spf_macro_expand("%{l}", 4, sender, "example.com", &ip, "h.example", true, false,
				   out, sizeof out),
		  280);
	CHECK_INT(spf_macro_expand("%{l}", 4, sender, "example.com", &ip, "h.example", true, false,
				   out, 100),
		  -1);
	/* No local-part: postmaster (4.3). */
	CHECK_INT(spf_macro_expand("%{l}/%{s}", 9, "example.com", "example.com", &ip, "h", true,
				   false, out, sizeof out),
		  33);
	CHECK_STR(out, "postmaster/postmaster@example.com");
}

/* -------------------------------------------------------- mechanisms */

TEST(spf_results_and_qualifiers)
{
	static const struct zrec z[] = {TXT("pass.example", "v=spf1 +all"),
					TXT("fail.example", "v=spf1 -all"),
					TXT("soft.example", "v=spf1 ~all"),
					TXT("neutral.example", "v=spf1 ?all"),
					TXT("default.example", "v=spf1 ip4:10.0.0.1"),
					TXT("bare.example", "v=spf1 all"),
					TXT("none.example", "hello world"),
					TXT("none.example", "v=spf10 -all"),
					TXT("upper.example", "V=SpF1 -ALL"),
					A("noTXT.example", "192.0.2.1"),
					TXT("temp.example", "TEMPFAIL"),
					TXT("two.example", "v=spf1 -all"),
					TXT("two.example", "v=spf1 +all"),
					TXT("syntax.example", "v=spf1 a:foo -all"),
					TXT("after.example", "v=spf1 +all bogus"),
					TXT("nospace.example", "v=spf1-all"),
					TXT("lead.example", " v=spf1 -all"),
					TXT("empty.example", "v=spf1"),
					TXT("emptylabel.example", "v=spf1 a:foo..example.com -all"),
					TXT("mixed.example", "google-site-verification=abc"),
					TXT("mixed.example", "v=spf1 -all"),
					TXT("mixed.example", "v=spf10 +all"),
					END};
	const char *ip = "192.0.2.1";
	CHECK_INT(check(z, ip, "u@pass.example"), SPF_PASS);
	CHECK_INT(check(z, ip, "u@fail.example"), SPF_FAIL);
	CHECK_INT(check(z, ip, "u@soft.example"), SPF_SOFTFAIL);
	CHECK_INT(check(z, ip, "u@neutral.example"), SPF_NEUTRAL);
	CHECK_INT(check(z, ip, "u@default.example"), SPF_NEUTRAL);
	CHECK_INT(check(z, ip, "u@bare.example"), SPF_PASS);
	CHECK_INT(check(z, ip, "u@none.example"), SPF_NONE);
	CHECK_INT(check(z, ip, "u@upper.example"), SPF_FAIL);
	CHECK_INT(check(z, ip, "u@notxt.example"), SPF_NONE);
	CHECK_INT(check(z, ip, "u@nxdomain.example"), SPF_NONE);
	CHECK_INT(check(z, ip, "u@temp.example"), SPF_TEMPERROR);
	CHECK_INT(check(z, ip, "u@two.example"), SPF_PERMERROR);
	CHECK_INT(check(z, ip, "u@syntax.example"), SPF_PERMERROR);
	CHECK_INT(check(z, ip, "u@after.example"), SPF_PERMERROR);
	CHECK_INT(check(z, ip, "u@nospace.example"), SPF_NONE);
	CHECK_INT(check(z, ip, "u@lead.example"), SPF_NONE);
	CHECK_INT(check(z, ip, "u@empty.example"), SPF_NEUTRAL);
	CHECK_INT(check(z, ip, "u@emptylabel.example"), SPF_PERMERROR);
	CHECK_INT(check(z, ip, "u@mixed.example"), SPF_FAIL); /* one SPF among others */
	/* Not a multi-label domain, or an address literal: none, no query. */
	struct run r;
	check_full(z, ip, "h.example", "u@localhost", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_NONE);
	CHECK_INT(r.n_queries, 0);
	check_full(z, ip, "h.example", "u@[192.0.2.1]", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_NONE);
	CHECK_INT(r.n_queries, 0);
	check_full(z, ip, "h.example", "u@bad..example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_NONE);
	/* A trailing dot on the domain is the same name. */
	CHECK_INT(check(z, ip, "u@fail.example."), SPF_FAIL);
	check_full(z, ip, "h.example", "u@fail.example", SPF_ID_MAILFROM, &r);
	CHECK_STR(r.reason, "fail.example: '-all' matched");
	CHECK_STR(r.log[0], "TXT fail.example");
	CHECK_STR(spf_result_name(SPF_PERMERROR), "permerror");
	CHECK_STR(spf_result_name(SPF_SOFTFAIL), "softfail");
}

TEST(spf_ip4_ip6)
{
	static const struct zrec z[] = {
	    TXT("v4.example", "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7 -all"),
	    TXT("v6.example", "v=spf1 ip6:2001:db8::/32 ip6:2001:db9::1 -all"),
	    TXT("zero.example", "v=spf1 ip4:0.0.0.0/0 -all"), END};
	CHECK_INT(check(z, "192.0.2.200", "u@v4.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.3.1", "u@v4.example"), SPF_FAIL);
	CHECK_INT(check(z, "198.51.100.7", "u@v4.example"), SPF_PASS);
	CHECK_INT(check(z, "198.51.100.8", "u@v4.example"), SPF_FAIL);
	/* IPv4-mapped IPv6 is IPv4. */
	CHECK_INT(check(z, "::ffff:192.0.2.9", "u@v4.example"), SPF_PASS);
	CHECK_INT(check(z, "2001:db8::1", "u@v4.example"), SPF_FAIL);
	CHECK_INT(check(z, "2001:db8:ffff::1", "u@v6.example"), SPF_PASS);
	CHECK_INT(check(z, "2001:db9::1", "u@v6.example"), SPF_PASS);
	CHECK_INT(check(z, "2001:db9::2", "u@v6.example"), SPF_FAIL);
	CHECK_INT(check(z, "192.0.2.1", "u@v6.example"), SPF_FAIL);
	CHECK_INT(check(z, "203.0.113.5", "u@zero.example"), SPF_PASS);
	CHECK_INT(check(z, "2001:db8::1", "u@zero.example"), SPF_FAIL);
}

TEST(spf_a_mechanism)
{
	static const struct zrec z[] = {
	    TXT("a.example", "v=spf1 a -all"),
	    A("a.example", "192.0.2.10"),
	    A("a.example", "192.0.2.11"),
	    AAAA("a.example", "2001:db8::10"),
	    TXT("cidr.example", "v=spf1 a:host.cidr.example/24//64 -all"),
	    A("host.cidr.example", "198.51.100.1"),
	    AAAA("host.cidr.example", "2001:db8:1:2::1"),
	    TXT("upper.example", "v=spf1 A:HOST.CIDR.EXAMPLE -all"),
	    TXT("tmp.example", "v=spf1 a:t.tmp.example -all"),
	    A("t.tmp.example", "TEMPFAIL"),
	    END};
	CHECK_INT(check(z, "192.0.2.11", "u@a.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.12", "u@a.example"), SPF_FAIL);
	CHECK_INT(check(z, "2001:db8::10", "u@a.example"), SPF_PASS); /* AAAA for v6 */
	CHECK_INT(check(z, "2001:db8::11", "u@a.example"), SPF_FAIL);
	CHECK_INT(check(z, "198.51.100.200", "u@cidr.example"), SPF_PASS);
	CHECK_INT(check(z, "198.51.101.1", "u@cidr.example"), SPF_FAIL);
	CHECK_INT(check(z, "2001:db8:1:2:ffff::1", "u@cidr.example"), SPF_PASS);
	CHECK_INT(check(z, "2001:db8:1:3::1", "u@cidr.example"), SPF_FAIL);
	CHECK_INT(check(z, "198.51.100.1", "u@upper.example"), SPF_PASS);
	CHECK_INT(check(z, "198.51.100.1", "u@tmp.example"), SPF_TEMPERROR);
	struct run r;
	check_full(z, "2001:db8::10", "h.example", "u@a.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.n_queries, 2);
	CHECK_STR(r.log[1], "AAAA a.example");
}

TEST(spf_mx_mechanism)
{
	static const struct zrec z[] = {
	    TXT("mx.example", "v=spf1 mx -all"),
	    MX("mx.example", "mail1.mx.example"),
	    MX("mx.example", "mail2.mx.example."),
	    A("mail1.mx.example", "192.0.2.1"),
	    A("mail2.mx.example", "192.0.2.2"),
	    AAAA("mail2.mx.example", "2001:db8::2"),
	    TXT("cidr.example", "v=spf1 mx:mx.example/30 -all"),
	    TXT("nomx.example", "v=spf1 mx -all"),
	    A("nomx.example", "192.0.2.1"), /* no implicit MX (5.4) */
	    TXT("null.example", "v=spf1 mx -all"),
	    MX("null.example", "."),
	    TXT("many.example", "v=spf1 mx -all"),
	    MX("many.example", "m1.example"),
	    MX("many.example", "m2.example"),
	    MX("many.example", "m3.example"),
	    MX("many.example", "m4.example"),
	    MX("many.example", "m5.example"),
	    MX("many.example", "m6.example"),
	    MX("many.example", "m7.example"),
	    MX("many.example", "m8.example"),
	    MX("many.example", "m9.example"),
	    MX("many.example", "m10.example"),
	    A("m10.example", "192.0.2.50"),
	    TXT("toomany.example", "v=spf1 mx:many.example mx:more.example -all"),
	    MX("more.example", "m1.example"),
	    MX("more.example", "m2.example"),
	    MX("more.example", "m3.example"),
	    MX("more.example", "m4.example"),
	    MX("more.example", "m5.example"),
	    MX("more.example", "m6.example"),
	    MX("more.example", "m7.example"),
	    MX("more.example", "m8.example"),
	    MX("more.example", "m9.example"),
	    MX("more.example", "m10.example"),
	    MX("more.example", "m11.example"),
	    TXT("tmp.example", "v=spf1 mx -all"),
	    MX("tmp.example", "TEMPFAIL"),
	    TXT("tmph.example", "v=spf1 mx -all"),
	    MX("tmph.example", "h.tmph.example"),
	    A("h.tmph.example", "TEMPFAIL"),
	    END};
	CHECK_INT(check(z, "192.0.2.2", "u@mx.example"), SPF_PASS);
	CHECK_INT(check(z, "2001:db8::2", "u@mx.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.3", "u@mx.example"), SPF_FAIL);
	CHECK_INT(check(z, "192.0.2.3", "u@cidr.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.4", "u@cidr.example"), SPF_FAIL);
	CHECK_INT(check(z, "192.0.2.1", "u@nomx.example"), SPF_FAIL);
	CHECK_INT(check(z, "192.0.2.1", "u@null.example"), SPF_FAIL);
	/* Ten MX names are fine (the tenth matches); eleven are a permerror. */
	struct run r;
	check_full(z, "192.0.2.50", "h.example", "u@many.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_PASS);
	CHECK_INT(r.n_queries, 12); /* TXT, MX, 10 A */
	CHECK_INT(check(z, "192.0.2.51", "u@toomany.example"), SPF_PERMERROR);
	CHECK_INT(check(z, "192.0.2.50", "u@toomany.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.1", "u@tmp.example"), SPF_TEMPERROR);
	CHECK_INT(check(z, "192.0.2.1", "u@tmph.example"), SPF_TEMPERROR);
}

TEST(spf_ptr_mechanism)
{
	static const struct zrec z[] = {
	    TXT("ptr.example", "v=spf1 ptr -all"),
	    TXT("ptr2.example", "v=spf1 ptr:ptr.example -all"),
	    PTR("3.2.0.192.in-addr.arpa", "mx.ptr.example"),
	    PTR("3.2.0.192.in-addr.arpa", "other.example"), A("mx.ptr.example", "192.0.2.3"),
	    /* 192.0.2.4 claims a name whose address is not it: not validated */
	    PTR("4.2.0.192.in-addr.arpa", "mx.ptr.example"),
	    PTR("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
		"v6.ptr.example"),
	    AAAA("v6.ptr.example", "2001:db8::cb01"), PTR("5.2.0.192.in-addr.arpa", "TEMPFAIL"),
	    END};
	CHECK_INT(check(z, "192.0.2.3", "u@ptr.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.3", "u@ptr2.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.4", "u@ptr.example"), SPF_FAIL);
	CHECK_INT(check(z, "2001:db8::cb01", "u@ptr.example"), SPF_PASS);
	/* A PTR lookup error is no match, not temperror (5.5). */
	CHECK_INT(check(z, "192.0.2.5", "u@ptr.example"), SPF_FAIL);
	/* No PTR at all: no match. */
	CHECK_INT(check(z, "192.0.2.6", "u@ptr.example"), SPF_FAIL);
	/* Names outside the target are not even validated. */
	struct run r;
	check_full(z, "192.0.2.3", "h.example", "u@ptr.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.n_queries, 3);
	CHECK_STR(r.log[1], "PTR 3.2.0.192.in-addr.arpa");
	CHECK_STR(r.log[2], "A mx.ptr.example");
}

TEST(spf_ptr_limit)
{
	/* Only the first 10 PTR names are looked at (4.6.4). */
	static const struct zrec z[] = {TXT("p.example", "v=spf1 ptr -all"),
					PTR("9.2.0.192.in-addr.arpa", "h1.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h2.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h3.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h4.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h5.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h6.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h7.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h8.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h9.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h10.p.example"),
					PTR("9.2.0.192.in-addr.arpa", "h11.p.example"),
					A("h11.p.example", "192.0.2.9"),
					PTR("8.2.0.192.in-addr.arpa", "h1.p.example"),
					PTR("8.2.0.192.in-addr.arpa", "h10.p.example"),
					A("h10.p.example", "192.0.2.8"),
					END};
	struct run r;
	check_full(z, "192.0.2.9", "h.example", "u@p.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_INT(r.n_queries, 12); /* TXT, PTR, 10 A; h11 never asked */
	CHECK_INT(check(z, "192.0.2.8", "u@p.example"), SPF_PASS);
}

TEST(spf_exists_mechanism)
{
	static const struct zrec z[] = {
	    TXT("ex.example", "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all"),
	    A("3.2.0.192.someuser._spf.ex.example", "127.0.0.2"),
	    /* exists always asks for A, even for an IPv6 client */
	    TXT("ex6.example", "v=spf1 exists:%{v}.ok.ex6.example -all"),
	    A("ip6.ok.ex6.example", "127.0.0.1"), AAAA("in-addr.ok.ex6.example", "2001:db8::1"),
	    TXT("tmp.example", "v=spf1 exists:x.tmp.example -all"), A("x.tmp.example", "TEMPFAIL"),
	    END};
	CHECK_INT(check(z, "192.0.2.3", "someuser@ex.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.3", "some+user@ex.example"), SPF_FAIL);
	CHECK_INT(check(z, "192.0.2.4", "someuser@ex.example"), SPF_FAIL);
	CHECK_INT(check(z, "2001:db8::1", "u@ex6.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.1", "u@ex6.example"), SPF_FAIL); /* only an AAAA */
	CHECK_INT(check(z, "192.0.2.1", "u@tmp.example"), SPF_TEMPERROR);
	struct run r;
	check_full(z, "192.0.2.3", "h.example", "someuser@ex.example", SPF_ID_MAILFROM, &r);
	CHECK_STR(r.log[1], "A 3.2.0.192.someuser._spf.ex.example");
}

TEST(spf_target_with_spaces)
{
	/* "%_" is a space and "%%" a percent sign in a target name; such a
	 * name is looked up as it is (OpenSPF macro-mania-in-domain), not a
	 * malformed one. */
	static const struct zrec z[] = {
	    TXT("sp.example", "v=spf1 a:macro%%percent%_%_space%-url-space.example -all"),
	    A("macro%percent  space%20url-space.example", "192.0.2.1"), END};
	CHECK_INT(check(z, "192.0.2.1", "u@sp.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.2", "u@sp.example"), SPF_FAIL);
	struct run r;
	check_full(z, "192.0.2.1", "h.example", "u@sp.example", SPF_ID_MAILFROM, &r);
	CHECK_STR(r.log[1], "A macro%percent  space%20url-space.example");
}

TEST(spf_include)
{
	static const struct zrec z[] = {
	    TXT("inc.example", "v=spf1 include:pass.example include:fail.example ?all"),
	    TXT("pass.example", "v=spf1 ip4:192.0.2.1 -all"),
	    TXT("fail.example", "v=spf1 ip4:192.0.2.2 -all"),
	    TXT("neg.example", "v=spf1 -include:pass.example +all"),
	    TXT("incnone.example", "v=spf1 include:nothing.example -all"),
	    TXT("nothing.example", "not spf"),
	    TXT("incnx.example", "v=spf1 include:nx.example -all"),
	    TXT("inctemp.example", "v=spf1 include:temp.example -all"),
	    TXT("temp.example", "TEMPFAIL"),
	    TXT("incperm.example", "v=spf1 include:perm.example -all"),
	    TXT("perm.example", "v=spf1 bogus"),
	    TXT("incsoft.example", "v=spf1 include:soft.example -all"),
	    TXT("soft.example", "v=spf1 ~all"),
	    /* The included record sees its own <domain> as %{d}. */
	    TXT("incd.example", "v=spf1 include:d.example -all"),
	    TXT("d.example", "v=spf1 a:%{d} -all"), A("d.example", "192.0.2.77"),
	    TXT("inctmp2.example", "v=spf1 include:pass.example include:temp.example -all"), END};
	CHECK_INT(check(z, "192.0.2.1", "u@inc.example"), SPF_PASS);
	/* The inner fail is only "not match": the outer ?all decides. */
	CHECK_INT(check(z, "192.0.2.3", "u@inc.example"), SPF_NEUTRAL);
	CHECK_INT(check(z, "192.0.2.2", "u@inc.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.1", "u@neg.example"), SPF_FAIL);
	CHECK_INT(check(z, "192.0.2.9", "u@neg.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.1", "u@incnone.example"), SPF_PERMERROR);
	CHECK_INT(check(z, "192.0.2.1", "u@incnx.example"), SPF_PERMERROR);
	CHECK_INT(check(z, "192.0.2.1", "u@inctemp.example"), SPF_TEMPERROR);
	CHECK_INT(check(z, "192.0.2.1", "u@incperm.example"), SPF_PERMERROR);
	CHECK_INT(check(z, "192.0.2.1", "u@incsoft.example"), SPF_FAIL);
	CHECK_INT(check(z, "192.0.2.77", "u@incd.example"), SPF_PASS);
	/* A match before the failing include stops the evaluation. */
	CHECK_INT(check(z, "192.0.2.1", "u@inctmp2.example"), SPF_PASS);
	CHECK_INT(check(z, "192.0.2.9", "u@inctmp2.example"), SPF_TEMPERROR);
	struct run r;
	check_full(z, "192.0.2.1", "h.example", "u@incnone.example", SPF_ID_MAILFROM, &r);
	CHECK_STR(r.reason, "include:nothing.example has no SPF record");
}

TEST(spf_redirect)
{
	static const struct zrec z[] = {
	    TXT("la.example", "v=spf1 redirect=_spf.example"),
	    TXT("_spf.example", "v=spf1 ip4:192.0.2.0/24 -all"),
	    TXT("first.example", "v=spf1 ip4:198.51.100.1 redirect=_spf.example"),
	    TXT("withall.example", "v=spf1 redirect=_spf.example ?all"),
	    TXT("rnone.example", "v=spf1 redirect=nothing.example"),
	    TXT("rnx.example", "v=spf1 redirect=nx.example"),
	    TXT("rbad.example", "v=spf1 redirect=%{l}.example"),
	    TXT("rd.example", "v=spf1 redirect=_r.%{d}"),
	    TXT("_r.rd.example", "v=spf1 a:%{d} -all"),
	    A("_r.rd.example", "192.0.2.99"),
	    TXT("loop.example", "v=spf1 redirect=loop.example"),
	    END};
	CHECK_INT(check(z, "192.0.2.5", "u@la.example"), SPF_PASS);
	CHECK_INT(check(z, "203.0.113.5", "u@la.example"), SPF_FAIL);
	CHECK_INT(check(z, "198.51.100.1", "u@first.example"), SPF_PASS);
	CHECK_INT(check(z, "203.0.113.5", "u@first.example"), SPF_FAIL);
	/* Ignored when the record has "all" anywhere. */
	CHECK_INT(check(z, "203.0.113.5", "u@withall.example"), SPF_NEUTRAL);
	CHECK_INT(check(z, "192.0.2.5", "u@rnone.example"), SPF_PERMERROR);
	CHECK_INT(check(z, "192.0.2.5", "u@rnx.example"), SPF_PERMERROR);
	/* An empty label after expansion: a malformed target. */
	CHECK_INT(check(z, "192.0.2.5", ".u.@rbad.example"), SPF_PERMERROR);
	/* %{d} in the redirected record is the new <domain>. */
	CHECK_INT(check(z, "192.0.2.99", "u@rd.example"), SPF_PASS);
	struct run r;
	check_full(z, "192.0.2.5", "h.example", "u@loop.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_PERMERROR);
	CHECK_STR(r.reason, "more than 10 DNS-querying terms");
}

TEST(spf_lookup_limit)
{
	/* Ten DNS-querying terms are allowed; the eleventh is a permerror. */
	static const struct zrec z[] = {
	    TXT("ten.example",
		"v=spf1 a mx a a a a exists:x.ten.example a a include:i.example -all"),
	    TXT("eleven.example",
		"v=spf1 a a a a a a a a a include:i.example ip4:192.0.2.1 a -all"),
	    TXT("i.example", "v=spf1 ip4:192.0.2.1 -all"), A("ten.example", "198.51.100.1"),
	    MX("ten.example", "mx.ten.example"), A("mx.ten.example", "198.51.100.2"),
	    A("x.ten.example", "198.51.100.3"), A("eleven.example", "198.51.100.1"),
	    /* ip4/ip6/all and exp do not count */
	    TXT("free.example",
		"v=spf1 ip4:10.0.0.1 ip4:10.0.0.2 ip4:10.0.0.3 ip4:10.0.0.4 ip4:10.0.0.5 "
		"ip4:10.0.0.6 ip4:10.0.0.7 ip4:10.0.0.8 ip4:10.0.0.9 ip4:10.0.0.10 "
		"ip4:10.0.0.11 a a a a a a a a a a ip4:192.0.2.1 -all exp=e.free.example"),
	    A("free.example", "198.51.100.1"),
	    /* The limit is one for the whole evaluation, include or not. */
	    TXT("deep.example", "v=spf1 a a a a a a include:deep2.example -all"),
	    A("deep.example", "198.51.100.1"),
	    TXT("deep2.example", "v=spf1 a a a a ip4:192.0.2.1 -all"),
	    A("deep2.example", "198.51.100.1"), END};
	CHECK_INT(check(z, "192.0.2.1", "u@ten.example"), SPF_PASS);
	struct run r;
	check_full(z, "192.0.2.1", "h.example", "u@eleven.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_PASS); /* ip4 matches before the 11th term */
	check_full(z, "192.0.2.2", "h.example", "u@eleven.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_PERMERROR);
	CHECK_STR(r.reason, "more than 10 DNS-querying terms");
	CHECK_INT(check(z, "192.0.2.1", "u@free.example"), SPF_PASS);
	check_full(z, "192.0.2.1", "h.example", "u@deep.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_PERMERROR); /* 6 + include + 4 = 11 */
}

TEST(spf_void_limit)
{
	static const struct zrec z[] = {
	    TXT("two.example", "v=spf1 a:nx1.example a:nx2.example ip4:192.0.2.1 -all"),
	    TXT("three.example",
		"v=spf1 a:nx1.example mx:nodata.example exists:nx3.example ip4:192.0.2.1 -all"),
	    A("nodata.example", "192.0.2.200"), /* exists, but no MX: void */
	    TXT("ptrvoid.example", "v=spf1 a:nx1.example a:nx2.example ptr ip4:192.0.2.1 -all"),
	    END};
	CHECK_INT(check(z, "192.0.2.1", "u@two.example"), SPF_PASS);
	struct run r;
	check_full(z, "192.0.2.1", "h.example", "u@three.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_PERMERROR);
	CHECK_STR(r.reason, "more than 2 void DNS lookups");
	CHECK_INT(check(z, "192.0.2.1", "u@ptrvoid.example"), SPF_PERMERROR);
}

TEST(spf_explanation)
{
	static const struct zrec z[] = {
	    TXT("e.example", "v=spf1 mx -all exp=explain._spf.%{d}"),
	    TXT("explain._spf.e.example", "%{i} is not one of %{d}'s designated mail servers."),
	    TXT("url.example", "v=spf1 -all exp=why.url.example"),
	    TXT("why.url.example", "See http://%{d}/why.html?s=%{S}&i=%{I}"),
	    TXT("two.example", "v=spf1 -all exp=t.two.example"), TXT("t.two.example", "one"),
	    TXT("t.two.example", "two"), TXT("bad.example", "v=spf1 -all exp=b.bad.example"),
	    TXT("b.bad.example", "100% wrong"), TXT("crt.example", "v=spf1 -all exp=x.crt.example"),
	    TXT("x.crt.example", "%{c} via %{r} at %{t} from %{h}"),
	    TXT("noexp.example", "v=spf1 -all exp=nx.noexp.example"),
	    TXT("tmp.example", "v=spf1 -all exp=t.tmp.example"), TXT("t.tmp.example", "TEMPFAIL"),
	    TXT("soft.example", "v=spf1 ~all exp=explain._spf.e.example"),
	    /* include: the included record's exp is never used */
	    TXT("inc.example", "v=spf1 -include:i.inc.example ?all exp=o.inc.example"),
	    TXT("i.inc.example", "v=spf1 +all exp=ie.inc.example"), TXT("o.inc.example", "outer"),
	    TXT("ie.inc.example", "inner"),
	    /* redirect: the redirected record's exp, not the original's */
	    TXT("red.example", "v=spf1 redirect=r.red.example exp=o.red.example"),
	    TXT("r.red.example", "v=spf1 -all exp=re.red.example"),
	    TXT("o.red.example", "original"), TXT("re.red.example", "redirected %{d}"),
	    TXT("red2.example", "v=spf1 redirect=r2.red.example exp=o.red.example"),
	    TXT("r2.red.example", "v=spf1 -all"), END};
	struct run r;
	check_full(z, "192.0.2.3", "h.example", "u@e.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_STR(r.exp, "192.0.2.3 is not one of e.example's designated mail servers.");
	CHECK_STR(r.reason, "e.example: '-all' matched");
	check_full(z, "192.0.2.3", "h.example", "a b@url.example", SPF_ID_MAILFROM, &r);
	CHECK_STR(r.exp, "See http://url.example/why.html?s=a%20b%40url.example&i=192.0.2.3");
	check_full(z, "192.0.2.3", "h.example", "u@two.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_STR(r.exp, "");
	check_full(z, "192.0.2.3", "h.example", "u@bad.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_STR(r.exp, "");
	check_full(z, "2001:db8::1", "helo.example", "u@crt.example", SPF_ID_MAILFROM, &r);
	CHECK_STR(r.exp, "2001:db8::1 via mx.receiver.example at 1400000000 from helo.example");
	check_full(z, "192.0.2.3", "h.example", "u@noexp.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_STR(r.exp, "");
	check_full(z, "192.0.2.3", "h.example", "u@tmp.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_STR(r.exp, "");
	check_full(z, "192.0.2.3", "h.example", "u@soft.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_SOFTFAIL);
	CHECK_STR(r.exp, "");
	CHECK_INT(r.n_queries, 1); /* no exp lookup for softfail */
	check_full(z, "192.0.2.3", "h.example", "u@inc.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_STR(r.exp, "outer");
	check_full(z, "192.0.2.3", "h.example", "u@red.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_STR(r.exp, "redirected r.red.example");
	check_full(z, "192.0.2.3", "h.example", "u@red2.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	CHECK_STR(r.exp, "");
}

TEST(spf_p_macro)
{
	static const struct zrec z[] = {TXT("p.example", "v=spf1 exists:%{p}.ok.p.example -all"),
					PTR("3.2.0.192.in-addr.arpa", "other.example"),
					PTR("3.2.0.192.in-addr.arpa", "mx.p.example"),
					A("mx.p.example", "192.0.2.3"),
					A("other.example", "192.0.2.3"),
					A("mx.p.example.ok.p.example", "127.0.0.2"),
					A("unknown.ok.p.example", "127.0.0.3"),
					TXT("e.example", "v=spf1 -all exp=x.e.example"),
					TXT("x.e.example", "host %{p} refused"),
					END};
	/* The subdomain of <domain> is preferred over other validated names. */
	CHECK_INT(check(z, "192.0.2.3", "u@p.example"), SPF_PASS);
	/* No PTR: "unknown". */
	CHECK_INT(check(z, "192.0.2.4", "u@p.example"), SPF_PASS);
	struct run r;
	check_full(z, "192.0.2.4", "h.example", "u@p.example", SPF_ID_MAILFROM, &r);
	CHECK_STR(r.log[r.n_queries - 1], "A unknown.ok.p.example");
	check_full(z, "192.0.2.3", "h.example", "u@e.example", SPF_ID_MAILFROM, &r);
	CHECK_STR(r.exp, "host other.example refused"); /* none within e.example */
}

TEST(spf_helo_and_null_sender)
{
	static const struct zrec z[] = {
	    TXT("helo.example", "v=spf1 a -all"),
	    A("helo.example", "192.0.2.20"),
	    TXT("from.example", "v=spf1 -all"),
	    TXT("pm.example", "v=spf1 exists:%{l}.%{o}.chk.pm.example -all"),
	    A("postmaster.pm.example.chk.pm.example", "127.0.0.1"),
	    END};
	struct run r;
	check_full(z, "192.0.2.20", "helo.example", "u@from.example", SPF_ID_HELO, &r);
	CHECK_INT(r.result, SPF_PASS);
	CHECK_STR(r.log[0], "TXT helo.example");
	check_full(z, "192.0.2.20", "helo.example", "u@from.example", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_FAIL);
	/* MAIL FROM:<> is checked as postmaster@HELO (2.4). */
	check_full(z, "192.0.2.20", "helo.example", "", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_PASS);
	check_full(z, "192.0.2.20", "pm.example", "", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_PASS);
	check_full(z, "192.0.2.20", "pm.example", NULL, SPF_ID_HELO, &r);
	CHECK_INT(r.result, SPF_PASS);
	/* A HELO that is an address literal or a single label: none. */
	check_full(z, "192.0.2.20", "[192.0.2.20]", "", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_NONE);
	CHECK_INT(r.n_queries, 0);
	check_full(z, "192.0.2.20", "localhost", "u@from.example", SPF_ID_HELO, &r);
	CHECK_INT(r.result, SPF_NONE);
	check_full(z, "192.0.2.20", "", "", SPF_ID_MAILFROM, &r);
	CHECK_INT(r.result, SPF_NONE);
}

TEST(spf_ip_parse)
{
	struct spf_ip ip;
	CHECK_INT(spf_ip_parse("192.0.2.1", &ip), 0);
	CHECK_INT(ip.family, AF_INET);
	CHECK_INT(spf_ip_parse("::ffff:192.0.2.1", &ip), 0);
	CHECK_INT(ip.family, AF_INET);
	CHECK_INT(ip.addr[3], 1);
	CHECK_INT(spf_ip_parse("2001:db8::1", &ip), 0);
	CHECK_INT(ip.family, AF_INET6);
	CHECK_INT(spf_ip_parse("192.0.2", &ip), -1);
	CHECK_INT(spf_ip_parse("example.com", &ip), -1);
}

TEST(spf_answer_bounds)
{
	/* Garbage in answers: wrong-size addresses ignored, a TXT SPF record
	 * over SPF_RECORD_MAX is a permerror, unanswered steps repeat. */
	struct spf_request req = {0};
	CHECK_INT(spf_ip_parse("192.0.2.1", &req.ip), 0);
	req.mail_from = "u@big.example";
	struct spf_check *c = spf_check_new(&req);
	struct spf_query q;
	CHECK_INT(spf_step(c, &q), SPF_STEP_QUERY);
	CHECK_INT(q.type, SPF_Q_TXT);
	CHECK_STR(q.name, "big.example");
	static char big[SPF_RECORD_MAX + 10];
	memset(big, 'a', sizeof big);
	memcpy(big, "v=spf1 ", 7);
	struct spf_rr rr = {big, sizeof big};
	spf_answer(c, SPF_DNS_OK, &rr, 1);
	spf_answer(c, SPF_DNS_OK, &rr, 1); /* nothing pending: ignored */
	CHECK_INT(spf_step(c, &q), SPF_STEP_DONE);
	CHECK_INT(spf_result(c), SPF_PERMERROR);
	CHECK_INT(spf_queries(c), 1);
	spf_check_free(&c);
	spf_check_free(&c); /* NULL is fine */

	req.mail_from = "u@addr.example";
	c = spf_check_new(&req);
	CHECK_INT(spf_step(c, &q), SPF_STEP_QUERY);
	struct spf_rr txt = {"v=spf1 a -all", 13};
	spf_answer(c, SPF_DNS_OK, &txt, 1);
	CHECK_INT(spf_step(c, &q), SPF_STEP_QUERY);
	CHECK_INT(q.type, SPF_Q_A);
	static const unsigned char a5[5] = {192, 0, 2, 1, 0};
	struct spf_rr bad[2] = {{a5, 5}, {a5, 3}};
	spf_answer(c, SPF_DNS_OK, bad, 2);
	CHECK_INT(spf_step(c, &q), SPF_STEP_DONE);
	CHECK_INT(spf_result(c), SPF_FAIL);
	spf_check_free(&c);
}
