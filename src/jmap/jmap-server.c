/*
 * jmap-server.c - see jmap-server.h.  The top of src/jmap: HTTP routing,
 * authentication, the Session object (RFC 8620 2), upload and download
 * (6.1, 6.2); the API request itself is jmap-api.c.
 *
 * A request waits for its password check (authglue, on the worker's
 * thread pool) as a struct jmap_pending; evhttp keeps the request until
 * we answer it.  If the client goes away meanwhile evhttp detaches the
 * request, and our answer then only frees it; if the HTTP server frees
 * the connection itself it tells us first (the hook's abort), and we
 * drop the pending request without touching it.
 */
#include "jmap-server.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authglue.h"
#include "base64.h"
#include "buf.h"
#include "config.h"
#include "http-server.h"
#include "jmap-api.h"
#include "jmap-authcache.h"
#include "jmap-email-get.h"
#include "jmap-json.h"
#include "jmap-email-create.h"
#include "jmap-eventsource.h"
#include "jmap-mail.h"
#include "jmap-websession.h"
#include "log.h"
#include "netaddr.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

enum route { R_SESSION, R_API, R_UPLOAD, R_DOWNLOAD, R_EVENTSOURCE, R_WEBLOGIN };

/* Requests in flight of one user in this worker (maxConcurrentRequests,
 * maxConcurrentUpload). */
struct jmap_user {
	char name[256];
	unsigned requests, uploads;
	struct jmap_user *next;
};

struct jmap_pending {
	struct jmap_server *js;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	enum route route;
	struct authglue *auth;
	struct jmap_user *user;
	bool https;
	char host[256];
	char *rest; /* the path after /jmap/upload/ or /jmap/download/ */
	char client_ip[64];
	char id[24];
	char login[256]; /* the user as given in Authorization (lower-cased) */
	bool cache_key_set;
	unsigned char cache_key[JMAP_AUTHCACHE_KEY_LEN]; /* of user and password */
	struct jmap_authcache_entry cred; /* what the login proved (for streams) */
	struct jmap_pending *prev, *next;
};

struct jmap_server {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct jmap_pending *pending;
	struct jmap_user *users;
	struct jmap_authcache *cache; /* NULL: every request is checked */
	struct jmap_es *es;           /* the event streams (jmap-eventsource.c) */
	uint64_t next_id;
};

/* Logins remembered per worker (jmap.auth_cache_ttl): users times the
 * passwords they use at once (main, app passwords). */
#define AUTH_CACHE_ENTRIES 1024

/* --------------------------------------------------------------- answers */

static void reply_json(struct evhttp_request *req, int code, const char *reason, const char *ctype,
		       const char *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_remove_header(h, "Content-Type");
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-cache, no-store, must-revalidate");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* evhttp would send a body given for HEAD: give none. */
		char clen[32];
		snprintf(clen, sizeof clen, "%zu", len);
		evhttp_add_header(h, "Content-Length", clen);
		evhttp_send_reply(req, code, reason, NULL);
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (b == NULL) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
		return;
	}
	evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

/* A problem details answer (RFC 7807, RFC 8620 3.6.1). */
static void reply_problem(struct evhttp_request *req, int code, const char *reason,
			  const char *type, const char *detail, const char *limit)
{
	size_t len;
	char *s = jmap_api_problem(type, code, detail, limit, &len);
	reply_json(req, code, reason, "application/problem+json", s, len);
	free(s);
}

static void reply_unauthorized(struct evhttp_request *req)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
			  "Basic realm=\"JMAP\", charset=\"UTF-8\"");
	reply_problem(req, 401, "Unauthorized", "about:blank",
		      "authentication required: HTTP Basic with the account's address and password",
		      NULL);
}

/* ----------------------------------------------------------------- users */

