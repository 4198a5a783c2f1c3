/*
 * spf.c - SPF check_host() (RFC 7208) as a restartable state machine (see
 * spf.h).  Part of src/mailauth: above src/lib, no I/O; the SMTP receiver
 * and `tern auth-check` run the DNS queries it asks for.
 *
 * How the state machine works: check_host() is written here as the plain
 * recursive function of RFC 7208 4-6, reading DNS through a memo of the
 * answers received so far.  When it needs an answer it does not have, it
 * records the question and unwinds (R_NEED) all the way out; spf_step()
 * hands the question to the caller, spf_answer() adds the answer to the
 * memo, and the next spf_step() runs check_host() again from the start.
 * Every run is deterministic, so it retraces the same path with the memo
 * and gets one question further.  The limits of 4.6.4 bound the questions
 * to a few dozen (SPF_MAX_QUERIES is a second fence), and a run costs
 * microseconds, so replaying is far simpler than saving a recursion's
 * state by hand and costs nothing that matters.
 */
#include "spf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "strutil.h"
#include "xalloc.h"

#define R_NEED (-2)   /* an answer is missing: unwind, ask, run again */
#define M_MATCH 100   /* a mechanism matched */
#define M_NOMATCH 101 /* it did not */
#define VALUE_MAX 512 /* longest identity (sender, HELO) we accept */
#define NAME_BUF (SPF_DOMAIN_MAX + 1)

/* ------------------------------------------------------------ addresses */

int spf_ip_parse(const char *text, struct spf_ip *out)
{
	memset(out, 0, sizeof *out);
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, text, &a4) == 1) {
		out->family = AF_INET;
		memcpy(out->addr, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &a6) != 1)
		return -1;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(&a6, mapped, 12) == 0) {
		out->family = AF_INET;
		memcpy(out->addr, (const uint8_t *)&a6 + 12, 4);
		return 0;
	}
	out->family = AF_INET6;
	memcpy(out->addr, &a6, 16);
	return 0;
}

static unsigned ip_bits(const struct spf_ip *ip)
{
	return ip->family == AF_INET ? 32 : 128;
}

/* Number of leading bits a[0..bits) and b share. */
static unsigned common_prefix(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned n = 0;
	for (unsigned i = 0; i < bits / 8; i++) {
		uint8_t x = a[i] ^ b[i];
		if (x == 0) {
			n += 8;
			continue;
		}
		while (!(x & 0x80)) {
			n++;
			x = (uint8_t)(x << 1);
		}
		return n;
	}
	return n;
}

