/*
 * jmap-mail.c - see jmap-mail.h.  Above the store (store-jmap.c for the
 * thread ids, counts and the mailbox change log) and jmap-api.c.
 *
 * Ids: a Mailbox is "M" and the store's mailbox id (stable, never
 * reused), a Thread "T" and the store's thread id, an Email "E" and its
 * message file's id (shared by IMAP copies: one Email in several
 * mailboxes).  States are the store's JMAP state in decimal.  Every
 * method first syncs the store's JMAP view (store_jmap_sync), so the
 * state it hands out covers every change made before, by any protocol.
 */
#include "jmap-mail.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "jmap-email-get.h"
#include "jmap-email-query.h"
#include "jmap-email-set.h"
#include "jmap-identity.h"
#include "jmap-submission.h"
#include "jmap-json.h"
#include "jmap-mail-util.h"
#include "jmap-vacation.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

/* ------------------------------------------------------- mailbox view */

static const char *const mailbox_props[] = {
    "id",           "name",         "parentId",      "role",     "sortOrder",    "totalEmails",
    "unreadEmails", "totalThreads", "unreadThreads", "myRights", "isSubscribed", NULL};

static json_t *rights(bool inbox)
{
	json_t *r = json_object();
	static const char *const names[] = {"mayReadItems", "mayAddItems",    "mayRemoveItems",
					    "maySetSeen",   "maySetKeywords", "mayCreateChild",
					    "mayRename",    "mayDelete",      "maySubmit"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		/* INBOX is never renamed or deleted (the store refuses) */
		bool no = inbox && (strcmp(names[i], "mayRename") == 0 ||
				    strcmp(names[i], "mayDelete") == 0);
		json_object_set_new(r, names[i], json_boolean(!no));
	}
	return r;
}

static json_t *mailbox_json(const struct jmap_mbox *b, json_t *props)
{
	char id[32];
	json_t *o = json_object();
	jmap_mail_mailbox_id(b->m->id, id);
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "name", json_string(b->name));
	if (b->parent) {
		char pid[32];
		jmap_mail_mailbox_id(b->parent, pid);
		json_object_set_new(o, "parentId", json_string(pid));
	} else {
		json_object_set_new(o, "parentId", json_null());
	}
	json_object_set_new(o, "role", b->role ? json_string(b->role) : json_null());
	json_object_set_new(o, "sortOrder", json_integer(0));
	json_object_set_new(o, "totalEmails", json_integer(b->m->total_emails));
	json_object_set_new(o, "unreadEmails", json_integer(b->m->unread_emails));
	json_object_set_new(o, "totalThreads", json_integer(b->m->total_threads));
	json_object_set_new(o, "unreadThreads", json_integer(b->m->unread_threads));
	json_object_set_new(o, "myRights", rights(jmap_mail_is_inbox(b->m)));
	json_object_set_new(o, "isSubscribed", json_boolean(b->m->subscribed));
	if (props != NULL) {
		const char *key;
		json_t *val, *tmp;
		json_object_foreach_safe(o, tmp, key, val)
		{
			bool keep = strcmp(key, "id") == 0;
			size_t i;
			json_t *p;
			json_array_foreach(props, i, p)
			{
				if (strcmp(json_string_value(p), key) == 0)
					keep = true;
			}
			if (!keep)
				json_object_del(o, key);
		}
	}
	return o;
}

/* --------------------------------------------------------- Mailbox/get */

static json_t *mailbox_get(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	json_t *ids, *props;
	if (!jmap_mail_get_args(env, args, mailbox_props, &ids, &props, error))
		return NULL;
	char state[24];
	struct jmap_mview v;
	if (!jmap_mail_sync_state(env, state, NULL, error) || !jmap_mail_view_load(env, &v, error))
		return NULL;
	json_t *list = json_array(), *not_found = json_array();
	if (ids == NULL) {
		for (size_t i = 0; i < v.n; i++)
			json_array_append_new(list, mailbox_json(&v.b[i], props));
	} else {
		size_t i;
		json_t *id;
		json_array_foreach(ids, i, id)
		{
			struct jmap_mbox *b = jmap_mail_find_mbox(
			    &v, jmap_mail_parse_mailbox_id(json_string_value(id)));
			if (b != NULL)
				json_array_append_new(list, mailbox_json(b, props));
			else
				json_array_append(not_found, id);
		}
	}
	jmap_mail_view_free(&v);
	return jmap_mail_get_result(args, state, list, not_found);
}

