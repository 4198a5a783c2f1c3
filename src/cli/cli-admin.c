/*
 * cli-admin.c - `tern domain|user|alias|mail ...`: administration of a data
 * folder through the store API (src/store), never by touching its files.
 *
 * Each command checks its arguments first (exit 2, naming the argument),
 * then opens the store and checks what must exist or must not (exit 1 with
 * a plain message), and only then changes anything: check, then act.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "cli-int.h"
#include "config.h"
#include "fsutil.h"
#include "header.h"
#include "password.h"
#include "sasl.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

/* How much of a message file `mail list` reads to find From and Subject. */
#define MAIL_LIST_HEAD_MAX (64 * 1024)
/* Size of the "<command> <sub>" label of messages. */
/* Longest password accepted on stdin. */
#define PASSWORD_MAX 1024

/* ------------------------------------------------------------- helpers */

/* Looks up the sub-command (argv[1]) of a command group.  Returns 0 with
 * *sub set and what = "<command> <sub>" (for messages), or an exit code
 * (help printed, or a usage error). */
int cli_pick_sub(const struct cli_command *cmd, int argc, char **argv, const char *const *subs,
		    const char **sub, char what[WHAT_MAX])
{
	if (argc < 2)
		return cli_usage_error(cmd, cmd->name, "missing sub-command");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(cmd->usage, stdout);
		return CLI_HELP;
	}
	for (size_t i = 0; subs[i] != NULL; i++) {
		if (!strcmp(argv[1], subs[i])) {
			*sub = subs[i];
			snprintf(what, WHAT_MAX, "%s %s", cmd->name, *sub);
			return 0;
		}
	}
	return cli_usage_error(cmd, cmd->name, "unknown sub-command \"%s\"", argv[1]);
}

/* Parses the arguments after the sub-command and checks their count. */
int cli_parse_sub(const struct cli_command *cmd, const char *what, int argc, char **argv,
		     const struct cli_option *opts, size_t n_opts, char **pos, int min_pos,
		     int max_pos, int *n_pos)
{
	int rc = cli_parse_args(cmd, what, argc, argv, 2, opts, n_opts, pos, max_pos, n_pos);
	if (rc == CLI_HELP) {
		fputs(cmd->usage, stdout);
		return CLI_HELP;
	}
	if (rc != 0)
		return rc;
	if (*n_pos < min_pos)
		return cli_usage_error(cmd, what, "missing argument");
	return 0;
}

/* Takes a flag without a value (e.g. "--update") out of argv[2..argc)
 * before the usual parsing, which knows only options with values; "--"
 * ends the options.  Returns the remaining arguments (caller frees the
 * array, not the strings) with their count in *n_out. */
char **cli_take_flag(int argc, char **argv, const char *flag, bool *set, int *n_out)
{
	char **args = xcalloc((size_t)argc + 1, sizeof *args);
	int n = 0;
	bool dashdash = false;
	*set = false;
	for (int i = 0; i < argc; i++) {
		if (i >= 2 && !dashdash && !strcmp(argv[i], flag)) {
			*set = true;
			continue;
		}
		if (i >= 2 && !strcmp(argv[i], "--"))
			dashdash = true;
		args[n++] = argv[i];
	}
	*n_out = n;
	return args;
}

/* Maps the parse result to the exit code of the command. */
int cli_parse_exit(int rc)
{
	return rc == CLI_HELP ? CLI_OK : rc;
}

/* Checks a domain argument; on success copies it lower-cased into out. */
int cli_check_domain(const struct cli_command *cmd, const char *what, const char *arg,
			char *out, size_t outsz)
{
	size_t n = strlen(arg);
	if (!cli_domain_ok(arg) || n >= outsz)
		return cli_usage_error(cmd, what, "\"%s\" is not a valid domain name", arg);
	memcpy(out, arg, n + 1);
	strutil_lower(out, n);
	return 0;
}

/* Checks a mailbox argument (local@domain) and writes its canonical form
 * into out[256].  remote_ok is for alias targets: it allows an address
 * literal domain (user@[192.0.2.1]) and keeps the local part's case, which
 * only the remote server may interpret; our own addresses are lower-cased
 * as the store keeps them. */
int cli_check_address(const struct cli_command *cmd, const char *what, const char *arg,
			 bool remote_ok, char out[256])
{
	struct addr a;
	enum addr_error e = addr_parse_mailbox(arg, strlen(arg), true, &a);
	int n;
	if (e == ADDR_ERR_TOO_LONG)
		return cli_usage_error(cmd, what, "\"%s\" is too long for an address", arg);
	if (e != ADDR_OK || (a.domain_is_literal && !remote_ok) ||
	    (n = addr_format(&a, out, 256)) < 0)
		return cli_usage_error(cmd, what, "\"%s\" is not a valid address (local@domain)",
				       arg);
	if (!remote_ok)
		strutil_lower(out, (size_t)n);
	return 0;
}

/* 1 if the domain is ours; else prints why and returns 0 (or -1 on a
 * store error, also printed). */
int cli_require_domain(struct store *s, const char *what, const char *domain)
{
	int r = store_domain_exists(s, domain);
	if (r < 0) {
		cli_fail(what, "%s: cannot look up the domain in the store", domain);
		return -1;
	}
	if (r == 0)
		cli_fail(what, "domain %s is not one of ours (add it with `tern domain add %s`)",
			 domain, domain);
	return r;
}

/* 1 if the account exists (info filled); else prints why and returns 0 or
 * -1. */
static int require_account(struct store *s, const char *what, const char *address,
			   struct store_account_info *info)
{
	int r = store_account_get(s, address, info);
	if (r < 0)
		cli_fail(what, "%s: cannot look up the account in the store", address);
	else if (r == 0)
		cli_fail(what, "no such user %s", address);
	return r;
}

/* Turns terminal echo off, saving the old settings.  Returns true if it
 * did (and restore_echo must then be called). */
static bool echo_off(struct termios *saved)
{
	if (tcgetattr(STDIN_FILENO, saved) < 0)
		return false;
	struct termios t = *saved;
	t.c_lflag &= ~(tcflag_t)ECHO;
	return tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0;
}

static void restore_echo(bool was_off, const struct termios *saved)
{
	if (was_off)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, saved);
}

