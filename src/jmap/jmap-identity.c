/*
 * jmap-identity.c - Identity/get, Identity/changes, Identity/set (RFC
 * 8621 6) on the store's identities (store-identity.c), under
 * urn:ietf:params:jmap:submission (docs/jmap.md "Submission").
 *
 * An Identity's id is "I" and the store's row id.  Its email is checked
 * by store_may_send_as, the rule SMTP submission applies to MAIL FROM
 * and From:, so an identity never names an address its user could not
 * send from.  replyTo and bcc are kept in the store as one "email<TAB>name"
 * line per EmailAddress (no TAB when the name is null).  The state is the
 * identities' own (store_identity_list), not the mail state.
 */
#include "jmap-identity.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "jmap-json.h"
#include "jmap-mail-util.h"
#include "jmap-mail.h"
#include "jmap-set.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

/* EmailAddress objects in a replyTo or bcc list. */
#define MAX_ADDRS 32

static const char *const identity_props[] = {"id",	    "name",	     "email",
					     "replyTo",	    "bcc",	     "textSignature",
					     "htmlSignature", "mayDelete", NULL};

static const struct jmap_mail_ctx *ctx_of(const struct jmap_api_env *env)
{
	return env->methods_ctx;
}

/* "I<digits>" of an identity: its store id, else 0. */
static int64_t parse_id(const char *s)
{
	return jmap_mail_prefixed_id(s, 'I');
}

/* -------------------------------------------------- EmailAddress lists */

/* The stored form of an EmailAddress[] or null (*out NULL): false if v
 * is not one (why in *bad). */
static bool addrs_to_store(json_t *v, char **out, const char **bad)
{
	*out = NULL;
	if (json_is_null(v))
		return true;
	if (!json_is_array(v) || json_array_size(v) > MAX_ADDRS) {
		*bad = "must be null or an EmailAddress[] of at most 32";
		return false;
	}
	struct buf b = BUF_INIT;
	buf_init(&b, STORE_IDENTITY_ADDRS_MAX);
	size_t i;
	json_t *a;
	json_array_foreach(v, i, a)
	{
		json_t *email = json_object_get(a, "email");
		json_t *name = json_object_get(a, "name");
		const char *k;
		json_t *x;
		bool keys_ok = json_is_object(a);
		json_object_foreach(a, k, x)
		{
			if (strcmp(k, "email") != 0 && strcmp(k, "name") != 0)
				keys_ok = false;
		}
		const char *e = json_string_value(email);
		const char *n = json_string_value(name);
		if (!keys_ok || e == NULL || strchr(e, '@') == NULL || strlen(e) > 255 ||
		    strpbrk(e, "\t\r\n") != NULL || (name != NULL && !json_is_null(name) && n == NULL) ||
		    (n != NULL && (strpbrk(n, "\t\r\n") != NULL || strlen(n) > 255))) {
			*bad = "each EmailAddress has an email (with '@') and a name (String or "
			       "null), without tabs or line breaks";
			buf_free(&b);
			return false;
		}
		int r = n ? buf_printf(&b, "%s%s\t%s", i ? "\n" : "", e, n)
			  : buf_printf(&b, "%s%s", i ? "\n" : "", e);
		if (r != 0) {
			*bad = "too long";
			buf_free(&b);
			return false;
		}
	}
	*out = xmemdup0(b.data ? b.data : "", b.len);
	buf_free(&b);
	return true;
}

/* The EmailAddress[] (or null) of the stored form s. */
static json_t *addrs_from_store(const char *s)
{
	if (s == NULL)
		return json_null();
	json_t *arr = json_array();
	while (*s != '\0') {
		size_t len = strcspn(s, "\n");
		const char *tab = memchr(s, '\t', len);
		size_t elen = tab ? (size_t)(tab - s) : len;
		json_t *o = json_object();
		json_object_set_new(o, "name",
				    tab ? json_stringn(tab + 1, len - elen - 1) : json_null());
		json_object_set_new(o, "email", json_stringn(s, elen));
		json_array_append_new(arr, o);
		s += len;
		if (*s == '\n')
			s++;
	}
	return arr;
}

/* ------------------------------------------------------------ objects */

static json_t *identity_json(const struct store_identity *v)
{
	char id[32];
	snprintf(id, sizeof id, "I%" PRId64, v->id);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "name", json_string(v->name ? v->name : ""));
	json_object_set_new(o, "email", json_string(v->email ? v->email : ""));
	json_object_set_new(o, "replyTo", addrs_from_store(v->reply_to));
	json_object_set_new(o, "bcc", addrs_from_store(v->bcc));
	json_object_set_new(o, "textSignature",
			    json_string(v->text_signature ? v->text_signature : ""));
	json_object_set_new(o, "htmlSignature",
			    json_string(v->html_signature ? v->html_signature : ""));
	json_object_set_new(o, "mayDelete", json_boolean(!v->is_default));
	return o;
}

