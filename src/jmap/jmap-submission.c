/*
 * jmap-submission.c - EmailSubmission/get, /changes, /query,
 * /queryChanges and /set (RFC 8621 7) of urn:ietf:params:jmap:submission
 * (docs/jmap.md "Submission").
 *
 * A create sends the Email as SMTP submission on port 587 would: the
 * same sender rule (store_may_send_as, for every From: address and the
 * envelope's mailFrom), the same recipient resolution (store_resolve:
 * local accounts, aliases, remote addresses relayed) and the same commit
 * (smtp_commit_batch: DKIM-signed queue copy for the remote recipients,
 * Sieve and local delivery for ours, the delivery log), durable before
 * the answer.  The bytes sent are the Email's without its Bcc fields,
 * after our Return-Path and Received lines.  There is no delayed
 * sending (maxDelayedSend 0): undoStatus is "final" at once.
 *
 * An EmailSubmission's id is "S" and the store's row id
 * (store-submission.c); deliveryStatus is read from the queue at each
 * /get, so it follows the queue runner's work.
 */
#include "jmap-submission.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "config.h"
#include "dkim-keys.h"
#include "fsutil.h"
#include "header.h"
#include "jmap-email-set.h"
#include "jmap-json.h"
#include "jmap-mail-util.h"
#include "jmap-mail.h"
#include "jmap-set.h"
#include "log.h"
#include "smtp-commit.h"
#include "smtp-parse.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

static const char *const submission_props[] = {
    "id",         "identityId",     "emailId",    "threadId",   "envelope", "sendAt",
    "undoStatus", "deliveryStatus", "dsnBlobIds", "mdnBlobIds", NULL};

static const struct jmap_mail_ctx *ctx_of(const struct jmap_api_env *env)
{
	return env->methods_ctx;
}

/* "S<digits>": the store id, else 0. */
static int64_t parse_id(const char *s)
{
	return jmap_mail_prefixed_id(s, 'S');
}

static void format_id(int64_t id, char out[32])
{
	snprintf(out, 32, "S%" PRId64, id);
}

static void utc_date(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ------------------------------------------------------ deliveryStatus */

/* The queue's recipients of one queued message. */
struct qrows {
	struct store_queue_rcpt *v;
	size_t n;
};

static int qrow_cb(void *ctx, const struct store_queue_rcpt *r)
{
	struct qrows *q = ctx;
	q->v = xreallocarray(q->v, q->n + 1, sizeof *q->v);
	q->v[q->n++] = *r;
	return 0;
}

/* How far one queued target got: 0 queued, 1 yes, 2 no; its reply. */
static int target_status(const struct qrows *q, const char *target, const char **reply)
{
	for (size_t i = 0; i < q->n; i++) {
		if (strcmp(q->v[i].rcpt, target) != 0)
			continue;
		if (q->v[i].last_reply[0] != '\0')
			*reply = q->v[i].last_reply;
		if (strcmp(q->v[i].state, "delivered") == 0)
			return 1;
		if (strcmp(q->v[i].state, "bounced") == 0 || strcmp(q->v[i].state, "removed") == 0)
			return 2;
		return 0;
	}
	return -1; /* not in the queue (any more): unknown */
}

/* One DeliveryStatus (MDNs are not tracked: displayed "unknown"). */
static json_t *status_json(const char *reply, const char *delivered)
{
	json_t *d = json_object();
	json_object_set_new(d, "smtpReply", json_string(reply));
	json_object_set_new(d, "delivered", json_string(delivered));
	json_object_set_new(d, "displayed", json_string("unknown"));
	return d;
}

/* The DeliveryStatus of every rcptTo address of v (RFC 8621 7). */
static json_t *delivery_status(const struct jmap_api_env *env, const struct store_submission *v)
{
	struct qrows q = {NULL, 0};
	char err[256];
	if (v->queue_id != 0 &&
	    store_queue_rcpts(ctx_of(env)->store, v->queue_id, qrow_cb, &q, err, sizeof err) < 0)
		log_error("jmap action=submission_status queue=%" PRId64 " error=\"%s\"",
			  v->queue_id, err);
	json_t *out = json_object();
	const char *p = v->rcpts;
	while (*p != '\0') {
		size_t len = strcspn(p, "\n");
		const char *tab = memchr(p, '\t', len);
		size_t alen = tab ? (size_t)(tab - p) : len;
		char *addr = xmemdup0(p, alen);
		const char *reply = v->local_reply;
		const char *delivered = "yes";
		if (tab != NULL) {
			/* the worst of its remote targets: queued, then no, then yes */
			char *targets = xmemdup0(tab + 1, len - alen - 1);
			bool queued = false, no = false, unknown = false;
			const char *qreply = NULL, *noreply = NULL, *yesreply = NULL;
			for (char *t = targets; t != NULL && *t != '\0';) {
				char *comma = strchr(t, ',');
				if (comma)
					*comma = '\0';
				const char *r = NULL;
				int st = target_status(&q, t, &r);
				if (st == 0 && !queued)
					queued = true, qreply = r;
				else if (st == 2 && !no)
					no = true, noreply = r;
				else if (st == 1 && yesreply == NULL)
					yesreply = r;
				else if (st < 0)
					unknown = true;
				t = comma ? comma + 1 : NULL;
			}
			if (queued) {
				delivered = "queued";
				reply = qreply ? qreply : v->local_reply;
			} else if (no) {
				delivered = "no";
				reply = noreply ? noreply : v->local_reply;
			} else if (unknown) {
				delivered = "unknown";
			} else {
				reply = yesreply ? yesreply : v->local_reply;
			}
			/* the reply points into q or targets: made a string now */
			json_object_set_new(out, addr, status_json(reply, delivered));
			free(targets);
		} else {
			json_object_set_new(out, addr, status_json(reply, delivered));
		}
		free(addr);
		p += len;
		if (*p == '\n')
			p++;
	}
	free(q.v);
	return out;
}

static json_t *envelope_json(const struct store_submission *v)
{
	json_t *from = json_object();
	json_object_set_new(from, "email", json_string(v->mail_from));
	json_object_set_new(from, "parameters", json_null());
	json_t *to = json_array();
	const char *p = v->rcpts;
	while (*p != '\0') {
		size_t len = strcspn(p, "\n");
		size_t alen = strcspn(p, "\t\n");
		json_t *a = json_object();
		json_object_set_new(a, "email", json_stringn(p, alen));
		json_object_set_new(a, "parameters", json_null());
		json_array_append_new(to, a);
		p += len;
		if (*p == '\n')
			p++;
	}
	json_t *e = json_object();
	json_object_set_new(e, "mailFrom", from);
	json_object_set_new(e, "rcptTo", to);
	return e;
}

static json_t *submission_json(const struct jmap_api_env *env, const struct store_submission *v)
{
	char id[32], date[32];
	json_t *o = json_object();
	format_id(v->id, id);
	json_object_set_new(o, "id", json_string(id));
	snprintf(id, sizeof id, "I%" PRId64, v->identity_id);
	json_object_set_new(o, "identityId", json_string(id));
	snprintf(id, sizeof id, "E%s", v->email_id);
	json_object_set_new(o, "emailId", json_string(id));
	snprintf(id, sizeof id, "T%" PRId64, v->thread_id);
	json_object_set_new(o, "threadId", json_string(id));
	json_object_set_new(o, "envelope", envelope_json(v));
	utc_date(v->send_at, date);
	json_object_set_new(o, "sendAt", json_string(date));
	json_object_set_new(o, "undoStatus", json_string("final"));
	json_object_set_new(o, "deliveryStatus", delivery_status(env, v));
	json_object_set_new(o, "dsnBlobIds", json_array());
	json_object_set_new(o, "mdnBlobIds", json_array());
	return o;
}

/* The records and their state; false with *error.  First each record
 * whose remote recipients were still queued when last seen gets its
 * deliveryStatus from the queue, and a changed one a new modseq (the
 * record is "updated" for /changes, RFC 8621 7), as the mail state is
 * brought up to date before each Mail method. */
static bool load(const struct jmap_api_env *env, struct store_submission **v, size_t *n,
		 char state[24], json_t **error)
{
	char err[256];
	uint64_t st = 0;
	struct store_account *a = ctx_of(env)->account;
	if (store_submission_list(a, v, n, &st, err, sizeof err) < 0) {
		log_error("jmap action=submission_list error=\"%s\"", err);
		*error = jmap_api_error("serverFail", "the store failed");
		return false;
	}
	bool changed = false;
	for (size_t i = 0; i < *n; i++) {
		struct store_submission *s = &(*v)[i];
		if (s->queue_id == 0 ||
		    (s->status[0] != '\0' && strstr(s->status, "\"queued\"") == NULL))
			continue;
		json_t *d = delivery_status(env, s);
		char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(d);
		if (text != NULL && strcmp(text, s->status) != 0) {
			if (store_submission_set_status(a, s->id, text, err, sizeof err) < 0)
				log_error("jmap action=submission_status error=\"%s\"", err);
			changed = true;
		}
		free(text);
	}
	if (changed) {
		store_submission_free(*v, *n);
		if (store_submission_list(a, v, n, &st, err, sizeof err) < 0) {
			log_error("jmap action=submission_list error=\"%s\"", err);
			*error = jmap_api_error("serverFail", "the store failed");
			return false;
		}
	}
	snprintf(state, 24, "%" PRIu64, st);
	return true;
}

static bool submission_state(const struct jmap_api_env *env, char state[24], json_t **error);

/* ------------------------------------------------- EmailSubmission/get */

json_t *jmap_submission_get(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	json_t *ids, *props;
	if (!jmap_mail_get_args(env, args, submission_props, &ids, &props, error))
		return NULL;
	struct store_submission *v;
	size_t n;
	char state[24];
	if (!load(env, &v, &n, state, error))
		return NULL;
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		char id[32];
		format_id(v[i].id, id);
		if (jmap_mail_id_wanted(ids, id))
			json_array_append_new(list,
					      jmap_mail_pick(submission_json(env, &v[i]), props));
	}
	store_submission_free(v, n);
	return jmap_mail_get_result(args, state, list, jmap_mail_not_found(ids, list));
}

