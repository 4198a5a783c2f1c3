/*
 * fuzz-jmap-eventsource.c - libFuzzer target for the event source URL's
 * parameters (src/jmap/jmap-eventsource.c, jmap_es_parse_params): the
 * input is types, closeafter and ping separated by NUL bytes (fewer
 * parts: the rest absent).
 *
 * Checks: on success the types are bits of the three pushed types, the
 * ping is 0 or within the clamp, closeafter was "state" or "no"; on
 * failure a message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jmap-eventsource.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	const char *part[3] = {NULL, NULL, NULL};
	size_t at = 0;
	for (int i = 0; i < 3 && at <= size; i++) {
		part[i] = text + at;
		at += strlen(text + at) + 1;
	}
	unsigned types = 0, ping = 0;
	bool close_after = false;
	const char *bad = jmap_es_parse_params(part[0], part[1], part[2], &types, &close_after,
					       &ping);
	if (bad == NULL) {
		if (types > 7 || (ping != 0 && (ping < JMAP_ES_PING_MIN || ping > JMAP_ES_PING_MAX)))
			abort();
		if (strcmp(part[1], close_after ? "state" : "no") != 0)
			abort();
	} else if (bad[0] == '\0') {
		abort();
	}
	free(text);
	return 0;
}
