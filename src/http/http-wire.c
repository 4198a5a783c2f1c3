/*
 * http-wire.c - see http-wire.h.  The only file that includes
 * <http_parser.h>.
 *
 * The parser calls back with pieces (a target or a header may come in
 * several pieces when the input arrives in several reads); the pieces are
 * appended to one buffer, each string closed with a NUL when the next
 * begins, and kept as offsets: the buffer may move while it grows.  The
 * pointers of struct http_wire_req are made once, when the head is
 * complete.  The parser is paused at the end of the head and at the end
 * of the request, so http_parser_execute returns there and what follows
 * stays the caller's.
 */
#include "http-wire.h"

#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "xalloc.h"

/* Bytes a header line costs beyond its name and value (": " and CRLF), so
 * that max_head bounds what the client really sent. */
#define LINE_COST 4

enum piece { PIECE_NONE, PIECE_URL, PIECE_FIELD, PIECE_VALUE };

enum wire_state {
	WIRE_READING,   /* head, or body before the end */
	WIRE_HEAD_SEEN, /* HTTP_WIRE_HEAD returned, body not checked yet */
	WIRE_BODY,      /* body being read */
	WIRE_DONE,
	WIRE_ERROR,
	WIRE_ENDED, /* after a request without keep-alive: nothing more */
};

struct span {
	size_t off, len;
};

struct http_wire {
	http_parser parser;
	http_parser_settings settings;
	size_t max_head;
	uint64_t max_body, body_max_now;
	enum wire_state state;
	int status;
	bool started;
	bool head_done;

	struct buf head; /* target and header strings, NUL-separated */
	size_t head_bytes;
	enum piece last;
	struct span url;
	struct span names[HTTP_WIRE_MAX_HEADERS], values[HTTP_WIRE_MAX_HEADERS];
	size_t n;

	struct buf body;
	char *path; /* the path (and "*") as a string of its own */
	struct http_wire_header hdrs[HTTP_WIRE_MAX_HEADERS];
	struct http_wire_req req;
};

static int fail(struct http_wire *w, int status)
{
	if (w->status == 0)
		w->status = status;
	return -1;
}

/* Closes the string being built (a NUL after it). */
static int close_piece(struct http_wire *w)
{
	if (w->last == PIECE_NONE)
		return 0;
	return buf_putc(&w->head, '\0') < 0 ? fail(w, 431) : 0;
}

static int add_piece(struct http_wire *w, enum piece kind, const char *at, size_t len)
{
	w->head_bytes += len;
	if (w->head_bytes > w->max_head)
		return fail(w, kind == PIECE_URL ? 414 : 431);
	if (kind != w->last) {
		if (close_piece(w) < 0)
			return -1;
		struct span *s = NULL;
		if (kind == PIECE_URL) {
			s = &w->url;
		} else if (kind == PIECE_FIELD) {
			if (w->n == HTTP_WIRE_MAX_HEADERS)
				return fail(w, 431);
			w->head_bytes += LINE_COST;
			if (w->head_bytes > w->max_head)
				return fail(w, 431);
			s = &w->names[w->n++];
		} else {
			s = &w->values[w->n - 1];
		}
		s->off = w->head.len;
		s->len = 0;
		w->last = kind;
	}
	struct span *s = kind == PIECE_URL     ? &w->url
			 : kind == PIECE_FIELD ? &w->names[w->n - 1]
					       : &w->values[w->n - 1];
	if (buf_append(&w->head, at, len) < 0)
		return fail(w, kind == PIECE_URL ? 414 : 431);
	s->len += len;
	return 0;
}

static struct http_wire *wire_of(http_parser *p)
{
	return p->data;
}

static int on_message_begin(http_parser *p)
{
	wire_of(p)->started = true;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	return add_piece(wire_of(p), PIECE_URL, at, len);
}

