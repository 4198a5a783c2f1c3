/*
 * test-dkim.c - unit tests for src/mailauth/dkim.c: the tag-list and key
 * record parsers, the RFC 6376 3.4.5 canonicalization example, and sign +
 * verify round trips with both key types (one altered byte fails).
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "dkim.h"
#include "test-mailauth.h"
#include "test.h"

TEST(dkim_taglist_basic)
{
	struct dkim_taglist tl;
	char err[DKIM_ERR_MAX];
	const char *s = " v=1; a = rsa-sha256 ;\r\n\tb=abc\r\n def ; e=;";
	CHECK_INT(dkim_taglist_parse(s, strlen(s), &tl, err, sizeof err), 0);
	CHECK_INT(tl.n, 4);
	const struct dkim_tag *t = dkim_taglist_get(&tl, "a");
	CHECK(t != NULL && t->val_len == 10 && memcmp(t->val, "rsa-sha256", 10) == 0);
	t = dkim_taglist_get(&tl, "b");
	CHECK(t != NULL && t->val_len == 9 && memcmp(t->val, "abc\r\n def", 9) == 0);
	t = dkim_taglist_get(&tl, "e");
	CHECK(t != NULL && t->val_len == 0);
	CHECK(dkim_taglist_get(&tl, "x") == NULL);
}

TEST(dkim_taglist_errors)
{
	struct dkim_taglist tl;
	char err[DKIM_ERR_MAX];
	CHECK_INT(dkim_taglist_parse("a=1; a=2", 8, &tl, err, sizeof err), -1);
	CHECK_STR(err, "tag 'a' appears twice");
	CHECK_INT(dkim_taglist_parse("a", 1, &tl, err, sizeof err), -1);
	CHECK_STR(err, "tag 'a' has no '='");
	CHECK_INT(dkim_taglist_parse("1a=2", 4, &tl, err, sizeof err), -1);
	CHECK_INT(dkim_taglist_parse("a=\x01", 3, &tl, err, sizeof err), -1);
	CHECK_STR(err, "byte 0x01 not allowed in the value of 'a'");
	char many[400];
	size_t n = 0;
	for (int i = 0; i < DKIM_TAGS_MAX + 1; i++)
		n += (size_t)snprintf(many + n, sizeof many - n, "t%d=1;", i);
	CHECK_INT(dkim_taglist_parse(many, n, &tl, err, sizeof err), -1);
	CHECK_STR(err, "more than 32 tags");
	char *big = malloc(DKIM_TAGLIST_MAX + 10);
	memset(big, 'a', DKIM_TAGLIST_MAX + 10);
	big[0] = 'a';
	big[1] = '=';
	CHECK_INT(dkim_taglist_parse(big, DKIM_TAGLIST_MAX + 10, &tl, err, sizeof err), -1);
	CHECK_STR(err, "tag list longer than 16384 bytes");
	free(big);
}

TEST(dkim_keyrec_parse)
{
	struct dkim_keyrec k;
	char err[DKIM_ERR_MAX];
	/* RFC 8463 appendix A.2 */
	const char *ed = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
	CHECK_INT(dkim_keyrec_parse(ed, strlen(ed), &k, err, sizeof err), 0);
	CHECK_INT(k.type, DKIM_KEY_ED25519);
	CHECK_INT(k.pub_len, 32);
	CHECK(!k.revoked && k.sha256_ok && !k.testing);
	dkim_keyrec_clear(&k);
	CHECK_INT(dkim_keyrec_parse("v=DKIM1; p=", 11, &k, err, sizeof err), 0);
	CHECK(k.revoked && k.type == DKIM_KEY_RSA);
	const char *bad[][2] = {
	    {"k=rsa; v=DKIM1; p=", "key record: v= must come first and be DKIM1"},
	    {"v=DKIM2; p=", "key record: v= must come first and be DKIM1"},
	    {"k=dsa; p=", "key record: unknown key type k=dsa"},
	    {"v=DKIM1; k=rsa", "key record: no p= tag"},
	    {"p=abc", "key record: p= is not valid base64"},
	    {"k=ed25519; p=AAAA", "key record: an Ed25519 key is 32 bytes, p= has 3"},
	    {"s=tlsrpt; p=", "key record: not for email (s=)"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_INT(dkim_keyrec_parse(bad[i][0], strlen(bad[i][0]), &k, err, sizeof err), -1);
		CHECK_STR(err, bad[i][1]);
	}
	CHECK_INT(dkim_keyrec_parse("h=sha1; t=y:s; s=email:*; p=", 28, &k, err, sizeof err), 0);
	CHECK(!k.sha256_ok && k.testing && k.strict);
}