static struct jmap_user *user_get(struct jmap_server *js, const char *name)
{
	for (struct jmap_user *u = js->users; u; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	struct jmap_user *u = xcalloc(1, sizeof *u);
	snprintf(u->name, sizeof u->name, "%s", name);
	u->next = js->users;
	js->users = u;
	return u;
}

static void user_put(struct jmap_server *js, struct jmap_user *u)
{
	if (u->requests > 0 || u->uploads > 0)
		return;
	for (struct jmap_user **p = &js->users; *p; p = &(*p)->next) {
		if (*p == u) {
			*p = u->next;
			free(u);
			return;
		}
	}
}

/* -------------------------------------------------------------- pending */

static void pending_free(struct jmap_pending *p)
{
	struct jmap_server *js = p->js;
	if (p->prev)
		p->prev->next = p->next;
	else
		js->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	authglue_free(&p->auth);
	if (p->route == R_UPLOAD)
		p->user->uploads--;
	else
		p->user->requests--;
	user_put(js, p->user);
	free(p->rest);
	OPENSSL_cleanse(&p->cred, sizeof p->cred);
	free(p);
}

/* ------------------------------------------------------------ session */

/* "https://HOST[:PORT]" of the request's listener. */
static void base_url(const struct jmap_pending *p, char *out, size_t outsz)
{
	const struct config *cfg = p->js->cfg;
	unsigned port = http_listen_port(p->https ? cfg->https_listen : cfg->http_listen);
	const char *host = p->host[0] ? p->host : cfg->hostname;
	if (port == (p->https ? 443u : 80u) || port == 0)
		snprintf(out, outsz, "%s://%s", p->https ? "https" : "http", host);
	else
		snprintf(out, outsz, "%s://%s:%u", p->https ? "https" : "http", host, port);
}

static void account_id_of(int64_t id, char out[32])
{
	snprintf(out, 32, "A%" PRId64, id);
}

/* The Session object (RFC 8620 2) with its state, a hash of the rest:
 * it changes exactly when something in it does. */
static json_t *session_object(const struct jmap_pending *p, const char *username, int64_t account,
			      char state[17])
{
	const struct config *cfg = p->js->cfg;
	char base[400], url[600], aid[32];
	base_url(p, base, sizeof base);
	account_id_of(account, aid);
	json_t *core = json_object();
	json_object_set_new(core, "maxSizeUpload",
			    json_integer((json_int_t)cfg->jmap_max_size_upload));
	json_object_set_new(core, "maxConcurrentUpload",
			    json_integer((json_int_t)cfg->jmap_max_concurrent_upload));
	json_object_set_new(core, "maxSizeRequest",
			    json_integer((json_int_t)cfg->jmap_max_size_request));
	json_object_set_new(core, "maxConcurrentRequests",
			    json_integer((json_int_t)cfg->jmap_max_concurrent_requests));
	json_object_set_new(core, "maxCallsInRequest",
			    json_integer((json_int_t)cfg->jmap_max_calls_in_request));
	json_object_set_new(core, "maxObjectsInGet", json_integer(JMAP_MAX_OBJECTS_IN_GET));
	json_object_set_new(core, "maxObjectsInSet", json_integer(JMAP_MAX_OBJECTS_IN_SET));
	/* the collations Email/query sorts and filters with (RFC 4790) */
	json_t *coll = json_array();
	json_array_append_new(coll, json_string("i;ascii-casemap"));
	json_array_append_new(coll, json_string("i;octet"));
	json_array_append_new(coll, json_string("i;unicode-casemap"));
	json_object_set_new(core, "collationAlgorithms", coll);
	json_t *caps = json_object();
	json_object_set_new(caps, JMAP_CAP_CORE, core);
	json_object_set_new(caps, JMAP_CAP_MAIL, json_object()); /* RFC 8621 1.3.1: {} */
	json_object_set_new(caps, JMAP_CAP_VACATION, json_object()); /* RFC 8621 1.3.3: {} */
	json_object_set_new(caps, JMAP_CAP_SUBMISSION, json_object()); /* RFC 8621 1.3.2: {} */
	/* the Mail account capability (RFC 8621 1.3.1) */
	json_t *mail = json_object();
	json_object_set_new(mail, "maxMailboxesPerEmail", json_null());
	json_object_set_new(mail, "maxMailboxDepth", json_null());
	json_object_set_new(mail, "maxSizeMailboxName", json_integer(255));
	/* Email/set create builds at most JMAP_EMAIL_CREATE_MAX bytes: base64
	 * makes 57 bytes 78 (with CRLF), and 1 MiB is left for the rest */
	json_object_set_new(mail, "maxSizeAttachmentsPerEmail",
			    json_integer((json_int_t)(JMAP_EMAIL_CREATE_MAX / 78 * 57 - 1048576)));
	static const char *const sorts[] = {"receivedAt",
					    "size",
					    "from",
					    "to",
					    "subject",
					    "sentAt",
					    "hasKeyword",
					    "allInThreadHaveKeyword",
					    "someInThreadHaveKeyword"};
	json_t *so = json_array();
	for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++)
		json_array_append_new(so, json_string(sorts[i]));
	json_object_set_new(mail, "emailQuerySortOptions", so);
	json_object_set_new(mail, "mayCreateTopLevelMailbox", json_true());
	json_t *acaps = json_object();
	json_object_set_new(acaps, JMAP_CAP_MAIL, mail);
	json_object_set_new(acaps, JMAP_CAP_VACATION, json_object());
	/* RFC 8621 1.3.2: no delayed sending, no SMTP extensions in envelopes
	 * (docs/jmap.md "Submission") */
	json_t *sub = json_object();
	json_object_set_new(sub, "maxDelayedSend", json_integer(0));
	json_object_set_new(sub, "submissionExtensions", json_object());
	json_object_set_new(acaps, JMAP_CAP_SUBMISSION, sub);
	json_t *acct = json_object();
	json_object_set_new(acct, "name", json_string(username));
	json_object_set_new(acct, "isPersonal", json_true());
	json_object_set_new(acct, "isReadOnly", json_false());
	json_object_set_new(acct, "accountCapabilities", acaps);
	json_t *accounts = json_object();
	json_object_set_new(accounts, aid, acct);
	json_t *s = json_object();
	json_object_set_new(s, "capabilities", caps);
	json_object_set_new(s, "accounts", accounts);
	json_t *primary = json_object();
	json_object_set_new(primary, JMAP_CAP_MAIL, json_string(aid));
	json_object_set_new(primary, JMAP_CAP_VACATION, json_string(aid));
	json_object_set_new(primary, JMAP_CAP_SUBMISSION, json_string(aid));
	json_object_set_new(s, "primaryAccounts", primary);
	json_object_set_new(s, "username", json_string(username));
	snprintf(url, sizeof url, "%s/jmap/api/", base);
	json_object_set_new(s, "apiUrl", json_string(url));
	snprintf(url, sizeof url, "%s/jmap/download/{accountId}/{blobId}/{name}?type={type}", base);
	json_object_set_new(s, "downloadUrl", json_string(url));
	snprintf(url, sizeof url, "%s/jmap/upload/{accountId}/", base);
	json_object_set_new(s, "uploadUrl", json_string(url));
	snprintf(url, sizeof url,
		 "%s/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}", base);
	json_object_set_new(s, "eventSourceUrl", json_string(url));
	size_t len;
	char *text = jmap_json_dump(s, &len);
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL);
	free(text);
	for (size_t i = 0; i < 8; i++)
		snprintf(state + 2 * i, 3, "%02x", md[i]);
	json_object_set_new(s, "state", json_string(state));
	return s;
}

static void serve_session(struct jmap_pending *p, const char *username, int64_t account)
{
	char state[17];
	json_t *s = session_object(p, username, account, state);
	size_t len;
	char *text = jmap_json_dump(s, &len);
	json_decref(s);
	reply_json(p->req, 200, "OK", "application/json", text, len);
	free(text);
}

/* --------------------------------------------------------------- api */

struct blob_ctx {
	struct store_account *a;
};

