/*
 * jmap-email-parts.h - a message as JMAP shows it (RFC 8621 4.1.2-4.1.4):
 * the header forms (Raw, Text, Addresses, GroupedAddresses, MessageIds,
 * Date, URLs), the convenience header properties, the body structure
 * with textBody / htmlBody / attachments as the algorithm of 4.1.4
 * splits it, bodyValues (charset decoding, truncation) and preview.
 *
 * Pure: bytes in, JSON out; no store, no HTTP.  Used by Email/get and
 * Email/parse (jmap-email-get.c), fuzzed by fuzz/fuzz-jmap-email.c.
 * Bounded by the MIME parser's limits (src/mail/mime.h: parts, depth)
 * and JMAP_EMAIL_MAX_FIELDS header fields per part.
 *
 * Part ids are the IMAP section numbers ("1", "2.1": RFC 9051 6.4.5),
 * multiparts have none; a part's blob id is the message's blob id, "_"
 * and the section numbers joined by "_" ("Fxxx_2_1"), so it can be found
 * again from the id alone (jmap_email_parts_blob).
 */
#ifndef TERN_JMAP_EMAIL_PARTS_H
#define TERN_JMAP_EMAIL_PARTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "preview.h"

struct buf;

/* Header fields looked at per part (more are left out of every view). */
#define JMAP_EMAIL_MAX_FIELDS 100000
/* Octets of a preview (RFC 8621: at most 256 characters). */
#define JMAP_EMAIL_PREVIEW_CHARS PREVIEW_MAX_CHARS

struct jmap_email_opts {
	json_t *props;      /* Email property names (checked with jmap_email_prop_ok) */
	json_t *body_props; /* EmailBodyPart property names; NULL: the default */
	bool fetch_text, fetch_html, fetch_all;
	size_t max_body_value_bytes; /* 0: no truncation */
	const char *blob_id;         /* the message's blob id (part ids hang on it) */
};

/* Is name an Email property this module computes (body_part false) or an
 * EmailBodyPart property (true)?  Header properties ("header:Name[:asForm]
 * [:all]") are checked for their syntax and for the forms RFC 8621 4.1.2
 * allows on the field.  false with a reason in why. */
bool jmap_email_prop_ok(const char *name, bool body_part, char *why, size_t whysz);

/* Sets in obj each property of o->props this module computes (the
 * metadata ones, id, mailboxIds..., are the caller's; size is set to len)
 * for the message msg[0..len). */
void jmap_email_parts_fill(const char *msg, size_t len, const struct jmap_email_opts *o,
			   json_t *obj);

/* hasAttachment (RFC 8621 4.1.4) of the message msg[0..len): an item of
 * "attachments" whose Content-Disposition is not inline. */
bool jmap_email_has_attachment(const char *msg, size_t len);

/* The part blob id suffix s (after the message's blob id: "_2_1") as a
 * section path into path[0..*n) (at most max numbers): true, or false
 * when it is not such a suffix. */
bool jmap_email_parts_path(const char *s, unsigned *path, size_t max, size_t *n);

/* Appends the content of the part at path[0..n) of msg[0..len) (transfer
 * encoding removed: what the part's blobId names) to out: 1, 0 no such
 * part (or a multipart: no blob), -1 full buffer.  The numbers walk
 * multiparts; past a message/rfc822 (or message/global) part they go on
 * in the attached message taken as a message of its own, as Email/parse
 * of that part's blob numbers its parts. */
int jmap_email_parts_blob(const char *msg, size_t len, const unsigned *path, size_t n,
			  struct buf *out);

#endif
