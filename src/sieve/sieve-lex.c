/*
 * sieve-lex.c - the Sieve lexer (RFC 5228 section 8.1): comments,
 * quoted strings with escapes, multi-line text: literals with
 * dot-stuffing, numbers with K/M/G, tags, identifiers and punctuation.
 *
 * Part of src/sieve.  Works on the whole script in memory (bounded by
 * sieve_limits.max_script); every string is bounded by max_string.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sieve-private.h"

int sieve_fail(struct sieve_error *err, int line, int col, const char *fmt, ...)
{
	err->line = line;
	err->col = col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return -1;
}

void sieve_lex_init(struct sieve_lexer *lx, const char *p, size_t n, size_t max_string,
		    struct sieve_error *err)
{
	lx->p = p;
	lx->n = n;
	lx->pos = 0;
	lx->line = 1;
	lx->col = 1;
	lx->max_string = max_string;
	lx->err = err;
}

static int peek(const struct sieve_lexer *lx, size_t off)
{
	return lx->pos + off < lx->n ? (unsigned char)lx->p[lx->pos + off] : -1;
}

static void advance(struct sieve_lexer *lx)
{
	if (lx->p[lx->pos] == '\n') {
		lx->line++;
		lx->col = 1;
	} else {
		lx->col++;
	}
	lx->pos++;
}

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Skips white space and comments.  Returns 0 or -1 (unterminated). */
static int skip_space(struct sieve_lexer *lx)
{
	for (;;) {
		int c = peek(lx, 0);
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			advance(lx);
		} else if (c == '#') {
			while (peek(lx, 0) != -1 && peek(lx, 0) != '\n')
				advance(lx);
		} else if (c == '/' && peek(lx, 1) == '*') {
			int line = lx->line, col = lx->col;
			advance(lx);
			advance(lx);
			while (!(peek(lx, 0) == '*' && peek(lx, 1) == '/')) {
				if (peek(lx, 0) == -1)
					return sieve_fail(lx->err, line, col,
							  "unterminated comment");
				advance(lx);
			}
			advance(lx);
			advance(lx);
		} else {
			return 0;
		}
	}
}

static int put(struct sieve_lexer *lx, struct buf *b, char c, int line, int col)
{
	if (buf_putc(b, c) < 0)
		return sieve_fail(lx->err, line, col, "string longer than %zu bytes",
				  lx->max_string);
	return 0;
}

static int lex_quoted(struct sieve_lexer *lx, struct buf *b, int line, int col)
{
	advance(lx); /* the opening quote */
	for (;;) {
		int c = peek(lx, 0);
		if (c == -1)
			return sieve_fail(lx->err, line, col, "unterminated string");
		if (c == '"') {
			advance(lx);
			return 0;
		}
		if (c == '\\') {
			/* RFC 5228 2.4.2: "\\" and "\"" stand for themselves;
			 * any other escape is read as if there were no
			 * backslash. */
			advance(lx);
			c = peek(lx, 0);
			if (c == -1)
				return sieve_fail(lx->err, line, col, "unterminated string");
		}
		if (put(lx, b, (char)c, line, col) < 0)
			return -1;
		advance(lx);
	}
}

/* "text:" *(SP / HTAB) (hash-comment / CRLF) *(multiline-literal /
 * multiline-dotstart) "." CRLF; a line starting with ".." loses one dot. */
static int lex_multiline(struct sieve_lexer *lx, struct buf *b, int line, int col)
{
	for (int i = 0; i < 5; i++)
		advance(lx);
	while (peek(lx, 0) == ' ' || peek(lx, 0) == '\t')
		advance(lx);
	if (peek(lx, 0) == '#') {
		while (peek(lx, 0) != -1 && peek(lx, 0) != '\n')
			advance(lx);
	} else if (peek(lx, 0) == '\r') {
		advance(lx);
	}
	if (peek(lx, 0) != '\n')
		return sieve_fail(lx->err, lx->line, lx->col, "expected end of line after text:");
	advance(lx);
	for (;;) {
		if (peek(lx, 0) == -1)
			return sieve_fail(lx->err, line, col, "unterminated multi-line string");
		if (peek(lx, 0) == '.') {
			size_t k = 1;
			if (peek(lx, k) == '\r')
				k++;
			if (peek(lx, k) == '\n' || peek(lx, k) == -1) {
				if (peek(lx, k) == -1)
					return sieve_fail(lx->err, line, col,
							  "unterminated multi-line string");
				for (size_t i = 0; i <= k; i++)
					advance(lx);
				return 0;
			}
			if (peek(lx, 1) == '.')
				advance(lx); /* dot-stuffing */
		}
		/* one line, its line end included */
		for (;;) {
			int c = peek(lx, 0);
			if (c == -1)
				return sieve_fail(lx->err, line, col,
						  "unterminated multi-line string");
			/* RFC 5228 8.1: lines of a multi-line string end in
			 * CRLF; a script saved with bare LFs gets them too. */
			if (c == '\n' && (b->len == 0 || b->data[b->len - 1] != '\r') &&
			    put(lx, b, '\r', line, col) < 0)
				return -1;
			if (put(lx, b, (char)c, line, col) < 0)
				return -1;
			advance(lx);
			if (c == '\n')
				break;
		}
	}
}

