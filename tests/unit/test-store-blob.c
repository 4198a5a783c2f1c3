/*
 * test-store-blob.c - unit tests for src/store/store-blob.c: content ids,
 * byte-exact storage, expiry (never served after it, swept at a later
 * upload) and the extension of an expiry by the same bytes again.
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

static int rm_blob_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static const char *wanted;
static int found;

static int find_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	const char *base = strrchr(path, '/');
	if (type == FTW_F && base != NULL && strcmp(base + 1, wanted) == 0)
		found++;
	return 0;
}

/* Files named name anywhere under dir. */
static int count_files(const char *dir, const char *name)
{
	wanted = name;
	found = 0;
	nftw(dir, find_entry, 16, FTW_PHYS);
	return found;
}

static size_t read_all(int fd, char *out, size_t max)
{
	size_t n = 0;
	ssize_t r;
	while (n < max && (r = read(fd, out + n, max - n)) > 0)
		n += (size_t)r;
	return n;
}

TEST(store_blob_put_open_expire)
{
	char dir[64], err[256], id[STORE_BLOB_ID_LEN + 1], id2[STORE_BLOB_ID_LEN + 1];
	log_set_level(LOG_WARN);
	snprintf(dir, sizeof dir, "/tmp/tern-store-blob-XXXXXX");
	if (mkdtemp(dir) == NULL)
		exit(2);
	struct store *s = store_open(dir, err, sizeof err);
	if (s == NULL)
		exit(2);
	struct store_account *a;
	CHECK_INT(store_domain_add(s, "example.test", err, sizeof err), 0);
	CHECK_INT(store_account_add(s, "u@example.test", "$6$x$y", NULL, err, sizeof err), 0);
	CHECK_INT(store_account_open(s, "u@example.test", &a), 1);

	static const char data[] = "a\0b\r\nc";
	CHECK_INT(store_blob_put(a, data, sizeof data - 1, 1000, 5000, id, err, sizeof err), 0);
	/* "G" + SHA-256("a\0b\r\nc") in hex. */
	CHECK(store_blob_id_ok(id));
	CHECK_INT(strlen(id), 65);
	uint64_t size = 0;
	int fd = store_blob_open(a, id, 4999, &size, err, sizeof err);
	CHECK(fd >= 0);
	CHECK_INT(size, 6);
	char buf[16];
	CHECK_INT(read_all(fd, buf, sizeof buf), 6);
	CHECK(memcmp(buf, data, 6) == 0);
	close(fd);
	/* Expired: not served. */
	CHECK_INT(store_blob_open(a, id, 5000, &size, err, sizeof err), -2);
	/* The same bytes again: the same id, a later expiry. */
	CHECK_INT(store_blob_put(a, data, sizeof data - 1, 1000, 9000, id2, err, sizeof err), 0);
	CHECK_STR(id2, id);
	fd = store_blob_open(a, id, 8999, &size, err, sizeof err);
	CHECK(fd >= 0);
	close(fd);
	/* Not a blob id, or none of ours. */
	CHECK_INT(store_blob_open(a, "../../x", 0, &size, err, sizeof err), -2);
	CHECK(!store_blob_id_ok("G00"));
	char other[66] = "G";
	memset(other + 1, 'a', 64);
	other[65] = '\0';
	CHECK_INT(store_blob_open(a, other, 0, &size, err, sizeof err), -2);
	/* An upload after the expiry sweeps the expired blob's file. */
	CHECK_INT(count_files(dir, id), 1);
	CHECK_INT(store_blob_put(a, "x", 1, 10000, 20000, id2, err, sizeof err), 0);
	CHECK_INT(store_blob_open(a, id, 9500, &size, err, sizeof err), -2);
	CHECK_INT(count_files(dir, id), 0);
	CHECK_INT(count_files(dir, id2), 1);
	store_close(&s);
	nftw(dir, rm_blob_entry, 16, FTW_DEPTH | FTW_PHYS);
}