/* ----------------------------------------------------------- char sets */

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_alpha(c) || is_digit(c);
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* RFC 3986 "unreserved". */
static bool is_unreserved(char c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* A domain name in presentation form, no trailing dot: labels of 1..63
 * printable ASCII bytes, at most 253 bytes.  A space is printable here: a
 * DNS label holds any byte (RFC 2181 11) and "%_" puts spaces in a target
 * name (RFC 7208 4.8 note, 7.3; the OpenSPF suite's macro-mania-in-domain
 * looks one up).  ldh: only letters, digits, '-' and '_' (the identity's
 * own domain, 4.3); multi: two labels or more. */
static bool valid_domain(const char *d, size_t n, bool ldh, bool multi)
{
	if (n == 0 || n > SPF_DOMAIN_MAX)
		return false;
	size_t label = 0, labels = 1;
	for (size_t i = 0; i < n; i++) {
		char c = d[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			labels++;
			continue;
		}
		if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e)
			return false;
		if (ldh && !(is_alnum(c) || c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && (!multi || labels >= 2);
}

/* name equals domain or is a subdomain of it (ASCII case-insensitive). */
static bool within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);
	if (d > n)
		return false;
	if (strncasecmp(name + n - d, domain, d) != 0)
		return false;
	return n == d || name[n - d - 1] == '.';
}

/* ----------------------------------------------------------------- macros */

struct mctx {
	const char *sender, *local, *odomain, *domain, *helo, *receiver;
	const struct spf_ip *ip;
	time_t now;
	/* %{p}: 0 with *out set, R_NEED, or -1 (limit exceeded).  NULL:
	 * "unknown" without DNS. */
	int (*get_p)(void *arg, const char **out);
	void *arg;
};

/* One token of a macro-string. */
struct mtok {
	bool is_macro;  /* else a literal byte (lit) */
	char lit;       /* for literals and %%, %_ (and '-' means "%20") */
	bool escaped20; /* "%-" */
	char letter;    /* lower-case macro letter */
	bool upper;     /* URL-escape the expansion */
	unsigned keep;  /* rightmost parts to keep; 0 = all */
	bool reverse;
	char delims[8]; /* NUL-terminated; "" = "." */
};

static bool is_delim(char c)
{
	return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

/* Reads one token of s[*i..n).  explain: exp text (SP and c, r, t
 * allowed).  Returns 0 or -1 (syntax error). */
static int mtok_next(const char *s, size_t n, size_t *i, bool explain, struct mtok *t)
{
	memset(t, 0, sizeof *t);
	char c = s[*i];
	if (c != '%') {
		bool ok =
		    ((unsigned char)c >= 0x21 && (unsigned char)c <= 0x7e) || (explain && c == ' ');
		if (!ok)
			return -1;
		t->lit = c;
		(*i)++;
		return 0;
	}
	if (*i + 1 >= n)
		return -1;
	char d = s[*i + 1];
	if (d == '%' || d == '_' || d == '-') {
		t->lit = d == '%' ? '%' : ' ';
		t->escaped20 = d == '-';
		*i += 2;
		return 0;
	}
	if (d != '{')
		return -1;
	size_t j = *i + 2;
	if (j >= n)
		return -1;
	char L = s[j++];
	char l = lower(L);
	if (strchr("slodiphv", l) == NULL && !(explain && strchr("crt", l) != NULL))
		return -1;
	if (!is_alpha(L))
		return -1;
	t->is_macro = true;
	t->letter = l;
	t->upper = L != l;
	size_t digits = 0;
	unsigned keep = 0;
	while (j < n && is_digit(s[j])) {
		if (keep < 1000) /* more than any name has parts: "all" */
			keep = keep * 10 + (unsigned)(s[j] - '0');
		j++;
		digits++;
	}
	if (digits > 0 && keep == 0)
		return -1; /* 7.3: the value MUST be nonzero */
	t->keep = keep;
	if (j < n && lower(s[j]) == 'r') {
		t->reverse = true;
		j++;
	}
	size_t nd = 0;
	while (j < n && is_delim(s[j])) {
		if (nd + 1 < sizeof t->delims && strchr(t->delims, s[j]) == NULL)
			t->delims[nd++] = s[j];
		j++;
	}
	if (j >= n || s[j] != '}')
		return -1;
	*i = j + 1;
	return 0;
}

/* Checks that s[0..n) is a macro-string (explain: an explain-string). */
static bool macro_string_valid(const char *s, size_t n, bool explain)
{
	struct mtok t;
	for (size_t i = 0; i < n;)
		if (mtok_next(s, n, &i, explain, &t) < 0)
			return false;
	return true;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) /
 *            ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool valid_toplabel(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	bool alpha = false, hyphen = false;
	for (size_t i = 0; i < n; i++) {
		if (is_alpha(s[i]))
			alpha = true;
		else if (s[i] == '-')
			hyphen = true;
		else if (!is_digit(s[i]))
			return false;
	}
	return alpha || hyphen;
}

/* domain-spec = macro-string domain-end;
 * domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static bool domain_spec_valid(const char *s, size_t n)
{
	if (n == 0)
		return false;
	struct mtok t;
	size_t lit_start = 0; /* start of the literal run at the end */
	bool last_macro = false;
	for (size_t i = 0; i < n;) {
		size_t at = i;
		if (mtok_next(s, n, &i, false, &t) < 0)
			return false;
		/* %%, %_ and %- are macro-expands too (7.1). */
		last_macro = t.is_macro || s[at] == '%';
		if (last_macro)
			lit_start = i;
	}
	if (last_macro)
		return true;
	size_t end = n;
	if (end > lit_start && s[end - 1] == '.')
		end--;
	size_t k = end;
	while (k > lit_start && s[k - 1] != '.')
		k--;
	if (k == lit_start)
		return false; /* no "." before the top label in the literal tail */
	return valid_toplabel(s + k, end - k);
}

struct out {
	char *p;
	size_t n, cap; /* cap excludes the NUL */
	bool over;
};

static void out_put(struct out *o, char c)
{
	if (o->n >= o->cap) {
		o->over = true;
		return;
	}
	o->p[o->n++] = c;
}

static void out_str(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out_put(o, s[i]);
}

static void ip_dotted(const struct spf_ip *ip, char *buf, size_t bufsz)
{
	if (ip->family == AF_INET) {
		snprintf(buf, bufsz, "%u.%u.%u.%u", ip->addr[0], ip->addr[1], ip->addr[2],
			 ip->addr[3]);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < 16 && o + 5 <= bufsz; i++) {
		buf[o++] = hex[ip->addr[i] >> 4];
		buf[o++] = '.';
		buf[o++] = hex[ip->addr[i] & 15];
		if (i < 15)
			buf[o++] = '.';
	}
	buf[o] = '\0';
}

/* Appends the expansion of one macro.  Returns 0, R_NEED or -1. */
static int expand_macro(const struct mctx *m, const struct mtok *t, struct out *o)
{
	char buf[80];
	const char *v = "";
	switch (t->letter) {
	case 's':
		v = m->sender;
		break;
	case 'l':
		v = m->local;
		break;
	case 'o':
		v = m->odomain;
		break;
	case 'd':
		v = m->domain;
		break;
	case 'h':
		v = m->helo;
		break;
	case 'i':
		ip_dotted(m->ip, buf, sizeof buf);
		v = buf;
		break;
	case 'c':
		if (inet_ntop(m->ip->family, m->ip->addr, buf, sizeof buf) == NULL)
			return -1;
		v = buf;
		break;
	case 'v':
		v = m->ip->family == AF_INET ? "in-addr" : "ip6";
		break;
	case 'r':
		v = m->receiver;
		break;
	case 't':
		snprintf(buf, sizeof buf, "%lld", (long long)m->now);
		v = buf;
		break;
	case 'p':
		if (m->get_p == NULL) {
			v = "unknown";
		} else {
			int rc = m->get_p(m->arg, &v);
			if (rc != 0)
				return rc;
		}
		break;
	default:
		return -1;
	}
	size_t len = strnlen(v, VALUE_MAX + 1);
	if (len > VALUE_MAX)
		return -1;
	/* Split into parts at any delimiter (empty parts kept, 7.3). */
	const char *delims = t->delims[0] ? t->delims : ".";
	uint16_t start[VALUE_MAX + 1], plen[VALUE_MAX + 1];
	size_t np = 0, s0 = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || strchr(delims, v[i]) != NULL) {
			start[np] = (uint16_t)s0;
			plen[np] = (uint16_t)(i - s0);
			np++;
			s0 = i + 1;
		}
	}
	if (t->reverse) {
		for (size_t a = 0, b = np - 1; a < b; a++, b--) {
			uint16_t x = start[a], y = plen[a];
			start[a] = start[b];
			plen[a] = plen[b];
			start[b] = x;
			plen[b] = y;
		}
	}
	size_t first = t->keep != 0 && t->keep < np ? np - t->keep : 0;
	for (size_t k = first; k < np; k++) {
		if (k > first)
			out_put(o, '.');
		for (size_t i = 0; i < plen[k]; i++) {
			char c = v[start[k] + i];
			if (t->upper && !is_unreserved(c)) {
				char esc[4];
				snprintf(esc, sizeof esc, "%%%02X", (unsigned char)c);
				out_str(o, esc, 3);
			} else {
				out_put(o, c);
			}
		}
	}
	return 0;
}

/* Expands s[0..n) into out (outsz bytes with the NUL).  as_domain: drop one
 * trailing dot, then cut labels from the left to 253 bytes (7.3).
 * Returns the length, R_NEED, or -1 (syntax, too long). */
