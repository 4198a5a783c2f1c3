/*
 * store-contacts.c - address books of an account (store-contacts.h,
 * docs/contacts.md).  Layer: store, above the vCard reader of src/mail.
 * Its own tables in account.db, made by CREATE TABLE IF NOT EXISTS at the
 * start of every call's transaction (as store-jmap.c does), so no schema
 * version changes:
 *
 *   contact_books(id, name, ...)       one row per book; ids never reused
 *                                      (AUTOINCREMENT), so a sync token
 *                                      naming a book id cannot outlive it
 *   contacts(book_id, name, ...)       one row per contact: the bytes as
 *                                      uploaded, UID, ETag, modseq and the
 *                                      searchable fields
 *   contact_tombstones(book_id, name)  deleted contacts with the modseq of
 *                                      their deletion
 *
 * Modseqs are the account's (store_account_next_modseq, shared with
 * mail), so one counter orders every change; a book's modseq is that of
 * its last change.  Every call is one transaction (BEGIN IMMEDIATE: the
 * first call also writes the tables and the default books).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-contacts.h"
#include "store-private.h"
#include "vcard.h"
#include "xalloc.h"

static const char contacts_ddl[] =
    "CREATE TABLE IF NOT EXISTS contact_books ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL UNIQUE,"
    " displayname TEXT NOT NULL,"
    " description TEXT NOT NULL,"
    " modseq INTEGER NOT NULL,"
    " floor INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS contacts ("
    " book_id INTEGER NOT NULL REFERENCES contact_books(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " uid TEXT NOT NULL,"
    " etag TEXT NOT NULL,"
    " modseq INTEGER NOT NULL,"
    " data BLOB NOT NULL,"
    " fn TEXT NOT NULL, n TEXT NOT NULL, email TEXT NOT NULL, tel TEXT NOT NULL,"
    " org TEXT NOT NULL, kind TEXT NOT NULL, categories TEXT NOT NULL,"
    " PRIMARY KEY (book_id, name),"
    " UNIQUE (book_id, uid)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS contacts_modseq ON contacts(book_id, modseq);"
    "CREATE TABLE IF NOT EXISTS contact_tombstones ("
    " book_id INTEGER NOT NULL REFERENCES contact_books(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " modseq INTEGER NOT NULL,"
    " PRIMARY KEY (book_id, name)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS contact_tombstones_modseq"
    " ON contact_tombstones(book_id, modseq);";

bool store_contacts_book_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > STORE_BOOK_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

bool store_contacts_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > STORE_CONTACT_NAME_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '/')
			return false;
	}
	return store_name_utf8(name, n);
}

/* ------------------------------------------------------------ helpers */

/* Inserts the two default books if missing, inside the transaction. */
static int ensure_defaults(struct store_db *db, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT COUNT(*) FROM contact_books WHERE name IN ('contacts', 'collected')", err,
	    errsz);
	if (st == NULL)
		return -1;
	int64_t have = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (have < 0) {
		store_db_error(db, "counting the address books", err, errsz);
		return -1;
	}
	if (have == 2)
		return 0;
	uint64_t modseq;
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0)
		return -1;
	st = store_db_stmt(db,
			   "INSERT INTO contact_books (name, displayname, description, modseq)"
			   " VALUES ('contacts', 'Contacts', '', ?1), ('collected', 'Collected',"
			   " 'Addresses you wrote to', ?1) ON CONFLICT DO NOTHING",
			   err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (int64_t)modseq);
	return store_db_run(db, st, err, errsz);
}

/* The account's database in a write transaction with the tables and the
 * default books there; NULL with err. */
static struct store_db *begin(struct store_account *a, char *err, size_t errsz)
{
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL || store_db_begin(db, err, errsz) < 0)
		return NULL;
	if (store_db_exec_ddl(db, contacts_ddl, "creating the address book tables", err, errsz) <
		0 ||
	    ensure_defaults(db, err, errsz) < 0) {
		store_db_rollback(db);
		return NULL;
	}
	return db;
}

static void read_book(sqlite3_stmt *st, void *row)
{
	struct store_book *b = row;
	b->id = sqlite3_column_int64(st, 0);
	store_db_column_text(st, 1, b->name, sizeof b->name);
	store_db_column_text(st, 2, b->displayname, sizeof b->displayname);
	store_db_column_text(st, 3, b->description, sizeof b->description);
	b->modseq = (uint64_t)sqlite3_column_int64(st, 4);
	b->floor = (uint64_t)sqlite3_column_int64(st, 5);
}

