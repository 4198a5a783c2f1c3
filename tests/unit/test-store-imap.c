/*
 * test-store-imap.c - unit tests of the IMAP additions to the store
 * (src/store/store-imap.c): uid lists, changed/expunged since a modseq,
 * batched flags, copy/move and expunge, the ENVELOPE/BODYSTRUCTURE cache
 * and its SEARCH header text, the \Recent mark (claims and looks), and
 * that an account database made without the cache table (or its headers
 * column, or mailboxes.recent_uid) gets it.
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "log.h"
#include "store.h"
#include "test.h"

struct ifx {
	char dir[64];
	struct store *s;
	struct store_account *a;
	int64_t inbox;
	char err[256];
};

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void ifx_open(struct ifx *f)
{
	memset(f, 0, sizeof *f);
	log_set_level(LOG_WARN);
	snprintf(f->dir, sizeof f->dir, "/tmp/tern-store-imap-XXXXXX");
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
}

static void ifx_close(struct ifx *f)
{
	store_close(&f->s);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint32_t append(struct ifx *f, const char *mbox, const char *body)
{
	char id[25], path[PATH_MAX];
	fsutil_unique_id(id);
	snprintf(path, sizeof path, "%s/spool/%s", f->dir, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_INT(fsutil_write_all(fd, body, strlen(body)), 0);
	close(fd);
	uint32_t uid = 0;
	CHECK_INT(
	    store_message_append(f->a, mbox, path, 0, NULL, 1000, &uid, f->err, sizeof f->err), 0);
	unlink(path);
	return uid;
}

struct seen {
	uint32_t uid[16];
	unsigned flags[16];
	size_t n;
};

static int seen_cb(void *ctx, const struct store_message *m)
{
	struct seen *s = ctx;
	if (s->n < 16) {
		s->uid[s->n] = m->uid;
		s->flags[s->n] = m->flags;
		s->n++;
	}
	return 0;
}

TEST(store_imap_uids_and_changes)
{
	struct ifx f;
	ifx_open(&f);
	for (int i = 0; i < 5; i++)
		CHECK_INT(append(&f, "INBOX", "Subject: x\r\n\r\nbody\r\n"), i + 1);
	uint32_t *uids;
	size_t n;
	CHECK_INT(store_imap_uids(f.a, f.inbox, 1, &uids, &n, f.err, sizeof f.err), 0);
	CHECK_INT(n, 5);
	CHECK_INT(uids[4], 5);
	free(uids);
	CHECK_INT(store_imap_uids(f.a, f.inbox, 4, &uids, &n, f.err, sizeof f.err), 0);
	CHECK_INT(n, 2);
	CHECK_INT(uids[0], 4);
	free(uids);

	uint32_t uv, next;
	uint64_t hms0, hms1;
	CHECK_INT(store_imap_mailbox_state(f.a, f.inbox, &uv, &next, &hms0), 1);
	CHECK_INT(next, 6);
	CHECK_INT(store_imap_mailbox_state(f.a, 99999, &uv, &next, &hms1), 0);

	/* batched flags: one modseq for all that change */
	uint32_t set[] = {2, 3, 4};
	struct seen sn = {{0}, {0}, 0};
	uint64_t ms;
	CHECK_INT(store_imap_store_flags(f.a, f.inbox, set, 3, 1, STORE_F_SEEN, "$Work", seen_cb,
					 &sn, &ms, f.err, sizeof f.err),
		  0);
	CHECK(ms > hms0);
	CHECK_INT(sn.n, 3);
	CHECK_INT(sn.flags[1], STORE_F_SEEN);
	CHECK_INT(store_imap_mailbox_state(f.a, f.inbox, &uv, &next, &hms1), 1);
	CHECK_INT(hms1, ms);
	/* nothing changes: no modseq */
	CHECK_INT(store_imap_store_flags(f.a, f.inbox, set, 3, 1, STORE_F_SEEN, NULL, NULL, NULL,
					 &ms, f.err, sizeof f.err),
		  0);
	CHECK_INT(ms, 0);
	uint32_t first;
	CHECK_INT(store_imap_first_unseen(f.a, f.inbox, &first), 1);
	CHECK_INT(first, 1);

	struct seen ch = {{0}, {0}, 0};
	CHECK_INT(
	    store_imap_changed_since(f.a, f.inbox, hms0, 100, seen_cb, &ch, f.err, sizeof f.err),
	    0);
	CHECK_INT(ch.n, 3);
	CHECK_INT(ch.uid[0], 2);
	ch.n = 0;
	CHECK_INT(
	    store_imap_changed_since(f.a, f.inbox, hms0, 3, seen_cb, &ch, f.err, sizeof f.err), 0);
	CHECK_INT(ch.n, 2);

	/* expunge 1 and 3; 9 does not exist */
	uint32_t ex[] = {1, 3, 9};
	bool done[3];
	CHECK_INT(store_imap_expunge(f.a, f.inbox, ex, 3, done, &ms, f.err, sizeof f.err), 0);
	CHECK(done[0] && done[1] && !done[2]);
	bool complete = false;
	CHECK_INT(store_imap_expunged_since(f.a, f.inbox, hms1, &uids, &n, &complete, f.err,
					    sizeof f.err),
		  0);
	CHECK(complete);
	CHECK_INT(n, 2);
	CHECK_INT(uids[0], 1);
	CHECK_INT(uids[1], 3);
	free(uids);
	CHECK_INT(
	    store_imap_expunged_since(f.a, f.inbox, ms, &uids, &n, &complete, f.err, sizeof f.err),
	    0);
	CHECK_INT(n, 0);
	free(uids);
	ifx_close(&f);
}

