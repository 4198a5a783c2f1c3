/*
 * cli-backup.c - `tern backup DIR` (a consistent copy of the data folder
 * of a running server, incremental when DIR holds an earlier one) and
 * `tern restore DIR` (into a new or empty data folder).  The work is the
 * store's (store-backup.c); this file makes the folders, switches to the
 * workers' user and reports.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-int.h"
#include "cli.h"
#include "config.h"
#include "fsutil.h"
#include "privdrop.h"
#include "store.h"

static int backup_run(const char *cfg_path, int argc, char **argv);
static int restore_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_backup_command = {
	"backup",
	"make a consistent copy of the data folder, while the server runs",
	"usage: tern [-c FILE] backup DIR\n"
	"\n"
	"Copies the data folder into DIR/data (and the config file to\n"
	"DIR/tern.conf) while the server runs: each database as one moment of\n"
	"it, and every message file it names.  When DIR holds an earlier backup,\n"
	"only new message files are taken and the ones no longer named removed.\n"
	"On the same file system message files are hard-linked (no space, but\n"
	"no protection against losing the disk): put DIR on another disk.\n"
	"Files in DIR belong to the workers' user; DIR is made (mode 0700) if\n"
	"missing.  Restore with `tern restore DIR`.\n",
	backup_run,
};

const struct cli_command cli_restore_command = {
	"restore",
	"put a backup made by `tern backup` back as the data folder",
	"usage: tern [-c FILE] restore DIR\n"
	"\n"
	"Copies the backup in DIR (made by `tern backup DIR`) into the data\n"
	"folder of the config (data_dir), which must be empty or not exist: stop\n"
	"the server and move the old folder away first.  Message UIDs, flags and\n"
	"the queue come back as they were in the backup.  DIR/tern.conf is the\n"
	"config the backup was made with, for reference; it is not used.\n",
	restore_run,
};

/* As root with `user` set: makes dir (0700) owned by that user, then
 * switches to it for good; else makes dir as we are.  0 or an exit code
 * (printed). */
static int make_dir_as_user(const struct config *cfg, const char *dir)
{
	char err[512];
	if (fsutil_mkdir_p(dir, 0700) < 0)
		return cli_fail(dir, "%s", strerror(errno));
	if (geteuid() == 0 && cfg->user[0] != '\0') {
		struct passwd *pw = getpwnam(cfg->user);
		if (pw == NULL)
			return cli_fail(cfg->path, "user %s: no such user", cfg->user);
		if (chown(dir, pw->pw_uid, pw->pw_gid) < 0)
			return cli_fail(dir, "chown: %s", strerror(errno));
	}
	if (cfg->user[0] != '\0' && privdrop_to_user(cfg->user, err, sizeof err) < 0) {
		cli_fail(cfg->path, "%s", err);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* Parses "COMMAND DIR"; returns 0 with *dir, CLI_HELP (usage printed),
 * or an exit code. */
static int one_dir(const struct cli_command *cmd, int argc, char **argv, char **dir)
{
	char *pos[1];
	int n_pos = 0;
	int rc = cli_parse_args(cmd, cmd->name, argc, argv, 1, NULL, 0, pos, 1, &n_pos);
	if (rc == CLI_HELP)
		fputs(cmd->usage, stdout);
	if (rc != 0)
		return rc;
	if (n_pos != 1)
		return cli_usage_error(cmd, cmd->name, "one folder expected");
	*dir = pos[0];
	return 0;
}

static void print_stats(const char *verb, const char *from, const char *to,
			const struct store_backup_stats *st)
{
	printf("%s %s into %s: %zu accounts, %zu message files, %zu queued messages\n", verb,
	       from, to, st->accounts, st->message_files, st->queue_files);
	printf("files: %zu new, %zu kept from the last backup, %zu removed; %zu hard links and "
	       "%zu copies made, %.1f MiB copied",
	       st->files_new, st->files_kept, st->files_removed, st->files_linked,
	       st->files_copied, (double)st->bytes_copied / (1024.0 * 1024.0));
	if (st->rounds > 0)
		printf("; %zu databases copied again (files went away meanwhile)", st->rounds);
	putchar('\n');
}

static int backup_run(const char *cfg_path, int argc, char **argv)
{
	char *dir;
	int rc = one_dir(&cli_backup_command, argc, argv, &dir);
	if (rc != 0)
		return cli_parse_exit(rc);
	struct config *cfg = cli_load_config(cfg_path);
	if (cfg == NULL)
		return CLI_USAGE;
	char data[PATH_MAX], conf[PATH_MAX];
	if (snprintf(data, sizeof data, "%s/data", dir) >= (int)sizeof data ||
	    snprintf(conf, sizeof conf, "%s/tern.conf", dir) >= (int)sizeof conf) {
		config_free(&cfg);
		return cli_fail(dir, "path too long");
	}
	rc = make_dir_as_user(cfg, dir);
	if (rc == CLI_OK && fsutil_mkdir_p(data, 0700) < 0)
		rc = cli_fail(data, "%s", strerror(errno));
	struct store_backup_stats st;
	char err[1024];
	if (rc == CLI_OK && store_backup(cfg->data_dir, data, &st, err, sizeof err) < 0)
		rc = cli_fail("backup", "%s", err);
	if (rc == CLI_OK) {
		size_t len;
		char *text = fsutil_read_file(cfg->path, 1u << 20, &len);
		if (text == NULL || fsutil_write_file_atomic(conf, text, len, 0600) < 0)
			rc = cli_fail(conf, "%s", strerror(errno));
		free(text);
	}
	if (rc == CLI_OK)
		print_stats("backup of", cfg->data_dir, data, &st);
	config_free(&cfg);
	return cli_finish_output("backup", rc);
}

static int restore_run(const char *cfg_path, int argc, char **argv)
{
	char *dir;
	int rc = one_dir(&cli_restore_command, argc, argv, &dir);
	if (rc != 0)
		return cli_parse_exit(rc);
	struct config *cfg = cli_load_config(cfg_path);
	if (cfg == NULL)
		return CLI_USAGE;
	char src[PATH_MAX];
	if (snprintf(src, sizeof src, "%s/data", dir) >= (int)sizeof src) {
		config_free(&cfg);
		return cli_fail(dir, "path too long");
	}
	rc = make_dir_as_user(cfg, cfg->data_dir);
	struct store_backup_stats st;
	char err[1024];
	if (rc == CLI_OK && store_restore(src, cfg->data_dir, &st, err, sizeof err) < 0)
		rc = cli_fail("restore", "%s", err);
	if (rc == CLI_OK) {
		/* the store opens it as the server will (schemas, folders) */
		struct store *s = store_open(cfg->data_dir, err, sizeof err);
		if (s == NULL)
			rc = cli_fail(cfg->data_dir, "restored, but it does not open: %s", err);
		store_close(&s);
	}
	if (rc == CLI_OK) {
		printf("restored %s into %s: %zu files linked, %zu copied, %.1f MiB\n", src,
		       cfg->data_dir, st.files_linked, st.files_copied,
		       (double)st.bytes_copied / (1024.0 * 1024.0));
	}
	config_free(&cfg);
	return cli_finish_output("restore", rc);
}
