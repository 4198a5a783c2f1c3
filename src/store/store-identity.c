/*
 * store-identity.c - a user's sending identities (RFC 8621 6: name,
 * address, Reply-To, Bcc, a text and an HTML signature) and the rule of
 * which addresses a user may send as, shared by SMTP submission, JMAP
 * and the CLI (docs/jmap.md "Submission").  Layer: store.
 *
 * Its own tables in account.db, made by CREATE TABLE IF NOT EXISTS at the
 * start of every call's transaction (as store-contacts.c does), so no
 * schema version changes:
 *
 *   identities(id, ...)             one row per identity; ids never reused
 *                                   (AUTOINCREMENT); the row with
 *                                   is_default is the user's own address,
 *                                   made by the first call, never removed
 *   identity_tombstones(id, ...)    removed identities, with the modseq of
 *                                   their removal and of their creation
 *
 * Modseqs are the account's (store_account_next_modseq); the state of
 * the identities is the largest modseq of a row or tombstone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store-private.h"
#include "store.h"
#include "xalloc.h"

static const char identity_ddl[] =
    "CREATE TABLE IF NOT EXISTS identities ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " is_default INTEGER NOT NULL DEFAULT 0,"
    " name TEXT NOT NULL,"
    " email TEXT NOT NULL,"
    " reply_to TEXT,"
    " bcc TEXT,"
    " text_signature TEXT NOT NULL,"
    " html_signature TEXT NOT NULL,"
    " created INTEGER NOT NULL,"
    " modseq INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS identity_tombstones ("
    " id INTEGER PRIMARY KEY,"
    " created INTEGER NOT NULL,"
    " modseq INTEGER NOT NULL);";

/* ------------------------------------------------------------ helpers */

/* Inserts the default identity (the account's own address) if missing. */
static int ensure_default(struct store_account *a, struct store_db *db, char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT COUNT(*) FROM identities WHERE is_default = 1", err, errsz);
	if (st == NULL)
		return -1;
	int64_t have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (have < 0) {
		store_db_error(db, "counting the identities", err, errsz);
		return -1;
	}
	if (have > 0)
		return 0;
	char address[256];
	if (store_account_address(a->s, a->id, address) != 1) {
		store_err(err, errsz, "the account's address is not in the store");
		return -1;
	}
	uint64_t modseq;
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0)
		return -1;
	st = store_db_stmt(db,
			   "INSERT INTO identities (is_default, name, email, text_signature,"
			   " html_signature, created, modseq) VALUES (1, '', ?1, '', '', ?2, ?2)",
			   err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, address);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	return store_db_run(db, st, err, errsz);
}

/* The account's database in a write transaction with the tables and the
 * default identity there; NULL with err. */
static struct store_db *begin(struct store_account *a, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return NULL;
	if (store_db_exec_ddl(db, identity_ddl, "creating the identity tables", err, errsz) < 0 ||
	    ensure_default(a, db, err, errsz) < 0) {
		store_db_rollback(db);
		return NULL;
	}
	return db;
}

/* The state in the transaction: 0 or -1. */
static int get_state(struct store_db *db, uint64_t *state, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "SELECT max(COALESCE((SELECT max(modseq) FROM identities), 0),"
	    " COALESCE((SELECT max(modseq) FROM identity_tombstones), 0))",
	    err, errsz);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*state = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		store_db_error(db, "reading the identity state", err, errsz);
		return -1;
	}
	return 0;
}

/* Binds s, or NULL when s is (a cached statement keeps its last
 * bindings: every parameter is bound each time). */
static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		store_db_bind_text(st, i, s);
	else
		sqlite3_bind_null(st, i);
}

static char *column_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *)t) : NULL;
}

static void identity_clear(struct store_identity *v)
{
	free(v->name);
	free(v->email);
	free(v->reply_to);
	free(v->bcc);
	free(v->text_signature);
	free(v->html_signature);
	memset(v, 0, sizeof *v);
}