/* Reads one line from stdin into out without its line end.  Returns 0,
 * or -1 at end of input or if the line is too long. */
static int read_line(char *out, size_t outsz, bool *too_long)
{
	*too_long = false;
	if (fgets(out, (int)outsz, stdin) == NULL)
		return -1;
	size_t n = strlen(out);
	if (n > 0 && out[n - 1] == '\n') {
		out[--n] = '\0';
		if (n > 0 && out[n - 1] == '\r')
			out[--n] = '\0';
	} else if (!feof(stdin)) {
		*too_long = true;
		return -1;
	}
	return 0;
}

/* Gets the new password: --password, else one line from stdin (asked for
 * twice, without echo, on a terminal).  Returns 0 or an exit code. */
static int get_password(const struct cli_command *cmd, const char *what, const char *opt,
			const char *address, char *out, size_t outsz)
{
	if (opt != NULL) {
		size_t n = strlen(opt);
		if (n == 0)
			return cli_usage_error(cmd, what, "--password: empty password");
		if (n >= outsz)
			return cli_usage_error(cmd, what, "--password: longer than %zu bytes",
					       outsz - 1);
		memcpy(out, opt, n + 1);
		return 0;
	}
	bool tty = isatty(STDIN_FILENO) == 1;
	struct termios saved;
	bool silent = false;
	bool too_long;
	if (tty) {
		fprintf(stderr, "New password for %s: ", address);
		silent = echo_off(&saved);
	}
	int r = read_line(out, outsz, &too_long);
	if (tty && r == 0) {
		char again[PASSWORD_MAX];
		fputs("\nAgain: ", stderr);
		bool too_long2;
		int r2 = read_line(again, sizeof again, &too_long2);
		if (r2 < 0 || strcmp(out, again) != 0) {
			restore_echo(silent, &saved);
			fputc('\n', stderr);
			explicit_bzero(again, sizeof again);
			explicit_bzero(out, outsz);
			return cli_fail(what, "the two passwords differ");
		}
		explicit_bzero(again, sizeof again);
	}
	if (tty) {
		restore_echo(silent, &saved);
		fputc('\n', stderr);
	}
	if (r < 0 && too_long)
		return cli_usage_error(cmd, what, "password on stdin: longer than %zu bytes",
				       outsz - 2);
	if (r < 0 || out[0] == '\0')
		return cli_usage_error(cmd, what,
				       "empty password (give --password P, or one line on stdin)");
	return 0;
}

/* Hashes the password read by get_password, computes its SCRAM-SHA-256
 * keys (iterations from auth.scram_iterations) into scram[SASL_SCRAM_RECORD_MAX]
 * ("" for a password that cannot have them, with a note on stderr), and
 * wipes the clear text. */
static int hash_password(const char *what, char *pw, size_t pwsz, const struct config *cfg,
			 char *hash, size_t hashsz, char *scram)
{
	scram[0] = '\0';
	bool scram_ok = sasl_scram_password_ok(pw);
	int sr = scram_ok ? sasl_scram_make(pw, (unsigned)cfg->auth_scram_iterations, scram,
					    SASL_SCRAM_RECORD_MAX)
			  : 0;
	int r = password_hash(pw, hash, hashsz);
	explicit_bzero(pw, pwsz);
	if (r < 0)
		return cli_fail(what, "cannot hash the password (libcrypt failed)");
	if (sr < 0)
		return cli_fail(what, "cannot compute the SCRAM-SHA-256 keys");
	if (!scram_ok)
		fprintf(stderr,
			"tern: %s: note: the password is not printable ASCII, so it gets no "
			"SCRAM-SHA-256 keys (PLAIN and LOGIN work)\n",
			what);
	return 0;
}

/* Flushes stdout; a failed write (disk full, closed pipe) is a failure. */
int cli_finish_output(const char *what, int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_fail(what, "writing to stdout: %s", strerror(errno));
	return rc;
}

/* -------------------------------------------------------------- domain */

static int domain_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_admin_domain_command = {
	"domain",
	"add, list or remove the mail domains this server receives mail for",
	"usage: tern [-c FILE] domain add DOMAIN\n"
	"       tern [-c FILE] domain list\n"
	"       tern [-c FILE] domain dns DOMAIN\n"
	"       tern [-c FILE] domain check DOMAIN\n"
	"       tern [-c FILE] domain set DOMAIN [--dmarc-reject reject|junk|tag|default]\n"
	"                                        [--greylist on|off]\n"
	"       tern [-c FILE] domain quota DOMAIN [SIZE|none|default] [--messages N|none|default]\n"
	"       tern [-c FILE] domain remove DOMAIN\n"
	"\n"
	"  add      make DOMAIN one of ours (mail for it is delivered here),\n"
	"           with its two DKIM keys (Ed25519 and RSA-2048)\n"
	"  list     print our domains, one a line\n"
	"  dns      print the DNS records DOMAIN needs (MX, SPF, DKIM, DMARC,\n"
	"           client SRV records), ready for its zone file\n"
	"  check    ask DNS (through dns.resolver) whether those records are\n"
	"           there and right: MX, SPF for our addresses, the DKIM keys,\n"
	"           DMARC, reverse DNS; says what is missing or wrong in plain\n"
	"           words; exit 1 when something is\n"
	"  set      --dmarc-reject: what mail for DOMAIN that fails DMARC under\n"
	"           p=reject gets: reject (550 5.7.1), junk (the Junk folder), tag\n"
	"           (delivered, the result in the header); default:\n"
	"           mailauth.dmarc_reject.  --greylist on: mail for DOMAIN from\n"
	"           port 25 is greylisted (451 4.7.1 until the sender retries\n"
	"           after spam.greylist_delay; docs/spam.md); off (the default)\n"
	"  quota    print the limits DOMAIN's users have when they have none\n"
	"           of their own; with SIZE (500M, 2G) or --messages set them\n"
	"           (each user still has its own usage); none: unlimited,\n"
	"           default: quota.default_storage / quota.default_messages\n"
	"  remove   forget DOMAIN and its DKIM keys; it must have no users or\n"
	"           aliases left\n",
	domain_run,
};

static int print_domain(void *ctx, const char *domain)
{
	(void)ctx;
	puts(domain);
	return 0;
}

