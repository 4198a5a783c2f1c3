/*
 * spam-token.h - the tokenizer of the statistical spam classifier
 * (docs/spam.md "Content stage").
 *
 * Spam layer: computes, never stores; links src/mail and src/lib only.
 * A message becomes a set of distinct tokens:
 *   - words of the decoded text of its text parts (MIME through
 *     src/mail: transfer encodings removed, charsets to UTF-8), lower
 *     case, SPAM_TOKEN_WORD_MIN..SPAM_TOKEN_WORD_MAX bytes, HTML tags
 *     skipped;
 *   - words of selected header fields, prefixed by the field:
 *     "subject:", "from:", "reply-to:", "mailer:" (X-Mailer, User-Agent);
 *   - the host of every http(s):// or www. link, "url:host", plus
 *     "url:" and its last two labels when it has more.
 * Bounded: only the first SPAM_TOKEN_SCAN_MAX bytes of the message are
 * parsed (so a 50 MB message costs what a 256 KiB one does), the MIME
 * parser keeps at most MIME_MAX_PARTS parts, at most SPAM_TOKEN_TEXT_MAX
 * bytes of decoded text are read, and at most SPAM_TOKEN_MAX distinct
 * tokens are kept (the first ones found: headers, then text).
 */
#ifndef TERN_SPAM_TOKEN_H
#define TERN_SPAM_TOKEN_H

#include <stddef.h>

#define SPAM_TOKEN_SCAN_MAX (256u * 1024) /* message bytes parsed */
#define SPAM_TOKEN_TEXT_MAX (128u * 1024) /* decoded text bytes tokenized */
#define SPAM_TOKEN_MAX 3000               /* distinct tokens kept */
#define SPAM_TOKEN_WORD_MIN 3
#define SPAM_TOKEN_WORD_MAX 40
#define SPAM_TOKEN_LEN_MAX 80 /* longest token with its prefix, bytes */

struct spam_tokens {
	char **v;      /* n distinct NUL-terminated tokens, sorted (strcmp); owned */
	size_t n;
	char **slots;  /* internal hash set */
	size_t n_slots;
};

/* Tokenizes msg[0..len) (a whole message, CRLF or LF lines) into t,
 * which must be zeroed or freed before.  Never fails: out of memory
 * exits through xalloc.  Free with spam_token_free. */
void spam_token_message(struct spam_tokens *t, const char *msg, size_t len);

/* The same for the message file at path: reads at most
 * SPAM_TOKEN_SCAN_MAX bytes of it.  0, or -1 (errno set: cannot read;
 * t is then empty). */
int spam_token_file(struct spam_tokens *t, const char *path);
/* The first SPAM_TOKEN_SCAN_MAX bytes of the file at path (*len of
 * them; the caller frees), or NULL with errno set. */
char *spam_token_read(const char *path, size_t *len);

/* Frees the tokens and zeroes t.  Accepts a zeroed t. */
void spam_token_free(struct spam_tokens *t);

#endif
