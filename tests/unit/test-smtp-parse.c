/*
 * test-smtp-parse.c - unit tests for src/smtp/smtp-parse.c (one SMTP
 * command line).  Lines are copied into heap blocks of exactly their
 * length so that ASan sees any read past the end.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-parse.h"
#include "test.h"

static enum smtp_parse_error parse_n(const char *s, size_t n, bool utf8, struct smtp_cmd *c)
{
	char *p = calloc(1, n > 0 ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, s, n);
	enum smtp_parse_error e = smtp_parse_command(p, n, utf8, c);
	/* arg points into the line: keep it valid for the caller's checks by
	 * moving it into the original string */
	if (c->arg != NULL)
		c->arg = s + (c->arg - p);
	free(p);
	return e;
}

static enum smtp_parse_error parse(const char *s, struct smtp_cmd *c)
{
	return parse_n(s, strlen(s), false, c);
}

static enum smtp_parse_error parse_utf8(const char *s, struct smtp_cmd *c)
{
	return parse_n(s, strlen(s), true, c);
}

static const char *arg_of(const struct smtp_cmd *c)
{
	static char buf[1024];
	if (c->arg == NULL)
		return "(none)";
	size_t n = c->arg_len < sizeof buf - 1 ? c->arg_len : sizeof buf - 1;
	memcpy(buf, c->arg, n);
	buf[n] = '\0';
	return buf;
}

/*
 * Feeds every proper prefix of line; a prefix must parse OK exactly when
 * its length is listed in valid (terminated by 0).  The whole line must
 * parse OK.
 */
static void check_prefixes(const char *line, bool utf8, const size_t *valid)
{
	size_t n = strlen(line);
	struct smtp_cmd c;
	CHECK_INT(parse_n(line, n, utf8, &c), SMTP_PARSE_OK);
	for (size_t k = 0; k < n; k++) {
		bool want = false;
		for (const size_t *v = valid; *v != 0; v++)
			if (*v == k)
				want = true;
		enum smtp_parse_error e = parse_n(line, k, utf8, &c);
		if ((e == SMTP_PARSE_OK) != want)
			fprintf(stderr, "  prefix %zu of \"%s\": %d\n", k, line, (int)e);
		CHECK_INT(e == SMTP_PARSE_OK, want);
	}
}

/* ---- HELO / EHLO ---- */

TEST(smtp_parse_helo_ehlo)
{
	struct smtp_cmd c;
	CHECK_INT(parse("HELO mx.example.com", &c), SMTP_PARSE_OK);
	CHECK_INT(c.verb, SMTP_VERB_HELO);
	CHECK_STR(arg_of(&c), "mx.example.com");
	CHECK_INT(parse("EHLO [192.0.2.1]", &c), SMTP_PARSE_OK);
	CHECK_INT(c.verb, SMTP_VERB_EHLO);
	CHECK_STR(arg_of(&c), "[192.0.2.1]");
	CHECK_INT(parse("ehlo x", &c), SMTP_PARSE_OK);
	CHECK_INT(c.verb, SMTP_VERB_EHLO);
	CHECK_INT(parse("eHlO x", &c), SMTP_PARSE_OK);
	CHECK_INT(parse("EHLO   spaced.example  ", &c), SMTP_PARSE_OK);
	CHECK_STR(arg_of(&c), "spaced.example");
}

TEST(smtp_parse_helo_junk_accepted)
{
	struct smtp_cmd c;
	CHECK_INT(parse("HELO not_a valid!!domain", &c), SMTP_PARSE_OK);
	CHECK_STR(arg_of(&c), "not_a valid!!domain");
	CHECK_INT(parse("EHLO [IPv6:::1", &c), SMTP_PARSE_OK);
	CHECK_INT(parse_utf8("EHLO \xc3\xbc.example", &c), SMTP_PARSE_OK);
	CHECK_INT(parse("EHLO \xff", &c), SMTP_PARSE_OK);
}

