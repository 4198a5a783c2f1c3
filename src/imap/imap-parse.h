/*
 * imap-parse.h - reading and parsing IMAP commands (RFC 9051, RFC 3501),
 * without any I/O: the session feeds bytes in and gets whole commands out.
 *
 * Two steps:
 *  1. struct imap_reader collects one whole command: its lines (through the
 *     bounded line reader) and the literals they announce ({n}, {n+} of
 *     RFC 7888, ~{n} of RFC 3516), joined as they came on the wire.  It
 *     decides nothing about a command's meaning; it only enforces sizes and
 *     tells the session when to send a continuation request ("+ ").
 *  2. imap_parse_command splits a whole command into the tag, the command
 *     name and a flat list of tokens (atoms, strings, parentheses), with a
 *     bound on nesting and on the token count.  Command handlers walk the
 *     tokens.
 *
 * Helpers: sequence sets, IMAP dates, modified UTF-7 (RFC 3501 5.1.3).
 * All functions are pure and bounded; none keeps pointers to its input
 * beyond what is documented.
 */
#ifndef TERN_IMAP_PARSE_H
#define TERN_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "linereader.h"

/* Longest line outside literals (without CRLF): the default of the
 * imap.max_line key (docs/config.md), before and after login, and the
 * smallest value the key takes. */
#define IMAP_LINE_MAX 65536
#define IMAP_LINE_MAX_MIN 8192
/* An over-long line is skipped to its end and answered with a tagged BAD;
 * one longer than this many times the limit is garbage: the session ends. */
#define IMAP_LINE_SKIP_FACTOR 16
/* Largest literal before login (a LOGIN password is small). */
#define IMAP_PREAUTH_LITERAL_MAX 8192
/* RFC 7888 LITERAL-: non-synchronizing literals up to this size only. */
#define IMAP_LITERAL_MINUS_MAX 4096
/* Literals per command (MULTIAPPEND has one per message). */
#define IMAP_MAX_LITERALS 1000
/* Parenthesis nesting and tokens per command. */
#define IMAP_MAX_DEPTH 32
#define IMAP_MAX_TOKENS 20000
/* Longest tag. */
#define IMAP_TAG_MAX 64

/* ------------------------------------------------------------- reader */

enum imap_read_result {
	IMAP_READ_MORE,            /* every byte given was used; no command yet */
	IMAP_READ_COMMAND,         /* r->cmd holds one whole command */
	IMAP_READ_CONTINUE,        /* a synchronizing literal was accepted: the
				    * caller sends "+ ..." and feeds on */
	IMAP_READ_LITERAL_REFUSED, /* a synchronizing literal over the limit:
				    * answer "tag NO [TOOBIG]"; the command is
				    * dropped (its tag is in r->cmd, see
				    * imap_reader_tag) and reading goes on */
	IMAP_READ_LINE_TOO_LONG,   /* a line over the limit ended and was
				    * skipped: answer "tag BAD" (imap_reader_tag)
				    * and call imap_reader_next; reading goes on */
	IMAP_READ_GARBAGE,         /* a line IMAP_LINE_SKIP_FACTOR times over the
				    * limit, or an over-long one announcing a
				    * non-synchronizing literal (whose bytes
				    * cannot be told from commands): close with
				    * BYE */
	IMAP_READ_FATAL,           /* a non-synchronizing literal over the
				    * limit, or too many literals / bytes in one
				    * command: close with BYE (RFC 7888 4) */
};

struct imap_reader {
	struct linereader lr;
	struct buf cmd;        /* the command so far, as received */
	uint64_t literal_left; /* bytes of a literal still to copy */
	uint64_t max_literal;  /* largest literal accepted */
	unsigned n_literals;   /* in this command */
	bool literal_minus;    /* only LITERAL- offered (not LITERAL+) */
	bool has_nul;          /* a NUL outside literals in this command */
	/* The current line's first and last bytes, kept even when the line
	 * is too long to keep: the tag to answer, and whether it announced a
	 * literal. */
	char head[IMAP_TAG_MAX + 2];
	size_t head_len;
	char tail[32];
	size_t tail_len;
	uint64_t line_bytes; /* bytes of the current line so far */
	bool line_ended;     /* the last line ended: reset the above first */
};

/* max_literal: largest literal; line_max: longest line. */
void imap_reader_init(struct imap_reader *r, size_t line_max, uint64_t max_literal);
void imap_reader_free(struct imap_reader *r);
void imap_reader_set_limits(struct imap_reader *r, size_t line_max, uint64_t max_literal);
/* Uses bytes of p[0..n), setting *used; stops after each event that is not
 * IMAP_READ_MORE.  After IMAP_READ_COMMAND and IMAP_READ_LITERAL_REFUSED
 * the caller reads r->cmd and then calls imap_reader_next. */
enum imap_read_result imap_reader_feed(struct imap_reader *r, const char *p, size_t n,
				       size_t *used);
/* Forgets the current command (keeps at most a small buffer, so an idle
 * session holds little memory). */
void imap_reader_next(struct imap_reader *r);
/* Releases every buffer (for idle sessions); the reader stays usable. */
void imap_reader_shrink(struct imap_reader *r);
/* True while a command is partly read (lines or a literal pending). */
bool imap_reader_busy(const struct imap_reader *r);
/* Copies the tag of the command being read (or "*" if it has none that is
 * valid) into out (size outsz). */
void imap_reader_tag(const struct imap_reader *r, char *out, size_t outsz);

/* ------------------------------------------------------------- tokens */

enum imap_tok_type {
	IMAP_TOK_ATOM,    /* atom-ish text, incl. "\Seen", "BODY[1.2]<0.5>", "1:*" */
	IMAP_TOK_QUOTED,  /* quoted string, unescaped */
	IMAP_TOK_LITERAL, /* literal ({n}, {n+} or ~{n}: lit8) */
	IMAP_TOK_LPAREN,
	IMAP_TOK_RPAREN,
};