/* `domain set`: the DMARC action and/or greylisting of domain. */
static int domain_set(const struct cli_command *cmd, const char *what, const struct config *cfg,
		      struct store *s, const char *domain, const char *dmarc_reject,
		      const char *greylist)
{
	static const char *const ok[] = {"reject", "junk", "tag", "default"};
	bool valid = false;
	for (size_t i = 0; dmarc_reject && i < 4; i++)
		valid |= !strcmp(dmarc_reject, ok[i]);
	if (dmarc_reject == NULL && greylist == NULL)
		return cli_usage_error(cmd, what, "set needs --dmarc-reject or --greylist");
	if (dmarc_reject != NULL && !valid)
		return cli_usage_error(cmd, what, "--dmarc-reject is reject, junk, tag or default");
	if (greylist != NULL && strcmp(greylist, "on") != 0 && strcmp(greylist, "off") != 0)
		return cli_usage_error(cmd, what, "--greylist is on or off");
	int e = store_domain_exists(s, domain);
	if (e <= 0)
		return cli_fail(what, e == 0 ? "no such domain %s"
					     : "%s: cannot look up the domain in the store",
				domain);
	char err[512];
	if (dmarc_reject != NULL) {
		if (store_dmarc_action_set(s, domain,
					   strcmp(dmarc_reject, "default") ? dmarc_reject : NULL, err,
					   sizeof err) < 0)
			return cli_fail(what, "%s: %s", domain, err);
		if (!strcmp(dmarc_reject, "default"))
			printf("%s: mail failing DMARC under p=reject: as mailauth.dmarc_reject "
			       "says (%s)\n",
			       domain, cfg->mailauth_dmarc_reject);
		else
			printf("%s: mail failing DMARC under p=reject: %s\n", domain,
			       !strcmp(dmarc_reject, "reject") ? "refused (550 5.7.1)"
			       : !strcmp(dmarc_reject, "junk") ? "delivered to Junk"
							      : "delivered, the result in the header");
	}
	if (greylist != NULL) {
		bool on = !strcmp(greylist, "on");
		if (store_greylist_domain_set(s, domain, on, err, sizeof err) < 0)
			return cli_fail(what, "%s: %s", domain, err);
		if (on)
			printf("%s: mail from port 25 is greylisted (retries pass after %llus)\n",
			       domain, (unsigned long long)cfg->spam_greylist_delay);
		else
			printf("%s: mail is not greylisted\n", domain);
	}
	return 0;
}

