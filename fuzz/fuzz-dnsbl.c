/*
 * fuzz-dnsbl.c - libFuzzer target for the connection-stage parsers
 * (src/lib/dnsbl.c): the client's HELO/EHLO argument (dnsbl_helo_fault),
 * an address text (dnsbl_reverse) and a zone list (dnsbl_parse_zones).
 *
 * Checks: the HELO fault is NULL, "bare_ip" or "not_fqdn"; a reversed
 * address is NUL-terminated within its buffer and made of digits, hex
 * letters and dots; parsed zones are NUL-terminated, non-empty, lower-case,
 * and their weights within the bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsbl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[600];
	if (size >= sizeof text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	const char *f = dnsbl_helo_fault(text);
	if (f != NULL && strcmp(f, "bare_ip") != 0 && strcmp(f, "not_fqdn") != 0)
		abort();
	char rev[DNSBL_REVERSED_MAX];
	bool v6;
	if (dnsbl_reverse(text, rev, &v6) == 0) {
		size_t n = strnlen(rev, sizeof rev);
		if (n == sizeof rev || n == 0 || strspn(rev, "0123456789abcdef.") != n)
			abort();
	}
	struct dnsbl_zone z[4];
	char err[200];
	int n = dnsbl_parse_zones(text, 5, z, 4, err, sizeof err);
	if (n < -1 || n > 4)
		abort();
	for (int i = 0; i < n; i++) {
		size_t l = strnlen(z[i].name, sizeof z[i].name);
		if (l == 0 || l == sizeof z[i].name || z[i].weight < -DNSBL_WEIGHT_MAX ||
		    z[i].weight > DNSBL_WEIGHT_MAX)
			abort();
		for (size_t j = 0; j < l; j++)
			if (z[i].name[j] >= 'A' && z[i].name[j] <= 'Z')
				abort();
	}
	return 0;
}
