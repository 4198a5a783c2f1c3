/*
 * fuzz-http-wire.c - libFuzzer target for src/http/http-wire.c (the
 * requests off a connection, libhttp-parser underneath).
 *
 * The first byte picks the size of the reads (1..16 bytes, or all at
 * once) and whether the body bound is raised after the head; the rest is
 * fed as a connection would, request after request, and the promises of
 * http-wire.h are checked: every byte is taken on HTTP_WIRE_MORE, no more
 * than was given ever, a request's body within its bound, headers within
 * HTTP_WIRE_MAX_HEADERS, the strings NUL-terminated where their lengths
 * say, an error status among the documented ones, and progress: a feed
 * that takes nothing returns an event that explains why.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEAD 2048
#define MAX_BODY 256
#define RAISED 4096

static void check_req(const struct http_wire_req *r, uint64_t bound)
{
	if (r == NULL || r->n_headers > HTTP_WIRE_MAX_HEADERS || r->method_name == NULL ||
	    r->path == NULL || r->target == NULL)
		abort();
	for (size_t i = 0; i < r->n_headers; i++) {
		const struct http_wire_header *h = &r->headers[i];
		if (h->name[0] == '\0' || h->value[h->value_len] != '\0')
			abort();
		if (h->value_len > 0 &&
		    (h->value[h->value_len - 1] == ' ' || h->value[h->value_len - 1] == '\t'))
			abort();
	}
	if (r->body != NULL && (r->body_len > bound || r->body[r->body_len] != '\0'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = data[0] & 0x0f;
	bool raise = (data[0] & 0x10) != 0;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	struct http_wire *w = http_wire_new(MAX_HEAD, MAX_BODY);
	size_t pos = 0, avail = step ? 0 : n;
	uint64_t bound = MAX_BODY;
	for (size_t rounds = 0; rounds < 4 * n + 16; rounds++) {
		if (step && avail < n && avail < pos + step)
			avail = pos + step < n ? pos + step : n;
		size_t len = avail - pos;
		size_t used = (size_t)-1;
		enum http_wire_event ev = http_wire_feed(w, in + pos, len, &used);
		if (used > len)
			abort();
		pos += used;
		if (ev == HTTP_WIRE_ERROR) {
			int st = http_wire_status(w);
			if (st != 400 && st != 413 && st != 414 && st != 417 && st != 431 &&
			    st != 501 && st != 505)
				abort();
			break;
		}
		if (ev == HTTP_WIRE_MORE) {
			if (used != len)
				abort();
			if (avail == n)
				break;
			continue;
		}
		check_req(http_wire_req(w), bound);
		if (ev == HTTP_WIRE_HEAD) {
			if (raise) {
				bound = RAISED;
				(void)http_wire_set_body_max(w, RAISED);
			}
			continue;
		}
		/* HTTP_WIRE_DONE */
		if (!http_wire_started(w))
			abort();
		http_wire_next(w);
		bound = MAX_BODY;
	}
	(void)http_wire_eof_cuts(w);
	http_wire_free(&w);
	return 0;
}
