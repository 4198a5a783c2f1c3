/*
 * pop3-session.c - POP3 server sessions on a libevent loop (see
 * pop3-session.h and docs/pop3.md).  Protocol layer: uses the store (the
 * INBOX of an account, the per-account lock), auth (password checks) and
 * lib.
 *
 * A session is AUTHORIZATION (USER/PASS or AUTH PLAIN), then TRANSACTION
 * over a list of INBOX messages taken once at login, then UPDATE at QUIT,
 * when the messages marked by DELE are expunged.  A session that ends any
 * other way deletes nothing.  One session per maildrop: the login takes
 * store_account_lock (flock, so it holds across worker processes and dies
 * with its holder).
 *
 * RETR and TOP stream the message file in chunks, dot-stuffed, as the
 * client reads them (backpressure through the output buffer), so a large
 * message never sits in memory.  Commands pipelined behind them wait.
 */
#include "pop3-session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "config.h"
#include "fsutil.h"
#include "linereader.h"
#include "log.h"
#include "password.h"
#include "pop3-parse.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

/* RFC 2449 section 4: a command is at most 255 octets including CRLF. */
#define POP3_LINE_MAX 253
/* SASL responses after "+ " carry base64 and may be longer (512 octets
 * including CRLF). */
#define POP3_SASL_LINE_MAX 510
/* RFC 1939 section 3: an autologout timer must be at least 10 minutes. */
#define POP3_TIMEOUT 600
/* A failed login is answered after this many seconds. */
#define POP3_AUTH_FAIL_DELAY 1
/* Stop reading a client (and stop reading a message file for it) whose
 * unread output exceeds this. */
#define POP3_OUTPUT_HIGH 262144
/* Refill the output of a RETR once it drops to this. */
#define POP3_OUTPUT_LOW 65536
/* Bytes of a message file read at a time. */
#define POP3_SEND_CHUNK 65536
#define POP3_USER_MAX 255

enum pop3_state {
	POP3_STATE_AUTH,    /* AUTHORIZATION: reading commands */
	POP3_STATE_SASL,    /* AUTH sent "+ ": the next line is a SASL response */
	POP3_STATE_DELAY,   /* failed login: waiting to answer, reading nothing */
	POP3_STATE_TRANS,   /* TRANSACTION: reading commands */
	POP3_STATE_SENDING, /* streaming a RETR/TOP answer; commands wait */
	POP3_STATE_CLOSING, /* last reply sent, waiting for output to drain */
	POP3_STATE_DEAD,    /* waiting to be reaped */
};

/* One message of the maildrop, as listed at login. */
struct pop3_msg {
	uint32_t uid;
	bool deleted;   /* marked by DELE */
	unsigned flags; /* STORE_F_* at login (RETR adds \Seen) */
	uint64_t size;
	char file_id[25];
};

/* A RETR or TOP being streamed. */
struct pop3_send {
	int fd;   /* the message file; -1 when idle */
	bool top; /* TOP: stop after lines_left body lines */
	uint64_t lines_left;
	bool at_bol;     /* next byte starts a line (dot-stuffing) */
	bool prev_cr;    /* last byte was CR */
	bool in_body;    /* the blank line after the header was sent */
	size_t line_len; /* non-CR bytes of the current line so far */
};

struct pop3_session {
	struct pop3_server *srv;
	struct pop3_session *next, *prev;
	struct bufferevent *bev;
	char id[25];
	char ip[INET6_ADDRSTRLEN];
	bool loopback;
	enum pop3_state state;
	struct linereader lr;
	unsigned errors;
	/* AUTHORIZATION */
	char user[POP3_USER_MAX + 1]; /* from USER */
	bool have_user;
	bool user_too_long;
	struct event *delay_ev; /* failed-login delay */
	/* TRANSACTION */
	char address[256];
	struct store_account *acct; /* owned by the store */
	int lock_fd;                /* store_account_lock; -1 before login */
	int64_t inbox_id;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t n_msgs;
	struct pop3_send send;
};

struct pop3_server {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct pop3_session *sessions;
	size_t n_sessions;
	struct pop3_session *dead; /* sessions to reap */
	struct event *reaper;
	bool shutting_down;
	void (*shutdown_cb)(void *ctx);
	void *shutdown_ctx;
	char dummy_hash[256];                  /* checked for unknown users (timing) */
	char scratch[2 * POP3_SEND_CHUNK + 8]; /* dot-stuffed output of a chunk */
	char chunk[POP3_SEND_CHUNK];           /* a chunk read from a message file */
};

static void session_write_cb(struct bufferevent *bev, void *ctx);
static void process_input(struct pop3_session *s);

/* ------------------------------------------------------------ utilities */

