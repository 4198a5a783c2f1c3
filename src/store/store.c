/*
 * store.c - opening and closing the data folder (see store.h), and the small
 * file-system helpers the other store files share.
 *
 * The store is the only layer that touches the data folder.  store_open
 * makes the top folders and the server database; account databases are
 * opened on demand by store-account.c.  Every process (worker, queue
 * runner, CLI) opens its own struct store after fork; SQLite's file locks
 * and the busy timeout are what serialise them.
 */
#include "store.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "store-private.h"
#include "xalloc.h"

/* server.db: domains, accounts, aliases and the outbound queue.  Ids use
 * AUTOINCREMENT so that an account id (which names its folder) is never
 * given out twice, even after the account is removed. */
static const char server_ddl[] =
	"CREATE TABLE IF NOT EXISTS domains ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT NOT NULL UNIQUE,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS accounts ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" address TEXT NOT NULL UNIQUE,"
	" domain_id INTEGER NOT NULL REFERENCES domains(id),"
	" pwhash TEXT NOT NULL DEFAULT '',"
	" scram TEXT NOT NULL DEFAULT '',"  /* SCRAM-SHA-256 keys, see store.h */
	" created INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS accounts_domain ON accounts(domain_id, created, id);"
	"CREATE INDEX IF NOT EXISTS accounts_created ON accounts(created, id);"
	/* domain_id makes "does the domain still have aliases" an index
	 * lookup, and the foreign key keeps it true. */
	"CREATE TABLE IF NOT EXISTS aliases ("
	" id INTEGER PRIMARY KEY,"
	" alias TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" domain_id INTEGER NOT NULL REFERENCES domains(id),"
	" UNIQUE (alias, target));"
	"CREATE INDEX IF NOT EXISTS aliases_domain ON aliases(domain_id);"
	"CREATE TABLE IF NOT EXISTS queue_messages ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" file TEXT NOT NULL,"
	" sender TEXT NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS queue_rcpts ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" message_id INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,"
	" rcpt TEXT NOT NULL,"
	" state TEXT NOT NULL DEFAULT 'deferred',"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt INTEGER NOT NULL,"
	" last_reply TEXT NOT NULL DEFAULT '');"
	"CREATE INDEX IF NOT EXISTS queue_rcpts_message ON queue_rcpts(message_id);"
	"CREATE INDEX IF NOT EXISTS queue_rcpts_due ON queue_rcpts(state, next_attempt);";

void store_err(char *err, size_t errsz, const char *fmt, ...)
{
	if (err == NULL || errsz == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	if (n < 0)
		err[0] = '\0';
}

int store_mkdir_durable(const char *path)
{
	if (mkdir(path, 0700) < 0) {
		if (errno != EEXIST)
			return -1;
		struct stat st;
		if (stat(path, &st) < 0)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
		return 0;
	}
	char parent[PATH_MAX];
	int n = snprintf(parent, sizeof parent, "%s", path);
	if (n < 0 || (size_t)n >= sizeof parent) {
		errno = ENAMETOOLONG;
		return -1;
	}
	char *slash = strrchr(parent, '/');
	if (slash == NULL)
		return fsutil_fsync_dir(".");
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	return fsutil_fsync_dir(parent);
}

int store_path(char *out, size_t outsz, const char *dir, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= outsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = (type == FTW_DP) ? rmdir(path) : unlink(path);
	if (r < 0 && errno != ENOENT)
		return -1;
	return 0;
}

bool store_same_file(const char *a, const char *b)
{
	struct stat a_st, b_st;
	return stat(a, &a_st) == 0 && stat(b, &b_st) == 0 && a_st.st_dev == b_st.st_dev &&
	       a_st.st_ino == b_st.st_ino;
}

int store_remove_tree(const char *path)
{
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0) {
		if (errno == ENOENT)
			return 0;
		return -1;
	}
	return 0;
}

