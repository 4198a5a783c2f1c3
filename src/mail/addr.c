/*
 * addr.c - RFC 5321 Path / Mailbox syntax with the RFC 6531 (SMTPUTF8)
 * extension (see addr.h).
 *
 * Mail layer: used by the SMTP layer on MAIL FROM / RCPT TO and later by
 * the queue.  Everything here is a pure function over bytes with a length
 * (never assumed NUL-terminated) writing only into the caller's struct, so
 * it can be fuzzed and called on anything a client sends.
 *
 * The parser is a cursor walking the grammar of RFC 5321 4.1.2 left to
 * right.  It stops at the first byte that cannot continue the current
 * production, which is how addr_parse_path() learns where the path ends and
 * the ESMTP parameters begin.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "strutil.h"

#define LABEL_MAX 63 /* RFC 1035 2.3.4, for ASCII labels */

struct cursor {
	const unsigned char *p;
	size_t n;
	size_t i;
	bool utf8_ok;
	bool saw_utf8; /* non-ASCII seen since the last reset */
};

/*
 * Length of the one UTF-8 sequence at p[0..n) if it is well formed
 * (shortest form, no surrogates, at most U+10FFFF), else 0.  ASCII is 1.
 */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	uint32_t cp, min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1fu;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0fu;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07u;
		min = 0x10000;
	} else {
		return 0; /* continuation byte, C0/C1 overlong lead, or > U+10FFFF */
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

bool addr_utf8_valid(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;
	while (i < n) {
		size_t l = utf8_seq_len(u + i, n - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

/*
 * At a non-ASCII byte: steps over one UTF-8 character if SMTPUTF8 allows
 * it and the sequence is valid.
 */
static enum addr_error take_utf8(struct cursor *c)
{
	if (!c->utf8_ok)
		return ADDR_ERR_UTF8;
	size_t l = utf8_seq_len(c->p + c->i, c->n - c->i);
	if (l == 0)
		return ADDR_ERR_UTF8;
	c->i += l;
	c->saw_utf8 = true;
	return ADDR_OK;
}

static bool is_alpha(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(unsigned char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_let_dig(unsigned char ch)
{
	return is_alpha(ch) || is_digit(ch);
}

/* atext of RFC 5322 3.2.3, as RFC 5321 uses it in Atom. */
static bool is_atext(unsigned char ch)
{
	return is_let_dig(ch) || (ch != 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* dcontent of RFC 5321 4.1.3: printable US-ASCII except "[", "\", "]". */
static bool is_dcontent(unsigned char ch)
{
	return (ch >= 33 && ch <= 90) || (ch >= 94 && ch <= 126);
}

/*
 * Dot-string = Atom *("." Atom), atext widened by UTF8-non-ascii under
 * SMTPUTF8.  Stops at the first byte that cannot continue it.
 */
static enum addr_error scan_dot_string(struct cursor *c)
{
	bool need_atom = true; /* at the start or right after a dot */
	while (c->i < c->n) {
		unsigned char ch = c->p[c->i];
		if (is_atext(ch)) {
			c->i++;
			need_atom = false;
		} else if (ch >= 0x80) {
			enum addr_error e = take_utf8(c);
			if (e != ADDR_OK)
				return e;
			need_atom = false;
		} else if (ch == '.') {
			if (need_atom)
				return ADDR_ERR_SYNTAX; /* leading or doubled dot */
			c->i++;
			need_atom = true;
		} else {
			break;
		}
	}
	return need_atom ? ADDR_ERR_SYNTAX : ADDR_OK;
}

/* Whether s[0..n) (already known to be valid UTF-8) is a Dot-string. */
static bool is_dot_string(const char *s, size_t n)
{
	bool need_atom = true;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '.') {
			if (need_atom)
				return false;
			need_atom = true;
		} else if (is_atext(ch) || ch >= 0x80) {
			need_atom = false;
		} else {
			return false;
		}
	}
	return !need_atom;
}

/*
 * Quoted-string = DQUOTE *QcontentSMTP DQUOTE.  Writes the unescaped
 * content into buf (size bufsz) as far as it fits and its full length into
 * *len; the caller checks the wire length, which bounds the content.
 */
static enum addr_error scan_quoted(struct cursor *c, char *buf, size_t bufsz, size_t *len)
{
	size_t k = 0;
	c->i++; /* opening DQUOTE */
	for (;;) {
		if (c->i >= c->n)
			return ADDR_ERR_SYNTAX;
		unsigned char ch = c->p[c->i];
		size_t from = c->i, take;
		if (ch == '"') {
			c->i++;
			break;
		} else if (ch == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 (RFC 6531 does not widen it) */
			if (c->i + 1 >= c->n || c->p[c->i + 1] < 32 || c->p[c->i + 1] > 126)
				return ADDR_ERR_SYNTAX;
			from = c->i + 1;
			take = 1;
			c->i += 2;
		} else if (ch >= 32 && ch <= 126) {
			take = 1; /* qtextSMTP; 34 and 92 were handled above */
			c->i++;
		} else if (ch >= 0x80) {
			enum addr_error e = take_utf8(c);
			if (e != ADDR_OK)
				return e;
			take = c->i - from;
		} else {
			return ADDR_ERR_SYNTAX; /* control character */
		}
		for (size_t j = 0; j < take; j++, k++)
			if (k < bufsz)
				buf[k] = (char)c->p[from + j];
	}
	*len = k;
	return ADDR_OK;
}

/*
 * Local-part = Dot-string / Quoted-string, stored in canonical form: a
 * quoted string whose content is a valid Dot-string loses its quotes
 * ("john" is john), any other keeps them with only the escapes it needs.
 */
static enum addr_error parse_local(struct cursor *c, struct addr *out)
{
	size_t start = c->i;
	enum addr_error e;

	if (c->i < c->n && c->p[c->i] == '"') {
		char content[ADDR_LOCAL_MAX];
		size_t clen = 0;
		e = scan_quoted(c, content, sizeof content, &clen);
		if (e != ADDR_OK)
			return e;
		if (c->i - start > ADDR_LOCAL_MAX)
			return ADDR_ERR_TOO_LONG;
		/* The wire form had DQUOTEs and escaped every '"' and '\', so the
		 * canonical form is never longer than it: it fits. */
		size_t o = 0;
		if (is_dot_string(content, clen)) {
			memcpy(out->local, content, clen);
			o = clen;
		} else {
			out->local[o++] = '"';
			for (size_t j = 0; j < clen; j++) {
				if (content[j] == '"' || content[j] == '\\')
					out->local[o++] = '\\';
				out->local[o++] = content[j];
			}
			out->local[o++] = '"';
		}
		out->local[o] = '\0';
		return ADDR_OK;
	}
	e = scan_dot_string(c);
	if (e != ADDR_OK)
		return e;
	size_t len = c->i - start;
	if (len > ADDR_LOCAL_MAX)
		return ADDR_ERR_TOO_LONG;
	memcpy(out->local, c->p + start, len);
	out->local[len] = '\0';
	return ADDR_OK;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * or (SMTPUTF8) a U-label.  A trailing dot is a syntax error.  Length
 * problems are reported only once the syntax is known to be good.
 */
static enum addr_error scan_domain(struct cursor *c)
{
	size_t start = c->i;
	bool too_long = false;

	for (;;) {
		size_t label = c->i;
		bool label_utf8 = false, last_hyphen = false;
		if (c->i >= c->n)
			return ADDR_ERR_SYNTAX;
		unsigned char ch = c->p[c->i];
		if (!is_let_dig(ch) && ch < 0x80)
			return ADDR_ERR_SYNTAX; /* empty label or leading hyphen */
		while (c->i < c->n) {
			ch = c->p[c->i];
			if (is_let_dig(ch) || ch == '-') {
				last_hyphen = ch == '-';
				c->i++;
			} else if (ch >= 0x80) {
				enum addr_error e = take_utf8(c);
				if (e != ADDR_OK)
					return e;
				label_utf8 = true;
				last_hyphen = false;
			} else {
				break;
			}
		}
		if (last_hyphen)
			return ADDR_ERR_SYNTAX;
		/* A U-label's limit applies to its A-label form, which we do
		 * not compute; the 255-octet domain limit still bounds it. */
		if (!label_utf8 && c->i - label > LABEL_MAX)
			too_long = true;
		if (c->i < c->n && c->p[c->i] == '.') {
			c->i++;
			continue;
		}
		break;
	}
	if (too_long || c->i - start > ADDR_DOMAIN_MAX)
		return ADDR_ERR_TOO_LONG;
	return ADDR_OK;
}

static bool parse_ipv4(const unsigned char *p, size_t n)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		if (part > 0) {
			if (i >= n || p[i] != '.')
				return false;
			i++;
		}
		/* Snum = 1*3DIGIT, representing a decimal integer 0-255 */
		size_t start = i;
		uint64_t v;
		while (i < n && is_digit(p[i]) && i - start < 3)
			i++;
		if (strutil_parse_u64((const char *)p + start, i - start, 255, &v) < 0)
			return false;
	}
	return i == n;
}

static bool parse_ipv6(const unsigned char *p, size_t n)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	if (n == 0 || n >= sizeof tmp)
		return false;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, bin) == 1;
}

/* Standardized-tag = Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig */
static bool is_ldh_str(const unsigned char *p, size_t n)
{
	if (n == 0 || !is_let_dig(p[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_let_dig(p[i]) && p[i] != '-')
			return false;
	return true;
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]".  Non-ASCII is never allowed here.
 */
static enum addr_error scan_literal(struct cursor *c)
{
	size_t start = c->i;
	size_t j = c->i + 1;
	while (j < c->n && is_dcontent(c->p[j]))
		j++;
	if (j >= c->n || c->p[j] != ']')
		return ADDR_ERR_SYNTAX;
	const unsigned char *in = c->p + start + 1;
	size_t len = j - start - 1;
	const unsigned char *colon = memchr(in, ':', len);

	if (len >= 5 && (in[0] | 0x20) == 'i' && (in[1] | 0x20) == 'p' && (in[2] | 0x20) == 'v' &&
	    in[3] == '6' && in[4] == ':') {
		if (!parse_ipv6(in + 5, len - 5))
			return ADDR_ERR_SYNTAX;
	} else if (colon != NULL) {
		size_t tag = (size_t)(colon - in);
		if (!is_ldh_str(in, tag) || tag + 1 == len)
			return ADDR_ERR_SYNTAX;
	} else if (!parse_ipv4(in, len)) {
		return ADDR_ERR_SYNTAX;
	}
	c->i = j + 1;
	if (c->i - start > ADDR_DOMAIN_MAX)
		return ADDR_ERR_TOO_LONG;
	return ADDR_OK;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ), from c->i on. */
static enum addr_error scan_mailbox(struct cursor *c, struct addr *out)
{
	enum addr_error e;
	c->saw_utf8 = false;
	e = parse_local(c, out);
	if (e != ADDR_OK)
		return e;
	if (c->i >= c->n || c->p[c->i] != '@')
		return ADDR_ERR_SYNTAX;
	c->i++;
	size_t start = c->i;
	bool literal = c->i < c->n && c->p[c->i] == '[';
	e = literal ? scan_literal(c) : scan_domain(c);
	if (e != ADDR_OK)
		return e;
	size_t len = c->i - start;
	memcpy(out->domain, c->p + start, len);
	out->domain[len] = '\0';
	/* Domain names compare case-insensitively; lower-case the ASCII
	 * letters once here.  A literal is kept as sent (a general literal's
	 * content need not be case-insensitive). */
	if (!literal)
		for (size_t k = 0; k < len; k++)
			if (out->domain[k] >= 'A' && out->domain[k] <= 'Z')
				out->domain[k] = (char)(out->domain[k] + ('a' - 'A'));
	out->domain_is_literal = literal;
	out->has_utf8 = c->saw_utf8;
	return ADDR_OK;
}

enum addr_error addr_parse_mailbox(const char *p, size_t n, bool utf8_ok, struct addr *out)
{
	struct cursor c = {(const unsigned char *)p, n, 0, utf8_ok, false};
	memset(out, 0, sizeof *out);
	enum addr_error e = scan_mailbox(&c, out);
	if (e == ADDR_OK && c.i != n)
		e = ADDR_ERR_SYNTAX;
	if (e != ADDR_OK)
		memset(out, 0, sizeof *out);
	return e;
}

/* A-d-l = At-domain *( "," At-domain ), then ":"; c->i is at the first '@'. */
static enum addr_error skip_source_route(struct cursor *c)
{
	for (;;) {
		c->i++; /* '@' */
		enum addr_error e = scan_domain(c);
		if (e != ADDR_OK)
			return e;
		if (c->i >= c->n)
			return ADDR_ERR_SYNTAX;
		if (c->p[c->i] == ':') {
			c->i++;
			return ADDR_OK;
		}
		if (c->p[c->i] != ',' || c->i + 1 >= c->n || c->p[c->i + 1] != '@')
			return ADDR_ERR_SYNTAX;
		c->i++;
	}
}

enum addr_error addr_parse_path(const char *p, size_t n, bool utf8_ok, bool allow_null,
				struct addr *out, bool *is_null, size_t *consumed)
{
	struct cursor c = {(const unsigned char *)p, n, 0, utf8_ok, false};
	enum addr_error e = ADDR_OK;

	memset(out, 0, sizeof *out);
	if (is_null != NULL)
		*is_null = false;
	if (consumed != NULL)
		*consumed = 0;
	if (n < 2 || p[0] != '<')
		return ADDR_ERR_SYNTAX;
	c.i = 1;
	if (p[1] == '>') {
		if (!allow_null)
			return ADDR_ERR_SYNTAX;
		if (is_null != NULL)
			*is_null = true;
		if (consumed != NULL)
			*consumed = 2;
		return ADDR_OK;
	}
	/* RFC 5321 4.1.2 and C.: a source route MUST be accepted, SHOULD NOT
	 * be generated, and SHOULD be ignored. */
	if (p[1] == '@')
		e = skip_source_route(&c);
	if (e == ADDR_OK)
		e = scan_mailbox(&c, out);
	if (e == ADDR_OK && (c.i >= n || p[c.i] != '>'))
		e = ADDR_ERR_SYNTAX;
	if (e == ADDR_OK && c.i + 1 > ADDR_PATH_MAX)
		e = ADDR_ERR_TOO_LONG;
	if (e != ADDR_OK) {
		memset(out, 0, sizeof *out);
		return e;
	}
	if (consumed != NULL)
		*consumed = c.i + 1;
	return ADDR_OK;
}

int addr_format(const struct addr *a, char *buf, size_t bufsz)
{
	size_t ll = strnlen(a->local, sizeof a->local);
	size_t dl = strnlen(a->domain, sizeof a->domain);
	size_t need = ll + (dl > 0 ? 1 + dl : 0);

	if (bufsz == 0)
		return -1;
	if (need >= bufsz) {
		buf[0] = '\0';
		return -1;
	}
	memcpy(buf, a->local, ll);
	if (dl > 0) {
		buf[ll] = '@';
		memcpy(buf + ll + 1, a->domain, dl);
	}
	buf[need] = '\0';
	return (int)need;
}

const char *addr_domain_of(const char *address)
{
	const char *at = strrchr(address, '@');
	return at != NULL ? at + 1 : "";
}