/* Book by name (or, name NULL, by id) in the transaction: 1, 0 or -1. */
static int load_book(struct store_db *db, const char *name, int64_t id, struct store_book *out,
		     char *err, size_t errsz)
{
	sqlite3_stmt *st =
	    name ? store_db_stmt(db,
				 "SELECT id, name, displayname, description, modseq, floor"
				 " FROM contact_books WHERE name = ?1",
				 err, errsz)
		 : store_db_stmt(db,
				 "SELECT id, name, displayname, description, modseq, floor"
				 " FROM contact_books WHERE id = ?1",
				 err, errsz);
	if (st == NULL)
		return -1;
	if (name)
		store_db_bind_text(st, 1, name);
	else
		sqlite3_bind_int64(st, 1, id);
	size_t n = 0;
	if (store_db_fetch(db, st, out, sizeof *out, 1, read_book, &n, "address book", err,
			   errsz) < 0)
		return -1;
	return n == 1;
}

static int find_book(struct store_db *db, const char *name, struct store_book *out, char *err,
		     size_t errsz)
{
	return load_book(db, name, 0, out, err, errsz);
}

static int book_by_id(struct store_db *db, int64_t id, struct store_book *out, char *err,
		      size_t errsz)
{
	return load_book(db, NULL, id, out, err, errsz);
}