static void reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void reply(struct pop3_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static bool reading_commands(const struct pop3_session *s)
{
	return s->state == POP3_STATE_AUTH || s->state == POP3_STATE_SASL ||
	       s->state == POP3_STATE_TRANS;
}

static void session_enter(struct pop3_session *s, enum pop3_state st)
{
	s->state = st;
	if (st == POP3_STATE_SENDING) {
		/* Commands wait anyway; and not reading keeps the idle timeout
		 * from firing while a slow client is busy taking a big message
		 * (the write timeout still catches one that stops reading). */
		bufferevent_disable(s->bev, EV_READ);
	}
	if (st == POP3_STATE_CLOSING) {
		/* give a slow reader a little time to take the last reply */
		struct timeval tv = {10, 0};
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		bufferevent_disable(s->bev, EV_READ);
	}
}

/* Sends a last reply and closes once it is written. */
static void close_with(struct pop3_session *s, const char *line)
{
	if (s->state == POP3_STATE_CLOSING || s->state == POP3_STATE_DEAD)
		return;
	if (line != NULL)
		reply(s, "%s", line);
	session_enter(s, POP3_STATE_CLOSING);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_write_cb(s->bev, s);
}

/* Counts a client error; after too many the session is closed. */
static void client_error(struct pop3_session *s)
{
	s->errors++;
	if (s->errors >= s->srv->cfg->smtp_max_errors) {
		log_info("pop3 session=%s client=%s action=close reason=too_many_errors", s->id,
			 s->ip);
		close_with(s, "-ERR Too many errors, closing connection");
	}
}

static bool plaintext_ok(const struct pop3_session *s)
{
	return s->loopback && s->srv->cfg->allow_plaintext_loopback;
}

static void set_line_max(struct pop3_session *s, size_t max)
{
	linereader_set_max(&s->lr, max);
}

/* Releases the maildrop lock (at QUIT after the expunge, or on close). */
static void unlock_maildrop(struct pop3_session *s)
{
	if (s->lock_fd >= 0) {
		close(s->lock_fd);
		s->lock_fd = -1;
	}
}

static void send_stop(struct pop3_session *s)
{
	if (s->send.fd >= 0) {
		close(s->send.fd);
		s->send.fd = -1;
	}
}

/* ------------------------------------------------------ authentication */

struct list_ctx {
	struct pop3_session *s;
};

static int list_cb(void *ctx, const struct store_message *m)
{
	struct pop3_session *s = ((struct list_ctx *)ctx)->s;
	s->msgs = xreallocarray(s->msgs, s->n_msgs + 1, sizeof *s->msgs);
	struct pop3_msg *p = &s->msgs[s->n_msgs++];
	memset(p, 0, sizeof *p);
	p->uid = m->uid;
	p->flags = m->flags;
	p->size = m->size;
	memcpy(p->file_id, m->file_id, sizeof p->file_id);
	p->file_id[sizeof p->file_id - 1] = '\0';
	return 0;
}

/* Opens the maildrop of an authenticated user: lock, then the message
 * list.  Replies and returns -1 on failure (the session stays in
 * AUTHORIZATION). */
static int open_maildrop(struct pop3_session *s, const char *address)
{
	struct store *st = s->srv->store;
	char err[256] = "";
	struct store_account *a = NULL;
	int r = store_account_open(st, address, &a);
	if (r <= 0) {
		log_error("pop3 session=%s action=open_account user=%s result=%d", s->id, address,
			  r);
		reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox, try again later");
		return -1;
	}
	int fd = store_account_lock(a, err, sizeof err);
	if (fd < 0) {
		if (errno == EWOULDBLOCK) {
			log_info("pop3 session=%s client=%s action=login user=%s result=in_use",
				 s->id, s->ip, address);
			reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session");
		} else {
			log_error("pop3 session=%s action=lock user=%s error=\"%s\"", s->id,
				  address, err);
			reply(s, "-ERR [SYS/TEMP] Cannot lock the mailbox, try again later");
		}
		return -1;
	}
	struct store_mailbox mb;
	if (store_mailbox_get(a, "INBOX", &mb) != 1) {
		close(fd);
		log_error("pop3 session=%s action=inbox user=%s error=\"no INBOX\"", s->id,
			  address);
		reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox, try again later");
		return -1;
	}
	struct list_ctx lc = {s};
	if (store_message_list(a, mb.id, 1, UINT32_MAX, list_cb, &lc, err, sizeof err) < 0) {
		close(fd);
		free(s->msgs);
		s->msgs = NULL;
		s->n_msgs = 0;
		log_error("pop3 session=%s action=list user=%s error=\"%s\"", s->id, address, err);
		reply(s, "-ERR [SYS/TEMP] Cannot read the mailbox, try again later");
		return -1;
	}
	s->acct = a;
	s->lock_fd = fd;
	s->inbox_id = mb.id;
	s->uidvalidity = mb.uidvalidity;
	snprintf(s->address, sizeof s->address, "%s", address);
	return 0;
}

static void maildrop_totals(const struct pop3_session *s, size_t *n, uint64_t *octets)
{
	*n = 0;
	*octets = 0;
	for (size_t i = 0; i < s->n_msgs; i++)
		if (!s->msgs[i].deleted) {
			(*n)++;
			*octets += s->msgs[i].size;
		}
}

static void delay_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct pop3_session *s = ctx;
	if (s->state != POP3_STATE_DELAY)
		return;
	reply(s, "-ERR [AUTH] Authentication failed");
	session_enter(s, POP3_STATE_AUTH);
	bufferevent_enable(s->bev, EV_READ);
	client_error(s);
	process_input(s);
}

