/*
 * test-addr.c - unit tests for src/mail/addr.c (RFC 5321 / RFC 6531 paths).
 *
 * Every input is copied into a heap block of exactly its length, so that
 * ASan catches a parser reading one byte past the end.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "test.h"

static char *exact_copy(const char *s, size_t n)
{
	char *p = calloc(1, n > 0 ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, s, n);
	return p;
}

static enum addr_error mbox_n(const char *s, size_t n, bool utf8, struct addr *a)
{
	char *p = exact_copy(s, n);
	enum addr_error e = addr_parse_mailbox(p, n, utf8, a);
	free(p);
	return e;
}

static enum addr_error mbox(const char *s, bool utf8, struct addr *a)
{
	return mbox_n(s, strlen(s), utf8, a);
}

static enum addr_error path_n(const char *s, size_t n, bool utf8, bool allow_null,
			      struct addr *a, bool *is_null, size_t *consumed)
{
	char *p = exact_copy(s, n);
	enum addr_error e = addr_parse_path(p, n, utf8, allow_null, a, is_null, consumed);
	free(p);
	return e;
}

static enum addr_error path(const char *s, bool utf8, bool allow_null, struct addr *a,
			    size_t *consumed)
{
	bool is_null;
	return path_n(s, strlen(s), utf8, allow_null, a, &is_null, consumed);
}

/* Fills buf with a domain of exactly len octets: labels of 63 'a's. */
static void make_domain(char *buf, size_t len)
{
	memset(buf, 'a', len);
	for (size_t i = 63; i + 1 < len; i += 64)
		buf[i] = '.';
	buf[len] = '\0';
}

/* ---- Dot-string local parts and plain domains ---- */

TEST(addr_simple_mailbox)
{
	struct addr a;
	CHECK_INT(mbox("user@example.com", false, &a), ADDR_OK);
	CHECK_STR(a.local, "user");
	CHECK_STR(a.domain, "example.com");
	CHECK(!a.domain_is_literal);
	CHECK(!a.has_utf8);
}

TEST(addr_domain_lowercased_local_kept)
{
	struct addr a;
	CHECK_INT(mbox("John.Smith@EXAMPLE.Com", false, &a), ADDR_OK);
	CHECK_STR(a.local, "John.Smith");
	CHECK_STR(a.domain, "example.com");
}