static int set_book_modseq(struct store_db *db, int64_t id, uint64_t modseq, char *err,
			   size_t errsz)
{
	sqlite3_stmt *st =
	    store_db_stmt(db, "UPDATE contact_books SET modseq = ?2 WHERE id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)modseq);
	return store_db_run(db, st, err, errsz);
}

/* Rows of a COUNT-then-fetch: counts with count_st, fetches with st. */
static int fetch_all(struct store_db *db, sqlite3_stmt *count_st, sqlite3_stmt *st,
		     void **out, size_t row_size, void (*read_row)(sqlite3_stmt *, void *),
		     size_t *n, const char *what, char *err, size_t errsz)
{
	size_t count = sqlite3_step(count_st) == SQLITE_ROW
			   ? (size_t)sqlite3_column_int64(count_st, 0)
			   : 0;
	sqlite3_reset(count_st);
	*out = xcalloc(count + 1, row_size);
	if (store_db_fetch(db, st, *out, row_size, count + 1, read_row, n, what, err, errsz) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* -------------------------------------------------------------- books */

int store_contacts_books(struct store_account *a, struct store_book **out, size_t *n, char *err,
			 size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *cst = store_db_stmt(db, "SELECT COUNT(*) FROM contact_books", err, errsz);
	sqlite3_stmt *st =
	    cst ? store_db_stmt(db,
				"SELECT id, name, displayname, description, modseq, floor"
				" FROM contact_books ORDER BY name",
				err, errsz)
		: NULL;
	int rc = st ? fetch_all(db, cst, st, (void **)out, sizeof **out, read_book, n,
				"address books", err, errsz)
		    : -1;
	return store_db_end(db, rc, err, errsz);
}

int store_contacts_book(struct store_account *a, const char *name, struct store_book *out,
			char *err, size_t errsz)
{
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	return store_db_end(db, find_book(db, name, out, err, errsz), err, errsz);
}

int store_contacts_book_create(struct store_account *a, const char *name,
			       const char *displayname, const char *description,
			       struct store_book *out, char *err, size_t errsz)
{
	if (!store_contacts_book_name_ok(name)) {
		store_err(err, errsz, "invalid address book name");
		return -1;
	}
	if (strlen(displayname) > 255 || strlen(description) > 1023 ||
	    !store_name_utf8(displayname, strlen(displayname)) ||
	    !store_name_utf8(description, strlen(description))) {
		store_err(err, errsz, "display name or description too long or not UTF-8");
		return -1;
	}
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	struct store_book b;
	int rc = find_book(db, name, &b, err, errsz);
	if (rc != 0)
		return store_db_end(db, rc < 0 ? -1 : 0, err, errsz);
	uint64_t modseq;
	sqlite3_stmt *st = NULL;
	if (store_account_next_modseq(db, &modseq, err, errsz) == 0)
		st = store_db_stmt(db,
				   "INSERT INTO contact_books (name, displayname, description, modseq)"
				   " VALUES (?1, ?2, ?3, ?4)",
				   err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	store_db_bind_text(st, 1, name);
	store_db_bind_text(st, 2, displayname);
	store_db_bind_text(st, 3, description);
	sqlite3_bind_int64(st, 4, (int64_t)modseq);
	rc = store_db_run(db, st, err, errsz);
	if (rc == 0)
		rc = find_book(db, name, out ? out : &b, err, errsz) == 1 ? 1 : -1;
	return store_db_end(db, rc, err, errsz);
}

int store_contacts_book_delete(struct store_account *a, const char *name, char *err,
			       size_t errsz)
{
	if (strcmp(name, STORE_CONTACTS_DEFAULT) == 0 || strcmp(name, STORE_CONTACTS_COLLECTED) == 0)
		return -2;
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	struct store_book b;
	int rc = find_book(db, name, &b, err, errsz);
	if (rc == 1) {
		/* Foreign keys cascade to the contacts and tombstones. */
		sqlite3_stmt *st =
		    store_db_stmt(db, "DELETE FROM contact_books WHERE id = ?1", err, errsz);
		if (st == NULL)
			rc = -1;
		else {
			sqlite3_bind_int64(st, 1, b.id);
			rc = store_db_run(db, st, err, errsz) < 0 ? -1 : 1;
		}
	}
	return store_db_end(db, rc, err, errsz);
}

/* ----------------------------------------------------------- contacts */

static void read_info(sqlite3_stmt *st, void *row)
{
	struct store_contact_info *c = row;
	store_db_column_text(st, 0, c->name, sizeof c->name);
	store_db_column_text(st, 1, c->etag, sizeof c->etag);
	c->modseq = (uint64_t)sqlite3_column_int64(st, 2);
	c->size = (uint64_t)sqlite3_column_int64(st, 3);
	c->deleted = sqlite3_column_int(st, 4) != 0;
}

int store_contacts_list(struct store_account *a, int64_t book_id,
			struct store_contact_info **out, size_t *n, char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *cst =
	    store_db_stmt(db, "SELECT COUNT(*) FROM contacts WHERE book_id = ?1", err, errsz);
	if (cst != NULL)
		sqlite3_bind_int64(cst, 1, book_id);
	sqlite3_stmt *st = cst ? store_db_stmt(db,
					       "SELECT name, etag, modseq, length(data), 0"
					       " FROM contacts WHERE book_id = ?1 ORDER BY name",
					       err, errsz)
			       : NULL;
	if (st != NULL)
		sqlite3_bind_int64(st, 1, book_id);
	int rc = st ? fetch_all(db, cst, st, (void **)out, sizeof **out, read_info, n, "contacts",
				err, errsz)
		    : -1;
	return store_db_end(db, rc, err, errsz);
}

int store_contacts_changes(struct store_account *a, int64_t book_id, uint64_t since,
			   struct store_contact_info **out, size_t *n, uint64_t *now, char *err,
			   size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	struct store_book b;
	int rc = book_by_id(db, book_id, &b, err, errsz);
	if (rc == 0 || (rc == 1 && since != 0 && (since < b.floor || since > b.modseq)))
		return store_db_end(db, -2, err, errsz);
	if (rc < 0)
		return store_db_end(db, -1, err, errsz);
	*now = b.modseq;
	sqlite3_stmt *cst = store_db_stmt(
	    db,
	    "SELECT (SELECT COUNT(*) FROM contacts WHERE book_id = ?1 AND modseq > ?2)"
	    " + (SELECT COUNT(*) FROM contact_tombstones WHERE book_id = ?1 AND modseq > ?2)",
	    err, errsz);
	if (cst != NULL) {
		sqlite3_bind_int64(cst, 1, book_id);
		sqlite3_bind_int64(cst, 2, (int64_t)since);
	}
	sqlite3_stmt *st =
	    cst ? store_db_stmt(db,
				"SELECT name, etag, modseq, length(data), 0 FROM contacts"
				" WHERE book_id = ?1 AND modseq > ?2"
				" UNION ALL SELECT name, '', modseq, 0, 1 FROM contact_tombstones"
				" WHERE book_id = ?1 AND modseq > ?2 AND ?2 > 0"
				" ORDER BY 3",
				err, errsz)
		: NULL;
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, book_id);
		sqlite3_bind_int64(st, 2, (int64_t)since);
	}
	rc = st ? fetch_all(db, cst, st, (void **)out, sizeof **out, read_info, n, "changes", err,
			    errsz)
		: -1;
	return store_db_end(db, rc, err, errsz);
}

int store_contacts_get(struct store_account *a, int64_t book_id, const char *name,
		       struct store_contact_info *info, struct buf *data, char *err,
		       size_t errsz)
{
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT name, etag, modseq, length(data), 0, data"
					 " FROM contacts WHERE book_id = ?1 AND name = ?2",
					 err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	sqlite3_bind_int64(st, 1, book_id);
	store_db_bind_text(st, 2, name);
	int rc = 0, r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		read_info(st, info);
		rc = 1;
		if (data != NULL) {
			const void *p = sqlite3_column_blob(st, 5);
			size_t len = (size_t)sqlite3_column_bytes(st, 5);
			if (len > 0 && buf_append(data, p, len) < 0) {
				store_err(err, errsz, "contact larger than the buffer");
				rc = -1;
			}
		}
	} else if (r != SQLITE_DONE) {
		store_db_error(db, "reading a contact", err, errsz);
		rc = -1;
	}
	sqlite3_reset(st);
	return store_db_end(db, rc, err, errsz);
}

int store_contacts_each_fields(struct store_account *a, int64_t book_id,
			       void (*cb)(void *ctx, const struct store_contact_info *info,
					  const char *const *fields),
			       void *ctx, char *err, size_t errsz)
{
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "SELECT name, etag, modseq, length(data), 0, fn, n, email, tel, org, kind,"
	    " categories, uid FROM contacts WHERE book_id = ?1 ORDER BY name",
	    err, errsz);
	if (st == NULL)
		return store_db_end(db, -1, err, errsz);
	sqlite3_bind_int64(st, 1, book_id);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_contact_info info;
		read_info(st, &info);
		const char *fields[STORE_CONTACT_NFIELDS];
		for (int i = 0; i < STORE_CONTACT_NFIELDS; i++) {
			const unsigned char *t = sqlite3_column_text(st, 5 + i);
			fields[i] = t ? (const char *)t : "";
		}
		cb(ctx, &info, fields);
	}
	int rc = 0;
	if (r != SQLITE_DONE) {
		store_db_error(db, "reading contacts", err, errsz);
		rc = -1;
	}
	sqlite3_reset(st);
	return store_db_end(db, rc, err, errsz);
}

