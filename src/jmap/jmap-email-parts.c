/*
 * jmap-email-parts.c - see jmap-email-parts.h.  Above src/mail (the MIME
 * parser, mime-part.h's walk, RFC 2047 decoding) and jansson; no store.
 *
 * Every string handed to jansson is valid UTF-8 without NUL (jansson
 * refuses others): raw octets go through mime_part_to_utf8 first.
 */
#include "jmap-email-parts.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "buf.h"
#include "mime-part.h"
#include "mime.h"
#include "preview.h"
#include "strutil.h"
#include "xalloc.h"

/* ------------------------------------------------------------ strings */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A JSON string of s[0..n) made valid UTF-8 (invalid octets U+FFFD, NUL
 * dropped). */
static json_t *jstr(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	bool problem = false;
	(void)mime_part_to_utf8("utf-8", 5, s, n, &b, &problem);
	json_t *j = json_stringn(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	return j != NULL ? j : json_string("");
}

/* A JSON string of the valid UTF-8 s[0..n) in Unicode Normalization
 * Form C (RFC 8621 4.1.2.2 step 5), through ICU's UTF-16.  On any ICU
 * failure the text is given as it is (already valid UTF-8). */
static json_t *jstr_nfc(const char *s, size_t n)
{
	UErrorCode e = U_ZERO_ERROR;
	const UNormalizer2 *nfc = unorm2_getNFCInstance(&e);
	if (U_FAILURE(e) || n > INT32_MAX / 4)
		return jstr(s, n);
	int32_t n16 = 0;
	u_strFromUTF8(NULL, 0, &n16, s, (int32_t)n, &e);
	if (e != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(e))
		return jstr(s, n);
	e = U_ZERO_ERROR;
	UChar *u = xcalloc((size_t)n16 + 1, sizeof *u);
	u_strFromUTF8(u, n16 + 1, NULL, s, (int32_t)n, &e);
	if (U_FAILURE(e) || unorm2_isNormalized(nfc, u, n16, &e)) {
		free(u);
		return jstr(s, n);
	}
	/* NFC of a string is at most 3 times as long in UTF-16 units */
	int32_t cap = n16 * 3 + 1;
	UChar *v = xcalloc((size_t)cap, sizeof *v);
	e = U_ZERO_ERROR;
	int32_t nv = unorm2_normalize(nfc, u, n16, v, cap, &e);
	json_t *j = NULL;
	if (U_SUCCESS(e)) {
		int32_t n8 = 0;
		size_t cap8 = (size_t)nv * 3 + 1;
		char *o = xmalloc(cap8);
		u_strToUTF8(o, (int32_t)cap8, &n8, v, nv, &e);
		if (U_SUCCESS(e))
			j = json_stringn(o, (size_t)n8);
		free(o);
	}
	free(u);
	free(v);
	return j != NULL ? j : jstr(s, n);
}

/* Unfolded s[0..n): line breaks dropped (RFC 5322 2.2.3), then blanks
 * trimmed at both ends. */
static void unfold(const char *s, size_t n, struct buf *out)
{
	size_t from = out->len;
	for (size_t i = 0; i < n; i++)
		if (s[i] != '\r' && s[i] != '\n')
			(void)buf_putc(out, s[i]);
	size_t a = from, e = out->len;
	while (a < e && is_wsp(out->data[a]))
		a++;
	while (e > a && is_wsp(out->data[e - 1]))
		e--;
	if (out->data != NULL) {
		memmove(out->data + from, out->data + a, e - a);
		out->len = from + (e - a);
		out->data[out->len] = '\0';
	}
}

/* The Text form: unfolded, RFC 2047 decoded, control characters from
 * the decoding dropped, then NFC. */
static json_t *text_form(const char *v, size_t n)
{
	struct buf u = BUF_INIT, d = BUF_INIT;
	/* RFC 8621 4.1.2.2: unfolded, then the SP at the start removed (the
	 * end is kept) */
	size_t i = 0;
	while (i < n && (v[i] == ' ' || v[i] == '\r' || v[i] == '\n'))
		i++;
	for (; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			(void)buf_putc(&u, v[i]);
	(void)mime_decode_2047(buf_cstr(&u), u.len, &d);
	size_t k = 0;
	for (size_t x = 0; x < d.len; x++) {
		unsigned char c = (unsigned char)d.data[x];
		if (c >= 0x20 || c == '\t')
			d.data[k++] = (char)c;
	}
	d.len = k;
	struct buf clean = BUF_INIT;
	bool problem = false;
	(void)mime_part_to_utf8("utf-8", 5, buf_cstr(&d), d.len, &clean, &problem);
	json_t *j = jstr_nfc(buf_cstr(&clean), clean.len);
	buf_free(&clean);
	buf_free(&u);
	buf_free(&d);
	return j;
}

/* ---------------------------------------------------------- addresses */

struct addr_parse {
	const char *s;
	size_t n, i;
	json_t *groups; /* EmailAddressGroup[] */
	json_t *cur;    /* the addresses array of the group being filled, or NULL */
	bool in_group;
	struct buf phrase, bare, angle, comment;
	bool has_angle, pending_space;
};

static json_t *name_json(struct buf *raw)
{
	struct buf d = BUF_INIT;
	const char *s = buf_cstr(raw);
	size_t a = 0, e = raw->len;
	while (a < e && is_wsp(s[a]))
		a++;
	while (e > a && is_wsp(s[e - 1]))
		e--;
	if (a == e)
		return json_null();
	(void)mime_decode_2047(s + a, e - a, &d);
	struct buf clean = BUF_INIT;
	bool problem = false;
	(void)mime_part_to_utf8("utf-8", 5, buf_cstr(&d), d.len, &clean, &problem);
	json_t *j = jstr_nfc(buf_cstr(&clean), clean.len);
	buf_free(&d);
	buf_free(&clean);
	return j;
}

static void group_open(struct addr_parse *p, json_t *name)
{
	json_t *g = json_object();
	json_object_set_new(g, "name", name);
	p->cur = json_array();
	json_object_set_new(g, "addresses", p->cur);
	json_array_append_new(p->groups, g);
}

static void item_flush(struct addr_parse *p)
{
	json_t *name = NULL;
	struct buf *email = NULL;
	if (p->has_angle) {
		name = name_json(&p->phrase);
		if (json_is_null(name) && p->comment.len > 0) {
			json_decref(name);
			name = name_json(&p->comment);
		}
		email = &p->angle;
	} else if (p->bare.len > 0) {
		name = p->comment.len > 0 ? name_json(&p->comment) : json_null();
		email = &p->bare;
	}
	if (email != NULL) {
		if (p->cur == NULL)
			group_open(p, json_null());
		json_t *a = json_object();
		json_object_set_new(a, "name", name);
		json_object_set_new(a, "email", jstr(buf_cstr(email), email->len));
		json_array_append_new(p->cur, a);
	}
	buf_reset(&p->phrase);
	buf_reset(&p->bare);
	buf_reset(&p->angle);
	buf_reset(&p->comment);
	p->has_angle = false;
	p->pending_space = false;
}

/* A comment at s[i] == '(' (nested, escapes): its text into out (if not
 * NULL); returns the index after it. */
static size_t skip_comment(const char *s, size_t n, size_t i, struct buf *out)
{
	unsigned depth = 0;
	if (out)
		buf_reset(out);
	for (; i < n; i++) {
		char c = s[i];
		if (c == '\\' && i + 1 < n) {
			i++;
			if (out && depth == 1)
				(void)buf_putc(out, s[i]);
			continue;
		}
		if (c == '(') {
			if (depth++ == 0)
				continue;
		} else if (c == ')') {
			if (--depth == 0)
				return i + 1;
		}
		if (out && depth >= 1 && c != '\r' && c != '\n')
			(void)buf_putc(out, c);
	}
	return n;
}

/* A quoted string at s[i] == '"': content (escapes removed, line breaks
 * dropped) to content, the raw form with quotes to raw; index after it. */
static size_t quoted(const char *s, size_t n, size_t i, struct buf *content, struct buf *raw)
{
	(void)buf_putc(raw, '"');
	for (i++; i < n; i++) {
		char c = s[i];
		if (c == '\\' && i + 1 < n) {
			(void)buf_putc(raw, c);
			(void)buf_putc(raw, s[i + 1]);
			(void)buf_putc(content, s[++i]);
			continue;
		}
		if (c == '"') {
			(void)buf_putc(raw, '"');
			return i + 1;
		}
		if (c != '\r' && c != '\n') {
			(void)buf_putc(content, c);
			(void)buf_putc(raw, c);
		}
	}
	return n;
}

/* RFC 5322 3.4 address-list, best effort (RFC 8621 4.1.2.3). */
static json_t *grouped_addresses(const char *s, size_t n)
{
	struct addr_parse p = {.s = s, .n = n, .groups = json_array()};
	size_t i = 0;
	while (i < n) {
		char c = s[i];
		if (is_wsp(c)) {
			p.pending_space = p.phrase.len > 0;
			i++;
		} else if (c == '(') {
			i = skip_comment(s, n, i, &p.comment);
			p.pending_space = p.phrase.len > 0;
		} else if (c == '"') {
			if (p.pending_space)
				(void)buf_putc(&p.phrase, ' ');
			p.pending_space = false;
			i = quoted(s, n, i, &p.phrase, &p.bare);
		} else if (c == '<') {
			i++;
			while (i < n && s[i] != '>') {
				if (s[i] == '(')
					i = skip_comment(s, n, i, NULL);
				else if (s[i] == '"') {
					struct buf junk = BUF_INIT;
					i = quoted(s, n, i, &junk, &p.angle);
					buf_free(&junk);
				} else {
					if (!is_wsp(s[i]))
						(void)buf_putc(&p.angle, s[i]);
					i++;
				}
			}
			if (i < n)
				i++;
			p.has_angle = true;
			buf_reset(&p.comment);
		} else if (c == ':' && !p.has_angle) {
			json_t *name = name_json(&p.phrase);
			buf_reset(&p.phrase);
			buf_reset(&p.bare);
			buf_reset(&p.comment);
			p.pending_space = false;
			group_open(&p, name);
			p.in_group = true;
			i++;
		} else if (c == ';' && p.in_group) {
			item_flush(&p);
			p.cur = NULL;
			p.in_group = false;
			i++;
		} else if (c == ',') {
			item_flush(&p);
			i++;
		} else {
			if (p.pending_space)
				(void)buf_putc(&p.phrase, ' ');
			p.pending_space = false;
			(void)buf_putc(&p.phrase, c);
			(void)buf_putc(&p.bare, c);
			buf_reset(&p.comment);
			i++;
		}
	}
	item_flush(&p);
	buf_free(&p.phrase);
	buf_free(&p.bare);
	buf_free(&p.angle);
	buf_free(&p.comment);
	return p.groups;
}

static json_t *addresses(const char *s, size_t n)
{
	json_t *groups = grouped_addresses(s, n), *out = json_array();
	size_t i, k;
	json_t *g, *a;
	json_array_foreach(groups, i, g)
	{
		json_array_foreach(json_object_get(g, "addresses"), k, a) json_array_append(out, a);
	}
	json_decref(groups);
	return out;
}

/* ----------------------------------------------------- ids, URLs, dates */

/* "<a@b> <c@d>" (MessageIds) or "<url>, <url>" (URLs, commas between):
 * the contents of the brackets, CFWS removed; null when anything else is
 * there or there are none. */
static json_t *bracket_list(const char *s, size_t n, bool urls)
{
	json_t *out = json_array();
	struct buf item = BUF_INIT;
	size_t i = 0;
	bool want_comma = false;
	while (i < n) {
		char c = s[i];
		if (is_wsp(c)) {
			i++;
		} else if (c == '(') {
			i = skip_comment(s, n, i, NULL);
		} else if (c == ',' && urls && want_comma) {
			want_comma = false;
			i++;
		} else if (c == '<' && !want_comma) {
			buf_reset(&item);
			for (i++; i < n && s[i] != '>'; i++) {
				if (s[i] == '(' && !urls) {
					i = skip_comment(s, n, i, NULL) - 1;
					continue;
				}
				if (!is_wsp(s[i]))
					(void)buf_putc(&item, s[i]);
			}
			if (i >= n || item.len == 0)
				goto fail;
			i++;
			json_array_append_new(out, jstr(buf_cstr(&item), item.len));
			want_comma = urls;
		} else {
			goto fail;
		}
	}
	buf_free(&item);
	if (json_array_size(out) == 0) {
		json_decref(out);
		return json_null();
	}
	return out;
fail:
	buf_free(&item);
	json_decref(out);
	return json_null();
}

/* Next token of a date: a run of letters or digits (CFWS and ',' ':'
 * skipped before it unless stop says so). */
struct dtok {
	const char *s;
	size_t n, i;
};

static void dskip(struct dtok *d)
{
	while (d->i < d->n) {
		if (is_wsp(d->s[d->i]))
			d->i++;
		else if (d->s[d->i] == '(')
			d->i = skip_comment(d->s, d->n, d->i, NULL);
		else
			break;
	}
}

static bool dnum(struct dtok *d, size_t min, size_t max, int64_t *v)
{
	dskip(d);
	size_t k = 0;
	int64_t x = 0;
	while (d->i < d->n && d->s[d->i] >= '0' && d->s[d->i] <= '9' && k < max) {
		x = x * 10 + (d->s[d->i] - '0');
		d->i++;
		k++;
	}
	if (k < min || (d->i < d->n && d->s[d->i] >= '0' && d->s[d->i] <= '9'))
		return false;
	*v = x;
	return true;
}

static size_t dword(struct dtok *d, char *w, size_t max)
{
	dskip(d);
	size_t k = 0;
	while (d->i < d->n && ((d->s[d->i] | 0x20) >= 'a' && (d->s[d->i] | 0x20) <= 'z')) {
		if (k + 1 < max)
			w[k++] = (char)(d->s[d->i] | 0x20);
		d->i++;
	}
	w[k] = '\0';
	return k;
}

static bool dchar(struct dtok *d, char c)
{
	dskip(d);
	if (d->i < d->n && d->s[d->i] == c) {
		d->i++;
		return true;
	}
	return false;
}

/* RFC 5322 3.3 date-time (with the obsolete forms of 4.3: 2- and 3-digit
 * years, zone names, no seconds) as an RFC 3339 Date with the field's
 * offset; null when it is not one. */
static json_t *date_form(const char *s, size_t n)
{
	static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
					     "jul", "aug", "sep", "oct", "nov", "dec"};
	static const struct {
		const char *name;
		int off;
	} zones[] = {{"ut", 0},     {"gmt", 0},    {"z", 0},      {"est", -300},
		     {"edt", -240}, {"cst", -360}, {"cdt", -300}, {"mst", -420},
		     {"mdt", -360}, {"pst", -480}, {"pdt", -420}};
	struct dtok d = {s, n, 0};
	char w[8];
	size_t save = d.i;
	if (dword(&d, w, sizeof w) > 0) {
		if (!dchar(&d, ','))
			return json_null();
	} else {
		d.i = save;
	}
	int64_t day, year, hh, mm, ss = 0;
	if (!dnum(&d, 1, 2, &day) || dword(&d, w, sizeof w) != 3)
		return json_null();
	int mon = 0;
	while (mon < 12 && strcmp(w, months[mon]) != 0)
		mon++;
	if (mon == 12)
		return json_null();
	save = d.i;
	dskip(&d);
	size_t ystart = d.i;
	if (!dnum(&d, 2, 4, &year))
		return json_null();
	size_t ydigits = d.i - ystart;
	if (ydigits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ydigits == 3)
		year += 1900;
	(void)save;
	if (!dnum(&d, 1, 2, &hh) || !dchar(&d, ':') || !dnum(&d, 2, 2, &mm))
		return json_null();
	if (dchar(&d, ':') && !dnum(&d, 2, 2, &ss))
		return json_null();
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (year < 1900 || day < 1 || day > mdays[mon] || (mon == 1 && day == 29 && !leap) ||
	    hh > 23 || mm > 59 || ss > 60)
		return json_null();
	int off = 0;
	dskip(&d);
	if (d.i < d.n && (d.s[d.i] == '+' || d.s[d.i] == '-')) {
		int sign = d.s[d.i] == '-' ? -1 : 1;
		d.i++;
		int64_t z;
		size_t zs = d.i;
		if (!dnum(&d, 4, 4, &z) || d.i - zs != 4 || z % 100 > 59)
			return json_null();
		off = sign * (int)(z / 100 * 60 + z % 100);
	} else if (dword(&d, w, sizeof w) > 0) {
		size_t k = 0;
		while (k < sizeof zones / sizeof zones[0] && strcmp(w, zones[k].name) != 0)
			k++;
		/* RFC 5322 4.3: other (military) zones are to be taken as
		 * -0000, an unknown offset */
		off = k < sizeof zones / sizeof zones[0] ? zones[k].off : 0;
	} else {
		return json_null();
	}
	dskip(&d);
	if (d.i != d.n)
		return json_null();
	char out[128];
	if (off == 0)
		snprintf(out, sizeof out,
			 "%04" PRId64 "-%02d-%02" PRId64 "T%02" PRId64 ":%02" PRId64 ":%02" PRId64
			 "Z",
			 year, mon + 1, day, hh, mm, ss);
	else
		snprintf(out, sizeof out,
			 "%04" PRId64 "-%02d-%02" PRId64 "T%02" PRId64 ":%02" PRId64 ":%02" PRId64
			 "%c%02d:%02d",
			 year, mon + 1, day, hh, mm, ss, off < 0 ? '-' : '+', abs(off) / 60,
			 abs(off) % 60);
	return json_string(out);
}

/* ------------------------------------------------------ header props */

enum form { F_RAW, F_TEXT, F_ADDRESSES, F_GROUPED, F_MSGIDS, F_DATE, F_URLS };

static const char *const form_names[] = {"Raw",        "Text", "Addresses", "GroupedAddresses",
					 "MessageIds", "Date", "URLs"};

/* The fields RFC 8621 4.1.2 names for each form but Raw; a field defined
 * by RFC 5322 or RFC 2369 allows only the forms that list it. */
static const char *const text_fields[] = {"Subject", "Comments", "Keywords", "List-Id", NULL};
static const char *const addr_fields[] = {
    "From",        "Sender",        "Reply-To",        "To",        "Cc",        "Bcc",
    "Resent-From", "Resent-Sender", "Resent-Reply-To", "Resent-To", "Resent-Cc", "Resent-Bcc",
    NULL};
static const char *const msgid_fields[] = {"Message-ID", "In-Reply-To", "References",
					   "Resent-Message-ID", NULL};
static const char *const date_fields[] = {"Date", "Resent-Date", NULL};
static const char *const url_fields[] = {"List-Help", "List-Unsubscribe", "List-Subscribe",
					 "List-Post", "List-Owner",       "List-Archive",
					 NULL};
static const char *const defined_fields[] = {"Date",
					     "From",
					     "Sender",
					     "Reply-To",
					     "To",
					     "Cc",
					     "Bcc",
					     "Message-ID",
					     "In-Reply-To",
					     "References",
					     "Subject",
					     "Comments",
					     "Keywords",
					     "Resent-Date",
					     "Resent-From",
					     "Resent-Sender",
					     "Resent-To",
					     "Resent-Cc",
					     "Resent-Bcc",
					     "Resent-Message-ID",
					     "Return-Path",
					     "Received",
					     "List-Help",
					     "List-Unsubscribe",
					     "List-Subscribe",
					     "List-Post",
					     "List-Owner",
					     "List-Archive",
					     NULL};

static bool in_list(const char *name, size_t n, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++)
		if (strutil_eq_ci(name, n, list[i]))
			return true;
	return false;
}

