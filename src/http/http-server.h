/*
 * http-server.h - HTTP/1.1 on one worker's event loop (libevent's evhttp;
 * docs/http.md): http.listen (redirects to HTTPS, ACME challenges, client
 * auto-configuration) and https.listen (the same certificates and SNI as
 * the mail ports).  What it serves: Thunderbird autoconfig, Outlook
 * autodiscover, an Apple configuration profile, the MTA-STS policy
 * (http-autoconfig.c) and static files from http.webroot.
 *
 * Unlike the mail protocols, evhttp accepts its own connections: the
 * worker hands it the listener made on the socket the master bound.
 */
#ifndef TERN_HTTP_SERVER_H
#define TERN_HTTP_SERVER_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct store;
struct tls;
struct http_server;

/* What a handler knows about the request beyond evhttp's object. */
struct http_ctx {
	const struct config *cfg;
	struct store *store;
	bool https;        /* arrived over TLS */
	const char *host;  /* Host without port, lower-cased, valid; "" none */
	const char *path;  /* percent-decoded path */
	const char *query; /* raw query string or NULL */
};

/* Sends a short text/plain answer (code and reason, or body when not
 * NULL). */
void http_reply_text(struct evhttp_request *req, int code, const char *reason, const char *body);

/* Port of a listen value ("ADDR:PORT"), or 0 when empty or invalid. */
unsigned http_listen_port(const char *listen);

/* A layer above (src/jmap) serving some paths.  handle is called for
 * every request, after the security headers are set and the Host and
 * path checked, before anything else: it returns true if it answers the
 * request (now, or later from the loop with evhttp_send_reply), false to
 * let the server go on as without it.  configure(arg, cfg) is called with
 * every config (when the hook is set, on reload) and returns the largest
 * body the hook takes: evhttp's bound is the larger of it and
 * http.max_body_size, and paths the hook does not take are held to
 * http.max_body_size.  abort(arg, evcon) is called before the server
 * frees a connection itself (its whole-request timer): the hook must
 * forget every request of evcon it has not answered, without touching
 * them.  closed(arg, evcon) is called when a connection has ended
 * otherwise (the client went away): evhttp has then detached the request
 * still waiting for its answer, which stays valid, and answering it only
 * frees it.  release(arg) is called first thing in http_server_free: the
 * hook forgets (and may free) everything. */
struct http_hook {
	bool (*handle)(void *arg, struct evhttp_request *req, const struct http_ctx *c);
	uint64_t (*configure)(void *arg, const struct config *cfg);
	void (*abort)(void *arg, struct evhttp_connection *evcon);
	void (*closed)(void *arg, struct evhttp_connection *evcon);
	void (*release)(void *arg);
	void *arg;
};
/* Sets the hook (copied); at most one. */
void http_server_set_hook(struct http_server *srv, const struct http_hook *hook);

/* cfg and store stay owned by the caller and outlive the server. */
struct http_server *http_server_new(struct event_base *base, struct store *store,
				    const struct config *cfg);
/* Limits and timeouts of a new config (SIGHUP); listeners stay. */
void http_server_set_config(struct http_server *srv, const struct config *cfg);
/* implicit: HTTPS, a TLS handshake first on every connection. */
void http_server_set_tls(struct http_server *srv, struct tls *tls, bool implicit);
/* Takes ownership of a listener (made with no callback) and serves it.
 * Returns 0, or -1 (the listener is freed). */
int http_server_listen(struct http_server *srv, struct evconnlistener *l);
/* Stops accepting; requests being answered are cut when the worker's loop
 * ends (HTTP clients retry an interrupted request).  cb is called at
 * once. */
void http_server_shutdown(struct http_server *srv, void (*cb)(void *ctx), void *ctx);
/* The answer to req is a long-lived stream (JMAP's event source): its
 * connection has no request deadline (http.timeout) and no read timeout
 * any more: answer it with "Connection: close". */
void http_server_hold(struct http_server *srv, struct evhttp_request *req);
/* Connections open now. */
size_t http_server_connections(const struct http_server *srv);
void http_server_free(struct http_server **srv);

#endif
