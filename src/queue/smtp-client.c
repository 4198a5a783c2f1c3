/*
 * smtp-client.c - one outgoing SMTP connection (see smtp-client.h).
 *
 * Layer src/queue.  One struct per connection, one state enum, one place
 * that changes state (enter()).  Input goes through the bounded line
 * reader and the reply parser (smtp-reply.c); output through the one
 * bufferevent.  The body is streamed from the message file in 64 KiB
 * pieces as the socket drains, so a big message costs no more memory than
 * a small one: after DATA dot-stuffed on the way (RFC 5321 4.5.2), after
 * "BDAT size LAST" (CHUNKING, RFC 3030: one chunk, the file's exact size)
 * as it is.  BDAT also saves the round trip that waits for 354.
 *
 * Lifetime: the caller frees the client with smtp_client_free, also from
 * inside a callback: every event handler counts itself in c->busy, and
 * the real free waits until the outermost handler returns.
 */
#include "smtp-client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "base64.h"
#include "linereader.h"
#include "log.h"
#include "tls.h"
#include "xalloc.h"

#define LINE_MAX_REMOTE 4096 /* longer reply lines: protocol error */
#define BODY_CHUNK 65536
#define OUT_HIGH (4 * BODY_CHUNK) /* stop reading the file above this */

enum client_state {
	ST_CONNECTING,
	ST_GREETING,
	ST_EHLO,
	ST_HELO,
	ST_STARTTLS, /* STARTTLS sent, waiting for 220 */
	ST_TLS,      /* TLS handshake running */
	ST_AUTH,     /* AUTH PLAIN sent, waiting for 235 */
	ST_READY,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_BODY,
	ST_DOT,
	ST_RSET,
	ST_DEAD,
};

static const char *const state_names[] = {
    "connecting", "greeting", "ehlo", "helo", "starttls", "tls", "auth", "ready",
    "mail",       "rcpt",     "data", "body", "dot",      "rset", "dead",
};

struct smtp_client {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer;
	enum client_state state;
	struct smtp_client_timeouts to;
	struct smtp_client_cbs cbs;
	void *ctx;
	char peer[256];
	char ip[64];
	char helo[256];
	struct linereader lr;
	struct smtp_reply reply;
	struct smtp_caps caps;
	int busy;
	bool free_pending;
	bool ready_reported;
	struct tls_client *tc; /* NULL: no STARTTLS */
	bool tls_started;
	struct smtp_client_tls tls;
	char *auth_user, *auth_pass; /* NULL: no AUTH */
	bool auth_loopback_plain;    /* loopback may go without verified TLS */

	/* The transaction in progress. */
	struct smtp_client_txn *txn;
	bool *accepted; /* per recipient: RCPT got 2xx */
	size_t n_accepted;
	size_t rcpt_replied; /* RCPT replies read so far */
	size_t rcpt_sent;    /* RCPT commands sent (without pipelining) */
	bool mail_failed;
	bool at_bol; /* body: at the start of a line */
	bool body_eof;
	bool bdat;           /* the body goes as one BDAT chunk */
	uint64_t bdat_left;  /* octets of it still to send */
	char last_byte;
	char mail_reply[512];
	char mail_status[16];
	int mail_code;
};

static void really_free(struct smtp_client *c)
{
	if (c->timer)
		event_free(c->timer);
	if (c->bev)
		bufferevent_free(c->bev);
	linereader_free(&c->lr);
	tls_client_free(&c->tc);
	free(c->auth_user);
	if (c->auth_pass) {
		explicit_bzero(c->auth_pass, strlen(c->auth_pass));
		free(c->auth_pass);
	}
	free(c->accepted);
	free(c);
}

static void enter(struct smtp_client *c, enum client_state st)
{
	log_debug("smtp-client peer=%s ip=%s state=%s->%s", c->peer, c->ip, state_names[c->state],
		  state_names[st]);
	c->state = st;
}

static void arm(struct smtp_client *c, unsigned seconds)
{
	struct timeval tv = {(time_t)seconds, 0};
	evtimer_add(c->timer, &tv);
}

