/*
 * dav-filter.c - see dav-filter.h.  Layer: dav core (pure), above the
 * mail layer's case folding (sortkey.c, the one IMAP SEARCH uses).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "dav-filter.h"
#include "sortkey.h"
#include "strutil.h"
#include "xalloc.h"

enum collation { COLL_OCTET, COLL_ASCII, COLL_UNICODE };
enum match_type { MATCH_EQUALS, MATCH_CONTAINS, MATCH_STARTS, MATCH_ENDS };

struct text_match {
	struct buf text; /* folded as the collation says */
	enum collation coll;
	enum match_type type;
	bool negate;
};

struct prop_filter {
	size_t field;
	bool allof, not_defined;
	struct text_match *tm;
	size_t n_tm;
};

struct dav_filter {
	bool allof;
	struct prop_filter *pf;
	size_t n_pf;
};

/* Appends p[0..n) folded for coll to out. */
static void fold(enum collation coll, const char *p, size_t n, struct buf *out)
{
	if (coll == COLL_UNICODE) {
		sortkey_fold(p, n, out);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (coll == COLL_ASCII && c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		buf_putc(out, c);
	}
}

void dav_filter_free(struct dav_filter **fp)
{
	struct dav_filter *f = *fp;
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n_pf; i++) {
		for (size_t k = 0; k < f->pf[i].n_tm; k++)
			buf_free(&f->pf[i].tm[k].text);
		free(f->pf[i].tm);
	}
	free(f->pf);
	free(f);
	*fp = NULL;
}

/* test="anyof|allof" of n into *allof; false if the value is neither. */
static bool test_attr(const struct dav_xml_node *n, bool *allof)
{
	const char *t = dav_xml_attr(n, "", "test");
	*allof = t != NULL && strcmp(t, "allof") == 0;
	return t == NULL || *allof || strcmp(t, "anyof") == 0;
}

static enum dav_filter_error text_match(const struct dav_xml_node *n, struct text_match *tm,
					char *err, size_t errsz)
{
	const char *c = dav_xml_attr(n, "", "collation");
	const char *neg = dav_xml_attr(n, "", "negate-condition");
	const char *mt = dav_xml_attr(n, "", "match-type");
	if (c == NULL || strcmp(c, "i;unicode-casemap") == 0)
		tm->coll = COLL_UNICODE;
	else if (strcmp(c, "i;ascii-casemap") == 0)
		tm->coll = COLL_ASCII;
	else if (strcmp(c, "i;octet") == 0)
		tm->coll = COLL_OCTET;
	else {
		strutil_errf(err, errsz, "unsupported collation");
		return DAV_FILTER_ERR_COLLATION;
	}
	if (neg != NULL && strcmp(neg, "yes") != 0 && strcmp(neg, "no") != 0) {
		strutil_errf(err, errsz, "negate-condition is yes or no");
		return DAV_FILTER_ERR_SYNTAX;
	}
	tm->negate = neg != NULL && strcmp(neg, "yes") == 0;
	static const char *const types[] = {"equals", "contains", "starts-with", "ends-with"};
	tm->type = MATCH_CONTAINS;
	if (mt != NULL) {
		size_t i = 0;
		while (i < 4 && strcmp(mt, types[i]) != 0)
			i++;
		if (i == 4) {
			strutil_errf(err, errsz, "unknown match-type");
			return DAV_FILTER_ERR_SYNTAX;
		}
		tm->type = (enum match_type)i;
	}
	buf_init(&tm->text, 0);
	fold(tm->coll, n->text, n->text_len, &tm->text);
	return DAV_FILTER_OK;
}

