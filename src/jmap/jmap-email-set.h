/*
 * jmap-email-set.h - the JMAP Mail methods that change things:
 * Mailbox/set (RFC 8621 2.5, jmap-mailbox-set.c), Email/set (4.6),
 * Email/copy (4.7) and Email/import (4.8) (jmap-email-set.c).  They use
 * the store's IMAP operations, so IMAP sessions see each change at once
 * (docs/jmap.md "Changing mail").  Registered in jmap-mail.c's table.
 */
#ifndef TERN_JMAP_EMAIL_SET_H
#define TERN_JMAP_EMAIL_SET_H

#include "jmap-api.h"

json_t *jmap_mailbox_set(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_email_set(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_email_copy(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_email_import(const struct jmap_api_env *env, json_t *args, json_t **error);

#endif
