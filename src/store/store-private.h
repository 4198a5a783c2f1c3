/*
 * store-private.h - what the files of src/store share and nobody else sees:
 * the struct store and struct store_account layouts, the SQLite helpers of
 * store-db.c, the name checks of store-name.c and the message-file helpers
 * that delivery and APPEND have in common.
 *
 * Lifetimes: struct store owns its server database, one struct
 * store_account per account opened in this process (kept until
 * store_close or store_account_remove, so a handle given out never
 * dangles), and at most max_open open account databases: the least
 * recently used one is closed when another must open, and reopened the
 * next time its handle is used.
 */
#ifndef TERN_STORE_PRIVATE_H
#define TERN_STORE_PRIVATE_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/* Schema versions (PRAGMA user_version). */
#define STORE_SERVER_SCHEMA 1
#define STORE_ACCOUNT_SCHEMA 4 /* 2: subscriptions by name, 3: recent mark (store-account.c),
				* 4: vacation_sent (store-vacation.c) */

/* Sieve vacation response tracking (store-vacation.c): part of the
 * account schema and its upgrade to version 4. */
#define STORE_VACATION_DDL                                                                         \
	"CREATE TABLE IF NOT EXISTS vacation_sent ("                                               \
	" sender TEXT NOT NULL,"                                                                   \
	" handle TEXT NOT NULL,"                                                                   \
	" expires INTEGER NOT NULL,"                                                               \
	" PRIMARY KEY (sender, handle)) WITHOUT ROWID;"                                            \
	"CREATE INDEX IF NOT EXISTS vacation_expires ON vacation_sent(expires);"

/* Open account databases kept by default (3 file descriptors each). */
#define STORE_ACCOUNT_CACHE_DEFAULT 64

/* Prepared statements cached per connection, keyed by the address of the
 * SQL string literal at the call site. */
#define STORE_DB_STMT_SLOTS 128

/* Bytes a message's keywords may take, as in struct store_message. */
#define STORE_KEYWORDS_MAX 1024

struct store_db {
	sqlite3 *h;  /* NULL when closed */
	const char *sql[STORE_DB_STMT_SLOTS];
	sqlite3_stmt *stmt[STORE_DB_STMT_SLOTS];
	size_t n_stmt;
	/* store_commit_arm: begin / commit / rollback are savepoints of one
	 * transaction, committed later by a commit thread (store-commit.c). */
	bool batch;
	bool batch_open;       /* that transaction has begun */
	bool batch_owed;       /* a savepoint was released into it */
	unsigned batch_depth;  /* savepoints open */
};

struct store_account {
	struct store *s;
	int64_t id;
	char *dir;            /* DATA/accounts/NN/ID */
	char *msgdir;         /* DATA/accounts/NN/ID/msg */
	struct store_db db;   /* db.h NULL while closed */
	int64_t inbox_id;     /* INBOX is never deleted, so its id is stable */
	struct store_commit *commit; /* in flight on a commit thread, NULL none */
	struct store_account *hash_next;
	struct store_account *lru_prev, *lru_next;  /* only while db is open */
};

struct store_sub {
	int id;
	int64_t account_id;  /* 0: every account */
	store_notify_cb cb;  /* NULL: unsubscribed, removed when not notifying */
	void *ctx;
};

struct store {
	char *dir;
	struct store_db db;  /* server.db */

	/* Every account handle opened in this process, by id. */
	struct store_account **buckets;
	size_t n_buckets, n_handles;
	/* Handles whose database is open, most recently used first. */
	struct store_account *lru_head, *lru_tail;
	size_t n_open, max_open;

	/* Where a bare "<postmaster>" goes (store_set_postmaster). */
	char postmaster[256];
	unsigned char srs_key[32]; /* DATA/srs.key, once read (store-srs.c) */
	bool srs_key_ok;
	char hostname[256];
	bool in_postmaster; /* resolving it: no second round */
	uint64_t quota_storage, quota_messages; /* default limits, 0 none (store-quota.c) */

	struct store_sub *subs;
	size_t n_subs, cap_subs;
	int next_sub_id;
	int notify_depth;
	bool subs_dirty;
	void (*hook)(void *ctx, int64_t account_id);
	void *hook_ctx;
	size_t expunged_max; /* store_set_expunged_max; 0: STORE_EXPUNGED_MAX */
	size_t fts_max_text; /* store_set_fts_max_text, when fts_max_set */
	bool fts_max_set;
	struct store_pool *pool;     /* commit threads (store-commit.c), NULL: none */
	struct store_indexer *indexer; /* store-indexer.c, NULL: none */
	struct store_account *armed; /* store_commit_arm, until launch */
	struct store_commit *arming; /* what the armed section collects */
};

