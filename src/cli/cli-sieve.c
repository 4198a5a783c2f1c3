/*
 * cli-sieve.c - `tern sieve check FILE` and `tern sieve test FILE`: compile
 * a Sieve script and report errors with line:column, or run it on a
 * message read from stdin and print the actions it would take, without
 * delivering anything (like Pigeonhole's sieve-test).
 *
 * Part of src/cli.  Needs no config and no data folder.
 *
 * Output of `test`, one action a line, in the order taken:
 *   keep [flags: F...]                 (implicit keep: "keep (implicit)")
 *   fileinto MAILBOX [copy] [create] [flags: F...]
 *   redirect ADDRESS [copy]
 *   reject REASON / ereject REASON     (line ends in the reason shown as \n)
 *   discard
 *   vacation REASON, then "  seconds N" and, when given or computed,
 *     "  subject S", "  from F", "  handle H", "  address A"..., "  mime"
 *   duplicate ID, after the actions, one per entry delivery would record
 *     (RFC 7352), then "  handle H", "  seconds N", "  last" when given
 * and "error: MESSAGE" first if the run failed (then only the implicit
 * keep follows).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cli-int.h"
#include "fsutil.h"
#include "sieve.h"
#include "store.h"
#include "strutil.h"
#include "config.h"

extern const struct cli_command cli_sieve_command;

#define MAX_MESSAGE (64u * 1024 * 1024)
#define MAX_EXISTS 64
#define MAX_ENV 16

/* What `test` knows of the world: the mailboxes that exist, and the
 * folders of included scripts (RFC 6609: DIR/NAME.sieve; NULL: none). */
struct exists_list {
	const char *names[MAX_EXISTS];
	size_t n;
	const char *dirs[2]; /* personal, global */
	const char *env[2 * MAX_ENV + 1]; /* environment items (RFC 5183), NULL-ended */
	size_t n_env;
};

static int include_file(void *ctx, bool global, const char *name, char **src, size_t *len)
{
	const struct exists_list *l = ctx;
	const char *dir = l->dirs[global ? 1 : 0];
	char path[4096];
	if (dir == NULL || (size_t)snprintf(path, sizeof path, "%s/%s.sieve", dir, name) >= sizeof path)
		return 0;
	*src = fsutil_read_file(path, sieve_default_limits.max_script, len);
	return *src != NULL ? 1 : errno == ENOENT ? 0 : -1;
}

static bool mailbox_exists(void *ctx, const char *name)
{
	const struct exists_list *l = ctx;
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return true;
	return false;
}

/* Reads stdin into b (set up with its limit by the caller): 0, 1 if it
 * was larger than the limit, -1 on a read error (errno set). */
static int read_stdin(struct buf *b)
{
	char chunk[65536];
	ssize_t got;
	while ((got = read(0, chunk, sizeof chunk)) > 0)
		if (buf_append(b, chunk, (size_t)got) < 0)
			return 1;
	return got < 0 ? -1 : 0;
}

/* Reads path ("-": stdin) whole, at most max bytes; NULL after printing
 * why, with *rc set. */
static char *read_script(const char *path, size_t max, size_t *len, int *rc)
{
	char *src = NULL;
	if (!strcmp(path, "-")) {
		struct buf b;
		buf_init(&b, max);
		int r = read_stdin(&b);
		if (r == 0)
			src = buf_steal(&b, len);
		else if (r > 0)
			errno = EFBIG;
		buf_free(&b);
	} else {
		src = fsutil_read_file(path, max, len);
	}
	if (src == NULL && errno == EFBIG) {
		fprintf(stderr, "%s:1:1: error: script larger than %zu bytes\n", path, max);
		*rc = CLI_USAGE;
	} else if (src == NULL) {
		*rc = cli_fail(path, "cannot read: %m");
	}
	return src;
}

/* Compiles src (named path in errors) with lim; CLI_OK or CLI_USAGE after
 * printing PATH:LINE:COLUMN: error: MESSAGE. */
static int compile_text(const char *path, const char *src, size_t len,
			const struct sieve_limits *lim, struct sieve_script **out)
{
	struct sieve_error err;
	if (sieve_compile(src, len, lim, out, &err) < 0) {
		fprintf(stderr, "%s:%d:%d: error: %s\n", path, err.line, err.col, err.msg);
		return CLI_USAGE;
	}
	return CLI_OK;
}

static int compile_file(const char *path, struct sieve_script **out)
{
	size_t len;
	int rc = CLI_OK;
	char *src = read_script(path, sieve_default_limits.max_script, &len, &rc);
	if (src == NULL)
		return rc;
	rc = compile_text(path, src, len, NULL, out);
	free(src);
	return rc;
}

