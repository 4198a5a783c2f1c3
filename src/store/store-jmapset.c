/*
 * store-jmapset.c - what JMAP's Email/import needs of the store
 * (store.h, "JMAP set"): a message from bytes into several mailboxes at
 * once, with IMAP's APPEND and COPY, so IMAP sees it as any append.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "store.h"

int store_jmapset_import(struct store_account *a, const char *data, size_t len,
			 const int64_t *mailbox_ids, size_t n, unsigned flags, const char *keywords,
			 time_t internaldate, char file_id[25], char *err, size_t errsz)
{
	char name[512], path[PATH_MAX];
	if (n == 0) {
		store_err(err, errsz, "no mailbox");
		return -1;
	}
	int r = store_imap_mailbox_by_id(a, mailbox_ids[0], name);
	if (r <= 0) {
		store_err(err, errsz, r == 0 ? "no such mailbox" : "looking up a mailbox failed");
		return r == 0 ? -3 : -1;
	}
	int fd = store_spool_write(a->s, data, len, NULL, 0, path, sizeof path);
	if (fd < 0) {
		store_err(err, errsz, "spool: %s", strerror(errno));
		return -1;
	}
	store_message_file_id(path, file_id);
	struct store_imap_append_msg m = {path, flags, keywords, internaldate};
	uint32_t uid = 0;
	r = store_imap_append(a, name, &m, 1, NULL, &uid, err, errsz);
	store_spool_drop(&fd, path);
	if (r < 0)
		return r;
	/* the other mailboxes get copies of the file (COPY); all or none */
	for (size_t i = 1; i < n; i++) {
		uint32_t nu = 0;
		r = store_imap_copy(a, mailbox_ids[0], &uid, 1, mailbox_ids[i], false, &nu, NULL,
				    err, errsz);
		if (r < 0) {
			/* undo: the file is new, so every copy of it is ours */
			char e2[256];
			struct store_jmap_copy *c = NULL;
			size_t nc = 0;
			if (store_jmap_email_copies(a, file_id, &c, &nc, e2, sizeof e2) > 0)
				for (size_t j = 0; j < nc; j++) {
					bool done;
					(void)store_imap_expunge(a, c[j].mailbox_id, &c[j].uid, 1,
								 &done, NULL, e2, sizeof e2);
				}
			free(c);
			return r;
		}
	}
	return 0;
}
