/*
 * dnsbl.h - the pure parts of the connection-stage checks on port 25
 * (docs/spam.md): DNS block/allow list zones as configured, the reversed
 * form of a client address, and what an A answer of a list means.
 */
#ifndef TERN_DNSBL_H
#define TERN_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

#define DNSBL_MAX_ZONES 16
#define DNSBL_ZONE_MAX 200 /* longest zone name (leaves room for the address) */
#define DNSBL_WEIGHT_MAX 1000
/* "f.e.d.c...ip6.arpa" or "4.3.2.1" plus a zone: well under 256 */
#define DNSBL_REVERSED_MAX 64

struct dnsbl_zone {
	char name[DNSBL_ZONE_MAX + 1]; /* lower-case, no trailing dot */
	int weight;
};

/* Parses a list "zone[=weight] zone[=weight] ..." (spaces or commas
 * between entries); an entry without a weight gets def_weight.  Weights
 * are integers -DNSBL_WEIGHT_MAX..DNSBL_WEIGHT_MAX; zones are host names
 * (letters, digits, '-', '_', dots).  Returns the number of zones (at most
 * max), or -1 (bad entry, or more than max) with err. */
int dnsbl_parse_zones(const char *list, int def_weight, struct dnsbl_zone *out, size_t max,
		      char *err, size_t errsz);

/* The reversed form of ip for a list lookup: "4.3.2.1" for 1.2.3.4 (also
 * for the IPv4-mapped ::ffff:1.2.3.4), 32 dot-separated nibbles for IPv6.
 * Returns 0, or -1 if ip is not an address.  *v6 says which it was. */
int dnsbl_reverse(const char *ip, char out[DNSBL_REVERSED_MAX], bool *v6);

/* What one A answer (4 bytes) of a list says. */
enum dnsbl_answer {
	DNSBL_LISTED,     /* 127.0.0.2 .. 127.255.255.255 but the ones below */
	DNSBL_ERROR_CODE, /* 127.255.255.0/24 and 127.0.0.255: the list says "error",
			   * "quota exceeded" or "open resolver": not a listing */
	DNSBL_BOGUS,      /* outside 127.0.0.0/8, or 127.0.0.0/127.0.0.1: not a listing */
};
enum dnsbl_answer dnsbl_classify(const unsigned char a[4]);

/* The HELO/EHLO argument's fault for the score: "bare_ip" (an IPv4 or
 * IPv6 address not in brackets), "not_fqdn" (no dot, or an empty or
 * bracketed name that is not an address literal), or NULL (a dotted
 * name or an address literal "[192.0.2.1]"/"[IPv6:...]"). */
const char *dnsbl_helo_fault(const char *helo);

#endif
