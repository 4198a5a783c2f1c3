/*
 * fuzz-mime.c - libFuzzer target for src/mail/mime*.c.
 *
 * Parses the input as a message and runs every builder on it: ENVELOPE,
 * BODY, BODYSTRUCTURE, the sections of the first parts at three levels
 * (each range must lie inside the message), HEADER.FIELDS(.NOT), BINARY,
 * the SEARCH helpers and RFC 2047 decoding of the input itself.  The
 * output of the structure builders must be balanced parentheses outside
 * strings, which catches a builder that stops half-way.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks that s is one balanced IMAP list, skipping quoted strings and
 * literals. */
static void check_balanced(const struct buf *b)
{
	const char *s = b->data;
	size_t n = b->len, i = 0;
	long depth = 0;

	if (n == 0 || s[0] != '(')
		abort();
	while (i < n) {
		char c = s[i++];
		if (c == '"') {
			while (i < n && s[i] != '"') {
				if (s[i] == '\\')
					i++;
				if (i >= n || s[i] == '\r' || s[i] == '\n')
					abort(); /* no line break in a quoted string */
				i++;
			}
			if (i >= n)
				abort();
			i++;
		} else if (c == '{') {
			size_t len = 0;
			while (i < n && s[i] >= '0' && s[i] <= '9')
				len = len * 10 + (size_t)(s[i++] - '0');
			if (i + 3 > n || s[i] != '}' || s[i + 1] != '\r' || s[i + 2] != '\n')
				abort();
			i += 3;
			if (len > n - i || memchr(s + i, '\0', len) != NULL)
				abort();
			i += len;
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (--depth < 0)
				abort();
			if (depth == 0 && i != n)
				abort();
		}
	}
	if (depth != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct mime_tree *t = mime_parse(msg, size);
	struct buf out = BUF_INIT;

	if (t == NULL)
		abort();
	if (mime_imap_envelope(t, &out) != 0)
		abort();
	check_balanced(&out);
	buf_reset(&out);
	if (mime_imap_bodystructure(t, true, &out) != 0)
		abort();
	check_balanced(&out);
	buf_reset(&out);
	if (mime_imap_bodystructure(t, false, &out) != 0)
		abort();
	check_balanced(&out);

	/* parts 1..3 at levels 1..3, every section kind */
	unsigned path[3];
	for (unsigned a = 0; a <= 3; a++) {
		for (unsigned b = 0; b <= 3; b++) {
			for (unsigned c = 1; c <= 3; c++) {
				size_t n = 0;
				if (a > 0)
					path[n++] = a;
				if (b > 0)
					path[n++] = b;
				path[n++] = c;
				if (a == 0 && b > 0)
					continue;
				for (int k = MIME_SECT_BODY; k <= MIME_SECT_MIME; k++) {
					size_t st = 0, len = 0;
					int r =
					    mime_section(t, path, n, (enum mime_sect)k, &st, &len);
					if (r != 0 && r != 1)
						abort();
					if (r == 1 && (st > size || len > size - st))
						abort();
					if (r == 1 && k == MIME_SECT_HEADER) {
						static const char *const names[] = {"subject",
										    "from"};
						buf_reset(&out);
						if (mime_header_fields(msg, st, len, names, 2,
								       (c & 1) != 0, &out) != 0)
							abort();
					}
				}
				buf_reset(&out);
				int r = mime_binary(t, path, n, &out);
				if (r != 0 && r != 1 && r != -2)
					abort();
			}
		}
	}
	size_t st = 0, len = 0;
	if (mime_section(t, NULL, 0, MIME_SECT_HEADER, &st, &len) != 1 || st > size ||
	    len > size - st)
		abort();

	buf_reset(&out);
	if (mime_search_header(t, "", &out) != 0 || mime_search_header(t, "subject", &out) != 0)
		abort();
	buf_reset(&out);
	if (mime_search_body(t, 4096, &out) != 0 || out.len > 4096)
		abort();
	buf_reset(&out);
	/* the body text and attachment names (RFC 2231 / 2047 decoding) */
	if (mime_search_text(t, &out) != 0)
		abort();
	buf_reset(&out);
	if (mime_decode_2047(msg, size < 4096 ? size : 4096, &out) != 0)
		abort();
	buf_reset(&out);
	/* the addr-specs of the input as one address field value: each is
	 * "<local@domain>" followed by a space */
	if (mime_addr_specs(msg, size < 4096 ? size : 4096, &out) != 0)
		abort();
	if (out.len > 0 &&
	    (out.data[0] != '<' || out.data[out.len - 1] != ' ' || out.data[out.len - 2] != '>'))
		abort();
	buf_free(&out);
	mime_tree_free(&t);
	if (t != NULL)
		abort();
	return 0;
}
