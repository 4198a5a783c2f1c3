/*
 * test-sasl.c - unit tests for src/auth/sasl.c: PLAIN and LOGIN with and
 * without initial responses, SCRAM-SHA-256 on the RFC 7677 example,
 * SCRAM-SHA-256-PLUS with both channel-binding types (proofs computed here
 * with libcrypto), the downgrade case, and malformed input.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "password.h"
#include "sasl.h"
#include "test.h"

/* --------------------------------------------------------- fixtures */

/* RFC 7677 section 3. */
#define RFC_SALT_B64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_FINAL                                                                                  \
	"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_VERIFIER "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* The user directory of these tests: user@example.test (password
 * "pencil", with SCRAM keys), "user" (the RFC example), imported@... (a
 * hash but no SCRAM keys); "broken@example.test" makes the lookup fail. */
static int lookups;

static const char *pencil_hash(void)
{
	static char h[256];
	if (h[0] == '\0' && password_hash("pencil", h, sizeof h) < 0)
		h[0] = '\0';
	return h;
}

static void rfc_record(char *out, size_t outsz)
{
	unsigned char salt[32];
	long n = base64_decode(RFC_SALT_B64, strlen(RFC_SALT_B64), salt, sizeof salt);
	if (n < 0 || sasl_scram_compute("pencil", salt, (size_t)n, 4096, out, outsz) < 0)
		out[0] = '\0';
}

static int lookup(void *ctx, const char *user, struct sasl_creds *out)
{
	(void)ctx;
	lookups++;
	if (!strcmp(user, "broken@example.test"))
		return -1;
	if (!strcasecmp(user, "user@example.test") || !strcmp(user, "user")) {
		snprintf(out->address, sizeof out->address, "%s",
			 strcmp(user, "user") ? "user@example.test" : "user");
		snprintf(out->pwhash, sizeof out->pwhash, "%s", pencil_hash());
		rfc_record(out->scram, sizeof out->scram);
		return 1;
	}
	if (!strcmp(user, "imported@example.test")) {
		snprintf(out->address, sizeof out->address, "%s", user);
		snprintf(out->pwhash, sizeof out->pwhash, "%s", pencil_hash());
		return 1;
	}
	return 0;
}

