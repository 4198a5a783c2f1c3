/*
 * test-mime.c - unit tests for src/mail/mime*.c: the MIME parser, the IMAP
 * ENVELOPE/BODY/BODYSTRUCTURE builders, sections, HEADER.FIELDS, BINARY,
 * RFC 2047 and the SEARCH helpers.
 *
 * The corpus test compares Tern's answers for every message in
 * tests/unit/mime-corpus/ byte for byte with Dovecot's answers stored
 * beside it (scripts/gen-mime-expect.sh made them).  Where Tern deliberately
 * differs, NAME.X.tern holds Tern's answer next to Dovecot's NAME.X and is
 * used instead; the reasons (RFC reasons only) are listed at
 * deliberate_differences below.  Messages are copied into heap blocks of
 * exactly their length so that ASan sees any read past the end.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime.h"
#include "test.h"

/*
 * Deliberate differences from Dovecot 2.3.19 (files NAME.X.tern, written
 * with TERN_MIME_DUMP, see dump()):
 *
 * 11-broken-content-type.{body,bodystructure}: Content-Type values that do
 *   not parse ("text", ";;; garbage", "image/") become text/plain;
 *   charset=us-ascii as RFC 2045 5.2 recommends for a syntactically
 *   invalid Content-Type; Dovecot sends ("" "" NIL ...) or ("text" "" ...).
 * 19-deep-rfc822, 29-deep-multipart .{body,bodystructure}: Tern stops
 *   expanding at MIME_MAX_DEPTH (32) levels and shows deeper parts as
 *   text/plain leaves (a resource bound; Dovecot's limit is higher).
 * 20-base64-qp-single.sections, 30-binary-encodings.sections: BINARY of
 *   broken quoted-printable / base64 is decoded leniently as RFC 2045 6.7
 *   (note 2: keep an invalid "=" sequence) and 6.8 (ignore characters
 *   outside the alphabet) ask; Dovecot refuses with NO [PARSE].
 * 06-nested.sections: BINARY[1] of a multipart part is its body as it is:
 *   RFC 9051 6.4.5 removes "any encoding specified in the corresponding
 *   Content-Transfer-Encoding header field" and a multipart has none
 *   (RFC 2045 6.4); Dovecot decodes the base64 parts inside and rewrites
 *   their headers.
 * 24-duplicates.sections: with two Content-Transfer-Encoding fields the
 *   first counts for BINARY as it does for the body-fld-enc of
 *   BODYSTRUCTURE (RFC 9051 6.4.5: BINARY removes the encoding that
 *   BODYSTRUCTURE reports); Dovecot shows "8bit" but decodes base64.
 * 31-rfc822-attached-nonmultipart.{body,bodystructure}: message/global is
 *   an encapsulated message (envelope, body, lines) with nested parts, as
 *   RFC 9051 7.5.2 (body-type-msg, media-message) and 6.4.5.1 require;
 *   Dovecot 2.3 (an IMAP4rev1 server) shows it as a basic part.
 * 34-attached-no-mime-version.sections: likewise BINARY of a
 *   message/rfc822 part is the encapsulated message as it is.
 * 33-mime-version-rules.sections, 34-attached-no-mime-version.sections
 *   (BINARY[1.1]): in a message without MIME-Version and Content-Type the
 *   Content-Transfer-Encoding means nothing (RFC 2045 4: such a message is
 *   not MIME), so BINARY returns the body as it is, agreeing with the
 *   "7bit" that BODYSTRUCTURE shows (Dovecot shows "7bit" too, but
 *   decodes).
 * 32-rfc2231-edges.{body,bodystructure}: parameter names are
 *   case-insensitive (RFC 2045 5.1), so "N*0" and "n*1" are one parameter
 *   "N"="uplow"; a lone extended "charset*" or "name*" (RFC 2231 4) stays
 *   as it is.  Dovecot keeps "N" and "n*1" apart and renames the lone
 *   extended parameters "charset*1*" and "name*1*" when they come with
 *   continuations of other parameters.
 * 36-header-meets-delimiter.sections: HEADER.FIELDS(.NOT) of encapsulated
 *   messages whose header runs into the next delimiter.  1.HEADER.FIELDS
 *   is a subset of 1.HEADER, the encapsulated message's header (RFC 9051
 *   6.4.5.1), which has no Content-Type; Dovecot answers with part 1's own
 *   MIME header.  In part 2 the line end before the delimiter belongs to
 *   the delimiter (RFC 2046 5.1.1), so that message has neither body nor
 *   blank line and its HEADER.FIELDS has no blank line either (RFC 9051
 *   6.4.5.1, as for 18-no-separator); Dovecot adds one.
 * 18-no-separator.sections: HEADER.FIELDS of a message without a blank
 *   line has no blank line either (RFC 9051 6.4.5.1 "except in the case of
 *   a message that has no body and no blank line"); Dovecot adds one for
 *   HEADER.FIELDS but not for HEADER.FIELDS.NOT.
 */

/* --- helpers ------------------------------------------------------------- */

static char *dup_exact(const char *s, size_t n)
{
	char *p = malloc(n > 0 ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, s, n);
	return p;
}

struct msg {
	char *data;
	size_t len;
	struct mime_tree *t;
};

static void msg_open(struct msg *m, const char *s)
{
	m->len = strlen(s);
	m->data = dup_exact(s, m->len);
	m->t = mime_parse(m->data, m->len);
	if (m->t == NULL)
		abort();
}

static void msg_close(struct msg *m)
{
	mime_tree_free(&m->t);
	free(m->data);
	m->data = NULL;
}

/* The result of a builder as a C string (static, for CHECK_STR). */
static const char *str_of(struct buf *b)
{
	static char out[65536];
	size_t n = b->len < sizeof out - 1 ? b->len : sizeof out - 1;
	memcpy(out, b->data != NULL ? b->data : "", n);
	out[n] = '\0';
	return out;
}

static const char *envelope(const char *s)
{
	struct msg m;
	struct buf b = BUF_INIT;
	msg_open(&m, s);
	CHECK_INT(mime_imap_envelope(m.t, &b), 0);
	const char *r = str_of(&b);
	buf_free(&b);
	msg_close(&m);
	return r;
}

static const char *bodystructure(const char *s, bool ext)
{
	struct msg m;
	struct buf b = BUF_INIT;
	msg_open(&m, s);
	CHECK_INT(mime_imap_bodystructure(m.t, ext, &b), 0);
	const char *r = str_of(&b);
	buf_free(&b);
	msg_close(&m);
	return r;
}

