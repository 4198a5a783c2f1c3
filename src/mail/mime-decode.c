/*
 * mime-decode.c - content of parts (see mime.h): transfer decodings for
 * BINARY[] (RFC 3516 / RFC 9051), RFC 2047 encoded words, charset
 * conversion with iconv, and the decoded text SEARCH looks at.
 *
 * Mail layer.  Decoders are lenient, as RFC 2045 asks of robust readers:
 * base64 ignores characters outside its alphabet (6.8) and restarts after
 * '=' padding (concatenated encodings exist), quoted-printable keeps an
 * '=' that starts no valid escape as it is and drops trailing blanks of
 * lines (6.7 rules 3 and the notes on robustness).
 */
#include "mime-private.h"
#include "mime-part.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "strutil.h"

/* Appends through a small stack buffer so decoders do not call
 * buf_putc per octet. */
struct sink {
	struct buf *out;
	size_t room; /* octets still allowed */
	char chunk[4096];
	size_t n;
	int err;
};

static void sink_flush(struct sink *k)
{
	if (k->n > 0 && k->err == 0 && buf_append(k->out, k->chunk, k->n) < 0)
		k->err = -1;
	k->n = 0;
}

/* false once the limit is reached */
static bool sink_put(struct sink *k, char c)
{
	if (k->room == 0)
		return false;
	k->room--;
	k->chunk[k->n++] = c;
	if (k->n == sizeof k->chunk)
		sink_flush(k);
	return true;
}

/* base64 alphabet value of each octet, -1 outside it */
static const signed char b64_table[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10; /* RFC 2045 6.7 (2): lower case, leniently */
	return -1;
}

int mime_decode_base64(const char *s, size_t n, size_t max, struct buf *out)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t want = n / 4 * 3 + 3;

	if (want > max)
		want = max;
	if (buf_reserve(out, want) < 0)
		return -1;
	/* decode straight into the reserved room */
	char *o = out->data + out->len;
	size_t got = 0;
	for (size_t i = 0; i < n && got < want; i++) {
		unsigned char c = (unsigned char)s[i];
		int v = b64_table[c];
		if (v < 0) {
			if (c == '=') {
				/* padding ends a unit; what is left is no octet */
				acc = 0;
				bits = 0;
			}
			continue; /* RFC 2045 6.8: other characters are ignored */
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[got++] = (char)((acc >> bits) & 0xff);
			acc &= (1u << bits) - 1;
		}
	}
	out->len += got;
	out->data[out->len] = '\0';
	return 0;
}

int mime_decode_qp(const char *s, size_t n, size_t max, struct buf *out)
{
	struct sink k = {.out = out, .room = max};
	size_t i = 0;

	while (i < n && k.room > 0) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t e = nl != NULL ? (size_t)(nl - s) : n;
		size_t ce = e > i && s[e - 1] == '\r' ? e - 1 : e;
		size_t t = ce;
		while (t > i && (s[t - 1] == ' ' || s[t - 1] == '\t'))
			t--; /* rule 3: trailing blanks were added in transport */
		bool soft = t > i && s[t - 1] == '=';
		if (soft)
			t--;
		for (size_t j = i; j < t && k.room > 0; j++) {
			char c = s[j];
			if (c == '=' && j + 2 < t) {
				int hi = hex_value((unsigned char)s[j + 1]);
				int lo = hex_value((unsigned char)s[j + 2]);
				if (hi >= 0 && lo >= 0) {
					c = (char)(hi * 16 + lo);
					j += 2;
				}
			}
			(void)sink_put(&k, c);
		}
		if (!soft && nl != NULL) {
			/* a hard line break, kept as it was written */
			if (ce < e)
				(void)sink_put(&k, '\r');
			(void)sink_put(&k, '\n');
		}
		i = nl != NULL ? e + 1 : n;
	}
	sink_flush(&k);
	return k.err;
}

/* --- charsets ------------------------------------------------------------ */

/* Only plain names reach iconv_open. */
static bool charset_ok(const char *cs, size_t n)
{
	if (n == 0 || n > 40)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)cs[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':' || c == '+'))
			return false;
	}
	return true;
}