static int blob_exists(void *ctx, const char *blob_id)
{
	struct blob_ctx *b = ctx;
	char err[256];
	uint64_t size;
	if (jmap_email_blob_id_ours(blob_id)) {
		struct buf data = BUF_INIT;
		int r = jmap_email_blob_read(b->a, blob_id, &data, err, sizeof err);
		buf_free(&data);
		if (r < 0)
			log_error("jmap action=blob_lookup error=\"%s\"", err);
		return r;
	}
	int fd = store_blob_open(b->a, blob_id, (int64_t)time(NULL), &size, err, sizeof err);
	if (fd == -1)
		log_error("jmap action=blob_lookup error=\"%s\"", err);
	if (fd < 0)
		return fd == -2 ? 0 : -1;
	close(fd);
	return 1;
}

/* "application/json", optionally with parameters (RFC 8620 3.1). */
static bool is_json_type(const char *ct)
{
	if (ct == NULL)
		return false;
	size_t n = strcspn(ct, "; \t");
	return strutil_eq_ci(ct, n, "application/json");
}

static void serve_api(struct jmap_pending *p, const char *username, int64_t account,
		      struct store_account *a)
{
	struct evhttp_request *req = p->req;
	if (!is_json_type(
		evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type"))) {
		reply_problem(req, 400, "Bad Request", "notJSON",
			      "the request's Content-Type is not application/json", NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	char aid[32], state[17];
	account_id_of(account, aid);
	json_decref(session_object(p, username, account, state));
	struct blob_ctx bc = {a};
	struct jmap_mail_ctx mc = {a, p->js->store, p->js->cfg};
	struct jmap_api_env env = {.max_size_request = p->js->cfg->jmap_max_size_request,
				   .max_calls_in_request = p->js->cfg->jmap_max_calls_in_request,
				   .account_id = aid,
				   .session_state = state,
				   .blob_exists = blob_exists,
				   .ctx = &bc,
				   .methods = jmap_mail_methods,
				   .n_methods = jmap_mail_n_methods,
				   .capability = JMAP_CAP_MAIL,
				   .methods_ctx = &mc};
	char *out = NULL;
	size_t outlen = 0;
	bool problem = false;
	int st = jmap_api_request(&env, body, len, &out, &outlen, &problem);
	log_info("jmap id=%s client=%s user=%s action=api bytes=%zu status=%d", p->id, p->client_ip,
		 username, len, st);
	reply_json(req, st, st == 200 ? "OK" : "Bad Request",
		   problem ? "application/problem+json" : "application/json", out, outlen);
	free(out);
}

/* ------------------------------------------------------------ blobs */

/* A media type we repeat in a header: printable ASCII, 1..255 bytes. */
static bool type_ok(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] > 0x7e)
			return false;
	return true;
}

/* The account id segment of p->rest (up to '/'), checked against ours. */
static bool account_matches(const char *seg, size_t n, int64_t account)
{
	char aid[32];
	account_id_of(account, aid);
	return strlen(aid) == n && memcmp(seg, aid, n) == 0;
}

static void serve_upload(struct jmap_pending *p, int64_t account, struct store_account *a)
{
	struct evhttp_request *req = p->req;
	const struct config *cfg = p->js->cfg;
	size_t n = strcspn(p->rest, "/");
	if (!account_matches(p->rest, n, account) || (p->rest[n] && p->rest[n + 1])) {
		reply_problem(req, 404, "Not Found", "about:blank", "no such account", NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > cfg->jmap_max_size_upload) {
		char d[96];
		snprintf(d, sizeof d, "the upload is larger than %" PRIu64 " bytes",
			 cfg->jmap_max_size_upload);
		reply_problem(req, 413, "Payload Too Large", "limit", d, "maxSizeUpload");
		return;
	}
	const char *type =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (type == NULL)
		type = "application/octet-stream";
	if (!type_ok(type)) {
		reply_problem(req, 400, "Bad Request", "about:blank", "unusable Content-Type",
			      NULL);
		return;
	}
	const void *data = len ? (const void *)evbuffer_pullup(in, -1) : (const void *)"";
	char id[STORE_BLOB_ID_LEN + 1], err[256];
	int64_t now = (int64_t)time(NULL);
	if (store_blob_put(a, data, len, now, now + (int64_t)cfg->jmap_upload_expiry, id, err,
			   sizeof err) < 0) {
		log_error("jmap id=%s action=upload error=\"%s\"", p->id, err);
		reply_problem(req, 500, "Internal Server Error", "about:blank",
			      "the blob could not be stored", NULL);
		return;
	}
	char aid[32];
	account_id_of(account, aid);
	json_t *o = json_object();
	json_object_set_new(o, "accountId", json_string(aid));
	json_object_set_new(o, "blobId", json_string(id));
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "size", json_integer((json_int_t)len));
	size_t olen;
	char *text = jmap_json_dump(o, &olen);
	json_decref(o);
	log_info("jmap id=%s client=%s action=upload blob=%s size=%zu", p->id, p->client_ip, id,
		 len);
	reply_json(req, 201, "Created", "application/json", text, olen);
	free(text);
}

/* Content-Disposition with the name (RFC 6266, RFC 8187 for UTF-8). */
static void disposition(struct evbuffer *b, const char *name)
{
	evbuffer_add_printf(b, "attachment");
	bool plain = name[0] != '\0';
	for (const char *s = name; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
			plain = false;
	if (plain)
		evbuffer_add_printf(b, "; filename=\"%s\"", name);
	evbuffer_add_printf(b, "; filename*=UTF-8''");
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || strchr("!#$&+-.^_`|~", *s) != NULL)
			evbuffer_add(b, s, 1);
		else
			evbuffer_add_printf(b, "%%%c%c", hex[*s >> 4], hex[*s & 15]);
	}
	evbuffer_add(b, "", 1);
}

/* A download of an Email's message or of a part (jmap-email-get.h):
 * read into memory, then sent with the same headers as an upload's. */
