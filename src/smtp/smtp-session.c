/*
 * smtp-session.c - SMTP receiver sessions on a libevent loop (see
 * smtp-session.h and docs/smtp.md).  Protocol layer: uses the store (for
 * recipients and delivery), the mail layer (addresses) and lib.
 *
 * Flow of a message: MAIL and RCPT fill a struct smtp_txn; DATA or BDAT
 * streams the body into DATA/spool/ID (after our Return-Path and Received
 * lines), checking size and line ends as it goes; at the end of data the
 * file is fsync'ed, handed to store_deliver (local recipients) and
 * store_queue_add (remote alias targets), and only then is 250 sent.
 */
#include "smtp-session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "addr.h"
#include "authglue.h"
#include "base64.h"
#include "buf.h"
#include "config.h"
#include "fsutil.h"
#include "dkim-keys.h"
#include "dmarc-failure.h"
#include "dns.h"
#include "header.h"
#include "linereader.h"
#include "log.h"
#include "metrics.h"
#include "msgauth.h"
#include "netaddr.h"
#include "smtp-commit.h"
#include "smtp-connect.h"
#include "smtp-grey.h"
#include "smtp-limit.h"
#include "smtp-parse.h"
#include "smtp-quota.h"
#include "smtp-sieve.h"
#include "smtp-milter.h"
#include "smtp-spam.h"
#include "spam-token.h"
#include "store.h"
#include "strutil.h"
#include "tls.h"
#include "xalloc.h"

/* RFC 5321 4.5.3.1.4: 512 octets for a command line including CRLF; we
 * allow more after EHLO because extensions add parameters. */
#define SMTP_LINE_MAX_HELO 510
#define SMTP_LINE_MAX_EHLO 2046
/* Longest text line accepted inside DATA (RFC 5321 says 1000; real mail
 * breaks that, so we are lenient up to this). */
#define SMTP_DATA_LINE_MAX 65536
/* RFC 5321 4.5.3.2 server timeouts. */
#define SMTP_TIMEOUT_CMD 300
#define SMTP_TIMEOUT_DATA 180
#define SMTP_SPOOL_BUF 65536
/* Stop reading a client whose unread replies exceed this (backpressure). */
#define SMTP_OUTPUT_HIGH 262144
/* Longest line of an AUTH exchange (RFC 4954 4 suggests 12288 octets);
 * sasl.h takes at most SASL_MAX_RESPONSE decoded bytes anyway. */
#define SMTP_AUTH_LINE_MAX 12288
/* Submission: how much of a message is read to check its header section
 * (From:, Message-ID:, Date:); a longer header section is refused. */
#define SMTP_SUBMIT_HEADER_MAX (1024 * 1024)

enum smtp_state {
	SMTP_STATE_CONNECT,  /* port 25: greeting held for the connection stage */
	SMTP_STATE_CMD,      /* reading commands */
	SMTP_STATE_DATA,     /* reading DATA lines until <CRLF>.<CRLF> */
	SMTP_STATE_BDAT,     /* reading the octets of a BDAT chunk */
	SMTP_STATE_COMMIT,   /* end of data seen; waiting for the group commit */
	SMTP_STATE_STARTTLS, /* "220 Ready to start TLS" sent; waiting for it to drain */
	SMTP_STATE_AUTH,     /* "334" sent: the next line is a SASL response */
	SMTP_STATE_RCPT_WAIT, /* RCPT waits for greylisting's SPF check */
	SMTP_STATE_AUTH_WAIT, /* the SASL exchange is working (password check,
			       * failure delay): reading nothing */
	SMTP_STATE_CLOSING,  /* reply sent, waiting for output to drain */
	SMTP_STATE_DEAD,     /* waiting to be reaped */
};

struct smtp_txn {
	char id[25];
	char session_id[25];           /* for the log line, which may be */
	char client[INET6_ADDRSTRLEN]; /* written after the session is gone */
	char helo[256];
	char tls[16];                  /* TLS version for the log line; "" if none */
	char from[ADDR_PATH_MAX + 1];  /* "" for the null sender */
	bool smtputf8;
	uint64_t declared_size;
	/* DSN (RFC 3461): MAIL's RET and ENVID (xtext as received) */
	int dsn_ret;
	char dsn_envid[SMTP_DSN_ENVID_MAX + 1];
	bool requiretls; /* MAIL FROM ... REQUIRETLS (RFC 8689) */
	struct smtp_rcpt *rcpts;       /* accepted recipients, as given */
	size_t n_rcpts;
	size_t n_refused;
	/* union of all accepted recipients' targets */
	int64_t *local;
	struct smtp_rcpt *local_to;    /* the RCPT TO that reached each local account */
	char (*local_via)[STORE_VIA_MAX]; /* and how (store_targets.local_via) */
	size_t n_local;
	char (*remote)[256];
	size_t n_remote;
	/* DSN requests of each remote target, parallel to remote */
	unsigned *remote_notify;
	char (*remote_orcpt)[SMTP_DSN_ORCPT_MAX + 1];
	/* Local recipients that asked for NOTIFY=SUCCESS: once delivered,
	 * the queue sends their "delivered" DSN (addresses as in RCPT TO). */
	struct smtp_rcpt *ok_local;
	char (*ok_local_orcpt)[SMTP_DSN_ORCPT_MAX + 1];
	bool *ok_local_expanded; /* an alias of several targets: "expanded" */
	size_t n_ok_local;
	/* body */
	bool bdat;                     /* BDAT used: DATA is refused */
	int spool_fd;
	char spool_path[PATH_MAX];
	struct buf out;                /* bytes waiting to be written to the spool */
	uint64_t size;                 /* message bytes received (no trace lines) */
	bool too_big;
	bool bad_eol;                  /* bare CR or LF seen */
	bool line_too_long;
	bool io_error;
	bool prev_line_bare;           /* DATA: previous line ended in bare LF */
	int grey_spf;                  /* greylisting's SPF at RCPT: 0 not run, 1 pass, 2 not */
	char grey_spf_domain[256];     /* the domain it passed for */
	bool junk;                     /* DMARC says quarantine: INBOX copies go to Junk */
	bool *junk_of;                 /* the same per local recipient (p=reject, per domain) */
	struct smtp_spam spam;         /* content stage: per local recipient (spam_scored) */
	struct smtp_spam_sender sender; /* ... and who sent it (filled by the checks) */
	bool spam_scored;
	struct store_group *group;     /* the group among the recipients, or NULL */
	char *arc_results;             /* port 25: our verdict, for an ARC seal (owned) */
	enum arc_status arc_cv;        /* the chain as it arrived */
	bool pending_cr;               /* BDAT: chunk ended in CR */
	size_t trace_len;              /* bytes of our trace lines at the spool's start */
	struct timeval start;
};

struct smtp_session {
	struct smtp_server *srv;
	struct smtp_session *next, *prev;
	struct bufferevent *bev;
	char id[25];
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage sa;    /* the client, for the brute-force limiter */
	bool loopback;                 /* client on 127.0.0.0/8 or ::1 */
	enum smtp_state state;
	bool greeted;
	bool esmtp;
	bool tls_on;                   /* the connection is TLS (handshake may be pending) */
	bool tls_pending;              /* TLS handshake not finished yet */
	char helo[256];
	struct linereader lr;
	unsigned errors;
	struct smtp_txn *txn;
	struct smtp_check *check;      /* SPF/DKIM/DMARC of the finished message */
	uint64_t bdat_size;            /* octets of the current chunk */
	uint64_t bdat_left;            /* octets of the current chunk still to read */
	bool bdat_last;
	bool bdat_discard;             /* chunk refused: read and drop it */
	const char *bdat_reply;        /* reply after a discarded chunk */
	/* AUTH (RFC 4954), submission listeners only */
	struct authglue *auth;         /* the exchange in progress */
	bool auth_final;               /* SCRAM's last 334 sent: waiting for "" */
	char auth_pending[256];        /* account, while auth_final */
	int64_t auth_pending_id;
	bool authed;
	char account[256];             /* the authenticated account */
	int64_t account_id;
	/* connection stage, port 25 (smtp-connect.h, docs/spam.md) */
	struct smtp_connect *conn;     /* while the greeting waits */
	struct smtp_connect_result spam; /* its score, until the HELO check */
	bool spam_log;                 /* the score line is still to be logged */
	bool refused;                  /* 554/550 given: only QUIT is answered */
	bool limited;                  /* port 25, not trusted: rate limits and
					* greylisting apply */
	uint64_t limit_slot;           /* its open-connection count (smtp-limit.h) */
	struct smtp_grey_spf *grey_spf; /* greylisting's SPF check in flight */
	struct smtp_cmd grey_cmd;      /* the RCPT that waits for it (RCPT_WAIT) */
	struct smtp_milter *milter;    /* the milters of the finished message */
	struct smtp_txn *milter_txn;   /* that message, while they run */
	size_t milter_skip;            /* its spool bytes they do not see */
};

struct smtp_pending {
	struct smtp_session *s;  /* NULL if the client went away meanwhile */
	struct smtp_txn *t;
};

struct smtp_server {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct smtp_session *sessions;
	size_t n_sessions;
	struct smtp_session *dead;     /* sessions to reap */
	struct event *reaper;
	struct tls *tls;               /* the worker's TLS state; NULL: none */
	bool implicit_tls;             /* TLS from the first byte (RFC 8314) */
	bool submission;               /* RFC 6409 rules: AUTH required, senders checked */
	struct smtp_pending *pending;  /* messages waiting for the group commit */
	size_t n_pending;
	struct event *commit_ev;
	struct dkim_keyring *dkim;     /* signs what leaves for other servers */
	struct dns_resolver *dns;      /* for the port 25 checks; made on first use */
	char dns_for[256];             /* the dns.resolver it was made for */
	size_t n_checks;               /* checks in flight (they use dns) */
	bool shutting_down;
	void (*shutdown_cb)(void *ctx);
	void *shutdown_ctx;
};

static void session_read_cb(struct bufferevent *bev, void *ctx);
static void session_write_cb(struct bufferevent *bev, void *ctx);
static void close_with(struct smtp_session *s, const char *line);
static void process_input(struct smtp_session *s);
static void commit_cb(evutil_socket_t fd, short what, void *ctx);
static void session_event_cb(struct bufferevent *bev, short what, void *ctx);
static void session_kill(struct smtp_session *s);
static void spam_log_line(struct smtp_session *s, const char *result);
static void connect_stop(struct smtp_session *s);
static void connect_early_input(struct smtp_session *s);
static void connect_done(void *ctx, const struct smtp_connect_result *r);
static void greet(struct smtp_session *s);

/* ------------------------------------------------------------ utilities */

