/*
 * test-vcard.c - unit tests for src/mail/vcard.c: unfolding (also of a
 * multi-octet character split by a fold), groups, parameters (quoted,
 * lists, the 3.0 bare form), text values, the frame, every limit, and the
 * errors for broken folding, invalid UTF-8 and control characters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "vcard.h"

static enum vcard_error parse(const char *s, struct vcard *v, char *err, size_t errsz)
{
	return vcard_parse(s, strlen(s), NULL, v, err, errsz);
}

static char *text_of(const struct vcard_prop *p, char comp, char list)
{
	static char out[512];
	struct buf b = BUF_INIT;
	buf_init(&b, sizeof out - 1);
	if (vcard_text(p->value, p->value_len, comp, list, &b) < 0)
		snprintf(out, sizeof out, "<full>");
	else
		snprintf(out, sizeof out, "%.*s", (int)b.len, b.data ? b.data : "");
	buf_free(&b);
	return out;
}

TEST(vcard_v4_fields)
{
	static const char card[] = "BEGIN:VCARD\r\n"
				   "VERSION:4.0\r\n"
				   "UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\n"
				   "FN:J\xc3\r\n"
				   " \xa9r\xc3\xb4me Doe\r\n"
				   "N:Doe;J\\;r\xc3\xb4me;;Dr.,Prof.;\r\n"
				   "item1.EMAIL;TYPE=work,\"pref:1\";PREF=1:jd@example.test\r\n"
				   "tel;value=uri;type=\"voice,home\":tel:+1-555-555-5555\r\n"
				   "NOTE:line one\\nline two\\, and \\\\ more\r\n"
				   "X-UNKNOWN-THING;X-P=a:kept as is\r\n"
				   "END:VCARD\r\n";
	struct vcard v;
	char err[256] = "";
	CHECK_INT(parse(card, &v, err, sizeof err), VCARD_OK);
	CHECK_INT(v.version, 4);
	CHECK_INT(v.n_props, 7);
	const struct vcard_prop *p = vcard_find(&v, "FN", NULL);
	CHECK(p != NULL);
	/* The fold split the two octets of U+00E9: unfolding restores it. */
	CHECK_STR(p->value, "J\xc3\xa9r\xc3\xb4me Doe");
	CHECK_INT(p->line, 4);
	p = vcard_find(&v, "N", NULL);
	CHECK_STR(text_of(p, ' ', ' '), "Doe J;r\xc3\xb4me Dr. Prof.");
	p = vcard_find(&v, "EMAIL", NULL);
	CHECK_STR(p->group, "item1");
	CHECK_INT(p->n_params, 2);
	CHECK_STR(vcard_param(p, "TYPE"), "work,pref:1");
	CHECK_STR(vcard_param(p, "PREF"), "1");
	CHECK_STR(p->value, "jd@example.test");
	p = vcard_find(&v, "TEL", NULL);
	CHECK(p != NULL && p->group == NULL);
	CHECK_STR(vcard_param(p, "VALUE"), "uri");
	CHECK_STR(vcard_param(p, "TYPE"), "voice,home");
	CHECK_STR(p->value, "tel:+1-555-555-5555");
	p = vcard_find(&v, "NOTE", NULL);
	CHECK_STR(text_of(p, '\0', '\0'), "line one\nline two, and \\ more");
	p = vcard_find(&v, "X-UNKNOWN-THING", NULL);
	CHECK(p != NULL);
	CHECK_STR(vcard_param(p, "X-P"), "a");
	CHECK_STR(p->value, "kept as is");
	CHECK(vcard_find(&v, "VERSION", NULL) == NULL);
	vcard_free(&v);
	vcard_free(&v); /* empty: fine */
}

