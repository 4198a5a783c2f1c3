/*
 * netaddr.h - socket addresses as text, for logs and policy.
 */
#ifndef TERN_NETADDR_H
#define TERN_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Writes the address of sa (IPv4 or IPv6, no port) into out (size outsz,
 * INET6_ADDRSTRLEN is enough), or "unknown" for other families, and sets
 * *loopback: 127.0.0.0/8, ::1, or an IPv4-mapped 127.x address. */
void netaddr_format(const struct sockaddr *sa, char *out, size_t outsz, bool *loopback);

/* True if the address ip (text, IPv4 or IPv6) is in list: addresses and
 * networks ("192.0.2.1", "10.0.0.0/8", "::1", "2001:db8::/32") separated
 * by spaces or commas.  Entries that do not parse match nothing. */
bool netaddr_in_list(const char *ip, const char *list);
/* 0 if every entry of list parses, -1 if not (for the config check). */
int netaddr_list_check(const char *list);
/* True if w[0..n) is one address or network as netaddr_in_list reads
 * them. */
bool netaddr_is_net(const char *w, size_t n);
/* The network of the address ip (text) that groups a client with its
 * neighbours: IPv4 (and IPv4-mapped IPv6) cut to bits4, IPv6 to bits6, as
 * "192.0.2.0/24" or "2001:db8:1:2::/64" in out (INET6_ADDRSTRLEN + 4 is
 * enough).  0, or -1 if ip is not an address. */
int netaddr_network(const char *ip, unsigned bits4, unsigned bits6, char *out, size_t outsz);

#endif
