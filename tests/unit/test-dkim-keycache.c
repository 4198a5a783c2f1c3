/*
 * test-dkim-keycache.c - unit tests for src/mailauth/dkim-keycache.c:
 * hit, miss on other record bytes / selector / domain / type, expiry,
 * the bound (oldest evicted), replacement, and references.
 */
#include <openssl/evp.h>
#include <string.h>

#include "dkim-keycache.h"
#include "test.h"

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	CHECK(pk != NULL);
	return pk;
}

#define REC "v=DKIM1; k=ed25519; p=AAAA"

TEST(dkim_keycache_hit_and_miss)
{
	struct dkim_keycache *c = dkim_keycache_new(4, 100);
	EVP_PKEY *pk = new_key();
	bool t = false, s = false;
	CHECK(dkim_keycache_get(c, "sel", "example.org", 1, REC, strlen(REC), 1000, &t, &s) == NULL);
	dkim_keycache_put(c, "sel", "example.org", 1, REC, strlen(REC), pk, true, true, 1000);
	EVP_PKEY *got = dkim_keycache_get(c, "sel", "example.org", 1, REC, strlen(REC), 1050, &t, &s);
	CHECK(got == pk);
	CHECK(t && s);
	EVP_PKEY_free(got);
	/* one byte of the record differs, or a shorter record */
	const char *rec2 = "v=DKIM1; k=ed25519; p=AAAB";
	CHECK(dkim_keycache_get(c, "sel", "example.org", 1, rec2, strlen(rec2), 1050, &t, &s) == NULL);
	CHECK(dkim_keycache_get(c, "sel", "example.org", 1, REC, strlen(REC) - 1, 1050, &t, &s) == NULL);
	CHECK(dkim_keycache_get(c, "sel2", "example.org", 1, REC, strlen(REC), 1050, &t, &s) == NULL);
	CHECK(dkim_keycache_get(c, "sel", "example.net", 1, REC, strlen(REC), 1050, &t, &s) == NULL);
	CHECK(dkim_keycache_get(c, "sel", "example.org", 0, REC, strlen(REC), 1050, &t, &s) == NULL);
	/* selector and domain are not one string: "se"+"lexample.org" differs */
	CHECK(dkim_keycache_get(c, "se", "lexample.org", 1, REC, strlen(REC), 1050, &t, &s) == NULL);
	CHECK_INT(dkim_keycache_count(c), 1);
	/* the cache holds its own reference: pk outlives our free */
	EVP_PKEY_free(pk);
	got = dkim_keycache_get(c, "sel", "example.org", 1, REC, strlen(REC), 1099, &t, &s);
	CHECK(got != NULL);
	CHECK_INT(EVP_PKEY_get_id(got), EVP_PKEY_ED25519);
	EVP_PKEY_free(got);
	dkim_keycache_free(&c);
	CHECK(c == NULL);
	dkim_keycache_free(&c);
}

TEST(dkim_keycache_expiry)
{
	struct dkim_keycache *c = dkim_keycache_new(4, 100);
	EVP_PKEY *pk = new_key();
	bool t = true, s = true;
	dkim_keycache_put(c, "sel", "example.org", 1, REC, strlen(REC), pk, false, false, 1000);
	EVP_PKEY *got = dkim_keycache_get(c, "sel", "example.org", 1, REC, strlen(REC), 1099, &t, &s);
	CHECK(got == pk);
	CHECK(!t && !s);
	EVP_PKEY_free(got);
	CHECK(dkim_keycache_get(c, "sel", "example.org", 1, REC, strlen(REC), 1100, &t, &s) == NULL);
	CHECK(dkim_keycache_get(c, "sel", "example.org", 1, REC, strlen(REC), 999, &t, &s) == NULL);
	/* put again renews the same entry */
	dkim_keycache_put(c, "sel", "example.org", 1, REC, strlen(REC), pk, true, false, 1100);
	CHECK_INT(dkim_keycache_count(c), 1);
	got = dkim_keycache_get(c, "sel", "example.org", 1, REC, strlen(REC), 1150, &t, &s);
	CHECK(got == pk && t && !s);
	EVP_PKEY_free(got);
	EVP_PKEY_free(pk);
	dkim_keycache_free(&c);
}

TEST(dkim_keycache_bound)
{
	struct dkim_keycache *c = dkim_keycache_new(3, 100);
	EVP_PKEY *pk = new_key();
	bool t, s;
	const char *sels[] = {"a", "b", "c", "d", "e"};
	for (int i = 0; i < 3; i++)
		dkim_keycache_put(c, sels[i], "example.org", 1, REC, strlen(REC), pk, false, false,
				  1000 + i);
	CHECK_INT(dkim_keycache_count(c), 3);
	/* full: the oldest ("a") goes */
	dkim_keycache_put(c, "d", "example.org", 1, REC, strlen(REC), pk, false, false, 1010);
	CHECK_INT(dkim_keycache_count(c), 3);
	CHECK(dkim_keycache_get(c, "a", "example.org", 1, REC, strlen(REC), 1020, &t, &s) == NULL);
	for (int i = 1; i < 4; i++) {
		EVP_PKEY *got = dkim_keycache_get(c, sels[i], "example.org", 1, REC, strlen(REC), 1020,
						  &t, &s);
		CHECK(got == pk);
		EVP_PKEY_free(got);
	}
	/* an expired entry goes before the oldest live one: at 1101 "b"
	 * (added 1001) has expired, "c" (1002) not */
	dkim_keycache_put(c, "e", "example.org", 1, REC, strlen(REC), pk, false, false, 1101);
	CHECK(dkim_keycache_get(c, "b", "example.org", 1, REC, strlen(REC), 1101, &t, &s) == NULL);
	EVP_PKEY *got = dkim_keycache_get(c, "c", "example.org", 1, REC, strlen(REC), 1101, &t, &s);
	CHECK(got == pk);
	EVP_PKEY_free(got);
	EVP_PKEY_free(pk);
	dkim_keycache_free(&c);
}

TEST(dkim_keycache_process_one)
{
	CHECK(dkim_keycache_process() != NULL);
	CHECK(dkim_keycache_process() == dkim_keycache_process());
}
