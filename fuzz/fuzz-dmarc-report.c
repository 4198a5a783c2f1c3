/*
 * fuzz-dmarc-report.c - libFuzzer target for dmarc_report_parse
 * (src/mailauth/dmarc-report.c), the reader of the DMARC aggregate
 * reports other servers send us (`tern dmarc reports`): any XML.
 *
 * Checks: the result is 0 or -1; on 0 every kept string is terminated
 * within its field, the record count is within the bound, and the policy
 * domain is not empty.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmarc-report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dmarc_report_in r;
	int rc = dmarc_report_parse((const char *)data, size, &r);
	if (rc != 0 && rc != -1)
		abort();
	if (rc != 0)
		return 0;
	if (r.domain[0] == '\0' || r.n > DMARC_REPORT_RECORDS_MAX ||
	    strnlen(r.org, sizeof r.org) == sizeof r.org || strnlen(r.id, sizeof r.id) == sizeof r.id)
		abort();
	for (size_t i = 0; i < r.n; i++)
		if (strnlen(r.rec[i].ip, sizeof r.rec[i].ip) == sizeof r.rec[i].ip ||
		    strnlen(r.rec[i].from, sizeof r.rec[i].from) == sizeof r.rec[i].from)
			abort();
	dmarc_report_in_free(&r);
	return 0;
}
