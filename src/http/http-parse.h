/*
 * http-parse.h - the small pieces of HTTP input Tern reads itself (libevent's
 * evhttp parses the HTTP messages; see docs/http.md): the e-mail address in
 * an autodiscover request, address and host name checks, and the mapping of
 * a request path to a file below the web root.  Pure functions, bounded by
 * their arguments, fuzzed by fuzz/fuzz-http-parse.c.
 */
#ifndef TERN_HTTP_PARSE_H
#define TERN_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest address we accept (RFC 5321 4.5.3.1: 64 + 1 + 255, and a path
 * of 256 including the brackets makes 254 the useful limit). */
#define HTTP_EMAIL_MAX 254

/* The text of the first element whose local name is `name` (any namespace
 * prefix; "<EMailAddress>" and "<a:EMailAddress>") in at most len bytes of
 * XML, blanks around it trimmed, into out (NUL-terminated).  Only the first
 * HTTP_XML_SCAN_MAX bytes are read.  Text with markup (CDATA, a child
 * element), an entity reference ('&') or a control character is refused:
 * we never expand entities.  Returns
 * the length, or -1 if there is no such element, it does not fit outsz, or
 * it is not plain text. */
#define HTTP_XML_SCAN_MAX 65536
int http_xml_element_text(const char *xml, size_t len, const char *name, char *out, size_t outsz);

/* A plain address LOCAL@DOMAIN: local part of atext and dots (RFC 5322
 * dot-atom, without the characters & ' that XML would need escaped),
 * domain of LDH labels, at most HTTP_EMAIL_MAX bytes.  No quoted local
 * parts, no address literals: autoconfiguration needs none. */
bool http_email_valid(const char *s, size_t n);

/* A DNS host name of LDH labels separated by dots, 1..253 bytes. */
bool http_hostname_valid(const char *s, size_t n);

/* The request path (already percent-decoded, n bytes) as a path relative
 * to the web root, into out: "/" and a trailing "/" give "index.html";
 * refused (-1): anything not starting with '/', NUL bytes, backslashes,
 * empty, "." and ".." segments, segments starting with '.' other than
 * ".well-known", and results that do not fit outsz.  Returns the length. */
int http_path_relative(const char *path, size_t n, char *out, size_t outsz);

/* The user and password of an "Authorization: Basic B64" value (RFC 7617)
 * of n bytes: the scheme (any case), one or more spaces, canonical base64
 * of "USER:PASSWORD" (the first ':' splits; the user may not hold one).
 * Both are NUL-terminated into user and pass; a decoded NUL or control
 * character, a value over HTTP_BASIC_MAX bytes or a part that does not fit
 * is refused.  Returns 0, or -1. */
#define HTTP_BASIC_MAX 1024
int http_basic_credentials(const char *h, size_t n, char *user, size_t usersz, char *pass,
			   size_t passsz);

/* Content-Type for a file name by its extension (lower/upper case alike);
 * "application/octet-stream" when unknown. */
const char *http_content_type(const char *name);

#endif