/* The expunged uids are bounded per mailbox: past the bound the oldest
 * go, and a modseq below what was dropped is answered "not complete". */
TEST(store_imap_expunged_bounded)
{
	struct ifx f;
	ifx_open(&f);
	store_set_expunged_max(f.s, 8);
	for (int i = 0; i < 12; i++)
		CHECK_INT(append(&f, "INBOX", "Subject: x\r\n\r\nbody\r\n"), i + 1);
	uint32_t uv, next;
	uint64_t hms0, ms[12];
	CHECK_INT(store_imap_mailbox_state(f.a, f.inbox, &uv, &next, &hms0), 1);
	/* 1..8 one at a time: 8 remembered, nothing dropped yet */
	for (uint32_t u = 1; u <= 8; u++) {
		bool done;
		CHECK_INT(store_imap_expunge(f.a, f.inbox, &u, 1, &done, &ms[u - 1], f.err,
					     sizeof f.err),
			  0);
	}
	uint32_t *uids;
	size_t n;
	bool complete = false;
	CHECK_INT(store_imap_expunged_since(f.a, f.inbox, hms0, &uids, &n, &complete, f.err,
					    sizeof f.err),
		  0);
	CHECK(complete);
	CHECK_INT(n, 8);
	free(uids);
	/* the 9th makes 9 > 8: the oldest go until 6 (three quarters) remain */
	uint32_t u9 = 9;
	bool done;
	CHECK_INT(store_imap_expunge(f.a, f.inbox, &u9, 1, &done, &ms[8], f.err, sizeof f.err), 0);
	CHECK_INT(store_imap_expunged_since(f.a, f.inbox, hms0, &uids, &n, &complete, f.err,
					    sizeof f.err),
		  0);
	CHECK(!complete);
	CHECK_INT(n, 6);
	CHECK_INT(uids[0], 4);
	CHECK_INT(uids[5], 9);
	free(uids);
	/* from the modseq of uid 3's expunge (the highest dropped) up: complete */
	CHECK_INT(store_imap_expunged_since(f.a, f.inbox, ms[2], &uids, &n, &complete, f.err,
					    sizeof f.err),
		  0);
	CHECK(complete);
	CHECK_INT(n, 6);
	free(uids);
	CHECK_INT(store_imap_expunged_since(f.a, f.inbox, ms[1], &uids, &n, &complete, f.err,
					    sizeof f.err),
		  0);
	CHECK(!complete);
	free(uids);
	ifx_close(&f);
}

