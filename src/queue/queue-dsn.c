/*
 * queue-dsn.c - building bounces and delay notices (see queue-dsn.h).
 * Layer src/queue, pure: text in, bytes out.
 *
 * Everything we write is 7-bit ASCII with lines far below 998 octets:
 * text from outside (the remote's reply, addresses) passes through
 * put_safe(), which replaces control and non-ASCII bytes, and reply lines
 * are folded in the text part.  The original's header is copied as is
 * (text/rfc822-headers may carry 8-bit; our receiver already checked its
 * line lengths).
 */
#include "queue-dsn.h"

#include <stdio.h>
#include <string.h>

#include "queue-explain.h"

void queue_dsn_date(time_t t, char *out, size_t outsz)
{
	struct tm tm;
	localtime_r(&t, &tm);
	if (strftime(out, outsz, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 && outsz > 0)
		out[0] = '\0';
}

/* Appends s with control and non-ASCII bytes as '?', at most max bytes. */
static int put_safe(struct buf *b, const char *s, size_t max)
{
	int r = 0;
	for (size_t i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		r |= buf_putc(b, (c < 0x20 || c >= 0x7f) ? '?' : (char)c);
	}
	return r;
}

/* Appends text wrapped at about 72 columns, each line prefixed. */
static int put_wrapped(struct buf *b, const char *prefix, const char *text)
{
	int r = 0;
	size_t col = 0;
	const char *p = text;
	r |= buf_puts(b, prefix);
	col = strlen(prefix);
	while (*p) {
		while (*p == ' ')
			p++;
		size_t w = strcspn(p, " ");
		if (w == 0)
			break;
		if (col > strlen(prefix) && col + 1 + w > 72) {
			r |= buf_puts(b, "\r\n");
			r |= buf_puts(b, prefix);
			col = strlen(prefix);
		} else if (col > strlen(prefix)) {
			r |= buf_putc(b, ' ');
			col++;
		}
		size_t take = w > 900 ? 900 : w;
		char word[901];
		memcpy(word, p, take);
		word[take] = '\0';
		r |= put_safe(b, word, take);
		col += take;
		p += w;
	}
	r |= buf_puts(b, "\r\n");
	return r;
}

static bool is_smtp_reply(const char *reply)
{
	return reply[0] >= '2' && reply[0] <= '5' && reply[1] >= '0' && reply[1] <= '9' &&
	       reply[2] >= '0' && reply[2] <= '9' && (reply[3] == ' ' || reply[3] == '\0');
}

/* Appends xtext (RFC 3461 4) decoded, at most max bytes of it; anything
 * that is not printable ASCII once decoded becomes '?'.  The SMTP parser
 * has validated what we queued; this only has to be safe. */
static int put_xtext(struct buf *b, const char *x, size_t max)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;
	for (size_t i = 0; x[i] && i < max; i++) {
		unsigned char c = (unsigned char)x[i];
		if (c == '+' && x[i + 1] && x[i + 2]) {
			const char *h = strchr(hex, x[i + 1]), *l = strchr(hex, x[i + 2]);
			if (h && l && *h && *l) {
				c = (unsigned char)((h - hex) * 16 + (l - hex));
				i += 2;
			}
		}
		r |= buf_putc(b, (c < 0x20 || c >= 0x7f) ? '?' : (char)c);
	}
	return r;
}

/* "mx.example.net [192.0.2.1]" -> "mx.example.net". */
static void remote_host(const char *remote, char *out, size_t outsz)
{
	size_t n = strcspn(remote, " [");
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, remote, n);
	out[n] = '\0';
}

