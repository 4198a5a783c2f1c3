/*
 * test-store-commit.c - unit tests of commits made durable on the commit
 * threads (src/store/store-commit.c): an armed APPEND is invisible to
 * other connections until the thread committed it and its callback ran; a
 * failed write inside the armed section leaves nothing to commit; an armed
 * EXPUNGE unlinks its file and notifies only once durable; a busy
 * account's handle waits for the commit; several accounts' deliveries in
 * one batch commit in parallel and all arrive.
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store.h"
#include "test.h"

struct cfx {
	char dir[64];
	struct store *s;
	struct store_account *a;
	int64_t inbox;
	int fd; /* the commit threads' pipe */
	char err[256];
	/* callback results */
	int calls, ok;
	int notified;
};

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void cfx_open(struct cfx *f)
{
	memset(f, 0, sizeof *f);
	log_set_level(LOG_WARN);
	snprintf(f->dir, sizeof f->dir, "/tmp/tern-store-commit-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		exit(2);
	f->s = store_open(f->dir, f->err, sizeof f->err);
	if (f->s == NULL)
		exit(2);
	CHECK_INT(store_domain_add(f->s, "example.test", f->err, sizeof f->err), 0);
	CHECK_INT(store_account_add(f->s, "u@example.test", "$6$x$y", NULL, f->err, sizeof f->err),
		  0);
	CHECK_INT(store_account_open(f->s, "u@example.test", &f->a), 1);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(f->a, "INBOX", &mb), 1);
	f->inbox = mb.id;
	f->fd = store_commit_enable(f->s, f->err, sizeof f->err);
	CHECK(f->fd >= 0);
}