static bool form_allowed(const char *name, size_t n, enum form f)
{
	const char *const *lists[] = {NULL,         text_fields, addr_fields, addr_fields,
				      msgid_fields, date_fields, url_fields};
	if (f == F_RAW || !in_list(name, n, defined_fields))
		return true;
	return in_list(name, n, lists[f]);
}

struct hprop {
	const char *name; /* in the property */
	size_t name_len;
	enum form form;
	bool all;
};

/* "header:Name[:asForm][:all]" into h: true, else false with why. */
static bool hprop_parse(const char *p, struct hprop *h, char *why, size_t whysz)
{
	if (strncmp(p, "header:", 7) != 0) {
		snprintf(why, whysz, "unknown property");
		return false;
	}
	const char *s = p + 7;
	size_t n = strcspn(s, ":");
	h->name = s;
	h->name_len = n;
	h->form = F_RAW;
	h->all = false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 33 || (unsigned char)s[i] > 126)
			n = 0;
	if (n == 0) {
		snprintf(why, whysz, "bad header field name in %.200s", p);
		return false;
	}
	s += n;
	if (strncmp(s, ":as", 3) == 0) {
		size_t fl = strcspn(s + 3, ":");
		size_t k = 0;
		while (k < sizeof form_names / sizeof form_names[0] &&
		       !(strlen(form_names[k]) == fl && strncmp(s + 3, form_names[k], fl) == 0))
			k++;
		if (k == sizeof form_names / sizeof form_names[0]) {
			snprintf(why, whysz, "unknown header form in %.200s", p);
			return false;
		}
		h->form = (enum form)k;
		s += 3 + fl;
	}
	if (strcmp(s, ":all") == 0) {
		h->all = true;
		s += 4;
	}
	if (*s != '\0') {
		snprintf(why, whysz, "bad header property %.200s", p);
		return false;
	}
	if (!form_allowed(h->name, h->name_len, h->form)) {
		snprintf(why, whysz, "the form of %.200s is not allowed on that field", p);
		return false;
	}
	return true;
}

