/*
 * http-server.c - see http-server.h and docs/http.md.
 *
 * evhttp parses requests (bounded headers and bodies, keep-alive, chunked
 * bodies); what it lacks is a deadline for a whole request: its timeouts
 * are idle timeouts, which a client sending one byte a second never
 * reaches.  So each connection has a timer of its own (struct http_conn):
 * a request must arrive whole within http.timeout of the connection's
 * start or of the previous answer, or the connection is closed.
 */
#include "http-server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "http-parse.h"
#include "http-private.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "strutil.h"
#include "tls.h"
#include "xalloc.h"

struct http_conn {
	struct http_server *srv;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* NULL until attached */
	struct event *timer;
	struct http_conn *prev, *next;
};

struct http_server {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct tls *tls;
	bool https;
	struct evhttp *http;
	struct http_conn *conns;
	size_t n_conns;
	struct evhttp_bound_socket *bound[4];
	size_t n_bound;
	struct http_hook hook; /* handle NULL: none */
	bool admin;            /* the metrics listener: not counted as HTTP */
};

/* ------------------------------------------------------------ connections */

static void conn_free(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	event_free(c->timer);
	free(c);
}

static void conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;
	if (c->srv->hook.closed != NULL)
		c->srv->hook.closed(c->srv->hook.arg, evcon);
	conn_free(c);
}

static void conn_arm(struct http_conn *c)
{
	struct timeval tv = {(time_t)c->srv->cfg->http_timeout, 0};
	evtimer_add(c->timer, &tv);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	if (c->evcon == NULL) {
		/* First run, straight after evhttp made the connection around
		 * our bufferevent (its callback argument): watch its end. */
		void *evcon = NULL;
		bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
		if (evcon == NULL) {
			conn_free(c);
			return;
		}
		c->evcon = evcon;
		evhttp_connection_set_closecb(c->evcon, conn_closed_cb, c);
		/* As for the mail protocols (main.c): no Nagle delay on the
		 * last partial segment of an answer. */
		int one = 1;
		evutil_socket_t sock = bufferevent_getfd(c->bev);
		if (sock >= 0)
			(void)setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		conn_arm(c);
		return;
	}
	/* An answer still going out is evhttp's write timeout's business. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		conn_arm(c);
		return;
	}
	char *ip = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(c->evcon, &ip, &port);
	log_info("http client=%s action=timeout note=\"no whole request within %" PRIu64 "s\"",
		 ip ? ip : "?", c->srv->cfg->http_timeout);
	if (c->srv->hook.abort != NULL)
		c->srv->hook.abort(c->srv->hook.arg, c->evcon);
	evhttp_connection_free(c->evcon); /* calls conn_closed_cb */
}

static struct bufferevent *http_bevcb(struct event_base *base, void *arg)
{
	struct http_server *srv = arg;
	struct bufferevent *bev = srv->https
				      ? tls_accept_later(srv->tls, base)
				      : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	if (!srv->admin)
		metrics_conn(srv->https ? METRICS_L_HTTPS : METRICS_L_HTTP);
	struct http_conn *c = xcalloc(1, sizeof *c);
	c->srv = srv;
	c->bev = bev;
	c->timer = evtimer_new(base, conn_timer_cb, c);
	if (c->timer == NULL) {
		free(c);
		return bev;
	}
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	/* Runs before any I/O on the connection, once evhttp has wrapped the
	 * bufferevent. */
	event_active(c->timer, EV_TIMEOUT, 0);
	return bev;
}

static struct http_conn *conn_of(struct http_server *srv, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	for (struct http_conn *c = srv->conns; c; c = c->next)
		if (c->evcon == evcon)
			return c;
	return NULL;
}

void http_server_hold(struct http_server *srv, struct evhttp_request *req)
{
	struct http_conn *c = conn_of(srv, req);
	if (c == NULL)
		return;
	evtimer_del(c->timer);
	/* no read timeout either (the client sends nothing while it
	 * listens); a write that does not drain still times out */
	struct timeval wtv = {(time_t)srv->cfg->http_timeout, 0};
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
}

