/*
 * imap-acl.c - shared mailboxes: the ACL commands (RFC 4314 SETACL,
 * DELETEACL, GETACL, LISTRIGHTS, MYRIGHTS), the "Other Users/" namespace
 * (RFC 2342) and the rights checks the other commands ask for.
 * Protocol layer (imap-private.h); the ACLs are in store/store-acl.c.
 *
 * Names: "Other Users/<address>/<mailbox>" is <mailbox> of the account
 * <address>, opened through the store like the session's own account
 * (one handle per account per process, so the commit machinery and the
 * per-account write lock see one account, whoever writes to it).
 *
 * Rights: the owner has all of STORE_ACL_RIGHTS on their own mailboxes,
 * always (RFC 4314 2: an implementation MAY force rights).  Others get
 * at most STORE_ACL_OTHERS_RIGHTS (store.h): a shared mailbox can be
 * read, flagged, appended to and expunged, but never renamed, deleted or
 * re-shared by another user.  LISTRIGHTS says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-private.h"
#include "log.h"
#include "strutil.h"
#include "xalloc.h"

int imap_acl_me(struct imap_session *s, char out[256])
{
	return store_account_address(s->srv->store, store_account_id(s->acct), out) == 1 ? 0 : -1;
}

bool imap_acl_has(const char *rights, char r)
{
	return r != '\0' && strchr(rights, r) != NULL;
}

/* rights restricted to what ident may have on a mailbox of owner. */
static void others_only(char *rights)
{
	size_t k = 0;
	for (size_t i = 0; rights[i]; i++)
		if (strchr(STORE_ACL_OTHERS_RIGHTS, rights[i]) != NULL)
			rights[k++] = rights[i];
	rights[k] = '\0';
}

int imap_acl_split(struct imap_session *s, const char *name, struct store_account **owner,
		   char mbname[512])
{
	size_t pl = strlen(IMAP_ACL_NS_OTHERS);
	if (strncasecmp(name, IMAP_ACL_NS_OTHERS, pl - 1) != 0 ||
	    (name[pl - 1] != '/' && name[pl - 1] != '\0')) {
		*owner = s->acct;
		snprintf(mbname, 512, "%s", name);
		return 0;
	}
	const char *user = name[pl - 1] ? name + pl : "";
	const char *slash = strchr(user, '/');
	size_t ul = slash ? (size_t)(slash - user) : strlen(user);
	if (ul == 0 || ul > 255 || slash == NULL || slash[1] == '\0')
		return -1;
	char addr[256];
	memcpy(addr, user, ul);
	addr[ul] = '\0';
	struct store_account *a = NULL;
	if (store_account_open(s->srv->store, addr, &a) <= 0 || a == s->acct)
		return -1;
	*owner = a;
	snprintf(mbname, 512, "%s", slash + 1);
	return 1;
}

int imap_acl_myrights(struct imap_session *s, struct store_account *owner, int64_t mailbox_id,
		      char out[STORE_ACL_RIGHTS_LEN + 1])
{
	if (owner == s->acct) {
		snprintf(out, STORE_ACL_RIGHTS_LEN + 1, "%s", STORE_ACL_RIGHTS);
		return 0;
	}
	char err[256], me[256];
	if (imap_acl_me(s, me) < 0 ||
	    store_acl_rights(owner, mailbox_id, me, out, err, sizeof err) < 0) {
		log_error("imap session=%s user=%s action=acl_rights error=\"%s\"", s->id,
			  s->address, err);
		return -1;
	}
	others_only(out);
	return 0;
}

