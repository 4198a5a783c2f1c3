/*
 * imap-session.c - IMAP sessions on a libevent loop (see imap-session.h
 * and docs/imap.md): connection life, input, the command table, the
 * not-authenticated commands, IDLE, and keeping the session's view of the
 * selected mailbox in step with the store.  Protocol layer: uses the store,
 * auth (password checks) and lib.  Mailbox, message, FETCH and SEARCH
 * commands are in their own files (imap-private.h).
 *
 * States (RFC 9051 3): not authenticated -> authenticated <-> selected ->
 * logout.  Input goes through struct imap_reader (imap-parse.h): whole
 * commands with their literals, bounded.  All socket I/O goes through
 * s->bev so that STARTTLS can later put a TLS filter in its place.
 *
 * Other sessions' changes: each logged-in session subscribes to its
 * account's store notifications.  The callback only sets a flag (it may
 * run inside this very session's own store call); the view is brought up
 * to date at points where the RFC allows untagged responses: at the end of
 * commands (EXPUNGE only after commands that allow it, RFC 9051 7.5.1) and
 * at once for a session in IDLE (through srv->wake_ev).
 */
#include "imap-session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsutil.h"
#include "imap-private.h"
#include "log.h"
#include "password.h"
#include "strutil.h"
#include "xalloc.h"

/* RFC 9051 5.4: an autologout timer of at least 30 minutes after login. */
#define IMAP_TIMEOUT_AUTH 1860
#define IMAP_TIMEOUT_PREAUTH 120
#define IMAP_AUTH_FAIL_DELAY 1
#define IMAP_MAX_AUTH_FAILURES 3
#define IMAP_MAX_PREAUTH_COMMANDS 30
#define IMAP_OUTPUT_HIGH (1024 * 1024)
#define IMAP_OUTPUT_LOW (256 * 1024)
#define IMAP_USER_MAX 255

static void session_write_cb(struct bufferevent *bev, void *ctx);
static void process_input(struct imap_session *s);

/* ------------------------------------------------------------ utilities */

