/*
 * store-acl.c - access control lists of mailboxes (RFC 4314; IMAP in
 * src/imap/imap-acl.c, docs/imap.md "Shared mailboxes").
 *
 * The ACL of a mailbox lives in its owner's account.db (table acl: one
 * row per identifier, the rights as a canonical string in the order
 * STORE_ACL_RIGHTS).  The owner's own rights are implicit (all of them)
 * and never stored.  A row is removed with its mailbox (trigger), and
 * follows it through a rename (rows are keyed by the mailbox id).
 *
 * To find the mailboxes shared with a user without opening every
 * account, server.db keeps a hint (table acl_grants): "owner may have
 * granted something to grantee".  It is written before the account row
 * and removed after the last row for the grantee goes, so it is a
 * superset of the truth: a stale hint costs one lookup and nothing else,
 * and what a user may do is always read from the owner's account.db.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "xalloc.h"

static const char acl_ddl[] =
	"CREATE TABLE IF NOT EXISTS acl ("
	" mailbox_id INTEGER NOT NULL,"
	" ident TEXT NOT NULL,"
	" rights TEXT NOT NULL,"
	" PRIMARY KEY (mailbox_id, ident)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS acl_ident ON acl(ident);"
	"CREATE TRIGGER IF NOT EXISTS acl_mailbox_gone AFTER DELETE ON mailboxes"
	" BEGIN DELETE FROM acl WHERE mailbox_id = old.id; END;";

static const char acl_server_ddl[] = "CREATE TABLE IF NOT EXISTS acl_grants ("
				     " grantee TEXT NOT NULL,"
				     " owner_id INTEGER NOT NULL,"
				     " PRIMARY KEY (grantee, owner_id)) WITHOUT ROWID;";

int store_acl_schema(struct store_db *db, char *err, size_t errsz)
{
	return store_db_exec_ddl(db, acl_ddl, "creating acl", err, errsz);
}

int store_acl_server_schema(struct store *s, char *err, size_t errsz)
{
	return store_db_exec_ddl(&s->db, acl_server_ddl, "creating acl_grants", err, errsz);
}

bool store_acl_ident_ok(const char *ident)
{
	size_t n = strlen(ident);
	if (n == 0 || n > STORE_ACL_IDENT_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)ident[i];
		if (c < 0x21 || c == 0x7f)
			return false;
	}
	return true;
}

int store_acl_canon(const char *rights, char out[STORE_ACL_RIGHTS_LEN + 1])
{
	static const char all[] = STORE_ACL_RIGHTS;
	size_t k = 0;
	for (size_t i = 0; all[i]; i++)
		if (strchr(rights, all[i]) != NULL)
			out[k++] = all[i];
	out[k] = '\0';
	for (const char *p = rights; *p; p++)
		if (strchr(all, *p) == NULL)
			return -1;
	return 0;
}

/* The hint row for (grantee, owner): added, or removed if the account
 * has no row for grantee left. */
static int hint_add(struct store *s, const char *grantee, int64_t owner, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
		&s->db, "INSERT OR IGNORE INTO acl_grants (grantee, owner_id) VALUES (?1, ?2)", err,
		errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, grantee);
	sqlite3_bind_int64(st, 2, owner);
	return store_db_run(&s->db, st, err, errsz);
}

