/*
 * strutil.h - checked number parsing and small string helpers.
 * Numbers from the wire or the config go through strutil_parse_u64(), never
 * atoi/strtol directly.
 */
#ifndef TERN_STRUTIL_H
#define TERN_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses p[0..n) as a decimal number with no sign, no spaces, at least one
 * digit, value <= max.  Returns 0 and sets *out, or -1. */
int strutil_parse_u64(const char *p, size_t n, uint64_t max, uint64_t *out);
/* Case-insensitive (ASCII) comparison of p[0..n) with the C string s. */
bool strutil_eq_ci(const char *p, size_t n, const char *s);
/* Whether p[0..n) holds the blank-separated word w (ASCII case-insensitive),
 * as in an EHLO keyword's list of values ("AUTH SCRAM-SHA-256 PLAIN"). */
bool strutil_has_word_ci(const char *p, size_t n, const char *w);
/* True if p[0..n) starts with the C string prefix, case-insensitively. */
bool strutil_prefix_ci(const char *p, size_t n, const char *prefix);
/* Lower-cases ASCII letters in place. */
void strutil_lower(char *s, size_t n);
/* Parses a size with optional K/M/G suffix (binary units). */
int strutil_parse_size(const char *s, uint64_t *out);
/* Writes the formatted message into err[0..errsz) (truncated), unless err
 * is NULL or errsz 0: for the "reason" out-parameters of parsers. */
void strutil_errf(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parses a duration: a number with optional s/m/h/d suffix, in seconds. */
int strutil_parse_duration(const char *s, uint64_t *out);

#endif