static int expand(const struct mctx *m, const char *s, size_t n, bool explain, bool as_domain,
		  char *outbuf, size_t outsz)
{
	if (outsz == 0)
		return -1;
	struct out o = {outbuf, 0, outsz - 1, false};
	struct mtok t;
	for (size_t i = 0; i < n;) {
		if (mtok_next(s, n, &i, explain, &t) < 0)
			return -1;
		if (!t.is_macro) {
			if (t.escaped20)
				out_str(&o, "%20", 3);
			else
				out_put(&o, t.lit);
			continue;
		}
		int rc = expand_macro(m, &t, &o);
		if (rc != 0)
			return rc;
		if (o.over)
			return -1;
	}
	if (o.over)
		return -1;
	size_t len = o.n;
	size_t off = 0;
	if (as_domain) {
		if (len > 0 && outbuf[len - 1] == '.')
			len--;
		while (len - off > SPF_DOMAIN_MAX) {
			const char *dot = memchr(outbuf + off, '.', len - off);
			if (dot == NULL)
				return -1;
			off = (size_t)(dot - outbuf) + 1;
		}
		memmove(outbuf, outbuf + off, len - off);
		len -= off;
	}
	outbuf[len] = '\0';
	return (int)len;
}

/* Splits sender into local-part and domain (the last '@'); an empty or
 * missing local-part becomes "postmaster" (4.3). */
static void split_sender(const char *sender, char **local, char **domain, char **full)
{
	const char *at = strrchr(sender, '@');
	if (at == NULL) {
		*local = xstrdup("postmaster");
		*domain = xstrdup(sender);
	} else {
		size_t ll = (size_t)(at - sender);
		*local = ll ? xstrndup(sender, ll) : xstrdup("postmaster");
		*domain = xstrdup(at + 1);
	}
	size_t fl = strlen(*local) + 1 + strlen(*domain) + 1;
	*full = xmalloc(fl);
	snprintf(*full, fl, "%s@%s", *local, *domain);
}

int spf_macro_expand(const char *s, size_t n, const char *sender, const char *domain,
		     const struct spf_ip *ip, const char *helo, bool explain, bool as_domain,
		     char *out, size_t outsz)
{
	char *local, *odomain, *full;
	split_sender(sender, &local, &odomain, &full);
	struct mctx m = {full, local, odomain, domain, helo, "unknown", ip, 0, NULL, NULL};
	int rc = expand(&m, s, n, explain, as_domain, out, outsz);
	free(local);
	free(odomain);
	free(full);
	return rc < 0 ? -1 : rc;
}

/* ---------------------------------------------------------------- records */

enum term_kind {
	T_ALL,
	T_INCLUDE,
	T_A,
	T_MX,
	T_PTR,
	T_IP4,
	T_IP6,
	T_EXISTS,
	T_REDIRECT,
	T_EXP,
	T_UNKNOWN_MOD,
};

struct term {
	enum term_kind kind;
	enum spf_result qual;
	const char *text; /* the whole term, for reasons */
	size_t text_len;
	const char *arg; /* the domain-spec, NULL if none */
	size_t arg_len;
	unsigned cidr4, cidr6;
	uint8_t addr[16];
};

struct record {
	struct term t[SPF_MAX_TERMS];
	size_t n;
	int redirect, exp; /* index into t, or -1 */
	bool has_all;
};

/* A CIDR length: "0" or digits without a leading zero, <= max. */
static bool parse_cidr(const char *s, size_t n, unsigned max, unsigned *out)
{
	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return false;
	uint64_t v;
	if (strutil_parse_u64(s, n, max, &v) < 0)
		return false;
	*out = (unsigned)v;
	return true;
}

/* ip4-network: four qnums, each 0..255 without leading zeros. */
static bool parse_ip4(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		size_t st = i;
		while (i < n && is_digit(s[i]))
			i++;
		unsigned v;
		if (!parse_cidr(s + st, i - st, 255, &v))
			return false;
		out[part] = (uint8_t)v;
		if (part < 3) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == n;
}

/* Strips a dual-cidr-length from the end of s[0..*n). */
static bool strip_dual_cidr(const char *s, size_t *n, unsigned *c4, unsigned *c6)
{
	size_t e = *n, k = e;
	while (k > 0 && is_digit(s[k - 1]))
		k--;
	if (k < e && k >= 2 && s[k - 1] == '/' && s[k - 2] == '/') {
		if (!parse_cidr(s + k, e - k, 128, c6))
			return false;
		e = k - 2;
		k = e;
		while (k > 0 && is_digit(s[k - 1]))
			k--;
	}
	if (k < e && k >= 1 && s[k - 1] == '/') {
		if (!parse_cidr(s + k, e - k, 32, c4))
			return false;
		e = k - 1;
	}
	*n = e;
	return true;
}

