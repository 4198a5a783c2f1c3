/*
 * jmap-email-set.c - Email/set (RFC 8621 4.6), Email/copy (4.7) and
 * Email/import (4.8) on the store's IMAP operations (store-imap.c), so
 * each change is an IMAP STORE, COPY, EXPUNGE or APPEND that IMAP
 * sessions (IDLE too) see at once (store_notify).
 *
 * An Email is a message file; its copies are IMAP messages in mailboxes
 * (jmap-mail.c).  Keywords: "$seen", "$answered", "$flagged", "$draft"
 * are IMAP's \Seen, \Answered, \Flagged, \Draft, any other keyword is
 * the IMAP keyword of that name (lower case); \Deleted has no keyword
 * and is left alone.  The keywords of an Email are the union over its
 * copies, and a keyword set or unset over JMAP is set or unset on every
 * copy (docs/jmap.md).
 */
#include "jmap-email-set.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "caldate.h"
#include "header.h"
#include "jmap-email-create.h"
#include "jmap-email-get.h"
#include "jmap-email-parts.h"
#include "jmap-json.h"
#include "jmap-mail-util.h"
#include "jmap-mail.h"
#include "jmap-set.h"
#include "log.h"
#include "sortkey.h"
#include "store.h"
#include "xalloc.h"

#define KW_MAX 1024      /* the store's keyword list, bytes with the NUL */
#define MAX_MAILBOXES 64 /* of one Email (tooManyMailboxes beyond) */

/* The store id of a mailbox Id (or "#cid") that exists, else 0. */
static int64_t mailbox_of(const struct jmap_api_env *env, const char *id)
{
	const char *real = jmap_set_resolve(env, id);
	int64_t m = real ? jmap_mail_parse_mailbox_id(real) : 0;
	char name[512];
	return m && store_imap_mailbox_by_id(jmap_set_account(env), m, name) == 1 ? m : 0;
}

/* A mailboxIds map (Id[Boolean], values true, at least one, at most
 * MAX_MAILBOXES) into ids: the count, else 0 with *e. */
static size_t mailbox_ids(const struct jmap_api_env *env, json_t *map, int64_t ids[MAX_MAILBOXES],
			  json_t **e)
{
	const char *key;
	json_t *v;
	size_t n = 0;
	if (!json_is_object(map) || json_object_size(map) == 0) {
		*e = jmap_set_invalid("mailboxIds", "an Email is in at least one mailbox");
		return 0;
	}
	if (json_object_size(map) > MAX_MAILBOXES) {
		*e = jmap_set_error("tooManyMailboxes", "at most 64 mailboxes per Email");
		return 0;
	}
	json_object_foreach(map, key, v)
	{
		int64_t m = json_is_true(v) ? mailbox_of(env, key) : 0;
		if (m == 0) {
			*e = jmap_set_invalid("mailboxIds", "a mailbox that does not exist, or a "
							    "value that is not true");
			return 0;
		}
		bool dup = false;
		for (size_t i = 0; i < n; i++)
			dup |= ids[i] == m;
		if (!dup)
			ids[n++] = m;
	}
	return n;
}

/* A JSON Pointer token (RFC 6901: ~1 is '/', ~0 '~') into out; false if
 * it is malformed or too long. */
