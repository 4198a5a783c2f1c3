/*
 * arc.c - ARC chain validation and sealing (RFC 8617).  See arc.h.
 *
 * Mail-auth layer, a pure library beside dkim.c: the AMS is a DKIM
 * signature by another name (dkim_sign_field, dkim_verify_field), the AS a
 * signature over a hash input built here from the ARC sets in instance
 * order (dkim_signer_sign, dkim_verify_data).  Fields are found with the
 * bounded header parser of the mail layer (header.h).
 */
#include "arc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "header.h"
#include "strutil.h"
#include "xalloc.h"

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

const char *arc_status_name(enum arc_status st)
{
	switch (st) {
	case ARC_PASS:
		return "pass";
	case ARC_FAIL:
		return "fail";
	case ARC_NONE:
		break;
	}
	return "none";
}

enum arc_kind { ARC_AAR, ARC_AMS, ARC_AS };
static const char *const kind_names[] = {"ARC-Authentication-Results", "ARC-Message-Signature",
					 "ARC-Seal"};

/* The instance of an AAR value: "i=" digits, then ';' (4.1.1, 4.2.1).
 * 0 if it is not there or not a number of at most 3 digits. */
static unsigned aar_instance(const char *v, size_t n)
{
	size_t i = 0;
	while (i < n && is_fws(v[i]))
		i++;
	if (i == n || v[i] != 'i')
		return 0;
	i++;
	while (i < n && is_fws(v[i]))
		i++;
	if (i == n || v[i] != '=')
		return 0;
	i++;
	while (i < n && is_fws(v[i]))
		i++;
	size_t ds = i;
	while (i < n && v[i] >= '0' && v[i] <= '9' && i - ds < 4)
		i++;
	uint64_t inst;
	if (i - ds == 0 || i - ds > 3 || strutil_parse_u64(v + ds, i - ds, 999, &inst) < 0)
		return 0;
	while (i < n && is_fws(v[i]))
		i++;
	return i < n && v[i] == ';' ? (unsigned)inst : 0;
}

/* The i= of an AMS or AS tag list, 0 if missing or not 1..999. */
static unsigned tag_instance(const struct dkim_taglist *tl)
{
	const struct dkim_tag *t = dkim_taglist_get(tl, "i");
	uint64_t inst;
	if (t == NULL || t->val_len > 3 || strutil_parse_u64(t->val, t->val_len, 999, &inst) < 0)
		return 0;
	return (unsigned)inst;
}

static bool val_is_ci(const struct dkim_tag *t, const char *s)
{
	return t != NULL && strutil_eq_ci(t->val, t->val_len, s);
}

/* Reads one ARC field into c; the first problem goes to err (*bad set). */
static void take_field(struct arc_chain *c, enum arc_kind kind, const struct header_field *f,
		       bool *bad, char *err, size_t errsz)
{
	unsigned inst = 0;
	enum arc_status cv = ARC_NONE;
	bool has_h = false;
	char e[DKIM_ERR_MAX];
	if (kind == ARC_AAR) {
		inst = aar_instance(f->value, f->value_len);
	} else {
		struct dkim_taglist tl;
		if (dkim_taglist_parse(f->value, f->value_len, &tl, e, sizeof e) < 0) {
			if (!*bad)
				strutil_errf(err, errsz, "%s: %.100s", kind_names[kind], e);
			*bad = true;
			return;
		}
		inst = tag_instance(&tl);
		const struct dkim_tag *t = dkim_taglist_get(&tl, "cv");
		if (kind == ARC_AS) {
			has_h = dkim_taglist_get(&tl, "h") != NULL;
			cv = val_is_ci(t, "pass")   ? ARC_PASS
			     : val_is_ci(t, "fail") ? ARC_FAIL
			     : val_is_ci(t, "none") ? ARC_NONE
						    : (enum arc_status) - 1;
		}
	}
	if (inst == 0) {
		if (!*bad)
			strutil_errf(err, errsz, "%s without a valid instance tag",
				     kind_names[kind]);
		*bad = true;
		return;
	}
	if (inst > ARC_SETS_MAX) {
		if (!*bad)
			strutil_errf(err, errsz, "%s i=%u: more than %d ARC sets", kind_names[kind],
				     inst, ARC_SETS_MAX);
		*bad = true;
		return;
	}
	if (inst > c->n)
		c->n = inst;
	struct arc_set *s = &c->set[inst];
	struct arc_field *slot = kind == ARC_AAR ? &s->aar : kind == ARC_AMS ? &s->ams : &s->as;
	if (slot->p != NULL) {
		if (!*bad)
			strutil_errf(err, errsz, "two %s fields with i=%u", kind_names[kind], inst);
		*bad = true;
		return;
	}
	slot->p = f->name;
	slot->len = (size_t)(f->value + f->value_len - f->name);
	if (kind != ARC_AS)
		return;
	if ((int)cv < 0) {
		if (!*bad)
			strutil_errf(err, errsz, "ARC-Seal i=%u: cv= is not none, pass or fail",
				     inst);
		*bad = true;
		cv = ARC_NONE; /* unreadable, not a cv=fail that ends the chain */
	}
	if (has_h) {
		if (!*bad)
			strutil_errf(err, errsz, "ARC-Seal i=%u has an h= tag", inst);
		*bad = true;
	}
	s->cv = cv;
}

