/*
 * sasl.c - server side of SASL PLAIN, LOGIN and SCRAM-SHA-256(-PLUS); see
 * sasl.h for the contract.
 *
 * Part of src/auth: it depends on src/lib (base64), password.c and
 * OpenSSL's libcrypto (SHA-256, HMAC, PBKDF2, random bytes).  It does no
 * I/O of its own: the protocol session moves the bytes, the lookup
 * callback reads the credentials, and the one slow step (crypt(3) for
 * PLAIN and LOGIN) is split out as sasl_server_verify so the caller may
 * run it where it likes.
 *
 * Every exchange is a small state machine: fields are parsed from bounded
 * copies of the responses into fixed-size members of struct sasl_server,
 * which is wiped when freed because it holds passwords and keys.
 */
#include "sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "password.h"
#include "xalloc.h"

#define FIELD_MAX 255 /* PLAIN/LOGIN authcid, authzid, password */
#define NONCE_MAX 128 /* client nonce bytes we accept */
#define SALT_LEN 16   /* bytes of salt in new records */

enum sasl_state {
	ST_START,      /* nothing received yet */
	ST_PLAIN,      /* waiting for the PLAIN message */
	ST_LOGIN_USER, /* "Username:" sent */
	ST_LOGIN_PASS, /* "Password:" sent */
	ST_SCRAM_FIRST,
	ST_SCRAM_FINAL,
	ST_VERIFY, /* password check due */
	ST_DONE,   /* OK or FAIL: sticky */
};

struct sasl_server {
	enum sasl_mech mech;
	enum sasl_state state;
	enum sasl_status result; /* once ST_DONE */
	enum sasl_error error;
	sasl_lookup_fn lookup;
	sasl_app_lookup_fn app_lookup;
	void *lookup_ctx;
	struct {
		char type[32];
		unsigned char data[SASL_MAX_CBIND_DATA];
		size_t len;
	} cbind[SASL_MAX_CBIND];
	size_t n_cbind;

	char user[FIELD_MAX * 3 + 1]; /* as sent (SCRAM: after =2C/=3D) */
	char password[FIELD_MAX + 1]; /* PLAIN/LOGIN, wiped after verify */
	struct sasl_creds creds;
	bool found; /* the lookup knew the user */
	/* An app password: its canonical text (wiped with password) and the
	 * stored one with that id. */
	char app_text[APPPASS_TEXT_SIZE];
	struct sasl_app_creds app;
	bool app_found; /* app holds the user's app password of that id */
	bool app_used;  /* it matched */

	/* SCRAM */
	char test_nonce[64];
	char nonce[NONCE_MAX + 64];          /* client nonce + server nonce */
	char gs2_header[FIELD_MAX * 3 + 48]; /* up to and including the 2nd ',' */
	size_t gs2_len;
	int cb_index; /* binding chosen by "p=", or -1 */
	char client_first_bare[SASL_MAX_RESPONSE + 1];
	char server_first[NONCE_MAX + 200];
	struct sasl_scram_keys keys;

	unsigned char out[384]; /* challenge or final data */
	size_t out_len;
};

/* ----------------------------------------------------------- names */

static const char *const mech_names[] = {
    [SASL_MECH_PLAIN] = "PLAIN",
    [SASL_MECH_LOGIN] = "LOGIN",
    [SASL_MECH_SCRAM_SHA_256] = "SCRAM-SHA-256",
    [SASL_MECH_SCRAM_SHA_256_PLUS] = "SCRAM-SHA-256-PLUS",
};

int sasl_mech_from_name(const char *name, size_t len, enum sasl_mech *out)
{
	for (size_t i = 0; i < sizeof mech_names / sizeof mech_names[0]; i++) {
		if (strlen(mech_names[i]) == len && strncasecmp(name, mech_names[i], len) == 0) {
			*out = (enum sasl_mech)i;
			return 0;
		}
	}
	return -1;
}

const char *sasl_mech_name(enum sasl_mech m)
{
	return (size_t)m < sizeof mech_names / sizeof mech_names[0] ? mech_names[m] : "?";
}

