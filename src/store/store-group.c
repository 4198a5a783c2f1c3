/*
 * store-group.c - group addresses (server.db, table groups): an alias of
 * ours with settings.  Its members are the alias's targets (table aliases,
 * store-alias.c), so mail to a group is resolved and fanned out exactly as
 * for any alias (store-resolve.c); the groups row adds who may post, what
 * Reply-To the copies get, and the List-Id (RFC 2919) they carry, which
 * the SMTP server applies (src/smtp/smtp-session.c).
 *
 * A group exists while it has members: the last member leaving removes it
 * (store_alias_remove drops a groups row left without targets).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "strutil.h"
#include "xalloc.h"

static const char group_ddl[] = "CREATE TABLE IF NOT EXISTS groups ("
				" address TEXT PRIMARY KEY,"
				" domain_id INTEGER NOT NULL REFERENCES domains(id),"
				" policy TEXT NOT NULL DEFAULT 'anyone',"
				" reply_to TEXT NOT NULL DEFAULT 'none',"
				" list_id TEXT NOT NULL);";

int store_group_schema(struct store *s, char *err, size_t errsz)
{
	return store_db_exec_ddl(&s->db, group_ddl, "creating groups", err, errsz);
}

static const char *const policy_names[] = {"anyone", "domains", "members"};
static const char *const reply_names[] = {"none", "group", "sender"};

const char *store_group_policy_name(enum store_group_policy p)
{
	return (unsigned)p < 3 ? policy_names[p] : "anyone";
}

const char *store_group_reply_name(enum store_group_reply r)
{
	return (unsigned)r < 3 ? reply_names[r] : "none";
}

int store_group_policy_parse(const char *name, enum store_group_policy *out)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, policy_names[i])) {
			*out = (enum store_group_policy)i;
			return 0;
		}
	return -1;
}

int store_group_reply_parse(const char *name, enum store_group_reply *out)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(name, reply_names[i])) {
			*out = (enum store_group_reply)i;
			return 0;
		}
	return -1;
}

/* RFC 2919: list-id = list-label "." list-id-namespace, the label a
 * dot-atom-text: "sales@example.com" -> "sales.example.com".  -1 if the
 * local part is not dot-atom-text (a UTF-8 one) or the id is too long. */
static int make_list_id(const char *local, const char *domain, char out[256])
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~.";
	for (const char *p = local; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr(atext, c) != NULL))
			return -1;
	}
	int n = snprintf(out, 256, "%s.%s", local, domain);
	return n < 0 || n >= 256 ? -1 : 0;
}

/* Canonical group address (lower-cased) into out[256], its list-id and
 * its domain's id (0 if the domain is not ours, with err). */