/* Parses one term p[0..n) into t.  Returns 0 or -1 with why. */
static int parse_term(const char *p, size_t n, struct term *t, char *why, size_t whysz)
{
	memset(t, 0, sizeof *t);
	t->text = p;
	t->text_len = n;
	t->qual = SPF_PASS;
	t->cidr4 = 32;
	t->cidr6 = 128;
	int tl = n > 60 ? 60 : (int)n;
	/* A modifier: name "=" ... (name = ALPHA *( ALPHA / DIGIT / - _ . )) */
	if (is_alpha(p[0])) {
		size_t k = 1;
		while (k < n && (is_alnum(p[k]) || p[k] == '-' || p[k] == '_' || p[k] == '.'))
			k++;
		if (k < n && p[k] == '=') {
			const char *v = p + k + 1;
			size_t vn = n - k - 1;
			if (strutil_eq_ci(p, k, "redirect") || strutil_eq_ci(p, k, "exp")) {
				t->kind = lower(p[0]) == 'r' ? T_REDIRECT : T_EXP;
				if (!domain_spec_valid(v, vn)) {
					strutil_errf(why, whysz, "bad domain-spec in '%.*s'", tl,
						     p);
					return -1;
				}
				t->arg = v;
				t->arg_len = vn;
				return 0;
			}
			t->kind = T_UNKNOWN_MOD;
			if (!macro_string_valid(v, vn, false)) {
				strutil_errf(why, whysz, "bad macro-string in '%.*s'", tl, p);
				return -1;
			}
			return 0;
		}
	}
	size_t i = 0;
	switch (p[0]) {
	case '+':
		i = 1;
		break;
	case '-':
		t->qual = SPF_FAIL;
		i = 1;
		break;
	case '~':
		t->qual = SPF_SOFTFAIL;
		i = 1;
		break;
	case '?':
		t->qual = SPF_NEUTRAL;
		i = 1;
		break;
	default:
		break;
	}
	size_t ns = i;
	while (i < n && p[i] != ':' && p[i] != '/')
		i++;
	const char *name = p + ns;
	size_t nl = i - ns;
	const char *rest = p + i;
	size_t rn = n - i;
	static const struct {
		const char *name;
		enum term_kind kind;
	} mechs[] = {{"all", T_ALL}, {"include", T_INCLUDE}, {"a", T_A},     {"mx", T_MX},
		     {"ptr", T_PTR}, {"ip4", T_IP4},         {"ip6", T_IP6}, {"exists", T_EXISTS}};
	bool found = false;
	for (size_t k = 0; k < sizeof mechs / sizeof mechs[0]; k++)
		if (strutil_eq_ci(name, nl, mechs[k].name)) {
			t->kind = mechs[k].kind;
			found = true;
		}
	if (!found) {
		strutil_errf(why, whysz, "unknown mechanism '%.*s'", tl, p);
		return -1;
	}
	switch (t->kind) {
	case T_ALL:
		if (rn != 0)
			goto bad;
		return 0;
	case T_A:
	case T_MX:
		if (!strip_dual_cidr(rest, &rn, &t->cidr4, &t->cidr6))
			goto bad;
		/* fall through */
	case T_PTR:
		if (rn == 0)
			return 0;
		/* fall through */
	case T_INCLUDE:
	case T_EXISTS:
		if (rn < 2 || rest[0] != ':' || !domain_spec_valid(rest + 1, rn - 1))
			goto bad;
		t->arg = rest + 1;
		t->arg_len = rn - 1;
		return 0;
	case T_IP4:
	case T_IP6: {
		if (rn < 2 || rest[0] != ':')
			goto bad;
		const char *net = rest + 1;
		size_t nn = rn - 1;
		const char *slash = memchr(net, '/', nn);
		if (slash != NULL) {
			size_t cl = nn - (size_t)(slash - net) - 1;
			bool ok = t->kind == T_IP4 ? parse_cidr(slash + 1, cl, 32, &t->cidr4)
						   : parse_cidr(slash + 1, cl, 128, &t->cidr6);
			if (!ok)
				goto bad;
			nn = (size_t)(slash - net);
		}
		if (t->kind == T_IP4) {
			if (!parse_ip4(net, nn, t->addr))
				goto bad;
			return 0;
		}
		char buf[64];
		if (nn == 0 || nn >= sizeof buf)
			goto bad;
		memcpy(buf, net, nn);
		buf[nn] = '\0';
		struct in6_addr a6;
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			goto bad;
		memcpy(t->addr, &a6, 16);
		return 0;
	}
	default:
		break;
	}
bad:
	strutil_errf(why, whysz, "syntax error in '%.*s'", tl, p);
	return -1;
}

/* True if txt[0..n) starts with the version section "v=spf1" (then SP or
 * the end), case-insensitively (4.5). */
static bool is_spf_record(const char *txt, size_t n)
{
	return strutil_prefix_ci(txt, n, "v=spf1") && (n == 6 || txt[6] == ' ');
}

/* Parses a whole record (4.6: any syntax error is a permerror). */
static int parse_record(const char *txt, size_t n, struct record *r, char *why, size_t whysz)
{
	r->n = 0;
	r->redirect = r->exp = -1;
	r->has_all = false;
	if (n > SPF_RECORD_MAX) {
		strutil_errf(why, whysz, "record longer than %d bytes", SPF_RECORD_MAX);
		return -1;
	}
	if (!is_spf_record(txt, n)) {
		strutil_errf(why, whysz, "not a v=spf1 record");
		return -1;
	}
	size_t i = 6;
	for (;;) {
		while (i < n && txt[i] == ' ')
			i++;
		if (i >= n)
			break;
		size_t st = i;
		while (i < n && txt[i] != ' ')
			i++;
		if (r->n == SPF_MAX_TERMS) {
			strutil_errf(why, whysz, "more than %d terms", SPF_MAX_TERMS);
			return -1;
		}
		struct term *t = &r->t[r->n];
		if (parse_term(txt + st, i - st, t, why, whysz) < 0)
			return -1;
		if (t->kind == T_REDIRECT || t->kind == T_EXP) {
			int *slot = t->kind == T_REDIRECT ? &r->redirect : &r->exp;
			if (*slot >= 0) {
				strutil_errf(why, whysz, "%s= given twice",
					     t->kind == T_REDIRECT ? "redirect" : "exp");
				return -1;
			}
			*slot = (int)r->n;
		}
		if (t->kind == T_ALL)
			r->has_all = true;
		r->n++;
	}
	return 0;
}

int spf_record_check(const char *txt, size_t n, char *why, size_t whysz)
{
	struct record *r = xcalloc(1, sizeof *r);
	int rc = parse_record(txt, n, r, why, whysz);
	free(r);
	return rc;
}

/* ------------------------------------------------------------ the memo */

enum txt_purpose { TXT_SPF = 0, TXT_EXP };

struct memo {
	enum spf_qtype type;
	enum txt_purpose purpose;
	char name[NAME_BUF];
	enum spf_dns status;
	size_t n;   /* TXT: SPF records (TXT_SPF) or all records (TXT_EXP);
		     * A/AAAA: addresses of that size; MX/PTR: names */
	char *text; /* TXT: the first such record */
	size_t text_len;
	bool too_long;           /* it was longer than SPF_RECORD_MAX */
	unsigned best;           /* A/AAAA: longest prefix shared with the client IP */
	char (*names)[NAME_BUF]; /* MX/PTR: the first names (see n_names) */
	size_t n_names;
};

