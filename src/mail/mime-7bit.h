/*
 * mime-7bit.h - turns a message with 8-bit content into one that is 7-bit
 * clean, for a next hop that does not offer 8BITMIME (RFC 6152 3: a relay
 * converts, or returns the message).
 *
 * Each leaf part whose body has 8-bit octets or lines over 998 octets is
 * re-encoded: text parts as quoted-printable (RFC 2045 6.7), other parts
 * as base64 (6.8); its Content-Transfer-Encoding field is replaced.  A
 * message or part without Content-Type that is re-encoded is labelled
 * "text/plain; charset=unknown-8bit" (RFC 1428) and a top-level message
 * also gets "MIME-Version: 1.0" when it has none.  message/rfc822 and
 * multipart parts declared 8bit/binary are recursed into and relabelled
 * 7bit (RFC 2045 6.4 forbids encoding them).  Everything else (headers,
 * preambles, boundaries, 7-bit parts) is copied byte for byte.
 *
 * What cannot be converted, and is reported instead: 8-bit octets in a
 * header (those need SMTPUTF8, RFC 6532), in a multipart's preamble,
 * boundary lines or epilogue, in a message/global part, in a part that
 * claims base64 or quoted-printable, or in a multipart/message part past
 * the parser's nesting limit; header lines over 998 octets.
 */
#ifndef TERN_MIME_7BIT_H
#define TERN_MIME_7BIT_H

#include <stddef.h>

struct buf;

/* Appends the 7-bit form of msg[0..len) to out.  Returns 0; -2 when the
 * message cannot be converted (why, of size whysz, says why in plain
 * words, out then holds a partial result the caller discards); -1 when
 * out's maximum was reached. */
int mime_to_7bit(const char *msg, size_t len, struct buf *out, char *why, size_t whysz);

#endif
