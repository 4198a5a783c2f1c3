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

extern const struct cli_command cli_sieve_command;

#define MAX_MESSAGE (64u * 1024 * 1024)
#define MAX_EXISTS 64

struct exists_list {
	const char *names[MAX_EXISTS];
	size_t n;
};

static bool mailbox_exists(void *ctx, const char *name)
{
	const struct exists_list *l = ctx;
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return true;
	return false;
}

static int compile_file(const char *path, struct sieve_script **out)
{
	size_t len;
	char *src = fsutil_read_file(path, sieve_default_limits.max_script, &len);
	if (src == NULL && errno == EFBIG) {
		fprintf(stderr, "%s:1:1: error: script larger than %zu bytes\n", path,
			sieve_default_limits.max_script);
		return CLI_USAGE;
	}
	if (src == NULL)
		return cli_fail(path, "cannot read: %m");
	struct sieve_error err;
	int rc = sieve_compile(src, len, NULL, out, &err);
	free(src);
	if (rc < 0) {
		fprintf(stderr, "%s:%d:%d: error: %s\n", path, err.line, err.col, err.msg);
		return CLI_USAGE;
	}
	return CLI_OK;
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
	static const char *const names[] = {"keep",    "fileinto", "redirect",
					    "discard", "reject",   "ereject"};
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
}

static int run_test(const struct cli_command *cmd, int argc, char **argv)
{
	const char *path = NULL, *from = "", *to = "";
	struct exists_list ex = {{NULL}, 0};
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if ((!strcmp(a, "--from") || !strcmp(a, "--to") ||
		     !strcmp(a, "--mailbox-exists")) &&
		    i + 1 >= argc)
			return cli_usage_error(cmd, a, "needs a value");
		if (!strcmp(a, "--from")) {
			from = argv[++i];
		} else if (!strcmp(a, "--to")) {
			to = argv[++i];
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
	char chunk[65536];
	ssize_t got;
	while ((got = read(0, chunk, sizeof chunk)) > 0)
		if (buf_append(&msg, chunk, (size_t)got) < 0) {
			sieve_script_free(&s);
			buf_free(&msg);
			return cli_fail("stdin", "message larger than %u bytes", MAX_MESSAGE);
		}
	if (got < 0) {
		sieve_script_free(&s);
		buf_free(&msg);
		return cli_fail("stdin", "read error: %m");
	}
	struct sieve_input in = {from, to, buf_cstr(&msg), msg.len, mailbox_exists, &ex};
	struct sieve_result res;
	if (sieve_run(s, &in, &res) < 0) {
		fputs("error: ", stdout);
		put_text(res.error);
		putchar('\n');
	}
	for (size_t i = 0; i < res.n_actions; i++)
		put_action(&res.actions[i]);
	sieve_result_free(&res);
	sieve_script_free(&s);
	buf_free(&msg);
	return CLI_OK;
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
	return cli_usage_error(cmd, argv[1], "unknown sub-command");
}

const struct cli_command cli_sieve_command = {
    "sieve",
    "check a Sieve script, or show what it would do with a message",
    "usage: tern sieve check FILE\n"
    "       tern sieve test FILE [--from ENVFROM] [--to ENVTO]\n"
    "                       [--mailbox-exists NAME]... < MESSAGE\n"
    "\n"
    "check   compiles FILE: prints OK, or FILE:LINE:COLUMN: error: ... and\n"
    "        exits 2\n"
    "test    runs FILE on the message on stdin with the given envelope and\n"
    "        prints the actions it would take, one a line; nothing is\n"
    "        delivered.  --mailbox-exists names a mailbox that exists (for\n"
    "        mailboxexists); it may be repeated.\n"
    "Needs no config file.  See docs/sieve.md.\n",
    sieve_main,
};
