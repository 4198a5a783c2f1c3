/*
 * mime.c - MIME structure of a message (see mime.h): the tolerant,
 * bounded parser that builds the part tree, the RFC 822 tokenizer and
 * parameter parser shared with mime-imap.c, and the IMAP section lookup.
 *
 * Mail layer.  The parser makes one pass over the lines of the message
 * with a stack of the active multipart boundaries, so a line is compared
 * with the boundaries only when it starts with "--"; nested parts do not
 * rescan their bytes.  A delimiter line belongs to the multipart with the
 * longest boundary it starts with (RFC 2046 5.1.1: the boundary only has
 * to be a prefix of the line; "longest" settles boundaries that are
 * prefixes of each other as Dovecot does); a delimiter of an outer
 * multipart ends every inner part that is still open (unterminated
 * multiparts).  The line break
 * before a delimiter belongs to the delimiter (RFC 2046 5.1.1), so a part
 * ends before it.  Nothing is copied out of the message but boundaries.
 */
#include "mime-private.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "strutil.h"
#include "xalloc.h"

/* --- small helpers ------------------------------------------------------- */

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static bool eq_ci(const char *a, size_t an, const char *b)
{
	return strutil_eq_ci(a, an, b);
}

/* --- header fields ------------------------------------------------------- */

void mime_hdr_iter_init(struct mime_hdr_iter *it, const char *msg, size_t off, size_t end)
{
	it->msg = msg;
	it->pos = off;
	it->end = end;
}

/* End of the line at pos (index of its '\n', or end). */
static size_t line_end(const char *msg, size_t pos, size_t end)
{
	const char *nl = memchr(msg + pos, '\n', end - pos);
	return nl != NULL ? (size_t)(nl - msg) : end;
}

static size_t next_line(const char *msg, size_t pos, size_t end)
{
	size_t e = line_end(msg, pos, end);
	return e < end ? e + 1 : end;
}

/* Length of the line's content, its CRLF or LF excluded. */
static size_t content_end(const char *msg, size_t pos, size_t e)
{
	if (e > pos && msg[e - 1] == '\r')
		return e - 1;
	return e;
}

bool mime_hdr_next(struct mime_hdr_iter *it, struct mime_hdr_field *f)
{
	const char *m = it->msg;

	while (it->pos < it->end) {
		size_t pos = it->pos;
		size_t e = line_end(m, pos, it->end);
		size_t ce = content_end(m, pos, e);
		if (ce == pos)
			return false; /* the blank line ends the header */
		size_t next = e < it->end ? e + 1 : it->end;
		const char *colon = memchr(m + pos, ':', ce - pos);
		if (is_wsp(m[pos]) || colon == NULL) {
			/* a stray continuation or a line that is no field: an
			 * entry without a name, for HEADER.FIELDS.NOT */
			colon = NULL;
		}
		size_t c = colon != NULL ? (size_t)(colon - m) : pos;
		size_t ne = c;
		while (ne > pos && is_wsp(m[ne - 1]))
			ne--;
		/* the field goes on over the lines that start with a blank */
		size_t last_ce = ce;
		while (next < it->end && is_wsp(m[next])) {
			e = line_end(m, next, it->end);
			last_ce = content_end(m, next, e);
			next = e < it->end ? e + 1 : it->end;
		}
		f->is_field = colon != NULL;
		f->name_off = pos;
		f->name_len = ne - pos;
		f->value_off = colon != NULL ? c + 1 : pos;
		f->value_len = last_ce >= f->value_off ? last_ce - f->value_off : 0;
		f->field_off = pos;
		f->field_len = next - pos;
		it->pos = next;
		return true;
	}
	return false;
}

void mime_value_trim_start(const char **v, size_t *n)
{
	const char *s = *v;
	size_t len = *n, i = 0;
	const char *nl = memchr(s, '\n', len);
	size_t first = nl != NULL ? (size_t)(nl - s) : len;
	bool has_text = false;

	for (size_t k = 0; k < first; k++) {
		if (!is_wsp(s[k]) && s[k] != '\r') {
			has_text = true;
			break;
		}
	}
	if (has_text) {
		while (i < len && is_wsp(s[i]))
			i++;
	} else if (i < len && is_wsp(s[i])) {
		/* a first line of nothing but blanks loses only the first one,
		 * which is what Dovecot shows for such values */
		i++;
	}
	*v = s + i;
	*n = len - i;
}