static bool charset_is_utf8(const char *cs, size_t n)
{
	return strutil_eq_ci(cs, n, "utf-8") || strutil_eq_ci(cs, n, "utf8") ||
	       strutil_eq_ci(cs, n, "us-ascii") || strutil_eq_ci(cs, n, "ascii");
}

/* Converts in[0..n) from charset cs to UTF-8 and appends at most max
 * octets.  Invalid input becomes U+FFFD.  Returns 0, 1 if the charset is
 * unknown (nothing appended), -1 on a full buffer. */
static int convert_utf8(const char *cs, size_t csl, const char *in, size_t n, size_t max,
			struct buf *out)
{
	char name[48];

	if (charset_is_utf8(cs, csl)) {
		if (n > max)
			n = max;
		return buf_append(out, in, n);
	}
	if (!charset_ok(cs, csl))
		return 1;
	memcpy(name, cs, csl);
	name[csl] = '\0';
	iconv_t cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1)
		return 1;
	char chunk[4096];
	char *ip = (char *)in;
	size_t il = n;
	int r = 0;
	while (il > 0 && max > 0) {
		char *op = chunk;
		size_t ol = sizeof chunk;
		size_t rc = iconv(cd, &ip, &il, &op, &ol);
		size_t got = sizeof chunk - ol;
		if (got > max)
			got = max;
		if (buf_append(out, chunk, got) < 0) {
			r = -1;
			break;
		}
		max -= got;
		if (rc != (size_t)-1 || errno == E2BIG)
			continue;
		/* EILSEQ or EINVAL: mark and skip one octet */
		if (max >= 3 && buf_append(out, "\xef\xbf\xbd", 3) < 0) {
			r = -1;
			break;
		}
		max = max >= 3 ? max - 3 : 0;
		ip++;
		il--;
	}
	iconv_close(cd);
	return r;
}

/* --- RFC 2047 -------------------------------------------------------------- */

struct eword {
	size_t cs_off, cs_len; /* charset, "*lang" excluded */
	char enc;              /* 'B' or 'Q' */
	size_t text_off, text_len;
	size_t end; /* after "?=" */
};

static bool parse_eword(const char *s, size_t n, size_t i, struct eword *w)
{
	if (i + 1 >= n || s[i] != '=' || s[i + 1] != '?')
		return false;
	size_t k = i + 2, cs = k;
	while (k < n && s[k] != '?' && s[k] != ' ' && s[k] != '\t' && s[k] != '\r' && s[k] != '\n')
		k++;
	if (k == cs || k + 2 >= n || s[k] != '?' || s[k + 2] != '?')
		return false;
	char enc = s[k + 1];
	if (enc == 'b')
		enc = 'B';
	else if (enc == 'q')
		enc = 'Q';
	if (enc != 'B' && enc != 'Q')
		return false;
	const char *star = memchr(s + cs, '*', k - cs);
	w->cs_off = cs;
	w->cs_len = star != NULL ? (size_t)(star - (s + cs)) : k - cs;
	w->enc = enc;
	k += 3;
	w->text_off = k;
	while (k < n && s[k] != '?' && s[k] != ' ' && s[k] != '\t' && s[k] != '\r' && s[k] != '\n')
		k++;
	if (k + 1 >= n || s[k] != '?' || s[k + 1] != '=')
		return false;
	w->text_len = k - w->text_off;
	w->end = k + 2;
	return w->cs_len > 0;
}

static void decode_eword(const char *s, const struct eword *w, struct buf *raw)
{
	const char *t = s + w->text_off;
	size_t n = w->text_len;

	if (w->enc == 'B') {
		(void)mime_decode_base64(t, n, SIZE_MAX, raw);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char c = t[i];
		if (c == '_') {
			c = ' ';
		} else if (c == '=' && i + 2 < n) {
			int hi = hex_value((unsigned char)t[i + 1]);
			int lo = hex_value((unsigned char)t[i + 2]);
			if (hi >= 0 && lo >= 0) {
				c = (char)(hi * 16 + lo);
				i += 2;
			}
		}
		(void)buf_putc(raw, c);
	}
}

