/*
 * fuzz-dav-xml.c - libFuzzer target for src/dav/dav-xml.c.
 *
 * Parses the input as a WebDAV body with small limits and checks the tree:
 * every limit holds, parent/child/next links agree with the document-order
 * list, the texts' lengths are right, names have no space (the namespace
 * separator), an error leaves nothing behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dav-xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dav_xml_limits lim = {8192, 8, 64, 1024};
	struct dav_xml_doc *d = (struct dav_xml_doc *)1;
	char err[128] = "";
	enum dav_xml_error e = dav_xml_parse((const char *)data, size, &lim, &d, err, sizeof err);
	if (e != DAV_XML_OK) {
		if (d != NULL || err[0] == '\0')
			abort();
		return 0;
	}
	if (d->root == NULL || d->n_all == 0 || d->n_all > lim.max_nodes || d->all[0] != d->root ||
	    d->root->parent != NULL)
		abort();
	size_t text = 0;
	for (size_t i = 0; i < d->n_all; i++) {
		const struct dav_xml_node *n = d->all[i];
		if (strchr(n->name, ' ') != NULL || n->name[0] == '\0' ||
		    strlen(n->text) > n->text_len)
			abort();
		text += n->text_len;
		if (n->n_attrs > DAV_XML_ATTRS_MAX)
			abort();
		for (size_t k = 0; k < n->n_attrs; k++) {
			if (dav_xml_attr(n, n->attrs[k].ns, n->attrs[k].name) == NULL)
				abort();
			text += strlen(n->attrs[k].value);
		}
		size_t depth = 0, kids = 0;
		for (const struct dav_xml_node *p = n; p; p = p->parent)
			depth++;
		if (depth > lim.max_depth)
			abort();
		for (const struct dav_xml_node *c = n->child; c; c = c->next) {
			if (c->parent != n || ++kids > d->n_all)
				abort();
			if (!dav_xml_is(c, c->ns, c->name) || dav_xml_child(n, c->ns, c->name) == NULL)
				abort();
		}
	}
	if (text > lim.max_text)
		abort();
	dav_xml_free(&d);
	if (d != NULL)
		abort();
	return 0;
}
