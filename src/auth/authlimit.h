/*
 * authlimit.h - brute-force protection for every protocol's
 * authentication, shared by all worker processes.
 *
 * Failed authentications are counted per client IP (IPv4 address, IPv6
 * /64 prefix; IPv4-mapped IPv6 counts as IPv4), per account, and per
 * (IP, account) pair, within a window (auth.block_window seconds from the
 * first failure counted).  From them:
 *
 *   - a delay the session waits before answering a failed (or any, while
 *     failures are counted) authentication: auth.fail_delay_ms after the
 *     first failure, doubling with each further one up to
 *     auth.fail_delay_max_ms;
 *   - a block: after auth.block_after failures from one IP, that IP may
 *     not authenticate for auth.block_time seconds; after as many failures
 *     on one account (from any IPs), the account may not authenticate for
 *     that time either, except from IPs that logged in to it successfully
 *     before (so an attacker cannot lock a user out of their usual
 *     places).
 *
 * A success resets the pair's counter (that IP's failures on that account)
 * and marks the IP as known for the account; it does not reset the IP's
 * own counter (else one valid account would unlock guessing others).
 *
 * The table lives in shared memory (MAP_SHARED | MAP_ANONYMOUS) that the
 * master creates with authlimit_init before it forks the workers, so all
 * workers see the same counts; a process-shared robust mutex guards it.
 * It has a fixed number of entries, in buckets of 8, and a full bucket
 * evicts its least recently used entry.  Keys are HMAC-SHA-256 of the IP
 * or account under a random key made at init, so clients cannot aim
 * collisions.
 *
 * Without authlimit_init (CLI, tests of other layers) every call allows
 * everything and counts nothing.
 *
 * How a session uses it (no call blocks; the session waits with a timer):
 *
 *   1. when AUTH/AUTHENTICATE/USER..PASS starts: authlimit_check(ip, NULL)
 *      (and again with the username once known); if blocked, answer with
 *      the protocol's temporary failure (SMTP 454 4.7.0, IMAP NO
 *      [UNAVAILABLE], POP3 -ERR [SYS/TEMP]) without checking anything;
 *   2. on a failed check: authlimit_fail(ip, user), then
 *      authlimit_check(ip, user) and send the failure reply after
 *      verdict.delay_ms;
 *   3. on success: authlimit_success(ip, account).
 */
#ifndef TERN_AUTHLIMIT_H
#define TERN_AUTHLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUTHLIMIT_DEFAULT_ENTRIES 16384

struct config;

struct authlimit_config {
	unsigned fail_delay_ms;     /* first delay; 0: no delays */
	unsigned fail_delay_max_ms; /* cap of the doubling delay */
	unsigned block_after;       /* failures before a block; 0: never block */
	unsigned window_s;          /* failures older than this are forgotten */
	unsigned block_time_s;      /* how long a block lasts */
};

struct authlimit_verdict {
	bool blocked;          /* refuse the attempt without checking it */
	int64_t blocked_until; /* unix time the block ends (when blocked) */
	unsigned delay_ms;     /* wait this long before answering */
};

/* The settings of config keys auth.fail_delay_ms, auth.fail_delay_max_ms,
 * auth.block_after, auth.block_window and auth.block_time. */
void authlimit_config_from(const struct config *c, struct authlimit_config *out);

/* Creates the shared table with entries slots (0: the default; rounded up
 * to a multiple of 8).  Call once in the master before forking.  Returns 0,
 * or -1 (errno set) if the memory or the lock cannot be made. */
int authlimit_init(const struct authlimit_config *cfg, size_t entries);
/* Replaces the settings (e.g. after SIGHUP); counts are kept.  No-op
 * without authlimit_init. */
void authlimit_configure(const struct authlimit_config *cfg);
/* Unmaps the table (tests; processes normally just exit). */
void authlimit_shutdown(void);
/* For tests: replaces the clock (milliseconds since the epoch); NULL
 * restores the real one.  Per process. */
void authlimit_set_clock(uint64_t (*now_ms)(void));

/* What to do before checking credentials for ip (may be NULL: unknown)
 * and account (NULL or "" if not known yet; case-insensitive). */
void authlimit_check(const struct sockaddr *ip, const char *account, struct authlimit_verdict *v);
/* Counts a failed authentication (logs it with the IP and the account,
 * and logs a block when one starts). */
void authlimit_fail(const struct sockaddr *ip, const char *account);
/* Counts a success: resets the (ip, account) failures. */
void authlimit_success(const struct sockaddr *ip, const char *account);

#endif