/* Trailer fields (after a chunked body) come through the same callbacks:
 * they are not kept (no handler reads them, and the head's strings must
 * not move), only counted against the head's bound. */
static int trailer(struct http_wire *w, size_t len)
{
	w->head_bytes += len;
	return w->head_bytes > w->max_head ? fail(w, 431) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_wire *w = wire_of(p);
	if (w->head_done)
		return trailer(w, len + LINE_COST);
	return add_piece(w, PIECE_FIELD, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_wire *w = wire_of(p);
	if (w->head_done)
		return trailer(w, len);
	if (w->last == PIECE_URL || w->n == 0)
		return fail(w, 400);
	return add_piece(w, PIECE_VALUE, at, len);
}

static enum http_wire_method method_of(unsigned m)
{
	switch (m) {
	case HTTP_GET:
		return HTTP_WIRE_M_GET;
	case HTTP_HEAD:
		return HTTP_WIRE_M_HEAD;
	case HTTP_POST:
		return HTTP_WIRE_M_POST;
	case HTTP_PUT:
		return HTTP_WIRE_M_PUT;
	case HTTP_DELETE:
		return HTTP_WIRE_M_DELETE;
	case HTTP_OPTIONS:
		return HTTP_WIRE_M_OPTIONS;
	case HTTP_PROPFIND:
		return HTTP_WIRE_M_PROPFIND;
	case HTTP_PROPPATCH:
		return HTTP_WIRE_M_PROPPATCH;
	case HTTP_REPORT:
		return HTTP_WIRE_M_REPORT;
	case HTTP_MKCOL:
		return HTTP_WIRE_M_MKCOL;
	case HTTP_COPY:
		return HTTP_WIRE_M_COPY;
	case HTTP_MOVE:
		return HTTP_WIRE_M_MOVE;
	default:
		return HTTP_WIRE_M_OTHER;
	}
}

static bool token_in_list(const char *v, const char *token)
{
	size_t tn = strlen(token);
	while (*v) {
		v += strspn(v, " \t,");
		size_t n = strcspn(v, ",");
		size_t e = n;
		while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e == tn && strncasecmp(v, token, tn) == 0)
			return true;
		v += n;
	}
	return false;
}

/* A field name is a token (RFC 9110 5.1); the parser (not built strict)
 * lets blanks through, and "Host : x" must not pass as a header. */
static bool is_token(const char *s, size_t n)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c != 0 && strchr(extra, c) != NULL)))
			return false;
	}
	return true;
}

/* Splits the target into path and query (origin form "/p?q", absolute
 * form "http://h/p?q", "*"). */
