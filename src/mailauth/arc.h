/*
 * arc.h - the Authenticated Received Chain (RFC 8617): validating the ARC
 * sets of a received message and sealing it with a new set.  A pure
 * library on top of dkim.h: the same canonicalization, tag lists, keys
 * (struct dkim_signer) and key lookup callback (dkim_lookup_fn), so the
 * caller does the DNS: arc_keys_needed() says which key records
 * arc_validate() will ask for, to be looked up (asynchronously) first.
 *
 * Everything read from the message is bounded: at most ARC_SETS_MAX sets,
 * the header limits of header.h, DKIM's tag-list limits.  Any error in a
 * chain is a fail with a reason (RFC 8617 5.2.1: all failures are
 * permanent), never a crash.
 */
#ifndef TERN_ARC_H
#define TERN_ARC_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "dkim.h"

#define ARC_SETS_MAX 50                 /* RFC 8617 5.2 step 1 */
#define ARC_KEYS_MAX (2 * ARC_SETS_MAX) /* an AMS and an AS key per set */

enum arc_status { ARC_NONE, ARC_PASS, ARC_FAIL };

/* "none", "pass", "fail" (the cv= and arc= words). */
const char *arc_status_name(enum arc_status st);

/* One ARC header field: its bytes in the message, without the line end. */
struct arc_field {
	const char *p;
	size_t len;
};

/* One set: ARC-Authentication-Results, ARC-Message-Signature, ARC-Seal. */
struct arc_set {
	struct arc_field aar, ams, as;
	enum arc_status cv; /* of the AS */
};

struct arc_chain {
	unsigned n;                           /* highest instance seen (0: no ARC field at all) */
	struct arc_set set[ARC_SETS_MAX + 1]; /* set[i] is instance i; [0] unused */
};

/* Finds the ARC fields of msg and checks the chain's structure (RFC 8617
 * 5.2 steps 1 to 3): instances 1..N with no gap, each field exactly once
 * per instance, N <= 50, cv=none on i=1 only, pass above, no h= in an AS.
 * Returns 0 with c->n = 0 (no ARC field), N >= 1 for a chain of N sets,
 * or -1 with a reason in err (a structurally failed chain; c->n is then
 * still the highest instance seen, and c->set[c->n].cv tells whether the
 * latest seal said cv=fail). */
int arc_chain_parse(const char *msg, size_t len, struct arc_chain *c, char *err, size_t errsz);

/* A key record arc_validate may ask for. */
struct arc_key {
	char selector[64];
	char domain[256];
};

/* The distinct (selector, domain) pairs of the AMS and AS fields of msg's
 * chain (at most max, ARC_KEYS_MAX is enough), for the caller to look up
 * before arc_validate.  Returns the number written (0: no chain, or one
 * that fails on its structure alone). */
size_t arc_keys_needed(const char *msg, size_t len, struct arc_key *keys, size_t max);

struct arc_result {
	enum arc_status status;
	unsigned n;                /* sets in the chain */
	unsigned oldest_pass;      /* RFC 8617 5.2 step 5, for a pass: 0 when every
				    * AMS verifies, else the oldest instance whose
				    * AMS still does */
	char domain[256];          /* d= of the latest AS (empty if none) */
	char reason[DKIM_ERR_MAX]; /* why it failed; empty for pass and none */
};

/* Validates msg's chain (RFC 8617 5.2), asking lookup for keys (a temporary
 * failure is a fail too, 5.2.1).  now is for the AMS x= tag.  Fills r. */
void arc_validate(const char *msg, size_t len, time_t now, dkim_lookup_fn lookup, void *ctx,
		  struct arc_result *r);

/* Seals msg (RFC 8617 5.1): appends the three fields of instance N+1 to
 * out, ready to go at the top of the message in that order (ARC-Seal,
 * ARC-Message-Signature, ARC-Authentication-Results, each ending in CRLF).
 * authserv_id is ours; results is the text of our Authentication-Results
 * field after "authserv-id;" (may be folded with CRLF + blank; "" gives
 * "none"); cv is the validation result of the chain as it came (ARC_NONE
 * for no chain).  The AMS is relaxed/relaxed over the recommended header
 * set plus any DKIM-Signature fields; with cv=fail the seal covers the new
 * set only (5.1.2).  Returns 0; 1 with nothing written when the chain
 * already ended with cv=fail (5.1 step 2); -1 with err (cv does not fit
 * the chain, 50 sets already, results not fit for a header, signing
 * failed). */
int arc_seal(const struct dkim_signer *s, const char *msg, size_t len, const char *authserv_id,
	     const char *results, enum arc_status cv, time_t now, struct buf *out, char *err,
	     size_t errsz);

#endif