int mime_value_unfold(const char *v, size_t n, struct buf *out)
{
	size_t room = MIME_MAX_HEADER_LINE;

	mime_value_trim_start(&v, &n);
	for (size_t i = 0; i < n && room > 0; i++) {
		if (v[i] == '\n')
			continue;
		if (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n')
			continue;
		/* copy a run without line breaks at once */
		size_t j = i;
		while (j < n && v[j] != '\n' && !(v[j] == '\r' && j + 1 < n && v[j + 1] == '\n'))
			j++;
		size_t k = j - i < room ? j - i : room;
		if (buf_append(out, v + i, k) < 0)
			return -1;
		room -= k;
		i = j - 1;
	}
	return 0;
}

/* --- RFC 822 tokens ------------------------------------------------------ */

void mime_skip_cfws(const char *s, size_t n, size_t *i, struct buf *comment)
{
	size_t k = *i;

	if (comment != NULL)
		buf_reset(comment);
	while (k < n) {
		char c = s[k];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			k++;
			continue;
		}
		if (c != '(')
			break;
		/* a comment; nesting is counted, not recursed into */
		size_t depth = 0;
		bool first = true;
		if (comment != NULL)
			buf_reset(comment);
		while (k < n) {
			c = s[k++];
			if (c == '\\' && k < n) {
				if (comment != NULL && s[k] != '\r' && s[k] != '\n')
					(void)buf_putc(comment, s[k]);
				k++;
				continue;
			}
			if (c == '(') {
				depth++;
				if (first) {
					first = false;
					continue;
				}
			} else if (c == ')') {
				if (--depth == 0)
					break;
			}
			if (comment != NULL && c != '\r' && c != '\n' &&
			    comment->len < MIME_MAX_HEADER_LINE)
				(void)buf_putc(comment, c);
		}
	}
	*i = k;
}

bool mime_is_token_char(unsigned char c)
{
	if (c <= ' ' || c == 0x7f)
		return false;
	/* 8-bit octets are let through: unquoted UTF-8 file names exist */
	return strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

size_t mime_read_token(const char *s, size_t n, size_t *i)
{
	size_t k = *i;
	while (k < n && mime_is_token_char((unsigned char)s[k]))
		k++;
	size_t len = k - *i;
	*i = k;
	return len;
}

int mime_read_quoted(const char *s, size_t n, size_t *i, struct buf *out)
{
	size_t k = *i + 1; /* after the opening quote */
	size_t start_len = out->len;

	while (k < n) {
		char c = s[k++];
		if (c == '"') {
			*i = k;
			return 0;
		}
		if (c == '\\' && k < n)
			c = s[k++];
		else if (c == '\r' || c == '\n')
			continue; /* folding inside the string */
		if (buf_putc(out, c) < 0)
			break;
	}
	out->len = start_len;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	return -1;
}

/* --- parameters ---------------------------------------------------------- */

static void params_add(struct mime_params *p, const char *name, size_t nl, const char *value,
		       size_t vl)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4;
		p->v = xreallocarray(p->v, p->cap, sizeof *p->v);
	}
	struct mime_param *e = &p->v[p->n++];
	e->name = xmemdup0(name, nl);
	e->name_len = nl;
	e->value = xmemdup0(value, vl);
	e->value_len = vl;
}

void mime_params_free(struct mime_params *p)
{
	for (size_t k = 0; k < p->n; k++) {
		free(p->v[k].name);
		free(p->v[k].value);
	}
	free(p->v);
	p->v = NULL;
	p->n = 0;
	p->cap = 0;
}

const struct mime_param *mime_params_find(const struct mime_params *p, const char *name)
{
	for (size_t k = 0; k < p->n; k++)
		if (eq_ci(p->v[k].name, p->v[k].name_len, name))
			return &p->v[k];
	return NULL;
}

