/*
 * dmarc.h - DMARC (RFC 7489): the policy record, policy discovery,
 * the Organizational Domain, identifier alignment and the disposition.
 *
 * Pure functions over text the caller fetched from DNS and results the
 * caller computed with SPF and DKIM; no I/O here except that the Public
 * Suffix List (Debian's publicsuffix, through libpsl) is loaded once on
 * first use.  Record text is untrusted and bounded (DMARC_RECORD_MAX).
 */
#ifndef TERN_DMARC_H
#define TERN_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest record we read (a TXT RRset's strings, concatenated). */
#define DMARC_RECORD_MAX 4096
/* Reporting URIs kept per list (RFC 7489 7.1 allows any number; receivers
 * may limit them, and two is what senders commonly publish). */
#define DMARC_MAX_URIS 4
#define DMARC_URI_MAX 320
#define DMARC_DOMAIN_MAX 255

enum dmarc_policy {
	DMARC_POLICY_NONE = 0,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

/* Failure-reporting options (fo=), as bits. */
#define DMARC_FO_0 0x1u
#define DMARC_FO_1 0x2u
#define DMARC_FO_D 0x4u
#define DMARC_FO_S 0x8u

struct dmarc_uri {
	char uri[DMARC_URI_MAX + 1]; /* as published, e.g. "mailto:r@example.com" */
	uint64_t max_bytes;          /* the "!size" limit in bytes; 0 = none */
};

struct dmarc_record {
	enum dmarc_policy p;  /* p=, or none when p was unusable (see parse) */
	enum dmarc_policy sp; /* sp=, or p when absent */
	bool policy_valid;    /* false: p/sp was missing or invalid (6.6.3 6.1) */
	bool adkim_strict;    /* adkim=s */
	bool aspf_strict;     /* aspf=s */
	unsigned pct;         /* 0..100, default 100 */
	uint32_t ri;          /* seconds, default 86400 */
	unsigned fo;          /* DMARC_FO_* bits, default DMARC_FO_0 */
	struct dmarc_uri rua[DMARC_MAX_URIS];
	size_t n_rua;
	struct dmarc_uri ruf[DMARC_MAX_URIS];
	size_t n_ruf;
};

enum dmarc_parse {
	DMARC_PARSE_OK = 0,    /* a usable policy record (maybe p=none by 6.6.3 6.1) */
	DMARC_PARSE_NOT_DMARC, /* does not start with v=DMARC1: discard (6.6.3 2) */
	DMARC_PARSE_NO_POLICY, /* v=DMARC1 but no valid p/sp and no valid rua */
	DMARC_PARSE_TOO_LONG,  /* longer than DMARC_RECORD_MAX */
};

/* Parses one record txt[0..n).  Unknown tags are ignored and a known tag
 * with a bad value keeps its default (RFC 7489 6.3); a missing or invalid
 * p (or an invalid sp) makes the record act as p=none when rua holds a
 * valid URI, else DMARC_PARSE_NO_POLICY (6.6.3 step 6).  out is filled
 * for OK (cleared otherwise). */
enum dmarc_parse dmarc_record_parse(const char *txt, size_t n, struct dmarc_record *out);

enum dmarc_select {
	DMARC_SELECT_FOUND = 0, /* exactly one DMARC record, usable: in *out */
	DMARC_SELECT_EMPTY,     /* no v=DMARC1 record: look at the next name */
	DMARC_SELECT_STOP,      /* several DMARC records, or one unusable: no
				 * DMARC processing for this message */
};

/* Picks the policy record from one TXT RRset (txt[i][0..len[i]) each the
 * concatenated strings of one record), as RFC 7489 6.6.3 steps 2, 4-6
 * say. */
enum dmarc_select dmarc_select(const char *const *txt, const size_t *len, size_t n,
			       struct dmarc_record *out);

/* Writes the Organizational Domain of domain (RFC 7489 3.2: the public
 * suffix plus one label, from the Public Suffix List) into out, lower-
 * cased and without a trailing dot.  A name that is itself a public
 * suffix is its own (and aligns with nothing in relaxed mode).  Returns
 * the length, or -1 when domain is empty/too long or out too small. */
int dmarc_org_domain(const char *domain, char *out, size_t outsz);

/* Identifier alignment (RFC 7489 3.1): strict = same name (ASCII case-
 * insensitive, a trailing dot ignored); relaxed = same Organizational
 * Domain, neither being a public suffix. */
bool dmarc_aligned(const char *from_domain, const char *auth_domain, bool strict);

/* Results of the underlying checks, as DMARC needs them. */
enum dmarc_auth {
	DMARC_AUTH_NONE = 0, /* not checked / no signature / no record */
	DMARC_AUTH_PASS,
	DMARC_AUTH_FAIL, /* any other definite result (fail, softfail, neutral, policy) */
	DMARC_AUTH_TEMPERROR,
	DMARC_AUTH_PERMERROR,
};

struct dmarc_dkim_input {
	const char *domain; /* the signature's d= */
	enum dmarc_auth result;
};

struct dmarc_input {
	const char *from_domain; /* RFC5322.From domain (A-labels) */
	/* The record found, and the name it was found at (the From domain or
	 * its Organizational Domain); NULL record = none was found. */
	const struct dmarc_record *record;
	const char *record_domain;
	bool record_temperror;  /* the DNS lookup for the record failed temporarily */
	const char *spf_domain; /* MAIL FROM domain (HELO when MAIL FROM was <>) */
	enum dmarc_auth spf;
	const struct dmarc_dkim_input *dkim;
	size_t n_dkim;
	unsigned sample; /* 0..99, drawn at random by the caller (6.6.4) */
};

enum dmarc_result {
	DMARC_RESULT_NONE = 0, /* no policy record: DMARC not applied */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR,
};

struct dmarc_verdict {
	enum dmarc_result result;
	bool spf_aligned;              /* SPF passed for an aligned domain */
	bool dkim_aligned;             /* a DKIM signature passed for an aligned d= */
	enum dmarc_policy policy;      /* the published policy that applies (p or sp) */
	enum dmarc_policy disposition; /* what to do: policy after pct sampling;
					* none unless the result is fail */
};

/* Evaluates DMARC (RFC 7489 6.6.2 steps 5-6, 6.6.4).  A temporary error in
 * the record lookup, or a non-pass with an SPF or DKIM temperror, is
 * temperror with disposition none: the policy cannot be applied. */
void dmarc_evaluate(const struct dmarc_input *in, struct dmarc_verdict *out);

/* "none", "pass", ... (RFC 8601 result names for method dmarc). */
const char *dmarc_result_name(enum dmarc_result r);
/* "none", "quarantine", "reject". */
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
