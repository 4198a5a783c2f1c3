/*
 * store-quota.c - storage quotas: what an account uses and what it may use.
 *
 * Usage lives in the account's own database, in the one-row table
 * quota_usage (bytes: the sum of the sizes of its message rows, each copy
 * counted; and the number of rows).  Two triggers on messages keep it, so
 * every insert and delete (delivery, APPEND, COPY, MOVE, EXPUNGE, DELETE of
 * a mailbox) changes it in the same transaction as the rows themselves: it
 * is exact and reading it is one row, never a scan.  The table and its
 * triggers are made, and filled from the rows already there, in one write
 * transaction the first time a database without them is opened (so older
 * account databases get them without a schema version of their own).
 *
 * Limits live in server.db (account_quotas: NULL or no row = the server's
 * default from the config, 0 = unlimited, N = N bytes or messages).
 */
#include <stdio.h>
#include <string.h>

#include "store-private.h"

static const char usage_ddl[] =
    "CREATE TABLE IF NOT EXISTS quota_usage ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " storage INTEGER NOT NULL,"
    " messages INTEGER NOT NULL,"
    " warned INTEGER NOT NULL DEFAULT 0);" /* store_quota_warn_claim */
    "INSERT OR IGNORE INTO quota_usage (id, storage, messages)"
    " SELECT 1, coalesce(sum(size), 0), count(*) FROM messages;"
    "CREATE TRIGGER IF NOT EXISTS quota_usage_add AFTER INSERT ON messages BEGIN"
    " UPDATE quota_usage SET storage = storage + NEW.size, messages = messages + 1"
    " WHERE id = 1; END;"
    "CREATE TRIGGER IF NOT EXISTS quota_usage_del AFTER DELETE ON messages BEGIN"
    " UPDATE quota_usage SET storage = storage - OLD.size, messages = messages - 1"
    " WHERE id = 1; END;";

static const char limits_ddl[] =
    "CREATE TABLE IF NOT EXISTS account_quotas ("
    " account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,"
    " storage INTEGER," /* NULL: the domain's, else the server's default */
    " messages INTEGER);"
    "CREATE TABLE IF NOT EXISTS domain_quotas ("
    " domain_id INTEGER PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,"
    " storage INTEGER," /* NULL: the server's default */
    " messages INTEGER);";