/* A failed login: answered after a delay, reading nothing meanwhile. */
static void login_failed(struct pop3_session *s, const char *user, const char *why)
{
	char u[128];
	log_escape(u, sizeof u, user, strlen(user));
	log_info("pop3 session=%s client=%s action=login user=%s result=failed reason=%s", s->id,
		 s->ip, u, why);
	session_enter(s, POP3_STATE_DELAY);
	bufferevent_disable(s->bev, EV_READ);
	struct timeval tv = {POP3_AUTH_FAIL_DELAY, 0};
	evtimer_add(s->delay_ev, &tv);
}

/* Checks user (NUL-terminated, any case) and password; on success opens
 * the maildrop and enters TRANSACTION.  Always replies (maybe later). */
static void try_login(struct pop3_session *s, const char *user, const char *pass)
{
	struct pop3_server *srv = s->srv;
	struct store_account_info info;
	int found = user[0] ? store_account_get(srv->store, user, &info) : 0;
	if (found < 0) {
		log_error("pop3 session=%s action=account_get error=database", s->id);
		reply(s, "-ERR [SYS/TEMP] Authentication is unavailable, try again later");
		return;
	}
	bool ok;
	if (found == 1 && info.pwhash[0] != '\0') {
		ok = password_verify(pass, info.pwhash);
	} else {
		/* spend the time a real check takes, so a reply's timing does
		 * not tell whether the user exists */
		if (srv->dummy_hash[0] == '\0' &&
		    password_hash("tern-dummy-password", srv->dummy_hash, sizeof srv->dummy_hash) <
			0)
			srv->dummy_hash[0] = '\0';
		if (srv->dummy_hash[0] != '\0')
			(void)password_verify(pass, srv->dummy_hash);
		ok = false;
	}
	if (!ok) {
		login_failed(s, user, found == 1 ? "password" : "unknown_user");
		return;
	}
	if (open_maildrop(s, info.address) < 0)
		return;
	size_t n;
	uint64_t octets;
	maildrop_totals(s, &n, &octets);
	log_info(
	    "pop3 session=%s client=%s action=login user=%s result=ok messages=%zu octets=%llu",
	    s->id, s->ip, s->address, n, (unsigned long long)octets);
	set_line_max(s, POP3_LINE_MAX);
	session_enter(s, POP3_STATE_TRANS);
	reply(s, "+OK Logged in, %zu messages (%llu octets)", n, (unsigned long long)octets);
}

/* One decoded SASL PLAIN message. */
static void auth_plain(struct pop3_session *s, const unsigned char *msg, size_t n)
{
	struct pop3_plain p;
	if (pop3_parse_plain(msg, n, &p) < 0) {
		login_failed(s, "", "bad_plain_message");
		return;
	}
	char user[256], pass[256];
	memcpy(user, p.authcid, p.authcid_len);
	user[p.authcid_len] = '\0';
	memcpy(pass, p.passwd, p.passwd_len);
	pass[p.passwd_len] = '\0';
	/* No proxy logins: an authorization identity must name the user. */
	if (p.authzid_len > 0 && !strutil_eq_ci(p.authzid, p.authzid_len, user))
		login_failed(s, user, "authzid");
	else
		try_login(s, user, pass);
	explicit_bzero(pass, sizeof pass);
}

/* A base64 SASL response (initial or after "+ "). */
static void auth_response(struct pop3_session *s, const char *p, size_t n)
{
	unsigned char msg[POP3_BASE64_DECODED_MAX(POP3_SASL_LINE_MAX)];
	size_t len = 0;
	if (!(n == 1 && p[0] == '=') && pop3_parse_base64(p, n, msg, sizeof msg, &len) < 0) {
		reply(s, "-ERR Invalid base64 data");
		client_error(s);
		return;
	}
	auth_plain(s, msg, len);
	explicit_bzero(msg, sizeof msg);
}