static void reply(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reply(struct smtp_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

static const char *hostname(const struct smtp_session *s)
{
	return s->srv->cfg->hostname;
}

static void set_timeout(struct smtp_session *s, int seconds)
{
	struct timeval tv = {seconds, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void session_enter(struct smtp_session *s, enum smtp_state st)
{
	s->state = st;
	switch (st) {
	case SMTP_STATE_CONNECT:
		set_timeout(s, SMTP_TIMEOUT_CMD);
		break;
	case SMTP_STATE_CMD:
		set_timeout(s, s->refused ? 30 : SMTP_TIMEOUT_CMD);
		if (s->srv->shutting_down) {
			/* a transaction that was in progress at shutdown is done */
			char line[320];
			snprintf(line, sizeof line, "421 4.3.2 %s Service shutting down", hostname(s));
			close_with(s, line);
		}
		break;
	case SMTP_STATE_COMMIT:
		set_timeout(s, SMTP_TIMEOUT_CMD);
		break;
	case SMTP_STATE_STARTTLS:
		/* nothing more is read in plaintext (RFC 3207 4.2) */
		bufferevent_disable(s->bev, EV_READ);
		break;
	case SMTP_STATE_AUTH:
		set_timeout(s, SMTP_TIMEOUT_CMD);
		bufferevent_enable(s->bev, EV_READ);
		break;
	case SMTP_STATE_RCPT_WAIT:
	case SMTP_STATE_AUTH_WAIT:
		/* the exchange answers later; pipelined input waits */
		bufferevent_disable(s->bev, EV_READ);
		break;
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
		set_timeout(s, SMTP_TIMEOUT_DATA);
		break;
	case SMTP_STATE_CLOSING:
		/* give a slow reader a little time to take the last reply */
		set_timeout(s, 10);
		bufferevent_disable(s->bev, EV_READ);
		break;
	case SMTP_STATE_DEAD:
		break;
	}
}

/* Sends a last reply and closes once it is written. */
static void close_with(struct smtp_session *s, const char *line)
{
	if (s->state == SMTP_STATE_CLOSING || s->state == SMTP_STATE_DEAD)
		return;
	if (line != NULL)
		reply(s, "%s", line);
	session_enter(s, SMTP_STATE_CLOSING);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_write_cb(s->bev, s);
}

/* Counts a client error; after too many the session is closed. */
static void client_error(struct smtp_session *s)
{
	s->errors++;
	if (s->errors >= s->srv->cfg->smtp_max_errors) {
		char line[320];
		snprintf(line, sizeof line, "421 4.7.0 %s Error: too many errors", hostname(s));
		log_info("smtp session=%s client=%s action=close reason=too_many_errors", s->id, s->ip);
		close_with(s, line);
	}
}

/* ---------------------------------------------------------- transaction */

static void txn_free(struct smtp_txn **tp)
{
	struct smtp_txn *t = *tp;
	if (t == NULL)
		return;
	store_spool_drop(&t->spool_fd, t->spool_path);
	free(t->arc_results);
	free(t->junk_of);
	smtp_spam_free(&t->spam);
	buf_free(&t->out);
	free(t->rcpts);
	free(t->local);
	free(t->local_to);
	free(t->local_via);
	free(t->remote);
	free(t->remote_notify);
	free(t->remote_orcpt);
	free(t->ok_local);
	free(t->ok_local_orcpt);
	free(t->ok_local_expanded);
	free(t->group);
	free(t);
	*tp = NULL;
}

static struct smtp_txn *txn_new(void)
{
	struct smtp_txn *t = xcalloc(1, sizeof *t);
	t->spool_fd = -1;
	fsutil_unique_id(t->id);
	buf_init(&t->out, SMTP_SPOOL_BUF * 2);
	gettimeofday(&t->start, NULL);
	return t;
}

/* The store keeps NOTIFY as the parser gives it. */
_Static_assert((int)SMTP_DSN_NOTIFY_NEVER == (int)STORE_DSN_NOTIFY_NEVER &&
		   (int)SMTP_DSN_NOTIFY_SUCCESS == (int)STORE_DSN_NOTIFY_SUCCESS &&
		   (int)SMTP_DSN_NOTIFY_FAILURE == (int)STORE_DSN_NOTIFY_FAILURE &&
		   (int)SMTP_DSN_NOTIFY_DELAY == (int)STORE_DSN_NOTIFY_DELAY &&
		   (int)SMTP_DSN_RET_FULL == (int)STORE_DSN_RET_FULL &&
		   (int)SMTP_DSN_RET_HDRS == (int)STORE_DSN_RET_HDRS,
	       "DSN values of smtp-parse.h and store.h differ");

/* Adds the targets of one accepted recipient, with its DSN requests
 * (notify, orcpt: "" none).  A recipient that expands to several targets
 * (an alias) is RFC 3461 5.2.7.3 (c): ORCPT goes to every target, NOTIFY
 * too but without SUCCESS. */
static void txn_add_targets(struct smtp_txn *t, const struct store_targets *tg, const char *rcpt,
			    unsigned notify, const char *orcpt)
{
	if (tg->n_local + tg->n_remote > 1 && (notify & SMTP_DSN_NOTIFY_SUCCESS)) {
		notify &= ~(unsigned)SMTP_DSN_NOTIFY_SUCCESS;
		if (notify == 0)
			notify = SMTP_DSN_NOTIFY_NEVER;
	}
	for (size_t i = 0; i < tg->n_local; i++) {
		bool dup = false;
		for (size_t j = 0; j < t->n_local; j++)
			if (t->local[j] == tg->local[i])
				dup = true;
		if (dup)
			continue;
		t->local = xreallocarray(t->local, t->n_local + 1, sizeof *t->local);
		t->local_to = xreallocarray(t->local_to, t->n_local + 1, sizeof *t->local_to);
		t->local_via = xreallocarray(t->local_via, t->n_local + 1, sizeof *t->local_via);
		snprintf(t->local_to[t->n_local].addr, sizeof t->local_to[0].addr, "%s", rcpt);
		memcpy(t->local_via[t->n_local], tg->local_via[i], sizeof t->local_via[0]);
		t->local[t->n_local++] = tg->local[i];
	}
	for (size_t i = 0; i < tg->n_remote; i++) {
		bool dup = false;
		for (size_t j = 0; j < t->n_remote; j++)
			if (!strcmp(t->remote[j], tg->remote[i]))
				dup = true;
		if (dup)
			continue;
		t->remote = xreallocarray(t->remote, t->n_remote + 1, sizeof *t->remote);
		t->remote_notify =
		    xreallocarray(t->remote_notify, t->n_remote + 1, sizeof *t->remote_notify);
		t->remote_orcpt =
		    xreallocarray(t->remote_orcpt, t->n_remote + 1, sizeof *t->remote_orcpt);
		t->remote_notify[t->n_remote] = notify;
		snprintf(t->remote_orcpt[t->n_remote], sizeof t->remote_orcpt[0], "%s", orcpt);
		memcpy(t->remote[t->n_remote++], tg->remote[i], 256);
	}
}

/* A recipient asked for a success DSN that we send (RFC 3461 5.2.3):
 * remember it for after delivery.  That is one local mailbox reached
 * directly or through a one-target alias ("delivered"), or an alias of
 * several targets, local or remote ("expanded", 5.2.7.3 c: its targets
 * carry no SUCCESS request of their own); never for the null sender. */
static void txn_want_success(struct smtp_txn *t, const struct store_targets *tg,
			     const char *address, unsigned notify, const char *orcpt)
{
	bool expanded = tg->n_local + tg->n_remote > 1;
	if (!(notify & SMTP_DSN_NOTIFY_SUCCESS) || t->from[0] == '\0' ||
	    (!expanded && (tg->n_local != 1 || tg->n_remote != 0)) || strlen(address) >= 256)
		return;
	for (size_t i = 0; i < t->n_ok_local; i++)
		if (!strcmp(t->ok_local[i].addr, address))
			return;
	t->ok_local = xreallocarray(t->ok_local, t->n_ok_local + 1, sizeof *t->ok_local);
	t->ok_local_orcpt =
	    xreallocarray(t->ok_local_orcpt, t->n_ok_local + 1, sizeof *t->ok_local_orcpt);
	t->ok_local_expanded =
	    xreallocarray(t->ok_local_expanded, t->n_ok_local + 1, sizeof *t->ok_local_expanded);
	t->ok_local_expanded[t->n_ok_local] = expanded;
	snprintf(t->ok_local[t->n_ok_local].addr, sizeof t->ok_local[0].addr, "%s", address);
	snprintf(t->ok_local_orcpt[t->n_ok_local], sizeof t->ok_local_orcpt[0], "%s", orcpt);
	t->n_ok_local++;
}

/* Writes what is buffered for the spool file. */
static void spool_flush(struct smtp_txn *t)
{
	if (t->out.len == 0)
		return;
	if (!t->io_error && !t->too_big && !t->bad_eol && !t->line_too_long &&
	    fsutil_write_all(t->spool_fd, t->out.data, t->out.len) < 0) {
		log_error("smtp id=%s action=spool_write error=\"%s\"", t->id, strerror(errno));
		t->io_error = true;
	}
	buf_reset(&t->out);
}

/* Appends message bytes, counting them against the size limit. */
static void spool_add(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_txn *t = s->txn;
	t->size += n;
	if (t->size > s->srv->cfg->smtp_max_message_size)
		t->too_big = true;
	if (t->too_big || t->bad_eol || t->line_too_long || t->io_error)
		return; /* keep reading to the end, but store nothing more */
	if (t->out.len + n > SMTP_SPOOL_BUF)
		spool_flush(t);
	if (n >= SMTP_SPOOL_BUF) {
		if (!t->io_error && fsutil_write_all(t->spool_fd, p, n) < 0)
			t->io_error = true;
		return;
	}
	if (buf_append(&t->out, p, n) < 0)
		t->io_error = true;
}

/* Characters of a HELO name that may go into a Received: line. */
static void clean_helo(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; in[i] && o + 1 < outsz; i++) {
		unsigned char c = (unsigned char)in[i];
		out[o++] = (c > 0x20 && c < 0x7f && c != '(' && c != ')') ? (char)c : '?';
	}
	out[o] = '\0';
}

/* Opens the spool file and writes our trace lines (RFC 5321 4.4). */
static int txn_start_body(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const char *data_dir = store_data_dir(s->srv->store);
	if (snprintf(t->spool_path, sizeof t->spool_path, "%s/spool/%s", data_dir, t->id) >=
	    (int)sizeof t->spool_path)
		return -1;
	t->spool_fd = store_spool_create(t->spool_path);
	if (t->spool_fd < 0) {
		log_error("smtp id=%s action=spool_open path=%s error=\"%s\"", t->id, t->spool_path,
			  strerror(errno));
		return -1;
	}
	char helo[256];
	clean_helo(s->helo, helo, sizeof helo);
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* RFC 3848 / RFC 6531: an S for a session under TLS. */
	struct tls_info ti;
	bool tls = tls_get_info(s->bev, &ti);
	/* RFC 3848: ESMTPA / ESMTPSA (and RFC 6531 UTF8SMTPA ...) once
	 * the client authenticated. */
	const char *with = t->smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP";
	const char *with_s = tls && (s->esmtp || t->smtputf8) ? "S" : "";
	const char *with_a = s->authed ? "A" : "";
	struct buf *b = &t->out;
	int r = buf_printf(b, "Return-Path: <%s>\r\n", t->from);
	r |= buf_printf(b, "Received: from %s ([%s])\r\n\tby %s (Tern) with %s%s%s", helo, s->ip,
			hostname(s), with, with_s, with_a);
	if (tls)
		r |= buf_printf(b, "\r\n\t(using %s with cipher %s)", ti.version, ti.cipher);
	/* Privacy: the account is named only if the config asks for it. */
	if (s->authed && s->srv->cfg->submission_received_user)
		r |= buf_printf(b, "\r\n\t(authenticated as %s)", s->account);
	r |= buf_printf(b, " id %s", t->id);
	if (t->n_rcpts == 1)
		r |= buf_printf(b, "\r\n\tfor <%s>", t->rcpts[0].addr);
	r |= buf_printf(b, "; %s\r\n", date);
	t->trace_len = b->len;
	return r < 0 ? -1 : 0;
}

static void log_txn(const struct smtp_txn *t, int code)
{
	struct buf rc = BUF_INIT;
	buf_init(&rc, 8192);
	for (size_t i = 0; i < t->n_rcpts; i++)
		buf_printf(&rc, "%s<%s>", i ? "," : "", t->rcpts[i].addr);
	struct timeval now;
	gettimeofday(&now, NULL);
	long ms = (now.tv_sec - t->start.tv_sec) * 1000 + (now.tv_usec - t->start.tv_usec) / 1000;
	char helo[128], from[300], rcpts[1024];
	log_escape(helo, sizeof helo, t->helo, strlen(t->helo));
	log_escape(from, sizeof from, t->from, strlen(t->from));
	log_escape(rcpts, sizeof rcpts, buf_cstr(&rc), rc.len);
	log_info("smtp id=%s session=%s client=%s helo=%s from=<%s> rcpt=%s local=%zu remote=%zu "
		 "size=%llu tls=%s result=%d ms=%ld%s",
		 t->id, t->session_id, t->client, helo, from, rcpts, t->n_local, t->n_remote,
		 (unsigned long long)t->size, t->tls[0] ? t->tls : "no", code, ms,
		 t->requiretls ? " requiretls=yes" : "");
	buf_free(&rc);
}

/* ----------------------------------------------------------- submission */

/* May the authenticated user send as address (envelope or From:)?  The
 * rule of store_may_send_as (its own address, its aliases, its domain for
 * submission.domain_senders).  Returns 1 yes, 0 no, -1 on a database
 * error. */
static int sender_allowed(struct smtp_session *s, const char *address)
{
	return store_may_send_as(s->srv->store, s->account_id, address,
				 s->srv->cfg->recipient_delimiter,
				 s->srv->cfg->submission_domain_senders);
}

/* Reads up to n bytes at offset off of fd.  Returns the count or -1. */
static ssize_t read_at(int fd, char *p, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Writes head[0..n) and then the rest of rfd from offset off into the new
 * file fd.  Returns 0 or -1. */
static int copy_rest(int fd, const char *head, size_t n, int rfd, off_t off)
{
	if (fsutil_write_all(fd, head, n) < 0)
		return -1;
	char chunk[SMTP_SPOOL_BUF];
	for (;;) {
		ssize_t r = read_at(rfd, chunk, sizeof chunk, off);
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		if (fsutil_write_all(fd, chunk, (size_t)r) < 0)
			return -1;
		off += r;
	}
}

/* Rewrites t's spool file: our trace lines with add inserted (after
 * their first line, our Return-Path, if after_return_path, else after
 * them all), then the message without the header fields drop() picks
 * (NULL: none), then the rest of the file.  msg[0..len) is the start of
 * the message as read after the trace lines, its whole header section
 * when drop is given.  The new file takes the old one's name and becomes
 * t->spool_fd (commit_cb fsyncs it); trace_len is not changed.  0, or -1
 * (the old file stays; the message cannot be kept now). */
static int spool_rewrite(struct smtp_txn *t, bool after_return_path, const struct buf *add,
			 const char *msg, size_t len,
			 bool (*drop)(const struct header_field *f, void *ctx), void *ctx,
			 const char *what)
{
	char *trace = xmalloc(t->trace_len + 1);
	int r = read_at(t->spool_fd, trace, t->trace_len, 0) == (ssize_t)t->trace_len ? 0 : -1;
	const char *nl = r == 0 ? memchr(trace, '\n', t->trace_len) : NULL;
	size_t at = !after_return_path ? t->trace_len : nl ? (size_t)(nl - trace) + 1 : 0;
	char tmp[PATH_MAX];
	int fd = -1;
	if (r == 0 && snprintf(tmp, sizeof tmp, "%s.%s", t->spool_path, what) < (int)sizeof tmp)
		fd = store_spool_create(tmp);
	r = fd < 0 ? -1 : 0;
	if (r == 0)
		r = fsutil_write_all(fd, trace, at) | fsutil_write_all(fd, add->data, add->len) |
		    fsutil_write_all(fd, trace + at, t->trace_len - at);
	struct header h = {0};
	size_t pos = 0;
	if (r == 0 && drop != NULL && header_parse(msg, len, &h) == HEADER_OK) {
		for (size_t i = 0; i < h.n_fields && r == 0; i++) {
			const struct header_field *f = &h.fields[i];
			if (!drop(f, ctx))
				continue;
			size_t start = (size_t)(f->name - msg);
			size_t end = (size_t)(f->value + f->value_len - msg);
			if (end < len && msg[end] == '\r')
				end++;
			if (end < len && msg[end] == '\n')
				end++;
			r = fsutil_write_all(fd, msg + pos, start - pos);
			pos = end;
		}
	}
	header_free(&h);
	if (r == 0)
		r = copy_rest(fd, msg + pos, len - pos, t->spool_fd, (off_t)(t->trace_len + len));
	if (r == 0 && rename(tmp, t->spool_path) < 0)
		r = -1;
	if (r < 0) {
		log_error("smtp id=%s action=%s_header error=\"%s\"", t->id, what, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
	} else {
		close(t->spool_fd);
		t->spool_fd = fd;
	}
	free(trace);
	return r;
}

/* Checks every From: address of a submitted message.  Returns 0, or the
 * reply code with the reply in why. */
static int check_from(struct smtp_session *s, const struct header *h, char *why, size_t whysz)
{
	struct addr *addrs = xcalloc(SMTP_MAX_HEADER_ADDRS, sizeof *addrs);
	int code = 0;
	for (size_t i = 0; i < h->n_fields && code == 0; i++) {
		const struct header_field *f = &h->fields[i];
		if (!strutil_eq_ci(f->name, f->name_len, "From"))
			continue;
		int n = smtp_parse_address_list(f->value, f->value_len, addrs,
						SMTP_MAX_HEADER_ADDRS);
		if (n <= 0) {
			code = 553;
			snprintf(why, whysz, "553 5.7.1 From: header not understood");
			break;
		}
		for (int k = 0; k < n && code == 0; k++) {
			char a[ADDR_PATH_MAX + 1];
			int ok = addr_format(&addrs[k], a, sizeof a) < 0 ? 0 : sender_allowed(s, a);
			if (ok < 0) {
				code = 451;
				snprintf(why, whysz,
					 "451 4.3.0 Error: temporary failure, try again later");
			} else if (ok == 0) {
				code = 553;
				snprintf(why, whysz,
					 "553 5.7.1 From: address <%s> not owned by user %s", a,
					 s->account);
			}
		}
	}
	free(addrs);
	return code;
}

/* Submission (RFC 6409) at the end of data: the From: addresses must be
 * the user's (8.1 sender check, as for MAIL FROM), and a Message-ID and a
 * Date are added when missing (8.2, 8.3), right after our trace lines;
 * nothing else of the message changes.  Returns 0 (the spool file is
 * ready), or the reply code with the reply in why. */
static int submit_check(struct smtp_session *s, struct smtp_txn *t, char *why, size_t whysz)
{
	int rfd = open(t->spool_path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0) {
		snprintf(why, whysz, "451 4.3.0 Error: could not store the message, try again later");
		return 451;
	}
	size_t cap = t->trace_len + SMTP_SUBMIT_HEADER_MAX;
	char *buf = xmalloc(cap);
	ssize_t got = read_at(rfd, buf, cap, 0);
	struct stat st;
	int code = 0;
	struct header h = {0};
	if (got < (ssize_t)t->trace_len || fstat(rfd, &st) < 0) {
		code = 451;
		snprintf(why, whysz, "451 4.3.0 Error: could not store the message, try again later");
		goto out;
	}
	const char *msg = buf + t->trace_len;
	size_t msg_len = (size_t)got - t->trace_len;
	if (header_parse(msg, msg_len, &h) != HEADER_OK ||
	    (!h.has_body_separator && (off_t)got < st.st_size)) {
		code = 554;
		snprintf(why, whysz, "554 5.6.0 Error: message header section not understood");
		goto out;
	}
	code = check_from(s, &h, why, whysz);
	if (code != 0) {
		char esc[200];
		log_escape(esc, sizeof esc, why, strlen(why));
		log_info("smtp id=%s session=%s client=%s action=submit user=%s result=refused "
			 "reply=\"%s\"",
			 t->id, s->id, s->ip, s->account, esc);
		goto out;
	}
	bool need_id = header_find(&h, "Message-ID") == NULL;
	bool need_date = header_find(&h, "Date") == NULL;
	if (!need_id && !need_date)
		goto out;

	struct buf add = BUF_INIT;
	buf_init(&add, 1024);
	int r = 0;
	if (need_id)
		r |= buf_printf(&add, "Message-ID: <%s@%s>\r\n", t->id, hostname(s));
	if (need_date) {
		char date[64];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
		r |= buf_printf(&add, "Date: %s\r\n", date);
	}
	if (r != 0 || spool_rewrite(t, false, &add, msg, msg_len, NULL, NULL, "submit") < 0) {
		code = 451;
		snprintf(why, whysz, "451 4.3.0 Error: could not store the message, try again later");
	} else {
		log_info("smtp id=%s session=%s action=submit added=%s%s%s", t->id, s->id,
			 need_id ? "message-id" : "", need_id && need_date ? "," : "",
			 need_date ? "date" : "");
	}
	buf_free(&add);
out:
	header_free(&h);
	free(buf);
	close(rfd);
	return code;
}

/* Ends a transaction whose outcome is known: reply, log, back to
 * commands.  Frees the txn (closing and unlinking its spool file). */
static void txn_done(struct smtp_session *s, struct smtp_txn *t, int code, const char *text)
{
	if (s != NULL)
		reply(s, "%s", text);
	log_txn(t, code);
	txn_free(&t);
	if (s != NULL)
		session_enter(s, SMTP_STATE_CMD);
}

/* --------------------------------------------------------------- groups */

/* The group (store-group.c) that address is, directly or through
 * plus-addressing (so that sales+x@ is no way around the policy): 1 and
 * *g, 0 none, -1 database error. */
static int group_of(struct smtp_session *s, const char *address, struct store_group *g)
{
	int r = store_group_get(s->srv->store, address, g);
	const char *delim = s->srv->cfg->recipient_delimiter;
	const char *at = strrchr(address, '@');
	if (r != 0 || delim == NULL || delim[0] == '\0' || at == NULL)
		return r;
	size_t cut = strcspn(address, delim);
	if (cut == 0 || cut >= (size_t)(at - address))
		return 0;
	char base[ADDR_PATH_MAX + 1];
	snprintf(base, sizeof base, "%.*s%s", (int)cut, address, at);
	return store_group_get(s->srv->store, base, g);
}

/* Is who one of the senders the group's policy lets post?  1, 0, -1. */
static int group_sender_ok(struct smtp_session *s, const struct store_group *g, const char *who)
{
	if (who[0] == '\0')
		return 0; /* the null sender is nobody's */
	if (g->policy == STORE_GROUP_MEMBERS)
		return store_group_is_member(s->srv->store, g->address, who);
	const char *at = strrchr(who, '@');
	int ours = at == NULL ? 0 : store_domain_exists(s->srv->store, at + 1);
	return ours < 0 ? -1 : ours > 0;
}

/* RCPT TO a group: its posting policy, against the authenticated account
 * or the envelope sender on submission, the envelope sender on port 25
 * (which the sender states: docs/admin.md "Groups").  One group per
 * transaction, since its List-Id and Reply-To go into the one copy of
 * the message: another is answered 452, which makes the client send to
 * it in a transaction of its own (RFC 5321 4.5.3.1.10).  Returns 0 to go
 * on, or 1 after the refusal was answered. */
static int group_rcpt(struct smtp_session *s, struct smtp_txn *t, const char *address)
{
	struct store_group g;
	int r = group_of(s, address, &g);
	if (r == 0)
		return 0;
	int ok = r < 0 ? -1 : 1;
	if (ok > 0 && g.policy != STORE_GROUP_ANYONE) {
		ok = group_sender_ok(s, &g, t->from);
		if (ok == 0 && s->srv->submission && s->authed)
			ok = group_sender_ok(s, &g, s->account);
	}
	if (ok < 0) {
		reply(s, "451 4.3.0 Error: temporary failure, try again later");
	} else if (ok == 0) {
		char esc[300];
		log_escape(esc, sizeof esc, t->from, strlen(t->from));
		log_info("smtp session=%s client=%s action=rcpt group=%s from=<%s> result=refused "
			 "reason=policy_%s",
			 s->id, s->ip, g.address, esc, store_group_policy_name(g.policy));
		reply(s, "550 5.7.1 Only %s may post to %s",
		      g.policy == STORE_GROUP_MEMBERS ? "members" : "senders of our domains",
		      g.address);
	} else if (t->group != NULL && strcmp(t->group->address, g.address) != 0) {
		reply(s, "452 4.5.3 Error: one group per message; send to %s separately", g.address);
		ok = 0;
	}
	if (ok <= 0) {
		t->n_refused++;
		return 1;
	}
	if (t->group == NULL) {
		t->group = xmalloc(sizeof *t->group);
		*t->group = g;
	}
	return 0;
}

/* The fields a group's copy loses: any List-Id (the copy now comes from
 * this list), and Reply-To when the group replaces it. */
static bool group_drop(const struct header_field *f, void *ctx)
{
	const struct store_group *g = ctx;
	return strutil_eq_ci(f->name, f->name_len, "List-Id") ||
	       (g->reply_to == STORE_GROUP_REPLY_GROUP &&
		strutil_eq_ci(f->name, f->name_len, "Reply-To"));
}

/* A message to a group: adds "List-Id: <list-id>" (RFC 2919) and the
 * group's Reply-To after our trace lines.  0, or -1 (cannot keep it). */
static int group_headers(struct smtp_txn *t)
{
	const struct store_group *g = t->group;
	size_t cap = SMTP_SUBMIT_HEADER_MAX;
	char *msg = xmalloc(cap);
	ssize_t got = read_at(t->spool_fd, msg, cap, (off_t)t->trace_len);
	struct header h = {0};
	/* A header section too long to read here keeps its fields: the
	 * ones we add come first, which is where readers look. */
	bool parsed = got >= 0 && header_parse(msg, (size_t)got, &h) == HEADER_OK &&
		      (h.has_body_separator || (size_t)got < cap);
	const struct header_field *reply_to = parsed ? header_find(&h, "Reply-To") : NULL;
	const struct header_field *from = parsed ? header_find(&h, "From") : NULL;
	struct buf add;
	buf_init(&add, 0);
	int r = got < 0 ? -1 : buf_printf(&add, "List-Id: <%s>\r\n", g->list_id);
	if (g->reply_to == STORE_GROUP_REPLY_GROUP)
		r |= buf_printf(&add, "Reply-To: <%s>\r\n", g->address);
	else if (g->reply_to == STORE_GROUP_REPLY_SENDER && reply_to == NULL && from != NULL)
		r |= buf_printf(&add, "Reply-To:%s%.*s\r\n",
				from->value_len && (from->value[0] == ' ' || from->value[0] == '\t')
				    ? ""
				    : " ",
				(int)from->value_len, from->value);
	header_free(&h);
	if (r == 0)
		r = spool_rewrite(t, false, &add, msg, got < 0 ? 0 : (size_t)got,
				  parsed ? group_drop : NULL, (void *)g, "group");
	if (r == 0)
		log_info("smtp id=%s action=group group=%s list_id=<%s> reply_to=%s", t->id,
			 g->address, g->list_id, store_group_reply_name(g->reply_to));
	buf_free(&add);
	free(msg);
	return r;
}

/* ------------------------------------------------- sender authentication */

/* A message received on port 25 waiting for its SPF, DKIM and DMARC
 * results (src/mailauth/msgauth.h); the session waits meanwhile. */
struct smtp_check {
	struct smtp_session *s;
	struct smtp_txn *t;
	char *msg; /* the message as received (after our trace lines) */
	size_t len;
	struct msgauth *ma;
	struct msgauth_request req;
	char from_domain[ADDR_DOMAIN_MAX + 1];
};

static void commit_enqueue(struct smtp_session *s, struct smtp_txn *t);
static void milter_stage(struct smtp_session *s, struct smtp_txn *t);

/* The worker's resolver for the checks, (re)made for the configured
 * dns.resolver; NULL with a log line when it cannot be made. */
static struct dns_resolver *check_dns(struct smtp_server *srv)
{
	const char *want = srv->cfg->dns_resolver;
	if (srv->dns != NULL && strcmp(srv->dns_for, want) != 0 && srv->n_checks == 0)
		dns_resolver_free(&srv->dns);
	if (srv->dns == NULL) {
		char err[256];
		unsigned t = (unsigned)srv->cfg->mailauth_timeout;
		srv->dns = dns_resolver_new(srv->base, want, t, err, sizeof err);
		if (srv->dns == NULL) {
			log_error("smtp action=mailauth error=\"%s\"", err);
			return NULL;
		}
		snprintf(srv->dns_for, sizeof srv->dns_for, "%s", want);
	}
	return srv->dns;
}

static void check_free(struct smtp_check **cp)
{
	struct smtp_check *c = *cp;
	if (c == NULL)
		return;
	msgauth_free(&c->ma);
	free(c->msg);
	c->s->srv->n_checks--;
	free(c);
	*cp = NULL;
}

/* An Authentication-Results field that claims to be ours in a message
 * from outside (RFC 8601 5: a forgery). */
static bool forged_auth_results(const struct header_field *f, void *ctx)
{
	struct smtp_check *c = ctx;
	if (!strutil_eq_ci(f->name, f->name_len, "Authentication-Results") ||
	    !msgauth_is_ours(f->value, f->value_len, hostname(c->s)))
		return false;
	log_warn("smtp id=%s action=mailauth note=\"removed a forged Authentication-Results "
		 "field\"",
		 c->t->id);
	return true;
}

/* Rewrites the spool file as: our Return-Path, the Authentication-Results
 * field, our Received, then the message without any
 * Authentication-Results field that claims to be ours (RFC 8601 5: a
 * forgery).  0, or -1 (the message cannot be kept now). */
static int add_auth_results(struct smtp_session *s, struct smtp_check *c, const struct buf *ar)
{
	(void)s;
	if (spool_rewrite(c->t, true, ar, c->msg, c->len, forged_auth_results, c, "mailauth") < 0)
		return -1;
	c->t->trace_len += ar->len;
	return 0;
}

static const char *short_dkim(const struct msgauth_result *r)
{
	if (r->n_dkim == 0)
		return "none";
	for (size_t i = 0; i < r->n_dkim; i++)
		if (r->dkim[i].status == DKIM_PASS)
			return "pass";
	return dkim_status_name(r->dkim[0].status);
}

/* Keeps a DMARC evaluation for the aggregate report to the domain, when
 * its record asks for reports (rua=) and we send them. */
static void dmarc_record(struct smtp_session *s, const struct msgauth_result *r, bool override)
{
	if (!r->dmarc_checked || !r->have_record || r->record.n_rua == 0 ||
	    !s->srv->cfg->mailauth_reports)
		return;
	const struct dmarc_record *rec = &r->record;
	char policy[128], rua[1024] = "";
	snprintf(policy, sizeof policy, "p=%s sp=%s pct=%u adkim=%c aspf=%c",
		 dmarc_policy_name(rec->p), dmarc_policy_name(rec->sp), rec->pct,
		 rec->adkim_strict ? 's' : 'r', rec->aspf_strict ? 's' : 'r');
	size_t o = 0;
	for (size_t i = 0; i < rec->n_rua && o < sizeof rua; i++) {
		int n = rec->rua[i].max_bytes
			    ? snprintf(rua + o, sizeof rua - o, "%s%s!%llu", o ? " " : "",
				       rec->rua[i].uri, (unsigned long long)rec->rua[i].max_bytes)
			    : snprintf(rua + o, sizeof rua - o, "%s%s", o ? " " : "", rec->rua[i].uri);
		if (n < 0 || (size_t)n >= sizeof rua - o)
			break;
		o += (size_t)n;
	}
	/* an ARC override is reported as not applying the policy */
	bool fail = r->dmarc.result == DMARC_RESULT_FAIL && !override;
	struct store_dmarc_event e = {
	    .time = (int64_t)time(NULL),
	    .policy_domain = r->dmarc_domain,
	    .from_domain = r->from_domain,
	    .ip = s->ip,
	    .disposition = dmarc_policy_name(fail ? r->dmarc.disposition : DMARC_POLICY_NONE),
	    .dkim = r->dmarc.dkim_aligned ? "pass" : "fail",
	    .spf = r->dmarc.spf_aligned ? "pass" : "fail",
	    .dkim_domain = r->n_dkim ? r->dkim[0].domain : "",
	    .dkim_result = r->n_dkim ? dkim_status_name(r->dkim[0].status) : "none",
	    .spf_domain = r->spf_domain,
	    .spf_result = spf_result_name(r->spf),
	    .policy = policy,
	    .rua = rua,
	};
	char err[256];
	if (store_dmarc_record(s->srv->store, &e, err, sizeof err) < 0)
		log_error("smtp action=dmarc_record error=\"%s\"", err);
}

/* Keeps a DMARC failure report (RFC 7489 7.3) for the queue runner to
 * send, when we send them, the domain's record has ruf= and its fo= asks
 * for one; action is what we did with the message. */
static void dmarc_failure(struct smtp_session *s, const struct smtp_check *c,
			  const struct msgauth_result *r, const char *action)
{
	const struct config *cfg = s->srv->cfg;
	if (!cfg->mailauth_failure_reports || !r->dmarc_checked || !r->have_record ||
	    r->record.n_ruf == 0 || !dmarc_failure_wanted(r->record.fo, &r->dmarc))
		return;
	char ruf[1024] = "";
	size_t o = 0;
	for (size_t i = 0; i < r->record.n_ruf && o < sizeof ruf; i++) {
		int n = snprintf(ruf + o, sizeof ruf - o, "%s%s", o ? " " : "", r->record.ruf[i].uri);
		if (n < 0 || (size_t)n >= sizeof ruf - o)
			break;
		o += (size_t)n;
	}
	struct buf ar, msg;
	buf_init(&ar, 0);
	buf_init(&msg, 0);
	char id[25], email[300];
	fsutil_unique_id(id);
	snprintf(email, sizeof email, "postmaster@%s", hostname(s));
	struct dmarc_failure_meta m = {
	    .org_name = hostname(s),
	    .email = email,
	    .report_id = id,
	    .from_domain = r->from_domain,
	    .ip = s->ip,
	    .mail_from = c->t->from,
	    .delivery = !strcmp(action, "reject") ? "reject"
			: !strcmp(action, "junk")     ? "spam"
						      : "delivered",
	    .dkim = r->dkim,
	    .n_dkim = r->n_dkim,
	    .dkim_aligned = r->dmarc.dkim_aligned,
	    .spf_aligned = r->dmarc.spf_aligned,
	    .spf_domain = r->spf_domain,
	    .spf_record = r->spf_record,
	    .headers = c->msg,
	    .headers_len = c->len,
	    .arrival = time(NULL),
	};
	char err[256] = "";
	int kept = -1;
	if (msgauth_header(r, hostname(s), &c->req, &ar) == 0 && buf_putc(&ar, '\0') == 0) {
		m.auth_results = ar.data;
		if (dmarc_failure_message(&m, time(NULL), &msg) == 0)
			kept = store_dmarc_failure_add(
			    s->srv->store, (int64_t)time(NULL), r->dmarc_domain, ruf, msg.data,
			    msg.len, (unsigned)cfg->mailauth_failure_report_limit, err, sizeof err);
	}
	if (kept < 0)
		log_error("smtp id=%s action=dmarc_failure_report domain=%s error=\"%s\"", c->t->id,
			  r->dmarc_domain, err[0] ? err : "could not make the report");
	else if (kept == 0)
		log_info("smtp id=%s action=dmarc_failure_report domain=%s result=limited "
			 "why=\"mailauth.failure_report_limit reports this hour already\"",
			 c->t->id, r->dmarc_domain);
	else
		log_info("smtp id=%s action=dmarc_failure_report domain=%s result=kept", c->t->id,
			 r->dmarc_domain);
	buf_free(&ar);
	buf_free(&msg);
}

/* True if word is one of the space-separated words of list
 * (case-insensitively). */
static bool word_in_list(const char *word, const char *list)
{
	size_t n = strlen(word);
	for (const char *p = list; *p != '\0';) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t k = strcspn(p, " ,");
		if (k == n && k > 0 && strutil_eq_ci(p, k, word))
			return true;
		p += k;
	}
	return false;
}

/* The checks are done: refuse (DMARC p=reject), or add the
 * Authentication-Results field and go on to the commit. */
static void check_done(void *ctx, const struct msgauth_result *r)
{
	struct smtp_check *c = ctx;
	struct smtp_session *s = c->s;
	struct smtp_txn *t = c->t;
	const struct config *cfg = s->srv->cfg;
	s->check = NULL;
	bool dmarc_fail = r->dmarc_checked && r->dmarc.result == DMARC_RESULT_FAIL;
	/* RFC 8617 7.2: a local policy may trust the ARC chain of a sealer
	 * it knows (a mailing list, a forwarder) over a DMARC failure. */
	bool arc_override = false;
	if (dmarc_fail && r->arc.status == ARC_PASS && r->arc.domain[0] != '\0' &&
	    word_in_list(r->arc.domain, cfg->mailauth_arc_trusted)) {
		dmarc_fail = false;
		arc_override = true;
	}
	enum dmarc_policy dis = dmarc_fail ? r->dmarc.disposition : DMARC_POLICY_NONE;
	/* p=reject: what each recipient's domain wants (`tern domain set
	 * D --dmarc-reject`, else mailauth.dmarc_reject); refused only when
	 * every recipient's domain says reject, else Junk for those that say
	 * reject or junk. */
	bool *junk_of = NULL;
	const char *action = dis == DMARC_POLICY_QUARANTINE ? "junk" : "deliver";
	if (dis == DMARC_POLICY_REJECT) {
		junk_of = xcalloc(t->n_local ? t->n_local : 1, sizeof *junk_of);
		size_t n_reject = 0, n_junk = 0;
		for (size_t j = 0; j < t->n_local; j++) {
			char want[16];
			const char *d = addr_domain_of(t->local_to[j].addr);
			if (store_dmarc_action_get(s->srv->store, d, want) != 1)
				snprintf(want, sizeof want, "%s", cfg->mailauth_dmarc_reject);
			if (!strcmp(want, "reject"))
				n_reject++;
			if (strcmp(want, "tag") != 0) {
				junk_of[j] = true;
				n_junk++;
			}
		}
		bool remote_rejects = !strcmp(cfg->mailauth_dmarc_reject, "reject");
		if (n_reject == t->n_local && (t->n_remote == 0 || remote_rejects))
			action = "reject";
		else
			action = n_junk > 0 ? "junk" : "tag";
	}
	log_info("smtp id=%s session=%s action=mailauth spf=%s dkim=%s dmarc=%s from_domain=%s "
		 "disposition=%s%s%s%s",
		 t->id, s->id, spf_result_name(r->spf), short_dkim(r),
		 r->dmarc_checked ? dmarc_result_name(r->dmarc.result) : "none",
		 r->from_domain[0] ? r->from_domain : "-", action,
		 arc_override ? " dmarc_override=arc:" : "", arc_override ? r->arc.domain : "",
		 r->timed_out ? " note=\"some DNS answers did not come in time\"" : "");
	dmarc_record(s, r, arc_override);
	dmarc_failure(s, c, r, action);
	if (!strcmp(action, "reject")) {
		char line[512];
		snprintf(line, sizeof line,
			 "550 5.7.1 Message refused: the domain %s says mail from it must pass "
			 "DMARC (SPF or DKIM for that domain), and this one does not",
			 r->from_domain);
		free(junk_of);
		check_free(&c);
		txn_done(s, t, 550, line);
		process_input(s);
		return;
	}
	if (junk_of != NULL) {
		t->junk_of = junk_of; /* per local recipient, now t's */
		junk_of = NULL;
	} else {
		t->junk = !strcmp(action, "junk");
	}
	struct buf res;
	buf_init(&res, 0);
	if (msgauth_results(r, &c->req, &res) == 0 && buf_putc(&res, '\0') == 0) {
		t->arc_results = res.data; /* now t's */
		res.data = NULL;
	}
	buf_free(&res);
	t->arc_cv = r->arc.status;
	/* for the content stage: what was verified of the sender */
	struct smtp_spam_sender *snd = &t->sender;
	smtp_parse_from_address(c->msg, c->len, snd->from);
	snprintf(snd->mail_from, sizeof snd->mail_from, "%s", t->from);
	snd->checked = true;
	snd->spf = r->spf;
	/* with p=quarantine or p=reject the policy itself decides (Junk,
	 * refusal, or what the domain's --dmarc-reject says) */
	snd->dmarc_fail = dmarc_fail && dis == DMARC_POLICY_NONE;
	snd->from_verified = r->dmarc_checked && r->dmarc.result == DMARC_RESULT_PASS &&
			     snd->from[0] != '\0' &&
			     !strcasecmp(addr_domain_of(snd->from), r->from_domain);
	snd->mail_from_verified = r->spf == SPF_PASS && !r->spf_helo && t->from[0] != '\0' &&
				  !strcasecmp(addr_domain_of(t->from), r->spf_domain);
	struct buf ar;
	buf_init(&ar, 0);
	int ok = msgauth_header(r, hostname(s), &c->req, &ar) == 0 &&
		 add_auth_results(s, c, &ar) == 0;
	buf_free(&ar);
	check_free(&c);
	if (!ok) {
		txn_done(s, t, 451, "451 4.3.0 Error: could not store the message, try again later");
		process_input(s);
		return;
	}
	milter_stage(s, t);
}

/* Starts the checks of a message received on port 25 from a client that
 * is not trusted; true if they run (the session waits for check_done). */
static bool check_start(struct smtp_session *s, struct smtp_txn *t)
{
	struct smtp_server *srv = s->srv;
	const struct config *cfg = srv->cfg;
	if (srv->submission || !cfg->mailauth_check || netaddr_in_list(s->ip, cfg->mailauth_trusted))
		return false;
	struct dns_resolver *dns = check_dns(srv);
	if (dns == NULL)
		return false;
	struct stat st;
	if (fstat(t->spool_fd, &st) < 0 || (size_t)st.st_size < t->trace_len)
		return false;
	struct smtp_check *c = xcalloc(1, sizeof *c);
	c->len = (size_t)st.st_size - t->trace_len;
	c->msg = xmalloc(c->len + 1);
	if (read_at(t->spool_fd, c->msg, c->len, (off_t)t->trace_len) != (ssize_t)c->len) {
		free(c->msg);
		free(c);
		return false;
	}
	c->s = s;
	c->t = t;
	srv->n_checks++;
	smtp_parse_from_domain(c->msg, c->len, c->from_domain);
	c->req = (struct msgauth_request){
	    .ip = s->ip,
	    .helo = s->helo,
	    .mail_from = t->from,
	    .from_domain = c->from_domain,
	    .receiver = hostname(s),
	    .msg = c->msg,
	    .len = c->len,
	    .timeout_s = (unsigned)cfg->mailauth_timeout,
	};
	s->check = c;
	session_enter(s, SMTP_STATE_COMMIT);
	c->ma = msgauth_start(srv->base, dns, &c->req, check_done, c);
	return true;
}

/* An X-Spam-* field that came with the message: not ours, dropped. */
static bool spam_drop(const struct header_field *f, void *ctx)
{
	(void)ctx;
	return strutil_eq_ci(f->name, f->name_len, "X-Spam-Score") ||
	       strutil_eq_ci(f->name, f->name_len, "X-Spam-Status");
}

/* The content stage (port 25, clients not in mailauth.trusted;
 * docs/spam.md): a score per local recipient (smtp-spam.c), our X-Spam-*
 * fields (those of the recipient with the highest score), or 550 when
 * every recipient's score refuses.  0: go on; 1: answered (refused, or
 * 451 when the spool file could not be rewritten).  A recipient whose
 * score fails goes to the INBOX. */
static int spam_stage(struct smtp_session *s, struct smtp_txn *t)
{
	struct smtp_server *srv = s->srv;
	const struct config *cfg = srv->cfg;
	if (srv->submission || !cfg->spam_content_check || t->n_local == 0 ||
	    netaddr_in_list(s->ip, cfg->mailauth_trusted))
		return 0;
	char *msg = xmalloc(SPAM_TOKEN_SCAN_MAX);
	ssize_t got = read_at(t->spool_fd, msg, SPAM_TOKEN_SCAN_MAX, (off_t)t->trace_len);
	if (got < 0) {
		log_error("smtp id=%s action=spam error=\"%s\"", t->id, strerror(errno));
		free(msg);
		return 0;
	}
	if (!t->sender.checked) {
		smtp_parse_from_address(msg, (size_t)got, t->sender.from);
		snprintf(t->sender.mail_from, sizeof t->sender.mail_from, "%s", t->from);
	}
	smtp_spam_score(srv->store, cfg, msg, (size_t)got, &t->sender, t->local, t->n_local,
			&t->spam);
	t->spam_scored = true;
	static const char *const verdicts[] = {"inbox", "junk", "reject"};
	for (size_t j = 0; j < t->n_local; j++) {
		const struct smtp_spam_rcpt *r = &t->spam.r[j];
		char score[32];
		smtp_spam_score_text(r->score10, score, sizeof score);
		log_info("smtp id=%s session=%s action=spam rcpt=<%s> score=%s verdict=%s "
			 "junk_score=%llu reject_score=%llu status=\"%s\"",
			 t->id, s->id, t->local_to[j].addr, r->failed ? "-" : score,
			 r->failed ? "failed" : verdicts[r->verdict],
			 (unsigned long long)(r->failed ? cfg->spam_junk_score : r->junk_at),
			 (unsigned long long)(r->failed ? cfg->spam_content_reject_score
							: r->reject_at),
			 r->failed ? "the classifier failed; delivered to the INBOX" : r->status);
	}
	bool waiting = s->state == SMTP_STATE_COMMIT;
	int ret = 0;
	if (smtp_spam_all_reject(&t->spam) && t->n_remote == 0) {
		char score[32], line[256];
		smtp_spam_score_text(t->spam.r[t->spam.top].score10, score, sizeof score);
		snprintf(line, sizeof line,
			 "550 5.7.1 Message refused: its content looks like spam (score %s; this "
			 "server refuses from %llu)",
			 score, (unsigned long long)t->spam.r[t->spam.top].reject_at);
		txn_done(s, t, 550, line);
		ret = 1;
	} else if (!t->spam.r[t->spam.top].failed) {
		struct header h = {0};
		bool parsed = header_parse(msg, (size_t)got, &h) == HEADER_OK &&
			      (h.has_body_separator || (size_t)got < SPAM_TOKEN_SCAN_MAX);
		header_free(&h);
		struct buf add;
		buf_init(&add, 0);
		if (smtp_spam_headers(&t->spam, t->spam.top, cfg, &add) < 0 ||
		    spool_rewrite(t, false, &add, msg, (size_t)got, parsed ? spam_drop : NULL, NULL,
				  "spam") < 0) {
			txn_done(s, t, 451,
				 "451 4.3.0 Error: could not store the message, try again later");
			ret = 1;
		}
		buf_free(&add);
	}
	free(msg);
	if (ret == 1 && waiting)
		process_input(s);
	return ret;
}

/* A user's message is accepted on submission: its recipients go on the
 * user's spam allow list (spam.allow_sent_recipients; docs/spam.md
 * "Sender lists").  A failure is logged and changes nothing else. */
static void note_sent(struct smtp_session *s, const struct smtp_txn *t)
{
	if (!s->srv->submission || !s->authed || !s->srv->cfg->spam_allow_sent_recipients ||
	    t->n_rcpts == 0)
		return;
	struct store_account *a = NULL;
	if (store_account_open_id(s->srv->store, s->account_id, &a) != 1)
		return;
	const char **addrs = xcalloc(t->n_rcpts, sizeof *addrs);
	for (size_t i = 0; i < t->n_rcpts; i++)
		addrs[i] = t->rcpts[i].addr;
	char err[256];
	if (store_spamlist_note_sent(a, addrs, t->n_rcpts, (int64_t)time(NULL), err, sizeof err) < 0)
		log_warn("smtp id=%s session=%s action=spam_allow_sent error=\"%s\"", t->id, s->id,
			 err);
	free(addrs);
}

/* ---------------------------------------------------------- milters */

/* The milters have spoken (smtp-milter.h): refuse, discard, or apply
 * their header changes and quarantine, then the content stage and the
 * commit. */
static void milter_done(void *ctx, struct smtp_milter_result *r)
{
	struct smtp_session *s = ctx;
	struct smtp_txn *t = s->milter_txn;
	s->milter_txn = NULL;
	char esc[640];
	log_escape(esc, sizeof esc, r->reply, strlen(r->reply));
	if (r->verdict == SMTP_MILTER_REJECT || r->verdict == SMTP_MILTER_TEMPFAIL) {
		int code = r->verdict == SMTP_MILTER_REJECT ? 550 : 451;
		if (r->reply[0] >= '4' && r->reply[0] <= '5')
			code = (r->reply[0] - '0') * 100 + (r->reply[1] - '0') * 10 + (r->reply[2] - '0');
		log_info("smtp id=%s session=%s action=milter milter=%s result=%s reply=\"%s\"", t->id,
			 s->id, r->by, r->verdict == SMTP_MILTER_REJECT ? "reject" : "tempfail", esc);
		txn_done(s, t, code, r->reply); /* r is the milter's: free it after */
		smtp_milter_free(&s->milter);
		if (code == 421)
			close_with(s, NULL); /* RFC 5321 4.2.3: 421 closes */
		else
			process_input(s);
		return;
	}
	if (r->verdict == SMTP_MILTER_DISCARD) {
		log_info("smtp id=%s session=%s action=milter milter=%s result=discard", t->id, s->id,
			 r->by);
		smtp_milter_free(&s->milter);
		char line[80];
		snprintf(line, sizeof line, "250 2.0.0 Ok: queued as %s", t->id);
		txn_done(s, t, 250, line);
		process_input(s);
		return;
	}
	if (r->modified) {
		size_t tl;
		int fd = smtp_milter_rewrite(t->spool_fd, t->spool_path, s->milter_skip, r, &tl);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			log_error("smtp id=%s action=milter_header error=\"%s\"", t->id, strerror(errno));
			if (fd >= 0)
				close(fd);
			smtp_milter_free(&s->milter);
			txn_done(s, t, 451, "451 4.3.0 Error: could not store the message, try again later");
			process_input(s);
			return;
		}
		close(t->spool_fd);
		t->spool_fd = fd;
		t->trace_len = tl;
		t->size = (uint64_t)st.st_size - tl;
	}
	if (r->quarantine) {
		t->junk = true; /* what would go to the INBOX goes to Junk */
		log_info("smtp id=%s session=%s action=milter milter=%s result=quarantine "
			 "reason=\"%s\"",
			 t->id, s->id, r->quarantine_by, r->quarantine_reason);
	}
	log_info("smtp id=%s session=%s action=milter result=accept modified=%s", t->id, s->id,
		 r->modified ? "yes" : "no");
	smtp_milter_free(&s->milter);
	commit_enqueue(s, t);
}

/* The milters (milter.servers), when there are any for this listener:
 * the session waits for milter_done; else straight on. */
static void milter_stage(struct smtp_session *s, struct smtp_txn *t)
{
	struct smtp_server *srv = s->srv;
	if (!smtp_milter_wanted(srv->cfg, srv->submission)) {
		commit_enqueue(s, t);
		return;
	}
	/* The milters see the message after our Return-Path line: our
	 * Authentication-Results and Received fields, then the message. */
	char first[1200];
	ssize_t got = read_at(t->spool_fd, first, sizeof first, 0);
	const char *nl = got > 0 ? memchr(first, '\n', (size_t)got) : NULL;
	s->milter_skip = nl == NULL ? 0 : (size_t)(nl - first) + 1;
	const char **rcpts = xcalloc(t->n_rcpts ? t->n_rcpts : 1, sizeof *rcpts);
	for (size_t i = 0; i < t->n_rcpts; i++)
		rcpts[i] = t->rcpts[i].addr;
	struct sockaddr_storage *sa = &s->sa;
	uint16_t port = sa->ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)sa)->sin_port)
			: sa->ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)sa)->sin6_port)
						    : 0;
	struct smtp_milter_request req = {
	    .queue_id = t->id,
	    .hostname = hostname(s),
	    .daemon = srv->submission ? "submission" : "smtp",
	    .client_ip = s->ip,
	    .client_port = port,
	    .helo = s->helo,
	    .from = t->from,
	    .auth_user = s->authed ? s->account : "",
	    .rcpts = rcpts,
	    .n_rcpts = t->n_rcpts,
	    .spool_fd = t->spool_fd,
	    .skip = s->milter_skip,
	    .trace_len = t->trace_len,
	};
	s->milter_txn = t;
	session_enter(s, SMTP_STATE_COMMIT);
	s->milter = smtp_milter_start(srv->base, srv->cfg, &req, s->id, milter_done, s);
	free(rcpts);
}

