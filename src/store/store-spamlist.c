/*
 * store-spamlist.c - a user's sender lists for the spam filter
 * (docs/spam.md "Sender lists"), in the account's own database:
 *
 *   spam_senders  pattern -> allow or block, who put it there (the user
 *                 or admin by hand, or "sent": an address the user wrote
 *                 to through submission), when it was added and last used.
 *
 * A pattern is a whole address ("bob@example.org", compared without case)
 * or a domain with a leading '@' ("@example.org"), which also covers its
 * subdomains.  The most specific pattern wins: the address, then the
 * domain, then each parent domain.
 *
 * Bounded: entries added from sent mail are at most STORE_SPAMLIST_SENT_MAX
 * (the least recently used go first); entries made by hand at most
 * STORE_SPAMLIST_MANUAL_MAX (then adding one fails).  An entry made by
 * hand is never changed by sent mail.  The table is made with CREATE ...
 * IF NOT EXISTS when the account database opens, like spam_tokens.
 */
#include <stdio.h>
#include <string.h>

#include "store-private.h"

#define STORE_SPAMLIST_SENT_MAX 5000
#define STORE_SPAMLIST_MANUAL_MAX 10000

static const char spamlist_ddl[] =
	"CREATE TABLE IF NOT EXISTS spam_senders ("
	" pattern TEXT PRIMARY KEY,"
	" kind INTEGER NOT NULL,"  /* enum store_spamlist_kind */
	" origin INTEGER NOT NULL," /* enum store_spamlist_origin */
	" added INTEGER NOT NULL,"
	" used INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS spam_senders_used ON spam_senders(origin, used);";

int store_spamlist_schema(struct store_db *db, char *err, size_t errsz)
{
	return store_db_exec_ddl(db, spamlist_ddl, "creating spam_senders", err, errsz);
}

int store_spamlist_pattern(const char *in, char out[STORE_SPAMLIST_PATTERN_MAX], char *err,
			   size_t errsz)
{
	char local[256], domain[256];
	if (in[0] == '@') {
		if (store_name_domain(in + 1, domain, err, errsz) < 0)
			return -1;
		snprintf(out, STORE_SPAMLIST_PATTERN_MAX, "@%s", domain);
		return 0;
	}
	if (store_name_address(in, true, false, local, domain, err, errsz) < 0)
		return -1;
	size_t nl = strlen(local), nd = strlen(domain);
	if (nl + 1 + nd >= STORE_SPAMLIST_PATTERN_MAX) {
		store_err(err, errsz, "%s: address too long", in);
		return -1;
	}
	memcpy(out, local, nl);
	out[nl] = '@';
	memcpy(out + nl + 1, domain, nd + 1);
	return 0;
}

int store_spamlist_set(struct store_account *a, const char *pattern,
		       enum store_spamlist_kind kind, int64_t now, char *err, size_t errsz)
{
	char p[STORE_SPAMLIST_PATTERN_MAX];
	if (store_spamlist_pattern(pattern, p, err, errsz) < 0)
		return -1;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT count(*) FROM spam_senders WHERE origin = 0 AND pattern <> ?1", err, errsz);
	int ret = st == NULL ? -1 : 0;
	if (ret == 0) {
		store_db_bind_text(st, 1, p);
		if (sqlite3_step(st) != SQLITE_ROW) {
			store_db_error(db, "counting spam_senders", err, errsz);
			ret = -1;
		} else if (sqlite3_column_int64(st, 0) >= STORE_SPAMLIST_MANUAL_MAX) {
			store_err(err, errsz, "the list already holds %d entries; remove some first",
				  STORE_SPAMLIST_MANUAL_MAX);
			ret = -1;
		}
		sqlite3_reset(st);
	}
	if (ret == 0)
		st = store_db_stmt(db,
				   "INSERT INTO spam_senders (pattern, kind, origin, added, used)"
				   " VALUES (?1, ?2, 0, ?3, ?3) ON CONFLICT (pattern) DO UPDATE SET"
				   " kind = excluded.kind, origin = 0, added = excluded.added",
				   err, errsz);
	if (ret == 0 && st != NULL) {
		store_db_bind_text(st, 1, p);
		sqlite3_bind_int64(st, 2, kind);
		sqlite3_bind_int64(st, 3, now);
		ret = store_db_run(db, st, err, errsz);
	} else {
		ret = -1;
	}
	if (ret < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

int store_spamlist_remove(struct store_account *a, const char *pattern, char *err, size_t errsz)
{
	char p[STORE_SPAMLIST_PATTERN_MAX];
	if (store_spamlist_pattern(pattern, p, err, errsz) < 0)
		return -1;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db, "DELETE FROM spam_senders WHERE pattern = ?1", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, p);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	return sqlite3_changes(db->h) > 0 ? 1 : 0;
}

int store_spamlist_lookup(struct store_account *a, const char *address,
			  struct store_spamlist_entry *out, char *err, size_t errsz)
{
	memset(out, 0, sizeof *out);
	const char *at = strrchr(address, '@');
	if (at == NULL || at[1] == '\0' || strlen(address) >= STORE_SPAMLIST_PATTERN_MAX)
		return 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT kind, origin, added, used FROM spam_senders WHERE pattern = lower(?1)", err,
	    errsz);
	if (st == NULL)
		return -1;
	/* the address, then "@domain", then each parent domain */
	char key[STORE_SPAMLIST_PATTERN_MAX];
	snprintf(key, sizeof key, "%s", address);
	const char *dom = at + 1;
	for (int step = 0;; step++) {
		if (step > 0) {
			snprintf(key, sizeof key, "@%s", dom);
			const char *dot = strchr(dom, '.');
			dom = dot != NULL ? dot + 1 : NULL;
		}
		store_db_bind_text(st, 1, key);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			out->kind = (enum store_spamlist_kind)sqlite3_column_int64(st, 0);
			out->origin = (enum store_spamlist_origin)sqlite3_column_int64(st, 1);
			out->added = sqlite3_column_int64(st, 2);
			out->used = sqlite3_column_int64(st, 3);
			for (char *k = key; *k; k++)
				if (*k >= 'A' && *k <= 'Z')
					*k = (char)(*k + 32);
			snprintf(out->pattern, sizeof out->pattern, "%s", key);
		}
		sqlite3_reset(st);
		if (rc == SQLITE_ROW)
			return 1;
		if (rc != SQLITE_DONE) {
			store_db_error(db, "reading spam_senders", err, errsz);
			return -1;
		}
		if (step > 0 && dom == NULL)
			return 0;
	}
}

