/*
 * test-proxyproto.c - unit tests for src/lib/proxyproto.c: version 1 and
 * 2 headers whole and byte by byte, the exact length consumed (the bytes
 * after the header stay for the protocol), and malformed headers.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "proxyproto.h"
#include "test.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Every proper prefix of p[0..hlen) is "need more", the whole is hlen. */
static void check_prefixes(const uint8_t *p, size_t n, long hlen)
{
	struct proxyproto_result r;
	for (size_t i = 0; i < (size_t)hlen; i++)
		CHECK_INT(proxyproto_parse(p, i, &r, NULL), 0);
	CHECK_INT(proxyproto_parse(p, n, &r, NULL), hlen);
}

static void src_text(const struct proxyproto_result *r, char *out, size_t outsz,
		     unsigned *port)
{
	if (r->src.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&r->src;
		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)outsz);
		*port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)&r->src;
		inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outsz);
		*port = ntohs(in6->sin6_port);
	}
}

TEST(proxyproto_v1_tcp4)
{
	const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\nEHLO x\r\n";
	size_t hl = strlen("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n");
	check_prefixes((const uint8_t *)h, strlen(h), (long)hl);
	struct proxyproto_result r;
	const char *why = NULL;
	CHECK_INT(proxyproto_parse((const uint8_t *)h, strlen(h), &r, &why), (long)hl);
	CHECK_INT(r.version, 1);
	CHECK_INT(r.has_addr, 1);
	CHECK_INT(r.src_len, (long)sizeof(struct sockaddr_in));
	char a[64];
	unsigned port;
	src_text(&r, a, sizeof a, &port);
	CHECK_STR(a, "192.0.2.7");
	CHECK_INT(port, 56324);
	const struct sockaddr_in *d = (const void *)&r.dst;
	CHECK_INT(ntohs(d->sin_port), 25);
}

TEST(proxyproto_v1_tcp6_and_unknown)
{
	const char *h = "PROXY TCP6 2001:db8::5 2001:db8::1 65535 0\r\n";
	struct proxyproto_result r;
	check_prefixes((const uint8_t *)h, strlen(h), (long)strlen(h));
	CHECK_INT(proxyproto_parse((const uint8_t *)h, strlen(h), &r, NULL), (long)strlen(h));
	char a[64];
	unsigned port;
	src_text(&r, a, sizeof a, &port);
	CHECK_STR(a, "2001:db8::5");
	CHECK_INT(port, 65535);
	CHECK_INT(r.src_len, (long)sizeof(struct sockaddr_in6));

	const char *u = "PROXY UNKNOWN\r\n";
	CHECK_INT(proxyproto_parse((const uint8_t *)u, strlen(u), &r, NULL), 15);
	CHECK_INT(r.has_addr, 0);
	const char *u2 = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nX";
	CHECK_INT(proxyproto_parse((const uint8_t *)u2, strlen(u2), &r, NULL),
		  (long)strlen(u2) - 1);
	CHECK_INT(r.has_addr, 0);
	/* the longest line (107 bytes with CRLF) */
	const char *lng = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	CHECK_INT(strlen(lng), PROXYPROTO_V1_MAX);
	CHECK_INT(proxyproto_parse((const uint8_t *)lng, strlen(lng), &r, NULL),
		  PROXYPROTO_V1_MAX);
}

TEST(proxyproto_v1_malformed)
{
	static const char *bad[] = {
	    "EHLO client.example\r\n",
	    "proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n",
	    "PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n",
	    "PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n",
	    "PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n",
	    "PROXY TCP4 192.0.2.7 198.51.100.1 01 2\r\n",
	    "PROXY TCP4 192.0.2.7 198.51.100.1 65536 2\r\n",
	    "PROXY TCP4 192.0.2.7 198.51.100.1 -1 2\r\n",
	    "PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",
	    "PROXY TCP6 192.0.2.7 198.51.100.1 1 2\r\n",
	    "PROXY TCP4 192.0.2.256 198.51.100.1 1 2\r\n",
	    "PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n",
	    "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\n",
	    "PROXY TCP4 192.0.2.7 198.51.100.1 1 2\rX\n",
	    "PROXY TCP4 192.0.2.7\t198.51.100.1 1 2\r\n",
	    "PROXY UNKNOWNX\r\n",
	};
	struct proxyproto_result r;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *why = NULL;
		CHECK_INT(proxyproto_parse((const uint8_t *)bad[i], strlen(bad[i]), &r, &why), -1);
		CHECK(why != NULL);
	}
	/* a wrong first byte is refused at once, not after more bytes */
	CHECK_INT(proxyproto_parse((const uint8_t *)"E", 1, &r, NULL), -1);
	CHECK_INT(proxyproto_parse((const uint8_t *)"PROXX", 5, &r, NULL), -1);
	/* no CRLF within 107 bytes */
	char lng[200];
	memset(lng, 'A', sizeof lng);
	memcpy(lng, "PROXY UNKNOWN ", 14);
	CHECK_INT(proxyproto_parse((const uint8_t *)lng, 106, &r, NULL), 0);
	CHECK_INT(proxyproto_parse((const uint8_t *)lng, 107, &r, NULL), -1);
	/* 108 bytes with the CRLF at the end */
	lng[106] = '\r';
	lng[107] = '\n';
	CHECK_INT(proxyproto_parse((const uint8_t *)lng, 108, &r, NULL), -1);
	lng[105] = '\r';
	lng[106] = '\n';
	CHECK_INT(proxyproto_parse((const uint8_t *)lng, 108, &r, NULL), 107);
}

