/*
 * test-metrics.c - unit tests for src/lib/metrics.c: counting in the
 * shared table (also from a forked child), the file a reader maps
 * read-only and its version check, histograms' buckets, and the text
 * exposition, checked line by line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "metrics.h"
#include "test.h"

static struct metrics_snapshot snap;

static const char *render(void)
{
	static struct buf b;
	buf_free(&b);
	CHECK_INT(metrics_snapshot(&snap), 0);
	CHECK_INT(metrics_render(&snap, &b), 0);
	return buf_cstr(&b);
}

/* The line of text starting with prefix, up to its end (static copy). */
static const char *line_of(const char *text, const char *prefix)
{
	static char out[256];
	size_t n = strlen(prefix);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, n) == 0 && (p[n] == ' ')) {
			size_t len = strcspn(p, "\n");
			snprintf(out, sizeof out, "%.*s", (int)len, p);
			return out;
		}
	}
	return "";
}

/* The sample of series in text has the value want. */
#define EXPECT(text, series, want) CHECK_STR(line_of(text, series), series " " want)

TEST(metrics_without_table_counts_nothing)
{
	metrics_shutdown();
	metrics_inc(M_RECEIVED_SMTP);
	metrics_observe(METRICS_H_DNS, 5);
	CHECK_INT(metrics_snapshot(&snap), -1);
}

TEST(metrics_counters_and_text)
{
	CHECK_INT(metrics_init(NULL, "9.9.9"), 0);
	metrics_inc(M_RECEIVED_SMTP);
	metrics_inc(M_RECEIVED_SMTP);
	metrics_inc(M_RECEIVED_SUBMISSION);
	metrics_add(M_DELIVERED_LOCAL, 3);
	metrics_add(M_DELIVERED_LOCAL, 0);
	metrics_conn(METRICS_L_IMAPS);
	metrics_conn(METRICS_L_COUNT); /* out of range: ignored */
	metrics_auth("imap", "failed");
	metrics_auth("imap", "failed");
	metrics_auth("pop3", "ok");
	metrics_auth("smtp", "blocked");
	metrics_auth("gopher", "ok"); /* not counted */
	metrics_set_proc(0, getpid(), METRICS_P_WORKER);
	metrics_set_open(0, METRICS_L_SMTP, 4);
	metrics_set_proc(1, getpid(), METRICS_P_QUEUE);
	metrics_set_open(1, METRICS_L_SMTP, 1);
	metrics_set_proc(1, 0, METRICS_P_NONE); /* gone: its gauges go too */
	const char *t = render();
	EXPECT(t, "tern_build_info{version=\"9.9.9\"}", "1");
	EXPECT(t, "tern_messages_received_total{via=\"smtp\"}", "2");
	EXPECT(t, "tern_messages_received_total{via=\"submission\"}", "1");
	EXPECT(t, "tern_messages_delivered_total", "3");
	EXPECT(t, "tern_connections_total{protocol=\"imap\",listener=\"imaps\"}", "1");
	EXPECT(t, "tern_connections_open{protocol=\"smtp\",listener=\"smtp\"}", "4");
	EXPECT(t, "tern_auth_attempts_total{protocol=\"imap\",result=\"failure\"}", "2");
	EXPECT(t, "tern_auth_attempts_total{protocol=\"pop3\",result=\"success\"}", "1");
	EXPECT(t, "tern_auth_attempts_total{protocol=\"smtp\",result=\"blocked\"}", "1");
	CHECK(strstr(t, "# TYPE tern_messages_received_total counter\n") != NULL);
	CHECK(strstr(t, "# TYPE tern_connections_open gauge\n") != NULL);
	/* the queue gauges only when the caller read the queue */
	CHECK(strstr(t, "tern_queue_messages") == NULL);
	snap.queue_known = true;
	snap.queue_messages = 2;
	snap.queue_recipients = 5;
	snap.queue_oldest = snap.now - 90;
	struct buf b = BUF_INIT;
	CHECK_INT(metrics_render(&snap, &b), 0);
	EXPECT(buf_cstr(&b), "tern_queue_messages", "2");
	EXPECT(buf_cstr(&b), "tern_queue_recipients", "5");
	EXPECT(buf_cstr(&b), "tern_queue_oldest_age_seconds", "90");
	buf_free(&b);
	/* processes: the master (this process, from init) and worker 1 */
	CHECK_INT(snap.n_proc, 2);
	CHECK_INT(snap.proc[0].kind, METRICS_P_MASTER);
	CHECK_INT(snap.proc[1].kind, METRICS_P_WORKER);
	CHECK_INT(snap.proc[1].slot, 1);
	CHECK(snap.proc[1].rss_bytes > 0);
	CHECK(strstr(t, "tern_process_resident_memory_bytes{process=\"worker\",worker=\"1\"} ") !=
	      NULL);
	CHECK(strstr(t, "tern_process_resident_memory_bytes{process=\"queue\"}") == NULL);
	CHECK_INT(snap.received_last_hour, 3);
	/* an output bound too small: -1, never a cut line passed as whole */
	struct buf small;
	buf_init(&small, 100);
	CHECK_INT(metrics_render(&snap, &small), -1);
	buf_free(&small);
	metrics_shutdown();
}

