/*
 * store-alias.c - aliases (server.db, table aliases): "local@domain" or the
 * catch-all "@domain" of one of our domains, each with one or more targets,
 * local or remote.  Expansion is store-resolve.c's business.
 *
 * Stored forms: the alias lower-cased; a target with its domain
 * lower-cased, and its local part too when the domain is ours (our local
 * parts are case-insensitive; a remote server's may not be).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "strutil.h"
#include "xalloc.h"

/* Canonical alias into out[256] and its domain's id.  0, or -1 with err. */
static int canonical_alias(struct store *s, const char *alias, char out[256],
			   int64_t *domain_id, char *err, size_t errsz)
{
	char local[256], domain[256];
	if (store_name_address(alias, true, true, local, domain, err, errsz) < 0)
		return -1;
	int n = snprintf(out, 256, "%s@%s", local, domain);
	if (n < 0 || n >= 256) {
		store_err(err, errsz, "alias too long (at most 255 bytes)");
		return -1;
	}
	sqlite3_stmt *st =
		store_db_stmt(&s->db, "SELECT id FROM domains WHERE name = ?1", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, domain);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*domain_id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		store_err(err, errsz, "domain %s does not exist", domain);
	else
		store_db_error(&s->db, "looking up domain", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

static int canonical_target(struct store *s, const char *target, char out[256], char *err,
			    size_t errsz)
{
	char local[256], domain[256];
	if (store_name_address(target, false, false, local, domain, err, errsz) < 0)
		return -1;
	int ours = store_domain_exists(s, domain);
	if (ours < 0) {
		store_db_error(&s->db, "looking up domain", err, errsz);
		return -1;
	}
	if (ours)
		strutil_lower(local, strlen(local));
	int n = snprintf(out, 256, "%s@%s", local, domain);
	if (n < 0 || n >= 256) {
		store_err(err, errsz, "alias target too long (at most 255 bytes)");
		return -1;
	}
	return 0;
}

int store_alias_add(struct store *s, const char *alias, const char *target, char *err,
		    size_t errsz)
{
	char a[256], t[256];
	int64_t domain_id;
	if (canonical_alias(s, alias, a, &domain_id, err, errsz) < 0 ||
	    canonical_target(s, target, t, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "INSERT INTO aliases (alias, target, domain_id)"
					 " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, a);
	store_db_bind_text(st, 2, t);
	sqlite3_bind_int64(st, 3, domain_id);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		return -1;
	if (sqlite3_changes(s->db.h) == 0) {
		store_err(err, errsz, "alias %s -> %s already exists", a, t);
		return -1;
	}
	return 0;
}

int store_alias_remove(struct store *s, const char *alias, const char *target, char *err,
		       size_t errsz)
{
	char a[256], t[256];
	int64_t domain_id;
	if (canonical_alias(s, alias, a, &domain_id, err, errsz) < 0)
		return -1;
	if (target && canonical_target(s, target, t, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
		&s->db, "DELETE FROM aliases WHERE alias = ?1 AND (?2 IS NULL OR target = ?2)",
		err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, a);
	if (target)
		store_db_bind_text(st, 2, t);
	else
		sqlite3_bind_null(st, 2);
	if (store_db_begin(&s->db, err, errsz) < 0)
		return -1;
	if (store_db_run(&s->db, st, err, errsz) < 0) {
		store_db_rollback(&s->db);
		return -1;
	}
	int changed = sqlite3_changes(s->db.h);
	/* A group (store-group.c) exists while it has members. */
	st = store_db_stmt(&s->db,
			   "DELETE FROM groups WHERE address = ?1"
			   " AND NOT EXISTS (SELECT 1 FROM aliases WHERE alias = ?1)",
			   err, errsz);
	if (st != NULL)
		store_db_bind_text(st, 1, a);
	if (st == NULL || store_db_run(&s->db, st, err, errsz) < 0) {
		store_db_rollback(&s->db);
		return -1;
	}
	if (store_db_commit(&s->db, err, errsz) < 0)
		return -1;
	if (changed == 0) {
		if (target)
			store_err(err, errsz, "alias %s -> %s does not exist", a, t);
		else
			store_err(err, errsz, "alias %s does not exist", a);
		return -1;
	}
	return 0;
}

#define LIST_CHUNK 64

/* An (alias, target) row into a char[2][256]. */
static void read_alias(sqlite3_stmt *st, void *row)
{
	char (*pair)[256] = row;
	store_db_column_text(st, 0, pair[0], sizeof pair[0]);
	store_db_column_text(st, 1, pair[1], sizeof pair[1]);
}

int store_alias_list(struct store *s, const char *domain,
		     int (*cb)(void *ctx, const char *alias, const char *target), void *ctx,
		     char *err, size_t errsz)
{
	char dom[256] = "";
	if (domain) {
		if (store_name_domain(domain, dom, err, errsz) < 0)
			return -1;
		int r = store_domain_exists(s, dom);
		if (r <= 0) {
			if (r == 0)
				store_err(err, errsz, "domain %s does not exist", dom);
			else
				store_db_error(&s->db, "looking up domain", err, errsz);
			return -1;
		}
	}
	/* A chunk at a time, statement reset before the callbacks run (see
	 * store_domain_list). */
	char (*rows)[2][256] = xmalloc(LIST_CHUNK * sizeof *rows);
	char last_a[256] = "", last_t[256] = "";
	int ret = 0;
	for (;;) {
		sqlite3_stmt *st = store_db_stmt(
			&s->db,
			"SELECT alias, target FROM aliases WHERE (alias, target) > (?1, ?2)"
			" AND (?3 = '' OR domain_id = (SELECT id FROM domains WHERE name = ?3))"
			" ORDER BY alias, target LIMIT ?4",
			err, errsz);
		if (st == NULL) {
			ret = -1;
			break;
		}
		store_db_bind_text(st, 1, last_a);
		store_db_bind_text(st, 2, last_t);
		store_db_bind_text(st, 3, dom);
		sqlite3_bind_int(st, 4, LIST_CHUNK);
		size_t n;
		if (store_db_fetch(&s->db, st, rows, sizeof *rows, LIST_CHUNK, read_alias, &n,
				   "listing aliases", err, errsz) < 0) {
			ret = -1;
			break;
		}
		for (size_t i = 0; i < n; i++) {
			if (cb(ctx, rows[i][0], rows[i][1]) != 0)
				goto out;
		}
		if (n < LIST_CHUNK)
			break;
		memcpy(last_a, rows[n - 1][0], sizeof last_a);
		memcpy(last_t, rows[n - 1][1], sizeof last_t);
	}
out:
	free(rows);
	return ret;
}
