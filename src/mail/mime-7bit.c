/*
 * mime-7bit.c - 8-bit to 7-bit conversion of a message (see mime-7bit.h).
 *
 * The message is parsed once (mime_parse) and written out entity by
 * entity: an entity is its header, then either its body as it is, a
 * re-encoded body (leaves), or its children with the bytes between them
 * (preamble, delimiter lines, epilogue) copied as they are.  The walk
 * follows the tree, whose depth the parser bounds (MIME_MAX_DEPTH).
 */
#include "mime-7bit.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "mime-private.h"
#include "strutil.h"

#define LINE_MAX_OCTETS 998 /* RFC 5321 4.5.3.1.6, without CRLF */
#define QP_LINE 76          /* RFC 2045 6.7 (5) */
#define B64_LINE 76         /* RFC 2045 6.8: at most 76 characters */

struct conv {
	const char *msg;
	struct buf *out;
	char *why;
	size_t whysz;
};

static bool has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			return true;
	return false;
}

/* Whether a line of p[0..n) is longer than 998 octets (CR LF excluded). */
static bool has_long_line(const char *p, size_t n)
{
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			run = 0;
			continue;
		}
		if (p[i] != '\r' && ++run > LINE_MAX_OCTETS)
			return true;
	}
	return false;
}

static int fail(struct conv *c, const char *why)
{
	snprintf(c->why, c->whysz, "%s", why);
	return -2;
}

static int put(struct conv *c, const char *p, size_t n)
{
	if (buf_append(c->out, p, n) < 0) {
		snprintf(c->why, c->whysz, "the converted message is too big");
		return -1;
	}
	return 0;
}

static int puts_(struct conv *c, const char *s)
{
	return put(c, s, strlen(s));
}

/* Copies 7-bit bytes; -2 naming where if they are not. */
static int copy_7bit(struct conv *c, size_t off, size_t n, const char *where)
{
	if (has_8bit(c->msg + off, n))
		return fail(c, where);
	return put(c, c->msg + off, n);
}

/* The value of CTE field (trimmed) is one of the 7-bit encodings. */
static bool cte_is(const struct conv *c, const struct mime_part *p, const char *name)
{
	if (p->fld_off[MIME_FLD_CTE] == 0)
		return false;
	const char *v = c->msg + p->fld_off[MIME_FLD_CTE];
	size_t n = p->fld_len[MIME_FLD_CTE];
	size_t i = 0;
	mime_skip_cfws(v, n, &i, NULL);
	size_t tl = mime_read_token(v, n, &i);
	return tl > 0 && strutil_eq_ci(v + i - tl, tl, name);
}

static bool is_cte_field(const struct conv *c, const struct mime_hdr_field *f)
{
	return f->is_field &&
	       strutil_eq_ci(c->msg + f->name_off, f->name_len, "Content-Transfer-Encoding");
}

/*
 * Writes the header of p with its Content-Transfer-Encoding replaced by
 * cte (NULL: unchanged), and, if label, the fields a re-encoded entity
 * without Content-Type needs.  The header must be 7-bit with lines of at
 * most 998 octets.
 */
static int put_header(struct conv *c, const struct mime_part *p, const char *cte, bool label)
{
	size_t end = p->start + p->hdr_len;
	if (has_8bit(c->msg + p->start, p->hdr_len))
		return fail(c, "the message header contains 8-bit characters, which need "
			       "SMTPUTF8");
	if (has_long_line(c->msg + p->start, p->hdr_len))
		return fail(c, "a header line is longer than 998 characters");
	if (cte == NULL)
		return put(c, c->msg + p->start, p->hdr_len);
	struct mime_hdr_iter it;
	struct mime_hdr_field f;
	bool mime_version = false;
	mime_hdr_iter_init(&it, c->msg, p->start, end);
	while (mime_hdr_next(&it, &f)) {
		if (is_cte_field(c, &f))
			continue;
		if (f.is_field && strutil_eq_ci(c->msg + f.name_off, f.name_len, "MIME-Version"))
			mime_version = true;
		if (put(c, c->msg + f.field_off, f.field_len) < 0)
			return -1;
	}
	/* A last field without a line end (header cut by a delimiter). */
	if (c->out->len > 0 && c->out->data[c->out->len - 1] != '\n' && puts_(c, "\r\n") < 0)
		return -1;
	/* RFC 2045 4: a (top-level or encapsulated) message needs
	 * MIME-Version for its Content-Transfer-Encoding to count. */
	if (label && p->is_message && !mime_version && puts_(c, "MIME-Version: 1.0\r\n") < 0)
		return -1;
	if (label && p->fld_off[MIME_FLD_TYPE] == 0 &&
	    puts_(c, "Content-Type: text/plain; charset=unknown-8bit\r\n") < 0)
		return -1;
	if (puts_(c, "Content-Transfer-Encoding: ") < 0 || puts_(c, cte) < 0 ||
	    puts_(c, "\r\n") < 0)
		return -1;
	/* The blank line (or nothing, for a header without one). */
	return put(c, c->msg + it.pos, end - it.pos);
}

/* Quoted-printable (RFC 2045 6.7) of a text body: line breaks stay line
 * breaks (CRLF, or a bare LF, written as CRLF); lines are broken softly
 * so that none is over 76 characters. */
