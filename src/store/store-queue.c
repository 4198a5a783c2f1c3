/*
 * store-queue.c - the outbound queue in server.db: handing a message to
 * the queue (the file is linked into DATA/queue/ and that folder fsync'ed
 * before one transaction records the message and a "deferred" row per
 * recipient), and everything the queue runner (src/queue) and the
 * `tern queue`/`tern trace` commands read and change: claiming due
 * recipients, recording outcomes, pending DSNs, the delivery log.
 *
 * Durability: every change is one SQLite transaction (WAL, synchronous
 * FULL), so an outcome recorded here survives kill -9 and power loss.  The
 * runner records "delivered" right after the remote's 250, before it does
 * anything else.  The schema additions of this file (the delivery log,
 * more columns) are created or added to older databases by
 * store_queue_schema, which store_open calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "header.h"
#include "store-private.h"
#include "xalloc.h"

/* Links path into DATA/queue/ as file_id; *created tells whether we made
 * the entry (an entry for the same inode is fine).  The caller syncs the
 * folder (once for a whole batch). */
static int queue_link(struct store *s, const char *path, const char *file_id, bool *created,
		      char *err, size_t errsz)
{
	char dir[PATH_MAX], dst[PATH_MAX];
	*created = false;
	if (store_path(dir, sizeof dir, s->dir, "queue") < 0 ||
	    store_path(dst, sizeof dst, dir, file_id) < 0) {
		store_err(err, errsz, "queue path too long");
		return -1;
	}
	if (link(path, dst) == 0) {
		*created = true;
	} else if (errno == EEXIST) {
		if (!store_same_file(path, dst)) {
			store_err(err, errsz, "queue file %s already exists", file_id);
			return -1;
		}
	} else {
		store_err(err, errsz, "cannot link %s into the queue: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Removes the DATA/queue/ entry queue_link made. */
static void queue_unlink(struct store *s, const char *file_id)
{
	char dir[PATH_MAX], dst[PATH_MAX];
	if (store_path(dir, sizeof dir, s->dir, "queue") == 0 &&
	    store_path(dst, sizeof dst, dir, file_id) == 0)
		(void)unlink(dst);
}

/* Inside a transaction: one row of the delivery log. */
static int log_event(struct store_db *db, int64_t message_id, const char *rcpt, int64_t when,
		     const char *event, const char *status, const char *mx, const char *ip,
		     const char *reply, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "INSERT INTO queue_log (message_id, rcpt, time, event,"
					 " status, mx, ip, reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
					 " ?7, ?8)",
					 err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	store_db_bind_text(st, 2, rcpt ? rcpt : "");
	sqlite3_bind_int64(st, 3, when);
	store_db_bind_text(st, 4, event);
	store_db_bind_text(st, 5, status ? status : "");
	store_db_bind_text(st, 6, mx ? mx : "");
	store_db_bind_text(st, 7, ip ? ip : "");
	store_db_bind_text(st, 8, reply ? reply : "");
	return store_db_run(db, st, err, errsz);
}

/* Inside a transaction, right after the "attempt" row: its TLS facts. */
static int log_attempt_tls(struct store_db *db, const struct store_queue_outcome *o, char *err,
			   size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "UPDATE queue_log SET tls_version = ?1, tls_cipher = ?2,"
					 " tls_verified = ?3, tls_note = ?4"
					 " WHERE id = last_insert_rowid()",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, o->tls_version);
	store_db_bind_text(st, 2, o->tls_cipher ? o->tls_cipher : "");
	sqlite3_bind_int(st, 3, o->tls_verified ? 1 : 0);
	store_db_bind_text(st, 4, o->tls_note ? o->tls_note : "");
	return store_db_run(db, st, err, errsz);
}

/* What `tern trace` wants from the message itself: its Message-ID and our
 * Received: line (client address, HELO, SMTP id), read from the head of
 * the file.  Missing or malformed headers leave the fields empty. */
static void read_head(const char *path, char msgid[256], char received[512])
{
	msgid[0] = received[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	const size_t cap = 65536;
	char *buf = xmalloc(cap);
	size_t n = 0;
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	/* Cut at the last complete line so no half field is parsed. */
	while (n > 0 && buf[n - 1] != '\n')
		n--;
	struct header h;
	if (header_parse(buf, n, &h) != HEADER_OK) {
		free(buf);
		return;
	}
	const struct header_field *f = header_find(&h, "Received");
	if (f != NULL)
		header_unfold(f->value, f->value_len, received, 512);
	f = header_find(&h, "Message-ID");
	if (f != NULL) {
		char v[512];
		size_t len = header_unfold(f->value, f->value_len, v, sizeof v);
		const char *p = v;
		if (len > 0 && v[0] == '<' && v[len - 1] == '>') {
			v[len - 1] = '\0';
			p = v + 1;
		}
		snprintf(msgid, 256, "%.255s", p);
	}
	header_free(&h);
	free(buf);
}

int store_queue_add(struct store *s, const char *path, const char *sender, char (*rcpts)[256],
		    size_t n_rcpts, char *err, size_t errsz)
{
	struct store_queue_new_rcpt *nr = xcalloc(n_rcpts ? n_rcpts : 1, sizeof *nr);
	for (size_t i = 0; i < n_rcpts; i++) {
		if (memchr(rcpts[i], '\0', sizeof rcpts[i]) == NULL) {
			free(nr);
			store_err(err, errsz, "invalid queue recipient %zu", i);
			return -1;
		}
		nr[i].addr = rcpts[i];
	}
	int r =
	    store_queue_add_dsn(s, path, sender, STORE_DSN_RET_NONE, NULL, nr, n_rcpts, err, errsz);
	free(nr);
	return r;
}

/* Inside a transaction: the DSN parameters of a message and of a
 * recipient, in their own tables (rows only when there is something). */
static int add_dsn_env(struct store_db *db, int64_t msg_id, int ret, const char *envid, char *err,
		       size_t errsz)
{
	if (ret == STORE_DSN_RET_NONE && (envid == NULL || envid[0] == '\0'))
		return 0;
	sqlite3_stmt *st = store_db_stmt(
	    db, "INSERT INTO queue_dsn_env (message_id, ret, envid) VALUES (?1, ?2, ?3)", err,
	    errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	sqlite3_bind_int(st, 2, ret);
	store_db_bind_text(st, 3, envid ? envid : "");
	return store_db_run(db, st, err, errsz);
}

static int add_dsn_rcpt(struct store_db *db, int64_t rcpt_id, const struct store_queue_new_rcpt *r,
			char *err, size_t errsz)
{
	if (r->notify == 0 && (r->orcpt == NULL || r->orcpt[0] == '\0'))
		return 0;
	sqlite3_stmt *st = store_db_stmt(
	    db, "INSERT INTO queue_dsn_rcpt (rcpt_id, notify, orcpt) VALUES (?1, ?2, ?3)", err,
	    errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, rcpt_id);
	sqlite3_bind_int(st, 2, (int)r->notify);
	store_db_bind_text(st, 3, r->orcpt ? r->orcpt : "");
	return store_db_run(db, st, err, errsz);
}

int store_queue_add_dsn(struct store *s, const char *path, const char *sender, int ret,
			const char *envid, const struct store_queue_new_rcpt *rcpts, size_t n_rcpts,
			char *err, size_t errsz)
{
	struct store_queue_item it = {path, sender, ret, envid, rcpts, n_rcpts, -1, 0, NULL, false};
	if (store_queue_add_batch(s, &it, 1, err, errsz) < 0 || it.status != 0)
		return -1;
	return 0;
}

/* Checks one item before anything is written.  0 or -1 (err). */
static int item_check(const struct store_queue_item *it, char *err, size_t errsz)
{
	if (it->n_rcpts == 0) {
		store_err(err, errsz, "no recipients to queue");
		return -1;
	}
	for (size_t i = 0; i < it->n_rcpts; i++) {
		const char *a = it->rcpts[i].addr;
		if (a == NULL || a[0] == '\0' || strlen(a) >= 256 ||
		    (it->rcpts[i].orcpt && strlen(it->rcpts[i].orcpt) > 500)) {
			store_err(err, errsz, "invalid queue recipient %zu", i);
			return -1;
		}
	}
	if (it->envid && strlen(it->envid) > 100) {
		store_err(err, errsz, "invalid envelope id");
		return -1;
	}
	return 0;
}

static int local_record(struct store_db *db, int64_t msg_id, const struct store_local_record *r,
			int64_t now, char *err, size_t errsz);

/* What the batch knows of an item once its file is linked. */
struct item_file {
	char file_id[25];
	char msgid[256];
	char received[512];
	uint64_t size;
	bool linked, created;
};

/* Inside a transaction: the rows of one message. */
static int item_insert(struct store_db *db, const struct store_queue_item *it,
		       const struct item_file *f, int64_t now, int64_t *id, char *err, size_t errsz)
{
	const char *sender = it->sender ? it->sender : "";
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO queue_messages (file, sender, created, msgid, received, size)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	    err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, f->file_id);
	store_db_bind_text(st, 2, sender);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	store_db_bind_text(st, 4, f->msgid);
	store_db_bind_text(st, 5, f->received);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)f->size);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	sqlite3_int64 msg_id = sqlite3_last_insert_rowid(db->h);
	if (add_dsn_env(db, msg_id, it->ret, it->envid, err, errsz) < 0)
		return -1;
	if (it->requiretls && store_requiretls_mark(db, msg_id, err, errsz) < 0)
		return -1;
	/* The local deliveries came first (they are done before queueing). */
	for (size_t i = 0; it->local != NULL && i < it->local->n; i++)
		if (local_record(db, msg_id, &it->local->v[i], now, err, errsz) < 0)
			return -1;
	for (size_t i = 0; i < it->n_rcpts; i++) {
		const struct store_queue_new_rcpt *r = &it->rcpts[i];
		/* A recipient delivered locally only waits for its success DSN
		 * (dsn = STORE_DSN_SUCCESS); the runner never claims it. */
		bool done = r->delivered;
		st = store_db_stmt(db,
				   "INSERT INTO queue_rcpts (message_id, rcpt, state, attempts,"
				   " next_attempt, last_reply, updated, dsn, status)"
				   " VALUES (?1, ?2, ?4, 0, ?3, ?5, ?3, ?6, ?7)",
				   err, errsz);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, msg_id);
		store_db_bind_text(st, 2, r->addr);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
		const char *state = !done ? "deferred" : r->expanded ? "expanded" : "delivered";
		const char *note = !done	 ? ""
				   : r->expanded ? "an alias: handed on to each of its addresses"
						 : "delivered to the local mailbox";
		store_db_bind_text(st, 4, state);
		store_db_bind_text(st, 5, note);
		sqlite3_bind_int(st, 6, done ? STORE_DSN_SUCCESS : STORE_DSN_NONE);
		store_db_bind_text(st, 7, done ? "2.0.0" : "");
		if (store_db_run(db, st, err, errsz) < 0 ||
		    add_dsn_rcpt(db, sqlite3_last_insert_rowid(db->h), r, err, errsz) < 0)
			return -1;
		/* A local recipient's delivery is in the log through
		 * store_queue_local_log (account, folder); an alias of several
		 * targets says here that it was expanded. */
		if (!done && log_event(db, msg_id, r->addr, now, "queued", "", "", "", sender, err,
				       errsz) < 0)
			return -1;
		if (done && r->expanded &&
		    log_event(db, msg_id, r->addr, now, state, "2.0.0", "", "", note, err, errsz) <
			0)
			return -1;
	}
	*id = msg_id;
	return 0;
}