/* ----------------------------------------------------- Mailbox/changes */

enum kind { K_MAILBOX, K_THREAD, K_EMAIL };

/* Mailbox/changes, Thread/changes and Email/changes (RFC 8620 5.2): one
 * state for the three. */
static json_t *changes(const struct jmap_api_env *env, json_t *args, enum kind kind, json_t **error)
{
	uint64_t now, old;
	json_int_t max;
	if (!jmap_mail_changes_args(env, args, &old, &max, error))
		return NULL;
	char state[24];
	if (!jmap_mail_sync_state(env, state, &now, error))
		return NULL;
	if (old > now)
		return jmap_mail_fail(error, "cannotCalculateChanges",
				      "not a state of this server");
	const struct jmap_mail_ctx *c = env->methods_ctx;
	struct store_jmap_change *ch = NULL;
	size_t n = 0;
	char err[256];
	int (*get)(struct store_account *, uint64_t, struct store_jmap_change **, size_t *, char *,
		   size_t) = kind == K_EMAIL    ? store_jmap_email_changes
			     : kind == K_THREAD ? store_jmap_thread_changes
						: store_jmap_mailbox_changes;
	if (get(c->account, old, &ch, &n, err, sizeof err) < 0) {
		log_error("jmap action=changes error=\"%s\"", err);
		return jmap_mail_fail(error, "serverFail", "the store failed");
	}
	if (!jmap_mail_changes_fit(max, n, error)) {
		free(ch);
		return NULL;
	}
	json_t *created = json_array(), *updated = json_array(), *destroyed = json_array();
	bool counts_only = true;
	for (size_t i = 0; i < n; i++) {
		char id[32];
		if (kind == K_EMAIL)
			snprintf(id, sizeof id, "E%s", ch[i].key);
		else
			snprintf(id, sizeof id, "%c%" PRId64, kind == K_THREAD ? 'T' : 'M',
				 ch[i].id);
		json_t *a = ch[i].kind == STORE_JMAP_CREATED     ? created
			    : ch[i].kind == STORE_JMAP_DESTROYED ? destroyed
								 : updated;
		json_array_append_new(a, json_string(id));
		if (ch[i].kind == STORE_JMAP_UPDATED && ch[i].props)
			counts_only = false;
	}
	free(ch);
	json_t *r = jmap_mail_changes_result(args, state, created, updated, destroyed);
	if (kind != K_MAILBOX)
		return r;
	json_t *up = json_null();
	if (counts_only && json_array_size(updated) > 0) {
		json_decref(up);
		up = json_pack("[ssss]", "totalEmails", "unreadEmails", "totalThreads",
			       "unreadThreads");
	}
	json_object_set_new(r, "updatedProperties", up);
	return r;
}

static json_t *mailbox_changes(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	return changes(env, args, K_MAILBOX, error);
}

static json_t *thread_changes(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	return changes(env, args, K_THREAD, error);
}

static json_t *email_changes(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	return changes(env, args, K_EMAIL, error);
}

/* ---------------------------------------------------------- Thread/get */

static const char *const thread_props[] = {"id", "emailIds", NULL};

