/*
 * test-mta-sts.c - unit tests for src/queue/mta-sts.c: the _mta-sts TXT
 * record (RFC 8461 3.1), the policy file (3.2) and MX matching (4.1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta-sts.h"
#include "test.h"

/* An exact-size copy of s (no NUL), so a read past the end shows under
 * ASan. */
static char *exact(const char *s, size_t *n)
{
	*n = strlen(s);
	char *h = malloc(*n ? *n : 1);
	if (h == NULL)
		abort();
	memcpy(h, s, *n);
	return h;
}

static int txt(const char *s, char id[MTASTS_ID_MAX + 1])
{
	size_t n;
	char *h = exact(s, &n);
	int r = mtasts_txt_parse(h, n, id);
	free(h);
	return r;
}

TEST(mtasts_txt)
{
	char id[MTASTS_ID_MAX + 1];
	CHECK_INT(txt("v=STSv1; id=20160831085700Z;", id), 1);
	CHECK_STR(id, "20160831085700Z");
	CHECK_INT(txt("v=STSv1;id=abc", id), 1);
	CHECK_STR(id, "abc");
	CHECK_INT(txt("v=STSv1 ;\tid=1 ; ext.x-y_z=a:b ;", id), 1);
	CHECK_STR(id, "1");
	/* the first id counts; extensions in any order */
	CHECK_INT(txt("v=STSv1; foo=bar; id=A1; id=B2", id), 1);
	CHECK_STR(id, "A1");
	/* not an MTA-STS record at all: ignored */
	CHECK_INT(txt("v=spf1 -all", id), 0);
	CHECK_INT(txt("v=STSv10; id=1", id), 0);
	CHECK_INT(txt("v=STSv1", id), 0);
	CHECK_INT(txt(" v=STSv1; id=1", id), 0);
	CHECK_INT(txt("", id), 0);
	/* ours, but malformed */
	CHECK_INT(txt("v=STSv1;", id), -1);
	CHECK_INT(txt("v=STSv1; foo=bar", id), -1);          /* no id */
	CHECK_INT(txt("v=STSv1; id=", id), -1);
	CHECK_INT(txt("v=STSv1; id=a-b", id), -1);          /* only ALPHA / DIGIT */
	CHECK_INT(txt("v=STSv1; id=123456789012345678901234567890123", id), -1); /* 33 */
	CHECK_INT(txt("v=STSv1; id=12345678901234567890123456789012", id), 1);   /* 32 */
	CHECK_INT(txt("v=STSv1; id=1 x", id), -1);
	CHECK_INT(txt("v=STSv1; id=1;; ", id), -1);
	CHECK_INT(txt("v=STSv1; _x=1; id=1", id), -1);      /* name starts with "_" */
	CHECK_INT(txt("v=STSv1; id=1; x==1", id), -1);
	CHECK_INT(txt("v=STSv1; id=1; x=\x7f", id), -1);
}

static int pol(const char *s, struct mtasts_policy *p, char *err, size_t errsz)
{
	size_t n;
	char *h = exact(s, &n);
	int r = mtasts_policy_parse(h, n, p, err, errsz);
	free(h);
	return r;
}

