/*
 * test-tls.c - the TLS layer: loading and checking certificates (errors
 * name the file), SNI selection, the bundle channel, and real handshakes
 * over a socketpair (policy, SNI, channel bindings).  Certificates are made
 * here with OpenSSL in a temporary folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "test.h"
#include "tls.h"

static char tmpdir[64];

static void path_of(char *out, size_t outsz, const char *rel)
{
	if (snprintf(out, outsz, "%s/%s", tmpdir, rel) >= (int)outsz)
		abort();
}

static void mkdirs(const char *rel)
{
	char p[PATH_MAX];
	path_of(p, sizeof p, rel);
	for (char *s = p + strlen(tmpdir) + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0700);
			*s = '/';
		}
	mkdir(p, 0700);
}

/* Writes DIR/cert.pem (self-signed, CN=cn, ECDSA P-256 with SHA-256) and
 * DIR/key.pem under tmpdir. */
static void make_pair(const char *dir, const char *cn)
{
	mkdirs(dir);
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	CHECK(k != NULL && x != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, k);
	CHECK(X509_sign(x, k, EVP_sha256()) > 0);
	char p[PATH_MAX], rel[512];
	if (snprintf(rel, sizeof rel, "%s/cert.pem", dir) >= (int)sizeof rel)
		abort();
	path_of(p, sizeof p, rel);
	BIO *b = BIO_new_file(p, "w");
	PEM_write_bio_X509(b, x);
	BIO_free(b);
	if (snprintf(rel, sizeof rel, "%s/key.pem", dir) >= (int)sizeof rel)
		abort();
	path_of(p, sizeof p, rel);
	b = BIO_new_file(p, "w");
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	BIO_free(b);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	return remove(path);
}

static void cleanup(void)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	if (tmpdir[0])
		return;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/tern-unit-tls-XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	atexit(cleanup);
	make_pair("default", "mx.example.test");
	make_pair("other", "other.example.test");
	make_pair("sni/mail.example.org", "mail.example.org");
	make_pair("sni/*.example.net", "wild.example.net");
	make_pair("badsni/Not_A_Domain!", "x");
}

/* A config with only the TLS keys set (paths relative to tmpdir, NULL:
 * empty). */
struct tcfg {
	struct config c;
	char cert[PATH_MAX], key[PATH_MAX], sni[PATH_MAX];
};

static struct config *cfg(struct tcfg *t, const char *cert, const char *key, const char *sni)
{
	memset(t, 0, sizeof *t);
	t->c.path = (char *)"test.conf";
	if (cert)
		path_of(t->cert, sizeof t->cert, cert);
	if (key)
		path_of(t->key, sizeof t->key, key);
	if (sni)
		path_of(t->sni, sizeof t->sni, sni);
	t->c.tls_cert = t->cert;
	t->c.tls_key = t->key;
	t->c.tls_sni_dir = t->sni;
	return &t->c;
}

static int load(struct config *c, struct tls_bundle **b, char *err, size_t errsz)
{
	err[0] = '\0';
	return tls_bundle_load(c, NULL, b, err, errsz);
}

TEST(tls_not_configured)
{
	setup();
	struct tcfg t;
	struct tls_bundle *b = (struct tls_bundle *)1;
	char err[1024];
	CHECK_INT(load(cfg(&t, NULL, NULL, NULL), &b, err, sizeof err), 0);
	CHECK(b == NULL);
	struct tls *tls = tls_new();
	CHECK(!tls_available(tls));
	tls_free(&tls);
	CHECK(tls == NULL);
	tls_free(&tls);
}

