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

static void print_line(const char *name, uint64_t used, uint64_t limit, bool own, const char *unit)
{
	printf("%s: %" PRIu64 "%s used", name, used, unit);
	if (limit == 0)
		printf(", unlimited");
	else
		printf(" of %" PRIu64 "%s (%.0f%%)", limit, unit,
		       (double)used * 100.0 / (double)limit);
	printf(" (%s)\n", own ? "set for this user" : "the default");
}

int cli_user_quota(const struct cli_command *cmd, const char *what, const char *cfg_path, int argc,
		   char **argv)
{
	const char *msg_opt = NULL;
	const struct cli_option opts[] = {{"--messages", &msg_opt}};
	char *pos[2];
	int n_pos;
	int rc = cli_parse_sub(cmd, what, argc, argv, opts, 1, pos, 1, 2, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char address[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	uint64_t storage = 0, messages = 0;
	if (n_pos == 2 && parse_limit(pos[1], true, &storage) < 0)
		return cli_usage_error(cmd, what,
				       "\"%s\" is not a size (bytes, or with K, M or G), none or "
				       "default",
				       pos[1]);
	if (msg_opt != NULL && parse_limit(msg_opt, false, &messages) < 0)
		return cli_usage_error(
		    cmd, what, "--messages: \"%s\" is not a number, none or default", msg_opt);

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
	} else if ((n_pos == 2 || msg_opt != NULL) &&
		   store_quota_set(s, info.id, n_pos == 2 ? &storage : NULL,
				   msg_opt != NULL ? &messages : NULL, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s: %s", address, err);
	} else if (store_account_open_id(s, info.id, &a) <= 0) {
		rc = cli_fail(what, "%s: cannot open the account", address);
	} else if (store_quota_get(a, &q, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s: %s", address, err);
	} else {
		printf("%s\n", address);
		print_line("storage", q.storage, q.storage_limit, q.storage_own, " bytes");
		print_line("messages", q.messages, q.messages_limit, q.messages_own, "");
		rc = cli_finish_output(what, CLI_OK);
	}
	store_close(&s);
	config_free(&cfg);
	return rc;
}
