/*
 * store-sieve.c - the Sieve scripts of an account (docs/sieve.md
 * "Storing scripts"): name, content and an active flag, at most one script
 * active, in the account's own database so they live and die with the
 * account.  The store keeps bytes only: checking a script (compiling it)
 * is the caller's job, one layer up (src/sieve is above src/store).
 *
 * Every change is one synced transaction (synchronous=FULL), so a script
 * reported stored survives a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "xalloc.h"

static const char sieve_ddl[] = "CREATE TABLE IF NOT EXISTS sieve_scripts ("
				" name TEXT PRIMARY KEY,"
				" content BLOB NOT NULL,"
				" active INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
				"CREATE UNIQUE INDEX IF NOT EXISTS sieve_one_active"
				" ON sieve_scripts(active) WHERE active = 1;";

int store_sieve_schema(struct store_db *db, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, sieve_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating sieve_scripts: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	if (sqlite3_exec(db->h, store_duplicate_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating sieve_duplicate: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int store_sieve_name_ok(const char *name, char *err, size_t errsz)
{
	size_t n = strlen(name);
	if (n == 0 || n > STORE_SIEVE_NAME_MAX) {
		store_err(err, errsz, "a script name has 1 to %d bytes", STORE_SIEVE_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f) {
			store_err(err, errsz, "a script name has no control characters");
			return -1;
		}
	}
	if (!store_name_utf8(name, n)) {
		store_err(err, errsz, "a script name is UTF-8");
		return -1;
	}
	return 0;
}

static struct store_db *account_db(struct store_account *a, const char *name, char *err,
				   size_t errsz)
{
	if (name != NULL && store_sieve_name_ok(name, err, errsz) < 0)
		return NULL;
	return store_account_db(a, err, errsz);
}

/* 1 if the script exists (*active set), 0 not, -1 error.  Inside or
 * outside a transaction. */
static int script_state(struct store_db *db, const char *name, bool *active, char *err,
			size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT active FROM sieve_scripts WHERE name = ?1", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (r == 1 && active != NULL)
		*active = sqlite3_column_int(st, 0) != 0;
	if (r < 0)
		store_db_error(db, "reading a script", err, errsz);
	sqlite3_reset(st);
	return r;
}

static int count_scripts(struct store_db *db, uint64_t *n, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db, "SELECT count(*) FROM sieve_scripts", err, errsz);
	if (st == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_db_error(db, "counting scripts", err, errsz);
		sqlite3_reset(st);
		return -1;
	}
	*n = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

