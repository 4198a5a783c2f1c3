/*
 * pop3-parse.h - parsing of one POP3 command line (RFC 1939, RFC 2449,
 * RFC 5034) and of the SASL PLAIN exchange (RFC 4616, base64 of RFC 4648
 * section 4).  Pure and allocation-free, so it can be fuzzed and tested
 * byte by byte.
 *
 * The caller hands over one line without its CRLF; the bounded line reader
 * has already enforced the 255-octet command limit of RFC 2449 section 4.
 */
#ifndef TERN_POP3_PARSE_H
#define TERN_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pop3_verb {
	POP3_VERB_UNKNOWN = 0,
	POP3_VERB_USER,
	POP3_VERB_PASS,
	POP3_VERB_AUTH,
	POP3_VERB_CAPA,
	POP3_VERB_STAT,
	POP3_VERB_LIST,
	POP3_VERB_RETR,
	POP3_VERB_DELE,
	POP3_VERB_NOOP,
	POP3_VERB_RSET,
	POP3_VERB_TOP,
	POP3_VERB_UIDL,
	POP3_VERB_QUIT,
	POP3_VERB_APOP,
	POP3_VERB_STLS,
	POP3_VERB_UTF8,
};

enum pop3_parse_error {
	POP3_PARSE_OK = 0,
	POP3_PARSE_UNKNOWN,    /* no such command */
	POP3_PARSE_SYNTAX,     /* missing or extra arguments, empty line */
	POP3_PARSE_BAD_NUMBER, /* an argument that must be a number is not one */
};

#define POP3_MAX_ARGS 2

struct pop3_cmd {
	enum pop3_verb verb; /* set even when the arguments are wrong */
	size_t n_args;
	/* Arguments, pointing into the line (not NUL-terminated).  USER and
	 * PASS take the rest of the line as one argument (a password may hold
	 * spaces, RFC 1939 section 7); other commands split at spaces. */
	const char *arg[POP3_MAX_ARGS];
	size_t arg_len[POP3_MAX_ARGS];
	/* Numeric arguments (LIST, UIDL, RETR, DELE, TOP), parsed; 0 when
	 * absent.  A message number may be 0 or past the end: the session
	 * answers "no such message". */
	uint64_t num[POP3_MAX_ARGS];
};

/* Parses line[0..n).  Verbs are case-insensitive.  Arguments are separated
 * by one or more spaces; trailing spaces are ignored (except in USER and
 * PASS, whose argument is everything after the single space that follows
 * the verb).  Argument counts:
 *   CAPA STAT NOOP RSET QUIT STLS UTF8   none
 *   USER PASS                            1 (rest of the line, non-empty)
 *   AUTH                                 0..2 (mechanism, initial response)
 *   APOP                                 2
 *   LIST UIDL                            0..1 number
 *   RETR DELE                            1 number
 *   TOP                                  2 numbers
 * Returns POP3_PARSE_OK and fills cmd. */
enum pop3_parse_error pop3_parse_command(const char *line, size_t n, struct pop3_cmd *cmd);

/* Bytes needed to decode n base64 characters (an upper bound). */
#define POP3_BASE64_DECODED_MAX(n) ((n) / 4 * 3 + 3)

/* Decodes strict base64 (RFC 4648 section 4: length a multiple of 4, '='
 * only as final padding, no other characters, no non-zero bits left over)
 * from in[0..n) into out (outsz bytes).  Returns 0 with *out_len set, or
 * -1 if the input is not valid base64 or does not fit. */
int pop3_parse_base64(const char *in, size_t n, unsigned char *out, size_t outsz, size_t *out_len);

/* A SASL PLAIN message (RFC 4616): [authzid] NUL authcid NUL passwd.  The
 * fields point into the decoded message. */
struct pop3_plain {
	const char *authzid; /* may be empty */
	size_t authzid_len;
	const char *authcid; /* 1..255 octets */
	size_t authcid_len;
	const char *passwd; /* 1..255 octets */
	size_t passwd_len;
};

/* Splits a decoded PLAIN message.  Returns 0, or -1 if it does not have
 * exactly two NULs or a field is out of its length range. */
int pop3_parse_plain(const unsigned char *msg, size_t n, struct pop3_plain *out);

#endif