int store_queue_add_batch(struct store *s, struct store_queue_item *items, size_t n, char *err,
			  size_t errsz)
{
	if (n == 0)
		return 0;
	struct item_file *f = xcalloc(n, sizeof *f);
	char e[256];
	int ret = 0;
	size_t n_linked = 0;
	for (size_t i = 0; i < n; i++) {
		items[i].status = -1;
		items[i].id = 0;
		/* store_message_file_size also checks that it is a regular file */
		if (item_check(&items[i], e, sizeof e) < 0 ||
		    store_message_file_size(items[i].path, &f[i].size, e, sizeof e) < 0)
			goto item_failed;
		read_head(items[i].path, f[i].msgid, f[i].received);
		store_message_file_id(items[i].path, f[i].file_id);
		if (queue_link(s, items[i].path, f[i].file_id, &f[i].created, e, sizeof e) < 0)
			goto item_failed;
		f[i].linked = true;
		n_linked++;
		continue;
	item_failed:
		if (ret == 0)
			store_err(err, errsz, "%s", e);
		ret = -1;
	}
	if (n_linked == 0)
		goto out;
	/* One folder sync for every link of the batch, before the rows that
	 * point at them exist. */
	char dir[PATH_MAX];
	if (store_path(dir, sizeof dir, s->dir, "queue") < 0 || fsutil_fsync_dir(dir) < 0) {
		store_err(err, errsz, "cannot sync the queue folder: %s", strerror(errno));
		goto undo;
	}
	struct store_db *db = &s->db;
	int64_t now = (int64_t)time(NULL);
	if (store_db_begin(db, err, errsz) < 0)
		goto undo;
	for (size_t i = 0; i < n; i++)
		if (f[i].linked &&
		    item_insert(db, &items[i], &f[i], now, &items[i].id, err, errsz) < 0) {
			store_db_rollback(db);
			goto undo;
		}
	if (store_db_commit(db, err, errsz) < 0)
		goto undo;
	for (size_t i = 0; i < n; i++)
		if (f[i].linked)
			items[i].status = 0;
	/* Wake the queue runner (the master relays this to it alone). */
	if (s->hook)
		s->hook(s->hook_ctx, STORE_NOTIFY_QUEUE);
	goto out;
undo:
	/* A database error fails the whole batch: nothing of it is queued. */
	ret = -1;
	for (size_t i = 0; i < n; i++)
		if (f[i].created)
			queue_unlink(s, f[i].file_id);
out:
	free(f);
	return ret;
}