/* --------------------------------------------- EmailSubmission/changes */

json_t *jmap_submission_changes(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	uint64_t old, now;
	json_int_t max;
	if (!jmap_mail_changes_args(env, args, &old, &max, error) ||
	    !submission_state(env, NULL, error))
		return NULL;
	struct store_submission_change *ch = NULL;
	size_t n = 0;
	char err[256];
	if (store_submission_changes(ctx_of(env)->account, old, &ch, &n, &now, err, sizeof err) <
	    0) {
		log_error("jmap action=submission_changes error=\"%s\"", err);
		return jmap_mail_fail(error, "serverFail", "the store failed");
	}
	if (old > now) {
		free(ch);
		return jmap_mail_fail(error, "cannotCalculateChanges",
				      "not a state of this server");
	}
	if (!jmap_mail_changes_fit(max, n, error)) {
		free(ch);
		return NULL;
	}
	json_t *created = json_array(), *updated = json_array(), *destroyed = json_array();
	for (size_t i = 0; i < n; i++) {
		char id[32];
		format_id(ch[i].id, id);
		json_array_append_new(ch[i].kind == STORE_SUBMISSION_CREATED     ? created
				      : ch[i].kind == STORE_SUBMISSION_DESTROYED ? destroyed
										 : updated,
				      json_string(id));
	}
	free(ch);
	char state[24];
	snprintf(state, sizeof state, "%" PRIu64, now);
	return jmap_mail_changes_result(args, state, created, updated, destroyed);
}

/* ----------------------------------------------- EmailSubmission/query */

/* Does v match the FilterCondition f (RFC 8621 7.3)? */
static bool cond_match(json_t *f, const struct store_submission *v)
{
	char id[40];
	const struct {
		const char *name;
		char prefix;
	} lists[] = {{"identityIds", 'I'}, {"emailIds", 'E'}, {"threadIds", 'T'}};
	for (size_t l = 0; l < 3; l++) {
		json_t *a = json_object_get(f, lists[l].name);
		if (a == NULL)
			continue;
		if (l == 0)
			snprintf(id, sizeof id, "I%" PRId64, v->identity_id);
		else if (l == 1)
			snprintf(id, sizeof id, "E%s", v->email_id);
		else
			snprintf(id, sizeof id, "T%" PRId64, v->thread_id);
		bool in = false;
		size_t i;
		json_t *x;
		json_array_foreach(a, i, x)
		{
			in = in || strcmp(json_string_value(x), id) == 0;
		}
		if (!in)
			return false;
	}
	json_t *u = json_object_get(f, "undoStatus");
	if (u != NULL && strcmp(json_string_value(u), "final") != 0)
		return false;
	time_t t;
	json_t *b = json_object_get(f, "before");
	if (b != NULL && jmap_set_utc_date(json_string_value(b), &t) && !(v->send_at < (int64_t)t))
		return false;
	json_t *a = json_object_get(f, "after");
	if (a != NULL && jmap_set_utc_date(json_string_value(a), &t) && !(v->send_at >= (int64_t)t))
		return false;
	return true;
}

