/*
 * managesieve-parse.c - the ManageSieve command reader (see
 * managesieve-parse.h).  Lines come from the one bounded line reader
 * (lib/linereader.h); literal octets are taken here, counted, and stored
 * only while the command's literal budget lasts.
 *
 * A command is one or more lines: every line but the last ends in a
 * literal "{N+}", and the line after the literal's octets continues the
 * command (it is empty, or starts with a space and more tokens).  A line
 * that does not parse still has its trailing literal skipped, so the
 * octets of a bad command's script are never read as commands.
 */
#include "managesieve-parse.h"

#include <stdio.h>
#include <string.h>

#include "strutil.h"

enum line_result {
	LINE_END,     /* the command ends with this line */
	LINE_LITERAL, /* a literal follows; then the command goes on */
};

static void reset_command(struct managesieve_parser *p)
{
	buf_reset(&p->data);
	p->n_tokens = 0;
	p->literal_left = 0;
	p->literal_total = 0;
	p->in_literal = false;
	p->skip_literal = false;
	p->continued = false;
	p->too_big = false;
	p->done = false;
	p->error[0] = '\0';
}

static size_t data_max(size_t max_line, size_t max_literal)
{
	/* every line's tokens fit in the line; NULs after each token */
	return max_literal + MANAGESIEVE_MAX_TOKENS * (max_line + 1) + 16;
}

void managesieve_parse_init(struct managesieve_parser *p, size_t max_line, size_t max_literal)
{
	memset(p, 0, sizeof *p);
	linereader_init(&p->lr, max_line);
	buf_init(&p->data, data_max(max_line, max_literal));
	p->max_literal = max_literal;
}

void managesieve_parse_free(struct managesieve_parser *p)
{
	linereader_free(&p->lr);
	buf_free(&p->data);
}

void managesieve_parse_set_limits(struct managesieve_parser *p, size_t max_line,
				  size_t max_literal)
{
	linereader_set_max(&p->lr, max_line);
	p->data.max = data_max(max_line, max_literal);
	p->max_literal = max_literal;
}

bool managesieve_parse_busy(const struct managesieve_parser *p)
{
	if (p->done)
		return false;
	return p->in_literal || p->continued || p->n_tokens > 0 || p->lr.skipping ||
	       (!p->lr.done && p->lr.line.len > 0);
}

/* If line[0..n) ends in "{N}" or "{N+}", sets *len and *start (where the
 * '{' is) and returns true. */
static bool trailing_literal(const char *line, size_t n, uint64_t *len, size_t *start)
{
	if (n < 3 || line[n - 1] != '}')
		return false;
	size_t end = n - 1;
	if (line[end - 1] == '+')
		end--;
	size_t b = end;
	while (b > 0 && line[b - 1] >= '0' && line[b - 1] <= '9')
		b--;
	if (b == 0 || b == end || line[b - 1] != '{')
		return false;
	if (strutil_parse_u64(line + b, end - b, UINT32_MAX, len) < 0)
		return false;
	*start = b - 1;
	return true;
}

static bool atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){\"\\%*", c) == NULL;
}

/* Starts a literal of len octets (the token is added by the caller). */
static void start_literal(struct managesieve_parser *p, uint64_t len)
{
	p->in_literal = true;
	p->literal_left = len;
	p->skip_literal = p->too_big || len > p->max_literal - p->literal_total;
	if (p->skip_literal)
		p->too_big = true;
	else
		p->literal_total += (size_t)len;
}

/* A bad line: the command is over once its trailing literal (if any) is
 * skipped.  Returns what the caller returns for the line. */
static enum line_result bad_line(struct managesieve_parser *p, const char *line, size_t n,
				 const char *why)
{
	if (p->error[0] == '\0')
		snprintf(p->error, sizeof p->error, "%s", why);
	uint64_t len;
	size_t start;
	if (trailing_literal(line, n, &len, &start)) {
		p->in_literal = true;
		p->literal_left = len;
		p->skip_literal = true;
		return LINE_LITERAL;
	}
	return LINE_END;
}

static int add_token(struct managesieve_parser *p, enum managesieve_token_type type)
{
	if (p->n_tokens == MANAGESIEVE_MAX_TOKENS)
		return -1;
	p->tokens[p->n_tokens].type = type;
	p->off[p->n_tokens] = p->data.len;
	p->tokens[p->n_tokens].len = 0;
	p->n_tokens++;
	return 0;
}

/* Ends the last token (its bytes are data[off..len)). */
static int end_token(struct managesieve_parser *p)
{
	size_t i = p->n_tokens - 1;
	p->tokens[i].len = p->data.len - p->off[i];
	return buf_putc(&p->data, '\0');
}

