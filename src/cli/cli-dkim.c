/*
 * cli-dkim.c - `tern dkim list|rotate|retire` (a domain's DKIM keys) and
 * `tern domain dns DOMAIN` (every DNS record a domain of ours needs,
 * ready for a zone file).
 *
 * Part of src/cli.  Keys are made by src/mailauth/dkim-keys.c and kept by
 * the store (store-dkim.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli-int.h"
#include "config.h"
#include "dkim-keys.h"
#include "dns.h"
#include "msgauth.h"
#include <event2/event.h>
#include "store.h"
#include "xalloc.h"

static int dkim_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_dkim_command = {
	"dkim",
	"list, rotate or retire the DKIM keys that sign our domains' mail",
	"usage: tern [-c FILE] dkim list [DOMAIN]\n"
	"       tern [-c FILE] dkim rotate DOMAIN\n"
	"       tern [-c FILE] dkim retire DOMAIN [SELECTOR]\n"
	"\n"
	"  list     print the keys: domain, selector, type, state, created\n"
	"           (active keys sign; published ones only stay in DNS)\n"
	"  rotate   make two new keys (Ed25519 and RSA-2048) with today's\n"
	"           selectors; they sign from now on, and the old keys stay\n"
	"           published so that mail already sent still verifies.\n"
	"           Publish the new records first (tern domain dns DOMAIN).\n"
	"  retire   delete the published keys that no longer sign (or the one\n"
	"           SELECTOR); remove their records from DNS afterwards\n"
	"\n"
	"`tern domain add` makes a new domain's first two keys.\n",
	dkim_run,
};

static void format_day(int64_t t, char out[16])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
}

static int list_keys(struct store *s, const char *what, const char *domain)
{
	struct store_dkim_key *keys = xcalloc(STORE_DKIM_KEYS_MAX * 4, sizeof *keys);
	size_t n;
	char err[512];
	int rc = 0;
	if (store_dkim_list(s, domain, keys, STORE_DKIM_KEYS_MAX * 4, &n, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s", err);
	} else {
		for (size_t i = 0; i < n; i++) {
			char day[16];
			format_day(keys[i].created, day);
			printf("%s %s %s %s %s\n", keys[i].domain, keys[i].selector, keys[i].type,
			       keys[i].active ? "active" : "published", day);
		}
		if (n == 0 && domain != NULL)
			printf("%s has no DKIM keys (make them with `tern dkim rotate %s`)\n",
			       domain, domain);
	}
	free(keys);
	return cli_finish_output(what, rc);
}

int cli_dkim_make(struct store *s, const char *what, const char *domain)
{
	char sel[2][64], err[512];
	if (dkim_keys_make(s, domain, time(NULL), sel, err, sizeof err) < 0)
		return cli_fail(what, "%s: cannot make DKIM keys: %s", domain, err);
	printf("DKIM keys for %s: %s (ed25519), %s (rsa); the DNS records to publish: the "
	       "command \"domain dns %s\"\n",
	       domain, sel[0], sel[1], domain);
	return 0;
}

static int retire(struct store *s, const char *what, const char *domain, const char *selector)
{
	struct store_dkim_key *keys = xcalloc(STORE_DKIM_KEYS_MAX, sizeof *keys);
	size_t n, removed = 0;
	char err[512];
	int rc = 0;
	if (store_dkim_list(s, domain, keys, STORE_DKIM_KEYS_MAX, &n, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s", err);
		goto out;
	}
	bool found = selector == NULL;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (selector != NULL && strcmp(keys[i].selector, selector) != 0)
			continue;
		found = true;
		if (keys[i].active) {
			if (selector != NULL)
				rc = cli_fail(what,
					      "%s: %s still signs mail; `tern dkim rotate %s` first",
					      domain, selector, domain);
			continue;
		}
		if (store_dkim_remove(s, domain, keys[i].selector, err, sizeof err) < 0) {
			rc = cli_fail(what, "%s", err);
			break;
		}
		printf("retired %s %s: remove %s._domainkey.%s from DNS\n", domain,
		       keys[i].selector, keys[i].selector, domain);
		removed++;
	}
	if (rc == 0 && !found)
		rc = cli_fail(what, "%s has no DKIM key with selector %s", domain, selector);
	else if (rc == 0 && removed == 0)
		printf("%s has no keys to retire (only active ones)\n", domain);
out:
	free(keys);
	return cli_finish_output(what, rc);
}

static int dkim_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"list", "rotate", "retire", NULL};
	const struct cli_command *cmd = &cli_dkim_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	char *pos[2];
	int n_pos;
	bool is_list = !strcmp(sub, "list"), is_retire = !strcmp(sub, "retire");
	rc = cli_parse_sub(cmd, what, argc, argv, NULL, 0, pos, is_list ? 0 : 1, is_retire ? 2 : 1,
			   &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char domain[256] = "";
	if (n_pos > 0 && (rc = cli_check_domain(cmd, what, pos[0], domain, sizeof domain)) != 0)
		return rc;
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	int e = domain[0] ? store_domain_exists(s, domain) : 1;
	if (e <= 0)
		rc = cli_fail(what, e == 0 ? "no such domain %s" : "%s: cannot look up the domain",
			      domain);
	else if (is_list)
		rc = list_keys(s, what, domain[0] ? domain : NULL);
	else if (is_retire)
		rc = retire(s, what, domain, n_pos > 1 ? pos[1] : NULL);
	else if ((rc = cli_dkim_make(s, what, domain)) == 0)
		printf("the old keys stay published until `tern dkim retire %s`\n", domain);
	store_close(&s);
	config_free(&cfg);
	return rc;
}

/* --------------------------------------------------------- domain dns */

