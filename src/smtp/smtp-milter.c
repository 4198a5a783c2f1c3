/*
 * smtp-milter.c - the milter conversations of one message (see
 * smtp-milter.h and docs/spam.md "External filters (milter)").
 *
 * Each milter of milter.servers in turn: connect, negotiate, then the
 * steps connect, helo, mail, rcpt..., data, header..., eoh, body
 * chunks, end of message, each with its macros, skipping what the milter
 * turned off and not waiting where it asked for no reply.  A refusal
 * ends everything; an accept or the end of message passes on to the next
 * milter; a failure (down, timeout, garbage) follows
 * milter.default_action.  Everything runs on the event loop through one
 * bufferevent and one timer per conversation.
 */
#include "smtp-milter.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "buf.h"
#include "config.h"
#include "endpoint.h"
#include "fsutil.h"
#include "log.h"
#include "store.h"
#include "xalloc.h"

/* Bounds on what one message's milters may do. */
#define MILTER_HEADER_READ (1024 * 1024) /* header section bytes read */
#define MILTER_MAX_FIELDS 2000           /* fields kept (then: body) */
#define MILTER_MAX_OPS 1000              /* header changes, all milters */
#define MILTER_MAX_ADDED (256 * 1024)    /* bytes of added or changed fields */
#define MILTER_OUT_HIGH (256 * 1024)     /* body bytes queued before waiting */
#define MILTER_MAX_PROGRESS 60           /* "progress" replies per milter */

enum step {
	ST_CONNECTING,
	ST_OPTNEG,
	ST_CONNECT,
	ST_HELO,
	ST_MAIL,
	ST_RCPT,
	ST_DATA,
	ST_HEADER,
	ST_EOH,
	ST_BODY,
	ST_EOB,
	ST_DONE,
};

static const char *const step_names[] = {"connect", "negotiate", "connect", "helo", "mail", "rcpt",
					 "data",    "header",    "eoh",     "body", "eom",  "done"};

struct smtp_milter {
	struct event_base *base;
	struct smtp_milter_request req; /* strings below are owned copies */
	char *strs;                     /* all the request's strings */
	char **rcpts;
	char log_id[32];
	char *servers;           /* milter.servers at the start */
	const char *next_server; /* in servers */
	char endpoint[128];      /* the current one */
	bool accept_on_failure;
	unsigned timeout_connect, timeout_command;
	/* the current conversation */
	struct bufferevent *bev;
	struct event *timer;
	struct event *done_ev;
	enum step step;
	bool waiting;             /* a reply is due */
	size_t index;             /* ST_RCPT, ST_HEADER: which one */
	off_t body_off, body_end; /* ST_BODY: what is left to send */
	struct milter_optneg neg;
	size_t ops;         /* header changes so far (all milters) */
	size_t added;       /* bytes they added */
	struct buf pending; /* this milter's changes: cmd, len, data */
	bool quarantine_pending;
	char quarantine_reason[256];
	unsigned gen;      /* counts conversations (read_cb's guard) */
	unsigned progress; /* its "progress" replies */
	struct smtp_milter_result res;
	smtp_milter_cb cb;
	void *ctx;
};

bool smtp_milter_wanted(const struct config *cfg, bool submission)
{
	return cfg->milter_servers[0] != '\0' && (!submission || cfg->milter_apply_to_submission);
}

static void next_milter(struct smtp_milter *m);
static void advance(struct smtp_milter *m);

/* Ends the whole run: the callback, from the loop. */
static void finish(struct smtp_milter *m)
{
	if (m->bev != NULL) {
		bufferevent_free(m->bev);
		m->bev = NULL;
	}
	m->gen++;
	event_del(m->timer);
	event_active(m->done_ev, EV_TIMEOUT, 0);
}

static void done_cb(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	struct smtp_milter *m = ctx;
	m->cb(m->ctx, &m->res);
}

static void arm(struct smtp_milter *m, unsigned seconds)
{
	struct timeval tv = {(time_t)seconds, 0};
	event_add(m->timer, &tv);
}