/* ------------------------------------------------------------- commands */

static void cmd_capa(struct pop3_session *s, const struct pop3_cmd *c)
{
	reply(s, "+OK Capability list follows");
	reply(s, "TOP");
	reply(s, "UIDL");
	if (plaintext_ok(s)) {
		reply(s, "USER");
		reply(s, "SASL PLAIN");
	}
	reply(s, "RESP-CODES");
	reply(s, "AUTH-RESP-CODE");
	reply(s, "PIPELINING");
	reply(s, "IMPLEMENTATION Tern");
	reply(s, ".");
}

static const char plaintext_refused[] =
    "-ERR [AUTH] Plaintext authentication disallowed without TLS";

static void cmd_user(struct pop3_session *s, const struct pop3_cmd *c)
{
	s->have_user = false;
	if (!plaintext_ok(s)) {
		reply(s, "%s", plaintext_refused);
		client_error(s);
		return;
	}
	/* Too long or with NUL: never a user; PASS fails (with the delay). */
	s->user_too_long = c->arg_len[0] > POP3_USER_MAX;
	size_t n = s->user_too_long ? 0 : c->arg_len[0];
	memcpy(s->user, c->arg[0], n);
	s->user[n] = '\0';
	s->have_user = true;
	reply(s, "+OK Send PASS");
}

static void cmd_pass(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (!plaintext_ok(s)) {
		reply(s, "%s", plaintext_refused);
		client_error(s);
		return;
	}
	if (!s->have_user) {
		reply(s, "-ERR Send USER first");
		client_error(s);
		return;
	}
	s->have_user = false;
	char pass[256];
	size_t n = c->arg_len[0] < sizeof pass - 1 ? c->arg_len[0] : sizeof pass - 1;
	memcpy(pass, c->arg[0], n);
	pass[n] = '\0';
	if (s->user_too_long || c->arg_len[0] >= sizeof pass)
		login_failed(s, s->user, "too_long");
	else
		try_login(s, s->user, pass);
	explicit_bzero(pass, sizeof pass);
}

static void cmd_auth(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (!plaintext_ok(s)) {
		reply(s, "%s", plaintext_refused);
		client_error(s);
		return;
	}
	if (c->n_args == 0) {
		/* RFC 1734 clients list the mechanisms this way */
		reply(s, "+OK Mechanisms follow");
		reply(s, "PLAIN");
		reply(s, ".");
		return;
	}
	if (!strutil_eq_ci(c->arg[0], c->arg_len[0], "PLAIN")) {
		reply(s, "-ERR Unsupported authentication mechanism");
		client_error(s);
		return;
	}
	if (c->n_args == 2) {
		auth_response(s, c->arg[1], c->arg_len[1]);
		return;
	}
	/* RFC 5034 4: an empty challenge is "+" and one space */
	reply(s, "+ ");
	set_line_max(s, POP3_SASL_LINE_MAX);
	session_enter(s, POP3_STATE_SASL);
}

/* The line after "+ ". */
static void sasl_line(struct pop3_session *s, const char *p, size_t n)
{
	set_line_max(s, POP3_LINE_MAX);
	session_enter(s, POP3_STATE_AUTH);
	if (n == 1 && p[0] == '*') {
		reply(s, "-ERR Authentication cancelled");
		return;
	}
	auth_response(s, p, n);
}

/* The message numbered n (1-based), or NULL after replying -ERR. */
static struct pop3_msg *msg_get(struct pop3_session *s, uint64_t n)
{
	if (n == 0 || n > s->n_msgs) {
		reply(s, "-ERR No such message");
		return NULL;
	}
	struct pop3_msg *m = &s->msgs[n - 1];
	if (m->deleted) {
		reply(s, "-ERR Message %llu is deleted", (unsigned long long)n);
		return NULL;
	}
	return m;
}

static void cmd_stat(struct pop3_session *s, const struct pop3_cmd *c)
{
	size_t n;
	uint64_t octets;
	maildrop_totals(s, &n, &octets);
	reply(s, "+OK %zu %llu", n, (unsigned long long)octets);
}

static void cmd_list(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (c->n_args == 1) {
		struct pop3_msg *m = msg_get(s, c->num[0]);
		if (m != NULL)
			reply(s, "+OK %llu %llu", (unsigned long long)c->num[0],
			      (unsigned long long)m->size);
		return;
	}
	size_t n;
	uint64_t octets;
	maildrop_totals(s, &n, &octets);
	reply(s, "+OK %zu messages (%llu octets)", n, (unsigned long long)octets);
	for (size_t i = 0; i < s->n_msgs; i++)
		if (!s->msgs[i].deleted)
			reply(s, "%zu %llu", i + 1, (unsigned long long)s->msgs[i].size);
	reply(s, ".");
}