static int hint_prune(struct store_account *a, struct store_db *db, const char *grantee,
		      char *err, size_t errsz)
{
	sqlite3_stmt *st =
		store_db_stmt(db, "SELECT EXISTS (SELECT 1 FROM acl WHERE ident = ?1)", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, grantee);
	int rc = sqlite3_step(st);
	bool left = rc == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
	if (rc != SQLITE_ROW)
		store_db_error(db, "reading acl", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return -1;
	if (left)
		return 0;
	st = store_db_stmt(&a->s->db,
			   "DELETE FROM acl_grants WHERE grantee = ?1 AND owner_id = ?2", err,
			   errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, grantee);
	sqlite3_bind_int64(st, 2, a->id);
	return store_db_run(&a->s->db, st, err, errsz);
}

int store_acl_set(struct store_account *a, int64_t mailbox_id, const char *ident,
		  const char *rights, char *err, size_t errsz)
{
	char canon[STORE_ACL_RIGHTS_LEN + 1];
	if (!store_acl_ident_ok(ident) || store_acl_canon(rights, canon) < 0) {
		store_err(err, errsz, "invalid identifier or rights");
		return -1;
	}
	for (const char *p = canon; *p; p++)
		if (strchr(STORE_ACL_OTHERS_RIGHTS, *p) == NULL) {
			store_err(err, errsz, "right '%c' is the owner's only (grantable: %s)", *p,
				  STORE_ACL_OTHERS_RIGHTS);
			return -1;
		}
	if (canon[0] != '\0' && hint_add(a->s, ident, a->id, err, errsz) < 0)
		return -1;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st;
	if (canon[0] == '\0') {
		st = store_db_stmt(db, "DELETE FROM acl WHERE mailbox_id = ?1 AND ident = ?2", err,
				   errsz);
	} else {
		/* at most STORE_ACL_MAX identifiers per mailbox */
		st = store_db_stmt(db,
				   "SELECT count(*) FROM acl WHERE mailbox_id = ?1 AND ident != ?2",
				   err, errsz);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, mailbox_id);
		store_db_bind_text(st, 2, ident);
		int rc = sqlite3_step(st);
		int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		if (rc != SQLITE_ROW)
			store_db_error(db, "counting acl", err, errsz);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW)
			goto fail;
		if (n >= STORE_ACL_MAX) {
			store_err(err, errsz, "too many identifiers in the ACL (at most %d)",
				  STORE_ACL_MAX);
			store_db_rollback(db);
			return -2;
		}
		st = store_db_stmt(db,
				   "INSERT INTO acl (mailbox_id, ident, rights) VALUES (?1, ?2, ?3)"
				   " ON CONFLICT (mailbox_id, ident) DO UPDATE SET rights = ?3",
				   err, errsz);
	}
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, mailbox_id);
	store_db_bind_text(st, 2, ident);
	if (canon[0] != '\0')
		store_db_bind_text(st, 3, canon);
	if (store_db_run(db, st, err, errsz) < 0 || store_db_commit(db, err, errsz) < 0)
		goto fail;
	if (canon[0] == '\0' && hint_prune(a, db, ident, err, errsz) < 0)
		return -1;
	/* sessions of the grantee that show this mailbox look again */
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

