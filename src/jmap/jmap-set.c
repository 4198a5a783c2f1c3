/*
 * jmap-set.c - see jmap-set.h.
 */
#include "jmap-set.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "caldate.h"
#include "jmap-json.h"
#include "jmap-mail-util.h"
#include "jmap-mail.h"
#include "log.h"
#include "store.h"

bool jmap_set_check_args(const struct jmap_api_env *env, json_t *args, const char *const *allowed,
			 struct jmap_set *s, json_t **error)
{
	memset(s, 0, sizeof *s);
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return false;
	json_t *if_in = json_object_get(args, "ifInState");
	json_t *c = json_object_get(args, "create");
	json_t *u = json_object_get(args, "update");
	json_t *d = json_object_get(args, "destroy");
	if (if_in != NULL && !json_is_null(if_in) && !json_is_string(if_in)) {
		*error = jmap_api_error("invalidArguments", "ifInState must be null or a String");
		return false;
	}
	s->create = c != NULL && !json_is_null(c) ? c : NULL;
	s->update = u != NULL && !json_is_null(u) ? u : NULL;
	s->destroy = d != NULL && !json_is_null(d) ? d : NULL;
	const char *key;
	json_t *v;
	size_t i, total = 0;
	if (s->create != NULL) {
		if (!json_is_object(s->create)) {
			*error =
			    jmap_api_error("invalidArguments", "create must be null or Id[Object]");
			return false;
		}
		json_object_foreach(s->create, key, v)
		{
			if (!jmap_json_is_id(key) || !json_is_object(v)) {
				*error = jmap_api_error("invalidArguments",
							"create maps creation ids to objects");
				return false;
			}
		}
		total += json_object_size(s->create);
	}
	if (s->update != NULL) {
		if (!json_is_object(s->update)) {
			*error = jmap_api_error("invalidArguments",
						"update must be null or Id[PatchObject]");
			return false;
		}
		json_object_foreach(s->update, key, v)
		{
			if (!json_is_object(v)) {
				*error = jmap_api_error("invalidArguments",
							"update maps ids to PatchObjects");
				return false;
			}
		}
		total += json_object_size(s->update);
	}
	if (s->destroy != NULL) {
		if (!json_is_array(s->destroy)) {
			*error = jmap_api_error("invalidArguments", "destroy must be null or Id[]");
			return false;
		}
		json_array_foreach(s->destroy, i, v)
		{
			if (!json_is_string(v)) {
				*error = jmap_api_error("invalidArguments", "destroy holds ids");
				return false;
			}
		}
		total += json_array_size(s->destroy);
	}
	if (total > JMAP_MAX_OBJECTS_IN_SET) {
		*error = jmap_api_error("requestTooLarge", "more than maxObjectsInSet objects");
		return false;
	}
	return true;
}

bool jmap_set_state_ok(json_t *args, const char *state, json_t **error)
{
	json_t *if_in = json_object_get(args, "ifInState");
	if (if_in != NULL && json_is_string(if_in) && strcmp(json_string_value(if_in), state) != 0) {
		*error = jmap_api_error("stateMismatch", NULL);
		return false;
	}
	return true;
}

void jmap_set_start(struct jmap_set *s)
{
	s->created = json_object();
	s->updated = json_object();
	s->destroyed = json_array();
	s->not_created = json_object();
	s->not_updated = json_object();
	s->not_destroyed = json_object();
}

bool jmap_set_begin(const struct jmap_api_env *env, json_t *args, const char *const *allowed,
		    struct jmap_set *s, json_t **error)
{
	if (!jmap_set_check_args(env, args, allowed, s, error) ||
	    !jmap_mail_sync_state(env, s->old_state, NULL, error) ||
	    !jmap_set_state_ok(args, s->old_state, error))
		return false;
	jmap_set_start(s);
	return true;
}

void jmap_set_run(const struct jmap_api_env *env, struct jmap_set *s,
		  json_t *(*update)(const struct jmap_api_env *env, const char *id, json_t *patch),
		  json_t *(*destroy)(const struct jmap_api_env *env, const char *id, void *ctx),
		  void *ctx)
{
	const char *key;
	json_t *val;
	size_t i;
	/* the answers name the ids, "#cid" resolved (when it names one) */
	json_object_foreach(s->update, key, val)
	{
		json_t *e = update(env, key, val);
		const char *id = jmap_set_resolve(env, key);
		id = id ? id : key;
		if (e != NULL)
			json_object_set_new(s->not_updated, id, e);
		else
			json_object_set_new(s->updated, id, json_null());
	}
	json_array_foreach(s->destroy, i, val)
	{
		const char *key2 = json_string_value(val), *id = jmap_set_resolve(env, key2);
		json_t *e = destroy(env, key2, ctx);
		id = id ? id : key2;
		if (e != NULL)
			json_object_set_new(s->not_destroyed, id, e);
		else
			json_array_append_new(s->destroyed, json_string(id));
	}
}

void jmap_set_free(struct jmap_set *s)
{
	json_t **all[] = {&s->created,     &s->updated,     &s->destroyed,
			  &s->not_created, &s->not_updated, &s->not_destroyed};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		json_decref(*all[i]);
		*all[i] = NULL;
	}
}