TEST(tls_load_errors_name_the_file)
{
	setup();
	struct tcfg t;
	struct tls_bundle *b = NULL;
	char err[1024], want[2 * PATH_MAX + 256];

	CHECK_INT(load(cfg(&t, "default/cert.pem", NULL, NULL), &b, err, sizeof err), -1);
	CHECK(strstr(err, "tls.cert and tls.key must be set together") != NULL);

	CHECK_INT(
	    load(cfg(&t, "default/cert.pem", "default/missing.pem", NULL), &b, err, sizeof err),
	    -1);
	snprintf(want, sizeof want, "tls.key = %s: No such file or directory", t.key);
	CHECK_STR(err, want);

	/* a key instead of a certificate: not a PEM certificate */
	CHECK_INT(load(cfg(&t, "default/key.pem", "default/key.pem", NULL), &b, err, sizeof err),
		  -1);
	snprintf(want, sizeof want, "tls.cert = %s: no PEM certificate in the file", t.cert);
	CHECK(strncmp(err, want, strlen(want)) == 0);

	/* a directory */
	CHECK_INT(load(cfg(&t, "default", "default/key.pem", NULL), &b, err, sizeof err), -1);
	CHECK(strstr(err, "not a regular file") != NULL);

	/* the key of another certificate */
	CHECK_INT(load(cfg(&t, "default/cert.pem", "other/key.pem", NULL), &b, err, sizeof err),
		  -1);
	snprintf(want, sizeof want, "tls.key = %s: the key does not match the certificate %s",
		 t.key, t.cert);
	CHECK_STR(err, want);

	/* a certificate as the key */
	CHECK_INT(load(cfg(&t, "default/cert.pem", "default/cert.pem", NULL), &b, err, sizeof err),
		  -1);
	CHECK(strstr(err, "no PEM private key") != NULL);

	/* SNI folder problems */
	CHECK_INT(
	    load(cfg(&t, "default/cert.pem", "default/key.pem", "nowhere"), &b, err, sizeof err),
	    -1);
	CHECK(strstr(err, "tls.sni_dir = ") != NULL && strstr(err, "nowhere") != NULL);
	CHECK_INT(
	    load(cfg(&t, "default/cert.pem", "default/key.pem", "badsni"), &b, err, sizeof err),
	    -1);
	CHECK(strstr(err, "Not_A_Domain!: folder name is not a lower-case domain name") != NULL);
	CHECK(b == NULL);
}

TEST(tls_sni_selection)
{
	setup();
	struct tcfg t;
	struct tls_bundle *b = NULL;
	char err[1024];
	CHECK_INT(load(cfg(&t, "default/cert.pem", "default/key.pem", "sni"), &b, err, sizeof err),
		  1);
	CHECK_INT(tls_bundle_pairs(b), 3);
	struct tls *tls = tls_new();
	CHECK_STR(tls_select_name(tls, "mail.example.org"), ""); /* nothing loaded yet */
	CHECK_INT(tls_set_bundle(tls, b, err, sizeof err), 0);
	CHECK(tls_available(tls));
	CHECK_STR(tls_select_name(tls, "mail.example.org"), "mail.example.org");
	CHECK_STR(tls_select_name(tls, "MAIL.Example.Org."), "mail.example.org");
	CHECK_STR(tls_select_name(tls, "imap.example.net"), "*.example.net");
	CHECK_STR(tls_select_name(tls, "a.b.example.net"), "");
	CHECK_STR(tls_select_name(tls, "example.net"), "");
	CHECK_STR(tls_select_name(tls, "example.org"), "");
	CHECK_STR(tls_select_name(tls, "other.example.com"), "");
	CHECK_STR(tls_select_name(tls, ""), "");
	CHECK_STR(tls_select_name(tls, NULL), "");
	tls_free(&tls);
	tls_bundle_free(&b);
	CHECK(b == NULL);
}

