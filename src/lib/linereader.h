/*
 * linereader.h - the one bounded line reader that all protocol input passes
 * through.  Resumable: feed it whatever bytes have arrived; it says when a
 * whole line is ready.  A line longer than the limit is skipped to its end
 * and reported once as LR_TOO_LONG; its tail is never seen as a new line.
 */
#ifndef TERN_LINEREADER_H
#define TERN_LINEREADER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

enum lr_result {
	LR_NEED_MORE,  /* every byte given was consumed; no line ended */
	LR_LINE,       /* lr->line holds a whole line without its line end */
	LR_TOO_LONG,   /* a line over the limit ended; its bytes were dropped */
};

struct linereader {
	struct buf line;   /* current line, without CRLF / LF */
	size_t max;        /* longest line accepted, excluding the line end */
	bool skipping;     /* inside an over-long line */
	bool bare_lf;      /* the last line ended in LF without CR */
	bool has_nul;      /* the last line contains a NUL byte */
	bool done;         /* lr->line holds a returned line: reset first */
};

/* max: longest line, not counting CRLF. */
void linereader_init(struct linereader *lr, size_t max);
void linereader_free(struct linereader *lr);
/* Changes the limit (for example after authentication). */
void linereader_set_max(struct linereader *lr, size_t max);
/* Consumes bytes of p[0..n) up to and including the first LF and sets
 * *consumed.  After LR_LINE the line stays in lr->line until the next call.
 * A line is ended by LF; a CR right before it is removed. */
enum lr_result linereader_feed(struct linereader *lr, const char *p, size_t n, size_t *consumed);

#endif
