/*
 * sieve-ext.c - the one table of extensions.  Entry 0 is the base
 * language; every other entry is an extension implemented completely,
 * which `require` accepts and a ManageSieve SIEVE capability may list.
 * An extension is added here only when it is whole.
 */
#include "sieve-private.h"

const struct sieve_ext *const sieve_ext_table[] = {
    &sieve_ext_base,    &sieve_ext_fileinto,   &sieve_ext_reject,
    &sieve_ext_ereject, &sieve_ext_envelope,   &sieve_ext_copy,
    &sieve_ext_mailbox, &sieve_ext_imap4flags, &sieve_ext_subaddress,
    &sieve_ext_vacation, &sieve_ext_vacation_seconds, &sieve_ext_variables,
    &sieve_ext_relational, &sieve_ext_numeric, &sieve_ext_body,
    &sieve_ext_date, &sieve_ext_index, &sieve_ext_duplicate, &sieve_ext_editheader,
    &sieve_ext_include, &sieve_ext_environment, &sieve_ext_ihave,
    &sieve_ext_encoded, &sieve_ext_spamtest, &sieve_ext_spamtestplus, &sieve_ext_virustest,
};
const size_t sieve_ext_count = sizeof sieve_ext_table / sizeof sieve_ext_table[0];
/* the parser keeps one flag per entry in a bool[32] (sieve-parse.c) */
_Static_assert(sizeof sieve_ext_table / sizeof sieve_ext_table[0] <= 32,
	       "more extensions than the parser's enabled[] holds");

const char *const *sieve_extensions(void)
{
	static const char *names[sizeof sieve_ext_table / sizeof sieve_ext_table[0]];
	if (names[0] == NULL)
		for (size_t i = 1; i < sieve_ext_count; i++)
			names[i - 1] = sieve_ext_table[i]->name;
	return names;
}
