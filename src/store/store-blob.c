/*
 * store-blob.c - uploaded blobs of an account (JMAP upload, RFC 8620 6.1;
 * docs/jmap.md "Blobs"): the bytes in a file under the account's folder,
 * DATA/accounts/NN/ID/blob/BLOBID, written once and never changed (like
 * message files in msg/), and one row per blob in the account's database
 * (table blobs: id, size, expiry).
 *
 * A blob id is "G" and the SHA-256 of the bytes in hex, so uploading the
 * same bytes again gives the same id and only moves its expiry (6.1 allows
 * it and asks for the reset).  The file is fsync'ed, renamed into place
 * and its folder synced before the row names it; a crash in between
 * leaves a file no row names, replaced by the next upload of those bytes.
 * Expired rows are dropped (and their files unlinked) a few at each
 * upload, and never served.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "store-private.h"

static const char blob_ddl[] = "CREATE TABLE IF NOT EXISTS blobs ("
			       " id TEXT PRIMARY KEY,"
			       " size INTEGER NOT NULL,"
			       " expires INTEGER NOT NULL) WITHOUT ROWID;"
			       "CREATE INDEX IF NOT EXISTS blobs_expires ON blobs(expires);";

/* Expired blobs removed per upload. */
#define SWEEP_MAX 32

int store_blob_schema(struct store_db *db, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, blob_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating blobs: %s", msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

bool store_blob_id_ok(const char *id)
{
	if (strlen(id) != STORE_BLOB_ID_LEN || id[0] != 'G')
		return false;
	for (size_t i = 1; i < STORE_BLOB_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

static int blob_dir(struct store_account *a, char *out, size_t outsz)
{
	return store_path(out, outsz, a->dir, "blob");
}

int store_blob_path(struct store_account *a, const char *id, char *out, size_t outsz)
{
	char dir[PATH_MAX];
	if (!store_blob_id_ok(id) || blob_dir(a, dir, sizeof dir) < 0)
		return -1;
	return store_path(out, outsz, dir, id);
}

/* Drops up to SWEEP_MAX expired blobs. */
static void sweep(struct store_account *a, struct store_db *db, int64_t now)
{
	char err[256];
	char ids[SWEEP_MAX][STORE_BLOB_ID_LEN + 1];
	size_t n = 0;
	if (store_db_begin(db, err, sizeof err) < 0)
		return;
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT id FROM blobs WHERE expires <= ?1 ORDER BY expires LIMIT 32",
			  err, sizeof err);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	while (n < SWEEP_MAX && sqlite3_step(st) == SQLITE_ROW)
		store_db_column_text(st, 0, ids[n++], sizeof ids[0]);
	sqlite3_reset(st);
	for (size_t i = 0; i < n; i++) {
		st = store_db_stmt(db, "DELETE FROM blobs WHERE id = ?1", err, sizeof err);
		if (st == NULL)
			goto fail;
		store_db_bind_text(st, 1, ids[i]);
		if (store_db_run(db, st, err, sizeof err) < 0)
			goto fail;
	}
	if (store_db_commit(db, err, sizeof err) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		if (store_blob_path(a, ids[i], path, sizeof path) == 0)
			(void)unlink(path);
	}
	return;
fail:
	store_db_rollback(db);
}

static void blob_id_of(const void *data, size_t len, char out[STORE_BLOB_ID_LEN + 1])
{
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	static const char hex[] = "0123456789abcdef";
	out[0] = 'G';
	for (size_t i = 0; i < 32; i++) {
		out[1 + 2 * i] = hex[md[i] >> 4];
		out[2 + 2 * i] = hex[md[i] & 15];
	}
	out[STORE_BLOB_ID_LEN] = '\0';
}

/* Writes the blob's file (tmp name, fsync, rename, fsync folder). */
static int write_file(struct store_account *a, const char *id, const void *data, size_t len,
		      char *err, size_t errsz)
{
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX], uid[25];
	if (blob_dir(a, dir, sizeof dir) < 0 || store_blob_path(a, id, path, sizeof path) < 0) {
		store_err(err, errsz, "blob path too long");
		return -1;
	}
	if (store_mkdir_durable(dir) < 0) {
		store_err(err, errsz, "creating %s: %s", dir, strerror(errno));
		return -1;
	}
	fsutil_unique_id(uid);
	char name[40];
	snprintf(name, sizeof name, "tmp.%s", uid);
	if (store_path(tmp, sizeof tmp, dir, name) < 0) {
		store_err(err, errsz, "blob path too long");
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		store_err(err, errsz, "creating %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fsutil_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		store_err(err, errsz, "writing %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0 || fsutil_fsync_dir(dir) < 0) {
		store_err(err, errsz, "storing %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int store_blob_put(struct store_account *a, const void *data, size_t len, int64_t now,
		   int64_t expires, char id_out[STORE_BLOB_ID_LEN + 1], char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sweep(a, db, now);
	blob_id_of(data, len, id_out);
	/* The same bytes again: a longer life for the file that is there. */
	sqlite3_stmt *st = store_db_stmt(
	    db, "UPDATE blobs SET expires = max(expires, ?2) WHERE id = ?1 RETURNING size", err,
	    errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, id_out);
	sqlite3_bind_int64(st, 2, expires);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		char path[PATH_MAX];
		struct stat sb;
		if (store_blob_path(a, id_out, path, sizeof path) == 0 && stat(path, &sb) == 0 &&
		    (uint64_t)sb.st_size == len)
			return 0;
	} else if (rc != SQLITE_DONE) {
		store_db_error(db, "updating a blob", err, errsz);
		return -1;
	}
	if (write_file(a, id_out, data, len, err, errsz) < 0)
		return -1;
	st = store_db_stmt(
	    db,
	    "INSERT INTO blobs (id, size, expires) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (id) DO UPDATE SET expires = max(expires, excluded.expires)",
	    err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, id_out);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
	sqlite3_bind_int64(st, 3, expires);
	return store_db_run(db, st, err, errsz);
}

int store_blob_open(struct store_account *a, const char *id, int64_t now, uint64_t *size, char *err,
		    size_t errsz)
{
	if (!store_blob_id_ok(id))
		return -2;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT size FROM blobs WHERE id = ?1 AND expires > ?2", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st);
	int64_t sz = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return -2;
	if (rc != SQLITE_ROW) {
		store_db_error(db, "reading a blob", err, errsz);
		return -1;
	}
	char path[PATH_MAX];
	if (store_blob_path(a, id, path, sizeof path) < 0)
		return -2;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return -2;
		store_err(err, errsz, "opening %s: %s", path, strerror(errno));
		return -1;
	}
	*size = (uint64_t)sz;
	return fd;
}
