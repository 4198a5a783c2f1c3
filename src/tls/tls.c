/*
 * tls.c - TLS contexts, certificates by SNI, reload, and TLS bufferevents
 * for sessions (see tls.h).  Layer: beside src/auth, below the protocols;
 * uses lib (config, buffers, logging), OpenSSL 3 and libevent_openssl.
 *
 * Why a bundle of PEM bytes rather than file names: admins keep private
 * keys root:root 0600, and workers run unprivileged.  The master reads the
 * files (start-up and SIGHUP), the workers build OpenSSL contexts from the
 * bytes.  The same bundle carries the session-ticket key, so every worker
 * can decrypt every other worker's tickets.
 *
 * Why a context set per reload: each SSL object holds references to the
 * contexts it uses, so replacing the set only affects new connections.  The
 * per-domain contexts and the name table hang off the default context (ex
 * data with a free callback), so they live exactly as long as some
 * connection, or the worker, still uses that default context.
 */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <dirent.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "xalloc.h"

/* Largest certificate or key file accepted (a chain is a few KB). */
#define TLS_PEM_MAX ((size_t)1 << 20)
/* Most SNI domains under tls.sni_dir. */
#define TLS_MAX_DOMAINS 4096
/* Session-ticket key: 16 octets name, 32 HMAC, 32 AES (OpenSSL's layout). */
#define TLS_TICKET_KEY_LEN 80
/* Largest serialized bundle accepted from the master. */
#define TLS_BUNDLE_MAX ((size_t)256 << 20)
#define TLS_NAME_MAX 253

/* TLS 1.2: forward secrecy (ECDHE) and AEAD only, strongest first.  TLS 1.3
 * suites are all AEAD; AES-GCM first for hardware AES, ChaCha20 for the
 * rest. */
static const char tls12_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
				    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
static const char tls13_suites[] =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
static const char tls_groups[] = "X25519:P-256";
static const unsigned char bundle_magic[8] = {'T', 'E', 'R', 'N', 'T', 'L', 'S', '1'};

/* One certificate and its key, as read from disk. */
struct tls_pair {
	char *name;      /* "" for the default pair, else the domain folder name */
	char *cert_path; /* for messages */
	char *key_path;
	char *cert_pem;
	size_t cert_len;
	char *key_pem;
	size_t key_len;
};

struct tls_bundle {
	unsigned char ticket_key[TLS_TICKET_KEY_LEN];
	struct tls_pair *pairs; /* pairs[0]: the default (tls.cert / tls.key) */
	size_t n_pairs;
};

/* The per-domain contexts of one load, owned by its default context. */
struct tls_ctxset {
	size_t n;
	char **names;
	SSL_CTX **ctx;
};

struct tls {
	SSL_CTX *ctx; /* default context of the current set; NULL: no TLS */
};

static int ctxset_index = -1;

/* ----------------------------------------------------------------- helpers */

static void ssl_err(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char detail[256] = "unknown error";
	if (e != 0)
		ERR_error_string_n(e, detail, sizeof detail);
	ERR_clear_error();
	snprintf(err, errsz, "%s (%s)", what, detail);
}

/* Encrypted keys are refused: nobody is there to type a pass phrase. */
static int no_password_cb(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

static void pair_free(struct tls_pair *p)
{
	if (p->key_pem != NULL) {
		explicit_bzero(p->key_pem, p->key_len);
		free(p->key_pem);
	}
	free(p->cert_pem);
	free(p->name);
	free(p->cert_path);
	free(p->key_path);
	memset(p, 0, sizeof *p);
}

void tls_bundle_free(struct tls_bundle **bp)
{
	if (bp == NULL || *bp == NULL)
		return;
	struct tls_bundle *b = *bp;
	for (size_t i = 0; i < b->n_pairs; i++)
		pair_free(&b->pairs[i]);
	free(b->pairs);
	explicit_bzero(b->ticket_key, sizeof b->ticket_key);
	free(b);
	*bp = NULL;
}

size_t tls_bundle_pairs(const struct tls_bundle *b)
{
	return b ? b->n_pairs : 0;
}

/* Reads a regular file of at most TLS_PEM_MAX bytes.  key names the config
 * key for the message. */
static char *read_pem_file(const char *key, const char *path, size_t *len, char *err, size_t errsz)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errsz, "%s = %s: %s", key, path, strerror(errno));
		return NULL;
	}
	struct stat st;
	const char *why = NULL;
	if (fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	else if ((uint64_t)st.st_size > TLS_PEM_MAX)
		why = "file too large";
	if (why != NULL) {
		snprintf(err, errsz, "%s = %s: %s", key, path, why);
		close(fd);
		return NULL;
	}
	size_t size = (size_t)st.st_size;
	char *p = xmalloc(size + 1);
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fd, p + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errsz, "%s = %s: %s", key, path, strerror(errno));
			close(fd);
			explicit_bzero(p, size);
			free(p);
			return NULL;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	p[got] = '\0';
	*len = got;
	return p;
}

