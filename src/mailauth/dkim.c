/*
 * dkim.c - DKIM signing and verification (RFC 6376, RFC 8463, RFC 8301).
 * See dkim.h.
 */
#include "dkim.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "dkim-keycache.h"
#include "strutil.h"
#include "xalloc.h"

#define DKIM_MSG_MAX ((size_t)1 << 30)

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- tag lists (RFC 6376 3.2) ---- */

int dkim_taglist_parse(const char *s, size_t n, struct dkim_taglist *out, char *err, size_t errsz)
{
	out->n = 0;
	if (n > DKIM_TAGLIST_MAX) {
		strutil_errf(err, errsz, "tag list longer than %d bytes", DKIM_TAGLIST_MAX);
		return -1;
	}
	size_t i = 0;
	for (;;) {
		while (i < n && is_fws(s[i]))
			i++;
		if (i == n) {
			/* empty list, or a trailing ';' */
			return 0;
		}
		size_t ns = i;
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'))) {
			strutil_errf(err, errsz, "tag name must start with a letter at byte %zu",
				     i);
			return -1;
		}
		while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
				 (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			i++;
		size_t nl = i - ns;
		while (i < n && is_fws(s[i]))
			i++;
		if (i == n || s[i] != '=') {
			strutil_errf(err, errsz, "tag '%.*s' has no '='", (int)(nl > 32 ? 32 : nl),
				     s + ns);
			return -1;
		}
		i++;
		while (i < n && is_fws(s[i]))
			i++;
		size_t vs = i, ve = i;
		while (i < n && s[i] != ';') {
			unsigned char c = (unsigned char)s[i];
			if (!is_fws(s[i]) && (c < 0x21 || c > 0x7e)) {
				strutil_errf(err, errsz,
					     "byte 0x%02x not allowed in the value of '%.*s'", c,
					     (int)(nl > 32 ? 32 : nl), s + ns);
				return -1;
			}
			i++;
			if (!is_fws(s[i - 1]))
				ve = i;
		}
		for (size_t k = 0; k < out->n; k++) {
			if (out->tags[k].name_len == nl &&
			    memcmp(out->tags[k].name, s + ns, nl) == 0) {
				strutil_errf(err, errsz, "tag '%.*s' appears twice",
					     (int)(nl > 32 ? 32 : nl), s + ns);
				return -1;
			}
		}
		if (out->n == DKIM_TAGS_MAX) {
			strutil_errf(err, errsz, "more than %d tags", DKIM_TAGS_MAX);
			return -1;
		}
		struct dkim_tag *t = &out->tags[out->n++];
		t->name = s + ns;
		t->name_len = nl;
		t->val = s + vs;
		t->val_len = ve - vs;
		if (i == n)
			return 0;
		i++; /* ';' */
	}
}

const struct dkim_tag *dkim_taglist_get(const struct dkim_taglist *tl, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < tl->n; i++)
		if (tl->tags[i].name_len == nl && memcmp(tl->tags[i].name, name, nl) == 0)
			return &tl->tags[i];
	return NULL;
}

static bool tag_is(const struct dkim_tag *t, const char *s)
{
	return t != NULL && t->val_len == strlen(s) && memcmp(t->val, s, t->val_len) == 0;
}

/* Whether the colon-separated list v[0..n) holds word (case-insensitive),
 * blanks around items ignored. */
/* The next item of the colon-separated list v[0..n) from *pos, blanks
 * around it removed, in v[*s..*e).  Returns false after the last one. */
static bool list_next(const char *v, size_t n, size_t *pos, size_t *s, size_t *e)
{
	size_t i = *pos;
	if (i > n)
		return false;
	*s = i;
	while (i < n && v[i] != ':')
		i++;
	*e = i;
	while (*s < *e && is_fws(v[*s]))
		(*s)++;
	while (*e > *s && is_fws(v[*e - 1]))
		(*e)--;
	*pos = i + 1;
	return true;
}

static bool list_has(const char *v, size_t n, const char *word)
{
	size_t pos = 0, s, e;
	while (list_next(v, n, &pos, &s, &e))
		if (strutil_eq_ci(v + s, e - s, word))
			return true;
	return false;
}

/* Decodes base64 with folding white space removed.  Returns an xmalloc'd
 * buffer (length in *len) or NULL. */
static unsigned char *b64_decode_fws(const char *v, size_t n, size_t *len)
{
	char *clean = xmalloc(n + 1);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!is_fws(v[i]))
			clean[m++] = v[i];
	unsigned char *out = xmalloc(base64_decoded_max(m) + 1);
	long d = base64_decode(clean, m, out, base64_decoded_max(m) + 1);
	free(clean);
	if (d < 0) {
		free(out);
		return NULL;
	}
	*len = (size_t)d;
	return out;
}

/* ---- key records (RFC 6376 3.6.1) ---- */