TEST(smtp_parse_helo_needs_arg)
{
	struct smtp_cmd c;
	CHECK_INT(parse("HELO", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_HELO);
	CHECK_INT(parse("HELO ", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_HELO);
	CHECK_INT(parse("EHLO    ", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_EHLO);
	CHECK_INT(parse("EHLO\t", &c), SMTP_PARSE_UNKNOWN);
}

/* ---- MAIL ---- */

TEST(smtp_parse_mail_basic)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@b.example>", &c), SMTP_PARSE_OK);
	CHECK_INT(c.verb, SMTP_VERB_MAIL);
	CHECK_STR(c.addr.local, "a");
	CHECK_STR(c.addr.domain, "b.example");
	CHECK(!c.null_path);
	CHECK(!c.has_size);
	CHECK_INT(c.body, SMTP_BODY_DEFAULT);
	CHECK(!c.smtputf8);
	CHECK_INT(parse("mail from:<A@B.Example>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.local, "A");
	CHECK_STR(c.addr.domain, "b.example");
	CHECK_INT(parse("MAIL FROM: <a@b.example>", &c), SMTP_PARSE_OK);
	CHECK_INT(parse("MAIL FROM:<a@b.example>  ", &c), SMTP_PARSE_OK);
	CHECK_INT(parse("MAIL FROM:<@r.example:a@b.example>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.domain, "b.example");
	CHECK_INT(parse("MAIL FROM:<\"a b\"@[IPv6:2001:db8::1]>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.local, "\"a b\"");
	CHECK(c.addr.domain_is_literal);
}

TEST(smtp_parse_mail_null_path)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<>", &c), SMTP_PARSE_OK);
	CHECK(c.null_path);
	CHECK_STR(c.addr.local, "");
	CHECK_INT(parse("MAIL FROM: <> SIZE=100", &c), SMTP_PARSE_OK);
	CHECK(c.null_path);
	CHECK(c.has_size);
	CHECK_INT(c.size, 100);
}

TEST(smtp_parse_mail_syntax)
{
	static const char *const bad[] = {
		"MAIL",
		"MAIL ",
		"MAIL FROM",
		"MAIL FROM:",
		"MAIL FROM: ",
		"MAIL FROM:  <a@b>",
		"MAIL FROM :<a@b>",
		"MAIL  FROM:<a@b>",
		"MAIL TO:<a@b>",
		"MAIL FROM:a@b",
		"MAIL FROM:\"a\"@b",
		"MAIL FROM:<a@b>SIZE=1",
		"MAIL FROM:<a@b>\tSIZE=1",
		"MAIL FROM<a@b>",
		"MAIL FROMx<a@b>",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct smtp_cmd c;
		enum smtp_parse_error e = parse(bad[i], &c);
		if (e != SMTP_PARSE_SYNTAX)
			fprintf(stderr, "  case \"%s\": %d\n", bad[i], (int)e);
		CHECK_INT(e, SMTP_PARSE_SYNTAX);
		CHECK_INT(c.verb, SMTP_VERB_MAIL);
	}
}

TEST(smtp_parse_mail_bad_addr)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(c.verb, SMTP_VERB_MAIL);
	CHECK_INT(parse("MAIL FROM:<a@b", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("MAIL FROM:<a b@c>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("MAIL FROM:<a@b.>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("MAIL FROM:<a@[300.1.1.1]>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("MAIL FROM:<postmaster>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("MAIL FROM:<<a@b>>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("MAIL FROM:<", &c), SMTP_PARSE_BAD_ADDR);
}

TEST(smtp_parse_mail_too_long)
{
	char line[600];
	struct smtp_cmd c;
	memcpy(line, "MAIL FROM:<", 11);
	memset(line + 11, 'a', 65);
	memcpy(line + 76, "@b.example>", 12);
	CHECK_INT(parse(line, &c), SMTP_PARSE_TOO_LONG);
	CHECK_INT(c.verb, SMTP_VERB_MAIL);
	/* path over 256 octets although each part is within its limit */
	memcpy(line, "MAIL FROM:<", 11);
	memset(line + 11, 'a', 64);
	line[75] = '@';
	for (size_t i = 0; i < 200; i++)
		line[76 + i] = (i % 50 == 49) ? '.' : 'd';
	memcpy(line + 276, "x>", 3);
	CHECK_INT(parse(line, &c), SMTP_PARSE_TOO_LONG);
}

/* ---- MAIL parameters ---- */

TEST(smtp_parse_mail_size)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@b> SIZE=12345", &c), SMTP_PARSE_OK);
	CHECK(c.has_size);
	CHECK_INT(c.size, 12345);
	CHECK_INT(parse("MAIL FROM:<a@b> size=0", &c), SMTP_PARSE_OK);
	CHECK(c.has_size);
	CHECK_INT(c.size, 0);
	CHECK_INT(parse("MAIL FROM:<a@b> SIZE=18446744073709551615", &c), SMTP_PARSE_OK);
	CHECK(c.size == UINT64_MAX);
	CHECK_INT(parse("MAIL FROM:<a@b> SIZE=00000000000000000001", &c), SMTP_PARSE_OK);
	CHECK_INT(c.size, 1);
	/* 20 digits is valid RFC 1870 syntax even past 2^64: saturates */
	CHECK_INT(parse("MAIL FROM:<a@b> SIZE=18446744073709551616", &c), SMTP_PARSE_OK);
	CHECK(c.size == UINT64_MAX);
	CHECK_INT(parse("MAIL FROM:<a@b> SIZE=99999999999999999999", &c), SMTP_PARSE_OK);
	CHECK(c.size == UINT64_MAX);
}

TEST(smtp_parse_mail_size_bad)
{
	static const char *const bad[] = {
		"MAIL FROM:<a@b> SIZE",
		"MAIL FROM:<a@b> SIZE=",
		"MAIL FROM:<a@b> SIZE=abc",
		"MAIL FROM:<a@b> SIZE=-1",
		"MAIL FROM:<a@b> SIZE=+1",
		"MAIL FROM:<a@b> SIZE=1k",
		"MAIL FROM:<a@b> SIZE=1.5",
		"MAIL FROM:<a@b> SIZE=99999999999999999999999",
		"MAIL FROM:<a@b> SIZE=000000000000000000001",
		"MAIL FROM:<a@b> SIZE=1 SIZE=1",
		"MAIL FROM:<a@b> SIZE=1 size=2",
		"MAIL FROM:<a@b> SIZE==1",
		"MAIL FROM:<a@b> SIZE=\xc3\xbc",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct smtp_cmd c;
		enum smtp_parse_error e = parse(bad[i], &c);
		if (e != SMTP_PARSE_BAD_PARAM)
			fprintf(stderr, "  case \"%s\": %d\n", bad[i], (int)e);
		CHECK_INT(e, SMTP_PARSE_BAD_PARAM);
		CHECK_INT(c.verb, SMTP_VERB_MAIL);
	}
}

TEST(smtp_parse_mail_body)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@b> BODY=7BIT", &c), SMTP_PARSE_OK);
	CHECK_INT(c.body, SMTP_BODY_7BIT);
	CHECK_INT(parse("MAIL FROM:<a@b> BODY=8BITMIME", &c), SMTP_PARSE_OK);
	CHECK_INT(c.body, SMTP_BODY_8BITMIME);
	CHECK_INT(parse("MAIL FROM:<a@b> body=8bitmime", &c), SMTP_PARSE_OK);
	CHECK_INT(c.body, SMTP_BODY_8BITMIME);
	CHECK_INT(parse("MAIL FROM:<a@b> BODY=BINARYMIME", &c), SMTP_PARSE_OK);
	CHECK_INT(c.body, SMTP_BODY_BINARYMIME);
	CHECK_INT(parse("MAIL FROM:<a@b> BODY", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("MAIL FROM:<a@b> BODY=", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("MAIL FROM:<a@b> BODY=8BIT", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("MAIL FROM:<a@b> BODY=8BITMIMEX", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("MAIL FROM:<a@b> BODY=7BIT BODY=7BIT", &c), SMTP_PARSE_BAD_PARAM);
}

TEST(smtp_parse_mail_smtputf8)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@b> SMTPUTF8", &c), SMTP_PARSE_OK);
	CHECK(c.smtputf8);
	CHECK_INT(parse("MAIL FROM:<a@b> smtputf8", &c), SMTP_PARSE_OK);
	CHECK(c.smtputf8);
	CHECK_INT(parse("MAIL FROM:<a@b> SMTPUTF8=", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("MAIL FROM:<a@b> SMTPUTF8=yes", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("MAIL FROM:<a@b> SMTPUTF8 SMTPUTF8", &c), SMTP_PARSE_BAD_PARAM);
}

TEST(smtp_parse_mail_requiretls)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@b> REQUIRETLS", &c), SMTP_PARSE_OK);
	CHECK(c.requiretls);
	CHECK_INT(parse("MAIL FROM:<> requiretls RET=HDRS", &c), SMTP_PARSE_OK);
	CHECK(c.requiretls);
	CHECK_INT(parse("MAIL FROM:<a@b>", &c), SMTP_PARSE_OK);
	CHECK(!c.requiretls);
	CHECK_INT(parse("MAIL FROM:<a@b> REQUIRETLS=YES", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("MAIL FROM:<a@b> REQUIRETLS REQUIRETLS", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("RCPT TO:<a@b> REQUIRETLS", &c), SMTP_PARSE_BAD_PARAM);
}

TEST(smtp_parse_mail_all_params)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME SMTPUTF8", &c), SMTP_PARSE_OK);
	CHECK(c.has_size);
	CHECK_INT(c.size, 10);
	CHECK_INT(c.body, SMTP_BODY_8BITMIME);
	CHECK(c.smtputf8);
	CHECK_INT(parse("MAIL FROM:<a@b>   SMTPUTF8   BODY=7BIT  SIZE=1 ", &c), SMTP_PARSE_OK);
	CHECK(c.smtputf8);
	CHECK_INT(c.body, SMTP_BODY_7BIT);
	CHECK_INT(c.size, 1);
}

TEST(smtp_parse_mail_unknown_params)
{
	static const char *const bad[] = {
		"MAIL FROM:<a@b> X-FOO",
		"MAIL FROM:<a@b> X-FOO=bar",
		"MAIL FROM:<a@b> NOTIFY=NEVER",
		"MAIL FROM:<a@b> ORCPT=rfc822;a@b",
		"MAIL FROM:<a@b> AUTH=<>",
		"MAIL FROM:<a@b> SIZE=1 AUTH=<>",
		"MAIL FROM:<a@b> -SIZE=1",
		"MAIL FROM:<a@b> =1",
		"MAIL FROM:<a@b> SI_ZE=1",
		"MAIL FROM:<a@b> \xc3\xbc",
		"MAIL FROM:<a@b> SIZE=1 BODY=7BIT SMTPUTF8 SIZE=2",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct smtp_cmd c;
		enum smtp_parse_error e = parse(bad[i], &c);
		if (e != SMTP_PARSE_BAD_PARAM)
			fprintf(stderr, "  case \"%s\": %d\n", bad[i], (int)e);
		CHECK_INT(e, SMTP_PARSE_BAD_PARAM);
		CHECK_INT(c.verb, SMTP_VERB_MAIL);
	}
}

/* ---- SMTPUTF8 addresses ---- */

TEST(smtp_parse_mail_utf8)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<\xc3\xbc@b.example>", &c), SMTP_PARSE_NEED_UTF8);
	CHECK_INT(c.verb, SMTP_VERB_MAIL);
	CHECK_INT(parse("MAIL FROM:<a@\xc3\xbc.example>", &c), SMTP_PARSE_NEED_UTF8);
	CHECK_INT(parse("MAIL FROM:<\xc3\xbc@b.example> SMTPUTF8", &c), SMTP_PARSE_OK);
	CHECK(c.smtputf8);
	CHECK(c.addr.has_utf8);
	CHECK_STR(c.addr.local, "\xc3\xbc");
	CHECK_INT(parse("MAIL FROM:<\xc3\xbc@b.example> SIZE=1 smtputf8", &c), SMTP_PARSE_OK);
	CHECK_INT(parse_utf8("MAIL FROM:<\xc3\xbc@b.example>", &c), SMTP_PARSE_OK);
	/* a route is checked too, although it is dropped */
	CHECK_INT(parse("MAIL FROM:<@\xc3\xbc.example:a@b>", &c), SMTP_PARSE_NEED_UTF8);
	CHECK_INT(parse("MAIL FROM:<@\xc3\xbc.example:a@b> SMTPUTF8", &c), SMTP_PARSE_OK);
	/* an ASCII address with SMTPUTF8 is fine */
	CHECK_INT(parse("MAIL FROM:<a@b> SMTPUTF8", &c), SMTP_PARSE_OK);
	CHECK(!c.addr.has_utf8);
}

TEST(smtp_parse_mail_invalid_utf8)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<\xc3@b.example>", &c), SMTP_PARSE_NEED_UTF8);
	CHECK_INT(parse("MAIL FROM:<\xff@b.example>", &c), SMTP_PARSE_NEED_UTF8);
	CHECK_INT(parse("MAIL FROM:<\xc3@b.example> SMTPUTF8", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("MAIL FROM:<\xc0\xaf@b.example> SMTPUTF8", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse_utf8("MAIL FROM:<\xed\xa0\x80@b.example>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(c.verb, SMTP_VERB_MAIL);
}

/* ---- RCPT ---- */

TEST(smtp_parse_rcpt_basic)
{
	struct smtp_cmd c;
	CHECK_INT(parse("RCPT TO:<u@d.example>", &c), SMTP_PARSE_OK);
	CHECK_INT(c.verb, SMTP_VERB_RCPT);
	CHECK_STR(c.addr.local, "u");
	CHECK_STR(c.addr.domain, "d.example");
	CHECK_INT(parse("rcpt to:<u@D.EXAMPLE>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.domain, "d.example");
	CHECK_INT(parse("RCPT TO: <u@d.example>", &c), SMTP_PARSE_OK);
	CHECK_INT(parse("RCPT TO:<u@d.example> ", &c), SMTP_PARSE_OK);
	CHECK_INT(parse("RCPT TO:<@a,@b:u@d.example>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.local, "u");
	CHECK_INT(parse("RCPT TO:<\"u\"@d.example>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.local, "u");
}

TEST(smtp_parse_rcpt_postmaster)
{
	struct smtp_cmd c;
	CHECK_INT(parse("RCPT TO:<postmaster>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.local, "postmaster");
	CHECK_STR(c.addr.domain, "");
	CHECK(!c.null_path);
	CHECK_INT(parse("RCPT TO:<PostMaster>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.local, "postmaster");
	CHECK_INT(parse("RCPT TO: <POSTMASTER> ", &c), SMTP_PARSE_OK);
	CHECK_INT(parse("RCPT TO:<postmaster@d.example>", &c), SMTP_PARSE_OK);
	CHECK_STR(c.addr.domain, "d.example");
	CHECK_INT(parse("RCPT TO:<postmaster> X=1", &c), SMTP_PARSE_BAD_PARAM);
	CHECK_INT(parse("RCPT TO:<postmaster>x", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse("RCPT TO:<postmaste>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("RCPT TO:<postmaster", &c), SMTP_PARSE_BAD_ADDR);
}

TEST(smtp_parse_rcpt_errors)
{
	struct smtp_cmd c;
	CHECK_INT(parse("RCPT TO:<>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(c.verb, SMTP_VERB_RCPT);
	CHECK_INT(parse("RCPT TO:<a@>", &c), SMTP_PARSE_BAD_ADDR);
	CHECK_INT(parse("RCPT", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_RCPT);
	CHECK_INT(parse("RCPT TO:", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse("RCPT TO:u@d", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse("RCPT TO:  <u@d>", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse("RCPT FROM:<u@d>", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse("RCPT TO :<u@d>", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse("RCPT TO:<u@d>NOTIFY=NEVER", &c), SMTP_PARSE_SYNTAX);
}

TEST(smtp_parse_rcpt_other_params)
{
	static const char *const bad[] = {
		"RCPT TO:<u@d> RET=FULL",
		"RCPT TO:<u@d> ENVID=x",
		"RCPT TO:<u@d> NOTIFY=NEVER X-FOO",
		"RCPT TO:<u@d> SIZE=1",
		"RCPT TO:<u@d> SMTPUTF8",
		"RCPT TO:<u@d> X",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct smtp_cmd c;
		CHECK_INT(parse(bad[i], &c), SMTP_PARSE_BAD_PARAM);
		CHECK_INT(c.verb, SMTP_VERB_RCPT);
	}
}

TEST(smtp_parse_rcpt_utf8)
{
	struct smtp_cmd c;
	CHECK_INT(parse("RCPT TO:<\xc3\xbc@d.example>", &c), SMTP_PARSE_NEED_UTF8);
	CHECK_INT(c.verb, SMTP_VERB_RCPT);
	CHECK_INT(parse_utf8("RCPT TO:<\xc3\xbc@d.example>", &c), SMTP_PARSE_OK);
	CHECK(c.addr.has_utf8);
	CHECK_INT(parse("RCPT TO:<\xc3@d.example>", &c), SMTP_PARSE_NEED_UTF8);
	CHECK_INT(parse_utf8("RCPT TO:<\xc3@d.example>", &c), SMTP_PARSE_BAD_ADDR);
	/* SMTPUTF8 is a MAIL parameter only */
	CHECK_INT(parse("RCPT TO:<\xc3\xbc@d.example> SMTPUTF8", &c), SMTP_PARSE_BAD_PARAM);
}

/* ---- DSN (RFC 3461) ---- */

TEST(smtp_parse_dsn_mail)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@b> RET=FULL ENVID=QQ314159", &c), SMTP_PARSE_OK);
	CHECK_INT(c.ret, SMTP_DSN_RET_FULL);
	CHECK_STR(c.envid, "QQ314159");
	CHECK_INT(parse("MAIL FROM:<a@b> ret=hdrs SIZE=5", &c), SMTP_PARSE_OK);
	CHECK_INT(c.ret, SMTP_DSN_RET_HDRS);
	CHECK_STR(c.envid, "");
	CHECK_INT(c.size, 5);
	/* xtext is kept as sent */
	CHECK_INT(parse("MAIL FROM:<> Envid=a+2Bb+20c", &c), SMTP_PARSE_OK);
	CHECK_STR(c.envid, "a+2Bb+20c");
	CHECK_INT(c.ret, SMTP_DSN_RET_NONE);
	/* exactly 100 characters is the limit */
	char line[256];
	memset(line, 'x', sizeof line);
	memcpy(line, "MAIL FROM:<a@b> ENVID=", 22);
	line[22 + 100] = '\0';
	CHECK_INT(parse(line, &c), SMTP_PARSE_OK);
	CHECK_INT(strlen(c.envid), 100);
	line[22 + 100] = 'x';
	line[22 + 101] = '\0';
	CHECK_INT(parse(line, &c), SMTP_PARSE_BAD_DSN);
	CHECK_INT(c.verb, SMTP_VERB_MAIL);

	static const char *const bad[] = {
		"MAIL FROM:<a@b> RET=FULL RET=FULL",
		"MAIL FROM:<a@b> RET=HDRS RET=FULL",
		"MAIL FROM:<a@b> RET=",
		"MAIL FROM:<a@b> RET",
		"MAIL FROM:<a@b> RET=ALL",
		"MAIL FROM:<a@b> RET=FULLY",
		"MAIL FROM:<a@b> ENVID=",
		"MAIL FROM:<a@b> ENVID",
		"MAIL FROM:<a@b> ENVID=a ENVID=a",
		"MAIL FROM:<a@b> ENVID=a+2",
		"MAIL FROM:<a@b> ENVID=a+",
		"MAIL FROM:<a@b> ENVID=a+2b",   /* lower-case hex */
		"MAIL FROM:<a@b> ENVID=a+GG",
		"MAIL FROM:<a@b> ENVID=a+0A",   /* decodes to a control */
		"MAIL FROM:<a@b> ENVID=a+80",   /* decodes to non-ASCII */
		"MAIL FROM:<a@b> ENVID=a=b",
		"MAIL FROM:<a@b> ENVID=\xc3\xbc",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum smtp_parse_error e = parse(bad[i], &c);
		if (e != SMTP_PARSE_BAD_DSN)
			fprintf(stderr, "  case \"%s\": %d\n", bad[i], (int)e);
		CHECK_INT(e, SMTP_PARSE_BAD_DSN);
		CHECK_INT(c.verb, SMTP_VERB_MAIL);
	}
}

TEST(smtp_parse_dsn_rcpt)
{
	struct smtp_cmd c;
	CHECK_INT(parse("RCPT TO:<u@d> NOTIFY=NEVER", &c), SMTP_PARSE_OK);
	CHECK_INT(c.notify, SMTP_DSN_NOTIFY_NEVER);
	CHECK_STR(c.orcpt, "");
	CHECK_INT(parse("RCPT TO:<u@d> notify=success,Failure,DELAY ORCPT=rfc822;u+2Bx@d", &c),
		  SMTP_PARSE_OK);
	CHECK_INT(c.notify,
		  SMTP_DSN_NOTIFY_SUCCESS | SMTP_DSN_NOTIFY_FAILURE | SMTP_DSN_NOTIFY_DELAY);
	CHECK_STR(c.orcpt, "rfc822;u+2Bx@d");
	CHECK_INT(parse("RCPT TO:<u@d> ORCPT=x-local;(a) NOTIFY=DELAY", &c), SMTP_PARSE_OK);
	CHECK_INT(c.notify, SMTP_DSN_NOTIFY_DELAY);
	CHECK_STR(c.orcpt, "x-local;(a)");
	CHECK_INT(parse("RCPT TO:<postmaster> NOTIFY=FAILURE", &c), SMTP_PARSE_OK);
	CHECK_INT(c.notify, SMTP_DSN_NOTIFY_FAILURE);
	CHECK_INT(parse("RCPT TO:<u@d>", &c), SMTP_PARSE_OK);
	CHECK_INT(c.notify, 0);
	/* ORCPT of exactly 500 characters is the limit */
	char line[700];
	memset(line, 'y', sizeof line);
	memcpy(line, "RCPT TO:<u@d> ORCPT=rfc822;", 27);
	line[20 + 500] = '\0';
	CHECK_INT(parse(line, &c), SMTP_PARSE_OK);
	CHECK_INT(strlen(c.orcpt), 500);
	line[20 + 500] = 'y';
	line[20 + 501] = '\0';
	CHECK_INT(parse(line, &c), SMTP_PARSE_BAD_DSN);

	static const char *const bad[] = {
		"RCPT TO:<u@d> NOTIFY=NEVER,SUCCESS",
		"RCPT TO:<u@d> NOTIFY=DELAY,NEVER",
		"RCPT TO:<u@d> NOTIFY=",
		"RCPT TO:<u@d> NOTIFY",
		"RCPT TO:<u@d> NOTIFY=SUCCESS,",
		"RCPT TO:<u@d> NOTIFY=,SUCCESS",
		"RCPT TO:<u@d> NOTIFY=SUCCESS,,DELAY",
		"RCPT TO:<u@d> NOTIFY=ALWAYS",
		"RCPT TO:<u@d> NOTIFY=NEVER NOTIFY=NEVER",
		"RCPT TO:<u@d> NOTIFY=SUCCESS NOTIFY=DELAY",
		"RCPT TO:<u@d> ORCPT=rfc822;u@d ORCPT=rfc822;u@d",
		"RCPT TO:<u@d> ORCPT=u@d",
		"RCPT TO:<u@d> ORCPT=;u@d",
		"RCPT TO:<u@d> ORCPT=rfc822;",
		"RCPT TO:<u@d> ORCPT=rfc822;u+4",
		"RCPT TO:<u@d> ORCPT=rfc822;u+00",
		"RCPT TO:<u@d> ORCPT=rfc\"822;u@d",
		"RCPT TO:<u@d> ORCPT",
		"RCPT TO:<u@d> ORCPT=rfc822;\xc3\xbc@d",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		enum smtp_parse_error e = parse(bad[i], &c);
		if (e != SMTP_PARSE_BAD_DSN)
			fprintf(stderr, "  case \"%s\": %d\n", bad[i], (int)e);
		CHECK_INT(e, SMTP_PARSE_BAD_DSN);
		CHECK_INT(c.verb, SMTP_VERB_RCPT);
	}
}

TEST(smtp_parse_xtext_decode)
{
	char out[16];
	CHECK_INT(smtp_parse_xtext_decode("a+2Bb+3D", 8, out, sizeof out), 4);
	CHECK_STR(out, "a+b=");
	CHECK_INT(smtp_parse_xtext_decode("", 0, out, sizeof out), 0);
	CHECK_STR(out, "");
	CHECK_INT(smtp_parse_xtext_decode("+20", 3, out, sizeof out), 1);
	CHECK_STR(out, " ");
	CHECK_INT(smtp_parse_xtext_decode("abcd", 4, out, 4), -1); /* does not fit */
	CHECK_INT(smtp_parse_xtext_decode("abc", 3, out, 4), 3);
	CHECK_INT(smtp_parse_xtext_decode("a+2", 3, out, sizeof out), -1);
	CHECK_INT(smtp_parse_xtext_decode("a b", 3, out, sizeof out), -1);
	CHECK_INT(smtp_parse_xtext_decode("+7F", 3, out, sizeof out), -1);
	/* reads only n bytes */
	CHECK_INT(smtp_parse_xtext_decode("ab+2B", 3, out, sizeof out), -1);
	CHECK_INT(smtp_parse_xtext_decode("ab+2B", 2, out, sizeof out), 2);
}

TEST(smtp_parse_prefixes_dsn)
{
	/* valid cuts: after the path and after RET=FULL (each with its
	 * blank), after "ENVID=Q" and "ENVID=Q+2B" but not inside "+2B" */
	static const size_t mail[] = {15, 16, 24, 25, 32, 35, 0};
	check_prefixes("MAIL FROM:<a@b> RET=FULL ENVID=Q+2BQ", false, mail);
	static const size_t rcpt[] = {13, 14, 0};
	check_prefixes("RCPT TO:<u@d> NOTIFY=NEVER", false, rcpt);
}

/* ---- Commands without arguments ---- */

TEST(smtp_parse_no_arg_verbs)
{
	static const struct {
		const char *name;
		enum smtp_verb verb;
	} v[] = {
		{"DATA", SMTP_VERB_DATA},
		{"RSET", SMTP_VERB_RSET},
		{"QUIT", SMTP_VERB_QUIT},
		{"STARTTLS", SMTP_VERB_STARTTLS},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct smtp_cmd c;
		char line[64];
		CHECK_INT(parse(v[i].name, &c), SMTP_PARSE_OK);
		CHECK_INT(c.verb, v[i].verb);
		CHECK(c.arg == NULL);
		snprintf(line, sizeof line, "%s  ", v[i].name);
		CHECK_INT(parse(line, &c), SMTP_PARSE_OK);
		snprintf(line, sizeof line, "%s x", v[i].name);
		CHECK_INT(parse(line, &c), SMTP_PARSE_SYNTAX);
		CHECK_INT(c.verb, v[i].verb);
		/* lower case */
		size_t k;
		for (k = 0; v[i].name[k] != '\0'; k++)
			line[k] = (char)(v[i].name[k] | 0x20);
		line[k] = '\0';
		CHECK_INT(parse(line, &c), SMTP_PARSE_OK);
		CHECK_INT(c.verb, v[i].verb);
	}
}

/* ---- Commands with optional arguments ---- */

TEST(smtp_parse_optional_arg_verbs)
{
	static const struct {
		const char *name;
		enum smtp_verb verb;
	} v[] = {
		{"NOOP", SMTP_VERB_NOOP},
		{"HELP", SMTP_VERB_HELP},
		{"VRFY", SMTP_VERB_VRFY},
		{"EXPN", SMTP_VERB_EXPN},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct smtp_cmd c;
		char line[64];
		CHECK_INT(parse(v[i].name, &c), SMTP_PARSE_OK);
		CHECK_INT(c.verb, v[i].verb);
		CHECK(c.arg == NULL);
		CHECK_INT(c.arg_len, 0);
		snprintf(line, sizeof line, "%s ", v[i].name);
		CHECK_INT(parse(line, &c), SMTP_PARSE_OK);
		CHECK(c.arg == NULL);
		snprintf(line, sizeof line, "%s some  thing <x@y> ", v[i].name);
		CHECK_INT(parse(line, &c), SMTP_PARSE_OK);
		CHECK_INT(c.verb, v[i].verb);
		CHECK_STR(arg_of(&c), "some  thing <x@y>");
	}
}

/* ---- BDAT ---- */

TEST(smtp_parse_bdat)
{
	struct smtp_cmd c;
	CHECK_INT(parse("BDAT 1000", &c), SMTP_PARSE_OK);
	CHECK_INT(c.verb, SMTP_VERB_BDAT);
	CHECK_INT(c.chunk_size, 1000);
	CHECK(!c.last);
	CHECK_INT(parse("BDAT 0 LAST", &c), SMTP_PARSE_OK);
	CHECK_INT(c.chunk_size, 0);
	CHECK(c.last);
	CHECK_INT(parse("bdat 12 last", &c), SMTP_PARSE_OK);
	CHECK(c.last);
	CHECK_INT(parse("BDAT 12 Last ", &c), SMTP_PARSE_OK);
	CHECK(c.last);
	CHECK_INT(parse("BDAT 18446744073709551615", &c), SMTP_PARSE_OK);
	CHECK(c.chunk_size == UINT64_MAX);
}

TEST(smtp_parse_bdat_bad)
{
	static const char *const bad[] = {
		"BDAT",
		"BDAT ",
		"BDAT x",
		"BDAT -1",
		"BDAT +1",
		"BDAT 1x",
		"BDAT 1 LASTX",
		"BDAT 1 LAS",
		"BDAT 1 LAST x",
		"BDAT 1 2",
		"BDAT LAST",
		"BDAT 18446744073709551616",
		"BDAT 99999999999999999999999",
		"BDAT 99999999999999999999999 LAST",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct smtp_cmd c;
		enum smtp_parse_error e = parse(bad[i], &c);
		if (e != SMTP_PARSE_SYNTAX)
			fprintf(stderr, "  case \"%s\": %d\n", bad[i], (int)e);
		CHECK_INT(e, SMTP_PARSE_SYNTAX);
		CHECK_INT(c.verb, SMTP_VERB_BDAT);
	}
}

/* ---- AUTH ---- */

TEST(smtp_parse_auth)
{
	struct smtp_cmd c;
	CHECK_INT(parse("AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", &c), SMTP_PARSE_OK);
	CHECK_INT(c.verb, SMTP_VERB_AUTH);
	CHECK_STR(arg_of(&c), "PLAIN dGVzdAB0ZXN0AHRlc3Q=");
	CHECK_INT(parse("auth LOGIN", &c), SMTP_PARSE_OK);
	CHECK_STR(arg_of(&c), "LOGIN");
	CHECK_INT(parse("AUTH PLAIN =", &c), SMTP_PARSE_OK);
	CHECK_STR(arg_of(&c), "PLAIN =");
	CHECK_INT(parse("AUTH", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_AUTH);
	CHECK_INT(parse("AUTH ", &c), SMTP_PARSE_SYNTAX);
}

/* ---- Unknown verbs and bad bytes ---- */

TEST(smtp_parse_unknown)
{
	static const char *const bad[] = {
		"", " ", "FOO", "FOO bar", "MAILFROM:<a@b>", " HELO x", "HELOx",
		"HEL", "DATAX", "STARTTLSX", "\xc3\xbc", "MAIL:FROM:<a@b>", "QUIT\tnow",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct smtp_cmd c;
		enum smtp_parse_error e = parse(bad[i], &c);
		if (e != SMTP_PARSE_UNKNOWN)
			fprintf(stderr, "  case \"%s\": %d\n", bad[i], (int)e);
		CHECK_INT(e, SMTP_PARSE_UNKNOWN);
		CHECK_INT(c.verb, SMTP_VERB_UNKNOWN);
	}
}

TEST(smtp_parse_nul_and_line_ends)
{
	struct smtp_cmd c;
	CHECK_INT(parse_n("HELO a\0b", 8, false, &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_HELO);
	CHECK_INT(parse_n("DATA\0", 5, false, &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_DATA);
	CHECK_INT(parse_n("DA\0TA", 5, false, &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_UNKNOWN);
	CHECK_INT(parse_n("\0", 1, false, &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse_n("MAIL FROM:<a@b> SIZE=1\0", 23, false, &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_MAIL);
	CHECK_INT(parse_n("NOOP \0", 6, false, &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse("HELO a\rb", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(c.verb, SMTP_VERB_HELO);
	CHECK_INT(parse("QUIT\r", &c), SMTP_PARSE_SYNTAX);
	CHECK_INT(parse("NOOP\n", &c), SMTP_PARSE_SYNTAX);
}

TEST(smtp_parse_resets_cmd)
{
	struct smtp_cmd c;
	CHECK_INT(parse("MAIL FROM:<a@b> SIZE=5 BODY=8BITMIME SMTPUTF8", &c), SMTP_PARSE_OK);
	CHECK_INT(parse("RSET", &c), SMTP_PARSE_OK);
	CHECK(!c.has_size);
	CHECK_INT(c.body, SMTP_BODY_DEFAULT);
	CHECK(!c.smtputf8);
	CHECK_STR(c.addr.local, "");
	CHECK(c.arg == NULL);
}

/* ---- Truncated lines ---- */

TEST(smtp_parse_prefixes_mail)
{
	const char *line = "MAIL FROM:<a@b.c> SIZE=100 BODY=8BITMIME";
	/* valid cuts: after the path (and its blank), inside the SIZE
	 * digits, after SIZE's digits (and their blank) */
	static const size_t valid[] = {17, 18, 24, 25, 26, 27, 0};
	check_prefixes(line, false, valid);
	static const size_t valid_null[] = {12, 13, 0};
	check_prefixes("MAIL FROM:<> SMTPUTF8", false, valid_null);
	static const size_t valid_route[] = {0};
	check_prefixes("MAIL FROM: <@r.example:\"q\\\"x\"@[IPv6:::1]>", false, valid_route);
}

TEST(smtp_parse_prefixes_rcpt)
{
	static const size_t none[] = {0};
	check_prefixes("RCPT TO:<u@d.example>", false, none);
	check_prefixes("RCPT TO:<postmaster>", false, none);
	check_prefixes("RCPT TO:<\xc3\xbc@\xe4\xbe\x8b.example>", true, none);
}

TEST(smtp_parse_prefixes_others)
{
	static const size_t none[] = {0};
	check_prefixes("DATA", false, none);
	check_prefixes("STARTTLS", false, none);
	static const size_t ehlo[] = {6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 0};
	check_prefixes("EHLO mx.example.com", false, ehlo);
	static const size_t bdat[] = {6, 7, 8, 9, 0};
	check_prefixes("BDAT 123 LAST", false, bdat);
	static const size_t noop[] = {4, 5, 6, 7, 0};
	check_prefixes("NOOP abc", false, noop);
	static const size_t auth[] = {6, 7, 8, 9, 10, 11, 12, 13, 0};
	check_prefixes("AUTH PLAIN abc", false, auth);
}

TEST(smtp_parse_utf8_flag_only_widens)
{
	/* Any line the parser accepts without UTF-8 permission it also
	 * accepts with it, with the same result. */
	static const char *const lines[] = {
		"MAIL FROM:<a@b> SIZE=1",
		"RCPT TO:<postmaster>",
		"RCPT TO:<\"x y\"@[1.2.3.4]>",
		"EHLO x",
		"BDAT 5 LAST",
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		struct smtp_cmd a, b;
		CHECK_INT(parse(lines[i], &a), SMTP_PARSE_OK);
		CHECK_INT(parse_utf8(lines[i], &b), SMTP_PARSE_OK);
		CHECK_INT(a.verb, b.verb);
		CHECK_STR(a.addr.local, b.addr.local);
		CHECK_STR(a.addr.domain, b.addr.domain);
	}
}

/* ------------------------------------------ header address lists (From:) */

/* Parses s (copied to an exact-size heap block) and returns the count;
 * the addresses formatted and joined with ' ' go to out. */
static int addr_list(const char *s, char *out, size_t outsz)
{
	size_t n = strlen(s);
	char *p = malloc(n > 0 ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, s, n);
	struct addr a[SMTP_MAX_HEADER_ADDRS];
	int r = smtp_parse_address_list(p, n, a, SMTP_MAX_HEADER_ADDRS);
	free(p);
	out[0] = '\0';
	size_t o = 0;
	for (int i = 0; i < r; i++) {
		char one[ADDR_PATH_MAX + 1];
		if (addr_format(&a[i], one, sizeof one) < 0)
			return -2;
		int w = snprintf(out + o, outsz - o, "%s%s", i ? " " : "", one);
		if (w < 0 || (size_t)w >= outsz - o)
			return -2;
		o += (size_t)w;
	}
	return r;
}

TEST(smtp_parse_address_list_forms)
{
	char out[2048];
	static const struct {
		const char *in;
		int count;
		const char *want;
	} ok[] = {
		{"alice@example.test", 1, "alice@example.test"},
		{" Alice <alice@Example.TEST>", 1, "alice@example.test"},
		{"\"Doe, John\" <john@x.example>, bob@y.example", 2, "john@x.example bob@y.example"},
		{"(comment (nested) \\) ) a@b.example (trailing)", 1, "a@b.example"},
		{"Team: a@x.example, \"B\" <b@y.example>;, c@z.example", 3,
		 "a@x.example b@y.example c@z.example"},
		{"<@relay.example,@other.example:a@b.example>", 1, "a@b.example"},
		{"\"quoted local\"@b.example", 1, "\"quoted local\"@b.example"},
		{"a@[192.0.2.1]", 1, "a@[192.0.2.1]"},
		{"Alice\r\n <alice@example.test>", 1, "alice@example.test"},
		{"a@x.example,,b@y.example", 2, "a@x.example b@y.example"},
		{"", 0, ""},
		{"Group:;", 0, ""},
		{"=?utf-8?q?J=C3=B6rg?= <j@x.example>", 1, "j@x.example"},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		CHECK_INT(addr_list(ok[i].in, out, sizeof out), ok[i].count);
		CHECK_STR(out, ok[i].want);
	}
	static const char *const bad[] = {
		"<a@b.example",          /* unclosed angle */
		"a@b.example>",          /* stray close */
		"\"unclosed@b.example",  /* unclosed quote */
		"(unclosed a@b.example", /* unclosed comment */
		"<>",                    /* no address */
		"Alice <a@b.example> <c@d.example>",
		"not an address",
		"a@b.example, junk",
		"A: B: a@b.example;", /* nested group */
		"a@b.example;",       /* ';' outside a group */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(addr_list(bad[i], out, sizeof out), -1);
}

TEST(smtp_parse_address_list_bounds)
{
	/* more than max addresses: refused, not truncated */
	char big[SMTP_MAX_HEADER_ADDRS * 16 + 64];
	size_t o = 0;
	for (int i = 0; i <= SMTP_MAX_HEADER_ADDRS; i++)
		o += (size_t)snprintf(big + o, sizeof big - o, "%sa%d@b.example", i ? "," : "", i);
	char out[4096];
	CHECK_INT(addr_list(big, out, sizeof out), -1);
	/* an over-long element is refused (and never overflows) */
	char longest[2000];
	memset(longest, 'a', sizeof longest - 1);
	longest[sizeof longest - 1] = '\0';
	CHECK_INT(addr_list(longest, out, sizeof out), -1);
	/* every prefix of a valid list parses or fails cleanly */
	const char *full = "\"Doe, J\" (c) <j@x.example>, Team: a@y.example;";
	for (size_t n = 0; n <= strlen(full); n++) {
		char *p = malloc(n > 0 ? n : 1);
		if (p == NULL)
			abort();
		memcpy(p, full, n);
		struct addr a[SMTP_MAX_HEADER_ADDRS];
		int r = smtp_parse_address_list(p, n, a, SMTP_MAX_HEADER_ADDRS);
		CHECK(r >= -1 && r <= 2);
		free(p);
	}
}
