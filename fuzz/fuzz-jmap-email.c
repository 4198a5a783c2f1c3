/*
 * fuzz-jmap-email.c - libFuzzer target for src/jmap/jmap-email-parts.c
 * (and the part walk of src/mail/mime-part.c under it).
 *
 * Takes the input as a message and asks for every Email property the
 * module computes, header properties of every form (single and :all)
 * on the fields a message has, every body part property, all body
 * values, with and without truncation; then the blob of each of the
 * first parts.  Checks what the RFC promises: the result serialises
 * (every string valid UTF-8), the preview is at most 256 characters, a
 * truncated value fits maxBodyValueBytes, every leaf part has a blob id
 * whose content can be read.  The first line is also checked as a
 * property name (jmap_email_prop_ok must not crash on any string).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jmap-email-parts.h"
#include "jmap-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const props[] = {"headers",
				    "bodyStructure",
				    "bodyValues",
				    "textBody",
				    "htmlBody",
				    "attachments",
				    "hasAttachment",
				    "preview",
				    "size",
				    "messageId",
				    "inReplyTo",
				    "references",
				    "sender",
				    "from",
				    "to",
				    "cc",
				    "bcc",
				    "replyTo",
				    "subject",
				    "sentAt",
				    "header:X-Any:asText:all",
				    "header:X-Any:asAddresses",
				    "header:X-Any:asGroupedAddresses:all",
				    "header:X-Any:asMessageIds",
				    "header:X-Any:asDate:all",
				    "header:X-Any:asURLs",
				    "header:From:asRaw:all",
				    "header:To:asGroupedAddresses",
				    "header:Date:asDate:all",
				    "header:List-Post:asURLs:all",
				    "header:References:asMessageIds:all",
				    "header:Subject:asText:all",
				    NULL};
static const char *const body_props[] = {"partId",
					 "blobId",
					 "size",
					 "headers",
					 "name",
					 "type",
					 "charset",
					 "disposition",
					 "cid",
					 "language",
					 "location",
					 "subParts",
					 "header:Content-Type",
					 "header:X-Any:asText:all",
					 NULL};

static json_t *names(const char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v[i] != NULL; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* Every leaf of the structure has a blob id of the message's form whose
 * content can be read. */
static void check_parts(const char *msg, size_t len, json_t *part, size_t *budget)
{
	json_t *sub = json_object_get(part, "subParts");
	json_t *blob = json_object_get(part, "blobId");
	if (json_is_array(sub)) {
		if (!json_is_null(blob))
			abort();
		size_t i;
		json_t *p;
		json_array_foreach(sub, i, p) check_parts(msg, len, p, budget);
		return;
	}
	if (!json_is_string(blob) || strncmp(json_string_value(blob), "B", 1) != 0)
		abort();
	if (*budget == 0)
		return;
	(*budget)--;
	unsigned path[80];
	size_t n = 0;
	if (!jmap_email_parts_path(json_string_value(blob) + 1, path, 80, &n))
		abort();
	struct buf out = BUF_INIT;
	if (jmap_email_parts_blob(msg, len, path, n, &out) != 1)
		abort();
	json_t *size = json_object_get(part, "size");
	if (!json_is_integer(size) || (size_t)json_integer_value(size) != out.len)
		abort();
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		jmap_json_init();
		init = true;
	}
	const char *msg = (const char *)data;
	char why[256];
	const char *nl = size > 0 ? memchr(msg, '\n', size) : NULL;
	size_t line = nl != NULL ? (size_t)(nl - msg) : size;
	if (line < 300 && memchr(msg, '\0', line) == NULL) {
		char name[301];
		memcpy(name, msg, line);
		name[line] = '\0';
		(void)jmap_email_prop_ok(name, false, why, sizeof why);
		(void)jmap_email_prop_ok(name, true, why, sizeof why);
	}
	for (size_t i = 0; props[i] != NULL; i++)
		if (!jmap_email_prop_ok(props[i], false, why, sizeof why))
			abort();
	json_t *p = names(props), *bp = names(body_props);
	size_t max = size > 0 ? data[0] % 16 : 0;
	struct jmap_email_opts o = {.props = p,
				    .body_props = bp,
				    .fetch_all = true,
				    .max_body_value_bytes = max,
				    .blob_id = "B"};
	json_t *obj = json_object();
	jmap_email_parts_fill(msg, size, &o, obj);
	char *text = jmap_json_dump(obj, NULL);
	if (text == NULL)
		abort();
	free(text);
	if (utf8_chars(json_string_value(json_object_get(obj, "preview"))) > 256)
		abort();
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(obj, "bodyValues"), key, v)
	{
		const char *s = json_string_value(json_object_get(v, "value"));
		if (s == NULL || (max > 0 && strlen(s) > max))
			abort();
	}
	size_t budget = 8;
	check_parts(msg, size, json_object_get(obj, "bodyStructure"), &budget);
	if (json_is_true(json_object_get(obj, "hasAttachment")) !=
	    jmap_email_has_attachment(msg, size))
		abort();
	json_decref(obj);
	json_decref(p);
	json_decref(bp);
	return 0;
}