const char *sasl_error_name(enum sasl_error e)
{
	switch (e) {
	case SASL_ERR_NONE:
		return "none";
	case SASL_ERR_MALFORMED:
		return "malformed";
	case SASL_ERR_CREDENTIALS:
		return "credentials";
	case SASL_ERR_AUTHZ:
		return "authz";
	case SASL_ERR_UNAVAILABLE:
		return "unavailable";
	case SASL_ERR_CHANNEL_BINDING:
		return "channel-binding";
	case SASL_ERR_TEMPORARY:
		return "temporary";
	}
	return "?";
}

/* ------------------------------------------------------ life cycle */

struct sasl_server *sasl_server_new(enum sasl_mech m, const struct sasl_params *params)
{
	struct sasl_server *s = xcalloc(1, sizeof *s);
	s->mech = m;
	s->state = ST_START;
	s->cb_index = -1;
	if (params != NULL) {
		s->lookup = params->lookup;
		s->app_lookup = params->app_lookup;
		s->lookup_ctx = params->lookup_ctx;
		for (size_t i = 0; i < params->n_cbind && s->n_cbind < SASL_MAX_CBIND; i++) {
			const struct sasl_cbind *c = &params->cbind[i];
			size_t tl = c->type != NULL ? strlen(c->type) : 0;
			/* A binding we cannot hold is not offered at all. */
			if (tl == 0 || tl >= sizeof s->cbind[0].type || c->len == 0 ||
			    c->len > SASL_MAX_CBIND_DATA || c->data == NULL)
				continue;
			memcpy(s->cbind[s->n_cbind].type, c->type, tl + 1);
			memcpy(s->cbind[s->n_cbind].data, c->data, c->len);
			s->cbind[s->n_cbind].len = c->len;
			s->n_cbind++;
		}
	}
	return s;
}

void sasl_server_free(struct sasl_server **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	OPENSSL_cleanse(*sp, sizeof **sp);
	free(*sp);
	*sp = NULL;
}

void sasl_server_set_nonce(struct sasl_server *s, const char *nonce)
{
	snprintf(s->test_nonce, sizeof s->test_nonce, "%s", nonce);
}

const unsigned char *sasl_server_data(const struct sasl_server *s, size_t *len)
{
	*len = s->out_len;
	return s->out;
}

const char *sasl_server_account(const struct sasl_server *s)
{
	if (s->state != ST_DONE || s->result != SASL_OK)
		return "";
	return s->creds.address[0] != '\0' ? s->creds.address : s->user;
}

const char *sasl_server_app_name(const struct sasl_server *s)
{
	if (s->state != ST_DONE || s->result != SASL_OK || !s->app_used)
		return "";
	return s->app.name;
}

const char *sasl_server_user(const struct sasl_server *s)
{
	return s->user;
}

enum sasl_error sasl_server_error(const struct sasl_server *s)
{
	return s->error;
}

enum sasl_mech sasl_server_mech(const struct sasl_server *s)
{
	return s->mech;
}

/* Ends the exchange with a failure.  Secrets are wiped at once. */
static enum sasl_status fail(struct sasl_server *s, enum sasl_error e)
{
	s->state = ST_DONE;
	s->result = SASL_FAIL;
	s->error = e;
	s->out_len = 0;
	OPENSSL_cleanse(s->password, sizeof s->password);
	OPENSSL_cleanse(&s->creds.pwhash, sizeof s->creds.pwhash);
	OPENSSL_cleanse(&s->keys, sizeof s->keys);
	OPENSSL_cleanse(s->app_text, sizeof s->app_text);
	OPENSSL_cleanse(&s->app, sizeof s->app);
	s->app_used = false;
	return SASL_FAIL;
}

static enum sasl_status succeed(struct sasl_server *s)
{
	s->state = ST_DONE;
	s->result = SASL_OK;
	s->error = SASL_ERR_NONE;
	OPENSSL_cleanse(s->password, sizeof s->password);
	OPENSSL_cleanse(&s->keys, sizeof s->keys);
	OPENSSL_cleanse(s->app_text, sizeof s->app_text);
	OPENSSL_cleanse(s->app.pwhash, sizeof s->app.pwhash);
	return SASL_OK;
}

/* Sets the challenge to the n bytes at p. */
static enum sasl_status challenge(struct sasl_server *s, const void *p, size_t n)
{
	if (n > sizeof s->out)
		return fail(s, SASL_ERR_MALFORMED);
	memcpy(s->out, p, n);
	s->out_len = n;
	return SASL_CONTINUE;
}