static void cmd_uidl(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (c->n_args == 1) {
		struct pop3_msg *m = msg_get(s, c->num[0]);
		if (m != NULL)
			reply(s, "+OK %llu %lu.%lu", (unsigned long long)c->num[0],
			      (unsigned long)s->uidvalidity, (unsigned long)m->uid);
		return;
	}
	reply(s, "+OK Unique-ID listing follows");
	for (size_t i = 0; i < s->n_msgs; i++)
		if (!s->msgs[i].deleted)
			reply(s, "%zu %lu.%lu", i + 1, (unsigned long)s->uidvalidity,
			      (unsigned long)s->msgs[i].uid);
	reply(s, ".");
}

static void cmd_dele(struct pop3_session *s, const struct pop3_cmd *c)
{
	struct pop3_msg *m = msg_get(s, c->num[0]);
	if (m == NULL)
		return;
	m->deleted = true;
	reply(s, "+OK Message %llu deleted", (unsigned long long)c->num[0]);
}

static void cmd_rset(struct pop3_session *s, const struct pop3_cmd *c)
{
	for (size_t i = 0; i < s->n_msgs; i++)
		s->msgs[i].deleted = false;
	size_t n;
	uint64_t octets;
	maildrop_totals(s, &n, &octets);
	reply(s, "+OK Maildrop has %zu messages (%llu octets)", n, (unsigned long long)octets);
}

static void cmd_noop(struct pop3_session *s, const struct pop3_cmd *c)
{
	reply(s, "+OK");
}

/* Dot-stuffs in[0..n) into out (room for 2 * n bytes): a line starting
 * with '.' gets another, a bare LF becomes CRLF.  For TOP, stops after the
 * requested body line and sets *done.  Returns the bytes written; *used
 * says how many of in were taken. */
static size_t stuff_chunk(struct pop3_send *st, const char *in, size_t n, char *out, size_t *used,
			  bool *done)
{
	size_t o = 0;
	*done = false;
	for (size_t i = 0; i < n; i++) {
		char ch = in[i];
		if (st->at_bol && ch == '.')
			out[o++] = '.';
		if (ch == '\n') {
			if (!st->prev_cr)
				out[o++] = '\r';
			out[o++] = '\n';
			if (!st->in_body) {
				if (st->line_len == 0) {
					st->in_body = true; /* the blank line after the header */
					if (st->top && st->lines_left == 0)
						*done = true;
				}
			} else if (st->top && --st->lines_left == 0) {
				*done = true;
			}
			st->at_bol = true;
			st->prev_cr = false;
			st->line_len = 0;
			if (*done) {
				*used = i + 1;
				return o;
			}
			continue;
		}
		out[o++] = ch;
		st->at_bol = false;
		st->prev_cr = ch == '\r';
		if (ch != '\r')
			st->line_len++;
	}
	*used = n;
	return o;
}

/* Ends a RETR/TOP answer: CRLF if the file did not end with one, then the
 * terminating ".". */
