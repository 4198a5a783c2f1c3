/*
 * test-sortkey.c - unit tests for src/mail/sortkey.c: RFC 5256 base
 * subject (2.1 and the section 5 grammar), sent date (2.2), Message ID
 * normalisation (3) and case folding.  Inputs are copied into heap blocks
 * of exactly their length so that ASan sees any read past the end.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sortkey.h"
#include "test.h"

static char *exact(const char *s, size_t n)
{
	char *p = malloc(n > 0 ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, s, n);
	return p;
}

/* Base subject of s as a static string; *reply from the extraction. */
static const char *base(const char *s, bool *reply)
{
	static char out[8192];
	struct buf b = BUF_INIT;
	char *in = exact(s, strlen(s));
	bool r = false;
	if (sortkey_base_subject(in, strlen(s), &b, &r) < 0)
		abort();
	free(in);
	size_t n = b.len < sizeof out - 1 ? b.len : sizeof out - 1;
	memcpy(out, b.data ? b.data : "", n);
	out[n] = '\0';
	buf_free(&b);
	if (reply)
		*reply = r;
	return out;
}

static void check_base(const char *in, const char *want, bool want_reply, int line)
{
	bool r;
	const char *got = base(in, &r);
	if (strcmp(got, want) != 0)
		test_fail_str(__FILE__, line, in, got, want);
	if (r != want_reply)
		test_fail_int(__FILE__, line, in, r, want_reply);
}
#define BASE(in, want, reply) check_base(in, want, reply, __LINE__)

TEST(sortkey_base_subject_plain)
{
	BASE("", "", false);
	BASE("Hello", "Hello", false);
	BASE("  Hello \t  world  ", "Hello world", false); /* step 1, WSP trailer/leader */
	BASE("Hello\r\n world", "Hello world", false);
	BASE("Reply to all", "Reply to all", false); /* "re" without ":" */
	BASE("Re", "Re", false);
	BASE("Fwd", "Fwd", false);
	BASE("Regarding: x", "Regarding: x", false);
}

TEST(sortkey_base_subject_refwd)
{
	BASE("Re: Hello", "Hello", true);
	BASE("RE: Hello", "Hello", true);
	BASE("re:Hello", "Hello", true);
	BASE("Re : Hello", "Hello", true); /* *WSP before ":" */
	BASE("Fw: Hello", "Hello", true);
	BASE("FWD: Hello", "Hello", true);
	BASE("Re: Re: Fwd: Re: Hello", "Hello", true);
	BASE("Re[2]: Hello", "Hello", true);     /* subj-blob inside subj-refwd */
	BASE("Re [2] : Hello", "Hello", true);   /* blob takes trailing WSP */
	BASE("[list] Re: Hello", "Hello", true); /* *subj-blob subj-refwd */
	BASE("[a][b] Fwd: Hello", "Hello", true);
	BASE("Re:", "", true);
	BASE("Re: ", "", true);
	BASE("Fwd:Re:", "", true);
	BASE("Re:Re: x", "x", true);
	BASE("Re:[x]", "[x]", true); /* the last blob is the subj-base */
}

TEST(sortkey_base_subject_blob)
{
	BASE("[list] Hello", "Hello", false); /* step 4 */
	BASE("[list]Hello", "Hello", false);
	BASE("[list]", "[list]", false); /* would leave no subj-base */
	BASE("[list] ", "[list]", false);
	BASE("[a] [b]", "[b]", false);
	BASE("[a] [b] c", "c", false);
	BASE("[list] [other] Re: Hello", "Hello", true); /* (5): 4 then 3 */
	BASE("[unclosed Hello", "[unclosed Hello", false);
	BASE("[a[b] x", "[a[b] x", false); /* "[" is no BLOBCHAR */
	BASE("x [list]", "x [list]", false);
}

