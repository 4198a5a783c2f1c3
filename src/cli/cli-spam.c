/*
 * cli-spam.c - `tern spam learn --spam|--ham USER [PATH]` and `tern spam
 * explain USER MAILBOX UID` (docs/spam.md "Training", "Explained").
 *
 * learn trains the user's classifier with every message of an mbox
 * (stdin, or the file PATH) or of a maildir folder (PATH with cur/ and
 * new/, or any folder of message files).  An mbox is read a line at a
 * time: a message is split at "From " lines after a blank line (or at the
 * start), mboxrd quoting (">From ") is undone, only its first
 * SPAM_TOKEN_SCAN_MAX bytes are kept for the tokenizer and the whole of
 * it is hashed (SHA-256), the hash being its training key, so learning
 * the same mbox twice changes nothing and learning it the other way
 * takes the first training back.
 *
 * explain scores a stored message now, as the content stage would with
 * what the user has trained so far, and says why, in plain words.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include "addr.h"
#include "buf.h"
#include "cli-int.h"
#include "config.h"
#include "smtp-spam.h"
#include "spam-bayes.h"
#include "spam-token.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

extern const struct cli_command cli_spam_command;

#define EXPLAIN_TOKENS 20 /* tokens explain lists */

struct learn {
	const char *what;
	struct store_account *acct;
	const struct config *cfg;
	enum store_spam_class cls;
	size_t seen, trained, failed;
	/* the message being read */
	struct buf msg;      /* its first SPAM_TOKEN_SCAN_MAX bytes */
	EVP_MD_CTX *md;
	bool open;
	/* spam score: score instead of training, with these thresholds */
	bool score;
	uint64_t junk, reject;
	const char *name;      /* the file being read, NULL in an mbox */
	size_t verdicts[3];    /* enum smtp_spam_verdict */
};

/* Scores the message read (spam score): one line "SCORE VERDICT NAME". */
static void score_msg(struct learn *l, const struct spam_tokens *t)
{
	struct store_spam_totals tot;
	struct spam_bayes_result b;
	int points10;
	char err[256], rules[200], score[32];
	const char *msg = l->msg.data ? l->msg.data : "";
	int rules10 = smtp_spam_rules(l->cfg, msg, l->msg.len, (int64_t)time(NULL), NULL, rules,
				      sizeof rules);
	int r = smtp_spam_account_score(l->acct, l->cfg, t, &tot, &b, &points10, err, sizeof err);
	spam_bayes_result_free(&b);
	l->seen++;
	if (r < 0) {
		fprintf(stderr, "tern: %s: message %zu: %s\n", l->what, l->seen, err);
		l->failed++;
		return;
	}
	enum smtp_spam_verdict v = smtp_spam_verdict_at(l->junk, l->reject, points10 + rules10);
	static const char *const names[] = {"inbox", "junk", "reject"};
	l->verdicts[v]++;
	smtp_spam_score_text(points10 + rules10, score, sizeof score);
	if (l->name != NULL)
		printf("%s\t%s\t%s\n", score, names[v], l->name);
	else
		printf("%s\t%s\tmessage %zu\n", score, names[v], l->seen);
}

static void msg_start(struct learn *l)
{
	buf_reset(&l->msg);
	EVP_DigestInit_ex(l->md, EVP_sha256(), NULL);
	l->open = true;
}

static void msg_add(struct learn *l, const char *p, size_t n)
{
	EVP_DigestUpdate(l->md, p, n);
	size_t room = SPAM_TOKEN_SCAN_MAX - l->msg.len;
	buf_append(&l->msg, p, n < room ? n : room);
}

/* Trains the message read so far. */
static void msg_end(struct learn *l)
{
	if (!l->open)
		return;
	l->open = false;
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned hl = 0;
	EVP_DigestFinal_ex(l->md, h, &hl);
	char key[STORE_SPAM_KEY_MAX] = "sha256:";
	for (unsigned i = 0; i < hl && 7 + 2 * i + 2 < sizeof key; i++)
		snprintf(key + 7 + 2 * i, 3, "%02x", h[i]);
	struct spam_tokens t;
	spam_token_message(&t, l->msg.data ? l->msg.data : "", l->msg.len);
	if (l->score) {
		score_msg(l, &t);
		spam_token_free(&t);
		return;
	}
	char err[256];
	int r = store_spam_train(l->acct, key, l->cls, (const char *const *)t.v, t.n,
				 (int64_t)time(NULL), l->cfg->spam_max_tokens, err, sizeof err);
	spam_token_free(&t);
	l->seen++;
	if (r < 0) {
		fprintf(stderr, "tern: %s: message %zu: %s\n", l->what, l->seen, err);
		l->failed++;
	} else if (r == 1) {
		l->trained++;
	}
}