int imap_acl_mailbox(struct imap_cmdctx *x, const char *name, char need, struct imap_acl_mb *m)
{
	struct imap_session *s = x->s;
	memset(m, 0, sizeof *m);
	char mbname[512];
	int shared = imap_acl_split(s, name, &m->owner, mbname);
	int r = shared < 0 ? 0 : store_mailbox_get(m->owner, mbname, &m->mb);
	if (r < 0) {
		imap_no_store(x, "mailbox_get", "database error");
		return -1;
	}
	if (r == 1 && imap_acl_myrights(s, m->owner, m->mb.id, m->rights) < 0) {
		imap_no_store(x, "acl", "database error");
		return -1;
	}
	m->shared = shared == 1;
	/* RFC 4314 4: without 'l' (or the right asked for) the mailbox is not
	 * revealed: the same answer as for a mailbox that does not exist */
	bool visible = r == 1 && (imap_acl_has(m->rights, 'l') || imap_acl_has(m->rights, need) ||
				  imap_acl_has(m->rights, 'r'));
	if (!visible) {
		imap_reply(s, "%s NO [NONEXISTENT] Mailbox does not exist", x->tag);
		return 0;
	}
	if (need && !imap_acl_has(m->rights, need)) {
		imap_reply(s, "%s NO [NOPERM] Permission denied", x->tag);
		return 0;
	}
	if (m->shared) /* the name as the client knows it (< 500 bytes) */
		snprintf(m->mb.name, sizeof m->mb.name, "%s", name);
	return 1;
}

/* ------------------------------------------------------------- LIST */

struct shared_ctx {
	struct imap_session *s;
	struct store_account *owner;
	char owner_addr[256];
	char me[256];
	struct store_mailbox **v;
	size_t *n, *cap;
	char err[256];
};

static int granted_cb(void *ctx, int64_t mailbox_id, const char *rights)
{
	struct shared_ctx *c = ctx;
	char r[STORE_ACL_RIGHTS_LEN + 1];
	snprintf(r, sizeof r, "%s", rights);
	others_only(r);
	if (!imap_acl_has(r, 'l'))
		return 0;
	char name[512];
	struct store_mailbox mb;
	if (store_imap_mailbox_by_id(c->owner, mailbox_id, name) != 1 ||
	    store_mailbox_get(c->owner, name, &mb) != 1)
		return 0; /* gone meanwhile */
	char full[512];
	int k = snprintf(full, sizeof full, "%s%s/%s", IMAP_ACL_NS_OTHERS, c->owner_addr, name);
	if (k < 0 || (size_t)k >= sizeof full - 12)
		return 0; /* longer than a name can be */
	snprintf(mb.name, sizeof mb.name, "%s", full);
	mb.subscribed = false;
	mb.special_use = 0;
	if (*c->n == *c->cap) {
		*c->cap = *c->cap ? *c->cap * 2 : 16;
		*c->v = xreallocarray(*c->v, *c->cap, sizeof **c->v);
	}
	(*c->v)[(*c->n)++] = mb;
	return 0;
}

static int owner_cb(void *ctx, int64_t owner_id)
{
	struct shared_ctx *c = ctx;
	if (owner_id == store_account_id(c->s->acct) ||
	    store_account_open_id(c->s->srv->store, owner_id, &c->owner) != 1 ||
	    store_account_address(c->s->srv->store, owner_id, c->owner_addr) != 1)
		return 0; /* removed since: a stale hint */
	return store_acl_granted(c->owner, c->me, granted_cb, c, c->err, sizeof c->err);
}

