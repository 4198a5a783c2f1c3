/*
 * cli-contacts.c - `tern contacts list|export|import` (docs/contacts.md
 * "Commands"): a user's address books (store-contacts.c) listed, written
 * out as vCard or as CSV with the columns of Google Contacts' CSV, and
 * filled from a file of vCards.  Arguments are checked first (exit 2),
 * then what must exist (exit 1).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "cli-int.h"
#include "config.h"
#include "store-contacts.h"
#include "store.h"
#include "vcard.h"
#include "xalloc.h"

static int contacts_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_contacts_command = {
	"contacts",
	"list, export or import a user's address book contacts",
	"usage: tern [-c FILE] contacts list USER\n"
	"       tern [-c FILE] contacts export USER [--book BOOK] [--format vcard|csv]\n"
	"       tern [-c FILE] contacts import USER FILE [--book BOOK]\n"
	"\n"
	"  list     print \"BOOK<tab>NAME<tab>FN<tab>EMAILS\" lines, one per contact\n"
	"           (EMAILS joined by \", \")\n"
	"  export   write the contacts of BOOK (default: every book) to stdout:\n"
	"           vcard (default; each as stored) or csv (the columns of Google\n"
	"           Contacts' CSV, docs/contacts.md)\n"
	"  import   store every vCard of FILE (\"-\": stdin) in BOOK (default:\n"
	"           contacts); a vCard with the UID of one there replaces it; a\n"
	"           vCard without UID gets one; a bad one is said and skipped\n"
	"           (exit 1)\n",
	contacts_run,
};

/* The largest import file read. */
#define IMPORT_MAX ((size_t)256 << 20)

/* The account of address (printed errors); NULL with *rc. */
static struct store_account *open_user(struct store *s, const char *what, const char *address,
				       int *rc)
{
	struct store_account *a = NULL;
	int r = store_account_open(s, address, &a);
	if (r <= 0) {
		*rc = r < 0 ? cli_fail(what, "%s: cannot open the account", address)
			    : cli_fail(what, "no such user %s", address);
		return NULL;
	}
	return a;
}

/* Each book (or the one named) with a callback per contact's bytes. */
typedef int (*contact_fn)(void *ctx, const struct store_book *b,
			  const struct store_contact_info *c, const char *data, size_t len);

static int each_contact(struct store_account *a, const char *what, const char *book,
			contact_fn fn, void *ctx)
{
	char err[512];
	struct store_book *books = NULL;
	size_t nb = 0;
	if (store_contacts_books(a, &books, &nb, err, sizeof err) < 0)
		return cli_fail(what, "%s", err);
	int rc = CLI_OK;
	bool found = book == NULL;
	for (size_t i = 0; i < nb && rc == CLI_OK; i++) {
		if (book != NULL && strcmp(books[i].name, book) != 0)
			continue;
		found = true;
		struct store_contact_info *cs = NULL;
		size_t nc = 0;
		if (store_contacts_list(a, books[i].id, &cs, &nc, err, sizeof err) < 0) {
			rc = cli_fail(what, "%s", err);
			break;
		}
		for (size_t k = 0; k < nc && rc == CLI_OK; k++) {
			struct buf data = BUF_INIT;
			struct store_contact_info info;
			int r = store_contacts_get(a, books[i].id, cs[k].name, &info, &data, err,
						   sizeof err);
			if (r < 0)
				rc = cli_fail(what, "%s", err);
			else if (r == 1)
				rc = fn(ctx, &books[i], &info, data.data ? data.data : "", data.len);
			buf_free(&data);
		}
		free(cs);
	}
	free(books);
	if (rc == CLI_OK && !found)
		rc = cli_fail(what, "no address book %s", book);
	return rc;
}

/* The decoded text of every property name of v joined by sep into b. */
static void joined(const struct vcard *v, const char *name, const char *sep, struct buf *b)
{
	size_t from = 0;
	const struct vcard_prop *p;
	buf_reset(b);
	while ((p = vcard_find(v, name, &from)) != NULL) {
		if (b->len > 0)
			buf_puts(b, sep);
		vcard_text(p->value, p->value_len, ' ', ' ', b);
	}
}

