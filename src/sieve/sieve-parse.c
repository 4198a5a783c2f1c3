/*
 * sieve-parse.c - the Sieve parser (RFC 5228 section 8.2) to a checked
 * tree: commands and tests are looked up in the extensions the script
 * requires, and their arguments (tags, positional arguments, tests,
 * blocks) are validated against the definition.  `require` must come
 * first and name implemented extensions only.
 *
 * Part of src/sieve.  Recursion is bounded by sieve_limits.max_depth, so
 * 10,000 nested ifs are refused with an error, not a stack overflow.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sieve-private.h"
#include "xalloc.h"

struct parser {
	struct sieve_lexer lx;
	struct sieve_token tok; /* the current token */
	struct sieve_error *err;
	const struct sieve_limits *lim;
	bool enabled[32]; /* per sieve_ext_table entry */
	bool past_require;
	bool variables;               /* "variables" required */
	bool include;                 /* "include" required: the global namespace */
	struct sieve_strlist varnames; /* distinct names set (lowercase) */
	bool globals[SIEVE_MAX_VARIABLES]; /* per varnames entry: declared global */
};

void sieve_strlist_free(struct sieve_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->s[i]);
	free(l->s);
	l->s = NULL;
	l->n = 0;
}

static void node_free(struct sieve_node *n)
{
	/* blocks and alternatives iterate; tests nest at most max_depth */
	while (n != NULL) {
		struct sieve_node *next = n->next;
		for (size_t i = 0; i < n->n_tests; i++)
			node_free(n->tests[i]);
		free(n->tests);
		node_free(n->block);
		node_free(n->alt);
		sieve_strlist_free(&n->flags);
		sieve_strlist_free(&n->subject);
		sieve_strlist_free(&n->from);
		sieve_strlist_free(&n->handle);
		sieve_strlist_free(&n->addresses);
		sieve_strlist_free(&n->content);
		sieve_strlist_free(&n->zone);
		sieve_strlist_free(&n->dupid);
		for (size_t i = 0; i < 3; i++)
			sieve_strlist_free(&n->pos[i]);
		free(n);
		n = next;
	}
}

void sieve_script_free(struct sieve_script **s)
{
	if (s == NULL || *s == NULL)
		return;
	node_free((*s)->top);
	free(*s);
	*s = NULL;
}

/* Whether extension x is enabled (required, or by ihave). */
static bool enabled_ext(const struct parser *p, const struct sieve_ext *x)
{
	for (size_t e = 1; e < sieve_ext_count; e++)
		if (sieve_ext_table[e] == x)
			return p->enabled[e];
	return false;
}

static int next(struct parser *p)
{
	free(p->tok.str);
	p->tok.str = NULL;
	if (sieve_lex_next(&p->lx, &p->tok) < 0)
		return -1;
	/* encoded-character (RFC 5228 2.4.2.4): after the lexer's escapes */
	int rc = 0;
	if (p->tok.type == TOK_STRING && enabled_ext(p, &sieve_ext_encoded))
		rc = sieve_encoded_decode(&p->tok.str, &p->tok.len);
	if (rc < 0) {
		sieve_fail(p->err, p->tok.line, p->tok.col,
			   rc == -1 ? "encoded character outside 0..D7FF and E000..10FFFF"
				    : "encoded NUL character not supported");
		free(p->tok.str);
		p->tok.str = NULL;
		return -1;
	}
	return 0;
}

static int fail_tok(struct parser *p, const char *what)
{
	static const char *const names[] = {
	    "end of script", "identifier", "tag", "number", "string", "'['", "']'",
	    "'('",           "')'",        "'{'", "'}'",    "','",    "';'"};
	return sieve_fail(p->err, p->tok.line, p->tok.col, "expected %s, found %s", what,
			  names[p->tok.type]);
}

static const struct sieve_def *find_def(struct parser *p, const char *name, bool test,
					bool *known_elsewhere)
{
	*known_elsewhere = false;
	for (size_t e = 0; e < sieve_ext_count; e++) {
		const struct sieve_ext *x = sieve_ext_table[e];
		for (size_t i = 0; i < x->n_defs; i++) {
			if (strcasecmp(x->defs[i].name, name) != 0 || x->defs[i].is_test != test)
				continue;
			if (e == 0 || p->enabled[e])
				return &x->defs[i];
			*known_elsewhere = true;
		}
	}
	return NULL;
}

