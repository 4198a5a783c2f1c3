/*
 * test-header.c - unit tests for src/mail/header.c (RFC 5322 header
 * section parsing).  Messages are copied into heap blocks of exactly their
 * length so that ASan sees any read past the end.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "test.h"

struct parsed {
	char *msg; /* exact-size copy the fields point into */
	struct header h;
	enum header_error e;
};

static void parse_n(struct parsed *p, const char *s, size_t n)
{
	p->msg = calloc(1, n > 0 ? n : 1);
	if (p->msg == NULL)
		abort();
	memcpy(p->msg, s, n);
	p->e = header_parse(p->msg, n, &p->h);
}

static void parse(struct parsed *p, const char *s)
{
	parse_n(p, s, strlen(s));
}

static void done(struct parsed *p)
{
	header_free(&p->h);
	free(p->msg);
	p->msg = NULL;
}

/* Field i's name and value as C strings, for CHECK_STR. */
static const char *name_of(const struct header *h, size_t i)
{
	static char buf[2048];
	size_t n = h->fields[i].name_len < sizeof buf - 1 ? h->fields[i].name_len : sizeof buf - 1;
	memcpy(buf, h->fields[i].name, n);
	buf[n] = '\0';
	return buf;
}

static const char *value_of(const struct header_field *f)
{
	static char buf[4096];
	size_t n = f->value_len < sizeof buf - 1 ? f->value_len : sizeof buf - 1;
	memcpy(buf, f->value, n);
	buf[n] = '\0';
	return buf;
}

/* A message of count fields "X-N: v" then an empty line and a body. */
static char *many_fields(size_t count, size_t *len)
{
	char *m = malloc(count * 16 + 16);
	size_t o = 0;
	if (m == NULL)
		abort();
	for (size_t i = 0; i < count; i++)
		o += (size_t)snprintf(m + o, 16, "X-%zu: v\r\n", i % 10000);
	memcpy(m + o, "\r\nbody", 6);
	*len = o + 6;
	return m;
}

TEST(header_basic_crlf)
{
	struct parsed p;
	const char *m = "From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\nbody\r\n";
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 3);
	CHECK_STR(name_of(&p.h, 0), "From");
	CHECK_STR(value_of(&p.h.fields[0]), " a@b.example");
	CHECK_STR(name_of(&p.h, 2), "Subject");
	CHECK_STR(value_of(&p.h.fields[2]), " hi");
	CHECK(p.h.has_body_separator);
	CHECK_INT(p.h.header_len, strstr(m, "body") - m);
	done(&p);
}

TEST(header_basic_lf_only)
{
	struct parsed p;
	const char *m = "From: a@b.example\nTo: c@d.example\n\nbody\n";
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 2);
	CHECK_STR(value_of(&p.h.fields[0]), " a@b.example");
	CHECK_STR(value_of(&p.h.fields[1]), " c@d.example");
	CHECK(p.h.has_body_separator);
	CHECK_INT(p.h.header_len, strstr(m, "body") - m);
	done(&p);
}

TEST(header_mixed_line_ends)
{
	struct parsed p;
	const char *m = "A: 1\nB: 2\r\nC: 3\n\r\nbody";
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 3);
	CHECK_STR(value_of(&p.h.fields[1]), " 2");
	CHECK_STR(value_of(&p.h.fields[2]), " 3");
	CHECK_INT(p.h.header_len, strlen(m) - 4);
	done(&p);
}

TEST(header_folded)
{
	struct parsed p;
	const char *m = "Subject: hello\r\n world\r\n\tagain\r\nX: y\r\n\r\n";
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 2);
	CHECK_STR(value_of(&p.h.fields[0]), " hello\r\n world\r\n\tagain");
	CHECK_STR(value_of(&p.h.fields[1]), " y");
	char out[64];
	CHECK_INT(header_unfold(p.h.fields[0].value, p.h.fields[0].value_len, out, sizeof out), 17);
	CHECK_STR(out, "hello world\tagain");
	done(&p);
}

TEST(header_folded_lf_and_blank_lines)
{
	struct parsed p;
	/* a continuation of only blanks is obsolete but legal (obs-FWS) */
	const char *m = "Subject: a\n  \n b\nX: y\n\n";
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 2);
	CHECK_STR(value_of(&p.h.fields[0]), " a\n  \n b");
	char out[64];
	header_unfold(p.h.fields[0].value, p.h.fields[0].value_len, out, sizeof out);
	CHECK_STR(out, "a   b");
	done(&p);
}

