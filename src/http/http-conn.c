/*
 * http-conn.c - see http-conn.h.
 *
 * States: READING (a request being read, or none yet), BUSY (the handler
 * has it: held, or streaming), CLOSING (the last answer being written),
 * LINGER (written, write side shut, input read and dropped until the
 * client closes or a short timer ends).  While BUSY the input is not fed
 * to the wire (pipelined requests wait) and its growth is bounded by a
 * read watermark.  Freeing from inside the handler's call chain is
 * deferred to the end of process(): "depth" counts the frames in it.
 */
#include "http-conn.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "xalloc.h"

/* How long a closing connection reads and drops input before the close. */
#define LINGER_S 2

enum conn_state { C_READING, C_BUSY, C_CLOSING, C_LINGER };

struct http_req {
	struct http_conn *conn;
	const struct http_wire_req *w;
	struct buf headers; /* "Name: value\r\n" lines of the answer */
	bool streaming;
	bool chunked;
	void (*gone)(struct http_req *r, void *arg);
	void *gone_arg;
};

struct http_conn {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;
	struct http_wire *wire;
	struct http_conn_config cfg;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char peer_text[INET6_ADDRSTRLEN];
	enum conn_state state;
	bool timer_for_read; /* the timer runs for a started request */
	bool in_eof;         /* the client's input ended */
	bool free_me;        /* free when process() unwinds */
	int depth;
	struct http_req req;
};

static void process(struct http_conn *c);

const char *http_conn_reason(int code)
{
	switch (code) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 207:
		return "Multi-Status";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return code < 300   ? "OK"
		       : code < 400 ? "Redirect"
		       : code < 500 ? "Client Error"
				    : "Server Error";
	}
}

static void conn_destroy(struct http_conn *c)
{
	struct http_req *r = &c->req;
	if (c->state == C_BUSY && r->gone != NULL) {
		void (*gone)(struct http_req *, void *) = r->gone;
		r->gone = NULL;
		gone(r, r->gone_arg);
	}
	buf_free(&r->headers);
	http_wire_free(&c->wire);
	if (c->timer)
		event_free(c->timer);
	bufferevent_free(c->bev);
	void (*closed)(void *) = c->cfg.closed;
	void *arg = c->cfg.arg;
	free(c);
	if (closed)
		closed(arg);
}

/* Frees now, or when the frames of process() on the stack unwind. */
static void conn_end(struct http_conn *c)
{
	if (c->depth > 0) {
		c->free_me = true;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	conn_destroy(c);
}

void http_conn_free(struct http_conn **cp)
{
	struct http_conn *c = *cp;
	if (c == NULL)
		return;
	*cp = NULL;
	conn_end(c);
}

static void arm(struct http_conn *c, unsigned secs)
{
	if (secs == 0) {
		event_del(c->timer);
		return;
	}
	struct timeval tv = {.tv_sec = (time_t)secs, .tv_usec = 0};
	event_add(c->timer, &tv);
}

/* Output written: shut the write side, read and drop until EOF. */
static void start_linger(struct http_conn *c)
{
	c->state = C_LINGER;
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd >= 0 && !c->cfg.tls)
		shutdown(fd, SHUT_WR);
	if (c->in_eof || c->cfg.tls) {
		/* TLS: the close_notify goes out with the free */
		conn_end(c);
		return;
	}
	evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	arm(c, LINGER_S);
}

/* The last answer is queued: close once it is out. */
static void start_closing(struct http_conn *c)
{
	c->state = C_CLOSING;
	event_del(c->timer);
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		start_linger(c);
}

static void write_head(struct http_conn *c, int code, const struct buf *headers,
		       const char *framing, bool close)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", code, http_conn_reason(code));
	if (headers && headers->len)
		evbuffer_add(out, headers->data, headers->len);
	if (framing)
		evbuffer_add(out, framing, strlen(framing));
	if (close)
		evbuffer_add(out, "Connection: close\r\n", 19);
	evbuffer_add(out, "\r\n", 2);
}

/* Answers bad input and closes. */
static void fail(struct http_conn *c, int code)
{
	char framing[64];
	static const char *const text = "Bad request\n";
	snprintf(framing, sizeof framing, "Content-Type: text/plain\r\nContent-Length: %zu\r\n",
		 strlen(text));
	write_head(c, code, NULL, framing, true);
	evbuffer_add(bufferevent_get_output(c->bev), text, strlen(text));
	start_closing(c);
}