/* Adds a finished message to the worker's commit batch. */
static void commit_enqueue(struct smtp_session *s, struct smtp_txn *t)
{
	struct smtp_server *srv = s->srv;
	if (spam_stage(s, t) != 0)
		return;
	if (t->group != NULL && group_headers(t) < 0) {
		/* After the checks (port 25) the session is waiting, not
		 * reading: commands pipelined after the data are read now. */
		bool waiting = s->state == SMTP_STATE_COMMIT;
		txn_done(s, t, 451, "451 4.3.0 Error: could not store the message, try again later");
		if (waiting)
			process_input(s);
		return;
	}
	srv->pending = xreallocarray(srv->pending, srv->n_pending + 1, sizeof *srv->pending);
	srv->pending[srv->n_pending].s = s;
	srv->pending[srv->n_pending].t = t;
	srv->n_pending++;
	session_enter(s, SMTP_STATE_COMMIT);
	/* Runs after the other sessions' callbacks of this loop iteration, so
	 * that messages finishing together share one commit (group commit). */
	event_active(srv->commit_ev, EV_TIMEOUT, 0);
}

/* Whether a message of size bytes fits none of the accounts ids[0..n):
 * 0 one has room (or its quota cannot be read: accept), STORE_QUOTA_FULL
 * all are full, STORE_QUOTA_NEVER it is larger than every limit. */