struct spf_check {
	struct spf_ip ip;
	char *helo, *sender, *local, *odomain, *receiver;
	time_t now;
	bool start_none; /* the identity's domain is not a valid name */
	char start_why[128];

	struct memo *memo;
	size_t n_memo, cap_memo;
	bool pending;
	struct spf_query pq;
	enum txt_purpose ppurpose;

	/* State of one run (reset by every spf_step). */
	unsigned n_terms, n_void;
	bool exp_set;
	const char *exp_spec;
	size_t exp_len;
	char exp_domain[NAME_BUF];
	bool p_done;
	size_t p_n;
	const char *p_names[SPF_PTR_LIMIT];
	const char *cur_domain; /* <domain> for %{p}'s preference */

	bool done;
	enum spf_result result;
	char reason[320];
	char explanation[SPF_EXPLAIN_MAX + 1];
};

static void reason(struct spf_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reason(struct spf_check *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof c->reason, fmt, ap);
	va_end(ap);
}

/* Finds the answer to (type, purpose, name).  Returns 0 with *out, or
 * R_NEED after recording the question, or SPF_PERMERROR when the check
 * already asked SPF_MAX_QUERIES questions. */
static int lookup(struct spf_check *c, enum spf_qtype type, enum txt_purpose purpose,
		  const char *name, const struct memo **out)
{
	for (size_t i = 0; i < c->n_memo; i++) {
		const struct memo *m = &c->memo[i];
		if (m->type == type && m->purpose == purpose && strcasecmp(m->name, name) == 0) {
			*out = m;
			return 0;
		}
	}
	if (c->n_memo >= SPF_MAX_QUERIES) {
		reason(c, "more than %d DNS queries", SPF_MAX_QUERIES);
		return SPF_PERMERROR;
	}
	c->pending = true;
	c->pq.type = type;
	snprintf(c->pq.name, sizeof c->pq.name, "%s", name);
	c->ppurpose = purpose;
	return R_NEED;
}

void spf_answer(struct spf_check *c, enum spf_dns status, const struct spf_rr *rr, size_t n)
{
	if (c == NULL || !c->pending)
		return;
	c->pending = false;
	if (c->n_memo == c->cap_memo) {
		c->cap_memo = c->cap_memo ? c->cap_memo * 2 : 16;
		c->memo = xreallocarray(c->memo, c->cap_memo, sizeof *c->memo);
	}
	struct memo *m = &c->memo[c->n_memo++];
	memset(m, 0, sizeof *m);
	m->type = c->pq.type;
	m->purpose = c->ppurpose;
	memcpy(m->name, c->pq.name, sizeof m->name);
	m->status = status;
	if (status != SPF_DNS_OK || rr == NULL)
		return;
	unsigned bits = ip_bits(&c->ip);
	for (size_t i = 0; i < n; i++) {
		const char *d = rr[i].data;
		size_t len = rr[i].len;
		if (d == NULL && len > 0)
			continue;
		if (d == NULL)
			d = "";
		switch (m->type) {
		case SPF_Q_TXT:
			if (m->purpose == TXT_SPF && !is_spf_record(d, len))
				break;
			if (m->n++ == 0) {
				if (len > SPF_RECORD_MAX)
					m->too_long = true;
				else
					m->text = xmemdup0(d, len);
				m->text_len = len;
			}
			break;
		case SPF_Q_A:
		case SPF_Q_AAAA: {
			size_t want = m->type == SPF_Q_A ? 4 : 16;
			if (len != want)
				break;
			m->n++;
			if ((want == 4) == (c->ip.family == AF_INET)) {
				unsigned p = common_prefix((const uint8_t *)d, c->ip.addr, bits);
				if (p > m->best)
					m->best = p;
			}
			break;
		}
		case SPF_Q_MX:
		case SPF_Q_PTR: {
			m->n++;
			size_t keep = m->type == SPF_Q_MX ? SPF_MX_LIMIT : SPF_PTR_LIMIT;
			if (m->n_names >= keep)
				break;
			if (m->names == NULL)
				m->names = xcalloc(keep, sizeof *m->names);
			if (len > 0 && d[len - 1] == '.')
				len--;
			/* An unusable name stays "" and is skipped later. */
			if (len <= SPF_DOMAIN_MAX && memchr(d, '\0', len) == NULL) {
				memcpy(m->names[m->n_names], d, len);
				m->names[m->n_names][len] = '\0';
			}
			m->n_names++;
			break;
		}
		}
	}
}

/* ------------------------------------------------------------ evaluation */

static enum spf_qtype addr_type(const struct spf_check *c)
{
	return c->ip.family == AF_INET ? SPF_Q_A : SPF_Q_AAAA;
}

/* The reverse-mapping name of the client IP (5.5). */
static void reverse_name(const struct spf_ip *ip, char *out, size_t outsz)
{
	if (ip->family == AF_INET) {
		snprintf(out, outsz, "%u.%u.%u.%u.in-addr.arpa", ip->addr[3], ip->addr[2],
			 ip->addr[1], ip->addr[0]);
		return;
	}
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 15; i >= 0 && o + 4 < outsz; i--) {
		out[o++] = hex[ip->addr[i] & 15];
		out[o++] = '.';
		out[o++] = hex[ip->addr[i] >> 4];
		out[o++] = '.';
	}
	snprintf(out + o, outsz - o, "ip6.arpa");
}

/* Is names[i] of a PTR answer a validated name of the client (its address
 * records include the IP)?  Returns 1, 0, or R_NEED / SPF_PERMERROR. */
static int ptr_validated(struct spf_check *c, const char *name)
{
	if (!valid_domain(name, strlen(name), false, false))
		return 0;
	const struct memo *a;
	int rc = lookup(c, addr_type(c), TXT_SPF, name, &a);
	if (rc != 0)
		return rc;
	/* 5.5: a DNS error on the address lookup skips that name. */
	return a->status == SPF_DNS_OK && a->n > 0 && a->best == ip_bits(&c->ip);
}

