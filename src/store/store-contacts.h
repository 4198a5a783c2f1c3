/*
 * store-contacts.h - address books of an account (store-contacts.c;
 * docs/contacts.md): several books per account, each holding contacts
 * (vCard 4.0 or 3.0, RFC 6350/2426) kept byte-exact as uploaded, named by
 * a resource name (the last segment of their CardDAV URL), unique by UID
 * within their book, with an ETag and the modseq of their last change.
 * Deleted contacts leave a tombstone with the modseq of the deletion, so
 * "what changed since" (RFC 6578 sync-collection) includes deletions.
 *
 * Two books exist from the first use of an account's address books on:
 * "contacts" (shown as "Contacts", where clients put new contacts) and
 * "collected" (shown as "Collected", for the addresses a user writes to;
 * filled later).  Neither can be deleted.
 */
#ifndef TERN_STORE_CONTACTS_H
#define TERN_STORE_CONTACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "store.h"

/* Book names: 1..64 of [A-Za-z0-9_.-], not starting with '.'. */
#define STORE_BOOK_NAME_MAX 64
/* Resource names: 1..255 bytes of UTF-8, no '/', no control character,
 * not "." or "..". */
#define STORE_CONTACT_NAME_MAX 255
/* UIDs (the vCard's UID, its text decoded): 1..512 bytes. */
#define STORE_CONTACT_UID_MAX 512
/* ETags: 32 hex digits (the first 128 bits of the SHA-256 of the bytes),
 * without the quotes HTTP puts around them. */
#define STORE_CONTACT_ETAG_LEN 32
/* The largest vCard taken (bytes). */
#define STORE_CONTACT_MAX_SIZE ((size_t)1 << 20)
/* Tombstones kept per book: over it the oldest quarter is dropped and the
 * book's floor raised, so a sync from before the floor must start over. */
#define STORE_CONTACT_TOMBSTONES_MAX 10000
/* Changes that bound for the whole process (n >= 4; else the default):
 * for tests. */
void store_contacts_set_tombstones_max(size_t n);

#define STORE_CONTACTS_DEFAULT "contacts"
#define STORE_CONTACTS_COLLECTED "collected"

struct store_book {
	int64_t id; /* never reused, so a sync token names one book's life */
	char name[STORE_BOOK_NAME_MAX + 1];
	char displayname[256];
	char description[1024];
	uint64_t modseq; /* the modseq of its last change (creation included) */
	uint64_t floor;  /* changes up to it are no longer told apart */
};

/* The searchable fields, their text decoded; several values (EMAIL, TEL,
 * CATEGORIES...) joined by '\n'.  KIND is lower-cased ("individual" when
 * the vCard has none). */
enum store_contact_field {
	STORE_CONTACT_FN,
	STORE_CONTACT_N,
	STORE_CONTACT_EMAIL,
	STORE_CONTACT_TEL,
	STORE_CONTACT_ORG,
	STORE_CONTACT_KIND,
	STORE_CONTACT_CATEGORIES,
	STORE_CONTACT_UID,
	STORE_CONTACT_NFIELDS
};

struct store_contact_info {
	char name[STORE_CONTACT_NAME_MAX + 1];
	char etag[STORE_CONTACT_ETAG_LEN + 1]; /* "" for a tombstone */
	uint64_t modseq;
	uint64_t size;
	bool deleted; /* a tombstone (store_contacts_changes only) */
};

/* True if name is a valid book name / resource name. */
bool store_contacts_book_name_ok(const char *name);
bool store_contacts_name_ok(const char *name);

/* Every book of a (the two defaults made if missing), by name, into *out
 * (the caller frees it); *n of them.  0 or -1 with err. */
int store_contacts_books(struct store_account *a, struct store_book **out, size_t *n, char *err,
			 size_t errsz);
/* One book by name (defaults made if missing): 1 found, 0 none, -1. */
int store_contacts_book(struct store_account *a, const char *name, struct store_book *out,
			char *err, size_t errsz);