/* Whether a line of the header section of msg starts with "ARC-" (for a
 * header the parser refused: is there a chain we cannot read?). */
static bool mentions_arc(const char *msg, size_t len)
{
	for (size_t i = 0; i < len;) {
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
			return false; /* the end of the header section */
		if (strutil_prefix_ci(msg + i, len - i, "ARC-"))
			return true;
		const char *nl = memchr(msg + i, '\n', len - i);
		if (nl == NULL)
			break;
		i = (size_t)(nl - msg) + 1;
	}
	return false;
}

int arc_chain_parse(const char *msg, size_t len, struct arc_chain *c, char *err, size_t errsz)
{
	memset(c, 0, sizeof *c);
	struct header h;
	if (header_parse(msg, len, &h) != HEADER_OK) {
		if (!mentions_arc(msg, len))
			return 0; /* not our business: no chain */
		strutil_errf(err, errsz, "the header section cannot be read");
		return -1;
	}
	bool bad = false;
	for (size_t i = 0; i < h.n_fields; i++) {
		const struct header_field *f = &h.fields[i];
		for (int k = ARC_AAR; k <= ARC_AS; k++)
			if (strutil_eq_ci(f->name, f->name_len, kind_names[k]))
				take_field(c, (enum arc_kind)k, f, &bad, err, errsz);
	}
	header_free(&h);
	/* 5.2 step 2 comes before the structure: a chain that said fail. */
	if (c->n > 0 && c->set[c->n].as.p != NULL && c->set[c->n].cv == ARC_FAIL) {
		strutil_errf(err, errsz, "the latest ARC-Seal (i=%u) says cv=fail", c->n);
		return -1;
	}
	if (bad)
		return -1;
	for (unsigned i = 1; i <= c->n; i++) {
		const struct arc_set *s = &c->set[i];
		if (s->aar.p == NULL || s->ams.p == NULL || s->as.p == NULL) {
			strutil_errf(err, errsz, "ARC set i=%u of %u is incomplete (no %s)", i,
				     c->n,
				     s->aar.p == NULL   ? kind_names[ARC_AAR]
				     : s->ams.p == NULL ? kind_names[ARC_AMS]
							: kind_names[ARC_AS]);
			return -1;
		}
		if (s->cv != (i == 1 ? ARC_NONE : ARC_PASS)) {
			strutil_errf(err, errsz, "ARC-Seal i=%u says cv=%s", i,
				     arc_status_name(s->cv));
			return -1;
		}
	}
	return (int)c->n;
}

/* ------------------------------------------------------------ keys */

/* d= and s= of field f (an AMS or AS), NUL-terminated; false if absent or
 * too long. */
