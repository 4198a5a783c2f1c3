/*
 * store-imap.c - what the IMAP server needs from the store beyond the
 * generic API: compact UID lists, "changed / expunged since modseq" for
 * keeping sessions in step, batched flag changes, copies and expunges (one
 * transaction for a whole command instead of one per message), the
 * per-mailbox mark that hands out \Recent (RFC 3501 2.3.2) to one session,
 * and the cache of parsed ENVELOPE / BODY / BODYSTRUCTURE strings and of
 * the decoded header text that header SEARCH keys look at.
 *
 * The cache is keyed by file id: message files never change, and a COPY
 * shares the file, so one entry serves every copy.  Cache rows are not
 * precious (they can always be rebuilt from the file), so they are written
 * with synchronous=NORMAL and never fsync'ed on their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "store-private.h"
#include "xalloc.h"

#define FLAGS_KNOWN                                                                                \
	(STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FLAGGED | STORE_F_DELETED | STORE_F_DRAFT)

static const char imap_ddl[] = "CREATE TABLE IF NOT EXISTS imap_cache ("
			       " file_id TEXT PRIMARY KEY,"
			       " envelope TEXT NOT NULL,"
			       " body TEXT NOT NULL,"
			       " bodystructure TEXT NOT NULL,"
			       " headers BLOB) WITHOUT ROWID;"
			       /* per mailbox, the highest modseq of the expunged
				* rows dropped by store_imap_expunged_trim: the
				* expunged table is complete above it */
			       "CREATE TABLE IF NOT EXISTS expunged_floor ("
			       " mailbox_id INTEGER PRIMARY KEY,"
			       " modseq INTEGER NOT NULL);";

int store_imap_schema(struct store_db *db, char *err, size_t errsz);

/* Called by store_account_db each time an account database is opened, so
 * a database made before this table existed gets it. */
/* 1 if imap_cache has the column "headers" (added after the table), 0 not,
 * -1 error. */
static int has_headers_column(struct store_db *db, char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(
		db->h, "SELECT 1 FROM pragma_table_info('imap_cache') WHERE name = 'headers'", -1,
		&st, NULL) != SQLITE_OK) {
		store_db_error(db, "reading the imap_cache columns", err, errsz);
		return -1;
	}
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "reading the imap_cache columns", err, errsz);
		return -1;
	}
	return rc == SQLITE_ROW;
}

/* Called by store_account_db each time an account database is opened, so
 * a database made before this table (or its headers column) existed gets
 * it.  Several processes may open the database at once: the column check
 * is repeated under the write lock. */
int store_imap_schema(struct store_db *db, char *err, size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, imap_ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: creating imap_cache: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	int r = has_headers_column(db, err, errsz);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	r = has_headers_column(db, err, errsz);
	if (r == 0 && sqlite3_exec(db->h, "ALTER TABLE imap_cache ADD COLUMN headers BLOB", NULL,
				   NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: adding imap_cache.headers: %s",
			  msg ? msg : "unknown");
		sqlite3_free(msg);
		r = -1;
	}
	if (r < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

/* ------------------------------------------------------------ reading */

static void push_uid(uint32_t **uids, size_t *n, size_t *cap, uint32_t uid)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*uids = xreallocarray(*uids, *cap, sizeof **uids);
	}
	(*uids)[(*n)++] = uid;
}

