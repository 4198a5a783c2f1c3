/*
 * imap-session.c - IMAP sessions on a libevent loop (see imap-session.h
 * and docs/imap.md): connection life, input, the command table, the
 * not-authenticated commands, IDLE, and keeping the session's view of the
 * selected mailbox in step with the store.  Protocol layer: uses the store,
 * auth (SASL exchanges through auth/authglue.h), tls and lib.  Mailbox,
 * message, FETCH and SEARCH
 * commands are in their own files (imap-private.h).
 *
 * States (RFC 9051 3): not authenticated -> authenticated <-> selected ->
 * logout.  Input goes through struct imap_reader (imap-parse.h): whole
 * commands with their literals, bounded.  All socket I/O goes through
 * s->bev, which STARTTLS replaces by a TLS one (tls/tls.h); on imaps it is
 * TLS from the start.
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
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authglue.h"
#include "base64.h"
#include "fsutil.h"
#include "imap-compress.h"
#include "imap-private.h"
#include "log.h"
#include "netaddr.h"
#include "strutil.h"
#include "tls.h"
#include "xalloc.h"

/* RFC 9051 5.4: an autologout timer of at least 30 minutes after login. */
#define IMAP_TIMEOUT_AUTH 1860
#define IMAP_TIMEOUT_PREAUTH 120
#define IMAP_MAX_AUTH_FAILURES 3
#define IMAP_MAX_PREAUTH_COMMANDS 30
#define IMAP_OUTPUT_HIGH (1024 * 1024)
#define IMAP_OUTPUT_LOW (256 * 1024)

static void session_write_cb(struct bufferevent *bev, void *ctx);
static void session_event_cb(struct bufferevent *bev, short what, void *ctx);
static void session_read_cb(struct bufferevent *bev, void *ctx);
static void session_kill(struct imap_session *s);
static void session_release(struct imap_session *s);
static void process_input(struct imap_session *s);

/* ------------------------------------------------------------ utilities */

/* Where a response goes: the socket, or the held responses of a write
 * whose commit is not durable yet. */
static struct evbuffer *output(struct imap_session *s)
{
	return s->holding ? s->held : bufferevent_get_output(s->bev);
}

void imap_reply(struct imap_session *s, const char *fmt, ...)
{
	struct evbuffer *out = output(s);
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

void imap_send(struct imap_session *s, const void *p, size_t n)
{
	evbuffer_add(output(s), p, n);
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
		imap_reader_set_limits(&s->rd, (size_t)s->srv->cfg->imap_max_line,
				       s->srv->cfg->smtp_max_message_size);
	} else { /* back there by UNAUTHENTICATE: the limits of a new connection */
		struct timeval tv = {IMAP_TIMEOUT_PREAUTH, 0};
		bufferevent_set_timeouts(s->bev, &tv, &tv);
		imap_reader_set_limits(&s->rd, (size_t)s->srv->cfg->imap_max_line,
				       IMAP_PREAUTH_LITERAL_MAX);
		s->preauth_cmds = 0;
	}
}