/* An RFC 2231 continuation "name*N" or "name*N*": base length and index. */
struct segment {
	size_t raw;      /* index into the raw parameter list */
	size_t base_len; /* length of the name before "*N" */
	unsigned idx;
	bool ext; /* "*N*": value is charset'lang'%XX-encoded */
};

static bool parse_segment(const struct mime_param *p, size_t raw, struct segment *seg)
{
	const char *nm = p->name;
	size_t n = p->name_len;
	bool ext = false;

	if (n > 0 && nm[n - 1] == '*') {
		ext = true;
		n--;
	}
	size_t d = n;
	while (d > 0 && nm[d - 1] >= '0' && nm[d - 1] <= '9')
		d--;
	if (d == n || d < 2 || nm[d - 1] != '*' || n - d > 4)
		return false; /* not "*digits" (indexes over 9999 are not
			       * continuations either) */
	unsigned idx = 0;
	for (size_t k = d; k < n; k++)
		idx = idx * 10 + (unsigned)(nm[k] - '0');
	seg->raw = raw;
	seg->base_len = d - 1;
	seg->idx = idx;
	seg->ext = ext;
	return true;
}

static int segment_cmp(const struct mime_param *raw, const struct segment *a,
		       const struct segment *b)
{
	size_t la = a->base_len, lb = b->base_len;
	int c = memcmp(raw[a->raw].name, raw[b->raw].name, la < lb ? la : lb);
	if (c != 0)
		return c;
	if (la != lb)
		return la < lb ? -1 : 1;
	if (a->idx != b->idx)
		return a->idx < b->idx ? -1 : 1;
	return a->raw < b->raw ? -1 : (a->raw > b->raw);
}

/*
 * RFC 2231: plain parameters first, in order; then each group of
 * continuations (sorted by name) joined into one parameter when its
 * indexes run 0, 1, 2, ... without a gap, else its segments unchanged.
 * A group with an extended segment becomes "name*" = charset'lang'value,
 * the value left %-encoded; a plain segment in it gets its '%' encoded so
 * the joined value stays decodable ("''" stands in for a missing
 * charset'lang' prefix).
 */
static void params_join_2231(const struct mime_params *raw, struct mime_params *out)
{
	struct segment seg[MIME_MAX_PARAMS];
	size_t n_seg = 0;

	for (size_t k = 0; k < raw->n; k++) {
		if (n_seg < MIME_MAX_PARAMS && parse_segment(&raw->v[k], k, &seg[n_seg]))
			n_seg++;
		else
			params_add(out, raw->v[k].name, raw->v[k].name_len, raw->v[k].value,
				   raw->v[k].value_len);
	}
	/* insertion sort: at most MIME_MAX_PARAMS entries */
	for (size_t k = 1; k < n_seg; k++) {
		struct segment s = seg[k];
		size_t j = k;
		while (j > 0 && segment_cmp(raw->v, &seg[j - 1], &s) > 0) {
			seg[j] = seg[j - 1];
			j--;
		}
		seg[j] = s;
	}
	struct buf val = BUF_INIT;
	for (size_t g = 0; g < n_seg;) {
		size_t h = g + 1;
		const char *base = raw->v[seg[g].raw].name;
		size_t bl = seg[g].base_len;
		while (h < n_seg && seg[h].base_len == bl &&
		       strncasecmp(raw->v[seg[h].raw].name, base, bl) == 0)
			h++;
		bool contiguous = true, ext = false;
		for (size_t k = g; k < h; k++) {
			if (seg[k].idx != k - g)
				contiguous = false;
			if (seg[k].ext)
				ext = true;
		}
		if (!contiguous) {
			for (size_t k = g; k < h; k++) {
				const struct mime_param *p = &raw->v[seg[k].raw];
				params_add(out, p->name, p->name_len, p->value, p->value_len);
			}
			g = h;
			continue;
		}
		buf_reset(&val);
		if (ext && !seg[g].ext)
			(void)buf_puts(&val, "''");
		for (size_t k = g; k < h; k++) {
			const struct mime_param *p = &raw->v[seg[k].raw];
			if (!ext || seg[k].ext) {
				(void)buf_append(&val, p->value, p->value_len);
				continue;
			}
			for (size_t c = 0; c < p->value_len; c++) {
				if (p->value[c] == '%')
					(void)buf_puts(&val, "%25");
				else
					(void)buf_putc(&val, p->value[c]);
			}
		}
		char name[256];
		size_t nl = bl < sizeof name - 2 ? bl : sizeof name - 2;
		memcpy(name, base, nl);
		if (ext)
			name[nl++] = '*';
		params_add(out, name, nl, val.data != NULL ? val.data : "", val.len);
		g = h;
	}
	buf_free(&val);
}