static void serve_email_blob(struct jmap_pending *p, struct store_account *a, const char *id,
			     const char *type, const char *name, struct evkeyvalq *q)
{
	struct evhttp_request *req = p->req;
	struct buf data = BUF_INIT;
	char err[256];
	int r = jmap_email_blob_read(a, id, &data, err, sizeof err);
	if (r <= 0) {
		evhttp_clear_headers(q);
		buf_free(&data);
		if (r < 0)
			log_error("jmap id=%s action=download error=\"%s\"", p->id, err);
		reply_problem(req, r == 0 ? 404 : 500,
			      r == 0 ? "Not Found" : "Internal Server Error", "about:blank",
			      r == 0 ? "no such blob" : "the blob could not be read", NULL);
		return;
	}
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	evhttp_remove_header(oh, "Content-Type");
	evhttp_add_header(oh, "Content-Type", type);
	evhttp_clear_headers(q);
	struct evbuffer *cd = evbuffer_new();
	struct evbuffer *b = evbuffer_new();
	bool head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
	if (cd == NULL || b == NULL || (!head && evbuffer_add(b, buf_cstr(&data), data.len) < 0)) {
		if (cd)
			evbuffer_free(cd);
		if (b)
			evbuffer_free(b);
		buf_free(&data);
		reply_problem(req, 500, "Internal Server Error", "about:blank", "out of memory",
			      NULL);
		return;
	}
	disposition(cd, name);
	evhttp_add_header(oh, "Content-Disposition", (const char *)evbuffer_pullup(cd, -1));
	evbuffer_free(cd);
	evhttp_add_header(oh, "Cache-Control", "private, immutable, max-age=31536000");
	char clen[32];
	snprintf(clen, sizeof clen, "%zu", data.len);
	evhttp_add_header(oh, "Content-Length", clen);
	log_info("jmap id=%s client=%s action=download blob=%s size=%zu", p->id, p->client_ip, id,
		 data.len);
	buf_free(&data);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void serve_download(struct jmap_pending *p, int64_t account, struct store_account *a)
{
	struct evhttp_request *req = p->req;
	const char *rest = p->rest;
	size_t n = strcspn(rest, "/");
	if (!account_matches(rest, n, account) || rest[n] != '/') {
		reply_problem(req, 404, "Not Found", "about:blank", "no such account", NULL);
		return;
	}
	const char *blob = rest + n + 1;
	size_t bn = strcspn(blob, "/");
	if (blob[bn] != '/' || bn > 255) {
		reply_problem(req, 404, "Not Found", "about:blank", "no such blob", NULL);
		return;
	}
	char id[256];
	memcpy(id, blob, bn);
	id[bn] = '\0';
	const char *name = blob + bn + 1;
	struct evkeyvalq q = {NULL, &q.tqh_first};
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (query != NULL && evhttp_parse_query_str(query, &q) < 0) {
		reply_problem(req, 400, "Bad Request", "about:blank", "malformed query", NULL);
		return;
	}
	const char *type = evhttp_find_header(&q, "type");
	if (type == NULL)
		type = "application/octet-stream";
	if (!type_ok(type)) {
		evhttp_clear_headers(&q);
		reply_problem(req, 400, "Bad Request", "about:blank", "unusable type", NULL);
		return;
	}
	char err[256];
	uint64_t size = 0;
	if (jmap_email_blob_id_ours(id)) {
		serve_email_blob(p, a, id, type, name, &q);
		return;
	}
	int fd = store_blob_open(a, id, (int64_t)time(NULL), &size, err, sizeof err);
	if (fd < 0) {
		evhttp_clear_headers(&q);
		if (fd == -1)
			log_error("jmap id=%s action=download error=\"%s\"", p->id, err);
		reply_problem(req, fd == -2 ? 404 : 500,
			      fd == -2 ? "Not Found" : "Internal Server Error", "about:blank",
			      fd == -2 ? "no such blob" : "the blob could not be read", NULL);
		return;
	}
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	evhttp_remove_header(oh, "Content-Type");
	evhttp_add_header(oh, "Content-Type", type);
	evhttp_clear_headers(&q);
	struct evbuffer *cd = evbuffer_new();
	struct evbuffer *b = evbuffer_new();
	/* evhttp would send a body given for HEAD: give none. */
	bool head = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
	if (head)
		close(fd);
	if (cd == NULL || b == NULL ||
	    (!head && size > 0 && evbuffer_add_file(b, fd, 0, (ev_off_t)size) < 0)) {
		if (cd)
			evbuffer_free(cd);
		if (b)
			evbuffer_free(b);
		if (!head)
			close(fd);
		reply_problem(req, 500, "Internal Server Error", "about:blank", "out of memory",
			      NULL);
		return;
	}
	if (!head && size == 0)
		close(fd);
	disposition(cd, name);
	evhttp_add_header(oh, "Content-Disposition", (const char *)evbuffer_pullup(cd, -1));
	evbuffer_free(cd);
	evhttp_add_header(oh, "Cache-Control", "private, immutable, max-age=31536000");
	char clen[32];
	snprintf(clen, sizeof clen, "%" PRIu64, size);
	evhttp_add_header(oh, "Content-Length", clen);
	log_info("jmap id=%s client=%s action=download blob=%s size=%" PRIu64, p->id, p->client_ip,
		 id, size);
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* ------------------------------------------------------------ auth */

/* A web sign-in's password was right: its session, cookie and token. */
static void web_login_done(struct jmap_pending *p, const char *username)
{
	char cookie[JMAP_WEB_SET_COOKIE_MAX], csrf[JMAP_WEB_CSRF_LEN + 1];
	if (jmap_web_create(p->js->store, &p->cred, (int64_t)time(NULL), cookie, csrf) < 0) {
		reply_problem(p->req, 503, "Service Unavailable", "about:blank",
			      "the session cannot be stored", NULL);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(p->req), "Set-Cookie", cookie);
	OPENSSL_cleanse(cookie, sizeof cookie);
	size_t len;
	char *body = jmap_web_session_json(username, csrf, &len);
	log_info("jmap id=%s client=%s action=web_login user=%s", p->id, p->client_ip, username);
	reply_json(p->req, 200, "OK", "application/json", body, len);
	free(body);
}

/* Answers an authenticated request. */
static void serve_authed(struct jmap_pending *p, const char *account, int64_t account_id)
{
	struct store_account *a = NULL;
	if (store_account_open_id(p->js->store, account_id, &a) != 1) {
		reply_problem(p->req, 503, "Service Unavailable", "about:blank",
			      "the account cannot be opened", NULL);
		return;
	}
	char username[256];
	snprintf(username, sizeof username, "%s", account);
	switch (p->route) {
	case R_SESSION:
		serve_session(p, username, account_id);
		break;
	case R_API:
		serve_api(p, username, account_id, a);
		break;
	case R_UPLOAD:
		serve_upload(p, account_id, a);
		break;
	case R_DOWNLOAD:
		serve_download(p, account_id, a);
		break;
	case R_EVENTSOURCE:
		jmap_es_start(p->js->es, p->req, &p->cred, p->id, p->client_ip);
		break;
	case R_WEBLOGIN:
		web_login_done(p, username);
		break;
	}
}

static bool tag_set(const unsigned char tag[32])
{
	for (size_t i = 0; i < 32; i++)
		if (tag[i])
			return true;
	return false;
}

/* What a checked login proved, for a stream's later checks (cache_valid). */
static void cred_of(struct jmap_pending *p, const struct authglue_result *r)
{
	struct jmap_authcache_entry *e = &p->cred;
	e->account_id = r->account_id;
	snprintf(e->user, sizeof e->user, "%s", p->login);
	snprintf(e->account, sizeof e->account, "%s", r->account);
	snprintf(e->app_id, sizeof e->app_id, "%s", r->app_id ? r->app_id : "");
	memcpy(e->cred_tag, r->cred_tag, sizeof e->cred_tag);
	e->at = (int64_t)time(NULL);
}

/* After a checked login: remember it (never a failure). */
static void cache_put(struct jmap_pending *p, const struct authglue_result *r)
{
	struct jmap_server *js = p->js;
	if (js->cache == NULL || !p->cache_key_set || js->cfg->jmap_auth_cache_ttl == 0 ||
	    !tag_set(r->cred_tag))
		return;
	struct jmap_authcache_entry e = {.account_id = r->account_id, .at = (int64_t)time(NULL)};
	snprintf(e.user, sizeof e.user, "%s", p->login);
	memcpy(e.key, p->cache_key, sizeof e.key);
	snprintf(e.account, sizeof e.account, "%s", r->account);
	snprintf(e.app_id, sizeof e.app_id, "%s", r->app_id ? r->app_id : "");
	snprintf(e.app_name, sizeof e.app_name, "%s", r->app_password ? r->app_password : "");
	memcpy(e.cred_tag, r->cred_tag, sizeof e.cred_tag);
	jmap_authcache_put(js->cache, &e);
	OPENSSL_cleanse(&e, sizeof e);
}

/* A cached login still valid: the stored hash it matched is still the
 * account's (main password) or the app password's (not revoked).  One
 * query of server.db.  1 valid, 0 not (changed, revoked, removed), -1 a
 * database error. */
static int cache_valid(struct jmap_server *js, const struct jmap_authcache_entry *e,
		       int64_t *last_used)
{
	unsigned char tag[32];
	*last_used = 0;
	if (e->app_id[0] != '\0') {
		struct store_apppass row;
		int r = store_apppass_find(js->store, e->account_id, e->app_id, &row);
		if (r == 1) {
			authglue_cred_tag(row.pwhash, tag);
			*last_used = row.last_used;
		}
		OPENSSL_cleanse(&row, sizeof row);
		if (r != 1)
			return r;
	} else {
		struct store_account_info info;
		int r = store_account_get(js->store, e->account, &info);
		if (r == 1 && info.id != e->account_id)
			r = 0; /* removed and made again */
		if (r == 1)
			authglue_cred_tag(info.pwhash, tag);
		OPENSSL_cleanse(&info, sizeof info);
		if (r != 1)
			return r;
	}
	return tag_set(tag) && CRYPTO_memcmp(tag, e->cred_tag, sizeof tag) == 0;
}

/* A stream's login still holds (jmap-eventsource.h): for a web sign-in,
 * its session is also still there (not signed out, not expired). */
static int es_cred_ok(void *ctx, const struct jmap_authcache_entry *e)
{
	struct jmap_server *js = ctx;
	if (e->web) {
		struct store_websession ws;
		int f = store_websession_find(js->store, e->web_hash, (int64_t)time(NULL), &ws);
		if (f != 1)
			return f;
	}
	int64_t last_used;
	return cache_valid(js, e, &last_used);
}

/* Serves p at once if its credentials are in the cache and still valid;
 * false if they must be checked. */
static bool cache_serve(struct jmap_pending *p)
{
	struct jmap_server *js = p->js;
	if (js->cache == NULL || !p->cache_key_set || js->cfg->jmap_auth_cache_ttl == 0)
		return false;
	const struct jmap_authcache_entry *e =
	    jmap_authcache_find(js->cache, p->login, p->cache_key, (int64_t)time(NULL),
				(int64_t)js->cfg->jmap_auth_cache_ttl);
	if (e == NULL)
		return false;
	int64_t last_used = 0;
	int v = cache_valid(js, e, &last_used);
	if (v != 1) {
		log_info("jmap id=%s client=%s action=auth_cache_drop user=%s reason=%s", p->id,
			 p->client_ip, p->login, v == 0 ? "credentials_changed" : "database");
		jmap_authcache_drop(js->cache, p->login, p->cache_key);
		return false;
	}
	char account[256], app[sizeof e->app_name * 4 + 1] = "";
	int64_t account_id = e->account_id;
	snprintf(account, sizeof account, "%s", e->account);
	if (e->app_name[0] != '\0')
		log_escape(app, sizeof app, e->app_name, strlen(e->app_name));
	log_info("jmap id=%s client=%s action=auth result=ok cached=yes user=%s%s%s", p->id,
		 p->client_ip, account, app[0] ? " app_password=" : "", app);
	if (e->app_id[0] != '\0')
		authglue_app_used(js->store, "jmap", p->id, account_id, e->app_id, last_used);
	p->cred = *e;
	serve_authed(p, account, account_id);
	pending_free(p);
	return true;
}

static void auth_cb(void *ctx, const struct authglue_result *r)
{
	struct jmap_pending *p = ctx;
	struct evhttp_request *req = p->req;
	switch (r->status) {
	case AUTHGLUE_OK: {
		char account[256];
		snprintf(account, sizeof account, "%s", r->account);
		int64_t account_id = r->account_id;
		cache_put(p, r);
		cred_of(p, r);
		authglue_free(&p->auth);
		serve_authed(p, account, account_id);
		break;
	}
	case AUTHGLUE_FAIL:
		if (r->error == SASL_ERR_TEMPORARY) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
					  "5");
			reply_problem(req, 503, "Service Unavailable", "about:blank",
				      "temporary failure, try again", NULL);
		} else if (p->route == R_WEBLOGIN) {
			reply_problem(req, 401, "Unauthorized", "about:blank",
				      "wrong address or password", NULL);
		} else {
			reply_unauthorized(req);
		}
		break;
	case AUTHGLUE_BLOCKED: {
		char ra[32];
		int64_t wait = r->blocked_until - (int64_t)time(NULL);
		snprintf(ra, sizeof ra, "%" PRId64, wait > 0 ? wait : 1);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
		reply_problem(req, 429, "Too Many Requests", "about:blank",
			      "too many failed logins from this address", NULL);
		break;
	}
	case AUTHGLUE_BUSY:
	default:
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
		reply_problem(req, 503, "Service Unavailable", "about:blank",
			      "too many logins in progress for this account", NULL);
		break;
	case AUTHGLUE_CHALLENGE: /* PLAIN with an initial response has none */
		reply_unauthorized(req);
		break;
	}
	pending_free(p);
}