static unsigned enabled_tags(const struct parser *p)
{
	unsigned t = TAGS_MATCH | TAGS_PART | TAGS_SIZE;
	for (size_t e = 1; e < sieve_ext_count; e++)
		if (p->enabled[e])
			t |= sieve_ext_table[e]->tags;
	return t;
}

static unsigned enabled_comparators(const struct parser *p)
{
	unsigned c = 0;
	for (size_t e = 1; e < sieve_ext_count; e++)
		if (p->enabled[e])
			c |= sieve_ext_table[e]->comparators;
	return c;
}

/* string-list: a string or "[" string *("," string) "]". */
static int parse_strlist(struct parser *p, struct sieve_strlist *out, bool *was_list)
{
	*was_list = false;
	if (p->tok.type == TOK_STRING) {
		sieve_strlist_add(out, p->tok.str, p->tok.len);
		return next(p);
	}
	if (p->tok.type != TOK_LBRACKET)
		return fail_tok(p, "a string or a string list");
	*was_list = true;
	if (next(p) < 0)
		return -1;
	for (;;) {
		if (p->tok.type != TOK_STRING)
			return fail_tok(p, "a string");
		sieve_strlist_add(out, p->tok.str, p->tok.len);
		if (next(p) < 0)
			return -1;
		if (p->tok.type == TOK_RBRACKET)
			return next(p);
		if (p->tok.type != TOK_COMMA)
			return fail_tok(p, "',' or ']'");
		if (next(p) < 0)
			return -1;
	}
}

static int parse_test(struct parser *p, size_t depth, struct sieve_node **out);

