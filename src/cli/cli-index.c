/*
 * cli-index.c - `tern index status USER` and `tern index rebuild USER
 * [MAILBOX]`: the full-text index of an account (store-fts.c;
 * docs/admin.md "Full-text index").
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli-int.h"
#include "config.h"
#include "store.h"

extern const struct cli_command cli_index_command;

static void print_status(const char *address, const struct store_fts_status *st)
{
	printf("%s\n", address);
	printf("messages: %" PRIu64 " (%" PRIu64 " message file%s; copies share one)\n",
	       st->messages, st->files, st->files == 1 ? "" : "s");
	printf("indexed: %" PRIu64 "\n", st->complete);
	printf("indexed in part: %" PRIu64
	       " (text over search.index_max_text: a miss is checked in the file)\n",
	       st->partial);
	printf("not indexable: %" PRIu64 " (searched in the file; the log says why)\n", st->failed);
	printf("not indexed: %" PRIu64 " (searched in the file until indexed)\n",
	       st->unindexed);
}

static int index_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"status", "rebuild", NULL};
	const struct cli_command *cmd = &cli_index_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	bool rebuild = !strcmp(sub, "rebuild");
	char *pos[2];
	int n_pos;
	rc = cli_parse_sub(cmd, what, argc, argv, NULL, 0, pos, 1, rebuild ? 2 : 1, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char address[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	char err[512];
	struct store_account *a = NULL;
	struct store_mailbox mb;
	int64_t mailbox_id = 0;
	if (n_pos == 2) {
		if ((rc = cli_open_mailbox(what, s, address, pos[1], &a, &mb)) != CLI_OK)
			goto out;
		mailbox_id = mb.id;
	} else {
		int e = store_account_open(s, address, &a);
		if (e <= 0) {
			rc = e == 0 ? cli_fail(what, "no such user %s", address)
				    : cli_fail(what, "%s: cannot open the account", address);
			goto out;
		}
	}
	if (rebuild) {
		uint64_t done = 0;
		if (store_fts_rebuild(a, mailbox_id, &done, err, sizeof err) < 0) {
			rc = cli_fail(what, "%s: %s (%" PRIu64 " message files indexed before)",
				      address, err, done);
			goto out;
		}
		printf("%s: %" PRIu64 " message file%s indexed%s%s%s\n", address, done,
		       done == 1 ? "" : "s", n_pos == 2 ? " in \"" : "", n_pos == 2 ? pos[1] : "",
		       n_pos == 2 ? "\"" : "");
	}
	struct store_fts_status st;
	if (store_fts_status(a, &st, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s: %s", address, err);
		goto out;
	}
	print_status(address, &st);
	rc = cli_finish_output(what, CLI_OK);
out:
	store_close(&s);
	config_free(&cfg);
	return rc;
}

const struct cli_command cli_index_command = {
    "index",
    "show or rebuild a user's full-text search index",
    "usage: tern [-c FILE] index status USER\n"
    "       tern [-c FILE] index rebuild USER [MAILBOX]\n"
    "\n"
    "status counts USER's message files by the state of their full-text index\n"
    "entry: indexed, indexed in part (text beyond search.index_max_text),\n"
    "not indexable (the log says why), not indexed (not yet done by the\n"
    "background indexer, or stored before the index existed). SEARCH reads\n"
    "the files of all but the first kind.\n"
    "\n"
    "rebuild indexes again every message file of USER (or of USER's MAILBOX),\n"
    "in batches of one transaction each, while the server runs.\n",
    index_run,
};
