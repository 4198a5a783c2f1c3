/*
 * test-dnsbl.c - unit tests for src/lib/dnsbl.c: zone lists, reversed
 * addresses, list answers and the HELO check.
 */
#include <string.h>

#include "dnsbl.h"
#include "test.h"

TEST(dnsbl_zones)
{
	struct dnsbl_zone z[DNSBL_MAX_ZONES];
	char err[200];
	CHECK_INT(dnsbl_parse_zones("", 5, z, DNSBL_MAX_ZONES, err, sizeof err), 0);
	CHECK_INT(dnsbl_parse_zones(" Zen.Example.=3, bl.example wl.example=-7 ", 5, z,
				    DNSBL_MAX_ZONES, err, sizeof err),
		  3);
	CHECK_STR(z[0].name, "zen.example");
	CHECK_INT(z[0].weight, 3);
	CHECK_STR(z[1].name, "bl.example");
	CHECK_INT(z[1].weight, 5);
	CHECK_STR(z[2].name, "wl.example");
	CHECK_INT(z[2].weight, -7);
	CHECK_INT(dnsbl_parse_zones("bl.example=", 5, z, DNSBL_MAX_ZONES, err, sizeof err), -1);
	CHECK_INT(dnsbl_parse_zones("bl.example=x", 5, z, DNSBL_MAX_ZONES, err, sizeof err), -1);
	CHECK_INT(dnsbl_parse_zones("bl.example=1001", 5, z, DNSBL_MAX_ZONES, err, sizeof err), -1);
	CHECK_INT(dnsbl_parse_zones("bl..example", 5, z, DNSBL_MAX_ZONES, err, sizeof err), -1);
	CHECK_INT(dnsbl_parse_zones(".bl.example", 5, z, DNSBL_MAX_ZONES, err, sizeof err), -1);
	CHECK_INT(dnsbl_parse_zones("=5", 5, z, DNSBL_MAX_ZONES, err, sizeof err), -1);
	CHECK_INT(dnsbl_parse_zones("b/l.example", 5, z, DNSBL_MAX_ZONES, err, sizeof err), -1);
	CHECK_INT(dnsbl_parse_zones("a.x b.x c.x", 5, z, 2, err, sizeof err), -1);
	CHECK_STR(err, "more than 2 zones");
}

TEST(dnsbl_reverse)
{
	char out[DNSBL_REVERSED_MAX];
	bool v6 = true;
	CHECK_INT(dnsbl_reverse("192.0.2.1", out, &v6), 0);
	CHECK_STR(out, "1.2.0.192");
	CHECK(!v6);
	CHECK_INT(dnsbl_reverse("::ffff:198.51.100.7", out, &v6), 0);
	CHECK_STR(out, "7.100.51.198");
	CHECK(!v6);
	CHECK_INT(dnsbl_reverse("2001:db8::1", out, &v6), 0);
	CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
	CHECK(v6);
	CHECK_INT(dnsbl_reverse("unknown", out, &v6), -1);
}

static enum dnsbl_answer cls(unsigned a, unsigned b, unsigned c, unsigned d)
{
	unsigned char x[4] = {(unsigned char)a, (unsigned char)b, (unsigned char)c,
			      (unsigned char)d};
	return dnsbl_classify(x);
}

TEST(dnsbl_answers)
{
	CHECK(cls(127, 0, 0, 2) == DNSBL_LISTED);
	CHECK(cls(127, 0, 0, 254) == DNSBL_LISTED);
	CHECK(cls(127, 0, 15, 1) == DNSBL_LISTED); /* dnswl.org style */
	CHECK(cls(127, 255, 255, 254) == DNSBL_ERROR_CODE);
	CHECK(cls(127, 255, 255, 252) == DNSBL_ERROR_CODE);
	CHECK(cls(127, 0, 0, 255) == DNSBL_ERROR_CODE);
	CHECK(cls(127, 0, 0, 1) == DNSBL_BOGUS);
	CHECK(cls(127, 0, 0, 0) == DNSBL_BOGUS);
	CHECK(cls(192, 0, 2, 1) == DNSBL_BOGUS);
}

TEST(dnsbl_helo)
{
	CHECK(dnsbl_helo_fault("mail.example.org") == NULL);
	CHECK(dnsbl_helo_fault("[192.0.2.1]") == NULL);
	CHECK(dnsbl_helo_fault("[IPv6:2001:db8::1]") == NULL);
	CHECK_STR(dnsbl_helo_fault("192.0.2.1"), "bare_ip");
	CHECK_STR(dnsbl_helo_fault("2001:db8::1"), "bare_ip");
	CHECK_STR(dnsbl_helo_fault("localhost"), "not_fqdn");
	CHECK_STR(dnsbl_helo_fault("host."), "not_fqdn");
	CHECK_STR(dnsbl_helo_fault(".example"), "not_fqdn");
	CHECK_STR(dnsbl_helo_fault("[mail.example]"), "not_fqdn");
	CHECK_STR(dnsbl_helo_fault("[300.1.1.1]"), "not_fqdn");
	CHECK_STR(dnsbl_helo_fault(""), "not_fqdn");
}
