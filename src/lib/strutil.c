/*
 * strutil.c - checked number parsing and ASCII helpers (see strutil.h).
 */
#include "strutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int strutil_parse_u64(const char *p, size_t n, uint64_t max, uint64_t *out)
{
	if (n == 0 || n > 20)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool strutil_eq_ci(const char *p, size_t n, const char *s)
{
	size_t sl = strlen(s);
	if (sl != n)
		return false;
	return strutil_prefix_ci(p, n, s);
}

bool strutil_prefix_ci(const char *p, size_t n, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (pl > n)
		return false;
	for (size_t i = 0; i < pl; i++)
		if (lower(p[i]) != lower(prefix[i]))
			return false;
	return true;
}

void strutil_lower(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i] = lower(s[i]);
}

static int parse_suffixed(const char *s, const char *suffixes, const uint64_t *mult,
			  uint64_t *out)
{
	size_t n = strlen(s);
	uint64_t m = 1;
	if (n > 0) {
		const char *hit = strchr(suffixes, lower(s[n - 1]));
		if (hit != NULL && s[n - 1] != '\0') {
			m = mult[hit - suffixes];
			n--;
		}
	}
	uint64_t v;
	if (strutil_parse_u64(s, n, UINT64_MAX / m, &v) < 0)
		return -1;
	*out = v * m;
	return 0;
}

int strutil_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = {1024, 1024 * 1024, 1024 * 1024 * 1024};
	return parse_suffixed(s, "kmg", mult, out);
}

int strutil_parse_duration(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = {1, 60, 3600, 86400};
	return parse_suffixed(s, "smhd", mult, out);
}

bool strutil_has_word_ci(const char *p, size_t n, const char *w)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && p[i] == ' ')
			i++;
		size_t start = i;
		while (i < n && p[i] != ' ')
			i++;
		if (i > start && strutil_eq_ci(p + start, i - start, w))
			return true;
	}
	return false;
}

void strutil_errf(char *err, size_t errsz, const char *fmt, ...)
{
	if (err == NULL || errsz == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}
