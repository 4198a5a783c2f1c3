/*
 * jmap-mail.h - the methods of JMAP Mail (RFC 8621) served so far:
 * Mailbox/get, Mailbox/changes, Mailbox/query, Mailbox/queryChanges,
 * Thread/get, Thread/changes, Email/changes (docs/jmap.md "Mail").  Run by jmap-api.c through its method table
 * (struct jmap_method) with env->methods_ctx a struct jmap_mail_ctx.
 *
 * The capability is accepted in "using" but not advertised in the Session
 * object until the Email and Thread methods are there too.
 */
#ifndef TERN_JMAP_MAIL_H
#define TERN_JMAP_MAIL_H

#include <stddef.h>

#include "jmap-api.h"

struct store_account;
struct store;
struct config;

struct jmap_mail_ctx {
	struct store_account *account; /* the user's one account */
	/* for Identity (jmap-identity.c): who may send as what */
	struct store *store;
	const struct config *cfg;
};

extern const struct jmap_method jmap_mail_methods[];
extern const size_t jmap_mail_n_methods;

#endif
