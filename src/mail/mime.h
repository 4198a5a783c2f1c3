/*
 * mime.h - MIME structure of a stored message (RFC 2045-2049, 5322) and the
 * IMAP views built from it (RFC 9051 7.5.2 ENVELOPE / BODY / BODYSTRUCTURE,
 * 6.4.5 body sections, RFC 3516 BINARY), plus decoded text for SEARCH.
 *
 * Mail layer.  The parser is tolerant, as an IMAP server must be: it never
 * fails on malformed input, it only falls back to defaults (RFC 2045 5.2:
 * a missing or broken Content-Type is text/plain; charset=us-ascii, in a
 * multipart/digest message/rfc822).  It is bounded: nesting depth
 * (MIME_MAX_DEPTH: deeper multipart and message parts become opaque
 * text/plain leaves), part count (MIME_MAX_PARTS: parts past it are left
 * out of the tree), field values (MIME_MAX_HEADER_LINE octets of one field
 * are looked at).  A header ends at its blank line; without one, the whole
 * entity is header and the body is empty.
 *
 * The tree keeps offsets into the message, never copies of it: msg must
 * stay valid and unchanged for the life of the tree.  Input lines may end
 * in CRLF or bare LF (stored messages use CRLF).  Everything here is
 * single-threaded per tree; a tree is read-only after mime_parse, so
 * several threads may run builders on one tree at the same time.
 *
 * Return codes: builders append to a caller's struct buf and return 0, or
 * -1 when the buffer's hard maximum is reached (its contents are then
 * incomplete and should be discarded).  Out of memory exits through
 * xalloc (the project policy).
 *
 * RFC 2231 parameters in BODYSTRUCTURE, checked against Dovecot 2.3,
 * which does the same in all but odd cases (see tests/unit/test-mime.c):
 * continuations "name*0", "name*1", ... and "name*0*", "name*1*", ...
 * (names compared case-insensitively, RFC 2045 5.1) are joined in index
 * order into one parameter when their indexes run 0, 1, 2, ... without a
 * gap or repeat (otherwise the segments are listed as they are).  If a
 * segment is extended (charset'language'%XX) the joined parameter is
 * "name*" and its value stays in that raw form: it is NOT decoded, since
 * IMAP has no place for the charset of a decoded value and clients, which
 * know RFC 2231, decode it themselves; '%' in a plain segment becomes
 * "%25" and a missing charset'language' prefix "''", so the joined value
 * decodes right.  A lone extended "name*" is passed as it is.  Order:
 * parameters that are no continuations first, as in the field, then the
 * joined ones sorted by name.  A multipart boundary given in pieces is
 * joined the same way before it is used.
 */
#ifndef TERN_MIME_H
#define TERN_MIME_H

#include <stdbool.h>
#include <stddef.h>

struct buf; /* src/lib/buf.h */
struct mime_tree;

#define MIME_MAX_DEPTH 32          /* nesting of multiparts and message/rfc822 */
#define MIME_MAX_PARTS 10000       /* parts in one tree, all levels */
#define MIME_MAX_HEADER_LINE 65536 /* octets of one field value looked at */
#define MIME_MAX_PARAMS 64         /* Content-Type/-Disposition parameters kept */
#define MIME_MAX_BOUNDARY 200      /* longer boundaries (RFC 2046: <= 70) are ignored */
/* Decoded body text SEARCH BODY/TEXT looks at per message (the scan of
 * src/imap/imap-search.c and the full-text index of src/store/store-fts.c
 * both: their answers must be the same). */
#define MIME_SEARCH_BODY_MAX ((size_t)4 * 1024 * 1024)

/* Parses a whole message msg[0..len).  Never fails on malformed input;
 * returns NULL only on out of memory (which xalloc turns into an exit, so
 * in practice never).  Free with mime_tree_free.  msg must outlive it. */
struct mime_tree *mime_parse(const char *msg, size_t len);
/* Frees the tree and sets *t to NULL.  Accepts NULL and *t == NULL. */
void mime_tree_free(struct mime_tree **t);

/* Appends the IMAP ENVELOPE of the top-level message:
 * "(date subject from sender reply-to to cc bcc in-reply-to message-id)"
 * as RFC 9051 7.5.2: NIL for absent fields, sender and reply-to default to
 * from (also when theirs hold no address), address lists as
 * ((name adl mailbox host) ...), RFC 5322 groups as (NIL NIL "group" NIL)
 * ... (NIL NIL NIL NIL).  Header values are unfolded but not RFC
 * 2047-decoded.  The forms follow Dovecot (see mime-imap.c): strings are
 * quoted ('"' and '\' escaped) or literals {n}\r\n when they hold CR, LF
 * or 8-bit octets (NUL is dropped); the subject and display names are
 * whitespace-normalised and then literals if that changed them or they
 * hold '"' or '\'; an address without mailbox or host gets
 * "MISSING_MAILBOX" / "MISSING_DOMAIN", one whose '>' is missing the host
 * "SYNTAX_ERROR"; without a display name the comment after the address
 * names it ("a@b (Name)").  The last Date/Subject/In-Reply-To/Message-ID
 * field counts; repeated address fields add up.  A syntax error ends an
 * address list (what came before it is kept).  0 / -1. */
