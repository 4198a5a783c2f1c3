/*
 * store-account.c - accounts: their rows in server.db, their folders, and
 * the handles (struct store_account) through which the rest of the store
 * reaches an account's database.
 *
 * Handles are cheap and kept for the life of the struct store (or until
 * the account is removed), so a pointer handed out never dangles.  What is
 * expensive is an open account.db (three file descriptors, a page cache,
 * prepared statements): those are bounded by an LRU list, and a handle
 * whose database was closed reopens it the next time it is used.  Delivery
 * to an account that was used recently therefore costs no open() at all.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fsutil.h"
#include "log.h"
#include "store-private.h"
#include "xalloc.h"

/* account.db.  messages is WITHOUT ROWID: its primary key (mailbox, uid) is
 * how it is read, so the rows live in that order.  The mailbox counts of
 * store_mailbox_get are index-only: messages_size for the count and the
 * total size, the partial indexes (which hold flags so they cover the
 * query) for unseen and deleted, touching only the rows counted.
 * messages_file makes "is this file still referenced" a single probe;
 * messages_modseq and expunged_modseq serve CONDSTORE/QRESYNC's "changed
 * since".  subscriptions holds names, not mailbox ids: a subscription
 * outlives DELETE and stays with its name across RENAME (RFC 9051 6.3.6,
 * 6.3.7), and a name that no mailbox has may be subscribed. */
#define SUBSCRIPTIONS_DDL "CREATE TABLE IF NOT EXISTS subscriptions (name TEXT PRIMARY KEY) WITHOUT ROWID;"

static const char account_ddl[] =
	"CREATE TABLE IF NOT EXISTS counters ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" modseq INTEGER NOT NULL,"       /* last modseq given out */
	" state INTEGER NOT NULL,"        /* JMAP-style state, bumped per change */
	" uidvalidity INTEGER NOT NULL);" /* last UIDVALIDITY given out */
	"INSERT INTO counters (id, modseq, state, uidvalidity) VALUES (1, 0, 0, 0)"
	" ON CONFLICT DO NOTHING;"
	"CREATE TABLE IF NOT EXISTS mailboxes ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT NOT NULL UNIQUE,"
	" uidvalidity INTEGER NOT NULL,"
	" uidnext INTEGER NOT NULL DEFAULT 1,"
	" highestmodseq INTEGER NOT NULL,"
	" special_use INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL,"
	" recent_uid INTEGER NOT NULL DEFAULT 0);" /* highest uid claimed as recent */
	SUBSCRIPTIONS_DDL
	"CREATE TABLE IF NOT EXISTS messages ("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
	" uid INTEGER NOT NULL,"
	" file_id TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" internaldate INTEGER NOT NULL,"
	" flags INTEGER NOT NULL DEFAULT 0,"
	" keywords TEXT NOT NULL DEFAULT '',"
	" modseq INTEGER NOT NULL,"
	" thread_id INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS messages_file ON messages(file_id);"
	"CREATE INDEX IF NOT EXISTS messages_modseq ON messages(mailbox_id, modseq);"
	"CREATE INDEX IF NOT EXISTS messages_size ON messages(mailbox_id, size);"
	"CREATE INDEX IF NOT EXISTS messages_unseen ON messages(mailbox_id, flags)"
	" WHERE flags & 1 = 0;"
	"CREATE INDEX IF NOT EXISTS messages_deleted ON messages(mailbox_id, flags)"
	" WHERE flags & 8 <> 0;"
	"CREATE TABLE IF NOT EXISTS expunged ("
	" mailbox_id INTEGER NOT NULL,"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox_id, uid)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS expunged_modseq ON expunged(mailbox_id, modseq);"
	STORE_VACATION_DDL;

/* Upgrades of an account.db made by an older Tern (store_db_schema), one
 * per schema version, in order. */
