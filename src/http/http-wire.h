/*
 * http-wire.h - HTTP/1.1 requests read off a connection's bytes (RFC 9112),
 * one request at a time.  The parsing itself is libhttp-parser's (Debian
 * libhttp-parser-dev; docs/http.md says why); this is the one file that
 * knows it, so a later move to llhttp (the same callback design) changes
 * http-wire.c only.  What it adds: bounds (head bytes, header count, body
 * size), the request's pieces in one struct, and the status code to answer
 * with when the input is bad.
 *
 * Use: feed the bytes as they come; http_wire_feed says how many it took
 * and what happened.  After HTTP_WIRE_HEAD the method, target and headers
 * are known and the body is not: the caller may set the body's bound and
 * send "100 Continue".  After HTTP_WIRE_DONE the whole request is there
 * and the rest of the input (a pipelined request) stays unread until
 * http_wire_next.  After HTTP_WIRE_ERROR the connection is answered with
 * http_wire_status and closed; the wire takes no more input.
 */
#ifndef TERN_HTTP_WIRE_H
#define TERN_HTTP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The methods Tern may serve; every other method the parser knows is
 * HTTP_WIRE_M_OTHER (its name still in http_wire_req.method_name). */
enum http_wire_method {
	HTTP_WIRE_M_GET,
	HTTP_WIRE_M_HEAD,
	HTTP_WIRE_M_POST,
	HTTP_WIRE_M_PUT,
	HTTP_WIRE_M_DELETE,
	HTTP_WIRE_M_OPTIONS,
	HTTP_WIRE_M_PROPFIND,
	HTTP_WIRE_M_PROPPATCH,
	HTTP_WIRE_M_REPORT,
	HTTP_WIRE_M_MKCOL,
	HTTP_WIRE_M_COPY,
	HTTP_WIRE_M_MOVE,
	HTTP_WIRE_M_OTHER,
};

enum http_wire_event {
	HTTP_WIRE_MORE,  /* every byte taken; the request goes on */
	HTTP_WIRE_HEAD,  /* request line and headers complete */
	HTTP_WIRE_DONE,  /* the whole request is there */
	HTTP_WIRE_ERROR, /* bad input: answer http_wire_status, close */
};

/* More header lines than this: 431. */
#define HTTP_WIRE_MAX_HEADERS 100

struct http_wire_header {
	const char *name;  /* NUL-terminated, as sent (compare without case) */
	const char *value; /* NUL-terminated, blanks around it removed */
	size_t value_len;  /* a value may hold a NUL byte: its real length */
};

/* The request being read; valid from HTTP_WIRE_HEAD until http_wire_next
 * or http_wire_free, owned by the wire. */
struct http_wire_req {
	enum http_wire_method method;
	const char *method_name; /* "GET", "PROPFIND", "M-SEARCH"... */
	const char *target;      /* the request target as sent */
	const char *path;        /* its path, not decoded; "*" for OPTIONS * */
	const char *query;       /* its query without '?', or NULL */
	unsigned version_minor;  /* HTTP/1.x */
	const struct http_wire_header *headers;
	size_t n_headers;
	const char *body; /* NUL-terminated after body_len bytes */
	size_t body_len;
	bool keep_alive;      /* from the version and Connection (valid at DONE) */
	bool expect_continue; /* "Expect: 100-continue" */
	bool chunked;         /* the body comes chunked */
	bool has_length;      /* a Content-Length was sent */
	uint64_t content_length;
};

struct http_wire;

/* max_head: bytes of request line and headers (over it: 431, or 414 when
 * the target alone is over); max_body: the body's bound until the caller
 * changes it (413).  Never NULL. */
struct http_wire *http_wire_new(size_t max_head, uint64_t max_body);
void http_wire_free(struct http_wire **w);

/* Feeds up to len bytes; *used says how many were taken (all of them for
 * HTTP_WIRE_MORE; up to the end of the head or the request for
 * HTTP_WIRE_HEAD and HTTP_WIRE_DONE, so the rest is fed again).  After
 * HTTP_WIRE_DONE nothing is taken until http_wire_next; after
 * HTTP_WIRE_ERROR nothing ever.  len 0 is allowed (returns at once). */
enum http_wire_event http_wire_feed(struct http_wire *w, const char *data, size_t len,
				    size_t *used);
/* The connection's input ended.  Returns true when that cut a request
 * (something of it arrived): answer 400 if still possible, or just close. */
bool http_wire_eof_cuts(const struct http_wire *w);
/* Sets the body's bound of the current request (after HTTP_WIRE_HEAD).
 * Returns false when its Content-Length is already over it: answer 413. */
bool http_wire_set_body_max(struct http_wire *w, uint64_t max_body);
/* The request read so far (after HTTP_WIRE_HEAD), or NULL. */
const struct http_wire_req *http_wire_req(const struct http_wire *w);
/* The code to answer with after HTTP_WIRE_ERROR: 400, 413, 414, 417 (an
 * Expect other than 100-continue), 431, 501 (unknown method or transfer
 * coding) or 505. */
int http_wire_status(const struct http_wire *w);
/* Forgets the request; the wire reads the next one, except after a
 * request without keep-alive: the connection closes after its answer, and
 * a feed returns HTTP_WIRE_ERROR (400) taking nothing. */
void http_wire_next(struct http_wire *w);
/* Any byte of a next request taken yet (a connection with none is idle). */
bool http_wire_started(const struct http_wire *w);

/* The value of the first header called name (any case), or NULL. */
const char *http_wire_header(const struct http_wire_req *r, const char *name);
/* How many headers are called name. */
size_t http_wire_header_count(const struct http_wire_req *r, const char *name);

#endif
