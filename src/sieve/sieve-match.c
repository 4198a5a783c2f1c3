/*
 * sieve-match.c - comparators (i;octet, i;ascii-casemap, i;ascii-numeric:
 * RFC 4790), match types (:is, :contains, :matches with * and ? and
 * backslash escapes: RFC 5228 2.7.1; :count and :value: RFC 5231) and
 * address parts (RFC 5228 2.7.4).
 *
 * Part of src/sieve.  :matches runs in O(len(value) * len(key)) at worst
 * (one backtrack point per '*'), so a hostile key cannot explode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sieve-private.h"
#include "xalloc.h"

void sieve_strlist_add(struct sieve_strlist *l, const char *s, size_t n)
{
	l->s = xreallocarray(l->s, l->n + 1, sizeof *l->s);
	l->s[l->n++] = xmemdup0(s, n);
}

static int fold(enum sieve_cmp c, unsigned char ch)
{
	if (c == CMP_CASEMAP && ch >= 'A' && ch <= 'Z')
		return ch + ('a' - 'A');
	return ch;
}

static bool eq(enum sieve_cmp c, char a, char b)
{
	return fold(c, (unsigned char)a) == fold(c, (unsigned char)b);
}

/* Glob match of v against pattern k: '*' any run, '?' one character,
 * '\' quotes the next character.  One backtrack point (the last '*'), so
 * O(vn * kn); the wildcards match as little as possible.  pos, when not
 * NULL, has kn + 1 entries and receives for each pattern position the
 * value offset where it matched (for the match variables). */
static bool glob(enum sieve_cmp c, const char *v, size_t vn, const char *k, size_t kn, size_t *pos)
{
	size_t vi = 0, ki = 0;
	size_t star_k = (size_t)-1, star_v = 0;
	while (vi < vn) {
		if (ki < kn && k[ki] == '*') {
			if (pos != NULL)
				pos[ki] = vi;
			star_k = ++ki;
			star_v = vi;
			continue;
		}
		if (ki < kn && k[ki] == '?') {
			if (pos != NULL)
				pos[ki] = vi;
			ki++;
			vi++;
			continue;
		}
		if (ki < kn) {
			size_t kk = ki;
			if (k[kk] == '\\' && kk + 1 < kn)
				kk++;
			if (eq(c, k[kk], v[vi])) {
				if (pos != NULL)
					pos[ki] = vi;
				ki = kk + 1;
				vi++;
				continue;
			}
		}
		if (star_k == (size_t)-1)
			return false;
		ki = star_k;
		vi = ++star_v;
	}
	while (ki < kn && k[ki] == '*') {
		if (pos != NULL)
			pos[ki] = vn;
		ki++;
	}
	if (pos != NULL)
		pos[kn] = vn;
	return ki == kn;
}

/* The match variables of a successful glob: ${0} the value, then one
 * per wildcard ('*' from its offset to the next element's, '?' one
 * character), up to ${9}. */
static void set_captures(struct sieve_run *r, const char *v, size_t vn, const char *k, size_t kn,
			 const size_t *pos)
{
	const char *cap[SIEVE_MAX_MATCHVAR + 1];
	size_t len[SIEVE_MAX_MATCHVAR + 1];
	size_t n = 0;
	cap[n] = v;
	len[n++] = vn;
	for (size_t i = 0; i < kn && n <= SIEVE_MAX_MATCHVAR; i++) {
		if (k[i] == '\\') {
			i++;
		} else if (k[i] == '*') {
			cap[n] = v + pos[i];
			len[n++] = pos[i + 1] - pos[i];
		} else if (k[i] == '?') {
			cap[n] = v + pos[i];
			len[n++] = 1;
		}
	}
	sieve_vars_set_match(r, cap, len, n);
}

/* Digits at the start of s (leading zeroes skipped): *len of them, or
 * false when s does not start with a digit. */
static bool leading_number(const char *s, size_t n, const char **num, size_t *len)
{
	if (n == 0 || s[0] < '0' || s[0] > '9')
		return false;
	size_t i = 0;
	while (i + 1 < n && s[i] == '0' && s[i + 1] >= '0' && s[i + 1] <= '9')
		i++;
	size_t j = i;
	while (j < n && s[j] >= '0' && s[j] <= '9')
		j++;
	*num = s + i;
	*len = j - i;
	return true;
}

