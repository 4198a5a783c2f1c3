/*
 * store-mailbox.c - an account's mailboxes: list, get (with counts),
 * create, delete, rename, subscribe.
 *
 * Mailbox ids come from AUTOINCREMENT, so an id is never given to a second
 * mailbox (IMAP OBJECTID MAILBOXID, JMAP).  UIDVALIDITY comes from the
 * account's counter, which only increases, so a (name, UIDVALIDITY) pair is
 * never seen twice even across delete/create and rename.  Every change
 * takes a new modseq (which also bumps the account's state counter) and
 * ends with store_notify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-private.h"
#include "xalloc.h"

#define MAILBOX_COLUMNS                                                                 \
	"m.id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq, m.special_use,"       \
	" EXISTS (SELECT 1 FROM subscriptions s WHERE s.name = m.name),"                \
	" (SELECT count(*) FROM messages WHERE mailbox_id = m.id),"                     \
	" (SELECT count(*) FROM messages WHERE mailbox_id = m.id AND flags & 1 = 0),"   \
	" (SELECT total(size) FROM messages WHERE mailbox_id = m.id),"                  \
	" (SELECT count(*) FROM messages WHERE mailbox_id = m.id AND flags & 8 <> 0),"  \
	" (SELECT count(*) FROM messages WHERE mailbox_id = m.id AND uid > m.recent_uid),"  \
	" (SELECT total(size) FROM messages WHERE mailbox_id = m.id AND flags & 8 <> 0)"

static void read_mailbox(sqlite3_stmt *st, void *row)
{
	struct store_mailbox *mb = row;
	memset(mb, 0, sizeof *mb);
	mb->id = sqlite3_column_int64(st, 0);
	store_db_column_text(st, 1, mb->name, sizeof mb->name);
	mb->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	mb->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
	mb->highestmodseq = (uint64_t)sqlite3_column_int64(st, 4);
	mb->special_use = (unsigned)sqlite3_column_int(st, 5);
	mb->subscribed = sqlite3_column_int(st, 6) != 0;
	mb->messages = (uint32_t)sqlite3_column_int64(st, 7);
	mb->unseen = (uint32_t)sqlite3_column_int64(st, 8);
	mb->size = (uint64_t)sqlite3_column_double(st, 9);
	mb->deleted = (uint32_t)sqlite3_column_int64(st, 10);
	mb->recent = (uint32_t)sqlite3_column_int64(st, 11);
	mb->deleted_size = (uint64_t)sqlite3_column_double(st, 12);
}

/* 1 and *id set if the mailbox exists, 0 if not, -1 on error. */
static int find_id(struct store_db *db, const char *name, int64_t *id, char *err, size_t errsz)
{
	sqlite3_stmt *st =
		store_db_stmt(db, "SELECT id FROM mailboxes WHERE name = ?1", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		store_db_error(db, "looking up mailbox", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int store_mailbox_insert(struct store_db *db, const char *name, unsigned special_use,
			 bool subscribed, int64_t *id_out, char *err, size_t errsz)
{
	uint32_t uidvalidity;
	uint64_t modseq;
	if (store_account_next_uidvalidity(db, &uidvalidity, err, errsz) < 0 ||
	    store_account_next_modseq(db, &modseq, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
		db,
		"INSERT INTO mailboxes (name, uidvalidity, uidnext, highestmodseq, special_use,"
		" created) VALUES (?1, ?2, 1, ?3, ?4, ?5)",
		err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
	sqlite3_bind_int(st, 4, (int)special_use);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	if (id_out)
		*id_out = sqlite3_last_insert_rowid(db->h);
	if (!subscribed)
		return 0;
	st = store_db_stmt(db, "INSERT OR IGNORE INTO subscriptions (name) VALUES (?1)", err,
			   errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	return store_db_run(db, st, err, errsz);
}

/* Inside a write transaction: creates every missing superior level of name
 * ("a" and "a/b" for "a/b/c"), as RFC 9051 6.3.4 asks of CREATE. */
static int create_parents(struct store_db *db, const char *name, char *err, size_t errsz)
{
	char parent[512];
	for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/')) {
		size_t n = (size_t)(p - name);
		memcpy(parent, name, n);
		parent[n] = '\0';
		int64_t id;
		int r = find_id(db, parent, &id, err, errsz);
		if (r < 0)
			return -1;
		if (r == 0 && store_mailbox_insert(db, parent, 0, false, NULL, err, errsz) < 0)
			return -1;
	}
	return 0;
}

int store_mailbox_delivery_id(struct store_db *db, const char *name, bool create, int64_t *id,
			      char *err, size_t errsz)
{
	char mname[512];
	if (store_name_mailbox(name, mname, NULL, 0) < 0)
		return 0;
	int r = find_id(db, mname, id, err, errsz);
	if (r != 0 || !create)
		return r;
	if (create_parents(db, mname, err, errsz) < 0 ||
	    store_mailbox_insert(db, mname, 0, false, id, err, errsz) < 0)
		return -1;
	return 1;
}

#define LIST_CHUNK 64

int store_mailbox_list(struct store_account *a,
		       int (*cb)(void *ctx, const struct store_mailbox *mb), void *ctx, char *err,
		       size_t errsz)
{
	/* A chunk at a time, the statement reset before the callbacks run:
	 * a callback may use the store, even other accounts (which can close
	 * this one's database; store_account_db reopens it). */
	struct store_mailbox *rows = xmalloc(LIST_CHUNK * sizeof *rows);
	char last[512] = "";
	int ret = 0;
	for (;;) {
		struct store_db *db = store_account_db(a, err, errsz);
		sqlite3_stmt *st = db ? store_db_stmt(db,
						      "SELECT " MAILBOX_COLUMNS
						      " FROM mailboxes m WHERE m.name > ?1"
						      " ORDER BY m.name LIMIT ?2",
						      err, errsz)
				      : NULL;
		if (st == NULL) {
			ret = -1;
			break;
		}
		store_db_bind_text(st, 1, last);
		sqlite3_bind_int(st, 2, LIST_CHUNK);
		size_t n;
		if (store_db_fetch(db, st, rows, sizeof *rows, LIST_CHUNK, read_mailbox, &n,
				   "listing mailboxes", err, errsz) < 0) {
			ret = -1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (cb(ctx, &rows[i]) != 0)
				goto out;
		}
		if (n < LIST_CHUNK)
			break;
		memcpy(last, rows[n - 1].name, sizeof last);
	}
out:
	free(rows);
	return ret;
}

bool store_mailbox_name_ok(const char *name)
{
	char mname[512];
	return store_name_mailbox(name, mname, NULL, 0) == 0;
}

int store_mailbox_get(struct store_account *a, const char *name, struct store_mailbox *mb)
{
	char mname[512];
	if (store_name_mailbox(name, mname, NULL, 0) < 0)
		return 0;
	struct store_db *db = store_account_db(a, NULL, 0);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
		db, "SELECT " MAILBOX_COLUMNS " FROM mailboxes m WHERE m.name = ?1", NULL, 0);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, mname);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_mailbox(st, mb);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

#define SU_KNOWN                                                                        \
	(STORE_SU_SENT | STORE_SU_DRAFTS | STORE_SU_TRASH | STORE_SU_JUNK |              \
	 STORE_SU_ARCHIVE | STORE_SU_ALL | STORE_SU_FLAGGED)

int store_mailbox_create(struct store_account *a, const char *name, unsigned special_use,
			 char *err, size_t errsz)
{
	char mname[512];
	if (store_name_mailbox(name, mname, err, errsz) < 0)
		return -1;
	if (special_use & ~(unsigned)SU_KNOWN) {
		store_err(err, errsz, "unknown special-use bits %#x", special_use);
		return -1;
	}
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	int64_t id;
	int r = find_id(db, mname, &id, err, errsz);
	if (r != 0) {
		if (r > 0)
			store_err(err, errsz, "mailbox %s already exists", mname);
		goto fail;
	}
	if (create_parents(db, mname, err, errsz) < 0 ||
	    store_mailbox_insert(db, mname, special_use, false, NULL, err, errsz) < 0 ||
	    store_db_commit(db, err, errsz) < 0)
		goto fail;
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

int store_mailbox_delete(struct store_account *a, const char *name, char *err, size_t errsz)
{
	char mname[512];
	if (store_name_mailbox(name, mname, err, errsz) < 0)
		return -1;
	if (strcmp(mname, "INBOX") == 0) {
		store_err(err, errsz, "INBOX cannot be deleted");
		return -1;
	}
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	char (*unref)[25] = NULL;
	size_t n_unref = 0, cap = 0;
	int64_t id;
	uint64_t modseq;
	int r = find_id(db, mname, &id, err, errsz);
	if (r <= 0) {
		if (r == 0)
			store_err(err, errsz, "mailbox %s does not exist", mname);
		goto fail;
	}
	/* The files only this mailbox refers to go once the rows are gone. */
	sqlite3_stmt *st = store_db_stmt(
		db,
		"SELECT DISTINCT file_id FROM messages m WHERE mailbox_id = ?1 AND NOT EXISTS"
		" (SELECT 1 FROM messages o WHERE o.file_id = m.file_id AND o.mailbox_id <> ?1)",
		err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n_unref == cap) {
			cap = cap ? cap * 2 : 64;
			unref = xreallocarray(unref, cap, sizeof *unref);
		}
		store_db_column_text(st, 0, unref[n_unref++], sizeof unref[0]);
	}
	if (rc != SQLITE_DONE)
		store_db_error(db, "listing message files", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto fail;
	static const char *const deletes[] = {
		"DELETE FROM messages WHERE mailbox_id = ?1",
		"DELETE FROM expunged WHERE mailbox_id = ?1",
		"DELETE FROM expunged_floor WHERE mailbox_id = ?1",
		"DELETE FROM mailboxes WHERE id = ?1",
	};
	for (size_t i = 0; i < sizeof deletes / sizeof deletes[0]; i++) {
		st = store_db_stmt(db, deletes[i], err, errsz);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, id);
		if (store_db_run(db, st, err, errsz) < 0)
			goto fail;
	}
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0 ||
	    store_db_commit(db, err, errsz) < 0)
		goto fail;
	for (size_t i = 0; i < n_unref; i++)
		store_message_unlink(a, unref[i]);
	free(unref);
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	free(unref);
	return -1;
}

/* RENAME INBOX (RFC 9051 6.3.6): a new mailbox takes INBOX's messages with
 * their uids (it has its own UIDVALIDITY); INBOX stays, empty, with the
 * uids remembered as expunged; INBOX's children are not touched. */
static int rename_inbox(struct store_account *a, struct store_db *db, const char *to,
			char *err, size_t errsz)
{
	int64_t new_id;
	uint64_t modseq;
	if (create_parents(db, to, err, errsz) < 0 ||
	    store_mailbox_insert(db, to, 0, false, &new_id, err, errsz) < 0 ||
	    store_account_next_modseq(db, &modseq, err, errsz) < 0)
		return -1;
	static const char *const steps[] = {
		"INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
		" SELECT ?1, uid, ?3 FROM messages WHERE mailbox_id = ?1",
		"UPDATE messages SET mailbox_id = ?2 WHERE mailbox_id = ?1",
		"UPDATE mailboxes SET uidnext = (SELECT uidnext FROM mailboxes WHERE id = ?1),"
		" recent_uid = (SELECT recent_uid FROM mailboxes WHERE id = ?1),"
		" highestmodseq = ?3 WHERE id = ?2",
		"UPDATE mailboxes SET highestmodseq = ?3 WHERE id = ?1",
	};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		sqlite3_stmt *st = store_db_stmt(db, steps[i], err, errsz);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, a->inbox_id);
		sqlite3_bind_int64(st, 2, new_id);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
		if (store_db_run(db, st, err, errsz) < 0)
			return -1;
	}
	return store_imap_expunged_trim(a, db, a->inbox_id, err, errsz);
}

struct renamed {
	int64_t id;
	char name[512];  /* the new name */
};

/* Renames from (and its children from/...) to to.  Each new name is
 * checked; the rows are first moved to temporary names (which real names
 * cannot collide with: they hold a control character) so that renaming a
 * mailbox to its own parent's name never trips the unique index half-way. */
static int rename_tree(struct store_db *db, int64_t from_id, const char *from, const char *to,
		       char *err, size_t errsz)
{
	size_t from_len = strlen(from), to_len = strlen(to);
	struct renamed *rows = xmalloc(sizeof *rows);
	size_t n = 1, cap = 1;
	int ret = -1;
	rows[0].id = from_id;
	memcpy(rows[0].name, to, to_len + 1);

	/* Children: names in ["from/", "from0"), '0' being '/' + 1. */
	char lo[512], hi[512];
	snprintf(lo, sizeof lo, "%s/", from);
	snprintf(hi, sizeof hi, "%s0", from);
	sqlite3_stmt *st = store_db_stmt(
		db, "SELECT id, name FROM mailboxes WHERE name >= ?1 AND name < ?2", err, errsz);
	if (st == NULL)
		goto out;
	store_db_bind_text(st, 1, lo);
	store_db_bind_text(st, 2, hi);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char old[512];
		store_db_column_text(st, 1, old, sizeof old);
		if (n == cap) {
			cap *= 2;
			rows = xreallocarray(rows, cap, sizeof *rows);
		}
		rows[n].id = sqlite3_column_int64(st, 0);
		int len = snprintf(rows[n].name, sizeof rows[n].name, "%s%s", to, old + from_len);
		if (len < 0 || len > 500) {
			store_err(err, errsz, "mailbox name too long after rename: %s%s", to,
				  old + from_len);
			rc = SQLITE_ABORT;
			break;
		}
		n++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ABORT)
		store_db_error(db, "listing child mailboxes", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto out;

	/* A new name may only be taken by a mailbox that is itself being
	 * renamed (a name in the old tree). */
	for (size_t i = 0; i < n; i++) {
		int64_t other;
		int r = find_id(db, rows[i].name, &other, err, errsz);
		if (r < 0)
			goto out;
		const char *nm = rows[i].name;
		bool in_old_tree = strncmp(nm, from, from_len) == 0 &&
				   (nm[from_len] == '\0' || nm[from_len] == '/');
		if (r > 0 && !in_old_tree) {
			store_err(err, errsz, "mailbox %s already exists", nm);
			goto out;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			char tmp[32];
			snprintf(tmp, sizeof tmp, "\x01rename-%lld", (long long)rows[i].id);
			st = store_db_stmt(db, "UPDATE mailboxes SET name = ?2 WHERE id = ?1", err,
					   errsz);
			if (st == NULL)
				goto out;
			sqlite3_bind_int64(st, 1, rows[i].id);
			store_db_bind_text(st, 2, pass == 0 ? tmp : rows[i].name);
			if (store_db_run(db, st, err, errsz) < 0)
				goto out;
		}
	}
	ret = 0;
out:
	free(rows);
	return ret;
}

int store_mailbox_rename(struct store_account *a, const char *from, const char *to, char *err,
			 size_t errsz)
{
	char fname[512], tname[512];
	if (store_name_mailbox(from, fname, err, errsz) < 0 ||
	    store_name_mailbox(to, tname, err, errsz) < 0)
		return -1;
	size_t flen = strlen(fname);
	/* (INBOX's children stay where they are, so INBOX may become one.) */
	if (strcmp(fname, "INBOX") != 0 && strncmp(tname, fname, flen) == 0 &&
	    (tname[flen] == '\0' || tname[flen] == '/')) {
		store_err(err, errsz, "cannot rename mailbox %s to itself or below itself", fname);
		return -1;
	}
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	int64_t from_id, to_id;
	uint64_t modseq;
	int r = find_id(db, fname, &from_id, err, errsz);
	if (r <= 0) {
		if (r == 0)
			store_err(err, errsz, "mailbox %s does not exist", fname);
		goto fail;
	}
	r = find_id(db, tname, &to_id, err, errsz);
	if (r != 0) {
		if (r > 0)
			store_err(err, errsz, "mailbox %s already exists", tname);
		goto fail;
	}
	if (from_id == a->inbox_id) {
		if (rename_inbox(a, db, tname, err, errsz) < 0)
			goto fail;
	} else {
		if (create_parents(db, tname, err, errsz) < 0 ||
		    rename_tree(db, from_id, fname, tname, err, errsz) < 0 ||
		    store_account_next_modseq(db, &modseq, err, errsz) < 0)
			goto fail;
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto fail;
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

/* Subscriptions are names (store-account.c): SUBSCRIBE of a name no
 * mailbox has succeeds (RFC 9051 6.3.7 lets a server check, and
 * LIST-EXTENDED's \NonExistent \Subscribed exists for them), DELETE and
 * RENAME leave them alone, and subscribing twice or unsubscribing a name
 * not subscribed is fine (6.3.7, 6.3.8). */
int store_mailbox_subscribe(struct store_account *a, const char *name, bool on, char *err,
			    size_t errsz)
{
	char mname[512];
	if (store_name_mailbox(name, mname, err, errsz) < 0)
		return -1;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	uint64_t modseq;
	sqlite3_stmt *st;
	if (on) {
		/* The count is only taken when the name is new, so a full list
		 * still takes a repeated SUBSCRIBE. */
		st = store_db_stmt(db,
				   "SELECT (SELECT count(*) FROM subscriptions),"
				   " EXISTS (SELECT 1 FROM subscriptions WHERE name = ?1)",
				   err, errsz);
		if (st == NULL)
			goto fail;
		store_db_bind_text(st, 1, mname);
		int rc = sqlite3_step(st);
		int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		bool have = rc == SQLITE_ROW && sqlite3_column_int(st, 1) != 0;
		if (rc != SQLITE_ROW)
			store_db_error(db, "counting subscriptions", err, errsz);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			goto fail;
		if (have) {
			store_db_rollback(db);
			return 0;
		}
		if (n >= STORE_SUBSCRIPTIONS_MAX) {
			store_err(err, errsz, "too many subscriptions (at most %d)",
				  STORE_SUBSCRIPTIONS_MAX);
			store_db_rollback(db);
			return -2;
		}
		st = store_db_stmt(db, "INSERT INTO subscriptions (name) VALUES (?1)", err,
				   errsz);
	} else {
		st = store_db_stmt(db, "DELETE FROM subscriptions WHERE name = ?1", err, errsz);
	}
	if (st == NULL)
		goto fail;
	store_db_bind_text(st, 1, mname);
	if (store_db_run(db, st, err, errsz) < 0)
		goto fail;
	if (sqlite3_changes(db->h) == 0) {
		store_db_rollback(db);
		return 0;
	}
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0 ||
	    store_db_commit(db, err, errsz) < 0)
		goto fail;
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

#define SUB_CHUNK 64

static void read_name(sqlite3_stmt *st, void *row)
{
	store_db_column_text(st, 0, row, 512);
}

int store_mailbox_subscriptions(struct store_account *a,
				int (*cb)(void *ctx, const char *name), void *ctx, char *err,
				size_t errsz)
{
	/* In chunks, as store_mailbox_list, so that cb may use the store. */
	char(*rows)[512] = xmalloc(SUB_CHUNK * sizeof *rows);
	char last[512] = "";
	int ret = 0;
	for (;;) {
		struct store_db *db = store_account_db(a, err, errsz);
		sqlite3_stmt *st = db ? store_db_stmt(db,
						      "SELECT name FROM subscriptions WHERE name > ?1"
						      " ORDER BY name LIMIT ?2",
						      err, errsz)
				      : NULL;
		if (st == NULL) {
			ret = -1;
			break;
		}
		store_db_bind_text(st, 1, last);
		sqlite3_bind_int(st, 2, SUB_CHUNK);
		size_t n;
		if (store_db_fetch(db, st, rows, sizeof rows[0], SUB_CHUNK, read_name, &n,
				   "listing subscriptions", err, errsz) < 0) {
			ret = -1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (cb(ctx, rows[i]) != 0)
				goto out;
		}
		if (n < SUB_CHUNK)
			break;
		memcpy(last, rows[n - 1], sizeof last);
	}
out:
	free(rows);
	return ret;
}
