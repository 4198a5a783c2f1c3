/*
 * imap-spam.c - training the user's spam classifier from what they do in
 * IMAP (docs/spam.md "Training"): COPY or MOVE into the Junk folder
 * trains those messages as spam; out of Junk into any folder but the
 * Trash as ham, which takes back an earlier spam training of the same
 * message (store_spam_train keys it by its file, shared by every copy);
 * STORE of $Junk trains spam, of $NotJunk ham.  The counts are the
 * store's (store-spam.c), the tokens src/spam's.  A training that fails
 * is logged; the IMAP command has succeeded regardless.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "imap-private.h"
#include "log.h"
#include "spam-token.h"
#include "strutil.h"

/* Messages trained by one command at most: each is a read of its first
 * SPAM_TOKEN_SCAN_MAX bytes and a transaction. */
#define IMAP_SPAM_TRAIN_MAX 1000

struct train_ctx {
	struct imap_session *s;
	enum store_spam_class cls;
	size_t done;
};

static int train_cb(void *ctx, const struct store_message *m)
{
	struct train_ctx *c = ctx;
	char path[4096], err[256] = "";
	struct spam_tokens t;
	if (store_message_path(c->s->acct, m->file_id, path, sizeof path) < 0 ||
	    spam_token_file(&t, path) < 0) {
		log_error("imap session=%s user=%s action=spam_train file=%s error=\"cannot read "
			  "the message\"",
			  c->s->id, c->s->address, m->file_id);
		return 0;
	}
	int r = store_spam_train(c->s->acct, m->file_id, c->cls, (const char *const *)t.v, t.n,
				 (int64_t)time(NULL), c->s->srv->cfg->spam_max_tokens, err, sizeof err);
	spam_token_free(&t);
	if (r < 0)
		log_error("imap session=%s user=%s action=spam_train file=%s error=\"%s\"", c->s->id,
			  c->s->address, m->file_id, err);
	else if (r == 1)
		c->done++;
	return 0;
}

/* Trains uids[0..n) of mailbox_id as cls. */
static void train(struct imap_session *s, int64_t mailbox_id, const uint32_t *uids, size_t n,
		  enum store_spam_class cls, const char *why)
{
	struct train_ctx c = {s, cls, 0};
	char err[256];
	if (n > IMAP_SPAM_TRAIN_MAX)
		n = IMAP_SPAM_TRAIN_MAX;
	for (size_t i = 0; i < n; i++)
		if (uids[i] != 0 &&
		    store_message_list(s->acct, mailbox_id, uids[i], uids[i], train_cb, &c, err,
				       sizeof err) < 0)
			log_error("imap session=%s user=%s action=spam_train error=\"%s\"", s->id,
				  s->address, err);
	log_info("imap session=%s user=%s action=spam_train class=%s reason=%s messages=%zu "
		 "trained=%zu",
		 s->id, s->address, cls == STORE_SPAM_SPAM ? "spam" : "ham", why, n, c.done);
}

static bool is_junk(const struct store_mailbox *mb)
{
	return (mb->special_use & STORE_SU_JUNK) || strcmp(mb->name, "Junk") == 0;
}

void imap_spam_copied(struct imap_session *s, const struct store_mailbox *dest,
		      const uint32_t *new_uids, size_t n)
{
	char name[512];
	struct store_mailbox src;
	if (n == 0 || s->sel->shared || store_imap_mailbox_by_id(s->acct, s->sel->id, name) != 1 ||
	    store_mailbox_get(s->acct, name, &src) != 1)
		return;
	if (is_junk(dest) && !is_junk(&src))
		train(s, dest->id, new_uids, n, STORE_SPAM_SPAM, "into_junk");
	else if (is_junk(&src) && !is_junk(dest) && !(dest->special_use & STORE_SU_TRASH))
		train(s, dest->id, new_uids, n, STORE_SPAM_HAM, "out_of_junk");
}

void imap_spam_stored(struct imap_session *s, int mode, const char *keywords,
		      const uint32_t *uids, size_t n)
{
	if (mode < 0 || keywords == NULL || s->sel->shared) /* another user's mail */
		return;
	size_t kl = strlen(keywords);
	bool junk = strutil_has_word_ci(keywords, kl, "$Junk");
	bool notjunk = strutil_has_word_ci(keywords, kl, "$NotJunk");
	if (junk != notjunk)
		train(s, s->sel->id, uids, n, junk ? STORE_SPAM_SPAM : STORE_SPAM_HAM,
		      junk ? "keyword_junk" : "keyword_notjunk");
}