int store_spamlist_note_sent(struct store_account *a, const char *const *addrs, size_t n,
			     int64_t now, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || n == 0)
		return db == NULL ? -1 : 0;
	/* Losing the tail of these on a power failure is harmless: not synced. */
	if (store_db_set_sync(db, false, err, errsz) < 0)
		return -1;
	int ret = store_db_begin(db, err, errsz);
	sqlite3_stmt *st = NULL;
	if (ret == 0)
		st = store_db_stmt(db,
				   "INSERT INTO spam_senders (pattern, kind, origin, added, used)"
				   " VALUES (?1, 1, 1, ?2, ?2) ON CONFLICT (pattern) DO UPDATE SET"
				   " used = excluded.used WHERE origin = 1",
				   err, errsz);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		char p[STORE_SPAMLIST_PATTERN_MAX], perr[256];
		if (st == NULL) {
			ret = -1;
			break;
		}
		if (addrs[i][0] == '@' || store_spamlist_pattern(addrs[i], p, perr, sizeof perr) < 0)
			continue; /* not an address we can list: skipped */
		store_db_bind_text(st, 1, p);
		sqlite3_bind_int64(st, 2, now);
		ret = store_db_run(db, st, err, errsz);
	}
	if (ret == 0) {
		st = store_db_stmt(db,
				   "DELETE FROM spam_senders WHERE origin = 1 AND pattern IN"
				   " (SELECT pattern FROM spam_senders WHERE origin = 1"
				   " ORDER BY used DESC LIMIT -1 OFFSET ?1)",
				   err, errsz);
		if (st == NULL) {
			ret = -1;
		} else {
			sqlite3_bind_int64(st, 1, STORE_SPAMLIST_SENT_MAX);
			ret = store_db_run(db, st, err, errsz);
		}
	}
	if (ret < 0)
		store_db_rollback(db);
	else
		ret = store_db_commit(db, err, errsz);
	char serr[256];
	if (store_db_set_sync(db, true, serr, sizeof serr) < 0 && ret == 0) {
		snprintf(err, errsz, "%s", serr);
		ret = -1;
	}
	return ret;
}

int store_spamlist_each(struct store_account *a,
			int (*cb)(void *ctx, const struct store_spamlist_entry *e), void *ctx,
			char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT pattern, kind, origin, added, used FROM spam_senders"
					 " ORDER BY origin, kind, pattern",
					 err, errsz);
	if (st == NULL)
		return -1;
	int rc = SQLITE_DONE, ret = 0;
	while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_spamlist_entry e;
		store_db_column_text(st, 0, e.pattern, sizeof e.pattern);
		e.kind = (enum store_spamlist_kind)sqlite3_column_int64(st, 1);
		e.origin = (enum store_spamlist_origin)sqlite3_column_int64(st, 2);
		e.added = sqlite3_column_int64(st, 3);
		e.used = sqlite3_column_int64(st, 4);
		ret = cb(ctx, &e);
	}
	if (ret == 0 && rc != SQLITE_DONE) {
		store_db_error(db, "reading spam_senders", err, errsz);
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}
