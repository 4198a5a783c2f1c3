/*
 * jmap-json.c - see jmap-json.h.  The layer below the JMAP API
 * (jmap-api.c); knows nothing of HTTP.
 *
 * jansson (2.14) already refuses invalid UTF-8, NUL bytes, lone
 * surrogates, integers beyond 64 bits and trailing garbage, and with
 * JSON_REJECT_DUPLICATES duplicate member names.  What it lacks is a
 * depth bound below its built-in 2048 (a recursive descent: 2048 frames
 * of its parser per request is more stack and time than JMAP ever
 * needs), so jmap_json_depth scans the bytes first.
 */
#include "jmap-json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void *json_xmalloc(size_t n)
{
	return xmalloc(n);
}

void jmap_json_init(void)
{
	static bool done;
	if (done)
		return;
	json_set_alloc_funcs(json_xmalloc, free);
	done = true;
}

unsigned jmap_json_depth(const char *data, size_t len, unsigned limit)
{
	unsigned depth = 0, max = 0;
	bool in_string = false, escaped = false;
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			break;
		case '[':
		case '{':
			if (++depth > max) {
				max = depth;
				if (max > limit)
					return limit + 1;
			}
			break;
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
	}
	return max;
}

json_t *jmap_json_parse(const char *data, size_t len, unsigned max_depth, char *err, size_t errsz)
{
	if (jmap_json_depth(data, len, max_depth) > max_depth) {
		snprintf(err, errsz, "nested deeper than %u levels", max_depth);
		return NULL;
	}
	json_error_t je;
	json_t *v = json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (v == NULL) {
		snprintf(err, errsz, "%s at byte %d", je.text, je.position);
		return NULL;
	}
	return v;
}

/* Decodes the reference token p[0..n) ("~1" is "/", "~0" is "~") into a
 * new string; NULL if it has any other "~" sequence. */
static char *token_decode(const char *p, size_t n)
{
	char *t = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '~') {
			t[o++] = p[i];
			continue;
		}
		if (i + 1 < n && (p[i + 1] == '0' || p[i + 1] == '1')) {
			t[o++] = p[i + 1] == '0' ? '~' : '/';
			i++;
			continue;
		}
		free(t);
		return NULL;
	}
	t[o] = '\0';
	return t;
}

bool jmap_json_decimal(const char *t, uint64_t *out)
{
	size_t n = strlen(t);
	if (n == 0 || n > 19 || (n > 1 && t[0] == '0'))
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i] < '0' || t[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(t[i] - '0');
	}
	*out = v;
	return true;
}

/* RFC 6901 4: an array index is "0" or digits without a leading zero. */
static bool array_index(const char *t, size_t size, size_t *out)
{
	uint64_t v;
	if (!jmap_json_decimal(t, &v) || v >= size)
		return false;
	*out = (size_t)v;
	return true;
}

json_t *jmap_json_pointer(json_t *root, const char *ptr)
{
	if (root == NULL)
		return NULL;
	if (ptr[0] == '\0')
		return json_incref(root);
	if (ptr[0] != '/')
		return NULL;
	const char *tok = ptr + 1;
	size_t n = strcspn(tok, "/");
	const char *rest = tok + n;
	char *t = token_decode(tok, n);
	if (t == NULL)
		return NULL;
	json_t *out = NULL;
	if (json_is_array(root) && strcmp(t, "*") == 0) {
		out = json_array();
		size_t i;
		json_t *item;
		json_array_foreach(root, i, item)
		{
			json_t *r = jmap_json_pointer(item, rest);
			if (r == NULL) {
				json_decref(out);
				out = NULL;
				break;
			}
			if (json_is_array(r))
				json_array_extend(out, r);
			else
				json_array_append(out, r);
			json_decref(r);
		}
	} else if (json_is_array(root)) {
		size_t i;
		if (array_index(t, json_array_size(root), &i))
			out = jmap_json_pointer(json_array_get(root, i), rest);
	} else if (json_is_object(root)) {
		json_t *m = json_object_get(root, t);
		if (m != NULL)
			out = jmap_json_pointer(m, rest);
	}
	free(t);
	return out;
}

int jmap_json_is_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

char *jmap_json_dump(const json_t *v, size_t *len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL) /* only for an invalid value: a bug */
		abort();
	if (len != NULL)
		*len = strlen(s);
	return s;
}
