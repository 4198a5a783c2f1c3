/*
 * cli-int.h - what the files of src/cli share among themselves (not used
 * outside src/cli): the command table entries, the argument parser, error
 * printing and argument checks.
 */
#ifndef TERN_CLI_INT_H
#define TERN_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config;
struct store;

/* Exit codes (design.md). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* One sub-command.  run gets argv[0] = the command name; it returns the
 * exit code.  usage is printed for --help (stdout) and bad usage (stderr). */
struct cli_command {
	const char *name;
	const char *summary;  /* one line for `tern --help` */
	const char *usage;    /* full usage text, ends in '\n' */
	int (*run)(const char *cfg_path, int argc, char **argv);
};

extern const struct cli_command cli_init_command;
extern const struct cli_command cli_admin_domain_command;
extern const struct cli_command cli_admin_user_command;
extern const struct cli_command cli_admin_alias_command;
extern const struct cli_command cli_group_command;
extern const struct cli_command cli_admin_mail_command;

/* An option taking a value ("--hostname H" or "--hostname=H").  *value is
 * set to the argv string (not copied); it stays NULL if not given. */
struct cli_option {
	const char *name;  /* with the dashes: "--hostname" */
	const char **value;
};

/* Splits argv[first..argc) into positional arguments (at most max_pos, into
 * pos) and options.  "--" ends the options.  Returns:
 *   0 and *n_pos set;
 *   CLI_HELP when --help or -h was given (the caller prints its usage to
 *     stdout and exits 0);
 *   CLI_USAGE after printing an error naming the argument at fault, then
 *     cmd's usage, to stderr. */
#define CLI_HELP 100
int cli_parse_args(const struct cli_command *cmd, const char *what, int argc, char **argv,
		   int first, const struct cli_option *opts, size_t n_opts, char **pos,
		   int max_pos, int *n_pos);

/* Prints "tern: WHAT: message" to stderr, then the synopsis of cmd's
 * usage (its text up to the first blank line), and returns CLI_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prints "tern: WHAT: message" to stderr and returns CLI_FAIL. */
int cli_fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Loads the config and opens its data folder for an admin command.  When
 * running as root with `user` set, first switches to that user for good
 * (privdrop_to_user) so files the store creates belong to the workers'
 * user.  Returns the store (close
 * with store_close; *cfg_out freed with config_free), or NULL after
 * printing why, with *rc set to the exit code. */
struct store *cli_open_store(const char *cfg_path, struct config **cfg_out, int *rc);

/* True if s is a plausible DNS name: labels of letters, digits and '-'
 * (not first or last), 1..63 characters each, 253 in all. */
bool cli_domain_ok(const char *s);

/* Writes s to f with a tab as a space and every other control character
 * (and DEL) as '?', so it fits in one field of tab-separated output. */
void cli_put_sanitized(FILE *f, const char *s);


/* Helpers of the command groups with sub-commands (cli-admin.c). */
#define WHAT_MAX 32 /* size of the "<command> <sub>" label of messages */
/* Looks up the sub-command (argv[1]) of a command group.  Returns 0 with
 * *sub set and what = "<command> <sub>", or an exit code (help printed,
 * or a usage error). */
int cli_pick_sub(const struct cli_command *cmd, int argc, char **argv, const char *const *subs,
		 const char **sub, char what[WHAT_MAX]);
/* Parses the arguments after the sub-command and checks their count. */
int cli_parse_sub(const struct cli_command *cmd, const char *what, int argc, char **argv,
		  const struct cli_option *opts, size_t n_opts, char **pos, int min_pos,
		  int max_pos, int *n_pos);
/* Maps a parse result to the exit code of the command. */
int cli_parse_exit(int rc);
/* Checks a domain argument; on success copies it lower-cased into out. */
int cli_check_domain(const struct cli_command *cmd, const char *what, const char *arg, char *out,
		     size_t outsz);
/* Flushes stdout; a failed write (disk full, closed pipe) is a failure. */
int cli_finish_output(const char *what, int rc);
/* Takes a flag without a value (e.g. "--force") out of argv[2..argc);
 * returns the remaining arguments (free the array, not the strings). */
char **cli_take_flag(int argc, char **argv, const char *flag, bool *set, int *n_out);
/* Checks a mailbox argument and writes its canonical form into out[256]
 * (remote_ok: an alias target, which may be an address literal and keeps
 * its local part's case). */
int cli_check_address(const struct cli_command *cmd, const char *what, const char *arg,
		      bool remote_ok, char out[256]);
/* Checks a UID argument (1..2^32-1) into *uid; CLI_OK or a usage error. */
int cli_parse_uid(const struct cli_command *cmd, const char *what, const char *arg,
		  uint64_t *uid);
/* Opens address's account and its mailbox; CLI_OK, or CLI_FAIL after
 * saying which is missing. */
struct store_account;
struct store_mailbox;
struct store_message;
int cli_open_mailbox(const char *what, struct store *s, const char *address, const char *mailbox,
		     struct store_account **acct, struct store_mailbox *mb);
/* The message uid of mailbox mb and its file's path; CLI_OK, or CLI_FAIL
 * after saying why not. */
int cli_find_message(const char *what, struct store_account *acct, const struct store_mailbox *mb,
		     const char *address, uint64_t uid, struct store_message *m, char path[4096]);
/* 1 if the domain is ours; else prints why and returns 0 (or -1). */
int cli_require_domain(struct store *s, const char *what, const char *domain);
/* Whether a local alias target reaches a mailbox: 1 reaches, 0 dangling,
 * 2 not in our domains, -1 store error (printed). */
int cli_local_target_state(struct store *s, const char *what, const char *delim,
			   const char *target);


/* cli-apppass.c: `user app-password add|list|revoke` (argv[1] is
 * "app-password"); cmd is `user`, for its usage text.  Returns the exit
 * code. */
int cli_apppass_run(const struct cli_command *cmd, const char *cfg_path, int argc, char **argv);

/* cli-dkim.c: makes a domain's DKIM keys and says so (0 or CLI_FAIL). */
int cli_dkim_make(struct store *s, const char *what, const char *domain);
/* cli-dkim.c: prints the DNS records domain needs (0 or CLI_FAIL). */
struct config;
int cli_domain_dns(const struct config *cfg, struct store *s, const char *what, const char *domain);
/* Its MTA-STS and TLS-RPT records (cli-tls.c). */
void cli_domain_dns_transport(const struct config *cfg, const char *domain);
/* cli-dkim.c: checks what DNS says of domain against what it needs
 * (exit 0: all in place, 1: problems, each said in plain words). */
int cli_domain_check(const struct config *cfg, struct store *s, const char *what,
		     const char *domain);
extern const struct cli_command cli_dkim_command;
/* cli-contacts.c: `tern contacts`. */
extern const struct cli_command cli_contacts_command;
/* cli-quota.c: `tern user quota` (argv as for the other user
 * sub-commands). */
int cli_user_quota(const struct cli_command *cmd, const char *what, const char *cfg_path,
		   int argc, char **argv);
/* cli-quota.c: `tern domain quota`. */
int cli_domain_quota(const struct cli_command *cmd, const char *what, const char *cfg_path,
		     int argc, char **argv);

#endif