/* The identities and their state; false with *error. */
static bool load(const struct jmap_api_env *env, struct store_identity **v, size_t *n,
		 char state[24], json_t **error)
{
	char err[256];
	uint64_t st = 0;
	if (store_identity_list(ctx_of(env)->account, v, n, &st, err, sizeof err) < 0) {
		log_error("jmap action=identity_list error=\"%s\"", err);
		*error = jmap_api_error("serverFail", "the store failed");
		return false;
	}
	snprintf(state, 24, "%" PRIu64, st);
	return true;
}

/* ------------------------------------------------------- Identity/get */

json_t *jmap_identity_get(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	json_t *ids, *props;
	if (!jmap_mail_get_args(env, args, identity_props, &ids, &props, error))
		return NULL;
	struct store_identity *v;
	size_t n;
	char state[24];
	if (!load(env, &v, &n, state, error))
		return NULL;
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof id, "I%" PRId64, v[i].id);
		if (jmap_mail_id_wanted(ids, id))
			json_array_append_new(list, jmap_mail_pick(identity_json(&v[i]), props));
	}
	store_identity_free(v, n);
	return jmap_mail_get_result(args, state, list, jmap_mail_not_found(ids, list));
}

/* --------------------------------------------------- Identity/changes */

json_t *jmap_identity_changes(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	uint64_t old, now;
	json_int_t max;
	if (!jmap_mail_changes_args(env, args, &old, &max, error))
		return NULL;
	struct store_identity_change *ch = NULL;
	size_t n = 0;
	char err[256];
	if (store_identity_changes(ctx_of(env)->account, old, &ch, &n, &now, err, sizeof err) < 0) {
		log_error("jmap action=identity_changes error=\"%s\"", err);
		return jmap_mail_fail(error, "serverFail", "the store failed");
	}
	if (old > now) {
		free(ch);
		return jmap_mail_fail(error, "cannotCalculateChanges", "not a state of this server");
	}
	if (!jmap_mail_changes_fit(max, n, error)) {
		free(ch);
		return NULL;
	}
	json_t *created = json_array(), *updated = json_array(), *destroyed = json_array();
	for (size_t i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof id, "I%" PRId64, ch[i].id);
		json_array_append_new(ch[i].kind == STORE_IDENTITY_CREATED     ? created
				      : ch[i].kind == STORE_IDENTITY_DESTROYED ? destroyed
									       : updated,
				      json_string(id));
	}
	free(ch);
	char state[24];
	snprintf(state, sizeof state, "%" PRIu64, now);
	return jmap_mail_changes_result(args, state, created, updated, destroyed);
}

/* ------------------------------------------------------- Identity/set */

/* The store form of a whole Identity object o (a create, or the object
 * after a patch): NULL, or the SetError.  Strings of out point into o or
 * are owned (reply_to, bcc: free them). */
static json_t *from_json(json_t *o, bool create, struct store_identity *out)
{
	memset(out, 0, sizeof *out);
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		bool known = false;
		for (size_t i = 0; identity_props[i] != NULL; i++)
			known = known || strcmp(k, identity_props[i]) == 0;
		if (!known)
			return jmap_set_invalid(k, "not a property of Identity");
		if (create && (strcmp(k, "id") == 0 || strcmp(k, "mayDelete") == 0))
			return jmap_set_invalid(k, "set by the server");
	}
	const struct {
		const char *name;
		char **to;
		size_t max;
	} strs[] = {
	    {"name", &out->name, STORE_IDENTITY_NAME_MAX},
	    {"email", &out->email, 255},
	    {"textSignature", &out->text_signature, STORE_IDENTITY_SIGNATURE_MAX},
	    {"htmlSignature", &out->html_signature, STORE_IDENTITY_SIGNATURE_MAX},
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		v = json_object_get(o, strs[i].name);
		if (v == NULL)
			continue;
		if (!json_is_string(v) || json_string_length(v) > strs[i].max ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return jmap_set_invalid(strs[i].name,
						"must be a String (no NUL) within the size limit "
						"(docs/jmap.md)");
		*strs[i].to = (char *)json_string_value(v);
	}
	if (create && out->email == NULL)
		return jmap_set_invalid("email", "an Identity needs an email");
	const char *bad = NULL;
	v = json_object_get(o, "replyTo");
	if (v != NULL && !addrs_to_store(v, &out->reply_to, &bad))
		return jmap_set_invalid("replyTo", bad);
	v = json_object_get(o, "bcc");
	if (v != NULL && !addrs_to_store(v, &out->bcc, &bad)) {
		free(out->reply_to);
		out->reply_to = NULL;
		return jmap_set_invalid("bcc", bad);
	}
	return NULL;
}