int mime_imap_envelope(const struct mime_tree *t, struct buf *out);

/* Appends BODYSTRUCTURE (extended = true) or BODY (extended = false) of the
 * whole message, "(...)" as RFC 9051 7.5.2: type, subtype, parameters, id,
 * description, encoding, size, lines for text/ * and message/rfc822 (the
 * latter with the encapsulated ENVELOPE and BODY/BODYSTRUCTURE), and for
 * the extended form md5 (NIL unless Content-MD5 is present), disposition,
 * language and location; a multipart gives its parts, subtype and, when
 * extended, its parameters, disposition, language, location.  Details:
 * type, subtype and parameters as written (case kept; message/rfc822 and
 * message/global, which both encapsulate a message as RFC 9051 requires,
 * are written in lower case); a text part without charset parameter gets
 * ("charset" "us-ascii") appended; a multipart without any part (no
 * boundary, say) gets one empty text/plain part, since RFC 9051 needs one;
 * in a message without MIME-Version and Content-Type the other Content-*
 * fields are ignored (RFC 2045 4), as Dovecot does.  0 / -1. */
int mime_imap_bodystructure(const struct mime_tree *t, bool extended, struct buf *out);

/*
 * Sections (RFC 9051 6.4.5).  A part is named by path[0..n-1] (each >= 1);
 * n == 0 is the whole message.  Numbering: the parts of a multipart are
 * 1, 2, ...; a message that is not multipart has one part, 1 (its body);
 * the parts of a message/rfc822 (or message/global) part P are the parts
 * of the message it encapsulates (so P.1 is that message's body when it
 * is not multipart).  As in Dovecot, a non-multipart part of a multipart
 * is also its own part 1, once (3.1 = 3 when part 3 is text/plain).
 */
enum mime_sect {
	MIME_SECT_BODY,   /* BODY[1.2]: the part's body (for a message/rfc822 part:
			   * the whole encapsulated message); n == 0: whole message */
	MIME_SECT_HEADER, /* BODY[HEADER] / [1.2.HEADER]: header of the message or of
			   * the message encapsulated by message/rfc822 part 1.2,
			   * including the blank line that ends it */
	MIME_SECT_TEXT,   /* BODY[TEXT] / [1.2.TEXT]: body of that message */
	MIME_SECT_MIME,   /* BODY[1.2.MIME]: the part's own MIME header, including
			   * its blank line (n >= 1; n == 0 gives 0) */
};

/* Byte range of a section in the original message: *start and *len
 * (never past the message).  Returns 1 when found, 0 when there is no such
 * part (IMAP returns an empty string then), -1 on a bad argument (NULL
 * pointers, a 0 in the path).  HEADER or TEXT on a part that is not
 * message/rfc822 gives 0. */
int mime_section(const struct mime_tree *t, const unsigned *path, size_t n, enum mime_sect kind,
		 size_t *start, size_t *len);

/* BODY[HEADER.FIELDS (a b)] and BODY[HEADER.FIELDS.NOT (a b)]: appends the
 * fields of the header block msg[start, start+len) whose name is (not_:
 * is not) one of names[0..n_names-1] (case-insensitive), each with its
 * folded continuation lines, as in the message and in message order, then
 * the blank line "\r\n" (unless the header block has no blank line: RFC
 * 9051 6.4.5.1).  Lines are copied as they are (a bare LF stays a bare
 * LF); a last field without a line end gets "\r\n".  Lines that are not
 * fields are left out.  0 / -1. */
int mime_header_fields(const char *msg, size_t start, size_t len, const char *const *names,
		       size_t n_names, bool not_, struct buf *out);

/* BINARY[path] (RFC 3516): appends the part's body with its
 * Content-Transfer-Encoding removed (base64, quoted-printable; 7bit, 8bit
 * and binary are copied).  Returns 1, 0 when there is no such part, -2 for
 * an unknown encoding (IMAP: NO [UNKNOWN-CTE]), -1 on a full buffer or a
 * bad argument.  n == 0: the whole message, not decoded.  A multipart or
 * message/rfc822 part is copied as it is (RFC 2045 6.4: such parts have
 * no encoding but 7bit/8bit/binary; the encodings of the parts inside are
 * left alone).  Broken base64 or quoted-printable is decoded leniently
 * (RFC 2045 6.7, 6.8: invalid characters kept or skipped), as clients
 * rather see something than nothing.  Decoded text/ * parts get CRLF line
 * ends (RFC 9051 6.4.5).  If the part's Content-Transfer-Encoding field is
 * repeated, the first one counts (as in BODYSTRUCTURE).  The result may
 * hold NUL octets: send it as literal8 ~{n} then (RFC 9051 6.4.5).
 * BINARY.SIZE is the length of what this appends. */
