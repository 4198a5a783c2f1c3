/*
 * vcard.c - the vCard reader (vcard.h).  Layer: mail (pure parsing).
 *
 * Two passes over one private copy: the first unfolds the physical lines
 * into logical ones (RFC 6350 3.2: a line starting with a space or a tab
 * continues the previous one, the break and that one character removed),
 * counting lines and bytes against the limits before anything else is
 * done; the second checks each logical line's bytes (valid UTF-8, checked
 * after unfolding because a fold may split a multi-octet character; no
 * control character but the tab) and cuts it in place into group, name,
 * parameters and value, writing NULs into the copy.  Every string handed
 * out points into that copy.
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "strutil.h"
#include "vcard.h"
#include "xalloc.h"

struct logical {
	size_t off, len; /* in text */
	size_t line;     /* first physical line */
};

static bool is_name_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-';
}

static void upper(char *s)
{
	for (; *s; s++)
		if (*s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

void vcard_free(struct vcard *v)
{
	if (v == NULL)
		return;
	free(v->props);
	free(v->param_pool);
	free(v->text);
	memset(v, 0, sizeof *v);
}

/* Pass 1: logical lines of data into v->text and *lines. */
static enum vcard_error unfold(const char *data, size_t len, const struct vcard_limits *lim,
			       struct vcard *v, struct logical **lines, size_t *n_lines, char *err,
			       size_t errsz)
{
	size_t cap = 0, n = 0, w = 0, phys = 0;
	bool open = false;
	struct logical *l = NULL;
	v->text = xmalloc(len + 1);
	size_t p = 0;
	while (p < len) {
		const char *lf = memchr(data + p, '\n', len - p);
		size_t e = lf ? (size_t)(lf - data) : len;
		size_t next = lf ? e + 1 : len;
		if (e > p && data[e - 1] == '\r' && lf != NULL)
			e--;
		phys++;
		if (phys > lim->max_lines) {
			strutil_errf(err, errsz, "more than %zu lines", lim->max_lines);
			goto too_big;
		}
		if (e - p > lim->max_line) {
			strutil_errf(err, errsz, "line %zu: longer than %zu bytes", phys, lim->max_line);
			goto too_big;
		}
		if (e == p) {
			open = false; /* an empty line ends the logical line */
		} else if (data[p] == ' ' || data[p] == '\t') {
			if (!open) {
				free(l);
				strutil_errf(err, errsz,
					     "line %zu: a folded line with no line before it to continue "
					     "(broken folding)",
					     phys);
				return VCARD_ERR_FOLDING;
			}
			memcpy(v->text + w, data + p + 1, e - p - 1);
			w += e - p - 1;
			l[n - 1].len += e - p - 1;
		} else {
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				l = xreallocarray(l, cap, sizeof *l);
			}
			if (n > lim->max_props + 3) {
				strutil_errf(err, errsz, "more than %zu properties", lim->max_props);
				goto too_big;
			}
			if (n > 0)
				v->text[w++] = '\0'; /* room: a line break was not copied */
			l[n].off = w;
			l[n].len = e - p;
			l[n].line = phys;
			n++;
			memcpy(v->text + w, data + p, e - p);
			w += e - p;
			open = true;
		}
		p = next;
	}
	v->text[w] = '\0';
	*lines = l;
	*n_lines = n;
	return VCARD_OK;
too_big:
	free(l);
	return VCARD_ERR_SIZE;
}

/* The bytes of one logical line: UTF-8, no control character but HTAB. */
static enum vcard_error check_bytes(const char *s, size_t n, size_t line, char *err, size_t errsz)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			strutil_errf(err, errsz, "line %zu: control character 0x%02x", line, c);
			return VCARD_ERR_UTF8;
		}
	}
	if (!addr_utf8_valid(s, n)) {
		strutil_errf(err, errsz, "line %zu: invalid UTF-8", line);
		return VCARD_ERR_UTF8;
	}
	return VCARD_OK;
}

/* Reads a parameter value at s[*r] in place (quotes removed, commas
 * kept), NUL-terminated; returns its start and sets *term to the ';' or
 * ':' that ended it (NUL: end of line). */
static char *param_value(char *s, size_t *r, char *term, bool *bad)
{
	size_t w = *r, i = *r;
	char *start = s + w;
	*bad = false;
	for (;;) {
		char c = s[i];
		if (c == '"') {
			i++;
			while (s[i] != '"' && s[i] != '\0')
				s[w++] = s[i++];
			if (s[i] != '"') {
				*bad = true;
				return NULL;
			}
			i++;
			continue;
		}
		if (c == ';' || c == ':' || c == '\0') {
			*term = c;
			s[w] = '\0';
			*r = c == '\0' ? i : i + 1;
			return start;
		}
		s[w++] = s[i++];
	}
}

