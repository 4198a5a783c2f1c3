/*
 * sieve-ext-relational.c - the "relational" extension (RFC 5231): the
 * :count and :value match types with gt, ge, lt, le, eq and ne, on every
 * test that takes a match type; and "comparator-i;ascii-numeric" (RFC
 * 4790 9.1, RFC 5228 2.7.3), which enables that comparator.  The
 * matching itself is in sieve-match.c; these entries enable the tags and
 * the comparator.
 */
#include "sieve-private.h"

const struct sieve_ext sieve_ext_relational = {"relational", NULL, 0, TAGS_REL, 0};
const struct sieve_ext sieve_ext_numeric = {"comparator-i;ascii-numeric", NULL, 0, 0,
					    1u << CMP_NUMERIC};
