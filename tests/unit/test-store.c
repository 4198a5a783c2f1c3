/*
 * test-store.c - unit tests of the store (src/store/store.h).  Each test
 * works in a fresh data folder under /tmp and removes it at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store.h"
#include "test.h"

/* ------------------------------------------------------------- helpers */

struct fx {
	char dir[64];
	struct store *s;
	char err[256];
};

static void fx_open(struct fx *f)
{
	memset(f, 0, sizeof *f);
	log_set_level(LOG_WARN);
	snprintf(f->dir, sizeof f->dir, "/tmp/tern-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	f->s = store_open(f->dir, f->err, sizeof f->err);
	if (f->s == NULL) {
		fprintf(stderr, "store_open: %s\n", f->err);
		exit(2);
	}
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void fx_close(struct fx *f)
{
	store_close(&f->s);
	CHECK(f->s == NULL);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A domain example.test with accounts alice, bob, carol (ids in order). */
static void fx_basic(struct fx *f, int64_t ids[3])
{
	static const char *const who[] = {"alice@example.test", "bob@example.test",
					  "carol@example.test"};
	CHECK_INT(store_domain_add(f->s, "example.test", f->err, sizeof f->err), 0);
	for (int i = 0; i < 3; i++)
		CHECK_INT(store_account_add(f->s, who[i], "$6$x$y", &ids[i], f->err,
					    sizeof f->err),
			  0);
}

/* Writes a message file into DATA/spool/ (fsync'ed) and its path into
 * path[PATH_MAX]. */
static void write_msg(struct fx *f, const char *body, char *path)
{
	char id[25];
	fsutil_unique_id(id);
	snprintf(path, PATH_MAX, "%s/spool/%s", f->dir, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_INT(fsutil_write_all(fd, body, strlen(body)), 0);
	CHECK_INT(fsync(fd), 0);
	close(fd);
}

static sqlite3 *open_account_db(struct fx *f, int64_t id)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/accounts/%02d/%lld/account.db", f->dir, (int)(id % 100),
		 (long long)id);
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	return db;
}

static long long query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;
	CHECK_INT(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (st && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Collects messages of a mailbox. */
struct msgs {
	size_t n;
	struct store_message m[16];
};

static int collect_msg(void *ctx, const struct store_message *m)
{
	struct msgs *c = ctx;
	if (c->n < 16)
		c->m[c->n] = *m;
	c->n++;
	return 0;
}

static void list_msgs(struct store_account *a, int64_t mailbox_id, struct msgs *out)
{
	char err[256];
	memset(out, 0, sizeof *out);
	CHECK_INT(store_message_list(a, mailbox_id, 1, UINT32_MAX, collect_msg, out, err,
				     sizeof err),
		  0);
}

static int64_t mailbox_id(struct store_account *a, const char *name)
{
	struct store_mailbox mb;
	if (store_mailbox_get(a, name, &mb) != 1)
		return -1;
	return mb.id;
}

/* Collects strings from list callbacks, joined with ',' */
struct strs {
	char text[2048];
	size_t n;
};

static void strs_add(struct strs *c, const char *s)
{
	size_t len = strlen(c->text);
	snprintf(c->text + len, sizeof c->text - len, "%s%s", len ? "," : "", s);
	c->n++;
}

static int collect_domain(void *ctx, const char *d)
{
	strs_add(ctx, d);
	return 0;
}

static int collect_account(void *ctx, const struct store_account_info *a)
{
	strs_add(ctx, a->address);
	return 0;
}

static int collect_alias(void *ctx, const char *alias, const char *target)
{
	char both[600];
	snprintf(both, sizeof both, "%s>%s", alias, target);
	strs_add(ctx, both);
	return 0;
}

static int collect_mailbox(void *ctx, const struct store_mailbox *mb)
{
	strs_add(ctx, mb->name);
	return 0;
}

/* ------------------------------------------------------- open, domains */

TEST(store_open_layout)
{
	struct fx f;
	fx_open(&f);
	char path[PATH_MAX];
	static const char *const subs[] = {"server.db", "spool", "queue", "accounts"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", f.dir, subs[i]);
		CHECK(file_exists(path));
	}
	CHECK_STR(store_data_dir(f.s), f.dir);
	/* A second open of the same folder finds the schema there. */
	char err[256];
	struct store *s2 = store_open(f.dir, err, sizeof err);
	CHECK(s2 != NULL);
	store_close(&s2);
	store_close(&s2); /* NULL is fine */
	CHECK(store_open("", err, sizeof err) == NULL);
	CHECK(store_open("/proc/no/such/folder", err, sizeof err) == NULL);
	CHECK(strstr(err, "cannot create") != NULL);
	fx_close(&f);
}

TEST(store_domains)
{
	struct fx f;
	fx_open(&f);
	CHECK_INT(store_domain_add(f.s, "Example.TEST", f.err, sizeof f.err), 0);
	CHECK_INT(store_domain_add(f.s, "b.example", f.err, sizeof f.err), 0);
	CHECK_INT(store_domain_add(f.s, "example.test", f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "domain example.test already exists");
	static const char *const bad[] = {
		"",  "example.test.", ".example", "a..b", "-a.example", "a-.example",
		"a_b.example", "exa mple.test", "1.2.3.4",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(store_domain_add(f.s, bad[i], f.err, sizeof f.err), -1);
	CHECK_INT(store_domain_exists(f.s, "EXAMPLE.test"), 1);
	CHECK_INT(store_domain_exists(f.s, "other.test"), 0);
	CHECK_INT(store_domain_exists(f.s, "not a domain"), 0);

	struct strs c = {.text = ""};
	CHECK_INT(store_domain_list(f.s, collect_domain, &c, f.err, sizeof f.err), 0);
	CHECK_STR(c.text, "b.example,example.test");

	CHECK_INT(store_account_add(f.s, "x@example.test", NULL, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_domain_remove(f.s, "example.test", f.err, sizeof f.err), -1);
	CHECK(strstr(f.err, "still has accounts") != NULL);
	CHECK_INT(store_alias_add(f.s, "y@b.example", "x@example.test", f.err, sizeof f.err), 0);
	CHECK_INT(store_domain_remove(f.s, "b.example", f.err, sizeof f.err), -1);
	CHECK(strstr(f.err, "still has aliases") != NULL);
	CHECK_INT(store_alias_remove(f.s, "y@b.example", NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_domain_remove(f.s, "B.Example", f.err, sizeof f.err), 0);
	CHECK_INT(store_domain_remove(f.s, "b.example", f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "domain b.example does not exist");
	CHECK_INT(store_domain_exists(f.s, "b.example"), 0);
	fx_close(&f);
}

/* ------------------------------------------------------------ accounts */

TEST(store_accounts)
{
	struct fx f;
	fx_open(&f);
	int64_t id = 0;
	CHECK_INT(store_account_add(f.s, "alice@example.test", "", &id, f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "domain example.test does not exist");
	CHECK_INT(store_domain_add(f.s, "example.test", f.err, sizeof f.err), 0);
	CHECK_INT(store_domain_add(f.s, "other.test", f.err, sizeof f.err), 0);
	CHECK_INT(store_account_add(f.s, "Alice@Example.Test", "$6$a$b", &id, f.err,
				    sizeof f.err),
		  0);
	CHECK(id > 0);
	CHECK_INT(store_account_add(f.s, "alice@example.test", "", NULL, f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "account alice@example.test already exists");
	static const char *const bad[] = {
		"alice", "a@b@example.test", "@example.test", "alice@", ".a@example.test",
		"a..b@example.test", "a b@example.test",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.test",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(store_account_add(f.s, bad[i], "", NULL, f.err, sizeof f.err), -1);
	CHECK_INT(store_account_add(f.s, "b@example.test", "bad hash", NULL, f.err, sizeof f.err),
		  -1);
	int64_t id_bob, id_zed;
	CHECK_INT(store_account_add(f.s, "bob@example.test", NULL, &id_bob, f.err, sizeof f.err),
		  0);
	CHECK_INT(store_account_add(f.s, "zed@other.test", NULL, &id_zed, f.err, sizeof f.err),
		  0);

	struct store_account_info info;
	CHECK_INT(store_account_get(f.s, "ALICE@example.test", &info), 1);
	CHECK_INT(info.id, id);
	CHECK_STR(info.address, "alice@example.test");
	CHECK_STR(info.pwhash, "$6$a$b");
	CHECK(info.created > 0);
	CHECK_INT(store_account_get(f.s, "nobody@example.test", &info), 0);
	CHECK_INT(store_account_set_password(f.s, "alice@EXAMPLE.test", "$6$c$d", f.err,
					     sizeof f.err),
		  0);
	CHECK_INT(store_account_get(f.s, "alice@example.test", &info), 1);
	CHECK_STR(info.pwhash, "$6$c$d");
	CHECK_INT(store_account_set_password(f.s, "nobody@example.test", "", f.err, sizeof f.err),
		  -1);
	CHECK_STR(f.err, "account nobody@example.test does not exist");

	struct strs c = {.text = ""};
	CHECK_INT(store_account_list(f.s, NULL, collect_account, &c, f.err, sizeof f.err), 0);
	CHECK_STR(c.text, "alice@example.test,bob@example.test,zed@other.test");
	memset(&c, 0, sizeof c);
	CHECK_INT(store_account_list(f.s, "Example.test", collect_account, &c, f.err,
				     sizeof f.err),
		  0);
	CHECK_STR(c.text, "alice@example.test,bob@example.test");
	CHECK_INT(store_account_list(f.s, "nope.test", collect_account, &c, f.err, sizeof f.err),
		  -1);

	/* The folder exists, with account.db and msg/. */
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/accounts/%02d/%lld/msg", f.dir, (int)(id_bob % 100),
		 (long long)id_bob);
	CHECK(file_exists(path));
	CHECK_INT(store_account_remove(f.s, "BOB@example.test", f.err, sizeof f.err), 0);
	snprintf(path, sizeof path, "%s/accounts/%02d/%lld", f.dir, (int)(id_bob % 100),
		 (long long)id_bob);
	CHECK(!file_exists(path));
	CHECK_INT(store_account_remove(f.s, "bob@example.test", f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "account bob@example.test does not exist");
	/* Ids are never given out twice (they name folders). */
	int64_t id_bob2;
	CHECK_INT(store_account_add(f.s, "bob@example.test", NULL, &id_bob2, f.err, sizeof f.err),
		  0);
	CHECK(id_bob2 > id_zed);

	struct store_account *a;
	CHECK_INT(store_account_open(f.s, "alice@example.test", &a), 1);
	CHECK_INT(store_account_id(a), id);
	CHECK_INT(store_account_open(f.s, "nobody@example.test", &a), 0);
	CHECK_INT(store_account_open_id(f.s, 999999, &a), 0);
	fx_close(&f);
}

TEST(store_default_mailboxes)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	struct strs c = {.text = ""};
	CHECK_INT(store_mailbox_list(a, collect_mailbox, &c, f.err, sizeof f.err), 0);
	CHECK_STR(c.text, "Archive,Drafts,INBOX,Junk,Sent,Trash");
	static const struct {
		const char *name;
		unsigned su;
	} want[] = {{"INBOX", 0},
		    {"Sent", STORE_SU_SENT},
		    {"Drafts", STORE_SU_DRAFTS},
		    {"Trash", STORE_SU_TRASH},
		    {"Junk", STORE_SU_JUNK},
		    {"Archive", STORE_SU_ARCHIVE}};
	uint32_t seen[6];
	for (size_t i = 0; i < 6; i++) {
		struct store_mailbox mb;
		CHECK_INT(store_mailbox_get(a, want[i].name, &mb), 1);
		CHECK_STR(mb.name, want[i].name);
		CHECK_INT(mb.special_use, want[i].su);
		CHECK(mb.subscribed);
		CHECK_INT(mb.uidnext, 1);
		CHECK_INT(mb.messages, 0);
		CHECK(mb.uidvalidity > 0);
		CHECK(mb.highestmodseq > 0);
		seen[i] = mb.uidvalidity;
		for (size_t j = 0; j < i; j++)
			CHECK(seen[j] != mb.uidvalidity);
	}
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a, "inbox", &mb), 1);
	CHECK_STR(mb.name, "INBOX");
	CHECK_INT(store_mailbox_get(a, "sent", &mb), 0); /* only INBOX is case-insensitive */
	CHECK_INT(store_mailbox_get(a, "", &mb), 0);
	fx_close(&f);
}

/* ------------------------------------------------------------- aliases */

TEST(store_aliases)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	CHECK_INT(store_alias_add(f.s, "Sales@Example.test", "alice@example.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_alias_add(f.s, "sales@example.test", "Joe.Smith@Remote.TEST", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_alias_add(f.s, "sales@example.test", "ALICE@example.test", f.err,
				  sizeof f.err),
		  -1);
	CHECK_STR(f.err, "alias sales@example.test -> alice@example.test already exists");
	CHECK_INT(store_alias_add(f.s, "@example.test", "bob@example.test", f.err, sizeof f.err),
		  0);
	CHECK_INT(store_alias_add(f.s, "x@nope.test", "bob@example.test", f.err, sizeof f.err),
		  -1);
	CHECK_STR(f.err, "domain nope.test does not exist");
	CHECK_INT(store_alias_add(f.s, "x@example.test", "bob", f.err, sizeof f.err), -1);
	CHECK_INT(store_alias_add(f.s, "x@example.test", "@example.test", f.err, sizeof f.err),
		  -1);
	CHECK_INT(store_alias_add(f.s, "x@@example.test", "bob@example.test", f.err,
				  sizeof f.err),
		  -1);

	struct strs c = {.text = ""};
	CHECK_INT(store_alias_list(f.s, NULL, collect_alias, &c, f.err, sizeof f.err), 0);
	CHECK_STR(c.text, "@example.test>bob@example.test,"
			  "sales@example.test>Joe.Smith@remote.test,"
			  "sales@example.test>alice@example.test");
	CHECK_INT(store_alias_remove(f.s, "sales@example.test", "joe.smith@remote.test", f.err,
				     sizeof f.err),
		  -1); /* remote local parts keep their case */
	CHECK_INT(store_alias_remove(f.s, "sales@example.test", "Joe.Smith@remote.test", f.err,
				     sizeof f.err),
		  0);
	CHECK_INT(store_alias_remove(f.s, "SALES@example.test", NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_alias_remove(f.s, "sales@example.test", NULL, f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "alias sales@example.test does not exist");
	memset(&c, 0, sizeof c);
	CHECK_INT(store_alias_list(f.s, "example.test", collect_alias, &c, f.err, sizeof f.err),
		  0);
	CHECK_STR(c.text, "@example.test>bob@example.test");
	fx_close(&f);
}

/* -------------------------------------------------------------- groups */

TEST(store_groups)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_group g;
	CHECK_INT(store_group_get(f.s, "team@example.test", &g), 0);
	enum store_group_policy members = STORE_GROUP_MEMBERS;
	CHECK_INT(store_group_set(f.s, "Team@Example.test", &members, NULL, f.err, sizeof f.err),
		  0);
	CHECK_INT(store_alias_add(f.s, "team@example.test", "alice@example.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_alias_add(f.s, "team@example.test", "Far@Remote.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_group_get(f.s, "TEAM@example.test", &g), 1);
	CHECK_STR(g.address, "team@example.test");
	CHECK_STR(g.list_id, "team.example.test");
	CHECK_INT(g.policy, STORE_GROUP_MEMBERS);
	CHECK_INT(g.reply_to, STORE_GROUP_REPLY_NONE);
	enum store_group_reply rt = STORE_GROUP_REPLY_GROUP;
	CHECK_INT(store_group_set(f.s, "team@example.test", NULL, &rt, f.err, sizeof f.err), 0);
	CHECK_INT(store_group_get(f.s, "team@example.test", &g), 1);
	CHECK_INT(g.policy, STORE_GROUP_MEMBERS); /* kept */
	CHECK_INT(g.reply_to, STORE_GROUP_REPLY_GROUP);
	CHECK_INT(store_group_is_member(f.s, "team@example.test", "ALICE@example.test"), 1);
	CHECK_INT(store_group_is_member(f.s, "team@example.test", "far@remote.test"), 1);
	CHECK_INT(store_group_is_member(f.s, "team@example.test", "bob@example.test"), 0);
	/* the members are resolved as an alias's targets */
	struct store_targets *t = malloc(sizeof *t);
	CHECK(t != NULL);
	CHECK_INT(store_resolve(f.s, "team@example.test", "+", t), STORE_RCPT_OK);
	CHECK_INT(t->n_local, 1);
	CHECK_INT(t->n_remote, 1);
	CHECK_STR(t->remote[0], "Far@remote.test");
	free(t);
	/* not a group: a UTF-8 local part (no List-Id), another domain */
	CHECK_INT(store_group_set(f.s, "\xc3\xa9quipe@example.test", NULL, NULL, f.err,
				  sizeof f.err),
		  -1);
	CHECK_INT(store_group_set(f.s, "x@nope.test", NULL, NULL, f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "domain nope.test does not exist");
	/* the last member leaving removes the group */
	CHECK_INT(store_alias_remove(f.s, "team@example.test", "alice@example.test", f.err,
				     sizeof f.err),
		  0);
	CHECK_INT(store_group_get(f.s, "team@example.test", &g), 1);
	CHECK_INT(store_alias_remove(f.s, "team@example.test", "Far@remote.test", f.err,
				     sizeof f.err),
		  0);
	CHECK_INT(store_group_get(f.s, "team@example.test", &g), 0);
	fx_close(&f);
}

/* ------------------------------------------------------------- resolve */

static bool has_local(const struct store_targets *t, int64_t id)
{
	for (size_t i = 0; i < t->n_local; i++) {
		if (t->local[i] == id)
			return true;
	}
	return false;
}

/* How the walk reached account id (store_targets.local_via), or "-". */
static const char *via_of(const struct store_targets *t, int64_t id)
{
	for (size_t i = 0; i < t->n_local; i++) {
		if (t->local[i] == id)
			return t->local_via[i];
	}
	return "-";
}

TEST(store_resolve_basic)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_targets t;
	CHECK_INT(store_resolve(f.s, "alice@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_local, 1);
	CHECK_INT(t.local[0], ids[0]);
	CHECK_STR(t.local_via[0], ""); /* directly */
	CHECK_INT(t.n_remote, 0);
	CHECK_INT(store_resolve(f.s, "ALICE@EXAMPLE.TEST", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], ids[0]);
	CHECK_INT(store_resolve(f.s, "nobody@example.test", "+", &t), STORE_RCPT_NO_USER);
	CHECK_INT(t.n_local + t.n_remote, 0);
	CHECK_INT(store_resolve(f.s, "alice@elsewhere.test", "+", &t), STORE_RCPT_NOT_OURS);
	CHECK_INT(store_resolve(f.s, "alice@[192.0.2.1]", "+", &t), STORE_RCPT_NOT_OURS);

	/* Plus-addressing: the part before the first delimiter. */
	CHECK_INT(store_resolve(f.s, "Alice+News+x@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], ids[0]);
	CHECK_STR(t.local_via[0], "plus-addressing");
	CHECK_INT(store_resolve(f.s, "alice+news@example.test", "", &t), STORE_RCPT_NO_USER);
	CHECK_INT(store_resolve(f.s, "alice+news@example.test", NULL, &t), STORE_RCPT_NO_USER);
	CHECK_INT(store_resolve(f.s, "bob-lists@example.test", "+-", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], ids[1]);
	CHECK_INT(store_resolve(f.s, "+alice@example.test", "+", &t), STORE_RCPT_NO_USER);
	/* An alias with the delimiter in it wins over the base account. */
	CHECK_INT(store_alias_add(f.s, "alice+x@example.test", "bob@example.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "alice+x@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], ids[1]);
	CHECK_STR(t.local_via[0], "alias alice+x@example.test");
	fx_close(&f);
}

TEST(store_resolve_aliases)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_targets t;
	/* Alias to several, one remote, one through another alias, duplicates. */
	const char *rows[][2] = {
		{"team@example.test", "alice@example.test"},
		{"team@example.test", "Bob@Example.Test"},
		{"team@example.test", "Ext.User@Remote.Example"},
		{"team@example.test", "devs@example.test"},
		{"devs@example.test", "carol@example.test"},
		{"devs@example.test", "alice@example.test"},
		{"devs@example.test", "Ext.User@remote.example"},
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
		CHECK_INT(store_alias_add(f.s, rows[i][0], rows[i][1], f.err, sizeof f.err), 0);
	CHECK_INT(store_resolve(f.s, "TEAM@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_local, 3);
	CHECK(has_local(&t, ids[0]) && has_local(&t, ids[1]) && has_local(&t, ids[2]));
	/* Each alias on the way, outermost first; alice is reached first
	 * directly from team. */
	CHECK_STR(via_of(&t, ids[0]), "alias team@example.test");
	CHECK_STR(via_of(&t, ids[1]), "alias team@example.test");
	CHECK_STR(via_of(&t, ids[2]), "alias team@example.test, alias devs@example.test");
	CHECK_INT(t.n_remote, 1);
	CHECK_STR(t.remote[0], "Ext.User@remote.example");
	/* Plus-addressing on an alias. */
	CHECK_INT(store_resolve(f.s, "devs+ci@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_local, 2);
	CHECK_STR(via_of(&t, ids[2]), "plus-addressing, alias devs@example.test");

	/* Catch-all: for unknown names only. */
	CHECK_INT(store_alias_add(f.s, "@example.test", "carol@example.test", f.err, sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "whoever@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_local, 1);
	CHECK_INT(t.local[0], ids[2]);
	CHECK_STR(t.local_via[0], "the catch-all alias @example.test");
	CHECK_INT(store_resolve(f.s, "alice@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], ids[0]);

	/* "Keep a copy": alias to itself plus a remote address. */
	CHECK_INT(store_alias_add(f.s, "bob@example.test", "bob@example.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_alias_add(f.s, "bob@example.test", "bob@remote.example", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "bob@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_local, 1);
	CHECK_INT(t.local[0], ids[1]);
	CHECK_INT(t.n_remote, 1);
	CHECK_STR(t.remote[0], "bob@remote.example");

	/* Dangling target (no account, no catch-all match since it is an
	 * alias target that is ours): dropped, the others still delivered. */
	CHECK_INT(store_alias_remove(f.s, "@example.test", NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_alias_add(f.s, "half@example.test", "gone@example.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_alias_add(f.s, "half@example.test", "carol@example.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "half@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_local, 1);
	CHECK_INT(t.local[0], ids[2]);
	CHECK_INT(store_alias_add(f.s, "dead@example.test", "gone@example.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "dead@example.test", "+", &t), STORE_RCPT_NO_USER);
	fx_close(&f);
}

TEST(store_resolve_loops)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_targets t;
	CHECK_INT(store_alias_add(f.s, "a@example.test", "b@example.test", f.err, sizeof f.err),
		  0);
	CHECK_INT(store_alias_add(f.s, "b@example.test", "a@example.test", f.err, sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "a@example.test", "+", &t), STORE_RCPT_LOOP);
	CHECK_INT(t.n_local + t.n_remote, 0);
	CHECK_INT(store_alias_add(f.s, "self@example.test", "self@example.test", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "self@example.test", "+", &t), STORE_RCPT_LOOP);

	/* A chain of 10 levels works, 11 is too deep. */
	char alias[64], target[64];
	for (int i = 0; i < 11; i++) {
		snprintf(alias, sizeof alias, "c%d@example.test", i);
		snprintf(target, sizeof target, "c%d@example.test", i + 1);
		if (i == 10)
			snprintf(target, sizeof target, "alice@example.test");
		CHECK_INT(store_alias_add(f.s, alias, target, f.err, sizeof f.err), 0);
	}
	CHECK_INT(store_resolve(f.s, "c1@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], ids[0]);
	CHECK_INT(store_resolve(f.s, "c0@example.test", "+", &t), STORE_RCPT_LOOP);

	/* Too wide: more than STORE_MAX_TARGETS targets. */
	for (int i = 0; i <= STORE_MAX_TARGETS; i++) {
		snprintf(target, sizeof target, "u%d@remote.example", i);
		CHECK_INT(store_alias_add(f.s, "wide@example.test", target, f.err, sizeof f.err),
			  0);
	}
	CHECK_INT(store_resolve(f.s, "wide@example.test", "+", &t), STORE_RCPT_LOOP);
	CHECK_INT(store_alias_remove(f.s, "wide@example.test", "u0@remote.example", f.err,
				     sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "wide@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_remote, STORE_MAX_TARGETS);
	fx_close(&f);
}

TEST(store_resolve_postmaster)
{
	struct fx f;
	fx_open(&f);
	struct store_targets t;
	CHECK_INT(store_domain_add(f.s, "first.test", f.err, sizeof f.err), 0);
	CHECK_INT(store_domain_add(f.s, "example.test", f.err, sizeof f.err), 0);
	/* No account anywhere: nobody to give it to. */
	CHECK_INT(store_resolve(f.s, "postmaster@example.test", "+", &t), STORE_RCPT_NO_USER);
	CHECK_INT(store_resolve(f.s, "Postmaster", "+", &t), STORE_RCPT_NO_USER);
	int64_t oldest, ex1, ex2, pm;
	CHECK_INT(store_account_add(f.s, "root@first.test", NULL, &oldest, f.err, sizeof f.err),
		  0);
	/* 5d: the server's oldest account. */
	CHECK_INT(store_resolve(f.s, "POSTMASTER@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_local, 1);
	CHECK_INT(t.local[0], oldest);
	CHECK_STR(t.local_via[0], "postmaster: the server's first account");
	CHECK_INT(store_resolve(f.s, "postmaster", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], oldest);
	CHECK_STR(t.local_via[0], "postmaster: the server's first account");
	CHECK_INT(store_resolve(f.s, "webmaster@example.test", "+", &t), STORE_RCPT_NO_USER);
	/* 5c: the domain's oldest account. */
	CHECK_INT(store_account_add(f.s, "one@example.test", NULL, &ex1, f.err, sizeof f.err), 0);
	CHECK_INT(store_account_add(f.s, "two@example.test", NULL, &ex2, f.err, sizeof f.err), 0);
	CHECK_INT(store_resolve(f.s, "postmaster@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], ex1);
	CHECK_STR(t.local_via[0], "postmaster: the domain's first account");
	/* 5b: the catch-all. */
	CHECK_INT(store_alias_add(f.s, "@example.test", "two@example.test", f.err, sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "postmaster@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], ex2);
	CHECK_STR(t.local_via[0], "the catch-all alias @example.test");
	/* 5a: an account postmaster@, then an alias postmaster@. */
	CHECK_INT(store_account_add(f.s, "postmaster@example.test", NULL, &pm, f.err,
				    sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "PostMaster@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], pm);
	CHECK_STR(t.local_via[0], "");
	CHECK_INT(store_alias_add(f.s, "postmaster@example.test", "admin@remote.example", f.err,
				  sizeof f.err),
		  0);
	CHECK_INT(store_resolve(f.s, "postmaster@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.n_local, 0);
	CHECK_INT(t.n_remote, 1);
	CHECK_STR(t.remote[0], "admin@remote.example");
	fx_close(&f);
}

/* ------------------------------------------------------------ delivery */

TEST(store_deliver_stored_once)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	const char *body = "Subject: hi\r\n\r\nhello\r\n";
	char path[PATH_MAX];
	for (uint32_t round = 1; round <= 3; round++) {
		write_msg(&f, body, path);
		size_t done = 99;
		CHECK_INT(store_deliver(f.s, path, ids, 3, 1700000000, &done, f.err, sizeof f.err),
			  0);
		CHECK_INT(done, 3);
		struct stat spool;
		CHECK_INT(stat(path, &spool), 0);
		CHECK_INT(spool.st_nlink, 4); /* spool + three accounts */
		for (int i = 0; i < 3; i++) {
			struct store_account *a;
			CHECK_INT(store_account_open_id(f.s, ids[i], &a), 1);
			struct store_mailbox mb;
			CHECK_INT(store_mailbox_get(a, "INBOX", &mb), 1);
			CHECK_INT(mb.messages, round);
			CHECK_INT(mb.unseen, round);
			CHECK_INT(mb.size, round * strlen(body));
			CHECK_INT(mb.uidnext, round + 1);
			struct msgs ms;
			list_msgs(a, mb.id, &ms);
			CHECK_INT(ms.n, round);
			const struct store_message *m = &ms.m[round - 1];
			CHECK_INT(m->uid, round);
			CHECK_INT(m->size, strlen(body));
			CHECK_INT(m->internaldate, 1700000000);
			CHECK_INT(m->flags, 0);
			CHECK_STR(m->keywords, "");
			CHECK(m->modseq > 0 && m->modseq <= mb.highestmodseq);
			/* The file id is the spool file's name. */
			CHECK_STR(m->file_id, strrchr(path, '/') + 1);
			char mpath[PATH_MAX];
			CHECK_INT(store_message_path(a, m->file_id, mpath, sizeof mpath), 0);
			struct stat st;
			CHECK_INT(stat(mpath, &st), 0);
			CHECK(st.st_ino == spool.st_ino && st.st_dev == spool.st_dev);
		}
		unlink(path);
	}
	/* A spool file whose name is not an id gets a new one. */
	snprintf(path, sizeof path, "%s/spool/incoming.tmp", f.dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK_INT(fsutil_write_all(fd, body, strlen(body)), 0);
	close(fd);
	CHECK_INT(store_deliver(f.s, path, ids, 1, 1700000000, NULL, f.err, sizeof f.err), 0);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	struct msgs ms;
	list_msgs(a, mailbox_id(a, "INBOX"), &ms);
	CHECK_INT(ms.n, 4);
	CHECK_INT(strlen(ms.m[3].file_id), 24);
	CHECK_INT(ms.m[3].uid, 4);
	unlink(path);
	fx_close(&f);
}

TEST(store_deliver_errors)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	char path[PATH_MAX];
	write_msg(&f, "x\r\n", path);
	int64_t bad[3] = {ids[0], 999999, ids[1]};
	size_t done = 99;
	CHECK_INT(store_deliver(f.s, path, bad, 3, 0, &done, f.err, sizeof f.err), -1);
	CHECK_INT(done, 1);
	CHECK_STR(f.err, "account 999999 does not exist");
	CHECK_INT(store_deliver(f.s, "/nonexistent/file", ids, 1, 0, &done, f.err, sizeof f.err),
		  -1);
	CHECK_INT(done, 0);
	/* Nothing was linked into bob's folder. */
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[1], &a), 1);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 0);
	char mpath[PATH_MAX];
	CHECK_INT(store_message_path(a, strrchr(path, '/') + 1, mpath, sizeof mpath), 0);
	CHECK(!file_exists(mpath));
	CHECK_INT(store_message_path(a, "../../server.db", mpath, sizeof mpath), -1);
	fx_close(&f);
}

TEST(store_deliver_batch)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
	write_msg(&f, "one\r\n", p1);
	write_msg(&f, "two\r\n", p2);
	write_msg(&f, "three\r\n", p3);
	struct store_delivery d[] = {
		{p1, ids[0], 100, 7, 7, NULL, false, NULL, false}, {p2, ids[1], 200, 7, 7, NULL, false, NULL, false},     {p2, ids[0], 300, 7, 7, NULL, false, NULL, false},
		{p1, ids[1], 400, 7, 7, NULL, false, NULL, false}, {p3, ids[0], 500, 7, 7, NULL, false, NULL, false},     {"/no/such/file", ids[2], 0, 7, 7, NULL, false, NULL, false},
		{p3, 999999, 0, 7, 7, NULL, false, NULL, false},
	};
	size_t n = sizeof d / sizeof d[0];
	CHECK_INT(store_deliver_batch(f.s, d, n, f.err, sizeof f.err), -1);
	CHECK(strstr(f.err, "/no/such/file") != NULL);
	static const int want_status[] = {0, 0, 0, 0, 0, -1, -1};
	static const uint32_t want_uid[] = {1, 1, 2, 2, 3, 0, 0};
	for (size_t i = 0; i < n; i++) {
		CHECK_INT(d[i].status, want_status[i]);
		CHECK_INT(d[i].uid, want_uid[i]);
	}
	/* Stored once: p1 is in spool, alice and bob. */
	struct stat st;
	CHECK_INT(stat(p1, &st), 0);
	CHECK_INT(st.st_nlink, 3);
	CHECK_INT(stat(p3, &st), 0);
	CHECK_INT(st.st_nlink, 2);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	struct msgs ms;
	list_msgs(a, mailbox_id(a, "INBOX"), &ms);
	CHECK_INT(ms.n, 3);
	CHECK_STR(ms.m[0].file_id, strrchr(p1, '/') + 1);
	CHECK_STR(ms.m[1].file_id, strrchr(p2, '/') + 1);
	CHECK_INT(ms.m[1].internaldate, 300);
	CHECK(ms.m[2].modseq > ms.m[1].modseq);
	/* Carol got nothing. */
	CHECK_INT(store_account_open_id(f.s, ids[2], &a), 1);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 0);
	/* All good: 0. */
	struct store_delivery ok[] = {{p3, ids[2], 0, 7, 7, NULL, false, NULL, false}, {p3, ids[2], 0, 7, 7, NULL, false, NULL, false}};
	CHECK_INT(store_deliver_batch(f.s, ok, 2, f.err, sizeof f.err), 0);
	CHECK_INT(ok[0].uid, 1);
	CHECK_INT(ok[1].uid, 2);
	CHECK_INT(store_deliver_batch(f.s, NULL, 0, f.err, sizeof f.err), 0);
	unlink(p1);
	unlink(p2);
	unlink(p3);
	fx_close(&f);
}

TEST(store_queue_add)
{
	struct fx f;
	fx_open(&f);
	char path[PATH_MAX];
	write_msg(&f, "Subject: out\r\n\r\nbye\r\n", path);
	char rcpts[2][256] = {"a@remote.example", "B@other.example"};
	CHECK_INT(store_queue_add(f.s, path, "alice@example.test", rcpts, 2, f.err, sizeof f.err),
		  0);
	CHECK_INT(store_queue_add(f.s, path, "", rcpts, 0, f.err, sizeof f.err), -1);
	char qpath[PATH_MAX];
	snprintf(qpath, sizeof qpath, "%s/queue/%s", f.dir, strrchr(path, '/') + 1);
	struct stat a_st, b_st;
	CHECK_INT(stat(path, &a_st), 0);
	CHECK_INT(stat(qpath, &b_st), 0);
	CHECK(a_st.st_ino == b_st.st_ino);

	char dbpath[PATH_MAX];
	snprintf(dbpath, sizeof dbpath, "%s/server.db", f.dir);
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	CHECK_INT(query_int(db, "SELECT count(*) FROM queue_messages"), 1);
	CHECK_INT(query_int(db, "SELECT count(*) FROM queue_messages WHERE"
				" sender = 'alice@example.test' AND length(file) = 24"),
		  1);
	CHECK_INT(query_int(db, "SELECT count(*) FROM queue_rcpts WHERE state = 'deferred'"
				" AND attempts = 0 AND message_id = (SELECT id FROM queue_messages)"),
		  2);
	CHECK_INT(query_int(db, "SELECT count(*) FROM queue_rcpts WHERE rcpt = 'B@other.example'"),
		  1);
	sqlite3_close(db);
	fx_close(&f);
}

/* A batch: one bad item fails alone; the rest is queued in one
 * transaction; outcomes finish (and unlink) a message with nothing left. */
TEST(store_queue_add_batch)
{
	struct fx f;
	fx_open(&f);
	char p1[PATH_MAX], p2[PATH_MAX];
	write_msg(&f, "Subject: one\r\n\r\n1\r\n", p1);
	write_msg(&f, "Subject: two\r\n\r\n2\r\n", p2);
	struct store_queue_new_rcpt r1[] = {{"a@remote.example", 0, NULL, false, false},
					    {"b@remote.example", 0, NULL, false, false}};
	struct store_queue_new_rcpt r2[] = {{"c@other.example", 0, NULL, false, false}};
	struct store_queue_item items[] = {
	    {p1, "alice@example.test", 0, NULL, r1, 2, 99, 0, NULL, false},
	    {"/no/such/file", "alice@example.test", 0, NULL, r2, 1, 99, 0, NULL, false},
	    {p2, "", 0, "env-2", r2, 1, 99, 0, NULL, false},
	    {p2, "", 0, NULL, r2, 0, 99, 0, NULL, false}, /* no recipients */
	};
	CHECK_INT(store_queue_add_batch(f.s, items, 4, f.err, sizeof f.err), -1);
	CHECK(strstr(f.err, "/no/such/file") != NULL);
	CHECK_INT(items[0].status, 0);
	CHECK_INT(items[1].status, -1);
	CHECK_INT(items[2].status, 0);
	CHECK_INT(items[3].status, -1);
	CHECK_INT(store_queue_add_batch(f.s, NULL, 0, f.err, sizeof f.err), 0);

	char q1[PATH_MAX], q2[PATH_MAX];
	snprintf(q1, sizeof q1, "%s/queue/%s", f.dir, strrchr(p1, '/') + 1);
	snprintf(q2, sizeof q2, "%s/queue/%s", f.dir, strrchr(p2, '/') + 1);
	CHECK(file_exists(q1));
	CHECK(file_exists(q2));

	struct store_queue_rcpt got[8];
	size_t n = 0;
	CHECK_INT(store_queue_claim(f.s, (int64_t)time(NULL) + 1, 8, got, &n, f.err, sizeof f.err),
		  0);
	CHECK_INT(n, 3);
	/* a and c delivered, b deferred: message 1 stays, message 2 is done. */
	struct store_queue_outcome o[3];
	memset(o, 0, sizeof o);
	for (size_t i = 0; i < n; i++) {
		o[i].rcpt_id = got[i].id;
		bool defer = !strcmp(got[i].rcpt, "b@remote.example");
		o[i].state = defer ? "deferred" : "delivered";
		o[i].next_attempt = (int64_t)time(NULL) + 600;
		o[i].attempt = true;
		o[i].status = defer ? "4.0.0" : "2.0.0";
		o[i].reply = defer ? "451 later" : "250 ok";
		o[i].mx = "mx.example";
		o[i].ip = "192.0.2.1";
	}
	CHECK_INT(store_queue_update(f.s, o, n, f.err, sizeof f.err), 0);
	CHECK(file_exists(q1));
	CHECK(!file_exists(q2));

	char dbpath[PATH_MAX];
	snprintf(dbpath, sizeof dbpath, "%s/server.db", f.dir);
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	CHECK_INT(query_int(db, "SELECT count(*) FROM queue_messages"), 2);
	CHECK_INT(query_int(db, "SELECT count(*) FROM queue_messages WHERE done = 1"), 1);
	CHECK_INT(query_int(db, "SELECT count(*) FROM queue_dsn_env WHERE envid = 'env-2'"), 1);
	CHECK_INT(query_int(db, "SELECT count(*) FROM queue_rcpts WHERE state = 'deferred'"), 1);
	sqlite3_close(db);
	unlink(p1);
	unlink(p2);
	fx_close(&f);
}

/* ------------------------------------------------- messages and flags */

TEST(store_append_flags_modseq)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	char path[PATH_MAX];
	write_msg(&f, "Subject: draft\r\n\r\nbody\r\n", path);
	uint32_t uid = 0;
	CHECK_INT(store_message_append(a, "Drafts", path, STORE_F_DRAFT | STORE_F_SEEN,
				       "$Work  todo $work", 1600000000, &uid, f.err, sizeof f.err),
		  0);
	CHECK_INT(uid, 1);
	CHECK_INT(store_message_append(a, "Nope", path, 0, NULL, 0, &uid, f.err, sizeof f.err),
		  -1);
	CHECK_STR(f.err, "mailbox Nope does not exist");
	CHECK_INT(store_message_append(a, "Drafts", path, 0, "bad(kw", 0, &uid, f.err,
				       sizeof f.err),
		  -1);
	CHECK_INT(store_message_append(a, "Drafts", path, 1u << 9, NULL, 0, &uid, f.err,
				       sizeof f.err),
		  -1);
	CHECK_INT(store_message_append(a, "Drafts", path, 0, NULL, 0, &uid, f.err, sizeof f.err),
		  0);
	CHECK_INT(uid, 2);

	int64_t drafts = mailbox_id(a, "Drafts");
	struct msgs ms;
	list_msgs(a, drafts, &ms);
	CHECK_INT(ms.n, 2);
	CHECK_INT(ms.m[0].flags, STORE_F_DRAFT | STORE_F_SEEN);
	CHECK_STR(ms.m[0].keywords, "$Work todo");
	CHECK_INT(ms.m[0].internaldate, 1600000000);
	CHECK(ms.m[1].modseq > ms.m[0].modseq);
	/* Both rows share one file (same spool file). */
	CHECK_STR(ms.m[0].file_id, ms.m[1].file_id);

	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a, "Drafts", &mb), 1);
	CHECK_INT(mb.messages, 2);
	CHECK_INT(mb.unseen, 1);
	CHECK_INT(mb.deleted, 0);
	uint64_t hms = mb.highestmodseq;
	CHECK_INT(hms, ms.m[1].modseq);

	uint64_t modseq = 0, state0 = 0, state1 = 0;
	CHECK_INT(store_account_state(a, NULL, &state0), 0);
	/* Add \Deleted and a keyword. */
	CHECK_INT(store_message_store_flags(a, drafts, 1, 1, STORE_F_DELETED, "urgent $work",
					    &modseq, f.err, sizeof f.err),
		  0);
	CHECK(modseq > hms);
	CHECK_INT(store_account_state(a, NULL, &state1), 0);
	CHECK(state1 > state0);
	list_msgs(a, drafts, &ms);
	CHECK_INT(ms.m[0].flags, STORE_F_DRAFT | STORE_F_SEEN | STORE_F_DELETED);
	CHECK_STR(ms.m[0].keywords, "$Work todo urgent");
	CHECK_INT(ms.m[0].modseq, modseq);
	CHECK_INT(store_mailbox_get(a, "Drafts", &mb), 1);
	CHECK_INT(mb.deleted, 1);
	CHECK_INT(mb.highestmodseq, modseq);
	/* Nothing changes: same modseq. */
	uint64_t again = 0;
	CHECK_INT(store_message_store_flags(a, drafts, 1, 1, STORE_F_SEEN, "TODO", &again, f.err,
					    sizeof f.err),
		  0);
	CHECK_INT(again, modseq);
	/* Remove. */
	CHECK_INT(store_message_store_flags(a, drafts, 1, -1, STORE_F_SEEN | STORE_F_DELETED,
					    "$WORK", &again, f.err, sizeof f.err),
		  0);
	CHECK(again > modseq);
	list_msgs(a, drafts, &ms);
	CHECK_INT(ms.m[0].flags, STORE_F_DRAFT);
	CHECK_STR(ms.m[0].keywords, "todo urgent");
	/* Replace. */
	CHECK_INT(store_message_store_flags(a, drafts, 1, 0, STORE_F_FLAGGED, NULL, NULL, f.err,
					    sizeof f.err),
		  0);
	list_msgs(a, drafts, &ms);
	CHECK_INT(ms.m[0].flags, STORE_F_FLAGGED);
	CHECK_STR(ms.m[0].keywords, "");
	CHECK_INT(store_mailbox_get(a, "Drafts", &mb), 1);
	CHECK_INT(mb.unseen, 2);
	CHECK_INT(store_message_store_flags(a, drafts, 77, 1, STORE_F_SEEN, NULL, NULL, f.err,
					    sizeof f.err),
		  -1);
	CHECK_INT(store_message_store_flags(a, drafts, 1, 2, STORE_F_SEEN, NULL, NULL, f.err,
					    sizeof f.err),
		  -1);

	/* UID ranges. */
	memset(&ms, 0, sizeof ms);
	CHECK_INT(store_message_list(a, drafts, 2, 2, collect_msg, &ms, f.err, sizeof f.err), 0);
	CHECK_INT(ms.n, 1);
	CHECK_INT(ms.m[0].uid, 2);
	memset(&ms, 0, sizeof ms);
	CHECK_INT(store_message_list(a, drafts, 3, 1, collect_msg, &ms, f.err, sizeof f.err), 0);
	CHECK_INT(ms.n, 0);
	unlink(path);
	fx_close(&f);
}

/* Many messages: listing crosses its internal chunks, in UID order. */
TEST(store_message_list_many)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	char path[PATH_MAX];
	write_msg(&f, "x\r\n", path);
	for (int i = 0; i < 150; i++)
		CHECK_INT(store_deliver(f.s, path, ids, 1, 0, NULL, f.err, sizeof f.err), 0);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	struct msgs ms;
	list_msgs(a, a ? mailbox_id(a, "INBOX") : 0, &ms);
	CHECK_INT(ms.n, 150);
	memset(&ms, 0, sizeof ms);
	CHECK_INT(store_message_list(a, mailbox_id(a, "INBOX"), 60, 140, collect_msg, &ms, f.err,
				     sizeof f.err),
		  0);
	CHECK_INT(ms.n, 81);
	CHECK_INT(ms.m[0].uid, 60);
	unlink(path);
	fx_close(&f);
}

TEST(store_copy_move_expunge)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	char path[PATH_MAX];
	write_msg(&f, "Subject: one\r\n\r\n1\r\n", path);
	CHECK_INT(store_deliver(f.s, path, ids, 2, 0, NULL, f.err, sizeof f.err), 0);
	unlink(path); /* the spool copy goes; the accounts keep theirs */
	int64_t inbox = mailbox_id(a, "INBOX"), archive = mailbox_id(a, "Archive"),
		trash = mailbox_id(a, "Trash");
	CHECK_INT(store_message_store_flags(a, inbox, 1, 1, STORE_F_FLAGGED, "tag", NULL, f.err,
					    sizeof f.err),
		  0);
	uint32_t nu = 0;
	CHECK_INT(store_message_copy(a, inbox, 1, archive, false, &nu, f.err, sizeof f.err), 0);
	CHECK_INT(nu, 1);
	CHECK_INT(store_message_copy(a, inbox, 1, archive, false, &nu, f.err, sizeof f.err), 0);
	CHECK_INT(nu, 2);
	CHECK_INT(store_message_copy(a, inbox, 9, archive, false, &nu, f.err, sizeof f.err), -1);
	CHECK_INT(store_message_copy(a, inbox, 1, 424242, false, &nu, f.err, sizeof f.err), -1);
	struct msgs ms;
	list_msgs(a, archive, &ms);
	CHECK_INT(ms.n, 2);
	CHECK_INT(ms.m[0].flags, STORE_F_FLAGGED);
	CHECK_STR(ms.m[0].keywords, "tag");
	char file_id[25];
	memcpy(file_id, ms.m[0].file_id, sizeof file_id);
	char mpath[PATH_MAX];
	CHECK_INT(store_message_path(a, file_id, mpath, sizeof mpath), 0);
	struct stat st;
	CHECK_INT(stat(mpath, &st), 0);
	CHECK_INT(st.st_nlink, 2); /* alice and bob; copies share the link */

	/* Move INBOX 1 to Trash. */
	uint64_t hms_before;
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a, "INBOX", &mb), 1);
	hms_before = mb.highestmodseq;
	CHECK_INT(store_message_copy(a, inbox, 1, trash, true, &nu, f.err, sizeof f.err), 0);
	CHECK_INT(nu, 1);
	CHECK_INT(store_mailbox_get(a, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 0);
	CHECK(mb.highestmodseq > hms_before);
	list_msgs(a, trash, &ms);
	CHECK_INT(ms.n, 1);

	/* Expunge all three rows: the file goes with the last one only. */
	CHECK_INT(store_message_expunge(a, archive, 1, f.err, sizeof f.err), 0);
	CHECK(file_exists(mpath));
	CHECK_INT(store_message_expunge(a, archive, 1, f.err, sizeof f.err), -1);
	CHECK_INT(store_message_expunge(a, trash, 1, f.err, sizeof f.err), 0);
	CHECK(file_exists(mpath));
	CHECK_INT(store_message_expunge(a, archive, 2, f.err, sizeof f.err), 0);
	CHECK(!file_exists(mpath));
	/* Bob's link is untouched. */
	struct store_account *b;
	CHECK_INT(store_account_open_id(f.s, ids[1], &b), 1);
	char bpath[PATH_MAX];
	CHECK_INT(store_message_path(b, file_id, bpath, sizeof bpath), 0);
	CHECK_INT(stat(bpath, &st), 0);
	CHECK_INT(st.st_nlink, 1);

	/* Expunged uids are remembered with their modseq. */
	CHECK_INT(store_mailbox_get(a, "Archive", &mb), 1);
	sqlite3 *db = open_account_db(&f, ids[0]);
	char sql[256];
	snprintf(sql, sizeof sql,
		 "SELECT count(*) FROM expunged WHERE mailbox_id = %lld AND uid IN (1, 2)",
		 (long long)archive);
	CHECK_INT(query_int(db, sql), 2);
	snprintf(sql, sizeof sql, "SELECT max(modseq) FROM expunged WHERE mailbox_id = %lld",
		 (long long)archive);
	CHECK_INT(query_int(db, sql), (long long)mb.highestmodseq);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM expunged WHERE mailbox_id = %lld",
		 (long long)inbox);
	CHECK_INT(query_int(db, sql), 1); /* the move */
	sqlite3_close(db);
	fx_close(&f);
}

/* ----------------------------------------------------------- mailboxes */

TEST(store_mailbox_create_delete)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	CHECK_INT(store_mailbox_create(a, "Work/2024/Q1", 0, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_create(a, "Work", 0, f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "mailbox Work already exists");
	CHECK_INT(store_mailbox_create(a, "inbox", 0, f.err, sizeof f.err), -1);
	CHECK_INT(store_mailbox_create(a, "Flagged", STORE_SU_FLAGGED, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_create(a, "Bad", 1u << 12, f.err, sizeof f.err), -1);
	CHECK_INT(store_mailbox_create(a, "Ünïcødé ✓", 0, f.err, sizeof f.err), 0);
	static const char *const bad[] = {"", "/a", "a/", "a//b", "a\tb", "a*", "50%",
					  "\xc3\x28", "a\xc2\x85"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_INT(store_mailbox_create(a, bad[i], 0, f.err, sizeof f.err), -1);
	char longname[502];
	memset(longname, 'x', 501);
	longname[501] = '\0';
	CHECK_INT(store_mailbox_create(a, longname, 0, f.err, sizeof f.err), -1);
	longname[500] = '\0';
	CHECK_INT(store_mailbox_create(a, longname, 0, f.err, sizeof f.err), 0);

	struct store_mailbox mb, q1;
	CHECK_INT(store_mailbox_get(a, "Work/2024", &mb), 1);
	CHECK(!mb.subscribed);
	CHECK_INT(store_mailbox_get(a, "Work/2024/Q1", &q1), 1);
	CHECK_INT(store_mailbox_get(a, "Flagged", &mb), 1);
	CHECK_INT(mb.special_use, STORE_SU_FLAGGED);

	/* Subscribe. */
	CHECK_INT(store_mailbox_subscribe(a, "Work/2024/Q1", true, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a, "Work/2024/Q1", &mb), 1);
	CHECK(mb.subscribed);
	CHECK_INT(store_mailbox_subscribe(a, "Work/2024/Q1", false, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a, "Work/2024/Q1", &mb), 1);
	CHECK(!mb.subscribed);
	CHECK_INT(store_mailbox_subscribe(a, "a*b", true, f.err, sizeof f.err), -1);

	/* Delete: INBOX never; the messages and their files go. */
	CHECK_INT(store_mailbox_delete(a, "INBOX", f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "INBOX cannot be deleted");
	char path[PATH_MAX], shared[PATH_MAX];
	write_msg(&f, "only here\r\n", path);
	CHECK_INT(store_message_append(a, "Work/2024/Q1", path, 0, NULL, 0, NULL, f.err,
				       sizeof f.err),
		  0);
	unlink(path);
	write_msg(&f, "also in INBOX\r\n", shared);
	CHECK_INT(store_message_append(a, "Work/2024/Q1", shared, 0, NULL, 0, NULL, f.err,
				       sizeof f.err),
		  0);
	CHECK_INT(store_message_append(a, "INBOX", shared, 0, NULL, 0, NULL, f.err, sizeof f.err),
		  0);
	unlink(shared);
	char only[PATH_MAX], both[PATH_MAX];
	CHECK_INT(store_message_path(a, strrchr(path, '/') + 1, only, sizeof only), 0);
	CHECK_INT(store_message_path(a, strrchr(shared, '/') + 1, both, sizeof both), 0);
	CHECK(file_exists(only) && file_exists(both));
	CHECK_INT(store_mailbox_delete(a, "Work/2024/Q1", f.err, sizeof f.err), 0);
	CHECK(!file_exists(only));
	CHECK(file_exists(both));
	CHECK_INT(store_mailbox_get(a, "Work/2024/Q1", &mb), 0);
	CHECK_INT(store_mailbox_delete(a, "Work/2024/Q1", f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "mailbox Work/2024/Q1 does not exist");
	/* Deleting a parent leaves its children. */
	CHECK_INT(store_mailbox_create(a, "Work/2024/Q2", 0, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_delete(a, "Work/2024", f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a, "Work/2024/Q2", &mb), 1);
	/* A new mailbox of a deleted one's name: new id, new UIDVALIDITY. */
	CHECK_INT(store_mailbox_create(a, "Work/2024/Q1", 0, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a, "Work/2024/Q1", &mb), 1);
	CHECK(mb.id > q1.id);
	CHECK(mb.uidvalidity > q1.uidvalidity);
	fx_close(&f);
}

TEST(store_mailbox_rename)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	CHECK_INT(store_mailbox_create(a, "Projects/alpha/docs", 0, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_create(a, "Projectsx", 0, f.err, sizeof f.err), 0);
	struct store_mailbox before, after;
	CHECK_INT(store_mailbox_get(a, "Projects/alpha", &before), 1);
	CHECK_INT(store_mailbox_rename(a, "Projects", "Old/Projects", f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a, "Projects", &after), 0);
	CHECK_INT(store_mailbox_get(a, "Projects/alpha", &after), 0);
	CHECK_INT(store_mailbox_get(a, "Old", &after), 1);
	CHECK_INT(store_mailbox_get(a, "Old/Projects/alpha/docs", &after), 1);
	CHECK_INT(store_mailbox_get(a, "Old/Projects/alpha", &after), 1);
	CHECK_INT(after.id, before.id);
	CHECK_INT(after.uidvalidity, before.uidvalidity);
	CHECK_INT(store_mailbox_get(a, "Projectsx", &after), 1); /* not a child */

	CHECK_INT(store_mailbox_rename(a, "Nope", "X", f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "mailbox Nope does not exist");
	CHECK_INT(store_mailbox_rename(a, "Old", "Sent", f.err, sizeof f.err), -1);
	CHECK_STR(f.err, "mailbox Sent already exists");
	CHECK_INT(store_mailbox_rename(a, "Old", "Old/Inner", f.err, sizeof f.err), -1);
	/* To a parent's name: the tree moves up one level. */
	CHECK_INT(store_mailbox_create(a, "Up/Mid/a", 0, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_create(a, "Up/Mid/Mid/a", 0, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_delete(a, "Up", f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_rename(a, "Up/Mid", "Up", f.err, sizeof f.err), 0);
	struct strs c = {.text = ""};
	CHECK_INT(store_mailbox_list(a, collect_mailbox, &c, f.err, sizeof f.err), 0);
	const char *tail = ",Trash,Up,Up/Mid,Up/Mid/a,Up/a";
	CHECK(strlen(c.text) > strlen(tail));
	CHECK_STR(c.text + strlen(c.text) - strlen(tail), tail);

	/* INBOX: its messages move to a new mailbox, INBOX stays, empty. */
	char path[PATH_MAX];
	write_msg(&f, "m1\r\n", path);
	CHECK_INT(store_deliver(f.s, path, ids, 1, 0, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_deliver(f.s, path, ids, 1, 0, NULL, f.err, sizeof f.err), 0);
	unlink(path);
	CHECK_INT(store_mailbox_create(a, "INBOX/child", 0, f.err, sizeof f.err), 0);
	struct store_mailbox inbox0;
	CHECK_INT(store_mailbox_get(a, "INBOX", &inbox0), 1);
	CHECK_INT(store_mailbox_rename(a, "inbox", "INBOX/Old Mail", f.err, sizeof f.err), 0);
	struct store_mailbox inbox1, moved;
	CHECK_INT(store_mailbox_get(a, "INBOX", &inbox1), 1);
	CHECK_INT(inbox1.id, inbox0.id);
	CHECK_INT(inbox1.messages, 0);
	CHECK_INT(inbox1.uidnext, inbox0.uidnext); /* uids are not reused */
	CHECK(inbox1.highestmodseq > inbox0.highestmodseq);
	CHECK_INT(store_mailbox_get(a, "INBOX/Old Mail", &moved), 1);
	CHECK_INT(moved.messages, 2);
	CHECK(moved.uidvalidity != inbox0.uidvalidity);
	CHECK_INT(store_mailbox_get(a, "INBOX/child", &after), 1);
	/* New mail still goes to INBOX. */
	write_msg(&f, "m3\r\n", path);
	CHECK_INT(store_deliver(f.s, path, ids, 1, 0, NULL, f.err, sizeof f.err), 0);
	unlink(path);
	CHECK_INT(store_mailbox_get(a, "INBOX", &inbox1), 1);
	CHECK_INT(inbox1.messages, 1);
	struct msgs ms;
	list_msgs(a, inbox1.id, &ms);
	CHECK_INT(ms.m[0].uid, 3);
	fx_close(&f);
}

static int collect_name(void *ctx, const char *name)
{
	strs_add(ctx, name);
	return 0;
}

static void subs_are(struct store_account *a, const char *want)
{
	struct strs c = {.text = ""};
	char err[256];
	CHECK_INT(store_mailbox_subscriptions(a, collect_name, &c, err, sizeof err), 0);
	CHECK_STR(c.text, want);
}

/* Subscriptions are names: they need no mailbox, outlive DELETE and stay
 * with their name across RENAME (RFC 9051 6.3.5-6.3.8). */
TEST(store_subscriptions)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	subs_are(a, "Archive,Drafts,INBOX,Junk,Sent,Trash");
	CHECK_INT(store_mailbox_subscribe(a, "Nope/deep", true, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_subscribe(a, "Nope/deep", true, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_subscribe(a, "inbox/x", true, f.err, sizeof f.err), 0);
	subs_are(a, "Archive,Drafts,INBOX,INBOX/x,Junk,Nope/deep,Sent,Trash");
	CHECK_INT(store_mailbox_subscribe(a, "Never", false, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_subscribe(a, "Trash", false, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_subscribe(a, "INBOX/X", false, f.err, sizeof f.err), 0);
	subs_are(a, "Archive,Drafts,INBOX,INBOX/x,Junk,Nope/deep,Sent");

	CHECK_INT(store_mailbox_create(a, "P/q", 0, f.err, sizeof f.err), 0);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a, "P/q", &mb), 1);
	CHECK(!mb.subscribed);
	CHECK_INT(store_mailbox_subscribe(a, "P/q", true, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a, "P/q", &mb), 1);
	CHECK(mb.subscribed);
	CHECK_INT(store_mailbox_rename(a, "P", "R", f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a, "R/q", &mb), 1);
	CHECK(!mb.subscribed);
	subs_are(a, "Archive,Drafts,INBOX,INBOX/x,Junk,Nope/deep,P/q,Sent");
	CHECK_INT(store_mailbox_create(a, "P/q", 0, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a, "P/q", &mb), 1);
	CHECK(mb.subscribed); /* the name's subscription */
	CHECK_INT(store_mailbox_delete(a, "P/q", f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_delete(a, "Sent", f.err, sizeof f.err), 0);
	subs_are(a, "Archive,Drafts,INBOX,INBOX/x,Junk,Nope/deep,P/q,Sent");
	fx_close(&f);
}

/* An account.db of schema version 1 (a subscribed flag on the mailbox
 * row) is brought to version 2 when opened: the flags become names. */
TEST(store_subscriptions_upgrade)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	CHECK_INT(store_mailbox_create(a, "Work/Q1", 0, f.err, sizeof f.err), 0);
	store_close(&f.s);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/accounts/%02d/%lld/account.db", f.dir, (int)(ids[0] % 100),
		 (long long)ids[0]);
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db,
			       "DROP TABLE subscriptions;"
			       "ALTER TABLE mailboxes ADD COLUMN subscribed INTEGER NOT NULL"
			       " DEFAULT 0;"
			       "UPDATE mailboxes SET subscribed = 1 WHERE name IN"
			       " ('INBOX', 'Work/Q1', 'Sent');"
			       "ALTER TABLE mailboxes DROP COLUMN recent_uid;"
			       "PRAGMA user_version = 1;",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	sqlite3_close(db);
	f.s = store_open(f.dir, f.err, sizeof f.err);
	CHECK(f.s != NULL);
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	subs_are(a, "INBOX,Sent,Work/Q1");
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a, "Work/Q1", &mb), 1);
	CHECK(mb.subscribed);
	CHECK_INT(store_mailbox_get(a, "Work", &mb), 1);
	CHECK(!mb.subscribed);
	CHECK_INT(store_mailbox_subscribe(a, "Gone", true, f.err, sizeof f.err), 0);
	subs_are(a, "Gone,INBOX,Sent,Work/Q1");
	store_close(&f.s);
	/* The file is version 3 now, without the old column. */
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st = NULL;
	CHECK_INT(sqlite3_prepare_v2(db,
				     "SELECT (SELECT user_version FROM pragma_user_version),"
				     " (SELECT count(*) FROM pragma_table_info('mailboxes')"
				     " WHERE name = 'subscribed')",
				     -1, &st, NULL),
		  SQLITE_OK);
	CHECK_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(st, 0), 4); /* through 2 and 3 to the current 4 */
	CHECK_INT(sqlite3_column_int(st, 1), 0);
	sqlite3_finalize(st);
	/* A file from a newer Tern is refused, not changed. */
	CHECK_INT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	f.s = store_open(f.dir, f.err, sizeof f.err);
	CHECK(f.s != NULL);
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), -1);
	fx_close(&f);
}

/* Vacation response tracking: per (sender, handle), until its end; an
 * account.db of version 2 gets the table when opened (version 3). */
TEST(store_vacation_tracking)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	char addr[256];
	CHECK_INT(store_account_address(f.s, ids[0], addr), 1);
	CHECK(strchr(addr, '@') != NULL);
	CHECK_INT(store_account_address(f.s, 999999, addr), 0);
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	CHECK_INT(store_vacation_seen(a, "x@y.z", "h:a", 1000, f.err, sizeof f.err), 0);
	CHECK_INT(store_vacation_record(a, "X@Y.z", "h:a", 1000, 2000, f.err, sizeof f.err), 0);
	CHECK_INT(store_vacation_seen(a, "x@y.Z", "h:a", 1999, f.err, sizeof f.err), 1);
	CHECK_INT(store_vacation_seen(a, "x@y.z", "h:b", 1999, f.err, sizeof f.err), 0);
	CHECK_INT(store_vacation_seen(a, "w@y.z", "h:a", 1999, f.err, sizeof f.err), 0);
	CHECK_INT(store_vacation_seen(a, "x@y.z", "h:a", 2000, f.err, sizeof f.err), 0);
	/* recording again moves the end; expired rows go */
	CHECK_INT(store_vacation_record(a, "x@y.z", "h:a", 2500, 9000, f.err, sizeof f.err), 0);
	CHECK_INT(store_vacation_seen(a, "x@y.z", "h:a", 8999, f.err, sizeof f.err), 1);
	store_close(&f.s);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/accounts/%02d/%lld/account.db", f.dir, (int)(ids[0] % 100),
		 (long long)ids[0]);
	sqlite3 *db = NULL;
	CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_INT(sqlite3_exec(db, "DROP TABLE vacation_sent; PRAGMA user_version = 3;", NULL, NULL,
			       NULL),
		  SQLITE_OK);
	sqlite3_close(db);
	f.s = store_open(f.dir, f.err, sizeof f.err);
	CHECK(f.s != NULL);
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	CHECK_INT(store_vacation_seen(a, "x@y.z", "h:a", 1, f.err, sizeof f.err), 0);
	CHECK_INT(store_vacation_record(a, "x@y.z", "h:a", 1, 5, f.err, sizeof f.err), 0);
	CHECK_INT(store_vacation_seen(a, "x@y.z", "h:a", 2, f.err, sizeof f.err), 1);
	fx_close(&f);
}

/* -------------------------------------------------------- notification */

struct notes {
	int calls;
	int64_t last;
	int hook_calls;
	struct store *s;
	int unsub_id;
};

static void note_cb(void *ctx, int64_t account_id)
{
	struct notes *n = ctx;
	n->calls++;
	n->last = account_id;
}

static void note_hook(void *ctx, int64_t account_id)
{
	struct notes *n = ctx;
	n->hook_calls++;
	n->last = account_id;
}

static void note_unsub_self(void *ctx, int64_t account_id)
{
	struct notes *n = ctx;
	n->calls++;
	(void)account_id;
	store_notify_unsubscribe(n->s, n->unsub_id);
}

TEST(store_notify)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct notes for_alice = {0}, for_bob = {0}, all = {0}, hook = {0}, once = {0};
	int sa = store_notify_subscribe(f.s, ids[0], note_cb, &for_alice);
	int sb = store_notify_subscribe(f.s, ids[1], note_cb, &for_bob);
	int sall = store_notify_subscribe(f.s, 0, note_cb, &all);
	once.s = f.s;
	once.unsub_id = store_notify_subscribe(f.s, ids[0], note_unsub_self, &once);
	CHECK(sa > 0 && sb > 0 && sall > 0 && once.unsub_id > 0);
	CHECK(sa != sb);
	store_notify_set_hook(f.s, note_hook, &hook);

	char path[PATH_MAX];
	write_msg(&f, "n\r\n", path);
	CHECK_INT(store_deliver(f.s, path, ids, 1, 0, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(for_alice.calls, 1);
	CHECK_INT(for_alice.last, ids[0]);
	CHECK_INT(for_bob.calls, 0);
	CHECK_INT(all.calls, 1);
	CHECK_INT(hook.hook_calls, 1);
	CHECK_INT(hook.last, ids[0]);
	CHECK_INT(once.calls, 1);

	/* Flag changes notify too; the self-unsubscribed one is gone. */
	struct store_account *a;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	CHECK_INT(store_message_store_flags(a, mailbox_id(a, "INBOX"), 1, 1, STORE_F_SEEN, NULL,
					    NULL, f.err, sizeof f.err),
		  0);
	CHECK_INT(for_alice.calls, 2);
	CHECK_INT(once.calls, 1);
	CHECK_INT(hook.hook_calls, 2);

	/* From another process: local subscribers only, not the hook. */
	store_notify_local(f.s, ids[1]);
	CHECK_INT(for_bob.calls, 1);
	CHECK_INT(for_bob.last, ids[1]);
	CHECK_INT(hook.hook_calls, 2);
	CHECK_INT(all.calls, 3);

	store_notify_unsubscribe(f.s, sa);
	store_notify_unsubscribe(f.s, 12345); /* unknown id: ignored */
	CHECK_INT(store_deliver(f.s, path, ids, 2, 0, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(for_alice.calls, 2);
	CHECK_INT(for_bob.calls, 2);
	CHECK_INT(all.calls, 5);
	CHECK_INT(store_notify_subscribe(f.s, 1, NULL, NULL), -1);
	unlink(path);
	fx_close(&f);
}

/* ----------------------------------------------------- multi-process */

/* Two struct stores on one folder behave like two processes (each has its
 * own SQLite connections). */
TEST(store_two_handles)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	struct store *s2 = store_open(f.dir, f.err, sizeof f.err);
	CHECK(s2 != NULL);
	struct store_account *a1, *a2;
	/* Both open (and cache) alice before either delivers. */
	CHECK_INT(store_account_open_id(f.s, ids[0], &a1), 1);
	CHECK_INT(store_account_open_id(s2, ids[0], &a2), 1);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a2, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 0);

	char path[PATH_MAX];
	write_msg(&f, "p1\r\n", path);
	CHECK_INT(store_deliver(f.s, path, ids, 1, 0, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a2, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 1);
	CHECK_INT(store_deliver(s2, path, ids, 1, 0, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_mailbox_get(a1, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 2);
	CHECK_INT(mb.uidnext, 3);
	struct msgs ms;
	list_msgs(a1, mb.id, &ms);
	CHECK_INT(ms.n, 2);
	CHECK_INT(ms.m[1].uid, 2);
	/* Server data too: an account added by one is resolved by the other. */
	int64_t dave;
	CHECK_INT(store_account_add(s2, "dave@example.test", NULL, &dave, f.err, sizeof f.err), 0);
	struct store_targets t;
	CHECK_INT(store_resolve(f.s, "dave@example.test", "+", &t), STORE_RCPT_OK);
	CHECK_INT(t.local[0], dave);
	CHECK_INT(store_deliver(f.s, path, &dave, 1, 0, NULL, f.err, sizeof f.err), 0);
	unlink(path);
	store_close(&s2);
	fx_close(&f);
}

/* Several processes creating the schema of a fresh folder at once. */
TEST(store_concurrent_open)
{
	struct fx f;
	fx_open(&f);
	store_close(&f.s);
	/* A fresh folder below the test's one, opened by 4 children at once. */
	char dir[128];
	snprintf(dir, sizeof dir, "%s/fresh", f.dir);
	pid_t pids[4];
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char err[256], dom[32];
			struct store *s = store_open(dir, err, sizeof err);
			if (s == NULL) {
				fprintf(stderr, "child %d: %s\n", i, err);
				_exit(1);
			}
			snprintf(dom, sizeof dom, "d%d.test", i);
			int r = store_domain_add(s, dom, err, sizeof err);
			if (r == 0) {
				char addr[64];
				snprintf(addr, sizeof addr, "u@%s", dom);
				r = store_account_add(s, addr, NULL, NULL, err, sizeof err);
			}
			if (r < 0)
				fprintf(stderr, "child %d: %s\n", i, err);
			store_close(&s);
			_exit(r == 0 ? 0 : 1);
		}
		CHECK(pids[i] > 0);
	}
	for (int i = 0; i < 4; i++) {
		int status = 0;
		CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	struct store *s = store_open(dir, f.err, sizeof f.err);
	CHECK(s != NULL);
	struct strs c = {.text = ""};
	CHECK_INT(store_account_list(s, NULL, collect_account, &c, f.err, sizeof f.err), 0);
	CHECK_STR(c.text, "u@d0.test,u@d1.test,u@d2.test,u@d3.test");

	/* Then 4 processes deliver to one account at once: every message gets
	 * its own uid. */
	struct store_account_info info;
	CHECK_INT(store_account_get(s, "u@d0.test", &info), 1);
	store_close(&s);
	for (int i = 0; i < 4; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			char err[256], path[PATH_MAX], id[25];
			struct store *cs = store_open(dir, err, sizeof err);
			int r = cs ? 0 : -1;
			for (int k = 0; k < 25 && r == 0; k++) {
				fsutil_unique_id(id);
				snprintf(path, sizeof path, "%s/spool/%s", dir, id);
				int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
				if (fd < 0 || fsutil_write_all(fd, "m\r\n", 3) < 0 || fsync(fd) < 0)
					r = -1;
				if (fd >= 0)
					close(fd);
				if (r == 0)
					r = store_deliver(cs, path, &info.id, 1, 0, NULL, err, sizeof err);
				unlink(path);
			}
			if (r < 0)
				fprintf(stderr, "child %d: %s\n", i, err);
			store_close(&cs);
			_exit(r == 0 ? 0 : 1);
		}
		CHECK(pids[i] > 0);
	}
	for (int i = 0; i < 4; i++) {
		int status = 0;
		CHECK(waitpid(pids[i], &status, 0) == pids[i]);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	s = store_open(dir, f.err, sizeof f.err);
	CHECK(s != NULL);
	struct store_account *a;
	CHECK_INT(store_account_open_id(s, info.id, &a), 1);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(a, "INBOX", &mb), 1);
	CHECK_INT(mb.messages, 100);
	CHECK_INT(mb.uidnext, 101);
	store_close(&s);
	f.s = store_open(f.dir, f.err, sizeof f.err);
	fx_close(&f);
}

/* --------------------------------------------------- the handle cache */

struct reenter {
	struct store *s;
	const int64_t *ids;
	size_t n;
	int calls;
};

/* A callback that uses other accounts, which closes the listed account's
 * database under a cache of one. */
static int reenter_cb(void *ctx, const struct store_mailbox *mb)
{
	struct reenter *r = ctx;
	(void)mb;
	r->calls++;
	for (size_t i = 0; i < r->n; i++) {
		struct store_account *o;
		if (store_account_open_id(r->s, r->ids[i], &o) != 1)
			return 1;
		struct store_mailbox x;
		if (store_mailbox_get(o, "INBOX", &x) != 1)
			return 1;
	}
	return 0;
}

TEST(store_account_cache)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	store_set_account_cache(f.s, 1);
	struct store_account *h[3];
	for (int i = 0; i < 3; i++)
		CHECK_INT(store_account_open_id(f.s, ids[i], &h[i]), 1);
	char path[PATH_MAX];
	write_msg(&f, "c\r\n", path);
	for (int round = 0; round < 3; round++)
		CHECK_INT(store_deliver(f.s, path, ids, 3, 0, NULL, f.err, sizeof f.err), 0);
	unlink(path);
	/* Every handle is still valid and sees its messages. */
	for (int i = 0; i < 3; i++) {
		struct store_mailbox mb;
		CHECK_INT(store_mailbox_get(h[i], "INBOX", &mb), 1);
		CHECK_INT(mb.messages, 3);
		CHECK_INT(store_account_id(h[i]), ids[i]);
	}
	struct reenter r = {f.s, ids, 3, 0};
	CHECK_INT(store_mailbox_list(h[0], reenter_cb, &r, f.err, sizeof f.err), 0);
	CHECK_INT(r.calls, 6);
	/* Removing an account frees its handle only. */
	CHECK_INT(store_account_remove(f.s, "bob@example.test", f.err, sizeof f.err), 0);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(h[2], "INBOX", &mb), 1);
	CHECK_INT(store_account_open_id(f.s, ids[1], &h[1]), 0);
	fx_close(&f);
}

/* The crash clean-up: files nobody holds go, a held file and a queue file
 * with a message still to deliver stay (issue: orphans after kill -9). */
TEST(spool_clean_removes_only_orphans)
{
	struct fx f;
	fx_open(&f);
	char held[PATH_MAX], dropped[PATH_MAX], orphan[PATH_MAX], child_held[PATH_MAX];
	int fd_held = store_spool_write(f.s, "a", 1, "b", 1, held, sizeof held);
	CHECK(fd_held >= 0);
	/* A holder's lock is per open file: another process sees it too. */
	int fd_dropped = store_spool_new(f.s, dropped, sizeof dropped);
	CHECK(fd_dropped >= 0);
	store_spool_drop(&fd_dropped, dropped);
	CHECK(fd_dropped == -1);
	CHECK(!file_exists(dropped));
	/* An orphan: its maker died without unlinking (closing = dying). */
	int fd = store_spool_new(f.s, orphan, sizeof orphan);
	CHECK(fd >= 0);
	close(fd);
	/* A file held by a live child process. */
	int pipefd[2], done[2];
	CHECK_INT(pipe(pipefd), 0);
	CHECK_INT(pipe(done), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int cfd = store_spool_new(f.s, child_held, sizeof child_held);
		(void)!write(pipefd[1], child_held, sizeof child_held);
		char c;
		(void)!read(done[0], &c, 1);
		_exit(cfd >= 0 ? 0 : 1);
	}
	CHECK_INT(read(pipefd[0], child_held, sizeof child_held), (long long)sizeof child_held);
	/* A queue file of a message still queued, and a stray one. */
	char rcpts[1][256] = {"a@remote.example"};
	char queued[PATH_MAX];
	int fd_q = store_spool_write(f.s, "m", 1, NULL, 0, queued, sizeof queued);
	CHECK(fd_q >= 0);
	CHECK_INT(store_queue_add(f.s, queued, "s@example.test", rcpts, 1, f.err, sizeof f.err), 0);
	store_spool_drop(&fd_q, queued);
	char stray[PATH_MAX], id[25];
	fsutil_unique_id(id);
	snprintf(stray, sizeof stray, "%s/queue/%s", f.dir, id);
	fd = open(stray, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);
	char other[PATH_MAX];
	snprintf(other, sizeof other, "%s/queue/README.admin", f.dir);
	fd = open(other, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	close(fd);

	size_t n_spool = 99, n_queue = 99;
	/* Too young for a clean-up that waits an hour: nothing goes. */
	CHECK_INT(store_spool_clean(f.s, 3600, &n_spool, &n_queue, f.err, sizeof f.err), 0);
	CHECK_INT(n_spool, 0);
	CHECK_INT(n_queue, 0);
	CHECK(file_exists(orphan) && file_exists(stray));

	CHECK_INT(store_spool_clean(f.s, 0, &n_spool, &n_queue, f.err, sizeof f.err), 0);
	CHECK_INT(n_spool, 1);
	CHECK_INT(n_queue, 1);
	CHECK(!file_exists(orphan));
	CHECK(!file_exists(stray));
	CHECK(file_exists(held));
	CHECK(file_exists(child_held));
	CHECK(file_exists(other)); /* not a name of ours: left alone */
	struct store_queue_message m;
	CHECK_INT(store_queue_message_get(f.s, 1, &m), 1);
	char qpath[PATH_MAX];
	CHECK_INT(store_queue_path(f.s, m.file, qpath, sizeof qpath), 0);
	CHECK(file_exists(qpath));

	/* The child dies without cleaning up: its file is an orphan now. */
	(void)!write(done[1], "x", 1);
	int status;
	CHECK_INT(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_INT(store_spool_clean(f.s, 0, &n_spool, &n_queue, f.err, sizeof f.err), 0);
	CHECK_INT(n_spool, 1);
	CHECK(!file_exists(child_held));
	CHECK(file_exists(held));
	store_spool_drop(&fd_held, held);
	close(pipefd[0]);
	close(pipefd[1]);
	close(done[0]);
	close(done[1]);
	fx_close(&f);
}

/* SRS (store-srs.c): a round trip; case changes on the way survive; a
 * forged hash, a damaged address or an old one does not. */
TEST(srs_encode_decode)
{
	const unsigned char key[32] = "0123456789abcdef0123456789abcde";
	time_t now = 1796000000;
	char a[512], back[512];
	CHECK_INT(store_srs_encode(key, sizeof key, "Alice=X@Example.ORG", "fwd.test", now, a,
				   sizeof a),
		  0);
	CHECK(strncmp(a, "SRS0=", 5) == 0);
	CHECK(strstr(a, "=example.org=Alice=X@fwd.test") != NULL);
	char local[512];
	snprintf(local, sizeof local, "%.*s", (int)(strrchr(a, '@') - a), a);
	CHECK_INT(store_srs_decode(key, sizeof key, local, now, back, sizeof back), 0);
	CHECK_STR(back, "Alice=X@example.org");
	/* a server on the way upper-cased it: still ours */
	char upper[512];
	snprintf(upper, sizeof upper, "%s", local);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	CHECK_INT(store_srs_decode(key, sizeof key, upper, now, back, sizeof back), 0);
	/* 21 days later it still works, 22 days later not */
	CHECK_INT(store_srs_decode(key, sizeof key, local, now + 21 * 86400, back, sizeof back), 0);
	CHECK_INT(store_srs_decode(key, sizeof key, local, now + 22 * 86400, back, sizeof back),
		  -2);
	/* another key, a changed hash, a changed address: forged */
	unsigned char other[32];
	memcpy(other, key, sizeof other);
	other[0] ^= 1;
	CHECK_INT(store_srs_decode(other, sizeof other, local, now, back, sizeof back), -2);
	char bad[512];
	snprintf(bad, sizeof bad, "%s", local);
	bad[5] = bad[5] == 'a' ? 'b' : 'a';
	CHECK_INT(store_srs_decode(key, sizeof key, bad, now, back, sizeof back), -2);
	snprintf(bad, sizeof bad, "%s", local);
	*strstr(bad, "example.org") = 'x';
	CHECK_INT(store_srs_decode(key, sizeof key, bad, now, back, sizeof back), -2);
	CHECK_INT(store_srs_decode(key, sizeof key, "SRS0=abcd=aa", now, back, sizeof back), -2);
	CHECK_INT(store_srs_decode(key, sizeof key, "alice", now, back, sizeof back), -1);
	CHECK_INT(store_srs_encode(key, sizeof key, "no-at-sign", "fwd.test", now, a, sizeof a),
		  -1);
}

/* ------------------------------------------------------- app passwords */

TEST(store_app_passwords)
{
	struct fx f;
	fx_open(&f);
	int64_t ids[3];
	fx_basic(&f, ids);
	CHECK_INT(store_apppass_add(f.s, ids[0], "kq7m", "phone", "$y$h1", 3, f.err, sizeof f.err),
		  0);
	CHECK_INT(store_apppass_add(f.s, ids[0], "ab23", "laptop mail", "$y$h2", 3, f.err,
				    sizeof f.err),
		  0);
	/* the same name, the same id: refused, nothing added */
	CHECK_INT(store_apppass_add(f.s, ids[0], "zz99", "phone", "$y$h3", 3, f.err, sizeof f.err),
		  STORE_APPPASS_NAME_TAKEN);
	CHECK_INT(store_apppass_add(f.s, ids[0], "kq7m", "tablet", "$y$h3", 3, f.err,
				    sizeof f.err),
		  STORE_APPPASS_ID_TAKEN);
	/* another account may have both */
	CHECK_INT(store_apppass_add(f.s, ids[1], "kq7m", "phone", "$y$h4", 3, f.err, sizeof f.err),
		  0);
	/* malformed fields */
	CHECK_INT(store_apppass_add(f.s, ids[0], "k q", "x", "$y$h", 3, f.err, sizeof f.err), -1);
	CHECK_INT(store_apppass_add(f.s, ids[0], "kk22", "", "$y$h", 3, f.err, sizeof f.err), -1);
	CHECK_INT(store_apppass_add(f.s, ids[0], "kk22", "x\n", "$y$h", 3, f.err, sizeof f.err),
		  -1);
	/* the bound */
	CHECK_INT(store_apppass_add(f.s, ids[0], "cc33", "tablet", "$y$h5", 3, f.err, sizeof f.err),
		  0);
	CHECK_INT(store_apppass_add(f.s, ids[0], "dd44", "watch", "$y$h6", 3, f.err, sizeof f.err),
		  STORE_APPPASS_FULL);

	struct store_apppass rows[5];
	size_t n = 0;
	CHECK_INT(store_apppass_list(f.s, ids[0], rows, 5, &n, f.err, sizeof f.err), 0);
	CHECK_INT(n, 3);
	struct store_apppass a;
	CHECK_INT(store_apppass_find(f.s, ids[0], "kq7m", &a), 1);
	CHECK_STR(a.name, "phone");
	CHECK_STR(a.pwhash, "$y$h1");
	CHECK_INT(a.last_used, 0);
	CHECK(a.created > 0);
	CHECK_INT(store_apppass_find(f.s, ids[0], "zz99", &a), 0);
	CHECK_INT(store_apppass_find(f.s, ids[2], "kq7m", &a), 0);

	/* last_used only moves forward */
	CHECK_INT(store_apppass_touch(f.s, ids[0], "kq7m", 1000, f.err, sizeof f.err), 0);
	CHECK_INT(store_apppass_touch(f.s, ids[0], "kq7m", 900, f.err, sizeof f.err), 0);
	CHECK_INT(store_apppass_find(f.s, ids[0], "kq7m", &a), 1);
	CHECK_INT(a.last_used, 1000);
	CHECK_INT(store_apppass_find(f.s, ids[1], "kq7m", &a), 1);
	CHECK_INT(a.last_used, 0);

	CHECK_INT(store_apppass_remove(f.s, ids[0], "phone", f.err, sizeof f.err), 1);
	CHECK_INT(store_apppass_remove(f.s, ids[0], "phone", f.err, sizeof f.err), 0);
	CHECK_INT(store_apppass_find(f.s, ids[0], "kq7m", &a), 0);
	CHECK_INT(store_apppass_find(f.s, ids[1], "kq7m", &a), 1);

	/* removing the account takes its app passwords */
	CHECK_INT(store_account_remove(f.s, "bob@example.test", f.err, sizeof f.err), 0);
	CHECK_INT(store_apppass_find(f.s, ids[1], "kq7m", &a), 0);
	fx_close(&f);
}

/* Greylisting's memory with a given clock: delay, expiry of unconfirmed
 * and of passed triplets, the network auto-allowlist, sender history,
 * and the per-domain switch. */
static enum store_greylist_result grey_at(struct fx *f, const char *net, const char *sender,
					  int64_t now, const struct store_greylist_policy *p,
					  int64_t *wait)
{
	struct store_greylist_key k = {net, sender, "alice@example.test"};
	struct store_greylist_answer a;
	CHECK_INT(store_greylist_check(f->s, &k, now, p, &a, f->err, sizeof f->err), 0);
	*wait = a.wait;
	return a.result;
}

TEST(greylist_triplets_expiry_and_networks)
{
	struct fx f;
	fx_open(&f);
	const struct store_greylist_policy p = {.delay = 300, .expire = 86400, .keep = 35 * 86400,
						.auto_allow = 2};
	int64_t t = 1700000000, w;
	const char *net = "192.0.2.0/24";
	CHECK_INT(grey_at(&f, net, "a@x.example", t, &p, &w), STORE_GREYLIST_NEW);
	CHECK_INT(w, 300);
	CHECK_INT(grey_at(&f, net, "a@x.example", t + 100, &p, &w), STORE_GREYLIST_EARLY);
	CHECK_INT(w, 200);
	CHECK_INT(grey_at(&f, net, "a@x.example", t + 300, &p, &w), STORE_GREYLIST_PASS);
	CHECK_INT(grey_at(&f, net, "a@x.example", t + 400, &p, &w), STORE_GREYLIST_KNOWN);
	/* unconfirmed too long: starts over */
	CHECK_INT(grey_at(&f, net, "b@x.example", t, &p, &w), STORE_GREYLIST_NEW);
	CHECK_INT(grey_at(&f, net, "b@x.example", t + 86401, &p, &w), STORE_GREYLIST_NEW);
	CHECK_INT(grey_at(&f, net, "b@x.example", t + 86401 + 300, &p, &w), STORE_GREYLIST_PASS);
	/* two passes: the network is allowed for any new triplet */
	int64_t t2 = t + 86401 + 300;
	CHECK_INT(grey_at(&f, net, "c@y.example", t2 + 1, &p, &w), STORE_GREYLIST_NET);
	CHECK_INT(grey_at(&f, "198.51.100.0/24", "c@y.example", t2 + 1, &p, &w),
		  STORE_GREYLIST_NEW);
	/* a passed triplet unused longer than keep is forgotten, so is the
	 * network's count */
	int64_t t3 = t2 + 1 + 35 * 86400 + 1;
	CHECK_INT(grey_at(&f, net, "a@x.example", t3, &p, &w), STORE_GREYLIST_NEW);
	CHECK_INT(store_greylist_expire(f.s, t3, &p, f.err, sizeof f.err), 0);
	/* sender history */
	CHECK_INT(store_greylist_sender_passes(f.s, "x.example", t, p.keep), 0);
	CHECK_INT(store_greylist_sender_pass(f.s, "x.example", t, p.keep, f.err, sizeof f.err), 0);
	CHECK_INT(store_greylist_sender_pass(f.s, "x.example", t, p.keep, f.err, sizeof f.err), 0);
	CHECK_INT(store_greylist_sender_passes(f.s, "x.example", t + 10, p.keep), 2);
	CHECK_INT(store_greylist_sender_passes(f.s, "x.example", t + p.keep + 1, p.keep), 0);
	/* the per-domain switch */
	CHECK_INT(store_greylist_domain_get(f.s, "Example.TEST"), 0);
	CHECK_INT(store_greylist_domain_set(f.s, "Example.TEST", true, f.err, sizeof f.err), 0);
	CHECK_INT(store_greylist_domain_get(f.s, "example.test"), 1);
	CHECK_INT(store_greylist_domain_set(f.s, "example.test", false, f.err, sizeof f.err), 0);
	CHECK_INT(store_greylist_domain_get(f.s, "example.test"), 0);
	fx_close(&f);
}

/* --------------------------------------------------- store-spamlist.c */

TEST(store_spamlist_patterns_and_lookup)
{
	struct fx f;
	int64_t ids[3];
	fx_open(&f);
	fx_basic(&f, ids);
	struct store_account *a = NULL;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	char p[STORE_SPAMLIST_PATTERN_MAX];
	CHECK_INT(store_spamlist_pattern("Bob@Example.ORG", p, f.err, sizeof f.err), 0);
	CHECK_STR(p, "bob@example.org");
	CHECK_INT(store_spamlist_pattern("@Example.ORG", p, f.err, sizeof f.err), 0);
	CHECK_STR(p, "@example.org");
	CHECK_INT(store_spamlist_pattern("nobody", p, f.err, sizeof f.err), -1);
	CHECK_INT(store_spamlist_pattern("@", p, f.err, sizeof f.err), -1);
	CHECK_INT(store_spamlist_set(a, "@example.org", STORE_SPAMLIST_BLOCK, 10, f.err,
				     sizeof f.err), 0);
	CHECK_INT(store_spamlist_set(a, "bob@example.org", STORE_SPAMLIST_ALLOW, 11, f.err,
				     sizeof f.err), 0);
	struct store_spamlist_entry e;
	/* the address beats its domain; a domain covers its subdomains */
	CHECK_INT(store_spamlist_lookup(a, "BOB@example.org", &e, f.err, sizeof f.err), 1);
	CHECK(e.kind == STORE_SPAMLIST_ALLOW && e.origin == STORE_SPAMLIST_MANUAL);
	CHECK_STR(e.pattern, "bob@example.org");
	CHECK_INT(store_spamlist_lookup(a, "eve@mail.Example.org", &e, f.err, sizeof f.err), 1);
	CHECK(e.kind == STORE_SPAMLIST_BLOCK);
	CHECK_STR(e.pattern, "@example.org");
	CHECK_INT(store_spamlist_lookup(a, "eve@example.net", &e, f.err, sizeof f.err), 0);
	CHECK_INT(store_spamlist_lookup(a, "", &e, f.err, sizeof f.err), 0);
	/* sent mail: added, but never over an entry made by hand */
	const char *to[] = {"Carol@Example.NET", "bob@example.org", "@bad", "not an address"};
	CHECK_INT(store_spamlist_note_sent(a, to, 4, 20, f.err, sizeof f.err), 0);
	CHECK_INT(store_spamlist_lookup(a, "carol@example.net", &e, f.err, sizeof f.err), 1);
	CHECK(e.kind == STORE_SPAMLIST_ALLOW && e.origin == STORE_SPAMLIST_SENT && e.used == 20);
	CHECK_INT(store_spamlist_lookup(a, "bob@example.org", &e, f.err, sizeof f.err), 1);
	CHECK(e.origin == STORE_SPAMLIST_MANUAL && e.used == 11);
	CHECK_INT(store_spamlist_note_sent(a, to, 1, 30, f.err, sizeof f.err), 0);
	CHECK_INT(store_spamlist_lookup(a, "carol@example.net", &e, f.err, sizeof f.err), 1);
	CHECK(e.used == 30 && e.added == 20);
	/* by hand over one from sent mail */
	CHECK_INT(store_spamlist_set(a, "carol@example.net", STORE_SPAMLIST_BLOCK, 40, f.err,
				     sizeof f.err), 0);
	CHECK_INT(store_spamlist_lookup(a, "carol@example.net", &e, f.err, sizeof f.err), 1);
	CHECK(e.kind == STORE_SPAMLIST_BLOCK && e.origin == STORE_SPAMLIST_MANUAL);
	CHECK_INT(store_spamlist_remove(a, "@example.org", f.err, sizeof f.err), 1);
	CHECK_INT(store_spamlist_remove(a, "@example.org", f.err, sizeof f.err), 0);
	CHECK_INT(store_spamlist_lookup(a, "eve@mail.example.org", &e, f.err, sizeof f.err), 0);
	fx_close(&f);
}

/* ------------------------------------------------------- store-spam.c */

TEST(store_spam_train_untrain)
{
	struct fx f;
	int64_t ids[3];
	fx_open(&f);
	fx_basic(&f, ids);
	struct store_account *a = NULL;
	CHECK_INT(store_account_open_id(f.s, ids[0], &a), 1);
	const char *m1[] = {"cheap", "pills", "subject:offer"};
	const char *m2[] = {"cheap", "meeting"};
	const char *q[] = {"cheap", "pills", "meeting", "never"};
	uint32_t s[4], h[4];
	struct store_spam_totals tot;
	CHECK_INT(store_spam_totals(a, &tot, f.err, sizeof f.err), 0);
	CHECK(tot.spam == 0 && tot.ham == 0 && tot.tokens == 0);
	CHECK_INT(store_spam_train(a, "f1", STORE_SPAM_SPAM, m1, 3, 100, 0, f.err, sizeof f.err), 1);
	/* again as spam: nothing changes */
	CHECK_INT(store_spam_train(a, "f1", STORE_SPAM_SPAM, m1, 3, 101, 0, f.err, sizeof f.err), 0);
	CHECK_INT(store_spam_train(a, "f2", STORE_SPAM_HAM, m2, 2, 102, 0, f.err, sizeof f.err), 1);
	CHECK_INT(store_spam_counts(a, q, 4, s, h, f.err, sizeof f.err), 0);
	CHECK(s[0] == 1 && h[0] == 1 && s[1] == 1 && h[1] == 0 && s[2] == 0 && h[2] == 1);
	CHECK(s[3] == 0 && h[3] == 0);
	CHECK_INT(store_spam_totals(a, &tot, f.err, sizeof f.err), 0);
	CHECK(tot.spam == 1 && tot.ham == 1 && tot.tokens == 4);
	enum store_spam_class c;
	CHECK_INT(store_spam_trained(a, "f1", &c, f.err, sizeof f.err), 0);
	CHECK_INT(c, STORE_SPAM_SPAM);
	/* f1 retrained as ham: its spam counts are taken back */
	CHECK_INT(store_spam_train(a, "f1", STORE_SPAM_HAM, m1, 3, 103, 0, f.err, sizeof f.err), 1);
	CHECK_INT(store_spam_counts(a, q, 4, s, h, f.err, sizeof f.err), 0);
	CHECK(s[0] == 0 && h[0] == 2 && s[1] == 0 && h[1] == 1);
	CHECK_INT(store_spam_totals(a, &tot, f.err, sizeof f.err), 0);
	CHECK(tot.spam == 0 && tot.ham == 2);
	/* forgotten: the counts go, and tokens nobody holds are dropped */
	CHECK_INT(store_spam_train(a, "f1", STORE_SPAM_NONE, m1, 3, 104, 0, f.err, sizeof f.err), 1);
	CHECK_INT(store_spam_trained(a, "f1", &c, f.err, sizeof f.err), 0);
	CHECK_INT(c, STORE_SPAM_NONE);
	CHECK_INT(store_spam_totals(a, &tot, f.err, sizeof f.err), 0);
	CHECK(tot.spam == 0 && tot.ham == 1 && tot.tokens == 2); /* cheap, meeting */
	/* bounded: every 64th training (spam + ham), with max_tokens 3 the
	 * least recently trained go; in between nothing is dropped */
	char key[16], tok[16];
	const char *one[] = {tok};
	for (int i = 0; i < 62; i++) {
		snprintf(key, sizeof key, "k%d", i);
		snprintf(tok, sizeof tok, "t%d", i);
		CHECK_INT(store_spam_train(a, key, STORE_SPAM_SPAM, one, 1, 200 + i, 3, f.err,
					   sizeof f.err),
			  1);
	}
	CHECK_INT(store_spam_totals(a, &tot, f.err, sizeof f.err), 0);
	CHECK(tot.spam + tot.ham == 63 && tot.tokens == 64);
	const char *m3[] = {"alpha", "beta"};
	CHECK_INT(store_spam_train(a, "f3", STORE_SPAM_SPAM, m3, 2, 300, 3, f.err, sizeof f.err), 1);
	CHECK_INT(store_spam_totals(a, &tot, f.err, sizeof f.err), 0);
	CHECK_INT(tot.tokens, 3);
	const char *q2[] = {"alpha", "beta", "t61", "cheap"};
	CHECK_INT(store_spam_counts(a, q2, 4, s, h, f.err, sizeof f.err), 0);
	CHECK(s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 0 && h[3] == 0);
	/* a larger bound drops nothing (a negative LIMIT would drop all) */
	for (int i = 0; i < 64; i++) {
		snprintf(key, sizeof key, "g%d", i);
		snprintf(tok, sizeof tok, "g%d", i);
		CHECK_INT(store_spam_train(a, key, STORE_SPAM_HAM, one, 1, 400 + i, 1000, f.err,
					   sizeof f.err),
			  1);
	}
	CHECK_INT(store_spam_totals(a, &tot, f.err, sizeof f.err), 0);
	CHECK(tot.spam + tot.ham == 128);
	CHECK_INT(tot.tokens, 67);
	fx_close(&f);
}
