/*
 * managesieve-parse.h - the bounded, resumable command reader of the
 * ManageSieve server (RFC 5804 section 4): a command is an atom followed
 * by strings (quoted, or literal "{N+}" CRLF N octets) and numbers, ended
 * by CRLF.  A SASL response (section 2.1) is read the same way: one
 * string and CRLF.
 *
 * Pure and allocation-bounded (everything goes into bufs with hard
 * maximums), so it can be fuzzed and fed one byte at a time.
 *
 * Bounds: a line (the parts of a command outside literals) is at most
 * max_line bytes; a quoted string at most 1024 octets (RFC 5804 4); the
 * literals of one command together at most max_literal bytes.  A line
 * over its limit is skipped to its end (its tail is never parsed as a new
 * command); a literal over its limit is skipped without being stored, and
 * the command is then reported as MANAGESIEVE_TOO_BIG once it ends.
 *
 * Literals: the client sends "{N+}" (non-synchronizing) and the server
 * sends no continuation (RFC 5804 has none).  "{N}" is accepted the same
 * way, as other servers do, for clients that send it.
 */
#ifndef TERN_MANAGESIEVE_PARSE_H
#define TERN_MANAGESIEVE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "linereader.h"

/* Tokens in one command, the command name included (PUTSCRIPT name
 * script is 3; nothing in RFC 5804 needs more than 3). */
#define MANAGESIEVE_MAX_TOKENS 4
/* RFC 5804 4: at most 1024 octets between the quotes. */
#define MANAGESIEVE_QUOTED_MAX 1024

enum managesieve_token_type {
	MANAGESIEVE_ATOM,   /* the command name, a number, or another atom */
	MANAGESIEVE_STRING, /* quoted or literal */
};

struct managesieve_token {
	enum managesieve_token_type type;
	const char *data; /* NUL-terminated copy; may hold NULs (literals) */
	size_t len;
};

enum managesieve_result {
	MANAGESIEVE_NEED_MORE, /* every byte given was consumed; no command ended */
	MANAGESIEVE_COMMAND,   /* a command: p->tokens[0..n_tokens) */
	MANAGESIEVE_BAD,       /* a command that does not parse ended; p->error says why */
	MANAGESIEVE_TOO_LONG,  /* a line over max_line ended (and was dropped) */
	MANAGESIEVE_TOO_BIG,   /* a command with literals over max_literal ended */
};

struct managesieve_parser {
	struct linereader lr;
	struct buf data; /* the tokens' bytes of the current command */
	size_t max_literal;
	size_t n_tokens;
	struct managesieve_token tokens[MANAGESIEVE_MAX_TOKENS];
	/* token i is data[off[i] .. off[i] + len) (pointers are set when the
	 * command ends: data may move while it grows) */
	size_t off[MANAGESIEVE_MAX_TOKENS];
	uint64_t literal_left; /* octets of the literal still to come */
	size_t literal_total;  /* literal octets of this command stored so far */
	bool in_literal;
	bool skip_literal;   /* the literal is over the limit: dropped */
	bool continued;      /* the next line continues the command (after a literal) */
	bool too_big;        /* a literal of this command was dropped */
	bool done;           /* a result was returned: reset before the next byte */
	char error[128];     /* after MANAGESIEVE_BAD */
};

/* max_line: the longest line outside literals (without CRLF);
 * max_literal: the most literal octets one command may carry. */
void managesieve_parse_init(struct managesieve_parser *p, size_t max_line, size_t max_literal);
void managesieve_parse_free(struct managesieve_parser *p);
/* Changes the limits (after login), between commands. */
void managesieve_parse_set_limits(struct managesieve_parser *p, size_t max_line,
				  size_t max_literal);
/* Consumes bytes of buf[0..n) up to the end of a command (or all of them)
 * and sets *used.  After a result other than NEED_MORE the tokens stay
 * valid until the next call. */
enum managesieve_result managesieve_parse_feed(struct managesieve_parser *p, const char *buf,
					       size_t n, size_t *used);
/* True in the middle of a command (part of it read). */
bool managesieve_parse_busy(const struct managesieve_parser *p);

/* Parses a token as a number (RFC 5804 4: a 32-bit unsigned number).
 * Returns 0, or -1 if it is not an atom of digits in range. */
int managesieve_parse_number(const struct managesieve_token *t, uint32_t *out);

#endif
