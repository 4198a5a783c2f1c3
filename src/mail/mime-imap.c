/*
 * mime-imap.c - the IMAP views of a parsed message (see mime.h): ENVELOPE
 * with its RFC 5322 address parser, BODY and BODYSTRUCTURE.
 *
 * Mail layer.  Where RFC 9051 leaves the form open, the output follows
 * what Dovecot answers, so that clients see what they are used to (the
 * corpus in tests/unit/mime-corpus holds Dovecot's answers):
 *  - strings are quoted strings ("\" and "\\" escaped) unless they hold
 *    8-bit octets or line breaks, which makes them literals;
 *  - the subject and display names are "for humans": line breaks dropped,
 *    tabs made spaces, runs of spaces squeezed, ends trimmed; when that
 *    changed anything, or the text holds '"', '\' or 8-bit octets, it is
 *    sent as a literal;
 *  - an address without mailbox or host gets "MISSING_MAILBOX" or
 *    "MISSING_DOMAIN" (RFC 9051 gives a NIL host the meaning "group"), an
 *    angle address without its '>' the host "SYNTAX_ERROR";
 *  - text parts without a charset parameter get ("charset" "us-ascii")
 *    appended (RFC 2046 4.1.2 default), a multipart without parts one
 *    empty text/plain part (RFC 9051 needs at least one body in a
 *    body-type-mpart).
 */
#include "mime-private.h"

#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "strutil.h"

/* --- IMAP strings ------------------------------------------------------ */

static int put_literal(struct buf *out, const char *s, size_t n)
{
	size_t nuls = 0;
	for (size_t i = 0; i < n; i++)
		nuls += s[i] == '\0';
	/* a literal may not hold NUL (RFC 9051 CHAR8): such octets are dropped */
	if (buf_printf(out, "{%zu}\r\n", n - nuls) < 0)
		return -1;
	if (nuls == 0)
		return buf_append(out, s, n);
	for (size_t i = 0; i < n; i++)
		if (s[i] != '\0' && buf_putc(out, s[i]) < 0)
			return -1;
	return 0;
}

int mime_imap_string(struct buf *out, const char *s, size_t n)
{
	if (s == NULL)
		return buf_puts(out, "NIL");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80 || c == '\r' || c == '\n' || c == '\0')
			return put_literal(out, s, n);
	}
	if (buf_reserve(out, n + n / 8 + 2) < 0 || buf_putc(out, '"') < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((s[i] == '"' || s[i] == '\\') && buf_putc(out, '\\') < 0)
			return -1;
		if (buf_putc(out, s[i]) < 0)
			return -1;
	}
	return buf_putc(out, '"');
}

static int put_cstr(struct buf *out, const struct buf *b)
{
	return mime_imap_string(out, b->data != NULL ? b->data : "", b->len);
}

/* A subject or display name, "for humans" (see the top of this file). */
static int put_human(struct buf *out, const char *s, size_t n)
{
	struct buf norm = BUF_INIT;
	bool changed = false, literal = false;
	int r;

	if (buf_reserve(&norm, n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' || c == '\n' || c == '\0') {
			changed = true;
			continue;
		}
		if (c == '\t') {
			c = ' ';
			changed = true;
		}
		if (c == ' ' && (norm.len == 0 || norm.data[norm.len - 1] == ' ')) {
			changed = true;
			continue;
		}
		if (c == '"' || c == '\\' || c >= 0x80)
			literal = true;
		(void)buf_putc(&norm, (char)c);
	}
	if (norm.len > 0 && norm.data[norm.len - 1] == ' ') {
		norm.len--;
		changed = true;
	}
	if (changed || literal)
		r = put_literal(out, norm.data != NULL ? norm.data : "", norm.len);
	else
		r = put_cstr(out, &norm);
	buf_free(&norm);
	return r;
}

/* --- RFC 5322 addresses ------------------------------------------------- */

