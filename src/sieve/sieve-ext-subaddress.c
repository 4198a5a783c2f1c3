/*
 * sieve-ext-subaddress.c - the "subaddress" extension (RFC 5233): the
 * :user and :detail address parts for address and envelope, with "+" as
 * the separator (sieve-match.c, sieve_address_part).  This entry enables
 * the tags.
 */
#include "sieve-private.h"

const struct sieve_ext sieve_ext_subaddress = {"subaddress", NULL, 0, TAGS_SUBADDR, 0};
