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
			d->delay ? "Delayed Mail (still being retried)"
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
		r |= put_wrapped(b, "        ", queue_explain_reply(q->reply, q->status));
		r |= buf_puts(b, "\r\n");
	}

	/* 2. Machine-readable part (RFC 3464 2.2 and 2.3). */
	r |= buf_printf(b, "--%s\r\n", d->boundary);
	r |= buf_puts(b, "Content-Description: Delivery report\r\n"
			 "Content-Type: message/delivery-status\r\n\r\n");
	r |= buf_printf(b, "Reporting-MTA: dns; %s\r\n", d->hostname);
	r |= buf_printf(b, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < d->n_rcpts; i++) {
		const struct queue_dsn_rcpt *q = &d->rcpts[i];
		r |= buf_puts(b, "\r\nFinal-Recipient: rfc822; ");
		r |= put_safe(b, q->addr, 256);
		r |= buf_printf(b, "\r\nAction: %s\r\n", d->delay ? "delayed" : "failed");
		const char *st =
		    q->status && q->status[0] ? q->status : (d->delay ? "4.0.0" : "5.0.0");
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
		} else if (q->reply && q->reply[0]) {
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

	/* 3. The original's header. */
	r |= buf_printf(b, "--%s\r\n", d->boundary);
	r |= buf_puts(b, "Content-Description: Undelivered Message Headers\r\n"
			 "Content-Type: text/rfc822-headers\r\n\r\n");
	if (d->orig_header_len > 0) {
		r |= buf_append(b, d->orig_header, d->orig_header_len);
		if (d->orig_header_len < 2 ||
		    memcmp(d->orig_header + d->orig_header_len - 2, "\r\n", 2))
			r |= buf_puts(b, "\r\n");
	}
	r |= buf_printf(b, "\r\n--%s--\r\n", d->boundary);
	return r < 0 ? -1 : 0;
}
