/*
 * mta-sts.c - MTA-STS record and policy parsing, MX matching (see
 * mta-sts.h; RFC 8461 3.1, 3.2, 4.1).
 *
 * Layer src/queue (pure: no I/O, no allocation).
 */
#include "mta-sts.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "strutil.h"

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static bool ext_name_ok(const char *p, size_t n)
{
	if (n == 0 || n > 32 || !is_alnum((unsigned char)p[0]))
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!is_alnum(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}

int mtasts_txt_parse(const char *p, size_t n, char id[MTASTS_ID_MAX + 1])
{
	static const char ver[] = "v=STSv1";
	const size_t vl = sizeof ver - 1;
	id[0] = '\0';
	if (n < vl || memcmp(p, ver, vl) != 0)
		return 0;
	size_t i = vl;
	while (i < n && is_wsp((unsigned char)p[i]))
		i++;
	if (i >= n || p[i] != ';')
		return 0; /* "v=STSv10", "v=STSv1x": not ours */
	size_t fields = 0;
	bool have_id = false;
	while (i < n && p[i] == ';') {
		i++;
		while (i < n && is_wsp((unsigned char)p[i]))
			i++;
		if (i == n)
			break; /* the optional trailing delimiter */
		size_t name = i;
		while (i < n && p[i] != '=' && p[i] != ';' && !is_wsp((unsigned char)p[i]))
			i++;
		if (i >= n || p[i] != '=' || !ext_name_ok(p + name, i - name))
			return -1;
		size_t name_len = i - name;
		size_t val = ++i;
		/* %x21-3A / %x3C / %x3E-7E: no "=", ";", SP, CTLs */
		while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f &&
		       p[i] != ';' && p[i] != '=')
			i++;
		size_t val_len = i - val;
		if (val_len == 0)
			return -1;
		while (i < n && is_wsp((unsigned char)p[i]))
			i++;
		if (i < n && p[i] != ';')
			return -1;
		fields++;
		if (name_len == 2 && !memcmp(p + name, "id", 2) && !have_id) {
			if (val_len > MTASTS_ID_MAX)
				return -1;
			for (size_t k = 0; k < val_len; k++)
				if (!is_alnum((unsigned char)p[val + k]))
					return -1;
			memcpy(id, p + val, val_len);
			id[val_len] = '\0';
			have_id = true;
		}
	}
	if (i != n || fields == 0 || !have_id) {
		id[0] = '\0';
		return -1;
	}
	return 1;
}

/* A host name as RFC 5321 4.1.2 Domain (sub-domains of letters, digits
 * and inner hyphens), at most 253 octets.  Copied lower-case into out. */
