/*
 * fuzz-proxyproto.c - libFuzzer target for src/lib/proxyproto.c.
 *
 * Parses the input as the start of a connection and checks what the
 * parser promises: a header is never longer than the input nor than
 * PROXYPROTO_MAX, every proper prefix of a header asks for more bytes,
 * bytes after a header do not change it, and an address result has a
 * family and length that match.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_addr(const struct sockaddr_storage *ss, socklen_t len)
{
	if (ss->ss_family == AF_INET && len == sizeof(struct sockaddr_in))
		return;
	if (ss->ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6))
		return;
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxyproto_result r;
	const char *why = NULL;
	long n = proxyproto_parse(data, size, &r, &why);
	if (n < -1 || (n > 0 && ((size_t)n > size || n > PROXYPROTO_MAX)))
		abort();
	if (n == -1 && why == NULL)
		abort();
	if (n == 0 && size >= PROXYPROTO_MAX)
		abort(); /* bounded: a decision by PROXYPROTO_MAX bytes */
	if (n <= 0)
		return 0;
	if (r.version != 1 && r.version != 2)
		abort();
	if (r.version == 1 && n > PROXYPROTO_V1_MAX)
		abort();
	if (r.has_addr) {
		check_addr(&r.src, r.src_len);
		check_addr(&r.dst, r.dst_len);
		if (r.src.ss_family != r.dst.ss_family)
			abort();
	}
	/* the header alone parses the same; each proper prefix asks for more */
	struct proxyproto_result r2;
	if (proxyproto_parse(data, (size_t)n, &r2, NULL) != n || memcmp(&r, &r2, sizeof r) != 0)
		abort();
	size_t step = (size_t)n > 64 ? (size_t)n / 32 : 1;
	for (size_t i = 0; i < (size_t)n; i += step)
		if (proxyproto_parse(data, i, &r2, NULL) != 0)
			abort();
	return 0;
}