void store_identity_free(struct store_identity *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		identity_clear(&v[i]);
	free(v);
}

/* -------------------------------------------------------------- reads */

int store_identity_list(struct store_account *a, struct store_identity **out, size_t *n,
			uint64_t *state, char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	uint64_t s = 0;
	int rc = get_state(db, &s, err, errsz);
	sqlite3_stmt *st =
	    rc < 0 ? NULL
		   : store_db_stmt(db,
				   "SELECT id, is_default, name, email, reply_to, bcc,"
				   " text_signature, html_signature, created, modseq"
				   " FROM identities ORDER BY id",
				   err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	size_t cap = 8;
	struct store_identity *v = xcalloc(cap, sizeof *v);
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			v = xreallocarray(v, cap * 2, sizeof *v);
			memset(v + cap, 0, cap * sizeof *v);
			cap *= 2;
		}
		struct store_identity *r = &v[(*n)++];
		r->id = sqlite3_column_int64(st, 0);
		r->is_default = sqlite3_column_int(st, 1) != 0;
		r->name = column_dup(st, 2);
		r->email = column_dup(st, 3);
		r->reply_to = column_dup(st, 4);
		r->bcc = column_dup(st, 5);
		r->text_signature = column_dup(st, 6);
		r->html_signature = column_dup(st, 7);
		r->created = (uint64_t)sqlite3_column_int64(st, 8);
		r->modseq = (uint64_t)sqlite3_column_int64(st, 9);
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		store_db_error(db, "listing the identities", err, errsz);
		store_identity_free(v, *n);
		*n = 0;
		return store_db_end(db, -1, err, errsz);
	}
	*out = v;
	if (state)
		*state = s;
	return store_db_end(db, 0, err, errsz);
}

int store_identity_changes(struct store_account *a, uint64_t since,
			   struct store_identity_change **out, size_t *n, uint64_t *state, char *err,
			   size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	if (get_state(db, state, err, errsz) < 0)
		return store_db_end(db, -1, err, errsz);
	/* created after since and removed since: never seen, not listed */
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "SELECT id, created > ?1, 0 FROM identities WHERE modseq > ?1"
	    " UNION ALL SELECT id, 0, 1 FROM identity_tombstones"
	    " WHERE modseq > ?1 AND created <= ?1 ORDER BY 1",
	    err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	sqlite3_bind_int64(st, 1, (int64_t)since);
	size_t cap = 8;
	struct store_identity_change *v = xcalloc(cap, sizeof *v);
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			v = xreallocarray(v, cap * 2, sizeof *v);
			cap *= 2;
		}
		v[*n].id = sqlite3_column_int64(st, 0);
		v[*n].kind = sqlite3_column_int(st, 2)	 ? STORE_IDENTITY_DESTROYED
			     : sqlite3_column_int(st, 1) ? STORE_IDENTITY_CREATED
							 : STORE_IDENTITY_UPDATED;
		(*n)++;
	}
	sqlite3_reset(st);
	if (step != SQLITE_DONE) {
		store_db_error(db, "listing the identity changes", err, errsz);
		free(v);
		*n = 0;
		return store_db_end(db, -1, err, errsz);
	}
	*out = v;
	return store_db_end(db, 0, err, errsz);
}

/* ------------------------------------------------------------- writes */

/* The lengths of in's fields within the bounds: else false with err. */
static bool bounded(const struct store_identity *in, char *err, size_t errsz)
{
	const struct {
		const char *v, *what;
		size_t max;
	} f[] = {
	    {in->name, "name", STORE_IDENTITY_NAME_MAX},
	    {in->email, "email", 255},
	    {in->reply_to, "replyTo", STORE_IDENTITY_ADDRS_MAX},
	    {in->bcc, "bcc", STORE_IDENTITY_ADDRS_MAX},
	    {in->text_signature, "textSignature", STORE_IDENTITY_SIGNATURE_MAX},
	    {in->html_signature, "htmlSignature", STORE_IDENTITY_SIGNATURE_MAX},
	};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		if (f[i].v != NULL && strlen(f[i].v) > f[i].max) {
			store_err(err, errsz, "%s is longer than %zu bytes", f[i].what, f[i].max);
			return false;
		}
	return true;
}