struct imap_tok {
	enum imap_tok_type type;
	bool lit8;     /* ~{n} */
	const char *p; /* into the command buffer */
	size_t len;
};

struct imap_command {
	const char *tag;
	size_t tag_len;
	const char *name; /* the command name as sent */
	size_t name_len;
	struct imap_tok *tok; /* the arguments; owned, free with imap_command_free */
	size_t n_tok;
};

enum imap_parse_error {
	IMAP_PARSE_OK,
	IMAP_PARSE_NO_TAG, /* no valid tag: answer "* BAD" */
	IMAP_PARSE_SYNTAX, /* tag is valid: answer "tag BAD" */
};

/* Parses a whole command as collected by the reader.  cmd is modified in
 * place (quoted strings are unescaped there) and must outlive out.  *why
 * gets a short static explanation on error.  out must be freed with
 * imap_command_free whatever the result. */
enum imap_parse_error imap_parse_command(char *cmd, size_t n, struct imap_command *out,
					 const char **why);
void imap_command_free(struct imap_command *c);

/* True if t is a string (atom, quoted or literal) that equals s
 * case-insensitively. */
bool imap_tok_eq(const struct imap_tok *t, const char *s);
/* atom, quoted or literal ("astring"; NIL is an atom here). */
bool imap_tok_is_string(const struct imap_tok *t);
bool imap_tok_is_nil(const struct imap_tok *t);
/* Parses a number token (0 .. max).  0 or -1. */
int imap_tok_number(const struct imap_tok *t, uint64_t max, uint64_t *out);

/* ------------------------------------------------------- sequence sets */

/* A sequence set (RFC 9051 "sequence-set"): ranges whose ends are numbers
 * >= 1, or 0 for "*".  imap_seqset_resolve turns it into sorted, merged
 * ranges for a given value of "*". */
struct imap_range {
	uint32_t lo, hi;
};
struct imap_seqset {
	struct imap_range *r; /* owned */
	size_t n;
};

/* Parses p[0..n).  0, or -1 (out is then empty).  Free with
 * imap_seqset_free. */
int imap_parse_seqset(const char *p, size_t n, struct imap_seqset *out);
void imap_seqset_free(struct imap_seqset *s);
/* Replaces "*" by star (0 for an empty mailbox makes "*" match nothing:
 * RFC 9051 6.4.8 lets "*" mean the largest number in use), orders each
 * range, sorts and merges.  Ranges that resolve to nothing are dropped. */
void imap_seqset_resolve(struct imap_seqset *s, uint32_t star);
/* After resolve: true if v is in the set (binary search). */
bool imap_seqset_has(const struct imap_seqset *s, uint32_t v);
/* Appends the set as "a:b,c" (after resolve) to out. */
int imap_seqset_format(const struct imap_seqset *s, struct buf *out);

/* ------------------------------------------------------------ QRESYNC */

/* The argument of the QRESYNC select parameter (RFC 7162 3.2.5):
 * "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP "("
 * known-sequence-set SP known-uid-set ")"] ")".  The sets are kept as
 * given (not resolved); none holds "*".  An empty known (n == 0) means
 * the client sent none; so does an empty seqs/uids pair. */
struct imap_qresync {
	uint32_t uidvalidity;
	uint64_t modseq;
	struct imap_seqset known;
	struct imap_seqset seqs, uids; /* same number of elements, each ascending */
};

/* Parses the tokens a[0..n) from the "(" after QRESYNC; *used is set to
 * the tokens it took (up to and including the closing ")").  0, or -1
 * with *why set (out is then empty).  Free with imap_qresync_free. */
int imap_parse_qresync(const struct imap_tok *a, size_t n, size_t *used,
		       struct imap_qresync *out, const char **why);
void imap_qresync_free(struct imap_qresync *q);

/* --------------------------------------------------------------- dates */

/* date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (day may have a leading space)
 * -> unix time.  0 or -1. */
int imap_parse_datetime(const char *p, size_t n, time_t *out);
/* date "d-Mon-yyyy" (SEARCH) -> days since the epoch.  0 or -1. */
int imap_parse_date(const char *p, size_t n, int64_t *days);
/* Formats t as a date-time in UTC ("dd-Mon-yyyy hh:mm:ss +0000") into
 * out[32]. */
void imap_format_datetime(time_t t, char out[32]);

/* ------------------------------------------------------ modified UTF-7 */

/* Modified UTF-7 (RFC 3501 5.1.3) -> UTF-8, appended to out.  Strict: only
 * printable ASCII, "&-" for "&", shifted runs in modified base64 of
 * UTF-16 that are not empty, encode no printable ASCII, end in "-" and
 * leave no stray bits.  0 or -1 (out may hold a partial result). */
int imap_mutf7_decode(const char *p, size_t n, struct buf *out);
/* UTF-8 -> modified UTF-7 appended to out.  0, or -1 if p is not valid
 * UTF-8. */
int imap_mutf7_encode(const char *p, size_t n, struct buf *out);

/* Appends s as an IMAP string: a quoted string if it can be one, else a
 * literal {n}\r\n...  */
int imap_append_string(struct buf *out, const char *s, size_t n);
/* As imap_append_string, but NIL for a NULL s. */
int imap_append_nstring(struct buf *out, const char *s, size_t n);

/* Strict base64 (RFC 4648, with padding) of p[0..n) into out (size outsz).
 * 0 and *len, or -1. */
int imap_base64_decode(const char *p, size_t n, unsigned char *out, size_t outsz, size_t *len);

#endif