/* The Thread object of id (RFC 8621 3): 1 found (*out set), 0 none, -1. */
static int thread_json(struct store_account *a, int64_t id, json_t *props, json_t **out)
{
	struct buf b = BUF_INIT;
	size_t n = 0;
	char err[256];
	int r = store_jmap_thread_get(a, id, &b, &n, err, sizeof err);
	if (r < 0)
		log_error("jmap action=thread_get error=\"%s\"", err);
	if (r != 1) {
		buf_free(&b);
		return r;
	}
	json_t *o = json_object();
	char tid[32];
	snprintf(tid, sizeof tid, "T%" PRId64, id);
	json_object_set_new(o, "id", json_string(tid));
	bool emails = props == NULL;
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		if (strcmp(json_string_value(p), "emailIds") == 0)
			emails = true;
	}
	if (emails) {
		json_t *ids = json_array();
		for (size_t k = 0, off = 0; k < n; k++) {
			char eid[32];
			snprintf(eid, sizeof eid, "E%s", b.data + off);
			json_array_append_new(ids, json_string(eid));
			off += strlen(b.data + off) + 1;
		}
		json_object_set_new(o, "emailIds", ids);
	}
	buf_free(&b);
	*out = o;
	return 1;
}

static json_t *thread_get(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	json_t *ids, *props;
	if (!jmap_mail_get_args(env, args, thread_props, &ids, &props, error))
		return NULL;
	const struct jmap_mail_ctx *c = env->methods_ctx;
	char state[24], err[256];
	if (!jmap_mail_sync_state(env, state, NULL, error))
		return NULL;
	json_t *want = NULL;
	if (ids == NULL) {
		/* RFC 8620 5.1: all of them, if not more than maxObjectsInGet */
		int64_t *all = NULL;
		size_t n = 0;
		if (store_jmap_thread_ids(c->account, JMAP_MAX_OBJECTS_IN_GET, &all, &n, err,
					  sizeof err) < 0) {
			log_error("jmap action=thread_ids error=\"%s\"", err);
			return jmap_mail_fail(error, "serverFail", "the store failed");
		}
		if (n > JMAP_MAX_OBJECTS_IN_GET) {
			free(all);
			return jmap_mail_fail(error, "requestTooLarge",
					      "more threads than maxObjectsInGet: give ids");
		}
		want = json_array();
		for (size_t i = 0; i < n; i++) {
			char tid[32];
			snprintf(tid, sizeof tid, "T%" PRId64, all[i]);
			json_array_append_new(want, json_string(tid));
		}
		free(all);
	} else {
		want = json_incref(ids);
	}
	json_t *list = json_array(), *not_found = json_array();
	size_t i;
	json_t *id;
	json_array_foreach(want, i, id)
	{
		int64_t t = jmap_mail_parse_thread_id(json_string_value(id));
		json_t *o = NULL;
		int r = t ? thread_json(c->account, t, props, &o) : 0;
		if (r < 0) {
			json_decref(want);
			json_decref(list);
			json_decref(not_found);
			return jmap_mail_fail(error, "serverFail", "the store failed");
		}
		if (r == 1)
			json_array_append_new(list, o);
		else
			json_array_append(not_found, id);
	}
	json_decref(want);
	return jmap_mail_get_result(args, state, list, not_found);
}

/* ------------------------------------------------------- Mailbox/query */

/* A FilterOperator or FilterCondition (RFC 8620 5.5, RFC 8621 2.3):
 * 1 it is valid, else *error. */
static bool filter_check(json_t *f, size_t depth, json_t **error)
{
	if (!json_is_object(f) || depth > 16) {
		*error = depth > 16 ? jmap_api_error("unsupportedFilter", "filter nested too deep")
				    : jmap_api_error("invalidArguments", "a filter is an object");
		return false;
	}
	json_t *conds;
	int opk;
	int r = jmap_mail_filter_operator(f, &conds, &opk, error);
	if (r < 0)
		return false;
	if (r > 0) {
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
		bool ok, known = true;
		if (strcmp(key, "parentId") == 0 || strcmp(key, "role") == 0)
			ok = json_is_null(v) || json_is_string(v);
		else if (strcmp(key, "name") == 0)
			ok = json_is_string(v);
		else if (strcmp(key, "hasAnyRole") == 0 || strcmp(key, "isSubscribed") == 0)
			ok = json_is_boolean(v);
		else
			ok = known = false;
		if (!ok) {
			/* RFC 8620 5.5: a condition we do not know is
			 * unsupportedFilter, a known one of the wrong type an
			 * invalid argument */
			char d[320];
			snprintf(d, sizeof d, "%s filter condition %.256s",
				 known ? "wrong type for the" : "unsupported", key);
			*error = jmap_api_error(known ? "invalidArguments" : "unsupportedFilter", d);
			return false;
		}
	}
	return true;
}