static void put_text(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			fputs("\\n", stdout);
		else if (*s == '\r')
			fputs("\\r", stdout);
		else
			putchar(*s);
	}
}

static void put_action(const struct sieve_action *a)
{
	static const char *const names[] = {"keep",   "fileinto", "redirect", "discard",
					    "reject", "ereject",  "vacation"};
	fputs(names[a->type], stdout);
	if (a->arg != NULL) {
		putchar(' ');
		put_text(a->arg);
	}
	if (a->implicit)
		fputs(" (implicit)", stdout);
	if (a->copy)
		fputs(" copy", stdout);
	if (a->create)
		fputs(" create", stdout);
	if (a->n_flags > 0) {
		fputs(" flags:", stdout);
		for (size_t i = 0; i < a->n_flags; i++) {
			putchar(' ');
			put_text(a->flags[i]);
		}
	}
	putchar('\n');
	if (a->type != SIEVE_ACT_VACATION)
		return;
	/* the parameters, one indented line each */
	printf("  seconds %llu\n", (unsigned long long)a->seconds);
	const char *const name[3] = {"subject", "from", "handle"};
	const char *const val[3] = {a->subject, a->from, a->handle};
	for (int i = 0; i < 3; i++)
		if (val[i] != NULL) {
			printf("  %s ", name[i]);
			put_text(val[i]);
			putchar('\n');
		}
	for (size_t i = 0; i < a->n_addresses; i++) {
		fputs("  address ", stdout);
		put_text(a->addresses[i]);
		putchar('\n');
	}
	if (a->mime)
		fputs("  mime\n", stdout);
}

static int run_test(const struct cli_command *cmd, int argc, char **argv)
{
	const char *path = NULL, *from = "", *to = "";
	/* spamtest results (RFC 5235): NULL, not tested, unless given */
	const char *spam[2] = {NULL, NULL};
	struct exists_list ex = {{NULL}, 0, {NULL, NULL}, {NULL}, 0};
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "--from") || !strcmp(a, "--to") ||
		     !strcmp(a, "--mailbox-exists") || !strcmp(a, "--include-dir") ||
		     !strcmp(a, "--global-dir") || !strcmp(a, "--env") ||
		     !strcmp(a, "--spamtest") || !strcmp(a, "--spamtest-percent")) &&
		    i + 1 >= argc)
			return cli_usage_error(cmd, a, "needs a value");
		if (!strcmp(a, "--from")) {
			from = argv[++i];
		} else if (!strcmp(a, "--to")) {
			to = argv[++i];
		} else if (!strcmp(a, "--env")) {
			char *eq = strchr(argv[++i], '=');
			if (eq == NULL || eq == argv[i])
				return cli_usage_error(cmd, argv[i], "expected NAME=VALUE");
			if (ex.n_env == MAX_ENV)
				return cli_usage_error(cmd, a, "at most %d items", MAX_ENV);
			*eq = '\0';
			ex.env[2 * ex.n_env] = argv[i];
			ex.env[2 * ex.n_env + 1] = eq + 1;
			ex.n_env++;
		} else if (!strcmp(a, "--spamtest") || !strcmp(a, "--spamtest-percent")) {
			bool pc = !strcmp(a, "--spamtest-percent");
			uint64_t v;
			const char *val = argv[++i];
			if (strutil_parse_u64(val, strlen(val), pc ? 100 : 10, &v) < 0 ||
			    (val[0] == '0' && val[1] != '\0'))
				return cli_usage_error(cmd, val, "expected a number 0..%d", pc ? 100 : 10);
			spam[pc] = val;
		} else if (!strcmp(a, "--include-dir")) {
			ex.dirs[0] = argv[++i];
		} else if (!strcmp(a, "--global-dir")) {
			ex.dirs[1] = argv[++i];
		} else if (!strcmp(a, "--mailbox-exists")) {
			if (ex.n == MAX_EXISTS)
				return cli_usage_error(cmd, a, "at most %d mailboxes", MAX_EXISTS);
			ex.names[ex.n++] = argv[++i];
		} else if (a[0] == '-' && a[1] != '\0') {
			return cli_usage_error(cmd, a, "unknown option");
		} else if (path == NULL) {
			path = a;
		} else {
			return cli_usage_error(cmd, a, "unexpected argument");
		}
	}
	if (path == NULL)
		return cli_usage_error(cmd, "sieve test", "missing FILE");
	struct sieve_script *s;
	int rc = compile_file(path, &s);
	if (rc != CLI_OK)
		return rc;
	struct buf msg;
	buf_init(&msg, MAX_MESSAGE);
	int r = read_stdin(&msg);
	if (r != 0) {
		sieve_script_free(&s);
		buf_free(&msg);
		return r > 0 ? cli_fail("stdin", "message larger than %u bytes", MAX_MESSAGE)
			     : cli_fail("stdin", "read error: %m");
	}
	struct sieve_input in = {from,		 to,   buf_cstr(&msg), msg.len, mailbox_exists,
				 &ex,		 NULL, include_file,   ex.env,
				 spam[0],	 spam[1], NULL};
	struct sieve_result res;
	if (sieve_run(s, &in, &res) < 0) {
		fputs("error: ", stdout);
		put_text(res.error);
		putchar('\n');
	}
	for (size_t i = 0; i < res.n_actions; i++)
		put_action(&res.actions[i]);
	/* the duplicate entries delivery would record (RFC 7352); the list
	 * is empty here, so none was seen */
	for (size_t i = 0; i < res.n_dups; i++) {
		const struct sieve_duplicate *d = &res.dups[i];
		fputs("duplicate ", stdout);
		put_text(d->id);
		putchar('\n');
		if (d->handle[0] != '\0') {
			fputs("  handle ", stdout);
			put_text(d->handle);
			putchar('\n');
		}
		if (d->seconds > 0)
			printf("  seconds %llu\n", (unsigned long long)d->seconds);
		if (d->last)
			fputs("  last\n", stdout);
	}
	sieve_result_free(&res);
	sieve_script_free(&s);
	buf_free(&msg);
	return CLI_OK;
}