static int pair_read(struct tls_pair *p, const char *name, const char *cert_key,
		     const char *cert_path, const char *key_key, const char *key_path, char *err,
		     size_t errsz)
{
	memset(p, 0, sizeof *p);
	p->name = xstrdup(name);
	p->cert_path = xstrdup(cert_path);
	p->key_path = xstrdup(key_path);
	p->cert_pem = read_pem_file(cert_key, cert_path, &p->cert_len, err, errsz);
	if (p->cert_pem == NULL)
		return -1;
	p->key_pem = read_pem_file(key_key, key_path, &p->key_len, err, errsz);
	if (p->key_pem == NULL)
		return -1;
	return 0;
}

/* A folder name under tls.sni_dir: a DNS name in lower case, or "*." and
 * one. */
static bool valid_domain_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > TLS_NAME_MAX)
		return false;
	if (s[0] == '*') {
		if (s[1] != '.' || s[2] == '\0')
			return false;
		s += 2;
	}
	size_t label = 0;
	for (const char *c = s; *c; c++) {
		if (*c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		bool ok =
		    (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_';
		if (!ok || ++label > 63)
			return false;
	}
	return label > 0;
}

static int cmp_pair_name(const void *a, const void *b)
{
	return strcmp(((const struct tls_pair *)a)->name, ((const struct tls_pair *)b)->name);
}

/* Reads DIR/DOMAIN/cert.pem and key.pem for every folder DOMAIN of dir. */
static int read_sni_dir(struct tls_bundle *b, const char *dir, char *err, size_t errsz)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errsz, "tls.sni_dir = %s: %s", dir, strerror(errno));
		return -1;
	}
	int r = 0;
	struct dirent *e;
	while (r == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char sub[PATH_MAX];
		struct stat st;
		if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= (int)sizeof sub ||
		    stat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
			continue; /* README files and the like */
		if (!valid_domain_name(e->d_name)) {
			snprintf(err, errsz,
				 "tls.sni_dir: %s: folder name is not a lower-case domain name "
				 "(or *.domain)",
				 sub);
			r = -1;
			break;
		}
		if (b->n_pairs > TLS_MAX_DOMAINS) {
			snprintf(err, errsz, "tls.sni_dir = %s: more than %d domains", dir,
				 TLS_MAX_DOMAINS);
			r = -1;
			break;
		}
		char cert[PATH_MAX], key[PATH_MAX];
		if (snprintf(cert, sizeof cert, "%s/cert.pem", sub) >= (int)sizeof cert ||
		    snprintf(key, sizeof key, "%s/key.pem", sub) >= (int)sizeof key) {
			snprintf(err, errsz, "tls.sni_dir: %s: path too long", sub);
			r = -1;
			break;
		}
		b->pairs = xreallocarray(b->pairs, b->n_pairs + 1, sizeof *b->pairs);
		r = pair_read(&b->pairs[b->n_pairs], e->d_name, "tls.sni_dir", cert, "tls.sni_dir",
			      key, err, errsz);
		b->n_pairs++;
	}
	closedir(d);
	if (r == 0 && b->n_pairs > 2)
		qsort(b->pairs + 1, b->n_pairs - 1, sizeof *b->pairs, cmp_pair_name);
	return r;
}

/* -------------------------------------------------------------- contexts */

static void ctxset_free(struct tls_ctxset *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++) {
		free(set->names[i]);
		SSL_CTX_free(set->ctx[i]);
	}
	free(set->names);
	free(set->ctx);
	free(set);
}

/* OpenSSL calls this when a default context is freed (the last connection
 * using it is gone and a newer set has replaced it). */
static void ctxset_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			   void *argp)
{
	ctxset_free(ptr);
}

static int ensure_index(void)
{
	if (ctxset_index < 0)
		ctxset_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctxset_ex_free);
	return ctxset_index;
}

