/*
 * sieve-ext-body.c - the "body" test (RFC 5173): body [COMPARATOR]
 * [MATCH-TYPE] [:raw / :content TYPES / :text] KEYS.
 *
 * :raw matches the undecoded body (after the header) as one string;
 * :content the MIME entities whose content type is in TYPES, each on its
 * own: a leaf's decoded body (text converted to UTF-8), a multipart's
 * prologue and epilogue, a message/rfc822 part's encapsulated header
 * (src/mail mime_body_walk); :text, the default, is :content "text".
 * Its :matches sets no match variables (RFC 5173 6).  Bounded: only the first sieve_limits.max_body
 * octets of the body (raw) or of the decoded text (all entities together) are looked at; the
 * message is walked once per run, however many body tests there are.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "sieve-private.h"
#include "xalloc.h"

static int collect(void *ctx, const char *ctype, const char *text, size_t len)
{
	struct sieve_run *r = ctx;
	sieve_strlist_add(&r->body_types, ctype, strlen(ctype));
	sieve_strlist_add(&r->body_texts, text, len);
	return 0;
}

static void body_load(struct sieve_run *r)
{
	if (r->body_loaded)
		return;
	r->body_loaded = true;
	struct mime_tree *t = mime_parse(r->in->msg, r->in->msg_len);
	size_t start, len;
	if (mime_section(t, NULL, 0, MIME_SECT_TEXT, &start, &len) == 1) {
		if (len > r->script->lim.max_body)
			len = r->script->lim.max_body;
		sieve_strlist_add(&r->body_raw, r->in->msg + start, len);
	} else {
		sieve_strlist_add(&r->body_raw, "", 0);
	}
	(void)mime_body_walk(t, r->script->lim.max_body, collect, r);
	mime_tree_free(&t);
}

/* RFC 5173 5: "" any type; "type" any subtype of it; "type/subtype"
 * exactly; a leading or trailing '/' or two slashes: nothing. */
static bool type_matches(const char *spec, const char *ctype)
{
	size_t n = strlen(spec);
	if (n == 0)
		return true;
	const char *slash = strchr(spec, '/');
	if (slash == NULL) {
		size_t tl = strcspn(ctype, "/");
		return tl == n && !strncasecmp(ctype, spec, n);
	}
	if (slash == spec || spec[n - 1] == '/' || strchr(slash + 1, '/') != NULL)
		return false;
	return !strcasecmp(spec, ctype);
}

static int run_body(struct sieve_run *r, const struct sieve_node *n)
{
	body_load(r);
	if (n->body == BODY_RAW)
		return sieve_match_any_nocapture(r, n, &r->body_raw, &n->pos[0]);
	static char text[] = "text";
	static char *text_list[] = {text};
	static const struct sieve_strlist text_only = {text_list, 1};
	const struct sieve_strlist *types = n->body == BODY_CONTENT ? &n->content : &text_only;
	struct sieve_strlist vals = {NULL, 0};
	for (size_t i = 0; i < r->body_types.n; i++)
		for (size_t k = 0; k < types->n; k++)
			if (type_matches(types->s[k], r->body_types.s[i])) {
				sieve_strlist_add(&vals, r->body_texts.s[i],
						  strlen(r->body_texts.s[i]));
				break;
			}
	bool m = sieve_match_any_nocapture(r, n, &vals, &n->pos[0]);
	sieve_strlist_free(&vals);
	return m;
}

static const struct sieve_def defs[] = {
    {"body", true, "l", 0, false, TAGS_MATCH | TAGS_BODY, run_body, NULL},
};

const struct sieve_ext sieve_ext_body = {"body", defs, 1, TAGS_BODY, 0};