static int quota_none_fits(struct smtp_session *s, const int64_t *ids, size_t n, uint64_t size)
{
	size_t never = 0;
	for (size_t i = 0; i < n; i++) {
		enum store_quota_fit f = store_quota_fits(s->srv->store, ids[i], size, 1);
		if (f == STORE_QUOTA_FITS || f == STORE_QUOTA_UNKNOWN)
			return 0;
		never += f == STORE_QUOTA_NEVER;
	}
	return n == 0 ? 0 : never == n ? STORE_QUOTA_NEVER : STORE_QUOTA_FULL;
}

/* End of data, quotas (docs/smtp.md "Quotas"): now that the size is
 * known, a message none of whose local accounts has room for it (and
 * that has no remote recipient) is refused whole, 452 4.2.2 (552 5.2.2
 * when it is larger than every limit itself), before anything is stored
 * or acknowledged; the other recipients of the transaction, if any, are
 * in the same state, so nobody else waits.  Otherwise it is delivered
 * to all, even past a limit.  0, or the reply code with why filled. */
static int quota_refusal(struct smtp_session *s, const struct smtp_txn *t, char *why,
			 size_t whysz)
{
	uint64_t size = t->size + t->trace_len;
	int r = t->n_remote > 0 ? 0 : quota_none_fits(s, t->local, t->n_local, size);
	if (r == 0)
		return 0;
	log_info("smtp id=%s action=data_quota size=%llu result=%s", t->id,
		 (unsigned long long)size, r == STORE_QUOTA_NEVER ? "never" : "full");
	if (r == STORE_QUOTA_NEVER) {
		snprintf(why, whysz, "552 5.2.2 Mailbox full: the message is larger than its quota");
		return 552;
	}
	snprintf(why, whysz, "452 4.2.2 Mailbox full, try again later");
	return 452;
}

