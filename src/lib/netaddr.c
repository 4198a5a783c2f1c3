/*
 * netaddr.c - socket addresses as text (see netaddr.h).
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

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
