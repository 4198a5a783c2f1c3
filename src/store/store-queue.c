/*
 * store-queue.c - handing a message to the outbound queue: the file is
 * linked into DATA/queue/ (and that folder fsync'ed) before one server.db
 * transaction records the message and a "deferred" row per recipient.
 * The queue runner (src/queue) owns those rows from then on.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "store-private.h"

/* Links path into DATA/queue/ as file_id; *created tells whether we made
 * the entry (an entry for the same inode is fine). */
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
	if (fsutil_fsync_dir(dir) < 0) {
		store_err(err, errsz, "cannot sync %s: %s", dir, strerror(errno));
		if (*created)
			(void)unlink(dst);
		*created = false;
		return -1;
	}
	return 0;
}

int store_queue_add(struct store *s, const char *path, const char *sender,
		    char (*rcpts)[256], size_t n_rcpts, char *err, size_t errsz)
{
	if (n_rcpts == 0) {
		store_err(err, errsz, "no recipients to queue");
		return -1;
	}
	for (size_t i = 0; i < n_rcpts; i++) {
		if (memchr(rcpts[i], '\0', sizeof rcpts[i]) == NULL || rcpts[i][0] == '\0') {
			store_err(err, errsz, "invalid queue recipient %zu", i);
			return -1;
		}
	}
	if (sender == NULL)
		sender = "";
	uint64_t size;  /* not needed: this checks that path is a regular file */
	if (store_message_file_size(path, &size, err, errsz) < 0)
		return -1;
	char file_id[25];
	store_message_file_id(path, file_id);
	bool created;
	if (queue_link(s, path, file_id, &created, err, errsz) < 0)
		return -1;

	struct store_db *db = &s->db;
	time_t now = time(NULL);
	if (store_db_begin(db, err, errsz) < 0)
		goto fail_link;
	sqlite3_stmt *st = store_db_stmt(
		db, "INSERT INTO queue_messages (file, sender, created) VALUES (?1, ?2, ?3)", err,
		errsz);
	if (st == NULL)
		goto fail;
	store_db_bind_text(st, 1, file_id);
	store_db_bind_text(st, 2, sender);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	if (store_db_run(db, st, err, errsz) < 0)
		goto fail;
	sqlite3_int64 msg_id = sqlite3_last_insert_rowid(db->h);
	for (size_t i = 0; i < n_rcpts; i++) {
		st = store_db_stmt(db,
				   "INSERT INTO queue_rcpts (message_id, rcpt, state, attempts,"
				   " next_attempt, last_reply) VALUES (?1, ?2, 'deferred', 0, ?3, '')",
				   err, errsz);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, msg_id);
		store_db_bind_text(st, 2, rcpts[i]);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
		if (store_db_run(db, st, err, errsz) < 0)
			goto fail;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto fail;
	return 0;
fail:
	store_db_rollback(db);
fail_link:
	if (created) {
		char dir[PATH_MAX], dst[PATH_MAX];
		if (store_path(dir, sizeof dir, s->dir, "queue") == 0 &&
		    store_path(dst, sizeof dst, dir, file_id) == 0)
			(void)unlink(dst);
	}
	return -1;
}
