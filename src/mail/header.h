/*
 * header.h - RFC 5322 header section parsing, bounded.
 *
 * Used to read headers of received or stored messages (Message-ID, From,
 * Date, Subject, ...).  The parser never allocates per field beyond one
 * array; fields point into the caller's buffer.
 *
 * Limits: at most HEADER_MAX_FIELDS fields (more: HEADER_ERR_TOO_MANY),
 * a field name of at most HEADER_MAX_NAME characters (longer:
 * HEADER_ERR_SYNTAX), and physical lines of at most HEADER_MAX_LINE octets,
 * the hard limit of RFC 5322 2.1.1 (longer: HEADER_ERR_LINE_TOO_LONG).
 *
 * Field names are 1*ftext (printable US-ASCII except ':'); blanks between
 * the name and the colon (obsolete syntax, RFC 5322 4.5) are accepted.  A
 * line that is not a field, a continuation (starting with SP or HTAB) of
 * one, or the empty line, such as an mbox "From " line, is a syntax error.
 */
#ifndef TERN_HEADER_H
#define TERN_HEADER_H

#include <stdbool.h>
#include <stddef.h>

#define HEADER_MAX_FIELDS 1000
#define HEADER_MAX_LINE 998 /* RFC 5322 2.1.1, excluding CRLF */
#define HEADER_MAX_NAME 76

enum header_error {
	HEADER_OK = 0,
	HEADER_ERR_SYNTAX,      /* a line that is neither a field nor a continuation */
	HEADER_ERR_TOO_MANY,    /* more than HEADER_MAX_FIELDS */
	HEADER_ERR_LINE_TOO_LONG,
};

struct header_field {
	const char *name;   /* points into the message; not NUL-terminated */
	size_t name_len;
	const char *value;  /* raw value after the colon, folding CRLFs included */
	size_t value_len;
};

struct header {
	struct header_field *fields; /* owned; free with header_free */
	size_t n_fields;
	size_t header_len;  /* bytes of the header section, including the empty
			     * line that ends it (or all bytes if none) */
	bool has_body_separator;
};

/* Parses the header section at the start of msg[0..n).  Lines end in CRLF
 * or LF.  Returns HEADER_OK and fills h (free with header_free) or an error
 * (h is then empty). */
enum header_error header_parse(const char *msg, size_t n, struct header *h);
void header_free(struct header *h);

/* First field named name (case-insensitive), or NULL. */
const struct header_field *header_find(const struct header *h, const char *name);
/* Number of fields named name. */
size_t header_count(const struct header *h, const char *name);

/* Unfolds a raw value into out (size outsz): CRLF/LF followed by WSP
 * becomes that WSP (any other CR or LF is dropped too), leading and
 * trailing blanks are trimmed.  Returns the length written (truncated to
 * outsz-1, always NUL-terminated; nothing is written if outsz is 0). */
size_t header_unfold(const char *value, size_t n, char *out, size_t outsz);

struct buf;
/* Appends the header section of msg[0..len) (up to the empty line that
 * ends it) to out: CRLF line ends, lines over 998 octets folded, at most
 * max bytes of the input cut at a line end; with ascii_only every byte
 * that is not printable US-ASCII or HT is written as '?'.  For reports
 * that quote a message's header (text/rfc822-headers).  0 or -1 (out's
 * maximum). */
int header_section_copy(const char *msg, size_t len, size_t max, bool ascii_only,
			struct buf *out);

#endif