int mime_decode_2047(const char *s, size_t len, struct buf *out)
{
	struct buf raw = BUF_INIT; /* decoded octets of a run of words */
	size_t run_cs_off = 0, run_cs_len = 0;
	bool in_run = false;
	int r = 0;
	size_t i = 0;

	if (s == NULL || out == NULL)
		return -1;
	buf_init(&raw, MIME_MAX_HEADER_LINE);
	while (i < len && r >= 0) {
		struct eword w;
		if (parse_eword(s, len, i, &w)) {
			bool same = in_run && w.cs_len == run_cs_len &&
				    strncasecmp(s + w.cs_off, s + run_cs_off, w.cs_len) == 0;
			if (in_run && !same) {
				r = convert_utf8(s + run_cs_off, run_cs_len, raw.data, raw.len,
						 SIZE_MAX, out);
				buf_reset(&raw);
			}
			/* a word in a charset iconv does not know stays as it is */
			char name[48];
			bool known = charset_is_utf8(s + w.cs_off, w.cs_len);
			if (!known && charset_ok(s + w.cs_off, w.cs_len)) {
				memcpy(name, s + w.cs_off, w.cs_len);
				name[w.cs_len] = '\0';
				iconv_t cd = iconv_open("UTF-8", name);
				if (cd != (iconv_t)-1) {
					known = true;
					iconv_close(cd);
				}
			}
			if (!known) {
				in_run = false;
				if (buf_append(out, s + i, w.end - i) < 0)
					r = -1;
				i = w.end;
				continue;
			}
			decode_eword(s, &w, &raw);
			run_cs_off = w.cs_off;
			run_cs_len = w.cs_len;
			in_run = true;
			i = w.end;
			/* blanks between two encoded words are dropped (6.2) */
			size_t k = i;
			while (k < len &&
			       (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n'))
				k++;
			struct eword w2;
			if (k > i && parse_eword(s, len, k, &w2))
				i = k;
			continue;
		}
		if (in_run) {
			if (r >= 0)
				r = convert_utf8(s + run_cs_off, run_cs_len, raw.data, raw.len,
						 SIZE_MAX, out);
			buf_reset(&raw);
			in_run = false;
		}
		/* copy plain text up to the next possible encoded word */
		size_t k = i + 1;
		while (k < len && s[k] != '=')
			k++;
		if (r >= 0 && buf_append(out, s + i, k - i) < 0)
			r = -1;
		i = k;
	}
	if (in_run && r >= 0)
		r = convert_utf8(s + run_cs_off, run_cs_len, raw.data, raw.len, SIZE_MAX, out);
	buf_free(&raw);
	return r < 0 ? -1 : 0;
}

/* --- BINARY ---------------------------------------------------------------- */

enum cte { CTE_IDENTITY, CTE_BASE64, CTE_QP, CTE_UNKNOWN };

static enum cte part_cte(const struct mime_tree *t, const struct mime_part *p)
{
	struct buf v = BUF_INIT;
	enum cte e = CTE_IDENTITY;

	if (mime_part_field(t, p, MIME_FLD_CTE, &v)) {
		const char *s = v.data != NULL ? v.data : "";
		size_t i = 0;
		mime_skip_cfws(s, v.len, &i, NULL);
		size_t off = i;
		size_t len = mime_read_token(s, v.len, &i);
		mime_skip_cfws(s, v.len, &i, NULL);
		/* a broken value is shown as "7bit" by BODYSTRUCTURE: same here */
		if (len > 0 && i == v.len) {
			if (strutil_eq_ci(s + off, len, "base64"))
				e = CTE_BASE64;
			else if (strutil_eq_ci(s + off, len, "quoted-printable"))
				e = CTE_QP;
			else if (!strutil_eq_ci(s + off, len, "7bit") &&
				 !strutil_eq_ci(s + off, len, "8bit") &&
				 !strutil_eq_ci(s + off, len, "binary"))
				e = CTE_UNKNOWN;
		}
	}
	buf_free(&v);
	return e;
}

static int decode_part(const struct mime_tree *t, const struct mime_part *p, size_t max,
		       struct buf *out)
{
	const char *b = t->msg + p->body_off;
	size_t n = p->body_len;

	if (!p->opaque && (p->kind == MIME_KIND_MULTIPART || p->kind == MIME_KIND_MESSAGE))
		return buf_append(out, b, n < max ? n : max); /* RFC 2046 5: 7bit/8bit/binary */
	switch (part_cte(t, p)) {
	case CTE_BASE64:
		return mime_decode_base64(b, n, max, out);
	case CTE_QP:
		return mime_decode_qp(b, n, max, out);
	case CTE_UNKNOWN:
		return -2;
	case CTE_IDENTITY:
		break;
	}
	return buf_append(out, b, n < max ? n : max);
}

/* RFC 9051 6.4.5 (BINARY): text is sent with CRLF line ends whatever the
 * stored form; turns every bare LF of out[from..] into CRLF.  0 / -1. */
static int crlf_text(struct buf *out, size_t from)
{
	size_t bare = 0;
	for (size_t i = from; i < out->len; i++)
		if (out->data[i] == '\n' && (i == from || out->data[i - 1] != '\r'))
			bare++;
	if (bare == 0)
		return 0;
	if (buf_reserve(out, bare) < 0)
		return -1;
	/* expand in place from the end */
	size_t src = out->len, dst = out->len + bare;
	out->len = dst;
	out->data[dst] = '\0';
	while (src > from) {
		char c = out->data[--src];
		out->data[--dst] = c;
		if (c == '\n' && (src == from || out->data[src - 1] != '\r'))
			out->data[--dst] = '\r';
	}
	return 0;
}

int mime_binary(const struct mime_tree *t, const unsigned *path, size_t n, struct buf *out)
{
	if (t == NULL || out == NULL || (n > 0 && path == NULL))
		return -1;
	if (n == 0)
		return buf_append(out, t->msg, t->len) < 0 ? -1 : 1;
	for (size_t i = 0; i < n; i++)
		if (path[i] == 0)
			return -1;
	const struct mime_part *p = mime_part_find(t, path, n);
	if (p == NULL)
		return 0;
	size_t from = out->len;
	int r = decode_part(t, p, SIZE_MAX, out);
	if (r == 0 && (p->kind == MIME_KIND_TEXT || p->opaque))
		r = crlf_text(out, from);
	return r < 0 ? r : 1;
}

/* --- SEARCH ---------------------------------------------------------------- */

int mime_search_header(const struct mime_tree *t, const char *name, struct buf *out)
{
	struct mime_hdr_iter it;
	struct mime_hdr_field f;
	struct buf v = BUF_INIT;
	int r = 0;

	if (t == NULL || name == NULL || out == NULL)
		return -1;
	mime_hdr_iter_init(&it, t->msg, t->root->start, t->root->start + t->root->hdr_len);
	while (r == 0 && mime_hdr_next(&it, &f)) {
		const char *nm = t->msg + f.name_off;
		if (!f.is_field)
			continue;
		if (name[0] != '\0' && !strutil_eq_ci(nm, f.name_len, name))
			continue;
		if (name[0] == '\0' &&
		    (buf_append(out, nm, f.name_len) < 0 || buf_puts(out, ": ") < 0)) {
			r = -1;
			break;
		}
		buf_reset(&v);
		(void)mime_value_unfold(t->msg + f.value_off, f.value_len, &v);
		if (mime_decode_2047(v.data != NULL ? v.data : "", v.len, out) < 0 ||
		    buf_putc(out, '\n') < 0)
			r = -1;
	}
	buf_free(&v);
	return r;
}

struct search_ctx {
	const struct mime_tree *t;
	size_t room;
	struct buf *out;
	struct buf dec, tmp;
};

static int search_part(struct search_ctx *c, const struct mime_part *p)
{
	if (c->room == 0)
		return 0;
	if (!p->opaque && (p->kind == MIME_KIND_MULTIPART || p->kind == MIME_KIND_MESSAGE)) {
		for (const struct mime_part *k = p->children; k != NULL; k = k->next)
			if (search_part(c, k) < 0)
				return -1;
		return 0;
	}
	if (p->kind != MIME_KIND_TEXT && !p->opaque)
		return 0;
	buf_reset(&c->dec);
	int r = decode_part(c->t, p, c->room, &c->dec);
	if (r == -2) {
		buf_reset(&c->dec); /* unknown encoding: searched as it is */
		r = buf_append(&c->dec, c->t->msg + p->body_off,
			       p->body_len < c->room ? p->body_len : c->room);
	}
	if (r < 0)
		return -1;
	/* the charset parameter, if any */
	const char *cs = "us-ascii";
	size_t csl = 8;
	struct mime_params params = {0};
	size_t to, tl, so, sl;
	buf_reset(&c->tmp);
	if (p->type_valid && !p->opaque && mime_part_field(c->t, p, MIME_FLD_TYPE, &c->tmp) &&
	    mime_ctype_parse(c->tmp.data != NULL ? c->tmp.data : "", c->tmp.len, &to, &tl, &so, &sl,
			     &params)) {
		const struct mime_param *pc = mime_params_find(&params, "charset");
		if (pc != NULL) {
			cs = pc->value;
			csl = pc->value_len;
		}
	}
	size_t before = c->out->len;
	r = convert_utf8(cs, csl, c->dec.data != NULL ? c->dec.data : "", c->dec.len, c->room,
			 c->out);
	if (r == 1) /* unknown charset: as it is */
		r = buf_append(c->out, c->dec.data != NULL ? c->dec.data : "",
			       c->dec.len < c->room ? c->dec.len : c->room);
	mime_params_free(&params);
	if (r < 0)
		return -1;
	size_t used = c->out->len - before;
	c->room -= used < c->room ? used : c->room;
	if (c->room > 0) {
		if (buf_putc(c->out, '\n') < 0)
			return -1;
		c->room--;
	}
	return 0;
}

int mime_search_body(const struct mime_tree *t, size_t max_bytes, struct buf *out)
{
	struct search_ctx c = {.t = t, .room = max_bytes, .out = out};

	if (t == NULL || out == NULL)
		return -1;
	buf_init(&c.dec, 0);
	buf_init(&c.tmp, MIME_MAX_HEADER_LINE + 1);
	int r = search_part(&c, t->root);
	buf_free(&c.dec);
	buf_free(&c.tmp);
	return r;
}

/* --- Sieve body test (RFC 5173) ------------------------------------------ */

struct body_ctx {
	const struct mime_tree *t;
	size_t room;
	mime_body_fn fn;
	void *ctx;
	struct buf dec, text, tmp;
};

/* The content type of p, lowercase "type/subtype", into out (the RFC
 * 2045 5.2 defaults for a missing or broken one); the charset parameter's
 * value into cs ("us-ascii" when absent). */
static void body_ctype(struct body_ctx *c, const struct mime_part *p, struct buf *out,
		       struct buf *cs)
{
	struct mime_params params = {0};
	size_t to, tl, so, sl;
	buf_reset(&c->tmp);
	buf_puts(cs, "us-ascii");
	if (!p->opaque && p->type_valid && mime_part_field(c->t, p, MIME_FLD_TYPE, &c->tmp) &&
	    mime_ctype_parse(c->tmp.data != NULL ? c->tmp.data : "", c->tmp.len, &to, &tl, &so, &sl,
			     &params)) {
		buf_append(out, c->tmp.data + to, tl);
		buf_putc(out, '/');
		buf_append(out, c->tmp.data + so, sl);
		for (size_t i = 0; i < out->len; i++)
			if (out->data[i] >= 'A' && out->data[i] <= 'Z')
				out->data[i] = (char)(out->data[i] - 'A' + 'a');
		const struct mime_param *pc = mime_params_find(&params, "charset");
		if (pc != NULL) {
			buf_reset(cs);
			buf_append(cs, pc->value, pc->value_len);
		}
	} else {
		buf_puts(out, p->in_digest && !p->opaque ? "message/rfc822" : "text/plain");
	}
	mime_params_free(&params);
}

static int body_emit(struct body_ctx *c, const char *ctype, const char *s, size_t n)
{
	if (n > c->room)
		n = c->room;
	c->room -= n;
	return c->fn(c->ctx, ctype, s, n);
}

/* Offset of the first line at or after from (a line start) that starts
 * with "--" boundary (and, if close, is followed by "--"), or SIZE_MAX. */
static size_t body_delim(const char *m, size_t from, size_t end, const char *bnd, bool close)
{
	size_t bl = strlen(bnd);
	for (size_t i = from; i < end;) {
		if (end - i >= bl + 2 && m[i] == '-' && m[i + 1] == '-' &&
		    !memcmp(m + i + 2, bnd, bl) &&
		    (!close || (end - i >= bl + 4 && m[i + bl + 2] == '-' && m[i + bl + 3] == '-')))
			return i;
		const char *nl = memchr(m + i, '\n', end - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - m) + 1;
	}
	return SIZE_MAX;
}

static int body_part(struct body_ctx *c, const struct mime_part *p)
{
	if (c->room == 0)
		return 0;
	struct buf ctype = BUF_INIT, cs = BUF_INIT;
	body_ctype(c, p, &ctype, &cs);
	const char *m = c->t->msg;
	size_t b = p->body_off, e = p->body_off + p->body_len;
	int r = 0;
	if (!p->opaque && p->kind == MIME_KIND_MULTIPART) {
		/* the prologue and the epilogue; the parts between go on their own */
		size_t d = p->boundary != NULL ? body_delim(m, b, e, p->boundary, false) : SIZE_MAX;
		size_t pe = d == SIZE_MAX ? e : d;
		if (pe > b && m[pe - 1] == '\n')
			pe--;
		if (pe > b && m[pe - 1] == '\r')
			pe--;
		r = body_emit(c, buf_cstr(&ctype), m + b, pe - b);
		for (const struct mime_part *k = p->children; r == 0 && k != NULL; k = k->next)
			r = body_part(c, k);
		size_t from =
		    p->last_child != NULL ? p->last_child->body_off + p->last_child->body_len : b;
		size_t close =
		    p->boundary != NULL ? body_delim(m, from, e, p->boundary, true) : SIZE_MAX;
		if (r == 0 && close != SIZE_MAX) {
			const char *nl = memchr(m + close, '\n', e - close);
			size_t ep = nl != NULL ? (size_t)(nl - m) + 1 : e;
			r = body_emit(c, buf_cstr(&ctype), m + ep, e - ep);
		}
	} else if (!p->opaque && p->kind == MIME_KIND_MESSAGE) {
		/* the encapsulated message's header, then its parts */
		const struct mime_part *k = p->children;
		if (k != NULL) {
			r = body_emit(c, buf_cstr(&ctype), m + k->start, k->hdr_len);
			if (r == 0)
				r = body_part(c, k);
		}
	} else {
		buf_reset(&c->dec);
		int d = decode_part(c->t, p, c->room, &c->dec);
		if (d == -2) { /* unknown encoding: as it is */
			buf_reset(&c->dec);
			d = buf_append(&c->dec, m + b,
				       p->body_len < c->room ? p->body_len : c->room);
		}
		const char *s = c->dec.data != NULL ? c->dec.data : "";
		size_t n = c->dec.len;
		buf_reset(&c->text);
		if (d == 0 && !strncmp(buf_cstr(&ctype), "text/", 5)) {
			int u = convert_utf8(buf_cstr(&cs), cs.len, s, n, c->room, &c->text);
			if (u == 0) {
				s = c->text.data != NULL ? c->text.data : "";
				n = c->text.len;
			}
		}
		r = d < 0 ? 0 : body_emit(c, buf_cstr(&ctype), s, n);
	}
	buf_free(&ctype);
	buf_free(&cs);
	return r;
}

int mime_body_walk(const struct mime_tree *t, size_t max_bytes, mime_body_fn fn, void *ctx)
{
	if (t == NULL || fn == NULL)
		return -1;
	struct body_ctx c = {.t = t, .room = max_bytes, .fn = fn, .ctx = ctx};
	buf_init(&c.dec, 0);
	buf_init(&c.text, 0);
	buf_init(&c.tmp, MIME_MAX_HEADER_LINE + 1);
	int r = body_part(&c, t->root);
	buf_free(&c.dec);
	buf_free(&c.text);
	buf_free(&c.tmp);
	return r;
}

/* --- attachment file names (SEARCH BODY/TEXT) ---------------------------- */

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Appends the value of parameter pm decoded to UTF-8: an RFC 2231
 * extended value (name ends in '*': charset'language'%XX) is
 * percent-decoded and converted from its charset (an unknown one passed as
 * it is); a plain one is RFC 2047-decoded (clients write encoded words
 * there too).  0 / -1. */
static int name_value(const struct mime_param *pm, struct buf *dec, struct buf *out)
{
	const char *v = pm->value;
	size_t n = pm->value_len;
	if (pm->name_len == 0 || pm->name[pm->name_len - 1] != '*')
		return mime_decode_2047(v, n, out);
	const char *q1 = memchr(v, '\'', n);
	const char *q2 = q1 != NULL ? memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - v)) : NULL;
	if (q2 == NULL)
		return buf_append(out, v, n);
	buf_reset(dec);
	for (const char *p = q2 + 1; p < v + n; p++) {
		int hi, lo;
		if (*p == '%' && v + n - p >= 3 && (hi = hexval(p[1])) >= 0 &&
		    (lo = hexval(p[2])) >= 0) {
			if (buf_putc(dec, (char)(hi * 16 + lo)) < 0)
				return -1;
			p += 2;
		} else if (buf_putc(dec, *p) < 0) {
			return -1;
		}
	}
	const char *d = dec->data != NULL ? dec->data : "";
	int r = convert_utf8(v, (size_t)(q1 - v), d, dec->len, SIZE_MAX, out);
	return r == 1 ? buf_append(out, d, dec->len) : r;
}

