/*
 * fuzz-dkim-keyrec.c - libFuzzer target for the DKIM key record parser of
 * src/mailauth/dkim.c.  A failed parse must say why; a good one must hold
 * a key (or be revoked) of a sane size.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_keyrec k;
	char err[DKIM_ERR_MAX];
	err[0] = '\0';
	if (dkim_keyrec_parse((const char *)data, size, &k, err, sizeof err) < 0) {
		if (err[0] == '\0' || k.pub != NULL)
			abort();
		return 0;
	}
	if (k.revoked != (k.pub == NULL) || k.pub_len > size)
		abort();
	dkim_keyrec_clear(&k);
	return 0;
}
