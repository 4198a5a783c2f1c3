/*
 * http-conn.h - one HTTP/1.1 connection (RFC 9112) over a bufferevent,
 * read with http-wire, and the request/response API its handlers use.
 *
 * Not serving yet: http-server.c still runs on evhttp (docs/http.md,
 * "Connection layer").
 *
 * A connection reads one request at a time: pipelined requests wait in
 * the input buffer and are answered in order.  Keep-alive follows RFC 9112
 * 9.3 (HTTP/1.1 keeps, HTTP/1.0 and "Connection: close" close).  Bad input
 * is answered with 400/413/414/417/431/501/505 and the connection closes.
 * The handler answers with http_req_reply, or streams with
 * http_req_stream_*; a handler that returns without answering holds the
 * request and answers later from another event.  A connection is freed
 * only once its output has been written (over TLS too), then after a
 * short lingering read so that the client sees the answer, not a reset.
 */
#ifndef TERN_HTTP_CONN_H
#define TERN_HTTP_CONN_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http-wire.h"

struct bufferevent;
struct http_conn;
struct http_req;

struct http_conn_limits {
	size_t max_head;         /* request line + headers, bytes (431/414) */
	uint64_t max_body;       /* body bytes (413) */
	unsigned read_timeout_s; /* a started request must be in by then; 0: none */
	unsigned idle_timeout_s; /* no request started for this long: close; 0: none */
};

/* Called with each complete request. */
typedef void (*http_conn_handler_fn)(struct http_req *req, void *arg);
/* Makes the connection's bufferevent with no socket yet (the connection
 * sets it), e.g. tls_accept_later; NULL in the config: a plain one. */
typedef struct bufferevent *(*http_conn_bev_fn)(struct event_base *base, void *arg);

struct http_conn_config {
	struct http_conn_limits limits;
	http_conn_handler_fn handler;
	http_conn_bev_fn make_bev;
	bool tls;                  /* what http_req_tls reports */
	void (*closed)(void *arg); /* after the connection is freed; may be NULL */
	void *arg;                 /* given to handler, make_bev and closed */
};

/* Takes fd (closed with the connection).  Returns NULL (fd closed) when
 * no bufferevent could be made.  cfg is copied. */
struct http_conn *http_conn_new(struct event_base *base, evutil_socket_t fd,
				const struct sockaddr *sa, socklen_t salen,
				const struct http_conn_config *cfg);
/* Closes at once, output or not (server shutdown).  A request in hand gets
 * its "gone" callback. */
void http_conn_free(struct http_conn **c);

/* --- the request, valid from the handler until it is answered or gone */

enum http_wire_method http_req_method(const struct http_req *r);
const char *http_req_method_name(const struct http_req *r);
const char *http_req_target(const struct http_req *r);
const char *http_req_path(const struct http_req *r);  /* not decoded */
const char *http_req_query(const struct http_req *r); /* without '?', or NULL */
/* The first header called name (any case), or NULL. */
const char *http_req_header(const struct http_req *r, const char *name);
const char *http_req_body(const struct http_req *r, size_t *len);
const struct sockaddr *http_req_peer(const struct http_req *r, socklen_t *len);
/* The peer's address as text ("192.0.2.1", "2001:db8::1"). */
const char *http_req_peer_text(const struct http_req *r);
bool http_req_tls(const struct http_req *r);

/* Adds a response header for the coming reply or stream (no CR/LF in
 * name or value: such a header is dropped). */
void http_req_add_header(struct http_req *r, const char *name, const char *value);
/* Answers with Content-Length (no body for HEAD, 204 and 304).  The
 * request is over: r is not valid afterwards. */
void http_req_reply(struct http_req *r, int code, const void *body, size_t len);

/* Called once when the client is gone while the request is held or
 * streaming; r is freed right after it returns. */
void http_req_on_gone(struct http_req *r, void (*gone)(struct http_req *r, void *arg), void *arg);
/* Starts a chunked answer (HTTP/1.0: body until close). */
void http_req_stream_start(struct http_req *r, int code);
void http_req_stream_chunk(struct http_req *r, const void *data, size_t len);
/* Ends the stream: r is not valid afterwards. */
void http_req_stream_end(struct http_req *r);
/* Bytes written but not sent yet (to slow down a stream). */
size_t http_req_pending(const struct http_req *r);

/* The reason phrase of a status code ("Not Found"). */
const char *http_conn_reason(int code);

#endif