/* %{p}: the validated names are found once per run. */
static int get_p(void *arg, const char **out)
{
	struct spf_check *c = arg;
	*out = "unknown";
	if (!c->p_done) {
		if (++c->n_terms > SPF_DNS_TERM_LIMIT)
			return -1;
		char rev[80];
		reverse_name(&c->ip, rev, sizeof rev);
		const struct memo *m;
		int rc = lookup(c, SPF_Q_PTR, TXT_SPF, rev, &m);
		if (rc != 0)
			return rc == R_NEED ? R_NEED : -1;
		c->p_n = 0;
		if (m->status == SPF_DNS_OK) {
			for (size_t i = 0; i < m->n_names; i++) {
				int v = ptr_validated(c, m->names[i]);
				if (v < 0 || v == SPF_PERMERROR)
					return v == R_NEED ? R_NEED : -1;
				if (v == 1)
					c->p_names[c->p_n++] = m->names[i];
			}
		}
		c->p_done = true;
	}
	/* 7.3: the <domain> itself, else a subdomain of it, else any. */
	const char *d = c->cur_domain ? c->cur_domain : "";
	for (size_t i = 0; i < c->p_n; i++)
		if (strcasecmp(c->p_names[i], d) == 0) {
			*out = c->p_names[i];
			return 0;
		}
	for (size_t i = 0; i < c->p_n; i++)
		if (within(c->p_names[i], d)) {
			*out = c->p_names[i];
			return 0;
		}
	if (c->p_n > 0)
		*out = c->p_names[0];
	return 0;
}

static void mctx_init(struct spf_check *c, struct mctx *m, const char *domain)
{
	m->sender = c->sender;
	m->local = c->local;
	m->odomain = c->odomain;
	m->domain = domain;
	m->helo = c->helo;
	m->receiver = c->receiver;
	m->ip = &c->ip;
	m->now = c->now;
	m->get_p = get_p;
	m->arg = c;
	c->cur_domain = domain;
}

/* The <target-name> of a term: its domain-spec expanded, or <domain>.
 * Returns 0, R_NEED or SPF_PERMERROR (with a reason). */
static int target_name(struct spf_check *c, const struct term *t, const char *domain,
		       char out[NAME_BUF])
{
	if (t->arg == NULL) {
		snprintf(out, NAME_BUF, "%s", domain);
		return 0;
	}
	struct mctx m;
	mctx_init(c, &m, domain);
	char buf[SPF_EXPAND_MAX + 1];
	int n = expand(&m, t->arg, t->arg_len, false, true, buf, sizeof buf);
	if (n == R_NEED)
		return R_NEED;
	int tl = t->text_len > 60 ? 60 : (int)t->text_len;
	if (n < 0) {
		reason(c, "macro expansion failed in '%.*s'", tl, t->text);
		return SPF_PERMERROR;
	}
	/* 4.8 leaves malformed names open; we make them a permerror. */
	if (!valid_domain(buf, (size_t)n, false, false)) {
		reason(c, "'%.*s' expands to a malformed name", tl, t->text);
		return SPF_PERMERROR;
	}
	memcpy(out, buf, (size_t)n + 1);
	return 0;
}

/* Counts one DNS-querying term (4.6.4). */
static int count_term(struct spf_check *c)
{
	if (++c->n_terms > SPF_DNS_TERM_LIMIT) {
		reason(c, "more than %d DNS-querying terms", SPF_DNS_TERM_LIMIT);
		return SPF_PERMERROR;
	}
	return 0;
}

/* Counts a void lookup of a term (4.6.4). */
static int count_void(struct spf_check *c)
{
	if (++c->n_void > SPF_VOID_LIMIT) {
		reason(c, "more than %d void DNS lookups", SPF_VOID_LIMIT);
		return SPF_PERMERROR;
	}
	return M_NOMATCH;
}

static int check_host(struct spf_check *c, const char *domain, unsigned depth, bool in_include);

static int mech_addr(struct spf_check *c, const char *target, unsigned cidr)
{
	const struct memo *m;
	int rc = lookup(c, addr_type(c), TXT_SPF, target, &m);
	if (rc != 0)
		return rc;
	if (m->status == SPF_DNS_TEMPFAIL) {
		reason(c, "temporary DNS error looking up the addresses of %s", target);
		return SPF_TEMPERROR;
	}
	if (m->n == 0)
		return count_void(c);
	return m->best >= cidr ? M_MATCH : M_NOMATCH;
}

static int mech_mx(struct spf_check *c, const char *target, unsigned cidr)
{
	const struct memo *m;
	int rc = lookup(c, SPF_Q_MX, TXT_SPF, target, &m);
	if (rc != 0)
		return rc;
	if (m->status == SPF_DNS_TEMPFAIL) {
		reason(c, "temporary DNS error looking up the MX of %s", target);
		return SPF_TEMPERROR;
	}
	if (m->n == 0)
		return count_void(c); /* no implicit MX (5.4) */
	if (m->n > SPF_MX_LIMIT) {
		reason(c, "%s has more than %d MX records", target, SPF_MX_LIMIT);
		return SPF_PERMERROR;
	}
	for (size_t i = 0; i < m->n_names; i++) {
		const char *h = m->names[i];
		if (!valid_domain(h, strlen(h), false, false))
			continue; /* a Null MX "." or a garbled name */
		const struct memo *a;
		rc = lookup(c, addr_type(c), TXT_SPF, h, &a);
		if (rc != 0)
			return rc;
		if (a->status == SPF_DNS_TEMPFAIL) {
			reason(c, "temporary DNS error looking up the addresses of %s", h);
			return SPF_TEMPERROR;
		}
		if (a->n > 0 && a->best >= cidr)
			return M_MATCH;
	}
	return M_NOMATCH;
}

static int mech_ptr(struct spf_check *c, const char *target)
{
	char rev[80];
	reverse_name(&c->ip, rev, sizeof rev);
	const struct memo *m;
	int rc = lookup(c, SPF_Q_PTR, TXT_SPF, rev, &m);
	if (rc != 0)
		return rc;
	if (m->status == SPF_DNS_TEMPFAIL)
		return M_NOMATCH; /* 5.5: a PTR lookup error is no match */
	if (m->n == 0)
		return count_void(c);
	/* Only names within the target can make it match, so only those are
	 * validated (the same result as validating all of them first). */
	for (size_t i = 0; i < m->n_names; i++) {
		if (!within(m->names[i], target))
			continue;
		int v = ptr_validated(c, m->names[i]);
		if (v != 0 && v != 1)
			return v;
		if (v == 1)
			return M_MATCH;
	}
	return M_NOMATCH;
}

