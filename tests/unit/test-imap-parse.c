/*
 * test-imap-parse.c - unit tests for src/imap/imap-parse.c: the command
 * reader (whole and byte by byte, literals, limits), the tokenizer,
 * sequence sets, dates, modified UTF-7, base64, and the sequence number
 * <-> UID view of imap-view.c (against a plain array).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap-parse.h"
#include "imap-view.h"
#include "test.h"

/* Feeds s to a reader in pieces of step bytes (0: all at once); collects
 * the events in order as letters: C command, + continue, R refused,
 * L line too long, F fatal.  The last command is copied to cmd. */
static void feed(struct imap_reader *r, const char *s, size_t n, size_t step, char *events,
		 size_t evsz, char *cmd, size_t cmdsz)
{
	size_t ne = 0, i = 0;
	events[0] = '\0';
	if (cmd)
		cmd[0] = '\0';
	while (i < n) {
		size_t len = step ? (n - i < step ? n - i : step) : n - i;
		size_t off = 0;
		while (off < len) {
			size_t used;
			enum imap_read_result e =
			    imap_reader_feed(r, s + i + off, len - off, &used);
			off += used;
			char ch = 0;
			switch (e) {
			case IMAP_READ_MORE:
				break;
			case IMAP_READ_COMMAND:
				ch = 'C';
				if (cmd) {
					size_t k = r->cmd.len < cmdsz - 1 ? r->cmd.len : cmdsz - 1;
					memcpy(cmd, r->cmd.data ? r->cmd.data : "", k);
					cmd[k] = '\0';
				}
				imap_reader_next(r);
				break;
			case IMAP_READ_CONTINUE:
				ch = '+';
				break;
			case IMAP_READ_LITERAL_REFUSED:
				ch = 'R';
				imap_reader_next(r);
				break;
			case IMAP_READ_LINE_TOO_LONG:
				ch = 'L';
				if (cmd) {
					char tag[IMAP_TAG_MAX + 1];
					imap_reader_tag(r, tag, sizeof tag);
					snprintf(cmd, cmdsz, "%s", tag);
				}
				imap_reader_next(r);
				break;
			case IMAP_READ_GARBAGE:
				ch = 'G';
				break;
			case IMAP_READ_FATAL:
				ch = 'F';
				break;
			}
			if (ch && ne + 1 < evsz) {
				events[ne++] = ch;
				events[ne] = '\0';
			}
			if (ch == 'G' || ch == 'F')
				return;
			if (used == 0 && e == IMAP_READ_MORE)
				break;
		}
		i += len;
	}
}

TEST(imap_reader_lines_and_literals)
{
	static const struct {
		const char *in;
		const char *events;
		const char *last;
	} cases[] = {
	    {"a NOOP\r\n", "C", "a NOOP"},
	    {"a NOOP\n", "C", "a NOOP"},
	    {"a LOGIN {3}\r\nbob {6}\r\nsecret\r\n", "++C", "a LOGIN {3}\r\nbob {6}\r\nsecret"},
	    {"a LOGIN {3+}\r\nbob {6+}\r\nsecret\r\n", "C", "a LOGIN {3+}\r\nbob {6+}\r\nsecret"},
	    {"a APPEND x {5}\r\nab\r\nc\r\nb NOOP\r\n", "+CC", "b NOOP"},
	    {"a X {0}\r\n\r\n", "+C", "a X {0}\r\n"},
	    {"a X {100}\r\nb NOOP\r\n", "RC", "b NOOP"},
	    {"a X {101+}\r\n", "F", ""},
	};
	for (size_t step = 0; step <= 1; step++) {
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			struct imap_reader r;
			imap_reader_init(&r, 200, 99);
			char ev[16], cmd[256];
			feed(&r, cases[i].in, strlen(cases[i].in), step, ev, sizeof ev, cmd,
			     sizeof cmd);
			CHECK_STR(ev, cases[i].events);
			if (cases[i].last[0])
				CHECK_STR(cmd, cases[i].last);
			imap_reader_free(&r);
		}
	}
}