TEST(header_no_body_separator)
{
	struct parsed p;
	const char *m = "A: 1\r\nB: 2";
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 2);
	CHECK_STR(value_of(&p.h.fields[1]), " 2");
	CHECK(!p.h.has_body_separator);
	CHECK_INT(p.h.header_len, strlen(m));
	done(&p);
	parse(&p, "A: 1\r\nB: 2\r\n");
	CHECK_INT(p.e, HEADER_OK);
	CHECK(!p.h.has_body_separator);
	CHECK_INT(p.h.header_len, 12);
	done(&p);
	/* a cut-off CRLF at the very end is not part of the value */
	parse(&p, "A: 1\r\nB: 2\r");
	CHECK_INT(p.e, HEADER_OK);
	CHECK_STR(value_of(&p.h.fields[1]), " 2");
	CHECK(!p.h.has_body_separator);
	CHECK_INT(p.h.header_len, 11);
	done(&p);
	parse(&p, "A: 1\r\n\r");
	CHECK_INT(p.e, HEADER_OK);
	CHECK(!p.h.has_body_separator);
	CHECK_INT(p.h.header_len, 7);
	done(&p);
}

TEST(header_empty_inputs)
{
	struct parsed p;
	parse_n(&p, "", 0);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 0);
	CHECK_INT(p.h.header_len, 0);
	CHECK(!p.h.has_body_separator);
	done(&p);
	parse(&p, "\r\nbody");
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 0);
	CHECK_INT(p.h.header_len, 2);
	CHECK(p.h.has_body_separator);
	done(&p);
	parse(&p, "\nbody");
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.header_len, 1);
	CHECK(p.h.has_body_separator);
	done(&p);
}

TEST(header_body_is_not_parsed)
{
	struct parsed p;
	parse(&p, "A: 1\n\nFrom someone\n junk\n: more\n");
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 1);
	done(&p);
}

TEST(header_syntax_errors)
{
	static const char *const bad[] = {
		"From a@b.example Mon Jan  1 00:00:00 2024\nFrom: a@b\n\n",
		"A: 1\nFrom a@b.example Mon Jan  1 00:00:00 2024\n\n",
		" leading: continuation\n\n",
		"\tX: y\n\n",
		"hello world\r\n\r\n",
		"NoColon\r\n\r\n",
		": empty name\r\n\r\n",
		"Bad Name: x\r\n\r\n",
		"A: 1\r\njunk\r\n\r\n",
		"N\xc3\xa4me: x\r\n\r\n",
		"Na\x7fme: x\r\n\r\n",
		"A: 1\r\nB",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct parsed p;
		parse(&p, bad[i]);
		if (p.e != HEADER_ERR_SYNTAX)
			fprintf(stderr, "  case %zu\n", i);
		CHECK_INT(p.e, HEADER_ERR_SYNTAX);
		CHECK(p.h.fields == NULL);
		CHECK_INT(p.h.n_fields, 0);
		CHECK_INT(p.h.header_len, 0);
		done(&p);
	}
	struct parsed p;
	parse_n(&p, "Na\0me: x\n\n", 10);
	CHECK_INT(p.e, HEADER_ERR_SYNTAX);
	done(&p);
}

TEST(header_obsolete_space_before_colon)
{
	struct parsed p;
	parse(&p, "Name : v\r\nOther\t: w\r\n\r\n");
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 2);
	CHECK_STR(name_of(&p.h, 0), "Name");
	CHECK_STR(value_of(&p.h.fields[0]), " v");
	CHECK_STR(name_of(&p.h, 1), "Other");
	done(&p);
}

TEST(header_odd_but_valid)
{
	struct parsed p;
	/* empty value, no space after the colon, colons inside the value,
	 * printable punctuation in names, NUL and 8-bit bytes in values */
	static const char m[] = "X:\r\nY:z\r\nZ: a:b:c\r\nX-!#$%&'*+^_`{|}~.(): q\r\nB: \0\xff\r\n\r\n";
	parse_n(&p, m, sizeof m - 1);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 5);
	CHECK_INT(p.h.fields[0].value_len, 0);
	CHECK_STR(value_of(&p.h.fields[1]), "z");
	CHECK_STR(value_of(&p.h.fields[2]), " a:b:c");
	CHECK_STR(name_of(&p.h, 3), "X-!#$%&'*+^_`{|}~.()");
	CHECK_INT(p.h.fields[4].value_len, 3);
	done(&p);
}

