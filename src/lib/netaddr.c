/*
 * netaddr.c - socket addresses as text (see netaddr.h).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void netaddr_format(const struct sockaddr *sa, char *out, size_t outsz, bool *loopback)
{
	*loopback = false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		if (inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)outsz) == NULL)
			snprintf(out, outsz, "unknown");
		*loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, out, (socklen_t)outsz) == NULL)
			snprintf(out, outsz, "unknown");
		const unsigned char *b = in6->sin6_addr.s6_addr;
		*loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
			    (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 127);
	} else {
		snprintf(out, outsz, "unknown");
	}
}

/* Parses "IP" or "IP/LEN" (p[0..n)) into family, 16 address bytes and a
 * prefix length.  0 or -1. */
static int parse_net(const char *p, size_t n, int *family, unsigned char addr[16],
		     unsigned *len)
{
	char text[64];
	if (n == 0 || n >= sizeof text)
		return -1;
	memcpy(text, p, n);
	text[n] = '\0';
	char *slash = strchr(text, '/');
	long want = -1;
	if (slash != NULL) {
		*slash = '\0';
		char *end;
		want = strtol(slash + 1, &end, 10);
		if (*end != '\0' || end == slash + 1 || want < 0)
			return -1;
	}
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, text, addr) == 1) {
		*family = AF_INET;
		*len = want < 0 ? 32 : (unsigned)want;
		return *len <= 32 ? 0 : -1;
	}
	if (inet_pton(AF_INET6, text, addr) == 1) {
		*family = AF_INET6;
		*len = want < 0 ? 128 : (unsigned)want;
		return *len <= 128 ? 0 : -1;
	}
	return -1;
}

static bool prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	size_t whole = bits / 8;
	if (memcmp(a, b, whole) != 0)
		return false;
	unsigned rest = bits % 8;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

/* Goes through list: with want (family, address) set, 1 at the first
 * entry that holds it; without, -1 at the first entry that does not parse
 * (with want, such entries match nothing).  0 otherwise. */
static int scan_list(const char *list, int want_family, const unsigned char *want)
{
	const char *p = list;
	while (*p != '\0') {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		size_t n = strcspn(p, " ,\t");
		if (n == 0)
			break;
		int fam;
		unsigned char a[16];
		unsigned len;
		int ok = parse_net(p, n, &fam, a, &len);
		if (ok < 0 && want == NULL)
			return -1;
		if (ok == 0 && want != NULL && fam == want_family && prefix_eq(want, a, len))
			return 1;
		p += n;
	}
	return 0;
}

int netaddr_list_check(const char *list)
{
	return scan_list(list, 0, NULL) < 0 ? -1 : 0;
}

bool netaddr_in_list(const char *ip, const char *list)
{
	int fam;
	unsigned char a[16];
	unsigned len;
	if (parse_net(ip, strlen(ip), &fam, a, &len) < 0)
		return false;
	return scan_list(list, fam, a) == 1;
}

bool netaddr_is_net(const char *w, size_t n)
{
	int fam;
	unsigned char a[16];
	unsigned len;
	return parse_net(w, n, &fam, a, &len) == 0;
}

int netaddr_network(const char *ip, unsigned bits4, unsigned bits6, char *out, size_t outsz)
{
	unsigned char a[16];
	int fam = AF_INET6;
	unsigned bits = bits6;
	if (inet_pton(AF_INET6, ip, a) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(a, mapped, sizeof mapped) == 0) {
			memmove(a, a + 12, 4);
			fam = AF_INET;
		}
	} else if (inet_pton(AF_INET, ip, a) == 1) {
		fam = AF_INET;
	} else {
		return -1;
	}
	size_t alen = fam == AF_INET ? 4 : 16;
	if (fam == AF_INET)
		bits = bits4;
	if (bits > alen * 8)
		bits = (unsigned)(alen * 8);
	for (size_t i = 0; i < alen; i++) {
		unsigned keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - (unsigned)(i * 8) : 0;
		a[i] &= (unsigned char)(0xff00u >> keep);
	}
	char text[INET6_ADDRSTRLEN];
	if (inet_ntop(fam, a, text, sizeof text) == NULL)
		return -1;
	int w = snprintf(out, outsz, "%s/%u", text, bits);
	return w < 0 || (size_t)w >= outsz ? -1 : 0;
}
