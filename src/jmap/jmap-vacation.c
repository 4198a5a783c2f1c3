/*
 * jmap-vacation.c - VacationResponse/get and /set (RFC 8621 8, capability
 * urn:ietf:params:jmap:vacationresponse; docs/jmap.md
 * "VacationResponse").
 *
 * The object is kept by the store (store-jmapvacation.c) with the reply
 * delivery sends, built here at each /set: the Sieve vacation action's
 * reason (RFC 5230), so that delivery answers through the Sieve vacation
 * code (smtp-sieve.c: same rules, same response tracking).  The reply is
 * the text alone when it is ASCII with lines of at most 998 bytes (as a
 * Sieve vacation without :mime); else a MIME entity (as with :mime):
 * text/plain, text/html, or multipart/alternative of both, each part
 * base64.  A null textBody with an htmlBody gets the HTML's text; both
 * null a default text.
 */
#include "jmap-vacation.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "fsutil.h"
#include "jmap-mail-util.h"
#include "jmap-set.h"
#include "store.h"
#include "textmatch.h"
#include "xalloc.h"

#define ID "singleton"
/* Bytes of subject, and of each body. */
#define SUBJECT_MAX 998
#define BODY_MAX (64 * 1024)

static const char default_text[] =
    "This is an automated reply: I am away and will read your message later.\n";

static const char *const props[] = {"id",      "isEnabled", "fromDate", "toDate",
				    "subject", "textBody",  "htmlBody", NULL};

static void state_of(uint64_t n, char out[24])
{
	snprintf(out, 24, "%" PRIu64, n);
}

static json_t *opt_string(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *object_of(const struct store_jmapvacation *v, json_t *want)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(ID));
	json_t *all[] = {v->enabled ? json_true() : json_false(),
			 opt_string(v->from_date),
			 opt_string(v->to_date),
			 opt_string(v->subject),
			 opt_string(v->text_body),
			 opt_string(v->html_body)};
	for (size_t i = 1; props[i] != NULL; i++) {
		bool keep = want == NULL;
		size_t k;
		json_t *p;
		json_array_foreach(want, k, p)
		{
			keep = keep || !strcmp(json_string_value(p), props[i]);
		}
		if (keep)
			json_object_set_new(o, props[i], all[i - 1]);
		else
			json_decref(all[i - 1]);
	}
	return o;
}

static bool load(const struct jmap_api_env *env, struct store_jmapvacation *v, json_t **error)
{
	char err[256] = "";
	if (store_jmapvacation_get(jmap_set_account(env), v, err, sizeof err) < 0) {
		*error = jmap_set_store_fail("VacationResponse", "read", err);
		return false;
	}
	return true;
}

json_t *jmap_vacation_get(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	json_t *ids, *want;
	if (!jmap_mail_get_args(env, args, props, &ids, &want, error))
		return NULL;
	struct store_jmapvacation v;
	if (!load(env, &v, error))
		return NULL;
	char state[24];
	state_of(v.state, state);
	json_t *list = json_array(), *not_found = json_array();
	bool found = ids == NULL;
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id)
	{
		if (!strcmp(json_string_value(id), ID))
			found = true;
		else
			json_array_append(not_found, id);
	}
	if (found)
		json_array_append_new(list, object_of(&v, want));
	store_jmapvacation_free(&v);
	return jmap_mail_get_result(args, state, list, not_found);
}

/* ------------------------------------------------------------------ /set */

static bool lines_short(const char *s)
{
	size_t line = 0;
	for (; *s != '\0'; s++) {
		line = *s == '\n' || *s == '\r' ? 0 : line + 1;
		if (line > 998)
			return false;
	}
	return true;
}

static bool ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* A MIME part: type, base64 of body in lines of 76. */
static void put_part(struct buf *b, const char *type, const char *body)
{
	buf_printf(b,
		   "Content-Type: %s; charset=utf-8\r\n"
		   "Content-Transfer-Encoding: base64\r\n\r\n",
		   type);
	size_t n = strlen(body);
	for (size_t i = 0; i < n; i += 57) {
		char enc[80];
		long e = base64_encode(body + i, n - i < 57 ? n - i : 57, enc, sizeof enc);
		if (e > 0)
			buf_printf(b, "%.*s\r\n", (int)e, enc);
	}
}

/* The text of html: tags removed (textmatch_html_text, which leaves a
 * blank for each), runs of blanks one space, none at the ends of lines. */
static void html_text(const char *html, struct buf *out)
{
	struct buf raw;
	buf_init(&raw, 2 * BODY_MAX);
	textmatch_html_text(html, strlen(html), &raw);
	const char *p = buf_cstr(&raw);
	bool blank = false, line_start = true;
	for (; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t') {
			blank = true;
			continue;
		}
		if (*p != '\n' && *p != '\r' && blank && !line_start)
			buf_putc(out, ' ');
		blank = false;
		line_start = *p == '\n' || *p == '\r';
		buf_putc(out, *p);
	}
	buf_putc(out, '\n');
	buf_free(&raw);
}

