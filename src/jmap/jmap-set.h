/*
 * jmap-set.h - what the JMAP Mail methods that change objects share
 * (RFC 8620 5.3 /set, 5.4 /copy; RFC 8621 4.8 Email/import): the
 * arguments (create, update, destroy, ifInState), creation ids ("#cid",
 * RFC 8620 5.3 and 3.3), SetError objects, and the response.
 *
 * Above jmap-mail-util.h.  Every function that can fail with a
 * method-level error sets *error and returns false/NULL.
 */
#ifndef TERN_JMAP_SET_H
#define TERN_JMAP_SET_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "jmap-api.h"

struct jmap_set {
	json_t *create;  /* Id[Object] or NULL (borrowed from the arguments) */
	json_t *update;  /* Id[PatchObject] or NULL */
	json_t *destroy; /* Id[] or NULL */
	char old_state[24];
	/* the response's maps, filled by the method (owned here) */
	json_t *created, *updated, *destroyed, *not_created, *not_updated, *not_destroyed;
};

/* Checks the arguments of a /set (only the names in allowed, which must
 * hold accountId, ifInState, create, update, destroy), the account, the
 * types, at most JMAP_MAX_OBJECTS_IN_SET objects in all
 * (requestTooLarge) and ifInState (stateMismatch); fills s (old_state is
 * the state now).  On false nothing is left to free. */
bool jmap_set_begin(const struct jmap_api_env *env, json_t *args, const char *const *allowed,
		    struct jmap_set *s, json_t **error);

/* The response (RFC 8620 5.3): accountId, oldState, newState (the state
 * after the changes), and the six maps, null when empty.  Takes s's maps
 * (also on failure). */
json_t *jmap_set_finish(const struct jmap_api_env *env, json_t *args, struct jmap_set *s,
			json_t **error);

/* jmap_set_begin in parts, for a type with a state of its own: the
 * argument checks (s filled but for old_state and the maps; nothing to
 * free on false); ifInState against state (stateMismatch); the maps made. */
bool jmap_set_check_args(const struct jmap_api_env *env, json_t *args, const char *const *allowed,
			 struct jmap_set *s, json_t **error);
bool jmap_set_state_ok(json_t *args, const char *state, json_t **error);
void jmap_set_start(struct jmap_set *s);
/* jmap_set_finish with the new state given. */
json_t *jmap_set_response(json_t *args, struct jmap_set *s, const char *state);

/* Runs s's updates, then its destroys, in order, filling updated /
 * notUpdated and destroyed / notDestroyed under the ids ("#cid"
 * resolved): each function returns NULL when done, else the SetError. */
void jmap_set_run(const struct jmap_api_env *env, struct jmap_set *s,
		  json_t *(*update)(const struct jmap_api_env *env, const char *id, json_t *patch),
		  json_t *(*destroy)(const struct jmap_api_env *env, const char *id, void *ctx),
		  void *ctx);

/* Frees s's maps (a method that fails after jmap_set_begin). */
void jmap_set_free(struct jmap_set *s);

struct store_account;
/* The account of the request (env->methods_ctx's). */
struct store_account *jmap_set_account(const struct jmap_api_env *env);

/* Logs a store failure of method/op and returns a serverFail SetError. */
json_t *jmap_set_store_fail(const char *method, const char *op, const char *err);

/* A SetError {"type", "description"} (description may be NULL). */
json_t *jmap_set_error(const char *type, const char *description);

/* An invalidProperties SetError naming one property. */
json_t *jmap_set_invalid(const char *property, const char *description);

/* An id of the request: "#cid" is the Id created for the creation id
 * cid (this call or an earlier one, RFC 8620 5.3), NULL if none; any
 * other string is itself. */
const char *jmap_set_resolve(const struct jmap_api_env *env, const char *id);

/* Records that creation id cid made the object id (for later "#cid"). */
void jmap_set_created_id(const struct jmap_api_env *env, const char *cid, const char *id);

/* A keyword of JMAP (RFC 8621 4.1.1): 1..255 of %x21-7E but
 * ( ) { ] % * " \ ; compared case-insensitively. */
bool jmap_set_keyword_ok(const char *k);

/* A keywords map to IMAP (BRIEF rule, docs/jmap.md): "$seen" "$answered"
 * "$flagged" "$draft" are the system flags (STORE_F_*), any other is an
 * IMAP keyword, lower-cased.  kw (n bytes) gets them space-separated.
 * False if a key is not a keyword, a value is not true, or they do not
 * fit; *bad then says which key (may be NULL). */
bool jmap_set_keywords_imap(json_t *map, unsigned *flags, char *kw, size_t n, const char **bad);

/* One JMAP keyword to IMAP: the STORE_F_ bit (0 if none) or the keyword
 * lower-cased into kw (n bytes).  False if it is not a keyword. */
bool jmap_set_keyword_imap(const char *k, unsigned *flag, char *kw, size_t n);

/* The date and time of an RFC 3339 date-time (RFC 8620 1.4: Date,
 * UTCDate) "YYYY-MM-DDTHH:MM:SS[.frac]" into v (year, month, day, hour,
 * minute, second, in range); *rest points at what follows (the offset).
 * False if s does not start with one. */
bool jmap_set_date_fields(const char *s, int v[6], const char **rest);

/* A UTCDate (RFC 8620 1.4: "2014-10-30T06:12:00Z", secfrac allowed) to
 * Unix time; false if it is not one. */
bool jmap_set_utc_date(const char *s, time_t *out);

#endif