/* Calls the lookup for s->user.  Returns 1 found, 0 unknown, -1 error. */
static int lookup_user(struct sasl_server *s)
{
	memset(&s->creds, 0, sizeof s->creds);
	if (s->lookup == NULL)
		return 0;
	int r = s->lookup(s->lookup_ctx, s->user, &s->creds);
	/* Whatever the callback wrote, the strings end inside their arrays. */
	s->creds.address[sizeof s->creds.address - 1] = '\0';
	s->creds.pwhash[sizeof s->creds.pwhash - 1] = '\0';
	s->creds.scram[sizeof s->creds.scram - 1] = '\0';
	s->found = r == 1;
	return r < 0 ? -1 : r == 1;
}

/* --------------------------------------------------------- helpers */

/* True if p[0..n) is well-formed UTF-8 without NUL or other C0 controls
 * and DEL: what a username or authzid may hold. */
static bool name_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		/* No overlong forms, surrogates or code points past U+10FFFF. */
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Copies p[0..n) into out[outsz] with a NUL.  False if it does not fit. */
static bool copy_field(char *out, size_t outsz, const void *p, size_t n)
{
	if (n >= outsz)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

static bool ascii_equal_nocase(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

/* ----------------------------------------------------- PLAIN, LOGIN */

/* A fixed crypt(3) hash of a random password, checked against when the
 * user is unknown, so an unknown user costs the same time as a wrong
 * password.  Made on first need (on the caller's thread, in step). */
static char dummy_hash[128];

static void ensure_dummy_hash(void)
{
	if (dummy_hash[0] != '\0')
		return;
	unsigned char rnd[18];
	char pw[32];
	if (RAND_bytes(rnd, sizeof rnd) != 1 || base64_encode(rnd, sizeof rnd, pw, sizeof pw) < 0 ||
	    password_hash(pw, dummy_hash, sizeof dummy_hash) < 0)
		snprintf(dummy_hash, sizeof dummy_hash, "*");
	OPENSSL_cleanse(pw, sizeof pw);
}

/* After user and password are known: look the user up and ask for the
 * password check. */
static enum sasl_status need_verify(struct sasl_server *s)
{
	int r = lookup_user(s);
	if (r < 0)
		return fail(s, SASL_ERR_TEMPORARY);
	if (r == 0 || s->creds.pwhash[0] == '\0') {
		s->found = false;
		ensure_dummy_hash();
	} else if (s->app_lookup != NULL) {
		/* An app password is found by its id: one hash to check. */
		char id[APPPASS_ID_SIZE];
		if (apppass_parse(s->password, strlen(s->password), s->app_text, id)) {
			const char *addr = s->creds.address[0] != '\0' ? s->creds.address : s->user;
			memset(&s->app, 0, sizeof s->app);
			int a = s->app_lookup(s->lookup_ctx, addr, id, &s->app);
			s->app.name[sizeof s->app.name - 1] = '\0';
			s->app.pwhash[sizeof s->app.pwhash - 1] = '\0';
			if (a < 0)
				return fail(s, SASL_ERR_TEMPORARY);
			s->app_found = a == 1 && s->app.pwhash[0] != '\0';
		}
	}
	s->state = ST_VERIFY;
	s->out_len = 0;
	return SASL_VERIFY;
}

/* RFC 4616: message = [authzid] NUL authcid NUL passwd. */
static enum sasl_status plain_message(struct sasl_server *s, const unsigned char *p, size_t n)
{
	const unsigned char *nul1 = memchr(p, '\0', n);
	if (nul1 == NULL)
		return fail(s, SASL_ERR_MALFORMED);
	size_t zlen = (size_t)(nul1 - p);
	const unsigned char *c = nul1 + 1;
	size_t rest = n - zlen - 1;
	const unsigned char *nul2 = memchr(c, '\0', rest);
	if (nul2 == NULL)
		return fail(s, SASL_ERR_MALFORMED);
	size_t clen = (size_t)(nul2 - c);
	const unsigned char *pw = nul2 + 1;
	size_t plen = rest - clen - 1;
	if (zlen > FIELD_MAX || clen == 0 || clen > FIELD_MAX || plen == 0 || plen > FIELD_MAX ||
	    memchr(pw, '\0', plen) != NULL || !name_ok(p, zlen) || !name_ok(c, clen))
		return fail(s, SASL_ERR_MALFORMED);
	char authzid[FIELD_MAX + 1];
	copy_field(authzid, sizeof authzid, p, zlen);
	copy_field(s->user, sizeof s->user, c, clen);
	copy_field(s->password, sizeof s->password, pw, plen);
	/* We let nobody act for someone else: the authzid may only name the
	 * authcid itself. */
	if (authzid[0] != '\0' && !ascii_equal_nocase(authzid, s->user))
		return fail(s, SASL_ERR_AUTHZ);
	return need_verify(s);
}

static enum sasl_status login_user(struct sasl_server *s, const unsigned char *p, size_t n)
{
	if (n == 0 || n > FIELD_MAX || !name_ok(p, n))
		return fail(s, SASL_ERR_MALFORMED);
	copy_field(s->user, sizeof s->user, p, n);
	s->state = ST_LOGIN_PASS;
	return challenge(s, "Password:", 9);
}

static enum sasl_status login_pass(struct sasl_server *s, const unsigned char *p, size_t n)
{
	if (n == 0 || n > FIELD_MAX || memchr(p, '\0', n) != NULL)
		return fail(s, SASL_ERR_MALFORMED);
	copy_field(s->password, sizeof s->password, p, n);
	return need_verify(s);
}

enum sasl_status sasl_server_verify(struct sasl_server *s)
{
	if (s->state == ST_DONE)
		return s->result;
	if (s->state != ST_VERIFY)
		return fail(s, SASL_ERR_MALFORMED);
	bool ok;
	if (s->found && s->app_found) {
		ok = s->app_used = password_verify(s->app_text, s->app.pwhash);
		/* A main password that looks like this app password still
		 * works (the one case that costs a second hash). */
		if (!ok)
			ok = password_verify(s->password, s->creds.pwhash);
	} else if (s->found) {
		ok = password_verify(s->password, s->creds.pwhash);
	} else {
		(void)password_verify(s->password, dummy_hash);
		ok = false;
	}
	return ok ? succeed(s) : fail(s, SASL_ERR_CREDENTIALS);
}

/* ------------------------------------------------------------- SCRAM */

/* One "x=value" attribute of a SCRAM message. */
struct attr {
	char name;         /* 0 for a field without "x=" (the gs2 flags "n", "y", "") */
	const char *start; /* the field, from its name */
	const char *value;
	size_t len;
};

/* Splits p[0..n) at ',' into at most max attributes.  Returns the count,
 * or -1 if there are more. */
static int split_attrs(const char *p, size_t n, struct attr *a, int max)
{
	int count = 0;
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < n && p[i] != ',')
			i++;
		if (count == max)
			return -1;
		const char *f = p + start;
		size_t flen = i - start;
		a[count].start = f;
		if (flen >= 2 && f[1] == '=') {
			a[count].name = f[0];
			a[count].value = f + 2;
			a[count].len = flen - 2;
		} else {
			a[count].name = 0;
			a[count].value = f;
			a[count].len = flen;
		}
		count++;
		if (i == n)
			return count;
		i++; /* the ',' */
	}
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Decodes a saslname (RFC 5802: "=2C" is ',', "=3D" is '=', any other
 * '=' is an error) into out.  False if malformed or too long. */
static bool saslname_decode(const char *p, size_t n, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '=') {
			if (n - i < 3)
				return false;
			if (p[i + 1] == '2' && (p[i + 2] == 'C' || p[i + 2] == 'c'))
				c = ',';
			else if (p[i + 1] == '3' && (p[i + 2] == 'D' || p[i + 2] == 'd'))
				c = '=';
			else
				return false;
			i += 2;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return o > 0 && name_ok((const unsigned char *)out, o);
}

/* printable = %x21-2B / %x2D-7E */
static bool printable_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x21 || c > 0x7e || c == ',')
			return false;
	}
	return n > 0;
}

