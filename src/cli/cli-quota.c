/*
 * cli-quota.c - `tern user quota USER [SIZE|none|default] [--messages
 * N|none|default]`: shows an account's usage and limits, or sets its own
 * limits (store-quota.c keeps both; docs/admin.md "Quotas").
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli-int.h"
#include "config.h"
#include "store.h"
#include "strutil.h"

/* "none" (unlimited: 0), "default" or a value (a size with K/M/G when
 * size, else a plain count).  0 or -1. */
static int parse_limit(const char *arg, bool size, uint64_t *out)
{
	if (!strcmp(arg, "none")) {
		*out = 0;
		return 0;
	}
	if (!strcmp(arg, "default")) {
		*out = STORE_QUOTA_DEFAULT;
		return 0;
	}
	if (size ? strutil_parse_size(arg, out) < 0
		 : strutil_parse_u64(arg, strlen(arg), (uint64_t)INT64_MAX, out) < 0)
		return -1;
	return *out > (uint64_t)INT64_MAX ? -1 : 0;
}

static void print_line(const char *name, uint64_t used, uint64_t limit,
		       enum store_quota_source from, const char *unit)
{
	printf("%s: %" PRIu64 "%s used", name, used, unit);
	if (limit == 0)
		printf(", unlimited");
	else
		printf(" of %" PRIu64 "%s (%.0f%%)", limit, unit,
		       (double)used * 100.0 / (double)limit);
	printf(" (%s)\n", from == STORE_QUOTA_ACCOUNT  ? "set for this user"
			  : from == STORE_QUOTA_DOMAIN ? "the domain's default"
						       : "the default");
}

/* The arguments after USER or DOMAIN: the name into pos[0], the limits
 * given (NULL: not given) into *storage and *messages.  0 or an exit
 * code (usage printed). */
struct limit_args {
	char *name;
	uint64_t storage_v, messages_v;
	const uint64_t *storage, *messages;
};

static int parse_args(const struct cli_command *cmd, const char *what, int argc, char **argv,
		      struct limit_args *la)
{
	const char *msg_opt = NULL;
	const struct cli_option opts[] = {{"--messages", &msg_opt}};
	char *pos[2];
	int n_pos;
	int rc = cli_parse_sub(cmd, what, argc, argv, opts, 1, pos, 1, 2, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	memset(la, 0, sizeof *la);
	la->name = pos[0];
	if (n_pos == 2) {
		if (parse_limit(pos[1], true, &la->storage_v) < 0)
			return cli_usage_error(cmd, what,
					       "\"%s\" is not a size (bytes, or with K, M or G), "
					       "none or default",
					       pos[1]);
		la->storage = &la->storage_v;
	}
	if (msg_opt != NULL) {
		if (parse_limit(msg_opt, false, &la->messages_v) < 0)
			return cli_usage_error(
			    cmd, what, "--messages: \"%s\" is not a number, none or default",
			    msg_opt);
		la->messages = &la->messages_v;
	}
	return 0;
}

int cli_user_quota(const struct cli_command *cmd, const char *what, const char *cfg_path, int argc,
		   char **argv)
{
	struct limit_args la;
	int rc = parse_args(cmd, what, argc, argv, &la);
	if (rc != 0)
		return rc;
	char address[256];
	if ((rc = cli_check_address(cmd, what, la.name, false, address)) != 0)
		return rc;

	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	struct store_account_info info;
	struct store_account *a = NULL;
	struct store_quota q;
	int r = store_account_get(s, address, &info);
	if (r <= 0) {
		rc = r < 0 ? cli_fail(what, "%s: cannot look up the account in the store", address)
			   : cli_fail(what, "no such user %s", address);
	} else if ((la.storage || la.messages) &&
		   store_quota_set(s, info.id, la.storage, la.messages, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s: %s", address, err);
	} else if (store_account_open_id(s, info.id, &a) <= 0) {
		rc = cli_fail(what, "%s: cannot open the account", address);
	} else if (store_quota_get(a, &q, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s: %s", address, err);
	} else {
		printf("%s\n", address);
		print_line("storage", q.storage, q.storage_limit, q.storage_from, " bytes");
		print_line("messages", q.messages, q.messages_limit, q.messages_from, "");
		rc = cli_finish_output(what, CLI_OK);
	}
	store_close(&s);
	config_free(&cfg);
	return rc;
}

static void print_domain_line(const char *name, uint64_t own, uint64_t server, const char *unit)
{
	uint64_t v = own == STORE_QUOTA_DEFAULT ? server : own;
	printf("%s: ", name);
	if (v == 0)
		printf("unlimited");
	else
		printf("%" PRIu64 "%s", v, unit);
	printf(" for each user without a limit of its own (%s)\n",
	       own == STORE_QUOTA_DEFAULT ? "the default" : "set for this domain");
}

int cli_domain_quota(const struct cli_command *cmd, const char *what, const char *cfg_path,
		     int argc, char **argv)
{
	struct limit_args la;
	int rc = parse_args(cmd, what, argc, argv, &la);
	if (rc != 0)
		return rc;
	char domain[256];
	if ((rc = cli_check_domain(cmd, what, la.name, domain, sizeof domain)) != 0)
		return rc;
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	uint64_t st, msgs;
	if (cli_require_domain(s, what, domain) != 1) {
		rc = CLI_FAIL;
	} else if ((la.storage || la.messages) &&
		   store_quota_domain_set(s, domain, la.storage, la.messages, err, sizeof err) <
		       0) {
		rc = cli_fail(what, "%s: %s", domain, err);
	} else if (store_quota_domain_get(s, domain, &st, &msgs, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s: %s", domain, err);
	} else {
		printf("%s\n", domain);
		print_domain_line("storage", st, cfg->quota_default_storage, " bytes");
		print_domain_line("messages", msgs, cfg->quota_default_messages, "");
		rc = cli_finish_output(what, CLI_OK);
	}
	store_close(&s);
	config_free(&cfg);
	return rc;
}
