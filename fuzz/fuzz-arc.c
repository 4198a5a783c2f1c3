/*
 * fuzz-arc.c - libFuzzer target for the ARC set parser and validator of
 * src/mailauth/arc.c: the input is a header section (a body is added),
 * its ARC fields are found and checked, the keys listed, and the chain
 * validated against a fixed Ed25519 key no input can sign for.  Every
 * path must stay bounded; nothing may pass.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lookup(void *ctx, const char *selector, const char *domain, struct buf *rec, char *err,
		  size_t errsz)
{
	if (strcmp(selector, "gone") == 0)
		return buf_puts(rec, "v=DKIM1; p=");
	return buf_puts(rec, "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct buf m = BUF_INIT;
	buf_append(&m, data, size);
	buf_puts(&m, "\r\n\r\nbody\r\n");
	struct arc_chain *c = malloc(sizeof *c);
	char err[DKIM_ERR_MAX];
	err[0] = '\0';
	int n = arc_chain_parse(m.data, m.len, c, err, sizeof err);
	if (c->n > ARC_SETS_MAX || (n < 0 && err[0] == '\0') || n > ARC_SETS_MAX)
		abort();
	free(c);
	struct arc_key keys[ARC_KEYS_MAX];
	if (arc_keys_needed(m.data, m.len, keys, ARC_KEYS_MAX) > ARC_KEYS_MAX)
		abort();
	struct arc_result r;
	arc_validate(m.data, m.len, 0, lookup, NULL, &r);
	if (r.status == ARC_PASS || (r.status == ARC_FAIL && r.reason[0] == '\0'))
		abort();
	buf_free(&m);
	return 0;
}
