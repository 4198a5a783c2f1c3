/*
 * jmap-email-get.c - see jmap-email-get.h.  Above the store (message
 * files, copies, uploaded blobs) and jmap-email-parts.c (the message as
 * JMAP shows it); the metadata properties (id, blobId, threadId,
 * mailboxIds, keywords, size, receivedAt) are made here.
 *
 * keywords: the union over the Email's copies (docs/jmap.md, the rule the
 * three Email method files share): \Seen, \Flagged, \Answered, \Draft
 * as $seen, $flagged, $answered, $draft, the other IMAP keywords lower
 * case; \Deleted and \Recent are not shown (RFC 8621 4.1.1).
 */
#include "jmap-email-get.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "jmap-email-parts.h"
#include "jmap-json.h"
#include "jmap-mail-util.h"
#include "jmap-mail.h"
#include "log.h"
#include "mime.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

/* ------------------------------------------------------------- blobs */

bool jmap_email_blob_id_ours(const char *id)
{
	size_t base = strcspn(id, "_");
	if (id[0] == 'F')
		return store_name_is_file_id(id + 1, base - 1);
	return id[0] == 'G' && id[base] == '_';
}

/* The whole blob base[0..n) (no part path): 1, 0, -1. */
static int base_read(struct store_account *a, const char *base, size_t n, struct buf *out,
		     char *err, size_t errsz)
{
	char id[STORE_BLOB_ID_LEN + 1];
	if (n == 0 || n > STORE_BLOB_ID_LEN)
		return 0;
	memcpy(id, base, n);
	id[n] = '\0';
	size_t len = 0;
	char *data = NULL;
	if (id[0] == 'F') {
		struct store_jmap_copy *c = NULL;
		size_t nc = 0;
		if (!store_name_is_file_id(id + 1, n - 1))
			return 0;
		int r = store_jmap_email_copies(a, id + 1, &c, &nc, err, errsz);
		free(c);
		if (r <= 0)
			return r;
		char path[4096];
		if (store_message_path(a, id + 1, path, sizeof path) < 0) {
			strutil_errf(err, errsz, "no path for message %s", id + 1);
			return -1;
		}
		data = fsutil_read_file(path, JMAP_EMAIL_BLOB_MAX, &len);
		if (data == NULL) {
			if (errno == ENOENT)
				return 0; /* expunged meanwhile */
			strutil_errf(err, errsz, "read %s: %s", path, strerror(errno));
			return -1;
		}
	} else {
		uint64_t size;
		int fd = store_blob_open(a, id, (int64_t)time(NULL), &size, err, errsz);
		if (fd == -2)
			return 0;
		if (fd < 0)
			return -1;
		data = fsutil_read_fd(fd, JMAP_EMAIL_BLOB_MAX, &len);
		int e = errno;
		close(fd);
		if (data == NULL) {
			strutil_errf(err, errsz, "read blob %s: %s", id, strerror(e));
			return -1;
		}
	}
	int r = buf_append(out, data, len) < 0 ? -1 : 1;
	if (r < 0)
		strutil_errf(err, errsz, "blob %s too large", id);
	free(data);
	return r;
}

int jmap_email_blob_read(struct store_account *a, const char *id, struct buf *out, char *err,
			 size_t errsz)
{
	size_t base = strcspn(id, "_");
	if (id[base] == '\0')
		return base_read(a, id, base, out, err, errsz);
	unsigned path[2 * MIME_MAX_DEPTH + 2];
	size_t n = 0;
	if (!jmap_email_parts_path(id + base, path, sizeof path / sizeof path[0], &n))
		return 0;
	struct buf whole = BUF_INIT;
	int r = base_read(a, id, base, &whole, err, errsz);
	if (r == 1) {
		r = jmap_email_parts_blob(buf_cstr(&whole), whole.len, path, n, out);
		if (r < 0)
			strutil_errf(err, errsz, "blob %s too large", id);
	}
	buf_free(&whole);
	return r;
}

/* --------------------------------------------------------- arguments */

static const char *const meta_props[] = {"id",       "blobId", "threadId",   "mailboxIds",
					 "keywords", "size",   "receivedAt", NULL};

static const char *const get_default[] = {
    "id",        "blobId",    "threadId",    "mailboxIds", "keywords",      "size",    "receivedAt",
    "messageId", "inReplyTo", "references",  "sender",     "from",          "to",      "cc",
    "bcc",       "replyTo",   "subject",     "sentAt",     "hasAttachment", "preview", "bodyValues",
    "textBody",  "htmlBody",  "attachments", NULL};