/* Sends a last line and closes once it is written. */
static void close_with(struct imap_session *s, const char *line)
{
	if (s->mode == IMAP_MODE_CLOSING || s->mode == IMAP_MODE_DEAD)
		return;
	if (s->holding) {
		/* not acknowledged: the client may retry (a duplicate, never
		 * a loss) */
		evbuffer_drain(s->held, evbuffer_get_length(s->held));
		s->holding = false;
	}
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

/* PLAIN, LOGIN and the LOGIN command send the password itself: only over
 * TLS, or on loopback when the config allows it (allow_plaintext_loopback,
 * for development). */
static bool plaintext_ok(const struct imap_session *s)
{
	return s->tls_on || (s->loopback && s->srv->cfg->allow_plaintext_loopback);
}

/* May mechanism m be used now?  SCRAM-SHA-256 reveals no password and is
 * always offered; -PLUS needs TLS (its channel binding). */
static bool mech_ok(const struct imap_session *s, enum sasl_mech m)
{
	switch (m) {
	case SASL_MECH_PLAIN:
	case SASL_MECH_LOGIN:
		return plaintext_ok(s);
	case SASL_MECH_SCRAM_SHA_256:
		return true;
	case SASL_MECH_SCRAM_SHA_256_PLUS:
		return s->tls_on && s->srv->cfg->auth_scram_plus;
	}
	return false;
}

/* IMAP4rev2 requires STARTTLS or implicit TLS (RFC 9051 6.2.1, 7.2.2), so
 * it is announced (and ENABLE IMAP4rev2 honoured) only with a certificate;
 * without one the server is an IMAP4rev1 server. */
static bool rev2_offered(const struct imap_session *s)
{
	return tls_available(s->srv->tls);
}

void imap_capabilities(struct imap_session *s, struct buf *out)
{
	buf_puts(out, "IMAP4rev1");
	if (rev2_offered(s))
		buf_puts(out, " IMAP4rev2");
	buf_puts(out, " LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT"
		      " UIDPLUS MULTIAPPEND MOVE CHILDREN LIST-EXTENDED LIST-STATUS SPECIAL-USE"
		      " ESEARCH SEARCHRES STATUS=SIZE UTF8=ACCEPT SORT CONDSTORE QRESYNC"
		      " THREAD=ORDEREDSUBJECT THREAD=REFERENCES");
	buf_puts(out, " QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE"); /* imap-quota.c */
	buf_puts(out, " COMPRESS=DEFLATE");                          /* imap-compress.c */
	buf_puts(out, " OBJECTID CREATE-SPECIAL-USE");               /* RFC 8474, RFC 6154 3 */
	buf_puts(out, " WITHIN SORT=DISPLAY ESORT");                 /* RFC 5032, 5957, 5267 3 */
	/* RFC 8437: not under COMPRESS (see cmd_unauthenticate) */
	if (s->z == NULL)
		buf_puts(out, " UNAUTHENTICATE");
	buf_puts(out, " PREVIEW");           /* RFC 8970: imap-fetch.c */
	buf_puts(out, " ACL LIST-MYRIGHTS"); /* RFC 4314, 8440: imap-acl.c */
	if (s->state != IMAP_STATE_NOAUTH)
		return;
	/* before login: how to get there */
	if (!s->tls_on && tls_available(s->srv->tls))
		buf_puts(out, " STARTTLS");
	if (!plaintext_ok(s))
		buf_puts(out, " LOGINDISABLED");
	static const enum sasl_mech mechs[] = {SASL_MECH_PLAIN, SASL_MECH_LOGIN,
					       SASL_MECH_SCRAM_SHA_256,
					       SASL_MECH_SCRAM_SHA_256_PLUS};
	for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
		if (mech_ok(s, mechs[i]))
			buf_printf(out, " AUTH=%s", sasl_mech_name(mechs[i]));
}

/* ------------------------------------------------------- mailbox names */

int imap_mailbox_decode(const struct imap_session *s, const struct imap_tok *t, char out[512])
{
	struct buf b;
	buf_init(&b, 600);
	int r;
	if (s->utf8) {
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
		return -1;
	}
	memcpy(out, b.data, b.len);
	out[b.len] = '\0';
	buf_free(&b);
	return 0;
}

static int mailbox_arg(struct imap_cmdctx *x, const struct imap_tok *t, char out[512],
		       const char *refusal)
{
	if (!imap_tok_is_string(t)) {
		imap_bad(x, "Mailbox name expected");
		return -1;
	}
	if (imap_mailbox_decode(x->s, t, out) < 0) {
		imap_reply(x->s, "%s %s", x->tag, refusal);
		return -1;
	}
	return 0;
}

int imap_mailbox_arg(struct imap_cmdctx *x, const struct imap_tok *t, char out[512])
{
	return mailbox_arg(x, t, out, "NO [CANNOT] Invalid mailbox name");
}

int imap_mailbox_arg_existing(struct imap_cmdctx *x, const struct imap_tok *t, char out[512])
{
	return mailbox_arg(x, t, out, "NO [NONEXISTENT] Mailbox does not exist");
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

void imap_flags_lines(struct imap_session *s, struct buf *out)
{
	const struct imap_sel *sel = s->sel;
	const char *sys = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";
	const char *kw = sel->keywords.len ? sel->keywords.data : "";
	const char *sp = kw[0] ? " " : "";
	buf_printf(out, "* FLAGS (%s%s%s)\r\n", sys, sp, kw);
	if (sel->readonly) {
		buf_puts(out, "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
	} else if (sel->shared && strcmp(sel->rights, STORE_ACL_RIGHTS) != 0) {
		/* RFC 4314 4: the flags this user's rights let them change */
		bool w = imap_acl_has(sel->rights, 'w');
		struct buf p = BUF_INIT;
		if (w)
			buf_puts(&p, " \\Answered \\Flagged \\Draft");
		if (imap_acl_has(sel->rights, 't'))
			buf_puts(&p, " \\Deleted");
		if (imap_acl_has(sel->rights, 's'))
			buf_puts(&p, " \\Seen");
		if (w)
			buf_printf(&p, "%s%s \\*", sp, kw);
		buf_printf(out, "* OK [PERMANENTFLAGS (%s)] Flags permitted\r\n",
			   p.len ? buf_cstr(&p) + 1 : "");
		buf_free(&p);
	} else {
		buf_printf(out, "* OK [PERMANENTFLAGS (%s%s%s \\*)] Flags permitted\r\n", sys, sp,
			   kw);
	}
}

/* True if the space-separated list holds word w[0..wl) (keywords compare
 * case-insensitively, RFC 9051 2.3.2). */
static bool keyword_in(const char *list, size_t n, const char *w, size_t wl)
{
	size_t i = 0;
	while (i < n) {
		size_t st = i;
		while (i < n && list[i] != ' ')
			i++;
		if (i - st == wl && strncasecmp(list + st, w, wl) == 0)
			return true;
		i++;
	}
	return false;
}

void imap_keywords_add(struct imap_sel *sel, const char *kw, bool *added)
{
	const char *p = kw;
	while (p && *p) {
		while (*p == ' ')
			p++;
		const char *w = p;
		while (*p && *p != ' ')
			p++;
		size_t wl = (size_t)(p - w);
		if (wl == 0 || keyword_in(sel->keywords.data, sel->keywords.len, w, wl))
			continue;
		size_t at = sel->keywords.len;
		if ((at && buf_putc(&sel->keywords, ' ') < 0) ||
		    buf_append(&sel->keywords, w, wl) < 0) {
			sel->keywords.len = at; /* full: the rest stays unannounced */
			if (sel->keywords.data)
				sel->keywords.data[at] = '\0';
			return;
		}
		*added = true;
	}
}

struct kw_load {
	struct imap_sel *sel;
	bool added;
};

static void kw_load_cb(void *ctx, const char *kw)
{
	struct kw_load *k = ctx;
	imap_keywords_add(k->sel, kw, &k->added);
}

bool imap_keywords_load(struct imap_session *s, struct buf *out)
{
	struct kw_load k = {s->sel, false};
	if (store_imap_keyword_sets(s->sel->acct, s->sel->id, kw_load_cb, &k) < 0)
		log_error("imap session=%s action=keywords error=database", s->id);
	if (k.added && out != NULL)
		imap_flags_lines(s, out);
	return k.added;
}

void imap_keywords_announce(struct imap_session *s, const char *kw, struct buf *out)
{
	bool added = false;
	if (s->sel != NULL && kw != NULL)
		imap_keywords_add(s->sel, kw, &added);
	if (added)
		imap_flags_lines(s, out);
}

void imap_flags_out(struct buf *out, unsigned flags, bool recent, const char *keywords)
{
	buf_putc(out, '(');
	bool first = true;
	for (size_t i = 0; i < STORE_N_SYSTEM_FLAGS; i++) {
		if (flags & store_system_flags[i].bit) {
			if (!first)
				buf_putc(out, ' ');
			buf_puts(out, store_system_flags[i].name);
			first = false;
		}
	}
	if (recent) {
		if (!first)
			buf_putc(out, ' ');
		buf_puts(out, "\\Recent");
		first = false;
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
		for (size_t i = 0; i < STORE_N_SYSTEM_FLAGS; i++)
			if (strutil_eq_ci(t->p, t->len, store_system_flags[i].name)) {
				*flags |= store_system_flags[i].bit;
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

/* ------------------------------------------------------------ \Recent */

void imap_recent_learn(struct imap_session *s, uint32_t from)
{
	struct imap_sel *sel = s->sel;
	uint32_t hi = imap_view_last(&sel->v);
	if (s->rev2 || hi == 0 || hi < from)
		return;
	uint32_t lo;
	char err[256];
	/* another user's session never takes \Recent from the owner */
	bool claim = !sel->readonly && !sel->shared;
	if (store_imap_recent(s->sel->acct, sel->id, hi, claim, &lo, err, sizeof err) < 0) {
		/* the messages are then just not recent in this session */
		log_error("imap session=%s action=recent error=\"%s\"", s->id, err);
		return;
	}
	if (lo == 0)
		return;
	if (lo < from)
		lo = from; /* the older ones were settled when they were new */
	struct imap_seqset *r = &sel->recent;
	if (r->n > 0 && r->r[r->n - 1].hi + 1 == lo) {
		r->r[r->n - 1].hi = hi;
		return;
	}
	r->r = xreallocarray(r->r, r->n + 1, sizeof *r->r);
	r->r[r->n].lo = lo;
	r->r[r->n].hi = hi;
	r->n++;
}

bool imap_recent_has(const struct imap_session *s, uint32_t uid)
{
	return s->sel != NULL && !s->rev2 && imap_seqset_has(&s->sel->recent, uid);
}

uint32_t imap_recent_count(const struct imap_session *s)
{
	const struct imap_sel *sel = s->sel;
	uint32_t n = 0;
	if (sel == NULL || s->rev2)
		return 0;
	for (size_t i = 0; i < sel->recent.n; i++) {
		const struct imap_range *r = &sel->recent.r[i];
		/* uids are below UINT32_MAX (UIDNEXT fits in 32 bits) */
		n += imap_view_seq_from(&sel->v, r->hi + 1) - imap_view_seq_from(&sel->v, r->lo);
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

uint64_t imap_sel_highestmodseq(const struct imap_sel *sel)
{
	return sel->modseq_flags < sel->modseq_exp ? sel->modseq_flags : sel->modseq_exp;
}

void imap_condstore_enable(struct imap_session *s)
{
	if (s->condstore)
		return;
	s->condstore = true;
	if (s->sel != NULL)
		imap_reply(s, "* OK [HIGHESTMODSEQ %llu] Highest",
			   (unsigned long long)imap_sel_highestmodseq(s->sel));
}

int imap_modseq_arg(const struct imap_tok *t, bool zero_ok, uint64_t *out)
{
	if (t->type != IMAP_TOK_ATOM || imap_tok_number(t, IMAP_MODSEQ_MAX, out) < 0)
		return -1;
	return *out == 0 && !zero_ok ? -1 : 0;
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
	imap_keywords_announce(c->s, m->keywords, &c->out);
	buf_printf(&c->out, "* %lu FETCH (UID %lu FLAGS ", (unsigned long)seq,
		   (unsigned long)m->uid);
	imap_flags_out(&c->out, m->flags, imap_recent_has(c->s, m->uid), m->keywords);
	if (c->s->condstore)
		buf_printf(&c->out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_puts(&c->out, ")\r\n");
	if (c->out.len > 65536) {
		imap_send(c->s, c->out.data, c->out.len);
		buf_reset(&c->out);
	}
	return 0;
}

/* The expunges since sel->modseq_exp: from the store's list, or, when
 * the store dropped some of the ones needed (STORE_EXPUNGED_MAX), by
 * comparing the view with the mailbox.  Told (EXPUNGE or VANISHED) into
 * out.  0 or -1. */
static int sync_expunges(struct imap_session *s, struct buf *out)
{
	struct imap_sel *sel = s->sel;
	char err[256];
	uint32_t *gone, *have;
	size_t n_gone, n_have;
	bool complete;
	if (store_imap_expunged_since(s->sel->acct, sel->id, sel->modseq_exp, &gone, &n_gone, &complete,
				      err, sizeof err) < 0)
		return -1;
	if (!complete) {
		free(gone);
		if (store_imap_uids(s->sel->acct, sel->id, 1, &have, &n_have, err, sizeof err) < 0)
			return -1;
		/* the view's uids that the mailbox no longer has */
		gone = xcalloc(sel->v.n ? sel->v.n : 1, sizeof *gone);
		n_gone = 0;
		size_t j = 0;
		for (uint32_t q = 1; q <= sel->v.n; q++) {
			uint32_t uid = imap_view_uid(&sel->v, q);
			while (j < n_have && have[j] < uid)
				j++;
			if (j == n_have || have[j] != uid)
				gone[n_gone++] = uid;
		}
		free(have);
	}
	imap_expunged_out(s, gone, n_gone, out);
	free(gone);
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
	int r = store_imap_mailbox_state(s->sel->acct, sel->id, &uidvalidity, &uidnext, &hms);
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
	if (allow_expunge && sel->modseq_exp < hms && sync_expunges(s, &c.out) == 0)
		sel->modseq_exp = hms;
	size_t flags_at = c.out.len;
	if (sel->modseq_flags < hms && sel->v.n > 0) {
		if (store_imap_changed_since(s->sel->acct, sel->id, sel->modseq_flags,
					     imap_view_last(&sel->v), changed_cb, &c, err,
					     sizeof err) == 0) {
			sel->modseq_flags = hms;
			sel->n_own = 0;
		}
	} else if (sel->modseq_flags < hms) {
		sel->modseq_flags = hms;
		sel->n_own = 0;
	}
	/* RFC 7162 3.2: FETCH responses went out while expunges wait (a
	 * FETCH, STORE, SEARCH...): the client must not take their modseqs
	 * as its resync point, so it is told the lower one */
	if (s->qresync && !allow_expunge && c.out.len > flags_at && sel->modseq_exp < hms) {
		uint32_t *gone;
		size_t n_gone;
		bool complete;
		if (store_imap_expunged_since(s->sel->acct, sel->id, sel->modseq_exp, &gone, &n_gone,
					      &complete, err, sizeof err) < 0 ||
		    n_gone > 0 || !complete)
			buf_printf(&c.out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
				   (unsigned long long)sel->modseq_exp);
		free(gone);
	}
	uint32_t last = imap_view_last(&sel->v);
	if (last + 1 < sel->uidnext)
		last = sel->uidnext - 1; /* nothing between: expunged, or never there */
	if (uidnext > last + 1) {
		uint32_t *add;
		size_t n_add;
		int ar = store_imap_uids(s->sel->acct, sel->id, last + 1, &add, &n_add, err, sizeof err);
		if (ar == 0) {
			sel->uidnext = uidnext;
			if (n_add > 0 && add[n_add - 1] >= uidnext)
				sel->uidnext = add[n_add - 1] + 1;
		}
		if (ar == 0 && n_add > 0) {
			imap_view_append(&sel->v, add, n_add);
			/* recent here if this session is the first to see them */
			imap_recent_learn(s, last + 1);
			/* keywords they brought (APPEND, COPY, MOVE, delivery) */
			imap_keywords_load(s, &c.out);
			buf_printf(&c.out, "* %lu EXISTS\r\n", (unsigned long)sel->v.n);
			if (!s->rev2)
				buf_printf(&c.out, "* %lu RECENT\r\n",
					   (unsigned long)imap_recent_count(s));
		}
		free(add);
	}
	if (c.out.len)
		imap_send(s, c.out.data, c.out.len);
	buf_free(&c.out);
}

/* Frees a selected mailbox's state (accepts NULL). */
static void sel_free(struct store *st, struct imap_sel **selp)
{
	struct imap_sel *sel = *selp;
	if (sel == NULL)
		return;
	free(sel->name);
	imap_view_free(&sel->v);
	if (sel->sub_id > 0)
		store_notify_unsubscribe(st, sel->sub_id);
	imap_seqset_free(&sel->saved);
	imap_seqset_free(&sel->recent);
	buf_free(&sel->keywords);
	free(sel);
	*selp = NULL;
}

void imap_unselect(struct imap_session *s)
{
	sel_free(s->srv->store, &s->sel);
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

void imap_notify_cb(void *ctx, int64_t account_id)
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

/*
 * LOGIN and AUTHENTICATE run one SASL exchange each through
 * auth/authglue.h (the same code as SMTP AUTH and POP3): the password
 * check on a thread, the brute-force limiter's growing delay and blocks,
 * one log line per outcome.  LOGIN is PLAIN with the two strings.  While a
 * step runs the session is in IMAP_MODE_DELAY and reads nothing; the
 * outcome comes back through auth_cb from the event loop.
 */

static void send_tagged_capability_ok(struct imap_session *s, const char *tag, const char *text)
{
	struct buf b = BUF_INIT;
	imap_capabilities(s, &b);
	imap_reply(s, "%s OK [CAPABILITY %s] %s", tag, buf_cstr(&b), text);
	buf_free(&b);
}

/* Forgets the exchange in progress (if any). */
static void auth_end(struct imap_session *s)
{
	authglue_free(&s->auth);
	s->auth_final = false;
	free(s->auth_account);
	s->auth_account = NULL;
	s->auth_account_id = 0;
}

/* The exchange is over: back to reading commands.  From the event loop
 * (auth_cb) run: the commands the client pipelined behind it run now; from
 * inside process_input (sasl_line) its loop goes on by itself, and calling
 * it again there would re-enter the reader. */
static void auth_resume(struct imap_session *s, bool run)
{
	auth_end(s);
	free(s->tag);
	s->tag = NULL;
	if (s->mode == IMAP_MODE_CLOSING || s->mode == IMAP_MODE_DEAD)
		return;
	session_enter(s, IMAP_MODE_READ);
	bufferevent_enable(s->bev, EV_READ);
	if (run)
		process_input(s);
}

/* Authenticated as address: open the account and enter the
 * authenticated state. */
static void login_ok(struct imap_session *s, const char *tag, const char *address, int64_t id)
{
	struct imap_server *srv = s->srv;
	struct store_account *a = NULL;
	if (store_account_open(srv->store, address, &a) <= 0) {
		log_error("imap session=%s action=open_account user=%s", s->id, address);
		imap_reply(s, "%s NO [UNAVAILABLE] Cannot open the account, try later", tag);
		return;
	}
	s->acct = a;
	s->address = xstrdup(address);
	s->sub_id = store_notify_subscribe(srv->store, id, imap_notify_cb, s);
	if (s->sub_id < 0)
		s->sub_id = 0;
	set_state(s, IMAP_STATE_AUTH);
	log_info("imap session=%s client=%s action=login user=%s mech=%s tls=%s result=ok", s->id,
		 s->ip, s->address, s->auth_login_cmd ? "LOGIN" : sasl_mech_name(s->auth_mech),
		 s->tls_on ? "yes" : "no");
	send_tagged_capability_ok(s, tag, "Logged in");
}

/* "+ " and the base64 of data (RFC 9051 6.2.2; an empty challenge is
 * "+ "); the next line is the client's response. */
static void send_challenge(struct imap_session *s, const unsigned char *data, size_t len)
{
	size_t need = base64_encoded_len(len) + 1;
	char *b64 = xmalloc(need);
	if (base64_encode(data, len, b64, need) < 0)
		b64[0] = '\0';
	imap_reply(s, "+ %s", b64);
	free(b64);
	session_enter(s, IMAP_MODE_SASL);
	bufferevent_enable(s->bev, EV_READ);
	process_input(s);
}

/* A failed exchange: the tagged NO (the limiter's delay is already
 * over).  Response codes: RFC 5530. */
static void auth_failed(struct imap_session *s, const char *tag, enum sasl_error e)
{
	switch (e) {
	case SASL_ERR_TEMPORARY:
		imap_reply(s, "%s NO [UNAVAILABLE] Authentication is unavailable, try again later",
			   tag);
		return;
	case SASL_ERR_UNAVAILABLE:
		/* SCRAM for an account without SCRAM keys (an imported
		 * password hash): setting the password again makes them */
		imap_reply(s,
			   "%s NO [CONTACTADMIN] %s is not available for this account, use "
			   "another mechanism",
			   tag, sasl_mech_name(s->auth_mech));
		return;
	default:
		break;
	}
	s->auth_failures++;
	imap_reply(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed", tag);
	if (s->auth_failures >= IMAP_MAX_AUTH_FAILURES)
		close_with(s, "* BYE Too many failed logins");
}

/* The outcomes of the exchange (always from the event loop, never from
 * inside authglue_start / authglue_step). */
static void auth_cb(void *ctx, const struct authglue_result *r)
{
	struct imap_session *s = ctx;
	const char *tag = s->tag ? s->tag : "*";
	switch (r->status) {
	case AUTHGLUE_CHALLENGE:
		send_challenge(s, r->data, r->len);
		return;
	case AUTHGLUE_OK:
		if (r->len > 0) {
			/* IMAP has no success data in the tagged OK (RFC 9051
			 * 6.2.2): SCRAM's server-final-message goes in a last
			 * "+", which the client answers with an empty line
			 * (RFC 4422 3). */
			char *account = xstrdup(r->account);
			int64_t id = r->account_id;
			size_t flen = r->len;
			unsigned char *final = xmalloc(flen);
			memcpy(final, r->data, flen);
			authglue_free(&s->auth);
			s->auth_account = account;
			s->auth_account_id = id;
			s->auth_final = true;
			send_challenge(s, final, flen);
			free(final);
			return;
		}
		char account[256];
		snprintf(account, sizeof account, "%s", r->account);
		int64_t id = r->account_id;
		authglue_free(&s->auth);
		login_ok(s, tag, account, id);
		break;
	case AUTHGLUE_FAIL:
		auth_failed(s, tag, r->error);
		break;
	case AUTHGLUE_BLOCKED:
		/* authlimit.h: refused without checking anything */
		imap_reply(s, "%s NO [UNAVAILABLE] Too many failed logins, try again later", tag);
		break;
	case AUTHGLUE_BUSY:
		imap_reply(s,
			   "%s NO [UNAVAILABLE] Too many logins to this account in progress, try "
			   "again shortly",
			   tag);
		break;
	}
	auth_resume(s, true);
}

/* Starts an exchange for the command tagged tag (AUTHENTICATE, or LOGIN
 * as PLAIN); ir as for authglue_start. */
static void auth_start(struct imap_session *s, const char *tag, enum sasl_mech m, bool login_cmd,
		       const void *ir, size_t len)
{
	struct sasl_cbind cb[SASL_MAX_CBIND];
	unsigned char data[SASL_MAX_CBIND][64];
	size_t n = 0;
	if (s->tls_on && !s->tls_pending && s->srv->cfg->auth_scram_plus) {
		int l = tls_channel_binding(s->bev, TLS_BINDING_EXPORTER, data[n], sizeof data[n]);
		if (l > 0) {
			cb[n] = (struct sasl_cbind){"tls-exporter", data[n], (size_t)l};
			n++;
		}
		l = tls_channel_binding(s->bev, TLS_BINDING_SERVER_END_POINT, data[n],
					sizeof data[n]);
		if (l > 0) {
			cb[n] = (struct sasl_cbind){"tls-server-end-point", data[n], (size_t)l};
			n++;
		}
	}
	struct authglue_params p = {
	    .base = s->srv->base,
	    .store = s->srv->store,
	    .mech = m,
	    .client = s->sa.ss_family != 0 ? (const struct sockaddr *)&s->sa : NULL,
	    .client_ip = s->ip,
	    .proto = "imap",
	    .session_id = s->id,
	    .cbind = cb,
	    .n_cbind = n,
	    .cb = auth_cb,
	    .cb_ctx = s,
	};
	auth_end(s);
	free(s->tag);
	s->tag = xstrdup(tag);
	s->auth_mech = m;
	s->auth_login_cmd = login_cmd;
	session_enter(s, IMAP_MODE_DELAY);
	bufferevent_disable(s->bev, EV_READ);
	s->auth = authglue_start(&p, ir, len);
	explicit_bzero(data, sizeof data);
}

/* Decodes a base64 SASL response p[0..n) ("=" is an empty one, RFC 9051
 * 6.2.2) into a new buffer *out (*cap bytes; the caller wipes and frees
 * it).  Returns the length, or -1 if it is not base64. */
static long decode_response(const char *p, size_t n, unsigned char **out, size_t *cap)
{
	*cap = base64_decoded_max(n) + 1;
	*out = xmalloc(*cap);
	if (n == 0 || (n == 1 && p[0] == '='))
		return 0;
	return base64_decode(p, n, *out, *cap);
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
		/* LOGINDISABLED: refused without checking anything */
		imap_reply(s, "%s %s", x->tag, privacy_required);
		client_error(s);
		return;
	}
	/* The PLAIN message NUL user NUL password: a NUL inside either
	 * string makes it malformed there, as it should (and it counts as a
	 * failure); lengths are bounded by the reader's pre-login limits. */
	const struct imap_tok *u = &x->a[0], *pw = &x->a[1];
	size_t len = 2 + u->len + pw->len;
	unsigned char *m = xmalloc(len);
	m[0] = '\0';
	memcpy(m + 1, u->p, u->len);
	m[1 + u->len] = '\0';
	memcpy(m + 2 + u->len, pw->p, pw->len);
	auth_start(s, x->tag, SASL_MECH_PLAIN, true, m, len);
	explicit_bzero(m, len);
	free(m);
}

static void cmd_authenticate(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n < 1 || x->n > 2 || x->a[0].type != IMAP_TOK_ATOM ||
	    (x->n == 2 && x->a[1].type != IMAP_TOK_ATOM)) {
		imap_bad(x, "AUTHENTICATE needs a mechanism");
		return;
	}
	enum sasl_mech m;
	if (sasl_mech_from_name(x->a[0].p, x->a[0].len, &m) < 0) {
		imap_reply(s, "%s NO Unsupported authentication mechanism", x->tag);
		client_error(s);
		return;
	}
	if (!mech_ok(s, m)) {
		if (m == SASL_MECH_SCRAM_SHA_256_PLUS && !s->srv->cfg->auth_scram_plus)
			imap_reply(s, "%s NO Unsupported authentication mechanism", x->tag);
		else if (m == SASL_MECH_SCRAM_SHA_256_PLUS)
			imap_reply(s, "%s NO [PRIVACYREQUIRED] SCRAM-SHA-256-PLUS needs TLS",
				   x->tag);
		else
			imap_reply(s, "%s %s", x->tag, privacy_required);
		client_error(s);
		return;
	}
	if (x->n == 1) {
		auth_start(s, x->tag, m, false, NULL, 0);
		return;
	}
	/* SASL-IR (RFC 4959) */
	unsigned char *ir;
	size_t cap;
	long len = decode_response(x->a[1].p, x->a[1].len, &ir, &cap);
	if (len < 0)
		imap_bad(x, "Invalid base64 data");
	else
		auth_start(s, x->tag, m, false, ir, (size_t)len);
	explicit_bzero(ir, cap);
	free(ir);
}

/* The line after a "+ " of AUTHENTICATE (nul: it held a NUL byte). */
static void sasl_line(struct imap_session *s, const char *p, size_t n, bool nul)
{
	const char *tag = s->tag ? s->tag : "*";
	if (n == 1 && p[0] == '*') {
		imap_reply(s, "%s BAD Authentication cancelled", tag);
		client_error(s);
		auth_resume(s, false);
		return;
	}
	if (s->auth_final) {
		/* the answer to SCRAM's server-final-message is empty */
		if (n != 0 || nul) {
			imap_reply(s, "%s BAD Expected an empty response", tag);
			client_error(s);
		} else {
			login_ok(s, tag, s->auth_account, s->auth_account_id);
		}
		auth_resume(s, false);
		return;
	}
	unsigned char *buf = NULL;
	size_t cap = 0;
	long len = nul ? -1 : decode_response(p, n, &buf, &cap);
	if (len < 0) {
		free(buf);
		imap_reply(s, "%s BAD Invalid base64 data", tag);
		client_error(s);
		auth_resume(s, false);
		return;
	}
	session_enter(s, IMAP_MODE_DELAY);
	bufferevent_disable(s->bev, EV_READ);
	authglue_step(s->auth, buf, (size_t)len);
	explicit_bzero(buf, cap);
	free(buf);
}

/* STARTTLS (RFC 9051 6.2.1, RFC 2595 3.1).  Whatever the client sent
 * behind the command is thrown away (RFC 9051's second option against
 * STARTTLS command injection, CERT-555316), and what arrives before the
 * handshake goes to the handshake, where plaintext fails.  The switch
 * happens in session_write_cb once the OK is written. */
static void cmd_starttls(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n != 0) {
		imap_bad(x, "STARTTLS takes no arguments");
		return;
	}
	if (s->tls_on) {
		/* also on the implicit TLS port, as RFC 9051 requires */
		imap_bad(x, "TLS is already active");
		return;
	}
	if (!tls_available(s->srv->tls)) {
		imap_reply(s, "%s NO TLS is not configured on this server", x->tag);
		return;
	}
	imap_reply(s, "%s OK Begin TLS negotiation now", x->tag);
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t dropped = evbuffer_get_length(in);
	evbuffer_drain(in, dropped);
	if (dropped > 0)
		log_info("imap session=%s client=%s action=starttls dropped=%zu "
			 "note=\"input pipelined after STARTTLS discarded\"",
			 s->id, s->ip, dropped);
	session_enter(s, IMAP_MODE_TLS);
	bufferevent_disable(s->bev, EV_READ);
}

/* COMPRESS DEFLATE (RFC 4978 3): compression starts right after the CRLF
 * of the tagged OK.  The OK goes into the output of the bufferevent
 * below (uncompressed), the filter is put above it, and whatever the
 * client sent behind the command (it must wait for the OK, so only a
 * client that did not) is read through the filter. */
static void cmd_compress(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n != 1 || x->a[0].type != IMAP_TOK_ATOM || x->a[0].len != 7 ||
	    strncasecmp(x->a[0].p, "DEFLATE", 7) != 0) {
		imap_bad(x, "COMPRESS takes one argument: DEFLATE");
		return;
	}
	if (s->z != NULL) {
		imap_bad(x, "COMPRESS is already active");
		return;
	}
	if (s->holding) {
		/* cannot happen (input waits for a commit): refuse rather
		 * than compress responses still held */
		imap_reply(s, "%s NO Responses are pending; try again", x->tag);
		return;
	}
	struct bufferevent *under = s->bev;
	imap_reply(s, "%s OK DEFLATE active", x->tag);
	struct imap_compress *z = NULL;
	struct bufferevent *f = imap_compress_wrap(under, &z);
	if (f == NULL) {
		/* the OK is out: without compression the stream is broken */
		log_error("imap session=%s client=%s action=compress error=\"no memory\"", s->id,
			  s->ip);
		session_kill(s);
		return;
	}
	s->bev = f;
	s->z = z;
	bufferevent_set_timeouts(under, NULL, NULL); /* the filter's count now */
	bufferevent_setwatermark(under, EV_WRITE, IMAP_OUTPUT_LOW / 4, IMAP_OUTPUT_LOW);
	bufferevent_setcb(f, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(f, EV_READ, 0, 256 * 1024);
	bufferevent_setwatermark(f, EV_WRITE, IMAP_OUTPUT_LOW, 0);
	struct timeval tv = {IMAP_TIMEOUT_AUTH, 0};
	bufferevent_set_timeouts(f, &tv, &tv);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	log_info("imap session=%s client=%s action=compress mechanism=DEFLATE", s->id, s->ip);
	if (evbuffer_get_length(bufferevent_get_input(under)) > 0)
		bufferevent_flush(f, EV_READ, BEV_FLUSH);
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
	bool condstore = false, cs_listed = false;
	for (size_t i = 0; i < x->n; i++) {
		if (x->a[i].type != IMAP_TOK_ATOM) {
			buf_free(&b);
			imap_bad(x, "Capability names are atoms");
			return;
		}
	}
	for (size_t i = 0; i < x->n; i++) {
		if (imap_tok_eq(&x->a[i], "IMAP4rev2") && rev2_offered(s)) {
			if (!s->rev2)
				buf_puts(&b, " IMAP4rev2");
			s->rev2 = true;
			s->utf8 = true;
		} else if (imap_tok_eq(&x->a[i], "UTF8=ACCEPT")) {
			if (!s->utf8 || s->rev2)
				buf_puts(&b, " UTF8=ACCEPT");
			s->utf8 = true;
		} else if (imap_tok_eq(&x->a[i], "CONDSTORE") && !s->condstore && !cs_listed) {
			buf_puts(&b, " CONDSTORE");
			condstore = cs_listed = true;
		} else if (imap_tok_eq(&x->a[i], "QRESYNC") && !s->qresync) {
			/* RFC 7162 3.2.3: implies CONDSTORE; VANISHED from now on */
			buf_puts(&b, " QRESYNC");
			s->qresync = true;
			condstore = true;
		}
	}
	imap_reply(s, "* ENABLED%s", buf_cstr(&b));
	buf_free(&b);
	if (condstore)
		imap_condstore_enable(s);
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

/* RFC 8437: back to the not authenticated state, everything of the user
 * released (the selected mailbox without expunge events, the store's
 * notifications, the account handle, what ENABLE and CONDSTORE turned on,
 * SEARCHRES's saved result); TLS and the ID stay.  RFC 8437 4.1 ends a
 * COMPRESS layer after the OK, at the client's CRLF, which our filter
 * cannot find in a pipelined stream: under COMPRESS UNAUTHENTICATE is
 * not advertised, so BAD is the answer RFC 8437 3 allows. */
static void cmd_unauthenticate(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n != 0) {
		imap_bad(x, "No arguments expected");
		return;
	}
	if (s->z != NULL) {
		imap_bad(x, "UNAUTHENTICATE is not available after COMPRESS");
		return;
	}
	log_info("imap session=%s client=%s action=unauthenticate user=%s", s->id, s->ip,
		 s->address);
	session_release(s);
	sel_free(s->srv->store, &s->sel);
	s->acct = NULL; /* owned by the store */
	free(s->address);
	s->address = NULL;
	s->rev2 = s->utf8 = s->condstore = s->qresync = s->notified = false;
	set_state(s, IMAP_STATE_NOAUTH);
	imap_reply(s, "%s OK Unauthenticated", x->tag);
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
	if (s->z != NULL) /* the reply is flushed: nothing pending in zlib */
		imap_compress_shrink(s->z);
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
	/* nor before the UID form: its search keys may hold sequence numbers
	 * (RFC 9051 7.5.1, RFC 7162 3.2.10.2) */
	C_NOEXPUNGE_UID = 1 << 5,
	/* writes with a synced commit: made durable off the loop, the
	 * responses held until then (store_commit_arm) */
	C_WRITE = 1 << 6,
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
    {"STARTTLS", cmd_starttls, C_NOAUTH},
    {"ENABLE", cmd_enable, C_LOGGED},
    {"SELECT", imap_cmd_select, C_LOGGED},
    {"EXAMINE", imap_cmd_select, C_LOGGED},
    {"CREATE", imap_cmd_create, C_LOGGED | C_WRITE},
    {"DELETE", imap_cmd_delete, C_LOGGED | C_WRITE},
    {"RENAME", imap_cmd_rename, C_LOGGED | C_WRITE},
    {"SUBSCRIBE", imap_cmd_subscribe, C_LOGGED | C_WRITE},
    {"UNSUBSCRIBE", imap_cmd_subscribe, C_LOGGED | C_WRITE},
    {"LIST", imap_cmd_list, C_LOGGED},
    {"LSUB", imap_cmd_list, C_LOGGED},
    {"NAMESPACE", imap_cmd_namespace, C_LOGGED},
    {"STATUS", imap_cmd_status, C_LOGGED},
    {"APPEND", imap_cmd_append, C_LOGGED | C_WRITE},
    {"IDLE", cmd_idle, C_LOGGED},
    {"COMPRESS", cmd_compress, C_LOGGED},
    {"UNAUTHENTICATE", cmd_unauthenticate, C_LOGGED},
    {"CHECK", cmd_noop, C_SEL},
    {"CLOSE", imap_cmd_close, C_SEL | C_WRITE},
    {"UNSELECT", cmd_unselect, C_SEL},
    {"EXPUNGE", imap_cmd_expunge, C_SEL | C_UID | C_WRITE},
    {"FETCH", imap_cmd_fetch, C_SEL | C_UID | C_NOEXPUNGE},
    {"STORE", imap_cmd_store, C_SEL | C_UID | C_NOEXPUNGE},
    {"SEARCH", imap_cmd_search, C_SEL | C_UID | C_NOEXPUNGE | C_NOEXPUNGE_UID},
    {"SORT", imap_cmd_sort, C_SEL | C_UID | C_NOEXPUNGE | C_NOEXPUNGE_UID},
    {"THREAD", imap_cmd_thread, C_SEL | C_UID | C_NOEXPUNGE | C_NOEXPUNGE_UID},
    {"COPY", imap_cmd_copy, C_SEL | C_UID | C_NOEXPUNGE | C_WRITE},
    {"MOVE", imap_cmd_copy, C_SEL | C_UID | C_NOEXPUNGE | C_WRITE},
    {"GETQUOTAROOT", imap_cmd_getquotaroot, C_LOGGED},
    {"GETQUOTA", imap_cmd_getquota, C_LOGGED},
    {"SETQUOTA", imap_cmd_setquota, C_LOGGED},
    {"SETACL", imap_cmd_setacl, C_LOGGED},
    {"DELETEACL", imap_cmd_deleteacl, C_LOGGED},
    {"GETACL", imap_cmd_getacl, C_LOGGED},
    {"LISTRIGHTS", imap_cmd_listrights, C_LOGGED},
    {"MYRIGHTS", imap_cmd_myrights, C_LOGGED},
};

/* ------------------------------------------------- commits off the loop */

/* The session's write is durable (ok 0): its held responses go out, and
 * the commands pipelined behind it run.  If it failed, nothing of it
 * happened but the session's view may say otherwise: the client gets no
 * OK and reconnects. */
static void commit_done(void *ctx, int ok, const char *err)
{
	struct imap_session *s = ctx;
	if (!s->holding)
		return; /* closed meanwhile */
	if (ok < 0) {
		log_error("imap session=%s user=%s action=commit error=\"%s\"", s->id, s->address,
			  err);
		close_with(s, "* BYE [UNAVAILABLE] Cannot store the change, try again");
		return;
	}
	s->holding = false;
	evbuffer_add_buffer(bufferevent_get_output(s->bev), s->held);
	if (s->mode != IMAP_MODE_COMMIT)
		return;
	session_enter(s, IMAP_MODE_READ);
	bufferevent_enable(s->bev, EV_READ);
	process_input(s);
}

/* Another session's commit of the account is done: commands run again. */
static void commit_resume(void *ctx, int ok, const char *err)
{
	struct imap_session *s = ctx;
	(void)ok;
	(void)err;
	if (s->mode != IMAP_MODE_COMMIT)
		return;
	session_enter(s, IMAP_MODE_READ);
	bufferevent_enable(s->bev, EV_READ);
	process_input(s);
}

/* After a C_WRITE command ran armed: park the session until its commit
 * is durable, or send the responses now if nothing was left to commit. */
static void commit_launch(struct imap_session *s)
{
	bool parked = store_commit_launch(s->acct, commit_done, s);
	if (!s->holding)
		return; /* closed meanwhile: nothing to send */
	if (parked) {
		/* held until commit_done */
		if (s->mode == IMAP_MODE_READ) {
			session_enter(s, IMAP_MODE_COMMIT);
			bufferevent_disable(s->bev, EV_READ);
		}
		return;
	}
	s->holding = false;
	evbuffer_add_buffer(bufferevent_get_output(s->bev), s->held);
}

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
	 * that allow them (NOOP, IDLE...) and otherwise here, before it.  The
	 * check runs before every command, not only after a notification:
	 * another worker process's notification arrives asynchronously, and a
	 * change committed before this command began must be reported now
	 * (one primary-key lookup when nothing changed). */
	if (s->sel && s->sel->shared && s->state == IMAP_STATE_SELECTED) {
		/* rights may have changed since the last command (RFC 4314 4:
		 * a shared mailbox's commands check them as they run) */
		char r[STORE_ACL_RIGHTS_LEN + 1];
		if (imap_acl_myrights(s, s->sel->acct, s->sel->id, r) == 0)
			snprintf(s->sel->rights, sizeof s->sel->rights, "%s", r);
		bool sel_only = !(commands[i].flags & (C_NOAUTH | C_AUTH));
		if (!imap_acl_has(s->sel->rights, 'r') && sel_only &&
		    commands[i].run != cmd_unselect && commands[i].run != imap_cmd_close) {
			imap_reply(s, "%s NO [NOPERM] Permission denied", tag);
			imap_command_free(&c);
			return;
		}
	}
	bool allow_exp =
	    x.uid ? !(commands[i].flags & C_NOEXPUNGE_UID) : !(commands[i].flags & C_NOEXPUNGE);
	if (s->sel && s->state == IMAP_STATE_SELECTED && commands[i].run != cmd_noop &&
	    commands[i].run != cmd_idle)
		imap_sync(s, allow_exp);
	if (s->held == NULL)
		s->held = evbuffer_new(); /* NULL: the write is synced here */
	if ((commands[i].flags & C_WRITE) && s->acct && s->held && store_commit_arm(s->acct)) {
		s->holding = true;
		commands[i].run(&x);
		commit_launch(s);
	} else {
		commands[i].run(&x);
	}
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
	while (s->mode == IMAP_MODE_READ || s->mode == IMAP_MODE_SASL ||
	       s->mode == IMAP_MODE_IDLE) {
		/* each round: COMPRESS puts a new bufferevent in s->bev */
		struct evbuffer *in = bufferevent_get_input(s->bev);
		struct evbuffer *out = bufferevent_get_output(s->bev);
		if (evbuffer_get_length(out) > IMAP_OUTPUT_HIGH) {
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		/* Another session's commit has the account's connection: wait
		 * for it rather than block the loop (store_account_db would). */
		if (s->mode == IMAP_MODE_READ && store_account_busy(s->acct) &&
		    store_commit_wait(s->acct, commit_resume, s) == 1) {
			session_enter(s, IMAP_MODE_COMMIT);
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		/* the same for the owner of a shared mailbox (imap-acl.c) */
		if (s->mode == IMAP_MODE_READ && s->sel && s->sel->acct != s->acct &&
		    store_account_busy(s->sel->acct) &&
		    store_commit_wait(s->sel->acct, commit_resume, s) == 1) {
			session_enter(s, IMAP_MODE_COMMIT);
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
		case IMAP_READ_GARBAGE:
			if (r == IMAP_READ_LINE_TOO_LONG && s->mode == IMAP_MODE_READ) {
				log_info("imap session=%s client=%s action=refuse "
					 "reason=line_too_long",
					 s->id, s->ip);
				imap_reader_tag(&s->rd, tag, sizeof tag);
				imap_reply(s, "%s BAD Command line too long", tag);
				imap_reader_next(&s->rd);
				client_error(s);
				continue;
			}
			/* garbage, or no command to refuse (SASL, IDLE) */
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
			sasl_line(s, line, n, nul);
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
	store_commit_forget(s->srv->store, s);
	if (s->sub_id > 0) {
		store_notify_unsubscribe(s->srv->store, s->sub_id);
		s->sub_id = 0;
	}
	auth_end(s); /* nothing more comes from an exchange in progress */
}

static void session_free(struct imap_session *s)
{
	session_release(s);
	imap_fetch_free(s);
	sel_free(s->srv->store, &s->sel);
	free(s->tag);
	free(s->address);
	imap_reader_free(&s->rd);
	if (s->held)
		evbuffer_free(s->held);
	if (s->z != NULL)
		imap_compress_cancel(s->z);
	if (s->bev)
		bufferevent_free(s->bev); /* with COMPRESS: the filter and what is below */
	free(s);
}

static void session_kill(struct imap_session *s)
{
	if (s->mode == IMAP_MODE_DEAD)
		return;
	session_release(s);
	if (s->bev != NULL) /* NULL after a failed switch to TLS */
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

/* The STARTTLS reply is written: put TLS on the socket.  The session
 * stays not authenticated, with nothing kept from before (the reader's
 * partial input is dropped with it). */
static void starttls_switch(struct imap_session *s)
{
	struct bufferevent *bev = tls_starttls(s->srv->tls, s->bev);
	s->bev = bev;
	if (bev == NULL) {
		log_error("imap session=%s client=%s action=starttls error=\"cannot start TLS\"",
			  s->id, s->ip);
		session_kill(s);
		return;
	}
	s->tls_on = true;
	s->tls_pending = true;
	imap_reader_free(&s->rd);
	imap_reader_init(&s->rd, (size_t)s->srv->cfg->imap_max_line, IMAP_PREAUTH_LITERAL_MAX);
	bufferevent_setcb(bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_setwatermark(bev, EV_READ, 0, 256 * 1024);
	bufferevent_setwatermark(bev, EV_WRITE, IMAP_OUTPUT_LOW, 0);
	struct timeval tv = {IMAP_TIMEOUT_PREAUTH, 0};
	bufferevent_set_timeouts(bev, &tv, &tv);
	session_enter(s, IMAP_MODE_READ);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* COMPRESS, closing: the last compressed bytes have left. */
static void compressed_closed(void *arg)
{
	struct imap_session *s = arg;
	if (s->mode != IMAP_MODE_CLOSING)
		return;
	tls_close_notify(imap_compress_under(s->z));
	session_kill(s);
}

static void session_write_cb(struct bufferevent *bev, void *ctx)
{
	struct imap_session *s = ctx;
	if (s->mode == IMAP_MODE_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
			return;
		if (s->z != NULL) {
			/* compressed, still below the filter: wait for the socket */
			imap_compress_when_drained(s->z, compressed_closed, s);
			return;
		}
		tls_close_notify(bev);
		session_kill(s);
		return;
	}
	if (s->mode == IMAP_MODE_TLS) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			starttls_switch(s);
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
	int t = tls_session_event(bev, what, &s->tls_pending, "imap", s->id, s->ip);
	if (t != 0) {
		if (t < 0)
			session_kill(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && s->mode != IMAP_MODE_CLOSING) {
		log_info("imap session=%s client=%s action=close reason=timeout", s->id, s->ip);
		close_with(s, "* BYE Autologout; idle for too long");
		return;
	}
	if (what & BEV_EVENT_EOF)
		log_debug("imap session=%s client=%s action=disconnect", s->id, s->ip);
	session_kill(s);
}

void imap_server_accept(struct imap_server *srv, evutil_socket_t fd, const struct sockaddr *sa,
			int salen)
{
	struct imap_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	fsutil_unique_id(s->id);
	netaddr_format(sa, s->ip, sizeof s->ip, &s->loopback);
	imap_reader_init(&s->rd, (size_t)srv->cfg->imap_max_line, IMAP_PREAUTH_LITERAL_MAX);
	if (salen > 0 && (size_t)salen <= sizeof s->sa)
		memcpy(&s->sa, sa, (size_t)salen);
	evutil_make_socket_nonblocking(fd);
	if (srv->implicit_tls) {
		/* RFC 8314: TLS from the first byte; tls_accept closes fd if
		 * it fails.  The greeting below is sent after the handshake. */
		s->bev = tls_accept(srv->tls, srv->base, fd);
		s->tls_on = s->tls_pending = true;
	} else {
		s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
		if (s->bev == NULL)
			evutil_closesocket(fd);
	}
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

void imap_server_set_tls(struct imap_server *srv, struct tls *tls, bool implicit)
{
	srv->tls = tls;
	srv->implicit_tls = implicit;
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
			auth_end(s);
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
	free(srv);
	*srvp = NULL;
}
