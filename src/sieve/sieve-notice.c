/*
 * sieve-notice.c - the notice a Sieve reject sends when the message could
 * not be refused at SMTP time (RFC 5429 2.1.2 and 2.2.1): for ereject a
 * non-delivery report (RFC 3464, Action: failed), for reject a failure
 * MDN (RFC 8098, Disposition: automatic-action/MDN-sent-automatically;
 * deleted).  Pure: the caller sends it (src/smtp/smtp-sieve.c).
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "header.h"
#include "sieve.h"

/* A notice carries at most this much of the original header section. */
#define NOTICE_HEADERS_MAX 65536

static bool ascii_only(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* Appends text with CRLF line ends, a line longer than 998 bytes broken,
 * a "." alone on a line kept (the queue does the SMTP dot-stuffing). */
static int put_text(struct buf *out, const char *s)
{
	int e = 0;
	size_t col = 0;
	for (const char *p = s; *p && e == 0; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n' || col >= 998) {
			e |= buf_puts(out, "\r\n");
			col = 0;
			if (*p == '\n')
				continue;
		}
		e |= buf_putc(out, *p);
		col++;
	}
	if (col > 0)
		e |= buf_puts(out, "\r\n");
	return e;
}

/* Appends an address or id for a field, without control characters. */
static int put_field_value(struct buf *out, const char *s, size_t max)
{
	int e = 0;
	for (size_t i = 0; s[i] && i < max && e == 0; i++) {
		unsigned char c = (unsigned char)s[i];
		e |= buf_putc(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
	return e;
}

/* The original's Message-ID, when it is one plain <...> token. */
static void original_id(const char *msg, size_t len, char *out, size_t outsz)
{
	out[0] = '\0';
	struct header h;
	if (header_parse(msg, len, &h) != HEADER_OK)
		return;
	const struct header_field *f = header_find(&h, "Message-ID");
	if (f != NULL) {
		char v[512];
		header_unfold(f->value, f->value_len, v, sizeof v);
		size_t vl = strlen(v);
		if (vl > 2 && vl < outsz && v[0] == '<' && strchr(v, '>') == v + vl - 1 &&
		    strpbrk(v, " \t") == NULL)
			snprintf(out, outsz, "%s", v);
	}
	header_free(&h);
}

int sieve_notice_build(const struct sieve_notice *n, struct buf *out)
{
	bool utf8 = !ascii_only(n->reason);
	char orig[512];
	original_id(n->msg, n->len, orig, sizeof orig);
	int e = buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\nTo: <",
			   n->hostname);
	e |= put_field_value(out, n->env_from, 320);
	e |= buf_printf(out, ">\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <",
			n->dsn ? "Undelivered Mail: refused by the recipient's filter"
			       : "Rejected: refused by the recipient's filter",
			n->date);
	e |= put_field_value(out, n->msgid, 400);
	e |= buf_puts(out, ">\r\n");
	if (orig[0] != '\0')
		e |= buf_printf(out, "In-Reply-To: %s\r\nReferences: %s\r\n", orig, orig);
	e |= buf_puts(out, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
	e |= buf_printf(out,
			"Content-Type: multipart/report; report-type=%s;\r\n\tboundary=\"%s\"\r\n\r\n",
			n->dsn ? "delivery-status" : "disposition-notification", n->boundary);
	/* 1: in words, with the reason as the script gave it (2.1.2, 2.2.1) */
	e |= buf_printf(out, "--%s\r\nContent-Type: text/plain; charset=%s\r\n"
			     "Content-Transfer-Encoding: %s\r\n\r\n",
			n->boundary, utf8 ? "utf-8" : "us-ascii", utf8 ? "8bit" : "7bit");
	e |= buf_puts(out, "Your message to <");
	e |= put_field_value(out, n->env_to, 320);
	e |= buf_puts(out, "> was refused by the recipient's mail filtering program.\r\n"
			   "The reason given was as follows:\r\n\r\n");
	e |= put_text(out, n->reason);
	e |= buf_puts(out, "\r\n");
	/* 2: for programs */
	if (n->dsn) {
		e |= buf_printf(out,
				"--%s\r\nContent-Type: message/delivery-status\r\n\r\n"
				"Reporting-MTA: dns; %s\r\nArrival-Date: %s\r\n\r\n"
				"Final-Recipient: rfc822; ",
				n->boundary, n->hostname, n->arrival);
		e |= put_field_value(out, n->env_to, 320);
		e |= buf_puts(out, "\r\nAction: failed\r\nStatus: 5.7.1\r\n"
				   "Diagnostic-Code: smtp; 550 5.7.1 refused by the recipient's "
				   "Sieve filter\r\n\r\n");
	} else {
		e |= buf_printf(out,
				"--%s\r\nContent-Type: message/disposition-notification\r\n\r\n"
				"Reporting-UA: %s; Tern\r\nFinal-Recipient: rfc822; ",
				n->boundary, n->hostname);
		e |= put_field_value(out, n->env_to, 320);
		e |= buf_puts(out, "\r\n");
		if (orig[0] != '\0')
			e |= buf_printf(out, "Original-Message-ID: %s\r\n", orig);
		e |= buf_puts(out, "Disposition: automatic-action/MDN-sent-automatically; "
				   "deleted\r\n\r\n");
	}
	/* 3: the original's header section */
	e |= buf_printf(out, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", n->boundary);
	e |= header_section_copy(n->msg, n->len, NOTICE_HEADERS_MAX, false, out);
	e |= buf_printf(out, "\r\n--%s--\r\n", n->boundary);
	return e ? -1 : 0;
}
