/*
 * base64.c - strict base64 for SASL exchanges (see base64.h).
 *
 * Part of src/lib; no dependencies.  The decoder is table-free and runs in
 * time that depends only on the input length, not on its bytes, because
 * SASL responses carry passwords and SCRAM proofs.
 */
#include "base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t n)
{
	return (n / 3 + (n % 3 != 0)) * 4;
}

size_t base64_decoded_max(size_t n)
{
	return n / 4 * 3;
}

long base64_encode(const void *in, size_t n, char *out, size_t outsz)
{
	const unsigned char *p = in;
	if (n > ((size_t)-1 / 4 - 1) || outsz < base64_encoded_len(n) + 1)
		return -1;
	size_t o = 0;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return (long)o;
}

/* The 6-bit value of c, or a value with bit 8 set if c is not in the
 * alphabet.  Branch-free range checks (no table lookups indexed by a
 * secret byte). */
static unsigned value_of(unsigned char ch)
{
	int c = ch;
	int v = 0x100;
	/* Each term is (c - lo) when lo <= c <= hi, else 0, plus the offset. */
	int in;
	in = ((('A' - 1) - c) & (c - ('Z' + 1))) >> 8 & 1;
	v ^= in * (0x100 ^ (c - 'A'));
	in = ((('a' - 1) - c) & (c - ('z' + 1))) >> 8 & 1;
	v ^= in * (0x100 ^ (c - 'a' + 26));
	in = ((('0' - 1) - c) & (c - ('9' + 1))) >> 8 & 1;
	v ^= in * (0x100 ^ (c - '0' + 52));
	in = ((c ^ '+') - 1) >> 8 & 1;
	v ^= in * (0x100 ^ 62);
	in = ((c ^ '/') - 1) >> 8 & 1;
	v ^= in * (0x100 ^ 63);
	return (unsigned)v;
}

long base64_decode(const char *in, size_t n, void *out, size_t outsz)
{
	unsigned char *o = out;
	if (n % 4 != 0)
		return -1;
	if (n == 0)
		return 0;
	size_t pad = 0;
	if (in[n - 1] == '=')
		pad = in[n - 2] == '=' ? 2 : 1;
	size_t need = n / 4 * 3 - pad;
	if (need > outsz || need > (size_t)0x7fffffff)
		return -1;
	unsigned bad = 0;
	size_t w = 0;
	for (size_t i = 0; i < n; i += 4) {
		int last = i + 4 == n;
		unsigned a = value_of((unsigned char)in[i]);
		unsigned b = value_of((unsigned char)in[i + 1]);
		unsigned c = (last && pad == 2) ? 0 : value_of((unsigned char)in[i + 2]);
		unsigned d = (last && pad >= 1) ? 0 : value_of((unsigned char)in[i + 3]);
		bad |= (a | b | c | d) & 0x100;
		uint32_t v = (uint32_t)(a & 63) << 18 | (uint32_t)(b & 63) << 12 |
			     (uint32_t)(c & 63) << 6 | (d & 63);
		if (last && pad == 2) {
			bad |= b & 15; /* low bits of a 2-character group must be 0 */
			o[w++] = (unsigned char)(v >> 16);
		} else if (last && pad == 1) {
			bad |= c & 3;
			o[w++] = (unsigned char)(v >> 16);
			o[w++] = (unsigned char)(v >> 8);
		} else {
			o[w++] = (unsigned char)(v >> 16);
			o[w++] = (unsigned char)(v >> 8);
			o[w++] = (unsigned char)v;
		}
	}
	if (bad != 0)
		return -1;
	return (long)w;
}
