/*
 * imap-parse.c - the IMAP command reader, tokenizer and small syntax
 * helpers (see imap-parse.h).  Protocol layer, pure: no I/O, no store.
 *
 * Why a reader separate from the tokenizer: whether a line continues with
 * a literal is visible at the end of the line alone ("{n}" / "{n+}"), so
 * the reader can collect a command (and refuse a literal before a single
 * byte of it is read) without understanding it; the tokenizer then sees
 * the whole command at once and need not be resumable.
 */
#include "imap-parse.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strutil.h"
#include "xalloc.h"

/* Storage kept between commands; more is freed (idle sessions stay small). */
#define IMAP_READER_KEEP 1024
/* Bytes of one command besides its largest literal: after login (a long
 * UID set, MULTIAPPEND's small parts), and before it (LOGIN with two
 * literals), where a connection should cost little. */
#define IMAP_CMD_EXTRA (1024 * 1024)

/* ------------------------------------------------------------- reader */

static uint64_t cmd_max(size_t line_max, uint64_t max_literal)
{
	uint64_t extra = 2 * (uint64_t)line_max;
	if (max_literal > IMAP_PREAUTH_LITERAL_MAX && extra < IMAP_CMD_EXTRA)
		extra = IMAP_CMD_EXTRA;
	return max_literal + extra;
}

void imap_reader_init(struct imap_reader *r, size_t line_max, uint64_t max_literal)
{
	memset(r, 0, sizeof *r);
	linereader_init(&r->lr, line_max);
	buf_init(&r->cmd, (size_t)cmd_max(line_max, max_literal));
	r->max_literal = max_literal;
}

void imap_reader_free(struct imap_reader *r)
{
	linereader_free(&r->lr);
	buf_free(&r->cmd);
}

void imap_reader_set_limits(struct imap_reader *r, size_t line_max, uint64_t max_literal)
{
	linereader_set_max(&r->lr, line_max);
	r->max_literal = max_literal;
	r->cmd.max = (size_t)cmd_max(line_max, max_literal);
}

bool imap_reader_busy(const struct imap_reader *r)
{
	return r->cmd.len > 0 || r->literal_left > 0 || (r->lr.line.len > 0 && !r->lr.done) ||
	       r->lr.skipping;
}

void imap_reader_next(struct imap_reader *r)
{
	if (r->cmd.cap > IMAP_READER_KEEP)
		buf_free(&r->cmd);
	else
		buf_reset(&r->cmd);
	r->literal_left = 0;
	r->n_literals = 0;
	r->has_nul = false;
}

void imap_reader_shrink(struct imap_reader *r)
{
	if (r->cmd.len == 0)
		buf_free(&r->cmd);
	if (!r->lr.skipping && (r->lr.line.len == 0 || r->lr.done)) {
		buf_free(&r->lr.line);
		r->lr.done = false;
	}
}

static bool tag_char(unsigned char c)
{
	/* ASTRING-CHAR except "+" (RFC 9051 "tag") */
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '%' && c != '*' &&
	       c != '"' && c != '\\' && c != '+';
}

