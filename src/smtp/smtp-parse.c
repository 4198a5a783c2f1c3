/*
 * smtp-parse.c - one SMTP command line into a struct smtp_cmd (see
 * smtp-parse.h).
 *
 * SMTP layer, below smtp-session.c: this file only knows the grammar of
 * RFC 5321 4.1.1 and of the extensions we advertise (SIZE, 8BITMIME,
 * BINARYMIME/CHUNKING, SMTPUTF8, STARTTLS, AUTH, DSN).  Whether a command is
 * allowed now is the session's business.  Pure and allocation-free so it
 * can be fuzzed and fed every prefix of a line in the unit tests.
 */
#include "smtp-parse.h"

#include <stdlib.h>

#include "header.h"
#include "xalloc.h"

#include <string.h>

#include "strutil.h"

enum arg_kind {
	ARG_NONE,     /* nothing may follow the verb */
	ARG_ANY,      /* anything, possibly nothing */
	ARG_REQUIRED, /* anything, but not nothing */
	ARG_SPECIAL,  /* parsed by the verb's own function */
};

static const struct verb_info {
	const char *name;
	enum smtp_verb verb;
	enum arg_kind args;
} verbs[] = {
	{"HELO", SMTP_VERB_HELO, ARG_REQUIRED},
	{"EHLO", SMTP_VERB_EHLO, ARG_REQUIRED},
	{"MAIL", SMTP_VERB_MAIL, ARG_SPECIAL},
	{"RCPT", SMTP_VERB_RCPT, ARG_SPECIAL},
	{"DATA", SMTP_VERB_DATA, ARG_NONE},
	{"BDAT", SMTP_VERB_BDAT, ARG_SPECIAL},
	{"RSET", SMTP_VERB_RSET, ARG_NONE},
	{"NOOP", SMTP_VERB_NOOP, ARG_ANY},
	{"QUIT", SMTP_VERB_QUIT, ARG_NONE},
	{"HELP", SMTP_VERB_HELP, ARG_ANY},
	{"VRFY", SMTP_VERB_VRFY, ARG_ANY},
	{"EXPN", SMTP_VERB_EXPN, ARG_ANY},
	{"STARTTLS", SMTP_VERB_STARTTLS, ARG_NONE},
	{"AUTH", SMTP_VERB_AUTH, ARG_REQUIRED},
};

static bool is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool is_esmtp_keyword(const char *p, size_t n)
{
	if (n == 0 || !is_alnum(p[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(p[i]) && p[i] != '-')
			return false;
	return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126); no value we accept is non-ASCII */
static bool is_esmtp_value(const char *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch < 33 || ch > 126 || ch == '=')
			return false;
	}
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1; /* RFC 3461: "two upper case hexadecimal digits" */
}