static int split_target(struct http_wire *w, const char *t, size_t n)
{
	struct http_wire_req *r = &w->req;
	r->query = NULL;
	if (n == 1 && t[0] == '*') {
		if (r->method != HTTP_WIRE_M_OPTIONS)
			return fail(w, 400);
		w->path = xstrdup("*");
		r->path = w->path;
		return 0;
	}
	if (w->parser.method == HTTP_CONNECT) {
		w->path = xstrdup("");
		r->path = w->path;
		return 0;
	}
	struct http_parser_url u;
	http_parser_url_init(&u);
	if (http_parser_parse_url(t, n, 0, &u) != 0)
		return fail(w, 400);
	if (u.field_set & (1u << UF_PATH)) {
		const char *p = t + u.field_data[UF_PATH].off;
		w->path = xstrndup(p, u.field_data[UF_PATH].len);
	} else {
		w->path = xstrdup("/");
	}
	r->path = w->path;
	if (u.field_set & (1u << UF_QUERY))
		r->query = t + u.field_data[UF_QUERY].off; /* to the target's end */
	if (u.field_set & (1u << UF_FRAGMENT))
		return fail(w, 400); /* never sent by a client (RFC 9112 3.2) */
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_wire *w = wire_of(p);
	if (p->http_major != 1)
		return fail(w, 505);
	if (close_piece(w) < 0)
		return -1;
	if (w->last == PIECE_FIELD)
		return fail(w, 400); /* a name without value */
	w->last = PIECE_NONE;
	struct http_wire_req *r = &w->req;
	char *base = w->head.data;
	if (base == NULL || w->url.len == 0)
		return fail(w, 400);
	for (size_t i = 0; i < w->n; i++) {
		if (!is_token(base + w->names[i].off, w->names[i].len))
			return fail(w, 400);
		char *v = base + w->values[i].off;
		size_t vn = w->values[i].len;
		while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
			vn--;
		v[vn] = '\0';
		w->hdrs[i].name = base + w->names[i].off;
		w->hdrs[i].value = v;
		w->hdrs[i].value_len = vn;
	}
	r->headers = w->hdrs;
	r->n_headers = w->n;
	r->method = method_of(p->method);
	r->method_name = http_method_str((enum http_method)p->method);
	r->target = base + w->url.off;
	r->version_minor = p->http_minor;
	if (split_target(w, r->target, w->url.len) < 0)
		return -1;
	/* Two Host fields make the target ambiguous (RFC 9112 3.2). */
	if (http_wire_header_count(r, "Host") > 1)
		return fail(w, 400);
	const char *ex = http_wire_header(r, "Expect");
	if (ex != NULL) {
		if (strcasecmp(ex, "100-continue") != 0)
			return fail(w, 417); /* RFC 9110 10.1.1 */
		r->expect_continue = p->http_minor >= 1;
	}
	r->chunked = (p->flags & F_CHUNKED) != 0;
	r->has_length = (p->flags & F_CONTENTLENGTH) != 0;
	r->content_length = r->has_length ? p->content_length : 0;
	if (!r->has_length && !r->chunked && http_wire_header(r, "Transfer-Encoding") != NULL)
		return fail(w, 501); /* a coding we cannot undo (RFC 9112 6.1) */
	w->head_done = true;
	w->state = WIRE_HEAD_SEEN;
	http_parser_pause(p, 1);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_wire *w = wire_of(p);
	if ((uint64_t)w->body.len + len > w->body_max_now)
		return fail(w, 413);
	if (buf_append(&w->body, at, len) < 0)
		return fail(w, 413);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_wire *w = wire_of(p);
	if (!w->head_done)
		return fail(w, 400);
	struct http_wire_req *r = &w->req;
	r->body = buf_cstr(&w->body);
	r->body_len = w->body.len;
	/* An Upgrade the server does not take or a CONNECT: what follows is
	 * not HTTP any more, so the connection ends after the answer. */
	r->keep_alive = http_should_keep_alive(p) && !p->upgrade && p->method != HTTP_CONNECT;
	if (r->keep_alive && http_wire_header(r, "Upgrade") != NULL &&
	    token_in_list(http_wire_header(r, "Connection") ? http_wire_header(r, "Connection")
							    : "",
			  "upgrade"))
		r->keep_alive = false;
	w->state = WIRE_DONE;
	http_parser_pause(p, 1);
	return 0;
}

static void wire_reset(struct http_wire *w)
{
	buf_reset(&w->head);
	buf_free(&w->body);
	buf_init(&w->body, 0);
	free(w->path);
	w->path = NULL;
	w->head_bytes = 0;
	w->last = PIECE_NONE;
	w->url = (struct span){0, 0};
	w->n = 0;
	w->started = false;
	w->head_done = false;
	w->body_max_now = w->max_body;
	memset(&w->req, 0, sizeof w->req);
	w->state = WIRE_READING;
}