static const char *const parse_default[] = {
    "messageId", "inReplyTo",  "references", "sender",   "from",        "to",
    "cc",        "bcc",        "replyTo",    "subject",  "sentAt",      "hasAttachment",
    "preview",   "bodyValues", "textBody",   "htmlBody", "attachments", NULL};

static bool is_meta(const char *p)
{
	for (size_t i = 0; meta_props[i] != NULL; i++)
		if (strcmp(meta_props[i], p) == 0)
			return true;
	return false;
}

/* A String[] of property names of Email (body false) or EmailBodyPart. */
static bool check_props(json_t *v, const char *arg, bool body, json_t **error)
{
	char why[320];
	if (!json_is_array(v)) {
		snprintf(why, sizeof why, "%s must be null or String[]", arg);
		*error = jmap_api_error("invalidArguments", why);
		return false;
	}
	size_t i;
	json_t *p;
	json_array_foreach(v, i, p)
	{
		if (!json_is_string(p)) {
			snprintf(why, sizeof why, "%s must be strings", arg);
			*error = jmap_api_error("invalidArguments", why);
			return false;
		}
		const char *s = json_string_value(p);
		if ((body || !is_meta(s)) && !jmap_email_prop_ok(s, body, why, sizeof why)) {
			char d[400];
			snprintf(d, sizeof d, "%s: %.64s: %s", arg, s, why);
			*error = jmap_api_error("invalidArguments", d);
			return false;
		}
	}
	return true;
}