void imap_reply(struct imap_session *s, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

void imap_send(struct imap_session *s, const void *p, size_t n)
{
	evbuffer_add(bufferevent_get_output(s->bev), p, n);
}

static void session_enter(struct imap_session *s, enum imap_mode m)
{
	s->mode = m;
	if (m == IMAP_MODE_CLOSING) {
		struct timeval tv = {10, 0};
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		bufferevent_disable(s->bev, EV_READ);
	}
}

static void set_state(struct imap_session *s, enum imap_state st)
{
	s->state = st;
	if (st != IMAP_STATE_NOAUTH) {
		struct timeval tv = {IMAP_TIMEOUT_AUTH, 0};
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		imap_reader_set_limits(&s->rd, IMAP_LINE_MAX, s->srv->cfg->smtp_max_message_size);
	}
}

/* Sends a last line and closes once it is written. */
static void close_with(struct imap_session *s, const char *line)
{
	if (s->mode == IMAP_MODE_CLOSING || s->mode == IMAP_MODE_DEAD)
		return;
	if (line != NULL)
		imap_reply(s, "%s", line);
	session_enter(s, IMAP_MODE_CLOSING);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_write_cb(s->bev, s);
}

static void client_error(struct imap_session *s)
{
	s->errors++;
	if (s->errors >= s->srv->cfg->smtp_max_errors) {
		log_info("imap session=%s client=%s action=close reason=too_many_errors", s->id,
			 s->ip);
		close_with(s, "* BYE Too many errors, closing connection");
	}
}

void imap_bad(struct imap_cmdctx *x, const char *text)
{
	imap_reply(x->s, "%s BAD %s", x->tag, text);
	client_error(x->s);
}

void imap_no_store(struct imap_cmdctx *x, const char *what, const char *err)
{
	log_error("imap session=%s user=%s action=%s error=\"%s\"", x->s->id,
		  x->s->address ? x->s->address : "-", what, err);
	imap_reply(x->s, "%s NO [SERVERBUG] Internal error, try again later", x->tag);
}

static bool plaintext_ok(const struct imap_session *s)
{
	return s->loopback && s->srv->cfg->allow_plaintext_loopback;
}

void imap_capabilities(struct imap_session *s, struct buf *out)
{
	buf_puts(out, "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT"
		      " UIDPLUS MULTIAPPEND MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE"
		      " ESEARCH SEARCHRES STATUS=SIZE UTF8=ACCEPT");
	if (s->state == IMAP_STATE_NOAUTH) {
		if (plaintext_ok(s))
			buf_puts(out, " AUTH=PLAIN");
		else
			buf_puts(out, " LOGINDISABLED");
	}
}

/* ------------------------------------------------------- mailbox names */

int imap_mailbox_arg(struct imap_cmdctx *x, const struct imap_tok *t, char out[512])
{
	if (!imap_tok_is_string(t)) {
		imap_bad(x, "Mailbox name expected");
		return -1;
	}
	struct buf b;
	buf_init(&b, 600);
	int r;
	if (x->s->utf8) {
		r = buf_append(&b, t->p, t->len);
	} else {
		r = imap_mutf7_decode(t->p, t->len, &b);
		if (r < 0 && t->type != IMAP_TOK_ATOM) {
			/* RFC 6855 3: a rev1 client may still send UTF-8 */
			buf_reset(&b);
			bool ascii = true;
			for (size_t i = 0; i < t->len; i++)
				if ((unsigned char)t->p[i] >= 0x80)
					ascii = false;
			r = ascii ? -1 : buf_append(&b, t->p, t->len);
		}
	}
	if (r < 0 || b.len == 0 || b.len >= 500 || memchr(b.data, '\0', b.len)) {
		buf_free(&b);
		imap_reply(x->s, "%s NO [CANNOT] Invalid mailbox name", x->tag);
		return -1;
	}
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	buf_free(&b);
	return 0;
}

int imap_mailbox_out(struct imap_session *s, const char *name, struct buf *out)
{
	if (s->utf8)
		return imap_append_string(out, name, strlen(name));
	struct buf b;
	buf_init(&b, 4096);
	int r = imap_mutf7_encode(name, strlen(name), &b);
	if (r == 0)
		r = imap_append_string(out, b.data ? b.data : "", b.len);
	buf_free(&b);
	return r;
}

/* ------------------------------------------------------------- flags */

static const struct {
	const char *name;
	unsigned bit;
} sysflags[] = {
    {"\\Seen", STORE_F_SEEN},       {"\\Answered", STORE_F_ANSWERED},
    {"\\Flagged", STORE_F_FLAGGED}, {"\\Deleted", STORE_F_DELETED},
    {"\\Draft", STORE_F_DRAFT},
};

void imap_flags_out(struct buf *out, unsigned flags, const char *keywords)
{
	buf_putc(out, '(');
	bool first = true;
	for (size_t i = 0; i < sizeof sysflags / sizeof sysflags[0]; i++) {
		if (flags & sysflags[i].bit) {
			if (!first)
				buf_putc(out, ' ');
			buf_puts(out, sysflags[i].name);
			first = false;
		}
	}
	if (keywords && keywords[0]) {
		if (!first)
			buf_putc(out, ' ');
		buf_puts(out, keywords);
	}
	buf_putc(out, ')');
}

/* keyword = atom (no "\"), flag-extension "\Recent" is ignored. */
static int one_flag(const struct imap_tok *t, unsigned *flags, char *kw, size_t kwsz)
{
	if (t->type != IMAP_TOK_ATOM || t->len == 0)
		return -1;
	for (size_t i = 0; i < t->len; i++) {
		unsigned char c = (unsigned char)t->p[i];
		if (c == '*' || c == '%' || c == ']' || c == '[' || (c == '\\' && i > 0))
			return -1;
	}
	if (t->p[0] == '\\') {
		for (size_t i = 0; i < sizeof sysflags / sizeof sysflags[0]; i++)
			if (strutil_eq_ci(t->p, t->len, sysflags[i].name)) {
				*flags |= sysflags[i].bit;
				return 0;
			}
		if (strutil_eq_ci(t->p, t->len, "\\Recent"))
			return 0;
		return -1;
	}
	size_t used = strlen(kw);
	if (used + t->len + 2 > kwsz)
		return -1;
	if (used)
		kw[used++] = ' ';
	memcpy(kw + used, t->p, t->len);
	kw[used + t->len] = '\0';
	return 0;
}

int imap_flags_arg(const struct imap_tok *t, size_t n, size_t *used, unsigned *flags, char *kw,
		   size_t kwsz)
{
	*flags = 0;
	kw[0] = '\0';
	if (n == 0)
		return -1;
	if (t[0].type != IMAP_TOK_LPAREN) {
		*used = 1;
		return one_flag(&t[0], flags, kw, kwsz);
	}
	size_t i = 1;
	while (i < n && t[i].type != IMAP_TOK_RPAREN) {
		if (one_flag(&t[i], flags, kw, kwsz) < 0)
			return -1;
		i++;
	}
	if (i >= n)
		return -1;
	*used = i + 1;
	return 0;
}

/* ------------------------------------------------------ the view */

uint32_t imap_seq_of(const struct imap_sel *sel, uint32_t uid)
{
	return imap_view_seq(&sel->v, uid);
}

int imap_seqset_arg(struct imap_cmdctx *x, const struct imap_tok *t, struct imap_seqset *out)
{
	struct imap_sel *sel = x->s->sel;
	struct imap_seqset set;
	out->r = NULL;
	out->n = 0;
	if (t->type == IMAP_TOK_ATOM && t->len == 1 && t->p[0] == '$') {
		/* RFC 5182: the saved result, for sequence and UID commands alike */
		imap_seqset_copy(out, &sel->saved);
		return 0;
	}
	if (t->type != IMAP_TOK_ATOM || imap_parse_seqset(t->p, t->len, &set) < 0) {
		imap_bad(x, "Invalid sequence set");
		return -1;
	}
	if (!x->uid) {
		for (size_t i = 0; i < set.n; i++)
			if (set.r[i].lo > sel->v.n || set.r[i].hi > sel->v.n) {
				imap_seqset_free(&set);
				imap_bad(x, "Invalid message sequence number");
				return -1;
			}
		imap_seqset_resolve(&set, sel->v.n);
		/* turn sequence ranges into uid ranges (runs of the view) */
		size_t cap = 0;
		for (size_t i = 0; i < set.n; i++) {
			for (uint32_t q = set.r[i].lo; q <= set.r[i].hi && q <= sel->v.n; q++) {
				uint32_t uid = imap_view_uid(&sel->v, q);
				if (out->n > 0 && out->r[out->n - 1].hi + 1 == uid) {
					out->r[out->n - 1].hi = uid;
					continue;
				}
				if (out->n == cap) {
					cap = cap ? cap * 2 : 8;
					out->r = xreallocarray(out->r, cap, sizeof *out->r);
				}
				out->r[out->n].lo = out->r[out->n].hi = uid;
				out->n++;
				if (q == UINT32_MAX)
					break;
			}
		}
		imap_seqset_free(&set);
		return 0;
	}
	imap_seqset_resolve(&set, imap_view_last(&sel->v));
	*out = set;
	return 0;
}

void imap_seqset_copy(struct imap_seqset *dst, const struct imap_seqset *src)
{
	dst->n = src->n;
	dst->r = NULL;
	if (src->n) {
		dst->r = xreallocarray(NULL, src->n, sizeof *dst->r);
		memcpy(dst->r, src->r, src->n * sizeof *dst->r);
	}
}

size_t imap_set_seqs(const struct imap_sel *sel, const struct imap_seqset *set, uint32_t **seqs)
{
	size_t n = 0, cap = 0;
	*seqs = NULL;
	for (size_t i = 0; i < set->n; i++) {
		for (uint32_t q = imap_view_seq_from(&sel->v, set->r[i].lo);
		     q <= sel->v.n && imap_view_uid(&sel->v, q) <= set->r[i].hi; q++) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				*seqs = xreallocarray(*seqs, cap, sizeof **seqs);
			}
			(*seqs)[n++] = q;
		}
	}
	return n;
}

