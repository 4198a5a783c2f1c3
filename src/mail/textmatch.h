/*
 * textmatch.h - how SEARCH-like commands match strings against message
 * text (IMAP SEARCH in src/imap/imap-search.c, JMAP Email/query and
 * SearchSnippet/get in src/jmap/jmap-email-query.c): substring after the
 * simple case folding of sortkey_fold (i;unicode-casemap without
 * normalisation) of both sides, on header values and body text that
 * mime.h has RFC 2047-decoded and converted to UTF-8; and the decoded
 * header text "Name: value" lines that mime_search_header(t, "") gives
 * and the IMAP header cache keeps, split back by field name.
 *
 * Mail layer.  Pure functions of their input; bounded by it.
 */
#ifndef TERN_TEXTMATCH_H
#define TERN_TEXTMATCH_H

#include <stdbool.h>
#include <stddef.h>

struct buf;       /* src/lib/buf.h */
struct mime_tree; /* mime.h */

/* The header text of a message kept for searches (the IMAP header cache,
 * store-imap.c): mime_search_header(t, "") when it is at most
 * TEXTMATCH_HDR_MAX octets of at most TEXTMATCH_HDR_FIELDS fields and
 * textmatch_header_fields gives back exactly mime_search_header's answer
 * for the name of each of its lines (so for every name); else the marker
 * TEXTMATCH_HDR_NONE (real text is empty or ends with "\n"). */
#define TEXTMATCH_HDR_MAX (16 * 1024)
#define TEXTMATCH_HDR_FIELDS 256
#define TEXTMATCH_HDR_NONE "-"
void textmatch_header_text(const struct mime_tree *t, struct buf *out);

/* A needle: s[0..n) folded, cut at its first NUL (NUL ends a needle), as
 * a new NUL-terminated string. */
char *textmatch_needle(const char *s, size_t n);

/* hay[0..hn) folded contains needle (folded already; "" is in
 * everything). */
bool textmatch_contains(const char *hay, size_t hn, const char *needle);

/* As textmatch_contains, for a haystack folded already. */
bool textmatch_contains_folded(const char *hay, size_t hn, const char *needle);

/* An address field's values v[0..n) (each ending in "\n") hold an address
 * whose addr-spec ("<local@domain>", comments and folding white space
 * removed: mime_addr_specs) contains needle. */
bool textmatch_addr_specs_contain(const char *v, size_t n, const char *needle);

/* Appends to out the values of the fields named name (case-insensitive)
 * of the header text hdr[0..n) ("Name: value" lines, as
 * mime_search_header(t, "") makes), each followed by "\n", as
 * mime_search_header(t, name) does.  -1 if hdr does not split into
 * "Name: value" lines (or out is full). */
int textmatch_header_fields(const char *hdr, size_t n, const char *name, struct buf *out);

/* The text of an HTML body p[0..n) for showing (a search snippet): tags,
 * comments and the content of <script> and <style> removed, the
 * character references &amp; &lt; &gt; &quot; &apos; &nbsp; and numeric
 * ones decoded, appended to out.  0 / -1. */
int textmatch_html_text(const char *p, size_t n, struct buf *out);

/* Where the folded needles occur in text[0..n) (not folded): the byte
 * ranges of text they match (by case folding each character, so a range
 * starts and ends at character boundaries), sorted and merged where they
 * overlap or touch, into a new array (*out, *n_out). */
struct textmatch_span {
	size_t start, end;
};
void textmatch_find(const char *text, size_t n, char *const *needles, size_t n_needles,
		    struct textmatch_span **out, size_t *n_out);

#endif
