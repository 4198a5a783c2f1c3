/*
 * test-dns.c - unit tests for the pure parts of src/dns/dns.c: MX record
 * parsing, RFC 5321 5.1 ordering, Null MX (RFC 7505) and the
 * classification of answers into permanent and temporary failures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "test.h"

/* Parses rdata from a heap block of exactly n bytes (ASan sees overreads). */
static int parse(const unsigned char *p, size_t n, struct dns_mx *mx)
{
	unsigned char *h = malloc(n ? n : 1);
	if (h == NULL)
		abort();
	memcpy(h, p, n);
	int r = dns_parse_mx_rdata(h, n, mx);
	free(h);
	return r;
}

TEST(dns_mx_rdata)
{
	static const unsigned char mx1[] = {0, 10, 2, 'm', 'x', 1, 'B', 4, 't', 'e', 's', 't', 0};
	struct dns_mx mx;
	CHECK_INT(parse(mx1, sizeof mx1, &mx), 0);
	CHECK_INT(mx.pref, 10);
	CHECK_STR(mx.host, "mx.b.test");
	static const unsigned char null[] = {0, 0, 0};
	CHECK_INT(parse(null, sizeof null, &mx), 0);
	CHECK_STR(mx.host, "");
	CHECK_INT(mx.pref, 0);
	static const unsigned char big[] = {0xff, 0xff, 1, 'a', 0};
	CHECK_INT(parse(big, sizeof big, &mx), 0);
	CHECK_INT(mx.pref, 65535);
	/* Truncated, trailing bytes, compression pointer, bad characters. */
	static const unsigned char trunc[] = {0, 10, 5, 'a', 'b'};
	CHECK_INT(parse(trunc, sizeof trunc, &mx), -1);
	static const unsigned char noend[] = {0, 10, 1, 'a'};
	CHECK_INT(parse(noend, sizeof noend, &mx), -1);
	static const unsigned char trail[] = {0, 10, 1, 'a', 0, 0};
	CHECK_INT(parse(trail, sizeof trail, &mx), -1);
	static const unsigned char ptr[] = {0, 10, 0xc0, 12};
	CHECK_INT(parse(ptr, sizeof ptr, &mx), -1);
	static const unsigned char badc[] = {0, 10, 2, 'a', ' ', 0};
	CHECK_INT(parse(badc, sizeof badc, &mx), -1);
	CHECK_INT(parse(mx1, 2, &mx), -1);
	CHECK_INT(parse(mx1, 0, &mx), -1);
}

static uint32_t calls;
static uint32_t rnd_last(uint32_t bound)
{
	calls++;
	return bound - 1; /* no swap: keeps the input order */
}
static uint32_t rnd_first(uint32_t bound)
{
	calls++;
	return 0;
}

static void set(struct dns_mx *m, const char *host, unsigned pref)
{
	memset(m, 0, sizeof *m);
	snprintf(m->host, sizeof m->host, "%s", host);
	m->pref = pref;
}

TEST(dns_mx_sort_order)
{
	struct dns_mx mx[6];
	set(&mx[0], "c", 30);
	set(&mx[1], "a", 10);
	set(&mx[2], "b", 20);
	set(&mx[3], "a", 40); /* the same host again: dropped */
	set(&mx[4], "d", 20);
	set(&mx[5], "e", 0);
	calls = 0;
	size_t n = dns_mx_sort(mx, 6, rnd_last);
	CHECK_INT(n, 5);
	CHECK_STR(mx[0].host, "e");
	CHECK_STR(mx[1].host, "a");
	CHECK_INT(mx[1].pref, 10);
	CHECK_INT(mx[2].pref, 20);
	CHECK_INT(mx[3].pref, 20);
	CHECK_STR(mx[4].host, "c");
	CHECK_INT(calls, 1); /* one shuffle step for the one pair of equals */
	/* With rnd_first the equal pair is swapped, the rest stays. */
	char first[256];
	snprintf(first, sizeof first, "%s", mx[2].host);
	calls = 0;
	n = dns_mx_sort(mx, n, rnd_first);
	CHECK_INT(n, 5);
	CHECK(strcmp(mx[3].host, first) == 0);
	CHECK_STR(mx[0].host, "e");
	CHECK_STR(mx[4].host, "c");
	/* Equal preferences: every order appears with a real random source. */
	n = dns_mx_sort(mx, 0, rnd_first);
	CHECK_INT(n, 0);
}

static uint32_t rnd_libc(uint32_t bound)
{
	return (uint32_t)rand() % bound;
}

