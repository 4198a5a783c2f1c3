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
/* ---------------------------------------------------------- collecting */

/* Certificates shown at most (tls.cert and the tls.sni_dir folders). */
#define MAX_CERTS 256

struct cert_info {
	char path[4096];
	char subject[256];
	char not_after[32]; /* "2027-03-01 12:00 UTC"; "" unreadable */
	bool readable;      /* a certificate with a readable expiry */
	int days;           /* left (negative: expired) */
	bool expired, warn;
};

/* What one `tern status` shows, read before anything is printed. */
struct status {
	const struct config *cfg;
	struct metrics_snapshot *s;
	pid_t master;
	bool queue_ok;
	struct store_queue_stats q;
	char queue_err[256];
	struct cert_info *certs;
	size_t n_certs;
	bool certs_cut; /* more than MAX_CERTS */
};

static const char *const auth_names[METRICS_A_COUNT] = {"smtp", "imap", "pop3", "managesieve",
							"jmap"};

static void read_cert(const char *path, struct cert_info *ci)
{
	memset(ci, 0, sizeof *ci);
	snprintf(ci->path, sizeof ci->path, "%s", path);
	FILE *f = fopen(path, "re");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	ci->warn = true;
	if (x == NULL)
		return;
	X509_NAME_oneline(X509_get_subject_name(x), ci->subject, sizeof ci->subject);
	const ASN1_TIME *na = X509_get0_notAfter(x);
	struct tm tm;
	int secs = 0;
	ci->readable =
	    ASN1_TIME_to_tm(na, &tm) == 1 && ASN1_TIME_diff(&ci->days, &secs, NULL, na) == 1;
	X509_free(x);
	if (!ci->readable)
		return;
	strftime(ci->not_after, sizeof ci->not_after, "%Y-%m-%d %H:%M UTC", &tm);
	ci->expired = ci->days < 0 || (ci->days == 0 && secs <= 0);
	ci->warn = ci->expired || ci->days < CERT_WARN_DAYS;
}

static void add_cert(struct status *st, const char *path)
{
	if (st->n_certs == MAX_CERTS) {
		st->certs_cut = true;
		return;
	}
	read_cert(path, &st->certs[st->n_certs++]);
}

static void collect_certs(struct status *st)
{
	const struct config *c = st->cfg;
	st->certs = xcalloc(MAX_CERTS, sizeof *st->certs);
	if (c->tls_cert[0])
		add_cert(st, c->tls_cert);
	DIR *d = c->tls_sni_dir[0] ? opendir(c->tls_sni_dir) : NULL;
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s/cert.pem", c->tls_sni_dir, e->d_name);
		if (access(path, F_OK) == 0)
			add_cert(st, path);
	}
	closedir(d);
}

/* The listen values of the config, by enum metrics_listener. */
static void listen_values(const struct config *c, const char *out[METRICS_L_COUNT])
{
	const char *v[METRICS_L_COUNT] = {
	    c->smtp_listen,  c->submission_listen, c->submissions_listen, c->imap_listen,
	    c->imaps_listen, c->pop3_listen,       c->pop3s_listen,       c->managesieve_listen,
	    c->http_listen,  c->https_listen,
	};
	memcpy(out, v, sizeof v);
}

static uint64_t open_of(const struct metrics_snapshot *s, size_t l)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->n_proc; i++)
		n += s->proc[i].open[l];
	return n;
}

static uint64_t auth_count(const struct metrics_snapshot *s, size_t proto,
			   enum metrics_auth_result r)
{
	return s->counter[M_AUTH_FIRST + 3 * proto + r];
}

static const char *proc_name(const struct metrics_proc_info *p, char *buf, size_t bufsz)
{
	if (p->kind == METRICS_P_WORKER)
		snprintf(buf, bufsz, "worker %zu", p->slot);
	else
		snprintf(buf, bufsz, "%s", p->kind == METRICS_P_MASTER ? "master" : "queue");
	return buf;
}

/* -------------------------------------------------------------- text */

