/*
 * store-jmap.c - what JMAP Mail (RFC 8621) needs of an account that IMAP
 * does not: thread ids and a change log of mailboxes (see store.h,
 * "JMAP").  Its own tables, so the code IMAP and delivery run is left as
 * it is:
 *
 *   jmap_refs(msgid, thread_id)      every Message-ID, In-Reply-To and
 *                                    References id seen, and its thread
 *   jmap_mailboxes(id, ...)          each mailbox as JMAP last saw it,
 *                                    with the state of its creation, last
 *                                    change and last change of anything
 *                                    but its counts; rows of deleted
 *                                    mailboxes stay (destroyed = 1)
 *   jmap_threads(id, sig, ...)       each thread as JMAP last saw it (a
 *                                    hash of its Email ids in order), with
 *                                    the same three states and destroyed
 *   jmap_emails(id, sig, ...)        each Email (message file) likewise (a
 *                                    hash of the mailboxes and flags of its
 *                                    copies)
 *   jmap_counters(state, thread_next) the account's JMAP state
 *
 * Both are brought up to date at the start of every JMAP read
 * (store_jmap_sync), not by the writers: a message whose thread_id is
 * still 0 gets one, and the mailboxes are compared with the log; any
 * difference is a new mailbox state.  A state handed out is therefore
 * always that of a sync, and every change after it is found by a later
 * one, whoever made it (IMAP, delivery, another process).
 *
 * Threads: a message joins the thread of the first id among its
 * Message-ID, In-Reply-To and References that is known, else starts a
 * new one; copies (same file) share the thread of the file.  Threads are
 * never merged afterwards, so a thread id never changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "header.h"
#include "sortkey.h"
#include "store-private.h"
#include "xalloc.h"

static const char jmap_ddl[] = "CREATE TABLE IF NOT EXISTS jmap_refs ("
			       " msgid TEXT PRIMARY KEY,"
			       " thread_id INTEGER NOT NULL) WITHOUT ROWID;"
			       "CREATE TABLE IF NOT EXISTS jmap_mailboxes ("
			       " id INTEGER PRIMARY KEY,"
			       " name TEXT NOT NULL,"
			       " special_use INTEGER NOT NULL,"
			       " subscribed INTEGER NOT NULL,"
			       " counts TEXT NOT NULL,"
			       " created INTEGER NOT NULL,"
			       " changed INTEGER NOT NULL,"
			       " props_changed INTEGER NOT NULL,"
			       " destroyed INTEGER NOT NULL DEFAULT 0);"
			       "CREATE TABLE IF NOT EXISTS jmap_threads ("
			       " id INTEGER PRIMARY KEY,"
			       " sig INTEGER NOT NULL,"
			       " created INTEGER NOT NULL,"
			       " changed INTEGER NOT NULL,"
			       " destroyed INTEGER NOT NULL DEFAULT 0);"
			       "CREATE TABLE IF NOT EXISTS jmap_emails ("
			       " id TEXT PRIMARY KEY,"
			       " sig INTEGER NOT NULL,"
			       " created INTEGER NOT NULL,"
			       " changed INTEGER NOT NULL,"
			       " destroyed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
			       "CREATE TABLE IF NOT EXISTS jmap_counters ("
			       " id INTEGER PRIMARY KEY CHECK (id = 1),"
			       " state INTEGER NOT NULL,"
			       " thread_next INTEGER NOT NULL);"
			       "INSERT INTO jmap_counters (id, state, thread_next)"
			       " VALUES (1, 0, 1) ON CONFLICT DO NOTHING;";

/* The header section read to find a message's ids. */
#define HEADER_READ_MAX (256 * 1024)
/* Ids of one message used for threading. */
#define THREAD_IDS_MAX 64
/* Messages threaded per statement round. */
#define THREAD_BATCH 256

/* ------------------------------------------------------------- threads */

struct unthreaded {
	int64_t mailbox_id;
	uint32_t uid;
	char file_id[25];
};

static void read_unthreaded(sqlite3_stmt *st, void *row)
{
	struct unthreaded *u = row;
	u->mailbox_id = sqlite3_column_int64(st, 0);
	u->uid = (uint32_t)sqlite3_column_int64(st, 1);
	store_db_column_text(st, 2, u->file_id, sizeof u->file_id);
}

/* The normalised msg-ids of Message-ID, In-Reply-To and References (in
 * that order) of a message file into ids (NUL-separated in b); *n of
 * them.  A file that cannot be read or parsed has none. */
