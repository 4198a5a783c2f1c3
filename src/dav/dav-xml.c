/*
 * dav-xml.c - see dav-xml.h.  Layer: dav core (pure; libexpat).
 *
 * expat runs in namespace mode (names arrive as "URI NAME", a space being
 * the one character a namespace URI cannot hold) with parameter entities
 * never parsed.  Every handler that could bring entities in stops the
 * parser: the DOCTYPE start (so no internal subset, no entity
 * declaration, no external DTD is ever read), and, for safety should one
 * get through, entity declarations and external entity references.  The
 * limits are checked in the handlers, so a document over them stops
 * where it crosses them, and the body's size before expat sees a byte.
 */
#include <expat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dav-xml.h"
#include "xalloc.h"

struct state {
	XML_Parser p;
	const struct dav_xml_limits *lim;
	struct dav_xml_doc *doc;
	size_t cap;
	struct dav_xml_node *cur; /* the open element, NULL outside */
	size_t depth, text_total;
	enum dav_xml_error error;
	char why[128];
};

/* A node's attributes and strings live in one allocation after it. */
struct node_mem {
	struct dav_xml_node node;
	char *text; /* owned, grown as data comes */
	size_t text_cap;
	_Alignas(struct dav_xml_attr) char strings[];
};

static void stop(struct state *s, enum dav_xml_error e, const char *why)
{
	if (s->error == DAV_XML_OK) {
		s->error = e;
		snprintf(s->why, sizeof s->why, "%s", why);
	}
	XML_StopParser(s->p, XML_FALSE);
}

/* Copies "URI NAME" (or "NAME") to *w as two strings: URI ("" none), NAME. */
static void split_name(const char *qname, char **w, const char **ns, const char **name)
{
	const char *sp = strchr(qname, ' ');
	size_t nslen = sp ? (size_t)(sp - qname) : 0;
	const char *local = sp ? sp + 1 : qname;
	size_t llen = strlen(local);
	memcpy(*w, qname, nslen);
	(*w)[nslen] = '\0';
	*ns = *w;
	*w += nslen + 1;
	memcpy(*w, local, llen + 1);
	*name = *w;
	*w += llen + 1;
}

static void on_start(void *arg, const XML_Char *qname, const XML_Char **attrs)
{
	struct state *s = arg;
	if (s->error != DAV_XML_OK)
		return;
	if (s->depth + 1 > s->lim->max_depth) {
		stop(s, DAV_XML_ERR_SIZE, "elements nested too deep");
		return;
	}
	if (s->doc->n_all == s->lim->max_nodes) {
		stop(s, DAV_XML_ERR_SIZE, "too many elements");
		return;
	}
	/* Sizes first: the strings of the element and of its attributes go
	 * into one allocation after the node, the attributes before them. */
	size_t na = 0, bytes = strlen(qname) + 2, attr_text = 0;
	for (; attrs[2 * na] != NULL; na++) {
		size_t vl = strlen(attrs[2 * na + 1]);
		bytes += strlen(attrs[2 * na]) + 2 + vl + 1;
		attr_text += vl;
	}
	if (na > DAV_XML_ATTRS_MAX) {
		stop(s, DAV_XML_ERR_SIZE, "too many attributes");
		return;
	}
	if (attr_text > s->lim->max_text - s->text_total) {
		stop(s, DAV_XML_ERR_SIZE, "too much text");
		return;
	}
	s->text_total += attr_text;
	struct node_mem *m = xcalloc(1, sizeof *m + na * sizeof(struct dav_xml_attr) + bytes);
	struct dav_xml_attr *av = (struct dav_xml_attr *)m->strings;
	char *w = m->strings + na * sizeof(struct dav_xml_attr);
	struct dav_xml_node *n = &m->node;
	split_name(qname, &w, &n->ns, &n->name);
	for (size_t i = 0; i < na; i++) {
		split_name(attrs[2 * i], &w, &av[i].ns, &av[i].name);
		size_t vl = strlen(attrs[2 * i + 1]);
		memcpy(w, attrs[2 * i + 1], vl + 1);
		av[i].value = w;
		w += vl + 1;
	}
	n->attrs = na ? av : NULL;
	n->n_attrs = na;
	n->text = "";
	n->parent = s->cur;
	if (s->cur != NULL) {
		struct dav_xml_node **tail = &s->cur->child;
		while (*tail != NULL)
			tail = &(*tail)->next;
		*tail = n;
	} else {
		s->doc->root = n;
	}
	if (s->doc->n_all == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->doc->all = xreallocarray(s->doc->all, s->cap, sizeof *s->doc->all);
	}
	s->doc->all[s->doc->n_all++] = n;
	s->cur = n;
	s->depth++;
}

static void on_end(void *arg, const XML_Char *qname)
{
	struct state *s = arg;
	if (s->error != DAV_XML_OK || s->cur == NULL)
		return;
	s->cur = s->cur->parent;
	s->depth--;
}

