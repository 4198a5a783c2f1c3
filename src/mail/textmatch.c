/*
 * textmatch.c - see textmatch.h.
 */
#include "textmatch.h"

#include <string.h>

#include "buf.h"
#include "mime.h"
#include "sortkey.h"
#include "strutil.h"

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