static bool unescape(const char *s, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		if (c == '~') {
			if (s[i + 1] != '0' && s[i + 1] != '1')
				return false;
			c = s[++i] == '0' ? '~' : '/';
		} else if (c == '/') {
			return false;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return o > 0;
}

static void free_copies(struct store_jmap_copy **c)
{
	free(*c);
	*c = NULL;
}

/* --------------------------------------------------------------- update */

/* The copies of the Email id (an Id or "#cid") into *c (*n; the caller
 * frees) and its file id into fid: NULL, or the SetError (notFound). */
static json_t *email_copies(const struct jmap_api_env *env, const char *id, char fid[25],
			    struct store_jmap_copy **c, size_t *n)
{
	const char *real = jmap_set_resolve(env, id);
	char err[256];
	*c = NULL;
	*n = 0;
	if (real == NULL || !jmap_mail_parse_email_id(real, fid))
		return jmap_set_error("notFound", NULL);
	int r = store_jmap_email_copies(jmap_set_account(env), fid, c, n, err, sizeof err);
	if (r <= 0)
		return r < 0 ? jmap_set_store_fail("email_set", "copies", err)
			     : jmap_set_error("notFound", NULL);
	return NULL;
}

/* What an update patch asks: parsed and checked before anything changes. */
struct change {
	bool kw_whole;     /* "keywords": replace */
	unsigned kw_flags; /* system flags of the whole map */
	char kw[KW_MAX];   /* IMAP keywords of the whole map */
	unsigned add_flags, del_flags;
	char add_kw[KW_MAX], del_kw[KW_MAX];
	bool mb_whole;             /* "mailboxIds": replace */
	int64_t mb[MAX_MAILBOXES]; /* the whole set */
	size_t n_mb;
	int64_t mb_add[MAX_MAILBOXES], mb_del[MAX_MAILBOXES];
	size_t n_add, n_del;
};

static bool kw_append(char *list, const char *k)
{
	size_t l = strlen(list), kl = strlen(k);
	if (l + kl + 2 > KW_MAX)
		return false;
	if (l)
		list[l++] = ' ';
	memcpy(list + l, k, kl + 1);
	return true;
}

/* Parses a patch into ch: NULL, or the SetError. */
static json_t *parse_patch(const struct jmap_api_env *env, json_t *patch, struct change *ch)
{
	static const char *const metadata[] = {"id",   "blobId",     "threadId",
					       "size", "receivedAt", NULL};
	memset(ch, 0, sizeof *ch);
	const char *key;
	json_t *v;
	bool kw_path = false, mb_path = false;
	json_object_foreach(patch, key, v)
	{
		if (strcmp(key, "keywords") == 0) {
			const char *bad;
			ch->kw_whole = true;
			if (!jmap_set_keywords_imap(v, &ch->kw_flags, ch->kw, sizeof ch->kw, &bad))
				return bad && json_is_true(json_object_get(v, bad)) &&
					       jmap_set_keyword_ok(bad)
					   ? jmap_set_error("tooManyKeywords", NULL)
					   : jmap_set_invalid("keywords",
							      "String[Boolean] of keywords, "
							      "values true");
			continue;
		}
		if (strcmp(key, "mailboxIds") == 0) {
			json_t *e = NULL;
			ch->mb_whole = true;
			ch->n_mb = mailbox_ids(env, v, ch->mb, &e);
			if (ch->n_mb == 0)
				return e;
			continue;
		}
		char tok[300];
		if (strncmp(key, "keywords/", 9) == 0) {
			unsigned bit;
			char one[256];
			kw_path = true;
			if (!unescape(key + 9, tok, sizeof tok))
				return jmap_set_error("invalidPatch",
						      "a path one level below keywords");
			if (!jmap_set_keyword_imap(tok, &bit, one, sizeof one) ||
			    !(json_is_true(v) || json_is_null(v)))
				return jmap_set_invalid(key, "a keyword, set to true or null");
			if (json_is_true(v))
				ch->add_flags |= bit;
			else
				ch->del_flags |= bit;
			if (bit == 0 && !kw_append(json_is_true(v) ? ch->add_kw : ch->del_kw, one))
				return jmap_set_error("tooManyKeywords", NULL);
			continue;
		}
		if (strncmp(key, "mailboxIds/", 11) == 0) {
			mb_path = true;
			if (!unescape(key + 11, tok, sizeof tok))
				return jmap_set_error("invalidPatch",
						      "a path one level below mailboxIds");
			if (!(json_is_true(v) || json_is_null(v)))
				return jmap_set_invalid(key, "true or null");
			int64_t m = mailbox_of(env, tok);
			if (m == 0 && json_is_true(v))
				return jmap_set_invalid(key, "no such mailbox");
			if (m == 0)
				continue; /* not in it, certainly */
			if (ch->n_add >= MAX_MAILBOXES || ch->n_del >= MAX_MAILBOXES)
				return jmap_set_error("tooManyMailboxes", NULL);
			if (json_is_true(v))
				ch->mb_add[ch->n_add++] = m;
			else
				ch->mb_del[ch->n_del++] = m;
			continue;
		}
		const char *slash = strchr(key, '/');
		size_t l = slash ? (size_t)(slash - key) : strlen(key);
		char prop[256], why[128];
		snprintf(prop, sizeof prop, "%.*s", (int)(l < 255 ? l : 255), key);
		bool known = jmap_email_prop_ok(prop, false, why, sizeof why);
		for (size_t i = 0; metadata[i] && !known; i++)
			known = strcmp(metadata[i], prop) == 0;
		if (slash && !known)
			return jmap_set_error("invalidPatch", "no such property to patch");
		return jmap_set_invalid(key, known ? "immutable: only keywords and mailboxIds "
						     "change"
						   : "not an Email property");
	}
	if ((ch->kw_whole && kw_path) || (ch->mb_whole && mb_path))
		return jmap_set_error("invalidPatch",
				      "a property and a path below it in one patch");
	return NULL;
}

static bool has(const int64_t *l, size_t n, int64_t m)
{
	for (size_t i = 0; i < n; i++)
		if (l[i] == m)
			return true;
	return false;
}

static bool in_copies(const struct store_jmap_copy *c, size_t n, int64_t m)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].mailbox_id == m)
			return true;
	return false;
}