TEST(dns_mx_sort_random_among_equals)
{
	int first_seen[3] = {0, 0, 0};
	srand(1);
	for (int round = 0; round < 300; round++) {
		struct dns_mx mx[4];
		set(&mx[0], "h0", 5);
		set(&mx[1], "h1", 5);
		set(&mx[2], "h2", 5);
		set(&mx[3], "backup", 50);
		size_t n = dns_mx_sort(mx, 4, rnd_libc);
		CHECK_INT(n, 4);
		CHECK_STR(mx[3].host, "backup");
		first_seen[mx[0].host[1] - '0']++;
	}
	for (int i = 0; i < 3; i++)
		CHECK(first_seen[i] > 50);
}

TEST(dns_null_mx)
{
	struct dns_mx mx[2];
	set(&mx[0], "", 0);
	CHECK(dns_mx_is_null(mx, 1));
	set(&mx[1], "mx.example", 10);
	CHECK(!dns_mx_is_null(mx, 2));
	CHECK(!dns_mx_is_null(mx + 1, 1));
	CHECK(!dns_mx_is_null(mx, 0));
}

TEST(dns_classify)
{
	/* failed, rcode, havedata, nxdomain */
	CHECK_INT(dns_classify(1, 0, false, false), DNS_TEMPFAIL); /* timeout, network */
	CHECK_INT(dns_classify(0, 0, true, false), DNS_OK);
	CHECK_INT(dns_classify(0, 3, false, true), DNS_NXDOMAIN);
	CHECK_INT(dns_classify(0, 3, false, false), DNS_NXDOMAIN);
	CHECK_INT(dns_classify(0, 2, false, false), DNS_TEMPFAIL); /* SERVFAIL */
	CHECK_INT(dns_classify(0, 5, false, false), DNS_TEMPFAIL); /* REFUSED */
	CHECK_INT(dns_classify(0, 0, false, false), DNS_OK);       /* NODATA */
	CHECK_STR(dns_status_name(DNS_NULLMX), "nullmx");
	CHECK_STR(dns_status_name(DNS_TEMPFAIL), "tempfail");
}

/* Fills out from a resolv.conf text given as a C string. */
static const char *rc_name(const char *text, char *out, size_t outsz)
{
	dns_resolvconf_name(text, strlen(text), out, outsz);
	return out;
}

TEST(dns_resolvconf_name)
{
	char out[DNS_RESOLVER_NAME_MAX];
	CHECK_STR(rc_name("nameserver 127.0.0.53\noptions edns0\n", out, sizeof out),
		  "127.0.0.53 (from /etc/resolv.conf)");
	CHECK_STR(rc_name("# comment\nsearch example.test\n\tnameserver\t10.0.0.1 # main\n"
			  "nameserver 2001:db8::1\r\nnameserver fe80::1%eth0",
			  out, sizeof out),
		  "10.0.0.1 or 2001:db8::1 or fe80::1%eth0 (from /etc/resolv.conf)");
	CHECK_STR(rc_name("nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\n"
			  "nameserver 4.4.4.4\nnameserver 5.5.5.5\n",
			  out, sizeof out),
		  "1.1.1.1 or 2.2.2.2 or 3.3.3.3 or ... (from /etc/resolv.conf)");
	/* Not addresses, not the keyword, commented out: none. */
	CHECK_STR(rc_name("nameserver dns.example\nnameservers 1.2.3.4\n#nameserver 1.2.3.4\n"
			  "nameserver\nnameserver 1.2.3.4x",
			  out, sizeof out),
		  "built into Tern (recursive: /etc/resolv.conf names no nameserver)");
	CHECK_STR(rc_name("", out, sizeof out),
		  "built into Tern (recursive: /etc/resolv.conf names no nameserver)");
	/* Bounded: a small buffer is truncated, always terminated. */
	char small[12];
	CHECK_STR(rc_name("nameserver 10.0.0.1\nnameserver 10.0.0.2\n", small, sizeof small),
		  "10.0.0.1 (f");
	/* Byte by byte: no read past len. */
	const char *text = "nameserver 192.0.2.1\n";
	for (size_t n = 0; n <= strlen(text); n++) {
		char *copy = malloc(n ? n : 1);
		memcpy(copy, text, n);
		dns_resolvconf_name(copy, n, out, sizeof out);
		free(copy);
		CHECK(strlen(out) < sizeof out);
	}
}

TEST(dns_special_use)
{
	CHECK(dns_special_use("x.invalid", false));
	CHECK(dns_special_use("INVALID.", true));
	CHECK(dns_special_use("a.b.onion", true));
	CHECK(dns_special_use("localhost", true));
	CHECK(dns_special_use("printer.home.arpa", true));
	CHECK(dns_special_use("nowhere.test", false));
	CHECK(!dns_special_use("nowhere.test", true)); /* the forwarder is asked */
	CHECK(!dns_special_use("notinvalid", false));
	CHECK(!dns_special_use("invalid.example", false));
	CHECK(!dns_special_use("arpa", false));
	CHECK(!dns_special_use("", false));
}
