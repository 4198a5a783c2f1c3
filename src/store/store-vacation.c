/*
 * store-vacation.c - Sieve vacation response tracking (RFC 5230 4.2,
 * docs/sieve.md "Vacation"): in the account's own database (table
 * vacation_sent, account schema v3), one row per (sender, handle) with the
 * time its period ends.  Expired rows are dropped whenever a reply is
 * recorded, and an account keeps at most STORE_VACATION_MAX rows (RFC 5230
 * asks for at least 1000), the oldest dropped first.
 *
 * Also store_account_address, the address of an account by id, which
 * delivery needs for the user's own addresses.
 */
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "strutil.h"
#include "xalloc.h"

static char *lower_dup(const char *s)
{
	char *l = xstrdup(s);
	strutil_lower(l, strlen(l));
	return l;
}

int store_vacation_seen(struct store_account *a, const char *sender, const char *handle,
			int64_t now, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT 1 FROM vacation_sent WHERE sender = ?1 AND"
					 " handle = ?2 AND expires > ?3",
					 err, errsz);
	if (st == NULL)
		return -1;
	char *l = lower_dup(sender);
	store_db_bind_text(st, 1, l);
	store_db_bind_text(st, 2, handle);
	sqlite3_bind_int64(st, 3, now);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_db_error(db, "reading vacation replies", err, errsz);
	sqlite3_reset(st);
	free(l);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_vacation_record(struct store_account *a, const char *sender, const char *handle,
			  int64_t now, int64_t until, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	static const char *const sql[3] = {
	    "DELETE FROM vacation_sent WHERE expires <= ?1",
	    "INSERT INTO vacation_sent (sender, handle, expires) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (sender, handle) DO UPDATE SET expires = excluded.expires",
	    "DELETE FROM vacation_sent WHERE (sender, handle) IN (SELECT sender, handle"
	    " FROM vacation_sent ORDER BY expires DESC LIMIT -1 OFFSET ?1)",
	};
	char *l = lower_dup(sender);
	int ret = 0;
	for (int i = 0; i < 3 && ret == 0; i++) {
		sqlite3_stmt *st = store_db_stmt(db, sql[i], err, errsz);
		if (st == NULL) {
			ret = -1;
			break;
		}
		if (i == 0) {
			sqlite3_bind_int64(st, 1, now);
		} else if (i == 1) {
			store_db_bind_text(st, 1, l);
			store_db_bind_text(st, 2, handle);
			sqlite3_bind_int64(st, 3, until);
		} else {
			sqlite3_bind_int64(st, 1, STORE_VACATION_MAX);
		}
		ret = store_db_run(db, st, err, errsz);
	}
	free(l);
	if (ret < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

int store_account_address(struct store *s, int64_t id, char out[256])
{
	out[0] = '\0';
	sqlite3_stmt *st =
	    store_db_stmt(&s->db, "SELECT address FROM accounts WHERE id = ?1", NULL, 0);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_db_column_text(st, 0, out, 256);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}