struct addr_parser {
	const char *s;
	size_t n, i;
	struct buf *out;
	size_t count; /* addresses and group markers written */
	bool specs;   /* write only "<local@domain> " per address (mime_addr_specs) */
	bool first;   /* write only the first entry's addr-mailbox (mime_addr_first_mailbox) */
	bool display; /* with first: its name, else local@domain (mime_addr_first_display) */
	struct buf phrase, local, domain, route, comment, tmp;
};

/* atext (RFC 5322 3.2.3) plus '.', which obs-phrase and dot-atom allow,
 * and 8-bit octets (RFC 6532). */
static bool is_atext(unsigned char c)
{
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>[]:;@\\,\"", c) == NULL;
}

static const char MISSING_MAILBOX[] = "MISSING_MAILBOX";
static const char MISSING_DOMAIN[] = "MISSING_DOMAIN";
static const char SYNTAX_ERROR[] = "SYNTAX_ERROR";

static int put_address(struct addr_parser *a, const struct buf *name, const struct buf *route,
		       const char *mailbox, size_t ml, const char *host, size_t hl)
{
	struct buf *o = a->out;
	a->count++;
	if (a->first) {
		if (a->count > 1 || mailbox == MISSING_MAILBOX)
			return 0;
		if (a->display && name != NULL && name->len > 0)
			return buf_append(o, name->data, name->len);
		if (buf_append(o, mailbox, ml) < 0)
			return -1;
		if (!a->display || host == MISSING_DOMAIN || host == SYNTAX_ERROR)
			return 0;
		return buf_putc(o, '@') < 0 ? -1 : buf_append(o, host, hl);
	}
	if (a->specs) {
		if (mailbox == MISSING_MAILBOX || host == MISSING_DOMAIN || host == SYNTAX_ERROR)
			return 0;
		if (buf_putc(o, '<') < 0 || buf_append(o, mailbox, ml) < 0 ||
		    buf_putc(o, '@') < 0 || buf_append(o, host, hl) < 0)
			return -1;
		return buf_puts(o, "> ");
	}
	if (buf_putc(o, '(') < 0)
		return -1;
	if (name != NULL && name->len > 0) {
		if (put_human(o, name->data, name->len) < 0)
			return -1;
	} else if (buf_puts(o, "NIL") < 0) {
		return -1;
	}
	if (buf_putc(o, ' ') < 0)
		return -1;
	if (route != NULL && route->len > 0) {
		if (put_cstr(o, route) < 0)
			return -1;
	} else if (buf_puts(o, "NIL") < 0) {
		return -1;
	}
	if (buf_putc(o, ' ') < 0 || mime_imap_string(o, mailbox, ml) < 0 || buf_putc(o, ' ') < 0 ||
	    mime_imap_string(o, host, hl) < 0)
		return -1;
	return buf_putc(o, ')');
}

/* Words (atoms and quoted strings) at a->i: appended to the phrase
 * joined by single spaces, and to local without separators.  local_ok
 * tells whether they form a dot-separated local part.  Returns the
 * number of words, or -1 on an unterminated quoted string. */
static int read_words(struct addr_parser *a, bool *had_quoted, bool *local_ok)
{
	int words = 0;
	bool prev_dot = true;

	*had_quoted = false;
	*local_ok = true;
	buf_reset(&a->phrase);
	buf_reset(&a->local);
	for (;;) {
		mime_skip_cfws(a->s, a->n, &a->i, NULL);
		if (a->i >= a->n)
			break;
		unsigned char c = (unsigned char)a->s[a->i];
		buf_reset(&a->tmp);
		if (c == '"') {
			if (mime_read_quoted(a->s, a->n, &a->i, &a->tmp) < 0)
				return -1;
			*had_quoted = true;
		} else if (is_atext(c)) {
			size_t st = a->i;
			while (a->i < a->n && is_atext((unsigned char)a->s[a->i]))
				a->i++;
			(void)buf_append(&a->tmp, a->s + st, a->i - st);
		} else {
			break;
		}
		bool starts_dot = a->tmp.len > 0 && a->tmp.data[0] == '.' && c != '"';
		if (!prev_dot && !starts_dot)
			*local_ok = false;
		prev_dot = a->tmp.len > 0 && a->tmp.data[a->tmp.len - 1] == '.' && c != '"';
		if (words > 0)
			(void)buf_putc(&a->phrase, ' ');
		(void)buf_append(&a->phrase, a->tmp.data, a->tmp.len);
		(void)buf_append(&a->local, a->tmp.data, a->tmp.len);
		words++;
	}
	return words;
}