static int mech_exists(struct spf_check *c, const char *target)
{
	const struct memo *m;
	int rc = lookup(c, SPF_Q_A, TXT_SPF, target, &m);
	if (rc != 0)
		return rc;
	if (m->status == SPF_DNS_TEMPFAIL) {
		reason(c, "temporary DNS error looking up %s", target);
		return SPF_TEMPERROR;
	}
	if (m->n == 0)
		return count_void(c);
	return M_MATCH;
}

static bool ip_in(const struct spf_check *c, int family, const uint8_t *net, unsigned cidr)
{
	if (c->ip.family != family)
		return false;
	return common_prefix(c->ip.addr, net, ip_bits(&c->ip)) >= cidr;
}

static int eval_mech(struct spf_check *c, const struct term *t, const char *domain, unsigned depth)
{
	char target[NAME_BUF];
	int rc;
	switch (t->kind) {
	case T_ALL:
		return M_MATCH;
	case T_IP4:
		return ip_in(c, AF_INET, t->addr, t->cidr4) ? M_MATCH : M_NOMATCH;
	case T_IP6:
		return ip_in(c, AF_INET6, t->addr, t->cidr6) ? M_MATCH : M_NOMATCH;
	default:
		break;
	}
	if ((rc = count_term(c)) != 0)
		return rc;
	if ((rc = target_name(c, t, domain, target)) != 0)
		return rc;
	unsigned cidr = c->ip.family == AF_INET ? t->cidr4 : t->cidr6;
	switch (t->kind) {
	case T_A:
		return mech_addr(c, target, cidr);
	case T_MX:
		return mech_mx(c, target, cidr);
	case T_PTR:
		return mech_ptr(c, target);
	case T_EXISTS:
		return mech_exists(c, target);
	case T_INCLUDE:
		rc = check_host(c, target, depth + 1, true);
		switch (rc) {
		case SPF_PASS:
			return M_MATCH;
		case SPF_FAIL:
		case SPF_SOFTFAIL:
		case SPF_NEUTRAL:
			return M_NOMATCH;
		case SPF_NONE:
			reason(c, "include:%s has no SPF record", target);
			return SPF_PERMERROR;
		default:
			return rc; /* temperror, permerror, R_NEED */
		}
	default:
		return M_NOMATCH;
	}
}

static int check_host(struct spf_check *c, const char *domain, unsigned depth, bool in_include)
{
	if (!valid_domain(domain, strlen(domain), false, true)) {
		reason(c, "'%s' is not a valid domain name", domain);
		return SPF_NONE;
	}
	const struct memo *m;
	int rc = lookup(c, SPF_Q_TXT, TXT_SPF, domain, &m);
	if (rc != 0)
		return rc;
	switch (m->status) {
	case SPF_DNS_TEMPFAIL:
		reason(c, "temporary DNS error looking up the TXT records of %s", domain);
		return SPF_TEMPERROR;
	case SPF_DNS_NXDOMAIN:
		reason(c, "%s does not exist", domain);
		return SPF_NONE;
	case SPF_DNS_OK:
		break;
	}
	if (m->n == 0) {
		reason(c, "%s has no SPF record", domain);
		return SPF_NONE;
	}
	if (m->n > 1) {
		reason(c, "%s has %zu SPF records", domain, m->n);
		return SPF_PERMERROR;
	}
	if (m->too_long) {
		reason(c, "the SPF record of %s is longer than %d bytes", domain, SPF_RECORD_MAX);
		return SPF_PERMERROR;
	}
	struct record *r = xcalloc(1, sizeof *r);
	char why[160];
	if (parse_record(m->text, m->text_len, r, why, sizeof why) < 0) {
		reason(c, "the SPF record of %s: %s", domain, why);
		free(r);
		return SPF_PERMERROR;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct term *t = &r->t[i];
		if (t->kind == T_REDIRECT || t->kind == T_EXP || t->kind == T_UNKNOWN_MOD)
			continue;
		rc = eval_mech(c, t, domain, depth);
		if (rc == M_NOMATCH)
			continue;
		if (rc == M_MATCH) {
			rc = (int)t->qual;
			reason(c, "%s: '%.*s' matched", domain,
			       t->text_len > 100 ? 100 : (int)t->text_len, t->text);
			/* 6.2: the explanation of the record whose mechanism
			 * failed, never one reached through include. */
			if (rc == SPF_FAIL && !in_include) {
				c->exp_set = r->exp >= 0;
				if (c->exp_set) {
					c->exp_spec = r->t[r->exp].arg;
					c->exp_len = r->t[r->exp].arg_len;
					snprintf(c->exp_domain, sizeof c->exp_domain, "%s", domain);
				}
			}
		}
		free(r);
		return rc;
	}
	if (r->redirect >= 0 && !r->has_all) {
		const struct term *t = &r->t[r->redirect];
		char target[NAME_BUF];
		if ((rc = count_term(c)) != 0 || (rc = target_name(c, t, domain, target)) != 0) {
			free(r);
			return rc;
		}
		free(r);
		rc = check_host(c, target, depth + 1, in_include);
		if (rc == SPF_NONE) {
			reason(c, "redirect=%s: no SPF record", target);
			return SPF_PERMERROR;
		}
		return rc;
	}
	free(r);
	reason(c, "%s: no mechanism matched", domain);
	return SPF_NEUTRAL;
}