/* The fields of a parsed vCard into f[STORE_CONTACT_NFIELDS] (bufs
 * NUL-terminated).  0, or -1 with err (no UID, two UIDs, too long). */
static int extract(const struct vcard *v, struct buf *f, char *err, size_t errsz)
{
	static const struct {
		const char *prop;
		enum store_contact_field field;
		char comp, list;
	} map[] = {
	    {"FN", STORE_CONTACT_FN, '\0', '\0'},
	    {"N", STORE_CONTACT_N, ' ', ' '},
	    {"EMAIL", STORE_CONTACT_EMAIL, '\0', '\0'},
	    {"TEL", STORE_CONTACT_TEL, '\0', '\0'},
	    {"ORG", STORE_CONTACT_ORG, ' ', '\0'},
	    {"KIND", STORE_CONTACT_KIND, '\0', '\0'},
	    {"X-ADDRESSBOOKSERVER-KIND", STORE_CONTACT_KIND, '\0', '\0'},
	    {"CATEGORIES", STORE_CONTACT_CATEGORIES, '\0', '\n'},
	    {"UID", STORE_CONTACT_UID, '\0', '\0'},
	};
	size_t uids = 0;
	for (size_t i = 0; i < v->n_props; i++) {
		const struct vcard_prop *p = &v->props[i];
		for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
			if (strcmp(p->name, map[k].prop) != 0)
				continue;
			struct buf *b = &f[map[k].field];
			if (map[k].field == STORE_CONTACT_UID && ++uids > 1) {
				store_err(err, errsz, "line %zu: a second UID", p->line);
				return -1;
			}
			if (map[k].field == STORE_CONTACT_KIND && b->len > 0)
				break; /* one KIND */
			if (b->len > 0 && buf_putc(b, '\n') < 0)
				goto full;
			if (vcard_text(p->value, p->value_len, map[k].comp, map[k].list, b) < 0)
				goto full;
			break;
		}
	}
	if (f[STORE_CONTACT_UID].len == 0) {
		store_err(err, errsz, "no UID (CardDAV needs one in every vCard)");
		return -1;
	}
	if (f[STORE_CONTACT_UID].len > STORE_CONTACT_UID_MAX) {
		store_err(err, errsz, "UID longer than %d bytes", STORE_CONTACT_UID_MAX);
		return -1;
	}
	struct buf *k = &f[STORE_CONTACT_KIND];
	if (k->len == 0)
		buf_puts(k, "individual");
	for (size_t i = 0; i < k->len; i++)
		if (k->data[i] >= 'A' && k->data[i] <= 'Z')
			k->data[i] = (char)(k->data[i] - 'A' + 'a');
	return 0;
