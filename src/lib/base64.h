/*
 * base64.h - base64 (RFC 4648 section 4, the standard alphabet with '='
 * padding) as SASL uses it (RFC 4422, RFC 4954, RFC 3501 AUTHENTICATE).
 *
 * Decoding is strict, because the input comes from the wire: the length
 * must be a multiple of 4, padding may appear only at the end, no blanks
 * or line breaks are skipped, and the unused low bits of the last
 * character must be zero, so every byte string has exactly one accepted
 * encoding.
 */
#ifndef TERN_BASE64_H
#define TERN_BASE64_H

#include <stddef.h>

/* Characters base64_encode writes for n input bytes (without the NUL). */
size_t base64_encoded_len(size_t n);
/* Most bytes base64_decode may write for n input characters. */
size_t base64_decoded_max(size_t n);

/* Encodes in[0..n) into out (size outsz, NUL-terminated).  Returns the
 * number of characters written (without the NUL), or -1 if out is too
 * small (outsz must be at least base64_encoded_len(n) + 1). */
long base64_encode(const void *in, size_t n, char *out, size_t outsz);

/* Decodes in[0..n) into out (size outsz).  Returns the number of bytes
 * written, or -1 if the input is not canonical base64 or out is too small
 * (base64_decoded_max(n) always suffices).  An empty input decodes to 0
 * bytes.  out is not NUL-terminated. */
long base64_decode(const char *in, size_t n, void *out, size_t outsz);

#endif