TEST(imap_reader_literal_limits)
{
	struct imap_reader r;
	imap_reader_init(&r, 200, 1000);
	char ev[16], cmd[64];
	/* LITERAL-: non-synchronizing literals over 4096 are fatal */
	r.literal_minus = true;
	feed(&r, "a X {999+}\r\n", 12, 0, ev, sizeof ev, cmd, sizeof cmd);
	CHECK_STR(ev, "");
	imap_reader_free(&r);
	imap_reader_init(&r, 200, 100000);
	r.literal_minus = true;
	feed(&r, "a X {4097+}\r\n", 13, 0, ev, sizeof ev, cmd, sizeof cmd);
	CHECK_STR(ev, "F");
	imap_reader_free(&r);
	/* a size that does not fit in 64 bits is left to the tokenizer */
	imap_reader_init(&r, 200, 100);
	feed(&r, "a X {99999999999999999999999}\r\n", 31, 0, ev, sizeof ev, cmd, sizeof cmd);
	CHECK_STR(ev, "C");
	imap_reader_free(&r);
	/* the tag of a refused literal */
	imap_reader_init(&r, 200, 10);
	size_t used;
	const char *in = "tag1 APPEND INBOX {11}\r\n";
	CHECK_INT(imap_reader_feed(&r, in, strlen(in), &used), IMAP_READ_LITERAL_REFUSED);
	char tag[32];
	imap_reader_tag(&r, tag, sizeof tag);
	CHECK_STR(tag, "tag1");
	imap_reader_next(&r);
	imap_reader_free(&r);
}

TEST(imap_reader_line_too_long)
{
	struct imap_reader r;
	char ev[16], cmd[64];
	for (size_t step = 0; step <= 1; step++) {
		/* skipped to its end, answered with its tag; the next line is
		 * a command again */
		imap_reader_init(&r, 10, 100);
		const char *in = "tag7 NOOP 123456789\r\nb NOOP\r\n";
		feed(&r, in, strlen(in), step, ev, sizeof ev, NULL, 0);
		CHECK_STR(ev, "LC");
		imap_reader_free(&r);
		imap_reader_init(&r, 10, 100);
		in = "tag7 NOOP 123456789\r\n";
		feed(&r, in, strlen(in), step, ev, sizeof ev, cmd, sizeof cmd);
		CHECK_STR(ev, "L");
		CHECK_STR(cmd, "tag7");
		imap_reader_free(&r);
		/* not before the line ends */
		imap_reader_init(&r, 10, 100);
		feed(&r, "a NOOP 123456789", 16, step, ev, sizeof ev, NULL, 0);
		CHECK_STR(ev, "");
		imap_reader_free(&r);
		/* a skipped line announcing a non-synchronizing literal, and a
		 * line far over the limit, end the session */
		imap_reader_init(&r, 10, 100);
		in = "a APPEND INBOX {5+}\r\nhello\r\n";
		feed(&r, in, strlen(in), step, ev, sizeof ev, NULL, 0);
		CHECK_STR(ev, "G");
		imap_reader_free(&r);
		imap_reader_init(&r, 10, 100);
		in = "a APPEND INBOX {5}\r\n";
		feed(&r, in, strlen(in), step, ev, sizeof ev, NULL, 0);
		CHECK_STR(ev, "L");
		imap_reader_free(&r);
		imap_reader_init(&r, 10, 100);
		char big[200];
		memset(big, 'x', sizeof big);
		feed(&r, big, sizeof big, step, ev, sizeof ev, NULL, 0);
		CHECK_STR(ev, "G");
		imap_reader_free(&r);
	}
	/* exactly the limit is fine */
	imap_reader_init(&r, 10, 100);
	feed(&r, "a NOOP 123\r\n", 12, 1, ev, sizeof ev, NULL, 0);
	CHECK_STR(ev, "C");
	CHECK(!imap_reader_busy(&r));
	imap_reader_shrink(&r);
	CHECK(r.cmd.data == NULL && r.lr.line.data == NULL);
	imap_reader_free(&r);
}

TEST(imap_reader_nul)
{
	struct imap_reader r;
	imap_reader_init(&r, 100, 100);
	size_t used;
	CHECK_INT(imap_reader_feed(&r, "a NO\0OP\r\n", 9, &used), IMAP_READ_COMMAND);
	CHECK(r.has_nul);
	imap_reader_next(&r);
	/* a NUL inside a literal is data, not an error */
	CHECK_INT(imap_reader_feed(&r, "a X {2+}\r\n\0\0\r\n", 14, &used), IMAP_READ_COMMAND);
	CHECK(!r.has_nul);
	imap_reader_free(&r);
}

