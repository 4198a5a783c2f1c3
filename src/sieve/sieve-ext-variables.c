/*
 * sieve-ext-variables.c - the "variables" extension (RFC 5229): the set
 * action with its modifiers, the string test, ${name} references in
 * strings (expanded when control reaches the command, one pass) and the
 * match variables ${0}..${9} that a successful :matches sets.
 *
 * Part of src/sieve.  Bounded: at most SIEVE_MAX_VARIABLES distinct names
 * (all names are constants, so this is checked at compile time), names of
 * at most SIEVE_MAX_VARNAME bytes, values of at most SIEVE_MAX_VARVALUE
 * bytes (longer ones are truncated, RFC 5229 6), an expanded string at
 * most max_string bytes.  No namespace is supported, so a reference with
 * one is a compile error (RFC 5229 3), as is ${10} and beyond (6).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "buf.h"
#include "sieve-private.h"
#include "xalloc.h"

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A variable-ref at s (just after "${"): returns the length of the text
 * up to "}" (exclusive), or 0 when it is not a valid reference.  *dots:
 * the number of '.' (namespace separators); *numeric: a num-variable. */
static size_t ref_len(const char *s, size_t *dots, bool *numeric)
{
	size_t i = 0;
	*dots = 0;
	*numeric = false;
	for (;;) {
		size_t start = i;
		if (is_alpha(s[i])) {
			while (is_alpha(s[i]) || is_digit(s[i]))
				i++;
		} else if (is_digit(s[i])) {
			while (is_digit(s[i]))
				i++;
			/* a namespace starts with an identifier */
			if (start == 0 && s[i] == '.')
				return 0;
			if (start == 0)
				*numeric = true;
		} else {
			return 0;
		}
		if (s[i] == '}')
			return i;
		if (s[i] != '.')
			return 0;
		(*dots)++;
		*numeric = false;
		i++;
	}
}

/* The index of a num-variable of n digits (leading zeroes ignored), or
 * SIEVE_MAX_MATCHVAR + 1 when larger. */
static size_t match_index(const char *s, size_t n)
{
	size_t v = 0;
	for (size_t i = 0; i < n; i++) {
		v = v * 10 + (size_t)(s[i] - '0');
		if (v > SIEVE_MAX_MATCHVAR)
			return SIEVE_MAX_MATCHVAR + 1;
	}
	return v;
}

/* Whether s (a reference's text) starts with the "global." namespace. */
static bool global_prefix(const char *s)
{
	return !strncasecmp(s, "global.", 7);
}

int sieve_vars_check_string(const char *s, int line, int col, bool global_ns, bool *has,
			    struct sieve_error *err)
{
	for (const char *p = strstr(s, "${"); p != NULL; p = strstr(p + 2, "${")) {
		size_t dots;
		bool numeric;
		size_t n = ref_len(p + 2, &dots, &numeric);
		if (n == 0)
			continue;
		*has = true;
		if (dots == 1 && global_ns && global_prefix(p + 2))
			continue;
		if (dots > 0)
			return sieve_fail(err, line, col,
					  "variable namespace in \"${%.*s}\" is not supported",
					  (int)(n > 64 ? 64 : n), p + 2);
		if (numeric && match_index(p + 2, n) > SIEVE_MAX_MATCHVAR)
			return sieve_fail(err, line, col, "match variable \"${%.*s}\" beyond ${%d}",
					  (int)(n > 64 ? 64 : n), p + 2, SIEVE_MAX_MATCHVAR);
	}
	return 0;
}

bool sieve_var_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SIEVE_MAX_VARNAME || !is_alpha(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]))
			return false;
	return true;
}

bool sieve_var_global_name(const char *s)
{
	return global_prefix(s) && sieve_var_name_ok(s + 7);
}

/* n shortened so that it does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static ssize_t find_in(const struct sieve_strlist *names, const char *name, size_t n)
{
	for (size_t i = 0; i < names->n; i++)
		if (strlen(names->s[i]) == n && !strncasecmp(names->s[i], name, n))
			return (ssize_t)i;
	return -1;
}

/* The space of variable name[0..*n): the global variables (RFC 6609) for
 * "global.NAME" (*name and *n then past the prefix) and for a name the
 * running script declared global; else the script's own. */
static bool var_global(const struct sieve_run *r, const char **name, size_t *n)
{
	if (*n > 7 && global_prefix(*name)) {
		*name += 7;
		*n -= 7;
		return true;
	}
	return find_in(&r->gdecl, *name, *n) >= 0;
}

/* The index of name[0..n) in *names (its space), or -1. */
static ssize_t var_find(struct sieve_run *r, const char *name, size_t n,
			struct sieve_strlist **names, struct sieve_strlist **values)
{
	bool g = var_global(r, &name, &n);
	*names = g ? &r->gvar_names : &r->var_names;
	*values = g ? &r->gvar_values : &r->var_values;
	return find_in(*names, name, n);
}

const char *sieve_var_get(struct sieve_run *r, const char *name)
{
	struct sieve_strlist *names, *values;
	ssize_t i = var_find(r, name, strlen(name), &names, &values);
	return i < 0 ? "" : values->s[i];
}

void sieve_var_set(struct sieve_run *r, const char *name, const char *value, size_t n)
{
	n = utf8_cut(value, n, SIEVE_MAX_VARVALUE);
	struct sieve_strlist *names, *values;
	ssize_t i = var_find(r, name, strlen(name), &names, &values);
	if (i >= 0) {
		free(values->s[i]);
		values->s[i] = xmemdup0(value, n);
		return;
	}
	/* the compiler bounded the distinct names of a script; this bounds
	 * the globals several scripts share too */
	if (names->n >= SIEVE_MAX_VARIABLES)
		return;
	if (global_prefix(name))
		name += 7;
	sieve_strlist_add(names, name, strlen(name));
	sieve_strlist_add(values, value, n);
}

