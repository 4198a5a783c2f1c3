/*
 * fuzz-linereader.c - libFuzzer target for src/lib/linereader.c.
 *
 * The first bytes choose the line limit and a seed for the sizes of the
 * pieces the rest is fed in, as a network would deliver it.  The lines and
 * errors that come out are checked against a simple model that splits the
 * whole input at once: the split into pieces must never change them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linereader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct model_line {
	enum lr_result r;
	const char *line; /* without its line end */
	size_t len;
	bool crlf;
	size_t next; /* offset just after the LF */
};

/* The model: the next line of p[0..n) from pos, or LR_NEED_MORE. */
static struct model_line model_next(const char *p, size_t n, size_t max, size_t pos)
{
	struct model_line m = {LR_NEED_MORE, NULL, 0, false, pos};
	const char *lf = memchr(p + pos, '\n', n - pos);
	if (lf == NULL)
		return m;
	size_t end = (size_t)(lf - p);
	m.next = end + 1;
	m.crlf = end > pos && p[end - 1] == '\r';
	if (m.crlf)
		end--;
	m.line = p + pos;
	m.len = end - pos;
	m.r = m.len > max ? LR_TOO_LONG : LR_LINE;
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	size_t max = ((size_t)data[0] << 8 | data[1]) % 1100;
	uint32_t seed = data[2] * 2654435761u + 1;
	const char *p = (const char *)data + 3;
	size_t n = size - 3;

	struct linereader lr;
	linereader_init(&lr, max);
	size_t off = 0, model_pos = 0;
	while (off < n) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 64;
		if (piece > n - off)
			piece = n - off;
		size_t fed = 0;
		while (fed < piece) {
			size_t used = 0;
			enum lr_result r = linereader_feed(&lr, p + off + fed, piece - fed, &used);
			if (used == 0 || used > piece - fed)
				abort();
			fed += used;
			if (r == LR_NEED_MORE) {
				if (fed != piece || p[off + fed - 1] == '\n')
					abort(); /* all taken, and no line ended */
				continue;
			}
			/* a line ended: it must be the model's next one */
			struct model_line m = model_next(p, n, max, model_pos);
			if (m.r != r || m.next != off + fed)
				abort();
			model_pos = m.next;
			if (r != LR_LINE)
				continue;
			if (lr.line.len != m.len || lr.line.len > max)
				abort();
			if (m.len > 0 && memcmp(lr.line.data, m.line, m.len) != 0)
				abort();
			if (lr.has_nul != (memchr(m.line, '\0', m.len) != NULL))
				abort();
			if (lr.bare_lf == m.crlf)
				abort();
			const char *s = buf_cstr(&lr.line);
			if (s[m.len] != '\0')
				abort();
		}
		off += piece;
	}
	/* nothing more ended in the model either */
	if (model_next(p, n, max, model_pos).r != LR_NEED_MORE)
		abort();
	linereader_free(&lr);
	return 0;
}