static enum dav_filter_error prop_filter(const struct dav_xml_node *n, const char *const *names,
					 size_t n_names, struct prop_filter *pf, char *err,
					 size_t errsz)
{
	const char *name = dav_xml_attr(n, "", "name");
	if (name == NULL || name[0] == '\0' || !test_attr(n, &pf->allof)) {
		strutil_errf(err, errsz, "prop-filter needs a name and test anyof or allof");
		return DAV_FILTER_ERR_SYNTAX;
	}
	size_t i = 0;
	while (i < n_names && strcasecmp(names[i], name) != 0)
		i++;
	if (i == n_names) {
		strutil_errf(err, errsz, "this property cannot be searched");
		return DAV_FILTER_ERR_FILTER;
	}
	pf->field = i;
	for (const struct dav_xml_node *c = n->child; c; c = c->next) {
		if (dav_xml_is(c, DAV_NS_CARDDAV, "is-not-defined")) {
			pf->not_defined = true;
		} else if (dav_xml_is(c, DAV_NS_CARDDAV, "text-match")) {
			pf->tm = xreallocarray(pf->tm, pf->n_tm + 1, sizeof *pf->tm);
			memset(&pf->tm[pf->n_tm], 0, sizeof pf->tm[0]);
			enum dav_filter_error e = text_match(c, &pf->tm[pf->n_tm], err, errsz);
			if (e != DAV_FILTER_OK)
				return e;
			pf->n_tm++;
		} else if (dav_xml_is(c, DAV_NS_CARDDAV, "param-filter")) {
			strutil_errf(err, errsz, "param-filter is not supported");
			return DAV_FILTER_ERR_FILTER;
		} else if (strcmp(c->ns, DAV_NS_CARDDAV) == 0) {
			strutil_errf(err, errsz, "unknown element in prop-filter");
			return DAV_FILTER_ERR_SYNTAX;
		}
	}
	if (pf->not_defined && pf->n_tm > 0) {
		strutil_errf(err, errsz, "is-not-defined stands alone");
		return DAV_FILTER_ERR_SYNTAX;
	}
	return DAV_FILTER_OK;
}

enum dav_filter_error dav_filter_compile(const struct dav_xml_node *filter,
					 const char *const *names, size_t n_names,
					 struct dav_filter **out, char *err, size_t errsz)
{
	*out = NULL;
	struct dav_filter *f = xcalloc(1, sizeof *f);
	enum dav_filter_error e = DAV_FILTER_OK;
	if (!dav_xml_is(filter, DAV_NS_CARDDAV, "filter") || !test_attr(filter, &f->allof)) {
		strutil_errf(err, errsz, "a CARDDAV:filter with test anyof or allof is needed");
		e = DAV_FILTER_ERR_SYNTAX;
	}
	for (const struct dav_xml_node *c = filter ? filter->child : NULL; c && !e; c = c->next) {
		if (!dav_xml_is(c, DAV_NS_CARDDAV, "prop-filter"))
			continue;
		f->pf = xreallocarray(f->pf, f->n_pf + 1, sizeof *f->pf);
		memset(&f->pf[f->n_pf], 0, sizeof f->pf[0]);
		f->n_pf++;
		e = prop_filter(c, names, n_names, &f->pf[f->n_pf - 1], err, errsz);
	}
	if (e != DAV_FILTER_OK) {
		dav_filter_free(&f);
		return e;
	}
	*out = f;
	return DAV_FILTER_OK;
}

static bool text_matches(const struct text_match *tm, const char *v, size_t n)
{
	struct buf b = BUF_INIT;
	fold(tm->coll, v, n, &b);
	const char *h = buf_cstr(&b), *needle = buf_cstr((struct buf *)&tm->text);
	size_t hl = b.len, nl = tm->text.len;
	bool m = false;
	switch (tm->type) {
	case MATCH_EQUALS:
		m = hl == nl && memcmp(h, needle, nl) == 0;
		break;
	case MATCH_STARTS:
		m = hl >= nl && memcmp(h, needle, nl) == 0;
		break;
	case MATCH_ENDS:
		m = hl >= nl && memcmp(h + hl - nl, needle, nl) == 0;
		break;
	case MATCH_CONTAINS:
		m = nl == 0 || (hl >= nl && memmem(h, hl, needle, nl) != NULL);
		break;
	}
	buf_free(&b);
	return m != tm->negate;
}

/* The text-match is true for some instance of field. */
static bool some_instance(const struct text_match *tm, const char *field)
{
	const char *p = field;
	while (*p) {
		size_t n = strcspn(p, "\n");
		if (text_matches(tm, p, n))
			return true;
		p += n;
		if (*p == '\n')
			p++;
	}
	return false;
}

static bool prop_matches(const struct prop_filter *pf, const char *field)
{
	bool defined = field[0] != '\0';
	if (pf->not_defined)
		return !defined;
	if (!defined)
		return false;
	if (pf->n_tm == 0)
		return true;
	for (size_t i = 0; i < pf->n_tm; i++) {
		bool m = some_instance(&pf->tm[i], field);
		if (m != pf->allof)
			return m; /* anyof: a match decides; allof: a miss does */
	}
	return pf->allof;
}

bool dav_filter_match(const struct dav_filter *f, const char *const *fields)
{
	if (f->n_pf == 0)
		return true;
	for (size_t i = 0; i < f->n_pf; i++) {
		bool m = prop_matches(&f->pf[i], fields[f->pf[i].field]);
		if (m != f->allof)
			return m;
	}
	return f->allof;
}
