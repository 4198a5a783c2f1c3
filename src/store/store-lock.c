/*
 * store-lock.c - an exclusive lock on an account, for a protocol that may
 * hold only one session per maildrop at a time (POP3, RFC 1939 section 8).
 *
 * Workers are separate processes, so the lock must be visible across them
 * and must go away by itself when a holder dies (kill -9, crash): flock(2)
 * on DATA/accounts/NN/ID/maildrop.lock does both, since the kernel drops
 * the lock when the last descriptor of its open file description closes.
 * Each call opens the file anew, so two sessions in one process exclude
 * each other too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store-private.h"

int store_account_lock(struct store_account *a, char *err, size_t errsz)
{
	char path[PATH_MAX];
	if (store_path(path, sizeof path, a->dir, "maildrop.lock") < 0) {
		store_err(err, errsz, "lock file path too long");
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;
		store_err(err, errsz, "%s: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		if (e == EINTR)
			continue;
		close(fd);
		if (e == EWOULDBLOCK)
			store_err(err, errsz, "account is locked by another session");
		else
			store_err(err, errsz, "%s: flock: %s", path, strerror(e));
		errno = e;
		return -1;
	}
	return fd;
}
