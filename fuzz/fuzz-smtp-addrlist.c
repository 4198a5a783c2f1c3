/*
 * fuzz-smtp-addrlist.c - libFuzzer target for smtp_parse_address_list
 * (src/smtp/smtp-parse.c), the From: address-list parser of submission.
 *
 * Checks the promises of smtp-parse.h: the count is -1 or 0..max, every
 * address is a NUL-terminated mailbox within the struct, and a smaller
 * max either gives the same addresses or -1 (never a silent truncation).
 * The same input as a header section goes through smtp_parse_from_domain
 * (the From: domain DMARC is about), whose answer must be a terminated
 * string.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *v = (const char *)data;
	static struct addr all[SMTP_MAX_HEADER_ADDRS], few[2];
	int n = smtp_parse_address_list(v, size, all, SMTP_MAX_HEADER_ADDRS);
	if (n < -1 || n > SMTP_MAX_HEADER_ADDRS)
		abort();
	for (int i = 0; i < n; i++) {
		size_t ll = strnlen(all[i].local, sizeof all[i].local);
		size_t dl = strnlen(all[i].domain, sizeof all[i].domain);
		if (ll == 0 || ll == sizeof all[i].local || dl == 0 || dl == sizeof all[i].domain)
			abort();
	}
	/* The DMARC From: domain of the same bytes taken as a header section. */
	char dom[ADDR_DOMAIN_MAX + 1];
	smtp_parse_from_domain(v, size, dom);
	if (strnlen(dom, sizeof dom) == sizeof dom)
		abort();
	int m = smtp_parse_address_list(v, size, few, 2);
	if (n >= 0 && n <= 2) {
		if (m != n)
			abort();
		for (int i = 0; i < m; i++)
			if (strcmp(few[i].local, all[i].local) != 0 ||
			    strcmp(few[i].domain, all[i].domain) != 0)
				abort();
	} else if (m != -1) {
		abort();
	}
	return 0;
}
