/*
 * pop3-session.c - POP3 server sessions on a libevent loop (see
 * pop3-session.h and docs/pop3.md).  Protocol layer: uses the store (the
 * INBOX of an account, the per-account lock), auth (password checks) and
 * lib.
 *
 * A session is AUTHORIZATION (USER/PASS or SASL AUTH, both through
 * auth/authglue.h), then TRANSACTION over a list of INBOX messages taken
 * once at login, then UPDATE at QUIT,
 * when the messages marked by DELE are expunged.  A session that ends any
 * other way deletes nothing.  One session per maildrop: the login takes
 * store_account_lock (flock, so it holds across worker processes and dies
 * with its holder).
 *
 * RETR and TOP stream the message file in blocks, dot-stuffed, as the
 * client reads them (backpressure through the output buffer), so a large
 * message never sits in memory.  Commands pipelined behind them wait.
 * A block is read once from the file and handed to libevent by reference
 * (no copy): the dot-stuffing only splits it where a '.' is doubled or a
 * CR is added, found with memchr, never byte by byte.
 *
 * RETR's \Seen flags are kept in the session and stored in one
 * transaction when the maildrop is released (QUIT, or any other end).
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
#include "netaddr.h"
#include "authglue.h"
#include "base64.h"
#include "pop3-parse.h"
#include "store.h"
#include "strutil.h"
#include "tls.h"
#include "xalloc.h"

/* RFC 2449 section 4: a command is at most 255 octets including CRLF. */
#define POP3_LINE_MAX 253
/* SASL responses after "+ " carry base64 and may be longer (RFC 5034 4
 * lifts the 255-octet limit for them); sasl.h takes at most
 * SASL_MAX_RESPONSE decoded bytes. */
#define POP3_SASL_LINE_MAX 4096
/* RFC 1939 section 3: an autologout timer must be at least 10 minutes. */
#define POP3_TIMEOUT 600
/* Stop reading a client (and stop reading a message file for it) whose
 * unread output exceeds this. */
#define POP3_OUTPUT_HIGH 262144
/* Refill the output of a RETR once it drops to this. */
#define POP3_OUTPUT_LOW 65536
/* Size of a block of message bytes (read from the file, then referenced
 * by the output buffer).  Below glibc's mmap threshold, so blocks come
 * from the heap. */
#define POP3_BLOCK_SIZE 65536
/* A block with less room than this left is not read into again. */
#define POP3_BLOCK_MIN_ROOM 4096
/* Blocks kept for reuse per process once their bytes are sent (so a busy
 * worker does not malloc and fault in a new block for every message). */
#define POP3_BLOCKS_KEPT 32
/* Bytes libevent may write to the socket in one call (its default is
 * 16 KiB, which costs several loop turns and writes per message). */
#define POP3_MAX_SINGLE_WRITE (POP3_OUTPUT_HIGH + POP3_BLOCK_SIZE)
#define POP3_USER_MAX 255

enum pop3_state {
	POP3_STATE_AUTH,    /* AUTHORIZATION: reading commands */
	POP3_STATE_SASL,    /* AUTH sent "+ ": the next line is a SASL response */
	POP3_STATE_DELAY,   /* a login is being checked (password check, failure
			     * delay of auth/authlimit.h): reading nothing */
	POP3_STATE_TRANS,   /* TRANSACTION: reading commands */
	POP3_STATE_SENDING, /* streaming a RETR/TOP answer; commands wait */
	POP3_STATE_STLS,    /* "+OK Begin TLS negotiation" sent; waiting for it to drain */
	POP3_STATE_CLOSING, /* last reply sent, waiting for output to drain */
	POP3_STATE_DEAD,    /* waiting to be reaped */
};

/* One message of the maildrop, as listed at login. */
struct pop3_msg {
	uint32_t uid;
	bool deleted;      /* marked by DELE */
	bool seen_pending; /* RETR set \Seen: stored when the maildrop is released */
	unsigned flags;    /* STORE_F_* at login (RETR adds \Seen) */
	uint64_t size;
	char file_id[25];
};