static json_t *form_value(enum form f, const char *v, size_t n)
{
	switch (f) {
	case F_RAW:
		return jstr(v, n);
	case F_TEXT:
		return text_form(v, n);
	case F_ADDRESSES:
		return addresses(v, n);
	case F_GROUPED:
		return grouped_addresses(v, n);
	case F_MSGIDS:
		return bracket_list(v, n, false);
	case F_DATE: {
		struct buf u = BUF_INIT;
		unfold(v, n, &u);
		json_t *j = date_form(buf_cstr(&u), u.len);
		buf_free(&u);
		return j;
	}
	case F_URLS:
		return bracket_list(v, n, true);
	}
	return json_null();
}

struct fields {
	struct mime_part_field *v;
	size_t n;
};

static json_t *header_value(const struct fields *fl, const struct hprop *h)
{
	if (h->all) {
		json_t *a = json_array();
		for (size_t i = 0; i < fl->n; i++)
			if (fl->v[i].name_len == h->name_len &&
			    strncasecmp(fl->v[i].name, h->name, h->name_len) == 0)
				json_array_append_new(
				    a, form_value(h->form, fl->v[i].value, fl->v[i].value_len));
		return a;
	}
	for (size_t i = fl->n; i-- > 0;)
		if (fl->v[i].name_len == h->name_len &&
		    strncasecmp(fl->v[i].name, h->name, h->name_len) == 0)
			return form_value(h->form, fl->v[i].value, fl->v[i].value_len);
	/* Addresses on a missing field: null, as for every single value */
	return json_null();
}