TEST(vcard_v3_lf_and_bare_params)
{
	static const char card[] = "begin:vcard\n"
				   "version:3.0\n"
				   "\n"
				   "FN:A\n"
				   "TEL;HOME;VOICE:+33 1 23\n"
				   "EMAIL;INTERNET:a@example.test\n"
				   "EMAIL:b@example.test\n"
				   "CATEGORIES:friends,work\\,play\n"
				   "end:vcard\n"
				   "\n";
	struct vcard v;
	char err[256] = "";
	CHECK_INT(parse(card, &v, err, sizeof err), VCARD_OK);
	CHECK_INT(v.version, 3);
	const struct vcard_prop *p = vcard_find(&v, "TEL", NULL);
	CHECK_INT(p->n_params, 2);
	CHECK_STR(p->params[0].name, "TYPE");
	CHECK_STR(p->params[0].value, "HOME");
	CHECK_STR(p->params[1].value, "VOICE");
	size_t from = 0;
	CHECK_STR(vcard_find(&v, "EMAIL", &from)->value, "a@example.test");
	CHECK_STR(vcard_find(&v, "EMAIL", &from)->value, "b@example.test");
	CHECK(vcard_find(&v, "EMAIL", &from) == NULL);
	p = vcard_find(&v, "CATEGORIES", NULL);
	CHECK_STR(text_of(p, '\0', '\n'), "friends\nwork,play");
	vcard_free(&v);
}

static void check_error(const char *card, enum vcard_error want, const char *msg)
{
	struct vcard v;
	char err[256] = "";
	enum vcard_error e = parse(card, &v, err, sizeof err);
	CHECK_INT(e, want);
	CHECK_STR(err, msg);
	CHECK(v.props == NULL && v.text == NULL);
}

TEST(vcard_errors)
{
	check_error(" FN:x\r\nBEGIN:VCARD\r\n", VCARD_ERR_FOLDING,
		    "line 1: a folded line with no line before it to continue (broken folding)");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nNOTE:a long\r\nnote\r\nEND:VCARD\r\n",
		    VCARD_ERR_SYNTAX,
		    "line 4: no ':' after the property name (a folded line without its leading "
		    "space?)");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:\xff\xfe\r\nEND:VCARD\r\n", VCARD_ERR_UTF8,
		    "line 3: invalid UTF-8");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:\xc3\r\nEND:VCARD\r\n", VCARD_ERR_UTF8,
		    "line 3: invalid UTF-8");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:a\rb\r\nEND:VCARD\r\n", VCARD_ERR_UTF8,
		    "line 3: control character 0x0d");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:a\r\n", VCARD_ERR_FRAME, "no END:VCARD");
	check_error("BEGIN:VCARD\r\nFN:a\r\nEND:VCARD\r\n", VCARD_ERR_FRAME, "no VERSION");
	check_error("BEGIN:VCARD\r\nVERSION:2.1\r\nEND:VCARD\r\n", VCARD_ERR_FRAME,
		    "line 2: VERSION 2.1 is not supported (3.0 and 4.0 are)");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nVERSION:4.0\r\nEND:VCARD\r\n", VCARD_ERR_FRAME,
		    "line 3: a second VERSION");
	check_error("FN:a\r\n", VCARD_ERR_FRAME, "line 1: a vCard starts with BEGIN:VCARD");
	check_error("", VCARD_ERR_FRAME, "line 1: a vCard starts with BEGIN:VCARD");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nEND:VCARD\r\nBEGIN:VCARD\r\n", VCARD_ERR_FRAME,
		    "line 4: content after END:VCARD (one vCard per resource)");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nBEGIN:VCARD\r\nEND:VCARD\r\n", VCARD_ERR_FRAME,
		    "line 3: BEGIN inside a vCard");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nEMAIL;TYPE=\"work:a\r\nEND:VCARD\r\n",
		    VCARD_ERR_SYNTAX, "line 3: unterminated quoted parameter value");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nEMAIL;=x:a\r\nEND:VCARD\r\n", VCARD_ERR_SYNTAX,
		    "line 3: empty parameter name");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nA;B/C:x\r\nEND:VCARD\r\n", VCARD_ERR_SYNTAX,
		    "line 3: bad character in a parameter name");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\n:a\r\nEND:VCARD\r\n", VCARD_ERR_SYNTAX,
		    "line 3: no property name");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nA.:a\r\nEND:VCARD\r\n", VCARD_ERR_SYNTAX,
		    "line 3: no property name");
	check_error("BEGIN:VCARD\r\nVERSION:4.0\r\nA;B\r\nEND:VCARD\r\n", VCARD_ERR_SYNTAX,
		    "line 3: no ':' before the value");
}

