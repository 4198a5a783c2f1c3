/*
 * store-jmapvacation.c - the JMAP VacationResponse of an account (RFC
 * 8621 8, docs/jmap.md "VacationResponse"): one row of the account's
 * database (table jmap_vacation, made at first use: no schema version
 * change) with the object's properties as JMAP gave them, the window as
 * Unix times, the reply delivery sends (the reason a Sieve vacation
 * would give, already built by the JMAP layer) and a state counter.
 * Delivery (smtp-sieve.c) reads it; the response tracking is the Sieve
 * vacation's (store-vacation.c).
 */
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "xalloc.h"

static const char vacation_ddl[] = "CREATE TABLE IF NOT EXISTS jmap_vacation ("
				   " id INTEGER PRIMARY KEY CHECK (id = 1),"
				   " enabled INTEGER NOT NULL,"
				   " from_date TEXT, from_time INTEGER,"
				   " to_date TEXT, to_time INTEGER,"
				   " subject TEXT, text_body TEXT, html_body TEXT,"
				   " reason TEXT NOT NULL, mime INTEGER NOT NULL,"
				   " state INTEGER NOT NULL);";

static char *column_dup(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	const unsigned char *t = sqlite3_column_text(st, i);
	return xstrdup(t != NULL ? (const char *)t : "");
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	if (s != NULL)
		store_db_bind_text(st, i, s);
	else
		sqlite3_bind_null(st, i);
}

static struct store_db *vacation_db(struct store_account *a, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_exec_ddl(db, vacation_ddl, "creating jmap_vacation", err,
					    errsz) < 0)
		return NULL;
	return db;
}

int store_jmapvacation_get(struct store_account *a, struct store_jmapvacation *v, char *err,
			   size_t errsz)
{
	memset(v, 0, sizeof *v);
	struct store_db *db = vacation_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT enabled, from_date, from_time, to_date, to_time,"
					 " subject, text_body, html_body, reason, mime, state"
					 " FROM jmap_vacation WHERE id = 1",
					 err, errsz);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		v->enabled = sqlite3_column_int(st, 0) != 0;
		v->from_date = column_dup(st, 1);
		v->from_time = sqlite3_column_int64(st, 2);
		v->to_date = column_dup(st, 3);
		v->to_time = sqlite3_column_int64(st, 4);
		v->subject = column_dup(st, 5);
		v->text_body = column_dup(st, 6);
		v->html_body = column_dup(st, 7);
		v->reason = column_dup(st, 8);
		v->mime = sqlite3_column_int(st, 9) != 0;
		v->state = (uint64_t)sqlite3_column_int64(st, 10);
	} else if (rc != SQLITE_DONE) {
		store_db_error(db, "reading jmap_vacation", err, errsz);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_jmapvacation_put(struct store_account *a, const struct store_jmapvacation *v,
			   uint64_t old_state, char *err, size_t errsz)
{
	struct store_db *db = vacation_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT state FROM jmap_vacation WHERE id = 1", err, errsz);
	if (st == NULL) {
		store_db_rollback(db);
		return -1;
	}
	int rc = sqlite3_step(st);
	uint64_t now = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "reading jmap_vacation", err, errsz);
		store_db_rollback(db);
		return -1;
	}
	if (now != old_state) {
		store_db_rollback(db);
		return -2;
	}
	st = store_db_stmt(db,
			   "INSERT OR REPLACE INTO jmap_vacation (id, enabled, from_date, from_time,"
			   " to_date, to_time, subject, text_body, html_body, reason, mime, state)"
			   " VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
			   err, errsz);
	if (st == NULL) {
		store_db_rollback(db);
		return -1;
	}
	sqlite3_bind_int(st, 1, v->enabled ? 1 : 0);
	bind_opt(st, 2, v->from_date);
	sqlite3_bind_int64(st, 3, v->from_time);
	bind_opt(st, 4, v->to_date);
	sqlite3_bind_int64(st, 5, v->to_time);
	bind_opt(st, 6, v->subject);
	bind_opt(st, 7, v->text_body);
	bind_opt(st, 8, v->html_body);
	store_db_bind_text(st, 9, v->reason != NULL ? v->reason : "");
	sqlite3_bind_int(st, 10, v->mime ? 1 : 0);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)(old_state + 1));
	if (store_db_run(db, st, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

bool store_jmapvacation_active(const struct store_jmapvacation *v, int64_t now)
{
	return v->enabled && v->reason != NULL && (v->from_date == NULL || now >= v->from_time) &&
	       (v->to_date == NULL || now < v->to_time);
}

void store_jmapvacation_free(struct store_jmapvacation *v)
{
	free(v->from_date);
	free(v->to_date);
	free(v->subject);
	free(v->text_body);
	free(v->html_body);
	free(v->reason);
	memset(v, 0, sizeof *v);
}