/* Lower-cases a server name and drops one trailing dot into out.  Returns
 * false for a name we would never match. */
static bool normalize_name(const char *in, char *out, size_t outsz)
{
	size_t n = strlen(in);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n >= outsz || n > TLS_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	out[n] = '\0';
	return true;
}

/* Index in set of the context for servername, or -1 for the default. */
static ssize_t ctxset_match(const struct tls_ctxset *set, const char *servername)
{
	char n[TLS_NAME_MAX + 1];
	if (set == NULL || servername == NULL || !normalize_name(servername, n, sizeof n))
		return -1;
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->names[i], n))
			return (ssize_t)i;
	const char *dot = strchr(n, '.');
	if (dot == NULL || dot[1] == '\0')
		return -1;
	for (size_t i = 0; i < set->n; i++)
		if (set->names[i][0] == '*' && !strcmp(set->names[i] + 1, dot))
			return (ssize_t)i;
	return -1;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
	const struct tls_ctxset *set = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	ssize_t i = ctxset_match(set, name);
	if (i >= 0 && SSL_set_SSL_CTX(ssl, set->ctx[i]) == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	/* An unknown name gets the default certificate. */
	return SSL_TLSEXT_ERR_OK;
}

/* A context with Tern's policy and no certificate. */
static SSL_CTX *ctx_policy(const unsigned char *ticket_key, char *err, size_t errsz)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (c == NULL) {
		ssl_err(err, errsz, "cannot create a TLS context");
		return NULL;
	}
	long opts = SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
		    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF;
	SSL_CTX_set_options(c, (uint64_t)opts);
	if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(c, tls12_ciphers) ||
	    !SSL_CTX_set_ciphersuites(c, tls13_suites) ||
	    !SSL_CTX_set1_groups_list(c, tls_groups) ||
	    !SSL_CTX_set_session_id_context(c, (const unsigned char *)"tern", 4) ||
	    SSL_CTX_set_tlsext_ticket_keys(c, (void *)ticket_key, TLS_TICKET_KEY_LEN) != 1) {
		ssl_err(err, errsz, "cannot set the TLS policy");
		SSL_CTX_free(c);
		return NULL;
	}
	/* Idle connections are the common case (IMAP IDLE): give the 2 x 16 KB
	 * record buffers back while nothing is in flight. */
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	/* One TLS 1.3 ticket per handshake is enough for mail clients. */
	SSL_CTX_set_num_tickets(c, 1);
	/* Resumption is by tickets only: a server-side session cache would be
	 * per worker (a client would resume only if it hit the same one) and
	 * costs memory per session. */
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	return c;
}

/* Loads a pair's certificate chain and key into c, checking that they
 * match. */
static int ctx_use_pair(SSL_CTX *c, const struct tls_pair *p, const char *cert_key,
			const char *key_key, char *err, size_t errsz)
{
	char what[PATH_MAX + 128];
	int r = -1;
	X509 *leaf = NULL;
	EVP_PKEY *pkey = NULL;
	ERR_clear_error();
	BIO *b = BIO_new_mem_buf(p->cert_pem, (int)p->cert_len);
	if (b == NULL)
		goto out;
	leaf = PEM_read_bio_X509_AUX(b, NULL, no_password_cb, NULL);
	if (leaf == NULL) {
		snprintf(what, sizeof what, "%s = %s: no PEM certificate in the file", cert_key,
			 p->cert_path);
		ssl_err(err, errsz, what);
		goto out;
	}
	if (SSL_CTX_use_certificate(c, leaf) != 1) {
		snprintf(what, sizeof what, "%s = %s: certificate not usable", cert_key,
			 p->cert_path);
		ssl_err(err, errsz, what);
		goto out;
	}
	/* The rest of the file: the chain, leaf first (RFC 8446 4.4.2). */
	X509 *x;
	while ((x = PEM_read_bio_X509(b, NULL, no_password_cb, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(c, x) != 1) {
			X509_free(x);
			snprintf(what, sizeof what, "%s = %s: chain certificate not usable",
				 cert_key, p->cert_path);
			ssl_err(err, errsz, what);
			goto out;
		}
	}
	unsigned long e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error(); /* the normal end of the file */
	} else if (e != 0) {
		snprintf(what, sizeof what, "%s = %s: bad PEM data after the first certificate",
			 cert_key, p->cert_path);
		ssl_err(err, errsz, what);
		goto out;
	}
	BIO_free(b);
	b = BIO_new_mem_buf(p->key_pem, (int)p->key_len);
	if (b == NULL)
		goto out;
	pkey = PEM_read_bio_PrivateKey(b, NULL, no_password_cb, NULL);
	if (pkey == NULL) {
		snprintf(what, sizeof what,
			 "%s = %s: no PEM private key in the file (or it is encrypted)", key_key,
			 p->key_path);
		ssl_err(err, errsz, what);
		goto out;
	}
	if (X509_check_private_key(leaf, pkey) != 1) {
		ERR_clear_error();
		snprintf(err, errsz, "%s = %s: the key does not match the certificate %s", key_key,
			 p->key_path, p->cert_path);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(c, pkey) != 1 || SSL_CTX_check_private_key(c) != 1) {
		snprintf(what, sizeof what, "%s = %s: key not usable with %s", key_key, p->key_path,
			 p->cert_path);
		ssl_err(err, errsz, what);
		goto out;
	}
	r = 0;
out:
	if (r < 0 && b == NULL && err[0] == '\0')
		snprintf(err, errsz, "out of memory");
	BIO_free(b);
	X509_free(leaf);
	EVP_PKEY_free(pkey);
	return r;
}

