/*
 * jmap-email-create.c - see jmap-email-create.h.  The rules are RFC 8621
 * 4.6's: no "headers" property, no two properties for one header field,
 * only the parsed forms allowed for a field (4.1.2), no Content-* field
 * on the Email, bodyStructure or textBody/htmlBody/attachments, partId
 * or blobId, no charset or size with a partId, no
 * Content-Transfer-Encoding; each violation is invalidProperties naming
 * the property.
 */
#include "jmap-email-create.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "caldate.h"
#include "fsutil.h"
#include "jmap-set.h"
#include "mime-build.h"
#include "xalloc.h"

#define MAX_DEPTH 10   /* of bodyStructure */
#define MAX_FIELDS 200 /* header fields of one Email or part */

enum form { F_RAW, F_TEXT, F_ADDRS, F_GADDRS, F_MSGIDS, F_DATE, F_URLS };

static const char *const form_names[] = {
    "asRaw", "asText", "asAddresses", "asGroupedAddresses", "asMessageIds", "asDate", "asURLs"};

/* The forms RFC 8621 4.1.2 allows for the fields it names (others: all). */
static const struct {
	const char *name;
	unsigned forms; /* bits of enum form */
} field_forms[] = {
#define B(f) (1u << (f))
    {"Subject", B(F_RAW) | B(F_TEXT)},
    {"Comments", B(F_RAW) | B(F_TEXT)},
    {"Keywords", B(F_RAW) | B(F_TEXT)},
    {"List-Id", B(F_RAW) | B(F_TEXT)},
    {"From", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Sender", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Reply-To", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"To", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Cc", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Bcc", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Resent-From", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Resent-Sender", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Resent-Reply-To", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Resent-To", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Resent-Cc", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Resent-Bcc", B(F_RAW) | B(F_ADDRS) | B(F_GADDRS)},
    {"Message-ID", B(F_RAW) | B(F_MSGIDS)},
    {"In-Reply-To", B(F_RAW) | B(F_MSGIDS)},
    {"References", B(F_RAW) | B(F_MSGIDS)},
    {"Resent-Message-ID", B(F_RAW) | B(F_MSGIDS)},
    {"Date", B(F_RAW) | B(F_DATE)},
    {"Resent-Date", B(F_RAW) | B(F_DATE)},
    {"List-Help", B(F_RAW) | B(F_URLS)},
    {"List-Unsubscribe", B(F_RAW) | B(F_URLS)},
    {"List-Subscribe", B(F_RAW) | B(F_URLS)},
    {"List-Post", B(F_RAW) | B(F_URLS)},
    {"List-Owner", B(F_RAW) | B(F_URLS)},
    {"List-Archive", B(F_RAW) | B(F_URLS)},
#undef B
};

/* The Email properties that are header fields (RFC 8621 4.1.3). */
static const struct {
	const char *prop, *field;
	enum form form;
} conv_props[] = {
    {"messageId", "Message-ID", F_MSGIDS},
    {"inReplyTo", "In-Reply-To", F_MSGIDS},
    {"references", "References", F_MSGIDS},
    {"sender", "Sender", F_ADDRS},
    {"from", "From", F_ADDRS},
    {"to", "To", F_ADDRS},
    {"cc", "Cc", F_ADDRS},
    {"bcc", "Bcc", F_ADDRS},
    {"replyTo", "Reply-To", F_ADDRS},
    {"subject", "Subject", F_TEXT},
    {"sentAt", "Date", F_DATE},
};

/* The part properties that are Content-* fields. */
static const char *const part_fields[] = {"Content-Type",     "Content-Disposition",
					  "Content-ID",       "Content-Language",
					  "Content-Location", "Content-Transfer-Encoding"};

struct build {
	jmap_email_blob_fn blob;
	void *ctx;
	json_t *values;  /* bodyValues (may be NULL) */
	json_t *missing; /* blob ids not found */
	size_t used;     /* bytes of values and blobs */
	json_t *err;
};

static bool fail(struct build *b, const char *prop, const char *why)
{
	if (b->err == NULL)
		b->err = jmap_set_invalid(prop, why);
	return false;
}