static bool domain_ok(const char *p, size_t n, char *out, size_t outsz)
{
	if (n == 0 || n > 253 || n >= outsz)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '.') {
			if (label == 0 || p[i - 1] == '-')
				return false;
			label = 0;
		} else if (is_alnum(c) || (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	if (label == 0 || p[n - 1] == '-')
		return false;
	out[n] = '\0';
	return true;
}

enum {
	SEEN_VERSION = 1,
	SEEN_MODE = 2,
	SEEN_MAX_AGE = 4,
};

/* One "key: value" line (without its terminator). */
static int policy_line(const char *p, size_t n, struct mtasts_policy *out, unsigned *seen,
		       char *err, size_t errsz)
{
	const char *colon = memchr(p, ':', n);
	if (colon == NULL || !ext_name_ok(p, (size_t)(colon - p))) {
		strutil_errf(err, errsz, "a line is not \"key: value\"");
		return -1;
	}
	size_t kl = (size_t)(colon - p);
	const char *v = colon + 1;
	size_t vl = n - kl - 1;
	while (vl > 0 && is_wsp((unsigned char)v[0])) {
		v++;
		vl--;
	}
	while (vl > 0 && is_wsp((unsigned char)v[vl - 1]))
		vl--;
	for (size_t i = 0; i < vl; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			strutil_errf(err, errsz, "a control character in a value");
			return -1;
		}
	if (kl == 7 && !memcmp(p, "version", 7)) {
		if (*seen & SEEN_VERSION)
			return 0;
		*seen |= SEEN_VERSION;
		if (vl != 5 || memcmp(v, "STSv1", 5) != 0) {
			strutil_errf(err, errsz, "version is not STSv1");
			return -1;
		}
	} else if (kl == 4 && !memcmp(p, "mode", 4)) {
		if (*seen & SEEN_MODE)
			return 0;
		*seen |= SEEN_MODE;
		if (vl == 7 && !memcmp(v, "enforce", 7))
			out->mode = MTASTS_ENFORCE;
		else if (vl == 7 && !memcmp(v, "testing", 7))
			out->mode = MTASTS_TESTING;
		else if (vl == 4 && !memcmp(v, "none", 4))
			out->mode = MTASTS_NONE;
		else {
			strutil_errf(err, errsz, "mode is not enforce, testing or none");
			return -1;
		}
	} else if (kl == 7 && !memcmp(p, "max_age", 7)) {
		if (*seen & SEEN_MAX_AGE)
			return 0;
		*seen |= SEEN_MAX_AGE;
		uint64_t age = 0;
		if (vl == 0 || vl > 10 || strutil_parse_u64(v, vl, 9999999999ULL, &age) < 0) {
			strutil_errf(err, errsz, "max_age is not a number of 1 to 10 digits");
			return -1;
		}
		for (size_t i = 0; i < vl; i++)
			if (v[i] < '0' || v[i] > '9') {
				strutil_errf(err, errsz, "max_age is not a number of 1 to 10 digits");
				return -1;
			}
		/* Longer than the RFC's maximum: kept for the maximum. */
		out->max_age = age > MTASTS_MAX_AGE_MAX ? MTASTS_MAX_AGE_MAX : age;
	} else if (kl == 2 && !memcmp(p, "mx", 2)) {
		if (out->n_mx == MTASTS_MAX_MX) {
			strutil_errf(err, errsz, "more than %d mx patterns", MTASTS_MAX_MX);
			return -1;
		}
		char *dst = out->mx[out->n_mx];
		size_t off = 0;
		if (vl >= 2 && v[0] == '*' && v[1] == '.') {
			memcpy(dst, "*.", 2);
			off = 2;
		}
		if (!domain_ok(v + off, vl - off, dst + off, sizeof out->mx[0] - off)) {
			strutil_errf(err, errsz, "an mx pattern is not a host name or *.domain");
			return -1;
		}
		out->n_mx++;
	}
	/* Other keys: extensions, ignored (3.2). */
	return 0;
}

int mtasts_policy_parse(const char *p, size_t n, struct mtasts_policy *out, char *err,
			size_t errsz)
{
	memset(out, 0, sizeof *out);
	if (n > MTASTS_POLICY_MAX) {
		strutil_errf(err, errsz, "the policy is larger than %d bytes", MTASTS_POLICY_MAX);
		return -1;
	}
	unsigned seen = 0;
	size_t i = 0;
	while (i < n) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - p) : n;
		size_t len = end - i;
		if (len > 0 && p[i + len - 1] == '\r')
			len--;
		/* Blank lines (a trailing one is common) carry nothing. */
		bool blank = true;
		for (size_t k = 0; k < len && blank; k++)
			blank = is_wsp((unsigned char)p[i + k]);
		if (!blank && policy_line(p + i, len, out, &seen, err, errsz) < 0)
			return -1;
		i = nl ? end + 1 : n;
	}
	if (!(seen & SEEN_VERSION)) {
		strutil_errf(err, errsz, "no version");
		return -1;
	}
	if (!(seen & SEEN_MODE)) {
		strutil_errf(err, errsz, "no mode");
		return -1;
	}
	if (!(seen & SEEN_MAX_AGE)) {
		strutil_errf(err, errsz, "no max_age");
		return -1;
	}
	if (out->mode != MTASTS_NONE && out->n_mx == 0) {
		strutil_errf(err, errsz, "no mx pattern");
		return -1;
	}
	return 0;
}

bool mtasts_mx_match(const struct mtasts_policy *pol, const char *host)
{
	size_t hl = strlen(host);
	for (size_t i = 0; i < pol->n_mx; i++) {
		const char *m = pol->mx[i];
		if (m[0] == '*') {
			/* "*.example.com": one whole label before ".example.com" */
			size_t sl = strlen(m + 1); /* ".example.com" */
			if (hl <= sl || strcasecmp(host + hl - sl, m + 1) != 0)
				continue;
			if (memchr(host, '.', hl - sl) == NULL)
				return true;
		} else if (strcasecmp(host, m) == 0) {
			return true;
		}
	}
	return false;
}

void mtasts_mx_list(const struct mtasts_policy *pol, char *out, size_t outsz)
{
	size_t off = 0;
	if (outsz == 0)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < pol->n_mx && off < outsz; i++) {
		int w = snprintf(out + off, outsz - off, "%s%s", i ? " " : "", pol->mx[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
}

size_t mtasts_policy_format(const char *mode, const char *mx, uint64_t max_age, char *out,
			    size_t outsz)
{
	int n = snprintf(out, outsz, "version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: %llu\r\n",
			 mode, mx, (unsigned long long)max_age);
	return n < 0 || (size_t)n >= outsz ? 0 : (size_t)n;
}

const char *mtasts_mode_name(enum mtasts_mode m)
{
	return m == MTASTS_ENFORCE ? "enforce" : m == MTASTS_TESTING ? "testing" : "none";
}
