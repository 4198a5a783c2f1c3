/*
 * store-requiretls.c - which queued messages carry REQUIRETLS (RFC 8689):
 * a row in queue_requiretls per such message, written in the same
 * transaction that queues it (store_queue_add_batch), so the mark is as
 * durable as the message, and deleted with it (ON DELETE CASCADE).
 */
#include "store-private.h"

static const char requiretls_ddl[] =
    "CREATE TABLE IF NOT EXISTS queue_requiretls ("
    " message_id INTEGER PRIMARY KEY REFERENCES queue_messages(id) ON DELETE CASCADE);";

int store_requiretls_schema(struct store *s, char *err, size_t errsz)
{
	return store_db_exec_ddl(&s->db, requiretls_ddl, "creating queue_requiretls", err, errsz);
}

int store_requiretls_mark(struct store_db *db, int64_t msg_id, char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "INSERT INTO queue_requiretls (message_id) VALUES (?1)", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)msg_id);
	return store_db_run(db, st, err, errsz);
}

int store_requiretls_get(struct store *s, int64_t msg_id)
{
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "SELECT 1 FROM queue_requiretls WHERE message_id = ?1", NULL, 0);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)msg_id);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}
