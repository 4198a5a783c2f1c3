/*
 * proxy-accept.h - reading the PROXY protocol header of a new connection
 * before its protocol sees it (docs/admin.md "Behind a load balancer").
 *
 * Part of the executable next to main.c: the listeners hand every
 * accepted socket to proxy_accept_begin, which either leaves it to them
 * (no header expected) or reads the header on the worker's event loop,
 * without blocking it, and then hands the socket on with the client's
 * address from the header.
 */
#ifndef TERN_PROXY_ACCEPT_H
#define TERN_PROXY_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/util.h>

struct config;
struct event_base;
struct proxy_accept;

/* Gets a connection whose header was read: fd (now owned by the callee),
 * the client's address (the header's, or the proxy's own for LOCAL and
 * UNKNOWN headers). */
typedef void (*proxy_accept_cb)(void *ctx, evutil_socket_t fd, const struct sockaddr *sa,
				int salen);

/* The headers being read on base (one per worker).  Never NULL (out of
 * memory is fatal, xalloc.h). */
struct proxy_accept *proxy_accept_new(struct event_base *base);
/* Closes the connections whose header is still awaited and frees *pa;
 * NULL and *pa NULL are fine. */
void proxy_accept_free(struct proxy_accept **pa);

/* A connection fd accepted from sa on the listener of listen_key: if cfg
 * has that listener's KIND.proxy_protocol on and sa is in proxy.trusted,
 * takes fd (returns true) and later calls done(ctx, ...) once the header
 * is read, or closes fd (logged, counted in tern_proxy_header_failures_total)
 * if it is malformed or not complete within proxy.timeout; exactly the
 * header's bytes are read, the rest stays for the protocol.  Otherwise
 * returns false and fd stays the caller's.  listen_key and ctx must live
 * as long as pa; cfg is read during this call only. */
bool proxy_accept_begin(struct proxy_accept *pa, const struct config *cfg, const char *listen_key,
			evutil_socket_t fd, const struct sockaddr *sa, int salen,
			proxy_accept_cb done, void *ctx);

/* Connections whose header is awaited. */
size_t proxy_accept_pending(const struct proxy_accept *pa);

#endif