static const struct store_db_upgrade account_upgrades[] = {
    /* Version 2: subscriptions by name.  Version 1 had a subscribed flag
     * on the mailbox row, so a subscription went with DELETE and moved
     * with RENAME, and a missing name could not be subscribed. */
    {2, "account schema v2: subscriptions by name",
     SUBSCRIPTIONS_DDL "INSERT OR IGNORE INTO subscriptions (name)"
		       " SELECT name FROM mailboxes WHERE subscribed <> 0;"
		       "ALTER TABLE mailboxes DROP COLUMN subscribed;"},
    /* Version 3: the \Recent mark (store_imap_recent).  The messages
     * already there are not recent: no session saw \Recent before. */
    {3, "account schema v3: recent mark",
     "ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL DEFAULT 0;"
     "UPDATE mailboxes SET recent_uid = uidnext - 1;"},
    /* Version 4: who got which Sieve vacation reply until when. */
    {4, "account schema v4: vacation replies", STORE_VACATION_DDL},
};
#define N_ACCOUNT_UPGRADES (sizeof account_upgrades / sizeof account_upgrades[0])

/* store-imap.c: creates the IMAP cache table if missing. */
int store_imap_schema(struct store_db *db, char *err, size_t errsz);

static const struct {
	const char *name;
	unsigned special_use;
} default_mailboxes[] = {
	{"INBOX", 0},
	{"Sent", STORE_SU_SENT},
	{"Drafts", STORE_SU_DRAFTS},
	{"Trash", STORE_SU_TRASH},
	{"Junk", STORE_SU_JUNK},
	{"Archive", STORE_SU_ARCHIVE},
};

/* DATA/accounts/NN/ID, or DATA/accounts/NN when id_level is false. */
static int account_dir(const struct store *s, int64_t id, bool id_level, char *out,
		       size_t outsz)
{
	int n = id_level ? snprintf(out, outsz, "%s/accounts/%02d/%lld", s->dir,
				    (int)(id % 100), (long long)id)
			 : snprintf(out, outsz, "%s/accounts/%02d", s->dir, (int)(id % 100));
	return (n < 0 || (size_t)n >= outsz) ? -1 : 0;
}

int store_account_dir(const struct store *s, int64_t id, char *out, size_t outsz)
{
	return account_dir(s, id, true, out, outsz);
}

/* ------------------------------------------------------------ counters */

int store_account_next_modseq(struct store_db *db, uint64_t *modseq, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "UPDATE counters SET modseq = modseq + 1, state = state + 1"
					 " WHERE id = 1 RETURNING modseq",
					 err, errsz);
	if (st == NULL)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_db_error(db, "taking a modseq", err, errsz);
		sqlite3_reset(st);
		return -1;
	}
	*modseq = (uint64_t)sqlite3_column_int64(st, 0);
	return store_db_run(db, st, err, errsz);
}