/* An mbox from f. */
static void learn_mbox(struct learn *l, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool prev_blank = true;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (prev_blank && n >= 5 && memcmp(line, "From ", 5) == 0) {
			msg_end(l);
			msg_start(l);
			prev_blank = false;
			continue;
		}
		if (!l->open)
			msg_start(l); /* no "From " line first: one message */
		prev_blank = (n == 1 && line[0] == '\n') || (n == 2 && line[0] == '\r');
		const char *p = line;
		size_t k = 0;
		while (k < (size_t)n && p[k] == '>')
			k++;
		if (k > 0 && (size_t)n - k >= 5 && memcmp(p + k, "From ", 5) == 0) {
			p++; /* mboxrd: one '>' less */
			n--;
		}
		msg_add(l, p, (size_t)n);
	}
	free(line);
	msg_end(l);
}

/* Every regular file of folder dir. */
static int learn_dir(struct learn *l, const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		struct stat st;
		if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path ||
		    stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		FILE *f = fopen(path, "rb");
		if (f == NULL) {
			fprintf(stderr, "tern: %s: %s: %s\n", l->what, path, strerror(errno));
			l->failed++;
			continue;
		}
		msg_start(l);
		char chunk[65536];
		size_t got;
		while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
			msg_add(l, chunk, got);
		fclose(f);
		l->name = path;
		msg_end(l);
		l->name = NULL;
	}
	closedir(d);
	return 0;
}

/* PATH: a maildir folder (cur/ and new/), a folder of files, or an mbox. */
static int learn_path(struct learn *l, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return cli_fail(l->what, "%s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		char sub[4096];
		struct stat ss;
		bool maildir = false;
		static const char *const parts[] = {"cur", "new"};
		for (int i = 0; i < 2; i++)
			if (snprintf(sub, sizeof sub, "%s/%s", path, parts[i]) < (int)sizeof sub &&
			    stat(sub, &ss) == 0 && S_ISDIR(ss.st_mode)) {
				maildir = true;
				if (learn_dir(l, sub) < 0)
					return cli_fail(l->what, "%s: %s", sub, strerror(errno));
			}
		if (!maildir && learn_dir(l, path) < 0)
			return cli_fail(l->what, "%s: %s", path, strerror(errno));
		return CLI_OK;
	}
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return cli_fail(l->what, "%s: %s", path, strerror(errno));
	learn_mbox(l, f);
	fclose(f);
	return CLI_OK;
}

static int open_user(const char *what, struct store *s, const char *address,
		     struct store_account **acct)
{
	int e = store_account_open(s, address, acct);
	if (e <= 0)
		return e == 0 ? cli_fail(what, "no such user %s", address)
			      : cli_fail(what, "%s: cannot open the account", address);
	return CLI_OK;
}

/* Opens USER and reads the messages of pos[1] (or standard input) into l:
 * trained, or scored with USER's thresholds (l->score). */
static int read_input(struct learn *l, struct store *s, const char *address, int n_pos,
		      char **pos)
{
	if (l->md == NULL)
		return cli_fail(l->what, "out of memory");
	int rc = open_user(l->what, s, address, &l->acct);
	if (rc != CLI_OK)
		return rc;
	if (l->score) {
		struct smtp_spam_levels lv;
		smtp_spam_levels(s, l->cfg, store_account_id(l->acct), &lv);
		l->junk = lv.junk;
		l->reject = lv.reject;
	}
	if (n_pos == 2)
		return learn_path(l, pos[1]);
	learn_mbox(l, stdin);
	return CLI_OK;
}

