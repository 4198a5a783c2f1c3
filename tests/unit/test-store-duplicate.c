/*
 * test-store-duplicate.c - unit tests for src/store/store-duplicate.c, the
 * Sieve duplicate tracking list (RFC 7352): handles apart, expiry, :last
 * refreshing a live entry (and only then), and the bound on rows.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "test.h"

static int rm_dup_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

TEST(store_duplicate_list)
{
	char dir[64], err[256];
	log_set_level(LOG_WARN);
	snprintf(dir, sizeof dir, "/tmp/tern-store-dup-XXXXXX");
	if (mkdtemp(dir) == NULL)
		exit(2);
	struct store *s = store_open(dir, err, sizeof err);
	if (s == NULL)
		exit(2);
	struct store_account *a;
	CHECK_INT(store_domain_add(s, "example.test", err, sizeof err), 0);
	CHECK_INT(store_account_add(s, "u@example.test", "$6$x$y", NULL, err, sizeof err), 0);
	CHECK_INT(store_account_open(s, "u@example.test", &a), 1);

	CHECK_INT(store_duplicate_seen(a, "", "<m1@x>", 100, err, sizeof err), 0);
	struct store_duplicate e[2] = {{"", "<m1@x>", 200, false}, {"h", "<m1@x>", 150, true}};
	CHECK_INT(store_duplicate_record(a, e, 2, 100, err, sizeof err), 0);
	CHECK_INT(store_duplicate_seen(a, "", "<m1@x>", 199, err, sizeof err), 1);
	CHECK_INT(store_duplicate_seen(a, "", "<m1@x>", 200, err, sizeof err), 0);
	CHECK_INT(store_duplicate_seen(a, "h", "<m1@x>", 149, err, sizeof err), 1);
	/* the handle's length is in the key: ("h", "x") is not ("", "hx") */
	CHECK_INT(store_duplicate_seen(a, "", "h<m1@x>", 120, err, sizeof err), 0);
	/* without :last a live entry keeps its expiry; with :last it moves */
	struct store_duplicate again[2] = {{"", "<m1@x>", 900, false}, {"h", "<m1@x>", 400, true}};
	CHECK_INT(store_duplicate_record(a, again, 2, 140, err, sizeof err), 0);
	CHECK_INT(store_duplicate_seen(a, "", "<m1@x>", 200, err, sizeof err), 0);
	CHECK_INT(store_duplicate_seen(a, "h", "<m1@x>", 399, err, sizeof err), 1);
	/* an expired entry recorded again starts anew, :last or not */
	struct store_duplicate late = {"", "<m1@x>", 1000, false};
	CHECK_INT(store_duplicate_record(a, &late, 1, 500, err, sizeof err), 0);
	CHECK_INT(store_duplicate_seen(a, "", "<m1@x>", 999, err, sizeof err), 1);
	/* bounded: beyond STORE_DUPLICATE_MAX rows the soonest to expire go */
	struct store_duplicate *many = calloc(STORE_DUPLICATE_MAX + 1, sizeof *many);
	char(*ids)[16] = calloc(STORE_DUPLICATE_MAX + 1, sizeof *ids);
	if (many == NULL || ids == NULL)
		exit(2);
	for (size_t i = 0; i <= STORE_DUPLICATE_MAX; i++) {
		snprintf(ids[i], sizeof ids[i], "id%zu", i);
		many[i] = (struct store_duplicate){"b", ids[i], 2000 + (int64_t)i, false};
	}
	CHECK_INT(store_duplicate_record(a, many, STORE_DUPLICATE_MAX + 1, 600, err, sizeof err),
		  0);
	CHECK_INT(store_duplicate_seen(a, "", "<m1@x>", 700, err, sizeof err), 0);
	/* 10,002 rows: the two soonest to expire ("" and id0) went */
	CHECK_INT(store_duplicate_seen(a, "b", "id0", 700, err, sizeof err), 0);
	CHECK_INT(store_duplicate_seen(a, "b", "id1", 700, err, sizeof err), 1);
	CHECK_INT(store_duplicate_seen(a, "b", "id10000", 700, err, sizeof err), 1);
	free(many);
	free(ids);
	store_close(&s);
	nftw(dir, rm_dup_entry, 16, FTW_DEPTH | FTW_PHYS);
}
