/*
 * test-store-fts.c - unit tests for src/store/store-fts.c: which needles
 * the index may answer (strict UTF-8, 3 characters), the text extracted
 * per message (folded header and body, cut at a character boundary and
 * marked partial, not-UTF-8 text marked failed), and through a store:
 * rows written at APPEND, shared by a copy, asked by store_fts_search with
 * the unsure list, dropped with the last message, and rebuilt.
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "store-private.h"
#include "test.h"

TEST(store_fts_needle_ok)
{
	CHECK(!store_fts_needle_ok(""));
	CHECK(!store_fts_needle_ok("ab"));
	CHECK(store_fts_needle_ok("abc"));
	CHECK(!store_fts_needle_ok("\xc3\xa9\xc3\xa9"));                /* 2 characters */
	CHECK(store_fts_needle_ok("\xc3\xa9\xc3\xa9\xc3\xa9"));         /* 3 */
	CHECK(store_fts_needle_ok("\xf0\x9f\x8e\x89" "ab"));             /* U+1F389 */
	CHECK(!store_fts_needle_ok("\xff" "abc"));                       /* not UTF-8 */
	CHECK(!store_fts_needle_ok("ab\xc3"));                          /* cut sequence */
	CHECK(!store_fts_needle_ok("\xc0\xaf" "abc"));                   /* overlong */
	CHECK(!store_fts_needle_ok("\xed\xa0\x80" "abc"));               /* surrogate */
	CHECK(!store_fts_needle_ok("\xef\xbf\xbe" "abc"));               /* U+FFFE */
	CHECK(!store_fts_needle_ok("\xf4\x90\x80\x80" "abc"));           /* > U+10FFFF */
}

static const char *text(struct buf *b)
{
	return buf_cstr(b);
}

TEST(store_fts_extract)
{
	static const char m1[] = "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= Hello\r\n"
				 "Content-Type: text/plain; charset=utf-8\r\n"
				 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
				 "Stra=C3=9Fe IN M=C3=9CNCHEN\r\n";
	struct store_fts_doc d;
	store_fts_extract(m1, sizeof m1 - 1, 1024, &d);
	CHECK(d.ready);
	CHECK_INT(d.state, 0);
	CHECK_STR(text(&d.hdr), "subject: gr\xc3\xbc\xc3\x9f" "e hello\n"
				"content-type: text/plain; charset=utf-8\n"
				"content-transfer-encoding: quoted-printable\n");
	CHECK_STR(text(&d.body), "stra\xc3\x9f" "e in m\xc3\xbc" "nchen\r\n\n");
	size_t hl = d.hdr.len;
	store_fts_doc_free(&d);

	/* cut: the body gets 5 octets after the header, which end inside the
	 * two octets of "ß": it is cut before them */
	store_fts_extract(m1, sizeof m1 - 1, hl + 5, &d);
	CHECK_INT(d.state, 1);
	CHECK_INT(d.hdr.len, hl);
	CHECK_STR(text(&d.body), "stra");
	store_fts_doc_free(&d);
	store_fts_extract(m1, sizeof m1 - 1, 10, &d);
	CHECK_INT(d.state, 1);
	CHECK_STR(text(&d.hdr), "subject: g");
	CHECK_INT(d.body.len, 0);
	store_fts_doc_free(&d);

	/* attachment names after the text: RFC 2231 (percent-decoded,
	 * converted from latin-1 here), RFC 2047 in a plain value, Content-Type
	 * name when there is no filename */
	static const char m3[] =
	    "Subject: a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nSee Files\r\n"
	    "--b\r\nContent-Type: application/pdf\r\n"
	    "Content-Disposition: attachment; filename*=iso-8859-1'de'%C4rger%20Q1.PDF\r\n\r\nx\r\n"
	    "--b\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Disposition: attachment; filename=\"=?UTF-8?Q?caf=C3=A9?=.txt\"\r\n\r\nx\r\n"
	    "--b\r\nContent-Type: image/png; name=\"Logo.PNG\"\r\n\r\nx\r\n"
	    "--b--\r\n";
	store_fts_extract(m3, sizeof m3 - 1, 1024, &d);
	CHECK_INT(d.state, 0);
	CHECK_STR(text(&d.body), "see files\n\xc3\xa4rger q1.pdf\ncaf\xc3\xa9.txt\nlogo.png\n");
	store_fts_doc_free(&d);

	/* an unknown charset passes the bytes as they are: not UTF-8 */
	static const char m2[] = "Subject: x\r\nContent-Type: text/plain; charset=bogus\r\n\r\n"
				 "caf\xe9\r\n";
	store_fts_extract(m2, sizeof m2 - 1, 1024, &d);
	CHECK(d.ready);
	CHECK_INT(d.state, 2);
	CHECK_STR(d.why, "the decoded text is not UTF-8");
	CHECK_INT(d.hdr.len + d.body.len, 0);
	store_fts_doc_free(&d);
}

