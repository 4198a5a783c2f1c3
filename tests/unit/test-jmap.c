/*
 * test-jmap.c - unit tests for src/jmap's core: JSON Pointer evaluation
 * with the "*" extension (RFC 6901, RFC 8620 3.7), the bounded parser
 * (depth, duplicates, UTF-8) and the API request checks (jmap-api.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap-api.h"
#include "jmap-authcache.h"
#include "jmap-json.h"
#include "test.h"

static json_t *parse(const char *s)
{
	char err[200];
	jmap_json_init();
	return jmap_json_parse(s, strlen(s), JMAP_JSON_MAX_DEPTH, err, sizeof err);
}

/* The pointer's result as compact JSON, or "(none)". */
static char *ptr(const char *doc, const char *p)
{
	json_t *d = parse(doc);
	if (d == NULL)
		abort();
	json_t *r = jmap_json_pointer(d, p);
	char *s = r ? jmap_json_dump(r, NULL) : strdup("(none)");
	json_decref(r);
	json_decref(d);
	return s;
}

#define CHECK_PTR(doc, p, want)                                                                    \
	do {                                                                                       \
		char *s_ = ptr(doc, p);                                                            \
		CHECK_STR(s_, want);                                                               \
		free(s_);                                                                          \
	} while (0)

TEST(jmap_pointer_rfc6901)
{
	/* The examples of RFC 6901 5. */
	const char *d = "{\"foo\": [\"bar\", \"baz\"], \"\": 0, \"a/b\": 1, \"c%d\": 2, \"e^f\": 3,"
			" \"g|h\": 4, \"i\\\\j\": 5, \"k\\\"l\": 6, \" \": 7, \"m~n\": 8}";
	CHECK_PTR(d, "/foo", "[\"bar\",\"baz\"]");
	CHECK_PTR(d, "/foo/0", "\"bar\"");
	CHECK_PTR(d, "/", "0");
	CHECK_PTR(d, "/a~1b", "1");
	CHECK_PTR(d, "/c%d", "2");
	CHECK_PTR(d, "/e^f", "3");
	CHECK_PTR(d, "/g|h", "4");
	CHECK_PTR(d, "/i\\j", "5");
	CHECK_PTR(d, "/k\"l", "6");
	CHECK_PTR(d, "/ ", "7");
	CHECK_PTR(d, "/m~0n", "8");
	CHECK_PTR("[1,2]", "", "[1,2]");
	/* Failures: no such member or index, leading zero, "-", bad escape,
	 * no leading "/", a token into a scalar. */
	CHECK_PTR(d, "/nope", "(none)");
	CHECK_PTR(d, "/foo/2", "(none)");
	CHECK_PTR(d, "/foo/01", "(none)");
	CHECK_PTR(d, "/foo/-", "(none)");
	CHECK_PTR(d, "/foo/-1", "(none)");
	CHECK_PTR(d, "/m~2n", "(none)");
	CHECK_PTR(d, "/m~", "(none)");
	CHECK_PTR(d, "foo", "(none)");
	CHECK_PTR(d, "/foo/0/x", "(none)");
	CHECK_PTR("[1]", "/99999999999999999999999", "(none)");
}

TEST(jmap_pointer_star)
{
	const char *d = "{\"list\": [{\"id\": \"a\", \"t\": [1, 2]}, {\"id\": \"b\", \"t\": [3]},"
			" {\"id\": \"c\", \"t\": []}], \"*\": 9, \"empty\": []}";
	CHECK_PTR(d, "/list/*/id", "[\"a\",\"b\",\"c\"]");
	/* Arrays among the results are flattened one level (RFC 8620 3.7). */
	CHECK_PTR(d, "/list/*/t", "[1,2,3]");
	CHECK_PTR(d, "/list/*",
		  "[{\"id\":\"a\",\"t\":[1,2]},{\"id\":\"b\",\"t\":[3]},{\"id\":\"c\",\"t\":[]}]");
	CHECK_PTR(d, "/empty/*/x", "[]");
	/* One item without the member: the whole evaluation fails. */
	CHECK_PTR(d, "/list/*/t/0", "(none)");
	/* On an object "*" is an ordinary member name. */
	CHECK_PTR(d, "/*", "9");
	/* Each "*" flattens what the rest of the pointer gave for its items. */
	CHECK_PTR("[[[1,2],[3]],[[4]]]", "/*/*", "[1,2,3,4]");
	CHECK_PTR("[[[1,2],[3]],[[4]]]", "/*/0", "[1,2,4]");
}

