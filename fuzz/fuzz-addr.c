/*
 * fuzz-addr.c - libFuzzer target for src/mail/addr.c.
 *
 * Parses the input as a path (with and without SMTPUTF8, with and without
 * "<>" allowed) and as a bare mailbox, and checks what the parser promises:
 * results stay inside their buffers, the UTF-8 flag only widens what is
 * accepted, and a parsed mailbox formats to a string that parses back to
 * the same address.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addr(const struct addr *a, bool utf8)
{
	size_t ll = strnlen(a->local, sizeof a->local);
	size_t dl = strnlen(a->domain, sizeof a->domain);
	if (ll == sizeof a->local || dl == sizeof a->domain)
		abort(); /* not NUL-terminated */
	if (ll == 0 || dl == 0 || ll > ADDR_LOCAL_MAX || dl > ADDR_DOMAIN_MAX)
		abort();
	if (a->domain_is_literal != (a->domain[0] == '['))
		abort();
	if (a->has_utf8 && !utf8)
		abort();
	if (!addr_utf8_valid(a->local, ll) || !addr_utf8_valid(a->domain, dl))
		abort();
	for (size_t i = 0; i < dl && !a->domain_is_literal; i++)
		if (a->domain[i] >= 'A' && a->domain[i] <= 'Z')
			abort();

	/* round trip through addr_format */
	char buf[ADDR_LOCAL_MAX + 3 + 1 + ADDR_DOMAIN_MAX + 1];
	int len = addr_format(a, buf, sizeof buf);
	if (len < 0 || (size_t)len != ll + 1 + dl)
		abort();
	struct addr b;
	if (addr_parse_mailbox(buf, (size_t)len, utf8, &b) != ADDR_OK)
		abort();
	if (strcmp(a->local, b.local) != 0 || strcmp(a->domain, b.domain) != 0 ||
	    a->domain_is_literal != b.domain_is_literal || a->has_utf8 != b.has_utf8)
		abort();
	/* too small a buffer fails cleanly */
	if (addr_format(a, buf, (size_t)len) != -1 || buf[0] != '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	enum addr_error res[2];

	for (int utf8 = 0; utf8 <= 1; utf8++) {
		for (int allow_null = 0; allow_null <= 1; allow_null++) {
			struct addr a;
			bool is_null = false;
			size_t used = 0;
			enum addr_error e =
				addr_parse_path(p, size, utf8, allow_null, &a, &is_null, &used);
			if (e != ADDR_OK)
				continue;
			if (used < 2 || used > size || used > ADDR_PATH_MAX || p[used - 1] != '>')
				abort();
			if (is_null) {
				if (!allow_null || used != 2 || a.local[0] != '\0')
					abort();
				continue;
			}
			check_addr(&a, utf8);
			/* the same path, cut right after its end, parses the same */
			struct addr b;
			size_t used2;
			if (addr_parse_path(p, used, utf8, allow_null, &b, NULL, &used2) != ADDR_OK ||
			    used2 != used || memcmp(&a, &b, sizeof a) != 0)
				abort();
		}
		struct addr a;
		res[utf8] = addr_parse_mailbox(p, size, utf8, &a);
		if (res[utf8] == ADDR_OK)
			check_addr(&a, utf8);
		else if (a.local[0] != '\0' || a.domain[0] != '\0')
			abort(); /* cleared on error */
	}
	/* SMTPUTF8 only widens: what parses without it parses with it */
	if (res[0] == ADDR_OK && res[1] != ADDR_OK)
		abort();
	if (res[0] != ADDR_ERR_UTF8 && res[0] != res[1])
		abort();
	(void)addr_utf8_valid(p, size);
	return 0;
}
