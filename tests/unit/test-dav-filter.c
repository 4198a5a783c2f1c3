/*
 * test-dav-filter.c - unit tests for src/dav/dav-filter.c: anyof/allof at
 * both levels, is-not-defined, every match-type, negate-condition, the
 * three collations, instances (one per line of a field), and what is
 * refused (unknown collation, param-filter, group prefixes, unknown
 * properties, bad attributes).
 */
#include <stdio.h>
#include <string.h>

#include "dav-filter.h"
#include "test.h"

static const char *const names[] = {"FN", "EMAIL", "CATEGORIES", "NICKNAME"};

/* Fields of two contacts. */
static const char *const ann[] = {"Ann Sm\xc3\x8dth", "ann@Example.test\nann@home.test",
				  "friends\nwork", ""};
static const char *const bob[] = {"Bob", "", "PERSON", "bobby"};

/* Compiles body's filter; -1 on an error (kind in *e). */
static struct dav_filter *compile(const char *filter, enum dav_filter_error *e)
{
	char body[2048], err[128];
	snprintf(body, sizeof body,
		 "<C:addressbook-query xmlns:C=\"urn:ietf:params:xml:ns:carddav\">%s"
		 "</C:addressbook-query>",
		 filter);
	struct dav_xml_doc *d;
	if (dav_xml_parse(body, strlen(body), NULL, &d, err, sizeof err) != DAV_XML_OK)
		return NULL;
	struct dav_filter *f = NULL;
	*e = dav_filter_compile(dav_xml_child(d->root, DAV_NS_CARDDAV, "filter"), names, 4, &f,
				err, sizeof err);
	dav_xml_free(&d);
	return f;
}

/* 2 bits: ann matches, bob matches; -1 if it does not compile. */
static int which(const char *filter)
{
	enum dav_filter_error e;
	struct dav_filter *f = compile(filter, &e);
	if (f == NULL)
		return -1;
	int r = (dav_filter_match(f, ann) ? 2 : 0) | (dav_filter_match(f, bob) ? 1 : 0);
	dav_filter_free(&f);
	return r;
}

TEST(dav_filter_matches)
{
	CHECK_INT(which("<C:filter/>"), 3);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"EMAIL\"/></C:filter>"), 2);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"email\"><C:is-not-defined/>"
			"</C:prop-filter></C:filter>"),
		  1);
	/* Default: contains, i;unicode-casemap (U+00CD folds to U+00ED). */
	CHECK_INT(which("<C:filter><C:prop-filter name=\"FN\"><C:text-match>sm\xc3\xadth"
			"</C:text-match></C:prop-filter></C:filter>"),
		  2);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"FN\"><C:text-match "
			"collation=\"i;ascii-casemap\">SM\xc3\x8dTH</C:text-match></C:prop-filter>"
			"</C:filter>"),
		  2);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"FN\"><C:text-match "
			"collation=\"i;ascii-casemap\">sm\xc3\xadth</C:text-match></C:prop-filter>"
			"</C:filter>"),
		  0);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"FN\"><C:text-match collation=\"i;octet\""
			" match-type=\"equals\">bob</C:text-match></C:prop-filter></C:filter>"),
		  0);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"FN\"><C:text-match match-type=\"equals\">"
			"bob</C:text-match></C:prop-filter></C:filter>"),
		  1);
	/* Instances: the second e-mail address. */
	CHECK_INT(which("<C:filter><C:prop-filter name=\"EMAIL\"><C:text-match "
			"match-type=\"starts-with\">ann@home</C:text-match></C:prop-filter>"
			"</C:filter>"),
		  2);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"EMAIL\"><C:text-match "
			"match-type=\"ends-with\">EXAMPLE.TEST</C:text-match></C:prop-filter>"
			"</C:filter>"),
		  2);
	/* RFC 6352's example: CATEGORIES not PERSON. */
	CHECK_INT(which("<C:filter><C:prop-filter name=\"CATEGORIES\"><C:text-match "
			"negate-condition=\"yes\" match-type=\"equals\">person</C:text-match>"
			"</C:prop-filter></C:filter>"),
		  2);
	/* anyof / allof, of text-matches and of prop-filters. */
	static const char two[] = "<C:filter test=\"%s\"><C:prop-filter name=\"FN\">"
				  "<C:text-match>ann</C:text-match></C:prop-filter>"
				  "<C:prop-filter name=\"NICKNAME\"/></C:filter>";
	char buf[512];
	snprintf(buf, sizeof buf, two, "anyof");
	CHECK_INT(which(buf), 3);
	snprintf(buf, sizeof buf, two, "allof");
	CHECK_INT(which(buf), 0);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"FN\" test=\"allof\">"
			"<C:text-match>ann</C:text-match><C:text-match>smith</C:text-match>"
			"</C:prop-filter></C:filter>"),
		  0);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"FN\" test=\"allof\">"
			"<C:text-match>ann</C:text-match><C:text-match>sm</C:text-match>"
			"</C:prop-filter></C:filter>"),
		  2);
	CHECK_INT(which("<C:filter><C:prop-filter name=\"FN\">"
			"<C:text-match>zzz</C:text-match><C:text-match>bo</C:text-match>"
			"</C:prop-filter></C:filter>"),
		  1);
}

static enum dav_filter_error refused(const char *filter)
{
	enum dav_filter_error e = DAV_FILTER_OK;
	struct dav_filter *f = compile(filter, &e);
	CHECK(f == NULL);
	dav_filter_free(&f);
	return e;
}

TEST(dav_filter_refused)
{
	CHECK_INT(refused("<C:filter><C:prop-filter name=\"FN\"><C:text-match "
			  "collation=\"i;klingon\">x</C:text-match></C:prop-filter></C:filter>"),
		  DAV_FILTER_ERR_COLLATION);
	CHECK_INT(refused("<C:filter><C:prop-filter name=\"EMAIL\"><C:param-filter name=\"TYPE\"/>"
			  "</C:prop-filter></C:filter>"),
		  DAV_FILTER_ERR_FILTER);
	CHECK_INT(refused("<C:filter><C:prop-filter name=\"X-ABC.TEL\"/></C:filter>"),
		  DAV_FILTER_ERR_FILTER);
	CHECK_INT(refused("<C:filter><C:prop-filter name=\"NOTE\"/></C:filter>"),
		  DAV_FILTER_ERR_FILTER);
	CHECK_INT(refused("<C:filter><C:prop-filter/></C:filter>"), DAV_FILTER_ERR_SYNTAX);
	CHECK_INT(refused("<C:filter test=\"some\"/>"), DAV_FILTER_ERR_SYNTAX);
	CHECK_INT(refused("<C:filter><C:prop-filter name=\"FN\"><C:text-match "
			  "match-type=\"near\">x</C:text-match></C:prop-filter></C:filter>"),
		  DAV_FILTER_ERR_SYNTAX);
	CHECK_INT(refused("<C:filter><C:prop-filter name=\"FN\"><C:text-match "
			  "negate-condition=\"maybe\">x</C:text-match></C:prop-filter></C:filter>"),
		  DAV_FILTER_ERR_SYNTAX);
	CHECK_INT(refused("<C:filter><C:prop-filter name=\"FN\"><C:is-not-defined/>"
			  "<C:text-match>x</C:text-match></C:prop-filter></C:filter>"),
		  DAV_FILTER_ERR_SYNTAX);
	CHECK_INT(refused(""), DAV_FILTER_ERR_SYNTAX); /* no filter element */
}