/* A domain at a->i into a->domain: a dot-atom (blanks and comments
 * between its atoms dropped) or a domain literal.  Empty when missing or
 * malformed. */
static void read_domain(struct addr_parser *a)
{
	buf_reset(&a->domain);
	mime_skip_cfws(a->s, a->n, &a->i, NULL);
	if (a->i < a->n && a->s[a->i] == '[') {
		size_t st = a->i;
		const char *close = memchr(a->s + st, ']', a->n - st);
		if (close == NULL) {
			a->i = a->n;
			return;
		}
		a->i = (size_t)(close - a->s) + 1;
		for (size_t k = st; k < a->i; k++)
			if (a->s[k] != '\r' && a->s[k] != '\n')
				(void)buf_putc(&a->domain, a->s[k]);
		return;
	}
	while (a->i < a->n && is_atext((unsigned char)a->s[a->i])) {
		size_t st = a->i;
		while (a->i < a->n && is_atext((unsigned char)a->s[a->i]))
			a->i++;
		(void)buf_append(&a->domain, a->s + st, a->i - st);
		size_t save = a->i;
		mime_skip_cfws(a->s, a->n, &a->i, NULL);
		if (a->i >= a->n || !is_atext((unsigned char)a->s[a->i]) ||
		    (a->domain.data[a->domain.len - 1] != '.' && a->s[a->i] != '.')) {
			a->i = save;
			break;
		}
	}
	const char *d = a->domain.data;
	size_t dl = a->domain.len;
	if (dl > 0 && (d[0] == '.' || d[dl - 1] == '.' || memmem(d, dl, "..", 2) != NULL))
		buf_reset(&a->domain);
}

static int put_parsed(struct addr_parser *a, const struct buf *name, const struct buf *route,
		      const char *host_if_missing)
{
	const char *mb = a->local.len > 0 ? a->local.data : MISSING_MAILBOX;
	size_t ml = a->local.len > 0 ? a->local.len : strlen(MISSING_MAILBOX);
	const char *h = a->domain.len > 0 ? a->domain.data : host_if_missing;
	size_t hl = a->domain.len > 0 ? a->domain.len : strlen(host_if_missing);
	return put_address(a, name, route, mb, ml, h, hl);
}

/* One mailbox or (unless in_group) group at a->i.  Returns 1 when one was
 * written, 0 when the rest of the list is not worth reading (syntax
 * error), -1 when the output is full. */