int dkim_keyrec_parse(const char *s, size_t n, struct dkim_keyrec *out, char *err, size_t errsz)
{
	memset(out, 0, sizeof *out);
	struct dkim_taglist tl;
	if (dkim_taglist_parse(s, n, &tl, err, errsz) < 0)
		return -1;
	const struct dkim_tag *t = dkim_taglist_get(&tl, "v");
	if (t != NULL && (&tl.tags[0] != t || !tag_is(t, "DKIM1"))) {
		strutil_errf(err, errsz, "key record: v= must come first and be DKIM1");
		return -1;
	}
	t = dkim_taglist_get(&tl, "k");
	if (t == NULL || tag_is(t, "rsa")) {
		out->type = DKIM_KEY_RSA;
	} else if (tag_is(t, "ed25519")) {
		out->type = DKIM_KEY_ED25519;
	} else {
		strutil_errf(err, errsz, "key record: unknown key type k=%.*s",
			     (int)(t->val_len > 32 ? 32 : t->val_len), t->val);
		return -1;
	}
	t = dkim_taglist_get(&tl, "h");
	out->sha256_ok = t == NULL || list_has(t->val, t->val_len, "sha256");
	t = dkim_taglist_get(&tl, "s");
	if (t != NULL && !list_has(t->val, t->val_len, "*") &&
	    !list_has(t->val, t->val_len, "email")) {
		strutil_errf(err, errsz, "key record: not for email (s=)");
		return -1;
	}
	t = dkim_taglist_get(&tl, "t");
	if (t != NULL) {
		out->testing = list_has(t->val, t->val_len, "y");
		out->strict = list_has(t->val, t->val_len, "s");
	}
	t = dkim_taglist_get(&tl, "p");
	if (t == NULL) {
		strutil_errf(err, errsz, "key record: no p= tag");
		return -1;
	}
	if (t->val_len == 0) {
		out->revoked = true;
		return 0;
	}
	out->pub = b64_decode_fws(t->val, t->val_len, &out->pub_len);
	if (out->pub == NULL) {
		strutil_errf(err, errsz, "key record: p= is not valid base64");
		return -1;
	}
	if (out->type == DKIM_KEY_ED25519 && out->pub_len != 32) {
		strutil_errf(err, errsz, "key record: an Ed25519 key is 32 bytes, p= has %zu",
			     out->pub_len);
		dkim_keyrec_clear(out);
		return -1;
	}
	return 0;
}

void dkim_keyrec_clear(struct dkim_keyrec *k)
{
	free(k->pub);
	k->pub = NULL;
	k->pub_len = 0;
}

/* ---- canonicalization (RFC 6376 3.4) ---- */

int dkim_canon_header_relaxed(const char *f, size_t n, struct buf *out)
{
	const char *colon = memchr(f, ':', n);
	if (colon == NULL)
		return -1;
	size_t nl = (size_t)(colon - f);
	while (nl > 0 && is_wsp(f[nl - 1]))
		nl--;
	for (size_t i = 0; i < nl; i++) {
		char c = f[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (buf_putc(out, c) < 0)
			return -1;
	}
	if (buf_putc(out, ':') < 0)
		return -1;
	size_t i = (size_t)(colon - f) + 1;
	bool pending_sp = false, started = false;
	for (; i < n; i++) {
		char c = f[i];
		if (c == '\r' || c == '\n')
			continue;
		if (is_wsp(c)) {
			pending_sp = started;
			continue;
		}
		if (pending_sp && buf_putc(out, ' ') < 0)
			return -1;
		pending_sp = false;
		started = true;
		if (buf_putc(out, c) < 0)
			return -1;
	}
	return buf_append(out, "\r\n", 2);
}

/* Appends field f[0..n) with every line end as CRLF (simple header). */
static int canon_header_simple(const char *f, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i] == '\r' && i + 1 < n && f[i + 1] == '\n')
			continue;
		if (f[i] == '\n') {
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
		} else if (buf_putc(out, f[i]) < 0) {
			return -1;
		}
	}
	if (n < 1 || f[n - 1] != '\n')
		return buf_append(out, "\r\n", 2);
	return 0;
}

int dkim_canon_body(const char *b, size_t n, bool relaxed, struct buf *out)
{
	size_t empties = 0; /* empty lines held back: dropped if at the end */
	size_t i = 0;
	bool any = false;
	while (i < n) {
		const char *nlp = memchr(b + i, '\n', n - i);
		size_t e = nlp != NULL ? (size_t)(nlp - b) : n;
		size_t next = nlp != NULL ? e + 1 : n;
		if (e > i && b[e - 1] == '\r')
			e--;
		size_t s = i;
		if (relaxed)
			while (e > s && is_wsp(b[e - 1]))
				e--;
		if (e == s) {
			empties++;
			i = next;
			continue;
		}
		for (; empties > 0; empties--)
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
		if (relaxed) {
			bool sp = false;
			for (size_t k = s; k < e; k++) {
				if (is_wsp(b[k])) {
					sp = true;
					continue;
				}
				if (sp && buf_putc(out, ' ') < 0)
					return -1;
				sp = false;
				if (buf_putc(out, b[k]) < 0)
					return -1;
			}
		} else if (buf_append(out, b + s, e - s) < 0) {
			return -1;
		}
		if (buf_append(out, "\r\n", 2) < 0)
			return -1;
		any = true;
		i = next;
	}
	if (!any && !relaxed)
		return buf_append(out, "\r\n", 2);
	return 0;
}