/* Runs a one-column uid query bound with (?1 mailbox, ?2 number). */
static int uid_query(struct store_account *a, const char *sql, int64_t mailbox_id, int64_t arg,
		     uint32_t **uids, size_t *n, char *err, size_t errsz)
{
	*uids = NULL;
	*n = 0;
	size_t cap = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	sqlite3_stmt *st = db ? store_db_stmt(db, sql, err, errsz) : NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, arg);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		push_uid(uids, n, &cap, (uint32_t)sqlite3_column_int64(st, 0));
	if (rc != SQLITE_DONE) {
		store_db_error(db, "listing uids", err, errsz);
		sqlite3_reset(st);
		free(*uids);
		*uids = NULL;
		*n = 0;
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int store_imap_uids(struct store_account *a, int64_t mailbox_id, uint32_t uid_lo, uint32_t **uids,
		    size_t *n, char *err, size_t errsz)
{
	return uid_query(a,
			 "SELECT uid FROM messages WHERE mailbox_id = ?1 AND uid >= ?2"
			 " ORDER BY uid",
			 mailbox_id, uid_lo, uids, n, err, errsz);
}

/* The mailbox's expunged floor (0: nothing was ever dropped).  0 or -1. */
static int expunged_floor(struct store_db *db, int64_t mailbox_id, uint64_t *floor, char *err,
			  size_t errsz)
{
	*floor = 0;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT modseq FROM expunged_floor WHERE mailbox_id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*floor = (uint64_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		store_db_error(db, "reading the expunged floor", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int store_imap_expunged_since(struct store_account *a, int64_t mailbox_id, uint64_t modseq,
			      uint32_t **uids, size_t *n, bool *complete, char *err,
			      size_t errsz)
{
	*uids = NULL;
	*n = 0;
	uint64_t floor;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || expunged_floor(db, mailbox_id, &floor, err, errsz) < 0)
		return -1;
	*complete = floor <= modseq;
	return uid_query(a,
			 "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2"
			 " ORDER BY uid",
			 mailbox_id, (int64_t)modseq, uids, n, err, errsz);
}

void store_set_expunged_max(struct store *s, size_t max)
{
	s->expunged_max = max ? max : STORE_EXPUNGED_MAX;
}

int store_imap_expunged_trim(struct store_account *a, struct store_db *db, int64_t mailbox_id,
			     char *err, size_t errsz)
{
	size_t max = a->s->expunged_max ? a->s->expunged_max : STORE_EXPUNGED_MAX;
	/* One index walk of max entries tells whether there are more; when
	 * there are, the oldest go so that a quarter of the room is free
	 * again (the next expunges do not trim one row each). */
	size_t keep = max - max / 4;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT modseq FROM expunged WHERE mailbox_id = ?1"
					 " ORDER BY modseq DESC LIMIT 1 OFFSET ?2",
					 err, errsz);
	if (st == NULL)
		return -1;
	uint64_t cut = 0;
	for (int pass = 0; pass < 2; pass++) {
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)(pass == 0 ? max : keep));
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			cut = (uint64_t)sqlite3_column_int64(st, 0);
		else if (rc != SQLITE_DONE)
			store_db_error(db, "counting expunged uids", err, errsz);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			return rc == SQLITE_DONE ? 0 : -1;
	}
	/* every row at or below cut goes (rows that share the modseq too),
	 * and the floor remembers the highest modseq dropped */
	static const char *const steps[] = {
	    "DELETE FROM expunged WHERE mailbox_id = ?1 AND modseq <= ?2",
	    "INSERT INTO expunged_floor (mailbox_id, modseq) VALUES (?1, ?2)"
	    " ON CONFLICT (mailbox_id) DO UPDATE SET modseq = max(modseq, excluded.modseq)",
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		st = store_db_stmt(db, steps[i], err, errsz);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)cut);
		if (store_db_run(db, st, err, errsz) < 0)
			return -1;
	}
	return 0;
}

#define CHUNK 64

static void read_row(sqlite3_stmt *st, void *row)
{
	struct store_message *m = row;
	m->uid = (uint32_t)sqlite3_column_int64(st, 0);
	store_db_column_text(st, 1, m->file_id, sizeof m->file_id);
	m->size = (uint64_t)sqlite3_column_int64(st, 2);
	m->internaldate = sqlite3_column_int64(st, 3);
	m->flags = (unsigned)sqlite3_column_int(st, 4);
	store_db_column_text(st, 5, m->keywords, sizeof m->keywords);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 6);
	m->thread_id = sqlite3_column_int64(st, 7);
}

