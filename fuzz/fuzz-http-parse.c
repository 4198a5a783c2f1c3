/*
 * fuzz-http-parse.c - libFuzzer target for src/http/http-parse.c.
 *
 * Feeds the input to the autodiscover element extraction (both element
 * names Tern asks for), the address and host name checks and the web-root
 * path mapping, and checks the promises of http-parse.h: extracted text
 * fits its buffer, holds no markup or entity, has no blanks at its ends;
 * a valid address has an '@' and no XML special character; a mapped path
 * never climbs out ("..", leading '/', hidden segments) and has no NUL;
 * Basic credentials fit their buffers and the user holds no ':'.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *in, size_t n, const char *name)
{
	char out[HTTP_EMAIL_MAX + 1];
	int r = http_xml_element_text(in, n, name, out, sizeof out);
	if (r < 0)
		return;
	if ((size_t)r >= sizeof out || strlen(out) != (size_t)r)
		abort();
	if (strchr(out, '<') || strchr(out, '&'))
		abort();
	if (r > 0 && (out[0] == ' ' || out[r - 1] == ' ' || out[r - 1] == '\n'))
		abort();
	if (http_email_valid(out, (size_t)r)) {
		if (!strchr(out, '@') || strpbrk(out, "<>&\"' \r\n"))
			abort();
	}
}

static void check_path(const char *in, size_t n)
{
	char out[256];
	int r = http_path_relative(in, n, out, sizeof out);
	if (r < 0)
		return;
	if ((size_t)r >= sizeof out || strlen(out) != (size_t)r || r == 0)
		abort();
	if (out[0] == '/' || strstr(out, "//") || strchr(out, '\\'))
		abort();
	/* No segment starts with '.', except .well-known. */
	for (const char *s = out; s != NULL; s = strchr(s, '/') ? strchr(s, '/') + 1 : NULL) {
		if (s[0] == '.' && strncmp(s, ".well-known/", 12) != 0 && strcmp(s, ".well-known"))
			abort();
	}
	(void)http_content_type(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	check_text(in, size, "EMailAddress");
	check_text(in, size, "AcceptableResponseSchema");
	if (http_email_valid(in, size) && (!memchr(in, '@', size) || size > HTTP_EMAIL_MAX))
		abort();
	if (http_hostname_valid(in, size) && (size > 253 || memchr(in, '_', size)))
		abort();
	check_path(in, size);
	char user[64], pass[256];
	if (http_basic_credentials(in, size, user, sizeof user, pass, sizeof pass) == 0 &&
	    (strlen(user) >= sizeof user || strchr(user, ':') || strlen(pass) >= sizeof pass))
		abort();
	free(in);
	return 0;
}