static void sendf(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sendf(struct smtp_client *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ endings */

static void ready_fail(struct smtp_client *c, enum smtp_client_result r, int code, const char *why)
{
	enter(c, ST_DEAD);
	evtimer_del(c->timer);
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (!c->ready_reported) {
		c->ready_reported = true;
		c->cbs.ready(c->ctx, c, r, code, why);
	}
}

/* Ends the transaction: recipients without a result get reason. */
static void txn_end(struct smtp_client *c, enum smtp_client_result r, const char *reason)
{
	struct smtp_client_txn *t = c->txn;
	c->txn = NULL;
	t->result = r;
	if (r != SMTP_CLIENT_OK && reason != NULL)
		snprintf(t->why, sizeof t->why, "%s", reason);
	for (size_t i = 0; i < t->n_rcpts; i++) {
		if (t->rcpts[i].code == 0 && t->rcpts[i].reply[0] == '\0')
			snprintf(t->rcpts[i].reply, sizeof t->rcpts[i].reply, "%s",
				 reason ? reason : "no result");
	}
	free(c->accepted);
	c->accepted = NULL;
	c->cbs.txn_done(c->ctx, c, t);
}

/* A failure of the connection itself, in whatever state. */
static void conn_fail(struct smtp_client *c, enum smtp_client_result r, const char *why)
{
	enum client_state was = c->state;
	enter(c, ST_DEAD);
	evtimer_del(c->timer);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (was < ST_READY) {
		if (!c->ready_reported) {
			c->ready_reported = true;
			c->cbs.ready(c->ctx, c, r, 0, why);
		}
	} else if (c->txn != NULL) {
		txn_end(c, r, why);
	}
}

/* -------------------------------------------------------- transaction */

static void send_rcpt(struct smtp_client *c, size_t i)
{
	const struct smtp_client_rcpt *r = &c->txn->rcpts[i];
	sendf(c, "RCPT TO:<%s>%s\r\n", r->addr,
	      c->caps.dsn && r->dsn_params ? r->dsn_params : "");
}

static void send_mail(struct smtp_client *c)
{
	struct smtp_client_txn *t = c->txn;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add_printf(out, "MAIL FROM:<%s>", t->sender);
	if (c->caps.size)
		evbuffer_add_printf(out, " SIZE=%llu", (unsigned long long)t->size);
	if (t->body_8bit && c->caps.eightbitmime)
		evbuffer_add_printf(out, " BODY=8BITMIME");
	if (t->smtputf8 && c->caps.smtputf8)
		evbuffer_add_printf(out, " SMTPUTF8");
	if (t->dsn_params && c->caps.dsn)
		evbuffer_add_printf(out, "%s", t->dsn_params);
	if (t->requiretls && c->caps.requiretls)
		evbuffer_add_printf(out, " REQUIRETLS");
	evbuffer_add(out, "\r\n", 2);
	enter(c, ST_MAIL);
	if (c->caps.pipelining) {
		/* RFC 2920: MAIL and every RCPT in one write. */
		for (size_t i = 0; i < t->n_rcpts; i++)
			send_rcpt(c, i);
		c->rcpt_sent = t->n_rcpts;
	}
	arm(c, c->to.command);
}

void smtp_client_send(struct smtp_client *c, struct smtp_client_txn *t)
{
	if (c->state != ST_READY || c->txn != NULL) {
		log_error("smtp-client action=send error=\"client not ready\" state=%s",
			  state_names[c->state]);
		return;
	}
	c->txn = t;
	t->result = SMTP_CLIENT_OK;
	t->why[0] = '\0';
	for (size_t i = 0; i < t->n_rcpts; i++) {
		t->rcpts[i].code = 0;
		t->rcpts[i].status[0] = '\0';
		t->rcpts[i].reply[0] = '\0';
	}
	c->accepted = xcalloc(t->n_rcpts ? t->n_rcpts : 1, sizeof *c->accepted);
	c->n_accepted = 0;
	c->rcpt_replied = 0;
	c->rcpt_sent = 0;
	c->mail_failed = false;
	send_mail(c);
}

/* Sets one recipient's result from the current reply. */
static void set_rcpt(struct smtp_client_rcpt *r, const struct smtp_reply *rep)
{
	r->code = rep->code;
	smtp_reply_enhanced(rep->text, r->status);
	smtp_reply_oneline(rep, r->reply, sizeof r->reply);
}

static void start_rset(struct smtp_client *c)
{
	sendf(c, "RSET\r\n");
	enter(c, ST_RSET);
	arm(c, c->to.command);
}

static void start_bdat(struct smtp_client *c);

static void after_rcpts(struct smtp_client *c)
{
	struct smtp_client_txn *t = c->txn;
	if (c->mail_failed) {
		for (size_t i = 0; i < t->n_rcpts; i++) {
			t->rcpts[i].code = c->mail_code;
			memcpy(t->rcpts[i].status, c->mail_status, sizeof t->rcpts[i].status);
			snprintf(t->rcpts[i].reply, sizeof t->rcpts[i].reply, "%s", c->mail_reply);
		}
		start_rset(c);
		return;
	}
	if (c->n_accepted == 0) {
		start_rset(c);
		return;
	}
	if (c->caps.chunking) {
		start_bdat(c);
		return;
	}
	sendf(c, "DATA\r\n");
	enter(c, ST_DATA);
	arm(c, c->to.data_init);
}

/* Streams the next pieces of the body into the output buffer. */
static void pump_body(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char in[BODY_CHUNK];
	char stuffed[BODY_CHUNK * 2];
	while (!c->body_eof && evbuffer_get_length(out) < OUT_HIGH) {
		size_t want = sizeof in;
		if (c->bdat && c->bdat_left < want)
			want = (size_t)c->bdat_left;
		if (c->bdat && want == 0) {
			c->body_eof = true;
			break;
		}
		ssize_t n = read(c->txn->body_fd, in, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			char why[160];
			snprintf(why, sizeof why, "cannot read the message file: %s",
				 strerror(errno));
			conn_fail(c, SMTP_CLIENT_NETWORK, why);
			return;
		}
		if (n == 0 && c->bdat) {
			/* The file is shorter than the BDAT size we announced. */
			conn_fail(c, SMTP_CLIENT_NETWORK, "the message file changed while sent");
			return;
		}
		if (n == 0) {
			c->body_eof = true;
			break;
		}
		if (c->bdat) {
			c->bdat_left -= (uint64_t)n;
			evbuffer_add(out, in, (size_t)n);
			continue;
		}
		size_t o = 0;
		for (ssize_t i = 0; i < n; i++) {
			if (c->at_bol && in[i] == '.')
				stuffed[o++] = '.';
			stuffed[o++] = in[i];
			c->at_bol = in[i] == '\n';
		}
		c->last_byte = in[n - 1];
		evbuffer_add(out, stuffed, o);
	}
	if (c->body_eof) {
		if (!c->bdat && c->last_byte != '\n' && c->last_byte != '\0')
			evbuffer_add(out, "\r\n", 2);
		if (!c->bdat)
			evbuffer_add(out, ".\r\n", 3);
		enter(c, ST_DOT);
		arm(c, c->to.data_end);
		return;
	}
	arm(c, c->to.data_block);
}

static void start_body(struct smtp_client *c)
{
	if (lseek(c->txn->body_fd, 0, SEEK_SET) < 0) {
		conn_fail(c, SMTP_CLIENT_NETWORK, "cannot read the message file");
		return;
	}
	c->at_bol = true;
	c->body_eof = false;
	c->bdat = false;
	c->last_byte = '\0';
	enter(c, ST_BODY);
	pump_body(c);
}

/* RFC 3030: the whole message as one chunk, "BDAT size LAST"; its reply is
 * the one answer for every accepted recipient, as the dot's is. */
static void start_bdat(struct smtp_client *c)
{
	struct stat st;
	if (fstat(c->txn->body_fd, &st) < 0 || lseek(c->txn->body_fd, 0, SEEK_SET) < 0) {
		conn_fail(c, SMTP_CLIENT_NETWORK, "cannot read the message file");
		return;
	}
	sendf(c, "BDAT %llu LAST\r\n", (unsigned long long)st.st_size);
	c->bdat = true;
	c->bdat_left = (uint64_t)st.st_size;
	c->body_eof = false;
	enter(c, ST_BODY);
	pump_body(c);
}

/* --------------------------------------------------------------- AUTH */

static void ready_ok(struct smtp_client *c, int code, const char *text)
{
	evtimer_del(c->timer);
	enter(c, ST_READY);
	c->ready_reported = true;
	c->cbs.ready(c->ctx, c, SMTP_CLIENT_OK, code, text);
}

static bool ip_is_loopback(const char *ip)
{
	return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
	       strncmp(ip, "::ffff:127.", 11) == 0;
}

/* RFC 4954 4, RFC 4616: "AUTH PLAIN base64(NUL user NUL password)". */
static void start_auth(struct smtp_client *c)
{
	char why[512];
	if (!c->caps.auth_plain) {
		snprintf(why, sizeof why, "%s [%s] does not offer AUTH PLAIN", c->peer, c->ip);
		sendf(c, "QUIT\r\n");
		ready_fail(c, SMTP_CLIENT_AUTH, 0, why);
		return;
	}
	if (!(c->tls.on && c->tls.verified) && !(c->auth_loopback_plain && ip_is_loopback(c->ip))) {
		/* A password over plaintext or to a server whose certificate
		 * did not verify could go to anyone in the path. */
		snprintf(why, sizeof why,
			 c->tls.on ? "the certificate of %s [%s] did not verify: the relay "
				     "password is not sent"
				   : "%s [%s] offers no TLS: the relay password is not sent in "
				     "the clear",
			 c->peer, c->ip);
		sendf(c, "QUIT\r\n");
		ready_fail(c, SMTP_CLIENT_AUTH, 0, why);
		return;
	}
	size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
	size_t n = ul + pl + 2;
	char *raw = xmalloc(n);
	raw[0] = '\0';
	memcpy(raw + 1, c->auth_user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, c->auth_pass, pl);
	size_t el = base64_encoded_len(n) + 1;
	char *enc = xmalloc(el);
	long r = base64_encode(raw, n, enc, el);
	explicit_bzero(raw, n);
	free(raw);
	if (r < 0) {
		free(enc);
		conn_fail(c, SMTP_CLIENT_AUTH, "cannot encode the credentials");
		return;
	}
	sendf(c, "AUTH PLAIN %s\r\n", enc);
	explicit_bzero(enc, el);
	free(enc);
	enter(c, ST_AUTH);
	arm(c, c->to.command);
}

/* ------------------------------------------------------------ replies */

static void on_reply(struct smtp_client *c)
{
	const struct smtp_reply *r = &c->reply;
	char one[512];
	smtp_reply_oneline(r, one, sizeof one);
	switch (c->state) {
	case ST_GREETING:
		if (r->code != 220) {
			sendf(c, "QUIT\r\n");
			ready_fail(c, SMTP_CLIENT_REPLY, r->code, one);
			return;
		}
		sendf(c, "EHLO %s\r\n", c->helo);
		enter(c, ST_EHLO);
		arm(c, c->to.command);
		return;
	case ST_EHLO:
		if (r->code == 250) {
			smtp_reply_caps(r, &c->caps);
			if (c->tc != NULL && c->caps.starttls && !c->tls_started) {
				sendf(c, "STARTTLS\r\n");
				enter(c, ST_STARTTLS);
				arm(c, c->to.command);
				return;
			}
			break;
		}
		if (r->code >= 500 && r->code != 554) {
			/* RFC 5321 3.2: an old server; try HELO. */
			sendf(c, "HELO %s\r\n", c->helo);
			enter(c, ST_HELO);
			arm(c, c->to.command);
			return;
		}
		sendf(c, "QUIT\r\n");
		ready_fail(c, SMTP_CLIENT_REPLY, r->code, one);
		return;
	case ST_HELO:
		if (r->code != 250) {
			sendf(c, "QUIT\r\n");
			ready_fail(c, SMTP_CLIENT_REPLY, r->code, one);
			return;
		}
		memset(&c->caps, 0, sizeof c->caps);
		break;
	case ST_STARTTLS:
		if (r->code == 220) {
			/* read_cb switches to TLS once this reply is handled. */
			evtimer_del(c->timer);
			enter(c, ST_TLS);
			return;
		}
		/* RFC 3207 4: "454 TLS not available" and the like; the EHLO
		 * capabilities still hold, go on in plaintext. */
		log_info("smtp-client peer=%s ip=%s action=starttls result=refused reply=\"%s\"",
			 c->peer, c->ip, one);
		break;
	case ST_AUTH:
		if (r->code != 235) {
			char why[1024];
			snprintf(why, sizeof why, "%s [%s] refused our credentials: %s", c->peer,
				 c->ip, one);
			sendf(c, "QUIT\r\n");
			ready_fail(c, SMTP_CLIENT_AUTH, r->code, why);
			return;
		}
		ready_ok(c, r->code, one);
		return;
	case ST_MAIL:
		if (r->code / 100 != 2) {
			c->mail_failed = true;
			c->mail_code = r->code;
			smtp_reply_enhanced(r->text, c->mail_status);
			snprintf(c->mail_reply, sizeof c->mail_reply, "%s", one);
		}
		if (c->caps.pipelining) {
			enter(c, ST_RCPT);
			arm(c, c->to.command);
			if (c->txn->n_rcpts == 0)
				after_rcpts(c);
			return;
		}
		if (c->mail_failed || c->txn->n_rcpts == 0) {
			after_rcpts(c);
			return;
		}
		enter(c, ST_RCPT);
		send_rcpt(c, 0);
		c->rcpt_sent = 1;
		arm(c, c->to.command);
		return;
	case ST_RCPT: {
		size_t i = c->rcpt_replied++;
		if (!c->mail_failed) {
			if (r->code / 100 == 2) {
				c->accepted[i] = true;
				c->n_accepted++;
			} else {
				set_rcpt(&c->txn->rcpts[i], r);
			}
		}
		if (c->rcpt_replied == c->txn->n_rcpts) {
			after_rcpts(c);
			return;
		}
		if (c->rcpt_sent == c->rcpt_replied) {
			send_rcpt(c, c->rcpt_sent++);
		}
		arm(c, c->to.command);
		return;
	}
	case ST_DATA:
		if (r->code == 354) {
			start_body(c);
			return;
		}
		for (size_t i = 0; i < c->txn->n_rcpts; i++)
			if (c->accepted[i])
				set_rcpt(&c->txn->rcpts[i], r);
		start_rset(c);
		return;
	case ST_DOT:
		/* The one answer for every accepted recipient (RFC 5321 4.1.1.4). */
		for (size_t i = 0; i < c->txn->n_rcpts; i++)
			if (c->accepted[i])
				set_rcpt(&c->txn->rcpts[i], r);
		evtimer_del(c->timer);
		enter(c, ST_READY);
		txn_end(c, SMTP_CLIENT_OK, NULL);
		return;
	case ST_RSET:
		evtimer_del(c->timer);
		enter(c, ST_READY);
		txn_end(c, SMTP_CLIENT_OK, NULL);
		return;
	case ST_READY:
		/* Unsolicited: a 421 before closing, most likely. */
		conn_fail(c, SMTP_CLIENT_NETWORK, one);
		return;
	default:
		conn_fail(c, SMTP_CLIENT_PROTOCOL, "reply in an unexpected state");
		return;
	}
	/* EHLO or HELO accepted (or STARTTLS refused). */
	if (c->auth_user != NULL) {
		start_auth(c);
		return;
	}
	ready_ok(c, r->code, one);
}

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

static void setup_bev(struct smtp_client *c)
{
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, BODY_CHUNK, 0);
	bufferevent_setwatermark(c->bev, EV_READ, 0, 256 * 1024);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* The server said 220 to STARTTLS: put TLS on the socket.  Called from
 * the plain bufferevent's read callback once it stopped parsing; whatever
 * else the server sent in plaintext is dropped (RFC 3207 5), and the line
 * reader starts empty. */
static void start_tls(struct smtp_client *c)
{
	c->tls_started = true;
	linereader_free(&c->lr);
	linereader_init(&c->lr, LINE_MAX_REMOTE);
	smtp_reply_init(&c->reply);
	struct bufferevent *plain = c->bev;
	c->bev = tls_client_start(c->tc, plain, c->peer);
	if (c->bev == NULL) {
		char why[512];
		snprintf(why, sizeof why, "TLS with %s [%s] could not start", c->peer, c->ip);
		conn_fail(c, SMTP_CLIENT_TLS, why);
		return;
	}
	setup_bev(c);
	/* The handshake gets the greeting's time: both are the server's
	 * first words on a fresh channel. */
	arm(c, c->to.greeting);
}

/* Handshake done: note what we got, then EHLO again (RFC 3207 4.2: the
 * capabilities learnt in plaintext are forgotten). */
static void tls_ready(struct smtp_client *c)
{
	struct tls_info info;
	c->tls.on = true;
	if (tls_get_info(c->bev, &info)) {
		snprintf(c->tls.version, sizeof c->tls.version, "%s", info.version);
		snprintf(c->tls.cipher, sizeof c->tls.cipher, "%s", info.cipher);
	}
	c->tls.verified = tls_client_verified(c->bev, c->tls.why, sizeof c->tls.why);
	log_info("smtp-client peer=%s ip=%s action=starttls version=%s cipher=%s verified=%s%s%s%s",
		 c->peer, c->ip, c->tls.version, c->tls.cipher, c->tls.verified ? "yes" : "no",
		 c->tls.verified ? "" : " why=\"", c->tls.verified ? "" : c->tls.why,
		 c->tls.verified ? "" : "\"");
	memset(&c->caps, 0, sizeof c->caps);
	sendf(c, "EHLO %s\r\n", c->helo);
	enter(c, ST_EHLO);
	arm(c, c->to.command);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	c->busy++;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!c->free_pending && c->state != ST_DEAD && c->state != ST_TLS &&
	       evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t used;
		enum lr_result lr = linereader_feed(&c->lr, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (lr == LR_NEED_MORE)
			continue;
		if (lr == LR_TOO_LONG) {
			conn_fail(c, SMTP_CLIENT_PROTOCOL, "reply line too long");
			break;
		}
		enum smtp_reply_status st = smtp_reply_feed(
		    &c->reply, c->lr.line.data ? c->lr.line.data : "", c->lr.line.len);
		if (st == SMTP_REPLY_BAD) {
			char esc[128];
			log_escape(esc, sizeof esc, c->lr.line.data ? c->lr.line.data : "",
				   c->lr.line.len);
			log_info("smtp-client peer=%s ip=%s action=bad_reply line=%s", c->peer,
				 c->ip, esc);
			conn_fail(c, SMTP_CLIENT_PROTOCOL, "malformed reply from the server");
			break;
		}
		if (st == SMTP_REPLY_DONE) {
			if (c->state == ST_BODY) {
				/* An early reply while we still send: take it as the
				 * final answer after the body is out. */
				conn_fail(c, SMTP_CLIENT_PROTOCOL, "reply during the message body");
				break;
			}
			on_reply(c);
			smtp_reply_init(&c->reply);
		}
	}
	if (!c->free_pending && c->state == ST_TLS && !c->tls_started)
		start_tls(c);
	if (--c->busy == 0 && c->free_pending)
		really_free(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	c->busy++;
	if (c->state == ST_BODY && !c->free_pending)
		pump_body(c);
	if (--c->busy == 0 && c->free_pending)
		really_free(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;
	c->busy++;
	if (c->free_pending || c->state == ST_DEAD) {
		/* nothing */
	} else if ((what & BEV_EVENT_CONNECTED) && c->state == ST_TLS) {
		tls_ready(c);
	} else if (what & BEV_EVENT_CONNECTED) {
		enter(c, ST_GREETING);
		arm(c, c->to.greeting);
	} else if (c->state == ST_TLS && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) {
		char why[640], detail[160];
		tls_error_string(c->bev, detail, sizeof detail);
		snprintf(why, sizeof why, "TLS handshake with %s [%s] failed: %s", c->peer, c->ip,
			 detail);
		conn_fail(c, SMTP_CLIENT_TLS, why);
	} else if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		char why[640];
		int e = EVUTIL_SOCKET_ERROR();
		if (c->tls.on && !(what & BEV_EVENT_EOF)) {
			char detail[160];
			tls_error_string(c->bev, detail, sizeof detail);
			snprintf(why, sizeof why, "connection to %s [%s] lost: %s", c->peer, c->ip,
				 detail);
		} else if (what & BEV_EVENT_EOF)
			snprintf(why, sizeof why, "connection closed by %s [%s] (%s)", c->peer,
				 c->ip, state_names[c->state]);
		else if (c->state == ST_CONNECTING)
			snprintf(why, sizeof why, "connection to %s [%s] failed: %s", c->peer,
				 c->ip, e == ECONNREFUSED ? "connection refused" : strerror(e));
		else
			snprintf(why, sizeof why, "connection to %s [%s] lost: %s", c->peer, c->ip,
				 strerror(e));
		conn_fail(c, SMTP_CLIENT_NETWORK, why);
	}
	if (--c->busy == 0 && c->free_pending)
		really_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	c->busy++;
	if (!c->free_pending && c->state != ST_DEAD) {
		char why[512];
		enum smtp_client_result res = SMTP_CLIENT_TIMEOUT;
		if (c->state == ST_CONNECTING && c->bev == NULL) {
			snprintf(why, sizeof why, "connection to %s [%s] failed", c->peer, c->ip);
		} else if (c->state == ST_TLS) {
			/* A stuck handshake is a failed one: the caller may go
			 * on without TLS. */
			snprintf(why, sizeof why, "TLS handshake with %s [%s] failed: timeout",
				 c->peer, c->ip);
			res = SMTP_CLIENT_TLS;
		} else {
			snprintf(why, sizeof why, "timeout talking to %s [%s] (waiting in %s)",
				 c->peer, c->ip, state_names[c->state]);
		}
		conn_fail(c, res, why);
	}
	if (--c->busy == 0 && c->free_pending)
		really_free(c);
}

/* ------------------------------------------------------------- public */

struct smtp_client *smtp_client_connect(struct event_base *base, const struct sockaddr *addr,
					socklen_t addrlen, const char *peer_name,
					const char *helo_name,
					const struct smtp_client_timeouts *to,
					const struct smtp_client_cbs *cbs, void *ctx, char *err,
					size_t errsz)
{
	struct smtp_client *c = xcalloc(1, sizeof *c);
	c->base = base;
	c->to = *to;
	c->cbs = *cbs;
	c->ctx = ctx;
	snprintf(c->peer, sizeof c->peer, "%s", peer_name);
	snprintf(c->helo, sizeof c->helo, "%s", helo_name);
	if (addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr,
			  c->ip, sizeof c->ip);
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)addr)->sin_addr,
			  c->ip, sizeof c->ip);
	linereader_init(&c->lr, LINE_MAX_REMOTE);
	smtp_reply_init(&c->reply);
	c->state = ST_CONNECTING;
	c->timer = evtimer_new(base, timer_cb, c);
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->timer == NULL || c->bev == NULL) {
		snprintf(err, errsz, "out of memory (event)");
		really_free(c);
		return NULL;
	}
	setup_bev(c);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)(void *)addr, (int)addrlen) < 0) {
		/* Reported through the timer, never from inside this call. */
		bufferevent_free(c->bev);
		c->bev = NULL;
		struct timeval tv = {0, 0};
		evtimer_add(c->timer, &tv);
		return c;
	}
	arm(c, c->to.connect);
	return c;
}

