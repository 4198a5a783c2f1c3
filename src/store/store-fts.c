/*
 * store-fts.c - the full-text index of an account (SQLite FTS5, trigram
 * tokenizer), which answers IMAP SEARCH BODY and TEXT without reading the
 * message files (docs/imap.md "Full-text index").
 *
 * What is indexed, per message file (copies of a message share their file,
 * so they share one index row): the text SEARCH compares, exactly as the
 * scan of src/imap/imap-search.c computes it, case-folded with
 * sortkey_fold: column hdr holds mime_search_header(t, "") (every header
 * field, "Name: value" lines, RFC 2047-decoded), column body holds
 * mime_search_text(t) (decoded text parts, then attachment file names).  The
 * tokenizer is "trigram case_sensitive 1": the text is folded already, and
 * folding it a second, different way (SQLite's) would change the answers.
 *
 * Why the answers are the scan's, exactly: a phrase query of n >= 3
 * characters matches a row whose column holds those characters
 * consecutively, i.e. a substring.  That is a byte substring when both
 * sides are UTF-8 that SQLite's decoder reads one-to-one; so a text that
 * is not such UTF-8 (invalid sequences, surrogates, overlong forms, NUL,
 * U+FFFE/U+FFFF, which SQLite reads as U+FFFD) is not indexed (state
 * FAILED: searched in the file), and such a needle, or one shorter than 3
 * characters, is not asked of the index (imap-search.c scans).
 *
 * States (fts_docs.state): COMPLETE, the row answers alone; PARTIAL, the
 * text was cut at the account's index_max_text: a hit is a hit, a miss is
 * checked in the file; FAILED, nothing indexed (not UTF-8, unreadable,
 * unparsable, or an SQLite error): searched in the file.  A message file
 * without a row (delivered before the index existed, or by a path that
 * does not feed it) is searched in the file too, until `tern index
 * rebuild`.  An index error never fails a delivery or an APPEND: the row
 * is written under a savepoint, rolled back alone on error.
 *
 * The row goes away with the last message that refers to its file (the
 * trigger fts_docs_gone), in the transaction that deletes it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "mime.h"
#include "sortkey.h"
#include "store-private.h"
#include "xalloc.h"

enum { FTS_COMPLETE = 0, FTS_PARTIAL = 1, FTS_FAILED = 2 };

/* Message files indexed per transaction by store_fts_rebuild. */
#define REBUILD_BATCH 64
/* Largest message file read for indexing (larger: FAILED, scanned). */
#define FTS_FILE_MAX ((size_t)256 * 1024 * 1024)

static const char fts_ddl[] =
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts_text USING fts5("
    " hdr, body, tokenize = 'trigram case_sensitive 1');"
    /* docid is the fts_text rowid (no fts_text row when FAILED) */
    "CREATE TABLE IF NOT EXISTS fts_docs ("
    " docid INTEGER PRIMARY KEY,"
    " file_id TEXT NOT NULL UNIQUE,"
    " state INTEGER NOT NULL);"
    /* the files without a COMPLETE row, whichever path stored them (so a
     * search lists its unsure messages without probing every message) */
    "CREATE TABLE IF NOT EXISTS fts_pending (file_id TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TRIGGER IF NOT EXISTS fts_pending_add AFTER INSERT ON messages"
    " WHEN NOT EXISTS (SELECT 1 FROM fts_docs WHERE file_id = NEW.file_id AND state = 0)"
    " BEGIN INSERT OR IGNORE INTO fts_pending (file_id) VALUES (NEW.file_id); END;"
    "CREATE TRIGGER IF NOT EXISTS fts_docs_gone AFTER DELETE ON messages"
    " WHEN NOT EXISTS (SELECT 1 FROM messages WHERE file_id = OLD.file_id) BEGIN"
    " DELETE FROM fts_text WHERE rowid ="
    "  (SELECT docid FROM fts_docs WHERE file_id = OLD.file_id);"
    " DELETE FROM fts_docs WHERE file_id = OLD.file_id;"
    " DELETE FROM fts_pending WHERE file_id = OLD.file_id;"
    " END;";

/* 1 if the database has fts_pending, 0 not, -1 error. */
static int has_pending(struct store_db *db, char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->h,
			       "SELECT 1 FROM sqlite_master WHERE type = 'table'"
			       " AND name = 'fts_pending'",
			       -1, &st, NULL) != SQLITE_OK) {
		store_db_error(db, "reading the schema", err, errsz);
		return -1;
	}
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		store_db_error(db, "reading the schema", err, errsz);
		return -1;
	}
	return rc == SQLITE_ROW;
}