/* This milter failed: log it once, then the default action. */
static void fail(struct smtp_milter *m, const char *why)
{
	log_warn("smtp id=%s session=%s action=milter milter=%s step=%s error=\"%s\" result=%s",
		 m->req.queue_id, m->log_id, m->endpoint, step_names[m->step], why,
		 m->accept_on_failure ? "accept" : "tempfail");
	if (m->bev != NULL) {
		bufferevent_free(m->bev);
		m->bev = NULL;
	}
	m->gen++;
	buf_reset(&m->pending);
	m->quarantine_pending = false;
	event_del(m->timer);
	if (m->accept_on_failure) {
		next_milter(m);
		return;
	}
	m->res.verdict = SMTP_MILTER_TEMPFAIL;
	snprintf(m->res.reply, sizeof m->res.reply,
		 "451 4.7.1 Error: a content filter is not available now, try again later");
	snprintf(m->res.by, sizeof m->res.by, "%s", m->endpoint);
	finish(m);
}

/* Says QUIT (best effort: nothing is waiting in the output then) and
 * closes the conversation. */
static void say_quit(struct smtp_milter *m)
{
	static const unsigned char quit[5] = {0, 0, 0, 1, MILTER_C_QUIT};
	if (send(bufferevent_getfd(m->bev), quit, sizeof quit, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("smtp action=milter milter=%s note=\"QUIT not sent\"", m->endpoint);
	bufferevent_free(m->bev);
	m->bev = NULL;
	m->gen++;
	event_del(m->timer);
}

/* This milter is through (accepted, or its end of message): its changes
 * count, QUIT, and on with the next. */
static void milter_ok(struct smtp_milter *m)
{
	const unsigned char *p = (const unsigned char *)m->pending.data;
	for (size_t at = 0; at + 5 <= m->pending.len;) {
		char cmd = (char)p[at];
		size_t n = (size_t)p[at + 1] << 24 | (size_t)p[at + 2] << 16 |
			   (size_t)p[at + 3] << 8 | p[at + 4];
		struct milter_header_op op;
		if (milter_proto_parse_header_op(cmd, p + at + 5, n, &op) == 0)
			milter_fields_apply(&m->res.fields, &op);
		at += 5 + n;
	}
	if (m->pending.len > 0)
		m->res.modified = true;
	buf_reset(&m->pending);
	if (m->quarantine_pending) {
		m->res.quarantine = true;
		snprintf(m->res.quarantine_reason, sizeof m->res.quarantine_reason, "%s",
			 m->quarantine_reason);
		snprintf(m->res.quarantine_by, sizeof m->res.quarantine_by, "%s", m->endpoint);
	}
	say_quit(m);
	next_milter(m);
}

/* A refusal or discard: the verdict for the whole message. */
static void decide(struct smtp_milter *m, enum smtp_milter_verdict v, const char *reply)
{
	m->res.verdict = v;
	snprintf(m->res.reply, sizeof m->res.reply, "%s", reply);
	snprintf(m->res.by, sizeof m->res.by, "%s", m->endpoint);
	say_quit(m);
	finish(m);
}

static int send_buf(struct smtp_milter *m, struct buf *b)
{
	int r = bufferevent_write(m->bev, b->data, b->len);
	buf_reset(b);
	return r;
}

/* Per step: the protocol flag that turns it off and the one that says
 * the milter sends no reply to it (0: none). */
static const struct {
	uint32_t off, no_reply;
} step_flags[] = {
    [ST_CONNECT] = {MILTER_P_NOCONNECT, MILTER_P_NR_CONN},
    [ST_HELO] = {MILTER_P_NOHELO, MILTER_P_NR_HELO},
    [ST_MAIL] = {MILTER_P_NOMAIL, MILTER_P_NR_MAIL},
    [ST_RCPT] = {MILTER_P_NORCPT, MILTER_P_NR_RCPT},
    [ST_DATA] = {MILTER_P_NODATA, MILTER_P_NR_DATA},
    [ST_HEADER] = {MILTER_P_NOHDRS, MILTER_P_NR_HDR},
    [ST_EOH] = {MILTER_P_NOEOH, MILTER_P_NR_EOH},
    [ST_BODY] = {MILTER_P_NOBODY, MILTER_P_NR_BODY},
    [ST_DONE] = {0, 0},
};

static bool step_off(const struct smtp_milter *m, enum step st)
{
	return (m->neg.protocol & step_flags[st].off) != 0;
}

static bool step_no_reply(const struct smtp_milter *m, enum step st)
{
	return (m->neg.protocol & step_flags[st].no_reply) != 0;
}

/* Builds the packets of the current step (macros first).  For ST_BODY
 * one chunk; 1 when there is no more body (go to ST_EOB).  0, 1, -1. */
static int build_step(struct smtp_milter *m, struct buf *b)
{
	const struct smtp_milter_request *q = &m->req;
	char client[96];
	snprintf(client, sizeof client, "[%s]", q->client_ip);
	switch (m->step) {
	case ST_CONNECT: {
		char port[8], us[160];
		snprintf(port, sizeof port, "%u", (unsigned)q->client_port);
		snprintf(us, sizeof us, "unknown [%s]", q->client_ip);
		const char *n[] = {"j",
				   "{daemon_name}",
				   "v",
				   "_",
				   "{client_addr}",
				   "{client_name}",
				   "{client_port}"};
		const char *v[] = {q->hostname,  q->daemon, "Tern", us,
				   q->client_ip, "unknown", port};
		if (milter_proto_macros(b, MILTER_C_CONNECT, n, v, 7) < 0)
			return -1;
		return milter_proto_connect(b, client, strchr(q->client_ip, ':') != NULL,
					    q->client_port, q->client_ip);
	}
	case ST_HELO: {
		const char *s[] = {q->helo};
		return milter_proto_strings(b, MILTER_C_HELO, s, 1);
	}
	case ST_MAIL: {
		char from[600];
		snprintf(from, sizeof from, "<%s>", q->from);
		const char *n[] = {"i", "{mail_addr}", "{auth_authen}", "{auth_type}"};
		const char *v[] = {q->queue_id, q->from, q->auth_user,
				   q->auth_user[0] ? "PLAIN" : ""};
		if (milter_proto_macros(b, MILTER_C_MAIL, n, v, q->auth_user[0] ? 4 : 2) < 0)
			return -1;
		const char *s[] = {from};
		return milter_proto_strings(b, MILTER_C_MAIL, s, 1);
	}
	case ST_RCPT: {
		char rcpt[600];
		snprintf(rcpt, sizeof rcpt, "<%s>", q->rcpts[m->index]);
		const char *n[] = {"{rcpt_addr}"};
		const char *v[] = {q->rcpts[m->index]};
		if (milter_proto_macros(b, MILTER_C_RCPT, n, v, 1) < 0)
			return -1;
		const char *s[] = {rcpt};
		return milter_proto_strings(b, MILTER_C_RCPT, s, 1);
	}
	case ST_DATA: {
		const char *n[] = {"i"};
		const char *v[] = {q->queue_id};
		if (milter_proto_macros(b, MILTER_C_DATA, n, v, 1) < 0)
			return -1;
		return milter_proto_packet(b, MILTER_C_DATA, NULL, 0);
	}
	case ST_HEADER: {
		const struct milter_field *f = &m->res.fields.f[m->index];
		struct buf p;
		buf_init(&p, 0);
		int r = buf_append(&p, f->raw, f->name_len) | buf_putc(&p, '\0') |
			milter_fields_value(&m->res.fields, m->index, &p);
		if (r == 0)
			r = milter_proto_packet(b, MILTER_C_HEADER, p.data, p.len);
		buf_free(&p);
		return r;
	}
	case ST_EOH:
		return milter_proto_packet(b, MILTER_C_EOH, NULL, 0);
	case ST_BODY: {
		if (m->body_off >= m->body_end)
			return 1;
		char chunk[MILTER_CHUNK_MAX];
		size_t want = (size_t)(m->body_end - m->body_off);
		if (want > sizeof chunk)
			want = sizeof chunk;
		ssize_t got = pread(q->spool_fd, chunk, want, m->body_off);
		if (got <= 0)
			return -1;
		m->body_off += got;
		return milter_proto_packet(b, MILTER_C_BODY, chunk, (size_t)got);
	}
	case ST_EOB: {
		const char *n[] = {"i"};
		const char *v[] = {q->queue_id};
		if (milter_proto_macros(b, MILTER_C_BODYEOB, n, v, 1) < 0)
			return -1;
		return milter_proto_packet(b, MILTER_C_BODYEOB, NULL, 0);
	}
	default:
		return -1;
	}
}

/* The step after the current one (and its index). */
static void step_next(struct smtp_milter *m)
{
	if (m->step == ST_RCPT && m->index + 1 < m->req.n_rcpts) {
		m->index++;
		return;
	}
	if (m->step == ST_HEADER && m->index + 1 < m->res.fields.n) {
		m->index++;
		return;
	}
	if (m->step == ST_BODY)
		return; /* build_step says when it is over */
	m->step++;
	m->index = 0;
	if ((m->step == ST_RCPT && m->req.n_rcpts == 0) ||
	    (m->step == ST_HEADER && m->res.fields.n == 0))
		step_next(m);
}

/* Sends steps until one needs a reply (or the output is full). */
static void advance(struct smtp_milter *m)
{
	struct buf b;
	buf_init(&b, 0);
	while (!m->waiting && m->step < ST_DONE) {
		if (step_off(m, m->step)) {
			if (m->step == ST_BODY)
				m->step = ST_EOB; /* step_next stays in the body */
			else
				step_next(m);
			continue;
		}
		if (m->step == ST_BODY &&
		    evbuffer_get_length(bufferevent_get_output(m->bev)) > MILTER_OUT_HIGH) {
			/* the write callback goes on; a milter that stops
			 * reading (no replies to wait for: NR_BODY) times out */
			arm(m, m->timeout_command);
			break;
		}
		int r = build_step(m, &b);
		if (r == 1) {
			m->step = ST_EOB;
			continue;
		}
		if (r < 0 || send_buf(m, &b) < 0) {
			buf_free(&b);
			fail(m, "could not build or send a command");
			return;
		}
		/* the timer runs while something is due: a reply, or the
		 * milter reading what was sent without one */
		arm(m, m->timeout_command);
		if (m->step == ST_EOB || !step_no_reply(m, m->step))
			m->waiting = true;
		else
			step_next(m);
	}
	buf_free(&b);
}

/* A header change or quarantine at the end of message.  0 or -1. */
static int eom_action(struct smtp_milter *m, char cmd, const unsigned char *d, size_t n,
		      const char **why)
{
	if (cmd == MILTER_R_QUARANTINE) {
		const char *s;
		size_t len;
		if (!(m->neg.actions & MILTER_A_QUARANTINE) ||
		    milter_proto_parse_string(d, n, &s, &len) < 0) {
			*why = "a quarantine it did not negotiate, or without a reason";
			return -1;
		}
		m->quarantine_pending = true;
		log_escape(m->quarantine_reason, sizeof m->quarantine_reason, s, len);
		return 0;
	}
	uint32_t need = cmd == MILTER_R_CHGHEADER ? MILTER_A_CHGHDRS : MILTER_A_ADDHDRS;
	struct milter_header_op op;
	if (!(m->neg.actions & need) || milter_proto_parse_header_op(cmd, d, n, &op) < 0) {
		*why = "a header change it did not negotiate, or a malformed one";
		return -1;
	}
	if (++m->ops > MILTER_MAX_OPS || m->added + op.name_len + op.value_len > MILTER_MAX_ADDED ||
	    (cmd != MILTER_R_CHGHEADER && m->res.fields.n >= MILTER_MAX_FIELDS)) {
		*why = "too many header changes";
		return -1;
	}
	/* kept until the milter's final reply: a milter that fails
	 * meanwhile changes nothing */
	unsigned char h[5] = {(unsigned char)cmd, (unsigned char)(n >> 24),
			      (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
	m->added += op.name_len + op.value_len;
	return buf_append(&m->pending, h, sizeof h) | buf_append(&m->pending, d, n);
}

/* One reply packet. */
static void on_reply(struct smtp_milter *m, char cmd, const unsigned char *d, size_t n)
{
	char text[600];
	const char *why = "an unexpected reply";
	if (!m->waiting) {
		fail(m, "a reply where none was due");
		return;
	}
	if (cmd == MILTER_R_PROGRESS) {
		/* bounded, so that a milter cannot hold a message forever */
		if (++m->progress > MILTER_MAX_PROGRESS) {
			fail(m, "too many progress replies");
			return;
		}
		arm(m, m->timeout_command);
		return;
	}
	if (m->step == ST_OPTNEG) {
		if (cmd != MILTER_R_OPTNEG || milter_proto_parse_optneg(d, n, &m->neg) < 0) {
			fail(m, "no valid option negotiation reply");
			return;
		}
		m->neg.actions &= MILTER_OFFER_ACTIONS;
		m->neg.protocol &= MILTER_OFFER_PROTOCOL;
		m->waiting = false;
		event_del(m->timer);
		m->step = ST_CONNECT;
		advance(m);
		return;
	}
	switch (cmd) {
	case MILTER_R_CONTINUE:
		m->waiting = false;
		event_del(m->timer);
		if (m->step == ST_EOB) {
			milter_ok(m);
			return;
		}
		step_next(m);
		advance(m);
		return;
	case MILTER_R_SKIP:
		if (m->step != ST_BODY || !(m->neg.protocol & MILTER_P_SKIP))
			break;
		m->waiting = false;
		event_del(m->timer);
		m->step = ST_EOB;
		advance(m);
		return;
	case MILTER_R_ACCEPT:
		/* this milter wants nothing more of this message */
		milter_ok(m);
		return;
	case MILTER_R_REJECT:
		decide(m, SMTP_MILTER_REJECT, "550 5.7.1 Message rejected by a content filter");
		return;
	case MILTER_R_TEMPFAIL:
		decide(m, SMTP_MILTER_TEMPFAIL,
		       "451 4.7.1 Message deferred by a content filter, try again later");
		return;
	case MILTER_R_DISCARD:
		decide(m, SMTP_MILTER_DISCARD, "");
		return;
	case MILTER_R_REPLYCODE: {
		int code = milter_proto_parse_replycode(d, n, text, sizeof text);
		if (code < 0) {
			why = "a reply text without a valid SMTP code";
			break;
		}
		decide(m, code >= 500 ? SMTP_MILTER_REJECT : SMTP_MILTER_TEMPFAIL, text);
		return;
	}
	case MILTER_R_ADDHEADER:
	case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER:
	case MILTER_R_QUARANTINE:
		if (m->step != ST_EOB)
			break;
		if (eom_action(m, cmd, d, n, &why) < 0)
			break;
		arm(m, m->timeout_command);
		return;
	default:
		break;
	}
	char esc[64], c = cmd;
	log_escape(esc, sizeof esc, &c, 1);
	snprintf(text, sizeof text, "%s (%s)", why, esc);
	fail(m, text);
}

static void read_cb(struct bufferevent *bev, void *ctx)
{
	struct smtp_milter *m = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);
	unsigned gen = m->gen;
	while (m->gen == gen && m->bev != NULL) {
		size_t have = evbuffer_get_length(in);
		size_t look = have < MILTER_REPLY_MAX + 4 ? have : MILTER_REPLY_MAX + 4;
		const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)look);
		char cmd;
		const unsigned char *d;
		size_t n, used;
		int r = p == NULL
			    ? 0
			    : milter_proto_frame(p, look, MILTER_REPLY_MAX, &cmd, &d, &n, &used);
		if (r == 0)
			return;
		if (r < 0) {
			fail(m, "a reply packet of length 0 or over 64 KiB");
			return;
		}
		/* on_reply may end this conversation (m->bev changes) */
		unsigned char *copy = xmalloc(n + 1);
		memcpy(copy, d, n);
		evbuffer_drain(in, used);
		on_reply(m, cmd, copy, n);
		free(copy);
	}
}

static void write_cb(struct bufferevent *bev, void *ctx)
{
	(void)bev;
	struct smtp_milter *m = ctx;
	if (m->step == ST_BODY && !m->waiting)
		advance(m);
}

static void event_cb(struct bufferevent *bev, short what, void *ctx)
{
	(void)bev;
	struct smtp_milter *m = ctx;
	if (what & BEV_EVENT_CONNECTED) {
		struct buf b;
		buf_init(&b, 0);
		m->step = ST_OPTNEG;
		m->waiting = true;
		if (milter_proto_optneg(&b) < 0 || send_buf(m, &b) < 0) {
			buf_free(&b);
			fail(m, "could not send the negotiation");
			return;
		}
		buf_free(&b);
		bufferevent_enable(m->bev, EV_READ | EV_WRITE);
		return;
	}
	char why[160];
	int e = EVUTIL_SOCKET_ERROR();
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "the milter closed the connection");
	else
		snprintf(why, sizeof why, "%s", e ? strerror(e) : "connection error");
	fail(m, why);
}

