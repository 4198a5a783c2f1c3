/*
 * mime-part.h - a read-only walk over the parts of a parsed message
 * (mime.h), for views that are not IMAP's: JMAP's EmailBodyPart
 * (src/jmap/jmap-email-parts.c, RFC 8621 4.1.4) needs each part's own
 * header fields, its type as the parser decided it, its file name and its
 * transfer-decoded content.
 *
 * Mail layer.  Parts are handles into the tree (struct mime_part stays
 * private): valid as long as the tree.  Nothing here allocates except
 * into the caller's buffers and the array of mime_part_fields.
 */
#ifndef TERN_MIME_PART_H
#define TERN_MIME_PART_H

#include <stdbool.h>
#include <stddef.h>

#include "mime.h"

struct buf;
struct mime_part;

/* The top-level message (never NULL for a tree of mime_parse). */
const struct mime_part *mime_part_root(const struct mime_tree *t);
/* The part of section path[0..n) (n >= 1, as mime_section numbers them),
 * or NULL when there is none or a number is 0. */
const struct mime_part *mime_part_at(const struct mime_tree *t, const unsigned *path, size_t n);
/* True for a multipart the parser opened (its parts are children); a
 * multipart past MIME_MAX_DEPTH is an opaque leaf and false here. */
bool mime_part_is_multipart(const struct mime_part *p);
/* First part of a multipart (NULL otherwise or when it has none), and
 * the next part of the same multipart (NULL after the last). */
const struct mime_part *mime_part_first(const struct mime_part *p);
const struct mime_part *mime_part_next(const struct mime_part *p);

/* One header field: name as written, raw value after the colon up to the
 * end of its last line (line end excluded, folding kept). */
struct mime_part_field {
	const char *name, *value;
	size_t name_len, value_len;
};
/* The fields of p's header in order (lines that are no fields left out),
 * at most max of them, into a new array (*out, caller frees; may be NULL
 * when there are none).  Returns the count. */
size_t mime_part_fields(const struct mime_tree *t, const struct mime_part *p, size_t max,
			struct mime_part_field **out);

/* p's content type as the parser read it, lowercase "type/subtype" (the
 * RFC 2045 5.2 default text/plain for a missing or broken one,
 * message/rfc822 in a multipart/digest), into type; when the field has a
 * charset parameter its value into charset and *has_charset true.
 * 0 / -1 (a full buffer). */
int mime_part_type(const struct mime_tree *t, const struct mime_part *p, struct buf *type,
		   struct buf *charset, bool *has_charset);
/* The disposition token of p's Content-Disposition, lowercase, into out:
 * 1, or 0 when p has none (or a broken one). */
int mime_part_disposition(const struct mime_tree *t, const struct mime_part *p, struct buf *out);
/* p's file name decoded to UTF-8 (Content-Disposition filename, else
 * Content-Type name; RFC 2231 and RFC 2047 as for SEARCH): 1, 0 none, -1. */
int mime_part_name(const struct mime_tree *t, const struct mime_part *p, struct buf *out);
/* p's body with its transfer encoding removed (base64, quoted-printable;
 * others copied, multipart and message parts as they are), at most max
 * octets, appended to out.  Line ends are left as they are.  0, -2 for an
 * unknown encoding (the body is then appended as it is), -1 full buffer. */
int mime_part_content(const struct mime_tree *t, const struct mime_part *p, size_t max,
		      struct buf *out);

/* Converts in[0..n) from charset cs[0..csl) to UTF-8, appended to out:
 * malformed input becomes U+FFFD and sets *problem; an unknown charset
 * sets *problem and the input is taken as UTF-8 (invalid sequences
 * replaced).  NUL octets are dropped.  0 / -1. */
int mime_part_to_utf8(const char *cs, size_t csl, const char *in, size_t n, struct buf *out,
		      bool *problem);

#endif
