/*
 * textmatch.c - see textmatch.h.
 */
#include "textmatch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mime.h"
#include "sortkey.h"
#include "strutil.h"
#include "xalloc.h"

char *textmatch_needle(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	(void)sortkey_fold(s, n, &b);
	if (memchr(b.data ? b.data : "", '\0', b.len)) /* NUL ends the needle */
		b.len = strlen(b.data);
	return buf_steal(&b, NULL);
}

bool textmatch_contains_folded(const char *hay, size_t hn, const char *needle)
{
	size_t nn = strlen(needle);
	return nn == 0 || (hn >= nn && memmem(hay, hn, needle, nn) != NULL);
}

bool textmatch_contains(const char *hay, size_t hn, const char *needle)
{
	if (needle[0] == '\0')
		return true;
	struct buf f = BUF_INIT;
	(void)sortkey_fold(hay, hn, &f);
	bool r = f.len > 0 && textmatch_contains_folded(f.data, f.len, needle);
	buf_free(&f);
	return r;
}

bool textmatch_addr_specs_contain(const char *v, size_t n, const char *needle)
{
	struct buf specs = BUF_INIT;
	while (n > 0) {
		const char *nl = memchr(v, '\n', n);
		size_t len = nl ? (size_t)(nl - v) : n;
		if (mime_addr_specs(v, len, &specs) < 0)
			break;
		v += len;
		n -= len;
		if (n > 0) {
			v++;
			n--;
		}
	}
	bool r = specs.len > 0 && textmatch_contains(specs.data, specs.len, needle);
	buf_free(&specs);
	return r;
}

int textmatch_header_fields(const char *hdr, size_t n, const char *name, struct buf *out)
{
	size_t i = 0;
	while (i < n) {
		const char *p = hdr + i;
		const char *nl = memchr(p, '\n', n - i);
		const char *colon = nl ? memchr(p, ':', (size_t)(nl - p)) : NULL;
		if (colon == NULL || colon == p || colon + 1 >= nl || colon[1] != ' ')
			return -1;
		if (strutil_eq_ci(p, (size_t)(colon - p), name)) {
			if (buf_append(out, colon + 2, (size_t)(nl - colon - 2)) < 0 ||
			    buf_putc(out, '\n') < 0)
				return -1;
		}
		i = (size_t)(nl - hdr) + 1;
	}
	return 0;
}

void textmatch_header_text(const struct mime_tree *t, struct buf *out)
{
	buf_reset(out);
	struct buf want = BUF_INIT, got = BUF_INIT;
	bool ok = mime_search_header(t, "", out) == 0 && out->len <= TEXTMATCH_HDR_MAX;
	size_t i = 0, fields = 0;
	while (ok && i < out->len) {
		const char *p = out->data + i;
		const char *nl = memchr(p, '\n', out->len - i);
		const char *colon = nl ? memchr(p, ':', (size_t)(nl - p)) : NULL;
		if (++fields > TEXTMATCH_HDR_FIELDS || colon == NULL || colon == p ||
		    memchr(p, '\0', (size_t)(colon - p)) != NULL) {
			ok = false;
			break;
		}
		char *nm = xmemdup0(p, (size_t)(colon - p));
		buf_reset(&want);
		buf_reset(&got);
		ok = mime_search_header(t, nm, &want) == 0 &&
		     textmatch_header_fields(out->data, out->len, nm, &got) == 0 &&
		     want.len == got.len &&
		     (want.len == 0 || memcmp(want.data, got.data, want.len) == 0);
		free(nm);
		i = (size_t)(nl - out->data) + 1;
	}
	if (!ok) {
		buf_reset(out);
		buf_puts(out, TEXTMATCH_HDR_NONE);
	}
	buf_free(&want);
	buf_free(&got);
}

