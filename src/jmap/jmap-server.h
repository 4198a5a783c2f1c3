/*
 * jmap-server.h - JMAP over HTTPS (RFC 8620; docs/jmap.md): the session
 * resource, the API endpoint, upload and download, served through the
 * HTTP server's hook (src/http/http-server.h).  Every request but the
 * /.well-known/jmap redirect is authenticated with HTTP Basic against the
 * accounts, through auth/authglue.h (the same password checks and
 * brute-force limiter as IMAP and submission).
 */
#ifndef TERN_JMAP_SERVER_H
#define TERN_JMAP_SERVER_H

#include <event2/event.h>

struct store;
struct http_server;
struct jmap_server;

/* Serves JMAP on srv, which owns the result from now on: it is freed by
 * http_server_free.  store outlives it. */
struct jmap_server *jmap_server_attach(struct http_server *srv, struct event_base *base,
				       struct store *store);

#endif