/* End of data.  A message that fails a check is refused at once; a good one
 * is checked (port 25: SPF, DKIM, DMARC), then joins the worker's commit
 * batch, and the session waits (reading no commands) until commit_cb has
 * made it durable and replied. */
static void txn_finish(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	char why[600];
	int code;
	s->txn = NULL;
	spool_flush(t);
	if (t->too_big)
		txn_done(s, t, 552, "552 5.3.4 Message size exceeds fixed maximum message size");
	else if (t->bad_eol)
		txn_done(s, t, 554, "554 5.5.2 Error: bare CR or LF in message (RFC 5321 2.3.8)");
	else if (t->line_too_long)
		txn_done(s, t, 554, "554 5.5.2 Error: line too long");
	else if (t->io_error)
		txn_done(s, t, 451, "451 4.3.0 Error: could not store the message, try again later");
	else if ((code = quota_refusal(s, t, why, sizeof why)) != 0)
		txn_done(s, t, code, why);
	else if (s->srv->submission && (code = submit_check(s, t, why, sizeof why)) != 0)
		txn_done(s, t, code, why);
	else if (!check_start(s, t))
		milter_stage(s, t);
}


/* The commit's view of t (smtp-commit.h): pointers into t. */
static struct smtp_commit_msg commit_msg(const struct smtp_server *srv, const struct smtp_txn *t)
{
	return (struct smtp_commit_msg){
	    .id = t->id,
	    .client = t->client,
	    .spool_path = t->spool_path,
	    .spool_fd = t->spool_fd,
	    .from = t->from,
	    .submitted = srv->submission,
	    .rcpts = t->rcpts,
	    .n_rcpts = t->n_rcpts,
	    .local = t->local,
	    .local_to = t->local_to,
	    .local_via = (const char(*)[STORE_VIA_MAX])t->local_via,
	    .n_local = t->n_local,
	    .remote = (const char(*)[256])t->remote,
	    .remote_notify = t->remote_notify,
	    .remote_orcpt = (const char(*)[SMTP_DSN_ORCPT_MAX + 1])t->remote_orcpt,
	    .n_remote = t->n_remote,
	    .ok_local = t->ok_local,
	    .ok_local_orcpt = (const char(*)[SMTP_DSN_ORCPT_MAX + 1])t->ok_local_orcpt,
	    .ok_local_expanded = t->ok_local_expanded,
	    .n_ok_local = t->n_ok_local,
	    .dsn_ret = t->dsn_ret,
	    .dsn_envid = t->dsn_envid,
	    .requiretls = t->requiretls,
	    .arc_results = t->arc_results,
	    .arc_cv = t->arc_cv,
	    .spam = t->spam_scored ? &t->spam : NULL,
	    .junk = t->junk,
	    .junk_of = t->junk_of,
	};
}

/* Makes the batch of finished messages durable (smtp_commit_batch, the
 * group commit) and answers their clients: 250 only for a message that
 * is durable everywhere. */
static void commit_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_server *srv = ctx;
	struct smtp_pending *batch = srv->pending;
	size_t n = srv->n_pending;
	srv->pending = NULL;
	srv->n_pending = 0;
	if (n == 0)
		return;
	struct smtp_commit_msg *msgs = xcalloc(n, sizeof *msgs);
	struct smtp_commit_result *res = xcalloc(n, sizeof *res);
	for (size_t i = 0; i < n; i++)
		msgs[i] = commit_msg(srv, batch[i].t);
	smtp_commit_batch(srv->store, srv->cfg, srv->dkim, msgs, n, res);
	for (size_t i = 0; i < n; i++) {
		struct smtp_txn *t = batch[i].t;
		struct smtp_session *s = batch[i].s;
		if (res[i].code == 250) {
			if (s != NULL)
				note_sent(s, t);
			metrics_inc(srv->submission ? M_RECEIVED_SUBMISSION : M_RECEIVED_SMTP);
		}
		txn_done(s, t, res[i].code, res[i].reply);
		if (s != NULL)
			process_input(s); /* commands pipelined after the data */
	}
	free(res);
	free(msgs);
	free(batch);
}

/* ------------------------------------------------------------- commands */

/* May this session authenticate now?  Only on the submission listeners
 * (port 25 is for other mail servers, which do not log in), and only over
 * TLS, or from loopback when allow_plaintext_loopback is set
 * (development).  SCRAM does not reveal the password, but a submission
 * session without TLS would still expose the mail, so RFC 8314's advice
 * holds for every mechanism: no TLS, no AUTH. */