static int parse_address(struct addr_parser *a, bool in_group)
{
	bool had_quoted, local_ok;
	int words = read_words(a, &had_quoted, &local_ok);

	if (words < 0) {
		a->i = a->n;
		if (put_address(a, NULL, NULL, MISSING_MAILBOX, strlen(MISSING_MAILBOX),
				MISSING_DOMAIN, strlen(MISSING_DOMAIN)) < 0)
			return -1;
		return 0;
	}
	char c = a->i < a->n ? a->s[a->i] : '\0';
	buf_reset(&a->domain);
	buf_reset(&a->route);

	if (c == '<') {
		struct buf name = a->phrase; /* moved out: read_words reuses it */
		a->phrase = (struct buf)BUF_INIT;
		a->i++;
		mime_skip_cfws(a->s, a->n, &a->i, NULL);
		/* obs-route: "@a,@b:" before the address */
		size_t save = a->i;
		bool routed = false;
		while (a->i < a->n && a->s[a->i] == '@') {
			a->i++;
			read_domain(a);
			mime_skip_cfws(a->s, a->n, &a->i, NULL);
			char d = a->i < a->n ? a->s[a->i] : '\0';
			if (a->domain.len == 0 || (d != ',' && d != ':'))
				break;
			if (a->route.len > 0)
				(void)buf_putc(&a->route, ',');
			(void)buf_putc(&a->route, '@');
			(void)buf_append(&a->route, a->domain.data, a->domain.len);
			a->i++;
			mime_skip_cfws(a->s, a->n, &a->i, NULL);
			if (d == ':') {
				routed = true;
				break;
			}
		}
		if (!routed) {
			a->i = save; /* not a route after all */
			buf_reset(&a->route);
		}
		int w = read_words(a, &had_quoted, &local_ok);
		buf_free(&a->phrase);
		a->phrase = name;
		if (w < 0) {
			a->i = a->n;
			buf_reset(&a->local);
		}
		buf_reset(&a->domain);
		if (a->i < a->n && a->s[a->i] == '@') {
			a->i++;
			read_domain(a);
		}
		mime_skip_cfws(a->s, a->n, &a->i, NULL);
		const char *missing = MISSING_DOMAIN;
		bool closed = a->i < a->n && a->s[a->i] == '>';
		if (closed) {
			a->i++;
		} else {
			buf_reset(&a->domain);
			missing = SYNTAX_ERROR;
		}
		if (put_parsed(a, &a->phrase, &a->route, missing) < 0)
			return -1;
		return closed ? 1 : 0;
	}
	if (c == ':' && !in_group) {
		a->i++;
		if (a->first && a->count == 0 &&
		    buf_append(a->out, a->phrase.data != NULL ? a->phrase.data : "",
			       a->phrase.len) < 0)
			return -1;
		if (!a->specs && !a->first &&
		    (buf_puts(a->out, "(NIL NIL ") < 0 || put_cstr(a->out, &a->phrase) < 0 ||
		     buf_puts(a->out, " NIL)") < 0))
			return -1;
		a->count++;
		int r = 1;
		for (;;) {
			mime_skip_cfws(a->s, a->n, &a->i, NULL);
			if (a->i >= a->n)
				break;
			if (a->s[a->i] == ';') {
				a->i++;
				break;
			}
			if (a->s[a->i] == ',') {
				a->i++;
				continue;
			}
			r = parse_address(a, true);
			if (r <= 0)
				break;
			mime_skip_cfws(a->s, a->n, &a->i, NULL);
			if (a->i < a->n && a->s[a->i] != ',' && a->s[a->i] != ';') {
				r = 0;
				break;
			}
		}
		if (r < 0 || (!a->specs && !a->first && buf_puts(a->out, "(NIL NIL NIL NIL)") < 0))
			return -1;
		a->count++;
		return r;
	}
	if (c == '@') {
		if (words > 0 && !local_ok) {
			/* "a b@c": no address, only a name */
			if (put_address(a, &a->phrase, NULL, MISSING_MAILBOX,
					strlen(MISSING_MAILBOX), MISSING_DOMAIN,
					strlen(MISSING_DOMAIN)) < 0)
				return -1;
			return 0;
		}
		a->i++;
		read_domain(a);
		/* "addr (Full Name)": the last comment names the address */
		mime_skip_cfws(a->s, a->n, &a->i, &a->comment);
		if (put_parsed(a, &a->comment, NULL, MISSING_DOMAIN) < 0)
			return -1;
		return 1;
	}
	if (words == 0)
		return 0; /* junk */
	if (words == 1 && !had_quoted) {
		/* a lone local part */
		mime_skip_cfws(a->s, a->n, &a->i, &a->comment);
		if (put_parsed(a, &a->comment, NULL, MISSING_DOMAIN) < 0)
			return -1;
		return 1;
	}
	buf_reset(&a->local);
	if (put_parsed(a, &a->phrase, NULL, MISSING_DOMAIN) < 0)
		return -1;
	return 1;
}

/* Appends the addresses of one field value to out (without the list's
 * parentheses); adds their number to *count.  0 / -1. */
