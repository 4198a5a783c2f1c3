/*
 * store-name.c - the checks every name passes before it reaches a database
 * or a path: domains, addresses, mailbox names, keywords and file ids.
 * Refusals carry a message fit for the CLI or a protocol reply.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store-private.h"
#include "strutil.h"

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool store_name_utf8(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;
	while (i < n) {
		unsigned char c = u[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t cp, min;
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (u[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

int store_name_domain(const char *in, char out[256], char *err, size_t errsz)
{
	size_t n = in ? strlen(in) : 0;
	if (n == 0) {
		store_err(err, errsz, "empty domain name");
		return -1;
	}
	if (n > 253) {
		store_err(err, errsz, "domain name too long (%zu bytes, at most 253)", n);
		return -1;
	}
	size_t label = 0;
	bool numeric = true;  /* is the current label all digits? */
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)in[i] : '.';
		if (c == '.') {
			if (label == 0 || in[i - 1] == '-') {
				store_err(err, errsz, "invalid domain name %.*s%s", 64, in,
					  n > 64 ? "..." : "");
				return -1;
			}
			if (i == n && numeric) {
				store_err(err, errsz, "invalid domain name %s (numeric top label)",
					  in);
				return -1;
			}
			label = 0;
			numeric = true;
			continue;
		}
		if (!is_alnum(c) && c != '-') {
			store_err(err, errsz, "invalid domain name %.*s%s (only letters, digits, "
				  "'-' and '.')", 64, in, n > 64 ? "..." : "");
			return -1;
		}
		if ((label == 0 && c == '-') || ++label > 63) {
			store_err(err, errsz, "invalid domain name %s", in);
			return -1;
		}
		if (c < '0' || c > '9')
			numeric = false;
	}
	memcpy(out, in, n + 1);
	strutil_lower(out, n);
	return 0;
}

static bool is_atext(unsigned char c)
{
	return is_alnum(c) || c >= 0x80 || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

int store_name_local(const char *p, size_t n, char *err, size_t errsz)
{
	if (n == 0) {
		store_err(err, errsz, "empty local part");
		return -1;
	}
	if (n > 64) {
		store_err(err, errsz, "local part too long (%zu bytes, at most 64)", n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '.') {
			if (i == 0 || i == n - 1 || p[i - 1] == '.') {
				store_err(err, errsz, "invalid local part %.*s (misplaced '.')",
					  (int)n, p);
				return -1;
			}
		} else if (!is_atext(c) || c == 0) {
			store_err(err, errsz, "invalid character in local part %.*s", (int)n, p);
			return -1;
		}
	}
	if (!store_name_utf8(p, n)) {
		store_err(err, errsz, "local part is not valid UTF-8");
		return -1;
	}
	return 0;
}

int store_name_address(const char *in, bool lower_local, bool allow_empty_local,
		       char local[256], char domain[256], char *err, size_t errsz)
{
	const char *at = in ? strchr(in, '@') : NULL;
	if (at == NULL || strchr(at + 1, '@') != NULL) {
		store_err(err, errsz, "invalid address %.*s (needs exactly one '@')", 200,
			  in ? in : "");
		return -1;
	}
	size_t ln = (size_t)(at - in);
	if (!(ln == 0 && allow_empty_local) && store_name_local(in, ln, err, errsz) < 0)
		return -1;
	if (store_name_domain(at + 1, domain, err, errsz) < 0)
		return -1;
	memcpy(local, in, ln);
	local[ln] = '\0';
	if (lower_local)
		strutil_lower(local, ln);
	return 0;
}

int store_name_mailbox(const char *in, char out[512], char *err, size_t errsz)
{
	size_t n = in ? strlen(in) : 0;
	if (n == 0) {
		store_err(err, errsz, "empty mailbox name");
		return -1;
	}
	if (n > 500) {
		store_err(err, errsz, "mailbox name too long (%zu bytes, at most 500)", n);
		return -1;
	}
	if (!store_name_utf8(in, n)) {
		store_err(err, errsz, "mailbox name is not valid UTF-8");
		return -1;
	}
	if (in[0] == '/' || in[n - 1] == '/' || strstr(in, "//") != NULL) {
		store_err(err, errsz, "invalid mailbox name %s (empty hierarchy level)", in);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		/* C0, DEL, and C1 controls (U+0080..U+009F: 0xC2 0x80..0x9F). */
		bool c1 = c == 0xc2 && i + 1 < n && (unsigned char)in[i + 1] >= 0x80 &&
			  (unsigned char)in[i + 1] <= 0x9f;
		if (c < 0x20 || c == 0x7f || c1) {
			store_err(err, errsz, "mailbox name contains a control character");
			return -1;
		}
		/* IMAP LIST wildcards could never be matched literally. */
		if (c == '*' || c == '%') {
			store_err(err, errsz, "mailbox name may not contain '*' or '%%'");
			return -1;
		}
	}
	memcpy(out, in, n + 1);
	/* INBOX is case-insensitive (RFC 9051 5.1), and so is the INBOX
	 * level of its children. */
	if (n >= 5 && strncasecmp(out, "INBOX", 5) == 0 && (out[5] == '\0' || out[5] == '/'))
		memcpy(out, "INBOX", 5);
	return 0;
}

static bool is_keyword_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

bool store_name_keyword_in(const char *list, const char *word, size_t wlen)
{
	const char *p = list;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *start = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - start) == wlen && wlen > 0 && strncasecmp(start, word, wlen) == 0)
			return true;
	}
	return false;
}

