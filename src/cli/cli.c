/*
 * cli.c - the `tern` command line: the command table, dispatch, usage text,
 * the argument parser the sub-commands share, and config/store opening.
 *
 * Part of src/cli, the top layer below main.c.  main.c parses the global
 * options (-c FILE, --help, --version), runs `serve` itself and hands every
 * other sub-command to cli_run().  Each sub-command lives in its own file
 * (cli-init.c, cli-admin.c) as a struct cli_command: name, usage, run.
 *
 * Exit codes follow design.md: 0 success, 1 runtime failure, 2 bad usage
 * or bad config.  Every message starts with "tern: " and names the
 * argument, file or line at fault.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-int.h"
#include "config.h"
#include "log.h"
#include "privdrop.h"
#include "store.h"

#define DEFAULT_CONFIG "tern.conf"
#define SYSTEM_CONFIG "/etc/tern/tern.conf"

/* cli-queue.c */
extern const struct cli_command cli_queue_command;
extern const struct cli_command cli_trace_command;
/* cli-sieve.c */
extern const struct cli_command cli_sieve_command;
extern const struct cli_command cli_auth_command;
extern const struct cli_command cli_dmarc_command;
/* cli-spam.c */
extern const struct cli_command cli_spam_command;
/* cli-index.c */
extern const struct cli_command cli_index_command;
/* cli-authcheck.c */
extern const struct cli_command cli_authcheck_command;
/* cli-backup.c */
extern const struct cli_command cli_backup_command;
extern const struct cli_command cli_restore_command;
/* cli-status.c */
extern const struct cli_command cli_status_command;
/* cli-identity.c */
extern const struct cli_command cli_identity_command;
/* cli-acl.c */
extern const struct cli_command cli_acl_command;

static const struct cli_command *const commands[] = {
	&cli_init_command,        &cli_admin_domain_command, &cli_admin_user_command,
	&cli_admin_alias_command, &cli_admin_mail_command,   &cli_queue_command,
	&cli_trace_command,       &cli_sieve_command,       &cli_auth_command,
	&cli_authcheck_command,   &cli_dkim_command,         &cli_dmarc_command,
	&cli_group_command,       &cli_backup_command,       &cli_restore_command,
	&cli_spam_command,
	&cli_status_command,
	&cli_index_command,
	&cli_contacts_command,
	&cli_identity_command,
	&cli_acl_command,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

void cli_usage(FILE *f)
{
	fputs("usage: tern [-c FILE] COMMAND [ARGUMENTS]\n"
	      "\n"
	      "Global options:\n"
	      "  -c FILE     the config file (default: ./" DEFAULT_CONFIG
	      " if it exists,\n"
	      "              else " SYSTEM_CONFIG ")\n"
	      "  --help      show this text\n"
	      "  --version   show the version\n"
	      "\n"
	      "Commands:\n",
	      f);
	fprintf(f, "  %-10s %s\n", "serve", "run the server in the foreground, logging to stderr");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "Run \"tern COMMAND --help\" for the arguments of one command.\n"
	      "Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad config.\n",
	      f);
}

static const char *program = "tern";

void cli_set_program(const char *argv0)
{
	program = argv0 != NULL && strchr(argv0, '/') != NULL ? argv0 : "tern";
}

const char *cli_program(void)
{
	return program;
}

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

int cli_run(const char *cfg_path, int argc, char **argv)
{
	if (argc < 1 || argv[0] == NULL) {
		fputs("tern: no command given\n", stderr);
		cli_usage(stderr);
		return CLI_USAGE;
	}
	const char *name = argv[0];
	if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
		/* `tern help COMMAND` is the same as `tern COMMAND --help`. */
		const struct cli_command *c = argc > 1 ? find_command(argv[1]) : NULL;
		if (argc > 1 && c == NULL && strcmp(argv[1], "serve") != 0) {
			fprintf(stderr, "tern: help: unknown command \"%s\"\n", argv[1]);
			cli_usage(stderr);
			return CLI_USAGE;
		}
		if (c != NULL)
			fputs(c->usage, stdout);
		else
			cli_usage(stdout);
		return CLI_OK;
	}
	const struct cli_command *c = find_command(name);
	if (c == NULL) {
		/* `serve` belongs to main.c; reaching here with it is a caller
		 * bug, reported like any other unknown command. */
		fprintf(stderr, "tern: unknown command \"%s\"\n", name);
		cli_usage(stderr);
		return CLI_USAGE;
	}
	return c->run(cfg_path, argc, argv);
}