/* ASCII case-insensitive "contains". */
static bool contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return n == 0;
}

static bool filter_match(json_t *f, const struct jmap_mbox *b)
{
	json_t *op = json_object_get(f, "operator");
	if (op != NULL) {
		const char *o = json_string_value(op);
		json_t *conds = json_object_get(f, "conditions");
		size_t i;
		json_t *c;
		json_array_foreach(conds, i, c)
		{
			bool m = filter_match(c, b);
			if (strcmp(o, "AND") == 0 && !m)
				return false;
			if (strcmp(o, "OR") == 0 && m)
				return true;
			if (strcmp(o, "NOT") == 0 && m)
				return false;
		}
		return strcmp(o, "OR") != 0;
	}
	json_t *v;
	if ((v = json_object_get(f, "parentId")) != NULL &&
	    (json_is_null(v)
		 ? b->parent != 0
		 : jmap_mail_parse_mailbox_id(json_string_value(v)) != b->parent || b->parent == 0))
		return false;
	if ((v = json_object_get(f, "role")) != NULL &&
	    (json_is_null(v) ? b->role != NULL
			     : b->role == NULL || strcmp(b->role, json_string_value(v)) != 0))
		return false;
	if ((v = json_object_get(f, "name")) != NULL && !contains_ci(b->name, json_string_value(v)))
		return false;
	if ((v = json_object_get(f, "hasAnyRole")) != NULL && json_is_true(v) != (b->role != NULL))
		return false;
	if ((v = json_object_get(f, "isSubscribed")) != NULL && json_is_true(v) != b->m->subscribed)
		return false;
	return true;
}

struct sort_key {
	bool by_name; /* else sortOrder (always 0: then the next key) */
	bool asc;
};

struct sort_ctx {
	const struct sort_key *keys;
	size_t n;
};

static int cmp_mbox(const struct jmap_mbox *a, const struct jmap_mbox *b, const struct sort_ctx *s)
{
	for (size_t i = 0; i < s->n; i++) {
		int c = 0;
		if (s->keys[i].by_name) {
			c = strcasecmp(a->name, b->name);
			if (c == 0)
				c = strcmp(a->name, b->name);
		}
		if (c != 0)
			return s->keys[i].asc ? c : -c;
	}
	return a->m->id < b->m->id ? -1 : a->m->id > b->m->id;
}

/* qsort has no context argument in C17: sort by insertion (a user's
 * mailboxes number in the hundreds at most). */