/* A TXT record's text as zone-file strings of at most 255 octets each
 * (RFC 1035 3.3.14: one character-string holds 255). */
static void print_txt(const char *owner, const char *text)
{
	size_t n = strlen(text);
	if (n <= 255) {
		printf("%s IN TXT \"%s\"\n", owner, text);
		return;
	}
	printf("%s IN TXT (", owner);
	for (size_t off = 0; off < n; off += 255) {
		size_t k = n - off < 255 ? n - off : 255;
		printf("\n    \"%.*s\"", (int)k, text + off);
	}
	printf(" )\n");
}

/* The port of an "ADDR:PORT" listener key, 0 when it is off. */
static unsigned listen_port(const char *listen)
{
	char host[256];
	uint16_t port;
	if (listen == NULL || listen[0] == '\0' ||
	    config_split_hostport(listen, host, sizeof host, &port) < 0)
		return 0;
	return port;
}

int cli_domain_dns(const struct config *cfg, struct store *s, const char *what, const char *domain)
{
	const char *host = cfg->hostname;
	char owner[320];
	printf("; DNS records for %s, served by %s.  Zone-file syntax: paste them\n"
	       "; into the zone of %s (names end in a dot).\n",
	       domain, host, domain);

	printf("\n; Mail for %s is delivered to this server (RFC 5321 5.1).\n", domain);
	printf("%s. IN MX 10 %s.\n", domain, host);

	printf("\n; SPF (RFC 7208): mail from %s comes from its MX host only.\n", domain);
	snprintf(owner, sizeof owner, "%s.", domain);
	print_txt(owner, "v=spf1 mx -all");

	struct store_dkim_key *keys = xcalloc(STORE_DKIM_KEYS_MAX, sizeof *keys);
	size_t n;
	char err[512];
	int rc = 0;
	if (store_dkim_list(s, domain, keys, STORE_DKIM_KEYS_MAX, &n, err, sizeof err) < 0) {
		free(keys);
		return cli_fail(what, "%s", err);
	}
	printf("\n; DKIM (RFC 6376, RFC 8463): the keys that sign mail from %s.\n", domain);
	if (n == 0)
		printf("; (none yet: make them with `tern dkim rotate %s`)\n", domain);
	for (size_t i = 0; i < n; i++) {
		if (!keys[i].active)
			printf("; %s no longer signs; keep it until `tern dkim retire %s`\n",
			       keys[i].selector, domain);
		snprintf(owner, sizeof owner, "%s._domainkey.%s.", keys[i].selector, domain);
		print_txt(owner, keys[i].record);
	}
	free(keys);

	char pm[300];
	snprintf(pm, sizeof pm, "postmaster@%s", domain);
	printf("\n; DMARC (RFC 7489): start with p=none and read the aggregate reports\n"
	       "; sent to %s; when only your own servers pass, move to\n"
	       "; p=quarantine and then p=reject.\n",
	       pm);
	snprintf(owner, sizeof owner, "_dmarc.%s.", domain);
	char dmarc[400];
	snprintf(dmarc, sizeof dmarc, "v=DMARC1; p=none; rua=mailto:%s", pm);
	print_txt(owner, dmarc);

	/* RFC 6186 (and RFC 8314 for implicit TLS): where mail clients find
	 * the services; "." as target says a service is not offered. */
	static const struct {
		const char *label;
		size_t off; /* of the listener key in struct config */
	} srv[] = {
	    {"_submissions._tcp", offsetof(struct config, submissions_listen)},
	    {"_submission._tcp", offsetof(struct config, submission_listen)},
	    {"_imaps._tcp", offsetof(struct config, imaps_listen)},
	    {"_imap._tcp", offsetof(struct config, imap_listen)},
	    {"_pop3s._tcp", offsetof(struct config, pop3s_listen)},
	    {"_pop3._tcp", offsetof(struct config, pop3_listen)},
	};
	printf("\n; Where mail clients find the services (RFC 6186, RFC 8314).\n");
	for (size_t i = 0; i < sizeof srv / sizeof srv[0]; i++) {
		const char *listen = *(char *const *)((const char *)cfg + srv[i].off);
		unsigned port = listen_port(listen);
		if (port != 0)
			printf("%s.%s. IN SRV 0 1 %u %s.\n", srv[i].label, domain, port, host);
		else
			printf("%s.%s. IN SRV 0 0 0 .\n", srv[i].label, domain);
	}

	cli_domain_dns_transport(cfg, domain);

	printf("\n; Reverse DNS: every address %s sends from needs a PTR record\n"
	       "; naming %s, and %s must resolve back to it (ask whoever\n"
	       "; runs the address block, usually your hosting provider).\n",
	       host, host, host);
	return cli_finish_output(what, rc);
}

