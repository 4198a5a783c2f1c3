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

#include "http-server.h"

struct config;
struct store;

/* Marks srv as the metrics listener's server (http-metrics.c): its
 * connections are not counted as HTTP ones. */
void http_server_set_admin(struct http_server *srv);
/* The config srv runs with. */
const struct config *http_server_config(const struct http_server *srv);

/* Appends s to b with the five XML special characters escaped. */
void http_xml_escape(struct evbuffer *b, const char *s);

/* 1 if the request was one of the auto-configuration or MTA-STS
 * resources (answered), 0 if not. */
int http_autoconfig_handle(struct evhttp_request *req, const struct http_ctx *c);

/* True for the paths served on plain HTTP too (autoconfig; clients such
 * as Thunderbird try http:// when https:// fails). */
bool http_autoconfig_plain_path(const char *host, const char *path);

#endif