/* ---- the header section ---- */

struct field {
	const char *p;
	size_t len; /* with its line end */
	size_t name_len;
	bool used;
};

struct msgview {
	struct field f[DKIM_FIELDS_MAX];
	size_t n;
	const char *body;
	size_t body_len;
};

/* Splits msg into fields and body.  Returns 0, or -1 with a reason. */
static int split_message(const char *m, size_t len, struct msgview *v, char *err, size_t errsz)
{
	v->n = 0;
	size_t i = 0;
	while (i < len) {
		if (m[i] == '\n' || (m[i] == '\r' && i + 1 < len && m[i + 1] == '\n')) {
			i += m[i] == '\r' ? 2 : 1;
			v->body = m + i;
			v->body_len = len - i;
			return 0;
		}
		if (is_wsp(m[i])) {
			if (v->n == 0) {
				strutil_errf(err, errsz, "message starts with a continuation line");
				return -1;
			}
		} else {
			if (v->n == DKIM_FIELDS_MAX) {
				strutil_errf(err, errsz, "more than %d header fields",
					     DKIM_FIELDS_MAX);
				return -1;
			}
			v->f[v->n].p = m + i;
			v->f[v->n].len = 0;
			v->f[v->n].used = false;
			v->n++;
		}
		const char *nlp = memchr(m + i, '\n', len - i);
		size_t next = nlp != NULL ? (size_t)(nlp - m) + 1 : len;
		struct field *f = &v->f[v->n - 1];
		f->len = (size_t)(m + next - f->p);
		i = next;
	}
	v->body = m + len;
	v->body_len = 0;
	return 0;
}

/* Fills name_len for every field; a field without ':' gets 0. */
static void name_fields(struct msgview *v)
{
	for (size_t i = 0; i < v->n; i++) {
		const char *c = memchr(v->f[i].p, ':', v->f[i].len);
		size_t nl = c != NULL ? (size_t)(c - v->f[i].p) : 0;
		while (nl > 0 && is_wsp(v->f[i].p[nl - 1]))
			nl--;
		v->f[i].name_len = nl;
	}
}

static bool field_is(const struct field *f, const char *name, size_t n)
{
	return n > 0 && f->name_len == n && strncasecmp(f->p, name, n) == 0;
}

static int canon_field(const char *f, size_t n, bool relaxed, struct buf *out)
{
	return relaxed ? dkim_canon_header_relaxed(f, n, out) : canon_header_simple(f, n, out);
}

/* Appends the fields named in h[0..hn) (colon list), each taking the last
 * unused instance of its name (RFC 6376 5.4.2). */
static int add_signed_headers(struct msgview *v, const char *h, size_t hn, bool relaxed,
			      struct buf *out)
{
	for (size_t i = 0; i < v->n; i++)
		v->f[i].used = false;
	size_t pos = 0, s, e;
	while (list_next(h, hn, &pos, &s, &e)) {
		for (size_t k = v->n; k > 0 && e > s; k--) {
			struct field *f = &v->f[k - 1];
			if (!f->used && field_is(f, h + s, e - s)) {
				f->used = true;
				if (canon_field(f->p, f->len, relaxed, out) < 0)
					return -1;
				break;
			}
		}
	}
	return 0;
}

static int digest(const EVP_MD *md, const void *p, size_t n, unsigned char *out, unsigned *outlen)
{
	return EVP_Digest(p, n, out, outlen, md, NULL) == 1 ? 0 : -1;
}

/* ---- signing ---- */

struct dkim_signer *dkim_signer_load(const char *domain, const char *selector, const char *pem_path,
				     char *err, size_t errsz)
{
	FILE *fp = fopen(pem_path, "r");
	if (fp == NULL) {
		strutil_errf(err, errsz, "cannot open DKIM key %s: %s", pem_path, strerror(errno));
		return NULL;
	}
	EVP_PKEY *pk = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (pk == NULL) {
		strutil_errf(err, errsz, "%s is not a PEM private key", pem_path);
		return NULL;
	}
	enum dkim_keytype type;
	if (EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) >= 1024) {
		type = DKIM_KEY_RSA;
	} else if (EVP_PKEY_is_a(pk, "ED25519")) {
		type = DKIM_KEY_ED25519;
	} else {
		strutil_errf(err, errsz, "%s: a DKIM key is RSA of 1024 bits or more, or Ed25519",
			     pem_path);
		EVP_PKEY_free(pk);
		return NULL;
	}
	struct dkim_signer *s = xcalloc(1, sizeof *s);
	s->domain = xstrdup(domain);
	s->selector = xstrdup(selector);
	s->type = type;
	s->pkey = pk;
	return s;
}

void dkim_signer_free(struct dkim_signer **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	struct dkim_signer *s = *sp;
	EVP_PKEY_free(s->pkey);
	free(s->domain);
	free(s->selector);
	free(s);
	*sp = NULL;
}

/* RFC 6376 5.4.1 recommended set; each is signed once more than present. */
static const char *const sign_names[] = {
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Resent-Date",
    "Resent-From",
    "Resent-To",
    "Resent-Cc",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
    "Sender",
    "Resent-Sender",
    "Resent-Message-ID",
};