static int make_top_folders(const char *dir, char *err, size_t errsz)
{
	static const char *const subs[] = {"spool", "queue", "accounts"};
	if (fsutil_mkdir_p(dir, 0700) < 0) {
		store_err(err, errsz, "cannot create data folder %s: %s", dir, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
		char path[PATH_MAX];
		if (store_path(path, sizeof path, dir, subs[i]) < 0) {
			store_err(err, errsz, "data folder path too long: %s", dir);
			return -1;
		}
		if (store_mkdir_durable(path) < 0) {
			store_err(err, errsz, "cannot create %s: %s", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* 1 if the accounts table has the scram column (added after schema
 * version 1 shipped), 0 if not, -1 on error. */
static int has_scram_column(struct store_db *db, char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT 1 FROM pragma_table_info('accounts') WHERE name = 'scram'",
			       -1, &st, NULL) != SQLITE_OK) {
		store_db_error(db, "reading the accounts columns", err, errsz);
		return -1;
	}
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "reading the accounts columns", err, errsz);
		return -1;
	}
	return rc == SQLITE_ROW;
}

/* Upgrades a server.db made before SCRAM keys existed: adds the accounts
 * column "scram" (empty for every existing account, so SCRAM is
 * unavailable for them until their password is set again).  Several
 * processes may open the folder at once: the check is repeated under the
 * write lock. */
static int add_scram_column(struct store_db *db, char *err, size_t errsz)
{
	int r = has_scram_column(db, err, errsz);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	r = has_scram_column(db, err, errsz);
	if (r == 0) {
		char *msg = NULL;
		if (sqlite3_exec(db->h,
				 "ALTER TABLE accounts ADD COLUMN scram TEXT NOT NULL DEFAULT ''",
				 NULL, NULL, &msg) != SQLITE_OK) {
			store_err(err, errsz, "database error: adding accounts.scram: %s",
				  msg ? msg : "unknown");
			sqlite3_free(msg);
			r = -1;
		}
	}
	if (r < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

struct store *store_open(const char *data_dir, char *err, size_t errsz)
{
	if (data_dir == NULL || data_dir[0] == '\0') {
		store_err(err, errsz, "no data folder given");
		return NULL;
	}
	size_t len = strlen(data_dir);
	while (len > 1 && data_dir[len - 1] == '/')
		len--;
	/* Leave room for "/accounts/NN/ID/msg/FILE_ID" below the folder. */
	if (len > PATH_MAX - 128) {
		store_err(err, errsz, "data folder path too long");
		return NULL;
	}
	struct store *s = xcalloc(1, sizeof *s);
	s->dir = xstrndup(data_dir, len);
	s->max_open = STORE_ACCOUNT_CACHE_DEFAULT;
	s->next_sub_id = 1;

	if (make_top_folders(s->dir, err, errsz) < 0)
		goto fail;
	char path[PATH_MAX];
	if (store_path(path, sizeof path, s->dir, "server.db") < 0) {
		store_err(err, errsz, "data folder path too long");
		goto fail;
	}
	if (store_db_open(&s->db, path, true, err, errsz) < 0)
		goto fail;
	if (store_db_schema(&s->db, server_ddl, STORE_SERVER_SCHEMA, NULL, 0, err, errsz) < 0)
		goto fail;
	if (add_scram_column(&s->db, err, errsz) < 0)
		goto fail;
	if (store_queue_schema(s, err, errsz) < 0)
		goto fail;
	if (store_dkim_schema(s, err, errsz) < 0 || store_dmarc_schema(s, err, errsz) < 0)
		goto fail;
	if (store_mtasts_schema(s, err, errsz) < 0 || store_requiretls_schema(s, err, errsz) < 0)
		goto fail;
	if (store_group_schema(s, err, errsz) < 0 || store_apppass_schema(s, err, errsz) < 0 ||
	    store_greylist_schema(s, err, errsz) < 0 ||
	    store_spamlevel_schema(s, err, errsz) < 0 ||
	    store_quota_server_schema(s, err, errsz) < 0)
		goto fail;
	if (store_acl_server_schema(s, err, errsz) < 0 ||
	    store_websession_schema(s, err, errsz) < 0)
		goto fail;
	return s;
fail:
	store_close(&s);
	return NULL;
}

void store_close(struct store **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	struct store *s = *sp;
	store_indexer_stop(s);
	store_commit_shutdown(s);
	store_account_free_all(s);
	store_db_close(&s->db);
	free(s->subs);
	free(s->dir);
	free(s);
	*sp = NULL;
}

const char *store_data_dir(const struct store *s)
{
	return s->dir;
}

void store_set_account_cache(struct store *s, size_t max_open)
{
	s->max_open = max_open > 0 ? max_open : 1;
}
