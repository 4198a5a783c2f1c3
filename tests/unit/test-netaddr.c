/*
 * test-netaddr.c - unit tests for src/lib/netaddr.c: text form and the
 * loopback rule for IPv4, IPv6 and IPv4-mapped addresses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "netaddr.h"
#include "test.h"

static void v4(const char *text, char *out, size_t outsz, bool *lo)
{
	struct sockaddr_in in;
	memset(&in, 0, sizeof in);
	in.sin_family = AF_INET;
	CHECK(inet_pton(AF_INET, text, &in.sin_addr) == 1);
	netaddr_format((const struct sockaddr *)&in, out, outsz, lo);
}

static void v6(const char *text, char *out, size_t outsz, bool *lo)
{
	struct sockaddr_in6 in6;
	memset(&in6, 0, sizeof in6);
	in6.sin6_family = AF_INET6;
	CHECK(inet_pton(AF_INET6, text, &in6.sin6_addr) == 1);
	netaddr_format((const struct sockaddr *)&in6, out, outsz, lo);
}

TEST(netaddr_ipv4)
{
	char buf[64];
	bool lo = true;
	v4("192.0.2.7", buf, sizeof buf, &lo);
	CHECK_STR(buf, "192.0.2.7");
	CHECK(!lo);
	v4("127.0.0.1", buf, sizeof buf, &lo);
	CHECK_STR(buf, "127.0.0.1");
	CHECK(lo);
	v4("127.255.1.2", buf, sizeof buf, &lo);
	CHECK(lo);
	v4("128.0.0.1", buf, sizeof buf, &lo);
	CHECK(!lo);
}

TEST(netaddr_ipv6_and_mapped)
{
	char buf[64];
	bool lo = true;
	v6("2001:db8::1", buf, sizeof buf, &lo);
	CHECK_STR(buf, "2001:db8::1");
	CHECK(!lo);
	v6("::1", buf, sizeof buf, &lo);
	CHECK_STR(buf, "::1");
	CHECK(lo);
	v6("::ffff:127.0.0.5", buf, sizeof buf, &lo);
	CHECK_STR(buf, "::ffff:127.0.0.5");
	CHECK(lo);
	v6("::ffff:192.0.2.1", buf, sizeof buf, &lo);
	CHECK(!lo);
}

TEST(netaddr_other_family_and_small_buffer)
{
	char buf[64];
	bool lo = true;
	struct sockaddr sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_family = AF_UNIX;
	netaddr_format(&sa, buf, sizeof buf, &lo);
	CHECK_STR(buf, "unknown");
	CHECK(!lo);
	char tiny[4];
	v4("192.0.2.7", tiny, sizeof tiny, &lo);
	CHECK_STR(tiny, "unk");
}

TEST(netaddr_in_list)
{
	const char *list = "127.0.0.1, 10.0.0.0/8 192.0.2.128/25 ::1 2001:db8::/32";
	CHECK(netaddr_in_list("127.0.0.1", list));
	CHECK(!netaddr_in_list("127.0.0.2", list));
	CHECK(netaddr_in_list("10.200.3.4", list));
	CHECK(!netaddr_in_list("11.0.0.1", list));
	CHECK(netaddr_in_list("192.0.2.200", list));
	CHECK(!netaddr_in_list("192.0.2.127", list));
	CHECK(netaddr_in_list("::1", list));
	CHECK(netaddr_in_list("2001:db8:ffff::7", list));
	CHECK(!netaddr_in_list("2001:db9::1", list));
	CHECK(!netaddr_in_list("not an address", list));
	CHECK(!netaddr_in_list("10.0.0.1", ""));
	CHECK(netaddr_in_list("8.8.8.8", "0.0.0.0/0"));
	CHECK_INT(netaddr_list_check(list), 0);
	CHECK_INT(netaddr_list_check(""), 0);
	CHECK_INT(netaddr_list_check("10.0.0.0/33"), -1);
	CHECK_INT(netaddr_list_check("127.0.0.1 example.com"), -1);
	CHECK_INT(netaddr_list_check("::/129"), -1);
}

TEST(netaddr_network_and_is_net)
{
	char out[INET6_ADDRSTRLEN + 8];
	CHECK_INT(netaddr_network("192.0.2.77", 24, 64, out, sizeof out), 0);
	CHECK_STR(out, "192.0.2.0/24");
	CHECK_INT(netaddr_network("192.0.2.77", 20, 64, out, sizeof out), 0);
	CHECK_STR(out, "192.0.0.0/20");
	CHECK_INT(netaddr_network("::ffff:198.51.100.9", 24, 64, out, sizeof out), 0);
	CHECK_STR(out, "198.51.100.0/24");
	CHECK_INT(netaddr_network("2001:db8:1:2:3:4:5:6", 24, 64, out, sizeof out), 0);
	CHECK_STR(out, "2001:db8:1:2::/64");
	CHECK_INT(netaddr_network("2001:db8:1:2:3:4:5:6", 24, 200, out, sizeof out), 0);
	CHECK_STR(out, "2001:db8:1:2:3:4:5:6/128");
	CHECK_INT(netaddr_network("example.com", 24, 64, out, sizeof out), -1);
	char tiny[8];
	CHECK_INT(netaddr_network("192.0.2.77", 24, 64, tiny, sizeof tiny), -1);
	CHECK(netaddr_is_net("10.0.0.0/8", 10));
	CHECK(netaddr_is_net("::1", 3));
	CHECK(!netaddr_is_net("10.0.0.0/33", 11));
	CHECK(!netaddr_is_net("123.example", 11));
}
