/*
 * test-store-contacts.c - unit tests for src/store/store-contacts.c: the
 * default books, bytes kept exactly, ETags, conditions, UID rules, the
 * searchable fields, changes with tombstones, the tombstone floor, book
 * creation and deletion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store-contacts.h"
#include "store.h"
#include "test.h"

static struct store *open_store(struct store_account **a)
{
	char dir[64], err[256];
	log_set_level(LOG_WARN);
	snprintf(dir, sizeof dir, "/tmp/tern-store-contacts-XXXXXX");
	if (mkdtemp(dir) == NULL)
		exit(2);
	struct store *s = store_open(dir, err, sizeof err);
	if (s == NULL)
		exit(2);
	CHECK_INT(store_domain_add(s, "example.test", err, sizeof err), 0);
	CHECK_INT(store_account_add(s, "u@example.test", "$6$x$y", NULL, err, sizeof err), 0);
	CHECK_INT(store_account_open(s, "u@example.test", a), 1);
	return s;
}

static const char card1[] = "BEGIN:VCARD\r\n"
			    "VERSION:4.0\r\n"
			    "UID:urn:uuid:0001\r\n"
			    "FN:Ann \\, Smith\r\n"
			    "N:Smith;Ann;;;\r\n"
			    "EMAIL;TYPE=work:ann@example.test\r\n"
			    "EMAIL:ann@home.test\r\n"
			    "TEL:+1 555\r\n"
			    "ORG:Acme;Sales\r\n"
			    "CATEGORIES:friends,work\r\n"
			    "X-ODD:kept\r\n"
			    "END:VCARD\r\n";

struct seen {
	int n;
	char fields[STORE_CONTACT_NFIELDS][128];
};

static void keep_fields(void *ctx, const struct store_contact_info *info,
			const char *const *fields)
{
	struct seen *s = ctx;
	s->n++;
	for (int i = 0; i < STORE_CONTACT_NFIELDS; i++)
		snprintf(s->fields[i], sizeof s->fields[i], "%s", fields[i]);
}

TEST(store_contacts_books_and_put)
{
	struct store_account *a;
	struct store *s = open_store(&a);
	char err[256];
	struct store_book *books;
	size_t n;
	CHECK_INT(store_contacts_books(a, &books, &n, err, sizeof err), 0);
	CHECK_INT(n, 2);
	CHECK_STR(books[0].name, "collected");
	CHECK_STR(books[0].displayname, "Collected");
	CHECK_STR(books[1].name, "contacts");
	CHECK_STR(books[1].displayname, "Contacts");
	int64_t book = books[1].id;
	uint64_t created = books[1].modseq;
	free(books);

	struct store_contact_info info;
	CHECK_INT(store_contacts_put(a, book, "ann.vcf", card1, strlen(card1), NULL, &info, err,
				     sizeof err),
		  STORE_CONTACT_PUT_CREATED);
	CHECK_INT(strlen(info.etag), 32);
	CHECK(info.modseq > created);
	char etag1[33];
	memcpy(etag1, info.etag, sizeof etag1);

	/* Byte-exact. */
	struct buf data = BUF_INIT;
	struct store_contact_info got;
	CHECK_INT(store_contacts_get(a, book, "ann.vcf", &got, &data, err, sizeof err), 1);
	CHECK_INT(data.len, strlen(card1));
	CHECK(memcmp(data.data, card1, data.len) == 0);
	CHECK_STR(got.etag, etag1);
	buf_free(&data);
	CHECK_INT(store_contacts_get(a, book, "nope.vcf", &got, NULL, err, sizeof err), 0);

	struct seen seen = {0};
	CHECK_INT(store_contacts_each_fields(a, book, keep_fields, &seen, err, sizeof err), 0);
	CHECK_INT(seen.n, 1);
	CHECK_STR(seen.fields[STORE_CONTACT_FN], "Ann , Smith");
	CHECK_STR(seen.fields[STORE_CONTACT_N], "Smith Ann");
	CHECK_STR(seen.fields[STORE_CONTACT_EMAIL], "ann@example.test\nann@home.test");
	CHECK_STR(seen.fields[STORE_CONTACT_TEL], "+1 555");
	CHECK_STR(seen.fields[STORE_CONTACT_ORG], "Acme Sales");
	CHECK_STR(seen.fields[STORE_CONTACT_KIND], "individual");
	CHECK_STR(seen.fields[STORE_CONTACT_CATEGORIES], "friends\nwork");
	CHECK_STR(seen.fields[STORE_CONTACT_UID], "urn:uuid:0001");

	/* Conditions. */
	struct store_contact_cond none_match = {NULL, true};
	CHECK_INT(store_contacts_put(a, book, "ann.vcf", card1, strlen(card1), &none_match, NULL,
				     err, sizeof err),
		  STORE_CONTACT_PUT_PRECONDITION);
	struct store_contact_cond wrong = {"0123", false};
	CHECK_INT(store_contacts_put(a, book, "ann.vcf", card1, strlen(card1), &wrong, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_PRECONDITION);
	CHECK_INT(store_contacts_delete(a, book, "ann.vcf", &wrong, err, sizeof err), -2);
	struct store_contact_cond any = {"*", false};
	CHECK_INT(store_contacts_put(a, book, "new.vcf", card1, strlen(card1), &any, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_PRECONDITION);
	/* The same UID under another name. */
	CHECK_INT(store_contacts_put(a, book, "dup.vcf", card1, strlen(card1), NULL, &info, err,
				     sizeof err),
		  STORE_CONTACT_PUT_UID_CONFLICT);
	CHECK_STR(info.name, "ann.vcf");
	/* A replacement with the right ETag; a new UID is refused. */
	static const char card2[] = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:urn:uuid:0001\r\nFN:Ann\r\n"
				    "N:Smith;Ann;;;\r\nKIND:Group\r\nEND:VCARD\r\n";
	struct store_contact_cond right = {etag1, false};
	CHECK_INT(store_contacts_put(a, book, "ann.vcf", card2, strlen(card2), &right, &info, err,
				     sizeof err),
		  STORE_CONTACT_PUT_REPLACED);
	CHECK(strcmp(info.etag, etag1) != 0);
	static const char card3[] = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:other\r\nFN:B\r\n"
				    "END:VCARD\r\n";
	CHECK_INT(store_contacts_put(a, book, "ann.vcf", card3, strlen(card3), NULL, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_UID_CHANGED);
	seen.n = 0;
	CHECK_INT(store_contacts_each_fields(a, book, keep_fields, &seen, err, sizeof err), 0);
	CHECK_STR(seen.fields[STORE_CONTACT_KIND], "group");
	CHECK_STR(seen.fields[STORE_CONTACT_EMAIL], "");

	/* Invalid data. */
	static const char nouid[] = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:B\r\nEND:VCARD\r\n";
	CHECK_INT(store_contacts_put(a, book, "b.vcf", nouid, strlen(nouid), NULL, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_INVALID);
	CHECK_STR(err, "no UID (CardDAV needs one in every vCard)");
	static const char bad[] = "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:\xff\r\nEND:VCARD\r\n";
	CHECK_INT(store_contacts_put(a, book, "b.vcf", bad, strlen(bad), NULL, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_INVALID);
	CHECK_STR(err, "line 3: invalid UTF-8");
	CHECK_INT(store_contacts_put(a, book, "../x", card3, strlen(card3), NULL, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_INVALID);
	char *big = malloc(STORE_CONTACT_MAX_SIZE + 1);
	memset(big, 'a', STORE_CONTACT_MAX_SIZE + 1);
	CHECK_INT(store_contacts_put(a, book, "big.vcf", big, STORE_CONTACT_MAX_SIZE + 1, NULL,
				     NULL, err, sizeof err),
		  STORE_CONTACT_PUT_TOO_BIG);
	free(big);
	CHECK_INT(store_contacts_put(a, 999, "x.vcf", card3, strlen(card3), NULL, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_NO_BOOK);
	store_close(&s);
}

TEST(store_contacts_changes_and_books)
{
	struct store_account *a;
	struct store *s = open_store(&a);
	char err[256];
	struct store_book b;
	CHECK_INT(store_contacts_book(a, "contacts", &b, err, sizeof err), 1);
	CHECK_INT(store_contacts_book(a, "nope", &b, err, sizeof err), 0);
	CHECK_INT(store_contacts_book_create(a, "work", "Work", "", &b, err, sizeof err), 1);
	CHECK_INT(store_contacts_book_create(a, "work", "Work", "", NULL, err, sizeof err), 0);
	CHECK_INT(store_contacts_book_create(a, ".x", "", "", NULL, err, sizeof err), -1);
	int64_t book = b.id;
	uint64_t t0 = b.modseq;
	char card[160];
	for (int i = 0; i < 3; i++) {
		snprintf(card, sizeof card,
			 "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u%d\r\nFN:P %d\r\nEND:VCARD\r\n", i, i);
		char name[16];
		snprintf(name, sizeof name, "%d.vcf", i);
		CHECK_INT(store_contacts_put(a, book, name, card, strlen(card), NULL, NULL, err,
					     sizeof err),
			  STORE_CONTACT_PUT_CREATED);
	}
	struct store_contact_info *c;
	size_t n;
	uint64_t t1;
	CHECK_INT(store_contacts_changes(a, book, 0, &c, &n, &t1, err, sizeof err), 0);
	CHECK_INT(n, 3);
	free(c);
	CHECK_INT(store_contacts_delete(a, book, "1.vcf", NULL, err, sizeof err), 1);
	CHECK_INT(store_contacts_delete(a, book, "1.vcf", NULL, err, sizeof err), 0);
	snprintf(card, sizeof card, "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u2\r\nFN:P two\r\nEND:VCARD\r\n");
	CHECK_INT(store_contacts_put(a, book, "2.vcf", card, strlen(card), NULL, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_REPLACED);
	uint64_t t2;
	CHECK_INT(store_contacts_changes(a, book, t1, &c, &n, &t2, err, sizeof err), 0);
	CHECK(t2 > t1);
	CHECK_INT(n, 2);
	CHECK_STR(c[0].name, "1.vcf");
	CHECK(c[0].deleted);
	CHECK_STR(c[1].name, "2.vcf");
	CHECK(!c[1].deleted);
	free(c);
	CHECK_INT(store_contacts_changes(a, book, t2, &c, &n, &t2, err, sizeof err), 0);
	CHECK_INT(n, 0);
	free(c);
	/* A token from the future, or of no book. */
	CHECK_INT(store_contacts_changes(a, book, t2 + 1, &c, &n, &t2, err, sizeof err), -2);
	CHECK_INT(store_contacts_changes(a, 999, 1, &c, &n, &t2, err, sizeof err), -2);
	/* The full list has no tombstone. */
	CHECK_INT(store_contacts_list(a, book, &c, &n, err, sizeof err), 0);
	CHECK_INT(n, 2);
	CHECK_STR(c[0].name, "0.vcf");
	CHECK_STR(c[1].name, "2.vcf");
	free(c);
	/* The name comes back: its tombstone goes. */
	snprintf(card, sizeof card, "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:u1\r\nFN:P 1\r\nEND:VCARD\r\n");
	CHECK_INT(store_contacts_put(a, book, "1.vcf", card, strlen(card), NULL, NULL, err,
				     sizeof err),
		  STORE_CONTACT_PUT_CREATED);
	CHECK_INT(store_contacts_changes(a, book, t0, &c, &n, &t2, err, sizeof err), 0);
	CHECK_INT(n, 3);
	for (size_t i = 0; i < n; i++)
		CHECK(!c[i].deleted);
	free(c);
	/* Defaults are never deleted; another book is, with its contacts. */
	CHECK_INT(store_contacts_book_delete(a, "contacts", err, sizeof err), -2);
	CHECK_INT(store_contacts_book_delete(a, "work", err, sizeof err), 1);
	CHECK_INT(store_contacts_book_delete(a, "work", err, sizeof err), 0);
	CHECK_INT(store_contacts_list(a, book, &c, &n, err, sizeof err), 0);
	CHECK_INT(n, 0);
	free(c);
	/* A new book of the same name is another book. */
	struct store_book b2;
	CHECK_INT(store_contacts_book_create(a, "work", "Work", "", &b2, err, sizeof err), 1);
	CHECK(b2.id != book);
	store_close(&s);
}

TEST(store_contacts_tombstone_floor)
{
	struct store_account *a;
	struct store *s = open_store(&a);
	char err[256];
	struct store_book b;
	CHECK_INT(store_contacts_book(a, "contacts", &b, err, sizeof err), 1);
	uint64_t first = 0, now = 0;
	store_contacts_set_tombstones_max(40);
	static const char card[] = "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:x\r\nFN:X\r\nEND:VCARD\r\n";
	for (int i = 0; i <= 40; i++) {
		char name[16];
		snprintf(name, sizeof name, "%d.vcf", i);
		CHECK_INT(store_contacts_put(a, b.id, name, card, strlen(card), NULL, NULL, err,
					     sizeof err),
			  STORE_CONTACT_PUT_CREATED);
		CHECK_INT(store_contacts_delete(a, b.id, name, NULL, err, sizeof err), 1);
		if (i == 0) {
			struct store_contact_info *c;
			size_t n;
			CHECK_INT(store_contacts_changes(a, b.id, 0, &c, &n, &first, err, sizeof err),
				  0);
			free(c);
		}
	}
	struct store_contact_info *c;
	size_t n;
	/* The oldest tombstones are gone: a token from then is refused. */
	CHECK_INT(store_contacts_changes(a, b.id, first, &c, &n, &now, err, sizeof err), -2);
	CHECK_INT(store_contacts_book(a, "contacts", &b, err, sizeof err), 1);
	CHECK(b.floor > first);
	CHECK_INT(store_contacts_changes(a, b.id, b.floor, &c, &n, &now, err, sizeof err), 0);
	CHECK_INT(n, 30);
	store_contacts_set_tombstones_max(0);
	free(c);
	store_close(&s);
}
