/*
 * sieve-ext-copy.c - ":copy" (RFC 3894) for redirect and fileinto: the
 * action does not cancel the implicit keep.  The tag itself is handled
 * by the parser and the actions; this entry enables it.
 */
#include "sieve-private.h"

const struct sieve_ext sieve_ext_copy = {"copy", NULL, 0, TAGS_COPY, 0};
