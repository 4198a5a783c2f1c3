/* Unit tests for src/mailauth/dmarc.c (RFC 7489). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc-failure.h"
#include "dmarc.h"
#include "test.h"

static enum dmarc_parse parse(const char *s, struct dmarc_record *r)
{
	return dmarc_record_parse(s, strlen(s), r);
}

TEST(dmarc_parse_defaults)
{
	struct dmarc_record r;
	CHECK_INT(parse("v=DMARC1; p=reject", &r), DMARC_PARSE_OK);
	CHECK_INT(r.p, DMARC_POLICY_REJECT);
	CHECK_INT(r.sp, DMARC_POLICY_REJECT); /* sp defaults to p */
	CHECK(r.policy_valid);
	CHECK(!r.adkim_strict);
	CHECK(!r.aspf_strict);
	CHECK_INT(r.pct, 100);
	CHECK_INT(r.ri, 86400);
	CHECK_INT(r.fo, DMARC_FO_0);
	CHECK_INT(r.n_rua, 0);
	CHECK_INT(r.n_ruf, 0);
}

TEST(dmarc_parse_all_tags)
{
	struct dmarc_record r;
	const char *s = "v=DMARC1 ;\tp = quarantine; sp=none; adkim=s; aspf=s; pct=25; ri=3600;"
			" fo=1:d:s; rf=afrf; rua=mailto:agg@example.com!10m, mailto:b@example.net;"
			" ruf=mailto:forensic@example.com; x-unknown=whatever;";
	CHECK_INT(parse(s, &r), DMARC_PARSE_OK);
	CHECK_INT(r.p, DMARC_POLICY_QUARANTINE);
	CHECK_INT(r.sp, DMARC_POLICY_NONE);
	CHECK(r.adkim_strict);
	CHECK(r.aspf_strict);
	CHECK_INT(r.pct, 25);
	CHECK_INT(r.ri, 3600);
	CHECK_INT(r.fo, DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S);
	CHECK_INT(r.n_rua, 2);
	CHECK_STR(r.rua[0].uri, "mailto:agg@example.com");
	CHECK_INT(r.rua[0].max_bytes, 10ull << 20);
	CHECK_STR(r.rua[1].uri, "mailto:b@example.net");
	CHECK_INT(r.rua[1].max_bytes, 0);
	CHECK_INT(r.n_ruf, 1);
	CHECK_STR(r.ruf[0].uri, "mailto:forensic@example.com");
}

TEST(dmarc_parse_version_exact_and_first)
{
	struct dmarc_record r;
	CHECK_INT(parse("v=dmarc1; p=reject", &r), DMARC_PARSE_NOT_DMARC);
	CHECK_INT(parse("p=reject; v=DMARC1", &r), DMARC_PARSE_NOT_DMARC);
	CHECK_INT(parse("v=DMARC2; p=reject", &r), DMARC_PARSE_NOT_DMARC);
	CHECK_INT(parse("v=spf1 -all", &r), DMARC_PARSE_NOT_DMARC);
	CHECK_INT(parse("", &r), DMARC_PARSE_NOT_DMARC);
	CHECK_INT(parse("v = DMARC1;p=none", &r), DMARC_PARSE_OK);
	CHECK_INT(parse("v=DMARC1", &r), DMARC_PARSE_NO_POLICY);
}

TEST(dmarc_parse_bad_values_keep_defaults)
{
	struct dmarc_record r;
	CHECK_INT(parse("v=DMARC1; p=reject; pct=101; adkim=x; aspf=; ri=-1; fo=2", &r),
		  DMARC_PARSE_OK);
	CHECK_INT(r.pct, 100);
	CHECK(!r.adkim_strict);
	CHECK(!r.aspf_strict);
	CHECK_INT(r.ri, 86400);
	CHECK_INT(r.fo, DMARC_FO_0);
	CHECK_INT(parse("v=DMARC1; p=reject; pct=0", &r), DMARC_PARSE_OK);
	CHECK_INT(r.pct, 0);
	CHECK_INT(parse("v=DMARC1; p=reject; pct=0050", &r), DMARC_PARSE_OK);
	CHECK_INT(r.pct, 100); /* 1*3DIGIT */
	/* Case-insensitive literals, first occurrence wins. */
	CHECK_INT(parse("v=DMARC1; P=Reject; p=none", &r), DMARC_PARSE_OK);
	CHECK_INT(r.p, DMARC_POLICY_REJECT);
}

