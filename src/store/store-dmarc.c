/*
 * store-dmarc.c - the DMARC evaluations of received mail (RFC 7489 7.2:
 * what aggregate reports are made of), in server.db: one row per message
 * whose From: domain publishes a policy with rua= addresses, until the
 * report that covers it has been queued.
 *
 * Rows are written without a sync of their own (store_db_set_sync): losing
 * the last ones to a power failure costs a few lines in a report, never
 * mail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "store-private.h"
#include "xalloc.h"

static const char dmarc_ddl[] = "CREATE TABLE IF NOT EXISTS dmarc_events ("
				" id INTEGER PRIMARY KEY AUTOINCREMENT,"
				" time INTEGER NOT NULL,"
				" policy_domain TEXT NOT NULL,"
				" from_domain TEXT NOT NULL,"
				" ip TEXT NOT NULL,"
				" disposition TEXT NOT NULL,"
				" dkim TEXT NOT NULL,"
				" spf TEXT NOT NULL,"
				" dkim_domain TEXT NOT NULL,"
				" dkim_result TEXT NOT NULL,"
				" spf_domain TEXT NOT NULL,"
				" spf_result TEXT NOT NULL,"
				" policy TEXT NOT NULL,"
				" rua TEXT NOT NULL,"
				" reported INTEGER NOT NULL DEFAULT 0);"
				"CREATE INDEX IF NOT EXISTS dmarc_events_due"
				" ON dmarc_events(reported, policy_domain, time);"
				"CREATE TABLE IF NOT EXISTS dmarc_failures ("
				" id INTEGER PRIMARY KEY AUTOINCREMENT,"
				" time INTEGER NOT NULL,"
				" policy_domain TEXT NOT NULL,"
				" ruf TEXT NOT NULL,"
				" message BLOB NOT NULL,"
				" sent INTEGER NOT NULL DEFAULT 0);"
				"CREATE INDEX IF NOT EXISTS dmarc_failures_domain"
				" ON dmarc_failures(policy_domain, time);"
				"CREATE TABLE IF NOT EXISTS domain_dmarc ("
				" domain TEXT PRIMARY KEY,"
				" reject_action TEXT NOT NULL);";

int store_dmarc_schema(struct store *s, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db.h, dmarc_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating dmarc_events: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int store_dmarc_record(struct store *s, const struct store_dmarc_event *e, char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO dmarc_events (time, policy_domain, from_domain, ip, disposition, dkim,"
	    " spf, dkim_domain, dkim_result, spf_domain, spf_result, policy, rua)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	    err, errsz);
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, e->time);
		store_db_bind_text(st, 2, e->policy_domain);
		store_db_bind_text(st, 3, e->from_domain);
		store_db_bind_text(st, 4, e->ip);
		store_db_bind_text(st, 5, e->disposition);
		store_db_bind_text(st, 6, e->dkim);
		store_db_bind_text(st, 7, e->spf);
		store_db_bind_text(st, 8, e->dkim_domain);
		store_db_bind_text(st, 9, e->dkim_result);
		store_db_bind_text(st, 10, e->spf_domain);
		store_db_bind_text(st, 11, e->spf_result);
		store_db_bind_text(st, 12, e->policy);
		store_db_bind_text(st, 13, e->rua);
		r = store_db_run(db, st, err, errsz);
	}
	(void)store_db_set_sync(db, true, NULL, 0);
	return r;
}

static void read_domain(sqlite3_stmt *st, void *row)
{
	struct store_dmarc_due *d = row;
	store_db_column_text(st, 0, d->policy_domain, sizeof d->policy_domain);
	d->first = sqlite3_column_int64(st, 1);
	store_db_column_text(st, 2, d->policy, sizeof d->policy);
	store_db_column_text(st, 3, d->rua, sizeof d->rua);
}

int store_dmarc_due(struct store *s, int64_t older_than, struct store_dmarc_due *out, size_t max,
		    size_t *n, char *err, size_t errsz)
{
	/* The newest policy and rua seen for the domain go in the report. */
	sqlite3_stmt *st = store_db_stmt(
	    &s->db,
	    "SELECT policy_domain, min(time),"
	    " (SELECT policy FROM dmarc_events e2 WHERE e2.policy_domain = e.policy_domain"
	    "  AND e2.reported = 0 ORDER BY time DESC LIMIT 1),"
	    " (SELECT rua FROM dmarc_events e3 WHERE e3.policy_domain = e.policy_domain"
	    "  AND e3.reported = 0 ORDER BY time DESC LIMIT 1)"
	    " FROM dmarc_events e WHERE reported = 0 GROUP BY policy_domain"
	    " HAVING min(time) <= ?1 ORDER BY policy_domain LIMIT ?2",
	    err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, older_than);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	return store_db_fetch(&s->db, st, out, sizeof *out, max, read_domain, n,
			      "listing DMARC reports due", err, errsz);
}

static void read_row(sqlite3_stmt *st, void *row)
{
	struct store_dmarc_row *r = row;
	store_db_column_text(st, 0, r->ip, sizeof r->ip);
	r->count = sqlite3_column_int64(st, 1);
	store_db_column_text(st, 2, r->disposition, sizeof r->disposition);
	store_db_column_text(st, 3, r->dkim, sizeof r->dkim);
	store_db_column_text(st, 4, r->spf, sizeof r->spf);
	store_db_column_text(st, 5, r->from_domain, sizeof r->from_domain);
	store_db_column_text(st, 6, r->dkim_domain, sizeof r->dkim_domain);
	store_db_column_text(st, 7, r->dkim_result, sizeof r->dkim_result);
	store_db_column_text(st, 8, r->spf_domain, sizeof r->spf_domain);
	store_db_column_text(st, 9, r->spf_result, sizeof r->spf_result);
}

