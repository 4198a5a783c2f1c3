/*
 * mime-part.c - see mime-part.h.  The part walk and charset conversion
 * that JMAP's body parts need; mime_part_name and mime_part_content are
 * in mime-decode.c, next to the decoders they share with SEARCH.
 *
 * Mail layer.
 */
#include "mime-part.h"

#include <string.h>

#include "buf.h"
#include "mime-private.h"
#include "strutil.h"
#include "xalloc.h"

const struct mime_part *mime_part_root(const struct mime_tree *t)
{
	return t->root;
}

const struct mime_part *mime_part_at(const struct mime_tree *t, const unsigned *path, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (path[i] == 0)
			return NULL;
	return n > 0 ? mime_part_find(t, path, n) : NULL;
}

bool mime_part_is_multipart(const struct mime_part *p)
{
	return p->kind == MIME_KIND_MULTIPART && !p->opaque;
}

const struct mime_part *mime_part_first(const struct mime_part *p)
{
	return mime_part_is_multipart(p) ? p->children : NULL;
}

const struct mime_part *mime_part_next(const struct mime_part *p)
{
	return p->next;
}

size_t mime_part_fields(const struct mime_tree *t, const struct mime_part *p, size_t max,
			struct mime_part_field **out)
{
	struct mime_hdr_iter it;
	struct mime_hdr_field f;
	size_t n = 0, cap = 0;
	*out = NULL;
	mime_hdr_iter_init(&it, t->msg, p->start, p->start + p->hdr_len);
	while (n < max && mime_hdr_next(&it, &f)) {
		if (!f.is_field)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			*out = xreallocarray(*out, cap, sizeof **out);
		}
		struct mime_part_field *o = &(*out)[n++];
		o->name = t->msg + f.name_off;
		o->name_len = f.name_len;
		o->value = t->msg + f.value_off;
		o->value_len = f.value_len;
	}
	return n;
}

int mime_part_type(const struct mime_tree *t, const struct mime_part *p, struct buf *type,
		   struct buf *charset, bool *has_charset)
{
	struct mime_params params = {0};
	struct buf v;
	size_t to, tl, so, sl;
	int r = 0;
	buf_init(&v, MIME_MAX_HEADER_LINE + 1);
	*has_charset = false;
	if (!p->opaque && p->type_valid && mime_part_field(t, p, MIME_FLD_TYPE, &v) &&
	    mime_ctype_parse(buf_cstr(&v), v.len, &to, &tl, &so, &sl, &params)) {
		size_t from = type->len;
		if (buf_append(type, v.data + to, tl) < 0 || buf_putc(type, '/') < 0 ||
		    buf_append(type, v.data + so, sl) < 0)
			r = -1;
		else
			strutil_lower(type->data + from, type->len - from);
		const struct mime_param *pc = mime_params_find(&params, "charset");
		if (r == 0 && pc != NULL) {
			*has_charset = true;
			r = buf_append(charset, pc->value, pc->value_len);
		}
	} else {
		r = buf_puts(type, p->in_digest && !p->opaque ? "message/rfc822" : "text/plain");
	}
	mime_params_free(&params);
	buf_free(&v);
	return r;
}

int mime_part_disposition(const struct mime_tree *t, const struct mime_part *p, struct buf *out)
{
	struct buf v;
	int r = 0;
	buf_init(&v, MIME_MAX_HEADER_LINE + 1);
	if (mime_part_field(t, p, MIME_FLD_DISP, &v)) {
		const char *s = buf_cstr(&v);
		size_t i = 0;
		mime_skip_cfws(s, v.len, &i, NULL);
		size_t off = i, len = mime_read_token(s, v.len, &i);
		if (len > 0) {
			size_t from = out->len;
			r = buf_append(out, s + off, len) < 0 ? -1 : 1;
			if (r == 1)
				strutil_lower(out->data + from, len);
		}
	}
	buf_free(&v);
	return r;
}