int dkim_signer_sign(const struct dkim_signer *s, const void *data, size_t n, struct buf *out)
{
	unsigned char sig[1024];
	size_t siglen = sizeof sig;
	int ok = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return -1;
	if (s->type == DKIM_KEY_RSA) {
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, s->pkey) == 1 &&
		     EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)data, n) == 1;
	} else {
		unsigned char h[EVP_MAX_MD_SIZE];
		unsigned hl = 0;
		ok = digest(EVP_sha256(), data, n, h, &hl) == 0 &&
		     EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pkey) == 1 &&
		     EVP_DigestSign(ctx, sig, &siglen, h, hl) == 1;
	}
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	char b64[1500];
	long el = base64_encode(sig, siglen, b64, sizeof b64);
	if (el < 0)
		return -1;
	/* folded so no line passes 78 characters */
	for (long i = 0; i < el; i += 72) {
		long k = el - i < 72 ? el - i : 72;
		if ((i > 0 && buf_append(out, "\r\n\t ", 4) < 0) ||
		    buf_append(out, b64 + i, (size_t)k) < 0)
			return -1;
	}
	return 0;
}

int dkim_sign(const struct dkim_signer *s, const char *msg, size_t len, time_t now, struct buf *out,
	      char *err, size_t errsz)
{
	return dkim_sign_field(s, "DKIM-Signature: v=1", 0, msg, len, now, out, err, errsz);
}

/* Appends name to the h= list being built, folding before 72 columns. */
static void h_add(struct buf *h, size_t *linelen, const char *name)
{
	size_t nl = strlen(name);
	if (h->len > 0 && *linelen + nl > 72) {
		buf_append(h, ":\r\n\t ", 5);
		*linelen = 2;
	} else if (h->len > 0) {
		buf_putc(h, ':');
		(*linelen)++;
	}
	buf_puts(h, name);
	*linelen += nl;
}

int dkim_sign_field(const struct dkim_signer *s, const char *head, unsigned flags, const char *msg,
		    size_t len, time_t now, struct buf *out, char *err, size_t errsz)
{
	struct msgview *v = xmalloc(sizeof *v);
	struct buf body = BUF_INIT, hdr = BUF_INIT, hin = BUF_INIT;
	buf_init(&body, DKIM_MSG_MAX);
	int rc = -1;
	if (split_message(msg, len, v, err, errsz) < 0)
		goto done;
	name_fields(v);
	if (dkim_canon_body(v->body, v->body_len, true, &body) < 0) {
		strutil_errf(err, errsz, "message too large to sign");
		goto done;
	}
	unsigned char bh[EVP_MAX_MD_SIZE];
	unsigned bhl = 0;
	char bh64[100];
	if (digest(EVP_sha256(), body.data != NULL ? body.data : "", body.len, bh, &bhl) < 0 ||
	    base64_encode(bh, bhl, bh64, sizeof bh64) < 0) {
		strutil_errf(err, errsz, "sha256 failed");
		goto done;
	}
	/* h=: every recommended name present, once more than its count */
	struct buf h = BUF_INIT;
	size_t linelen = 4;
	for (size_t i = 0; i < sizeof sign_names / sizeof sign_names[0]; i++) {
		size_t nl = strlen(sign_names[i]), count = 0;
		for (size_t k = 0; k < v->n; k++)
			if (field_is(&v->f[k], sign_names[i], nl))
				count++;
		bool always = i < 5 || strcmp(sign_names[i], "Message-ID") == 0;
		if (count == 0 && !always)
			continue;
		for (size_t c = 0; c <= count; c++)
			h_add(&h, &linelen, sign_names[i]);
	}
	/* Signatures already there: each once, not over-signed, so a later
	 * signer may still add its own (RFC 8617 4.1.2). */
	for (size_t k = 0; (flags & DKIM_SIGN_DKIM_SIGS) && k < v->n; k++)
		if (field_is(&v->f[k], "DKIM-Signature", 14))
			h_add(&h, &linelen, "DKIM-Signature");
	buf_printf(&hdr,
		   "%s; a=%s; c=relaxed/relaxed;\r\n\t d=%s; s=%s; t=%lld;\r\n\t"
		   " h=%s;\r\n\t bh=%s;\r\n\t b=",
		   head, s->type == DKIM_KEY_RSA ? "rsa-sha256" : "ed25519-sha256", s->domain,
		   s->selector, (long long)now, buf_cstr(&h), bh64);
	buf_free(&h);
	/* the signed fields, by the h= list just written */
	{
		const char *hv = strstr(buf_cstr(&hdr), " h=") + 3;
		const char *he = strchr(hv, ';');
		if (add_signed_headers(v, hv, (size_t)(he - hv), true, &hin) < 0 ||
		    dkim_canon_header_relaxed(hdr.data, hdr.len, &hin) < 0) {
			strutil_errf(err, errsz, "header too large to sign");
			goto done;
		}
		hin.len -= 2; /* the signature field goes in without its CRLF */
	}
	if (dkim_signer_sign(s, hin.data, hin.len, &hdr) < 0 || buf_append(&hdr, "\r\n", 2) < 0) {
		strutil_errf(err, errsz, "signing with %s failed",
			     s->type == DKIM_KEY_RSA ? "RSA" : "Ed25519");
		goto done;
	}
	if (buf_append(out, hdr.data, hdr.len) < 0) {
		strutil_errf(err, errsz, "signature does not fit");
		goto done;
	}
	rc = 0;
done:
	free(v);
	buf_free(&body);
	buf_free(&hdr);
	buf_free(&hin);
	return rc;
}

