/*
 * store-greylist.c - greylisting's memory (docs/spam.md), in server.db so
 * every worker sees the same: the (client network, sender, recipient)
 * triplets seen and whether one was retried after the delay
 * (greylist), how many triplets each client network passed
 * (greylist_nets: the auto-allowlist), how many triplets of each sender
 * domain passed with SPF passing for it (greylist_senders: its history),
 * and which of our domains greylist at all (domain_greylist).
 *
 * The decision for one triplet is one BEGIN IMMEDIATE transaction, so two
 * workers that see the same retry at once count it once.  Rows are written
 * without a sync of their own (store_db_set_sync): losing the last ones to
 * a power failure only greylists a sender once more, never loses mail.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "store-private.h"

static const char greylist_ddl[] =
    "CREATE TABLE IF NOT EXISTS greylist ("
    " net TEXT NOT NULL,"
    " sender TEXT NOT NULL,"
    " rcpt TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " passed INTEGER NOT NULL,"
    " tries INTEGER NOT NULL,"
    " PRIMARY KEY (net, sender, rcpt));"
    "CREATE INDEX IF NOT EXISTS greylist_age ON greylist(passed, last_seen);"
    "CREATE TABLE IF NOT EXISTS greylist_nets ("
    " net TEXT PRIMARY KEY,"
    " passes INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS greylist_senders ("
    " domain TEXT PRIMARY KEY,"
    " passes INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS domain_greylist ("
    " domain TEXT PRIMARY KEY,"
    " greylist INTEGER NOT NULL);";

int store_greylist_schema(struct store *s, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db.h, greylist_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating greylist: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int store_greylist_domain_set(struct store *s, const char *domain, bool on, char *err, size_t errsz)
{
	char name[256];
	if (store_name_domain(domain, name, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st;
	if (!on) {
		st = store_db_stmt(&s->db, "DELETE FROM domain_greylist WHERE domain = ?1", err,
				   errsz);
	} else {
		st = store_db_stmt(&s->db,
				   "INSERT INTO domain_greylist (domain, greylist) VALUES (?1, 1)"
				   " ON CONFLICT (domain) DO UPDATE SET greylist = 1",
				   err, errsz);
	}
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	return store_db_run(&s->db, st, err, errsz);
}

int store_greylist_domain_get(struct store *s, const char *domain)
{
	char name[256];
	if (store_name_domain(domain, name, NULL, 0) < 0)
		return 0;
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "SELECT greylist FROM domain_greylist WHERE domain = ?1", NULL, 0);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	int on = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? on : rc == SQLITE_DONE ? 0 : -1;
}

/* Under the transaction: is net auto-allowed (and then touched)?  1, 0 or
 * -1. */
static int net_allowed(struct store_db *db, const char *net, int64_t now,
		       const struct store_greylist_policy *p, char *err, size_t errsz)
{
	if (p->auto_allow == 0)
		return 0;
	sqlite3_stmt *st = store_db_stmt(db,
					 "UPDATE greylist_nets SET last_seen = ?2 WHERE net = ?1 "
					 "AND passes >= ?3 AND last_seen >= ?4",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, net);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, p->auto_allow);
	sqlite3_bind_int64(st, 4, now - p->keep);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	return sqlite3_changes(db->h) > 0;
}

/* Under the transaction: one more passed triplet for net. */
static int net_count_pass(struct store_db *db, const char *net, int64_t now,
			  const struct store_greylist_policy *p, char *err, size_t errsz)
{
	/* passes of a network that went quiet longer than keep start over */
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO greylist_nets (net, passes, last_seen) VALUES (?1, 1, ?2)"
	    " ON CONFLICT (net) DO UPDATE SET"
	    " passes = CASE WHEN last_seen < ?3 THEN 1 ELSE passes + 1 END, last_seen = ?2",
	    err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, net);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, now - p->keep);
	return store_db_run(db, st, err, errsz);
}

/* Under the transaction: the decision for a triplet not covered by its
 * network. */