static void send_finish(struct pop3_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	if (!s->send.at_bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	send_stop(s);
	session_enter(s, POP3_STATE_TRANS);
	if (s->srv->shutting_down)
		close_with(s, "-ERR [SYS/TEMP] Server shutting down");
	else
		bufferevent_enable(s->bev, EV_READ);
}

/* Streams more of the message while the client keeps up.  Returns true
 * when the answer is complete (the session is back in TRANSACTION, or
 * closing), false when it waits for the output to drain. */
static bool send_more(struct pop3_session *s)
{
	struct pop3_server *srv = s->srv;
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (evbuffer_get_length(out) < POP3_OUTPUT_HIGH) {
		ssize_t r = read(s->send.fd, srv->chunk, sizeof srv->chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* "+OK" went out already: the only honest end is to drop
			 * the connection (nothing is deleted). */
			log_error("pop3 session=%s action=read_message error=\"%s\"", s->id,
				  strerror(errno));
			send_stop(s);
			close_with(s, NULL);
			return true;
		}
		if (r == 0) {
			send_finish(s);
			return true;
		}
		size_t used;
		bool done;
		size_t o = stuff_chunk(&s->send, srv->chunk, (size_t)r, srv->scratch, &used, &done);
		evbuffer_add(out, srv->scratch, o);
		if (done) {
			send_finish(s);
			return true;
		}
	}
	return false;
}

/* RETR (top false) and TOP. */
static void start_send(struct pop3_session *s, const struct pop3_cmd *c, bool top)
{
	struct pop3_msg *m = msg_get(s, c->num[0]);
	if (m == NULL)
		return;
	char path[PATH_MAX];
	int fd = -1;
	if (store_message_path(s->acct, m->file_id, path, sizeof path) == 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		log_error("pop3 session=%s action=open_message uid=%lu error=\"%s\"", s->id,
			  (unsigned long)m->uid, strerror(e));
		if (e == ENOENT)
			reply(s, "-ERR Message %llu was removed by another session",
			      (unsigned long long)c->num[0]);
		else
			reply(s, "-ERR [SYS/TEMP] Cannot read the message, try again later");
		return;
	}
	memset(&s->send, 0, sizeof s->send);
	s->send.fd = fd;
	s->send.at_bol = true;
	s->send.top = top;
	s->send.lines_left = top ? c->num[1] : 0;
	if (!top && !(m->flags & STORE_F_SEEN)) {
		/* RETR marks the message \Seen for IMAP clients of the same
		 * mailbox; a failure only costs the flag */
		char err[256];
		if (store_message_store_flags(s->acct, s->inbox_id, m->uid, 1, STORE_F_SEEN, NULL,
					      NULL, err, sizeof err) == 0)
			m->flags |= STORE_F_SEEN;
		else
			log_warn("pop3 session=%s action=set_seen uid=%lu error=\"%s\"", s->id,
				 (unsigned long)m->uid, err);
	}
	if (top)
		reply(s, "+OK Top of message follows");
	else
		reply(s, "+OK %llu octets", (unsigned long long)m->size);
	session_enter(s, POP3_STATE_SENDING);
	send_more(s);
}

static void cmd_retr(struct pop3_session *s, const struct pop3_cmd *c)
{
	start_send(s, c, false);
}

static void cmd_top(struct pop3_session *s, const struct pop3_cmd *c)
{
	start_send(s, c, true);
}

static int exists_cb(void *ctx, const struct store_message *m)
{
	*(bool *)ctx = true;
	return 0;
}

/* UPDATE state (RFC 1939 section 6): expunges what DELE marked.  Returns
 * the number of messages that could not be removed. */
static size_t update(struct pop3_session *s, size_t *removed)
{
	size_t failed = 0;
	*removed = 0;
	for (size_t i = 0; i < s->n_msgs; i++) {
		struct pop3_msg *m = &s->msgs[i];
		if (!m->deleted)
			continue;
		char err[256];
		if (store_message_expunge(s->acct, s->inbox_id, m->uid, err, sizeof err) == 0) {
			(*removed)++;
			continue;
		}
		/* Gone already (an IMAP session expunged it) is fine. */
		bool exists = false;
		char err2[256];
		if (store_message_list(s->acct, s->inbox_id, m->uid, m->uid, exists_cb, &exists,
				       err2, sizeof err2) == 0 &&
		    !exists)
			continue;
		log_error("pop3 session=%s action=expunge uid=%lu error=\"%s\"", s->id,
			  (unsigned long)m->uid, err);
		failed++;
	}
	return failed;
}

static void cmd_quit(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (s->state != POP3_STATE_TRANS) {
		close_with(s, "+OK Bye");
		return;
	}
	size_t removed;
	size_t failed = update(s, &removed);
	/* Release the maildrop before the reply, so a client that reconnects
	 * at once finds it free. */
	unlock_maildrop(s);
	log_info("pop3 session=%s client=%s action=quit user=%s deleted=%zu failed=%zu", s->id,
		 s->ip, s->address, removed, failed);
	if (failed > 0)
		close_with(s, "-ERR [SYS/TEMP] Some deleted messages were not removed");
	else
		close_with(s, "+OK Bye");
}

static void cmd_unsupported(struct pop3_session *s, const struct pop3_cmd *c)
{
	reply(s, "-ERR Command not supported");
}

enum {
	CMD_AUTH = 1 << 0,  /* valid in AUTHORIZATION */
	CMD_TRANS = 1 << 1, /* valid in TRANSACTION */
};

static const struct {
	enum pop3_verb verb;
	void (*run)(struct pop3_session *s, const struct pop3_cmd *c);
	unsigned flags;
} commands[] = {
    {POP3_VERB_CAPA, cmd_capa, CMD_AUTH | CMD_TRANS},
    {POP3_VERB_USER, cmd_user, CMD_AUTH},
    {POP3_VERB_PASS, cmd_pass, CMD_AUTH},
    {POP3_VERB_AUTH, cmd_auth, CMD_AUTH},
    {POP3_VERB_QUIT, cmd_quit, CMD_AUTH | CMD_TRANS},
    {POP3_VERB_STAT, cmd_stat, CMD_TRANS},
    {POP3_VERB_LIST, cmd_list, CMD_TRANS},
    {POP3_VERB_UIDL, cmd_uidl, CMD_TRANS},
    {POP3_VERB_RETR, cmd_retr, CMD_TRANS},
    {POP3_VERB_TOP, cmd_top, CMD_TRANS},
    {POP3_VERB_DELE, cmd_dele, CMD_TRANS},
    {POP3_VERB_RSET, cmd_rset, CMD_TRANS},
    {POP3_VERB_NOOP, cmd_noop, CMD_TRANS},
    {POP3_VERB_APOP, cmd_unsupported, CMD_AUTH},
    {POP3_VERB_STLS, cmd_unsupported, CMD_AUTH},
    {POP3_VERB_UTF8, cmd_unsupported, CMD_AUTH},
};

static void run_command(struct pop3_session *s, const char *line, size_t n)
{
	struct pop3_cmd c;
	enum pop3_parse_error e = pop3_parse_command(line, n, &c);
	if (c.verb != POP3_VERB_PASS && c.verb != POP3_VERB_QUIT)
		s->have_user = false; /* USER must be followed by PASS */
	switch (e) {
	case POP3_PARSE_OK:
		break;
	case POP3_PARSE_UNKNOWN:
		reply(s, "-ERR Unknown command");
		client_error(s);
		return;
	case POP3_PARSE_BAD_NUMBER:
		reply(s, "-ERR Invalid argument: a number is expected");
		client_error(s);
		return;
	case POP3_PARSE_SYNTAX:
		reply(s, "-ERR Syntax error");
		client_error(s);
		return;
	}
	unsigned need = s->state == POP3_STATE_TRANS ? CMD_TRANS : CMD_AUTH;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (commands[i].verb != c.verb)
			continue;
		if (!(commands[i].flags & need))
			break;
		commands[i].run(s, &c);
		return;
	}
	if (need == CMD_AUTH)
		reply(s, "-ERR Command not valid before login");
	else
		reply(s, "-ERR Command not valid after login");
	client_error(s);
}

