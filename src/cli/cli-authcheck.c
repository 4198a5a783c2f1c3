/*
 * cli-authcheck.c - `tern auth-check spf IP HELO SENDER`: runs the SPF
 * evaluator (mailauth/spf.h) for one client address and identity, with
 * real DNS: asynchronous lookups (dns/dns.h) through the configured
 * resolver (dns.resolver), on an event loop, as the SMTP receiver will.
 * For admins checking a domain's record, and for the integration tests.
 */
#include <errno.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli-int.h"
#include "cli.h"
#include "config.h"
#include "dns.h"
#include "spf.h"
#include "msgauth.h"
#include "smtp-parse.h"
#include "buf.h"
#include "addr.h"

extern const struct cli_command cli_authcheck_command;

/* RFC 7208 4.6.4: at least 20 seconds for the whole check. */
#define SPF_CLI_TIME_LIMIT 30

struct spf_run {
	struct event_base *base;
	struct dns_resolver *res;
	struct spf_check *check;
	struct dns_query *q; /* the lookup in flight */
	enum spf_qtype qtype; /* its type */
	bool timed_out;
	bool failed;
	char err[256];
};

static void spf_advance(struct spf_run *run);

static void spf_dns_cb(void *ctx, const struct dns_rr_result *r)
{
	struct spf_run *run = ctx;
	run->q = NULL;
	struct spf_rr rr[DNS_MAX_RRS];
	for (size_t i = 0; i < r->n; i++) {
		rr[i].data = r->rr[i].data;
		rr[i].len = r->rr[i].len;
	}
	enum spf_dns st = r->status == DNS_OK         ? SPF_DNS_OK
			  : r->status == DNS_NXDOMAIN ? SPF_DNS_NXDOMAIN
						      : SPF_DNS_TEMPFAIL;
	/* A TXT RRset we could not read whole might hide a second SPF
	 * record: better a temperror than a wrong answer. */
	if (st == SPF_DNS_OK && run->qtype == SPF_Q_TXT && r->n_dropped > 0)
		st = SPF_DNS_TEMPFAIL;
	spf_answer(run->check, st, rr, st == SPF_DNS_OK ? r->n : 0);
	spf_advance(run);
}

/* Steps the check; starts its next lookup or ends the loop. */
static void spf_advance(struct spf_run *run)
{
	static const enum dns_rrtype types[] = {
	    [SPF_Q_TXT] = DNS_RR_TXT, [SPF_Q_A] = DNS_RR_A,     [SPF_Q_AAAA] = DNS_RR_AAAA,
	    [SPF_Q_MX] = DNS_RR_MX,   [SPF_Q_PTR] = DNS_RR_PTR,
	};
	struct spf_query q;
	while (spf_step(run->check, &q) == SPF_STEP_QUERY) {
		run->qtype = q.type;
		run->q = dns_lookup(run->res, types[q.type], q.name, spf_dns_cb, run, run->err,
				    sizeof run->err);
		if (run->q != NULL)
			return;
		/* Could not even ask (a name the resolver refuses): a DNS
		 * error for this question. */
		spf_answer(run->check, SPF_DNS_TEMPFAIL, NULL, 0);
	}
	event_base_loopbreak(run->base);
}

static void spf_time_limit(evutil_socket_t fd, short what, void *arg)
{
	struct spf_run *run = arg;
	run->timed_out = true;
	event_base_loopbreak(run->base);
}