/* --------------------------------------------------------------- answers */

static void add_security_headers(struct evhttp_request *req, bool https)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (https)
		evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	/* The web app's (docs/webmail.md): its own script only; inline
	 * styles and https images for sanitized mail in its sandboxed frame,
	 * whose own policy narrows them again. */
	evhttp_add_header(h, "Content-Security-Policy",
			  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
			  "img-src 'self' data: https:; frame-src 'self'; object-src 'none'; "
			  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

void http_reply_text(struct evhttp_request *req, int code, const char *reason, const char *body)
{
	struct evbuffer *b = evbuffer_new();
	if (b == NULL) {
		evhttp_send_reply(req, code, reason, NULL);
		return;
	}
	if (body != NULL)
		evbuffer_add(b, body, strlen(body));
	else
		evbuffer_add_printf(b, "%d %s\n", code, reason);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_remove_header(h, "Content-Type");
	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

void http_xml_escape(struct evbuffer *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			evbuffer_add(b, "&lt;", 4);
			break;
		case '>':
			evbuffer_add(b, "&gt;", 4);
			break;
		case '&':
			evbuffer_add(b, "&amp;", 5);
			break;
		case '"':
			evbuffer_add(b, "&quot;", 6);
			break;
		case '\'':
			evbuffer_add(b, "&apos;", 6);
			break;
		default:
			evbuffer_add(b, s, 1);
		}
	}
}

/* ---------------------------------------------------------- static files */

static int open_beneath(const char *root, const char *rel)
{
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	/* RESOLVE_BENEATH: no "..", absolute symlink or symlink leading out
	 * of the root; symlinks inside it are followed. */
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	int fd = (int)syscall(SYS_openat2, dfd, rel, &how, sizeof how);
	int e = errno;
	close(dfd);
	errno = e;
	return fd;
}

static void serve_static(struct evhttp_request *req, const struct http_ctx *c)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		http_reply_text(req, 405, "Method Not Allowed", NULL);
		return;
	}
	char rel[1024];
	if (c->cfg->http_webroot[0] == '\0' ||
	    http_path_relative(c->path, strlen(c->path), rel, sizeof rel) < 0) {
		http_reply_text(req, 404, "Not Found", NULL);
		return;
	}
	int fd = open_beneath(c->cfg->http_webroot, rel);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		http_reply_text(req, 404, "Not Found", NULL);
		return;
	}
	char etag[96];
	snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)st.st_ino,
		 (uint64_t)st.st_size,
		 (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec);
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	evhttp_add_header(oh, "ETag", etag);
	evhttp_add_header(oh, "Cache-Control", "no-cache");
	const char *inm =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
	if (inm != NULL && (strstr(inm, etag) != NULL || !strcmp(inm, "*"))) {
		close(fd);
		evhttp_send_reply(req, 304, "Not Modified", NULL);
		return;
	}
	evhttp_add_header(oh, "Content-Type", http_content_type(rel));
	/* evhttp sets it for GET; a HEAD answer must carry it too. */
	char clen[32];
	snprintf(clen, sizeof clen, "%" PRIu64, (uint64_t)st.st_size);
	evhttp_add_header(oh, "Content-Length", clen);
	/* evhttp sends whatever body it is given, also for HEAD. */
	bool head = cmd == EVHTTP_REQ_HEAD;
	struct evbuffer *b = evbuffer_new();
	if (b == NULL ||
	    (!head && st.st_size > 0 && evbuffer_add_file(b, fd, 0, st.st_size) < 0)) {
		if (b)
			evbuffer_free(b);
		close(fd);
		http_reply_text(req, 500, "Internal Server Error", NULL);
		return;
	}
	if (head || st.st_size == 0)
		close(fd);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* --------------------------------------------------------------- routing */

