/*
 * store-commit.c - commits that are made durable off the event loop
 * (store.h, "commits off the loop").
 *
 * Why the commit itself runs on the thread, and not a WAL sync after a
 * commit with synchronous=NORMAL: a NORMAL commit is visible to every
 * reader (this worker's other sessions, other workers, the CLI) the moment
 * it returns, before its WAL frames are on disk.  A session that saw UID
 * 42 (or a HIGHESTMODSEQ) could, after a power loss, find UID 42 given to
 * another message: a state that goes backwards.  With synchronous=FULL,
 * SQLite syncs the WAL before it publishes the commit in the WAL index, so
 * a commit is seen only once it is durable; and a FULL commit's sync also
 * covers the NORMAL commits (flags) before it in the same WAL.  WAL
 * restarts after a checkpoint are SQLite's business then (it syncs the
 * database before it reuses the WAL).  So the loop prepares the
 * transaction (BEGIN IMMEDIATE, the caller's savepoints) and a thread runs
 * the syncs of the new message files and of msg/, then COMMIT.  While it
 * runs, the connection belongs to the thread: the account is busy, and
 * store_account_db waits for it.
 *
 * One job per account in flight; jobs of different accounts run in
 * parallel on STORE_COMMIT_THREADS threads.  Threads touch only the job,
 * the account's connection and its immutable paths; everything else
 * (account handles, notifications, callbacks) stays on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store-private.h"
#include "xalloc.h"

struct commit_waiter {
	store_commit_cb cb; /* NULL: forgotten */
	void *ctx;
};

struct store_commit {
	struct store_account *a;
	char **files; /* fdatasync'ed before the commit */
	size_t n_files, cap_files;
	bool sync_dir;
	char (*unlinks)[25]; /* after it */
	size_t n_unlinks, cap_unlinks;
	bool notify;
	struct commit_waiter *w;
	size_t n_w, cap_w;
	/* written by the thread before done */
	int rc;
	char err[256];
	bool waited;               /* store_commit_run_all's: its caller waits, no callbacks */
	bool done;                 /* under the pool's mutex */
	bool finished;             /* the loop ran the store's part */
	struct store_commit *next; /* on todo or done */
	struct store_commit *all_prev, *all_next; /* loop only: every job not freed */
};

struct store_pool {
	pthread_mutex_t mu;
	pthread_cond_t work, done_cv;
	struct store_commit *todo, *todo_tail, *done, *done_tail;
	struct store_commit *all;
	pthread_t th[STORE_COMMIT_THREADS];
	size_t n_th;
	bool stop;
	int pipe[2];
};

/* ------------------------------------------------------------ threads */

/* The thread's part: the files, the folder, the commit.  Any failure
 * rolls the whole transaction back (the caller gets -1 and its client no
 * OK: nothing acknowledged depends on it). */
