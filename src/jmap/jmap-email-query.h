/*
 * jmap-email-query.h - Email/query, Email/queryChanges (RFC 8621 4.4,
 * 4.5) and SearchSnippet/get (RFC 8621 5.1), methods of the
 * jmap_mail_methods table (jmap-mail.c); env->methods_ctx is a struct
 * jmap_mail_ctx.
 */
#ifndef TERN_JMAP_EMAIL_QUERY_H
#define TERN_JMAP_EMAIL_QUERY_H

#include <jansson.h>

#include "jmap-api.h"

json_t *jmap_email_query(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_email_query_changes(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_search_snippet_get(const struct jmap_api_env *env, json_t *args, json_t **error);

#endif
