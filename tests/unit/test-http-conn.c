/*
 * test-http-conn.c - unit tests for src/http/http-conn.c: real connections
 * over socketpairs, the server end an http_conn on a libevent base, the
 * client end read on the same base.  Keep-alive, pipelining, bodies,
 * 100-continue, bad input, HEAD, streams, hold/resume, timeouts and a
 * large answer read whole before the close.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "http-conn.h"
#include "test.h"

enum mode { M_ECHO, M_HOLD, M_STREAM, M_BIG };

static struct {
	struct event_base *base;
	enum mode mode;
	struct http_req *held;
	struct buf got;
	const char *until;
	bool eof;
	bool closed; /* the server's conn was freed */
	bool gone;
	bool want_close; /* closed_cb ends the loop */
	int client;
} t;

#define BIG (2u * 1024 * 1024)

static void gone_cb(struct http_req *r, void *arg)
{
	(void)r;
	(void)arg;
	t.gone = true;
}

static void handler(struct http_req *r, void *arg)
{
	(void)arg;
	size_t blen = 0;
	const char *body = http_req_body(r, &blen);
	if (t.mode == M_HOLD) {
		t.held = r;
		return;
	}
	if (t.mode == M_STREAM) {
		http_req_on_gone(r, gone_cb, NULL);
		http_req_add_header(r, "Content-Type", "text/event-stream");
		http_req_stream_start(r, 200);
		http_req_stream_chunk(r, "a", 1);
		http_req_stream_chunk(r, "bc", 2);
		http_req_stream_end(r);
		return;
	}
	if (t.mode == M_BIG) {
		char *big = malloc(BIG);
		if (big == NULL)
			abort();
		for (size_t i = 0; i < BIG; i++)
			big[i] = (char)('a' + i % 26);
		http_req_reply(r, 200, big, BIG);
		free(big);
		return;
	}
	struct buf b = BUF_INIT;
	const char *q = http_req_query(r);
	buf_printf(&b, "%s %s%s%s [%.*s]", http_req_method_name(r), http_req_path(r), q ? "?" : "",
		   q ? q : "", (int)blen, body);
	http_req_add_header(r, "X-Test", "1");
	http_req_reply(r, 200, b.data, b.len);
	buf_free(&b);
}

static void closed_cb(void *arg)
{
	(void)arg;
	t.closed = true;
	if (t.want_close)
		event_base_loopbreak(t.base);
}

static void client_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	(void)arg;
	char tmp[65536];
	ssize_t n = read(fd, tmp, sizeof tmp);
	if (n > 0) {
		buf_append(&t.got, tmp, (size_t)n);
		if (t.until && strstr(buf_cstr(&t.got), t.until))
			event_base_loopbreak(t.base);
		return;
	}
	t.eof = true;
	event_base_loopbreak(t.base);
}

static void safety_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(t.base);
}

static struct http_conn *setup(enum mode mode, unsigned idle, unsigned readt)
{
	memset(&t, 0, sizeof t);
	signal(SIGPIPE, SIG_IGN); /* tern ignores it too (main.c) */
	t.base = event_base_new();
	t.mode = mode;
	buf_init(&t.got, 0);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	t.client = sv[1];
	struct http_conn_config cfg = {
	    .limits = {.max_head = 1024,
		       .max_body = 4096,
		       .read_timeout_s = readt,
		       .idle_timeout_s = idle},
	    .handler = handler,
	    .closed = closed_cb,
	};
	return http_conn_new(t.base, sv[0], NULL, 0, &cfg);
}

/* Sends s, then runs until the input holds until (NULL: EOF) or 5 s. */
static const char *talk(const char *s, size_t len, const char *until)
{
	if (len && write(t.client, s, len) != (ssize_t)len)
		abort();
	t.until = until;
	if (until && strstr(buf_cstr(&t.got), until))
		return buf_cstr(&t.got);
	struct event *ev = event_new(t.base, t.client, EV_READ | EV_PERSIST, client_cb, NULL);
	struct event *safety = evtimer_new(t.base, safety_cb, NULL);
	struct timeval tv = {5, 0};
	event_add(ev, NULL);
	evtimer_add(safety, &tv);
	if (!t.eof)
		event_base_dispatch(t.base);
	event_free(ev);
	event_free(safety);
	return buf_cstr(&t.got);
}

/* The client saw the end: it closes too, and the server's end is freed
 * (it lingers until then). */
