/*
 * http-metrics.c - the admin listener (metrics.listen): GET /metrics in
 * the Prometheus text format 0.0.4, rendered from the shared counters
 * (src/lib/metrics.h) plus what is read at scrape time: the queue from
 * server.db and each process's memory from /proc.
 *
 * It is an HTTP server of its own (http-server.c: the whole-request
 * deadline, TLS when metrics.tls is set) whose hook answers every
 * request, so none of the public routes (autoconfig, static files, JMAP)
 * is reachable on it.  Access: without metrics.password only clients at
 * 127.0.0.1 or ::1 (others get 403: on machines where several instances
 * share loopback under 127.0.0.x, those are other instances); with it,
 * every client must send HTTP Basic for the user "metrics" (401
 * otherwise), compared in constant time.
 */
#include "http-metrics.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "config.h"
#include "http-parse.h"
#include "http-private.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "xalloc.h"

#define METRICS_USER "metrics"
/* The exposition is a few KiB; this bounds it whatever the table holds. */
#define RENDER_MAX (1u << 20)

struct metrics_hook {
	const struct config *cfg;
};

/* True if the connection of req comes from 127.0.0.1 or ::1 (also as
 * ::ffff:127.0.0.1). */
static bool from_loopback(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&ss;
		return ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK;
	}
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)(const void *)&ss)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		static const unsigned char v4lo[16] = {0, 0, 0,    0,    0,   0, 0, 0,
						       0, 0, 0xff, 0xff, 127, 0, 0, 1};
		return memcmp(a->s6_addr, v4lo, 16) == 0;
	}
	return false;
}

/* Equal, in time that depends on neither content nor length: the SHA-256
 * digests are compared. */
static bool secret_equal(const char *a, const char *b)
{
	unsigned char da[32], db[32];
	unsigned int la = 0, lb = 0;
	if (EVP_Digest(a, strlen(a), da, &la, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(b, strlen(b), db, &lb, EVP_sha256(), NULL) != 1 || la != 32 || lb != 32)
		return false;
	return CRYPTO_memcmp(da, db, 32) == 0;
}

/* With metrics.password: do the request's Basic credentials match? */
static bool credentials_ok(struct evhttp_request *req, const char *password)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	char user[64], pass[512];
	if (h == NULL ||
	    http_basic_credentials(h, strlen(h), user, sizeof user, pass, sizeof pass) < 0)
		return false;
	bool ok = strcmp(user, METRICS_USER) == 0;
	ok &= secret_equal(pass, password);
	OPENSSL_cleanse(pass, sizeof pass);
	return ok;
}

static void reply_metrics(struct evhttp_request *req, struct store *store)
{
	struct metrics_snapshot *s = xcalloc(1, sizeof *s);
	if (metrics_snapshot(s) < 0) {
		free(s);
		http_reply_text(req, 503, "Service Unavailable", "no metrics table\n");
		return;
	}
	struct store_queue_stats q;
	char err[256];
	if (store != NULL && store_queue_stats(store, &q, err, sizeof err) == 0) {
		s->queue_known = true;
		s->queue_messages = q.messages;
		s->queue_recipients = q.recipients;
		s->queue_oldest = q.oldest;
	} else if (store != NULL) {
		log_warn("http action=metrics error=\"%s\" note=\"queue gauges left out\"", err);
	}
	struct buf b;
	buf_init(&b, RENDER_MAX);
	int r = metrics_render(s, &b);
	free(s);
	struct evbuffer *body = r == 0 ? evbuffer_new() : NULL;
	if (body == NULL) {
		buf_free(&b);
		http_reply_text(req, 500, "Internal Server Error", NULL);
		return;
	}
	evbuffer_add(body, b.data ? b.data : "", b.len);
	buf_free(&b);
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	evhttp_remove_header(oh, "Content-Type");
	evhttp_add_header(oh, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_add_header(oh, "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", body);
	evbuffer_free(body);
}

static bool metrics_handle(void *arg, struct evhttp_request *req, const struct http_ctx *c)
{
	struct metrics_hook *h = arg;
	const char *password = h->cfg->metrics_password;
	if (password[0] == '\0' && !from_loopback(req)) {
		http_reply_text(
		    req, 403, "Forbidden",
		    "metrics are served to 127.0.0.1 and ::1 only (see metrics.password)\n");
		return true;
	}
	if (password[0] != '\0' && !credentials_ok(req, password)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Basic realm=\"tern metrics\", charset=\"UTF-8\"");
		http_reply_text(req, 401, "Unauthorized", NULL);
		return true;
	}
	if (strcmp(c->path, "/metrics") != 0) {
		http_reply_text(req, 404, "Not Found", NULL);
		return true;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		http_reply_text(req, 405, "Method Not Allowed", NULL);
		return true;
	}
	reply_metrics(req, c->store);
	return true;
}

static uint64_t metrics_configure(void *arg, const struct config *cfg)
{
	struct metrics_hook *h = arg;
	h->cfg = cfg;
	return 0;
}

static void metrics_release(void *arg)
{
	free(arg);
}

struct http_server *http_metrics_new(struct event_base *base, struct store *store,
				     const struct config *cfg)
{
	struct http_server *srv = http_server_new(base, store, cfg);
	http_server_set_admin(srv);
	struct metrics_hook *h = xcalloc(1, sizeof *h);
	h->cfg = cfg;
	struct http_hook hook = {.handle = metrics_handle,
				 .configure = metrics_configure,
				 .release = metrics_release,
				 .arg = h};
	http_server_set_hook(srv, &hook);
	return srv;
}

void http_metrics_set_tls(struct http_server *srv, struct tls *tls)
{
	http_server_set_tls(srv, tls, http_server_config(srv)->metrics_tls);
}