/* Bytes of a message on their way to the client.  The output buffer holds
 * references into data (one per chain); the sender holds one more while it
 * fills the block.  The last one gone puts the block back (block_unref). */
struct pop3_block {
	struct pop3_block *next; /* in the list of kept blocks */
	unsigned refs;
	size_t used; /* data[0..used) is filled */
	char data[POP3_BLOCK_SIZE];
};

/* A RETR or TOP being streamed. */
struct pop3_send {
	int fd;                   /* the message file; -1 when idle */
	struct pop3_block *block; /* being filled (one reference); or NULL */
	size_t span;              /* block->data[span..) is not yet in the output */
	bool top;                 /* TOP: stop after lines_left body lines */
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
	bool tls_on;      /* the connection is TLS (handshake may be pending) */
	bool tls_pending; /* TLS handshake not finished yet */
	enum pop3_state state;
	struct linereader lr;
	unsigned errors;
	/* AUTHORIZATION */
	char user[POP3_USER_MAX + 1]; /* from USER */
	bool have_user;
	bool user_too_long;
	struct authglue *auth;      /* the login in progress (AUTH or USER/PASS) */
	bool auth_final;            /* SCRAM's last "+" sent: waiting for "" */
	char auth_pending[256];     /* the account, while auth_final */
	struct sockaddr_storage sa; /* the client, for the brute-force limiter */
	/* TRANSACTION */
	char address[256];
	struct store_account *acct; /* owned by the store */
	int lock_fd;                /* store_account_lock; -1 before login */
	int64_t inbox_id;
	uint32_t uidvalidity;
	struct pop3_msg *msgs;
	size_t n_msgs;
	size_t n_seen_pending; /* messages with seen_pending */
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
	struct tls *tls;   /* the worker's TLS state; NULL: none */
	bool implicit_tls; /* TLS from the first byte (pop3s, RFC 8314) */
	bool shutting_down;
	void (*shutdown_cb)(void *ctx);
	void *shutdown_ctx;
};

static void session_write_cb(struct bufferevent *bev, void *ctx);
static void process_input(struct pop3_session *s);
static void session_read_cb(struct bufferevent *bev, void *ctx);
static void session_event_cb(struct bufferevent *bev, short what, void *ctx);
static void session_kill(struct pop3_session *s);

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
	if (st == POP3_STATE_STLS) {
		/* nothing more is read in plaintext (RFC 2595 4) */
		bufferevent_disable(s->bev, EV_READ);
	}
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

/* USER/PASS and AUTH PLAIN: over TLS, or on loopback when the config
 * allows it for development. */
static bool plaintext_ok(const struct pop3_session *s)
{
	return s->tls_on || (s->loopback && s->srv->cfg->allow_plaintext_loopback);
}

static bool stls_offered(const struct pop3_session *s)
{
	return s->state == POP3_STATE_AUTH && !s->tls_on && tls_available(s->srv->tls);
}

static void set_line_max(struct pop3_session *s, size_t max)
{
	linereader_set_max(&s->lr, max);
}

/* Stores \Seen for every message RETR sent in this session, in one
 * transaction (one WAL sync instead of one per message).  A failure only
 * costs the flags (logged). */
static void store_seen(struct pop3_session *s)
{
	if (s->n_seen_pending == 0 || s->acct == NULL)
		return;
	uint32_t *uids = xreallocarray(NULL, s->n_seen_pending, sizeof *uids);
	size_t n = 0;
	for (size_t i = 0; i < s->n_msgs && n < s->n_seen_pending; i++)
		if (s->msgs[i].seen_pending) {
			uids[n++] = s->msgs[i].uid;
			s->msgs[i].seen_pending = false;
		}
	s->n_seen_pending = 0;
	char err[256];
	if (store_imap_store_flags(s->acct, s->inbox_id, uids, n, 1, STORE_F_SEEN, NULL, NULL, NULL,
				   NULL, err, sizeof err) < 0)
		log_warn("pop3 session=%s action=set_seen messages=%zu error=\"%s\"", s->id, n,
			 err);
	free(uids);
}