/* "header:NAME[:FORM][:all]" into name, form, all; false if not one. */
static bool header_prop(const char *key, char name[80], enum form *form, bool *all)
{
	if (strncmp(key, "header:", 7) != 0)
		return false;
	const char *p = key + 7, *c = strchr(p, ':');
	size_t l = c ? (size_t)(c - p) : strlen(p);
	if (l == 0 || l >= 80)
		return false;
	for (size_t i = 0; i < l; i++)
		if ((unsigned char)p[i] < 33 || (unsigned char)p[i] > 126)
			return false;
	memcpy(name, p, l);
	name[l] = '\0';
	*form = F_RAW;
	*all = false;
	if (c == NULL)
		return true;
	p = c + 1;
	if (strcmp(p, "all") == 0) {
		*all = true;
		return true;
	}
	for (size_t f = 0; f < sizeof form_names / sizeof form_names[0]; f++) {
		size_t fl = strlen(form_names[f]);
		if (strncmp(p, form_names[f], fl) == 0 &&
		    (p[fl] == '\0' || strcmp(p + fl, ":all") == 0)) {
			*form = (enum form)f;
			*all = p[fl] != '\0';
			return true;
		}
	}
	return false;
}

static bool form_allowed(const char *field, enum form f)
{
	for (size_t i = 0; i < sizeof field_forms / sizeof field_forms[0]; i++)
		if (strcasecmp(field, field_forms[i].name) == 0)
			return (field_forms[i].forms >> f) & 1u;
	return true;
}

/* An addr-spec we write as it is: no blank, control character or
 * delimiter of the address syntax around it. */
static bool email_ok(const char *e)
{
	if (*e == '\0' || strlen(e) > 254)
		return false;
	for (; *e; e++)
		if ((unsigned char)*e <= 0x20 || *e == 0x7f || strchr("<>,;()\"", *e) != NULL)
			return false;
	return true;
}

/* A String without CR, LF or NUL (JSON strings have no NUL), of at most
 * max octets. */
static const char *short_string(json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	return s && strpbrk(s, "\r\n") == NULL && strlen(s) <= max ? s : NULL;
}

static const char *line_string(json_t *v)
{
	return short_string(v, 998);
}

/* EmailAddress[] into h; false if malformed. */
static bool put_addrs(struct mime_hdr *h, json_t *v)
{
	size_t i;
	json_t *a;
	if (!json_is_array(v))
		return false;
	json_array_foreach(v, i, a)
	{
		json_t *jn = json_object_get(a, "name");
		const char *email = line_string(json_object_get(a, "email"));
		const char *name = jn && !json_is_null(jn) ? line_string(jn) : "";
		if (!json_is_object(a) || email == NULL || name == NULL || !email_ok(email) ||
		    json_object_size(a) > (size_t)(jn ? 2 : 1))
			return false;
		if (i > 0)
			mime_hdr_word(h, "", ",", 1);
		if (*name) {
			mime_hdr_phrase(h, name);
			char w[1024];
			int n = snprintf(w, sizeof w, "<%s>", email);
			mime_hdr_word(h, " ", w, (size_t)n);
		} else {
			mime_hdr_word(h, " ", email, strlen(email));
		}
	}
	return true;
}

static bool put_gaddrs(struct mime_hdr *h, json_t *v)
{
	size_t i;
	json_t *g;
	if (!json_is_array(v))
		return false;
	json_array_foreach(v, i, g)
	{
		json_t *jn = json_object_get(g, "name");
		json_t *as = json_object_get(g, "addresses");
		const char *name = jn && !json_is_null(jn) ? line_string(jn) : NULL;
		if (!json_is_object(g) || (jn && !json_is_null(jn) && name == NULL))
			return false;
		if (i > 0)
			mime_hdr_word(h, "", ",", 1);
		if (name != NULL) {
			mime_hdr_phrase(h, name);
			mime_hdr_word(h, "", ":", 1);
		}
		if (!put_addrs(h, as))
			return false;
		if (name != NULL)
			mime_hdr_word(h, "", ";", 1);
	}
	return true;
}

/* Id-like strings in brackets: Message-IDs (sep " ") or URLs (","). */
static bool put_bracketed(struct mime_hdr *h, json_t *v, bool urls)
{
	size_t i;
	json_t *s;
	if (!json_is_array(v))
		return false;
	json_array_foreach(v, i, s)
	{
		const char *id = line_string(s);
		if (id == NULL || *id == '\0' || strpbrk(id, "<> \t") != NULL || strlen(id) > 900)
			return false;
		if (i > 0 && urls)
			mime_hdr_word(h, "", ",", 1);
		char w[1024];
		int n = snprintf(w, sizeof w, "<%s>", id);
		mime_hdr_word(h, " ", w, (size_t)n);
	}
	return true;
}

