/*
 * jmap-mail-util.h - what the JMAP Mail method files share: argument
 * checks of RFC 8620 5 (/get, /query), the account and state checks, the
 * ids of our objects ("M" mailbox, "T" thread, "E" email: jmap-mail.c's
 * header says what they are) and the mailbox view (the mailbox tree
 * and roles as JMAP sees them, RFC 8621 2).
 *
 * Every function that can fail sets *error to a method-level error
 * (jmap_api_error) and returns false/NULL; the caller returns that error.
 */
#ifndef TERN_JMAP_MAIL_UTIL_H
#define TERN_JMAP_MAIL_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jmap-api.h"

struct store_jmap_mailbox;

struct jmap_mbox {
	const struct store_jmap_mailbox *m;
	int64_t parent;   /* store id of the parent, 0 none */
	const char *name; /* the last part of the path (after the parent's) */
	const char *role; /* NULL none */
	size_t depth;
};

struct jmap_mview {
	struct store_jmap_mailbox *rows;
	struct jmap_mbox *b;
	size_t n;
};

json_t *jmap_mail_fail(json_t **error, const char *type, const char *description);

/* Only the names in allowed (NULL-terminated): else invalidArguments. */
bool jmap_mail_args_known(json_t *args, const char *const *allowed, json_t **error);

/* accountId: required, and ours. */
bool jmap_mail_account_ok(const struct jmap_api_env *env, json_t *args, json_t **error);

/* Syncs the store's JMAP view; the mailbox state as a string into state. */
bool jmap_mail_sync_state(const struct jmap_api_env *env, char state[24], uint64_t *num,
			  json_t **error);

/* A state string of ours: decimal digits, no leading zero. */
bool jmap_mail_parse_state(const char *s, uint64_t *out);

bool jmap_mail_is_inbox(const struct store_jmap_mailbox *m);

struct jmap_mbox *jmap_mail_find_mbox(const struct jmap_mview *v, int64_t id);

/* The mailboxes as JMAP sees them: a tree by the '/' of the names (the
 * nearest existing ancestor is the parent: IMAP may delete a parent and
 * keep its children), one role per mailbox and per role (RFC 8621 2: the
 * first mailbox with the special use has it). */
bool jmap_mail_view_load(const struct jmap_api_env *env, struct jmap_mview *v, json_t **error);

void jmap_mail_view_free(struct jmap_mview *v);

void jmap_mail_mailbox_id(int64_t id, char out[32]);

/* "M<digits>" of a mailbox: its store id, else 0. */
int64_t jmap_mail_parse_mailbox_id(const char *s);

/* The arguments of a /get (RFC 8620 5.1): accountId, "ids" null or Id[]
 * of at most JMAP_MAX_OBJECTS_IN_GET, "properties" null or names of
 * known. */
bool jmap_mail_get_args(const struct jmap_api_env *env, json_t *args, const char *const *known,
			json_t **ids, json_t **props, json_t **error);

/* The response of a /get; takes list and not_found. */
json_t *jmap_mail_get_result(json_t *args, const char *state, json_t *list, json_t *not_found);

bool jmap_mail_uint_arg(json_t *args, const char *name, bool allow_negative, json_int_t *out,
			json_t **error);

/* "T<digits>" of a thread: its store id, else 0. */
int64_t jmap_mail_parse_thread_id(const char *s);

/* "E" and a message file id (store_name_is_file_id): the id,
 * NUL-terminated, into file_id, and true; else false.  Whether the Email
 * exists is store_jmap_email_copies's answer. */
bool jmap_mail_parse_email_id(const char *s, char file_id[25]);

/* f a FilterOperator (RFC 8620 5.5)?  1 with *conds (an array) and *op
 * (0 AND, 1 OR, 2 NOT); 0 when f has no "operator" (a FilterCondition);
 * -1 with *error invalidArguments when it is malformed (RFC 8620 5.5:
 * unsupportedFilter is for a valid filter the server cannot run). */
int jmap_mail_filter_operator(json_t *f, json_t **conds, int *op, json_t **error);

/* The arguments of a /changes (RFC 8620 5.2): accountId; sinceState, a
 * state of ours (else cannotCalculateChanges) into *since; maxChanges
 * into *max (0: none). */
bool jmap_mail_changes_args(const struct jmap_api_env *env, json_t *args, uint64_t *since,
			    json_int_t *max, json_t **error);

/* False (cannotCalculateChanges) if n changes are more than max (0:
 * no limit): one state step can hold any number of changes, so there is
 * no state between to stop at (docs/jmap.md). */
bool jmap_mail_changes_fit(json_int_t max, size_t n, json_t **error);

/* The response of a /changes (hasMoreChanges false); takes the arrays. */
json_t *jmap_mail_changes_result(json_t *args, const char *state, json_t *created,
				 json_t *updated, json_t *destroyed);

/* Is id in ids (a checked Id[] of a /get; NULL: every id is)? */
bool jmap_mail_id_wanted(json_t *ids, const char *id);

/* o cut down to "id" and the properties props (NULL: o whole); takes o
 * and returns the result. */
json_t *jmap_mail_pick(json_t *o, json_t *props);

/* The window of a /query (RFC 8620 5.5): position, anchorOffset, limit
 * (-1: none) and anchor (a String, NULL none; borrowed from args). */
struct jmap_mail_window {
	json_int_t position, anchor_offset, limit;
	json_t *anchor;
};
bool jmap_mail_window_args(json_t *args, struct jmap_mail_window *w, json_t **error);

/* The window's first index in total results, the anchor (if any) being
 * result anchor_at (total or more: not found, anchorNotFound); at least
 * 0, may pass total.  False with *error. */
bool jmap_mail_window_start(const struct jmap_mail_window *w, size_t total, size_t anchor_at,
			    json_int_t *start, json_t **error);

/* The ids of ids (an Id[], NULL none) that no object of list has as
 * its "id": a /get's notFound (a new array). */
json_t *jmap_mail_not_found(json_t *ids, json_t *list);
/* An id of the form "<prefix><decimal>" (Identity "I1", EmailSubmission
 * "S1"): its store id, else 0. */
int64_t jmap_mail_prefixed_id(const char *s, char prefix);

#endif