static int spam_learn(const struct cli_command *cmd, const char *what, const char *cfg_path,
		      int argc, char **argv)
{
	bool is_spam, is_ham;
	int n1, n2;
	char **a1 = cli_take_flag(argc, argv, "--spam", &is_spam, &n1);
	char **a2 = cli_take_flag(n1, a1, "--ham", &is_ham, &n2);
	free(a1);
	char *pos[2];
	int n_pos;
	int rc = cli_parse_sub(cmd, what, n2, a2, NULL, 0, pos, 1, 2, &n_pos);
	free(a2);
	if (rc != 0)
		return cli_parse_exit(rc);
	if (is_spam == is_ham)
		return cli_usage_error(cmd, what, "give one of --spam and --ham");
	char address[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	struct learn l = {.what = what,
			  .cfg = cfg,
			  .cls = is_spam ? STORE_SPAM_SPAM : STORE_SPAM_HAM,
			  .msg = BUF_INIT,
			  .md = EVP_MD_CTX_new()};
	rc = read_input(&l, s, address, n_pos, pos);
	struct store_spam_totals tot;
	char err[256];
	if (rc == CLI_OK && store_spam_totals(l.acct, &tot, err, sizeof err) < 0)
		rc = cli_fail(what, "%s", err);
	if (rc == CLI_OK) {
		printf("%s: %zu message%s read, %zu trained as %s, %zu already so%s\n", address,
		       l.seen, l.seen == 1 ? "" : "s", l.trained, is_spam ? "spam" : "ham",
		       l.seen - l.trained - l.failed, l.failed ? ", some failed (see above)" : "");
		printf("%s has now trained %" PRIu64 " spam and %" PRIu64 " ham messages (%" PRIu64
		       " tokens)\n",
		       address, tot.spam, tot.ham, tot.tokens);
		rc = cli_finish_output(what, l.failed ? CLI_FAIL : CLI_OK);
	}
	EVP_MD_CTX_free(l.md);
	buf_free(&l.msg);
	store_close(&s);
	config_free(&cfg);
	return rc;
}

/* spam score USER [MBOX|MAILDIR]: what each message would score for USER
 * now, without storing or training anything. */
static int spam_score(const struct cli_command *cmd, const char *what, const char *cfg_path,
		      int argc, char **argv)
{
	char *pos[2];
	int n_pos;
	int rc = cli_parse_sub(cmd, what, argc, argv, NULL, 0, pos, 1, 2, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char address[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	struct learn l = {.what = what, .cfg = cfg, .msg = BUF_INIT, .md = EVP_MD_CTX_new(),
			  .score = true};
	rc = read_input(&l, s, address, n_pos, pos);
	if (rc == CLI_OK) {
		printf("%s: %zu message%s scored: %zu inbox, %zu junk, %zu refused\n", address,
		       l.seen - l.failed, l.seen - l.failed == 1 ? "" : "s", l.verdicts[0],
		       l.verdicts[1], l.verdicts[2]);
		rc = cli_finish_output(what, l.failed ? CLI_FAIL : CLI_OK);
	}
	EVP_MD_CTX_free(l.md);
	buf_free(&l.msg);
	store_close(&s);
	config_free(&cfg);
	return rc;
}

static void explain(struct store *st, int64_t id, const char *address, const char *mailbox,
		    uint64_t uid, const struct config *cfg, const struct store_spam_totals *tot,
		    const struct spam_bayes_result *b, int points10, int rules10, const char *rules,
		    enum store_spam_class cls)
{
	char score[32], bayes[32], rpts[32];
	smtp_spam_score_text(points10 + rules10, score, sizeof score);
	smtp_spam_score_text(points10, bayes, sizeof bayes);
	smtp_spam_score_text(rules10, rpts, sizeof rpts);
	static const char *const verdicts[] = {"the INBOX", "the Junk folder",
					       "refused at the end of DATA"};
	printf("Message UID %" PRIu64 " in \"%s\" of %s\n", uid, mailbox, address);
	struct smtp_spam_levels lv;
	smtp_spam_levels(st, cfg, id, &lv);
	printf("Score now: %s, which means %s\n", score,
	       verdicts[smtp_spam_verdict_at(lv.junk, lv.reject, points10 + rules10)]);
	printf("Rules: %s points (%s; weights spam.rule_*)\n", rpts, rules);
	if (lv.junk_from[0] != '\0')
		printf("Thresholds: Junk from %" PRIu64 " (set for %s); ", lv.junk, lv.junk_from);
	else
		printf("Thresholds: Junk from spam.junk_score = %" PRIu64 "; ", lv.junk);
	if (lv.reject_from[0] != '\0' && lv.reject)
		printf("refused from %" PRIu64 " (set for %s)\n", lv.reject, lv.reject_from);
	else if (lv.reject_from[0] != '\0')
		printf("never refused (set for %s)\n", lv.reject_from);
	else if (lv.reject)
		printf("refused from spam.content_reject_score = %" PRIu64 "\n", lv.reject);
	else
		printf("never refused (spam.content_reject_score = 0)\n");
	printf("Training of %s: %" PRIu64 " spam and %" PRIu64 " ham messages, %" PRIu64
	       " tokens kept\n",
	       address, tot->spam, tot->ham, tot->tokens);
	printf("This message: %s\n", cls == STORE_SPAM_SPAM  ? "trained as spam"
				     : cls == STORE_SPAM_HAM ? "trained as ham"
							     : "not trained");
	if (tot->spam < cfg->spam_bayes_min_trained || tot->ham < cfg->spam_bayes_min_trained) {
		printf("Classifier: not used yet: it counts once %s has trained at least %" PRIu64
		       " spam and %" PRIu64 " ham messages (spam.bayes_min_trained)\n",
		       address, cfg->spam_bayes_min_trained, cfg->spam_bayes_min_trained);
		return;
	}
	printf("Classifier: spam probability %.4f from %zu telling token%s, worth %s of "
	       "spam.bayes_weight = %" PRIu64 " points\n",
	       b->prob, b->n_clues, b->n_clues == 1 ? "" : "s", bayes, cfg->spam_bayes_weight);
	if (b->n_clues == 0) {
		printf("No token of this message tells spam from ham yet.\n");
		return;
	}
	printf("Tokens that count most (probability that a message with it is spam; "
	       "trained spam and ham messages that had it):\n");
	for (size_t i = 0; i < b->n_clues && i < EXPLAIN_TOKENS; i++) {
		printf("  %.4f  %-40s  %" PRIu32 " spam, %" PRIu32 " ham\n", b->clues[i].prob,
		       b->clues[i].token, b->clues[i].spam, b->clues[i].ham);
	}
}

static int spam_explain(const struct cli_command *cmd, const char *what, const char *cfg_path,
			int argc, char **argv)
{
	char *pos[3];
	int n_pos;
	int rc = cli_parse_sub(cmd, what, argc, argv, NULL, 0, pos, 3, 3, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char address[256];
	uint64_t uid = 0;
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0 ||
	    (rc = cli_parse_uid(cmd, what, pos[2], &uid)) != 0)
		return rc;
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	struct store_account *acct = NULL;
	struct store_mailbox mb;
	struct store_message m;
	char err[256] = "", path[4096];
	struct spam_tokens t = {0};
	struct spam_bayes_result b = {0};
	if ((rc = cli_open_mailbox(what, s, address, pos[1], &acct, &mb)) != CLI_OK ||
	    (rc = cli_find_message(what, acct, &mb, address, uid, &m, path)) != CLI_OK)
		goto out;
	size_t len;
	char *msg = spam_token_read(path, &len);
	if (msg == NULL) {
		rc = cli_fail(what, "UID %" PRIu64 ": cannot read its message file", uid);
		goto out;
	}
	spam_token_message(&t, msg, len);
	char rules[200];
	int rules10 = smtp_spam_rules(cfg, msg, len, m.internaldate, NULL, rules, sizeof rules);
	free(msg);
	struct store_spam_totals tot;
	enum store_spam_class cls;
	int points10;
	if (smtp_spam_account_score(acct, cfg, &t, &tot, &b, &points10, err, sizeof err) < 0 ||
	    store_spam_trained(acct, m.file_id, &cls, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s: %s", address, err);
		goto out;
	}
	explain(s, store_account_id(acct), address, pos[1], uid, cfg, &tot, &b, points10, rules10,
		rules, cls);
	rc = cli_finish_output(what, CLI_OK);
out:
	spam_bayes_result_free(&b);
	spam_token_free(&t);
	store_close(&s);
	config_free(&cfg);
	return rc;
}

static int print_entry(void *ctx, const struct store_spamlist_entry *e)
{
	(void)ctx;
	char when[32] = "";
	time_t t = (time_t)(e->origin == STORE_SPAMLIST_SENT ? e->used : e->added);
	struct tm tm;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof when, "%Y-%m-%d", &tm);
	printf("%-5s  %-40s  %s %s\n", e->kind == STORE_SPAMLIST_BLOCK ? "block" : "allow",
	       e->pattern, e->origin == STORE_SPAMLIST_SENT ? "wrote to, last" : "added", when);
	return 0;
}

/* allow|block|unlist USER PATTERN, senders USER. */
static int spam_list(const struct cli_command *cmd, const char *what, const char *sub,
		     const char *cfg_path, int argc, char **argv)
{
	bool show = !strcmp(sub, "senders");
	char *pos[2];
	int n_pos;
	int rc = cli_parse_sub(cmd, what, argc, argv, NULL, 0, pos, show ? 1 : 2, show ? 1 : 2,
			       &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char address[256], pattern[STORE_SPAMLIST_PATTERN_MAX], err[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	if (!show && store_spamlist_pattern(pos[1], pattern, err, sizeof err) < 0)
		return cli_usage_error(cmd, what, "%s (give user@domain or @domain)", err);
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	struct store_account *acct = NULL;
	if ((rc = open_user(what, s, address, &acct)) != CLI_OK)
		goto out;
	if (show) {
		if (store_spamlist_each(acct, print_entry, NULL, err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", address, err);
		else
			rc = cli_finish_output(what, CLI_OK);
	} else if (!strcmp(sub, "unlist")) {
		int r = store_spamlist_remove(acct, pattern, err, sizeof err);
		if (r < 0)
			rc = cli_fail(what, "%s: %s", address, err);
		else if (r == 0)
			rc = cli_fail(what, "%s: %s is not on the sender lists", address, pattern);
		else
			printf("%s: %s removed from the sender lists\n", address, pattern);
	} else {
		bool block = !strcmp(sub, "block");
		if (store_spamlist_set(acct, pattern,
				       block ? STORE_SPAMLIST_BLOCK : STORE_SPAMLIST_ALLOW,
				       (int64_t)time(NULL), err, sizeof err) < 0)
			rc = cli_fail(what, "%s: %s", address, err);
		else
			printf("%s: %s %s\n", address, pattern,
			       block ? "blocked (its mail goes to Junk)"
				     : "allowed (its authenticated mail never goes to Junk)");
	}
out:
	store_close(&s);
	config_free(&cfg);
	return rc;
}

/* "7", "default" (-1) or, for the reject score, "never" (0). */
static int parse_level(const char *arg, bool reject, int64_t *out)
{
	if (!strcmp(arg, "default")) {
		*out = -1;
		return 0;
	}
	if (reject && !strcmp(arg, "never")) {
		*out = 0;
		return 0;
	}
	char *end;
	errno = 0;
	long long v = strtoll(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < 1 || v > 1000)
		return -1;
	*out = v;
	return 0;
}

/* One threshold for the printout: "5 (spam.junk_score)", "7 (set for D)". */
static void print_level(const char *what, uint64_t v, const char *from, const char *key)
{
	if (v == 0)
		printf("%s: never", what);
	else
		printf("%s: from %llu", what, (unsigned long long)v);
	if (from[0] != '\0')
		printf(" (set for %s)\n", from);
	else
		printf(" (%s)\n", key);
}

/* spam thresholds USER|DOMAIN [--junk N|default] [--reject N|never|default] */
static int spam_thresholds(const struct cli_command *cmd, const char *what, const char *cfg_path,
			   int argc, char **argv)
{
	const char *junk_opt = NULL, *reject_opt = NULL;
	const struct cli_option opts[] = {{"--junk", &junk_opt}, {"--reject", &reject_opt}};
	char *pos[1];
	int n_pos;
	int rc = cli_parse_sub(cmd, what, argc, argv, opts, 2, pos, 1, 1, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	bool is_user = strchr(pos[0], '@') != NULL;
	char name[256];
	if (is_user) {
		if ((rc = cli_check_address(cmd, what, pos[0], false, name)) != 0)
			return rc;
	} else if ((rc = cli_check_domain(cmd, what, pos[0], name, sizeof name)) != 0) {
		return rc;
	}
	int64_t junk = -2, reject = -2; /* -2: not given */
	if (junk_opt != NULL && parse_level(junk_opt, false, &junk) < 0)
		return cli_usage_error(cmd, what, "--junk: \"%s\" is not 1..1000 or default",
				       junk_opt);
	if (reject_opt != NULL && parse_level(reject_opt, true, &reject) < 0)
		return cli_usage_error(cmd, what,
				       "--reject: \"%s\" is not 1..1000, never or default",
				       reject_opt);
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	char err[256];
	struct store_spamlevel l;
	if (is_user) {
		struct store_account *acct = NULL;
		if ((rc = open_user(what, s, name, &acct)) != CLI_OK)
			goto out;
	} else if (store_domain_exists(s, name) != 1) {
		rc = cli_fail(what, "no such domain %s", name);
		goto out;
	}
	if (store_spamlevel_get(s, name, &l, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s", err);
		goto out;
	}
	if (junk != -2 || reject != -2) {
		if (junk != -2)
			l.junk = junk;
		if (reject != -2)
			l.reject = reject;
		if (l.junk >= 1 && l.reject >= 1 && l.reject < l.junk) {
			rc = cli_usage_error(cmd, what, "the reject score must not be below the junk score");
			goto out;
		}
		if (store_spamlevel_set(s, name, &l, err, sizeof err) < 0) {
			rc = cli_fail(what, "%s", err);
			goto out;
		}
	}
	/* what applies now */
	struct smtp_spam_levels lv;
	smtp_spam_levels_of(s, cfg, name, &lv);
	printf("%s\n", name);
	print_level("  junk", lv.junk, lv.junk_from, "spam.junk_score");
	print_level("  refused", lv.reject, lv.reject_from, "spam.content_reject_score");
	rc = cli_finish_output(what, CLI_OK);
out:
	store_close(&s);
	config_free(&cfg);
	return rc;
}

static int spam_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"learn",  "score",   "explain",    "allow", "block",
					   "unlist", "senders", "thresholds", NULL};
	const struct cli_command *cmd = &cli_spam_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	if (!strcmp(sub, "learn"))
		return spam_learn(cmd, what, cfg_path, argc, argv);
	if (!strcmp(sub, "explain"))
		return spam_explain(cmd, what, cfg_path, argc, argv);
	if (!strcmp(sub, "score"))
		return spam_score(cmd, what, cfg_path, argc, argv);
	if (!strcmp(sub, "thresholds"))
		return spam_thresholds(cmd, what, cfg_path, argc, argv);
	return spam_list(cmd, what, sub, cfg_path, argc, argv);
}

const struct cli_command cli_spam_command = {
    "spam",
    "train a user's spam filter, explain a message's score, list senders",
    "usage: tern [-c FILE] spam learn --spam|--ham USER [MBOX|MAILDIR]\n"
    "       tern [-c FILE] spam score USER [MBOX|MAILDIR]\n"
    "       tern [-c FILE] spam explain USER MAILBOX UID\n"
    "       tern [-c FILE] spam allow|block|unlist USER ADDRESS|@DOMAIN\n"
    "       tern [-c FILE] spam senders USER\n"
    "       tern [-c FILE] spam thresholds USER|DOMAIN [--junk N|default]\n"
    "                                   [--reject N|never|default]\n"
    "\n"
    "learn trains USER's spam classifier with every message of an mbox (standard\n"
    "input, or the file MBOX) or of a maildir folder (a folder with cur/ and new/,\n"
    "or any folder of message files) as spam or as ham.  A message already trained\n"
    "that way is left alone; one trained the other way is retrained.\n"
    "\n"
    "score prints what each message of an mbox or folder (read as learn reads\n"
    "them) would score for USER now, a line each: SCORE, inbox|junk|reject,\n"
    "the file; nothing is stored or trained.  The sender checks of port 25\n"
    "(SPF, DMARC, sender lists) are not made.\n"
    "\n"
    "explain scores the message UID of USER's MAILBOX with what USER has trained\n"
    "so far and says why: the score, the thresholds, the tokens that count most\n"
    "with their spam probabilities.  (The X-Spam-Status field of the message says\n"
    "what it scored when it arrived.)\n"
    "\n"
    "allow and block put a sender (an address, or @domain for a domain and its\n"
    "subdomains) on USER's lists: mail from an allowed sender never goes to Junk\n"
    "when its address is verified (From: by DMARC, the envelope sender by SPF);\n"
    "mail from a blocked sender always goes to Junk.  unlist removes an entry.\n"
    "senders shows both lists, with the addresses USER wrote to, which are\n"
    "allowed too (spam.allow_sent_recipients).\n"
    "\n"
    "thresholds sets the scores from which a user's (or a domain's users') mail\n"
    "goes to Junk and is refused (1..1000; never: not refused; default: the\n"
    "domain's, else spam.junk_score / spam.content_reject_score), and prints\n"
    "what applies.\n",
    spam_run,
};
