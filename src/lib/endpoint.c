/*
 * endpoint.c - "inet:HOST:PORT" and "unix:/path" (see endpoint.h).
 */
#include "endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "strutil.h"

size_t endpoint_next(const char **p, const char **word)
{
	*p += strspn(*p, " \t,");
	*word = *p;
	size_t n = strcspn(*p, " \t,");
	*p += n;
	return n;
}

int endpoint_parse(const char *w, size_t n, struct sockaddr_storage *ss, socklen_t *sslen)
{
	memset(ss, 0, sizeof *ss);
	if (n > 5 && !memcmp(w, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		if (n - 5 >= sizeof un->sun_path || w[5] != '/')
			return -1;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, w + 5, n - 5);
		*sslen = (socklen_t)sizeof *un;
		return 0;
	}
	if (n <= 5 || memcmp(w, "inet:", 5) != 0)
		return -1;
	w += 5;
	n -= 5;
	const char *colon = NULL;
	for (size_t i = n; i > 0; i--)
		if (w[i - 1] == ':') {
			colon = w + i - 1;
			break;
		}
	if (colon == NULL)
		return -1;
	uint64_t port;
	size_t hl = (size_t)(colon - w);
	if (strutil_parse_u64(colon + 1, n - hl - 1, 65535, &port) < 0 || port == 0)
		return -1;
	char host[64];
	if (hl >= 2 && w[0] == '[' && w[hl - 1] == ']') {
		w++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof host)
		return -1;
	memcpy(host, w, hl);
	host[hl] = '\0';
	if (!strcmp(host, "localhost"))
		memcpy(host, "127.0.0.1", sizeof "127.0.0.1");
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*sslen = (socklen_t)sizeof *in4;
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sslen = (socklen_t)sizeof *in6;
		return 0;
	}
	return -1;
}