int dkim_keygen(enum dkim_keytype type, struct buf *pem, struct buf *record, char *err,
		size_t errsz)
{
	EVP_PKEY *pk = type == DKIM_KEY_RSA ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
					    : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pk == NULL) {
		strutil_errf(err, errsz, "key generation failed");
		return -1;
	}
	int rc = -1;
	unsigned char *der = NULL;
	unsigned char raw[32];
	const unsigned char *pub;
	size_t publen;
	if (type == DKIM_KEY_RSA) {
		int dl = i2d_PUBKEY(pk, &der);
		if (dl <= 0)
			goto done;
		pub = der;
		publen = (size_t)dl;
	} else {
		publen = sizeof raw;
		if (EVP_PKEY_get_raw_public_key(pk, raw, &publen) != 1)
			goto done;
		pub = raw;
	}
	char b64[1024];
	if (base64_encode(pub, publen, b64, sizeof b64) < 0)
		goto done;
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		goto done;
	if (PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) == 1) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);
		if (n > 0 && buf_append(pem, p, (size_t)n) == 0 &&
		    buf_printf(record, "v=DKIM1; k=%s; p=%s",
			       type == DKIM_KEY_RSA ? "rsa" : "ed25519", b64) == 0)
			rc = 0;
	}
	BIO_free(bio);
done:
	if (rc < 0)
		strutil_errf(err, errsz, "key generation failed");
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	return rc;
}

/* ---- verification ---- */

const char *dkim_status_name(enum dkim_status st)
{
	switch (st) {
	case DKIM_PASS:
		return "pass";
	case DKIM_FAIL:
		return "fail";
	case DKIM_NEUTRAL:
		return "neutral";
	case DKIM_PERMERROR:
		return "permerror";
	case DKIM_TEMPERROR:
		return "temperror";
	}
	return "neutral";
}

static void copy_val(char *dst, size_t dsz, const struct dkim_tag *t)
{
	size_t n = t == NULL ? 0 : t->val_len;
	if (n >= dsz)
		n = dsz - 1;
	if (n > 0)
		memcpy(dst, t->val, n);
	dst[n] = '\0';
}

int dkim_strip_b(const char *f, size_t n, struct buf *out)
{
	const char *colon = memchr(f, ':', n);
	if (colon == NULL)
		return -1;
	size_t i = (size_t)(colon - f) + 1;
	if (buf_append(out, f, i) < 0)
		return -1;
	while (i < n) {
		size_t s = i;
		while (i < n && is_fws(f[i]))
			i++;
		bool isb = i < n && f[i] == 'b';
		size_t k = i + 1;
		while (k < n && is_fws(f[k]))
			k++;
		isb = isb && k < n && f[k] == '=';
		size_t e = s;
		while (e < n && f[e] != ';')
			e++;
		if (isb) {
			if (buf_append(out, f + s, k + 1 - s) < 0)
				return -1;
		} else if (buf_append(out, f + s, e - s) < 0) {
			return -1;
		}
		if (e < n && buf_putc(out, ';') < 0)
			return -1;
		i = e + 1;
	}
	return 0;
}

/* Domain d is a or a subdomain of it (case-insensitive). */
static bool domain_within(const char *sub, size_t sn, const char *d, size_t dn)
{
	if (sn == dn)
		return strutil_eq_ci(sub, sn, d) && dn == strlen(d);
	return sn > dn && sub[sn - dn - 1] == '.' && strncasecmp(sub + sn - dn, d, dn) == 0;
}

/* The key type of an a= value; DKIM_PASS, or the status to report. */
static enum dkim_status algo_type(const char *a, size_t n, enum dkim_keytype *kt,
				  struct dkim_result *r)
{
	if (n == 10 && memcmp(a, "rsa-sha256", 10) == 0) {
		*kt = DKIM_KEY_RSA;
	} else if (n == 14 && memcmp(a, "ed25519-sha256", 14) == 0) {
		*kt = DKIM_KEY_ED25519;
	} else if (n == 8 && memcmp(a, "rsa-sha1", 8) == 0) {
		snprintf(r->reason, sizeof r->reason, "rsa-sha1 is not accepted (RFC 8301)");
		return DKIM_FAIL;
	} else {
		snprintf(r->reason, sizeof r->reason, "unknown algorithm");
		return DKIM_NEUTRAL;
	}
	return DKIM_PASS;
}

/* Asks lookup for the key of r->selector, r->domain and checks it fits kt.
 * DKIM_PASS with the key in *pkp (the caller frees it) and t=s in
 * *strict, or the status to report with r->reason. */