void imap_own_modseq(struct imap_session *s, uint64_t modseq)
{
	struct imap_sel *sel = s->sel;
	if (sel == NULL || modseq == 0)
		return;
	if (sel->n_own < sizeof sel->own / sizeof sel->own[0])
		sel->own[sel->n_own++] = modseq;
}

struct sync_ctx {
	struct imap_session *s;
	struct buf out;
};

static int changed_cb(void *ctx, const struct store_message *m)
{
	struct sync_ctx *c = ctx;
	struct imap_sel *sel = c->s->sel;
	for (unsigned i = 0; i < sel->n_own; i++)
		if (sel->own[i] == m->modseq)
			return 0;
	uint32_t seq = imap_seq_of(sel, m->uid);
	if (seq == 0)
		return 0;
	buf_printf(&c->out, "* %lu FETCH (UID %lu FLAGS ", (unsigned long)seq,
		   (unsigned long)m->uid);
	imap_flags_out(&c->out, m->flags, m->keywords);
	buf_puts(&c->out, ")\r\n");
	if (c->out.len > 65536) {
		imap_send(c->s, c->out.data, c->out.len);
		buf_reset(&c->out);
	}
	return 0;
}

void imap_sync(struct imap_session *s, bool allow_expunge)
{
	struct imap_sel *sel = s->sel;
	s->notified = false;
	if (sel == NULL)
		return;
	uint32_t uidvalidity, uidnext;
	uint64_t hms;
	int r = store_imap_mailbox_state(s->acct, sel->id, &uidvalidity, &uidnext, &hms);
	if (r < 0) {
		log_error("imap session=%s action=sync error=database", s->id);
		return;
	}
	if (r == 0 || uidvalidity != sel->uidvalidity) {
		/* deleted or renamed away under us: nothing sensible remains */
		log_info("imap session=%s user=%s action=close reason=mailbox_gone", s->id,
			 s->address);
		close_with(s, "* BYE The selected mailbox was deleted");
		return;
	}
	char err[256];
	struct sync_ctx c = {s, BUF_INIT};
	if (allow_expunge && sel->modseq_exp < hms) {
		uint32_t *gone;
		size_t n_gone;
		if (store_imap_expunged_since(s->acct, sel->id, sel->modseq_exp, &gone, &n_gone,
					      err, sizeof err) == 0) {
			for (size_t i = n_gone; i-- > 0;) {
				uint32_t seq = imap_seq_of(sel, gone[i]);
				if (seq == 0)
					continue;
				imap_view_remove(&sel->v, seq);
				buf_printf(&c.out, "* %lu EXPUNGE\r\n", (unsigned long)seq);
			}
			free(gone);
			sel->modseq_exp = hms;
		}
	}
	if (sel->modseq_flags < hms && sel->v.n > 0) {
		if (store_imap_changed_since(s->acct, sel->id, sel->modseq_flags,
					     imap_view_last(&sel->v), changed_cb, &c, err,
					     sizeof err) == 0) {
			sel->modseq_flags = hms;
			sel->n_own = 0;
		}
	} else if (sel->modseq_flags < hms) {
		sel->modseq_flags = hms;
		sel->n_own = 0;
	}
	uint32_t last = imap_view_last(&sel->v);
	if (uidnext > last + 1) {
		uint32_t *add;
		size_t n_add;
		if (store_imap_uids(s->acct, sel->id, last + 1, &add, &n_add, err, sizeof err) ==
			0 &&
		    n_add > 0) {
			imap_view_append(&sel->v, add, n_add);
			buf_printf(&c.out, "* %lu EXISTS\r\n", (unsigned long)sel->v.n);
			if (!s->rev2)
				buf_puts(&c.out, "* 0 RECENT\r\n");
		}
		free(add);
	}
	if (c.out.len)
		imap_send(s, c.out.data, c.out.len);
	buf_free(&c.out);
}

void imap_unselect(struct imap_session *s)
{
	if (s->sel) {
		free(s->sel->name);
		imap_view_free(&s->sel->v);
		imap_seqset_free(&s->sel->saved);
		free(s->sel);
		s->sel = NULL;
	}
	if (s->state == IMAP_STATE_SELECTED)
		set_state(s, IMAP_STATE_AUTH);
}

/* ------------------------------------------------------ notification */

static void wake_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct imap_server *srv = ctx;
	while (srv->pending) {
		struct imap_session *s = srv->pending;
		srv->pending = s->pending_next;
		s->pending = false;
		s->pending_next = NULL;
		if (s->mode == IMAP_MODE_IDLE && s->notified)
			imap_sync(s, true);
	}
}

