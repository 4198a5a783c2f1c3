/*
 * store-health.c - what GET /health asks of the store (docs/admin.md
 * "Health checks"): can this node take mail now?
 *
 * Three checks, each cheap enough for a load balancer polling every few
 * seconds: server.db answers a read; a file can be created in the spool
 * folder (where every message is written first); the data folder's file
 * system has at least min_free octets available.  The first that fails
 * is named, in plain words, for the operator who reads the answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "store-private.h"

int store_health(struct store *s, uint64_t min_free, struct store_health *h)
{
	memset(h, 0, sizeof *h);
	h->database = h->spool = h->disk = true;
	sqlite3_stmt *st = store_db_stmt(&s->db, "SELECT count(*) FROM sqlite_master", NULL, 0);
	int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
	if (st)
		sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		h->database = false;
		snprintf(h->why, sizeof h->why, "server.db does not answer: %s",
			 s->db.h ? sqlite3_errmsg(s->db.h) : "not open");
		return -1;
	}
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/spool/.health.%ld", s->dir, (long)getpid());
	int fd = n > 0 && (size_t)n < sizeof path
		     ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)
		     : -1;
	if (fd < 0 || write(fd, "ok\n", 3) != 3) {
		h->spool = false;
		snprintf(h->why, sizeof h->why, "cannot write in the spool folder %s/spool: %s",
			 s->dir, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return -1;
	}
	close(fd);
	unlink(path);
	struct statvfs v;
	if (statvfs(s->dir, &v) < 0) {
		h->disk = false;
		snprintf(h->why, sizeof h->why, "cannot read the free space of %s: %s", s->dir,
			 strerror(errno));
		return -1;
	}
	h->free_bytes = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
	if (h->free_bytes < min_free) {
		h->disk = false;
		snprintf(h->why, sizeof h->why,
			 "%llu MiB free in the data folder, below health.min_free_space (%llu MiB)",
			 (unsigned long long)(h->free_bytes >> 20),
			 (unsigned long long)(min_free >> 20));
		return -1;
	}
	return 0;
}
