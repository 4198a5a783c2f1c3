/*
 * fuzz-sortkey.c - libFuzzer target for src/mail/sortkey.c.
 *
 * Runs the input through the base subject extraction, the sent date
 * parser, the Message ID scanner and case folding, and checks their
 * contracts: the base subject is no longer than the (bounded) input, has
 * no tab, CR, LF, double space or leading/trailing space, and is a fixed
 * point of the extraction; the scanner always moves forward and ends at
 * the end; Message IDs are bounded, hold no NUL
 * and have a last '@' that is neither first nor last.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sortkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct buf b = BUF_INIT, again = BUF_INIT;
	bool reply, reply2;

	if (sortkey_base_subject(s, size, &b, &reply) < 0)
		abort();
	size_t cap = size < SORTKEY_SUBJECT_MAX ? size : SORTKEY_SUBJECT_MAX;
	if (b.len > cap)
		abort();
	for (size_t i = 0; i < b.len; i++) {
		char c = b.data[i];
		if (c == '\t' || c == '\r' || c == '\n')
			abort();
		if (c == ' ' && (i == 0 || i + 1 == b.len || b.data[i + 1] == ' '))
			abort();
	}
	/* what is left is a base subject already, unless it is a blob, or a
	 * "[fwd:...]", that had to stay because nothing would follow it */
	if (sortkey_base_subject(b.data ? b.data : "", b.len, &again, &reply2) < 0)
		abort();
	if (again.len > b.len)
		abort();
	if (!reply2 && (again.len != b.len || (b.len && memcmp(again.data, b.data, b.len))))
		abort();

	int64_t t;
	(void)sortkey_sent_date(s, size, &t);

	size_t pos = 0, prev = 0;
	int r;
	buf_reset(&b);
	while ((r = sortkey_msgid_next(s, size, &pos, &b)) == 1) {
		if (pos <= prev || pos > size || b.len == 0 || b.len > SORTKEY_MSGID_MAX)
			abort();
		/* the last '@' splits id-left (a quoted one may hold '@') */
		const char *at = memrchr(b.data, '@', b.len);
		if (at == NULL || at == b.data || b.data[b.len - 1] == '@' ||
		    memchr(b.data, '\0', b.len))
			abort();
		prev = pos;
		buf_reset(&b);
	}
	if (r != 0 || pos != size)
		abort();

	buf_reset(&b);
	if (sortkey_fold(s, size, &b) < 0 || b.len > size + size / 2 + 1)
		abort();
	buf_free(&b);
	buf_free(&again);
	return 0;
}
