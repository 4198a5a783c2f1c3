/*
 * fuzz-websession.c - libFuzzer target for the web sign-in's parsers
 * (src/jmap/jmap-websession.c): the input is both a login body and a
 * Cookie header value.  Checks their promises: a login gives a PLAIN
 * response "\0user\0password" whose user is the one returned (lower-
 * cased) and has no other NUL; a cookie found gives an id whose CSRF
 * token is accepted and that of any other id is not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jmap-websession.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char plain[1600], user[256];
	long n = jmap_web_login_plain((const char *)data, size, plain, sizeof plain, user);
	if (n >= 0) {
		size_t un = strlen(user);
		if ((size_t)n < un + 3 || plain[0] != '\0' || plain[1 + un] != '\0' ||
		    memchr(plain + 1, '\0', un) != NULL ||
		    memchr(plain + 2 + un, '\0', (size_t)n - 2 - un) != NULL)
			abort();
		for (size_t i = 0; i < un; i++)
			if (user[i] >= 'A' && user[i] <= 'Z')
				abort();
	}
	char *h = malloc(size + 1);
	if (h == NULL)
		return 0;
	memcpy(h, data, size);
	h[size] = '\0';
	unsigned char id[JMAP_WEB_ID_LEN];
	if (jmap_web_cookie_id(h, id) == 1) {
		char t[JMAP_WEB_CSRF_LEN + 1];
		jmap_web_csrf(id, t);
		if (!jmap_web_csrf_ok(id, t))
			abort();
		id[0] ^= 1;
		if (jmap_web_csrf_ok(id, t))
			abort();
	}
	free(h);
	return 0;
}