int sieve_compare(enum sieve_cmp c, const char *a, size_t an, const char *b, size_t bn)
{
	if (c == CMP_NUMERIC) {
		const char *x, *y;
		size_t xn, yn;
		bool xa = leading_number(a, an, &x, &xn), yb = leading_number(b, bn, &y, &yn);
		if (!xa || !yb) /* infinity */
			return (int)!xa - (int)!yb;
		if (xn != yn)
			return xn < yn ? -1 : 1;
		int r = memcmp(x, y, xn);
		return (r > 0) - (r < 0);
	}
	size_t m = an < bn ? an : bn;
	for (size_t i = 0; i < m; i++) {
		int d = fold(c, (unsigned char)a[i]) - fold(c, (unsigned char)b[i]);
		if (d != 0)
			return d < 0 ? -1 : 1;
	}
	return an == bn ? 0 : an < bn ? -1 : 1;
}

static bool relation(enum sieve_rel rel, int order)
{
	switch (rel) {
	case REL_GT:
		return order > 0;
	case REL_GE:
		return order >= 0;
	case REL_LT:
		return order < 0;
	case REL_LE:
		return order <= 0;
	case REL_EQ:
		return order == 0;
	case REL_NE:
		return order != 0;
	}
	return false;
}

bool sieve_match(const struct sieve_node *n, const char *v, size_t vn, const char *k, size_t kn)
{
	switch (n->match) {
	case MATCH_COUNT: /* sieve_match_any counts */
		return false;
	case MATCH_VALUE:
		return relation(n->rel, sieve_compare(n->cmp, v, vn, k, kn));
	case MATCH_IS:
		if (n->cmp == CMP_NUMERIC)
			return sieve_compare(n->cmp, v, vn, k, kn) == 0;
		if (vn != kn)
			return false;
		for (size_t i = 0; i < vn; i++)
			if (!eq(n->cmp, v[i], k[i]))
				return false;
		return true;
	case MATCH_CONTAINS:
		if (kn > vn)
			return false;
		for (size_t i = 0; i + kn <= vn; i++) {
			size_t j = 0;
			while (j < kn && eq(n->cmp, v[i + j], k[j]))
				j++;
			if (j == kn)
				return true;
		}
		return false;
	case MATCH_MATCHES:
		return glob(n->cmp, v, vn, k, kn, NULL);
	}
	return false;
}

static bool match_any(struct sieve_run *r, const struct sieve_node *n,
		      const struct sieve_strlist *values, const struct sieve_strlist *keys,
		      bool capture)
{
	if (n->match == MATCH_COUNT) {
		/* RFC 5231 4.2: the number of values, compared to each key */
		char num[24];
		int len = snprintf(num, sizeof num, "%zu", values->n);
		for (size_t j = 0; j < keys->n; j++)
			if (relation(n->rel, sieve_compare(n->cmp, num, (size_t)len, keys->s[j],
							   strlen(keys->s[j]))))
				return true;
		return false;
	}
	for (size_t i = 0; i < values->n; i++)
		for (size_t j = 0; j < keys->n; j++) {
			const char *v = values->s[i], *k = keys->s[j];
			size_t vn = strlen(v), kn = strlen(k);
			if (n->match != MATCH_MATCHES || !r->script->variables || !capture) {
				if (sieve_match(n, v, vn, k, kn))
					return true;
				continue;
			}
			size_t *pos = xcalloc(kn + 1, sizeof *pos);
			bool m = glob(n->cmp, v, vn, k, kn, pos);
			if (m)
				set_captures(r, v, vn, k, kn, pos);
			free(pos);
			if (m)
				return true;
		}
	return false;
}

bool sieve_match_any(struct sieve_run *r, const struct sieve_node *n,
		     const struct sieve_strlist *values, const struct sieve_strlist *keys)
{
	return match_any(r, n, values, keys, true);
}