/* user and password from "Authorization: Basic B64" (RFC 7617) as a SASL
 * PLAIN initial response "\0user\0password" into out; its length, or -1. */
static long basic_to_plain(const char *h, char *out, size_t outsz, char user[256])
{
	if (h == NULL || !strutil_prefix_ci(h, strlen(h), "Basic "))
		return -1;
	h += 6;
	while (*h == ' ')
		h++;
	size_t n = strlen(h);
	if (n == 0 || n > 2048)
		return -1;
	char dec[1600];
	long dn = base64_decode(h, n, dec, sizeof dec);
	if (dn <= 0)
		return -1;
	const char *colon = memchr(dec, ':', (size_t)dn);
	if (colon == NULL || colon == dec || memchr(dec, '\0', (size_t)dn) != NULL)
		return -1;
	size_t un = (size_t)(colon - dec), pn = (size_t)dn - un - 1;
	long r = jmap_web_plain(dec, un, colon + 1, pn, out, outsz, user);
	OPENSSL_cleanse(dec, sizeof dec);
	return r;
}

/* ------------------------------------------------------------ routing */

static bool route_of(const char *path, enum route *r, const char **rest)
{
	*rest = NULL;
	if (strcmp(path, "/jmap/session") == 0)
		*r = R_SESSION;
	else if (strcmp(path, "/jmap/api/") == 0 || strcmp(path, "/jmap/api") == 0)
		*r = R_API;
	else if (strncmp(path, "/jmap/upload/", 13) == 0)
		*r = R_UPLOAD, *rest = path + 13;
	else if (strncmp(path, "/jmap/download/", 15) == 0)
		*r = R_DOWNLOAD, *rest = path + 15;
	else if (strcmp(path, "/jmap/eventsource/") == 0 || strcmp(path, "/jmap/eventsource") == 0)
		*r = R_EVENTSOURCE;
	else
		return false;
	return true;
}