static void timer_cb(evutil_socket_t fd, short what, void *ctx)
{
	(void)fd;
	(void)what;
	struct smtp_milter *m = ctx;
	fail(m, m->step <= ST_OPTNEG
		    ? "no connection or negotiation in time (milter.timeout_connect)"
		    : "no reply in time (milter.timeout_command)");
}

/* Starts the conversation with the next milter, or finishes. */
static void next_milter(struct smtp_milter *m)
{
	const char *w;
	size_t n = endpoint_next(&m->next_server, &w);
	if (n == 0 || m->res.verdict != SMTP_MILTER_ACCEPT) {
		finish(m);
		return;
	}
	snprintf(m->endpoint, sizeof m->endpoint, "%.*s", (int)n, w);
	m->step = ST_CONNECTING;
	m->waiting = false;
	m->quarantine_pending = false;
	m->progress = 0;
	buf_reset(&m->pending);
	m->index = 0;
	m->neg = (struct milter_optneg){0};
	struct sockaddr_storage ss;
	socklen_t len;
	if (endpoint_parse(w, n, &ss, &len) < 0) {
		fail(m, "not an endpoint");
		return;
	}
	m->body_off = (off_t)(m->req.skip + m->res.hdr_len);
	m->bev = bufferevent_socket_new(m->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (m->bev == NULL) {
		fail(m, "no socket");
		return;
	}
	bufferevent_setcb(m->bev, read_cb, write_cb, event_cb, m);
	bufferevent_setwatermark(m->bev, EV_WRITE, MILTER_OUT_HIGH / 2, 0);
	arm(m, m->timeout_connect);
	if (bufferevent_socket_connect(m->bev, (struct sockaddr *)&ss, (int)len) < 0) {
		char why[160];
		snprintf(why, sizeof why, "%s", strerror(errno));
		fail(m, why);
	}
}

static char *dup_into(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	memcpy(*p, s, n);
	char *r = *p;
	*p += n;
	return r;
}

/* Reads the header section the milters see into m->res.fields. */
static int read_header(struct smtp_milter *m)
{
	const struct smtp_milter_request *q = &m->req;
	char *h = xmalloc(MILTER_HEADER_READ);
	size_t got = 0;
	while (got < MILTER_HEADER_READ) {
		ssize_t r =
		    pread(q->spool_fd, h + got, MILTER_HEADER_READ - got, (off_t)(q->skip + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(h);
			return -1;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	milter_fields_split(h, got, MILTER_MAX_FIELDS, &m->res.fields, &m->res.hdr_len,
			    &m->res.has_sep);
	size_t at = 0;
	for (size_t i = 0; i < m->res.fields.n; i++) {
		m->res.fields.f[i].trace = q->skip + at < q->trace_len;
		at += m->res.fields.f[i].raw_len;
	}
	free(h);
	return 0;
}

struct smtp_milter *smtp_milter_start(struct event_base *base, const struct config *cfg,
				      const struct smtp_milter_request *req, const char *log_id,
				      smtp_milter_cb cb, void *ctx)
{
	struct smtp_milter *m = xcalloc(1, sizeof *m);
	m->base = base;
	m->cb = cb;
	m->ctx = ctx;
	buf_init(&m->pending, 2 * MILTER_MAX_ADDED);
	snprintf(m->log_id, sizeof m->log_id, "%s", log_id);
	m->servers = xstrdup(cfg->milter_servers);
	m->next_server = m->servers;
	m->accept_on_failure = !strcmp(cfg->milter_default_action, "accept");
	m->timeout_connect = (unsigned)cfg->milter_timeout_connect;
	m->timeout_command = (unsigned)cfg->milter_timeout_command;
	const char *strs[] = {req->queue_id, req->hostname, req->daemon,   req->client_ip,
			      req->helo,     req->from,     req->auth_user};
	size_t total = 0;
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		total += strlen(strs[i]) + 1;
	for (size_t i = 0; i < req->n_rcpts; i++)
		total += strlen(req->rcpts[i]) + 1;
	m->strs = xmalloc(total);
	char *p = m->strs;
	m->req = *req;
	m->req.queue_id = dup_into(&p, req->queue_id);
	m->req.hostname = dup_into(&p, req->hostname);
	m->req.daemon = dup_into(&p, req->daemon);
	m->req.client_ip = dup_into(&p, req->client_ip);
	m->req.helo = dup_into(&p, req->helo);
	m->req.from = dup_into(&p, req->from);
	m->req.auth_user = dup_into(&p, req->auth_user);
	m->rcpts = xcalloc(req->n_rcpts ? req->n_rcpts : 1, sizeof *m->rcpts);
	for (size_t i = 0; i < req->n_rcpts; i++)
		m->rcpts[i] = dup_into(&p, req->rcpts[i]);
	m->req.rcpts = (const char *const *)m->rcpts;
	m->timer = event_new(base, -1, 0, timer_cb, m);
	m->done_ev = event_new(base, -1, 0, done_cb, m);
	if (m->timer == NULL || m->done_ev == NULL) {
		log_error("smtp action=milter error=\"no event\"");
		abort();
	}
	m->res.verdict = SMTP_MILTER_ACCEPT;
	if (read_header(m) < 0) {
		snprintf(m->endpoint, sizeof m->endpoint, "%s", "spool");
		fail(m, strerror(errno));
		return m;
	}
	m->body_end = lseek(req->spool_fd, 0, SEEK_END);
	next_milter(m);
	return m;
}

void smtp_milter_free(struct smtp_milter **mp)
{
	struct smtp_milter *m = *mp;
	if (m == NULL)
		return;
	if (m->bev != NULL)
		bufferevent_free(m->bev);
	if (m->timer != NULL)
		event_free(m->timer);
	if (m->done_ev != NULL)
		event_free(m->done_ev);
	smtp_milter_result_free(&m->res);
	buf_free(&m->pending);
	free(m->servers);
	free(m->strs);
	free(m->rcpts);
	free(m);
	*mp = NULL;
}

void smtp_milter_result_free(struct smtp_milter_result *r)
{
	milter_fields_free(&r->fields);
}

int smtp_milter_rewrite(int fd, const char *path, size_t skip, const struct smtp_milter_result *r,
			size_t *trace_len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.milter", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	struct buf head;
	buf_init(&head, 0);
	char *first = xmalloc(skip + 1);
	int ok = pread(fd, first, skip, 0) == (ssize_t)skip &&
		 buf_append(&head, first, skip) == 0 &&
		 milter_fields_write(&r->fields, &head) == 0 &&
		 (!r->has_sep || buf_append(&head, "\r\n", 2) == 0);
	free(first);
	size_t tl = skip;
	for (size_t i = 0; i < r->fields.n && r->fields.f[i].trace; i++)
		tl += r->fields.f[i].raw_len;
	int nfd = ok ? store_spool_create(tmp) : -1;
	ok = nfd >= 0 && fsutil_write_all(nfd, head.data, head.len) == 0;
	buf_free(&head);
	off_t off = (off_t)(skip + r->hdr_len);
	char chunk[65536];
	while (ok) {
		ssize_t got = pread(fd, chunk, sizeof chunk, off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			ok = got == 0;
			break;
		}
		ok = fsutil_write_all(nfd, chunk, (size_t)got) == 0;
		off += got;
	}
	if (ok && rename(tmp, path) < 0)
		ok = false;
	if (!ok) {
		int e = errno;
		if (nfd >= 0) {
			close(nfd);
			unlink(tmp);
		}
		errno = e;
		return -1;
	}
	*trace_len = tl;
	return nfd;
}