/* One tagged argument (the current token is a TOK_TAG). */
static int parse_tag(struct parser *p, struct sieve_node *n, unsigned *seen)
{
	int line = p->tok.line, col = p->tok.col;
	char name[32];
	size_t len = strlen(p->tok.str);
	if (len >= sizeof name)
		len = sizeof name - 1;
	memcpy(name, p->tok.str, len);
	name[len] = '\0';
	unsigned groups = n->def->tags;
	if (groups & TAGS_PART)
		groups |= TAGS_SUBADDR;
	if (groups & TAGS_MATCH)
		groups |= TAGS_REL;
	unsigned allowed = groups & enabled_tags(p);
	static const struct {
		const char *name;
		unsigned group;
		unsigned once; /* bit in *seen: a tag of that kind given twice */
	} tags[] = {
	    {"is", TAGS_MATCH, 1},         {"contains", TAGS_MATCH, 1}, {"matches", TAGS_MATCH, 1},
	    {"count", TAGS_REL, 1},        {"value", TAGS_REL, 1},
	    {"comparator", TAGS_MATCH, 2}, {"all", TAGS_PART, 4},       {"localpart", TAGS_PART, 4},
	    {"domain", TAGS_PART, 4},      {"user", TAGS_SUBADDR, 4},   {"detail", TAGS_SUBADDR, 4},
	    {"over", TAGS_SIZE, 8},        {"under", TAGS_SIZE, 8},     {"copy", TAGS_COPY, 16},
	    {"create", TAGS_CREATE, 32},   {"flags", TAGS_FLAGS, 64},
	    {"days", TAGS_VACATION, 128},  {"seconds", TAGS_VACSEC, 128},
	    {"subject", TAGS_VACATION, 256}, {"from", TAGS_VACATION, 512},
	    {"addresses", TAGS_VACATION, 1024}, {"mime", TAGS_VACATION, 2048},
	    {"handle", TAGS_VACATION, 4096},
	    {"lower", TAGS_SET, 8192},       {"upper", TAGS_SET, 8192},
	    {"lowerfirst", TAGS_SET, 16384}, {"upperfirst", TAGS_SET, 16384},
	    {"quotewildcard", TAGS_SET, 32768}, {"length", TAGS_SET, 65536},
	    {"raw", TAGS_BODY, 131072},      {"content", TAGS_BODY, 131072},
	    {"text", TAGS_BODY, 131072},
	    {"index", TAGS_INDEX, 262144},   {"last", TAGS_INDEX, 524288},
	    {"zone", TAGS_ZONE, 1048576},    {"originalzone", TAGS_ORIGZONE, 1048576},
	    {"handle", TAGS_DUPLICATE, 4096}, {"seconds", TAGS_DUPLICATE, 128},
	    {"last", TAGS_DUPLICATE, 524288}, {"header", TAGS_DUPLICATE, 2097152},
	    {"uniqueid", TAGS_DUPLICATE, 2097152},
	    {"last", TAGS_ADDLAST, 524288},  {"index", TAGS_DELINDEX, 262144},
	    {"last", TAGS_DELINDEX, 524288},
	    {"personal", TAGS_INCLUDE, 4194304}, {"global", TAGS_INCLUDE, 4194304},
	    {"once", TAGS_INCLUDE, 8388608},     {"optional", TAGS_INCLUDE, 16777216},
	    {"percent", TAGS_PERCENT, 33554432},
	};
	size_t i;
	for (i = 0; i < sizeof tags / sizeof tags[0]; i++)
		if (!strcasecmp(tags[i].name, name) && (tags[i].group & allowed))
			break;
	if (i == sizeof tags / sizeof tags[0])
		return sieve_fail(p->err, line, col, "unknown tagged argument ':%s' for %s", name,
				  n->def->name);
	if (*seen & tags[i].once)
		return sieve_fail(p->err, line, col,
				  "tagged argument ':%s' given twice or "
				  "conflicting",
				  name);
	*seen |= tags[i].once;
	if (next(p) < 0)
		return -1;
	const char *t = tags[i].name;
	if (!strcmp(t, "is"))
		n->match = MATCH_IS;
	else if (!strcmp(t, "contains"))
		n->match = MATCH_CONTAINS;
	else if (!strcmp(t, "matches"))
		n->match = MATCH_MATCHES;
	else if (!strcmp(t, "count") || !strcmp(t, "value")) {
		static const char *const rels[] = {"gt", "ge", "lt", "le", "eq", "ne"};
		n->match = !strcmp(t, "count") ? MATCH_COUNT : MATCH_VALUE;
		if (p->tok.type != TOK_STRING)
			return fail_tok(p, "a relational operator");
		size_t r;
		for (r = 0; r < sizeof rels / sizeof rels[0]; r++)
			if (!strcasecmp(p->tok.str, rels[r]))
				break;
		if (r == sizeof rels / sizeof rels[0])
			return sieve_fail(p->err, p->tok.line, p->tok.col,
					  "unknown relational operator \"%.32s\"", p->tok.str);
		n->rel = (enum sieve_rel)r;
		return next(p);
	}
	else if (!strcmp(t, "all"))
		n->part = PART_ALL;
	else if (!strcmp(t, "localpart"))
		n->part = PART_LOCAL;
	else if (!strcmp(t, "domain"))
		n->part = PART_DOMAIN;
	else if (!strcmp(t, "user"))
		n->part = PART_USER;
	else if (!strcmp(t, "detail"))
		n->part = PART_DETAIL;
	else if (!strcmp(t, "copy"))
		n->copy = true;
	else if (!strcmp(t, "create"))
		n->create = true;
	else if (!strcmp(t, "mime"))
		n->mime = true;
	else if (!strcmp(t, "last"))
		n->last = true;
	else if (!strcmp(t, "originalzone"))
		n->origzone = true;
	else if (!strcmp(t, "personal") || !strcmp(t, "global"))
		n->inc_global = !strcmp(t, "global");
	else if (!strcmp(t, "once"))
		n->inc_once = true;
	else if (!strcmp(t, "optional"))
		n->inc_optional = true;
	else if (!strcmp(t, "percent"))
		n->percent = true;
	else if (!strcmp(t, "index")) {
		if (p->tok.type != TOK_NUMBER)
			return fail_tok(p, "a number");
		if (p->tok.num == 0)
			return sieve_fail(p->err, p->tok.line, p->tok.col,
					  ":index counts from 1");
		n->index = p->tok.num;
		return next(p);
	} else if (!strcmp(t, "header") || !strcmp(t, "uniqueid")) {
		if (p->tok.type != TOK_STRING)
			return fail_tok(p, "a string");
		n->dupid_header = !strcmp(t, "header");
		sieve_strlist_add(&n->dupid, p->tok.str, p->tok.len);
		return next(p);
	} else if (!strcmp(t, "zone")) {
		if (p->tok.type != TOK_STRING)
			return fail_tok(p, "a string");
		sieve_strlist_add(&n->zone, p->tok.str, p->tok.len);
		return next(p);
	} else if (!strcmp(t, "raw"))
		n->body = BODY_RAW;
	else if (!strcmp(t, "text"))
		n->body = BODY_TEXT;
	else if (!strcmp(t, "content")) {
		bool was_list;
		n->body = BODY_CONTENT;
		return parse_strlist(p, &n->content, &was_list);
	} else if (!strcmp(t, "lower"))
		n->mods |= MOD_LOWER;
	else if (!strcmp(t, "upper"))
		n->mods |= MOD_UPPER;
	else if (!strcmp(t, "lowerfirst"))
		n->mods |= MOD_LOWERFIRST;
	else if (!strcmp(t, "upperfirst"))
		n->mods |= MOD_UPPERFIRST;
	else if (!strcmp(t, "quotewildcard"))
		n->mods |= MOD_QUOTEWILDCARD;
	else if (!strcmp(t, "length"))
		n->mods |= MOD_LENGTH;
	else if (!strcmp(t, "days") || !strcmp(t, "seconds")) {
		n->has_period = true;
		n->period_seconds = !strcmp(t, "seconds");
		if (p->tok.type != TOK_NUMBER)
			return fail_tok(p, "a number");
		n->period = p->tok.num;
		return next(p);
	} else if (!strcmp(t, "subject") || !strcmp(t, "from") || !strcmp(t, "handle")) {
		if (p->tok.type != TOK_STRING)
			return fail_tok(p, "a string");
		struct sieve_strlist *l = !strcmp(t, "subject") ? &n->subject
					  : !strcmp(t, "from")  ? &n->from
								: &n->handle;
		sieve_strlist_add(l, p->tok.str, p->tok.len);
		return next(p);
	} else if (!strcmp(t, "addresses")) {
		bool was_list;
		return parse_strlist(p, &n->addresses, &was_list);
	}
	else if (!strcmp(t, "over") || !strcmp(t, "under")) {
		n->over = !strcmp(t, "over");
		if (p->tok.type != TOK_NUMBER)
			return fail_tok(p, "a number");
		n->number = p->tok.num;
		return next(p);
	} else if (!strcmp(t, "comparator")) {
		if (p->tok.type != TOK_STRING)
			return fail_tok(p, "a comparator name");
		if (!strcasecmp(p->tok.str, "i;octet"))
			n->cmp = CMP_OCTET;
		else if (!strcasecmp(p->tok.str, "i;ascii-casemap"))
			n->cmp = CMP_CASEMAP;
		else if (!strcasecmp(p->tok.str, "i;ascii-numeric") &&
			 (enabled_comparators(p) & (1u << CMP_NUMERIC)))
			n->cmp = CMP_NUMERIC;
		else if (!strcasecmp(p->tok.str, "i;ascii-numeric"))
			return sieve_fail(p->err, p->tok.line, p->tok.col,
					  "comparator \"i;ascii-numeric\" needs "
					  "comparator-i;ascii-numeric in require");
		else
			return sieve_fail(p->err, p->tok.line, p->tok.col,
					  "unknown comparator \"%s\"", p->tok.str);
		return next(p);
	} else if (!strcmp(t, "flags")) {
		bool was_list;
		n->has_flags = true;
		return parse_strlist(p, &n->flags, &was_list);
	}
	return 0;
}