/* Builds the default context and one per SNI domain; the set hangs off the
 * default context.  Returns the default context or NULL (err). */
static SSL_CTX *build_contexts(const struct tls_bundle *b, char *err, size_t errsz)
{
	if (ensure_index() < 0) {
		ssl_err(err, errsz, "cannot register TLS ex data");
		return NULL;
	}
	err[0] = '\0';
	SSL_CTX *def = ctx_policy(b->ticket_key, err, errsz);
	if (def == NULL)
		return NULL;
	if (ctx_use_pair(def, &b->pairs[0], "tls.cert", "tls.key", err, errsz) < 0) {
		SSL_CTX_free(def);
		return NULL;
	}
	struct tls_ctxset *set = xcalloc(1, sizeof *set);
	size_t nd = b->n_pairs - 1;
	set->names = xcalloc(nd ? nd : 1, sizeof *set->names);
	set->ctx = xcalloc(nd ? nd : 1, sizeof *set->ctx);
	if (!SSL_CTX_set_ex_data(def, ctxset_index, set)) {
		ssl_err(err, errsz, "cannot attach the SNI table");
		ctxset_free(set);
		SSL_CTX_free(def);
		return NULL;
	}
	/* From here the set is freed with def. */
	for (size_t i = 1; i < b->n_pairs; i++) {
		SSL_CTX *c = ctx_policy(b->ticket_key, err, errsz);
		if (c == NULL ||
		    ctx_use_pair(c, &b->pairs[i], "tls.sni_dir", "tls.sni_dir", err, errsz) < 0) {
			SSL_CTX_free(c);
			SSL_CTX_free(def);
			return NULL;
		}
		set->names[set->n] = xstrdup(b->pairs[i].name);
		set->ctx[set->n] = c;
		set->n++;
	}
	SSL_CTX_set_tlsext_servername_callback(def, sni_cb);
	SSL_CTX_set_tlsext_servername_arg(def, set);
	return def;
}

/* ---------------------------------------------------------------- bundle */

int tls_bundle_load(const struct config *cfg, const struct tls_bundle *prev,
		    struct tls_bundle **out, char *err, size_t errsz)
{
	*out = NULL;
	bool have_cert = cfg->tls_cert[0] != '\0', have_key = cfg->tls_key[0] != '\0';
	bool have_sni = cfg->tls_sni_dir[0] != '\0';
	if (!have_cert && !have_key && !have_sni)
		return 0;
	if (!have_cert || !have_key) {
		snprintf(err, errsz, "%s: tls.cert and tls.key must be set together%s", cfg->path,
			 have_sni ? " (tls.sni_dir needs them for clients that send no name)" : "");
		return -1;
	}
	struct tls_bundle *b = xcalloc(1, sizeof *b);
	if (prev != NULL)
		memcpy(b->ticket_key, prev->ticket_key, sizeof b->ticket_key);
	else if (fsutil_random(b->ticket_key, sizeof b->ticket_key) < 0) {
		snprintf(err, errsz, "cannot get random bytes: %s", strerror(errno));
		tls_bundle_free(&b);
		return -1;
	}
	b->pairs = xcalloc(1, sizeof *b->pairs);
	b->n_pairs = 1;
	int r = pair_read(&b->pairs[0], "", "tls.cert", cfg->tls_cert, "tls.key", cfg->tls_key, err,
			  errsz);
	if (r == 0 && have_sni)
		r = read_sni_dir(b, cfg->tls_sni_dir, err, errsz);
	if (r == 0) {
		/* Check everything now, so a bad file is an error at start-up
		 * (or a refused reload), never a failed handshake later. */
		SSL_CTX *c = build_contexts(b, err, errsz);
		if (c == NULL)
			r = -1;
		SSL_CTX_free(c);
	}
	if (r < 0) {
		tls_bundle_free(&b);
		return -1;
	}
	*out = b;
	return 1;
}

