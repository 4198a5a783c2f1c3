/*
 * spam-rules.h - header and structure rules of the content stage
 * (docs/spam.md "Rules"): facts about a message that spam has and mail
 * rarely has, each with a weight from the config (0 turns it off).
 *
 *   MISSING_MESSAGE_ID     no Message-ID field (RFC 5322 3.6.4: SHOULD)
 *   FUTURE_DATE            a Date more than SPAM_RULES_FUTURE_SLACK
 *                          seconds ahead of the receiving time
 *   EXECUTABLE_ATTACHMENT  a MIME part whose file name (Content-Type
 *                          name=, Content-Disposition filename=) ends in
 *                          an extension Windows runs (.exe, .scr, .js...)
 *
 * Spam layer, pure; reads the same bounded prefix as the tokenizer.
 */
#ifndef TERN_SPAM_RULES_H
#define TERN_SPAM_RULES_H

#include <stddef.h>
#include <stdint.h>

#define SPAM_RULES_MAX 3
#define SPAM_RULES_FUTURE_SLACK (24 * 3600)

struct spam_rule_weights {
	uint64_t missing_message_id, future_date, executable_attachment; /* points */
};

struct spam_rule_hit {
	const char *name; /* static */
	int points10;     /* tenths of a point */
};

/* Runs the rules on msg[0..len) received at now; writes the rules that
 * fire (and have a weight) into hits[0..SPAM_RULES_MAX) and returns how
 * many.  Never fails. */
size_t spam_rules_check(const char *msg, size_t len, int64_t now,
			const struct spam_rule_weights *w, struct spam_rule_hit *hits);

#endif