static int parse_address_list(const char *v, size_t n, struct buf *out, size_t *count, bool specs,
			      bool first, bool display)
{
	struct addr_parser a;
	int r = 0;

	memset(&a, 0, sizeof a);
	a.specs = specs;
	a.first = first;
	a.display = display;
	mime_value_trim_start(&v, &n);
	a.s = v;
	a.n = n < MIME_MAX_HEADER_LINE ? n : MIME_MAX_HEADER_LINE;
	a.out = out;
	for (;;) {
		mime_skip_cfws(a.s, a.n, &a.i, NULL);
		if (a.i >= a.n)
			break;
		if (a.s[a.i] == ',') {
			/* RFC 5322 4.4 obs-addr-list: empty members are allowed */
			a.i++;
			continue;
		}
		int pr = parse_address(&a, false);
		if (pr < 0) {
			r = -1;
			break;
		}
		if (pr == 0)
			break;
		mime_skip_cfws(a.s, a.n, &a.i, NULL);
		if (a.i < a.n && a.s[a.i] != ',')
			break; /* junk after an address ends the list */
	}
	*count += a.count;
	buf_free(&a.phrase);
	buf_free(&a.local);
	buf_free(&a.domain);
	buf_free(&a.route);
	buf_free(&a.comment);
	buf_free(&a.tmp);
	return r;
}

int mime_addr_specs(const char *v, size_t n, struct buf *out)
{
	size_t count = 0;
	return parse_address_list(v, n, out, &count, true, false, false);
}

int mime_addr_first_mailbox(const char *v, size_t n, struct buf *out)
{
	size_t count = 0;
	return parse_address_list(v, n, out, &count, false, true, false);
}

int mime_addr_first_display(const char *v, size_t n, struct buf *out)
{
	size_t count = 0;
	return parse_address_list(v, n, out, &count, false, true, true);
}

/* --- ENVELOPE ------------------------------------------------------------ */

enum env_field { ENV_DATE, ENV_SUBJECT, ENV_IN_REPLY_TO, ENV_MESSAGE_ID, ENV_NSTR };
enum env_addr { ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO, ENV_CC, ENV_BCC, ENV_NADDR };

static int put_envelope(const struct mime_tree *t, const struct mime_part *m, struct buf *out)
{
	static const char *const nstr_names[ENV_NSTR] = {"Date", "Subject", "In-Reply-To",
							 "Message-ID"};
	static const char *const addr_names[ENV_NADDR] = {"From", "Sender", "Reply-To",
							  "To",   "Cc",     "Bcc"};
	struct mime_hdr_field last[ENV_NSTR];
	bool have[ENV_NSTR] = {false};
	struct buf lists[ENV_NADDR];
	size_t counts[ENV_NADDR] = {0};
	struct mime_hdr_iter it;
	struct mime_hdr_field f;
	int r = 0;

	for (int k = 0; k < ENV_NADDR; k++)
		buf_init(&lists[k], out->max);
	mime_hdr_iter_init(&it, t->msg, m->start, m->start + m->hdr_len);
	while (r == 0 && mime_hdr_next(&it, &f)) {
		const char *nm = t->msg + f.name_off;
		if (!f.is_field)
			continue;
		for (int k = 0; k < ENV_NSTR; k++) {
			/* the last one counts, as in Dovecot */
			if (strutil_eq_ci(nm, f.name_len, nstr_names[k])) {
				last[k] = f;
				have[k] = true;
			}
		}
		for (int k = 0; k < ENV_NADDR; k++) {
			/* repeated address fields add up */
			if (strutil_eq_ci(nm, f.name_len, addr_names[k]))
				r = parse_address_list(t->msg + f.value_off, f.value_len, &lists[k],
						       &counts[k], false, false, false);
		}
	}

	struct buf v = BUF_INIT;
	if (r == 0)
		r = buf_putc(out, '(');
	for (int k = 0; r == 0 && k < ENV_NSTR + ENV_NADDR; k++) {
		/* order: date subject from sender reply-to to cc bcc
		 * in-reply-to message-id */
		static const int order[] = {0, 1, -1, -2, -3, -4, -5, -6, 2, 3};
		int o = order[k];
		if (k > 0 && buf_putc(out, ' ') < 0) {
			r = -1;
			break;
		}
		if (o >= 0) {
			if (!have[o]) {
				r = buf_puts(out, "NIL");
				continue;
			}
			const char *val = t->msg + last[o].value_off;
			size_t vl = last[o].value_len;
			if (o == ENV_SUBJECT) {
				mime_value_trim_start(&val, &vl);
				r = put_human(out, val,
					      vl < MIME_MAX_HEADER_LINE ? vl
									: MIME_MAX_HEADER_LINE);
				continue;
			}
			buf_reset(&v);
			(void)mime_value_unfold(val, vl, &v);
			r = put_cstr(out, &v);
			continue;
		}
		int a = -o - 1;
		if (counts[a] == 0 && (a == ENV_SENDER || a == ENV_REPLY_TO))
			a = ENV_FROM; /* RFC 9051 7.5.2: they default to From */
		if (counts[a] == 0) {
			r = buf_puts(out, "NIL");
			continue;
		}
		if (buf_putc(out, '(') < 0 || buf_append(out, lists[a].data, lists[a].len) < 0)
			r = -1;
		else
			r = buf_putc(out, ')');
	}
	if (r == 0)
		r = buf_putc(out, ')');
	buf_free(&v);
	for (int k = 0; k < ENV_NADDR; k++)
		buf_free(&lists[k]);
	return r < 0 ? -1 : 0;
}