TEST(jmap_parse_limits)
{
	char err[200];
	jmap_json_init();
	CHECK(parse("{\"a\": 1, \"a\": 2}") == NULL);
	CHECK(parse("\"\xc3\x28\"") == NULL);
	CHECK(parse("\"\\ud800\"") == NULL);
	CHECK(parse("\"a\\u0000b\"") == NULL);
	CHECK(parse("[1] [2]") == NULL);
	CHECK(parse("123456789012345678901234567890") == NULL);
	json_t *v = parse(" \"x\" ");
	CHECK(json_is_string(v));
	json_decref(v);
	/* 64 levels parse, 65 do not; brackets in strings do not count. */
	char deep[300];
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	deep[128] = '\0';
	v = jmap_json_parse(deep, 128, 64, err, sizeof err);
	CHECK(v != NULL);
	json_decref(v);
	CHECK(jmap_json_parse(deep, 128, 63, err, sizeof err) == NULL);
	CHECK_STR(err, "nested deeper than 63 levels");
	CHECK_INT(jmap_json_depth("[\"[[[[\\\"[[[\", {\"]\": [1]}]", 25, 100), 3);
	CHECK_INT(jmap_json_depth("[[[[[[", 6, 2), 3);
}

static int no_blob(void *ctx, const char *id)
{
	return strcmp(id, "Gx") == 0;
}

static char *run(const char *body, int *status, bool *problem)
{
	struct jmap_api_env env = {.max_size_request = 1000, .max_calls_in_request = 3, .account_id = "A1", .session_state = "st", .blob_exists = no_blob};
	char *out = NULL;
	size_t len;
	jmap_json_init();
	*status = jmap_api_request(&env, body, strlen(body), &out, &len, problem);
	return out;
}

#define CHECK_RUN(body, st, want)                                                                  \
	do {                                                                                       \
		int st_;                                                                           \
		bool pr_;                                                                          \
		char *o_ = run(body, &st_, &pr_);                                                  \
		CHECK_INT(st_, st);                                                                \
		CHECK_INT(pr_, (st) != 200);                                                       \
		CHECK_STR(o_, want);                                                               \
		free(o_);                                                                          \
	} while (0)

