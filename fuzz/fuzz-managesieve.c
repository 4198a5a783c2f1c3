/*
 * fuzz-managesieve.c - libFuzzer target for the ManageSieve command reader
 * (src/managesieve/managesieve-parse.c).
 *
 * The first bytes choose the limits and a seed for the sizes of the pieces
 * the rest is fed in.  The input is read twice, whole and in pieces: the
 * results and tokens must be the same (the reader is resumable), every
 * token must be NUL-terminated and inside the reader's bounds, and every
 * byte must be consumed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "managesieve-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS 256

struct event {
	enum managesieve_result r;
	size_t n_tokens;
	uint64_t hash; /* of the tokens' types and bytes */
};

static uint64_t hash_tokens(const struct managesieve_parser *p, size_t max_line, size_t max_lit)
{
	uint64_t h = 1469598103934665603u;
	size_t total = 0;
	for (size_t i = 0; i < p->n_tokens; i++) {
		const struct managesieve_token *t = &p->tokens[i];
		if (t->data[t->len] != '\0')
			abort();
		total += t->len;
		h = (h ^ (uint64_t)t->type) * 1099511628211u;
		for (size_t j = 0; j < t->len; j++)
			h = (h ^ (unsigned char)t->data[j]) * 1099511628211u;
		h = (h ^ 0xff) * 1099511628211u;
	}
	if (total > max_lit + MANAGESIEVE_MAX_TOKENS * (max_line + 1))
		abort();
	return h;
}

/* Feeds in[0..n) in pieces (piece sizes from seed; 0: whole) and records
 * the results.  Returns the number of events. */
static size_t run(const char *in, size_t n, size_t max_line, size_t max_lit, uint32_t seed,
		  struct event *ev)
{
	struct managesieve_parser p;
	managesieve_parse_init(&p, max_line, max_lit);
	size_t pos = 0, n_ev = 0;
	while (pos < n && n_ev < MAX_EVENTS) {
		size_t piece = n - pos;
		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			piece = 1 + (seed >> 16) % 7;
			if (piece > n - pos)
				piece = n - pos;
		}
		size_t off = 0;
		while (off < piece && n_ev < MAX_EVENTS) {
			size_t used;
			enum managesieve_result r =
			    managesieve_parse_feed(&p, in + pos + off, piece - off, &used);
			if (used > piece - off)
				abort();
			off += used;
			if (r == MANAGESIEVE_NEED_MORE) {
				if (off != piece)
					abort();
				continue;
			}
			ev[n_ev].r = r;
			ev[n_ev].n_tokens = r == MANAGESIEVE_COMMAND ? p.n_tokens : 0;
			ev[n_ev].hash = r == MANAGESIEVE_COMMAND ? hash_tokens(&p, max_line, max_lit) : 0;
			n_ev++;
		}
		pos += piece;
	}
	managesieve_parse_free(&p);
	return n_ev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	size_t max_line = 1 + data[0] % 200;
	size_t max_lit = (size_t)data[1] * 8;
	uint32_t seed = data[2] * 2654435761u + data[3] + 1;
	const char *in = (const char *)data + 4;
	size_t n = size - 4;
	static struct event whole[MAX_EVENTS], pieces[MAX_EVENTS];
	size_t a = run(in, n, max_line, max_lit, 0, whole);
	size_t b = run(in, n, max_line, max_lit, seed, pieces);
	if (a == MAX_EVENTS || b == MAX_EVENTS)
		return 0;
	if (a != b)
		abort();
	for (size_t i = 0; i < a; i++)
		if (whole[i].r != pieces[i].r || whole[i].n_tokens != pieces[i].n_tokens ||
		    whole[i].hash != pieces[i].hash)
			abort();
	return 0;
}