static bool filter_match(json_t *f, const struct store_submission *v)
{
	json_t *conds;
	int op;
	json_t *err = NULL;
	int k = jmap_mail_filter_operator(f, &conds, &op, &err);
	json_decref(err);
	if (k <= 0)
		return cond_match(f, v);
	size_t i;
	json_t *c;
	size_t hits = 0, n = json_array_size(conds);
	json_array_foreach(conds, i, c)
	{
		hits += filter_match(c, v);
	}
	return op == 0 ? hits == n : op == 1 ? hits > 0 : hits == 0;
}

/* Checks a filter: known properties with the right types, at most 16
 * deep.  False with *error. */
static bool filter_check(json_t *f, int depth, json_t **error)
{
	if (depth > 16 || !json_is_object(f)) {
		jmap_mail_fail(error, "invalidArguments",
			       "filter must be an object, at most 16 deep");
		return false;
	}
	json_t *conds;
	int op;
	int k = jmap_mail_filter_operator(f, &conds, &op, error);
	if (k < 0)
		return false;
	if (k > 0) {
		size_t i;
		json_t *c;
		json_array_foreach(conds, i, c)
		{
			if (!filter_check(c, depth + 1, error))
				return false;
		}
		return true;
	}
	const char *key;
	json_t *v;
	json_object_foreach(f, key, v)
	{
		bool ok;
		if (strcmp(key, "identityIds") == 0 || strcmp(key, "emailIds") == 0 ||
		    strcmp(key, "threadIds") == 0) {
			ok = json_is_array(v);
			size_t i;
			json_t *x;
			json_array_foreach(v, i, x)
			{
				ok = ok && json_is_string(x);
			}
		} else if (strcmp(key, "undoStatus") == 0) {
			const char *s = json_string_value(v);
			ok = s != NULL && (strcmp(s, "pending") == 0 || strcmp(s, "final") == 0 ||
					   strcmp(s, "canceled") == 0);
		} else if (strcmp(key, "before") == 0 || strcmp(key, "after") == 0) {
			time_t t;
			ok = json_is_string(v) && jmap_set_utc_date(json_string_value(v), &t);
		} else {
			jmap_mail_fail(error, "unsupportedFilter", key);
			return false;
		}
		if (!ok) {
			jmap_mail_fail(error, "invalidArguments", key);
			return false;
		}
	}
	return true;
}

struct sort_key {
	int prop; /* 0 emailId, 1 threadId, 2 sentAt */
	bool asc;
};

static int cmp_one(const struct store_submission *a, const struct store_submission *b, int prop)
{
	if (prop == 0)
		return strcmp(a->email_id, b->email_id);
	if (prop == 1)
		return a->thread_id < b->thread_id ? -1 : a->thread_id > b->thread_id;
	return a->send_at < b->send_at ? -1 : a->send_at > b->send_at;
}