/* -------------------------------------------------------- domain check */

/* One DNS answer, copied out of the callback. */
struct answer {
	enum dns_status status;
	size_t n;
	char rr[DNS_MAX_RRS][512]; /* TXT text / names; A and AAAA as text */
	bool done;
	struct event_base *base;
	enum dns_rrtype type;
};

static void answer_cb(void *ctx, const struct dns_rr_result *r)
{
	struct answer *a = ctx;
	a->status = r->status;
	a->n = 0;
	for (size_t i = 0; i < r->n && a->n < DNS_MAX_RRS; i++) {
		char *out = a->rr[a->n];
		if (a->type == DNS_RR_A && r->rr[i].len == 4)
			inet_ntop(AF_INET, r->rr[i].data, out, 512);
		else if (a->type == DNS_RR_AAAA && r->rr[i].len == 16)
			inet_ntop(AF_INET6, r->rr[i].data, out, 512);
		else if (a->type != DNS_RR_A && a->type != DNS_RR_AAAA)
			snprintf(out, 512, "%.*s", (int)r->rr[i].len, (const char *)r->rr[i].data);
		else
			continue;
		a->n++;
	}
	a->done = true;
	event_base_loopbreak(a->base);
}

/* A lookup, waited for. */
static void lookup(struct event_base *base, struct dns_resolver *res, enum dns_rrtype type,
		   const char *name, struct answer *a)
{
	memset(a, 0, sizeof *a);
	a->base = base;
	a->type = type;
	char err[256];
	struct dns_query *q = dns_lookup(res, type, name, answer_cb, a, err, sizeof err);
	if (q == NULL) {
		a->status = DNS_TEMPFAIL;
		return;
	}
	while (!a->done)
		event_base_loop(base, EVLOOP_ONCE);
}

/* The reverse-DNS name of an address ("4.3.2.1.in-addr.arpa", nibbles for
 * IPv6); -1 if ip is not an address. */
static int reverse_name(const char *ip, char *out, size_t outsz)
{
	unsigned char b[16];
	if (inet_pton(AF_INET, ip, b) == 1)
		return snprintf(out, outsz, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]) < 0
			   ? -1
			   : 0;
	if (inet_pton(AF_INET6, ip, b) != 1)
		return -1;
	size_t o = 0;
	for (int i = 15; i >= 0 && o + 4 < outsz; i--)
		o += (size_t)snprintf(out + o, outsz - o, "%x.%x.", b[i] & 15, b[i] >> 4);
	snprintf(out + o, outsz - o, "ip6.arpa");
	return 0;
}

