/*
 * imap-mailbox.c - IMAP commands on mailboxes: SELECT/EXAMINE, CREATE,
 * DELETE, RENAME, (UN)SUBSCRIBE, LIST (RFC 5258 LIST-EXTENDED, RFC 6154
 * SPECIAL-USE, RFC 5819 LIST-STATUS), LSUB, NAMESPACE (RFC 2342), STATUS
 * and APPEND (with RFC 4315 APPENDUID).  Protocol layer (imap-private.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "imap-private.h"
#include "log.h"
#include "strutil.h"
#include "xalloc.h"

/* ------------------------------------------------------------ helpers */

struct mb_list {
	struct store_mailbox *v;
	size_t n, cap;
};

static int collect_cb(void *ctx, const struct store_mailbox *mb)
{
	struct mb_list *l = ctx;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
	}
	l->v[l->n++] = *mb;
	return 0;
}

static bool has_child(const struct mb_list *l, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->v[i].name, name, n) == 0 && l->v[i].name[n] == '/')
			return true;
	return false;
}

/* 1 exists (mb filled), 0 not (NO [NONEXISTENT] sent), -1 error (sent). */
static int need_mailbox(struct imap_cmdctx *x, const char *name, struct store_mailbox *mb)
{
	struct store_account *owner;
	char mbname[512];
	if (imap_acl_split(x->s, name, &owner, mbname) != 0) {
		/* DELETE, RENAME of another user's mailbox: 'x', which only
		 * the owner has (imap-acl.c) */
		struct imap_acl_mb am;
		if (imap_acl_mailbox(x, name, 'x', &am) == 1)
			imap_reply(x->s, "%s NO [NOPERM] Permission denied", x->tag);
		return 0;
	}
	int r = store_mailbox_get(x->s->acct, name, mb);
	if (r == 0)
		imap_reply(x->s, "%s NO [NONEXISTENT] Mailbox does not exist", x->tag);
	else if (r < 0)
		imap_no_store(x, "mailbox_get", "database error");
	return r;
}

/* True if name is in the Other Users namespace (or is its top), where
 * nobody creates mailboxes (imap-acl.c). */