/* An RFC 3339 date-time with its offset ("2014-10-30T14:12:00+08:00",
 * RFC 8620 1.4 Date) as an RFC 5322 date-time in that offset. */
static bool put_date(struct mime_hdr *h, const char *s)
{
	int v[6], oh = 0, om = 0;
	char sign = '+';
	const char *p;
	if (!jmap_set_date_fields(s, v, &p))
		return false;
	if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		sign = *p;
		for (int k = 1; k <= 5; k++)
			if (k != 3 && (p[k] < '0' || p[k] > '9'))
				return false;
		oh = (p[1] - '0') * 10 + (p[2] - '0');
		om = (p[4] - '0') * 10 + (p[5] - '0');
	} else if (strcmp(p, "Z") != 0) {
		return false;
	}
	if (oh > 23 || om > 59)
		return false;
	static const char *const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int64_t d = caldate_days_from_civil(v[0], v[1], v[2]);
	char w[64];
	int n = snprintf(w, sizeof w, "%s, %d %s %04d %02d:%02d:%02d %c%02d%02d",
			 days[((d % 7) + 7) % 7], v[2], months[v[1] - 1], v[0], v[3], v[4], v[5],
			 sign, oh, om);
	mime_hdr_word(h, " ", w, (size_t)n);
	return true;
}

/* A raw value: as given, its line breaks made CRLF; only folds (a line
 * break then a blank) and lines of at most 998 octets. */
static bool put_raw(struct buf *out, const char *field, const char *s)
{
	(void)buf_printf(out, "%s:", field);
	size_t col = strlen(field) + 1;
	for (const char *p = s; *p; p++) {
		if (*p == '\r' || *p == '\n') {
			if (*p == '\r' && p[1] == '\n')
				p++;
			if (p[1] != ' ' && p[1] != '\t')
				return false;
			(void)buf_puts(out, "\r\n");
			col = 0;
			continue;
		}
		if (++col > 998)
			return false;
		(void)buf_putc(out, *p);
	}
	(void)buf_puts(out, "\r\n");
	return true;
}

/* One field of value v in form f into out; false if v is not of the form. */
static bool put_field(struct buf *out, const char *field, enum form f, json_t *v)
{
	if (f == F_RAW)
		return json_is_string(v) && put_raw(out, field, json_string_value(v));
	struct mime_hdr h;
	mime_hdr_start(&h, out, field);
	bool ok;
	switch (f) {
	case F_TEXT:
		ok = line_string(v) != NULL;
		if (ok)
			mime_hdr_text(&h, json_string_value(v));
		break;
	case F_ADDRS:
		ok = put_addrs(&h, v);
		break;
	case F_GADDRS:
		ok = put_gaddrs(&h, v);
		break;
	case F_MSGIDS:
		ok = put_bracketed(&h, v, false);
		break;
	case F_URLS:
		ok = put_bracketed(&h, v, true);
		break;
	default:
		ok = json_is_string(v) && put_date(&h, json_string_value(v));
		break;
	}
	mime_hdr_end(&h);
	return ok;
}

/* Names of the fields written so far (for "no two properties for one
 * field"). */
struct names {
	char n[MAX_FIELDS][80];
	size_t count;
};

static bool names_add(struct names *ns, const char *name)
{
	for (size_t i = 0; i < ns->count; i++)
		if (strcasecmp(ns->n[i], name) == 0)
			return false;
	if (ns->count == MAX_FIELDS)
		return false;
	snprintf(ns->n[ns->count++], 80, "%s", name);
	return true;
}

/* The field (of value v, a list if all) of property prop into out. */
static bool put_prop(struct build *b, struct buf *out, struct names *ns, const char *prop,
		     const char *field, enum form f, bool all, json_t *v)
{
	if (!names_add(ns, field))
		return fail(b, prop, "another property gives the same header field");
	if (!form_allowed(field, f))
		return fail(b, prop, "a parsed form RFC 8621 4.1.2 does not allow for the field");
	if (json_is_null(v))
		return true;
	if (all && !json_is_array(v))
		return fail(b, prop, "an :all form takes an array");
	size_t n = all ? json_array_size(v) : 1;
	for (size_t i = 0; i < n; i++)
		if (!put_field(out, field, f, all ? json_array_get(v, i) : v))
			return fail(b, prop, "not a valid value of that form");
	return true;
}