static bool field_key(const struct arc_field *f, struct arc_key *k)
{
	const char *colon = memchr(f->p, ':', f->len);
	struct dkim_taglist tl;
	if (colon == NULL ||
	    dkim_taglist_parse(colon + 1, f->len - (size_t)(colon + 1 - f->p), &tl, NULL, 0) < 0)
		return false;
	const struct dkim_tag *d = dkim_taglist_get(&tl, "d"), *s = dkim_taglist_get(&tl, "s");
	if (d == NULL || s == NULL || d->val_len == 0 || s->val_len == 0 ||
	    d->val_len >= sizeof k->domain || s->val_len >= sizeof k->selector)
		return false;
	memcpy(k->domain, d->val, d->val_len);
	k->domain[d->val_len] = '\0';
	memcpy(k->selector, s->val, s->val_len);
	k->selector[s->val_len] = '\0';
	return true;
}

size_t arc_keys_needed(const char *msg, size_t len, struct arc_key *keys, size_t max)
{
	struct arc_chain *c = xmalloc(sizeof *c);
	size_t n = 0;
	if (arc_chain_parse(msg, len, c, NULL, 0) > 0) {
		for (unsigned i = c->n; i >= 1 && n < max; i--) {
			const struct arc_field *fs[2] = {&c->set[i].as, &c->set[i].ams};
			for (size_t k = 0; k < 2 && n < max; k++) {
				struct arc_key key;
				if (!field_key(fs[k], &key))
					continue;
				bool dup = false;
				for (size_t j = 0; j < n && !dup; j++)
					dup = strcasecmp(keys[j].domain, key.domain) == 0 &&
					      strcasecmp(keys[j].selector, key.selector) == 0;
				if (!dup)
					keys[n++] = key;
			}
		}
	}
	free(c);
	return n;
}

/* ------------------------------------------------------- the seal */

/* Appends the relaxed form of set s to in (5.1.1: AAR, AMS, AS), the AS
 * with its b= value removed when strip_as.  0 or -1. */
static int add_set(struct buf *in, const struct arc_set *s, bool strip_as)
{
	if (dkim_canon_header_relaxed(s->aar.p, s->aar.len, in) < 0 ||
	    dkim_canon_header_relaxed(s->ams.p, s->ams.len, in) < 0)
		return -1;
	if (!strip_as)
		return dkim_canon_header_relaxed(s->as.p, s->as.len, in);
	struct buf st = BUF_INIT;
	int rc = dkim_strip_b(s->as.p, s->as.len, &st) < 0 ||
			 dkim_canon_header_relaxed(st.data, st.len, in) < 0
		     ? -1
		     : 0;
	buf_free(&st);
	return rc;
}

/* The hash input of the AS of set `last`: sets first..last-1 of c as they
 * are, then `last` (which may be a set not in c) with b= removed, without
 * the final CRLF (RFC 6376 3.7). */
static int seal_input(const struct arc_chain *c, unsigned first, unsigned upto,
		      const struct arc_set *last, struct buf *in)
{
	for (unsigned i = first; i < upto; i++)
		if (add_set(in, &c->set[i], false) < 0)
			return -1;
	if (add_set(in, last, true) < 0)
		return -1;
	in->len -= 2;
	return 0;
}

/* The tag list of field f (an AS), parsed into tl.  0 or -1. */
static int field_tags(const struct arc_field *f, struct dkim_taglist *tl, char *e, size_t esz)
{
	const char *colon = memchr(f->p, ':', f->len);
	if (colon == NULL)
		return -1;
	return dkim_taglist_parse(colon + 1, f->len - (size_t)(colon + 1 - f->p), tl, e, esz);
}

/* Verifies the AS of instance i of c. */
static enum dkim_status check_seal(const struct arc_chain *c, unsigned i, dkim_lookup_fn lookup,
				   void *ctx, struct dkim_result *dr)
{
	memset(dr, 0, sizeof *dr);
	struct dkim_taglist tl;
	char e[DKIM_ERR_MAX];
	if (field_tags(&c->set[i].as, &tl, e, sizeof e) < 0) {
		snprintf(dr->reason, sizeof dr->reason, "%.150s", e);
		return DKIM_NEUTRAL;
	}
	const struct dkim_tag *ta = dkim_taglist_get(&tl, "a"), *tb = dkim_taglist_get(&tl, "b");
	struct arc_key key;
	if (ta == NULL || tb == NULL || !field_key(&c->set[i].as, &key)) {
		snprintf(dr->reason, sizeof dr->reason, "a required tag is missing");
		return DKIM_NEUTRAL;
	}
	struct buf in = BUF_INIT;
	enum dkim_status st = DKIM_NEUTRAL;
	if (seal_input(c, 1, i, &c->set[i], &in) < 0)
		snprintf(dr->reason, sizeof dr->reason, "ARC sets too large");
	else
		st = dkim_verify_data(ta->val, ta->val_len, key.selector, key.domain, tb->val,
				      tb->val_len, in.data, in.len, lookup, ctx, dr);
	buf_free(&in);
	return st;
}