static bool auth_allowed(const struct smtp_session *s)
{
	if (!s->srv->submission)
		return false;
	if (s->tls_on && !s->tls_pending)
		return true;
	return s->loopback && s->srv->cfg->allow_plaintext_loopback;
}

static bool spam_helo(struct smtp_session *s);

static void cmd_helo(struct smtp_session *s, const struct smtp_cmd *c, bool esmtp)
{
	size_t n = c->arg_len < sizeof s->helo - 1 ? c->arg_len : sizeof s->helo - 1;
	memcpy(s->helo, c->arg, n);
	s->helo[n] = '\0';
	if (spam_helo(s))
		return;
	txn_free(&s->txn); /* RFC 5321 4.1.4: EHLO resets the transaction */
	s->greeted = true;
	s->esmtp = esmtp;
	if (!esmtp) {
		linereader_set_max(&s->lr, SMTP_LINE_MAX_HELO);
		reply(s, "250 %s", hostname(s));
		return;
	}
	linereader_set_max(&s->lr, SMTP_LINE_MAX_EHLO);
	reply(s, "250-%s", hostname(s));
	reply(s, "250-PIPELINING");
	reply(s, "250-SIZE %llu", (unsigned long long)s->srv->cfg->smtp_max_message_size);
	reply(s, "250-8BITMIME");
	reply(s, "250-SMTPUTF8");
	reply(s, "250-CHUNKING");
	reply(s, "250-DSN");
	if (tls_available(s->srv->tls) && !s->tls_on)
		reply(s, "250-STARTTLS");
	/* RFC 8689 2: only in a TLS session (the queue keeps the mark and
	 * the runner enforces it, docs/operations.md). */
	if (s->tls_on && !s->tls_pending)
		reply(s, "250-REQUIRETLS");
	if (auth_allowed(s) && !s->authed)
		reply(s, "250-AUTH PLAIN LOGIN SCRAM-SHA-256%s",
		      s->tls_on && s->srv->cfg->auth_scram_plus ? " SCRAM-SHA-256-PLUS" : "");
	reply(s, "250 ENHANCEDSTATUSCODES");
}

static void cmd_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (!s->greeted) {
		reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		client_error(s);
		return;
	}
	if (s->txn != NULL) {
		reply(s, "503 5.5.1 Error: nested MAIL command");
		client_error(s);
		return;
	}
	if (c->body == SMTP_BODY_BINARYMIME) {
		/* RFC 3030 BINARYMIME is not advertised */
		reply(s, "555 5.5.4 Unsupported parameter");
		client_error(s);
		return;
	}
	if (c->requiretls && !(s->tls_on && !s->tls_pending)) {
		/* not advertised without TLS (RFC 8689 4.1) */
		reply(s, "555 5.5.4 Unsupported parameter");
		client_error(s);
		return;
	}
	if (s->srv->submission && !s->authed) {
		reply(s, "530 5.7.0 Authentication required");
		client_error(s);
		return;
	}
	if (c->has_size && c->size > s->srv->cfg->smtp_max_message_size) {
		reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	char limit_line[320];
	if (s->limited && !smtp_limit_message(s->srv->cfg, (const struct sockaddr *)&s->sa, s->ip,
					      s->id, limit_line, sizeof limit_line)) {
		reply(s, "%s", limit_line);
		return;
	}
	struct smtp_txn *t = txn_new();
	if (!c->null_path && addr_format(&c->addr, t->from, sizeof t->from) < 0) {
		txn_free(&t);
		reply(s, "553 5.1.7 Bad sender address syntax");
		client_error(s);
		return;
	}
	if (s->srv->submission) {
		/* RFC 6409 8.1: the MSA checks the sender belongs to the user;
		 * bounces are the server's business, not a client's */
		int ok = c->null_path ? 0 : sender_allowed(s, t->from);
		if (ok <= 0) {
			char esc[300];
			log_escape(esc, sizeof esc, t->from, strlen(t->from));
			txn_free(&t);
			if (ok < 0) {
				reply(s, "451 4.3.0 Error: temporary failure, try again later");
				return;
			}
			log_info("smtp session=%s client=%s action=mail user=%s from=<%s> "
				 "result=refused reason=not_owned",
				 s->id, s->ip, s->account, esc);
			reply(s, "553 5.7.1 Sender address rejected: not owned by user %s",
			      s->account);
			client_error(s);
			return;
		}
	}
	memcpy(t->session_id, s->id, sizeof t->session_id);
	memcpy(t->client, s->ip, sizeof t->client);
	memcpy(t->helo, s->helo, sizeof t->helo);
	struct tls_info ti;
	if (tls_get_info(s->bev, &ti))
		snprintf(t->tls, sizeof t->tls, "%s", ti.version);
	t->smtputf8 = c->smtputf8;
	t->declared_size = c->has_size ? c->size : 0;
	t->dsn_ret = (int)c->ret;
	memcpy(t->dsn_envid, c->envid, sizeof t->dsn_envid);
	t->requiretls = c->requiretls;
	s->txn = t;
	reply(s, "250 2.1.0 Ok");
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c);

static void grey_spf_stop(struct smtp_session *s)
{
	if (s->grey_spf == NULL)
		return;
	smtp_grey_spf_free(&s->grey_spf);
	s->srv->n_checks--;
}

/* Greylisting's SPF check is done: the waiting RCPT runs again. */
static void grey_spf_done(void *ctx)
{
	struct smtp_session *s = ctx;
	if (s->txn != NULL) {
		bool pass = smtp_grey_spf_passed(s->grey_spf, s->id, s->txn->grey_spf_domain);
		s->txn->grey_spf = pass ? 1 : 2;
	}
	grey_spf_stop(s);
	if (s->state != SMTP_STATE_RCPT_WAIT)
		return;
	session_enter(s, SMTP_STATE_CMD);
	bufferevent_enable(s->bev, EV_READ);
	if (s->state != SMTP_STATE_CMD)
		return; /* shutting down: 421 sent */
	cmd_rcpt(s, &s->grey_cmd);
	process_input(s); /* whatever the client pipelined */
}

/* Greylisting of a port 25 recipient (smtp-grey.h): 1 to go on, 0 if
 * refused (the 451 is sent), -1 if the RCPT waits for the SPF check (it
 * runs again when it is done). */
static int grey_rcpt(struct smtp_session *s, struct smtp_txn *t, const struct smtp_cmd *c,
		     const char *address, const char *domain)
{
	if (!s->limited)
		return 1;
	struct smtp_server *srv = s->srv;
	if (t->grey_spf == 0 && smtp_grey_wants_spf(srv->store, srv->cfg, domain)) {
		struct dns_resolver *dns = check_dns(srv);
		s->grey_spf = smtp_grey_spf_start(srv->base, dns, s->ip, s->helo, t->from,
						  hostname(s), (unsigned)srv->cfg->spam_dns_timeout,
						  grey_spf_done, s);
		srv->n_checks++; /* keeps the resolver while it runs */
		s->grey_cmd = *c;
		s->grey_cmd.arg = NULL; /* points into the line, which goes */
		s->grey_cmd.arg_len = 0;
		session_enter(s, SMTP_STATE_RCPT_WAIT);
		return -1;
	}
	struct smtp_grey_client gc = {s->ip, s->id, s->spam.dnswl,
				      t->grey_spf == 1 ? t->grey_spf_domain : NULL};
	char line[ADDR_PATH_MAX + 200];
	if (smtp_grey_rcpt(srv->store, srv->cfg, &gc, t->from, address, domain, line,
			   sizeof line))
		return 1;
	t->n_refused++;
	reply(s, "%s", line);
	return 0;
}

/* Quotas (docs/smtp.md "Quotas"): a recipient whose every mailbox is full
 * (and that has no remote target) is refused at RCPT, the clean way to
 * defer one recipient: 452 4.2.2 (RFC 3463 mailbox full) while the
 * account is at its limit or the declared SIZE= would take it over, 552
 * 5.2.2 when the declared size alone is over a limit.  A recipient with
 * room in one of its mailboxes is accepted, and its message delivered to
 * all of them (it may go over a limit by that message: mail accepted is
 * never lost).  An unreadable quota accepts.  0 to go on, 1 answered. */
static int rcpt_quota(struct smtp_session *s, struct smtp_txn *t,
		      const struct store_targets *tg, const char *address)
{
	int r = tg->n_remote > 0 ? 0 : quota_none_fits(s, tg->local, tg->n_local, t->declared_size);
	if (r == 0)
		return 0;
	t->n_refused++;
	log_info("smtp session=%s action=rcpt_quota rcpt=%s size=%llu result=%s", s->id, address,
		 (unsigned long long)t->declared_size, r == STORE_QUOTA_NEVER ? "never" : "full");
	if (r == STORE_QUOTA_NEVER)
		reply(s, "552 5.2.2 <%s>: Mailbox full: the message is larger than its quota", address);
	else
		reply(s, "452 4.2.2 <%s>: Mailbox full, try again later", address);
	return 1;
}

static void cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_txn *t = s->txn;
	if (t == NULL) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		client_error(s);
		return;
	}
	if (t->n_rcpts >= s->srv->cfg->smtp_max_recipients) {
		reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	struct addr a = c->addr;
	char address[ADDR_PATH_MAX + 1];
	if (a.domain[0] == '\0') {
		/* a bare "<postmaster>": the server's (store_set_postmaster) */
		snprintf(address, sizeof address, "postmaster");
	} else if (addr_format(&a, address, sizeof address) < 0) {
		reply(s, "501 5.1.3 Bad recipient address syntax");
		client_error(s);
		return;
	}
	struct store_targets *tg = xmalloc(sizeof *tg);
	enum store_rcpt_result r =
		store_resolve(s->srv->store, address, s->srv->cfg->recipient_delimiter, tg);
	switch (r) {
	case STORE_RCPT_OK:
		if (grey_rcpt(s, t, c, address, a.domain) != 1)
			break;
		if (group_rcpt(s, t, address) != 0 || rcpt_quota(s, t, tg, address) != 0)
			break;
		t->rcpts = xreallocarray(t->rcpts, t->n_rcpts + 1, sizeof *t->rcpts);
		memcpy(t->rcpts[t->n_rcpts++].addr, address, sizeof address);
		txn_want_success(t, tg, address, c->notify, c->orcpt);
		txn_add_targets(t, tg, address, c->notify, c->orcpt);
		reply(s, "250 2.1.5 Ok");
		break;
	case STORE_RCPT_NOT_OURS:
		if (s->srv->submission && s->authed && a.domain[0] != '\0' &&
		    strlen(address) < sizeof tg->remote[0]) {
			/* relay: only for an authenticated submission session */
			memset(tg, 0, sizeof *tg);
			tg->n_remote = 1;
			memcpy(tg->remote[0], address, strlen(address) + 1);
			t->rcpts = xreallocarray(t->rcpts, t->n_rcpts + 1, sizeof *t->rcpts);
			memcpy(t->rcpts[t->n_rcpts++].addr, address, sizeof address);
			txn_add_targets(t, tg, address, c->notify, c->orcpt);
			reply(s, "250 2.1.5 Ok");
			break;
		}
		t->n_refused++;
		reply(s, "554 5.7.1 <%s>: Relay access denied", address);
		client_error(s);
		break;
	case STORE_RCPT_NO_USER:
		t->n_refused++;
		reply(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown", address);
		client_error(s);
		break;
	case STORE_RCPT_LOOP:
		t->n_refused++;
		reply(s, "550 5.4.6 <%s>: alias expansion loop", address);
		break;
	case STORE_RCPT_ERROR:
		t->n_refused++;
		reply(s, "451 4.3.0 Error: temporary failure, try again later");
		break;
	}
	free(tg);
}

/* Common checks of DATA and BDAT; returns the refusal or NULL. */
static const char *body_refusal(struct smtp_session *s)
{
	if (s->txn == NULL)
		return "503 5.5.1 Error: need MAIL command";
	if (s->txn->n_rcpts == 0)
		return s->txn->n_refused ? "554 5.5.1 Error: no valid recipients"
					 : "503 5.5.1 Error: need RCPT command";
	return NULL;
}

static void cmd_data(struct smtp_session *s)
{
	const char *no = body_refusal(s);
	if (no == NULL && s->txn->bdat)
		no = "503 5.5.1 Error: DATA after BDAT";
	if (no != NULL) {
		reply(s, "%s", no);
		client_error(s);
		return;
	}
	if (txn_start_body(s) < 0) {
		reply(s, "451 4.3.0 Error: could not store the message, try again later");
		txn_free(&s->txn);
		return;
	}
	s->txn->prev_line_bare = false;
	linereader_set_max(&s->lr, SMTP_DATA_LINE_MAX);
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	session_enter(s, SMTP_STATE_DATA);
}

static void cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c)
{
	s->bdat_size = c->chunk_size;
	s->bdat_left = c->chunk_size;
	s->bdat_last = c->last;
	s->bdat_discard = false;
	s->bdat_reply = NULL;
	const char *no = body_refusal(s);
	if (no == NULL && s->txn->spool_fd >= 0 && !s->txn->bdat)
		no = "503 5.5.1 Error: BDAT after DATA";
	if (no == NULL && !s->txn->bdat) {
		s->txn->bdat = true;
		if (txn_start_body(s) < 0)
			no = "451 4.3.0 Error: could not store the message, try again later";
	}
	if (no != NULL) {
		/* RFC 3030 2: the chunk is read and thrown away. */
		s->bdat_discard = true;
		s->bdat_reply = no;
		if (no[0] == '4')
			txn_free(&s->txn);
	}
	session_enter(s, SMTP_STATE_BDAT);
}

/* ----------------------------------------------------------------- AUTH */

/* Back to commands after an AUTH exchange, whatever its outcome. */
static void auth_end(struct smtp_session *s)
{
	authglue_free(&s->auth);
	s->auth_final = false;
	linereader_set_max(&s->lr, SMTP_LINE_MAX_EHLO);
	session_enter(s, SMTP_STATE_CMD);
	bufferevent_enable(s->bev, EV_READ);
}

static void auth_succeeded(struct smtp_session *s, const char *account, int64_t id)
{
	s->authed = true;
	snprintf(s->account, sizeof s->account, "%s", account);
	s->account_id = id;
	explicit_bzero(s->auth_pending, sizeof s->auth_pending);
	auth_end(s);
	reply(s, "235 2.7.0 Authentication successful");
}