TEST(jmap_api_requests)
{
	CHECK_RUN(
	    "{\"using\": [\"urn:ietf:params:jmap:core\"], \"methodCalls\": "
	    "[[\"Core/echo\", {\"a\": [1]}, \"c\"], [\"Core/echo\", {\"#b\": {\"resultOf\": "
	    "\"c\", \"name\": \"Core/echo\", \"path\": \"/a/0\"}}, \"d\"]]}",
	    200,
	    "{\"methodResponses\":[[\"Core/echo\",{\"a\":[1]},\"c\"],[\"Core/echo\",{\"b\":1},"
	    "\"d\"]],\"sessionState\":\"st\"}");
	CHECK_RUN("[", 400,
		  "{\"type\":\"urn:ietf:params:jmap:error:notJSON\",\"status\":400,\"detail\":"
		  "\"the request is not I-JSON: ']' expected near end of file at byte 1\"}");
	CHECK_RUN("{\"using\": []}", 400,
		  "{\"type\":\"urn:ietf:params:jmap:error:notRequest\",\"status\":400,\"detail\":"
		  "\"\\\"methodCalls\\\" must be an array of Invocations\"}");
	CHECK_RUN("{\"using\": [\"x:y\"], \"methodCalls\": []}", 400,
		  "{\"type\":\"urn:ietf:params:jmap:error:unknownCapability\",\"status\":400,"
		  "\"detail\":\"unknown capability x:y\"}");
	CHECK_RUN(
	    "{\"using\": [], \"methodCalls\": [[\"a\", {}, \"1\"], [\"a\", {}, \"2\"], [\"a\", "
	    "{}, \"3\"], [\"a\", {}, \"4\"]]}",
	    400,
	    "{\"type\":\"urn:ietf:params:jmap:error:limit\",\"status\":400,\"limit\":"
	    "\"maxCallsInRequest\",\"detail\":\"more than 3 method calls\"}");
	CHECK_RUN(
	    "{\"using\": [\"urn:ietf:params:jmap:core\"], \"methodCalls\": [[\"Blob/copy\", "
	    "{\"fromAccountId\": \"A1\", \"accountId\": \"A1\", \"blobIds\": [\"Gx\", \"Gy\"]},"
	    " \"c\"]]}",
	    200,
	    "{\"methodResponses\":[[\"Blob/copy\",{\"fromAccountId\":\"A1\",\"accountId\":\"A1\","
	    "\"copied\":{\"Gx\":\"Gx\"},\"notCopied\":{\"Gy\":{\"type\":\"blobNotFound\"}}},\"c\"]]"
	    ","
	    "\"sessionState\":\"st\"}");
	char big[1100];
	memset(big, ' ', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	CHECK_RUN(big, 400,
		  "{\"type\":\"urn:ietf:params:jmap:error:limit\",\"status\":400,\"limit\":"
		  "\"maxSizeRequest\",\"detail\":\"the request is larger than 1000 bytes\"}");
}

/* ------------------------------------------------- the credential cache */

static struct jmap_authcache_entry entry(struct jmap_authcache *c, const char *user,
					 const char *pw, int64_t at)
{
	struct jmap_authcache_entry e = {.account_id = 7, .at = at};
	snprintf(e.user, sizeof e.user, "%s", user);
	snprintf(e.account, sizeof e.account, "%s", user);
	jmap_authcache_key(c, user, pw, strlen(pw), e.key);
	e.cred_tag[0] = 1;
	return e;
}

TEST(jmap_authcache_find_ttl)
{
	struct jmap_authcache *c = jmap_authcache_new(4);
	CHECK(c != NULL);
	struct jmap_authcache_entry e = entry(c, "a@x", "secret", 1000);
	jmap_authcache_put(c, &e);
	unsigned char k[JMAP_AUTHCACHE_KEY_LEN];
	jmap_authcache_key(c, "a@x", "secret", 6, k);
	const struct jmap_authcache_entry *f = jmap_authcache_find(c, "a@x", k, 1299, 300);
	CHECK(f != NULL && f->account_id == 7);
	/* another password, another user with that password: no hit */
	jmap_authcache_key(c, "a@x", "secreT", 6, k);
	CHECK(jmap_authcache_find(c, "a@x", k, 1000, 300) == NULL);
	jmap_authcache_key(c, "b@x", "secret", 6, k);
	CHECK(jmap_authcache_find(c, "b@x", k, 1000, 300) == NULL);
	/* "a@x" + "\0b" is not "a@x\0" + "b": the user's end is in the MAC */
	unsigned char k1[JMAP_AUTHCACHE_KEY_LEN], k2[JMAP_AUTHCACHE_KEY_LEN];
	jmap_authcache_key(c, "ab", "c", 1, k1);
	jmap_authcache_key(c, "a", "bc", 2, k2);
	CHECK(memcmp(k1, k2, sizeof k1) != 0);
	/* at the TTL, or with the clock stepped back: gone for good */
	jmap_authcache_key(c, "a@x", "secret", 6, k);
	CHECK(jmap_authcache_find(c, "a@x", k, 1300, 300) == NULL);
	CHECK_INT(jmap_authcache_count(c), 0);
	jmap_authcache_put(c, &e);
	CHECK(jmap_authcache_find(c, "a@x", k, 999, 300) == NULL);
	CHECK_INT(jmap_authcache_count(c), 0);
	/* a second cache has another key */
	struct jmap_authcache *d = jmap_authcache_new(4);
	jmap_authcache_key(d, "a@x", "secret", 6, k2);
	CHECK(memcmp(k, k2, sizeof k) != 0);
	jmap_authcache_free(&d);
	jmap_authcache_free(&c);
	CHECK(c == NULL);
	jmap_authcache_free(&c);
}

TEST(jmap_authcache_bounded)
{
	struct jmap_authcache *c = jmap_authcache_new(3);
	char u[16];
	for (int i = 0; i < 3; i++) {
		snprintf(u, sizeof u, "u%d", i);
		struct jmap_authcache_entry e = entry(c, u, "pw", 100 + i);
		jmap_authcache_put(c, &e);
	}
	/* the same user and password again replaces, does not add */
	struct jmap_authcache_entry e = entry(c, "u0", "pw", 110);
	jmap_authcache_put(c, &e);
	CHECK_INT(jmap_authcache_count(c), 3);
	/* full: the oldest (u1, checked at 101) goes */
	e = entry(c, "u3", "pw", 111);
	jmap_authcache_put(c, &e);
	CHECK_INT(jmap_authcache_count(c), 3);
	unsigned char k[JMAP_AUTHCACHE_KEY_LEN];
	jmap_authcache_key(c, "u1", "pw", 2, k);
	CHECK(jmap_authcache_find(c, "u1", k, 112, 300) == NULL);
	jmap_authcache_key(c, "u0", "pw", 2, k);
	CHECK(jmap_authcache_find(c, "u0", k, 112, 300) != NULL);
	jmap_authcache_drop(c, "u0", k);
	CHECK(jmap_authcache_find(c, "u0", k, 112, 300) == NULL);
	CHECK_INT(jmap_authcache_count(c), 2);
	jmap_authcache_free(&c);
}