/* RFC 7162 UNCHANGEDSINCE: a message whose modseq is above the value is
 * refused (modified[i]), left as it is, and still passed to cb. */
TEST(store_imap_store_flags_conditional)
{
	struct ifx f;
	ifx_open(&f);
	for (int i = 0; i < 3; i++)
		CHECK_INT(append(&f, "INBOX", "Subject: x\r\n\r\nbody\r\n"), i + 1);
	uint32_t uv, next;
	uint64_t hms0, ms1, ms2;
	CHECK_INT(store_imap_mailbox_state(f.a, f.inbox, &uv, &next, &hms0), 1);
	uint32_t two[] = {2};
	CHECK_INT(store_imap_store_flags(f.a, f.inbox, two, 1, 1, STORE_F_SEEN, NULL, NULL, NULL,
					 &ms1, f.err, sizeof f.err),
		  0);
	CHECK(ms1 > hms0);
	/* 1 and 3 unchanged since hms0, 2 changed after it, 9 does not exist */
	uint32_t set[] = {1, 2, 3, 9};
	bool mod[4] = {true, false, true, true};
	struct seen sn = {{0}, {0}, 0};
	CHECK_INT(store_imap_store_flags_if(f.a, f.inbox, set, 4, 1, STORE_F_FLAGGED, NULL, hms0,
					    mod, seen_cb, &sn, &ms2, f.err, sizeof f.err),
		  0);
	CHECK(!mod[0] && mod[1] && !mod[2] && !mod[3]);
	CHECK(ms2 > ms1);
	CHECK_INT(sn.n, 3);
	CHECK_INT(sn.flags[0], STORE_F_FLAGGED);
	CHECK_INT(sn.flags[1], STORE_F_SEEN);
	CHECK_INT(sn.flags[2], STORE_F_FLAGGED);
	uint64_t hms1;
	CHECK_INT(store_imap_mailbox_state(f.a, f.inbox, &uv, &next, &hms1), 1);
	CHECK(hms1 == ms2);
	/* the value itself passes; 0 refuses every message and changes nothing */
	CHECK_INT(store_imap_store_flags_if(f.a, f.inbox, two, 1, 1, STORE_F_DRAFT, NULL, ms1, mod,
					    NULL, NULL, &ms2, f.err, sizeof f.err),
		  0);
	CHECK(!mod[0] && ms2 > hms1);
	CHECK_INT(store_imap_store_flags_if(f.a, f.inbox, set, 3, -1, STORE_F_FLAGGED, NULL, 0, mod,
					    NULL, NULL, &ms1, f.err, sizeof f.err),
		  0);
	CHECK(mod[0] && mod[1] && mod[2]);
	CHECK(ms1 == 0);
	CHECK_INT(store_imap_mailbox_state(f.a, f.inbox, &uv, &next, &hms1), 1);
	CHECK(hms1 == ms2);
	ifx_close(&f);
}