TEST(dmarc_parse_invalid_policy_rule)
{
	struct dmarc_record r;
	/* 6.6.3 step 6: invalid p with a valid rua acts as p=none ... */
	CHECK_INT(parse("v=DMARC1; p=bogus; rua=mailto:r@example.com", &r), DMARC_PARSE_OK);
	CHECK(!r.policy_valid);
	CHECK_INT(r.p, DMARC_POLICY_NONE);
	CHECK_INT(r.sp, DMARC_POLICY_NONE);
	CHECK_INT(r.n_rua, 1);
	CHECK_INT(parse("v=DMARC1; p=reject; sp=maybe; rua=mailto:r@example.com", &r),
		  DMARC_PARSE_OK);
	CHECK(!r.policy_valid);
	CHECK_INT(r.p, DMARC_POLICY_NONE);
	/* ... without one, no DMARC processing. */
	CHECK_INT(parse("v=DMARC1; p=bogus", &r), DMARC_PARSE_NO_POLICY);
	CHECK_INT(parse("v=DMARC1; p=reject; sp=maybe", &r), DMARC_PARSE_NO_POLICY);
	CHECK_INT(parse("v=DMARC1; rua=not a uri", &r), DMARC_PARSE_NO_POLICY);
	CHECK_INT(parse("v=DMARC1; rua=mailto:", &r), DMARC_PARSE_NO_POLICY);
	/* p later than second is still read. */
	CHECK_INT(parse("v=DMARC1; rua=mailto:r@example.com; p=reject", &r), DMARC_PARSE_OK);
	CHECK(r.policy_valid);
	CHECK_INT(r.p, DMARC_POLICY_REJECT);
}

TEST(dmarc_parse_uris)
{
	struct dmarc_record r;
	CHECK_INT(parse("v=DMARC1; p=none; rua=mailto:a@x.example!1k,bad uri,mailto:b@x.example!2,"
			"https://r.example/x, mailto:c@x.example!9, mailto:d@x.example!9t,"
			"mailto:e@x.example",
			&r),
		  DMARC_PARSE_OK);
	CHECK_INT(r.n_rua, DMARC_MAX_URIS);
	CHECK_STR(r.rua[0].uri, "mailto:a@x.example");
	CHECK_INT(r.rua[0].max_bytes, 1024);
	CHECK_STR(r.rua[1].uri, "mailto:b@x.example");
	CHECK_INT(r.rua[1].max_bytes, 2);
	CHECK_STR(r.rua[2].uri, "https://r.example/x");
	CHECK_INT(parse("v=DMARC1; p=none; rua=mailto:a@x.example!k", &r), DMARC_PARSE_OK);
	CHECK_INT(r.n_rua, 0);
	CHECK_INT(parse("v=DMARC1; p=none; rua=mailto:a@x.example!99999999999999999999", &r),
		  DMARC_PARSE_OK);
	CHECK_INT(r.n_rua, 0);
	CHECK_INT(parse("v=DMARC1; p=none; rua=mailto:a@x.example!17179869184t", &r),
		  DMARC_PARSE_OK);
	CHECK_INT(r.n_rua, 1);
	CHECK(r.rua[0].max_bytes == UINT64_MAX);
}

TEST(dmarc_parse_bounded)
{
	size_t n = DMARC_RECORD_MAX + 1;
	char *big = malloc(n);
	CHECK(big != NULL);
	if (big == NULL)
		return;
	memset(big, ';', n);
	memcpy(big, "v=DMARC1; p=reject", 18);
	struct dmarc_record r;
	CHECK_INT(dmarc_record_parse(big, n, &r), DMARC_PARSE_TOO_LONG);
	CHECK_INT(dmarc_record_parse(big, n - 1, &r), DMARC_PARSE_OK);
	CHECK_INT(r.p, DMARC_POLICY_REJECT);
	/* Byte by byte: every prefix parses without reading past its end. */
	const char *s = "v=DMARC1; p=quarantine; rua=mailto:a@b.example!5m; fo=0:1";
	for (size_t i = 0; i <= strlen(s); i++) {
		char *copy = malloc(i ? i : 1);
		CHECK(copy != NULL);
		if (copy == NULL)
			break;
		memcpy(copy, s, i);
		(void)dmarc_record_parse(copy, i, &r);
		free(copy);
	}
	free(big);
}