/* The first of the parameters named in names[] that p has. */
static const struct mime_param *find_any(const struct mime_params *p, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		const struct mime_param *pm = mime_params_find(p, names[i]);
		if (pm != NULL)
			return pm;
	}
	return NULL;
}

/* Appends p's file name and "\n": Content-Disposition's filename, else
 * Content-Type's name; nothing if it has neither.  0 / -1. */
static int part_name(const struct mime_tree *t, const struct mime_part *p, struct buf *tmp,
		     struct buf *dec, struct buf *out)
{
	static const char *const disp_names[] = {"filename*", "filename", NULL};
	static const char *const type_names[] = {"name*", "name", NULL};
	struct mime_params params = {0};
	const struct mime_param *pm = NULL;
	buf_reset(tmp);
	if (mime_part_field(t, p, MIME_FLD_DISP, tmp)) {
		const char *s = tmp->data != NULL ? tmp->data : "";
		size_t i = 0;
		mime_skip_cfws(s, tmp->len, &i, NULL);
		(void)mime_read_token(s, tmp->len, &i);
		mime_params_parse(s, tmp->len, &i, &params);
		pm = find_any(&params, disp_names);
	}
	size_t to, tl, so, sl;
	if (pm == NULL) {
		mime_params_free(&params);
		buf_reset(tmp);
		if (p->type_valid && mime_part_field(t, p, MIME_FLD_TYPE, tmp) &&
		    mime_ctype_parse(tmp->data != NULL ? tmp->data : "", tmp->len, &to, &tl, &so, &sl,
				     &params))
			pm = find_any(&params, type_names);
	}
	int r = 0;
	if (pm != NULL && pm->value_len > 0) {
		r = name_value(pm, dec, out);
		if (r == 0)
			r = buf_putc(out, '\n');
	}
	mime_params_free(&params);
	return r;
}

