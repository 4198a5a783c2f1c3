/*
 * store-indexer.c - the full-text index written in the background
 * (docs/imap.md "Full-text index").
 *
 * Why: writing a message's index rows inside its delivery transaction made
 * every delivery hold the account's write lock through the FTS5 insert of
 * a few thousand trigrams and a segment flush per commit, which cost about
 * a fifth of SMTP intake (docs/performance.md).  Here a delivery (or an
 * APPEND, a JMAP import, a Sieve fileinto) only leaves its file in
 * fts_pending, which the trigger fts_pending_add does anyway; once its
 * commit is durable (store_notify), the account is queued for one thread
 * per worker, which reads the pending files outside any transaction and
 * writes their rows in batches of INDEX_BATCH per transaction on its own
 * connection: one FTS5 segment per batch instead of per message, and the
 * write lock held only for the inserts.
 *
 * Nothing is lost or answered differently meanwhile: a search reads a
 * pending file itself (store_fts_search lists it as unsure), exactly as
 * for a file that cannot be indexed.  What the thread has not done when
 * the worker stops stays pending; the next change to the account, or
 * `tern index rebuild`, does it.  A file whose rows fail (an SQLite error)
 * is tried once per queueing, in file id order, so a broken index cannot
 * keep the thread busy.
 *
 * The index rows are commits like others (synchronous=NORMAL: the rows can
 * be rebuilt from the files, and fts_pending goes with them in the same
 * transaction, so a lost commit leaves the files pending, not wrong).
 */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store-private.h"
#include "xalloc.h"

/* Files read, then written in one transaction. */
#define INDEX_BATCH 64
/* How long an account waits in the queue before it is indexed, so that a
 * burst of deliveries is written in a few batches, not one per message. */
#define INDEX_DELAY_MS 200

struct ix_acct {
	int64_t id;
	char *db;     /* DIR/account.db */
	char *msgdir; /* DIR/msg */
	struct timespec queued; /* CLOCK_MONOTONIC */
	struct ix_acct *next;
};

struct store_indexer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ix_acct *todo, *todo_tail; /* under mu */
	int64_t running;                  /* under mu: the account being indexed, 0 none */
	bool again;                       /* under mu: queued again while running */
	bool stop;                        /* under mu */
	size_t max_text; /* under mu */
	size_t slot, n_slots; /* this worker indexes id % n_slots == slot */
	pthread_t th;
};

static void acct_free(struct ix_acct *j)
{
	if (j == NULL)
		return;
	free(j->db);
	free(j->msgdir);
	free(j);
}

static bool stopping(struct store_indexer *ix)
{
	pthread_mutex_lock(&ix->mu);
	bool stop = ix->stop;
	pthread_mutex_unlock(&ix->mu);
	return stop;
}

/* The pending files of j after after[], in file id order, at most
 * INDEX_BATCH into ids.  The count, or -1 with err. */
static int list_pending(struct store_db *db, const char *after, char (*ids)[25], char *err,
			size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "SELECT p.file_id FROM fts_pending p WHERE p.file_id > ?1 AND NOT EXISTS"
	    " (SELECT 1 FROM fts_docs d WHERE d.file_id = p.file_id)"
	    " ORDER BY p.file_id LIMIT ?2",
	    err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, after);
	sqlite3_bind_int(st, 2, INDEX_BATCH);
	int n = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < INDEX_BATCH) {
		store_db_column_text(st, 0, ids[n], sizeof ids[n]);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "listing the files to index", err, errsz);
		n = -1;
	}
	sqlite3_reset(st);
	return n;
}

/* One batch: the text of ids[0..n) read, then their rows in one
 * transaction; *failed counts the files whose rows failed (logged).  0, or
 * -1 with err (the transaction failed: nothing of the batch written). */