static int put_qp(struct conv *c, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\n' || (ch == '\r' && i + 1 < n && s[i + 1] == '\n')) {
			if (ch == '\r')
				i++;
			if (puts_(c, "\r\n") < 0)
				return -1;
			col = 0;
			continue;
		}
		bool at_eol = i + 1 == n || s[i + 1] == '\n' ||
			      (s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n');
		char enc[3];
		size_t el;
		/* A '-' starting a line is encoded: after a soft break it
		 * could otherwise make a boundary delimiter ("--b"). */
		bool plain = (ch >= 33 && ch <= 126 && ch != '=' && !(ch == '-' && col == 0)) ||
			     ((ch == ' ' || ch == '\t') && !at_eol);
		if (plain) {
			enc[0] = (char)ch;
			el = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[ch >> 4];
			enc[2] = hex[ch & 15];
			el = 3;
		}
		/* Room for a soft break "=" after this one unless the line
		 * ends right here. */
		size_t limit = at_eol ? QP_LINE : QP_LINE - 1;
		if (col + el > limit) {
			if (puts_(c, "=\r\n") < 0)
				return -1;
			col = 0;
			if (ch == '-') { /* now at a line start (see above) */
				enc[0] = '=';
				enc[1] = hex[ch >> 4];
				enc[2] = hex[ch & 15];
				el = 3;
			}
		}
		if (put(c, enc, el) < 0)
			return -1;
		col += el;
	}
	return 0;
}

/* Base64 (RFC 2045 6.8) in lines of 76 characters, each ended by CRLF. */
static int put_base64(struct conv *c, const char *s, size_t n)
{
	char line[B64_LINE + 4];
	for (size_t i = 0; i < n; i += B64_LINE / 4 * 3) {
		size_t k = n - i < B64_LINE / 4 * 3 ? n - i : B64_LINE / 4 * 3;
		long w = base64_encode(s + i, k, line, sizeof line);
		if (w < 0)
			return fail(c, "cannot encode a part");
		if (put(c, line, (size_t)w) < 0 || puts_(c, "\r\n") < 0)
			return -1;
	}
	return 0;
}

static int put_entity(struct conv *c, const struct mime_part *p);

/* A leaf: as it is when 7-bit with short lines, else re-encoded. */
static int put_leaf(struct conv *c, const struct mime_part *p)
{
	const char *body = c->msg + p->body_off;
	bool eight = has_8bit(body, p->body_len);
	if (!eight && !has_long_line(body, p->body_len)) {
		int r = put_header(c, p, NULL, false);
		return r < 0 ? r : put(c, body, p->body_len);
	}
	if (p->opaque && p->kind != MIME_KIND_TEXT && p->kind != MIME_KIND_OTHER)
		return fail(c, "the message nests MIME parts too deeply to convert it");
	if (cte_is(c, p, "base64") || cte_is(c, p, "quoted-printable"))
		return fail(c, eight ? "a part declared as encoded contains 8-bit characters"
				     : "a part declared as encoded has lines over 998 "
				       "characters");
	bool text = p->kind == MIME_KIND_TEXT;
	int r = put_header(c, p, text ? "quoted-printable" : "base64", true);
	if (r < 0)
		return r;
	return text ? put_qp(c, body, p->body_len) : put_base64(c, body, p->body_len);
}

/* A multipart or message part: header (8bit/binary relabelled 7bit),
 * then the children with the bytes around them copied. */
static int put_container(struct conv *c, const struct mime_part *p)
{
	if (p->kind == MIME_KIND_MESSAGE && p->global &&
	    has_8bit(c->msg + p->body_off, p->body_len))
		return fail(c, "an attached message/global part has 8-bit characters; it "
			       "cannot be sent as 7-bit");
	bool relabel = p->fld_off[MIME_FLD_CTE] != 0 && !cte_is(c, p, "7bit");
	int r = put_header(c, p, relabel ? "7bit" : NULL, false);
	if (r < 0)
		return r;
	size_t pos = p->body_off, end = p->body_off + p->body_len;
	for (const struct mime_part *ch = p->children; ch; ch = ch->next) {
		size_t ch_end = ch->body_off + ch->body_len;
		if (ch->start < pos || ch_end > end || ch->body_off < ch->start)
			return fail(c, "the MIME structure is too irregular to convert");
		r = copy_7bit(c, pos, ch->start - pos,
			      "a multipart's preamble or boundary lines contain 8-bit "
			      "characters");
		if (r < 0)
			return r;
		r = put_entity(c, ch);
		if (r < 0)
			return r;
		pos = ch_end;
	}
	return copy_7bit(c, pos, end - pos, "a multipart's epilogue contains 8-bit characters");
}

static int put_entity(struct conv *c, const struct mime_part *p)
{
	bool container =
	    !p->opaque && (p->kind == MIME_KIND_MULTIPART || p->kind == MIME_KIND_MESSAGE);
	if (container && p->children == NULL) {
		/* A multipart without usable boundary: the parser kept its
		 * body whole; it can only be copied when 7-bit. */
		int r = put_header(c, p, NULL, false);
		return r < 0 ? r
			     : copy_7bit(c, p->body_off, p->body_len,
					 "a multipart without a usable boundary contains 8-bit "
					 "characters");
	}
	return container ? put_container(c, p) : put_leaf(c, p);
}

int mime_to_7bit(const char *msg, size_t len, struct buf *out, char *why, size_t whysz)
{
	if (whysz > 0)
		why[0] = '\0';
	struct mime_tree *t = mime_parse(msg, len);
	struct conv c = {msg, out, why, whysz};
	int r = put_entity(&c, t->root);
	/* Bytes past the root entity (none in practice). */
	size_t end = t->root->body_off + t->root->body_len;
	if (r == 0 && end < len)
		r = copy_7bit(&c, end, len - end, "the message ends with 8-bit characters");
	mime_tree_free(&t);
	return r;
}