static bool cb_name_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-')
			return false;
	}
	return n > 0;
}

static bool hmac256(const unsigned char *key, size_t klen, const void *data, size_t n,
		    unsigned char out[32])
{
	unsigned int len = 32;
	return HMAC(EVP_sha256(), key, (int)klen, data, n, out, &len) != NULL && len == 32;
}

/* A secret made once per process, so the fake salt of an unknown user is
 * stable within a process (asking twice gives the same answer) yet says
 * nothing. */
static unsigned char fake_secret[32];
static bool have_fake_secret;

/* Keys for a user we do not know: the exchange goes on with a salt that
 * looks real, and fails at the proof, so SCRAM does not tell which users
 * exist. */
static bool fake_keys(struct sasl_server *s)
{
	if (!have_fake_secret) {
		if (RAND_bytes(fake_secret, sizeof fake_secret) != 1)
			return false;
		have_fake_secret = true;
	}
	unsigned char mac[32];
	if (!hmac256(fake_secret, sizeof fake_secret, s->user, strlen(s->user), mac))
		return false;
	memset(&s->keys, 0, sizeof s->keys);
	s->keys.iterations = SASL_SCRAM_ITER_DEFAULT;
	memcpy(s->keys.salt, mac, SALT_LEN);
	s->keys.salt_len = SALT_LEN;
	return RAND_bytes(s->keys.stored_key, sizeof s->keys.stored_key) == 1 &&
	       RAND_bytes(s->keys.server_key, sizeof s->keys.server_key) == 1;
}