/* At each open (CREATE ... IF NOT EXISTS).  A database made before the
 * index gets the tables, and every file it holds goes into fts_pending
 * (not indexed: searched in the file until store_fts_rebuild), under the
 * write lock, so that two processes opening it at once do this once. */
int store_fts_schema(struct store_db *db, char *err, size_t errsz)
{
	int r = has_pending(db, err, errsz);
	if (r != 0)
		return r < 0 ? -1
			     : store_db_exec_ddl(db, fts_ddl, "creating the full-text index", err,
						 errsz);
	if (store_db_begin(db, err, errsz) < 0)
		return -1;
	r = has_pending(db, err, errsz);
	if (r == 0 &&
	    (store_db_exec_ddl(db, fts_ddl, "creating the full-text index", err, errsz) < 0 ||
	     store_db_exec_ddl(db,
			       "INSERT OR IGNORE INTO fts_pending (file_id)"
			       " SELECT file_id FROM messages m WHERE NOT EXISTS"
			       " (SELECT 1 FROM fts_docs d WHERE d.file_id = m.file_id"
			       " AND d.state = 0);",
			       "listing the messages to index", err, errsz) < 0))
		r = -1;
	if (r < 0) {
		store_db_rollback(db);
		return -1;
	}
	return store_db_commit(db, err, errsz);
}

void store_set_fts_max_text(struct store *s, size_t max)
{
	s->fts_max_text = max;
	s->fts_max_set = true;
	store_indexer_set_max_text(s, max);
}

static size_t max_text(const struct store *s)
{
	return s->fts_max_set ? s->fts_max_text : STORE_FTS_MAX_TEXT_DEFAULT;
}

/* ------------------------------------------------------------ text */

/* Length of the UTF-8 sequence at p[0..n) that SQLite decodes to exactly
 * one code point of its own (see the top), or 0. */
static size_t strict_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c != 0 && c < 0x80)
		return 1;
	size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	uint32_t cp = c & (0x7Fu >> len);
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3Fu);
	}
	static const uint32_t lowest[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < lowest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
	    (cp & 0xFFFFFFFEu) == 0xFFFE)
		return 0;
	return len;
}

/* Code points in p[0..n), or SIZE_MAX if it is not strict UTF-8. */
static size_t strict_chars(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, chars = 0;
	while (i < n) {
		size_t l = strict_seq(u + i, n - i);
		if (l == 0)
			return SIZE_MAX;
		i += l;
		chars++;
	}
	return chars;
}

bool store_fts_needle_ok(const char *needle)
{
	size_t c = strict_chars(needle, strlen(needle));
	return c != SIZE_MAX && c >= 3;
}

/* Cuts b to at most max octets, at a character boundary. */
static void cut_utf8(struct buf *b, size_t max)
{
	if (b->len <= max)
		return;
	size_t n = max;
	while (n > 0 && ((unsigned char)b->data[n] & 0xC0) == 0x80)
		n--;
	b->len = n;
	b->data[n] = '\0';
}

void store_fts_doc_free(struct store_fts_doc *d)
{
	buf_free(&d->hdr);
	buf_free(&d->body);
	memset(d, 0, sizeof *d);
}

void store_fts_docs_free(struct store_fts_doc *docs, size_t n)
{
	for (size_t i = 0; docs != NULL && i < n; i++)
		store_fts_doc_free(&docs[i]);
	free(docs);
}

void store_fts_extract(const char *msg, size_t len, size_t max, struct store_fts_doc *d)
{
	memset(d, 0, sizeof *d);
	d->ready = true;
	d->state = FTS_FAILED;
	d->why = "the message cannot be parsed";
	struct mime_tree *t = mime_parse(msg, len);
	if (t == NULL)
		return;
	struct buf raw = BUF_INIT;
	buf_init(&d->hdr, 0);
	buf_init(&d->body, 0);
	int r = mime_search_header(t, "", &raw);
	if (r == 0)
		r = sortkey_fold(raw.data ? raw.data : "", raw.len, &d->hdr);
	buf_reset(&raw);
	if (r == 0)
		r = mime_search_text(t, &raw);
	if (r == 0)
		r = sortkey_fold(raw.data ? raw.data : "", raw.len, &d->body);
	buf_free(&raw);
	mime_tree_free(&t);
	if (r < 0) {
		d->why = "the text does not fit in memory";
		goto failed;
	}
	if (strict_chars(buf_cstr(&d->hdr), d->hdr.len) == SIZE_MAX ||
	    strict_chars(buf_cstr(&d->body), d->body.len) == SIZE_MAX) {
		d->why = "the decoded text is not UTF-8";
		goto failed;
	}
	d->state = FTS_COMPLETE;
	d->why = NULL;
	if (d->hdr.len + d->body.len > max) {
		d->state = FTS_PARTIAL;
		if (d->hdr.len >= max) {
			cut_utf8(&d->hdr, max);
			buf_reset(&d->body);
		} else {
			cut_utf8(&d->body, max - d->hdr.len);
		}
	}
	return;
failed:
	buf_free(&d->hdr);
	buf_free(&d->body);
}