int store_quota_schema(struct store_db *db, char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(
		db->h,
		"SELECT count(*) FROM sqlite_master WHERE"
		" (type = 'table' AND name = 'quota_usage') OR"
		" (type = 'trigger' AND name IN ('quota_usage_add', 'quota_usage_del'))",
		-1, &st, NULL) != SQLITE_OK) {
		store_db_error(db, "looking for quota_usage", err, errsz);
		return -1;
	}
	int rc = sqlite3_step(st);
	int have = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (have < 0) {
		store_db_error(db, "looking for quota_usage", err, errsz);
		return -1;
	}
	if (have == 3)
		return 0;
	/* Table, first count and triggers in one write transaction: another
	 * process doing the same waits, then finds them and changes nothing. */
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	char *msg = NULL;
	if (sqlite3_exec(db->h, usage_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating quota_usage: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

int store_quota_server_schema(struct store *s, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db.h, limits_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating account_quotas: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

void store_set_quota_default(struct store *s, uint64_t storage, uint64_t messages)
{
	s->quota_storage = storage;
	s->quota_messages = messages;
}

/* Column i (a limit, or NULL) over *limit with its source. */
static void take_limit(sqlite3_stmt *st, int i, enum store_quota_source src, uint64_t *limit,
		       enum store_quota_source *from)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return;
	*limit = (uint64_t)sqlite3_column_int64(st, i);
	*from = src;
}

/* The limits of account id (0 unlimited): its own, else its domain's,
 * else the server's, per resource. */
static int read_limits(struct store *s, int64_t id, struct store_quota *q, char *err, size_t errsz)
{
	q->storage_limit = s->quota_storage;
	q->messages_limit = s->quota_messages;
	q->storage_from = q->messages_from = STORE_QUOTA_SERVER;
	sqlite3_stmt *st =
	    store_db_stmt(&s->db,
			  "SELECT d.storage, d.messages, q.storage, q.messages FROM accounts a"
			  " LEFT JOIN domain_quotas d ON d.domain_id = a.domain_id"
			  " LEFT JOIN account_quotas q ON q.account_id = a.id WHERE a.id = ?1",
			  err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		take_limit(st, 0, STORE_QUOTA_DOMAIN, &q->storage_limit, &q->storage_from);
		take_limit(st, 1, STORE_QUOTA_DOMAIN, &q->messages_limit, &q->messages_from);
		take_limit(st, 2, STORE_QUOTA_ACCOUNT, &q->storage_limit, &q->storage_from);
		take_limit(st, 3, STORE_QUOTA_ACCOUNT, &q->messages_limit, &q->messages_from);
	} else if (rc != SQLITE_DONE) {
		store_db_error(&s->db, "reading quota limits", err, errsz);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* The usage from the account's open database (inside a transaction or
 * not), and the warning flag (warned may be NULL). */
static int read_usage_warned(struct store_db *db, uint64_t *storage, uint64_t *messages,
			     bool *warned, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT storage, messages, warned FROM quota_usage WHERE id = 1", err, errsz);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		sqlite3_int64 a = sqlite3_column_int64(st, 0), b = sqlite3_column_int64(st, 1);
		*storage = a > 0 ? (uint64_t)a : 0;
		*messages = b > 0 ? (uint64_t)b : 0;
		if (warned)
			*warned = sqlite3_column_int(st, 2) != 0;
	} else {
		store_db_error(db, "reading quota usage", err, errsz);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int read_usage(struct store_db *db, uint64_t *storage, uint64_t *messages, char *err,
		      size_t errsz)
{
	return read_usage_warned(db, storage, messages, NULL, err, errsz);
}

int store_quota_get(struct store_account *a, struct store_quota *q, char *err, size_t errsz)
{
	memset(q, 0, sizeof *q);
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || read_usage(db, &q->storage, &q->messages, err, errsz) < 0)
		return -1;
	return read_limits(a->s, a->id, q, err, errsz);
}

/* Over a limit (0 = none)? */
static bool over(uint64_t used, uint64_t limit)
{
	return limit != 0 && used > limit;
}

enum store_quota_fit store_quota_fits(struct store *s, int64_t account_id, uint64_t bytes,
				      uint64_t messages)
{
	struct store_account *a;
	struct store_quota q;
	char err[256];
	if (store_account_open_id(s, account_id, &a) <= 0 ||
	    read_limits(s, account_id, &q, err, sizeof err) < 0)
		return STORE_QUOTA_UNKNOWN;
	/* Unlimited (the common case): no need to read the usage.  Each
	 * read of a database outside a transaction costs its locks. */
	if (q.storage_limit == 0 && q.messages_limit == 0)
		return STORE_QUOTA_FITS;
	struct store_db *db = store_account_db(a, err, sizeof err);
	if (db == NULL || read_usage(db, &q.storage, &q.messages, err, sizeof err) < 0)
		return STORE_QUOTA_UNKNOWN;
	if (over(bytes, q.storage_limit) || over(messages, q.messages_limit))
		return STORE_QUOTA_NEVER;
	/* Full already (usage at the limit) counts even for a message of
	 * unknown size (bytes 0). */
	bool full = (q.storage_limit != 0 && q.storage >= q.storage_limit) ||
		    (q.messages_limit != 0 && q.messages >= q.messages_limit);
	if (full || over(q.storage + bytes, q.storage_limit) ||
	    over(q.messages + messages, q.messages_limit))
		return STORE_QUOTA_FULL;
	return STORE_QUOTA_FITS;
}

int store_quota_begin(struct store_account *a, struct store_db *db, struct store_quota_mark *m,
		      char *err, size_t errsz)
{
	(void)a;
	return read_usage(db, &m->storage, &m->messages, err, errsz);
}

int store_quota_check(struct store_account *a, struct store_db *db,
		      const struct store_quota_mark *m, char *err, size_t errsz)
{
	struct store_quota q;
	if (read_usage(db, &q.storage, &q.messages, err, errsz) < 0 ||
	    read_limits(a->s, a->id, &q, err, errsz) < 0)
		return -1;
	/* Only growth is refused: a MOVE (no growth) in an account that is
	 * over its limit (lowered by the admin) still works. */
	if ((q.storage > m->storage && over(q.storage, q.storage_limit)) ||
	    (q.messages > m->messages && over(q.messages, q.messages_limit))) {
		store_err(err, errsz, "over quota");
		return 1;
	}
	return 0;
}

/* Binds a limit: NULL for the default, else the value. */
static void bind_limit(sqlite3_stmt *st, int i, uint64_t v)
{
	if (v == STORE_QUOTA_DEFAULT)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

/* Sets (set_*) or keeps each limit of one row of account_quotas
 * (domain false) or domain_quotas, and drops a row left all NULL. */
static int set_row(struct store *s, bool domain, int64_t id, const uint64_t *storage,
		   const uint64_t *messages, char *err, size_t errsz)
{
	for (int i = 0; i < 2; i++) {
		const uint64_t *v = i == 0 ? storage : messages;
		if (v != NULL && *v != STORE_QUOTA_DEFAULT && *v > (uint64_t)INT64_MAX) {
			store_err(err, errsz, "limit too large");
			return -1;
		}
	}
	static const char *const upsert[2] = {
	    "INSERT INTO account_quotas (account_id, storage, messages) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (account_id) DO UPDATE SET"
	    " storage = CASE WHEN ?4 THEN ?2 ELSE storage END,"
	    " messages = CASE WHEN ?5 THEN ?3 ELSE messages END",
	    "INSERT INTO domain_quotas (domain_id, storage, messages) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (domain_id) DO UPDATE SET"
	    " storage = CASE WHEN ?4 THEN ?2 ELSE storage END,"
	    " messages = CASE WHEN ?5 THEN ?3 ELSE messages END",
	};
	static const char *const prune[2] = {
	    "DELETE FROM account_quotas WHERE account_id = ?1 AND storage IS NULL"
	    " AND messages IS NULL",
	    "DELETE FROM domain_quotas WHERE domain_id = ?1 AND storage IS NULL"
	    " AND messages IS NULL",
	};
	if (store_db_begin(&s->db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(&s->db, upsert[domain], err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	bind_limit(st, 2, storage ? *storage : STORE_QUOTA_DEFAULT);
	bind_limit(st, 3, messages ? *messages : STORE_QUOTA_DEFAULT);
	sqlite3_bind_int(st, 4, storage != NULL);
	sqlite3_bind_int(st, 5, messages != NULL);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		goto fail;
	st = store_db_stmt(&s->db, prune[domain], err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		goto fail;
	return store_db_commit(&s->db, err, errsz);
fail:
	store_db_rollback(&s->db);
	return -1;
}

int store_quota_set(struct store *s, int64_t account_id, const uint64_t *storage,
		    const uint64_t *messages, char *err, size_t errsz)
{
	return set_row(s, false, account_id, storage, messages, err, errsz);
}

/* The id of domain (checked, lower-cased): 1, 0 not ours (err), -1. */
static int domain_id(struct store *s, const char *domain, int64_t *id, char *err, size_t errsz)
{
	char dom[256];
	if (store_name_domain(domain, dom, err, errsz) < 0)
		return 0;
	sqlite3_stmt *st =
	    store_db_stmt(&s->db, "SELECT id FROM domains WHERE name = ?1", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, dom);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		store_err(err, errsz, "domain %s does not exist", dom);
	else
		store_db_error(&s->db, "looking up domain", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_quota_domain_set(struct store *s, const char *domain, const uint64_t *storage,
			   const uint64_t *messages, char *err, size_t errsz)
{
	int64_t id;
	if (domain_id(s, domain, &id, err, errsz) <= 0)
		return -1;
	return set_row(s, true, id, storage, messages, err, errsz);
}

int store_quota_domain_get(struct store *s, const char *domain, uint64_t *storage,
			   uint64_t *messages, char *err, size_t errsz)
{
	int64_t id;
	if (domain_id(s, domain, &id, err, errsz) <= 0)
		return -1;
	*storage = *messages = STORE_QUOTA_DEFAULT;
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "SELECT storage, messages FROM domain_quotas WHERE domain_id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			*storage = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			*messages = (uint64_t)sqlite3_column_int64(st, 1);
	} else if (rc != SQLITE_DONE) {
		store_db_error(&s->db, "reading quota limits", err, errsz);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* At or above percent of a limit? */
static bool above(uint64_t used, uint64_t limit, unsigned percent)
{
	return limit != 0 && (long double)used * 100.0L >= (long double)limit * percent;
}

int store_quota_warn_claim(struct store *s, int64_t account_id, unsigned percent,
			   struct store_quota *q)
{
	struct store_account *a;
	char err[256];
	memset(q, 0, sizeof *q);
	if (percent == 0)
		return 0;
	bool warned = false;
	struct store_db *db;
	if (store_account_open_id(s, account_id, &a) <= 0 ||
	    read_limits(s, account_id, q, err, sizeof err) < 0 ||
	    (db = store_account_db(a, err, sizeof err)) == NULL ||
	    read_usage_warned(db, &q->storage, &q->messages, &warned, err, sizeof err) < 0)
		return -1;
	bool high = above(q->storage, q->storage_limit, percent) ||
		    above(q->messages, q->messages_limit, percent);
	/* The common case (no change of state) writes nothing. */
	if (warned == high)
		return 0;
	/* One statement: of two deliveries that cross the mark at once, only
	 * the one whose update changes the row gets 1. */
	sqlite3_stmt *st = store_db_stmt(
	    db, "UPDATE quota_usage SET warned = ?1 WHERE id = 1 AND warned <> ?1 RETURNING 1", err,
	    sizeof err);
	if (st == NULL)
		return -1;
	sqlite3_bind_int(st, 1, high ? 1 : 0);
	int rc = sqlite3_step(st);
	bool changed = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	return changed && high ? 1 : 0;
}