int store_identity_add(struct store_account *a, const struct store_identity *in, int64_t *id,
		       char *err, size_t errsz)
{
	if (in->email == NULL || !bounded(in, err, errsz))
		return -2;
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db, "SELECT COUNT(*) FROM identities", err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	int64_t have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (have < 0) {
		store_db_error(db, "counting the identities", err, errsz);
		return store_db_end(db, -1, err, errsz);
	}
	if (have >= STORE_IDENTITY_MAX) {
		store_err(err, errsz, "the user has %d identities, the most there may be",
			  STORE_IDENTITY_MAX);
		return store_db_end(db, -3, err, errsz);
	}
	uint64_t modseq;
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0)
		return store_db_end(db, -1, err, errsz);
	st = store_db_stmt(db,
			   "INSERT INTO identities (name, email, reply_to, bcc, text_signature,"
			   " html_signature, created, modseq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
			   " RETURNING id",
			   err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	store_db_bind_text(st, 1, in->name ? in->name : "");
	store_db_bind_text(st, 2, in->email);
	bind_opt(st, 3, in->reply_to);
	bind_opt(st, 4, in->bcc);
	store_db_bind_text(st, 5, in->text_signature ? in->text_signature : "");
	store_db_bind_text(st, 6, in->html_signature ? in->html_signature : "");
	sqlite3_bind_int64(st, 7, (int64_t)modseq);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		store_db_error(db, "adding an identity", err, errsz);
		return store_db_end(db, -1, err, errsz);
	}
	return store_db_end(db, 0, err, errsz);
}

int store_identity_update(struct store_account *a, int64_t id, const struct store_identity *in,
			  bool set_reply_to, bool set_bcc, char *err, size_t errsz)
{
	if (!bounded(in, err, errsz))
		return -2;
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	uint64_t modseq;
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0)
		return store_db_end(db, -1, err, errsz);
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "UPDATE identities SET name = COALESCE(?2, name),"
	    " reply_to = CASE WHEN ?3 THEN ?4 ELSE reply_to END,"
	    " bcc = CASE WHEN ?5 THEN ?6 ELSE bcc END,"
	    " text_signature = COALESCE(?7, text_signature),"
	    " html_signature = COALESCE(?8, html_signature), modseq = ?9 WHERE id = ?1",
	    err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	sqlite3_bind_int64(st, 1, id);
	bind_opt(st, 2, in->name);
	sqlite3_bind_int(st, 3, set_reply_to);
	bind_opt(st, 4, in->reply_to);
	sqlite3_bind_int(st, 5, set_bcc);
	bind_opt(st, 6, in->bcc);
	bind_opt(st, 7, in->text_signature);
	bind_opt(st, 8, in->html_signature);
	sqlite3_bind_int64(st, 9, (int64_t)modseq);
	if (store_db_run(db, st, err, errsz) < 0)
		return store_db_end(db, -1, err, errsz);
	int changed = sqlite3_changes(db->h) > 0;
	if (!changed) {
		store_db_rollback(db); /* the modseq taken is not needed */
		return 0;
	}
	return store_db_end(db, 1, err, errsz);
}