static bool server_closed(void)
{
	if (t.closed)
		return true;
	shutdown(t.client, SHUT_WR);
	t.want_close = true;
	struct event *safety = evtimer_new(t.base, safety_cb, NULL);
	struct timeval tv = {5, 0};
	evtimer_add(safety, &tv);
	event_base_dispatch(t.base);
	event_free(safety);
	return t.closed;
}

static void teardown(struct http_conn *c)
{
	if (!t.closed)
		http_conn_free(&c);
	/* let a deferred free run */
	event_base_loop(t.base, EVLOOP_NONBLOCK);
	close(t.client);
	event_base_free(t.base);
	buf_free(&t.got);
}

static size_t count(const char *s, const char *what)
{
	size_t k = 0;
	for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
		k++;
	return k;
}

#define GET(p) "GET " p " HTTP/1.1\r\nHost: x\r\n\r\n"

TEST(http_conn_keepalive)
{
	struct http_conn *c = setup(M_ECHO, 10, 10);
	CHECK_STR(talk(GET("/a"), strlen(GET("/a")), "[]"),
		  "HTTP/1.1 200 OK\r\nX-Test: 1\r\nContent-Length: 9\r\n\r\nGET /a []");
	talk(GET("/b?x=1"), strlen(GET("/b?x=1")), "x=1 []");
	const char *got = talk(GET("/c"), strlen(GET("/c")), "/c []");
	CHECK_INT(count(got, "HTTP/1.1 200 OK\r\n"), 3);
	CHECK_INT(count(got, "Connection: close"), 0);
	CHECK(strstr(got, "GET /b?x=1 []") != NULL);
	CHECK(!t.eof && !t.closed);
	teardown(c);
}

TEST(http_conn_pipeline)
{
	struct http_conn *c = setup(M_ECHO, 10, 10);
	const char *in =
	    GET("/1") GET("/2") "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	const char *got = talk(in, strlen(in), NULL);
	const char *a = strstr(got, "GET /1 []"), *b = strstr(got, "GET /2 []"),
		   *d = strstr(got, "GET /3 []");
	CHECK(a && b && d && a < b && b < d);
	CHECK_INT(count(got, "Connection: close\r\n"), 1);
	CHECK(t.eof && server_closed());
	teardown(c);
}

TEST(http_conn_chunked_body_and_continue)
{
	struct http_conn *c = setup(M_ECHO, 10, 10);
	const char *h = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			"Expect: 100-continue\r\n\r\n";
	CHECK_STR(talk(h, strlen(h), "\r\n\r\n"), "HTTP/1.1 100 Continue\r\n\r\n");
	const char *body = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
	const char *got = talk(body, strlen(body), "]");
	CHECK(strstr(got, "Content-Length: 16\r\n\r\nPOST /up [abcde]") != NULL);
	/* over the body bound: 413 without 100 Continue, then close */
	teardown(c);
	c = setup(M_ECHO, 10, 10);
	h = "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n";
	got = talk(h, strlen(h), NULL);
	CHECK(strncmp(got, "HTTP/1.1 413 Content Too Large\r\n", 32) == 0);
	CHECK(strstr(got, "100 Continue") == NULL);
	CHECK(t.eof);
	teardown(c);
}