static void text_listeners(const struct status *st)
{
	const struct config *c = st->cfg;
	const char *values[METRICS_L_COUNT];
	listen_values(c, values);
	puts("listeners:");
	for (size_t l = 0; l < METRICS_L_COUNT; l++)
		if (values[l][0] != '\0')
			printf("  %-12s %-24s %" PRIu64 " open, %" PRIu64 " since start\n",
			       metrics_listener_name((enum metrics_listener)l), values[l],
			       open_of(st->s, l), st->s->counter[M_CONN_FIRST + l]);
	if (c->metrics_listen[0])
		printf("  %-12s %-24s GET /metrics%s\n", "metrics", c->metrics_listen,
		       c->metrics_tls ? " (HTTPS)" : "");
}

static void text_auth(const struct metrics_snapshot *s)
{
	uint64_t ok = 0, fail = 0, blocked = 0;
	for (size_t p = 0; p < METRICS_A_COUNT; p++) {
		ok += auth_count(s, p, METRICS_AUTH_SUCCESS);
		fail += auth_count(s, p, METRICS_AUTH_FAILURE);
		blocked += auth_count(s, p, METRICS_AUTH_BLOCKED);
	}
	printf("logins: %" PRIu64 " failed, %" PRIu64 " blocked, %" PRIu64 " succeeded since start",
	       fail, blocked, ok);
	const char *sep = " (failed: ";
	for (size_t p = 0; p < METRICS_A_COUNT; p++) {
		uint64_t n = auth_count(s, p, METRICS_AUTH_FAILURE);
		if (n == 0)
			continue;
		printf("%s%s %" PRIu64, sep, auth_names[p], n);
		sep = ", ";
	}
	puts(sep[0] == ',' ? ")" : "");
}

static void text_certs(const struct status *st)
{
	if (st->n_certs == 0)
		return;
	puts("certificates:");
	for (size_t i = 0; i < st->n_certs; i++) {
		const struct cert_info *ci = &st->certs[i];
		if (ci->subject[0] == '\0' && !ci->readable)
			printf("  %s: cannot read a certificate\n", ci->path);
		else if (!ci->readable)
			printf("  %s: %s, unreadable expiry date\n", ci->path, ci->subject);
		else if (ci->expired)
			printf("  %s: %s, expires %s (EXPIRED)\n", ci->path, ci->subject,
			       ci->not_after);
		else
			printf("  %s: %s, expires %s (in %d days)\n", ci->path, ci->subject,
			       ci->not_after, ci->days);
		if (ci->readable && ci->warn)
			printf("  warning: %s %s\n", ci->path,
			       ci->expired ? "has expired: clients refuse it"
					   : "expires in less than 14 days: renew it");
	}
	if (st->certs_cut)
		printf("  (more than %d certificates; the others are not shown)\n", MAX_CERTS);
}