/* Sorts idx[0..n) of v by keys (then by id, so the order is stable). */
static void sort_rows(const struct store_submission *v, size_t *idx, size_t n,
		      const struct sort_key *keys, size_t n_keys)
{
	for (size_t i = 1; i < n; i++) {
		size_t x = idx[i], j = i;
		while (j > 0) {
			const struct store_submission *a = &v[idx[j - 1]], *b = &v[x];
			int c = 0;
			for (size_t k = 0; k < n_keys && c == 0; k++) {
				c = cmp_one(a, b, keys[k].prop);
				if (!keys[k].asc)
					c = -c;
			}
			if (c == 0)
				c = a->id < b->id ? -1 : a->id > b->id;
			if (c <= 0)
				break;
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = x;
	}
}

static bool sort_parse(json_t *sort, struct sort_key *keys, size_t *n_keys, json_t **error)
{
	*n_keys = 0;
	if (sort == NULL || json_is_null(sort))
		return true;
	if (!json_is_array(sort) || json_array_size(sort) > 3) {
		jmap_mail_fail(error, "invalidArguments", "sort must be at most 3 Comparators");
		return false;
	}
	size_t i;
	json_t *c;
	json_array_foreach(sort, i, c)
	{
		const char *p = json_string_value(json_object_get(c, "property"));
		json_t *asc = json_object_get(c, "isAscending");
		const char *k;
		json_t *x;
		json_object_foreach(c, k, x)
		{
			if (strcmp(k, "property") != 0 && strcmp(k, "isAscending") != 0 &&
			    strcmp(k, "collation") != 0) {
				jmap_mail_fail(error, "invalidArguments",
					       "unknown Comparator member");
				return false;
			}
		}
		if (p == NULL || (asc != NULL && !json_is_boolean(asc))) {
			jmap_mail_fail(error, "invalidArguments", "a Comparator needs a property");
			return false;
		}
		int prop = strcmp(p, "emailId") == 0    ? 0
			   : strcmp(p, "threadId") == 0 ? 1
			   : strcmp(p, "sentAt") == 0   ? 2
							: -1;
		if (prop < 0) {
			jmap_mail_fail(error, "unsupportedSort", p);
			return false;
		}
		keys[(*n_keys)++] = (struct sort_key){prop, asc == NULL || json_is_true(asc)};
	}
	return true;
}

json_t *jmap_submission_query(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId", "filter",         "sort",
					      "position",  "anchor",         "anchorOffset",
					      "limit",     "calculateTotal", NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	json_t *filter = json_object_get(args, "filter");
	if (filter != NULL && json_is_null(filter))
		filter = NULL;
	if (filter != NULL && !filter_check(filter, 0, error))
		return NULL;
	struct sort_key keys[3];
	size_t n_keys;
	if (!sort_parse(json_object_get(args, "sort"), keys, &n_keys, error))
		return NULL;
	struct jmap_mail_window w;
	if (!jmap_mail_window_args(args, &w, error))
		return NULL;
	json_t *ct = json_object_get(args, "calculateTotal");
	if (ct != NULL && !json_is_boolean(ct))
		return jmap_mail_fail(error, "invalidArguments", "calculateTotal is a Boolean");
	struct store_submission *v;
	size_t n;
	char state[24];
	if (!load(env, &v, &n, state, error))
		return NULL;
	size_t *idx = xcalloc(n + 1, sizeof *idx);
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		if (filter == NULL || filter_match(filter, &v[i]))
			idx[total++] = i;
	sort_rows(v, idx, total, keys, n_keys);
	size_t at = 0;
	int64_t aid = w.anchor != NULL ? parse_id(json_string_value(w.anchor)) : 0;
	while (at < total && v[idx[at]].id != aid)
		at++;
	json_int_t start;
	if (!jmap_mail_window_start(&w, total, at, &start, error)) {
		free(idx);
		store_submission_free(v, n);
		return NULL;
	}
	json_t *ids = json_array();
	for (json_int_t i = start; i < (json_int_t)total && (w.limit < 0 || i - start < w.limit);
	     i++) {
		char id[32];
		format_id(v[idx[i]].id, id);
		json_array_append_new(ids, json_string(id));
	}
	free(idx);
	store_submission_free(v, n);
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set_new(r, "queryState", json_string(state));
	json_object_set_new(r, "canCalculateChanges", json_false());
	json_object_set_new(r, "position",
			    json_integer(start > (json_int_t)total ? (json_int_t)total : start));
	json_object_set_new(r, "ids", ids);
	if (json_is_true(ct))
		json_object_set_new(r, "total", json_integer((json_int_t)total));
	return r;
}

/* RFC 8620 5.6: the server may not keep the old results. */
json_t *jmap_submission_query_changes(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId",       "filter",     "sort",
					      "sinceQueryState", "maxChanges", "upToId",
					      "calculateTotal",  NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	if (!json_is_string(json_object_get(args, "sinceQueryState")))
		return jmap_mail_fail(error, "invalidArguments",
				      "sinceQueryState (String) is required");
	json_t *filter = json_object_get(args, "filter");
	if (filter != NULL && !json_is_null(filter) && !filter_check(filter, 0, error))
		return NULL;
	return jmap_mail_fail(error, "cannotCalculateChanges",
			      "query results are not kept: run EmailSubmission/query again");
}

/* ------------------------------------------------- EmailSubmission/set */

/* One message being sent. */
struct sending {
	char id[25];
	char from[ADDR_PATH_MAX + 1];
	struct smtp_rcpt *rcpts; /* the envelope's rcptTo */
	size_t n_rcpts;
	struct buf rcpt_lines; /* store_submission.rcpts */
	int64_t *local;
	struct smtp_rcpt *local_to;
	char (*local_via)[STORE_VIA_MAX];
	size_t n_local;
	char (*remote)[256];
	unsigned *remote_notify;
	char (*remote_orcpt)[SMTP_DSN_ORCPT_MAX + 1];
	size_t n_remote;
	char spool_path[PATH_MAX];
	int spool_fd;
};

static void sending_free(struct sending *m)
{
	store_spool_drop(&m->spool_fd, m->spool_path);
	free(m->rcpts);
	buf_free(&m->rcpt_lines);
	free(m->local);
	free(m->local_to);
	free(m->local_via);
	free(m->remote);
	free(m->remote_notify);
	free(m->remote_orcpt);
}

/* A SetError with one extra member (takes v). */
static json_t *set_error_with(const char *type, const char *desc, const char *name, json_t *v)
{
	json_t *e = jmap_set_error(type, desc);
	json_object_set_new(e, name, v);
	return e;
}

/* May the user send as address?  NULL yes, else the SetError of type. */
static json_t *may_send(const struct jmap_api_env *env, const char *address, const char *type)
{
	const struct jmap_mail_ctx *c = ctx_of(env);
	int r = store_may_send_as(c->store, store_account_id(c->account), address,
				  c->cfg->recipient_delimiter, c->cfg->submission_domain_senders);
	if (r < 0)
		return jmap_set_store_fail("EmailSubmission/set", "may_send_as", "database error");
	if (r == 0) {
		char d[400];
		snprintf(d, sizeof d, "the user may not send as <%.300s>", address);
		return jmap_set_error(type, d);
	}
	return NULL;
}

/* Adds rcpt (canonical "local@domain") to the envelope unless it is
 * there already (compared case-insensitively). */
static void add_rcpt(struct sending *m, const char *rcpt)
{
	for (size_t i = 0; i < m->n_rcpts; i++)
		if (strcasecmp(m->rcpts[i].addr, rcpt) == 0)
			return;
	m->rcpts = xreallocarray(m->rcpts, m->n_rcpts + 1, sizeof *m->rcpts);
	snprintf(m->rcpts[m->n_rcpts++].addr, sizeof m->rcpts[0].addr, "%s", rcpt);
}

/* The addresses of every field named name of h, into the envelope (or
 * the first one into first, when first is not NULL).  False when a
 * field does not parse (*bad its name). */
static bool header_addrs(const struct header *h, const char *name, struct sending *m, char *first,
			 size_t firstsz, bool *any)
{
	struct addr *a = xcalloc(SMTP_MAX_HEADER_ADDRS, sizeof *a);
	bool ok = true;
	for (size_t i = 0; i < h->n_fields && ok; i++) {
		const struct header_field *f = &h->fields[i];
		if (!strutil_eq_ci(f->name, f->name_len, name))
			continue;
		int n = smtp_parse_address_list(f->value, f->value_len, a, SMTP_MAX_HEADER_ADDRS);
		if (n < 0) {
			ok = false;
			break;
		}
		for (int k = 0; k < n && ok; k++) {
			char s[ADDR_PATH_MAX + 1];
			if (addr_format(&a[k], s, sizeof s) < 0) {
				ok = false;
				break;
			}
			if (any != NULL)
				*any = true;
			if (first != NULL) {
				if (first[0] == '\0')
					snprintf(first, firstsz, "%s", s);
			} else {
				add_rcpt(m, s);
			}
		}
	}
	free(a);
	return ok;
}

/* Checks every From: address (the 587 rule).  NULL, or the SetError. */
static json_t *check_from(const struct jmap_api_env *env, const struct header *h)
{
	struct addr *a = xcalloc(SMTP_MAX_HEADER_ADDRS, sizeof *a);
	json_t *e = NULL;
	for (size_t i = 0; i < h->n_fields && e == NULL; i++) {
		const struct header_field *f = &h->fields[i];
		if (!strutil_eq_ci(f->name, f->name_len, "From"))
			continue;
		int n = smtp_parse_address_list(f->value, f->value_len, a, SMTP_MAX_HEADER_ADDRS);
		if (n <= 0)
			e = jmap_set_error("invalidEmail", "the From: field is not understood");
		for (int k = 0; k < n && e == NULL; k++) {
			char s[ADDR_PATH_MAX + 1];
			if (addr_format(&a[k], s, sizeof s) < 0)
				e = jmap_set_error("invalidEmail", "a From: address is too long");
			else
				e = may_send(env, s, "forbiddenFrom");
		}
	}
	free(a);
	return e;
}

/* An address of an envelope (RFC 8621 7: {email, parameters}): its
 * canonical form into out.  False if it is not one we can send to or
 * from (no SMTP parameters are supported). */
static bool envelope_addr(json_t *o, char *out, size_t outsz)
{
	if (!json_is_object(o))
		return false;
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		if (strcmp(k, "email") != 0 && strcmp(k, "parameters") != 0)
			return false;
	}
	json_t *p = json_object_get(o, "parameters");
	if (p != NULL && !json_is_null(p) && !(json_is_object(p) && json_object_size(p) == 0))
		return false;
	const char *e = json_string_value(json_object_get(o, "email"));
	struct addr a;
	return e != NULL && addr_parse_mailbox(e, strlen(e), true, &a) == ADDR_OK &&
	       addr_format(&a, out, outsz) >= 0;
}

