/*
 * password.c - password hashes through libcrypt (libxcrypt); see password.h.
 *
 * Part of src/auth: it depends only on src/lib and libcrypt.  New hashes are
 * yescrypt with libcrypt's default cost; verification accepts whatever
 * crypt(3) scheme libcrypt supports, so hashes imported from Dovecot
 * (sha512-crypt, bcrypt, yescrypt) keep working unchanged.
 *
 * struct crypt_data is large (about 32 KiB), so it lives on the heap rather
 * than on a worker's stack, and it is wiped after use because it holds
 * material derived from the password.
 */
#include "password.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "xalloc.h"

/* Dovecot scheme prefixes we accept, and the crypt(3) prefixes each may
 * carry ("" = any scheme libcrypt knows).  {PLAIN} and friends are not
 * here on purpose: we never store clear-text passwords. */
static const struct {
	const char *scheme;
	const char *const crypt_prefixes[4];
} dovecot_schemes[] = {
	{"{CRYPT}", {"", NULL}},
	{"{SHA512-CRYPT}", {"$6$", NULL}},
	{"{SHA256-CRYPT}", {"$5$", NULL}},
	{"{BLF-CRYPT}", {"$2b$", "$2y$", "$2a$", NULL}},
	{"{YESCRYPT}", {"$y$", NULL}},
};
#define N_SCHEMES (sizeof dovecot_schemes / sizeof dovecot_schemes[0])

/* Strips a known Dovecot "{SCHEME}" prefix.  Returns the crypt(3) string,
 * or NULL if the prefix is unknown or does not match the string after it.
 * A hash without '{' is returned unchanged. */
static const char *strip_scheme(const char *hash)
{
	if (hash[0] != '{')
		return hash;
	for (size_t i = 0; i < N_SCHEMES; i++) {
		size_t n = strlen(dovecot_schemes[i].scheme);
		if (strncasecmp(hash, dovecot_schemes[i].scheme, n) != 0)
			continue;
		const char *rest = hash + n;
		for (size_t j = 0; dovecot_schemes[i].crypt_prefixes[j] != NULL; j++) {
			const char *p = dovecot_schemes[i].crypt_prefixes[j];
			if (strncmp(rest, p, strlen(p)) == 0)
				return rest;
		}
		return NULL;
	}
	return NULL;
}

/* Compares two NUL-terminated strings in time that depends only on the
 * length of a (the stored hash), not on where they differ. */
static bool equal_const_time(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char diff = (unsigned char)(na != nb);
	for (size_t i = 0; i < na; i++) {
		unsigned char cb = i < nb ? (unsigned char)b[i] : 0;
		diff |= (unsigned char)((unsigned char)a[i] ^ cb);
	}
	return diff == 0;
}

/* Runs crypt_rn and copies a successful result into out.  Returns 0, or -1
 * if libcrypt refused the setting or the result does not fit. */
static int run_crypt(const char *password, const char *setting, char *out, size_t outsz)
{
	struct crypt_data *cd = xcalloc(1, sizeof *cd);
	int rc = -1;
	const char *r = crypt_rn(password, setting, cd, (int)sizeof *cd);
	/* libcrypt signals failure with NULL or a string starting with '*'. */
	if (r != NULL && r[0] != '*') {
		size_t n = strlen(r);
		if (n < outsz) {
			memcpy(out, r, n + 1);
			rc = 0;
		}
	}
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return rc;
}

int password_hash(const char *password, char *out, size_t outsz)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	/* count 0: libcrypt's default cost; NULL rbytes: it reads the kernel's
	 * random source itself. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, (int)sizeof setting) == NULL)
		return -1;
	if (setting[0] == '*')
		return -1;
	return run_crypt(password, setting, out, outsz);
}

bool password_verify(const char *password, const char *hash)
{
	if (password == NULL || hash == NULL)
		return false;
	const char *h = strip_scheme(hash);
	/* An empty or locked hash ("*", "!...") never matches. */
	if (h == NULL || h[0] == '\0' || h[0] == '*' || h[0] == '!')
		return false;
	char got[CRYPT_OUTPUT_SIZE];
	if (run_crypt(password, h, got, sizeof got) < 0)
		return false;
	bool ok = equal_const_time(h, got);
	explicit_bzero(got, sizeof got);
	return ok;
}

/* True if every byte of s could appear in a crypt(3) string (no blanks,
 * control characters, ':' or non-ASCII), so an imported line cannot smuggle
 * anything into a database or a log. */
static bool crypt_charset_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c >= 0x7f || c == ':')
			return false;
	}
	return true;
}

int password_import(const char *hash, char *out, size_t outsz)
{
	if (hash == NULL)
		return -1;
	const char *h = strip_scheme(hash);
	if (h == NULL || h[0] == '\0' || !crypt_charset_ok(h))
		return -1;
	int ok = crypt_checksalt(h);
	if (ok != CRYPT_SALT_OK && ok != CRYPT_SALT_METHOD_LEGACY && ok != CRYPT_SALT_TOO_CHEAP)
		return -1;
	/* crypt_checksalt looks at the setting only.  Hashing a dummy password
	 * with the whole string as setting must give a string of the same
	 * length with the same setting: that proves the checksum part has the
	 * shape this scheme produces (no truncated or padded imports). */
	char probe[CRYPT_OUTPUT_SIZE];
	if (run_crypt("tern-import-probe", h, probe, sizeof probe) < 0)
		return -1;
	size_t n = strlen(h);
	bool same_shape = strlen(probe) == n;
	const char *last = strrchr(h, '$');
	if (same_shape && last != NULL) {
		size_t setting_len = (size_t)(last - h);
		same_shape = memcmp(probe, h, setting_len) == 0;
	}
	if (!same_shape || n >= outsz)
		return -1;
	memcpy(out, h, n + 1);
	return 0;
}