/* Variables (RFC 5229): checks the references in every string of n and
 * notes whether it has any; the names n sets (set, and the variable
 * names of imap4flags) must be valid and stay below SIEVE_MAX_VARIABLES. */
static int check_variables(struct parser *p, struct sieve_node *n)
{
	const struct sieve_strlist *lists[] = {&n->flags,   &n->pos[0], &n->pos[1],
					       &n->pos[2],  &n->subject, &n->from,
					       &n->handle,  &n->addresses, &n->content,
					       &n->zone,    &n->dupid};
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
		for (size_t j = 0; j < lists[i]->n; j++)
			if (sieve_vars_check_string(lists[i]->s[j], n->line, n->col, p->include,
						    &n->has_vars, p->err) < 0)
				return -1;
	bool global = !strcmp(n->def->name, "global");
	bool sets = !strcmp(n->def->name, "set") || n->has_opt || global;
	for (size_t j = 0; sets && j < n->pos[0].n; j++) {
		const char *name = n->pos[0].s[j];
		bool in_ns = !global && p->include && sieve_var_global_name(name);
		if (!sieve_var_name_ok(name) && !in_ns)
			return sieve_fail(p->err, n->line, n->col,
					  "invalid variable name \"%.100s\"", name);
		if (in_ns)
			continue; /* a global: not one of this script's names */
		size_t k;
		for (k = 0; k < p->varnames.n; k++)
			if (!strcasecmp(p->varnames.s[k], name))
				break;
		/* RFC 6609: declared global before its first use */
		if (k < p->varnames.n && global && !p->globals[k])
			return sieve_fail(p->err, n->line, n->col,
					  "variable \"%.100s\" declared global after its use", name);
		if (k < p->varnames.n)
			continue;
		if (p->varnames.n >= SIEVE_MAX_VARIABLES)
			return sieve_fail(p->err, n->line, n->col, "more than %d variables",
					  SIEVE_MAX_VARIABLES);
		p->globals[p->varnames.n] = global;
		sieve_strlist_add(&p->varnames, name, strlen(name));
	}
	return 0;
}