/* RFC 6376 3.4.5 */
TEST(dkim_canon_rfc6376_example)
{
	struct buf out = BUF_INIT;
	const char *a = "A: X\r\n", *b = "B : Y\t\r\n\tZ  \r\n";
	CHECK_INT(dkim_canon_header_relaxed(a, strlen(a), &out), 0);
	CHECK_INT(dkim_canon_header_relaxed(b, strlen(b), &out), 0);
	CHECK_STR(buf_cstr(&out), "a:X\r\nb:Y Z\r\n");
	buf_reset(&out);
	const char *body = " C \r\nD \t E\r\n\r\n\r\n";
	CHECK_INT(dkim_canon_body(body, strlen(body), true, &out), 0);
	CHECK_STR(buf_cstr(&out), " C\r\nD E\r\n");
	buf_reset(&out);
	CHECK_INT(dkim_canon_body(body, strlen(body), false, &out), 0);
	CHECK_STR(buf_cstr(&out), " C \r\nD \t E\r\n");
	buf_reset(&out);
	/* empty body: simple is one CRLF, relaxed nothing; bare LF = CRLF */
	CHECK_INT(dkim_canon_body("", 0, false, &out), 0);
	CHECK_STR(buf_cstr(&out), "\r\n");
	buf_reset(&out);
	CHECK_INT(dkim_canon_body("\r\n\r\n", 4, true, &out), 0);
	CHECK_STR(buf_cstr(&out), "");
	CHECK_INT(dkim_canon_body("x  y\nz", 6, true, &out), 0);
	CHECK_STR(buf_cstr(&out), "x y\r\nz\r\n");
	buf_free(&out);
}

struct keyctx {
	const char *selector;
	const char *record;
	int calls;
};

static int lookup(void *ctx, const char *selector, const char *domain, struct buf *rec, char *err,
		  size_t errsz)
{
	struct keyctx *k = ctx;
	k->calls++;
	if (strcmp(domain, "example.org") != 0 || strcmp(selector, k->selector) != 0) {
		snprintf(err, errsz, "no such key");
		return 1;
	}
	if (k->record == NULL) {
		snprintf(err, errsz, "DNS timed out");
		return -1;
	}
	return buf_puts(rec, k->record);
}

static const char msg[] = "From: Alice <alice@example.org>\r\n"
			  "To: bob@example.net\r\n"
			  "Subject: Hello  there\r\n"
			  "Date: Sun, 06 Dec 2026 12:00:00 +0000\r\n"
			  "Message-ID: <1@example.org>\r\n"
			  "\r\n"
			  "Hi Bob,\r\n"
			  "  see you.\r\n"
			  "\r\n";

struct dkim_signer *test_make_signer(enum dkim_keytype type, const char *sel, struct buf *record)
{
	struct buf pem = BUF_INIT;
	char err[DKIM_ERR_MAX];
	if (dkim_keygen(type, &pem, record, err, sizeof err) < 0)
		return NULL;
	char path[] = "/tmp/tern-test-dkim-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, pem.data, pem.len) != (ssize_t)pem.len)
		return NULL;
	close(fd);
	buf_free(&pem);
	struct dkim_signer *s = dkim_signer_load("example.org", sel, path, err, sizeof err);
	unlink(path);
	return s;
}