static json_t *headers_json(const struct fields *fl)
{
	json_t *a = json_array();
	for (size_t i = 0; i < fl->n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "name", jstr(fl->v[i].name, fl->v[i].name_len));
		json_object_set_new(o, "value", jstr(fl->v[i].value, fl->v[i].value_len));
		json_array_append_new(a, o);
	}
	return a;
}

/* The convenience properties of 4.1.3 and their header properties. */
static const struct {
	const char *prop, *field;
	enum form form;
} conv[] = {
    {"messageId", "Message-ID", F_MSGIDS},
    {"inReplyTo", "In-Reply-To", F_MSGIDS},
    {"references", "References", F_MSGIDS},
    {"sender", "Sender", F_ADDRESSES},
    {"from", "From", F_ADDRESSES},
    {"to", "To", F_ADDRESSES},
    {"cc", "Cc", F_ADDRESSES},
    {"bcc", "Bcc", F_ADDRESSES},
    {"replyTo", "Reply-To", F_ADDRESSES},
    {"subject", "Subject", F_TEXT},
    {"sentAt", "Date", F_DATE},
};

static const char *const email_props[] = {
    "headers",     "bodyStructure", "bodyValues", "textBody", "htmlBody",
    "attachments", "hasAttachment", "preview",    "size",     NULL};