void imap_reader_tag(const struct imap_reader *r, char *out, size_t outsz)
{
	const char *p = r->cmd.data;
	size_t n = r->cmd.len;
	if (n == 0 && r->lr.line.len > 0) {
		p = r->lr.line.data;
		n = r->lr.line.len;
	}
	if (n == 0) { /* an over-long first line: only its head is kept */
		p = r->head;
		n = r->head_len;
	}
	size_t i = 0;
	while (i < n && i < IMAP_TAG_MAX && tag_char((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= outsz || (i < n && p[i] != ' ')) {
		snprintf(out, outsz, "*");
		return;
	}
	memcpy(out, p, i);
	out[i] = '\0';
}

/* If line[0..n) ends with a literal announcement, sets *size and *plus.
 * A "{" that is part of a quoted string cannot end a line, so looking at
 * the end is enough. */
static bool literal_at_end(const char *line, size_t n, uint64_t *size, bool *plus, bool *bad)
{
	*bad = false;
	if (n < 3 || line[n - 1] != '}')
		return false;
	size_t end = n - 1;
	*plus = false;
	if (line[end - 1] == '+') { /* LITERAL+ and LITERAL- both spell it "+" */
		*plus = true;
		end--;
	}
	size_t d = end;
	while (d > 0 && line[d - 1] >= '0' && line[d - 1] <= '9')
		d--;
	if (d == 0 || line[d - 1] != '{')
		return false;
	if (d == end || end - d > 20) {
		*bad = true;
		return true;
	}
	if (strutil_parse_u64(line + d, end - d, UINT64_MAX, size) < 0)
		*bad = true;
	return true;
}

/* Keeps the head and tail of the line that p[0..n) continues. */
static void note_line_bytes(struct imap_reader *r, const char *p, size_t n)
{
	if (r->line_ended) {
		r->head_len = 0;
		r->tail_len = 0;
		r->line_bytes = 0;
		r->line_ended = false;
	}
	size_t h = sizeof r->head - r->head_len;
	if (h > n)
		h = n;
	memcpy(r->head + r->head_len, p, h);
	r->head_len += h;
	if (n >= sizeof r->tail) {
		memcpy(r->tail, p + n - sizeof r->tail, sizeof r->tail);
		r->tail_len = sizeof r->tail;
	} else {
		size_t keep = sizeof r->tail - n;
		if (keep > r->tail_len)
			keep = r->tail_len;
		memmove(r->tail, r->tail + r->tail_len - keep, keep);
		memcpy(r->tail + keep, p, n);
		r->tail_len = keep + n;
	}
	r->line_bytes += n;
}

/* An over-long line ended (its bytes were dropped).  It is answered with
 * BAD, unless it announced a non-synchronizing literal: the literal's
 * bytes follow at once and could not be told from commands. */
static enum imap_read_result too_long_line(struct imap_reader *r)
{
	size_t n = r->tail_len;
	if (n > 0 && r->tail[n - 1] == '\n')
		n--;
	if (n > 0 && r->tail[n - 1] == '\r')
		n--;
	uint64_t size;
	bool plus, bad;
	if (literal_at_end(r->tail, n, &size, &plus, &bad) && plus)
		return IMAP_READ_GARBAGE;
	return IMAP_READ_LINE_TOO_LONG;
}

enum imap_read_result imap_reader_feed(struct imap_reader *r, const char *p, size_t n, size_t *used)
{
	*used = 0;
	while (*used < n) {
		if (r->literal_left > 0) {
			size_t take = n - *used;
			if (take > r->literal_left)
				take = (size_t)r->literal_left;
			if (buf_append(&r->cmd, p + *used, take) < 0)
				return IMAP_READ_FATAL;
			*used += take;
			r->literal_left -= take;
			continue;
		}
		size_t u;
		enum lr_result lr = linereader_feed(&r->lr, p + *used, n - *used, &u);
		note_line_bytes(r, p + *used, u);
		*used += u;
		if (lr == LR_NEED_MORE) {
			if (r->line_bytes > (uint64_t)r->lr.max * IMAP_LINE_SKIP_FACTOR)
				return IMAP_READ_GARBAGE;
			continue;
		}
		r->line_ended = true;
		if (lr == LR_TOO_LONG)
			return too_long_line(r);
		const char *line = r->lr.line.data ? r->lr.line.data : "";
		size_t len = r->lr.line.len;
		if (r->lr.has_nul)
			r->has_nul = true;
		if (buf_append(&r->cmd, line, len) < 0)
			return IMAP_READ_FATAL;
		uint64_t size;
		bool plus, bad;
		if (!literal_at_end(line, len, &size, &plus, &bad))
			return IMAP_READ_COMMAND;
		if (bad)
			return IMAP_READ_COMMAND; /* the tokenizer reports it */
		if (++r->n_literals > IMAP_MAX_LITERALS)
			return IMAP_READ_FATAL;
		bool too_big = size > r->max_literal;
		if (plus) {
			if (too_big || (r->literal_minus && size > IMAP_LITERAL_MINUS_MAX))
				return IMAP_READ_FATAL;
		} else if (too_big) {
			return IMAP_READ_LITERAL_REFUSED;
		}
		if (buf_append(&r->cmd, "\r\n", 2) < 0 || buf_reserve(&r->cmd, (size_t)size) < 0)
			return IMAP_READ_FATAL;
		r->literal_left = size;
		if (!plus)
			return IMAP_READ_CONTINUE;
	}
	return IMAP_READ_MORE;
}

/* ------------------------------------------------------------ tokenizer */

static bool atom_char(unsigned char c)
{
	/* everything but SP, CTL, "(", ")", "{", DQUOTE and 8-bit; "%", "*",
	 * "\" and "]" are let through for list-mailbox, flags and sections */
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"';
}

static int push(struct imap_command *c, size_t *cap, enum imap_tok_type type, const char *p,
		size_t len)
{
	if (c->n_tok >= IMAP_MAX_TOKENS)
		return -1;
	if (c->n_tok == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		c->tok = xreallocarray(c->tok, *cap, sizeof *c->tok);
	}
	struct imap_tok *t = &c->tok[c->n_tok++];
	t->type = type;
	t->lit8 = false;
	t->p = p;
	t->len = len;
	return 0;
}

/* Unescapes a quoted string starting after its opening quote at s[*i],
 * in place; sets *start, *len.  -1 on a bad escape, CR/LF or no end. */
static int quoted(char *s, size_t n, size_t *i, size_t *start, size_t *len)
{
	size_t o = *i;
	*start = *i;
	while (*i < n) {
		char ch = s[*i];
		if (ch == '"') {
			(*i)++;
			*len = o - *start;
			return 0;
		}
		if (ch == '\r' || ch == '\n' || ch == '\0')
			return -1;
		if (ch == '\\') {
			if (*i + 1 >= n || (s[*i + 1] != '"' && s[*i + 1] != '\\'))
				return -1;
			(*i)++;
			ch = s[*i];
		}
		s[o++] = ch;
		(*i)++;
	}
	return -1;
}

/* A literal starting at s[*i] ("{" or "~{"); sets *start, *len. */
static int literal(const char *s, size_t n, size_t *i, size_t *start, uint64_t *len)
{
	if (s[*i] == '~')
		(*i)++;
	(*i)++; /* '{' */
	size_t d = *i;
	while (*i < n && s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	if (*i == d || strutil_parse_u64(s + d, *i - d, UINT32_MAX, len) < 0)
		return -1;
	if (*i < n && s[*i] == '+')
		(*i)++;
	if (*i + 3 > n || s[*i] != '}' || s[*i + 1] != '\r' || s[*i + 2] != '\n')
		return -1;
	*i += 3;
	if (n - *i < *len)
		return -1;
	*start = *i;
	*i += (size_t)*len;
	return 0;
}

/* A section starting at the "[" at s[*i], up to its matching "]", which
 * it moves *i past; -1 (and *i unchanged) if there is none. */
static int section(const char *s, size_t n, size_t *i)
{
	size_t j = *i;
	int depth = 0;
	bool inq = false;
	for (; j < n; j++) {
		unsigned char ch = (unsigned char)s[j];
		if (ch == '\r' || ch == '\n' || ch == '\0' || ch == '{' || ch >= 0x80)
			return -1;
		if (inq) {
			if (ch == '\\')
				j++;
			else if (ch == '"')
				inq = false;
		} else if (ch == '"') {
			inq = true;
		} else if (ch == '[') {
			if (++depth > 2)
				return -1;
		} else if (ch == ']') {
			if (--depth == 0) {
				*i = j + 1;
				return 0;
			}
		}
	}
	return -1;
}

/* An atom starting at s[*i]; a "[" inside takes everything up to its
 * matching "]" (sections: BODY[HEADER.FIELDS (A B)]).  A "[" without one
 * is an ordinary ATOM-CHAR (RFC 9051 9: mailbox "a[b"). */
static int atom(const char *s, size_t n, size_t *i)
{
	size_t start = *i;
	while (*i < n) {
		unsigned char ch = (unsigned char)s[*i];
		if (ch == '[' && section(s, n, i) == 0)
			continue;
		if (!atom_char(ch))
			break;
		(*i)++;
	}
	return *i > start ? 0 : -1;
}

enum imap_parse_error imap_parse_command(char *s, size_t n, struct imap_command *c,
					 const char **why)
{
	memset(c, 0, sizeof *c);
	*why = "";
	size_t i = 0, cap = 0;
	while (i < n && i <= IMAP_TAG_MAX && tag_char((unsigned char)s[i]))
		i++;
	if (i == 0 || i > IMAP_TAG_MAX || (i < n && s[i] != ' ')) {
		*why = "Invalid tag";
		return IMAP_PARSE_NO_TAG;
	}
	c->tag = s;
	c->tag_len = i;
	if (i >= n) {
		*why = "Missing command";
		return IMAP_PARSE_SYNTAX;
	}
	i++;
	size_t ns = i;
	while (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
			 (s[i] >= '0' && s[i] <= '9')))
		i++;
	if (i == ns || (i < n && s[i] != ' ')) {
		*why = "Invalid command name";
		return IMAP_PARSE_SYNTAX;
	}
	c->name = s + ns;
	c->name_len = i - ns;
	int depth = 0;
	while (i < n) {
		if (s[i] == ' ') {
			i++;
			continue;
		}
		size_t start;
		uint64_t llen;
		size_t qlen;
		int r = 0;
		switch (s[i]) {
		case '(':
			if (++depth > IMAP_MAX_DEPTH) {
				*why = "Too deeply nested";
				return IMAP_PARSE_SYNTAX;
			}
			r = push(c, &cap, IMAP_TOK_LPAREN, s + i, 1);
			i++;
			break;
		case ')':
			if (--depth < 0) {
				*why = "Unbalanced parenthesis";
				return IMAP_PARSE_SYNTAX;
			}
			r = push(c, &cap, IMAP_TOK_RPAREN, s + i, 1);
			i++;
			break;
		case '"':
			i++;
			if (quoted(s, n, &i, &start, &qlen) < 0) {
				*why = "Invalid quoted string";
				return IMAP_PARSE_SYNTAX;
			}
			r = push(c, &cap, IMAP_TOK_QUOTED, s + start, qlen);
			break;
		case '~':
		case '{': {
			if (s[i] == '~' && (i + 1 >= n || s[i + 1] != '{'))
				goto atom;
			bool l8 = s[i] == '~';
			if (literal(s, n, &i, &start, &llen) < 0) {
				*why = "Invalid literal";
				return IMAP_PARSE_SYNTAX;
			}
			r = push(c, &cap, IMAP_TOK_LITERAL, s + start, (size_t)llen);
			if (r == 0)
				c->tok[c->n_tok - 1].lit8 = l8;
			break;
		}
		default:
		atom:
			start = i;
			if (atom(s, n, &i) < 0) {
				*why = "Invalid characters";
				return IMAP_PARSE_SYNTAX;
			}
			r = push(c, &cap, IMAP_TOK_ATOM, s + start, i - start);
			break;
		}
		if (r < 0) {
			*why = "Too many arguments";
			return IMAP_PARSE_SYNTAX;
		}
		/* tokens are separated by a space or a parenthesis */
		if (i < n && s[i] != ' ' && s[i] != ')' &&
		    c->tok[c->n_tok - 1].type != IMAP_TOK_LPAREN) {
			*why = "Missing space between arguments";
			return IMAP_PARSE_SYNTAX;
		}
	}
	if (depth != 0) {
		*why = "Unbalanced parenthesis";
		return IMAP_PARSE_SYNTAX;
	}
	return IMAP_PARSE_OK;
}

void imap_command_free(struct imap_command *c)
{
	free(c->tok);
	c->tok = NULL;
	c->n_tok = 0;
}

bool imap_tok_is_string(const struct imap_tok *t)
{
	return t->type == IMAP_TOK_ATOM || t->type == IMAP_TOK_QUOTED ||
	       t->type == IMAP_TOK_LITERAL;
}

bool imap_tok_eq(const struct imap_tok *t, const char *s)
{
	return imap_tok_is_string(t) && strutil_eq_ci(t->p, t->len, s);
}

bool imap_tok_is_nil(const struct imap_tok *t)
{
	return t->type == IMAP_TOK_ATOM && strutil_eq_ci(t->p, t->len, "NIL");
}

int imap_tok_number(const struct imap_tok *t, uint64_t max, uint64_t *out)
{
	if (t->type != IMAP_TOK_ATOM)
		return -1;
	return strutil_parse_u64(t->p, t->len, max, out);
}

/* ------------------------------------------------------- sequence sets */

static int seq_number(const char *p, size_t n, uint32_t *out)
{
	if (n == 1 && p[0] == '*') {
		*out = 0;
		return 0;
	}
	uint64_t v;
	if (n == 0 || p[0] == '0' || strutil_parse_u64(p, n, UINT32_MAX, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int imap_parse_seqset(const char *p, size_t n, struct imap_seqset *out)
{
	out->r = NULL;
	out->n = 0;
	size_t cap = 0, i = 0;
	if (n == 0)
		return -1;
	while (i <= n) {
		size_t j = i;
		while (j < n && p[j] != ',')
			j++;
		/* p[i..j) is one item: number or number:number */
		const char *colon = memchr(p + i, ':', j - i);
		struct imap_range r;
		int bad;
		if (colon) {
			size_t a = (size_t)(colon - (p + i));
			bad = seq_number(p + i, a, &r.lo) < 0 ||
			      seq_number(colon + 1, j - i - a - 1, &r.hi) < 0;
		} else {
			bad = seq_number(p + i, j - i, &r.lo) < 0;
			r.hi = r.lo;
		}
		if (bad) {
			imap_seqset_free(out);
			return -1;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 4;
			out->r = xreallocarray(out->r, cap, sizeof *out->r);
		}
		out->r[out->n++] = r;
		if (j == n)
			break;
		i = j + 1;
		if (i == n) { /* trailing comma */
			imap_seqset_free(out);
			return -1;
		}
	}
	return 0;
}

void imap_seqset_free(struct imap_seqset *s)
{
	free(s->r);
	s->r = NULL;
	s->n = 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct imap_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void imap_seqset_resolve(struct imap_seqset *s, uint32_t star)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n; i++) {
		uint32_t lo = s->r[i].lo ? s->r[i].lo : star;
		uint32_t hi = s->r[i].hi ? s->r[i].hi : star;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (hi == 0)
			continue; /* "*" of an empty mailbox */
		if (lo == 0)
			lo = 1;
		s->r[k].lo = lo;
		s->r[k].hi = hi;
		k++;
	}
	s->n = k;
	if (k > 1)
		qsort(s->r, k, sizeof *s->r, range_cmp);
	size_t m = 0;
	for (size_t i = 0; i < k; i++) {
		if (m > 0 && (uint64_t)s->r[i].lo <= (uint64_t)s->r[m - 1].hi + 1) {
			if (s->r[i].hi > s->r[m - 1].hi)
				s->r[m - 1].hi = s->r[i].hi;
		} else {
			s->r[m++] = s->r[i];
		}
	}
	s->n = m;
}

bool imap_seqset_has(const struct imap_seqset *s, uint32_t v)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v < s->r[mid].lo)
			hi = mid;
		else if (v > s->r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

int imap_seqset_format(const struct imap_seqset *s, struct buf *out)
{
	int r = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (i)
			r |= buf_putc(out, ',');
		if (s->r[i].lo == s->r[i].hi)
			r |= buf_printf(out, "%lu", (unsigned long)s->r[i].lo);
		else
			r |= buf_printf(out, "%lu:%lu", (unsigned long)s->r[i].lo,
					(unsigned long)s->r[i].hi);
	}
	return r ? -1 : 0;
}

/* ------------------------------------------------------------ QRESYNC */

/* A set without "*" whose elements, in the order given (a:b from the
 * smaller end), are strictly ascending if ascending; *count gets the
 * number of elements. */
static int qresync_set(const struct imap_tok *t, bool ascending, struct imap_seqset *out,
		       uint64_t *count)
{
	*count = 0;
	if (t->type != IMAP_TOK_ATOM || imap_parse_seqset(t->p, t->len, out) < 0)
		return -1;
	uint32_t last = 0;
	for (size_t i = 0; i < out->n; i++) {
		uint32_t lo = out->r[i].lo, hi = out->r[i].hi;
		if (lo > hi) {
			uint32_t x = lo;
			lo = hi;
			hi = x;
		}
		if (lo == 0 || (ascending && i > 0 && lo <= last)) {
			imap_seqset_free(out);
			return -1;
		}
		last = hi;
		*count += (uint64_t)hi - lo + 1;
	}
	return 0;
}

void imap_qresync_free(struct imap_qresync *q)
{
	imap_seqset_free(&q->known);
	imap_seqset_free(&q->seqs);
	imap_seqset_free(&q->uids);
}

int imap_parse_qresync(const struct imap_tok *a, size_t n, size_t *used,
		       struct imap_qresync *out, const char **why)
{
	memset(out, 0, sizeof *out);
	*used = 0;
	uint64_t v, c1, c2;
	*why = "QRESYNC needs (uidvalidity mod-sequence [known-uids [seq-match-data]])";
	if (n < 4 || a[0].type != IMAP_TOK_LPAREN)
		return -1;
	*why = "Invalid QRESYNC UIDVALIDITY";
	if (imap_tok_number(&a[1], UINT32_MAX, &v) < 0 || v == 0)
		return -1;
	out->uidvalidity = (uint32_t)v;
	*why = "Invalid QRESYNC mod-sequence";
	if (imap_tok_number(&a[2], UINT64_C(9223372036854775807), &out->modseq) < 0 ||
	    out->modseq == 0)
		return -1;
	size_t i = 3;
	if (i < n && a[i].type == IMAP_TOK_ATOM) {
		*why = "Invalid QRESYNC known UIDs";
		if (qresync_set(&a[i], false, &out->known, &c1) < 0)
			goto fail;
		i++;
	}
	if (i < n && a[i].type == IMAP_TOK_LPAREN) {
		*why = "Invalid QRESYNC sequence match data";
		if (i + 3 >= n || a[i + 3].type != IMAP_TOK_RPAREN ||
		    qresync_set(&a[i + 1], true, &out->seqs, &c1) < 0 ||
		    qresync_set(&a[i + 2], true, &out->uids, &c2) < 0)
			goto fail;
		*why = "QRESYNC sequence match data: the two sets differ in size";
		if (c1 != c2)
			goto fail;
		i += 4;
	}
	*why = "Invalid QRESYNC parameter";
	if (i >= n || a[i].type != IMAP_TOK_RPAREN)
		goto fail;
	*used = i + 1;
	*why = NULL;
	return 0;
fail:
	imap_qresync_free(out);
	return -1;
}

/* --------------------------------------------------------------- dates */

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; m 1..12). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static unsigned num(const char *p, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(p[i] - '0');
	return v;
}

static int month_of(const char *p)
{
	for (int i = 0; i < 12; i++)
		if (strutil_eq_ci(p, 3, months[i]))
			return i + 1;
	return 0;
}

static bool valid_day(int64_t y, unsigned m, unsigned d)
{
	static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (d < 1 || d > mdays[m - 1])
		return false;
	if (m == 2 && d == 29)
		return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return true;
}

int imap_parse_date(const char *p, size_t n, int64_t *days)
{
	/* d-Mon-yyyy or dd-Mon-yyyy */
	size_t dl = n >= 2 && p[1] == '-' ? 1 : 2;
	if (n != dl + 9 || !digits(p, dl) || p[dl] != '-' || p[dl + 4] != '-' ||
	    !digits(p + dl + 5, 4))
		return -1;
	int m = month_of(p + dl + 1);
	unsigned d = num(p, dl), y = num(p + dl + 5, 4);
	if (m == 0 || !valid_day(y, (unsigned)m, d))
		return -1;
	*days = days_from_civil(y, (unsigned)m, d);
	return 0;
}

int imap_parse_datetime(const char *p, size_t n, time_t *out)
{
	/* "dd-Mon-yyyy hh:mm:ss +zzzz", day may be " d" */
	if (n != 26)
		return -1;
	char day[2] = {p[0] == ' ' ? '0' : p[0], p[1]};
	if (!digits(day, 2) || p[2] != '-' || p[6] != '-' || !digits(p + 7, 4) || p[11] != ' ' ||
	    !digits(p + 12, 2) || p[14] != ':' || !digits(p + 15, 2) || p[17] != ':' ||
	    !digits(p + 18, 2) || p[20] != ' ' || (p[21] != '+' && p[21] != '-') ||
	    !digits(p + 22, 4))
		return -1;
	int m = month_of(p + 3);
	unsigned d = num(day, 2), y = num(p + 7, 4);
	unsigned hh = num(p + 12, 2), mi = num(p + 15, 2), ss = num(p + 18, 2);
	unsigned zh = num(p + 22, 2), zm = num(p + 24, 2);
	if (m == 0 || !valid_day(y, (unsigned)m, d) || hh > 23 || mi > 59 || ss > 60 || zm > 59)
		return -1;
	int64_t t = days_from_civil(y, (unsigned)m, d) * 86400 + hh * 3600 + mi * 60 + ss;
	int64_t z = (int64_t)(zh * 3600 + zm * 60);
	t += p[21] == '+' ? -z : z;
	*out = (time_t)t;
	return 0;
}

void imap_format_datetime(time_t t, char out[32])
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, 32, "01-Jan-1970 00:00:00 +0000");
		return;
	}
	snprintf(out, 32, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ------------------------------------------------------ modified UTF-7 */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

static int put_utf8(struct buf *out, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, b, n);
}