static void text_status(const struct status *st)
{
	const struct metrics_snapshot *s = st->s;
	printf("tern %s is running: master pid %ld, up ", s->version, (long)st->master);
	put_duration(s->now - s->start_time);
	printf(", config %s\n", st->cfg->path);
	size_t n_workers = 0;
	for (size_t i = 0; i < s->n_proc; i++)
		n_workers += s->proc[i].kind == METRICS_P_WORKER;
	printf("processes: %zu workers\n", n_workers);
	for (size_t i = 0; i < s->n_proc; i++) {
		char name[32];
		printf("  %-10s pid %-8ld memory ", proc_name(&s->proc[i], name, sizeof name),
		       (long)s->proc[i].pid);
		put_mib(s->proc[i].rss_bytes);
		putchar('\n');
	}
	text_listeners(st);
	if (!st->queue_ok) {
		printf("queue: cannot read it: %s\n", st->queue_err);
	} else if (st->q.messages == 0) {
		puts("queue: empty");
	} else {
		printf("queue: %" PRIu64 " message%s (%" PRIu64 " recipient%s), oldest queued ",
		       st->q.messages, st->q.messages == 1 ? "" : "s", st->q.recipients,
		       st->q.recipients == 1 ? "" : "s");
		put_duration(s->now - st->q.oldest);
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
	text_auth(s);
	text_certs(st);
}

/* -------------------------------------------------------------- JSON */

/* s as a JSON string: quotes, backslashes and control characters escaped
 * (other bytes as they are: config paths and names). */
static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* running: "false", or "null" when it cannot tell. */
static void json_not_running(const char *running, const char *why)
{
	printf("{\"running\":%s,\"reason\":", running);
	json_str(why);
	puts("}");
}

static void json_status(const struct status *st)
{
	const struct metrics_snapshot *s = st->s;
	fputs("{\"running\":true,\"version\":", stdout);
	json_str(s->version);
	printf(",\"master_pid\":%ld,\"start_time\":%" PRId64 ",\"uptime_seconds\":%" PRId64
	       ",\"config\":",
	       (long)st->master, s->start_time, s->now - s->start_time);
	json_str(st->cfg->path);
	fputs(",\"processes\":[", stdout);
	for (size_t i = 0; i < s->n_proc; i++) {
		const struct metrics_proc_info *p = &s->proc[i];
		printf("%s{\"process\":\"%s\",\"worker\":%zu,\"pid\":%ld,\"rss_bytes\":%" PRIu64
		       "}",
		       i ? "," : "",
		       p->kind == METRICS_P_MASTER  ? "master"
		       : p->kind == METRICS_P_QUEUE ? "queue"
						    : "worker",
		       p->slot, (long)p->pid, p->rss_bytes);
	}
	fputs("],\"listeners\":[", stdout);
	const char *values[METRICS_L_COUNT];
	listen_values(st->cfg, values);
	const char *sep = "";
	for (size_t l = 0; l < METRICS_L_COUNT; l++) {
		if (values[l][0] == '\0')
			continue;
		printf("%s{\"listener\":\"%s\",\"address\":", sep,
		       metrics_listener_name((enum metrics_listener)l));
		json_str(values[l]);
		printf(",\"open\":%" PRIu64 ",\"total\":%" PRIu64 "}", open_of(s, l),
		       s->counter[M_CONN_FIRST + l]);
		sep = ",";
	}
	fputs("],\"queue\":", stdout);
	if (st->queue_ok)
		printf("{\"messages\":%" PRIu64 ",\"recipients\":%" PRIu64
		       ",\"oldest_age_seconds\":%" PRId64 "}",
		       st->q.messages, st->q.recipients, st->q.oldest ? s->now - st->q.oldest : 0);
	else
		fputs("null", stdout);
	printf(",\"messages\":{\"received_last_hour\":%" PRIu64 ",\"received_smtp\":%" PRIu64
	       ",\"received_submission\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"relayed\":%" PRIu64
	       ",\"deferred\":%" PRIu64 ",\"bounced\":%" PRIu64 "}",
	       s->received_last_hour, s->counter[M_RECEIVED_SMTP],
	       s->counter[M_RECEIVED_SUBMISSION], s->counter[M_DELIVERED_LOCAL],
	       s->counter[M_RELAYED], s->counter[M_DEFERRED], s->counter[M_BOUNCED]);
	fputs(",\"logins\":{", stdout);
	for (size_t p = 0; p < METRICS_A_COUNT; p++)
		printf("%s\"%s\":{\"success\":%" PRIu64 ",\"failure\":%" PRIu64
		       ",\"blocked\":%" PRIu64 "}",
		       p ? "," : "", auth_names[p], auth_count(s, p, METRICS_AUTH_SUCCESS),
		       auth_count(s, p, METRICS_AUTH_FAILURE),
		       auth_count(s, p, METRICS_AUTH_BLOCKED));
	fputs("},\"certificates\":[", stdout);
	for (size_t i = 0; i < st->n_certs; i++) {
		const struct cert_info *ci = &st->certs[i];
		fputs(i ? ",{\"path\":" : "{\"path\":", stdout);
		json_str(ci->path);
		fputs(",\"subject\":", stdout);
		json_str(ci->subject);
		if (ci->readable)
			printf(",\"not_after\":\"%s\",\"days_left\":%d", ci->not_after, ci->days);
		else
			fputs(",\"not_after\":null,\"days_left\":null", stdout);
		printf(",\"warning\":%s}", ci->warn ? "true" : "false");
	}
	puts("]}");
}

/* ----------------------------------------------------------- command */

static int status_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_status_command = {
    "status",
    "is the server running: processes, listeners, queue, logins, certificates",
    "usage: tern [-c FILE] status [--json]\n"
    "\n"
    "Prints the running server at a glance: the master's pid and uptime,\n"
    "each worker's pid and memory, the listeners with their connections,\n"
    "the queue (messages waiting, age of the oldest), messages received in\n"
    "the last hour, mail delivered, relayed, deferred and bounced, failed\n"
    "logins, and the expiry of the configured certificates (a warning when\n"
    "one expires within 14 days).  The counts are those of GET /metrics\n"
    "(docs/admin.md \"Monitoring\"), since the server started.\n"
    "\n"
    "--json   the same as one JSON object ({\"running\": false, \"reason\": ...}\n"
    "         when the server is not running, \"running\": null when that\n"
    "         cannot be told)\n"
    "\n"
    "Exit codes: 0 running, 1 not running (or its data cannot be read),\n"
    "2 bad usage or config.\n",
    status_run,
};

/* Maps the table and checks its master: 1 running, 0 not running, -1
 * cannot tell (the table is unreadable or of another version); the
 * reason into why when not 1. */
static int running(const char *path, struct metrics_snapshot *s, pid_t *master, char *why,
		   size_t whysz)
{
	*master = 0;
	if (metrics_attach(path) < 0) {
		int e = errno;
		if (e == ENOENT)
			snprintf(why, whysz, "no %s: `tern serve` makes it", path);
		else if (e == EPROTO)
			snprintf(why, whysz,
				 "%s is from another version of tern (is an older server running?)",
				 path);
		else
			snprintf(why, whysz, "cannot read %s: %s", path, strerror(e));
		return e == ENOENT ? 0 : -1;
	}
	bool ok = metrics_snapshot(s) == 0 && master_alive(s, master);
	metrics_shutdown();
	if (!ok && *master > 0)
		snprintf(why, whysz, "its master, pid %ld, is gone", (long)*master);
	else if (!ok)
		snprintf(why, whysz, "the table names no master");
	return ok ? 1 : 0;
}

static int status_run(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_status_command;
	bool json = false;
	int first = 1;
	/* the one flag: --json (cli_parse_args takes options with values) */
	if (argc > 1 && !strcmp(argv[1], "--json")) {
		json = true;
		first = 2;
	}
	int n_pos = 0;
	int r = cli_parse_args(cmd, "status", argc, argv, first, NULL, 0, NULL, 0, &n_pos);
	if (r == CLI_HELP) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (r != 0)
		return r;
	struct config *cfg = NULL;
	int rc = CLI_OK;
	struct store *store = cli_open_store(cfg_path, &cfg, &rc);
	if (store == NULL)
		return rc;
	char path[4096], why[4200];
	snprintf(path, sizeof path, "%s/%s", cfg->data_dir, METRICS_FILE);
	struct status st = {.cfg = cfg, .s = xcalloc(1, sizeof *st.s)};
	int up = running(path, st.s, &st.master, why, sizeof why);
	if (up <= 0) {
		if (json)
			json_not_running(up == 0 ? "false" : "null", why);
		else if (up == 0)
			printf("tern is not running (%s)\n", why);
		else
			cli_fail("status", "%s", why);
		rc = CLI_FAIL;
	} else {
		st.queue_ok =
		    store_queue_stats(store, &st.q, st.queue_err, sizeof st.queue_err) == 0;
		collect_certs(&st);
		if (json)
			json_status(&st);
		else
			text_status(&st);
	}
	free(st.certs);
	free(st.s);
	store_close(&store);
	config_free(&cfg);
	return rc;
}
