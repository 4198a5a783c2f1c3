/*
 * caldate.h - proleptic Gregorian calendar arithmetic on day numbers
 * (days since 1970-01-01), for the date parsers of the mail and Sieve
 * layers.  Pure integer code, no time zone, valid for any int64 year a
 * caller can reach.
 */
#ifndef TERN_CALDATE_H
#define TERN_CALDATE_H

#include <stdint.h>

/* Days from 1970-01-01 to y-m-d (m 1..12, d 1..31; not checked). */
int64_t caldate_days_from_civil(int64_t y, int m, int d);
/* The date of day z (days since 1970-01-01). */
void caldate_civil_from_days(int64_t z, int64_t *y, int *m, int *d);

#endif
