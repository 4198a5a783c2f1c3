/*
 * password.h - password hashing and checking through libcrypt (libxcrypt).
 *
 * New hashes are yescrypt ("$y$...").  Checking accepts every scheme
 * libcrypt knows, so sha512-crypt ("$6$") and bcrypt ("$2b$"/"$2y$")
 * hashes imported from Dovecot password files keep working.  Dovecot's
 * "{SCHEME}" prefixes (e.g. "{SHA512-CRYPT}$6$...") are stripped.
 */
#ifndef TERN_PASSWORD_H
#define TERN_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

/* Hashes password with yescrypt and a fresh random salt into out (size
 * outsz, at least 128).  Returns 0 or -1. */
int password_hash(const char *password, char *out, size_t outsz);
/* True if password matches hash (constant-time comparison). */
bool password_verify(const char *password, const char *hash);
/* Normalises an imported hash: strips a Dovecot {SCHEME} prefix if the
 * rest is a crypt(3) string libcrypt supports.  Returns 0 (written to out)
 * or -1 if the scheme is not supported. */
int password_import(const char *hash, char *out, size_t outsz);

#endif