static void on_text(void *arg, const XML_Char *data, int len)
{
	struct state *s = arg;
	if (s->error != DAV_XML_OK || s->cur == NULL || len <= 0)
		return;
	if ((size_t)len > s->lim->max_text - s->text_total) {
		stop(s, DAV_XML_ERR_SIZE, "too much text");
		return;
	}
	s->text_total += (size_t)len;
	struct node_mem *m = (struct node_mem *)s->cur;
	size_t have = m->node.text_len;
	if (have + (size_t)len + 1 > m->text_cap) {
		m->text_cap = (have + (size_t)len + 1) * 2;
		m->text = xrealloc(m->text, m->text_cap);
	}
	memcpy(m->text + have, data, (size_t)len);
	m->text[have + (size_t)len] = '\0';
	m->node.text = m->text;
	m->node.text_len = have + (size_t)len;
}

static void on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
		       const XML_Char *pubid, int has_internal_subset)
{
	stop(arg, DAV_XML_ERR_DTD, "a DOCTYPE is not accepted (no DTDs, no entities)");
}

static void on_entity_decl(void *arg, const XML_Char *name, int is_param, const XML_Char *value,
			   int value_len, const XML_Char *base, const XML_Char *sysid,
			   const XML_Char *pubid, const XML_Char *notation)
{
	stop(arg, DAV_XML_ERR_DTD, "entity declarations are not accepted");
}

static int on_external(XML_Parser p, const XML_Char *context, const XML_Char *base,
		       const XML_Char *sysid, const XML_Char *pubid)
{
	return XML_STATUS_ERROR; /* never fetched */
}

void dav_xml_free(struct dav_xml_doc **docp)
{
	struct dav_xml_doc *d = *docp;
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n_all; i++) {
		struct node_mem *m = (struct node_mem *)d->all[i];
		free(m->text);
		free(m);
	}
	free(d->all);
	free(d);
	*docp = NULL;
}

enum dav_xml_error dav_xml_parse(const char *data, size_t len, const struct dav_xml_limits *lim,
				 struct dav_xml_doc **out, char *err, size_t errsz)
{
	static const struct dav_xml_limits def = DAV_XML_LIMITS_DEFAULT;
	*out = NULL;
	if (lim == NULL)
		lim = &def;
	if (len > lim->max_size || len > (size_t)INT32_MAX) {
		snprintf(err, errsz, "XML body larger than %zu bytes", lim->max_size);
		return DAV_XML_ERR_SIZE;
	}
	struct state s = {.lim = lim};
	s.doc = xcalloc(1, sizeof *s.doc);
	s.p = XML_ParserCreateNS(NULL, ' ');
	if (s.p == NULL) {
		free(s.doc);
		snprintf(err, errsz, "out of memory");
		return DAV_XML_ERR_SIZE;
	}
	XML_SetUserData(s.p, &s);
	XML_SetElementHandler(s.p, on_start, on_end);
	XML_SetCharacterDataHandler(s.p, on_text);
	XML_SetStartDoctypeDeclHandler(s.p, on_doctype);
	XML_SetEntityDeclHandler(s.p, on_entity_decl);
	XML_SetExternalEntityRefHandler(s.p, on_external);
	XML_SetParamEntityParsing(s.p, XML_PARAM_ENTITY_PARSING_NEVER);
	enum XML_Status st = XML_Parse(s.p, data, (int)len, XML_TRUE);
	if (st != XML_STATUS_OK && s.error == DAV_XML_OK) {
		s.error = DAV_XML_ERR_SYNTAX;
		snprintf(s.why, sizeof s.why, "line %lu: %s",
			 (unsigned long)XML_GetCurrentLineNumber(s.p),
			 XML_ErrorString(XML_GetErrorCode(s.p)));
	}
	XML_ParserFree(s.p);
	if (s.error == DAV_XML_OK && s.doc->root == NULL) {
		s.error = DAV_XML_ERR_SYNTAX;
		snprintf(s.why, sizeof s.why, "no element");
	}
	if (s.error != DAV_XML_OK) {
		snprintf(err, errsz, "%s", s.why);
		dav_xml_free(&s.doc);
		return s.error;
	}
	*out = s.doc;
	return DAV_XML_OK;
}

bool dav_xml_is(const struct dav_xml_node *n, const char *ns, const char *name)
{
	return n != NULL && strcmp(n->ns, ns) == 0 && strcmp(n->name, name) == 0;
}

const char *dav_xml_attr(const struct dav_xml_node *n, const char *ns, const char *name)
{
	for (size_t i = 0; n != NULL && i < n->n_attrs; i++)
		if (strcmp(n->attrs[i].ns, ns) == 0 && strcmp(n->attrs[i].name, name) == 0)
			return n->attrs[i].value;
	return NULL;
}

const struct dav_xml_node *dav_xml_child(const struct dav_xml_node *n, const char *ns,
					 const char *name)
{
	for (const struct dav_xml_node *c = n ? n->child : NULL; c; c = c->next)
		if (dav_xml_is(c, ns, name))
			return c;
	return NULL;
}
