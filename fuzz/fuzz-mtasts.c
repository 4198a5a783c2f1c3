/*
 * fuzz-mtasts.c - libFuzzer target for src/queue/mta-sts.c.
 *
 * The input is parsed as an MTA-STS policy (RFC 8461 3.2) and as an
 * "_mta-sts" TXT record (3.1).  What must hold: a parsed policy has at
 * most MTASTS_MAX_MX patterns, each NUL-terminated, lower-case and short
 * enough, a known mode and a max_age within the RFC's maximum, and the
 * pattern matcher runs on every pattern; a valid record's id is 1 to 32
 * letters and digits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta-sts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mtasts_policy p;
	char err[200];
	if (mtasts_policy_parse((const char *)data, size, &p, err, sizeof err) == 0) {
		if (p.n_mx > MTASTS_MAX_MX || p.max_age > MTASTS_MAX_AGE_MAX ||
		    (p.mode != MTASTS_NONE && p.mode != MTASTS_TESTING && p.mode != MTASTS_ENFORCE))
			abort();
		for (size_t i = 0; i < p.n_mx; i++) {
			size_t n = strnlen(p.mx[i], sizeof p.mx[i]);
			if (n == 0 || n > 255)
				abort();
			for (size_t k = 0; k < n; k++)
				if (p.mx[i][k] >= 'A' && p.mx[i][k] <= 'Z')
					abort();
			/* a host equal to a non-wildcard pattern matches it */
			if (p.mx[i][0] != '*' && !mtasts_mx_match(&p, p.mx[i]))
				abort();
		}
		char list[1024];
		mtasts_mx_list(&p, list, sizeof list);
	} else if (strnlen(err, sizeof err) == 0) {
		abort(); /* a refusal always says why */
	}
	char id[MTASTS_ID_MAX + 1];
	int r = mtasts_txt_parse((const char *)data, size, id);
	if (r == 1) {
		size_t n = strnlen(id, sizeof id);
		if (n == 0 || n > MTASTS_ID_MAX)
			abort();
	} else if (r != 0 && r != -1) {
		abort();
	}
	return 0;
}
