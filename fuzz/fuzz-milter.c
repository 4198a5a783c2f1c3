/*
 * fuzz-milter.c - libFuzzer target for the milter reply parser
 * (src/spam/milter-proto.c): the input is read as the byte stream a
 * milter sends, split into packets, and each packet goes through the
 * parser of its command; header changes are applied to a header section
 * split from the start of the input.
 *
 * Checks: a packet never reaches past the input; a reply code is 4xx or
 * 5xx and its text printable; parsed header names are 1..76 bytes within
 * the packet; the fields' byte count always equals the sum of their
 * sizes, and a split section's fields add up to its length.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "milter-proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fields(const struct milter_fields *fs)
{
	size_t sum = 0;
	for (size_t i = 0; i < fs->n; i++) {
		if (fs->f[i].name_len == 0 || fs->f[i].name_len > fs->f[i].raw_len)
			abort();
		sum += fs->f[i].raw_len;
	}
	if (sum != fs->bytes)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct milter_fields fs;
	size_t hdr_len;
	bool sep;
	milter_fields_split((const char *)data, size, 50, &fs, &hdr_len, &sep);
	check_fields(&fs);
	if (hdr_len > size || (!sep && fs.bytes != hdr_len) || (sep && fs.bytes + 2 != hdr_len))
		abort();
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < fs.n; i++)
		if (milter_fields_value(&fs, i, &b) < 0)
			abort();
	size_t pos = 0;
	for (int k = 0; k < 200; k++) {
		char cmd;
		const unsigned char *d;
		size_t n, used;
		int r = milter_proto_frame(data + pos, size - pos, MILTER_REPLY_MAX, &cmd, &d, &n,
					   &used);
		if (r <= 0)
			break;
		if (used > size - pos || d + n != data + pos + used)
			abort();
		pos += used;
		char text[600];
		struct milter_optneg o;
		struct milter_header_op op;
		const char *s;
		size_t sl;
		switch (cmd) {
		case MILTER_R_OPTNEG:
			if (milter_proto_parse_optneg(d, n, &o) == 0 &&
			    (o.version < 2 || o.version > 6))
				abort();
			break;
		case MILTER_R_REPLYCODE: {
			int code = milter_proto_parse_replycode(d, n, text, sizeof text);
			if (code >= 0) {
				if (code < 400 || code > 599 || strlen(text) < 3)
					abort();
				for (const char *p = text; *p; p++)
					if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
						abort();
			}
			break;
		}
		case MILTER_R_QUARANTINE:
			if (milter_proto_parse_string(d, n, &s, &sl) == 0 && strlen(s) != sl)
				abort();
			break;
		default:
			if (milter_proto_parse_header_op(cmd, d, n, &op) == 0) {
				if (op.name_len == 0 || op.name_len > 76 ||
				    op.name < (const char *)d ||
				    op.value + op.value_len > (const char *)d + n)
					abort();
				if (fs.n < 200)
					milter_fields_apply(&fs, &op);
				check_fields(&fs);
			}
			break;
		}
	}
	buf_reset(&b);
	if (milter_fields_write(&fs, &b) < 0 || b.len != fs.bytes)
		abort();
	buf_free(&b);
	milter_fields_free(&fs);
	return 0;
}
