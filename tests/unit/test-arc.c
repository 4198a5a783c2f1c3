/*
 * test-arc.c - unit tests for src/mailauth/arc.c: seal then validate with
 * RSA and Ed25519 keys, two hops, and every way a chain fails (a changed
 * body, a changed AAR, a removed or duplicated set, cv=fail, bad cv
 * values, more than 50 sets, an AMS that signs ARC-Seal, no key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "test-mailauth.h"
#include "test.h"

/* Keys by selector, all in example.org. */
struct arc_keys {
	const char *sel[2];
	const char *rec[2];
	int calls;
};

static int lookup(void *ctx, const char *selector, const char *domain, struct buf *rec, char *err,
		  size_t errsz)
{
	struct arc_keys *k = ctx;
	k->calls++;
	for (int i = 0; i < 2; i++)
		if (k->sel[i] != NULL && strcmp(domain, "example.org") == 0 &&
		    strcmp(selector, k->sel[i]) == 0) {
			if (k->rec[i] == NULL) {
				snprintf(err, errsz, "DNS timed out");
				return -1;
			}
			return buf_puts(rec, k->rec[i]);
		}
	snprintf(err, errsz, "no such key");
	return 1;
}

static const char msg[] =
    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=x; h=from; bh=; b=\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: list@example.org\r\n"
    "Subject: Hello  there\r\n"
    "Date: Sun, 06 Dec 2026 12:00:00 +0000\r\n"
    "Message-ID: <1@example.com>\r\n"
    "\r\n"
    "Hi list,\r\n"
    "  see you.\r\n";

#define NOW 1796558400

/* The message with one more ARC set sealed by s on top. */
static void seal(const struct dkim_signer *s, struct buf *m, enum arc_status cv,
		 const char *results)
{
	struct buf out = BUF_INIT;
	char err[DKIM_ERR_MAX] = "";
	int rc =
	    arc_seal(s, m->data, m->len, "mx.example.org", results, cv, NOW, &out, err, sizeof err);
	CHECK_INT(rc, 0);
	if (rc != 0)
		fprintf(stderr, "arc_seal: %s\n", err);
	buf_append(&out, m->data, m->len);
	buf_reset(m);
	buf_append(m, out.data, out.len);
	buf_free(&out);
}

static void validate(const struct buf *m, struct arc_keys *k, struct arc_result *r)
{
	arc_validate(m->data, m->len, NOW, lookup, k, r);
}

/* m with the first occurrence of from replaced by to (same length). */
static char *altered(const struct buf *m, const char *from, const char *to)
{
	char *c = malloc(m->len + 1);
	memcpy(c, m->data, m->len);
	c[m->len] = '\0';
	char *p = strstr(c, from);
	CHECK(p != NULL);
	if (p != NULL)
		memcpy(p, to, strlen(to));
	return c;
}

/* Validating m with from replaced by to gives status and reason. */
static void expect_altered(const struct buf *m, const char *from, const char *to,
			   struct arc_keys *k, const char *status, const char *reason)
{
	struct buf m2 = BUF_INIT;
	char *c = altered(m, from, to);
	buf_append(&m2, c, m->len);
	free(c);
	struct arc_result r;
	validate(&m2, k, &r);
	CHECK_STR(arc_status_name(r.status), status);
	CHECK_STR(r.reason, reason);
	buf_free(&m2);
}

