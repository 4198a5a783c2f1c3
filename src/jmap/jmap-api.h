/*
 * jmap-api.h - the JMAP API request (RFC 8620 3): one Request object in,
 * one Response object (or a request-level problem, RFC 7807) out, with
 * result references (3.7), createdIds (3.3) and the core capability's
 * methods, Core/echo (4) and Blob/copy (6.3).
 *
 * It knows no HTTP, no authentication and no store: jmap-server.c
 * authenticates, reads the body and gives what the methods need through
 * struct jmap_api_env; the fuzz target (fuzz/fuzz-jmap-json.c) and the
 * unit tests call it directly.
 */
#ifndef TERN_JMAP_API_H
#define TERN_JMAP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JMAP_CAP_CORE "urn:ietf:params:jmap:core"
#define JMAP_CAP_MAIL "urn:ietf:params:jmap:mail"
#define JMAP_CAP_VACATION "urn:ietf:params:jmap:vacationresponse"
#define JMAP_CAP_SUBMISSION "urn:ietf:params:jmap:submission"
/* The "maxObjectsInGet" / "maxObjectsInSet" of the core capability: no
 * core method reads or writes objects in bulk, so these are the bounds
 * any /get or /set will have. */
#define JMAP_MAX_OBJECTS_IN_GET 500
#define JMAP_MAX_OBJECTS_IN_SET 500

struct jmap_api_env;
typedef struct json_t json_t;

/* A method of another capability (jmap-mail.c): run gets the arguments
 * with result references resolved and returns the response arguments (a
 * new reference), or NULL with *error set to a method-level error object
 * (jmap_api_error). */
struct jmap_method {
	const char *name;
	const char *capability;
	json_t *(*run)(const struct jmap_api_env *env, json_t *args, json_t **error);
};

struct jmap_api_env {
	uint64_t max_size_request; /* bytes; the caller has checked it */
	uint64_t max_calls_in_request;
	const char *account_id;    /* the one account the user may use */
	const char *session_state; /* the Session object's state */
	/* Is blob_id a blob of the account?  1 yes, 0 no, -1 error. */
	int (*blob_exists)(void *ctx, const char *blob_id);
	void *ctx;
	/* More methods (may be NULL), and the capability they belong to, which
	 * "using" may then name (NULL: none); "using" may name the capability
	 * of any of them too. */
	const struct jmap_method *methods;
	size_t n_methods;
	const char *capability;
	void *methods_ctx; /* for the methods */
	/* The creation ids of the request (RFC 8620 3.3, 5.3): creation id
	 * to Id, those the request gave in createdIds and those a /set or
	 * /import created so far.  jmap_api_request sets it; a method adds
	 * to it (it is a new object per request, never shared). */
	json_t *created_ids;
	/* The responses of implicit calls (RFC 8621 7.5's Email/set after
	 * EmailSubmission/set): jmap_api_request sets it; a method adds to it
	 * with jmap_api_implicit, and they follow the method's response. */
	json_t *implicit;
};

/* A method-level error (RFC 8620 3.6.2): {"type": type[, "description":
 * description]} (description may be NULL).  A new reference. */
json_t *jmap_api_error(const char *type, const char *description);

/* Adds the response [name, args] (takes args) of an implicit call of the
 * running method; it gets the method's call id. */
void jmap_api_implicit(const struct jmap_api_env *env, const char *name, json_t *args);

/* Runs the request body[0..len).  Returns the HTTP status: 200 with a
 * Response object, or 400 with a problem details object (RFC 8620 3.6.1:
 * notJSON, notRequest, unknownCapability, limit); *problem says which.
 * *out (malloc'd, NUL-terminated, *outlen bytes) is the body to send. */
int jmap_api_request(const struct jmap_api_env *env, const char *body, size_t len, char **out,
		     size_t *outlen, bool *problem);

/* A problem details object (RFC 7807) for a JMAP request-level error:
 * type is the last part of urn:ietf:params:jmap:error:TYPE, or a full
 * URI when it has a ':'; limit (may be NULL) is the "limit" member.
 * Returns a malloc'd string (*len bytes). */
char *jmap_api_problem(const char *type, int status, const char *detail, const char *limit,
		       size_t *len);

#endif