void store_fts_prepare_path(const char *path, size_t max, struct store_fts_doc *d)
{
	memset(d, 0, sizeof *d);
	if (max == 0)
		return; /* indexing off: not ready, no row (searched in the file) */
	size_t len;
	char *msg = fsutil_read_file(path, FTS_FILE_MAX, &len);
	if (msg == NULL) {
		d->ready = true;
		d->state = FTS_FAILED;
		d->why = errno == EFBIG ? "the message file is too large" : "cannot read the file";
		return;
	}
	store_fts_extract(msg, len, max, d);
	free(msg);
}

void store_fts_prepare(struct store_account *a, const char *path, struct store_fts_doc *d)
{
	size_t max = max_text(a->s);
	if (max != 0 && store_indexer_defers(a->s)) {
		memset(d, 0, sizeof *d); /* the indexer's, after the commit */
		return;
	}
	store_fts_prepare_path(path, max, d);
}

size_t store_fts_max_text(const struct store *s)
{
	return max_text(s);
}

/* ------------------------------------------------------------ rows */

static int run_sql(struct store_db *db, const char *sql, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db, sql, err, errsz);
	return st == NULL ? -1 : store_db_run(db, st, err, errsz);
}

/* Writes d's rows for file_id (none if the file has a row already, or no
 * message refers to it any more).  -1 on an SQLite error. */
static int put_rows(struct store_db *db, const char *file_id, const struct store_fts_doc *d,
		    char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT EXISTS (SELECT 1 FROM messages WHERE file_id = ?1)"
					 " AND NOT EXISTS (SELECT 1 FROM fts_docs WHERE file_id = ?1)",
					 err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, file_id);
	int rc = sqlite3_step(st);
	int want = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	if (want < 0)
		store_db_error(db, "checking the full-text index", err, errsz);
	sqlite3_reset(st);
	if (want <= 0)
		return want;
	st = store_db_stmt(db, "INSERT INTO fts_docs (file_id, state) VALUES (?1, ?2)", err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, file_id);
	sqlite3_bind_int(st, 2, d->state);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	sqlite3_int64 docid = sqlite3_last_insert_rowid(db->h);
	st = store_db_stmt(db,
			   d->state == FTS_COMPLETE
			       ? "DELETE FROM fts_pending WHERE file_id = ?1"
			       : "INSERT OR IGNORE INTO fts_pending (file_id) VALUES (?1)",
			   err, errsz);
	if (st == NULL)
		return -1;
	store_db_bind_text(st, 1, file_id);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	if (d->state == FTS_FAILED)
		return 0;
	st = store_db_stmt(db, "INSERT INTO fts_text (rowid, hdr, body) VALUES (?1, ?2, ?3)", err,
			   errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, docid);
	sqlite3_bind_text(st, 2, d->hdr.data ? d->hdr.data : "", (int)d->hdr.len, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, d->body.data ? d->body.data : "", (int)d->body.len, SQLITE_STATIC);
	return store_db_run(db, st, err, errsz);
}

void store_fts_put(struct store_account *a, struct store_db *db, const char *file_id,
		   const struct store_fts_doc *d)
{
	(void)store_fts_put_id(a->id, db, file_id, d);
}

bool store_fts_put_id(int64_t account_id, struct store_db *db, const char *file_id,
		      const struct store_fts_doc *d)
{
	if (!d->ready)
		return true;
	char err[256] = "";
	if (d->state == FTS_FAILED)
		log_warn("action=index account=%lld file=%s result=unindexed reason=\"%s\"",
			 (long long)account_id, file_id, d->why ? d->why : "unknown");
	if (run_sql(db, "SAVEPOINT fts", err, sizeof err) < 0) {
		log_warn("action=index account=%lld file=%s result=unindexed error=\"%s\"",
			 (long long)account_id, file_id, err);
		return false;
	}
	bool ok = true;
	if (put_rows(db, file_id, d, err, sizeof err) < 0) {
		ok = false;
		log_warn("action=index account=%lld file=%s result=unindexed error=\"%s\"",
			 (long long)account_id, file_id, err);
		(void)run_sql(db, "ROLLBACK TO fts", NULL, 0);
		/* the mark, so that status counts it and rebuild retries it */
		struct store_fts_doc failed = {.ready = true, .state = FTS_FAILED};
		if (put_rows(db, file_id, &failed, NULL, 0) < 0)
			(void)run_sql(db, "ROLLBACK TO fts", NULL, 0);
	}
	(void)run_sql(db, "RELEASE fts", NULL, 0);
	return ok;
}