static bool method_ok(struct evhttp_request *req, enum route r)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	bool post = r == R_API || r == R_UPLOAD || r == R_WEBLOGIN;
	bool head = r != R_EVENTSOURCE; /* a stream has no HEAD */
	if (post ? cmd == EVHTTP_REQ_POST
		 : (cmd == EVHTTP_REQ_GET || (head && cmd == EVHTTP_REQ_HEAD)))
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
			  post ? "POST" : head ? "GET, HEAD" : "GET");
	http_reply_text(req, 405, "Method Not Allowed", NULL);
	return false;
}

/* A request in flight of user: NULL (answered) if the user has too
 * many. */
static struct jmap_pending *pending_new(struct jmap_server *js, struct evhttp_request *req,
					const struct http_ctx *c, enum route r, const char *rest,
					const char *ip, const char *user)
{
	struct jmap_user *u = user_get(js, user);
	if (r == R_UPLOAD ? u->uploads >= js->cfg->jmap_max_concurrent_upload
			  : u->requests >= js->cfg->jmap_max_concurrent_requests) {
		user_put(js, u);
		reply_problem(req, 400, "Bad Request", "limit",
			      r == R_UPLOAD ? "too many uploads of this account at once"
					    : "too many requests of this account at once",
			      r == R_UPLOAD ? "maxConcurrentUpload" : "maxConcurrentRequests");
		return NULL;
	}
	struct jmap_pending *p = xcalloc(1, sizeof *p);
	p->js = js;
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	p->route = r;
	p->user = u;
	if (r == R_UPLOAD)
		u->uploads++;
	else
		u->requests++;
	p->https = c->https;
	snprintf(p->host, sizeof p->host, "%s", c->host);
	p->rest = rest ? xstrdup(rest) : NULL;
	snprintf(p->client_ip, sizeof p->client_ip, "%s", ip);
	snprintf(p->id, sizeof p->id, "j%" PRIx64 "%lx", js->next_id++, (unsigned long)getpid());
	snprintf(p->login, sizeof p->login, "%s", user);
	p->next = js->pending;
	if (js->pending)
		js->pending->prev = p;
	js->pending = p;
	return p;
}