void mime_params_parse(const char *s, size_t n, size_t *i, struct mime_params *p)
{
	struct mime_params raw = {0};
	struct buf qv = BUF_INIT;
	size_t k = *i;

	buf_init(&qv, MIME_MAX_HEADER_LINE);
	while (raw.n < MIME_MAX_PARAMS) {
		mime_skip_cfws(s, n, &k, NULL);
		if (k >= n)
			break;
		if (s[k] != ';') {
			/* junk after a value: skip to the next parameter */
			const char *semi = memchr(s + k, ';', n - k);
			if (semi == NULL)
				break;
			k = (size_t)(semi - s);
		}
		k++;
		mime_skip_cfws(s, n, &k, NULL);
		if (k >= n)
			break;
		if (s[k] == ';')
			continue;
		size_t name_off = k;
		size_t name_len = mime_read_token(s, n, &k);
		mime_skip_cfws(s, n, &k, NULL);
		if (k >= n || s[k] != '=')
			break; /* a parameter without a value ends the list */
		k++;
		mime_skip_cfws(s, n, &k, NULL);
		if (k < n && s[k] == '"') {
			buf_reset(&qv);
			if (mime_read_quoted(s, n, &k, &qv) < 0)
				break;
			params_add(&raw, s + name_off, name_len, qv.data != NULL ? qv.data : "",
				   qv.len);
		} else {
			size_t v_off = k;
			size_t v_len = mime_read_token(s, n, &k);
			params_add(&raw, s + name_off, name_len, s + v_off, v_len);
		}
	}
	*i = k;
	buf_free(&qv);
	params_join_2231(&raw, p);
	mime_params_free(&raw);
}

bool mime_ctype_parse(const char *s, size_t n, size_t *type_off, size_t *type_len, size_t *sub_off,
		      size_t *sub_len, struct mime_params *params)
{
	size_t i = 0;

	mime_skip_cfws(s, n, &i, NULL);
	*type_off = i;
	*type_len = mime_read_token(s, n, &i);
	mime_skip_cfws(s, n, &i, NULL);
	if (*type_len == 0 || i >= n || s[i] != '/')
		return false;
	i++;
	mime_skip_cfws(s, n, &i, NULL);
	*sub_off = i;
	*sub_len = mime_read_token(s, n, &i);
	mime_skip_cfws(s, n, &i, NULL);
	if (*sub_len == 0 || (i < n && s[i] != ';'))
		return false;
	if (params != NULL)
		mime_params_parse(s, n, &i, params);
	return true;
}

bool mime_part_field(const struct mime_tree *t, const struct mime_part *p, enum mime_fld f,
		     struct buf *out)
{
	if (p->fld_off[f] == 0)
		return false;
	(void)mime_value_unfold(t->msg + p->fld_off[f], p->fld_len[f], out);
	return true;
}

/* --- the parser ------------------------------------------------------------ */

struct parser {
	struct mime_tree *t;
	const char *msg;
	size_t len;
	size_t pos;      /* start of the next line to look at */
	size_t consumed; /* end of the last delimiter line read, line end
			  * included */
	const char *bnd[MIME_MAX_DEPTH + 1];
	size_t bnd_len[MIME_MAX_DEPTH + 1];
	size_t n_bnd;
	struct buf tmp;
};

