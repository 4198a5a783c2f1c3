/*
 * vcard.h - a bounded reader of one vCard (RFC 6350 version 4.0, and
 * RFC 2426 version 3.0), pure: no I/O, no allocation kept beyond struct
 * vcard.  It unfolds the lines, splits each content line into group,
 * name, parameters and value, checks the BEGIN/VERSION/END frame and
 * refuses invalid UTF-8 and control characters with a message naming the
 * line.  Values are kept raw (escapes untouched); vcard_text decodes a
 * text value.  Unknown properties are kept like known ones.  Used by the
 * address book store (store-contacts.c) to find the fields it searches;
 * the bytes themselves are stored as uploaded.
 */
#ifndef TERN_VCARD_H
#define TERN_VCARD_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct vcard_limits {
	size_t max_size;  /* bytes of the whole input */
	size_t max_lines; /* physical lines */
	size_t max_props; /* content lines between BEGIN and END */
	size_t max_line;  /* bytes of one physical line (without its CRLF) */
};

/* 1 MiB, 100,000 lines, 10,000 properties, 256 KiB a line. */
#define VCARD_LIMITS_DEFAULT {(size_t)1 << 20, 100000, 10000, (size_t)256 << 10}

enum vcard_error {
	VCARD_OK = 0,
	VCARD_ERR_SIZE,    /* over a limit */
	VCARD_ERR_UTF8,    /* invalid UTF-8 or a control character */
	VCARD_ERR_FOLDING, /* a continuation line with nothing to continue */
	VCARD_ERR_SYNTAX,  /* a content line that does not parse */
	VCARD_ERR_FRAME,   /* BEGIN/VERSION/END missing, wrong or repeated */
};

struct vcard_param {
	const char *name;  /* upper-cased; "TYPE" for a 3.0 bare value */
	const char *value; /* double quotes removed, commas kept; "" none */
};

struct vcard_prop {
	const char *group; /* NULL: none */
	const char *name;  /* upper-cased */
	struct vcard_param *params;
	size_t n_params;
	const char *value; /* unfolded, escapes kept, NUL-terminated */
	size_t value_len;
	size_t line; /* its first physical line, from 1 */
};

/* One parsed vCard.  Everything it points to is owned by it. */
struct vcard {
	int version; /* 3 or 4 */
	struct vcard_prop *props; /* between BEGIN and END, VERSION excluded */
	size_t n_props;
	char *text;                /* the unfolded copy the strings point into */
	struct vcard_param *param_pool;
	size_t n_param_pool;
};

/* Parses data[0..len) as exactly one vCard (lines end in CRLF or LF;
 * empty lines are ignored).  lim NULL: VCARD_LIMITS_DEFAULT.  VCARD_OK
 * and *out filled (free it with vcard_free), or an error with a message
 * in err ("line 3: ...") and *out empty. */
enum vcard_error vcard_parse(const char *data, size_t len, const struct vcard_limits *lim,
			     struct vcard *out, char *err, size_t errsz);
/* Frees what v owns and empties it.  Accepts an empty vcard. */
void vcard_free(struct vcard *v);

/* The first property named name (upper-case) at index >= *from, setting
 * *from past it; NULL when there is none.  from may be NULL (from 0). */
const struct vcard_prop *vcard_find(const struct vcard *v, const char *name, size_t *from);
/* The value of parameter name (upper-case) of p, or NULL. */
const char *vcard_param(const struct vcard_prop *p, const char *name);

/* Appends the text of value[0..len) to out with the escapes decoded
 * (\n and \N a line feed, \\ \, \; \: the character).  An unescaped ';'
 * (between components) becomes comp_sep and an unescaped ',' (between
 * list items) list_sep, when these are not NUL; empty items are skipped,
 * so no separator starts, ends or doubles.  0, or -1 when out is full. */
int vcard_text(const char *value, size_t len, char comp_sep, char list_sep, struct buf *out);

#endif
