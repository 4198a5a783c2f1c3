/*
 * mime-build.c - see mime-build.h.
 */
#include "mime-build.h"

#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "fsutil.h"

#define FOLD_AT 78

void mime_hdr_start(struct mime_hdr *h, struct buf *out, const char *name)
{
	h->out = out;
	h->first = true;
	(void)buf_puts(out, name);
	(void)buf_putc(out, ':');
	h->col = strlen(name) + 1;
}

void mime_hdr_word(struct mime_hdr *h, const char *sep, const char *w, size_t n)
{
	/* the first word stays on the field's line (a fold there would
	 * make the value start with a blank) */
	bool first = h->first;
	if (first) {
		sep = " ";
		h->first = false;
	}
	size_t sl = strlen(sep);
	if (!first && sl > 0 && n > 0 && h->col + sl + n > FOLD_AT) {
		(void)buf_puts(h->out, "\r\n");
		h->col = 0;
	}
	(void)buf_puts(h->out, sep);
	(void)buf_append(h->out, w, n);
	h->col += sl + n;
}

bool mime_build_is_plain(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			if (*s != '\t')
				return false;
	return true;
}

/* s as encoded words of whole UTF-8 characters (at most 45 octets each:
 * 60 characters of base64, 72 with the "=?UTF-8?B?" and "?="). */
static void encoded_words(struct mime_hdr *h, const char *s, const char *sep)
{
	size_t n = strlen(s), i = 0;
	while (i < n) {
		size_t take = n - i < 45 ? n - i : 45;
		while (i + take < n && take > 1 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		char enc[64], word[80];
		long e = base64_encode(s + i, take, enc, sizeof enc);
		if (e < 0)
			return;
		int wl = snprintf(word, sizeof word, "=?UTF-8?B?%.*s?=", (int)e, enc);
		mime_hdr_word(h, i == 0 ? sep : " ", word, (size_t)wl);
		i += take;
	}
}

/* True if s has a run of more than max octets without a space (a word
 * that no fold could keep under the 998 octets of a line). */
static bool long_word(const char *s, size_t max)
{
	size_t run = 0;
	for (; *s; s++)
		if ((run = *s == ' ' ? 0 : run + 1) > max)
			return true;
	return false;
}

void mime_hdr_text(struct mime_hdr *h, const char *s)
{
	if (!mime_build_is_plain(s) || long_word(s, 900)) {
		encoded_words(h, s, " ");
		return;
	}
	/* a word at each space (two spaces: an empty word, kept) */
	const char *p = s;
	for (;;) {
		const char *sp = strchr(p, ' ');
		size_t l = sp ? (size_t)(sp - p) : strlen(p);
		mime_hdr_word(h, " ", p, l);
		if (sp == NULL)
			break;
		p = sp + 1;
	}
}

static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

void mime_hdr_phrase(struct mime_hdr *h, const char *s)
{
	if (!mime_build_is_plain(s) || long_word(s, 400)) {
		encoded_words(h, s, " ");
		return;
	}
	bool atoms = *s != '\0' && *s != ' ';
	for (const char *p = s; *p && atoms; p++)
		atoms = is_atext((unsigned char)*p) || (*p == ' ' && p[1] != ' ' && p[1] != '\0');
	if (atoms) {
		mime_hdr_text(h, s);
		return;
	}
	struct buf q = BUF_INIT;
	(void)buf_putc(&q, '"');
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			(void)buf_putc(&q, '\\');
		(void)buf_putc(&q, *p);
	}
	(void)buf_putc(&q, '"');
	mime_hdr_word(h, " ", q.data, q.len);
	buf_free(&q);
}

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?=", *s) != NULL)
			return false;
	return true;
}