static const char *const part_props[] = {
    "partId",      "blobId", "size",     "headers",  "name",     "type", "charset",
    "disposition", "cid",    "language", "location", "subParts", NULL};

bool jmap_email_prop_ok(const char *name, bool body_part, char *why, size_t whysz)
{
	const char *const *list = body_part ? part_props : email_props;
	for (size_t i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	if (!body_part)
		for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++)
			if (strcmp(conv[i].prop, name) == 0)
				return true;
	struct hprop h;
	return hprop_parse(name, &h, why, whysz);
}

/* ---------------------------------------------------------- body parts */

struct bpart {
	const struct mime_part *mp;
	char *part_id; /* NULL for a multipart */
	char *blob_id; /* NULL for a multipart or an id past 255 */
	char *type;
	char *charset; /* NULL: null */
	char *disposition;
	char *name;
	struct fields fields;
	size_t first, n_sub; /* sub-parts: parts[first .. first + n_sub) by sub[] */
	size_t *sub;
};

struct email {
	const char *msg;
	size_t len;
	struct mime_tree *t;
	struct bpart *parts;
	size_t n, cap;
	size_t *text, *html, *att; /* indexes into parts */
	size_t n_text, n_html, n_att;
};

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static size_t add_part(struct email *e, const struct mime_part *mp, const unsigned *path,
		       size_t depth, const char *blob_id)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->parts = xreallocarray(e->parts, e->cap, sizeof *e->parts);
	}
	size_t idx = e->n++;
	struct bpart *b = &e->parts[idx];
	memset(b, 0, sizeof *b);
	b->mp = mp;
	struct buf type = BUF_INIT, cs = BUF_INIT, tmp = BUF_INIT;
	bool has_cs = false;
	(void)mime_part_type(e->t, mp, &type, &cs, &has_cs);
	b->type = buf_steal(&type, NULL);
	bool text = starts(b->type, "text/");
	if (has_cs && text) {
		struct buf v = BUF_INIT;
		bool pr = false;
		(void)mime_part_to_utf8("utf-8", 5, buf_cstr(&cs), cs.len, &v, &pr);
		b->charset = buf_steal(&v, NULL);
	} else if (text) {
		b->charset = xstrdup("us-ascii");
	}
	buf_free(&cs);
	if (mime_part_disposition(e->t, mp, &tmp) == 1)
		b->disposition = buf_steal(&tmp, NULL);
	buf_reset(&tmp);
	if (mime_part_name(e->t, mp, &tmp) == 1) {
		struct buf v = BUF_INIT;
		bool pr = false;
		(void)mime_part_to_utf8("utf-8", 5, buf_cstr(&tmp), tmp.len, &v, &pr);
		b->name = buf_steal(&v, NULL);
	}
	buf_free(&tmp);
	b->fields.n = mime_part_fields(e->t, mp, JMAP_EMAIL_MAX_FIELDS, &b->fields.v);
	if (!mime_part_is_multipart(mp)) {
		struct buf id = BUF_INIT, bid = BUF_INIT;
		(void)buf_puts(&bid, blob_id);
		for (size_t i = 0; i < depth; i++) {
			(void)buf_printf(&id, i ? ".%u" : "%u", path[i]);
			(void)buf_printf(&bid, "_%u", path[i]);
		}
		b->part_id = buf_steal(&id, NULL);
		if (bid.len <= 255)
			b->blob_id = buf_steal(&bid, NULL);
		buf_free(&bid);
	}
	return idx;
}

/* The tree below mp (at section path[0..depth)) into e->parts; returns
 * mp's index. */
static size_t build(struct email *e, const struct mime_part *mp, unsigned *path, size_t depth,
		    const char *blob_id)
{
	size_t idx = add_part(e, mp, path, depth, blob_id);
	if (!mime_part_is_multipart(mp) || depth >= MIME_MAX_DEPTH + 1)
		return idx;
	size_t n = 0;
	for (const struct mime_part *c = mime_part_first(mp); c != NULL; c = mime_part_next(c))
		n++;
	size_t *sub = n ? xcalloc(n, sizeof *sub) : NULL;
	unsigned k = 0;
	for (const struct mime_part *c = mime_part_first(mp); c != NULL; c = mime_part_next(c)) {
		path[depth] = ++k;
		sub[k - 1] = build(e, c, path, depth + 1, blob_id);
	}
	e->parts[idx].sub = sub;
	e->parts[idx].n_sub = n;
	return idx;
}

struct plist {
	size_t *v;
	size_t n, cap;
};

static void plist_add(struct plist *l, size_t x)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xreallocarray(l->v, l->cap, sizeof *l->v);
	}
	l->v[l->n++] = x;
}