static int domain_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"add",   "list",   "dns", "check",
					   "set", "quota", "remove", NULL};
	const struct cli_command *cmd = &cli_admin_domain_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	if (!strcmp(sub, "quota"))
		return cli_domain_quota(cmd, what, cfg_path, argc, argv);
	char *pos[1];
	int n_pos;
	bool is_list = !strcmp(sub, "list");
	const char *dmarc_reject = NULL, *greylist = NULL;
	const struct cli_option set_opts[] = {{"--dmarc-reject", &dmarc_reject},
					      {"--greylist", &greylist}};
	bool is_set = !strcmp(sub, "set");
	rc = cli_parse_sub(cmd, what, argc, argv, is_set ? set_opts : NULL, is_set ? 2 : 0, pos,
			   is_list ? 0 : 1, is_list ? 0 : 1, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char domain[256] = "";
	if (!is_list && (rc = cli_check_domain(cmd, what, pos[0], domain, sizeof domain)) != 0)
		return rc;

	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	if (is_list) {
		if (store_domain_list(s, print_domain, NULL, err, sizeof err) < 0)
			rc = cli_fail(what, "%s", err);
		rc = cli_finish_output(what, rc);
	} else if (!strcmp(sub, "add")) {
		int e = store_domain_exists(s, domain);
		if (e != 0)
			rc = cli_fail(what, e > 0 ? "domain %s already exists"
						  : "%s: cannot look up the domain in the store",
				      domain);
		else if (store_domain_add(s, domain, err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", domain, err);
		else {
			printf("domain %s added\n", domain);
			/* The domain stays even without keys: rotate makes them. */
			if (cli_dkim_make(s, what, domain) != 0)
				rc = cli_fail(what, "%s: added without DKIM keys; make them with "
						    "`tern dkim rotate %s`",
					      domain, domain);
		}
	} else if (is_set) {
		rc = domain_set(cmd, what, cfg, s, domain, dmarc_reject, greylist);
	} else if (!strcmp(sub, "dns") || !strcmp(sub, "check")) {
		int e = store_domain_exists(s, domain);
		if (e <= 0)
			rc = cli_fail(what, e == 0 ? "no such domain %s"
						   : "%s: cannot look up the domain in the store",
				      domain);
		else if (!strcmp(sub, "dns"))
			rc = cli_domain_dns(cfg, s, what, domain);
		else
			rc = cli_domain_check(cfg, s, what, domain);
	} else {
		int e = store_domain_exists(s, domain);
		if (e == 0)
			rc = cli_fail(what, "no such domain %s", domain);
		else if (e < 0)
			rc = cli_fail(what, "%s: cannot look up the domain in the store", domain);
		else if (store_domain_remove(s, domain, err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", domain, err);
		else
			printf("domain %s removed\n", domain);
	}
	store_close(&s);
	config_free(&cfg);
	return rc;
}

/* ---------------------------------------------------------------- user */

static int user_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_admin_user_command = {
	"user",
	"add, list or remove users (mail accounts), or set a password",
	"usage: tern [-c FILE] user add ADDRESS [--password P]\n"
	"       tern [-c FILE] user list [DOMAIN]\n"
	"       tern [-c FILE] user remove ADDRESS\n"
	"       tern [-c FILE] user passwd ADDRESS [--password P]\n"
	"       tern [-c FILE] user import-passwd FILE [--update]\n"
	"       tern [-c FILE] user app-password add ADDRESS NAME\n"
	"       tern [-c FILE] user app-password list ADDRESS\n"
	"       tern [-c FILE] user app-password revoke ADDRESS NAME\n"
	"       tern [-c FILE] user quota ADDRESS [SIZE|none|default] [--messages N|none|default]\n"
	"\n"
	"  add      create the account ADDRESS (its domain must be ours) with\n"
	"           the default mailboxes; the password is P, or one line read\n"
	"           from stdin (asked for twice on a terminal)\n"
	"  list     print the users, of DOMAIN or of all domains, one a line\n"
	"  remove   delete the account and all its mail\n"
	"  passwd   set a new password, from --password or stdin as for add\n"
	"  import-passwd\n"
	"           create the users of a Dovecot passwd-file (lines\n"
	"           \"user@domain:{SCHEME}hash:...\"; {YESCRYPT}, {SHA512-CRYPT},\n"
	"           {SHA256-CRYPT}, {BLF-CRYPT}, and {CRYPT} with $y$, $6$, $5$,\n"
	"           $2b$, $2y$ or $2a$); users that exist are\n"
	"           skipped, or get the file's hash with --update.  Nothing is\n"
	"           changed if any line is wrong.  Imported users have no\n"
	"           SCRAM-SHA-256 keys until their password is set again\n"
	"  app-password add\n"
	"           make a new password for one device, called NAME (\"phone\"):\n"
	"           printed once, stored only as a hash; it logs in on every\n"
	"           protocol as the main password does (PLAIN, LOGIN, IMAP\n"
	"           LOGIN, POP3 USER/PASS; not SCRAM).  At most 20 per user\n"
	"  app-password list\n"
	"           NAME, id (its first group, not secret), created, last used\n"
	"  app-password revoke\n"
	"           delete it: the next login with it fails (sessions already\n"
	"           logged in with it stay until they end)\n"
	"  quota    print the storage and messages the user has and may have;\n"
	"           with SIZE (bytes, or with K, M, G: 500M, 2G) set the user's\n"
	"           own storage limit, none: unlimited, default: the server's\n"
	"           quota.default_storage again; --messages likewise for the\n"
	"           number of messages (quota.default_messages)\n",
	user_run,
};

/* ------------------------------------------------------- import-passwd */

/* Longest line of a passwd-file, and most users one import takes. */
#define IMPORT_LINE_MAX 4096
#define IMPORT_MAX_USERS 1000000
/* Errors printed before the rest are only counted. */
#define IMPORT_MAX_ERRORS 20

struct import_row {
	char address[256];
	char hash[256];
	unsigned line;
	int action; /* 0 skip, 1 add, 2 update */
};

/* A short, printable copy of a field from the file for messages. */
static const char *printable(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; in[i] != '\0' && o + 4 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];
		out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (in[0] != '\0' && o + 4 >= outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

struct import_errors {
	const char *what;
	const char *path;
	unsigned count;
};

static void import_error(struct import_errors *e, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void import_error(struct import_errors *e, unsigned line, const char *fmt, ...)
{
	if (e->count++ >= IMPORT_MAX_ERRORS)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "tern: %s: %s:%u: %s\n", e->what, e->path, line, msg);
}

static int row_by_address(const void *a, const void *b)
{
	const struct import_row *x = a, *y = b;
	int c = strcmp(x->address, y->address);
	return c != 0 ? c : (x->line > y->line) - (x->line < y->line);
}

/* Parses one passwd-file line into row.  Returns 1 for a user, 0 for a
 * blank or comment line, -1 after reporting an error. */
static int import_parse_line(char *line, unsigned lineno, struct import_row *row,
			     struct import_errors *e)
{
	char shown[80];
	char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	char *colon = strchr(line, ':');
	if (colon == NULL) {
		import_error(e, lineno, "expected \"user:password:...\"");
		return -1;
	}
	*colon = '\0';
	char *pass = colon + 1;
	char *end = strchr(pass, ':');
	if (end != NULL)
		*end = '\0';
	struct addr a;
	int n;
	if (addr_parse_mailbox(line, strlen(line), true, &a) != ADDR_OK || a.domain_is_literal ||
	    (n = addr_format(&a, row->address, sizeof row->address)) < 0) {
		import_error(e, lineno, "\"%s\" is not an address (user@domain)",
			     printable(line, shown, sizeof shown));
		return -1;
	}
	strutil_lower(row->address, (size_t)n);
	if (pass[0] == '\0') {
		import_error(e, lineno, "%s has no password hash", row->address);
		return -1;
	}
	if (password_import(pass, row->hash, sizeof row->hash) < 0) {
		import_error(e, lineno,
			     "%s: unsupported or malformed password hash \"%s\" (accepted: "
			     "{YESCRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT}, {CRYPT} with "
			     "$y$, $6$, $5$, $2b$, $2y$ or $2a$)",
			     row->address, printable(pass, shown, 24));
		return -1;
	}
	row->line = lineno;
	return 1;
}

/* Reads every line of f into *rows.  Errors are reported and counted in
 * e; the caller changes nothing if there are any. */
static void import_read(FILE *f, struct import_row **rows, size_t *n_rows,
			struct import_errors *e)
{
	char line[IMPORT_LINE_MAX];
	unsigned lineno = 0;
	size_t cap = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
		} else if (!feof(f)) {
			import_error(e, lineno, "line longer than %d bytes", IMPORT_LINE_MAX - 2);
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (memchr(line, '\0', len) != NULL || strlen(line) != len) {
			import_error(e, lineno, "NUL byte in the line");
			continue;
		}
		struct import_row row;
		memset(&row, 0, sizeof row);
		if (import_parse_line(line, lineno, &row, e) != 1)
			continue;
		if (*n_rows >= IMPORT_MAX_USERS) {
			import_error(e, lineno, "more than %d users in one file", IMPORT_MAX_USERS);
			break;
		}
		if (*n_rows == cap) {
			cap = cap ? cap * 2 : 64;
			*rows = xreallocarray(*rows, cap, sizeof **rows);
		}
		(*rows)[(*n_rows)++] = row;
	}
}

static int user_import(const struct cli_command *cmd, const char *what, const char *cfg_path,
		       int argc, char **argv)
{
	bool update;
	int n_args;
	char **args = cli_take_flag(argc, argv, "--update", &update, &n_args);
	char *pos[1];
	int n_pos;
	int rc = cli_parse_sub(cmd, what, n_args, args, NULL, 0, pos, 1, 1, &n_pos);
	free(args);
	if (rc != 0)
		return cli_parse_exit(rc);
	const char *path = pos[0];

	FILE *f = fopen(path, "r");
	if (f == NULL)
		return cli_fail(what, "%s: %s", path, strerror(errno));
	struct import_errors e = {what, path, 0};
	struct import_row *rows = NULL;
	size_t n_rows = 0;
	import_read(f, &rows, &n_rows, &e);
	bool read_error = ferror(f) != 0;
	fclose(f);
	if (read_error) {
		free(rows);
		return cli_fail(what, "%s: read error", path);
	}

	/* The same user twice is a mistake in the file, not a question of
	 * which line wins. */
	if (n_rows > 1) {
		struct import_row *sorted = xreallocarray(NULL, n_rows, sizeof *sorted);
		memcpy(sorted, rows, n_rows * sizeof *rows);
		qsort(sorted, n_rows, sizeof *sorted, row_by_address);
		for (size_t i = 1; i < n_rows; i++)
			if (!strcmp(sorted[i].address, sorted[i - 1].address))
				import_error(&e, sorted[i].line, "%s already appears on line %u",
					     sorted[i].address, sorted[i - 1].line);
		free(sorted);
	}

	struct config *cfg = NULL;
	struct store *s = NULL;
	if (e.count == 0) {
		s = cli_open_store(cfg_path, &cfg, &rc);
		if (s == NULL) {
			free(rows);
			return rc;
		}
		/* Check everything before changing anything. */
		for (size_t i = 0; i < n_rows; i++) {
			struct store_account_info info;
			const char *dom = addr_domain_of(rows[i].address);
			int d = store_domain_exists(s, dom);
			int r = d == 1 ? store_account_get(s, rows[i].address, &info) : 0;
			if (d < 0 || r < 0)
				import_error(&e, rows[i].line, "%s: cannot look it up in the store",
					     rows[i].address);
			else if (d == 0)
				import_error(&e, rows[i].line,
					     "domain %s is not one of ours (add it with `tern domain "
					     "add %s`)",
					     dom, dom);
			else
				rows[i].action = r == 0 ? 1 : (update ? 2 : 0);
		}
	}
	if (e.count > 0) {
		if (e.count > IMPORT_MAX_ERRORS)
			fprintf(stderr, "tern: %s: %s: %u more errors not shown\n", what, path,
				e.count - IMPORT_MAX_ERRORS);
		rc = cli_fail(what, "%s: %u error%s, nothing imported", path, e.count,
			      e.count == 1 ? "" : "s");
		goto out;
	}

	unsigned added = 0, updated = 0, skipped = 0;
	char err[512];
	rc = CLI_OK;
	for (size_t i = 0; i < n_rows && rc == CLI_OK; i++) {
		struct import_row *r = &rows[i];
		if (r->action == 1) {
			if (store_account_add(s, r->address, r->hash, NULL, err, sizeof err) < 0)
				rc = cli_fail(what, "%s:%u: %s: %s", path, r->line, r->address, err);
			else
				added++;
		} else if (r->action == 2) {
			if (store_account_set_password(s, r->address, r->hash, err, sizeof err) < 0)
				rc = cli_fail(what, "%s:%u: %s: %s", path, r->line, r->address, err);
			else
				updated++;
		} else {
			skipped++;
		}
	}
	printf("imported from %s: %u added, %u updated, %u skipped%s\n", path, added, updated,
	       skipped, skipped > 0 ? " (they exist; --update replaces their hashes)" : "");
	rc = cli_finish_output(what, rc);
out:
	free(rows);
	store_close(&s);
	config_free(&cfg);
	return rc;
}

static int print_account(void *ctx, const struct store_account_info *a)
{
	(void)ctx;
	puts(a->address);
	return 0;
}

static int user_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"add",           "list",         "remove", "passwd",
					   "import-passwd", "app-password", "quota",  NULL};
	const struct cli_command *cmd = &cli_admin_user_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	if (!strcmp(sub, "import-passwd"))
		return user_import(cmd, what, cfg_path, argc, argv);
	if (!strcmp(sub, "app-password"))
		return cli_apppass_run(cmd, cfg_path, argc, argv);
	if (!strcmp(sub, "quota"))
		return cli_user_quota(cmd, what, cfg_path, argc, argv);
	bool is_list = !strcmp(sub, "list");
	bool takes_pw = !strcmp(sub, "add") || !strcmp(sub, "passwd");
	const char *pw_opt = NULL;
	const struct cli_option opts[] = {{"--password", &pw_opt}};
	char *pos[1];
	int n_pos;
	rc = cli_parse_sub(cmd, what, argc, argv, opts, takes_pw ? 1 : 0, pos, is_list ? 0 : 1, 1,
		       &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);

	char address[256] = "";
	char domain[256] = "";
	if (is_list) {
		if (n_pos == 1 && (rc = cli_check_domain(cmd, what, pos[0], domain, sizeof domain)) != 0)
			return rc;
	} else if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0) {
		return rc;
	}

	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	struct store_account_info info;
	char pw[PASSWORD_MAX];
	char hash[256];
	char scram[SASL_SCRAM_RECORD_MAX];
	if (is_list) {
		if (domain[0] != '\0' && cli_require_domain(s, what, domain) != 1)
			rc = CLI_FAIL;
		else if (store_account_list(s, domain[0] != '\0' ? domain : NULL, print_account,
					    NULL, err, sizeof err) < 0)
			rc = cli_fail(what, "%s", err);
		rc = cli_finish_output(what, rc);
	} else if (!strcmp(sub, "add")) {
		int e;
		if (cli_require_domain(s, what, addr_domain_of(address)) != 1) {
			rc = CLI_FAIL;
		} else if ((e = store_account_get(s, address, &info)) != 0) {
			rc = cli_fail(what, e > 0 ? "user %s already exists"
						  : "%s: cannot look up the account in the store",
				      address);
		} else if ((rc = get_password(cmd, what, pw_opt, address, pw, sizeof pw)) != 0) {
			/* message printed */
		} else if ((rc = hash_password(what, pw, sizeof pw, cfg, hash, sizeof hash, scram)) !=
			   0) {
			/* message printed */
		} else if (store_account_add(s, address, hash, NULL, err, sizeof err) < 0) {
			rc = cli_fail(what, "%s: %s", address, err);
		} else if (scram[0] != '\0' &&
			   store_account_set_scram(s, address, scram, err, sizeof err) < 0) {
			rc = cli_fail(what, "%s added, but its SCRAM keys were not stored: %s",
				      address, err);
		} else {
			printf("user %s added\n", address);
		}
	} else if (!strcmp(sub, "passwd")) {
		if (require_account(s, what, address, &info) != 1)
			rc = CLI_FAIL;
		else if ((rc = get_password(cmd, what, pw_opt, address, pw, sizeof pw)) != 0) {
			/* message printed */
		} else if ((rc = hash_password(what, pw, sizeof pw, cfg, hash, sizeof hash, scram)) !=
			   0) {
			/* message printed */
		} else if (store_account_set_password(s, address, hash, err, sizeof err) < 0) {
			rc = cli_fail(what, "%s: %s", address, err);
		} else if (scram[0] != '\0' &&
			   store_account_set_scram(s, address, scram, err, sizeof err) < 0) {
			rc = cli_fail(what, "password of %s changed, but its SCRAM keys were not "
					    "stored: %s",
				      address, err);
		} else {
			printf("password of %s changed\n", address);
		}
	} else {
		if (require_account(s, what, address, &info) != 1)
			rc = CLI_FAIL;
		else if (store_account_remove(s, address, err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", address, err);
		else
			printf("user %s removed\n", address);
	}
	explicit_bzero(pw, sizeof pw);
	store_close(&s);
	config_free(&cfg);
	return rc;
}

/* --------------------------------------------------------------- alias */

static int alias_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_admin_alias_command = {
	"alias",
	"add, list or remove aliases (forwarding addresses, catch-alls)",
	"usage: tern [-c FILE] alias add [--force] ALIAS TARGET...\n"
	"       tern [-c FILE] alias list [DOMAIN]\n"
	"       tern [-c FILE] alias remove ALIAS [TARGET]\n"
	"\n"
	"  add      mail to ALIAS (local@domain, or @domain to catch every\n"
	"           address of the domain that has no user) goes to each TARGET,\n"
	"           local or remote; ALIAS's domain must be ours.  A TARGET\n"
	"           in our domains must be a user or an alias (or reach one by\n"
	"           plus-addressing) unless --force is given\n"
	"  list     print \"ALIAS<tab>TARGET\" lines, of DOMAIN or of all;\n"
	"           a local TARGET that reaches nobody gets \"<tab>(no such\n"
	"           user or alias)\"\n"
	"  remove   remove one TARGET of ALIAS, or all of them\n",
	alias_run,
};

/* One alias row, collected before the targets are checked (the store's
 * list callback must not call back into the store). */
struct alias_row {
	char alias[256];
	char target[256];
};

struct alias_rows {
	struct alias_row *v;
	size_t n, cap;
};

static int collect_alias(void *ctx, const char *alias, const char *target)
{
	struct alias_rows *r = ctx;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = xreallocarray(r->v, r->cap, sizeof *r->v);
	}
	snprintf(r->v[r->n].alias, sizeof r->v[r->n].alias, "%s", alias);
	snprintf(r->v[r->n].target, sizeof r->v[r->n].target, "%s", target);
	r->n++;
	return 0;
}

struct alias_find_ctx {
	const char *alias;
	const char *target; /* NULL: any */
	bool found;
};

static int find_alias(void *ctx, const char *alias, const char *target)
{
	struct alias_find_ctx *c = ctx;
	/* The store keeps addresses lower-cased except a remote target's local
	 * part; compare as it does, case-insensitively. */
	if (!strcasecmp(alias, c->alias) && (c->target == NULL || !strcasecmp(target, c->target)))
		c->found = true;
	return 0;
}

/* Whether a local alias target reaches a mailbox of its own: a user or
 * an alias of that name, the same after cutting a plus-address detail
 * (recipient_delimiter), or postmaster (which always works, RFC 5321
 * 4.5.1).  A catch-all does not count: an alias to a typo that lands in
 * the catch-all is what --force is for.  Returns 1 reaches, 0 dangling,
 * 2 not in our domains, -1 store error (printed). */
int cli_local_target_state(struct store *s, const char *what, const char *delim,
			      const char *target)
{
	const char *domain = addr_domain_of(target);
	int ours = store_domain_exists(s, domain);
	if (ours < 0) {
		cli_fail(what, "%s: cannot look up the domain in the store", domain);
		return -1;
	}
	if (ours == 0)
		return 2;
	size_t local_len = (size_t)(domain - target - 1);
	if (strutil_eq_ci(target, local_len, "postmaster"))
		return 1;
	char names[2][256];
	size_t n_names = 0;
	snprintf(names[n_names++], sizeof names[0], "%s", target);
	if (delim != NULL && delim[0] != '\0') {
		const char *cut = memchr(target, delim[0], local_len);
		if (cut != NULL && cut > target)
			snprintf(names[n_names++], sizeof names[0], "%.*s@%s", (int)(cut - target),
				 target, domain);
	}
	for (size_t i = 0; i < n_names; i++) {
		struct store_account_info info;
		int got = store_account_get(s, names[i], &info);
		if (got < 0) {
			cli_fail(what, "%s: cannot look up the user in the store", names[i]);
			return -1;
		}
		if (got == 1)
			return 1;
		char err[512];
		struct alias_find_ctx fc = {names[i], NULL, false};
		if (store_alias_list(s, domain, find_alias, &fc, err, sizeof err) < 0) {
			cli_fail(what, "%s", err);
			return -1;
		}
		if (fc.found)
			return 1;
	}
	return 0;
}

/* Checks an alias argument: local@domain or @domain (catch-all). */
static int check_alias(const struct cli_command *cmd, const char *what, const char *arg,
		       char out[256])
{
	if (arg[0] == '@') {
		int rc = cli_check_domain(cmd, what, arg + 1, out + 1, 255);
		if (rc != 0)
			return rc;
		out[0] = '@';
		return 0;
	}
	return cli_check_address(cmd, what, arg, false, out);
}

static int alias_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"add", "list", "remove", NULL};
	const struct cli_command *cmd = &cli_admin_alias_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	bool is_list = !strcmp(sub, "list"), is_add = !strcmp(sub, "add");
	bool force = false;
	int n_args = argc;
	char **args = argv;
	if (is_add)
		args = cli_take_flag(argc, argv, "--force", &force, &n_args);
	int max_pos = n_args > 2 ? n_args - 2 : 1;
	char **pos = xcalloc((size_t)max_pos, sizeof *pos);
	int n_pos;
	rc = cli_parse_sub(cmd, what, n_args, args, NULL, 0, pos, is_list ? 0 : is_add ? 2 : 1,
		       is_list ? 1 : is_add ? max_pos : 2, &n_pos);
	if (args != argv)
		free(args);
	if (rc != 0) {
		free(pos);
		return cli_parse_exit(rc);
	}

	char alias[256] = "", domain[256] = "";
	char(*targets)[256] = xcalloc((size_t)max_pos, sizeof *targets);
	int n_targets = 0;
	if (is_list) {
		if (n_pos == 1)
			rc = cli_check_domain(cmd, what, pos[0], domain, sizeof domain);
	} else {
		rc = check_alias(cmd, what, pos[0], alias);
		for (int i = 1; rc == 0 && i < n_pos; i++)
			rc = cli_check_address(cmd, what, pos[i], true, targets[n_targets++]);
	}
	free(pos);
	if (rc != 0) {
		free(targets);
		return rc;
	}

	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL) {
		free(targets);
		return rc;
	}
	char err[512];
	if (is_list) {
		struct alias_rows rows = {0};
		if (domain[0] != '\0' && cli_require_domain(s, what, domain) != 1)
			rc = CLI_FAIL;
		else if (store_alias_list(s, domain[0] != '\0' ? domain : NULL, collect_alias,
					  &rows, err, sizeof err) < 0)
			rc = cli_fail(what, "%s", err);
		for (size_t i = 0; rc == 0 && i < rows.n; i++) {
			int st = cli_local_target_state(s, what, cfg->recipient_delimiter,
						    rows.v[i].target);
			if (st < 0)
				rc = CLI_FAIL;
			else
				printf("%s\t%s%s\n", rows.v[i].alias, rows.v[i].target,
				       st == 0 ? "\t(no such user or alias)" : "");
		}
		free(rows.v);
		rc = cli_finish_output(what, rc);
	} else if (cli_require_domain(s, what, addr_domain_of(alias)) != 1) {
		rc = CLI_FAIL;
	} else if (is_add) {
		/* Every local target is checked before anything is added, so a
		 * refused command changes nothing. */
		for (int i = 0; i < n_targets && rc == 0 && !force; i++) {
			int st = cli_local_target_state(s, what, cfg->recipient_delimiter, targets[i]);
			if (st < 0) {
				rc = CLI_FAIL;
			} else if (st == 0) {
				cli_fail(what,
					 "%s is in our domain %s but is no user or alias, so mail "
					 "to %s would not arrive; add the user first, or give "
					 "--force",
					 targets[i], addr_domain_of(targets[i]), alias);
				rc = CLI_USAGE;
			}
		}
		for (int i = 0; i < n_targets && rc == 0; i++) {
			if (store_alias_add(s, alias, targets[i], err, sizeof err) < 0)
				rc = cli_fail(what, "%s -> %s: %s", alias, targets[i], err);
			else
				printf("alias %s -> %s added\n", alias, targets[i]);
		}
	} else {
		const char *target = n_targets > 0 ? targets[0] : NULL;
		struct alias_find_ctx fc = {alias, target, false};
		if (store_alias_list(s, addr_domain_of(alias), find_alias, &fc, err, sizeof err) < 0)
			rc = cli_fail(what, "%s", err);
		else if (!fc.found && target != NULL)
			rc = cli_fail(what, "alias %s has no target %s", alias, target);
		else if (!fc.found)
			rc = cli_fail(what, "no such alias %s", alias);
		else if (store_alias_remove(s, alias, target, err, sizeof err) < 0)
			rc = cli_fail(what, "%s%s%s: %s", alias, target ? " -> " : "",
				      target ? target : "", err);
		else if (target != NULL)
			printf("alias %s -> %s removed\n", alias, target);
		else
			printf("alias %s removed\n", alias);
	}
	free(targets);
	store_close(&s);
	config_free(&cfg);
	return rc;
}

