/*
 * store-duplicate.c - the Sieve duplicate tracking list (RFC 7352,
 * docs/sieve.md "Duplicate"): in the account's own database, table
 * sieve_duplicate (made by store_sieve_schema, no schema version of its
 * own), one row per (handle, unique ID) with the time it expires.  The key
 * is the SHA-256 of the handle's length, the handle and the ID, so that a
 * row has a fixed size whatever the ID.  Expired rows go whenever entries
 * are recorded, and an account keeps at most STORE_DUPLICATE_MAX rows, the
 * soonest to expire dropped first.
 */
#include <openssl/evp.h>
#include <string.h>

#include "store-private.h"

const char store_duplicate_ddl[] = "CREATE TABLE IF NOT EXISTS sieve_duplicate ("
				   " key BLOB PRIMARY KEY,"
				   " expires INTEGER NOT NULL) WITHOUT ROWID;"
				   "CREATE INDEX IF NOT EXISTS sieve_duplicate_expires"
				   " ON sieve_duplicate(expires);";

/* The row key of (handle, id) into out; 0 or -1. */
static int dup_key(const char *handle, const char *id, unsigned char out[32])
{
	size_t hn = strlen(handle);
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)hn >> (8 * i));
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(c, len, sizeof len) == 1 &&
		 EVP_DigestUpdate(c, handle, hn) == 1 &&
		 EVP_DigestUpdate(c, id, strlen(id)) == 1 && EVP_DigestFinal_ex(c, out, &n) == 1 &&
		 n == 32;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -1;
}

int store_duplicate_seen(struct store_account *a, const char *handle, const char *id,
			 int64_t now, char *err, size_t errsz)
{
	unsigned char key[32];
	if (dup_key(handle, id, key) < 0) {
		store_err(err, errsz, "duplicate: hashing failed");
		return -1;
	}
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT 1 FROM sieve_duplicate WHERE key = ?1 AND expires > ?2", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, key, sizeof key, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_db_error(db, "reading the duplicate list", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* One entry in the open transaction: a new or expired row gets expires; a
 * live one only with last. */
static int record_one(struct store_db *db, const struct store_duplicate *e, int64_t now,
		      char *err, size_t errsz)
{
	unsigned char key[32];
	if (dup_key(e->handle, e->id, key) < 0) {
		store_err(err, errsz, "duplicate: hashing failed");
		return -1;
	}
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO sieve_duplicate (key, expires) VALUES (?1, ?2)"
	    " ON CONFLICT (key) DO UPDATE SET expires = CASE WHEN ?3 OR"
	    " sieve_duplicate.expires <= ?4 THEN excluded.expires ELSE sieve_duplicate.expires END",
	    err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, key, sizeof key, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, e->expires);
	sqlite3_bind_int(st, 3, e->last ? 1 : 0);
	sqlite3_bind_int64(st, 4, now);
	return store_db_run(db, st, err, errsz);
}

int store_duplicate_record(struct store_account *a, const struct store_duplicate *e, size_t n,
			   int64_t now, char *err, size_t errsz)
{
	if (n == 0)
		return 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	int ret = 0;
	sqlite3_stmt *st =
	    store_db_stmt(db, "DELETE FROM sieve_duplicate WHERE expires <= ?1", err, errsz);
	if (st == NULL)
		ret = -1;
	else {
		sqlite3_bind_int64(st, 1, now);
		ret = store_db_run(db, st, err, errsz);
	}
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = record_one(db, &e[i], now, err, errsz);
	if (ret == 0) {
		st = store_db_stmt(db,
				   "DELETE FROM sieve_duplicate WHERE key IN (SELECT key FROM"
				   " sieve_duplicate ORDER BY expires DESC LIMIT -1 OFFSET ?1)",
				   err, errsz);
		if (st == NULL)
			ret = -1;
		else {
			sqlite3_bind_int64(st, 1, STORE_DUPLICATE_MAX);
			ret = store_db_run(db, st, err, errsz);
		}
	}
	if (ret < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}