/* 401 for the web app: no WWW-Authenticate (a browser would ask for a
 * password itself), and the cookie deleted. */
static void web_unauthorized(struct evhttp_request *req, const char *detail)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie",
			  jmap_web_clear_cookie());
	reply_problem(req, 401, "Unauthorized", "about:blank", detail, NULL);
}

/* The /jmap/web/ routes other than login, for a valid session. */
static void web_serve(struct jmap_server *js, struct evhttp_request *req, enum jmap_web_route web,
		      const struct store_websession *ws, const unsigned char id[JMAP_WEB_ID_LEN])
{
	char err[256];
	long n = 0;
	if (web == JMAP_WEB_SESSION) {
		char csrf[JMAP_WEB_CSRF_LEN + 1];
		jmap_web_csrf(id, csrf);
		size_t len;
		char *body = jmap_web_session_json(ws->account, csrf, &len);
		reply_json(req, 200, "OK", "application/json", body, len);
		free(body);
		return;
	}
	if (web == JMAP_WEB_LOGOUT)
		n = store_websession_remove(js->store, ws->id_hash, err, sizeof err);
	else
		n = store_websession_remove_account(js->store, ws->account_id, err, sizeof err);
	if (n < 0) {
		log_error("jmap action=web_logout user=%s error=\"%s\"", ws->account, err);
		reply_problem(req, 503, "Service Unavailable", "about:blank",
			      "the session cannot be removed", NULL);
		return;
	}
	log_info("jmap action=web_logout user=%s sessions=%ld", ws->account, n);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie",
			  jmap_web_clear_cookie());
	reply_json(req, 200, "OK", "application/json", "{}", 2);
}

/* A request without Authorization: authenticated by the web session's
 * cookie, if any, and (all but downloads, the event stream and the
 * session's own GET) by its CSRF header (jmap-websession.h). */
static void web_cookie_serve(struct jmap_server *js, struct evhttp_request *req,
			     const struct http_ctx *c, enum route r, enum jmap_web_route web,
			     const char *rest, const char *ip)
{
	struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
	unsigned char id[JMAP_WEB_ID_LEN], hash[32];
	int k = jmap_web_cookie_id(evhttp_find_header(ih, "Cookie"), id);
	if (k == 0 && web == JMAP_WEB_NONE) {
		reply_unauthorized(req);
		return;
	}
	if (k != 1) {
		web_unauthorized(req, "not signed in");
		return;
	}
	jmap_web_id_hash(id, hash);
	struct store_websession ws;
	int f = store_websession_find(js->store, hash, (int64_t)time(NULL), &ws);
	struct jmap_authcache_entry cred = {.account_id = ws.account_id, .at = (int64_t)time(NULL),
					    .web = true};
	memcpy(cred.web_hash, hash, sizeof cred.web_hash);
	int64_t last_used = 0;
	if (f == 1) {
		snprintf(cred.user, sizeof cred.user, "%s", ws.account);
		snprintf(cred.account, sizeof cred.account, "%s", ws.account);
		snprintf(cred.app_id, sizeof cred.app_id, "%s", ws.app_id);
		memcpy(cred.cred_tag, ws.cred_tag, sizeof cred.cred_tag);
		f = cache_valid(js, &cred, &last_used);
		if (f == 0) { /* a new password, or the app password revoked */
			char err[256];
			if (store_websession_remove(js->store, hash, err, sizeof err) < 0)
				log_error("jmap action=web_session_drop error=\"%s\"", err);
		}
	}
	if (f < 0) {
		OPENSSL_cleanse(id, sizeof id);
		reply_problem(req, 503, "Service Unavailable", "about:blank",
			      "the session cannot be read", NULL);
		return;
	}
	if (f == 0) {
		OPENSSL_cleanse(id, sizeof id);
		web_unauthorized(req, "the session has ended: sign in again");
		return;
	}
	bool need_csrf = r != R_DOWNLOAD && r != R_EVENTSOURCE && web != JMAP_WEB_SESSION;
	if (need_csrf && !jmap_web_csrf_ok(id, evhttp_find_header(ih, JMAP_WEB_CSRF_HEADER))) {
		OPENSSL_cleanse(id, sizeof id);
		log_info("jmap client=%s action=csrf_refused user=%s", ip, ws.account);
		reply_problem(req, 403, "Forbidden", "about:blank",
			      "the " JMAP_WEB_CSRF_HEADER " header is missing or wrong", NULL);
		return;
	}
	if (web != JMAP_WEB_NONE) {
		web_serve(js, req, web, &ws, id);
		OPENSSL_cleanse(id, sizeof id);
		return;
	}
	OPENSSL_cleanse(id, sizeof id);
	struct jmap_pending *p = pending_new(js, req, c, r, rest, ip, ws.account);
	if (p == NULL)
		return;
	p->cred = cred;
	serve_authed(p, ws.account, ws.account_id);
	pending_free(p);
}

/* The method of a /jmap/web/ route: login and logout are POST, the
 * session GET. */
static bool web_method_ok(struct evhttp_request *req, enum jmap_web_route web)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	bool get = web == JMAP_WEB_SESSION;
	if (get ? cmd == EVHTTP_REQ_GET : cmd == EVHTTP_REQ_POST)
		return true;
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", get ? "GET" : "POST");
	http_reply_text(req, 405, "Method Not Allowed", NULL);
	return false;
}

