/*
 * smtp-reply.c - the remote server's replies (see smtp-reply.h).
 * Layer src/queue; pure, no allocation, bounded by the struct sizes.
 */
#include "smtp-reply.h"

#include <stdio.h>
#include <string.h>

#include "strutil.h"

void smtp_reply_init(struct smtp_reply *r)
{
	r->code = 0;
	r->n_lines = 0;
	r->done = false;
	r->text_len = 0;
	r->text[0] = '\0';
}

enum smtp_reply_status smtp_reply_feed(struct smtp_reply *r, const char *line, size_t n)
{
	if (r->done || n < 3)
		return SMTP_REPLY_BAD;
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' || line[2] < '0' ||
	    line[2] > '9')
		return SMTP_REPLY_BAD;
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	bool last;
	if (n == 3)
		last = true;
	else if (line[3] == ' ')
		last = true;
	else if (line[3] == '-')
		last = false;
	else
		return SMTP_REPLY_BAD;
	if (r->n_lines > 0 && code != r->code)
		return SMTP_REPLY_BAD;
	if (r->n_lines >= SMTP_REPLY_MAX_LINES)
		return SMTP_REPLY_BAD;
	r->code = code;
	const char *t = n > 4 ? line + 4 : "";
	size_t tn = n > 4 ? n - 4 : 0;
	if (r->n_lines > 0 && r->text_len + 1 < sizeof r->text)
		r->text[r->text_len++] = '\n';
	size_t room = sizeof r->text - 1 - r->text_len;
	if (tn > room)
		tn = room;
	memcpy(r->text + r->text_len, t, tn);
	r->text_len += tn;
	r->text[r->text_len] = '\0';
	r->n_lines++;
	if (last) {
		r->done = true;
		return SMTP_REPLY_DONE;
	}
	return SMTP_REPLY_MORE;
}

void smtp_reply_caps(const struct smtp_reply *r, struct smtp_caps *caps)
{
	memset(caps, 0, sizeof *caps);
	caps->esmtp = true;
	const char *p = r->text;
	const char *end = r->text + r->text_len;
	bool first = true;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (!first) {
			size_t kw = 0;
			while (kw < n && p[kw] != ' ')
				kw++;
			const char *arg = kw < n ? p + kw + 1 : p + n;
			size_t argn = kw < n ? n - kw - 1 : 0;
			if (strutil_eq_ci(p, kw, "PIPELINING"))
				caps->pipelining = true;
			else if (strutil_eq_ci(p, kw, "8BITMIME"))
				caps->eightbitmime = true;
			else if (strutil_eq_ci(p, kw, "SMTPUTF8"))
				caps->smtputf8 = true;
			else if (strutil_eq_ci(p, kw, "STARTTLS"))
				caps->starttls = true;
			else if (strutil_eq_ci(p, kw, "CHUNKING"))
				caps->chunking = true;
			else if (strutil_eq_ci(p, kw, "ENHANCEDSTATUSCODES"))
				caps->enhancedstatuscodes = true;
			else if (strutil_eq_ci(p, kw, "DSN"))
				caps->dsn = true;
			else if (strutil_eq_ci(p, kw, "REQUIRETLS"))
				caps->requiretls = true;
			else if (strutil_eq_ci(p, kw, "AUTH"))
				caps->auth_plain |= strutil_has_word_ci(arg, argn, "PLAIN");
			else if (strutil_eq_ci(p, kw, "SIZE")) {
				caps->size = true;
				uint64_t v;
				if (argn > 0 &&
				    strutil_parse_u64(arg, argn, UINT64_MAX / 2, &v) == 0)
					caps->size_max = v;
			}
		}
		first = false;
		p += n + (nl ? 1 : 0);
	}
}

/* Digits at p (1..max_digits of them, at most max value); returns count. */
static size_t digits(const char *p, size_t max_digits)
{
	size_t i = 0;
	while (i < max_digits && p[i] >= '0' && p[i] <= '9')
		i++;
	return i;
}

int smtp_reply_enhanced(const char *text, char out[16])
{
	out[0] = '\0';
	if (text[0] != '2' && text[0] != '4' && text[0] != '5')
		return 0;
	if (text[1] != '.')
		return 0;
	size_t a = digits(text + 2, 3);
	if (a == 0 || text[2 + a] != '.')
		return 0;
	size_t b = digits(text + 3 + a, 3);
	if (b == 0)
		return 0;
	char c = text[3 + a + b];
	if (c != ' ' && c != '\0' && c != '\n')
		return 0;
	size_t len = 3 + a + b;
	memcpy(out, text, len);
	out[len] = '\0';
	return 1;
}

void smtp_reply_oneline(const struct smtp_reply *r, char *out, size_t outsz)
{
	if (outsz == 0)
		return;
	int n = snprintf(out, outsz, "%03d", r->code);
	size_t o = n > 0 && (size_t)n < outsz ? (size_t)n : 0;
	if (r->text_len > 0 && o + 1 < outsz)
		out[o++] = ' ';
	for (size_t i = 0; i < r->text_len && o + 1 < outsz; i++) {
		unsigned char c = (unsigned char)r->text[i];
		out[o++] = c == '\n' ? ' ' : (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[o] = '\0';
}