/* The reason delivery sends for v (v->reason, v->mime). */
static void build_reply(struct store_jmapvacation *v)
{
	char *text = v->text_body;
	struct buf t;
	buf_init(&t, 2 * BODY_MAX);
	if (text == NULL && v->html_body != NULL) {
		html_text(v->html_body, &t);
		text = (char *)buf_cstr(&t);
	} else if (text == NULL) {
		text = (char *)default_text;
	}
	free(v->reason);
	v->mime = v->html_body != NULL || !ascii(text) || !lines_short(text);
	if (!v->mime) {
		v->reason = xstrdup(text);
		buf_free(&t);
		return;
	}
	struct buf b;
	buf_init(&b, 4 * BODY_MAX + 4096);
	if (v->html_body == NULL) {
		put_part(&b, "text/plain", text);
	} else {
		char id[25];
		fsutil_unique_id(id);
		buf_printf(&b,
			   "Content-Type: multipart/alternative; boundary=\"=_tern_vacation_%s\"\r\n"
			   "\r\n--=_tern_vacation_%s\r\n",
			   id, id);
		put_part(&b, "text/plain", text);
		buf_printf(&b, "--=_tern_vacation_%s\r\n", id);
		put_part(&b, "text/html", v->html_body);
		buf_printf(&b, "--=_tern_vacation_%s--\r\n", id);
	}
	v->reason = buf_steal(&b, NULL);
	buf_free(&t);
}

/* One property of a patch into v; NULL or the SetError. */
static json_t *patch_one(struct store_jmapvacation *v, const char *key, json_t *val)
{
	if (!strcmp(key, "isEnabled")) {
		if (!json_is_boolean(val))
			return jmap_set_invalid(key, "isEnabled is a Boolean");
		v->enabled = json_is_true(val);
		return NULL;
	}
	bool is_from = !strcmp(key, "fromDate");
	if (is_from || !strcmp(key, "toDate")) {
		char **d = is_from ? &v->from_date : &v->to_date;
		int64_t *t = is_from ? &v->from_time : &v->to_time;
		time_t when = 0;
		if (!json_is_null(val) &&
		    (!json_is_string(val) || !jmap_set_utc_date(json_string_value(val), &when)))
			return jmap_set_invalid(key, "a UTCDate or null");
		free(*d);
		*d = json_is_null(val) ? NULL : xstrdup(json_string_value(val));
		*t = (int64_t)when;
		return NULL;
	}
	char **s = !strcmp(key, "subject")    ? &v->subject
		   : !strcmp(key, "textBody") ? &v->text_body
		   : !strcmp(key, "htmlBody") ? &v->html_body
					      : NULL;
	if (s == NULL)
		return jmap_set_invalid(key, !strcmp(key, "id") ? "id is server-set"
								: "no such property");
	if (!json_is_null(val) && !json_is_string(val))
		return jmap_set_invalid(key, "a String or null");
	const char *str = json_is_null(val) ? NULL : json_string_value(val);
	size_t n = str != NULL ? json_string_length(val) : 0;
	if (str != NULL && (strlen(str) != n || n > (s == &v->subject ? SUBJECT_MAX : BODY_MAX)))
		return jmap_set_invalid(key, s == &v->subject ? "at most 998 bytes"
							      : "at most 65536 bytes");
	if (s == &v->subject && str != NULL && strpbrk(str, "\r\n") != NULL)
		return jmap_set_invalid(key, "the subject is one line");
	free(*s);
	*s = str != NULL ? xstrdup(str) : NULL;
	return NULL;
}

static json_t *update(const struct jmap_api_env *env, const char *id, json_t *patch)
{
	if (strcmp(id, ID) != 0)
		return jmap_set_error("notFound", NULL);
	struct store_jmapvacation v;
	json_t *e = NULL;
	if (!load(env, &v, &e))
		return e;
	const char *key;
	json_t *val;
	json_object_foreach(patch, key, val)
	{
		if ((e = patch_one(&v, key, val)) != NULL)
			break;
	}
	if (e == NULL) {
		build_reply(&v);
		char err[256] = "";
		int r = store_jmapvacation_put(jmap_set_account(env), &v, v.state, err, sizeof err);
		if (r == -2)
			e = jmap_set_error("serverFail", "changed meanwhile: try again");
		else if (r < 0)
			e = jmap_set_store_fail("VacationResponse/set", "write", err);
	}
	store_jmapvacation_free(&v);
	return e;
}

static json_t *destroy(const struct jmap_api_env *env, const char *id, void *ctx)
{
	(void)env, (void)ctx;
	return !strcmp(id, ID) ? jmap_set_error("singleton", "the singleton cannot be destroyed")
			       : jmap_set_error("notFound", NULL);
}

json_t *jmap_vacation_set(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId", "ifInState", "create",
					      "update",    "destroy",   NULL};
	struct jmap_set s;
	if (!jmap_set_check_args(env, args, allowed, &s, error))
		return NULL;
	struct store_jmapvacation v;
	if (!load(env, &v, error))
		return NULL;
	state_of(v.state, s.old_state);
	store_jmapvacation_free(&v);
	if (!jmap_set_state_ok(args, s.old_state, error))
		return NULL;
	jmap_set_start(&s);
	const char *cid;
	json_t *val;
	json_object_foreach(s.create, cid, val)
	{
		json_object_set_new(s.not_created, cid,
				    jmap_set_error("singleton", "there is one VacationResponse"));
	}
	jmap_set_run(env, &s, update, destroy, NULL);
	if (!load(env, &v, error)) {
		jmap_set_free(&s);
		return NULL;
	}
	char state[24];
	state_of(v.state, state);
	store_jmapvacation_free(&v);
	return jmap_set_response(args, &s, state);
}
