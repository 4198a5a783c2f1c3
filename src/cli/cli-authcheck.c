/*
 * cli-authcheck.c - `tern auth-check spf IP HELO SENDER`: runs the SPF
 * evaluator (mailauth/spf.h) for one client address and identity, with
 * real DNS: asynchronous lookups (dns/dns.h) through the configured
 * resolver (dns.resolver), on an event loop, as the SMTP receiver will.
 * For admins checking a domain's record, and for the integration tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli-int.h"
#include "cli.h"
#include "config.h"
#include "dns.h"
#include "spf.h"

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

static int authcheck_main(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_authcheck_command;
	if (argc < 2)
		return cli_usage_error(cmd, "auth-check", "missing method (spf)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
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
    "check a sender against its domain's SPF record, with real DNS",
    "usage: tern [-c FILE] auth-check spf [--identity mailfrom|helo] IP HELO SENDER\n"
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