/* Section spec "1.2.MIME" etc. of message m as a string; "" for none. */
static const char *section(struct msg *m, const char *spec)
{
	unsigned path[32];
	size_t n = 0;
	enum mime_sect kind = MIME_SECT_BODY;
	const char *p = spec;

	while (*p != '\0') {
		if (*p >= '0' && *p <= '9') {
			path[n++] = (unsigned)strtoul(p, (char **)&p, 10);
			if (*p == '.')
				p++;
			continue;
		}
		if (strcmp(p, "HEADER") == 0)
			kind = MIME_SECT_HEADER;
		else if (strcmp(p, "TEXT") == 0)
			kind = MIME_SECT_TEXT;
		else if (strcmp(p, "MIME") == 0)
			kind = MIME_SECT_MIME;
		break;
	}
	size_t start = 0, len = 0;
	static char out[65536];
	int r = mime_section(m->t, path, n, kind, &start, &len);
	if (r != 1 || len >= sizeof out)
		return r == 0 ? "" : "(error)";
	if (start + len > m->len)
		return "(out of range)";
	memcpy(out, m->data + start, len);
	out[len] = '\0';
	return out;
}

/* --- mime_imap_string ------------------------------------------------------- */

TEST(mime_imap_string_forms)
{
	struct buf b = BUF_INIT;
	CHECK_INT(mime_imap_string(&b, NULL, 0), 0);
	CHECK_STR(str_of(&b), "NIL");
	buf_reset(&b);
	CHECK_INT(mime_imap_string(&b, "", 0), 0);
	CHECK_STR(str_of(&b), "\"\"");
	buf_reset(&b);
	CHECK_INT(mime_imap_string(&b, "a \"b\" \\c", 8), 0);
	CHECK_STR(str_of(&b), "\"a \\\"b\\\" \\\\c\"");
	buf_reset(&b);
	CHECK_INT(mime_imap_string(&b, "caf\xc3\xa9", 5), 0);
	CHECK_STR(str_of(&b), "{5}\r\ncaf\xc3\xa9");
	buf_reset(&b);
	CHECK_INT(mime_imap_string(&b, "a\r\nb", 4), 0);
	CHECK_STR(str_of(&b), "{4}\r\na\r\nb");
	buf_reset(&b);
	/* NUL may appear in no IMAP string: dropped from the literal */
	CHECK_INT(mime_imap_string(&b, "a\0b", 3), 0);
	CHECK_INT(b.len, 7);
	CHECK(memcmp(b.data, "{2}\r\nab", 7) == 0);
	buf_free(&b);

	struct buf small;
	buf_init(&small, 4);
	CHECK_INT(mime_imap_string(&small, "abcdef", 6), -1);
	buf_free(&small);
}

/* --- parse and free -------------------------------------------------------- */