/* 6.2: the explanation of a fail.  Any problem means no explanation. */
static int explain(struct spf_check *c)
{
	c->explanation[0] = '\0';
	struct mctx m;
	mctx_init(c, &m, c->exp_domain);
	char name[SPF_EXPAND_MAX + 1];
	int n = expand(&m, c->exp_spec, c->exp_len, false, true, name, sizeof name);
	if (n == R_NEED)
		return R_NEED;
	if (n < 0 || !valid_domain(name, (size_t)n, false, false))
		return 0;
	const struct memo *t;
	int rc = lookup(c, SPF_Q_TXT, TXT_EXP, name, &t);
	if (rc != 0)
		return rc == R_NEED ? R_NEED : 0;
	if (t->status != SPF_DNS_OK || t->n != 1 || t->text == NULL)
		return 0;
	char buf[SPF_EXPAND_MAX + 1];
	mctx_init(c, &m, c->exp_domain);
	n = expand(&m, t->text, t->text_len, true, false, buf, sizeof buf);
	if (n == R_NEED)
		return R_NEED;
	if (n < 0)
		return 0;
	size_t k = (size_t)n > SPF_EXPLAIN_MAX ? SPF_EXPLAIN_MAX : (size_t)n;
	memcpy(c->explanation, buf, k);
	c->explanation[k] = '\0';
	return 0;
}

/* One run of the whole check.  Returns a result or R_NEED. */
static int run(struct spf_check *c)
{
	c->n_terms = c->n_void = 0;
	c->exp_set = false;
	c->p_done = false;
	c->p_n = 0;
	if (c->start_none) {
		reason(c, "%s", c->start_why);
		return SPF_NONE;
	}
	int rc = check_host(c, c->odomain, 0, false);
	if (rc == R_NEED)
		return R_NEED;
	if (rc == SPF_FAIL && c->exp_set) {
		char keep[sizeof c->reason];
		memcpy(keep, c->reason, sizeof keep);
		unsigned terms = c->n_terms;
		/* %{p} in the text may ask questions: they do not count. */
		c->n_terms = 0;
		int e = explain(c);
		c->n_terms = terms;
		memcpy(c->reason, keep, sizeof keep);
		if (e == R_NEED)
			return R_NEED;
	}
	return rc;
}

enum spf_step spf_step(struct spf_check *c, struct spf_query *q)
{
	if (c->done)
		return SPF_STEP_DONE;
	if (c->pending) {
		*q = c->pq;
		return SPF_STEP_QUERY;
	}
	int rc = run(c);
	if (rc == R_NEED) {
		*q = c->pq;
		return SPF_STEP_QUERY;
	}
	c->done = true;
	c->result = (enum spf_result)rc;
	if (rc != SPF_FAIL)
		c->explanation[0] = '\0';
	return SPF_STEP_DONE;
}

struct spf_check *spf_check_new(const struct spf_request *req)
{
	struct spf_check *c = xcalloc(1, sizeof *c);
	c->ip = req->ip;
	const char *helo = req->helo ? req->helo : "";
	const char *from = req->mail_from ? req->mail_from : "";
	c->helo = xstrdup(helo);
	c->receiver = xstrdup(req->receiver && req->receiver[0] ? req->receiver : "unknown");
	if (strlen(c->receiver) > SPF_DOMAIN_MAX)
		c->receiver[SPF_DOMAIN_MAX] = '\0';
	c->now = req->now ? req->now : time(NULL);
	const char *sender = from;
	char *tmp = NULL;
	if (req->identity == SPF_ID_HELO || from[0] == '\0') {
		size_t n = strlen(helo) + sizeof "postmaster@";
		tmp = xmalloc(n);
		snprintf(tmp, n, "postmaster@%s", helo);
		sender = tmp;
	}
	split_sender(sender, &c->local, &c->odomain, &c->sender);
	free(tmp);
	/* A trailing dot on the identity's domain is the same name. */
	size_t dl = strlen(c->odomain);
	if (dl > 1 && c->odomain[dl - 1] == '.')
		c->odomain[--dl] = '\0';
	if (c->ip.family != AF_INET && c->ip.family != AF_INET6) {
		c->start_none = true;
		snprintf(c->start_why, sizeof c->start_why, "no client address");
	} else if (strlen(c->sender) > VALUE_MAX || strlen(c->helo) > VALUE_MAX) {
		c->start_none = true;
		snprintf(c->start_why, sizeof c->start_why, "identity longer than %d bytes",
			 VALUE_MAX);
	} else if (!valid_domain(c->odomain, dl, true, true)) {
		c->start_none = true;
		snprintf(c->start_why, sizeof c->start_why,
			 "'%.60s' is not a multi-label domain name", c->odomain);
	}
	return c;
}

void spf_check_free(struct spf_check **cp)
{
	if (cp == NULL || *cp == NULL)
		return;
	struct spf_check *c = *cp;
	for (size_t i = 0; i < c->n_memo; i++) {
		free(c->memo[i].text);
		free(c->memo[i].names);
	}
	free(c->memo);
	free(c->helo);
	free(c->sender);
	free(c->local);
	free(c->odomain);
	free(c->receiver);
	free(c);
	*cp = NULL;
}

enum spf_result spf_result(const struct spf_check *c)
{
	return c->done ? c->result : SPF_TEMPERROR;
}

const char *spf_reason(const struct spf_check *c)
{
	return c->reason;
}

const char *spf_explanation(const struct spf_check *c)
{
	return c->explanation;
}

const char *spf_domain(const struct spf_check *c)
{
	return c->odomain;
}

const char *spf_record(const struct spf_check *c, size_t *len)
{
	for (size_t i = 0; c->odomain != NULL && i < c->n_memo; i++) {
		const struct memo *m = &c->memo[i];
		if (m->type == SPF_Q_TXT && m->purpose == TXT_SPF && m->status == SPF_DNS_OK &&
		    m->n == 1 && m->text != NULL && strcasecmp(m->name, c->odomain) == 0) {
			*len = m->text_len;
			return m->text;
		}
	}
	*len = 0;
	return NULL;
}

size_t spf_queries(const struct spf_check *c)
{
	return c->n_memo;
}

const char *spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_NONE:
		return "none";
	case SPF_NEUTRAL:
		return "neutral";
	case SPF_PASS:
		return "pass";
	case SPF_FAIL:
		return "fail";
	case SPF_SOFTFAIL:
		return "softfail";
	case SPF_TEMPERROR:
		return "temperror";
	case SPF_PERMERROR:
		return "permerror";
	}
	return "unknown";
}
