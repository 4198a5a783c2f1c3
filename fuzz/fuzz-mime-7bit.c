/*
 * fuzz-mime-7bit.c - libFuzzer target for src/mail/mime-7bit.c.
 *
 * Converts the input; on success the result must be 7-bit with no line
 * over 998 octets, and converting it again must give it back unchanged
 * (a 7-bit message passes through as it is).  On -2 the reason must be
 * set.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime-7bit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so that ASan sees any read past the end. */
	char *msg = malloc(size ? size : 1);
	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	struct buf out;
	buf_init(&out, 16u << 20);
	char why[256];
	int rc = mime_to_7bit(msg, size, &out, why, sizeof why);
	if (rc == -2 && why[0] == '\0')
		abort();
	if (rc == 0) {
		size_t run = 0;
		for (size_t i = 0; i < out.len; i++) {
			unsigned char c = (unsigned char)out.data[i];
			if (c >= 0x80)
				abort();
			run = c == '\n' ? 0 : c == '\r' ? run : run + 1;
			if (run > 998)
				abort();
		}
		struct buf again;
		buf_init(&again, 16u << 20);
		if (mime_to_7bit(out.data ? out.data : "", out.len, &again, why, sizeof why) != 0 ||
		    again.len != out.len || (out.len && memcmp(again.data, out.data, out.len) != 0))
			abort();
		buf_free(&again);
	}
	buf_free(&out);
	free(msg);
	return 0;
}