int store_dmarc_rows(struct store *s, const char *policy_domain, int64_t until,
		     struct store_dmarc_row *out, size_t max, size_t *n, int64_t *first,
		     char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    &s->db,
	    "SELECT ip, count(*), disposition, dkim, spf, from_domain, dkim_domain, dkim_result,"
	    " spf_domain, spf_result FROM dmarc_events"
	    " WHERE reported = 0 AND policy_domain = ?1 AND time <= ?2"
	    " GROUP BY ip, disposition, dkim, spf, from_domain, dkim_domain, dkim_result,"
	    " spf_domain, spf_result ORDER BY count(*) DESC, ip LIMIT ?3",
	    err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, policy_domain);
	sqlite3_bind_int64(st, 2, until);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	if (store_db_fetch(&s->db, st, out, sizeof *out, max, read_row, n, "reading DMARC events",
			   err, errsz) < 0)
		return -1;
	st = store_db_stmt(&s->db,
			   "SELECT min(time) FROM dmarc_events WHERE reported = 0 AND"
			   " policy_domain = ?1 AND time <= ?2",
			   err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, policy_domain);
	sqlite3_bind_int64(st, 2, until);
	*first = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : until;
	sqlite3_reset(st);
	return 0;
}

int store_dmarc_done(struct store *s, const char *policy_domain, int64_t until,
		     int64_t forget_before, char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	sqlite3_stmt *st = store_db_stmt(db,
					 "UPDATE dmarc_events SET reported = 1 WHERE reported = 0"
					 " AND policy_domain = ?1 AND time <= ?2",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, policy_domain);
	sqlite3_bind_int64(st, 2, until);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	st = store_db_stmt(db, "DELETE FROM dmarc_events WHERE reported = 1 AND time < ?1", err,
			   errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, forget_before);
	return store_db_run(db, st, err, errsz);
}

int store_dmarc_action_set(struct store *s, const char *domain, const char *action, char *err,
			   size_t errsz)
{
	char name[256];
	if (store_name_domain(domain, name, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st;
	if (action == NULL || action[0] == '\0') {
		st = store_db_stmt(&s->db, "DELETE FROM domain_dmarc WHERE domain = ?1", err, errsz);
		if (st == NULL)
			return -1;
		store_db_bind_text(st, 1, name);
	} else {
		st = store_db_stmt(&s->db,
				   "INSERT INTO domain_dmarc (domain, reject_action) VALUES (?1, ?2)"
				   " ON CONFLICT (domain) DO UPDATE SET reject_action = ?2",
				   err, errsz);
		if (st == NULL)
			return -1;
		store_db_bind_text(st, 1, name);
		store_db_bind_text(st, 2, action);
	}
	return store_db_run(&s->db, st, err, errsz);
}

int store_dmarc_action_get(struct store *s, const char *domain, char out[16])
{
	char name[256];
	out[0] = '\0';
	if (store_name_domain(domain, name, NULL, 0) < 0)
		return 0;
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "SELECT reject_action FROM domain_dmarc WHERE domain = ?1", NULL, 0);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_db_column_text(st, 0, out, 16);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* ------------------------------------------------------ failure reports */

int store_dmarc_failure_add(struct store *s, int64_t now, const char *policy_domain,
			    const char *ruf, const void *msg, size_t len, unsigned per_hour,
			    char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	/* One statement counts and inserts, so that workers racing for the
	 * last report of the hour cannot both get it. */
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO dmarc_failures (time, policy_domain, ruf, message)"
	    " SELECT ?1, ?2, ?3, ?4 WHERE (SELECT count(*) FROM dmarc_failures"
	    "  WHERE policy_domain = ?2 AND time > ?1 - 3600) < ?5",
	    err, errsz);
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, now);
		store_db_bind_text(st, 2, policy_domain);
		store_db_bind_text(st, 3, ruf);
		sqlite3_bind_blob64(st, 4, msg, len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, per_hour);
		r = store_db_run(db, st, err, errsz);
		if (r == 0)
			r = sqlite3_changes(db->h) > 0 ? 1 : 0;
	}
	(void)store_db_set_sync(db, true, NULL, 0);
	return r;
}

int store_dmarc_failure_next(struct store *s, int64_t after, struct store_dmarc_failure *out,
			     struct buf *msg, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "SELECT id, policy_domain, ruf, message FROM dmarc_failures"
					 " WHERE sent = 0 AND id > ?1 ORDER BY id LIMIT 1",
					 err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, after);
	int rc = sqlite3_step(st), r = 0;
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(st, 0);
		store_db_column_text(st, 1, out->policy_domain, sizeof out->policy_domain);
		store_db_column_text(st, 2, out->ruf, sizeof out->ruf);
		const void *b = sqlite3_column_blob(st, 3);
		size_t n = (size_t)sqlite3_column_bytes(st, 3);
		r = buf_append(msg, b != NULL ? b : "", n) == 0 ? 1 : -1;
		if (r < 0)
			store_err(err, errsz, "out of memory reading a DMARC failure report");
	} else if (rc != SQLITE_DONE) {
		store_db_error(&s->db, "reading DMARC failure reports", err, errsz);
		r = -1;
	}
	sqlite3_reset(st);
	return r;
}

int store_dmarc_failure_sent(struct store *s, int64_t id, int64_t forget_before, char *err,
			     size_t errsz)
{
	struct store_db *db = &s->db;
	sqlite3_stmt *st = store_db_stmt(
	    db, "UPDATE dmarc_failures SET sent = 1, message = x'' WHERE id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	st = store_db_stmt(db, "DELETE FROM dmarc_failures WHERE sent = 1 AND time < ?1", err,
			   errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, forget_before);
	return store_db_run(db, st, err, errsz);
}
