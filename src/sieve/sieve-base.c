/*
 * sieve-base.c - the base language of RFC 5228: control (require, if,
 * elsif, else, stop), actions (keep, discard, redirect) and tests
 * (address, header, exists, size, allof, anyof, not, true, false).
 *
 * Part of src/sieve; registered as entry 0 of the extension table.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "sieve-private.h"
#include "xalloc.h"

static int run_require(struct sieve_run *r, const struct sieve_node *n)
{
	return 0;
}

static int run_if(struct sieve_run *r, const struct sieve_node *n)
{
	for (const struct sieve_node *b = n; b != NULL; b = b->alt) {
		int t = 1;
		if (b->n_tests > 0)
			t = sieve_run_test(r, b->tests[0]);
		if (t < 0)
			return -1;
		if (t)
			return sieve_run_block(r, b->block);
	}
	return 0;
}

/* elsif and else run as part of their if (run_if). */
static int run_alt(struct sieve_run *r, const struct sieve_node *n)
{
	return 0;
}

static int run_stop(struct sieve_run *r, const struct sieve_node *n)
{
	r->stopped = true;
	return 0;
}

static int run_keep(struct sieve_run *r, const struct sieve_node *n)
{
	struct sieve_action *a = sieve_run_add(r, SIEVE_ACT_KEEP, NULL, true);
	if (a == NULL)
		return -1;
	sieve_run_set_flags(r, a, n->has_flags ? &n->flags : NULL);
	return 0;
}

static int run_discard(struct sieve_run *r, const struct sieve_node *n)
{
	return sieve_run_add(r, SIEVE_ACT_DISCARD, NULL, true) != NULL ? 0 : -1;
}

static int run_redirect(struct sieve_run *r, const struct sieve_node *n)
{
	const char *to = n->pos[0].s[0];
	const char *at = strrchr(to, '@');
	if (at == NULL || at == to || at[1] == '\0' || strpbrk(to, " \t\r\n<>,") != NULL)
		return sieve_run_fail(r, "redirect to an invalid address \"%.100s\"", to);
	struct sieve_action *a = sieve_run_add(r, SIEVE_ACT_REDIRECT, to, !n->copy);
	return a != NULL ? 0 : -1;
}

void sieve_header_values(struct sieve_run *r, const char *name, bool decode,
			 struct sieve_strlist *out)
{
	if (!r->hdr_ok)
		return;
	size_t nlen = strlen(name);
	for (size_t i = 0; i < r->hdr.n_fields; i++) {
		const struct header_field *f = &r->hdr.fields[i];
		if (f->name_len != nlen || strncasecmp(f->name, name, nlen) != 0)
			continue;
		char *unfolded = xmalloc(f->value_len + 1);
		size_t u = header_unfold(f->value, f->value_len, unfolded, f->value_len + 1);
		struct buf b;
		buf_init(&b, f->value_len * 4 + 16);
		if (decode && mime_decode_2047(unfolded, u, &b) == 0)
			sieve_strlist_add(out, b.data != NULL ? b.data : "", b.len);
		else
			sieve_strlist_add(out, unfolded, u);
		buf_free(&b);
		free(unfolded);
	}
}

static int run_header(struct sieve_run *r, const struct sieve_node *n)
{
	struct sieve_strlist vals = {NULL, 0};
	for (size_t i = 0; i < n->pos[0].n; i++)
		sieve_header_values(r, n->pos[0].s[i], true, &vals);
	sieve_pick_index(n, &vals);
	bool m = sieve_match_any(r, n, &vals, &n->pos[1]);
	sieve_strlist_free(&vals);
	return m;
}

static int run_address(struct sieve_run *r, const struct sieve_node *n)
{
	struct sieve_strlist raw = {NULL, 0}, parts = {NULL, 0};
	for (size_t i = 0; i < n->pos[0].n; i++)
		sieve_header_values(r, n->pos[0].s[i], false, &raw);
	sieve_pick_index(n, &raw);
	for (size_t i = 0; i < raw.n; i++)
		sieve_address_parts(raw.s[i], strlen(raw.s[i]), n->part, &parts);
	bool m = sieve_match_any(r, n, &parts, &n->pos[1]);
	sieve_strlist_free(&raw);
	sieve_strlist_free(&parts);
	return m;
}

void sieve_pick_index(const struct sieve_node *n, struct sieve_strlist *fields)
{
	if (n->index == 0)
		return;
	struct sieve_strlist one = {NULL, 0};
	if (n->index <= fields->n) {
		size_t i = n->last ? fields->n - n->index : n->index - 1;
		sieve_strlist_add(&one, fields->s[i], strlen(fields->s[i]));
	}
	sieve_strlist_free(fields);
	*fields = one;
}

static int run_exists(struct sieve_run *r, const struct sieve_node *n)
{
	for (size_t i = 0; i < n->pos[0].n; i++)
		if (!r->hdr_ok || header_find(&r->hdr, n->pos[0].s[i]) == NULL)
			return 0;
	return 1;
}

static int run_size(struct sieve_run *r, const struct sieve_node *n)
{
	uint64_t size = r->in->msg_len;
	return n->over ? size > n->number : size < n->number;
}

static int run_allof(struct sieve_run *r, const struct sieve_node *n)
{
	for (size_t i = 0; i < n->n_tests; i++) {
		int t = sieve_run_test(r, n->tests[i]);
		if (t <= 0)
			return t;
	}
	return 1;
}

static int run_anyof(struct sieve_run *r, const struct sieve_node *n)
{
	for (size_t i = 0; i < n->n_tests; i++) {
		int t = sieve_run_test(r, n->tests[i]);
		if (t != 0)
			return t;
	}
	return 0;
}

static int run_not(struct sieve_run *r, const struct sieve_node *n)
{
	int t = sieve_run_test(r, n->tests[0]);
	return t < 0 ? -1 : !t;
}

static int run_true(struct sieve_run *r, const struct sieve_node *n)
{
	return 1;
}

static int run_false(struct sieve_run *r, const struct sieve_node *n)
{
	return 0;
}

static const struct sieve_def base_defs[] = {
    {"require", false, "l", 0, false, 0, run_require, NULL},
    {"if", false, "", 1, true, 0, run_if, NULL},
    {"elsif", false, "", 1, true, 0, run_alt, NULL},
    {"else", false, "", 0, true, 0, run_alt, NULL},
    {"stop", false, "", 0, false, 0, run_stop, NULL},
    {"keep", false, "", 0, false, TAGS_FLAGS, run_keep, NULL},
    {"discard", false, "", 0, false, 0, run_discard, NULL},
    {"redirect", false, "s", 0, false, TAGS_COPY, run_redirect, NULL},
    {"address", true, "ll", 0, false, TAGS_MATCH | TAGS_PART | TAGS_INDEX, run_address, NULL},
    {"header", true, "ll", 0, false, TAGS_MATCH | TAGS_INDEX, run_header, NULL},
    {"exists", true, "l", 0, false, 0, run_exists, NULL},
    {"size", true, "", 0, false, TAGS_SIZE, run_size, NULL},
    {"allof", true, "", 2, false, 0, run_allof, NULL},
    {"anyof", true, "", 2, false, 0, run_anyof, NULL},
    {"not", true, "", 1, false, 0, run_not, NULL},
    {"true", true, "", 0, false, 0, run_true, NULL},
    {"false", true, "", 0, false, 0, run_false, NULL},
};

const struct sieve_ext sieve_ext_base = {NULL, base_defs, sizeof base_defs / sizeof base_defs[0], 0,
					 0};
