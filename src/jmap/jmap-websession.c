/*
 * jmap-websession.c - see jmap-websession.h and docs/webmail.md.
 */
#include "jmap-websession.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "fsutil.h"
#include "jmap-json.h"
#include "log.h"
#include "store.h"
#include "strutil.h"

#define LOGIN_BODY_MAX 4096
#define CSRF_LABEL "tern web csrf\n"

enum jmap_web_route jmap_web_route_of(const char *path)
{
	static const struct {
		const char *path;
		enum jmap_web_route r;
	} routes[] = {{"/jmap/web/login", JMAP_WEB_LOGIN},
		      {"/jmap/web/session", JMAP_WEB_SESSION},
		      {"/jmap/web/logout", JMAP_WEB_LOGOUT},
		      {"/jmap/web/logout-all", JMAP_WEB_LOGOUT_ALL}};
	for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
		if (strcmp(path, routes[i].path) == 0)
			return routes[i].r;
	return JMAP_WEB_NONE;
}

long jmap_web_plain(const char *u, size_t un, const char *pw, size_t pn, char *out,
		    size_t outsz, char user[256])
{
	if (un == 0 || un > 255 || un + pn + 2 > outsz)
		return -1;
	memcpy(user, u, un);
	user[un] = '\0';
	strutil_lower(user, un);
	out[0] = '\0';
	memcpy(out + 1, u, un);
	out[1 + un] = '\0';
	memcpy(out + 2 + un, pw, pn);
	return (long)(un + pn + 2);
}

long jmap_web_login_plain(const char *body, size_t len, char *out, size_t outsz, char user[256])
{
	if (len == 0 || len > LOGIN_BODY_MAX)
		return -1;
	char why[128];
	json_t *j = jmap_json_parse(body, len, 4, why, sizeof why);
	if (j == NULL)
		return -1;
	long ret = -1;
	json_t *ju = json_object_get(j, "username"), *jp = json_object_get(j, "password");
	if (!json_is_string(ju) || !json_is_string(jp))
		goto done;
	const char *u = json_string_value(ju), *pw = json_string_value(jp);
	size_t un = json_string_length(ju), pn = json_string_length(jp);
	/* No NUL inside (PLAIN's separator), no empty password. */
	if (pn > 0 && strlen(u) == un && strlen(pw) == pn)
		ret = jmap_web_plain(u, un, pw, pn, out, outsz, user);
done:
	/* jansson keeps the password in its own memory: wipe it. */
	if (json_is_string(jp))
		OPENSSL_cleanse((char *)json_string_value(jp), json_string_length(jp));
	json_decref(j);
	return ret;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void hex_of(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int jmap_web_cookie_id(const char *h, unsigned char id[JMAP_WEB_ID_LEN])
{
	if (h == NULL)
		return 0;
	const size_t nlen = strlen(JMAP_WEB_COOKIE);
	const char *p = h;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		size_t n = strcspn(p, ";");
		if (n > nlen && memcmp(p, JMAP_WEB_COOKIE, nlen) == 0 && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t vn = n - nlen - 1;
			while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
				vn--;
			if (vn != 2 * JMAP_WEB_ID_LEN)
				return -1;
			for (size_t i = 0; i < JMAP_WEB_ID_LEN; i++) {
				int hi = hexval(v[2 * i]), lo = hexval(v[2 * i + 1]);
				if (hi < 0 || lo < 0)
					return -1;
				id[i] = (unsigned char)(hi << 4 | lo);
			}
			return 1;
		}
		p += n;
	}
	return 0;
}

void jmap_web_id_hash(const unsigned char id[JMAP_WEB_ID_LEN], unsigned char hash[32])
{
	SHA256(id, JMAP_WEB_ID_LEN, hash);
}

void jmap_web_csrf(const unsigned char id[JMAP_WEB_ID_LEN], char out[JMAP_WEB_CSRF_LEN + 1])
{
	unsigned char in[sizeof CSRF_LABEL - 1 + JMAP_WEB_ID_LEN], md[32];
	memcpy(in, CSRF_LABEL, sizeof CSRF_LABEL - 1);
	memcpy(in + sizeof CSRF_LABEL - 1, id, JMAP_WEB_ID_LEN);
	SHA256(in, sizeof in, md);
	OPENSSL_cleanse(in, sizeof in);
	hex_of(md, sizeof md, out);
}

bool jmap_web_csrf_ok(const unsigned char id[JMAP_WEB_ID_LEN], const char *h)
{
	if (h == NULL || strlen(h) != JMAP_WEB_CSRF_LEN)
		return false;
	char want[JMAP_WEB_CSRF_LEN + 1];
	jmap_web_csrf(id, want);
	return CRYPTO_memcmp(want, h, JMAP_WEB_CSRF_LEN) == 0;
}

int jmap_web_create(struct store *s, const struct jmap_authcache_entry *cred, int64_t now,
		    char set_cookie[JMAP_WEB_SET_COOKIE_MAX], char csrf[JMAP_WEB_CSRF_LEN + 1])
{
	unsigned char id[JMAP_WEB_ID_LEN];
	if (fsutil_random(id, sizeof id) < 0) {
		log_error("jmap action=web_login error=\"no random bytes\"");
		return -1;
	}
	struct store_websession ws = {.account_id = cred->account_id,
				      .created = now,
				      .expires = now + JMAP_WEB_LIFETIME};
	jmap_web_id_hash(id, ws.id_hash);
	snprintf(ws.app_id, sizeof ws.app_id, "%s", cred->app_id);
	memcpy(ws.cred_tag, cred->cred_tag, sizeof ws.cred_tag);
	char err[256];
	if (store_websession_add(s, &ws, err, sizeof err) < 0) {
		log_error("jmap action=web_login error=\"%s\"", err);
		OPENSSL_cleanse(id, sizeof id);
		return -1;
	}
	char hex[2 * JMAP_WEB_ID_LEN + 1];
	hex_of(id, sizeof id, hex);
	snprintf(set_cookie, JMAP_WEB_SET_COOKIE_MAX,
		 "%s=%s; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=%d", JMAP_WEB_COOKIE,
		 hex, JMAP_WEB_LIFETIME);
	jmap_web_csrf(id, csrf);
	OPENSSL_cleanse(hex, sizeof hex);
	OPENSSL_cleanse(id, sizeof id);
	return 0;
}

const char *jmap_web_clear_cookie(void)
{
	return JMAP_WEB_COOKIE "=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";
}

char *jmap_web_session_json(const char *account, const char *csrf, size_t *len)
{
	json_t *j = json_object();
	json_object_set_new(j, "username", json_string(account));
	json_object_set_new(j, "csrfToken", json_string(csrf));
	char *s = jmap_json_dump(j, len);
	json_decref(j);
	return s;
}