unsigned http_listen_port(const char *listen)
{
	char host[256];
	uint16_t port;
	if (listen[0] == '\0' || config_split_hostport(listen, host, sizeof host, &port) < 0)
		return 0;
	return port;
}

static void redirect_https(struct evhttp_request *req, const struct http_ctx *c)
{
	unsigned port = http_listen_port(c->cfg->https_listen);
	const char *uri = evhttp_request_get_uri(req);
	if (uri == NULL || uri[0] != '/' || c->host[0] == '\0') {
		http_reply_text(req, 400, "Bad Request", NULL);
		return;
	}
	struct evbuffer *loc = evbuffer_new();
	if (loc == NULL) {
		http_reply_text(req, 500, "Internal Server Error", NULL);
		return;
	}
	if (port == 443)
		evbuffer_add_printf(loc, "https://%s%s", c->host, uri);
	else
		evbuffer_add_printf(loc, "https://%s:%u%s", c->host, port, uri);
	evbuffer_add(loc, "", 1);
	const char *l = (const char *)evbuffer_pullup(loc, -1);
	/* evhttp refuses header values with CR or LF; the URI has none. */
	evhttp_add_header(evhttp_request_get_output_headers(req), "Location", l);
	http_reply_text(req, 301, "Moved Permanently", NULL);
	evbuffer_free(loc);
}

/* Host without port, lower-cased, into out; "" if absent; -1 if not a
 * valid host name. */
static int request_host(struct evhttp_request *req, char *out, size_t outsz)
{
	out[0] = '\0';
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	if (h == NULL)
		return 0;
	size_t n = strcspn(h, ":");
	if (n > 0 && h[n - 1] == '.')
		n--;
	if (h[0] == '[' || !http_hostname_valid(h, n) || n >= outsz)
		return -1;
	memcpy(out, h, n);
	out[n] = '\0';
	strutil_lower(out, n);
	return 0;
}

/* GET /health on every HTTP listener, before the listener's own paths: a
 * load balancer's check (docs/admin.md "Health checks").  No credentials,
 * nothing about the data beyond what failed. */
static void reply_health(struct evhttp_request *req, const struct http_server *srv)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
		http_reply_text(req, 405, "Method Not Allowed", NULL);
		return;
	}
	struct store_health h;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	if (store_health(srv->store, srv->cfg->health_min_free_space, &h) == 0) {
		http_reply_text(req, 200, "OK", "ok\n");
		return;
	}
	char body[400];
	snprintf(body, sizeof body, "unavailable: %s\n", h.why);
	log_warn("http action=health result=503 reason=\"%s\"", h.why);
	http_reply_text(req, 503, "Service Unavailable", body);
}

static void http_handle(struct evhttp_request *req, void *arg)
{
	struct http_server *srv = arg;
	struct http_conn *conn = conn_of(srv, req);
	if (conn != NULL) /* the next request's deadline runs from now */
		conn_arm(conn);
	add_security_headers(req, srv->https);
	if (srv->https && bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(
			      evhttp_request_get_connection(req))) == NULL) {
		/* No certificate when the connection came: no HTTPS. */
		http_reply_text(req, 503, "Service Unavailable", NULL);
		return;
	}
	char host[256];
	if (request_host(req, host, sizeof host) < 0) {
		http_reply_text(req, 400, "Bad Request", NULL);
		return;
	}
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *rawpath = uri ? evhttp_uri_get_path(uri) : NULL;
	if (rawpath == NULL || rawpath[0] != '/') {
		http_reply_text(req, 400, "Bad Request", NULL);
		return;
	}
	size_t plen = 0;
	char *path = evhttp_uridecode(rawpath, 0, &plen);
	if (path == NULL || strlen(path) != plen) {
		free(path);
		http_reply_text(req, 400, "Bad Request", NULL);
		return;
	}
	if (strcmp(path, "/health") == 0) {
		free(path);
		reply_health(req, srv);
		return;
	}
	struct http_ctx c = {srv->cfg, srv->store, srv->https,
			     host,     path,       evhttp_uri_get_query(uri)};
	if (srv->hook.handle != NULL && srv->hook.handle(srv->hook.arg, req, &c)) {
		free(path);
		return;
	}
	/* evhttp's own bound may be higher for the hook's paths. */
	if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) >
	    srv->cfg->http_max_body_size) {
		free(path);
		http_reply_text(req, 413, "Payload Too Large", NULL);
		return;
	}
	if (!srv->https && srv->cfg->https_listen[0] &&
	    strncmp(path, "/.well-known/acme-challenge/", 28) != 0 &&
	    !http_autoconfig_plain_path(host, path))
		redirect_https(req, &c);
	else if (!http_autoconfig_handle(req, &c))
		serve_static(req, &c);
	free(path);
}