static void add_param(struct vcard *v, size_t *cap, const char *name, const char *value)
{
	if (v->n_param_pool == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		v->param_pool = xreallocarray(v->param_pool, *cap, sizeof *v->param_pool);
	}
	v->param_pool[v->n_param_pool].name = name;
	v->param_pool[v->n_param_pool].value = value;
	v->n_param_pool++;
}

/* Pass 2 for one logical line s (NUL-terminated, n bytes). */
static enum vcard_error content_line(struct vcard *v, size_t *pcap, char *s, size_t n,
				     size_t line, struct vcard_prop *p, size_t *first_param,
				     char *err, size_t errsz)
{
	memset(p, 0, sizeof *p);
	p->line = line;
	size_t r = 0;
	while (is_name_char((unsigned char)s[r]))
		r++;
	if (s[r] == '.' && r > 0) {
		s[r] = '\0';
		p->group = s;
		r++;
		size_t b = r;
		while (is_name_char((unsigned char)s[r]))
			r++;
		if (r == b)
			goto no_name;
		p->name = s + b;
	} else {
		if (r == 0)
			goto no_name;
		p->name = s;
	}
	char term = s[r];
	if (term != ';' && term != ':') {
		strutil_errf(err, errsz,
			     "line %zu: no ':' after the property name (a folded line without its "
			     "leading space?)",
			     line);
		return VCARD_ERR_SYNTAX;
	}
	s[r++] = '\0';
	upper((char *)p->name);
	*first_param = v->n_param_pool;
	while (term == ';') {
		size_t b = r;
		while (is_name_char((unsigned char)s[r]))
			r++;
		if (r == b) {
			strutil_errf(err, errsz, "line %zu: empty parameter name", line);
			return VCARD_ERR_SYNTAX;
		}
		char c = s[r];
		if (c == '=') {
			s[r++] = '\0';
			upper(s + b);
			bool bad;
			const char *val = param_value(s, &r, &term, &bad);
			if (bad) {
				strutil_errf(err, errsz, "line %zu: unterminated quoted parameter value",
					     line);
				return VCARD_ERR_SYNTAX;
			}
			add_param(v, pcap, s + b, val);
		} else if (c == ';' || c == ':') {
			/* vCard 3.0 senders' "TEL;HOME:" shorthand for TYPE=HOME. */
			term = c;
			s[r++] = '\0';
			add_param(v, pcap, "TYPE", s + b);
		} else if (c == '\0') {
			strutil_errf(err, errsz, "line %zu: no ':' before the value", line);
			return VCARD_ERR_SYNTAX;
		} else {
			strutil_errf(err, errsz, "line %zu: bad character in a parameter name", line);
			return VCARD_ERR_SYNTAX;
		}
	}
	if (term != ':') {
		strutil_errf(err, errsz, "line %zu: no ':' before the value", line);
		return VCARD_ERR_SYNTAX;
	}
	p->n_params = v->n_param_pool - *first_param;
	p->value = s + r;
	p->value_len = n - r;
	return VCARD_OK;
no_name:
	strutil_errf(err, errsz, "line %zu: no property name", line);
	return VCARD_ERR_SYNTAX;
}

static bool value_is(const struct vcard_prop *p, const char *s)
{
	return strutil_eq_ci(p->value, p->value_len, s);
}

