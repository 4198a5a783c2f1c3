/*
 * dav-filter.h - the CARDDAV:filter of an addressbook-query REPORT
 * (RFC 6352 10.5), compiled from the parsed body (dav-xml.h) and matched
 * against a contact's searchable fields (the values of each property,
 * joined by line feeds, as the address book store keeps them; each line is
 * one instance, each CATEGORIES item one too).  Pure.
 *
 * Supported: prop-filter on the properties the caller names (without a
 * group prefix: every instance, grouped or not, is a candidate), its test
 * anyof/allof, is-not-defined, text-match with the collations i;octet,
 * i;ascii-casemap and i;unicode-casemap (simple case folding,
 * sortkey_fold: no decomposition), every match-type and negate-condition.
 * Not supported, and refused so the server can answer with the
 * CARDDAV:supported-filter precondition: param-filter, a property name
 * with a group prefix or one the caller does not search.
 */
#ifndef TERN_DAV_FILTER_H
#define TERN_DAV_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "dav-xml.h"

enum dav_filter_error {
	DAV_FILTER_OK = 0,
	DAV_FILTER_ERR_COLLATION, /* CARDDAV:supported-collation */
	DAV_FILTER_ERR_FILTER,    /* CARDDAV:supported-filter */
	DAV_FILTER_ERR_SYNTAX,    /* a bad attribute or a missing name: 400 */
};

struct dav_filter;

/* Compiles filter (a CARDDAV:filter element); names[0..n_names) are the
 * property names the fields passed to dav_filter_match stand for, in
 * that order (upper-case).  DAV_FILTER_OK and *out (free with
 * dav_filter_free), or an error with err. */
enum dav_filter_error dav_filter_compile(const struct dav_xml_node *filter,
					 const char *const *names, size_t n_names,
					 struct dav_filter **out, char *err, size_t errsz);
/* True if a contact with fields[0..n_names) matches. */
bool dav_filter_match(const struct dav_filter *f, const char *const *fields);
void dav_filter_free(struct dav_filter **f);

#endif