struct ffx {
	char dir[64];
	struct store *s;
	struct store_account *a;
	int64_t inbox, archive;
	char err[256];
};

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static uint32_t append(struct ffx *f, const char *body)
{
	char id[25], path[PATH_MAX];
	fsutil_unique_id(id);
	snprintf(path, sizeof path, "%s/spool/%s", f->dir, id);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK_INT(fsutil_write_all(fd, body, strlen(body)), 0);
	close(fd);
	struct store_imap_append_msg m = {path, 0, NULL, 1000};
	uint32_t uid = 0, uv;
	CHECK_INT(store_imap_append(f->a, "INBOX", &m, 1, &uv, &uid, f->err, sizeof f->err), 0);
	unlink(path);
	return uid;
}

/* The uids store_fts_search lists for needle, as "1 2 3", then "|" and the
 * unsure uids. */
static void ask(struct ffx *f, int64_t mailbox, enum store_fts_field field, const char *needle,
		char *out, size_t outsz)
{
	struct store_fts_query q = {field, needle, NULL, 0};
	uint32_t *unsure;
	size_t n_unsure;
	CHECK_INT(store_fts_search(f->a, mailbox, 1, 100, &q, 1, &unsure, &n_unsure, f->err,
				   sizeof f->err),
		  0);
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < q.n; i++)
		o += (size_t)snprintf(out + o, outsz - o, "%s%u", i ? " " : "", q.uids[i]);
	o += (size_t)snprintf(out + o, outsz - o, "|");
	for (size_t i = 0; i < n_unsure; i++)
		o += (size_t)snprintf(out + o, outsz - o, "%s%u", i ? " " : "", unsure[i]);
	free(q.uids);
	free(unsure);
}