static int lex_number(struct sieve_lexer *lx, struct sieve_token *t)
{
	uint64_t v = 0;
	while (is_digit(peek(lx, 0))) {
		uint64_t d = (uint64_t)(peek(lx, 0) - '0');
		if (v > (UINT64_MAX - d) / 10)
			return sieve_fail(lx->err, t->line, t->col, "number too large");
		v = v * 10 + d;
		advance(lx);
	}
	int q = peek(lx, 0);
	unsigned shift = 0;
	if (q == 'K' || q == 'k')
		shift = 10;
	else if (q == 'M' || q == 'm')
		shift = 20;
	else if (q == 'G' || q == 'g')
		shift = 30;
	if (shift != 0) {
		if (v > (UINT64_MAX >> shift))
			return sieve_fail(lx->err, t->line, t->col, "number too large");
		v <<= shift;
		advance(lx);
	}
	if (is_alpha(peek(lx, 0)) || is_digit(peek(lx, 0)))
		return sieve_fail(lx->err, lx->line, lx->col, "bad character after number");
	t->type = TOK_NUMBER;
	t->num = v;
	return 0;
}

int sieve_lex_next(struct sieve_lexer *lx, struct sieve_token *t)
{
	memset(t, 0, sizeof *t);
	if (skip_space(lx) < 0)
		return -1;
	t->line = lx->line;
	t->col = lx->col;
	int c = peek(lx, 0);
	if (c == -1) {
		t->type = TOK_EOF;
		return 0;
	}
	static const char punct[] = "[](){},;";
	static const enum sieve_tok ptok[] = {TOK_LBRACKET, TOK_RBRACKET, TOK_LPAREN, TOK_RPAREN,
					      TOK_LBRACE,   TOK_RBRACE,   TOK_COMMA,  TOK_SEMI};
	const char *pp = c != 0 ? strchr(punct, c) : NULL;
	if (pp != NULL) {
		t->type = ptok[pp - punct];
		advance(lx);
		return 0;
	}
	if (is_digit(c))
		return lex_number(lx, t);
	struct buf b;
	buf_init(&b, lx->max_string);
	int rc = 0;
	if (c == '"') {
		rc = lex_quoted(lx, &b, t->line, t->col);
		t->type = TOK_STRING;
	} else if (c == ':' || is_alpha(c)) {
		if (c == ':')
			advance(lx);
		if (!is_alpha(peek(lx, 0))) {
			buf_free(&b);
			return sieve_fail(lx->err, t->line, t->col,
					  "expected a tag name after ':'");
		}
		while (is_alpha(peek(lx, 0)) || is_digit(peek(lx, 0))) {
			if (put(lx, &b, (char)peek(lx, 0), t->line, t->col) < 0) {
				buf_free(&b);
				return -1;
			}
			advance(lx);
		}
		t->type = c == ':' ? TOK_TAG : TOK_IDENT;
		if (c != ':' && b.len == 4 && !strncasecmp(b.data, "text", 4) &&
		    peek(lx, 0) == ':') {
			/* back up to "text:" and read the multi-line string */
			lx->pos -= 4;
			lx->col -= 4;
			buf_reset(&b);
			rc = lex_multiline(lx, &b, t->line, t->col);
			t->type = TOK_STRING;
		}
	} else {
		buf_free(&b);
		if (c >= 0x21 && c < 0x7f)
			return sieve_fail(lx->err, t->line, t->col, "unexpected character '%c'", c);
		return sieve_fail(lx->err, t->line, t->col, "unexpected byte 0x%02x", c);
	}
	if (rc < 0) {
		buf_free(&b);
		return -1;
	}
	t->len = b.len;
	t->str = buf_steal(&b, NULL);
	return 0;
}
