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

/* Returns a static sentence for: code (the 3-digit SMTP reply code, or 0
 * when the failure was ours: DNS, connection, timeout), status (enhanced
 * status "X.Y.Z" or "" / NULL) and text (reply text or our reason, may be
 * NULL).  Never NULL. */
const char *queue_explain(int code, const char *status, const char *text);

/* Same, from a stored reply line ("550 5.1.1 text" from a remote, or our
 * own reason without a code) and its stored status. */
const char *queue_explain_reply(const char *reply, const char *status);

#endif