static bool in_others(const char *name)
{
	size_t n = strlen(IMAP_ACL_NS_OTHERS) - 1;
	return strncasecmp(name, IMAP_ACL_NS_OTHERS, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

/* RFC 8474 MAILBOXID: "M<id>"; ids are per account, so a shared mailbox
 * (imap-acl.c) is "M<owner id>-<id>". */
static void mailbox_objectid(struct imap_session *s, const char *name, int64_t id, struct buf *b)
{
	struct store_account *owner;
	char mbname[512];
	if (imap_acl_split(s, name, &owner, mbname) == 1)
		buf_printf(b, "M%lld-%lld", (long long)store_account_id(owner), (long long)id);
	else
		buf_printf(b, "M%lld", (long long)id);
}

static const char *su_name(unsigned bit)
{
	switch (bit) {
	case STORE_SU_SENT:
		return "\\Sent";
	case STORE_SU_DRAFTS:
		return "\\Drafts";
	case STORE_SU_TRASH:
		return "\\Trash";
	case STORE_SU_JUNK:
		return "\\Junk";
	case STORE_SU_ARCHIVE:
		return "\\Archive";
	case STORE_SU_ALL:
		return "\\All";
	case STORE_SU_FLAGGED:
		return "\\Flagged";
	}
	return NULL;
}

/* ---------------------------------------------------------- SELECT */

void imap_cmd_select(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	bool examine = strutil_eq_ci(x->c->name, x->c->name_len, "EXAMINE");
	/* select-params (RFC 4466 2.1): CONDSTORE (RFC 7162 3.1.8) and
	 * QRESYNC (...) (3.2.5), each at most once */
	bool condstore = false, has_q = false;
	struct imap_qresync q;
	memset(&q, 0, sizeof q);
	if (x->n > 1) {
		const char *why = "Unknown SELECT parameters";
		size_t i = 2;
		bool ok = x->a[1].type == IMAP_TOK_LPAREN;
		while (ok && i < x->n && x->a[i].type == IMAP_TOK_ATOM) {
			size_t used;
			if (imap_tok_eq(&x->a[i], "CONDSTORE") && !condstore) {
				condstore = true;
				i++;
			} else if (imap_tok_eq(&x->a[i], "QRESYNC") && !has_q) {
				if (!s->qresync) {
					why = "QRESYNC needs ENABLE QRESYNC first";
					ok = false;
				} else if (imap_parse_qresync(x->a + i + 1, x->n - i - 1, &used, &q,
							      &why) < 0) {
					ok = false;
				} else {
					has_q = true;
					i += 1 + used;
					why = "Unknown SELECT parameters";
				}
			} else {
				ok = false;
			}
		}
		if (!ok || i == 2 || i + 1 != x->n || x->a[i].type != IMAP_TOK_RPAREN) {
			imap_qresync_free(&q);
			imap_bad(x, why);
			return;
		}
	}
	if (x->n < 1) {
		imap_bad(x, "SELECT needs one mailbox name");
		return;
	}
	char name[512];
	bool was = s->sel != NULL;
	if (imap_mailbox_arg_existing(x, &x->a[0], name) < 0) {
		imap_qresync_free(&q);
		return;
	}
	/* A failed SELECT leaves no mailbox selected (RFC 9051 6.3.2). */
	imap_unselect(s);
	if (condstore)
		imap_condstore_enable(s); /* nothing selected: HIGHESTMODSEQ below */
	/* RFC 7162 3.2.11: a server offering CONDSTORE says so in any case */
	if (was)
		imap_reply(s, "* OK [CLOSED] Previous mailbox closed");
	/* a shared mailbox (imap-acl.c) needs 'r' */
	struct imap_acl_mb am;
	if (imap_acl_mailbox(x, name, 'r', &am) <= 0) {
		imap_qresync_free(&q);
		return;
	}
	struct store_mailbox mb = am.mb;
	char err[256];
	uint32_t *uids;
	size_t n_uids;
	if (store_imap_uids(am.owner, mb.id, 1, &uids, &n_uids, err, sizeof err) < 0) {
		imap_qresync_free(&q);
		imap_no_store(x, "select", err);
		return;
	}
	struct imap_sel *sel = xcalloc(1, sizeof *sel);
	imap_view_append(&sel->v, uids, n_uids);
	uint32_t uids_last = n_uids > 0 ? uids[n_uids - 1] : 0;
	free(uids);
	sel->id = mb.id;
	sel->name = xstrdup(mb.name);
	sel->uidvalidity = mb.uidvalidity;
	/* RFC 4314 4: read-write only with a right to change something */
	sel->readonly = examine || !(imap_acl_has(am.rights, 's') || imap_acl_has(am.rights, 'w') ||
				     imap_acl_has(am.rights, 't') || imap_acl_has(am.rights, 'e'));
	sel->acct = am.owner;
	sel->shared = am.shared;
	snprintf(sel->rights, sizeof sel->rights, "%s", am.rights);
	if (am.shared) /* IDLE wakes for the owner's changes too */
		sel->sub_id = store_notify_subscribe(s->srv->store, store_account_id(am.owner),
						     imap_notify_cb, s);
	buf_init(&sel->keywords, IMAP_KEYWORDS_MAX);
	sel->modseq_flags = sel->modseq_exp = mb.highestmodseq;
	sel->uidnext = mb.uidnext;
	if (n_uids > 0 && uids_last >= sel->uidnext)
		sel->uidnext = uids_last + 1; /* one arrived since mb was read */
	s->sel = sel;
	s->state = IMAP_STATE_SELECTED;
	s->notified = false;
	/* SELECT takes \Recent from the mailbox, EXAMINE leaves it there */
	imap_recent_learn(s, 1);

	struct buf b = BUF_INIT;
	buf_printf(&b, "* %lu EXISTS\r\n", (unsigned long)sel->v.n);
	if (!s->rev2)
		buf_printf(&b, "* %lu RECENT\r\n", (unsigned long)imap_recent_count(s));
	imap_keywords_load(s, NULL);
	imap_flags_lines(s, &b);
	uint32_t first;
	if (!s->rev2 && store_imap_first_unseen(am.owner, mb.id, &first) == 1) {
		uint32_t seq = imap_seq_of(sel, first);
		if (seq)
			buf_printf(&b, "* OK [UNSEEN %lu] First unseen\r\n", (unsigned long)seq);
	}
	buf_printf(&b, "* OK [UIDVALIDITY %lu] UIDs valid\r\n", (unsigned long)mb.uidvalidity);
	buf_puts(&b, "* OK [MAILBOXID (");
	mailbox_objectid(s, name, mb.id, &b);
	buf_puts(&b, ")] Ok\r\n"); /* RFC 8474 4.2 */
	buf_printf(&b, "* OK [UIDNEXT %lu] Predicted next UID\r\n", (unsigned long)mb.uidnext);
	if (s->condstore) /* every mailbox keeps modseqs: never NOMODSEQ */
		buf_printf(&b, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
			   (unsigned long long)mb.highestmodseq);
	if (s->rev2) {
		buf_puts(&b, "* LIST () \"/\" ");
		imap_mailbox_out(s, mb.name, &b);
		buf_puts(&b, "\r\n");
	}
	imap_send(s, b.data, b.len);
	buf_free(&b);
	char ok[48];
	snprintf(ok, sizeof ok, "[%s] %s completed", sel->readonly ? "READ-ONLY" : "READ-WRITE",
		 examine ? "EXAMINE" : "SELECT");
	/* QRESYNC (3.2.5): with another UIDVALIDITY the rest is ignored */
	if (has_q && q.uidvalidity == mb.uidvalidity)
		imap_qresync_select(x, &q, ok);
	else
		imap_reply(s, "%s OK %s", x->tag, ok);
	imap_qresync_free(&q);
}

/* ------------------------------------------- CREATE DELETE RENAME SUB */

/* The create-params of RFC 4466 2.2 we know: USE (RFC 6154 3,
 * CREATE-SPECIAL-USE).  Sets *su; 0, or -1 after answering. */
static int create_params(struct imap_cmdctx *x, unsigned *su)
{
	*su = 0;
	if (x->n == 1)
		return 0;
	const struct imap_tok *t = x->a + 1;
	size_t n = x->n - 1;
	/* "(" "USE" SP "(" [attr *(SP attr)] ")" ")" */
	if (n < 5 || t[0].type != IMAP_TOK_LPAREN || t[n - 1].type != IMAP_TOK_RPAREN ||
	    t[1].type != IMAP_TOK_ATOM || !imap_tok_eq(&t[1], "USE") ||
	    t[2].type != IMAP_TOK_LPAREN || t[n - 2].type != IMAP_TOK_RPAREN) {
		imap_bad(x, "CREATE takes a mailbox name and (USE (attributes))");
		return -1;
	}
	for (size_t i = 3; i + 2 < n; i++) {
		unsigned bit = 0;
		if (t[i].type == IMAP_TOK_ATOM)
			for (unsigned b = STORE_SU_SENT; b <= STORE_SU_FLAGGED && bit == 0;
			     b <<= 1) {
				const char *nm = su_name(b);
				if (nm != NULL && strutil_eq_ci(t[i].p, t[i].len, nm))
					bit = b;
			}
		if (bit == 0) {
			imap_bad(x, "Unknown special-use attribute");
			return -1;
		}
		if (bit == STORE_SU_ALL || bit == STORE_SU_FLAGGED) {
			/* virtual collections: a real mailbox cannot be one */
			imap_reply(
			    x->s, "%s NO [USEATTR] \\All and \\Flagged mailboxes cannot be created",
			    x->tag);
			return -1;
		}
		*su |= bit;
	}
	return 0;
}

void imap_cmd_create(struct imap_cmdctx *x)
{
	if (x->n < 1) {
		imap_bad(x, "CREATE needs one mailbox name");
		return;
	}
	char name[512];
	unsigned su;
	if (imap_mailbox_arg(x, &x->a[0], name) < 0 || create_params(x, &su) < 0)
		return;
	size_t len = strlen(name);
	if (len > 1 && name[len - 1] == '/')
		name[len - 1] = '\0'; /* "foo/" declares intent to have children */
	if (in_others(name)) {
		imap_reply(x->s, "%s NO [NOPERM] Permission denied", x->tag);
		return;
	}
	struct store_mailbox mb;
	int r = store_mailbox_get(x->s->acct, name, &mb);
	if (r == 1) {
		imap_reply(x->s, "%s NO [ALREADYEXISTS] Mailbox already exists", x->tag);
		return;
	}
	char err[256];
	if (r < 0 || store_mailbox_create(x->s->acct, name, su, err, sizeof err) < 0) {
		if (r < 0)
			snprintf(err, sizeof err, "database error");
		imap_reply(x->s, "%s NO [CANNOT] %s", x->tag, err);
		return;
	}
	/* RFC 8474 4.1: the new mailbox's id in the tagged OK */
	if (store_mailbox_get(x->s->acct, name, &mb) == 1)
		imap_reply(x->s, "%s OK [MAILBOXID (M%lld)] Create completed", x->tag,
			   (long long)mb.id);
	else /* removed at once by another session: created all the same */
		imap_reply(x->s, "%s OK Create completed", x->tag);
}

void imap_cmd_delete(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n != 1) {
		imap_bad(x, "DELETE needs one mailbox name");
		return;
	}
	char name[512];
	if (imap_mailbox_arg_existing(x, &x->a[0], name) < 0)
		return;
	struct store_mailbox mb;
	if (need_mailbox(x, name, &mb) <= 0)
		return;
	if (strcmp(mb.name, "INBOX") == 0) {
		imap_reply(s, "%s NO [CANNOT] INBOX cannot be deleted", x->tag);
		return;
	}
	char err[256];
	struct mb_list l = {NULL, 0, 0};
	if (store_mailbox_list(s->acct, collect_cb, &l, err, sizeof err) < 0) {
		imap_no_store(x, "delete", err);
		return;
	}
	/* Deleting a parent would leave its children without one, which
	 * LIST "%" could not show (RFC 9051 6.3.4 allows refusing). */
	bool children = has_child(&l, mb.name);
	free(l.v);
	if (children) {
		imap_reply(s, "%s NO [HASCHILDREN] Mailbox has children, delete them first",
			   x->tag);
		return;
	}
	if (s->sel && s->sel->acct == s->acct && s->sel->id == mb.id)
		imap_unselect(s);
	if (store_mailbox_delete(s->acct, mb.name, err, sizeof err) < 0) {
		imap_reply(s, "%s NO [CANNOT] %s", x->tag, err);
		return;
	}
	imap_reply(s, "%s OK Delete completed", x->tag);
}

void imap_cmd_rename(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	if (x->n != 2) {
		imap_bad(x, "RENAME needs two mailbox names");
		return;
	}
	char from[512], to[512];
	if (imap_mailbox_arg_existing(x, &x->a[0], from) < 0 ||
	    imap_mailbox_arg(x, &x->a[1], to) < 0)
		return;
	struct store_mailbox mb, mb2;
	if (need_mailbox(x, from, &mb) <= 0)
		return;
	if (in_others(to)) {
		imap_reply(s, "%s NO [NOPERM] Permission denied", x->tag);
		return;
	}
	int r = store_mailbox_get(s->acct, to, &mb2);
	if (r == 1) {
		imap_reply(s, "%s NO [ALREADYEXISTS] Target mailbox already exists", x->tag);
		return;
	}
	char err[256];
	if (r < 0 || store_mailbox_rename(s->acct, mb.name, to, err, sizeof err) < 0) {
		if (r < 0)
			snprintf(err, sizeof err, "database error");
		imap_reply(s, "%s NO [CANNOT] %s", x->tag, err);
		return;
	}
	if (s->sel && s->sel->acct == s->acct && s->sel->id == mb.id &&
	    strcmp(mb.name, "INBOX") != 0) {
		free(s->sel->name);
		s->sel->name = xstrdup(to);
	}
	imap_reply(s, "%s OK Rename completed", x->tag);
}

/* Subscriptions are names (store.h): SUBSCRIBE of a name no mailbox has
 * succeeds, as does SUBSCRIBE of a subscribed name (RFC 9051 6.3.7) and
 * UNSUBSCRIBE of any name that is not subscribed, even one no mailbox can
 * have (6.3.8). */
void imap_cmd_subscribe(struct imap_cmdctx *x)
{
	bool on = strutil_eq_ci(x->c->name, x->c->name_len, "SUBSCRIBE");
	if (x->n != 1 || !imap_tok_is_string(&x->a[0])) {
		imap_bad(x, "One mailbox name expected");
		return;
	}
	char name[512];
	if (on) {
		if (imap_mailbox_arg(x, &x->a[0], name) < 0)
			return;
		if (!store_mailbox_name_ok(name)) {
			imap_reply(x->s, "%s NO [CANNOT] Invalid mailbox name", x->tag);
			return;
		}
	} else if (imap_mailbox_decode(x->s, &x->a[0], name) < 0 || !store_mailbox_name_ok(name)) {
		imap_reply(x->s, "%s OK Unsubscribe completed", x->tag);
		return;
	}
	char err[256];
	int r = store_mailbox_subscribe(x->s->acct, name, on, err, sizeof err);
	if (r == -2) {
		imap_reply(x->s, "%s NO [LIMIT] %s", x->tag, err);
		return;
	}
	if (r < 0) {
		imap_no_store(x, "subscribe", err);
		return;
	}
	imap_reply(x->s, "%s OK %s completed", x->tag, on ? "Subscribe" : "Unsubscribe");
}

void imap_cmd_namespace(struct imap_cmdctx *x)
{
	if (x->n != 0) {
		imap_bad(x, "NAMESPACE takes no arguments");
		return;
	}
	/* RFC 2342: personal, other users (imap-acl.c), no shared */
	imap_reply(x->s, "* NAMESPACE ((\"\" \"/\")) ((\"%s\" \"/\")) NIL", IMAP_ACL_NS_OTHERS);
	imap_reply(x->s, "%s OK Namespace completed", x->tag);
}

/* ------------------------------------------------------------ STATUS */

enum {
	ST_MESSAGES = 1 << 0,
	ST_UIDNEXT = 1 << 1,
	ST_UIDVALIDITY = 1 << 2,
	ST_UNSEEN = 1 << 3,
	ST_DELETED = 1 << 4,
	ST_SIZE = 1 << 5,
	ST_RECENT = 1 << 6,
	ST_HIGHESTMODSEQ = 1 << 7,   /* RFC 7162 3.1.7 */
	ST_DELETED_STORAGE = 1 << 8, /* RFC 9208 4.1.4 */
	ST_MAILBOXID = 1 << 9,       /* RFC 8474 4.3 */
};

static const struct {
	const char *name;
	unsigned bit;
} status_items[] = {
    {"MESSAGES", ST_MESSAGES},
    {"UIDNEXT", ST_UIDNEXT},
    {"UIDVALIDITY", ST_UIDVALIDITY},
    {"UNSEEN", ST_UNSEEN},
    {"DELETED", ST_DELETED},
    {"SIZE", ST_SIZE},
    {"RECENT", ST_RECENT},
    {"HIGHESTMODSEQ", ST_HIGHESTMODSEQ},
    {"DELETED-STORAGE", ST_DELETED_STORAGE},
    {"MAILBOXID", ST_MAILBOXID},
};

/* Parses "(item ...)" at t; sets *items (in the order given: order[]).
 * Returns tokens used, or 0 on a syntax error. */
static size_t parse_status_items(const struct imap_tok *t, size_t n, unsigned *items,
				 unsigned char order[16], size_t *n_order)
{
	*items = 0;
	*n_order = 0;
	if (n < 2 || t[0].type != IMAP_TOK_LPAREN)
		return 0;
	size_t i = 1;
	for (; i < n && t[i].type != IMAP_TOK_RPAREN; i++) {
		size_t k;
		for (k = 0; k < sizeof status_items / sizeof status_items[0]; k++)
			if (t[i].type == IMAP_TOK_ATOM && imap_tok_eq(&t[i], status_items[k].name))
				break;
		if (k == sizeof status_items / sizeof status_items[0] || *n_order >= 16)
			return 0;
		if (!(*items & status_items[k].bit))
			order[(*n_order)++] = (unsigned char)k;
		*items |= status_items[k].bit;
	}
	if (i >= n || *items == 0)
		return 0;
	return i + 1;
}

static void status_line(struct imap_session *s, const struct store_mailbox *mb,
			const unsigned char *order, size_t n_order, struct buf *b)
{
	buf_puts(b, "* STATUS ");
	imap_mailbox_out(s, mb->name, b);
	buf_puts(b, " (");
	/* an IMAP4rev2 session sees no \Recent */
	uint32_t recent = s->rev2 ? 0 : mb->recent;
	for (size_t i = 0; i < n_order; i++) {
		unsigned bit = status_items[order[i]].bit;
		if (bit == ST_MAILBOXID) {
			buf_printf(b, "%sMAILBOXID (", i ? " " : "");
			mailbox_objectid(s, mb->name, mb->id, b);
			buf_puts(b, ")");
			continue;
		}
		unsigned long long v = bit == ST_MESSAGES          ? mb->messages
				       : bit == ST_UIDNEXT         ? mb->uidnext
				       : bit == ST_UIDVALIDITY     ? mb->uidvalidity
				       : bit == ST_UNSEEN          ? mb->unseen
				       : bit == ST_DELETED         ? mb->deleted
				       : bit == ST_SIZE            ? mb->size
				       : bit == ST_RECENT          ? recent
				       : bit == ST_HIGHESTMODSEQ   ? mb->highestmodseq
				       : bit == ST_DELETED_STORAGE ? mb->deleted_size
								   : 0;
		buf_printf(b, "%s%s %llu", i ? " " : "", status_items[order[i]].name, v);
	}
	buf_puts(b, ")\r\n");
}

void imap_cmd_status(struct imap_cmdctx *x)
{
	unsigned items;
	unsigned char order[16];
	size_t n_order;
	if (x->n < 3 ||
	    parse_status_items(x->a + 1, x->n - 1, &items, order, &n_order) != x->n - 1) {
		imap_bad(x, "STATUS needs a mailbox and a list of items");
		return;
	}
	char name[512];
	if (imap_mailbox_arg_existing(x, &x->a[0], name) < 0)
		return;
	struct imap_acl_mb am; /* RFC 4314 4: STATUS needs 'r' */
	if (imap_acl_mailbox(x, name, 'r', &am) <= 0)
		return;
	struct store_mailbox mb = am.mb;
	if (items & ST_HIGHESTMODSEQ)
		imap_condstore_enable(x->s);
	struct buf b = BUF_INIT;
	status_line(x->s, &mb, order, n_order, &b);
	imap_send(x->s, b.data, b.len);
	buf_free(&b);
	imap_reply(x->s, "%s OK Status completed", x->tag);
}

/* -------------------------------------------------------------- LIST */

/* RFC 9051 6.3.9: "*" matches anything, "%" anything but the delimiter. */
static bool wild_match(const char *p, const char *name)
{
	if (*p == '\0')
		return *name == '\0';
	if (*p == '*') {
		for (const char *n = name;; n++) {
			if (wild_match(p + 1, n))
				return true;
			if (*n == '\0')
				return false;
		}
	}
	if (*p == '%') {
		for (const char *n = name;; n++) {
			if (wild_match(p + 1, n))
				return true;
			if (*n == '\0' || *n == '/')
				return false;
		}
	}
	return *p == *name && wild_match(p + 1, name + 1);
}

/* "inbox" as a first level is INBOX, in any case. */
static void canon_inbox(char *p)
{
	if (strncasecmp(p, "INBOX", 5) == 0 && (p[5] == '\0' || p[5] == '/'))
		memcpy(p, "INBOX", 5);
}

enum {
	SEL_SUBSCRIBED = 1 << 0,
	SEL_RECURSIVE = 1 << 1,
	SEL_SPECIALUSE = 1 << 2,
	RET_SUBSCRIBED = 1 << 3,
	RET_CHILDREN = 1 << 4,
	RET_SPECIALUSE = 1 << 5,
	RET_STATUS = 1 << 6,
	LIST_EXTENDED = 1 << 7, /* any of RFC 5258's three extensions was used */
	RET_MYRIGHTS = 1 << 8,  /* RFC 8440 LIST-MYRIGHTS (imap-acl.c) */
};

/* One name LIST or LSUB may answer for: a mailbox, a subscribed name, or
 * a level above a subscribed name (for RECURSIVEMATCH and LSUB "%"),
 * which need not exist. */
struct list_name {
	char *name;                     /* owned */
	const struct store_mailbox *mb; /* NULL: no mailbox has this name */
	bool subscribed;
	bool match; /* matches one of the patterns */
	bool meets; /* meets the selection criteria */
};

struct name_list {
	struct list_name *v;
	size_t n, cap;
};

static void names_add(struct name_list *nl, const char *name, size_t len,
		      const struct store_mailbox *mb, bool subscribed)
{
	if (nl->n == nl->cap) {
		nl->cap = nl->cap ? nl->cap * 2 : 64;
		nl->v = xreallocarray(nl->v, nl->cap, sizeof *nl->v);
	}
	struct list_name *e = &nl->v[nl->n++];
	memset(e, 0, sizeof *e);
	e->name = xstrndup(name, len);
	e->mb = mb;
	e->subscribed = subscribed;
}

/* A subscribed name, and every level above it ("a" and "a/b" for "a/b/c")
 * as a name that is not itself subscribed. */
static int subscription_cb(void *ctx, const char *name)
{
	struct name_list *nl = ctx;
	for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/'))
		names_add(nl, name, (size_t)(p - name), NULL, false);
	names_add(nl, name, strlen(name), NULL, true);
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_name *)a)->name, ((const struct list_name *)b)->name);
}