int mime_imap_envelope(const struct mime_tree *t, struct buf *out)
{
	if (t == NULL || out == NULL)
		return -1;
	return put_envelope(t, t->root, out);
}

/* --- BODYSTRUCTURE ------------------------------------------------------ */

static int put_params(struct buf *out, const struct mime_params *p, bool add_charset)
{
	bool charset = mime_params_find(p, "charset") != NULL;
	if (p->n == 0 && (charset || !add_charset))
		return buf_puts(out, "NIL");
	if (buf_putc(out, '(') < 0)
		return -1;
	for (size_t k = 0; k < p->n; k++) {
		if ((k > 0 && buf_putc(out, ' ') < 0) ||
		    mime_imap_string(out, p->v[k].name, p->v[k].name_len) < 0 ||
		    buf_putc(out, ' ') < 0 ||
		    mime_imap_string(out, p->v[k].value, p->v[k].value_len) < 0)
			return -1;
	}
	if (add_charset && !charset &&
	    buf_puts(out, p->n > 0 ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"") < 0)
		return -1;
	return buf_putc(out, ')');
}

/* An unstructured field (id, description, md5, location) as an nstring. */
static int put_field(const struct mime_tree *t, const struct mime_part *p, enum mime_fld f,
		     struct buf *out, struct buf *tmp)
{
	buf_reset(tmp);
	if (!mime_part_field(t, p, f, tmp))
		return buf_puts(out, "NIL");
	return put_cstr(out, tmp);
}

static int put_encoding(const struct mime_tree *t, const struct mime_part *p, struct buf *out,
			struct buf *tmp)
{
	buf_reset(tmp);
	if (mime_part_field(t, p, MIME_FLD_CTE, tmp)) {
		size_t i = 0;
		const char *s = tmp->data != NULL ? tmp->data : "";
		mime_skip_cfws(s, tmp->len, &i, NULL);
		size_t off = i;
		size_t len = mime_read_token(s, tmp->len, &i);
		mime_skip_cfws(s, tmp->len, &i, NULL);
		if (len > 0 && i == tmp->len)
			return mime_imap_string(out, s + off, len);
	}
	return buf_puts(out, "\"7bit\"");
}

