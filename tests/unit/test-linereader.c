/* Unit tests for src/lib/linereader.c, fed whole and byte by byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linereader.h"
#include "test.h"

/* Feeds input in pieces of step bytes; records lines as "L:<text>" and
 * over-long lines as "TOO_LONG", joined by '|'. */
static void run(const char *input, size_t n, size_t max, size_t step, char *out, size_t outsz)
{
	struct linereader lr;
	linereader_init(&lr, max);
	size_t o = 0;
	out[0] = '\0';
	size_t pos = 0;
	while (pos < n) {
		size_t chunk = n - pos < step ? n - pos : step;
		size_t off = 0;
		while (off < chunk) {
			size_t used;
			enum lr_result r = linereader_feed(&lr, input + pos + off, chunk - off, &used);
			off += used;
			if (r == LR_LINE)
				o += (size_t)snprintf(out + o, outsz - o, "L:%.*s%s|", (int)lr.line.len,
						      lr.line.data ? lr.line.data : "",
						      lr.bare_lf ? "(lf)" : "");
			else if (r == LR_TOO_LONG)
				o += (size_t)snprintf(out + o, outsz - o, "TOO_LONG|");
		}
		pos += chunk;
	}
	linereader_free(&lr);
}

static void check_all_steps(const char *input, size_t max, const char *want)
{
	char out[4096];
	size_t n = strlen(input);
	for (size_t step = 1; step <= n; step++) {
		run(input, n, max, step, out, sizeof out);
		CHECK_STR(out, want);
	}
}

TEST(linereader_lines)
{
	check_all_steps("HELO a\r\nMAIL FROM:<>\r\n", 100, "L:HELO a|L:MAIL FROM:<>|");
	check_all_steps("\r\n\r\n", 100, "L:|L:|");
	check_all_steps("bare\nnext\r\n", 100, "L:bare(lf)|L:next|");
	check_all_steps("partial", 100, "");
}

TEST(linereader_too_long_skips_tail)
{
	/* The tail of an over-long line must never come back as a line. */
	check_all_steps("0123456789ABCDEF\r\nQUIT\r\n", 8, "TOO_LONG|L:QUIT|");
	check_all_steps("12345678\r\n", 8, "L:12345678|");
	check_all_steps("123456789\r\n", 8, "TOO_LONG|");
	check_all_steps("123456789\n", 8, "TOO_LONG|");
}

TEST(linereader_nul_flag)
{
	struct linereader lr;
	linereader_init(&lr, 100);
	size_t used;
	CHECK_INT(linereader_feed(&lr, "a\0b\r\n", 5, &used), LR_LINE);
	CHECK_INT(used, 5);
	CHECK(lr.has_nul);
	CHECK_INT(lr.line.len, 3);
	CHECK_INT(linereader_feed(&lr, "ab\r\n", 4, &used), LR_LINE);
	CHECK(!lr.has_nul);
	linereader_free(&lr);
}

TEST(linereader_cr_inside_line_kept)
{
	check_all_steps("a\rb\r\n", 100, "L:a\rb|");
}