/* May the user send as email?  NULL yes, else the SetError. */
static json_t *check_email(const struct jmap_api_env *env, const char *email)
{
	const struct jmap_mail_ctx *c = ctx_of(env);
	int r = store_may_send_as(c->store, store_account_id(c->account), email,
				  c->cfg->recipient_delimiter, c->cfg->submission_domain_senders);
	if (r < 0)
		return jmap_set_store_fail("Identity/set", "may_send_as", "database error");
	if (r == 0)
		return jmap_set_error("forbiddenFrom",
				      "the user may not send as that address (docs/jmap.md "
				      "\"Submission\")");
	return NULL;
}

static json_t *create_one(const struct jmap_api_env *env, const char *cid, json_t *o,
			  json_t **created)
{
	struct store_identity in;
	json_t *e = from_json(o, true, &in);
	if (e == NULL)
		e = check_email(env, in.email);
	char err[256];
	int64_t id = 0;
	int r = e == NULL ? store_identity_add(ctx_of(env)->account, &in, &id, err, sizeof err) : 0;
	free(in.reply_to);
	free(in.bcc);
	if (e != NULL)
		return e;
	if (r == -2)
		return jmap_set_error("invalidProperties", err);
	if (r == -3)
		return jmap_set_error("overQuota", err);
	if (r < 0)
		return jmap_set_store_fail("Identity/set", "create", err);
	char ids[32];
	snprintf(ids, sizeof ids, "I%" PRId64, id);
	jmap_set_created_id(env, cid, ids);
	json_t *c = json_object();
	json_object_set_new(c, "id", json_string(ids));
	json_object_set_new(c, "mayDelete", json_true());
	/* the defaults of what the create left out (RFC 8620 5.3) */
	if (json_object_get(o, "name") == NULL)
		json_object_set_new(c, "name", json_string(""));
	if (json_object_get(o, "replyTo") == NULL)
		json_object_set_new(c, "replyTo", json_null());
	if (json_object_get(o, "bcc") == NULL)
		json_object_set_new(c, "bcc", json_null());
	if (json_object_get(o, "textSignature") == NULL)
		json_object_set_new(c, "textSignature", json_string(""));
	if (json_object_get(o, "htmlSignature") == NULL)
		json_object_set_new(c, "htmlSignature", json_string(""));
	*created = c;
	return NULL;
}

/* The object of id (or NULL: none); serverFail in *e on a store error. */
static json_t *current(const struct jmap_api_env *env, int64_t id, json_t **e)
{
	struct store_identity *v;
	size_t n;
	char state[24];
	json_t *err = NULL;
	if (!load(env, &v, &n, state, &err)) {
		json_decref(err);
		*e = jmap_set_error("serverFail", "the store failed");
		return NULL;
	}
	json_t *o = NULL;
	for (size_t i = 0; i < n && o == NULL; i++)
		if (v[i].id == id)
			o = identity_json(&v[i]);
	store_identity_free(v, n);
	return o;
}

/* Applies one PatchObject entry (RFC 8620 5.3: a JSON pointer, without
 * the leading '/', to a member to set, or null to remove) to o.  False
 * if the path names nothing that can be set. */
static bool patch_one(json_t *o, const char *path, json_t *value)
{
	char *copy = xstrdup(path);
	json_t *at = o;
	char *seg = copy;
	bool ok = true;
	for (;;) {
		char *slash = strchr(seg, '/');
		if (slash)
			*slash = '\0';
		/* ~1 is '/', ~0 is '~' (RFC 6901) */
		char *w = seg;
		for (char *r = seg; *r; r++) {
			if (r[0] == '~' && (r[1] == '0' || r[1] == '1')) {
				*w++ = r[1] == '0' ? '~' : '/';
				r++;
			} else if (r[0] == '~') {
				ok = false;
				break;
			} else {
				*w++ = *r;
			}
		}
		*w = '\0';
		if (!ok)
			break;
		json_t *next = NULL;
		size_t idx = 0;
		bool is_index = false;
		if (json_is_array(at)) {
			uint64_t u;
			if (!jmap_json_decimal(seg, &u) || u >= json_array_size(at)) {
				ok = false;
				break;
			}
			idx = (size_t)u;
			is_index = true;
			next = json_array_get(at, idx);
		} else if (json_is_object(at)) {
			next = json_object_get(at, seg);
		} else {
			ok = false;
			break;
		}
		if (slash == NULL) {
			if (is_index)
				ok = !json_is_null(value) &&
				     json_array_set(at, idx, value) == 0;
			else if (json_is_null(value) && at != o)
				json_object_del(at, seg);
			else
				json_object_set(at, seg, value);
			break;
		}
		if (next == NULL) {
			ok = false;
			break;
		}
		at = next;
		seg = slash + 1;
	}
	free(copy);
	return ok;
}

