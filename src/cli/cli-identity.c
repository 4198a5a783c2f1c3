/*
 * cli-identity.c - `tern identity add|list|remove USER ...`: a user's
 * sending identities (store-identity.c), the ones JMAP Identity serves
 * (docs/jmap.md "Submission", docs/admin.md "Identities").  add takes
 * only an address the user may send as (store_may_send_as, the rule of
 * SMTP submission).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-int.h"
#include "config.h"
#include "store.h"
#include "xalloc.h"

static int identity_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_identity_command = {
    "identity",
    "add, list or remove a user's sending identities (signatures)",
    "usage: tern [-c FILE] identity list USER\n"
    "       tern [-c FILE] identity add USER EMAIL [--name NAME] [--reply-to ADDR]\n"
    "                 [--bcc ADDR] [--text-signature TEXT] [--html-signature HTML]\n"
    "       tern [-c FILE] identity remove USER ID\n"
    "\n"
    "  list     print \"ID<tab>EMAIL<tab>NAME<tab>REPLY-TO<tab>BCC\" lines, one per\n"
    "           identity (\"-\" for none), then the signatures indented below;\n"
    "           the first is the user's own address, there without being added\n"
    "  add      a new identity: EMAIL must be an address USER may send as (its\n"
    "           own, an alias that delivers to it, *@DOMAIN when the domain's\n"
    "           catch-all delivers to it, or any of its domain for the\n"
    "           accounts of submission.domain_senders); prints its ID\n"
    "  remove   removes identity ID (as list prints it, e.g. I2); the user's\n"
    "           own address stays\n",
    identity_run,
};

/* "addr" as the store's EmailAddress list (one address, no name), or an
 * exit code. */
static int one_address(const struct cli_command *cmd, const char *what, const char *arg,
		       char out[256])
{
	return cli_check_address(cmd, what, arg, true, out);
}

/* Prints a list field: "-" for none, else the addresses ", "-joined. */
static void put_addrs(const char *s)
{
	if (s == NULL || *s == '\0') {
		fputs("-", stdout);
		return;
	}
	for (bool first = true; *s != '\0'; first = false) {
		size_t len = strcspn(s, "\n");
		size_t elen = strcspn(s, "\t\n");
		char one[256];
		snprintf(one, sizeof one, "%.*s", (int)(elen < 255 ? elen : 255), s);
		if (!first)
			fputs(", ", stdout);
		cli_put_sanitized(stdout, one);
		s += len;
		if (*s == '\n')
			s++;
	}
}

/* A signature, each line indented under its label. */
static void put_signature(const char *label, const char *sig)
{
	if (sig == NULL || *sig == '\0')
		return;
	printf("    %s:\n", label);
	while (*sig != '\0') {
		size_t len = strcspn(sig, "\r\n");
		char *line = xstrndup(sig, len);
		fputs("        ", stdout);
		cli_put_sanitized(stdout, line);
		fputs("\n", stdout);
		free(line);
		sig += len;
		if (*sig == '\r')
			sig++;
		if (*sig == '\n')
			sig++;
	}
}

static int list(struct store_account *a, const char *what)
{
	struct store_identity *v = NULL;
	size_t n = 0;
	char err[512];
	if (store_identity_list(a, &v, &n, NULL, err, sizeof err) < 0)
		return cli_fail(what, "%s", err);
	for (size_t i = 0; i < n; i++) {
		printf("I%lld\t", (long long)v[i].id);
		cli_put_sanitized(stdout, v[i].email);
		fputs("\t", stdout);
		cli_put_sanitized(stdout, v[i].name[0] ? v[i].name : "-");
		fputs("\t", stdout);
		put_addrs(v[i].reply_to);
		fputs("\t", stdout);
		put_addrs(v[i].bcc);
		fputs("\n", stdout);
		put_signature("text signature", v[i].text_signature);
		put_signature("html signature", v[i].html_signature);
	}
	store_identity_free(v, n);
	return cli_finish_output(what, CLI_OK);
}

static int identity_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"list", "add", "remove", NULL};
	const struct cli_command *cmd = &cli_identity_command;
	const char *sub;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return rc;
	const char *name = NULL, *reply_to = NULL, *bcc = NULL, *text = NULL, *html = NULL;
	struct cli_option opts[] = {{"--name", &name},
				    {"--reply-to", &reply_to},
				    {"--bcc", &bcc},
				    {"--text-signature", &text},
				    {"--html-signature", &html}};
	bool is_add = strcmp(sub, "add") == 0, is_list = strcmp(sub, "list") == 0;
	char *pos[2];
	int n_pos;
	rc = cli_parse_sub(cmd, what, argc, argv, opts, is_add ? sizeof opts / sizeof opts[0] : 0,
			   pos, is_list ? 1 : 2, is_list ? 1 : 2, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char address[256], rt[256] = "", bc[256] = "";
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	if (reply_to != NULL && (rc = one_address(cmd, what, reply_to, rt)) != 0)
		return rc;
	if (bcc != NULL && (rc = one_address(cmd, what, bcc, bc)) != 0)
		return rc;
	char email[256] = "";
	if (is_add) {
		/* "*@domain" (RFC 8621 6) or an address */
		if (strncmp(pos[1], "*@", 2) == 0) {
			if ((rc = cli_check_domain(cmd, what, pos[1] + 2, email + 2,
						   sizeof email - 2)) != 0)
				return rc;
			email[0] = '*';
			email[1] = '@';
		} else if ((rc = cli_check_address(cmd, what, pos[1], false, email)) != 0) {
			return rc;
		}
	}
	long long rid = 0;
	if (strcmp(sub, "remove") == 0) {
		char *end;
		rid = pos[1][0] == 'I' ? strtoll(pos[1] + 1, &end, 10) : 0;
		if (rid <= 0 || *end != '\0')
			return cli_usage_error(cmd, what, "ID is I and a number, as list prints it");
	}

	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	struct store_account *a = NULL;
	int r = store_account_open(s, address, &a);
	char err[512];
	if (r <= 0) {
		rc = r < 0 ? cli_fail(what, "%s: cannot open the account", address)
			   : cli_fail(what, "no such user %s", address);
	} else if (is_list) {
		rc = list(a, what);
	} else if (is_add) {
		int ok = store_may_send_as(s, store_account_id(a), email, cfg->recipient_delimiter,
					   cfg->submission_domain_senders);
		struct store_identity in = {.name = (char *)name,
					    .email = email,
					    .reply_to = reply_to ? rt : NULL,
					    .bcc = bcc ? bc : NULL,
					    .text_signature = (char *)text,
					    .html_signature = (char *)html};
		int64_t id = 0;
		if (ok < 0)
			rc = cli_fail(what, "cannot look up the addresses in the store");
		else if (ok == 0)
			rc = cli_fail(what, "%s may not send as %s (not an address of the user)",
				      address, email);
		else if ((r = store_identity_add(a, &in, &id, err, sizeof err)) < 0)
			rc = cli_fail(what, "%s", err);
		else {
			printf("identity I%lld (%s) added for %s\n", (long long)id, email, address);
			rc = cli_finish_output(what, CLI_OK);
		}
	} else if ((r = store_identity_remove(a, (int64_t)rid, err, sizeof err)) < 0) {
		rc = cli_fail(what, "%s", err);
	} else if (r == 0) {
		rc = cli_fail(what, "%s has no identity I%lld", address, rid);
	} else {
		printf("identity I%lld of %s removed\n", rid, address);
		rc = cli_finish_output(what, CLI_OK);
	}
	store_close(&s);
	config_free(&cfg);
	return rc;
}
