/*
 * jmap-vacation.h - VacationResponse/get and /set (RFC 8621 8), methods
 * of the capability JMAP_CAP_VACATION with env->methods_ctx a struct
 * jmap_mail_ctx (see jmap-vacation.c).
 */
#ifndef TERN_JMAP_VACATION_H
#define TERN_JMAP_VACATION_H

#include <jansson.h>

#include "jmap-api.h"

json_t *jmap_vacation_get(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_vacation_set(const struct jmap_api_env *env, json_t *args, json_t **error);

#endif
