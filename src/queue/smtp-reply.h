/*
 * smtp-reply.h - parsing what a remote SMTP server answers (RFC 5321 4.2):
 * multi-line replies, the EHLO keywords (RFC 5321 4.1.1.1 and the
 * extensions we use), and enhanced status codes (RFC 3463, RFC 2034).
 *
 * Pure functions on bounded structs: the SMTP client feeds it one line at
 * a time from its bounded line reader; the fuzzer feeds it anything.
 */
#ifndef TERN_SMTP_REPLY_H
#define TERN_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_MAX_LINES 100 /* more: a malformed reply */
#define SMTP_REPLY_TEXT_MAX 4096 /* text kept (lines joined by '\n') */

struct smtp_reply {
	int code; /* 200..599 once a line was read */
	size_t n_lines;
	bool done; /* the last line ("NNN " or "NNN") came */
	size_t text_len;
	char text[SMTP_REPLY_TEXT_MAX]; /* texts after "NNN-"/"NNN ", '\n' between
					 * lines; truncated, NUL-terminated */
};

enum smtp_reply_status {
	SMTP_REPLY_MORE, /* a continuation line: feed the next one */
	SMTP_REPLY_DONE, /* r is complete */
	SMTP_REPLY_BAD,  /* not a reply line, code changed, or too many lines */
};

/* Clears r for a new reply. */
void smtp_reply_init(struct smtp_reply *r);
/* Adds one line (without CRLF) to r. */
enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line, size_t n);

/* Extensions of an EHLO reply that the client uses. */
struct smtp_caps {
	bool esmtp; /* EHLO was accepted */
	bool pipelining;
	bool eightbitmime;
	bool smtputf8;
	bool starttls;
	bool chunking;
	bool enhancedstatuscodes;
	bool dsn;
	bool requiretls;   /* REQUIRETLS (RFC 8689) */
	bool auth_plain;   /* AUTH with the PLAIN mechanism (RFC 4954, 4616) */
	bool size;         /* SIZE offered */
	uint64_t size_max; /* 0: no limit given */
};

/* Reads the keywords of a complete 250 EHLO reply (first line is the
 * greeting text, the others "KEYWORD [PARAMS]"). */
void smtp_reply_caps(const struct smtp_reply *r, struct smtp_caps *caps);

/* Copies the enhanced status code at the start of text ("5.1.1 ...") into
 * out[16] and returns 1; 0 (out = "") if there is none.  The class must
 * be 2, 4 or 5; subject and detail 0..999 (RFC 3463). */
int smtp_reply_enhanced(const char *text, char out[16]);

/* One line for logs, the database and DSNs: "CODE TEXT" with the lines
 * joined by a space and control or non-ASCII bytes replaced by '?', at
 * most outsz-1 bytes. */
void smtp_reply_oneline(const struct smtp_reply *r, char *out, size_t outsz);

#endif