static bool inline_media(const char *type)
{
	return starts(type, "image/") || starts(type, "audio/") || starts(type, "video/");
}

/* RFC 8621 4.1.4's parseStructure, as written there. */
static void parse_structure(struct email *e, const size_t *parts, size_t n, const char *mtype,
			    bool in_alt, struct plist *html, struct plist *text, struct plist *att)
{
	bool alt = strcmp(mtype, "alternative") == 0;
	size_t text_len = text ? text->n : (size_t)-1;
	size_t html_len = html ? html->n : (size_t)-1;
	for (size_t i = 0; i < n; i++) {
		size_t pi = parts[i];
		const struct bpart *p = &e->parts[pi];
		bool multi = starts(p->type, "multipart/");
		bool is_inline =
		    (p->disposition == NULL || strcmp(p->disposition, "attachment") != 0) &&
		    (strcmp(p->type, "text/plain") == 0 || strcmp(p->type, "text/html") == 0 ||
		     inline_media(p->type)) &&
		    (i == 0 ||
		     (strcmp(mtype, "related") != 0 && (inline_media(p->type) || p->name == NULL)));
		if (multi) {
			const char *sub = strchr(p->type, '/') + 1;
			if (mime_part_is_multipart(p->mp))
				parse_structure(e, p->sub, p->n_sub, sub,
						in_alt || strcmp(sub, "alternative") == 0, html,
						text, att);
		} else if (is_inline) {
			if (alt) {
				if (strcmp(p->type, "text/plain") == 0)
					plist_add(text, pi);
				else if (strcmp(p->type, "text/html") == 0)
					plist_add(html, pi);
				else
					plist_add(att, pi);
				continue;
			} else if (in_alt) {
				if (strcmp(p->type, "text/plain") == 0)
					html = NULL;
				if (strcmp(p->type, "text/html") == 0)
					text = NULL;
			}
			if (text)
				plist_add(text, pi);
			if (html)
				plist_add(html, pi);
			if ((!text || !html) && inline_media(p->type))
				plist_add(att, pi);
		} else {
			plist_add(att, pi);
		}
	}
	if (alt && text && html) {
		if (text_len == text->n && html_len != html->n)
			for (size_t i = html_len; i < html->n; i++)
				plist_add(text, html->v[i]);
		if (html_len == html->n && text_len != text->n)
			for (size_t i = text_len; i < text->n; i++)
				plist_add(html, text->v[i]);
	}
}

static void email_open(struct email *e, const char *msg, size_t len, const char *blob_id)
{
	memset(e, 0, sizeof *e);
	e->msg = msg;
	e->len = len;
	e->t = mime_parse(msg, len);
	unsigned path[MIME_MAX_DEPTH + 2];
	const struct mime_part *root = mime_part_root(e->t);
	if (mime_part_is_multipart(root)) {
		(void)build(e, root, path, 0, blob_id);
	} else {
		/* a single-part message: its body is section 1 */
		path[0] = 1;
		(void)add_part(e, root, path, 1, blob_id);
	}
	struct plist text = {0}, html = {0}, att = {0};
	size_t top = 0;
	parse_structure(e, &top, 1, "mixed", false, &html, &text, &att);
	e->text = text.v;
	e->n_text = text.n;
	e->html = html.v;
	e->n_html = html.n;
	e->att = att.v;
	e->n_att = att.n;
}

static void email_close(struct email *e)
{
	for (size_t i = 0; i < e->n; i++) {
		struct bpart *b = &e->parts[i];
		free(b->part_id);
		free(b->blob_id);
		free(b->type);
		free(b->charset);
		free(b->disposition);
		free(b->name);
		free(b->fields.v);
		free(b->sub);
	}
	free(e->parts);
	free(e->text);
	free(e->html);
	free(e->att);
	mime_tree_free(&e->t);
}

/* The value of the first field named name, unfolded, into out: true, or
 * false when there is none. */
static bool field_first(const struct fields *fl, const char *name, struct buf *out)
{
	for (size_t i = 0; i < fl->n; i++)
		if (strutil_eq_ci(fl->v[i].name, fl->v[i].name_len, name)) {
			unfold(fl->v[i].value, fl->v[i].value_len, out);
			return true;
		}
	return false;
}

/* Without CFWS and (strip_angle) one pair of surrounding <>. */
static json_t *clean_value(const struct fields *fl, const char *name, bool strip_angle)
{
	struct buf v = BUF_INIT, c = BUF_INIT;
	if (!field_first(fl, name, &v)) {
		buf_free(&v);
		return json_null();
	}
	const char *s = buf_cstr(&v);
	for (size_t i = 0; i < v.len;) {
		if (s[i] == '(')
			i = skip_comment(s, v.len, i, NULL);
		else if (is_wsp(s[i]))
			i++;
		else
			(void)buf_putc(&c, s[i++]);
	}
	const char *r = buf_cstr(&c);
	size_t rl = c.len;
	if (strip_angle && rl >= 2 && r[0] == '<' && r[rl - 1] == '>') {
		r++;
		rl -= 2;
	}
	json_t *j = jstr(r, rl);
	buf_free(&v);
	buf_free(&c);
	return j;
}

static json_t *language_json(const struct fields *fl)
{
	struct buf v = BUF_INIT;
	if (!field_first(fl, "Content-Language", &v)) {
		buf_free(&v);
		return json_null();
	}
	json_t *a = json_array();
	struct buf tag = BUF_INIT;
	const char *s = buf_cstr(&v);
	for (size_t i = 0; i <= v.len;) {
		if (i == v.len || s[i] == ',') {
			if (tag.len > 0)
				json_array_append_new(a, jstr(buf_cstr(&tag), tag.len));
			buf_reset(&tag);
			i++;
		} else if (s[i] == '(') {
			i = skip_comment(s, v.len, i, NULL);
		} else {
			if (!is_wsp(s[i]))
				(void)buf_putc(&tag, s[i]);
			i++;
		}
	}
	buf_free(&tag);
	buf_free(&v);
	return a;
}

