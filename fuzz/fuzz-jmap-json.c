/*
 * fuzz-jmap-json.c - libFuzzer target for the JMAP request parser
 * (src/jmap/jmap-json.c, jmap-api.c).
 *
 * The input is a whole API request body.  It runs jmap_api_request (the
 * parse with its depth bound, the Request checks, result references,
 * Core/echo and Blob/copy) and checks its promises: the answer is 200 or
 * 400, is itself valid JSON of at most the depth bound plus the Response
 * wrapping, a 400 is a problem details object with a JMAP error type and
 * a 200 a Response object.  Each input is also used as a JSON Pointer
 * against a fixed document, and the depth scan is compared with what the
 * parser accepts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jmap-api.h"
#include "jmap-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int blob_exists(void *ctx, const char *id)
{
	return id[0] == 'G';
}

static void check_answer(int st, bool problem, const char *out, size_t len)
{
	char err[200];
	/* Echo copies arguments into the Response: two levels more. */
	json_t *v = jmap_json_parse(out, len, JMAP_JSON_MAX_DEPTH + 3, err, sizeof err);
	if (v == NULL || !json_is_object(v))
		abort();
	if (st == 200) {
		if (problem || !json_is_array(json_object_get(v, "methodResponses")) ||
		    !json_is_string(json_object_get(v, "sessionState")))
			abort();
	} else if (st == 400) {
		const char *t = json_string_value(json_object_get(v, "type"));
		if (!problem || t == NULL || strncmp(t, "urn:ietf:params:jmap:error:", 27) != 0 ||
		    json_integer_value(json_object_get(v, "status")) != 400)
			abort();
	} else {
		abort();
	}
	json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jmap_json_init();
	/* An exact-length heap copy: ASan sees any read past the end. */
	char *p = malloc(size ? size : 1);
	if (p == NULL)
		abort();
	memcpy(p, data, size);

	struct jmap_api_env env = {.max_size_request = 1 << 20, .max_calls_in_request = 64, .account_id = "A1", .session_state = "s0", .blob_exists = blob_exists};
	char *out = NULL;
	size_t len = 0;
	bool problem = false;
	int st = jmap_api_request(&env, p, size, &out, &len, &problem);
	if (out == NULL || strlen(out) != len)
		abort();
	check_answer(st, problem, out, len);
	free(out);

	/* A parse that succeeds never exceeds the depth bound. */
	char err[200];
	json_t *v = jmap_json_parse(p, size, 8, err, sizeof err);
	if (v != NULL) {
		char *s = jmap_json_dump(v, &len);
		if (jmap_json_depth(s, len, 8) > 8)
			abort();
		free(s);
		json_decref(v);
	}

	/* The input as a pointer (NUL-terminated copy). */
	char *ptr = malloc(size + 1);
	if (ptr == NULL)
		abort();
	memcpy(ptr, data, size);
	ptr[size] = '\0';
	static const char doc[] = "{\"a\": [{\"b\": [1, 2]}, {\"b\": [3]}], \"c~/\": {\"\": null},"
				  " \"*\": [[[]]]}";
	json_t *d = jmap_json_parse(doc, sizeof doc - 1, 8, err, sizeof err);
	if (d == NULL)
		abort();
	json_t *r = jmap_json_pointer(d, ptr);
	json_decref(r);
	json_decref(d);
	free(ptr);
	free(p);
	return 0;
}