TEST(header_line_length_limit)
{
	char m[2100];
	struct parsed p;
	/* 998 octets plus CRLF */
	memcpy(m, "X: ", 3);
	memset(m + 3, 'v', 995);
	memcpy(m + 998, "\r\n\r\n", 5);
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.fields[0].value_len, 996);
	done(&p);
	/* 998 octets plus bare LF */
	memcpy(m + 998, "\n\n", 3);
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	done(&p);
	/* 999 octets */
	memset(m + 3, 'v', 996);
	memcpy(m + 999, "\r\n\r\n", 5);
	parse(&p, m);
	CHECK_INT(p.e, HEADER_ERR_LINE_TOO_LONG);
	CHECK(p.h.fields == NULL);
	CHECK_INT(p.h.n_fields, 0);
	done(&p);
	memcpy(m + 999, "\n\n", 3);
	parse(&p, m);
	CHECK_INT(p.e, HEADER_ERR_LINE_TOO_LONG);
	done(&p);
	/* without any line end at all */
	m[999] = '\0';
	parse(&p, m);
	CHECK_INT(p.e, HEADER_ERR_LINE_TOO_LONG);
	done(&p);
	/* a long continuation line counts on its own */
	memcpy(m, "X: a\r\n ", 7);
	memset(m + 7, 'v', 998);
	memcpy(m + 1005, "\r\n\r\n", 5);
	parse(&p, m);
	CHECK_INT(p.e, HEADER_ERR_LINE_TOO_LONG);
	done(&p);
	memset(m + 7, 'v', 997);
	memcpy(m + 1004, "\r\n\r\n", 5);
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.fields[0].value_len, 2 + 2 + 998); /* " a" CRLF and the line */
	done(&p);
	/* the body may have long lines */
	memcpy(m, "X: a\r\n\r\n", 8);
	memset(m + 8, 'b', 2000);
	m[2008] = '\0';
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	done(&p);
}

TEST(header_name_length_limit)
{
	char m[200];
	struct parsed p;
	memset(m, 'N', HEADER_MAX_NAME);
	memcpy(m + HEADER_MAX_NAME, ": v\r\n\r\n", 8);
	parse(&p, m);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.fields[0].name_len, HEADER_MAX_NAME);
	done(&p);
	memset(m, 'N', HEADER_MAX_NAME + 1);
	memcpy(m + HEADER_MAX_NAME + 1, ": v\r\n\r\n", 8);
	parse(&p, m);
	CHECK_INT(p.e, HEADER_ERR_SYNTAX);
	done(&p);
}

TEST(header_field_count_limit)
{
	size_t len;
	char *m = many_fields(HEADER_MAX_FIELDS, &len);
	struct parsed p;
	parse_n(&p, m, len);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, HEADER_MAX_FIELDS);
	CHECK_STR(name_of(&p.h, HEADER_MAX_FIELDS - 1), "X-999");
	CHECK_INT(p.h.header_len, len - 4);
	done(&p);
	free(m);
	m = many_fields(HEADER_MAX_FIELDS + 1, &len);
	parse_n(&p, m, len);
	CHECK_INT(p.e, HEADER_ERR_TOO_MANY);
	CHECK(p.h.fields == NULL);
	CHECK_INT(p.h.n_fields, 0);
	done(&p);
	free(m);
	/* a huge count does not mean huge memory: parsing stops at the limit */
	m = many_fields(20000, &len);
	parse_n(&p, m, len);
	CHECK_INT(p.e, HEADER_ERR_TOO_MANY);
	done(&p);
	free(m);
}

TEST(header_find_and_count)
{
	struct parsed p;
	parse(&p, "Received: one\r\nSUBJECT: s\r\nreceived: two\r\nFrom: f\r\n\r\n");
	CHECK_INT(p.e, HEADER_OK);
	const struct header_field *f = header_find(&p.h, "subject");
	CHECK(f != NULL);
	if (f != NULL)
		CHECK_STR(value_of(f), " s");
	f = header_find(&p.h, "Received");
	CHECK(f == &p.h.fields[0]);
	CHECK_INT(header_count(&p.h, "RECEIVED"), 2);
	CHECK_INT(header_count(&p.h, "from"), 1);
	CHECK_INT(header_count(&p.h, "To"), 0);
	CHECK(header_find(&p.h, "To") == NULL);
	CHECK(header_find(&p.h, "Fro") == NULL);
	CHECK(header_find(&p.h, "From2") == NULL);
	done(&p);
	/* an empty header */
	parse(&p, "\r\n");
	CHECK(header_find(&p.h, "From") == NULL);
	CHECK_INT(header_count(&p.h, "From"), 0);
	done(&p);
}