TEST(dmarc_select_rrset)
{
	struct dmarc_record r;
	const char *one[] = {"v=spf1 -all", "v=DMARC1; p=reject", "hello"};
	size_t one_len[] = {11, 18, 5};
	CHECK_INT(dmarc_select(one, one_len, 3, &r), DMARC_SELECT_FOUND);
	CHECK_INT(r.p, DMARC_POLICY_REJECT);
	const char *none[] = {"v=spf1 -all", "google-site-verification=x"};
	size_t none_len[] = {11, 26};
	CHECK_INT(dmarc_select(none, none_len, 2, &r), DMARC_SELECT_EMPTY);
	CHECK_INT(dmarc_select(NULL, NULL, 0, &r), DMARC_SELECT_EMPTY);
	const char *two[] = {"v=DMARC1; p=reject", "v=DMARC1; p=none"};
	size_t two_len[] = {18, 16};
	CHECK_INT(dmarc_select(two, two_len, 2, &r), DMARC_SELECT_STOP);
	const char *bad[] = {"v=DMARC1; p=nonsense"};
	size_t bad_len[] = {20};
	CHECK_INT(dmarc_select(bad, bad_len, 1, &r), DMARC_SELECT_STOP);
}

TEST(dmarc_org_domain_psl)
{
	char out[256];
	CHECK(dmarc_org_domain("mail.Example.COM.", out, sizeof out) > 0);
	CHECK_STR(out, "example.com");
	CHECK(dmarc_org_domain("a.b.example.co.uk", out, sizeof out) > 0);
	CHECK_STR(out, "example.co.uk");
	CHECK(dmarc_org_domain("example.com", out, sizeof out) > 0);
	CHECK_STR(out, "example.com");
	/* Unlisted TLDs take the default "*" rule. */
	CHECK(dmarc_org_domain("mx.a.example.test", out, sizeof out) > 0);
	CHECK_STR(out, "example.test");
	CHECK(dmarc_org_domain("com", out, sizeof out) > 0);
	CHECK_STR(out, "com");
	CHECK_INT(dmarc_org_domain("", out, sizeof out), -1);
	CHECK_INT(dmarc_org_domain("example.com", out, 5), -1);
}

TEST(dmarc_alignment)
{
	CHECK(dmarc_aligned("news.example.com", "example.com", false));
	CHECK(dmarc_aligned("example.com", "bounce.example.com", false));
	CHECK(!dmarc_aligned("news.example.com", "example.com", true));
	CHECK(dmarc_aligned("Example.COM", "example.com.", true));
	CHECK(!dmarc_aligned("example.com", "example.net", false));
	CHECK(!dmarc_aligned("example.com", "com", false));
	CHECK(!dmarc_aligned("a.co.uk", "b.co.uk", false));
	CHECK(dmarc_aligned("x.a.co.uk", "a.co.uk", false));
	CHECK(!dmarc_aligned("example.com", NULL, false));
}

static struct dmarc_record rec(const char *s)
{
	struct dmarc_record r;
	CHECK_INT(dmarc_record_parse(s, strlen(s), &r), DMARC_PARSE_OK);
	return r;
}

TEST(dmarc_evaluate_pass_and_fail)
{
	struct dmarc_record r = rec("v=DMARC1; p=reject");
	struct dmarc_dkim_input dk[] = {{"other.example", DMARC_AUTH_PASS},
					{"example.com", DMARC_AUTH_FAIL}};
	struct dmarc_input in = {.from_domain = "example.com",
				 .record = &r,
				 .record_domain = "example.com",
				 .spf_domain = "example.com",
				 .spf = DMARC_AUTH_PASS,
				 .dkim = dk,
				 .n_dkim = 2};
	struct dmarc_verdict v;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PASS);
	CHECK(v.spf_aligned);
	CHECK(!v.dkim_aligned);
	CHECK_INT(v.disposition, DMARC_POLICY_NONE);

	/* SPF passes for an unaligned domain; DKIM fails: fail, reject. */
	in.spf_domain = "mailer.example.net";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK_INT(v.policy, DMARC_POLICY_REJECT);
	CHECK_INT(v.disposition, DMARC_POLICY_REJECT);
	CHECK_STR(dmarc_result_name(v.result), "fail");
	CHECK_STR(dmarc_policy_name(v.disposition), "reject");

	/* An aligned DKIM pass is enough. */
	dk[1].result = DMARC_AUTH_PASS;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PASS);
	CHECK(v.dkim_aligned);
}