/* ------------------------------------------------- local deliveries */

/* Inside a transaction: a finished queue_messages row (no file) for a
 * message delivered only locally.  Its id, or -1. */
static int64_t local_message(struct store_db *db, const struct store_local_item *it, int64_t now,
			     char *err, size_t errsz)
{
	struct item_file f;
	memset(&f, 0, sizeof f);
	if (store_message_file_size(it->path, &f.size, err, errsz) < 0)
		return -1;
	read_head(it->path, f.msgid, f.received);
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO queue_messages (file, sender, created, msgid, received, size, done)"
	    " VALUES ('', ?1, ?2, ?3, ?4, ?5, 1)",
	    err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, it->sender ? it->sender : "");
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	store_db_bind_text(st, 3, f.msgid);
	store_db_bind_text(st, 4, f.received);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)f.size);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	return sqlite3_last_insert_rowid(db->h);
}

/* Inside a transaction: the log row of one local delivery. */
static int local_record(struct store_db *db, int64_t msg_id, const struct store_local_record *r,
			int64_t now, char *err, size_t errsz)
{
	char account[256] = "";
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT address FROM accounts WHERE id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, r->account_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_db_column_text(st, 0, account, sizeof account);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "local log", err, errsz);
		return -1;
	}
	if (account[0] == '\0') /* removed meanwhile: still say which */
		snprintf(account, sizeof account, "account %lld", (long long)r->account_id);
	st = store_db_stmt(db,
			   "INSERT INTO queue_log (message_id, rcpt, time, event, status, reply,"
			   " account, folder, via) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
			   err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, msg_id);
	store_db_bind_text(st, 2, r->rcpt ? r->rcpt : "");
	sqlite3_bind_int64(st, 3, now);
	store_db_bind_text(st, 4, r->folder ? "delivered" : "discarded");
	store_db_bind_text(st, 5, r->folder ? "2.0.0" : "");
	store_db_bind_text(st, 6, r->note ? r->note : "");
	store_db_bind_text(st, 7, account);
	store_db_bind_text(st, 8, r->folder ? r->folder : "");
	store_db_bind_text(st, 9, r->via ? r->via : "");
	return store_db_run(db, st, err, errsz);
}

