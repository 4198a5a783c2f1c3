/*
 * spam-rules.c - the rules of spam-rules.h.  The header is read with
 * src/mail's bounded parser; attachments' file names come from the
 * BODYSTRUCTURE the MIME parser builds (its parameter lists), so this
 * file parses no MIME itself.
 */
#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "header.h"
#include "mime.h"
#include "sortkey.h"
#include "spam-rules.h"
#include "spam-token.h"
#include "strutil.h"

#define STRUCTURE_MAX (1024u * 1024) /* BODYSTRUCTURE bytes looked at */

static const char *const exe_ext[] = {".exe", ".scr", ".com", ".bat", ".cmd", ".pif", ".js",
				      ".jse", ".vbs", ".vbe", ".wsf", ".hta", ".jar", ".msi",
				      ".cpl", ".lnk", ".ps1", NULL};

static bool exe_name(const char *p, size_t n)
{
	for (size_t i = 0; exe_ext[i]; i++) {
		size_t k = strlen(exe_ext[i]);
		if (n > k && strutil_eq_ci(p + n - k, k, exe_ext[i]))
			return true;
	}
	return false;
}

/* A quoted "name" or "filename" parameter of bs[0..n) with such a name. */
static bool has_exe(const char *bs, size_t n)
{
	static const char *const keys[] = {"\"name\" \"", "\"filename\" \""};
	for (size_t i = 0; i < n; i++) {
		if (bs[i] != '"')
			continue;
		for (int k = 0; k < 2; k++) {
			size_t kl = strlen(keys[k]);
			if (n - i < kl || !strutil_prefix_ci(bs + i, n - i, keys[k]))
				continue;
			const char *v = bs + i + kl;
			const char *end = memchr(v, '"', n - i - kl);
			if (end != NULL && exe_name(v, (size_t)(end - v)))
				return true;
		}
	}
	return false;
}

static void hit(struct spam_rule_hit *hits, size_t *n, const char *name, uint64_t weight)
{
	if (weight == 0 || *n >= SPAM_RULES_MAX)
		return;
	if (weight > 1000)
		weight = 1000;
	hits[(*n)++] = (struct spam_rule_hit){name, (int)weight * 10};
}

size_t spam_rules_check(const char *msg, size_t len, int64_t now,
			const struct spam_rule_weights *w, struct spam_rule_hit *hits)
{
	size_t n = 0;
	if (len > SPAM_TOKEN_SCAN_MAX)
		len = SPAM_TOKEN_SCAN_MAX;
	struct header h;
	if (header_parse(msg, len, &h) == HEADER_OK) {
		if (header_find(&h, "Message-ID") == NULL)
			hit(hits, &n, "MISSING_MESSAGE_ID", w->missing_message_id);
		const struct header_field *d = header_find(&h, "Date");
		int64_t t;
		if (d != NULL && sortkey_sent_date(d->value, d->value_len, &t) == 0 &&
		    t > now + SPAM_RULES_FUTURE_SLACK)
			hit(hits, &n, "FUTURE_DATE", w->future_date);
		header_free(&h);
	}
	if (w->executable_attachment > 0) {
		struct mime_tree *tree = mime_parse(msg, len);
		struct buf bs;
		buf_init(&bs, STRUCTURE_MAX);
		if (tree != NULL) {
			mime_imap_bodystructure(tree, true, &bs); /* a full buffer keeps its start */
			if (has_exe(bs.data ? bs.data : "", bs.len))
				hit(hits, &n, "EXECUTABLE_ATTACHMENT", w->executable_attachment);
		}
		buf_free(&bs);
		mime_tree_free(&tree);
	}
	return n;
}