static int spf_cmd(const char *cfg_path, const char *identity, char **pos)
{
	const char *what = "auth-check spf";
	struct spf_request req = {0};
	if (spf_ip_parse(pos[0], &req.ip) < 0)
		return cli_usage_error(&cli_authcheck_command, what,
				       "\"%s\" is not an IPv4 or IPv6 address", pos[0]);
	if (identity == NULL || !strcmp(identity, "mailfrom"))
		req.identity = SPF_ID_MAILFROM;
	else if (!strcmp(identity, "helo"))
		req.identity = SPF_ID_HELO;
	else
		return cli_usage_error(&cli_authcheck_command, what,
				       "--identity is mailfrom or helo, not \"%s\"", identity);
	req.helo = pos[1];
	/* "<>" or "" is the null reverse-path. */
	req.mail_from = !strcmp(pos[2], "<>") ? "" : pos[2];
	struct config *cfg = cli_load_config(cfg_path);
	if (cfg == NULL)
		return CLI_USAGE;
	req.receiver = cfg->hostname;

	struct spf_run run = {0};
	run.base = event_base_new();
	if (run.base == NULL) {
		config_free(&cfg);
		return cli_fail(what, "cannot create an event loop");
	}
	unsigned t = cfg->queue_timeout_dns == 0 ? 1
		     : cfg->queue_timeout_dns > SPF_CLI_TIME_LIMIT
			 ? SPF_CLI_TIME_LIMIT
			 : (unsigned)cfg->queue_timeout_dns;
	run.res = dns_resolver_new(run.base, cfg->dns_resolver, t, run.err, sizeof run.err);
	if (run.res == NULL) {
		event_base_free(run.base);
		config_free(&cfg);
		return cli_fail(what, "%s", run.err);
	}
	run.check = spf_check_new(&req);
	struct event *limit = evtimer_new(run.base, spf_time_limit, &run);
	struct timeval tv = {SPF_CLI_TIME_LIMIT, 0};
	if (limit == NULL || evtimer_add(limit, &tv) < 0) {
		run.failed = true;
	} else {
		spf_advance(&run);
		if (run.q != NULL)
			event_base_dispatch(run.base);
	}
	int rc = CLI_OK;
	struct spf_query q;
	if (run.failed) {
		rc = cli_fail(what, "cannot set up the time limit");
	} else if (run.timed_out || spf_step(run.check, &q) != SPF_STEP_DONE) {
		printf("result: temperror\nreason: no result within %d seconds\n",
		       SPF_CLI_TIME_LIMIT);
	} else {
		printf("result: %s\n", spf_result_name(spf_result(run.check)));
		printf("identity: %s\n", req.identity == SPF_ID_HELO ? "helo" : "mailfrom");
		printf("domain: ");
		cli_put_sanitized(stdout, spf_domain(run.check));
		printf("\nreason: ");
		cli_put_sanitized(stdout, spf_reason(run.check));
		putchar('\n');
		if (spf_explanation(run.check)[0] != '\0') {
			printf("explanation: ");
			cli_put_sanitized(stdout, spf_explanation(run.check));
			putchar('\n');
		}
		printf("queries: %zu\n", spf_queries(run.check));
	}
	dns_query_cancel(&run.q);
	if (limit != NULL)
		event_free(limit);
	spf_check_free(&run.check);
	dns_resolver_free(&run.res);
	event_base_free(run.base);
	config_free(&cfg);
	return rc;
}

/* ------------------------------------------------- a whole message */

#define AUTHCHECK_MESSAGE_MAX (64u * 1024 * 1024)

struct msg_run {
	struct event_base *base;
	struct msgauth_result res;
	bool done;
};

static void msg_done(void *ctx, const struct msgauth_result *r)
{
	struct msg_run *run = ctx;
	run->res = *r;
	run->done = true;
	event_base_loopbreak(run->base);
}

static int message_cmd(const char *cfg_path, const char *ip, const char *helo,
		       const char *mail_from)
{
	const char *what = "auth-check message";
	struct spf_ip parsed;
	if (ip == NULL || spf_ip_parse(ip, &parsed) < 0)
		return cli_usage_error(&cli_authcheck_command, what,
				       "--ip needs an IPv4 or IPv6 address");
	struct buf msg;
	buf_init(&msg, AUTHCHECK_MESSAGE_MAX);
	char chunk[65536];
	ssize_t got;
	while ((got = read(0, chunk, sizeof chunk)) > 0)
		if (buf_append(&msg, chunk, (size_t)got) < 0) {
			buf_free(&msg);
			return cli_fail(what, "the message is larger than 64 MB");
		}
	if (got < 0) {
		buf_free(&msg);
		return cli_fail(what, "reading the message: %s", strerror(errno));
	}
	struct config *cfg = cli_load_config(cfg_path);
	if (cfg == NULL) {
		buf_free(&msg);
		return CLI_USAGE;
	}
	struct msg_run run = {0};
	char err[256];
	run.base = event_base_new();
	struct dns_resolver *res =
	    run.base ? dns_resolver_new(run.base, cfg->dns_resolver,
					(unsigned)cfg->mailauth_timeout, err, sizeof err)
		     : NULL;
	int rc = CLI_OK;
	if (res == NULL) {
		rc = cli_fail(what, "%s", run.base ? err : "cannot create an event loop");
	} else {
		char from_domain[ADDR_DOMAIN_MAX + 1];
		smtp_parse_from_domain(msg.data ? msg.data : "", msg.len, from_domain);
		const char *mf = mail_from == NULL || !strcmp(mail_from, "<>") ? "" : mail_from;
		struct msgauth_request req = {
		    .ip = ip,
		    .helo = helo ? helo : "",
		    .mail_from = mf,
		    .from_domain = from_domain,
		    .receiver = cfg->hostname,
		    .msg = msg.data ? msg.data : "",
		    .len = msg.len,
		    .timeout_s = (unsigned)cfg->mailauth_timeout,
		};
		struct msgauth *m = msgauth_start(run.base, res, &req, msg_done, &run);
		event_base_dispatch(run.base);
		msgauth_free(&m);
		struct buf ar;
		buf_init(&ar, 0);
		if (!run.done || msgauth_header(&run.res, cfg->hostname, &req, &ar) < 0) {
			rc = cli_fail(what, "no result");
		} else {
			const struct msgauth_result *r = &run.res;
			bool fail = r->dmarc_checked && r->dmarc.result == DMARC_RESULT_FAIL;
			enum dmarc_policy dis = fail ? r->dmarc.disposition : DMARC_POLICY_NONE;
			const char *action = dis == DMARC_POLICY_REJECT ? cfg->mailauth_dmarc_reject
					     : dis == DMARC_POLICY_QUARANTINE ? "junk"
									       : "deliver";
			if (!strcmp(action, "tag"))
				action = "deliver";
			fwrite(ar.data, 1, ar.len, stdout);
			printf("dmarc-disposition: %s\naction: %s\n", dmarc_policy_name(dis), action);
			if (r->timed_out)
				printf("note: some DNS answers did not come within %llu s\n",
				       (unsigned long long)cfg->mailauth_timeout);
			rc = cli_finish_output(what, rc);
		}
		buf_free(&ar);
	}
	dns_resolver_free(&res);
	if (run.base)
		event_base_free(run.base);
	config_free(&cfg);
	buf_free(&msg);
	return rc;
}

