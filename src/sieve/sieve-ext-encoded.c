/*
 * sieve-ext-encoded.c - the "encoded-character" extension (RFC 5228
 * 2.4.2.4): once it is required, every string the script gives after
 * that point has its "${hex:41 42}" and "${unicode:263A}" sequences
 * replaced by the octets, or the UTF-8 of the characters, they name.
 * This happens after escapes and dot-unstuffing (the lexer's work) and
 * before variables are expanded at run time.  A sequence that is not
 * well-formed stays as written; a well-formed ${unicode:...} naming a
 * value outside 0..D7FF and E000..10FFFF is a compile error, and so is
 * a well-formed sequence giving a NUL octet: Tern's strings are C
 * strings, and cutting one short there would change what it means.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sieve-private.h"
#include "xalloc.h"

const struct sieve_ext sieve_ext_encoded = {"encoded-character", NULL, 0, 0, 0};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* blank = WSP / CRLF: its length at s[i], 0 if none. */
static size_t blank_at(const char *s, size_t n, size_t i)
{
	if (i < n && (s[i] == ' ' || s[i] == '\t'))
		return 1;
	if (i + 1 < n && s[i] == '\r' && s[i + 1] == '\n')
		return 2;
	return 0;
}

static size_t skip_blanks(const char *s, size_t n, size_t i)
{
	size_t b;
	while ((b = blank_at(s, n, i)) > 0)
		i += b;
	return i;
}

static size_t put_utf8(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xC0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xE0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		out[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	out[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/* One sequence at s[0..n) (s starts with "${"): 1 and *used bytes read,
 * *o advanced over the decoded bytes written to out; 0 not well-formed
 * (out untouched past *o); -1 a well-formed ${unicode:} out of range;
 * -2 a well-formed one giving a NUL. */
static int decode_one(const char *s, size_t n, char *out, size_t *o, size_t *used)
{
	size_t i = 2;
	bool unicode;
	if (n - i >= 4 && !strncasecmp(s + i, "hex:", 4)) {
		unicode = false;
		i += 4;
	} else if (n - i >= 8 && !strncasecmp(s + i, "unicode:", 8)) {
		unicode = true;
		i += 8;
	} else {
		return 0;
	}
	size_t w = *o;
	bool bad = false, any = false, nul = false;
	i = skip_blanks(s, n, i);
	for (;;) {
		size_t digits = 0;
		uint32_t v = 0;
		int h;
		while (i < n && (h = hexval(s[i])) >= 0) {
			if (v <= 0x10FFFF) /* saturates: above it is out of range anyway */
				v = v * 16 + (uint32_t)h;
			digits++;
			i++;
		}
		if (digits == 0)
			break;
		if (!unicode && digits > 2)
			return 0;
		any = true;
		nul = nul || v == 0;
		if (!unicode)
			out[w++] = (char)v;
		else if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
			bad = true;
		else
			w += put_utf8(out + w, v);
		size_t after = skip_blanks(s, n, i);
		if (after == i)
			break; /* the next character must be '}' */
		i = after;
	}
	if (!any || i >= n || s[i] != '}')
		return 0;
	if (bad)
		return -1;
	if (nul)
		return -2;
	*o = w;
	*used = i + 1;
	return 1;
}

int sieve_encoded_decode(char **s, size_t *len)
{
	const char *in = *s;
	size_t n = *len;
	if (memmem(in, n, "${", 2) == NULL)
		return 0;
	/* a sequence never decodes to more bytes than it takes (the
	 * shortest, "${hex:A}", is 8 bytes for 1; each further value is at
	 * least one blank and as many hex digits as its UTF-8 has bytes) */
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t used;
		if (in[i] == '$' && i + 1 < n && in[i + 1] == '{') {
			int r = decode_one(in + i, n - i, out, &o, &used);
			if (r < 0) {
				free(out);
				return r;
			}
			if (r > 0) {
				i += used;
				continue;
			}
		}
		out[o++] = in[i++];
	}
	out[o] = '\0';
	free(*s);
	*s = out;
	*len = o;
	return 0;
}