/* ---------------------------------------------------------------- mail */

static int mail_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_admin_mail_command = {
	"mail",
	"look at stored messages (list a mailbox, print a message)",
	"usage: tern [-c FILE] mail list USER [MAILBOX]\n"
	"       tern [-c FILE] mail cat USER MAILBOX UID\n"
	"\n"
	"  list     one tab-separated line per message of MAILBOX (default\n"
	"           INBOX), after a header line:\n"
	"           UID DATE FROM SUBJECT SIZE FLAGS\n"
	"           DATE is the arrival time in UTC; FROM and SUBJECT are the\n"
	"           raw header values (\"-\" if missing), control characters\n"
	"           shown as '?'; FLAGS \"-\" if none\n"
	"  cat      write the stored message, byte for byte, to stdout\n",
	mail_run,
};

struct mail_list_ctx {
	struct store_account *acct;
	const char *what;
	char *head; /* MAIL_LIST_HEAD_MAX bytes */
	int rc;
};

/* Reads up to MAIL_LIST_HEAD_MAX bytes of a file into buf.  Returns the
 * count, or -1 with errno set. */
static ssize_t read_head(const char *path, char *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n < MAIL_LIST_HEAD_MAX) {
		ssize_t r = read(fd, buf + n, MAIL_LIST_HEAD_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	return (ssize_t)n;
}

/* Unfolds field name of h into out, or "-" if missing or empty. */
static void header_value(const struct header *h, const char *name, char *out, size_t outsz)
{
	const struct header_field *f = header_find(h, name);
	size_t n = 0;
	if (f != NULL)
		n = header_unfold(f->value, f->value_len, out, outsz);
	if (n == 0)
		snprintf(out, outsz, "-");
}

static int print_message(void *ctx, const struct store_message *m)
{
	struct mail_list_ctx *c = ctx;
	char from[1024] = "-", subject[1024] = "-";
	char path[4096];
	ssize_t n = -1;
	if (store_message_path(c->acct, m->file_id, path, sizeof path) < 0) {
		c->rc = cli_fail(c->what, "UID %" PRIu32 ": cannot find its message file", m->uid);
	} else if ((n = read_head(path, c->head)) < 0) {
		c->rc = cli_fail(c->what, "UID %" PRIu32 ": %s: %s", m->uid, path, strerror(errno));
	} else {
		/* A header longer than what we read: parse whole lines only, so a
		 * cut field does not turn into a syntax error. */
		size_t len = (size_t)n;
		if (len == MAIL_LIST_HEAD_MAX) {
			const char *nl = memrchr(c->head, '\n', len);
			len = nl != NULL ? (size_t)(nl - c->head) + 1 : 0;
		}
		struct header h;
		if (header_parse(c->head, len, &h) == HEADER_OK) {
			header_value(&h, "From", from, sizeof from);
			header_value(&h, "Subject", subject, sizeof subject);
			header_free(&h);
		}
	}

	char date[32] = "-";
	time_t t = (time_t)m->internaldate;
	struct tm tm;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);

	struct buf flags = BUF_INIT;
	static const struct {
		unsigned bit;
		const char *name;
	} sysflags[] = {
		{STORE_F_SEEN, "\\Seen"},       {STORE_F_ANSWERED, "\\Answered"},
		{STORE_F_FLAGGED, "\\Flagged"}, {STORE_F_DELETED, "\\Deleted"},
		{STORE_F_DRAFT, "\\Draft"},
	};
	for (size_t i = 0; i < sizeof sysflags / sizeof sysflags[0]; i++)
		if (m->flags & sysflags[i].bit)
			buf_printf(&flags, "%s%s", flags.len ? " " : "", sysflags[i].name);
	if (m->keywords[0] != '\0')
		buf_printf(&flags, "%s%s", flags.len ? " " : "", m->keywords);

	printf("%" PRIu32 "\t%s\t", m->uid, date);
	cli_put_sanitized(stdout, from);
	fputc('\t', stdout);
	cli_put_sanitized(stdout, subject);
	printf("\t%" PRIu64 "\t", m->size);
	cli_put_sanitized(stdout, flags.len ? buf_cstr(&flags) : "-");
	fputc('\n', stdout);
	buf_free(&flags);
	return 0;
}

