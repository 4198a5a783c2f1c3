/*
 * test-pop3-parse.c - unit tests for src/pop3/pop3-parse.c (one POP3
 * command line, base64, SASL PLAIN).  Inputs are copied into heap blocks
 * of exactly their length so that ASan sees any read past the end.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-parse.h"
#include "test.h"

/* Parses a copy of s[0..n); the arguments are moved back into s so they
 * stay valid after the copy is freed. */
static enum pop3_parse_error parse_n(const char *s, size_t n, struct pop3_cmd *c)
{
	char *p = malloc(n > 0 ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, s, n);
	enum pop3_parse_error e = pop3_parse_command(p, n, c);
	for (size_t i = 0; i < c->n_args; i++) {
		if (c->arg[i] < p || c->arg[i] + c->arg_len[i] > p + n)
			test_fail(__FILE__, __LINE__, "argument outside the line");
		c->arg[i] = s + (c->arg[i] - p);
	}
	free(p);
	return e;
}

static enum pop3_parse_error parse(const char *s, struct pop3_cmd *c)
{
	return parse_n(s, strlen(s), c);
}

static const char *arg(const struct pop3_cmd *c, size_t i)
{
	static char buf[2][512];
	if (i >= c->n_args)
		return "(none)";
	size_t n = c->arg_len[i] < sizeof buf[i] - 1 ? c->arg_len[i] : sizeof buf[i] - 1;
	memcpy(buf[i], c->arg[i], n);
	buf[i][n] = '\0';
	return buf[i];
}

TEST(pop3_parse_simple_verbs)
{
	static const struct {
		const char *line;
		enum pop3_verb verb;
	} ok[] = {
	    {"CAPA", POP3_VERB_CAPA},  {"capa", POP3_VERB_CAPA}, {"StAt", POP3_VERB_STAT},
	    {"NOOP", POP3_VERB_NOOP},  {"RSET", POP3_VERB_RSET}, {"QUIT", POP3_VERB_QUIT},
	    {"quit ", POP3_VERB_QUIT}, {"LIST", POP3_VERB_LIST}, {"uidl", POP3_VERB_UIDL},
	    {"STLS", POP3_VERB_STLS},  {"UTF8", POP3_VERB_UTF8}, {"AUTH", POP3_VERB_AUTH},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		struct pop3_cmd c;
		CHECK_INT(parse(ok[i].line, &c), POP3_PARSE_OK);
		CHECK_INT(c.verb, ok[i].verb);
		CHECK_INT(c.n_args, 0);
	}
}