static void two_hops(enum dkim_keytype t1, enum dkim_keytype t2, const char *a1, const char *a2)
{
	struct buf r1 = BUF_INIT, r2 = BUF_INIT, m = BUF_INIT;
	struct dkim_signer *s1 = test_make_signer(t1, "arc1", &r1);
	struct dkim_signer *s2 = test_make_signer(t2, "arc2", &r2);
	CHECK(s1 != NULL && s2 != NULL);
	if (s1 == NULL || s2 == NULL)
		return;
	struct arc_keys k = {{"arc1", "arc2"}, {buf_cstr(&r1), buf_cstr(&r2)}, 0};
	buf_append(&m, msg, sizeof msg - 1);
	struct arc_result r;
	validate(&m, &k, &r);
	CHECK_STR(arc_status_name(r.status), "none");
	CHECK_INT(r.n, 0);

	/* hop 1 */
	seal(s1, &m, ARC_NONE, "\r\n\tspf=pass smtp.mailfrom=alice@example.com;\r\n\tdkim=fail");
	char want[200];
	snprintf(want, sizeof want,
		 "ARC-Seal: i=1; a=%s; cv=none;\r\n\t d=example.org; s=arc1; t=%d;\r\n\t b=", a1,
		 NOW);
	CHECK(strncmp(buf_cstr(&m), want, strlen(want)) == 0);
	snprintf(
	    want, sizeof want,
	    "\r\nARC-Message-Signature: i=1; a=%s; c=relaxed/relaxed;\r\n\t d=example.org; s=arc1;",
	    a1);
	CHECK(strstr(buf_cstr(&m), want) != NULL);
	CHECK(strstr(buf_cstr(&m), "\r\nARC-Authentication-Results: i=1; mx.example.org;\r\n"
				   "\tspf=pass smtp.mailfrom=alice@example.com;\r\n\tdkim=fail\r\n"
				   "DKIM-Signature: ") != NULL);
	/* the AMS signs the DKIM-Signature there, not ARC-Seal */
	CHECK(strstr(buf_cstr(&m), ":DKIM-Signature;") != NULL);
	validate(&m, &k, &r);
	CHECK_STR(arc_status_name(r.status), "pass");
	CHECK_STR(r.reason, "");
	CHECK_INT(r.n, 1);
	CHECK_INT(r.oldest_pass, 0);
	CHECK_STR(r.domain, "example.org");
	struct arc_key keys[ARC_KEYS_MAX];
	CHECK_INT(arc_keys_needed(m.data, m.len, keys, ARC_KEYS_MAX), 1);
	CHECK_STR(keys[0].selector, "arc1");
	CHECK_STR(keys[0].domain, "example.org");

	/* hop 2: nothing changed, sealed again */
	seal(s2, &m, ARC_PASS, "arc=pass");
	CHECK(strncmp(buf_cstr(&m), "ARC-Seal: i=2; a=", 17) == 0);
	CHECK(strstr(buf_cstr(&m), "cv=pass;") != NULL);
	CHECK(strstr(buf_cstr(&m),
		     "ARC-Authentication-Results: i=2; mx.example.org; arc=pass\r\n") != NULL);
	validate(&m, &k, &r);
	CHECK_STR(arc_status_name(r.status), "pass");
	CHECK_STR(r.reason, "");
	CHECK_INT(r.n, 2);
	CHECK_INT(r.oldest_pass, 0);
	CHECK_INT(arc_keys_needed(m.data, m.len, keys, ARC_KEYS_MAX), 2);
	CHECK_STR(keys[0].selector, "arc2");
	CHECK_STR(keys[1].selector, "arc1");
	CHECK(strstr(buf_cstr(&m), a2) != NULL);
	/* relaxed canonicalization: refolding a field still passes */
	expect_altered(&m, "Subject: Hello  there", "Subject: Hello \tthere", &k, "pass", "");
	/* a changed body: the latest AMS fails */
	expect_altered(&m, "Hi list", "Hi LIST", &k, "fail",
		       "ARC-Message-Signature i=2: body hash did not verify");
	/* a changed AAR of hop 1: the seal of hop 2 (and 1) fails */
	expect_altered(&m, "spf=pass smtp", "spf=fail smtp", &k, "fail",
		       "ARC-Seal i=2: signature did not verify");
	struct buf m2 = BUF_INIT;

	/* set 1 removed: the chain has a gap */
	const char *s1start = strstr(buf_cstr(&m), "ARC-Seal: i=1;");
	const char *s1end =
	    strstr(buf_cstr(&m), "DKIM-Signature: v=1; a=rsa-sha256; d=example.com");
	CHECK(s1start != NULL && s1end != NULL);
	buf_append(&m2, m.data, (size_t)(s1start - m.data));
	buf_append(&m2, s1end, m.len - (size_t)(s1end - m.data));
	validate(&m2, &k, &r);
	CHECK_STR(arc_status_name(r.status), "fail");
	CHECK_STR(r.reason, "ARC set i=1 of 2 is incomplete (no ARC-Authentication-Results)");
	CHECK_INT(arc_keys_needed(m2.data, m2.len, keys, ARC_KEYS_MAX), 0);
	buf_free(&m2);

	/* a duplicated AAR i=2 */
	const char *a2start = strstr(buf_cstr(&m), "ARC-Authentication-Results: i=2;");
	const char *a2end = strstr(a2start, "\r\n") + 2;
	buf_append(&m2, a2start, (size_t)(a2end - a2start));
	buf_append(&m2, m.data, m.len);
	validate(&m2, &k, &r);
	CHECK_STR(arc_status_name(r.status), "fail");
	CHECK_STR(r.reason, "two ARC-Authentication-Results fields with i=2");
	buf_free(&m2);

	/* cv=none above i=1 */
	expect_altered(&m, "cv=pass;", "cv=none;", &k, "fail", "ARC-Seal i=2 says cv=none");

	/* no key, or a DNS failure: fail (RFC 8617 5.2.1) */
	k.rec[0] = NULL;
	validate(&m, &k, &r);
	CHECK_STR(arc_status_name(r.status), "fail");
	CHECK_STR(r.reason, "ARC-Seal i=1: key arc1._domainkey.example.org: DNS timed out");
	k.rec[0] = buf_cstr(&r1);

	/* hop 3 says the chain failed: the seal covers its own set only, the
	 * chain has ended, and nobody seals it again */
	char *c = altered(&m, "Hi list", "Hi LIST");
	buf_reset(&m2);
	buf_append(&m2, c, m.len);
	free(c);
	seal(s1, &m2, ARC_FAIL, "arc=fail");
	CHECK(strncmp(buf_cstr(&m2), "ARC-Seal: i=3; a=", 17) == 0);
	CHECK(strstr(buf_cstr(&m2), "cv=fail;") != NULL);
	validate(&m2, &k, &r);
	CHECK_STR(arc_status_name(r.status), "fail");
	CHECK_STR(r.reason, "the latest ARC-Seal (i=3) says cv=fail");
	struct buf out = BUF_INIT;
	char err[DKIM_ERR_MAX];
	CHECK_INT(arc_seal(s1, m2.data, m2.len, "mx.example.org", "", ARC_FAIL, NOW, &out, err,
			   sizeof err),
		  1);
	CHECK_INT(out.len, 0);
	buf_free(&m2);

	/* cv must fit the chain */
	CHECK_INT(
	    arc_seal(s1, m.data, m.len, "mx.example.org", "", ARC_NONE, NOW, &out, err, sizeof err),
	    -1);
	CHECK_STR(err, "the message has an ARC chain, so cv is pass or fail");
	CHECK_INT(arc_seal(s1, msg, sizeof msg - 1, "mx.example.org", "", ARC_PASS, NOW, &out, err,
			   sizeof err),
		  -1);
	CHECK_STR(err, "the message has no ARC chain, so cv is none");
	CHECK_INT(arc_seal(s1, msg, sizeof msg - 1, "mx.example.org", "spf=pass\r\nX: y", ARC_NONE,
			   NOW, &out, err, sizeof err),
		  -1);
	CHECK_STR(err, "the authserv-id or the results are not fit for a header field");
	CHECK_INT(arc_seal(s1, msg, sizeof msg - 1, "mx example", "", ARC_NONE, NOW, &out, err,
			   sizeof err),
		  -1);
	CHECK_INT(out.len, 0);
	CHECK_INT(arc_seal(s1, msg, sizeof msg - 1, "mx.example.org", "", ARC_NONE, NOW, &out, err,
			   sizeof err),
		  0);
	CHECK(strstr(buf_cstr(&out), "ARC-Authentication-Results: i=1; mx.example.org; none\r\n") !=
	      NULL);
	buf_free(&out);

	dkim_signer_free(&s1);
	dkim_signer_free(&s2);
	buf_free(&r1);
	buf_free(&r2);
	buf_free(&m);
}

