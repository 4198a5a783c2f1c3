/*
 * cli-auth.c - `tern auth status|unblock ADDRESS|ACCOUNT`: looks at and
 * lifts the brute-force limiter's counts (auth/authlimit.h) of a running
 * server, through the table file serve keeps in the data folder.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authlimit.h"
#include "cli-int.h"
#include "cli.h"
#include "config.h"

extern const struct cli_command cli_auth_command;

/* Parses an IPv4 or IPv6 address into ss.  True if s is one. */
static bool parse_ip(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, s, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

static void put_until(const char *what, uint32_t fails, int64_t until)
{
	printf("%s: %u failure%s in the window", what, fails, fails == 1 ? "" : "s");
	if (until != 0) {
		char t[64];
		time_t tt = (time_t)until;
		struct tm tm;
		gmtime_r(&tt, &tm);
		strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S UTC", &tm);
		printf(", blocked until %s", t);
	}
	putchar('\n');
}

static int auth_main(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_auth_command;
	if (argc < 2)
		return cli_usage_error(cmd, "auth", "missing sub-command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	bool unblock = !strcmp(argv[1], "unblock");
	if (!unblock && strcmp(argv[1], "status") != 0)
		return cli_usage_error(cmd, argv[1], "unknown sub-command");
	const char *what = unblock ? "auth unblock" : "auth status";
	if (argc != 3)
		return cli_usage_error(cmd, what, "expects one ADDRESS (IP) or ACCOUNT");
	const char *arg = argv[2];
	struct sockaddr_storage ss;
	bool is_ip = parse_ip(arg, &ss);
	if (!is_ip && strchr(arg, '@') == NULL)
		return cli_usage_error(cmd, what, "\"%s\" is neither an IP address nor an account",
				       arg);
	struct config *cfg = cli_load_config(cfg_path);
	if (cfg == NULL)
		return CLI_FAIL;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", cfg->data_dir, AUTHLIMIT_FILE);
	config_free(&cfg);
	if (authlimit_attach(path) < 0) {
		if (errno == ENOENT)
			return cli_fail(what, "%s: no limiter table (is `tern serve` running?)",
					path);
		return cli_fail(what, "%s: %s", path, strerror(errno));
	}
	struct authlimit_state st;
	const struct sockaddr *ip = is_ip ? (const struct sockaddr *)&ss : NULL;
	int r = unblock ? authlimit_unblock(ip, is_ip ? NULL : arg, &st)
			: authlimit_inspect(ip, is_ip ? NULL : arg, &st);
	authlimit_shutdown();
	if (r < 0)
		return cli_fail(what, "cannot read the limiter table");
	if (!st.found && !st.prefix_found) {
		printf("%s: nothing counted\n", arg);
		return CLI_OK;
	}
	put_until(arg, st.fails, st.blocked_until);
	if (st.pending)
		printf("%s: %u check%s in flight\n", arg, st.pending, st.pending == 1 ? "" : "s");
	if (st.prefix_found)
		put_until("its network prefix", st.prefix_fails, st.prefix_blocked_until);
	if (unblock)
		printf("%s: failures cleared%s\n", arg,
		       st.blocked_until || st.prefix_blocked_until ? ", block lifted" : "");
	return CLI_OK;
}

const struct cli_command cli_auth_command = {
    "auth",
    "show or lift the login limiter's counts for an address or account",
    "usage: tern [-c FILE] auth status ADDRESS|ACCOUNT\n"
    "       tern [-c FILE] auth unblock ADDRESS|ACCOUNT\n"
    "\n"
    "status   prints the failures counted for the IP address (and its network\n"
    "         prefix, auth.prefix_v4 / auth.prefix_v6) or the account, and any\n"
    "         block, as the running server sees them\n"
    "unblock  clears them and lifts the block (an account is never blocked,\n"
    "         only slowed: unblock clears its delays)\n"
    "Needs the running server's data folder (root, or the server's user).\n"
    "See docs/security.md.\n",
    auth_main,
};