void mime_hdr_param(struct mime_hdr *h, const char *name, const char *value)
{
	struct buf w = BUF_INIT;
	if (is_token(value)) {
		(void)buf_printf(&w, "%s=%s", name, value);
	} else if (mime_build_is_plain(value)) {
		(void)buf_printf(&w, "%s=\"", name);
		for (const char *p = value; *p; p++) {
			if (*p == '"' || *p == '\\')
				(void)buf_putc(&w, '\\');
			(void)buf_putc(&w, *p);
		}
		(void)buf_putc(&w, '"');
	} else {
		/* RFC 2231 4: charset'language'percent-encoded octets */
		static const char hex[] = "0123456789ABCDEF";
		(void)buf_printf(&w, "%s*=utf-8''", name);
		for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
			if (*p < 0x80 && (is_atext(*p) || *p == '.') && *p != '%' && *p != '\'' &&
			    *p != '*') {
				(void)buf_putc(&w, (char)*p);
			} else {
				char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
				(void)buf_append(&w, e, 3);
			}
		}
	}
	mime_hdr_word(h, "", ";", 1);
	mime_hdr_word(h, " ", w.data, w.len);
	buf_free(&w);
}

void mime_hdr_end(struct mime_hdr *h)
{
	(void)buf_puts(h->out, "\r\n");
}

/* The next line of s[*i..n): its length (without the line end); *i moves
 * past the line end (CRLF, LF or CR).  *eol tells whether there was one. */
static size_t next_line(const char *s, size_t n, size_t *i, bool *eol)
{
	size_t start = *i, e = start;
	while (e < n && s[e] != '\r' && s[e] != '\n')
		e++;
	*eol = e < n;
	*i = e;
	if (e < n && s[e] == '\r')
		(*i)++;
	if (*i < n && s[*i] == '\n' && (*i == e || s[e] == '\r'))
		(*i)++;
	return e - start;
}

const char *mime_build_text(struct buf *out, const char *s, size_t n)
{
	bool plain = true;
	for (size_t i = 0; i < n && plain;) {
		bool eol;
		size_t st = i, l = next_line(s, n, &i, &eol);
		plain = l <= 998;
		for (size_t k = st; k < st + l && plain; k++)
			plain = (unsigned char)s[k] < 0x80 && s[k] != '\0';
	}
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n;) {
		bool eol;
		size_t st = i, l = next_line(s, n, &i, &eol);
		if (plain) {
			(void)buf_append(out, s + st, l);
		} else {
			size_t col = 0;
			for (size_t k = st; k < st + l; k++) {
				unsigned char c = (unsigned char)s[k];
				bool last = k + 1 == st + l;
				/* '=' always, '-' and '.' at a line start (no "--b" or
				 * lone "." line after a soft break), blanks at the end */
				bool enc = c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
					   ((c == ' ' || c == '\t') && last) ||
					   ((c == '-' || c == '.') && col == 0);
				size_t w = enc ? 3 : 1;
				if (col + w > (last ? 76 : 75)) {
					(void)buf_puts(out, "=\r\n");
					col = 0;
					enc = enc || c == '-' || c == '.';
					w = enc ? 3 : 1;
				}
				if (enc) {
					char e[3] = {'=', hex[c >> 4], hex[c & 15]};
					(void)buf_append(out, e, 3);
				} else {
					(void)buf_putc(out, (char)c);
				}
				col += w;
			}
		}
		if (eol)
			(void)buf_puts(out, "\r\n");
	}
	return plain ? "7bit" : "quoted-printable";
}

void mime_build_base64(struct buf *out, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i += 57) {
		size_t take = n - i < 57 ? n - i : 57;
		char enc[80];
		long e = base64_encode(b + i, take, enc, sizeof enc);
		if (e < 0)
			return;
		(void)buf_append(out, enc, (size_t)e);
		(void)buf_puts(out, "\r\n");
	}
}

void mime_build_boundary(char out[40])
{
	char id[25];
	fsutil_unique_id(id);
	snprintf(out, 40, "=_tern_%s", id);
}