static void commit_run(struct store_commit *c)
{
	struct store_account *a = c->a;
	c->rc = 0;
	for (size_t i = 0; i < c->n_files && c->rc == 0; i++) {
		int fd = open(c->files[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fdatasync(fd) < 0) {
			store_err(c->err, sizeof c->err, "cannot sync %s: %s", c->files[i],
				  strerror(errno));
			c->rc = -1;
		}
		if (fd >= 0)
			close(fd);
	}
	if (c->rc == 0 && c->sync_dir && fsutil_fsync_dir(a->msgdir) < 0) {
		store_err(c->err, sizeof c->err, "cannot sync %s: %s", a->msgdir, strerror(errno));
		c->rc = -1;
	}
	if (c->rc == 0 && sqlite3_exec(a->db.h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		store_db_error(&a->db, "commit", c->err, sizeof c->err);
		c->rc = -1;
	}
	if (c->rc < 0 && !sqlite3_get_autocommit(a->db.h))
		(void)sqlite3_exec(a->db.h, "ROLLBACK", NULL, NULL, NULL);
}

static void *commit_thread(void *arg)
{
	struct store_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->todo == NULL)
			pthread_cond_wait(&p->work, &p->mu);
		struct store_commit *c = p->todo;
		if (c == NULL)
			break; /* stopping, nothing left */
		p->todo = c->next;
		if (p->todo == NULL)
			p->todo_tail = NULL;
		c->next = NULL;
		pthread_mutex_unlock(&p->mu);
		commit_run(c);
		pthread_mutex_lock(&p->mu);
		c->done = true;
		if (c->waited) {
			pthread_cond_broadcast(&p->done_cv);
			continue;
		}
		if (p->done_tail)
			p->done_tail->next = c;
		else
			p->done = c;
		p->done_tail = c;
		pthread_cond_broadcast(&p->done_cv);
		/* a full pipe already wakes the loop */
		ssize_t w = write(p->pipe[1], "c", 1);
		(void)w;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int store_commit_enable(struct store *s, char *err, size_t errsz)
{
	if (s->pool)
		return s->pool->pipe[0];
	struct store_pool *p = xcalloc(1, sizeof *p);
	if (pipe2(p->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		store_err(err, errsz, "pipe: %s", strerror(errno));
		free(p);
		return -1;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done_cv, NULL);
	for (; p->n_th < STORE_COMMIT_THREADS; p->n_th++) {
		int e = pthread_create(&p->th[p->n_th], NULL, commit_thread, p);
		if (e != 0) {
			store_err(err, errsz, "cannot start a commit thread: %s", strerror(e));
			break;
		}
	}
	if (p->n_th == 0) {
		close(p->pipe[0]);
		close(p->pipe[1]);
		free(p);
		return -1;
	}
	s->pool = p;
	return p->pipe[0];
}

/* --------------------------------------------------------------- loop */

static void job_free(struct store_pool *p, struct store_commit *c)
{
	if (c->all_prev)
		c->all_prev->all_next = c->all_next;
	else if (p && p->all == c)
		p->all = c->all_next;
	if (c->all_next)
		c->all_next->all_prev = c->all_prev;
	for (size_t i = 0; i < c->n_files; i++)
		free(c->files[i]);
	free(c->files);
	free(c->unlinks);
	free(c->w);
	free(c);
}

/* What follows a commit, on the loop: only once it is durable the
 * expunged files go and the subscribers hear of it. */
static void after_commit(struct store_account *a, struct store_commit *c, bool ok)
{
	struct store *s = a->s;
	if (ok) {
		for (size_t i = 0; i < c->n_unlinks; i++)
			store_message_unlink(a, c->unlinks[i]);
	}
	if (c->notify)
		store_notify(s, a->id);
}

/* The store's part of a finished job (once): the account is free again. */
static void job_finish(struct store_commit *c)
{
	if (c->finished)
		return;
	c->finished = true;
	struct store_account *a = c->a;
	a->commit = NULL;
	if (c->rc < 0)
		log_error("store action=commit account=%lld error=\"%s\"", (long long)a->id,
			  c->err);
	after_commit(a, c, c->rc == 0);
}

void store_commit_wait_sync(struct store_account *a)
{
	struct store_commit *c = a->commit;
	struct store_pool *p = a->s->pool;
	if (c == NULL || p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	while (!c->done)
		pthread_cond_wait(&p->done_cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	/* the callbacks stay for store_commit_dispatch (the pipe says so) */
	job_finish(c);
}

void store_commit_dispatch(struct store *s)
{
	struct store_pool *p = s->pool;
	if (p == NULL)
		return;
	char b[64];
	while (read(p->pipe[0], b, sizeof b) > 0)
		;
	pthread_mutex_lock(&p->mu);
	struct store_commit *list = p->done;
	p->done = p->done_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	while (list) {
		struct store_commit *c = list;
		list = c->next;
		job_finish(c);
		/* by index: a callback may forget others (entries go NULL) */
		for (size_t i = 0; i < c->n_w; i++) {
			struct commit_waiter w = c->w[i];
			c->w[i].cb = NULL;
			if (w.cb)
				w.cb(w.ctx, c->rc, c->err);
		}
		job_free(p, c);
	}
}

bool store_commit_arm(struct store_account *a)
{
	struct store *s = a->s;
	if (s->pool == NULL || s->armed != NULL)
		return false;
	struct store_db *db = store_account_db(a, NULL, 0); /* waits for a's commit */
	if (db == NULL)
		return false;
	struct store_commit *c = xcalloc(1, sizeof *c);
	c->a = a;
	s->arming = c;
	s->armed = a;
	db->batch = true;
	db->batch_open = db->batch_owed = false;
	db->batch_depth = 0;
	return true;
}

bool store_commit_armed(const struct store_account *a)
{
	return a != NULL && a->s->armed == a;
}

static void add_waiter(struct store_commit *c, store_commit_cb cb, void *ctx)
{
	if (c->n_w == c->cap_w) {
		c->cap_w = c->cap_w ? c->cap_w * 2 : 4;
		c->w = xreallocarray(c->w, c->cap_w, sizeof *c->w);
	}
	c->w[c->n_w++] = (struct commit_waiter){cb, ctx};
}

bool store_commit_launch(struct store_account *a, store_commit_cb cb, void *ctx)
{
	struct store *s = a->s;
	if (s->armed != a)
		return false;
	struct store_commit *c = s->arming;
	struct store_pool *p = s->pool;
	s->armed = NULL;
	s->arming = NULL;
	struct store_db *db = &a->db;
	bool open = db->h != NULL && db->batch_open;
	bool owed = db->batch_owed;
	if (db->batch_depth != 0) {
		/* A bug: a savepoint left open.  Commit nothing of it. */
		log_error("store action=commit account=%lld error=\"savepoint left open\"",
			  (long long)a->id);
		owed = false;
	}
	db->batch = db->batch_open = db->batch_owed = false;
	db->batch_depth = 0;
	if (open && owed) {
		add_waiter(c, cb, ctx);
		c->all_next = p->all;
		if (p->all)
			p->all->all_prev = c;
		p->all = c;
		a->commit = c;
		pthread_mutex_lock(&p->mu);
		if (p->todo_tail)
			p->todo_tail->next = c;
		else
			p->todo = c;
		p->todo_tail = c;
		pthread_cond_signal(&p->work);
		pthread_mutex_unlock(&p->mu);
		return true;
	}
	/* Nothing to make durable: what was begun was rolled back. */
	if (open && !sqlite3_get_autocommit(db->h))
		(void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	c->finished = true;
	after_commit(a, c, true);
	job_free(NULL, c);
	return false;
}

bool store_account_busy(const struct store_account *a)
{
	return a != NULL && a->commit != NULL;
}

int store_commit_wait(struct store_account *a, store_commit_cb cb, void *ctx)
{
	if (a->commit == NULL)
		return 0;
	add_waiter(a->commit, cb, ctx);
	return 1;
}

void store_commit_forget(struct store *s, void *ctx)
{
	if (s->pool == NULL)
		return;
	for (struct store_commit *c = s->pool->all; c; c = c->all_next)
		for (size_t i = 0; i < c->n_w; i++)
			if (c->w[i].ctx == ctx)
				c->w[i].cb = NULL;
}

void store_commit_shutdown(struct store *s)
{
	struct store_pool *p = s->pool;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < p->n_th; i++)
		pthread_join(p->th[i], NULL);
	/* every job is done now: finish them, without callbacks (their
	 * owners are gone) */
	while (p->all) {
		struct store_commit *c = p->all;
		job_finish(c);
		job_free(p, c);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done_cv);
	close(p->pipe[0]);
	close(p->pipe[1]);
	free(p);
	s->pool = NULL;
}

int store_commit_run_all(struct store_account **a, size_t n, int *rc, char (*err)[256])
{
	if (n == 0 || a[0]->s->pool == NULL)
		return -1;
	struct store_pool *p = a[0]->s->pool;
	struct store_commit *c = xcalloc(n, sizeof *c);
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < n; i++) {
		c[i].a = a[i];
		c[i].sync_dir = true;
		c[i].waited = true;
		if (p->todo_tail)
			p->todo_tail->next = &c[i];
		else
			p->todo = &c[i];
		p->todo_tail = &c[i];
	}
	pthread_cond_broadcast(&p->work);
	for (size_t i = 0; i < n; i++)
		while (!c[i].done)
			pthread_cond_wait(&p->done_cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	for (size_t i = 0; i < n; i++) {
		rc[i] = c[i].rc;
		memcpy(err[i], c[i].err, sizeof err[i]);
	}
	free(c);
	return 0;
}

/* ------------------------------------------------ held while armed */

void store_commit_hold_file(struct store_account *a, const char *path)
{
	struct store_commit *c = a->s->arming;
	if (c->n_files == c->cap_files) {
		c->cap_files = c->cap_files ? c->cap_files * 2 : 4;
		c->files = xreallocarray(c->files, c->cap_files, sizeof *c->files);
	}
	c->files[c->n_files++] = xstrdup(path);
}

void store_commit_hold_dir(struct store_account *a)
{
	a->s->arming->sync_dir = true;
}

void store_commit_hold_unlink(struct store_account *a, const char *file_id)
{
	struct store_commit *c = a->s->arming;
	if (c->n_unlinks == c->cap_unlinks) {
		c->cap_unlinks = c->cap_unlinks ? c->cap_unlinks * 2 : 8;
		c->unlinks = xreallocarray(c->unlinks, c->cap_unlinks, sizeof *c->unlinks);
	}
	memcpy(c->unlinks[c->n_unlinks], file_id, 24);
	c->unlinks[c->n_unlinks][24] = '\0';
	c->n_unlinks++;
}

bool store_commit_hold_notify(struct store *s, int64_t account_id)
{
	if (s->armed == NULL || s->armed->id != account_id)
		return false;
	s->arming->notify = true;
	return true;
}
