/*
 * dkim.h - DKIM signatures (RFC 6376) with rsa-sha256 and ed25519-sha256
 * (RFC 8463), on OpenSSL 3 EVP.  A pure library: no DNS, no files other
 * than what the caller names.  Verification asks the caller for the key
 * record through a callback, so the DNS TXT lookup lives elsewhere.
 *
 * Messages are raw bytes: a header section, an empty line, a body.  Lines
 * may end in CRLF or a bare LF; both are treated as CRLF, so the hashes
 * are those of the message as it goes on the wire.
 *
 * Everything read from outside (tag lists, key records, header fields) is
 * bounded by the limits below; a violation is an error with a reason,
 * never a crash or a silent pass.  RFC 8301: rsa-sha1 and RSA keys under
 * 1024 bits never pass.
 */
#ifndef TERN_DKIM_H
#define TERN_DKIM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

#define DKIM_TAGS_MAX 32       /* tags in one tag list */
#define DKIM_TAGLIST_MAX 16384 /* bytes of one tag list */
#define DKIM_FIELDS_MAX 1000   /* header fields a message may have */
#define DKIM_SIGS_MAX 8        /* DKIM-Signature fields verified */
#define DKIM_HNAMES_MAX 64     /* names in h= */
#define DKIM_ERR_MAX 160       /* size of every reason buffer */

/* One tag=value pair; both point into the parsed text.  The value has no
 * leading or trailing blanks but may hold folding white space inside. */
struct dkim_tag {
	const char *name, *val;
	size_t name_len, val_len;
};

struct dkim_taglist {
	struct dkim_tag tags[DKIM_TAGS_MAX];
	size_t n;
};

/* Parses an RFC 6376 3.2 tag list.  Returns 0, or -1 with a reason in err
 * (bad syntax, duplicate tag, too many tags, too long). */
int dkim_taglist_parse(const char *s, size_t n, struct dkim_taglist *out, char *err, size_t errsz);
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_taglist_get(const struct dkim_taglist *tl, const char *name);

enum dkim_keytype { DKIM_KEY_RSA, DKIM_KEY_ED25519 };

/* A parsed key record (RFC 6376 3.6.1). */
struct dkim_keyrec {
	enum dkim_keytype type;
	bool revoked;       /* p= empty */
	bool testing;       /* t=y */
	bool strict;        /* t=s: i= domain must equal d= */
	bool sha256_ok;     /* h= absent or lists sha256 */
	unsigned char *pub; /* decoded p= (xmalloc'd), NULL if revoked */
	size_t pub_len;
};

/* Parses a key record.  Returns 0, or -1 with a reason (v= not DKIM1,
 * unknown k=, bad base64, not for email, ...). */
int dkim_keyrec_parse(const char *s, size_t n, struct dkim_keyrec *out, char *err, size_t errsz);
void dkim_keyrec_clear(struct dkim_keyrec *k);

/* Canonicalization (RFC 6376 3.4).  Append to out; return 0 or -1 when out
 * is full. */
int dkim_canon_header_relaxed(const char *field, size_t n, struct buf *out);
/* Body of a message (the bytes after the empty line), relaxed or simple. */
int dkim_canon_body(const char *body, size_t n, bool relaxed, struct buf *out);

/* A signing key, loaded from a PEM private key file. */
struct dkim_signer {
	char *domain, *selector;
	enum dkim_keytype type;
	void *pkey; /* EVP_PKEY */
};

/* Loads a PEM private key (RSA >= 1024 bits, or Ed25519).  Returns NULL
 * with a reason. */
struct dkim_signer *dkim_signer_load(const char *domain, const char *selector, const char *pem_path,
				     char *err, size_t errsz);
void dkim_signer_free(struct dkim_signer **sp);

/* Signs msg with relaxed/relaxed, no l=, and the recommended header set,
 * over-signed (each name present is signed once more than it appears, so
 * no instance can be added).  Appends one complete "DKIM-Signature: ..."
 * field ending in CRLF to out, to be put at the top of the message.
 * Returns 0, or -1 with a reason. */
int dkim_sign(const struct dkim_signer *s, const char *msg, size_t len, time_t now, struct buf *out,
	      char *err, size_t errsz);