static void message_ids(struct store_account *a, const char *file_id, struct buf *b, size_t *off,
			size_t *n)
{
	*n = 0;
	char path[4096];
	if (store_message_path(a, file_id, path, sizeof path) < 0)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char *data = xmalloc(HEADER_READ_MAX);
	size_t len = 0;
	while (len < HEADER_READ_MAX) {
		ssize_t r = pread(fd, data + len, HEADER_READ_MAX - len, (off_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	struct header h;
	if (header_parse(data, len, &h) == HEADER_OK) {
		static const char *const names[] = {"Message-ID", "In-Reply-To", "References"};
		for (size_t k = 0; k < 3; k++) {
			for (size_t i = 0; i < h.n_fields && *n < THREAD_IDS_MAX; i++) {
				const struct header_field *f = &h.fields[i];
				if (f->name_len != strlen(names[k]) ||
				    strncasecmp(f->name, names[k], f->name_len) != 0)
					continue;
				size_t pos = 0;
				while (*n < THREAD_IDS_MAX) {
					size_t start = b->len;
					if (sortkey_msgid_next(f->value, f->value_len, &pos, b) !=
						1 ||
					    buf_putc(b, '\0') < 0) {
						b->len = start;
						break;
					}
					off[(*n)++] = start;
					if (k == 0)
						break; /* one Message-ID */
				}
			}
		}
		header_free(&h);
	}
	free(data);
}

/* In the open write transaction: the thread of one message. */
static int thread_one(struct store_account *a, struct store_db *db, const struct unthreaded *u,
		      char *err, size_t errsz)
{
	int64_t thread = 0;
	/* A copy of a threaded file: the same thread. */
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT thread_id FROM messages WHERE file_id = ?1 AND thread_id <> 0 LIMIT 1", err,
	    errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, u->file_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		thread = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	struct buf b = BUF_INIT;
	size_t off[THREAD_IDS_MAX], n = 0;
	if (thread == 0) {
		message_ids(a, u->file_id, &b, off, &n);
		for (size_t i = 0; i < n && thread == 0; i++) {
			st = store_db_stmt(db, "SELECT thread_id FROM jmap_refs WHERE msgid = ?1",
					   err, errsz);
			if (st == NULL)
				goto fail;
			store_db_bind_text(st, 1, b.data + off[i]);
			if (sqlite3_step(st) == SQLITE_ROW)
				thread = sqlite3_column_int64(st, 0);
			sqlite3_reset(st);
		}
		if (thread == 0) {
			st = store_db_stmt(db,
					   "UPDATE jmap_counters SET thread_next = thread_next + 1"
					   " WHERE id = 1 RETURNING thread_next - 1",
					   err, errsz);
			if (st == NULL)
				goto fail;
			if (sqlite3_step(st) == SQLITE_ROW)
				thread = sqlite3_column_int64(st, 0);
			sqlite3_reset(st);
			if (thread == 0) {
				store_db_error(db, "new thread id", err, errsz);
				goto fail;
			}
		}
		for (size_t i = 0; i < n; i++) {
			st =
			    store_db_stmt(db,
					  "INSERT INTO jmap_refs (msgid, thread_id) VALUES (?1, ?2)"
					  " ON CONFLICT DO NOTHING",
					  err, errsz);
			if (st == NULL)
				goto fail;
			store_db_bind_text(st, 1, b.data + off[i]);
			sqlite3_bind_int64(st, 2, thread);
			if (store_db_run(db, st, err, errsz) < 0)
				goto fail;
		}
	}
	buf_free(&b);
	/* Not a change IMAP sees: no modseq. */
	st = store_db_stmt(db, "UPDATE messages SET thread_id = ?1 WHERE file_id = ?2", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, thread);
	store_db_bind_text(st, 2, u->file_id);
	return store_db_run(db, st, err, errsz);
fail:
	buf_free(&b);
	return -1;
}

static int thread_all(struct store_account *a, struct store_db *db, char *err, size_t errsz)
{
	for (;;) {
		struct unthreaded *rows = xcalloc(THREAD_BATCH, sizeof *rows);
		size_t n = 0;
		sqlite3_stmt *st = store_db_stmt(
		    db,
		    "SELECT mailbox_id, uid, file_id FROM messages WHERE thread_id = 0"
		    " ORDER BY internaldate, mailbox_id, uid LIMIT 256",
		    err, errsz);
		int r = st ? store_db_fetch(db, st, rows, sizeof *rows, THREAD_BATCH,
					    read_unthreaded, &n, "unthreaded messages", err, errsz)
			   : -1;
		for (size_t i = 0; r == 0 && i < n; i++)
			r = thread_one(a, db, &rows[i], err, errsz);
		free(rows);
		if (r < 0)
			return -1;
		if (n < THREAD_BATCH)
			return 0;
	}
}

/* ------------------------------------------------------------ mailboxes */

static void read_mailbox(sqlite3_stmt *st, void *row)
{
	struct store_jmap_mailbox *m = row;
	m->id = sqlite3_column_int64(st, 0);
	store_db_column_text(st, 1, m->name, sizeof m->name);
	m->special_use = (unsigned)sqlite3_column_int64(st, 2);
	m->subscribed = sqlite3_column_int64(st, 3) != 0;
	m->total_emails = (uint32_t)sqlite3_column_int64(st, 4);
	m->unread_emails = (uint32_t)sqlite3_column_int64(st, 5);
	m->total_threads = (uint32_t)sqlite3_column_int64(st, 6);
	m->unread_threads = (uint32_t)sqlite3_column_int64(st, 7);
}

/* The mailboxes now, with JMAP's counts: an Email is a message file
 * (copies in one mailbox count once), unread is neither \Seen nor \Draft
 * (RFC 8621 2), an unread thread one with an unread Email in the mailbox
 * (the simple rule 2 allows). */
static int current_mailboxes(struct store_db *db, struct store_jmap_mailbox **out, size_t *n,
			     char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *st = store_db_stmt(db, "SELECT COUNT(*) FROM mailboxes", err, errsz);
	if (st == NULL)
		return -1;
	size_t count = sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	st = store_db_stmt(db,
			   "SELECT b.id, b.name, b.special_use, s.name IS NOT NULL,"
			   " COUNT(DISTINCT m.file_id),"
			   " COUNT(DISTINCT CASE WHEN m.flags & 17 = 0 THEN m.file_id END),"
			   " COUNT(DISTINCT m.thread_id),"
			   " COUNT(DISTINCT CASE WHEN m.flags & 17 = 0 THEN m.thread_id END)"
			   " FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id"
			   " LEFT JOIN subscriptions s ON s.name = b.name"
			   " GROUP BY b.id ORDER BY b.id",
			   err, errsz);
	if (st == NULL)
		return -1;
	*out = xcalloc(count + 1, sizeof **out);
	if (store_db_fetch(db, st, *out, sizeof **out, count + 1, read_mailbox, n, "mailboxes", err,
			   errsz) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

struct logged {
	int64_t id;
	char name[512];
	unsigned special_use;
	bool subscribed;
	char counts[64];
	bool destroyed;
};

static void read_logged(sqlite3_stmt *st, void *row)
{
	struct logged *l = row;
	l->id = sqlite3_column_int64(st, 0);
	store_db_column_text(st, 1, l->name, sizeof l->name);
	l->special_use = (unsigned)sqlite3_column_int64(st, 2);
	l->subscribed = sqlite3_column_int64(st, 3) != 0;
	store_db_column_text(st, 4, l->counts, sizeof l->counts);
	l->destroyed = sqlite3_column_int64(st, 5) != 0;
}

static void counts_of(const struct store_jmap_mailbox *m, char out[64])
{
	snprintf(out, 64, "%u %u %u %u", m->total_emails, m->unread_emails, m->total_threads,
		 m->unread_threads);
}

/* Marks a row of the mailbox or thread log destroyed at state next. */
static int mark_destroyed(struct store_db *db, bool thread, int64_t id, uint64_t next, char *err,
			  size_t errsz)
{
	sqlite3_stmt *st =
	    thread
		? store_db_stmt(db,
				"UPDATE jmap_threads SET destroyed = 1, changed = ?2 WHERE id = ?1",
				err, errsz)
		: store_db_stmt(
		      db, "UPDATE jmap_mailboxes SET destroyed = 1, changed = ?2 WHERE id = ?1",
		      err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)next);
	return store_db_run(db, st, err, errsz);
}

/* Writes a mailbox's row as changed at state next (in more than its
 * counts if props); a new row is created at next. */
static int upsert(struct store_db *db, const struct store_jmap_mailbox *m, const char *counts,
		  uint64_t next, bool props, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO jmap_mailboxes (id, name, special_use, subscribed, counts, created,"
	    " changed, props_changed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?6)"
	    " ON CONFLICT (id) DO UPDATE SET name = ?2, special_use = ?3, subscribed = ?4,"
	    " counts = ?5, changed = ?6,"
	    " props_changed = CASE WHEN ?7 THEN ?6 ELSE props_changed END",
	    err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, m->id);
	store_db_bind_text(st, 2, m->name);
	sqlite3_bind_int64(st, 3, m->special_use);
	sqlite3_bind_int(st, 4, m->subscribed);
	store_db_bind_text(st, 5, counts);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)next);
	sqlite3_bind_int(st, 7, props);
	return store_db_run(db, st, err, errsz);
}

/* In the open write transaction: compares the mailboxes with the log and
 * records the differences under state next (*changed then set). */
static int log_mailboxes(struct store_db *db, uint64_t next, bool *changed, char *err, size_t errsz)
{
	struct store_jmap_mailbox *cur = NULL;
	size_t n = 0, nl = 0;
	if (current_mailboxes(db, &cur, &n, err, errsz) < 0)
		return -1;
	int rc = -1;
	sqlite3_stmt *st = store_db_stmt(db, "SELECT COUNT(*) FROM jmap_mailboxes", err, errsz);
	if (st == NULL) {
		free(cur);
		return -1;
	}
	size_t count = sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	struct logged *log = xcalloc(count + 1, sizeof *log);
	st = store_db_stmt(db,
			   "SELECT id, name, special_use, subscribed, counts, destroyed"
			   " FROM jmap_mailboxes ORDER BY id",
			   err, errsz);
	if (st == NULL || store_db_fetch(db, st, log, sizeof *log, count + 1, read_logged, &nl,
					 "mailbox log", err, errsz) < 0)
		goto out;
	/* Both lists are in id order: one merge. */
	size_t i = 0, j = 0;
	while (i < n || j < nl) {
		const struct store_jmap_mailbox *m = i < n ? &cur[i] : NULL;
		const struct logged *l = j < nl ? &log[j] : NULL;
		char counts[64] = "";
		if (m != NULL)
			counts_of(m, counts);
		if (m != NULL && (l == NULL || m->id < l->id)) {
			if (upsert(db, m, counts, next, true, err, errsz) < 0)
				goto out;
			*changed = true;
			i++;
			continue;
		}
		if (m == NULL || l->id < m->id) {
			if (!l->destroyed) {
				if (mark_destroyed(db, false, l->id, next, err, errsz) < 0)
					goto out;
				*changed = true;
			}
			j++;
			continue;
		}
		/* The same id (ids are never reused, so never destroyed). */
		bool props = strcmp(m->name, l->name) != 0 || m->special_use != l->special_use ||
			     m->subscribed != l->subscribed;
		if (props || strcmp(counts, l->counts) != 0) {
			if (upsert(db, m, counts, next, props, err, errsz) < 0)
				goto out;
			*changed = true;
		}
		i++;
		j++;
	}
	rc = 0;
out:
	free(log);
	free(cur);
	return rc;
}

/* The mailbox state as recorded. */
static int read_state(struct store_db *db, uint64_t *state, char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT state FROM jmap_counters WHERE id = 1", err, errsz);
	if (st == NULL)
		return -1;
	int r = sqlite3_step(st);
	*state = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (r != SQLITE_ROW) {
		store_db_error(db, "reading the JMAP state", err, errsz);
		return -1;
	}
	return 0;
}

static int set_state(struct store_db *db, uint64_t state, char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "UPDATE jmap_counters SET state = ?1 WHERE id = 1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)state);
	return store_db_run(db, st, err, errsz);
}

/* ------------------------------------------------- threads and Emails */

/* A thread (by num) or an Email (by key, its file id) with a signature
 * of what JMAP shows of it. */
struct log_sig {
	int64_t num;
	char key[25];
	int64_t sig;
	bool destroyed;
};

#define FNV_START ((int64_t)14695981039346656037u)

/* FNV-1a over a text and a separator: a thread's Email ids in order, an
 * Email's mailboxes and flags. */
static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return (h ^ 0xff) * 1099511628211u;
}

static int cmp_sig(const struct log_sig *a, const struct log_sig *b)
{
	if (a->num != b->num)
		return a->num < b->num ? -1 : 1;
	return strcmp(a->key, b->key);
}

/* The threads (emails false: each a hash of its Email ids, oldest first)
 * or the Emails (a hash of the mailboxes, flags and keywords of each
 * copy) now, in the order of their log table. */
static int current_sigs(struct store_db *db, bool emails, struct log_sig **out, size_t *n,
			char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	sqlite3_stmt *st =
	    emails
		? store_db_stmt(db,
				"SELECT 0, file_id, mailbox_id || ' ' || flags || ' ' || keywords"
				" FROM messages ORDER BY file_id, mailbox_id, uid",
				err, errsz)
		: store_db_stmt(db,
				"SELECT thread_id, '', file_id, MIN(internaldate) AS d"
				" FROM messages WHERE thread_id <> 0"
				" GROUP BY thread_id, file_id ORDER BY thread_id, d, file_id",
				err, errsz);
	if (st == NULL)
		return -1;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct log_sig x = {.num = sqlite3_column_int64(st, 0), .sig = FNV_START};
		store_db_column_text(st, 1, x.key, sizeof x.key);
		const char *v = (const char *)sqlite3_column_text(st, 2);
		if (*n == 0 || cmp_sig(&(*out)[*n - 1], &x) != 0) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 64;
				*out = xreallocarray(*out, cap, sizeof **out);
			}
			(*out)[(*n)++] = x;
		}
		struct log_sig *ls = &(*out)[*n - 1];
		ls->sig = (int64_t)fnv((uint64_t)ls->sig, v ? v : "");
	}
	sqlite3_reset(st);
	if (r != SQLITE_DONE) {
		store_db_error(db, emails ? "emails" : "threads", err, errsz);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static void read_log_sig(sqlite3_stmt *st, void *row)
{
	struct log_sig *t = row;
	t->num = sqlite3_column_int64(st, 0);
	store_db_column_text(st, 1, t->key, sizeof t->key);
	t->sig = sqlite3_column_int64(st, 2);
	t->destroyed = sqlite3_column_int(st, 3) != 0;
}

/* A row of the thread or Email log, new, changed or back (a thread id is
 * kept by its references, so a new message may join an emptied thread;
 * an Email expunged everywhere may be appended again by its file). */
static int sig_upsert(struct store_db *db, bool emails, const struct log_sig *c, uint64_t next,
		      char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    emails ? store_db_stmt(db,
				   "INSERT INTO jmap_emails (id, sig, created, changed)"
				   " VALUES (?4, ?2, ?3, ?3) ON CONFLICT (id) DO UPDATE SET"
				   " sig = ?2, changed = ?3, created = CASE WHEN destroyed"
				   " THEN ?3 ELSE created END, destroyed = 0",
				   err, errsz)
		   : store_db_stmt(db,
				   "INSERT INTO jmap_threads (id, sig, created, changed)"
				   " VALUES (?1, ?2, ?3, ?3) ON CONFLICT (id) DO UPDATE SET"
				   " sig = ?2, changed = ?3, created = CASE WHEN destroyed"
				   " THEN ?3 ELSE created END, destroyed = 0",
				   err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, c->num);
	sqlite3_bind_int64(st, 2, c->sig);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)next);
	store_db_bind_text(st, 4, c->key);
	return store_db_run(db, st, err, errsz);
}