/* ------------------------------------------------------------ tokens */

static enum imap_parse_error parse(const char *in, struct imap_command *c, char *copy,
				   const char **why)
{
	size_t n = strlen(in);
	memcpy(copy, in, n + 1);
	return imap_parse_command(copy, n, c, why);
}

static const char *tok(const struct imap_command *c, size_t i)
{
	static char b[256];
	if (i >= c->n_tok)
		return "(none)";
	const struct imap_tok *t = &c->tok[i];
	const char *kind = t->type == IMAP_TOK_ATOM      ? "A"
			   : t->type == IMAP_TOK_QUOTED  ? "Q"
			   : t->type == IMAP_TOK_LITERAL ? (t->lit8 ? "8" : "L")
			   : t->type == IMAP_TOK_LPAREN  ? "("
							 : ")";
	snprintf(b, sizeof b, "%s:%.*s", kind, (int)t->len, t->p);
	return b;
}

TEST(imap_parse_tokens)
{
	char copy[512];
	struct imap_command c;
	const char *why;
	CHECK_INT(parse("a1 LOGIN bob \"pa\\\"ss\\\\\"", &c, copy, &why), IMAP_PARSE_OK);
	CHECK(c.tag_len == 2 && memcmp(c.tag, "a1", 2) == 0);
	CHECK(c.name_len == 5 && memcmp(c.name, "LOGIN", 5) == 0);
	CHECK_INT(c.n_tok, 2);
	CHECK_STR(tok(&c, 0), "A:bob");
	CHECK_STR(tok(&c, 1), "Q:pa\"ss\\");
	imap_command_free(&c);

	CHECK_INT(parse("t FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100>)", &c,
			copy, &why),
		  IMAP_PARSE_OK);
	CHECK_INT(c.n_tok, 5);
	CHECK_STR(tok(&c, 0), "A:1:*");
	CHECK_STR(tok(&c, 1), "(:(");
	CHECK_STR(tok(&c, 2), "A:FLAGS");
	CHECK_STR(tok(&c, 3), "A:BODY.PEEK[HEADER.FIELDS (From \"To\")]<0.100>");
	CHECK_STR(tok(&c, 4), "):)");
	imap_command_free(&c);

	CHECK_INT(parse("t APPEND INBOX (\\Seen) {3}\r\nabc", &c, copy, &why), IMAP_PARSE_OK);
	CHECK_INT(c.n_tok, 5);
	CHECK_STR(tok(&c, 2), "A:\\Seen");
	CHECK_STR(tok(&c, 4), "L:abc");
	imap_command_free(&c);

	memcpy(copy, "t APPEND INBOX ~{3}\r\na\0c", 24);
	CHECK_INT(imap_parse_command(copy, 24, &c, &why), IMAP_PARSE_OK);
	CHECK_INT(c.n_tok, 2);
	CHECK(c.tok[1].type == IMAP_TOK_LITERAL && c.tok[1].lit8 && c.tok[1].len == 3);
	imap_command_free(&c);

	CHECK_INT(parse("t LIST \"\" %/*", &c, copy, &why), IMAP_PARSE_OK);
	CHECK_STR(tok(&c, 0), "Q:");
	CHECK_STR(tok(&c, 1), "A:%/*");
	imap_command_free(&c);

	CHECK_INT(parse("t NOOP", &c, copy, &why), IMAP_PARSE_OK);
	CHECK_INT(c.n_tok, 0);
	imap_command_free(&c);
}