static enum dkim_status fetch_key(enum dkim_keytype kt, dkim_lookup_fn lookup, void *ctx,
				  struct dkim_result *r, EVP_PKEY **pkp, bool *strict)
{
	char e[DKIM_ERR_MAX];
	*pkp = NULL;
	if (r->domain[0] == '\0' || r->selector[0] == '\0' ||
	    strpbrk(r->domain, " \t\r\n") != NULL || strpbrk(r->selector, " \t\r\n") != NULL) {
		snprintf(r->reason, sizeof r->reason, "bad d= or s=");
		return DKIM_NEUTRAL;
	}
	struct buf rec = BUF_INIT;
	buf_init(&rec, 65536);
	int lr = lookup(ctx, r->selector, r->domain, &rec, e, sizeof e);
	if (lr != 0) {
		buf_free(&rec);
		int w = snprintf(r->reason, sizeof r->reason, "key %.40s._domainkey.%.60s: %.40s",
				 r->selector, r->domain, e);
		(void)w;
		return lr < 0 ? DKIM_TEMPERROR : DKIM_PERMERROR;
	}
	const char *rd = rec.data != NULL ? rec.data : "";
	struct dkim_keycache *kc = dkim_keycache_process();
	time_t now = time(NULL);
	bool testing = false;
	EVP_PKEY *pk = dkim_keycache_get(kc, r->selector, r->domain, (int)kt, rd, rec.len, now,
					 &testing, strict);
	if (pk != NULL) {
		buf_free(&rec);
		r->testing = testing;
		*pkp = pk;
		return DKIM_PASS;
	}
	struct dkim_keyrec kr;
	int pr = dkim_keyrec_parse(rd, rec.len, &kr, e, sizeof e);
	if (pr < 0)
		buf_free(&rec);
	if (pr < 0) {
		snprintf(r->reason, sizeof r->reason, "%.150s", e);
		return DKIM_PERMERROR;
	}
	r->testing = kr.testing;
	*strict = kr.strict;
	if (kr.revoked) {
		snprintf(r->reason, sizeof r->reason, "key revoked");
		goto out;
	}
	if (kr.type != kt || !kr.sha256_ok) {
		snprintf(r->reason, sizeof r->reason, "key does not fit the algorithm");
		goto out;
	}
	const unsigned char *pp = kr.pub;
	if (kt == DKIM_KEY_ED25519) {
		pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, kr.pub, kr.pub_len);
	} else {
		pk = d2i_PUBKEY(NULL, &pp, (long)kr.pub_len);
		if (pk == NULL) {
			pp = kr.pub;
			pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &pp, (long)kr.pub_len);
		}
		if (pk != NULL && !EVP_PKEY_is_a(pk, "RSA")) {
			EVP_PKEY_free(pk);
			pk = NULL;
		}
	}
	if (pk == NULL) {
		snprintf(r->reason, sizeof r->reason, "key record p= is not a usable key");
		goto out;
	}
	if (kt == DKIM_KEY_RSA && EVP_PKEY_get_bits(pk) < 1024) {
		snprintf(r->reason, sizeof r->reason,
			 "RSA key of %d bits (RFC 8301: 1024 at least)", EVP_PKEY_get_bits(pk));
		EVP_PKEY_free(pk);
		pk = NULL;
		goto out;
	}
	dkim_keycache_put(kc, r->selector, r->domain, (int)kt, rd, rec.len, pk, kr.testing,
			  kr.strict, now);
out:
	dkim_keyrec_clear(&kr);
	buf_free(&rec);
	*pkp = pk;
	return pk != NULL ? DKIM_PASS : DKIM_PERMERROR;
}

/* Checks the base64 signature b64 of data with pk.  DKIM_PASS, DKIM_FAIL
 * or DKIM_NEUTRAL (b= unreadable), with r->reason. */
static enum dkim_status check_sig(EVP_PKEY *pk, enum dkim_keytype kt, const char *b64,
				  size_t b64_len, const void *data, size_t n, struct dkim_result *r)
{
	size_t siglen = 0;
	unsigned char *sig = b64_decode_fws(b64, b64_len, &siglen);
	if (sig == NULL) {
		snprintf(r->reason, sizeof r->reason, "b= is not base64");
		return DKIM_NEUTRAL;
	}
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	int ok = 0;
	if (mctx != NULL && kt == DKIM_KEY_RSA) {
		ok = EVP_DigestVerifyInit(mctx, NULL, EVP_sha256(), NULL, pk) == 1 &&
		     EVP_DigestVerify(mctx, sig, siglen, data, n) == 1;
	} else if (mctx != NULL) {
		unsigned char hh[EVP_MAX_MD_SIZE];
		unsigned hhl = 0;
		ok = digest(EVP_sha256(), data, n, hh, &hhl) == 0 &&
		     EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pk) == 1 &&
		     EVP_DigestVerify(mctx, sig, siglen, hh, hhl) == 1;
	}
	EVP_MD_CTX_free(mctx);
	free(sig);
	if (!ok) {
		snprintf(r->reason, sizeof r->reason, "signature did not verify");
		return DKIM_FAIL;
	}
	r->reason[0] = '\0';
	return DKIM_PASS;
}