static void notify_cb(void *ctx, int64_t account_id)
{
	struct imap_session *s = ctx;
	s->notified = true;
	if (s->mode == IMAP_MODE_IDLE && !s->pending) {
		s->pending = true;
		s->pending_next = s->srv->pending;
		s->srv->pending = s;
		event_active(s->srv->wake_ev, EV_TIMEOUT, 0);
	}
}

static void pending_remove(struct imap_session *s)
{
	if (!s->pending)
		return;
	struct imap_session **pp = &s->srv->pending;
	while (*pp && *pp != s)
		pp = &(*pp)->pending_next;
	if (*pp)
		*pp = s->pending_next;
	s->pending = false;
	s->pending_next = NULL;
}

/* ------------------------------------------------------ authentication */

static void send_tagged_capability_ok(struct imap_session *s, const char *tag, const char *text)
{
	struct buf b = BUF_INIT;
	imap_capabilities(s, &b);
	imap_reply(s, "%s OK [CAPABILITY %s] %s", tag, buf_cstr(&b), text);
	buf_free(&b);
}

static void delay_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct imap_session *s = ctx;
	if (s->mode != IMAP_MODE_DELAY)
		return;
	imap_reply(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed", s->tag ? s->tag : "*");
	free(s->tag);
	s->tag = NULL;
	session_enter(s, IMAP_MODE_READ);
	if (s->auth_failures >= IMAP_MAX_AUTH_FAILURES) {
		close_with(s, "* BYE Too many failed logins");
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
	process_input(s);
}

static void login_failed(struct imap_session *s, const char *tag, const char *user, const char *why)
{
	char u[128];
	log_escape(u, sizeof u, user, strlen(user));
	log_info("imap session=%s client=%s action=login user=%s result=failed reason=%s", s->id,
		 s->ip, u, why);
	s->auth_failures++;
	free(s->tag);
	s->tag = xstrdup(tag);
	if (s->delay_ev == NULL)
		s->delay_ev = evtimer_new(s->srv->base, delay_cb, s);
	if (s->delay_ev == NULL) {
		close_with(s, "* BYE Internal error");
		return;
	}
	session_enter(s, IMAP_MODE_DELAY);
	bufferevent_disable(s->bev, EV_READ);
	struct timeval tv = {IMAP_AUTH_FAIL_DELAY, 0};
	evtimer_add(s->delay_ev, &tv);
}

static void try_login(struct imap_session *s, const char *tag, const char *user, const char *pass)
{
	struct imap_server *srv = s->srv;
	struct store_account_info info;
	int found = user[0] ? store_account_get(srv->store, user, &info) : 0;
	if (found < 0) {
		log_error("imap session=%s action=account_get error=database", s->id);
		imap_reply(s, "%s NO [UNAVAILABLE] Authentication is unavailable, try later", tag);
		return;
	}
	bool ok;
	if (found == 1 && info.pwhash[0] != '\0') {
		ok = password_verify(pass, info.pwhash);
	} else {
		/* as long as a real check, so timing does not tell who exists */
		if (srv->dummy_hash[0] == '\0' &&
		    password_hash("tern-dummy-password", srv->dummy_hash, sizeof srv->dummy_hash) <
			0)
			srv->dummy_hash[0] = '\0';
		if (srv->dummy_hash[0] != '\0')
			(void)password_verify(pass, srv->dummy_hash);
		ok = false;
	}
	if (!ok) {
		login_failed(s, tag, user, found == 1 ? "password" : "unknown_user");
		return;
	}
	struct store_account *a = NULL;
	if (store_account_open(srv->store, info.address, &a) <= 0) {
		log_error("imap session=%s action=open_account user=%s", s->id, info.address);
		imap_reply(s, "%s NO [UNAVAILABLE] Cannot open the account, try later", tag);
		return;
	}
	s->acct = a;
	s->address = xstrdup(info.address);
	s->sub_id = store_notify_subscribe(srv->store, info.id, notify_cb, s);
	if (s->sub_id < 0)
		s->sub_id = 0;
	set_state(s, IMAP_STATE_AUTH);
	log_info("imap session=%s client=%s action=login user=%s result=ok", s->id, s->ip,
		 s->address);
	send_tagged_capability_ok(s, tag, "Logged in");
}

/* SASL PLAIN message: [authzid] NUL authcid NUL passwd (RFC 4616). */
static void auth_plain(struct imap_session *s, const char *tag, const unsigned char *m, size_t n)
{
	const unsigned char *z1 = memchr(m, 0, n);
	const unsigned char *z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - m)) : NULL;
	if (z1 == NULL || z2 == NULL) {
		login_failed(s, tag, "", "bad_plain_message");
		return;
	}
	size_t zl = (size_t)(z1 - m), ul = (size_t)(z2 - z1 - 1), pl = n - (size_t)(z2 + 1 - m);
	if (ul == 0 || ul > IMAP_USER_MAX || pl == 0 || pl > 255 || zl > IMAP_USER_MAX) {
		login_failed(s, tag, "", "bad_plain_message");
		return;
	}
	char user[IMAP_USER_MAX + 1], pass[256];
	memcpy(user, z1 + 1, ul);
	user[ul] = '\0';
	memcpy(pass, z2 + 1, pl);
	pass[pl] = '\0';
	if (zl > 0 && !strutil_eq_ci((const char *)m, zl, user))
		login_failed(s, tag, user, "authzid");
	else
		try_login(s, tag, user, pass);
	explicit_bzero(pass, sizeof pass);
}

