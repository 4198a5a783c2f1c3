/*
 * preview.c - see preview.h.
 */
#include "preview.h"

#include <string.h>

#include "buf.h"
#include "mime-part.h"
#include "mime.h"
#include "strutil.h"

/* Decoded octets of a part looked at for an IMAP preview: past this the
 * text is not read (a preview needs the first few hundred characters;
 * the cap keeps a FETCH PREVIEW of a huge part cheap). */
#define PREVIEW_PART_MAX (256 * 1024)
/* Parts looked at by preview_message before it gives up. */
#define PREVIEW_PARTS_MAX 1000

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

bool preview_full(const struct buf *out, size_t max)
{
	/* a code point is at most 4 octets: this many hold max of them */
	return out->len >= 4 * max;
}

/* Appends c, or one space for a run of blanks (none at the start). */
static void put(struct buf *out, char c)
{
	if (!is_blank(c))
		(void)buf_putc(out, c);
	else if (out->len > 0 && out->data[out->len - 1] != ' ')
		(void)buf_putc(out, ' ');
}

/* The text of HTML s[0..n): tags dropped (and the content of style and
 * script), the common entities decoded, through put. */
static void add_html(struct buf *out, const char *s, size_t n, size_t max)
{
	static const struct {
		const char *ent, *rep;
	} ents[] = {{"&amp;", "&"},   {"&lt;", "<"},  {"&gt;", ">"},
		    {"&quot;", "\""}, {"&#39;", "'"}, {"&nbsp;", " "}};
	for (size_t i = 0; i < n && !preview_full(out, max);) {
		if (s[i] == '<') {
			bool skip = strutil_prefix_ci(s + i, n - i, "<style") ||
				    strutil_prefix_ci(s + i, n - i, "<script");
			const char *gt = memchr(s + i, '>', n - i);
			i = gt ? (size_t)(gt - s) + 1 : n;
			if (skip) {
				while (i < n && !(s[i] == '<' && i + 1 < n && s[i + 1] == '/'))
					i++;
			}
			put(out, ' ');
			continue;
		}
		if (s[i] == '&') {
			size_t k = 0;
			while (k < sizeof ents / sizeof ents[0] &&
			       !strutil_prefix_ci(s + i, n - i, ents[k].ent))
				k++;
			if (k < sizeof ents / sizeof ents[0]) {
				for (const char *r = ents[k].rep; *r != '\0'; r++)
					put(out, *r);
				i += strlen(ents[k].ent);
				continue;
			}
		}
		put(out, s[i++]);
	}
}

void preview_add(struct buf *out, const char *s, size_t n, bool html, size_t max)
{
	if (html) {
		add_html(out, s, n, max);
	} else {
		for (size_t i = 0; i < n && !preview_full(out, max); i++)
			put(out, s[i]);
	}
	put(out, ' ');
}

size_t preview_len(const struct buf *out, size_t max)
{
	const char *s = out->data;
	size_t chars = 0, k = 0;
	while (k < out->len && chars < max) {
		k++;
		while (k < out->len && ((unsigned char)s[k] & 0xc0) == 0x80)
			k++;
		chars++;
	}
	while (k > 0 && s[k - 1] == ' ')
		k--;
	return k;
}

/* The first part of the walk from p that gives a preview (see preview.h),
 * or NULL; *budget bounds the parts looked at. */
static const struct mime_part *text_part(const struct mime_tree *t, const struct mime_part *p,
					 size_t *budget, struct buf *type, struct buf *cs)
{
	if (*budget == 0)
		return NULL;
	(*budget)--;
	if (mime_part_is_multipart(p)) {
		for (const struct mime_part *c = mime_part_first(p); c != NULL;
		     c = mime_part_next(c)) {
			const struct mime_part *r = text_part(t, c, budget, type, cs);
			if (r != NULL)
				return r;
		}
		return NULL;
	}
	bool has_cs = false;
	buf_reset(type);
	buf_reset(cs);
	if (mime_part_type(t, p, type, cs, &has_cs) < 0)
		return NULL;
	const char *ty = buf_cstr(type);
	if (strcmp(ty, "text/plain") != 0 && strcmp(ty, "text/html") != 0)
		return NULL;
	struct buf disp = BUF_INIT;
	bool attached = mime_part_disposition(t, p, &disp) == 1 &&
			strcmp(buf_cstr(&disp), "attachment") == 0;
	buf_free(&disp);
	if (attached)
		return NULL;
	if (!has_cs) {
		buf_reset(cs);
		(void)buf_puts(cs, "us-ascii");
	}
	return p;
}

int preview_message(const struct mime_tree *t, size_t max, struct buf *out)
{
	struct buf type = BUF_INIT, cs = BUF_INIT, raw = BUF_INIT, text = BUF_INIT,
		   pv = BUF_INIT;
	size_t budget = PREVIEW_PARTS_MAX;
	int r = 0;
	const struct mime_part *p = text_part(t, mime_part_root(t), &budget, &type, &cs);
	if (p != NULL) {
		bool problem = false;
		if (mime_part_content(t, p, PREVIEW_PART_MAX, &raw) == -1 ||
		    mime_part_to_utf8(buf_cstr(&cs), cs.len, buf_cstr(&raw), raw.len, &text,
				      &problem) < 0) {
			r = -1;
		} else {
			preview_add(&pv, buf_cstr(&text), text.len,
				    strcmp(buf_cstr(&type), "text/html") == 0, max);
			r = buf_append(out, buf_cstr(&pv), preview_len(&pv, max));
		}
	}
	buf_free(&type);
	buf_free(&cs);
	buf_free(&raw);
	buf_free(&text);
	buf_free(&pv);
	return r;
}