TEST(imap_parse_errors)
{
	static const struct {
		const char *in;
		enum imap_parse_error e;
	} cases[] = {
	    {"", IMAP_PARSE_NO_TAG},
	    {" NOOP", IMAP_PARSE_NO_TAG},
	    {"a+b NOOP", IMAP_PARSE_NO_TAG},
	    {"*", IMAP_PARSE_NO_TAG},
	    {"a", IMAP_PARSE_SYNTAX},
	    {"a ", IMAP_PARSE_SYNTAX},
	    {"a NO-OP", IMAP_PARSE_SYNTAX},
	    {"a X (", IMAP_PARSE_SYNTAX},
	    {"a X )", IMAP_PARSE_SYNTAX},
	    {"a X \"abc", IMAP_PARSE_SYNTAX},
	    {"a X \"a\\b\"", IMAP_PARSE_SYNTAX},
	    {"a X {3}\r\nab", IMAP_PARSE_SYNTAX},
	    {"a X {3}ab", IMAP_PARSE_SYNTAX},
	    {"a X {}\r\n", IMAP_PARSE_SYNTAX},
	    {"a X \"a\"b", IMAP_PARSE_SYNTAX},
	    {"a X caf\xc3\xa9", IMAP_PARSE_SYNTAX},
	    {"a X a\x01", IMAP_PARSE_SYNTAX},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char copy[128];
		struct imap_command c;
		const char *why;
		enum imap_parse_error e = parse(cases[i].in, &c, copy, &why);
		if (e != cases[i].e)
			test_fail_str(__FILE__, __LINE__, "parse error kind", cases[i].in, why);
		CHECK(why[0] != '\0');
		imap_command_free(&c);
	}
	/* a "[" without its "]" is an ATOM-CHAR (RFC 9051 9) */
	{
		char cp[128];
		struct imap_command c;
		const char *why;
		CHECK_INT(
		    parse("a SELECT !#$&'+,-.0123456789:;<=>?@^_`|[} BODY[HEADER", &c, cp, &why),
		    IMAP_PARSE_OK);
		CHECK_INT(c.n_tok, 2);
		CHECK_INT(c.tok[0].len, 32);
		CHECK_INT(c.tok[1].len, 11);
		imap_command_free(&c);
	}
	/* nesting bound */
	char deep[256] = "a X ";
	size_t dl = strlen(deep);
	memset(deep + dl, '(', IMAP_MAX_DEPTH + 1);
	memset(deep + dl + IMAP_MAX_DEPTH + 1, ')', IMAP_MAX_DEPTH + 1);
	deep[dl + 2 * (IMAP_MAX_DEPTH + 1)] = '\0';
	char copy[256];
	struct imap_command c;
	const char *why;
	CHECK_INT(parse(deep, &c, copy, &why), IMAP_PARSE_SYNTAX);
	CHECK_STR(why, "Too deeply nested");
	imap_command_free(&c);
}

TEST(imap_tok_helpers)
{
	char copy[64];
	struct imap_command c;
	const char *why;
	CHECK_INT(parse("a X nil \"NIL\" 42 4294967296", &c, copy, &why), IMAP_PARSE_OK);
	CHECK(imap_tok_is_nil(&c.tok[0]));
	CHECK(!imap_tok_is_nil(&c.tok[1]));
	CHECK(imap_tok_eq(&c.tok[1], "nil"));
	uint64_t v;
	CHECK_INT(imap_tok_number(&c.tok[2], UINT32_MAX, &v), 0);
	CHECK_INT(v, 42);
	CHECK_INT(imap_tok_number(&c.tok[3], UINT32_MAX, &v), -1);
	imap_command_free(&c);
}

/* ------------------------------------------------------- sequence sets */

static const char *set_str(const char *in, uint32_t star)
{
	static char out[256];
	struct imap_seqset s;
	if (imap_parse_seqset(in, strlen(in), &s) < 0)
		return "invalid";
	imap_seqset_resolve(&s, star);
	struct buf b = BUF_INIT;
	imap_seqset_format(&s, &b);
	snprintf(out, sizeof out, "%s", buf_cstr(&b));
	buf_free(&b);
	imap_seqset_free(&s);
	return out;
}