static json_t *defaults(const char *const *names)
{
	json_t *a = json_array();
	for (size_t i = 0; names[i] != NULL; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

/* The body arguments shared by Email/get and Email/parse; *props a new
 * reference (the default when null). */
static bool body_args(json_t *args, const char *const *def, json_t **props,
		      struct jmap_email_opts *o, json_t **error)
{
	memset(o, 0, sizeof *o);
	*props = NULL;
	json_t *p = json_object_get(args, "properties");
	if (p != NULL && !json_is_null(p) && !check_props(p, "properties", false, error))
		return false;
	json_t *bp = json_object_get(args, "bodyProperties");
	if (bp != NULL && !json_is_null(bp)) {
		if (!check_props(bp, "bodyProperties", true, error))
			return false;
		o->body_props = bp;
	}
	static const char *const flags[] = {"fetchTextBodyValues", "fetchHTMLBodyValues",
					    "fetchAllBodyValues"};
	bool *dst[] = {&o->fetch_text, &o->fetch_html, &o->fetch_all};
	for (size_t i = 0; i < 3; i++) {
		json_t *f = json_object_get(args, flags[i]);
		if (f == NULL || json_is_null(f))
			continue;
		if (!json_is_boolean(f)) {
			char d[96];
			snprintf(d, sizeof d, "%s must be a Boolean", flags[i]);
			*error = jmap_api_error("invalidArguments", d);
			return false;
		}
		*dst[i] = json_is_true(f);
	}
	json_int_t max = 0;
	if (!jmap_mail_uint_arg(args, "maxBodyValueBytes", false, &max, error))
		return false;
	o->max_body_value_bytes = (size_t)max;
	*props = p != NULL && !json_is_null(p) ? json_incref(p) : defaults(def);
	o->props = *props;
	return true;
}

/* Whether props name anything read from the message itself. */
static bool needs_message(json_t *props)
{
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		if (!is_meta(json_string_value(p)))
			return true;
	}
	return false;
}

static bool want(json_t *props, const char *name)
{
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		if (strcmp(json_string_value(p), name) == 0)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------- Email/get */

static void utc_date(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *keywords_json(const struct store_jmap_copy *c, size_t n)
{
	static const struct {
		unsigned bit;
		const char *kw;
	} sys[] = {{STORE_F_SEEN, "$seen"},
		   {STORE_F_FLAGGED, "$flagged"},
		   {STORE_F_ANSWERED, "$answered"},
		   {STORE_F_DRAFT, "$draft"}};
	json_t *k = json_object();
	for (size_t i = 0; i < n; i++) {
		for (size_t s = 0; s < sizeof sys / sizeof sys[0]; s++)
			if (c[i].flags & sys[s].bit)
				json_object_set_new(k, sys[s].kw, json_true());
		const char *w = c[i].keywords;
		while (*w) {
			size_t l = strcspn(w, " ");
			if (l > 0 && l < 256) {
				char kw[256];
				memcpy(kw, w, l);
				kw[l] = '\0';
				strutil_lower(kw, l);
				json_t *s = json_string(kw);
				if (s != NULL) {
					json_decref(s);
					json_object_set_new(k, kw, json_true());
				}
			}
			w += l;
			while (*w == ' ')
				w++;
		}
	}
	return k;
}

/* The Email of file_id: 1 (*out), 0 not found, -1 error. */
static int email_json(struct store_account *a, const char *file_id, json_t *props,
		      const struct jmap_email_opts *opts, json_t **out)
{
	char err[256];
	struct store_jmap_copy *c = NULL;
	size_t n = 0;
	int r = store_jmap_email_copies(a, file_id, &c, &n, err, sizeof err);
	if (r < 0)
		log_error("jmap action=email_get error=\"%s\"", err);
	if (r <= 0)
		return r;
	char blob[32];
	snprintf(blob, sizeof blob, "F%s", file_id);
	json_t *o = json_object();
	if (needs_message(props)) {
		struct buf msg = BUF_INIT;
		int rr = jmap_email_blob_read(a, blob, &msg, err, sizeof err);
		if (rr <= 0) {
			if (rr < 0)
				log_error("jmap action=email_get error=\"%s\"", err);
			buf_free(&msg);
			free(c);
			json_decref(o);
			return rr;
		}
		struct jmap_email_opts eo = *opts;
		eo.blob_id = blob;
		jmap_email_parts_fill(buf_cstr(&msg), msg.len, &eo, o);
		buf_free(&msg);
	}
	char id[32];
	snprintf(id, sizeof id, "E%s", file_id);
	json_object_set_new(o, "id", json_string(id));
	if (want(props, "blobId"))
		json_object_set_new(o, "blobId", json_string(blob));
	if (want(props, "threadId")) {
		char tid[32];
		snprintf(tid, sizeof tid, "T%" PRId64, c[0].thread_id);
		json_object_set_new(o, "threadId", c[0].thread_id ? json_string(tid) : json_null());
	}
	if (want(props, "mailboxIds")) {
		json_t *m = json_object();
		for (size_t i = 0; i < n; i++) {
			char mid[32];
			jmap_mail_mailbox_id(c[i].mailbox_id, mid);
			json_object_set_new(m, mid, json_true());
		}
		json_object_set_new(o, "mailboxIds", m);
	}
	if (want(props, "keywords"))
		json_object_set_new(o, "keywords", keywords_json(c, n));
	if (want(props, "size"))
		json_object_set_new(o, "size", json_integer((json_int_t)c[0].size));
	if (want(props, "receivedAt")) {
		int64_t t = c[0].internaldate;
		for (size_t i = 1; i < n; i++)
			if (c[i].internaldate < t)
				t = c[i].internaldate;
		char d[32];
		utc_date(t, d);
		json_object_set_new(o, "receivedAt", json_string(d));
	}
	free(c);
	*out = o;
	return 1;
}

/* The arguments of Email/get (ids_name "ids", null allowed) and
 * Email/parse ("blobIds"): the id array into *ids (NULL for null). */
static bool common_args(const struct jmap_api_env *env, json_t *args, const char *ids_name,
			json_t **ids, json_t **error)
{
	const char *const allowed[] = {"accountId",
				       ids_name,
				       "properties",
				       "bodyProperties",
				       "fetchTextBodyValues",
				       "fetchHTMLBodyValues",
				       "fetchAllBodyValues",
				       "maxBodyValueBytes",
				       NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return false;
	char d[96];
	*ids = json_object_get(args, ids_name);
	bool nullable = strcmp(ids_name, "ids") == 0;
	if (nullable && *ids != NULL && json_is_null(*ids)) {
		*ids = NULL;
		return true;
	}
	size_t i;
	json_t *v;
	bool good = json_is_array(*ids);
	json_array_foreach(*ids, i, v)
	{
		if (!json_is_string(v))
			good = false;
	}
	if (!good) {
		snprintf(d, sizeof d, "%s must be %sId[]", ids_name, nullable ? "null or " : "");
		*error = jmap_api_error("invalidArguments", d);
		return false;
	}
	if (json_array_size(*ids) > JMAP_MAX_OBJECTS_IN_GET) {
		snprintf(d, sizeof d, "more than maxObjectsInGet %s", ids_name);
		*error = jmap_api_error("requestTooLarge", d);
		return false;
	}
	return true;
}

json_t *jmap_email_get(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	json_t *ids;
	if (!common_args(env, args, "ids", &ids, error))
		return NULL;
	json_t *props;
	struct jmap_email_opts opts;
	if (!body_args(args, get_default, &props, &opts, error))
		return NULL;
	const struct jmap_mail_ctx *c = env->methods_ctx;
	char state[24], err[256];
	if (!jmap_mail_sync_state(env, state, NULL, error)) {
		json_decref(props);
		return NULL;
	}
	json_t *wanted;
	if (ids == NULL) {
		/* RFC 8620 5.1: all of them, if not more than maxObjectsInGet */
		char(*all)[25] = NULL;
		size_t n = 0;
		if (store_jmapget_email_ids(c->account, JMAP_MAX_OBJECTS_IN_GET, &all, &n, err,
					    sizeof err) < 0) {
			log_error("jmap action=email_ids error=\"%s\"", err);
			json_decref(props);
			return jmap_mail_fail(error, "serverFail", "the store failed");
		}
		if (n > JMAP_MAX_OBJECTS_IN_GET) {
			free(all);
			json_decref(props);
			return jmap_mail_fail(error, "requestTooLarge",
					      "more Emails than maxObjectsInGet: give ids");
		}
		wanted = json_array();
		for (size_t i = 0; i < n; i++) {
			char eid[32];
			snprintf(eid, sizeof eid, "E%s", all[i]);
			json_array_append_new(wanted, json_string(eid));
		}
		free(all);
	} else {
		wanted = json_incref(ids);
	}
	json_t *list = json_array(), *not_found = json_array();
	size_t i;
	json_t *id;
	json_array_foreach(wanted, i, id)
	{
		char fid[25];
		json_t *o = NULL;
		int r = jmap_mail_parse_email_id(json_string_value(id), fid)
			    ? email_json(c->account, fid, props, &opts, &o)
			    : 0;
		if (r < 0) {
			json_decref(wanted);
			json_decref(list);
			json_decref(not_found);
			json_decref(props);
			return jmap_mail_fail(error, "serverFail", "the store failed");
		}
		if (r == 1)
			json_array_append_new(list, o);
		else
			json_array_append(not_found, id);
	}
	json_decref(wanted);
	json_decref(props);
	return jmap_mail_get_result(args, state, list, not_found);
}

/* -------------------------------------------------------- Email/parse */

/* A blob we take as a message: its first line is a header field. */
static bool parsable(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && (unsigned char)s[i] > 32 && (unsigned char)s[i] < 127 && s[i] != ':')
		i++;
	return i > 0 && i < n && s[i] == ':';
}

json_t *jmap_email_parse(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	json_t *ids;
	if (!common_args(env, args, "blobIds", &ids, error))
		return NULL;
	size_t i;
	json_t *v;
	json_t *props;
	struct jmap_email_opts opts;
	if (!body_args(args, parse_default, &props, &opts, error))
		return NULL;
	const struct jmap_mail_ctx *c = env->methods_ctx;
	json_t *parsed = json_object(), *not_parsable = json_array(), *not_found = json_array();
	json_array_foreach(ids, i, v)
	{
		const char *bid = json_string_value(v);
		if (json_object_get(parsed, bid) != NULL)
			continue;
		struct buf b = BUF_INIT;
		char err[256];
		int r = strlen(bid) <= 255
			    ? jmap_email_blob_read(c->account, bid, &b, err, sizeof err)
			    : 0;
		if (r < 0) {
			buf_free(&b);
			log_error("jmap action=email_parse error=\"%s\"", err);
			json_decref(parsed);
			json_decref(not_parsable);
			json_decref(not_found);
			json_decref(props);
			return jmap_mail_fail(error, "serverFail", "the store failed");
		}
		if (r == 0) {
			json_array_append(not_found, v);
		} else if (!parsable(buf_cstr(&b), b.len)) {
			json_array_append(not_parsable, v);
		} else {
			json_t *o = json_object();
			struct jmap_email_opts eo = opts;
			eo.blob_id = bid;
			jmap_email_parts_fill(buf_cstr(&b), b.len, &eo, o);
			static const char *const nulls[] = {"id", "threadId", "mailboxIds",
							    "keywords", "receivedAt"};
			for (size_t k = 0; k < sizeof nulls / sizeof nulls[0]; k++)
				if (want(props, nulls[k]))
					json_object_set_new(o, nulls[k], json_null());
			if (want(props, "blobId"))
				json_object_set(o, "blobId", v);
			json_object_set_new(parsed, bid, o);
		}
		buf_free(&b);
	}
	json_decref(props);
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	if (json_object_size(parsed) == 0) {
		json_decref(parsed);
		parsed = json_null();
	}
	if (json_array_size(not_parsable) == 0) {
		json_decref(not_parsable);
		not_parsable = json_null();
	}
	if (json_array_size(not_found) == 0) {
		json_decref(not_found);
		not_found = json_null();
	}
	json_object_set_new(r, "parsed", parsed);
	json_object_set_new(r, "notParsable", not_parsable);
	json_object_set_new(r, "notFound", not_found);
	return r;
}
