/*
 * cli-acl.c - `tern acl set|remove|list USER MAILBOX ...`: the access
 * control list of a user's mailbox (store-acl.c; the same lists IMAP
 * SETACL/GETACL change and show, docs/admin.md "Sharing mailboxes").
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli-int.h"
#include "config.h"
#include "store.h"

extern const struct cli_command cli_acl_command;

static int list_cb(void *ctx, const char *ident, const char *rights)
{
	(void)ctx;
	printf("%s %s\n", ident, rights);
	return 0;
}

/* "anyone", or an account's address (as the store spells it) into out. */
static int check_ident(const char *what, struct store *s, const char *arg, char out[256])
{
	if (strcasecmp(arg, "anyone") == 0) {
		snprintf(out, 256, "anyone");
		return CLI_OK;
	}
	if (arg[0] == '-')
		return cli_fail(what, "negative rights (%s) are not supported", arg);
	struct store_account *a = NULL;
	int e = store_account_open(s, arg, &a);
	if (e <= 0)
		return e == 0 ? cli_fail(what, "no such user %s (identifiers: users, anyone)", arg)
			      : cli_fail(what, "%s: cannot open the account", arg);
	if (store_account_address(s, store_account_id(a), out) != 1)
		return cli_fail(what, "%s: cannot read the address", arg);
	return CLI_OK;
}

static int acl_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"set", "remove", "list", NULL};
	const struct cli_command *cmd = &cli_acl_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	int want = !strcmp(sub, "set") ? 4 : !strcmp(sub, "remove") ? 3 : 2;
	char *pos[4];
	int n_pos;
	rc = cli_parse_sub(cmd, what, argc, argv, NULL, 0, pos, want, want, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char address[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	char err[512], ident[256], canon[STORE_ACL_RIGHTS_LEN + 1];
	struct store_account *a = NULL;
	struct store_mailbox mb;
	if ((rc = cli_open_mailbox(what, s, address, pos[1], &a, &mb)) != CLI_OK)
		goto out;
	if (want == 2) {
		printf("%s %s\n", address, STORE_ACL_RIGHTS); /* the owner: all, always */
		if (store_acl_list(a, mb.id, list_cb, NULL, err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", address, err);
		else
			rc = cli_finish_output(what, CLI_OK);
		goto out;
	}
	if ((rc = check_ident(what, s, pos[2], ident)) != CLI_OK)
		goto out;
	if (strcasecmp(ident, address) == 0) {
		rc = cli_fail(what, "%s owns %s and always has all rights", address, pos[1]);
		goto out;
	}
	const char *rights = want == 4 ? pos[3] : "";
	if (store_acl_canon(rights, canon) < 0 || (want == 4 && canon[0] == '\0')) {
		rc = cli_fail(what, "rights are letters of %s (to remove all: acl remove)",
			      STORE_ACL_OTHERS_RIGHTS);
		goto out;
	}
	int r = store_acl_set(a, mb.id, ident, canon, err, sizeof err);
	if (r < 0) {
		rc = cli_fail(what, "%s: %s", address, err);
		goto out;
	}
	if (want == 4)
		printf("%s \"%s\": %s %s\n", address, mb.name, ident, canon);
	else
		printf("%s \"%s\": %s removed\n", address, mb.name, ident);
	rc = cli_finish_output(what, CLI_OK);
out:
	store_close(&s);
	config_free(&cfg);
	return rc;
}

const struct cli_command cli_acl_command = {
    "acl",
    "share a user's mailbox with other users (access control lists)",
    "usage: tern [-c FILE] acl set USER MAILBOX IDENTIFIER RIGHTS\n"
    "       tern [-c FILE] acl remove USER MAILBOX IDENTIFIER\n"
    "       tern [-c FILE] acl list USER MAILBOX\n"
    "\n"
    "IDENTIFIER is another user's address or anyone (every user of the\n"
    "server). RIGHTS (RFC 4314) are letters of lrswipte: l see the mailbox,\n"
    "r read, s set \\Seen, w set other flags, i append, p post, t set\n"
    "\\Deleted, e expunge. set replaces the identifier's rights. The owner\n"
    "always has all rights (lrswipkxtea); the mailbox appears to the others\n"
    "as \"Other Users/USER/MAILBOX\".\n",
    acl_run,
};