/* arguments *(argument) [test / test-list], checked against n->def. */
static int parse_arguments(struct parser *p, struct sieve_node *n, size_t depth)
{
	unsigned seen = 0;
	size_t n_pos = 0, n_str = 0;
	const char *sig = n->def->sig;
	for (;;) {
		int line = p->tok.line, col = p->tok.col;
		if (p->tok.type == TOK_TAG) {
			if (n_pos > 0)
				return sieve_fail(p->err, line, col,
						  "tagged argument after positional ones");
			if (parse_tag(p, n, &seen) < 0)
				return -1;
			continue;
		}
		if (p->tok.type != TOK_STRING && p->tok.type != TOK_LBRACKET &&
		    p->tok.type != TOK_NUMBER)
			break;
		char want = sig[n_pos] == 'o' || sig[n_pos] == 'L' ? 'l' : sig[n_pos];
		if (want == '\0')
			return sieve_fail(p->err, line, col, "too many arguments for %s",
					  n->def->name);
		if (want == 'n') {
			if (p->tok.type != TOK_NUMBER)
				return fail_tok(p, "a number");
			n->number = p->tok.num;
			if (next(p) < 0)
				return -1;
		} else {
			bool was_list;
			if (p->tok.type == TOK_NUMBER)
				return fail_tok(p, want == 's' ? "a string" : "a string list");
			if (parse_strlist(p, &n->pos[n_str], &was_list) < 0)
				return -1;
			if (want == 's' && was_list)
				return sieve_fail(p->err, line, col,
						  "%s expects a string here, not a list",
						  n->def->name);
			n_str++;
		}
		n_pos++;
	}
	if (sig[0] == 'o') {
		/* the optional leading variable list (RFC 5232 3) */
		if (n_pos == strlen(sig) && !p->variables)
			return sieve_fail(p->err, n->line, n->col, "too many arguments for %s",
					  n->def->name);
		if (n_pos == strlen(sig)) {
			n->has_opt = true;
		} else if (n_pos + 1 == strlen(sig)) {
			for (size_t i = n_str; i > 0; i--)
				n->pos[i] = n->pos[i - 1];
			n->pos[0] = (struct sieve_strlist){NULL, 0};
			n_pos++;
		}
	}
	if (sig[n_pos] != '\0' && !(sig[n_pos] == 'L' && sig[n_pos + 1] == '\0'))
		return sieve_fail(p->err, p->tok.line, p->tok.col, "too few arguments for %s",
				  n->def->name);
	if (p->variables && check_variables(p, n) < 0)
		return -1;
	if ((n->def->tags & TAGS_SIZE) && !(seen & 8))
		return sieve_fail(p->err, n->line, n->col, "size needs :over or :under");
	if (n->last && n->index == 0 && (n->def->tags & (TAGS_INDEX | TAGS_DELINDEX)))
		return sieve_fail(p->err, n->line, n->col, ":last without :index");
	/* RFC 4790 9.1: i;ascii-numeric has no substring operation */
	if (n->cmp == CMP_NUMERIC && (n->match == MATCH_CONTAINS || n->match == MATCH_MATCHES))
		return sieve_fail(p->err, n->line, n->col,
				  "comparator i;ascii-numeric does not support :%s",
				  n->match == MATCH_CONTAINS ? "contains" : "matches");
	if (n->def->check != NULL && n->def->check(n, p->err) < 0)
		return -1;
	if (n->def->tests == 1) {
		n->tests = xcalloc(1, sizeof *n->tests);
		n->n_tests = 1;
		return parse_test(p, depth + 1, &n->tests[0]);
	}
	if (n->def->tests == 2) {
		if (p->tok.type != TOK_LPAREN)
			return fail_tok(p, "'('");
		if (next(p) < 0)
			return -1;
		for (;;) {
			n->tests = xreallocarray(n->tests, n->n_tests + 1, sizeof *n->tests);
			n->tests[n->n_tests] = NULL;
			n->n_tests++;
			if (parse_test(p, depth + 1, &n->tests[n->n_tests - 1]) < 0)
				return -1;
			if (p->tok.type == TOK_RPAREN)
				return next(p);
			if (p->tok.type != TOK_COMMA)
				return fail_tok(p, "',' or ')'");
			if (next(p) < 0)
				return -1;
		}
	}
	return 0;
}