static int triplet(struct store_db *db, const struct store_greylist_key *k, int64_t now,
		   const struct store_greylist_policy *p, struct store_greylist_answer *a,
		   char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT first_seen, last_seen, passed FROM greylist WHERE "
					 "net = ?1 AND sender = ?2 AND rcpt = ?3",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, k->net);
	store_db_bind_text(st, 2, k->sender);
	store_db_bind_text(st, 3, k->rcpt);
	int rc = sqlite3_step(st);
	int64_t first = 0, last = 0;
	bool passed = false, found = rc == SQLITE_ROW;
	if (found) {
		first = sqlite3_column_int64(st, 0);
		last = sqlite3_column_int64(st, 1);
		passed = sqlite3_column_int(st, 2) != 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "reading greylist", err, errsz);
		return -1;
	}
	/* expired rows count as never seen */
	if (found && ((!passed && first < now - p->expire) || (passed && last < now - p->keep)))
		found = false;
	const char *sql;
	if (!found) {
		a->result = STORE_GREYLIST_NEW;
		a->wait = p->delay;
		sql =
		    "INSERT INTO greylist (net, sender, rcpt, first_seen, last_seen, passed, tries)"
		    " VALUES (?1, ?2, ?3, ?4, ?4, 0, 1)"
		    " ON CONFLICT (net, sender, rcpt) DO UPDATE SET"
		    " first_seen = ?4, last_seen = ?4, passed = 0, tries = 1";
	} else if (passed) {
		a->result = STORE_GREYLIST_KNOWN;
		sql = "UPDATE greylist SET last_seen = ?4, tries = tries + 1"
		      " WHERE net = ?1 AND sender = ?2 AND rcpt = ?3";
	} else if (now - first < p->delay) {
		a->result = STORE_GREYLIST_EARLY;
		a->wait = p->delay - (now - first);
		/* last stays first: an unconfirmed row expires from its start */
		sql = "UPDATE greylist SET tries = tries + 1"
		      " WHERE net = ?1 AND sender = ?2 AND rcpt = ?3";
	} else {
		a->result = STORE_GREYLIST_PASS;
		sql = "UPDATE greylist SET last_seen = ?4, passed = 1, tries = tries + 1"
		      " WHERE net = ?1 AND sender = ?2 AND rcpt = ?3";
	}
	a->first = found ? first : now;
	st = store_db_stmt(db, sql, err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, k->net);
	store_db_bind_text(st, 2, k->sender);
	store_db_bind_text(st, 3, k->rcpt);
	if (sqlite3_bind_parameter_count(st) >= 4)
		sqlite3_bind_int64(st, 4, now);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	if (a->result == STORE_GREYLIST_PASS)
		return net_count_pass(db, k->net, now, p, err, errsz);
	return 0;
}

int store_greylist_check(struct store *s, const struct store_greylist_key *k, int64_t now,
			 const struct store_greylist_policy *p, struct store_greylist_answer *a,
			 char *err, size_t errsz)
{
	memset(a, 0, sizeof *a);
	struct store_db *db = &s->db;
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	int r = -1;
	if (store_db_begin(db, err, errsz) < 0)
		goto out;
	int allowed = net_allowed(db, k->net, now, p, err, errsz);
	if (allowed > 0)
		a->result = STORE_GREYLIST_NET;
	if (allowed < 0 || (allowed == 0 && triplet(db, k, now, p, a, err, errsz) < 0)) {
		store_db_rollback(db);
		goto out;
	}
	r = store_db_commit(db, err, errsz);
out:
	(void)store_db_set_sync(db, true, NULL, 0);
	return r;
}

int store_greylist_expire(struct store *s, int64_t now, const struct store_greylist_policy *p,
			  char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "DELETE FROM greylist WHERE (passed = 0 AND last_seen < "
					 "?1) OR (passed = 1 AND last_seen < ?2)",
					 err, errsz);
	int r = -1;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, now - p->expire);
		sqlite3_bind_int64(st, 2, now - p->keep);
		r = store_db_run(db, st, err, errsz);
	}
	if (r == 0) {
		st =
		    store_db_stmt(db, "DELETE FROM greylist_nets WHERE last_seen < ?1", err, errsz);
		r = -1;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, now - p->keep);
			r = store_db_run(db, st, err, errsz);
		}
	}
	(void)store_db_set_sync(db, true, NULL, 0);
	return r;
}

int store_greylist_sender_passes(struct store *s, const char *domain, int64_t now, int64_t keep)
{
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "SELECT passes FROM greylist_senders WHERE domain = ?1 AND last_seen >= ?2",
	    NULL, 0);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, domain);
	sqlite3_bind_int64(st, 2, now - keep);
	int rc = sqlite3_step(st);
	int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	return n > INT_MAX ? INT_MAX : (int)n;
}

int store_greylist_sender_pass(struct store *s, const char *domain, int64_t now, int64_t keep,
			       char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	/* a history unused longer than keep starts over */
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO greylist_senders (domain, passes, last_seen) VALUES (?1, 1, ?2)"
	    " ON CONFLICT (domain) DO UPDATE SET"
	    " passes = CASE WHEN last_seen < ?3 THEN 1 ELSE passes + 1 END, last_seen = ?2",
	    err, errsz);
	int r = -1;
	if (st != NULL) {
		store_db_bind_text(st, 1, domain);
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_int64(st, 3, now - keep);
		r = store_db_run(db, st, err, errsz);
	}
	(void)store_db_set_sync(db, true, NULL, 0);
	return r;
}