/* --------------------------------------------------------------- parts */

static bool put_part(struct build *b, struct buf *out, json_t *part, size_t depth, const char *prop,
		     struct names *top);

/* The body of a leaf part; its Content-Transfer-Encoding was written by
 * the caller into cte. */
static bool leaf_body(struct build *b, json_t *part, const char *prop, const char *type,
		      struct buf *body, const char **cte)
{
	json_t *pid = json_object_get(part, "partId");
	json_t *bid = json_object_get(part, "blobId");
	if (pid != NULL && bid != NULL)
		return fail(b, prop, "a part has a partId or a blobId, not both");
	if (pid != NULL) {
		if (json_object_get(part, "charset") || json_object_get(part, "size"))
			return fail(b, prop, "no charset or size with a partId");
		json_t *bv =
		    json_is_string(pid) ? json_object_get(b->values, json_string_value(pid)) : NULL;
		json_t *val = json_object_get(bv, "value");
		if (!json_is_string(val))
			return fail(b, prop, "the partId is not in bodyValues");
		size_t n = json_string_length(val);
		b->used += n;
		if (b->used > JMAP_EMAIL_CREATE_MAX)
			return false;
		*cte = mime_build_text(body, json_string_value(val), n);
		return true;
	}
	if (bid == NULL) /* the empty text of an Email without a body */
		return (*cte = "7bit") != NULL;
	if (!json_is_string(bid))
		return fail(b, prop, "blobId is an Id");
	struct buf raw = BUF_INIT;
	int r = b->blob(b->ctx, json_string_value(bid), &raw);
	if (r <= 0) {
		buf_free(&raw);
		if (r < 0 && b->err == NULL)
			b->err = jmap_set_error("serverFail", "reading a blob failed");
		if (r == 0)
			json_array_append(b->missing, bid);
		*cte = "7bit";
		return r == 0;
	}
	b->used += raw.len;
	if (b->used > JMAP_EMAIL_CREATE_MAX) {
		buf_free(&raw);
		return false;
	}
	if (strncasecmp(type, "message/", 8) == 0) {
		/* RFC 2046 5.2.1: no base64 here; CRLF lines of at most 998 */
		bool eight = false;
		size_t col = 0;
		for (size_t i = 0; i < raw.len; i++) {
			unsigned char c = (unsigned char)raw.data[i];
			eight |= c >= 0x80;
			if (c == '\n' && (i == 0 || raw.data[i - 1] != '\r')) {
				buf_free(&raw);
				return fail(b, prop, "a message/* blob must have CRLF lines");
			}
			col = c == '\n' ? 0 : col + 1;
			if (col > 999 || c == '\0') {
				buf_free(&raw);
				return fail(b, prop,
					    "a message/* blob has a NUL or a line over 998");
			}
		}
		(void)buf_append(body, raw.data, raw.len);
		if (raw.len > 0 && raw.data[raw.len - 1] != '\n')
			(void)buf_puts(body, "\r\n");
		*cte = eight ? "8bit" : "7bit";
	} else {
		mime_build_base64(body, raw.data, raw.len);
		*cte = "base64";
	}
	buf_free(&raw);
	return true;
}

static bool type_ok(const char *t)
{
	const char *slash = strchr(t, '/');
	if (slash == NULL || slash == t || slash[1] == '\0' || strlen(t) > 255)
		return false;
	for (const char *p = t; *p; p++)
		if (p != slash && ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
				   strchr("()<>@,;:\\\"/[]?=", *p) != NULL))
			return false;
	return true;
}