/* If the line at pos is a delimiter of an active boundary, the index of
 * that boundary in the stack (innermost first), else -1. */
static int is_delim(const struct parser *p, size_t pos, bool *close)
{
	if (p->n_bnd == 0 || p->len - pos < 2 || p->msg[pos] != '-' || p->msg[pos + 1] != '-')
		return -1;
	size_t rest = p->len - pos - 2;
	const char *l = p->msg + pos + 2;
	int best = -1;
	for (size_t k = p->n_bnd; k-- > 0;) {
		size_t bl = p->bnd_len[k];
		/* the longest boundary that matches wins (when one is a
		 * prefix of another), the innermost of equal ones */
		if (rest >= bl && memcmp(l, p->bnd[k], bl) == 0 &&
		    (best < 0 || bl > p->bnd_len[best]))
			best = (int)k;
	}
	if (best >= 0) {
		size_t bl = p->bnd_len[best];
		*close = rest >= bl + 2 && l[bl] == '-' && l[bl + 1] == '-';
	}
	return best;
}

/* Advances p->pos to the next delimiter line (returns its stack index)
 * or to the end of the message (returns -1). */
static int scan_to_delim(struct parser *p, bool *close)
{
	while (p->pos < p->len) {
		int k = is_delim(p, p->pos, close);
		if (k >= 0)
			return k;
		p->pos = next_line(p->msg, p->pos, p->len);
	}
	return -1;
}

/* Where an entity that started at start ends, given that the parser
 * stopped at p->pos: before the line break that precedes a delimiter,
 * unless that line break ends a delimiter line itself (a close delimiter
 * of a nested multipart right before this one keeps its line end, as in
 * Dovecot). */
static size_t entity_end(const struct parser *p, size_t start)
{
	size_t l = p->pos;
	if (l >= p->len)
		return p->len;
	if (l <= start)
		return start;
	if (l == p->consumed)
		return l;
	size_t e = l - 1; /* the '\n' that ends the previous line */
	if (e > start && p->msg[e - 1] == '\r')
		e--;
	return e;
}

static size_t count_lf(const char *s, size_t n)
{
	size_t c = 0;
	const char *end = s + n;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (nl == NULL)
			break;
		c++;
		s = nl + 1;
	}
	return c;
}

static struct mime_part *new_part(struct parser *p, struct mime_part *parent)
{
	struct mime_part *part = xcalloc(1, sizeof *part);
	part->parent = parent;
	if (parent != NULL) {
		part->depth = parent->depth + 1;
		if (parent->last_child != NULL)
			parent->last_child->next = part;
		else
			parent->children = part;
		parent->last_child = part;
		parent->n_children++;
	}
	p->t->n_parts++;
	return part;
}

/* Reads the fields of the part's header msg[start, hdr_end) that matter
 * and decides its kind.  *digest is set for a multipart/digest. */