static int canonical_group(struct store *s, const char *group, char out[256], char list_id[256],
			   int64_t *domain_id, char *err, size_t errsz)
{
	char local[256], domain[256];
	if (store_name_address(group, true, false, local, domain, err, errsz) < 0)
		return -1;
	if (snprintf(out, 256, "%s@%s", local, domain) >= 256 ||
	    make_list_id(local, domain, list_id) < 0) {
		store_err(err, errsz,
			  "%s cannot be a group: its List-Id (local part, '.', domain) must be "
			  "ASCII and at most 255 bytes",
			  group);
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

static void read_group(sqlite3_stmt *st, void *row)
{
	struct store_group *g = row;
	char policy[16], reply[16];
	store_db_column_text(st, 0, g->address, sizeof g->address);
	store_db_column_text(st, 1, policy, sizeof policy);
	store_db_column_text(st, 2, reply, sizeof reply);
	store_db_column_text(st, 3, g->list_id, sizeof g->list_id);
	if (store_group_policy_parse(policy, &g->policy) < 0)
		g->policy = STORE_GROUP_MEMBERS; /* unknown: the strictest */
	if (store_group_reply_parse(reply, &g->reply_to) < 0)
		g->reply_to = STORE_GROUP_REPLY_NONE;
}

int store_group_get(struct store *s, const char *address, struct store_group *out)
{
	char a[256], list_id[256];
	int64_t domain_id;
	memset(out, 0, sizeof *out);
	if (canonical_group(s, address, a, list_id, &domain_id, NULL, 0) < 0)
		return 0;
	sqlite3_stmt *st = store_db_stmt(
		&s->db, "SELECT address, policy, reply_to, list_id FROM groups WHERE address = ?1",
		NULL, 0);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, a);
	size_t n;
	if (store_db_fetch(&s->db, st, out, sizeof *out, 1, read_group, &n, "reading a group",
			   NULL, 0) < 0)
		return -1;
	return n == 1;
}

int store_group_set(struct store *s, const char *address, const enum store_group_policy *policy,
		    const enum store_group_reply *reply_to, char *err, size_t errsz)
{
	char a[256], list_id[256];
	int64_t domain_id;
	if (canonical_group(s, address, a, list_id, &domain_id, err, errsz) < 0)
		return -1;
	/* Inserted with the defaults, then the settings given changed. */
	sqlite3_stmt *st = store_db_stmt(&s->db,
					 "INSERT INTO groups (address, domain_id, list_id)"
					 " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, a);
	sqlite3_bind_int64(st, 2, domain_id);
	store_db_bind_text(st, 3, list_id);
	if (store_db_run(&s->db, st, err, errsz) < 0)
		return -1;
	st = store_db_stmt(&s->db,
			   "UPDATE groups SET policy = coalesce(?2, policy),"
			   " reply_to = coalesce(?3, reply_to) WHERE address = ?1",
			   err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, a);
	if (policy)
		store_db_bind_text(st, 2, store_group_policy_name(*policy));
	else
		sqlite3_bind_null(st, 2);
	if (reply_to)
		store_db_bind_text(st, 3, store_group_reply_name(*reply_to));
	else
		sqlite3_bind_null(st, 3);
	return store_db_run(&s->db, st, err, errsz);
}

int store_group_is_member(struct store *s, const char *group, const char *address)
{
	char a[256], list_id[256];
	int64_t domain_id;
	if (canonical_group(s, group, a, list_id, &domain_id, NULL, 0) < 0)
		return 0;
	/* Our local parts are stored lower-cased, a remote one as given: the
	 * sender compares case-insensitively (a remote server's local parts
	 * may be case-sensitive, but a member who spells theirs differently
	 * is still the member). */
	sqlite3_stmt *st = store_db_stmt(
		&s->db,
		"SELECT 1 FROM aliases WHERE alias = ?1 AND target = ?2 COLLATE NOCASE LIMIT 1", NULL,
		0);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, a);
	store_db_bind_text(st, 2, address);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	return rc == SQLITE_ROW;
}

#define LIST_CHUNK 64

int store_group_list(struct store *s, const char *domain,
		     int (*cb)(void *ctx, const struct store_group *g), void *ctx, char *err,
		     size_t errsz)
{
	char dom[256] = "";
	if (domain && store_name_domain(domain, dom, err, errsz) < 0)
		return -1;
	/* A chunk at a time, the statement reset before the callbacks run
	 * (see store_alias_list). */
	struct store_group *rows = xmalloc(LIST_CHUNK * sizeof *rows);
	char last[256] = "";
	int ret = 0;
	for (;;) {
		sqlite3_stmt *st = store_db_stmt(
			&s->db,
			"SELECT address, policy, reply_to, list_id FROM groups WHERE address > ?1"
			" AND (?2 = '' OR domain_id = (SELECT id FROM domains WHERE name = ?2))"
			" ORDER BY address LIMIT ?3",
			err, errsz);
		if (st == NULL) {
			ret = -1;
			break;
		}
		store_db_bind_text(st, 1, last);
		store_db_bind_text(st, 2, dom);
		sqlite3_bind_int(st, 3, LIST_CHUNK);
		size_t n;
		if (store_db_fetch(&s->db, st, rows, sizeof *rows, LIST_CHUNK, read_group, &n,
				   "listing groups", err, errsz) < 0) {
			ret = -1;
			break;
		}
		for (size_t i = 0; i < n; i++)
			if (cb(ctx, &rows[i]) != 0)
				goto out;
		if (n < LIST_CHUNK)
			break;
		memcpy(last, rows[n - 1].address, sizeof last);
	}
out:
	free(rows);
	return ret;
}
