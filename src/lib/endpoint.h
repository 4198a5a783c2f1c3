/*
 * endpoint.h - socket endpoints in Postfix's notation, for the external
 * filters (milter.servers): "inet:HOST:PORT" (HOST an IPv4 address,
 * "[IPv6]" or "localhost") and "unix:/path".
 *
 * No name is looked up (a blocking resolver call has no place on a
 * worker's event loop): HOST is a numeric address or localhost.
 */
#ifndef TERN_ENDPOINT_H
#define TERN_ENDPOINT_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses w[0..n) into *ss (and *sslen).  0, or -1 (not an endpoint). */
int endpoint_parse(const char *w, size_t n, struct sockaddr_storage *ss, socklen_t *sslen);

/* The next word of a space- or comma-separated list at *p: its start and
 * length (0 at the end); *p moves past it. */
size_t endpoint_next(const char **p, const char **word);

#endif