/* The same with the field starting with head (name, colon and first tags:
 * "DKIM-Signature: v=1", "ARC-Message-Signature: i=2") instead of
 * "DKIM-Signature: v=1".  flags: DKIM_SIGN_DKIM_SIGS also signs every
 * DKIM-Signature field present, once each (RFC 8617 4.1.2 for the AMS). */
#define DKIM_SIGN_DKIM_SIGS 1u
int dkim_sign_field(const struct dkim_signer *s, const char *head, unsigned flags, const char *msg,
		    size_t len, time_t now, struct buf *out, char *err, size_t errsz);

/* Signs data (a prepared header hash input) with s's key (sha256; for
 * Ed25519 the sha256 of data, RFC 8463) and appends the signature in
 * base64, folded for a header field, to out.  0 or -1. */
int dkim_signer_sign(const struct dkim_signer *s, const void *data, size_t n, struct buf *out);

/* Appends header field f[0..n) with the value of its b= tag removed
 * (RFC 6376 3.7: "b=" stays, its value goes).  0, or -1 (no colon, out
 * full). */
int dkim_strip_b(const char *f, size_t n, struct buf *out);

/* Makes a new key: type RSA (2048 bits) or Ed25519.  Writes the private key
 * as PEM to pem (mode 0600 by the caller) and the DNS TXT record text
 * ("v=DKIM1; k=...; p=...") to record.  Returns 0 or -1. */
int dkim_keygen(enum dkim_keytype type, struct buf *pem, struct buf *record, char *err,
		size_t errsz);

/* The key record of selector._domainkey.domain.  Returns 0 with the TXT
 * strings concatenated in rec, 1 when there is none (NXDOMAIN or no TXT),
 * -1 on a temporary failure; err says why for 1 and -1. */
typedef int (*dkim_lookup_fn)(void *ctx, const char *selector, const char *domain, struct buf *rec,
			      char *err, size_t errsz);

enum dkim_status {
	DKIM_PASS,
	DKIM_FAIL,      /* signature or body hash does not match */
	DKIM_NEUTRAL,   /* the signature could not be checked (syntax, policy) */
	DKIM_PERMERROR, /* key record missing or unusable */
	DKIM_TEMPERROR, /* key lookup failed for now */
};

struct dkim_result {
	enum dkim_status status;
	bool testing;
	char domain[256];
	char selector[64];
	char algo[24];
	char identity[320]; /* i= as given (may hold any bytes: check before
			     * printing), "" when absent */
	char reason[DKIM_ERR_MAX];
};

/* RFC 8601 result word for a status ("pass", "fail", "neutral",
 * "permerror", "temperror"). */
const char *dkim_status_name(enum dkim_status st);

/* Verifies every DKIM-Signature field (at most max, up to DKIM_SIGS_MAX)
 * of msg, top down.  Returns the number of results written (0: the message
 * is not signed), or -1 with a reason when the message itself cannot be
 * read (too many fields, no header section). */
int dkim_verify(const char *msg, size_t len, time_t now, dkim_lookup_fn lookup, void *ctx,
		struct dkim_result *res, size_t max, char *err, size_t errsz);

/* Verifies one signature field, field[0..flen) (pointing into msg or not:
 * its bytes are what is checked), over msg.  flags: DKIM_VERIFY_AMS for an
 * ARC-Message-Signature (RFC 8617 4.1.2: no v=, i= is the instance).
 * Fills r (reason set unless pass) and returns r->status. */
#define DKIM_VERIFY_AMS 1u
enum dkim_status dkim_verify_field(const char *msg, size_t len, const char *field, size_t flen,
				   unsigned flags, time_t now, dkim_lookup_fn lookup, void *ctx,
				   struct dkim_result *r);

/* Verifies the base64 signature b64 (a b= value) of data, a prepared hash
 * input, with algorithm algo (an a= value) and the key of selector,
 * domain asked from lookup; the same key rules as dkim_verify.  Fills r
 * (selector, domain, algo, reason) and returns the status (r->status is
 * left to the caller). */
enum dkim_status dkim_verify_data(const char *algo, size_t algo_len, const char *selector,
				  const char *domain, const char *b64, size_t b64_len,
				  const void *data, size_t n, dkim_lookup_fn lookup, void *ctx,
				  struct dkim_result *r);

#endif
