/*
 * store-queue-stats.c - the size of the outbound queue, for the metrics
 * endpoint and `tern status` (src/lib/metrics.h): how many messages and
 * recipients wait, and when the oldest of them was queued.  One read of
 * server.db (the rcpts' state index), no write.
 */
#include <sqlite3.h>

#include "store-private.h"
#include "store.h"

int store_queue_stats(struct store *s, struct store_queue_stats *out, char *err, size_t errsz)
{
	out->messages = 0;
	out->recipients = 0;
	out->oldest = 0;
	struct store_db *db = &s->db;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT COUNT(DISTINCT r.message_id), COUNT(*), MIN(m.created)"
			       " FROM queue_rcpts r JOIN queue_messages m ON m.id = r.message_id"
			       " WHERE r.state IN ('deferred', 'sending', 'hold')",
			       -1, &st, NULL) != SQLITE_OK) {
		store_db_error(db, "queue stats", err, errsz);
		return -1;
	}
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->messages = (uint64_t)sqlite3_column_int64(st, 0);
		out->recipients = (uint64_t)sqlite3_column_int64(st, 1);
		out->oldest = sqlite3_column_int64(st, 2); /* NULL: 0 */
	} else {
		store_db_error(db, "queue stats", err, errsz);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}
