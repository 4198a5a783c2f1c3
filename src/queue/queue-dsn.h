/*
 * queue-dsn.h - delivery status notifications (RFC 3464): the bounce and
 * the delay notice a sender gets, as a multipart/report message.
 *
 *   1. text/plain: what happened, per recipient, with the remote's reply
 *      and a plain-language explanation (queue-explain.h);
 *   2. message/delivery-status: Reporting-MTA, Arrival-Date, and per
 *      recipient Final-Recipient, Action, Status, Remote-MTA,
 *      Diagnostic-Code, Last-Attempt-Date (Will-Retry-Until for delays);
 *   3. text/rfc822-headers: the header of the original, or with RET=FULL
 *      (failures only) message/rfc822: the whole original.
 *
 * The DSN extension (RFC 3461) shapes it: ENVID comes back as
 * Original-Envelope-Id, each recipient's ORCPT as Original-Recipient; a
 * success report (NOTIFY=SUCCESS) says "delivered" (our own mailbox) or
 * "relayed" (handed to a server that does not speak DSN).  Which
 * recipients get a DSN at all is the queue runner's business.
 *
 * From: MAILER-DAEMON@hostname; the envelope sender is always <>, so a
 * DSN is never answered by another DSN (no loops).  queue_dsn_build is
 * pure (time and ids are given), for the unit tests.
 */
#ifndef TERN_QUEUE_DSN_H
#define TERN_QUEUE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"

struct queue_dsn_rcpt {
	const char *addr;    /* final recipient */
	const char *status;  /* enhanced status "5.1.1" */
	const char *reply;   /* "550 5.1.1 ..." from the remote, or our reason */
	const char *remote;  /* "mx.example.net [192.0.2.1]" or "" */
	time_t last_attempt; /* 0: none */
	const char *orcpt;   /* ORCPT as received ("rfc822;a+2Bb@x"), NULL: none */
	const char *action;  /* success reports: "delivered" or "relayed";
			      * NULL: "delivered" (failed/delayed come from
			      * the notice's kind) */
};

struct queue_dsn {
	bool delay;             /* a delay notice, not a failure */
	const char *hostname;   /* Reporting-MTA and MAILER-DAEMON@ */
	const char *sender;     /* the original envelope sender (To:) */
	const char *boundary;   /* unique MIME boundary */
	const char *message_id; /* Message-ID of the DSN, without <> */
	time_t now;
	time_t arrival;     /* when the original was queued */
	time_t retry_until; /* delay notices: when we give up */
	const struct queue_dsn_rcpt *rcpts;
	size_t n_rcpts;
	const char *orig_header; /* header section of the original, CRLF lines */
	size_t orig_header_len;
	bool success;      /* a success report (not with delay) */
	const char *envid; /* ENVID as received (xtext), NULL: none */
	/* RET=FULL: the whole original (CRLF lines) for a failure notice;
	 * NULL: the header only. */
	const char *orig_full;
	size_t orig_full_len;
};

/* Appends the whole DSN message (CRLF lines, header and body) to out.
 * Returns 0, or -1 if out's maximum was reached. */
int queue_dsn_build(struct buf *out, const struct queue_dsn *d);

/* The DSN parameters to relay a message onwards to a server that
 * advertised DSN (RFC 3461 5.2.1), for the SMTP client.  ret (1 FULL, 2
 * HDRS, 0 none: STORE_DSN_RET_*) and envid (xtext as received, NULL or ""
 * none) give " RET=FULL ENVID=..." to append to MAIL FROM; notify (bits
 * of STORE_DSN_NOTIFY_*, 0 none) and orcpt give " NOTIFY=...
 * ORCPT=..." for RCPT TO.  Appends "" when there is nothing.  0, or -1
 * if out's maximum was reached. */
int queue_dsn_mail_params(struct buf *out, int ret, const char *envid);
int queue_dsn_rcpt_params(struct buf *out, unsigned notify, const char *orcpt);

/* RFC 5322 date of t in local time ("Mon, 02 Jan 2006 15:04:05 +0000"). */
void queue_dsn_date(time_t t, char *out, size_t outsz);

#endif