static size_t part_size(const struct email *e, const struct bpart *b)
{
	struct buf c = BUF_INIT;
	(void)mime_part_content(e->t, b->mp, SIZE_MAX, &c);
	size_t n = c.len;
	buf_free(&c);
	return n;
}

static json_t *nullable(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

static json_t *part_json(const struct email *e, size_t idx, json_t *props)
{
	const struct bpart *b = &e->parts[idx];
	json_t *o = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(props, i, p)
	{
		const char *k = json_string_value(p);
		json_t *v = NULL;
		if (strcmp(k, "partId") == 0)
			v = nullable(b->part_id);
		else if (strcmp(k, "blobId") == 0)
			v = nullable(b->blob_id);
		else if (strcmp(k, "size") == 0)
			v = json_integer((json_int_t)part_size(e, b));
		else if (strcmp(k, "headers") == 0)
			v = headers_json(&b->fields);
		else if (strcmp(k, "name") == 0)
			v = nullable(b->name);
		else if (strcmp(k, "type") == 0)
			v = jstr(b->type, strlen(b->type));
		else if (strcmp(k, "charset") == 0)
			v = nullable(b->charset);
		else if (strcmp(k, "disposition") == 0)
			v = nullable(b->disposition);
		else if (strcmp(k, "cid") == 0)
			v = clean_value(&b->fields, "Content-ID", true);
		else if (strcmp(k, "language") == 0)
			v = language_json(&b->fields);
		else if (strcmp(k, "location") == 0)
			v = clean_value(&b->fields, "Content-Location", false);
		else if (strcmp(k, "subParts") == 0) {
			if (mime_part_is_multipart(b->mp)) {
				v = json_array();
				for (size_t s = 0; s < b->n_sub; s++)
					json_array_append_new(v, part_json(e, b->sub[s], props));
			} else {
				v = json_null();
			}
		} else {
			struct hprop h;
			char why[8];
			if (hprop_parse(k, &h, why, sizeof why))
				v = header_value(&b->fields, &h);
		}
		if (v != NULL)
			json_object_set_new(o, k, v);
	}
	return o;
}

static json_t *part_list(const struct email *e, const size_t *v, size_t n, json_t *props)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, part_json(e, v[i], props));
	return a;
}

/* A part's text as UTF-8 with LF line ends (bodyValues, preview);
 * *problem for an unknown transfer encoding or charset trouble. */
static void part_text(const struct email *e, const struct bpart *b, struct buf *out, bool *problem)
{
	struct buf raw = BUF_INIT, u = BUF_INIT;
	if (mime_part_content(e->t, b->mp, SIZE_MAX, &raw) == -2)
		*problem = true;
	const char *cs = b->charset != NULL ? b->charset : "us-ascii";
	(void)mime_part_to_utf8(cs, strlen(cs), buf_cstr(&raw), raw.len, &u, problem);
	for (size_t i = 0; i < u.len; i++)
		if (!(u.data[i] == '\r' && i + 1 < u.len && u.data[i + 1] == '\n'))
			(void)buf_putc(out, u.data[i]);
	buf_free(&raw);
	buf_free(&u);
}

/* The longest prefix of s[0..n) of at most max octets that ends on a
 * code point (and, for HTML, not inside a tag). */
static size_t cut_utf8(const char *s, size_t n, size_t max, bool html)
{
	if (n <= max)
		return n;
	size_t k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
		k--;
	if (html) {
		for (size_t i = k; i-- > 0;) {
			if (s[i] == '>')
				break;
			if (s[i] == '<') {
				k = i;
				break;
			}
		}
	}
	return k;
}

static void add_value(const struct email *e, size_t idx, size_t max, json_t *values)
{
	const struct bpart *b = &e->parts[idx];
	if (b->part_id == NULL || !starts(b->type, "text/") ||
	    json_object_get(values, b->part_id) != NULL)
		return;
	struct buf t = BUF_INIT;
	bool problem = false;
	part_text(e, b, &t, &problem);
	size_t n =
	    max > 0 ? cut_utf8(buf_cstr(&t), t.len, max, strcmp(b->type, "text/html") == 0) : t.len;
	json_t *v = json_object();
	json_object_set_new(v, "value", jstr(buf_cstr(&t), n));
	json_object_set_new(v, "isEncodingProblem", json_boolean(problem));
	json_object_set_new(v, "isTruncated", json_boolean(n < t.len));
	json_object_set_new(values, b->part_id, v);
	buf_free(&t);
}

/* The preview (preview.h) of the text parts of textBody. */
static json_t *preview_json(const struct email *e)
{
	struct buf out = BUF_INIT;
	for (size_t i = 0; i < e->n_text && !preview_full(&out, JMAP_EMAIL_PREVIEW_CHARS); i++) {
		const struct bpart *b = &e->parts[e->text[i]];
		bool html = strcmp(b->type, "text/html") == 0;
		if (strcmp(b->type, "text/plain") != 0 && !html)
			continue;
		struct buf t = BUF_INIT;
		bool problem = false;
		part_text(e, b, &t, &problem);
		preview_add(&out, buf_cstr(&t), t.len, html, JMAP_EMAIL_PREVIEW_CHARS);
		buf_free(&t);
	}
	json_t *j = jstr(buf_cstr(&out), preview_len(&out, JMAP_EMAIL_PREVIEW_CHARS));
	buf_free(&out);
	return j;
}

static bool has_attachment(const struct email *e)
{
	for (size_t i = 0; i < e->n_att; i++) {
		const char *d = e->parts[e->att[i]].disposition;
		if (d == NULL || strcmp(d, "inline") != 0)
			return true;
	}
	return false;
}

