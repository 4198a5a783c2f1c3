/*
 * jmap-eventsource.c - see jmap-eventsource.h.
 *
 * A stream subscribes to its account's change notifications; a
 * notification arms a short timer (so that a burst of changes, one
 * delivery to many mailboxes, makes one event), whose callback brings the
 * JMAP state up to date (store_jmap_sync, as every Mail method does) and
 * sends a "state" event when it moved.  One state counts for Mailbox,
 * Thread and Email (docs/jmap.md "Mail"), so a move changes all three.
 *
 * Ownership: evhttp keeps the request until evhttp_send_reply_end.  When
 * the client goes away evhttp detaches the request (its connection then
 * is NULL) and calls the close hook (jmap_es_closed), where our
 * evhttp_send_reply_end frees it; when the server itself frees the
 * connection the request is still attached and evhttp frees it after the
 * hook: we only forget it.
 */
#include "jmap-eventsource.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-server.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

/* The types whose state we push (RFC 8621 1.5's names). */
enum { T_MAILBOX = 1, T_THREAD = 2, T_EMAIL = 4 };
static const char *const type_names[] = {"Mailbox", "Thread", "Email"};
#define N_TYPES 3

/* Delay from a change notification to the state check (microseconds). */
#define COALESCE_US 20000

struct jmap_es_stream {
	struct jmap_es *es;
	struct evhttp_request *req;
	struct evhttp_connection *evcon;
	/* what the login proved (as a jmap_authcache_entry's, kept small) */
	int64_t account_id;
	char *account;
	char app_id[8];
	unsigned char cred_tag[32];
	bool web;
	unsigned char web_hash[32];
	char id[24];
	char state[24]; /* the state last seen (sent, or not of interest) */
	unsigned types;
	unsigned ping; /* seconds, 0: none */
	bool close_after;
	int sub_id;
	struct event *ping_ev, *check_ev, *notify_ev;
	struct jmap_es_stream *prev, *next;
};

struct jmap_es {
	struct event_base *base;
	struct store *store;
	struct http_server *http;
	int (*cred_ok)(void *ctx, const struct jmap_authcache_entry *e);
	void *cred_ctx;
	struct jmap_es_stream *streams;
	size_t n;
};

struct jmap_es *jmap_es_new(struct event_base *base, struct store *store,
			    struct http_server *http,
			    int (*cred_ok)(void *ctx, const struct jmap_authcache_entry *e),
			    void *cred_ctx)
{
	struct jmap_es *es = xcalloc(1, sizeof *es);
	es->base = base;
	es->store = store;
	es->http = http;
	es->cred_ok = cred_ok;
	es->cred_ctx = cred_ctx;
	return es;
}

size_t jmap_es_count(const struct jmap_es *es)
{
	return es->n;
}

/* Frees s; end: also ends its answer (the request is ours to end). */
static void stream_free(struct jmap_es_stream *s, bool end, const char *why)
{
	struct jmap_es *es = s->es;
	if (s->prev)
		s->prev->next = s->next;
	else
		es->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	es->n--;
	store_notify_unsubscribe(es->store, s->sub_id);
	event_free(s->ping_ev);
	event_free(s->check_ev);
	event_free(s->notify_ev);
	log_info("jmap id=%s user=%s action=eventsource_end reason=%s streams=%zu", s->id,
		 s->account, why, es->n);
	if (end)
		evhttp_send_reply_end(s->req);
	free(s->account);
	OPENSSL_cleanse(s, sizeof *s);
	free(s);
}

void jmap_es_closed(struct jmap_es *es, struct evhttp_connection *evcon)
{
	for (struct jmap_es_stream *s = es->streams, *next; s; s = next) {
		next = s->next;
		if (s->evcon != evcon)
			continue;
		/* detached (the client left): ours to free; else evhttp's */
		stream_free(s, evhttp_request_get_connection(s->req) == NULL, "closed");
	}
}