static void analyse_header(struct parser *p, struct mime_part *part, size_t hdr_end, bool *digest)
{
	static const char *const names[MIME_FLD_COUNT] = {
	    [MIME_FLD_TYPE] = "Content-Type",
	    [MIME_FLD_CTE] = "Content-Transfer-Encoding",
	    [MIME_FLD_ID] = "Content-ID",
	    [MIME_FLD_DESC] = "Content-Description",
	    [MIME_FLD_DISP] = "Content-Disposition",
	    [MIME_FLD_LANG] = "Content-Language",
	    [MIME_FLD_LOC] = "Content-Location",
	    [MIME_FLD_MD5] = "Content-MD5",
	};
	struct mime_hdr_iter it;
	struct mime_hdr_field f;
	bool mime_version = false;

	*digest = false;
	mime_hdr_iter_init(&it, p->msg, part->start, hdr_end);
	while (mime_hdr_next(&it, &f)) {
		const char *nm = p->msg + f.name_off;
		if (!f.is_field)
			continue;
		if (f.name_len < 8 || strncasecmp(nm, "Content-", 8) != 0) {
			if (eq_ci(nm, f.name_len, "MIME-Version"))
				mime_version = true;
			continue;
		}
		for (int k = 0; k < MIME_FLD_COUNT; k++) {
			if (part->fld_off[k] == 0 && eq_ci(nm, f.name_len, names[k])) {
				part->fld_off[k] = f.value_off;
				part->fld_len[k] = f.value_len;
				break;
			}
		}
	}
	/* RFC 2045 4: a message without MIME-Version is not a MIME message;
	 * like Dovecot we still honour a Content-Type, but not the other
	 * Content-* fields alone. */
	if (part->is_message && !mime_version && part->fld_off[MIME_FLD_TYPE] == 0)
		memset(part->fld_off, 0, sizeof part->fld_off);

	part->kind = part->in_digest ? MIME_KIND_MESSAGE : MIME_KIND_TEXT;
	if (part->fld_off[MIME_FLD_TYPE] == 0)
		return;
	part->kind = MIME_KIND_TEXT; /* RFC 2045 5.2: the default for a broken one */
	buf_reset(&p->tmp);
	(void)mime_part_field(p->t, part, MIME_FLD_TYPE, &p->tmp);
	struct mime_params params = {0};
	size_t to, tl, so, sl;
	const char *v = p->tmp.data != NULL ? p->tmp.data : "";
	if (!mime_ctype_parse(v, p->tmp.len, &to, &tl, &so, &sl, &params)) {
		mime_params_free(&params);
		return;
	}
	part->type_valid = true;
	if (eq_ci(v + to, tl, "multipart")) {
		part->kind = MIME_KIND_MULTIPART;
		*digest = eq_ci(v + so, sl, "digest");
		const struct mime_param *b = mime_params_find(&params, "boundary");
		if (b != NULL && b->value_len > 0 && b->value_len <= MIME_MAX_BOUNDARY)
			part->boundary = xmemdup0(b->value, b->value_len);
	} else if (eq_ci(v + to, tl, "message") &&
		   (eq_ci(v + so, sl, "rfc822") || eq_ci(v + so, sl, "global"))) {
		part->kind = MIME_KIND_MESSAGE;
		part->global = eq_ci(v + so, sl, "global");
	} else if (eq_ci(v + to, tl, "text")) {
		part->kind = MIME_KIND_TEXT;
	} else {
		part->kind = MIME_KIND_OTHER;
	}
	mime_params_free(&params);
}

static void parse_entity(struct parser *p, struct mime_part *part);

/* The parts of a multipart whose body starts at p->pos. */
static void parse_multipart(struct parser *p, struct mime_part *part, bool digest)
{
	bool close = false;

	p->bnd[p->n_bnd] = part->boundary;
	p->bnd_len[p->n_bnd] = strlen(part->boundary);
	size_t mine = p->n_bnd++;

	int k = scan_to_delim(p, &close); /* the preamble */
	while (k == (int)mine) {
		p->pos = next_line(p->msg, p->pos, p->len);
		p->consumed = p->pos;
		if (close) {
			/* the epilogue runs to a delimiter of an outer
			 * multipart or to the end */
			p->n_bnd--;
			(void)scan_to_delim(p, &close);
			return;
		}
		if (p->t->n_parts >= MIME_MAX_PARTS) {
			/* past the limit the parts are skipped, not split */
			k = scan_to_delim(p, &close);
			continue;
		}
		struct mime_part *child = new_part(p, part);
		child->in_digest = digest;
		parse_entity(p, child);
		k = p->pos < p->len ? is_delim(p, p->pos, &close) : -1;
	}
	p->n_bnd--; /* unterminated: an outer delimiter or the end */
}

/* Parses the entity that starts at p->pos and leaves p->pos at the
 * delimiter line that ends it, or at the end of the message. */