int store_identity_remove(struct store_account *a, int64_t id, char *err, size_t errsz)
{
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st =
	    store_db_stmt(db, "SELECT is_default, created FROM identities WHERE id = ?1", err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int is_default = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	int64_t created = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "looking up an identity", err, errsz);
		return store_db_end(db, -1, err, errsz);
	}
	if (rc == SQLITE_DONE)
		return store_db_end(db, 0, err, errsz);
	if (is_default) {
		store_err(err, errsz, "the identity of the user's own address is not removed");
		return store_db_end(db, -2, err, errsz);
	}
	uint64_t modseq;
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0)
		return store_db_end(db, -1, err, errsz);
	st = store_db_stmt(db, "DELETE FROM identities WHERE id = ?1", err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	sqlite3_bind_int64(st, 1, id);
	if (store_db_run(db, st, err, errsz) < 0)
		return store_db_end(db, -1, err, errsz);
	st = store_db_stmt(db,
			   "INSERT INTO identity_tombstones (id, created, modseq) VALUES (?1, ?2, ?3)",
			   err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, created);
	sqlite3_bind_int64(st, 3, (int64_t)modseq);
	if (store_db_run(db, st, err, errsz) < 0)
		return store_db_end(db, -1, err, errsz);
	return store_db_end(db, 1, err, errsz);
}

/* --------------------------------------------------------- may send as */

/* Is the account listed in domain_senders (comma/space separated)? */
static bool listed(const char *domain_senders, const char *account)
{
	const char *p = domain_senders ? domain_senders : "";
	size_t alen = strlen(account);
	while (*p != '\0') {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		const char *q = p;
		while (*q != '\0' && *q != ',' && *q != ' ' && *q != '\t')
			q++;
		if ((size_t)(q - p) == alen && alen > 0 && strncasecmp(p, account, alen) == 0)
			return true;
		p = q;
	}
	return false;
}

/* Does address resolve to account_id?  1, 0, -1. */
static int resolves_to(struct store *s, int64_t account_id, const char *address,
		       const char *delim)
{
	struct store_targets *tg = xmalloc(sizeof *tg);
	enum store_rcpt_result r = store_resolve(s, address, delim, tg);
	int ok = r == STORE_RCPT_ERROR ? -1 : 0;
	if (r == STORE_RCPT_OK)
		for (size_t i = 0; i < tg->n_local; i++)
			if (tg->local[i] == account_id)
				ok = 1;
	free(tg);
	return ok;
}

/* Does the catch-all alias "@domain" deliver to account_id?  1, 0, -1. */
static int catch_all_of(struct store *s, int64_t account_id, const char *domain,
			const char *delim)
{
	char alias[258];
	if (snprintf(alias, sizeof alias, "@%s", domain) >= (int)sizeof alias)
		return 0;
	char (*targets)[256] = xcalloc(STORE_MAX_TARGETS, sizeof *targets);
	size_t n = 0;
	sqlite3_stmt *st = store_db_stmt(
	    &s->db, "SELECT target FROM aliases WHERE alias = lower(?1) ORDER BY target", NULL, 0);
	int rc = -1;
	if (st != NULL) {
		store_db_bind_text(st, 1, alias);
		int step;
		while ((step = sqlite3_step(st)) == SQLITE_ROW && n < STORE_MAX_TARGETS)
			store_db_column_text(st, 0, targets[n++], sizeof targets[0]);
		sqlite3_reset(st);
		rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : -1;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = resolves_to(s, account_id, targets[i], delim);
	free(targets);
	return rc;
}

int store_may_send_as(struct store *s, int64_t account_id, const char *address,
		      const char *delim, const char *domain_senders)
{
	char account[256];
	int r = store_account_address(s, account_id, account);
	if (r != 1)
		return r < 0 ? -1 : 0;
	const char *at = strrchr(address, '@');
	const char *mine = strrchr(account, '@');
	if (at == NULL || mine == NULL)
		return 0;
	if (strcasecmp(address, account) == 0)
		return 1;
	if (listed(domain_senders, account) && strcasecmp(at, mine) == 0)
		return 1;
	if (strncmp(address, "*@", 2) == 0)
		return catch_all_of(s, account_id, at + 1, delim);
	return resolves_to(s, account_id, address, delim);
}