/* Appends code point c as UTF-8 (U+FFFD for what is not a scalar). */
static int put_utf8(struct buf *out, unsigned long c)
{
	char b[4];
	size_t n;
	if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		c = 0xFFFD;
	if (c < 0x80) {
		b[0] = (char)c;
		n = 1;
	} else if (c < 0x800) {
		b[0] = (char)(0xC0 | (c >> 6));
		b[1] = (char)(0x80 | (c & 0x3F));
		n = 2;
	} else if (c < 0x10000) {
		b[0] = (char)(0xE0 | (c >> 12));
		b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		b[2] = (char)(0x80 | (c & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | (c >> 18));
		b[1] = (char)(0x80 | ((c >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((c >> 6) & 0x3F));
		b[3] = (char)(0x80 | (c & 0x3F));
		n = 4;
	}
	return buf_append(out, b, n);
}

/* A character reference at p[0..n) (p[0] == '&'): its text appended and
 * its length, or 0 when it is none we know. */
static size_t html_ref(const char *p, size_t n, struct buf *out)
{
	static const struct {
		const char *name;
		const char *text;
	} names[] = {{"&amp;", "&"},   {"&lt;", "<"},   {"&gt;", ">"},
		     {"&quot;", "\""}, {"&apos;", "'"}, {"&nbsp;", " "}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		size_t l = strlen(names[i].name);
		if (n >= l && strncasecmp(p, names[i].name, l) == 0)
			return buf_puts(out, names[i].text) < 0 ? 0 : l;
	}
	if (n < 4 || p[1] != '#')
		return 0;
	bool hex = p[2] == 'x' || p[2] == 'X';
	size_t i = hex ? 3 : 2;
	unsigned long c = 0;
	size_t digits = 0;
	while (i < n && digits < 8) {
		char d = p[i];
		int v = d >= '0' && d <= '9'          ? d - '0'
			: hex && d >= 'a' && d <= 'f' ? d - 'a' + 10
			: hex && d >= 'A' && d <= 'F' ? d - 'A' + 10
						      : -1;
		if (v < 0)
			break;
		c = c * (hex ? 16 : 10) + (unsigned long)v;
		digits++;
		i++;
	}
	if (digits == 0 || i >= n || p[i] != ';')
		return 0;
	return put_utf8(out, c) < 0 ? 0 : i + 1;
}

/* The offset after the first case-insensitive s in p[i..n), else n. */
static size_t skip_past(const char *p, size_t n, size_t i, const char *s)
{
	size_t l = strlen(s);
	for (; i + l <= n; i++)
		if (strncasecmp(p + i, s, l) == 0)
			return i + l;
	return n;
}

int textmatch_html_text(const char *p, size_t n, struct buf *out)
{
	size_t i = 0;
	while (i < n) {
		char c = p[i];
		if (c == '<') {
			if (n - i >= 4 && memcmp(p + i, "<!--", 4) == 0) {
				i = skip_past(p, n, i + 4, "-->");
				continue;
			}
			bool script = n - i >= 7 && strncasecmp(p + i, "<script", 7) == 0;
			bool style = n - i >= 6 && strncasecmp(p + i, "<style", 6) == 0;
			i = skip_past(p, n, i + 1, ">");
			if (script)
				i = skip_past(p, n, i, "</script>");
			else if (style)
				i = skip_past(p, n, i, "</style>");
			if (buf_putc(out, ' ') < 0)
				return -1;
			continue;
		}
		if (c == '&') {
			size_t l = html_ref(p + i, n - i, out);
			if (l > 0) {
				i += l;
				continue;
			}
		}
		if (buf_putc(out, c) < 0)
			return -1;
		i++;
	}
	return 0;
}

/* The length of the UTF-8 character at p[0..n) (1 for a byte that does
 * not start a valid one). */
static size_t char_len(const char *p, size_t n)
{
	unsigned char c = (unsigned char)p[0];
	size_t l = c < 0x80             ? 1
		   : (c & 0xE0) == 0xC0 ? 2
		   : (c & 0xF0) == 0xE0 ? 3
		   : (c & 0xF8) == 0xF0 ? 4
					: 1;
	if (l > n)
		return 1;
	for (size_t i = 1; i < l; i++)
		if (((unsigned char)p[i] & 0xC0) != 0x80)
			return 1;
	return l;
}

static int cmp_span(const void *a, const void *b)
{
	const struct textmatch_span *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

void textmatch_find(const char *text, size_t n, char *const *needles, size_t n_needles,
		    struct textmatch_span **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	/* the folded text, each of its bytes mapped to the character of text
	 * it comes from */
	struct buf f = BUF_INIT;
	size_t *from = NULL, *to = NULL, cap = 0;
	for (size_t i = 0; i < n;) {
		size_t l = char_len(text + i, n - i);
		size_t before = f.len;
		if (sortkey_fold(text + i, l, &f) < 0)
			break;
		if (f.len > cap) {
			cap = f.len * 2;
			from = xreallocarray(from, cap, sizeof *from);
			to = xreallocarray(to, cap, sizeof *to);
		}
		for (size_t k = before; k < f.len; k++) {
			from[k] = i;
			to[k] = i + l;
		}
		i += l;
	}
	size_t cap_s = 0;
	for (size_t k = 0; k < n_needles && f.len > 0; k++) {
		size_t nl = strlen(needles[k]);
		if (nl == 0)
			continue;
		const char *h = f.data;
		while ((size_t)(h - f.data) + nl <= f.len) {
			const char *m = memmem(h, f.len - (size_t)(h - f.data), needles[k], nl);
			if (m == NULL)
				break;
			size_t s = (size_t)(m - f.data);
			if (*n_out == cap_s) {
				cap_s = cap_s ? cap_s * 2 : 8;
				*out = xreallocarray(*out, cap_s, sizeof **out);
			}
			(*out)[(*n_out)++] = (struct textmatch_span){from[s], to[s + nl - 1]};
			h = m + nl;
		}
	}
	buf_free(&f);
	free(from);
	free(to);
	if (*n_out == 0)
		return;
	qsort(*out, *n_out, sizeof **out, cmp_span);
	size_t k = 0;
	for (size_t i = 1; i < *n_out; i++) {
		if ((*out)[i].start <= (*out)[k].end) {
			if ((*out)[i].end > (*out)[k].end)
				(*out)[k].end = (*out)[i].end;
		} else {
			(*out)[++k] = (*out)[i];
		}
	}
	*n_out = k + 1;
}
