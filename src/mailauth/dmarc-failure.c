/*
 * dmarc-failure.c - the DMARC failure report (RFC 7489 7.3.1 on RFC 6591
 * and RFC 5965): which fo= options ask for one, and the report message.
 */
#include <stdio.h>
#include <string.h>

#include "dmarc-failure.h"

#define LINE_MAX_OUT 78 /* where folded fields are cut (RFC 5322 2.1.1) */

bool dmarc_failure_wanted(unsigned fo, const struct dmarc_verdict *v)
{
	if (v->result != DMARC_RESULT_FAIL && v->result != DMARC_RESULT_PASS)
		return false; /* none, temperror: nothing to report */
	if ((fo & DMARC_FO_1) && (!v->dkim_aligned || !v->spf_aligned))
		return true;
	return (fo & DMARC_FO_0) && v->result == DMARC_RESULT_FAIL;
}

/* Appends "Name: value" folded at spaces so that no line is longer than
 * LINE_MAX_OUT where a space allows, with every byte that is not
 * printable US-ASCII written as '?'. */
static int field(struct buf *out, const char *name, const char *value)
{
	int e = buf_printf(out, "%s:", name);
	size_t col = strlen(name) + 1;
	const char *p = value;
	while (*p != '\0' && e == 0) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n == 0)
			break;
		if (col + 1 + n > LINE_MAX_OUT && col > strlen(name) + 1) {
			e |= buf_puts(out, "\r\n");
			col = 0;
		}
		e |= buf_putc(out, ' ');
		col++;
		for (size_t i = 0; i < n && e == 0; i++) {
			unsigned char ch = (unsigned char)p[i];
			e |= buf_putc(out, ch > 0x20 && ch < 0x7f ? (char)ch : '?');
			/* a word longer than a line is cut into lines of its own;
			 * the break is a fold, which a reader unfolds to a space */
			if (++col >= 998 && i + 1 < n) {
				e |= buf_puts(out, "\r\n ");
				col = 1;
			}
		}
		p += n;
	}
	e |= buf_puts(out, "\r\n");
	return e;
}

/* A domain or address fit to stand in a field as it is. */
static bool plain(const char *s)
{
	if (*s == '\0' || strlen(s) > 320)
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("()<>;\"\\", *p))
			return false;
	return true;
}

/* The original header section: CRLF line ends, bytes that are not
 * printable US-ASCII (or HT) as '?', lines over 998 octets folded, at
 * most DMARC_FAILURE_HEADERS_MAX bytes cut at a line end. */
static int original_headers(struct buf *out, const char *h, size_t n)
{
	size_t end = 0;
	for (size_t i = 0; i + 1 < n; i++)
		if (h[i] == '\n' && (h[i + 1] == '\n' || (h[i + 1] == '\r' && i + 2 < n && h[i + 2] == '\n'))) {
			end = i + 1;
			break;
		}
	if (end == 0)
		end = n;
	if (end > DMARC_FAILURE_HEADERS_MAX) {
		end = DMARC_FAILURE_HEADERS_MAX;
		while (end > 0 && h[end - 1] != '\n')
			end--;
	}
	int e = 0;
	size_t col = 0;
	for (size_t i = 0; i < end && e == 0; i++) {
		unsigned char ch = (unsigned char)h[i];
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			e |= buf_puts(out, "\r\n");
			col = 0;
			continue;
		}
		if (col >= 998) {
			e |= buf_puts(out, "\r\n ");
			col = 1;
		}
		e |= buf_putc(out, (ch >= 0x20 && ch < 0x7f) || ch == '\t' ? (char)ch : '?');
		col++;
	}
	if (col > 0)
		e |= buf_puts(out, "\r\n");
	return e;
}