int store_queue_local_log(struct store *s, const struct store_local_item *items, size_t n,
			  char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	if (n == 0)
		return 0;
	int64_t now = (int64_t)time(NULL);
	/* Like store_queue_claim: the commit is not synced.  The next synced
	 * commit of server.db (the WAL is one file) makes it durable. */
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	if (store_db_begin(db, err, errsz) < 0)
		goto fail_sync;
	for (size_t i = 0; i < n; i++) {
		const struct store_local_item *it = &items[i];
		if (it->n == 0)
			continue;
		int64_t msg =
		    it->queue_id > 0 ? it->queue_id : local_message(db, it, now, err, errsz);
		if (msg < 0)
			goto fail;
		for (size_t j = 0; j < it->n; j++)
			if (local_record(db, msg, &it->v[j], now, err, errsz) < 0)
				goto fail;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto fail_sync;
	return store_db_set_sync(db, true, err, errsz);
fail:
	store_db_rollback(db);
fail_sync:
	(void)store_db_set_sync(db, true, NULL, 0);
	return -1;
}

/* ------------------------------------------------------------- schema */

/* The delivery log outlives the queue rows it describes until
 * store_queue_prune, so it has no foreign key. */
static const char queue_ddl[] =
    "CREATE TABLE IF NOT EXISTS queue_log ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " message_id INTEGER NOT NULL,"
    " rcpt TEXT NOT NULL DEFAULT '',"
    " time INTEGER NOT NULL,"
    " event TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT '',"
    " mx TEXT NOT NULL DEFAULT '',"
    " ip TEXT NOT NULL DEFAULT '',"
    " reply TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS queue_log_message ON queue_log(message_id, id);"
    "CREATE INDEX IF NOT EXISTS queue_rcpts_rcpt ON queue_rcpts(rcpt);";

/* Indexes on added columns: made after queue_columns.  The runner asks
 * for pending DSNs at every scan: without this, a scan of the history. */
static const char index_ddl[] =
    "CREATE INDEX IF NOT EXISTS queue_rcpts_dsn ON queue_rcpts(message_id) WHERE dsn != 0;"
    /* `tern trace ADDRESS` for local deliveries: only their rows. */
    "CREATE INDEX IF NOT EXISTS queue_log_local_rcpt ON queue_log(lower(rcpt))"
    " WHERE account != '';"
    "CREATE INDEX IF NOT EXISTS queue_log_local_account ON queue_log(account)"
    " WHERE account != '';";

/* DSN parameters (RFC 3461) in tables of their own, so that the queue
 * tables keep their columns: a row only for a message with RET/ENVID and
 * a recipient with NOTIFY/ORCPT.  They go with their queue rows. */
static const char dsn_ddl[] =
    "CREATE TABLE IF NOT EXISTS queue_dsn_env ("
    " message_id INTEGER PRIMARY KEY REFERENCES queue_messages(id) ON DELETE CASCADE,"
    " ret INTEGER NOT NULL DEFAULT 0,"
    " envid TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS queue_dsn_rcpt ("
    " rcpt_id INTEGER PRIMARY KEY REFERENCES queue_rcpts(id) ON DELETE CASCADE,"
    " notify INTEGER NOT NULL DEFAULT 0,"
    " orcpt TEXT NOT NULL DEFAULT '');";

/* Columns added to the tables of store.c (schema 1), with their type. */
static const struct {
	const char *table, *column, *decl;
} queue_columns[] = {
    {"queue_messages", "msgid", "TEXT NOT NULL DEFAULT ''"},
    {"queue_messages", "received", "TEXT NOT NULL DEFAULT ''"},
    {"queue_messages", "size", "INTEGER NOT NULL DEFAULT 0"},
    {"queue_messages", "done", "INTEGER NOT NULL DEFAULT 0"},
    {"queue_rcpts", "updated", "INTEGER NOT NULL DEFAULT 0"},
    {"queue_rcpts", "status", "TEXT NOT NULL DEFAULT ''"},
    {"queue_rcpts", "remote", "TEXT NOT NULL DEFAULT ''"},
    {"queue_rcpts", "dsn", "INTEGER NOT NULL DEFAULT 0"},
    {"queue_rcpts", "warned", "INTEGER NOT NULL DEFAULT 0"},
    {"queue_log", "tls_version", "TEXT NOT NULL DEFAULT ''"},
    {"queue_log", "tls_cipher", "TEXT NOT NULL DEFAULT ''"},
    {"queue_log", "tls_verified", "INTEGER NOT NULL DEFAULT 0"},
    {"queue_log", "tls_note", "TEXT NOT NULL DEFAULT ''"},
    {"queue_log", "account", "TEXT NOT NULL DEFAULT ''"},
    {"queue_log", "folder", "TEXT NOT NULL DEFAULT ''"},
    {"queue_log", "via", "TEXT NOT NULL DEFAULT ''"},
};
#define N_QUEUE_COLUMNS (sizeof queue_columns / sizeof queue_columns[0])

static int has_column(struct store_db *db, const char *table, const char *column)
{
	char sql[128];
	snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	int found = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(st, 1);
		if (name && !strcmp((const char *)name, column))
			found = 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? found : -1;
}

static int has_index(struct store_db *db, const char *name)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?1", -1,
			       &st, NULL) != SQLITE_OK)
		return -1;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int missing_columns(struct store_db *db)
{
	for (size_t i = 0; i < N_QUEUE_COLUMNS; i++) {
		int r = has_column(db, queue_columns[i].table, queue_columns[i].column);
		if (r <= 0)
			return r < 0 ? -1 : 1;
	}
	return 0;
}