/* Releases the maildrop (at QUIT after the expunge, or on close): stores
 * the \Seen flags of RETR, then drops the lock. */
static void unlock_maildrop(struct pop3_session *s)
{
	if (s->lock_fd >= 0) {
		store_seen(s);
		close(s->lock_fd);
		s->lock_fd = -1;
	}
}

/* Blocks whose bytes are sent, kept for reuse.  Per process: a worker's
 * sessions all run on its one event loop thread, and libevent frees
 * output chains (calling block_unref) on that thread too. */
static struct pop3_block *blocks_kept;
static size_t n_blocks_kept;

static struct pop3_block *block_get(void)
{
	struct pop3_block *b = blocks_kept;
	if (b != NULL) {
		blocks_kept = b->next;
		n_blocks_kept--;
	} else {
		b = xmalloc(sizeof *b);
	}
	b->next = NULL;
	b->refs = 1;
	b->used = 0;
	return b;
}

static void block_put(struct pop3_block *b)
{
	if (b == NULL || --b->refs > 0)
		return;
	if (n_blocks_kept < POP3_BLOCKS_KEPT) {
		b->next = blocks_kept;
		blocks_kept = b;
		n_blocks_kept++;
	} else {
		free(b);
	}
}

/* evbuffer_add_reference's cleanup: a chain pointing into a block is gone
 * (sent, or the connection's buffer freed). */
static void block_unref(const void *data, size_t len, void *extra)
{
	(void)data;
	(void)len;
	block_put(extra);
}

/* Hands block bytes [st->span, end) to the output buffer without copying
 * them; the span then starts at end. */
static void send_flush(struct pop3_send *st, struct evbuffer *out, size_t end)
{
	struct pop3_block *b = st->block;
	if (end > st->span) {
		b->refs++;
		if (evbuffer_add_reference(out, b->data + st->span, end - st->span, block_unref,
					   b) < 0)
			fatal(1, "out of memory");
	}
	st->span = end;
}

/* Ends the streaming: closes the file and drops the sender's reference to
 * its block (chains in the output buffer keep theirs). */
