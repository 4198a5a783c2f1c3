/*
 * cli-group.c - `tern group add|list|show|remove|set`: group addresses
 * (store-group.c), an alias of ours whose targets are its members, with a
 * posting policy, a Reply-To policy and a List-Id.  Same checks as `tern
 * alias add` (cli-admin.c): arguments first (exit 2), then what must exist
 * (exit 1), then the change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "cli-int.h"
#include "config.h"
#include "store.h"
#include "xalloc.h"

static int group_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_group_command = {
	"group",
	"add, list, show, change or remove group addresses (a member may leave)",
	"usage: tern [-c FILE] group add [--force] [--policy P] [--reply-to R] GROUP MEMBER...\n"
	"       tern [-c FILE] group list [DOMAIN]\n"
	"       tern [-c FILE] group show GROUP\n"
	"       tern [-c FILE] group set GROUP [--policy P] [--reply-to R]\n"
	"       tern [-c FILE] group remove GROUP [MEMBER]\n"
	"\n"
	"  add      make GROUP (local@domain, domain ours) a group if it is not\n"
	"           one, and add each MEMBER (local or remote); a MEMBER in our\n"
	"           domains must be a user or an alias unless --force is given\n"
	"  list     print \"GROUP<tab>POLICY<tab>REPLY-TO<tab>MEMBERS\" lines\n"
	"           (MEMBERS: how many), of DOMAIN or of all\n"
	"  show     print GROUP's settings, its List-Id and its members\n"
	"  set      change the settings of GROUP\n"
	"  remove   remove MEMBER from GROUP (the member leaves), or the whole\n"
	"           group; a group whose last member leaves is removed\n"
	"\n"
	"  --policy P     who may post: anyone (default), domains (senders of\n"
	"                 our domains), members (senders that are members)\n"
	"  --reply-to R   none (default: as the message has it), group\n"
	"                 (Reply-To: GROUP, replacing any), sender (Reply-To:\n"
	"                 the From: addresses, when the message has none)\n",
	group_run,
};

/* The members of one group, or of all groups of a domain. */
struct member_rows {
	const char *group; /* NULL: every alias of the domain */
	char (*alias)[256];
	char (*target)[256];
	size_t n, cap;
};

static int collect_member(void *ctx, const char *alias, const char *target)
{
	struct member_rows *r = ctx;
	if (r->group != NULL && strcasecmp(alias, r->group) != 0)
		return 0;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->alias = xreallocarray(r->alias, r->cap, sizeof *r->alias);
		r->target = xreallocarray(r->target, r->cap, sizeof *r->target);
	}
	snprintf(r->alias[r->n], sizeof r->alias[0], "%s", alias);
	snprintf(r->target[r->n], sizeof r->target[0], "%s", target);
	r->n++;
	return 0;
}

static void member_rows_free(struct member_rows *r)
{
	free(r->alias);
	free(r->target);
}

static int collect_group(void *ctx, const struct store_group *g)
{
	struct {
		struct store_group *v;
		size_t n;
	} *r = ctx;
	r->v = xreallocarray(r->v, r->n + 1, sizeof *r->v);
	r->v[r->n++] = *g;
	return 0;
}

static int group_list(struct store *s, const char *what, const char *domain)
{
	struct {
		struct store_group *v;
		size_t n;
	} groups = {NULL, 0};
	char err[512];
	int rc = 0;
	if (domain != NULL && cli_require_domain(s, what, domain) != 1)
		return CLI_FAIL;
	if (store_group_list(s, domain, collect_group, &groups, err, sizeof err) < 0)
		rc = cli_fail(what, "%s", err);
	for (size_t i = 0; rc == 0 && i < groups.n; i++) {
		const struct store_group *g = &groups.v[i];
		struct member_rows m = {g->address, NULL, NULL, 0, 0};
		if (store_alias_list(s, addr_domain_of(g->address), collect_member, &m, err,
				     sizeof err) < 0)
			rc = cli_fail(what, "%s", err);
		else
			printf("%s\t%s\t%s\t%zu\n", g->address, store_group_policy_name(g->policy),
			       store_group_reply_name(g->reply_to), m.n);
		member_rows_free(&m);
	}
	free(groups.v);
	return cli_finish_output(what, rc);
}