TEST(imap_seqset)
{
	CHECK_STR(set_str("1", 10), "1");
	CHECK_STR(set_str("1:*", 10), "1:10");
	CHECK_STR(set_str("*:3", 10), "3:10");
	CHECK_STR(set_str("5,1:3,4", 10), "1:5");
	CHECK_STR(set_str("7,2,9:8", 10), "2,7:9");
	CHECK_STR(set_str("*", 0), "");
	CHECK_STR(set_str("4294967295", 1), "4294967295");
	CHECK_STR(set_str("0", 10), "invalid");
	CHECK_STR(set_str("1:0", 10), "invalid");
	CHECK_STR(set_str("", 10), "invalid");
	CHECK_STR(set_str("1,", 10), "invalid");
	CHECK_STR(set_str(",1", 10), "invalid");
	CHECK_STR(set_str("1::2", 10), "invalid");
	CHECK_STR(set_str("a", 10), "invalid");
	CHECK_STR(set_str("4294967296", 10), "invalid");
	CHECK_STR(set_str("1:2:3", 10), "invalid");
	CHECK_STR(set_str("$", 10), "invalid");
	struct imap_seqset s;
	CHECK_INT(imap_parse_seqset("2:4,8,10:*", 10, &s), 0);
	imap_seqset_resolve(&s, 12);
	CHECK(!imap_seqset_has(&s, 1));
	CHECK(imap_seqset_has(&s, 2) && imap_seqset_has(&s, 4) && imap_seqset_has(&s, 8));
	CHECK(!imap_seqset_has(&s, 9) && imap_seqset_has(&s, 12) && !imap_seqset_has(&s, 13));
	imap_seqset_free(&s);
}

/* --------------------------------------------------------------- dates */

TEST(imap_dates)
{
	time_t t;
	CHECK_INT(imap_parse_datetime("17-Jul-1996 02:44:25 -0700", 26, &t), 0);
	CHECK_INT(t, 837596665);
	CHECK_INT(imap_parse_datetime(" 1-Jan-2000 00:00:00 +0000", 26, &t), 0);
	CHECK_INT(t, 946684800);
	CHECK_INT(imap_parse_datetime("01-jan-2000 00:00:00 +0100", 26, &t), 0);
	CHECK_INT(t, 946681200);
	CHECK_INT(imap_parse_datetime("32-Jan-2000 00:00:00 +0000", 26, &t), -1);
	CHECK_INT(imap_parse_datetime("29-Feb-2001 00:00:00 +0000", 26, &t), -1);
	CHECK_INT(imap_parse_datetime("29-Feb-2000 00:00:00 +0000", 26, &t), 0);
	CHECK_INT(imap_parse_datetime("01-Foo-2000 00:00:00 +0000", 26, &t), -1);
	CHECK_INT(imap_parse_datetime("01-Jan-2000 24:00:00 +0000", 26, &t), -1);
	CHECK_INT(imap_parse_datetime("01-Jan-2000 00:00:00 0000", 25, &t), -1);
	char out[32];
	imap_format_datetime(837596665, out);
	CHECK_STR(out, "17-Jul-1996 09:44:25 +0000");
	int64_t d;
	/* A one-byte token: nothing may be read past it (found by fuzzing). */
	char *one = malloc(1);
	CHECK(one != NULL);
	one[0] = '1';
	CHECK_INT(imap_parse_date(one, 1, &d), -1);
	free(one);
	CHECK_INT(imap_parse_date("", 0, &d), -1);
	CHECK_INT(imap_parse_date("1-Feb-1994", 10, &d), 0);
	CHECK_INT(d, 8797);
	CHECK_INT(imap_parse_date("01-Feb-1994", 11, &d), 0);
	CHECK_INT(d, 8797);
	CHECK_INT(imap_parse_date("1-Feb-94", 8, &d), -1);
	CHECK_INT(imap_parse_date("", 0, &d), -1);
}

/* ------------------------------------------------------ modified UTF-7 */

static const char *m7dec(const char *in)
{
	static char out[256];
	struct buf b = BUF_INIT;
	if (imap_mutf7_decode(in, strlen(in), &b) < 0) {
		buf_free(&b);
		return "invalid";
	}
	snprintf(out, sizeof out, "%s", buf_cstr(&b));
	buf_free(&b);
	return out;
}

static const char *m7enc(const char *in)
{
	static char out[256];
	struct buf b = BUF_INIT;
	if (imap_mutf7_encode(in, strlen(in), &b) < 0) {
		buf_free(&b);
		return "invalid";
	}
	snprintf(out, sizeof out, "%s", buf_cstr(&b));
	buf_free(&b);
	return out;
}