static void round_trip(enum dkim_keytype type, const char *algo)
{
	struct buf record = BUF_INIT, signed_msg = BUF_INIT;
	struct dkim_signer *s = test_make_signer(type, "sel1", &record);
	CHECK(s != NULL);
	if (s == NULL)
		return;
	char err[DKIM_ERR_MAX];
	CHECK_INT(dkim_sign(s, msg, sizeof msg - 1, 1796558400, &signed_msg, err, sizeof err), 0);
	CHECK(strstr(buf_cstr(&signed_msg), algo) != NULL);
	CHECK(strstr(buf_cstr(&signed_msg),
		     "h=From:From:Reply-To:Subject:Subject:Date:Date:To:To:") != NULL);
	buf_append(&signed_msg, msg, sizeof msg - 1);
	struct keyctx kc = {"sel1", buf_cstr(&record), 0};
	struct dkim_result res[2];
	CHECK_INT(dkim_verify(signed_msg.data, signed_msg.len, 1796558400, lookup, &kc, res, 2, err,
			      sizeof err),
		  1);
	CHECK_STR(dkim_status_name(res[0].status), "pass");
	CHECK_STR(res[0].domain, "example.org");
	CHECK_STR(res[0].algo, algo);

	/* one altered body byte */
	char *copy = malloc(signed_msg.len);
	memcpy(copy, signed_msg.data, signed_msg.len);
	char *p = strstr(copy, "Hi Bob");
	p[1] = 'I';
	CHECK_INT(dkim_verify(copy, signed_msg.len, 0, lookup, &kc, res, 2, err, sizeof err), 1);
	CHECK_STR(dkim_status_name(res[0].status), "fail");
	CHECK_STR(res[0].reason, "body hash did not verify");
	/* one altered header byte */
	memcpy(copy, signed_msg.data, signed_msg.len);
	p = strstr(copy, "Subject: Hello");
	p[9] = 'J';
	CHECK_INT(dkim_verify(copy, signed_msg.len, 0, lookup, &kc, res, 2, err, sizeof err), 1);
	CHECK_STR(res[0].reason, "signature did not verify");
	CHECK_STR(dkim_status_name(res[0].status), "fail");
	/* an added From (over-signing) */
	struct buf added = BUF_INIT;
	buf_append(&added, signed_msg.data, signed_msg.len);
	char *body = strstr(added.data, "\r\n\r\n");
	size_t off = (size_t)(body - added.data) + 2;
	struct buf two = BUF_INIT;
	buf_append(&two, added.data, off);
	buf_puts(&two, "From: mallory@example.com\r\n");
	buf_append(&two, added.data + off, added.len - off);
	CHECK_INT(dkim_verify(two.data, two.len, 0, lookup, &kc, res, 2, err, sizeof err), 1);
	CHECK_STR(dkim_status_name(res[0].status), "fail");
	buf_free(&two);
	buf_free(&added);
	/* relaxed: refolding and blank changes in the header still pass */
	memcpy(copy, signed_msg.data, signed_msg.len);
	p = strstr(copy, "Subject: Hello  there");
	p[14] = '\t';
	CHECK_INT(dkim_verify(copy, signed_msg.len, 0, lookup, &kc, res, 2, err, sizeof err), 1);
	CHECK_STR(dkim_status_name(res[0].status), "pass");
	free(copy);

	/* key problems */
	kc.record = NULL;
	CHECK_INT(
	    dkim_verify(signed_msg.data, signed_msg.len, 0, lookup, &kc, res, 2, err, sizeof err),
	    1);
	CHECK_STR(dkim_status_name(res[0].status), "temperror");
	kc.selector = "other";
	CHECK_INT(
	    dkim_verify(signed_msg.data, signed_msg.len, 0, lookup, &kc, res, 2, err, sizeof err),
	    1);
	CHECK_STR(dkim_status_name(res[0].status), "permerror");
	kc.selector = "sel1";
	kc.record = "v=DKIM1; p=";
	CHECK_INT(
	    dkim_verify(signed_msg.data, signed_msg.len, 0, lookup, &kc, res, 2, err, sizeof err),
	    1);
	CHECK_STR(res[0].reason, "key revoked");
	/* expired */
	kc.record = buf_cstr(&record);
	CHECK_INT(
	    dkim_verify(signed_msg.data, signed_msg.len, 0, lookup, &kc, res, 2, err, sizeof err),
	    1);
	CHECK_STR(dkim_status_name(res[0].status), "pass");
	dkim_signer_free(&s);
	CHECK(s == NULL);
	buf_free(&record);
	buf_free(&signed_msg);
}

TEST(dkim_round_trip_rsa)
{
	round_trip(DKIM_KEY_RSA, "rsa-sha256");
}

TEST(dkim_round_trip_ed25519)
{
	round_trip(DKIM_KEY_ED25519, "ed25519-sha256");
}

TEST(dkim_two_signatures)
{
	struct buf r1 = BUF_INIT, r2 = BUF_INIT, out = BUF_INIT;
	struct dkim_signer *a = test_make_signer(DKIM_KEY_ED25519, "sel1", &r1);
	struct dkim_signer *b = test_make_signer(DKIM_KEY_RSA, "sel1", &r2);
	char err[DKIM_ERR_MAX];
	CHECK(a != NULL && b != NULL);
	CHECK_INT(dkim_sign(a, msg, sizeof msg - 1, 1, &out, err, sizeof err), 0);
	CHECK_INT(dkim_sign(b, msg, sizeof msg - 1, 1, &out, err, sizeof err), 0);
	buf_append(&out, msg, sizeof msg - 1);
	struct keyctx kc = {"sel1", buf_cstr(&r1), 0};
	struct dkim_result res[4];
	CHECK_INT(dkim_verify(out.data, out.len, 2, lookup, &kc, res, 4, err, sizeof err), 2);
	CHECK_STR(dkim_status_name(res[0].status), "pass");
	CHECK_STR(dkim_status_name(res[1].status), "permerror");
	CHECK_STR(res[1].reason, "key does not fit the algorithm");
	dkim_signer_free(&a);
	dkim_signer_free(&b);
	buf_free(&r1);
	buf_free(&r2);
	buf_free(&out);
}

