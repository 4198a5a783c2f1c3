/*
 * test-managesieve-parse.c - unit tests for the ManageSieve command
 * reader (src/managesieve/managesieve-parse.c).  Every input is fed whole
 * and one byte at a time; both must give the same results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "managesieve-parse.h"
#include "test.h"

/* Feeds in (step bytes at a time; 0: whole) and writes a summary of every
 * result into out: "C[A:name|S:text]" per command, "B(why)", "L" (too
 * long), "G" (too big), separated by spaces. */
static void run(const char *in, size_t n, size_t step, size_t max_line, size_t max_lit,
		char *out, size_t outsz)
{
	struct managesieve_parser p;
	managesieve_parse_init(&p, max_line, max_lit);
	size_t o = 0, pos = 0;
	out[0] = '\0';
	while (pos < n) {
		size_t piece = step == 0 || step > n - pos ? n - pos : step;
		size_t off = 0;
		while (off < piece) {
			size_t used;
			enum managesieve_result r =
			    managesieve_parse_feed(&p, in + pos + off, piece - off, &used);
			off += used;
			int k = 0;
			if (r == MANAGESIEVE_COMMAND) {
				k = snprintf(out + o, outsz - o, "%sC", o ? " " : "");
				for (size_t i = 0; i < p.n_tokens && k > 0; i++) {
					o += (size_t)k;
					k = snprintf(out + o, outsz - o, "[%c:%.*s]",
						     p.tokens[i].type == MANAGESIEVE_ATOM ? 'A' : 'S',
						     (int)p.tokens[i].len, p.tokens[i].data);
				}
			} else if (r == MANAGESIEVE_BAD) {
				k = snprintf(out + o, outsz - o, "%sB(%s)", o ? " " : "", p.error);
			} else if (r == MANAGESIEVE_TOO_LONG) {
				k = snprintf(out + o, outsz - o, "%sL", o ? " " : "");
			} else if (r == MANAGESIEVE_TOO_BIG) {
				k = snprintf(out + o, outsz - o, "%sG", o ? " " : "");
			}
			if (k > 0)
				o += (size_t)k;
		}
		pos += piece;
	}
	managesieve_parse_free(&p);
}

static void check_n(const char *file, int line, const char *in, size_t n, size_t max_line,
		    size_t max_lit, const char *want)
{
	char whole[1024], bytes[1024];
	run(in, n, 0, max_line, max_lit, whole, sizeof whole);
	run(in, n, 1, max_line, max_lit, bytes, sizeof bytes);
	if (strcmp(whole, want) != 0) {
		fprintf(stderr, "input %s\n  got  %s\n  want %s\n", in, whole, want);
		test_fail(file, line, "whole input");
	}
	if (strcmp(bytes, want) != 0) {
		fprintf(stderr, "input %s\n  got  %s\n  want %s\n", in, bytes, want);
		test_fail(file, line, "byte by byte");
	}
}

static void check(const char *file, int line, const char *in, size_t max_line, size_t max_lit,
		  const char *want)
{
	check_n(file, line, in, strlen(in), max_line, max_lit, want);
}

#define EXPECT(in, want) check(__FILE__, __LINE__, in, 100, 64, want)

TEST(managesieve_parse_commands)
{
	EXPECT("CAPABILITY\r\n", "C[A:CAPABILITY]");
	EXPECT("noop\n", "C[A:noop]");
	EXPECT("NOOP \"a \\\"b\\\" \\\\c\"\r\n", "C[A:NOOP][S:a \"b\" \\c]");
	EXPECT("HAVESPACE \"x\" 1024  \r\n", "C[A:HAVESPACE][S:x][A:1024]");
	EXPECT("PUTSCRIPT \"s\" {6+}\r\nkeep;\n\r\n", "C[A:PUTSCRIPT][S:s][S:keep;\n]");
	EXPECT("PUTSCRIPT {1+}\r\na {2}\r\nbc\r\n", "C[A:PUTSCRIPT][S:a][S:bc]");
	EXPECT("AUTHENTICATE \"PLAIN\" {0+}\r\n\r\n\"*\"\r\n",
	       "C[A:AUTHENTICATE][S:PLAIN][S:] C[S:*]");
	EXPECT("A B C D\r\n", "C[A:A][A:B][A:C][A:D]");
}

