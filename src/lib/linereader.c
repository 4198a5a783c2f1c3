/*
 * linereader.c - bounded, resumable line splitting (see linereader.h).
 */
#include "linereader.h"

#include <string.h>

void linereader_init(struct linereader *lr, size_t max)
{
	/* +1 so that a line of exactly max bytes plus its CR fits before the
	 * LF shows whether the CR belongs to the line end. */
	buf_init(&lr->line, max + 1);
	lr->max = max;
	lr->skipping = false;
	lr->bare_lf = false;
	lr->has_nul = false;
	lr->done = false;
}

void linereader_free(struct linereader *lr)
{
	buf_free(&lr->line);
}

void linereader_set_max(struct linereader *lr, size_t max)
{
	lr->max = max;
	lr->line.max = max + 1;
}

enum lr_result linereader_feed(struct linereader *lr, const char *p, size_t n, size_t *consumed)
{
	if (lr->done) {
		buf_reset(&lr->line);
		lr->done = false;
	}
	const char *lf = memchr(p, '\n', n);
	size_t take = lf ? (size_t)(lf - p) + 1 : n;
	*consumed = take;
	if (lr->skipping) {
		if (lf == NULL)
			return LR_NEED_MORE;
		lr->skipping = false;
		buf_reset(&lr->line);
		return LR_TOO_LONG;
	}
	size_t body = lf ? take - 1 : take; /* bytes without the LF */
	if (buf_append(&lr->line, p, body) < 0) {
		buf_reset(&lr->line);
		if (lf == NULL) {
			lr->skipping = true;
			return LR_NEED_MORE;
		}
		return LR_TOO_LONG;
	}
	if (lf == NULL)
		return LR_NEED_MORE;
	lr->bare_lf = true;
	if (lr->line.len > 0 && lr->line.data[lr->line.len - 1] == '\r') {
		lr->line.len--;
		lr->line.data[lr->line.len] = '\0';
		lr->bare_lf = false;
	}
	if (lr->line.len > lr->max) {
		buf_reset(&lr->line);
		return LR_TOO_LONG;
	}
	lr->has_nul = lr->line.len > 0 && memchr(lr->line.data, '\0', lr->line.len) != NULL;
	lr->done = true;
	return LR_LINE;
}
