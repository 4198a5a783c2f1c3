/*
 * mta-sts.h - MTA-STS (RFC 8461): the pure parts.  The "_mta-sts" TXT
 * record (3.1), the policy file (3.2) and MX host matching (4.1).
 *
 * Fetching (mta-sts-fetch.c), caching (store: mta_sts_policies) and
 * applying a policy to a delivery (queue-runner.c) live elsewhere; this
 * file only parses, so unit tests and fuzz/fuzz-mtasts.c use it alone.
 *
 * Both parsers read bytes with a length (never NUL-terminated), are
 * bounded (MTASTS_POLICY_MAX input bytes, MTASTS_MAX_MX patterns) and
 * never read past the end.
 */
#ifndef TERN_MTA_STS_H
#define TERN_MTA_STS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 8461 3.3 suggests 64 kilobytes as the largest policy. */
#define MTASTS_POLICY_MAX 65536
/* Patterns kept: more "mx:" lines make the policy invalid (no real
 * domain has that many MX names). */
#define MTASTS_MAX_MX 64
#define MTASTS_ID_MAX 32           /* 1*32(ALPHA / DIGIT) */
#define MTASTS_MAX_AGE_MAX 31557600 /* seconds, 3.2 */

enum mtasts_mode {
	MTASTS_NONE,
	MTASTS_TESTING,
	MTASTS_ENFORCE,
};

struct mtasts_policy {
	enum mtasts_mode mode;
	uint64_t max_age; /* seconds */
	size_t n_mx;
	/* lower-case; "*.example.net" or "mail.example.com" */
	char mx[MTASTS_MAX_MX][256];
};

/* Checks one TXT record (its strings concatenated).  Returns 1 and the id
 * (NUL-terminated) for a valid "v=STSv1; id=...;" record, 0 for a record
 * that does not begin with "v=STSv1;" (another kind of TXT record, to be
 * ignored), -1 for one that does but is malformed. */
int mtasts_txt_parse(const char *p, size_t n, char id[MTASTS_ID_MAX + 1]);

/* Parses a policy body (CRLF- or LF-separated "key: value" lines).  0 and
 * *out filled, or -1 with err saying what is wrong in words: a missing or
 * unknown version, a missing or unknown mode, a missing or too large
 * max_age, no mx with mode enforce/testing, a malformed line, too many
 * patterns, more than MTASTS_POLICY_MAX bytes.  Unknown keys are ignored,
 * and a repeated key other than mx keeps its first value (3.2). */
int mtasts_policy_parse(const char *p, size_t n, struct mtasts_policy *out, char *err,
			size_t errsz);

/* True if host (an MX name, any case, no trailing dot) matches one of the
 * policy's patterns (4.1: "*.example.com" matches exactly one label in
 * front of example.com). */
bool mtasts_mx_match(const struct mtasts_policy *pol, const char *host);

/* The patterns " "-separated, for log lines and failure texts. */
void mtasts_mx_list(const struct mtasts_policy *pol, char *out, size_t outsz);

/* The policy we serve for our domains (src/http/http-autoconfig.c writes
 * the same bytes): "version: STSv1", mode, one mx (our host name),
 * max_age, CRLF lines.  Returns its length, or 0 if outsz is too small. */
size_t mtasts_policy_format(const char *mode, const char *mx, uint64_t max_age, char *out,
			    size_t outsz);

/* "enforce", "testing", "none". */
const char *mtasts_mode_name(enum mtasts_mode m);

#endif
