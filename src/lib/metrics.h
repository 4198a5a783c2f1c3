/*
 * metrics.h - the server's counters, shared by every process of one
 * `tern serve` (docs/admin.md "Monitoring", docs/architecture.md).
 *
 * The table is a small file of fixed layout in the data folder
 * (METRICS_FILE, mode 0600) that the master creates before it forks and
 * maps MAP_SHARED; workers and the queue runner inherit the mapping, the
 * CLI (`tern status`) maps it read-only.  Every value is a C11 atomic
 * 64-bit integer, so counting is one relaxed atomic add: no lock on any
 * path.  The header carries a magic, a layout version and the sizes, and
 * a reader refuses a file whose layout is not its own.
 *
 * Without metrics_init or metrics_attach (unit tests of other layers, the
 * CLI's other commands) every call is a no-op, so the counting lines in
 * the protocol code need no checks.
 *
 * Counters only count up; they start at zero when the master starts (a
 * worker that dies and is restarted keeps counting in the same table).
 * The gauges of open connections are per process slot: each worker writes
 * its own sessions' counts (metrics_set_open), and the master clears a
 * slot when its process ends.
 */
#ifndef TERN_METRICS_H
#define TERN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf;

/* The table's file in the data folder. */
#define METRICS_FILE "metrics.table"
/* Layout version: bump it when the layout or the meaning of an index
 * changes (a reader refuses another version). */
#define METRICS_VERSION 2

/* Listeners, in the order of main.c's protocol table (which asserts it):
 * the `listener` label is the config key without ".listen". */
enum metrics_listener {
	METRICS_L_SMTP,
	METRICS_L_SUBMISSION,
	METRICS_L_SUBMISSIONS,
	METRICS_L_IMAP,
	METRICS_L_IMAPS,
	METRICS_L_POP3,
	METRICS_L_POP3S,
	METRICS_L_MANAGESIEVE,
	METRICS_L_HTTP,
	METRICS_L_HTTPS,
	METRICS_L_COUNT
};

/* Protocols that authenticate (the `protocol` label of tern_auth_*). */
enum metrics_auth_proto {
	METRICS_A_SMTP,
	METRICS_A_IMAP,
	METRICS_A_POP3,
	METRICS_A_MANAGESIEVE,
	METRICS_A_JMAP,
	METRICS_A_COUNT
};

/* Outcomes of an authentication. */
enum metrics_auth_result { METRICS_AUTH_SUCCESS, METRICS_AUTH_FAILURE, METRICS_AUTH_BLOCKED };

/* The counters.  The connection and authentication ones are arrays, by
 * listener and by (protocol, result). */
enum metrics_counter {
	M_CONN_FIRST, /* + enum metrics_listener */
	/* (the two kinds of received, and the three verdicts, stay
	 * adjacent: the text renders them as one array each) */
	M_RECEIVED_SMTP = M_CONN_FIRST + METRICS_L_COUNT, /* messages accepted on port 25 */
	M_RECEIVED_SUBMISSION, /* messages accepted from authenticated clients */
	M_DELIVERED_LOCAL,     /* copies stored in a local mailbox */
	M_RELAYED,             /* recipients delivered to a remote server */
	M_DEFERRED,            /* recipients whose delivery attempt was deferred */
	M_BOUNCED,             /* recipients that failed for good */
	M_SPAM_HAM,            /* content verdicts per local recipient */
	M_SPAM_JUNK,
	M_SPAM_REJECT,
	M_GREYLIST_DEFER, /* RCPTs answered 451 by greylisting */
	M_DNS_FAILURES,   /* lookups that ended in a temporary failure */
	M_AUTH_FIRST,     /* + 3 * enum metrics_auth_proto + result */
	/* connections from proxy.trusted closed for a missing, malformed or
	 * late PROXY protocol header */
	M_PROXY_FAILURES = M_AUTH_FIRST + 3 * METRICS_A_COUNT,
	M_COUNT
};

/* Histograms of durations. */
enum metrics_hist { METRICS_H_DNS, METRICS_H_STORE_COMMIT, METRICS_H_COUNT };
/* Upper bounds of the buckets, in microseconds (then +Inf). */
#define METRICS_BUCKETS 12
extern const uint64_t metrics_bucket_us[METRICS_BUCKETS];

