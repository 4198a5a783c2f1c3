/*
 * fuzz-jmap-email-create.c - libFuzzer target for the message builder of
 * JMAP Email/set create (src/jmap/jmap-email-create.c, with
 * src/mail/mime-build.c).
 *
 * The input is the JSON of one Email create object.  When the builder
 * accepts it, its promises are checked: lines end in CRLF only, no line
 * passes 998 octets, there is no NUL, and the header section ends in an
 * empty line before the body.  When it refuses, the SetError has a type.
 * Blob ids starting with "G" exist (a small message), others do not.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jmap-email-create.h"
#include "jmap-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int blob(void *ctx, const char *id, struct buf *out)
{
	if (id[0] != 'G')
		return 0;
	return buf_puts(out, "Subject: inner\r\n\r\nbody \xc3\xa9\r\n") == 0 ? 1 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[200];
	json_t *o = jmap_json_parse((const char *)data, size, JMAP_JSON_MAX_DEPTH, err, sizeof err);
	if (o == NULL)
		return 0;
	if (!json_is_object(o)) {
		json_decref(o);
		return 0;
	}
	struct buf out = BUF_INIT;
	json_t *e = jmap_email_build(o, blob, NULL, 1700000000, &out);
	if (e != NULL) {
		if (!json_is_string(json_object_get(e, "type")))
			abort();
		json_decref(e);
	} else {
		const char *m = buf_cstr(&out);
		size_t col = 0;
		if (memchr(m, '\0', out.len) != NULL || strstr(m, "\r\n\r\n") == NULL)
			abort();
		for (size_t i = 0; i < out.len; i++) {
			if (m[i] == '\r' && (i + 1 == out.len || m[i + 1] != '\n'))
				abort();
			if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
				abort();
			col = m[i] == '\n' ? 0 : col + 1;
			if (col > 999) /* 998 and the CR */
				abort();
		}
	}
	buf_free(&out);
	json_decref(o);
	return 0;
}