/* client-first-message = gs2-header client-first-message-bare */
static enum sasl_status scram_first(struct sasl_server *s, const char *p, size_t n)
{
	struct attr a[SASL_SCRAM_MAX_ATTRS];
	if (memchr(p, '\0', n) != NULL)
		return fail(s, SASL_ERR_MALFORMED);
	int na = split_attrs(p, n, a, SASL_SCRAM_MAX_ATTRS);
	if (na < 4)
		return fail(s, SASL_ERR_MALFORMED);

	/* gs2-cbind-flag */
	bool plus = s->mech == SASL_MECH_SCRAM_SHA_256_PLUS;
	s->cb_index = -1;
	if (a[0].name == 'p') {
		if (!cb_name_ok(a[0].value, a[0].len))
			return fail(s, SASL_ERR_MALFORMED);
		/* "p" with the non-PLUS mechanism contradicts itself. */
		if (!plus)
			return fail(s, SASL_ERR_MALFORMED);
		for (size_t i = 0; i < s->n_cbind; i++) {
			if (strlen(s->cbind[i].type) == a[0].len &&
			    memcmp(s->cbind[i].type, a[0].value, a[0].len) == 0)
				s->cb_index = (int)i;
		}
		if (s->cb_index < 0)
			return fail(s, SASL_ERR_CHANNEL_BINDING);
	} else if (a[0].name == 0 && a[0].len == 1 && a[0].value[0] == 'n') {
		if (plus)
			return fail(s, SASL_ERR_CHANNEL_BINDING);
	} else if (a[0].name == 0 && a[0].len == 1 && a[0].value[0] == 'y') {
		/* The client can bind but thinks we cannot: if we offer
		 * -PLUS, someone removed it from our list (RFC 5802 6). */
		if (plus || s->n_cbind > 0)
			return fail(s, SASL_ERR_CHANNEL_BINDING);
	} else {
		return fail(s, SASL_ERR_MALFORMED);
	}

	/* authzid: empty or "a=" saslname */
	char authzid[FIELD_MAX + 1] = "";
	if (a[1].name == 'a') {
		if (!saslname_decode(a[1].value, a[1].len, authzid, sizeof authzid))
			return fail(s, SASL_ERR_MALFORMED);
	} else if (!(a[1].name == 0 && a[1].len == 0)) {
		return fail(s, SASL_ERR_MALFORMED);
	}
	size_t hlen = (size_t)(a[2].start - p);
	if (hlen >= sizeof s->gs2_header)
		return fail(s, SASL_ERR_MALFORMED);
	memcpy(s->gs2_header, p, hlen);
	s->gs2_header[hlen] = '\0';
	s->gs2_len = hlen;

	/* client-first-message-bare = [reserved-mext ","] username "," nonce
	 * ["," extensions].  We know no mandatory extension. */
	if (a[2].name == 'm')
		return fail(s, SASL_ERR_MALFORMED);
	if (a[2].name != 'n' || a[3].name != 'r')
		return fail(s, SASL_ERR_MALFORMED);
	for (int i = 4; i < na; i++)
		if (!is_alpha(a[i].name))
			return fail(s, SASL_ERR_MALFORMED);
	if (!saslname_decode(a[2].value, a[2].len, s->user, FIELD_MAX + 1))
		return fail(s, SASL_ERR_MALFORMED);
	if (a[3].len > NONCE_MAX || !printable_ok(a[3].value, a[3].len))
		return fail(s, SASL_ERR_MALFORMED);
	if (!copy_field(s->client_first_bare, sizeof s->client_first_bare, p + hlen, n - hlen))
		return fail(s, SASL_ERR_MALFORMED);
	if (authzid[0] != '\0' && !ascii_equal_nocase(authzid, s->user))
		return fail(s, SASL_ERR_AUTHZ);

