/*
 * test-http-wire.c - unit tests for src/http/http-wire.c: requests read
 * whole and byte by byte, pipelined requests one at a time, chunked
 * bodies, the bounds and the status of bad input.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http-wire.h"
#include "test.h"

/* Feeds in (step bytes at a time, 0: whole) and writes what was read into
 * out: per request "METHOD path [?query] body-length:body k|c;" and, for
 * HTTP_WIRE_HEAD, "+" ("+100" when it asks to continue); "E<status>" on
 * error, "!" when the input ends inside a request. */
static const char *run(const char *in, size_t step, size_t max_head, uint64_t max_body)
{
	static char out[4096];
	struct buf b = BUF_INIT;
	size_t n = strlen(in);
	/* an exact-length heap copy: ASan sees any read past the end */
	char *copy = malloc(n ? n : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, in, n);
	struct http_wire *w = http_wire_new(max_head, max_body);
	size_t pos = 0, avail = step ? 0 : n;
	for (;;) {
		if (step && avail < pos + step && avail < n)
			avail = pos + step < n ? pos + step : n;
		size_t used = 0;
		enum http_wire_event ev = http_wire_feed(w, copy + pos, avail - pos, &used);
		pos += used;
		if (ev == HTTP_WIRE_ERROR) {
			buf_printf(&b, "E%d;", http_wire_status(w));
			break;
		}
		if (ev == HTTP_WIRE_HEAD) {
			const struct http_wire_req *r = http_wire_req(w);
			buf_puts(&b, r->expect_continue ? "+100 " : "+ ");
			continue;
		}
		if (ev == HTTP_WIRE_DONE) {
			const struct http_wire_req *r = http_wire_req(w);
			buf_printf(&b, "%s %s%s%s %zu:%.*s %c;", r->method_name, r->path,
				   r->query ? " ?" : "", r->query ? r->query : "", r->body_len,
				   (int)r->body_len, r->body, r->keep_alive ? 'k' : 'c');
			bool ends = !r->keep_alive;
			http_wire_next(w);
			if (ends && pos == n)
				break; /* the connection closes here */
			continue;
		}
		if (avail == n) {
			if (http_wire_eof_cuts(w))
				buf_puts(&b, "!");
			break;
		}
		if (!step)
			break;
	}
	http_wire_free(&w);
	free(copy);
	snprintf(out, sizeof out, "%s", buf_cstr(&b));
	buf_free(&b);
	return out;
}

/* The same result whole and byte by byte. */
static void same(const char *in, size_t max_head, uint64_t max_body, const char *want)
{
	CHECK_STR(run(in, 0, max_head, max_body), want);
	CHECK_STR(run(in, 1, max_head, max_body), want);
	CHECK_STR(run(in, 7, max_head, max_body), want);
}

