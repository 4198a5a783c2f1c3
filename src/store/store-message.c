/*
 * store-message.c - messages in an account: append, list, flags and
 * keywords, copy/move, expunge; and the steps delivery shares with APPEND
 * (link the file, insert the row).
 *
 * Order of durability: a message file is hard-linked into msg/ and the
 * folder is fsync'ed *before* the transaction that inserts its row, so a
 * row never names a file that a crash could lose.  A file is unlinked only
 * after the transaction that removed its last row has committed; a crash in
 * between leaves an unreferenced file, never a dangling row.
 *
 * Every change takes one new modseq (account counter), stores it on the
 * rows it touches, raises the mailbox's highestmodseq to it, and remembers
 * expunged uids with it (CONDSTORE/QRESYNC).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store-private.h"
#include "xalloc.h"

#define FLAGS_KNOWN                                                                     \
	(STORE_F_SEEN | STORE_F_ANSWERED | STORE_F_FLAGGED | STORE_F_DELETED | STORE_F_DRAFT)

void store_message_file_id(const char *path, char out[25])
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (store_name_is_file_id(base, strlen(base))) {
		memcpy(out, base, 25);
		return;
	}
	fsutil_unique_id(out);
}

int store_message_path(struct store_account *a, const char *file_id, char *out, size_t outsz)
{
	if (file_id == NULL || !store_name_is_file_id(file_id, strlen(file_id)))
		return -1;
	int n = snprintf(out, outsz, "%s/%s", a->msgdir, file_id);
	return (n < 0 || (size_t)n >= outsz) ? -1 : 0;
}

int store_message_link(struct store_account *a, const char *path, const char *file_id,
		       bool *created, char *err, size_t errsz)
{
	char dst[PATH_MAX];
	*created = false;
	if (store_message_path(a, file_id, dst, sizeof dst) < 0) {
		store_err(err, errsz, "invalid message file id");
		return -1;
	}
	if (link(path, dst) == 0) {
		*created = true;
		/* armed: the commit thread syncs it (the caller did not) */
		if (store_commit_armed(a))
			store_commit_hold_file(a, dst);
	} else if (errno == EEXIST) {
		/* Fine if it is this very file (delivered twice, or appended
		 * from the store itself); never overwrite another one. */
		if (!store_same_file(path, dst)) {
			store_err(err, errsz, "message file %s already exists in account %lld",
				  file_id, (long long)a->id);
			return -1;
		}
	} else if (errno == EXDEV) {
		store_err(err, errsz, "message file %s is not on the data folder's file system",
			  path);
		return -1;
	} else {
		store_err(err, errsz, "cannot link %s into account %lld: %s", path,
			  (long long)a->id, strerror(errno));
		return -1;
	}
	return 0;
}

int store_message_sync(struct store_account *a, char *err, size_t errsz)
{
	if (store_commit_armed(a)) {
		store_commit_hold_dir(a); /* on the commit thread, before COMMIT */
		return 0;
	}
	if (fsutil_fsync_dir(a->msgdir) < 0) {
		store_err(err, errsz, "cannot sync %s: %s", a->msgdir, strerror(errno));
		return -1;
	}
	return 0;
}

void store_message_unlink(struct store_account *a, const char *file_id)
{
	char path[PATH_MAX];
	if (store_message_path(a, file_id, path, sizeof path) < 0)
		return;
	if (store_commit_armed(a)) {
		store_commit_hold_unlink(a, file_id); /* once the commit is durable */
		return;
	}
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("action=unlink account=%lld file=%s error=\"%s\"", (long long)a->id,
			 file_id, strerror(errno));
}