TEST(dkim_rfc8301_rejects)
{
	/* rsa-sha1 never passes */
	const char *m = "DKIM-Signature: v=1; a=rsa-sha1; d=example.org; s=sel1; h=from; bh=; "
			"b=\r\nFrom: a@example.org\r\n\r\nx\r\n";
	struct keyctx kc = {"sel1", "v=DKIM1; p=", 0};
	struct dkim_result res[1];
	char err[DKIM_ERR_MAX];
	CHECK_INT(dkim_verify(m, strlen(m), 0, lookup, &kc, res, 1, err, sizeof err), 1);
	CHECK_STR(dkim_status_name(res[0].status), "fail");
	CHECK_STR(res[0].reason, "rsa-sha1 is not accepted (RFC 8301)");
	CHECK_INT(kc.calls, 0);

	/* a 512-bit RSA key never passes */
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)512);
	CHECK(pk != NULL);
	unsigned char *der = NULL;
	int dl = i2d_PUBKEY(pk, &der);
	char b64[400], rec[450];
	base64_encode(der, (size_t)dl, b64, sizeof b64);
	snprintf(rec, sizeof rec, "v=DKIM1; p=%s", b64);
	OPENSSL_free(der);
	char path[] = "/tmp/tern-test-dkim-XXXXXX";
	int fd = mkstemp(path);
	FILE *fp = fdopen(fd, "w");
	PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	EVP_PKEY_free(pk);
	/* the signer refuses it too */
	CHECK(dkim_signer_load("example.org", "sel1", path, err, sizeof err) == NULL);
	unlink(path);
	const char *m2 = "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=sel1; h=from; "
			 "bh=AAAA; b=AAAA\r\nFrom: a@example.org\r\n\r\nx\r\n";
	kc.record = rec;
	CHECK_INT(dkim_verify(m2, strlen(m2), 0, lookup, &kc, res, 1, err, sizeof err), 1);
	CHECK_STR(dkim_status_name(res[0].status), "permerror");
	CHECK_STR(res[0].reason, "RSA key of 512 bits (RFC 8301: 1024 at least)");
}

TEST(dkim_verify_bad_signatures)
{
	struct keyctx kc = {"sel1", "v=DKIM1; p=", 0};
	struct dkim_result res[DKIM_SIGS_MAX];
	char err[DKIM_ERR_MAX];
	const char *cases[][2] = {
	    {"DKIM-Signature: v=1; v=1\r\n", "signature: tag 'v' appears twice"},
	    {"DKIM-Signature: v=1; a=rsa-sha256\r\n", "signature lacks a required tag"},
	    {"DKIM-Signature: v=2; a=rsa-sha256; d=x; s=y; h=from; bh=; b=\r\n",
	     "signature version is not 1"},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y; h=to; bh=; b=\r\n",
	     "From is not signed"},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y; h=from; bh=; b=; i=a@other\r\n",
	     "i= is not within d="},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y; h=from; bh=; b=; c=odd\r\n",
	     "unknown canonicalization"},
	    {"DKIM-Signature: v=1; a=rsa-sha256; d=x; s=y; h=from; bh=; b=; x=5\r\n",
	     "signature expired"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char m[300];
		snprintf(m, sizeof m, "%sFrom: a@x\r\n\r\nbody\r\n", cases[i][0]);
		CHECK_INT(dkim_verify(m, strlen(m), 10, lookup, &kc, res, 1, err, sizeof err), 1);
		CHECK_STR(dkim_status_name(res[0].status), "neutral");
		CHECK_STR(res[0].reason, cases[i][1]);
	}
	CHECK_INT(dkim_verify("From: a\r\n\r\n", 11, 0, lookup, &kc, res, 1, err, sizeof err), 0);
	CHECK_INT(dkim_verify(" x\r\n\r\n", 6, 0, lookup, &kc, res, 1, err, sizeof err), -1);
	CHECK_STR(err, "message starts with a continuation line");
	CHECK_INT(kc.calls, 0);
}
