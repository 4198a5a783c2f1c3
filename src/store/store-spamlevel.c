/*
 * store-spamlevel.c - spam thresholds of a domain or of a user
 * (docs/spam.md "Thresholds per domain and per user"), in server.db:
 *
 *   spam_levels  name (a domain, or a user's address) -> junk score and
 *                reject score, each NULL when that level does not set it
 *                (the next level's, or the config's, counts).
 *
 * Made with CREATE ... IF NOT EXISTS when the store opens, like the
 * greylisting tables.
 */
#include <string.h>

#include "store-private.h"

static const char spamlevel_ddl[] = "CREATE TABLE IF NOT EXISTS spam_levels ("
				    " name TEXT PRIMARY KEY,"
				    " junk INTEGER,"
				    " reject INTEGER) WITHOUT ROWID;";

int store_spamlevel_schema(struct store *s, char *err, size_t errsz)
{
	return store_db_exec_ddl(&s->db, spamlevel_ddl, "creating spam_levels", err, errsz);
}

int store_spamlevel_get(struct store *s, const char *name, struct store_spamlevel *out,
			char *err, size_t errsz)
{
	out->junk = out->reject = -1;
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "SELECT junk, reject FROM spam_levels WHERE name = lower(?1)", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			out->junk = sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			out->reject = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(&s->db, "reading spam_levels", err, errsz);
		return -1;
	}
	return rc == SQLITE_ROW;
}

int store_spamlevel_set(struct store *s, const char *name, const struct store_spamlevel *l,
			char *err, size_t errsz)
{
	bool none = l->junk < 0 && l->reject < 0;
	sqlite3_stmt *st = store_db_stmt(
	    &s->db,
	    none ? "DELETE FROM spam_levels WHERE name = lower(?1)"
		 : "INSERT INTO spam_levels (name, junk, reject) VALUES (lower(?1), ?2, ?3)"
		   " ON CONFLICT (name) DO UPDATE SET junk = excluded.junk, reject = excluded.reject",
	    err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	if (!none) {
		if (l->junk >= 0)
			sqlite3_bind_int64(st, 2, l->junk);
		else
			sqlite3_bind_null(st, 2);
		if (l->reject >= 0)
			sqlite3_bind_int64(st, 3, l->reject);
		else
			sqlite3_bind_null(st, 3);
	}
	return store_db_run(&s->db, st, err, errsz);
}