TEST(vcard_limits)
{
	static const char card[] = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:abcdef\r\nNOTE:x\r\n"
				   "END:VCARD\r\n";
	struct vcard v;
	char err[256];
	struct vcard_limits lim = {sizeof card - 2, 100, 100, 100};
	CHECK_INT(vcard_parse(card, strlen(card), &lim, &v, err, sizeof err), VCARD_ERR_SIZE);
	CHECK_STR(err, "larger than 55 bytes");
	lim = (struct vcard_limits){1000, 4, 100, 100};
	CHECK_INT(vcard_parse(card, strlen(card), &lim, &v, err, sizeof err), VCARD_ERR_SIZE);
	CHECK_STR(err, "more than 4 lines");
	lim = (struct vcard_limits){1000, 100, 1, 100};
	CHECK_INT(vcard_parse(card, strlen(card), &lim, &v, err, sizeof err), VCARD_ERR_SIZE);
	CHECK_STR(err, "more than 1 properties");
	lim = (struct vcard_limits){1000, 100, 100, 8};
	CHECK_INT(vcard_parse(card, strlen(card), &lim, &v, err, sizeof err), VCARD_ERR_SIZE);
	CHECK_STR(err, "line 1: longer than 8 bytes");
	lim = (struct vcard_limits){sizeof card - 1, 5, 2, 11};
	CHECK_INT(vcard_parse(card, strlen(card), &lim, &v, err, sizeof err), VCARD_OK);
	vcard_free(&v);
	/* Many properties: stopped while unfolding, before any is parsed. */
	struct buf b = BUF_INIT;
	buf_puts(&b, "BEGIN:VCARD\r\nVERSION:4.0\r\n");
	for (int i = 0; i < 200; i++)
		buf_puts(&b, "X-A:b\r\n");
	buf_puts(&b, "END:VCARD\r\n");
	lim = (struct vcard_limits){1 << 20, 1000, 50, 100};
	CHECK_INT(vcard_parse(b.data, b.len, &lim, &v, err, sizeof err), VCARD_ERR_SIZE);
	CHECK_STR(err, "more than 50 properties");
	buf_free(&b);
}

/* Every prefix and every single-byte corruption of a card is either
 * parsed or refused cleanly (ASan watches). */
TEST(vcard_prefixes_and_corruptions)
{
	static const char card[] = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN;CHARSET=\"x\":A\r\n"
				   " B\r\nitem2.TEL;HOME:1\r\nEND:VCARD\r\n";
	size_t n = strlen(card), ok = 0;
	char err[256];
	for (size_t i = 0; i <= n; i++) {
		struct vcard v;
		char *copy = malloc(i ? i : 1);
		memcpy(copy, card, i);
		if (vcard_parse(copy, i, NULL, &v, err, sizeof err) == VCARD_OK)
			ok++;
		vcard_free(&v);
		free(copy);
	}
	CHECK_INT(ok, 2); /* the whole card, and without its last CRLF */
	static const char bytes[] = {'\0', '\r', '\n', ' ', ':', ';', '"', '=', '.', ',', '\\'};
	char copy[sizeof card];
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < sizeof bytes; j++) {
			memcpy(copy, card, n);
			copy[i] = bytes[j];
			struct vcard v;
			vcard_parse(copy, n, NULL, &v, err, sizeof err);
			vcard_free(&v);
		}
}
