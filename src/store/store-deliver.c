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
 * account for the whole batch, where one message each costs two).  In a
 * worker (commit threads running, store-commit.c), a batch that spans
 * several accounts prepares their transactions here one after the other
 * and runs their syncs and commits in parallel on the commit threads, so
 * 20 accounts cost about one sync round instead of 20 in a row.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "metrics.h"
#include "store-private.h"
#include "xalloc.h"

/* Accounts whose commits one parallel round of a batch runs: one per
 * thread, so that no account holds its write lock while it waits for a
 * thread (another worker may be waiting for that lock). */
#define PARALLEL_ACCOUNTS STORE_COMMIT_THREADS

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

/* Everything of an account's delivery up to its commit: links p[0..n)
 * (all for account id) into msg/, syncs msg/ when sync_dir (else the
 * caller's commit does), and inserts the rows in a transaction left open.
 * 1: *ap's transaction is open with the rows; 0: nothing linked (each
 * item's status says); -1: failed, nothing of it stays.  *partial is set
 * when some item could not be linked. */
static int deliver_prepare(struct store *s, int64_t id, struct pending *p, size_t n, bool sync_dir,
			   struct store_account **ap, bool *partial, char *err, size_t errsz)
{
	struct store_account *a;
	*partial = false;
	int r = store_account_open_id(s, id, &a);
	if (r <= 0) {
		store_err(err, errsz,
			  r == 0 ? "account %lld does not exist" : "cannot open account %lld",
			  (long long)id);
		return -1;
	}
	*ap = a;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	size_t n_linked = 0;
	for (size_t i = 0; i < n; i++) {
		if (store_message_link(a, p[i].d->path, p[i].file_id, &p[i].created, err, errsz) <
		    0) {
			*partial = true; /* this item only */
			continue;
		}
		p[i].linked = true;
		n_linked++;
	}
	if (n_linked == 0)
		return 0;
	/* the index text, before the write lock is taken (store-fts.c) */
	struct store_fts_doc *docs = xcalloc(n, sizeof *docs);
	for (size_t i = 0; i < n; i++)
		if (p[i].linked)
			store_fts_prepare(a, p[i].d->path, &docs[i]);
	struct store_quota_mark qm;
	if ((sync_dir && store_message_sync(a, err, errsz) < 0) ||
	    store_db_begin(db, err, errsz) < 0)
		goto fail;
	if (store_quota_begin(a, db, &qm, err, errsz) < 0)
		goto rollback;
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
						       &mailbox, err, errsz)) < 0)
			goto rollback;
		if (found == 0)
			mailbox = a->inbox_id;
		p[i].d->filed = found > 0;
		uint64_t modseq;
		if (store_account_next_modseq(db, &modseq, err, errsz) < 0 ||
		    store_message_insert(a, db, mailbox, &m, modseq, err, errsz) < 0)
			goto rollback;
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
	store_fts_docs_free(docs, n);
	return 1;
rollback:
	store_db_rollback(db);
fail:
	store_fts_docs_free(docs, n);
	for (size_t i = 0; i < n; i++) {
		if (p[i].created)
			store_message_unlink(a, p[i].file_id);
		p[i].created = p[i].linked = false;
	}
	return -1;
}

/* After the commit of a prepared account (committed: 0 durable, -1 not,
 * rolled back): the items' status, the subscribers, or the files go. */
static int deliver_finish(struct store_account *a, struct pending *p, size_t n, int committed)
{
	if (committed < 0) {
		for (size_t i = 0; i < n; i++) {
			if (p[i].created)
				store_message_unlink(a, p[i].file_id);
			p[i].created = p[i].linked = false;
		}
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i].linked)
			p[i].d->status = 0;
		metrics_add(M_DELIVERED_LOCAL, p[i].linked);
	}
	store_notify(a->s, a->id);
	return 0;
}

/* Delivers items p[0..n), all for account id, with one sync and one
 * transaction.  Sets each item's status; 0 if all were delivered. */