static void put_map(json_t *r, const char *name, json_t **v)
{
	bool empty = json_is_array(*v) ? json_array_size(*v) == 0 : json_object_size(*v) == 0;
	json_object_set_new(r, name, empty ? json_null() : json_incref(*v));
}

json_t *jmap_set_finish(const struct jmap_api_env *env, json_t *args, struct jmap_set *s,
			json_t **error)
{
	char state[24];
	if (!jmap_mail_sync_state(env, state, NULL, error)) {
		jmap_set_free(s);
		return NULL;
	}
	return jmap_set_response(args, s, state);
}

json_t *jmap_set_response(json_t *args, struct jmap_set *s, const char *state)
{
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set_new(r, "oldState", json_string(s->old_state));
	json_object_set_new(r, "newState", json_string(state));
	put_map(r, "created", &s->created);
	put_map(r, "updated", &s->updated);
	put_map(r, "destroyed", &s->destroyed);
	put_map(r, "notCreated", &s->not_created);
	put_map(r, "notUpdated", &s->not_updated);
	put_map(r, "notDestroyed", &s->not_destroyed);
	jmap_set_free(s);
	return r;
}

struct store_account *jmap_set_account(const struct jmap_api_env *env)
{
	const struct jmap_mail_ctx *c = env->methods_ctx;
	return c->account;
}

json_t *jmap_set_store_fail(const char *method, const char *op, const char *err)
{
	log_error("jmap action=%s op=%s error=\"%s\"", method, op, err);
	return jmap_api_error("serverFail", "the store failed");
}

json_t *jmap_set_error(const char *type, const char *description)
{
	return jmap_api_error(type, description);
}

json_t *jmap_set_invalid(const char *property, const char *description)
{
	json_t *e = jmap_api_error("invalidProperties", description);
	json_object_set_new(e, "properties", json_pack("[s]", property));
	return e;
}

const char *jmap_set_resolve(const struct jmap_api_env *env, const char *id)
{
	if (id[0] != '#')
		return id;
	return json_string_value(json_object_get(env->created_ids, id + 1));
}

void jmap_set_created_id(const struct jmap_api_env *env, const char *cid, const char *id)
{
	json_object_set_new(env->created_ids, cid, json_string(id));
}

bool jmap_set_keyword_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c < 0x21 || c > 0x7e || strchr("(){]%*\"\\", c) != NULL)
			return false;
	}
	return true;
}

static const struct {
	const char *name;
	unsigned bit;
} system_keywords[] = {
    {"$seen", STORE_F_SEEN},
    {"$answered", STORE_F_ANSWERED},
    {"$flagged", STORE_F_FLAGGED},
    {"$draft", STORE_F_DRAFT},
};

bool jmap_set_keyword_imap(const char *k, unsigned *flag, char *kw, size_t n)
{
	*flag = 0;
	kw[0] = '\0';
	if (!jmap_set_keyword_ok(k) || strlen(k) >= n)
		return false;
	for (size_t i = 0; i < sizeof system_keywords / sizeof system_keywords[0]; i++)
		if (strcasecmp(k, system_keywords[i].name) == 0) {
			*flag = system_keywords[i].bit;
			return true;
		}
	size_t i = 0;
	for (; k[i]; i++)
		kw[i] = (char)tolower((unsigned char)k[i]);
	kw[i] = '\0';
	return true;
}

bool jmap_set_keywords_imap(json_t *map, unsigned *flags, char *kw, size_t n, const char **bad)
{
	*flags = 0;
	*bad = NULL;
	kw[0] = '\0';
	if (!json_is_object(map))
		return false;
	size_t len = 0;
	const char *key;
	json_t *v;
	json_object_foreach(map, key, v)
	{
		unsigned bit;
		char one[256];
		if (!json_is_true(v) || !jmap_set_keyword_imap(key, &bit, one, sizeof one)) {
			*bad = key;
			return false;
		}
		*flags |= bit;
		if (bit != 0)
			continue;
		size_t l = strlen(one);
		if (len + l + 2 > n) {
			*bad = key;
			return false;
		}
		if (len)
			kw[len++] = ' ';
		memcpy(kw + len, one, l + 1);
		len += l;
	}
	return true;
}

bool jmap_set_date_fields(const char *s, int v[6], const char **rest)
{
	static const char seps[] = "--T::";
	static const int widths[] = {4, 2, 2, 2, 2, 2};
	const char *p = s;
	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		for (int k = 0; k < widths[i]; k++, p++) {
			if (*p < '0' || *p > '9')
				return false;
			v[i] = v[i] * 10 + (*p - '0');
		}
		if (i < 5 && *p++ != seps[i])
			return false;
	}
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return false;
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	*rest = p;
	return v[1] >= 1 && v[1] <= 12 && v[2] >= 1 && v[2] <= 31 && v[3] <= 23 && v[4] <= 59 &&
	       v[5] <= 60;
}

bool jmap_set_utc_date(const char *s, time_t *out)
{
	int v[6];
	const char *rest;
	if (!jmap_set_date_fields(s, v, &rest) || strcmp(rest, "Z") != 0)
		return false;
	int64_t days = caldate_days_from_civil(v[0], v[1], v[2]);
	*out = (time_t)(days * 86400 + (int64_t)v[3] * 3600 + v[4] * 60 + v[5]);
	return true;
}
