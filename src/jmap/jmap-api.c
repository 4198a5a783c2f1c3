/*
 * jmap-api.c - see jmap-api.h.  Above jmap-json.c, below jmap-server.c.
 *
 * The order of the checks follows RFC 8620 3.6.1: the body must parse as
 * I-JSON (notJSON), then match the Request type (notRequest), name only
 * capabilities we have (unknownCapability) and stay within the limits
 * (limit); then each method call runs in order, its result references
 * resolved against the responses before it (3.7), an error answering
 * that call alone (3.6.2).
 */
#include "jmap-api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap-json.h"

/* ---------------------------------------------------------------- errors */

char *jmap_api_problem(const char *type, int status, const char *detail, const char *limit,
		       size_t *len)
{
	char uri[128];
	if (strchr(type, ':') != NULL)
		snprintf(uri, sizeof uri, "%s", type);
	else
		snprintf(uri, sizeof uri, "urn:ietf:params:jmap:error:%s", type);
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string(uri));
	json_object_set_new(o, "status", json_integer(status));
	if (limit != NULL)
		json_object_set_new(o, "limit", json_string(limit));
	/* detail may quote client input: json_string refuses invalid UTF-8 */
	json_t *d = json_string(detail);
	json_object_set_new(o, "detail", d ? d : json_string("(unprintable)"));
	char *s = jmap_json_dump(o, len);
	json_decref(o);
	return s;
}

json_t *jmap_api_error(const char *type, const char *description)
{
	json_t *e = json_object();
	json_object_set_new(e, "type", json_string(type));
	if (description != NULL)
		json_object_set_new(e, "description", json_string(description));
	return e;
}

/* --------------------------------------------------------------- methods */

/* Runs one method: returns the response arguments (new reference), or
 * NULL with *error set to a method-level error object. */
typedef json_t *(*method_fn)(const struct jmap_api_env *env, json_t *args, json_t **error);

/* RFC 8620 4.1: the arguments, unchanged. */
static json_t *method_echo(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	return json_incref(args);
}

/* An account id argument: 0 ours, -1 not an Id string or not ours. */
static int our_account(const struct jmap_api_env *env, json_t *v)
{
	return json_is_string(v) && strcmp(json_string_value(v), env->account_id) == 0 ? 0 : -1;
}

/* RFC 8620 6.3.  A user has one account, so a copy is from it to it, and
 * a blob id means the same bytes in both: the copy keeps the id. */
static json_t *method_blob_copy(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v)
	{
		if (strcmp(key, "fromAccountId") != 0 && strcmp(key, "accountId") != 0 &&
		    strcmp(key, "blobIds") != 0) {
			char d[320];
			snprintf(d, sizeof d, "unknown argument %.256s", key);
			*error = jmap_api_error("invalidArguments", d);
			return NULL;
		}
	}
	json_t *from = json_object_get(args, "fromAccountId");
	json_t *to = json_object_get(args, "accountId");
	json_t *ids = json_object_get(args, "blobIds");
	if (!json_is_string(from) || !json_is_string(to) || !json_is_array(ids)) {
		*error = jmap_api_error(
		    "invalidArguments",
		    "fromAccountId and accountId (Id) and blobIds (Id[]) are required");
		return NULL;
	}
	size_t i;
	json_array_foreach(ids, i, v)
	{
		if (!json_is_string(v)) {
			*error = jmap_api_error("invalidArguments", "blobIds must be strings");
			return NULL;
		}
	}
	if (our_account(env, from) < 0) {
		*error = jmap_api_error("fromAccountNotFound", NULL);
		return NULL;
	}
	if (our_account(env, to) < 0) {
		*error = jmap_api_error("accountNotFound", NULL);
		return NULL;
	}
	if (json_array_size(ids) > JMAP_MAX_OBJECTS_IN_SET) {
		*error = jmap_api_error("requestTooLarge", "more than maxObjectsInSet blob ids");
		return NULL;
	}
	json_t *copied = json_object(), *not_copied = json_object();
	json_array_foreach(ids, i, v)
	{
		const char *id = json_string_value(v);
		int r = jmap_json_is_id(id) ? env->blob_exists(env->ctx, id) : 0;
		if (r < 0) {
			json_decref(copied);
			json_decref(not_copied);
			*error = jmap_api_error("serverFail", "the store failed");
			return NULL;
		}
		if (r > 0)
			json_object_set_new(copied, id, json_string(id));
		else
			json_object_set_new(not_copied, id, jmap_api_error("blobNotFound", NULL));
	}
	json_t *res = json_object();
	json_object_set(res, "fromAccountId", from);
	json_object_set(res, "accountId", to);
	json_object_set_new(res, "copied", json_object_size(copied) ? copied : json_null());
	json_object_set_new(res, "notCopied",
			    json_object_size(not_copied) ? not_copied : json_null());
	if (json_object_size(copied) == 0)
		json_decref(copied);
	if (json_object_size(not_copied) == 0)
		json_decref(not_copied);
	return res;
}

