/*
 * jmap-submission.h - EmailSubmission/get, /changes, /query,
 * /queryChanges and /set (RFC 8621 7) of urn:ietf:params:jmap:submission,
 * in jmap-mail.c's method table (env->methods_ctx a struct
 * jmap_mail_ctx).  Sending goes through smtp_commit_batch, the commit SMTP
 * submission uses (docs/jmap.md "Submission").
 */
#ifndef TERN_JMAP_SUBMISSION_H
#define TERN_JMAP_SUBMISSION_H

#include "jmap-api.h"

json_t *jmap_submission_get(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_submission_changes(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_submission_query(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_submission_query_changes(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_submission_set(const struct jmap_api_env *env, json_t *args, json_t **error);

#endif