static bool want_close(const struct http_conn *c)
{
	return !c->req.w->keep_alive || c->in_eof;
}

/* The request is answered: the next, or the close. */
static void req_done(struct http_conn *c, bool close)
{
	struct http_req *r = &c->req;
	buf_reset(&r->headers);
	r->w = NULL;
	r->streaming = false;
	r->chunked = false;
	r->gone = NULL;
	r->gone_arg = NULL;
	http_wire_next(c->wire);
	if (close) {
		start_closing(c);
		return;
	}
	c->state = C_READING;
	c->timer_for_read = false;
	arm(c, c->cfg.limits.idle_timeout_s);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
	bufferevent_enable(c->bev, EV_READ);
	if (c->depth == 0)
		process(c);
}

void http_req_reply(struct http_req *r, int code, const void *body, size_t len)
{
	struct http_conn *c = r->conn;
	bool close = want_close(c);
	bool no_body = code == 204 || code == 304 || (code >= 100 && code < 200);
	char framing[48] = "";
	if (!no_body)
		snprintf(framing, sizeof framing, "Content-Length: %zu\r\n", len);
	write_head(c, code, &r->headers, framing, close);
	if (!no_body && r->w->method != HTTP_WIRE_M_HEAD && len > 0)
		evbuffer_add(bufferevent_get_output(c->bev), body, len);
	req_done(c, close);
}

void http_req_stream_start(struct http_req *r, int code)
{
	struct http_conn *c = r->conn;
	r->streaming = true;
	r->chunked = r->w->version_minor >= 1 && r->w->method != HTTP_WIRE_M_HEAD;
	bool close = want_close(c) || !r->chunked;
	write_head(c, code, &r->headers, r->chunked ? "Transfer-Encoding: chunked\r\n" : NULL,
		   close);
}

void http_req_stream_chunk(struct http_req *r, const void *data, size_t len)
{
	if (len == 0 || r->w->method == HTTP_WIRE_M_HEAD)
		return;
	struct evbuffer *out = bufferevent_get_output(r->conn->bev);
	if (r->chunked)
		evbuffer_add_printf(out, "%zx\r\n", len);
	evbuffer_add(out, data, len);
	if (r->chunked)
		evbuffer_add(out, "\r\n", 2);
}

void http_req_stream_end(struct http_req *r)
{
	struct http_conn *c = r->conn;
	bool close = want_close(c) || !r->chunked;
	if (r->chunked)
		evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
	req_done(c, close);
}

size_t http_req_pending(const struct http_req *r)
{
	return evbuffer_get_length(bufferevent_get_output(r->conn->bev));
}

void http_req_on_gone(struct http_req *r, void (*gone)(struct http_req *r, void *arg), void *arg)
{
	r->gone = gone;
	r->gone_arg = arg;
}

static bool header_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