static int list_one(void *ctx, const struct store_book *b, const struct store_contact_info *c,
		    const char *data, size_t len)
{
	struct vcard v;
	char err[256];
	struct buf fn = BUF_INIT, em = BUF_INIT;
	if (vcard_parse(data, len, NULL, &v, err, sizeof err) == VCARD_OK) {
		joined(&v, "FN", " ", &fn);
		joined(&v, "EMAIL", ", ", &em);
		vcard_free(&v);
	}
	cli_put_sanitized(stdout, b->name);
	putchar('\t');
	cli_put_sanitized(stdout, c->name);
	putchar('\t');
	cli_put_sanitized(stdout, buf_cstr(&fn));
	putchar('\t');
	cli_put_sanitized(stdout, buf_cstr(&em));
	putchar('\n');
	buf_free(&fn);
	buf_free(&em);
	return CLI_OK;
}

static int export_vcard(void *ctx, const struct store_book *b, const struct store_contact_info *c,
			const char *data, size_t len)
{
	fwrite(data, 1, len, stdout);
	if (len > 0 && data[len - 1] != '\n')
		fputs("\r\n", stdout);
	return CLI_OK;
}

/* ----------------------------------------------------------------- CSV */

/* Google Contacts' CSV (its own export and import): these columns. */
#define CSV_EMAILS 3
#define CSV_PHONES 3
static const char csv_header[] =
    "First Name,Middle Name,Last Name,Name Prefix,Name Suffix,Nickname,File As,"
    "Organization Name,Organization Title,Birthday,Notes,Labels,"
    "E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,"
    "E-mail 3 - Label,E-mail 3 - Value,"
    "Phone 1 - Label,Phone 1 - Value,Phone 2 - Label,Phone 2 - Value,"
    "Phone 3 - Label,Phone 3 - Value\r\n";

/* One CSV field (RFC 4180: quoted when it holds a comma, quote or line
 * break, quotes doubled), then sep. */
static void csv_field(const char *s, char sep)
{
	if (strpbrk(s, ",\"\r\n") != NULL) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else {
		fputs(s, stdout);
	}
	putchar(sep);
}

/* Component i of a structured value (N, ORG) decoded into b. */
static void component(const struct vcard_prop *p, size_t i, struct buf *b)
{
	buf_reset(b);
	if (p == NULL)
		return;
	const char *s = p->value, *end = p->value + p->value_len;
	for (size_t k = 0; k < i && s < end; s++) {
		if (*s == '\\' && s + 1 < end)
			s++;
		else if (*s == ';')
			k++;
	}
	const char *e = s;
	while (e < end && *e != ';') {
		if (*e == '\\' && e + 1 < end)
			e++;
		e++;
	}
	if (s <= end)
		vcard_text(s, (size_t)(e - s), '\0', '\0', b);
}

/* A Google label from a TYPE parameter ("work", "home", "cell"...). */
static void label_of(const struct vcard_prop *p, struct buf *b)
{
	buf_reset(b);
	const char *t = vcard_param(p, "TYPE");
	if (t == NULL)
		return;
	for (const char *s = t; *s; s++) {
		if (*s == ',')
			break;
		buf_putc(b, *s);
	}
	if (b->len > 0 && b->data[0] >= 'a' && b->data[0] <= 'z')
		b->data[0] = (char)(b->data[0] - 'a' + 'A');
}

static int export_csv(void *ctx, const struct store_book *b, const struct store_contact_info *c,
		      const char *data, size_t len)
{
	struct vcard v;
	char err[256];
	if (vcard_parse(data, len, NULL, &v, err, sizeof err) != VCARD_OK)
		return CLI_OK; /* stored: it parsed once; nothing to say here */
	struct buf f = BUF_INIT;
	const struct vcard_prop *n = vcard_find(&v, "N", NULL);
	static const size_t ncomp[] = {1, 2, 0, 3, 4}; /* given, additional, family, ... */
	for (size_t i = 0; i < 5; i++) {
		component(n, ncomp[i], &f);
		csv_field(buf_cstr(&f), ',');
	}
	joined(&v, "NICKNAME", " ", &f);
	csv_field(buf_cstr(&f), ',');
	joined(&v, "FN", " ", &f);
	csv_field(buf_cstr(&f), ',');
	component(vcard_find(&v, "ORG", NULL), 0, &f);
	csv_field(buf_cstr(&f), ',');
	joined(&v, "TITLE", " ", &f);
	csv_field(buf_cstr(&f), ',');
	joined(&v, "BDAY", " ", &f);
	csv_field(buf_cstr(&f), ',');
	joined(&v, "NOTE", "\n", &f);
	csv_field(buf_cstr(&f), ',');
	/* Labels: the categories, " ::: "-separated as Google writes them. */
	buf_reset(&f);
	size_t from = 0;
	const struct vcard_prop *p;
	while ((p = vcard_find(&v, "CATEGORIES", &from)) != NULL) {
		struct buf one = BUF_INIT;
		vcard_text(p->value, p->value_len, '\0', '\n', &one);
		for (size_t i = 0; i < one.len; i++) {
			if (one.data[i] == '\n')
				buf_puts(&f, " ::: ");
			else
				buf_putc(&f, one.data[i]);
		}
		buf_free(&one);
	}
	csv_field(buf_cstr(&f), ',');
	struct buf label = BUF_INIT;
	static const char *const kinds[] = {"EMAIL", "TEL"};
	for (size_t k = 0; k < 2; k++) {
		from = 0;
		size_t max = k == 0 ? CSV_EMAILS : CSV_PHONES;
		for (size_t i = 0; i < max; i++) {
			p = vcard_find(&v, kinds[k], &from);
			buf_reset(&f);
			buf_reset(&label);
			if (p != NULL) {
				label_of(p, &label);
				vcard_text(p->value, p->value_len, '\0', '\0', &f);
			}
			csv_field(buf_cstr(&label), ',');
			csv_field(buf_cstr(&f), k == 1 && i + 1 == max ? '\r' : ',');
		}
	}
	putchar('\n');
	buf_free(&label);
	buf_free(&f);
	vcard_free(&v);
	return CLI_OK;
}