static int parse_test(struct parser *p, size_t depth, struct sieve_node **out)
{
	*out = NULL;
	if (depth > p->lim->max_depth)
		return sieve_fail(p->err, p->tok.line, p->tok.col, "nested deeper than %zu",
				  p->lim->max_depth);
	if (p->tok.type != TOK_IDENT)
		return fail_tok(p, "a test");
	bool elsewhere;
	const struct sieve_def *d = find_def(p, p->tok.str, true, &elsewhere);
	if (d == NULL)
		return sieve_fail(p->err, p->tok.line, p->tok.col,
				  elsewhere ? "test '%s' needs its extension in require"
					    : "unknown test '%s'",
				  p->tok.str);
	struct sieve_node *n = xcalloc(1, sizeof *n);
	*out = n;
	n->def = d;
	n->line = p->tok.line;
	n->col = p->tok.col;
	n->cmp = CMP_CASEMAP;
	if (next(p) < 0)
		return -1;
	return parse_arguments(p, n, depth);
}

static int parse_block(struct parser *p, size_t depth, struct sieve_node **first);

/* ---- ihave (RFC 5463) ---- */

/* The extensions enabled around an ihave-guarded block. */
struct guard {
	bool enabled[32];
	bool include;
};

/* The table index of extension name, or sieve_ext_count. */
static size_t ext_index(const char *name)
{
	size_t e;
	for (e = 1; e < sieve_ext_count; e++)
		if (!strcmp(sieve_ext_table[e]->name, name))
			break;
	return e;
}

static void enable(struct parser *p, size_t e)
{
	p->enabled[e] = true;
	if (sieve_ext_table[e] == &sieve_ext_include)
		p->include = true;
}

/* For the block of n (an if or elsif): -1 no ihave guards it; 1 every
 * extension its ihave tests name (n's test, or the tests of an allof
 * that is n's test) is supported and now enabled (*g holds what was
 * before); 0 one is not. */
static int ihave_guard(struct parser *p, const struct sieve_node *n, struct guard *g)
{
	if (n->n_tests != 1)
		return -1;
	const struct sieve_node *t = n->tests[0];
	struct sieve_node *const *list = n->tests;
	size_t count = 1;
	if (!strcmp(t->def->name, "allof")) {
		list = t->tests;
		count = t->n_tests;
	}
	int r = -1;
	for (size_t i = 0; i < count && r != 0; i++) {
		if (strcmp(list[i]->def->name, "ihave") != 0)
			continue;
		r = 1;
		for (size_t k = 0; k < list[i]->pos[0].n; k++)
			if (!sieve_ihave_ok(list[i]->pos[0].s[k]))
				r = 0;
	}
	if (r <= 0)
		return r;
	memcpy(g->enabled, p->enabled, sizeof g->enabled);
	g->include = p->include;
	for (size_t i = 0; i < count; i++)
		if (!strcmp(list[i]->def->name, "ihave"))
			for (size_t k = 0; k < list[i]->pos[0].n; k++)
				enable(p, ext_index(list[i]->pos[0].s[k]));
	return 1;
}

