/*
 * jmap-mail-util.c - see jmap-mail-util.h.
 */
#include "jmap-mail-util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap-json.h"
#include "jmap-mail.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"
json_t *jmap_mail_fail(json_t **error, const char *type, const char *description)
{
	*error = jmap_api_error(type, description);
	return NULL;
}

/* Only the names in allowed (NULL-terminated): else invalidArguments. */
bool jmap_mail_args_known(json_t *args, const char *const *allowed, json_t **error)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v)
	{
		size_t i = 0;
		while (allowed[i] != NULL && strcmp(allowed[i], key) != 0)
			i++;
		if (allowed[i] == NULL) {
			char d[320];
			snprintf(d, sizeof d, "unknown argument %.256s", key);
			*error = jmap_api_error("invalidArguments", d);
			return false;
		}
	}
	return true;
}

/* accountId: required, and ours. */
bool jmap_mail_account_ok(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	json_t *v = json_object_get(args, "accountId");
	if (!json_is_string(v)) {
		*error = jmap_api_error("invalidArguments", "accountId (Id) is required");
		return false;
	}
	if (strcmp(json_string_value(v), env->account_id) != 0) {
		*error = jmap_api_error("accountNotFound", NULL);
		return false;
	}
	return true;
}

/* Syncs the store's JMAP view; the mailbox state as a string into state. */
bool jmap_mail_sync_state(const struct jmap_api_env *env, char state[24], uint64_t *num,
			  json_t **error)
{
	const struct jmap_mail_ctx *c = env->methods_ctx;
	char err[256];
	uint64_t s = 0;
	if (store_jmap_sync(c->account, &s, err, sizeof err) < 0) {
		log_error("jmap action=sync error=\"%s\"", err);
		*error = jmap_api_error("serverFail", "the store failed");
		return false;
	}
	snprintf(state, 24, "%" PRIu64, s);
	if (num)
		*num = s;
	return true;
}

/* A state string of ours: decimal digits, no leading zero. */
bool jmap_mail_parse_state(const char *s, uint64_t *out)
{
	return jmap_json_decimal(s, out);
}

static const struct {
	unsigned bit;
	const char *role;
} roles[] = {
    {STORE_SU_SENT, "sent"},       {STORE_SU_DRAFTS, "drafts"},   {STORE_SU_TRASH, "trash"},
    {STORE_SU_JUNK, "junk"},       {STORE_SU_ARCHIVE, "archive"}, {STORE_SU_ALL, "all"},
    {STORE_SU_FLAGGED, "flagged"},
};

bool jmap_mail_is_inbox(const struct store_jmap_mailbox *m)
{
	return strcmp(m->name, "INBOX") == 0;
}

struct jmap_mbox *jmap_mail_find_mbox(const struct jmap_mview *v, int64_t id)
{
	for (size_t i = 0; i < v->n; i++)
		if (v->b[i].m->id == id)
			return &v->b[i];
	return NULL;
}

/* The mailboxes as JMAP sees them: a tree by the '/' of the names (the
 * nearest existing ancestor is the parent: IMAP may delete a parent and
 * keep its children), one role per mailbox and per role (RFC 8621 2: the
 * first mailbox with the special use has it). */
bool jmap_mail_view_load(const struct jmap_api_env *env, struct jmap_mview *v, json_t **error)
{
	const struct jmap_mail_ctx *c = env->methods_ctx;
	char err[256];
	memset(v, 0, sizeof *v);
	if (store_jmap_mailboxes(c->account, &v->rows, &v->n, err, sizeof err) < 0) {
		log_error("jmap action=mailboxes error=\"%s\"", err);
		*error = jmap_api_error("serverFail", "the store failed");
		return false;
	}
	v->b = xcalloc(v->n + 1, sizeof *v->b);
	unsigned taken = 0;
	for (size_t i = 0; i < v->n; i++) {
		struct jmap_mbox *b = &v->b[i];
		b->m = &v->rows[i];
		b->name = b->m->name;
		const char *nm = b->m->name;
		/* the longest proper prefix "P/" that is a mailbox */
		size_t best = 0;
		for (size_t j = 0; j < v->n; j++) {
			size_t l = strlen(v->rows[j].name);
			if (j != i && l > best && strncmp(nm, v->rows[j].name, l) == 0 &&
			    nm[l] == '/') {
				best = l;
				b->parent = v->rows[j].id;
			}
		}
		if (best)
			b->name = nm + best + 1;
		if (jmap_mail_is_inbox(b->m)) {
			b->role = "inbox";
			continue;
		}
		for (size_t r = 0; r < sizeof roles / sizeof roles[0] && b->role == NULL; r++)
			if ((b->m->special_use & roles[r].bit) && !(taken & roles[r].bit)) {
				taken |= roles[r].bit;
				b->role = roles[r].role;
			}
	}
	for (size_t i = 0; i < v->n; i++) {
		/* depth by the parents (names have a bounded number of levels) */
		struct jmap_mbox *p = &v->b[i];
		while (p->parent != 0 && (p = jmap_mail_find_mbox(v, p->parent)) != NULL)
			v->b[i].depth++;
	}
	return true;
}