TEST(sortkey_base_subject_trailer)
{
	BASE("Hello (fwd)", "Hello", true);
	BASE("Hello (FWD)(fwd) ", "Hello", true);
	BASE("Hello(fwd) (fwd)", "Hello", true);
	BASE("(fwd)", "", true);
	BASE("Hello (fwd) x", "Hello (fwd) x", false);
	BASE("Hello fwd)", "Hello fwd)", false);
}

TEST(sortkey_base_subject_fwd_wrapper)
{
	BASE("[fwd: Hello]", "Hello", true); /* (6) */
	BASE("[Fwd: Re: Hello]", "Hello", true);
	BASE("[fwd: [fwd: Hello]]", "Hello", true);
	BASE("Re: [fwd: Hello (fwd)]", "Hello", true);
	BASE("[fwd: Hello] (fwd)", "Hello", true);
	BASE("[fwd:]", "", true);
	BASE("[fwd: Hello] x", "x", false); /* a blob then a base: step 4 */
	BASE("[fwd: Hello", "[fwd: Hello", false);
	BASE("[fwd Hello]", "[fwd Hello]", false);
}

TEST(sortkey_base_subject_bounded)
{
	size_t n = SORTKEY_SUBJECT_MAX * 3;
	char *s = malloc(n);
	if (s == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		s[i] = i % 2 ? ' ' : 'x';
	struct buf b = BUF_INIT;
	CHECK_INT(sortkey_base_subject(s, n, &b, NULL), 0);
	CHECK(b.len < SORTKEY_SUBJECT_MAX);
	buf_free(&b);
	free(s);
}

static int64_t date(const char *s)
{
	int64_t t = -12345;
	char *in = exact(s, strlen(s));
	if (sortkey_sent_date(in, strlen(s), &t) < 0)
		t = -1;
	free(in);
	return t;
}

TEST(sortkey_sent_date_forms)
{
	/* RFC 5256 2.2's example: both are 2001-01-01 00:01:33 UTC */
	CHECK_INT(date("31 Dec 2000 16:01:33 -0800"), 978307293);
	CHECK_INT(date("1 Jan 2001 00:01:33 +0000"), 978307293);
	CHECK_INT(date("Mon, 01 Jan 2001 00:01:33 +0000"), 978307293);
	CHECK_INT(date("Mon , 1 Jan 2001 01:01:33 +0100 (CET)"), 978307293);
	CHECK_INT(date("1 jan 2001 00:01:33 GMT"), 978307293);
	CHECK_INT(date("31 Dec 2000 19:01:33 EST"), 978307293);
	CHECK_INT(date("31 Dec 2000 16:01:33 PST"), 978307293);
	CHECK_INT(date("1 Jan 01 00:01:33 +0000"), 978307293);  /* two-digit year */
	CHECK_INT(date("1 Jan 101 00:01:33 +0000"), 978307293); /* three-digit year */
	CHECK_INT(date("1 Jan 2001 00:01 +0000"), 978307260);   /* no seconds */
	CHECK_INT(date("1 January 2001 00:01:33 +0000"), 978307293);
	CHECK_INT(date(" (c) 1 Jan 2001 00:01:33 +0000"), 978307293);
	/* invalid zone: UTC; invalid time: 00:00:00 */
	CHECK_INT(date("1 Jan 2001 00:01:33 +9x"), 978307293);
	CHECK_INT(date("1 Jan 2001 00:01:33 Z"), 978307293);
	CHECK_INT(date("1 Jan 2001 00:01:33"), 978307293);
	CHECK_INT(date("1 Jan 2001 25:01:33 +0200"), 978307200);
	CHECK_INT(date("1 Jan 2001"), 978307200);
	CHECK_INT(date("1 Jan 1970 00:00:00 +0100"), -3600);
	CHECK_INT(date("29 Feb 2000 00:00:00 +0000"), 951782400);
	/* no valid date */
	CHECK_INT(date(""), -1);
	CHECK_INT(date("yesterday"), -1);
	CHECK_INT(date("32 Jan 2001 00:00:00 +0000"), -1);
	CHECK_INT(date("29 Feb 2001 00:00:00 +0000"), -1);
	CHECK_INT(date("0 Jan 2001"), -1);
	CHECK_INT(date("1 Foo 2001"), -1);
	CHECK_INT(date("1 Jan 1"), -1);
	CHECK_INT(date("Mon, 1 Jan"), -1);
}

/* The msg-ids found in s, joined by " ". */
static const char *ids(const char *s)
{
	static char out[4096];
	struct buf b = BUF_INIT, all = BUF_INIT;
	char *in = exact(s, strlen(s));
	size_t pos = 0, n = strlen(s);
	int r;
	while ((r = sortkey_msgid_next(in, n, &pos, &b)) == 1) {
		if (all.len)
			buf_putc(&all, ' ');
		buf_append(&all, b.data, b.len);
		buf_reset(&b);
		if (pos > n)
			abort();
	}
	if (r < 0 || pos != n)
		abort();
	free(in);
	snprintf(out, sizeof out, "%s", buf_cstr(&all));
	buf_free(&b);
	buf_free(&all);
	return out;
}

TEST(sortkey_msgid)
{
	CHECK_STR(ids(""), "");
	CHECK_STR(ids("<a@b>"), "a@b");
	/* RFC 5256 3: both forms are the same Message ID */
	CHECK_STR(ids("<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>"), "01KF8JCEOCBS0045PS@xxx.yyy.com");
	CHECK_STR(ids("<01KF8JCEOCBS0045PS@xxx.yyy.com>"), "01KF8JCEOCBS0045PS@xxx.yyy.com");
	CHECK_STR(ids("  <a@b>\r\n <c@d> (comment) <e@f>"), "a@b c@d e@f");
	CHECK_STR(ids("<a (x) @ b>"), "a@b");
	CHECK_STR(ids("<\"a\\\"q\"@b>"), "a\"q@b");
	CHECK_STR(ids("<\"a@x\"@b>"), "a@x@b");
	CHECK_STR(ids("<a@[1.2.3.4]>"), "a@[1.2.3.4]");
	/* not valid: skipped */
	CHECK_STR(ids("<nodomain> <a@b>"), "a@b");
	CHECK_STR(ids("<@b> <a@> <> <x@y>"), "x@y");
	CHECK_STR(ids("<a<b@c>"), "b@c");
	CHECK_STR(ids("<a@b"), "");
	CHECK_STR(ids("a@b"), "");
	CHECK_STR(ids("<a@b> and user@example.com"), "a@b");
	CHECK_STR(ids("<a@b> <x"), "a@b");
	/* case is kept (comparisons are case-sensitive) */
	CHECK_STR(ids("<A@B>"), "A@B");
}

TEST(sortkey_msgid_long)
{
	size_t n = SORTKEY_MSGID_MAX + 10;
	char *s = malloc(n + 9);
	if (s == NULL)
		abort();
	s[0] = '<';
	memset(s + 1, 'a', n);
	memcpy(s + 1 + n, "@b>", 3);
	memcpy(s + 4 + n, "<c@d>", 5);
	struct buf b = BUF_INIT;
	size_t pos = 0;
	CHECK_INT(sortkey_msgid_next(s, n + 9, &pos, &b), 1);
	CHECK_STR(buf_cstr(&b), "c@d");
	buf_free(&b);
	free(s);
}

TEST(sortkey_fold_basic)
{
	struct buf b = BUF_INIT;
	const char *s = "ABC xyz \xC3\x84\xC3\x96 \xCE\x91 \xD0\x96 \xC5\xB8 \xFF";
	CHECK_INT(sortkey_fold(s, strlen(s), &b), 0);
	CHECK_STR(buf_cstr(&b), "abc xyz \xC3\xA4\xC3\xB6 \xCE\xB1 \xD0\xB6 \xC3\xBF \xFF");
	buf_free(&b);
}