/* Resolves the envelope's recipients (store_resolve, as RCPT TO on 587:
 * ours are delivered, others relayed).  NULL, or the SetError. */
static json_t *resolve_rcpts(const struct jmap_api_env *env, struct sending *m)
{
	const struct jmap_mail_ctx *c = ctx_of(env);
	json_t *bad = json_array();
	struct store_targets *tg = xmalloc(sizeof *tg);
	json_t *e = NULL;
	buf_init(&m->rcpt_lines, 0);
	for (size_t i = 0; i < m->n_rcpts && e == NULL; i++) {
		const char *address = m->rcpts[i].addr;
		enum store_rcpt_result r =
		    store_resolve(c->store, address, c->cfg->recipient_delimiter, tg);
		struct store_group g;
		if (r == STORE_RCPT_OK && store_group_get(c->store, address, &g) != 0) {
			/* a group's posting policy and list fields are SMTP
			 * submission's (docs/jmap.md "Submission") */
			e = jmap_set_error(
			    "forbiddenToSend",
			    "a recipient is a group: send to it over SMTP submission");
			break;
		}
		if (r == STORE_RCPT_NOT_OURS && strlen(address) < sizeof tg->remote[0]) {
			memset(tg, 0, sizeof *tg);
			tg->n_remote = 1;
			snprintf(tg->remote[0], sizeof tg->remote[0], "%s", address);
			r = STORE_RCPT_OK;
		}
		if (r == STORE_RCPT_ERROR) {
			e = jmap_set_store_fail("EmailSubmission/set", "resolve", "database error");
			break;
		}
		if (r != STORE_RCPT_OK) {
			json_array_append_new(bad, json_string(address));
			continue;
		}
		buf_printf(&m->rcpt_lines, "%s%s", m->rcpt_lines.len ? "\n" : "", address);
		for (size_t k = 0; k < tg->n_local; k++) {
			bool dup = false;
			for (size_t j = 0; j < m->n_local; j++)
				dup = dup || m->local[j] == tg->local[k];
			if (dup)
				continue;
			m->local = xreallocarray(m->local, m->n_local + 1, sizeof *m->local);
			m->local_to =
			    xreallocarray(m->local_to, m->n_local + 1, sizeof *m->local_to);
			m->local_via =
			    xreallocarray(m->local_via, m->n_local + 1, sizeof *m->local_via);
			snprintf(m->local_to[m->n_local].addr, sizeof m->local_to[0].addr, "%s",
				 address);
			memcpy(m->local_via[m->n_local], tg->local_via[k], sizeof m->local_via[0]);
			m->local[m->n_local++] = tg->local[k];
		}
		for (size_t k = 0; k < tg->n_remote; k++) {
			buf_printf(&m->rcpt_lines, "%s%s", k ? "," : "\t", tg->remote[k]);
			bool dup = false;
			for (size_t j = 0; j < m->n_remote; j++)
				dup = dup || strcmp(m->remote[j], tg->remote[k]) == 0;
			if (dup)
				continue;
			m->remote = xreallocarray(m->remote, m->n_remote + 1, sizeof *m->remote);
			m->remote_notify = xreallocarray(m->remote_notify, m->n_remote + 1,
							 sizeof *m->remote_notify);
			m->remote_orcpt = xreallocarray(m->remote_orcpt, m->n_remote + 1,
							sizeof *m->remote_orcpt);
			m->remote_notify[m->n_remote] = 0;
			m->remote_orcpt[m->n_remote][0] = '\0';
			memcpy(m->remote[m->n_remote++], tg->remote[k], sizeof m->remote[0]);
		}
	}
	free(tg);
	if (e == NULL && json_array_size(bad) > 0)
		return set_error_with("invalidRecipients", "no such recipient", "invalidRecipients",
				      bad);
	json_decref(bad);
	return e;
}

/* Writes the spool file: our Return-Path and Received lines, a
 * Message-ID and a Date when the message has none (as 587 adds them),
 * then msg without its Bcc fields.  0 or -1. */