int store_account_next_uidvalidity(struct store_db *db, uint32_t *out, char *err,
				   size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
		db,
		"UPDATE counters SET uidvalidity = max(uidvalidity + 1, ?1) WHERE id = 1"
		" RETURNING uidvalidity",
		err, errsz);
	if (st == NULL)
		return -1;
	time_t now = time(NULL);
	sqlite3_bind_int64(st, 1, now > 0 && now < (time_t)UINT32_MAX ? (sqlite3_int64)now : 1);
	if (sqlite3_step(st) != SQLITE_ROW) {
		store_db_error(db, "taking a UIDVALIDITY", err, errsz);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_int64 v = sqlite3_column_int64(st, 0);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	if (v <= 0 || v > (sqlite3_int64)UINT32_MAX) {
		store_err(err, errsz, "UIDVALIDITY values exhausted");
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

int store_account_state(struct store_account *a, uint64_t *modseq, uint64_t *state)
{
	struct store_db *db = store_account_db(a, NULL, 0);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
		store_db_stmt(db, "SELECT modseq, state FROM counters WHERE id = 1", NULL, 0);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (modseq)
			*modseq = (uint64_t)sqlite3_column_int64(st, 0);
		if (state)
			*state = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* ------------------------------------------------------------- handles */

static size_t bucket_of(const struct store *s, int64_t id)
{
	return (size_t)((uint64_t)id * 11400714819323198485ull >> 40) & (s->n_buckets - 1);
}

static struct store_account *handle_find(struct store *s, int64_t id)
{
	if (s->n_buckets == 0)
		return NULL;
	for (struct store_account *a = s->buckets[bucket_of(s, id)]; a; a = a->hash_next) {
		if (a->id == id)
			return a;
	}
	return NULL;
}

static void handle_insert(struct store *s, struct store_account *a)
{
	if (s->n_handles + 1 > s->n_buckets) {
		size_t nb = s->n_buckets ? s->n_buckets * 2 : 64;
		struct store_account **old = s->buckets;
		size_t old_n = s->n_buckets;
		s->buckets = xcalloc(nb, sizeof *s->buckets);
		s->n_buckets = nb;
		for (size_t i = 0; i < old_n; i++) {
			struct store_account *h = old[i];
			while (h) {
				struct store_account *next = h->hash_next;
				size_t b = bucket_of(s, h->id);
				h->hash_next = s->buckets[b];
				s->buckets[b] = h;
				h = next;
			}
		}
		free(old);
	}
	size_t b = bucket_of(s, a->id);
	a->hash_next = s->buckets[b];
	s->buckets[b] = a;
	s->n_handles++;
}

static void lru_unlink(struct store *s, struct store_account *a)
{
	if (a->lru_prev)
		a->lru_prev->lru_next = a->lru_next;
	else
		s->lru_head = a->lru_next;
	if (a->lru_next)
		a->lru_next->lru_prev = a->lru_prev;
	else
		s->lru_tail = a->lru_prev;
	a->lru_prev = a->lru_next = NULL;
}

static void lru_push_front(struct store *s, struct store_account *a)
{
	a->lru_prev = NULL;
	a->lru_next = s->lru_head;
	if (s->lru_head)
		s->lru_head->lru_prev = a;
	s->lru_head = a;
	if (s->lru_tail == NULL)
		s->lru_tail = a;
}

static void handle_close_db(struct store *s, struct store_account *a)
{
	if (a->db.h == NULL)
		return;
	store_commit_wait_sync(a);
	lru_unlink(s, a);
	store_db_close(&a->db);
	s->n_open--;
}

static void handle_free(struct store *s, struct store_account *a)
{
	handle_close_db(s, a);
	free(a->dir);
	free(a->msgdir);
	free(a);
}

/* Unhooks and frees the handle of id, if this process has one. */
static void handle_drop(struct store *s, int64_t id)
{
	if (s->n_buckets == 0)
		return;
	struct store_account **pp = &s->buckets[bucket_of(s, id)];
	while (*pp) {
		if ((*pp)->id == id) {
			struct store_account *a = *pp;
			*pp = a->hash_next;
			s->n_handles--;
			handle_free(s, a);
			return;
		}
		pp = &(*pp)->hash_next;
	}
}

void store_account_free_all(struct store *s)
{
	for (size_t i = 0; i < s->n_buckets; i++) {
		struct store_account *a = s->buckets[i];
		while (a) {
			struct store_account *next = a->hash_next;
			handle_free(s, a);
			a = next;
		}
	}
	free(s->buckets);
	s->buckets = NULL;
	s->n_buckets = s->n_handles = 0;
}

struct store_db *store_account_db(struct store_account *a, char *err, size_t errsz)
{
	struct store *s = a->s;
	/* A commit thread has the connection: wait for it (store-commit.c;
	 * callers on an event loop check store_account_busy first). */
	if (a->commit)
		store_commit_wait_sync(a);
	if (a->db.h) {
		if (s->lru_head != a) {
			lru_unlink(s, a);
			lru_push_front(s, a);
		}
		return &a->db;
	}
	while (s->n_open >= s->max_open && s->lru_tail)
		handle_close_db(s, s->lru_tail);

	char path[PATH_MAX];
	if (store_path(path, sizeof path, a->dir, "account.db") < 0) {
		store_err(err, errsz, "account path too long");
		return NULL;
	}
	if (store_db_open(&a->db, path, false, err, errsz) < 0)
		return NULL;
	if (store_db_schema(&a->db, account_ddl, STORE_ACCOUNT_SCHEMA, account_upgrades,
			    N_ACCOUNT_UPGRADES, err, errsz) < 0)
		goto fail;
	/* IMAP's tables (store-imap.c): CREATE ... IF NOT EXISTS at every open,
	 * so databases made before they existed get them too. */
	if (store_imap_schema(&a->db, err, errsz) < 0 || store_sieve_schema(&a->db, err, errsz) < 0 ||
	    store_spam_schema(&a->db, err, errsz) < 0 ||
	    store_spamlist_schema(&a->db, err, errsz) < 0 ||
	    store_quota_schema(&a->db, err, errsz) < 0 ||
	    store_blob_schema(&a->db, err, errsz) < 0 ||
	    store_fts_schema(&a->db, err, errsz) < 0 ||
	    store_acl_schema(&a->db, err, errsz) < 0)
		goto fail;
	sqlite3_stmt *st = store_db_stmt(&a->db, "SELECT id FROM mailboxes WHERE name = 'INBOX'",
					 err, errsz);
	if (st == NULL)
		goto fail;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		a->inbox_id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		store_err(err, errsz, "account %lld has no INBOX", (long long)a->id);
	else
		store_db_error(&a->db, "finding INBOX", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		goto fail;
	lru_push_front(s, a);
	s->n_open++;
	store_indexer_resume(a);
	return &a->db;
fail:
	store_db_close(&a->db);
	return NULL;
}

int store_account_open_id(struct store *s, int64_t id, struct store_account **out)
{
	struct store_account *a = handle_find(s, id);
	if (a == NULL) {
		sqlite3_stmt *st =
			store_db_stmt(&s->db, "SELECT 1 FROM accounts WHERE id = ?1", NULL, 0);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, id);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return -1;
		char dir[PATH_MAX];
		if (account_dir(s, id, true, dir, sizeof dir) < 0)
			return -1;
		a = xcalloc(1, sizeof *a);
		a->s = s;
		a->id = id;
		a->dir = xstrdup(dir);
		size_t n = strlen(dir) + sizeof "/msg";
		a->msgdir = xmalloc(n);
		snprintf(a->msgdir, n, "%s/msg", dir);
		handle_insert(s, a);
	}
	char err[256];
	if (store_account_db(a, err, sizeof err) == NULL) {
		log_error("action=account_open account=%lld error=\"%s\"", (long long)id, err);
		return -1;
	}
	*out = a;
	return 1;
}

int store_account_open(struct store *s, const char *address, struct store_account **out)
{
	struct store_account_info info;
	int r = store_account_get(s, address, &info);
	if (r <= 0)
		return r;
	return store_account_open_id(s, info.id, out);
}

int64_t store_account_id(const struct store_account *a)
{
	return a->id;
}

/* ------------------------------------------------------- administration */

static int check_pwhash(const char *pwhash, char *err, size_t errsz)
{
	size_t n = strlen(pwhash);
	if (n >= sizeof ((struct store_account_info *)0)->pwhash) {
		store_err(err, errsz, "password hash too long (%zu bytes)", n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pwhash[i];
		if (c < 0x21 || c > 0x7e) {
			store_err(err, errsz, "password hash contains a space or control character");
			return -1;
		}
	}
	return 0;
}

/* Canonical "local@domain", lower-cased, into out[256]. */
static int canonical_address(const char *in, char out[256], char domain[256], char *err,
			     size_t errsz)
{
	char local[256];
	if (store_name_address(in, true, false, local, domain, err, errsz) < 0)
		return -1;
	int n = snprintf(out, 256, "%s@%s", local, domain);
	if (n < 0 || n >= 256) {
		store_err(err, errsz, "address too long (at most 255 bytes)");
		return -1;
	}
	return 0;
}

/* Creates the account's folder, msg/ and account.db with its default
 * mailboxes.  A folder left by an add that crashed before its commit
 * (the id is then given out again) is removed first. */
static int create_account_files(struct store *s, int64_t id, char *err, size_t errsz)
{
	char dir[PATH_MAX], path[PATH_MAX];
	if (account_dir(s, id, false, dir, sizeof dir) < 0 ||
	    store_mkdir_durable(dir) < 0) {
		store_err(err, errsz, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (account_dir(s, id, true, dir, sizeof dir) < 0 || store_remove_tree(dir) < 0 ||
	    store_mkdir_durable(dir) < 0) {
		store_err(err, errsz, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (store_path(path, sizeof path, dir, "msg") < 0 || store_mkdir_durable(path) < 0) {
		store_err(err, errsz, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	struct store_db db;
	if (store_path(path, sizeof path, dir, "account.db") < 0) {
		store_err(err, errsz, "account path too long");
		return -1;
	}
	if (store_db_open(&db, path, true, err, errsz) < 0)
		return -1;
	if (store_db_schema(&db, account_ddl, STORE_ACCOUNT_SCHEMA, account_upgrades,
			    N_ACCOUNT_UPGRADES, err, errsz) < 0 ||
	    store_db_begin(&db, err, errsz) < 0)
		goto fail;
	for (size_t i = 0; i < sizeof default_mailboxes / sizeof default_mailboxes[0]; i++) {
		if (store_mailbox_insert(&db, default_mailboxes[i].name,
					 default_mailboxes[i].special_use, true, NULL, err,
					 errsz) < 0) {
			store_db_rollback(&db);
			goto fail;
		}
	}
	if (store_db_commit(&db, err, errsz) < 0)
		goto fail;
	store_db_close(&db);
	/* The database file's own folder entry. */
	if (fsutil_fsync_dir(dir) < 0) {
		store_err(err, errsz, "cannot sync %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
fail:
	store_db_close(&db);
	return -1;
}

/* The canonical address (addr, domain) and a checked password hash (NULL
 * becomes "", no password) for add and set_password. */
static int account_args(const char *address, const char **pwhash, char addr[256],
			char domain[256], char *err, size_t errsz)
{
	if (canonical_address(address, addr, domain, err, errsz) < 0)
		return -1;
	if (*pwhash == NULL)
		*pwhash = "";
	return check_pwhash(*pwhash, err, errsz);
}

int store_account_add(struct store *s, const char *address, const char *pwhash, int64_t *id_out,
		      char *err, size_t errsz)
{
	char addr[256], domain[256];
	if (account_args(address, &pwhash, addr, domain, err, errsz) < 0)
		return -1;
	struct store_db *db = &s->db;
	int64_t id = 0;
	/* The server.db write lock is held until the account's files exist:
	 * whoever sees the row finds a complete account. */
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
		db,
		"SELECT d.id, EXISTS (SELECT 1 FROM accounts WHERE address = ?2)"
		" FROM domains d WHERE d.name = ?1",
		err, errsz);
	if (st == NULL)
		goto fail;
	store_db_bind_text(st, 1, domain);
	store_db_bind_text(st, 2, addr);
	int rc = sqlite3_step(st);
	int64_t domain_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	bool exists = rc == SQLITE_ROW && sqlite3_column_int(st, 1) != 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_db_error(db, "looking up domain", err, errsz);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		store_err(err, errsz, "domain %s does not exist", domain);
	else if (exists)
		store_err(err, errsz, "account %s already exists", addr);
	if (rc != SQLITE_ROW || exists)
		goto fail;

	st = store_db_stmt(db,
			   "INSERT INTO accounts (address, domain_id, pwhash, created)"
			   " VALUES (?1, ?2, ?3, ?4)",
			   err, errsz);
	if (st == NULL)
		goto fail;
	store_db_bind_text(st, 1, addr);
	sqlite3_bind_int64(st, 2, domain_id);
	store_db_bind_text(st, 3, pwhash);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (store_db_run(db, st, err, errsz) < 0)
		goto fail;
	id = sqlite3_last_insert_rowid(db->h);
	if (create_account_files(s, id, err, errsz) < 0)
		goto fail_files;
	if (store_db_commit(db, err, errsz) < 0)
		goto fail_files;
	if (id_out)
		*id_out = id;
	log_info("action=account_add account=%lld address=%s", (long long)id, addr);
	return 0;
fail_files:;
	char dir[PATH_MAX];
	if (account_dir(s, id, true, dir, sizeof dir) == 0)
		(void)store_remove_tree(dir);
fail:
	store_db_rollback(db);
	return -1;
}

int store_account_remove(struct store *s, const char *address, char *err, size_t errsz)
{
	char addr[256], domain[256];
	if (canonical_address(address, addr, domain, err, errsz) < 0)
		return -1;
	struct store_db *db = &s->db;
	/* its entries in others' ACLs first (store-acl.c): if that fails,
	 * nothing is removed */
	struct store_account *gone = NULL;
	if (store_account_open(s, addr, &gone) == 1 &&
	    store_acl_forget(s, store_account_id(gone), addr, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db, "DELETE FROM accounts WHERE address = ?1 RETURNING id",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, addr);
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		store_db_error(db, "removing account", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (id == 0) {
		store_err(err, errsz, "account %s does not exist", addr);
		return -1;
	}
	/* The row is gone first: nobody resolves to the account any more, so
	 * its folder can go.  A crash in between leaves an orphan folder that
	 * no id will name again (ids are AUTOINCREMENT). */
	handle_drop(s, id);
	char dir[PATH_MAX];
	if (account_dir(s, id, true, dir, sizeof dir) < 0 || store_remove_tree(dir) < 0) {
		store_err(err, errsz, "account %s removed, but deleting %s failed: %s", addr, dir,
			  strerror(errno));
		return -1;
	}
	log_info("action=account_remove account=%lld address=%s", (long long)id, addr);
	return 0;
}

int store_account_set_password(struct store *s, const char *address, const char *pwhash,
			       char *err, size_t errsz)
{
	char addr[256], domain[256];
	if (account_args(address, &pwhash, addr, domain, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "UPDATE accounts SET pwhash = ?2, scram = '' WHERE address = ?1",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, addr);
	store_db_bind_text(st, 2, pwhash);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		return -1;
	if (sqlite3_changes(s->db.h) == 0) {
		store_err(err, errsz, "account %s does not exist", addr);
		return -1;
	}
	return 0;
}

int store_account_set_scram(struct store *s, const char *address, const char *scram, char *err,
			    size_t errsz)
{
	char addr[256], domain[256];
	if (canonical_address(address, addr, domain, err, errsz) < 0)
		return -1;
	if (scram == NULL)
		scram = "";
	/* Same rules as a password hash: one printable token that fits. */
	if (check_pwhash(scram, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "UPDATE accounts SET scram = ?2 WHERE address = ?1",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, addr);
	store_db_bind_text(st, 2, scram);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		return -1;
	if (sqlite3_changes(s->db.h) == 0) {
		store_err(err, errsz, "account %s does not exist", addr);
		return -1;
	}
	return 0;
}

static void read_info(sqlite3_stmt *st, void *row)
{
	struct store_account_info *info = row;
	info->id = sqlite3_column_int64(st, 0);
	store_db_column_text(st, 1, info->address, sizeof info->address);
	store_db_column_text(st, 2, info->pwhash, sizeof info->pwhash);
	info->created = sqlite3_column_int64(st, 3);
	store_db_column_text(st, 4, info->scram, sizeof info->scram);
}

int store_account_get(struct store *s, const char *address, struct store_account_info *info)
{
	char addr[256], domain[256];
	if (canonical_address(address, addr, domain, NULL, 0) < 0)
		return 0;  /* not a valid address: no such account */
	sqlite3_stmt *st = store_db_stmt(
		&s->db, "SELECT id, address, pwhash, created, scram FROM accounts WHERE address = ?1",
		NULL, 0);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, addr);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_info(st, info);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

#define LIST_CHUNK 64

int store_account_list(struct store *s, const char *domain,
		       int (*cb)(void *ctx, const struct store_account_info *a), void *ctx,
		       char *err, size_t errsz)
{
	char dom[256] = "";
	if (domain) {
		if (store_name_domain(domain, dom, err, errsz) < 0)
			return -1;
		int r = store_domain_exists(s, dom);
		if (r < 0) {
			store_db_error(&s->db, "looking up domain", err, errsz);
			return -1;
		}
		if (r == 0) {
			store_err(err, errsz, "domain %s does not exist", dom);
			return -1;
		}
	}
	/* A chunk at a time, statement reset before the callbacks run (see
	 * store_domain_list). */
	struct store_account_info *rows = xmalloc(LIST_CHUNK * sizeof *rows);
	char last[256] = "";
	int ret = 0;
	for (;;) {
		sqlite3_stmt *st = store_db_stmt(
			&s->db,
			"SELECT a.id, a.address, a.pwhash, a.created, a.scram FROM accounts a"
			" WHERE a.address > ?1 AND (?2 = '' OR a.domain_id ="
			" (SELECT id FROM domains WHERE name = ?2))"
			" ORDER BY a.address LIMIT ?3",
			err, errsz);
		if (st == NULL) {
			ret = -1;
			break;
		}
		store_db_bind_text(st, 1, last);
		store_db_bind_text(st, 2, dom);
		sqlite3_bind_int(st, 3, LIST_CHUNK);
		size_t n;
		if (store_db_fetch(&s->db, st, rows, sizeof *rows, LIST_CHUNK, read_info, &n,
				   "listing accounts", err, errsz) < 0) {
			ret = -1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (cb(ctx, &rows[i]) != 0)
				goto out;
		}
		if (n < LIST_CHUNK)
			break;
		memcpy(last, rows[n - 1].address, sizeof last);
	}
out:
	free(rows);
	return ret;
}
