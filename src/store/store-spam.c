/*
 * store-spam.c - the per-user token database of the spam classifier
 * (docs/spam.md "Content stage", "Training"), in the account's own
 * database.  The classifier itself is src/spam (above the store): the
 * store only keeps counts, and is handed tokens already made.
 *
 *   spam_tokens   token -> spam and ham messages trained with it, and when
 *                 a training last touched it (seen);
 *   spam_totals   spam and ham messages trained (one row);
 *   spam_trained  which message (its key: the file id of a stored message,
 *                 or a hash of the bytes given to `tern spam learn`) was
 *                 trained as what, so that training it the other way, or
 *                 forgetting it, first takes its earlier counts back.
 *
 * Bounded: every STORE_SPAM_PRUNE_EVERY trainings the least recently seen
 * tokens beyond the caller's max_tokens are dropped, and spam_trained is
 * cut to STORE_SPAM_TRAINED_MAX rows (the oldest go first: such a message
 * can no longer be un-trained, only trained again); a token whose counts
 * drop to zero goes at once.  The tables are made with
 * CREATE ... IF NOT EXISTS when the account database opens (like
 * imap_cache), so older databases get them without a schema step.  SQL
 * kept portable (no MAX(a, b), no INSERT OR ...).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"

#define STORE_SPAM_TRAINED_MAX 200000
#define STORE_SPAM_PRUNE_EVERY 64

static const char spam_ddl[] =
	"CREATE TABLE IF NOT EXISTS spam_tokens ("
	" token TEXT PRIMARY KEY,"
	" spam INTEGER NOT NULL DEFAULT 0,"
	" ham INTEGER NOT NULL DEFAULT 0,"
	" seen INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS spam_tokens_seen ON spam_tokens(seen);"
	"CREATE TABLE IF NOT EXISTS spam_totals ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" spam INTEGER NOT NULL,"
	" ham INTEGER NOT NULL);"
	"INSERT INTO spam_totals (id, spam, ham) VALUES (1, 0, 0) ON CONFLICT DO NOTHING;"
	"CREATE TABLE IF NOT EXISTS spam_trained ("
	" msg TEXT PRIMARY KEY,"
	" class INTEGER NOT NULL,"
	" time INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS spam_trained_time ON spam_trained(time);";

int store_spam_schema(struct store_db *db, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, spam_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating spam_tokens: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int store_spam_totals(struct store_account *a, struct store_spam_totals *out, char *err,
		      size_t errsz)
{
	memset(out, 0, sizeof *out);
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT spam, ham, (SELECT count(*) FROM spam_tokens) FROM spam_totals", err, errsz);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->spam = (uint64_t)sqlite3_column_int64(st, 0);
		out->ham = (uint64_t)sqlite3_column_int64(st, 1);
		out->tokens = (uint64_t)sqlite3_column_int64(st, 2);
	} else if (rc != SQLITE_DONE) {
		store_db_error(db, "reading spam_totals", err, errsz);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_spam_counts(struct store_account *a, const char *const *tokens, size_t n,
		      uint32_t *spam, uint32_t *ham, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin_read(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT spam, ham FROM spam_tokens WHERE token = ?1", err, errsz);
	int ret = st == NULL ? -1 : 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		spam[i] = ham[i] = 0;
		store_db_bind_text(st, 1, tokens[i]);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			int64_t s = sqlite3_column_int64(st, 0), h = sqlite3_column_int64(st, 1);
			spam[i] = s < 0 ? 0 : s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
			ham[i] = h < 0 ? 0 : h > UINT32_MAX ? UINT32_MAX : (uint32_t)h;
		} else if (rc != SQLITE_DONE) {
			store_db_error(db, "reading spam_tokens", err, errsz);
			ret = -1;
		}
		sqlite3_reset(st);
	}
	if (ret < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

int store_spam_trained(struct store_account *a, const char *key, enum store_spam_class *cls,
		       char *err, size_t errsz)
{
	*cls = STORE_SPAM_NONE;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT class FROM spam_trained WHERE msg = ?1", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, key);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int64_t c = sqlite3_column_int64(st, 0);
		*cls = c == STORE_SPAM_SPAM ? STORE_SPAM_SPAM : STORE_SPAM_HAM;
	} else if (rc != SQLITE_DONE) {
		store_db_error(db, "reading spam_trained", err, errsz);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* Adds (delta 1) or takes back (-1) one message of class cls with these
 * tokens. */