static json_t *update_one(const struct jmap_api_env *env, const char *key, json_t *patch)
{
	int64_t id = parse_id(jmap_set_resolve(env, key));
	json_t *e = NULL;
	json_t *o = id ? current(env, id, &e) : NULL;
	if (o == NULL)
		return e ? e : jmap_set_error("notFound", NULL);
	json_t *before = json_deep_copy(o);
	const char *path;
	json_t *v;
	json_object_foreach(patch, path, v)
	{
		if (!patch_one(o, path, v)) {
			json_decref(o);
			json_decref(before);
			return jmap_set_error("invalidPatch", "a path names nothing to set");
		}
	}
	const char *fixed[] = {"id", "email", "mayDelete"};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (!json_equal(json_object_get(o, fixed[i]), json_object_get(before, fixed[i]))) {
			json_decref(o);
			json_decref(before);
			return jmap_set_invalid(fixed[i], "immutable");
		}
	json_decref(before);
	struct store_identity in;
	e = from_json(o, false, &in);
	if (e != NULL) {
		json_decref(o);
		return e;
	}
	in.email = NULL; /* immutable: not written */
	char err[256];
	int r = store_identity_update(ctx_of(env)->account, id, &in, true, true, err, sizeof err);
	free(in.reply_to);
	free(in.bcc);
	json_decref(o);
	if (r == 0)
		return jmap_set_error("notFound", NULL);
	if (r == -2)
		return jmap_set_error("invalidProperties", err);
	if (r < 0)
		return jmap_set_store_fail("Identity/set", "update", err);
	return NULL;
}

static json_t *destroy_one(const struct jmap_api_env *env, const char *key, void *unused)
{
	(void)unused;
	int64_t id = parse_id(jmap_set_resolve(env, key));
	if (id == 0)
		return jmap_set_error("notFound", NULL);
	char err[256];
	int r = store_identity_remove(ctx_of(env)->account, id, err, sizeof err);
	if (r == 0)
		return jmap_set_error("notFound", NULL);
	if (r == -2)
		return jmap_set_error("forbidden", "the identity of the user's own address stays");
	if (r < 0)
		return jmap_set_store_fail("Identity/set", "destroy", err);
	return NULL;
}

/* The identities' state; false with *error. */
static bool identity_state(const struct jmap_api_env *env, char state[24], json_t **error)
{
	struct store_identity *v;
	size_t n;
	if (!load(env, &v, &n, state, error))
		return false;
	store_identity_free(v, n);
	return true;
}

json_t *jmap_identity_set(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId", "ifInState", "create",
					      "update",	   "destroy",	NULL};
	/* jmap_set_begin checks ifInState against the mail state: the
	 * identities have their own, checked here */
	json_t *a2 = json_copy(args);
	json_t *if_in = json_object_get(args, "ifInState");
	json_object_del(a2, "ifInState");
	struct jmap_set s;
	bool begun = jmap_mail_args_known(args, allowed, error) &&
		     jmap_set_begin(env, a2, allowed, &s, error);
	json_decref(a2);
	if (!begun)
		return NULL;
	char old[24];
	if (!identity_state(env, old, error)) {
		jmap_set_free(&s);
		return NULL;
	}
	if (if_in != NULL && !json_is_null(if_in) &&
	    (!json_is_string(if_in) || strcmp(json_string_value(if_in), old) != 0)) {
		jmap_set_free(&s);
		return jmap_mail_fail(error, "stateMismatch", "ifInState is not the state now");
	}
	const char *key;
	json_t *val;
	json_object_foreach(s.create, key, val)
	{
		json_t *c = NULL, *e = create_one(env, key, val, &c);
		if (e != NULL)
			json_object_set_new(s.not_created, key, e);
		else
			json_object_set_new(s.created, key, c);
	}
	jmap_set_run(env, &s, update_one, destroy_one, NULL);
	char now[24];
	if (!identity_state(env, now, error)) {
		jmap_set_free(&s);
		return NULL;
	}
	json_t *r = jmap_set_finish(env, args, &s, error);
	if (r != NULL) {
		json_object_set_new(r, "oldState", json_string(old));
		json_object_set_new(r, "newState", json_string(now));
	}
	return r;
}