static void parse_entity(struct parser *p, struct mime_part *part)
{
	size_t start = p->pos;
	bool blank = false, close = false;

	part->start = start;
	/* the header runs to the blank line, or to a delimiter */
	while (p->pos < p->len) {
		if (is_delim(p, p->pos, &close) >= 0)
			break;
		size_t e = line_end(p->msg, p->pos, p->len);
		size_t ce = content_end(p->msg, p->pos, e);
		size_t next = e < p->len ? e + 1 : p->len;
		if (ce == p->pos) {
			blank = true;
			p->pos = next;
			break;
		}
		p->pos = next;
	}
	size_t hdr_end = p->pos;
	bool cut = !blank && p->pos < p->len; /* stopped at a delimiter */
	bool digest = false;
	analyse_header(p, part, cut ? entity_end(p, start) : hdr_end, &digest);

	bool nested = part->kind == MIME_KIND_MULTIPART || part->kind == MIME_KIND_MESSAGE;
	if (nested && (part->depth >= MIME_MAX_DEPTH || p->t->n_parts >= MIME_MAX_PARTS)) {
		/* too deep or too many parts: an opaque text/plain leaf */
		part->opaque = true;
		nested = false;
	}
	if (part->kind == MIME_KIND_MULTIPART && nested) {
		if (part->boundary != NULL && !cut)
			parse_multipart(p, part, digest);
		else
			(void)scan_to_delim(p, &close);
	} else if (part->kind == MIME_KIND_MESSAGE && nested) {
		struct mime_part *child = new_part(p, part);
		child->is_message = true;
		parse_entity(p, child);
	} else {
		(void)scan_to_delim(p, &close);
	}

	size_t end = entity_end(p, start);
	if (p->pos == hdr_end && p->pos > start && p->pos < p->len) {
		/* Dovecot's reading, kept so that sizes agree: when the line
		 * end before a delimiter is the last one of a header (the
		 * entity has no body), only that header loses it; the bodies
		 * of the entities around it keep it */
		p->consumed = p->pos;
	}
	if (hdr_end > end)
		hdr_end = end;
	part->hdr_len = hdr_end - start;
	part->body_off = hdr_end;
	part->body_len = end - hdr_end;
	if (part->kind == MIME_KIND_MESSAGE && part->children != NULL) {
		/* an encapsulated message cut short by a delimiter starts
		 * where its part ends */
		struct mime_part *c = part->children;
		if (c->start > end) {
			c->start = c->body_off = end;
			c->hdr_len = c->body_len = c->lines = 0;
		}
	}
	if (part->kind == MIME_KIND_TEXT || part->kind == MIME_KIND_MESSAGE || part->opaque)
		part->lines = count_lf(p->msg + part->body_off, part->body_len);
}

struct mime_tree *mime_parse(const char *msg, size_t len)
{
	struct mime_tree *t = xcalloc(1, sizeof *t);
	struct parser p;

	memset(&p, 0, sizeof p);
	t->msg = msg;
	t->len = len;
	p.t = t;
	p.msg = msg;
	p.len = len;
	buf_init(&p.tmp, MIME_MAX_HEADER_LINE + 1);
	t->root = new_part(&p, NULL);
	t->root->is_message = true;
	parse_entity(&p, t->root);
	buf_free(&p.tmp);
	return t;
}

static void part_free(struct mime_part *part)
{
	while (part != NULL) {
		struct mime_part *next = part->next;
		part_free(part->children); /* depth is bounded by MIME_MAX_DEPTH */
		free(part->boundary);
		free(part);
		part = next;
	}
}

void mime_tree_free(struct mime_tree **t)
{
	if (t == NULL || *t == NULL)
		return;
	part_free((*t)->root);
	free(*t);
	*t = NULL;
}

size_t mime_tree_parts(const struct mime_tree *t)
{
	return t->n_parts;
}

/* --- sections ---------------------------------------------------------- */

static bool expanded(const struct mime_part *p, enum mime_kind kind)
{
	return p->kind == kind && !p->opaque;
}

static const struct mime_part *nth_child(const struct mime_part *p, unsigned k)
{
	const struct mime_part *c = p->children;
	for (unsigned i = 1; c != NULL && i < k; i++)
		c = c->next;
	return c;
}

/* Part k of a message m: its k-th part if it is multipart, else only
 * part 1, its body. */