	/* The user's keys. */
	int r = lookup_user(s);
	if (r < 0)
		return fail(s, SASL_ERR_TEMPORARY);
	if (r == 1) {
		if (s->creds.scram[0] == '\0')
			return fail(s, SASL_ERR_UNAVAILABLE);
		if (sasl_scram_parse(s->creds.scram, &s->keys) < 0)
			return fail(s, SASL_ERR_UNAVAILABLE);
	} else if (!fake_keys(s)) {
		return fail(s, SASL_ERR_TEMPORARY);
	}

	/* The server nonce: 18 random bytes in base64 (no ','). */
	char snonce[64];
	if (s->test_nonce[0] != '\0') {
		snprintf(snonce, sizeof snonce, "%s", s->test_nonce);
	} else {
		unsigned char rnd[18];
		if (RAND_bytes(rnd, sizeof rnd) != 1 ||
		    base64_encode(rnd, sizeof rnd, snonce, sizeof snonce) < 0)
			return fail(s, SASL_ERR_TEMPORARY);
	}
	int nn = snprintf(s->nonce, sizeof s->nonce, "%.*s%s", (int)a[3].len, a[3].value, snonce);
	if (nn < 0 || (size_t)nn >= sizeof s->nonce)
		return fail(s, SASL_ERR_MALFORMED);
	char salt64[128];
	if (base64_encode(s->keys.salt, s->keys.salt_len, salt64, sizeof salt64) < 0)
		return fail(s, SASL_ERR_TEMPORARY);
	int m = snprintf(s->server_first, sizeof s->server_first, "r=%s,s=%s,i=%u", s->nonce,
			 salt64, s->keys.iterations);
	if (m < 0 || (size_t)m >= sizeof s->server_first)
		return fail(s, SASL_ERR_MALFORMED);
	s->state = ST_SCRAM_FINAL;
	return challenge(s, s->server_first, (size_t)m);
}

/* client-final-message = channel-binding "," nonce ["," extensions] ","
 * proof */
static enum sasl_status scram_final(struct sasl_server *s, const char *p, size_t n)
{
	struct attr a[SASL_SCRAM_MAX_ATTRS];
	if (memchr(p, '\0', n) != NULL)
		return fail(s, SASL_ERR_MALFORMED);
	int na = split_attrs(p, n, a, SASL_SCRAM_MAX_ATTRS);
	if (na < 3 || a[0].name != 'c' || a[1].name != 'r' || a[na - 1].name != 'p')
		return fail(s, SASL_ERR_MALFORMED);
	for (int i = 2; i < na - 1; i++)
		if (!is_alpha(a[i].name))
			return fail(s, SASL_ERR_MALFORMED);

	/* The proof: 32 bytes. */
	unsigned char proof[32 + 3];
	long plen = base64_decode(a[na - 1].value, a[na - 1].len, proof, sizeof proof);
	if (plen != 32)
		return fail(s, SASL_ERR_MALFORMED);

	/* The nonce must be ours, whole. */
	if (a[1].len != strlen(s->nonce) || memcmp(a[1].value, s->nonce, a[1].len) != 0)
		return fail(s, SASL_ERR_MALFORMED);

	/* Channel binding: c= is base64 of the gs2 header we saw, plus the
	 * binding data when the client asked for "p". */
	unsigned char cb[sizeof s->gs2_header + SASL_MAX_CBIND_DATA + 3];
	long cblen = base64_decode(a[0].value, a[0].len, cb, sizeof cb);
	if (cblen < 0)
		return fail(s, SASL_ERR_MALFORMED);
	unsigned char want[sizeof s->gs2_header + SASL_MAX_CBIND_DATA];
	size_t wlen = s->gs2_len;
	memcpy(want, s->gs2_header, s->gs2_len);
	if (s->cb_index >= 0) {
		memcpy(want + wlen, s->cbind[s->cb_index].data, s->cbind[s->cb_index].len);
		wlen += s->cbind[s->cb_index].len;
	}
	if ((size_t)cblen != wlen || CRYPTO_memcmp(cb, want, wlen) != 0)
		return fail(s, SASL_ERR_CHANNEL_BINDING);