void http_req_add_header(struct http_req *r, const char *name, const char *value)
{
	if (!header_ok(name) || !header_ok(value) || *name == '\0')
		return;
	buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

enum http_wire_method http_req_method(const struct http_req *r)
{
	return r->w->method;
}

const char *http_req_method_name(const struct http_req *r)
{
	return r->w->method_name;
}

const char *http_req_target(const struct http_req *r)
{
	return r->w->target;
}

const char *http_req_path(const struct http_req *r)
{
	return r->w->path;
}

const char *http_req_query(const struct http_req *r)
{
	return r->w->query;
}

const char *http_req_header(const struct http_req *r, const char *name)
{
	return http_wire_header(r->w, name);
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
	*len = r->w->body_len;
	return r->w->body;
}

const struct sockaddr *http_req_peer(const struct http_req *r, socklen_t *len)
{
	*len = r->conn->peer_len;
	return (const struct sockaddr *)&r->conn->peer;
}

const char *http_req_peer_text(const struct http_req *r)
{
	return r->conn->peer_text;
}

bool http_req_tls(const struct http_req *r)
{
	return r->conn->cfg.tls;
}

/* A head is in: the body's bound, "100 Continue". */
static void on_head(struct http_conn *c)
{
	const struct http_wire_req *w = http_wire_req(c->wire);
	if (!c->timer_for_read) {
		c->timer_for_read = true;
		arm(c, c->cfg.limits.read_timeout_s);
	}
	bool body = w->chunked || (w->has_length && w->content_length > 0);
	if (w->expect_continue && body && http_wire_set_body_max(c->wire, c->cfg.limits.max_body))
		evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static void on_request(struct http_conn *c)
{
	struct http_req *r = &c->req;
	r->w = http_wire_req(c->wire);
	c->state = C_BUSY;
	event_del(c->timer);
	/* pipelined input waits; bound how much of it is buffered */
	bufferevent_setwatermark(c->bev, EV_READ, 0, c->cfg.limits.max_head + 4096);
	c->cfg.handler(r, c->cfg.arg);
}

/* Feeds the input to the wire while a request is being read. */
static void process(struct http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	c->depth++;
	while (c->state == C_READING && !c->free_me) {
		size_t n = evbuffer_get_length(in);
		struct evbuffer_iovec v;
		const char *data = "";
		size_t len = 0;
		if (n > 0 && evbuffer_peek(in, -1, NULL, &v, 1) >= 1) {
			data = v.iov_base;
			len = v.iov_len;
		}
		size_t used = 0;
		enum http_wire_event ev = http_wire_feed(c->wire, data, len, &used);
		evbuffer_drain(in, used);
		if (ev == HTTP_WIRE_ERROR) {
			fail(c, http_wire_status(c->wire));
		} else if (ev == HTTP_WIRE_HEAD) {
			on_head(c);
		} else if (ev == HTTP_WIRE_DONE) {
			on_request(c);
		} else {
			if (!c->timer_for_read && http_wire_started(c->wire)) {
				c->timer_for_read = true;
				arm(c, c->cfg.limits.read_timeout_s);
			}
			if (used == 0 || evbuffer_get_length(in) == 0) {
				if (c->in_eof) {
					if (http_wire_eof_cuts(c->wire))
						fail(c, 400);
					else
						start_closing(c);
				}
				break;
			}
		}
	}
	c->depth--;
	if (c->depth == 0 && c->free_me)
		conn_destroy(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct http_conn *c = arg;
	if (c->state == C_LINGER) {
		evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
		return;
	}
	process(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct http_conn *c = arg;
	if (c->state == C_CLOSING)
		start_linger(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct http_conn *c = arg;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		c->in_eof = true;
		if (c->state == C_READING) {
			process(c);
			return;
		}
		if (c->state == C_LINGER) {
			conn_end(c);
			return;
		}
		/* a held request is still answered (the client may only have
		 * shut its write side); a stream's reader is gone */
		if (c->state == C_BUSY && !c->req.streaming)
			return;
		if (c->state == C_CLOSING)
			return;
	}
	conn_end(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct http_conn *c = arg;
	if (c->state == C_READING && c->timer_for_read) {
		fail(c, 408);
		return;
	}
	conn_end(c);
}

static void peer_to_text(struct http_conn *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
	const void *a = NULL;
	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, c->peer_text, sizeof c->peer_text) == NULL)
		snprintf(c->peer_text, sizeof c->peer_text, "local");
}

struct http_conn *http_conn_new(struct event_base *base, evutil_socket_t fd,
				const struct sockaddr *sa, socklen_t salen,
				const struct http_conn_config *cfg)
{
	struct bufferevent *bev = cfg->make_bev
				      ? cfg->make_bev(base, cfg->arg)
				      : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL || bufferevent_setfd(bev, fd) < 0) {
		if (bev)
			bufferevent_free(bev);
		evutil_closesocket(fd);
		return NULL;
	}
	struct http_conn *c = xcalloc(1, sizeof *c);
	c->base = base;
	c->bev = bev;
	c->cfg = *cfg;
	c->timer = evtimer_new(base, timer_cb, c);
	if (c->timer == NULL) {
		bufferevent_free(bev);
		free(c);
		return NULL;
	}
	if (sa != NULL && salen <= sizeof c->peer) {
		memcpy(&c->peer, sa, salen);
		c->peer_len = salen;
	}
	peer_to_text(c);
	c->wire = http_wire_new(cfg->limits.max_head, cfg->limits.max_body);
	c->req.conn = c;
	buf_init(&c->req.headers, 0);
	c->state = C_READING;
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	arm(c, cfg->limits.idle_timeout_s);
	return c;
}
