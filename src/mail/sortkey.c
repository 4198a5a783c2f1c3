/*
 * sortkey.c - sort and thread keys from header values (see sortkey.h):
 * RFC 5256 base subject, sent date and Message IDs, and the case folding
 * string comparisons use.
 *
 * Mail layer; no allocation beyond the caller's buffers and no state.
 * The IMAP layer (src/imap/imap-sort.c, imap-search.c) calls these on the
 * decoded header values its header cache holds.
 */
#include "sortkey.h"

#include <string.h>

#include "buf.h"
#include "caldate.h"

/* ------------------------------------------------------------ folding */

/* Simple case folding of one code point (see sortkey_fold). */
static uint32_t fold_cp(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 32;
	if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
		return c | 1;
	if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
		return (c & 1) ? c + 1 : c;
	if (c == 0x178)
		return 0xFF;
	if (c >= 0x391 && c <= 0x3AB && c != 0x3A2)
		return c + 32;
	if (c == 0x3C2)
		return 0x3C3;
	if (c >= 0x410 && c <= 0x42F)
		return c + 32;
	if (c >= 0x400 && c <= 0x40F)
		return c + 80;
	if (c == 0x1E9E)
		return 0xDF;
	return c;
}

int sortkey_fold(const char *p, size_t n, struct buf *out)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 0;
		if (len == 0 || i + len > n) {
			if (buf_putc(out, (char)c) < 0)
				return -1;
			i++;
			continue;
		}
		if (len == 1) {
			if (buf_putc(out, (char)fold_cp(c)) < 0)
				return -1;
			i++;
			continue;
		}
		bool ok = true;
		uint32_t cp = len == 2 ? (c & 0x1Fu) : (c & 0x0Fu);
		for (size_t k = 1; k < len; k++) {
			unsigned char cc = (unsigned char)p[i + k];
			ok = ok && (cc & 0xC0) == 0x80;
			cp = (cp << 6) | (cc & 0x3Fu);
		}
		uint32_t f = ok ? fold_cp(cp) : cp;
		if (!ok || f == cp) {
			if (buf_append(out, p + i, ok ? len : 1) < 0)
				return -1;
			i += ok ? len : 1;
			continue;
		}
		/* folded code points below 0x800 take two octets, others three */
		char u[3];
		size_t ul;
		if (f < 0x800) {
			u[0] = (char)(0xC0 | (f >> 6));
			u[1] = (char)(0x80 | (f & 0x3F));
			ul = 2;
		} else {
			u[0] = (char)(0xE0 | (f >> 12));
			u[1] = (char)(0x80 | ((f >> 6) & 0x3F));
			u[2] = (char)(0x80 | (f & 0x3F));
			ul = 3;
		}
		if (buf_append(out, u, ul) < 0)
			return -1;
		i += len;
	}
	return 0;
}

/* ------------------------------------------------------- base subject */

static bool ci_at(const char *w, size_t i, size_t e, const char *lit)
{
	size_t l = strlen(lit);
	if (e - i < l)
		return false;
	for (size_t k = 0; k < l; k++) {
		char c = w[i + k];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != lit[k])
			return false;
	}
	return true;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at w[i..e): the index after it, or 0
 * when there is none (i is never 0 for a match: a blob is not empty). */
static size_t blob_end(const char *w, size_t i, size_t e)
{
	if (i >= e || w[i] != '[')
		return 0;
	size_t j = i + 1;
	while (j < e && w[j] != '[' && w[j] != ']' && w[j] != '\0')
		j++;
	if (j >= e || w[j] != ']')
		return 0;
	for (j++; j < e && w[j] == ' '; j++)
		;
	return j;
}

/* subj-leader's first form, *subj-blob subj-refwd, where subj-refwd =
 * ("re" / ("fw" ["d"])) *WSP [subj-blob] ":", at w[i..e): the index after
 * it, or 0. */