/* Makes a book: 1 made (*out filled, may be NULL), 0 the name is taken,
 * -1 error (an invalid name included, err says so). */
int store_contacts_book_create(struct store_account *a, const char *name,
			       const char *displayname, const char *description,
			       struct store_book *out, char *err, size_t errsz);
/* Deletes a book and its contacts: 1 done, 0 no such book, -2 a default
 * book (never deleted), -1 error. */
int store_contacts_book_delete(struct store_account *a, const char *name, char *err,
			       size_t errsz);

/* The contacts of a book (no tombstones), by name, into *out (the caller
 * frees it).  0 or -1. */
int store_contacts_list(struct store_account *a, int64_t book_id,
			struct store_contact_info **out, size_t *n, char *err, size_t errsz);
/* What changed in a book after modseq since (0: everything there is):
 * contacts and tombstones by modseq, and in *now the book's modseq.
 * 0, -2 when since is below the book's floor (or above its modseq, or of
 * another book's life: the caller checks the book id), -1 error. */
int store_contacts_changes(struct store_account *a, int64_t book_id, uint64_t since,
			   struct store_contact_info **out, size_t *n, uint64_t *now, char *err,
			   size_t errsz);
/* One contact: 1 (info and, if data is not NULL, its bytes appended to
 * data), 0 none, -1 error. */
int store_contacts_get(struct store_account *a, int64_t book_id, const char *name,
		       struct store_contact_info *info, struct buf *data, char *err,
		       size_t errsz);
/* Calls cb for every contact of a book with its searchable fields
 * (fields[STORE_CONTACT_NFIELDS], never NULL); cb must not use the store.
 * 0 or -1. */
int store_contacts_each_fields(struct store_account *a, int64_t book_id,
			       void (*cb)(void *ctx, const struct store_contact_info *info,
					  const char *const *fields),
			       void *ctx, char *err, size_t errsz);

/* Conditions of a write (HTTP If-Match / If-None-Match: *). */
struct store_contact_cond {
	const char *if_match; /* NULL: none; "*": any existing; else an ETag */
	bool if_none_match;   /* true: only if it does not exist */
};

enum store_contact_put {
	STORE_CONTACT_PUT_CREATED = 1,
	STORE_CONTACT_PUT_REPLACED = 2,
	STORE_CONTACT_PUT_PRECONDITION = -2, /* a condition failed */
	STORE_CONTACT_PUT_INVALID = -3,      /* not a vCard we take (err) */
	STORE_CONTACT_PUT_TOO_BIG = -4,      /* over STORE_CONTACT_MAX_SIZE */
	STORE_CONTACT_PUT_UID_CONFLICT = -5, /* another resource has its UID */
	STORE_CONTACT_PUT_UID_CHANGED = -6,  /* a replacement with another UID */
	STORE_CONTACT_PUT_NO_BOOK = -7,
	STORE_CONTACT_PUT_ERROR = -1,
};

/* Stores data[0..len) as contact name of book_id (creating or replacing
 * it), after parsing it (vcard.h) for its UID and fields.  info (may be
 * NULL) gets the new ETag and modseq; on UID_CONFLICT, info->name is the
 * resource that has the UID.  Returns a value of enum store_contact_put;
 * err says why for INVALID, TOO_BIG and ERROR. */
int store_contacts_put(struct store_account *a, int64_t book_id, const char *name,
		       const char *data, size_t len, const struct store_contact_cond *cond,
		       struct store_contact_info *info, char *err, size_t errsz);
/* Deletes contact name (leaving a tombstone): 1 done, 0 none,
 * -2 a condition failed (only if_match is looked at), -1 error. */
int store_contacts_delete(struct store_account *a, int64_t book_id, const char *name,
			  const struct store_contact_cond *cond, char *err, size_t errsz);

#endif
