/*
 * jmap-mailbox-set.c - Mailbox/set (RFC 8621 2.5) on the store's IMAP
 * mailbox operations (store-mailbox.c): a JMAP mailbox is an IMAP name
 * (its parent's name, '/', its own), so create is IMAP CREATE, a change
 * of name or parentId is IMAP RENAME (children follow), destroy is IMAP
 * DELETE, isSubscribed the IMAP subscription of the name.
 */
#include "jmap-email-set.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "jmap-mail-util.h"
#include "jmap-mail.h"
#include "jmap-set.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

static const struct {
	const char *role;
	unsigned bit;
} roles[] = {
    {"sent", STORE_SU_SENT},       {"drafts", STORE_SU_DRAFTS},   {"trash", STORE_SU_TRASH},
    {"junk", STORE_SU_JUNK},       {"archive", STORE_SU_ARCHIVE}, {"all", STORE_SU_ALL},
    {"flagged", STORE_SU_FLAGGED},
};

/* Properties the server sets: never in a create or an update. */
static const char *const server_set[] = {
    "id", "totalEmails", "unreadEmails", "totalThreads", "unreadThreads", "myRights", NULL};

static bool in_list(const char *const *l, const char *k)
{
	for (size_t i = 0; l[i]; i++)
		if (strcmp(l[i], k) == 0)
			return true;
	return false;
}

/* The mailbox view; false (logged) if the store failed. */
static bool view_load(const struct jmap_api_env *env, struct jmap_mview *v)
{
	json_t *e = NULL;
	bool ok = jmap_mail_view_load(env, v, &e);
	json_decref(e);
	return ok;
}

/* A name of one level: 1..255 bytes, no '/' (the hierarchy delimiter:
 * a '/' would make another level) and what the store takes. */
static bool name_ok(const char *n)
{
	size_t l = strlen(n);
	return l > 0 && l <= 255 && strchr(n, '/') == NULL && store_mailbox_name_ok(n);
}

/* The mailbox of id (an Id or "#cid"), else NULL. */
static struct jmap_mbox *lookup(const struct jmap_api_env *env, const struct jmap_mview *v,
				const char *id)
{
	const char *real = jmap_set_resolve(env, id);
	return real ? jmap_mail_find_mbox(v, jmap_mail_parse_mailbox_id(real)) : NULL;
}

/* The IMAP name of name under parent (NULL: top level) into out; false
 * if too long. */
static bool full_name(const struct jmap_mbox *parent, const char *name, char out[512])
{
	int n = parent ? snprintf(out, 512, "%s/%s", parent->m->name, name)
		       : snprintf(out, 512, "%s", name);
	return n > 0 && n < 512;
}

/* The parentId of a create or update: 1 with *parent (NULL for null),
 * else 0 with *e set. */
static int parent_arg(const struct jmap_api_env *env, const struct jmap_mview *v, json_t *p,
		      struct jmap_mbox **parent, json_t **e)
{
	*parent = NULL;
	if (p == NULL || json_is_null(p))
		return 1;
	if (!json_is_string(p) || (*parent = lookup(env, v, json_string_value(p))) == NULL) {
		*e = jmap_set_invalid("parentId", "no such mailbox");
		return 0;
	}
	return 1;
}

/* Moves the subscriptions of from and its children to to. */
struct subs {
	char (*names)[512];
	size_t n, cap;
	const char *from;
};

static int collect_sub(void *ctx, const char *name)
{
	struct subs *s = ctx;
	size_t fl = strlen(s->from);
	if (strncmp(name, s->from, fl) != 0 || (name[fl] != '\0' && name[fl] != '/'))
		return 0;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->names = xreallocarray(s->names, s->cap, sizeof *s->names);
	}
	snprintf(s->names[s->n++], 512, "%s", name);
	return 0;
}