static void cfx_close(struct cfx *f)
{
	store_close(&f->s);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void done_cb(void *ctx, int ok, const char *err)
{
	struct cfx *f = ctx;
	(void)err;
	f->calls++;
	f->ok = ok;
}

static void notify_cb(void *ctx, int64_t account_id)
{
	struct cfx *f = ctx;
	(void)account_id;
	f->notified++;
}

/* Runs the loop's side until a callback came (or 10 s passed). */
static void wait_done(struct cfx *f)
{
	int before = f->calls;
	for (int i = 0; i < 1000 && f->calls == before; i++) {
		struct pollfd p = {f->fd, POLLIN, 0};
		(void)poll(&p, 1, 10);
		store_commit_dispatch(f->s);
	}
	CHECK_INT(f->calls, before + 1);
}

static void spool_file(struct cfx *f, char *path, size_t pathsz, const char *body)
{
	char id[25];
	fsutil_unique_id(id);
	snprintf(path, pathsz, "%s/spool/%s", f->dir, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_INT(fsutil_write_all(fd, body, strlen(body)), 0);
	close(fd);
}

/* Messages in INBOX as another connection (another process) sees them. */
static int outside_count(struct cfx *f)
{
	char path[PATH_MAX];
	int64_t id = store_account_id(f->a);
	snprintf(path, sizeof path, "%s/accounts/%02d/%lld/account.db", f->dir, (int)(id % 100),
		 (long long)id);
	sqlite3 *h = NULL;
	CHECK_INT(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK_INT(sqlite3_prepare_v2(h, "SELECT count(*) FROM messages", -1, &st, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	int n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

static uint32_t armed_append(struct cfx *f, const char *mbox, const char *kw, int *r)
{
	char path[PATH_MAX];
	spool_file(f, path, sizeof path, "Subject: a\r\n\r\nbody\r\n");
	struct store_imap_append_msg m = {path, 0, kw, 1000};
	uint32_t uid = 0, uv = 0;
	*r = store_imap_append(f->a, mbox, &m, 1, &uv, &uid, f->err, sizeof f->err);
	unlink(path);
	return uid;
}

TEST(store_commit_append_visible_only_when_durable)
{
	struct cfx f;
	cfx_open(&f);
	CHECK(store_notify_subscribe(f.s, 0, notify_cb, &f) > 0);
	CHECK(store_commit_arm(f.a));
	CHECK(store_commit_armed(f.a));
	int r;
	uint32_t uid = armed_append(&f, "INBOX", NULL, &r);
	CHECK_INT(r, 0);
	CHECK_INT(uid, 1);
	/* the caller sees its own write; nobody else does, nobody is told */
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(f.a, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 1);
	CHECK_INT(outside_count(&f), 0);
	CHECK_INT(f.notified, 0);
	CHECK(store_commit_launch(f.a, done_cb, &f));
	CHECK(!store_commit_armed(f.a));
	wait_done(&f);
	CHECK_INT(f.ok, 0);
	CHECK(!store_account_busy(f.a));
	CHECK_INT(f.notified, 1);
	CHECK_INT(outside_count(&f), 1);
	cfx_close(&f);
}

TEST(store_commit_failed_write_leaves_nothing)
{
	struct cfx f;
	cfx_open(&f);
	CHECK(store_commit_arm(f.a));
	int r;
	armed_append(&f, "Nope", NULL, &r);
	CHECK_INT(r, -1);
	/* nothing was released into the transaction: no commit, no callback */
	CHECK(!store_commit_launch(f.a, done_cb, &f));
	CHECK_INT(f.calls, 0);
	CHECK(!store_account_busy(f.a));
	/* one write kept, one rolled back: only the first is committed */
	CHECK(store_commit_arm(f.a));
	armed_append(&f, "INBOX", NULL, &r);
	CHECK_INT(r, 0);
	armed_append(&f, "INBOX", "bad\\kw", &r);
	CHECK_INT(r, -1);
	CHECK(store_commit_launch(f.a, done_cb, &f));
	wait_done(&f);
	CHECK_INT(f.ok, 0);
	CHECK_INT(outside_count(&f), 1);
	/* the account works as before, unarmed */
	armed_append(&f, "INBOX", NULL, &r);
	CHECK_INT(r, 0);
	CHECK_INT(outside_count(&f), 2);
	cfx_close(&f);
}

static int first_cb(void *ctx, const struct store_message *m)
{
	memcpy(ctx, m, sizeof *m);
	return 1;
}

TEST(store_commit_expunge_unlinks_when_durable)
{
	struct cfx f;
	cfx_open(&f);
	int r;
	uint32_t uid = armed_append(&f, "INBOX", NULL, &r); /* unarmed */
	CHECK_INT(r, 0);
	struct store_message m;
	memset(&m, 0, sizeof m);
	CHECK_INT(
	    store_message_list(f.a, f.inbox, 0, UINT32_MAX, first_cb, &m, f.err, sizeof f.err), 0);
	CHECK_INT(m.uid, uid);
	char file[PATH_MAX];
	int64_t id = store_account_id(f.a);
	snprintf(file, sizeof file, "%s/accounts/%02d/%lld/msg/%s", f.dir, (int)(id % 100),
		 (long long)id, m.file_id);
	CHECK_INT(access(file, F_OK), 0);
	CHECK(store_commit_arm(f.a));
	bool done = false;
	CHECK_INT(store_imap_expunge(f.a, f.inbox, &uid, 1, &done, NULL, f.err, sizeof f.err), 0);
	CHECK(done);
	CHECK_INT(access(file, F_OK), 0); /* not before the commit is durable */
	CHECK(store_commit_launch(f.a, done_cb, &f));
	CHECK(store_account_busy(f.a));
	/* a user of the handle waits for the commit (and sees its result) */
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(f.a, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 0);
	CHECK(!store_account_busy(f.a));
	CHECK(access(file, F_OK) < 0);
	wait_done(&f); /* the callback still comes, from the dispatch */
	CHECK_INT(f.ok, 0);
	cfx_close(&f);
}

TEST(store_commit_forget_drops_the_callback)
{
	struct cfx f;
	cfx_open(&f);
	CHECK(store_commit_arm(f.a));
	int r;
	armed_append(&f, "INBOX", NULL, &r);
	CHECK(store_commit_launch(f.a, done_cb, &f));
	int other = 0;
	CHECK_INT(store_commit_wait(f.a, done_cb, &other), 1);
	store_commit_forget(f.s, &other);
	store_commit_forget(f.s, &f);
	for (int i = 0; i < 100 && store_account_busy(f.a); i++) {
		struct pollfd p = {f.fd, POLLIN, 0};
		(void)poll(&p, 1, 10);
		store_commit_dispatch(f.s);
	}
	CHECK(!store_account_busy(f.a));
	CHECK_INT(f.calls, 0);
	CHECK_INT(outside_count(&f), 1);
	cfx_close(&f);
}

TEST(store_commit_batch_over_accounts)
{
	struct cfx f;
	cfx_open(&f);
	enum { N = 20 };
	int64_t ids[N];
	for (int i = 0; i < N; i++) {
		char addr[64];
		snprintf(addr, sizeof addr, "b%d@example.test", i);
		CHECK_INT(store_account_add(f.s, addr, "$6$x$y", &ids[i], f.err, sizeof f.err), 0);
	}
	char path[PATH_MAX];
	spool_file(&f, path, sizeof path, "Subject: all\r\n\r\nx\r\n");
	struct store_delivery d[N * 2];
	memset(d, 0, sizeof d);
	for (int i = 0; i < N * 2; i++) {
		d[i].path = path;
		d[i].account_id = ids[i % N];
		d[i].internaldate = 1000;
	}
	CHECK_INT(store_deliver_batch(f.s, d, N * 2, f.err, sizeof f.err), 0);
	for (int i = 0; i < N * 2; i++) {
		CHECK_INT(d[i].status, 0);
		CHECK_INT(d[i].uid, (uint32_t)(i / N + 1));
	}
	for (int i = 0; i < N; i++) {
		struct store_account *a;
		CHECK_INT(store_account_open_id(f.s, ids[i], &a), 1);
		struct store_mailbox mb;
		CHECK_INT(store_mailbox_get(a, "INBOX", &mb), 1);
		CHECK_INT(mb.messages, 2);
	}
	unlink(path);
	cfx_close(&f);
}