enum dkim_status dkim_verify_data(const char *algo, size_t algo_len, const char *selector,
				  const char *domain, const char *b64, size_t b64_len,
				  const void *data, size_t n, dkim_lookup_fn lookup, void *ctx,
				  struct dkim_result *r)
{
	snprintf(r->selector, sizeof r->selector, "%s", selector);
	snprintf(r->domain, sizeof r->domain, "%s", domain);
	snprintf(r->algo, sizeof r->algo, "%.*s", (int)(algo_len < 23 ? algo_len : 23), algo);
	enum dkim_keytype kt;
	enum dkim_status st = algo_type(algo, algo_len, &kt, r);
	if (st != DKIM_PASS)
		return st;
	EVP_PKEY *pk;
	bool strict;
	st = fetch_key(kt, lookup, ctx, r, &pk, &strict);
	if (st != DKIM_PASS)
		return st;
	st = check_sig(pk, kt, b64, b64_len, data, n, r);
	EVP_PKEY_free(pk);
	return st;
}

/* Verifies signature field sf[0..sflen) over the message v.  An AMS
 * (RFC 8617 4.1.2) has no v= and its i= is the instance, not an AUID. */
static enum dkim_status verify_one(struct msgview *v, const char *sf, size_t sflen, bool ams,
				   time_t now, dkim_lookup_fn lookup, void *ctx,
				   struct dkim_result *r)
{
	const char *colon = memchr(sf, ':', sflen);
	if (colon == NULL) {
		snprintf(r->reason, sizeof r->reason, "not a header field");
		return DKIM_NEUTRAL;
	}
	const char *val = colon + 1;
	size_t vlen = sflen - (size_t)(val - sf);
	struct dkim_taglist tl;
	char e[DKIM_ERR_MAX];
	if (dkim_taglist_parse(val, vlen, &tl, e, sizeof e) < 0) {
		snprintf(r->reason, sizeof r->reason, "signature: %.140s", e);
		return DKIM_NEUTRAL;
	}
	const struct dkim_tag *tv = dkim_taglist_get(&tl, "v"), *ta = dkim_taglist_get(&tl, "a"),
			      *tb = dkim_taglist_get(&tl, "b"), *tbh = dkim_taglist_get(&tl, "bh"),
			      *td = dkim_taglist_get(&tl, "d"), *th = dkim_taglist_get(&tl, "h"),
			      *ts = dkim_taglist_get(&tl, "s"), *tc = dkim_taglist_get(&tl, "c"),
			      *ti = dkim_taglist_get(&tl, "i"), *tl_ = dkim_taglist_get(&tl, "l"),
			      *tq = dkim_taglist_get(&tl, "q"), *tx = dkim_taglist_get(&tl, "x");
	if (ams)
		ti = NULL;
	copy_val(r->domain, sizeof r->domain, td);
	copy_val(r->selector, sizeof r->selector, ts);
	copy_val(r->algo, sizeof r->algo, ta);
	copy_val(r->identity, sizeof r->identity, ti);
	if ((tv == NULL && !ams) || ta == NULL || tb == NULL || tbh == NULL || td == NULL ||
	    th == NULL || ts == NULL) {
		snprintf(r->reason, sizeof r->reason, "signature lacks a required tag");
		return DKIM_NEUTRAL;
	}
	if (!ams && !tag_is(tv, "1")) {
		snprintf(r->reason, sizeof r->reason, "signature version is not 1");
		return DKIM_NEUTRAL;
	}
	enum dkim_keytype kt;
	enum dkim_status ast = algo_type(ta->val, ta->val_len, &kt, r);
	if (ast != DKIM_PASS)
		return ast;
	bool hrel = false, brel = false;
	if (tc != NULL) {
		const char *c = tc->val;
		size_t cn = tc->val_len;
		const char *slash = memchr(c, '/', cn);
		size_t h1 = slash != NULL ? (size_t)(slash - c) : cn;
		const char *c2 = slash != NULL ? slash + 1 : "simple";
		size_t c2n = slash != NULL ? cn - h1 - 1 : 6;
		bool ok1 = strutil_eq_ci(c, h1, "relaxed") || strutil_eq_ci(c, h1, "simple");
		bool ok2 = strutil_eq_ci(c2, c2n, "relaxed") || strutil_eq_ci(c2, c2n, "simple");
		if (!ok1 || !ok2) {
			snprintf(r->reason, sizeof r->reason, "unknown canonicalization");
			return DKIM_NEUTRAL;
		}
		hrel = strutil_eq_ci(c, h1, "relaxed");
		brel = strutil_eq_ci(c2, c2n, "relaxed");
	}
	if (tq != NULL && !list_has(tq->val, tq->val_len, "dns/txt")) {
		snprintf(r->reason, sizeof r->reason, "unknown query method");
		return DKIM_NEUTRAL;
	}
	if (!list_has(th->val, th->val_len, "from")) {
		snprintf(r->reason, sizeof r->reason, "From is not signed");
		return DKIM_NEUTRAL;
	}
	if (ti != NULL) {
		const char *at = memchr(ti->val, '@', ti->val_len);
		if (at == NULL || !domain_within(at + 1, ti->val_len - (size_t)(at + 1 - ti->val),
						 r->domain, strlen(r->domain))) {
			snprintf(r->reason, sizeof r->reason, "i= is not within d=");
			return DKIM_NEUTRAL;
		}
	}
	uint64_t bodylimit = UINT64_MAX;
	if (tl_ != NULL && strutil_parse_u64(tl_->val, tl_->val_len, UINT64_MAX, &bodylimit) < 0) {
		snprintf(r->reason, sizeof r->reason, "bad l=");
		return DKIM_NEUTRAL;
	}
	uint64_t x;
	if (tx != NULL) {
		if (strutil_parse_u64(tx->val, tx->val_len, UINT64_MAX, &x) < 0) {
			snprintf(r->reason, sizeof r->reason, "bad x=");
			return DKIM_NEUTRAL;
		}
		if (now >= 0 && (uint64_t)now > x) {
			snprintf(r->reason, sizeof r->reason, "signature expired");
			return DKIM_NEUTRAL;
		}
	}

