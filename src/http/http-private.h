/*
 * http-private.h - what the HTTP server's files share (http-server.c: the
 * connections, headers, static files; http-autoconfig.c: the answers for
 * mail clients and MTA-STS).
 */
#ifndef TERN_HTTP_PRIVATE_H
#define TERN_HTTP_PRIVATE_H

#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct store;

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

/* Appends s to b with the five XML special characters escaped. */
void http_xml_escape(struct evbuffer *b, const char *s);

/* 1 if the request was one of the auto-configuration or MTA-STS
 * resources (answered), 0 if not. */
int http_autoconfig_handle(struct evhttp_request *req, const struct http_ctx *c);

/* True for the paths served on plain HTTP too (autoconfig; clients such
 * as Thunderbird try http:// when https:// fails). */
bool http_autoconfig_plain_path(const char *host, const char *path);

#endif
