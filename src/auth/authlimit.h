/*
 * authlimit.h - brute-force protection for every protocol's
 * authentication, shared by all worker processes.
 *
 * Four kinds of counters, each counting failed authentications within a
 * window (auth.block_window seconds from the first failure counted):
 *
 *   - per client address (IPv4 address, IPv6 address; IPv4-mapped IPv6
 *     counts as IPv4);
 *   - per network prefix of it (auth.prefix_v4, default /24, and
 *     auth.prefix_v6, default /64);
 *   - per account;
 *   - per (address, account) pair, which also remembers a success, so the
 *     places an account logged in from before are known.
 *
 * From them:
 *
 *   - a strict block of an address: after auth.block_after failures from
 *     it, it may not authenticate for auth.block_time seconds; likewise a
 *     prefix after auth.prefix_block_after failures from its addresses;
 *   - an account is never refused because of others' failures: failures
 *     on it (from addresses that have not logged in to it before) only
 *     slow it down with delays, so an attacker cannot lock its owner out;
 *   - a delay the session waits before answering a failed authentication:
 *     auth.fail_delay_ms after the first failure (of the address, the
 *     pair, or the account), doubling with each further one up to
 *     auth.fail_delay_max_ms;
 *   - bounds on checks in flight ("pending": queued for the password
 *     check, running, or waiting out the failure delay): at most
 *     auth.max_pending_per_ip per address, four times that per prefix,
 *     and auth.max_pending_per_account per account from addresses not
 *     known to it (two while the account has auth.block_after failures
 *     or more).  An attempt is pending before it is queued, so attempts
 *     sent at the same moment cannot all pass the block: once an
 *     address's pending checks plus its failures reach auth.block_after,
 *     or its pending checks reach the bound, a further attempt is refused
 *     without checking it, counted as a failure of the address, and
 *     answered like a failure (after the delay).  Beyond the account's
 *     bound an attempt gets a temporary failure at once (not counted: it
 *     may be the owner).
 *
 * A success resets the pair's counter and marks the address as known for
 * the account; it does not reset the address's own counter (else one valid
 * account would unlock guessing at others).
 *
 * The table lives in shared memory the master creates with authlimit_init
 * before it forks the workers: a file (mode 0600) mapped MAP_SHARED, so
 * `tern auth unblock` can open it too (authlimit_attach), or anonymous
 * memory.  A process-shared robust mutex guards it.  It has a fixed number
 * of entries, in buckets of 8, and a full bucket evicts its least recently
 * used entry.  Keys are HMAC-SHA-256 of the address, prefix or account
 * under a random key made at init, so clients cannot aim collisions.
 * Pending counts of a process killed mid-check expire after two minutes.
 *
 * Without authlimit_init (CLI, tests of other layers) every call allows
 * everything and counts nothing.
 *
 * How a session uses it (no call blocks; the session waits with a timer):
 *
 *   1. when AUTH/AUTHENTICATE/LOGIN/USER..PASS starts: authlimit_check;
 *      if blocked, answer with the protocol's temporary failure (SMTP 454
 *      4.7.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]);
 *   2. right before checking credentials (queueing a password check, or
 *      checking a SCRAM proof): authlimit_begin, and act on its answer;
 *   3. when the check is done: authlimit_result (counts; gives the delay
 *      of a failure's answer);
 *   4. when the answer is sent (or the session ends): authlimit_end.
 */
#ifndef TERN_AUTHLIMIT_H
#define TERN_AUTHLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUTHLIMIT_DEFAULT_ENTRIES 16384
/* The table's file in the data folder (made by serve, opened by the CLI). */
#define AUTHLIMIT_FILE "authlimit.table"

struct config;

struct authlimit_config {
	unsigned fail_delay_ms;       /* first delay; 0: no delays */
	unsigned fail_delay_max_ms;   /* cap of the doubling delay */
	unsigned block_after;         /* failures before a block; 0: never block */
	unsigned window_s;            /* failures older than this are forgotten */
	unsigned block_time_s;        /* how long a block lasts */
	unsigned prefix_v4;           /* prefix length of the IPv4 prefix counter */
	unsigned prefix_v6;           /* prefix length of the IPv6 prefix counter */
	unsigned prefix_block_after;  /* failures of a prefix before its block; 0 never */
	unsigned max_pending_ip;      /* checks in flight per address; 0: no bound */
	unsigned max_pending_account; /* per account from unknown addresses; 0: none */
};

struct authlimit_verdict {
	bool blocked;          /* refuse the attempt without checking it */
	int64_t blocked_until; /* unix time the block ends (when blocked) */
	unsigned delay_ms;     /* wait this long before answering */
};

enum authlimit_gate {
	AUTHLIMIT_GO,      /* check it; a pending slot is held (authlimit_end) */
	AUTHLIMIT_BLOCKED, /* the address or prefix is blocked: temporary
			    * failure at once, nothing checked */
	AUTHLIMIT_REFUSE,  /* too many attempts from the address: answer as a
			    * failure after delay_ms, nothing checked (counted) */
	AUTHLIMIT_BUSY,    /* too many checks for the account in flight:
			    * temporary failure at once (not counted) */
};

/* A pending slot taken by authlimit_begin. */
struct authlimit_ticket {
	uint64_t ip, prefix, account; /* keys whose pending count it holds; 0 none */
};