static void ihave_end(struct parser *p, const struct guard *g)
{
	memcpy(p->enabled, g->enabled, sizeof p->enabled);
	p->include = g->include;
}

static int skip_test(struct parser *p, size_t depth);

/* Arguments of any kind, then an optional test or test list (syntax
 * only: RFC 5228 8.2). */
static int skip_arguments(struct parser *p, size_t depth)
{
	for (;;) {
		bool was_list;
		struct sieve_strlist l = {NULL, 0};
		if (p->tok.type == TOK_TAG || p->tok.type == TOK_NUMBER) {
			if (next(p) < 0)
				return -1;
		} else if (p->tok.type == TOK_STRING || p->tok.type == TOK_LBRACKET) {
			int rc = parse_strlist(p, &l, &was_list);
			sieve_strlist_free(&l);
			if (rc < 0)
				return -1;
		} else {
			break;
		}
	}
	if (p->tok.type == TOK_IDENT)
		return skip_test(p, depth + 1);
	if (p->tok.type != TOK_LPAREN)
		return 0;
	for (;;) {
		if (next(p) < 0 || skip_test(p, depth + 1) < 0)
			return -1;
		if (p->tok.type == TOK_RPAREN)
			return next(p);
		if (p->tok.type != TOK_COMMA)
			return fail_tok(p, "',' or ')'");
	}
}

static int skip_test(struct parser *p, size_t depth)
{
	if (depth > p->lim->max_depth)
		return sieve_fail(p->err, p->tok.line, p->tok.col, "nested deeper than %zu",
				  p->lim->max_depth);
	if (p->tok.type != TOK_IDENT)
		return fail_tok(p, "a test");
	if (next(p) < 0)
		return -1;
	return skip_arguments(p, depth);
}

/* Commands up to '}' or the end, read for syntax only. */
static int skip_commands(struct parser *p, size_t depth)
{
	while (p->tok.type != TOK_EOF && p->tok.type != TOK_RBRACE) {
		if (p->tok.type != TOK_IDENT)
			return fail_tok(p, "a command");
		if (next(p) < 0 || skip_arguments(p, depth) < 0)
			return -1;
		if (p->tok.type == TOK_SEMI) {
			if (next(p) < 0)
				return -1;
			continue;
		}
		if (p->tok.type != TOK_LBRACE)
			return fail_tok(p, "';'");
		if (depth + 1 > p->lim->max_depth)
			return sieve_fail(p->err, p->tok.line, p->tok.col, "nested deeper than %zu",
					  p->lim->max_depth);
		if (next(p) < 0 || skip_commands(p, depth + 1) < 0)
			return -1;
		if (p->tok.type != TOK_RBRACE)
			return fail_tok(p, "'}'");
		if (next(p) < 0)
			return -1;
	}
	return 0;
}

