/*
 * fsutil.c - file-system helpers (see fsutil.h).
 */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xalloc.h"

int fsutil_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int fsutil_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

int fsutil_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] == '/' || tmp[i] == '\0') {
			char save = tmp[i];
			tmp[i] = '\0';
			if (mkdir(tmp, mode) < 0 && errno != EEXIST)
				return -1;
			tmp[i] = save;
		}
	}
	return 0;
}

int fsutil_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid()) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (fsutil_write_all(fd, data, n) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		return fsutil_fsync_dir(".");
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return fsutil_fsync_dir(dir);
}

char *fsutil_read_fd(int fd, size_t max, size_t *len_out)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return NULL;
	if ((uint64_t)st.st_size > max) {
		errno = EFBIG;
		return NULL;
	}
	size_t size = (size_t)st.st_size;
	char *p = xmalloc(size + 1);
	size_t got = 0;
	while (got < size) {
		ssize_t r = pread(fd, p + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* Shorter than fstat said: cut while being read. */
			int e = r < 0 ? errno : EIO;
			free(p);
			errno = e;
			return NULL;
		}
		got += (size_t)r;
	}
	p[got] = '\0';
	if (len_out)
		*len_out = got;
	return p;
}

char *fsutil_read_file(const char *path, size_t max, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *p = fsutil_read_fd(fd, max, len_out);
	int e = errno;
	close(fd);
	errno = e;
	return p;
}

int fsutil_random(void *out, size_t n)
{
	char *p = out;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

void fsutil_unique_id(char out[25])
{
	static const char alphabet[] = "0123456789abcdefghijklmnopqrstuv";
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t t = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	unsigned char rnd[8];
	if (fsutil_random(rnd, sizeof rnd) < 0)
		memset(rnd, 0, sizeof rnd);
	/* 11 chars of microsecond time (55 bits) then 13 of randomness, so ids
	 * sort by time and do not collide across processes. */
	for (int i = 10; i >= 0; i--) {
		out[i] = alphabet[t & 31];
		t >>= 5;
	}
	uint64_t r = 0;
	memcpy(&r, rnd, sizeof r);
	for (int i = 11; i < 24; i++) {
		out[i] = alphabet[r & 31];
		r >>= 5;
	}
	out[24] = '\0';
}

void *fsutil_map_new(const char *path, size_t size)
{
	if (path == NULL)
		return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (unlink(path) < 0 && errno != ENOENT)
		return MAP_FAILED;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return MAP_FAILED;
	void *p = MAP_FAILED;
	if (ftruncate(fd, (off_t)size) == 0)
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED) {
		unlink(path);
		errno = e;
	}
	return p;
}

void *fsutil_map_existing(const char *path, bool writable, size_t min, size_t *size)
{
	*size = 0;
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return MAP_FAILED;
	struct stat st;
	void *p = MAP_FAILED;
	if (fstat(fd, &st) == 0 && st.st_size > 0 && (size_t)st.st_size >= min) {
		*size = (size_t)st.st_size;
		p = mmap(NULL, *size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd,
			 0);
	} else {
		errno = EINVAL;
	}
	int e = errno;
	close(fd);
	errno = e;
	return p;
}
