/*
 * store-db.c - the SQLite helpers every store file uses: opening a database
 * with Tern's durability settings, race-safe schema creation, a per
 * connection cache of prepared statements and the transaction verbs.
 *
 * Durability: WAL with synchronous=FULL fsyncs the WAL at every commit, so
 * a committed row survives power loss; that is the promise behind "250 OK"
 * and APPEND's "OK".  Several processes share each file; BEGIN IMMEDIATE
 * takes the write lock up front (waiting up to the busy timeout), so a
 * write transaction never fails half-way on a lock upgrade.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "store-private.h"

#define BUSY_TIMEOUT_MS 10000
/* Pages are read through a memory map of up to this many bytes of the
 * file (SQLite maps no more than the file's size), not copied by pread
 * into each connection's small page cache: random lookups in a database
 * larger than that cache (a user's spam tokens, a big mailbox's index)
 * cost a memory access instead of a system call each.  Measured: scoring
 * 1,950 messages against a 4.9 MB token database, 11-13 s before, 2.4-3.7 s
 * after (bench/spam). */
#define STORE_DB_MMAP_SIZE "268435456"

void store_db_error(struct store_db *db, const char *what, char *err, size_t errsz)
{
	store_err(err, errsz, "database error: %s: %s", what,
		  db->h ? sqlite3_errmsg(db->h) : "not open");
}

/* Runs a pragma or other one-off statement and copies the first column of
 * its first row (if any) into out.
 *
 * SQLITE_BUSY is retried here for up to the busy timeout: SQLite does not
 * call the busy handler everywhere (switching a fresh file to WAL while
 * another process opens it is one case), and these statements run when
 * several workers open a new data folder at the same moment. */
static int exec_one(struct store_db *db, const char *sql, char *out, size_t outsz, char *err,
		    size_t errsz)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned attempt = 0;; attempt++) {
		sqlite3_stmt *st = NULL;
		int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
		if (out && outsz)
			out[0] = '\0';
		if (rc == SQLITE_OK) {
			while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
				if (out && outsz && out[0] == '\0')
					store_db_column_text(st, 0, out, outsz);
			}
		}
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long ms = (long long)(now.tv_sec - start.tv_sec) * 1000 +
			       (now.tv_nsec - start.tv_nsec) / 1000000;
		if ((rc & 0xff) != SQLITE_BUSY || ms >= BUSY_TIMEOUT_MS) {
			store_db_error(db, sql, err, errsz);
			return -1;
		}
		/* 1, 2, 4 ... 32 ms between attempts. */
		struct timespec pause = {0, (1L << (attempt < 5 ? attempt : 5)) * 1000000L};
		nanosleep(&pause, NULL);
	}
}

/* Waits for another process's write lock.  SQLite's own busy timeout
 * sleeps 1, 2, 5, 10, ... 100 ms between tries, which costs a worker
 * several milliseconds for a lock that is held for one commit (well under
 * one): with the queue runner and the workers all writing server.db, that
 * stalled every event loop.  Here: 50 us doubling to 2 ms, for up to
 * BUSY_TIMEOUT_MS in all.  A thread waits for one lock at a time, so the
 * start time can live in a thread-local. */
static int busy_wait(void *arg, int count)
{
	static _Thread_local struct timespec start;
	(void)arg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (count == 0)
		start = now;
	long long us = (long long)(now.tv_sec - start.tv_sec) * 1000000 +
		       (now.tv_nsec - start.tv_nsec) / 1000;
	if (us >= (long long)BUSY_TIMEOUT_MS * 1000)
		return 0;
	long step = count < 6 ? 50L << count : 2000L;
	struct timespec pause = {0, step * 1000L};
	nanosleep(&pause, NULL);
	return 1;
}