struct mail_find_ctx {
	bool found;
	struct store_message msg;
};

static int find_message(void *ctx, const struct store_message *m)
{
	struct mail_find_ctx *c = ctx;
	c->found = true;
	c->msg = *m;
	return 0;
}

int cli_parse_uid(const struct cli_command *cmd, const char *what, const char *arg,
		  uint64_t *uid)
{
	*uid = 0;
	if (strutil_parse_u64(arg, strlen(arg), UINT32_MAX, uid) < 0 || *uid == 0)
		return cli_usage_error(cmd, what, "UID \"%s\" is not a number from 1 to %" PRIu32,
				       arg, UINT32_MAX);
	return CLI_OK;
}

int cli_open_mailbox(const char *what, struct store *s, const char *address, const char *mailbox,
		     struct store_account **acct, struct store_mailbox *mb)
{
	int e = store_account_open(s, address, acct);
	if (e <= 0)
		return e == 0 ? cli_fail(what, "no such user %s", address)
			      : cli_fail(what, "%s: cannot open the account", address);
	if ((e = store_mailbox_get(*acct, mailbox, mb)) <= 0)
		return e == 0 ? cli_fail(what, "user %s has no mailbox \"%s\"", address, mailbox)
			      : cli_fail(what, "%s: cannot read mailbox \"%s\"", address, mailbox);
	return CLI_OK;
}