int store_queue_schema(struct store *s, char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	/* Fast path without the write lock: usually all is there. */
	int m = missing_columns(db);
	if (m == 0 && has_column(db, "queue_log", "reply") == 1 &&
	    has_column(db, "queue_dsn_rcpt", "orcpt") == 1 &&
	    has_index(db, "queue_rcpts_dsn") == 1 && has_index(db, "queue_log_local_account") == 1)
		return 0;
	/* Several processes may open a new or old data folder at once: the
	 * write lock makes one of them upgrade and the others find it done. */
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	char *msg = NULL;
	if (sqlite3_exec(db->h, queue_ddl, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(db->h, dsn_ddl, NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < N_QUEUE_COLUMNS; i++) {
		int r = has_column(db, queue_columns[i].table, queue_columns[i].column);
		if (r < 0)
			goto fail;
		if (r == 1)
			continue;
		char sql[256];
		snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", queue_columns[i].table,
			 queue_columns[i].column, queue_columns[i].decl);
		if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK)
			goto fail;
	}
	if (sqlite3_exec(db->h, index_ddl, NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	return store_db_commit(db, err, errsz);
fail:
	store_err(err, errsz, "database error: queue schema: %s",
		  msg ? msg : sqlite3_errmsg(db->h));
	sqlite3_free(msg);
	store_db_rollback(db);
	return -1;
}

/* ---------------------------------------------------- the queue runner */

#define RCPT_COLUMNS                                                                               \
	"id, message_id, rcpt, state, attempts, next_attempt, updated, status, last_reply,"        \
	" remote, dsn, warned, coalesce(notify, 0), coalesce(orcpt, '')"
/* queue_rcpts with its DSN parameters (NULL columns without a row). */
#define RCPT_FROM " queue_rcpts LEFT JOIN queue_dsn_rcpt ON rcpt_id = queue_rcpts.id"

static void read_rcpt(sqlite3_stmt *st, void *row)
{
	struct store_queue_rcpt *r = row;
	memset(r, 0, sizeof *r);
	r->id = sqlite3_column_int64(st, 0);
	r->message_id = sqlite3_column_int64(st, 1);
	store_db_column_text(st, 2, r->rcpt, sizeof r->rcpt);
	store_db_column_text(st, 3, r->state, sizeof r->state);
	r->attempts = sqlite3_column_int64(st, 4);
	r->next_attempt = sqlite3_column_int64(st, 5);
	r->updated = sqlite3_column_int64(st, 6);
	store_db_column_text(st, 7, r->status, sizeof r->status);
	store_db_column_text(st, 8, r->last_reply, sizeof r->last_reply);
	store_db_column_text(st, 9, r->remote, sizeof r->remote);
	r->dsn = sqlite3_column_int(st, 10);
	r->warned = sqlite3_column_int(st, 11) != 0;
	r->notify = (unsigned)sqlite3_column_int(st, 12);
	store_db_column_text(st, 13, r->orcpt, sizeof r->orcpt);
}

int store_queue_recover(struct store *s, char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	sqlite3_stmt *st =
	    store_db_stmt(db,
			  "UPDATE queue_rcpts SET state = 'deferred', next_attempt = ?1"
			  " WHERE state = 'sending'",
			  err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	return store_db_run(db, st, err, errsz);
}

int store_queue_claim(struct store *s, int64_t now, size_t max, struct store_queue_rcpt *out,
		      size_t *n_out, char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	*n_out = 0;
	/* A claim lost to a power failure costs nothing: the rows are
	 * "deferred" again, as store_queue_recover makes them at start
	 * anyway.  So the claim's commit is not synced. */
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	if (store_db_begin(db, err, errsz) < 0)
		goto fail_sync;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT " RCPT_COLUMNS " FROM" RCPT_FROM
					 " WHERE state = 'deferred' AND next_attempt <= ?1"
					 " ORDER BY next_attempt, id LIMIT ?2",
					 err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)max);
	size_t n;
	if (store_db_fetch(db, st, out, sizeof *out, max, read_rcpt, &n, "queue claim", err,
			   errsz) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		st = store_db_stmt(db, "UPDATE queue_rcpts SET state = 'sending' WHERE id = ?1",
				   err, errsz);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, out[i].id);
		if (store_db_run(db, st, err, errsz) < 0)
			goto fail;
		snprintf(out[i].state, sizeof out[i].state, "sending");
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto fail_sync;
	*n_out = n;
	return store_db_set_sync(db, true, err, errsz);
fail:
	store_db_rollback(db);
fail_sync:
	(void)store_db_set_sync(db, true, NULL, 0);
	return -1;
}

int store_queue_next_due(struct store *s, int64_t *when)
{
	struct store_db *db = &s->db;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT min(next_attempt) FROM queue_rcpts WHERE state = 'deferred'", NULL, 0);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	int ret = -1;
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
			ret = 0;
		} else {
			*when = sqlite3_column_int64(st, 0);
			ret = 1;
		}
	}
	sqlite3_reset(st);
	return ret;
}

int store_queue_message_get(struct store *s, int64_t id, struct store_queue_message *m)
{
	struct store_db *db = &s->db;
	memset(m, 0, sizeof *m);
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT id, file, sender, created, msgid, received, size,"
					 " coalesce(ret, 0), coalesce(envid, '')"
					 " FROM queue_messages LEFT JOIN queue_dsn_env"
					 " ON message_id = queue_messages.id WHERE id = ?1",
					 NULL, 0);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (rc == SQLITE_ROW) {
		m->id = sqlite3_column_int64(st, 0);
		store_db_column_text(st, 1, m->file, sizeof m->file);
		store_db_column_text(st, 2, m->sender, sizeof m->sender);
		m->created = sqlite3_column_int64(st, 3);
		store_db_column_text(st, 4, m->msgid, sizeof m->msgid);
		store_db_column_text(st, 5, m->received, sizeof m->received);
		m->size = (uint64_t)sqlite3_column_int64(st, 6);
		m->dsn_ret = sqlite3_column_int(st, 7);
		store_db_column_text(st, 8, m->dsn_envid, sizeof m->dsn_envid);
	}
	sqlite3_reset(st);
	if (ret == 1) {
		int rt = store_requiretls_get(s, id);
		if (rt < 0)
			return -1;
		m->requiretls = rt == 1;
	}
	return ret;
}