int queue_dsn_build(struct buf *b, const struct queue_dsn *d)
{
	char date[64], arrival[64], until[64];
	queue_dsn_date(d->now, date, sizeof date);
	queue_dsn_date(d->arrival, arrival, sizeof arrival);
	queue_dsn_date(d->retry_until, until, sizeof until);
	int r = 0;

	/* Header. */
	r |= buf_printf(b, "Date: %s\r\n", date);
	r |= buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", d->hostname);
	r |= buf_puts(b, "To: <");
	r |= put_safe(b, d->sender, 256);
	r |= buf_puts(b, ">\r\n");
	r |= buf_printf(b, "Subject: %s\r\n",
			d->delay     ? "Delayed Mail (still being retried)"
			: d->success ? "Successful Mail Delivery Report"
				     : "Undelivered Mail Returned to Sender");
	r |= buf_printf(b, "Message-ID: <%s>\r\n", d->message_id);
	r |= buf_puts(b, "Auto-Submitted: auto-replied\r\n");
	r |= buf_puts(b, "MIME-Version: 1.0\r\n");
	r |= buf_printf(b,
			"Content-Type: multipart/report; report-type=delivery-status;\r\n"
			"\tboundary=\"%s\"\r\n",
			d->boundary);
	r |= buf_puts(b, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	/* 1. Human-readable part. */
	r |= buf_printf(b, "--%s\r\n", d->boundary);
	r |= buf_puts(b, "Content-Description: Notification\r\n"
			 "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	r |= buf_printf(b, "This is the mail system at %s.\r\n\r\n", d->hostname);
	if (d->delay) {
		r |= buf_puts(b, "Your message has not been delivered yet to the recipients\r\n"
				 "below. The mail system keeps trying until:\r\n\r\n");
		r |= buf_printf(b, "    %s\r\n\r\n", until);
		r |= buf_puts(b, "You do not need to send the message again. If it cannot\r\n"
				 "be delivered by then, you will get another notice.\r\n\r\n");
	} else if (d->success) {
		r |= buf_puts(b, "Your message was delivered to the recipients below, as you\r\n"
				 "asked (a delivery report).\r\n\r\n");
	} else {
		r |= buf_puts(
		    b, "Your message could not be delivered to the recipients below.\r\n"
		       "This is a permanent failure: the mail system will not try again.\r\n\r\n");
	}
	for (size_t i = 0; i < d->n_rcpts; i++) {
		const struct queue_dsn_rcpt *q = &d->rcpts[i];
		r |= buf_puts(b, "<");
		r |= put_safe(b, q->addr, 256);
		r |= buf_puts(b, ">\r\n");
		if (d->success) {
			if (q->action && !strcmp(q->action, "relayed")) {
				r |= buf_puts(b, "    Handed over to the mail server ");
				r |= put_safe(b, q->remote ? q->remote : "", 300);
				r |= buf_puts(b, ", which answered:\r\n");
				r |= put_wrapped(b, "        ", q->reply ? q->reply : "");
				r |= buf_puts(b, "    In plain words:\r\n");
				r |= put_wrapped(b, "        ",
						 "The receiving server accepted the message. It "
						 "does not send delivery reports, so this is the "
						 "last news about this recipient.");
			} else if (q->action && !strcmp(q->action, "expanded")) {
				r |= buf_puts(b, "    This address forwards to several addresses; "
						 "the message went on to each\r\n"
						 "    of them. There are no further reports for "
						 "them.\r\n");
			} else {
				r |= buf_puts(b, "    Delivered to the mailbox.\r\n");
			}
			r |= buf_puts(b, "\r\n");
			continue;
		}
		if (q->remote && q->remote[0] && is_smtp_reply(q->reply)) {
			r |= buf_puts(b, "    The mail server ");
			r |= put_safe(b, q->remote, 300);
			r |= buf_puts(b, " answered:\r\n");
			r |= put_wrapped(b, "        ", q->reply);
		} else {
			r |= buf_puts(b, "    What happened:\r\n");
			r |= put_wrapped(b, "        ", q->reply);
		}
		r |= buf_puts(b, "    In plain words:\r\n");
		char why[QUEUE_EXPLAIN_MAX];
		r |= put_wrapped(b, "        ",
				 queue_explain_reply(q->reply, q->status, why, sizeof why));
		r |= buf_puts(b, "\r\n");
	}

	/* 2. Machine-readable part (RFC 3464 2.2 and 2.3). */
	r |= buf_printf(b, "--%s\r\n", d->boundary);
	r |= buf_puts(b, "Content-Description: Delivery report\r\n"
			 "Content-Type: message/delivery-status\r\n\r\n");
	if (d->envid && d->envid[0]) {
		r |= buf_puts(b, "Original-Envelope-Id: ");
		r |= put_xtext(b, d->envid, 100);
		r |= buf_puts(b, "\r\n");
	}
	r |= buf_printf(b, "Reporting-MTA: dns; %s\r\n", d->hostname);
	r |= buf_printf(b, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < d->n_rcpts; i++) {
		const struct queue_dsn_rcpt *q = &d->rcpts[i];
		r |= buf_puts(b, "\r\n");
		if (q->orcpt && q->orcpt[0]) {
			/* addr-type ";" xtext -> "addr-type; decoded" */
			size_t tl = strcspn(q->orcpt, ";");
			r |= buf_puts(b, "Original-Recipient: ");
			r |= put_safe(b, q->orcpt, tl < 64 ? tl : 64);
			r |= buf_puts(b, "; ");
			if (q->orcpt[tl] == ';')
				r |= put_xtext(b, q->orcpt + tl + 1, 500);
			r |= buf_puts(b, "\r\n");
		}
		r |= buf_puts(b, "Final-Recipient: rfc822; ");
		r |= put_safe(b, q->addr, 256);
		const char *action = d->delay      ? "delayed"
				     : !d->success ? "failed"
				     : q->action   ? q->action
						   : "delivered";
		r |= buf_printf(b, "\r\nAction: %s\r\n", action);
		const char *st = q->status && q->status[0] ? q->status
				 : d->delay                ? "4.0.0"
				 : d->success              ? "2.0.0"
							   : "5.0.0";
		r |= buf_puts(b, "Status: ");
		r |= put_safe(b, st, 15);
		r |= buf_puts(b, "\r\n");
		if (q->remote && q->remote[0]) {
			char host[256];
			remote_host(q->remote, host, sizeof host);
			r |= buf_puts(b, "Remote-MTA: dns; ");
			r |= put_safe(b, host, 255);
			r |= buf_puts(b, "\r\n");
		}
		if (is_smtp_reply(q->reply)) {
			r |= buf_puts(b, "Diagnostic-Code: smtp; ");
			r |= put_safe(b, q->reply, 900);
			r |= buf_puts(b, "\r\n");
		} else if (q->reply && q->reply[0] && !d->success) {
			r |= buf_puts(b, "Diagnostic-Code: X-Tern; ");
			r |= put_safe(b, q->reply, 900);
			r |= buf_puts(b, "\r\n");
		}
		if (q->last_attempt) {
			char la[64];
			queue_dsn_date(q->last_attempt, la, sizeof la);
			r |= buf_printf(b, "Last-Attempt-Date: %s\r\n", la);
		}
		if (d->delay)
			r |= buf_printf(b, "Will-Retry-Until: %s\r\n", until);
	}
	r |= buf_puts(b, "\r\n");

	/* 3. The original: whole (RET=FULL, failures only: RFC 3461 6.2)
	 * or its header. */
	r |= buf_printf(b, "--%s\r\n", d->boundary);
	if (d->orig_full != NULL && !d->delay && !d->success) {
		bool eight = false;
		for (size_t i = 0; i < d->orig_full_len && !eight; i++)
			eight = (unsigned char)d->orig_full[i] >= 0x80;
		r |= buf_puts(b, "Content-Description: Undelivered Message\r\n"
				 "Content-Type: message/rfc822\r\n");
		if (eight)
			r |= buf_puts(b, "Content-Transfer-Encoding: 8bit\r\n");
		r |= buf_puts(b, "\r\n");
		r |= buf_append(b, d->orig_full, d->orig_full_len);
		if (d->orig_full_len < 2 || memcmp(d->orig_full + d->orig_full_len - 2, "\r\n", 2))
			r |= buf_puts(b, "\r\n");
		r |= buf_printf(b, "\r\n--%s--\r\n", d->boundary);
		return r < 0 ? -1 : 0;
	}
	r |= buf_printf(b,
			"Content-Description: %s\r\n"
			"Content-Type: text/rfc822-headers\r\n\r\n",
			d->success ? "Delivered Message Headers" : "Undelivered Message Headers");
	if (d->orig_header_len > 0) {
		r |= buf_append(b, d->orig_header, d->orig_header_len);
		if (d->orig_header_len < 2 ||
		    memcmp(d->orig_header + d->orig_header_len - 2, "\r\n", 2))
			r |= buf_puts(b, "\r\n");
	}
	r |= buf_printf(b, "\r\n--%s--\r\n", d->boundary);
	return r < 0 ? -1 : 0;
}

/* Appends xtext of s (RFC 3461 4): '+', '=' and anything outside
 * "!".."~" as "+XX". */
static int put_as_xtext(struct buf *b, const char *s)
{
	int r = 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 33 || c > 126 || c == '+' || c == '=')
			r |= buf_printf(b, "+%02X", c);
		else
			r |= buf_putc(b, (char)c);
	}
	return r;
}

