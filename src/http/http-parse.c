/*
 * http-parse.c - see http-parse.h.
 */
#include "http-parse.h"

#include <string.h>
#include <strings.h>

#include "base64.h"

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int http_xml_element_text(const char *xml, size_t len, const char *name, char *out, size_t outsz)
{
	if (len > HTTP_XML_SCAN_MAX)
		len = HTTP_XML_SCAN_MAX;
	size_t nlen = strlen(name);
	for (size_t i = 0; i < len; i++) {
		if (xml[i] != '<')
			continue;
		/* Tag name: up to '>', '/' or a blank. */
		size_t s = i + 1, e = s;
		while (e < len && xml[e] != '>' && xml[e] != '/' && !is_blank(xml[e]))
			e++;
		if (e >= len)
			return -1;
		size_t ln = s;
		for (size_t k = s; k < e; k++)
			if (xml[k] == ':')
				ln = k + 1;
		if (e - ln != nlen || memcmp(xml + ln, name, nlen) != 0)
			continue;
		/* Skip attributes (namespace declarations) to the end of the
		 * start tag; an empty element has no text. */
		size_t g = e;
		while (g < len && xml[g] != '>')
			g++;
		if (g >= len || xml[g - 1] == '/')
			return -1;
		size_t ts = g + 1, te = ts;
		while (te < len && xml[te] != '<') {
			unsigned char ch = (unsigned char)xml[te];
			if (ch == '&' || ch == 0x7f || (ch < 0x20 && !is_blank((char)ch)))
				return -1;
			te++;
		}
		if (te + 1 >= len || xml[te + 1] != '/')
			return -1; /* no end tag, or markup (CDATA, a child) */
		while (ts < te && is_blank(xml[ts]))
			ts++;
		while (te > ts && is_blank(xml[te - 1]))
			te--;
		size_t tl = te - ts;
		if (tl + 1 > outsz)
			return -1;
		memcpy(out, xml + ts, tl);
		out[tl] = '\0';
		return (int)tl;
	}
	return -1;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool http_hostname_valid(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alnum(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[n - 1] != '-';
}

bool http_email_valid(const char *s, size_t n)
{
	if (n == 0 || n > HTTP_EMAIL_MAX)
		return false;
	const char *at = memchr(s, '@', n);
	if (at == NULL)
		return false;
	size_t ll = (size_t)(at - s);
	if (ll == 0 || ll > 64 || s[0] == '.' || s[ll - 1] == '.')
		return false;
	static const char atext[] = "!#$%*+-/=?^_`{|}~";
	for (size_t i = 0; i < ll; i++) {
		char c = s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
			continue;
		}
		if (!is_alnum(c) && (c == '\0' || strchr(atext, c) == NULL))
			return false;
	}
	return http_hostname_valid(at + 1, n - ll - 1);
}

int http_path_relative(const char *path, size_t n, char *out, size_t outsz)
{
	if (n == 0 || path[0] != '/' || memchr(path, '\0', n) != NULL ||
	    memchr(path, '\\', n) != NULL)
		return -1;
	size_t o = 0;
	size_t i = 1;
	while (i <= n) {
		size_t e = i;
		while (e < n && path[e] != '/')
			e++;
		size_t sl = e - i;
		bool last = e >= n;
		if (sl == 0) {
			if (!last)
				return -1; /* "//" */
			break;
		}
		if (path[i] == '.' && !(sl == 11 && memcmp(path + i, ".well-known", 11) == 0))
			return -1; /* ".", "..", hidden files */
		if (o + sl + 2 > outsz)
			return -1;
		memcpy(out + o, path + i, sl);
		o += sl;
		if (last) {
			out[o] = '\0';
			return (int)o;
		}
		out[o++] = '/';
		i = e + 1;
	}
	static const char idx[] = "index.html";
	if (o + sizeof idx > outsz)
		return -1;
	memcpy(out + o, idx, sizeof idx);
	return (int)(o + sizeof idx - 1);
}

const char *http_content_type(const char *name)
{
	static const struct {
		const char *ext;
		const char *type;
	} types[] = {
	    {"html", "text/html; charset=utf-8"},
	    {"htm", "text/html; charset=utf-8"},
	    {"css", "text/css; charset=utf-8"},
	    {"js", "text/javascript; charset=utf-8"},
	    {"mjs", "text/javascript; charset=utf-8"},
	    {"json", "application/json"},
	    {"txt", "text/plain; charset=utf-8"},
	    {"xml", "application/xml"},
	    {"svg", "image/svg+xml"},
	    {"png", "image/png"},
	    {"jpg", "image/jpeg"},
	    {"jpeg", "image/jpeg"},
	    {"gif", "image/gif"},
	    {"webp", "image/webp"},
	    {"ico", "image/vnd.microsoft.icon"},
	    {"woff2", "font/woff2"},
	    {"woff", "font/woff"},
	    {"wasm", "application/wasm"},
	    {"webmanifest", "application/manifest+json"},
	    {"map", "application/json"},
	};
	const char *slash = strrchr(name, '/');
	const char *dot = strrchr(slash ? slash : name, '.');
	if (dot != NULL)
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

int http_basic_credentials(const char *h, size_t n, char *user, size_t usersz, char *pass,
			   size_t passsz)
{
	if (n > HTTP_BASIC_MAX || n < 6 || strncasecmp(h, "Basic ", 6) != 0)
		return -1;
	size_t i = 6;
	while (i < n && h[i] == ' ')
		i++;
	unsigned char dec[HTTP_BASIC_MAX];
	long len = base64_decode(h + i, n - i, dec, sizeof dec);
	if (len <= 0)
		return -1;
	size_t colon = (size_t)len;
	for (size_t k = 0; k < (size_t)len; k++) {
		if (dec[k] < 0x20 || dec[k] == 0x7f)
			return -1;
		if (dec[k] == ':' && colon == (size_t)len)
			colon = k;
	}
	size_t plen = colon < (size_t)len ? (size_t)len - colon - 1 : 0;
	if (colon == (size_t)len || colon >= usersz || plen >= passsz)
		return -1;
	memcpy(user, dec, colon);
	user[colon] = '\0';
	memcpy(pass, dec + colon + 1, plen);
	pass[plen] = '\0';
	return 0;
}