	/* key */
	EVP_PKEY *pk = NULL;
	bool strict = false;
	enum dkim_status st = fetch_key(kt, lookup, ctx, r, &pk, &strict);
	if (st != DKIM_PASS)
		return st;
	struct buf body = BUF_INIT, hin = BUF_INIT;
	st = DKIM_PERMERROR;
	if (strict && ti != NULL) {
		const char *at = memchr(ti->val, '@', ti->val_len);
		size_t dl = ti->val_len - (size_t)(at + 1 - ti->val);
		if (dl != strlen(r->domain) || !strutil_eq_ci(at + 1, dl, r->domain)) {
			snprintf(r->reason, sizeof r->reason, "t=s key and i= is a subdomain");
			goto out;
		}
	}

	/* body hash */
	st = DKIM_FAIL;
	buf_init(&body, DKIM_MSG_MAX);
	if (dkim_canon_body(v->body, v->body_len, brel, &body) < 0) {
		snprintf(r->reason, sizeof r->reason, "body too large");
		st = DKIM_NEUTRAL;
		goto out;
	}
	if (bodylimit < body.len)
		body.len = (size_t)bodylimit;
	unsigned char bh[EVP_MAX_MD_SIZE];
	unsigned bhl = 0;
	size_t wantl = 0;
	unsigned char *want = b64_decode_fws(tbh->val, tbh->val_len, &wantl);
	if (want == NULL) {
		snprintf(r->reason, sizeof r->reason, "bh= is not base64");
		st = DKIM_NEUTRAL;
		goto out;
	}
	bool bodyok =
	    digest(EVP_sha256(), body.data != NULL ? body.data : "", body.len, bh, &bhl) == 0 &&
	    wantl == bhl && CRYPTO_memcmp(want, bh, bhl) == 0;
	free(want);
	if (!bodyok) {
		snprintf(r->reason, sizeof r->reason, "body hash did not verify");
		goto out;
	}

	/* header hash */
	if (add_signed_headers(v, th->val, th->val_len, hrel, &hin) < 0) {
		snprintf(r->reason, sizeof r->reason, "header too large");
		goto out;
	}
	struct buf stripped = BUF_INIT;
	if (dkim_strip_b(sf, sflen, &stripped) < 0 ||
	    canon_field(stripped.data, stripped.len, hrel, &hin) < 0) {
		buf_free(&stripped);
		goto out;
	}
	buf_free(&stripped);
	hin.len -= 2;
	st = check_sig(pk, kt, tb->val, tb->val_len, hin.data, hin.len, r);
out:
	EVP_PKEY_free(pk);
	buf_free(&body);
	buf_free(&hin);
	return st;
}

enum dkim_status dkim_verify_field(const char *msg, size_t len, const char *field, size_t flen,
				   unsigned flags, time_t now, dkim_lookup_fn lookup, void *ctx,
				   struct dkim_result *r)
{
	memset(r, 0, sizeof *r);
	struct msgview *v = xmalloc(sizeof *v);
	if (split_message(msg, len, v, r->reason, sizeof r->reason) < 0) {
		free(v);
		return r->status = DKIM_NEUTRAL;
	}
	name_fields(v);
	r->status = verify_one(v, field, flen, (flags & DKIM_VERIFY_AMS) != 0, now, lookup, ctx, r);
	free(v);
	return r->status;
}

int dkim_verify(const char *msg, size_t len, time_t now, dkim_lookup_fn lookup, void *ctx,
		struct dkim_result *res, size_t max, char *err, size_t errsz)
{
	struct msgview *v = xmalloc(sizeof *v);
	if (split_message(msg, len, v, err, errsz) < 0) {
		free(v);
		return -1;
	}
	name_fields(v);
	if (max > DKIM_SIGS_MAX)
		max = DKIM_SIGS_MAX;
	size_t nres = 0;
	for (size_t i = 0; i < v->n && nres < max; i++) {
		if (!field_is(&v->f[i], "DKIM-Signature", 14))
			continue;
		struct dkim_result *r = &res[nres++];
		memset(r, 0, sizeof *r);
		r->status = verify_one(v, v->f[i].p, v->f[i].len, false, now, lookup, ctx, r);
	}
	free(v);
	return (int)nres;
}
