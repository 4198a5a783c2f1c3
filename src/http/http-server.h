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
#include <event2/listener.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct store;
struct tls;
struct http_server;

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
/* Connections open now. */
size_t http_server_connections(const struct http_server *srv);
void http_server_free(struct http_server **srv);

#endif
