/*
 * store-deliver.c - local delivery: received message files into the INBOX
 * of recipient accounts.  This is the hot path of SMTP, so it uses the
 * account handles cached by store-account.c (no open() per message) and
 * the prepared statements cached per database.
 *
 * Per account: link the files into msg/ (stored once: every account shares
 * the inode), fsync msg/ once, then one transaction inserts the INBOX rows;
 * only then are they counted as delivered and the account's subscribers
 * notified.  store_deliver does this for one message; store_deliver_batch
 * for many at once (group commit: one folder sync and one WAL sync per
 * account for the whole batch, where one message each costs two).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "metrics.h"
#include "store-private.h"
#include "xalloc.h"

/* One item on its way into an account. */
struct pending {
	struct store_delivery *d;
	const char *file_id;
	uint64_t size;
	bool created; /* this delivery made the msg/ entry */
	bool linked;
};

/* Sets m's flags and keywords from a delivery's space-separated list:
 * system flags by name (any case), other words as keywords when valid;
 * the rest (unknown system flags, bad keywords, past the size) is
 * dropped. */
static void set_flags(struct store_message *m, const char *list)
{
	m->flags = 0;
	m->keywords[0] = '\0';
	for (const char *p = list; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		if (p[0] == '\\') {
			for (size_t i = 0; i < STORE_N_SYSTEM_FLAGS; i++)
				if (strlen(store_system_flags[i].name) == n &&
				    !strncasecmp(store_system_flags[i].name, p, n))
					m->flags |= store_system_flags[i].bit;
		} else if (n < 256) {
			char word[256], kw[STORE_KEYWORDS_MAX], merged[STORE_KEYWORDS_MAX];
			memcpy(word, p, n);
			word[n] = '\0';
			if (store_name_keywords(word, kw, NULL, 0) == 0 &&
			    store_name_keywords_merge(m->keywords, 1, kw, merged, NULL, 0) == 0)
				memcpy(m->keywords, merged, sizeof merged);
		}
		p += n;
	}
}

/* Delivers items p[0..n), all for account id, with one sync and one
 * transaction.  Sets each item's status; 0 if all were delivered. */
static int deliver_account(struct store *s, int64_t id, struct pending *p, size_t n, char *err,
			   size_t errsz)
{
	struct store_account *a;
	int r = store_account_open_id(s, id, &a);
	if (r <= 0) {
		store_err(err, errsz,
			  r == 0 ? "account %lld does not exist" : "cannot open account %lld",
			  (long long)id);
		return -1;
	}
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	size_t n_linked = 0;
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		if (store_message_link(a, p[i].d->path, p[i].file_id, &p[i].created, err, errsz) <
		    0) {
			ret = -1; /* this item only */
			continue;
		}
		p[i].linked = true;
		n_linked++;
	}
	if (n_linked == 0)
		return ret;
	/* the index text, before the write lock is taken (store-fts.c) */
	struct store_fts_doc *docs = xcalloc(n, sizeof *docs);
	for (size_t i = 0; i < n; i++)
		if (p[i].linked)
			store_fts_prepare(a, p[i].d->path, &docs[i]);
	struct store_quota_mark qm;
	if (store_message_sync(a, err, errsz) < 0 || store_db_begin(db, err, errsz) < 0)
		goto fail;
	if (store_quota_begin(a, db, &qm, err, errsz) < 0) {
		store_db_rollback(db);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		if (!p[i].linked)
			continue;
		struct store_message m;
		memset(&m, 0, sizeof m);
		memcpy(m.file_id, p[i].file_id, sizeof m.file_id);
		m.size = p[i].size;
		m.internaldate = (int64_t)p[i].d->internaldate;
		set_flags(&m, p[i].d->flags);
		int64_t mailbox = a->inbox_id;
		int found = 0;
		if (p[i].d->mailbox != NULL &&
		    (found = store_mailbox_delivery_id(db, p[i].d->mailbox, p[i].d->create,
						       &mailbox, err, errsz)) < 0) {
			store_db_rollback(db);
			goto fail;
		}
		if (found == 0)
			mailbox = a->inbox_id;
		p[i].d->filed = found > 0;
		uint64_t modseq;
		if (store_account_next_modseq(db, &modseq, err, errsz) < 0 ||
		    store_message_insert(a, db, mailbox, &m, modseq, err, errsz) < 0) {
			store_db_rollback(db);
			goto fail;
		}
		store_fts_put(a, db, m.file_id, &docs[i]);
		p[i].d->uid = m.uid;
	}
	/* The quota was checked when the mail was accepted (SMTP RCPT):
	 * what is delivered now is kept even over a limit (mail accepted is
	 * never lost: Sieve fileinto, redirects, DSNs), but not silently. */
	char qerr[64];
	if (store_quota_check(a, db, &qm, qerr, sizeof qerr) > 0)
		log_warn("action=deliver account=%lld result=over_quota"
			 " note=\"delivered anyway: accepted mail is kept\"",
			 (long long)id);
	if (store_db_commit(db, err, errsz) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (p[i].linked)
			p[i].d->status = 0;
		metrics_add(M_DELIVERED_LOCAL, p[i].linked);
	}
	store_notify(s, id);
	store_fts_docs_free(docs, n);
	return ret;
