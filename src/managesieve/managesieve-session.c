/*
 * managesieve-session.c - ManageSieve sessions on a libevent loop (see
 * managesieve-session.h and docs/sieve.md "ManageSieve").  Protocol
 * layer: uses the store (the account's scripts), the Sieve compiler (every
 * script is checked before it is stored), auth (logins through
 * auth/authglue.h, with its brute-force limiter) and TLS.
 *
 * A session is non-authenticated (CAPABILITY, AUTHENTICATE, STARTTLS,
 * NOOP, LOGOUT), then authenticated (the script commands, and
 * UNAUTHENTICATE back).  Input goes through the bounded command reader of
 * managesieve-parse.h, with tighter limits before login.  Replies are
 * "OK", "NO" or "BYE", with a response code in parentheses and a quoted
 * human-readable string (RFC 5804 1.2, 1.3).
 */
#include "managesieve-session.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "authglue.h"
#include "base64.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "managesieve-parse.h"
#include "netaddr.h"
#include "sieve.h"
#include "store.h"
#include "strutil.h"
#include "tls.h"
#include "xalloc.h"

/* Longest line outside literals: a quoted string of 1024 octets with
 * escapes, or base64 of a SASL response (sasl.h SASL_MAX_RESPONSE). */
#define MS_LINE_MAX 8192
/* Literal octets per command before login (SASL responses only). */
#define MS_LITERAL_MAX_PREAUTH 8192
/* RFC 5804 1.2: at least 30 minutes after login; less before. */
#define MS_TIMEOUT_PREAUTH 300
#define MS_TIMEOUT 1800
/* Stop reading a client whose unread output exceeds this. */
#define MS_OUTPUT_HIGH 262144

enum ms_state {
	MS_STATE_UNAUTH,   /* non-authenticated: reading commands */
	MS_STATE_SASL,     /* a challenge was sent: the next string answers it */
	MS_STATE_DELAY,    /* a login is being checked: reading nothing */
	MS_STATE_AUTH,     /* authenticated: reading commands */
	MS_STATE_STARTTLS, /* "OK" to STARTTLS sent; waiting for it to drain */
	MS_STATE_CLOSING,  /* last reply sent, waiting for output to drain */
	MS_STATE_DEAD,     /* waiting to be reaped */
};

struct ms_session {
	struct managesieve_server *srv;
	struct ms_session *next, *prev;
	struct bufferevent *bev;
	char id[25];
	char ip[INET6_ADDRSTRLEN];
	bool loopback;
	bool tls_on;      /* the connection is TLS (handshake may be pending) */
	bool tls_pending; /* TLS handshake not finished yet */
	bool caps_after_tls; /* STARTTLS: send the capabilities once TLS is up */
	enum ms_state state;
	struct managesieve_parser parser;
	unsigned errors;
	struct authglue *auth;      /* the login in progress */
	struct sockaddr_storage sa; /* the client, for the brute-force limiter */
	char address[256];          /* after login */
	struct store_account *acct; /* owned by the store */
};

struct managesieve_server {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct ms_session *sessions;
	size_t n_sessions;
	struct ms_session *dead;
	struct event *reaper;
	struct tls *tls;
	bool implicit_tls;
	bool shutting_down;
	void (*shutdown_cb)(void *ctx);
	void *shutdown_ctx;
};

static void session_write_cb(struct bufferevent *bev, void *ctx);
static void session_read_cb(struct bufferevent *bev, void *ctx);
static void session_event_cb(struct bufferevent *bev, short what, void *ctx);
static void process_input(struct ms_session *s);
static void session_kill(struct ms_session *s);

/* ------------------------------------------------------------ output */

/* A string as RFC 5804 4 allows the server to send it: quoted when it is
 * short text without CR, LF or NUL, else a literal "{N}" CRLF octets. */
static void put_string(struct evbuffer *out, const char *p, size_t n)
{
	bool quoted = n <= MANAGESIEVE_QUOTED_MAX;
	for (size_t i = 0; quoted && i < n; i++)
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			quoted = false;
	if (!quoted) {
		evbuffer_add_printf(out, "{%zu}\r\n", n);
		evbuffer_add(out, p, n);
		return;
	}
	evbuffer_add(out, "\"", 1);
	size_t start = 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] == '"' || p[i] == '\\') {
			evbuffer_add(out, p + start, i - start);
			evbuffer_add(out, "\\", 1);
			start = i;
		}
	evbuffer_add(out, p + start, n - start);
	evbuffer_add(out, "\"", 1);
}

static void put_cstring(struct evbuffer *out, const char *s)
{
	put_string(out, s, strlen(s));
}

