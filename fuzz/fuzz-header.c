/*
 * fuzz-header.c - libFuzzer target for src/mail/header.c.
 *
 * Parses the input as a message and checks that every field lies inside
 * it, the limits hold, lookups agree with the field list and unfolding
 * stays inside its output buffer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct header h;
	enum header_error e = header_parse(msg, size, &h);

	if (e != HEADER_OK) {
		if (h.fields != NULL || h.n_fields != 0 || h.header_len != 0)
			abort();
		return 0;
	}
	if (h.header_len > size || h.n_fields > HEADER_MAX_FIELDS)
		abort();
	if (h.has_body_separator && (h.header_len == 0 || msg[h.header_len - 1] != '\n'))
		abort();
	if (!h.has_body_separator && h.header_len != size)
		abort();
	for (size_t i = 0; i < h.n_fields; i++) {
		const struct header_field *f = &h.fields[i];
		if (f->name < msg || f->name_len == 0 || f->name_len > HEADER_MAX_NAME ||
		    f->name + f->name_len > msg + h.header_len)
			abort();
		if (f->value < f->name + f->name_len || f->value + f->value_len > msg + h.header_len)
			abort();
		for (size_t k = 0; k < f->name_len; k++)
			if (f->name[k] <= ' ' || f->name[k] > '~' || f->name[k] == ':')
				abort();
		if (f->value[-1] != ':')
			abort();
		/* a field found by name is the first of that name */
		char name[HEADER_MAX_NAME + 1];
		memcpy(name, f->name, f->name_len);
		name[f->name_len] = '\0';
		const struct header_field *g = header_find(&h, name);
		if (g == NULL || g > f || header_count(&h, name) == 0)
			abort();
		char out[64];
		size_t o = header_unfold(f->value, f->value_len, out, sizeof out);
		if (o >= sizeof out || out[o] != '\0' || memchr(out, '\n', o) != NULL)
			abort();
		if (o > 0 && (out[0] == ' ' || out[0] == '\t'))
			abort();
		/* a truncated result may end anywhere, a whole one not in a blank */
		if (o > 0 && o < sizeof out - 1 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
			abort();
	}
	header_free(&h);
	if (h.fields != NULL || h.n_fields != 0)
		abort();
	return 0;
}
