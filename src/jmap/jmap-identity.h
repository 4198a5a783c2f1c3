/*
 * jmap-identity.h - Identity/get, Identity/changes and Identity/set (RFC
 * 8621 6) of urn:ietf:params:jmap:submission, in jmap-mail.c's method
 * table (env->methods_ctx a struct jmap_mail_ctx with store and cfg).
 */
#ifndef TERN_JMAP_IDENTITY_H
#define TERN_JMAP_IDENTITY_H

#include "jmap-api.h"

json_t *jmap_identity_get(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_identity_changes(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_identity_set(const struct jmap_api_env *env, json_t *args, json_t **error);

#endif