TEST(tls_bundle_channel_roundtrip)
{
	setup();
	struct tcfg t;
	struct tls_bundle *b = NULL, *got = NULL;
	char err[1024];
	CHECK_INT(load(cfg(&t, "default/cert.pem", "default/key.pem", "sni"), &b, err, sizeof err),
		  1);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK_INT(tls_bundle_recv(sv[1], &got, err, sizeof err), 0); /* nothing yet */
	CHECK_INT(tls_bundle_send(b, sv[0], err, sizeof err), 0);
	CHECK_INT(tls_bundle_recv(sv[1], &got, err, sizeof err), 1);
	CHECK_INT(tls_bundle_pairs(got), 3);
	struct tls *tls = tls_new();
	CHECK_INT(tls_set_bundle(tls, got, err, sizeof err), 0);
	CHECK_STR(tls_select_name(tls, "x.example.net"), "*.example.net");
	/* a datagram without a file is refused */
	CHECK(send(sv[0], "T", 1, 0) == 1);
	tls_bundle_free(&got);
	CHECK_INT(tls_bundle_recv(sv[1], &got, err, sizeof err), -1);
	/* the master closing the channel */
	close(sv[0]);
	CHECK_INT(tls_bundle_recv(sv[1], &got, err, sizeof err), -1);
	close(sv[1]);
	tls_free(&tls);
	tls_bundle_free(&b);
}

/* ------------------------------------------------------------ handshakes */

struct hs {
	struct event_base *base;
	struct bufferevent *bev;
	SSL_CTX *cctx;
	SSL *cl;
	int cfd;
	short events;
};

static void hs_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	((struct hs *)ctx)->events |= what;
}

/* Runs a handshake between tls_accept and an OpenSSL client; returns 1 on
 * success, 0 if the client's handshake failed. */
static int handshake(struct hs *h, struct tls *tls, const char *sni, int client_max_version)
{
	memset(h, 0, sizeof *h);
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	h->base = event_base_new();
	h->bev = tls_accept(tls, h->base, sv[0]);
	CHECK(h->bev != NULL);
	bufferevent_setcb(h->bev, NULL, NULL, hs_event_cb, h);
	bufferevent_enable(h->bev, EV_READ | EV_WRITE);
	h->cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(h->cctx, TLS1_VERSION);
	SSL_CTX_set_security_level(h->cctx, 0);
	SSL_CTX_set_cipher_list(h->cctx, "DEFAULT@SECLEVEL=0");
	if (client_max_version)
		SSL_CTX_set_max_proto_version(h->cctx, client_max_version);
	h->cl = SSL_new(h->cctx);
	h->cfd = sv[1];
	SSL_set_fd(h->cl, sv[1]);
	if (sni)
		SSL_set_tlsext_host_name(h->cl, sni);
	for (int i = 0; i < 2000; i++) {
		int r = SSL_connect(h->cl);
		if (r == 1) {
			/* let the server see the client's Finished */
			for (int k = 0; k < 20 && !(h->events & BEV_EVENT_CONNECTED); k++) {
				event_base_loop(h->base, EVLOOP_NONBLOCK);
				usleep(1000);
			}
			return 1;
		}
		int e = SSL_get_error(h->cl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return 0;
		event_base_loop(h->base, EVLOOP_NONBLOCK);
		usleep(500);
	}
	return 0;
}

static void hs_free(struct hs *h)
{
	SSL_free(h->cl);
	SSL_CTX_free(h->cctx);
	close(h->cfd);
	bufferevent_free(h->bev);
	event_base_free(h->base);
}

static void peer_cn(SSL *cl, char *out, size_t outsz)
{
	out[0] = '\0';
	X509 *x = SSL_get1_peer_certificate(cl);
	if (x == NULL)
		return;
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)outsz);
	X509_free(x);
}

static struct tls *loaded_tls(void)
{
	struct tcfg t;
	struct tls_bundle *b = NULL;
	char err[1024];
	CHECK_INT(load(cfg(&t, "default/cert.pem", "default/key.pem", "sni"), &b, err, sizeof err),
		  1);
	struct tls *tls = tls_new();
	CHECK_INT(tls_set_bundle(tls, b, err, sizeof err), 0);
	tls_bundle_free(&b);
	return tls;
}