/* Process slots: the workers and the queue runner by their slot in the
 * master, then the master itself. */
#define METRICS_MAX_PROCS 65
enum metrics_proc_kind { METRICS_P_NONE, METRICS_P_MASTER, METRICS_P_WORKER, METRICS_P_QUEUE };

/* Creates the table in a new file at path (an old one is replaced) or, if
 * path is NULL, in anonymous memory; records version (copied, cut to 31
 * bytes), the start time and the caller's pid as the master (slot
 * METRICS_MAX_PROCS - 1).  Call once in the master before forking.
 * Returns 0, or -1 (errno set). */
int metrics_init(const char *path, const char *version);
/* Maps the table a running server made at path, read-only (the CLI).
 * Returns 0, or -1 with errno: ENOENT (no server made one), EPROTO (a
 * table of another layout version), EINVAL (not such a table). */
int metrics_attach(const char *path);
/* Unmaps the table (tests, the CLI). */
void metrics_shutdown(void);

/* Counting: one relaxed atomic add each.  No-ops without a table (or on
 * a read-only one). */
void metrics_inc(enum metrics_counter c);
void metrics_add(enum metrics_counter c, uint64_t n);
/* A connection accepted on listener l. */
void metrics_conn(enum metrics_listener l);
/* An authentication of proto ("smtp", "imap", "pop3", "managesieve",
 * "jmap"; others are not counted) with result "ok" (success), "blocked"
 * (refused by the brute-force limiter) or anything else (failure): the
 * words authglue logs. */
void metrics_auth(const char *proto, const char *result);
/* A duration for histogram h, in microseconds. */
void metrics_observe(enum metrics_hist h, uint64_t us);
/* Microseconds of a monotonic clock, to measure durations with. */
uint64_t metrics_now_us(void);
/* metrics_observe(h, metrics_now_us() - start_us). */
void metrics_observe_since(enum metrics_hist h, uint64_t start_us);

/* The master: slot (0 .. METRICS_MAX_PROCS - 2) now runs pid of kind
 * (pid 0: free; its gauges are cleared). */
void metrics_set_proc(size_t slot, pid_t pid, enum metrics_proc_kind kind);
/* A worker: the connections of listener l open in it now. */
void metrics_set_open(size_t slot, enum metrics_listener l, uint64_t n);

/* --------------------------------------------------- reading and text */

struct metrics_proc_info {
	enum metrics_proc_kind kind;
	size_t slot; /* 1-based worker number for workers */
	pid_t pid;
	uint64_t rss_bytes; /* from /proc/PID/statm; 0 if unreadable */
	uint64_t open[METRICS_L_COUNT];
};

struct metrics_hist_info {
	uint64_t bucket[METRICS_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
	uint64_t count;
	uint64_t sum_us;
};

/* A copy of the table at one moment, plus what a scrape adds. */
struct metrics_snapshot {
	char version[32];
	int64_t start_time; /* unix seconds the master started */
	int64_t now;        /* unix seconds of the snapshot */
	uint64_t counter[M_COUNT];
	struct metrics_hist_info hist[METRICS_H_COUNT];
	struct metrics_proc_info proc[METRICS_MAX_PROCS];
	size_t n_proc;               /* live slots, master first */
	uint64_t received_last_hour; /* port 25 and submission, last 60 minutes */
	/* From the store at scrape time (queue_known false: not read). */
	bool queue_known;
	uint64_t queue_messages;   /* messages with a recipient still to deliver */
	uint64_t queue_recipients; /* recipients deferred, sending or held */
	int64_t queue_oldest;      /* unix time the oldest of them was queued; 0 none */
};

/* Fills *s from the table (RSS read from /proc now).  Returns 0, or -1
 * without a table. */
int metrics_snapshot(struct metrics_snapshot *s);
/* Appends the Prometheus text exposition (format 0.0.4) of s to out.
 * Returns 0, or -1 if out reached its maximum. */
int metrics_render(const struct metrics_snapshot *s, struct buf *out);
/* The label value of a listener ("smtp", "imaps"...). */
const char *metrics_listener_name(enum metrics_listener l);
/* Resident memory of pid in bytes from /proc/PID/statm, 0 if unreadable. */
uint64_t metrics_rss(pid_t pid);

#endif
