/*
 * mta-sts-fetch.c - the HTTPS fetch of an MTA-STS policy (see
 * mta-sts-fetch.h).
 *
 * Layer src/queue: uses libcurl (OpenSSL flavour, so that ca_file can be
 * added to the system store through CURLOPT_SSL_CTX_FUNCTION) and
 * libevent.  The thread owns nothing but the transfer: it fills the
 * result fields of struct mtasts_fetch, then writes one byte into a
 * pipe; the loop side reads it, joins the thread and calls back.  A cancel
 * raises a flag that curl's progress callback sees (at least once a
 * second), so the join is short.
 */
#include "mta-sts-fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "log.h"
#include "mta-sts.h"
#include "netaddr.h"
#include "xalloc.h"

struct mtasts_fetch {
	struct event *ev;
	int pipe[2];
	pthread_t th;
	atomic_bool cancel;
	mtasts_fetch_cb cb;
	void *ctx;
	/* inputs */
	char url[400];
	char resolve[400];
	char ca_file[4096];
	unsigned timeout_s;
	/* outputs (written by the thread before its byte) */
	struct buf body;
	bool too_big;
	bool ok;
	char why[600];
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal(1, "curl_global_init failed");
}

void mtasts_fetch_init(void)
{
	pthread_once(&init_once, global_init);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct mtasts_fetch *f = arg;
	size_t n = size * nmemb;
	if (buf_append(&f->body, p, n) < 0) {
		f->too_big = true;
		return 0; /* curl aborts with CURLE_WRITE_ERROR */
	}
	return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	struct mtasts_fetch *f = arg;
	return atomic_load(&f->cancel) ? 1 : 0;
}

/* The system store stays (curl's default CA bundle); ca_file is added. */
static CURLcode on_ssl_ctx(CURL *curl, void *sslctx, void *arg)
{
	(void)curl;
	struct mtasts_fetch *f = arg;
	if (f->ca_file[0] && SSL_CTX_load_verify_locations(sslctx, f->ca_file, NULL) != 1)
		return CURLE_SSL_CACERT_BADFILE;
	return CURLE_OK;
}

/* "text/plain", "text/plain; charset=utf-8": 3.2 ignores the parameters. */
static bool text_plain(const char *ct)
{
	static const char tp[] = "text/plain";
	if (ct == NULL || strncasecmp(ct, tp, sizeof tp - 1) != 0)
		return false;
	char c = ct[sizeof tp - 1];
	return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

static void run_transfer(struct mtasts_fetch *f)
{
	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(f->why, sizeof f->why, "cannot fetch %.300s: out of memory", f->url);
		return;
	}
	char cerr[CURL_ERROR_SIZE] = "";
	struct curl_slist *res = curl_slist_append(NULL, f->resolve);
	curl_easy_setopt(c, CURLOPT_URL, f->url);
	curl_easy_setopt(c, CURLOPT_RESOLVE, res);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* 3.3: never */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, f);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)f->timeout_s);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)f->timeout_s);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "Tern (MTA-STS)");
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	char *ct = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	if (f->too_big)
		snprintf(f->why, sizeof f->why, "%.300s is larger than %d bytes", f->url,
			 MTASTS_POLICY_MAX);
	else if (rc != CURLE_OK)
		snprintf(f->why, sizeof f->why, "cannot fetch %.300s: %.200s", f->url,
			 cerr[0] ? cerr : curl_easy_strerror(rc));
	else if (code != 200)
		snprintf(f->why, sizeof f->why, "%.300s answered HTTP %ld, not 200", f->url, code);
	else if (!text_plain(ct))
		snprintf(f->why, sizeof f->why, "%.300s is served as %.100s, not text/plain", f->url,
			 ct ? ct : "(no Content-Type)");
	else
		f->ok = true;
	curl_easy_cleanup(c);
	curl_slist_free_all(res);
}

static void *fetch_thread(void *arg)
{
	struct mtasts_fetch *f = arg;
	run_transfer(f);
	char one = 1;
	ssize_t w;
	do
		w = write(f->pipe[1], &one, 1);
	while (w < 0 && errno == EINTR);
	return NULL;
}

static void fetch_free(struct mtasts_fetch *f)
{
	event_free(f->ev);
	close(f->pipe[0]);
	close(f->pipe[1]);
	buf_free(&f->body);
	free(f);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct mtasts_fetch *f = arg;
	pthread_join(f->th, NULL);
	struct mtasts_fetch_result r = {f->ok, f->body.data ? f->body.data : "", f->body.len, ""};
	snprintf(r.why, sizeof r.why, "%s", f->why);
	mtasts_fetch_cb cb = f->cb;
	void *ctx = f->ctx;
	/* The body stays alive through the callback. */
	struct buf body = f->body;
	buf_init(&f->body, 0);
	fetch_free(f);
	cb(ctx, &r);
	buf_free(&body);
}

struct mtasts_fetch *mtasts_fetch_start(struct event_base *base, const char *domain,
					 uint16_t port, const struct sockaddr *addr,
					 const char *ca_file, unsigned timeout_s,
					 mtasts_fetch_cb cb, void *ctx, char *err, size_t errsz)
{
	mtasts_fetch_init();
	struct mtasts_fetch *f = xcalloc(1, sizeof *f);
	f->cb = cb;
	f->ctx = ctx;
	f->timeout_s = timeout_s ? timeout_s : 60;
	atomic_init(&f->cancel, false);
	buf_init(&f->body, MTASTS_POLICY_MAX);
	char ip[64], portpart[8] = "";
	bool lo;
	netaddr_format(addr, ip, sizeof ip, &lo);
	if (port != 443)
		snprintf(portpart, sizeof portpart, ":%u", (unsigned)port);
	snprintf(f->url, sizeof f->url, "https://mta-sts.%s%s/.well-known/mta-sts.txt", domain,
		 portpart);
	snprintf(f->resolve, sizeof f->resolve,
		 addr->sa_family == AF_INET6 ? "mta-sts.%s:%u:[%s]" : "mta-sts.%s:%u:%s", domain,
		 (unsigned)port, ip);
	snprintf(f->ca_file, sizeof f->ca_file, "%s", ca_file ? ca_file : "");
	if (pipe2(f->pipe, O_CLOEXEC) < 0) {
		snprintf(err, errsz, "pipe: %s", strerror(errno));
		buf_free(&f->body);
		free(f);
		return NULL;
	}
	f->ev = event_new(base, f->pipe[0], EV_READ, on_done, f);
	if (f->ev == NULL)
		fatal(1, "out of memory (event)");
	int e = pthread_create(&f->th, NULL, fetch_thread, f);
	if (e != 0) {
		snprintf(err, errsz, "cannot start a thread: %s", strerror(e));
		fetch_free(f);
		return NULL;
	}
	event_add(f->ev, NULL);
	return f;
}

void mtasts_fetch_cancel(struct mtasts_fetch **fp)
{
	if (fp == NULL || *fp == NULL)
		return;
	struct mtasts_fetch *f = *fp;
	atomic_store(&f->cancel, true);
	pthread_join(f->th, NULL);
	fetch_free(f);
	*fp = NULL;
}