static void auth_response(struct imap_session *s, const char *tag, const char *p, size_t n)
{
	unsigned char m[1024];
	size_t len = 0;
	if (!(n == 1 && p[0] == '=') && imap_base64_decode(p, n, m, sizeof m, &len) < 0) {
		imap_reply(s, "%s BAD Invalid base64 data", tag);
		client_error(s);
		return;
	}
	auth_plain(s, tag, m, len);
	explicit_bzero(m, sizeof m);
}

static const char privacy_required[] = "NO [PRIVACYREQUIRED] Plaintext authentication "
				       "disallowed without TLS";

static void cmd_login(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n != 2 || !imap_tok_is_string(&x->a[0]) || !imap_tok_is_string(&x->a[1])) {
		imap_bad(x, "LOGIN needs a user name and a password");
		return;
	}
	if (!plaintext_ok(s)) {
		imap_reply(s, "%s %s", x->tag, privacy_required);
		client_error(s);
		return;
	}
	const struct imap_tok *u = &x->a[0], *p = &x->a[1];
	if (u->len > IMAP_USER_MAX || p->len > 255 || memchr(u->p, 0, u->len) ||
	    memchr(p->p, 0, p->len)) {
		login_failed(s, x->tag, "", "too_long");
		return;
	}
	char user[IMAP_USER_MAX + 1], pass[256];
	memcpy(user, u->p, u->len);
	user[u->len] = '\0';
	memcpy(pass, p->p, p->len);
	pass[p->len] = '\0';
	try_login(s, x->tag, user, pass);
	explicit_bzero(pass, sizeof pass);
}

static void cmd_authenticate(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n < 1 || x->n > 2 || x->a[0].type != IMAP_TOK_ATOM ||
	    (x->n == 2 && x->a[1].type != IMAP_TOK_ATOM)) {
		imap_bad(x, "AUTHENTICATE needs a mechanism");
		return;
	}
	if (!strutil_eq_ci(x->a[0].p, x->a[0].len, "PLAIN")) {
		imap_reply(s, "%s NO Unsupported authentication mechanism", x->tag);
		client_error(s);
		return;
	}
	if (!plaintext_ok(s)) {
		imap_reply(s, "%s %s", x->tag, privacy_required);
		client_error(s);
		return;
	}
	if (x->n == 2) {
		auth_response(s, x->tag, x->a[1].p, x->a[1].len);
		return;
	}
	free(s->tag);
	s->tag = xstrdup(x->tag);
	session_enter(s, IMAP_MODE_SASL);
	imap_reply(s, "+ ");
}

/* The line after "+ " of AUTHENTICATE. */
static void sasl_line(struct imap_session *s, const char *p, size_t n)
{
	char *tag = s->tag;
	s->tag = NULL;
	session_enter(s, IMAP_MODE_READ);
	if (n == 1 && p[0] == '*') {
		imap_reply(s, "%s BAD Authentication cancelled", tag);
		client_error(s);
	} else {
		auth_response(s, tag, p, n);
	}
	free(tag);
}

/* ---------------------------------------------------- simple commands */

static void cmd_capability(struct imap_cmdctx *x)
{
	if (x->n != 0) {
		imap_bad(x, "CAPABILITY takes no arguments");
		return;
	}
	struct buf b = BUF_INIT;
	imap_capabilities(x->s, &b);
	imap_reply(x->s, "* CAPABILITY %s", buf_cstr(&b));
	buf_free(&b);
	imap_reply(x->s, "%s OK Capability completed", x->tag);
}

static void cmd_noop(struct imap_cmdctx *x)
{
	if (x->n != 0) {
		imap_bad(x, "No arguments expected");
		return;
	}
	imap_sync(x->s, true);
	imap_reply(x->s, "%s OK %s completed", x->tag,
		   strutil_eq_ci(x->c->name, x->c->name_len, "CHECK") ? "Check" : "NOOP");
}

static void cmd_logout(struct imap_cmdctx *x)
{
	if (x->n != 0) {
		imap_bad(x, "LOGOUT takes no arguments");
		return;
	}
	imap_reply(x->s, "* BYE Logging out");
	imap_reply(x->s, "%s OK Logout completed", x->tag);
	x->s->state = IMAP_STATE_LOGOUT;
	close_with(x->s, NULL);
}

static void cmd_enable(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n == 0) {
		imap_bad(x, "ENABLE needs a capability");
		return;
	}
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < x->n; i++) {
		if (x->a[i].type != IMAP_TOK_ATOM) {
			buf_free(&b);
			imap_bad(x, "Capability names are atoms");
			return;
		}
	}
	for (size_t i = 0; i < x->n; i++) {
		if (imap_tok_eq(&x->a[i], "IMAP4rev2")) {
			if (!s->rev2)
				buf_puts(&b, " IMAP4rev2");
			s->rev2 = true;
			s->utf8 = true;
		} else if (imap_tok_eq(&x->a[i], "UTF8=ACCEPT")) {
			if (!s->utf8 || s->rev2)
				buf_puts(&b, " UTF8=ACCEPT");
			s->utf8 = true;
		}
	}
	imap_reply(s, "* ENABLED%s", buf_cstr(&b));
	buf_free(&b);
	imap_reply(s, "%s OK Enabled", x->tag);
}

