/*
 * store-mtasts.c - the MTA-STS policy cache (RFC 8461 5.1) in server.db:
 * one row per policy domain with the id of the TXT record it was fetched
 * for, the policy text as served, when it was fetched and when it
 * expires (fetched + max_age).  The queue runner parses the text again
 * when it reads the row (src/queue/mta-sts.c), so the table holds no
 * parsed form that could go stale.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "xalloc.h"

static const char mtasts_ddl[] = "CREATE TABLE IF NOT EXISTS mta_sts_policies ("
				 " domain TEXT PRIMARY KEY,"
				 " id TEXT NOT NULL,"
				 " policy TEXT NOT NULL,"
				 " fetched INTEGER NOT NULL,"
				 " expires INTEGER NOT NULL) WITHOUT ROWID;";

int store_mtasts_schema(struct store *s, char *err, size_t errsz)
{
	return store_db_exec_ddl(&s->db, mtasts_ddl, "creating mta_sts_policies", err, errsz);
}

int store_mtasts_get(struct store *s, const char *domain, struct store_mtasts *out, char *err,
		     size_t errsz)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "SELECT id, policy, fetched, expires FROM mta_sts_policies"
					 " WHERE domain = ?1",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, domain);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		store_db_error(&s->db, "reading mta_sts_policies", err, errsz);
		sqlite3_reset(st);
		return -1;
	}
	store_db_column_text(st, 0, out->id, sizeof out->id);
	const unsigned char *p = sqlite3_column_text(st, 1);
	size_t n = (size_t)sqlite3_column_bytes(st, 1);
	out->policy = xmalloc(n + 1);
	if (n > 0)
		memcpy(out->policy, p, n);
	out->policy[n] = '\0';
	out->policy_len = n;
	out->fetched = sqlite3_column_int64(st, 2);
	out->expires = sqlite3_column_int64(st, 3);
	sqlite3_reset(st);
	return 1;
}

int store_mtasts_put(struct store *s, const char *domain, const char *id, const char *policy,
		     size_t policy_len, int64_t fetched, int64_t expires, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    &s->db,
	    "INSERT INTO mta_sts_policies (domain, id, policy, fetched, expires)"
	    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (domain) DO UPDATE SET"
	    " id = excluded.id, policy = excluded.policy, fetched = excluded.fetched,"
	    " expires = excluded.expires",
	    err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, domain);
	store_db_bind_text(st, 2, id);
	sqlite3_bind_text(st, 3, policy, (int)policy_len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)fetched);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)expires);
	return store_db_run(&s->db, st, err, errsz);
}

void store_mtasts_free(struct store_mtasts *m)
{
	free(m->policy);
	m->policy = NULL;
	m->policy_len = 0;
}