TEST(managesieve_parse_errors)
{
	EXPECT("\r\nNOOP\r\n", "B(empty command) C[A:NOOP]");
	EXPECT("A B C D E\r\n", "B(too many arguments)");
	EXPECT("NOOP \"abc\r\n", "B(unterminated quoted string)");
	EXPECT("NOOP \"a\\b\"\r\n", "B(bad escape in quoted string)");
	EXPECT("NOOP \"a\"\"b\"\r\n", "B(expected a space between arguments)");
	EXPECT("NOOP (x)\r\n", "B(unexpected character)");
	EXPECT("NOOP {x}\r\n", "B(bad literal)");
	EXPECT("NOOP {5+} x\r\n", "B(bad literal)");
	/* the literal of a bad line is skipped: its octets are no command */
	EXPECT("NOOP \"x {8+}\r\nLOGOUT\r\n\r\nNOOP\r\n", "B(unterminated quoted string) C[A:NOOP]");
	/* an error after a literal ends the command where it is found */
	EXPECT("PUTSCRIPT {1+}\r\nax\r\nNOOP\r\n",
	       "B(expected a space between arguments) C[A:NOOP]");
	check_n(__FILE__, __LINE__, "NOOP\0x\r\nNOOP\r\n", 14, 100, 64,
		"B(NUL byte in command) C[A:NOOP]");
}

TEST(managesieve_parse_bounds)
{
	char big[400];
	memset(big, 'x', sizeof big);
	memcpy(big, "NOOP ", 5);
	memcpy(big + sizeof big - 8, "\r\nNOOP\r\n", 8);
	char in[sizeof big + 1];
	memcpy(in, big, sizeof big);
	in[sizeof big] = '\0';
	EXPECT(in, "L C[A:NOOP]");
	/* a literal over the budget is skipped, the command reported once */
	char lit[200];
	snprintf(lit, sizeof lit, "PUTSCRIPT \"s\" {65+}\r\n%065d\r\nNOOP\r\n", 0);
	EXPECT(lit, "G C[A:NOOP]");
	snprintf(lit, sizeof lit, "PUTSCRIPT \"s\" {60+}\r\n%060d\r\nNOOP\r\n", 0);
	EXPECT(lit, "C[A:PUTSCRIPT][S:s][S:"
		    "000000000000000000000000000000000000000000000000000000000000] C[A:NOOP]");
	/* the 32-bit limit of a number */
	EXPECT("NOOP {4294967296+}\r\n", "B(bad literal)");
	char q[1100];
	memset(q, 'q', sizeof q);
	memcpy(q, "NOOP \"", 6);
	memcpy(q + 6 + 1025, "\"\r\n", 4);
	check(__FILE__, __LINE__, q, 2000, 64, "B(quoted string longer than 1024 octets)");
}

TEST(managesieve_parse_number)
{
	struct managesieve_token t = {MANAGESIEVE_ATOM, "4294967295", 10};
	uint32_t v;
	CHECK(managesieve_parse_number(&t, &v) == 0 && v == 4294967295u);
	t = (struct managesieve_token){MANAGESIEVE_ATOM, "4294967296", 10};
	CHECK(managesieve_parse_number(&t, &v) < 0);
	t = (struct managesieve_token){MANAGESIEVE_STRING, "1", 1};
	CHECK(managesieve_parse_number(&t, &v) < 0);
	t = (struct managesieve_token){MANAGESIEVE_ATOM, "-1", 2};
	CHECK(managesieve_parse_number(&t, &v) < 0);
}
