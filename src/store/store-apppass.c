/*
 * store-apppass.c - app passwords (server.db, table app_passwords): per
 * device passwords of an account beside its main one, each with a name,
 * a non-secret id (auth/apppass.h) and a crypt(3) hash of the password.
 *
 * The rows go with their account (ON DELETE CASCADE).  (account_id, id)
 * is the key a login looks up; (account_id, name) is what the admin
 * names.  last_used is written by the login path at most once a minute
 * per password (the caller compares with the value it read), and without
 * a sync of its own: losing the last minute of it on power failure is
 * harmless, and the next synced commit of server.db makes it durable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store-private.h"
#include "xalloc.h"

static const char apppass_ddl[] =
    "CREATE TABLE IF NOT EXISTS app_passwords ("
    " account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " id TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " pwhash TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " last_used INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (account_id, id),"
    " UNIQUE (account_id, name)) WITHOUT ROWID;";

int store_apppass_schema(struct store *s, char *err, size_t errsz)
{
	return store_db_exec_ddl(&s->db, apppass_ddl, "creating app_passwords", err, errsz);
}

/* A printable token without blanks (id, hash) or a printable line (name)
 * of at most max bytes. */
static bool field_ok(const char *v, size_t max, bool blanks_ok)
{
	size_t n = strlen(v);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x20 || c > 0x7e || (c == ' ' && !blanks_ok))
			return false;
	}
	return true;
}

int store_apppass_add(struct store *s, int64_t account_id, const char *id, const char *name,
		      const char *pwhash, size_t max_per_account, char *err, size_t errsz)
{
	const struct store_apppass *row = NULL;
	if (!field_ok(id, sizeof row->id - 1, false) ||
	    !field_ok(name, sizeof row->name - 1, true) ||
	    !field_ok(pwhash, sizeof row->pwhash - 1, false)) {
		store_err(err, errsz, "app password id, name or hash malformed");
		return -1;
	}
	struct store_db *db = &s->db;
	/* The count and the insert in one write transaction: two adds at once
	 * cannot pass the bound together. */
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st =
	    store_db_stmt(db,
			  "SELECT count(*), coalesce(sum(name = ?2), 0), coalesce(sum(id = ?3), 0)"
			  " FROM app_passwords WHERE account_id = ?1",
			  err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, account_id);
	store_db_bind_text(st, 2, name);
	store_db_bind_text(st, 3, id);
	int rc = sqlite3_step(st);
	sqlite3_int64 count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	bool name_taken = rc == SQLITE_ROW && sqlite3_column_int64(st, 1) > 0;
	bool id_taken = rc == SQLITE_ROW && sqlite3_column_int64(st, 2) > 0;
	if (rc != SQLITE_ROW)
		store_db_error(db, "counting app passwords", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		goto fail;
	if (name_taken) {
		store_db_rollback(db);
		store_err(err, errsz, "an app password named \"%s\" exists", name);
		return STORE_APPPASS_NAME_TAKEN;
	}
	if (id_taken) {
		store_db_rollback(db);
		store_err(err, errsz, "app password id %s is in use", id);
		return STORE_APPPASS_ID_TAKEN;
	}
	if ((size_t)count >= max_per_account) {
		store_db_rollback(db);
		store_err(err, errsz, "the account has %lld app passwords, the most it may have",
			  (long long)count);
		return STORE_APPPASS_FULL;
	}
	st = store_db_stmt(db,
			   "INSERT INTO app_passwords (account_id, id, name, pwhash, created)"
			   " VALUES (?1, ?2, ?3, ?4, ?5)",
			   err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, account_id);
	store_db_bind_text(st, 2, id);
	store_db_bind_text(st, 3, name);
	store_db_bind_text(st, 4, pwhash);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if (store_db_run(db, st, err, errsz) < 0 || store_db_commit(db, err, errsz) < 0)
		goto fail;
	log_info("action=app_password_add account=%lld id=%s", (long long)account_id, id);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

static void read_row(sqlite3_stmt *st, void *out)
{
	struct store_apppass *a = out;
	store_db_column_text(st, 0, a->id, sizeof a->id);
	store_db_column_text(st, 1, a->name, sizeof a->name);
	store_db_column_text(st, 2, a->pwhash, sizeof a->pwhash);
	a->created = sqlite3_column_int64(st, 3);
	a->last_used = sqlite3_column_int64(st, 4);
}

int store_apppass_list(struct store *s, int64_t account_id, struct store_apppass *rows, size_t max,
		       size_t *n_out, char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(&s->db,
			  "SELECT id, name, pwhash, created, last_used FROM app_passwords"
			  " WHERE account_id = ?1 ORDER BY created, name LIMIT ?2",
			  err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	return store_db_fetch(&s->db, st, rows, sizeof *rows, max, read_row, n_out,
			      "listing app passwords", err, errsz);
}

int store_apppass_find(struct store *s, int64_t account_id, const char *id,
		       struct store_apppass *out)
{
	sqlite3_stmt *st =
	    store_db_stmt(&s->db,
			  "SELECT id, name, pwhash, created, last_used FROM app_passwords"
			  " WHERE account_id = ?1 AND id = ?2",
			  NULL, 0);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	store_db_bind_text(st, 2, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_row(st, out);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_apppass_remove(struct store *s, int64_t account_id, const char *name, char *err,
			 size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "DELETE FROM app_passwords WHERE account_id = ?1 AND name = ?2 RETURNING id",
	    err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	store_db_bind_text(st, 2, name);
	int rc = sqlite3_step(st);
	char id[sizeof((struct store_apppass *)0)->id] = "";
	if (rc == SQLITE_ROW) {
		store_db_column_text(st, 0, id, sizeof id);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE)
		store_db_error(&s->db, "removing an app password", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (id[0] == '\0')
		return 0;
	log_info("action=app_password_remove account=%lld id=%s", (long long)account_id, id);
	return 1;
}

int store_apppass_touch(struct store *s, int64_t account_id, const char *id, int64_t now, char *err,
			size_t errsz)
{
	struct store_db *db = &s->db;
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "UPDATE app_passwords SET last_used = ?3"
					 " WHERE account_id = ?1 AND id = ?2 AND last_used < ?3",
					 err, errsz);
	int rc = -1;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, account_id);
		store_db_bind_text(st, 2, id);
		sqlite3_bind_int64(st, 3, now);
		rc = store_db_run(db, st, err, errsz);
	}
	if (store_db_set_sync(db, true, rc == 0 ? err : NULL, rc == 0 ? errsz : 0) < 0)
		rc = -1;
	return rc;
}
