/*
 * test-http-parse.c - unit tests for src/http/http-parse.c: the
 * autodiscover element extraction, address and host checks, web-root path
 * mapping and Content-Type choice.
 */
#include <stdlib.h>
#include <string.h>

#include "http-parse.h"
#include "test.h"

static int text(const char *xml, const char *name, char *out, size_t outsz)
{
	/* An exact-length heap copy: ASan sees any read past the end. */
	size_t n = strlen(xml);
	char *p = malloc(n ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, xml, n);
	int r = http_xml_element_text(p, n, name, out, outsz);
	free(p);
	return r;
}

TEST(http_xml_element_text)
{
	char out[64];
	CHECK_INT(text("<Request><EMailAddress>a@b.c</EMailAddress></Request>", "EMailAddress", out,
		       sizeof out),
		  5);
	CHECK_STR(out, "a@b.c");
	CHECK_INT(text("<x:EMailAddress xmlns:x=\"u\">\r\n a@b.c\t</x:EMailAddress>",
		       "EMailAddress", out, sizeof out),
		  5);
	CHECK_STR(out, "a@b.c");
	/* The first element with that local name, not a longer name. */
	CHECK_INT(text("<EMailAddressX>no</EMailAddressX><EMailAddress>y@z</EMailAddress>",
		       "EMailAddress", out, sizeof out),
		  3);
	CHECK_STR(out, "y@z");
	CHECK_INT(text("<EMailAddress>&e;</EMailAddress>", "EMailAddress", out, sizeof out), -1);
	CHECK_INT(
	    text("<EMailAddress><![CDATA[a@b]]></EMailAddress>", "EMailAddress", out, sizeof out),
	    -1);
	CHECK_INT(text("<EMailAddress/>", "EMailAddress", out, sizeof out), -1);
	CHECK_INT(text("<EMailAddress>a@b.c", "EMailAddress", out, sizeof out), -1);
	CHECK_INT(text("<EMailAddress", "EMailAddress", out, sizeof out), -1);
	CHECK_INT(text("", "EMailAddress", out, sizeof out), -1);
	CHECK_INT(text("<EMailAddress>0123456789</EMailAddress>", "EMailAddress", out, 10), -1);
	CHECK_INT(text("<EMailAddress>012345678</EMailAddress>", "EMailAddress", out, 10), 9);
}

TEST(http_email_valid)
{
	CHECK(http_email_valid("alice@example.test", 18));
	CHECK(http_email_valid("a.b+c=d@mx-1.example.org", 24));
	CHECK(!http_email_valid("a..b@example.test", 17));
	CHECK(!http_email_valid(".a@example.test", 15));
	CHECK(!http_email_valid("a&b@example.test", 16));
	CHECK(!http_email_valid("<a>@example.test", 16));
	CHECK(!http_email_valid("a@-x.test", 9));
	CHECK(!http_email_valid("a@x..test", 9));
	CHECK(!http_email_valid("a@", 2));
	CHECK(!http_email_valid("@x.test", 7));
	CHECK(!http_email_valid("a@b@c", 5));
	CHECK(!http_email_valid("a\0b@x.test", 10));
	CHECK(http_hostname_valid("autoconfig.example.test", 23));
	CHECK(!http_hostname_valid("a_b.test", 8));
	CHECK(!http_hostname_valid("a.test.", 7));
	CHECK(!http_hostname_valid("", 0));
}

static const char *rel(const char *path)
{
	static char out[64];
	if (http_path_relative(path, strlen(path), out, sizeof out) < 0)
		return "(refused)";
	return out;
}