TEST(imap_mutf7)
{
	/* RFC 3501 5.1.3 example */
	CHECK_STR(m7dec("~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
		  "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	CHECK_STR(
	    m7enc("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"),
	    "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	CHECK_STR(m7dec("A&-B"), "A&B");
	CHECK_STR(m7enc("A&B"), "A&-B");
	CHECK_STR(m7enc("Entw\xc3\xbc"
			"rfe"),
		  "Entw&APw-rfe");
	CHECK_STR(m7dec("Entw&APw-rfe"), "Entw\xc3\xbc"
					 "rfe");
	/* a character outside the BMP: a surrogate pair */
	CHECK_STR(m7enc("\xf0\x9f\x98\x80"), "&2D3eAA-");
	CHECK_STR(m7dec("&2D3eAA-"), "\xf0\x9f\x98\x80");
	/* invalid */
	CHECK_STR(m7dec("&"), "invalid");
	CHECK_STR(m7dec("&APw"), "invalid");
	CHECK_STR(m7dec("&-&"), "invalid");
	CHECK_STR(m7dec("&AGE-"), "invalid"); /* printable ASCII shifted */
	CHECK_STR(m7dec("&2D0-"), "invalid"); /* lone high surrogate */
	CHECK_STR(m7dec("&3gA-"), "invalid"); /* lone low surrogate */
	CHECK_STR(m7dec("&APx-"), "invalid"); /* stray bits */
	CHECK_STR(m7dec("&AP/-"), "invalid"); /* '/' is not modified base64 */
	CHECK_STR(m7dec("caf\xc3\xa9"), "invalid");
	CHECK_STR(m7dec("&APw-&APw-"), "invalid"); /* two shifts in a row */
	CHECK_STR(m7enc("\xff"), "invalid");
	CHECK_STR(m7enc("\xc3"), "invalid");
	CHECK_STR(m7enc("\xed\xa0\x80"), "invalid"); /* surrogate in UTF-8 */
}

TEST(imap_base64)
{
	unsigned char out[64];
	size_t n;
	CHECK_INT(imap_base64_decode("AGJvYgBzZWNyZXQ=", 16, out, sizeof out, &n), 0);
	CHECK_INT(n, 11);
	CHECK(memcmp(out, "\0bob\0secret", 11) == 0);
	CHECK_INT(imap_base64_decode("YQ==", 4, out, sizeof out, &n), 0);
	CHECK_INT(n, 1);
	CHECK_INT(imap_base64_decode("YR==", 4, out, sizeof out, &n), -1);
	CHECK_INT(imap_base64_decode("YQ=", 3, out, sizeof out, &n), -1);
	CHECK_INT(imap_base64_decode("Y=Q=", 4, out, sizeof out, &n), -1);
	CHECK_INT(imap_base64_decode("YQ,,", 4, out, sizeof out, &n), -1);
	CHECK_INT(imap_base64_decode("AAAA", 4, out, 2, &n), -1);
}

TEST(imap_strings)
{
	struct buf b = BUF_INIT;
	imap_append_string(&b, "a\"b\\c", 5);
	CHECK_STR(buf_cstr(&b), "\"a\\\"b\\\\c\"");
	buf_reset(&b);
	imap_append_string(&b, "a\r\nb", 4);
	CHECK_STR(buf_cstr(&b), "{4}\r\na\r\nb");
	buf_reset(&b);
	imap_append_nstring(&b, NULL, 0);
	CHECK_STR(buf_cstr(&b), "NIL");
	buf_free(&b);
}

/* ---------------------------------------------------------------- view */

static void check_view(const struct imap_view *v, const uint32_t *ref, size_t n)
{
	CHECK_INT(v->n, n);
	CHECK_INT(imap_view_first(v), n ? ref[0] : 0);
	CHECK_INT(imap_view_last(v), n ? ref[n - 1] : 0);
	for (size_t i = 0; i < n; i++) {
		CHECK_INT(imap_view_uid(v, (uint32_t)i + 1), ref[i]);
		CHECK_INT(imap_view_seq(v, ref[i]), i + 1);
	}
	CHECK_INT(imap_view_uid(v, 0), 0);
	CHECK_INT(imap_view_uid(v, (uint32_t)n + 1), 0);
	/* every uid up to the last + 1: seq (0 if absent) and seq_from */
	uint32_t top = n ? ref[n - 1] + 1 : 2;
	size_t k = 0;
	for (uint32_t u = 1; u <= top; u++) {
		while (k < n && ref[k] < u)
			k++;
		bool in = k < n && ref[k] == u;
		CHECK_INT(imap_view_seq(v, u), in ? k + 1 : 0);
		CHECK_INT(imap_view_seq_from(v, u), k + 1);
	}
}

TEST(imap_view_runs)
{
	struct imap_view v = {NULL, 0, 0, 0};
	uint32_t ref[200];
	size_t n = 0;
	uint32_t add[150];
	size_t na = 0;
	/* runs with gaps: 1..50, 60..99, 101, 103..160 */
	for (uint32_t u = 1; u <= 160; u++)
		if ((u <= 50 || u >= 60) && u != 100 && u != 102)
			add[na++] = u;
	imap_view_append(&v, add, na);
	memcpy(ref, add, na * sizeof *add);
	n = na;
	CHECK_INT(v.nr, 4);
	check_view(&v, ref, n);
	/* remove from the middle, the ends of runs, whole runs, pseudo-random */
	uint32_t seed = 7;
	while (n > 0) {
		seed = seed * 1103515245u + 12345u;
		uint32_t seq = (uint32_t)((seed >> 8) % n) + 1;
		imap_view_remove(&v, seq);
		memmove(&ref[seq - 1], &ref[seq], (n - seq) * sizeof *ref);
		n--;
		if (n % 7 == 0)
			check_view(&v, ref, n);
	}
	check_view(&v, ref, 0);
	/* appending after removals */
	uint32_t more[] = {500, 501, 502, 700};
	imap_view_append(&v, more, 4);
	memcpy(ref, more, sizeof more);
	check_view(&v, ref, 4);
	CHECK_INT(v.nr, 2);
	imap_view_free(&v);
	CHECK(v.r == NULL && v.n == 0);
}

/* ------------------------------------------------------------ QRESYNC */

/* Parses "t SELECT INBOX (QRESYNC <arg>)" and runs imap_parse_qresync on
 * the tokens after QRESYNC; -1 on error.  *q is set on success. */
static int qresync(const char *arg, struct imap_qresync *q)
{
	char line[512], copy[512];
	snprintf(line, sizeof line, "t SELECT INBOX (QRESYNC %s)", arg);
	struct imap_command c;
	const char *why;
	int r = -1;
	if (parse(line, &c, copy, &why) == IMAP_PARSE_OK && c.n_tok >= 4) {
		size_t used;
		/* tokens: INBOX ( QRESYNC <arg...> ) */
		r = imap_parse_qresync(c.tok + 3, c.n_tok - 3, &used, q, &why);
		if (r == 0 && used + 4 != c.n_tok) {
			imap_qresync_free(q);
			r = -1;
		}
	}
	imap_command_free(&c);
	return r;
}

TEST(imap_qresync_param)
{
	struct imap_qresync q;
	struct buf b = BUF_INIT;
	CHECK_INT(qresync("(67890007 20050715194045000)", &q), 0);
	CHECK_INT(q.uidvalidity, 67890007);
	CHECK(q.modseq == UINT64_C(20050715194045000));
	CHECK_INT(q.known.n, 0);
	CHECK_INT(q.seqs.n, 0);
	imap_qresync_free(&q);

	CHECK_INT(qresync("(1 9223372036854775807 41,43:211,214:541)", &q), 0);
	CHECK(q.modseq == UINT64_C(9223372036854775807));
	CHECK_INT(q.known.n, 3);
	imap_seqset_format(&q.known, &b);
	CHECK_STR(buf_cstr(&b), "41,43:211,214:541");
	imap_qresync_free(&q);

	/* RFC 7162 3.2.5.2's example, and seq-match data without known uids */
	CHECK_INT(qresync("(67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
			  "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,"
			  "29994,29997))",
			  &q),
		  0);
	CHECK_INT(q.seqs.n, 4);
	CHECK_INT(q.uids.n, 13);
	imap_qresync_free(&q);
	CHECK_INT(qresync("(5 7 (1:3 10,20,30))", &q), 0);
	CHECK_INT(q.known.n, 0);
	CHECK_INT(q.seqs.n, 1);
	imap_qresync_free(&q);

	/* BAD: zero or too large numbers, "*", missing parts, order, sizes */
	static const char *const bad[] = {
	    "(0 5)",           "(1 0)",          "(4294967296 5)", "(1 9223372036854775808)",
	    "(1)",             "()",             "1 5",            "(1 5 1:*)",
	    "(1 5 * )",        "(1 5 1:3 (1 2 3))", "(1 5 1:3 (2,1 5,6))", "(1 5 (1:2 3:5))",
	    "(1 5 (1 5) 7)",   "(1 5 1:3 4)",    "(\"1\" 5)",      "(1 5 (1 *))",
	    "(1 5 (1,1 2,3))", "(1 5 (1 2)",     "(1 x)",          "(1 5 ())",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (qresync(bad[i], &q) == 0) {
			imap_qresync_free(&q);
			CHECK_STR(bad[i], "(refused)");
		}
	}
	buf_free(&b);
}

/* RFC 7162 3.2.5.2: the pairs up to the first mismatch say which uids the
 * client knows of; the view's missing uids inside a set. */
TEST(imap_view_match_and_missing)
{
	struct imap_view v = {NULL, 0, 0, 0};
	/* the RFC's example: the 4th message has uid 8, the 12th uid 25 */
	uint32_t u[] = {1, 2, 5, 8, 9, 10, 11, 12, 20, 21, 22, 25, 30};
	imap_view_append(&v, u, 13);
	struct imap_seqset seqs, uids;
	CHECK_INT(imap_parse_seqset("4,12", 4, &seqs), 0);
	CHECK_INT(imap_parse_seqset("8,24", 4, &uids), 0);
	CHECK_INT(imap_view_match(&v, &seqs, &uids), 9);
	imap_seqset_free(&uids);
	CHECK_INT(imap_parse_seqset("8,25", 4, &uids), 0);
	CHECK_INT(imap_view_match(&v, &seqs, &uids), 26);
	imap_seqset_free(&uids);
	imap_seqset_free(&seqs);
	/* a range of pairs, and a first pair that does not match */
	CHECK_INT(imap_parse_seqset("1:4", 3, &seqs), 0);
	CHECK_INT(imap_parse_seqset("1,2,5,8", 7, &uids), 0);
	CHECK_INT(imap_view_match(&v, &seqs, &uids), 9);
	imap_seqset_free(&uids);
	CHECK_INT(imap_parse_seqset("2,2,5,8", 7, &uids), 0);
	CHECK_INT(imap_view_match(&v, &seqs, &uids), 1);
	imap_seqset_free(&uids);
	imap_seqset_free(&seqs);
	/* sequence numbers past the view stop the walk, however long */
	CHECK_INT(imap_parse_seqset("13:4294967295", 13, &seqs), 0);
	CHECK_INT(imap_parse_seqset("30:4294967282", 13, &uids), 0);
	CHECK_INT(imap_view_match(&v, &seqs, &uids), 31);
	imap_seqset_free(&uids);
	imap_seqset_free(&seqs);

	struct imap_seqset set, miss = {NULL, 0};
	struct buf b = BUF_INIT;
	CHECK_INT(imap_parse_seqset("1:40", 4, &set), 0);
	imap_seqset_resolve(&set, 0);
	imap_view_missing(&v, &set, 1, 32, &miss);
	imap_seqset_format(&miss, &b);
	CHECK_STR(buf_cstr(&b), "3:4,6:7,13:19,23:24,26:29,31:32");
	imap_seqset_free(&miss);
	buf_reset(&b);
	imap_view_missing(&v, &set, 9, 21, &miss);
	imap_seqset_format(&miss, &b);
	CHECK_STR(buf_cstr(&b), "13:19");
	imap_seqset_free(&miss);
	imap_seqset_free(&set);
	buf_reset(&b);
	CHECK_INT(imap_parse_seqset("2,6,8,26:27", 11, &set), 0);
	imap_seqset_resolve(&set, 0);
	imap_view_missing(&v, &set, 1, 100, &miss);
	imap_seqset_format(&miss, &b);
	CHECK_STR(buf_cstr(&b), "6,26:27");
	imap_seqset_free(&miss);
	imap_seqset_free(&set);
	buf_free(&b);
	imap_view_free(&v);
}