	/* AuthMessage = client-first-message-bare "," server-first-message ","
	 * client-final-message-without-proof */
	size_t without_proof = (size_t)(a[na - 1].start - 1 - p);
	size_t bl = strlen(s->client_first_bare), sl = strlen(s->server_first);
	size_t am_len = bl + 1 + sl + 1 + without_proof;
	char *am = xmalloc(am_len);
	memcpy(am, s->client_first_bare, bl);
	am[bl] = ',';
	memcpy(am + bl + 1, s->server_first, sl);
	am[bl + 1 + sl] = ',';
	memcpy(am + bl + 1 + sl + 1, p, without_proof);

	unsigned char client_sig[32], client_key[32], stored[32], server_sig[32];
	bool ok = hmac256(s->keys.stored_key, 32, am, am_len, client_sig) &&
		  hmac256(s->keys.server_key, 32, am, am_len, server_sig);
	free(am);
	if (!ok)
		return fail(s, SASL_ERR_TEMPORARY);
	for (size_t i = 0; i < 32; i++)
		client_key[i] = proof[i] ^ client_sig[i];
	SHA256(client_key, sizeof client_key, stored);
	bool match = CRYPTO_memcmp(stored, s->keys.stored_key, 32) == 0;
	OPENSSL_cleanse(client_key, sizeof client_key);
	if (!match || !s->found)
		return fail(s, SASL_ERR_CREDENTIALS);

	/* server-final-message = "v=" base64(ServerSignature) */
	char v[64];
	memcpy(v, "v=", 2);
	long vl = base64_encode(server_sig, sizeof server_sig, v + 2, sizeof v - 2);
	if (vl < 0)
		return fail(s, SASL_ERR_TEMPORARY);
	challenge(s, v, (size_t)vl + 2);
	return succeed(s);
}

/* ------------------------------------------------------- dispatching */

/* Handles one response in the current state. */
static enum sasl_status feed(struct sasl_server *s, const unsigned char *p, size_t n)
{
	if (n > SASL_MAX_RESPONSE)
		return fail(s, SASL_ERR_MALFORMED);
	switch (s->state) {
	case ST_PLAIN:
		return plain_message(s, p, n);
	case ST_LOGIN_USER:
		return login_user(s, p, n);
	case ST_LOGIN_PASS:
		return login_pass(s, p, n);
	case ST_SCRAM_FIRST:
		return scram_first(s, (const char *)p, n);
	case ST_SCRAM_FINAL:
		return scram_final(s, (const char *)p, n);
	case ST_VERIFY:
	case ST_START:
		return fail(s, SASL_ERR_MALFORMED);
	case ST_DONE:
		return s->result;
	}
	return fail(s, SASL_ERR_MALFORMED);
}

enum sasl_status sasl_server_start(struct sasl_server *s, const void *ir, size_t len)
{
	if (s->state != ST_START)
		return fail(s, SASL_ERR_MALFORMED);
	s->out_len = 0;
	switch (s->mech) {
	case SASL_MECH_PLAIN:
		s->state = ST_PLAIN;
		break;
	case SASL_MECH_LOGIN:
		s->state = ST_LOGIN_USER;
		/* Some clients send the username as initial response. */
		if (ir == NULL || len == 0)
			return challenge(s, "Username:", 9);
		break;
	case SASL_MECH_SCRAM_SHA_256_PLUS:
		if (s->n_cbind == 0)
			return fail(s, SASL_ERR_UNAVAILABLE);
		s->state = ST_SCRAM_FIRST;
		break;
	case SASL_MECH_SCRAM_SHA_256:
		s->state = ST_SCRAM_FIRST;
		break;
	default:
		return fail(s, SASL_ERR_UNAVAILABLE);
	}
	if (ir == NULL)
		return SASL_CONTINUE; /* an empty challenge asks for the message */
	return feed(s, ir, len);
}

enum sasl_status sasl_server_step(struct sasl_server *s, const void *resp, size_t len)
{
	if (s->state == ST_DONE)
		return s->result;
	s->out_len = 0;
	if (resp == NULL)
		return fail(s, SASL_ERR_MALFORMED);
	return feed(s, resp, len);
}