/* A v2 header into out: command, family byte, address block + extra. */
static size_t v2(uint8_t *out, uint8_t cmd, uint8_t fam, const uint8_t *body, size_t n)
{
	memcpy(out, sig, 12);
	out[12] = (uint8_t)(0x20 | cmd);
	out[13] = fam;
	out[14] = (uint8_t)(n >> 8);
	out[15] = (uint8_t)n;
	memcpy(out + 16, body, n);
	return 16 + n;
}

TEST(proxyproto_v2_tcp4_with_tlvs)
{
	uint8_t body[12 + 3 + 5 + 3] = {192, 0, 2, 9, 198, 51, 100, 1, 0xdc, 0x04, 0x00, 0x19,
					/* TLV ALPN "smtp\0" */ 0x01, 0x00, 0x05, 's', 'm', 't',
					'p', 0,
					/* NOOP, empty */ 0x04, 0x00, 0x00};
	uint8_t h[64];
	size_t n = v2(h, 1, 0x11, body, sizeof body);
	h[n] = 'E'; /* the protocol's first byte */
	check_prefixes(h, n + 1, (long)n);
	struct proxyproto_result r;
	CHECK_INT(proxyproto_parse(h, n + 1, &r, NULL), (long)n);
	CHECK_INT(r.version, 2);
	CHECK_INT(r.has_addr, 1);
	char a[64];
	unsigned port;
	src_text(&r, a, sizeof a, &port);
	CHECK_STR(a, "192.0.2.9");
	CHECK_INT(port, 0xdc04);
	const struct sockaddr_in *d = (const void *)&r.dst;
	CHECK_INT(ntohs(d->sin_port), 25);

	/* a TLV that runs past the header, one cut after its type */
	body[14] = 0x06;
	n = v2(h, 1, 0x11, body, sizeof body);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), -1);
	body[14] = 0x05;
	n = v2(h, 1, 0x11, body, sizeof body - 2);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), -1);
}

TEST(proxyproto_v2_tcp6_local_unspec)
{
	uint8_t body[36] = {0x20, 0x01, 0x0d, 0xb8, [15] = 7, [16] = 0x20, [17] = 0x01,
			    [31] = 1, [32] = 0x30, [33] = 0x39, [34] = 0x03, [35] = 0xe1};
	uint8_t h[128];
	size_t n = v2(h, 1, 0x21, body, sizeof body);
	check_prefixes(h, n, (long)n);
	struct proxyproto_result r;
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), (long)n);
	char a[64];
	unsigned port;
	src_text(&r, a, sizeof a, &port);
	CHECK_STR(a, "2001:db8::7");
	CHECK_INT(port, 12345);
	CHECK_INT(r.src_len, (long)sizeof(struct sockaddr_in6));

	/* LOCAL (a health check of the proxy): no address, block ignored */
	n = v2(h, 0, 0x00, body, 0);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), 16);
	CHECK_INT(r.has_addr, 0);
	n = v2(h, 0, 0x11, body, 5);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), 21);
	CHECK_INT(r.has_addr, 0);
	/* PROXY with UNSPEC, UDP or UNIX: kept, without an address */
	n = v2(h, 1, 0x00, body, 0);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), 16);
	CHECK_INT(r.has_addr, 0);
	n = v2(h, 1, 0x12, body, 12);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), 28);
	CHECK_INT(r.has_addr, 0);
	uint8_t big[16 + 216];
	uint8_t ub[216] = {0};
	n = v2(big, 1, 0x31, ub, sizeof ub);
	CHECK_INT(proxyproto_parse(big, n, &r, NULL), (long)n);
	CHECK_INT(r.has_addr, 0);
}

TEST(proxyproto_v2_malformed)
{
	uint8_t body[36] = {0};
	uint8_t h[128];
	struct proxyproto_result r;
	const char *why = NULL;
	size_t n = v2(h, 1, 0x11, body, 12);
	h[12] = 0x11; /* version 1 in a v2 header */
	CHECK_INT(proxyproto_parse(h, 13, &r, &why), -1);
	CHECK(why != NULL);
	h[12] = 0x22; /* command 2 */
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), -1);
	h[12] = 0x21;
	h[13] = 0x41; /* family 4 */
	CHECK_INT(proxyproto_parse(h, 14, &r, NULL), -1);
	h[13] = 0x13; /* protocol 3 */
	CHECK_INT(proxyproto_parse(h, 14, &r, NULL), -1);
	/* an address block shorter than its family */
	n = v2(h, 1, 0x11, body, 11);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), -1);
	n = v2(h, 1, 0x21, body, 35);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), -1);
	/* longer than PROXYPROTO_MAX: refused from the length alone */
	n = v2(h, 1, 0x11, body, 12);
	h[14] = (uint8_t)((PROXYPROTO_MAX - 15) >> 8);
	h[15] = (uint8_t)(PROXYPROTO_MAX - 15);
	CHECK_INT(proxyproto_parse(h, 16, &r, NULL), -1);
	h[14] = (uint8_t)((PROXYPROTO_MAX - 16) >> 8);
	h[15] = (uint8_t)(PROXYPROTO_MAX - 16);
	CHECK_INT(proxyproto_parse(h, 16, &r, NULL), 0);
	/* a broken signature */
	n = v2(h, 1, 0x11, body, 12);
	h[7] = 'q';
	CHECK_INT(proxyproto_parse(h, 8, &r, NULL), -1);
	CHECK_INT(proxyproto_parse(h, n, &r, NULL), -1);
}