int smtp_parse_xtext_decode(const char *p, size_t n, char *out, size_t outsz)
{
	size_t o = 0;
	if (outsz == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '+') {
			if (n - i < 3)
				return -1;
			int hi = hex_value(p[i + 1]), lo = hex_value(p[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return -1; /* xchar is "!".."~" but "+" and "=" */
		}
		/* RFC 3461 4.2, 4.4: printable US-ASCII once decoded. */
		if (c < 0x20 || c > 0x7e || o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (int)o;
}

/* Copies a valid xtext value of at most max bytes (as sent) to out. */
static bool take_xtext(const char *val, size_t val_len, size_t max, char *out)
{
	char tmp[SMTP_DSN_ORCPT_MAX + 1];
	if (val_len == 0 || val_len > max ||
	    smtp_parse_xtext_decode(val, val_len, tmp, sizeof tmp) < 0)
		return false;
	memcpy(out, val, val_len);
	out[val_len] = '\0';
	return true;
}

/* atext of RFC 5322 (an atom's characters), for ORCPT's addr-type. */
static bool is_atext(char ch)
{
	return is_alnum(ch) || (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* ORCPT value: addr-type ";" xtext, at most SMTP_DSN_ORCPT_MAX bytes. */
static bool take_orcpt(const char *val, size_t val_len, char *out)
{
	const char *semi = memchr(val, ';', val_len);
	if (semi == NULL || semi == val || val_len > SMTP_DSN_ORCPT_MAX)
		return false;
	for (const char *q = val; q < semi; q++)
		if (!is_atext(*q))
			return false;
	size_t type_len = (size_t)(semi - val);
	if (!take_xtext(semi + 1, val_len - type_len - 1, SMTP_DSN_ORCPT_MAX, out))
		return false;
	memcpy(out, val, val_len); /* the whole value, addr-type included */
	out[val_len] = '\0';
	return true;
}

/* NOTIFY value: "NEVER" or a comma list of SUCCESS, FAILURE, DELAY (any
 * case, RFC 3461 4.1).  0 if invalid. */
static unsigned parse_notify(const char *val, size_t val_len)
{
	static const struct {
		const char *name;
		unsigned bit;
	} words[] = {
	    {"NEVER", SMTP_DSN_NOTIFY_NEVER},
	    {"SUCCESS", SMTP_DSN_NOTIFY_SUCCESS},
	    {"FAILURE", SMTP_DSN_NOTIFY_FAILURE},
	    {"DELAY", SMTP_DSN_NOTIFY_DELAY},
	};
	unsigned bits = 0;
	size_t i = 0, count = 0;
	for (;;) {
		size_t start = i;
		while (i < val_len && val[i] != ',')
			i++;
		unsigned bit = 0;
		for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
			if (strutil_eq_ci(val + start, i - start, words[k].name))
				bit = words[k].bit;
		if (bit == 0)
			return 0; /* unknown or empty element */
		bits |= bit;
		count++;
		if (i == val_len)
			break;
		i++; /* the comma */
	}
	/* "the NEVER keyword MUST appear by itself" */
	if ((bits & SMTP_DSN_NOTIFY_NEVER) && count > 1)
		return 0;
	return bits;
}

/*
 * Parameters after a path: *( SP esmtp-param ).  Blanks between them are
 * tolerated; the line's trailing blanks were already cut off.  MAIL takes
 * SIZE, BODY, SMTPUTF8, REQUIRETLS, RET and ENVID; RCPT takes NOTIFY and
 * ORCPT.  A
 * DSN parameter that is repeated or whose value is bad is
 * SMTP_PARSE_BAD_DSN (501, RFC 3461 5.1); any other problem
 * SMTP_PARSE_BAD_PARAM.  Nothing is written to cmd before the whole list
 * is known to be good.
 */
static enum smtp_parse_error parse_params(const char *p, size_t n, bool mail, struct smtp_cmd *cmd)
{
	bool has_size = false, has_body = false, smtputf8 = false, requiretls = false;
	uint64_t size = 0;
	enum smtp_body_type body = SMTP_BODY_DEFAULT;
	enum smtp_dsn_ret ret = SMTP_DSN_RET_NONE;
	bool has_envid = false, has_orcpt = false;
	char envid[SMTP_DSN_ENVID_MAX + 1] = "";
	char orcpt[SMTP_DSN_ORCPT_MAX + 1] = "";
	unsigned notify = 0;
	size_t i = 0;

	while (i < n) {
		if (p[i] != ' ')
			return SMTP_PARSE_SYNTAX; /* "<a@b>SIZE=1" */
		while (i < n && p[i] == ' ')
			i++;
		size_t start = i;
		while (i < n && p[i] != ' ')
			i++;
		const char *kw = p + start;
		const char *eq = memchr(kw, '=', i - start);
		size_t kw_len = eq != NULL ? (size_t)(eq - kw) : i - start;
		const char *val = eq != NULL ? eq + 1 : NULL;
		size_t val_len = eq != NULL ? (size_t)(p + i - val) : 0;

		if (!is_esmtp_keyword(kw, kw_len))
			return SMTP_PARSE_BAD_PARAM;
		bool good_val = val != NULL && is_esmtp_value(val, val_len);
		if (!mail && strutil_eq_ci(kw, kw_len, "NOTIFY")) {
			if (notify != 0 || !good_val || (notify = parse_notify(val, val_len)) == 0)
				return SMTP_PARSE_BAD_DSN;
		} else if (!mail && strutil_eq_ci(kw, kw_len, "ORCPT")) {
			if (has_orcpt || !good_val || !take_orcpt(val, val_len, orcpt))
				return SMTP_PARSE_BAD_DSN;
			has_orcpt = true;
		} else if (mail && strutil_eq_ci(kw, kw_len, "RET")) {
			if (ret != SMTP_DSN_RET_NONE || !good_val)
				return SMTP_PARSE_BAD_DSN;
			if (strutil_eq_ci(val, val_len, "FULL"))
				ret = SMTP_DSN_RET_FULL;
			else if (strutil_eq_ci(val, val_len, "HDRS"))
				ret = SMTP_DSN_RET_HDRS;
			else
				return SMTP_PARSE_BAD_DSN;
		} else if (mail && strutil_eq_ci(kw, kw_len, "ENVID")) {
			if (has_envid || !good_val ||
			    !take_xtext(val, val_len, SMTP_DSN_ENVID_MAX, envid))
				return SMTP_PARSE_BAD_DSN;
			has_envid = true;
		} else if (!mail) {
			return SMTP_PARSE_BAD_PARAM;
		} else if (val != NULL && !good_val) {
			return SMTP_PARSE_BAD_PARAM;
		} else if (strutil_eq_ci(kw, kw_len, "SIZE")) {
			/* RFC 1870: size-value = 1*20DIGIT.  Twenty digits can
			 * pass 2^64: such a size is valid syntax and simply too
			 * big, so it saturates rather than failing the parse. */
			if (has_size || val == NULL || val_len == 0 || val_len > 20)
				return SMTP_PARSE_BAD_PARAM;
			for (size_t d = 0; d < val_len; d++)
				if (val[d] < '0' || val[d] > '9')
					return SMTP_PARSE_BAD_PARAM;
			if (strutil_parse_u64(val, val_len, UINT64_MAX, &size) < 0)
				size = UINT64_MAX;
			has_size = true;
		} else if (strutil_eq_ci(kw, kw_len, "BODY")) {
			if (has_body || val == NULL)
				return SMTP_PARSE_BAD_PARAM;
			if (strutil_eq_ci(val, val_len, "7BIT"))
				body = SMTP_BODY_7BIT;
			else if (strutil_eq_ci(val, val_len, "8BITMIME"))
				body = SMTP_BODY_8BITMIME;
			else if (strutil_eq_ci(val, val_len, "BINARYMIME"))
				body = SMTP_BODY_BINARYMIME;
			else
				return SMTP_PARSE_BAD_PARAM;
			has_body = true;
		} else if (strutil_eq_ci(kw, kw_len, "SMTPUTF8")) {
			if (smtputf8 || val != NULL)
				return SMTP_PARSE_BAD_PARAM;
			smtputf8 = true;
		} else if (strutil_eq_ci(kw, kw_len, "REQUIRETLS")) {
			if (requiretls || val != NULL)
				return SMTP_PARSE_BAD_PARAM;
			requiretls = true;
		} else {
			/* Unknown, or not advertised: AUTH's AUTH=, MT-PRIORITY, ... */
			return SMTP_PARSE_BAD_PARAM;
		}
	}
	cmd->has_size = has_size;
	cmd->size = size;
	cmd->body = body;
	cmd->smtputf8 = smtputf8;
	cmd->requiretls = requiretls;
	cmd->ret = ret;
	cmd->notify = notify;
	memcpy(cmd->envid, envid, sizeof envid);
	memcpy(cmd->orcpt, orcpt, sizeof orcpt);
	return SMTP_PARSE_OK;
}

/*
 * "MAIL FROM:" / "RCPT TO:" then the path and its parameters.  rest points
 * just after the verb.  The path is parsed with UTF-8 allowed so that its
 * end is found before the parameters say whether UTF-8 was allowed.
 */
static enum smtp_parse_error parse_path_cmd(const char *rest, size_t n, bool utf8_ok,
					    struct smtp_cmd *cmd)
{
	bool mail = cmd->verb == SMTP_VERB_MAIL;
	const char *intro = mail ? " FROM:" : " TO:";
	size_t intro_len = strlen(intro), used = 0;
	enum addr_error ae;

	if (!strutil_prefix_ci(rest, n, intro))
		return SMTP_PARSE_SYNTAX;
	const char *path = rest + intro_len;
	size_t plen = n - intro_len;
	if (plen > 0 && path[0] == ' ') { /* common client habit */
		path++;
		plen--;
	}
	if (plen == 0 || path[0] != '<')
		return SMTP_PARSE_SYNTAX;

	if (!mail && strutil_prefix_ci(path, plen, "<postmaster>")) {
		/* RFC 5321 4.1.1.3: the one forward path without a domain.  The
		 * caller supplies our domain. */
		memcpy(cmd->addr.local, "postmaster", sizeof "postmaster");
		used = strlen("<postmaster>");
		ae = ADDR_OK;
	} else {
		ae = addr_parse_path(path, plen, true, mail, &cmd->addr, &cmd->null_path, &used);
	}
	if (ae == ADDR_ERR_UTF8) {
		/* Invalid UTF-8: its end is unknown, so the parameters cannot be
		 * parsed; look for the SMTPUTF8 word to pick the better reply. */
		if (utf8_ok || (mail && strutil_has_word_ci(path, plen, "SMTPUTF8")))
			return SMTP_PARSE_BAD_ADDR;
		return SMTP_PARSE_NEED_UTF8;
	}
	if (ae == ADDR_ERR_TOO_LONG)
		return SMTP_PARSE_TOO_LONG;
	if (ae != ADDR_OK)
		return SMTP_PARSE_BAD_ADDR;

	enum smtp_parse_error pe = parse_params(path + used, plen - used, mail, cmd);
	if (pe != SMTP_PARSE_OK)
		return pe;
	/* Checks the source route too, which has_utf8 does not cover. */
	bool allowed = utf8_ok || cmd->smtputf8;
	if (!allowed) {
		for (size_t i = 0; i < used; i++)
			if ((unsigned char)path[i] >= 0x80)
				return SMTP_PARSE_NEED_UTF8;
	}
	return SMTP_PARSE_OK;
}

/* RFC 3030: "BDAT" SP chunk-size [ SP end-marker ], end-marker = "LAST" */
static enum smtp_parse_error parse_bdat(const char *rest, size_t n, struct smtp_cmd *cmd)
{
	size_t i = 0;
	while (i < n && rest[i] == ' ')
		i++;
	size_t start = i;
	while (i < n && rest[i] != ' ')
		i++;
	if (start == 0 || strutil_parse_u64(rest + start, i - start, UINT64_MAX, &cmd->chunk_size) < 0)
		return SMTP_PARSE_SYNTAX;
	while (i < n && rest[i] == ' ')
		i++;
	if (i == n)
		return SMTP_PARSE_OK;
	if (!strutil_eq_ci(rest + i, n - i, "LAST"))
		return SMTP_PARSE_SYNTAX;
	cmd->last = true;
	return SMTP_PARSE_OK;
}

enum smtp_parse_error smtp_parse_command(const char *line, size_t n, bool utf8_ok,
					 struct smtp_cmd *cmd)
{
	const struct verb_info *vi = NULL;
	size_t vlen = 0;

	memset(cmd, 0, sizeof *cmd);
	while (vlen < n && line[vlen] != ' ' && line[vlen] != '\0')
		vlen++;
	for (size_t k = 0; k < sizeof verbs / sizeof verbs[0]; k++) {
		if (strutil_eq_ci(line, vlen, verbs[k].name)) {
			vi = &verbs[k];
			break;
		}
	}
	cmd->verb = vi != NULL ? vi->verb : SMTP_VERB_UNKNOWN;
	/* NUL, and CR or LF that the line reader should have taken off, would
	 * smuggle bytes past logs or into Received: through an argument. */
	if (memchr(line, '\0', n) != NULL || memchr(line, '\r', n) != NULL ||
	    memchr(line, '\n', n) != NULL)
		return SMTP_PARSE_SYNTAX;
	if (vi == NULL)
		return SMTP_PARSE_UNKNOWN;

	/* Trailing blanks are never significant; some clients send them. */
	size_t end = n;
	while (end > vlen && (line[end - 1] == ' ' || line[end - 1] == '\t'))
		end--;
	const char *rest = line + vlen; /* empty or starts with SP */
	size_t rest_len = end - vlen;

	switch (vi->args) {
	case ARG_NONE:
		return rest_len == 0 ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX;
	case ARG_ANY:
	case ARG_REQUIRED: {
		size_t i = 0;
		while (i < rest_len && rest[i] == ' ')
			i++;
		if (i < rest_len) {
			cmd->arg = rest + i;
			cmd->arg_len = rest_len - i;
		} else if (vi->args == ARG_REQUIRED) {
			return SMTP_PARSE_SYNTAX;
		}
		return SMTP_PARSE_OK;
	}
	case ARG_SPECIAL:
		break;
	}
	if (cmd->verb == SMTP_VERB_BDAT)
		return parse_bdat(rest, rest_len, cmd);
	return parse_path_cmd(rest, rest_len, utf8_ok, cmd);
}

/* ------------------------------------------------ header address lists */

#define ELEM_MAX (ADDR_PATH_MAX + 8)

/* One element of an address list as it is collected: the text outside
 * comments and blanks (quoted strings and domain literals kept whole) and,
 * if the element had one, what stood inside <...>. */
struct elem {
	char text[ELEM_MAX];
	size_t text_len;
	char angle[ELEM_MAX];
	size_t angle_len;
	bool has_angle;
	bool over; /* something did not fit: not an address we accept */
};

static void elem_put(struct elem *e, bool angle, char c)
{
	char *buf = angle ? e->angle : e->text;
	size_t *len = angle ? &e->angle_len : &e->text_len;
	if (*len + 1 >= ELEM_MAX) {
		e->over = true;
		return;
	}
	buf[(*len)++] = c;
}

/* Ends one element: its address (if any) goes to out[*count]. */
static int elem_finish(struct elem *e, struct addr *out, size_t max, size_t *count)
{
	const char *p = e->has_angle ? e->angle : e->text;
	size_t n = e->has_angle ? e->angle_len : e->text_len;
	int r = 0;
	if (e->over) {
		r = -1;
	} else if (n == 0) {
		r = e->has_angle ? -1 : 0; /* "<>" is no address; ",," is allowed */
	} else {
		if (e->has_angle && p[0] == '@') {
			/* obs-route: "@a,@b:" before the address */
			const char *colon = memchr(p, ':', n);
			if (colon == NULL)
				return -1;
			n -= (size_t)(colon + 1 - p);
			p = colon + 1;
		}
		if (*count >= max || addr_parse_mailbox(p, n, true, &out[*count]) != ADDR_OK)
			r = -1;
		else
			(*count)++;
	}
	memset(e, 0, sizeof *e);
	return r;
}

int smtp_parse_address_list(const char *v, size_t n, struct addr *out, size_t max)
{
	struct elem e;
	memset(&e, 0, sizeof e);
	size_t count = 0;
	bool in_angle = false, in_group = false;
	if (max > SMTP_MAX_HEADER_ADDRS)
		max = SMTP_MAX_HEADER_ADDRS;
	size_t i = 0;
	while (i < n) {
		char c = v[i];
		if (c == '(') { /* comment, maybe nested, with quoted-pairs */
			unsigned depth = 0;
			for (; i < n; i++) {
				if (v[i] == '\\')
					i++;
				else if (v[i] == '(')
					depth++;
				else if (v[i] == ')' && --depth == 0)
					break;
			}
			if (i >= n)
				return -1;
			i++;
			continue;
		}
		if (c == '"' || c == '[') { /* quoted string or domain literal */
			char close = c == '"' ? '"' : ']';
			elem_put(&e, in_angle, c);
			for (i++; i < n && v[i] != close; i++) {
				if (v[i] == '\r' || v[i] == '\n')
					continue; /* folding */
				if (v[i] == '\\') {
					if (i + 1 >= n)
						return -1;
					elem_put(&e, in_angle, v[i++]);
				}
				elem_put(&e, in_angle, v[i]);
			}
			if (i >= n)
				return -1;
			elem_put(&e, in_angle, close);
			i++;
			continue;
		}
		bool blank = c == ' ' || c == '\t' || c == '\r' || c == '\n';
		if (in_angle) {
			if (c == '>')
				in_angle = false;
			else if (c == '<')
				return -1;
			else if (!blank)
				elem_put(&e, true, c);
			i++;
			continue;
		}
		switch (c) {
		case '<':
			if (e.has_angle)
				return -1;
			in_angle = e.has_angle = true;
			break;
		case '>':
			return -1;
		case ':': /* group: what came before is its display name */
			if (in_group)
				return -1;
			in_group = true;
			memset(&e, 0, sizeof e);
			break;
		case ';':
			if (!in_group || elem_finish(&e, out, max, &count) < 0)
				return -1;
			in_group = false;
			break;
		case ',':
			if (elem_finish(&e, out, max, &count) < 0)
				return -1;
			break;
		default:
			if (!blank)
				elem_put(&e, false, c);
			break;
		}
		i++;
	}
	if (in_angle || elem_finish(&e, out, max, &count) < 0)
		return -1;
	return (int)count;
}

/* The one RFC5322.From domain DMARC is about: "" when the message has no
 * From:, several, or addresses of different domains (RFC 7489 6.6.1). */
void smtp_parse_from_address(const char *msg, size_t n, char out[ADDR_PATH_MAX + 1])
{
	out[0] = '\0';
	struct header h = {0};
	if (header_parse(msg, n, &h) != HEADER_OK)
		return;
	const struct header_field *f = header_find(&h, "From");
	struct addr a[2];
	if (f != NULL && header_count(&h, "From") == 1 &&
	    smtp_parse_address_list(f->value, f->value_len, a, 2) == 1 && !a[0].domain_is_literal &&
	    a[0].domain[0] != '\0')
		(void)addr_format(&a[0], out, ADDR_PATH_MAX + 1);
	header_free(&h);
}

void smtp_parse_from_domain(const char *msg, size_t n, char out[ADDR_DOMAIN_MAX + 1])
{
	out[0] = '\0';
	struct header h = {0};
	if (header_parse(msg, n, &h) != HEADER_OK)
		return;
	const struct header_field *f = header_find(&h, "From");
	struct addr *a = xcalloc(SMTP_MAX_HEADER_ADDRS, sizeof *a);
	int k;
	if (f != NULL && header_count(&h, "From") == 1 &&
	    (k = smtp_parse_address_list(f->value, f->value_len, a, SMTP_MAX_HEADER_ADDRS)) > 0) {
		bool same = !a[0].domain_is_literal;
		for (int i = 1; i < k && same; i++)
			same = strcmp(a[i].domain, a[0].domain) == 0;
		if (same)
			memcpy(out, a[0].domain, sizeof a[0].domain);
	}
	free(a);
	header_free(&h);
}