static int index_batch(struct store_indexer *ix, struct ix_acct *j, struct store_db *db,
		       char (*ids)[25], size_t n, size_t *failed, char *err, size_t errsz)
{
	struct store_fts_doc docs[INDEX_BATCH];
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		int w = snprintf(path, sizeof path, "%s/%s", j->msgdir, ids[i]);
		if (!store_name_is_file_id(ids[i], strlen(ids[i])) || w < 0 ||
		    (size_t)w >= sizeof path) {
			docs[i] = (struct store_fts_doc){.ready = true, .state = 2,
							 .why = "invalid file id"};
			continue;
		}
		pthread_mutex_lock(&ix->mu);
		size_t max = ix->max_text;
		pthread_mutex_unlock(&ix->mu);
		store_fts_prepare_path(path, max, &docs[i]);
	}
	int ret = -1;
	if (store_db_begin(db, err, errsz) == 0) {
		for (size_t i = 0; i < n; i++)
			if (!store_fts_put_id(j->id, db, ids[i], &docs[i]))
				(*failed)++;
		if (store_db_commit(db, err, errsz) == 0)
			ret = 0;
		else
			store_db_rollback(db);
	}
	for (size_t i = 0; i < n; i++)
		store_fts_doc_free(&docs[i]);
	return ret;
}

static void index_account(struct store_indexer *ix, struct ix_acct *j)
{
	struct store_db db;
	char err[256] = "";
	if (store_db_open(&db, j->db, false, err, sizeof err) < 0) {
		log_warn("action=index account=%lld result=deferred error=\"%s\"", (long long)j->id,
			 err);
		return;
	}
	size_t done = 0, failed = 0;
	char after[25] = "";
	char ids[INDEX_BATCH][25];
	int n = 0;
	if (store_db_set_sync(&db, false, err, sizeof err) < 0)
		n = -1;
	while (n >= 0 && !stopping(ix)) {
		n = list_pending(&db, after, ids, err, sizeof err);
		if (n <= 0)
			break;
		memcpy(after, ids[n - 1], sizeof after);
		if (index_batch(ix, j, &db, ids, (size_t)n, &failed, err, sizeof err) < 0)
			n = -1;
		else
			done += (size_t)n;
	}
	done -= failed;
	if (n < 0)
		log_warn("action=index account=%lld result=deferred files=%zu error=\"%s\"",
			 (long long)j->id, done, err);
	else if (done > 0 || failed > 0)
		log_info("action=index account=%lld files=%zu failed=%zu", (long long)j->id, done,
			 failed);
	store_db_close(&db);
}

static void *indexer_thread(void *arg)
{
	struct store_indexer *ix = arg;
	pthread_mutex_lock(&ix->mu);
	for (;;) {
		while (!ix->stop && ix->todo == NULL)
			pthread_cond_wait(&ix->cv, &ix->mu);
		if (ix->stop)
			break;
		struct ix_acct *j = ix->todo;
		ix->todo = j->next;
		if (ix->todo == NULL)
			ix->todo_tail = NULL;
		j->next = NULL;
		ix->running = j->id;
		ix->again = false;
		/* a burst of deliveries gathers for INDEX_DELAY_MS */
		struct timespec until = j->queued;
		until.tv_nsec += (long)INDEX_DELAY_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!ix->stop && pthread_cond_timedwait(&ix->cv, &ix->mu, &until) == 0)
			;
		if (ix->stop) {
			ix->running = 0;
			acct_free(j);
			break;
		}
		pthread_mutex_unlock(&ix->mu);
		index_account(ix, j);
		pthread_mutex_lock(&ix->mu);
		ix->running = 0;
		if (ix->again && !ix->stop) {
			/* changed while it ran: once more, behind the others */
			clock_gettime(CLOCK_MONOTONIC, &j->queued);
			if (ix->todo_tail)
				ix->todo_tail->next = j;
			else
				ix->todo = j;
			ix->todo_tail = j;
		} else {
			acct_free(j);
		}
	}
	pthread_mutex_unlock(&ix->mu);
	return NULL;
}