/* ---------------------------------------------------------------- server */

static void apply_config(struct http_server *srv)
{
	evhttp_set_max_headers_size(srv->http, (ev_ssize_t)srv->cfg->http_max_header_size);
	uint64_t body = srv->cfg->http_max_body_size;
	if (srv->hook.configure != NULL) {
		uint64_t h = srv->hook.configure(srv->hook.arg, srv->cfg);
		if (h > body)
			body = h;
	}
	evhttp_set_max_body_size(srv->http, (ev_ssize_t)body);
	evhttp_set_timeout(srv->http, (int)srv->cfg->http_timeout);
}

struct http_server *http_server_new(struct event_base *base, struct store *store,
				    const struct config *cfg)
{
	struct http_server *srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->store = store;
	srv->cfg = cfg;
	srv->http = evhttp_new(base);
	if (srv->http == NULL) {
		log_error("http action=start error=\"cannot create the HTTP server\"");
		exit(1);
	}
	evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
	evhttp_set_default_content_type(srv->http, "text/plain; charset=utf-8");
	evhttp_set_gencb(srv->http, http_handle, srv);
	evhttp_set_bevcb(srv->http, http_bevcb, srv);
	apply_config(srv);
	return srv;
}

void http_server_set_config(struct http_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
	apply_config(srv);
}

void http_server_set_hook(struct http_server *srv, const struct http_hook *hook)
{
	srv->hook = *hook;
	apply_config(srv);
}

void http_server_set_admin(struct http_server *srv)
{
	srv->admin = true;
}

const struct config *http_server_config(const struct http_server *srv)
{
	return srv->cfg;
}

void http_server_set_tls(struct http_server *srv, struct tls *tls, bool implicit)
{
	srv->tls = tls;
	srv->https = implicit;
}

int http_server_listen(struct http_server *srv, struct evconnlistener *l)
{
	if (srv->n_bound == sizeof srv->bound / sizeof srv->bound[0]) {
		evconnlistener_free(l);
		return -1;
	}
	struct evhttp_bound_socket *bs = evhttp_bind_listener(srv->http, l);
	if (bs == NULL) {
		evconnlistener_free(l);
		return -1;
	}
	srv->bound[srv->n_bound++] = bs;
	return 0;
}

void http_server_shutdown(struct http_server *srv, void (*cb)(void *ctx), void *ctx)
{
	for (size_t i = 0; i < srv->n_bound; i++)
		evconnlistener_disable(evhttp_bound_socket_get_listener(srv->bound[i]));
	cb(ctx);
}

size_t http_server_connections(const struct http_server *srv)
{
	return srv->n_conns;
}

void http_server_free(struct http_server **srvp)
{
	struct http_server *srv = *srvp;
	if (srv == NULL)
		return;
	if (srv->hook.release != NULL)
		srv->hook.release(srv->hook.arg);
	memset(&srv->hook, 0, sizeof srv->hook); /* nothing more to tell it */
	evhttp_free(srv->http);                  /* closes connections: conn_closed_cb */
	while (srv->conns)
		conn_free(srv->conns);
	free(srv);
	*srvp = NULL;
}