struct http_wire *http_wire_new(size_t max_head, uint64_t max_body)
{
	struct http_wire *w = xcalloc(1, sizeof *w);
	http_parser_init(&w->parser, HTTP_REQUEST);
	w->parser.data = w;
	http_parser_settings_init(&w->settings);
	w->settings.on_message_begin = on_message_begin;
	w->settings.on_url = on_url;
	w->settings.on_header_field = on_header_field;
	w->settings.on_header_value = on_header_value;
	w->settings.on_headers_complete = on_headers_complete;
	w->settings.on_body = on_body;
	w->settings.on_message_complete = on_message_complete;
	w->max_head = max_head;
	w->max_body = max_body;
	/* strings, their NULs; the bound that counts is head_bytes */
	buf_init(&w->head, max_head + 2 * HTTP_WIRE_MAX_HEADERS + 2);
	buf_init(&w->body, 0);
	wire_reset(w);
	return w;
}

void http_wire_free(struct http_wire **wp)
{
	struct http_wire *w = *wp;
	if (w == NULL)
		return;
	buf_free(&w->head);
	buf_free(&w->body);
	free(w->path);
	free(w);
	*wp = NULL;
}

static int status_of_errno(enum http_errno e)
{
	switch (e) {
	case HPE_HEADER_OVERFLOW:
		return 431;
	case HPE_INVALID_METHOD:
		return 501;
	case HPE_INVALID_TRANSFER_ENCODING:
		return 501;
	default:
		return 400;
	}
}

enum http_wire_event http_wire_feed(struct http_wire *w, const char *data, size_t len, size_t *used)
{
	*used = 0;
	if (w->state == WIRE_ERROR || w->state == WIRE_ENDED)
		return HTTP_WIRE_ERROR;
	if (w->state == WIRE_DONE)
		return HTTP_WIRE_DONE;
	if (w->state == WIRE_HEAD_SEEN) {
		w->state = WIRE_BODY;
		if (w->req.has_length && w->req.content_length > w->body_max_now) {
			w->status = 413;
			w->state = WIRE_ERROR;
			return HTTP_WIRE_ERROR;
		}
	}
	if (len == 0)
		return HTTP_WIRE_MORE;
	http_parser_pause(&w->parser, 0);
	size_t n = http_parser_execute(&w->parser, &w->settings, data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&w->parser);
	*used = n > len ? len : n;
	if (e != HPE_OK && e != HPE_PAUSED) {
		if (w->status == 0)
			w->status = status_of_errno(e);
		w->state = WIRE_ERROR;
		return HTTP_WIRE_ERROR;
	}
	if (w->state == WIRE_DONE)
		return HTTP_WIRE_DONE;
	if (w->state == WIRE_HEAD_SEEN)
		return HTTP_WIRE_HEAD;
	if (w->parser.upgrade && w->head_done) {
		/* The parser stops at the head of a CONNECT; there is no body. */
		on_message_complete(&w->parser);
		return HTTP_WIRE_DONE;
	}
	return HTTP_WIRE_MORE;
}

bool http_wire_eof_cuts(const struct http_wire *w)
{
	return w->started && w->state != WIRE_DONE;
}

bool http_wire_set_body_max(struct http_wire *w, uint64_t max_body)
{
	w->body_max_now = max_body;
	return !(w->req.has_length && w->req.content_length > max_body);
}

const struct http_wire_req *http_wire_req(const struct http_wire *w)
{
	return w->head_done ? &w->req : NULL;
}

int http_wire_status(const struct http_wire *w)
{
	return w->status ? w->status : 400;
}

void http_wire_next(struct http_wire *w)
{
	bool ended = w->state == WIRE_DONE && !w->req.keep_alive;
	wire_reset(w);
	if (ended) {
		/* the parser would read on as a new message (or as the
		 * protocol of an Upgrade): the connection closes instead */
		w->state = WIRE_ENDED;
		w->status = 400;
	}
}

bool http_wire_started(const struct http_wire *w)
{
	return w->started;
}

const char *http_wire_header(const struct http_wire_req *r, const char *name)
{
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

size_t http_wire_header_count(const struct http_wire_req *r, const char *name)
{
	size_t k = 0;
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			k++;
	return k;
}