TEST(pop3_parse_unknown_and_empty)
{
	struct pop3_cmd c;
	CHECK_INT(parse("", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("FOO", &c), POP3_PARSE_UNKNOWN);
	CHECK_INT(c.verb, POP3_VERB_UNKNOWN);
	CHECK_INT(parse(" STAT", &c), POP3_PARSE_UNKNOWN);
	CHECK_INT(parse("STATX", &c), POP3_PARSE_UNKNOWN);
	CHECK_INT(parse("STA", &c), POP3_PARSE_UNKNOWN);
	CHECK_INT(parse("RETR1", &c), POP3_PARSE_UNKNOWN);
	CHECK_INT(parse("STAT\t", &c), POP3_PARSE_UNKNOWN);
	CHECK_INT(parse_n("STAT\0", 5, &c), POP3_PARSE_UNKNOWN);
}

TEST(pop3_parse_no_args_allowed)
{
	struct pop3_cmd c;
	CHECK_INT(parse("STAT 1", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(c.verb, POP3_VERB_STAT);
	CHECK_INT(parse("QUIT now", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("CAPA x", &c), POP3_PARSE_SYNTAX);
}

TEST(pop3_parse_numbers)
{
	struct pop3_cmd c;
	CHECK_INT(parse("RETR 1", &c), POP3_PARSE_OK);
	CHECK_INT(c.verb, POP3_VERB_RETR);
	CHECK_INT(c.n_args, 1);
	CHECK_INT(c.num[0], 1);
	CHECK_INT(parse("dele 42", &c), POP3_PARSE_OK);
	CHECK_INT(c.num[0], 42);
	CHECK_INT(parse("LIST 7", &c), POP3_PARSE_OK);
	CHECK_INT(c.num[0], 7);
	CHECK_INT(parse("UIDL 0", &c), POP3_PARSE_OK);
	CHECK_INT(c.num[0], 0);
	CHECK_INT(parse("TOP 3 0", &c), POP3_PARSE_OK);
	CHECK_INT(c.verb, POP3_VERB_TOP);
	CHECK_INT(c.n_args, 2);
	CHECK_INT(c.num[0], 3);
	CHECK_INT(c.num[1], 0);
	CHECK_INT(parse("TOP  3   10  ", &c), POP3_PARSE_OK);
	CHECK_INT(c.num[1], 10);
	CHECK(c.num[0] == 3);
	CHECK_INT(parse("RETR 18446744073709551615", &c), POP3_PARSE_OK);
	CHECK(c.num[0] == UINT64_MAX);
}

TEST(pop3_parse_bad_numbers)
{
	struct pop3_cmd c;
	CHECK_INT(parse("RETR x", &c), POP3_PARSE_BAD_NUMBER);
	CHECK_INT(c.verb, POP3_VERB_RETR);
	CHECK_INT(parse("RETR -1", &c), POP3_PARSE_BAD_NUMBER);
	CHECK_INT(parse("RETR +1", &c), POP3_PARSE_BAD_NUMBER);
	CHECK_INT(parse("RETR 1x", &c), POP3_PARSE_BAD_NUMBER);
	CHECK_INT(parse("RETR 18446744073709551616", &c), POP3_PARSE_BAD_NUMBER);
	CHECK_INT(parse("RETR 99999999999999999999999", &c), POP3_PARSE_BAD_NUMBER);
	CHECK_INT(parse("TOP 1 a", &c), POP3_PARSE_BAD_NUMBER);
	CHECK_INT(parse("DELE 1.5", &c), POP3_PARSE_BAD_NUMBER);
	CHECK_INT(parse("LIST one", &c), POP3_PARSE_BAD_NUMBER);
}

TEST(pop3_parse_arg_counts)
{
	struct pop3_cmd c;
	CHECK_INT(parse("RETR", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("RETR ", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("RETR 1 2", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("DELE", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("TOP 1", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("TOP 1 2 3", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("LIST 1 2", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("AUTH a b c", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("APOP user", &c), POP3_PARSE_SYNTAX);
}

TEST(pop3_parse_user_pass_rest_of_line)
{
	struct pop3_cmd c;
	CHECK_INT(parse("USER alice@example.test", &c), POP3_PARSE_OK);
	CHECK_INT(c.verb, POP3_VERB_USER);
	CHECK_STR(arg(&c, 0), "alice@example.test");
	CHECK_INT(parse("PASS pass with  spaces ", &c), POP3_PARSE_OK);
	CHECK_INT(c.verb, POP3_VERB_PASS);
	CHECK_INT(c.n_args, 1);
	CHECK_STR(arg(&c, 0), "pass with  spaces ");
	CHECK_INT(parse("pass  x", &c), POP3_PARSE_OK);
	CHECK_STR(arg(&c, 0), " x");
	CHECK_INT(parse("PASS", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("PASS ", &c), POP3_PARSE_SYNTAX);
	CHECK_INT(parse("USER", &c), POP3_PARSE_SYNTAX);
}

TEST(pop3_parse_auth)
{
	struct pop3_cmd c;
	CHECK_INT(parse("AUTH PLAIN", &c), POP3_PARSE_OK);
	CHECK_INT(c.n_args, 1);
	CHECK_STR(arg(&c, 0), "PLAIN");
	CHECK_INT(parse("auth plain AGFsaWNlAHNlY3JldA==", &c), POP3_PARSE_OK);
	CHECK_INT(c.n_args, 2);
	CHECK_STR(arg(&c, 1), "AGFsaWNlAHNlY3JldA==");
	CHECK_INT(parse("AUTH PLAIN =", &c), POP3_PARSE_OK);
	CHECK_STR(arg(&c, 1), "=");
}

/* Every prefix of a valid line parses or fails without reading past it;
 * whole lines fed one byte longer at a time behave like parse(). */
TEST(pop3_parse_prefixes)
{
	static const char *lines[] = {"TOP 12 345", "PASS a b c", "AUTH PLAIN AHUAcA==", "UIDL 99",
				      "USER x@y.z"};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		size_t n = strlen(lines[i]);
		for (size_t k = 0; k <= n; k++) {
			struct pop3_cmd c;
			enum pop3_parse_error e = parse_n(lines[i], k, &c);
			CHECK(e == POP3_PARSE_OK || e == POP3_PARSE_SYNTAX ||
			      e == POP3_PARSE_UNKNOWN);
			if (k == n)
				CHECK_INT(e, POP3_PARSE_OK);
		}
	}
}

static int b64(const char *s, char *out, size_t outsz, size_t *len)
{
	size_t n = strlen(s);
	char *p = calloc(1, n > 0 ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, s, n);
	int r = pop3_parse_base64(p, n, (unsigned char *)out, outsz, len);
	free(p);
	return r;
}

TEST(pop3_base64_valid)
{
	char out[64];
	size_t len = 99;
	CHECK_INT(b64("", out, sizeof out, &len), 0);
	CHECK_INT(len, 0);
	CHECK_INT(b64("Zg==", out, sizeof out, &len), 0);
	CHECK_INT(len, 1);
	CHECK(memcmp(out, "f", 1) == 0);
	CHECK_INT(b64("Zm8=", out, sizeof out, &len), 0);
	CHECK_INT(len, 2);
	CHECK(memcmp(out, "fo", 2) == 0);
	CHECK_INT(b64("Zm9vYmFy", out, sizeof out, &len), 0);
	CHECK_INT(len, 6);
	CHECK(memcmp(out, "foobar", 6) == 0);
	CHECK_INT(b64("AGFsaWNlAHNlY3JldA==", out, sizeof out, &len), 0);
	CHECK_INT(len, 13);
	CHECK(memcmp(out, "\0alice\0secret", 13) == 0);
	CHECK_INT(b64("+/+/", out, sizeof out, &len), 0);
	CHECK_INT(len, 3);
}

TEST(pop3_base64_invalid)
{
	char out[64];
	size_t len;
	CHECK_INT(b64("Zg=", out, sizeof out, &len), -1); /* not a multiple of 4 */
	CHECK_INT(b64("Zg", out, sizeof out, &len), -1);
	CHECK_INT(b64("Z===", out, sizeof out, &len), -1); /* too much padding */
	CHECK_INT(b64("====", out, sizeof out, &len), -1);
	CHECK_INT(b64("Zg==Zg==", out, sizeof out, &len), -1); /* padding inside */
	CHECK_INT(b64("Zm=v", out, sizeof out, &len), -1);     /* data after '=' */
	CHECK_INT(b64("Zh==", out, sizeof out, &len), -1);     /* non-zero leftover bits */
	CHECK_INT(b64("Zm9=", out, sizeof out, &len), -1);     /* "fo" + stray bits */
	CHECK_INT(b64("Zm9", out, sizeof out, &len), -1);
	CHECK_INT(b64("Zm-v", out, sizeof out, &len), -1); /* base64url is not base64 */
	CHECK_INT(b64("Zm 9", out, sizeof out, &len), -1);
	CHECK_INT(b64("Zm9vYmFy", out, 5, &len), -1); /* does not fit */
	CHECK_INT(b64("Zm9vYmFy", out, 6, &len), 0);
}

static int plain(const char *s, size_t n, struct pop3_plain *p)
{
	unsigned char *m = malloc(n > 0 ? n : 1);
	if (m == NULL)
		abort();
	memcpy(m, s, n);
	int r = pop3_parse_plain(m, n, p);
	free(m);
	return r;
}

TEST(pop3_plain)
{
	struct pop3_plain p;
	CHECK_INT(plain("\0alice\0secret", 13, &p), 0);
	CHECK_INT(p.authzid_len, 0);
	CHECK_INT(p.authcid_len, 5);
	CHECK_INT(p.passwd_len, 6);
	CHECK_INT(plain("alice\0alice\0pw", 14, &p), 0);
	CHECK_INT(p.authzid_len, 5);
	CHECK_INT(p.passwd_len, 2);
	CHECK_INT(plain("", 0, &p), -1);
	CHECK_INT(plain("alice", 5, &p), -1);
	CHECK_INT(plain("\0alice", 6, &p), -1);
	CHECK_INT(plain("\0alice\0", 7, &p), -1); /* empty password */
	CHECK_INT(plain("\0\0pw", 4, &p), -1);    /* empty user */
	CHECK_INT(plain("\0a\0b\0c", 6, &p), -1); /* a third NUL */
	char big[300];
	memset(big, 'x', sizeof big);
	big[0] = '\0';
	big[2] = '\0';
	CHECK_INT(plain(big, sizeof big, &p), -1); /* password of 297 octets */
	CHECK_INT(plain(big, 258, &p), 0);         /* 255 octets */
}