TEST(dmarc_evaluate_strict_modes)
{
	struct dmarc_record r = rec("v=DMARC1; p=quarantine; adkim=s; aspf=s");
	struct dmarc_dkim_input dk[] = {{"example.com", DMARC_AUTH_PASS}};
	struct dmarc_input in = {.from_domain = "news.example.com",
				 .record = &r,
				 .record_domain = "news.example.com",
				 .spf_domain = "bounces.example.com",
				 .spf = DMARC_AUTH_PASS,
				 .dkim = dk,
				 .n_dkim = 1};
	struct dmarc_verdict v;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK_INT(v.disposition, DMARC_POLICY_QUARANTINE);
	r = rec("v=DMARC1; p=quarantine");
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PASS);
	CHECK(v.spf_aligned);
	CHECK(v.dkim_aligned);
}

TEST(dmarc_evaluate_subdomain_policy)
{
	struct dmarc_record r = rec("v=DMARC1; p=reject; sp=quarantine");
	struct dmarc_input in = {.from_domain = "shop.example.com",
				 .record = &r,
				 .record_domain = "example.com",
				 .spf = DMARC_AUTH_FAIL,
				 .spf_domain = "shop.example.com"};
	struct dmarc_verdict v;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK_INT(v.policy, DMARC_POLICY_QUARANTINE);
	in.from_domain = "example.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.policy, DMARC_POLICY_REJECT);
	/* A record published at the From domain itself uses p. */
	in.from_domain = "shop.example.com";
	in.record_domain = "shop.example.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.policy, DMARC_POLICY_REJECT);
}

TEST(dmarc_evaluate_pct_sampling)
{
	struct dmarc_record r = rec("v=DMARC1; p=reject; pct=20");
	struct dmarc_input in = {.from_domain = "example.com",
				 .record = &r,
				 .record_domain = "example.com",
				 .spf = DMARC_AUTH_FAIL};
	struct dmarc_verdict v;
	in.sample = 19;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.disposition, DMARC_POLICY_REJECT);
	in.sample = 20;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK_INT(v.disposition, DMARC_POLICY_QUARANTINE);
	r = rec("v=DMARC1; p=quarantine; pct=0");
	in.sample = 0;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.disposition, DMARC_POLICY_NONE);
	r = rec("v=DMARC1; p=none");
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_FAIL);
	CHECK_INT(v.disposition, DMARC_POLICY_NONE);
}

TEST(dmarc_evaluate_temperror_and_none)
{
	struct dmarc_record r = rec("v=DMARC1; p=reject");
	struct dmarc_dkim_input dk[] = {{"example.com", DMARC_AUTH_TEMPERROR}};
	struct dmarc_input in = {.from_domain = "example.com",
				 .record = &r,
				 .record_domain = "example.com",
				 .spf = DMARC_AUTH_FAIL,
				 .dkim = dk,
				 .n_dkim = 1};
	struct dmarc_verdict v;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_TEMPERROR);
	CHECK_INT(v.disposition, DMARC_POLICY_NONE);
	/* A pass still wins over another method's temperror. */
	in.spf = DMARC_AUTH_PASS;
	in.spf_domain = "example.com";
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_PASS);
	in.record_temperror = true;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_TEMPERROR);
	in.record_temperror = false;
	in.record = NULL;
	dmarc_evaluate(&in, &v);
	CHECK_INT(v.result, DMARC_RESULT_NONE);
	CHECK_STR(dmarc_result_name(v.result), "none");
}

/* ---------------------------------------------- failure reports (7.3) */

