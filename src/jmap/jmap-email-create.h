/*
 * jmap-email-create.h - the message of an Email/set create (RFC 8621
 * 4.6): RFC 5322 bytes from the JMAP properties (header properties and
 * header:NAME:FORM, bodyStructure or textBody/htmlBody/attachments with
 * bodyValues, blobs), with CRLF lines, RFC 2047 words for non-ASCII
 * header text, quoted-printable or base64 bodies, boundaries, and Date
 * and Message-ID when the client gave none.  No store: blobs come from a
 * callback, so the fuzz target (fuzz/fuzz-jmap-email-create.c) runs it
 * alone.
 */
#ifndef TERN_JMAP_EMAIL_CREATE_H
#define TERN_JMAP_EMAIL_CREATE_H

#include <jansson.h>
#include <time.h>

struct buf;

/* The largest total of body values and blobs one create may use
 * (tooLarge beyond). */
#define JMAP_EMAIL_CREATE_MAX (25u * 1024 * 1024)

/* Reads blob id into out: 1, 0 no such blob, -1 error. */
typedef int (*jmap_email_blob_fn)(void *ctx, const char *id, struct buf *out);

/* Builds the message of the create object o into out (mailboxIds,
 * keywords and receivedAt are the caller's and skipped).  now is for the
 * Date field.  NULL, or the SetError (invalidProperties, blobNotFound
 * with notFound, tooLarge, serverFail). */
json_t *jmap_email_build(json_t *o, jmap_email_blob_fn blob, void *ctx, time_t now,
			 struct buf *out);

#endif
