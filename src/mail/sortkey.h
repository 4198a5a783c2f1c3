/*
 * sortkey.h - the keys IMAP SORT and THREAD (RFC 5256) order messages by,
 * computed from header values: the base subject (RFC 5256 2.1), the sent
 * date (2.2), normalised Message IDs (3, REFERENCES) and the simple case
 * folding SEARCH, SORT and THREAD compare strings with.
 *
 * Mail layer.  Pure functions of their input (bytes with a length, never
 * assumed NUL-terminated), bounded: a subject is looked at up to
 * SORTKEY_SUBJECT_MAX octets, a Message ID up to SORTKEY_MSGID_MAX.
 * Builders append to a caller's struct buf and return 0, or -1 when the
 * buffer's hard maximum is reached.
 */
#ifndef TERN_SORTKEY_H
#define TERN_SORTKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf; /* src/lib/buf.h */

#define SORTKEY_SUBJECT_MAX 4096 /* octets of a subject looked at */
#define SORTKEY_MSGID_MAX 998    /* longer Message IDs are not valid */

/* Appends p[0..n) with simple case folding (a subset of Unicode's: ASCII,
 * Latin-1, Latin Extended-A, Greek and Cyrillic capitals to small
 * letters; i;unicode-casemap of RFC 5051 without its decomposition step).
 * Bytes that are not valid UTF-8 are copied as they are.  0 / -1. */
int sortkey_fold(const char *p, size_t n, struct buf *out);

/* The base subject (RFC 5256 2.1 steps 1-7) of the subject s[0..n), which
 * must already be RFC 2047-decoded to UTF-8 (mime_decode_2047; that is
 * step 1's first half): tabs, CR and LF become spaces and runs of spaces
 * one space, then the subj-trailer / subj-leader / subj-blob / subj-fwd
 * rules of RFC 5256 section 5 are applied exactly.  Appends the result,
 * not case-folded, to out.  *reply (may be NULL) is set true when a
 * subj-refwd, a "(fwd)" trailer or a "[fwd: ...]" wrapper was removed (a
 * reply or forward for THREAD=REFERENCES), else false.  0 / -1. */
int sortkey_base_subject(const char *s, size_t n, struct buf *out, bool *reply);

/* The sent date (RFC 5256 2.2) of an RFC 5322 date-time s[0..n) (the
 * Date: field's value; obsolete forms of RFC 5322 4.3 accepted: two- and
 * three-digit years, zone names, comments), as seconds since the epoch in
 * UTC into *t.  An invalid or missing zone counts as UTC, an invalid or
 * missing time as 00:00:00.  0, or -1 when there is no valid date (the
 * caller then uses the internal date). */
int sortkey_sent_date(const char *s, size_t n, int64_t *t);

/* Finds the next valid msg-id "<id-left@id-right>" in s[*pos..n) and
 * appends it to out normalised (RFC 5256 3: quoting, escapes, comments and
 * white space removed, so <"a"@b> and <a@b> are the same), without the
 * angle brackets; *pos moves past it.  A "<...>" that is not a valid
 * msg-id (no '@', an empty side, longer than SORTKEY_MSGID_MAX) is skipped.
 * 1 when one was found, 0 when there is none left, -1 on a full buffer. */
int sortkey_msgid_next(const char *s, size_t n, size_t *pos, struct buf *out);

#endif