int store_indexer_start(struct store *s, size_t slot, size_t n_slots, char *err,
			size_t errsz)
{
	if (s->indexer != NULL)
		return 0;
	if (n_slots == 0 || slot >= n_slots) {
		store_err(err, errsz, "indexer slot %zu of %zu", slot, n_slots);
		return -1;
	}
	struct store_indexer *ix = xcalloc(1, sizeof *ix);
	ix->slot = slot;
	ix->n_slots = n_slots;
	pthread_mutex_init(&ix->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ix->cv, &ca);
	pthread_condattr_destroy(&ca);
	ix->max_text = store_fts_max_text(s);
	int e = pthread_create(&ix->th, NULL, indexer_thread, ix);
	if (e != 0) {
		store_err(err, errsz, "cannot start the indexer thread: %s", strerror(e));
		pthread_mutex_destroy(&ix->mu);
		pthread_cond_destroy(&ix->cv);
		free(ix);
		return -1;
	}
	s->indexer = ix;
	return 0;
}

void store_indexer_set_max_text(struct store *s, size_t max)
{
	struct store_indexer *ix = s->indexer;
	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->mu);
	ix->max_text = max;
	pthread_mutex_unlock(&ix->mu);
}

void store_indexer_stop(struct store *s)
{
	struct store_indexer *ix = s->indexer;
	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->mu);
	ix->stop = true;
	pthread_cond_broadcast(&ix->cv);
	pthread_mutex_unlock(&ix->mu);
	pthread_join(ix->th, NULL);
	for (struct ix_acct *j = ix->todo, *next; j != NULL; j = next) {
		next = j->next;
		acct_free(j);
	}
	pthread_mutex_destroy(&ix->mu);
	pthread_cond_destroy(&ix->cv);
	free(ix);
	s->indexer = NULL;
}

bool store_indexer_defers(const struct store *s)
{
	return s->indexer != NULL;
}

void store_indexer_resume(struct store_account *a)
{
	struct store_indexer *ix = a->s->indexer;
	if (ix == NULL || store_fts_max_text(a->s) == 0)
		return;
	sqlite3_stmt *st = store_db_stmt(&a->db,
					 "SELECT 1 FROM fts_pending p WHERE NOT EXISTS"
					 " (SELECT 1 FROM fts_docs d WHERE d.file_id = p.file_id)"
					 " LIMIT 1",
					 NULL, 0);
	if (st == NULL)
		return;
	bool pending = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	if (pending)
		store_indexer_changed(a->s, a->id);
}

void store_indexer_changed(struct store *s, int64_t account_id)
{
	struct store_indexer *ix = s->indexer;
	if (ix == NULL || account_id <= 0 || (uint64_t)account_id % ix->n_slots != ix->slot)
		return;
	pthread_mutex_lock(&ix->mu);
	bool queued = ix->running == account_id;
	if (queued)
		ix->again = true;
	for (struct ix_acct *q = ix->todo; q != NULL && !queued; q = q->next)
		queued = q->id == account_id;
	pthread_mutex_unlock(&ix->mu);
	if (queued)
		return;
	char dir[4096], db[4096], msg[4096];
	if (store_account_dir(s, account_id, dir, sizeof dir) < 0 ||
	    store_path(db, sizeof db, dir, "account.db") < 0 ||
	    store_path(msg, sizeof msg, dir, "msg") < 0)
		return; /* stays pending: `tern index rebuild` */
	struct ix_acct *j = xcalloc(1, sizeof *j);
	j->id = account_id;
	j->db = xstrdup(db);
	j->msgdir = xstrdup(msg);
	clock_gettime(CLOCK_MONOTONIC, &j->queued);
	pthread_mutex_lock(&ix->mu);
	if (ix->todo_tail)
		ix->todo_tail->next = j;
	else
		ix->todo = j;
	ix->todo_tail = j;
	pthread_cond_signal(&ix->cv);
	pthread_mutex_unlock(&ix->mu);
}
