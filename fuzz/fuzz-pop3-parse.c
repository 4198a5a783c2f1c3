/*
 * fuzz-pop3-parse.c - libFuzzer target for src/pop3/pop3-parse.c.
 *
 * Feeds the input to the command parser, to the base64 decoder and to the
 * SASL PLAIN splitter (raw, and after base64), and checks the promises of
 * pop3-parse.h: arguments point into the line, argument counts and
 * numbers match the verb, decoding is strict (re-encoding what was
 * decoded gives back the input exactly) and PLAIN fields are in range.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_command(const char *line, size_t n)
{
	struct pop3_cmd c;
	enum pop3_parse_error e = pop3_parse_command(line, n, &c);
	if (e == POP3_PARSE_UNKNOWN && c.verb != POP3_VERB_UNKNOWN)
		abort();
	if (e == POP3_PARSE_OK && c.verb == POP3_VERB_UNKNOWN)
		abort();
	if (c.n_args > POP3_MAX_ARGS)
		abort();
	for (size_t i = 0; i < c.n_args; i++)
		if (c.arg[i] < line || c.arg[i] + c.arg_len[i] > line + n)
			abort();
	if (e != POP3_PARSE_OK)
		return;
	switch (c.verb) {
	case POP3_VERB_USER:
	case POP3_VERB_PASS:
		if (c.n_args != 1 || c.arg_len[0] == 0)
			abort();
		break;
	case POP3_VERB_RETR:
	case POP3_VERB_DELE:
		if (c.n_args != 1)
			abort();
		break;
	case POP3_VERB_TOP:
		if (c.n_args != 2)
			abort();
		break;
	case POP3_VERB_LIST:
	case POP3_VERB_UIDL:
		if (c.n_args > 1)
			abort();
		break;
	case POP3_VERB_AUTH:
		break;
	case POP3_VERB_APOP:
		if (c.n_args != 2)
			abort();
		break;
	default:
		if (c.n_args != 0)
			abort();
	}
	/* word arguments hold no space */
	if (c.verb != POP3_VERB_USER && c.verb != POP3_VERB_PASS)
		for (size_t i = 0; i < c.n_args; i++)
			if (c.arg_len[i] == 0 || memchr(c.arg[i], ' ', c.arg_len[i]) != NULL)
				abort();
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t encode(const unsigned char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = b64chars[(v >> 18) & 63];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b64chars[v & 63] : '=';
	}
	return o;
}

static void check_plain(const unsigned char *m, size_t n)
{
	struct pop3_plain p;
	if (pop3_parse_plain(m, n, &p) < 0)
		return;
	if (p.authzid_len > 255 || p.authcid_len == 0 || p.authcid_len > 255 || p.passwd_len == 0 ||
	    p.passwd_len > 255)
		abort();
	if (p.authzid_len + p.authcid_len + p.passwd_len + 2 != n)
		abort();
	if (memchr(p.authcid, '\0', p.authcid_len) || memchr(p.passwd, '\0', p.passwd_len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	check_command(in, size);

	size_t cap = POP3_BASE64_DECODED_MAX(size);
	unsigned char *dec = malloc(cap ? cap : 1);
	if (dec == NULL)
		return 0;
	size_t len = 0;
	if (pop3_parse_base64(in, size, dec, cap, &len) == 0) {
		if (len > cap)
			abort();
		char *re = malloc(size ? size : 1);
		if (re == NULL)
			abort();
		if (encode(dec, len, re) != size || memcmp(re, in, size) != 0)
			abort();
		free(re);
		check_plain(dec, len);
	}
	free(dec);
	check_plain(data, size);
	return 0;
}