static void cmd_id(struct imap_cmdctx *x)
{
	/* ID ( "name" "value" ... ) or ID NIL (RFC 2971): logged, answered */
	bool ok = x->n == 1 ? imap_tok_is_nil(&x->a[0])
			    : x->n >= 2 && x->a[0].type == IMAP_TOK_LPAREN &&
				  x->a[x->n - 1].type == IMAP_TOK_RPAREN && (x->n - 2) % 2 == 0 &&
				  x->n - 2 <= 60;
	for (size_t i = 1; ok && x->n > 1 && i + 1 < x->n; i++)
		if (!imap_tok_is_string(&x->a[i]))
			ok = false;
	if (!ok) {
		imap_bad(x, "Invalid ID parameters");
		return;
	}
	for (size_t i = 1; x->n > 1 && i + 2 < x->n; i += 2) {
		if (imap_tok_eq(&x->a[i], "name") || imap_tok_eq(&x->a[i], "version")) {
			char v[64];
			log_escape(v, sizeof v, x->a[i + 1].p, x->a[i + 1].len);
			log_info("imap session=%s action=id %.*s=%s", x->s->id, (int)x->a[i].len,
				 x->a[i].p, v);
		}
	}
	imap_reply(x->s, "* ID (\"name\" \"Tern\")");
	imap_reply(x->s, "%s OK ID completed", x->tag);
}

static void cmd_unselect(struct imap_cmdctx *x)
{
	if (x->n != 0) {
		imap_bad(x, "No arguments expected");
		return;
	}
	imap_unselect(x->s);
	imap_reply(x->s, "%s OK Unselect completed", x->tag);
}

static void cmd_idle(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n != 0) {
		imap_bad(x, "IDLE takes no arguments");
		return;
	}
	free(s->tag);
	s->tag = xstrdup(x->tag);
	session_enter(s, IMAP_MODE_IDLE);
	imap_reply(s, "+ idling");
	imap_sync(s, true);
}

static void idle_line(struct imap_session *s, const char *p, size_t n)
{
	char *tag = s->tag;
	s->tag = NULL;
	pending_remove(s);
	session_enter(s, IMAP_MODE_READ);
	if (strutil_eq_ci(p, n, "DONE")) {
		imap_sync(s, true);
		imap_reply(s, "%s OK Idle completed", tag);
	} else {
		imap_reply(s, "%s BAD Expected DONE", tag);
		client_error(s);
	}
	free(tag);
}

/* ------------------------------------------------------ command table */

enum {
	C_NOAUTH = 1 << 0,
	C_AUTH = 1 << 1,
	C_SEL = 1 << 2,
	C_UID = 1 << 3,       /* has a UID form */
	C_NOEXPUNGE = 1 << 4, /* no EXPUNGE responses after it (non-UID form) */
};
#define C_ANY (C_NOAUTH | C_AUTH | C_SEL)
#define C_LOGGED (C_AUTH | C_SEL)

static const struct {
	const char *name;
	void (*run)(struct imap_cmdctx *x);
	unsigned flags;
} commands[] = {
    {"CAPABILITY", cmd_capability, C_ANY},
    {"NOOP", cmd_noop, C_ANY},
    {"LOGOUT", cmd_logout, C_ANY},
    {"ID", cmd_id, C_ANY},
    {"LOGIN", cmd_login, C_NOAUTH},
    {"AUTHENTICATE", cmd_authenticate, C_NOAUTH},
    {"ENABLE", cmd_enable, C_LOGGED},
    {"SELECT", imap_cmd_select, C_LOGGED},
    {"EXAMINE", imap_cmd_select, C_LOGGED},
    {"CREATE", imap_cmd_create, C_LOGGED},
    {"DELETE", imap_cmd_delete, C_LOGGED},
    {"RENAME", imap_cmd_rename, C_LOGGED},
    {"SUBSCRIBE", imap_cmd_subscribe, C_LOGGED},
    {"UNSUBSCRIBE", imap_cmd_subscribe, C_LOGGED},
    {"LIST", imap_cmd_list, C_LOGGED},
    {"LSUB", imap_cmd_list, C_LOGGED},
    {"NAMESPACE", imap_cmd_namespace, C_LOGGED},
    {"STATUS", imap_cmd_status, C_LOGGED},
    {"APPEND", imap_cmd_append, C_LOGGED},
    {"IDLE", cmd_idle, C_LOGGED},
    {"CHECK", cmd_noop, C_SEL},
    {"CLOSE", imap_cmd_close, C_SEL},
    {"UNSELECT", cmd_unselect, C_SEL},
    {"EXPUNGE", imap_cmd_expunge, C_SEL | C_UID},
    {"FETCH", imap_cmd_fetch, C_SEL | C_UID | C_NOEXPUNGE},
    {"STORE", imap_cmd_store, C_SEL | C_UID | C_NOEXPUNGE},
    {"SEARCH", imap_cmd_search, C_SEL | C_UID | C_NOEXPUNGE},
    {"COPY", imap_cmd_copy, C_SEL | C_UID | C_NOEXPUNGE},
    {"MOVE", imap_cmd_copy, C_SEL | C_UID | C_NOEXPUNGE},
};