static int put_u32(struct buf *o, size_t v)
{
	if (v > UINT32_MAX)
		return -1;
	unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};
	return buf_append(o, b, 4);
}

static int put_bytes(struct buf *o, const char *p, size_t n)
{
	if (put_u32(o, n) < 0)
		return -1;
	return n ? buf_append(o, p, n) : 0;
}

/* Layout: magic, ticket key, pair count, then per pair: name, cert path,
 * key path, cert PEM, key PEM (each a 32-bit big-endian length and the
 * bytes). */
static int bundle_serialize(const struct tls_bundle *b, struct buf *o)
{
	int r = buf_append(o, bundle_magic, sizeof bundle_magic);
	r |= buf_append(o, b->ticket_key, sizeof b->ticket_key);
	r |= put_u32(o, b->n_pairs);
	for (size_t i = 0; i < b->n_pairs; i++) {
		const struct tls_pair *p = &b->pairs[i];
		r |= put_bytes(o, p->name, strlen(p->name));
		r |= put_bytes(o, p->cert_path, strlen(p->cert_path));
		r |= put_bytes(o, p->key_path, strlen(p->key_path));
		r |= put_bytes(o, p->cert_pem, p->cert_len);
		r |= put_bytes(o, p->key_pem, p->key_len);
	}
	return r ? -1 : 0;
}

struct reader {
	const unsigned char *p;
	size_t left;
};

static int get_u32(struct reader *rd, size_t *v)
{
	if (rd->left < 4)
		return -1;
	*v = ((size_t)rd->p[0] << 24) | ((size_t)rd->p[1] << 16) | ((size_t)rd->p[2] << 8) |
	     rd->p[3];
	rd->p += 4;
	rd->left -= 4;
	return 0;
}

static char *get_bytes(struct reader *rd, size_t *len)
{
	size_t n;
	if (get_u32(rd, &n) < 0 || n > rd->left)
		return NULL;
	char *s = xmemdup0(rd->p, n);
	rd->p += n;
	rd->left -= n;
	if (len)
		*len = n;
	return s;
}

static struct tls_bundle *bundle_parse(const unsigned char *p, size_t n)
{
	struct reader rd = {p, n};
	if (n < sizeof bundle_magic + TLS_TICKET_KEY_LEN ||
	    memcmp(p, bundle_magic, sizeof bundle_magic) != 0)
		return NULL;
	rd.p += sizeof bundle_magic;
	rd.left -= sizeof bundle_magic;
	struct tls_bundle *b = xcalloc(1, sizeof *b);
	memcpy(b->ticket_key, rd.p, TLS_TICKET_KEY_LEN);
	rd.p += TLS_TICKET_KEY_LEN;
	rd.left -= TLS_TICKET_KEY_LEN;
	size_t np;
	if (get_u32(&rd, &np) < 0 || np == 0 || np > TLS_MAX_DOMAINS + 1) {
		tls_bundle_free(&b);
		return NULL;
	}
	b->pairs = xcalloc(np, sizeof *b->pairs);
	for (size_t i = 0; i < np; i++) {
		struct tls_pair *q = &b->pairs[i];
		b->n_pairs++;
		if ((q->name = get_bytes(&rd, NULL)) == NULL ||
		    (q->cert_path = get_bytes(&rd, NULL)) == NULL ||
		    (q->key_path = get_bytes(&rd, NULL)) == NULL ||
		    (q->cert_pem = get_bytes(&rd, &q->cert_len)) == NULL ||
		    (q->key_pem = get_bytes(&rd, &q->key_len)) == NULL) {
			tls_bundle_free(&b);
			return NULL;
		}
	}
	if (rd.left != 0)
		tls_bundle_free(&b);
	return b;
}