int store_imap_changed_since(struct store_account *a, int64_t mailbox_id, uint64_t modseq,
			     uint32_t uid_max, int (*cb)(void *ctx, const struct store_message *m),
			     void *ctx, char *err, size_t errsz)
{
	struct store_message *rows = xmalloc(CHUNK * sizeof *rows);
	int64_t next = 1;
	int ret = 0;
	for (;;) {
		struct store_db *db = store_account_db(a, err, errsz);
		sqlite3_stmt *st =
		    db ? store_db_stmt(db,
				       "SELECT uid, file_id, size, internaldate, flags, keywords,"
				       " modseq, thread_id FROM messages WHERE mailbox_id = ?1"
				       " AND uid >= ?2 AND uid <= ?3 AND modseq > ?4"
				       " ORDER BY uid LIMIT ?5",
				       err, errsz)
		       : NULL;
		if (st == NULL) {
			ret = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, next);
		sqlite3_bind_int64(st, 3, uid_max);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)modseq);
		sqlite3_bind_int(st, 5, CHUNK);
		size_t n;
		if (store_db_fetch(db, st, rows, sizeof *rows, CHUNK, read_row, &n,
				   "listing changed messages", err, errsz) < 0) {
			ret = -1;
			break;
		}
		for (size_t i = 0; i < n; i++)
			if (cb(ctx, &rows[i]) != 0)
				goto out;
		if (n < CHUNK)
			break;
		next = (int64_t)rows[n - 1].uid + 1;
	}
out:
	free(rows);
	return ret;
}

