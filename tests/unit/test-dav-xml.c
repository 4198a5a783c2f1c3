/*
 * test-dav-xml.c - unit tests for src/dav/dav-xml.c: namespaces (default,
 * prefixed, redeclared), text, the tree, every limit, DTDs and entity
 * bombs refused, external entities never read, syntax errors, and every
 * prefix of a document refused or parsed cleanly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav-xml.h"
#include "test.h"

static enum dav_xml_error parse(const char *s, struct dav_xml_doc **d, char *err, size_t errsz)
{
	return dav_xml_parse(s, strlen(s), NULL, d, err, errsz);
}

TEST(dav_xml_propfind)
{
	static const char body[] =
	    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	    "<d:propfind xmlns:d=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\">\n"
	    "  <d:prop><d:resourcetype/><C:addressbook-home-set/>"
	    "<x:odd xmlns:x=\"http://example.test/ns\">a &amp; b &#233;</x:odd>"
	    "<plain xmlns=\"\"/></d:prop>\n"
	    "</d:propfind>";
	struct dav_xml_doc *d;
	char err[128] = "";
	CHECK_INT(parse(body, &d, err, sizeof err), DAV_XML_OK);
	CHECK(dav_xml_is(d->root, DAV_NS, "propfind"));
	const struct dav_xml_node *prop = dav_xml_child(d->root, DAV_NS, "prop");
	CHECK(prop != NULL);
	CHECK(dav_xml_child(prop, DAV_NS, "resourcetype") != NULL);
	CHECK(dav_xml_child(prop, DAV_NS_CARDDAV, "addressbook-home-set") != NULL);
	CHECK(dav_xml_child(prop, DAV_NS, "addressbook-home-set") == NULL);
	const struct dav_xml_node *odd = dav_xml_child(prop, "http://example.test/ns", "odd");
	CHECK(odd != NULL);
	CHECK_STR(odd->text, "a & b \xc3\xa9");
	CHECK_INT(odd->text_len, 8);
	CHECK(odd->parent == prop);
	const struct dav_xml_node *plain = dav_xml_child(prop, "", "plain");
	CHECK(plain != NULL && plain->next == NULL);
	CHECK_STR(plain->text, "");
	CHECK_INT(d->n_all, 6);
	dav_xml_free(&d);
	CHECK(d == NULL);
	dav_xml_free(&d);
}

TEST(dav_xml_default_namespace)
{
	static const char body[] = "<sync-collection xmlns=\"DAV:\"><sync-token>urn:x:1</sync-token>"
				   "<sync-level>1</sync-level><prop><getetag/></prop>"
				   "</sync-collection>";
	struct dav_xml_doc *d;
	char err[128] = "";
	CHECK_INT(parse(body, &d, err, sizeof err), DAV_XML_OK);
	CHECK(dav_xml_is(d->root, DAV_NS, "sync-collection"));
	CHECK_STR(dav_xml_child(d->root, DAV_NS, "sync-token")->text, "urn:x:1");
	CHECK_STR(dav_xml_child(d->root, DAV_NS, "sync-level")->text, "1");
	dav_xml_free(&d);
}

TEST(dav_xml_attributes)
{
	static const char body[] =
	    "<C:filter xmlns:C=\"urn:ietf:params:xml:ns:carddav\" xmlns:x=\"urn:x\" test=\"allof\">"
	    "<C:text-match collation='i;octet' match-type=\"equals\" x:odd=\"a&amp;b\">A</C:text-match>"
	    "</C:filter>";
	struct dav_xml_doc *d;
	char err[128] = "";
	CHECK_INT(parse(body, &d, err, sizeof err), DAV_XML_OK);
	CHECK_STR(dav_xml_attr(d->root, "", "test"), "allof");
	CHECK(dav_xml_attr(d->root, "", "none") == NULL);
	const struct dav_xml_node *t = dav_xml_child(d->root, DAV_NS_CARDDAV, "text-match");
	CHECK_INT(t->n_attrs, 3);
	CHECK_STR(dav_xml_attr(t, "", "collation"), "i;octet");
	CHECK_STR(dav_xml_attr(t, "", "match-type"), "equals");
	CHECK_STR(dav_xml_attr(t, "urn:x", "odd"), "a&b");
	CHECK(dav_xml_attr(t, "", "odd") == NULL);
	dav_xml_free(&d);
	struct dav_xml_limits lim = {1000, 8, 8, 4};
	CHECK_INT(dav_xml_parse("<a b=\"12345\"/>", 14, &lim, &d, err, sizeof err),
		  DAV_XML_ERR_SIZE);
	CHECK_STR(err, "too much text");
	CHECK_INT(parse("<a a1='' a2='' a3='' a4='' a5='' a6='' a7='' a8='' a9='' b1='' b2='' "
			"b3='' b4='' b5='' b6='' b7='' b8=''/>",
			&d, err, sizeof err),
		  DAV_XML_ERR_SIZE);
	CHECK_STR(err, "too many attributes");
}

static void check_error(const char *body, enum dav_xml_error want, const char *msg)
{
	struct dav_xml_doc *d = (struct dav_xml_doc *)1;
	char err[128] = "";
	CHECK_INT(parse(body, &d, err, sizeof err), want);
	CHECK(d == NULL);
	if (msg != NULL)
		CHECK_STR(err, msg);
}

TEST(dav_xml_refused)
{
	/* The billion laughs. */
	check_error("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n"
		    "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
		    "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n]>\n"
		    "<lolz xmlns=\"DAV:\">&lol3;</lolz>",
		    DAV_XML_ERR_DTD, "a DOCTYPE is not accepted (no DTDs, no entities)");
	/* An external entity (XXE). */
	check_error("<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>",
		    DAV_XML_ERR_DTD, NULL);
	check_error("<!DOCTYPE a SYSTEM \"http://example.test/a.dtd\"><a/>", DAV_XML_ERR_DTD, NULL);
	/* An undeclared entity. */
	check_error("<a>&x;</a>", DAV_XML_ERR_SYNTAX, "line 1: undefined entity");
	check_error("<a><b></a>", DAV_XML_ERR_SYNTAX, "line 1: mismatched tag");
	check_error("<a/><b/>", DAV_XML_ERR_SYNTAX, "line 1: junk after document element");
	check_error("", DAV_XML_ERR_SYNTAX, NULL);
	check_error("<x:a/>", DAV_XML_ERR_SYNTAX, "line 1: unbound prefix");
	check_error("<a>\xff</a>", DAV_XML_ERR_SYNTAX, "line 1: not well-formed (invalid token)");
}