/* BEGIN first, END last, one VERSION (3.0 or 4.0); the rest into v. */
static enum vcard_error frame(struct vcard *v, struct vcard_prop *all, size_t n,
			      const struct vcard_limits *lim, char *err, size_t errsz)
{
	if (n == 0 || strcmp(all[0].name, "BEGIN") != 0 || !value_is(&all[0], "VCARD") ||
	    all[0].group != NULL) {
		strutil_errf(err, errsz, "line %zu: a vCard starts with BEGIN:VCARD",
			     n ? all[0].line : 1);
		return VCARD_ERR_FRAME;
	}
	size_t w = 0;
	bool ended = false;
	for (size_t i = 1; i < n; i++) {
		struct vcard_prop *p = &all[i];
		if (ended) {
			strutil_errf(err, errsz,
				     "line %zu: content after END:VCARD (one vCard per resource)",
				     p->line);
			return VCARD_ERR_FRAME;
		}
		if (strcmp(p->name, "BEGIN") == 0) {
			strutil_errf(err, errsz, "line %zu: BEGIN inside a vCard", p->line);
			return VCARD_ERR_FRAME;
		}
		if (strcmp(p->name, "END") == 0) {
			if (!value_is(p, "VCARD")) {
				strutil_errf(err, errsz, "line %zu: END:VCARD expected", p->line);
				return VCARD_ERR_FRAME;
			}
			ended = true;
			continue;
		}
		if (strcmp(p->name, "VERSION") == 0) {
			if (v->version != 0) {
				strutil_errf(err, errsz, "line %zu: a second VERSION", p->line);
				return VCARD_ERR_FRAME;
			}
			if (value_is(p, "4.0"))
				v->version = 4;
			else if (value_is(p, "3.0"))
				v->version = 3;
			else {
				strutil_errf(err, errsz,
					     "line %zu: VERSION %.16s is not supported (3.0 and 4.0 are)",
					     p->line, p->value);
				return VCARD_ERR_FRAME;
			}
			continue;
		}
		if (w == lim->max_props) {
			strutil_errf(err, errsz, "more than %zu properties", lim->max_props);
			return VCARD_ERR_SIZE;
		}
		all[w++] = *p;
	}
	if (!ended) {
		strutil_errf(err, errsz, "no END:VCARD");
		return VCARD_ERR_FRAME;
	}
	if (v->version == 0) {
		strutil_errf(err, errsz, "no VERSION");
		return VCARD_ERR_FRAME;
	}
	v->props = all;
	v->n_props = w;
	return VCARD_OK;
}

enum vcard_error vcard_parse(const char *data, size_t len, const struct vcard_limits *lim,
			     struct vcard *out, char *err, size_t errsz)
{
	static const struct vcard_limits def = VCARD_LIMITS_DEFAULT;
	if (lim == NULL)
		lim = &def;
	memset(out, 0, sizeof *out);
	if (len > lim->max_size) {
		strutil_errf(err, errsz, "larger than %zu bytes", lim->max_size);
		return VCARD_ERR_SIZE;
	}
	struct logical *lines = NULL;
	size_t n = 0;
	enum vcard_error e = unfold(data, len, lim, out, &lines, &n, err, errsz);
	if (e != VCARD_OK) {
		vcard_free(out);
		return e;
	}
	struct vcard_prop *all = xcalloc(n ? n : 1, sizeof *all);
	size_t *first = xcalloc(n ? n : 1, sizeof *first);
	size_t pcap = 0;
	for (size_t i = 0; i < n && e == VCARD_OK; i++) {
		char *s = out->text + lines[i].off;
		e = check_bytes(s, lines[i].len, lines[i].line, err, errsz);
		if (e == VCARD_OK)
			e = content_line(out, &pcap, s, lines[i].len, lines[i].line, &all[i],
					 &first[i], err, errsz);
	}
	/* The pool has stopped moving: point the properties into it. */
	for (size_t i = 0; i < n && e == VCARD_OK; i++)
		all[i].params = all[i].n_params ? out->param_pool + first[i] : NULL;
	free(first);
	free(lines);
	if (e == VCARD_OK)
		e = frame(out, all, n, lim, err, errsz);
	if (e != VCARD_OK) {
		if (out->props != all)
			free(all);
		vcard_free(out);
		return e;
	}
	return VCARD_OK;
}

const struct vcard_prop *vcard_find(const struct vcard *v, const char *name, size_t *from)
{
	size_t i = from ? *from : 0;
	for (; i < v->n_props; i++)
		if (strcmp(v->props[i].name, name) == 0) {
			if (from)
				*from = i + 1;
			return &v->props[i];
		}
	if (from)
		*from = v->n_props;
	return NULL;
}

const char *vcard_param(const struct vcard_prop *p, const char *name)
{
	for (size_t i = 0; i < p->n_params; i++)
		if (strcmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

int vcard_text(const char *value, size_t len, char comp_sep, char list_sep, struct buf *out)
{
	size_t start = out->len;
	char pending = '\0';
	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		char sep = c == ';' ? comp_sep : c == ',' ? list_sep : '\0';
		if (sep != '\0') {
			if (out->len > start && pending == '\0')
				pending = sep;
			continue;
		}
		if (c == '\\' && i + 1 < len) {
			c = value[++i];
			if (c == 'n' || c == 'N')
				c = '\n';
		}
		if (pending != '\0') {
			if (buf_putc(out, pending) < 0)
				return -1;
			pending = '\0';
		}
		if (buf_putc(out, c) < 0)
			return -1;
	}
	return 0;
}