int imap_mutf7_decode(const char *p, size_t n, struct buf *out)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			if (buf_putc(out, (char)c) < 0)
				return -1;
			i++;
			continue;
		}
		i++;
		if (i < n && p[i] == '-') {
			if (buf_putc(out, '&') < 0)
				return -1;
			i++;
			continue;
		}
		uint32_t bits = 0;
		unsigned nbits = 0;
		uint32_t high = 0; /* pending high surrogate */
		size_t units = 0;
		while (i < n && p[i] != '-') {
			int v = b64_val((unsigned char)p[i]);
			if (v < 0)
				return -1;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			i++;
			if (nbits >= 16) {
				nbits -= 16;
				uint32_t u = (bits >> nbits) & 0xffff;
				bits &= (1u << nbits) - 1;
				units++;
				if (high) {
					if (u < 0xdc00 || u > 0xdfff)
						return -1;
					uint32_t cp =
					    0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
					high = 0;
					if (put_utf8(out, cp) < 0)
						return -1;
				} else if (u >= 0xd800 && u <= 0xdbff) {
					high = u;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					return -1;
				} else {
					/* printable ASCII must not be shifted */
					if (u >= 0x20 && u <= 0x7e)
						return -1;
					if (put_utf8(out, u) < 0)
						return -1;
				}
			}
		}
		if (i >= n || units == 0 || high || nbits >= 6 || bits != 0)
			return -1;
		i++; /* '-' */
		/* "&AGE-&AGE-" is not canonical (two shifts in a row) */
		if (i < n && p[i] == '&' && !(i + 1 < n && p[i + 1] == '-'))
			return -1;
	}
	return 0;
}

