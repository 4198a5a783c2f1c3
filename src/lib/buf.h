/*
 * buf.h - the one growable byte buffer used everywhere in Tern.
 *
 * A buf holds bytes (not necessarily text) with an explicit length.  It keeps
 * one spare byte so that buf_cstr() can always return a NUL-terminated view.
 * Every buffer has a hard maximum: growth past it fails with -1 instead of
 * eating memory, which is how untrusted input is bounded.
 *
 * Ownership: the struct is usually embedded in its owner; buf_free() releases
 * the storage and leaves an empty buffer that may be reused.
 */
#ifndef TERN_BUF_H
#define TERN_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;  /* NULL until first growth */
	size_t len;  /* bytes in use */
	size_t cap;  /* bytes allocated (always > len once allocated) */
	size_t max;  /* hard limit on len; 0 means BUF_DEFAULT_MAX */
};

#define BUF_DEFAULT_MAX ((size_t)1 << 30)
#define BUF_INIT {NULL, 0, 0, 0}

/* Sets an empty buffer with the given maximum (0: BUF_DEFAULT_MAX). */
void buf_init(struct buf *b, size_t max);
/* Releases the storage; b becomes empty and reusable.  Accepts NULL. */
void buf_free(struct buf *b);
/* Forgets the contents but keeps the storage. */
void buf_reset(struct buf *b);
/* Ensures room for extra more bytes.  Returns 0, or -1 if that would pass
 * the maximum (the buffer is then unchanged). */
int buf_reserve(struct buf *b, size_t extra);
/* Appends n bytes.  Returns 0, or -1 past the maximum (nothing appended). */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
/* printf-style append.  Returns 0, or -1 past the maximum (nothing kept). */
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* NUL-terminated view of the contents, valid until the next change.
 * Never NULL ("" for an empty, unallocated buffer). */
const char *buf_cstr(struct buf *b);
/* Hands the storage to the caller (who must free() it) and empties b.
 * Returns a NUL-terminated string, never NULL. */
char *buf_steal(struct buf *b, size_t *len_out);

#endif