TEST(dav_xml_limits)
{
	struct dav_xml_doc *d;
	char err[128];
	struct dav_xml_limits lim = {10, 32, 100, 100};
	CHECK_INT(dav_xml_parse("<a>0123456</a>", 14, &lim, &d, err, sizeof err),
		  DAV_XML_ERR_SIZE);
	CHECK_STR(err, "XML body larger than 10 bytes");
	lim = (struct dav_xml_limits){1000, 2, 100, 100};
	CHECK_INT(dav_xml_parse("<a><b><c/></b></a>", 18, &lim, &d, err, sizeof err),
		  DAV_XML_ERR_SIZE);
	CHECK_STR(err, "elements nested too deep");
	CHECK(d == NULL);
	lim = (struct dav_xml_limits){1000, 32, 2, 100};
	CHECK_INT(dav_xml_parse("<a><b/><c/></a>", 15, &lim, &d, err, sizeof err),
		  DAV_XML_ERR_SIZE);
	CHECK_STR(err, "too many elements");
	lim = (struct dav_xml_limits){1000, 32, 100, 5};
	CHECK_INT(dav_xml_parse("<a>abc<b>def</b></a>", 20, &lim, &d, err, sizeof err),
		  DAV_XML_ERR_SIZE);
	CHECK_STR(err, "too much text");
	lim = (struct dav_xml_limits){20, 3, 3, 6};
	CHECK_INT(dav_xml_parse("<a>abc<b>def</b></a>", 20, &lim, &d, err, sizeof err),
		  DAV_XML_OK);
	CHECK_STR(d->root->text, "abc");
	CHECK_STR(d->root->child->text, "def");
	dav_xml_free(&d);
}

TEST(dav_xml_prefixes)
{
	static const char body[] = "<d:multiget xmlns:d=\"DAV:\"><d:href>/a%20b.vcf</d:href>"
				   "<d:href>/c.vcf</d:href></d:multiget>";
	size_t n = strlen(body), ok = 0;
	char err[128];
	for (size_t i = 0; i <= n; i++) {
		char *copy = malloc(i ? i : 1);
		memcpy(copy, body, i);
		struct dav_xml_doc *d;
		if (dav_xml_parse(copy, i, NULL, &d, err, sizeof err) == DAV_XML_OK) {
			ok++;
			CHECK_INT(d->n_all, 3);
			CHECK_STR(d->root->child->next->text, "/c.vcf");
		}
		dav_xml_free(&d);
		free(copy);
	}
	CHECK_INT(ok, 1);
}