TEST(mime_parse_free)
{
	struct mime_tree *t = mime_parse("", 0);
	CHECK(t != NULL);
	CHECK_INT(mime_tree_parts(t), 1);
	mime_tree_free(&t);
	CHECK(t == NULL);
	mime_tree_free(&t); /* NULL is accepted */
	mime_tree_free(NULL);

	struct buf b = BUF_INIT;
	t = mime_parse("", 0);
	CHECK_INT(mime_imap_bodystructure(t, true, &b), 0);
	CHECK_STR(
	    str_of(&b),
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)");
	buf_reset(&b);
	CHECK_INT(mime_imap_envelope(t, &b), 0);
	CHECK_STR(str_of(&b), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	buf_free(&b);
	mime_tree_free(&t);
	CHECK_INT(mime_imap_envelope(NULL, &b), -1);
	CHECK_INT(mime_imap_bodystructure(NULL, true, &b), -1);
}

/* --- ENVELOPE -------------------------------------------------------------- */

TEST(mime_envelope_basic)
{
	CHECK_STR(envelope("Date: Mon, 3 Feb 2025 10:59:59 +0100\r\n"
			   "From: Alice <alice@example.org>\r\n"
			   "To: bob@example.net, \"Carol C\" <carol@example.net>\r\n"
			   "Subject: hi\r\n"
			   "Message-ID: <id@x>\r\n"
			   "In-Reply-To: <p@x>\r\n"
			   "\r\nbody\r\n"),
		  "(\"Mon, 3 Feb 2025 10:59:59 +0100\" \"hi\" ((\"Alice\" NIL \"alice\" "
		  "\"example.org\")) ((\"Alice\" NIL \"alice\" \"example.org\")) ((\"Alice\" NIL "
		  "\"alice\" \"example.org\")) ((NIL NIL \"bob\" \"example.net\")(\"Carol C\" NIL "
		  "\"carol\" \"example.net\")) NIL NIL \"<p@x>\" \"<id@x>\")");
}

TEST(mime_envelope_sender_reply_to)
{
	/* explicit Sender and Reply-To are used; an empty one falls back */
	CHECK_STR(envelope("From: a@b\r\nSender: s@b\r\nReply-To: (nothing)\r\n\r\n"),
		  "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"s\" \"b\")) ((NIL NIL \"a\" "
		  "\"b\")) NIL NIL NIL NIL NIL)");
	/* no From: everything NIL */
	CHECK_STR(envelope("Subject: x\r\n\r\n"), "(NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL)");
}

TEST(mime_envelope_groups)
{
	CHECK_STR(envelope("From: a@b\r\nTo: undisclosed-recipients:;\r\n"
			   "Cc: G: x@y, \"N\" <z@w>;, solo@s\r\n\r\n"),
		  "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" "
		  "\"b\")) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL "
		  "\"G\" NIL)(NIL NIL \"x\" \"y\")(\"N\" NIL \"z\" \"w\")(NIL NIL NIL NIL)(NIL NIL "
		  "\"solo\" \"s\")) NIL NIL NIL)");
}

TEST(mime_envelope_address_forms)
{
	struct {
		const char *in, *want;
	} cases[] = {
	    {"<@r1,@r2:x@y>", "((NIL \"@r1,@r2\" \"x\" \"y\"))"},
	    {"x@[10.0.0.1]", "((NIL NIL \"x\" \"[10.0.0.1]\"))"},
	    {"\"q\\\"l\"@d", "((NIL NIL \"q\\\"l\" \"d\"))"},
	    {"a@b (Full Name)", "((\"Full Name\" NIL \"a\" \"b\"))"},
	    {"(c) A (c2) B <a@b>", "((\"A B\" NIL \"a\" \"b\"))"},
	    {"Mr. Smith <a@b>", "((\"Mr. Smith\" NIL \"a\" \"b\"))"},
	    {"just-local", "((NIL NIL \"just-local\" \"MISSING_DOMAIN\"))"},
	    {"@x", "((NIL NIL \"MISSING_MAILBOX\" \"x\"))"},
	    {"<>", "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))"},
	    {"\"only name\"", "((\"only name\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))"},
	    {"x <a@b", "((\"x\" NIL \"a\" \"SYNTAX_ERROR\"))"},
	    /* empty members are skipped (RFC 5322 4.4 obs-addr-list) */
	    {"a@b, , c@d", "((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\"))"},
	    /* junk after an address ends the list */
	    {"a@b@c, d@e", "((NIL NIL \"a\" \"b\"))"},
	    {"a . b @ c . d", "((NIL NIL \"a.b\" \"c.d\"))"},
	    /* names "for humans": squeezed, then a literal */
	    {"\"a  b\tc\" <x@y>", "(({5}\r\na b c NIL \"x\" \"y\"))"},
	    {"=?utf-8?q?x?= <a@b>", "((\"=?utf-8?q?x?=\" NIL \"a\" \"b\"))"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char msg[512], want[512];
		snprintf(msg, sizeof msg, "From: %s\r\n\r\n", cases[i].in);
		snprintf(want, sizeof want, "(NIL NIL %s %s %s NIL NIL NIL NIL NIL)", cases[i].want,
			 cases[i].want, cases[i].want);
		CHECK_STR(envelope(msg), want);
	}
}

TEST(mime_envelope_strings)
{
	/* subject for humans: literal when squeezed or holding '"', 8-bit */
	CHECK_STR(envelope("Subject: a  b\r\n\r\n"),
		  "(NIL {3}\r\na b NIL NIL NIL NIL NIL NIL NIL NIL)");
	CHECK_STR(envelope("Subject: x\r\n ey\r\n\r\n"),
		  "(NIL {4}\r\nx ey NIL NIL NIL NIL NIL NIL NIL NIL)");
	CHECK_STR(envelope("Subject: say \"hi\"\r\n\r\n"),
		  "(NIL {8}\r\nsay \"hi\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	CHECK_STR(envelope("Subject: caf\xc3\xa9\r\n\r\n"),
		  "(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)");
	/* other fields: unfolded, quoted with escapes, trailing blanks kept */
	CHECK_STR(envelope("Message-ID: <a\"b>  \r\nIn-Reply-To: <a>\r\n <b>\r\n\r\n"),
		  "(NIL NIL NIL NIL NIL NIL NIL NIL \"<a> <b>\" \"<a\\\"b>  \")");
	/* not 2047-decoded */
	CHECK_STR(envelope("Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n\r\n"),
		  "(NIL \"=?UTF-8?B?R3LDvMOfZQ==?=\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	/* the last Subject counts, repeated address fields add up */
	CHECK_STR(envelope("Subject: 1\r\nSubject: 2\r\nTo: a@b\r\nTo: c@d\r\n\r\n"),
		  "(NIL \"2\" NIL NIL NIL ((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) NIL NIL NIL "
		  "NIL)");
}

/* --- BODY / BODYSTRUCTURE ---------------------------------------------- */

static const char *const multi_msg = "From: a@b\r\n"
				     "MIME-Version: 1.0\r\n"
				     "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
				     "\r\n"
				     "preamble\r\n"
				     "--XX\r\n"
				     "Content-Type: text/plain; charset=utf-8\r\n"
				     "\r\n"
				     "one\r\ntwo\r\n"
				     "--XX\r\n"
				     "Content-Type: image/png; name=a.png\r\n"
				     "Content-Transfer-Encoding: base64\r\n"
				     "Content-Disposition: attachment; filename=a.png\r\n"
				     "Content-ID: <c@x>\r\n"
				     "\r\n"
				     "iVBORw0KGgo=\r\n"
				     "--XX--\r\n"
				     "epilogue\r\n";

TEST(mime_bodystructure_multipart)
{
	CHECK_STR(bodystructure(multi_msg, true),
		  "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 8 1 NIL NIL NIL "
		  "NIL)(\"image\" \"png\" (\"name\" \"a.png\") \"<c@x>\" NIL \"base64\" 12 NIL "
		  "(\"attachment\" (\"filename\" \"a.png\")) NIL NIL) \"mixed\" (\"boundary\" "
		  "\"XX\") NIL NIL NIL)");
	CHECK_STR(bodystructure(multi_msg, false),
		  "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 8 1)(\"image\" "
		  "\"png\" (\"name\" \"a.png\") \"<c@x>\" NIL \"base64\" 12) \"mixed\")");
}

TEST(mime_bodystructure_defaults)
{
	/* no Content-Type */
	CHECK_STR(bodystructure("Subject: x\r\n\r\nhi\r\n", false),
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1)");
	/* a broken one (RFC 2045 5.2) */
	CHECK_STR(bodystructure("Content-Type: garbage\r\n\r\nhi", false),
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 2 0)");
	/* Content-* without MIME-Version or Content-Type are not MIME */
	CHECK_STR(bodystructure("Content-Transfer-Encoding: base64\r\n\r\nhi", false),
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 2 0)");
	CHECK_STR(bodystructure("MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\nhi",
				false),
		  "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"base64\" 2 0)");
	/* multipart/digest parts default to message/rfc822 */
	CHECK_STR(
	    bodystructure("Content-Type: multipart/digest; boundary=d\r\n\r\n"
			  "--d\r\n\r\nSubject: s\r\n\r\nb\r\n--d--\r\n",
			  false),
	    "((\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 15 (NIL \"s\" NIL NIL NIL NIL NIL "
	    "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0) "
	    "2) \"digest\")");
	/* multipart without boundary: one empty part (RFC 9051: 1*body) */
	CHECK_STR(
	    bodystructure("Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\ny\r\n", false),
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")");
}

TEST(mime_bodystructure_params_2231)
{
	CHECK_STR(
	    bodystructure("Content-Type: application/x; a*1=\"b\"; a*0=\"a\"; "
			  "t*0*=utf-8''%C3; t*1*=%A9; z*=us-ascii'en'x; p=1\r\n\r\n",
			  false),
	    "(\"application\" \"x\" (\"z*\" \"us-ascii'en'x\" \"p\" \"1\" \"a\" \"ab\" \"t*\" "
	    "\"utf-8''%C3%A9\") NIL NIL \"7bit\" 0)");
	/* a gap keeps the segments as they are; a plain segment in an
	 * extended value gets its '%' encoded */
	CHECK_STR(bodystructure("Content-Type: application/x; n*0=a; n*2=c; m*0*=x; m*1=%\r\n\r\n",
				false),
		  "(\"application\" \"x\" (\"m*\" \"x%25\" \"n*0\" \"a\" \"n*2\" \"c\") NIL NIL "
		  "\"7bit\" 0)");
	/* the joined boundary is used */
	CHECK_STR(
	    bodystructure("Content-Type: multipart/mixed; boundary*0=a; boundary*1=b\r\n\r\n"
			  "--ab\r\n\r\nx\r\n--ab--\r\n",
			  false),
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 0) \"mixed\")");
}

TEST(mime_bodystructure_message_global)
{
	CHECK_STR(
	    bodystructure("Content-Type: message/global\r\n\r\nSubject: g\r\n\r\nb\r\n", false),
	    "(\"message\" \"global\" NIL NIL NIL \"7bit\" 17 (NIL \"g\" NIL NIL NIL NIL NIL "
	    "NIL NIL NIL) (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 3 1) 3)");
}

/* A message nested deeper than MIME_MAX_DEPTH and one with more than
 * MIME_MAX_PARTS parts stay bounded and answer. */
TEST(mime_limits)
{
	struct buf m = BUF_INIT, b = BUF_INIT;
	for (int i = 0; i < MIME_MAX_DEPTH + 8; i++)
		buf_puts(&m, "Content-Type: message/rfc822\r\n\r\n");
	buf_puts(&m, "Subject: end\r\n\r\nbody\r\n");
	char *d = dup_exact(m.data, m.len);
	struct mime_tree *t = mime_parse(d, m.len);
	CHECK_INT(mime_tree_parts(t), MIME_MAX_DEPTH + 1);
	CHECK_INT(mime_imap_bodystructure(t, true, &b), 0);
	/* the innermost expanded level shows a text/plain leaf */
	CHECK(strstr(str_of(&b), "\"message\" \"rfc822\"") != NULL);
	CHECK(strstr(str_of(&b),
		     "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" ") != NULL);
	mime_tree_free(&t);
	free(d);

	buf_reset(&m);
	buf_puts(&m, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (int i = 0; i < MIME_MAX_PARTS + 50; i++)
		buf_puts(&m, "--b\r\n\r\nx\r\n");
	buf_puts(&m, "--b--\r\n");
	d = dup_exact(m.data, m.len);
	t = mime_parse(d, m.len);
	CHECK_INT(mime_tree_parts(t), MIME_MAX_PARTS);
	buf_reset(&b);
	CHECK_INT(mime_imap_bodystructure(t, false, &b), 0);
	unsigned path[1] = {MIME_MAX_PARTS - 1};
	size_t st, len;
	CHECK_INT(mime_section(t, path, 1, MIME_SECT_BODY, &st, &len), 1);
	CHECK_INT(len, 1);
	path[0] = MIME_MAX_PARTS;
	CHECK_INT(mime_section(t, path, 1, MIME_SECT_BODY, &st, &len), 0);
	mime_tree_free(&t);
	free(d);

	/* a very long header line */
	buf_reset(&m);
	buf_puts(&m, "Subject: ");
	for (int i = 0; i < 200000; i++)
		buf_putc(&m, 'x');
	buf_puts(&m, "\r\nContent-Type: text/html\r\n\r\nbody");
	d = dup_exact(m.data, m.len);
	t = mime_parse(d, m.len);
	buf_reset(&b);
	CHECK_INT(mime_imap_bodystructure(t, false, &b), 0);
	CHECK_STR(str_of(&b),
		  "(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0)");
	buf_reset(&b);
	CHECK_INT(mime_imap_envelope(t, &b), 0);
	CHECK_INT(b.len,
		  strlen("(NIL \"\" NIL NIL NIL NIL NIL NIL NIL NIL)") + MIME_MAX_HEADER_LINE);
	mime_tree_free(&t);
	free(d);

	/* a full output buffer is an error, not a crash */
	struct buf tiny;
	buf_init(&tiny, 10);
	d = dup_exact(multi_msg, strlen(multi_msg));
	t = mime_parse(d, strlen(multi_msg));
	CHECK_INT(mime_imap_bodystructure(t, true, &tiny), -1);
	buf_reset(&tiny);
	CHECK_INT(mime_imap_envelope(t, &tiny), -1);
	mime_tree_free(&t);
	free(d);
	buf_free(&tiny);
	buf_free(&m);
	buf_free(&b);
}

/* --- sections -------------------------------------------------------------- */

/* RFC 9051 6.4.5.1's example shape: a message/rfc822 inside a multipart,
 * itself multipart. */
static const char *const nested_msg = "Subject: outer\r\n"
				      "Content-Type: multipart/mixed; boundary=o\r\n"
				      "\r\n"
				      "--o\r\n"
				      "Content-Type: text/plain\r\n"
				      "\r\n"
				      "part one\r\n"
				      "--o\r\n"
				      "Content-Type: message/rfc822\r\n"
				      "\r\n"
				      "Subject: inner\r\n"
				      "Content-Type: multipart/alternative; boundary=i\r\n"
				      "\r\n"
				      "--i\r\n"
				      "Content-Type: text/plain\r\n"
				      "\r\n"
				      "inner plain\r\n"
				      "--i\r\n"
				      "Content-Type: text/html\r\n"
				      "\r\n"
				      "<p>inner</p>\r\n"
				      "--i--\r\n"
				      "--o--\r\n";

TEST(mime_section_numbering)
{
	struct msg m;
	msg_open(&m, nested_msg);
	CHECK_STR(section(&m, "1"), "part one");
	CHECK_STR(section(&m, "1.MIME"), "Content-Type: text/plain\r\n\r\n");
	CHECK_STR(section(&m, "2.MIME"), "Content-Type: message/rfc822\r\n\r\n");
	CHECK_STR(section(&m, "2.HEADER"),
		  "Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n");
	CHECK_STR(section(&m, "2.1"), "inner plain");
	CHECK_STR(section(&m, "2.1.MIME"), "Content-Type: text/plain\r\n\r\n");
	CHECK_STR(section(&m, "2.2"), "<p>inner</p>");
	/* the close delimiter keeps its line end (as in Dovecot) */
	CHECK_STR(section(&m, "2.TEXT"), "--i\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n"
					 "--i\r\nContent-Type: text/html\r\n\r\n<p>inner</p>\r\n"
					 "--i--\r\n");
	/* part 2 is the whole encapsulated message */
	CHECK_STR(section(&m, "2"), "Subject: inner\r\nContent-Type: multipart/alternative; "
				    "boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\n"
				    "inner plain\r\n--i\r\nContent-Type: text/html\r\n\r\n"
				    "<p>inner</p>\r\n--i--\r\n");
	/* a leaf of a multipart is also its own part 1 (Dovecot), once */
	CHECK_STR(section(&m, "2.1.1"), "inner plain");
	CHECK_STR(section(&m, "2.1.1.1"), "");
	CHECK_STR(section(&m, "2.3"), "");
	CHECK_STR(section(&m, "3"), "");
	CHECK_STR(section(&m, "1.HEADER"), "");
	CHECK_STR(section(&m, "1.TEXT"), "");
	CHECK_STR(section(&m, "HEADER"),
		  "Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n");
	CHECK_STR(section(&m, "MIME"), "");
	CHECK_STR(section(&m, ""), nested_msg);

	size_t st, len;
	unsigned bad[2] = {1, 0};
	CHECK_INT(mime_section(m.t, bad, 2, MIME_SECT_BODY, &st, &len), -1);
	CHECK_INT(mime_section(m.t, NULL, 1, MIME_SECT_BODY, &st, &len), -1);
	CHECK_INT(mime_section(NULL, bad, 1, MIME_SECT_BODY, &st, &len), -1);
	msg_close(&m);
}

TEST(mime_section_single_part)
{
	struct msg m;
	msg_open(&m, "Subject: s\r\n\r\nbody\r\n");
	CHECK_STR(section(&m, "1"), "body\r\n");
	CHECK_STR(section(&m, "1.MIME"), "Subject: s\r\n\r\n");
	CHECK_STR(section(&m, "TEXT"), "body\r\n");
	CHECK_STR(section(&m, "1.1"), "");
	CHECK_STR(section(&m, "2"), "");
	msg_close(&m);

	/* no blank line: all header, empty body */
	msg_open(&m, "Subject: s\r\nFrom: a@b\r\n");
	CHECK_STR(section(&m, "HEADER"), "Subject: s\r\nFrom: a@b\r\n");
	CHECK_STR(section(&m, "TEXT"), "");
	msg_close(&m);

	/* a bare-LF message works too */
	msg_open(&m, "Content-Type: multipart/mixed; boundary=z\n\n--z\n\nlf\n--z--\n");
	CHECK_STR(section(&m, "1"), "lf");
	CHECK_STR(section(&m, "1.MIME"), "\n");
	msg_close(&m);
}

TEST(mime_section_edges)
{
	struct msg m;
	/* the CRLF before a delimiter belongs to it: a part whose header
	 * ends at the delimiter loses that CRLF */
	msg_open(&m, "Content-Type: multipart/mixed; boundary=x\r\n\r\n"
		     "--x\r\nContent-Type: text/plain\r\n\r\n--x\r\nContent-Type: text/plain\r\n"
		     "--x\r\n--x\r\n\r\nlast\r\n--x--\r\n");
	CHECK_STR(section(&m, "1.MIME"), "Content-Type: text/plain\r\n");
	CHECK_STR(section(&m, "1"), "");
	CHECK_STR(section(&m, "2.MIME"), "Content-Type: text/plain");
	CHECK_STR(section(&m, "3.MIME"), "");
	CHECK_STR(section(&m, "4"), "last");
	msg_close(&m);

	/* an outer delimiter ends an unterminated inner multipart */
	msg_open(&m, "Content-Type: multipart/mixed; boundary=out\r\n\r\n"
		     "--out\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n"
		     "--in\r\n\r\nA\r\n--out\r\n\r\nB\r\n--out--\r\n");
	CHECK_STR(section(&m, "1.1"), "A");
	CHECK_STR(section(&m, "2"), "B");
	msg_close(&m);
}

/* --- HEADER.FIELDS ------------------------------------------------------------ */

static const char *fields(const char *hdr, const char *const *names, size_t n, bool not_)
{
	struct buf b = BUF_INIT;
	size_t len = strlen(hdr);
	char *d = dup_exact(hdr, len);
	CHECK_INT(mime_header_fields(d, 0, len, names, n, not_, &b), 0);
	const char *r = str_of(&b);
	buf_free(&b);
	free(d);
	return r;
}

TEST(mime_header_fields_select)
{
	const char *hdr = "From: a@b\r\nSubject: one\r\n two\r\nTO: c@d\r\nX-A: 1\r\n\r\nbody";
	const char *n1[] = {"subject", "to"};
	CHECK_STR(fields(hdr, n1, 2, false), "Subject: one\r\n two\r\nTO: c@d\r\n\r\n");
	CHECK_STR(fields(hdr, n1, 2, true), "From: a@b\r\nX-A: 1\r\n\r\n");
	const char *n2[] = {"none"};
	CHECK_STR(fields(hdr, n2, 1, false), "\r\n");
	CHECK_STR(fields(hdr, NULL, 0, true), "From: a@b\r\nSubject: one\r\n two\r\nTO: c@d\r\n"
					      "X-A: 1\r\n\r\n");
	/* "Name :" (obsolete blank before the colon) still matches */
	const char *n3[] = {"x-b"};
	CHECK_STR(fields("X-B : v\r\nX-BB: w\r\n\r\n", n3, 1, false), "X-B : v\r\n\r\n");
	/* no blank line in the block: none in the answer (RFC 9051 6.4.5.1) */
	CHECK_STR(fields("From: a@b\r\nSubject: s\r\n", n1, 2, false), "Subject: s\r\n");
	/* a last field without its line end gets one */
	CHECK_STR(fields("Subject: s", n1, 2, false), "Subject: s\r\n");

	struct buf b = BUF_INIT;
	CHECK_INT(mime_header_fields(NULL, 0, 0, n1, 2, false, &b), -1);
	buf_free(&b);
}

/* --- BINARY ------------------------------------------------------------------ */

static const char *const enc_msg = "MIME-Version: 1.0\r\n"
				   "Content-Type: multipart/mixed; boundary=e\r\n"
				   "\r\n"
				   "--e\r\n"
				   "Content-Transfer-Encoding: base64\r\n"
				   "\r\n"
				   "SGVs bG8s\r\nIHdv\r\ncmxk IQ==\r\n"
				   "--e\r\n"
				   "Content-Transfer-Encoding: quoted-printable\r\n"
				   "\r\n"
				   "caf=C3=A9 =3D ok  \r\nsoft=\r\nbreak =ZZ end=\r\n"
				   "--e\r\n"
				   "Content-Transfer-Encoding: x-gzip\r\n"
				   "\r\n"
				   "zzz\r\n"
				   "--e\r\n"
				   "Content-Transfer-Encoding: 8bit\r\n"
				   "\r\n"
				   "raw \xff\r\n"
				   "--e\r\n"
				   "Content-Type: message/rfc822\r\n"
				   "\r\n"
				   "Subject: m\r\n\r\nbody\r\n"
				   "--e--\r\n";

static int binary(struct msg *m, unsigned part, struct buf *b)
{
	buf_reset(b);
	return mime_binary(m->t, &part, 1, b);
}

TEST(mime_binary_decoding)
{
	struct msg m;
	struct buf b = BUF_INIT;
	msg_open(&m, enc_msg);
	CHECK_INT(binary(&m, 1, &b), 1);
	CHECK_STR(str_of(&b), "Hello, world!");
	CHECK_INT(binary(&m, 2, &b), 1);
	CHECK_STR(str_of(&b), "caf\xc3\xa9 = ok\r\nsoftbreak =ZZ end");
	CHECK_INT(binary(&m, 3, &b), -2);
	CHECK_INT(binary(&m, 4, &b), 1);
	CHECK_STR(str_of(&b), "raw \xff");
	CHECK_INT(binary(&m, 5, &b), 1);
	CHECK_STR(str_of(&b), "Subject: m\r\n\r\nbody");
	CHECK_INT(binary(&m, 6, &b), 0);
	buf_reset(&b);
	CHECK_INT(mime_binary(m.t, NULL, 0, &b), 1);
	CHECK_INT(b.len, strlen(enc_msg));
	unsigned zero = 0;
	CHECK_INT(mime_binary(m.t, &zero, 1, &b), -1);
	msg_close(&m);

	/* lenient base64 (RFC 2045 6.8): junk ignored, padding restarts */
	msg_open(&m, "MIME-Version: 1.0\r\nContent-Transfer-Encoding: BASE64\r\n\r\n"
		     "QU!!JD\r\nRA==RUY=\r\nR\r\n");
	CHECK_INT(binary(&m, 1, &b), 1);
	CHECK_STR(str_of(&b), "ABCDEF");
	msg_close(&m);

	/* a full buffer */
	struct buf tiny;
	buf_init(&tiny, 3);
	msg_open(&m, enc_msg);
	unsigned one = 1;
	CHECK_INT(mime_binary(m.t, &one, 1, &tiny), -1);
	buf_free(&tiny);
	msg_close(&m);
	buf_free(&b);
}

/* --- RFC 2047 ------------------------------------------------------------------ */

static const char *dec2047(const char *s)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(s);
	char *d = dup_exact(s, n);
	CHECK_INT(mime_decode_2047(d, n, &b), 0);
	const char *r = str_of(&b);
	buf_free(&b);
	free(d);
	return r;
}

TEST(mime_decode_2047_words)
{
	CHECK_STR(dec2047("=?UTF-8?B?R3LDvMOfZQ==?="), "Gr\xc3\xbc\xc3\x9f"
						       "e");
	CHECK_STR(dec2047("=?iso-8859-1?q?Andr=E9?= Pirard"), "Andr\xc3\xa9 Pirard");
	CHECK_STR(dec2047("=?ISO-8859-1?Q?a_b?="), "a b");
	/* blanks between adjacent words go (RFC 2047 6.2), others stay */
	CHECK_STR(dec2047("=?utf-8?q?a?= \r\n =?utf-8?q?b?= c =?utf-8?q?d?="), "ab c d");
	/* a UTF-8 character split over two words */
	CHECK_STR(dec2047("=?utf-8?b?w6k=?= =?utf-8?q?=C3?= =?utf-8?q?=A9?="), "\xc3\xa9\xc3\xa9");
	/* language suffix (RFC 2231 5) */
	CHECK_STR(dec2047("=?UTF-8*en?Q?hi?="), "hi");
	/* different charsets in a row */
	CHECK_STR(dec2047("=?iso-8859-1?q?=E9?==?utf-8?q?=C3=A9?="), "\xc3\xa9\xc3\xa9");
	/* plain 8-bit text is kept */
	CHECK_STR(dec2047("caf\xc3\xa9 ="), "caf\xc3\xa9 =");
	/* invalid octets in a known charset become U+FFFD */
	CHECK_STR(dec2047("=?us-ascii?q?a?= x =?koi8-r?q?=F0?="), "a x \xd0\x9f");
}

TEST(mime_decode_2047_malformed)
{
	CHECK_STR(dec2047("=?bogus-charset?Q?abc?="), "=?bogus-charset?Q?abc?=");
	CHECK_STR(dec2047("=?utf-8?X?abc?="), "=?utf-8?X?abc?=");
	CHECK_STR(dec2047("=?UTF-8?Q?broken"), "=?UTF-8?Q?broken");
	CHECK_STR(dec2047("=??Q?a?="), "=??Q?a?=");
	CHECK_STR(dec2047("=?utf-8?Q?a b?="), "=?utf-8?Q?a b?=");
	CHECK_STR(dec2047("=?"), "=?");
	CHECK_STR(dec2047("=?a/b?Q?x?="), "=?a/b?Q?x?=");
	CHECK_STR(dec2047("=?utf-8?Q?=4?="), "=4");
	CHECK_STR(dec2047("=?utf-8?B?!!!?="), "");
	CHECK_STR(dec2047(""), "");
	struct buf b = BUF_INIT;
	CHECK_INT(mime_decode_2047(NULL, 0, &b), -1);
	buf_free(&b);
}

/* --- SEARCH ---------------------------------------------------------------- */

TEST(mime_search_header_values)
{
	struct msg m;
	struct buf b = BUF_INIT;
	msg_open(&m, "From: =?utf-8?q?J=C3=B6rg?= <j@x>\r\n"
		     "Subject: =?iso-8859-1?q?caf=E9?=\r\n  more\r\n"
		     "Subject: second\r\n"
		     "\r\n"
		     "Subject: not a header\r\n");
	CHECK_INT(mime_search_header(m.t, "subject", &b), 0);
	CHECK_STR(str_of(&b), "caf\xc3\xa9  more\nsecond\n");
	buf_reset(&b);
	CHECK_INT(mime_search_header(m.t, "FROM", &b), 0);
	CHECK_STR(str_of(&b), "J\xc3\xb6rg <j@x>\n");
	buf_reset(&b);
	CHECK_INT(mime_search_header(m.t, "x-none", &b), 0);
	CHECK_STR(str_of(&b), "");
	CHECK_INT(mime_search_header(m.t, "", &b), 0);
	CHECK_STR(str_of(&b), "From: J\xc3\xb6rg <j@x>\nSubject: caf\xc3\xa9  more\n"
			      "Subject: second\n");
	CHECK_INT(mime_search_header(m.t, NULL, &b), -1);
	buf_free(&b);
	msg_close(&m);
}

TEST(mime_search_body_text)
{
	struct msg m;
	struct buf b = BUF_INIT;
	msg_open(&m, "MIME-Version: 1.0\r\n"
		     "Content-Type: multipart/mixed; boundary=s\r\n"
		     "\r\n"
		     "--s\r\n"
		     "Content-Type: text/plain; charset=iso-8859-1\r\n"
		     "Content-Transfer-Encoding: quoted-printable\r\n"
		     "\r\n"
		     "caf=E9\r\n"
		     "--s\r\n"
		     "Content-Type: image/png\r\n"
		     "Content-Transfer-Encoding: base64\r\n"
		     "\r\n"
		     "iVBORw0KGgo=\r\n"
		     "--s\r\n"
		     "Content-Type: message/rfc822\r\n"
		     "\r\n"
		     "Subject: inner\r\n"
		     "Content-Type: text/html; charset=x-unknown-cs\r\n"
		     "Content-Transfer-Encoding: base64\r\n"
		     "\r\n"
		     "PGI+aGk8L2I+\r\n"
		     "--s--\r\n");
	CHECK_INT(mime_search_body(m.t, 1000, &b), 0);
	CHECK_STR(str_of(&b), "caf\xc3\xa9\n<b>hi</b>\n");
	buf_reset(&b);
	CHECK_INT(mime_search_body(m.t, 4, &b), 0);
	CHECK_STR(str_of(&b), "caf\xc3");
	buf_reset(&b);
	CHECK_INT(mime_search_body(m.t, 0, &b), 0);
	CHECK_STR(str_of(&b), "");
	CHECK_INT(mime_search_body(NULL, 10, &b), -1);
	buf_free(&b);
	msg_close(&m);
}

/* --- robustness -------------------------------------------------------------- */

/* Every prefix of a tricky message parses and every builder answers. */
TEST(mime_every_prefix)
{
	struct buf all = BUF_INIT, out = BUF_INIT;
	buf_puts(&all, nested_msg);
	buf_puts(&all, enc_msg);
	buf_puts(&all, "\r\n--o\r\n--e--\r\n");
	for (size_t n = 0; n <= all.len; n++) {
		char *d = dup_exact(all.data, n);
		struct mime_tree *t = mime_parse(d, n);
		buf_reset(&out);
		CHECK_INT(mime_imap_envelope(t, &out), 0);
		CHECK_INT(mime_imap_bodystructure(t, true, &out), 0);
		CHECK_INT(mime_imap_bodystructure(t, false, &out), 0);
		CHECK_INT(mime_search_header(t, "", &out), 0);
		CHECK_INT(mime_search_body(t, 100, &out), 0);
		unsigned paths[][3] = {{1, 0, 0}, {2, 0, 0}, {2, 1, 0}, {2, 2, 0}, {3, 0, 0}};
		for (size_t k = 0; k < 5; k++) {
			size_t plen = paths[k][1] ? 2 : 1;
			for (int kind = MIME_SECT_BODY; kind <= MIME_SECT_MIME; kind++) {
				size_t st = 0, len = 0;
				int r = mime_section(t, paths[k], plen, (enum mime_sect)kind, &st,
						     &len);
				CHECK(r == 0 || r == 1);
				CHECK(r == 0 || (st <= n && len <= n - st));
			}
			int r = mime_binary(t, paths[k], plen, &out);
			CHECK(r == 0 || r == 1 || r == -2);
		}
		mime_tree_free(&t);
		free(d);
	}
	buf_free(&all);
	buf_free(&out);
}

/* --- the corpus ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	struct buf b = BUF_INIT;
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	/* an exact-size copy, for ASan */
	char *d = dup_exact(b.data != NULL ? b.data : "", b.len);
	*len = b.len;
	buf_free(&b);
	return d;
}

static const char *corpus_dir(void)
{
	static char dir[4096];
	const char *env = getenv("TERN_MIME_CORPUS");
	if (env != NULL)
		return env;
	/* __FILE__ is relative to the build folder that meson test runs in */
	snprintf(dir, sizeof dir, "%s", __FILE__);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		return "mime-corpus";
	snprintf(slash + 1, sizeof dir - (size_t)(slash + 1 - dir), "mime-corpus");
	return dir;
}

/* Reads NAME.EXT.tern if it exists, else NAME.EXT; drops one final "\n"
 * for the one-line files. */
static char *expected(const char *dir, const char *name, const char *ext, size_t *len, bool chop)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/%s.%s.tern", dir, name, ext);
	char *d = read_file(path, len);
	if (d == NULL) {
		snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
		d = read_file(path, len);
	}
	if (d != NULL && chop && *len > 0 && d[*len - 1] == '\n')
		(*len)--;
	return d;
}

static bool same(const char *name, const char *what, const char *got, size_t gl, const char *want,
		 size_t wl)
{
	if (gl == wl && memcmp(got, want, gl) == 0)
		return true;
	size_t i = 0;
	while (i < gl && i < wl && got[i] == want[i])
		i++;
	size_t from = i > 40 ? i - 40 : 0;
	fprintf(stderr, "  %s %s differs at octet %zu (lengths %zu, %zu):\n", name, what, i, gl,
		wl);
	for (int k = 0; k < 2; k++) {
		const char *s = k == 0 ? got : want;
		size_t l = k == 0 ? gl : wl;
		fprintf(stderr, "    %s ", k == 0 ? "got: " : "want:");
		for (size_t j = from; j < l && j < from + 120; j++) {
			unsigned char c = (unsigned char)s[j];
			if (c == '\r')
				fputs("\\r", stderr);
			else if (c == '\n')
				fputs("\\n", stderr);
			else if (c < 32 || c >= 127)
				fprintf(stderr, "\\x%02x", c);
			else
				fputc(c, stderr);
		}
		fputc('\n', stderr);
	}
	return false;
}

/* Tern's answer for one "== KIND SPEC" record. */
static void answer(struct mime_tree *t, const char *msg, const char *kind, const char *spec,
		   struct buf *out, bool *no)
{
	unsigned path[32];
	size_t n = 0;
	const char *p = spec;
	*no = false;
	while (*p >= '0' && *p <= '9' && n < 32) {
		path[n++] = (unsigned)strtoul(p, (char **)&p, 10);
		if (*p == '.')
			p++;
	}
	if (strcmp(kind, "BINARY") == 0) {
		int r = mime_binary(t, path, n, out);
		*no = r == -2;
		return;
	}
	size_t st, len;
	if (strncmp(p, "HEADER.FIELDS", 13) == 0) {
		bool not_ = strncmp(p + 13, ".NOT", 4) == 0;
		const char *names[16];
		char copy[256];
		size_t nn = 0;
		const char *open = strchr(p, '(');
		snprintf(copy, sizeof copy, "%s", open != NULL ? open + 1 : "");
		char *save = NULL;
		for (char *w = strtok_r(copy, " )", &save); w != NULL && nn < 16;
		     w = strtok_r(NULL, " )", &save))
			names[nn++] = w;
		if (mime_section(t, path, n, MIME_SECT_HEADER, &st, &len) == 1)
			CHECK_INT(mime_header_fields(msg, st, len, names, nn, not_, out), 0);
		return;
	}
	enum mime_sect k = MIME_SECT_BODY;
	if (strcmp(p, "HEADER") == 0)
		k = MIME_SECT_HEADER;
	else if (strcmp(p, "TEXT") == 0)
		k = MIME_SECT_TEXT;
	else if (strcmp(p, "MIME") == 0)
		k = MIME_SECT_MIME;
	if (mime_section(t, path, n, k, &st, &len) == 1)
		buf_append(out, msg + st, len);
}

/* TERN_MIME_DUMP=DIR: the corpus test also writes Tern's answers there
 * (NAME.envelope, NAME.body, NAME.bodystructure, NAME.sections), which is
 * how the NAME.X.tern files were made. */
static void dump(const char *name, const char *ext, const char *data, size_t len)
{
	const char *dir = getenv("TERN_MIME_DUMP");
	if (dir == NULL)
		return;
	char path[4400];
	snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		return;
	fwrite(data, 1, len, f);
	fclose(f);
}

static int check_sections(const char *name, struct mime_tree *t, const char *msg, const char *exp,
			  size_t el)
{
	struct buf mine = BUF_INIT;
	struct buf got = BUF_INIT;
	int failures = 0, records = 0;
	size_t i = 0;
	while (i < el) {
		const char *nl = memchr(exp + i, '\n', el - i);
		if (nl == NULL || el - i < 4 || memcmp(exp + i, "== ", 3) != 0) {
			fprintf(stderr, "  %s.sections: bad record at %zu\n", name, i);
			failures++;
			break;
		}
		char line[512];
		size_t ll = (size_t)(nl - (exp + i)) - 3;
		snprintf(line, sizeof line, "%.*s", (int)(ll < 511 ? ll : 511), exp + i + 3);
		i = (size_t)(nl - exp) + 1;
		char *kind = line;
		char *sp = strchr(line, ' ');
		char *last = strrchr(line, ' ');
		if (sp == NULL || last == sp) {
			failures++;
			break;
		}
		*sp = '\0';
		*last = '\0';
		const char *spec = sp + 1, *count = last + 1;
		const char *want = "";
		size_t wl = 0;
		bool want_no = strcmp(count, "NO") == 0;
		if (strcmp(count, "NIL") != 0 && !want_no) {
			wl = strtoul(count, NULL, 10);
			if (wl > el - i) {
				failures++;
				break;
			}
			want = exp + i;
			i += wl + 1;
		}
		bool no;
		buf_reset(&got);
		answer(t, msg, kind, spec, &got, &no);
		if (no)
			buf_printf(&mine, "== %s %s NO\n", kind, spec);
		else
			buf_printf(&mine, "== %s %s %zu\n", kind, spec, got.len);
		if (!no) {
			buf_append(&mine, got.data != NULL ? got.data : "", got.len);
			buf_putc(&mine, '\n');
		}
		char what[1100];
		snprintf(what, sizeof what, "%s[%s]", kind, spec);
		records++;
		if (no != want_no) {
			fprintf(stderr, "  %s %s: NO is %d, expected %d\n", name, what, no,
				want_no);
			failures++;
		} else if (!same(name, what, got.data != NULL ? got.data : "", got.len, want, wl)) {
			failures++;
		}
	}
	dump(name, "sections", mine.data != NULL ? mine.data : "", mine.len);
	buf_free(&mine);
	buf_free(&got);
	if (records < 30)
		failures++;
	return failures;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(mime_corpus_matches_dovecot)
{
	const char *dir = corpus_dir();
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "  corpus %s not found (set TERN_MIME_CORPUS)\n", dir);
		CHECK(d != NULL);
		return;
	}
	char *names[256];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 256) {
		size_t l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0)
			names[n++] = strndup(e->d_name, l - 4);
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_names);
	CHECK(n >= 20);

	static const char *const exts[] = {"envelope", "body", "bodystructure"};
	struct buf out = BUF_INIT;
	for (size_t k = 0; k < n; k++) {
		char path[4200];
		size_t ml, el;
		snprintf(path, sizeof path, "%s/%s.eml", dir, names[k]);
		char *msg = read_file(path, &ml);
		CHECK(msg != NULL);
		if (msg == NULL)
			continue;
		struct mime_tree *t = mime_parse(msg, ml);
		for (int x = 0; x < 3; x++) {
			char *want = expected(dir, names[k], exts[x], &el, true);
			if (want == NULL) {
				fprintf(stderr, "  %s.%s missing\n", names[k], exts[x]);
				CHECK(want != NULL);
				continue;
			}
			buf_reset(&out);
			int r = x == 0 ? mime_imap_envelope(t, &out)
				       : mime_imap_bodystructure(t, x == 2, &out);
			CHECK_INT(r, 0);
			buf_putc(&out, '\n');
			dump(names[k], exts[x], out.data, out.len);
			out.len--;
			CHECK(same(names[k], exts[x], out.data != NULL ? out.data : "", out.len,
				   want, el));
			free(want);
		}
		char *want = expected(dir, names[k], "sections", &el, false);
		CHECK(want != NULL);
		if (want != NULL) {
			int f = check_sections(names[k], t, msg, want, el);
			CHECK_INT(f, 0);
			free(want);
		}
		mime_tree_free(&t);
		free(msg);
		free(names[k]);
	}
	buf_free(&out);
}

/* SORT FROM/TO/CC key: addr-mailbox of the first entry, as ENVELOPE. */
static const char *first_mb(const char *v)
{
	static char out[256];
	struct buf b = BUF_INIT;
	CHECK_INT(mime_addr_first_mailbox(v, strlen(v), &b), 0);
	snprintf(out, sizeof out, "%s", buf_cstr(&b));
	buf_free(&b);
	return out;
}

TEST(mime_addr_first_mailbox_forms)
{
	CHECK_STR(first_mb(""), "");
	CHECK_STR(first_mb("a@b.example"), "a");
	CHECK_STR(first_mb("Zed <Zed.X@b.example>, a@b"), "Zed.X");
	CHECK_STR(first_mb("\"quoted local\"@b.example"), "quoted local");
	CHECK_STR(first_mb("x@y (Comment), a@b"), "x");
	CHECK_STR(first_mb("root"), "root"); /* no domain: the mailbox still counts */
	CHECK_STR(first_mb("Team: m@b, n@c;, z@d"), "Team"); /* a group: its name */
	CHECK_STR(first_mb("<@route.example:r@b.example>"), "r");
	CHECK_STR(first_mb("Name <@b>"), ""); /* no local part */
}