/* -------------------------------------------------------------- import */

/* Reads path ("-": stdin) whole into b; 0 or -1 (errno). */
static int read_file(const char *path, struct buf *b)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL)
		return -1;
	char chunk[65536];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (buf_append(b, chunk, n) < 0) {
			errno = EFBIG;
			rc = -1;
			break;
		}
	if (ferror(f))
		rc = -1;
	if (f != stdin)
		fclose(f);
	return rc;
}

/* True if the line at p (to end) is "BEGIN:VCARD" / "END:VCARD". */
static bool line_is(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word), len = (size_t)(end - p);
	while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' '))
		len--;
	return len == n && strncasecmp(p, word, n) == 0;
}

/* A resource name for uid: "UID.vcf" when that is a valid name, else
 * the hex of its SHA-256 (first 128 bits) + ".vcf". */
static void name_for(const char *uid, char out[STORE_CONTACT_NAME_MAX + 1])
{
	bool plain = strlen(uid) <= 200;
	for (const char *s = uid; *s && plain; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("-_.@", *s)))
			plain = false;
	if (plain) {
		snprintf(out, STORE_CONTACT_NAME_MAX + 1, "%s.vcf", uid);
		return;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_Digest(uid, strlen(uid), md, &mdlen, EVP_sha256(), NULL);
	for (size_t i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	snprintf(out + 32, STORE_CONTACT_NAME_MAX + 1 - 32, ".vcf");
}

struct import_counts {
	size_t created, replaced, refused;
};

/* Imports one card data[0..len) (its first line is line). */
static void import_one(struct store_account *a, const char *what, int64_t book,
		       const char *data, size_t len, size_t line, struct import_counts *n)
{
	char err[512];
	struct vcard v;
	struct buf card = BUF_INIT, uid = BUF_INIT;
	buf_append(&card, data, len);
	if (vcard_parse(data, len, NULL, &v, err, sizeof err) != VCARD_OK) {
		cli_fail(what, "the vCard at line %zu: %s; skipped", line, err);
		n->refused++;
		goto out;
	}
	const struct vcard_prop *u = vcard_find(&v, "UID", NULL);
	if (u != NULL) {
		vcard_text(u->value, u->value_len, '\0', '\0', &uid);
	} else {
		/* A UID from the card's bytes: importing it again finds it. */
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
		buf_puts(&uid, "urn:uuid:");
		for (size_t i = 0; i < 16; i++)
			buf_printf(&uid, "%02x%s", md[i],
				   i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
		/* Before the END line. */
		size_t end = card.len;
		while (end > 0 && (card.data[end - 1] == '\n' || card.data[end - 1] == '\r'))
			end--;
		while (end > 0 && card.data[end - 1] != '\n')
			end--;
		struct buf out = BUF_INIT;
		buf_append(&out, card.data, end);
		buf_printf(&out, "UID:%s\r\n", buf_cstr(&uid));
		buf_append(&out, card.data + end, card.len - end);
		buf_free(&card);
		card = out;
	}
	vcard_free(&v);
	char name[STORE_CONTACT_NAME_MAX + 1];
	name_for(buf_cstr(&uid), name);
	struct store_contact_info info;
	int r = store_contacts_put(a, book, name, card.data, card.len, NULL, &info, err, sizeof err);
	if (r == STORE_CONTACT_PUT_UID_CONFLICT) {
		snprintf(name, sizeof name, "%s", info.name);
		r = store_contacts_put(a, book, name, card.data, card.len, NULL, &info, err,
				       sizeof err);
	}
	if (r == STORE_CONTACT_PUT_CREATED)
		n->created++;
	else if (r == STORE_CONTACT_PUT_REPLACED)
		n->replaced++;
	else {
		cli_fail(what, "the vCard at line %zu: %s; skipped", line,
			 r == STORE_CONTACT_PUT_UID_CHANGED ? "its name is taken by another UID"
							     : err);
		n->refused++;
	}
out:
	buf_free(&card);
	buf_free(&uid);
}

static int import_file(struct store_account *a, const char *what, int64_t book,
		       const struct buf *f, struct import_counts *n)
{
	const char *p = f->data ? f->data : "", *end = p + f->len;
	const char *start = NULL;
	size_t line = 0, start_line = 0;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *le = lf ? lf : end;
		line++;
		if (start == NULL && line_is(p, le, "BEGIN:VCARD")) {
			start = p;
			start_line = line;
		} else if (start != NULL && line_is(p, le, "END:VCARD")) {
			const char *stop = lf ? lf + 1 : end;
			import_one(a, what, book, start, (size_t)(stop - start), start_line, n);
			start = NULL;
		}
		p = lf ? lf + 1 : end;
	}
	if (start != NULL) {
		cli_fail(what, "the vCard at line %zu has no END:VCARD; skipped", start_line);
		n->refused++;
	}
	return CLI_OK;
}

/* --------------------------------------------------------------- main */

static int contacts_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"list", "export", "import", NULL};
	const struct cli_command *cmd = &cli_contacts_command;
	const char *sub;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return rc;
	const char *book = NULL, *format = NULL;
	struct cli_option opts[] = {{"--book", &book}, {"--format", &format}};
	char *pos[2];
	int n_pos;
	bool is_import = strcmp(sub, "import") == 0, is_list = strcmp(sub, "list") == 0;
	rc = cli_parse_sub(cmd, what, argc, argv, opts, is_list ? 0 : is_import ? 1 : 2, pos,
			   is_import ? 2 : 1, is_import ? 2 : 1, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	if (format != NULL && strcmp(format, "vcard") != 0 && strcmp(format, "csv") != 0)
		return cli_usage_error(cmd, what, "--format is vcard or csv, not %s", format);
	if (book != NULL && !store_contacts_book_name_ok(book))
		return cli_usage_error(cmd, what, "invalid address book name %s", book);
	char address[256];
	if ((rc = cli_check_address(cmd, what, pos[0], false, address)) != 0)
		return rc;
	/* The file is read with the caller's rights, before the store is
	 * opened (which may switch to the workers' user). */
	struct buf f = BUF_INIT;
	buf_init(&f, IMPORT_MAX);
	if (is_import && read_file(pos[1], &f) < 0) {
		rc = cli_fail(what, "%s: %s", pos[1], strerror(errno));
		buf_free(&f);
		return rc;
	}
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL) {
		buf_free(&f);
		return rc;
	}
	struct store_account *a = open_user(s, what, address, &rc);
	if (a != NULL && is_list) {
		rc = cli_finish_output(what, each_contact(a, what, NULL, list_one, NULL));
	} else if (a != NULL && !is_import) {
		bool csv = format != NULL && strcmp(format, "csv") == 0;
		if (csv)
			fputs(csv_header, stdout);
		rc = cli_finish_output(
		    what, each_contact(a, what, book, csv ? export_csv : export_vcard, NULL));
	} else if (a != NULL) {
		char err[512];
		struct store_book b;
		int r = store_contacts_book(a, book ? book : STORE_CONTACTS_DEFAULT, &b, err,
					    sizeof err);
		if (r < 0)
			rc = cli_fail(what, "%s", err);
		else if (r == 0)
			rc = cli_fail(what, "no address book %s", book);
		else {
			struct import_counts n = {0, 0, 0};
			import_file(a, what, b.id, &f, &n);
			printf("imported %zu, replaced %zu, refused %zu\n", n.created, n.replaced,
			       n.refused);
			rc = cli_finish_output(what, n.refused ? CLI_FAIL : CLI_OK);
		}
	}
	buf_free(&f);
	store_close(&s);
	config_free(&cfg);
	return rc;
}