/* ------------------------------------------------------------ search */

struct uid_list {
	uint32_t *v;
	size_t n, cap;
};

static int list_uids(struct store_db *db, sqlite3_stmt *st, struct uid_list *l, char *err,
		     size_t errsz)
{
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 64;
			l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
		}
		l->v[l->n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE)
		store_db_error(db, "searching the full-text index", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_fts_match_string(enum store_fts_field field, const char *needle, struct buf *m,
			   char *err, size_t errsz)
{
	/* an FTS5 string: the needle in double quotes, its quotes doubled */
	int br = buf_puts(m, field == STORE_FTS_BODY ? "body : \"" : "\"");
	for (const char *p = needle; *p && br == 0; p++)
		br = *p == '"' ? buf_puts(m, "\"\"") : buf_putc(m, *p);
	if (br < 0 || buf_putc(m, '"') < 0) {
		buf_free(m);
		store_err(err, errsz, "search string too long");
		return -1;
	}
	return 0;
}

/* The uids of mailbox_id in lo..hi whose indexed text holds q's needle. */
static int search_one(struct store_db *db, int64_t mailbox_id, uint32_t lo, uint32_t hi,
		      struct store_fts_query *q, char *err, size_t errsz)
{
	if (!store_fts_needle_ok(q->needle)) {
		store_err(err, errsz, "search string not indexable");
		return -1;
	}
	struct buf m = BUF_INIT;
	if (store_fts_match_string(q->field, q->needle, &m, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 /* the index first, then its hits' rows: never
					  * the MATCH once per message row */
					 "WITH h AS MATERIALIZED"
					 " (SELECT rowid AS docid FROM fts_text WHERE fts_text MATCH ?1)"
					 " SELECT m.uid FROM h CROSS JOIN fts_docs d ON d.docid = h.docid"
					 " CROSS JOIN messages m ON m.file_id = d.file_id"
					 " WHERE m.mailbox_id = ?2 AND m.uid BETWEEN ?3 AND ?4"
					 " ORDER BY m.uid",
					 err, errsz);
	if (st == NULL) {
		buf_free(&m);
		return -1;
	}
	sqlite3_bind_text(st, 1, m.data, (int)m.len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, mailbox_id);
	sqlite3_bind_int64(st, 3, lo);
	sqlite3_bind_int64(st, 4, hi);
	struct uid_list l = {0};
	int r = list_uids(db, st, &l, err, errsz);
	buf_free(&m);
	q->uids = l.v;
	q->n = l.n;
	return r;
}

int store_fts_search(struct store_account *a, int64_t mailbox_id, uint32_t lo, uint32_t hi,
		     struct store_fts_query *q, size_t n_q, uint32_t **unsure, size_t *n_unsure,
		     char *err, size_t errsz)
{
	*unsure = NULL;
	*n_unsure = 0;
	for (size_t i = 0; i < n_q; i++) {
		q[i].uids = NULL;
		q[i].n = 0;
	}
	struct store_db *db = store_account_db(a, err, errsz);
	/* one read transaction: the lists agree with each other */
	if (db == NULL || store_db_begin_read(db, err, errsz) < 0)
		return -1;
	int r = 0;
	for (size_t i = 0; r == 0 && i < n_q; i++)
		r = search_one(db, mailbox_id, lo, hi, &q[i], err, errsz);
	sqlite3_stmt *st = NULL;
	if (r == 0) {
		st = store_db_stmt(db,
				   "SELECT m.uid FROM fts_pending p"
				   " CROSS JOIN messages m ON m.file_id = p.file_id"
				   " WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3"
				   " ORDER BY m.uid",
				   err, errsz);
		r = st == NULL ? -1 : 0;
	}
	struct uid_list l = {0};
	if (r == 0) {
		sqlite3_bind_int64(st, 1, mailbox_id);
		sqlite3_bind_int64(st, 2, lo);
		sqlite3_bind_int64(st, 3, hi);
		r = list_uids(db, st, &l, err, errsz);
	}
	store_db_rollback(db);
	if (r < 0) {
		free(l.v);
		for (size_t i = 0; i < n_q; i++) {
			free(q[i].uids);
			q[i].uids = NULL;
			q[i].n = 0;
		}
		return -1;
	}
	*unsure = l.v;
	*n_unsure = l.n;
	return 0;
}

/* ------------------------------------------------------ admin (CLI) */

static int count(struct store_db *db, const char *sql, uint64_t *out, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db, sql, err, errsz);
	if (st == NULL)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	else
		store_db_error(db, "counting the full-text index", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int store_fts_status(struct store_account *a, struct store_fts_status *out, char *err,
		     size_t errsz)
{
	memset(out, 0, sizeof *out);
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin_read(db, err, errsz) < 0)
		return -1;
	uint64_t files = 0;
	int r = count(db, "SELECT count(*) FROM messages", &out->messages, err, errsz) < 0 ||
			count(db, "SELECT count(DISTINCT file_id) FROM messages", &files, err,
			      errsz) < 0 ||
			count(db, "SELECT count(*) FROM fts_docs WHERE state = 0", &out->complete,
			      err, errsz) < 0 ||
			count(db, "SELECT count(*) FROM fts_docs WHERE state = 1", &out->partial,
			      err, errsz) < 0 ||
			count(db, "SELECT count(*) FROM fts_docs WHERE state = 2", &out->failed,
			      err, errsz) < 0
		    ? -1
		    : 0;
	store_db_rollback(db);
	if (r < 0)
		return -1;
	out->files = files;
	uint64_t rows = out->complete + out->partial + out->failed;
	out->unindexed = files > rows ? files - rows : 0;
	return 0;
}

/* Re-indexes the files ids[0..n): extraction first, then one
 * transaction that replaces their rows. */
static int rebuild_batch(struct store_account *a, struct store_db *db, char (*ids)[25],
			 size_t n, char *err, size_t errsz)
{
	struct store_fts_doc *docs = xcalloc(n, sizeof *docs);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		if (store_message_path(a, ids[i], path, sizeof path) < 0) {
			docs[i] = (struct store_fts_doc){.ready = true, .state = FTS_FAILED,
							 .why = "invalid file id"};
			continue;
		}
		store_fts_prepare_path(path, max_text(a->s), &docs[i]);
	}
	int ret = -1;
	if (store_db_begin(db, err, errsz) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		static const char *const drop[] = {
		    ("DELETE FROM fts_text WHERE rowid ="
		     " (SELECT docid FROM fts_docs WHERE file_id = ?1)"),
		    "DELETE FROM fts_docs WHERE file_id = ?1",
		    "INSERT OR IGNORE INTO fts_pending (file_id) VALUES (?1)",
		};
		for (size_t k = 0; k < 3; k++) {
			sqlite3_stmt *st = store_db_stmt(db, drop[k], err, errsz);
			if (st == NULL)
				goto rollback;
			store_db_bind_text(st, 1, ids[i]);
			if (store_db_run(db, st, err, errsz) < 0)
				goto rollback;
		}
		store_fts_put(a, db, ids[i], &docs[i]);
	}
	if (store_db_commit(db, err, errsz) < 0)
		goto out;
	ret = 0;
	goto out;
rollback:
	store_db_rollback(db);
out:
	store_fts_docs_free(docs, n);
	return ret;
}

int store_fts_rebuild(struct store_account *a, int64_t mailbox_id, uint64_t *done, char *err,
		      size_t errsz)
{
	*done = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	/* the files to do, listed first (the batches then write) */
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "SELECT DISTINCT file_id FROM messages WHERE ?1 = 0 OR mailbox_id = ?1 ORDER BY file_id",
	    err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	char(*ids)[25] = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			ids = xreallocarray(ids, cap, sizeof *ids);
		}
		store_db_column_text(st, 0, ids[n], sizeof ids[n]);
		n++;
	}
	if (rc != SQLITE_DONE)
		store_db_error(db, "listing message files", err, errsz);
	sqlite3_reset(st);
	int ret = rc == SQLITE_DONE ? 0 : -1;
	for (size_t i = 0; ret == 0 && i < n; i += REBUILD_BATCH) {
		size_t k = n - i < REBUILD_BATCH ? n - i : REBUILD_BATCH;
		ret = rebuild_batch(a, db, ids + i, k, err, errsz);
		if (ret == 0)
			*done += k;
	}
	free(ids);
	return ret;
}