static int parse_command(struct parser *p, size_t depth, struct sieve_node **out,
			 struct sieve_node *prev)
{
	*out = NULL;
	if (p->tok.type != TOK_IDENT)
		return fail_tok(p, "a command");
	int line = p->tok.line, col = p->tok.col;
	bool is_alt = !strcasecmp(p->tok.str, "elsif") || !strcasecmp(p->tok.str, "else");
	if (is_alt) {
		bool ok = prev != NULL && (!strcmp(prev->def->name, "if"));
		if (ok) {
			while (prev->alt != NULL)
				prev = prev->alt;
			ok = strcmp(prev->def->name, "else") != 0;
		}
		if (!ok)
			return sieve_fail(p->err, line, col, "%s without a preceding if",
					  p->tok.str);
	}
	bool is_require = !strcasecmp(p->tok.str, "require");
	if (is_require && p->past_require)
		return sieve_fail(p->err, line, col, "require must come before other commands");
	if (!is_require)
		p->past_require = true;
	bool elsewhere;
	const struct sieve_def *d = find_def(p, p->tok.str, false, &elsewhere);
	if (d == NULL)
		return sieve_fail(p->err, line, col,
				  elsewhere ? "command '%s' needs its extension in require"
					    : "unknown command '%s'",
				  p->tok.str);
	if (!strcmp(d->name, "global") && !p->variables)
		return sieve_fail(p->err, line, col, "global needs \"variables\" in require");
	struct sieve_node *n = xcalloc(1, sizeof *n);
	n->def = d;
	n->line = line;
	n->col = col;
	n->cmp = CMP_CASEMAP;
	if (is_alt) {
		prev->alt = n; /* owned by the if chain */
	} else {
		*out = n;
	}
	if (next(p) < 0)
		return -1;
	if (parse_arguments(p, n, depth) < 0)
		return -1;
	if (is_require) {
		for (size_t i = 0; i < n->pos[0].n; i++) {
			size_t e;
			for (e = 1; e < sieve_ext_count; e++)
				if (!strcmp(sieve_ext_table[e]->name, n->pos[0].s[i]))
					break;
			if (e == sieve_ext_count)
				return sieve_fail(p->err, line, col, "unsupported extension \"%s\"",
						  n->pos[0].s[i]);
			p->enabled[e] = true;
			if (sieve_ext_table[e] == &sieve_ext_variables)
				p->variables = true;
			if (sieve_ext_table[e] == &sieve_ext_include)
				p->include = true;
		}
	}
	if (d->block) {
		if (p->tok.type != TOK_LBRACE)
			return fail_tok(p, "'{'");
		if (depth + 1 > p->lim->max_depth)
			return sieve_fail(p->err, p->tok.line, p->tok.col, "nested deeper than %zu",
					  p->lim->max_depth);
		if (next(p) < 0)
			return -1;
		/* ihave (RFC 5463 4): the block of a test that checks for
		 * extensions may use them; if one is missing it is only read
		 * for syntax and never runs */
		struct guard g;
		int have = ihave_guard(p, n, &g);
		int rc = have == 0 ? skip_commands(p, depth + 1) : parse_block(p, depth + 1, &n->block);
		if (have > 0)
			ihave_end(p, &g);
		if (rc < 0)
			return -1;
		if (p->tok.type != TOK_RBRACE)
			return fail_tok(p, "'}'");
		return next(p);
	}
	if (p->tok.type != TOK_SEMI)
		return fail_tok(p, "';'");
	return next(p);
}

/* commands up to '}' or the end. */
static int parse_block(struct parser *p, size_t depth, struct sieve_node **first)
{
	struct sieve_node *last = NULL;
	*first = NULL;
	while (p->tok.type != TOK_EOF && p->tok.type != TOK_RBRACE) {
		struct sieve_node *n;
		int rc = parse_command(p, depth, &n, last);
		if (n != NULL) {
			if (last == NULL)
				*first = n;
			else
				last->next = n;
			last = n;
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

const struct sieve_limits sieve_default_limits = {
    .max_script = 1024 * 1024,
    .max_depth = 64,
    .max_string = 64 * 1024,
    .max_actions = 32,
    .max_redirects = 4,
    .max_steps = 100000,
    .max_body = 1024 * 1024,
};

int sieve_compile(const char *src, size_t n, const struct sieve_limits *lim,
		  struct sieve_script **out, struct sieve_error *err)
{
	*out = NULL;
	memset(err, 0, sizeof *err);
	if (lim == NULL)
		lim = &sieve_default_limits;
	if (n > lim->max_script)
		return sieve_fail(err, 1, 1, "script larger than %zu bytes", lim->max_script);
	struct parser p;
	memset(&p, 0, sizeof p);
	p.err = err;
	p.lim = lim;
	sieve_lex_init(&p.lx, src, n, lim->max_string, err);
	struct sieve_script *s = xcalloc(1, sizeof *s);
	s->lim = *lim;
	int rc = next(&p);
	if (rc == 0)
		rc = parse_block(&p, 0, &s->top);
	if (rc == 0 && p.tok.type != TOK_EOF)
		rc = fail_tok(&p, "a command");
	free(p.tok.str);
	sieve_strlist_free(&p.varnames);
	s->variables = p.variables;
	if (rc < 0) {
		sieve_script_free(&s);
		return -1;
	}
	*out = s;
	return 0;
}
