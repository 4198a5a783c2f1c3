/*
 * cli-queue.c - `tern queue list|show|retry|remove|hold|release` and
 * `tern trace ID|MESSAGE-ID|ADDRESS`: the outbound queue seen and steered
 * through the store API (src/store queue section), and the journey of a
 * message (local deliveries and remote attempts, from the delivery log)
 * told in plain words (src/queue/queue-explain.h).
 *
 * Check, then act: arguments first (exit 2), then the message must exist
 * (exit 1), then the change.  The queue runner picks up retry/release
 * within its poll interval (at most a minute; at once when the change
 * reaches it through a running server's notification channel).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli-int.h"
#include "config.h"
#include "queue-explain.h"
#include "store.h"
#include "strutil.h"

#define TRACE_MAX 10

extern const struct cli_command cli_queue_command;
extern const struct cli_command cli_trace_command;

static void put_time(FILE *f, int64_t t)
{
	if (t <= 0) {
		fputs("-", f);
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	char buf[32];
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
	fputs(buf, f);
}

static bool active(const char *state)
{
	return !strcmp(state, "deferred") || !strcmp(state, "sending") || !strcmp(state, "hold");
}

static int parse_id(const char *s, int64_t *id)
{
	uint64_t v;
	if (strutil_parse_u64(s, strlen(s), INT64_MAX, &v) < 0 || v == 0)
		return -1;
	*id = (int64_t)v;
	return 0;
}

/* ------------------------------------------------------------------ list */

/* ctx is the store. */
static int list_row(void *ctx, const struct store_queue_rcpt *r)
{
	struct store *st = ctx;
	if (!active(r->state))
		return 0;
	printf("%" PRId64 "\t%s\t%" PRId64 "\t", r->message_id, r->state, r->attempts);
	if (!strcmp(r->state, "hold"))
		fputs("-", stdout);
	else
		put_time(stdout, r->next_attempt);
	putchar('\t');
	struct store_queue_message m;
	if (store_queue_message_get(st, r->message_id, &m) == 1)
		cli_put_sanitized(stdout, m.sender[0] ? m.sender : "<>");
	else
		fputs("-", stdout);
	putchar('\t');
	cli_put_sanitized(stdout, r->rcpt);
	putchar('\t');
	cli_put_sanitized(stdout, r->last_reply[0] ? r->last_reply : "-");
	putchar('\n');
	return 0;
}

/* ------------------------------------------------------------------ show */

static int show_rcpt(void *ctx, const struct store_queue_rcpt *r)
{
	(void)ctx;
	fputs("Recipient: ", stdout);
	cli_put_sanitized(stdout, r->rcpt);
	printf("\n  State: %s\n  Attempts: %" PRId64 "\n", r->state, r->attempts);
	if (!strcmp(r->state, "deferred")) {
		fputs("  Next-Attempt: ", stdout);
		put_time(stdout, r->next_attempt);
		fputs(" UTC\n", stdout);
	}
	if (r->remote[0]) {
		fputs("  Remote: ", stdout);
		cli_put_sanitized(stdout, r->remote);
		putchar('\n');
	}
	if (r->last_reply[0]) {
		fputs("  Last-Reply: ", stdout);
		cli_put_sanitized(stdout, r->last_reply);
		putchar('\n');
	}
	return 0;
}

static void show_message(const struct store_queue_message *m)
{
	printf("Queue-ID: %" PRId64 "\n", m->id);
	/* A message delivered only locally has no queue file. */
	printf("File: %s\n", m->file[0] ? m->file : "-");
	fputs("Sender: ", stdout);
	cli_put_sanitized(stdout, m->sender[0] ? m->sender : "<>");
	fputs("\nQueued: ", stdout);
	put_time(stdout, m->created);
	printf(" UTC\nSize: %" PRIu64 "\n", m->size);
	fputs("Message-ID: ", stdout);
	cli_put_sanitized(stdout, m->msgid[0] ? m->msgid : "-");
	fputs("\nReceived: ", stdout);
	cli_put_sanitized(stdout, m->received[0] ? m->received : "-");
	putchar('\n');
}