static size_t refwd_end(const char *w, size_t i, size_t e)
{
	for (size_t k; (k = blob_end(w, i, e)) != 0;)
		i = k;
	if (ci_at(w, i, e, "re")) {
		i += 2;
	} else if (ci_at(w, i, e, "fw")) {
		i += 2;
		if (i < e && (w[i] == 'd' || w[i] == 'D'))
			i++;
	} else {
		return 0;
	}
	while (i < e && w[i] == ' ')
		i++;
	size_t k = blob_end(w, i, e);
	if (k != 0)
		i = k;
	return i < e && w[i] == ':' ? i + 1 : 0;
}

int sortkey_base_subject(const char *s, size_t n, struct buf *out, bool *reply)
{
	char w[SORTKEY_SUBJECT_MAX];
	size_t e = 0;
	bool re = false;

	if (n > sizeof w)
		n = sizeof w;
	/* (1) tabs and continuations to a space, runs of spaces to one */
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && e > 0 && w[e - 1] == ' ')
			continue;
		w[e++] = c;
	}
	size_t b = 0;
	for (;;) {
		/* (2) subj-trailer = "(fwd)" / WSP, as often as it matches */
		for (;;) {
			if (e > b && w[e - 1] == ' ') {
				e--;
			} else if (e - b >= 5 && ci_at(w, e - 5, e, "(fwd)")) {
				e -= 5;
				re = true;
			} else {
				break;
			}
		}
		/* (3) subj-leaders, (4) a subj-blob that leaves a non-empty
		 * subj-base, (5) both again until neither matches */
		for (;;) {
			size_t k;
			if (b < e && w[b] == ' ') {
				b++;
				continue;
			}
			if ((k = refwd_end(w, b, e)) != 0) {
				b = k;
				re = true;
				continue;
			}
			if ((k = blob_end(w, b, e)) != 0 && k < e) {
				b = k;
				continue;
			}
			break;
		}
		/* (6) "[fwd:" ... "]": unwrap and start again at (2) */
		if (e - b >= 6 && ci_at(w, b, e, "[fwd:") && w[e - 1] == ']') {
			b += 5;
			e--;
			re = true;
			continue;
		}
		break;
	}
	if (reply != NULL)
		*reply = re;
	return buf_append(out, w + b, e - b);
}

/* ---------------------------------------------------------- sent date */

/* Blanks, line ends and (nested) comments. */
static void skip_cfws(const char *s, size_t n, size_t *i)
{
	while (*i < n) {
		char c = s[*i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			(*i)++;
			continue;
		}
		if (c != '(')
			return;
		unsigned depth = 0;
		while (*i < n) {
			c = s[(*i)++];
			if (c == '\\' && *i < n)
				(*i)++;
			else if (c == '(')
				depth++;
			else if (c == ')' && --depth == 0)
				break;
		}
	}
}

/* Up to max digits at s[*i]: the number of digits read (value in *v). */
static size_t digits(const char *s, size_t n, size_t *i, size_t max, int *v)
{
	size_t k = 0;
	*v = 0;
	while (*i < n && k < max && s[*i] >= '0' && s[*i] <= '9') {
		*v = *v * 10 + (s[*i] - '0');
		(*i)++;
		k++;
	}
	return k;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The zone at s[*i] in seconds east of UTC; 0 for a missing or invalid
 * one (RFC 5256 2.2) and for military zones (RFC 5322 4.3: -0000). */
static int64_t zone_offset(const char *s, size_t n, size_t i)
{
	if (i < n && (s[i] == '+' || s[i] == '-')) {
		size_t k = i + 1;
		int v;
		if (digits(s, n, &k, 4, &v) != 4 || v % 100 > 59)
			return 0;
		int64_t off = (int64_t)(v / 100) * 3600 + (int64_t)(v % 100) * 60;
		return s[i] == '-' ? -off : off;
	}
	static const struct {
		const char *name;
		int hours;
	} zones[] = {{"ut", 0},   {"gmt", 0},  {"est", -5}, {"edt", -4}, {"cst", -6},
		     {"cdt", -5}, {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7}};
	size_t l = 0;
	while (i + l < n && is_alpha(s[i + l]))
		l++;
	for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++)
		if (strlen(zones[z].name) == l && ci_at(s, i, i + l, zones[z].name))
			return (int64_t)zones[z].hours * 3600;
	return 0;
}