TEST(dmarc_failure_fo_options)
{
	struct dmarc_verdict fail = {.result = DMARC_RESULT_FAIL};
	struct dmarc_verdict half = {.result = DMARC_RESULT_PASS, .spf_aligned = true};
	struct dmarc_verdict both = {
	    .result = DMARC_RESULT_PASS, .spf_aligned = true, .dkim_aligned = true};
	struct dmarc_verdict temp = {.result = DMARC_RESULT_TEMPERROR};
	CHECK(dmarc_failure_wanted(DMARC_FO_0, &fail));
	CHECK(!dmarc_failure_wanted(DMARC_FO_0, &half));
	CHECK(dmarc_failure_wanted(DMARC_FO_1, &fail));
	CHECK(dmarc_failure_wanted(DMARC_FO_1, &half));
	CHECK(!dmarc_failure_wanted(DMARC_FO_1, &both));
	CHECK(!dmarc_failure_wanted(DMARC_FO_0 | DMARC_FO_1, &temp));
	/* d and s alone ask for DKIM/SPF reports, which are not sent */
	CHECK(!dmarc_failure_wanted(DMARC_FO_D | DMARC_FO_S, &fail));
}

/* Every line of b ends in CRLF and is at most max octets long. */
static bool lines_within(const struct buf *b, size_t max)
{
	size_t col = 0;
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == '\n') {
			if (i == 0 || b->data[i - 1] != '\r')
				return false;
			col = 0;
		} else if (++col > max + 1) {
			return false;
		}
	}
	return col == 0;
}

TEST(dmarc_failure_message_bounded_and_clean)
{
	/* a long SPF record, headers with 8-bit bytes and bare LFs, a body */
	char rec[3000];
	size_t o = (size_t)snprintf(rec, sizeof rec, "v=spf1");
	while (o + 30 < sizeof rec)
		o += (size_t)snprintf(rec + o, sizeof rec - o, " ip4:192.0.2.%zu", o % 250);
	const char hdrs[] = "From: <a@x.example>\nSubject: caf\xc3\xa9\r\n\r\nthe body\r\n";
	struct dkim_result dk = {.status = DKIM_FAIL};
	snprintf(dk.domain, sizeof dk.domain, "x.example");
	snprintf(dk.selector, sizeof dk.selector, "s1");
	struct dmarc_failure_meta m = {
	    .org_name = "mx.example.net",
	    .email = "postmaster@mx.example.net",
	    .report_id = "id1",
	    .from_domain = "x.example",
	    .ip = "192.0.2.9",
	    .mail_from = "a@x.example",
	    .delivery = "reject",
	    .auth_results = "Authentication-Results: mx.example.net;\r\n\tdmarc=fail\r\n",
	    .dkim = &dk,
	    .n_dkim = 1,
	    .spf_domain = "x.example",
	    .spf_record = rec,
	    .headers = hdrs,
	    .headers_len = sizeof hdrs - 1,
	    .arrival = 0,
	};
	struct buf out;
	buf_init(&out, 0);
	CHECK_INT(dmarc_failure_message(&m, 0, &out), 0);
	CHECK(lines_within(&out, 998));
	CHECK(buf_putc(&out, '\0') == 0);
	CHECK(strstr(out.data, "\r\nDKIM-Domain: x.example\r\nDKIM-Identity: @x.example\r\n"
			       "DKIM-Selector: s1\r\n") != NULL);
	CHECK(strstr(out.data, "\r\nSPF-DNS: txt : x.example : v=spf1 ip4:") != NULL);
	CHECK(strstr(out.data, "\r\nArrival-Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n") != NULL);
	CHECK(strstr(out.data, "From: <a@x.example>\r\nSubject: caf??\r\n\r\n--") != NULL);
	CHECK(strstr(out.data, "the body") == NULL);
	CHECK(strstr(out.data, "\xc3") == NULL);
	buf_free(&out);
	/* a header section over the bound is cut at a line end */
	size_t big = DMARC_FAILURE_HEADERS_MAX + 4000;
	char *h = malloc(big);
	CHECK(h != NULL);
	for (size_t i = 0; i < big; i++)
		h[i] = i % 50 == 49 ? '\n' : 'a';
	m.headers = h;
	m.headers_len = big;
	buf_init(&out, 0);
	CHECK_INT(dmarc_failure_message(&m, 0, &out), 0);
	CHECK(out.len < DMARC_FAILURE_HEADERS_MAX + 8000);
	CHECK(lines_within(&out, 998));
	buf_free(&out);
	free(h);
}