/* Expunges the copies of c[0..n) that are in mailbox m.  0 or -1. */
static int expunge_in(struct store_account *a, const struct store_jmap_copy *c, size_t n, int64_t m,
		      char *err, size_t errsz)
{
	uint32_t *uids = xcalloc(n, sizeof *uids);
	bool *done = xcalloc(n, sizeof *done);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (c[i].mailbox_id == m)
			uids[k++] = c[i].uid;
	int r = k ? store_imap_expunge(a, m, uids, k, done, NULL, err, errsz) : 0;
	free(uids);
	free(done);
	return r;
}

static json_t *keyword_error(const char *what, const char *err)
{
	if (strstr(err, "too many keywords") != NULL)
		return jmap_set_error("tooManyKeywords", NULL);
	return jmap_set_store_fail("email_set", what, err);
}

static json_t *update_one(const struct jmap_api_env *env, const char *id, json_t *patch)
{
	struct store_account *a = jmap_set_account(env);
	char fid[25], err[256];
	struct store_jmap_copy *c = NULL;
	size_t n = 0;
	json_t *e = email_copies(env, id, fid, &c, &n);
	if (e != NULL)
		return e;
	struct change *ch = xcalloc(1, sizeof *ch);
	int r;
	if ((e = parse_patch(env, patch, ch)) != NULL)
		goto out;
	/* the mailboxes after the change */
	int64_t want[MAX_MAILBOXES];
	size_t nw = 0;
	if (ch->mb_whole) {
		memcpy(want, ch->mb, ch->n_mb * sizeof want[0]);
		nw = ch->n_mb;
	} else {
		for (size_t i = 0; i < n; i++)
			if (!has(want, nw, c[i].mailbox_id) &&
			    !has(ch->mb_del, ch->n_del, c[i].mailbox_id)) {
				if (nw == MAX_MAILBOXES) {
					e = jmap_set_error("tooManyMailboxes", NULL);
					goto out;
				}
				want[nw++] = c[i].mailbox_id;
			}
		for (size_t i = 0; i < ch->n_add; i++)
			if (!has(want, nw, ch->mb_add[i])) {
				if (nw == MAX_MAILBOXES) {
					e = jmap_set_error("tooManyMailboxes", NULL);
					goto out;
				}
				want[nw++] = ch->mb_add[i];
			}
	}
	if (nw == 0) {
		e = jmap_set_invalid("mailboxIds", "an Email is in at least one mailbox");
		goto out;
	}
	/* COPY into the new mailboxes first (the file keeps a reference),
	 * then EXPUNGE from those left */
	for (size_t i = 0; i < nw; i++) {
		if (in_copies(c, n, want[i]))
			continue;
		uint32_t nu = 0;
		r = store_imap_copy(a, c[0].mailbox_id, &c[0].uid, 1, want[i], false, &nu, NULL,
				    err, sizeof err);
		if (r < 0) {
			e = r == -2 ? jmap_set_error("overQuota", NULL)
				    : jmap_set_store_fail("email_set", "copy", err);
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (has(want, nw, c[i].mailbox_id) ||
		    (i > 0 && c[i - 1].mailbox_id == c[i].mailbox_id))
			continue;
		if (expunge_in(a, c, n, c[i].mailbox_id, err, sizeof err) < 0) {
			e = jmap_set_store_fail("email_set", "expunge", err);
			goto out;
		}
	}
	if (!ch->kw_whole && !ch->add_flags && !ch->del_flags && !ch->add_kw[0] && !ch->del_kw[0])
		goto out;
	/* keywords on every copy, the new ones too */
	free_copies(&c);
	r = store_jmap_email_copies(a, fid, &c, &n, err, sizeof err);
	if (r < 0) {
		e = jmap_set_store_fail("email_set", "copies", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (ch->kw_whole) {
			unsigned f = (c[i].flags & STORE_F_DELETED) | ch->kw_flags;
			r = store_imap_store_flags(a, c[i].mailbox_id, &c[i].uid, 1, 0, f, ch->kw,
						   NULL, NULL, NULL, err, sizeof err);
		} else {
			r = 0;
			if (ch->add_flags || ch->add_kw[0])
				r = store_imap_store_flags(a, c[i].mailbox_id, &c[i].uid, 1, 1,
							   ch->add_flags, ch->add_kw, NULL, NULL,
							   NULL, err, sizeof err);
			if (r == 0 && (ch->del_flags || ch->del_kw[0]))
				r = store_imap_store_flags(a, c[i].mailbox_id, &c[i].uid, 1, -1,
							   ch->del_flags, ch->del_kw, NULL, NULL,
							   NULL, err, sizeof err);
		}
		if (r < 0) {
			e = keyword_error("store", err);
			goto out;
		}
	}
out:
	free(ch);
	free(c);
	return e;
}

/* -------------------------------------------------------------- destroy */

static json_t *destroy_one(const struct jmap_api_env *env, const char *id, void *unused)
{
	struct store_account *a = jmap_set_account(env);
	char fid[25], err[256];
	struct store_jmap_copy *c = NULL;
	size_t n = 0;
	json_t *e = email_copies(env, id, fid, &c, &n);
	if (e != NULL)
		return e;
	for (size_t i = 0; i < n && e == NULL; i++)
		if ((i == 0 || c[i - 1].mailbox_id != c[i].mailbox_id) &&
		    expunge_in(a, c, n, c[i].mailbox_id, err, sizeof err) < 0)
			e = jmap_set_store_fail("email_set", "expunge", err);
	free(c);
	return e;
}

static json_t *create_one(const struct jmap_api_env *env, const char *cid, json_t *o,
			  json_t **created);
static void thread_ids(const struct jmap_api_env *env, json_t *created);

json_t *jmap_email_set(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId", "ifInState", "create",
					      "update",    "destroy",   NULL};
	struct jmap_set s;
	if (!jmap_set_begin(env, args, allowed, &s, error))
		return NULL;
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
	if (json_object_size(s.created) > 0) {
		/* the sync gives the new Emails their threads */
		char st[24];
		if (!jmap_mail_sync_state(env, st, NULL, error)) {
			jmap_set_free(&s);
			return NULL;
		}
		thread_ids(env, s.created);
	}
	jmap_set_run(env, &s, update_one, destroy_one, NULL);
	return jmap_set_finish(env, args, &s, error);
}

/* ----------------------------------------------------------- Email/copy */

/* RFC 8620 5.4: fromAccountId MUST differ from accountId; a user has one
 * account and none is shared, so there is nothing to copy from. */
json_t *jmap_email_copy(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"fromAccountId",
					      "ifFromInState",
					      "accountId",
					      "ifInState",
					      "create",
					      "onSuccessDestroyOriginal",
					      "destroyFromIfInState",
					      NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	json_t *from = json_object_get(args, "fromAccountId");
	json_t *create = json_object_get(args, "create");
	if (!json_is_string(from) || !json_is_object(create))
		return jmap_mail_fail(error, "invalidArguments",
				      "fromAccountId (Id) and create (Id[Email]) are required");
	if (strcmp(json_string_value(from), env->account_id) == 0)
		return jmap_mail_fail(error, "invalidArguments",
				      "fromAccountId must differ from accountId (RFC 8620 5.4)");
	return jmap_mail_fail(error, "fromAccountNotFound",
			      "this server has no other account to copy from");
}

/* --------------------------------------------------------- Email/import */

/* A UTCDate (RFC 8620 1.4: "2014-10-30T06:12:00Z", secfrac allowed) to
 * unix time; false if it is not one. */
static bool utc_date(const char *s, time_t *out)
{
	return jmap_set_utc_date(s, out);
}

/* Why data[0..len) is not a message we store (RFC 5322: CRLF lines, no
 * NUL, a header section), or NULL. */
static const char *message_problem(const char *data, size_t len, struct header *h)
{
	if (len == 0)
		return "the blob is empty";
	if (memchr(data, '\0', len) != NULL)
		return "the message has a NUL octet";
	for (size_t i = 0; i < len; i++)
		if ((data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) ||
		    (data[i] == '\r' && (i + 1 == len || data[i + 1] != '\n')))
			return "the message has a bare CR or LF (RFC 5322 lines end in CRLF)";
	if (header_parse(data, len, h) != HEADER_OK || h->n_fields == 0)
		return "the message does not start with a valid header section";
	return NULL;
}

/* The date of the most recent (first) Received field (RFC 8621 4.8's
 * default receivedAt), else now. */
static time_t received_at(const struct header *h, time_t now)
{
	const struct header_field *f = header_find(h, "Received");
	if (f == NULL)
		return now;
	const char *semi = NULL;
	for (size_t i = 0; i < f->value_len; i++)
		if (f->value[i] == ';')
			semi = f->value + i;
	int64_t t;
	if (semi == NULL ||
	    sortkey_sent_date(semi + 1, f->value_len - (size_t)(semi + 1 - f->value), &t) < 0)
		return now;
	return (time_t)t;
}

/* Appends the bytes of blob id to out: an upload, an Email or a part
 * (jmap-email-get.c).  1, 0 no such blob, -1. */
static int read_blob(void *ctx, const char *id, struct buf *out)
{
	char err[256];
	int r = jmap_email_blob_read(ctx, id, out, err, sizeof err);
	if (r < 0)
		log_error("jmap action=email_set op=blob error=\"%s\"", err);
	return r;
}

/* What an imported or created Email gets besides its bytes: mailboxIds
 * (required), keywords, receivedAt (given: it was there). */
struct meta {
	int64_t mbs[MAX_MAILBOXES];
	size_t n_mb;
	unsigned flags;
	char kw[KW_MAX];
	time_t when;
	bool given;
};

/* NULL, or the SetError. */
static json_t *email_meta(const struct jmap_api_env *env, json_t *o, struct meta *m)
{
	json_t *kws = json_object_get(o, "keywords");
	json_t *recv = json_object_get(o, "receivedAt");
	json_t *e = NULL;
	m->n_mb = mailbox_ids(env, json_object_get(o, "mailboxIds"), m->mbs, &e);
	if (m->n_mb == 0)
		return e;
	m->flags = 0;
	m->kw[0] = '\0';
	const char *bad;
	if (kws != NULL && !json_is_null(kws) &&
	    !jmap_set_keywords_imap(kws, &m->flags, m->kw, sizeof m->kw, &bad))
		return bad && json_is_true(json_object_get(kws, bad)) && jmap_set_keyword_ok(bad)
			   ? jmap_set_error("tooManyKeywords", NULL)
			   : jmap_set_invalid("keywords",
					      "String[Boolean] of keywords, values true");
	m->when = time(NULL);
	m->given = recv != NULL && !json_is_null(recv);
	if (m->given && (!json_is_string(recv) || !utc_date(json_string_value(recv), &m->when)))
		return jmap_set_invalid("receivedAt", "a UTCDate");
	return NULL;
}

/* Stores data[0..len) as a new Email (cid its creation id): NULL and
 * *created (id, blobId, size; threadId comes with thread_ids), or the
 * SetError. */
static json_t *store_new(const struct jmap_api_env *env, const char *cid, const char *data,
			 size_t len, const struct meta *m, json_t **created)
{
	char fid[25], err[256];
	int r = store_jmapset_import(jmap_set_account(env), data, len, m->mbs, m->n_mb, m->flags,
				     m->kw, m->when, fid, err, sizeof err);
	if (r == -2)
		return jmap_set_error("overQuota", NULL);
	if (r == -3)
		return jmap_set_invalid("mailboxIds", "no such mailbox");
	if (r < 0)
		return keyword_error("import", err);
	char id[32], blob[32];
	snprintf(id, sizeof id, "E%s", fid);
	/* the Email's blob: "F" and its file id (Email/get's, docs/jmap.md) */
	snprintf(blob, sizeof blob, "F%s", fid);
	jmap_set_created_id(env, cid, id);
	*created = json_pack("{s:s, s:s, s:I}", "id", id, "blobId", blob, "size", (json_int_t)len);
	return NULL;
}

/* After a sync: the threadId of each created Email. */
static void thread_ids(const struct jmap_api_env *env, json_t *created)
{
	const char *key;
	json_t *v;
	json_object_foreach(created, key, v)
	{
		char fid[25], err[256];
		struct store_jmap_copy *c = NULL;
		size_t n = 0;
		if (jmap_mail_parse_email_id(json_string_value(json_object_get(v, "id")), fid) &&
		    store_jmap_email_copies(jmap_set_account(env), fid, &c, &n, err, sizeof err) >
			0 &&
		    c[0].thread_id != 0) {
			char tid[32];
			snprintf(tid, sizeof tid, "T%" PRId64, c[0].thread_id);
			json_object_set_new(v, "threadId", json_string(tid));
		}
		free(c);
	}
}

static json_t *import_one(const struct jmap_api_env *env, const char *cid, json_t *o,
			  json_t **created)
{
	static const char *const props[] = {"blobId", "mailboxIds", "keywords", "receivedAt", NULL};
	struct store_account *a = jmap_set_account(env);
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		size_t i = 0;
		while (props[i] && strcmp(props[i], key) != 0)
			i++;
		if (props[i] == NULL)
			return jmap_set_invalid(key, "not an EmailImport property");
	}
	json_t *blob = json_object_get(o, "blobId");
	if (!json_is_string(blob))
		return jmap_set_invalid("blobId", "blobId (Id) is required");
	struct meta m;
	json_t *e = email_meta(env, o, &m);
	if (e != NULL)
		return e;
	struct buf data = BUF_INIT;
	int r = read_blob(a, json_string_value(blob), &data);
	if (r <= 0) {
		buf_free(&data);
		/* RFC 8621 4.8: a blobId not found is invalidProperties */
		return r == 0 ? jmap_set_invalid("blobId", "no such blob")
			      : jmap_set_error("serverFail", "the store failed");
	}
	struct header h = {0};
	const char *why = message_problem(buf_cstr(&data), data.len, &h);
	if (why == NULL && !m.given)
		m.when = received_at(&h, m.when);
	header_free(&h);
	e = why ? jmap_set_error("invalidEmail", why)
		: store_new(env, cid, buf_cstr(&data), data.len, &m, created);
	buf_free(&data);
	return e;
}