/* File names appended per message at most (then the rest are left out). */
#define SEARCH_NAMES_MAX ((size_t)64 * 1024)

static int names_part(const struct mime_tree *t, const struct mime_part *p, struct buf *tmp,
		      struct buf *dec, struct buf *out, size_t start)
{
	if (out->len - start >= SEARCH_NAMES_MAX)
		return 0;
	if (!p->opaque && (p->kind == MIME_KIND_MULTIPART || p->kind == MIME_KIND_MESSAGE)) {
		for (const struct mime_part *k = p->children; k != NULL; k = k->next)
			if (names_part(t, k, tmp, dec, out, start) < 0)
				return -1;
		return 0;
	}
	return part_name(t, p, tmp, dec, out);
}

int mime_search_text(const struct mime_tree *t, struct buf *out)
{
	if (t == NULL || out == NULL || mime_search_body(t, MIME_SEARCH_BODY_MAX, out) < 0)
		return -1;
	struct buf tmp, dec;
	buf_init(&tmp, MIME_MAX_HEADER_LINE + 1);
	buf_init(&dec, 0);
	int r = names_part(t, t->root, &tmp, &dec, out, out->len);
	buf_free(&tmp);
	buf_free(&dec);
	return r;
}

/* --- JMAP body parts (mime-part.h) ----------------------------------------- */