int store_db_open(struct store_db *db, const char *path, bool create, char *err, size_t errsz)
{
	memset(db, 0, sizeof *db);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
		store_err(err, errsz, "cannot open %s: %s", path,
			  db->h ? sqlite3_errmsg(db->h) : "out of memory");
		sqlite3_close(db->h);
		db->h = NULL;
		return -1;
	}
	sqlite3_extended_result_codes(db->h, 1);
	/* First, so that the pragmas below wait for other processes too. */
	sqlite3_busy_handler(db->h, busy_wait, NULL);
	char mode[16];
	if (exec_one(db, "PRAGMA journal_mode=WAL", mode, sizeof mode, err, errsz) < 0)
		goto fail;
	if (strcmp(mode, "wal") != 0) {
		store_err(err, errsz, "cannot use WAL mode for %s (journal mode %s)", path, mode);
		goto fail;
	}
	if (exec_one(db, "PRAGMA synchronous=FULL", NULL, 0, err, errsz) < 0 ||
	    exec_one(db, "PRAGMA foreign_keys=ON", NULL, 0, err, errsz) < 0 ||
	    exec_one(db, "PRAGMA mmap_size=" STORE_DB_MMAP_SIZE, NULL, 0, err, errsz) < 0)
		goto fail;
	return 0;
fail:
	store_db_close(db);
	return -1;
}

void store_db_close(struct store_db *db)
{
	if (db->h == NULL)
		return;
	for (size_t i = 0; i < STORE_DB_STMT_SLOTS; i++) {
		if (db->stmt[i])
			sqlite3_finalize(db->stmt[i]);
	}
	sqlite3_close(db->h);
	memset(db, 0, sizeof *db);
}

int store_db_exec_ddl(struct store_db *db, const char *ddl, const char *what, char *err,
		      size_t errsz)
{
	char *msg = NULL;
	if (sqlite3_exec(db->h, ddl, NULL, NULL, &msg) != SQLITE_OK) {
		store_err(err, errsz, "database error: %s: %s", what, msg ? msg : "unknown");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Parses PRAGMA user_version's text; -1 if it is not a small number. */
static int parse_version(const char *v)
{
	int n = 0;
	if (*v == '\0')
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > 100000)
			return -1;
		n = n * 10 + (*v - '0');
	}
	return n;
}

int store_db_schema(struct store_db *db, const char *ddl, int version,
		    const struct store_db_upgrade *steps, size_t n_steps, char *err, size_t errsz)
{
	char v[32];
	/* Fast path without the write lock: the schema is usually there and
	 * current. */
	if (exec_one(db, "PRAGMA user_version", v, sizeof v, err, errsz) < 0)
		return -1;
	int have = parse_version(v);
	if (have == version)
		return 0;
	if (have > version || have < 0) {
		store_err(err, errsz, "database schema version %s, this Tern knows %d", v, version);
		return -1;
	}
	/* Two processes may get here at once: the write lock makes one of them
	 * create (or upgrade) the schema and the other find it done. */
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	if (exec_one(db, "PRAGMA user_version", v, sizeof v, err, errsz) < 0)
		goto fail;
	have = parse_version(v);
	if (have == 0) {
		/* A new file: ddl is the current schema. */
		if (store_db_exec_ddl(db, ddl, "creating schema", err, errsz) < 0)
			goto fail;
		have = version;
	}
	/* An older file: each step takes it one version up, all in this one
	 * transaction, so a failed step leaves the file as it was. */
	for (size_t i = 0; i < n_steps && have >= 0 && have < version; i++) {
		if (steps[i].to != have + 1)
			continue;
		if (store_db_exec_ddl(db, steps[i].sql, steps[i].name, err, errsz) < 0)
			goto fail;
		have = steps[i].to;
	}
	if (have != version) {
		store_err(err, errsz, "database schema version %s, this Tern knows %d", v, version);
		goto fail;
	}
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA user_version=%d", version);
	if (exec_one(db, sql, NULL, 0, err, errsz) < 0)
		goto fail;
	return store_db_commit(db, err, errsz);
fail:
	store_db_rollback(db);
	return -1;
}

sqlite3_stmt *store_db_stmt(struct store_db *db, const char *sql, char *err, size_t errsz)
{
	if (db->h == NULL) {
		store_err(err, errsz, "database error: not open");
		return NULL;
	}
	uintptr_t key = (uintptr_t)sql;
	size_t i = (size_t)((key >> 3) * 2654435761u) % STORE_DB_STMT_SLOTS;
	while (db->sql[i] != NULL && db->sql[i] != sql)
		i = (i + 1) % STORE_DB_STMT_SLOTS;
	if (db->sql[i] == sql) {
		sqlite3_reset(db->stmt[i]);
		return db->stmt[i];
	}
	/* A bug, not a run-time condition: more distinct SQL call sites than
	 * slots.  Raise STORE_DB_STMT_SLOTS. */
	assert(db->n_stmt < STORE_DB_STMT_SLOTS * 7 / 8);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
	    SQLITE_OK) {
		store_db_error(db, "prepare", err, errsz);
		return NULL;
	}
	db->sql[i] = sql;
	db->stmt[i] = st;
	db->n_stmt++;
	return st;
}