/* Next code point of valid UTF-8 at p[*i]; -1 if invalid. */
static int next_cp(const char *p, size_t n, size_t *i, uint32_t *cp)
{
	unsigned char c = (unsigned char)p[*i];
	size_t len;
	uint32_t v, min;
	if (c < 0x80) {
		*cp = c;
		(*i)++;
		return 0;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if (n - *i < len)
		return -1;
	for (size_t k = 1; k < len; k++) {
		unsigned char cc = (unsigned char)p[*i + k];
		if ((cc & 0xc0) != 0x80)
			return -1;
		v = (v << 6) | (cc & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return -1;
	*cp = v;
	*i += len;
	return 0;
}

int imap_mutf7_encode(const char *p, size_t n, struct buf *out)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c <= 0x7e) {
			if (buf_puts(out, c == '&' ? "&-" : (char[]){(char)c, 0}) < 0)
				return -1;
			i++;
			continue;
		}
		if (buf_putc(out, '&') < 0)
			return -1;
		uint32_t bits = 0;
		unsigned nbits = 0;
		while (i < n && !((unsigned char)p[i] >= 0x20 && (unsigned char)p[i] <= 0x7e)) {
			uint32_t cp;
			if (next_cp(p, n, &i, &cp) < 0)
				return -1;
			uint32_t units[2];
			size_t nu = 1;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = 0xd800 + (cp >> 10);
				units[1] = 0xdc00 + (cp & 0x3ff);
				nu = 2;
			} else {
				units[0] = cp;
			}
			for (size_t k = 0; k < nu; k++) {
				bits = (bits << 16) | units[k];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					if (buf_putc(out, b64[(bits >> nbits) & 0x3f]) < 0)
						return -1;
				}
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits > 0 && buf_putc(out, b64[(bits << (6 - nbits)) & 0x3f]) < 0)
			return -1;
		if (buf_putc(out, '-') < 0)
			return -1;
	}
	return 0;
}