static bool put_part(struct build *b, struct buf *out, json_t *part, size_t depth, const char *prop,
		     struct names *top)
{
	static const char *const keys[] = {"partId",   "blobId",   "size",        "name",
					   "type",     "charset",  "disposition", "cid",
					   "language", "location", "subParts",    NULL};
	if (!json_is_object(part))
		return fail(b, prop, "a part is an EmailBodyPart object");
	if (depth > MAX_DEPTH)
		return fail(b, prop, "parts nested too deep");
	struct names *ns = xcalloc(1, sizeof *ns);
	if (top != NULL)
		*ns = *top;
	const char *key;
	json_t *v;
	bool ok = true;
	json_object_foreach(part, key, v)
	{
		char field[80];
		enum form f;
		bool all;
		size_t k = 0;
		while (keys[k] && strcmp(keys[k], key) != 0)
			k++;
		if (keys[k] != NULL)
			continue;
		if (!header_prop(key, field, &f, &all)) {
			ok = fail(b, prop,
				  strcmp(key, "headers") == 0
				      ? "no headers property: each field is a header:NAME property"
				      : "not an EmailBodyPart property of a create");
			break;
		}
		for (size_t i = 0; i < sizeof part_fields / sizeof part_fields[0]; i++)
			if (strcasecmp(field, part_fields[i]) == 0)
				ok = fail(b, prop, "that field is made from the part's properties");
		if (!ok || !put_prop(b, out, ns, prop, field, f, all, v)) {
			ok = false;
			break;
		}
	}
	free(ns);
	if (!ok)
		return false;
	json_t *subs = json_object_get(part, "subParts");
	json_t *jt = json_object_get(part, "type");
	const char *type = subs                              ? "multipart/mixed"
			   : json_object_get(part, "blobId") ? "application/octet-stream"
							     : "text/plain";
	if (jt != NULL && !json_is_null(jt)) {
		if (!json_is_string(jt) || !type_ok(json_string_value(jt)))
			return fail(b, prop, "type is a media type");
		type = json_string_value(jt);
	}
	bool multi = strncasecmp(type, "multipart/", 10) == 0;
	if (multi != (subs != NULL) ||
	    (multi && (!json_is_array(subs) || json_array_size(subs) == 0 ||
		       json_object_get(part, "partId") || json_object_get(part, "blobId"))))
		return fail(b, prop, "a multipart/* part has subParts and nothing else has");
	struct mime_hdr h;
	mime_hdr_start(&h, out, "Content-Type");
	mime_hdr_word(&h, " ", type, strlen(type));
	char bound[40];
	if (multi) {
		mime_build_boundary(bound);
		mime_hdr_param(&h, "boundary", bound);
	}
	json_t *cs = json_object_get(part, "charset");
	if (cs != NULL && !json_is_null(cs)) {
		const char *c = short_string(cs, 64);
		if (c == NULL || !mime_build_is_plain(c) || *c == '\0')
			return fail(b, prop, "charset is a charset name");
		mime_hdr_param(&h, "charset", c);
	} else if (!multi && json_object_get(part, "partId") &&
		   strncasecmp(type, "text/", 5) == 0) {
		mime_hdr_param(&h, "charset", "utf-8");
	}
	mime_hdr_end(&h);
	json_t *disp = json_object_get(part, "disposition");
	json_t *name = json_object_get(part, "name");
	const char *dn = json_is_string(disp) ? short_string(disp, 64) : NULL;
	const char *nm = json_is_string(name) ? short_string(name, 255) : NULL;
	if ((disp && !json_is_null(disp) && (dn == NULL || !mime_build_is_plain(dn))) ||
	    (name && !json_is_null(name) && nm == NULL))
		return fail(b, prop, "disposition and name are strings");
	if (dn != NULL || nm != NULL) {
		mime_hdr_start(&h, out, "Content-Disposition");
		dn = dn ? dn : "attachment";
		mime_hdr_word(&h, " ", dn, strlen(dn));
		if (nm != NULL)
			mime_hdr_param(&h, "filename", nm);
		mime_hdr_end(&h);
	}
	json_t *cid = json_object_get(part, "cid");
	if (cid != NULL && !json_is_null(cid)) {
		json_t *ids = json_pack("[O]", cid);
		bool good = put_field(out, "Content-ID", F_MSGIDS, ids);
		json_decref(ids);
		if (!good)
			return fail(b, prop, "cid is an id without brackets");
	}
	json_t *lang = json_object_get(part, "language");
	if (lang != NULL && !json_is_null(lang)) {
		size_t i;
		json_t *l;
		mime_hdr_start(&h, out, "Content-Language");
		json_array_foreach(lang, i, l)
		{
			const char *s = short_string(l, 64);
			if (s == NULL || !mime_build_is_plain(s) || strpbrk(s, " ,") != NULL)
				return fail(b, prop, "language is a list of language tags");
			if (i > 0)
				mime_hdr_word(&h, "", ",", 1);
			mime_hdr_word(&h, " ", s, strlen(s));
		}
		mime_hdr_end(&h);
		if (!json_is_array(lang) || json_array_size(lang) == 0)
			return fail(b, prop, "language is a list of language tags");
	}
	json_t *loc = json_object_get(part, "location");
	if (loc != NULL && !json_is_null(loc)) {
		const char *s = short_string(loc, 900);
		if (s == NULL || !mime_build_is_plain(s))
			return fail(b, prop, "location is a URI");
		mime_hdr_start(&h, out, "Content-Location");
		mime_hdr_word(&h, " ", s, strlen(s));
		mime_hdr_end(&h);
	}
	if (multi) {
		(void)buf_puts(out, "\r\n");
		size_t i;
		json_t *sp;
		json_array_foreach(subs, i, sp)
		{
			(void)buf_printf(out, "--%s\r\n", bound);
			if (!put_part(b, out, sp, depth + 1, prop, NULL))
				return false;
			(void)buf_puts(out, "\r\n");
		}
		(void)buf_printf(out, "--%s--\r\n", bound);
		return true;
	}
	struct buf body = BUF_INIT;
	const char *cte = "7bit";
	if (!leaf_body(b, part, prop, type, &body, &cte)) {
		buf_free(&body);
		return false;
	}
	(void)buf_printf(out, "Content-Transfer-Encoding: %s\r\n\r\n", cte);
	(void)buf_append(out, body.data ? body.data : "", body.len);
	buf_free(&body);
	return true;
}

