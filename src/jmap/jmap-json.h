/*
 * jmap-json.h - JSON for JMAP (RFC 8620 3.1: I-JSON, RFC 7493) on top of
 * jansson (docs/dependencies.md): a bounded parser for untrusted request
 * bodies, and RFC 6901 JSON Pointer evaluation with JMAP's "*" extension
 * (RFC 8620 3.7) for result references.
 *
 * Values are jansson's json_t, reference-counted: every function that
 * returns a json_t * returns a new reference the caller releases with
 * json_decref.
 */
#ifndef TERN_JMAP_JSON_H
#define TERN_JMAP_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of arrays and objects a request may have.  RFC 8259 9
 * lets a parser bound it; JMAP's own objects are a few levels deep. */
#define JMAP_JSON_MAX_DEPTH 64

/* Routes jansson's allocations through xalloc (out of memory is fatal in
 * one place, as everywhere in Tern).  Call once per process before any
 * other function here; later calls do nothing. */
void jmap_json_init(void);

/* Parses data[0..len) as one I-JSON value of any type: valid UTF-8, no
 * duplicate member names, no NUL in strings, integers within 64 bits,
 * nesting at most max_depth levels (checked by a scan before jansson
 * sees the text, so a deep document costs no recursion), nothing after
 * the value but white space.  Returns a new reference, or NULL with a
 * short reason in err. */
json_t *jmap_json_parse(const char *data, size_t len, unsigned max_depth, char *err, size_t errsz);

/* Depth of the deepest array/object nesting in data[0..len), stopping
 * early once it exceeds limit (returns limit + 1 then).  Strings are
 * skipped (brackets in them do not count). */
unsigned jmap_json_depth(const char *data, size_t len, unsigned limit);

/* Evaluates the JSON Pointer ptr (RFC 6901, a NUL-terminated UTF-8
 * string) against root, with RFC 8620 3.7's extension: a "*" token on an
 * array applies the rest of the pointer to every item and gives the array
 * of the results, arrays among them flattened one level.  Returns a new
 * reference, or NULL when the pointer is malformed or names nothing. */
json_t *jmap_json_pointer(json_t *root, const char *ptr);

/* True if s is a JMAP Id (RFC 8620 1.2): 1..255 characters of the
 * base64url alphabet "A-Za-z0-9-_". */
int jmap_json_is_id(const char *s);

/* A decimal number without sign or leading zero ("0", "17"), at most 19
 * digits, into *out: JSON Pointer array indexes, our state strings. */
bool jmap_json_decimal(const char *s, uint64_t *out);

/* Compact UTF-8 serialisation (malloc'd, NUL-terminated; *len may be
 * NULL).  Never NULL for a valid value. */
char *jmap_json_dump(const json_t *v, size_t *len);

#endif