/* Whether the AMS of set s lists ARC-Seal in h= (4.1.2 forbids it). */
static bool ams_signs_seal(const struct arc_set *s)
{
	struct dkim_taglist tl;
	if (field_tags(&s->ams, &tl, NULL, 0) < 0)
		return false; /* dkim_verify_field says why */
	const struct dkim_tag *h = dkim_taglist_get(&tl, "h");
	for (size_t i = 0; h != NULL && i < h->val_len;) {
		size_t e = i;
		while (e < h->val_len && h->val[e] != ':')
			e++;
		size_t a = i, b = e;
		while (a < b && is_fws(h->val[a]))
			a++;
		while (b > a && is_fws(h->val[b - 1]))
			b--;
		if (strutil_eq_ci(h->val + a, b - a, "ARC-Seal"))
			return true;
		i = e + 1;
	}
	return false;
}

void arc_validate(const char *msg, size_t len, time_t now, dkim_lookup_fn lookup, void *ctx,
		  struct arc_result *r)
{
	memset(r, 0, sizeof *r);
	struct arc_chain *c = xmalloc(sizeof *c);
	int n = arc_chain_parse(msg, len, c, r->reason, sizeof r->reason);
	r->n = c->n;
	struct arc_key key;
	if (c->n > 0 && c->set[c->n].as.p != NULL && field_key(&c->set[c->n].as, &key))
		snprintf(r->domain, sizeof r->domain, "%s", key.domain);
	if (n <= 0) {
		r->status = n == 0 ? ARC_NONE : ARC_FAIL;
		free(c);
		return;
	}
	unsigned N = (unsigned)n;
	struct dkim_result dr;
	r->status = ARC_FAIL;
	/* step 4: the latest AMS */
	if (ams_signs_seal(&c->set[N])) {
		snprintf(r->reason, sizeof r->reason, "ARC-Message-Signature i=%u signs ARC-Seal",
			 N);
		goto done;
	}
	if (dkim_verify_field(msg, len, c->set[N].ams.p, c->set[N].ams.len, DKIM_VERIFY_AMS, now,
			      lookup, ctx, &dr) != DKIM_PASS) {
		snprintf(r->reason, sizeof r->reason, "ARC-Message-Signature i=%u: %.120s", N,
			 dr.reason);
		goto done;
	}
	/* step 5: oldest-pass */
	r->oldest_pass = 0;
	for (unsigned i = N - 1; i >= 1; i--) {
		if (ams_signs_seal(&c->set[i]) ||
		    dkim_verify_field(msg, len, c->set[i].ams.p, c->set[i].ams.len, DKIM_VERIFY_AMS,
				      now, lookup, ctx, &dr) != DKIM_PASS) {
			r->oldest_pass = i + 1;
			break;
		}
	}
	/* step 6: every seal, latest first */
	for (unsigned i = N; i >= 1; i--) {
		if (check_seal(c, i, lookup, ctx, &dr) != DKIM_PASS) {
			snprintf(r->reason, sizeof r->reason, "ARC-Seal i=%u: %.130s", i,
				 dr.reason);
			r->oldest_pass = 0;
			goto done;
		}
	}
	r->status = ARC_PASS;
done:
	free(c);
}

/* True if s is fit for the AAR after "authserv-id;": printable ASCII or
 * UTF-8, blanks, and line ends only as CRLF followed by a blank. */
static bool results_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\r') {
			if (i + 2 >= n || s[i + 1] != '\n' || (s[i + 2] != ' ' && s[i + 2] != '\t'))
				return false;
			i++;
		} else if (ch == '\n' || ch == 0x7f || (ch < 0x20 && ch != '\t')) {
			return false;
		}
	}
	return true;
}