/* The part of textBody/htmlBody (one part of type text/plain or
 * text/html) or NULL; false if malformed. */
static bool one_part(struct build *b, json_t *o, const char *prop, const char *type, json_t **part)
{
	json_t *a = json_object_get(o, prop);
	*part = NULL;
	if (a == NULL)
		return true;
	json_t *p = json_array_get(a, 0);
	json_t *t = json_object_get(p, "type");
	if (!json_is_array(a) || json_array_size(a) != 1 || !json_is_object(p) ||
	    (t != NULL && !(json_is_string(t) && strcasecmp(json_string_value(t), type) == 0)))
		return fail(b, prop, "exactly one part, of the type of the property");
	*part = json_deep_copy(p);
	json_object_set_new(*part, "type", json_string(type));
	return true;
}

/* The body as one part: bodyStructure, or made of textBody, htmlBody and
 * attachments (multipart/alternative of text and HTML, multipart/mixed
 * with the attachments).  A new reference, or NULL. */
static json_t *body_of(struct build *b, json_t *o)
{
	json_t *bs = json_object_get(o, "bodyStructure");
	json_t *att = json_object_get(o, "attachments");
	if (bs != NULL) {
		if (json_object_get(o, "textBody") || json_object_get(o, "htmlBody") || att) {
			fail(b, "bodyStructure",
			     "bodyStructure, or textBody, htmlBody and attachments");
			return NULL;
		}
		return json_incref(bs);
	}
	json_t *text, *html;
	if (!one_part(b, o, "textBody", "text/plain", &text))
		return NULL;
	if (!one_part(b, o, "htmlBody", "text/html", &html)) {
		json_decref(text);
		return NULL;
	}
	if (att != NULL && !json_is_array(att)) {
		json_decref(text);
		json_decref(html);
		fail(b, "attachments", "an array of parts");
		return NULL;
	}
	json_t *body = text && html ? json_pack("{s:s, s:[o,o]}", "type", "multipart/alternative",
						"subParts", text, html)
		       : text       ? text
		       : html       ? html
				    : NULL;
	if (json_array_size(att) > 0) {
		json_t *subs = json_array();
		if (body)
			json_array_append_new(subs, body);
		json_array_extend(subs, att);
		body = json_pack("{s:s, s:o}", "type", "multipart/mixed", "subParts", subs);
	}
	return body ? body : json_pack("{s:s}", "type", "text/plain");
}

/* ------------------------------------------------------------- message */

static const char *const skip[] = {"mailboxIds",    "keywords",   "receivedAt",
				   "bodyStructure", "textBody",   "htmlBody",
				   "attachments",   "bodyValues", NULL};
static const char *const server_set[] = {"id",      "blobId", "threadId", "size", "hasAttachment",
					 "preview", NULL};

static bool in(const char *const *l, const char *k)
{
	for (size_t i = 0; l[i]; i++)
		if (strcmp(l[i], k) == 0)
			return true;
	return false;
}

