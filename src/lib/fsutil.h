/*
 * fsutil.h - small file-system helpers with the durability rules of Tern:
 * data acknowledged to a client is fsync'ed, and so is the folder entry
 * that names it.
 * All return 0 or -1 with errno set, unless said otherwise.
 */
#ifndef TERN_FSUTIL_H
#define TERN_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* write() until all n bytes are written (retries EINTR / short writes). */
int fsutil_write_all(int fd, const void *p, size_t n);
/* fsync() the folder at path (opens it O_DIRECTORY). */
int fsutil_fsync_dir(const char *path);
/* mkdir -p with the given mode; existing folders are fine. */
int fsutil_mkdir_p(const char *path, mode_t mode);
/* Writes data to path atomically (tmp file, fsync, rename, fsync folder). */
int fsutil_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);
/* Reads a whole file (at most max bytes) into a new NUL-terminated buffer
 * the caller frees.  Returns NULL with errno set (EFBIG if over max). */
char *fsutil_read_file(const char *path, size_t max, size_t *len_out);
/* The same for an open file, read from its start (pread: the file offset
 * is left alone).  Both fail (EIO) if the file is cut while being read. */
char *fsutil_read_fd(int fd, size_t max, size_t *len_out);
/* Shared memory for the tables all processes of a server see (authlimit,
 * metrics): size bytes mapped MAP_SHARED read-write from a new file at
 * path (mode 0600; an old file there is replaced), or anonymous memory if
 * path is NULL.  MAP_FAILED on error (errno set; no file left). */
void *fsutil_map_new(const char *path, size_t size);
/* Maps the whole existing file at path MAP_SHARED (read-write if
 * writable, else read-only); *size gets its size.  A file smaller than
 * min is refused (EINVAL).  MAP_FAILED on error (errno set). */
void *fsutil_map_existing(const char *path, bool writable, size_t min, size_t *size);

/* Fills out with n random bytes from the kernel (getrandom). */
int fsutil_random(void *out, size_t n);
/* Writes a unique id (time + random, 24 lowercase hex/base32 chars + NUL)
 * into out[25]. */
void fsutil_unique_id(char out[25]);

#endif