static int write_spool(const struct jmap_api_env *env, struct sending *m, const char *msg,
		       size_t len, const struct header *h)
{
	const struct jmap_mail_ctx *c = ctx_of(env);
	const char *host = c->cfg->hostname;
	if (snprintf(m->spool_path, sizeof m->spool_path, "%s/spool/%s", store_data_dir(c->store),
		     m->id) >= (int)sizeof m->spool_path)
		return -1;
	m->spool_fd = store_spool_create(m->spool_path);
	if (m->spool_fd < 0)
		return -1;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	struct buf b;
	buf_init(&b, 0);
	int r =
	    buf_printf(&b, "Return-Path: <%s>\r\nReceived: by %s (Tern) with JMAP", m->from, host);
	char user[256];
	if (c->cfg->submission_received_user &&
	    store_account_address(c->store, store_account_id(c->account), user) == 1)
		r |= buf_printf(&b, "\r\n\t(authenticated as %s)", user);
	r |= buf_printf(&b, " id %s", m->id);
	if (m->n_rcpts == 1)
		r |= buf_printf(&b, "\r\n\tfor <%s>", m->rcpts[0].addr);
	r |= buf_printf(&b, "; %s\r\n", date);
	if (header_find(h, "Message-ID") == NULL)
		r |= buf_printf(&b, "Message-ID: <%s@%s>\r\n", m->id, host);
	if (header_find(h, "Date") == NULL)
		r |= buf_printf(&b, "Date: %s\r\n", date);
	size_t pos = 0;
	for (size_t i = 0; i < h->n_fields && r == 0; i++) {
		const struct header_field *f = &h->fields[i];
		if (!strutil_eq_ci(f->name, f->name_len, "Bcc"))
			continue;
		size_t start = (size_t)(f->name - msg);
		size_t end = (size_t)(f->value + f->value_len - msg);
		if (end < len && msg[end] == '\r')
			end++;
		if (end < len && msg[end] == '\n')
			end++;
		r |= buf_append(&b, msg + pos, start - pos);
		pos = end;
	}
	r |= buf_append(&b, msg + pos, len - pos);
	if (r == 0 && fsutil_write_all(m->spool_fd, b.data, b.len) < 0)
		r = -1;
	buf_free(&b);
	return r < 0 ? -1 : 0;
}

/* The identity id names: its email into email (1), 0 none, -1 error. */
static int identity_email(const struct jmap_api_env *env, const char *id, char *email,
			  size_t emailsz, int64_t *num)
{
	uint64_t v;
	if (id == NULL || id[0] != 'I' || !jmap_json_decimal(id + 1, &v) || v == 0 ||
	    v > (uint64_t)INT64_MAX)
		return 0;
	struct store_identity *list;
	size_t n;
	uint64_t st;
	char err[256];
	if (store_identity_list(ctx_of(env)->account, &list, &n, &st, err, sizeof err) < 0)
		return -1;
	int found = 0;
	for (size_t i = 0; i < n && !found; i++)
		if (list[i].id == (int64_t)v) {
			snprintf(email, emailsz, "%s", list[i].email ? list[i].email : "");
			*num = (int64_t)v;
			found = 1;
		}
	store_identity_free(list, n);
	return found;
}

/* Sends one EmailSubmission create o; on success *created and the
 * emailId (into email_out) for onSuccess*. */
