/*
 * store-jmapget.c - what JMAP's Email/get needs of the store beyond
 * store-jmap.c: the list of an account's Emails (message files).
 */
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "xalloc.h"

int store_jmapget_email_ids(struct store_account *a, size_t max, char (**out)[25], size_t *n,
			    char *err, size_t errsz)
{
	*out = NULL;
	*n = 0;
	struct store_db *db = store_account_db(a, err, errsz);
	if (db == NULL)
		return -1;
	sqlite3_stmt *st = store_db_stmt(
	    db, "SELECT DISTINCT file_id FROM messages ORDER BY file_id LIMIT ?1", err, errsz);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max + 1);
	*out = xcalloc(max + 2, sizeof **out);
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW && *n <= max) {
		const char *f = (const char *)sqlite3_column_text(st, 0);
		if (f != NULL && strlen(f) == 24)
			memcpy((*out)[(*n)++], f, 25);
	}
	sqlite3_reset(st);
	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		store_db_error(db, "email ids", err, errsz);
		free(*out);
		*out = NULL;
		*n = 0;
		return -1;
	}
	return 0;
}
