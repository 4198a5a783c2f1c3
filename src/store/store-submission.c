/*
 * store-submission.c - the JMAP EmailSubmission records of an account
 * (RFC 8621 7, docs/jmap.md "Submission"): one row per submission in the
 * account's database (table jmap_submission, made at first use: no
 * schema version change), with what it sent (envelope, the Email, the
 * queue entry of its remote recipients) and a modseq for
 * EmailSubmission/changes.  A destroyed record stays as a tombstone
 * (destroyed = 1) so that /changes can report it.  What became of the
 * remote recipients is read from the queue (store_queue_rcpts), not kept
 * here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "xalloc.h"

static const char submission_ddl[] = "CREATE TABLE IF NOT EXISTS jmap_submission ("
				     " id INTEGER PRIMARY KEY AUTOINCREMENT,"
				     " identity_id INTEGER NOT NULL,"
				     " email_id TEXT NOT NULL,"
				     " thread_id INTEGER NOT NULL,"
				     " send_at INTEGER NOT NULL,"
				     " mail_from TEXT NOT NULL,"
				     " rcpts TEXT NOT NULL,"
				     " queue_id INTEGER NOT NULL,"
				     " local_reply TEXT NOT NULL,"
				     " created_modseq INTEGER NOT NULL,"
				     " modseq INTEGER NOT NULL,"
				     " destroyed INTEGER NOT NULL DEFAULT 0,"
				     " status TEXT NOT NULL DEFAULT '');";

static struct store_db *submission_db(struct store_account *a, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL ||
	    store_db_exec_ddl(db, submission_ddl, "creating jmap_submission", err, errsz) < 0)
		return NULL;
	return db;
}

/* The records' state: the largest modseq (0 none).  0 or -1. */
static int state_of(struct store_db *db, uint64_t *state, char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT COALESCE(MAX(modseq), 0) FROM jmap_submission", err, errsz);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*state = (uint64_t)sqlite3_column_int64(st, 0);
	else
		store_db_error(db, "reading jmap_submission", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_submission_add(struct store_account *a, const struct store_submission *in, int64_t *id,
			 char *err, size_t errsz)
{
	struct store_db *db = submission_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	uint64_t state = 0;
	if (state_of(db, &state, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO jmap_submission (identity_id, email_id, thread_id, send_at, mail_from,"
	    " rcpts, queue_id, local_reply, created_modseq, modseq)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
	    err, errsz);
	if (st == NULL) {
		store_db_rollback(db);
		return -1;
	}
	sqlite3_bind_int64(st, 1, in->identity_id);
	store_db_bind_text(st, 2, in->email_id);
	sqlite3_bind_int64(st, 3, in->thread_id);
	sqlite3_bind_int64(st, 4, in->send_at);
	store_db_bind_text(st, 5, in->mail_from ? in->mail_from : "");
	store_db_bind_text(st, 6, in->rcpts ? in->rcpts : "");
	sqlite3_bind_int64(st, 7, in->queue_id);
	store_db_bind_text(st, 8, in->local_reply ? in->local_reply : "");
	sqlite3_bind_int64(st, 9, (sqlite3_int64)(state + 1));
	if (store_db_run(db, st, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	*id = (int64_t)sqlite3_last_insert_rowid(db->h);
	return store_db_commit(db, err, errsz);
}

static char *text_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return xstrdup(t != NULL ? (const char *)t : "");
}

int store_submission_list(struct store_account *a, struct store_submission **out, size_t *n,
			  uint64_t *state, char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = submission_db(a, err, errsz);
	if (db == NULL || store_db_begin_read(db, err, errsz) < 0)
		return -1;
	int r = state_of(db, state, err, errsz);
	sqlite3_stmt *st =
	    r < 0
		? NULL
		: store_db_stmt(db,
				"SELECT id, identity_id, email_id, thread_id, send_at, mail_from,"
				" rcpts, queue_id, local_reply, modseq, status FROM jmap_submission"
				" WHERE destroyed = 0 ORDER BY id",
				err, errsz);
	if (st == NULL)
		r = -1;
	size_t cap = 0;
	int rc = SQLITE_DONE;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xreallocarray(*out, cap, sizeof **out);
		}
		struct store_submission *v = &(*out)[(*n)++];
		memset(v, 0, sizeof *v);
		v->id = sqlite3_column_int64(st, 0);
		v->identity_id = sqlite3_column_int64(st, 1);
		const unsigned char *e = sqlite3_column_text(st, 2);
		snprintf(v->email_id, sizeof v->email_id, "%s", e ? (const char *)e : "");
		v->thread_id = sqlite3_column_int64(st, 3);
		v->send_at = sqlite3_column_int64(st, 4);
		v->mail_from = text_dup(st, 5);
		v->rcpts = text_dup(st, 6);
		v->queue_id = sqlite3_column_int64(st, 7);
		v->local_reply = text_dup(st, 8);
		v->modseq = (uint64_t)sqlite3_column_int64(st, 9);
		v->status = text_dup(st, 10);
	}
	if (r == 0 && rc != SQLITE_DONE) {
		store_db_error(db, "reading jmap_submission", err, errsz);
		r = -1;
	}
	if (st != NULL)
		sqlite3_reset(st);
	store_db_rollback(db);
	if (r < 0) {
		store_submission_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

int store_submission_changes(struct store_account *a, uint64_t since,
			     struct store_submission_change **out, size_t *n, uint64_t *state,
			     char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = submission_db(a, err, errsz);
	if (db == NULL || store_db_begin_read(db, err, errsz) < 0)
		return -1;
	int r = state_of(db, state, err, errsz);
	sqlite3_stmt *st =
	    r < 0 ? NULL
		  : store_db_stmt(db,
				  "SELECT id, created_modseq, destroyed FROM jmap_submission"
				  " WHERE modseq > ?1 ORDER BY id",
				  err, errsz);
	if (st == NULL)
		r = -1;
	else
		sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	size_t cap = 0;
	int rc = SQLITE_DONE;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		bool created = (uint64_t)sqlite3_column_int64(st, 1) > since;
		bool destroyed = sqlite3_column_int(st, 2) != 0;
		if (created && destroyed)
			continue; /* made and gone since then: nothing to tell */
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xreallocarray(*out, cap, sizeof **out);
		}
		(*out)[*n].id = sqlite3_column_int64(st, 0);
		(*out)[(*n)++].kind = destroyed ? STORE_SUBMISSION_DESTROYED
				      : created ? STORE_SUBMISSION_CREATED
						: STORE_SUBMISSION_UPDATED;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		store_db_error(db, "reading jmap_submission", err, errsz);
		r = -1;
	}
	if (st != NULL)
		sqlite3_reset(st);
	store_db_rollback(db);
	if (r < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return r;
}

/* Runs sql (?1 the id, ?2 text when text, the next parameter the new
 * modseq) in its own transaction, the account's submission state bumped.
 * The rows changed, or -1 with err. */
static int update_row(struct store_account *a, const char *sql, int64_t id, const char *text,
		      char *err, size_t errsz)
{
	struct store_db *db = submission_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	uint64_t state = 0;
	sqlite3_stmt *st = NULL;
	if (state_of(db, &state, err, errsz) == 0)
		st = store_db_stmt(db, sql, err, errsz);
	if (st == NULL) {
		store_db_rollback(db);
		return -1;
	}
	int n = 1;
	sqlite3_bind_int64(st, n++, id);
	if (text != NULL)
		store_db_bind_text(st, n++, text);
	sqlite3_bind_int64(st, n, (sqlite3_int64)(state + 1));
	if (store_db_run(db, st, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	int changed = sqlite3_changes(db->h);
	if (store_db_commit(db, err, errsz) < 0)
		return -1;
	return changed;
}

int store_submission_destroy(struct store_account *a, int64_t id, char *err, size_t errsz)
{
	int r = update_row(a,
			   "UPDATE jmap_submission SET destroyed = 1, modseq = ?2"
			   " WHERE id = ?1 AND destroyed = 0",
			   id, NULL, err, errsz);
	return r < 0 ? -1 : r > 0 ? 1 : 0;
}

int store_submission_set_status(struct store_account *a, int64_t id, const char *status, char *err,
				size_t errsz)
{
	return update_row(a,
			  "UPDATE jmap_submission SET status = ?2, modseq = ?3"
			  " WHERE id = ?1 AND destroyed = 0 AND status != ?2",
			  id, status, err, errsz) < 0
		   ? -1
		   : 0;
}

void store_submission_free(struct store_submission *v, size_t n)
{
	for (size_t i = 0; i < n && v != NULL; i++) {
		free(v[i].mail_from);
		free(v[i].rcpts);
		free(v[i].local_reply);
		free(v[i].status);
	}
	free(v);
}