static void run_command(struct imap_session *s, char *line, size_t n)
{
	struct imap_command c;
	const char *why;
	enum imap_parse_error e = imap_parse_command(line, n, &c, &why);
	char tag[IMAP_TAG_MAX + 1] = "*";
	if (c.tag_len > 0) {
		memcpy(tag, c.tag, c.tag_len);
		tag[c.tag_len] = '\0';
	}
	if (s->state == IMAP_STATE_NOAUTH && ++s->preauth_cmds > IMAP_MAX_PREAUTH_COMMANDS) {
		imap_command_free(&c);
		log_info("imap session=%s client=%s action=close reason=preauth_flood", s->id,
			 s->ip);
		close_with(s, "* BYE Too many commands before login");
		return;
	}
	if (e == IMAP_PARSE_NO_TAG) {
		imap_command_free(&c);
		imap_reply(s, "* BAD %s", why);
		client_error(s);
		return;
	}
	struct imap_cmdctx x = {s, tag, &c, c.tok, c.n_tok, false};
	if (e != IMAP_PARSE_OK) {
		imap_bad(&x, why);
		imap_command_free(&c);
		return;
	}
	const char *name = c.name;
	size_t name_len = c.name_len;
	if (strutil_eq_ci(c.name, c.name_len, "UID")) {
		if (c.n_tok == 0 || c.tok[0].type != IMAP_TOK_ATOM) {
			imap_bad(&x, "UID needs a command");
			imap_command_free(&c);
			return;
		}
		x.uid = true;
		name = c.tok[0].p;
		name_len = c.tok[0].len;
		x.a = c.tok + 1;
		x.n = c.n_tok - 1;
	}
	unsigned need = s->state == IMAP_STATE_NOAUTH ? C_NOAUTH
			: s->state == IMAP_STATE_AUTH ? C_AUTH
						      : C_SEL;
	size_t i;
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strutil_eq_ci(name, name_len, commands[i].name))
			break;
	if (i == sizeof commands / sizeof commands[0] || (x.uid && !(commands[i].flags & C_UID))) {
		imap_bad(&x, "Unknown command");
		imap_command_free(&c);
		return;
	}
	if (!(commands[i].flags & need)) {
		imap_bad(&x, s->state == IMAP_STATE_NOAUTH ? "Log in first"
			     : (commands[i].flags & C_SEL) ? "Select a mailbox first"
							   : "Command not valid in this state");
		imap_command_free(&c);
		return;
	}
	s->uid_cmd = x.uid;
	/* Untagged updates go before the tagged reply; the handler writes its
	 * tagged reply itself, so pending changes are flushed by the handlers
	 * that allow them (NOOP, IDLE...) and otherwise here, before it. */
	bool allow_exp = x.uid || !(commands[i].flags & C_NOEXPUNGE);
	if (s->notified && s->sel && s->state == IMAP_STATE_SELECTED &&
	    commands[i].run != cmd_noop && commands[i].run != cmd_idle)
		imap_sync(s, allow_exp);
	commands[i].run(&x);
	imap_command_free(&c);
}

/* ---------------------------------------------------------------- FETCH */

static void fetch_done(struct imap_session *s)
{
	session_enter(s, IMAP_MODE_READ);
	if (s->srv->shutting_down) {
		close_with(s, "* BYE Server shutting down");
		return;
	}
	bufferevent_enable(s->bev, EV_READ);
}

void imap_fetch_start(struct imap_session *s)
{
	session_enter(s, IMAP_MODE_FETCH);
	/* pipelined commands wait in the socket while the answer is sent */
	bufferevent_disable(s->bev, EV_READ);
	if (imap_fetch_more(s))
		fetch_done(s);
}

/* ---------------------------------------------------------------- input */