int mime_binary(const struct mime_tree *t, const unsigned *path, size_t n, struct buf *out);

/* For SEARCH HEADER/FROM/SUBJECT...: appends the value of every field of
 * the top-level header named name (case-insensitive; "" = every field, as
 * "Name: value" lines), unfolded and RFC 2047-decoded to UTF-8, each
 * followed by "\n".  0 / -1. */
int mime_search_header(const struct mime_tree *t, const char *name, struct buf *out);

/* For SEARCH FROM/TO/CC/BCC: appends the addr-spec of each address of the
 * field value v[0..n) as "<local@domain>", each followed by a space, parsed as
 * for ENVELOPE (comments and folding white space inside the addr-spec
 * dropped, RFC 5322 3.4.1); addresses without both parts are left out.
 * 0 / -1. */
int mime_addr_specs(const char *v, size_t n, struct buf *out);

/* For SORT FROM/TO/CC (RFC 5256): appends the addr-mailbox ENVELOPE gives
 * the first entry of the address list v[0..n): the local part of a
 * mailbox (quotes removed, as in ENVELOPE), the name of a group; nothing
 * when the list is empty or its first mailbox has no local part.  0 / -1. */
int mime_addr_first_mailbox(const char *v, size_t n, struct buf *out);

/* For JMAP's from / to sort (RFC 8621 4.4.2): appends the name of the
 * first mailbox of the address list v[0..n) when it has one, else its
 * "local@domain" (just the local part when the domain is missing);
 * otherwise as mime_addr_first_mailbox.  0 / -1. */
int mime_addr_first_display(const char *v, size_t n, struct buf *out);

/* For SEARCH BODY/TEXT: appends the decoded text of every text/ * leaf of
 * the message, nested messages included (transfer encoding removed,
 * converted to UTF-8 with iconv when the charset is known; an unknown
 * charset is passed as it is), each leaf followed by "\n", stopping after
 * max_bytes octets in total.  0 / -1. */
int mime_search_body(const struct mime_tree *t, size_t max_bytes, struct buf *out);

/* What SEARCH BODY (and TEXT, with the header) compares: the text of
 * mime_search_body(t, MIME_SEARCH_BODY_MAX), then the file name of each
 * leaf part that has one (Content-Disposition filename, else Content-Type
 * name; RFC 2231 values percent-decoded and converted to UTF-8, plain
 * ones RFC 2047-decoded), each followed by "\n", until the names take
 * 64 KiB.  The IMAP scan and the
 * full-text index both use this.  0 / -1. */
int mime_search_text(const struct mime_tree *t, struct buf *out);

/* RFC 2047 decoding of one header value s[0..len) into UTF-8: encoded
 * words (B and Q, any charset iconv knows; RFC 2231 "*lang" suffixes are
 * skipped) are decoded, blanks between two adjacent encoded words dropped
 * (RFC 2047 6.2), everything else copied as it is; a malformed encoded
 * word, or one in an unknown charset, is copied literally.  0 / -1. */
int mime_decode_2047(const char *s, size_t len, struct buf *out);

/* --- Additions beyond the base API -------------------------------------- */

/* Appends s[0..n) as an IMAP string: NIL when s is NULL, a quoted string
 * when it can be one, else a literal "{n}\r\n" followed by the bytes.
 * 0 / -1. */
int mime_imap_string(struct buf *out, const char *s, size_t n);

/* Number of parts in the tree (all levels, the top-level message counts
 * as one); for tests and limits. */
size_t mime_tree_parts(const struct mime_tree *t);

/* For the Sieve body test (RFC 5173 5): calls fn for each entity of the
 * message, depth first in message order, with its content type (lowercase
 * "type/subtype"; text/plain when missing or broken) and a text: for a
 * multipart its prologue, then its parts, then its epilogue (when it has
 * a close delimiter); for a message/rfc822 part the header of the message
 * it encapsulates, then that message's entities; for any other part its
 * body with the transfer encoding removed and, for text/ *, converted to
 * UTF-8 (an unknown encoding or charset is passed as it is).  At most
 * max_bytes octets of text are passed in all (the text is cut there and
 * the entities after it are left out).  fn returns 0 to go on; anything else stops
 * the walk and is returned.  -1 on a bad argument. */
typedef int (*mime_body_fn)(void *ctx, const char *ctype, const char *text, size_t len);
int mime_body_walk(const struct mime_tree *t, size_t max_bytes, mime_body_fn fn, void *ctx);

#endif
