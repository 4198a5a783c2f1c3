/*
 * store-backup.c - a consistent copy of a data folder while the server
 * runs (`tern backup`), and putting one back (`tern restore`).
 *
 * What makes the copy consistent:
 * - Each database (server.db, every account.db) is copied with SQLite's
 *   online backup API in one step: one read transaction, so the copy is
 *   the database as some commit left it.  In WAL mode that reader never
 *   holds up the workers.
 * - Message files and queue files are written once and never changed, so
 *   a file named in a database copy can be taken at any later moment: it
 *   is hard-linked into the backup when both are on one file system, else
 *   copied.  Only the files the copy names are taken; a file the backup
 *   already has (an earlier run) is kept as it is: that is the increment.
 * - The one race is a file that goes away between the database copy and
 *   its link (an expunge, a delivered queue entry).  The store removes
 *   such a file only after the commit that stops naming it is durable
 *   (docs/architecture.md), so a missing file means a newer copy of the
 *   database no longer names it: the database is copied again and the
 *   files it names taken, until none is missing (a few rounds at most).
 * - Files the backup has that its new database copies no longer name are
 *   removed, so the backup is exactly one state of each database.
 *
 * Across databases the copy is not one instant: each account is as it was
 * at the moment its own database was copied, server.db as it was before
 * any of them (an account added meanwhile is not in the backup; one
 * removed meanwhile is taken again from a newer server.db).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "store-private.h"
#include "xalloc.h"

#define ROUNDS_MAX 10 /* database copies before giving up on a busy one */
#define MARKER "BACKUP" /* the file that says a folder is a Tern backup */

/* A set of file names (message ids), sorted for lookup. */
struct names {
	char (*v)[64];
	size_t n, cap;
};

static void names_free(struct names *ns)
{
	free(ns->v);
	memset(ns, 0, sizeof *ns);
}

static void names_add(struct names *ns, const char *name)
{
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 64;
		ns->v = xreallocarray(ns->v, ns->cap, sizeof *ns->v);
	}
	snprintf(ns->v[ns->n++], sizeof ns->v[0], "%s", name);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void names_sort(struct names *ns)
{
	if (ns->n > 0)
		qsort(ns->v, ns->n, sizeof *ns->v, name_cmp);
}

static bool names_has(const struct names *ns, const char *name)
{
	return ns->n > 0 && bsearch(name, ns->v, ns->n, sizeof *ns->v, name_cmp) != NULL;
}

/* A plain file name of ours (no '/', not "." or ".."). */
static bool safe_name(const char *s)
{
	return s[0] != '\0' && s[0] != '.' && strchr(s, '/') == NULL && strlen(s) < 64;
}

static int join(char *out, size_t outsz, const char *dir, const char *name, char *err,
		size_t errsz)
{
	if (store_path(out, outsz, dir, name) < 0) {
		store_err(err, errsz, "path too long: %s/%s", dir, name);
		return -1;
	}
	return 0;
}

/* Copies src to dst (a new file, mode of src) and fsyncs it. */
static int copy_file(const char *src, const char *dst, uint64_t *bytes, char *err, size_t errsz)
{
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		if (errno != ENOENT)
			store_err(err, errsz, "%s: %s", src, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(in, &st) < 0) {
		store_err(err, errsz, "%s: %s", src, strerror(errno));
		close(in);
		return -1;
	}
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", dst) >= (int)sizeof tmp) {
		store_err(err, errsz, "path too long: %s", dst);
		close(in);
		return -1;
	}
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		       st.st_mode & 07777);
	if (out < 0) {
		store_err(err, errsz, "%s: %s", tmp, strerror(errno));
		close(in);
		return -1;
	}
	char chunk[65536];
	ssize_t n;
	int rc = 0;
	while ((n = read(in, chunk, sizeof chunk)) > 0) {
		if (fsutil_write_all(out, chunk, (size_t)n) < 0) {
			rc = -1;
			break;
		}
		*bytes += (uint64_t)n;
	}
	if (n < 0 || rc < 0 || fsync(out) < 0) {
		store_err(err, errsz, "%s: %s", tmp, strerror(errno));
		rc = -1;
	}
	close(in);
	if (close(out) < 0 && rc == 0) {
		store_err(err, errsz, "%s: %s", tmp, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && rename(tmp, dst) < 0) {
		store_err(err, errsz, "%s: %s", dst, strerror(errno));
		rc = -1;
	}
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* Takes the immutable file src as dst: a hard link when the file system
 * allows, else a copy.  0; 1 when src does not exist (any more); -1. */
static int take_file(const char *src, const char *dst, struct store_backup_stats *stats,
		     char *err, size_t errsz)
{
	if (link(src, dst) == 0) {
		stats->files_linked++;
		return 0;
	}
	if (errno == ENOENT && access(src, F_OK) < 0)
		return 1;
	if (errno == EEXIST)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
		store_err(err, errsz, "link %s: %s", dst, strerror(errno));
		return -1;
	}
	err[0] = '\0';
	if (copy_file(src, dst, &stats->bytes_copied, err, errsz) < 0)
		return err[0] == '\0' ? 1 : -1;
	stats->files_copied++;
	return 0;
}