/* "OK|NO|BYE [(CODE)] "text"" CRLF.  code may be NULL. */
static void respond(struct ms_session *s, const char *what, const char *code, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static void respond(struct ms_session *s, const char *what, const char *code, const char *fmt,
		    ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char text[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	evbuffer_add_printf(out, "%s ", what);
	if (code != NULL)
		evbuffer_add_printf(out, "(%s) ", code);
	put_cstring(out, text);
	evbuffer_add(out, "\r\n", 2);
}

static void session_enter(struct ms_session *s, enum ms_state st)
{
	s->state = st;
	if (st == MS_STATE_STARTTLS || st == MS_STATE_DELAY)
		bufferevent_disable(s->bev, EV_READ);
	if (st == MS_STATE_CLOSING) {
		struct timeval tv = {10, 0};
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		bufferevent_disable(s->bev, EV_READ);
	}
}

static bool reading_commands(const struct ms_session *s)
{
	return s->state == MS_STATE_UNAUTH || s->state == MS_STATE_SASL ||
	       s->state == MS_STATE_AUTH;
}

/* Sends a BYE and closes once it is written. */
static void close_with(struct ms_session *s, const char *code, const char *text)
{
	if (s->state == MS_STATE_CLOSING || s->state == MS_STATE_DEAD)
		return;
	if (text != NULL)
		respond(s, "BYE", code, "%s", text);
	session_enter(s, MS_STATE_CLOSING);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_write_cb(s->bev, s);
}

static void client_error(struct ms_session *s)
{
	s->errors++;
	if (s->errors >= s->srv->cfg->smtp_max_errors) {
		log_info("managesieve session=%s client=%s action=close reason=too_many_errors",
			 s->id, s->ip);
		close_with(s, NULL, "Too many errors, closing connection");
	}
}

/* NO with an error count. */
static void refuse(struct ms_session *s, const char *code, const char *text)
{
	respond(s, "NO", code, "%s", text);
	client_error(s);
}

static void set_timeout(struct ms_session *s, int seconds)
{
	struct timeval tv = {seconds, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* The literal budget after login: a script at the size limit plus its
 * name (so a script just over the limit still gets QUOTA/MAXSIZE from
 * PUTSCRIPT, not the reader's answer). */
static size_t literal_max_auth(const struct ms_session *s)
{
	uint64_t max = s->srv->cfg->sieve_max_script_size;
	if (max > SIZE_MAX / 4)
		max = SIZE_MAX / 4;
	return (size_t)max + MANAGESIEVE_QUOTED_MAX;
}

/* ---------------------------------------------------------- capabilities */

static bool plaintext_ok(const struct ms_session *s)
{
	return s->tls_on || (s->loopback && s->srv->cfg->allow_plaintext_loopback);
}

static bool starttls_offered(const struct ms_session *s)
{
	return s->state != MS_STATE_AUTH && !s->tls_on && tls_available(s->srv->tls);
}

/* As POP3 and IMAP: PLAIN and LOGIN need TLS (or an allowed loopback);
 * SCRAM-SHA-256 always; -PLUS with TLS when configured. */
static bool mech_ok(const struct ms_session *s, enum sasl_mech m)
{
	switch (m) {
	case SASL_MECH_PLAIN:
	case SASL_MECH_LOGIN:
		return plaintext_ok(s);
	case SASL_MECH_SCRAM_SHA_256:
		return true;
	case SASL_MECH_SCRAM_SHA_256_PLUS:
		return s->tls_on && !s->tls_pending && s->srv->cfg->auth_scram_plus;
	}
	return false;
}

static void mech_list(const struct ms_session *s, char *out, size_t outsz)
{
	static const enum sasl_mech all[] = {SASL_MECH_PLAIN, SASL_MECH_LOGIN,
					     SASL_MECH_SCRAM_SHA_256, SASL_MECH_SCRAM_SHA_256_PLUS};
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		if (!mech_ok(s, all[i]))
			continue;
		int n = snprintf(out + o, outsz - o, "%s%s", o ? " " : "", sasl_mech_name(all[i]));
		if (n < 0 || (size_t)n >= outsz - o)
			break;
		o += (size_t)n;
	}
}

static void put_cap(struct evbuffer *out, const char *name, const char *value)
{
	put_cstring(out, name);
	if (value != NULL) {
		evbuffer_add(out, " ", 1);
		put_cstring(out, value);
	}
	evbuffer_add(out, "\r\n", 2);
}

/* The capability lines (RFC 5804 1.7), without the final OK. */
static void send_capabilities(struct ms_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	put_cap(out, "IMPLEMENTATION", "Tern");
	char mechs[128];
	mech_list(s, mechs, sizeof mechs);
	put_cap(out, "SASL", mechs);
	char ext[512];
	size_t o = 0;
	ext[0] = '\0';
	for (const char *const *e = sieve_extensions(); *e != NULL; e++) {
		int n = snprintf(ext + o, sizeof ext - o, "%s%s", o ? " " : "", *e);
		if (n < 0 || (size_t)n >= sizeof ext - o)
			break;
		o += (size_t)n;
	}
	put_cap(out, "SIEVE", ext);
	if (starttls_offered(s))
		put_cap(out, "STARTTLS", NULL);
	char num[32];
	snprintf(num, sizeof num, "%zu", sieve_default_limits.max_redirects);
	put_cap(out, "MAXREDIRECTS", num);
	if (s->state == MS_STATE_AUTH)
		put_cap(out, "OWNER", s->address);
	put_cap(out, "UNAUTHENTICATE", NULL);
	put_cap(out, "VERSION", "1.0");
}

/* ------------------------------------------------------ authentication */

static void auth_end(struct ms_session *s)
{
	authglue_free(&s->auth);
	session_enter(s, MS_STATE_UNAUTH);
	bufferevent_enable(s->bev, EV_READ);
}

/* Authenticated as account: open it and enter the authenticated state.
 * final: SCRAM's server-final (base64) for the SASL response code, or "".
 * Always replies. */
static void login_ok(struct ms_session *s, const char *account, const char *final)
{
	char address[256];
	snprintf(address, sizeof address, "%s", account);
	auth_end(s);
	struct store_account *a = NULL;
	int r = store_account_open(s->srv->store, address, &a);
	if (r <= 0) {
		log_error("managesieve session=%s action=open_account user=%s result=%d", s->id,
			  address, r);
		respond(s, "NO", "TRYLATER", "Cannot open the account, try again later");
		return;
	}
	s->acct = a;
	snprintf(s->address, sizeof s->address, "%s", address);
	managesieve_parse_set_limits(&s->parser, MS_LINE_MAX, literal_max_auth(s));
	set_timeout(s, MS_TIMEOUT);
	session_enter(s, MS_STATE_AUTH);
	log_info("managesieve session=%s client=%s action=login user=%s result=ok", s->id, s->ip,
		 s->address);
	if (final[0] == '\0') {
		respond(s, "OK", NULL, "Logged in");
		return;
	}
	/* SCRAM's server-final goes in the OK's SASL response code (RFC 5804
	 * 2.1), saving a round trip. */
	struct evbuffer *out = bufferevent_get_output(s->bev);
	evbuffer_add(out, "OK (SASL ", 9);
	put_cstring(out, final);
	evbuffer_add(out, ") ", 2);
	put_cstring(out, "Logged in");
	evbuffer_add(out, "\r\n", 2);
}

/* A challenge: the base64 of data as a string (RFC 5804 2.1). */
static void send_challenge(struct ms_session *s, const unsigned char *data, size_t len)
{
	size_t need = base64_encoded_len(len) + 1;
	char *b64 = xmalloc(need);
	if (base64_encode(data, len, b64, need) < 0)
		b64[0] = '\0';
	struct evbuffer *out = bufferevent_get_output(s->bev);
	put_cstring(out, b64);
	evbuffer_add(out, "\r\n", 2);
	free(b64);
	session_enter(s, MS_STATE_SASL);
	bufferevent_enable(s->bev, EV_READ);
}

static void auth_cb(void *ctx, const struct authglue_result *r)
{
	struct ms_session *s = ctx;
	switch (r->status) {
	case AUTHGLUE_CHALLENGE:
		send_challenge(s, r->data, r->len);
		break;
	case AUTHGLUE_OK: {
		char final[512] = "";
		if (r->len > 0 && (base64_encoded_len(r->len) >= sizeof final ||
				   base64_encode(r->data, r->len, final, sizeof final) < 0))
			final[0] = '\0';
		login_ok(s, r->account, final);
		break;
	}
	case AUTHGLUE_FAIL:
		auth_end(s);
		if (r->error == SASL_ERR_TEMPORARY) {
			respond(s, "NO", "TRYLATER",
				"Authentication is unavailable, try again later");
		} else if (r->error == SASL_ERR_UNAVAILABLE) {
			refuse(s, NULL, "This mechanism is not available for the account");
		} else {
			refuse(s, NULL, "Authentication failed");
		}
		break;
	case AUTHGLUE_BLOCKED:
		auth_end(s);
		respond(s, "NO", "TRYLATER", "Too many failed logins, try again later");
		break;
	case AUTHGLUE_BUSY:
		auth_end(s);
		respond(s, "NO", "TRYLATER",
			"Too many logins to this account in progress, try again shortly");
		break;
	}
	process_input(s); /* whatever the client pipelined */
}

static void auth_start(struct ms_session *s, enum sasl_mech m, const void *ir, size_t len)
{
	struct sasl_cbind cb[SASL_MAX_CBIND];
	unsigned char data[SASL_MAX_CBIND][64];
	size_t n = 0;
	if (s->tls_on && !s->tls_pending && s->srv->cfg->auth_scram_plus) {
		int l = tls_channel_binding(s->bev, TLS_BINDING_EXPORTER, data[n], 64);
		if (l > 0) {
			cb[n] = (struct sasl_cbind){"tls-exporter", data[n], (size_t)l};
			n++;
		}
		l = tls_channel_binding(s->bev, TLS_BINDING_SERVER_END_POINT, data[n], 64);
		if (l > 0) {
			cb[n] = (struct sasl_cbind){"tls-server-end-point", data[n], (size_t)l};
			n++;
		}
	}
	struct authglue_params p = {
		.base = s->srv->base,
		.store = s->srv->store,
		.mech = m,
		.client = (const struct sockaddr *)&s->sa,
		.client_ip = s->ip,
		.proto = "managesieve",
		.session_id = s->id,
		.cbind = cb,
		.n_cbind = n,
		.cb = auth_cb,
		.cb_ctx = s,
	};
	session_enter(s, MS_STATE_DELAY);
	s->auth = authglue_start(&p, ir, len);
}

/* Decodes a base64 string (an empty one is an empty response) into a new
 * buffer (*buf, *cap bytes, to be wiped and freed).  Returns the length,
 * or -1. */
static long decode_response(const struct managesieve_token *t, unsigned char **buf, size_t *cap)
{
	*cap = base64_decoded_max(t->len) + 1;
	*buf = xmalloc(*cap);
	if (t->len == 0)
		return 0;
	if (memchr(t->data, '\0', t->len) != NULL)
		return -1;
	return base64_decode(t->data, t->len, *buf, *cap);
}

/* The string that answers a challenge (RFC 5804 2.1): "*" cancels. */
static void sasl_response(struct ms_session *s, const struct managesieve_token *t, size_t n)
{
	if (n != 1 || t[0].type != MANAGESIEVE_STRING) {
		auth_end(s);
		refuse(s, NULL, "Authentication failed: a string is expected");
		return;
	}
	if (t[0].len == 1 && t[0].data[0] == '*') {
		auth_end(s);
		respond(s, "NO", NULL, "Authentication cancelled");
		return;
	}
	unsigned char *buf;
	size_t cap;
	long len = decode_response(&t[0], &buf, &cap);
	if (len < 0) {
		free(buf);
		auth_end(s);
		refuse(s, NULL, "Invalid base64 data");
		return;
	}
	session_enter(s, MS_STATE_DELAY);
	authglue_step(s->auth, buf, (size_t)len);
	explicit_bzero(buf, cap);
	free(buf);
}

/* ------------------------------------------------------------- commands */

struct ms_args {
	const struct managesieve_token *t; /* the arguments (after the name) */
	size_t n;
};

/* A script name argument (RFC 5804 1.6): a string of UTF-8 without
 * control characters (C0, DEL, C1), U+2028 or U+2029, as the store
 * accepts it.  Returns it, or NULL after replying NO. */
static const char *script_name(struct ms_session *s, const struct managesieve_token *t,
			       bool allow_empty)
{
	if (t->type != MANAGESIEVE_STRING) {
		refuse(s, NULL, "Syntax error: a script name is a string");
		return NULL;
	}
	if (allow_empty && t->len == 0)
		return "";
	char err[256];
	bool bad = memchr(t->data, '\0', t->len) != NULL;
	for (size_t i = 0; !bad && i + 1 < t->len; i++) {
		unsigned char c = (unsigned char)t->data[i], d = (unsigned char)t->data[i + 1];
		if (c == 0xc2 && d >= 0x80 && d <= 0x9f)
			bad = true; /* U+0080..U+009F */
		if (c == 0xe2 && d == 0x80 && i + 2 < t->len &&
		    ((unsigned char)t->data[i + 2] == 0xa8 || (unsigned char)t->data[i + 2] == 0xa9))
			bad = true; /* U+2028, U+2029 */
	}
	if (bad) {
		refuse(s, NULL, "A script name has no control characters");
		return NULL;
	}
	if (store_sieve_name_ok(t->data, err, sizeof err) < 0) {
		refuse(s, NULL, err);
		return NULL;
	}
	return t->data;
}

static void cmd_capability(struct ms_session *s, const struct ms_args *a)
{
	send_capabilities(s);
	respond(s, "OK", NULL, "Capability completed");
}

static void cmd_logout(struct ms_session *s, const struct ms_args *a)
{
	respond(s, "OK", NULL, "Logout completed");
	close_with(s, NULL, NULL);
}

static void cmd_noop(struct ms_session *s, const struct ms_args *a)
{
	if (a->n == 0) {
		respond(s, "OK", NULL, "NOOP completed");
		return;
	}
	if (a->t[0].type != MANAGESIEVE_STRING) {
		refuse(s, NULL, "Syntax error: the tag is a string");
		return;
	}
	struct evbuffer *out = bufferevent_get_output(s->bev);
	evbuffer_add(out, "OK (TAG ", 8);
	put_string(out, a->t[0].data, a->t[0].len);
	evbuffer_add(out, ") ", 2);
	put_cstring(out, "Done");
	evbuffer_add(out, "\r\n", 2);
}

static const char plaintext_refused[] = "Plaintext authentication disallowed without TLS";

static void cmd_authenticate(struct ms_session *s, const struct ms_args *a)
{
	enum sasl_mech m;
	if (sasl_mech_from_name(a->t[0].data, a->t[0].len, &m) < 0 ||
	    (m == SASL_MECH_SCRAM_SHA_256_PLUS && !mech_ok(s, m))) {
		refuse(s, NULL, "Unsupported authentication mechanism");
		return;
	}
	if (!mech_ok(s, m)) {
		refuse(s, "ENCRYPT-NEEDED", plaintext_refused);
		return;
	}
	if (a->n == 2) {
		if (a->t[1].type != MANAGESIEVE_STRING) {
			refuse(s, NULL, "Syntax error: the initial response is a string");
			return;
		}
		unsigned char *buf;
		size_t cap;
		long len = decode_response(&a->t[1], &buf, &cap);
		if (len < 0) {
			free(buf);
			refuse(s, NULL, "Invalid base64 data");
			return;
		}
		auth_start(s, m, buf, (size_t)len);
		explicit_bzero(buf, cap);
		free(buf);
		return;
	}
	auth_start(s, m, NULL, 0);
}

/* STARTTLS (RFC 5804 2.2).  Input pipelined behind it is dropped; the
 * capabilities are sent again once the handshake is done. */
static void cmd_starttls(struct ms_session *s, const struct ms_args *a)
{
	if (s->tls_on) {
		refuse(s, NULL, "TLS is already active");
		return;
	}
	if (!tls_available(s->srv->tls)) {
		respond(s, "NO", NULL, "TLS is not configured on this server");
		return;
	}
	respond(s, "OK", NULL, "Begin TLS negotiation now");
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t dropped = evbuffer_get_length(in);
	evbuffer_drain(in, dropped);
	if (dropped > 0)
		log_info("managesieve session=%s client=%s action=starttls dropped=%zu "
			 "note=\"input pipelined after STARTTLS discarded\"",
			 s->id, s->ip, dropped);
	session_enter(s, MS_STATE_STARTTLS);
}

static void starttls_switch(struct ms_session *s)
{
	struct bufferevent *bev = tls_starttls(s->srv->tls, s->bev);
	s->bev = bev;
	if (bev == NULL) {
		log_error("managesieve session=%s client=%s action=starttls "
			  "error=\"cannot start TLS\"",
			  s->id, s->ip);
		session_kill(s);
		return;
	}
	s->tls_on = true;
	s->tls_pending = true;
	s->caps_after_tls = true;
	managesieve_parse_free(&s->parser);
	managesieve_parse_init(&s->parser, MS_LINE_MAX, MS_LITERAL_MAX_PREAUTH);
	bufferevent_setcb(bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, 256 * 1024);
	set_timeout(s, MS_TIMEOUT_PREAUTH);
	session_enter(s, MS_STATE_UNAUTH);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void cmd_unauthenticate(struct ms_session *s, const struct ms_args *a)
{
	log_info("managesieve session=%s client=%s action=unauthenticate user=%s", s->id, s->ip,
		 s->address);
	s->acct = NULL;
	s->address[0] = '\0';
	managesieve_parse_set_limits(&s->parser, MS_LINE_MAX, MS_LITERAL_MAX_PREAUTH);
	set_timeout(s, MS_TIMEOUT_PREAUTH);
	session_enter(s, MS_STATE_UNAUTH);
	respond(s, "OK", NULL, "Unauthenticate completed");
}

struct count_ctx {
	const char *name; /* or NULL */
	bool exists;
	uint64_t n;
};

static int count_cb(void *ctx, const char *name, uint64_t size, bool active)
{
	struct count_ctx *c = ctx;
	c->n++;
	if (c->name != NULL && !strcmp(c->name, name))
		c->exists = true;
	return 0;
}

/* Would a script called name of size octets fit?  Replies NO with the
 * QUOTA code and returns false if not (or on a store error). */
static bool check_quota(struct ms_session *s, const char *name, uint64_t size)
{
	const struct config *cfg = s->srv->cfg;
	if (size > cfg->sieve_max_script_size) {
		respond(s, "NO", "QUOTA/MAXSIZE", "Scripts are at most %llu bytes",
			(unsigned long long)cfg->sieve_max_script_size);
		return false;
	}
	struct count_ctx c = {name, false, 0};
	char err[256];
	if (store_sieve_list(s->acct, count_cb, &c, err, sizeof err) < 0) {
		log_error("managesieve session=%s action=list user=%s error=\"%s\"", s->id,
			  s->address, err);
		respond(s, "NO", "TRYLATER", "Cannot read the scripts, try again later");
		return false;
	}
	if (!c.exists && c.n >= cfg->sieve_max_scripts) {
		respond(s, "NO", "QUOTA/MAXSCRIPTS", "An account has at most %llu scripts",
			(unsigned long long)cfg->sieve_max_scripts);
		return false;
	}
	return true;
}

static void cmd_havespace(struct ms_session *s, const struct ms_args *a)
{
	const char *name = script_name(s, &a->t[0], false);
	if (name == NULL)
		return;
	uint32_t size;
	if (managesieve_parse_number(&a->t[1], &size) < 0) {
		refuse(s, NULL, "Syntax error: the size is a number");
		return;
	}
	if (check_quota(s, name, size))
		respond(s, "OK", NULL, "Putscript would succeed");
}

/* Compiles a script argument; replies NO (with line:column) and returns
 * false if it does not compile or is too large. */
static bool check_script(struct ms_session *s, const struct managesieve_token *t)
{
	if (t->type != MANAGESIEVE_STRING) {
		refuse(s, NULL, "Syntax error: the script is a string");
		return false;
	}
	uint64_t max = s->srv->cfg->sieve_max_script_size;
	if (t->len > max) {
		respond(s, "NO", "QUOTA/MAXSIZE", "Scripts are at most %llu bytes",
			(unsigned long long)max);
		return false;
	}
	struct sieve_limits lim = sieve_default_limits;
	lim.max_script = (size_t)max;
	struct sieve_script *sc;
	struct sieve_error err;
	if (sieve_compile(t->data, t->len, &lim, &sc, &err) < 0) {
		respond(s, "NO", NULL, "%d:%d: error: %s", err.line, err.col, err.msg);
		return false;
	}
	sieve_script_free(&sc);
	return true;
}

static void cmd_checkscript(struct ms_session *s, const struct ms_args *a)
{
	if (check_script(s, &a->t[0]))
		respond(s, "OK", NULL, "Script is valid");
}

static void cmd_putscript(struct ms_session *s, const struct ms_args *a)
{
	const char *name = script_name(s, &a->t[0], false);
	if (name == NULL)
		return;
	if (a->t[1].type == MANAGESIEVE_STRING && a->t[1].len == 0) {
		respond(s, "NO", NULL, "An empty script is not stored");
		return;
	}
	if (!check_script(s, &a->t[1]) || !check_quota(s, name, a->t[1].len))
		return;
	char err[256];
	if (store_sieve_put(s->acct, name, a->t[1].data, a->t[1].len,
			    s->srv->cfg->sieve_max_scripts, err, sizeof err) < 0) {
		log_error("managesieve session=%s action=putscript user=%s error=\"%s\"", s->id,
			  s->address, err);
		respond(s, "NO", "TRYLATER", "Cannot store the script, try again later");
		return;
	}
	log_info("managesieve session=%s client=%s action=putscript user=%s size=%zu", s->id,
		 s->ip, s->address, a->t[1].len);
	respond(s, "OK", NULL, "Script stored");
}

static int list_cb(void *ctx, const char *name, uint64_t size, bool active)
{
	struct evbuffer *out = ctx;
	put_cstring(out, name);
	if (active)
		evbuffer_add(out, " ACTIVE", 7);
	evbuffer_add(out, "\r\n", 2);
	return 0;
}

static void cmd_listscripts(struct ms_session *s, const struct ms_args *a)
{
	struct evbuffer *lines = evbuffer_new();
	if (lines == NULL)
		fatal(1, "out of memory");
	char err[256];
	if (store_sieve_list(s->acct, list_cb, lines, err, sizeof err) < 0) {
		log_error("managesieve session=%s action=list user=%s error=\"%s\"", s->id,
			  s->address, err);
		respond(s, "NO", "TRYLATER", "Cannot read the scripts, try again later");
	} else {
		evbuffer_add_buffer(bufferevent_get_output(s->bev), lines);
		respond(s, "OK", NULL, "Listscripts completed");
	}
	evbuffer_free(lines);
}

static void store_failed(struct ms_session *s, const char *what, const char *err)
{
	log_error("managesieve session=%s action=%s user=%s error=\"%s\"", s->id, what, s->address,
		  err);
	respond(s, "NO", "TRYLATER", "The script store failed, try again later");
}

static void cmd_setactive(struct ms_session *s, const struct ms_args *a)
{
	const char *name = script_name(s, &a->t[0], true);
	if (name == NULL)
		return;
	char err[256];
	int r = store_sieve_activate(s->acct, name[0] ? name : NULL, err, sizeof err);
	if (r < 0)
		store_failed(s, "setactive", err);
	else if (r == 0)
		respond(s, "NO", "NONEXISTENT", "There is no script by that name");
	else
		respond(s, "OK", NULL, name[0] ? "Script activated" : "No script is active");
}

static void cmd_getscript(struct ms_session *s, const struct ms_args *a)
{
	const char *name = script_name(s, &a->t[0], false);
	if (name == NULL)
		return;
	char *src, err[256];
	size_t len;
	int r = store_sieve_get(s->acct, name, &src, &len, NULL, err, sizeof err);
	if (r < 0) {
		store_failed(s, "getscript", err);
	} else if (r == 0) {
		respond(s, "NO", "NONEXISTENT", "There is no script by that name");
	} else {
		/* always a literal: scripts are lines */
		struct evbuffer *out = bufferevent_get_output(s->bev);
		evbuffer_add_printf(out, "{%zu}\r\n", len);
		evbuffer_add(out, src, len);
		evbuffer_add(out, "\r\n", 2);
		respond(s, "OK", NULL, "Getscript completed");
	}
	free(src);
}

static void cmd_deletescript(struct ms_session *s, const struct ms_args *a)
{
	const char *name = script_name(s, &a->t[0], false);
	if (name == NULL)
		return;
	char *src, err[256];
	size_t len;
	bool active = false;
	int r = store_sieve_get(s->acct, name, &src, &len, &active, err, sizeof err);
	free(src);
	if (r == 1 && active) {
		respond(s, "NO", "ACTIVE", "The active script cannot be deleted");
		return;
	}
	if (r == 1)
		r = store_sieve_delete(s->acct, name, err, sizeof err);
	if (r < 0)
		store_failed(s, "deletescript", err);
	else if (r == 0)
		respond(s, "NO", "NONEXISTENT", "There is no script by that name");
	else
		respond(s, "OK", NULL, "Script deleted");
}

static void cmd_renamescript(struct ms_session *s, const struct ms_args *a)
{
	const char *from = script_name(s, &a->t[0], false);
	if (from == NULL)
		return;
	const char *to = script_name(s, &a->t[1], false);
	if (to == NULL)
		return;
	char err[256];
	int r = store_sieve_rename(s->acct, from, to, err, sizeof err);
	if (r == -2)
		respond(s, "NO", "ALREADYEXISTS", "A script by the new name exists");
	else if (r < 0)
		store_failed(s, "renamescript", err);
	else if (r == 0)
		respond(s, "NO", "NONEXISTENT", "There is no script by that name");
	else
		respond(s, "OK", NULL, "Script renamed");
}

enum {
	CMD_UNAUTH = 1 << 0, /* valid before login */
	CMD_AUTH = 1 << 1,   /* valid after login */
};

static const struct {
	const char *name;
	void (*run)(struct ms_session *s, const struct ms_args *a);
	unsigned flags;
	size_t min_args, max_args;
} commands[] = {
    {"CAPABILITY", cmd_capability, CMD_UNAUTH | CMD_AUTH, 0, 0},
    {"AUTHENTICATE", cmd_authenticate, CMD_UNAUTH, 1, 2},
    {"STARTTLS", cmd_starttls, CMD_UNAUTH, 0, 0},
    {"LOGOUT", cmd_logout, CMD_UNAUTH | CMD_AUTH, 0, 0},
    {"NOOP", cmd_noop, CMD_UNAUTH | CMD_AUTH, 0, 1},
    {"HAVESPACE", cmd_havespace, CMD_AUTH, 2, 2},
    {"PUTSCRIPT", cmd_putscript, CMD_AUTH, 2, 2},
    {"CHECKSCRIPT", cmd_checkscript, CMD_AUTH, 1, 1},
    {"LISTSCRIPTS", cmd_listscripts, CMD_AUTH, 0, 0},
    {"SETACTIVE", cmd_setactive, CMD_AUTH, 1, 1},
    {"GETSCRIPT", cmd_getscript, CMD_AUTH, 1, 1},
    {"DELETESCRIPT", cmd_deletescript, CMD_AUTH, 1, 1},
    {"RENAMESCRIPT", cmd_renamescript, CMD_AUTH, 2, 2},
    {"UNAUTHENTICATE", cmd_unauthenticate, CMD_AUTH, 0, 0},
};

static void run_command(struct ms_session *s, const struct managesieve_token *t, size_t n)
{
	if (t[0].type != MANAGESIEVE_ATOM) {
		refuse(s, NULL, "Syntax error: a command starts with its name");
		return;
	}
	unsigned need = s->state == MS_STATE_AUTH ? CMD_AUTH : CMD_UNAUTH;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (!strutil_eq_ci(t[0].data, t[0].len, commands[i].name))
			continue;
		if (!(commands[i].flags & need)) {
			refuse(s, NULL,
			       need == CMD_AUTH ? "Command not valid after login"
						: "Authenticate first");
			return;
		}
		if (n - 1 < commands[i].min_args || n - 1 > commands[i].max_args) {
			respond(s, "NO", NULL, "Syntax error: wrong number of arguments to %s",
				commands[i].name);
			client_error(s);
			return;
		}
		struct ms_args a = {t + 1, n - 1};
		commands[i].run(s, &a);
		return;
	}
	refuse(s, NULL, "Unknown command");
}

/* ---------------------------------------------------------------- input */

static void process_input(struct ms_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (reading_commands(s)) {
		if (evbuffer_get_length(out) > MS_OUTPUT_HIGH) {
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		size_t used;
		enum managesieve_result r =
		    managesieve_parse_feed(&s->parser, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (r == MANAGESIEVE_NEED_MORE)
			continue;
		bool sasl = s->state == MS_STATE_SASL;
		if (sasl && r == MANAGESIEVE_COMMAND) {
			sasl_response(s, s->parser.tokens, s->parser.n_tokens);
			continue;
		}
		if (sasl)
			auth_end(s);
		switch (r) {
		case MANAGESIEVE_COMMAND:
			run_command(s, s->parser.tokens, s->parser.n_tokens);
			break;
		case MANAGESIEVE_BAD:
			respond(s, "NO", NULL, "Syntax error: %s", s->parser.error);
			client_error(s);
			break;
		case MANAGESIEVE_TOO_LONG:
			refuse(s, NULL, "Line too long");
			break;
		case MANAGESIEVE_TOO_BIG:
			if (s->state != MS_STATE_AUTH) {
				log_info("managesieve session=%s client=%s action=close "
					 "reason=literal_too_big",
					 s->id, s->ip);
				close_with(s, NULL, "Literal too big before login");
				break;
			}
			respond(s, "NO", "QUOTA/MAXSIZE", "Scripts are at most %llu bytes",
				(unsigned long long)s->srv->cfg->sieve_max_script_size);
			client_error(s);
			break;
		case MANAGESIEVE_NEED_MORE:
			break;
		}
	}
}

/* ------------------------------------------------------------ lifecycle */

static void session_unlink(struct ms_session *s)
{
	struct managesieve_server *srv = s->srv;
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	srv->n_sessions--;
}

static void session_free(struct ms_session *s)
{
	authglue_free(&s->auth);
	managesieve_parse_free(&s->parser);
	if (s->bev)
		bufferevent_free(s->bev);
	free(s);
}

static void session_kill(struct ms_session *s)
{
	if (s->state == MS_STATE_DEAD)
		return;
	authglue_free(&s->auth);
	if (s->bev != NULL)
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	s->state = MS_STATE_DEAD;
	session_unlink(s);
	s->next = s->srv->dead;
	s->srv->dead = s;
	event_active(s->srv->reaper, EV_TIMEOUT, 0);
}

static void reaper_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct managesieve_server *srv = ctx;
	while (srv->dead) {
		struct ms_session *s = srv->dead;
		srv->dead = s->next;
		session_free(s);
	}
	if (srv->shutting_down && srv->n_sessions == 0 && srv->shutdown_cb) {
		void (*cb)(void *) = srv->shutdown_cb;
		srv->shutdown_cb = NULL;
		cb(srv->shutdown_ctx);
	}
}

static void session_read_cb(struct bufferevent *bev, void *ctx)
{
	process_input(ctx);
}

static void session_write_cb(struct bufferevent *bev, void *ctx)
{
	struct ms_session *s = ctx;
	if (s->state == MS_STATE_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			tls_close_notify(bev);
			session_kill(s);
		}
		return;
	}
	if (s->state == MS_STATE_STARTTLS) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			starttls_switch(s);
		return;
	}
	if (reading_commands(s) && !(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		process_input(s);
	}
}

static void session_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct ms_session *s = ctx;
	int t = tls_session_event(bev, what, &s->tls_pending, "managesieve", s->id, s->ip);
	if (t != 0) {
		if (t < 0) {
			session_kill(s);
		} else if (s->caps_after_tls) {
			/* RFC 5804 2.2: the capabilities again, under TLS */
			s->caps_after_tls = false;
			send_capabilities(s);
			respond(s, "OK", NULL, "TLS negotiation successful");
		}
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && s->state != MS_STATE_CLOSING) {
		log_info("managesieve session=%s client=%s action=close reason=timeout", s->id,
			 s->ip);
		close_with(s, NULL, "Disconnected for inactivity");
		return;
	}
	if (what & BEV_EVENT_EOF)
		log_debug("managesieve session=%s client=%s action=disconnect", s->id, s->ip);
	session_kill(s);
}

/* The greeting: the capabilities and OK (RFC 5804 1.7). */
static void greet(struct ms_session *s)
{
	send_capabilities(s);
	respond(s, "OK", NULL, "Tern ManageSieve ready");
}

void managesieve_server_accept(struct managesieve_server *srv, evutil_socket_t fd,
			       const struct sockaddr *sa, int salen)
{
	struct ms_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	fsutil_unique_id(s->id);
	netaddr_format(sa, s->ip, sizeof s->ip, &s->loopback);
	managesieve_parse_init(&s->parser, MS_LINE_MAX, MS_LITERAL_MAX_PREAUTH);
	evutil_make_socket_nonblocking(fd);
	if (srv->implicit_tls) {
		s->bev = tls_accept(srv->tls, srv->base, fd);
		s->tls_on = s->tls_pending = true;
	} else {
		s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (s->bev == NULL)
			evutil_closesocket(fd);
	}
	if (salen > 0 && (size_t)salen <= sizeof s->sa)
		memcpy(&s->sa, sa, (size_t)salen);
	if (s->bev == NULL) {
		session_free(s);
		return;
	}
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->n_sessions++;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, 256 * 1024);
	set_timeout(s, MS_TIMEOUT_PREAUTH);
	log_debug("managesieve session=%s client=%s action=connect", s->id, s->ip);
	if (srv->shutting_down || srv->n_sessions > srv->cfg->smtp_max_connections) {
		close_with(s, "TRYLATER", "Too many connections, try again later");
		return;
	}
	session_enter(s, MS_STATE_UNAUTH);
	greet(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

struct managesieve_server *managesieve_server_new(struct event_base *base, struct store *store,
						  const struct config *cfg)
{
	struct managesieve_server *srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->store = store;
	srv->cfg = cfg;
	srv->reaper = event_new(base, -1, 0, reaper_cb, srv);
	if (srv->reaper == NULL)
		fatal(1, "cannot create event");
	return srv;
}

void managesieve_server_set_tls(struct managesieve_server *srv, struct tls *tls, bool implicit)
{
	srv->tls = tls;
	srv->implicit_tls = implicit;
}

void managesieve_server_set_config(struct managesieve_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
}

size_t managesieve_server_sessions(const struct managesieve_server *srv)
{
	return srv->n_sessions;
}

void managesieve_server_shutdown(struct managesieve_server *srv, void (*cb)(void *ctx),
				 void *ctx)
{
	srv->shutting_down = true;
	srv->shutdown_cb = cb;
	srv->shutdown_ctx = ctx;
	struct ms_session *s = srv->sessions;
	while (s != NULL) {
		struct ms_session *next = s->next;
		if (s->state == MS_STATE_CLOSING) {
			struct timeval tv = {2, 0};
			bufferevent_set_timeouts(s->bev, &tv, &tv);
		} else {
			authglue_free(&s->auth);
			close_with(s, "TRYLATER", "Server shutting down");
		}
		s = next;
	}
	event_active(srv->reaper, EV_TIMEOUT, 0);
}

void managesieve_server_free(struct managesieve_server **srvp)
{
	struct managesieve_server *srv = *srvp;
	if (srv == NULL)
		return;
	while (srv->sessions) {
		struct ms_session *s = srv->sessions;
		session_unlink(s);
		session_free(s);
	}
	while (srv->dead) {
		struct ms_session *s = srv->dead;
		srv->dead = s->next;
		session_free(s);
	}
	event_free(srv->reaper);
	free(srv);
	*srvp = NULL;
}
