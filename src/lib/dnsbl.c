/*
 * dnsbl.c - see dnsbl.h.
 */
#include "dnsbl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool zone_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

int dnsbl_parse_zones(const char *list, int def_weight, struct dnsbl_zone *out, size_t max,
		      char *err, size_t errsz)
{
	size_t n = 0;
	const char *p = list;
	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			return (int)n;
		const char *start = p;
		while (*p && *p != ' ' && *p != ',' && *p != '\t')
			p++;
		size_t len = (size_t)(p - start);
		const char *eq = memchr(start, '=', len);
		size_t zlen = eq ? (size_t)(eq - start) : len;
		/* a trailing dot is allowed and dropped */
		if (zlen > 0 && start[zlen - 1] == '.')
			zlen--;
		if (zlen == 0 || zlen > DNSBL_ZONE_MAX || start[0] == '.') {
			snprintf(err, errsz, "bad zone \"%.*s\"", (int)(len > 80 ? 80 : len),
				 start);
			return -1;
		}
		for (size_t i = 0; i < zlen; i++) {
			if (!zone_char(start[i]) || (start[i] == '.' && start[i + 1] == '.')) {
				snprintf(err, errsz, "bad zone \"%.*s\"",
					 (int)(zlen > 80 ? 80 : zlen), start);
				return -1;
			}
		}
		int weight = def_weight;
		if (eq != NULL) {
			char num[16];
			const char *w = eq + 1;
			size_t nl = (size_t)(p - w);
			if (nl == 0 || nl >= sizeof num) {
				snprintf(err, errsz, "bad weight in \"%.*s\"",
					 (int)(len > 80 ? 80 : len), start);
				return -1;
			}
			memcpy(num, w, nl);
			num[nl] = '\0';
			char *end;
			long v = strtol(num, &end, 10);
			if (*end != '\0' || v < -DNSBL_WEIGHT_MAX || v > DNSBL_WEIGHT_MAX) {
				snprintf(err, errsz, "bad weight in \"%.*s\" (an integer -%d..%d)",
					 (int)(len > 80 ? 80 : len), start, DNSBL_WEIGHT_MAX,
					 DNSBL_WEIGHT_MAX);
				return -1;
			}
			weight = (int)v;
		}
		if (n == max) {
			snprintf(err, errsz, "more than %zu zones", max);
			return -1;
		}
		for (size_t i = 0; i < zlen; i++)
			out[n].name[i] = (char)tolower((unsigned char)start[i]);
		out[n].name[zlen] = '\0';
		out[n].weight = weight;
		n++;
	}
}

int dnsbl_reverse(const char *ip, char out[DNSBL_REVERSED_MAX], bool *v6)
{
	struct in_addr a4;
	struct in6_addr a6;
	const unsigned char *b;
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		b = (const unsigned char *)&a4;
	} else if (inet_pton(AF_INET6, ip, &a6) == 1) {
		b = a6.s6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(&a6)) {
			static const char hex[] = "0123456789abcdef";
			size_t o = 0;
			for (int i = 15; i >= 0; i--) {
				out[o++] = hex[b[i] & 0xf];
				out[o++] = '.';
				out[o++] = hex[b[i] >> 4];
				out[o++] = '.';
			}
			out[o - 1] = '\0'; /* 63 characters */
			*v6 = true;
			return 0;
		}
		b += 12;
	} else {
		return -1;
	}
	snprintf(out, DNSBL_REVERSED_MAX, "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
	*v6 = false;
	return 0;
}

enum dnsbl_answer dnsbl_classify(const unsigned char a[4])
{
	if (a[0] != 127)
		return DNSBL_BOGUS;
	if (a[1] == 255 && a[2] == 255)
		return DNSBL_ERROR_CODE;
	if (a[1] == 0 && a[2] == 0) {
		if (a[3] <= 1)
			return DNSBL_BOGUS;
		if (a[3] == 255)
			return DNSBL_ERROR_CODE;
	}
	return DNSBL_LISTED;
}

const char *dnsbl_helo_fault(const char *helo)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, helo, &a4) == 1 || inet_pton(AF_INET6, helo, &a6) == 1)
		return "bare_ip";
	size_t n = strlen(helo);
	if (n >= 2 && helo[0] == '[' && helo[n - 1] == ']') {
		char lit[64];
		size_t l = n - 2;
		const char *p = helo + 1;
		if (l > 5 && strncasecmp(p, "IPv6:", 5) == 0) {
			p += 5;
			l -= 5;
			if (l < sizeof lit) {
				memcpy(lit, p, l);
				lit[l] = '\0';
				if (inet_pton(AF_INET6, lit, &a6) == 1)
					return NULL;
			}
		} else if (l < sizeof lit) {
			memcpy(lit, p, l);
			lit[l] = '\0';
			if (inet_pton(AF_INET, lit, &a4) == 1)
				return NULL;
		}
		return "not_fqdn";
	}
	/* a dot with a label on each side */
	const char *dot = strchr(helo, '.');
	if (dot == NULL || dot == helo || dot[1] == '\0' || dot[1] == '.')
		return "not_fqdn";
	return NULL;
}