static int move_subscriptions(struct store_account *a, const char *from, const char *to, char *err,
			      size_t errsz)
{
	struct subs s = {NULL, 0, 0, from};
	int r = store_mailbox_subscriptions(a, collect_sub, &s, err, errsz);
	for (size_t i = 0; r == 0 && i < s.n; i++) {
		char nn[1024];
		snprintf(nn, sizeof nn, "%s%s", to, s.names[i] + strlen(from));
		if (strlen(nn) >= 512)
			continue;
		r = store_mailbox_subscribe(a, s.names[i], false, err, errsz);
		if (r == 0)
			r = store_mailbox_subscribe(a, nn, true, err, errsz) == -1 ? -1 : 0;
	}
	free(s.names);
	return r;
}

static json_t *rights_of(bool inbox)
{
	json_t *r = json_object();
	static const char *const names[] = {"mayReadItems", "mayAddItems",    "mayRemoveItems",
					    "maySetSeen",   "maySetKeywords", "mayCreateChild",
					    "mayRename",    "mayDelete",      "maySubmit"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		json_object_set_new(r, names[i], json_boolean(!inbox || i < 6 || i == 8));
	return r;
}

/* A property of a create or update other than those we take: its SetError. */
static json_t *check_props(json_t *o, bool update)
{
	static const char *const settable[] = {"name",      "parentId",     "role",
					       "sortOrder", "isSubscribed", NULL};
	const char *key;
	json_t *val;
	json_object_foreach(o, key, val)
	{
		if (update && strchr(key, '/') != NULL)
			return jmap_set_error("invalidPatch",
					      "Mailbox properties are set whole (no paths)");
		if (in_list(server_set, key))
			return jmap_set_invalid(key, "set by the server");
		if (!in_list(settable, key))
			return jmap_set_invalid(key, "not a Mailbox property");
	}
	json_t *sub = json_object_get(o, "isSubscribed");
	if (sub != NULL && !json_is_boolean(sub))
		return jmap_set_invalid("isSubscribed", "a Boolean");
	json_t *so = json_object_get(o, "sortOrder");
	if (so != NULL && !(json_is_integer(so) && json_integer_value(so) == 0))
		return jmap_set_invalid("sortOrder",
					"sortOrder is not stored yet: only 0 is accepted");
	json_t *n = json_object_get(o, "name");
	if (n != NULL && (!json_is_string(n) || !name_ok(json_string_value(n))))
		return jmap_set_invalid("name", "1 to 255 bytes of UTF-8, no control character, "
						"no '/', '*' or '%'");
	return NULL;
}

/* ---------------------------------------------------------------- create */

static json_t *create_one(const struct jmap_api_env *env, const char *cid, json_t *o,
			  json_t **created)
{
	struct store_account *a = jmap_set_account(env);
	json_t *e = check_props(o, false);
	if (e != NULL)
		return e;
	json_t *jn = json_object_get(o, "name");
	if (jn == NULL)
		return jmap_set_invalid("name", "name is required");
	struct jmap_mview v;
	if (!view_load(env, &v))
		return jmap_set_error("serverFail", "the store failed");
	struct jmap_mbox *parent;
	char full[512], err[256];
	unsigned su = 0;
	json_t *role = json_object_get(o, "role");
	if (!parent_arg(env, &v, json_object_get(o, "parentId"), &parent, &e))
		goto out;
	if (!full_name(parent, json_string_value(jn), full)) {
		e = jmap_set_invalid("name", "the mailbox name would be too long");
		goto out;
	}
	if (role != NULL && !json_is_null(role)) {
		for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
			if (json_is_string(role) &&
			    strcmp(json_string_value(role), roles[i].role) == 0)
				su = roles[i].bit;
		for (size_t i = 0; su && i < v.n; i++)
			if (v.b[i].m->special_use & su)
				su = 0;
		if (su == 0) {
			e = jmap_set_invalid("role", "not a role this server knows, or one that "
						     "another mailbox has (roles are unique)");
			goto out;
		}
	}
	struct store_mailbox mb;
	int r = strcasecmp(full, "INBOX") == 0 ? 1 : store_mailbox_get(a, full, &mb);
	if (r != 0) {
		e = r > 0 ? jmap_set_invalid("name", "a sibling mailbox has that name")
			  : jmap_set_store_fail("mailbox_set", "get", "lookup failed");
		goto out;
	}
	if (store_mailbox_create(a, full, su, err, sizeof err) < 0) {
		e = jmap_set_store_fail("mailbox_set", "create", err);
		goto out;
	}
	bool sub = json_is_true(json_object_get(o, "isSubscribed"));
	/* a stale subscription of the name must not make it subscribed */
	if (store_mailbox_subscribe(a, full, sub, err, sizeof err) != 0 ||
	    store_mailbox_get(a, full, &mb) != 1) {
		e = jmap_set_store_fail("mailbox_set", "subscribe", err);
		goto out;
	}
	char id[32];
	jmap_mail_mailbox_id(mb.id, id);
	jmap_set_created_id(env, cid, id);
	json_t *c = json_object();
	json_object_set_new(c, "id", json_string(id));
	if (json_object_get(o, "parentId") == NULL)
		json_object_set_new(c, "parentId", json_null());
	if (role == NULL)
		json_object_set_new(c, "role", json_null());
	if (json_object_get(o, "sortOrder") == NULL)
		json_object_set_new(c, "sortOrder", json_integer(0));
	if (json_object_get(o, "isSubscribed") == NULL)
		json_object_set_new(c, "isSubscribed", json_false());
	static const char *const counts[] = {"totalEmails", "unreadEmails", "totalThreads",
					     "unreadThreads"};
	for (size_t i = 0; i < 4; i++)
		json_object_set_new(c, counts[i], json_integer(0));
	json_object_set_new(c, "myRights", rights_of(false));
	*created = c;
out:
	jmap_mail_view_free(&v);
	return e;
}

/* ---------------------------------------------------------------- update */

static json_t *update_one(const struct jmap_api_env *env, const char *id, json_t *patch)
{
	struct store_account *a = jmap_set_account(env);
	struct jmap_mview v;
	json_t *e = NULL;
	if (!view_load(env, &v))
		return jmap_set_error("serverFail", "the store failed");
	struct jmap_mbox *b = lookup(env, &v, id), *parent = NULL;
	char err[256], from[512], to[512];
	if (b == NULL) {
		e = jmap_set_error("notFound", NULL);
		goto out;
	}
	if ((e = check_props(patch, true)) != NULL)
		goto out;
	json_t *role = json_object_get(patch, "role");
	if (role != NULL &&
	    !(json_is_null(role) ? b->role == NULL
				 : json_is_string(role) && b->role != NULL &&
				       strcmp(b->role, json_string_value(role)) == 0)) {
		e = jmap_set_invalid("role", "roles cannot be changed");
		goto out;
	}
	json_t *jp = json_object_get(patch, "parentId");
	json_t *jn = json_object_get(patch, "name");
	if (jp != NULL) {
		if (!parent_arg(env, &v, jp, &parent, &e))
			goto out;
	} else if (b->parent != 0) {
		parent = jmap_mail_find_mbox(&v, b->parent);
	}
	snprintf(from, sizeof from, "%s", b->m->name);
	if (!full_name(parent, jn ? json_string_value(jn) : b->name, to)) {
		e = jmap_set_invalid("name", "the mailbox name would be too long");
		goto out;
	}
	if (strcmp(from, to) != 0) {
		size_t fl = strlen(from);
		struct store_mailbox mb;
		if (jmap_mail_is_inbox(b->m)) {
			e = jmap_set_error("forbidden", "INBOX cannot be renamed or moved");
			goto out;
		}
		if (strncmp(to, from, fl) == 0 && to[fl] == '/') {
			e = jmap_set_invalid("parentId", "a mailbox cannot be its own ancestor");
			goto out;
		}
		int r = strcasecmp(to, "INBOX") == 0 ? 1 : store_mailbox_get(a, to, &mb);
		if (r != 0) {
			e = r > 0 ? jmap_set_invalid("name", "a sibling mailbox has that name")
				  : jmap_set_store_fail("mailbox_set", "get", "lookup failed");
			goto out;
		}
		if (store_mailbox_rename(a, from, to, err, sizeof err) < 0 ||
		    move_subscriptions(a, from, to, err, sizeof err) < 0) {
			e = jmap_set_store_fail("mailbox_set", "rename", err);
			goto out;
		}
	}
	json_t *sub = json_object_get(patch, "isSubscribed");
	if (sub != NULL && store_mailbox_subscribe(a, to, json_is_true(sub), err, sizeof err) != 0)
		e = jmap_set_store_fail("mailbox_set", "subscribe", err);
out:
	jmap_mail_view_free(&v);
	return e;
}

/* --------------------------------------------------------------- destroy */

static json_t *destroy_one(const struct jmap_api_env *env, const char *id, void *ctx)
{
	bool remove_emails = *(const bool *)ctx;
	struct store_account *a = jmap_set_account(env);
	struct jmap_mview v;
	json_t *e = NULL;
	if (!view_load(env, &v))
		return jmap_set_error("serverFail", "the store failed");
	struct jmap_mbox *b = lookup(env, &v, id);
	char err[256];
	struct store_mailbox mb;
	if (b == NULL) {
		e = jmap_set_error("notFound", NULL);
		goto out;
	}
	if (jmap_mail_is_inbox(b->m)) {
		e = jmap_set_error("forbidden", "INBOX cannot be destroyed");
		goto out;
	}
	for (size_t i = 0; i < v.n; i++)
		if (v.b[i].parent == b->m->id) {
			e = jmap_set_error("mailboxHasChild", NULL);
			goto out;
		}
	if (store_mailbox_get(a, b->m->name, &mb) != 1) {
		e = jmap_set_store_fail("mailbox_set", "get", "lookup failed");
		goto out;
	}
	if (mb.messages > 0 && !remove_emails) {
		e = jmap_set_error("mailboxHasEmail", NULL);
		goto out;
	}
	if (store_mailbox_delete(a, b->m->name, err, sizeof err) < 0 ||
	    store_mailbox_subscribe(a, b->m->name, false, err, sizeof err) != 0)
		e = jmap_set_store_fail("mailbox_set", "delete", err);
out:
	jmap_mail_view_free(&v);
	return e;
}

json_t *jmap_mailbox_set(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {
	    "accountId", "ifInState", "create", "update", "destroy", "onDestroyRemoveEmails", NULL};
	struct jmap_set s;
	json_t *rm = json_object_get(args, "onDestroyRemoveEmails");
	if (rm != NULL && !json_is_boolean(rm))
		return jmap_mail_fail(error, "invalidArguments",
				      "onDestroyRemoveEmails must be a Boolean");
	if (!jmap_set_begin(env, args, allowed, &s, error))
		return NULL;
	const char *key;
	json_t *val;
	/* a create whose parentId is a creation id of this call made later
	 * waits for it: rounds until one makes no progress */
	json_t *todo = s.create ? json_deep_copy(s.create) : json_object();
	for (bool progress = true; progress && json_object_size(todo) > 0;) {
		progress = false;
		json_t *tmp;
		json_object_foreach_safe(todo, tmp, key, val)
		{
			json_t *p = json_object_get(val, "parentId");
			if (json_is_string(p) && json_string_value(p)[0] == '#' &&
			    jmap_set_resolve(env, json_string_value(p)) == NULL &&
			    json_object_get(todo, json_string_value(p) + 1) != NULL)
				continue;
			json_t *c = NULL, *e = create_one(env, key, val, &c);
			if (e != NULL)
				json_object_set_new(s.not_created, key, e);
			else
				json_object_set_new(s.created, key, c);
			json_object_del(todo, key);
			progress = true;
		}
	}
	json_object_foreach(todo, key, val)
	{
		json_object_set_new(s.not_created, key,
				    jmap_set_invalid("parentId", "creation ids in a cycle"));
	}
	json_decref(todo);
	bool remove = json_is_true(rm);
	jmap_set_run(env, &s, update_one, destroy_one, &remove);
	return jmap_set_finish(env, args, &s, error);
}