static int sig_destroy(struct store_db *db, bool emails, const struct log_sig *l, uint64_t next,
		       char *err, size_t errsz)
{
	if (!emails)
		return mark_destroyed(db, true, l->num, next, err, errsz);
	sqlite3_stmt *st = store_db_stmt(
	    db, "UPDATE jmap_emails SET destroyed = 1, changed = ?2 WHERE id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, l->key);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)next);
	return store_db_run(db, st, err, errsz);
}

/* In the open write transaction: as log_mailboxes, for threads or
 * Emails. */
static int log_sigs(struct store_db *db, bool emails, uint64_t next, bool *changed, char *err,
		    size_t errsz)
{
	struct log_sig *cur = NULL, *log = NULL;
	size_t n = 0, nl = 0;
	if (current_sigs(db, emails, &cur, &n, err, errsz) < 0)
		return -1;
	int rc = -1;
	sqlite3_stmt *st = emails
			       ? store_db_stmt(db, "SELECT COUNT(*) FROM jmap_emails", err, errsz)
			       : store_db_stmt(db, "SELECT COUNT(*) FROM jmap_threads", err, errsz);
	if (st == NULL)
		goto out;
	size_t count = sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	log = xcalloc(count + 1, sizeof *log);
	st = emails
		 ? store_db_stmt(db, "SELECT 0, id, sig, destroyed FROM jmap_emails ORDER BY id",
				 err, errsz)
		 : store_db_stmt(db, "SELECT id, '', sig, destroyed FROM jmap_threads ORDER BY id",
				 err, errsz);
	if (st == NULL || store_db_fetch(db, st, log, sizeof *log, count + 1, read_log_sig, &nl,
					 "change log", err, errsz) < 0)
		goto out;
	size_t i = 0, j = 0;
	while (i < n || j < nl) {
		const struct log_sig *c = i < n ? &cur[i] : NULL;
		const struct log_sig *l = j < nl ? &log[j] : NULL;
		int d = c == NULL ? 1 : l == NULL ? -1 : cmp_sig(c, l);
		if (d == 0 && c->sig == l->sig && !l->destroyed) {
			i++, j++;
			continue;
		}
		if (d <= 0) {
			if (sig_upsert(db, emails, c, next, err, errsz) < 0)
				goto out;
			*changed = true;
			if (d == 0)
				j++;
			i++;
			continue;
		}
		if (!l->destroyed) {
			if (sig_destroy(db, emails, l, next, err, errsz) < 0)
				goto out;
			*changed = true;
		}
		j++;
	}
	rc = 0;
out:
	free(cur);
	free(log);
	return rc;
}

int store_jmap_sync(struct store_account *a, uint64_t *state_out, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	/* In the transaction: the tables' first creation races no other
	 * process, and the counters row is not written on its own. */
	uint64_t state = 0;
	bool changed = false;
	if (store_db_exec_ddl(db, jmap_ddl, "creating the JMAP tables", err, errsz) < 0 ||
	    read_state(db, &state, err, errsz) < 0 || thread_all(a, db, err, errsz) < 0 ||
	    log_mailboxes(db, state + 1, &changed, err, errsz) < 0 ||
	    log_sigs(db, false, state + 1, &changed, err, errsz) < 0 ||
	    log_sigs(db, true, state + 1, &changed, err, errsz) < 0 ||
	    (changed && set_state(db, ++state, err, errsz) < 0)) {
		store_db_rollback(db);
		return -1;
	}
	if (store_db_commit(db, err, errsz) < 0)
		return -1;
	*state_out = state;
	return 0;
}

int store_jmap_mailboxes(struct store_account *a, struct store_jmap_mailbox **out, size_t *n,
			 char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	return current_mailboxes(db, out, n, err, errsz);
}

static void read_change(sqlite3_stmt *st, void *row)
{
	struct store_jmap_change *c = row;
	c->id = sqlite3_column_int64(st, 0);
	c->kind = (enum store_jmap_change_kind)sqlite3_column_int(st, 1);
	c->props = sqlite3_column_int(st, 2) != 0;
	store_db_column_text(st, 3, c->key, sizeof c->key);
}

/* The changes of a log table after since: mailboxes (kind 0, with
 * props), threads (1) or Emails (2). */
static int changes(struct store_account *a, int kind, uint64_t since,
		   struct store_jmap_change **out, size_t *n, char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
	    kind == 2 ? store_db_stmt(db, "SELECT COUNT(*) FROM jmap_emails WHERE changed > ?1",
				      err, errsz)
	    : kind == 1
		? store_db_stmt(db, "SELECT COUNT(*) FROM jmap_threads WHERE changed > ?1", err,
				errsz)
		: store_db_stmt(db, "SELECT COUNT(*) FROM jmap_mailboxes WHERE changed > ?1", err,
				errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	size_t count = sqlite3_step(st) == SQLITE_ROW ? (size_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	/* Created and destroyed since: nothing the client must hear of. */
	st = kind == 2   ? store_db_stmt(db,
					 "SELECT 0, CASE WHEN created > ?1 THEN 0 WHEN destroyed"
					   " THEN 2 ELSE 1 END, 1, id FROM jmap_emails"
					   " WHERE changed > ?1 AND NOT (created > ?1 AND destroyed)"
					   " ORDER BY id",
					 err, errsz)
	     : kind == 1 ? store_db_stmt(db,
					 "SELECT id, CASE WHEN created > ?1 THEN 0 WHEN destroyed"
					 " THEN 2 ELSE 1 END, 1, '' FROM jmap_threads"
					 " WHERE changed > ?1 AND NOT (created > ?1 AND destroyed)"
					 " ORDER BY id",
					 err, errsz)
			 : store_db_stmt(db,
					 "SELECT id, CASE WHEN created > ?1 THEN 0 WHEN destroyed"
					 " THEN 2 ELSE 1 END, props_changed > ?1, ''"
					 " FROM jmap_mailboxes"
					 " WHERE changed > ?1 AND NOT (created > ?1 AND destroyed)"
					 " ORDER BY id",
					 err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	*out = xcalloc(count + 1, sizeof **out);
	if (store_db_fetch(db, st, *out, sizeof **out, count + 1, read_change, n, "changes", err,
			   errsz) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int store_jmap_mailbox_changes(struct store_account *a, uint64_t since,
			       struct store_jmap_change **out, size_t *n, char *err, size_t errsz)
{
	return changes(a, 0, since, out, n, err, errsz);
}

int store_jmap_thread_changes(struct store_account *a, uint64_t since,
			      struct store_jmap_change **out, size_t *n, char *err, size_t errsz)
{
	return changes(a, 1, since, out, n, err, errsz);
}

int store_jmap_email_changes(struct store_account *a, uint64_t since,
			     struct store_jmap_change **out, size_t *n, char *err, size_t errsz)
{
	return changes(a, 2, since, out, n, err, errsz);
}

int store_jmap_thread_ids(struct store_account *a, size_t max, int64_t **out, size_t *n, char *err,
			  size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT id FROM jmap_threads WHERE destroyed = 0 ORDER BY id LIMIT ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max + 1);
	*out = xcalloc(max + 2, sizeof **out);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW && *n <= max)
		(*out)[(*n)++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		store_db_error(db, "thread ids", err, errsz);
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

int store_jmap_thread_get(struct store_account *a, int64_t thread_id, struct buf *out, size_t *n,
			  char *err, size_t errsz)
{
	*n = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
	    store_db_stmt(db,
			  "SELECT file_id, MIN(internaldate) AS d FROM messages"
			  " WHERE thread_id = ?1 GROUP BY file_id ORDER BY d, file_id",
			  err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, thread_id);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *f = (const char *)sqlite3_column_text(st, 0);
		if (buf_puts(out, f ? f : "") < 0 || buf_putc(out, '\0') < 0) {
			sqlite3_reset(st);
			store_err(err, errsz, "thread too large");
			return -1;
		}
		(*n)++;
	}
	sqlite3_reset(st);
	if (r != SQLITE_DONE) {
		store_db_error(db, "thread", err, errsz);
		return -1;
	}
	return *n > 0;
}

int store_jmap_email_copies(struct store_account *a, const char *file_id,
			    struct store_jmap_copy **out, size_t *n, char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
	    store_db_stmt(db,
			  "SELECT mailbox_id, uid, size, internaldate, flags, keywords,"
			  " modseq, thread_id FROM messages WHERE file_id = ?1"
			  " ORDER BY mailbox_id, uid",
			  err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, file_id, -1, SQLITE_STATIC);
	size_t cap = 0;
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 4;
			*out = xreallocarray(*out, cap, sizeof **out);
		}
		struct store_jmap_copy *c = &(*out)[(*n)++];
		memset(c, 0, sizeof *c);
		c->mailbox_id = sqlite3_column_int64(st, 0);
		c->uid = (uint32_t)sqlite3_column_int64(st, 1);
		c->size = (uint64_t)sqlite3_column_int64(st, 2);
		c->internaldate = sqlite3_column_int64(st, 3);
		c->flags = (unsigned)sqlite3_column_int64(st, 4);
		const char *k = (const char *)sqlite3_column_text(st, 5);
		snprintf(c->keywords, sizeof c->keywords, "%s", k ? k : "");
		c->modseq = (uint64_t)sqlite3_column_int64(st, 6);
		c->thread_id = sqlite3_column_int64(st, 7);
	}
	sqlite3_reset(st);
	if (r != SQLITE_DONE) {
		free(*out);
		*out = NULL;
		*n = 0;
		store_db_error(db, "email copies", err, errsz);
		return -1;
	}
	return *n > 0;
}

int store_jmap_thread_assign(struct store_account *a, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	if (store_db_exec_ddl(db, jmap_ddl, "creating the JMAP tables", err, errsz) < 0 ||
	    thread_all(a, db, err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}