static void send_stop(struct pop3_session *s)
{
	if (s->send.fd >= 0) {
		close(s->send.fd);
		s->send.fd = -1;
	}
	block_put(s->send.block);
	s->send.block = NULL;
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

/* Back to AUTHORIZATION after an exchange that did not log in. */
static void auth_end(struct pop3_session *s)
{
	authglue_free(&s->auth);
	s->auth_final = false;
	set_line_max(s, POP3_LINE_MAX);
	session_enter(s, POP3_STATE_AUTH);
	bufferevent_enable(s->bev, EV_READ);
}

/* Authenticated as account: open the maildrop and enter TRANSACTION.
 * Always replies. */
static void login_ok(struct pop3_session *s, const char *account)
{
	char address[256];
	snprintf(address, sizeof address, "%s", account);
	auth_end(s);
	if (open_maildrop(s, address) < 0)
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

/* "+ " and the base64 of data (RFC 5034 4; an empty challenge is "+ "). */
static void send_challenge(struct pop3_session *s, const unsigned char *data, size_t len)
{
	size_t need = base64_encoded_len(len) + 1;
	char *b64 = xmalloc(need);
	if (base64_encode(data, len, b64, need) < 0)
		b64[0] = '\0';
	reply(s, "+ %s", b64);
	free(b64);
	set_line_max(s, POP3_SASL_LINE_MAX);
	session_enter(s, POP3_STATE_SASL);
	bufferevent_enable(s->bev, EV_READ);
}

/* The SASL exchange's outcomes (always from the event loop). */
static void auth_cb(void *ctx, const struct authglue_result *r)
{
	struct pop3_session *s = ctx;
	switch (r->status) {
	case AUTHGLUE_CHALLENGE:
		send_challenge(s, r->data, r->len);
		break;
	case AUTHGLUE_OK:
		if (r->len > 0) {
			/* POP3 has no data with +OK (RFC 5034 4): SCRAM's
			 * server-final goes in a last "+", answered by "". */
			snprintf(s->auth_pending, sizeof s->auth_pending, "%s", r->account);
			send_challenge(s, r->data, r->len);
			authglue_free(&s->auth);
			s->auth_final = true;
			break;
		}
		login_ok(s, r->account);
		break;
	case AUTHGLUE_FAIL:
		auth_end(s);
		if (r->error == SASL_ERR_TEMPORARY)
			reply(s, "-ERR [SYS/TEMP] Authentication is unavailable, try again later");
		else if (r->error == SASL_ERR_UNAVAILABLE)
			reply(s, "-ERR [AUTH] This mechanism is not available for the account");
		else
			reply(s, "-ERR [AUTH] Authentication failed");
		if (r->error != SASL_ERR_TEMPORARY)
			client_error(s);
		break;
	case AUTHGLUE_BLOCKED:
		auth_end(s);
		reply(s, "-ERR [SYS/TEMP] Too many failed logins, try again later");
		break;
	case AUTHGLUE_BUSY:
		auth_end(s);
		reply(s, "-ERR [SYS/TEMP] Too many logins to this account in progress, try again "
			 "shortly");
		break;
	}
	process_input(s); /* whatever the client pipelined */
}

/* May mech be used now?  Plaintext ones (and USER/PASS) need TLS or an
 * allowed loopback; SCRAM-SHA-256 reveals no password and is always
 * offered; -PLUS needs TLS (its channel binding). */
static bool mech_ok(const struct pop3_session *s, enum sasl_mech m)
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

/* The mechanisms offered now, space-separated, into out. */
static void mech_list(const struct pop3_session *s, char *out, size_t outsz)
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

/* Starts an exchange (AUTH, or PASS as PLAIN). */
static void auth_start(struct pop3_session *s, enum sasl_mech m, const void *ir, size_t len)
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
		.proto = "pop3",
		.session_id = s->id,
		.cbind = cb,
		.n_cbind = n,
		.cb = auth_cb,
		.cb_ctx = s,
	};
	session_enter(s, POP3_STATE_DELAY);
	bufferevent_disable(s->bev, EV_READ);
	s->auth = authglue_start(&p, ir, len);
}

/* Decodes a base64 SASL response ("=" is an empty one) into a new buffer
 * (*buf, *cap bytes, to be wiped and freed).  Returns the length, or -1. */
static long decode_response(const char *p, size_t n, unsigned char **buf, size_t *cap)
{
	*cap = base64_decoded_max(n) + 1;
	*buf = xmalloc(*cap);
	if (n == 1 && p[0] == '=')
		return 0;
	return n == 0 ? -1 : base64_decode(p, n, *buf, *cap);
}

/* ------------------------------------------------------------- commands */

static void cmd_capa(struct pop3_session *s, const struct pop3_cmd *c)
{
	reply(s, "+OK Capability list follows");
	reply(s, "TOP");
	reply(s, "UIDL");
	if (stls_offered(s))
		reply(s, "STLS");
	/* listed after login too (RFC 5034 3 allows it; clients reading
	 * CAPA late expect it) */
	char mechs[128];
	mech_list(s, mechs, sizeof mechs);
	if (plaintext_ok(s))
		reply(s, "USER");
	reply(s, "SASL %s", mechs);
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
	/* Too long: never a user; PASS then fails like a wrong password. */
	s->user_too_long = c->arg_len[0] > POP3_USER_MAX;
	size_t n = s->user_too_long ? 0 : c->arg_len[0];
	memcpy(s->user, c->arg[0], n);
	s->user[n] = '\0';
	s->have_user = true;
	reply(s, "+OK Send PASS");
}