void jmap_es_free(struct jmap_es **esp)
{
	struct jmap_es *es = *esp;
	if (es == NULL)
		return;
	while (es->streams)
		stream_free(es->streams, false, "shutdown");
	free(es);
	*esp = NULL;
}

/* Sends one event; false if the stream had to end (a client that does
 * not read: more than JMAP_ES_MAX_PENDING bytes waiting). */
static bool send_event(struct jmap_es_stream *s, const char *text, size_t len)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
	if (bev != NULL && evbuffer_get_length(bufferevent_get_output(bev)) > JMAP_ES_MAX_PENDING) {
		stream_free(s, true, "not_reading");
		return false;
	}
	struct evbuffer *b = evbuffer_new();
	if (b == NULL || evbuffer_add(b, text, len) < 0) {
		if (b)
			evbuffer_free(b);
		stream_free(s, true, "no_memory");
		return false;
	}
	evhttp_send_reply_chunk(s->req, b);
	evbuffer_free(b);
	if (s->ping > 0) {
		/* "whenever this time elapses since the previous event" */
		struct timeval tv = {(time_t)s->ping, 0};
		evtimer_add(s->ping_ev, &tv);
	}
	return true;
}

/* The account's state now into out; false (logged) on a store failure. */
static bool current_state(struct jmap_es_stream *s, char out[24])
{
	struct store_account *a = NULL;
	char err[256] = "";
	uint64_t n = 0;
	if (store_account_open_id(s->es->store, s->account_id, &a) != 1 ||
	    store_jmap_sync(a, &n, err, sizeof err) < 0) {
		log_error("jmap id=%s action=eventsource_state error=\"%s\"", s->id,
			  err[0] ? err : "the account cannot be opened");
		return false;
	}
	snprintf(out, 24, "%" PRIu64, n);
	return true;
}

/* A "state" event with the StateChange object (RFC 8620 7.1) and the
 * state as the event id; closeafter=state then ends the stream.  false
 * if the stream ended. */
static bool send_state(struct jmap_es_stream *s)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf,
			 "event: state\r\nid: %s\r\ndata: {\"@type\":\"StateChange\","
			 "\"changed\":{\"A%" PRId64 "\":{",
			 s->state, s->account_id);
	bool first = true;
	for (int i = 0; i < N_TYPES; i++) {
		if (!(s->types & (1u << i)))
			continue;
		n += snprintf(buf + n, sizeof buf - (size_t)n, "%s\"%s\":\"%s\"", first ? "" : ",",
			      type_names[i], s->state);
		first = false;
	}
	n += snprintf(buf + n, sizeof buf - (size_t)n, "}}}\r\n\r\n");
	if (!send_event(s, buf, (size_t)n))
		return false;
	log_info("jmap id=%s user=%s action=eventsource_state state=%s", s->id, s->account,
		 s->state);
	if (s->close_after) {
		stream_free(s, true, "closeafter");
		return false;
	}
	return true;
}

static void notify_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct jmap_es_stream *s = arg;
	char now[24];
	if (!current_state(s, now) || strcmp(now, s->state) == 0)
		return;
	snprintf(s->state, sizeof s->state, "%s", now);
	if (s->types != 0)
		send_state(s);
}

static void notify_cb(void *ctx, int64_t account_id)
{
	(void)account_id;
	struct jmap_es_stream *s = ctx;
	if (!evtimer_pending(s->notify_ev, NULL)) {
		struct timeval tv = {0, COALESCE_US};
		evtimer_add(s->notify_ev, &tv);
	}
}

static void ping_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct jmap_es_stream *s = arg;
	char buf[96];
	int n = snprintf(buf, sizeof buf, "event: ping\r\ndata: {\"interval\":%u}\r\n\r\n", s->ping);
	send_event(s, buf, (size_t)n);
}