static json_t *create_one(const struct jmap_api_env *env, const char *cid, json_t *o,
			  json_t **created, char email_out[32])
{
	const struct jmap_mail_ctx *c = ctx_of(env);
	const char *k;
	json_t *x;
	json_object_foreach(o, k, x)
	{
		if (strcmp(k, "identityId") == 0 || strcmp(k, "emailId") == 0 ||
		    strcmp(k, "envelope") == 0)
			continue;
		if (strcmp(k, "undoStatus") == 0 && json_is_string(x) &&
		    strcmp(json_string_value(x), "final") == 0)
			continue;
		return jmap_set_invalid(k, strcmp(k, "undoStatus") == 0
					       ? "no delayed sending: undoStatus is \"final\""
					       : "not settable");
	}
	const char *identity =
	    jmap_set_resolve(env, json_string_value(json_object_get(o, "identityId")));
	const char *email_id =
	    jmap_set_resolve(env, json_string_value(json_object_get(o, "emailId")));
	char ident_email[256];
	int64_t ident_num = 0;
	int ir = identity_email(env, identity, ident_email, sizeof ident_email, &ident_num);
	if (ir < 0)
		return jmap_set_store_fail("EmailSubmission/set", "identity", "database error");
	if (ir == 0)
		return jmap_set_invalid("identityId", "no such Identity");
	char file_id[25];
	if (email_id == NULL || !jmap_mail_parse_email_id(email_id, file_id))
		return jmap_set_invalid("emailId", "no such Email");
	struct store_jmap_copy *copies = NULL;
	size_t n_copies = 0;
	char err[256];
	json_t *serr = NULL;
	char state[24];
	if (!jmap_mail_sync_state(env, state, NULL, &serr)) {
		json_decref(serr);
		return jmap_set_store_fail("EmailSubmission/set", "sync", "database error");
	}
	int cr = store_jmap_email_copies(c->account, file_id, &copies, &n_copies, err, sizeof err);
	if (cr < 0)
		return jmap_set_store_fail("EmailSubmission/set", "email", err);
	if (cr == 0)
		return jmap_set_invalid("emailId", "no such Email");
	int64_t thread_id = copies[0].thread_id;
	free(copies);
	char path[PATH_MAX];
	if (store_message_path(c->account, file_id, path, sizeof path) < 0)
		return jmap_set_store_fail("EmailSubmission/set", "path", "no path");
	size_t len = 0;
	uint64_t max = c->cfg->smtp_max_message_size;
	errno = 0;
	char *msg = fsutil_read_file(path, max < SIZE_MAX ? (size_t)max + 1 : SIZE_MAX, &len);
	if (msg == NULL && errno == EFBIG)
		return set_error_with("tooLarge", "larger than smtp.max_message_size", "maxSize",
				      json_integer((json_int_t)max));
	if (msg == NULL)
		return jmap_set_store_fail("EmailSubmission/set", "read", strerror(errno));
	if ((uint64_t)len > max) {
		free(msg);
		return set_error_with("tooLarge", "larger than smtp.max_message_size", "maxSize",
				      json_integer((json_int_t)max));
	}
	struct header h = {0};
	struct sending m;
	memset(&m, 0, sizeof m);
	m.spool_fd = -1;
	buf_init(&m.rcpt_lines, 0);
	json_t *e = NULL;
	if (header_parse(msg, len, &h) != HEADER_OK)
		e = jmap_set_error("invalidEmail", "the header section is not understood");
	if (e == NULL)
		e = check_from(env, &h);
	/* the envelope: given, or made from the identity and the header */
	json_t *env_o = json_object_get(o, "envelope");
	if (e == NULL && env_o != NULL && !json_is_null(env_o)) {
		json_t *mf = json_object_get(env_o, "mailFrom");
		json_t *rt = json_object_get(env_o, "rcptTo");
		bool ok = json_is_object(env_o) && json_object_size(env_o) == 2 &&
			  json_is_array(rt) && envelope_addr(mf, m.from, sizeof m.from);
		size_t i;
		json_array_foreach(rt, i, x)
		{
			char a[ADDR_PATH_MAX + 1];
			if (ok && !envelope_addr(x, a, sizeof a))
				ok = false;
			if (ok)
				add_rcpt(&m, a);
		}
		if (!ok)
			e = jmap_set_invalid("envelope",
					     "an Envelope of valid addresses without SMTP "
					     "parameters (none are supported)");
	} else if (e == NULL) {
		if (strncmp(ident_email, "*@", 2) == 0) {
			/* a wildcard identity sends as the From: address */
			header_addrs(&h, "From", &m, m.from, sizeof m.from, NULL);
		} else {
			snprintf(m.from, sizeof m.from, "%s", ident_email);
		}
		bool any = false;
		if (!header_addrs(&h, "To", &m, NULL, 0, &any) ||
		    !header_addrs(&h, "Cc", &m, NULL, 0, &any) ||
		    !header_addrs(&h, "Bcc", &m, NULL, 0, &any))
			e = jmap_set_error("invalidEmail",
					   "a To:, Cc: or Bcc: field is not understood");
	}
	if (e == NULL && m.from[0] == '\0')
		e = jmap_set_error("forbiddenMailFrom", "no envelope sender");
	if (e == NULL)
		e = may_send(env, m.from, "forbiddenMailFrom");
	if (e == NULL && m.n_rcpts == 0)
		e = jmap_set_error("noRecipients", "the envelope has no recipients");
	if (e == NULL && m.n_rcpts > c->cfg->smtp_max_recipients)
		e = set_error_with("tooManyRecipients", "more than smtp.max_recipients",
				   "maxRecipients",
				   json_integer((json_int_t)c->cfg->smtp_max_recipients));
	if (e == NULL)
		e = resolve_rcpts(env, &m);
	fsutil_unique_id(m.id);
	if (e == NULL && write_spool(env, &m, msg, len, &h) < 0)
		e = jmap_set_store_fail("EmailSubmission/set", "spool", strerror(errno));
	header_free(&h);
	free(msg);
	struct smtp_commit_result res = {0};
	if (e == NULL) {
		struct smtp_commit_msg cm = {
		    .id = m.id,
		    .client = "",
		    .spool_path = m.spool_path,
		    .spool_fd = m.spool_fd,
		    .from = m.from,
		    .submitted = true,
		    .rcpts = m.rcpts,
		    .n_rcpts = m.n_rcpts,
		    .local = m.local,
		    .local_to = m.local_to,
		    .local_via = (const char(*)[STORE_VIA_MAX])m.local_via,
		    .n_local = m.n_local,
		    .remote = (const char(*)[256])m.remote,
		    .remote_notify = m.remote_notify,
		    .remote_orcpt = (const char(*)[SMTP_DSN_ORCPT_MAX + 1]) m.remote_orcpt,
		    .n_remote = m.n_remote,
		    .dsn_envid = "",
		    .arc_cv = ARC_NONE,
		};
		struct dkim_keyring *dkim = dkim_keyring_new(c->store);
		smtp_commit_batch(c->store, c->cfg, dkim, &cm, 1, &res);
		dkim_keyring_free(&dkim);
		char from_log[256];
		log_info("jmap action=submit id=%s account=%" PRId64
			 " from=<%s> rcpts=%zu local=%zu "
			 "remote=%zu result=%d",
			 m.id, store_account_id(c->account),
			 log_escape(from_log, sizeof from_log, m.from, strlen(m.from)), m.n_rcpts,
			 m.n_local, m.n_remote, res.code);
		if (res.code == 550)
			e = jmap_set_error("forbiddenToSend", res.reply);
		else if (res.code != 250)
			e = jmap_set_store_fail("EmailSubmission/set", "commit", res.reply);
	}
	int64_t sid = 0;
	int64_t now = (int64_t)time(NULL);
	if (e == NULL) {
		struct store_submission rec = {0};
		rec.identity_id = ident_num;
		snprintf(rec.email_id, sizeof rec.email_id, "%s", file_id);
		rec.thread_id = thread_id;
		rec.send_at = now;
		rec.mail_from = m.from;
		rec.rcpts = (char *)buf_cstr(&m.rcpt_lines);
		rec.queue_id = res.queue_id;
		rec.local_reply = res.reply;
		/* the mail is sent: a record that cannot be written is
		 * logged, and the create still succeeds */
		if (store_submission_add(c->account, &rec, &sid, err, sizeof err) < 0) {
			sending_free(&m);
			log_error("jmap action=submission_add id=%s error=\"%s\"", m.id, err);
			return jmap_set_store_fail("EmailSubmission/set", "record", err);
		}
	}
	sending_free(&m);
	if (e != NULL)
		return e;
	char ids[32], date[32];
	format_id(sid, ids);
	jmap_set_created_id(env, cid, ids);
	json_t *cr_o = json_object();
	json_object_set_new(cr_o, "id", json_string(ids));
	snprintf(ids, sizeof ids, "T%" PRId64, thread_id);
	json_object_set_new(cr_o, "threadId", json_string(ids));
	utc_date(now, date);
	json_object_set_new(cr_o, "sendAt", json_string(date));
	json_object_set_new(cr_o, "undoStatus", json_string("final"));
	*created = cr_o;
	snprintf(email_out, 32, "E%s", file_id);
	return NULL;
}

/* The emailId of the submission id (email_out), false if none. */
static bool email_of(const struct jmap_api_env *env, int64_t id, char email_out[32])
{
	struct store_submission *v;
	size_t n;
	char state[24];
	json_t *err = NULL;
	if (!load(env, &v, &n, state, &err)) {
		json_decref(err);
		return false;
	}
	bool found = false;
	for (size_t i = 0; i < n && !found; i++)
		if (v[i].id == id) {
			snprintf(email_out, 32, "E%s", v[i].email_id);
			found = true;
		}
	store_submission_free(v, n);
	return found;
}

static json_t *update_one(const struct jmap_api_env *env, const char *key, json_t *patch)
{
	char email[32];
	int64_t id = parse_id(jmap_set_resolve(env, key));
	if (id == 0 || !email_of(env, id, email))
		return jmap_set_error("notFound", NULL);
	const char *k;
	json_t *v;
	json_object_foreach(patch, k, v)
	{
		if (strcmp(k, "undoStatus") != 0)
			return jmap_set_invalid(k, "only undoStatus may change");
		if (json_is_string(v) && strcmp(json_string_value(v), "canceled") == 0)
			return jmap_set_error("cannotUnsend",
					      "the message was sent at once (maxDelayedSend 0)");
		if (!json_is_string(v) || strcmp(json_string_value(v), "final") != 0)
			return jmap_set_invalid("undoStatus", "only \"canceled\" may be asked");
	}
	return NULL;
}