/* PASS: checked as SASL PLAIN ("\0user\0password"), so USER/PASS goes
 * through the same lookup, limiter, delays and logs as AUTH. */
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
	size_t ulen = s->user_too_long ? POP3_USER_MAX + 1 : strlen(s->user);
	size_t cap = 2 + ulen + c->arg_len[0];
	unsigned char *msg = xmalloc(cap);
	msg[0] = '\0';
	if (s->user_too_long)
		memset(msg + 1, 'x', ulen); /* too long for PLAIN: fails as malformed */
	else
		memcpy(msg + 1, s->user, ulen);
	msg[1 + ulen] = '\0';
	memcpy(msg + 2 + ulen, c->arg[0], c->arg_len[0]);
	auth_start(s, SASL_MECH_PLAIN, msg, cap);
	explicit_bzero(msg, cap);
	free(msg);
}

static void cmd_auth(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (c->n_args == 0) {
		/* RFC 1734 clients list the mechanisms this way */
		char mechs[128];
		mech_list(s, mechs, sizeof mechs);
		reply(s, "+OK Mechanisms follow");
		for (char *p = mechs; *p != '\0';) {
			char *sp = strchr(p, ' ');
			size_t n = sp ? (size_t)(sp - p) : strlen(p);
			reply(s, "%.*s", (int)n, p);
			p += n + (sp != NULL);
		}
		reply(s, ".");
		return;
	}
	enum sasl_mech m;
	if (sasl_mech_from_name(c->arg[0], c->arg_len[0], &m) < 0 ||
	    (m == SASL_MECH_SCRAM_SHA_256_PLUS && !mech_ok(s, m))) {
		reply(s, "-ERR Unsupported authentication mechanism");
		client_error(s);
		return;
	}
	if (!mech_ok(s, m)) {
		reply(s, "%s", plaintext_refused);
		client_error(s);
		return;
	}
	if (c->n_args == 2) {
		unsigned char *buf;
		size_t cap;
		long len = decode_response(c->arg[1], c->arg_len[1], &buf, &cap);
		if (len < 0) {
			free(buf);
			reply(s, "-ERR Invalid base64 data");
			client_error(s);
			return;
		}
		auth_start(s, m, buf, (size_t)len);
		explicit_bzero(buf, cap);
		free(buf);
		return;
	}
	auth_start(s, m, NULL, 0);
}