full:
	store_err(err, errsz, "fields too long");
	return -1;
}

static void etag_of(const char *data, size_t len, char out[STORE_CONTACT_ETAG_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (size_t i = 0; i < STORE_CONTACT_ETAG_LEN / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Inside the transaction: 1 if cond holds for the current state (found,
 * cur), else 0. */
static bool cond_holds(const struct store_contact_cond *cond, bool found,
		       const struct store_contact_info *cur)
{
	if (cond == NULL)
		return true;
	if (cond->if_none_match && found)
		return false;
	if (cond->if_match != NULL) {
		if (!found)
			return false;
		if (strcmp(cond->if_match, "*") != 0 && strcmp(cond->if_match, cur->etag) != 0)
			return false;
	}
	return true;
}

/* The current row of name in the transaction: 1 (cur, *uid filled), 0, -1. */
static int current(struct store_db *db, int64_t book_id, const char *name,
		   struct store_contact_info *cur, char uid[STORE_CONTACT_UID_MAX + 1], char *err,
		   size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(db,
					 "SELECT name, etag, modseq, length(data), 0, uid"
					 " FROM contacts WHERE book_id = ?1 AND name = ?2",
					 err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, book_id);
	store_db_bind_text(st, 2, name);
	int rc = 0, r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		read_info(st, cur);
		if (uid != NULL)
			store_db_column_text(st, 5, uid, STORE_CONTACT_UID_MAX + 1);
		rc = 1;
	} else if (r != SQLITE_DONE) {
		store_db_error(db, "reading a contact", err, errsz);
		rc = -1;
	}
	sqlite3_reset(st);
	return rc;
}

static int forget_tombstone(struct store_db *db, int64_t book_id, const char *name, char *err,
			    size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    db, "DELETE FROM contact_tombstones WHERE book_id = ?1 AND name = ?2", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, book_id);
	store_db_bind_text(st, 2, name);
	return store_db_run(db, st, err, errsz);
}

static int put_row(struct store_db *db, int64_t book_id, const char *name, const char *data,
		   size_t len, const char *etag, uint64_t modseq, struct buf *f, char *err,
		   size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    db,
	    "INSERT INTO contacts (book_id, name, uid, etag, modseq, data, fn, n, email, tel,"
	    " org, kind, categories) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
	    " ?13) ON CONFLICT (book_id, name) DO UPDATE SET uid = ?3, etag = ?4, modseq = ?5,"
	    " data = ?6, fn = ?7, n = ?8, email = ?9, tel = ?10, org = ?11, kind = ?12,"
	    " categories = ?13",
	    err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, book_id);
	store_db_bind_text(st, 2, name);
	store_db_bind_text(st, 3, buf_cstr(&f[STORE_CONTACT_UID]));
	store_db_bind_text(st, 4, etag);
	sqlite3_bind_int64(st, 5, (int64_t)modseq);
	sqlite3_bind_blob(st, 6, len ? data : "", (int)len, SQLITE_STATIC);
	static const enum store_contact_field cols[] = {
	    STORE_CONTACT_FN,  STORE_CONTACT_N,    STORE_CONTACT_EMAIL,     STORE_CONTACT_TEL,
	    STORE_CONTACT_ORG, STORE_CONTACT_KIND, STORE_CONTACT_CATEGORIES};
	for (int i = 0; i < 7; i++)
		store_db_bind_text(st, 7 + i, buf_cstr(&f[cols[i]]));
	return store_db_run(db, st, err, errsz);
}