/* Copies the database at src into dst (replacing it) in one read
 * transaction of src (SQLite's online backup). */
static int copy_db(const char *src, const char *dst, char *err, size_t errsz)
{
	sqlite3 *from = NULL, *to = NULL;
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", dst) >= (int)sizeof tmp) {
		store_err(err, errsz, "path too long: %s", dst);
		return -1;
	}
	unlink(tmp);
	int rc = -1;
	if (sqlite3_open_v2(src, &from, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		store_err(err, errsz, "cannot open %s: %s", src,
			  from ? sqlite3_errmsg(from) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(from, 10000);
	if (sqlite3_open_v2(tmp, &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK) {
		store_err(err, errsz, "cannot create %s: %s", tmp,
			  to ? sqlite3_errmsg(to) : "out of memory");
		goto out;
	}
	sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
	if (b == NULL) {
		store_err(err, errsz, "backup of %s: %s", src, sqlite3_errmsg(to));
		goto out;
	}
	int step;
	while ((step = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || step == SQLITE_LOCKED)
		sqlite3_sleep(20);
	sqlite3_backup_finish(b);
	if (step != SQLITE_DONE) {
		store_err(err, errsz, "backup of %s: %s", src, sqlite3_errstr(step));
		goto out;
	}
	/* The copy is a file on its own: no WAL beside it. */
	if (sqlite3_exec(to, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK) {
		store_err(err, errsz, "%s: %s", tmp, sqlite3_errmsg(to));
		goto out;
	}
	rc = 0;
out:
	sqlite3_close(from);
	if (to != NULL && sqlite3_close(to) != SQLITE_OK && rc == 0) {
		store_err(err, errsz, "%s: cannot close", tmp);
		rc = -1;
	}
	if (rc == 0) {
		int fd = open(tmp, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0 || rename(tmp, dst) < 0) {
			store_err(err, errsz, "%s: %s", dst, strerror(errno));
			rc = -1;
		}
		if (fd >= 0)
			close(fd);
		if (rc == 0)
			chmod(dst, 0600);
	}
	if (rc < 0)
		unlink(tmp);
	return rc;
}

/* Appends column 0 of every row of sql, run on the database at path, to
 * out. */
static int query_names(const char *path, const char *sql, struct names *out, char *err,
		       size_t errsz)
{
	sqlite3 *db = NULL;
	int rc = -1;
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		store_err(err, errsz, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		goto out;
	}
	int step;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		if (v != NULL)
			names_add(out, v);
	}
	if (step != SQLITE_DONE) {
		store_err(err, errsz, "%s: %s", path, sqlite3_errmsg(db));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* Takes every file of names from src_dir into dst_dir.  *missing counts
 * those src_dir no longer has. */
static int take_files(const char *src_dir, const char *dst_dir, const struct names *names,
		      size_t *missing, struct store_backup_stats *stats, char *err, size_t errsz)
{
	*missing = 0;
	for (size_t i = 0; i < names->n; i++) {
		const char *f = names->v[i];
		if (!safe_name(f)) {
			store_err(err, errsz, "%s: a file name that is not ours: %.64s", src_dir, f);
			return -1;
		}
		char src[PATH_MAX], dst[PATH_MAX];
		if (join(src, sizeof src, src_dir, f, err, errsz) < 0 ||
		    join(dst, sizeof dst, dst_dir, f, err, errsz) < 0)
			return -1;
		struct stat st;
		if (lstat(dst, &st) == 0)
			continue; /* immutable: the one there is the same */
		int r = take_file(src, dst, stats, err, errsz);
		if (r < 0)
			return -1;
		if (r == 1)
			(*missing)++;
	}
	return 0;
}

/* The names of the entries of dir but "." and "..", sorted (none if dir
 * does not exist; names too long to be ours are left out). */
static int list_dir(const char *dir, struct names *out, char *err, size_t errsz)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		store_err(err, errsz, "%s: %s", dir, strerror(errno));
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strlen(e->d_name) < 64)
			names_add(out, e->d_name);
	closedir(d);
	names_sort(out);
	return 0;
}

/* True if name is one of skip (NULL-terminated; skip may be NULL). */
static bool in_list(const char *name, const char *const *skip)
{
	for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
		if (!strcmp(name, skip[i]))
			return true;
	return false;
}

/* Removes the entries of dir that keep does not name (and that are not
 * in skip, NULL-terminated), folders with everything in them. */
static int remove_tree(const char *path);

static int prune(const char *dir, const struct names *keep, const char *const *skip, char *err,
		 size_t errsz)
{
	struct names have = {0};
	int rc = list_dir(dir, &have, err, errsz);
	for (size_t i = 0; rc == 0 && i < have.n; i++) {
		if (in_list(have.v[i], skip) || names_has(keep, have.v[i]))
			continue;
		char p[PATH_MAX];
		if (join(p, sizeof p, dir, have.v[i], err, errsz) < 0)
			rc = -1;
		else if (remove_tree(p) < 0) {
			store_err(err, errsz, "%s: %s", p, strerror(errno));
			rc = -1;
		}
	}
	names_free(&have);
	return rc;
}

static int remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	struct names have = {0};
	char err[8];
	int rc = list_dir(path, &have, err, sizeof err);
	for (size_t i = 0; rc == 0 && i < have.n; i++) {
		char p[PATH_MAX];
		if (store_path(p, sizeof p, path, have.v[i]) < 0 || remove_tree(p) < 0)
			rc = -1;
	}
	names_free(&have);
	return rc == 0 ? rmdir(path) : -1;
}


/* One database and the immutable files it names, in rounds until every
 * file it names is there (see the top). */
struct db_with_files {
	const char *src_db, *dst_db;   /* the database and its copy */
	const char *src_dir, *dst_dir; /* where its files are, NULL: none */
	const char *files_sql;         /* the names of its files */
};

/* One round: 0 done, 1 a file went away (copy again), -1 error. */
static int copy_round(const struct db_with_files *w, struct names *files,
		      struct store_backup_stats *stats, char *err, size_t errsz)
{
	names_free(files);
	if (copy_db(w->src_db, w->dst_db, err, errsz) < 0)
		return -1;
	if (w->files_sql == NULL)
		return 0;
	if (query_names(w->dst_db, w->files_sql, files, err, errsz) < 0)
		return -1;
	names_sort(files);
	size_t missing;
	if (take_files(w->src_dir, w->dst_dir, files, &missing, stats, err, errsz) < 0)
		return -1;
	if (missing == 0)
		return 0;
	stats->rounds++;
	return 1;
}

static int copy_db_with_files(const struct db_with_files *w, struct names *files,
			      struct store_backup_stats *stats, char *err, size_t errsz)
{
	struct names before = {0};
	if (w->dst_dir != NULL && list_dir(w->dst_dir, &before, err, errsz) < 0)
		return -1;
	int rc = 1;
	for (int round = 1; round <= ROUNDS_MAX && rc == 1; round++)
		rc = copy_round(w, files, stats, err, errsz);
	if (rc == 1) {
		store_err(err, errsz,
			  "%s changes too fast: files it names kept going away during %d copies",
			  w->src_db, ROUNDS_MAX);
		rc = -1;
	}
	if (rc == 0 && w->dst_dir != NULL) {
		/* what this run added, kept and (in prune) removed */
		for (size_t i = 0; i < files->n; i++) {
			if (names_has(&before, files->v[i]))
				stats->files_kept++;
			else
				stats->files_new++;
		}
		for (size_t i = 0; i < before.n; i++)
			if (!names_has(files, before.v[i]))
				stats->files_removed++;
		rc = prune(w->dst_dir, files, NULL, err, errsz);
	}
	names_free(&before);
	return rc;
}


/* Copies the small files of a folder (keys: DKIM, SRS), recursing into
 * folders; not databases, locks, the login limiter's shared table
 * (*.table: state of the running server) or what skip names. */
static int copy_small(const char *src, const char *dst, const char *const *skip,
		      struct store_backup_stats *stats, char *err, size_t errsz)
{
	struct names have = {0};
	int rc = list_dir(src, &have, err, errsz);
	for (size_t i = 0; rc == 0 && i < have.n; i++) {
		const char *n = have.v[i];
		size_t len = strlen(n);
		const char *ext = strrchr(n, '.');
		if (in_list(n, skip) ||
		    (ext != NULL && (!strcmp(ext, ".db") || !strcmp(ext, ".lock") ||
				     !strcmp(ext, ".tmp") || !strcmp(ext, ".table"))) ||
		    (len > 4 && (!strcmp(n + len - 4, "-wal") || !strcmp(n + len - 4, "-shm"))))
			continue;
		char sp[PATH_MAX], dp[PATH_MAX];
		struct stat st;
		if (join(sp, sizeof sp, src, n, err, errsz) < 0 ||
		    join(dp, sizeof dp, dst, n, err, errsz) < 0) {
			rc = -1;
			break;
		}
		if (lstat(sp, &st) < 0)
			continue; /* gone meanwhile */
		if (S_ISDIR(st.st_mode)) {
			if (fsutil_mkdir_p(dp, st.st_mode & 07777) < 0) {
				store_err(err, errsz, "%s: %s", dp, strerror(errno));
				rc = -1;
			} else {
				rc = copy_small(sp, dp, NULL, stats, err, errsz);
			}
		} else if (S_ISREG(st.st_mode)) {
			err[0] = '\0';
			if (copy_file(sp, dp, &stats->bytes_copied, err, errsz) < 0 && err[0] != '\0')
				rc = -1;
		}
	}
	names_free(&have);
	return rc;
}

/* DATA/accounts/NN/ID under base. */
static int account_dir(char *out, size_t outsz, const char *base, long long id)
{
	int n = snprintf(out, outsz, "%s/accounts/%02d/%lld", base, (int)(id % 100), id);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static int backup_account(const char *data, const char *dst, long long id,
			  struct store_backup_stats *stats, char *err, size_t errsz)
{
	char sdir[PATH_MAX], ddir[PATH_MAX], sdb[PATH_MAX], ddb[PATH_MAX], smsg[PATH_MAX],
	    dmsg[PATH_MAX];
	if (account_dir(sdir, sizeof sdir, data, id) < 0 ||
	    account_dir(ddir, sizeof ddir, dst, id) < 0 ||
	    join(sdb, sizeof sdb, sdir, "account.db", err, errsz) < 0 ||
	    join(ddb, sizeof ddb, ddir, "account.db", err, errsz) < 0 ||
	    join(smsg, sizeof smsg, sdir, "msg", err, errsz) < 0 ||
	    join(dmsg, sizeof dmsg, ddir, "msg", err, errsz) < 0) {
		store_err(err, errsz, "path too long under %s", dst);
		return -1;
	}
	if (access(sdb, F_OK) < 0)
		return 1; /* removed since server.db was copied */
	if (fsutil_mkdir_p(dmsg, 0700) < 0) {
		store_err(err, errsz, "%s: %s", dmsg, strerror(errno));
		return -1;
	}
	struct names files = {0};
	struct db_with_files w = {sdb, ddb, smsg, dmsg, "SELECT DISTINCT file_id FROM messages"};
	int rc = copy_db_with_files(&w, &files, stats, err, errsz);
	if (rc == 0) {
		static const char *const skip[] = {"msg", NULL};
		rc = copy_small(sdir, ddir, skip, stats, err, errsz);
	}
	stats->message_files += files.n;
	names_free(&files);
	return rc;
}

/* Removes the account folders of dst that ids does not name. */
static int prune_accounts(const char *dst, const struct names *ids, char *err, size_t errsz)
{
	char top[PATH_MAX];
	struct names nns = {0};
	if (join(top, sizeof top, dst, "accounts", err, errsz) < 0 ||
	    list_dir(top, &nns, err, errsz) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < nns.n; i++) {
		char nn[PATH_MAX];
		rc = join(nn, sizeof nn, top, nns.v[i], err, errsz);
		if (rc == 0)
			rc = prune(nn, ids, NULL, err, errsz);
	}
	names_free(&nns);
	return rc;
}

static int write_marker(const char *dst, const char *data, char *err, size_t errsz)
{
	char path[PATH_MAX], text[PATH_MAX + 128];
	if (join(path, sizeof path, dst, MARKER, err, errsz) < 0)
		return -1;
	int n = snprintf(text, sizeof text, "tern backup\nfrom %s\ntime %lld\n", data,
			 (long long)time(NULL));
	if (n < 0 || (size_t)n >= sizeof text ||
	    fsutil_write_file_atomic(path, text, (size_t)n, 0600) < 0) {
		store_err(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int store_backup(const char *data, const char *dst, struct store_backup_stats *stats, char *err,
		 size_t errsz)
{
	memset(stats, 0, sizeof *stats);
	char sdb[PATH_MAX], ddb[PATH_MAX], squeue[PATH_MAX], dqueue[PATH_MAX];
	if (join(sdb, sizeof sdb, data, "server.db", err, errsz) < 0 ||
	    join(ddb, sizeof ddb, dst, "server.db", err, errsz) < 0 ||
	    join(squeue, sizeof squeue, data, "queue", err, errsz) < 0 ||
	    join(dqueue, sizeof dqueue, dst, "queue", err, errsz) < 0)
		return -1;
	if (access(sdb, R_OK) < 0) {
		store_err(err, errsz, "%s: %s (not a Tern data folder?)", sdb, strerror(errno));
		return -1;
	}
	if (fsutil_mkdir_p(dqueue, 0700) < 0) {
		store_err(err, errsz, "%s: %s", dqueue, strerror(errno));
		return -1;
	}
	/* the marker goes until this run is complete: a backup cut short
	 * cannot be restored by mistake */
	char marker[PATH_MAX];
	if (join(marker, sizeof marker, dst, MARKER, err, errsz) < 0)
		return -1;
	if (unlink(marker) < 0 && errno != ENOENT) {
		store_err(err, errsz, "%s: %s", marker, strerror(errno));
		return -1;
	}
	struct names queue = {0}, ids = {0};
	int rc = -1;
	/* server.db and the queue files it names; then each of its accounts
	 * (an account removed meanwhile: copy server.db again) */
	struct db_with_files w = {sdb, ddb, squeue, dqueue,
				  "SELECT file FROM queue_messages WHERE done = 0"};
	for (int round = 1; round <= ROUNDS_MAX; round++) {
		names_free(&ids);
		if (copy_db_with_files(&w, &queue, stats, err, errsz) < 0 ||
		    query_names(ddb, "SELECT CAST(id AS TEXT) FROM accounts", &ids, err, errsz) < 0)
			goto out;
		bool gone = false;
		stats->accounts = 0;
		stats->message_files = 0;
		for (size_t i = 0; i < ids.n && !gone; i++) {
			int r = backup_account(data, dst, strtoll(ids.v[i], NULL, 10), stats, err,
					       errsz);
			if (r < 0)
				goto out;
			gone = r == 1;
			stats->accounts++;
		}
		if (!gone)
			break;
		stats->rounds++;
		if (round == ROUNDS_MAX) {
			store_err(err, errsz, "accounts kept being removed during %d copies",
				  ROUNDS_MAX);
			goto out;
		}
	}
	names_sort(&ids);
	stats->queue_files = queue.n;
	if (prune_accounts(dst, &ids, err, errsz) < 0)
		goto out;
	/* keys and other small files at the top (never the spool: what is
	 * there was not acknowledged) */
	static const char *const skip[] = {"spool", "queue", "accounts", MARKER, NULL};
	if (copy_small(data, dst, skip, stats, err, errsz) < 0 || write_marker(dst, data, err, errsz) < 0)
		goto out;
	int fd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) < 0) {
		store_err(err, errsz, "%s: sync: %s", dst, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	rc = 0;
out:
	names_free(&queue);
	names_free(&ids);
	return rc;
}

/* ---------------------------------------------------------------- restore */

/* Copies the tree src into dst: databases and small files copied, the
 * immutable files under msg/ and queue/ linked or copied. */
static int restore_tree(const char *src, const char *dst, bool immutable,
			struct store_backup_stats *stats, char *err, size_t errsz)
{
	struct names have = {0};
	int rc = list_dir(src, &have, err, errsz);
	for (size_t i = 0; rc == 0 && i < have.n; i++) {
		const char *n = have.v[i];
		size_t len = strlen(n);
		if (!strcmp(n, MARKER) || (len > 4 && !strcmp(n + len - 4, ".tmp")))
			continue; /* .tmp: left by a backup that was cut short */
		char sp[PATH_MAX], dp[PATH_MAX];
		struct stat st;
		if (join(sp, sizeof sp, src, n, err, errsz) < 0 ||
		    join(dp, sizeof dp, dst, n, err, errsz) < 0) {
			rc = -1;
		} else if (lstat(sp, &st) < 0) {
			store_err(err, errsz, "%s: %s", sp, strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			if (mkdir(dp, 0700) < 0 && errno != EEXIST) {
				store_err(err, errsz, "%s: %s", dp, strerror(errno));
				rc = -1;
			} else {
				bool imm = immutable || !strcmp(n, "msg") || !strcmp(n, "queue");
				rc = restore_tree(sp, dp, imm, stats, err, errsz);
			}
		} else if (S_ISREG(st.st_mode)) {
			err[0] = '\0';
			int r = immutable ? take_file(sp, dp, stats, err, errsz)
					  : copy_file(sp, dp, &stats->bytes_copied, err, errsz);
			if (r != 0) {
				if (err[0] == '\0')
					store_err(err, errsz, "%s: gone", sp);
				rc = -1;
			}
		}
	}
	names_free(&have);
	return rc;
}

int store_restore(const char *src, const char *data, struct store_backup_stats *stats, char *err,
		  size_t errsz)
{
	memset(stats, 0, sizeof *stats);
	char marker[PATH_MAX], db[PATH_MAX];
	if (join(marker, sizeof marker, src, MARKER, err, errsz) < 0 ||
	    join(db, sizeof db, src, "server.db", err, errsz) < 0)
		return -1;
	if (access(marker, R_OK) < 0 || access(db, R_OK) < 0) {
		store_err(err, errsz, "%s is not a finished Tern backup (no %s or server.db)", src,
			  MARKER);
		return -1;
	}
	struct names have = {0};
	if (list_dir(data, &have, err, errsz) < 0)
		return -1;
	size_t n_have = have.n;
	names_free(&have);
	if (n_have > 0) {
		store_err(err, errsz, "%s is not empty: restore only into a new or empty data folder",
			  data);
		return -1;
	}
	if (fsutil_mkdir_p(data, 0700) < 0) {
		store_err(err, errsz, "%s: %s", data, strerror(errno));
		return -1;
	}
	err[0] = '\0';
	if (restore_tree(src, data, false, stats, err, errsz) < 0)
		return -1;
	char spool[PATH_MAX];
	if (join(spool, sizeof spool, data, "spool", err, errsz) < 0 ||
	    fsutil_mkdir_p(spool, 0700) < 0) {
		if (err[0] == '\0')
			store_err(err, errsz, "%s: %s", spool, strerror(errno));
		return -1;
	}
	int fd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || syncfs(fd) < 0) {
		store_err(err, errsz, "%s: sync: %s", data, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}