void smtp_client_set_tls(struct smtp_client *c, struct tls_client *tc)
{
	tls_client_free(&c->tc);
	c->tc = tls_client_ref(tc);
}

void smtp_client_set_auth(struct smtp_client *c, const char *user, const char *password,
			  bool loopback_plain)
{
	c->auth_loopback_plain = loopback_plain;
	free(c->auth_user);
	c->auth_user = xstrdup(user);
	c->auth_pass = xstrdup(password);
}

const struct smtp_client_tls *smtp_client_tls(const struct smtp_client *c)
{
	return &c->tls;
}

bool smtp_client_alive(const struct smtp_client *c)
{
	return c->state == ST_READY && !c->free_pending;
}

const struct smtp_caps *smtp_client_caps(const struct smtp_client *c)
{
	return &c->caps;
}

const char *smtp_client_peer_ip(const struct smtp_client *c)
{
	return c->ip;
}

void smtp_client_free(struct smtp_client **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	struct smtp_client *c = *cp;
	*cp = NULL;
	if (c->free_pending)
		return;
	if (c->state == ST_READY && c->bev != NULL) {
		/* The output is empty when idle: a direct send cannot reorder. */
		if (c->tls.on) {
			tls_send_now(c->bev, "QUIT\r\n", 6);
			tls_close_notify(c->bev);
		} else {
			evutil_socket_t fd = bufferevent_getfd(c->bev);
			if (fd >= 0)
				(void)!send(fd, "QUIT\r\n", 6, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
	}
	c->free_pending = true;
	if (c->timer)
		evtimer_del(c->timer);
	if (c->bev)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	if (c->busy == 0)
		really_free(c);
}
