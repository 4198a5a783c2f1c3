/*
 * dav-xml.h - the reader of WebDAV request bodies (RFC 4918 14, RFC 6352
 * 10, RFC 6578 6): XML parsed by libexpat into a small tree of elements
 * with namespace-resolved names, bounded in size, depth, elements and
 * text, and without any DTD: a document type declaration (and so every
 * entity declaration, the stuff of "billion laughs" bombs and external
 * entities) is refused outright, as RFC 4918 20.6 allows.  Pure: no I/O.
 * For the CardDAV server to come (docs/contacts.md).
 */
#ifndef TERN_DAV_XML_H
#define TERN_DAV_XML_H

#include <stdbool.h>
#include <stddef.h>

#define DAV_NS "DAV:"
#define DAV_NS_CARDDAV "urn:ietf:params:xml:ns:carddav"

struct dav_xml_limits {
	size_t max_size;  /* bytes of the body */
	size_t max_depth; /* nesting of elements (the root is depth 1) */
	size_t max_nodes; /* elements */
	size_t max_text;  /* bytes of character data, all elements together */
};

/* 256 KiB, depth 32, 10,000 elements, 256 KiB of text. */
#define DAV_XML_LIMITS_DEFAULT {(size_t)256 << 10, 32, 10000, (size_t)256 << 10}

enum dav_xml_error {
	DAV_XML_OK = 0,
	DAV_XML_ERR_SIZE,   /* over a limit */
	DAV_XML_ERR_DTD,    /* a DOCTYPE (entities) */
	DAV_XML_ERR_SYNTAX, /* not well-formed (expat's message), or empty */
};

/* Attributes per element at most. */
#define DAV_XML_ATTRS_MAX 16

struct dav_xml_attr {
	const char *ns;   /* "" for an unprefixed attribute (the usual case) */
	const char *name;
	const char *value;
};

struct dav_xml_node {
	const char *ns;   /* namespace URI; "" for none */
	const char *name; /* local name */
	struct dav_xml_attr *attrs;
	size_t n_attrs;
	const char *text; /* the element's own character data, joined; "" none */
	size_t text_len;
	struct dav_xml_node *parent, *child, *next; /* child: the first */
};

/* A parsed body; owns every node and string. */
struct dav_xml_doc {
	struct dav_xml_node *root;
	struct dav_xml_node **all; /* every node, in document order */
	size_t n_all;
};

/* Parses data[0..len); lim NULL: DAV_XML_LIMITS_DEFAULT.  DAV_XML_OK and
 * *out (free with dav_xml_free), or an error, *out NULL and a message in
 * err. */
enum dav_xml_error dav_xml_parse(const char *data, size_t len, const struct dav_xml_limits *lim,
				 struct dav_xml_doc **out, char *err, size_t errsz);
void dav_xml_free(struct dav_xml_doc **doc);

/* True if n is element ns:name. */
bool dav_xml_is(const struct dav_xml_node *n, const char *ns, const char *name);
/* The value of n's attribute ns:name ("" ns: unprefixed), or NULL. */
const char *dav_xml_attr(const struct dav_xml_node *n, const char *ns, const char *name);
/* The first child of n named ns:name, or NULL (n may be NULL). */
const struct dav_xml_node *dav_xml_child(const struct dav_xml_node *n, const char *ns,
					 const char *name);

#endif