static int train_counts(struct store_db *db, enum store_spam_class cls, int delta,
		 const char *const *tokens, size_t n, int64_t now, char *err, size_t errsz)
{
	static const char *const add_sql[2] = {
	    "INSERT INTO spam_tokens (token, spam, ham, seen) VALUES (?1, 0, 1, ?2)"
	    " ON CONFLICT (token) DO UPDATE SET ham = ham + 1, seen = excluded.seen",
	    "INSERT INTO spam_tokens (token, spam, ham, seen) VALUES (?1, 1, 0, ?2)"
	    " ON CONFLICT (token) DO UPDATE SET spam = spam + 1, seen = excluded.seen",
	};
	static const char *const sub_sql[2] = {
	    "UPDATE spam_tokens SET ham = CASE WHEN ham > 0 THEN ham - 1 ELSE 0 END"
	    " WHERE token = ?1",
	    "UPDATE spam_tokens SET spam = CASE WHEN spam > 0 THEN spam - 1 ELSE 0 END"
	    " WHERE token = ?1",
	};
	static const char *const total_sql[2][2] = {
	    {"UPDATE spam_totals SET ham = CASE WHEN ham > 0 THEN ham - 1 ELSE 0 END",
	     "UPDATE spam_totals SET spam = CASE WHEN spam > 0 THEN spam - 1 ELSE 0 END"},
	    {"UPDATE spam_totals SET ham = ham + 1", "UPDATE spam_totals SET spam = spam + 1"},
	};
	int k = cls == STORE_SPAM_SPAM;
	sqlite3_stmt *st = store_db_stmt(db, delta > 0 ? add_sql[k] : sub_sql[k], err, errsz);
	if (st == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		store_db_bind_text(st, 1, tokens[i]);
		if (delta > 0)
			sqlite3_bind_int64(st, 2, now);
		if (store_db_run(db, st, err, errsz) < 0)
			return -1;
	}
	/* tokens no training holds any more go (only those taken back can
	 * have dropped to nothing) */
	if (delta < 0) {
		st = store_db_stmt(db,
				   "DELETE FROM spam_tokens WHERE token = ?1 AND spam = 0 AND ham = 0",
				   err, errsz);
		for (size_t i = 0; st != NULL && i < n; i++) {
			store_db_bind_text(st, 1, tokens[i]);
			if (store_db_run(db, st, err, errsz) < 0)
				return -1;
		}
		if (st == NULL)
			return -1;
	}
	st = store_db_stmt(db, total_sql[delta > 0][k], err, errsz);
	return st == NULL ? -1 : store_db_run(db, st, err, errsz);
}

/* Drops the oldest tokens and training records beyond the bounds.  They
 * are counted (a scan of each table) only every STORE_SPAM_PRUNE_EVERY
 * trainings, so a table may pass its bound by the tokens of that many
 * messages in between. */
static int prune(struct store_db *db, uint64_t max_tokens, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db, "SELECT spam + ham FROM spam_totals", err, errsz);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	int64_t trained = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "reading spam_totals", err, errsz);
		return -1;
	}
	if (trained % STORE_SPAM_PRUNE_EVERY != 0)
		return 0;
	if (max_tokens > 0) {
		st = store_db_stmt(db,
				   "DELETE FROM spam_tokens WHERE token IN (SELECT token FROM"
				   " spam_tokens ORDER BY seen, token LIMIT (SELECT CASE WHEN"
				   " count(*) > ?1 THEN count(*) - ?1 ELSE 0 END FROM spam_tokens))",
				   err, errsz);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, (int64_t)max_tokens);
		if (store_db_run(db, st, err, errsz) < 0)
			return -1;
	}
	st = store_db_stmt(db,
			   "DELETE FROM spam_trained WHERE msg IN (SELECT msg FROM spam_trained"
			   " ORDER BY time, msg LIMIT (SELECT CASE WHEN count(*) > ?1 THEN"
			   " count(*) - ?1 ELSE 0 END FROM spam_trained))",
			   err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, STORE_SPAM_TRAINED_MAX);
	return store_db_run(db, st, err, errsz);
}

int store_spam_train(struct store_account *a, const char *key, enum store_spam_class cls,
		     const char *const *tokens, size_t n, int64_t now, uint64_t max_tokens,
		     char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	enum store_spam_class old;
	int ret = store_spam_trained(a, key, &old, err, errsz);
	if (ret == 0 && old == cls) {
		store_db_rollback(db);
		return 0;
	}
	if (ret == 0 && old != STORE_SPAM_NONE)
		ret = train_counts(db, old, -1, tokens, n, now, err, errsz);
	if (ret == 0 && cls != STORE_SPAM_NONE)
		ret = train_counts(db, cls, 1, tokens, n, now, err, errsz);
	sqlite3_stmt *st = NULL;
	if (ret == 0)
		st = store_db_stmt(db,
				   cls == STORE_SPAM_NONE
				       ? "DELETE FROM spam_trained WHERE msg = ?1"
				       : "INSERT INTO spam_trained (msg, class, time) VALUES (?1, ?2, ?3)"
					 " ON CONFLICT (msg) DO UPDATE SET class = excluded.class,"
					 " time = excluded.time",
				   err, errsz);
	if (st != NULL) {
		store_db_bind_text(st, 1, key);
		if (cls != STORE_SPAM_NONE) {
			sqlite3_bind_int64(st, 2, cls);
			sqlite3_bind_int64(st, 3, now);
		}
		ret = store_db_run(db, st, err, errsz);
	} else {
		ret = -1;
	}
	if (ret == 0)
		ret = prune(db, max_tokens, err, errsz);
	if (ret < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz) < 0 ? -1 : 1;
}

struct junk_find {
	char *out;
	bool found, named; /* a \Junk mailbox; one named "Junk" */
};

static int junk_cb(void *ctx, const struct store_mailbox *mb)
{
	struct junk_find *j = ctx;
	if ((mb->special_use & STORE_SU_JUNK) && !j->found) {
		snprintf(j->out, 512, "%s", mb->name);
		j->found = true;
	}
	if (strcmp(mb->name, "Junk") == 0)
		j->named = true;
	return 0;
}

int store_spam_junk_mailbox(struct store_account *a, char out[512], char *err, size_t errsz)
{
	struct junk_find j = {out, false, false};
	snprintf(out, 512, "Junk");
	if (store_mailbox_list(a, junk_cb, &j, err, errsz) < 0)
		return -1;
	if (j.found || j.named)
		return 0;
	return store_mailbox_create(a, "Junk", STORE_SU_JUNK, err, errsz) < 0 ? -1 : 0;
}