/* ------------------------------------------- scripts stored per user */

struct user_ctx {
	struct config *cfg;
	struct store *s;
	struct store_account *a;
	char address[256];
};

/* Opens the store and USER's account; CLI_OK, or the exit code after
 * printing why. */
static int open_user(const char *cfg_path, const char *what, const char *user, struct user_ctx *u)
{
	int rc;
	memset(u, 0, sizeof *u);
	size_t n = strlen(user);
	if (n == 0 || n >= sizeof u->address || strchr(user, '@') == NULL)
		return cli_usage_error(&cli_sieve_command, what,
				       "\"%s\" is not a valid address (local@domain)", user);
	memcpy(u->address, user, n + 1);
	strutil_lower(u->address, n);
	u->s = cli_open_store(cfg_path, &u->cfg, &rc);
	if (u->s == NULL)
		return rc;
	int e = store_account_open(u->s, u->address, &u->a);
	if (e > 0)
		return CLI_OK;
	rc = e == 0 ? cli_fail(what, "no such user %s", u->address)
		    : cli_fail(what, "%s: cannot open the account", u->address);
	store_close(&u->s);
	config_free(&u->cfg);
	return rc;
}

static void close_user(struct user_ctx *u)
{
	store_close(&u->s);
	config_free(&u->cfg);
}

static int print_script(void *ctx, const char *name, uint64_t size, bool active)
{
	(void)ctx;
	cli_put_sanitized(stdout, name);
	printf("\t%llu\t%s\n", (unsigned long long)size, active ? "active" : "-");
	return 0;
}

/* put [--activate] USER NAME FILE, list USER, get USER NAME,
 * activate USER NAME, deactivate USER, delete USER NAME. */