void jmap_email_parts_fill(const char *msg, size_t len, const struct jmap_email_opts *o,
			   json_t *obj)
{
	static const char *const default_body[] = {"partId",   "blobId",   "size",        "name",
						   "type",     "charset",  "disposition", "cid",
						   "language", "location", NULL};
	struct email e;
	email_open(&e, msg, len, o->blob_id != NULL ? o->blob_id : "");
	json_t *bprops = o->body_props != NULL ? json_incref(o->body_props) : json_array();
	if (o->body_props == NULL)
		for (size_t i = 0; default_body[i] != NULL; i++)
			json_array_append_new(bprops, json_string(default_body[i]));
	const struct fields *top = &e.parts[0].fields;
	size_t i;
	json_t *p;
	json_array_foreach(o->props, i, p)
	{
		const char *k = json_string_value(p);
		json_t *v = NULL;
		if (strcmp(k, "headers") == 0) {
			v = headers_json(top);
		} else if (strcmp(k, "size") == 0) {
			v = json_integer((json_int_t)len);
		} else if (strcmp(k, "bodyStructure") == 0) {
			v = part_json(&e, 0, bprops);
		} else if (strcmp(k, "textBody") == 0) {
			v = part_list(&e, e.text, e.n_text, bprops);
		} else if (strcmp(k, "htmlBody") == 0) {
			v = part_list(&e, e.html, e.n_html, bprops);
		} else if (strcmp(k, "attachments") == 0) {
			v = part_list(&e, e.att, e.n_att, bprops);
		} else if (strcmp(k, "hasAttachment") == 0) {
			v = json_boolean(has_attachment(&e));
		} else if (strcmp(k, "preview") == 0) {
			v = preview_json(&e);
		} else if (strcmp(k, "bodyValues") == 0) {
			v = json_object();
			if (o->fetch_all)
				for (size_t x = 0; x < e.n; x++)
					add_value(&e, x, o->max_body_value_bytes, v);
			if (o->fetch_text)
				for (size_t x = 0; x < e.n_text; x++)
					add_value(&e, e.text[x], o->max_body_value_bytes, v);
			if (o->fetch_html)
				for (size_t x = 0; x < e.n_html; x++)
					add_value(&e, e.html[x], o->max_body_value_bytes, v);
		} else {
			size_t c = 0;
			while (c < sizeof conv / sizeof conv[0] && strcmp(conv[c].prop, k) != 0)
				c++;
			struct hprop h;
			char why[8];
			if (c < sizeof conv / sizeof conv[0]) {
				h.name = conv[c].field;
				h.name_len = strlen(conv[c].field);
				h.form = conv[c].form;
				h.all = false;
				v = header_value(top, &h);
			} else if (hprop_parse(k, &h, why, sizeof why)) {
				v = header_value(top, &h);
			}
		}
		if (v != NULL)
			json_object_set_new(obj, k, v);
	}
	json_decref(bprops);
	email_close(&e);
}

bool jmap_email_has_attachment(const char *msg, size_t len)
{
	struct email e;
	email_open(&e, msg, len, "");
	bool r = has_attachment(&e);
	email_close(&e);
	return r;
}

bool jmap_email_parts_path(const char *s, unsigned *path, size_t max, size_t *n)
{
	*n = 0;
	if (*s == '\0')
		return false;
	while (*s == '_') {
		s++;
		size_t k = 0;
		while (s[k] >= '0' && s[k] <= '9')
			k++;
		uint64_t v;
		if (k == 0 || s[0] == '0' || *n == max ||
		    strutil_parse_u64(s, k, MIME_MAX_PARTS, &v) < 0)
			return false;
		path[(*n)++] = (unsigned)v;
		s += k;
	}
	return *s == '\0' && *n > 0;
}

/* The part of t that the section numbers path[0..*used) name, walking
 * multiparts only (as part ids are made: a single-part message's body is
 * 1); *used says how many were taken.  NULL when there is none. */
static const struct mime_part *part_walk(const struct mime_tree *t, const unsigned *path, size_t n,
					 size_t *used)
{
	const struct mime_part *p = mime_part_root(t);
	size_t i = 0;
	if (!mime_part_is_multipart(p)) {
		*used = 1;
		return path[0] == 1 ? p : NULL;
	}
	while (i < n && p != NULL && mime_part_is_multipart(p)) {
		const struct mime_part *c = mime_part_first(p);
		for (unsigned k = 1; c != NULL && k < path[i]; k++)
			c = mime_part_next(c);
		p = c;
		i++;
	}
	*used = i;
	return p;
}

int jmap_email_parts_blob(const char *msg, size_t len, const unsigned *path, size_t n,
			  struct buf *out)
{
	/* Numbers past an attached message (message/rfc822 or message/global)
	 * go on in that message as Email/parse of its blob numbers it: a
	 * message of its own. */
	struct buf inner = BUF_INIT, type = BUF_INIT, cs = BUF_INIT;
	int r = 0;
	while (n > 0) {
		struct mime_tree *t = mime_parse(msg, len);
		size_t used = 0;
		const struct mime_part *p = part_walk(t, path, n, &used);
		bool has_cs;
		buf_reset(&type);
		if (p == NULL || mime_part_is_multipart(p)) {
			mime_tree_free(&t);
			break;
		}
		if (used == n) {
			r = mime_part_content(t, p, SIZE_MAX, out) == -1 ? -1 : 1;
			mime_tree_free(&t);
			break;
		}
		(void)mime_part_type(t, p, &type, &cs, &has_cs);
		if (strcmp(buf_cstr(&type), "message/rfc822") != 0 &&
		    strcmp(buf_cstr(&type), "message/global") != 0) {
			mime_tree_free(&t);
			break;
		}
		struct buf next = BUF_INIT;
		int c = mime_part_content(t, p, SIZE_MAX, &next);
		mime_tree_free(&t);
		buf_free(&inner);
		inner = next;
		if (c == -1) {
			r = -1;
			break;
		}
		msg = buf_cstr(&inner);
		len = inner.len;
		path += used;
		n -= used;
	}
	buf_free(&inner);
	buf_free(&type);
	buf_free(&cs);
	return r;
}
