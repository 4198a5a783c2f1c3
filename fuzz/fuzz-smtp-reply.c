/*
 * fuzz-smtp-reply.c - libFuzzer target for src/queue/smtp-reply.c, the
 * parser of what remote SMTP servers answer our client.
 *
 * Splits the input into lines (LF, a CR before it removed, as the line
 * reader does) and feeds them to the reply parser, starting a new reply
 * after each complete or malformed one; for each complete reply it reads
 * the EHLO keywords, the enhanced status code and the one-line form, and
 * checks the promises of smtp-reply.h: the code is 200..599, the text is
 * NUL-terminated within its bound, the one-line form is printable ASCII.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_done(const struct smtp_reply *r)
{
	if (r->code < 200 || r->code > 599 || r->n_lines == 0 || r->n_lines > SMTP_REPLY_MAX_LINES)
		abort();
	if (r->text_len >= sizeof r->text || strlen(r->text) > r->text_len)
		abort();
	struct smtp_caps c;
	smtp_reply_caps(r, &c);
	char st[16];
	if (smtp_reply_enhanced(r->text, st) == 1) {
		if (st[0] != r->text[0] || strlen(st) < 5)
			abort();
	} else if (st[0] != '\0') {
		abort();
	}
	char one[600];
	smtp_reply_oneline(r, one, sizeof one);
	for (const char *p = one; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_reply r;
	smtp_reply_init(&r);
	size_t i = 0;
	while (i < size) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t end = nl ? (size_t)(nl - data) : size;
		size_t n = end - i;
		if (n > 0 && data[i + n - 1] == '\r')
			n--;
		/* A copy of exactly n bytes, so ASan sees any overread. */
		char *line = malloc(n ? n : 1);
		if (line == NULL)
			return 0;
		memcpy(line, data + i, n);
		enum smtp_reply_status st = smtp_reply_feed(&r, line, n);
		free(line);
		if (st == SMTP_REPLY_DONE)
			check_done(&r);
		if (st != SMTP_REPLY_MORE)
			smtp_reply_init(&r);
		i = end + 1;
	}
	return 0;
}
