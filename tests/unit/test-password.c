/*
 * test-password.c - unit tests for src/auth/password.c: yescrypt round
 * trips, hashes of other schemes made here with libcrypt, Dovecot imports.
 */
#include <crypt.h>
#include <stdio.h>
#include <string.h>

#include "password.h"
#include "test.h"

/* Makes a hash of password with the given crypt prefix ("$6$", "$2b$")
 * through libcrypt directly, as another system would have.  Returns out or
 * NULL. */
static const char *make_hash(const char *prefix, const char *password, char *out, size_t outsz)
{
	static struct crypt_data cd;
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	if (crypt_gensalt_rn(prefix, 0, NULL, 0, setting, (int)sizeof setting) == NULL)
		return NULL;
	memset(&cd, 0, sizeof cd);
	const char *r = crypt_rn(password, setting, &cd, (int)sizeof cd);
	if (r == NULL || r[0] == '*' || strlen(r) >= outsz)
		return NULL;
	memcpy(out, r, strlen(r) + 1);
	return out;
}

TEST(password_hash_verify_round_trip)
{
	char h[256];
	CHECK_INT(password_hash("correct horse", h, sizeof h), 0);
	CHECK(strncmp(h, "$y$", 3) == 0);
	CHECK(password_verify("correct horse", h));
	/* A fresh salt each time: two hashes of one password differ. */
	char h2[256];
	CHECK_INT(password_hash("correct horse", h2, sizeof h2), 0);
	CHECK(strcmp(h, h2) != 0);
	CHECK(password_verify("correct horse", h2));
}

TEST(password_wrong_password)
{
	char h[256];
	CHECK_INT(password_hash("secret", h, sizeof h), 0);
	CHECK(!password_verify("Secret", h));
	CHECK(!password_verify("secret ", h));
	CHECK(!password_verify("", h));
	CHECK(!password_verify("secret", ""));
	CHECK(!password_verify("secret", "*"));
	CHECK(!password_verify("secret", "!locked"));
	CHECK(!password_verify(NULL, h));
	CHECK(!password_verify("secret", NULL));
}

TEST(password_empty_password_hashes)
{
	char h[256];
	CHECK_INT(password_hash("", h, sizeof h), 0);
	CHECK(password_verify("", h));
	CHECK(!password_verify("x", h));
}

TEST(password_hash_small_buffer)
{
	char h[16];
	CHECK_INT(password_hash("secret", h, sizeof h), -1);
}

TEST(password_verify_truncated_hash)
{
	char h[256];
	CHECK_INT(password_hash("secret", h, sizeof h), 0);
	h[strlen(h) - 1] = '\0';
	CHECK(!password_verify("secret", h));
}

TEST(password_verify_sha512_crypt)
{
	char h[256];
	CHECK(make_hash("$6$", "hunter2", h, sizeof h) != NULL);
	CHECK(strncmp(h, "$6$", 3) == 0);
	CHECK(password_verify("hunter2", h));
	CHECK(!password_verify("hunter3", h));
}

TEST(password_verify_bcrypt)
{
	char h[256];
	CHECK(make_hash("$2b$", "hunter2", h, sizeof h) != NULL);
	CHECK(strncmp(h, "$2b$", 4) == 0);
	CHECK(password_verify("hunter2", h));
	CHECK(!password_verify("hunter3", h));
}

TEST(password_import_prefixed)
{
	char h6[256], h2b[256], hy[256], out[256];
	CHECK(make_hash("$6$", "pw", h6, sizeof h6) != NULL);
	CHECK(make_hash("$2b$", "pw", h2b, sizeof h2b) != NULL);
	CHECK_INT(password_hash("pw", hy, sizeof hy), 0);

	char in[300];
	snprintf(in, sizeof in, "{SHA512-CRYPT}%s", h6);
	CHECK_INT(password_import(in, out, sizeof out), 0);
	CHECK_STR(out, h6);
	CHECK(password_verify("pw", out));

	snprintf(in, sizeof in, "{BLF-CRYPT}%s", h2b);
	CHECK_INT(password_import(in, out, sizeof out), 0);
	CHECK_STR(out, h2b);
	CHECK(password_verify("pw", out));

	snprintf(in, sizeof in, "{YESCRYPT}%s", hy);
	CHECK_INT(password_import(in, out, sizeof out), 0);
	CHECK_STR(out, hy);

	snprintf(in, sizeof in, "{CRYPT}%s", h6);
	CHECK_INT(password_import(in, out, sizeof out), 0);
	CHECK_STR(out, h6);

	/* Scheme names are case-insensitive in Dovecot. */
	snprintf(in, sizeof in, "{sha512-crypt}%s", h6);
	CHECK_INT(password_import(in, out, sizeof out), 0);
	CHECK_STR(out, h6);

	/* No prefix: a bare crypt string is taken as it is. */
	CHECK_INT(password_import(h2b, out, sizeof out), 0);
	CHECK_STR(out, h2b);

	/* Verification also accepts a prefixed hash. */
	snprintf(in, sizeof in, "{SHA512-CRYPT}%s", h6);
	CHECK(password_verify("pw", in));
}

TEST(password_import_refused)
{
	char h6[256], out[256], in[300];
	CHECK(make_hash("$6$", "pw", h6, sizeof h6) != NULL);
	CHECK_INT(password_import("{PLAIN}secret", out, sizeof out), -1);
	CHECK_INT(password_import("{PLAIN}$6$abc", out, sizeof out), -1);
	CHECK_INT(password_import("{CRAM-MD5}abcdef", out, sizeof out), -1);
	CHECK_INT(password_import("", out, sizeof out), -1);
	CHECK_INT(password_import("plaintext", out, sizeof out), -1);
	CHECK_INT(password_import("$6$", out, sizeof out), -1);
	/* The prefix must match the crypt scheme behind it. */
	snprintf(in, sizeof in, "{BLF-CRYPT}%s", h6);
	CHECK_INT(password_import(in, out, sizeof out), -1);
	/* Truncated or padded checksums are refused. */
	snprintf(in, sizeof in, "%s", h6);
	in[strlen(in) - 3] = '\0';
	CHECK_INT(password_import(in, out, sizeof out), -1);
	snprintf(in, sizeof in, "%sAB", h6);
	CHECK_INT(password_import(in, out, sizeof out), -1);
	/* Blanks and ':' cannot sneak in. */
	snprintf(in, sizeof in, "%s", h6);
	in[5] = ':';
	CHECK_INT(password_import(in, out, sizeof out), -1);
	/* Too small an output buffer. */
	CHECK_INT(password_import(h6, out, 8), -1);
}