int store_sieve_put(struct store_account *a, const char *name, const char *content, size_t len,
		    uint64_t max_scripts, char *err, size_t errsz)
{
	struct store_db *db = account_db(a, name, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	int r = script_state(db, name, NULL, err, errsz);
	uint64_t n = 0;
	if (r == 0 && count_scripts(db, &n, err, errsz) < 0)
		r = -1;
	if (r == 0 && n >= max_scripts) {
		store_err(err, errsz, "the account has %llu scripts, the most allowed",
			  (unsigned long long)n);
		r = -1;
	}
	if (r < 0) {
		store_db_rollback(db);
		return -1;
	}
	sqlite3_stmt *st =
	    store_db_stmt(db,
			  "INSERT INTO sieve_scripts (name, content) VALUES (?1, ?2)"
			  " ON CONFLICT (name) DO UPDATE SET content = excluded.content",
			  err, errsz);
	if (st == NULL) {
		store_db_rollback(db);
		return -1;
	}
	store_db_bind_text(st, 1, name);
	sqlite3_bind_blob64(st, 2, len > 0 ? content : "", (sqlite3_uint64)len, SQLITE_STATIC);
	if (store_db_run(db, st, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

int store_sieve_get(struct store_account *a, const char *name, char **content, size_t *len,
		    bool *active, char *err, size_t errsz)
{
	*content = NULL;
	*len = 0;
	struct store_db *db = account_db(a, name, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st;
	if (name != NULL) {
		st = store_db_stmt(db, "SELECT content, active FROM sieve_scripts WHERE name = ?1",
				   err, errsz);
		if (st != NULL)
			store_db_bind_text(st, 1, name);
	} else {
		st = store_db_stmt(db, "SELECT content, active FROM sieve_scripts WHERE active = 1",
				   err, errsz);
	}
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		const void *p = sqlite3_column_blob(st, 0);
		*content = xmalloc(n + 1);
		if (n > 0)
			memcpy(*content, p, n);
		(*content)[n] = '\0';
		*len = n;
		if (active != NULL)
			*active = sqlite3_column_int(st, 1) != 0;
	} else if (rc != SQLITE_DONE) {
		store_db_error(db, "reading a script", err, errsz);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_sieve_activate(struct store_account *a, const char *name, char *err, size_t errsz)
{
	struct store_db *db = account_db(a, name, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	int r = 1;
	if (name != NULL && (r = script_state(db, name, NULL, err, errsz)) <= 0) {
		store_db_rollback(db);
		return r;
	}
	sqlite3_stmt *st =
	    store_db_stmt(db, "UPDATE sieve_scripts SET active = 0 WHERE active = 1", err, errsz);
	if (st == NULL || store_db_run(db, st, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	if (name != NULL) {
		st = store_db_stmt(db, "UPDATE sieve_scripts SET active = 1 WHERE name = ?1", err,
				   errsz);
		if (st == NULL) {
			store_db_rollback(db);
			return -1;
		}
		store_db_bind_text(st, 1, name);
		if (store_db_run(db, st, err, errsz) < 0) {
			store_db_rollback(db);
			return -1;
		}
	}
	return store_db_commit(db, err, errsz) < 0 ? -1 : 1;
}

int store_sieve_delete(struct store_account *a, const char *name, char *err, size_t errsz)
{
	struct store_db *db = account_db(a, name, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	bool active = false;
	int r = script_state(db, name, &active, err, errsz);
	if (r == 1 && active) {
		store_err(err, errsz, "script \"%s\" is active", name);
		r = -1;
	}
	if (r <= 0) {
		store_db_rollback(db);
		return r;
	}
	sqlite3_stmt *st =
	    store_db_stmt(db, "DELETE FROM sieve_scripts WHERE name = ?1", err, errsz);
	if (st == NULL) {
		store_db_rollback(db);
		return -1;
	}
	store_db_bind_text(st, 1, name);
	if (store_db_run(db, st, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz) < 0 ? -1 : 1;
}

int store_sieve_rename(struct store_account *a, const char *from, const char *to, char *err,
		       size_t errsz)
{
	if (store_sieve_name_ok(to, err, errsz) < 0)
		return -1;
	struct store_db *db = account_db(a, from, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	int r = script_state(db, from, NULL, err, errsz);
	if (r == 1) {
		int t = script_state(db, to, NULL, err, errsz);
		if (t != 0) {
			if (t == 1)
				store_err(err, errsz, "a script \"%s\" exists", to);
			r = t == 1 ? -2 : -1;
		}
	}
	if (r <= 0) {
		store_db_rollback(db);
		return r;
	}
	sqlite3_stmt *st =
	    store_db_stmt(db, "UPDATE sieve_scripts SET name = ?2 WHERE name = ?1", err, errsz);
	if (st == NULL) {
		store_db_rollback(db);
		return -1;
	}
	store_db_bind_text(st, 1, from);
	store_db_bind_text(st, 2, to);
	if (store_db_run(db, st, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz) < 0 ? -1 : 1;
}

int store_sieve_list(struct store_account *a,
		     int (*cb)(void *ctx, const char *name, uint64_t size, bool active), void *ctx,
		     char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin_read(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT name, length(content), active FROM sieve_scripts ORDER BY name", err,
	    errsz);
	if (st == NULL) {
		store_db_rollback(db);
		return -1;
	}
	int rc, ret = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if (cb(ctx, name ? name : "", (uint64_t)sqlite3_column_int64(st, 1),
		       sqlite3_column_int(st, 2) != 0) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "listing scripts", err, errsz);
		ret = -1;
	}
	sqlite3_reset(st);
	store_db_rollback(db);
	return ret;
}