int imap_acl_list_shared(struct imap_session *s, struct store_mailbox **v, size_t *n, size_t *cap,
			 char *err, size_t errsz)
{
	struct shared_ctx c = {s, NULL, "", "", v, n, cap, ""};
	if (imap_acl_me(s, c.me) < 0)
		return 0; /* the account is being removed */
	if (store_acl_owners(s->srv->store, c.me, owner_cb, &c, c.err, sizeof c.err) < 0) {
		snprintf(err, errsz, "%s", c.err);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ commands */

/* The mailbox argument of an ACL command: 1 (m filled, the caller may
 * administer it: 'a', or 'l' for MYRIGHTS), or 0 after answering. */
static int acl_target(struct imap_cmdctx *x, char need, struct imap_acl_mb *m)
{
	char name[512];
	if (imap_mailbox_arg_existing(x, &x->a[0], name) < 0)
		return 0;
	return imap_acl_mailbox(x, name, need, m) == 1;
}

/* An identifier argument into out[STORE_ACL_IDENT_MAX + 1]: "anyone" or
 * an account's address.  0, or -1 after answering. */
static int ident_arg(struct imap_cmdctx *x, const struct imap_tok *t, char *out)
{
	if (!imap_tok_is_string(t) || t->len == 0 || t->len > STORE_ACL_IDENT_MAX) {
		imap_bad(x, "Identifier expected");
		return -1;
	}
	memcpy(out, t->p, t->len);
	out[t->len] = '\0';
	if (out[0] == '-') {
		/* RFC 4314 2: negative rights are optional; not implemented */
		imap_reply(x->s, "%s NO [CANNOT] Negative rights are not supported", x->tag);
		return -1;
	}
	if (!store_acl_ident_ok(out)) {
		imap_reply(x->s, "%s NO [CANNOT] Invalid identifier", x->tag);
		return -1;
	}
	if (strcasecmp(out, "anyone") == 0) {
		snprintf(out, STORE_ACL_IDENT_MAX + 1, "anyone");
		return 0;
	}
	struct store_account *a = NULL;
	int r = store_account_open(x->s->srv->store, out, &a);
	if (r <= 0) {
		imap_reply(x->s, "%s NO [CANNOT] No such user", x->tag);
		return -1;
	}
	/* the address as the store spells it (case) */
	char addr[256];
	if (store_account_address(x->s->srv->store, store_account_id(a), addr) == 1)
		snprintf(out, STORE_ACL_IDENT_MAX + 1, "%s", addr);
	return 0;
}

static bool ident_is_owner(struct imap_session *s, const struct imap_acl_mb *m, const char *ident)
{
	char addr[256];
	return store_account_address(s->srv->store, store_account_id(m->owner), addr) == 1 &&
	       strcasecmp(addr, ident) == 0;
}

/* One identifier's own entry (not anyone's) of an ACL. */
struct entry_ctx {
	const char *ident;
	char rights[STORE_ACL_RIGHTS_LEN + 1];
};

static int entry_cb(void *ctx, const char *ident, const char *rights)
{
	struct entry_ctx *c = ctx;
	if (strcmp(ident, c->ident) == 0)
		snprintf(c->rights, sizeof c->rights, "%s", rights);
	return 0;
}

/* SETACL mailbox identifier mod-rights (RFC 4314 3.1) */
void imap_cmd_setacl(struct imap_cmdctx *x)
{
	if (x->n != 3 || !imap_tok_is_string(&x->a[2])) {
		imap_bad(x, "SETACL needs a mailbox, an identifier and rights");
		return;
	}
	char ident[STORE_ACL_IDENT_MAX + 1];
	struct imap_acl_mb m;
	if (ident_arg(x, &x->a[1], ident) < 0 || acl_target(x, 'a', &m) == 0)
		return;
	/* [+|-] rights; the obsolete 'c' and 'd' stand for "k" and "xte"
	 * (RFC 4314 2.1.1) */
	const struct imap_tok *t = &x->a[2];
	size_t i = 0;
	char mode = 0;
	if (t->len > 0 && (t->p[0] == '+' || t->p[0] == '-'))
		mode = t->p[i++];
	char want[64];
	size_t k = 0;
	for (; i < t->len; i++) {
		char c = t->p[i];
		const char *add = c == 'c' ? "k" : c == 'd' ? "xte" : NULL;
		if (add == NULL && (c == '\0' || strchr(STORE_ACL_RIGHTS, c) == NULL)) {
			imap_bad(x, "Unknown right");
			return;
		}
		if (add == NULL)
			add = &t->p[i];
		for (size_t j = 0; j < (c == 'd' ? 3u : 1u) && k + 1 < sizeof want; j++)
			want[k++] = add[j];
	}
	want[k] = '\0';
	if (ident_is_owner(x->s, &m, ident)) {
		/* RFC 4314 2: the owner's rights are forced (all) */
		imap_reply(x->s, "%s NO [CANNOT] The owner always has all rights", x->tag);
		return;
	}
	char err[256], next[64];
	struct entry_ctx cur = {ident, ""};
	if (mode && store_acl_list(m.owner, m.mb.id, entry_cb, &cur, err, sizeof err) < 0) {
		imap_no_store(x, "setacl", err);
		return;
	}
	if (mode == '+') {
		snprintf(next, sizeof next, "%s%s", cur.rights, want);
	} else if (mode == '-') {
		size_t w = 0;
		for (size_t j = 0; cur.rights[j]; j++)
			if (strchr(want, cur.rights[j]) == NULL)
				next[w++] = cur.rights[j];
		next[w] = '\0';
	} else {
		snprintf(next, sizeof next, "%s", want);
	}
	char canon[STORE_ACL_RIGHTS_LEN + 1];
	(void)store_acl_canon(next, canon);
	others_only(canon); /* k x a stay the owner's (see the top) */
	int r = store_acl_set(m.owner, m.mb.id, ident, canon, err, sizeof err);
	if (r == -2) {
		imap_reply(x->s, "%s NO [LIMIT] Too many identifiers in this ACL", x->tag);
		return;
	}
	if (r < 0) {
		imap_no_store(x, "setacl", err);
		return;
	}
	log_info("imap session=%s user=%s action=setacl mailbox_id=%lld ident=%s rights=%s",
		 x->s->id, x->s->address, (long long)m.mb.id, ident, canon);
	imap_reply(x->s, "%s OK Setacl completed", x->tag);
}

/* "mailbox identifier" that the session administers ('a'): 1, or 0
 * after answering. */
static int mailbox_and_ident(struct imap_cmdctx *x, const char *usage, char *ident,
			     struct imap_acl_mb *m)
{
	if (x->n != 2) {
		imap_bad(x, usage);
		return 0;
	}
	return ident_arg(x, &x->a[1], ident) == 0 && acl_target(x, 'a', m) == 1;
}

/* DELETEACL mailbox identifier (3.2) */
void imap_cmd_deleteacl(struct imap_cmdctx *x)
{
	char ident[STORE_ACL_IDENT_MAX + 1];
	struct imap_acl_mb m;
	if (mailbox_and_ident(x, "DELETEACL needs a mailbox and an identifier", ident, &m) == 0)
		return;
	char err[256];
	if (store_acl_set(m.owner, m.mb.id, ident, "", err, sizeof err) < 0) {
		imap_no_store(x, "deleteacl", err);
		return;
	}
	log_info("imap session=%s user=%s action=deleteacl mailbox_id=%lld ident=%s", x->s->id,
		 x->s->address, (long long)m.mb.id, ident);
	imap_reply(x->s, "%s OK Deleteacl completed", x->tag);
}

struct getacl_ctx {
	struct imap_session *s;
	struct buf *b;
};

static int getacl_cb(void *ctx, const char *ident, const char *rights)
{
	struct getacl_ctx *c = ctx;
	buf_puts(c->b, " ");
	imap_append_string(c->b, ident, strlen(ident));
	buf_printf(c->b, " %s", rights);
	return 0;
}

/* GETACL mailbox (3.3): the owner first, with all rights */
void imap_cmd_getacl(struct imap_cmdctx *x)
{
	if (x->n != 1) {
		imap_bad(x, "GETACL needs a mailbox");
		return;
	}
	struct imap_acl_mb m;
	if (acl_target(x, 'a', &m) == 0)
		return;
	char owner[256], err[256];
	if (store_account_address(x->s->srv->store, store_account_id(m.owner), owner) != 1) {
		imap_no_store(x, "getacl", "owner address");
		return;
	}
	struct buf b = BUF_INIT;
	buf_puts(&b, "* ACL ");
	imap_mailbox_out(x->s, m.mb.name, &b);
	buf_puts(&b, " ");
	imap_append_string(&b, owner, strlen(owner));
	buf_printf(&b, " %s", STORE_ACL_RIGHTS);
	struct getacl_ctx c = {x->s, &b};
	if (store_acl_list(m.owner, m.mb.id, getacl_cb, &c, err, sizeof err) < 0) {
		buf_free(&b);
		imap_no_store(x, "getacl", err);
		return;
	}
	buf_puts(&b, "\r\n");
	imap_send(x->s, b.data, b.len);
	buf_free(&b);
	imap_reply(x->s, "%s OK Getacl completed", x->tag);
}

/* LISTRIGHTS mailbox identifier (3.4) */
void imap_cmd_listrights(struct imap_cmdctx *x)
{
	char ident[STORE_ACL_IDENT_MAX + 1];
	struct imap_acl_mb m;
	if (mailbox_and_ident(x, "LISTRIGHTS needs a mailbox and an identifier", ident, &m) == 0)
		return;
	struct buf b = BUF_INIT;
	buf_puts(&b, "* LISTRIGHTS ");
	imap_mailbox_out(x->s, m.mb.name, &b);
	buf_puts(&b, " ");
	imap_append_string(&b, ident, strlen(ident));
	if (ident_is_owner(x->s, &m, ident)) {
		buf_printf(&b, " %s", STORE_ACL_RIGHTS); /* all, always */
	} else {
		buf_puts(&b, " \"\"");
		for (const char *p = STORE_ACL_OTHERS_RIGHTS; *p; p++)
			buf_printf(&b, " %c", *p);
	}
	buf_puts(&b, "\r\n");
	imap_send(x->s, b.data, b.len);
	buf_free(&b);
	imap_reply(x->s, "%s OK Listrights completed", x->tag);
}

bool imap_acl_may(struct imap_session *s, const char *name, int64_t mailbox_id, char right)
{
	struct store_account *owner;
	char mbname[512], rights[STORE_ACL_RIGHTS_LEN + 1];
	int shared = imap_acl_split(s, name, &owner, mbname);
	if (shared == 0)
		return true;
	return shared == 1 && imap_acl_myrights(s, owner, mailbox_id, rights) == 0 &&
	       imap_acl_has(rights, right);
}

static void myrights_line(struct imap_session *s, const char *name, const char *rights,
			  struct buf *b)
{
	buf_puts(b, "* MYRIGHTS ");
	imap_mailbox_out(s, name, b);
	buf_printf(b, " %s\r\n", rights[0] ? rights : "\"\"");
}

void imap_acl_myrights_out(struct imap_session *s, const char *name, int64_t mailbox_id,
			   struct buf *b)
{
	struct store_account *owner;
	char mbname[512], rights[STORE_ACL_RIGHTS_LEN + 1];
	if (imap_acl_split(s, name, &owner, mbname) < 0 ||
	    imap_acl_myrights(s, owner, mailbox_id, rights) < 0)
		return; /* gone meanwhile: its LIST line was the last word */
	myrights_line(s, name, rights, b);
}

/* MYRIGHTS mailbox (3.5) */
void imap_cmd_myrights(struct imap_cmdctx *x)
{
	if (x->n != 1) {
		imap_bad(x, "MYRIGHTS needs a mailbox");
		return;
	}
	struct imap_acl_mb m;
	if (acl_target(x, 0, &m) == 0)
		return;
	struct buf b = BUF_INIT;
	myrights_line(x->s, m.mb.name, m.rights, &b);
	imap_send(x->s, b.data, b.len);
	buf_free(&b);
	imap_reply(x->s, "%s OK Myrights completed", x->tag);
}