static int run_store(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_sieve_command;
	const char *sub = argv[1];
	bool activate = false;
	int first = 2;
	if (!strcmp(sub, "put") && argc > 2 && !strcmp(argv[2], "--activate")) {
		activate = true;
		first = 3;
	}
	int want = !strcmp(sub, "put")                                  ? 3
		   : !strcmp(sub, "list") || !strcmp(sub, "deactivate") ? 1
									: 2;
	char what[32];
	snprintf(what, sizeof what, "sieve %s", sub);
	if (argc - first != want)
		return cli_usage_error(cmd, what, "expects %s",
				       want == 3   ? "USER NAME FILE"
				       : want == 2 ? "USER NAME"
						   : "USER");
	const char *name = want >= 2 ? argv[first + 1] : NULL;
	char err[512];
	if (name != NULL && store_sieve_name_ok(name, err, sizeof err) < 0)
		return cli_usage_error(cmd, what, "%s", err);
	struct user_ctx u;
	int rc = open_user(cfg_path, what, argv[first], &u);
	if (rc != CLI_OK)
		return rc;
	int r;
	if (!strcmp(sub, "put")) {
		const char *path = argv[first + 2];
		size_t len, max = (size_t)u.cfg->sieve_max_script_size;
		char *src = read_script(path, max, &len, &rc);
		if (src != NULL) {
			struct sieve_limits lim = sieve_default_limits;
			lim.max_script = max;
			struct sieve_script *sc;
			rc = compile_text(path, src, len, &lim, &sc);
			if (rc == CLI_OK) {
				sieve_script_free(&sc);
				if (store_sieve_put(u.a, name, src, len, u.cfg->sieve_max_scripts,
						    err, sizeof err) < 0 ||
				    (activate &&
				     store_sieve_activate(u.a, name, err, sizeof err) < 0))
					rc = cli_fail(what, "%s: %s", u.address, err);
				else
					printf("stored %s for %s%s\n", name, u.address,
					       activate ? ", active" : "");
			}
			free(src);
		}
	} else if (!strcmp(sub, "list")) {
		if (store_sieve_list(u.a, print_script, NULL, err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", u.address, err);
	} else if (!strcmp(sub, "get")) {
		char *src;
		size_t len;
		r = store_sieve_get(u.a, name, &src, &len, NULL, err, sizeof err);
		if (r < 0)
			rc = cli_fail(what, "%s: %s", u.address, err);
		else if (r == 0)
			rc = cli_fail(what, "%s has no script \"%s\"", u.address, name);
		else if (fwrite(src, 1, len, stdout) != len)
			rc = cli_fail(what, "write error: %m");
		free(src);
	} else if (!strcmp(sub, "activate") || !strcmp(sub, "deactivate")) {
		r = store_sieve_activate(u.a, name, err, sizeof err);
		if (r < 0)
			rc = cli_fail(what, "%s: %s", u.address, err);
		else if (r == 0)
			rc = cli_fail(what, "%s has no script \"%s\"", u.address, name);
	} else {
		r = store_sieve_delete(u.a, name, err, sizeof err);
		if (r < 0)
			rc = cli_fail(what, "%s: %s", u.address, err);
		else if (r == 0)
			rc = cli_fail(what, "%s has no script \"%s\"", u.address, name);
	}
	if (fflush(stdout) != 0 && rc == CLI_OK)
		rc = cli_fail(what, "write error: %m");
	close_user(&u);
	return rc;
}

static int sieve_main(const char *cfg_path, int argc, char **argv)
{
	const struct cli_command *cmd = &cli_sieve_command;
	if (argc < 2)
		return cli_usage_error(cmd, "sieve", "missing sub-command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (!strcmp(argv[1], "check")) {
		if (argc != 3)
			return cli_usage_error(cmd, "sieve check", "expects exactly one FILE");
		struct sieve_script *s;
		int rc = compile_file(argv[2], &s);
		if (rc == CLI_OK) {
			puts("OK");
			sieve_script_free(&s);
		}
		return rc;
	}
	if (!strcmp(argv[1], "test"))
		return run_test(cmd, argc, argv);
	static const char *const stored[] = {"put",      "list",       "get",
					     "activate", "deactivate", "delete"};
	for (size_t i = 0; i < sizeof stored / sizeof stored[0]; i++)
		if (!strcmp(argv[1], stored[i]))
			return run_store(cfg_path, argc, argv);
	return cli_usage_error(cmd, argv[1], "unknown sub-command");
}

const struct cli_command cli_sieve_command = {
    "sieve",
    "check a Sieve script, show what it would do, or store scripts per user",
    "usage: tern sieve check FILE\n"
    "       tern sieve test FILE [--from ENVFROM] [--to ENVTO]\n"
    "                       [--mailbox-exists NAME]... [--include-dir DIR]\n"
    "                       [--global-dir DIR] [--env NAME=VALUE]...\n"
    "                       [--spamtest N] [--spamtest-percent N] < MESSAGE\n"
    "       tern [-c FILE] sieve put [--activate] USER NAME FILE\n"
    "       tern [-c FILE] sieve list USER\n"
    "       tern [-c FILE] sieve get|activate|delete USER NAME\n"
    "       tern [-c FILE] sieve deactivate USER\n"
    "\n"
    "check   compiles FILE: prints OK, or FILE:LINE:COLUMN: error: ... and\n"
    "        exits 2\n"
    "test    runs FILE on the message on stdin with the given envelope and\n"
    "        prints the actions it would take, one a line; nothing is\n"
    "        delivered.  --mailbox-exists names a mailbox that exists (for\n"
    "        mailboxexists); it may be repeated.  include finds personal\n"
    "        scripts as DIR/NAME.sieve in --include-dir, global ones in\n"
    "        --global-dir (else none); --env gives an environment item\n"
    "        (else it is unknown); --spamtest and --spamtest-percent give\n"
    "        the spamtest results 0..10 and 0..100 (else not tested).\n"
    "        These two need no config.\n"
    "put     checks FILE (\"-\": stdin) and stores it as USER's script NAME\n"
    "        (replacing one of that name); nothing is stored if it has an\n"
    "        error.  --activate also makes it the active script\n"
    "list    prints NAME, SIZE and \"active\" or \"-\", tab-separated\n"
    "get     prints the script; activate makes NAME the one active script;\n"
    "        deactivate leaves none active; delete removes an inactive one\n"
    "See docs/sieve.md.\n",
    sieve_main,
};