TEST(addr_atext_specials)
{
	struct addr a;
	CHECK_INT(mbox("!#$%&'*+-/=?^_`{|}~@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "!#$%&'*+-/=?^_`{|}~");
	CHECK_INT(mbox("a.b.c.d@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "a.b.c.d");
	CHECK_INT(mbox("user+tag@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "user+tag");
}

TEST(addr_bad_dot_strings)
{
	struct addr a;
	CHECK_INT(mbox(".user@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("user.@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("us..er@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("us er@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("us(er)@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("us,er@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("us\ter@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("user", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("user@", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("user@@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@b@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox_n("us\0er@x.org", 11, false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox_n("user@x.org\0", 11, false, &a), ADDR_ERR_SYNTAX);
}

TEST(addr_error_clears_out)
{
	struct addr a;
	CHECK_INT(mbox("user@x.org", false, &a), ADDR_OK);
	CHECK_INT(mbox("user@x.org.", false, &a), ADDR_ERR_SYNTAX);
	CHECK_STR(a.local, "");
	CHECK_STR(a.domain, "");
}

TEST(addr_domain_syntax)
{
	struct addr a;
	CHECK_INT(mbox("a@ex-am-ple.com", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@x--y.com", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@localhost", false, &a), ADDR_OK);
	CHECK_STR(a.domain, "localhost");
	CHECK_INT(mbox("a@123.45", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@1.2.3.4", false, &a), ADDR_OK); /* a name, not a literal */
	CHECK(!a.domain_is_literal);
	CHECK_INT(mbox("a@-ex.com", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@ex-.com", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@ex.-com", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@ex..com", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@.ex.com", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@ex.com.", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@ex_ample.com", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@ex ample.com", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@.", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@-", false, &a), ADDR_ERR_SYNTAX);
}

/* ---- Quoted-string local parts ---- */

TEST(addr_quoted_unquoted_when_dot_string)
{
	struct addr a;
	CHECK_INT(mbox("\"john\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "john");
	CHECK_INT(mbox("\"john.smith\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "john.smith");
	/* a needless escape goes too */
	CHECK_INT(mbox("\"jo\\hn\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "john");
}

TEST(addr_quoted_kept_with_spaces)
{
	struct addr a;
	CHECK_INT(mbox("\"john doe\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"john doe\"");
	CHECK_INT(mbox("\"a\\ b\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"a b\"");
	CHECK_INT(mbox("\" \"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\" \"");
	CHECK_INT(mbox("\"\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"\"");
}

TEST(addr_quoted_not_dot_strings)
{
	struct addr a;
	CHECK_INT(mbox("\".john\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\".john\"");
	CHECK_INT(mbox("\"a..b\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"a..b\"");
	CHECK_INT(mbox("\"a@b\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"a@b\"");
	CHECK_INT(mbox("\"(x)\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"(x)\"");
}

TEST(addr_quoted_escapes_minimal)
{
	struct addr a;
	/* "a\"b" keeps its needed escape */
	CHECK_INT(mbox("\"a\\\"b\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"a\\\"b\"");
	/* "a\\b" keeps the escaped backslash */
	CHECK_INT(mbox("\"a\\\\b\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"a\\\\b\"");
	/* "a\ \,b": only the comma forces quoting, the escapes go */
	CHECK_INT(mbox("\"a\\ \\,b\"@x.org", false, &a), ADDR_OK);
	CHECK_STR(a.local, "\"a ,b\"");
}

TEST(addr_quoted_bad)
{
	struct addr a;
	CHECK_INT(mbox("\"john@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"john\"x@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("x\"john\"@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"jo\thn\"@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"jo\\\thn\"@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"john\\\"@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"john\\", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"\x7f\"@x.org", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox_n("\"a\0b\"@x.org", 11, false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"a\"", false, &a), ADDR_ERR_SYNTAX);
}

TEST(addr_quoted_utf8)
{
	struct addr a;
	CHECK_INT(mbox("\"j\xc3\xbcrgen m\"@x.org", true, &a), ADDR_OK);
	CHECK_STR(a.local, "\"j\xc3\xbcrgen m\"");
	CHECK(a.has_utf8);
	CHECK_INT(mbox("\"j\xc3\xbcrgen\"@x.org", true, &a), ADDR_OK);
	CHECK_STR(a.local, "j\xc3\xbcrgen");
	CHECK_INT(mbox("\"j\xc3\xbcrgen m\"@x.org", false, &a), ADDR_ERR_UTF8);
	/* quoted-pairSMTP is not widened by RFC 6531 */
	CHECK_INT(mbox("\"j\\\xc3\xbc\"@x.org", true, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("\"j\xc3\"@x.org", true, &a), ADDR_ERR_UTF8);
}

/* ---- Address literals ---- */

TEST(addr_ipv4_literal)
{
	struct addr a;
	CHECK_INT(mbox("a@[192.168.0.1]", false, &a), ADDR_OK);
	CHECK_STR(a.domain, "[192.168.0.1]");
	CHECK(a.domain_is_literal);
	CHECK_INT(mbox("a@[0.0.0.0]", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@[255.255.255.255]", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@[1.2.3.004]", false, &a), ADDR_OK);
}

TEST(addr_ipv4_literal_bad)
{
	struct addr a;
	CHECK_INT(mbox("a@[256.1.1.1]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.256]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.999]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.0004]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.4.5]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1..2.3]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.4.]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[.1.2.3.4]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.-4]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.4", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.4]x", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[1.2.3.4].com", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[ 1.2.3.4]", false, &a), ADDR_ERR_SYNTAX);
}

TEST(addr_ipv6_literal)
{
	struct addr a;
	CHECK_INT(mbox("a@[IPv6:::1]", false, &a), ADDR_OK);
	CHECK_STR(a.domain, "[IPv6:::1]");
	CHECK(a.domain_is_literal);
	CHECK_INT(mbox("a@[IPv6:2001:db8::1]", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@[ipv6:2001:DB8::1]", false, &a), ADDR_OK);
	CHECK_STR(a.domain, "[ipv6:2001:DB8::1]");
	CHECK_INT(mbox("a@[IPv6:1:2:3:4:5:6:7:8]", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@[IPv6:::ffff:192.0.2.1]", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@[IPv6:::]", false, &a), ADDR_OK);
}

TEST(addr_ipv6_literal_bad)
{
	struct addr a;
	CHECK_INT(mbox("a@[IPv6:]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[IPv6:1:2:3:4:5:6:7:8:9]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[IPv6:1:2:3:4:5:6:7]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[IPv6:g::1]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[IPv6:1::2::3]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[IPv6:12345::1]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[IPv6:fe80::1%eth0]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[IPv6:::ffff:192.0.2.256]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[IPv6:1.2.3.4]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[::1]", false, &a), ADDR_ERR_SYNTAX); /* tag missing */
	CHECK_INT(mbox("a@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:0]", false, &a),
		  ADDR_ERR_SYNTAX);
}

TEST(addr_general_literal)
{
	struct addr a;
	CHECK_INT(mbox("a@[x-tag:some.content!]", false, &a), ADDR_OK);
	CHECK_STR(a.domain, "[x-tag:some.content!]");
	CHECK(a.domain_is_literal);
	CHECK_INT(mbox("a@[tag:a:b:c]", false, &a), ADDR_OK);
	CHECK_INT(mbox("a@[tag:]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[:abc]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[tag-:abc]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[ta_g:abc]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[tag:a b]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[tag:a[b]", false, &a), ADDR_ERR_SYNTAX);
	CHECK_INT(mbox("a@[tag:a\\b]", false, &a), ADDR_ERR_SYNTAX);
	/* never non-ASCII, SMTPUTF8 or not */
	CHECK_INT(mbox("a@[tag:\xc3\xbc]", true, &a), ADDR_ERR_SYNTAX);
}

/* ---- UTF-8 (RFC 6531) ---- */

TEST(addr_utf8_mailbox)
{
	struct addr a;
	CHECK_INT(mbox("j\xc3\xbcrgen@b\xc3\xbc\x63her.de", true, &a), ADDR_OK);
	CHECK_STR(a.local, "j\xc3\xbcrgen");
	CHECK_STR(a.domain, "b\xc3\xbc\x63her.de");
	CHECK(a.has_utf8);
	/* only ASCII letters are lower-cased */
	CHECK_INT(mbox("X@\xc3\x9c\x42.DE", true, &a), ADDR_OK);
	CHECK_STR(a.domain, "\xc3\x9c\x62.de");
	/* a label may start with a non-ASCII letter */
	CHECK_INT(mbox("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
		       true, &a),
		  ADDR_OK);
	/* 4-byte sequence */
	CHECK_INT(mbox("\xf0\x9f\x98\x80@x.org", true, &a), ADDR_OK);
	CHECK_INT(mbox("user@x.org", true, &a), ADDR_OK);
	CHECK(!a.has_utf8);
}

TEST(addr_utf8_not_allowed)
{
	struct addr a;
	CHECK_INT(mbox("j\xc3\xbcrgen@x.de", false, &a), ADDR_ERR_UTF8);
	CHECK_INT(mbox("user@b\xc3\xbc\x63her.de", false, &a), ADDR_ERR_UTF8);
}

TEST(addr_utf8_invalid)
{
	struct addr a;
	CHECK_INT(mbox("\xc3@x.org", true, &a), ADDR_ERR_UTF8);          /* truncated */
	CHECK_INT(mbox("\xc0\xaf@x.org", true, &a), ADDR_ERR_UTF8);      /* overlong '/' */
	CHECK_INT(mbox("\xc1\xbf@x.org", true, &a), ADDR_ERR_UTF8);      /* overlong */
	CHECK_INT(mbox("\xe0\x80\xaf@x.org", true, &a), ADDR_ERR_UTF8);  /* overlong */
	CHECK_INT(mbox("\xf0\x80\x80\xaf@x.org", true, &a), ADDR_ERR_UTF8);
	CHECK_INT(mbox("\xed\xa0\x80@x.org", true, &a), ADDR_ERR_UTF8);  /* surrogate */
	CHECK_INT(mbox("\xf4\x90\x80\x80@x.org", true, &a), ADDR_ERR_UTF8);
	CHECK_INT(mbox("\xf5\x80\x80\x80@x.org", true, &a), ADDR_ERR_UTF8);
	CHECK_INT(mbox("\x80@x.org", true, &a), ADDR_ERR_UTF8);          /* lone continuation */
	CHECK_INT(mbox("\xff@x.org", true, &a), ADDR_ERR_UTF8);
	CHECK_INT(mbox("a@x\xe2\x82.org", true, &a), ADDR_ERR_UTF8);
	CHECK_INT(mbox("a@x\xe2\x82", true, &a), ADDR_ERR_UTF8);         /* cut at the end */
}

TEST(addr_utf8_valid_function)
{
	CHECK(addr_utf8_valid("", 0));
	CHECK(addr_utf8_valid("plain ascii", 11));
	CHECK(addr_utf8_valid("\xc2\x80", 2));
	CHECK(addr_utf8_valid("\xdf\xbf", 2));
	CHECK(addr_utf8_valid("\xe0\xa0\x80", 3));
	CHECK(addr_utf8_valid("\xed\x9f\xbf", 3));     /* U+D7FF */
	CHECK(addr_utf8_valid("\xee\x80\x80", 3));     /* U+E000 */
	CHECK(addr_utf8_valid("\xef\xbf\xbf", 3));
	CHECK(addr_utf8_valid("\xf0\x90\x80\x80", 4));
	CHECK(addr_utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
	CHECK(!addr_utf8_valid("\xc2", 1));
	CHECK(!addr_utf8_valid("\xc2\x41", 2));
	CHECK(!addr_utf8_valid("\xc0\x80", 2));
	CHECK(!addr_utf8_valid("\xe0\x9f\xbf", 3));
	CHECK(!addr_utf8_valid("\xed\xa0\x80", 3));
	CHECK(!addr_utf8_valid("\xed\xbf\xbf", 3));
	CHECK(!addr_utf8_valid("\xf0\x8f\xbf\xbf", 4));
	CHECK(!addr_utf8_valid("\xf4\x90\x80\x80", 4));
	CHECK(!addr_utf8_valid("\xf8\x88\x80\x80\x80", 5));
	CHECK(!addr_utf8_valid("\xe2\x82\xac\xe2\x82", 5));
	CHECK(!addr_utf8_valid("\xfe", 1));
}

/* ---- Length limits ---- */

TEST(addr_local_length_limit)
{
	char buf[200];
	struct addr a;
	memset(buf, 'l', 64);
	memcpy(buf + 64, "@x.org", 7);
	CHECK_INT(mbox(buf, false, &a), ADDR_OK);
	CHECK_INT(strlen(a.local), 64);
	memset(buf, 'l', 65);
	memcpy(buf + 65, "@x.org", 7);
	CHECK_INT(mbox(buf, false, &a), ADDR_ERR_TOO_LONG);
	/* quoted: 62 characters of content plus the quotes is 64 */
	buf[0] = '"';
	memset(buf + 1, ' ', 62);
	memcpy(buf + 63, "\"@x.org", 8);
	CHECK_INT(mbox(buf, false, &a), ADDR_OK);
	CHECK_INT(strlen(a.local), 64);
	buf[0] = '"';
	memset(buf + 1, ' ', 63);
	memcpy(buf + 64, "\"@x.org", 8);
	CHECK_INT(mbox(buf, false, &a), ADDR_ERR_TOO_LONG);
	/* the wire form counts, escapes included */
	buf[0] = '"';
	for (size_t i = 0; i < 32; i++)
		memcpy(buf + 1 + 2 * i, "\\a", 2);
	memcpy(buf + 65, "\"@x.org", 8);
	CHECK_INT(mbox(buf, false, &a), ADDR_ERR_TOO_LONG);
	/* octets, not characters */
	for (size_t i = 0; i < 32; i++)
		memcpy(buf + 2 * i, "\xc3\xbc", 2);
	memcpy(buf + 64, "@x.org", 7);
	CHECK_INT(mbox(buf, true, &a), ADDR_OK);
	memcpy(buf + 64, "\xc3\xbc@x.org", 9);
	CHECK_INT(mbox(buf, true, &a), ADDR_ERR_TOO_LONG);
}

TEST(addr_domain_length_limit)
{
	char buf[600];
	struct addr a;
	memcpy(buf, "a@", 2);
	make_domain(buf + 2, 255);
	CHECK_INT(mbox(buf, false, &a), ADDR_OK);
	CHECK_INT(strlen(a.domain), 255);
	make_domain(buf + 2, 256);
	CHECK_INT(mbox(buf, false, &a), ADDR_ERR_TOO_LONG);
	make_domain(buf + 2, 500);
	CHECK_INT(mbox(buf, false, &a), ADDR_ERR_TOO_LONG);
	/* a syntax error still wins over the length */
	memcpy(buf + 2 + 500, "-", 2);
	CHECK_INT(mbox(buf, false, &a), ADDR_ERR_SYNTAX);
}

TEST(addr_label_length_limit)
{
	char buf[200];
	struct addr a;
	memcpy(buf, "a@", 2);
	memset(buf + 2, 'b', 63);
	memcpy(buf + 65, ".com", 5);
	CHECK_INT(mbox(buf, false, &a), ADDR_OK);
	memset(buf + 2, 'b', 64);
	memcpy(buf + 66, ".com", 5);
	CHECK_INT(mbox(buf, false, &a), ADDR_ERR_TOO_LONG);
}

TEST(addr_literal_length_limit)
{
	char buf[600];
	struct addr a;
	/* "[t:" + content + "]" of 255 octets in all */
	memcpy(buf, "a@[t:", 5);
	memset(buf + 5, 'x', 251);
	memcpy(buf + 256, "]", 2);
	CHECK_INT(mbox(buf, false, &a), ADDR_OK);
	CHECK_INT(strlen(a.domain), 255);
	memset(buf + 5, 'x', 252);
	memcpy(buf + 257, "]", 2);
	CHECK_INT(mbox(buf, false, &a), ADDR_ERR_TOO_LONG);
}

TEST(addr_path_length_limit)
{
	char buf[600];
	struct addr a;
	size_t used;
	/* "<" + 64 + "@" + 189 + ">" = 256 */
	buf[0] = '<';
	memset(buf + 1, 'l', 64);
	buf[65] = '@';
	make_domain(buf + 66, 189);
	memcpy(buf + 66 + 189, ">", 2);
	CHECK_INT(path(buf, false, false, &a, &used), ADDR_OK);
	CHECK_INT(used, 256);
	make_domain(buf + 66, 190);
	memcpy(buf + 66 + 190, ">", 2);
	CHECK_INT(path(buf, false, false, &a, &used), ADDR_ERR_TOO_LONG);
	/* a long source route counts too */
	memcpy(buf, "<@", 2);
	make_domain(buf + 2, 250);
	memcpy(buf + 252, ":a@b>", 6);
	CHECK_INT(path(buf, false, false, &a, &used), ADDR_ERR_TOO_LONG);
}

/* ---- Paths ---- */

TEST(addr_path_basic)
{
	struct addr a;
	size_t used = 99;
	bool is_null = true;
	CHECK_INT(path_n("<a@b.c>", 7, false, false, &a, &is_null, &used), ADDR_OK);
	CHECK_INT(used, 7);
	CHECK(!is_null);
	CHECK_STR(a.local, "a");
	CHECK_STR(a.domain, "b.c");
	CHECK_INT(path("<a@b.c> SIZE=10", false, false, &a, &used), ADDR_OK);
	CHECK_INT(used, 7);
	CHECK_INT(path("<a@b.c>>", false, false, &a, &used), ADDR_OK);
	CHECK_INT(used, 7);
	CHECK_INT(path("<\"a>b\"@b.c>", false, false, &a, &used), ADDR_OK);
	CHECK_INT(used, 11);
	CHECK_STR(a.local, "\"a>b\"");
}

TEST(addr_path_null)
{
	struct addr a;
	size_t used = 0;
	bool is_null = false;
	CHECK_INT(path_n("<>", 2, false, true, &a, &is_null, &used), ADDR_OK);
	CHECK(is_null);
	CHECK_INT(used, 2);
	CHECK_STR(a.local, "");
	CHECK_INT(path_n("<> BODY=8BITMIME", 16, false, true, &a, &is_null, &used), ADDR_OK);
	CHECK(is_null);
	CHECK_INT(used, 2);
	CHECK_INT(path_n("<>", 2, false, false, &a, &is_null, &used), ADDR_ERR_SYNTAX);
	CHECK(!is_null);
	/* NULL out-parameters are allowed */
	CHECK_INT(addr_parse_path("<>", 2, false, true, &a, NULL, NULL), ADDR_OK);
	CHECK_INT(addr_parse_path("<a@b>", 5, false, true, &a, NULL, NULL), ADDR_OK);
}

TEST(addr_path_bad)
{
	struct addr a;
	size_t used;
	CHECK_INT(path("", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path(">", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("a@b.c", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<a@b.c", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("< a@b.c>", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<a@b.c >", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<<a@b.c>>", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<a>", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@>", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("< >", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<a@b.c.>", false, true, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<a@b.c", false, true, &a, &used), ADDR_ERR_SYNTAX);
}

TEST(addr_source_route)
{
	struct addr a;
	size_t used;
	CHECK_INT(path("<@a.example,@b.example:user@d.example>", false, false, &a, &used),
		  ADDR_OK);
	CHECK_STR(a.local, "user");
	CHECK_STR(a.domain, "d.example");
	CHECK_INT(used, 38);
	CHECK_INT(path("<@a.example:user@d.example>", false, false, &a, &used), ADDR_OK);
	CHECK_STR(a.domain, "d.example");
	CHECK_INT(path("<@A:\"q u\"@[1.2.3.4]>", false, false, &a, &used), ADDR_OK);
	CHECK_STR(a.local, "\"q u\"");
	CHECK_STR(a.domain, "[1.2.3.4]");
}

TEST(addr_source_route_bad)
{
	struct addr a;
	size_t used;
	CHECK_INT(path("<@:u@d>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a,b:u@d>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a u@d>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a,@b>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a,@b:>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a:@b:u@d>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a,:u@d>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@[1.2.3.4]:u@d>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a.:u@d>", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a", false, false, &a, &used), ADDR_ERR_SYNTAX);
	CHECK_INT(path("<@a,", false, false, &a, &used), ADDR_ERR_SYNTAX);
	/* UTF-8 in the route follows the same rule as in the mailbox */
	CHECK_INT(path("<@\xc3\xbc.de:u@d>", false, false, &a, &used), ADDR_ERR_UTF8);
	CHECK_INT(path("<@\xc3\xbc.de:u@d>", true, false, &a, &used), ADDR_OK);
	CHECK(!a.has_utf8); /* the route is ignored */
}

TEST(addr_path_utf8)
{
	struct addr a;
	size_t used;
	CHECK_INT(path("<\xc3\xbc@x.de>", true, false, &a, &used), ADDR_OK);
	CHECK(a.has_utf8);
	CHECK_INT(used, 9);
	CHECK_INT(path("<\xc3\xbc@x.de>", false, false, &a, &used), ADDR_ERR_UTF8);
	CHECK_INT(path("<\xc3@x.de>", true, false, &a, &used), ADDR_ERR_UTF8);
}

/* ---- Truncation: every proper prefix fails unless it is itself valid ---- */

TEST(addr_path_prefixes_fail)
{
	static const char *const lines[] = {
		"<@r1.example,@r2.example:\"j d\\\"x\"@[IPv6:2001:db8::1]>",
		"<first.last@sub.example.com>",
		"<\"quoted\"@[192.0.2.1]>",
		"<x@[tag:content]>",
		"<\xc3\xbc\xe2\x82\xac@\xe4\xbe\x8b.\xf0\x9f\x98\x80>",
	};
	for (size_t l = 0; l < sizeof lines / sizeof lines[0]; l++) {
		size_t n = strlen(lines[l]);
		struct addr a;
		bool is_null;
		size_t used;
		CHECK_INT(path_n(lines[l], n, true, true, &a, &is_null, &used), ADDR_OK);
		CHECK_INT(used, n);
		for (size_t k = 0; k < n; k++) {
			enum addr_error e = path_n(lines[l], k, true, true, &a, &is_null, &used);
			if (e == ADDR_OK)
				fprintf(stderr, "  prefix %zu of line %zu parsed\n", k, l);
			CHECK(e != ADDR_OK);
			CHECK_STR(a.local, "");
		}
	}
}

TEST(addr_mailbox_prefixes)
{
	/* A prefix is valid exactly when it ends inside the domain, after a
	 * letter or digit. */
	const char *s = "first.last@sub.example-x.com";
	size_t n = strlen(s);
	const char *at = strchr(s, '@');
	for (size_t k = 0; k <= n; k++) {
		struct addr a;
		bool want = k > (size_t)(at - s) + 1 && s[k - 1] != '.' && s[k - 1] != '-';
		enum addr_error e = mbox_n(s, k, false, &a);
		CHECK_INT(e == ADDR_OK, want);
	}
}

/* ---- addr_format and round trips ---- */

TEST(addr_format_basic)
{
	struct addr a;
	char buf[400];
	CHECK_INT(mbox("Joe@Example.COM", false, &a), ADDR_OK);
	CHECK_INT(addr_format(&a, buf, sizeof buf), 15);
	CHECK_STR(buf, "Joe@example.com");
	CHECK_INT(addr_format(&a, buf, 16), 15);
	CHECK_INT(addr_format(&a, buf, 15), -1);
	CHECK_STR(buf, "");
	CHECK_INT(addr_format(&a, buf, 0), -1);
	memset(&a, 0, sizeof a);
	memcpy(a.local, "postmaster", 11);
	CHECK_INT(addr_format(&a, buf, sizeof buf), 10);
	CHECK_STR(buf, "postmaster");
}

TEST(addr_format_round_trip)
{
	static const char *const in[] = {
		"\"john\"@x.org",
		"\"a b\"@x.org",
		"\"a\\\"b\\\\c\"@x.org",
		"\"\"@x.org",
		"x@[IPv6:2001:db8::1]",
		"x@[1.2.3.4]",
		"\xc3\xbc@\xc3\xbc.de",
		"\"\xc3\xbc \"@X.De",
	};
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		struct addr a, b;
		char buf[400];
		CHECK_INT(mbox(in[i], true, &a), ADDR_OK);
		int len = addr_format(&a, buf, sizeof buf);
		CHECK(len > 0);
		CHECK_INT(mbox(buf, true, &b), ADDR_OK);
		CHECK_STR(b.local, a.local);
		CHECK_STR(b.domain, a.domain);
		CHECK_INT(b.domain_is_literal, a.domain_is_literal);
		CHECK_INT(b.has_utf8, a.has_utf8);
	}
}