TEST(http_conn_bad_input)
{
	struct http_conn *c = setup(M_ECHO, 10, 10);
	struct buf in = BUF_INIT;
	buf_puts(&in, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	for (int i = 0; i < 2000; i++)
		buf_putc(&in, 'a');
	buf_puts(&in, "\r\n\r\n");
	const char *got = talk(in.data, in.len, NULL);
	CHECK(strncmp(got, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46) == 0);
	CHECK(strstr(got, "Connection: close\r\n") != NULL);
	CHECK(t.eof && server_closed());
	buf_free(&in);
	teardown(c);

	c = setup(M_ECHO, 10, 10);
	const char *clte = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
	got = talk(clte, strlen(clte), NULL);
	CHECK(strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
	CHECK(t.eof && server_closed());
	teardown(c);

	c = setup(M_ECHO, 10, 10);
	const char *unknown = "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n";
	got = talk(unknown, strlen(unknown), NULL);
	CHECK(strncmp(got, "HTTP/1.1 501 Not Implemented\r\n", 30) == 0);
	CHECK(t.eof && server_closed());
	teardown(c);

	c = setup(M_ECHO, 10, 10);
	buf_init(&in, 0);
	buf_puts(&in, "GET /");
	for (int i = 0; i < 2000; i++)
		buf_putc(&in, 'p');
	buf_puts(&in, " HTTP/1.1\r\nHost: x\r\n\r\n");
	got = talk(in.data, in.len, NULL);
	CHECK(strncmp(got, "HTTP/1.1 414 URI Too Long\r\n", 27) == 0);
	buf_free(&in);
	teardown(c);

	c = setup(M_ECHO, 10, 10);
	const char *v2 = "GET / HTTP/2.0\r\nHost: x\r\n\r\n";
	got = talk(v2, strlen(v2), NULL);
	CHECK(strncmp(got, "HTTP/1.1 505 ", 13) == 0);
	teardown(c);
}

TEST(http_conn_head)
{
	struct http_conn *c = setup(M_ECHO, 10, 10);
	const char *h = "HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n" GET("/g");
	const char *got = talk(h, strlen(h), "GET /g []");
	CHECK_STR(got, "HTTP/1.1 200 OK\r\nX-Test: 1\r\nContent-Length: 10\r\n\r\n"
		       "HTTP/1.1 200 OK\r\nX-Test: 1\r\nContent-Length: 9\r\n\r\nGET /g []");
	teardown(c);
}

TEST(http_conn_stream)
{
	struct http_conn *c = setup(M_STREAM, 10, 10);
	const char *got = talk(GET("/s"), strlen(GET("/s")), "0\r\n\r\n");
	CHECK_STR(got, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		       "Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n2\r\nbc\r\n0\r\n\r\n");
	CHECK(!t.closed && !t.gone);
	teardown(c);
	/* HTTP/1.0: no chunks, the end is the close */
	c = setup(M_STREAM, 10, 10);
	got = talk("GET /s HTTP/1.0\r\n\r\n", 19, NULL);
	CHECK_STR(got, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		       "Connection: close\r\n\r\nabc");
	CHECK(t.eof && server_closed());
	teardown(c);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	struct http_req *r = t.held;
	t.held = NULL;
	http_req_reply(r, 202, "later", 5);
}

TEST(http_conn_hold_resume)
{
	struct http_conn *c = setup(M_HOLD, 10, 10);
	/* the second request waits until the first is answered */
	const char *in = GET("/1") GET("/2");
	t.until = "never";
	if (write(t.client, in, strlen(in)) != (ssize_t)strlen(in))
		abort();
	event_base_loop(t.base, EVLOOP_NONBLOCK);
	event_base_loop(t.base, EVLOOP_NONBLOCK);
	CHECK(t.held != NULL);
	CHECK_STR(http_req_path(t.held), "/1");
	struct timeval tv = {0, 1000};
	event_base_once(t.base, -1, EV_TIMEOUT, resume_cb, NULL, &tv);
	const char *got = talk("", 0, "later");
	CHECK_STR(got, "HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nlater");
	CHECK(t.held != NULL);
	CHECK_STR(http_req_path(t.held), "/2");
	/* the client goes away while /2 is held and streaming */
	http_req_on_gone(t.held, gone_cb, NULL);
	http_req_stream_start(t.held, 200);
	close(t.client);
	t.client = -1;
	event_base_dispatch(t.base);
	CHECK(t.gone && t.closed);
	teardown(c);
}

TEST(http_conn_idle_timeout)
{
	struct http_conn *c = setup(M_ECHO, 1, 5);
	const char *got = talk(GET("/"), strlen(GET("/")), "[]");
	CHECK(strstr(got, "GET / []") != NULL);
	talk("", 0, NULL);
	CHECK(t.eof && server_closed());
	teardown(c);
	/* a request never finished: 408 at the read timeout */
	c = setup(M_ECHO, 5, 1);
	got = talk("GET / HTTP/1.1\r\nHost:", 21, NULL);
	CHECK(strncmp(got, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0);
	CHECK(t.eof && server_closed());
	teardown(c);
}

TEST(http_conn_big_close)
{
	struct http_conn *c = setup(M_BIG, 10, 10);
	const char *in = "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	const char *got = talk(in, strlen(in), NULL);
	const char *body = strstr(got, "\r\n\r\n");
	CHECK(body != NULL);
	if (body) {
		body += 4;
		CHECK_INT(t.got.len - (size_t)(body - got), BIG);
		bool ok = true;
		for (size_t i = 0; i < BIG && ok; i++)
			ok = body[i] == (char)('a' + i % 26);
		CHECK(ok);
	}
	CHECK(strstr(got, "Content-Length: 2097152\r\nConnection: close\r\n") != NULL);
	CHECK(t.eof && server_closed());
	teardown(c);
}
