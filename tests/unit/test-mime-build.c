/*
 * test-mime-build.c - unit tests for src/mail/mime-build.c: header
 * folding at 78 columns, RFC 2047 encoded words of whole UTF-8
 * characters, phrases and parameters (RFC 2231), 7bit and
 * quoted-printable text bodies (line ends, soft breaks, '-' and '.' at a
 * line start), base64 lines, boundaries.
 */
#include <string.h>

#include "buf.h"
#include "mime-build.h"
#include "test.h"

static const char *text_field(struct buf *b, const char *name, const char *s)
{
	struct mime_hdr h;
	buf_reset(b);
	mime_hdr_start(&h, b, name);
	mime_hdr_text(&h, s);
	mime_hdr_end(&h);
	return buf_cstr(b);
}

TEST(mime_build_text_fields)
{
	struct buf b = BUF_INIT;
	CHECK_STR(text_field(&b, "Subject", "hello world"), "Subject: hello world\r\n");
	/* two spaces stay two spaces */
	CHECK_STR(text_field(&b, "Subject", "a  b"), "Subject: a  b\r\n");
	/* folded before the word that would pass column 78 */
	const char *s =
	    "aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee ffffffffff gggggggggg";
	CHECK_STR(text_field(&b, "Subject", s),
		  "Subject: aaaaaaaaaa bbbbbbbbbb cccccccccc dddddddddd eeeeeeeeee ffffffffff\r\n"
		  " gggggggggg\r\n");
	/* non-ASCII: one encoded word of UTF-8 */
	CHECK_STR(text_field(&b, "Subject", "Grüße"), "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n");
	/* long: words of at most 45 octets, never cutting a character (44
	 * here); the first stays on the field's line */
	char e[61];
	for (int i = 0; i < 30; i++)
		memcpy(e + 2 * i, "\xc3\xa9", 2); /* 60 octets */
	e[60] = '\0';
	CHECK_STR(
	    text_field(&b, "Subject", e),
	    "Subject: =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6k=?=\r\n"
	    " =?UTF-8?B?w6nDqcOpw6nDqcOpw6nDqQ==?=\r\n");
	buf_free(&b);
}

TEST(mime_build_phrase_and_params)
{
	struct buf b = BUF_INIT;
	struct mime_hdr h;
	mime_hdr_start(&h, &b, "From");
	mime_hdr_phrase(&h, "Bob, Jr. \"the\" \\one");
	mime_hdr_word(&h, " ", "<b@x>", 5);
	mime_hdr_word(&h, "", ",", 1);
	mime_hdr_phrase(&h, "Ann Lee");
	mime_hdr_word(&h, " ", "<a@x>", 5);
	mime_hdr_end(&h);
	CHECK_STR(buf_cstr(&b), "From: \"Bob, Jr. \\\"the\\\" \\\\one\" <b@x>, Ann Lee <a@x>\r\n");
	buf_reset(&b);
	mime_hdr_start(&h, &b, "Content-Disposition");
	mime_hdr_word(&h, " ", "attachment", 10);
	mime_hdr_param(&h, "filename", "a.txt");
	mime_hdr_param(&h, "x", "two words");
	mime_hdr_param(&h, "name", "r\xc3\xa9sum\xc3\xa9.pdf");
	mime_hdr_end(&h);
	CHECK_STR(buf_cstr(&b), "Content-Disposition: attachment; filename=a.txt;"
				" x=\"two words\";\r\n name*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n");
	buf_free(&b);
}

TEST(mime_build_text_bodies)
{
	struct buf b = BUF_INIT;
	CHECK_STR(mime_build_text(&b, "a\nb\r\nc\rd", 8), "7bit");
	CHECK_STR(buf_cstr(&b), "a\r\nb\r\nc\r\nd");
	buf_reset(&b);
	CHECK_STR(mime_build_text(&b, "caf\xc3\xa9 = x \n-- y\n.\n", 18), "quoted-printable");
	CHECK_STR(buf_cstr(&b), "caf=C3=A9 =3D x=20\r\n=2D- y\r\n=2E\r\n");
	/* a long line: soft breaks, no line over 76 */
	char line[200];
	memset(line, 'a', 150);
	line[150] = '\xff';
	buf_reset(&b);
	CHECK_STR(mime_build_text(&b, line, 151), "quoted-printable");
	const char *o = buf_cstr(&b);
	CHECK_INT(strcspn(o, "\r"), 76);
	CHECK(strncmp(o + 75, "=\r\n", 3) == 0);
	CHECK(strcmp(o + strlen(o) - 3, "=FF") == 0);
	/* an ASCII line over 998 octets is quoted-printable too */
	char longl[1100];
	memset(longl, 'b', sizeof longl);
	buf_reset(&b);
	CHECK_STR(mime_build_text(&b, longl, sizeof longl), "quoted-printable");
	buf_free(&b);
}

TEST(mime_build_base64_and_boundary)
{
	struct buf b = BUF_INIT;
	char data[60];
	memset(data, 0, sizeof data);
	mime_build_base64(&b, data, sizeof data);
	CHECK_STR(buf_cstr(&b),
		  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
		  "AAAA\r\n");
	char x[40], y[40];
	mime_build_boundary(x);
	mime_build_boundary(y);
	CHECK(strncmp(x, "=_tern_", 7) == 0 && strlen(x) == 31);
	CHECK(strcmp(x, y) != 0);
	buf_free(&b);
}
