/*
 * fuzz-spam-token.c - libFuzzer target for src/spam/spam-token.c.
 *
 * Tokenizes the input as a message and checks the bounds of
 * spam-token.h: at most SPAM_TOKEN_MAX tokens, each non-empty, at most
 * SPAM_TOKEN_LEN_MAX bytes, no control bytes, distinct and sorted; and
 * runs the header and structure rules (spam-rules.c) on it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spam-rules.h"
#include "spam-token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spam_tokens t;
	spam_token_message(&t, (const char *)data, size);
	if (t.n > SPAM_TOKEN_MAX)
		abort();
	for (size_t i = 0; i < t.n; i++) {
		size_t len = strlen(t.v[i]);
		if (len == 0 || len > SPAM_TOKEN_LEN_MAX)
			abort();
		for (size_t k = 0; k < len; k++)
			if ((unsigned char)t.v[i][k] < 0x20 || t.v[i][k] == ' ')
				abort();
		if (i > 0 && strcmp(t.v[i - 1], t.v[i]) >= 0)
			abort();
	}
	spam_token_free(&t);
	static const struct spam_rule_weights w = {1, 2, 4};
	struct spam_rule_hit hits[SPAM_RULES_MAX];
	size_t n = spam_rules_check((const char *)data, size, 1796619600, &w, hits);
	if (n > SPAM_RULES_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if (hits[i].name == NULL || hits[i].points10 <= 0)
			abort();
	return 0;
}