int store_db_run(struct store_db *db, sqlite3_stmt *st, char *err, size_t errsz)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		store_db_error(db, sqlite3_sql(st), err, errsz);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int store_db_fetch(struct store_db *db, sqlite3_stmt *st, void *rows, size_t row_size,
		   size_t max, void (*read_row)(sqlite3_stmt *st, void *row), size_t *n_out,
		   const char *what, char *err, size_t errsz)
{
	size_t n = 0;
	int rc = SQLITE_DONE;
	while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
		read_row(st, (char *)rows + n++ * row_size);
	/* The message must be taken before the reset. */
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_db_error(db, what, err, errsz);
	sqlite3_reset(st);
	*n_out = n;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

static int run_verb(struct store_db *db, const char *sql, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db, sql, err, errsz);
	if (st == NULL)
		return -1;
	return store_db_run(db, st, err, errsz);
}

/* Armed (store-commit.c): every transaction of the caller is a savepoint
 * of one transaction begun with the first of them, which a commit thread
 * commits (synchronous=FULL) once the armed section is over. */
static int batch_begin(struct store_db *db, char *err, size_t errsz)
{
	if (!db->batch_open) {
		if (run_verb(db, "BEGIN IMMEDIATE", err, errsz) < 0)
			return -1;
		db->batch_open = true;
	}
	if (run_verb(db, "SAVEPOINT store_w", err, errsz) < 0)
		return -1;
	db->batch_depth++;
	return 0;
}

int store_db_begin(struct store_db *db, char *err, size_t errsz)
{
	if (db->batch)
		return batch_begin(db, err, errsz);
	return run_verb(db, "BEGIN IMMEDIATE", err, errsz);
}

int store_db_set_sync(struct store_db *db, bool full, char *err, size_t errsz)
{
	if (db->batch)
		return 0; /* the batch commits FULL (and covers these writes) */
	return run_verb(db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", err,
			errsz);
}

int store_db_begin_read(struct store_db *db, char *err, size_t errsz)
{
	if (db->batch)
		return batch_begin(db, err, errsz);
	return run_verb(db, "BEGIN", err, errsz);
}

int store_db_commit(struct store_db *db, char *err, size_t errsz)
{
	if (db->batch && db->batch_depth > 0) {
		if (run_verb(db, "RELEASE store_w", err, errsz) < 0) {
			store_db_rollback(db);
			return -1;
		}
		db->batch_depth--;
		db->batch_owed = true;
		return 0;
	}
	uint64_t start_us = metrics_now_us();
	if (run_verb(db, "COMMIT", err, errsz) < 0) {
		store_db_rollback(db);
		return -1;
	}
	metrics_observe_since(METRICS_H_STORE_COMMIT, start_us);
	return 0;
}

void store_db_rollback(struct store_db *db)
{
	if (db->batch) {
		/* only the caller's own savepoint: the rest of the batch stays */
		if (db->batch_depth == 0 || db->h == NULL)
			return;
		(void)run_verb(db, "ROLLBACK TO store_w", NULL, 0);
		(void)run_verb(db, "RELEASE store_w", NULL, 0);
		db->batch_depth--;
		return;
	}
	if (db->h == NULL || sqlite3_get_autocommit(db->h))
		return;
	(void)run_verb(db, "ROLLBACK", NULL, 0);
}

int store_db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) == SQLITE_OK ? 0 : -1;
}

void store_db_column_text(sqlite3_stmt *st, int i, char *out, size_t outsz)
{
	if (outsz == 0)
		return;
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
	if (n >= outsz)
		n = outsz - 1;
	if (n)
		memcpy(out, t, n);
	out[n] = '\0';
}

int store_db_end(struct store_db *db, int rc, char *err, size_t errsz)
{
	if (rc == -1) {
		store_db_rollback(db);
		return -1;
	}
	if (store_db_commit(db, err, errsz) < 0)
		return -1;
	return rc;
}