static int authcheck_main(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_authcheck_command;
	if (argc < 2)
		return cli_usage_error(cmd, "auth-check", "missing method (spf)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "message")) {
		const char *ip = NULL, *helo = NULL, *mail_from = NULL;
		const struct cli_option mopts[] = {
		    {"--ip", &ip}, {"--helo", &helo}, {"--mail-from", &mail_from}};
		char *mpos[1];
		int n_mpos = 0;
		int mrc = cli_parse_args(cmd, "auth-check message", argc, argv, 2, mopts, 3, mpos,
					 0, &n_mpos);
		if (mrc == CLI_HELP) {
			fputs(cmd->usage, stdout);
			return CLI_OK;
		}
		if (mrc != 0)
			return mrc;
		return message_cmd(cfg_path, ip, helo, mail_from);
	}
	if (strcmp(argv[1], "spf") != 0)
		return cli_usage_error(cmd, "auth-check", "unknown method \"%s\"", argv[1]);
	const char *identity = NULL;
	const struct cli_option opts[] = {{"--identity", &identity}};
	char *pos[3];
	int n_pos = 0;
	int rc = cli_parse_args(cmd, "auth-check spf", argc, argv, 2, opts, 1, pos, 3, &n_pos);
	if (rc == CLI_HELP) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (rc != 0)
		return rc;
	if (n_pos != 3)
		return cli_usage_error(cmd, "auth-check spf", "expects IP HELO SENDER");
	return spf_cmd(cfg_path, identity, pos);
}

const struct cli_command cli_authcheck_command = {
    "auth-check",
    "check a sender (SPF) or a whole message (SPF, DKIM, DMARC), with real DNS",
    "usage: tern [-c FILE] auth-check spf [--identity mailfrom|helo] IP HELO SENDER\n"
    "       tern [-c FILE] auth-check message --ip IP [--helo NAME] [--mail-from SENDER] < MESSAGE\n"
    "\n"
    "message: runs every check the SMTP receiver makes on port 25 (SPF, DKIM,\n"
    "DMARC) for the message on stdin as if IP had sent it, and prints the\n"
    "Authentication-Results field it would add, the DMARC disposition and\n"
    "what Tern would do (deliver, junk, reject).\n"
    "\n"
    "Runs the SPF check (RFC 7208) that the SMTP receiver makes for a client\n"
    "at IP that said HELO and gave MAIL FROM:<SENDER>; SENDER \"<>\" or \"\" is\n"
    "the null reverse-path, checked as postmaster@HELO.  --identity helo\n"
    "checks the HELO name instead.  DNS goes through dns.resolver; the check\n"
    "has 30 seconds.  Prints the result, the domain checked, the reason, the\n"
    "domain's explanation for a fail (if it publishes one) and the number of\n"
    "DNS queries.  Exits 0 whenever a result is printed.\n"
    "See docs/mail-auth.md.\n",
    authcheck_main,
};