static enum line_result parse_line(struct managesieve_parser *p, const char *line, size_t n,
				   bool has_nul)
{
	if (p->error[0] != '\0') /* a bad command whose literal was skipped */
		return bad_line(p, line, n, "");
	if (has_nul)
		return bad_line(p, line, n, "NUL byte in command");
	if (!p->continued && n == 0)
		return bad_line(p, line, n, "empty command");
	size_t pos = 0;
	bool first = !p->continued;
	for (;;) {
		if (pos == n)
			return LINE_END;
		if (!first) {
			if (line[pos] != ' ')
				return bad_line(p, line, n, "expected a space between arguments");
			while (pos < n && line[pos] == ' ')
				pos++;
			if (pos == n)
				return LINE_END; /* trailing spaces */
		}
		first = false;
		unsigned char c = (unsigned char)line[pos];
		if (c == '"') {
			if (add_token(p, MANAGESIEVE_STRING) < 0)
				return bad_line(p, line, n, "too many arguments");
			size_t start = p->data.len;
			pos++;
			for (;;) {
				if (pos == n)
					return bad_line(p, line, n, "unterminated quoted string");
				c = (unsigned char)line[pos++];
				if (c == '"')
					break;
				if (c == '\\') {
					if (pos == n || (line[pos] != '"' && line[pos] != '\\'))
						return bad_line(p, line, n,
								"bad escape in quoted string");
					c = (unsigned char)line[pos++];
				} else if (c == '\r') {
					return bad_line(p, line, n, "CR in quoted string");
				}
				if (p->data.len - start >= MANAGESIEVE_QUOTED_MAX)
					return bad_line(p, line, n,
							"quoted string longer than 1024 octets");
				if (buf_putc(&p->data, (char)c) < 0)
					return bad_line(p, line, n, "command too long");
			}
			if (end_token(p) < 0)
				return bad_line(p, line, n, "command too long");
			continue;
		}
		if (c == '{') {
			uint64_t len;
			size_t start;
			if (!trailing_literal(line + pos, n - pos, &len, &start) || start != 0)
				return bad_line(p, line, n, "bad literal");
			if (add_token(p, MANAGESIEVE_STRING) < 0)
				return bad_line(p, line, n, "too many arguments");
			start_literal(p, len);
			return LINE_LITERAL;
		}
		if (!atom_char(c))
			return bad_line(p, line, n, "unexpected character");
		if (add_token(p, MANAGESIEVE_ATOM) < 0)
			return bad_line(p, line, n, "too many arguments");
		size_t start = pos;
		while (pos < n && atom_char((unsigned char)line[pos]))
			pos++;
		if (buf_append(&p->data, line + start, pos - start) < 0 || end_token(p) < 0)
			return bad_line(p, line, n, "command too long");
	}
}

/* The literal's octets are all in: the command goes on with the next line. */
static void end_literal(struct managesieve_parser *p)
{
	p->in_literal = false;
	p->continued = true;
	if (!p->skip_literal && end_token(p) < 0)
		p->too_big = true;
	p->skip_literal = false;
}

enum managesieve_result managesieve_parse_feed(struct managesieve_parser *p, const char *buf,
					       size_t n, size_t *used)
{
	if (p->done)
		reset_command(p);
	*used = 0;
	for (;;) {
		if (p->in_literal) {
			size_t take = n - *used;
			if (take > p->literal_left)
				take = (size_t)p->literal_left;
			if (!p->skip_literal && buf_append(&p->data, buf + *used, take) < 0) {
				p->skip_literal = true; /* cannot happen: the budget was checked */
				p->too_big = true;
			}
			p->literal_left -= take;
			*used += take;
			if (p->literal_left > 0)
				return MANAGESIEVE_NEED_MORE;
			end_literal(p);
			continue;
		}
		if (*used == n)
			return MANAGESIEVE_NEED_MORE;
		size_t u;
		enum lr_result r = linereader_feed(&p->lr, buf + *used, n - *used, &u);
		*used += u;
		if (r == LR_NEED_MORE)
			continue;
		if (r == LR_TOO_LONG) {
			p->done = true;
			return MANAGESIEVE_TOO_LONG;
		}
		const char *line = p->lr.line.data ? p->lr.line.data : "";
		if (parse_line(p, line, p->lr.line.len, p->lr.has_nul) == LINE_LITERAL)
			continue;
		p->done = true;
		if (p->error[0] != '\0')
			return MANAGESIEVE_BAD;
		if (p->too_big)
			return MANAGESIEVE_TOO_BIG;
		for (size_t i = 0; i < p->n_tokens; i++)
			p->tokens[i].data = p->data.data ? p->data.data + p->off[i] : "";
		return MANAGESIEVE_COMMAND;
	}
}

int managesieve_parse_number(const struct managesieve_token *t, uint32_t *out)
{
	uint64_t v;
	if (t->type != MANAGESIEVE_ATOM || t->len == 0 || t->len > 10)
		return -1;
	for (size_t i = 0; i < t->len; i++)
		if (t->data[i] < '0' || t->data[i] > '9')
			return -1;
	if (strutil_parse_u64(t->data, t->len, UINT32_MAX, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}