TEST(store_imap_copy_move)
{
	struct ifx f;
	ifx_open(&f);
	for (int i = 0; i < 3; i++)
		append(&f, "INBOX", "Subject: y\r\n\r\nb\r\n");
	struct store_mailbox arch;
	CHECK_INT(store_mailbox_get(f.a, "Archive", &arch), 1);
	uint32_t src[] = {1, 2, 7}, nu[3];
	CHECK_INT(
	    store_imap_copy(f.a, f.inbox, src, 3, arch.id, false, nu, NULL, f.err, sizeof f.err),
	    0);
	CHECK_INT(nu[0], 1);
	CHECK_INT(nu[1], 2);
	CHECK_INT(nu[2], 0);
	uint32_t mv[] = {3};
	CHECK_INT(
	    store_imap_copy(f.a, f.inbox, mv, 1, arch.id, true, nu, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(nu[0], 3);
	uint32_t *uids;
	size_t n;
	CHECK_INT(store_imap_uids(f.a, f.inbox, 1, &uids, &n, f.err, sizeof f.err), 0);
	CHECK_INT(n, 2);
	free(uids);
	CHECK_INT(store_imap_uids(f.a, arch.id, 1, &uids, &n, f.err, sizeof f.err), 0);
	CHECK_INT(n, 3);
	free(uids);
	ifx_close(&f);
}

TEST(store_imap_cache)
{
	struct ifx f;
	ifx_open(&f);
	struct store_imap_cache e = {
	    "aaaaaaaaaaaaaaaaaaaaaaaa", "(env)", "(body)", "(bs)", 5, 6, 4, NULL, 0};
	struct buf b = BUF_INIT;
	CHECK_INT(store_imap_cache_get(f.a, e.file_id, STORE_IMAP_BODY, &b), 0);
	CHECK_INT(store_imap_cache_put(f.a, &e, 1, f.err, sizeof f.err), 0);
	CHECK_INT(store_imap_cache_get(f.a, e.file_id, STORE_IMAP_ENVELOPE, &b), 1);
	CHECK_STR(buf_cstr(&b), "(env)");
	buf_reset(&b);
	CHECK_INT(store_imap_cache_get(f.a, e.file_id, STORE_IMAP_BODYSTRUCTURE, &b), 1);
	CHECK_STR(buf_cstr(&b), "(bs)");
	buf_free(&b);
	ifx_close(&f);
}

/* Closes the store, runs sql on the account's database (making it look
 * like one from an older Tern) and opens the store and account again. */
static void make_old(struct ifx *f, const char *sql)
{
	int64_t id = store_account_id(f->a);
	store_close(&f->s);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/accounts/%02d/%lld/account.db", f->dir, (int)(id % 100),
		 (long long)id);
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	f->s = store_open(f->dir, f->err, sizeof f->err);
	CHECK(f->s != NULL);
	CHECK_INT(store_account_open(f->s, "u@example.test", &f->a), 1);
}

TEST(store_imap_old_database_gets_cache)
{
	struct ifx f;
	ifx_open(&f);
	/* an account.db made before the cache table existed */
	make_old(&f, "DROP TABLE imap_cache");
	struct store_imap_cache e = {"bbbbbbbbbbbbbbbbbbbbbbbb", "e", "b", "s", 1, 1, 1, NULL, 0};
	CHECK_INT(store_imap_cache_put(f.a, &e, 1, f.err, sizeof f.err), 0);
	struct buf b = BUF_INIT;
	CHECK_INT(store_imap_cache_get(f.a, e.file_id, STORE_IMAP_BODY, &b), 1);
	CHECK_STR(buf_cstr(&b), "b");
	buf_free(&b);
	ifx_close(&f);
}

/* The file id of the message uid of INBOX. */
static int file_id_cb(void *ctx, const struct store_message *m)
{
	memcpy(ctx, m->file_id, 25);
	return 0;
}

static void file_id_of(struct ifx *f, uint32_t uid, char id[25])
{
	id[0] = '\0';
	CHECK_INT(
	    store_message_list(f->a, f->inbox, uid, uid, file_id_cb, id, f->err, sizeof f->err), 0);
	CHECK(id[0] != '\0');
}

TEST(store_imap_cache_headers)
{
	struct ifx f;
	ifx_open(&f);
	uint32_t u1 = append(&f, "INBOX", "Subject: a\r\n\r\nx\r\n");
	uint32_t u2 = append(&f, "INBOX", "Subject: b\r\n\r\ny\r\n");
	uint32_t u3 = append(&f, "INBOX", "Subject: c\r\n\r\nz\r\n");
	char id1[25], id2[25];
	file_id_of(&f, u1, id1);
	file_id_of(&f, u2, id2);
	/* text with a NUL in it, and an empty text */
	struct store_imap_cache e[2] = {
	    {id1, "(e1)", "(b1)", "(s1)", 4, 4, 4, "Subject: a\0z\n", 13},
	    {id2, "(e2)", "(b2)", "(s2)", 4, 4, 4, "", 0},
	};
	CHECK_INT(store_imap_cache_put(f.a, e, 2, f.err, sizeof f.err), 0);
	struct store_imap_headers *rows = NULL;
	size_t n = 0;
	CHECK_INT(store_imap_headers_list(f.a, f.inbox, 1, 100, 10, &rows, &n, f.err, sizeof f.err),
		  0);
	CHECK_INT(n, 3);
	CHECK_INT(rows[0].uid, u1);
	CHECK(rows[0].has);
	CHECK_INT(rows[0].len, 13);
	CHECK(memcmp(rows[0].text, "Subject: a\0z\n", 13) == 0);
	CHECK_INT(rows[1].uid, u2);
	CHECK(rows[1].has);
	CHECK_INT(rows[1].len, 0);
	CHECK_INT(rows[2].uid, u3);
	CHECK(!rows[2].has);
	CHECK(rows[2].text == NULL);
	store_imap_headers_free(rows, n);
	/* a put without headers (as FETCH does) keeps the stored text */
	e[0].envelope = "(E1)";
	e[0].headers = NULL;
	CHECK_INT(store_imap_cache_put(f.a, e, 1, f.err, sizeof f.err), 0);
	struct buf b = BUF_INIT;
	CHECK_INT(store_imap_cache_get(f.a, id1, STORE_IMAP_ENVELOPE, &b), 1);
	CHECK_STR(buf_cstr(&b), "(E1)");
	buf_free(&b);
	CHECK_INT(store_imap_headers_list(f.a, f.inbox, 2, 3, 10, &rows, &n, f.err, sizeof f.err),
		  0);
	CHECK_INT(n, 2);
	CHECK_INT(rows[0].uid, u2);
	store_imap_headers_free(rows, n);
	/* at most max rows */
	CHECK_INT(store_imap_headers_list(f.a, f.inbox, 1, 3, 2, &rows, &n, f.err, sizeof f.err),
		  0);
	CHECK_INT(n, 2);
	CHECK_INT(rows[1].uid, u2);
	store_imap_headers_free(rows, n);
	CHECK_INT(store_imap_headers_list(f.a, f.inbox, 1, 1, 10, &rows, &n, f.err, sizeof f.err),
		  0);
	CHECK_INT(n, 1);
	CHECK(rows[0].has);
	CHECK_INT(rows[0].len, 13);
	store_imap_headers_free(rows, n);
	ifx_close(&f);
}

TEST(store_imap_old_cache_gets_headers_column)
{
	struct ifx f;
	ifx_open(&f);
	uint32_t u1 = append(&f, "INBOX", "Subject: a\r\n\r\nx\r\n");
	char id1[25];
	file_id_of(&f, u1, id1);
	int64_t id = store_account_id(f.a);
	store_close(&f.s);
	/* an account.db whose imap_cache predates the headers column, with a row */
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/accounts/%02d/%lld/account.db", f.dir, (int)(id % 100),
		 (long long)id);
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db,
			       "DROP TABLE imap_cache;"
			       "CREATE TABLE imap_cache (file_id TEXT PRIMARY KEY,"
			       " envelope TEXT NOT NULL, body TEXT NOT NULL,"
			       " bodystructure TEXT NOT NULL) WITHOUT ROWID;",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK_INT(sqlite3_prepare_v2(db, "INSERT INTO imap_cache VALUES (?1, 'E', 'B', 'S')", -1,
				     &st, NULL),
		  SQLITE_OK);
	sqlite3_bind_text(st, 1, id1, -1, SQLITE_STATIC);
	CHECK_INT(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	f.s = store_open(f.dir, f.err, sizeof f.err);
	CHECK(f.s != NULL);
	CHECK_INT(store_account_open(f.s, "u@example.test", &f.a), 1);
	/* the old row is kept, without header text */
	struct buf b = BUF_INIT;
	CHECK_INT(store_imap_cache_get(f.a, id1, STORE_IMAP_ENVELOPE, &b), 1);
	CHECK_STR(buf_cstr(&b), "E");
	buf_free(&b);
	struct store_imap_headers *rows = NULL;
	size_t n = 0;
	CHECK_INT(store_imap_headers_list(f.a, f.inbox, 1, 10, 10, &rows, &n, f.err, sizeof f.err),
		  0);
	CHECK_INT(n, 1);
	CHECK(!rows[0].has);
	store_imap_headers_free(rows, n);
	/* round trip through the new column */
	struct store_imap_cache e = {id1, "E", "B", "S", 1, 1, 1, "Subject: a\n", 11};
	CHECK_INT(store_imap_cache_put(f.a, &e, 1, f.err, sizeof f.err), 0);
	CHECK_INT(store_imap_headers_list(f.a, f.inbox, 1, 10, 10, &rows, &n, f.err, sizeof f.err),
		  0);
	CHECK_INT(n, 1);
	CHECK(rows[0].has);
	CHECK_STR(rows[0].text, "Subject: a\n");
	store_imap_headers_free(rows, n);
	ifx_close(&f);
}

TEST(store_imap_append_batch)
{
	struct ifx f;
	ifx_open(&f);
	char paths[3][PATH_MAX];
	struct store_imap_append_msg m[3];
	for (int i = 0; i < 3; i++) {
		char id[25];
		fsutil_unique_id(id);
		snprintf(paths[i], sizeof paths[i], "%s/spool/%s", f.dir, id);
		int fd = open(paths[i], O_WRONLY | O_CREAT | O_EXCL, 0600);
		CHECK(fd >= 0);
		CHECK_INT(fsutil_write_all(fd, "A: b\r\n\r\nc\r\n", 11), 0);
		close(fd);
		m[i].path = paths[i];
		m[i].flags = i == 1 ? STORE_F_SEEN : 0;
		m[i].keywords = i == 2 ? "$Work" : NULL;
		m[i].internaldate = 1000 + i;
	}
	uint32_t uids[3], uv = 0;
	CHECK_INT(store_imap_append(f.a, "inbox", m, 3, &uv, uids, f.err, sizeof f.err), 0);
	CHECK_INT(uids[0], 1);
	CHECK_INT(uids[2], 3);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(f.a, "INBOX", &mb), 1);
	CHECK_INT(uv, mb.uidvalidity);
	CHECK_INT(mb.messages, 3);
	CHECK_INT(mb.unseen, 2);
	/* all or nothing: a bad keyword in the last message stores none */
	m[2].keywords = "bad\\kw";
	CHECK_INT(store_imap_append(f.a, "INBOX", m, 3, NULL, uids, f.err, sizeof f.err), -1);
	CHECK_INT(store_mailbox_get(f.a, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 3);
	m[2].keywords = NULL;
	CHECK_INT(store_imap_append(f.a, "Nope", m, 3, NULL, uids, f.err, sizeof f.err), -1);
	CHECK_INT(store_mailbox_get(f.a, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 3);
	for (int i = 0; i < 3; i++)
		unlink(paths[i]);
	ifx_close(&f);
}

static uint32_t recent_count(struct ifx *f, const char *mbox)
{
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(f->a, mbox, &mb), 1);
	return mb.recent;
}

TEST(store_imap_recent_claims)
{
	struct ifx f;
	ifx_open(&f);
	uint32_t lo = 99;
	/* an empty mailbox has nothing to claim */
	CHECK_INT(store_imap_recent(f.a, f.inbox, 0, true, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 0);
	append(&f, "INBOX", "Subject: a\r\n\r\nx\r\n");
	append(&f, "INBOX", "Subject: b\r\n\r\nx\r\n");
	CHECK_INT(recent_count(&f, "INBOX"), 2);
	/* looking (EXAMINE) leaves them recent */
	CHECK_INT(store_imap_recent(f.a, f.inbox, 2, false, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 1);
	CHECK_INT(recent_count(&f, "INBOX"), 2);
	/* a claim up to uid 1 takes uid 1 only */
	CHECK_INT(store_imap_recent(f.a, f.inbox, 1, true, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 1);
	CHECK_INT(recent_count(&f, "INBOX"), 1);
	/* the next claim gets the rest, the one after that nothing */
	CHECK_INT(store_imap_recent(f.a, f.inbox, 2, true, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 2);
	CHECK_INT(store_imap_recent(f.a, f.inbox, 2, true, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 0);
	CHECK_INT(store_imap_recent(f.a, f.inbox, 2, false, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 0);
	CHECK_INT(recent_count(&f, "INBOX"), 0);
	/* a new message is recent again; a copy is recent in its new mailbox */
	uint32_t u3 = append(&f, "INBOX", "Subject: c\r\n\r\nx\r\n");
	CHECK_INT(u3, 3);
	CHECK_INT(recent_count(&f, "INBOX"), 1);
	CHECK_INT(store_mailbox_create(f.a, "Other", 0, f.err, sizeof f.err), 0);
	struct store_mailbox other;
	CHECK_INT(store_mailbox_get(f.a, "Other", &other), 1);
	uint32_t one = 1, copied = 0;
	CHECK_INT(store_imap_copy(f.a, f.inbox, &one, 1, other.id, false, &copied, NULL, f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(recent_count(&f, "Other"), 1);
	CHECK_INT(store_imap_recent(f.a, f.inbox, 3, true, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 3);
	CHECK_INT(recent_count(&f, "INBOX"), 0);
	/* RENAME INBOX: the new mailbox keeps INBOX's mark */
	CHECK_INT(store_mailbox_rename(f.a, "INBOX", "Old", f.err, sizeof f.err), 0);
	CHECK_INT(recent_count(&f, "Old"), 0);
	ifx_close(&f);
}

TEST(store_imap_old_database_gets_recent_mark)
{
	struct ifx f;
	ifx_open(&f);
	append(&f, "INBOX", "Subject: a\r\n\r\nx\r\n");
	append(&f, "INBOX", "Subject: b\r\n\r\nx\r\n");
	/* an account.db of schema 2, before mailboxes.recent_uid */
	make_old(&f, "ALTER TABLE mailboxes DROP COLUMN recent_uid; PRAGMA user_version = 2;");
	/* the messages already there are not recent; new ones are */
	CHECK_INT(recent_count(&f, "INBOX"), 0);
	uint32_t lo = 99;
	CHECK_INT(store_imap_recent(f.a, f.inbox, 2, true, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 0);
	append(&f, "INBOX", "Subject: c\r\n\r\nx\r\n");
	CHECK_INT(recent_count(&f, "INBOX"), 1);
	CHECK_INT(store_imap_recent(f.a, f.inbox, 3, true, &lo, f.err, sizeof f.err), 0);
	CHECK_INT(lo, 3);
	ifx_close(&f);
}

/* Quotas (store-quota.c): usage follows every row that comes or goes, in
 * the same transaction; limits refuse growth only; fits for SMTP. */
static void usage(struct ifx *f, uint64_t storage, uint64_t messages)
{
	struct store_quota q;
	CHECK_INT(store_quota_get(f->a, &q, f->err, sizeof f->err), 0);
	CHECK(q.storage == storage);
	CHECK(q.messages == messages);
}

TEST(store_quota_usage_and_limits)
{
	struct ifx f;
	ifx_open(&f);
	int64_t id = store_account_id(f.a);
	usage(&f, 0, 0);
	uint32_t u1 = append(&f, "INBOX", "A: b\r\n\r\n0123456789\r\n"); /* 20 bytes */
	append(&f, "Sent", "A: b\r\n\r\nxy\r\n");                        /* 12 */
	usage(&f, 32, 2);
	struct store_mailbox arch;
	CHECK_INT(store_mailbox_get(f.a, "Archive", &arch), 1);
	uint32_t nu[1];
	CHECK_INT(store_imap_copy(f.a, f.inbox, &u1, 1, arch.id, false, nu, NULL, f.err,
				  sizeof f.err),
		  0);
	usage(&f, 52, 3); /* a copy counts again, though the file is shared */
	/* limits: 0 unlimited, the default, an account's own */
	CHECK_INT(store_quota_fits(f.s, id, 1000000, 1), STORE_QUOTA_FITS);
	store_set_quota_default(f.s, 60, 0);
	CHECK_INT(store_quota_fits(f.s, id, 8, 1), STORE_QUOTA_FITS);
	CHECK_INT(store_quota_fits(f.s, id, 9, 1), STORE_QUOTA_FULL);
	CHECK_INT(store_quota_fits(f.s, id, 61, 1), STORE_QUOTA_NEVER);
	CHECK_INT(store_imap_copy(f.a, f.inbox, &u1, 1, arch.id, false, nu, NULL, f.err,
				  sizeof f.err),
		  -2);
	usage(&f, 52, 3);
	/* a move adds nothing: fine even at the limit */
	uint64_t own = 52;
	CHECK_INT(store_quota_set(f.s, id, &own, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_quota_fits(f.s, id, 0, 1), STORE_QUOTA_FULL);
	CHECK_INT(store_imap_copy(f.a, f.inbox, &u1, 1, arch.id, true, nu, NULL, f.err,
				  sizeof f.err),
		  0);
	usage(&f, 52, 3);
	struct store_quota q;
	CHECK_INT(store_quota_get(f.a, &q, f.err, sizeof f.err), 0);
	CHECK(q.storage_from == STORE_QUOTA_ACCOUNT && q.storage_limit == 52 &&
	      q.messages_from == STORE_QUOTA_SERVER && q.messages_limit == 0);
	uint64_t two = 2, def = STORE_QUOTA_DEFAULT;
	CHECK_INT(store_quota_set(f.s, id, &def, &two, f.err, sizeof f.err), 0);
	CHECK_INT(store_quota_get(f.a, &q, f.err, sizeof f.err), 0);
	CHECK(q.storage_from == STORE_QUOTA_SERVER && q.storage_limit == 60 &&
	      q.messages_from == STORE_QUOTA_ACCOUNT && q.messages_limit == 2);
	/* a domain's limits come between */
	uint64_t dom = 40;
	CHECK_INT(store_quota_domain_set(f.s, "EXAMPLE.test", &dom, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_quota_get(f.a, &q, f.err, sizeof f.err), 0);
	CHECK(q.storage_from == STORE_QUOTA_DOMAIN && q.storage_limit == 40 &&
	      q.messages_from == STORE_QUOTA_ACCOUNT && q.messages_limit == 2);
	uint64_t ds, dm;
	CHECK_INT(store_quota_domain_get(f.s, "example.test", &ds, &dm, f.err, sizeof f.err), 0);
	CHECK(ds == 40 && dm == STORE_QUOTA_DEFAULT);
	CHECK_INT(store_quota_domain_set(f.s, "nope.test", &dom, NULL, f.err, sizeof f.err), -1);
	CHECK_INT(store_quota_domain_set(f.s, "example.test", &def, NULL, f.err, sizeof f.err), 0);
	/* expunge and mailbox delete give it back */
	bool done[1];
	CHECK_INT(store_imap_expunge(f.a, arch.id, nu, 1, done, NULL, f.err, sizeof f.err), 0);
	CHECK(done[0]);
	usage(&f, 32, 2);
	CHECK_INT(store_mailbox_delete(f.a, "Sent", f.err, sizeof f.err), 0);
	usage(&f, 20, 1);
	store_set_quota_default(f.s, 0, 0);
	CHECK_INT(store_quota_set(f.s, id, &def, &def, f.err, sizeof f.err), 0);
	CHECK_INT(store_quota_get(f.a, &q, f.err, sizeof f.err), 0);
	CHECK(q.storage_from == STORE_QUOTA_SERVER && q.storage_limit == 0 &&
	      q.messages_limit == 0);
	ifx_close(&f);
}
