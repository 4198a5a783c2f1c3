/*
 * cli-dkim.c - `tern dkim list|rotate|retire` (a domain's DKIM keys) and
 * `tern domain dns DOMAIN` (every DNS record a domain of ours needs,
 * ready for a zone file).
 *
 * Part of src/cli.  Keys are made by src/mailauth/dkim-keys.c and kept by
 * the store (store-dkim.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli-int.h"
#include "config.h"
#include "dkim-keys.h"
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
	printf("DKIM keys for %s: %s (ed25519), %s (rsa); publish them: tern domain dns %s\n",
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

	printf("\n; Reverse DNS: every address %s sends from needs a PTR record\n"
	       "; naming %s, and %s must resolve back to it (ask whoever\n"
	       "; runs the address block, usually your hosting provider).\n",
	       host, host, host);
	return cli_finish_output(what, rc);
}
