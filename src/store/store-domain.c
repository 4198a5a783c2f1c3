/*
 * store-domain.c - the domains we receive mail for (server.db, table
 * domains).  Names are checked and lower-cased on the way in, so every
 * lookup is an exact match on the unique index.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store-private.h"
#include "xalloc.h"

int store_domain_add(struct store *s, const char *domain, char *err, size_t errsz)
{
	char name[256];
	if (store_name_domain(domain, name, err, errsz) < 0)
		return -1;
	struct store_db *db = &s->db;
	sqlite3_stmt *st = store_db_stmt(
		db, "INSERT INTO domains (name, created) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
		err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	if (sqlite3_changes(db->h) == 0) {
		store_err(err, errsz, "domain %s already exists", name);
		return -1;
	}
	return 0;
}

int store_domain_remove(struct store *s, const char *domain, char *err, size_t errsz)
{
	char name[256];
	if (store_name_domain(domain, name, err, errsz) < 0)
		return -1;
	struct store_db *db = &s->db;
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
		db,
		"SELECT d.id,"
		" EXISTS (SELECT 1 FROM accounts WHERE domain_id = d.id),"
		" EXISTS (SELECT 1 FROM aliases WHERE domain_id = d.id)"
		" FROM domains d WHERE d.name = ?1",
		err, errsz);
	if (st == NULL)
		goto fail;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			store_err(err, errsz, "domain %s does not exist", name);
		else
			store_db_error(db, "looking up domain", err, errsz);
		sqlite3_reset(st);
		goto fail;
	}
	int64_t id = sqlite3_column_int64(st, 0);
	bool has_accounts = sqlite3_column_int(st, 1) != 0;
	bool has_aliases = sqlite3_column_int(st, 2) != 0;
	sqlite3_reset(st);
	if (has_accounts || has_aliases) {
		store_err(err, errsz, "still has %s; remove them first",
			  has_accounts ? "accounts" : "aliases");
		goto fail;
	}
	st = store_db_stmt(db, "DELETE FROM domains WHERE id = ?1", err, errsz);
	if (st == NULL)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	if (store_db_run(db, st, err, errsz) < 0)
		goto fail;
	if (store_db_commit(db, err, errsz) < 0)
		return -1;
	/* Its keys go with it (a crash in between leaves keys nobody uses,
	 * removed with the domain if it is added and removed again). */
	if (store_dmarc_action_set(s, name, NULL, err, errsz) < 0 ||
	    store_greylist_domain_set(s, name, false, err, errsz) < 0)
		return -1;
	return store_dkim_remove_domain(s, name, err, errsz);
fail:
	store_db_rollback(db);
	return -1;
}

int store_domain_exists(struct store *s, const char *domain)
{
	char name[256];
	if (store_name_domain(domain, name, NULL, 0) < 0)
		return 0;  /* not even a domain name: certainly not ours */
	sqlite3_stmt *st =
		store_db_stmt(&s->db, "SELECT 1 FROM domains WHERE name = ?1", NULL, 0);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

#define LIST_CHUNK 128

/* A domain name row into a char[256]. */
static void read_name(sqlite3_stmt *st, void *row)
{
	store_db_column_text(st, 0, row, 256);
}

int store_domain_list(struct store *s, int (*cb)(void *ctx, const char *domain), void *ctx,
		      char *err, size_t errsz)
{
	/* Rows are read a chunk at a time and the statement is reset before
	 * the callbacks run, so a callback may use the store freely. */
	char (*names)[256] = xmalloc(LIST_CHUNK * sizeof *names);
	char last[256] = "";
	int ret = 0;
	for (;;) {
		sqlite3_stmt *st = store_db_stmt(
			&s->db, "SELECT name FROM domains WHERE name > ?1 ORDER BY name LIMIT ?2",
			err, errsz);
		if (st == NULL) {
			ret = -1;
			break;
		}
		store_db_bind_text(st, 1, last);
		sqlite3_bind_int(st, 2, LIST_CHUNK);
		size_t n;
		if (store_db_fetch(&s->db, st, names, sizeof *names, LIST_CHUNK, read_name, &n,
				   "listing domains", err, errsz) < 0) {
			ret = -1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (cb(ctx, names[i]) != 0)
				goto out;
		}
		if (n < LIST_CHUNK)
			break;
		memcpy(last, names[n - 1], sizeof last);
	}
out:
	free(names);
	return ret;
}
