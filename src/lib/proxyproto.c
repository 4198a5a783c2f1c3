/*
 * proxyproto.c - parser of the PROXY protocol header, versions 1 and 2
 * (see proxyproto.h; HAProxy's "The PROXY protocol" specification).
 *
 * The parser is handed every byte read so far each time (the header is
 * short: at most PROXYPROTO_MAX bytes), so it keeps no state between
 * calls.  It rejects as early as the bytes allow: a connection that does
 * not start with a header is refused at its first wrong byte, not after a
 * timeout.  src/lib: no I/O, no allocation.
 */
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char v1_prefix[] = "PROXY ";
#define V1_PREFIX_LEN (sizeof v1_prefix - 1)

static long fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return -1;
}

/* ------------------------------------------------------------- version 1 */

/* A decimal port p[0..n): 0..65535, no sign, no leading zero. */
static int v1_port(const char *p, size_t n, uint16_t *port)
{
	if (n == 0 || n > 5 || (n > 1 && p[0] == '0'))
		return -1;
	unsigned long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* An address p[0..n) of family af with port into *ss.  0 or -1. */
static int v1_addr(int af, const char *p, size_t n, const char *port_text, size_t port_n,
		   struct sockaddr_storage *ss, socklen_t *len)
{
	char text[INET6_ADDRSTRLEN];
	uint16_t port;
	if (n == 0 || n >= sizeof text || v1_port(port_text, port_n, &port) < 0)
		return -1;
	memcpy(text, p, n);
	text[n] = '\0';
	memset(ss, 0, sizeof *ss);
	if (af == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		if (inet_pton(AF_INET, text, &in->sin_addr) != 1)
			return -1;
		*len = sizeof *in;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
			return -1;
		*len = sizeof *in6;
	}
	return 0;
}

/* "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN ...\r\n". */
static long v1_parse(const uint8_t *p, size_t n, struct proxyproto_result *r, const char **why)
{
	size_t head = n < V1_PREFIX_LEN ? n : V1_PREFIX_LEN;
	if (memcmp(p, v1_prefix, head) != 0)
		return fail(why, "not a PROXY header");
	/* The line: printable ASCII up to CR LF, within PROXYPROTO_V1_MAX. */
	size_t end = 0; /* index of the LF, 0: not seen */
	size_t lim = n < PROXYPROTO_V1_MAX ? n : PROXYPROTO_V1_MAX;
	for (size_t i = head; i < lim; i++) {
		if (p[i] == '\r') {
			if (i + 1 < n && p[i + 1] != '\n')
				return fail(why, "v1 line: CR without LF");
			if (i + 1 < n) {
				end = i + 1;
				break;
			}
		} else if (p[i] < 0x20 || p[i] > 0x7e) {
			return fail(why, "v1 line: not printable text");
		}
	}
	if (end == 0)
		return n >= PROXYPROTO_V1_MAX ? fail(why, "v1 line too long") : 0;
	if (end + 1 > PROXYPROTO_V1_MAX)
		return fail(why, "v1 line too long");

	/* The fields between the prefix and CR, separated by single spaces. */
	const char *s = (const char *)p + V1_PREFIX_LEN;
	size_t len = end - 1 - V1_PREFIX_LEN;
	const char *f[6];
	size_t fl[6];
	size_t nf = 0;
	size_t start = 0;
	for (size_t i = 0; i <= len && nf < 6; i++) {
		if (i == len || s[i] == ' ') {
			f[nf] = s + start;
			fl[nf++] = i - start;
			start = i + 1;
		}
	}
	memset(r, 0, sizeof *r);
	r->version = 1;
	if (fl[0] == 7 && !memcmp(f[0], "UNKNOWN", 7))
		return (long)(end + 1); /* the rest of the line is ignored */
	int af;
	if (fl[0] == 4 && !memcmp(f[0], "TCP4", 4))
		af = AF_INET;
	else if (fl[0] == 4 && !memcmp(f[0], "TCP6", 4))
		af = AF_INET6;
	else
		return fail(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
	if (nf != 5 || f[4] + fl[4] != s + len)
		return fail(why, "v1: not 4 address fields");
	if (v1_addr(af, f[1], fl[1], f[3], fl[3], &r->src, &r->src_len) < 0 ||
	    v1_addr(af, f[2], fl[2], f[4], fl[4], &r->dst, &r->dst_len) < 0)
		return fail(why, "v1: bad address or port");
	r->has_addr = 1;
	return (long)(end + 1);
}

/* ------------------------------------------------------------- version 2 */

#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_AF_UNSPEC 0x0
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_AF_UNIX 0x3
#define V2_PROTO_STREAM 0x1

/* The address block's size for each family (UNSPEC, INET, INET6, UNIX). */
static const size_t v2_addr_size[4] = {0, 12, 36, 216};

static long v2_parse(const uint8_t *p, size_t n, struct proxyproto_result *r, const char **why)
{
	size_t head = n < sizeof v2_sig ? n : sizeof v2_sig;
	if (memcmp(p, v2_sig, head) != 0)
		return fail(why, "not a PROXY header");
	if (n > 12 && (p[12] >> 4) != 2)
		return fail(why, "v2: version is not 2");
	if (n > 12 && (p[12] & 0x0f) != V2_CMD_LOCAL && (p[12] & 0x0f) != V2_CMD_PROXY)
		return fail(why, "v2: unknown command");
	if (n > 13 && ((p[13] >> 4) > V2_AF_UNIX || (p[13] & 0x0f) > 2))
		return fail(why, "v2: unknown address family or protocol");
	if (n < PROXYPROTO_V2_FIXED)
		return 0;
	size_t len = (size_t)p[14] << 8 | p[15];
	size_t total = PROXYPROTO_V2_FIXED + len;
	if (total > PROXYPROTO_MAX)
		return fail(why, "v2: header longer than accepted");
	if (n < total)
		return 0;

	memset(r, 0, sizeof *r);
	r->version = 2;
	if ((p[12] & 0x0f) == V2_CMD_LOCAL)
		return (long)total; /* the proxy's own connection: nothing to read */
	unsigned af = p[13] >> 4;
	size_t asz = v2_addr_size[af];
	if (len < asz)
		return fail(why, "v2: address block shorter than its family");
	const uint8_t *a = p + PROXYPROTO_V2_FIXED;
	if ((p[13] & 0x0f) == V2_PROTO_STREAM && af == V2_AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)(void *)&r->src;
		struct sockaddr_in *d = (struct sockaddr_in *)(void *)&r->dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
		r->src_len = r->dst_len = sizeof *s;
		r->has_addr = 1;
	} else if ((p[13] & 0x0f) == V2_PROTO_STREAM && af == V2_AF_INET6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)(void *)&r->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)(void *)&r->dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
		r->src_len = r->dst_len = sizeof *s;
		r->has_addr = 1;
	}
	/* The TLVs (type, 16-bit length, value) fill the rest exactly; none
	 * is needed here, but a truncated one means a broken sender. */
	size_t off = PROXYPROTO_V2_FIXED + asz;
	while (off < total) {
		if (total - off < 3)
			return fail(why, "v2: truncated TLV");
		size_t tlen = (size_t)p[off + 1] << 8 | p[off + 2];
		if (total - off - 3 < tlen)
			return fail(why, "v2: TLV longer than the header");
		off += 3 + tlen;
	}
	return (long)total;
}

long proxyproto_parse(const uint8_t *p, size_t n, struct proxyproto_result *r, const char **why)
{
	if (n == 0)
		return 0;
	if (p[0] == v2_sig[0])
		return v2_parse(p, n, r, why);
	return v1_parse(p, n, r, why);
}