void sieve_vars_set_match(struct sieve_run *r, const char *const *cap, const size_t *cap_len,
			  size_t n)
{
	for (size_t i = 0; i <= SIEVE_MAX_MATCHVAR; i++) {
		free(r->match[i]);
		r->match[i] = NULL;
		if (i < n)
			r->match[i] =
			    xmemdup0(cap[i], utf8_cut(cap[i], cap_len[i], SIEVE_MAX_VARVALUE));
	}
}

void sieve_vars_free(struct sieve_run *r)
{
	sieve_strlist_free(&r->var_names);
	sieve_strlist_free(&r->var_values);
	for (size_t i = 0; i <= SIEVE_MAX_MATCHVAR; i++) {
		free(r->match[i]);
		r->match[i] = NULL;
	}
}

char *sieve_vars_expand(struct sieve_run *r, const char *s, size_t *len)
{
	size_t max = r->script->lim.max_string;
	struct buf b;
	buf_init(&b, 0);
	const char *p = s;
	for (;;) {
		const char *d = strstr(p, "${");
		if (d == NULL) {
			buf_append(&b, p, strlen(p));
			break;
		}
		buf_append(&b, p, (size_t)(d - p));
		size_t dots;
		bool numeric;
		size_t n = ref_len(d + 2, &dots, &numeric);
		if (n == 0) { /* not a reference: verbatim */
			buf_append(&b, "${", 2);
			p = d + 2;
			continue;
		}
		const char *v = "";
		if (numeric) {
			size_t k = match_index(d + 2, n);
			if (k <= SIEVE_MAX_MATCHVAR && r->match[k] != NULL)
				v = r->match[k];
		} else if (dots == 0 || (dots == 1 && global_prefix(d + 2))) {
			struct sieve_strlist *names, *values;
			ssize_t i = var_find(r, d + 2, n, &names, &values);
			if (i >= 0)
				v = values->s[i];
		}
		buf_append(&b, v, strlen(v));
		p = d + 2 + n + 1;
		if (b.len > max)
			break;
	}
	char *out = buf_steal(&b, len);
	*len = utf8_cut(out, *len, max);
	out[*len] = '\0';
	return out;
}

/* ---- set ---- */

static int check_set(const struct sieve_node *n, struct sieve_error *err)
{
	/* the name is checked with the others a script sets (sieve-parse.c) */
	if (strlen(n->pos[1].s[0]) > SIEVE_MAX_VARVALUE && !n->has_vars)
		return sieve_fail(err, n->line, n->col, "value longer than %d bytes",
				  SIEVE_MAX_VARVALUE);
	return 0;
}

static void ascii_case(char *s, size_t n, bool upper)
{
	for (size_t i = 0; i < n; i++) {
		if (upper && s[i] >= 'a' && s[i] <= 'z')
			s[i] = (char)(s[i] - 'a' + 'A');
		else if (!upper && s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
	}
}

static int run_set(struct sieve_run *r, const struct sieve_node *n)
{
	/* modifiers by precedence (RFC 5229 4.1): case 40, first letter 30,
	 * quotewildcard 20, length 10 */
	const char *v = n->pos[1].s[0];
	size_t len = strlen(v);
	char *val = xmemdup0(v, len);
	if (n->mods & (MOD_LOWER | MOD_UPPER))
		ascii_case(val, len, (n->mods & MOD_UPPER) != 0);
	if (len > 0 && (n->mods & (MOD_LOWERFIRST | MOD_UPPERFIRST)))
		ascii_case(val, 1, (n->mods & MOD_UPPERFIRST) != 0);
	if (n->mods & MOD_QUOTEWILDCARD) {
		struct buf b;
		buf_init(&b, len * 2 + 1);
		for (size_t i = 0; i < len; i++) {
			if (val[i] == '*' || val[i] == '?' || val[i] == '\\')
				buf_putc(&b, '\\');
			buf_putc(&b, val[i]);
		}
		free(val);
		val = buf_steal(&b, &len);
	}
	if (n->mods & MOD_LENGTH) {
		/* characters, not bytes: count UTF-8 lead bytes */
		size_t chars = 0;
		for (size_t i = 0; i < len; i++)
			if (((unsigned char)val[i] & 0xC0) != 0x80)
				chars++;
		free(val);
		struct buf b = BUF_INIT;
		buf_printf(&b, "%zu", chars);
		val = buf_steal(&b, &len);
	}
	sieve_var_set(r, n->pos[0].s[0], val, len);
	free(val);
	return 0;
}

/* ---- string ---- */

static int run_string(struct sieve_run *r, const struct sieve_node *n)
{
	if (n->match != MATCH_COUNT)
		return sieve_match_any(r, n, &n->pos[0], &n->pos[1]);
	/* RFC 5229 5: the empty string counts 0 */
	struct sieve_strlist src = {NULL, 0};
	for (size_t i = 0; i < n->pos[0].n; i++)
		if (n->pos[0].s[i][0] != '\0')
			sieve_strlist_add(&src, n->pos[0].s[i], strlen(n->pos[0].s[i]));
	bool m = sieve_match_any(r, n, &src, &n->pos[1]);
	sieve_strlist_free(&src);
	return m;
}

static const struct sieve_def defs[] = {
    {"set", false, "ss", 0, false, TAGS_SET, run_set, check_set},
    {"string", true, "ll", 0, false, TAGS_MATCH, run_string, NULL},
};

const struct sieve_ext sieve_ext_variables = {"variables", defs, sizeof defs / sizeof defs[0],
					      TAGS_SET, 0};