/* The line after "+ ". */
static void sasl_line(struct pop3_session *s, const char *p, size_t n)
{
	if (n == 1 && p[0] == '*') {
		auth_end(s);
		reply(s, "-ERR Authentication cancelled");
		return;
	}
	if (s->auth_final) {
		if (n != 0) {
			auth_end(s);
			reply(s, "-ERR [AUTH] Authentication failed: expected an empty response");
			client_error(s);
			return;
		}
		char account[256];
		snprintf(account, sizeof account, "%s", s->auth_pending);
		login_ok(s, account);
		return;
	}
	unsigned char *buf;
	size_t cap;
	long len = decode_response(p, n, &buf, &cap);
	if (len < 0) {
		free(buf);
		auth_end(s);
		reply(s, "-ERR Invalid base64 data");
		client_error(s);
		return;
	}
	session_enter(s, POP3_STATE_DELAY);
	bufferevent_disable(s->bev, EV_READ);
	authglue_step(s->auth, buf, (size_t)len);
	explicit_bzero(buf, cap);
	free(buf);
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

/* Non-CR bytes in p[0..n) (TOP: a header line with none is the blank line
 * that ends the header). */
static size_t count_non_cr(const char *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += p[i] != '\r';
	return k;
}

/* Dot-stuffs n new bytes of the block (data[off..off+n), just read; the
 * pending span [st->span, off) precedes them): a line starting with '.'
 * gets another (the span is flushed up to and including the '.' and the
 * next one starts at it again, so it goes out twice), a bare LF gets a CR
 * before it.  Unchanged bytes stay pending in the span.  For TOP, stops
 * after the requested body line and sets *done.  Returns how many of the
 * n bytes were taken. */
static size_t stuff_block(struct pop3_send *st, struct evbuffer *out, size_t off, size_t n,
			  bool *done)
{
	const char *d = st->block->data;
	size_t p = off, end = off + n;
	*done = false;
	if (n == 0)
		return 0;
	if (st->at_bol && d[p] == '.') {
		send_flush(st, out, p + 1);
		st->span = p;
	}
	while (p < end) {
		const char *nl = memchr(d + p, '\n', end - p);
		if (nl == NULL) {
			if (st->top && !st->in_body)
				st->line_len += count_non_cr(d + p, end - p);
			break;
		}
		size_t i = (size_t)(nl - d);
		bool cr = i > off ? d[i - 1] == '\r' : st->prev_cr;
		if (!cr) {
			send_flush(st, out, i);
			if (evbuffer_add_reference(out, "\r", 1, NULL, NULL) < 0)
				fatal(1, "out of memory");
		}
		if (st->top) {
			if (!st->in_body) {
				st->line_len += count_non_cr(d + p, i - p);
				if (st->line_len == 0) {
					st->in_body = true; /* the blank line after the header */
					*done = st->lines_left == 0;
				}
			} else if (--st->lines_left == 0) {
				*done = true;
			}
			st->line_len = 0;
		}
		p = i + 1;
		if (*done) {
			st->at_bol = true;
			st->prev_cr = false;
			return p - off;
		}
		if (p < end && d[p] == '.') {
			send_flush(st, out, p + 1);
			st->span = p;
		}
	}
	st->at_bol = d[end - 1] == '\n';
	st->prev_cr = d[end - 1] == '\r';
	return n;
}

/* Ends a RETR/TOP answer whose bytes end at block offset end: CRLF if the
 * file did not end with one, then the terminating ".", written after them
 * in the block when there is room, so they leave in the same chain. */
static void send_finish(struct pop3_session *s, size_t end)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	struct pop3_send *st = &s->send;
	const char *term = st->at_bol ? ".\r\n" : "\r\n.\r\n";
	size_t n = strlen(term);
	if (end + n <= sizeof st->block->data) {
		memcpy(st->block->data + end, term, n);
		st->block->used = end + n;
		send_flush(st, out, end + n);
	} else {
		send_flush(st, out, end);
		evbuffer_add(out, term, n);
	}
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
	struct evbuffer *out = bufferevent_get_output(s->bev);
	struct pop3_send *st = &s->send;
	while (evbuffer_get_length(out) < POP3_OUTPUT_HIGH) {
		struct pop3_block *b = st->block;
		if (sizeof b->data - b->used < POP3_BLOCK_MIN_ROOM) {
			send_flush(st, out, b->used);
			block_put(b);
			b = st->block = block_get();
			st->span = 0;
		}
		ssize_t r = read(st->fd, b->data + b->used, sizeof b->data - b->used);
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
			send_finish(s, b->used);
			return true;
		}
		bool done;
		size_t used = stuff_block(st, out, b->used, (size_t)r, &done);
		b->used += used;
		if (done) {
			send_finish(s, b->used);
			return true;
		}
	}
	/* what is pending goes out now; the block is read into further on
	 * the next call */
	send_flush(st, out, st->block->used);
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
		 * mailbox, stored when the maildrop is released (store_seen) */
		m->flags |= STORE_F_SEEN;
		m->seen_pending = true;
		s->n_seen_pending++;
	}
	/* The status line goes first in the block, so a message without a
	 * line to stuff leaves as one chain: status, bytes, ".". */
	struct pop3_block *b = s->send.block = block_get();
	int n;
	if (top)
		n = snprintf(b->data, sizeof b->data, "+OK Top of message follows\r\n");
	else
		n = snprintf(b->data, sizeof b->data, "+OK %llu octets\r\n",
			     (unsigned long long)m->size);
	b->used = n > 0 ? (size_t)n : 0;
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