int mime_part_name(const struct mime_tree *t, const struct mime_part *p, struct buf *out)
{
	struct buf tmp, dec;
	buf_init(&tmp, MIME_MAX_HEADER_LINE + 1);
	buf_init(&dec, 0);
	size_t from = out->len;
	int r = part_name(t, p, &tmp, &dec, out);
	buf_free(&tmp);
	buf_free(&dec);
	if (r < 0)
		return -1;
	if (out->len == from)
		return 0;
	out->len--; /* part_name's "\n" */
	out->data[out->len] = '\0';
	return 1;
}

int mime_part_content(const struct mime_tree *t, const struct mime_part *p, size_t max,
		      struct buf *out)
{
	int r = decode_part(t, p, max, out);
	if (r == -2) {
		size_t n = p->body_len < max ? p->body_len : max;
		return buf_append(out, t->msg + p->body_off, n) < 0 ? -1 : -2;
	}
	return r;
}

/* Length of a valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs,
 * no surrogates, at most U+10FFFF), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (c == 0xe0 && s[1] < 0xa0)
		return 0;
	if (c == 0xed && s[1] > 0x9f)
		return 0;
	if (c == 0xf0 && s[1] < 0x90)
		return 0;
	if (c == 0xf4 && s[1] > 0x8f)
		return 0;
	return len;
}

/* Appends in[0..n) as valid UTF-8 without NUL: each octet of an invalid
 * sequence becomes U+FFFD (and sets *problem).  0 / -1. */