static const struct {
	const char *name;
	const char *capability;
	method_fn run;
} methods[] = {
    {"Core/echo", JMAP_CAP_CORE, method_echo},
    {"Blob/copy", JMAP_CAP_CORE, method_blob_copy},
};

/* The capabilities a request may name in "using". */
static const char *const capabilities[] = {JMAP_CAP_CORE};

/* ------------------------------------------------------ result references */

/* RFC 8620 3.7: a copy of args with every "#name": ResultReference
 * replaced by "name": its value.  NULL with *error set on failure. */
static json_t *resolve_refs(json_t *args, json_t *responses, json_t **error)
{
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v)
	{
		if (key[0] != '#') {
			json_object_set(out, key, v);
			continue;
		}
		if (json_object_get(args, key + 1) != NULL) {
			char d[320];
			snprintf(d, sizeof d, "%.256s given both plain and as a result reference",
				 key + 1);
			*error = jmap_api_error("invalidArguments", d);
			goto fail;
		}
		json_t *of = json_object_get(v, "resultOf");
		json_t *name = json_object_get(v, "name");
		json_t *path = json_object_get(v, "path");
		if (!json_is_object(v) || !json_is_string(of) || !json_is_string(name) ||
		    !json_is_string(path)) {
			*error =
			    jmap_api_error("invalidResultReference",
					 "a ResultReference has resultOf, name and path strings");
			goto fail;
		}
		json_t *found = NULL;
		size_t i;
		json_t *r;
		json_array_foreach(responses, i, r)
		{
			if (json_equal(json_array_get(r, 2), of)) {
				found = r;
				break;
			}
		}
		if (found == NULL || !json_equal(json_array_get(found, 0), name)) {
			*error =
			    jmap_api_error("invalidResultReference",
					 found ? "the response named by resultOf has another name"
					       : "no earlier response has that resultOf id");
			goto fail;
		}
		json_t *val = jmap_json_pointer(json_array_get(found, 1), json_string_value(path));
		if (val == NULL) {
			*error = jmap_api_error("invalidResultReference",
					      "the path names nothing in that response");
			goto fail;
		}
		json_object_set_new(out, key + 1, val);
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* ---------------------------------------------------------------- request */

static int problem(int status, const char *type, const char *detail, const char *limit, char **out,
		   size_t *outlen, bool *is_problem)
{
	*out = jmap_api_problem(type, status, detail, limit, outlen);
	*is_problem = true;
	return status;
}

/* The Request type (RFC 8620 3.3): NULL if it matches, else why not. */
static const char *check_request(json_t *req)
{
	if (!json_is_object(req))
		return "the request is not a JSON object";
	json_t *using = json_object_get(req, "using");
	json_t *calls = json_object_get(req, "methodCalls");
	json_t *created = json_object_get(req, "createdIds");
	if (!json_is_array(using))
		return "\"using\" must be an array of strings";
	size_t i;
	json_t *v;
	json_array_foreach(using, i, v)
	{
		if (!json_is_string(v))
			return "\"using\" must be an array of strings";
	}
	if (!json_is_array(calls))
		return "\"methodCalls\" must be an array of Invocations";
	json_array_foreach(calls, i, v)
	{
		if (!json_is_array(v) || json_array_size(v) != 3 ||
		    !json_is_string(json_array_get(v, 0)) ||
		    !json_is_object(json_array_get(v, 1)) || !json_is_string(json_array_get(v, 2)))
			return "each method call must be [name, arguments object, method call id]";
	}
	if (created != NULL) {
		if (!json_is_object(created))
			return "\"createdIds\" must be an object of Id to Id";
		const char *k;
		json_object_foreach(created, k, v)
		{
			if (!json_is_string(v) || !jmap_json_is_id(k) ||
			    !jmap_json_is_id(json_string_value(v)))
				return "\"createdIds\" must be an object of Id to Id";
		}
	}
	return NULL;
}

static bool known_capability(const struct jmap_api_env *env, const char *uri)
{
	if (env->capability != NULL && strcmp(uri, env->capability) == 0)
		return true;
	for (size_t i = 0; i < sizeof capabilities / sizeof capabilities[0]; i++)
		if (strcmp(uri, capabilities[i]) == 0)
			return true;
	/* a capability of one of the methods served (JMAP_CAP_SUBMISSION,
	 * JMAP_CAP_VACATION) */
	for (size_t m = 0; m < env->n_methods; m++)
		if (strcmp(uri, env->methods[m].capability) == 0)
			return true;
	return false;
}

static bool in_using(json_t *using, const char *uri)
{
	size_t i;
	json_t *v;
	json_array_foreach(using, i, v)
	{
		if (strcmp(json_string_value(v), uri) == 0)
			return true;
	}
	return false;
}

/* One method call: appends its response (or error) to responses. */
static void run_call(const struct jmap_api_env *env, json_t *using, json_t *call, json_t *responses)
{
	const char *name = json_string_value(json_array_get(call, 0));
	json_t *args = json_array_get(call, 1);
	json_t *call_id = json_array_get(call, 2);
	json_t *error = NULL, *res = NULL;
	const char *cap = NULL;
	method_fn run = NULL;
	for (size_t m = 0; m < sizeof methods / sizeof methods[0] && run == NULL; m++)
		if (strcmp(methods[m].name, name) == 0)
			cap = methods[m].capability, run = methods[m].run;
	for (size_t m = 0; m < env->n_methods && run == NULL; m++)
		if (strcmp(env->methods[m].name, name) == 0)
			cap = env->methods[m].capability, run = env->methods[m].run;
	/* 3.3: a method of a capability the request did not name is unknown. */
	if (run == NULL || !in_using(using, cap)) {
		error = jmap_api_error("unknownMethod", NULL);
	} else {
		json_t *resolved = resolve_refs(args, responses, &error);
		if (resolved != NULL) {
			res = run(env, resolved, &error);
			json_decref(resolved);
		}
	}
	json_t *r = json_array();
	if (res != NULL) {
		json_array_append_new(r, json_string(name));
		json_array_append_new(r, res);
	} else {
		json_array_append_new(r, json_string("error"));
		json_array_append_new(r, error);
	}
	json_array_append(r, call_id);
	json_array_append_new(responses, r);
	/* the implicit calls the method made (RFC 8621 7.5): their responses
	 * follow its own, with its call id */
	size_t k;
	json_t *x;
	json_array_foreach(env->implicit, k, x)
	{
		json_array_append(x, call_id);
		json_array_append(responses, x);
	}
	json_array_clear(env->implicit);
}

void jmap_api_implicit(const struct jmap_api_env *env, const char *name, json_t *args)
{
	json_t *r = json_array();
	json_array_append_new(r, json_string(name));
	json_array_append_new(r, args);
	json_array_append_new(env->implicit, r);
}

int jmap_api_request(const struct jmap_api_env *env, const char *body, size_t len, char **out,
		     size_t *outlen, bool *is_problem)
{
	*is_problem = false;
	if (len > env->max_size_request) {
		char d[96];
		snprintf(d, sizeof d, "the request is larger than %llu bytes",
			 (unsigned long long)env->max_size_request);
		return problem(400, "limit", d, "maxSizeRequest", out, outlen, is_problem);
	}
	char why[200];
	json_t *req = jmap_json_parse(body, len, JMAP_JSON_MAX_DEPTH, why, sizeof why);
	if (req == NULL) {
		char d[260];
		snprintf(d, sizeof d, "the request is not I-JSON: %s", why);
		return problem(400, "notJSON", d, NULL, out, outlen, is_problem);
	}
	const char *bad = check_request(req);
	if (bad != NULL) {
		int st = problem(400, "notRequest", bad, NULL, out, outlen, is_problem);
		json_decref(req);
		return st;
	}
	json_t *using = json_object_get(req, "using");
	size_t i;
	json_t *v;
	json_array_foreach(using, i, v)
	{
		if (!known_capability(env, json_string_value(v))) {
			char d[320];
			snprintf(d, sizeof d, "unknown capability %.256s", json_string_value(v));
			int st =
			    problem(400, "unknownCapability", d, NULL, out, outlen, is_problem);
			json_decref(req);
			return st;
		}
	}
	json_t *calls = json_object_get(req, "methodCalls");
	if (json_array_size(calls) > env->max_calls_in_request) {
		char d[96];
		snprintf(d, sizeof d, "more than %llu method calls",
			 (unsigned long long)env->max_calls_in_request);
		int st = problem(400, "limit", d, "maxCallsInRequest", out, outlen, is_problem);
		json_decref(req);
		return st;
	}
	json_t *responses = json_array();
	json_t *created = json_object_get(req, "createdIds");
	struct jmap_api_env e = *env;
	e.created_ids = created != NULL ? json_deep_copy(created) : json_object();
	e.implicit = json_array();
	json_array_foreach(calls, i, v)
	{
		run_call(&e, using, v, responses);
	}
	json_t *resp = json_object();
	json_object_set_new(resp, "methodResponses", responses);
	/* 3.4: createdIds comes back only if the request had it */
	if (created != NULL)
		json_object_set(resp, "createdIds", e.created_ids);
	json_decref(e.created_ids);
	json_decref(e.implicit);
	json_object_set_new(resp, "sessionState", json_string(env->session_state));
	*out = jmap_json_dump(resp, outlen);
	json_decref(resp);
	json_decref(req);
	return 200;
}