int store_acl_list(struct store_account *a, int64_t mailbox_id,
		   int (*cb)(void *ctx, const char *ident, const char *rights), void *ctx,
		   char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
		db, "SELECT ident, rights FROM acl WHERE mailbox_id = ?1 ORDER BY ident", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	struct row {
		char ident[STORE_ACL_IDENT_MAX + 1];
		char rights[STORE_ACL_RIGHTS_LEN + 1];
	} rows[STORE_ACL_MAX];
	size_t n = 0, i;
	int rc;
	while (n < STORE_ACL_MAX && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_db_column_text(st, 0, rows[n].ident, sizeof rows[n].ident);
		store_db_column_text(st, 1, rows[n].rights, sizeof rows[n].rights);
		n++;
	}
	if (n < STORE_ACL_MAX && rc != SQLITE_DONE) {
		store_db_error(db, "reading acl", err, errsz);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	for (i = 0; i < n; i++)
		if (cb(ctx, rows[i].ident, rows[i].rights) < 0)
			return -1;
	return 0;
}

int store_acl_rights(struct store_account *a, int64_t mailbox_id, const char *ident,
		     char out[STORE_ACL_RIGHTS_LEN + 1], char *err, size_t errsz)
{
	out[0] = '\0';
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT group_concat(rights, '') FROM acl"
					 " WHERE mailbox_id = ?1 AND ident IN (?2, 'anyone')",
					 err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	store_db_bind_text(st, 2, ident);
	char all[2 * (STORE_ACL_RIGHTS_LEN + 1)];
	all[0] = '\0';
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		store_db_column_text(st, 0, all, sizeof all);
	else
		store_db_error(db, "reading acl", err, errsz);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return -1;
	if (store_acl_canon(all, out) < 0)
		out[0] = '\0'; /* a row not written by store_acl_set */
	return 0;
}

int store_acl_granted(struct store_account *a, const char *ident,
		      int (*cb)(void *ctx, int64_t mailbox_id, const char *rights), void *ctx,
		      char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT mailbox_id, group_concat(rights, '') FROM acl"
					 " WHERE ident IN (?1, 'anyone') GROUP BY mailbox_id",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, ident);
	/* read all rows first: the callback may use the database */
	struct row {
		int64_t id;
		char rights[2 * (STORE_ACL_RIGHTS_LEN + 1)];
	} *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			rows = xreallocarray(rows, cap, sizeof *rows);
		}
		rows[n].id = sqlite3_column_int64(st, 0);
		store_db_column_text(st, 1, rows[n].rights, sizeof rows[n].rights);
		n++;
	}
	if (rc != SQLITE_DONE)
		store_db_error(db, "reading acl", err, errsz);
	sqlite3_reset(st);
	int r = rc == SQLITE_DONE ? 0 : -1;
	for (size_t i = 0; r == 0 && i < n; i++) {
		char canon[STORE_ACL_RIGHTS_LEN + 1];
		if (store_acl_canon(rows[i].rights, canon) == 0 && canon[0] != '\0')
			r = cb(ctx, rows[i].id, canon);
	}
	free(rows);
	return r;
}

/* The owner ids a bound statement on acl_grants returns, into *ids (the
 * caller frees it), so callbacks may use the database.  0 or -1. */
static int read_ids(struct store *s, sqlite3_stmt *st, int64_t **ids, size_t *n, char *err,
		    size_t errsz)
{
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*ids = xreallocarray(*ids, cap, sizeof **ids);
		}
		(*ids)[(*n)++] = sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		store_db_error(&s->db, "reading acl_grants", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_acl_owners(struct store *s, const char *ident,
		     int (*cb)(void *ctx, int64_t owner_id), void *ctx, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "SELECT DISTINCT owner_id FROM acl_grants"
					 " WHERE grantee IN (?1, 'anyone') ORDER BY owner_id",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, ident);
	int64_t *ids = NULL;
	size_t n = 0;
	int r = read_ids(s, st, &ids, &n, err, errsz);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = cb(ctx, ids[i]);
	free(ids);
	return r;
}

/* Removes ident's entries from a's ACLs. */
static int forget_in(struct store_account *a, const char *ident, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db, "DELETE FROM acl WHERE ident = ?1", err, errsz);
	if (st == NULL)
		goto fail;
	store_db_bind_text(st, 1, ident);
	if (store_db_run(db, st, err, errsz) < 0 || store_db_commit(db, err, errsz) < 0)
		goto fail;
	store_notify(a->s, a->id);
	return 0;
fail:
	store_db_rollback(db);
	return -1;
}

int store_acl_forget(struct store *s, int64_t id, const char *address, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(&s->db, "SELECT owner_id FROM acl_grants WHERE grantee = ?1",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, address);
	int64_t *ids = NULL;
	size_t n = 0;
	int r = read_ids(s, st, &ids, &n, err, errsz);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct store_account *a = NULL;
		if (ids[i] != id && store_account_open_id(s, ids[i], &a) == 1)
			r = forget_in(a, address, err, errsz);
	}
	free(ids);
	if (r < 0)
		return -1;
	st = store_db_stmt(&s->db, "DELETE FROM acl_grants WHERE grantee = ?1 OR owner_id = ?2", err,
			   errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, address);
	sqlite3_bind_int64(st, 2, id);
	return store_db_run(&s->db, st, err, errsz);
}