static const struct mime_part *step_message(const struct mime_part *m, unsigned k)
{
	if (expanded(m, MIME_KIND_MULTIPART))
		return nth_child(m, k);
	return k == 1 ? m : NULL;
}

const struct mime_part *mime_part_find(const struct mime_tree *t, const unsigned *path, size_t n)
{
	const struct mime_part *cur;
	bool leaf_one = false;

	if (n == 0 || path[0] == 0)
		return NULL;
	cur = step_message(t->root, path[0]);
	for (size_t i = 1; cur != NULL && i < n; i++) {
		unsigned k = path[i];
		if (k == 0)
			return NULL;
		if (expanded(cur, MIME_KIND_MULTIPART)) {
			cur = nth_child(cur, k);
		} else if (expanded(cur, MIME_KIND_MESSAGE) && cur->children != NULL) {
			cur = step_message(cur->children, k);
		} else if (k == 1 && !leaf_one && cur->parent != NULL &&
			   cur->parent->kind == MIME_KIND_MULTIPART && !cur->is_message) {
			/* Dovecot's reading, kept for compatibility: a leaf
			 * part of a multipart is also its own part 1, once */
			leaf_one = true;
		} else {
			cur = NULL;
		}
	}
	return cur;
}

int mime_section(const struct mime_tree *t, const unsigned *path, size_t n, enum mime_sect kind,
		 size_t *start, size_t *len)
{
	if (t == NULL || start == NULL || len == NULL || (n > 0 && path == NULL))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (path[i] == 0)
			return -1;
	const struct mime_part *p = t->root;
	if (n == 0) {
		switch (kind) {
		case MIME_SECT_BODY:
			*start = 0;
			*len = t->len;
			return 1;
		case MIME_SECT_HEADER:
			*start = p->start;
			*len = p->hdr_len;
			return 1;
		case MIME_SECT_TEXT:
			*start = p->body_off;
			*len = p->body_len;
			return 1;
		case MIME_SECT_MIME:
			return 0;
		}
		return -1;
	}
	p = mime_part_find(t, path, n);
	if (p == NULL)
		return 0;
	switch (kind) {
	case MIME_SECT_BODY:
		*start = p->body_off;
		*len = p->body_len;
		return 1;
	case MIME_SECT_MIME:
		*start = p->start;
		*len = p->hdr_len;
		return 1;
	case MIME_SECT_HEADER:
	case MIME_SECT_TEXT:
		if (!expanded(p, MIME_KIND_MESSAGE) || p->children == NULL)
			return 0;
		p = p->children;
		if (kind == MIME_SECT_HEADER) {
			*start = p->start;
			*len = p->hdr_len;
		} else {
			*start = p->body_off;
			*len = p->body_len;
		}
		return 1;
	}
	return -1;
}

int mime_header_fields(const char *msg, size_t start, size_t len, const char *const *names,
		       size_t n_names, bool not_, struct buf *out)
{
	struct mime_hdr_iter it;
	struct mime_hdr_field f;

	if (msg == NULL || out == NULL || (n_names > 0 && names == NULL))
		return -1;
	mime_hdr_iter_init(&it, msg, start, start + len);
	while (mime_hdr_next(&it, &f)) {
		bool match = false;
		/* a line that is no field matches no name, so .NOT keeps it */
		for (size_t k = 0; f.is_field && k < n_names && !match; k++)
			match = names[k] != NULL && eq_ci(msg + f.name_off, f.name_len, names[k]);
		if (match == not_)
			continue;
		if (buf_append(out, msg + f.field_off, f.field_len) < 0)
			return -1;
		/* a last field cut short by a delimiter still gets its CRLF */
		if (msg[f.field_off + f.field_len - 1] != '\n' && buf_puts(out, "\r\n") < 0)
			return -1;
	}
	/* RFC 9051 6.4.5.1: the blank line is included, "except in the case
	 * of a message that has no body and no blank line" (the iterator
	 * stops before a blank line, or at the end of the block) */
	if (it.pos >= it.end)
		return 0;
	return buf_puts(out, "\r\n");
}
