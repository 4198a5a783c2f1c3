/*
 * cli-status.c - `tern status`: the running server at a glance, from the
 * same numbers GET /metrics serves (src/lib/metrics.h: the shared table in
 * the data folder, read-only), the queue from server.db, and the expiry of
 * the configured certificates.  Exit 0 when the server runs, 1 when it
 * does not (no table, or its master is gone), so scripts can ask.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli-int.h"
#include "config.h"
#include "metrics.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

/* Certificates expiring sooner than this get a warning. */
#define CERT_WARN_DAYS 14

/* Unix time pid started (from /proc/PID/stat and the boot time), or -1. */
static int64_t proc_start_time(pid_t pid)
{
	char path[64], text[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	/* "pid (comm) state ppid ..." with comm possibly holding ") "; the
	 * start time is field 22, the 20th after the comm */
	char *p = strrchr(text, ')');
	for (int field = 2; p != NULL && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return -1;
	p++;
	uint64_t ticks;
	if (strutil_parse_u64(p, strcspn(p, " "), UINT64_MAX, &ticks) < 0)
		return -1;
	f = fopen("/proc/stat", "re");
	if (f == NULL)
		return -1;
	char line[256];
	int64_t btime = -1;
	while (fgets(line, sizeof line, f) != NULL) {
		uint64_t v;
		if (!strncmp(line, "btime ", 6) &&
		    strutil_parse_u64(line + 6, strcspn(line + 6, "\n"), INT64_MAX, &v) == 0)
			btime = (int64_t)v;
	}
	fclose(f);
	long hz = sysconf(_SC_CLK_TCK);
	return btime < 0 || hz <= 0 ? -1 : btime + (int64_t)(ticks / (uint64_t)hz);
}

/* Is the master the table names still the one that made it?  (A pid can
 * be reused after the server stopped.) */
static bool master_alive(const struct metrics_snapshot *s, pid_t *pid)
{
	*pid = 0;
	for (size_t i = 0; i < s->n_proc; i++)
		if (s->proc[i].kind == METRICS_P_MASTER)
			*pid = s->proc[i].pid;
	if (*pid <= 0 || (kill(*pid, 0) < 0 && errno != EPERM))
		return false;
	int64_t started = proc_start_time(*pid);
	/* The table is made a moment after the process starts. */
	return started < 0 || (started <= s->start_time + 2 && started >= s->start_time - 600);
}

static void put_duration(int64_t secs)
{
	if (secs < 0)
		secs = 0;
	if (secs >= 86400)
		printf("%" PRId64 "d %" PRId64 "h", secs / 86400, secs % 86400 / 3600);
	else if (secs >= 3600)
		printf("%" PRId64 "h %" PRId64 "m", secs / 3600, secs % 3600 / 60);
	else if (secs >= 60)
		printf("%" PRId64 "m %" PRId64 "s", secs / 60, secs % 60);
	else
		printf("%" PRId64 "s", secs);
}

static void put_mib(uint64_t bytes)
{
	printf("%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* The listeners of the config, with the connections counted on each. */
static void put_listeners(const struct config *c, const struct metrics_snapshot *s)
{
	const char *values[METRICS_L_COUNT] = {
	    c->smtp_listen,  c->submission_listen, c->submissions_listen, c->imap_listen,
	    c->imaps_listen, c->pop3_listen,       c->pop3s_listen,       c->managesieve_listen,
	    c->http_listen,  c->https_listen,
	};
	puts("listeners:");
	for (size_t l = 0; l < METRICS_L_COUNT; l++) {
		if (values[l][0] == '\0')
			continue;
		uint64_t open = 0;
		for (size_t i = 0; i < s->n_proc; i++)
			open += s->proc[i].open[l];
		printf("  %-12s %-24s %" PRIu64 " open, %" PRIu64 " since start\n",
		       metrics_listener_name((enum metrics_listener)l), values[l], open,
		       s->counter[M_CONN_FIRST + l]);
	}
	if (c->metrics_listen[0])
		printf("  %-12s %-24s GET /metrics%s\n", "metrics", c->metrics_listen,
		       c->metrics_tls ? " (HTTPS)" : "");
}

/* One certificate file: its subject and expiry; true if it warns. */
static bool put_cert(const char *path)
{
	FILE *f = fopen(path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (x == NULL) {
		printf("  %s: cannot read a certificate\n", path);
		return true;
	}
	char subject[256] = "";
	X509_NAME_oneline(X509_get_subject_name(x), subject, sizeof subject);
	const ASN1_TIME *na = X509_get0_notAfter(x);
	struct tm tm;
	int days = 0, secs = 0;
	bool ok = ASN1_TIME_to_tm(na, &tm) == 1 && ASN1_TIME_diff(&days, &secs, NULL, na) == 1;
	X509_free(x);
	if (!ok) {
		printf("  %s: %s, unreadable expiry date\n", path, subject);
		return true;
	}
	char when[32];
	strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
	bool expired = days < 0 || (days == 0 && secs <= 0);
	printf("  %s: %s, expires %s", path, subject, when);
	if (expired)
		printf(" (EXPIRED)\n");
	else
		printf(" (in %d days)\n", days);
	if (expired || days < CERT_WARN_DAYS) {
		printf("  warning: %s %s\n", path,
		       expired ? "has expired: clients refuse it"
			       : "expires in less than 14 days: renew it");
		return true;
	}
	return false;
}

static void put_certs(const struct config *c)
{
	if (c->tls_cert[0] == '\0' && c->tls_sni_dir[0] == '\0')
		return;
	puts("certificates:");
	if (c->tls_cert[0])
		(void)put_cert(c->tls_cert);
	if (c->tls_sni_dir[0] == '\0')
		return;
	DIR *d = opendir(c->tls_sni_dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s/cert.pem", c->tls_sni_dir, e->d_name);
		if (access(path, F_OK) == 0)
			(void)put_cert(path);
	}
	closedir(d);
}

static void put_auth(const struct metrics_snapshot *s)
{
	static const char *const names[METRICS_A_COUNT] = {"smtp", "imap", "pop3", "managesieve",
							   "jmap"};
	uint64_t ok = 0, fail = 0, blocked = 0;
	for (size_t p = 0; p < METRICS_A_COUNT; p++) {
		ok += s->counter[M_AUTH_FIRST + 3 * p + METRICS_AUTH_SUCCESS];
		fail += s->counter[M_AUTH_FIRST + 3 * p + METRICS_AUTH_FAILURE];
		blocked += s->counter[M_AUTH_FIRST + 3 * p + METRICS_AUTH_BLOCKED];
	}
	printf("logins: %" PRIu64 " failed, %" PRIu64 " blocked, %" PRIu64 " succeeded since start",
	       fail, blocked, ok);
	const char *sep = " (failed: ";
	for (size_t p = 0; p < METRICS_A_COUNT; p++) {
		uint64_t n = s->counter[M_AUTH_FIRST + 3 * p + METRICS_AUTH_FAILURE];
		if (n == 0)
			continue;
		printf("%s%s %" PRIu64, sep, names[p], n);
		sep = ", ";
	}
	puts(sep[0] == ',' ? ")" : "");
}

static int status_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_status_command = {
    "status",
    "is the server running: processes, listeners, queue, logins, certificates",
    "usage: tern [-c FILE] status\n"
    "\n"
    "Prints the running server at a glance: the master's pid and uptime,\n"
    "each worker's pid and memory, the listeners with their connections,\n"
    "the queue (messages waiting, age of the oldest), messages received in\n"
    "the last hour, mail delivered, relayed, deferred and bounced, failed\n"
    "logins, and the expiry of the configured certificates (a warning when\n"
    "one expires within 14 days).  The counts are those of GET /metrics\n"
    "(docs/admin.md \"Monitoring\"), since the server started.\n"
    "\n"
    "Exit codes: 0 running, 1 not running (or its data cannot be read),\n"
    "2 bad usage or config.\n",
    status_run,
};

static int status_run(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_status_command;
	int n_pos = 0;
	int r = cli_parse_args(cmd, "status", argc, argv, 1, NULL, 0, NULL, 0, &n_pos);
	if (r == CLI_HELP) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (r != 0)
		return r;
	struct config *cfg = NULL;
	int rc = CLI_OK;
	struct store *st = cli_open_store(cfg_path, &cfg, &rc);
	if (st == NULL)
		return rc;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", cfg->data_dir, METRICS_FILE);
	struct metrics_snapshot *s = xcalloc(1, sizeof *s);
	pid_t master = 0;
	if (metrics_attach(path) < 0) {
		if (errno == ENOENT)
			printf("tern is not running (no %s: `tern serve` makes it)\n", path);
		else if (errno == EPROTO)
			printf("tern: %s is from another version of tern; is an old server "
			       "running?\n",
			       path);
		else
			printf("tern: cannot read %s: %s\n", path, strerror(errno));
		rc = CLI_FAIL;
	} else if (metrics_snapshot(s) < 0 || !master_alive(s, &master)) {
		if (master > 0)
			printf("tern is not running (its master, pid %ld, is gone)\n",
			       (long)master);
		else
			printf("tern is not running\n");
		rc = CLI_FAIL;
	}
	metrics_shutdown();
	if (rc != CLI_OK) {
		free(s);
		store_close(&st);
		config_free(&cfg);
		return rc;
	}
	printf("tern %s is running: master pid %ld, up ", s->version, (long)master);
	put_duration(s->now - s->start_time);
	printf(", config %s\n", cfg->path);
	size_t n_workers = 0;
	for (size_t i = 0; i < s->n_proc; i++)
		n_workers += s->proc[i].kind == METRICS_P_WORKER;
	printf("processes: %zu workers\n", n_workers);
	for (size_t i = 0; i < s->n_proc; i++) {
		const struct metrics_proc_info *p = &s->proc[i];
		char name[32];
		if (p->kind == METRICS_P_WORKER)
			snprintf(name, sizeof name, "worker %zu", p->slot);
		else
			snprintf(name, sizeof name, "%s",
				 p->kind == METRICS_P_MASTER ? "master" : "queue");
		printf("  %-10s pid %-8ld memory ", name, (long)p->pid);
		put_mib(p->rss_bytes);
		putchar('\n');
	}
	put_listeners(cfg, s);
	struct store_queue_stats q;
	char err[256];
	if (store_queue_stats(st, &q, err, sizeof err) < 0) {
		printf("queue: cannot read it: %s\n", err);
	} else if (q.messages == 0) {
		puts("queue: empty");
	} else {
		printf("queue: %" PRIu64 " message%s (%" PRIu64 " recipient%s), oldest queued ",
		       q.messages, q.messages == 1 ? "" : "s", q.recipients,
		       q.recipients == 1 ? "" : "s");
		put_duration(s->now - q.oldest);
		puts(" ago");
	}
	printf(
	    "messages: %" PRIu64 " received in the last hour; since start %" PRIu64
	    " received (%" PRIu64 " port 25, %" PRIu64 " submission), %" PRIu64
	    " delivered locally, %" PRIu64 " relayed, %" PRIu64 " deferred, %" PRIu64 " bounced\n",
	    s->received_last_hour, s->counter[M_RECEIVED_SMTP] + s->counter[M_RECEIVED_SUBMISSION],
	    s->counter[M_RECEIVED_SMTP], s->counter[M_RECEIVED_SUBMISSION],
	    s->counter[M_DELIVERED_LOCAL], s->counter[M_RELAYED], s->counter[M_DEFERRED],
	    s->counter[M_BOUNCED]);
	put_auth(s);
	put_certs(cfg);
	free(s);
	store_close(&st);
	config_free(&cfg);
	return CLI_OK;
}
