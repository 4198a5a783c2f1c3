/*
 * http-metrics.h - the admin listener of `metrics.listen`: GET /metrics
 * (Prometheus text format 0.0.4) from the shared counters of
 * src/lib/metrics.h, loopback only or with HTTP Basic (metrics.password);
 * docs/admin.md "Monitoring".
 */
#ifndef TERN_HTTP_METRICS_H
#define TERN_HTTP_METRICS_H

#include <event2/event.h>

struct config;
struct http_server;
struct store;
struct tls;

/* A server for the admin listener: an http_server (serve it with
 * http_server_listen, free it with http_server_free) whose only resource
 * is /metrics.  cfg and store stay the caller's and outlive it; a new
 * config comes through http_server_set_config. */
struct http_server *http_metrics_new(struct event_base *base, struct store *store,
				     const struct config *cfg);
/* TLS on every connection when the config's metrics.tls is set (else
 * plain HTTP; a restart key, so the config srv was made with decides). */
void http_metrics_set_tls(struct http_server *srv, struct tls *tls);

#endif
