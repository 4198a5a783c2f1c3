/*
 * store-jmapquery.c - what JMAP Email/query and SearchSnippet/get read
 * (store.h, "JMAP query"): every Email of the account with what its
 * copies say (one query over messages, in file id order), the decoded
 * header text the IMAP header cache holds for them (store-imap.c), and
 * the full-text index (store-fts.c) asked by message file instead of by
 * mailbox and uid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store-private.h"
#include "xalloc.h"

void store_jmapq_emails_free(struct store_jmapq_email *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++) {
		free(v[i].keywords);
		free(v[i].mailboxes);
		free(v[i].headers);
	}
	free(v);
}

bool store_jmapq_keyword_in(const char *list, const char *kw)
{
	return store_name_keyword_in(list, kw, strlen(kw));
}

/* Reads the rows of st (file_id, thread_id, size, internaldate, flags,
 * keywords, mailbox_id, in file id order) into Emails. */
static int read_emails(struct store_db *db, sqlite3_stmt *st, struct store_jmapq_email **out,
		       size_t *n, char *err, size_t errsz)
{
	size_t cap = 0;
	int rc;
	struct store_jmapq_email *e = NULL;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *fid = (const char *)sqlite3_column_text(st, 0);
		if (fid == NULL)
			continue;
		if (e == NULL || strcmp(e->file_id, fid) != 0) {
			if (*n == cap) {
				cap = cap ? cap * 2 : 256;
				*out = xreallocarray(*out, cap, sizeof **out);
			}
			e = &(*out)[(*n)++];
			memset(e, 0, sizeof *e);
			store_db_column_text(st, 0, e->file_id, sizeof e->file_id);
			e->thread_id = sqlite3_column_int64(st, 1);
			e->size = (uint64_t)sqlite3_column_int64(st, 2);
			e->received = sqlite3_column_int64(st, 3);
			e->keywords = xstrdup("");
		}
		int64_t date = sqlite3_column_int64(st, 3);
		if (date < e->received)
			e->received = date;
		e->flags |= (unsigned)sqlite3_column_int64(st, 4);
		const char *kw = (const char *)sqlite3_column_text(st, 5);
		char merged[STORE_KEYWORDS_MAX], why[64];
		/* copies normally agree; a union too long keeps what fits */
		if (kw != NULL && *kw &&
		    store_name_keywords_merge(e->keywords, 1, kw, merged, why, sizeof why) == 0 &&
		    strcmp(merged, e->keywords) != 0) {
			free(e->keywords);
			e->keywords = xstrdup(merged);
		}
		int64_t mb = sqlite3_column_int64(st, 6);
		if (e->n_mailboxes == 0 || e->mailboxes[e->n_mailboxes - 1] != mb) {
			e->mailboxes =
			    xreallocarray(e->mailboxes, e->n_mailboxes + 1, sizeof *e->mailboxes);
			e->mailboxes[e->n_mailboxes++] = mb;
		}
	}
	if (rc != SQLITE_DONE)
		store_db_error(db, "listing the Emails", err, errsz);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Joins the cached header texts (file id order) to the Emails. */
static int read_headers(struct store_db *db, struct store_jmapq_email *v, size_t n, char *err,
			size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT file_id, headers FROM imap_cache"
					 " WHERE headers IS NOT NULL ORDER BY file_id",
					 err, errsz);
	if (st == NULL)
		return -1;
	size_t i = 0;
	int rc;
	while (i < n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *fid = (const char *)sqlite3_column_text(st, 0);
		if (fid == NULL)
			continue;
		while (i < n && strcmp(v[i].file_id, fid) < 0)
			i++;
		if (i == n || strcmp(v[i].file_id, fid) != 0)
			continue;
		const void *h = sqlite3_column_blob(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);
		v[i].headers = xmemdup0(h != NULL ? h : "", len);
		v[i].headers_len = len;
		i++;
	}
	if (i < n && rc != SQLITE_DONE) {
		store_db_error(db, "reading the header cache", err, errsz);
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	return 0;
}

int store_jmapq_emails(struct store_account *a, bool headers, struct store_jmapq_email **out,
		       size_t *n, char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin_read(db, err, errsz) < 0)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT file_id, thread_id, size, internaldate, flags,"
					 " keywords, mailbox_id FROM messages"
					 " ORDER BY file_id, mailbox_id",
					 err, errsz);
	int r = st == NULL ? -1 : read_emails(db, st, out, n, err, errsz);
	if (r == 0 && headers)
		r = read_headers(db, *out, *n, err, errsz);
	store_db_rollback(db);
	if (r < 0) {
		store_jmapq_emails_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return r;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* The file ids of st's rows (column 0), sorted, into a new array. */
static int list_ids(struct store_db *db, sqlite3_stmt *st, char (**ids)[25], size_t *n, char *err,
		    size_t errsz)
{
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*ids = xreallocarray(*ids, cap, sizeof **ids);
		}
		store_db_column_text(st, 0, (*ids)[(*n)++], sizeof **ids);
	}
	if (rc != SQLITE_DONE)
		store_db_error(db, "searching the full-text index", err, errsz);
	sqlite3_reset(st);
	if (*n > 1)
		qsort(*ids, *n, sizeof **ids, cmp_id);
	return rc == SQLITE_DONE ? 0 : -1;
}

int store_jmapq_fts(struct store_account *a, struct store_jmapq_fts *q, size_t n_q,
		    char (**unsure)[25], size_t *n_unsure, char *err, size_t errsz)
{
	*unsure = NULL;
	*n_unsure = 0;
	for (size_t i = 0; i < n_q; i++) {
		q[i].ids = NULL;
		q[i].n = 0;
	}
	struct store_db *db = store_account_db(a, err, errsz);
	/* one read transaction: the lists agree with each other */
	if (db == NULL || store_db_begin_read(db, err, errsz) < 0)
		return -1;
	int r = 0;
	for (size_t i = 0; r == 0 && i < n_q; i++) {
		struct buf m = BUF_INIT;
		if (!store_fts_needle_ok(q[i].needle)) {
			store_err(err, errsz, "search string not indexable");
			r = -1;
			break;
		}
		if (store_fts_match_string(q[i].field, q[i].needle, &m, err, errsz) < 0) {
			r = -1;
			break;
		}
		sqlite3_stmt *st = store_db_stmt(db,
						 "SELECT d.file_id FROM fts_text t"
						 " CROSS JOIN fts_docs d ON d.docid = t.rowid"
						 " WHERE fts_text MATCH ?1",
						 err, errsz);
		if (st == NULL) {
			buf_free(&m);
			r = -1;
			break;
		}
		sqlite3_bind_text(st, 1, m.data, (int)m.len, SQLITE_STATIC);
		r = list_ids(db, st, &q[i].ids, &q[i].n, err, errsz);
		buf_free(&m);
	}
	if (r == 0) {
		sqlite3_stmt *st = store_db_stmt(db, "SELECT file_id FROM fts_pending", err, errsz);
		r = st == NULL ? -1 : list_ids(db, st, unsure, n_unsure, err, errsz);
	}
	store_db_rollback(db);
	if (r < 0) {
		free(*unsure);
		*unsure = NULL;
		*n_unsure = 0;
		for (size_t i = 0; i < n_q; i++) {
			free(q[i].ids);
			q[i].ids = NULL;
			q[i].n = 0;
		}
	}
	return r;
}