static bool authserv_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f || ch == ';' || ch == '(' || ch == ')' || ch == '"')
			return false;
	}
	return true;
}

int arc_seal(const struct dkim_signer *s, const char *msg, size_t len, const char *authserv_id,
	     const char *results, enum arc_status cv, time_t now, struct buf *out, char *err,
	     size_t errsz)
{
	struct arc_chain *c = xmalloc(sizeof *c);
	struct buf aar = BUF_INIT, ams = BUF_INIT, as = BUF_INIT, in = BUF_INIT;
	char e[DKIM_ERR_MAX];
	int rc = -1;
	int pr = arc_chain_parse(msg, len, c, e, sizeof e);
	if (pr < 0 && c->n > 0 && c->set[c->n].as.p != NULL && c->set[c->n].cv == ARC_FAIL) {
		rc = 1; /* 5.1 step 2: the chain has ended */
		goto done;
	}
	if (pr < 0 && c->n == 0) {
		strutil_errf(err, errsz, "%s", e);
		goto done;
	}
	if (c->n == 0 && cv != ARC_NONE) {
		strutil_errf(err, errsz, "the message has no ARC chain, so cv is none");
		goto done;
	}
	if (c->n > 0 && cv == ARC_NONE) {
		strutil_errf(err, errsz, "the message has an ARC chain, so cv is pass or fail");
		goto done;
	}
	if (pr < 0 && cv == ARC_PASS) {
		strutil_errf(err, errsz, "cv=pass for a broken chain (%.100s)", e);
		goto done;
	}
	if (c->n >= ARC_SETS_MAX) {
		strutil_errf(err, errsz, "the message has %d ARC sets already", ARC_SETS_MAX);
		goto done;
	}
	size_t rl = strlen(results);
	if (!authserv_ok(authserv_id) || rl > DKIM_TAGLIST_MAX || !results_ok(results, rl)) {
		strutil_errf(err, errsz,
			     "the authserv-id or the results are not fit for a header field");
		goto done;
	}
	unsigned inst = c->n + 1;
	buf_printf(&aar, "ARC-Authentication-Results: i=%u; %s;", inst, authserv_id);
	if (rl == 0)
		buf_puts(&aar, " none");
	else if (!is_fws(results[0]))
		buf_putc(&aar, ' ');
	buf_puts(&aar, results);
	buf_puts(&aar, "\r\n");
	char head[64];
	snprintf(head, sizeof head, "ARC-Message-Signature: i=%u", inst);
	if (dkim_sign_field(s, head, DKIM_SIGN_DKIM_SIGS, msg, len, now, &ams, err, errsz) < 0)
		goto done;
	buf_printf(&as, "ARC-Seal: i=%u; a=%s; cv=%s;\r\n\t d=%s; s=%s; t=%lld;\r\n\t b=", inst,
		   s->type == DKIM_KEY_RSA ? "rsa-sha256" : "ed25519-sha256", arc_status_name(cv),
		   s->domain, s->selector, (long long)now);
	struct arc_set mine = {
	    .aar = {aar.data, aar.len - 2},
	    .ams = {ams.data, ams.len - 2},
	    .as = {as.data, as.len},
	};
	/* 5.1.2: after a failed chain the seal covers the new set alone. */
	if (seal_input(c, 1, cv == ARC_FAIL ? 1 : inst, &mine, &in) < 0 ||
	    dkim_signer_sign(s, in.data, in.len, &as) < 0 || buf_puts(&as, "\r\n") < 0) {
		strutil_errf(err, errsz, "sealing failed");
		goto done;
	}
	if (buf_append(out, as.data, as.len) < 0 || buf_append(out, ams.data, ams.len) < 0 ||
	    buf_append(out, aar.data, aar.len) < 0) {
		strutil_errf(err, errsz, "the ARC set does not fit");
		goto done;
	}
	rc = 0;
done:
	free(c);
	buf_free(&aar);
	buf_free(&ams);
	buf_free(&as);
	buf_free(&in);
	return rc;
}
