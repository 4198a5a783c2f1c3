/*
 * smtp-parse.h - parsing of one SMTP command line (RFC 5321 4.1), pure and
 * allocation-free so it can be fuzzed and unit-tested byte by byte.
 *
 * The caller hands over one line without its CRLF (the bounded line reader
 * has already enforced the 512-octet limit of RFC 5321 4.5.3.1.4, raised by
 * extensions).
 */
#ifndef TERN_SMTP_PARSE_H
#define TERN_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_HELP,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
};

enum smtp_parse_error {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_UNKNOWN,     /* 500 5.5.1 unrecognised command */
	SMTP_PARSE_SYNTAX,      /* 501 5.5.4 / 5.5.2 syntax error in arguments */
	SMTP_PARSE_BAD_ADDR,    /* 553 5.1.3 (MAIL) / 501 5.1.3 (RCPT) bad address */
	SMTP_PARSE_BAD_PARAM,   /* 555 5.5.4 unknown or bad MAIL/RCPT parameter */
	SMTP_PARSE_NEED_UTF8,   /* 553 5.6.7 non-ASCII address without SMTPUTF8 */
	SMTP_PARSE_TOO_LONG,    /* 501 5.1.3 path too long */
	SMTP_PARSE_BAD_DSN,     /* 501 5.5.4 bad or repeated DSN parameter (RFC 3461 5.1) */
};

enum smtp_body_type { SMTP_BODY_DEFAULT = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

/* DSN (RFC 3461).  RET= of MAIL: */
enum smtp_dsn_ret { SMTP_DSN_RET_NONE = 0, SMTP_DSN_RET_FULL = 1, SMTP_DSN_RET_HDRS = 2 };
/* NOTIFY= of RCPT, a bit set; 0 when the parameter was not given.  The
 * values are those of STORE_DSN_NOTIFY_* (store.h). */
enum {
	SMTP_DSN_NOTIFY_NEVER = 1,
	SMTP_DSN_NOTIFY_SUCCESS = 2,
	SMTP_DSN_NOTIFY_FAILURE = 4,
	SMTP_DSN_NOTIFY_DELAY = 8,
};
/* Longest values accepted (RFC 3461 4.2, 4.4 and 5.4: the esmtp-value as
 * sent, still xtext-encoded). */
#define SMTP_DSN_ENVID_MAX 100
#define SMTP_DSN_ORCPT_MAX 500

struct smtp_cmd {
	enum smtp_verb verb;
	/* HELO/EHLO domain or address literal; VRFY/HELP/AUTH argument;
	 * points into the line, not NUL-terminated. */
	const char *arg;
	size_t arg_len;
	/* MAIL FROM / RCPT TO.  "RCPT TO:<postmaster>" (any case, RFC 5321
	 * 4.1.1.3) gives local "postmaster" and an EMPTY domain: the caller
	 * must fill in our own domain. */
	struct addr addr;
	bool null_path;            /* MAIL FROM:<> */
	bool has_size;
	uint64_t size;             /* SIZE= */
	enum smtp_body_type body;  /* BODY= */
	bool smtputf8;             /* SMTPUTF8 parameter */
	bool requiretls;           /* REQUIRETLS parameter (RFC 8689) */
	/* DSN parameters (RFC 3461), kept exactly as sent (xtext, validated:
	 * the decoded text is printable US-ASCII), "" when absent.  MAIL:
	 * ret, envid; RCPT: notify, orcpt ("addr-type;xtext"). */
	enum smtp_dsn_ret ret;
	char envid[SMTP_DSN_ENVID_MAX + 1];
	unsigned notify;
	char orcpt[SMTP_DSN_ORCPT_MAX + 1];
	/* BDAT */
	uint64_t chunk_size;
	bool last;
};

/* Parses line[0..n).  utf8_ok: whether non-ASCII addresses are acceptable
 * without the SMTPUTF8 parameter (never per RFC 6531; the MAIL command's
 * own SMTPUTF8 parameter is honoured; for RCPT pass the transaction's
 * state).  Verbs are case-insensitive; "MAIL FROM:" and "RCPT TO:" allow no
 * space before the path but tolerate one (common client habit).
 * Returns SMTP_PARSE_OK and fills cmd; cmd->verb is set even on argument
 * errors so that the caller can pick the right reply. */
enum smtp_parse_error smtp_parse_command(const char *line, size_t n, bool utf8_ok,
					 struct smtp_cmd *cmd);

/* Decodes xtext (RFC 3461 4) p[0..n) into out (NUL-terminated, at most
 * outsz-1 bytes).  Returns the decoded length, or -1 if p is not valid
 * xtext, decodes to anything but printable US-ASCII (0x20-0x7e), or does
 * not fit. */
int smtp_parse_xtext_decode(const char *p, size_t n, char *out, size_t outsz);

/* Most addresses smtp_parse_address_list returns. */
#define SMTP_MAX_HEADER_ADDRS 32

/* Extracts the addresses of an RFC 5322 address-list or mailbox-list (the
 * value of a From: field, unfolded or not): display names, comments
 * (nested), quoted strings, obsolete routes ("<@a,@b:x@y>") and group
 * syntax ("team: a@x, b@y;") are understood and skipped; each address is
 * parsed with addr_parse_mailbox (UTF-8 allowed, RFC 6532).  Bounded: a
 * value of any length is scanned once; at most max (<=
 * SMTP_MAX_HEADER_ADDRS) addresses are returned.
 * Returns the number of addresses written to out (0 for an empty list),
 * or -1 if the value does not parse (unbalanced quote, comment or angle
 * bracket, an address that is not a valid mailbox, or more than max). */
int smtp_parse_address_list(const char *v, size_t n, struct addr *out, size_t max);

/* The one RFC5322.From domain DMARC is about (RFC 7489 6.6.1), from the
 * header section at the start of msg[0..n), into out: "" when the message
 * has no From:, several, or addresses of different domains. */
void smtp_parse_from_domain(const char *msg, size_t n, char out[ADDR_DOMAIN_MAX + 1]);
/* The RFC5322.From address of msg[0..n) ("user@domain", as addr_format
 * writes it), when the header section has exactly one From: field holding
 * exactly one address with a domain name; else "". */
void smtp_parse_from_address(const char *msg, size_t n, char out[ADDR_PATH_MAX + 1]);

#endif