TEST(store_fts_rows)
{
	struct ffx f;
	memset(&f, 0, sizeof f);
	log_set_level(LOG_ERROR);
	snprintf(f.dir, sizeof f.dir, "/tmp/tern-store-fts-XXXXXX");
	if (mkdtemp(f.dir) == NULL)
		exit(2);
	f.s = store_open(f.dir, f.err, sizeof f.err);
	if (f.s == NULL)
		exit(2);
	CHECK_INT(store_domain_add(f.s, "example.test", f.err, sizeof f.err), 0);
	CHECK_INT(store_account_add(f.s, "u@example.test", "$6$x$y", NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_account_open(f.s, "u@example.test", &f.a), 1);
	struct store_mailbox mb;
	CHECK_INT(store_mailbox_get(f.a, "INBOX", &mb), 1);
	f.inbox = mb.id;
	CHECK_INT(store_mailbox_get(f.a, "Archive", &mb), 1);
	f.archive = mb.id;

	CHECK_INT(append(&f, "Subject: one\r\n\r\nThe walrus said.\r\n"), 1);
	CHECK_INT(append(&f, "Subject: walrus two\r\n\r\nNothing.\r\n"), 2);
	store_set_fts_max_text(f.s, 0); /* off: no row */
	CHECK_INT(append(&f, "Subject: three\r\n\r\nA walrus too.\r\n"), 3);
	store_set_fts_max_text(f.s, 20); /* header and a bit */
	CHECK_INT(append(&f, "Subject: four\r\n\r\nlong text and a walrus.\r\n"), 4);
	store_set_fts_max_text(f.s, STORE_FTS_MAX_TEXT_DEFAULT);
	char got[128];
	ask(&f, f.inbox, STORE_FTS_BODY, "WALRUS", got, sizeof got);
	CHECK_STR(got, "|3 4"); /* the needle is folded by the caller */
	ask(&f, f.inbox, STORE_FTS_BODY, "walrus", got, sizeof got);
	CHECK_STR(got, "1|3 4");
	ask(&f, f.inbox, STORE_FTS_TEXT, "walrus", got, sizeof got);
	CHECK_STR(got, "1 2|3 4");
	ask(&f, f.inbox, STORE_FTS_TEXT, "subject: fo", got, sizeof got);
	CHECK_STR(got, "4|3 4");
	struct store_fts_status st;
	CHECK_INT(store_fts_status(f.a, &st, f.err, sizeof f.err), 0);
	CHECK_INT(st.files, 4);
	CHECK_INT(st.complete, 2);
	CHECK_INT(st.partial, 1);
	CHECK_INT(st.unindexed, 1);

	/* a copy shares the row; expunging one copy keeps it, the last drops it */
	uint32_t uids[1] = {1}, new_uid[1];
	CHECK_INT(store_imap_copy(f.a, f.inbox, uids, 1, f.archive, false, new_uid, NULL, f.err,
				  sizeof f.err),
		  0);
	ask(&f, f.archive, STORE_FTS_BODY, "walrus", got, sizeof got);
	CHECK_STR(got, "1|");
	bool done[1];
	CHECK_INT(store_imap_expunge(f.a, f.inbox, uids, 1, done, NULL, f.err, sizeof f.err), 0);
	CHECK_INT(store_fts_status(f.a, &st, f.err, sizeof f.err), 0);
	CHECK_INT(st.complete, 2);
	CHECK_INT(store_imap_expunge(f.a, f.archive, new_uid, 1, done, NULL, f.err, sizeof f.err),
		  0);
	CHECK_INT(store_fts_status(f.a, &st, f.err, sizeof f.err), 0);
	CHECK_INT(st.files, 3);
	CHECK_INT(st.complete, 1);

	/* rebuild: every file indexed at the current bound */
	uint64_t n = 0;
	CHECK_INT(store_fts_rebuild(f.a, 0, &n, f.err, sizeof f.err), 0);
	CHECK_INT(n, 3);
	ask(&f, f.inbox, STORE_FTS_BODY, "walrus", got, sizeof got);
	CHECK_STR(got, "3 4|");
	CHECK_INT(store_fts_status(f.a, &st, f.err, sizeof f.err), 0);
	CHECK_INT(st.complete, 3);
	CHECK_INT(st.unindexed + st.partial + st.failed, 0);

	/* a database made before the index: at its next open every file is
	 * pending (searched in the file) until a rebuild */
	char dbpath[PATH_MAX];
	snprintf(dbpath, sizeof dbpath, "%s/accounts/01/1/account.db", f.dir);
	store_close(&f.s);
	sqlite3 *h = NULL;
	CHECK_INT(sqlite3_open(dbpath, &h), SQLITE_OK);
	CHECK_INT(sqlite3_exec(h,
			       "DROP TRIGGER fts_docs_gone; DROP TRIGGER fts_pending_add;"
			       "DROP TABLE fts_pending; DROP TABLE fts_docs; DROP TABLE fts_text;",
			       NULL, NULL, NULL),
		  SQLITE_OK);
	sqlite3_close(h);
	f.s = store_open(f.dir, f.err, sizeof f.err);
	CHECK(f.s != NULL);
	CHECK_INT(store_account_open(f.s, "u@example.test", &f.a), 1);
	ask(&f, f.inbox, STORE_FTS_BODY, "walrus", got, sizeof got);
	CHECK_STR(got, "|2 3 4");
	CHECK_INT(store_fts_status(f.a, &st, f.err, sizeof f.err), 0);
	CHECK_INT(st.unindexed, 3);
	CHECK_INT(store_fts_rebuild(f.a, 0, &n, f.err, sizeof f.err), 0);
	ask(&f, f.inbox, STORE_FTS_BODY, "walrus", got, sizeof got);
	CHECK_STR(got, "3 4|");

	/* rebuilt with indexing off: the files are pending again, not lost */
	store_set_fts_max_text(f.s, 0);
	CHECK_INT(store_fts_rebuild(f.a, 0, &n, f.err, sizeof f.err), 0);
	ask(&f, f.inbox, STORE_FTS_BODY, "walrus", got, sizeof got);
	CHECK_STR(got, "|2 3 4");

	store_close(&f.s);
	nftw(f.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