static const unsigned char exporter_data[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const unsigned char endpoint_data[48] = {0xde, 0xad, 0xbe, 0xef};

static struct sasl_server *new_server(enum sasl_mech m, bool tls)
{
	struct sasl_params p;
	memset(&p, 0, sizeof p);
	p.lookup = lookup;
	if (tls) {
		p.cbind[0] =
		    (struct sasl_cbind){"tls-exporter", exporter_data, sizeof exporter_data};
		p.cbind[1] = (struct sasl_cbind){"tls-server-end-point", endpoint_data,
						 sizeof endpoint_data};
		p.n_cbind = 2;
	}
	lookups = 0;
	return sasl_server_new(m, &p);
}

/* The challenge/final data as a C string (tests' data has no NULs). */
static const char *data_str(struct sasl_server *s)
{
	static char buf[512];
	size_t n;
	const unsigned char *d = sasl_server_data(s, &n);
	snprintf(buf, sizeof buf, "%.*s", (int)n, (const char *)d);
	return buf;
}

static enum sasl_status step_str(struct sasl_server *s, const char *msg)
{
	return sasl_server_step(s, msg, strlen(msg));
}

/* ----------------------------------------------------------- PLAIN */

static enum sasl_status plain_ir(const char *msg, size_t n, struct sasl_server **out)
{
	struct sasl_server *s = new_server(SASL_MECH_PLAIN, false);
	enum sasl_status st = sasl_server_start(s, msg, n);
	if (st == SASL_VERIFY)
		st = sasl_server_verify(s);
	*out = s;
	return st;
}

TEST(sasl_mech_names)
{
	enum sasl_mech m;
	CHECK_INT(sasl_mech_from_name("plain", 5, &m), 0);
	CHECK_INT(m, SASL_MECH_PLAIN);
	CHECK_INT(sasl_mech_from_name("SCRAM-SHA-256-PLUS", 18, &m), 0);
	CHECK_INT(m, SASL_MECH_SCRAM_SHA_256_PLUS);
	CHECK_INT(sasl_mech_from_name("SCRAM-SHA-256", 13, &m), 0);
	CHECK_INT(m, SASL_MECH_SCRAM_SHA_256);
	CHECK_INT(sasl_mech_from_name("SCRAM-SHA-1", 11, &m), -1);
	CHECK_INT(sasl_mech_from_name("PLAINX", 5, &m), 0); /* length counts */
	CHECK_INT(sasl_mech_from_name("CRAM-MD5", 8, &m), -1);
	CHECK_STR(sasl_mech_name(SASL_MECH_LOGIN), "LOGIN");
}

TEST(sasl_plain_initial_response_ok)
{
	struct sasl_server *s;
	static const char msg[] = "\0user@example.test\0pencil";
	CHECK_INT(plain_ir(msg, sizeof msg - 1, &s), SASL_OK);
	CHECK_STR(sasl_server_account(s), "user@example.test");
	size_t n;
	sasl_server_data(s, &n);
	CHECK_INT(n, 0);
	CHECK_INT(lookups, 1);
	sasl_server_free(&s);
	CHECK(s == NULL);
	sasl_server_free(&s); /* NULL is fine */
}

TEST(sasl_plain_authzid_same_user_case_insensitive)
{
	struct sasl_server *s;
	static const char msg[] = "USER@example.test\0user@example.test\0pencil";
	CHECK_INT(plain_ir(msg, sizeof msg - 1, &s), SASL_OK);
	CHECK_STR(sasl_server_account(s), "user@example.test");
	sasl_server_free(&s);
}

TEST(sasl_plain_other_authzid_refused)
{
	struct sasl_server *s;
	static const char msg[] = "admin@example.test\0user@example.test\0pencil";
	CHECK_INT(plain_ir(msg, sizeof msg - 1, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_AUTHZ);
	CHECK_STR(sasl_server_account(s), "");
	CHECK_INT(lookups, 0); /* refused before any lookup */
	sasl_server_free(&s);
}

TEST(sasl_plain_wrong_password_and_unknown_user)
{
	struct sasl_server *s;
	static const char wrong[] = "\0user@example.test\0pencil2";
	CHECK_INT(plain_ir(wrong, sizeof wrong - 1, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	CHECK_STR(sasl_server_user(s), "user@example.test");
	sasl_server_free(&s);
	static const char unknown[] = "\0nobody@example.test\0pencil";
	CHECK_INT(plain_ir(unknown, sizeof unknown - 1, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	sasl_server_free(&s);
	static const char broken[] = "\0broken@example.test\0pencil";
	CHECK_INT(plain_ir(broken, sizeof broken - 1, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_TEMPORARY);
	sasl_server_free(&s);
}

TEST(sasl_plain_without_initial_response)
{
	struct sasl_server *s = new_server(SASL_MECH_PLAIN, false);
	CHECK_INT(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	size_t n = 99;
	sasl_server_data(s, &n);
	CHECK_INT(n, 0); /* empty challenge */
	static const char msg[] = "\0user@example.test\0pencil";
	CHECK_INT(sasl_server_step(s, msg, sizeof msg - 1), SASL_VERIFY);
	CHECK_INT(sasl_server_verify(s), SASL_OK);
	/* Done is sticky. */
	CHECK_INT(sasl_server_step(s, msg, sizeof msg - 1), SASL_OK);
	sasl_server_free(&s);
}

TEST(sasl_plain_malformed)
{
	static const struct {
		const char *msg;
		size_t len;
	} bad[] = {
	    {"", 0},                               /* empty initial response */
	    {"user@example.test", 17},             /* no NUL */
	    {"\0user@example.test", 18},           /* one NUL */
	    {"\0\0pencil", 8},                     /* empty authcid */
	    {"\0user@example.test\0", 19},         /* empty password */
	    {"\0user@example.test\0pen\0cil", 26}, /* third NUL */
	    {"\0us\ter@example.test\0pencil", 26}, /* control character */
	    {"\0us\xc3"
	     "er@example.test\0pencil",
	     26}, /* bad UTF-8 */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sasl_server *s;
		CHECK_INT(plain_ir(bad[i].msg, bad[i].len, &s), SASL_FAIL);
		if (sasl_server_error(s) != SASL_ERR_MALFORMED)
			test_fail_int(__FILE__, __LINE__, "malformed case", (long long)i, -1);
		sasl_server_free(&s);
	}
	/* Fields over 255 bytes, and a response over SASL_MAX_RESPONSE. */
	char big[SASL_MAX_RESPONSE + 2];
	memset(big, 'a', sizeof big);
	big[0] = '\0';
	big[300] = '\0';
	struct sasl_server *s;
	CHECK_INT(plain_ir(big, 310, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_MALFORMED);
	sasl_server_free(&s);
	CHECK_INT(plain_ir(big, sizeof big, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_MALFORMED);
	sasl_server_free(&s);
}

/* ----------------------------------------------------------- LOGIN */

TEST(sasl_login_exchange)
{
	struct sasl_server *s = new_server(SASL_MECH_LOGIN, false);
	CHECK_INT(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	CHECK_STR(data_str(s), "Username:");
	CHECK_INT(step_str(s, "user@example.test"), SASL_CONTINUE);
	CHECK_STR(data_str(s), "Password:");
	CHECK_INT(step_str(s, "pencil"), SASL_VERIFY);
	CHECK_INT(sasl_server_verify(s), SASL_OK);
	CHECK_STR(sasl_server_account(s), "user@example.test");
	sasl_server_free(&s);

	/* Username as initial response. */
	s = new_server(SASL_MECH_LOGIN, false);
	CHECK_INT(sasl_server_start(s, "user@example.test", 17), SASL_CONTINUE);
	CHECK_STR(data_str(s), "Password:");
	CHECK_INT(step_str(s, "wrong"), SASL_VERIFY);
	CHECK_INT(sasl_server_verify(s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	sasl_server_free(&s);

	/* An empty username or password is malformed. */
	s = new_server(SASL_MECH_LOGIN, false);
	CHECK_INT(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, "", 0), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_MALFORMED);
	sasl_server_free(&s);
	s = new_server(SASL_MECH_LOGIN, false);
	CHECK_INT(sasl_server_start(s, "u@example.test", 14), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, "", 0), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_MALFORMED);
	/* Verify out of turn fails too. */
	CHECK_INT(sasl_server_verify(s), SASL_FAIL);
	sasl_server_free(&s);
}

/* ----------------------------------------------------------- SCRAM */

TEST(sasl_scram_record_rfc7677_keys)
{
	char rec[SASL_SCRAM_RECORD_MAX];
	rfc_record(rec, sizeof rec);
	/* StoredKey and ServerKey of user/pencil with the RFC's salt. */
	CHECK_STR(rec, "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
		       "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		       "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
	struct sasl_scram_keys k;
	CHECK_INT(sasl_scram_parse(rec, &k), 0);
	CHECK_INT(k.iterations, 4096);
	CHECK_INT(k.salt_len, 16);
	static const char *const bad[] = {
	    "",
	    "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
	    ":"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcX:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
	    "SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (sasl_scram_parse(bad[i], &k) != -1)
			test_fail_str(__FILE__, __LINE__, "parsed", bad[i], "-1");
	/* Passwords SCRAM keys are made for. */
	CHECK(sasl_scram_password_ok("pencil"));
	CHECK(sasl_scram_password_ok("with space ~"));
	CHECK(!sasl_scram_password_ok(""));
	CHECK(!sasl_scram_password_ok("caf\xc3\xa9"));
	CHECK(!sasl_scram_password_ok("tab\there"));
	CHECK_INT(sasl_scram_make("caf\xc3\xa9", 4096, rec, sizeof rec), -1);
	CHECK_INT(sasl_scram_make("pencil", 4096, rec, sizeof rec), 0);
	CHECK(strncmp(rec, "SCRAM-SHA-256$4096:", 19) == 0);
	CHECK_INT(sasl_scram_parse(rec, &k), 0);
	CHECK_INT(sasl_scram_make("pencil", 4096, rec, 40), -1); /* too small */
}

TEST(sasl_scram_rfc7677_example)
{
	struct sasl_server *s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	sasl_server_set_nonce(s, RFC_SNONCE);
	const char *first = "n,,n=user,r=" RFC_CNONCE;
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_CONTINUE);
	CHECK_STR(data_str(s), "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT_B64 ",i=4096");
	CHECK_INT(step_str(s, RFC_FINAL), SASL_OK);
	CHECK_STR(data_str(s), RFC_VERIFIER);
	CHECK_STR(sasl_server_account(s), "user");
	CHECK_INT(lookups, 1);
	sasl_server_free(&s);

	/* The same without an initial response: an empty challenge first. */
	s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	sasl_server_set_nonce(s, RFC_SNONCE);
	CHECK_INT(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	CHECK_STR(data_str(s), "");
	CHECK_INT(step_str(s, first), SASL_CONTINUE);
	CHECK_INT(step_str(s, RFC_FINAL), SASL_OK);
	CHECK_STR(data_str(s), RFC_VERIFIER);
	sasl_server_free(&s);
}

TEST(sasl_scram_wrong_proof_and_nonce)
{
	const char *first = "n,,n=user,r=" RFC_CNONCE;
	struct sasl_server *s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	sasl_server_set_nonce(s, RFC_SNONCE);
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_CONTINUE);
	/* One bit of the proof changed ('d' -> 'e' in its first character). */
	CHECK_INT(step_str(s, "c=biws,r=" RFC_CNONCE RFC_SNONCE
			      ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
		  SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	size_t n;
	sasl_server_data(s, &n);
	CHECK_INT(n, 0);
	sasl_server_free(&s);

	/* Another server nonce than ours. */
	s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	sasl_server_set_nonce(s, "other");
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_CONTINUE);
	CHECK_INT(step_str(s, RFC_FINAL), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_MALFORMED);
	sasl_server_free(&s);
}

TEST(sasl_scram_unknown_user_goes_on_then_fails)
{
	const char *first = "n,,n=ghost@example.test,r=abc";
	struct sasl_server *s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	sasl_server_set_nonce(s, "xyz");
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_CONTINUE);
	const char *c1 = data_str(s);
	CHECK(strncmp(c1, "r=abcxyz,s=", 11) == 0);
	CHECK(strstr(c1, ",i=4096") != NULL);
	char salt1[512];
	snprintf(salt1, sizeof salt1, "%s", c1);
	CHECK_INT(step_str(s, "c=biws,r=abcxyz,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
		  SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	sasl_server_free(&s);
	/* The fake salt is stable for a name. */
	s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	sasl_server_set_nonce(s, "xyz");
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_CONTINUE);
	CHECK_STR(data_str(s), salt1);
	sasl_server_free(&s);
}

TEST(sasl_scram_imported_user_unavailable)
{
	const char *first = "n,,n=imported@example.test,r=abc";
	struct sasl_server *s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_UNAVAILABLE);
	sasl_server_free(&s);
	/* PLAIN still works for that user. */
	static const char msg[] = "\0imported@example.test\0pencil";
	CHECK_INT(plain_ir(msg, sizeof msg - 1, &s), SASL_OK);
	sasl_server_free(&s);
}

TEST(sasl_scram_authzid_and_saslname)
{
	/* a= naming the user itself is fine (and "=2C"/"=3D" decode). */
	struct sasl_server *s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	const char *first = "n,a=user,n=user,r=abc";
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_CONTINUE);
	sasl_server_free(&s);
	s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	first = "n,a=admin,n=user,r=abc";
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_AUTHZ);
	sasl_server_free(&s);
	s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	first = "n,,n=a=2Cb=3Dc,r=abc";
	CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_CONTINUE);
	CHECK_STR(sasl_server_user(s), "a,b=c");
	sasl_server_free(&s);
	/* Long names (up to 255 bytes) fit in the gs2 header and the user. */
	char name[256], msg[700];
	memset(name, 'x', 250);
	memcpy(name + 250, "@e.tt", 6);
	snprintf(msg, sizeof msg, "n,a=%s,n=%s,r=abc", name, name);
	s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	CHECK_INT(sasl_server_start(s, msg, strlen(msg)), SASL_CONTINUE);
	CHECK_STR(sasl_server_user(s), name);
	sasl_server_free(&s);
	/* 256 bytes is one too many. */
	char longer[300];
	memset(longer, 'x', 256);
	longer[256] = '\0';
	snprintf(msg, sizeof msg, "n,,n=%s,r=abc", longer);
	s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	CHECK_INT(sasl_server_start(s, msg, strlen(msg)), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_MALFORMED);
	sasl_server_free(&s);
}

TEST(sasl_scram_malformed)
{
	static const char *const bad[] = {
	    "",
	    "n,,",
	    "n,,n=user",                           /* no nonce */
	    "n,,r=abc,n=user",                     /* wrong order */
	    "x,,n=user,r=abc",                     /* unknown flag */
	    "n,x=1,n=user,r=abc",                  /* not an authzid */
	    "n,,m=ext,n=user,r=abc",               /* mandatory extension */
	    "n,,n=us=2Xer,r=abc",                  /* bad saslname escape */
	    "n,,n=user=,r=abc",                    /* bare '=' */
	    "n,,n=,r=abc",                         /* empty user */
	    "n,,n=user,r=",                        /* empty nonce */
	    "n,,n=user,r=a\x7fz",                  /* DEL in nonce */
	    "n,,n=user,r=abc,1=x",                 /* extension name not a letter */
	    "n,,n=user,r=abc,a=1,b=2,c=3,d=4,e=5", /* too many attributes */
	    "p=tls-exporter,,n=user,r=abc",        /* p with the non-PLUS mechanism */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct sasl_server *s = new_server(SASL_MECH_SCRAM_SHA_256, false);
		enum sasl_status st = sasl_server_start(s, bad[i], strlen(bad[i]));
		if (st != SASL_FAIL || sasl_server_error(s) != SASL_ERR_MALFORMED)
			test_fail_str(__FILE__, __LINE__, "accepted", bad[i], "malformed");
		sasl_server_free(&s);
	}
	/* Bad client-final messages. */
	static const char *const bad_final[] = {
	    "",
	    "r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	    "c=biws,r=" RFC_CNONCE RFC_SNONCE,
	    "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzb",
	    "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",
	    "c=bi,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	};
	const char *first = "n,,n=user,r=" RFC_CNONCE;
	for (size_t i = 0; i < sizeof bad_final / sizeof bad_final[0]; i++) {
		struct sasl_server *s = new_server(SASL_MECH_SCRAM_SHA_256, false);
		sasl_server_set_nonce(s, RFC_SNONCE);
		CHECK_INT(sasl_server_start(s, first, strlen(first)), SASL_CONTINUE);
		enum sasl_status st = step_str(s, bad_final[i]);
		if (st != SASL_FAIL || sasl_server_error(s) != SASL_ERR_MALFORMED)
			test_fail_str(__FILE__, __LINE__, "accepted", bad_final[i], "malformed");
		sasl_server_free(&s);
	}
}

/* ------------------------------------------------------ SCRAM-PLUS */

static void hmac(const unsigned char *key, size_t klen, const void *d, size_t n,
		 unsigned char out[32])
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), key, (int)klen, d, n, out, &len);
}

/* What a client sends as client-final-message for password "pencil",
 * given our server-first message and its own bare first message, with
 * cbind = base64 of gs2 header + binding data. */
static void client_final(const char *bare, const char *server_first, const char *cbind, char *out,
			 size_t outsz)
{
	/* server_first = r=NONCE,s=SALT,i=ITER */
	char nonce[256], salt64[128];
	unsigned iter = 0;
	if (sscanf(server_first, "r=%255[^,],s=%127[^,],i=%u", nonce, salt64, &iter) != 3) {
		out[0] = '\0';
		return;
	}
	unsigned char salt[96], salted[32], ckey[32], stored[32], sig[32], proof[32];
	long sl = base64_decode(salt64, strlen(salt64), salt, sizeof salt);
	PKCS5_PBKDF2_HMAC("pencil", 6, salt, (int)sl, (int)iter, EVP_sha256(), 32, salted);
	hmac(salted, 32, "Client Key", 10, ckey);
	SHA256(ckey, 32, stored);
	char without[1024], am[2048];
	if (snprintf(without, sizeof without, "c=%s,r=%s", cbind, nonce) >= (int)sizeof without ||
	    snprintf(am, sizeof am, "%s,%s,%s", bare, server_first, without) >= (int)sizeof am) {
		out[0] = '\0';
		return;
	}
	hmac(stored, 32, am, strlen(am), sig);
	for (int i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ sig[i];
	char p64[64];
	base64_encode(proof, 32, p64, sizeof p64);
	if (snprintf(out, outsz, "%s,p=%s", without, p64) >= (int)outsz)
		out[0] = '\0';
}

static void cbind_b64(const char *gs2, const unsigned char *data, size_t n, char *out, size_t outsz)
{
	unsigned char in[256];
	size_t gl = strlen(gs2);
	memcpy(in, gs2, gl);
	if (n > 0)
		memcpy(in + gl, data, n);
	base64_encode(in, gl + n, out, outsz);
}

/* Runs a -PLUS (or plain) exchange with flag gs2 and the binding data the
 * client believes in; returns the final status. */
static enum sasl_status run_scram(enum sasl_mech m, bool tls, const char *gs2,
				  const unsigned char *data, size_t n, struct sasl_server **out)
{
	struct sasl_server *s = new_server(m, tls);
	char first[256];
	const char *bare = "n=user@example.test,r=clientnonce";
	snprintf(first, sizeof first, "%s%s", gs2, bare);
	enum sasl_status st = sasl_server_start(s, first, strlen(first));
	if (st == SASL_CONTINUE) {
		char sf[512], cb[256], fin[1024];
		snprintf(sf, sizeof sf, "%s", data_str(s));
		cbind_b64(gs2, data, n, cb, sizeof cb);
		client_final(bare, sf, cb, fin, sizeof fin);
		st = step_str(s, fin);
	}
	*out = s;
	return st;
}

TEST(sasl_scram_plus_both_binding_types)
{
	struct sasl_server *s;
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256_PLUS, true, "p=tls-exporter,,", exporter_data,
			    sizeof exporter_data, &s),
		  SASL_OK);
	CHECK_STR(sasl_server_account(s), "user@example.test");
	CHECK(strncmp(data_str(s), "v=", 2) == 0);
	sasl_server_free(&s);
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256_PLUS, true, "p=tls-server-end-point,,",
			    endpoint_data, sizeof endpoint_data, &s),
		  SASL_OK);
	sasl_server_free(&s);
	/* With an authzid in the gs2 header, which c= must repeat. */
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256_PLUS, true,
			    "p=tls-exporter,a=user@example.test,", exporter_data,
			    sizeof exporter_data, &s),
		  SASL_OK);
	sasl_server_free(&s);
	/* Plain SCRAM over TLS with "n" works; the helper computes proofs
	 * that the server accepts. */
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256, true, "n,,", NULL, 0, &s), SASL_OK);
	sasl_server_free(&s);
}

TEST(sasl_scram_plus_binding_mismatch)
{
	struct sasl_server *s;
	/* The client saw other binding data (a man in the middle). */
	unsigned char other[32] = {9, 9, 9};
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256_PLUS, true, "p=tls-exporter,,", other,
			    sizeof other, &s),
		  SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CHANNEL_BINDING);
	sasl_server_free(&s);
	/* A type we do not offer. */
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256_PLUS, true, "p=tls-unique,,", other,
			    sizeof other, &s),
		  SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CHANNEL_BINDING);
	sasl_server_free(&s);
	/* -PLUS with "n": the client does not bind. */
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256_PLUS, true, "n,,", NULL, 0, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CHANNEL_BINDING);
	sasl_server_free(&s);
	/* -PLUS without TLS is unavailable. */
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256_PLUS, false, "p=tls-exporter,,", exporter_data,
			    sizeof exporter_data, &s),
		  SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_UNAVAILABLE);
	sasl_server_free(&s);
}

TEST(sasl_scram_downgrade_detected)
{
	struct sasl_server *s;
	/* "y" while we offer -PLUS: someone stripped it from our list. */
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256, true, "y,,", NULL, 0, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CHANNEL_BINDING);
	sasl_server_free(&s);
	/* "y" without TLS (we offer no -PLUS) is honest and fine. */
	CHECK_INT(run_scram(SASL_MECH_SCRAM_SHA_256, false, "y,,", NULL, 0, &s), SASL_OK);
	sasl_server_free(&s);
}

TEST(sasl_step_before_start_and_after_end)
{
	struct sasl_server *s = new_server(SASL_MECH_PLAIN, false);
	CHECK_INT(sasl_server_step(s, "x", 1), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_MALFORMED);
	CHECK_INT(sasl_server_start(s, NULL, 0), SASL_FAIL);
	sasl_server_free(&s);
	s = new_server(SASL_MECH_SCRAM_SHA_256, false);
	CHECK_INT(sasl_server_start(s, NULL, 0), SASL_CONTINUE);
	CHECK_INT(sasl_server_step(s, NULL, 0), SASL_FAIL);
	sasl_server_free(&s);
}