/* Sorts by name and merges the entries for one name into one. */
static void names_merge(struct name_list *nl)
{
	if (nl->n == 0)
		return;
	qsort(nl->v, nl->n, sizeof *nl->v, name_cmp);
	size_t w = 0;
	for (size_t r = 1; r < nl->n; r++) {
		struct list_name *keep = &nl->v[w], *e = &nl->v[r];
		if (strcmp(keep->name, e->name) == 0) {
			keep->mb = keep->mb ? keep->mb : e->mb;
			keep->subscribed |= e->subscribed;
			free(e->name);
		} else {
			nl->v[++w] = *e;
		}
	}
	nl->n = w + 1;
}

/* The entries below v[i] in the hierarchy, [*lo, *hi): names starting
 * with "name/" sort together (after name, though not always right after
 * it: "a-b" sorts between "a" and "a/b"). */
static void names_below(const struct name_list *nl, size_t i, size_t *lo, size_t *hi)
{
	const char *name = nl->v[i].name;
	size_t len = strlen(name);
	size_t a = i + 1, b = nl->n;
	while (a < b) { /* first entry >= "name/" */
		size_t m = a + (b - a) / 2;
		const char *c = nl->v[m].name;
		int d = strncmp(c, name, len);
		if (d < 0 || (d == 0 && (unsigned char)c[len] < '/'))
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	while (a < nl->n && strncmp(nl->v[a].name, name, len) == 0 && nl->v[a].name[len] == '/')
		a++;
	*hi = a;
}

static bool list_meets(const struct list_name *e, bool lsub, unsigned opts)
{
	if (lsub)
		return e->subscribed;
	if ((opts & SEL_SUBSCRIBED) ? !e->subscribed : e->mb == NULL)
		return false;
	return !(opts & SEL_SPECIALUSE) || (e->mb && e->mb->special_use);
}

/* The LIST or LSUB line (and RETURN (STATUS)'s STATUS line) for v[i], if
 * it is answered for: RFC 5258 3.3 and 3.5 (RFC 9051 6.3.9.3, 6.3.9.6).
 * A name that meets the selection criteria is listed, with CHILDINFO
 * under RECURSIVEMATCH when a name below it meets them too; one that does
 * not is listed (RECURSIVEMATCH only, with CHILDINFO) when a name below
 * it meets them without matching the pattern, since otherwise that name
 * is listed itself and the CHILDINFO would be redundant.  LSUB does the
 * same with \Noselect for a name that is not subscribed (RFC 3501 6.3.9:
 * LSUB "%" with only "foo/bar" subscribed answers "foo" \Noselect). */
static void list_line(struct imap_session *s, const struct name_list *nl, size_t i, bool lsub,
		      unsigned opts, const unsigned char *st_order, size_t st_n, struct buf *b)
{
	const struct list_name *e = &nl->v[i];
	size_t lo, hi;
	names_below(nl, i, &lo, &hi);
	bool below_mb = false, below_meets = false, below_meets_unmatched = false;
	for (size_t j = lo; j < hi; j++) {
		below_mb |= nl->v[j].mb != NULL;
		below_meets |= nl->v[j].meets;
		below_meets_unmatched |= nl->v[j].meets && !nl->v[j].match;
	}
	bool recursive = lsub || (opts & SEL_RECURSIVE);
	if (!e->meets && !(recursive && below_meets_unmatched))
		return;
	buf_printf(b, "* %s (", lsub ? "LSUB" : "LIST");
	if (lsub) {
		if (!e->meets)
			buf_puts(b, "\\Noselect");
	} else {
		const char *sp = "";
		if (e->mb == NULL) {
			buf_puts(b, "\\NonExistent");
			sp = " ";
		}
		if (e->mb || (opts & RET_CHILDREN)) {
			buf_printf(b, "%s%s", sp, below_mb ? "\\HasChildren" : "\\HasNoChildren");
			sp = " ";
		}
		if (e->subscribed && (opts & (RET_SUBSCRIBED | SEL_SUBSCRIBED)))
			buf_printf(b, "%s\\Subscribed", sp);
		for (unsigned bit = 1; e->mb && bit <= STORE_SU_FLAGGED; bit <<= 1)
			if ((e->mb->special_use & bit) && su_name(bit))
				buf_printf(b, " %s", su_name(bit));
	}
	buf_puts(b, ") \"/\" ");
	imap_mailbox_out(s, e->name, b);
	if (!lsub && (opts & SEL_RECURSIVE) && below_meets) {
		/* The selection criteria that were met (RFC 5258 3.5). */
		buf_puts(b, " (\"CHILDINFO\" (");
		if (opts & SEL_SUBSCRIBED)
			buf_puts(b, "\"SUBSCRIBED\"");
		if (opts & SEL_SPECIALUSE)
			buf_puts(b,
				 (opts & SEL_SUBSCRIBED) ? " \"SPECIAL-USE\"" : "\"SPECIAL-USE\"");
		buf_puts(b, "))");
	}
	buf_puts(b, "\r\n");
	/* STATUS only for a mailbox that meets the criteria (RFC 5819 3). */
	/* of another user's mailbox, only with 'r' (RFC 4314 4) */
	if (!lsub && (opts & RET_STATUS) && e->mb && e->meets &&
	    imap_acl_may(s, e->name, e->mb->id, 'r'))
		status_line(s, e->mb, st_order, st_n, b);
	/* RFC 8440 3: MYRIGHTS after the LIST line of each mailbox */
	if (!lsub && (opts & RET_MYRIGHTS) && e->mb && e->meets)
		imap_acl_myrights_out(s, e->name, e->mb->id, b);
}

void imap_cmd_list(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	bool lsub = strutil_eq_ci(x->c->name, x->c->name_len, "LSUB");
	const struct imap_tok *a = x->a;
	size_t n = x->n, i = 0;
	unsigned opts = 0, st_items = 0;
	unsigned char st_order[16];
	size_t st_n = 0;
	const char *bad = NULL;
	/* selection options */
	if (!lsub && i < n && a[i].type == IMAP_TOK_LPAREN) {
		opts |= LIST_EXTENDED;
		for (i++; i < n && a[i].type != IMAP_TOK_RPAREN; i++) {
			if (imap_tok_eq(&a[i], "SUBSCRIBED"))
				opts |= SEL_SUBSCRIBED;
			else if (imap_tok_eq(&a[i], "RECURSIVEMATCH"))
				opts |= SEL_RECURSIVE;
			else if (imap_tok_eq(&a[i], "SPECIAL-USE"))
				opts |= SEL_SPECIALUSE;
			else if (imap_tok_eq(&a[i], "REMOTE"))
				;
			else
				bad = "Unknown LIST selection option";
		}
		i++;
		if ((opts & SEL_RECURSIVE) && !(opts & (SEL_SUBSCRIBED | SEL_SPECIALUSE)))
			bad = "RECURSIVEMATCH needs another selection option";
	}
	if (bad == NULL && (i >= n || !imap_tok_is_string(&a[i])))
		bad = "Reference name expected";
	if (bad) {
		imap_bad(x, bad);
		return;
	}
	const struct imap_tok *ref = &a[i++];
	/* patterns: one, or a list (LIST-EXTENDED) */
	size_t pat_first = i, pat_n = 0;
	if (i < n && a[i].type == IMAP_TOK_LPAREN && !lsub) {
		opts |= LIST_EXTENDED;
		for (i++, pat_first = i; i < n && a[i].type != IMAP_TOK_RPAREN; i++, pat_n++)
			if (!imap_tok_is_string(&a[i]))
				bad = "Invalid mailbox pattern";
		i++;
		if (pat_n == 0)
			bad = "Empty pattern list";
	} else if (i < n && imap_tok_is_string(&a[i])) {
		pat_n = 1;
		i++;
	} else {
		bad = "Mailbox pattern expected";
	}
	if (bad == NULL && i < n) {
		opts |= LIST_EXTENDED;
		if (lsub || !imap_tok_eq(&a[i], "RETURN") || i + 1 >= n ||
		    a[i + 1].type != IMAP_TOK_LPAREN) {
			bad = "Unexpected arguments";
		} else {
			for (i += 2; bad == NULL && i < n && a[i].type != IMAP_TOK_RPAREN; i++) {
				if (imap_tok_eq(&a[i], "SUBSCRIBED")) {
					opts |= RET_SUBSCRIBED;
				} else if (imap_tok_eq(&a[i], "CHILDREN")) {
					opts |= RET_CHILDREN;
				} else if (imap_tok_eq(&a[i], "SPECIAL-USE")) {
					opts |= RET_SPECIALUSE;
				} else if (imap_tok_eq(&a[i], "MYRIGHTS")) {
					opts |= RET_MYRIGHTS;
				} else if (imap_tok_eq(&a[i], "STATUS")) {
					size_t used = parse_status_items(
					    a + i + 1, n - i - 1, &st_items, st_order, &st_n);
					if (used == 0)
						bad = "Invalid STATUS return option";
					opts |= RET_STATUS;
					i += used;
				} else {
					bad = "Unknown LIST return option";
				}
			}
			if (i + 1 != n)
				bad = bad ? bad : "Unexpected arguments";
		}
	}
	if (bad) {
		imap_bad(x, bad);
		return;
	}
	char refname[512];
	if (ref->len == 0) {
		refname[0] = '\0';
	} else if (imap_mailbox_arg(x, ref, refname) < 0) {
		return;
	}
	/* LIST "" "": the hierarchy delimiter; not in the extended syntax,
	 * where an empty pattern matches nothing (RFC 5258 3). */
	if (pat_n == 1 && a[pat_first].len == 0 && !(opts & LIST_EXTENDED)) {
		if (lsub)
			imap_reply(s, "* LSUB (\\Noselect) \"/\" \"\"");
		else
			imap_reply(s, "* LIST (\\Noselect) \"/\" \"\"");
		imap_reply(s, "%s OK %s completed", x->tag, lsub ? "Lsub" : "List");
		return;
	}
	char(*pats)[1024] = xcalloc(pat_n, sizeof *pats);
	size_t np = 0;
	for (size_t k = 0; k < pat_n; k++) {
		const struct imap_tok *t = &a[pat_first + k];
		if (t->len == 0)
			continue;
		char pat[512];
		if (!imap_tok_is_string(t)) {
			free(pats);
			imap_bad(x, "Mailbox name expected");
			return;
		}
		if (imap_mailbox_decode(s, t, pat) < 0)
			continue; /* a name no mailbox has (bad modified UTF-7) */
		snprintf(pats[np], sizeof pats[np], "%s%s", pat[0] == '/' ? "" : refname, pat);
		canon_inbox(pats[np]);
		np++;
	}
	struct mb_list l = {NULL, 0, 0};
	struct name_list nl = {NULL, 0, 0};
	char err[256];
	bool subs = lsub || (opts & (SEL_SUBSCRIBED | RET_SUBSCRIBED));
	int r = store_mailbox_list(s->acct, collect_cb, &l, err, sizeof err);
	if (r == 0) /* other users' mailboxes shared with this one */
		r = imap_acl_list_shared(s, &l.v, &l.n, &l.cap, err, sizeof err);
	if (r == 0 && subs)
		r = store_mailbox_subscriptions(s->acct, subscription_cb, &nl, err, sizeof err);
	if (r == 0) {
		for (size_t k = 0; k < l.n; k++)
			names_add(&nl, l.v[k].name, strlen(l.v[k].name), &l.v[k], false);
		names_merge(&nl);
		for (size_t k = 0; k < nl.n; k++) {
			struct list_name *e = &nl.v[k];
			for (size_t p = 0; p < np && !e->match; p++)
				e->match = wild_match(pats[p], e->name);
			e->meets = list_meets(e, lsub, opts);
		}
		struct buf b = BUF_INIT;
		for (size_t k = 0; k < nl.n; k++) {
			if (!nl.v[k].match)
				continue;
			list_line(s, &nl, k, lsub, opts, st_order, st_n, &b);
			if (b.len > 65536) {
				imap_send(s, b.data, b.len);
				buf_reset(&b);
			}
		}
		imap_send(s, b.data, b.len);
		buf_free(&b);
	}
	for (size_t k = 0; k < nl.n; k++)
		free(nl.v[k].name);
	free(nl.v);
	free(l.v);
	free(pats);
	if (r < 0)
		imap_no_store(x, "list", err);
	else
		imap_reply(s, "%s OK %s completed", x->tag, lsub ? "Lsub" : "List");
}

/* ------------------------------------------------------------ APPEND */

/* Writes msg (bare LF made CRLF) to a new spool file, fsync'ed.  Returns
 * its descriptor, which holds the file until store_spool_drop, or -1. */
static int spool_write(struct imap_session *s, struct store_account *target, const char *msg,
		       size_t n, char *path, size_t pathsz)
{
	int fd = store_spool_new(s->srv->store, path, pathsz);
	if (fd < 0)
		return -1;
	struct buf b;
	buf_init(&b, 0);
	int r = 0;
	size_t start = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r')) {
			r |= buf_append(&b, msg + start, i - start);
			r |= buf_append(&b, "\r\n", 2);
			start = i + 1;
		}
		if (b.len >= 65536) {
			r |= fsutil_write_all(fd, b.data, b.len);
			buf_reset(&b);
		}
	}
	r |= buf_append(&b, msg + start, n - start);
	if (r == 0 && fsutil_write_all(fd, b.data, b.len) < 0)
		r = -1;
	buf_free(&b);
	/* armed (store_commit_arm): the commit thread syncs the file */
	if (r == 0 && !store_commit_armed(target) && fsync(fd) < 0)
		r = -1;
	if (r < 0)
		store_spool_drop(&fd, path);
	return fd;
}