/* ---------------------------------------------------------------- input */

static void process_input(struct pop3_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (reading_commands(s)) {
		if (evbuffer_get_length(out) > POP3_OUTPUT_HIGH) {
			/* The client does not read our replies: stop reading
			 * until it does (the write callback resumes). */
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		size_t used;
		enum lr_result r = linereader_feed(&s->lr, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (r == LR_NEED_MORE)
			continue;
		bool sasl = s->state == POP3_STATE_SASL;
		if (sasl && r == LR_LINE && !s->lr.has_nul) {
			sasl_line(s, s->lr.line.data ? s->lr.line.data : "", s->lr.line.len);
			continue;
		}
		if (sasl) { /* a bad SASL response ends the AUTH command */
			set_line_max(s, POP3_LINE_MAX);
			session_enter(s, POP3_STATE_AUTH);
		}
		if (r == LR_TOO_LONG) {
			reply(s, "-ERR Line too long");
			client_error(s);
			continue;
		}
		if (s->lr.has_nul) {
			reply(s, "-ERR NUL byte in command");
			client_error(s);
			continue;
		}
		run_command(s, s->lr.line.data ? s->lr.line.data : "", s->lr.line.len);
	}
}

/* ------------------------------------------------------------ lifecycle */

static void session_unlink(struct pop3_session *s)
{
	struct pop3_server *srv = s->srv;
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	srv->n_sessions--;
}

static void session_free(struct pop3_session *s)
{
	send_stop(s);
	unlock_maildrop(s);
	if (s->delay_ev)
		event_free(s->delay_ev);
	free(s->msgs);
	linereader_free(&s->lr);
	if (s->bev)
		bufferevent_free(s->bev);
	free(s);
}

/* Marks a session dead; the reaper frees it after this loop iteration.
 * The maildrop is released now (a dropped connection deletes nothing). */
static void session_kill(struct pop3_session *s)
{
	if (s->state == POP3_STATE_DEAD)
		return;
	send_stop(s);
	unlock_maildrop(s);
	event_del(s->delay_ev);
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	s->state = POP3_STATE_DEAD;
	session_unlink(s);
	s->next = s->srv->dead;
	s->srv->dead = s;
	event_active(s->srv->reaper, EV_TIMEOUT, 0);
}

static void reaper_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct pop3_server *srv = ctx;
	while (srv->dead) {
		struct pop3_session *s = srv->dead;
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
	struct pop3_session *s = ctx;
	if (s->state == POP3_STATE_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_kill(s);
		return;
	}
	if (s->state == POP3_STATE_SENDING) {
		if (!send_more(s))
			return;
		if (!reading_commands(s))
			return;
		process_input(s); /* commands pipelined behind the message */
	}
	if (reading_commands(s) && !(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		process_input(s);
	}
}

static void session_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct pop3_session *s = ctx;
	if ((what & BEV_EVENT_TIMEOUT) && s->state != POP3_STATE_CLOSING) {
		log_info("pop3 session=%s client=%s action=close reason=timeout", s->id, s->ip);
		send_stop(s);
		close_with(s, "-ERR Autologout; idle for too long");
		return;
	}
	if (what & BEV_EVENT_EOF)
		log_debug("pop3 session=%s client=%s action=disconnect", s->id, s->ip);
	session_kill(s);
}

static void format_ip(const struct sockaddr *sa, char *out, size_t outsz, bool *loopback)
{
	*loopback = false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		evutil_inet_ntop(AF_INET, &in->sin_addr, out, outsz);
		*loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, out, outsz);
		const unsigned char *b = in6->sin6_addr.s6_addr;
		*loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
			    (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 127);
	} else {
		snprintf(out, outsz, "unknown");
	}
}

