/*
 * fuzz-dmarc.c - libFuzzer target for src/mailauth/dmarc.c.
 *
 * Parses the input as one DMARC record and, split at NUL bytes, as a TXT
 * RRset, and checks what the parser promises: an OK record has pct <= 100,
 * policies in range, URI strings NUL-terminated inside their buffers and
 * no more URIs than the arrays hold; anything else comes back cleared.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct dmarc_record *r)
{
	if (r->pct > 100 || r->p > DMARC_POLICY_REJECT || r->sp > DMARC_POLICY_REJECT)
		abort();
	if (r->n_rua > DMARC_MAX_URIS || r->n_ruf > DMARC_MAX_URIS)
		abort();
	for (size_t i = 0; i < r->n_rua; i++)
		if (strnlen(r->rua[i].uri, sizeof r->rua[i].uri) == sizeof r->rua[i].uri ||
		    strchr(r->rua[i].uri, ':') == NULL)
			abort();
	for (size_t i = 0; i < r->n_ruf; i++)
		if (strnlen(r->ruf[i].uri, sizeof r->ruf[i].uri) == sizeof r->ruf[i].uri)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record r;
	const char *p = (const char *)data;
	if (dmarc_record_parse(p, size, &r) == DMARC_PARSE_OK)
		check(&r);
	else if (r.n_rua != 0 || r.pct != 0)
		abort();

	const char *txt[8];
	size_t len[8], n = 0, start = 0;
	for (size_t i = 0; i <= size && n < 8; i++) {
		if (i == size || data[i] == 0) {
			txt[n] = p + start;
			len[n++] = i - start;
			start = i + 1;
		}
	}
	if (dmarc_select(txt, len, n, &r) == DMARC_SELECT_FOUND)
		check(&r);
	return 0;
}