static int deliver_account(struct store *s, int64_t id, struct pending *p, size_t n, char *err,
			   size_t errsz)
{
	struct store_account *a = NULL;
	bool partial;
	int r = deliver_prepare(s, id, p, n, true, &a, &partial, err, errsz);
	if (r <= 0)
		return r < 0 ? -1 : partial ? -1 : 0;
	int c = store_db_commit(&a->db, err, errsz);
	if (deliver_finish(a, p, n, c) < 0)
		return -1;
	return partial ? -1 : 0;
}

/* The accounts of a sorted batch, k of them from group[], with their
 * rows prepared one after the other on this thread and their commits
 * (each after its msg/ sync) run in parallel on the commit threads: the
 * batch costs about one sync round, not one per account.  Locks are taken
 * in account order (the batch is sorted), like every batch does, so two
 * workers never wait for each other in a cycle. */
static int deliver_parallel(struct store *s, struct pending *p, size_t n_p, char *err, size_t errsz)
{
	size_t n_groups = 0;
	for (size_t i = 0; i < n_p; i++)
		if (i == 0 || p[i].d->account_id != p[i - 1].d->account_id)
			n_groups++;
	size_t *first = xcalloc(n_groups + 1, sizeof *first);
	struct store_account **acct = xcalloc(n_groups, sizeof *acct);
	struct store_account **open = xcalloc(n_groups, sizeof *open);
	size_t *open_group = xcalloc(n_groups, sizeof *open_group);
	int *rc = xcalloc(n_groups, sizeof *rc);
	char(*errs)[256] = xcalloc(n_groups, sizeof *errs);
	int ret = 0;
	size_t g = 0, n_open = 0;
	for (size_t i = 0; i < n_p; i++)
		if (i == 0 || p[i].d->account_id != p[i - 1].d->account_id)
			first[g++] = i;
	first[n_groups] = n_p;
	char e[256];
	for (g = 0; g < n_groups; g++) {
		bool partial;
		struct pending *pg = p + first[g];
		size_t k = first[g + 1] - first[g];
		int r = deliver_prepare(s, pg[0].d->account_id, pg, k, false, &acct[g], &partial, e,
					sizeof e);
		if (r < 0 || partial) {
			if (ret == 0)
				store_err(err, errsz, "%s", e);
			ret = -1;
		}
		if (r > 0) {
			open[n_open] = acct[g];
			open_group[n_open++] = g;
		}
	}
	if (n_open > 0 && store_commit_run_all(open, n_open, rc, errs) < 0) {
		for (size_t i = 0; i < n_open; i++) /* no threads: here, one by one */
			rc[i] = store_message_sync(open[i], errs[i], sizeof errs[i]) < 0 ||
					store_db_commit(&open[i]->db, errs[i], sizeof errs[i]) < 0
				    ? -1
				    : 0;
	}
	for (size_t i = 0; i < n_open; i++) {
		g = open_group[i];
		if (rc[i] < 0 && !sqlite3_get_autocommit(open[i]->db.h))
			store_db_rollback(&open[i]->db);
		if (deliver_finish(open[i], p + first[g], first[g + 1] - first[g], rc[i]) < 0) {
			if (ret == 0)
				store_err(err, errsz, "%s", errs[i]);
			ret = -1;
		}
	}
	free(first);
	free(acct);
	free(open);
	free(open_group);
	free(rc);
	free(errs);
	return ret;
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
	bool several = n_p > 1 && p[0].d->account_id != p[n_p - 1].d->account_id;
	if (several && s->pool != NULL) {
		/* Slices of at most PARALLEL_ACCOUNTS accounts, fewer than the
		 * open databases the store keeps: an account whose transaction
		 * is open must not be closed to open another. */
		size_t max_groups = PARALLEL_ACCOUNTS;
		if (s->max_open <= max_groups)
			max_groups = s->max_open > 1 ? s->max_open - 1 : 1;
		for (size_t i = 0; i < n_p;) {
			size_t k = i, groups = 0;
			while (k < n_p) {
				if (k == i || p[k].d->account_id != p[k - 1].d->account_id) {
					if (groups == max_groups)
						break;
					groups++;
				}
				k++;
			}
			if (deliver_parallel(s, p + i, k - i, e, sizeof e) < 0) {
				if (ret == 0)
					store_err(err, errsz, "%s", e);
				ret = -1;
			}
			i = k;
		}
		n_p = 0;
	}
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