/* ----------------------------------------------------------- strings */

int imap_append_string(struct buf *out, const char *s, size_t n)
{
	bool quotable = n <= 1024;
	for (size_t i = 0; i < n && quotable; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			quotable = false;
	}
	if (!quotable) {
		if (buf_printf(out, "{%zu}\r\n", n) < 0)
			return -1;
		return buf_append(out, s, n);
	}
	if (buf_putc(out, '"') < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((s[i] == '"' || s[i] == '\\') && buf_putc(out, '\\') < 0)
			return -1;
		if (buf_putc(out, s[i]) < 0)
			return -1;
	}
	return buf_putc(out, '"');
}

int imap_append_nstring(struct buf *out, const char *s, size_t n)
{
	if (s == NULL)
		return buf_puts(out, "NIL");
	return imap_append_string(out, s, n);
}

/* ------------------------------------------------------------- base64 */

static int std64(unsigned char c)
{
	if (c == '/')
		return 63;
	if (c == ',')
		return -1;
	return b64_val(c);
}

int imap_base64_decode(const char *p, size_t n, unsigned char *out, size_t outsz, size_t *len)
{
	*len = 0;
	if (n % 4 != 0)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;
		for (size_t k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)p[i + k];
			if (c == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;
			v[k] = std64(c);
			if (v[k] < 0)
				return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		/* non-canonical: bits under the padding must be zero */
		if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
			return -1;
		size_t k = 3 - pad;
		if (o + k > outsz)
			return -1;
		for (size_t j = 0; j < k; j++)
			out[o++] = (unsigned char)(w >> (16 - 8 * j));
	}
	*len = o;
	return 0;
}