void pop3_server_accept(struct pop3_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
			int salen)
{
	struct pop3_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	s->lock_fd = -1;
	s->send.fd = -1;
	fsutil_unique_id(s->id);
	format_ip(sa, s->ip, sizeof s->ip, &s->loopback);
	linereader_init(&s->lr, POP3_LINE_MAX);
	evutil_make_socket_nonblocking(fd);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->delay_ev = evtimer_new(srv->base, delay_cb, s);
	if (s->bev == NULL || s->delay_ev == NULL) {
		if (s->bev == NULL)
			evutil_closesocket(fd);
		session_free(s);
		return;
	}
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->n_sessions++;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	/* Bound what libevent buffers for us before we parse it; refill a
	 * RETR before its output runs dry. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, 256 * 1024);
	bufferevent_setwatermark(s->bev, EV_WRITE, POP3_OUTPUT_LOW, 0);
	struct timeval tv = {POP3_TIMEOUT, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	log_debug("pop3 session=%s client=%s action=connect", s->id, s->ip);
	if (srv->shutting_down || srv->n_sessions > srv->cfg->smtp_max_connections) {
		close_with(s, "-ERR [SYS/TEMP] Too many connections, try again later");
		return;
	}
	session_enter(s, POP3_STATE_AUTH);
	reply(s, "+OK Tern POP3 server ready");
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

struct pop3_server *pop3_server_new(struct event_base *base, struct store *store,
				    const struct config *cfg)
{
	struct pop3_server *srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->store = store;
	srv->cfg = cfg;
	srv->reaper = event_new(base, -1, 0, reaper_cb, srv);
	if (srv->reaper == NULL)
		fatal(1, "cannot create event");
	return srv;
}

void pop3_server_set_config(struct pop3_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
}

size_t pop3_server_sessions(const struct pop3_server *srv)
{
	return srv->n_sessions;
}

void pop3_server_shutdown(struct pop3_server *srv, void (*cb)(void *ctx), void *ctx)
{
	srv->shutting_down = true;
	srv->shutdown_cb = cb;
	srv->shutdown_ctx = ctx;
	struct pop3_session *s = srv->sessions;
	while (s != NULL) {
		struct pop3_session *next = s->next;
		if (s->state == POP3_STATE_CLOSING) {
			struct timeval tv = {2, 0};
			bufferevent_set_timeouts(s->bev, &tv, &tv);
		} else if (s->state == POP3_STATE_DELAY) {
			event_del(s->delay_ev);
			close_with(s, "-ERR [SYS/TEMP] Server shutting down");
		} else if (s->state != POP3_STATE_SENDING) {
			/* nothing is expunged: only QUIT does that */
			close_with(s, "-ERR [SYS/TEMP] Server shutting down");
		}
		/* SENDING: the message finishes first, then send_finish closes */
		s = next;
	}
	event_active(srv->reaper, EV_TIMEOUT, 0);
}

void pop3_server_free(struct pop3_server **srvp)
{
	struct pop3_server *srv = *srvp;
	if (srv == NULL)
		return;
	while (srv->sessions) {
		struct pop3_session *s = srv->sessions;
		session_unlink(s);
		session_free(s);
	}
	while (srv->dead) {
		struct pop3_session *s = srv->dead;
		srv->dead = s->next;
		session_free(s);
	}
	event_free(srv->reaper);
	explicit_bzero(srv->dummy_hash, sizeof srv->dummy_hash);
	free(srv);
	*srvp = NULL;
}
