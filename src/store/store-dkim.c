/*
 * store-dkim.c - the DKIM keys of our domains: one row per key in
 * server.db (dkim_keys) and its private key in DATA/dkim/DOMAIN/SELECTOR.pem
 * (folder 0700, file 0600, owned by the server's user).  The keys
 * themselves are made by the caller (src/mailauth/dkim-keys.c); the store
 * only keeps them.
 *
 * A key is "active" (it signs, and its record must be published) or
 * "published" (rotated out: it no longer signs, but its record stays in
 * DNS so that mail signed with it still verifies, until it is retired,
 * which deletes row and file).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "store-private.h"
#include "xalloc.h"

static const char dkim_ddl[] = "CREATE TABLE IF NOT EXISTS dkim_keys ("
			       " id INTEGER PRIMARY KEY AUTOINCREMENT,"
			       " domain TEXT NOT NULL,"
			       " selector TEXT NOT NULL,"
			       " type TEXT NOT NULL,"
			       " state TEXT NOT NULL DEFAULT 'active',"
			       " created INTEGER NOT NULL,"
			       " record TEXT NOT NULL,"
			       " UNIQUE (domain, selector));";

int store_dkim_schema(struct store *s, char *err, size_t errsz)
{
	return store_db_exec_ddl(&s->db, dkim_ddl, "creating dkim_keys", err, errsz);
}

/* A selector is a DNS label of ours: [a-z0-9-], 1..63, no leading '-'. */
static bool selector_ok(const char *sel)
{
	size_t n = strlen(sel);
	if (n == 0 || n > 63 || sel[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = sel[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

int store_dkim_key_path(const struct store *s, const char *domain, const char *selector,
			char *out, size_t outsz)
{
	if (!selector_ok(selector) || strchr(domain, '/') != NULL || domain[0] == '.' ||
	    domain[0] == '\0')
		return -1;
	int n = snprintf(out, outsz, "%s/dkim/%s/%s.pem", s->dir, domain, selector);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int store_dkim_add(struct store *s, const char *domain, const char *selector,
		   const char *type, const void *pem, size_t pem_len, const char *record,
		   char *err, size_t errsz)
{
	char name[256], path[PATH_MAX], dir[PATH_MAX];
	if (store_name_domain(domain, name, err, errsz) < 0)
		return -1;
	if (store_dkim_key_path(s, name, selector, path, sizeof path) < 0) {
		store_err(err, errsz, "bad DKIM selector \"%s\"", selector);
		return -1;
	}
	int n = snprintf(dir, sizeof dir, "%s/dkim/%s", s->dir, name);
	if (n < 0 || (size_t)n >= sizeof dir || fsutil_mkdir_p(dir, 0700) < 0) {
		store_err(err, errsz, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (fsutil_write_file_atomic(path, pem, pem_len, 0600) < 0) {
		store_err(err, errsz, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	struct store_db *db = &s->db;
	sqlite3_stmt *st = store_db_stmt(db,
					 "INSERT INTO dkim_keys (domain, selector, type, state,"
					 " created, record) VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
					 err, errsz);
	if (st == NULL)
		goto fail;
	store_db_bind_text(st, 1, name);
	store_db_bind_text(st, 2, selector);
	store_db_bind_text(st, 3, type);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	store_db_bind_text(st, 5, record);
	if (store_db_run(db, st, err, errsz) < 0)
		goto fail;
	return 0;
fail:
	unlink(path);
	return -1;
}

int store_dkim_rotate_out(struct store *s, const char *domain, const char *const *keep,
			  size_t n_keep, char *err, size_t errsz)
{
	char name[256];
	if (store_name_domain(domain, name, err, errsz) < 0)
		return -1;
	struct store_db *db = &s->db;
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db, "UPDATE dkim_keys SET state = 'published' WHERE domain = ?1 AND state = 'active'",
	    err, errsz);
	if (st == NULL)
		goto fail;
	store_db_bind_text(st, 1, name);
	if (store_db_run(db, st, err, errsz) < 0)
		goto fail;
	for (size_t i = 0; i < n_keep; i++) {
		st = store_db_stmt(db,
				   "UPDATE dkim_keys SET state = 'active' WHERE domain = ?1 AND"
				   " selector = ?2",
				   err, errsz);
		if (st == NULL)
			goto fail;
		store_db_bind_text(st, 1, name);
		store_db_bind_text(st, 2, keep[i]);
		if (store_db_run(db, st, err, errsz) < 0)
			goto fail;
	}
	return store_db_commit(db, err, errsz);
fail:
	store_db_rollback(db);
	return -1;
}

static void read_key(sqlite3_stmt *st, void *row)
{
	struct store_dkim_key *k = row;
	store_db_column_text(st, 0, k->domain, sizeof k->domain);
	store_db_column_text(st, 1, k->selector, sizeof k->selector);
	store_db_column_text(st, 2, k->type, sizeof k->type);
	k->active = strcmp((const char *)sqlite3_column_text(st, 3), "active") == 0;
	k->created = sqlite3_column_int64(st, 4);
	store_db_column_text(st, 5, k->record, sizeof k->record);
}

int store_dkim_list(struct store *s, const char *domain, struct store_dkim_key *out, size_t max,
		    size_t *n_out, char *err, size_t errsz)
{
	char name[256] = "";
	*n_out = 0;
	if (domain != NULL && store_name_domain(domain, name, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "SELECT domain, selector, type, state, created, record"
					 " FROM dkim_keys WHERE ?1 = '' OR domain = ?1"
					 " ORDER BY domain, state = 'active' DESC,"
					 " created / 86400 DESC, selector",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	return store_db_fetch(&s->db, st, out, sizeof *out, max, read_key, n_out, "listing DKIM keys",
			      err, errsz);
}

int store_dkim_remove(struct store *s, const char *domain, const char *selector, char *err,
		      size_t errsz)
{
	char name[256], path[PATH_MAX];
	if (store_name_domain(domain, name, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "DELETE FROM dkim_keys WHERE domain = ?1 AND selector = ?2", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, name);
	store_db_bind_text(st, 2, selector);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		return -1;
	if (sqlite3_changes(s->db.h) == 0) {
		store_err(err, errsz, "%s has no DKIM key with selector %s", name, selector);
		return -1;
	}
	if (store_dkim_key_path(s, name, selector, path, sizeof path) == 0 && unlink(path) < 0 &&
	    errno != ENOENT) {
		store_err(err, errsz, "cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int store_dkim_remove_domain(struct store *s, const char *domain, char *err, size_t errsz)
{
	struct store_dkim_key *keys = xcalloc(STORE_DKIM_KEYS_MAX, sizeof *keys);
	size_t n;
	int r = store_dkim_list(s, domain, keys, STORE_DKIM_KEYS_MAX, &n, err, errsz);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = store_dkim_remove(s, keys[i].domain, keys[i].selector, err, errsz);
	if (r == 0 && n > 0) {
		char dir[PATH_MAX];
		int len = snprintf(dir, sizeof dir, "%s/dkim/%s", s->dir, keys[0].domain);
		if (len > 0 && (size_t)len < sizeof dir)
			(void)rmdir(dir);
	}
	free(keys);
	return r;
}