int queue_dsn_mail_params(struct buf *out, int ret, const char *envid)
{
	int r = 0;
	if (ret == 1)
		r |= buf_puts(out, " RET=FULL");
	else if (ret == 2)
		r |= buf_puts(out, " RET=HDRS");
	if (envid && envid[0]) {
		/* Exactly as received (RFC 3461 5.2.1 a); it was valid xtext,
		 * and anything else is re-encoded rather than sent raw. */
		r |= buf_puts(out, " ENVID=");
		bool ok = true;
		for (const char *p = envid; *p; p++)
			if ((unsigned char)*p < 33 || (unsigned char)*p > 126 || *p == '=')
				ok = false;
		r |= ok ? buf_puts(out, envid) : put_as_xtext(out, envid);
	}
	return r < 0 ? -1 : 0;
}

int queue_dsn_rcpt_params(struct buf *out, unsigned notify, const char *orcpt)
{
	int r = 0;
	if (notify & 1) {
		r |= buf_puts(out, " NOTIFY=NEVER");
	} else if (notify != 0) {
		static const char *const names[] = {"SUCCESS", "FAILURE", "DELAY"};
		const char *sep = " NOTIFY=";
		for (unsigned k = 0; k < 3; k++)
			if (notify & (2u << k)) {
				r |= buf_puts(out, sep);
				r |= buf_puts(out, names[k]);
				sep = ",";
			}
	}
	if (orcpt && orcpt[0]) {
		bool ok = strchr(orcpt, ';') != NULL;
		for (const char *p = orcpt; *p; p++)
			if ((unsigned char)*p < 33 || (unsigned char)*p > 126 || *p == '=')
				ok = false;
		if (ok) {
			r |= buf_puts(out, " ORCPT=");
			r |= buf_puts(out, orcpt);
		}
	}
	return r < 0 ? -1 : 0;
}