/* The settings of the auth.* config keys above. */
void authlimit_config_from(const struct config *c, struct authlimit_config *out);

/* Creates the shared table with entries slots (0: the default; rounded up
 * to a multiple of 8), in a new file at path (replacing an old one) or, if
 * path is NULL, in anonymous memory.  Call once in the master before
 * forking.  Returns 0, or -1 (errno set). */
int authlimit_init(const struct authlimit_config *cfg, size_t entries, const char *path);
/* Maps the table a running server made at path (for the CLI).  Returns 0,
 * or -1 (errno set: ENOENT if no server made one, EINVAL if the file is
 * not such a table). */
int authlimit_attach(const char *path);
/* Replaces the settings (e.g. after SIGHUP); counts are kept.  No-op
 * without a table. */
void authlimit_configure(const struct authlimit_config *cfg);
/* Unmaps the table (tests, the CLI; processes normally just exit). */
void authlimit_shutdown(void);
/* For tests: replaces the clock (milliseconds since the epoch); NULL
 * restores the real one.  Per process. */
void authlimit_set_clock(uint64_t (*now_ms)(void));

/* Is ip (may be NULL: unknown) blocked?  account (NULL or "" if not known
 * yet; case-insensitive) adds its failures to the delay. */
void authlimit_check(const struct sockaddr *ip, const char *account, struct authlimit_verdict *v);
/* Before checking the credentials of account from ip (see above).  On
 * AUTHLIMIT_GO *t holds the slot; otherwise *t holds nothing.  v gets the
 * block's end (BLOCKED) or the delay (REFUSE). */
enum authlimit_gate authlimit_begin(const struct sockaddr *ip, const char *account,
				    struct authlimit_ticket *t, struct authlimit_verdict *v);
/* The check of a begun attempt is done: ok, or a failure that counts
 * (counted against the address, its prefix, the account and the pair; a
 * block that starts is logged).  For a failure v gets the delay before
 * answering.  The slot stays held until authlimit_end. */
void authlimit_result(const struct sockaddr *ip, const char *account, bool ok,
		      struct authlimit_verdict *v);
/* Releases the slot (no-op for an empty ticket); empties *t. */
void authlimit_end(struct authlimit_ticket *t);

/* Counts a failed authentication outside begin/result (logs it). */
void authlimit_fail(const struct sockaddr *ip, const char *account);
/* Counts a success: resets the (ip, account) failures. */
void authlimit_success(const struct sockaddr *ip, const char *account);

/* ------------------------------------------------------------------
 * Connection and message rates of port 25 (docs/spam.md), in the same
 * shared table, so the counts are right across all workers: per client
 * address, the connections open now, the connections opened in the
 * current minute and the transactions (MAIL FROM) started in the current
 * hour.  The minute and the hour are fixed windows that start at the
 * first count.  These entries have buckets of their own (as many as the
 * authentication counters), so a flood of new clients cannot evict the
 * failure counts of an attacker.  A slot of a process killed with connections open is
 * forgotten after an hour without change.  Without a table everything is
 * allowed.
 */

enum authlimit_conn_gate {
	AUTHLIMIT_CONN_OK,       /* go on; *slot holds the connection */
	AUTHLIMIT_CONN_TOO_MANY, /* max_open connections of the address open */
	AUTHLIMIT_CONN_TOO_FAST, /* per_minute connections this minute */
};

/* A new connection from ip: counted in the minute (refused ones too, so a
 * flood stays refused) and, if allowed, held as open in *slot until
 * authlimit_conn_close.  max_open or per_minute 0: no such bound.  *count
 * gets the open connections (TOO_MANY, OK: this one included) or the
 * connections this minute (TOO_FAST). */
enum authlimit_conn_gate authlimit_conn_open(const struct sockaddr *ip, unsigned max_open,
					     unsigned per_minute, uint64_t *slot, uint32_t *count);
/* Releases a slot of authlimit_conn_open (no-op for 0); sets *slot to 0. */
void authlimit_conn_close(uint64_t *slot);
/* A new transaction from ip: true (counted) if fewer than per_hour were
 * counted in this hour (per_hour 0: always, nothing counted).  *count
 * gets the count of the hour, this one included if allowed. */
bool authlimit_message(const struct sockaddr *ip, unsigned per_hour, uint32_t *count);

/* What the table holds about an address (with its prefix) or an account. */
struct authlimit_state {
	bool found;
	uint32_t fails;        /* within the window */
	int64_t blocked_until; /* unix time; 0 if not blocked */
	uint32_t pending;
	/* for an address: its prefix */
	bool prefix_found;
	uint32_t prefix_fails;
	int64_t prefix_blocked_until;
};

/* Looks up ip (if not NULL) or else account.  Returns 0, -1 without a
 * table. */
int authlimit_inspect(const struct sockaddr *ip, const char *account, struct authlimit_state *out);
/* Lifts the block and clears the failures of ip and of its prefix (if ip
 * is not NULL), or else of account (its own counter; pairs stay).  Sets
 * *out to what was there before.  Returns 0, -1 without a table. */
int authlimit_unblock(const struct sockaddr *ip, const char *account, struct authlimit_state *out);

#endif