int store_contacts_put(struct store_account *a, int64_t book_id, const char *name,
		       const char *data, size_t len, const struct store_contact_cond *cond,
		       struct store_contact_info *info, char *err, size_t errsz)
{
	if (!store_contacts_name_ok(name)) {
		store_err(err, errsz, "invalid resource name");
		return STORE_CONTACT_PUT_INVALID;
	}
	if (len > STORE_CONTACT_MAX_SIZE) {
		store_err(err, errsz, "larger than %zu bytes", STORE_CONTACT_MAX_SIZE);
		return STORE_CONTACT_PUT_TOO_BIG;
	}
	struct vcard_limits lim = VCARD_LIMITS_DEFAULT;
	lim.max_size = STORE_CONTACT_MAX_SIZE;
	struct vcard v;
	enum vcard_error ve = vcard_parse(data, len, &lim, &v, err, errsz);
	if (ve != VCARD_OK)
		return ve == VCARD_ERR_SIZE ? STORE_CONTACT_PUT_TOO_BIG : STORE_CONTACT_PUT_INVALID;
	struct buf f[STORE_CONTACT_NFIELDS];
	for (int i = 0; i < STORE_CONTACT_NFIELDS; i++)
		buf_init(&f[i], STORE_CONTACT_MAX_SIZE + 1);
	int rc = extract(&v, f, err, errsz) < 0 ? STORE_CONTACT_PUT_INVALID : 0;
	vcard_free(&v);
	char etag[STORE_CONTACT_ETAG_LEN + 1];
	etag_of(data, len, etag);
	struct store_db *db = rc == 0 ? begin(a, err, errsz) : NULL;
	if (rc == 0 && db == NULL)
		rc = STORE_CONTACT_PUT_ERROR;
	if (rc != 0)
		goto out;
	struct store_book b;
	struct store_contact_info cur, other;
	char uid[STORE_CONTACT_UID_MAX + 1] = "";
	int found = 0;
	int r = book_by_id(db, book_id, &b, err, errsz);
	if (r <= 0) {
		rc = r < 0 ? STORE_CONTACT_PUT_ERROR : STORE_CONTACT_PUT_NO_BOOK;
		goto done;
	}
	found = current(db, book_id, name, &cur, uid, err, errsz);
	if (found < 0) {
		rc = STORE_CONTACT_PUT_ERROR;
		goto done;
	}
	if (!cond_holds(cond, found, &cur)) {
		rc = STORE_CONTACT_PUT_PRECONDITION;
		goto done;
	}
	if (found && strcmp(uid, buf_cstr(&f[STORE_CONTACT_UID])) != 0) {
		rc = STORE_CONTACT_PUT_UID_CHANGED;
		goto done;
	}
	/* Another resource of the book with this UID? */
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT name FROM contacts WHERE book_id = ?1 AND uid = ?2 AND name <> ?3", err,
	    errsz);
	if (st == NULL) {
		rc = STORE_CONTACT_PUT_ERROR;
		goto done;
	}
	sqlite3_bind_int64(st, 1, book_id);
	store_db_bind_text(st, 2, buf_cstr(&f[STORE_CONTACT_UID]));
	store_db_bind_text(st, 3, name);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		store_db_column_text(st, 0, other.name, sizeof other.name);
	sqlite3_reset(st);
	if (r == SQLITE_ROW) {
		if (info != NULL)
			snprintf(info->name, sizeof info->name, "%s", other.name);
		rc = STORE_CONTACT_PUT_UID_CONFLICT;
		goto done;
	}
	uint64_t modseq;
	if (store_account_next_modseq(db, &modseq, err, errsz) < 0 ||
	    put_row(db, book_id, name, data, len, etag, modseq, f, err, errsz) < 0 ||
	    forget_tombstone(db, book_id, name, err, errsz) < 0 ||
	    set_book_modseq(db, book_id, modseq, err, errsz) < 0) {
		rc = STORE_CONTACT_PUT_ERROR;
		goto done;
	}
	rc = found ? STORE_CONTACT_PUT_REPLACED : STORE_CONTACT_PUT_CREATED;
	if (info != NULL) {
		snprintf(info->name, sizeof info->name, "%s", name);
		memcpy(info->etag, etag, sizeof etag);
		info->modseq = modseq;
		info->size = len;
		info->deleted = false;
	}
