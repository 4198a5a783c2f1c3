/*
 * jmap-email-get.h - Email/get (RFC 8621 4.2), Email/parse (4.9) and the
 * blobs of Emails (RFC 8620 6.2): an Email's blobId is "F" and its message
 * file id (the message's exact bytes); a part's blobId is the blobId of
 * the message it is in, "_" and its section numbers joined by "_"
 * ("F<file id>_2_1", "G<sha256>_1" for a part of an uploaded message),
 * and names the part's content with its transfer encoding removed
 * (jmap-email-parts.h).  docs/jmap.md "Email/get".
 */
#ifndef TERN_JMAP_EMAIL_GET_H
#define TERN_JMAP_EMAIL_GET_H

#include <stdbool.h>
#include <stddef.h>

#include "jmap-api.h"

struct buf;
struct store_account;

/* Largest blob read into memory (a message or an uploaded blob). */
#define JMAP_EMAIL_BLOB_MAX ((size_t)1 << 30)

/* The bytes of blob id of the account a: an uploaded blob ("G..."), an
 * Email's message ("F<file id>", while a copy of it exists), or a part of
 * either; appended to out.  1 found, 0 no such blob, -1 error with err. */
int jmap_email_blob_read(struct store_account *a, const char *id, struct buf *out, char *err,
			 size_t errsz);

/* True when id has the form of an Email or part blob id (not an upload's
 * id): the download route then reads it with jmap_email_blob_read. */
bool jmap_email_blob_id_ours(const char *id);

/* The methods, for jmap-mail.c's table (env->methods_ctx a struct
 * jmap_mail_ctx). */
json_t *jmap_email_get(const struct jmap_api_env *env, json_t *args, json_t **error);
json_t *jmap_email_parse(const struct jmap_api_env *env, json_t *args, json_t **error);

#endif
