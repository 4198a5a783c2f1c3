/*
 * header.c - bounded RFC 5322 header section parser (see header.h).
 *
 * Mail layer: reads the header of messages we receive or store.  One pass
 * over physical lines (CRLF or bare LF), each either a new field, a folded
 * continuation of the previous one (it starts with WSP) or the empty line
 * that ends the section.  Anything else, an mbox "From " line included, is
 * a syntax error: we never guess where a damaged header ends.  Fields point
 * into the caller's buffer; the only allocation is the array of fields.
 */
#include "header.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "strutil.h"
#include "xalloc.h"

/* ftext = %d33-57 / %d59-126: printable US-ASCII except ':' */
static bool is_ftext(unsigned char ch)
{
	return ch >= 33 && ch <= 126 && ch != ':';
}

static bool is_wsp(char ch)
{
	return ch == ' ' || ch == '\t';
}

static enum header_error fail(struct header *h, enum header_error e)
{
	header_free(h);
	return e;
}

enum header_error header_parse(const char *msg, size_t n, struct header *h)
{
	size_t cap = 0, i = 0;

	memset(h, 0, sizeof *h);
	while (i < n) {
		const char *lf = memchr(msg + i, '\n', n - i);
		size_t next = lf != NULL ? (size_t)(lf - msg) + 1 : n;
		size_t end = lf != NULL ? (size_t)(lf - msg) : n;
		/* A CR before the LF belongs to the line end; so does a CR as the
		 * very last byte, the start of a CRLF cut off by the buffer. */
		if (end > i && msg[end - 1] == '\r')
			end--;
		size_t len = end - i;

		if (len == 0) {
			if (lf == NULL)
				break; /* only a lone CR left */
			h->has_body_separator = true;
			h->header_len = next;
			return HEADER_OK;
		}
		if (len > HEADER_MAX_LINE)
			return fail(h, HEADER_ERR_LINE_TOO_LONG);
		if (is_wsp(msg[i])) {
			/* Folded continuation: the value grows to this line's end,
			 * the folding line ends staying inside it. */
			if (h->n_fields == 0)
				return fail(h, HEADER_ERR_SYNTAX);
			struct header_field *f = &h->fields[h->n_fields - 1];
			f->value_len = (size_t)(msg + end - f->value);
		} else {
			size_t j = i;
			while (j < end && is_ftext((unsigned char)msg[j]))
				j++;
			size_t name_len = j - i;
			/* obs-optional: WSP between the name and the colon */
			while (j < end && is_wsp(msg[j]))
				j++;
			if (name_len == 0 || j == end || msg[j] != ':')
				return fail(h, HEADER_ERR_SYNTAX);
			if (name_len > HEADER_MAX_NAME)
				return fail(h, HEADER_ERR_SYNTAX);
			if (h->n_fields == HEADER_MAX_FIELDS)
				return fail(h, HEADER_ERR_TOO_MANY);
			if (h->n_fields == cap) {
				cap = cap == 0 ? 16 : cap * 2;
				if (cap > HEADER_MAX_FIELDS)
					cap = HEADER_MAX_FIELDS;
				h->fields = xreallocarray(h->fields, cap, sizeof *h->fields);
			}
			struct header_field *f = &h->fields[h->n_fields++];
			f->name = msg + i;
			f->name_len = name_len;
			f->value = msg + j + 1;
			f->value_len = end - (j + 1);
		}
		i = next;
	}
	h->header_len = n;
	return HEADER_OK;
}

void header_free(struct header *h)
{
	if (h == NULL)
		return;
	free(h->fields);
	memset(h, 0, sizeof *h);
}

const struct header_field *header_find(const struct header *h, const char *name)
{
	for (size_t i = 0; i < h->n_fields; i++)
		if (strutil_eq_ci(h->fields[i].name, h->fields[i].name_len, name))
			return &h->fields[i];
	return NULL;
}

size_t header_count(const struct header *h, const char *name)
{
	size_t count = 0;
	for (size_t i = 0; i < h->n_fields; i++)
		if (strutil_eq_ci(h->fields[i].name, h->fields[i].name_len, name))
			count++;
	return count;
}

size_t header_unfold(const char *value, size_t n, char *out, size_t outsz)
{
	if (outsz == 0)
		return 0;
	/* Unfolding only deletes CR and LF, so trimming blanks (and line
	 * ends) off the raw value trims the unfolded one the same way. */
	size_t a = 0, b = n;
	while (a < b && (is_wsp(value[a]) || value[a] == '\r' || value[a] == '\n'))
		a++;
	while (b > a && (is_wsp(value[b - 1]) || value[b - 1] == '\r' || value[b - 1] == '\n'))
		b--;
	size_t o = 0;
	for (size_t i = a; i < b && o < outsz - 1; i++)
		if (value[i] != '\r' && value[i] != '\n')
			out[o++] = value[i];
	out[o] = '\0';
	return o;
}

int header_section_copy(const char *msg, size_t len, size_t max, bool ascii_only,
			struct buf *out)
{
	size_t end = len;
	for (size_t i = 0; i + 1 < len; i++)
		if (msg[i] == '\n' && (msg[i + 1] == '\n' ||
					(msg[i + 1] == '\r' && i + 2 < len && msg[i + 2] == '\n'))) {
			end = i + 1;
			break;
		}
	if (end > max) {
		end = max;
		while (end > 0 && msg[end - 1] != '\n')
			end--;
	}
	int e = 0;
	size_t col = 0;
	for (size_t i = 0; i < end && e == 0; i++) {
		unsigned char ch = (unsigned char)msg[i];
		if (ch == '\r')
			continue;
		if (ch == '\n') {
			e |= buf_puts(out, "\r\n");
			col = 0;
			continue;
		}
		if (col >= 998) {
			e |= buf_puts(out, "\r\n ");
			col = 1;
		}
		bool plain = (ch >= 0x20 && ch < 0x7f) || ch == '\t';
		e |= buf_putc(out, plain || !ascii_only ? (char)ch : '?');
		col++;
	}
	if (col > 0)
		e |= buf_puts(out, "\r\n");
	return e ? -1 : 0;
}
