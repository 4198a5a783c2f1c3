/*
 * test-textmatch.c - unit tests for src/mail/textmatch.c (the string
 * matching of IMAP SEARCH and JMAP Email/query, the header text split by
 * field, SearchSnippet's match spans and HTML text) and for
 * mime_addr_first_display (JMAP's from/to sort key).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime.h"
#include "test.h"
#include "textmatch.h"

static char *str_of(struct buf *b)
{
	static char out[1024];
	size_t n = b->len < sizeof out - 1 ? b->len : sizeof out - 1;
	memcpy(out, b->data ? b->data : "", n);
	out[n] = '\0';
	buf_free(b);
	return out;
}

TEST(textmatch_contains_folds)
{
	char *n = textmatch_needle("R\xc3\x89UNION", 8);
	CHECK_STR(n, "r\xc3\xa9union");
	CHECK(textmatch_contains("La R\xc3\xa9union", 11, n)); /* 11 bytes */
	CHECK(!textmatch_contains("Reunion", 7, n));
	free(n);
	n = textmatch_needle("ab\0cd", 5); /* NUL ends a needle */
	CHECK_STR(n, "ab");
	CHECK(textmatch_contains("xAB", 3, n));
	free(n);
	CHECK(textmatch_contains("", 0, ""));
	CHECK(!textmatch_contains("", 0, "a"));
	CHECK(textmatch_contains_folded("abc", 3, "bc"));
	CHECK(!textmatch_contains_folded("ab", 2, "abc"));
}

TEST(textmatch_addr_specs)
{
	const char *v = "Alice <alice (c) @a.example>\nbob@b.example\n";
	CHECK(textmatch_addr_specs_contain(v, strlen(v), "alice@a.example"));
	CHECK(textmatch_addr_specs_contain(v, strlen(v), "<bob@"));
	CHECK(!textmatch_addr_specs_contain(v, strlen(v), "carol"));
}

TEST(textmatch_header_fields_split)
{
	const char *h = "From: a@b\nSubject: one\nsubject: two\n";
	struct buf b = BUF_INIT;
	CHECK_INT(textmatch_header_fields(h, strlen(h), "SUBJECT", &b), 0);
	CHECK_STR(str_of(&b), "one\ntwo\n");
	CHECK_INT(textmatch_header_fields(h, strlen(h), "To", &b), 0);
	CHECK_STR(str_of(&b), "");
	CHECK_INT(textmatch_header_fields("junk\n", 5, "To", &b), -1);
	buf_free(&b);
	CHECK_INT(textmatch_header_fields("A:x\n", 4, "A", &b), -1); /* no space */
	buf_free(&b);
}

TEST(textmatch_header_text_cacheable)
{
	const char *m = "From: a@b\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nbody\r\n";
	struct mime_tree *t = mime_parse(m, strlen(m));
	CHECK(t != NULL);
	struct buf b = BUF_INIT;
	textmatch_header_text(t, &b);
	CHECK_STR(str_of(&b), "From: a@b\nSubject: caf\xc3\xa9\n");
	mime_tree_free(&t);
	/* a decoded newline could fake a field: not cacheable */
	m = "Subject: =?utf-8?q?a=0AFrom:_x?=\r\n\r\n";
	t = mime_parse(m, strlen(m));
	CHECK(t != NULL);
	textmatch_header_text(t, &b);
	CHECK_STR(str_of(&b), TEXTMATCH_HDR_NONE);
	mime_tree_free(&t);
}

TEST(textmatch_find_spans)
{
	char *needles[] = {textmatch_needle("pizza", 5), textmatch_needle("\xc3\xa9t\xc3\xa9", 6),
			   textmatch_needle("zz", 2)};
	const char *text = "Pizza! \xc3\x89T\xc3\x89 pizza";
	struct textmatch_span *sp;
	size_t n;
	textmatch_find(text, strlen(text), needles, 3, &sp, &n);
	CHECK_INT(n, 3);
	CHECK_INT(sp[0].start, 0); /* Pizza and its zz merged */
	CHECK_INT(sp[0].end, 5);
	CHECK_INT(sp[1].start, 7); /* ÉTÉ: whole characters */
	CHECK_INT(sp[1].end, 12);
	CHECK_INT(sp[2].start, 13);
	CHECK_INT(sp[2].end, 18);
	free(sp);
	textmatch_find("nothing", 7, needles, 3, &sp, &n);
	CHECK_INT(n, 0);
	CHECK(sp == NULL);
	for (size_t i = 0; i < 3; i++)
		free(needles[i]);
}

TEST(textmatch_html)
{
	const char *h = "<p>A &amp; B</p><!-- x --><script>no()</script>&#233;&#x41;&bogus; "
			"&lt;t&gt;<style>p{}</style>end";
	struct buf b = BUF_INIT;
	CHECK_INT(textmatch_html_text(h, strlen(h), &b), 0);
	CHECK_STR(str_of(&b), " A & B  \xc3\xa9"
			      "A&bogus; <t> end");
	CHECK_INT(textmatch_html_text("<unclosed", 9, &b), 0);
	CHECK_STR(str_of(&b), " ");
	CHECK_INT(textmatch_html_text("&#0;&#1114112;", 14, &b), 0);
	CHECK_STR(str_of(&b), "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(mime_addr_first_display_key)
{
	struct buf b = BUF_INIT;
	const char *v = "\"Zed, Z\" <z@z.example>, b@b.example";
	CHECK_INT(mime_addr_first_display(v, strlen(v), &b), 0);
	CHECK_STR(str_of(&b), "Zed, Z");
	CHECK_INT(mime_addr_first_display("b@b.example", 11, &b), 0);
	CHECK_STR(str_of(&b), "b@b.example");
	CHECK_INT(mime_addr_first_display("c@c.example (Carol)", 19, &b), 0);
	CHECK_STR(str_of(&b), "Carol");
	CHECK_INT(mime_addr_first_display("", 0, &b), 0);
	CHECK_STR(str_of(&b), "");
}