TEST(http_wire_requests)
{
	same("GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\n\r\n", 1024, 100, "+ GET /a/b ?x=1&y 0: k;");
	same("GET / HTTP/1.0\r\n\r\n", 1024, 100, "+ GET / 0: c;");
	/* nothing is read after a request that ends the connection */
	same("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1024, 100, "+ GET / 0: c;E400;");
	same("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1024, 100, "+ GET / 0: k;");
	same("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 1024, 100, "+ GET / 0: c;");
	same("POST /api HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 1024, 100,
	     "+ POST /api 5:hello k;");
	/* pipelined: one at a time, in order */
	same("GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nabHEAD /3 "
	     "HTTP/1.1\r\n\r\n",
	     1024, 100, "+ GET /1 0: k;+ POST /2 2:ab k;+ HEAD /3 0: k;");
	same(
	    "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n"
	    "\r\n",
	    1024, 100, "+ POST /c 5:abcde k;");
	/* trailer fields: read and dropped, the head's headers unchanged */
	same("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: v\r\nU: "
	     "w\r\n\r\n",
	     1024, 100, "+ POST /c 3:abc k;");
	same("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: "
	     "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n\r\n",
	     100, 100, "+ E431;");
	same("PROPFIND /dav/ HTTP/1.1\r\nDepth: 1\r\n\r\n", 1024, 100, "+ PROPFIND /dav/ 0: k;");
	same("REPORT /x HTTP/1.1\r\n\r\nMKCOL /y HTTP/1.1\r\n\r\n", 1024, 100,
	     "+ REPORT /x 0: k;+ MKCOL /y 0: k;");
	same("OPTIONS * HTTP/1.1\r\n\r\n", 1024, 100, "+ OPTIONS * 0: k;");
	same("GET http://h.example/p?q HTTP/1.1\r\n\r\n", 1024, 100, "+ GET /p ?q 0: k;");
	same("GET http://h.example HTTP/1.1\r\n\r\n", 1024, 100, "+ GET / 0: k;");
	same("POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz", 1024, 100,
	     "+100 POST /e 1:z k;");
	/* an Upgrade the server does not take: answered, then closed */
	same("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 1024, 100,
	     "+ GET / 0: c;");
	/* input ending inside a request, or between requests */
	same("GET / HTTP/1.1\r\nHost: h\r\n", 1024, 100, "!");
	same("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", 1024, 100, "+ !");
	same("GET / HTTP/1.1\r\n\r\n", 1024, 100, "+ GET / 0: k;");
}

TEST(http_wire_headers)
{
	const char *in = "GET / HTTP/1.1\r\nHost:  h.example \r\nX-A: 1\r\nx-a:2\r\nEmpty:\r\n\r\n";
	struct http_wire *w = http_wire_new(1024, 0);
	size_t used = 0;
	CHECK_INT(http_wire_feed(w, in, strlen(in), &used), HTTP_WIRE_HEAD);
	CHECK_INT((int)used, (int)strlen(in) - 1); /* the last LF is read on resume */
	const struct http_wire_req *r = http_wire_req(w);
	CHECK(r != NULL);
	CHECK_INT(r->method, HTTP_WIRE_M_GET);
	CHECK_INT((int)r->n_headers, 4);
	CHECK_STR(http_wire_header(r, "host"), "h.example");
	CHECK_STR(http_wire_header(r, "X-A"), "1");
	CHECK_INT((int)http_wire_header_count(r, "x-a"), 2);
	CHECK_STR(http_wire_header(r, "Empty"), "");
	CHECK(http_wire_header(r, "Missing") == NULL);
	size_t u2 = 0;
	CHECK_INT(http_wire_feed(w, in + used, strlen(in) - used, &u2), HTTP_WIRE_DONE);
	CHECK_INT((int)(used + u2), (int)strlen(in));
	/* nothing more taken until next */
	CHECK_INT(http_wire_feed(w, "GET", 3, &u2), HTTP_WIRE_DONE);
	CHECK_INT((int)u2, 0);
	http_wire_next(w);
	CHECK(!http_wire_started(w));
	CHECK_INT(http_wire_feed(w, "GET", 3, &u2), HTTP_WIRE_MORE);
	CHECK(http_wire_started(w));
	http_wire_free(&w);
	CHECK(w == NULL);
	http_wire_free(&w);
}

TEST(http_wire_body_bound)
{
	/* Content-Length over the bound: 413 before any body byte */
	same("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 1024, 100, "+ E413;");
	same("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n", 1024, 100, "+ !");
	/* chunked over the bound */
	same("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n0\r\n\r\n", 1024,
	     4, "+ E413;");
	/* the caller raises the bound after the head */
	const char *in = "PUT /u HTTP/1.1\r\nContent-Length: 6\r\n\r\nabcdef";
	struct http_wire *w = http_wire_new(1024, 2);
	size_t used = 0, u2 = 0;
	CHECK_INT(http_wire_feed(w, in, strlen(in), &used), HTTP_WIRE_HEAD);
	CHECK(!http_wire_set_body_max(w, 5));
	CHECK(http_wire_set_body_max(w, 6));
	CHECK_INT(http_wire_feed(w, in + used, strlen(in) - used, &u2), HTTP_WIRE_DONE);
	CHECK_STR(http_wire_req(w)->body, "abcdef");
	CHECK_INT(http_wire_req(w)->method, HTTP_WIRE_M_PUT);
	/* the next request has the wire's own bound again */
	http_wire_next(w);
	const char *in2 = "PUT /u HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
	CHECK_INT(http_wire_feed(w, in2, strlen(in2), &used), HTTP_WIRE_HEAD);
	CHECK_INT(http_wire_feed(w, in2 + used, strlen(in2) - used, &u2), HTTP_WIRE_ERROR);
	CHECK_INT(http_wire_status(w), 413);
	http_wire_free(&w);
}

TEST(http_wire_bad_input)
{
	/* Content-Length with Transfer-Encoding: a smuggling shape */
	same("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	     1024, 100, "E400;");
	same("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 1024, 100,
	     "E400;");
	same("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 1024, 100, "E400;");
	same("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 1024, 100, "E400;");
	same("GET / HTTP/2.0\r\n\r\n", 1024, 100, "E505;");
	same("BREW / HTTP/1.1\r\n\r\n", 1024, 100, "E501;");
	same("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 1024, 100, "E501;");
	same("GET / HTTP/1.1\r\nExpect: tea\r\n\r\n", 1024, 100, "E417;");
	same("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 1024, 100, "E400;");
	same("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 1024, 100, "E400;");
	/* a bare LF ends lines too (RFC 9112 2.2 lets a server take it) */
	same("GET /lf HTTP/1.1\nHost: h\n\n", 1024, 100, "+ GET /lf 0: k;");
	same("GET /#frag HTTP/1.1\r\n\r\n", 1024, 100, "E400;");
	same("GET * HTTP/1.1\r\n\r\n", 1024, 100, "E400;");
	same("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1024, 100, "E501;");
	/* bad input after a good request: the first is answered */
	same("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nA\r\n\r\n", 1024, 100, "+ GET / 0: k;E400;");
	/* a body chunk size that is not hex */
	same("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1024, 100, "+ E400;");
}

TEST(http_wire_head_bound)
{
	char in[2048];
	char target[600];
	memset(target, 'a', sizeof target - 1);
	target[sizeof target - 1] = '\0';
	snprintf(in, sizeof in, "GET /%s HTTP/1.1\r\n\r\n", target);
	same(in, 512, 100, "E414;");
	char want[700];
	snprintf(want, sizeof want, "+ GET /%s 0: k;", target);
	same(in, 700, 100, want);
	snprintf(in, sizeof in, "GET / HTTP/1.1\r\nX: %s\r\n\r\n", target);
	same(in, 512, 100, "E431;");
	/* the header count */
	struct buf b = BUF_INIT;
	buf_puts(&b, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < HTTP_WIRE_MAX_HEADERS; i++)
		buf_printf(&b, "H%d: v\r\n", i);
	buf_puts(&b, "\r\n");
	CHECK_STR(run(buf_cstr(&b), 0, 4096, 0), "+ GET / 0: k;");
	buf_reset(&b);
	buf_puts(&b, "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= HTTP_WIRE_MAX_HEADERS; i++)
		buf_printf(&b, "H%d: v\r\n", i);
	buf_puts(&b, "\r\n");
	CHECK_STR(run(buf_cstr(&b), 0, 4096, 0), "E431;");
	CHECK_STR(run(buf_cstr(&b), 1, 4096, 0), "E431;");
	buf_free(&b);
}
