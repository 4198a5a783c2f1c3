/*
 * metrics.c - the shared counters (see metrics.h) and their Prometheus
 * text exposition.
 *
 * Part of src/lib, so every layer (store, dns, auth, the protocols, the
 * queue) can count with one call.  The table is one MAP_SHARED region
 * made by the master before it forks; the values are C11 atomics updated
 * with relaxed adds (a scrape needs no ordering between counters, only
 * that each value is whole).  Nothing here takes a lock, allocates or
 * logs on the counting path.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "strutil.h"

#define TABLE_MAGIC 0x3130727465746e72ull /* "rntetr01" */
#define MINUTES 60
#define MASTER_SLOT (METRICS_MAX_PROCS - 1)

_Static_assert(sizeof(_Atomic uint64_t) == 8 && ATOMIC_LLONG_LOCK_FREE == 2,
	       "the shared counters need lock-free 64-bit atomics");

/* 1 ms .. 10 s, roughly 1-2.5-5 per decade. */
const uint64_t metrics_bucket_us[METRICS_BUCKETS] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000,
};

struct shared_hist {
	_Atomic uint64_t bucket[METRICS_BUCKETS + 1];
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

struct shared_proc {
	_Atomic int64_t pid; /* 0: free */
	_Atomic uint64_t kind;
	_Atomic uint64_t open[METRICS_L_COUNT];
};

/* Messages received per minute, for "in the last hour". */
struct shared_minute {
	_Atomic uint64_t minute; /* unix minute the count belongs to */
	_Atomic uint64_t count;
};

struct table {
	/* header: written once by metrics_init, before the magic */
	uint64_t magic;
	uint32_t version;
	uint32_t n_counters;
	uint32_t n_hists;
	uint32_t n_buckets;
	uint32_t n_procs;
	uint32_t n_listeners;
	uint64_t size;
	int64_t start_time;
	char version_str[32];
	/* values */
	_Atomic uint64_t counter[M_COUNT];
	struct shared_hist hist[METRICS_H_COUNT];
	struct shared_proc proc[METRICS_MAX_PROCS];
	struct shared_minute minutes[MINUTES];
};

static struct table *tab;
static bool writable;

int metrics_init(const char *path, const char *version)
{
	metrics_shutdown();
	void *p = fsutil_map_new(path, sizeof(struct table));
	if (p == MAP_FAILED)
		return -1;
	struct table *t = p; /* zero-filled */
	t->version = METRICS_VERSION;
	t->n_counters = M_COUNT;
	t->n_hists = METRICS_H_COUNT;
	t->n_buckets = METRICS_BUCKETS;
	t->n_procs = METRICS_MAX_PROCS;
	t->n_listeners = METRICS_L_COUNT;
	t->size = sizeof(struct table);
	t->start_time = (int64_t)time(NULL);
	snprintf(t->version_str, sizeof t->version_str, "%s", version ? version : "");
	atomic_store_explicit(&t->proc[MASTER_SLOT].kind, METRICS_P_MASTER, memory_order_relaxed);
	atomic_store_explicit(&t->proc[MASTER_SLOT].pid, (int64_t)getpid(), memory_order_relaxed);
	__atomic_store_n(&t->magic, TABLE_MAGIC, __ATOMIC_RELEASE);
	tab = t;
	writable = true;
	return 0;
}

int metrics_attach(const char *path)
{
	metrics_shutdown();
	size_t size;
	void *p = fsutil_map_existing(path, false, offsetof(struct table, counter), &size);
	if (p == MAP_FAILED)
		return -1;
	const struct table *t = p;
	int bad = 0;
	if (__atomic_load_n(&t->magic, __ATOMIC_ACQUIRE) != TABLE_MAGIC)
		bad = EINVAL;
	else if (t->version != METRICS_VERSION || t->size != sizeof(struct table) ||
		 size != sizeof(struct table) || t->n_counters != M_COUNT ||
		 t->n_hists != METRICS_H_COUNT || t->n_buckets != METRICS_BUCKETS ||
		 t->n_procs != METRICS_MAX_PROCS || t->n_listeners != METRICS_L_COUNT)
		bad = EPROTO;
	if (bad != 0) {
		munmap(p, size);
		errno = bad;
		return -1;
	}
	tab = p;
	writable = false;
	return 0;
}

void metrics_shutdown(void)
{
	if (tab == NULL)
		return;
	munmap(tab, sizeof(struct table));
	tab = NULL;
	writable = false;
}

/* ---------------------------------------------------------- counting */

static void count_minute(uint64_t n)
{
	uint64_t minute = (uint64_t)time(NULL) / 60;
	struct shared_minute *m = &tab->minutes[minute % MINUTES];
	uint64_t seen = atomic_load_explicit(&m->minute, memory_order_relaxed);
	/* The first process to count in a new minute restarts its slot; a
	 * count racing with the restart may be lost (a rate, not a total). */
	if (seen != minute &&
	    atomic_compare_exchange_strong_explicit(&m->minute, &seen, minute, memory_order_relaxed,
						    memory_order_relaxed))
		atomic_store_explicit(&m->count, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->count, n, memory_order_relaxed);
}

void metrics_add(enum metrics_counter c, uint64_t n)
{
	if (!writable || (unsigned)c >= M_COUNT)
		return;
	atomic_fetch_add_explicit(&tab->counter[c], n, memory_order_relaxed);
	if (c == M_RECEIVED_SMTP || c == M_RECEIVED_SUBMISSION)
		count_minute(n);
}

void metrics_inc(enum metrics_counter c)
{
	metrics_add(c, 1);
}

void metrics_conn(enum metrics_listener l)
{
	if ((unsigned)l < METRICS_L_COUNT)
		metrics_inc((enum metrics_counter)(M_CONN_FIRST + l));
}

static const char *const auth_names[METRICS_A_COUNT] = {"smtp", "imap", "pop3", "managesieve",
							"jmap"};
static const char *const auth_results[3] = {"success", "failure", "blocked"};

void metrics_auth(const char *proto, const char *result)
{
	if (!writable || proto == NULL || result == NULL)
		return;
	for (size_t p = 0; p < METRICS_A_COUNT; p++) {
		if (strcmp(proto, auth_names[p]) != 0)
			continue;
		size_t r = !strcmp(result, "ok")        ? METRICS_AUTH_SUCCESS
			   : !strcmp(result, "blocked") ? METRICS_AUTH_BLOCKED
							: METRICS_AUTH_FAILURE;
		metrics_inc((enum metrics_counter)(M_AUTH_FIRST + 3 * p + r));
		return;
	}
}

void metrics_observe(enum metrics_hist h, uint64_t us)
{
	if (!writable || (unsigned)h >= METRICS_H_COUNT)
		return;
	struct shared_hist *sh = &tab->hist[h];
	size_t b = 0;
	while (b < METRICS_BUCKETS && us > metrics_bucket_us[b])
		b++;
	atomic_fetch_add_explicit(&sh->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->count, 1, memory_order_relaxed);
}

uint64_t metrics_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void metrics_observe_since(enum metrics_hist h, uint64_t start_us)
{
	if (!writable)
		return;
	uint64_t now = metrics_now_us();
	metrics_observe(h, now > start_us ? now - start_us : 0);
}

void metrics_set_proc(size_t slot, pid_t pid, enum metrics_proc_kind kind)
{
	if (!writable || slot >= MASTER_SLOT)
		return;
	struct shared_proc *p = &tab->proc[slot];
	for (size_t l = 0; l < METRICS_L_COUNT; l++)
		atomic_store_explicit(&p->open[l], 0, memory_order_relaxed);
	atomic_store_explicit(&p->kind, pid > 0 ? (uint64_t)kind : METRICS_P_NONE,
			      memory_order_relaxed);
	atomic_store_explicit(&p->pid, (int64_t)pid, memory_order_relaxed);
}

void metrics_set_open(size_t slot, enum metrics_listener l, uint64_t n)
{
	if (!writable || slot >= MASTER_SLOT || (unsigned)l >= METRICS_L_COUNT)
		return;
	atomic_store_explicit(&tab->proc[slot].open[l], n, memory_order_relaxed);
}

/* ----------------------------------------------------------- reading */

uint64_t metrics_rss(pid_t pid)
{
	char path[64], text[128];
	snprintf(path, sizeof path, "/proc/%ld/statm", (long)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	/* "size resident shared text lib data dt", in pages */
	const char *sp = strchr(text, ' ');
	if (sp == NULL)
		return 0;
	sp++;
	size_t len = strcspn(sp, " \n");
	uint64_t pages;
	if (strutil_parse_u64(sp, len, UINT64_MAX / 65536, &pages) < 0)
		return 0;
	long page = sysconf(_SC_PAGESIZE);
	return page > 0 ? pages * (uint64_t)page : 0;
}

static uint64_t load(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void snapshot_proc(struct metrics_snapshot *s, size_t slot)
{
	const struct shared_proc *p = &tab->proc[slot];
	int64_t pid = atomic_load_explicit(&p->pid, memory_order_relaxed);
	uint64_t kind = load(&p->kind);
	if (pid <= 0 || kind == METRICS_P_NONE || kind > METRICS_P_QUEUE)
		return;
	struct metrics_proc_info *pi = &s->proc[s->n_proc++];
	pi->kind = (enum metrics_proc_kind)kind;
	pi->slot = slot == MASTER_SLOT ? 0 : slot + 1;
	pi->pid = (pid_t)pid;
	pi->rss_bytes = metrics_rss(pi->pid);
	for (size_t l = 0; l < METRICS_L_COUNT; l++)
		pi->open[l] = load(&p->open[l]);
}

int metrics_snapshot(struct metrics_snapshot *s)
{
	memset(s, 0, sizeof *s);
	if (tab == NULL)
		return -1;
	snprintf(s->version, sizeof s->version, "%s", tab->version_str);
	s->start_time = tab->start_time;
	s->now = (int64_t)time(NULL);
	for (size_t c = 0; c < M_COUNT; c++)
		s->counter[c] = load(&tab->counter[c]);
	for (size_t h = 0; h < METRICS_H_COUNT; h++) {
		for (size_t b = 0; b <= METRICS_BUCKETS; b++)
			s->hist[h].bucket[b] = load(&tab->hist[h].bucket[b]);
		s->hist[h].count = load(&tab->hist[h].count);
		s->hist[h].sum_us = load(&tab->hist[h].sum_us);
	}
	snapshot_proc(s, MASTER_SLOT);
	for (size_t i = 0; i < MASTER_SLOT; i++)
		snapshot_proc(s, i);
	uint64_t minute = (uint64_t)s->now / 60;
	for (size_t i = 0; i < MINUTES; i++) {
		uint64_t m = load(&tab->minutes[i].minute);
		if (m <= minute && minute - m < MINUTES)
			s->received_last_hour += load(&tab->minutes[i].count);
	}
	return 0;
}

/* -------------------------------------------------------------- text */

static const char *const listener_names[METRICS_L_COUNT] = {
    "smtp", "submission", "submissions", "imap", "imaps",
    "pop3", "pop3s",      "managesieve", "http", "https",
};

/* The protocol label of each listener. */
static const char *const listener_protos[METRICS_L_COUNT] = {
    "smtp", "submission", "submission",  "imap", "imap",
    "pop3", "pop3",       "managesieve", "http", "http",
};

const char *metrics_listener_name(enum metrics_listener l)
{
	return (unsigned)l < METRICS_L_COUNT ? listener_names[l] : "";
}

static int head(struct buf *out, const char *name, const char *type, const char *help)
{
	return buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int one(struct buf *out, const char *name, const char *type, const char *help, uint64_t v)
{
	int r = head(out, name, type, help);
	return r | buf_printf(out, "%s %llu\n", name, (unsigned long long)v);
}

/* One sample per value of one label: NAME{LABEL="values[i]"} counts[i]. */
static int by_label(struct buf *out, const char *name, const char *label, const char *const *vals,
		    const uint64_t *counts, size_t n)
{
	int r = 0;
	for (size_t i = 0; i < n; i++)
		r |= buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, vals[i],
				(unsigned long long)counts[i]);
	return r;
}

/* Seconds from microseconds, exactly ("0.0025"), for bounds and sums. */
static int put_seconds(struct buf *out, uint64_t us)
{
	uint64_t frac = us % 1000000;
	if (frac == 0)
		return buf_printf(out, "%llu", (unsigned long long)(us / 1000000));
	char digits[8];
	snprintf(digits, sizeof digits, "%06llu", (unsigned long long)frac);
	size_t n = 6;
	while (n > 1 && digits[n - 1] == '0')
		n--;
	digits[n] = '\0';
	return buf_printf(out, "%llu.%s", (unsigned long long)(us / 1000000), digits);
}

static int histogram(struct buf *out, const char *name, const char *help,
		     const struct metrics_hist_info *h)
{
	int r = head(out, name, "histogram", help);
	uint64_t cum = 0;
	for (size_t b = 0; b < METRICS_BUCKETS; b++) {
		cum += h->bucket[b];
		r |= buf_printf(out, "%s_bucket{le=\"", name);
		r |= put_seconds(out, metrics_bucket_us[b]);
		r |= buf_printf(out, "\"} %llu\n", (unsigned long long)cum);
	}
	/* +Inf is the count, so the buckets and the count always agree even
	 * when a scrape falls between the adds of one observation. */
	r |= buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
	r |= buf_printf(out, "%s_sum ", name);
	r |= put_seconds(out, h->sum_us);
	r |= buf_printf(out, "\n%s_count %llu\n", name, (unsigned long long)h->count);
	return r;
}

static const char *proc_kind_name(enum metrics_proc_kind k)
{
	return k == METRICS_P_MASTER ? "master" : k == METRICS_P_QUEUE ? "queue" : "worker";
}

static int proc_labels(struct buf *out, const struct metrics_proc_info *p)
{
	if (p->kind == METRICS_P_WORKER)
		return buf_printf(out, "{process=\"worker\",worker=\"%zu\"}", p->slot);
	return buf_printf(out, "{process=\"%s\"}", proc_kind_name(p->kind));
}

int metrics_render(const struct metrics_snapshot *s, struct buf *out)
{
	int r = 0;
	const uint64_t *c = s->counter;
	r |= head(out, "tern_build_info", "gauge", "Version of the running server (always 1).");
	r |= buf_printf(out, "tern_build_info{version=\"");
	/* label values escape \ " and newline; the version has none, but
	 * this keeps the output valid whatever it is */
	for (const char *p = s->version; *p; p++)
		r |= *p == '\\' || *p == '"' ? buf_printf(out, "\\%c", *p)
		     : *p == '\n'            ? buf_puts(out, "\\n")
					     : buf_putc(out, *p);
	r |= buf_puts(out, "\"} 1\n");
	r |= one(out, "tern_start_time_seconds", "gauge", "Unix time the master process started.",
		 (uint64_t)s->start_time);
	r |= one(out, "tern_uptime_seconds", "gauge", "Seconds since the master process started.",
		 s->now > s->start_time ? (uint64_t)(s->now - s->start_time) : 0);

	r |= head(out, "tern_connections_total", "counter",
		  "Connections accepted, by protocol and listener.");
	for (size_t l = 0; l < METRICS_L_COUNT; l++)
		r |= buf_printf(
		    out, "tern_connections_total{protocol=\"%s\",listener=\"%s\"} %llu\n",
		    listener_protos[l], listener_names[l], (unsigned long long)c[M_CONN_FIRST + l]);
	r |= head(out, "tern_connections_open", "gauge",
		  "Connections open now, by protocol and listener (sampled by each worker "
		  "every second).");
	for (size_t l = 0; l < METRICS_L_COUNT; l++) {
		uint64_t n = 0;
		for (size_t i = 0; i < s->n_proc; i++)
			n += s->proc[i].open[l];
		r |=
		    buf_printf(out, "tern_connections_open{protocol=\"%s\",listener=\"%s\"} %llu\n",
			       listener_protos[l], listener_names[l], (unsigned long long)n);
	}

	r |= head(out, "tern_messages_received_total", "counter",
		  "Messages accepted (250 after DATA), by port 25 (smtp) or submission.");
	static const char *const vias[] = {"smtp", "submission"};
	r |= by_label(out, "tern_messages_received_total", "via", vias, c + M_RECEIVED_SMTP, 2);
	r |= one(out, "tern_messages_delivered_total", "counter",
		 "Message copies stored in local mailboxes.", c[M_DELIVERED_LOCAL]);
	r |= one(out, "tern_messages_relayed_total", "counter",
		 "Recipients delivered to a remote server by the queue.", c[M_RELAYED]);
	r |= one(out, "tern_messages_deferred_total", "counter",
		 "Remote delivery attempts deferred (per recipient).", c[M_DEFERRED]);
	r |= one(out, "tern_messages_bounced_total", "counter",
		 "Recipients that failed for good (per recipient).", c[M_BOUNCED]);
	if (s->queue_known) {
		r |= one(out, "tern_queue_messages", "gauge",
			 "Messages in the queue with a recipient still to deliver.",
			 s->queue_messages);
		r |= one(out, "tern_queue_recipients", "gauge",
			 "Recipients in the queue (deferred, being sent or held).",
			 s->queue_recipients);
		r |= one(out, "tern_queue_oldest_age_seconds", "gauge",
			 "Age of the oldest message in the queue (0: empty).",
			 s->queue_oldest > 0 && s->now > s->queue_oldest
			     ? (uint64_t)(s->now - s->queue_oldest)
			     : 0);
	}

	r |= head(out, "tern_auth_attempts_total", "counter",
		  "Authentications by protocol and result (blocked: refused by the "
		  "brute-force limiter).");
	for (size_t p = 0; p < METRICS_A_COUNT; p++)
		for (size_t k = 0; k < 3; k++)
			r |= buf_printf(out,
					"tern_auth_attempts_total{protocol=\"%s\",result=\"%s\"} "
					"%llu\n",
					auth_names[p], auth_results[k],
					(unsigned long long)c[M_AUTH_FIRST + 3 * p + k]);

	r |= head(out, "tern_spam_verdicts_total", "counter",
		  "Content verdicts on port 25, per local recipient.");
	static const char *const verdicts[] = {"ham", "junk", "reject"};
	r |= by_label(out, "tern_spam_verdicts_total", "verdict", verdicts, c + M_SPAM_HAM, 3);
	r |= one(out, "tern_greylist_deferrals_total", "counter",
		 "Recipients deferred by greylisting.", c[M_GREYLIST_DEFER]);

	r |= histogram(out, "tern_dns_lookup_duration_seconds",
		       "DNS lookups (MX with addresses, or one record type) from start to answer.",
		       &s->hist[METRICS_H_DNS]);
	r |= one(out, "tern_dns_failures_total", "counter",
		 "DNS lookups that ended in a temporary failure or a timeout.", c[M_DNS_FAILURES]);
	r |= one(out, "tern_proxy_header_failures_total", "counter",
		 "Connections from proxy.trusted closed for a missing, malformed or late PROXY "
		 "protocol header.",
		 c[M_PROXY_FAILURES]);
	r |= histogram(out, "tern_store_commit_duration_seconds",
		       "Database commits of the store (with their fsync).",
		       &s->hist[METRICS_H_STORE_COMMIT]);

	r |= head(out, "tern_process_resident_memory_bytes", "gauge",
		  "Resident memory of each process of the server.");
	for (size_t i = 0; i < s->n_proc; i++) {
		r |= buf_puts(out, "tern_process_resident_memory_bytes");
		r |= proc_labels(out, &s->proc[i]);
		r |= buf_printf(out, " %llu\n", (unsigned long long)s->proc[i].rss_bytes);
	}
	return r < 0 ? -1 : 0;
}