TEST(http_path_relative)
{
	CHECK_STR(rel("/"), "index.html");
	CHECK_STR(rel("/sub/"), "sub/index.html");
	CHECK_STR(rel("/sub/app.js"), "sub/app.js");
	CHECK_STR(rel("/.well-known/acme-challenge/t"), ".well-known/acme-challenge/t");
	CHECK_STR(rel("/../etc/passwd"), "(refused)");
	CHECK_STR(rel("/a/../../b"), "(refused)");
	CHECK_STR(rel("/a/./b"), "(refused)");
	CHECK_STR(rel("/.git/config"), "(refused)");
	CHECK_STR(rel("//etc/passwd"), "(refused)");
	CHECK_STR(rel("/a\\..\\b"), "(refused)");
	CHECK_STR(rel("a"), "(refused)");
	CHECK_STR(rel(""), "(refused)");
	CHECK_STR(rel("/0123456789012345678901234567890123456789012345678901234567890123"),
		  "(refused)");
	char out[8];
	CHECK_INT(http_path_relative("/a\0b", 4, out, sizeof out), -1);
	CHECK_STR(http_content_type("x/app.JS"), "text/javascript; charset=utf-8");
	CHECK_STR(http_content_type("index.html"), "text/html; charset=utf-8");
	CHECK_STR(http_content_type("a.tar.gz"), "application/octet-stream");
	CHECK_STR(http_content_type("noext"), "application/octet-stream");
	CHECK_STR(http_content_type(".well-known/x"), "application/octet-stream");
}

TEST(http_xml_element_text_controls)
{
	char out[64];
	const char in[] = "<EMailAddress>a\0b@c.d</EMailAddress>";
	CHECK_INT(http_xml_element_text(in, sizeof in - 1, "EMailAddress", out, sizeof out), -1);
	CHECK_INT(text("<EMailAddress>a<b/>c</EMailAddress>", "EMailAddress", out, sizeof out), -1);
}

static int basic(const char *h, char *user, size_t usersz, char *pass, size_t passsz)
{
	size_t n = strlen(h);
	char *p = malloc(n ? n : 1);
	if (p == NULL)
		abort();
	memcpy(p, h, n);
	int r = http_basic_credentials(p, n, user, usersz, pass, passsz);
	free(p);
	return r;
}

TEST(http_basic_credentials)
{
	char u[16], p[16];
	/* "metrics:s3cret" */
	CHECK_INT(basic("Basic bWV0cmljczpzM2NyZXQ=", u, sizeof u, p, sizeof p), 0);
	CHECK_STR(u, "metrics");
	CHECK_STR(p, "s3cret");
	CHECK_INT(basic("basic   bWV0cmljczpzM2NyZXQ=", u, sizeof u, p, sizeof p), 0);
	/* the first ':' splits: "a:b:c" */
	CHECK_INT(basic("Basic YTpiOmM=", u, sizeof u, p, sizeof p), 0);
	CHECK_STR(u, "a");
	CHECK_STR(p, "b:c");
	/* empty password "u:" */
	CHECK_INT(basic("Basic dTo=", u, sizeof u, p, sizeof p), 0);
	CHECK_STR(p, "");
	/* no colon ("metrics"), other schemes, bad base64, NUL inside
	 * ("a\0:b"), a user that does not fit */
	CHECK_INT(basic("Basic bWV0cmljcw==", u, sizeof u, p, sizeof p), -1);
	CHECK_INT(basic("Bearer bWV0cmljczpzM2NyZXQ=", u, sizeof u, p, sizeof p), -1);
	CHECK_INT(basic("Basic bWV0cmljczpzM2NyZXQ", u, sizeof u, p, sizeof p), -1);
	CHECK_INT(basic("Basic !!!!", u, sizeof u, p, sizeof p), -1);
	CHECK_INT(basic("Basic YQA6Yg==", u, sizeof u, p, sizeof p), -1);
	CHECK_INT(basic("Basic", u, sizeof u, p, sizeof p), -1);
	CHECK_INT(basic("Basic bWV0cmljczpzM2NyZXQ=", u, 7, p, sizeof p), -1);
	CHECK_INT(basic("Basic bWV0cmljczpzM2NyZXQ=", u, 8, p, 6), -1);
	CHECK_INT(basic("Basic bWV0cmljczpzM2NyZXQ=", u, 8, p, 7), 0);
}