struct check_run {
	struct msgauth_result res;
	bool done;
	struct event_base *base;
};

static void check_cb(void *ctx, const struct msgauth_result *r)
{
	struct check_run *c = ctx;
	c->res = *r;
	c->done = true;
	event_base_loopbreak(c->base);
}

/* One line of the report: "ok", "PROBLEM" or "note", then the text. */
static void say(int *problems, const char *kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(int *problems, const char *kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%-8s ", kind);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	if (!strcmp(kind, "PROBLEM"))
		(*problems)++;
}

int cli_domain_check(const struct config *cfg, struct store *s, const char *what,
		     const char *domain)
{
	const char *host = cfg->hostname;
	int problems = 0;
	char err[256];
	struct event_base *base = event_base_new();
	struct dns_resolver *res =
	    base ? dns_resolver_new(base, cfg->dns_resolver, (unsigned)cfg->mailauth_timeout, err,
				    sizeof err)
		 : NULL;
	if (res == NULL) {
		if (base)
			event_base_free(base);
		return cli_fail(what, "%s", base ? err : "cannot create an event loop");
	}
	struct answer *a = xcalloc(1, sizeof *a);
	printf("Checking %s through the resolver %s, as other mail servers will see it.\n",
	       domain, cfg->dns_resolver[0] ? cfg->dns_resolver : "of /etc/resolv.conf");

	/* MX */
	lookup(base, res, DNS_RR_MX, domain, a);
	bool mx_ok = false;
	for (size_t i = 0; i < a->n; i++)
		mx_ok |= strcasecmp(a->rr[i], host) == 0;
	if (a->status == DNS_TEMPFAIL)
		say(&problems, "PROBLEM", "MX: the resolver did not answer for %s", domain);
	else if (mx_ok)
		say(&problems, "ok", "MX: mail for %s goes to %s", domain, host);
	else
		say(&problems, "PROBLEM",
		    "MX: %s has %s; other servers will not bring its mail here. Publish: "
		    "%s. IN MX 10 %s.",
		    domain, a->n ? "MX records, but none names this server" : "no MX record",
		    domain, host);

	/* The host's addresses */
	char addrs[8][64];
	size_t n_addrs = 0;
	enum dns_rrtype types[2] = {DNS_RR_A, DNS_RR_AAAA};
	for (size_t t = 0; t < 2; t++) {
		lookup(base, res, types[t], host, a);
		for (size_t i = 0; i < a->n && n_addrs < 8; i++)
			snprintf(addrs[n_addrs++], sizeof addrs[0], "%s", a->rr[i]);
	}
	if (n_addrs == 0)
		say(&problems, "PROBLEM",
		    "address: %s has no A or AAAA record; nobody can reach it, and SPF and "
		    "reverse DNS cannot be checked",
		    host);

	/* A message as we would send it, signed, checked as a receiver
	 * would: SPF for each of our addresses, DKIM, DMARC. */
	char date[64], msgtext[1024];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(msgtext, sizeof msgtext,
		 "From: <postmaster@%s>\r\nTo: <postmaster@%s>\r\nSubject: tern domain check\r\n"
		 "Date: %s\r\nMessage-ID: <domain-check.%ld@%s>\r\n\r\nA test.\r\n",
		 domain, domain, date, (long)now, host);
	struct buf msg;
	buf_init(&msg, 0);
	struct dkim_keyring *kr = dkim_keyring_new(s);
	const char *cand[1] = {domain};
	char used[256];
	int nsig = dkim_keyring_sign(kr, cand, 1, msgtext, strlen(msgtext), now, &msg, used,
				     sizeof used, err, sizeof err);
	if (nsig < 0)
		say(&problems, "PROBLEM", "DKIM: cannot sign with our key: %s", err);
	else if (nsig == 0)
		say(&problems, "PROBLEM", "DKIM: %s has no keys; make them: tern dkim rotate %s",
		    domain, domain);
	buf_puts(&msg, msgtext);
	char mail_from[300];
	snprintf(mail_from, sizeof mail_from, "postmaster@%s", domain);
	for (size_t i = 0; i < (n_addrs ? n_addrs : 1); i++) {
		struct check_run run = {.base = base};
		struct msgauth_request req = {
		    .ip = n_addrs ? addrs[i] : "0.0.0.0",
		    .helo = host,
		    .mail_from = mail_from,
		    .from_domain = domain,
		    .receiver = host,
		    .msg = msg.data,
		    .len = msg.len,
		    .timeout_s = (unsigned)cfg->mailauth_timeout,
		};
		struct msgauth *m = msgauth_start(base, res, &req, check_cb, &run);
		while (!run.done)
			event_base_loop(base, EVLOOP_ONCE);
		msgauth_free(&m);
		const struct msgauth_result *r = &run.res;
		if (n_addrs) {
			if (r->spf == SPF_PASS)
				say(&problems, "ok", "SPF: %s may send for %s", addrs[i], domain);
			else
				say(&problems, "PROBLEM",
				    "SPF: %s for mail from %s at %s (%s); publish: %s. IN TXT "
				    "\"v=spf1 mx -all\"",
				    spf_result_name(r->spf), domain, addrs[i], r->spf_reason, domain);
		}
		if (i > 0)
			continue;
		for (size_t k = 0; k < r->n_dkim; k++) {
			const struct dkim_result *d = &r->dkim[k];
			if (d->status == DKIM_PASS)
				say(&problems, "ok", "DKIM: %s._domainkey.%s is published and matches",
				    d->selector, d->domain);
			else
				say(&problems, "PROBLEM",
				    "DKIM: %s._domainkey.%s: %s (%s); publish the record tern domain "
				    "dns %s prints",
				    d->selector, d->domain, dkim_status_name(d->status), d->reason,
				    domain);
		}
		if (r->dmarc.result == DMARC_RESULT_NONE)
			say(&problems, "PROBLEM",
			    "DMARC: %s publishes no policy; the large providers expect one. Start "
			    "with: _dmarc.%s. IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@%s\"",
			    domain, domain, domain);
		else if (r->dmarc.result != DMARC_RESULT_PASS)
			say(&problems, "PROBLEM", "DMARC: our own mail would get dmarc=%s (p=%s)",
			    dmarc_result_name(r->dmarc.result), dmarc_policy_name(r->dmarc.policy));
		else if (r->dmarc.policy == DMARC_POLICY_NONE)
			say(&problems, "note",
			    "DMARC: passes, with p=none: forgeries of %s are not refused anywhere. Once "
			    "the reports show only your own servers, move to p=quarantine, then "
			    "p=reject",
			    domain);
		else
			say(&problems, "ok", "DMARC: passes, policy p=%s",
			    dmarc_policy_name(r->dmarc.policy));
	}
	buf_free(&msg);
	dkim_keyring_free(&kr);

	/* Reverse DNS, forward-confirmed */
	for (size_t i = 0; i < n_addrs; i++) {
		char rev[128];
		if (reverse_name(addrs[i], rev, sizeof rev) < 0)
			continue;
		lookup(base, res, DNS_RR_PTR, rev, a);
		bool named = false;
		for (size_t k = 0; k < a->n; k++)
			named |= strcasecmp(a->rr[k], host) == 0;
		if (!named) {
			say(&problems, "PROBLEM",
			    "PTR: %s %s; many servers refuse mail from addresses without one. Ask "
			    "whoever runs the address (your hosting provider) for a PTR record "
			    "naming %s",
			    addrs[i], a->n ? "has a PTR record, but not for this host" : "has no PTR record",
			    host);
		} else {
			say(&problems, "ok", "PTR: %s is %s, and %s resolves back to it", addrs[i],
			    host, host);
		}
	}
	free(a);
	dns_resolver_free(&res);
	event_base_free(base);
	if (problems == 0)
		printf("Everything %s needs is in place.\n", domain);
	else
		printf("%d problem%s: fix the records above, then run this again.\n", problems,
		       problems == 1 ? "" : "s");
	int rc = cli_finish_output(what, 0);
	return rc != 0 ? rc : problems ? CLI_FAIL : CLI_OK;
}