TEST(tls_handshake_sni_and_info)
{
	setup();
	struct tls *tls = loaded_tls();
	static const struct {
		const char *sni, *cn;
	} cases[] = {
	    {"mail.example.org", "mail.example.org"},
	    {"pop.example.net", "wild.example.net"},
	    {"unknown.example.com", "mx.example.test"},
	    {NULL, "mx.example.test"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct hs h;
		CHECK_INT(handshake(&h, tls, cases[i].sni, 0), 1);
		char cn[256];
		peer_cn(h.cl, cn, sizeof cn);
		CHECK_STR(cn, cases[i].cn);
		CHECK(h.events & BEV_EVENT_CONNECTED);
		struct tls_info ti;
		CHECK(tls_get_info(h.bev, &ti));
		CHECK_STR(ti.version, "TLSv1.3");
		CHECK_STR(ti.cipher, "TLS_AES_256_GCM_SHA384");
		CHECK_STR(ti.sni, cases[i].sni ? cases[i].sni : "");
		hs_free(&h);
	}
	tls_free(&tls);
}

TEST(tls_handshake_policy)
{
	setup();
	struct tls *tls = loaded_tls();
	struct hs h;
	CHECK_INT(handshake(&h, tls, NULL, TLS1_1_VERSION), 0);
	hs_free(&h);
	CHECK_INT(handshake(&h, tls, NULL, TLS1_VERSION), 0);
	hs_free(&h);
	CHECK_INT(handshake(&h, tls, NULL, TLS1_2_VERSION), 1);
	struct tls_info ti;
	CHECK(tls_get_info(h.bev, &ti));
	CHECK_STR(ti.version, "TLSv1.2");
	CHECK_STR(ti.cipher, "ECDHE-ECDSA-AES256-GCM-SHA384");
	hs_free(&h);
	/* a plain bufferevent has no TLS facts */
	struct event_base *base = event_base_new();
	struct bufferevent *plain = bufferevent_socket_new(base, -1, 0);
	CHECK(!tls_get_info(plain, &ti));
	unsigned char cb[EVP_MAX_MD_SIZE];
	CHECK_INT(tls_channel_binding(plain, TLS_BINDING_EXPORTER, cb, sizeof cb), -1);
	bufferevent_free(plain);
	event_base_free(base);
	tls_free(&tls);
}

TEST(tls_channel_bindings)
{
	setup();
	struct tls *tls = loaded_tls();
	struct hs h;
	CHECK_INT(handshake(&h, tls, "mail.example.org", 0), 1);
	unsigned char srv[EVP_MAX_MD_SIZE], cli[EVP_MAX_MD_SIZE];
	/* RFC 9266: both ends export the same 32 octets */
	CHECK_INT(tls_channel_binding(h.bev, TLS_BINDING_EXPORTER, srv, sizeof srv), 32);
	static const char label[] = "EXPORTER-Channel-Binding";
	CHECK(SSL_export_keying_material(h.cl, cli, 32, label, sizeof label - 1, NULL, 0, 1) == 1);
	CHECK(memcmp(srv, cli, 32) == 0);
	/* RFC 5929: SHA-256 (the certificate's signature hash) of the
	 * certificate the client got, the SNI one */
	CHECK_INT(tls_channel_binding(h.bev, TLS_BINDING_SERVER_END_POINT, srv, sizeof srv), 32);
	X509 *x = SSL_get1_peer_certificate(h.cl);
	unsigned int n = 0;
	CHECK(x != NULL && X509_digest(x, EVP_sha256(), cli, &n) == 1 && n == 32);
	CHECK(memcmp(srv, cli, 32) == 0);
	X509_free(x);
	hs_free(&h);
	/* TLS 1.2 with extended master secret: exporter allowed too */
	CHECK_INT(handshake(&h, tls, NULL, TLS1_2_VERSION), 1);
	CHECK_INT(tls_channel_binding(h.bev, TLS_BINDING_EXPORTER, srv, sizeof srv), 32);
	hs_free(&h);
	tls_free(&tls);
}

/* Two workers build their contexts from the same bundle: a session
 * (ticket) from one resumes on the other, in TLS 1.3 and 1.2. */
TEST(tls_ticket_resumes_across_workers)
{
	setup();
	struct tcfg t;
	struct tls_bundle *b = NULL;
	char err[1024];
	CHECK_INT(load(cfg(&t, "default/cert.pem", "default/key.pem", NULL), &b, err, sizeof err),
		  1);
	struct tls *w1 = tls_new(), *w2 = tls_new();
	CHECK_INT(tls_set_bundle(w1, b, err, sizeof err), 0);
	CHECK_INT(tls_set_bundle(w2, b, err, sizeof err), 0);
	int versions[] = {0, TLS1_2_VERSION};
	for (size_t v = 0; v < 2; v++) {
		struct hs h;
		CHECK_INT(handshake(&h, w1, NULL, versions[v]), 1);
		/* TLS 1.3 tickets come after the handshake: let the client read */
		char c;
		for (int i = 0; i < 50 && SSL_get0_session(h.cl) != NULL &&
				!SSL_SESSION_is_resumable(SSL_get0_session(h.cl));
		     i++) {
			SSL_read(h.cl, &c, 1);
			event_base_loop(h.base, EVLOOP_NONBLOCK);
			usleep(1000);
		}
		SSL_SESSION *sess = SSL_get1_session(h.cl);
		CHECK(sess != NULL && SSL_SESSION_is_resumable(sess));
		SSL_shutdown(h.cl); /* else OpenSSL marks the session not resumable */
		hs_free(&h);
		/* the other worker */
		struct hs h2;
		memset(&h2, 0, sizeof h2);
		int sv[2];
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
		h2.base = event_base_new();
		h2.bev = tls_accept(w2, h2.base, sv[0]);
		bufferevent_setcb(h2.bev, NULL, NULL, hs_event_cb, &h2);
		bufferevent_enable(h2.bev, EV_READ | EV_WRITE);
		h2.cctx = SSL_CTX_new(TLS_client_method());
		if (versions[v])
			SSL_CTX_set_max_proto_version(h2.cctx, versions[v]);
		h2.cl = SSL_new(h2.cctx);
		h2.cfd = sv[1];
		SSL_set_fd(h2.cl, sv[1]);
		CHECK(SSL_set_session(h2.cl, sess) == 1);
		int r = 0;
		for (int i = 0; i < 2000 && (r = SSL_connect(h2.cl)) != 1; i++) {
			event_base_loop(h2.base, EVLOOP_NONBLOCK);
			usleep(500);
		}
		CHECK_INT(r, 1);
		CHECK(SSL_session_reused(h2.cl) == 1);
		SSL_SESSION_free(sess);
		hs_free(&h2);
	}
	tls_free(&w1);
	tls_free(&w2);
	tls_bundle_free(&b);
}

TEST(tls_reload_keeps_old_connections)
{
	setup();
	struct tls *tls = loaded_tls();
	struct hs h;
	CHECK_INT(handshake(&h, tls, NULL, 0), 1);
	/* a new default certificate */
	struct tcfg t;
	struct tls_bundle *b = NULL;
	char err[1024];
	CHECK_INT(load(cfg(&t, "other/cert.pem", "other/key.pem", NULL), &b, err, sizeof err), 1);
	CHECK_INT(tls_set_bundle(tls, b, err, sizeof err), 0);
	tls_bundle_free(&b);
	CHECK_STR(tls_select_name(tls, "mail.example.org"), ""); /* no SNI dir any more */
	/* the old connection still works */
	CHECK(SSL_write(h.cl, "ping", 4) == 4);
	for (int i = 0; i < 50 && evbuffer_get_length(bufferevent_get_input(h.bev)) < 4; i++) {
		event_base_loop(h.base, EVLOOP_NONBLOCK);
		usleep(1000);
	}
	CHECK_INT(evbuffer_get_length(bufferevent_get_input(h.bev)), 4);
	hs_free(&h);
	/* a new one gets the new certificate */
	CHECK_INT(handshake(&h, tls, "mail.example.org", 0), 1);
	char cn[256];
	peer_cn(h.cl, cn, sizeof cn);
	CHECK_STR(cn, "other.example.test");
	hs_free(&h);
	tls_free(&tls);
}