int sortkey_sent_date(const char *s, size_t n, int64_t *t)
{
	static const char months[12][4] = {"jan", "feb", "mar", "apr", "may", "jun",
					   "jul", "aug", "sep", "oct", "nov", "dec"};
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	size_t i = 0;
	int day, year, mon = -1;

	skip_cfws(s, n, &i);
	if (i < n && is_alpha(s[i])) { /* day-of-week */
		while (i < n && is_alpha(s[i]))
			i++;
		skip_cfws(s, n, &i);
		if (i < n && s[i] == ',')
			i++;
		skip_cfws(s, n, &i);
	}
	if (digits(s, n, &i, 2, &day) == 0 || day < 1)
		return -1;
	skip_cfws(s, n, &i);
	for (int m = 0; m < 12; m++)
		if (ci_at(s, i, n, months[m]))
			mon = m;
	if (mon < 0)
		return -1;
	i += 3;
	while (i < n && is_alpha(s[i])) /* a month's full name */
		i++;
	skip_cfws(s, n, &i);
	size_t yd = digits(s, n, &i, 4, &year);
	if (yd < 2)
		return -1;
	if (yd == 2) /* RFC 5322 4.3 */
		year += year < 50 ? 2000 : 1900;
	else if (yd == 3)
		year += 1900;
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (day > mdays[mon] || (mon == 1 && day == 29 && !leap))
		return -1;
	int64_t secs = caldate_days_from_civil(year, mon + 1, day) * 86400;

	/* time-of-day and zone: 00:00:00 UTC when invalid */
	skip_cfws(s, n, &i);
	int hh, mm, ss = 0;
	if (digits(s, n, &i, 2, &hh) == 0 || hh > 23 || i >= n || s[i] != ':') {
		*t = secs;
		return 0;
	}
	i++;
	if (digits(s, n, &i, 2, &mm) != 2 || mm > 59) {
		*t = secs;
		return 0;
	}
	if (i < n && s[i] == ':') {
		i++;
		if (digits(s, n, &i, 2, &ss) != 2 || ss > 60) {
			*t = secs;
			return 0;
		}
		if (ss == 60) /* a leap second sorts with the one before it */
			ss = 59;
	}
	skip_cfws(s, n, &i);
	*t = secs + hh * 3600 + mm * 60 + ss - zone_offset(s, n, i);
	return 0;
}

/* --------------------------------------------------------- Message IDs */

int sortkey_msgid_next(const char *s, size_t n, size_t *pos, struct buf *out)
{
	char id[SORTKEY_MSGID_MAX];
	size_t i = *pos;

	while (i < n) {
		const char *lt = memchr(s + i, '<', n - i);
		if (lt == NULL)
			break;
		i = (size_t)(lt - s) + 1;
		size_t len = 0;
		bool ok = true, closed = false, restart = false;
		while (i < n && !closed && !restart) {
			char c = s[i];
			if (c == '>') {
				closed = true;
				i++;
			} else if (c == '<') {
				restart = true; /* a new "<" starts a new msg-id */
			} else if (c == '(') {
				skip_cfws(s, n, &i);
			} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
				i++;
			} else if (c == '"') {
				/* quoted-string: its content, escapes removed */
				for (i++; i < n && s[i] != '"'; i++) {
					if (s[i] == '\\' && i + 1 < n)
						i++;
					if (len < sizeof id)
						id[len++] = s[i];
					else
						ok = false;
				}
				if (i < n)
					i++;
			} else {
				if (c == '\\' && i + 1 < n)
					c = s[++i];
				if (len < sizeof id)
					id[len++] = c;
				else
					ok = false;
				i++;
			}
		}
		if (restart)
			continue;
		if (!closed)
			break;
		/* id-left "@" id-right, neither empty; a quoted id-left may
		 * hold '@', so the last '@' of the normalised form splits */
		const char *at = ok && len > 0 ? memrchr(id, '@', len) : NULL;
		if (at != NULL && at != id && at + 1 < id + len && memchr(id, '\0', len) == NULL) {
			*pos = i;
			return buf_append(out, id, len) < 0 ? -1 : 1;
		}
	}
	*pos = n;
	return 0;
}