int dmarc_failure_message(const struct dmarc_failure_meta *m, time_t now, struct buf *out)
{
	char date[64], arrival[64];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	gmtime_r(&m->arrival, &tm);
	strftime(arrival, sizeof arrival, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	const char *from_domain = plain(m->from_domain) ? m->from_domain : "(unreadable)";
	const char *boundary = "=_tern_dmarc_failure";
	int e = buf_printf(out, "From: DMARC reports <%s>\r\n", m->email);
	e |= buf_printf(out, "Subject: DMARC failure report for %s: mail from %s\r\n", from_domain,
			m->ip);
	e |= buf_printf(out, "Date: %s\r\n", date);
	e |= buf_printf(out, "Message-ID: <%s@%s>\r\n", m->report_id, m->org_name);
	e |= buf_puts(out, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
	e |= buf_printf(out,
			"Content-Type: multipart/report; report-type=feedback-report;\r\n"
			"\tboundary=\"%s\"\r\n\r\n",
			boundary);
	/* 1: in plain words (RFC 5965 2 b) */
	e |= buf_printf(out, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	e |= buf_printf(out,
			"This is a DMARC failure report (RFC 7489 7.3) from %s.\r\n\r\n"
			"%s received a message from the address %s that says it is from\r\n"
			"%s, and it did not pass DMARC: %s.\r\n"
			"What %s did with it: %s.\r\n\r\n"
			"The details are in the next part; the message's header section (not its\r\n"
			"body) is in the last one.\r\n\r\n",
			m->org_name, m->org_name, m->ip, from_domain,
			!m->dkim_aligned && !m->spf_aligned
			    ? "neither DKIM nor SPF passed for that domain"
			: !m->dkim_aligned ? "SPF passed for that domain, DKIM did not"
					   : "DKIM passed for that domain, SPF did not",
			m->org_name, m->delivery);
	/* 2: the machine-readable part (RFC 5965 3.1, RFC 6591 3.1, RFC 7489 7.3.1) */
	e |= buf_printf(out, "--%s\r\nContent-Type: message/feedback-report\r\n\r\n", boundary);
	e |= buf_puts(out, "Feedback-Type: auth-failure\r\nUser-Agent: Tern\r\nVersion: 1\r\n");
	e |= buf_printf(out, "Original-Mail-From: <%s>\r\n", plain(m->mail_from) ? m->mail_from : "");
	e |= buf_printf(out, "Arrival-Date: %s\r\n", arrival);
	e |= buf_printf(out, "Source-IP: %s\r\n", m->ip);
	e |= buf_printf(out, "Reported-Domain: %s\r\n", from_domain);
	e |= buf_puts(out, m->auth_results);
	e |= buf_puts(out, "Auth-Failure: dmarc\r\n");
	e |= buf_printf(out, "Delivery-Result: %s\r\n", m->delivery);
	e |= buf_printf(out, "Identity-Alignment: %s\r\n",
			m->dkim_aligned && m->spf_aligned ? "dkim, spf"
			: m->dkim_aligned		  ? "dkim"
			: m->spf_aligned		  ? "spf"
							  : "none");
	for (size_t i = 0; i < m->n_dkim; i++) {
		const struct dkim_result *d = &m->dkim[i];
		if (!plain(d->domain))
			continue;
		e |= buf_printf(out, "DKIM-Domain: %s\r\n", d->domain);
		/* i= defaults to "@" d= (RFC 6376 3.5) */
		if (plain(d->identity))
			e |= buf_printf(out, "DKIM-Identity: %s\r\n", d->identity);
		else
			e |= buf_printf(out, "DKIM-Identity: @%s\r\n", d->domain);
		if (plain(d->selector))
			e |= buf_printf(out, "DKIM-Selector: %s\r\n", d->selector);
	}
	if (plain(m->spf_domain) && m->spf_record[0] != '\0') {
		char value[600];
		snprintf(value, sizeof value, "txt : %s :", m->spf_domain);
		struct buf v;
		buf_init(&v, 0);
		e |= buf_puts(&v, value);
		e |= buf_putc(&v, ' ');
		e |= buf_puts(&v, m->spf_record);
		e |= buf_putc(&v, '\0');
		if (e == 0)
			e |= field(out, "SPF-DNS", v.data);
		buf_free(&v);
	}
	/* 3: the original header section (RFC 5965 2 d allows text/rfc822-headers) */
	e |= buf_printf(out, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
	e |= original_headers(out, m->headers, m->headers_len);
	e |= buf_printf(out, "\r\n--%s--\r\n", boundary);
	return e ? -1 : 0;
}