int store_name_keywords(const char *in, char out[STORE_KEYWORDS_MAX], char *err, size_t errsz)
{
	size_t len = 0;
	out[0] = '\0';
	if (in == NULL)
		return 0;
	const char *p = in;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *start = p;
		while (*p && *p != ' ')
			p++;
		size_t wl = (size_t)(p - start);
		if (wl == 0)
			break;
		for (size_t i = 0; i < wl; i++) {
			if (!is_keyword_char((unsigned char)start[i])) {
				store_err(err, errsz, "invalid keyword %.*s", (int)(wl > 64 ? 64 : wl),
					  start);
				return -1;
			}
		}
		if (store_name_keyword_in(out, start, wl))
			continue;
		size_t need = wl + (len ? 1 : 0);
		if (len + need >= STORE_KEYWORDS_MAX) {
			store_err(err, errsz, "too many keywords (at most %d bytes)",
				  STORE_KEYWORDS_MAX - 1);
			return -1;
		}
		if (len)
			out[len++] = ' ';
		memcpy(out + len, start, wl);
		len += wl;
		out[len] = '\0';
	}
	return 0;
}

const struct store_flag_name store_system_flags[STORE_N_SYSTEM_FLAGS] = {
    {"\\Seen", STORE_F_SEEN},       {"\\Answered", STORE_F_ANSWERED},
    {"\\Flagged", STORE_F_FLAGGED}, {"\\Deleted", STORE_F_DELETED},
    {"\\Draft", STORE_F_DRAFT},
};

bool store_name_is_file_id(const char *s, size_t n)
{
	if (n != 24)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'v')))
			return false;
	}
	return true;
}

/* Remove: keep the old words not in change.  Add: old words, then the new
 * ones not there yet. */
int store_name_keywords_merge(const char *old, int mode, const char *change,
			      char out[STORE_KEYWORDS_MAX], char *err, size_t errsz)
{
	if (mode == 0) {
		snprintf(out, STORE_KEYWORDS_MAX, "%s", change);
		return 0;
	}
	size_t len = 0;
	out[0] = '\0';
	const char *lists[2] = {old, mode > 0 ? change : ""};
	for (int l = 0; l < 2; l++) {
		const char *p = lists[l];
		while (*p) {
			while (*p == ' ')
				p++;
			const char *w = p;
			while (*p && *p != ' ')
				p++;
			size_t wl = (size_t)(p - w);
			if (wl == 0)
				break;
			if (mode < 0 && store_name_keyword_in(change, w, wl))
				continue;
			if (store_name_keyword_in(out, w, wl))
				continue;
			if (len + wl + 1 >= STORE_KEYWORDS_MAX) {
				store_err(err, errsz, "too many keywords (at most %d bytes)",
					  STORE_KEYWORDS_MAX - 1);
				return -1;
			}
			if (len)
				out[len++] = ' ';
			memcpy(out + len, w, wl);
			len += wl;
			out[len] = '\0';
		}
	}
	return 0;
}
