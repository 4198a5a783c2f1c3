/*
 * mime-private.h - what mime.c (parsing, sections), mime-imap.c (IMAP
 * strings, ENVELOPE, BODYSTRUCTURE) and mime-decode.c (transfer encodings,
 * RFC 2047, charsets, search text) share.  Not for use outside src/mail.
 */
#ifndef TERN_MIME_PRIVATE_H
#define TERN_MIME_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "mime.h"

struct buf;

/* The MIME header fields a part remembers (first occurrence of each). */
enum mime_fld {
	MIME_FLD_TYPE,
	MIME_FLD_CTE,
	MIME_FLD_ID,
	MIME_FLD_DESC,
	MIME_FLD_DISP,
	MIME_FLD_LANG,
	MIME_FLD_LOC,
	MIME_FLD_MD5,
	MIME_FLD_COUNT
};

enum mime_kind {
	MIME_KIND_TEXT,      /* text/ *, also the default text/plain */
	MIME_KIND_MULTIPART, /* multipart/ *: children are its parts */
	MIME_KIND_MESSAGE,   /* message/rfc822 or message/global: one child,
			      * the encapsulated message */
	MIME_KIND_OTHER,     /* any other type */
};

/*
 * One entity: the top-level message, a part of a multipart, or a message
 * encapsulated in a message/rfc822 part.  Offsets are into the message.
 * The entity is msg[start, start + hdr_len) (its header, with the blank
 * line when there is one) followed by msg[body_off, body_off + body_len).
 */
struct mime_part {
	struct mime_part *parent;
	struct mime_part *children; /* first child */
	struct mime_part *last_child;
	struct mime_part *next; /* next sibling */
	size_t n_children;

	size_t start, hdr_len, body_off, body_len;
	size_t lines; /* LFs in the body (text and message kinds) */
	/* Raw field values (after the colon, up to the line end of the
	 * field's last line); off == 0 means "absent" (a value can never
	 * start at offset 0, its name comes first). */
	size_t fld_off[MIME_FLD_COUNT];
	size_t fld_len[MIME_FLD_COUNT];
	char *boundary; /* multipart with a usable boundary, else NULL */
	unsigned depth;

	enum mime_kind kind;
	bool is_message; /* the top-level or an encapsulated message */
	bool type_valid; /* Content-Type present and well-formed */
	bool global;     /* message/global rather than message/rfc822 */
	bool opaque;     /* a multipart or message part past a limit: shown
			  * and treated as a text/plain leaf */
	bool in_digest;  /* a part of a multipart/digest (default type
			  * message/rfc822) */
};

struct mime_tree {
	const char *msg;
	size_t len;
	struct mime_part *root;
	size_t n_parts;
};

/* --- header fields ------------------------------------------------------ */

/* Iterates the fields of a header block msg[off, end). */
struct mime_hdr_iter {
	const char *msg;
	size_t pos, end;
};
struct mime_hdr_field {
	bool is_field;               /* false: a line without a colon (or a
				      * stray continuation), with the lines
				      * that continue it; its name is empty */
	size_t name_off, name_len;   /* name without blanks before the colon */
	size_t value_off, value_len; /* after the colon, to the end of the last
				      * line of the field, line end excluded */
	size_t field_off, field_len; /* the whole field, line ends included */
};
void mime_hdr_iter_init(struct mime_hdr_iter *it, const char *msg, size_t off, size_t end);
/* Next field, or line that is no field (is_field false: callers other
 * than HEADER.FIELDS.NOT skip those); false at the end of the block or at
 * a blank line (it->pos then stays at the blank line). */
bool mime_hdr_next(struct mime_hdr_iter *it, struct mime_hdr_field *f);

/* Appends the value of a field as IMAP servers show it: blanks after the
 * colon skipped (when the first line holds nothing else only the first
 * one, as Dovecot does), folding line breaks removed (the blank that
 * follows is kept).  At most MIME_MAX_HEADER_LINE octets.  0 / -1. */
int mime_value_unfold(const char *v, size_t n, struct buf *out);
/* The same without unfolding: the raw value after its leading blanks. */
void mime_value_trim_start(const char **v, size_t *n);

/* --- RFC 822 tokens ----------------------------------------------------- */

/* Skips blanks, line breaks and (nested, bounded) comments from s[*i].
 * If comment is not NULL, the content of the last comment seen is
 * stored there (it is reset first). */
void mime_skip_cfws(const char *s, size_t n, size_t *i, struct buf *comment);
/* RFC 2045 token characters: printable ASCII except SPACE and tspecials. */
bool mime_is_token_char(unsigned char c);
/* Reads a token at s[*i]; returns its length (0 if none). */
size_t mime_read_token(const char *s, size_t n, size_t *i);
/* Reads a quoted-string at s[*i] (which must be '"') into out, escapes
 * removed, line breaks removed.  Returns 0, or -1 if it is unterminated
 * (*i is then unchanged). */
int mime_read_quoted(const char *s, size_t n, size_t *i, struct buf *out);

/* --- parameters (RFC 2045 5.1, RFC 2231) -------------------------------- */

struct mime_param {
	char *name, *value; /* NUL-terminated copies, owned */
	size_t name_len, value_len;
};
struct mime_params {
	struct mime_param *v;
	size_t n, cap;
};
/* Parses ";" parameter lists at s[*i] into p (RFC 2231 continuations
 * joined, see mime.h).  Tolerant: stops at the first broken parameter. */
void mime_params_parse(const char *s, size_t n, size_t *i, struct mime_params *p);
void mime_params_free(struct mime_params *p);
/* First parameter named name (case-insensitive), or NULL. */
const struct mime_param *mime_params_find(const struct mime_params *p, const char *name);

/* Content-Type value s[0..n): on success (true) the type_ and sub_ outputs give the
 * offsets and lengths of the type and subtype tokens in s, and params
 * (if not NULL) the parameters.  False for a broken value. */
bool mime_ctype_parse(const char *s, size_t n, size_t *type_off, size_t *type_len, size_t *sub_off,
		      size_t *sub_len, struct mime_params *params);

/* Unfolded value of field f of part p into out ("" if absent); returns
 * false if the field is absent. */
bool mime_part_field(const struct mime_tree *t, const struct mime_part *p, enum mime_fld f,
		     struct buf *out);

/* The part named by path[0..n-1] (n >= 1), or NULL. */
const struct mime_part *mime_part_find(const struct mime_tree *t, const unsigned *path, size_t n);

/* --- decoding (mime-decode.c) ------------------------------------------- */

/* Lenient base64 (RFC 2045 6.8) and quoted-printable (6.7) decoders;
 * append at most max octets.  0 / -1 (full buffer). */
int mime_decode_base64(const char *s, size_t n, size_t max, struct buf *out);
int mime_decode_qp(const char *s, size_t n, size_t max, struct buf *out);

#endif