static int utf8_clean(const char *in, size_t n, struct buf *out, bool *problem)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, run = 0;
	while (i < n) {
		size_t l = s[i] == 0 ? 0 : utf8_seq(s + i, n - i);
		if (l > 0) {
			run += l;
			i += l;
			continue;
		}
		if (run > 0 && buf_append(out, s + i - run, run) < 0)
			return -1;
		run = 0;
		if (s[i] != 0) {
			*problem = true;
			if (buf_append(out, "\xef\xbf\xbd", 3) < 0)
				return -1;
		}
		i++;
	}
	return run > 0 ? buf_append(out, s + n - run, run) : 0;
}

int mime_part_to_utf8(const char *cs, size_t csl, const char *in, size_t n, struct buf *out,
		      bool *problem)
{
	if (charset_is_utf8(cs, csl))
		return utf8_clean(in, n, out, problem);
	char name[48];
	iconv_t cd = (iconv_t)-1;
	if (charset_ok(cs, csl)) {
		memcpy(name, cs, csl);
		name[csl] = '\0';
		cd = iconv_open("UTF-8", name);
	}
	if (cd == (iconv_t)-1) {
		*problem = true;
		return utf8_clean(in, n, out, problem);
	}
	char chunk[4096];
	char *ip = (char *)in;
	size_t il = n;
	int r = 0;
	while (il > 0 && r == 0) {
		char *op = chunk;
		size_t ol = sizeof chunk;
		size_t rc = iconv(cd, &ip, &il, &op, &ol);
		int e = errno;
		r = utf8_clean(chunk, sizeof chunk - ol, out, problem);
		if (r < 0 || rc != (size_t)-1 || e == E2BIG)
			continue;
		/* EILSEQ, EINVAL: mark and skip one octet */
		*problem = true;
		r = buf_append(out, "\xef\xbf\xbd", 3);
		ip++;
		il--;
		(void)iconv(cd, NULL, NULL, NULL, NULL);
	}
	iconv_close(cd);
	return r;
}