TEST(mtasts_policy)
{
	struct mtasts_policy *p = malloc(sizeof *p);
	if (p == NULL)
		abort();
	char err[200];
	CHECK_INT(pol("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
		      "mx: *.Example.NET\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
		      p, err, sizeof err),
		  0);
	CHECK_INT(p->mode, MTASTS_ENFORCE);
	CHECK_INT(p->max_age, 604800);
	CHECK_INT(p->n_mx, 3);
	CHECK_STR(p->mx[1], "*.example.net");
	char list[300];
	mtasts_mx_list(p, list, sizeof list);
	CHECK_STR(list, "mail.example.com *.example.net backupmx.example.com");
	/* LF only, no final newline, blank lines, spaces, unknown keys,
	 * repeated keys keep the first value */
	CHECK_INT(pol("version:STSv1\n\nmode:   testing  \nmode: enforce\nfoo_bar: some thing\n"
		      "mx: a.example\nmax_age: 99999999999\nmax_age: 1",
		      p, err, sizeof err),
		  -1); /* 11 digits */
	CHECK_STR(err, "max_age is not a number of 1 to 10 digits");
	CHECK_INT(pol("version:STSv1\n\nmode:   testing  \nmode: enforce\nfoo_bar: some thing\n"
		      "mx: a.example\nmax_age: 9999999999\nmax_age: 1",
		      p, err, sizeof err),
		  0);
	CHECK_INT(p->mode, MTASTS_TESTING);
	CHECK_INT(p->max_age, MTASTS_MAX_AGE_MAX);
	CHECK_INT(pol("version: STSv1\nmode: none\nmax_age: 0\n", p, err, sizeof err), 0);
	CHECK_INT(p->mode, MTASTS_NONE);
	CHECK_INT(p->n_mx, 0);
	/* what makes a policy invalid, in words */
	static const struct {
		const char *text, *err;
	} bad[] = {
	    {"mode: enforce\nmx: a.example\nmax_age: 1\n", "no version"},
	    {"version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "version is not STSv1"},
	    {"version: STSv1\nmx: a.example\nmax_age: 1\n", "no mode"},
	    {"version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",
	     "mode is not enforce, testing or none"},
	    {"version: STSv1\nmode: enforce\nmx: a.example\n", "no max_age"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx pattern"},
	    {"version: STSv1\nmode: enforce\nmax_age: -1\nmx: a.example\n",
	     "max_age is not a number of 1 to 10 digits"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\nmx: a..example\n",
	     "an mx pattern is not a host name or *.domain"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\nmx: *example.com\n",
	     "an mx pattern is not a host name or *.domain"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\nmx: a.*.example\n",
	     "an mx pattern is not a host name or *.domain"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\nmx: -a.example\n",
	     "an mx pattern is not a host name or *.domain"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\nmx: a-.example\n",
	     "an mx pattern is not a host name or *.domain"},
	    {"version: STSv1\nmode: enforce\nmax_age: 1\nmx:\n",
	     "an mx pattern is not a host name or *.domain"},
	    {"version: STSv1\nmode: enforce\nthis line has no colon\n",
	     "a line is not \"key: value\""},
	    {"version: STSv1\nmode: enforce\n: empty key\n", "a line is not \"key: value\""},
	    {"version: STSv1\nmode: enforce\nx: a\x01b\n", "a control character in a value"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		CHECK_INT(pol(bad[i].text, p, err, sizeof err), -1);
		CHECK_STR(err, bad[i].err);
	}
	/* the bounds: MTASTS_MAX_MX patterns, MTASTS_POLICY_MAX bytes */
	char *big = malloc(MTASTS_POLICY_MAX + 100);
	if (big == NULL)
		abort();
	size_t n = (size_t)snprintf(big, 200, "version: STSv1\nmode: enforce\nmax_age: 1\n");
	for (int i = 0; i < MTASTS_MAX_MX; i++)
		n += (size_t)snprintf(big + n, 64, "mx: m%d.example\n", i);
	CHECK_INT(mtasts_policy_parse(big, n, p, err, sizeof err), 0);
	CHECK_INT(p->n_mx, MTASTS_MAX_MX);
	n += (size_t)snprintf(big + n, 64, "mx: one.more.example\n");
	CHECK_INT(mtasts_policy_parse(big, n, p, err, sizeof err), -1);
	CHECK_STR(err, "more than 64 mx patterns");
	memset(big, '\n', MTASTS_POLICY_MAX + 1);
	CHECK_INT(mtasts_policy_parse(big, MTASTS_POLICY_MAX + 1, p, err, sizeof err), -1);
	CHECK_STR(err, "the policy is larger than 65536 bytes");
	free(big);
	free(p);
}

TEST(mtasts_mx_match)
{
	struct mtasts_policy *p = calloc(1, sizeof *p);
	if (p == NULL)
		abort();
	char err[200];
	const char *text = "version: STSv1\nmode: enforce\nmax_age: 1\n"
			   "mx: mail.example.com\nmx: *.example.net\n";
	CHECK_INT(mtasts_policy_parse(text, strlen(text), p, err, sizeof err), 0);
	CHECK(mtasts_mx_match(p, "mail.example.com"));
	CHECK(mtasts_mx_match(p, "MAIL.Example.COM"));
	CHECK(!mtasts_mx_match(p, "mail2.example.com"));
	CHECK(!mtasts_mx_match(p, "x.mail.example.com"));
	CHECK(mtasts_mx_match(p, "mx1.example.net"));
	CHECK(mtasts_mx_match(p, "MX1.EXAMPLE.NET"));
	/* 4.1: one whole label, not the domain itself, not two labels */
	CHECK(!mtasts_mx_match(p, "example.net"));
	CHECK(!mtasts_mx_match(p, "foo.bar.example.net"));
	CHECK(!mtasts_mx_match(p, ".example.net"));
	CHECK(!mtasts_mx_match(p, "xexample.net"));
	CHECK(!mtasts_mx_match(p, ""));
	CHECK_STR(mtasts_mode_name(MTASTS_TESTING), "testing");
	/* what we serve parses back to itself */
	char out[300];
	size_t n = mtasts_policy_format("enforce", "mx.example.org", 604800, out, sizeof out);
	CHECK_STR(out, "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 604800\r\n");
	CHECK_INT(n, strlen(out));
	CHECK_INT(mtasts_policy_parse(out, n, p, err, sizeof err), 0);
	CHECK(p->mode == MTASTS_ENFORCE && p->max_age == 604800 && mtasts_mx_match(p, "MX.example.org"));
	CHECK_INT(mtasts_policy_format("enforce", "mx.example.org", 604800, out, 20), 0);
	free(p);
}