int store_imap_mailbox_by_id(struct store_account *a, int64_t mailbox_id, char name[512])
{
	struct store_db *db = store_account_db(a, NULL, 0);
	sqlite3_stmt *st =
	    db ? store_db_stmt(db, "SELECT name FROM mailboxes WHERE id = ?1", NULL, 0) : NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_db_column_text(st, 0, name, 512);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_imap_mailbox_state(struct store_account *a, int64_t mailbox_id, uint32_t *uidvalidity,
			     uint32_t *uidnext, uint64_t *highestmodseq)
{
	struct store_db *db = store_account_db(a, NULL, 0);
	sqlite3_stmt *st = db ? store_db_stmt(db,
					      "SELECT uidvalidity, uidnext, highestmodseq"
					      " FROM mailboxes WHERE id = ?1",
					      NULL, 0)
			      : NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		*uidnext = (uint32_t)sqlite3_column_int64(st, 1);
		*highestmodseq = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_imap_first_unseen(struct store_account *a, int64_t mailbox_id, uint32_t *uid)
{
	struct store_db *db = store_account_db(a, NULL, 0);
	sqlite3_stmt *st = db ? store_db_stmt(db,
					      "SELECT min(uid) FROM messages WHERE mailbox_id = ?1"
					      " AND flags & 1 = 0",
					      NULL, 0)
			      : NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	int ret = -1;
	if (rc == SQLITE_ROW) {
		ret = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : 1;
		*uid = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return ret;
}

/* The mailbox's recent mark, 1 read, 0 no such mailbox, -1 error. */
static int read_recent_mark(struct store_db *db, int64_t mailbox_id, uint32_t *mark, char *err,
			    size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT recent_uid FROM mailboxes WHERE id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*mark = (uint32_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		store_db_error(db, "reading the recent mark", err, errsz);
	else
		store_err(err, errsz, "mailbox %lld does not exist", (long long)mailbox_id);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_imap_recent(struct store_account *a, int64_t mailbox_id, uint32_t uid_hi, bool claim,
		      uint32_t *lo, char *err, size_t errsz)
{
	*lo = 0;
	uint32_t mark = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	/* Without the write lock first: usually nothing is above the mark. */
	int r = read_recent_mark(db, mailbox_id, &mark, err, errsz);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	if (mark >= uid_hi)
		return 0;
	if (!claim) {
		*lo = mark + 1;
		return 0;
	}
	/* Losing a claim to a power failure only makes those messages recent
	 * again for the next session: no fsync of its own (as for flags). */
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	int ret = -1;
	if (store_db_begin(db, err, errsz) < 0)
		goto out;
	/* Under the write lock: another session may have claimed them. */
	r = read_recent_mark(db, mailbox_id, &mark, err, errsz);
	if (r <= 0 || mark >= uid_hi) {
		store_db_rollback(db);
		ret = r < 0 ? -1 : 0;
		goto out;
	}
	sqlite3_stmt *st =
	    store_db_stmt(db, "UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1", err, errsz);
	if (st == NULL) {
		store_db_rollback(db);
		goto out;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid_hi);
	if (store_db_run(db, st, err, errsz) < 0) {
		store_db_rollback(db);
		goto out;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto out;
	*lo = mark + 1;
	ret = 0;
out:
	(void)store_db_set_sync(db, true, NULL, 0);
	return ret;
}

int store_imap_keyword_sets(struct store_account *a, int64_t mailbox_id,
			    void (*cb)(void *ctx, const char *keywords), void *ctx)
{
	struct store_db *db = store_account_db(a, NULL, 0);
	sqlite3_stmt *st = db ? store_db_stmt(db,
					      "SELECT DISTINCT keywords FROM messages"
					      " WHERE mailbox_id = ?1 AND keywords != ''",
					      NULL, 0)
			      : NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kw = (const char *)sqlite3_column_text(st, 0);
		if (kw != NULL)
			cb(ctx, kw);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* -------------------------------------------------------------- cache */

int store_imap_cache_get(struct store_account *a, const char *file_id, int kind, struct buf *out)
{
	static const char *const sql[3] = {
	    "SELECT envelope FROM imap_cache WHERE file_id = ?1",
	    "SELECT body FROM imap_cache WHERE file_id = ?1",
	    "SELECT bodystructure FROM imap_cache WHERE file_id = ?1",
	};
	if (kind < 0 || kind > 2)
		return -1;
	struct store_db *db = store_account_db(a, NULL, 0);
	sqlite3_stmt *st = db ? store_db_stmt(db, sql[kind], NULL, 0) : NULL;
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, file_id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (rc == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 0);
		int len = sqlite3_column_bytes(st, 0);
		if (len > 0 && buf_append(out, p, (size_t)len) < 0)
			ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

static int set_sync(struct store_db *db, const char *mode)
{
	if (db->batch)
		return 0; /* store_db_set_sync: the batch commits FULL */
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", mode);
	return sqlite3_exec(db->h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int store_imap_cache_put(struct store_account *a, const struct store_imap_cache *e, size_t n,
			 char *err, size_t errsz)
{
	if (n == 0)
		return 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	/* Not precious: skip the fsync of this commit (WAL mode keeps the
	 * database consistent; the next FULL commit syncs these frames too). */
	(void)set_sync(db, "NORMAL");
	int ret = -1;
	if (store_db_begin(db, err, errsz) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		/* a NULL headers keeps the text a search stored before */
		sqlite3_stmt *st = store_db_stmt(
		    db,
		    "INSERT INTO imap_cache (file_id, envelope, body, bodystructure, headers)"
		    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (file_id) DO UPDATE SET"
		    " envelope = excluded.envelope, body = excluded.body,"
		    " bodystructure = excluded.bodystructure,"
		    " headers = coalesce(excluded.headers, imap_cache.headers)",
		    err, errsz);
		if (st == NULL)
			goto fail;
		store_db_bind_text(st, 1, e[i].file_id);
		sqlite3_bind_text(st, 2, e[i].envelope, (int)e[i].envelope_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, e[i].body, (int)e[i].body_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, e[i].bodystructure, (int)e[i].bodystructure_len,
				  SQLITE_STATIC);
		if (e[i].headers != NULL)
			sqlite3_bind_blob(st, 5, e[i].headers, (int)e[i].headers_len,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 5);
		if (store_db_run(db, st, err, errsz) < 0)
			goto fail;
	}
	ret = store_db_commit(db, err, errsz);
	goto out;
fail:
	store_db_rollback(db);
out:
	(void)set_sync(db, "FULL");
	return ret;
}

void store_imap_headers_free(struct store_imap_headers *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].text);
	free(rows);
}

int store_imap_headers_list(struct store_account *a, int64_t mailbox_id, uint32_t uid_lo,
			    uint32_t uid_hi, size_t max, struct store_imap_headers **rows,
			    size_t *n, char *err, size_t errsz)
{
	*rows = NULL;
	*n = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	sqlite3_stmt *st =
	    db ? store_db_stmt(db,
			       "SELECT m.uid, c.headers FROM messages m LEFT JOIN imap_cache c"
			       " ON c.file_id = m.file_id WHERE m.mailbox_id = ?1"
			       " AND m.uid >= ?2 AND m.uid <= ?3 ORDER BY m.uid LIMIT ?4",
			       err, errsz)
	       : NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid_lo);
	sqlite3_bind_int64(st, 3, uid_hi);
	sqlite3_bind_int64(st, 4, (uint64_t)max > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*rows = xreallocarray(*rows, cap, sizeof **rows);
		}
		struct store_imap_headers *r = &(*rows)[(*n)++];
		r->uid = (uint32_t)sqlite3_column_int64(st, 0);
		r->has = sqlite3_column_type(st, 1) != SQLITE_NULL;
		r->text = NULL;
		r->len = 0;
		if (r->has) {
			const void *p = sqlite3_column_blob(st, 1);
			int len = sqlite3_column_bytes(st, 1);
			r->len = len > 0 ? (size_t)len : 0;
			r->text = xmemdup0(p ? p : "", r->len);
		}
	}
	if (rc != SQLITE_DONE) {
		store_db_error(db, "listing cached headers", err, errsz);
		sqlite3_reset(st);
		store_imap_headers_free(*rows, *n);
		*rows = NULL;
		*n = 0;
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

/* ------------------------------------------------------------ batches */

static int read_message(struct store_db *db, int64_t mailbox_id, uint32_t uid,
			struct store_message *m, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT uid, file_id, size, internaldate, flags, keywords,"
					 " modseq, thread_id FROM messages"
					 " WHERE mailbox_id = ?1 AND uid = ?2",
					 err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_row(st, m);
	else if (rc != SQLITE_DONE)
		store_db_error(db, "reading message", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_imap_store_flags(struct store_account *a, int64_t mailbox_id, const uint32_t *uids,
			   size_t n, int mode, unsigned flags, const char *keywords,
			   int (*cb)(void *ctx, const struct store_message *m), void *ctx,
			   uint64_t *modseq_out, char *err, size_t errsz)
{
	return store_imap_store_flags_if(a, mailbox_id, uids, n, mode, flags, keywords, UINT64_MAX,
					 NULL, cb, ctx, modseq_out, err, errsz);
}

int store_imap_store_flags_if(struct store_account *a, int64_t mailbox_id, const uint32_t *uids,
			      size_t n, int mode, unsigned flags, const char *keywords,
			      uint64_t unchangedsince, bool *modified,
			      int (*cb)(void *ctx, const struct store_message *m), void *ctx,
			      uint64_t *modseq_out, char *err, size_t errsz)
{
	for (size_t i = 0; modified && i < n; i++)
		modified[i] = false;
	if (mode < -1 || mode > 1 || (flags & ~(unsigned)FLAGS_KNOWN)) {
		store_err(err, errsz, "invalid flag change");
		return -1;
	}
	char norm[STORE_KEYWORDS_MAX];
	if (store_name_keywords(keywords, norm, err, errsz) < 0)
		return -1;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	/* Flag and keyword changes are committed without their own fsync
	 * (docs/architecture.md, "Durability per write"): WAL keeps commits
	 * atomic and in order, they survive any crash of Tern (the kernel has
	 * them), and the next synced commit of the account (a delivery, an
	 * APPEND, an expunge) or the kernel's write-back makes them durable.
	 * Only a power loss can undo the last few seconds of them, and then
	 * the whole tail after some commit, never a state that mixes. */
	if (set_sync(db, "NORMAL") < 0 || store_db_begin(db, err, errsz) < 0) {
		(void)set_sync(db, "FULL");
		store_err(err, errsz, "cannot start a flag change");
		return -1;
	}
	struct store_message *msgs = xcalloc(n ? n : 1, sizeof *msgs);
	bool *changed = xcalloc(n ? n : 1, sizeof *changed);
	uint64_t modseq = 0;
	size_t n_changed = 0;
	for (size_t i = 0; i < n; i++) {
		struct store_message *m = &msgs[i];
		int r = read_message(db, mailbox_id, uids[i], m, err, errsz);
		if (r < 0)
			goto fail;
		if (r == 0) {
			m->uid = 0; /* gone: skipped */
			continue;
		}
		if (m->modseq > unchangedsince) {
			/* changed since the client's value: left alone (RFC 7162 3.1.3) */
			if (modified)
				modified[i] = true;
			continue;
		}
		char kw[STORE_KEYWORDS_MAX];
		if (store_name_keywords_merge(m->keywords, mode, norm, kw, err, errsz) < 0)
			goto fail;
		unsigned nf = mode == 0  ? flags
			      : mode > 0 ? (m->flags | flags)
					 : (m->flags & ~flags);
		if (nf == m->flags && strcmp(kw, m->keywords) == 0)
			continue;
		if (modseq == 0 && store_account_next_modseq(db, &modseq, err, errsz) < 0)
			goto fail;
		sqlite3_stmt *st = store_db_stmt(db,
						 "UPDATE messages SET flags = ?3, keywords = ?4,"
						 " modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2",
						 err, errsz);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, m->uid);
		sqlite3_bind_int(st, 3, (int)nf);
		store_db_bind_text(st, 4, kw);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)modseq);
		if (store_db_run(db, st, err, errsz) < 0)
			goto fail;
		m->flags = nf;
		memcpy(m->keywords, kw, sizeof m->keywords);
		m->modseq = modseq;
		changed[i] = true;
		n_changed++;
	}
	if (n_changed > 0) {
		sqlite3_stmt *st = store_db_stmt(
		    db, "UPDATE mailboxes SET highestmodseq = max(highestmodseq, ?2) WHERE id = ?1",
		    err, errsz);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
		if (store_db_run(db, st, err, errsz) < 0 || store_db_commit(db, err, errsz) < 0)
			goto fail;
	} else {
		store_db_rollback(db);
	}
	(void)set_sync(db, "FULL");
	if (modseq_out)
		*modseq_out = modseq;
	if (n_changed > 0)
		store_notify(a->s, a->id);
	for (size_t i = 0; cb && i < n; i++)
		if (msgs[i].uid != 0 && cb(ctx, &msgs[i]) != 0)
			break;
	free(msgs);
	free(changed);
	return 0;
fail:
	store_db_rollback(db);
	(void)set_sync(db, "FULL");
	free(msgs);
	free(changed);
	return -1;
}

int store_imap_copy(struct store_account *a, int64_t mailbox_id, const uint32_t *uids, size_t n,
		    int64_t dest_mailbox_id, bool move, uint32_t *new_uids, uint64_t *modseq_out,
		    char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	uint64_t modseq;
	struct store_quota_mark qm;
	int ret = -1;
	if (store_quota_begin(a, db, &qm, err, errsz) < 0 ||
	    store_account_next_modseq(db, &modseq, err, errsz) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct store_message m;
		int r = read_message(db, mailbox_id, uids[i], &m, err, errsz);
		if (r < 0)
			goto fail;
		if (r == 0) {
			new_uids[i] = 0;
			continue;
		}
		bool unref;
		if (store_message_insert(a, db, dest_mailbox_id, &m, modseq, err, errsz) < 0)
			goto fail;
		new_uids[i] = m.uid;
		if (move && store_message_delete(a, db, mailbox_id, uids[i], m.file_id, modseq,
						 &unref, err, errsz) < 0)
			goto fail;
	}
	int q = store_quota_check(a, db, &qm, err, errsz);
	if (q != 0) {
		if (q > 0)
			ret = -2;
		goto fail;
	}
	if ((move && store_imap_expunged_trim(a, db, mailbox_id, err, errsz) < 0) ||
	    store_db_commit(db, err, errsz) < 0)
		goto fail;
	if (modseq_out)
		*modseq_out = modseq;
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return ret;
}

int store_imap_expunge(struct store_account *a, int64_t mailbox_id, const uint32_t *uids, size_t n,
		       bool *done, uint64_t *modseq_out, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	uint64_t modseq;
	char(*unlink_ids)[25] = xcalloc(n ? n : 1, sizeof *unlink_ids);
	size_t n_unlink = 0;
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct store_message m;
		done[i] = false;
		int r = read_message(db, mailbox_id, uids[i], &m, err, errsz);
		if (r < 0)
			goto fail;
		if (r == 0)
			continue;
		bool unref = false;
		if (store_message_delete(a, db, mailbox_id, uids[i], m.file_id, modseq, &unref, err,
					 errsz) < 0)
			goto fail;
		done[i] = true;
		if (unref)
			memcpy(unlink_ids[n_unlink++], m.file_id, 25);
	}
	if (store_imap_expunged_trim(a, db, mailbox_id, err, errsz) < 0 ||
	    store_db_commit(db, err, errsz) < 0)
		goto fail;
	for (size_t i = 0; i < n_unlink; i++)
		store_message_unlink(a, unlink_ids[i]);
	free(unlink_ids);
	if (modseq_out)
		*modseq_out = modseq;
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	free(unlink_ids);
	return -1;
}

int store_imap_append(struct store_account *a, const char *mailbox,
		      const struct store_imap_append_msg *msgs, size_t n, uint32_t *uidvalidity,
		      uint32_t *uids, char *err, size_t errsz)
{
	char mname[512];
	if (n == 0 || store_name_mailbox(mailbox, mname, err, errsz) < 0)
		return n == 0 ? 0 : -1;
	struct store_message *m = xcalloc(n, sizeof *m);
	bool *created = xcalloc(n, sizeof *created);
	struct store_fts_doc *docs = NULL;
	size_t linked = 0;
	int ret = -1;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].flags & ~(unsigned)FLAGS_KNOWN) {
			store_err(err, errsz, "unknown flag bits %#x", msgs[i].flags);
			goto unlink;
		}
		if (store_name_keywords(msgs[i].keywords, m[i].keywords, err, errsz) < 0 ||
		    store_message_file_size(msgs[i].path, &m[i].size, err, errsz) < 0)
			goto unlink;
		m[i].flags = msgs[i].flags;
		m[i].internaldate = (int64_t)msgs[i].internaldate;
		store_message_file_id(msgs[i].path, m[i].file_id);
		if (store_message_link(a, msgs[i].path, m[i].file_id, &created[i], err, errsz) < 0)
			goto unlink;
		linked = i + 1;
	}
	/* the index text, before the write lock is taken (store-fts.c) */
	docs = xcalloc(n, sizeof *docs);
	for (size_t i = 0; i < n; i++)
		store_fts_prepare(a, msgs[i].path, &docs[i]);
	/* every file is linked before one folder sync and one transaction */
	if (store_message_sync(a, err, errsz) < 0 || store_db_begin(db, err, errsz) < 0)
		goto unlink;
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT id, uidvalidity FROM mailboxes WHERE name = ?1", err, errsz);
	if (st == NULL)
		goto rollback;
	store_db_bind_text(st, 1, mname);
	int rc = sqlite3_step(st);
	int64_t mailbox_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	uint32_t uv = rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int64(st, 1) : 0;
	if (rc == SQLITE_DONE)
		store_err(err, errsz, "mailbox %s does not exist", mname);
	else if (rc != SQLITE_ROW)
		store_db_error(db, "looking up mailbox", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		goto rollback;
	uint64_t modseq;
	struct store_quota_mark qm;
	if (store_quota_begin(a, db, &qm, err, errsz) < 0 ||
	    store_account_next_modseq(db, &modseq, err, errsz) < 0)
		goto rollback;
	for (size_t i = 0; i < n; i++) {
		if (store_message_insert(a, db, mailbox_id, &m[i], modseq, err, errsz) < 0)
			goto rollback;
		store_fts_put(a, db, m[i].file_id, &docs[i]);
	}
	int q = store_quota_check(a, db, &qm, err, errsz);
	if (q != 0) {
		if (q > 0)
			ret = -2;
		goto rollback;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto rollback;
	for (size_t i = 0; i < n; i++)
		uids[i] = m[i].uid;
	if (uidvalidity)
		*uidvalidity = uv;
	store_notify(a->s, a->id);
	ret = 0;
	goto out;
rollback:
	store_db_rollback(db);
unlink:
	for (size_t i = 0; i < linked; i++)
		if (created[i])
			store_message_unlink(a, m[i].file_id);
out:
	store_fts_docs_free(docs, n);
	free(m);
	free(created);
	return ret;
}