static int put_disposition(const struct mime_tree *t, const struct mime_part *p, struct buf *out,
			   struct buf *tmp)
{
	buf_reset(tmp);
	if (!mime_part_field(t, p, MIME_FLD_DISP, tmp))
		return buf_puts(out, "NIL");
	const char *s = tmp->data != NULL ? tmp->data : "";
	size_t i = 0;
	mime_skip_cfws(s, tmp->len, &i, NULL);
	size_t off = i;
	size_t len = mime_read_token(s, tmp->len, &i);
	struct mime_params params = {0};
	mime_params_parse(s, tmp->len, &i, &params);
	int r = buf_putc(out, '(');
	if (r == 0)
		r = mime_imap_string(out, s + off, len);
	if (r == 0)
		r = buf_putc(out, ' ');
	if (r == 0)
		r = put_params(out, &params, false);
	if (r == 0)
		r = buf_putc(out, ')');
	mime_params_free(&params);
	return r;
}

static int put_language(const struct mime_tree *t, const struct mime_part *p, struct buf *out,
			struct buf *tmp)
{
	buf_reset(tmp);
	if (!mime_part_field(t, p, MIME_FLD_LANG, tmp))
		return buf_puts(out, "NIL");
	const char *s = tmp->data != NULL ? tmp->data : "";
	size_t n = tmp->len, i = 0, count = 0;
	size_t mark = out->len;
	for (;;) {
		mime_skip_cfws(s, n, &i, NULL);
		size_t off = i;
		size_t len = mime_read_token(s, n, &i);
		if (len == 0)
			break;
		if (buf_puts(out, count == 0 ? "(" : " ") < 0 ||
		    mime_imap_string(out, s + off, len) < 0)
			return -1;
		count++;
		mime_skip_cfws(s, n, &i, NULL);
		if (i >= n || s[i] != ',')
			break;
		i++;
	}
	if (count == 0) {
		out->len = mark;
		return buf_puts(out, "NIL");
	}
	return buf_putc(out, ')');
}

/* md5, disposition, language, location (multiparts have no md5). */
static int put_ext(const struct mime_tree *t, const struct mime_part *p, bool md5, struct buf *out,
		   struct buf *tmp)
{
	if (md5 && (buf_putc(out, ' ') < 0 || put_field(t, p, MIME_FLD_MD5, out, tmp) < 0))
		return -1;
	if (buf_putc(out, ' ') < 0 || put_disposition(t, p, out, tmp) < 0 ||
	    buf_putc(out, ' ') < 0 || put_language(t, p, out, tmp) < 0 || buf_putc(out, ' ') < 0 ||
	    put_field(t, p, MIME_FLD_LOC, out, tmp) < 0)
		return -1;
	return 0;
}

/* Content-Type of p re-read: type and subtype in tmp, params filled. */
static bool part_ctype(const struct mime_tree *t, const struct mime_part *p, struct buf *tmp,
		       size_t *to, size_t *tl, size_t *so, size_t *sl, struct mime_params *params)
{
	buf_reset(tmp);
	if (!p->type_valid || !mime_part_field(t, p, MIME_FLD_TYPE, tmp))
		return false;
	return mime_ctype_parse(tmp->data != NULL ? tmp->data : "", tmp->len, to, tl, so, sl,
				params);
}

static int put_body(const struct mime_tree *t, const struct mime_part *p, bool ext,
		    struct buf *out);

static int put_multipart(const struct mime_tree *t, const struct mime_part *p, bool ext,
			 struct buf *out)
{
	struct buf tmp = BUF_INIT;
	struct mime_params params = {0};
	size_t to, tl, so, sl;
	int r = buf_putc(out, '(');

