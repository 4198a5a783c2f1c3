/*
 * queue-explain.h - what a delivery failure means, in plain words.
 *
 * The one place that turns a reply code, an enhanced status code and the
 * reply text (the remote's, or our own reason for failures such as "no MX"
 * or "connection refused") into a sentence a user understands.  Bounces,
 * delay notices and `tern trace` all use it.
 */
#ifndef TERN_QUEUE_EXPLAIN_H
#define TERN_QUEUE_EXPLAIN_H

#include <stddef.h>

/* Room for the longest sentence written into a caller's buffer. */
#define QUEUE_EXPLAIN_MAX 800

/* Returns the sentence for: code (the 3-digit SMTP reply code, or 0 when
 * the failure was ours: DNS, connection, timeout), status (enhanced status
 * "X.Y.Z" or "" / NULL) and text (reply text or our reason, may be NULL).
 * Most sentences are static; one that names something from the text (the
 * DNS resolver that said a domain does not exist) is written into buf
 * (bufsz bytes, QUEUE_EXPLAIN_MAX is enough) and buf is returned.  Never
 * NULL; valid as long as buf is. */
const char *queue_explain(int code, const char *status, const char *text, char *buf, size_t bufsz);

/* Same, from a stored reply line ("550 5.1.1 text" from a remote, or our
 * own reason without a code) and its stored status. */
const char *queue_explain_reply(const char *reply, const char *status, char *buf, size_t bufsz);

#endif
