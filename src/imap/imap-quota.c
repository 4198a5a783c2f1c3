/*
 * imap-quota.c - QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA and SETQUOTA.
 *
 * Every mailbox of an account has one quota root, named "" (the whole
 * account), with the STORAGE (units of 1024 octets) and MESSAGE
 * resources the store keeps (store_quota_get).  Limits are the admin's
 * (`tern user quota`, quota.default_*): no IMAP user has the right to
 * change them, so SETQUOTA is answered NO [NOPERM] and QUOTASET is not
 * advertised.  APPEND, COPY and MOVE get NO [OVERQUOTA] from their own
 * files when the store refuses them.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "imap-private.h"

/* Octets to 1024-octet units, rounded up (a partly used unit is used). */
static uint64_t kib(uint64_t bytes)
{
	return bytes / 1024 + (bytes % 1024 != 0);
}

/* Appends `* QUOTA "" (...)`: one triplet per limited resource (RFC 9208
 * 4.2.1: a resource not listed is not limited). */
static void quota_line(const struct store_quota *q, struct buf *b)
{
	buf_puts(b, "* QUOTA \"\" (");
	bool sp = false;
	if (q->storage_limit != 0) {
		buf_printf(b, "STORAGE %llu %llu", (unsigned long long)kib(q->storage),
			   (unsigned long long)kib(q->storage_limit));
		sp = true;
	}
	if (q->messages_limit != 0)
		buf_printf(b, "%sMESSAGE %llu %llu", sp ? " " : "", (unsigned long long)q->messages,
			   (unsigned long long)q->messages_limit);
	buf_puts(b, ")\r\n");
}

static int get_quota(struct imap_cmdctx *x, struct store_quota *q)
{
	char err[256];
	if (store_quota_get(x->s->acct, q, err, sizeof err) < 0) {
		imap_no_store(x, "getquota", err);
		return -1;
	}
	return 0;
}

void imap_cmd_getquotaroot(struct imap_cmdctx *x)
{
	if (x->n != 1 || x->a[0].type == IMAP_TOK_LPAREN || x->a[0].type == IMAP_TOK_RPAREN) {
		imap_bad(x, "GETQUOTAROOT needs a mailbox name");
		return;
	}
	/* The mailbox need not exist (RFC 9208 4.1.2): any name it could
	 * have is under the account's root. */
	char name[512];
	if (imap_mailbox_arg(x, &x->a[0], name) < 0)
		return;
	struct store_quota q;
	if (get_quota(x, &q) < 0)
		return;
	struct buf b = BUF_INIT;
	buf_puts(&b, "* QUOTAROOT ");
	imap_mailbox_out(x->s, name, &b);
	buf_puts(&b, " \"\"\r\n");
	quota_line(&q, &b);
	imap_send(x->s, b.data, b.len);
	buf_free(&b);
	imap_reply(x->s, "%s OK Getquotaroot completed", x->tag);
}

/* The only root is "" (as an atom, "" cannot be written). */
static bool is_our_root(const struct imap_tok *t)
{
	return (t->type == IMAP_TOK_QUOTED || t->type == IMAP_TOK_LITERAL) && t->len == 0;
}

static bool is_astring(const struct imap_tok *t)
{
	return t->type == IMAP_TOK_ATOM || t->type == IMAP_TOK_QUOTED ||
	       t->type == IMAP_TOK_LITERAL;
}

void imap_cmd_getquota(struct imap_cmdctx *x)
{
	if (x->n != 1 || !is_astring(&x->a[0])) {
		imap_bad(x, "GETQUOTA needs a quota root name");
		return;
	}
	if (!is_our_root(&x->a[0])) {
		imap_reply(x->s, "%s NO [NONEXISTENT] No such quota root", x->tag);
		return;
	}
	struct store_quota q;
	if (get_quota(x, &q) < 0)
		return;
	struct buf b = BUF_INIT;
	quota_line(&q, &b);
	imap_send(x->s, b.data, b.len);
	buf_free(&b);
	imap_reply(x->s, "%s OK Getquota completed", x->tag);
}

void imap_cmd_setquota(struct imap_cmdctx *x)
{
	/* setquota = "SETQUOTA" SP quota-root-name SP "(" [name SP limit ...] ")" */
	bool ok = x->n >= 3 && is_astring(&x->a[0]) && x->a[1].type == IMAP_TOK_LPAREN &&
		  x->a[x->n - 1].type == IMAP_TOK_RPAREN && (x->n - 3) % 2 == 0;
	for (size_t i = 2; ok && i + 1 < x->n; i += 2)
		ok = x->a[i].type == IMAP_TOK_ATOM && x->a[i + 1].type == IMAP_TOK_ATOM;
	if (!ok) {
		imap_bad(x, "SETQUOTA needs a quota root name and a list of resource limits");
		return;
	}
	/* RFC 9208 4.1.3, RFC 5530 NOPERM: limits are set by the admin. */
	imap_reply(x->s, "%s NO [NOPERM] Quota limits are set by the administrator", x->tag);
}