static bool jmap_handle(void *arg, struct evhttp_request *req, const struct http_ctx *c)
{
	struct jmap_server *js = arg;
	enum route r = R_SESSION;
	const char *rest = NULL;
	bool wellknown = strcmp(c->path, "/.well-known/jmap") == 0;
	enum jmap_web_route web = jmap_web_route_of(c->path);
	if (!wellknown && web == JMAP_WEB_NONE && !route_of(c->path, &r, &rest))
		return false;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	const struct sockaddr *sa = evhttp_connection_get_addr(evcon);
	char ip[64] = "?";
	bool loopback = false;
	if (sa != NULL)
		netaddr_format(sa, ip, sizeof ip, &loopback);
	/* Passwords only over TLS; plain HTTP as the mail ports have it. */
	if (!c->https && !(js->cfg->allow_plaintext_loopback && loopback)) {
		if (js->cfg->https_listen[0])
			return false; /* the server redirects to HTTPS */
		http_reply_text(req, 403, "Forbidden", "JMAP is served over HTTPS only\n");
		return true;
	}
	if (wellknown) {
		/* RFC 8620 2.2: the session resource is elsewhere. */
		enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  "GET, HEAD");
			http_reply_text(req, 405, "Method Not Allowed", NULL);
			return true;
		}
		evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
				  "/jmap/session");
		http_reply_text(req, 307, "Temporary Redirect", NULL);
		return true;
	}
	if (web != JMAP_WEB_NONE ? !web_method_ok(req, web) : !method_ok(req, r))
		return true;
	const char *authz = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (web == JMAP_WEB_LOGIN) {
		r = R_WEBLOGIN;
	} else if (authz == NULL || web != JMAP_WEB_NONE) {
		web_cookie_serve(js, req, c, r, web, rest, ip);
		return true;
	}
	char user[256], plain[1600];
	long plen;
	if (r == R_WEBLOGIN) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(in);
		const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
						    "Content-Type");
		/* application/json: a cross-site form cannot send it without
		 * a CORS preflight, which this server never allows. */
		plen = is_json_type(ct) && n <= 4096
			   ? jmap_web_login_plain((const char *)evbuffer_pullup(in, -1), n, plain,
						  sizeof plain, user)
			   : -1;
		if (plen < 0) {
			reply_problem(req, 400, "Bad Request", "about:blank",
				      "expected JSON {\"username\": ..., \"password\": ...}", NULL);
			return true;
		}
	} else {
		plen = basic_to_plain(authz, plain, sizeof plain, user);
		if (plen < 0) {
			reply_unauthorized(req);
			return true;
		}
	}
	struct jmap_pending *p = pending_new(js, req, c, r, rest, ip, user);
	if (p == NULL) {
		OPENSSL_cleanse(plain, sizeof plain);
		return true;
	}
	/* A sign-in always checks the password. */
	if (js->cache != NULL && js->cfg->jmap_auth_cache_ttl > 0 && r != R_WEBLOGIN) {
		/* the password is plain[2 + strlen(user)...] */
		size_t un = strlen(user);
		jmap_authcache_key(js->cache, user, plain + 2 + un, (size_t)plen - 2 - un,
				   p->cache_key);
		p->cache_key_set = true;
		if (cache_serve(p)) {
			OPENSSL_cleanse(plain, sizeof plain);
			return true;
		}
	}
	struct authglue_params ap = {
	    .base = js->base,
	    .store = js->store,
	    .mech = SASL_MECH_PLAIN,
	    .client = sa,
	    .client_ip = p->client_ip,
	    .proto = "jmap",
	    .session_id = p->id,
	    .cb = auth_cb,
	    .cb_ctx = p,
	};
	log_debug("jmap id=%s client=%s action=auth_start user=%s requests=%u uploads=%u", p->id,
		  p->client_ip, user, p->user->requests, p->user->uploads);
	p->auth = authglue_start(&ap, plain, (size_t)plen);
	OPENSSL_cleanse(plain, sizeof plain);
	return true;
}

static uint64_t jmap_configure(void *arg, const struct config *cfg)
{
	struct jmap_server *js = arg;
	js->cfg = cfg;
	/* One byte more than our limits, so a body just over them reaches us
	 * and gets its JMAP "limit" answer; beyond that evhttp says 413. */
	uint64_t m = cfg->jmap_max_size_upload > cfg->jmap_max_size_request
			 ? cfg->jmap_max_size_upload
			 : cfg->jmap_max_size_request;
	return m + 1;
}

static void jmap_abort(void *arg, struct evhttp_connection *evcon)
{
	struct jmap_server *js = arg;
	for (struct jmap_pending *p = js->pending, *next; p; p = next) {
		next = p->next;
		if (p->evcon == evcon)
			pending_free(p);
	}
}

/* The client went away: its request, detached by evhttp, still gets our
 * answer (which frees it); only the connection is gone. */
static void jmap_closed(void *arg, struct evhttp_connection *evcon)
{
	struct jmap_server *js = arg;
	for (struct jmap_pending *p = js->pending; p; p = p->next)
		if (p->evcon == evcon)
			p->evcon = NULL;
	jmap_es_closed(js->es, evcon);
}

static void jmap_release(void *arg)
{
	struct jmap_server *js = arg;
	while (js->pending)
		pending_free(js->pending);
	jmap_es_free(&js->es);
	jmap_authcache_free(&js->cache);
	free(js);
}

struct jmap_server *jmap_server_attach(struct http_server *srv, struct event_base *base,
				       struct store *store)
{
	jmap_json_init();
	struct jmap_server *js = xcalloc(1, sizeof *js);
	js->base = base;
	js->store = store;
	js->cache = jmap_authcache_new(AUTH_CACHE_ENTRIES);
	js->es = jmap_es_new(base, store, srv, es_cred_ok, js);
	struct http_hook h = {jmap_handle, jmap_configure, jmap_abort,
			      jmap_closed, jmap_release,   js};
	http_server_set_hook(srv, &h);
	return js;
}