/* The domain of the first From address, for the Message-ID; else the
 * host name. */
static void id_domain(json_t *o, char out[256])
{
	const char *e = json_string_value(
	    json_object_get(json_array_get(json_object_get(o, "from"), 0), "email"));
	const char *at = e ? strrchr(e, '@') : NULL;
	if (at && at[1] && mime_build_is_plain(at + 1) && strlen(at + 1) < 256) {
		snprintf(out, 256, "%s", at + 1);
		return;
	}
	if (gethostname(out, 256) != 0 || out[0] == '\0' || !mime_build_is_plain(out))
		snprintf(out, 256, "localhost");
	out[255] = '\0';
}

static bool check_values(struct build *b)
{
	const char *key;
	json_t *v;
	if (b->values != NULL && !json_is_object(b->values))
		return fail(b, "bodyValues", "Id[EmailBodyValue]");
	json_object_foreach(b->values, key, v)
	{
		json_t *p = json_object_get(v, "isEncodingProblem");
		json_t *t = json_object_get(v, "isTruncated");
		if (!json_is_object(v) || !json_is_string(json_object_get(v, "value")) ||
		    (p && !json_is_false(p)) || (t && !json_is_false(t)) ||
		    json_object_size(v) != 1u + (p != NULL) + (t != NULL))
			return fail(b, "bodyValues",
				    "each a value, isEncodingProblem and isTruncated false");
	}
	return true;
}

json_t *jmap_email_build(json_t *o, jmap_email_blob_fn blob, void *ctx, time_t now, struct buf *out)
{
	struct build b = {blob, ctx, json_object_get(o, "bodyValues"), json_array(), 0, NULL};
	struct names *ns = xcalloc(1, sizeof *ns);
	json_t *body = NULL;
	const char *key;
	json_t *v;
	bool ok = check_values(&b);
	json_object_foreach(o, key, v)
	{
		char field[80];
		enum form f;
		bool all;
		if (!ok || in(skip, key))
			continue;
		if (in(server_set, key)) {
			ok = fail(&b, key, "set by the server");
		} else if (strcmp(key, "headers") == 0) {
			ok = fail(&b, key,
				  "no headers property: each field is a header:NAME property");
		} else if (header_prop(key, field, &f, &all)) {
			ok = strncasecmp(field, "Content-", 8) != 0
				 ? put_prop(&b, out, ns, key, field, f, all, v)
				 : fail(&b, key, "Content-* fields belong to body parts");
		} else {
			size_t i = 0;
			while (i < sizeof conv_props / sizeof conv_props[0] &&
			       strcmp(conv_props[i].prop, key) != 0)
				i++;
			ok = i < sizeof conv_props / sizeof conv_props[0]
				 ? put_prop(&b, out, ns, key, conv_props[i].field,
					    conv_props[i].form, false, v)
				 : fail(&b, key, "not an Email property");
		}
	}
	/* RFC 8621 4.6: the server makes Date and Message-ID if not given */
	if (ok && names_add(ns, "Date")) {
		struct tm tm;
		char d[64];
		gmtime_r(&now, &tm);
		strftime(d, sizeof d, "Date: %a, %d %b %Y %H:%M:%S +0000\r\n", &tm);
		(void)buf_puts(out, d);
	}
	if (ok && names_add(ns, "Message-ID")) {
		char id[25], dom[256];
		fsutil_unique_id(id);
		id_domain(o, dom);
		(void)buf_printf(out, "Message-ID: <%s@%s>\r\n", id, dom);
	}
	if (ok) {
		(void)buf_puts(out, "MIME-Version: 1.0\r\n");
		body = body_of(&b, o);
		ok = body != NULL &&
		     put_part(&b, out, body, 0,
			      json_object_get(o, "bodyStructure") ? "bodyStructure" : "textBody",
			      ns);
	}
	json_decref(body);
	free(ns);
	json_t *e = b.err;
	if (e == NULL && json_array_size(b.missing) > 0) {
		e = jmap_set_error("blobNotFound", NULL);
		json_object_set(e, "notFound", b.missing);
	} else if (e == NULL && !ok) {
		e = b.used > JMAP_EMAIL_CREATE_MAX ? jmap_set_error("tooLarge", NULL)
						   : jmap_set_error("serverFail", NULL);
	}
	json_decref(b.missing);
	return e;
}