static json_t *destroy_one(const struct jmap_api_env *env, const char *key, void *unused)
{
	(void)unused;
	int64_t id = parse_id(jmap_set_resolve(env, key));
	if (id == 0)
		return jmap_set_error("notFound", NULL);
	char err[256];
	int r = store_submission_destroy(ctx_of(env)->account, id, err, sizeof err);
	if (r == 0)
		return jmap_set_error("notFound", NULL);
	if (r < 0)
		return jmap_set_store_fail("EmailSubmission/set", "destroy", err);
	return NULL;
}

/* Brings the records up to date (load); their state into state (may be
 * NULL).  False with *error. */
static bool submission_state(const struct jmap_api_env *env, char state[24], json_t **error)
{
	struct store_submission *v;
	size_t n;
	char buf[24];
	if (!load(env, &v, &n, state ? state : buf, error))
		return false;
	store_submission_free(v, n);
	return true;
}

/* The emailId an onSuccess* key names: "#cid" a submission created by
 * this call, else a submission id whose update or destroy succeeded. */
static bool success_email(const struct jmap_set *s, json_t *emails, const char *key, char out[32])
{
	const char *sid = key;
	if (key[0] == '#') {
		json_t *c = json_object_get(s->created, key + 1);
		if (c == NULL)
			return false;
		sid = json_string_value(json_object_get(c, "id"));
	} else if (json_object_get(s->updated, key) == NULL) {
		bool destroyed = false;
		size_t i;
		json_t *x;
		json_array_foreach(s->destroyed, i, x)
		{
			destroyed = destroyed || strcmp(json_string_value(x), key) == 0;
		}
		if (!destroyed)
			return false;
	}
	const char *e = json_string_value(json_object_get(emails, sid));
	if (e == NULL)
		return false;
	snprintf(out, 32, "%s", e);
	return true;
}

/* RFC 8621 7.5: onSuccessUpdateEmail and onSuccessDestroyEmail as one
 * implicit Email/set (jmap-email-set.c), whose response follows. */
static void on_success(const struct jmap_api_env *env, json_t *args, const struct jmap_set *s,
		       json_t *emails)
{
	json_t *upd = json_object_get(args, "onSuccessUpdateEmail");
	json_t *del = json_object_get(args, "onSuccessDestroyEmail");
	json_t *u = json_object(), *d = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(upd, k, v)
	{
		char e[32];
		if (success_email(s, emails, k, e))
			json_object_set(u, e, v);
	}
	size_t i;
	json_array_foreach(del, i, v)
	{
		char e[32];
		if (json_is_string(v) && success_email(s, emails, json_string_value(v), e))
			json_array_append_new(d, json_string(e));
	}
	if (json_object_size(u) == 0 && json_array_size(d) == 0) {
		json_decref(u);
		json_decref(d);
		return;
	}
	json_t *a = json_object();
	json_object_set(a, "accountId", json_object_get(args, "accountId"));
	if (json_object_size(u) > 0)
		json_object_set(a, "update", u);
	if (json_array_size(d) > 0)
		json_object_set(a, "destroy", d);
	json_decref(u);
	json_decref(d);
	json_t *error = NULL;
	json_t *r = jmap_email_set(env, a, &error);
	json_decref(a);
	if (r != NULL)
		jmap_api_implicit(env, "Email/set", r);
	else
		jmap_api_implicit(env, "error", error);
}

json_t *jmap_submission_set(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId",
					      "ifInState",
					      "create",
					      "update",
					      "destroy",
					      "onSuccessUpdateEmail",
					      "onSuccessDestroyEmail",
					      NULL};
	json_t *upd = json_object_get(args, "onSuccessUpdateEmail");
	json_t *del = json_object_get(args, "onSuccessDestroyEmail");
	bool ok = (upd == NULL || json_is_null(upd) || json_is_object(upd)) &&
		  (del == NULL || json_is_null(del) || json_is_array(del));
	size_t i;
	json_t *x;
	const char *k;
	json_object_foreach(upd, k, x)
	{
		ok = ok && json_is_object(x);
	}
	json_array_foreach(del, i, x)
	{
		ok = ok && json_is_string(x);
	}
	if (!ok)
		return jmap_mail_fail(error, "invalidArguments",
				      "onSuccessUpdateEmail is Id[PatchObject], "
				      "onSuccessDestroyEmail Id[]");
	struct jmap_set s;
	if (!jmap_mail_args_known(args, allowed, error) ||
	    !jmap_set_check_args(env, args, allowed, &s, error))
		return NULL;
	char old[24];
	if (!submission_state(env, old, error) || !jmap_set_state_ok(args, old, error))
		return NULL;
	snprintf(s.old_state, sizeof s.old_state, "%s", old);
	jmap_set_start(&s);
	/* submission id -> its emailId, for onSuccess* */
	json_t *emails = json_object();
	json_object_foreach(s.create, k, x)
	{
		json_t *c = NULL;
		char email[32];
		json_t *e = json_is_object(x)
				? create_one(env, k, x, &c, email)
				: jmap_set_error("invalidProperties", "not an object");
		if (e != NULL) {
			json_object_set_new(s.not_created, k, e);
		} else {
			json_object_set_new(emails, json_string_value(json_object_get(c, "id")),
					    json_string(email));
			json_object_set_new(s.created, k, c);
		}
	}
	/* the emails of the submissions updated or destroyed, before they go */
	json_object_foreach(s.update, k, x)
	{
		char email[32];
		int64_t id = parse_id(jmap_set_resolve(env, k));
		if (id != 0 && email_of(env, id, email))
			json_object_set_new(emails, k, json_string(email));
	}
	json_array_foreach(s.destroy, i, x)
	{
		char email[32];
		const char *key = json_string_value(x);
		int64_t id = parse_id(jmap_set_resolve(env, key));
		if (id != 0 && email_of(env, id, email))
			json_object_set_new(emails, key, json_string(email));
	}
	jmap_set_run(env, &s, update_one, destroy_one, NULL);
	char now[24];
	if (!submission_state(env, now, error)) {
		json_decref(emails);
		jmap_set_free(&s);
		return NULL;
	}
	on_success(env, args, &s, emails);
	json_decref(emails);
	return jmap_set_response(args, &s, now);
}