TEST(arc_rsa_then_ed25519)
{
	two_hops(DKIM_KEY_RSA, DKIM_KEY_ED25519, "rsa-sha256", "ed25519-sha256");
}

TEST(arc_ed25519_then_rsa)
{
	two_hops(DKIM_KEY_ED25519, DKIM_KEY_RSA, "ed25519-sha256", "rsa-sha256");
}

/* Structural failures on hand-made fields (no signature is checked). */
TEST(arc_structure)
{
	struct arc_keys k = {{"x", NULL}, {"v=DKIM1; p=", NULL}, 0};
	struct arc_result r;
	const char *cases[][2] = {
	    {"ARC-Seal: i=51; a=rsa-sha256; cv=pass; d=example.org; s=x; b=\r\n",
	     "ARC-Seal i=51: more than 50 ARC sets"},
	    {"ARC-Seal: a=rsa-sha256; cv=none; d=example.org; s=x; b=\r\n",
	     "ARC-Seal without a valid instance tag"},
	    {"ARC-Authentication-Results: i=1 mx; spf=pass\r\n",
	     "ARC-Authentication-Results without a valid instance tag"},
	    {"ARC-Seal: i=1; i=1\r\n", "ARC-Seal: tag 'i' appears twice"},
	    {"ARC-Authentication-Results: i=1; mx; none\r\n",
	     "ARC set i=1 of 1 is incomplete (no ARC-Message-Signature)"},
	    {"ARC-Seal: i=1; a=rsa-sha256; cv=maybe; d=example.org; s=x; b=\r\n",
	     "ARC-Seal i=1: cv= is not none, pass or fail"},
	    {"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; s=x; h=from; b=\r\n"
	     "ARC-Message-Signature: i=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=; b=\r\n"
	     "ARC-Authentication-Results: i = 1 ; mx; none\r\n",
	     "ARC-Seal i=1 has an h= tag"},
	    {"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; s=x; b=\r\n"
	     "ARC-Message-Signature: i=1; a=rsa-sha256; d=example.org; s=x; h=from:arc-seal; bh=; "
	     "b=\r\n"
	     "ARC-Authentication-Results: i=1; mx; none\r\n",
	     "ARC-Message-Signature i=1 signs ARC-Seal"},
	    {"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.org; s=x; b=\r\n"
	     "ARC-Message-Signature: i=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=; b=\r\n"
	     "ARC-Authentication-Results: i=1; mx; none\r\n",
	     "ARC-Message-Signature i=1: key revoked"},
	    {"ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=example.org; s=x; b=\r\n"
	     "ARC-Message-Signature: i=2; a=rsa-sha256; d=example.org; s=x; h=from; bh=; b=\r\n"
	     "ARC-Authentication-Results: i=2; mx; none\r\n",
	     "ARC set i=1 of 2 is incomplete (no ARC-Authentication-Results)"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct buf m = BUF_INIT;
		buf_puts(&m, cases[i][0]);
		buf_puts(&m, "From: a@example.org\r\n\r\nbody\r\n");
		validate(&m, &k, &r);
		CHECK_STR(arc_status_name(r.status), "fail");
		CHECK_STR(r.reason, cases[i][1]);
		buf_free(&m);
	}
	CHECK_STR(arc_status_name(ARC_NONE), "none");

	/* a header the parser refuses (a line over 998 octets): none without
	 * ARC fields, fail with them */
	struct buf m = BUF_INIT;
	buf_puts(&m, "X-Long: ");
	for (int i = 0; i < 1000; i++)
		buf_putc(&m, 'x');
	buf_puts(&m, "\r\nFrom: a@example.org\r\n\r\nbody\r\n");
	validate(&m, &k, &r);
	CHECK_STR(arc_status_name(r.status), "none");
	CHECK_STR(r.reason, "");
	struct buf m2 = BUF_INIT;
	buf_puts(&m2, "arc-seal: i=1\r\n");
	buf_append(&m2, m.data, m.len);
	validate(&m2, &k, &r);
	CHECK_STR(arc_status_name(r.status), "fail");
	CHECK_STR(r.reason, "the header section cannot be read");
	buf_free(&m);
	buf_free(&m2);
}
