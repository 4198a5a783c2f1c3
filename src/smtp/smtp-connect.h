/*
 * smtp-connect.h - the connection stage of port 25 (docs/spam.md): the DNS
 * block and allow lists of the client's address and its forward-confirmed
 * reverse name, looked up asynchronously while the greeting waits, and the
 * HELO check, as one score.
 *
 * Ownership: the caller owns the struct smtp_connect (smtp_connect_free);
 * the resolver must outlive it (the config is read at the start only).
 * The callback runs once, from the event loop (never inside
 * smtp_connect_start), when the lookups are in (or spam.dns_timeout
 * passed) and spam.pregreet_wait is over; it may free the struct.
 */
#ifndef TERN_SMTP_CONNECT_H
#define TERN_SMTP_CONNECT_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct dns_resolver;
struct event_base;
struct smtp_connect;

struct smtp_connect_result {
	int score;
	char parts[1024]; /* for the log: "dnsbl=bl.example:5 fcrdns=none:1" */
	char reason[512]; /* for the refusal: "is listed by bl.example (...)" */
	char dnswl[256];  /* the first allow list that lists the client, or "" */
};

typedef void (*smtp_connect_cb)(void *ctx, const struct smtp_connect_result *r);

/* True if a client at ip on port 25 goes through the connection stage
 * (not in mailauth.trusted, and something to do: a pregreet wait, a list,
 * or the FCrDNS weight). */
bool smtp_connect_wanted(const struct config *cfg, const char *ip);

/* Starts the lookups for ip (dns may be NULL: no lookups, only the wait);
 * log_id names the session in log lines. */
struct smtp_connect *smtp_connect_start(struct event_base *base, struct dns_resolver *dns,
					const struct config *cfg, const char *ip,
					const char *log_id, smtp_connect_cb cb, void *ctx);

/* Adds the HELO check (spam.helo_weight) to r; true if it counted. */
bool smtp_connect_helo(struct smtp_connect_result *r, const struct config *cfg, const char *helo);

/* Cancels what is pending (the callback is not called) and frees.
 * Accepts NULL; sets *c to NULL. */
void smtp_connect_free(struct smtp_connect **c);

#endif
