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
#include <time.h>

#include <event2/event.h>

#include "cli-int.h"
#include "cli.h"
#include "config.h"
#include "dns.h"
#include "spf.h"
#include "spf-dns.h"
#include "arc.h"
#include "dkim-fetch.h"
#include "xalloc.h"
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
	struct spf_dns_run *dns; /* the check's lookups */
	bool timed_out;
	bool failed;
	char err[256];
};

static void spf_finished(void *ctx)
{
	struct spf_run *run = ctx;
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
		run.dns = spf_dns_start(run.res, run.check, spf_finished, &run);
		if (!spf_dns_finished(run.dns))
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
	spf_dns_free(&run.dns);
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

/* Reads the message on stdin into msg (buf_free it) and loads the config
 * (config_free it).  CLI_OK, or the exit code after saying why (nothing
 * to free then). */
static int read_input(const char *what, const char *cfg_path, struct buf *msg, struct config **cfg)
{
	buf_init(msg, AUTHCHECK_MESSAGE_MAX);
	char chunk[65536];
	ssize_t got;
	while ((got = read(0, chunk, sizeof chunk)) > 0)
		if (buf_append(msg, chunk, (size_t)got) < 0) {
			buf_free(msg);
			return cli_fail(what, "the message is larger than 64 MB");
		}
	if (got < 0) {
		buf_free(msg);
		return cli_fail(what, "reading the message: %s", strerror(errno));
	}
	*cfg = cli_load_config(cfg_path);
	if (*cfg == NULL) {
		buf_free(msg);
		return CLI_USAGE;
	}
	return CLI_OK;
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
	struct config *cfg;
	int rrc = read_input(what, cfg_path, &msg, &cfg);
	if (rrc != CLI_OK)
		return rrc;
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

/* ------------------------------------------------------------- ARC */

struct arc_run {
	struct event_base *base;
	struct dkim_fetch *keys;
};

static void arc_key_answered(void *ctx)
{
	struct arc_run *run = ctx;
	if (dkim_fetch_pending(run->keys) == 0)
		event_base_loopbreak(run->base);
}

static void arc_time_limit(evutil_socket_t fd, short what, void *arg)
{
	struct arc_run *run = arg;
	event_base_loopbreak(run->base);
}

/* Validates msg's ARC chain (arc.h) with the key records looked up first,
 * all at once, through cfg's resolver within mailauth.timeout (an answer
 * that does not come is a failed lookup, hence a fail).  0, or -1 with
 * err (no event loop or resolver). */
static int arc_check(const struct config *cfg, const struct buf *msg, struct arc_result *r,
		     char *err, size_t errsz)
{
	struct arc_run run = {0};
	run.base = event_base_new();
	if (run.base == NULL) {
		snprintf(err, errsz, "cannot create an event loop");
		return -1;
	}
	unsigned t = cfg->mailauth_timeout == 0 ? 1 : (unsigned)cfg->mailauth_timeout;
	struct dns_resolver *res = dns_resolver_new(run.base, cfg->dns_resolver, t, err, errsz);
	if (res == NULL) {
		event_base_free(run.base);
		return -1;
	}
	const char *m = msg->data ? msg->data : "";
	run.keys = dkim_fetch_new(res, arc_key_answered, &run);
	struct arc_key *keys = xcalloc(ARC_KEYS_MAX, sizeof *keys);
	size_t n = arc_keys_needed(m, msg->len, keys, ARC_KEYS_MAX);
	for (size_t i = 0; i < n; i++)
		dkim_fetch_add(run.keys, keys[i].selector, strlen(keys[i].selector), keys[i].domain,
			       strlen(keys[i].domain));
	free(keys);
	struct event *limit = evtimer_new(run.base, arc_time_limit, &run);
	struct timeval tv = {(time_t)t, 0};
	if (dkim_fetch_pending(run.keys) > 0 && limit != NULL && evtimer_add(limit, &tv) == 0)
		event_base_dispatch(run.base);
	dkim_fetch_cancel(run.keys);
	arc_validate(m, msg->len, time(NULL), dkim_fetch_lookup, run.keys, r);
	if (limit != NULL)
		event_free(limit);
	dkim_fetch_free(&run.keys);
	dns_resolver_free(&res);
	event_base_free(run.base);
	return 0;
}

static int arc_cmd(const char *cfg_path)
{
	const char *what = "auth-check arc";
	struct buf msg;
	struct config *cfg;
	int rc = read_input(what, cfg_path, &msg, &cfg);
	if (rc != CLI_OK)
		return rc;
	struct arc_result r;
	char err[256];
	if (arc_check(cfg, &msg, &r, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s", err);
	} else {
		printf("arc: %s\nsets: %u\n", arc_status_name(r.status), r.n);
		if (r.status == ARC_PASS)
			printf("oldest-pass: %u\n", r.oldest_pass);
		if (r.domain[0] != '\0') {
			printf("domain: ");
			cli_put_sanitized(stdout, r.domain);
			putchar('\n');
		}
		if (r.reason[0] != '\0') {
			printf("reason: ");
			cli_put_sanitized(stdout, r.reason);
			putchar('\n');
		}
		rc = cli_finish_output(what, rc);
	}
	config_free(&cfg);
	buf_free(&msg);
	return rc;
}

/* Seals the message on stdin (after validating its chain, for cv=) with
 * the key in key_path and prints it with the new ARC set on top. */
static int arc_seal_cmd(const char *cfg_path, const char *key_path, const char *domain,
			const char *selector, const char *results)
{
	const char *what = "auth-check arc-seal";
	if (key_path == NULL || domain == NULL || selector == NULL)
		return cli_usage_error(&cli_authcheck_command, what,
				       "needs --key PEM, --domain DOMAIN and --selector SELECTOR");
	char err[256];
	struct dkim_signer *s = dkim_signer_load(domain, selector, key_path, err, sizeof err);
	if (s == NULL)
		return cli_fail(what, "%s", err);
	struct buf msg;
	struct config *cfg;
	int rc = read_input(what, cfg_path, &msg, &cfg);
	if (rc != CLI_OK) {
		dkim_signer_free(&s);
		return rc;
	}
	struct arc_result r;
	struct buf text = BUF_INIT, out = BUF_INIT;
	if (arc_check(cfg, &msg, &r, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s", err);
		goto done;
	}
	if (results != NULL && results[0] != '\0')
		buf_printf(&text, "%s;\r\n\t", results);
	buf_printf(&text, "arc=%s", arc_status_name(r.status));
	const char *m = msg.data ? msg.data : "";
	int sr = arc_seal(s, m, msg.len, cfg->hostname, buf_cstr(&text), r.status, time(NULL), &out,
			  err, sizeof err);
	if (sr < 0) {
		rc = cli_fail(what, "%s", err);
		goto done;
	}
	if (sr == 1)
		fprintf(stderr, "tern: %s: the chain ended with cv=fail; not sealed\n", what);
	fwrite(out.data ? out.data : "", 1, out.len, stdout);
	fwrite(m, 1, msg.len, stdout);
	rc = cli_finish_output(what, rc);
done:
	buf_free(&text);
	buf_free(&out);
	config_free(&cfg);
	buf_free(&msg);
	dkim_signer_free(&s);
	return rc;
}

static int authcheck_main(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_authcheck_command;
	if (argc < 2)
		return cli_usage_error(cmd, "auth-check", "missing method (spf, message, arc, arc-seal)");
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
	if (!strcmp(argv[1], "arc") || !strcmp(argv[1], "arc-seal")) {
		const char *key = NULL, *domain = NULL, *selector = NULL, *results = NULL;
		const struct cli_option aopts[] = {{"--key", &key},
						   {"--domain", &domain},
						   {"--selector", &selector},
						   {"--results", &results}};
		bool seal = !strcmp(argv[1], "arc-seal");
		char *apos[1];
		int n_apos = 0;
		int arc = cli_parse_args(cmd, seal ? "auth-check arc-seal" : "auth-check arc", argc,
					 argv, 2, aopts, seal ? 4 : 0, apos, 0, &n_apos);
		if (arc == CLI_HELP) {
			fputs(cmd->usage, stdout);
			return CLI_OK;
		}
		if (arc != 0)
			return arc;
		return seal ? arc_seal_cmd(cfg_path, key, domain, selector, results)
			    : arc_cmd(cfg_path);
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
    "check a sender (SPF), a whole message (SPF, DKIM, DMARC) or its ARC chain, with real DNS",
    "usage: tern [-c FILE] auth-check spf [--identity mailfrom|helo] IP HELO SENDER\n"
    "       tern [-c FILE] auth-check message --ip IP [--helo NAME] [--mail-from SENDER] < MESSAGE\n"
    "       tern [-c FILE] auth-check arc < MESSAGE\n"
    "       tern [-c FILE] auth-check arc-seal --key PEM --domain DOMAIN --selector SELECTOR\n"
    "                [--results TEXT] < MESSAGE\n"
    "\n"
    "arc: validates the message's ARC chain (RFC 8617), looking the keys up\n"
    "through dns.resolver, and prints arc: none|pass|fail, the number of sets,\n"
    "the oldest AMS that still verifies (0: all), the sealing domain and why\n"
    "it failed.  arc-seal: the same, then adds our ARC set (authserv-id\n"
    "hostname; TEXT then arc=RESULT in the ARC-Authentication-Results) signed\n"
    "with the PEM key, and prints the sealed message.\n"
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