/* ------------------------------------------------------------ store.c */

/* Formats a message into err (if err and errsz), always NUL-terminated. */
void store_err(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Creates a folder (existing is fine) and fsyncs its parent, so the folder
 * entry survives a crash.  0 or -1 with errno. */
int store_mkdir_durable(const char *path);
/* out = dir "/" name; -1 (and errno ENAMETOOLONG) if it does not fit. */
int store_path(char *out, size_t outsz, const char *dir, const char *name);
/* True if both paths exist and are the same inode (hard links of one
 * file); false also if either cannot be stat()ed. */
bool store_same_file(const char *a, const char *b);
/* Removes a folder tree (like rm -rf); a missing folder is fine. */
int store_remove_tree(const char *path);

/* ----------------------------------------------------- store-commit.c */

/* While a is armed: these queue what store-message.c would do now. */
/* path (a new link in msg/) is fdatasync'ed before the commit. */
void store_commit_hold_file(struct store_account *a, const char *path);
/* msg/ is synced before the commit. */
void store_commit_hold_dir(struct store_account *a);
/* file_id is unlinked after the commit is durable. */
void store_commit_hold_unlink(struct store_account *a, const char *file_id);
/* True (and the notification is held until the commit is durable) if
 * account_id is armed or busy. */
bool store_commit_hold_notify(struct store *s, int64_t account_id);
/* Waits (blocking) for a's commit in flight, if any, and runs the store's
 * part of its completion. */
void store_commit_wait_sync(struct store_account *a);
/* Commits the open transactions of accounts a[0..n) (all of one store) on
 * the commit threads, each after a sync of its msg/, in parallel, and
 * waits for all of them: rc[i] 0 (durable) or -1 (rolled back, err[i]).
 * -1 without commit threads (nothing done). */
int store_commit_run_all(struct store_account **a, size_t n, int *rc, char (*err)[256]);
/* Waits for every commit in flight and stops the threads (store_close). */
void store_commit_shutdown(struct store *s);

/* --------------------------------------------------------- store-db.c */

/* Opens path (creating it if create) with the Tern pragmas: WAL,
 * synchronous=FULL, foreign keys, 10 s busy timeout. */
int store_db_open(struct store_db *db, const char *path, bool create, char *err, size_t errsz);
/* Finalizes the cached statements and closes.  Accepts a closed db. */
void store_db_close(struct store_db *db);
/* One upgrade of a database file's schema: the SQL that takes a file of
 * version to - 1 to version to. */
struct store_db_upgrade {
	int to;
	const char *name; /* for error messages: "v2: subscriptions by name" */
	const char *sql;
};
/* Brings a database file to schema version, race-safely inside BEGIN
 * IMMEDIATE: a new file (PRAGMA user_version 0) gets ddl, the current
 * schema; an older one gets steps[] (in order, each from its to - 1) in
 * one transaction.  Sets user_version.  Fails (changing nothing) if the
 * file has a newer version or a step is missing or fails. */
int store_db_schema(struct store_db *db, const char *ddl, int version,
		    const struct store_db_upgrade *steps, size_t n_steps, char *err, size_t errsz);
/* Runs ddl (one or more statements, e.g. CREATE TABLE IF NOT EXISTS),
 * in the open transaction if there is one.  0, or -1 with err
 * ("database error: <what>: ..."). */
int store_db_exec_ddl(struct store_db *db, const char *ddl, const char *what, char *err,
		      size_t errsz);
/* The cached statement for sql (a string literal: it is keyed by its
 * address), reset and ready to bind; NULL with err on failure. */
sqlite3_stmt *store_db_stmt(struct store_db *db, const char *sql, char *err, size_t errsz);
/* Runs one cached statement that returns no rows of interest, with up to
 * the bindings already done by the caller.  0 or -1 with err. */
int store_db_run(struct store_db *db, sqlite3_stmt *st, char *err, size_t errsz);
/* Steps a cached statement (bound by the caller) for at most max rows,
 * calling read_row for each with the next slot of rows (row_size bytes
 * apart), then resets it, so the caller may use the database again before
 * it looks at the rows.  *n_out is the number of rows read.  0, or -1 with
 * err ("database error: <what>: ..."). */
int store_db_fetch(struct store_db *db, sqlite3_stmt *st, void *rows, size_t row_size,
		   size_t max, void (*read_row)(sqlite3_stmt *st, void *row), size_t *n_out,
		   const char *what, char *err, size_t errsz);
/* BEGIN IMMEDIATE (takes the write lock now, waiting up to the busy
 * timeout), BEGIN (deferred, for consistent reads), COMMIT, ROLLBACK.
 * A failed commit rolls back. */
int store_db_begin(struct store_db *db, char *err, size_t errsz);
int store_db_begin_read(struct store_db *db, char *err, size_t errsz);
/* Switches the connection between synchronous=FULL (the default: every
 * commit fsyncs the WAL) and NORMAL (commits are written but not synced;
 * they survive a crash of the process, and the next FULL commit of any
 * process, which syncs the whole WAL, makes them durable too).  Only for
 * changes whose loss on power failure is harmless (see store-queue.c).
 * Call outside a transaction.  0 or -1. */
int store_db_set_sync(struct store_db *db, bool full, char *err, size_t errsz);
int store_db_commit(struct store_db *db, char *err, size_t errsz);
void store_db_rollback(struct store_db *db);
/* Ends a transaction: rolls back when rc is -1, else commits; returns
 * rc, or -1 if the commit fails.  (Other negative values are refusals:
 * what the transaction did on the way, such as tables made, is kept.) */
int store_db_end(struct store_db *db, int rc, char *err, size_t errsz);
/* Writes "database error: <what>: <sqlite message>" into err. */
void store_db_error(struct store_db *db, const char *what, char *err, size_t errsz);
/* Binds a NUL-terminated string (kept by the caller until the statement
 * is reset). */
int store_db_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Copies column i into out (size outsz), truncating. */
void store_db_column_text(sqlite3_stmt *st, int i, char *out, size_t outsz);

/* store-fts.c: the FTS5 MATCH string of needle (store_fts_needle_ok) in
 * field, into m (empty); 0, or -1 with err (m freed). */
int store_fts_match_string(enum store_fts_field field, const char *needle, struct buf *m,
			   char *err, size_t errsz);

/* ------------------------------------------------------- store-name.c */

/* Validates and lower-cases a domain into out[256]. */
int store_name_domain(const char *in, char out[256], char *err, size_t errsz);
/* Validates a local part (dot-atom or UTF-8, 1..64 bytes). */
int store_name_local(const char *p, size_t n, char *err, size_t errsz);
/* Splits "local@domain" (exactly one '@') into a lower-cased domain and the
 * local part, lower-cased if lower_local.  local may be empty only if
 * allow_empty_local ("@domain").  out buffers are 256 bytes. */
int store_name_address(const char *in, bool lower_local, bool allow_empty_local,
		       char local[256], char domain[256], char *err, size_t errsz);
/* Validates a mailbox name and writes it into out[512] with a leading
 * "INBOX" component (any case) spelled "INBOX". */
int store_name_mailbox(const char *in, char out[512], char *err, size_t errsz);
/* Validates and normalises space-separated keywords (duplicates dropped,
 * case-insensitively) into out[STORE_KEYWORDS_MAX].  NULL means none. */
int store_name_keywords(const char *in, char out[STORE_KEYWORDS_MAX], char *err, size_t errsz);
/* True if s is a word of the space-separated list (case-insensitive). */
bool store_name_keyword_in(const char *list, const char *word, size_t wlen);
/* Applies a keyword change (already normalised by store_name_keywords) to
 * old into out: mode 0 replace, 1 add, -1 remove.  0, or -1 if the result
 * would exceed STORE_KEYWORDS_MAX. */
int store_name_keywords_merge(const char *old, int mode, const char *change,
			      char out[STORE_KEYWORDS_MAX], char *err, size_t errsz);
/* Creates the dkim_keys table if it is not there (store_open). */
int store_dkim_schema(struct store *s, char *err, size_t errsz);
/* Creates the mta_sts_policies table if it is not there (store_open). */
int store_mtasts_schema(struct store *s, char *err, size_t errsz);
/* REQUIRETLS marks of queued messages (store-requiretls.c): the table
 * (store_open); a mark, inside the queueing transaction; 1 marked, 0 not,
 * -1 error. */
int store_requiretls_schema(struct store *s, char *err, size_t errsz);
int store_requiretls_mark(struct store_db *db, int64_t msg_id, char *err, size_t errsz);
int store_requiretls_get(struct store *s, int64_t msg_id);
/* Creates the groups table if it is not there (store_open). */
int store_group_schema(struct store *s, char *err, size_t errsz);
/* Creates the app_passwords table if it is not there (store_open). */
int store_apppass_schema(struct store *s, char *err, size_t errsz);
int store_websession_schema(struct store *s, char *err, size_t errsz);
/* Creates the dmarc_events table if it is not there (store_open). */
int store_dmarc_schema(struct store *s, char *err, size_t errsz);
/* Creates the greylisting tables if they are not there (store_open). */
int store_greylist_schema(struct store *s, char *err, size_t errsz);
int store_spamlevel_schema(struct store *s, char *err, size_t errsz);
/* True if p[0..n) is valid UTF-8 (no overlongs, no surrogates). */
bool store_name_utf8(const char *p, size_t n);

/* ---------------------------------------------------- store-account.c */

/* The open database of an account (opening it, and closing the least
 * recently used other one, if needed); NULL with err.  The pointer is
 * valid until the next call that may open another account. */
struct store_db *store_account_db(struct store_account *a, char *err, size_t errsz);
/* Inside a write transaction: takes the next modseq of the account (and
 * bumps its state counter). */
int store_account_next_modseq(struct store_db *db, uint64_t *modseq, char *err, size_t errsz);
/* Inside a write transaction: takes the next UIDVALIDITY of the account,
 * max(last + 1, now), so values are unique and increase. */
int store_account_next_uidvalidity(struct store_db *db, uint32_t *out, char *err,
				   size_t errsz);
/* store-sieve.c: creates the sieve_scripts table if missing (at every
 * open of an account database). */
int store_sieve_schema(struct store_db *db, char *err, size_t errsz);
/* The sieve_duplicate table (store-duplicate.c), made by store_sieve_schema. */
extern const char store_duplicate_ddl[];
/* The spam classifier's tables (store-spam.c), at every account open. */
int store_spam_schema(struct store_db *db, char *err, size_t errsz);
int store_spamlist_schema(struct store_db *db, char *err, size_t errsz);
/* store-blob.c: creates the blobs table if missing (at every open of an
 * account database). */
int store_blob_schema(struct store_db *db, char *err, size_t errsz);
/* Path of a blob's file (id checked); 0 or -1. */
int store_blob_path(struct store_account *a, const char *id, char *out, size_t outsz);
/* Closes every account database and frees every handle (store_close). */
void store_account_free_all(struct store *s);

/* ------------------------------------------------------ store-quota.c */

/* Creates quota_usage and its triggers in an account database that lacks
 * them, counting what is there (at every open).  0 or -1. */
int store_quota_schema(struct store_db *db, char *err, size_t errsz);
/* Creates the account_quotas table of server.db if missing (store_open). */
int store_quota_server_schema(struct store *s, char *err, size_t errsz);
/* store-acl.c: acl in account.db, acl_grants in server.db */
int store_acl_schema(struct store_db *db, char *err, size_t errsz);
int store_acl_server_schema(struct store *s, char *err, size_t errsz);
/* Account id (address) is being removed: its entries go from every ACL
 * (a new account with that address must not inherit them), and the hints
 * about it.  0 or -1. */
int store_acl_forget(struct store *s, int64_t id, const char *address, char *err, size_t errsz);
/* Usage at the start of a write transaction that adds messages... */
struct store_quota_mark {
	uint64_t storage, messages;
};
int store_quota_begin(struct store_account *a, struct store_db *db, struct store_quota_mark *m,
		      char *err, size_t errsz);
/* ... and, before its commit, whether it grew the usage past a limit:
 * 0 fine, 1 over quota (err says so; the caller rolls back), -1 error. */
int store_quota_check(struct store_account *a, struct store_db *db,
		      const struct store_quota_mark *m, char *err, size_t errsz);

/* ---------------------------------------------------- store-mailbox.c */

/* Inside a write transaction: the id of mailbox name for a delivery,
 * creating it (and its parents) if create.  1 found or made, 0 no such
 * mailbox (or an invalid name), -1 error. */
int store_mailbox_delivery_id(struct store_db *db, const char *name, bool create, int64_t *id,
			      char *err, size_t errsz);

/* ---------------------------------------------------- store-message.c */

/* Checks that path is a regular file and sets *size to its size; 0, or -1
 * with err. */
int store_message_file_size(const char *path, uint64_t *size, char *err, size_t errsz);
/* The file id for a message file at path: its basename if that is a
 * fsutil_unique_id, else a new id. */
void store_message_file_id(const char *path, char out[25]);
/* Hard-links path into the account's msg/ folder as file_id.  An existing
 * entry for the same inode is fine (*created is then false); another file
 * of that name is an error.  The caller then syncs the folder with
 * store_message_sync before any row names the file (one sync may serve
 * several links). */
int store_message_link(struct store_account *a, const char *path, const char *file_id,
		       bool *created, char *err, size_t errsz);
/* fsyncs the account's msg/ folder. */
int store_message_sync(struct store_account *a, char *err, size_t errsz);
/* Inside a write transaction: gives m a new uid in mailbox_id (bumping the
 * mailbox's uidnext and highestmodseq to modseq) and inserts the row.
 * m->uid is set; m->modseq is set to modseq. */
int store_message_insert(struct store_account *a, struct store_db *db, int64_t mailbox_id,
			 struct store_message *m, uint64_t modseq, char *err, size_t errsz);
/* Inside a write transaction: deletes the row, remembers its uid in
 * expunged with modseq, bumps the mailbox's highestmodseq, and tells
 * whether the file lost its last reference (*unref). */
int store_message_delete(struct store_account *a, struct store_db *db, int64_t mailbox_id,
			 uint32_t uid, const char *file_id, uint64_t modseq, bool *unref,
			 char *err, size_t errsz);
/* store-imap.c.  Inside a write transaction that expunged messages from
 * mailbox_id: if the mailbox remembers more than the bound of expunged
 * uids (store_set_expunged_max), drops the oldest so that three quarters
 * remain and raises the mailbox's expunged floor to the highest modseq
 * dropped (store_imap_expunged_since then says "not complete" below it). */
int store_imap_expunged_trim(struct store_account *a, struct store_db *db, int64_t mailbox_id,
			     char *err, size_t errsz);
/* After commit: unlinks a file that no row refers to any more. */
void store_message_unlink(struct store_account *a, const char *file_id);

/* ---------------------------------------------------- store-mailbox.c */

/* Inside a write transaction: inserts an empty mailbox with a new
 * UIDVALIDITY and modseq (name already checked, and known not to exist).
 * *id_out may be NULL. */
int store_mailbox_insert(struct store_db *db, const char *name, unsigned special_use,
			 bool subscribed, int64_t *id_out, char *err, size_t errsz);

/* ------------------------------------------------------- store-fts.c */

/* Creates the full-text index tables and trigger if missing (each open). */
int store_fts_schema(struct store_db *db, char *err, size_t errsz);
/* What one message file gives the index, computed outside a transaction. */
struct store_fts_doc {
	bool ready;      /* false: write nothing (indexing off) */
	int state;       /* store-fts.c: complete, partial, failed */
	const char *why; /* when failed (static text) */
	struct buf hdr, body;
};
/* Extracts the indexed text of msg[0..len), at most max octets. */
void store_fts_extract(const char *msg, size_t len, size_t max, struct store_fts_doc *d);
/* The same for the file at path, at most max octets (0: indexing off,
 * d not ready). */
void store_fts_prepare_path(const char *path, size_t max, struct store_fts_doc *d);
/* The same with the store's bound, for a message being stored in a: with
 * a background indexer (store-indexer.c), d is left not ready and the file
 * stays in fts_pending for the indexer, told once the commit is durable
 * (store_indexer_changed); without one, the text now. */
void store_fts_prepare(struct store_account *a, const char *path, struct store_fts_doc *d);
/* Inside the write transaction that inserted a message row for file_id:
 * writes d's rows unless the file has some already (a copy).  Never fails
 * the transaction: an error is logged and undone alone (savepoint), the
 * file is marked failed if possible, else left without a row; both are
 * searched in the file. */
void store_fts_put(struct store_account *a, struct store_db *db, const char *file_id,
		   const struct store_fts_doc *d);
/* The same for account account_id (logs name it), on any connection;
 * false if the rows could not be written (logged). */
bool store_fts_put_id(int64_t account_id, struct store_db *db, const char *file_id,
		      const struct store_fts_doc *d);

void store_fts_doc_free(struct store_fts_doc *d);
/* Frees docs[0..n) and the array (NULL is fine). */
void store_fts_docs_free(struct store_fts_doc *docs, size_t n);
/* The store's search.index_max_text. */
size_t store_fts_max_text(const struct store *s);

/* --------------------------------------------------- store-indexer.c */

/* Stops the indexer (store_indexer_start, store.h): the batch in progress ends, what is queued stays pending. */
void store_indexer_stop(struct store *s);
/* search.index_max_text changed (a reload). */
void store_indexer_set_max_text(struct store *s, size_t max);
/* Whether messages stored through s are left for an indexer. */
bool store_indexer_defers(const struct store *s);
/* account_id changed, durably (a notification from this worker or
 * another): queued for indexing if this worker indexes it. */
void store_indexer_changed(struct store *s, int64_t account_id);
/* a's database was just opened: queued if files are pending (a worker
 * stopped, a store without an indexer, a database older than the index). */
void store_indexer_resume(struct store_account *a);
/* DATA/accounts/NN/ID of account id.  0 or -1 (too long). */
int store_account_dir(const struct store *s, int64_t id, char *out, size_t outsz);

#endif
