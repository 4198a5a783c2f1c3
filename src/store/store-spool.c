/*
 * store-spool.c - files of transactions in progress in DATA/spool/, and the
 * clean-up of what a crash leaves there and in DATA/queue/.
 *
 * Whoever makes a spool file holds it open, with a shared flock(2) lock,
 * until it has unlinked it (store_spool_create, store_spool_drop).  The
 * lock belongs to the open file, so it goes with the process: after kill
 * -9 nobody holds it.  The clean-up (store_spool_clean) removes a file
 * only when it can take an exclusive lock on it, so it never touches the
 * file of a live transaction in any process, and a queue file only when,
 * in addition, no queue entry that is still to be delivered names it.
 * Files linked into the queue are the same inode as the spool file they
 * came from, so a queue hand-over in progress is locked as well.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "store-private.h"

int store_spool_create(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	/* Nobody else knows the new name yet: the lock cannot be busy. */
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return -1;
	}
	return fd;
}

int store_spool_new(const struct store *s, char *path, size_t pathsz)
{
	char id[25];
	fsutil_unique_id(id);
	int n = snprintf(path, pathsz, "%s/spool/%s", s->dir, id);
	if (n < 0 || (size_t)n >= pathsz) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return store_spool_create(path);
}

int store_spool_write(const struct store *s, const void *a, size_t alen, const void *b,
		      size_t blen, char *path, size_t pathsz)
{
	int fd = store_spool_new(s, path, pathsz);
	if (fd < 0)
		return -1;
	if ((alen > 0 && fsutil_write_all(fd, a, alen) < 0) ||
	    (blen > 0 && fsutil_write_all(fd, b, blen) < 0) || fsync(fd) < 0) {
		int e = errno;
		store_spool_drop(&fd, path);
		errno = e;
		return -1;
	}
	return fd;
}

void store_spool_drop(int *fd, const char *path)
{
	if (*fd < 0)
		return;
	/* Unlink before close: while the name exists the lock is held. */
	(void)unlink(path);
	close(*fd);
	*fd = -1;
}

/* 1 if the queue still has a message to deliver in file, 0 if not, -1 on
 * error. */
static int queue_file_live(struct store *s, const char *file, char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(&s->db, "SELECT 1 FROM queue_messages WHERE file = ?1 AND done = 0",
			  err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, file);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	store_db_error(&s->db, "queue file check", err, errsz);
	return -1;
}

/* Removes the files of one folder that nobody holds and (for the queue)
 * no live entry names.  Counts them in *removed. */
static int clean_folder(struct store *s, const char *sub, bool queue, time_t older_than,
			size_t *removed, char *err, size_t errsz)
{
	char dir[PATH_MAX];
	if (store_path(dir, sizeof dir, s->dir, sub) < 0) {
		store_err(err, errsz, "data folder path too long");
		return -1;
	}
	DIR *d = opendir(dir);
	if (d == NULL) {
		store_err(err, errsz, "cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	int ret = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[PATH_MAX];
		if (store_path(path, sizeof path, dir, e->d_name) < 0)
			continue;
		struct stat st;
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_mtime > older_than)
			continue;
		if (queue) {
			size_t n = strlen(e->d_name);
			if (!store_name_is_file_id(e->d_name, n))
				continue; /* not ours: leave it for the administrator */
			int live = queue_file_live(s, e->d_name, err, errsz);
			if (live != 0) {
				if (live < 0)
					ret = -1;
				if (live < 0)
					break;
				continue;
			}
		}
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		/* Held by a transaction in progress somewhere: not an orphan. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			/* Checked again under the lock: an entry may have
			 * been committed since. */
			if (!queue || queue_file_live(s, e->d_name, NULL, 0) == 0) {
				if (unlink(path) == 0)
					(*removed)++;
			}
		}
		close(fd);
	}
	closedir(d);
	return ret;
}

int store_spool_clean(struct store *s, time_t min_age, size_t *spool_removed,
		      size_t *queue_removed, char *err, size_t errsz)
{
	*spool_removed = 0;
	*queue_removed = 0;
	time_t older_than = time(NULL) - min_age;
	if (clean_folder(s, "spool", false, older_than, spool_removed, err, errsz) < 0)
		return -1;
	if (clean_folder(s, "queue", true, older_than, queue_removed, err, errsz) < 0)
		return -1;
	if (*spool_removed + *queue_removed > 0) {
		char dir[PATH_MAX];
		if (store_path(dir, sizeof dir, s->dir, "spool") == 0)
			(void)fsutil_fsync_dir(dir);
		if (store_path(dir, sizeof dir, s->dir, "queue") == 0)
			(void)fsutil_fsync_dir(dir);
	}
	return 0;
}