TEST(header_unfold_cases)
{
	char out[32];
	CHECK_INT(header_unfold("  a b  ", 7, out, sizeof out), 3);
	CHECK_STR(out, "a b");
	CHECK_INT(header_unfold(" a\r\n b", 6, out, sizeof out), 3);
	CHECK_STR(out, "a b");
	CHECK_INT(header_unfold(" a\n\tb", 5, out, sizeof out), 3);
	CHECK_STR(out, "a\tb");
	CHECK_INT(header_unfold(" a\r\n \r\n ", 8, out, sizeof out), 1);
	CHECK_STR(out, "a");
	CHECK_INT(header_unfold("", 0, out, sizeof out), 0);
	CHECK_STR(out, "");
	CHECK_INT(header_unfold(" \t\r\n ", 5, out, sizeof out), 0);
	CHECK_STR(out, "");
	/* truncation */
	CHECK_INT(header_unfold(" abcdef", 7, out, 4), 3);
	CHECK_STR(out, "abc");
	CHECK_INT(header_unfold(" abcdef", 7, out, 1), 0);
	CHECK_STR(out, "");
	out[0] = 'z';
	CHECK_INT(header_unfold(" abcdef", 7, out, 0), 0);
	CHECK_INT(out[0], 'z');
	/* the value's own length bounds it, not a NUL */
	CHECK_INT(header_unfold(" abcdef", 3, out, sizeof out), 2);
	CHECK_STR(out, "ab");
}

TEST(header_free_twice_and_null)
{
	struct parsed p;
	parse(&p, "A: 1\r\n\r\n");
	header_free(&p.h);
	header_free(&p.h);
	CHECK(p.h.fields == NULL);
	header_free(NULL);
	done(&p);
}

TEST(header_every_prefix)
{
	/* Every prefix parses without reading past its end; fields stay
	 * inside it; the result is OK except where the cut leaves a partial
	 * field name (which is a junk line). */
	const char *m = "Received: from a.example\r\n\tby b.example; Mon, 1 Jan 2024\r\n"
			"From : \"J D\" <j@d.example>\nSubject: \xc3\xa4\r\n \r\n\r\nbody\r\n";
	size_t n = strlen(m);
	for (size_t k = 0; k <= n; k++) {
		struct parsed p;
		parse_n(&p, m, k);
		CHECK(p.e == HEADER_OK || p.e == HEADER_ERR_SYNTAX);
		CHECK(p.h.header_len <= k);
		for (size_t i = 0; i < p.h.n_fields; i++) {
			const struct header_field *f = &p.h.fields[i];
			CHECK(f->name >= p.msg && f->name + f->name_len <= p.msg + k);
			CHECK(f->value >= p.msg && f->value + f->value_len <= p.msg + k);
		}
		if (p.e == HEADER_OK && k > 0) {
			/* the last field's value never ends in a line end */
			const struct header_field *f = &p.h.fields[p.h.n_fields - 1];
			CHECK(f->value_len == 0 || (f->value[f->value_len - 1] != '\n' &&
						    f->value[f->value_len - 1] != '\r'));
		}
		done(&p);
	}
	struct parsed p;
	parse_n(&p, m, n);
	CHECK_INT(p.e, HEADER_OK);
	CHECK_INT(p.h.n_fields, 3);
	CHECK(p.h.has_body_separator);
	done(&p);
}

TEST(header_byte_by_byte_fields_stable)
{
	/* Whatever prefix was parsed, the fields it found are the same as in
	 * the whole message, except the last one, which may be cut short. */
	const char *m = "A: 1\r\nB: 2\r\n 3\r\nC: 4\r\n\r\n";
	size_t n = strlen(m);
	struct parsed whole;
	parse_n(&whole, m, n);
	CHECK_INT(whole.e, HEADER_OK);
	for (size_t k = 1; k <= n; k++) {
		struct parsed p;
		parse_n(&p, m, k);
		if (p.e == HEADER_OK && p.h.n_fields > 1) {
			for (size_t i = 0; i + 1 < p.h.n_fields; i++) {
				CHECK_INT(p.h.fields[i].name_len, whole.h.fields[i].name_len);
				CHECK_INT(p.h.fields[i].value_len, whole.h.fields[i].value_len);
			}
		}
		done(&p);
	}
	done(&whole);
}