static void process_input(struct imap_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	while (s->mode == IMAP_MODE_READ || s->mode == IMAP_MODE_SASL ||
	       s->mode == IMAP_MODE_IDLE) {
		if (evbuffer_get_length(out) > IMAP_OUTPUT_HIGH) {
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		size_t used;
		enum imap_read_result r = imap_reader_feed(&s->rd, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		char tag[IMAP_TAG_MAX + 1];
		switch (r) {
		case IMAP_READ_MORE:
			continue;
		case IMAP_READ_CONTINUE:
			imap_reply(s, "+ Ready for literal data");
			continue;
		case IMAP_READ_LITERAL_REFUSED:
			imap_reader_tag(&s->rd, tag, sizeof tag);
			imap_reply(s, "%s NO [TOOBIG] Literal too big", tag);
			imap_reader_next(&s->rd);
			client_error(s);
			continue;
		case IMAP_READ_LINE_TOO_LONG:
			log_info("imap session=%s client=%s action=close reason=line_too_long",
				 s->id, s->ip);
			close_with(s, "* BYE Line too long");
			return;
		case IMAP_READ_FATAL:
			log_info("imap session=%s client=%s action=close reason=literal_too_big",
				 s->id, s->ip);
			close_with(s, "* BYE [TOOBIG] Literal too big");
			return;
		case IMAP_READ_COMMAND:
			break;
		}
		char *line = s->rd.cmd.data ? s->rd.cmd.data : (char *)"";
		size_t n = s->rd.cmd.len;
		bool nul = s->rd.has_nul;
		if (s->mode == IMAP_MODE_SASL) {
			sasl_line(s, line, nul ? 0 : n);
		} else if (s->mode == IMAP_MODE_IDLE) {
			idle_line(s, line, n);
		} else if (nul) {
			imap_reader_tag(&s->rd, tag, sizeof tag);
			imap_reply(s, "%s BAD NUL byte in command", tag);
			client_error(s);
		} else {
			run_command(s, line, n);
		}
		imap_reader_next(&s->rd);
	}
	if (!imap_reader_busy(&s->rd))
		imap_reader_shrink(&s->rd);
}

/* ------------------------------------------------------------ lifecycle */

static void session_unlink(struct imap_session *s)
{
	struct imap_server *srv = s->srv;
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
	srv->n_sessions--;
}

static void session_release(struct imap_session *s)
{
	pending_remove(s);
	if (s->sub_id > 0) {
		store_notify_unsubscribe(s->srv->store, s->sub_id);
		s->sub_id = 0;
	}
	if (s->delay_ev)
		event_del(s->delay_ev);
}

static void session_free(struct imap_session *s)
{
	session_release(s);
	imap_fetch_free(s);
	if (s->delay_ev)
		event_free(s->delay_ev);
	if (s->sel) {
		free(s->sel->name);
		imap_view_free(&s->sel->v);
		imap_seqset_free(&s->sel->saved);
		free(s->sel);
	}
	free(s->tag);
	free(s->address);
	imap_reader_free(&s->rd);
	if (s->bev)
		bufferevent_free(s->bev);
	free(s);
}

static void session_kill(struct imap_session *s)
{
	if (s->mode == IMAP_MODE_DEAD)
		return;
	session_release(s);
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	s->mode = IMAP_MODE_DEAD;
	session_unlink(s);
	s->next = s->srv->dead;
	s->srv->dead = s;
	event_active(s->srv->reaper, EV_TIMEOUT, 0);
}

static void reaper_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct imap_server *srv = ctx;
	while (srv->dead) {
		struct imap_session *s = srv->dead;
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
	struct imap_session *s = ctx;
	if (s->mode == IMAP_MODE_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_kill(s);
		return;
	}
	if (s->mode == IMAP_MODE_FETCH) {
		if (!imap_fetch_more(s))
			return;
		fetch_done(s);
		if (s->mode != IMAP_MODE_READ)
			return;
		process_input(s); /* commands pipelined behind the FETCH */
		return;
	}
	if ((s->mode == IMAP_MODE_READ || s->mode == IMAP_MODE_SASL || s->mode == IMAP_MODE_IDLE) &&
	    !(bufferevent_get_enabled(bev) & EV_READ)) {
		bufferevent_enable(bev, EV_READ);
		process_input(s);
	}
}

static void session_event_cb(struct bufferevent *bev, short what, void *ctx)
{
	struct imap_session *s = ctx;
	if ((what & BEV_EVENT_TIMEOUT) && s->mode != IMAP_MODE_CLOSING) {
		log_info("imap session=%s client=%s action=close reason=timeout", s->id, s->ip);
		close_with(s, "* BYE Autologout; idle for too long");
		return;
	}
	if (what & BEV_EVENT_EOF)
		log_debug("imap session=%s client=%s action=disconnect", s->id, s->ip);
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

void imap_server_accept(struct imap_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
			int salen)
{
	struct imap_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	fsutil_unique_id(s->id);
	format_ip(sa, s->ip, sizeof s->ip, &s->loopback);
	imap_reader_init(&s->rd, IMAP_PREAUTH_LINE_MAX, IMAP_PREAUTH_LITERAL_MAX);
	evutil_make_socket_nonblocking(fd);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
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
	bufferevent_setwatermark(s->bev, EV_READ, 0, 256 * 1024);
	bufferevent_setwatermark(s->bev, EV_WRITE, IMAP_OUTPUT_LOW, 0);
	struct timeval tv = {IMAP_TIMEOUT_PREAUTH, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	log_debug("imap session=%s client=%s action=connect", s->id, s->ip);
	s->state = IMAP_STATE_NOAUTH;
	if (srv->shutting_down || srv->n_sessions > srv->cfg->smtp_max_connections) {
		close_with(s, "* BYE [UNAVAILABLE] Too many connections, try again later");
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	session_enter(s, IMAP_MODE_READ);
	struct buf b = BUF_INIT;
	imap_capabilities(s, &b);
	imap_reply(s, "* OK [CAPABILITY %s] Tern IMAP server ready", buf_cstr(&b));
	buf_free(&b);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

struct imap_server *imap_server_new(struct event_base *base, struct store *store,
				    const struct config *cfg)
{
	struct imap_server *srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->store = store;
	srv->cfg = cfg;
	srv->reaper = event_new(base, -1, 0, reaper_cb, srv);
	srv->wake_ev = event_new(base, -1, 0, wake_cb, srv);
	if (srv->reaper == NULL || srv->wake_ev == NULL)
		fatal(1, "cannot create event");
	return srv;
}

void imap_server_set_config(struct imap_server *srv, const struct config *cfg)
{
	srv->cfg = cfg;
}

size_t imap_server_sessions(const struct imap_server *srv)
{
	return srv->n_sessions;
}

void imap_server_shutdown(struct imap_server *srv, void (*cb)(void *ctx), void *ctx)
{
	srv->shutting_down = true;
	srv->shutdown_cb = cb;
	srv->shutdown_ctx = ctx;
	struct imap_session *s = srv->sessions;
	while (s != NULL) {
		struct imap_session *next = s->next;
		if (s->mode == IMAP_MODE_CLOSING) {
			struct timeval tv = {2, 0};
			bufferevent_set_timeouts(s->bev, &tv, &tv);
		} else {
			if (s->delay_ev)
				event_del(s->delay_ev);
			close_with(s, "* BYE Server shutting down");
		}
		s = next;
	}
	event_active(srv->reaper, EV_TIMEOUT, 0);
}

void imap_server_free(struct imap_server **srvp)
{
	struct imap_server *srv = *srvp;
	if (srv == NULL)
		return;
	while (srv->sessions) {
		struct imap_session *s = srv->sessions;
		session_unlink(s);
		session_free(s);
	}
	while (srv->dead) {
		struct imap_session *s = srv->dead;
		srv->dead = s->next;
		session_free(s);
	}
	event_free(srv->reaper);
	event_free(srv->wake_ev);
	explicit_bzero(srv->dummy_hash, sizeof srv->dummy_hash);
	free(srv);
	*srvp = NULL;
}