int store_message_insert(struct store_account *a, struct store_db *db, int64_t mailbox_id,
			 struct store_message *m, uint64_t modseq, char *err, size_t errsz)
{
	(void)a;
	sqlite3_stmt *st = store_db_stmt(db,
					 "UPDATE mailboxes SET uidnext = uidnext + 1,"
					 " highestmodseq = max(highestmodseq, ?2)"
					 " WHERE id = ?1 AND uidnext < 4294967295"
					 " RETURNING uidnext - 1",
					 err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
	int rc = sqlite3_step(st);
	sqlite3_int64 uid = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		store_db_error(db, "taking a uid", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (uid == 0) {
		store_err(err, errsz, "mailbox %lld does not exist or has no UIDs left",
			  (long long)mailbox_id);
		return -1;
	}
	m->uid = (uint32_t)uid;
	m->modseq = modseq;
	st = store_db_stmt(db,
			   "INSERT INTO messages (mailbox_id, uid, file_id, size, internaldate,"
			   " flags, keywords, modseq, thread_id)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
			   err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	store_db_bind_text(st, 3, m->file_id);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)m->size);
	sqlite3_bind_int64(st, 5, m->internaldate);
	sqlite3_bind_int(st, 6, (int)m->flags);
	store_db_bind_text(st, 7, m->keywords);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)modseq);
	sqlite3_bind_int64(st, 9, m->thread_id);
	return store_db_run(db, st, err, errsz);
}

