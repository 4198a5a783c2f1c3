/*
 * mime-build.h - writing the parts of a new RFC 5322 / MIME message:
 * header fields folded at 78 columns, RFC 2047 encoded words for
 * non-ASCII text, quoted strings, RFC 2231 parameters, quoted-printable
 * and base64 bodies, boundaries.  Everything is appended to a struct buf
 * with CRLF line ends; the callers (JMAP Email/set create) check their
 * input first.  Appends ignore buf's maximum: the caller checks the
 * length at the end (a buf past its maximum keeps what fitted).
 */
#ifndef TERN_MIME_BUILD_H
#define TERN_MIME_BUILD_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* One header field being written: words are separated by a space, or by
 * a fold (CRLF SP) when the line would pass 78 columns. */
struct mime_hdr {
	struct buf *out;
	size_t col;
	bool first; /* no word yet after "Name:" */
};

/* Starts "Name:". */
void mime_hdr_start(struct mime_hdr *h, struct buf *out, const char *name);
/* One word (n bytes, no CR/LF), after sep (" " or "" to glue it to the
 * previous word; a fold may replace a " " sep only). */
void mime_hdr_word(struct mime_hdr *h, const char *sep, const char *w, size_t n);
/* Unstructured text (RFC 5322 2.2.1; no CR or LF): split at spaces when
 * plain ASCII, else (or with a word of more than 900 octets) RFC 2047
 * "B" encoded words of whole UTF-8 characters, so no line passes 998
 * octets. */
void mime_hdr_text(struct mime_hdr *h, const char *s);
/* A display name (phrase): atoms as they are, other ASCII as a quoted
 * string, non-ASCII (or a word of more than 400 octets) as encoded
 * words. */
void mime_hdr_phrase(struct mime_hdr *h, const char *s);
/* A parameter "; name=value": a token, a quoted string, or RFC 2231
 * name*=utf-8''%XX when value is not ASCII.  value: at most 255 octets
 * (the caller checks), so the line stays under 998. */
void mime_hdr_param(struct mime_hdr *h, const char *name, const char *value);
/* Ends the field (CRLF). */
void mime_hdr_end(struct mime_hdr *h);

/* True if s is ASCII without control characters (so can go in a header
 * as it is). */
bool mime_build_is_plain(const char *s);

/* A text body s[0..n): every line end (CRLF, LF or CR) made CRLF, as it
 * is when the text is ASCII with lines of at most 998 octets ("7bit"),
 * else quoted-printable (RFC 2045 6.7: lines of at most 76).  Returns the
 * Content-Transfer-Encoding used. */
const char *mime_build_text(struct buf *out, const char *s, size_t n);

/* base64 (RFC 2045 6.8) of p[0..n) in lines of 76, each ending CRLF. */
void mime_build_base64(struct buf *out, const void *p, size_t n);

/* A new boundary (RFC 2046 5.1.1: 1..70 characters) into out[40]: one
 * that quoted-printable and base64 output never contain ("=_" starts
 * it), made unique with a random id. */
void mime_build_boundary(char out[40]);

#endif
