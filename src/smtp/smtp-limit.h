/*
 * smtp-limit.h - the per-address rate limits of port 25 (docs/spam.md):
 * connections open at once (spam.max_connections_per_ip), connections a
 * minute (spam.connection_rate) and transactions an hour
 * (spam.message_rate).  The counts live in the brute-force limiter's
 * shared table (auth/authlimit.h), so they hold across all workers.
 *
 * Neither submission nor clients in mailauth.trusted are limited: the
 * caller does not call these for submission listeners, and
 * smtp_limit_applies says no for trusted clients.
 */
#ifndef TERN_SMTP_LIMIT_H
#define TERN_SMTP_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct config;

/* True if a port 25 client at ip (text) is rate limited. */
bool smtp_limit_applies(const struct config *cfg, const char *ip);

/* A new connection from sa (ip its text; log_id the session): true to go
 * on, with *slot holding the open connection (release it with
 * smtp_limit_close when the session ends).  False: line (size linesz)
 * gets the 421 reply to close with; the refusal is logged; *slot is 0. */
bool smtp_limit_connect(const struct config *cfg, const struct sockaddr *sa, const char *ip,
			const char *log_id, uint64_t *slot, char *line, size_t linesz);

/* Releases the slot of smtp_limit_connect (0: nothing); sets *slot to 0. */
void smtp_limit_close(uint64_t *slot);

/* A new transaction (MAIL FROM) from sa: true (counted) to go on; false:
 * line gets the 451 reply; the refusal is logged. */
bool smtp_limit_message(const struct config *cfg, const struct sockaddr *sa, const char *ip,
			const char *log_id, char *line, size_t linesz);

#endif
