/*
 * mta-sts-fetch.h - fetches an MTA-STS policy (RFC 8461 3.3) over HTTPS,
 * off the event loop.
 *
 * GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt with libcurl in a
 * thread of its own (one per fetch; fetches are rare: once per domain and
 * max_age), so a slow policy host never stalls the queue runner's loop.
 * The address is the one our resolver gave (src/dns), handed to curl, so
 * every name is looked up the same way.  The certificate must be valid
 * for mta-sts.DOMAIN and chain to the system CA store or to ca_file;
 * redirects are not followed; only HTTP 200 with a text/plain body of at
 * most MTASTS_POLICY_MAX bytes counts; the whole fetch is bounded by a
 * timeout.
 *
 * Ownership: the handle belongs to the caller until the callback runs
 * (then it is freed by this file) or mtasts_fetch_cancel.  The callback
 * runs on the loop, never from inside mtasts_fetch_start; the result is
 * valid during the call only.
 */
#ifndef TERN_MTA_STS_FETCH_H
#define TERN_MTA_STS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct mtasts_fetch;

struct mtasts_fetch_result {
	bool ok;          /* HTTP 200, text/plain, within the size bound */
	const char *body; /* ok: the bytes (not NUL-terminated) */
	size_t len;
	char why[600]; /* !ok: what failed, in words, with the URL */
};

typedef void (*mtasts_fetch_cb)(void *ctx, const struct mtasts_fetch_result *r);

/* Once per process, before the first fetch (curl_global_init). */
void mtasts_fetch_init(void);

/* Starts the fetch of domain's policy from addr (its port is ignored:
 * port is used; 443 on the Internet).  ca_file: extra trusted CAs (PEM),
 * "" none.  NULL with err if no thread could be started. */
struct mtasts_fetch *mtasts_fetch_start(struct event_base *base, const char *domain,
					 uint16_t port, const struct sockaddr *addr,
					 const char *ca_file, unsigned timeout_s,
					 mtasts_fetch_cb cb, void *ctx, char *err, size_t errsz);

/* Stops a fetch (its callback will not run): the transfer is aborted and
 * its thread joined.  Accepts NULL and *f == NULL; sets *f NULL. */
void mtasts_fetch_cancel(struct mtasts_fetch **f);

#endif
