/*
 * store-websession.c - the web app's sign-in sessions (server.db, table
 * web_sessions; docs/webmail.md).
 *
 * A row is keyed by the SHA-256 of the session's random id (the cookie's
 * value), never the id itself: a copy of server.db signs nobody in.  It
 * keeps what the sign-in proved (the app password's id, "" for the main
 * password, and the tag of the stored hash that matched: authglue.h's
 * cred_tag), so a changed password or a revoked app password ends the
 * session at its next request.  Rows go with their account (ON DELETE
 * CASCADE); expired ones are deleted when a new session is made.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "store-private.h"

static const char websession_ddl[] =
    "CREATE TABLE IF NOT EXISTS web_sessions ("
    " id_hash BLOB PRIMARY KEY,"
    " account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,"
    " app_id TEXT NOT NULL,"
    " cred_tag BLOB NOT NULL,"
    " created INTEGER NOT NULL,"
    " expires INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS web_sessions_account ON web_sessions(account_id);";

int store_websession_schema(struct store *s, char *err, size_t errsz)
{
	return store_db_exec_ddl(&s->db, websession_ddl, "creating web_sessions", err, errsz);
}

int store_websession_add(struct store *s, const struct store_websession *ws, char *err,
			 size_t errsz)
{
	if (strlen(ws->app_id) >= sizeof ws->app_id) {
		store_err(err, errsz, "app password id too long");
		return -1;
	}
	struct store_db *db = &s->db;
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db, "DELETE FROM web_sessions WHERE expires <= ?1", err,
					 errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, ws->created);
	if (store_db_run(db, st, err, errsz) < 0)
		goto fail;
	st = store_db_stmt(db,
			   "INSERT INTO web_sessions (id_hash, account_id, app_id, cred_tag,"
			   " created, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
			   err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_blob(st, 1, ws->id_hash, sizeof ws->id_hash, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ws->account_id);
	store_db_bind_text(st, 3, ws->app_id);
	sqlite3_bind_blob(st, 4, ws->cred_tag, sizeof ws->cred_tag, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, ws->created);
	sqlite3_bind_int64(st, 6, ws->expires);
	if (store_db_run(db, st, err, errsz) < 0 || store_db_commit(db, err, errsz) < 0)
		goto fail;
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

int store_websession_find(struct store *s, const unsigned char id_hash[32], int64_t now,
			  struct store_websession *out)
{
	char err[256];
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "SELECT w.account_id, w.app_id, w.cred_tag, w.created,"
					 " w.expires, a.address FROM web_sessions w"
					 " JOIN accounts a ON a.id = w.account_id"
					 " WHERE w.id_hash = ?1 AND w.expires > ?2",
					 err, sizeof err);
	if (st == NULL) {
		log_error("store action=websession_find error=\"%s\"", err);
		return -1;
	}
	sqlite3_bind_blob(st, 1, id_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st);
	int ret = 0;
	if (rc == SQLITE_ROW) {
		const unsigned char *app = sqlite3_column_text(st, 1);
		const void *tag = sqlite3_column_blob(st, 2);
		const unsigned char *addr = sqlite3_column_text(st, 5);
		if (sqlite3_column_bytes(st, 2) == (int)sizeof out->cred_tag && tag != NULL &&
		    app != NULL && addr != NULL &&
		    (size_t)sqlite3_column_bytes(st, 1) < sizeof out->app_id &&
		    (size_t)sqlite3_column_bytes(st, 5) < sizeof out->account) {
			out->account_id = sqlite3_column_int64(st, 0);
			snprintf(out->app_id, sizeof out->app_id, "%s", (const char *)app);
			memcpy(out->cred_tag, tag, sizeof out->cred_tag);
			out->created = sqlite3_column_int64(st, 3);
			out->expires = sqlite3_column_int64(st, 4);
			snprintf(out->account, sizeof out->account, "%s", (const char *)addr);
			memcpy(out->id_hash, id_hash, sizeof out->id_hash);
			ret = 1;
		}
	} else if (rc != SQLITE_DONE) {
		store_db_error(&s->db, "reading a web session", err, sizeof err);
		log_error("store action=websession_find error=\"%s\"", err);
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

int store_websession_remove(struct store *s, const unsigned char id_hash[32], char *err,
			    size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(&s->db, "DELETE FROM web_sessions WHERE id_hash = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_blob(st, 1, id_hash, 32, SQLITE_STATIC);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		return -1;
	return sqlite3_changes(s->db.h) > 0;
}

long store_websession_remove_account(struct store *s, int64_t account_id, char *err,
				     size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(&s->db, "DELETE FROM web_sessions WHERE account_id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		return -1;
	return (long)sqlite3_changes(s->db.h);
}
