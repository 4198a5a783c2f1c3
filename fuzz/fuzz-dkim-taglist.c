/*
 * fuzz-dkim-taglist.c - libFuzzer target for the DKIM tag-list parser and
 * the signature checks of src/mailauth/dkim.c: the input is used as a
 * tag list and as the value of a DKIM-Signature field verified against a
 * fixed revoked key (no crypto succeeds; every path must stay bounded).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dkim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lookup(void *ctx, const char *selector, const char *domain, struct buf *rec, char *err,
		  size_t errsz)
{
	return buf_puts(rec, "v=DKIM1; p=");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_taglist tl;
	char err[DKIM_ERR_MAX];
	err[0] = '\0';
	if (dkim_taglist_parse((const char *)data, size, &tl, err, sizeof err) < 0) {
		if (err[0] == '\0')
			abort();
	} else if (tl.n > DKIM_TAGS_MAX) {
		abort();
	}
	if (size > 4096)
		return 0;
	struct buf m = BUF_INIT;
	buf_puts(&m, "DKIM-Signature:");
	buf_append(&m, data, size);
	buf_puts(&m, "\r\nFrom: a@example.org\r\n\r\nbody\r\n");
	struct dkim_result res[DKIM_SIGS_MAX];
	int n = dkim_verify(m.data, m.len, 0, lookup, NULL, res, DKIM_SIGS_MAX, err, sizeof err);
	for (int i = 0; i < n; i++)
		if (res[i].status == DKIM_PASS)
			abort();
	buf_free(&m);
	return 0;
}