/* ----------------------------------------------------------------- queue */

static int queue_run(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_queue_command;
	static const char *const subs[] = {"list", "show", "retry", "remove", "hold", "release"};
	if (argc < 2)
		return cli_usage_error(cmd, "queue", "missing sub-command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	size_t s;
	for (s = 0; s < sizeof subs / sizeof subs[0]; s++)
		if (!strcmp(argv[1], subs[s]))
			break;
	if (s == sizeof subs / sizeof subs[0])
		return cli_usage_error(cmd, "queue", "unknown sub-command \"%s\"", argv[1]);
	char what[32];
	snprintf(what, sizeof what, "queue %s", subs[s]);
	char *pos[2];
	int n_pos = 0;
	int rc = cli_parse_args(cmd, what, argc, argv, 2, NULL, 0, pos, 1, &n_pos);
	if (rc == CLI_HELP) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (rc != 0)
		return rc;
	bool is_list = s == 0;
	if (is_list && n_pos != 0)
		return cli_usage_error(cmd, what, "unexpected argument \"%s\"", pos[0]);
	int64_t id = 0;
	if (!is_list) {
		if (n_pos != 1)
			return cli_usage_error(cmd, what, "missing queue ID");
		if (parse_id(pos[0], &id) < 0)
			return cli_usage_error(cmd, what, "\"%s\" is not a queue ID (a number)",
					       pos[0]);
	}
	struct config *cfg = NULL;
	struct store *st = cli_open_store(cfg_path, &cfg, &rc);
	if (st == NULL)
		return rc;
	char err[512];
	rc = CLI_OK;
	struct store_queue_message m;
	if (is_list) {
		puts("ID\tSTATE\tATTEMPTS\tNEXT\tSENDER\tRCPT\tLAST_REPLY");
		if (store_queue_rcpts(st, 0, list_row, st, err, sizeof err) < 0)
			rc = cli_fail(what, "%s", err);
		goto done;
	}
	int got = store_queue_message_get(st, id, &m);
	if (got <= 0) {
		rc = got < 0 ? cli_fail(what, "cannot read the queue")
			     : cli_fail(what, "no queued message %" PRId64, id);
		goto done;
	}
	if (s == 1) {
		show_message(&m);
		if (store_queue_rcpts(st, id, show_rcpt, NULL, err, sizeof err) < 0)
			rc = cli_fail(what, "%s", err);
		goto done;
	}
	static const char *const done_word[] = {"", "", "retried", "removed", "held", "released"};
	size_t n = 0;
	if (store_queue_admin(st, id, subs[s], &n, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s", err);
		goto done;
	}
	if (n == 0) {
		rc = cli_fail(what, "message %" PRId64 " has no recipient to %s", id, subs[s]);
		goto done;
	}
	printf("queue: %" PRId64 " %s (%zu recipient%s)\n", id, done_word[s], n, n == 1 ? "" : "s");
done:
	store_close(&st);
	config_free(&cfg);
	return rc;
}

const struct cli_command cli_queue_command = {
    "queue",
    "look at and steer the outbound queue",
    "usage: tern [-c FILE] queue list\n"
    "       tern [-c FILE] queue show|retry|remove|hold|release ID\n"
    "\n"
    "  list     one tab-separated line per recipient still in the queue,\n"
    "           after a header line:\n"
    "           ID STATE ATTEMPTS NEXT SENDER RCPT LAST_REPLY\n"
    "           STATE is deferred, sending or hold; NEXT is the next attempt\n"
    "           (UTC, \"-\" when held)\n"
    "  show     the message and each of its recipients, one field a line\n"
    "  retry    try the recipients of message ID again now\n"
    "  remove   stop delivering message ID (no bounce is sent)\n"
    "  hold     keep message ID in the queue without trying it\n"
    "  release  undo hold (tried again now)\n"
    "\n"
    "ID is the number in the first column of `queue list`.  See also\n"
    "`tern trace`, and docs/outbound.md.\n",
    queue_run,
};

/* ----------------------------------------------------------------- trace */

/* The TLS line of an attempt: "TLS 1.3, certificate verified, cipher X",
 * "TLS 1.2, certificate not verified: REASON, cipher X" or "no TLS
 * (REASON)".  Nothing for attempts without a connection or recorded
 * before TLS was. */
static void trace_tls(const struct store_queue_event *e)
{
	if (e->tls_version[0] == '\0')
		return;
	fputs("                       ", stdout);
	if (!strcmp(e->tls_version, "none")) {
		fputs("no TLS", stdout);
		if (e->tls_note[0]) {
			fputs(" (", stdout);
			cli_put_sanitized(stdout, e->tls_note);
			putchar(')');
		}
		putchar('\n');
		return;
	}
	/* "TLSv1.3" reads "TLS 1.3". */
	if (!strncmp(e->tls_version, "TLSv", 4)) {
		fputs("TLS ", stdout);
		cli_put_sanitized(stdout, e->tls_version + 4);
	} else {
		cli_put_sanitized(stdout, e->tls_version);
	}
	if (e->tls_verified) {
		fputs(", certificate verified", stdout);
	} else {
		fputs(", certificate not verified: ", stdout);
		cli_put_sanitized(stdout, e->tls_note[0] ? e->tls_note : "unknown reason");
	}
	if (e->tls_cipher[0]) {
		fputs(", cipher ", stdout);
		cli_put_sanitized(stdout, e->tls_cipher);
	}
	putchar('\n');
}

/* A local delivery: "to alice@x's mailbox, folder INBOX (through alias
 * info@x; filed there by Sieve)", or its discarding by Sieve. */
static void trace_local(const struct store_queue_event *e)
{
	if (e->folder[0]) {
		fputs("to ", stdout);
		cli_put_sanitized(stdout, e->account);
		fputs("'s mailbox, folder ", stdout);
		cli_put_sanitized(stdout, e->folder);
	} else {
		fputs("for ", stdout);
		cli_put_sanitized(stdout, e->account);
		fputs("'s mailbox: nothing stored", stdout);
	}
	if (e->via[0] || e->reply[0]) {
		fputs(" (", stdout);
		if (e->via[0]) {
			fputs("through ", stdout);
			cli_put_sanitized(stdout, e->via);
			if (e->reply[0])
				fputs("; ", stdout);
		}
		cli_put_sanitized(stdout, e->reply);
		putchar(')');
	}
}

static int trace_event(void *ctx, const struct store_queue_event *e)
{
	(void)ctx;
	fputs("  ", stdout);
	put_time(stdout, e->time);
	printf("  %-9s ", e->event);
	if (e->rcpt[0]) {
		cli_put_sanitized(stdout, e->rcpt);
		putchar(' ');
	}
	if (e->account[0]) {
		trace_local(e);
	} else if (!strcmp(e->event, "queued")) {
		fputs("from ", stdout);
		cli_put_sanitized(stdout, e->reply[0] ? e->reply : "<>");
	} else {
		if (e->mx[0]) {
			fputs("via ", stdout);
			cli_put_sanitized(stdout, e->mx);
			fputs(" [", stdout);
			cli_put_sanitized(stdout, e->ip);
			fputs("]", stdout);
			if (e->reply[0])
				fputs(": ", stdout);
		}
		cli_put_sanitized(stdout, e->reply);
	}
	putchar('\n');
	if (!strcmp(e->event, "attempt"))
		trace_tls(e);
	/* Each failed attempt gets its explanation: a retry that later
	 * worked still says what happened (greylisting, say). */
	char why[QUEUE_EXPLAIN_MAX];
	if (!strcmp(e->event, "attempt") && e->reply[0] != '2' && e->reply[0] != '\0')
		printf("                       In plain words: %s\n",
		       queue_explain_reply(e->reply, e->status, why, sizeof why));
	return 0;
}

static int trace_rcpt(void *ctx, const struct store_queue_rcpt *r)
{
	(void)ctx;
	fputs("  Now: ", stdout);
	cli_put_sanitized(stdout, r->rcpt);
	printf(" %s", r->state);
	if (!strcmp(r->state, "deferred")) {
		fputs(", next attempt ", stdout);
		put_time(stdout, r->next_attempt);
		fputs(" UTC", stdout);
	}
	putchar('\n');
	if (!strcmp(r->state, "bounced") || !strcmp(r->state, "deferred") ||
	    !strcmp(r->state, "sending")) {
		if (r->last_reply[0]) {
			fputs("    Last reply: ", stdout);
			cli_put_sanitized(stdout, r->last_reply);
			putchar('\n');
		}
		char why[QUEUE_EXPLAIN_MAX];
		if (r->last_reply[0] || r->status[0])
			printf("    In plain words: %s\n",
			       queue_explain_reply(r->last_reply, r->status, why, sizeof why));
	}
	return 0;
}

static int trace_run(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_trace_command;
	char *pos[1];
	int n_pos = 0;
	int rc = cli_parse_args(cmd, "trace", argc, argv, 1, NULL, 0, pos, 1, &n_pos);
	if (rc == CLI_HELP) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (rc != 0)
		return rc;
	if (n_pos != 1)
		return cli_usage_error(cmd, "trace", "missing ID, MESSAGE-ID or ADDRESS");
	struct config *cfg = NULL;
	struct store *st = cli_open_store(cfg_path, &cfg, &rc);
	if (st == NULL)
		return rc;
	int64_t ids[TRACE_MAX];
	size_t n = 0;
	char err[512];
	rc = CLI_OK;
	if (store_queue_find(st, pos[0], ids, TRACE_MAX, &n, err, sizeof err) < 0) {
		rc = cli_fail("trace", "%s", err);
		goto done;
	}
	if (n == 0) {
		rc = cli_fail("trace",
			      "no message matches \"%s\" (finished messages, local "
			      "deliveries included, are remembered for queue.history)",
			      pos[0]);
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_queue_message m;
		if (store_queue_message_get(st, ids[i], &m) != 1)
			continue;
		if (i > 0)
			putchar('\n');
		printf("Message %" PRId64 " from ", m.id);
		cli_put_sanitized(stdout, m.sender[0] ? m.sender : "<>");
		printf(", %" PRIu64 " bytes, Message-ID ", m.size);
		cli_put_sanitized(stdout, m.msgid[0] ? m.msgid : "-");
		fputs("\n  Received: ", stdout);
		cli_put_sanitized(stdout, m.received[0] ? m.received : "-");
		putchar('\n');
		if (store_queue_log(st, m.id, trace_event, NULL, err, sizeof err) < 0 ||
		    store_queue_rcpts(st, m.id, trace_rcpt, NULL, err, sizeof err) < 0) {
			rc = cli_fail("trace", "%s", err);
			goto done;
		}
	}
done:
	store_close(&st);
	config_free(&cfg);
	return rc;
}

const struct cli_command cli_trace_command = {
    "trace",
    "tell what became of a message",
    "usage: tern [-c FILE] trace ID|MESSAGE-ID|ADDRESS\n"
    "\n"
    "Prints the journey of the matching messages (the 10 newest): how it\n"
    "was received, each local delivery (the account, the folder, and the\n"
    "alias, catch-all, plus-addressing or Sieve script on the way), every\n"
    "remote delivery attempt (MX host, address, the remote's exact reply),\n"
    "the state of each queued recipient and, for failures, what the reply\n"
    "means in plain words.  The key is a queue ID, the SMTP id of our\n"
    "Received: line, a Message-ID (with or without <>), or the address of\n"
    "the sender, a recipient or the account a local delivery went to.\n",
    trace_run,
};
