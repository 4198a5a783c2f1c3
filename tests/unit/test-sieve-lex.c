/*
 * test-sieve-lex.c - unit tests for src/sieve/sieve-lex.c (RFC 5228 8.1):
 * each token kind, escapes, multi-line strings with dot-stuffing, numbers
 * with quantifiers, comments, positions, and every prefix of a script
 * read byte by byte from an exact-size heap copy (ASan sees overreads).
 */
#include <stdlib.h>
#include <string.h>

#include "sieve-private.h"
#include "test.h"

struct toks {
	struct sieve_token t[64];
	size_t n;
	int rc;
	struct sieve_error err;
};

static void lex_all(struct toks *o, const char *s, size_t n)
{
	char *copy = malloc(n > 0 ? n : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, s, n);
	struct sieve_lexer lx;
	memset(o, 0, sizeof *o);
	sieve_lex_init(&lx, copy, n, 1024, &o->err);
	for (;;) {
		struct sieve_token t;
		o->rc = sieve_lex_next(&lx, &t);
		if (o->rc < 0 || o->n == 64) {
			free(t.str);
			break;
		}
		o->t[o->n++] = t;
		if (t.type == TOK_EOF)
			break;
	}
	free(copy);
}

static void toks_free(struct toks *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->t[i].str);
}

TEST(sieve_lex_tokens)
{
	struct toks o;
	const char *s = "if header :is [\"a\",\"b\"] 10K { keep; } # c\n/* x\n*/ (),";
	lex_all(&o, s, strlen(s));
	CHECK_INT(o.rc, 0);
	static const enum sieve_tok want[] = {
	    TOK_IDENT,  TOK_IDENT,    TOK_TAG,    TOK_LBRACKET, TOK_STRING, TOK_COMMA,
	    TOK_STRING, TOK_RBRACKET, TOK_NUMBER, TOK_LBRACE,   TOK_IDENT,  TOK_SEMI,
	    TOK_RBRACE, TOK_LPAREN,   TOK_RPAREN, TOK_COMMA,    TOK_EOF};
	CHECK_INT(o.n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < o.n && i < sizeof want / sizeof want[0]; i++)
		CHECK_INT(o.t[i].type, want[i]);
	CHECK_STR(o.t[2].str, "is");
	CHECK_INT(o.t[8].num, 10240);
	CHECK_INT(o.t[13].line, 3);
	CHECK_INT(o.t[13].col, 4);
	toks_free(&o);
}

TEST(sieve_lex_numbers)
{
	struct toks o;
	lex_all(&o, "1 2k 3M 4G 0", 12);
	CHECK_INT(o.rc, 0);
	CHECK_INT(o.t[0].num, 1);
	CHECK_INT(o.t[1].num, 2048);
	CHECK_INT(o.t[2].num, 3u << 20);
	CHECK_INT(o.t[3].num, 4ull << 30);
	CHECK_INT(o.t[4].num, 0);
	toks_free(&o);
	lex_all(&o, "99999999999999999999", 20);
	CHECK_INT(o.rc, -1);
	CHECK_STR(o.err.msg, "number too large");
	toks_free(&o);
	lex_all(&o, "17179869184G", 12);
	CHECK_INT(o.rc, -1);
	toks_free(&o);
	lex_all(&o, "12x", 3);
	CHECK_INT(o.rc, -1);
	CHECK_INT(o.err.col, 3);
	toks_free(&o);
}

TEST(sieve_lex_quoted_escapes)
{
	struct toks o;
	const char *s = "\"a\\\"b\\\\c\\qd\nline2\"";
	lex_all(&o, s, strlen(s));
	CHECK_INT(o.rc, 0);
	CHECK_STR(o.t[0].str, "a\"b\\cqd\nline2");
	toks_free(&o);
	lex_all(&o, "\"open", 5);
	CHECK_INT(o.rc, -1);
	CHECK_STR(o.err.msg, "unterminated string");
	CHECK_INT(o.err.col, 1);
	toks_free(&o);
}

TEST(sieve_lex_multiline)
{
	struct toks o;
	const char *s = "text: # comment\r\nline one\r\n..dotted\n.not end\r\n.\r\n;";
	lex_all(&o, s, strlen(s));
	CHECK_INT(o.rc, 0);
	CHECK_INT(o.t[0].type, TOK_STRING);
	CHECK_STR(o.t[0].str, "line one\r\n.dotted\r\n.not end\r\n");
	CHECK_INT(o.t[1].type, TOK_SEMI);
	CHECK_INT(o.t[1].line, 6);
	toks_free(&o);
	lex_all(&o, "text:\nno end\n", 13);
	CHECK_INT(o.rc, -1);
	CHECK_STR(o.err.msg, "unterminated multi-line string");
	toks_free(&o);
	lex_all(&o, "text: junk\n.\n", 13);
	CHECK_INT(o.rc, -1);
	toks_free(&o);
}

TEST(sieve_lex_errors)
{
	struct toks o;
	lex_all(&o, "keep; /* open", 13);
	CHECK_INT(o.rc, -1);
	CHECK_STR(o.err.msg, "unterminated comment");
	CHECK_INT(o.err.col, 7);
	toks_free(&o);
	lex_all(&o, "keep @", 6);
	CHECK_INT(o.rc, -1);
	CHECK_STR(o.err.msg, "unexpected character '@'");
	toks_free(&o);
	lex_all(&o, ": x", 3);
	CHECK_INT(o.rc, -1);
	toks_free(&o);
	lex_all(&o, "\"\0\"", 3);
	CHECK_INT(o.rc, 0);
	CHECK_INT(o.t[0].len, 1);
	toks_free(&o);
}

TEST(sieve_lex_string_limit)
{
	char big[1100];
	big[0] = '"';
	memset(big + 1, 'a', sizeof big - 2);
	big[sizeof big - 1] = '"';
	struct toks o;
	lex_all(&o, big, sizeof big);
	CHECK_INT(o.rc, -1);
	CHECK_STR(o.err.msg, "string longer than 1024 bytes");
	toks_free(&o);
}

/* Every prefix of a script: either tokens up to EOF or a clean error. */
TEST(sieve_lex_byte_by_byte)
{
	const char *s = "require [\"fileinto\"]; # hi\nif size :over 1M {\n"
			"fileinto text:\nA\n..B\n.\n;\n} /* end */\n\"q\\\"\"";
	size_t n = strlen(s);
	for (size_t k = 0; k <= n; k++) {
		struct toks o;
		lex_all(&o, s, k);
		if (o.rc == 0)
			CHECK(o.n > 0 && o.t[o.n - 1].type == TOK_EOF);
		else
			CHECK(o.err.line >= 1 && o.err.col >= 1 && o.err.msg[0] != '\0');
		toks_free(&o);
	}
	struct toks o;
	lex_all(&o, s, n);
	CHECK_INT(o.rc, 0);
	toks_free(&o);
}