/* Email/set create (RFC 8621 4.6): the message built from the
 * properties (jmap-email-create.c), stored as an import is. */
static json_t *create_one(const struct jmap_api_env *env, const char *cid, json_t *o,
			  json_t **created)
{
	struct meta m;
	json_t *e = email_meta(env, o, &m);
	if (e != NULL)
		return e;
	struct buf msg = BUF_INIT;
	e = jmap_email_build(o, read_blob, jmap_set_account(env), time(NULL), &msg);
	if (e == NULL)
		e = store_new(env, cid, buf_cstr(&msg), msg.len, &m, created);
	buf_free(&msg);
	return e;
}

json_t *jmap_email_import(const struct jmap_api_env *env, json_t *args, json_t **error)
{
	static const char *const allowed[] = {"accountId", "ifInState", "emails", NULL};
	if (!jmap_mail_args_known(args, allowed, error) || !jmap_mail_account_ok(env, args, error))
		return NULL;
	json_t *emails = json_object_get(args, "emails");
	json_t *if_in = json_object_get(args, "ifInState");
	const char *key;
	json_t *v;
	if (!json_is_object(emails))
		return jmap_mail_fail(error, "invalidArguments",
				      "emails (Id[EmailImport]) is required");
	json_object_foreach(emails, key, v)
	{
		if (!jmap_json_is_id(key) || !json_is_object(v))
			return jmap_mail_fail(error, "invalidArguments",
					      "emails maps creation ids to EmailImport objects");
	}
	if (json_object_size(emails) > JMAP_MAX_OBJECTS_IN_SET)
		return jmap_mail_fail(error, "requestTooLarge", "more than maxObjectsInSet");
	if (if_in != NULL && !json_is_null(if_in) && !json_is_string(if_in))
		return jmap_mail_fail(error, "invalidArguments",
				      "ifInState must be null or a String");
	char old[24], now[24];
	if (!jmap_mail_sync_state(env, old, NULL, error))
		return NULL;
	if (json_is_string(if_in) && strcmp(json_string_value(if_in), old) != 0)
		return jmap_mail_fail(error, "stateMismatch", NULL);
	json_t *created = json_object(), *not_created = json_object();
	json_object_foreach(emails, key, v)
	{
		json_t *c = NULL, *e = import_one(env, key, v, &c);
		if (e != NULL)
			json_object_set_new(not_created, key, e);
		else
			json_object_set_new(created, key, c);
	}
	/* the sync gives the new Emails their threads */
	if (!jmap_mail_sync_state(env, now, NULL, error)) {
		json_decref(created);
		json_decref(not_created);
		return NULL;
	}
	thread_ids(env, created);
	json_t *r = json_object();
	json_object_set(r, "accountId", json_object_get(args, "accountId"));
	json_object_set_new(r, "oldState", json_string(old));
	json_object_set_new(r, "newState", json_string(now));
	json_object_set_new(r, "created", json_object_size(created) ? created : json_null());
	json_object_set_new(r, "notCreated",
			    json_object_size(not_created) ? not_created : json_null());
	if (json_object_size(created) == 0)
		json_decref(created);
	if (json_object_size(not_created) == 0)
		json_decref(not_created);
	return r;
}