/* -------------------------------------------------------- SCRAM keys */

bool sasl_scram_password_ok(const char *password)
{
	size_t n = 0;
	for (; password[n] != '\0'; n++) {
		unsigned char c = (unsigned char)password[n];
		if (c < 0x20 || c > 0x7e || n >= 1023)
			return false;
	}
	return n > 0;
}

int sasl_scram_compute(const char *password, const unsigned char *salt, size_t salt_len,
		       unsigned iterations, char *out, size_t outsz)
{
	if (!sasl_scram_password_ok(password) || salt_len == 0 || salt_len > 64 || iterations < 1 ||
	    iterations > SASL_SCRAM_ITER_MAX)
		return -1;
	unsigned char salted[32], client_key[32], stored[32], server_key[32];
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iterations,
			      EVP_sha256(), sizeof salted, salted) != 1)
		return -1;
	int rc = -1;
	if (hmac256(salted, 32, "Client Key", 10, client_key) &&
	    hmac256(salted, 32, "Server Key", 10, server_key)) {
		SHA256(client_key, sizeof client_key, stored);
		char s64[96], st64[48], sv64[48];
		if (base64_encode(salt, salt_len, s64, sizeof s64) >= 0 &&
		    base64_encode(stored, 32, st64, sizeof st64) >= 0 &&
		    base64_encode(server_key, 32, sv64, sizeof sv64) >= 0) {
			int n = snprintf(out, outsz, "SCRAM-SHA-256$%u:%s$%s:%s", iterations, s64,
					 st64, sv64);
			rc = (n < 0 || (size_t)n >= outsz) ? -1 : 0;
		}
	}
	OPENSSL_cleanse(salted, sizeof salted);
	OPENSSL_cleanse(client_key, sizeof client_key);
	OPENSSL_cleanse(server_key, sizeof server_key);
	return rc;
}

int sasl_scram_make(const char *password, unsigned iterations, char *out, size_t outsz)
{
	unsigned char salt[SALT_LEN];
	if (RAND_bytes(salt, sizeof salt) != 1)
		return -1;
	return sasl_scram_compute(password, salt, sizeof salt, iterations, out, outsz);
}

/* Decodes exactly want bytes of base64 from p[0..n) into out. */
static bool decode_exact(const char *p, size_t n, unsigned char *out, size_t want)
{
	unsigned char tmp[96];
	if (n > 128)
		return false;
	long r = base64_decode(p, n, tmp, sizeof tmp);
	if (r < 0 || (size_t)r != want)
		return false;
	memcpy(out, tmp, want);
	return true;
}

int sasl_scram_parse(const char *record, struct sasl_scram_keys *k)
{
	static const char prefix[] = "SCRAM-SHA-256$";
	size_t pl = sizeof prefix - 1;
	if (record == NULL || strncmp(record, prefix, pl) != 0)
		return -1;
	const char *p = record + pl;
	/* <iter> */
	unsigned long iter = 0;
	size_t digits = 0;
	while (p[digits] >= '0' && p[digits] <= '9') {
		if (digits >= 9)
			return -1;
		iter = iter * 10 + (unsigned long)(p[digits] - '0');
		digits++;
	}
	if (digits == 0 || p[0] == '0' || p[digits] != ':' || iter > SASL_SCRAM_ITER_MAX)
		return -1;
	p += digits + 1;
	const char *dollar = strchr(p, '$');
	if (dollar == NULL)
		return -1;
	/* <salt b64> */
	unsigned char salt[96];
	size_t sl = (size_t)(dollar - p);
	if (sl > 128)
		return -1;
	long saltn = base64_decode(p, sl, salt, sizeof salt);
	if (saltn <= 0 || saltn > (long)sizeof k->salt)
		return -1;
	p = dollar + 1;
	const char *colon = strchr(p, ':');
	if (colon == NULL)
		return -1;
	memset(k, 0, sizeof *k);
	if (!decode_exact(p, (size_t)(colon - p), k->stored_key, 32) ||
	    !decode_exact(colon + 1, strlen(colon + 1), k->server_key, 32))
		return -1;
	k->iterations = (unsigned)iter;
	memcpy(k->salt, salt, (size_t)saltn);
	k->salt_len = (size_t)saltn;
	return 0;
}