__attribute__((format(printf, 2, 0))) static void vreport(const char *what, const char *fmt,
							    va_list ap)
{
	fputs("tern: ", stderr);
	if (what != NULL && what[0] != '\0')
		fprintf(stderr, "%s: ", what);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int cli_usage_error(const struct cli_command *cmd, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(what, fmt, ap);
	va_end(ap);
	if (cmd != NULL) {
		/* The synopsis only (up to the first blank line): the error
		 * stays visible above it. */
		const char *end = strstr(cmd->usage, "\n\n");
		size_t n = end != NULL ? (size_t)(end - cmd->usage) + 1 : strlen(cmd->usage);
		fputc('\n', stderr);
		fwrite(cmd->usage, 1, n, stderr);
		fprintf(stderr, "Run \"tern %s --help\" for details.\n", cmd->name);
	}
	return CLI_USAGE;
}

int cli_fail(const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(what, fmt, ap);
	va_end(ap);
	return CLI_FAIL;
}

int cli_parse_args(const struct cli_command *cmd, const char *what, int argc, char **argv,
		   int first, const struct cli_option *opts, size_t n_opts, char **pos,
		   int max_pos, int *n_pos)
{
	/* --help anywhere (before "--") wins over every other mistake, so
	 * `tern user add --bogus --help` still shows the usage. */
	for (int i = first; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return CLI_HELP;
	}
	for (size_t k = 0; k < n_opts; k++)
		*opts[k].value = NULL;
	int n = 0;
	bool options_done = false;
	for (int i = first; i < argc; i++) {
		const char *a = argv[i];
		if (!options_done && !strcmp(a, "--")) {
			options_done = true;
			continue;
		}
		if (!options_done && a[0] == '-' && a[1] != '\0') {
			const char *eq = strchr(a, '=');
			size_t nlen = eq != NULL ? (size_t)(eq - a) : strlen(a);
			const struct cli_option *o = NULL;
			for (size_t k = 0; k < n_opts; k++)
				if (strlen(opts[k].name) == nlen && !strncmp(opts[k].name, a, nlen))
					o = &opts[k];
			if (o == NULL)
				return cli_usage_error(cmd, what, "unknown option \"%.*s\"", (int)nlen,
						       a);
			if (*o->value != NULL)
				return cli_usage_error(cmd, what, "option %s given twice", o->name);
			if (eq != NULL) {
				*o->value = eq + 1;
			} else if (i + 1 < argc) {
				*o->value = argv[++i];
			} else {
				return cli_usage_error(cmd, what, "option %s needs a value",
						       o->name);
			}
			continue;
		}
		if (n >= max_pos)
			return cli_usage_error(cmd, what, "unexpected argument \"%s\"", a);
		pos[n++] = argv[i];
	}
	*n_pos = n;
	return 0;
}

struct config *cli_load_config(const char *cfg_path)
{
	const char *path = cfg_path;
	if (path == NULL)
		path = access(DEFAULT_CONFIG, F_OK) == 0 ? DEFAULT_CONFIG : SYSTEM_CONFIG;
	char err[1024];
	struct config *cfg = config_load(path, err, sizeof err);
	if (cfg == NULL) {
		if (cfg_path == NULL && access(path, F_OK) != 0)
			fprintf(stderr,
				"tern: %s (no ./" DEFAULT_CONFIG
				" either; give one with -c FILE or create one with `tern init DIR`)\n",
				err);
		else
			fprintf(stderr, "tern: %s\n", err);
	}
	return cfg;
}

struct store *cli_open_store(const char *cfg_path, struct config **cfg_out, int *rc)
{
	*cfg_out = NULL;
	struct config *cfg = cli_load_config(cfg_path);
	if (cfg == NULL) {
		*rc = CLI_USAGE;
		return NULL;
	}
	/* The store logs its changes at info level; a command reports its own
	 * result on stdout, so only warnings and errors go to stderr, unless
	 * the config asks for debugging. */
	log_set_level(!strcmp(cfg->log_level, "debug") ? LOG_DEBUG : LOG_WARN);
	/* As root, switch to the workers' user before touching the data
	 * folder, so that every file in it keeps one owner. */
	char err[512];
	if (cfg->user[0] != '\0' && privdrop_to_user(cfg->user, err, sizeof err) < 0) {
		cli_fail(cfg->path, "%s", err);
		*rc = CLI_USAGE; /* a bad `user` key, as main.c reports it */
		config_free(&cfg);
		return NULL;
	}
	/* store_open creates a missing data folder; for admin commands a
	 * missing one is a mistake (wrong -c, or data_dir moved), not a wish. */
	struct stat st;
	int st_rc = stat(cfg->data_dir, &st);
	if (st_rc < 0 || !S_ISDIR(st.st_mode)) {
		*rc = cli_fail(cfg->path, "data_dir %s: %s", cfg->data_dir,
			       st_rc < 0 ? strerror(errno) : "not a folder");
		config_free(&cfg);
		return NULL;
	}
	struct store *s = store_open(cfg->data_dir, err, sizeof err);
	if (s == NULL) {
		*rc = cli_fail(cfg->data_dir, "%s", err);
		config_free(&cfg);
		return NULL;
	}
	store_set_quota_default(s, cfg->quota_default_storage, cfg->quota_default_messages);
	store_set_fts_max_text(s, (size_t)cfg->search_index_max_text);
	*cfg_out = cfg;
	*rc = CLI_OK;
	return s;
}

bool cli_domain_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && label > 0))
			return false;
		label++;
	}
	return true;
}

void cli_put_sanitized(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\t')
			c = ' '; /* folding white space, kept by unfolding */
		else if (c < 0x20 || c == 0x7f)
			c = '?';
		fputc(c, f);
	}
}