void jmap_mail_view_free(struct jmap_mview *v)
{
	free(v->rows);
	free(v->b);
}

void jmap_mail_mailbox_id(int64_t id, char out[32])
{
	snprintf(out, 32, "M%" PRId64, id);
}

/* "M<digits>" of a mailbox: its store id, else 0. */
int64_t jmap_mail_parse_mailbox_id(const char *s)
{
	uint64_t v;
	if (s[0] != 'M' || !jmap_mail_parse_state(s + 1, &v) || v == 0 || v > INT64_MAX)
		return 0;
	return (int64_t)v;
}

/* The arguments of a /get (RFC 8620 5.1): accountId, "ids" null or Id[]
 * of at most JMAP_MAX_OBJECTS_IN_GET, "properties" null or names of
 * known. */
bool jmap_mail_get_args(const struct jmap_api_env *env, json_t *args, const char *const *known,
			json_t **ids, json_t **props, json_t **error)
{
	static const char *const allowed[] = {"accountId", "ids", "properties", NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return false;
	*ids = json_object_get(args, "ids");
	*props = json_object_get(args, "properties");
	if (*ids != NULL && json_is_null(*ids))
		*ids = NULL;
	if (*props != NULL && json_is_null(*props))
		*props = NULL;
	size_t i;
	json_t *v;
	if (*ids != NULL) {
		if (!json_is_array(*ids)) {
			*error = jmap_api_error("invalidArguments", "ids must be null or Id[]");
			return false;
		}
		json_array_foreach(*ids, i, v)
		{
			if (!json_is_string(v)) {
				*error = jmap_api_error("invalidArguments", "ids must be strings");
				return false;
			}
		}
		if (json_array_size(*ids) > JMAP_MAX_OBJECTS_IN_GET) {
			*error = jmap_api_error("requestTooLarge", "more than maxObjectsInGet ids");
			return false;
		}
	}
	if (*props != NULL) {
		if (!json_is_array(*props)) {
			*error = jmap_api_error("invalidArguments",
						"properties must be null or String[]");
			return false;
		}
		json_array_foreach(*props, i, v)
		{
			size_t k = 0;
			while (json_is_string(v) && known[k] != NULL &&
			       strcmp(known[k], json_string_value(v)) != 0)
				k++;
			if (!json_is_string(v) || known[k] == NULL) {
				*error = jmap_api_error("invalidArguments", "unknown property");
				return false;
			}
		}
	}
	return true;
}

/* The response of a /get; takes list and not_found. */
json_t *jmap_mail_get_result(json_t *args, const char *state, json_t *list, json_t *not_found)
{
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set_new(r, "state", json_string(state));
	json_object_set_new(r, "list", list);
	json_object_set_new(r, "notFound", not_found);
	return r;
}

bool jmap_mail_uint_arg(json_t *args, const char *name, bool allow_negative, json_int_t *out,
			json_t **error)
{
	json_t *v = json_object_get(args, name);
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_integer(v) || (!allow_negative && json_integer_value(v) < 0)) {
		char d[96];
		snprintf(d, sizeof d, "%s must be an integer%s", name,
			 allow_negative ? "" : " >= 0");
		*error = jmap_api_error("invalidArguments", d);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

/* "T<digits>" of a thread: its store id, else 0. */
int64_t jmap_mail_parse_thread_id(const char *s)
{
	uint64_t v;
	if (s[0] != 'T' || !jmap_json_decimal(s + 1, &v) || v == 0 || v > INT64_MAX)
		return 0;
	return (int64_t)v;
}

bool jmap_mail_parse_email_id(const char *s, char file_id[25])
{
	if (s[0] != 'E' || !store_name_is_file_id(s + 1, strlen(s + 1)))
		return false;
	memcpy(file_id, s + 1, 25);
	return true;
}

int jmap_mail_filter_operator(json_t *f, json_t **conds, int *op, json_t **error)
{
	json_t *o = json_object_get(f, "operator");
	if (o == NULL)
		return 0;
	const char *s = json_string_value(o);
	*conds = json_object_get(f, "conditions");
	*op = s == NULL               ? -1
	      : strcmp(s, "AND") == 0 ? 0
	      : strcmp(s, "OR") == 0  ? 1
	      : strcmp(s, "NOT") == 0 ? 2
				      : -1;
	if (*op < 0 || !json_is_array(*conds) || json_object_size(f) != 2) {
		*error =
		    jmap_api_error("invalidArguments",
				   "a FilterOperator has operator AND, OR or NOT and conditions");
		return -1;
	}
	return 1;
}

bool jmap_mail_changes_args(const struct jmap_api_env *env, json_t *args, uint64_t *since,
			    json_int_t *max, json_t **error)
{
	static const char *const allowed[] = {"accountId", "sinceState", "maxChanges", NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return false;
	json_t *s = json_object_get(args, "sinceState");
	json_t *m = json_object_get(args, "maxChanges");
	if (!json_is_string(s)) {
		*error = jmap_api_error("invalidArguments", "sinceState (String) is required");
		return false;
	}
	if (m != NULL && !json_is_null(m) && (!json_is_integer(m) || json_integer_value(m) <= 0)) {
		*error = jmap_api_error("invalidArguments",
					"maxChanges must be null or a positive integer");
		return false;
	}
	*max = json_is_integer(m) ? json_integer_value(m) : 0;
	if (!jmap_mail_parse_state(json_string_value(s), since)) {
		*error = jmap_api_error("cannotCalculateChanges", "not a state of this server");
		return false;
	}
	return true;
}

bool jmap_mail_changes_fit(json_int_t max, size_t n, json_t **error)
{
	if (max > 0 && (json_int_t)n > max) {
		*error = jmap_api_error("cannotCalculateChanges",
					"more changes than maxChanges; get the objects again");
		return false;
	}
	return true;
}

json_t *jmap_mail_changes_result(json_t *args, const char *state, json_t *created,
				 json_t *updated, json_t *destroyed)
{
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set(r, "oldState", json_object_get(args, "sinceState"));
	json_object_set_new(r, "newState", json_string(state));
	json_object_set_new(r, "hasMoreChanges", json_false());
	json_object_set_new(r, "created", created);
	json_object_set_new(r, "updated", updated);
	json_object_set_new(r, "destroyed", destroyed);
	return r;
}

bool jmap_mail_id_wanted(json_t *ids, const char *id)
{
	if (ids == NULL)
		return true;
	size_t i;
	json_t *x;
	json_array_foreach(ids, i, x)
	{
		if (strcmp(json_string_value(x), id) == 0)
			return true;
	}
	return false;
}

json_t *jmap_mail_pick(json_t *o, json_t *props)
{
	if (props == NULL)
		return o;
	json_t *keep = json_object();
	json_object_set(keep, "id", json_object_get(o, "id"));
	size_t i;
	json_t *x;
	json_array_foreach(props, i, x)
	{
		const char *p = json_string_value(x);
		json_object_set(keep, p, json_object_get(o, p));
	}
	json_decref(o);
	return keep;
}

bool jmap_mail_window_args(json_t *args, struct jmap_mail_window *w, json_t **error)
{
	w->position = 0;
	w->anchor_offset = 0;
	w->limit = -1;
	w->anchor = json_object_get(args, "anchor");
	if (!jmap_mail_uint_arg(args, "position", true, &w->position, error) ||
	    !jmap_mail_uint_arg(args, "anchorOffset", true, &w->anchor_offset, error) ||
	    !jmap_mail_uint_arg(args, "limit", false, &w->limit, error))
		return false;
	if (w->anchor != NULL && !json_is_null(w->anchor) && !json_is_string(w->anchor)) {
		jmap_mail_fail(error, "invalidArguments", "anchor must be null or an Id");
		return false;
	}
	if (w->anchor != NULL && json_is_null(w->anchor))
		w->anchor = NULL;
	return true;
}

bool jmap_mail_window_start(const struct jmap_mail_window *w, size_t total, size_t anchor_at,
			    json_int_t *start, json_t **error)
{
	if (w->anchor != NULL) {
		if (anchor_at >= total) {
			jmap_mail_fail(error, "anchorNotFound", NULL);
			return false;
		}
		*start = (json_int_t)anchor_at + w->anchor_offset;
	} else {
		*start = w->position < 0 ? (json_int_t)total + w->position : w->position;
	}
	if (*start < 0)
		*start = 0;
	return true;
}

json_t *jmap_mail_not_found(json_t *ids, json_t *list)
{
	json_t *nf = json_array();
	size_t i, k;
	json_t *x, *o;
	json_array_foreach(ids, i, x)
	{
		bool found = false;
		json_array_foreach(list, k, o)
		{
			found = found || json_equal(json_object_get(o, "id"), x);
		}
		if (!found)
			json_array_append(nf, x);
	}
	return nf;
}

int64_t jmap_mail_prefixed_id(const char *s, char prefix)
{
	uint64_t v;
	if (s == NULL || s[0] != prefix || !jmap_json_decimal(s + 1, &v) || v == 0 ||
	    v > (uint64_t)INT64_MAX)
		return 0;
	return (int64_t)v;
}