int cli_find_message(const char *what, struct store_account *acct, const struct store_mailbox *mb,
		     const char *address, uint64_t uid, struct store_message *m, char path[4096])
{
	struct mail_find_ctx ctx = {false, {0}};
	char err[512];
	if (store_message_list(acct, mb->id, (uint32_t)uid, (uint32_t)uid, find_message, &ctx, err,
			       sizeof err) < 0)
		return cli_fail(what, "%s: %s", address, err);
	if (!ctx.found)
		return cli_fail(what, "no message with UID %" PRIu64 " in \"%s\" of %s", uid,
				mb->name, address);
	if (store_message_path(acct, ctx.msg.file_id, path, 4096) < 0)
		return cli_fail(what, "UID %" PRIu64 ": cannot find its message file", uid);
	*m = ctx.msg;
	return CLI_OK;
}

/* Copies the file at path to stdout, byte for byte. */
static int cat_file(const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_fail(what, "%s: %s", path, strerror(errno));
	if (fflush(stdout) != 0) {
		close(fd);
		return cli_fail(what, "writing to stdout: %s", strerror(errno));
	}
	char *chunk = xmalloc(65536);
	int rc = CLI_OK;
	for (;;) {
		ssize_t r = read(fd, chunk, 65536);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = cli_fail(what, "%s: %s", path, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (fsutil_write_all(STDOUT_FILENO, chunk, (size_t)r) < 0) {
			rc = cli_fail(what, "writing to stdout: %s", strerror(errno));
			break;
		}
	}
	free(chunk);
	close(fd);
	return rc;
}

static int mail_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"list", "cat", NULL};
	const struct cli_command *cmd = &cli_admin_mail_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	bool is_list = !strcmp(sub, "list");
	char *pos[3];
	int n_pos;
	rc = cli_parse_sub(cmd, what, argc, argv, NULL, 0, pos, is_list ? 1 : 3, is_list ? 2 : 3,
		       &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char address[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	const char *mailbox = n_pos >= 2 ? pos[1] : "INBOX";
	if (mailbox[0] == '\0')
		return cli_usage_error(cmd, what, "empty mailbox name");
	uint64_t uid = 0;
	if (!is_list && (rc = cli_parse_uid(cmd, what, pos[2], &uid)) != CLI_OK)
		return rc;

	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	struct store_account *acct = NULL;
	struct store_mailbox mb;
	rc = cli_open_mailbox(what, s, address, mailbox, &acct, &mb);
	if (rc != CLI_OK) {
		/* said */
	} else if (is_list) {
		struct mail_list_ctx ctx = {acct, what, xmalloc(MAIL_LIST_HEAD_MAX), CLI_OK};
		puts("UID\tDATE\tFROM\tSUBJECT\tSIZE\tFLAGS");
		if (store_message_list(acct, mb.id, 1, UINT32_MAX, print_message, &ctx, err,
				       sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", address, err);
		else
			rc = ctx.rc;
		free(ctx.head);
		rc = cli_finish_output(what, rc);
	} else {
		struct store_message m;
		char path[4096];
		rc = cli_find_message(what, acct, &mb, address, uid, &m, path);
		if (rc == CLI_OK)
			rc = cat_file(what, path);
	}
	store_close(&s);
	config_free(&cfg);
	return rc;
}
