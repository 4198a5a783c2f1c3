/*
 * preview.h - the short plain-text preview of a message that JMAP's
 * Email "preview" property (RFC 8621 4.1.4) and IMAP's FETCH PREVIEW
 * (RFC 8970 3.3) show: the text of the message's text parts, HTML markup
 * dropped (and the content of style and script elements), the common
 * character entities decoded, every run of white space collapsed to one
 * space, cut to a number of characters (code points), no blank at either
 * end.  No quoted-text or signature rules: the text is as written.
 *
 * Mail layer.  Pure functions of their input; the work is bounded by the
 * preview's length (text past it is not looked at).
 */
#ifndef TERN_PREVIEW_H
#define TERN_PREVIEW_H

#include <stdbool.h>
#include <stddef.h>

struct buf;       /* src/lib/buf.h */
struct mime_tree; /* mime.h */

/* The most characters any preview has (RFC 8621, RFC 8970 3.3: MUST NOT
 * exceed 256). */
#define PREVIEW_MAX_CHARS 256

/* True when out holds enough text for a preview of max characters:
 * further parts need not be added. */
bool preview_full(const struct buf *out, size_t max);
/* Adds the UTF-8 text s[0..n) of one part (html: text/html) to the
 * preview being built in out (start with an empty buf): white space
 * collapsed, a space after it.  Stops once preview_full(out, max). */
void preview_add(struct buf *out, const char *s, size_t n, bool html, size_t max);
/* The length of out's preview of at most max characters (max <=
 * PREVIEW_MAX_CHARS): the prefix of out that ends on a code point
 * boundary after at most max of them, without the blank at its end. */
size_t preview_len(const struct buf *out, size_t max);

/* The preview of a whole message for IMAP, appended to out as UTF-8
 * (invalid octets as U+FFFD, no NUL): the text of its first text/plain or
 * text/html part, depth first, that is not an attachment (no
 * Content-Disposition "attachment") and not inside an attached
 * message/rfc822, decoded from its transfer encoding and charset.
 * Empty when the message has no such part.  0 / -1 (a full buffer). */
int preview_message(const struct mime_tree *t, size_t max, struct buf *out);

#endif