/* One message of an APPEND. */
struct append_msg {
	unsigned flags;
	char kw[1024];
	time_t date;
	const struct imap_tok *lit;
	char path[PATH_MAX];
	int fd; /* the spool file's, while it exists */
};

void imap_cmd_append(struct imap_cmdctx *x)
{
	struct imap_session *s = x->s;
	const struct imap_tok *a = x->a;
	size_t n = x->n, i = 1;
	if (n < 2) {
		imap_bad(x, "APPEND needs a mailbox and a message");
		return;
	}
	/* (flags) "date" literal, once or more (MULTIAPPEND, RFC 3502) */
	size_t n_lit = 0;
	for (size_t k = 1; k < n; k++)
		if (a[k].type == IMAP_TOK_LITERAL)
			n_lit++;
	struct append_msg *m = xcalloc(n_lit ? n_lit : 1, sizeof *m);
	for (size_t k = 0; k < (n_lit ? n_lit : 1); k++)
		m[k].fd = -1;
	size_t nm = 0;
	const char *bad = NULL;
	while (i < n && bad == NULL) {
		if (nm == n_lit) {
			bad = "Message literal expected";
			break;
		}
		struct append_msg *p = &m[nm];
		p->date = time(NULL);
		if (a[i].type == IMAP_TOK_LPAREN) {
			size_t used;
			if (imap_flags_arg(a + i, n - i, &used, &p->flags, p->kw, sizeof p->kw) <
			    0) {
				bad = "Invalid flags";
				break;
			}
			i += used;
		}
		if (i < n && a[i].type == IMAP_TOK_QUOTED) {
			if (imap_parse_datetime(a[i].p, a[i].len, &p->date) < 0) {
				bad = "Invalid date-time";
				break;
			}
			i++;
		}
		if (i >= n || a[i].type != IMAP_TOK_LITERAL) {
			bad = "Message literal expected";
			break;
		}
		p->lit = &a[i++];
		if (!p->lit->lit8 && memchr(p->lit->p, '\0', p->lit->len))
			bad = "NUL in message: use a literal8 (~{n})";
		nm++;
	}
	if (bad) {
		free(m);
		imap_bad(x, bad);
		return;
	}
	char name[512];
	if (imap_mailbox_arg(x, &a[0], name) < 0) {
		free(m);
		return;
	}
	struct store_mailbox mb;
	struct store_account *target = s->acct;
	char tname[512];
	int r;
	if (imap_acl_split(s, name, &target, tname) != 0) {
		/* into another user's mailbox: 'i' (RFC 4314 4) */
		struct imap_acl_mb am;
		if (imap_acl_mailbox(x, name, 'i', &am) <= 0) {
			free(m);
			return;
		}
		mb = am.mb;
		snprintf(mb.name, sizeof mb.name, "%s", tname);
		r = 1;
	} else {
		r = store_mailbox_get(s->acct, name, &mb);
	}
	if (r <= 0) {
		free(m);
		if (r == 0)
			imap_reply(s, "%s NO [TRYCREATE] Mailbox does not exist", x->tag);
		else
			imap_no_store(x, "append", "database error");
		return;
	}
	for (size_t k = 0; k < nm; k++)
		if (m[k].lit->len == 0) {
			free(m);
			imap_reply(s, "%s NO Empty messages are not stored", x->tag);
			return;
		}
	struct store_imap_append_msg *sm = xcalloc(nm, sizeof *sm);
	uint32_t *uids = xcalloc(nm, sizeof *uids);
	char err[256] = "";
	r = 0;
	for (size_t k = 0; k < nm && r == 0; k++) {
		m[k].fd = spool_write(s, target, m[k].lit->p, m[k].lit->len, m[k].path, sizeof m[k].path);
		if (m[k].fd < 0) {
			snprintf(err, sizeof err, "spool: %s", strerror(errno));
			r = -1;
			break;
		}
		sm[k].path = m[k].path;
		sm[k].flags = m[k].flags;
		sm[k].keywords = m[k].kw;
		sm[k].internaldate = m[k].date;
	}
	uint32_t uv = mb.uidvalidity;
	if (r == 0)
		r = store_imap_append(target, mb.name, sm, nm, &uv, uids, err, sizeof err);
	for (size_t k = 0; k < nm; k++)
		store_spool_drop(&m[k].fd, m[k].path);
	if (r == -2) {
		imap_reply(s, "%s NO [OVERQUOTA] Quota exceeded, nothing was stored", x->tag);
	} else if (r < 0) {
		if (strstr(err, "keyword"))
			imap_reply(s, "%s NO [LIMIT] %s", x->tag, err);
		else
			imap_no_store(x, "append", err);
	} else {
		size_t total = 0;
		for (size_t k = 0; k < nm; k++)
			total += m[k].lit->len;
		log_info("imap session=%s user=%s action=append mailbox_id=%lld messages=%zu "
			 "first_uid=%lu size=%zu",
			 s->id, s->address, (long long)mb.id, nm, (unsigned long)uids[0], total);
		if (s->sel && s->sel->acct == target && s->sel->id == mb.id)
			imap_sync(s, true);
		struct buf b = BUF_INIT;
		for (size_t k = 0; k < nm;) {
			size_t j = k;
			while (j + 1 < nm && uids[j + 1] == uids[j] + 1)
				j++;
			if (k)
				buf_putc(&b, ',');
			if (j == k)
				buf_printf(&b, "%lu", (unsigned long)uids[k]);
			else
				buf_printf(&b, "%lu:%lu", (unsigned long)uids[k],
					   (unsigned long)uids[j]);
			k = j + 1;
		}
		imap_reply(s, "%s OK [APPENDUID %lu %s] Append completed", x->tag,
			   (unsigned long)uv, buf_cstr(&b));
		buf_free(&b);
	}
	free(sm);
	free(uids);
	free(m);
}