static void check_fire(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct jmap_es_stream *s = arg;
	struct jmap_authcache_entry e;
	memset(&e, 0, sizeof e);
	e.account_id = s->account_id;
	snprintf(e.account, sizeof e.account, "%s", s->account);
	memcpy(e.app_id, s->app_id, sizeof e.app_id);
	memcpy(e.cred_tag, s->cred_tag, sizeof e.cred_tag);
	e.web = s->web;
	memcpy(e.web_hash, s->web_hash, sizeof e.web_hash);
	int ok = s->es->cred_ok(s->es->cred_ctx, &e);
	OPENSSL_cleanse(&e, sizeof e);
	if (ok == 0) {
		stream_free(s, true, "credentials_changed");
		return;
	}
	struct timeval tv = {JMAP_ES_RECHECK, 0};
	evtimer_add(s->check_ev, &tv);
}

/* ------------------------------------------------------------ the start */

/* "types": "*" or a comma-separated list of type names (the ones we do
 * not push are ignored, RFC 8620 7.3). */
static bool parse_types(const char *v, unsigned *out)
{
	*out = 0;
	if (strcmp(v, "*") == 0) {
		*out = T_MAILBOX | T_THREAD | T_EMAIL;
		return true;
	}
	size_t len = strlen(v);
	if (len == 0 || len > 4096)
		return false;
	for (const char *p = v; *p != '\0';) {
		size_t n = strcspn(p, ",");
		if (n == 0)
			return false;
		for (int i = 0; i < N_TYPES; i++)
			if (strlen(type_names[i]) == n && !strncmp(p, type_names[i], n))
				*out |= 1u << i;
		p += n;
		if (*p == ',' && *++p == '\0')
			return false;
	}
	return true;
}

static bool parse_ping(const char *v, unsigned *out)
{
	uint64_t n = 0;
	if (v[0] == '\0' || strlen(v) > 10)
		return false;
	for (const char *p = v; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n > 0 && n < JMAP_ES_PING_MIN)
		n = JMAP_ES_PING_MIN;
	if (n > JMAP_ES_PING_MAX)
		n = JMAP_ES_PING_MAX;
	*out = (unsigned)n;
	return true;
}

const char *jmap_es_parse_params(const char *types, const char *closeafter, const char *ping,
				 unsigned *types_out, bool *close_after, unsigned *ping_out)
{
	if (types == NULL || !parse_types(types, types_out))
		return "types must be \"*\" or a comma-separated list of type names";
	if (closeafter == NULL || (strcmp(closeafter, "state") != 0 && strcmp(closeafter, "no") != 0))
		return "closeafter must be \"state\" or \"no\"";
	if (ping == NULL || !parse_ping(ping, ping_out))
		return "ping must be a non-negative integer";
	*close_after = strcmp(closeafter, "state") == 0;
	return NULL;
}

static void refuse(struct evhttp_request *req, int code, const char *reason, const char *detail)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	if (code == 429)
		evhttp_add_header(h, "Retry-After", "30");
	if (b != NULL)
		evbuffer_add_printf(b, "%s\n", detail);
	evhttp_send_reply(req, code, reason, b);
	if (b != NULL)
		evbuffer_free(b);
}

/* The query's types, closeafter and ping into s; NULL or what is wrong. */
static const char *parse_query(struct evhttp_request *req, struct jmap_es_stream *s)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq kv = {NULL, &kv.tqh_first};
	if (q == NULL || evhttp_parse_query_str(q, &kv) < 0)
		return "types, closeafter and ping are required";
	const char *types = evhttp_find_header(&kv, "types");
	const char *close = evhttp_find_header(&kv, "closeafter");
	const char *ping = evhttp_find_header(&kv, "ping");
	const char *bad = jmap_es_parse_params(types, close, ping, &s->types, &s->close_after,
					       &s->ping);
	evhttp_clear_headers(&kv);
	return bad;
}