static void sort_mboxes(struct jmap_mbox **v, size_t n, const struct sort_ctx *s)
{
	for (size_t i = 1; i < n; i++) {
		struct jmap_mbox *x = v[i];
		size_t j = i;
		while (j > 0 && cmp_mbox(v[j - 1], x, s) > 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

/* Appends the mailboxes of sorted (n) under parent, each followed by its
 * children (sortAsTree); with filter_tree, only those whose ancestors all
 * matched. */
static void tree_order(struct jmap_mbox **sorted, const bool *match, size_t n, int64_t parent,
		       bool filter_tree, struct jmap_mbox **out, size_t *k, size_t depth)
{
	for (size_t i = 0; i < n && depth <= 64; i++) {
		if (sorted[i]->parent != parent)
			continue;
		if (match[i])
			out[(*k)++] = sorted[i];
		else if (filter_tree)
			continue;
		tree_order(sorted, match, n, sorted[i]->m->id, filter_tree, out, k, depth + 1);
	}
}

static json_t *mailbox_query(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {
	    "accountId", "filter",         "sort",       "position",     "anchor", "anchorOffset",
	    "limit",     "calculateTotal", "sortAsTree", "filterAsTree", NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	json_t *filter = json_object_get(args, "filter");
	json_t *sort = json_object_get(args, "sort");
	if (filter != NULL && json_is_null(filter))
		filter = NULL;
	if (filter != NULL && !filter_check(filter, 0, error))
		return NULL;
	struct sort_key keys[8];
	struct sort_ctx sc = {keys, 0};
	if (sort != NULL && !json_is_null(sort)) {
		if (!json_is_array(sort))
			return jmap_mail_fail(error, "invalidArguments",
					      "sort must be null or Comparator[]");
		size_t i;
		json_t *c;
		json_array_foreach(sort, i, c)
		{
			json_t *p = json_object_get(c, "property");
			json_t *asc = json_object_get(c, "isAscending");
			const char *ck;
			json_t *cv;
			bool extra = false;
			json_object_foreach(c, ck, cv)
			{
				if (strcmp(ck, "property") != 0 && strcmp(ck, "isAscending") != 0 &&
				    strcmp(ck, "collation") != 0)
					extra = true;
			}
			if (!json_is_object(c) || !json_is_string(p) || extra ||
			    (asc != NULL && !json_is_boolean(asc)))
				return jmap_mail_fail(
				    error, "invalidArguments",
				    "a Comparator has property, isAscending, collation");
			if (json_object_get(c, "collation") != NULL)
				return jmap_mail_fail(error, "unsupportedSort",
						      "no collation is supported");
			const char *pn = json_string_value(p);
			if (strcmp(pn, "name") != 0 && strcmp(pn, "sortOrder") != 0)
				return jmap_mail_fail(error, "unsupportedSort",
						      "Mailboxes sort by sortOrder and name");
			if (sc.n < sizeof keys / sizeof keys[0])
				keys[sc.n++] = (struct sort_key){strcmp(pn, "name") == 0,
								 asc == NULL || json_is_true(asc)};
		}
	}
	struct jmap_mail_window w;
	if (!jmap_mail_window_args(args, &w, error))
		return NULL;
	static const char *const bools[] = {"calculateTotal", "sortAsTree", "filterAsTree"};
	for (size_t i = 0; i < 3; i++) {
		json_t *b = json_object_get(args, bools[i]);
		if (b != NULL && !json_is_boolean(b))
			return jmap_mail_fail(
			    error, "invalidArguments",
			    "calculateTotal, sortAsTree and filterAsTree are Booleans");
	}
	bool as_tree = json_is_true(json_object_get(args, "sortAsTree"));
	bool filter_tree = json_is_true(json_object_get(args, "filterAsTree"));
	char state[24];
	struct jmap_mview v;
	if (!jmap_mail_sync_state(env, state, NULL, error) || !jmap_mail_view_load(env, &v, error))
		return NULL;
	struct jmap_mbox **sorted = xcalloc(v.n + 1, sizeof *sorted);
	struct jmap_mbox **res = xcalloc(v.n + 1, sizeof *res);
	bool *match = xcalloc(v.n + 1, sizeof *match);
	for (size_t i = 0; i < v.n; i++)
		sorted[i] = &v.b[i];
	sort_mboxes(sorted, v.n, &sc);
	for (size_t i = 0; i < v.n; i++)
		match[i] = filter == NULL || filter_match(filter, sorted[i]);
	size_t total = 0;
	if (as_tree || filter_tree) {
		tree_order(sorted, match, v.n, 0, filter_tree, res, &total, 0);
		if (!as_tree) {
			/* filterAsTree alone: the tree's members in sort order */
			bool *in = xcalloc(v.n + 1, sizeof *in);
			for (size_t i = 0; i < total; i++)
				in[res[i] - v.b] = true;
			total = 0;
			for (size_t i = 0; i < v.n; i++)
				if (in[sorted[i] - v.b])
					res[total++] = sorted[i];
			free(in);
		}
	} else {
		for (size_t i = 0; i < v.n; i++)
			if (match[i])
				res[total++] = sorted[i];
	}
	size_t at = 0;
	int64_t aid = w.anchor != NULL ? jmap_mail_parse_mailbox_id(json_string_value(w.anchor)) : 0;
	while (at < total && res[at]->m->id != aid)
		at++;
	json_int_t start;
	if (!jmap_mail_window_start(&w, total, at, &start, error)) {
		free(sorted);
		free(res);
		free(match);
		jmap_mail_view_free(&v);
		return NULL;
	}
	json_t *ids = json_array();
	for (json_int_t i = start; i < (json_int_t)total && (w.limit < 0 || i - start < w.limit); i++) {
		char id[32];
		jmap_mail_mailbox_id(res[i]->m->id, id);
		json_array_append_new(ids, json_string(id));
	}
	free(sorted);
	free(res);
	free(match);
	jmap_mail_view_free(&v);
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set_new(r, "queryState", json_string(state));
	json_object_set_new(r, "canCalculateChanges", json_false());
	json_object_set_new(r, "position",
			    json_integer(start > (json_int_t)total ? (json_int_t)total : start));
	json_object_set_new(r, "ids", ids);
	if (json_is_true(json_object_get(args, "calculateTotal")))
		json_object_set_new(r, "total", json_integer((json_int_t)total));
	return r;
}

/* RFC 8620 5.6: the server may not keep the old results. */
static json_t *mailbox_query_changes(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {
	    "accountId", "filter",         "sort",       "sinceQueryState", "maxChanges",
	    "upToId",    "calculateTotal", "sortAsTree", "filterAsTree",    NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	if (!json_is_string(json_object_get(args, "sinceQueryState")))
		return jmap_mail_fail(error, "invalidArguments",
				      "sinceQueryState (String) is required");
	json_t *filter = json_object_get(args, "filter");
	if (filter != NULL && !json_is_null(filter) && !filter_check(filter, 0, error))
		return NULL;
	return jmap_mail_fail(error, "cannotCalculateChanges",
			      "query results are not kept: run Mailbox/query again");
}

const struct jmap_method jmap_mail_methods[] = {
    {"Mailbox/get", JMAP_CAP_MAIL, mailbox_get},
    {"Mailbox/changes", JMAP_CAP_MAIL, mailbox_changes},
    {"Mailbox/query", JMAP_CAP_MAIL, mailbox_query},
    {"Mailbox/queryChanges", JMAP_CAP_MAIL, mailbox_query_changes},
    {"Thread/get", JMAP_CAP_MAIL, thread_get},
    {"Thread/changes", JMAP_CAP_MAIL, thread_changes},
    {"Email/changes", JMAP_CAP_MAIL, email_changes},
    {"Email/get", JMAP_CAP_MAIL, jmap_email_get},
    {"Email/parse", JMAP_CAP_MAIL, jmap_email_parse},
    {"Email/query", JMAP_CAP_MAIL, jmap_email_query},
    {"Email/queryChanges", JMAP_CAP_MAIL, jmap_email_query_changes},
    {"SearchSnippet/get", JMAP_CAP_MAIL, jmap_search_snippet_get},
    {"Mailbox/set", JMAP_CAP_MAIL, jmap_mailbox_set},
    {"Email/set", JMAP_CAP_MAIL, jmap_email_set},
    {"Email/copy", JMAP_CAP_MAIL, jmap_email_copy},
    {"Email/import", JMAP_CAP_MAIL, jmap_email_import},
    {"VacationResponse/get", JMAP_CAP_VACATION, jmap_vacation_get},
    {"VacationResponse/set", JMAP_CAP_VACATION, jmap_vacation_set},
    {"Identity/get", JMAP_CAP_SUBMISSION, jmap_identity_get},
    {"Identity/changes", JMAP_CAP_SUBMISSION, jmap_identity_changes},
    {"Identity/set", JMAP_CAP_SUBMISSION, jmap_identity_set},
    {"EmailSubmission/get", JMAP_CAP_SUBMISSION, jmap_submission_get},
    {"EmailSubmission/changes", JMAP_CAP_SUBMISSION, jmap_submission_changes},
    {"EmailSubmission/query", JMAP_CAP_SUBMISSION, jmap_submission_query},
    {"EmailSubmission/queryChanges", JMAP_CAP_SUBMISSION, jmap_submission_query_changes},
    {"EmailSubmission/set", JMAP_CAP_SUBMISSION, jmap_submission_set},
};
const size_t jmap_mail_n_methods = sizeof jmap_mail_methods / sizeof jmap_mail_methods[0];