int store_message_delete(struct store_account *a, struct store_db *db, int64_t mailbox_id,
			 uint32_t uid, const char *file_id, uint64_t modseq, bool *unref,
			 char *err, size_t errsz)
{
	(void)a;
	static const char *const steps[] = {
		"DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
		"INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq) VALUES (?1, ?2, ?3)",
		"UPDATE mailboxes SET highestmodseq = max(highestmodseq, ?3) WHERE id = ?1",
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		sqlite3_stmt *st = store_db_stmt(db, steps[i], err, errsz);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, uid);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
		if (store_db_run(db, st, err, errsz) < 0)
			return -1;
	}
	sqlite3_stmt *st = store_db_stmt(
		db, "SELECT EXISTS (SELECT 1 FROM messages WHERE file_id = ?1)", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, file_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*unref = sqlite3_column_int(st, 0) == 0;
	else
		store_db_error(db, "checking message file references", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_message_file_size(const char *path, uint64_t *size, char *err, size_t errsz)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		store_err(err, errsz, "cannot read message file %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		store_err(err, errsz, "message file %s is not a regular file", path);
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

static int find_mailbox(struct store_db *db, const char *name, int64_t *id, char *err,
			size_t errsz)
{
	sqlite3_stmt *st =
		store_db_stmt(db, "SELECT id FROM mailboxes WHERE name = ?1", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		store_err(err, errsz, "mailbox %s does not exist", name);
	else
		store_db_error(db, "looking up mailbox", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_message_append(struct store_account *a, const char *mailbox, const char *path,
			 unsigned flags, const char *keywords, time_t internaldate,
			 uint32_t *uid_out, char *err, size_t errsz)
{
	char mname[512];
	struct store_message m;
	memset(&m, 0, sizeof m);
	if (store_name_mailbox(mailbox, mname, err, errsz) < 0 ||
	    store_name_keywords(keywords, m.keywords, err, errsz) < 0 ||
	    store_message_file_size(path, &m.size, err, errsz) < 0)
		return -1;
	if (flags & ~(unsigned)FLAGS_KNOWN) {
		store_err(err, errsz, "unknown flag bits %#x", flags);
		return -1;
	}
	m.flags = flags;
	m.internaldate = (int64_t)internaldate;
	store_message_file_id(path, m.file_id);

	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	bool created;
	if (store_message_link(a, path, m.file_id, &created, err, errsz) < 0)
		return -1;
	int64_t mailbox_id;
	uint64_t modseq;
	struct store_quota_mark qm;
	int ret = -1, q;
	struct store_fts_doc doc; /* before the write lock (store-fts.c) */
	store_fts_prepare(a, path, &doc);
	if (store_message_sync(a, err, errsz) < 0 || store_db_begin(db, err, errsz) < 0)
		goto fail_link;
	if (find_mailbox(db, mname, &mailbox_id, err, errsz) < 0 ||
	    store_quota_begin(a, db, &qm, err, errsz) < 0 ||
	    store_account_next_modseq(db, &modseq, err, errsz) < 0 ||
	    store_message_insert(a, db, mailbox_id, &m, modseq, err, errsz) < 0)
		goto fail;
	store_fts_put(a, db, m.file_id, &doc);
	if ((q = store_quota_check(a, db, &qm, err, errsz)) != 0) {
		ret = q > 0 ? -2 : -1;
		goto fail;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto fail;
	if (uid_out)
		*uid_out = m.uid;
	store_notify(a->s, a->id);
	store_fts_doc_free(&doc);
	return 0;
fail:
	store_db_rollback(db);
fail_link:
	if (created)
		store_message_unlink(a, m.file_id);
	store_fts_doc_free(&doc);
	return ret;
}

#define LIST_CHUNK 64

/* One row of store_message_list's SELECT. */
static void read_list_row(sqlite3_stmt *st, void *row)
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

int store_message_list(struct store_account *a, int64_t mailbox_id, uint32_t uid_lo,
		       uint32_t uid_hi, int (*cb)(void *ctx, const struct store_message *m),
		       void *ctx, char *err, size_t errsz)
{
	/* A chunk at a time (a message row is over 1 KB), the statement reset
	 * before the callbacks run, so a callback may change the mailbox or
	 * use other accounts. */
	struct store_message *rows = xmalloc(LIST_CHUNK * sizeof *rows);
	int64_t next = uid_lo;
	int ret = 0;
	while (next <= (int64_t)uid_hi) {
		struct store_db *db = store_account_db(a, err, errsz);
		sqlite3_stmt *st =
			db ? store_db_stmt(db,
					   "SELECT uid, file_id, size, internaldate, flags, keywords,"
					   " modseq, thread_id FROM messages WHERE mailbox_id = ?1"
					   " AND uid >= ?2 AND uid <= ?3 ORDER BY uid LIMIT ?4",
					   err, errsz)
			   : NULL;
		if (st == NULL) {
			ret = -1;
			break;
		}
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, next);
		sqlite3_bind_int64(st, 3, uid_hi);
		sqlite3_bind_int(st, 4, LIST_CHUNK);
		size_t n;
		if (store_db_fetch(db, st, rows, sizeof *rows, LIST_CHUNK, read_list_row, &n,
				   "listing messages", err, errsz) < 0) {
			ret = -1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (cb(ctx, &rows[i]) != 0)
				goto out;
		}
		if (n < LIST_CHUNK)
			break;
		next = (int64_t)rows[n - 1].uid + 1;
	}
out:
	free(rows);
	return ret;
}

/* Reads one message's row: 1 found, 0 not (err set), -1 error. */
static int read_message(struct store_db *db, int64_t mailbox_id, uint32_t uid,
			struct store_message *m, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT file_id, size, internaldate, flags, keywords,"
					 " modseq, thread_id FROM messages"
					 " WHERE mailbox_id = ?1 AND uid = ?2",
					 err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		m->uid = uid;
		store_db_column_text(st, 0, m->file_id, sizeof m->file_id);
		m->size = (uint64_t)sqlite3_column_int64(st, 1);
		m->internaldate = sqlite3_column_int64(st, 2);
		m->flags = (unsigned)sqlite3_column_int(st, 3);
		store_db_column_text(st, 4, m->keywords, sizeof m->keywords);
		m->modseq = (uint64_t)sqlite3_column_int64(st, 5);
		m->thread_id = sqlite3_column_int64(st, 6);
	} else if (rc == SQLITE_DONE) {
		store_err(err, errsz, "message uid %u does not exist in mailbox %lld", uid,
			  (long long)mailbox_id);
	} else {
		store_db_error(db, "reading message", err, errsz);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Applies a STORE to one keyword list: mode 0 replace, 1 add, -1 remove. */
static int merge_keywords(const char *old, int mode, const char *change,
			  char out[STORE_KEYWORDS_MAX], char *err, size_t errsz)
{
	char norm[STORE_KEYWORDS_MAX];
	if (store_name_keywords(change, norm, err, errsz) < 0)
		return -1;
	return store_name_keywords_merge(old, mode, norm, out, err, errsz);
}

int store_message_store_flags(struct store_account *a, int64_t mailbox_id, uint32_t uid,
			      int mode, unsigned flags, const char *keywords,
			      uint64_t *modseq_out, char *err, size_t errsz)
{
	if (mode < -1 || mode > 1) {
		store_err(err, errsz, "invalid flag change mode %d", mode);
		return -1;
	}
	if (flags & ~(unsigned)FLAGS_KNOWN) {
		store_err(err, errsz, "unknown flag bits %#x", flags);
		return -1;
	}
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	struct store_message m;
	char kw[STORE_KEYWORDS_MAX];
	if (read_message(db, mailbox_id, uid, &m, err, errsz) <= 0 ||
	    merge_keywords(m.keywords, mode, keywords, kw, err, errsz) < 0)
		goto fail;
	unsigned nflags = mode == 0 ? flags : mode > 0 ? (m.flags | flags) : (m.flags & ~flags);
	if (nflags == m.flags && strcmp(kw, m.keywords) == 0) {
		/* Nothing changes: no new modseq (RFC 7162 3.1.3). */
		store_db_rollback(db);
		if (modseq_out)
			*modseq_out = m.modseq;
		return 0;
	}
	uint64_t modseq;
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0)
		goto fail;
	static const char *const steps[] = {
		"UPDATE messages SET flags = ?3, keywords = ?4, modseq = ?5"
		" WHERE mailbox_id = ?1 AND uid = ?2",
		"UPDATE mailboxes SET highestmodseq = max(highestmodseq, ?5) WHERE id = ?1",
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		sqlite3_stmt *st = store_db_stmt(db, steps[i], err, errsz);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, uid);
		sqlite3_bind_int(st, 3, (int)nflags);
		store_db_bind_text(st, 4, kw);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)modseq);
		if (store_db_run(db, st, err, errsz) < 0)
			goto fail;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto fail;
	if (modseq_out)
		*modseq_out = modseq;
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

int store_message_copy(struct store_account *a, int64_t mailbox_id, uint32_t uid,
		       int64_t dest_mailbox_id, bool move, uint32_t *new_uid, char *err,
		       size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	struct store_message m;
	uint64_t modseq;
	bool unref = false;
	struct store_quota_mark qm;
	int ret = -1, q;
	if (read_message(db, mailbox_id, uid, &m, err, errsz) <= 0 ||
	    store_quota_begin(a, db, &qm, err, errsz) < 0 ||
	    store_account_next_modseq(db, &modseq, err, errsz) < 0 ||
	    store_message_insert(a, db, dest_mailbox_id, &m, modseq, err, errsz) < 0)
		goto fail;
	/* The copy refers to the same file, so a move never frees it. */
	if (move && (store_message_delete(a, db, mailbox_id, uid, m.file_id, modseq, &unref, err,
					  errsz) < 0 ||
		     store_imap_expunged_trim(a, db, mailbox_id, err, errsz) < 0))
		goto fail;
	if ((q = store_quota_check(a, db, &qm, err, errsz)) != 0) {
		ret = q > 0 ? -2 : -1;
		goto fail;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto fail;
	if (new_uid)
		*new_uid = m.uid;
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return ret;
}

int store_message_expunge(struct store_account *a, int64_t mailbox_id, uint32_t uid, char *err,
			  size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	struct store_message m;
	uint64_t modseq;
	bool unref = false;
	if (read_message(db, mailbox_id, uid, &m, err, errsz) <= 0 ||
	    store_account_next_modseq(db, &modseq, err, errsz) < 0 ||
	    store_message_delete(a, db, mailbox_id, uid, m.file_id, modseq, &unref, err,
				 errsz) < 0 ||
	    store_imap_expunged_trim(a, db, mailbox_id, err, errsz) < 0 ||
	    store_db_commit(db, err, errsz) < 0)
		goto fail;
	if (unref)
		store_message_unlink(a, m.file_id);
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}