/* STLS (RFC 2595 4).  Everything the client sent after the command is
 * dropped (and whatever arrives before the handshake goes to the
 * handshake, where it fails), so nothing pipelined behind STLS is run.
 * The switch happens in session_write_cb once the reply is written. */
static void cmd_stls(struct pop3_session *s, const struct pop3_cmd *c)
{
	if (s->tls_on) {
		reply(s, "-ERR Command not permitted when TLS active");
		client_error(s);
		return;
	}
	if (!tls_available(s->srv->tls)) {
		reply(s, "-ERR Command not supported");
		return;
	}
	reply(s, "+OK Begin TLS negotiation");
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t dropped = evbuffer_get_length(in);
	evbuffer_drain(in, dropped);
	if (dropped > 0)
		log_info("pop3 session=%s client=%s action=stls dropped=%zu "
			 "note=\"input pipelined after STLS discarded\"",
			 s->id, s->ip, dropped);
	s->have_user = false;
	session_enter(s, POP3_STATE_STLS);
}

/* The STLS reply is written: put TLS on the socket; the session stays in
 * AUTHORIZATION with nothing remembered from before. */
static void stls_switch(struct pop3_session *s)
{
	struct bufferevent *bev = tls_starttls(s->srv->tls, s->bev);
	s->bev = bev;
	if (bev == NULL) {
		log_error("pop3 session=%s client=%s action=stls error=\"cannot start TLS\"", s->id,
			  s->ip);
		session_kill(s);
		return;
	}
	s->tls_on = true;
	s->tls_pending = true;
	s->have_user = false;
	linereader_free(&s->lr);
	linereader_init(&s->lr, POP3_LINE_MAX);
	bufferevent_setcb(bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, 256 * 1024);
	bufferevent_setwatermark(bev, EV_WRITE, POP3_OUTPUT_LOW, 0);
	bufferevent_set_max_single_write(bev, POP3_MAX_SINGLE_WRITE);
	struct timeval tv = {POP3_TIMEOUT, 0};
	bufferevent_set_timeouts(bev, &tv, &tv);
	session_enter(s, POP3_STATE_AUTH);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
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
    {POP3_VERB_STLS, cmd_stls, CMD_AUTH},
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
		if (sasl) /* a bad SASL response ends the AUTH command */
			auth_end(s);
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
	authglue_free(&s->auth);
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
	authglue_free(&s->auth);
	if (s->bev != NULL)
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
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			tls_close_notify(bev);
			session_kill(s);
		}
		return;
	}
	if (s->state == POP3_STATE_STLS) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			stls_switch(s);
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
	int t = tls_session_event(bev, what, &s->tls_pending, "pop3", s->id, s->ip);
	if (t != 0) {
		if (t < 0)
			session_kill(s);
		return;
	}
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

void pop3_server_accept(struct pop3_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
			int salen)
{
	struct pop3_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	s->lock_fd = -1;
	s->send.fd = -1;
	fsutil_unique_id(s->id);
	netaddr_format(sa, s->ip, sizeof s->ip, &s->loopback);
	linereader_init(&s->lr, POP3_LINE_MAX);
	evutil_make_socket_nonblocking(fd);
	if (srv->implicit_tls) {
		/* tls_accept closes fd if it fails */
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
	/* Bound what libevent buffers for us before we parse it; refill a
	 * RETR before its output runs dry. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, 256 * 1024);
	bufferevent_setwatermark(s->bev, EV_WRITE, POP3_OUTPUT_LOW, 0);
	bufferevent_set_max_single_write(s->bev, POP3_MAX_SINGLE_WRITE);
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

void pop3_server_set_tls(struct pop3_server *srv, struct tls *tls, bool implicit)
{
	srv->tls = tls;
	srv->implicit_tls = implicit;
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
			authglue_free(&s->auth);
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
	free(srv);
	*srvp = NULL;
}
