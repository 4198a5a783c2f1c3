/*
 * spam-token.c - words, header tokens and link hosts of a message, for
 * the classifier (spam-bayes.c).  Spam layer, above src/mail: the MIME
 * work (structure, transfer encodings, charsets, RFC 2047) is mime.c's;
 * this file only splits text into tokens, within the bounds of
 * spam-token.h.  Every loop here is over a bounded buffer, and the token
 * set stops growing at SPAM_TOKEN_MAX, so the cost of a message has a
 * fixed ceiling whatever it holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "mime.h"
#include "spam-token.h"
#include "strutil.h"
#include "xalloc.h"

#define HEADER_TEXT_MAX 4096 /* decoded bytes of one header field looked at */
#define TAG_MAX 1000         /* a '<' further than this from its '>' is no tag */
#define HOST_MAX 253

/* FNV-1a: the hash set only needs spread, not secrecy (the set is
 * bounded, so a crafted collision costs at most SPAM_TOKEN_MAX probes). */
static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

/* Adds prefix + word[0..n) (ASCII lower-cased) unless present or full. */
static void add(struct spam_tokens *t, const char *prefix, const char *word, size_t n)
{
	if (t->n >= SPAM_TOKEN_MAX)
		return;
	size_t pl = strlen(prefix);
	if (pl + n > SPAM_TOKEN_LEN_MAX || n == 0)
		return;
	char tok[SPAM_TOKEN_LEN_MAX + 1];
	memcpy(tok, prefix, pl);
	memcpy(tok + pl, word, n);
	strutil_lower(tok + pl, n);
	size_t len = pl + n;
	tok[len] = '\0';
	if (t->slots == NULL) {
		t->n_slots = 8192; /* a power of two above 2 * SPAM_TOKEN_MAX */
		t->slots = xcalloc(t->n_slots, sizeof *t->slots);
		t->v = xcalloc(SPAM_TOKEN_MAX, sizeof *t->v);
	}
	size_t i = (size_t)hash(tok, len) & (t->n_slots - 1);
	while (t->slots[i] != NULL) {
		if (strcmp(t->slots[i], tok) == 0)
			return;
		i = (i + 1) & (t->n_slots - 1);
	}
	char *copy = xmalloc(len + 1);
	memcpy(copy, tok, len + 1);
	t->slots[i] = copy;
	t->v[t->n++] = copy;
}

static bool tag_start(unsigned char c)
{
	return c == '/' || c == '!' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '$' || c == '\'' || c == '-' || c >= 0x80;
}

/* The words of s[0..n), each as prefix + word; html: skip <tags>. */
static void words(struct spam_tokens *t, const char *prefix, const char *s, size_t n, bool html)
{
	size_t i = 0;
	while (i < n && t->n < SPAM_TOKEN_MAX) {
		unsigned char c = (unsigned char)s[i];
		if (html && c == '<' && i + 1 < n && tag_start((unsigned char)s[i + 1])) {
			size_t lim = n - i < TAG_MAX ? n - i : TAG_MAX;
			const char *gt = memchr(s + i, '>', lim);
			if (gt != NULL) {
				i = (size_t)(gt - s) + 1;
				continue;
			}
		}
		if (!word_byte(c)) {
			i++;
			continue;
		}
		size_t start = i;
		while (i < n && word_byte((unsigned char)s[i]))
			i++;
		/* trim the punctuation a word may not start or end with */
		size_t a = start, b = i;
		while (a < b && (s[a] == '-' || s[a] == '\''))
			a++;
		while (b > a && (s[b - 1] == '-' || s[b - 1] == '\''))
			b--;
		if (b - a >= SPAM_TOKEN_WORD_MIN && b - a <= SPAM_TOKEN_WORD_MAX)
			add(t, prefix, s + a, b - a);
	}
}

static bool host_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-';
}

/* Adds the host of the link starting at s[0..n) (just after "://", or at
 * "www."). */
static void url_host(struct spam_tokens *t, const char *s, size_t n)
{
	size_t len = 0;
	while (len < n && len < HOST_MAX && host_byte((unsigned char)s[len]))
		len++;
	while (len > 0 && s[len - 1] == '.')
		len--;
	if (len == 0 || memchr(s, '.', len) == NULL)
		return;
	add(t, "url:", s, len);
	/* the last two labels, so that a.b.example.com and c.example.com
	 * share evidence */
	size_t dots = 0, i = len;
	while (i > 0) {
		if (s[i - 1] == '.' && ++dots == 2)
			break;
		i--;
	}
	if (i > 0)
		add(t, "url:", s + i, len - i);
}

static void urls(struct spam_tokens *t, const char *s, size_t n)
{
	for (size_t i = 0; i + 4 <= n && t->n < SPAM_TOKEN_MAX; i++) {
		char c = (char)(s[i] | 0x20);
		if (c == 'h' && strutil_prefix_ci(s + i, n - i, "http")) {
			size_t j = i + 4;
			if (j < n && (s[j] | 0x20) == 's')
				j++;
			if (j + 3 <= n && memcmp(s + j, "://", 3) == 0) {
				url_host(t, s + j + 3, n - j - 3);
				i = j + 2;
			}
		} else if (c == 'w' && (i == 0 || !host_byte((unsigned char)s[i - 1])) &&
			   strutil_prefix_ci(s + i, n - i, "www.")) {
			url_host(t, s + i, n - i);
			i += 3;
		}
	}
}

static void header_words(struct spam_tokens *t, const struct mime_tree *tree, const char *field,
			 const char *prefix)
{
	struct buf b;
	buf_init(&b, HEADER_TEXT_MAX);
	mime_search_header(tree, field, &b); /* a full buffer keeps its start */
	words(t, prefix, b.data ? b.data : "", b.len, false);
	buf_free(&b);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void spam_token_message(struct spam_tokens *t, const char *msg, size_t len)
{
	memset(t, 0, sizeof *t);
	if (len > SPAM_TOKEN_SCAN_MAX)
		len = SPAM_TOKEN_SCAN_MAX;
	struct mime_tree *tree = mime_parse(msg, len);
	if (tree != NULL) {
		header_words(t, tree, "Subject", "subject:");
		header_words(t, tree, "From", "from:");
		header_words(t, tree, "Reply-To", "reply-to:");
		header_words(t, tree, "X-Mailer", "mailer:");
		header_words(t, tree, "User-Agent", "mailer:");
		struct buf b;
		buf_init(&b, SPAM_TOKEN_TEXT_MAX + 64);
		mime_search_body(tree, SPAM_TOKEN_TEXT_MAX, &b);
		const char *text = b.data ? b.data : "";
		urls(t, text, b.len);
		words(t, "", text, b.len, true);
		buf_free(&b);
		mime_tree_free(&tree);
	}
	if (t->n > 1)
		qsort(t->v, t->n, sizeof *t->v, cmp);
}

char *spam_token_read(const char *path, size_t *len)
{
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *msg = xmalloc(SPAM_TOKEN_SCAN_MAX);
	size_t got = 0;
	while (got < SPAM_TOKEN_SCAN_MAX) {
		ssize_t r = read(fd, msg + got, SPAM_TOKEN_SCAN_MAX - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			free(msg);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*len = got;
	return msg;
}

int spam_token_file(struct spam_tokens *t, const char *path)
{
	memset(t, 0, sizeof *t);
	size_t len;
	char *msg = spam_token_read(path, &len);
	if (msg == NULL)
		return -1;
	spam_token_message(t, msg, len);
	free(msg);
	return 0;
}

void spam_token_free(struct spam_tokens *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	free(t->slots);
	memset(t, 0, sizeof *t);
}