/* "334 " and the base64 of data (RFC 4954 4: nothing else on the line). */
static void send_challenge(struct smtp_session *s, const unsigned char *data, size_t len)
{
	size_t need = base64_encoded_len(len) + 1;
	char *b64 = xmalloc(need);
	if (base64_encode(data, len, b64, need) < 0)
		b64[0] = '\0';
	reply(s, "334 %s", b64);
	free(b64);
	linereader_set_max(&s->lr, SMTP_AUTH_LINE_MAX);
	session_enter(s, SMTP_STATE_AUTH);
}

/* The SASL exchange's outcomes (always from the event loop). */
static void auth_cb(void *ctx, const struct authglue_result *r)
{
	struct smtp_session *s = ctx;
	switch (r->status) {
	case AUTHGLUE_CHALLENGE:
		send_challenge(s, r->data, r->len);
		break;
	case AUTHGLUE_OK:
		if (r->len > 0) {
			/* SMTP has no data with 235 (RFC 4954 4): SCRAM's
			 * server-final goes in a last 334, answered by "". */
			snprintf(s->auth_pending, sizeof s->auth_pending, "%s", r->account);
			s->auth_pending_id = r->account_id;
			send_challenge(s, r->data, r->len);
			authglue_free(&s->auth);
			s->auth_final = true;
			break;
		}
		auth_succeeded(s, r->account, r->account_id);
		break;
	case AUTHGLUE_FAIL:
		auth_end(s);
		switch (r->error) {
		case SASL_ERR_MALFORMED:
			reply(s, "501 5.5.2 Error: malformed authentication data");
			break;
		case SASL_ERR_TEMPORARY:
			reply(s, "454 4.7.0 Temporary authentication failure");
			break;
		case SASL_ERR_UNAVAILABLE:
			/* the account has no SCRAM keys (an imported hash) */
			reply(s, "432 4.7.12 A password transition is needed");
			break;
		default:
			reply(s, "535 5.7.8 Error: authentication credentials invalid");
			break;
		}
		if (r->error != SASL_ERR_TEMPORARY && r->error != SASL_ERR_UNAVAILABLE)
			client_error(s);
		break;
	case AUTHGLUE_BLOCKED:
		auth_end(s);
		reply(s, "454 4.7.0 Too many failed authentications, try again later");
		break;
	case AUTHGLUE_BUSY:
		auth_end(s);
		reply(s, "454 4.7.0 Too many authentications for this account in progress, try "
			 "again shortly");
		break;
	}
	process_input(s); /* whatever the client pipelined */
}

/* One line of the client during AUTH (after a 334). */
static void auth_line(struct smtp_session *s, const char *p, size_t n)
{
	if (n == 1 && p[0] == '*') {
		auth_end(s);
		reply(s, "501 5.7.0 Authentication cancelled");
		return;
	}
	if (s->auth_final) {
		if (n != 0) {
			auth_end(s);
			reply(s, "501 5.5.2 Error: expected an empty response");
			client_error(s);
			return;
		}
		auth_succeeded(s, s->auth_pending, s->auth_pending_id);
		return;
	}
	size_t max = base64_decoded_max(n) + 1;
	unsigned char *msg = xmalloc(max);
	long len = base64_decode(p, n, msg, max);
	if (len < 0) {
		free(msg);
		auth_end(s);
		reply(s, "501 5.5.2 Error: invalid base64 data");
		client_error(s);
		return;
	}
	session_enter(s, SMTP_STATE_AUTH_WAIT);
	authglue_step(s->auth, msg, (size_t)len);
	explicit_bzero(msg, max);
	free(msg);
}

/* The channel bindings of a TLS session (tls-exporter needs TLS 1.3 or
 * extended master secret; tls-server-end-point always works). */
static size_t channel_bindings(struct smtp_session *s, struct sasl_cbind *cb,
			       unsigned char (*data)[64])
{
	size_t n = 0;
	/* Without auth.scram_plus nothing is bound and -PLUS is not offered,
	 * so a client's "y" flag is no downgrade (RFC 5802 6). */
	if (!s->tls_on || s->tls_pending || !s->srv->cfg->auth_scram_plus)
		return 0;
	int len = tls_channel_binding(s->bev, TLS_BINDING_EXPORTER, data[n], 64);
	if (len > 0) {
		cb[n] = (struct sasl_cbind){"tls-exporter", data[n], (size_t)len};
		n++;
	}
	len = tls_channel_binding(s->bev, TLS_BINDING_SERVER_END_POINT, data[n], 64);
	if (len > 0) {
		cb[n] = (struct sasl_cbind){"tls-server-end-point", data[n], (size_t)len};
		n++;
	}
	return n;
}

/* AUTH mechanism [initial-response] (RFC 4954, SASL-IR). */
static void cmd_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	const char *no = NULL;
	if (!s->srv->submission)
		no = "502 5.5.1 Error: command not implemented"; /* port 25: no logins */
	else if (!s->greeted || !s->esmtp)
		no = "503 5.5.1 Error: send EHLO first";
	else if (s->authed)
		no = "503 5.5.1 Error: already authenticated";
	else if (s->txn != NULL)
		no = "503 5.5.1 Error: AUTH not permitted during a mail transaction";
	const char *sp = memchr(c->arg, ' ', c->arg_len);
	size_t mlen = sp ? (size_t)(sp - c->arg) : c->arg_len;
	enum sasl_mech m = SASL_MECH_PLAIN;
	if (no == NULL && sasl_mech_from_name(c->arg, mlen, &m) < 0)
		no = "504 5.5.4 Error: unrecognized authentication type";
	if (no == NULL && !auth_allowed(s))
		no = m == SASL_MECH_PLAIN || m == SASL_MECH_LOGIN
			 ? "538 5.7.11 Encryption required for requested authentication mechanism"
			 : "530 5.7.0 Must issue a STARTTLS command first";
	struct sasl_cbind cb[SASL_MAX_CBIND];
	unsigned char cbdata[SASL_MAX_CBIND][64];
	size_t n_cb = no == NULL ? channel_bindings(s, cb, cbdata) : 0;
	if (no == NULL && m == SASL_MECH_SCRAM_SHA_256_PLUS && n_cb == 0)
		no = "504 5.5.4 Error: unrecognized authentication type";
	if (no != NULL) {
		reply(s, "%s", no);
		client_error(s);
		return;
	}
	const unsigned char *ir = NULL;
	unsigned char *irbuf = NULL;
	size_t irlen = 0, irmax = 0;
	if (sp != NULL) {
		const char *q = sp + 1;
		size_t qn = (size_t)(c->arg + c->arg_len - q);
		if (qn == 1 && q[0] == '=') { /* an empty initial response */
			ir = (const unsigned char *)"";
		} else {
			irmax = base64_decoded_max(qn) + 1;
			irbuf = xmalloc(irmax);
			long l = qn == 0 ? -1 : base64_decode(q, qn, irbuf, irmax);
			if (l < 0) {
				free(irbuf);
				reply(s, "501 5.5.2 Error: invalid base64 data");
				client_error(s);
				return;
			}
			ir = irbuf;
			irlen = (size_t)l;
		}
	}
	struct authglue_params p = {
		.base = s->srv->base,
		.store = s->srv->store,
		.mech = m,
		.client = (const struct sockaddr *)&s->sa,
		.client_ip = s->ip,
		.proto = "smtp",
		.session_id = s->id,
		.cbind = cb,
		.n_cbind = n_cb,
		.cb = auth_cb,
		.cb_ctx = s,
	};
	session_enter(s, SMTP_STATE_AUTH_WAIT);
	s->auth = authglue_start(&p, ir, irlen);
	if (irbuf != NULL) {
		explicit_bzero(irbuf, irmax);
		free(irbuf);
	}
}

/* STARTTLS (RFC 3207).  The reply goes out in plaintext; everything the
 * client sent after the command is dropped now (and whatever arrives
 * before the handshake is fed to the handshake, where it fails), so
 * nothing pipelined behind STARTTLS is ever run (CVE-2011-0411 class).
 * The switch happens in session_write_cb once the reply is written. */
static void cmd_starttls(struct smtp_session *s)
{
	if (!tls_available(s->srv->tls)) {
		reply(s, "502 5.5.1 Error: command not implemented");
		client_error(s);
		return;
	}
	if (s->tls_on) {
		reply(s, "503 5.5.1 Error: TLS already active");
		client_error(s);
		return;
	}
	reply(s, "220 2.0.0 Ready to start TLS");
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t dropped = evbuffer_get_length(in);
	evbuffer_drain(in, dropped);
	if (dropped > 0)
		log_info("smtp session=%s client=%s action=starttls dropped=%zu "
			 "note=\"input pipelined after STARTTLS discarded\"",
			 s->id, s->ip, dropped);
	session_enter(s, SMTP_STATE_STARTTLS);
}

/* The STARTTLS reply is written: put TLS on the socket and start over as
 * after the greeting (RFC 3207 4.2: forget HELO, MAIL and RCPT). */
static void starttls_switch(struct smtp_session *s)
{
	struct bufferevent *bev = tls_starttls(s->srv->tls, s->bev);
	s->bev = bev;
	if (bev == NULL) {
		log_error("smtp session=%s client=%s action=starttls error=\"cannot start TLS\"",
			  s->id, s->ip);
		session_kill(s);
		return;
	}
	s->tls_on = true;
	s->tls_pending = true;
	s->authed = false; /* RFC 3207 4.2: forget all but the TLS */
	s->account[0] = '\0';
	s->greeted = false;
	s->esmtp = false;
	s->helo[0] = '\0';
	txn_free(&s->txn);
	linereader_free(&s->lr);
	linereader_init(&s->lr, SMTP_LINE_MAX_HELO);
	bufferevent_setcb(bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, 256 * 1024);
	session_enter(s, SMTP_STATE_CMD);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void run_command(struct smtp_session *s, const char *line, size_t n)
{
	struct smtp_cmd c;
	bool utf8 = s->txn != NULL && s->txn->smtputf8;
	enum smtp_parse_error e = smtp_parse_command(line, n, utf8, &c);
	if (s->refused && !(e == SMTP_PARSE_OK && c.verb == SMTP_VERB_QUIT)) {
		/* RFC 5321 3.1: after a 554 greeting, 503 until QUIT */
		reply(s, "503 5.5.1 Error: mail from your address is refused; only QUIT now");
		client_error(s);
		return;
	}
	if (e != SMTP_PARSE_OK) {
		switch (e) {
		case SMTP_PARSE_UNKNOWN:
			reply(s, "500 5.5.1 Error: command not recognized");
			break;
		case SMTP_PARSE_BAD_ADDR:
		case SMTP_PARSE_TOO_LONG:
			if (c.verb == SMTP_VERB_MAIL)
				reply(s, "553 5.1.7 Bad sender address syntax");
			else
				reply(s, "501 5.1.3 Bad recipient address syntax");
			break;
		case SMTP_PARSE_BAD_PARAM:
			reply(s, "555 5.5.4 Unsupported parameter");
			break;
		case SMTP_PARSE_NEED_UTF8:
			reply(s, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
			break;
		case SMTP_PARSE_BAD_DSN:
			/* RFC 3461 5.1: 501 for a bad or repeated DSN parameter */
			reply(s, "501 5.5.4 Syntax error in DSN parameter");
			break;
		default:
			reply(s, "501 5.5.4 Syntax error in parameters");
			break;
		}
		client_error(s);
		return;
	}
	switch (c.verb) {
	case SMTP_VERB_HELO:
		cmd_helo(s, &c, false);
		break;
	case SMTP_VERB_EHLO:
		cmd_helo(s, &c, true);
		break;
	case SMTP_VERB_MAIL:
		cmd_mail(s, &c);
		break;
	case SMTP_VERB_RCPT:
		cmd_rcpt(s, &c);
		break;
	case SMTP_VERB_DATA:
		cmd_data(s);
		break;
	case SMTP_VERB_BDAT:
		cmd_bdat(s, &c);
		break;
	case SMTP_VERB_RSET:
		txn_free(&s->txn);
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_VERB_QUIT:
		close_with(s, "221 2.0.0 Bye");
		break;
	case SMTP_VERB_HELP:
		reply(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY");
		reply(s, "214 2.0.0 See RFC 5321");
		break;
	case SMTP_VERB_VRFY:
		reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
		break;
	case SMTP_VERB_EXPN:
		reply(s, "502 5.5.1 Error: EXPN not supported");
		break;
	case SMTP_VERB_STARTTLS:
		cmd_starttls(s);
		break;
	case SMTP_VERB_AUTH:
		cmd_auth(s, &c);
		break;
	case SMTP_VERB_UNKNOWN:
		reply(s, "502 5.5.1 Error: command not implemented");
		client_error(s);
		break;
	}
}

/* ---------------------------------------------------------------- input */

/* One line of DATA (without its line end). */
static void data_line(struct smtp_session *s, const char *p, size_t n, bool bare_lf)
{
	struct smtp_txn *t = s->txn;
	if (n == 1 && p[0] == '.') {
		/* Only <CRLF>.<CRLF> ends the data (no SMTP smuggling). */
		if (!bare_lf && !t->prev_line_bare) {
			linereader_set_max(&s->lr, s->esmtp ? SMTP_LINE_MAX_EHLO : SMTP_LINE_MAX_HELO);
			txn_finish(s);
			return;
		}
	}
	if (bare_lf || memchr(p, '\r', n) != NULL)
		t->bad_eol = true;
	t->prev_line_bare = bare_lf;
	if (n > 0 && p[0] == '.') { /* RFC 5321 4.5.2: remove the stuffed dot */
		p++;
		n--;
	}
	spool_add(s, p, n);
	spool_add(s, "\r\n", 2);
}

/* Checks BDAT data for bare CR or LF, across chunk boundaries. */
static void bdat_check_eol(struct smtp_txn *t, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (t->pending_cr && p[i] != '\n')
			t->bad_eol = true;
		if (p[i] == '\n' && !t->pending_cr)
			t->bad_eol = true;
		t->pending_cr = p[i] == '\r';
	}
}

static void bdat_chunk_done(struct smtp_session *s)
{
	session_enter(s, SMTP_STATE_CMD);
	if (s->bdat_discard) {
		reply(s, "%s", s->bdat_reply);
		client_error(s);
		return;
	}
	if (!s->bdat_last) {
		reply(s, "250 2.0.0 %llu octets received", (unsigned long long)s->bdat_size);
		return;
	}
	if (s->txn->pending_cr)
		s->txn->bad_eol = true;
	txn_finish(s);
}

/* Consumes BDAT octets from the input; returns false if more are needed. */
static bool bdat_read(struct smtp_session *s, struct evbuffer *in)
{
	while (s->bdat_left > 0) {
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return false;
		size_t take = avail < s->bdat_left ? avail : (size_t)s->bdat_left;
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, (ev_ssize_t)take, NULL, &v, 1) < 1)
			return false;
		size_t n = v.iov_len < take ? v.iov_len : take;
		if (!s->bdat_discard) {
			bdat_check_eol(s->txn, v.iov_base, n);
			spool_add(s, v.iov_base, n);
		}
		evbuffer_drain(in, n);
		s->bdat_left -= n;
	}
	bdat_chunk_done(s);
	return true;
}