	for (const struct mime_part *c = p->children; r == 0 && c != NULL; c = c->next)
		r = put_body(t, c, ext, out);
	if (r == 0 && p->children == NULL)
		r = buf_puts(out, ext ? "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
					"\"7bit\" 0 0 NIL NIL NIL NIL)"
				      : "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
					"\"7bit\" 0 0)");
	if (r == 0 && !part_ctype(t, p, &tmp, &to, &tl, &so, &sl, &params))
		r = -1; /* cannot happen: a multipart has a valid Content-Type */
	if (r == 0)
		r = buf_putc(out, ' ');
	if (r == 0)
		r = mime_imap_string(out, tmp.data + so, sl);
	if (r == 0 && ext) {
		struct buf tmp2 = BUF_INIT;
		if (buf_putc(out, ' ') < 0 || put_params(out, &params, false) < 0 ||
		    put_ext(t, p, false, out, &tmp2) < 0)
			r = -1;
		buf_free(&tmp2);
	}
	if (r == 0)
		r = buf_putc(out, ')');
	mime_params_free(&params);
	buf_free(&tmp);
	return r;
}

static int put_leaf(const struct mime_tree *t, const struct mime_part *p, bool ext, struct buf *out)
{
	struct buf tmp = BUF_INIT;
	struct mime_params params = {0};
	size_t to, tl, so, sl;
	bool text = true;
	int r = buf_putc(out, '(');

	if (r < 0)
		return -1;
	if (p->opaque) {
		r = buf_puts(out, "\"text\" \"plain\" (\"charset\" \"us-ascii\")");
	} else if (p->kind == MIME_KIND_MESSAGE) {
		text = false;
		r = buf_puts(out,
			     p->global ? "\"message\" \"global\" " : "\"message\" \"rfc822\" ");
		if (r == 0 && part_ctype(t, p, &tmp, &to, &tl, &so, &sl, &params))
			r = put_params(out, &params, false);
		else if (r == 0)
			r = buf_puts(out, "NIL");
	} else if (part_ctype(t, p, &tmp, &to, &tl, &so, &sl, &params)) {
		text = p->kind == MIME_KIND_TEXT;
		if (mime_imap_string(out, tmp.data + to, tl) < 0 || buf_putc(out, ' ') < 0 ||
		    mime_imap_string(out, tmp.data + so, sl) < 0 || buf_putc(out, ' ') < 0 ||
		    put_params(out, &params, text) < 0)
			r = -1;
	} else {
		/* RFC 2045 5.2: missing or broken Content-Type */
		r = buf_puts(out, "\"text\" \"plain\" (\"charset\" \"us-ascii\")");
	}
	mime_params_free(&params);

	if (r == 0 && (buf_putc(out, ' ') < 0 || put_field(t, p, MIME_FLD_ID, out, &tmp) < 0 ||
		       buf_putc(out, ' ') < 0 || put_field(t, p, MIME_FLD_DESC, out, &tmp) < 0 ||
		       buf_putc(out, ' ') < 0 || put_encoding(t, p, out, &tmp) < 0 ||
		       buf_printf(out, " %zu", p->body_len) < 0))
		r = -1;
	if (r == 0 && !p->opaque && p->kind == MIME_KIND_MESSAGE) {
		const struct mime_part *m = p->children;
		if (m == NULL || buf_putc(out, ' ') < 0 || put_envelope(t, m, out) < 0 ||
		    buf_putc(out, ' ') < 0 || put_body(t, m, ext, out) < 0 ||
		    buf_printf(out, " %zu", p->lines) < 0)
			r = -1;
	} else if (r == 0 && text) {
		r = buf_printf(out, " %zu", p->lines);
	}
	if (r == 0 && ext)
		r = put_ext(t, p, true, out, &tmp);
	if (r == 0)
		r = buf_putc(out, ')');
	buf_free(&tmp);
	return r < 0 ? -1 : 0;
}

/* Recursion depth is bounded by MIME_MAX_DEPTH (the tree's depth). */
static int put_body(const struct mime_tree *t, const struct mime_part *p, bool ext, struct buf *out)
{
	if (p->kind == MIME_KIND_MULTIPART && !p->opaque)
		return put_multipart(t, p, ext, out);
	return put_leaf(t, p, ext, out);
}

int mime_imap_bodystructure(const struct mime_tree *t, bool extended, struct buf *out)
{
	if (t == NULL || out == NULL)
		return -1;
	return put_body(t, t->root, extended, out);
}