done:
	if (rc == STORE_CONTACT_PUT_ERROR)
		store_db_rollback(db);
	else if (store_db_commit(db, err, errsz) < 0)
		rc = STORE_CONTACT_PUT_ERROR;
out:
	for (int i = 0; i < STORE_CONTACT_NFIELDS; i++)
		buf_free(&f[i]);
	return rc;
}

/* The bound in force (store_contacts_set_tombstones_max). */
static size_t tombstones_max = STORE_CONTACT_TOMBSTONES_MAX;

void store_contacts_set_tombstones_max(size_t n)
{
	tombstones_max = n >= 4 ? n : STORE_CONTACT_TOMBSTONES_MAX;
}

/* Keeps at most tombstones_max tombstones in a book: drops the oldest
 * quarter and raises the floor to the last dropped. */
static int trim_tombstones(struct store_db *db, int64_t book_id, char *err, size_t errsz)
{
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT COUNT(*) FROM contact_tombstones WHERE book_id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, book_id);
	int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (n <= (int64_t)tombstones_max)
		return 0;
	int64_t drop = n - (int64_t)(tombstones_max * 3 / 4);
	st = store_db_stmt(db,
			   "SELECT modseq FROM contact_tombstones WHERE book_id = ?1"
			   " ORDER BY modseq LIMIT 1 OFFSET ?2",
			   err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, book_id);
	sqlite3_bind_int64(st, 2, drop - 1);
	int64_t floor = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	st = store_db_stmt(db, "DELETE FROM contact_tombstones WHERE book_id = ?1 AND modseq <= ?2",
			   err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, book_id);
	sqlite3_bind_int64(st, 2, floor);
	if (store_db_run(db, st, err, errsz) < 0)
		return -1;
	st = store_db_stmt(db, "UPDATE contact_books SET floor = ?2 WHERE id = ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, book_id);
	sqlite3_bind_int64(st, 2, floor);
	return store_db_run(db, st, err, errsz);
}

int store_contacts_delete(struct store_account *a, int64_t book_id, const char *name,
			  const struct store_contact_cond *cond, char *err, size_t errsz)
{
	struct store_db *db = begin(a, err, errsz);
	if (db == NULL)
		return -1;
	struct store_contact_info cur;
	int rc = current(db, book_id, name, &cur, NULL, err, errsz);
	if (rc == 1 && cond != NULL && cond->if_match != NULL && !cond_holds(cond, true, &cur))
		rc = -2;
	if (rc != 1)
		return store_db_end(db, rc, err, errsz);
	uint64_t modseq;
	sqlite3_stmt *del = NULL, *tomb = NULL;
	if (store_account_next_modseq(db, &modseq, err, errsz) == 0)
		del = store_db_stmt(db, "DELETE FROM contacts WHERE book_id = ?1 AND name = ?2", err,
				    errsz);
	if (del != NULL) {
		sqlite3_bind_int64(del, 1, book_id);
		store_db_bind_text(del, 2, name);
		if (store_db_run(db, del, err, errsz) == 0)
			tomb = store_db_stmt(db,
					     "INSERT INTO contact_tombstones (book_id, name, modseq)"
					     " VALUES (?1, ?2, ?3) ON CONFLICT DO UPDATE SET"
					     " modseq = ?3",
					     err, errsz);
	}
	if (tomb == NULL)
		return store_db_end(db, -1, err, errsz);
	sqlite3_bind_int64(tomb, 1, book_id);
	store_db_bind_text(tomb, 2, name);
	sqlite3_bind_int64(tomb, 3, (int64_t)modseq);
	if (store_db_run(db, tomb, err, errsz) < 0 ||
	    set_book_modseq(db, book_id, modseq, err, errsz) < 0 ||
	    trim_tombstones(db, book_id, err, errsz) < 0)
		return store_db_end(db, -1, err, errsz);
	return store_db_end(db, 1, err, errsz);
}