TEST(metrics_histogram_buckets)
{
	CHECK_INT(metrics_init(NULL, "1"), 0);
	metrics_observe(METRICS_H_DNS, 1000);     /* exactly 1 ms: le=0.001 */
	metrics_observe(METRICS_H_DNS, 1001);     /* le=0.0025 */
	metrics_observe(METRICS_H_DNS, 300000);   /* le=0.5 */
	metrics_observe(METRICS_H_DNS, 60000000); /* 60 s: only +Inf */
	const char *t = render();
	EXPECT(t, "tern_dns_lookup_duration_seconds_bucket{le=\"0.001\"}", "1");
	EXPECT(t, "tern_dns_lookup_duration_seconds_bucket{le=\"0.0025\"}", "2");
	EXPECT(t, "tern_dns_lookup_duration_seconds_bucket{le=\"0.25\"}", "2");
	EXPECT(t, "tern_dns_lookup_duration_seconds_bucket{le=\"0.5\"}", "3");
	EXPECT(t, "tern_dns_lookup_duration_seconds_bucket{le=\"10\"}", "3");
	EXPECT(t, "tern_dns_lookup_duration_seconds_bucket{le=\"+Inf\"}", "4");
	EXPECT(t, "tern_dns_lookup_duration_seconds_sum", "60.302001");
	EXPECT(t, "tern_dns_lookup_duration_seconds_count", "4");
	EXPECT(t, "tern_store_commit_duration_seconds_count", "0");
	CHECK(strstr(t, "# TYPE tern_dns_lookup_duration_seconds histogram\n") != NULL);
	metrics_shutdown();
}

TEST(metrics_shared_with_child_and_reader)
{
	char dir[] = "/tmp/tern-metrics-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, METRICS_FILE);
	CHECK_INT(metrics_init(path, "1.2"), 0);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 1000; i++)
			metrics_inc(M_BOUNCED);
		_exit(0);
	}
	for (int i = 0; i < 1000; i++)
		metrics_inc(M_BOUNCED);
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	metrics_shutdown();
	/* a reader (the CLI) maps the file read-only and sees both counts;
	 * its own counting does nothing (and does not fault) */
	CHECK_INT(metrics_attach(path), 0);
	metrics_inc(M_BOUNCED);
	CHECK_INT(metrics_snapshot(&snap), 0);
	CHECK_INT(snap.counter[M_BOUNCED], 2000);
	CHECK_STR(snap.version, "1.2");
	metrics_shutdown();
	/* another layout version: EPROTO; garbage: EINVAL; none: ENOENT */
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	unsigned v = METRICS_VERSION + 1;
	CHECK_INT(pwrite(fd, &v, sizeof v, 8), (long long)sizeof v);
	CHECK_INT(metrics_attach(path), -1);
	CHECK_INT(errno, EPROTO);
	CHECK_INT(pwrite(fd, "garbage!", 8, 0), 8);
	close(fd);
	CHECK_INT(metrics_attach(path), -1);
	CHECK_INT(errno, EINVAL);
	unlink(path);
	CHECK_INT(metrics_attach(path), -1);
	CHECK_INT(errno, ENOENT);
	rmdir(dir);
}