bool sieve_match_any_nocapture(struct sieve_run *r, const struct sieve_node *n,
			       const struct sieve_strlist *values, const struct sieve_strlist *keys)
{
	return match_any(r, n, values, keys, false);
}

void sieve_address_part(const char *a, size_t n, enum sieve_part part, struct sieve_strlist *out)
{
	const char *at = NULL;
	for (size_t i = n; i > 0; i--)
		if (a[i - 1] == '@') {
			at = a + i - 1;
			break;
		}
	switch (part) {
	case PART_ALL:
		sieve_strlist_add(out, a, n);
		break;
	case PART_LOCAL:
		sieve_strlist_add(out, a, at != NULL ? (size_t)(at - a) : n);
		break;
	case PART_USER:
	case PART_DETAIL: {
		/* RFC 5233 with "+" as the separator: :user is the local part
		 * up to the first "+", :detail what follows it; an address
		 * without "+" has no detail and yields nothing to match. */
		size_t ln = at != NULL ? (size_t)(at - a) : n;
		const char *plus = memchr(a, '+', ln);
		if (part == PART_USER)
			sieve_strlist_add(out, a, plus != NULL ? (size_t)(plus - a) : ln);
		else if (plus != NULL)
			sieve_strlist_add(out, plus + 1, ln - (size_t)(plus + 1 - a));
		break;
	}
	case PART_DOMAIN:
		if (at != NULL)
			sieve_strlist_add(out, at + 1, n - (size_t)(at + 1 - a));
		else
			sieve_strlist_add(out, "", 0);
		break;
	}
}

/* Trims blanks (and CR/LF) at both ends. */
static void trim(const char **p, size_t *n)
{
	while (*n > 0 && strchr(" \t\r\n", (*p)[0]) != NULL) {
		(*p)++;
		(*n)--;
	}
	while (*n > 0 && strchr(" \t\r\n", (*p)[*n - 1]) != NULL)
		(*n)--;
}

/* One address of a list: the part in <...> if any, else the text
 * without comments. */
static void one_address(const char *p, size_t n, enum sieve_part part, struct sieve_strlist *out)
{
	struct buf b;
	buf_init(&b, n + 1);
	const char *lt = memchr(p, '<', n);
	if (lt != NULL) {
		const char *gt = memchr(lt, '>', n - (size_t)(lt - p));
		size_t len = gt != NULL ? (size_t)(gt - lt - 1) : n - (size_t)(lt - p) - 1;
		buf_append(&b, lt + 1, len);
	} else {
		int depth = 0;
		bool q = false;
		for (size_t i = 0; i < n; i++) {
			char c = p[i];
			if (q) {
				if (c == '"')
					q = false;
				buf_putc(&b, c);
			} else if (c == '(') {
				depth++;
			} else if (c == ')' && depth > 0) {
				depth--;
			} else if (depth == 0) {
				if (c == '"')
					q = true;
				buf_putc(&b, c);
			}
		}
	}
	const char *s = buf_cstr(&b);
	size_t sn = b.len;
	trim(&s, &sn);
	/* a group "name:" prefix or ";" suffix is not part of an address */
	const char *colon = memchr(s, ':', sn);
	if (colon != NULL && lt == NULL && memchr(s, '@', (size_t)(colon - s)) == NULL) {
		sn -= (size_t)(colon + 1 - s);
		s = colon + 1;
		trim(&s, &sn);
	}
	if (sn > 0 && s[sn - 1] == ';')
		sn--;
	trim(&s, &sn);
	if (sn > 0)
		sieve_address_part(s, sn, part, out);
	buf_free(&b);
}

void sieve_address_parts(const char *v, size_t n, enum sieve_part part, struct sieve_strlist *out)
{
	size_t start = 0;
	int depth = 0;
	bool q = false, angle = false;
	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? v[i] : ',';
		if (q) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '"')
				q = false;
			continue;
		}
		if (c == '"')
			q = true;
		else if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (c == '<')
			angle = true;
		else if (c == '>')
			angle = false;
		else if (c == ',' && depth == 0 && !angle) {
			one_address(v + start, i - start, part, out);
			start = i + 1;
		}
	}
}