int store_queue_path(struct store *s, const char *file, char *out, size_t outsz)
{
	if (!store_name_is_file_id(file, strlen(file)))
		return -1;
	int n = snprintf(out, outsz, "%s/queue/%s", s->dir, file);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* message_id of a recipient row, or 0 (removed meanwhile). */
static int64_t rcpt_message(struct store_db *db, int64_t rcpt_id, char rcpt[256])
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT message_id, rcpt FROM queue_rcpts WHERE id = ?1", NULL, 0);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, rcpt_id);
	int64_t id = 0;
	rcpt[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		store_db_column_text(st, 1, rcpt, 256);
	}
	sqlite3_reset(st);
	return id;
}

/* Inside a transaction: marks the message done when no recipient is
 * waiting (deferred, sending, hold) and no DSN is pending; file (25 bytes)
 * gets the name of its file in DATA/queue/, which the caller removes after
 * the commit.  1 finished now, 0 not (still busy, gone, or done before),
 * -1 error. */
static int finish_in_txn(struct store *s, int64_t message_id, char *file, char *err,
			 size_t errsz)
{
	struct store_db *db = &s->db;
	sqlite3_stmt *st =
	    store_db_stmt(db,
			  "SELECT count(*) FROM queue_rcpts WHERE message_id = ?1 AND"
			  " (state IN ('deferred', 'sending', 'hold') OR dsn != 0)",
			  err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	int64_t active = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		active = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (active != 0) {
		if (active < 0)
			store_db_error(db, "queue finish", err, errsz);
		return active < 0 ? -1 : 0;
	}
	struct store_queue_message m;
	int got = store_queue_message_get(s, message_id, &m);
	if (got <= 0) {
		if (got < 0)
			store_db_error(db, "queue finish", err, errsz);
		return got;
	}
	st = store_db_stmt(db, "UPDATE queue_messages SET done = 1 WHERE id = ?1 AND done = 0", err,
			   errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_id);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	if (sqlite3_changes(db->h) == 0)
		return 0; /* someone else finished it */
	memcpy(file, m.file, sizeof m.file);
	return 1;
}

/* After the commit: removes a finished message's file. */
static int finish_unlink(struct store *s, const char *file, char *err, size_t errsz)
{
	char path[PATH_MAX];
	if (store_queue_path(s, file, path, sizeof path) == 0 && unlink(path) < 0 &&
	    errno != ENOENT) {
		store_err(err, errsz, "cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int store_queue_update(struct store *s, const struct store_queue_outcome *o, size_t n, char *err,
		       size_t errsz)
{
	struct store_db *db = &s->db;
	int64_t now = (int64_t)time(NULL);
	if (n == 0)
		return 0;
	int ret = -1;
	int64_t *msgs = xcalloc(n, sizeof *msgs);
	char(*files)[25] = xcalloc(n, sizeof *files);
	size_t n_files = 0;
	if (store_db_begin(db, err, errsz) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char rcpt[256];
		int64_t msg = rcpt_message(db, o[i].rcpt_id, rcpt);
		if (msg < 0) {
			store_db_error(db, "queue update", err, errsz);
			goto fail;
		}
		if (msg == 0)
			continue; /* removed meanwhile: nothing to record it on */
		char remote[300] = "";
		if (o[i].mx && o[i].mx[0])
			snprintf(remote, sizeof remote, "%s [%s]", o[i].mx, o[i].ip ? o[i].ip : "");
		/* Only a row the runner owns changes state: `tern queue hold` or
		 * `remove` during the attempt win. */
		sqlite3_stmt *st = store_db_stmt(
		    db,
		    "UPDATE queue_rcpts SET state = ?2, next_attempt = ?3,"
		    " attempts = attempts + ?4, dsn = ?5, status = ?6, last_reply = ?7,"
		    " remote = CASE WHEN ?8 = '' THEN remote ELSE ?8 END, updated = ?9"
		    " WHERE id = ?1 AND state IN ('sending', 'deferred')",
		    err, errsz);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, o[i].rcpt_id);
		store_db_bind_text(st, 2, o[i].state);
		sqlite3_bind_int64(st, 3, o[i].next_attempt);
		sqlite3_bind_int(st, 4, o[i].attempt ? 1 : 0);
		sqlite3_bind_int(st, 5, o[i].dsn);
		store_db_bind_text(st, 6, o[i].status ? o[i].status : "");
		store_db_bind_text(st, 7, o[i].reply ? o[i].reply : "");
		store_db_bind_text(st, 8, remote);
		sqlite3_bind_int64(st, 9, now);
		if (store_db_run(db, st, err, errsz) < 0)
			goto fail;
		if (o[i].attempt && log_event(db, msg, rcpt, now, "attempt", o[i].status, o[i].mx,
					      o[i].ip, o[i].reply, err, errsz) < 0)
			goto fail;
		if (o[i].attempt && o[i].tls_version && o[i].tls_version[0] &&
		    log_attempt_tls(db, &o[i], err, errsz) < 0)
			goto fail;
		if (log_event(db, msg, rcpt, now, o[i].state, o[i].status, o[i].mx, o[i].ip,
			      o[i].attempt ? "" : o[i].reply, err, errsz) < 0)
			goto fail;
		msgs[i] = msg;
	}
	/* Messages with nothing left to do are finished in the same
	 * transaction; each distinct one once. */
	qsort(msgs, n, sizeof *msgs, cmp_id);
	for (size_t i = 0; i < n; i++) {
		if (msgs[i] == 0 || (i > 0 && msgs[i] == msgs[i - 1]))
			continue;
		int r = finish_in_txn(s, msgs[i], files[n_files], err, errsz);
		if (r < 0)
			goto fail;
		n_files += (size_t)r;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto out;
	ret = 0;
	for (size_t i = 0; i < n_files; i++)
		if (finish_unlink(s, files[i], err, errsz) < 0)
			ret = -1;
	goto out;
fail:
	store_db_rollback(db);
out:
	free(msgs);
	free(files);
	return ret;
}

int store_queue_dsn_pending(struct store *s, int (*cb)(void *ctx, int64_t message_id), void *ctx,
			    char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT DISTINCT message_id FROM queue_rcpts WHERE dsn != 0 LIMIT 1000", err,
	    errsz);
	if (st == NULL)
		return -1;
	int64_t ids[1000];
	size_t n = 0;
	int rc;
	while (n < 1000 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	for (size_t i = 0; i < n; i++)
		if (cb(ctx, ids[i]) != 0)
			break;
	return 0;
}

int store_queue_dsn_done(struct store *s, int64_t message_id, int kind, char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "UPDATE queue_rcpts SET dsn = 0,"
					 " warned = CASE WHEN ?2 = 2 THEN 1 ELSE warned END"
					 " WHERE message_id = ?1 AND dsn = ?2",
					 err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, message_id);
	sqlite3_bind_int(st, 2, kind);
	if (store_db_run(db, st, err, errsz) < 0 ||
	    log_event(db, message_id, "", (int64_t)time(NULL), "dsn", "", "", "",
		      kind == STORE_DSN_DELAY     ? "delay notice sent to the sender"
		      : kind == STORE_DSN_SUCCESS ? "success notice sent to the sender"
						  : "failure notice sent to the sender",
		      err, errsz) < 0)
		goto fail;
	return store_db_commit(db, err, errsz);
fail:
	store_db_rollback(db);
	return -1;
}

int store_queue_mark_delayed(struct store *s, int64_t created_before, size_t *n_out, char *err,
			     size_t errsz)
{
	struct store_db *db = &s->db;
	if (n_out)
		*n_out = 0;
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "UPDATE queue_rcpts SET dsn = 2 WHERE state = 'deferred' AND warned = 0"
	    " AND dsn = 0 AND attempts > 0 AND message_id IN (SELECT id FROM queue_messages"
	    " WHERE created < ?1 AND sender != '')"
	    /* RFC 3461 5.2.5: a NOTIFY without DELAY asks for no delay notice */
	    " AND NOT EXISTS (SELECT 1 FROM queue_dsn_rcpt WHERE rcpt_id = queue_rcpts.id"
	    " AND notify != 0 AND (notify & 8) = 0)",
	    err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, created_before);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	if (n_out)
		*n_out = (size_t)sqlite3_changes(db->h);
	return 0;
}

int store_queue_finish(struct store *s, int64_t message_id, bool *finished, char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	if (finished)
		*finished = false;
	char file[25];
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	int r = finish_in_txn(s, message_id, file, err, errsz);
	if (r < 0) {
		store_db_rollback(db);
		return -1;
	}
	if (store_db_commit(db, err, errsz) < 0)
		return -1;
	if (r == 0)
		return 0;
	if (finished)
		*finished = true;
	return finish_unlink(s, file, err, errsz);
}

/* ------------------------------------------------------ administration */

int store_queue_rcpts(struct store *s, int64_t message_id,
		      int (*cb)(void *ctx, const struct store_queue_rcpt *r), void *ctx, char *err,
		      size_t errsz)
{
	struct store_db *db = &s->db;
	const char *sql = message_id > 0
			      ? "SELECT " RCPT_COLUMNS " FROM" RCPT_FROM
				" WHERE message_id = ?1 ORDER BY id"
			      : "SELECT " RCPT_COLUMNS " FROM" RCPT_FROM " WHERE message_id IN"
				" (SELECT message_id FROM queue_rcpts WHERE state IN"
				" ('deferred', 'sending', 'hold')) ORDER BY message_id, id";
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		store_db_error(db, "queue list", err, errsz);
		return -1;
	}
	if (message_id > 0)
		sqlite3_bind_int64(st, 1, message_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_queue_rcpt r;
		read_rcpt(st, &r);
		if (cb(ctx, &r) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		store_db_error(db, "queue list", err, errsz);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_queue_log(struct store *s, int64_t message_id,
		    int (*cb)(void *ctx, const struct store_queue_event *e), void *ctx, char *err,
		    size_t errsz)
{
	struct store_db *db = &s->db;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT time, rcpt, event, status, mx, ip, reply, tls_version,"
			       " tls_cipher, tls_verified, tls_note, account, folder, via"
			       " FROM queue_log"
			       " WHERE message_id = ?1 ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK) {
		store_db_error(db, "queue log", err, errsz);
		return -1;
	}
	sqlite3_bind_int64(st, 1, message_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_queue_event e;
		memset(&e, 0, sizeof e);
		e.time = sqlite3_column_int64(st, 0);
		store_db_column_text(st, 1, e.rcpt, sizeof e.rcpt);
		store_db_column_text(st, 2, e.event, sizeof e.event);
		store_db_column_text(st, 3, e.status, sizeof e.status);
		store_db_column_text(st, 4, e.mx, sizeof e.mx);
		store_db_column_text(st, 5, e.ip, sizeof e.ip);
		store_db_column_text(st, 6, e.reply, sizeof e.reply);
		store_db_column_text(st, 7, e.tls_version, sizeof e.tls_version);
		store_db_column_text(st, 8, e.tls_cipher, sizeof e.tls_cipher);
		e.tls_verified = sqlite3_column_int(st, 9) != 0;
		store_db_column_text(st, 10, e.tls_note, sizeof e.tls_note);
		store_db_column_text(st, 11, e.account, sizeof e.account);
		store_db_column_text(st, 12, e.folder, sizeof e.folder);
		store_db_column_text(st, 13, e.via, sizeof e.via);
		if (cb(ctx, &e) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		store_db_error(db, "queue log", err, errsz);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Runs one admin statement with ?1 = message id, ?2 = now. */
static int admin_exec(struct store_db *db, const char *sql, int64_t message_id, int64_t now,
		      size_t *changed, char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		store_db_error(db, "queue admin", err, errsz);
		return -1;
	}
	sqlite3_bind_int64(st, 1, message_id);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		store_db_error(db, "queue admin", err, errsz);
	else if (changed)
		*changed += (size_t)sqlite3_changes(db->h);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_queue_admin(struct store *s, int64_t message_id, const char *action, size_t *n_changed,
		      char *err, size_t errsz)
{
	static const struct {
		const char *action, *sql, *event;
	} acts[] = {
	    {"retry",
	     "UPDATE queue_rcpts SET state = 'deferred', next_attempt = ?2, updated = ?2"
	     " WHERE message_id = ?1 AND state IN ('deferred', 'hold')",
	     "retry"},
	    {"hold",
	     "UPDATE queue_rcpts SET state = 'hold', updated = ?2"
	     " WHERE message_id = ?1 AND state IN ('deferred', 'sending')",
	     "hold"},
	    {"release",
	     "UPDATE queue_rcpts SET state = 'deferred', next_attempt = ?2, updated = ?2"
	     " WHERE message_id = ?1 AND state = 'hold'",
	     "release"},
	    {"remove",
	     "UPDATE queue_rcpts SET state = 'removed', dsn = 0, updated = ?2"
	     " WHERE message_id = ?1 AND (state IN ('deferred', 'sending', 'hold') OR dsn != 0)",
	     "removed"},
	};
	size_t a;
	for (a = 0; a < sizeof acts / sizeof acts[0]; a++)
		if (!strcmp(acts[a].action, action))
			break;
	if (a == sizeof acts / sizeof acts[0]) {
		store_err(err, errsz, "unknown queue action \"%s\"", action);
		return -1;
	}
	struct store_db *db = &s->db;
	int64_t now = (int64_t)time(NULL);
	size_t changed = 0;
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	if (admin_exec(db, acts[a].sql, message_id, now, &changed, err, errsz) < 0)
		goto fail;
	if (changed > 0 && log_event(db, message_id, "", now, acts[a].event, "", "", "",
				     "by the administrator", err, errsz) < 0)
		goto fail;
	if (store_db_commit(db, err, errsz) < 0)
		return -1;
	if (n_changed)
		*n_changed = changed;
	if (changed > 0 && !strcmp(action, "remove") &&
	    store_queue_finish(s, message_id, NULL, err, errsz) < 0)
		return -1;
	if (changed > 0 && s->hook && strcmp(action, "hold") != 0)
		s->hook(s->hook_ctx, STORE_NOTIFY_QUEUE);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

int store_queue_find(struct store *s, const char *key, int64_t *ids, size_t max, size_t *n_out,
		     char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	*n_out = 0;
	char k[300];
	size_t len = strlen(key);
	if (len >= sizeof k) {
		store_err(err, errsz, "search key too long");
		return -1;
	}
	memcpy(k, key, len + 1);
	if (len >= 2 && k[0] == '<' && k[len - 1] == '>') {
		k[len - 1] = '\0';
		memmove(k, k + 1, len - 1);
	}
	bool digits = k[0] != '\0' && strspn(k, "0123456789") == strlen(k);
	/* Our Received: line ends "... id SMTPID[ for <...>]; date": match the
	 * id as a word. */
	char like[320];
	snprintf(like, sizeof like, "%% id %s%%", k);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(
		db->h,
		"SELECT id FROM queue_messages WHERE (?1 AND id = CAST(?2 AS INTEGER))"
		" OR (file = ?2 AND ?2 != '') OR msgid = ?2 OR lower(sender) = lower(?2)"
		" OR (received LIKE ?3 AND ?2 != '')"
		" OR id IN (SELECT message_id FROM queue_rcpts WHERE rcpt = lower(?2))"
		/* Local deliveries, each through its partial index. */
		" OR id IN (SELECT message_id FROM queue_log WHERE account != ''"
		" AND lower(rcpt) = lower(?2))"
		" OR id IN (SELECT message_id FROM queue_log WHERE account != ''"
		" AND account = lower(?2))"
		" ORDER BY id DESC LIMIT ?4",
		-1, &st, NULL) != SQLITE_OK) {
		store_db_error(db, "queue find", err, errsz);
		return -1;
	}
	sqlite3_bind_int(st, 1, digits ? 1 : 0);
	store_db_bind_text(st, 2, k);
	store_db_bind_text(st, 3, like);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)max);
	int rc;
	size_t n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < max)
		ids[n++] = sqlite3_column_int64(st, 0);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		store_db_error(db, "queue find", err, errsz);
	sqlite3_finalize(st);
	*n_out = n;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

int store_queue_prune(struct store *s, int64_t before, size_t *n_out, char *err, size_t errsz)
{
	struct store_db *db = &s->db;
	size_t changed = 0;
	if (n_out)
		*n_out = 0;
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	/* created: a message delivered only locally has no recipient row. */
	const char *old = "SELECT id FROM queue_messages WHERE done = 1 AND created < ?2 AND"
			  " id NOT IN (SELECT message_id FROM queue_rcpts WHERE updated >= ?2)";
	char sql[512];
	snprintf(sql, sizeof sql, "DELETE FROM queue_log WHERE message_id IN (%s) AND ?1 = ?1",
		 old);
	if (admin_exec(db, sql, 0, before, NULL, err, errsz) < 0)
		goto fail;
	snprintf(sql, sizeof sql, "DELETE FROM queue_messages WHERE id IN (%s) AND ?1 = ?1", old);
	if (admin_exec(db, sql, 0, before, &changed, err, errsz) < 0)
		goto fail;
	if (store_db_commit(db, err, errsz) < 0)
		return -1;
	if (n_out)
		*n_out = changed;
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}