int tls_bundle_send(const struct tls_bundle *b, int sock, char *err, size_t errsz)
{
	struct buf o = BUF_INIT;
	buf_init(&o, TLS_BUNDLE_MAX);
	if (bundle_serialize(b, &o) < 0) {
		snprintf(err, errsz, "TLS bundle too large");
		buf_free(&o);
		return -1;
	}
	int fd = memfd_create("tern-tls", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int r = -1;
	if (fd < 0 || fsutil_write_all(fd, o.data, o.len) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		snprintf(err, errsz, "memfd: %s", strerror(errno));
		goto out;
	}
	char byte = 'T';
	struct iovec iov = {&byte, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr msg = {0};
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof u.buf;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	if (sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
		snprintf(err, errsz, "send: %s", strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (o.data != NULL)
		explicit_bzero(o.data, o.len);
	buf_free(&o);
	return r;
}

int tls_bundle_recv(int sock, struct tls_bundle **out, char *err, size_t errsz)
{
	*out = NULL;
	char byte;
	struct iovec iov = {&byte, 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {0};
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof u.buf;
	ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n <= 0) {
		snprintf(err, errsz, "%s", n == 0 ? "channel closed" : strerror(errno));
		return -1;
	}
	int fd = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof fd);
	if (fd < 0 || (msg.msg_flags & MSG_CTRUNC)) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errsz, "message without a file");
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > TLS_BUNDLE_MAX) {
		close(fd);
		snprintf(err, errsz, "bad bundle file");
		return -1;
	}
	size_t size = (size_t)st.st_size;
	unsigned char *p = xmalloc(size ? size : 1);
	size_t got = 0;
	while (got < size) {
		ssize_t r = pread(fd, p + got, size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	struct tls_bundle *b = got == size ? bundle_parse(p, size) : NULL;
	explicit_bzero(p, size);
	free(p);
	if (b == NULL) {
		snprintf(err, errsz, "malformed bundle");
		return -1;
	}
	*out = b;
	return 1;
}

/* ---------------------------------------------------------------- worker */

struct tls *tls_new(void)
{
	return xcalloc(1, sizeof(struct tls));
}

int tls_set_bundle(struct tls *t, const struct tls_bundle *b, char *err, size_t errsz)
{
	SSL_CTX *c = build_contexts(b, err, errsz);
	if (c == NULL)
		return -1;
	/* Connections made with the old context hold their own references. */
	SSL_CTX_free(t->ctx);
	t->ctx = c;
	return 0;
}

bool tls_available(const struct tls *t)
{
	return t != NULL && t->ctx != NULL;
}

void tls_free(struct tls **tp)
{
	if (tp == NULL || *tp == NULL)
		return;
	SSL_CTX_free((*tp)->ctx);
	free(*tp);
	*tp = NULL;
}

const char *tls_select_name(const struct tls *t, const char *servername)
{
	if (!tls_available(t))
		return "";
	const struct tls_ctxset *set = SSL_CTX_get_ex_data(t->ctx, ctxset_index);
	ssize_t i = ctxset_match(set, servername);
	return i < 0 ? "" : set->names[i];
}

/* ------------------------------------------------------------- sessions */

struct bufferevent *tls_accept(struct tls *t, struct event_base *base, evutil_socket_t fd)
{
	if (!tls_available(t)) {
		evutil_closesocket(fd);
		return NULL;
	}
	SSL *ssl = SSL_new(t->ctx);
	BIO *bio = ssl ? BIO_new_socket((int)fd, BIO_NOCLOSE) : NULL;
	if (bio == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		return NULL;
	}
	SSL_set_bio(ssl, bio, bio);
	/* fd -1: libevent takes the socket from the BIO; with CLOSE_ON_FREE it
	 * frees the SSL and closes the socket when the bufferevent goes. */
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		/* libevent freed the SSL (and its no-close BIO) */
		evutil_closesocket(fd);
		return NULL;
	}
	/* A peer that closes without close_notify is an ordinary EOF: mail
	 * protocols end their own data (".", QUIT), so truncation shows. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct bufferevent *tls_accept_later(struct tls *t, struct event_base *base)
{
	if (!tls_available(t))
		return NULL;
	SSL *ssl = SSL_new(t->ctx);
	if (ssl == NULL)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL; /* libevent freed the SSL */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

struct bufferevent *tls_starttls(struct tls *t, struct bufferevent *plain)
{
	evutil_socket_t fd = bufferevent_getfd(plain);
	struct event_base *base = bufferevent_get_base(plain);
	bufferevent_disable(plain, EV_READ | EV_WRITE);
	/* Drop what the client pipelined after the command (RFC 3207 4.2 /
	 * RFC 2595 4: it must not be acted on), and detach the socket so
	 * freeing the plain bufferevent leaves it open. */
	evbuffer_drain(bufferevent_get_input(plain),
		       evbuffer_get_length(bufferevent_get_input(plain)));
	bufferevent_setfd(plain, -1);
	bufferevent_free(plain);
	if (fd < 0)
		return NULL;
	return tls_accept(t, base, fd);
}

void tls_close_notify(struct bufferevent *bev)
{
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return;
	/* The socket is non-blocking: the alert goes out now or never. */
	(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

static void clean_copy(char *out, size_t outsz, const char *in)
{
	size_t o = 0;
	for (size_t i = 0; in != NULL && in[i] && o + 1 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' || c == '*';
		out[o++] = ok ? (char)c : '?';
	}
	out[o] = '\0';
}

bool tls_get_info(struct bufferevent *bev, struct tls_info *info)
{
	memset(info, 0, sizeof *info);
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return false;
	clean_copy(info->version, sizeof info->version, SSL_get_version(ssl));
	clean_copy(info->cipher, sizeof info->cipher,
		   SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
	clean_copy(info->sni, sizeof info->sni, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	info->resumed = SSL_session_reused(ssl) == 1;
	return true;
}

int tls_session_event(struct bufferevent *bev, short what, bool *pending, const char *proto,
		      const char *id, const char *ip)
{
	if (what & BEV_EVENT_CONNECTED) {
		struct tls_info ti;
		*pending = false;
		if (tls_get_info(bev, &ti))
			log_info("%s session=%s client=%s action=tls version=%s cipher=%s sni=%s "
				 "resumed=%s",
				 proto, id, ip, ti.version, ti.cipher, ti.sni[0] ? ti.sni : "-",
				 ti.resumed ? "yes" : "no");
		return 1;
	}
	if (*pending && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT))) {
		char err[256];
		tls_error_string(bev, err, sizeof err);
		log_info("%s session=%s client=%s action=tls result=failed error=\"%s\"", proto, id,
			 ip, (what & BEV_EVENT_TIMEOUT) ? "timeout" : err);
		return -1;
	}
	return 0;
}

void tls_error_string(struct bufferevent *bev, char *buf, size_t bufsz)
{
	unsigned long e, first = 0;
	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (first == 0)
			first = e;
	if (first != 0) {
		ERR_error_string_n(first, buf, bufsz);
		return;
	}
	int se = EVUTIL_SOCKET_ERROR();
	snprintf(buf, bufsz, "%s", se ? evutil_socket_error_to_string(se) : "connection closed");
}

int tls_channel_binding(struct bufferevent *bev, enum tls_binding type, unsigned char *out,
			size_t outsz)
{
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (ssl == NULL || !SSL_is_init_finished(ssl) || outsz < EVP_MAX_MD_SIZE)
		return -1;
	if (type == TLS_BINDING_EXPORTER) {
		/* RFC 9266 2: label "EXPORTER-Channel-Binding", empty context,
		 * 32 octets; only safe with TLS 1.3 or extended master secret. */
		static const char label[] = "EXPORTER-Channel-Binding";
		if (SSL_version(ssl) < TLS1_3_VERSION && SSL_get_extms_support(ssl) != 1)
			return -1;
		if (SSL_export_keying_material(ssl, out, 32, label, sizeof label - 1, NULL, 0, 1) !=
		    1)
			return -1;
		return 32;
	}
	/* RFC 5929 4.1: hash of our certificate with its signature's hash,
	 * SHA-256 if that is MD5 or SHA-1. */
	X509 *x = SSL_get_certificate(ssl);
	int mdnid = NID_undef;
	if (x == NULL || X509_get_signature_info(x, &mdnid, NULL, NULL, NULL) != 1)
		return -1;
	if (mdnid == NID_md5 || mdnid == NID_sha1)
		mdnid = NID_sha256;
	const EVP_MD *md = EVP_get_digestbynid(mdnid);
	unsigned int len = 0;
	if (md == NULL || X509_digest(x, md, out, &len) != 1)
		return -1;
	return (int)len;
}

/* ------------------------------------------------------------ client side */

/* Outgoing connections (the queue runner's SMTP client, RFC 3207).  The
 * context verifies the peer against the system CA store (and ca_file),
 * but never aborts the handshake on a bad certificate: SMTP between
 * servers is opportunistic (RFC 7435), so an unverified session still
 * encrypts and the caller records the verification result. */
struct tls_client {
	SSL_CTX *ctx;
	unsigned refs;
};

struct tls_client *tls_client_new(const char *ca_file, char *err, size_t errsz)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	if (c == NULL) {
		ssl_err(err, errsz, "cannot create a TLS client context");
		return NULL;
	}
	long opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF;
	SSL_CTX_set_options(c, (uint64_t)opts);
	if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION)) {
		ssl_err(err, errsz, "cannot set the TLS client policy");
		SSL_CTX_free(c);
		return NULL;
	}
	/* A missing system store is not fatal: every certificate is then
	 * "not verified", which opportunistic TLS accepts. */
	if (SSL_CTX_set_default_verify_paths(c) != 1)
		ERR_clear_error();
	if (ca_file != NULL && ca_file[0] != '\0' &&
	    SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1) {
		char what[PATH_MAX + 64];
		snprintf(what, sizeof what, "outbound.ca_file = %s: cannot load", ca_file);
		ssl_err(err, errsz, what);
		SSL_CTX_free(c);
		return NULL;
	}
	/* SSL_VERIFY_NONE still runs the chain and host checks; the result is
	 * read with SSL_get_verify_result after the handshake. */
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
	struct tls_client *tc = xcalloc(1, sizeof *tc);
	tc->ctx = c;
	tc->refs = 1;
	return tc;
}

struct tls_client *tls_client_ref(struct tls_client *tc)
{
	if (tc != NULL)
		tc->refs++;
	return tc;
}

void tls_client_free(struct tls_client **tcp)
{
	if (tcp == NULL || *tcp == NULL)
		return;
	struct tls_client *tc = *tcp;
	*tcp = NULL;
	if (--tc->refs > 0)
		return;
	SSL_CTX_free(tc->ctx);
	free(tc);
}

struct bufferevent *tls_client_start(struct tls_client *tc, struct bufferevent *plain,
				     const char *host)
{
	evutil_socket_t fd = bufferevent_getfd(plain);
	struct event_base *base = bufferevent_get_base(plain);
	bufferevent_disable(plain, EV_READ | EV_WRITE);
	/* Anything the server sent after its 220 was sent before TLS: it
	 * must not be taken as a reply (RFC 3207 5, the STARTTLS injection
	 * attack). */
	evbuffer_drain(bufferevent_get_input(plain),
		       evbuffer_get_length(bufferevent_get_input(plain)));
	bufferevent_setfd(plain, -1);
	bufferevent_free(plain);
	if (fd < 0)
		return NULL;
	char name[TLS_NAME_MAX + 1];
	snprintf(name, sizeof name, "%s", host ? host : "");
	size_t len = strlen(name);
	while (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
	SSL *ssl = SSL_new(tc->ctx);
	BIO *bio = ssl ? BIO_new_socket((int)fd, BIO_NOCLOSE) : NULL;
	if (bio == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		return NULL;
	}
	SSL_set_bio(ssl, bio, bio);
	if (len > 0) {
		/* SNI and the name the certificate must carry (RFC 6125; no
		 * partial wildcards like "m*.example.org"). */
		X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set_tlsext_host_name(ssl, name) != 1 ||
		    X509_VERIFY_PARAM_set1_host(param, name, len) != 1) {
			ERR_clear_error();
			SSL_free(ssl);
			evutil_closesocket(fd);
			return NULL;
		}
	}
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

bool tls_client_verified(struct bufferevent *bev, char *why, size_t whysz)
{
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (whysz > 0)
		why[0] = '\0';
	if (ssl == NULL || !SSL_is_init_finished(ssl)) {
		snprintf(why, whysz, "no TLS session");
		return false;
	}
	X509 *peer = SSL_get0_peer_certificate(ssl);
	if (peer == NULL) {
		snprintf(why, whysz, "no certificate");
		return false;
	}
	long r = SSL_get_verify_result(ssl);
	if (r == X509_V_OK)
		return true;
	snprintf(why, whysz, "%s", X509_verify_cert_error_string(r));
	return false;
}

void tls_send_now(struct bufferevent *bev, const void *data, size_t len)
{
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (ssl == NULL || !SSL_is_init_finished(ssl) || len > INT_MAX)
		return;
	/* Non-blocking socket: the record goes out now or never. */
	(void)SSL_write(ssl, data, (int)len);
	ERR_clear_error();
}