static int group_show(struct store *s, const struct config *cfg, const char *what,
		      const char *group)
{
	struct store_group g;
	int r = store_group_get(s, group, &g);
	if (r < 0)
		return cli_fail(what, "%s: cannot look up the group in the store", group);
	if (r == 0)
		return cli_fail(what, "no such group %s", group);
	struct member_rows m = {g.address, NULL, NULL, 0, 0};
	char err[512];
	int rc = 0;
	if (store_alias_list(s, addr_domain_of(g.address), collect_member, &m, err, sizeof err) < 0)
		rc = cli_fail(what, "%s", err);
	if (rc == 0)
		printf("group:    %s\npolicy:   %s\nreply-to: %s\nlist-id:  <%s>\nmembers:  %zu\n",
		       g.address, store_group_policy_name(g.policy),
		       store_group_reply_name(g.reply_to), g.list_id, m.n);
	for (size_t i = 0; rc == 0 && i < m.n; i++) {
		int st = cli_local_target_state(s, what, cfg->recipient_delimiter, m.target[i]);
		if (st < 0)
			rc = CLI_FAIL;
		else
			printf("  %s%s\n", m.target[i], st == 0 ? "\t(no such user or alias)" : "");
	}
	member_rows_free(&m);
	return cli_finish_output(what, rc);
}

/* Before `group add` changes anything: GROUP must be a group already, or
 * an address with neither an alias nor a user, and each MEMBER new and
 * (without --force) reaching a mailbox if it is ours. */
static int add_check(struct store *s, const struct config *cfg, const char *what,
		     const char *group, char (*members)[256], int n, bool force)
{
	struct store_group g;
	int is_group = store_group_get(s, group, &g);
	if (is_group < 0)
		return cli_fail(what, "%s: cannot look up the group in the store", group);
	struct member_rows m = {group, NULL, NULL, 0, 0};
	char err[512];
	int rc = 0;
	if (store_alias_list(s, addr_domain_of(group), collect_member, &m, err, sizeof err) < 0)
		rc = cli_fail(what, "%s", err);
	struct store_account_info info;
	int acct = rc == 0 && !is_group ? store_account_get(s, group, &info) : 0;
	if (acct < 0)
		rc = cli_fail(what, "%s: cannot look up the account in the store", group);
	else if (acct > 0)
		rc = cli_fail(what, "%s is a user; a group needs an address of its own", group);
	else if (rc == 0 && !is_group && m.n > 0)
		rc = cli_fail(what,
			      "%s is an alias; remove it first (`tern alias remove %s`) to make "
			      "it a group",
			      group, group);
	for (int i = 0; rc == 0 && i < n; i++) {
		for (size_t j = 0; rc == 0 && j < m.n; j++)
			if (!strcasecmp(m.target[j], members[i]))
				rc = cli_fail(what, "%s is already a member of %s", members[i], group);
		for (int j = 0; rc == 0 && j < i; j++)
			if (!strcasecmp(members[j], members[i]))
				rc = cli_usage_error(&cli_group_command, what, "%s is given twice",
						     members[i]);
		if (rc != 0 || force)
			continue;
		if (!strcasecmp(members[i], group)) {
			rc = cli_usage_error(&cli_group_command, what,
					     "%s cannot be a member of itself", group);
			continue;
		}
		int st = cli_local_target_state(s, what, cfg->recipient_delimiter, members[i]);
		if (st < 0) {
			rc = CLI_FAIL;
		} else if (st == 0) {
			cli_fail(what,
				 "%s is in our domain %s but is no user or alias, so mail to %s "
				 "would not reach it; add the user first, or give --force",
				 members[i], addr_domain_of(members[i]), group);
			rc = CLI_USAGE;
		}
	}
	member_rows_free(&m);
	return rc;
}

