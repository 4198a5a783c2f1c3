/*
 * apppass.c - the shape of app passwords: generation and recognition (see
 * apppass.h).
 *
 * Part of src/auth; it depends on nothing but libc (getrandom).  The
 * alphabet has 32 symbols, so one random byte masked to 5 bits picks a
 * symbol without bias.
 */
#include "apppass.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* Fills buf with n random bytes from the kernel (blocks only until the
 * pool is initialised, once after boot). */
static int random_bytes(unsigned char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += (size_t)r;
	}
	return 0;
}

/* The symbol's index in the alphabet (either case), or -1. */
static int symbol_index(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		c = (unsigned char)(c - 'A' + 'a');
	const char *p = c != '\0' ? strchr(APPPASS_ALPHABET, c) : NULL;
	return p != NULL ? (int)(p - APPPASS_ALPHABET) : -1;
}

/* Writes the 16 symbols sym[] as "xxxx-xxxx-xxxx-xxxx". */
static void format_text(const char sym[APPPASS_SYMBOLS], char text[APPPASS_TEXT_SIZE],
			char id[APPPASS_ID_SIZE])
{
	size_t o = 0;
	for (size_t i = 0; i < APPPASS_SYMBOLS; i++) {
		if (i > 0 && i % 4 == 0)
			text[o++] = '-';
		text[o++] = sym[i];
	}
	text[o] = '\0';
	memcpy(id, sym, APPPASS_ID_LEN);
	id[APPPASS_ID_LEN] = '\0';
}

int apppass_generate(char text[APPPASS_TEXT_SIZE], char id[APPPASS_ID_SIZE])
{
	unsigned char rnd[APPPASS_SYMBOLS];
	if (random_bytes(rnd, sizeof rnd) < 0)
		return -1;
	char sym[APPPASS_SYMBOLS];
	for (size_t i = 0; i < APPPASS_SYMBOLS; i++)
		sym[i] = APPPASS_ALPHABET[rnd[i] & 31];
	format_text(sym, text, id);
	explicit_bzero(rnd, sizeof rnd);
	explicit_bzero(sym, sizeof sym);
	return 0;
}

bool apppass_parse(const char *in, size_t n, char text[APPPASS_TEXT_SIZE], char id[APPPASS_ID_SIZE])
{
	/* 16 symbols, or 16 with 3 separators between the groups. */
	if (n != APPPASS_SYMBOLS && n != APPPASS_SYMBOLS + 3)
		return false;
	bool split = n == APPPASS_SYMBOLS + 3;
	char sep = split ? in[4] : '\0';
	if (split && sep != '-' && sep != ' ')
		return false;
	char sym[APPPASS_SYMBOLS];
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (split && i % 5 == 4) {
			if (in[i] != sep)
				goto no;
			continue;
		}
		int v = symbol_index((unsigned char)in[i]);
		if (v < 0)
			goto no;
		sym[k++] = APPPASS_ALPHABET[v];
	}
	format_text(sym, text, id);
	explicit_bzero(sym, sizeof sym);
	return true;
no:
	explicit_bzero(sym, sizeof sym);
	return false;
}

bool apppass_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > APPPASS_NAME_MAX || name[0] == ' ' || name[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c > 0x7e)
			return false;
	}
	return true;
}
