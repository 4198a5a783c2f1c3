/*
 * xalloc.h - the one out-of-memory policy: allocation failure logs and exits
 * the process (a worker then gets restarted by the master).  Every allocation
 * in Tern goes through these, so none is unchecked.
 */
#ifndef TERN_XALLOC_H
#define TERN_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* Multiplies n * size, exiting on overflow, then reallocates. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Duplicates n bytes and NUL-terminates. */
char *xmemdup0(const void *p, size_t n);

#endif
