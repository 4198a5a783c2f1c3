/*
 * cli-apppass.c - `tern user app-password add|list|revoke`: a user's app
 * passwords (auth/apppass.h, store_apppass_*), per-device passwords that
 * log in on every protocol beside the main one, so a lost phone costs
 * one revoke, not a new main password (docs/security.md "App passwords").
 *
 * add makes the password from the kernel's CSPRNG and prints it once;
 * only its yescrypt hash is stored.  Reached through `tern user`
 * (cli-admin.c), whose usage text lists these sub-commands.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "apppass.h"
#include "cli-int.h"
#include "config.h"
#include "password.h"
#include "store.h"

/* Attempts at a fresh id when the one made is already the user's (one
 * chance in 2^20 per app password it has). */
#define ID_ATTEMPTS 8

/* "2026-12-07 05:30:00 UTC", or "never" for 0. */
static void put_time(int64_t t, char *out, size_t outsz)
{
	if (t <= 0) {
		snprintf(out, outsz, "never");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, outsz, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Makes, hashes and stores a new app password; prints it.  0 or an exit
 * code (message printed). */
static int add(struct store *s, const char *what, const struct store_account_info *info,
	       const char *name)
{
	char text[APPPASS_TEXT_SIZE], id[APPPASS_ID_SIZE], hash[256], err[512];
	int rc = CLI_FAIL;
	for (int attempt = 0; attempt < ID_ATTEMPTS; attempt++) {
		if (apppass_generate(text, id) < 0) {
			rc = cli_fail(what, "no random bytes from the kernel");
			break;
		}
		if (password_hash(text, hash, sizeof hash) < 0) {
			rc = cli_fail(what, "cannot hash the password (libcrypt failed)");
			break;
		}
		int r = store_apppass_add(s, info->id, id, name, hash, APPPASS_MAX_PER_USER, err,
					  sizeof err);
		if (r == STORE_APPPASS_ID_TAKEN)
			continue;
		if (r == 0) {
			printf(
			    "app password \"%s\" added for %s:\n\n    %s\n\n"
			    "Use it instead of the main password on that device, on every "
			    "protocol\n"
			    "(with or without the dashes).  It is shown only this once: Tern "
			    "keeps\n"
			    "only its hash.  `tern user app-password revoke %s \"%s\"` ends it.\n",
			    name, info->address, text, info->address, name);
			rc = cli_finish_output(what, CLI_OK);
		} else {
			rc = cli_fail(what, "%s: %s", info->address, err);
		}
		break;
	}
	explicit_bzero(text, sizeof text);
	return rc;
}

static int list(struct store *s, const char *what, const struct store_account_info *info)
{
	struct store_apppass rows[APPPASS_MAX_PER_USER];
	size_t n = 0;
	char err[512];
	if (store_apppass_list(s, info->id, rows, APPPASS_MAX_PER_USER, &n, err, sizeof err) < 0)
		return cli_fail(what, "%s", err);
	for (size_t i = 0; i < n; i++) {
		char created[40], used[40];
		put_time(rows[i].created, created, sizeof created);
		put_time(rows[i].last_used, used, sizeof used);
		cli_put_sanitized(stdout, rows[i].name);
		printf("\t%s\tcreated %s\tlast used %s\n", rows[i].id, created, used);
	}
	explicit_bzero(rows, sizeof rows);
	return cli_finish_output(what, CLI_OK);
}

int cli_apppass_run(const struct cli_command *cmd, const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"add", "list", "revoke", NULL};
	if (argc < 3)
		return cli_usage_error(cmd, "user app-password",
				       "missing sub-command (add, list "
				       "or revoke)");
	const char *sub = NULL;
	for (size_t i = 0; subs[i] != NULL; i++)
		if (!strcmp(argv[2], subs[i]))
			sub = subs[i];
	if (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (sub == NULL)
		return cli_usage_error(cmd, "user app-password", "unknown sub-command \"%s\"",
				       argv[2]);
	char what[WHAT_MAX + 16];
	snprintf(what, sizeof what, "user app-password %s", sub);
	bool is_list = !strcmp(sub, "list");
	char *pos[2];
	int n_pos;
	int rc = cli_parse_args(cmd, what, argc, argv, 3, NULL, 0, pos, is_list ? 1 : 2, &n_pos);
	if (rc == CLI_HELP) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (rc != 0)
		return rc;
	if (n_pos < (is_list ? 1 : 2))
		return cli_usage_error(cmd, what,
				       is_list ? "missing ADDRESS" : "missing ADDRESS or NAME");
	char address[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	const char *name = is_list ? NULL : pos[1];
	if (name != NULL && !apppass_name_ok(name))
		return cli_usage_error(cmd, what,
				       "NAME: 1 to %d printable ASCII characters (spaces inside "
				       "only), e.g. \"phone\"",
				       APPPASS_NAME_MAX);

	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	struct store_account_info info;
	int r = store_account_get(s, address, &info);
	char err[512];
	if (r < 0) {
		rc = cli_fail(what, "%s: cannot look up the account in the store", address);
	} else if (r == 0) {
		rc = cli_fail(what, "no such user %s", address);
	} else if (!strcmp(sub, "add")) {
		rc = add(s, what, &info, name);
	} else if (is_list) {
		rc = list(s, what, &info);
	} else if ((r = store_apppass_remove(s, info.id, name, err, sizeof err)) < 0) {
		rc = cli_fail(what, "%s", err);
	} else if (r == 0) {
		rc = cli_fail(what, "%s has no app password named \"%s\"", address, name);
	} else {
		printf("app password \"%s\" of %s revoked\n", name, address);
		rc = cli_finish_output(what, CLI_OK);
	}
	explicit_bzero(&info, sizeof info);
	store_close(&s);
	config_free(&cfg);
	return rc;
}