static int group_add(struct store *s, const struct config *cfg, const char *what,
		     const char *group, char (*members)[256], int n, bool force,
		     const enum store_group_policy *policy, const enum store_group_reply *reply)
{
	int rc = add_check(s, cfg, what, group, members, n, force);
	if (rc != 0)
		return rc;
	char err[512];
	struct store_group g;
	if (store_group_set(s, group, policy, reply, err, sizeof err) < 0)
		return cli_fail(what, "%s: %s", group, err);
	if (store_group_get(s, group, &g) != 1)
		return cli_fail(what, "%s: cannot read the group back", group);
	printf("group %s: policy %s, reply-to %s, List-Id <%s>\n", g.address,
	       store_group_policy_name(g.policy), store_group_reply_name(g.reply_to), g.list_id);
	for (int i = 0; i < n && rc == 0; i++) {
		if (store_alias_add(s, g.address, members[i], err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", members[i], err);
		else
			printf("member %s added\n", members[i]);
	}
	return rc;
}

static int group_remove(struct store *s, const char *what, const char *group, const char *member)
{
	struct store_group g;
	int r = store_group_get(s, group, &g);
	if (r < 0)
		return cli_fail(what, "%s: cannot look up the group in the store", group);
	if (r == 0)
		return cli_fail(what, "no such group %s", group);
	char err[512];
	if (member != NULL) {
		int is = store_group_is_member(s, g.address, member);
		if (is < 0)
			return cli_fail(what, "%s: cannot look up the members", group);
		if (is == 0)
			return cli_fail(what, "%s is not a member of %s", member, g.address);
	}
	if (store_alias_remove(s, g.address, member, err, sizeof err) < 0)
		return cli_fail(what, "%s: %s", g.address, err);
	if (member == NULL) {
		printf("group %s removed\n", g.address);
		return 0;
	}
	printf("member %s left %s\n", member, g.address);
	struct store_group after;
	if (store_group_get(s, g.address, &after) == 0)
		printf("group %s removed: its last member left\n", group);
	return 0;
}

static int group_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"add", "list", "show", "set", "remove", NULL};
	const struct cli_command *cmd = &cli_group_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	bool is_add = !strcmp(sub, "add"), is_list = !strcmp(sub, "list");
	bool is_set = !strcmp(sub, "set"), is_remove = !strcmp(sub, "remove");
	bool force = false;
	int n_args = argc;
	char **args = argv;
	if (is_add)
		args = cli_take_flag(argc, argv, "--force", &force, &n_args);
	const char *policy_arg = NULL, *reply_arg = NULL;
	const struct cli_option opts[] = {{"--policy", &policy_arg}, {"--reply-to", &reply_arg}};
	size_t n_opts = is_add || is_set ? 2 : 0;
	int max_pos = n_args > 2 ? n_args - 2 : 1;
	char **pos = xcalloc((size_t)max_pos, sizeof *pos);
	int n_pos;
	int min_pos = is_list ? 0 : is_add ? 2 : 1;
	int most = is_list || is_set || !strcmp(sub, "show") ? 1 : is_remove ? 2 : max_pos;
	rc = cli_parse_sub(cmd, what, n_args, args, opts, n_opts, pos, min_pos, most, &n_pos);
	if (args != argv)
		free(args);
	enum store_group_policy policy;
	enum store_group_reply reply;
	if (rc == 0 && policy_arg != NULL && store_group_policy_parse(policy_arg, &policy) < 0)
		rc = cli_usage_error(cmd, what, "--policy is anyone, domains or members, not \"%s\"",
				     policy_arg);
	if (rc == 0 && reply_arg != NULL && store_group_reply_parse(reply_arg, &reply) < 0)
		rc = cli_usage_error(cmd, what, "--reply-to is none, group or sender, not \"%s\"",
				     reply_arg);
	if (rc == 0 && is_set && policy_arg == NULL && reply_arg == NULL)
		rc = cli_usage_error(cmd, what, "nothing to change: give --policy or --reply-to");
	char group[256] = "", domain[256] = "";
	char(*members)[256] = xcalloc((size_t)max_pos, sizeof *members);
	int n_members = 0;
	if (rc == 0 && is_list) {
		if (n_pos == 1)
			rc = cli_check_domain(cmd, what, pos[0], domain, sizeof domain);
	} else if (rc == 0) {
		rc = cli_check_address(cmd, what, pos[0], false, group);
		for (int i = 1; rc == 0 && i < n_pos; i++)
			rc = cli_check_address(cmd, what, pos[i], true, members[n_members++]);
	}
	free(pos);
	if (rc != 0) {
		free(members);
		return cli_parse_exit(rc);
	}

	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL) {
		free(members);
		return rc;
	}
	char err[512];
	if (is_list) {
		rc = group_list(s, what, domain[0] != '\0' ? domain : NULL);
	} else if (cli_require_domain(s, what, strrchr(group, '@') + 1) != 1) {
		rc = CLI_FAIL;
	} else if (is_add) {
		rc = group_add(s, cfg, what, group, members, n_members, force,
			       policy_arg ? &policy : NULL, reply_arg ? &reply : NULL);
	} else if (is_set) {
		struct store_group g;
		int r = store_group_get(s, group, &g);
		if (r <= 0)
			rc = r < 0 ? cli_fail(what, "%s: cannot look up the group", group)
				   : cli_fail(what, "no such group %s", group);
		else if (store_group_set(s, group, policy_arg ? &policy : NULL,
					 reply_arg ? &reply : NULL, err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", group, err);
		else if (store_group_get(s, group, &g) == 1)
			printf("group %s: policy %s, reply-to %s\n", g.address,
			       store_group_policy_name(g.policy), store_group_reply_name(g.reply_to));
	} else if (is_remove) {
		rc = group_remove(s, what, group, n_members ? members[0] : NULL);
	} else {
		rc = group_show(s, cfg, what, group);
	}
	free(members);
	store_close(&s);
	config_free(&cfg);
	return rc;
}