fail:
	for (size_t i = 0; i < n; i++) {
		if (p[i].created)
			store_message_unlink(a, p[i].file_id);
		p[i].created = p[i].linked = false;
	}
	store_fts_docs_free(docs, n);
	return -1;
}

int store_deliver(struct store *s, const char *path, const int64_t *ids, size_t n_ids,
		  time_t internaldate, size_t *n_done, char *err, size_t errsz)
{
	if (n_done)
		*n_done = 0;
	uint64_t size;
	if (store_message_file_size(path, &size, err, errsz) < 0)
		return -1;
	char file_id[25];
	store_message_file_id(path, file_id);
	/* Account by account, in order, stopping at the first failure, so
	 * that *n_done describes exactly who has the message. */
	for (size_t i = 0; i < n_ids; i++) {
		struct store_delivery d = {path, ids[i], internaldate, -1,   0,
					   NULL, false,  NULL,         false};
		struct pending p = {&d, file_id, size, false, false};
		if (deliver_account(s, ids[i], &p, 1, err, errsz) < 0)
			return -1;
		if (n_done)
			*n_done = i + 1;
	}
	return 0;
}

static int by_account(const void *x, const void *y)
{
	const struct pending *a = x, *b = y;
	if (a->d->account_id != b->d->account_id)
		return a->d->account_id < b->d->account_id ? -1 : 1;
	/* Keep the caller's order within an account (uids follow it). */
	return a->d < b->d ? -1 : a->d > b->d;
}

int store_deliver_batch(struct store *s, struct store_delivery *d, size_t n, char *err,
			size_t errsz)
{
	if (n == 0)
		return 0;
	struct pending *p = xcalloc(n, sizeof *p);
	char(*ids)[25] = xcalloc(n, sizeof *ids);
	size_t n_p = 0;
	int ret = 0;
	char e[256];
	for (size_t i = 0; i < n; i++) {
		d[i].status = -1;
		d[i].uid = 0;
		/* Items of the same file share its id (stored once). */
		size_t j;
		for (j = 0; j < i; j++) {
			if (strcmp(d[j].path, d[i].path) == 0)
				break;
		}
		if (j < i) {
			memcpy(ids[i], ids[j], sizeof ids[i]);
		} else {
			store_message_file_id(d[i].path, ids[i]);
		}
		uint64_t size;
		if (store_message_file_size(d[i].path, &size, e, sizeof e) < 0) {
			if (ret == 0)
				store_err(err, errsz, "%s", e);
			ret = -1;
			continue;
		}
		p[n_p++] = (struct pending){&d[i], ids[i], size, false, false};
	}
	qsort(p, n_p, sizeof *p, by_account);
	for (size_t i = 0; i < n_p;) {
		size_t k = i + 1;
		while (k < n_p && p[k].d->account_id == p[i].d->account_id)
			k++;
		if (deliver_account(s, p[i].d->account_id, p + i, k - i, e, sizeof e) < 0) {
			if (ret == 0)
				store_err(err, errsz, "%s", e);
			ret = -1;
		}
		i = k;
	}
	free(ids);
	free(p);
	return ret;
}