static void process_input(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (s->state == SMTP_STATE_CMD || s->state == SMTP_STATE_DATA ||
	       s->state == SMTP_STATE_BDAT || s->state == SMTP_STATE_AUTH) {
		if (evbuffer_get_length(out) > SMTP_OUTPUT_HIGH) {
			/* The client does not read our replies: stop reading
			 * until it does (write callback resumes). */
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state == SMTP_STATE_BDAT) {
			if (!bdat_read(s, in))
				return;
			continue;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			return;
		size_t used;
		enum lr_result r = linereader_feed(&s->lr, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (r == LR_NEED_MORE)
			continue;
		if (s->state == SMTP_STATE_DATA) {
			if (r == LR_TOO_LONG) {
				s->txn->line_too_long = true;
				s->txn->prev_line_bare = false;
			} else {
				data_line(s, s->lr.line.data ? s->lr.line.data : "", s->lr.line.len,
					  s->lr.bare_lf);
			}
			continue;
		}
		if (s->state == SMTP_STATE_AUTH) {
			if (r == LR_TOO_LONG || s->lr.has_nul) {
				auth_end(s);
				reply(s, r == LR_TOO_LONG
					     ? "500 5.5.6 Authentication Exchange line is too long"
					     : "501 5.5.2 Error: invalid base64 data");
				client_error(s);
			} else {
				auth_line(s, s->lr.line.data ? s->lr.line.data : "", s->lr.line.len);
			}
			continue;
		}
		if (r == LR_TOO_LONG) {
			reply(s, "500 5.5.2 Error: line too long");
			client_error(s);
			continue;
		}
		if (s->lr.has_nul) {
			reply(s, "500 5.5.2 Error: NUL byte in command");
			client_error(s);
			continue;
		}
		run_command(s, s->lr.line.data ? s->lr.line.data : "", s->lr.line.len);
	}
}

/* ------------------------------------------------------------ lifecycle */

static void session_unlink(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	srv->n_sessions--;
}

static void grey_spf_stop(struct smtp_session *s);

static void session_free(struct smtp_session *s)
{
	connect_stop(s);
	grey_spf_stop(s);
	smtp_limit_close(&s->limit_slot);
	if (s->check != NULL) {
		struct smtp_txn *t = s->check->t;
		check_free(&s->check);
		txn_free(&t);
	}
	smtp_milter_free(&s->milter);
	txn_free(&s->milter_txn);
	txn_free(&s->txn);
	authglue_free(&s->auth);
	linereader_free(&s->lr);
	if (s->bev)
		bufferevent_free(s->bev);
	free(s);
}

/* Marks a session dead; the reaper frees it after this loop iteration. */
static void session_kill(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_DEAD)
		return;
	if (s->txn != NULL && s->txn->spool_fd >= 0)
		log_txn(s->txn, 0); /* disconnected in the middle of a message */
	for (size_t i = 0; i < s->srv->n_pending; i++)
		if (s->srv->pending[i].s == s)
			s->srv->pending[i].s = NULL; /* its message still gets committed */
	if (s->check != NULL) {
		/* No reply can reach the client: the message is dropped, as
		 * for any transaction cut off before its 250. */
		struct smtp_txn *t = s->check->t;
		log_txn(t, 0);
		check_free(&s->check);
		txn_free(&t);
	}
	if (s->milter_txn != NULL) {
		log_txn(s->milter_txn, 0); /* cut off before its 250, as above */
		smtp_milter_free(&s->milter);
		txn_free(&s->milter_txn);
	}
	txn_free(&s->txn);
	authglue_free(&s->auth);
	connect_stop(s);
	grey_spf_stop(s);
	if (s->spam_log)
		spam_log_line(s, "disconnected");
	if (s->bev != NULL)
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	s->state = SMTP_STATE_DEAD;
	session_unlink(s);
	s->next = s->srv->dead;
	s->srv->dead = s;
	event_active(s->srv->reaper, EV_TIMEOUT, 0);
}

static void reaper_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct smtp_server *srv = ctx;
	while (srv->dead) {
		struct smtp_session *s = srv->dead;
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
	struct smtp_session *s = ctx;
	if (s->state == SMTP_STATE_CONNECT) {
		connect_early_input(s);
		return;
	}
	process_input(s);
}

static void session_write_cb(struct bufferevent *bev, void *ctx)
{
	struct smtp_session *s = ctx;
	if (s->state == SMTP_STATE_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
			tls_close_notify(bev);
			session_kill(s);
		}
		return;
	}
	if (s->state == SMTP_STATE_STARTTLS) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			starttls_switch(s);
		return;
	}
	if (s->state != SMTP_STATE_DEAD && s->state != SMTP_STATE_AUTH_WAIT &&
	    s->state != SMTP_STATE_RCPT_WAIT && s->state != SMTP_STATE_CONNECT &&
	    !(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		process_input(s);
	}
}

static void session_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct smtp_session *s = ctx;
	int t = tls_session_event(bev, what, &s->tls_pending, "smtp", s->id, s->ip);
	if (t != 0) {
		if (t < 0)
			session_kill(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && s->state != SMTP_STATE_CLOSING) {
		char line[320];
		snprintf(line, sizeof line, "421 4.4.2 %s Error: timeout exceeded", hostname(s));
		log_info("smtp session=%s client=%s action=close reason=timeout", s->id, s->ip);
		close_with(s, line);
		return;
	}
	if (what & BEV_EVENT_EOF)
		log_debug("smtp session=%s client=%s action=disconnect", s->id, s->ip);
	session_kill(s);
}

/* ---------------------------------------------------- connection stage */

/* Ends the connection-stage lookups of s, if any (their callback is not
 * called). */
static void connect_stop(struct smtp_session *s)
{
	if (s->conn == NULL)
		return;
	smtp_connect_free(&s->conn);
	s->srv->n_checks--;
}

static void greet(struct smtp_session *s)
{
	session_enter(s, SMTP_STATE_CMD);
	reply(s, "220 %s ESMTP Tern", hostname(s));
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

/* The one line per checked connection with its score and the parts. */
static void spam_log_line(struct smtp_session *s, const char *result)
{
	s->spam_log = false;
	log_info("smtp session=%s client=%s action=spam_connect score=%d reject_score=%llu "
		 "parts=\"%s\" result=%s",
		 s->id, s->ip, s->spam.score, (unsigned long long)s->srv->cfg->spam_reject_score,
		 s->spam.parts, result);
}

static bool spam_reached(const struct smtp_session *s)
{
	return s->spam.score > 0 && (uint64_t)s->spam.score >= s->srv->cfg->spam_reject_score;
}

/* The lookups are in (or timed out) and the pregreet wait is over:
 * greet, or refuse with 554 and answer only QUIT (RFC 5321 3.1). */
static void connect_done(void *ctx, const struct smtp_connect_result *r)
{
	struct smtp_session *s = ctx;
	s->spam = *r;
	connect_stop(s);
	if (s->state != SMTP_STATE_CONNECT)
		return; /* closing already (timeout, shutdown) */
	if (s->srv->shutting_down) {
		spam_log_line(s, "shutdown");
		char line[320];
		snprintf(line, sizeof line, "421 4.3.2 %s Service shutting down", hostname(s));
		close_with(s, line);
		return;
	}
	if (spam_reached(s)) {
		spam_log_line(s, "refuse");
		s->refused = true;
		session_enter(s, SMTP_STATE_CMD);
		reply(s, "554 5.7.1 Your address %s %s, so this server refuses mail from it", s->ip,
		      s->spam.reason);
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	} else {
		s->spam_log = true; /* logged with the HELO check */
		greet(s);
	}
	process_input(s); /* input kept while the greeting waited (no pregreet check) */
}

/* Bytes before the greeting: with spam.pregreet_wait the client is
 * dropped; without, the bytes wait for the greeting. */
static void connect_early_input(struct smtp_session *s)
{
	if (s->srv->cfg->spam_pregreet_wait == 0) {
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	log_info("smtp session=%s client=%s action=close reason=pregreet bytes=%zu "
		 "note=\"the client talked before the greeting\"",
		 s->id, s->ip, evbuffer_get_length(bufferevent_get_input(s->bev)));
	connect_stop(s);
	close_with(s, "554 5.5.1 Error: you talked before the greeting");
}

/* The first HELO/EHLO of a checked connection adds the HELO check and
 * logs the score; true if the score now refuses (the reply is sent). */
static bool spam_helo(struct smtp_session *s)
{
	if (!s->spam_log)
		return false;
	smtp_connect_helo(&s->spam, s->srv->cfg, s->helo);
	if (!spam_reached(s)) {
		spam_log_line(s, "accept");
		return false;
	}
	spam_log_line(s, "refuse");
	s->refused = true;
	session_enter(s, SMTP_STATE_CMD); /* the shorter timeout of a refused session */
	reply(s, "550 5.7.1 Your address %s %s, so this server refuses mail from it", s->ip,
	      s->spam.reason);
	return true;
}

void smtp_server_accept(struct smtp_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
			int salen)
{
	struct smtp_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	fsutil_unique_id(s->id);
	netaddr_format(sa, s->ip, sizeof s->ip, &s->loopback);
	if (salen > 0 && (size_t)salen <= sizeof s->sa)
		memcpy(&s->sa, sa, (size_t)salen);
	linereader_init(&s->lr, SMTP_LINE_MAX_HELO);
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
	if (s->bev == NULL) {
		linereader_free(&s->lr);
		free(s);
		return;
	}
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->n_sessions++;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	/* Bound what libevent buffers for us before we parse it. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, 256 * 1024);
	log_debug("smtp session=%s client=%s action=connect", s->id, s->ip);
	if (srv->shutting_down || srv->n_sessions > srv->cfg->smtp_max_connections) {
		char line[320];
		snprintf(line, sizeof line, "421 4.3.2 %s Error: too many connections, try later",
			 srv->cfg->hostname);
		close_with(s, line);
		return;
	}
	s->limited = !srv->submission && smtp_limit_applies(srv->cfg, s->ip);
	char line[320];
	if (s->limited && !smtp_limit_connect(srv->cfg, (const struct sockaddr *)&s->sa, s->ip,
					      s->id, &s->limit_slot, line, sizeof line)) {
		close_with(s, line);
		return;
	}
	if (!srv->submission && !srv->implicit_tls && smtp_connect_wanted(srv->cfg, s->ip)) {
		struct dns_resolver *dns = check_dns(srv);
		s->conn = smtp_connect_start(srv->base, dns, srv->cfg, s->ip, s->id, connect_done, s);
		srv->n_checks++; /* keeps the resolver while its lookups run */
		session_enter(s, SMTP_STATE_CONNECT);
		/* reading on: bytes before the greeting are the pregreet test */
		bufferevent_enable(s->bev, EV_READ | EV_WRITE);
		return;
	}
	greet(s);
}

struct smtp_server *smtp_server_new(struct event_base *base, struct store *store,
				    const struct config *cfg)
{
	struct smtp_server *srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->store = store;
	srv->cfg = cfg;
	srv->dkim = dkim_keyring_new(store);
	srv->reaper = event_new(base, -1, 0, reaper_cb, srv);
	srv->commit_ev = event_new(base, -1, 0, commit_cb, srv);
	if (srv->reaper == NULL || srv->commit_ev == NULL)
		fatal(1, "cannot create event");
	return srv;
}

void smtp_server_set_submission(struct smtp_server *srv, bool on)
{
	srv->submission = on;
}

void smtp_server_set_tls(struct smtp_server *srv, struct tls *tls, bool implicit)
{
	srv->tls = tls;
	srv->implicit_tls = implicit;
}

void smtp_server_set_config(struct smtp_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
}

size_t smtp_server_sessions(const struct smtp_server *srv)
{
	return srv->n_sessions;
}

void smtp_server_shutdown(struct smtp_server *srv, void (*cb)(void *ctx), void *ctx)
{
	srv->shutting_down = true;
	srv->shutdown_cb = cb;
	srv->shutdown_ctx = ctx;
	char line[320];
	snprintf(line, sizeof line, "421 4.3.2 %s Service shutting down", srv->cfg->hostname);
	struct smtp_session *s = srv->sessions;
	while (s != NULL) {
		struct smtp_session *next = s->next;
		if (s->state == SMTP_STATE_CLOSING) {
			set_timeout(s, 2);
		} else if (s->state == SMTP_STATE_CMD || s->state == SMTP_STATE_AUTH ||
			   s->state == SMTP_STATE_AUTH_WAIT || s->state == SMTP_STATE_CONNECT ||
			   s->state == SMTP_STATE_RCPT_WAIT) {
			authglue_free(&s->auth);
			grey_spf_stop(s);
			close_with(s, line);
		}
		/* in DATA, BDAT or COMMIT: the message finishes first, then
		 * session_enter(CMD) says 421 */
		s = next;
	}
	event_active(srv->reaper, EV_TIMEOUT, 0);
}

void smtp_server_free(struct smtp_server **srvp)
{
	struct smtp_server *srv = *srvp;
	if (srv == NULL)
		return;
	while (srv->sessions) {
		struct smtp_session *s = srv->sessions;
		session_unlink(s);
		session_free(s);
	}
	while (srv->dead) {
		struct smtp_session *s = srv->dead;
		srv->dead = s->next;
		session_free(s);
	}
	for (size_t i = 0; i < srv->n_pending; i++)
		txn_free(&srv->pending[i].t);
	free(srv->pending);
	event_free(srv->commit_ev);
	event_free(srv->reaper);
	dkim_keyring_free(&srv->dkim);
	dns_resolver_free(&srv->dns);
	free(srv);
	*srvp = NULL;
}