void jmap_es_start(struct jmap_es *es, struct evhttp_request *req,
		   const struct jmap_authcache_entry *cred, const char *id, const char *client_ip)
{
	struct jmap_es_stream *s = xcalloc(1, sizeof *s);
	const char *bad = parse_query(req, s);
	if (bad != NULL) {
		free(s);
		refuse(req, 400, "Bad Request", bad);
		return;
	}
	size_t mine = 0;
	for (struct jmap_es_stream *o = es->streams; o; o = o->next)
		mine += o->account_id == cred->account_id;
	if (mine >= JMAP_ES_PER_USER || es->n >= JMAP_ES_PER_WORKER) {
		free(s);
		log_info("jmap id=%s client=%s user=%s action=eventsource result=refused "
			 "reason=\"too many streams\" user_streams=%zu streams=%zu",
			 id, client_ip, cred->account, mine, es->n);
		refuse(req, 429, "Too Many Requests",
		       mine >= JMAP_ES_PER_USER ? "too many event streams of this account"
						: "too many event streams");
		return;
	}
	s->es = es;
	s->req = req;
	s->evcon = evhttp_request_get_connection(req);
	s->account_id = cred->account_id;
	s->account = xstrdup(cred->account);
	memcpy(s->app_id, cred->app_id, sizeof s->app_id);
	memcpy(s->cred_tag, cred->cred_tag, sizeof s->cred_tag);
	s->web = cred->web;
	memcpy(s->web_hash, cred->web_hash, sizeof s->web_hash);
	snprintf(s->id, sizeof s->id, "%s", id);
	if (!current_state(s, s->state)) {
		free(s->account);
		OPENSSL_cleanse(s, sizeof *s);
		free(s);
		refuse(req, 503, "Service Unavailable", "the account cannot be read");
		return;
	}
	s->ping_ev = evtimer_new(es->base, ping_fire, s);
	s->check_ev = evtimer_new(es->base, check_fire, s);
	s->notify_ev = evtimer_new(es->base, notify_fire, s);
	s->sub_id = store_notify_subscribe(es->store, cred->account_id, notify_cb, s);
	if (s->ping_ev == NULL || s->check_ev == NULL || s->notify_ev == NULL || s->sub_id < 0) {
		if (s->sub_id >= 0)
			store_notify_unsubscribe(es->store, s->sub_id);
		if (s->ping_ev)
			event_free(s->ping_ev);
		if (s->check_ev)
			event_free(s->check_ev);
		if (s->notify_ev)
			event_free(s->notify_ev);
		free(s->account);
		OPENSSL_cleanse(s, sizeof *s);
		free(s);
		refuse(req, 503, "Service Unavailable", "out of resources");
		return;
	}
	s->next = es->streams;
	if (es->streams)
		es->streams->prev = s;
	es->streams = s;
	es->n++;
	/* the state the client saw last (its Last-Event-ID, our event id),
	 * if any and not the state now: what it missed, at once */
	const char *last =
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
	bool missed = last != NULL && strcmp(last, s->state) != 0;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_remove_header(h, "Content-Type");
	evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
	evhttp_add_header(h, "Cache-Control", "no-cache, no-store");
	/* the connection ends with the stream (http_server_hold took its
	 * timeouts away) */
	evhttp_add_header(h, "Connection", "close");
	http_server_hold(es->http, req);
	evhttp_send_reply_start(req, 200, "OK");
	/* The request's header stays in memory as long as the stream: drop
	 * it, wiping the password in Authorization first (the output says
	 * Connection: close, so evhttp needs nothing of it). */
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	char *auth = (char *)evhttp_find_header(in, "Authorization");
	if (auth != NULL)
		OPENSSL_cleanse(auth, strlen(auth));
	evhttp_clear_headers(in);
	log_info("jmap id=%s client=%s user=%s action=eventsource types=%u closeafter=%s ping=%u "
		 "state=%s streams=%zu",
		 s->id, client_ip, s->account, s->types, s->close_after ? "state" : "no",
		 s->ping, s->state, es->n);
	struct timeval tv = {JMAP_ES_RECHECK, 0};
	evtimer_add(s->check_ev, &tv);
	if (missed && s->types != 0) {
		if (!send_state(s))
			return;
	} else if (s->ping > 0) {
		struct timeval pt = {(time_t)s->ping, 0};
		evtimer_add(s->ping_ev, &pt);
	}
}
