/*
 * test-spam.c - the spam layer: tokenizer (spam-token.c) and the
 * Robinson-Fisher classifier (spam-bayes.c).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "spam-bayes.h"
#include "spam-rules.h"
#include "spam-token.h"
#include "test.h"

static bool has(const struct spam_tokens *t, const char *tok)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i], tok) == 0)
			return true;
	return false;
}

static void tokenize(struct spam_tokens *t, const char *msg)
{
	spam_token_message(t, msg, strlen(msg));
}

TEST(spam_token_words_headers_urls)
{
	struct spam_tokens t;
	tokenize(&t, "From: Cheap Pills <sales@pharma.example>\r\n"
		     "Subject: =?UTF-8?B?R3JlYXQgT2ZmZXI=?=\r\n"
		     "X-Mailer: MassMailer 2.0\r\n"
		     "X-Spam-Status: Yes, score=99\r\n"
		     "\r\n"
		     "Buy CHEAP pills now!! Visit http://shop.pills.example/buy?x=1 or\r\n"
		     "www.other.example today. It's a deal -- ok? a an\r\n");
	CHECK(has(&t, "subject:great"));
	CHECK(has(&t, "subject:offer"));
	CHECK(has(&t, "from:cheap"));
	CHECK(has(&t, "from:sales"));
	CHECK(has(&t, "from:pharma"));
	CHECK(has(&t, "mailer:massmailer"));
	CHECK(has(&t, "buy"));
	CHECK(has(&t, "cheap"));
	CHECK(has(&t, "pills"));
	CHECK(has(&t, "it's"));
	CHECK(has(&t, "url:shop.pills.example"));
	CHECK(has(&t, "url:pills.example"));
	CHECK(has(&t, "url:www.other.example"));
	CHECK(has(&t, "url:other.example"));
	CHECK(!has(&t, "ok"));     /* too short */
	CHECK(!has(&t, "an"));
	CHECK(!has(&t, "--"));
	CHECK(!has(&t, "score")); /* X-Spam-* fields are not read */
	CHECK(!has(&t, "yes"));
	/* distinct and sorted */
	for (size_t i = 1; i < t.n; i++)
		CHECK(strcmp(t.v[i - 1], t.v[i]) < 0);
	spam_token_free(&t);
	CHECK(t.n == 0 && t.v == NULL);
	spam_token_free(&t); /* twice is fine */
}

TEST(spam_token_mime_html_base64)
{
	struct spam_tokens t;
	tokenize(&t, "Subject: x\r\nMIME-Version: 1.0\r\n"
		     "Content-Type: multipart/alternative; boundary=b\r\n\r\n"
		     "--b\r\nContent-Type: text/html\r\n\r\n"
		     "<html><body><p class=\"promo\">Winner <a href=\"https://Click.Example/\">"
		     "claim</a></p></body></html>\r\n"
		     "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
		     "Content-Transfer-Encoding: base64\r\n\r\n"
		     "R3LDvMOfZSBhdXMgTcO8bmNoZW4=\r\n" /* "Grüße aus München" */
		     "--b\r\nContent-Type: application/octet-stream\r\n\r\n"
		     "attachmentword\r\n--b--\r\n");
	CHECK(has(&t, "winner"));
	CHECK(has(&t, "claim"));
	CHECK(has(&t, "url:click.example"));
	CHECK(!has(&t, "promo"));  /* inside a tag */
	CHECK(!has(&t, "href"));
	CHECK(!has(&t, "html"));
	CHECK(has(&t, "gr\xc3\xbc\xc3\x9f" "e"));
	CHECK(has(&t, "m\xc3\xbcnchen"));
	CHECK(!has(&t, "attachmentword")); /* not a text part */
	spam_token_free(&t);
}

TEST(spam_token_bounds)
{
	/* more distinct words than SPAM_TOKEN_MAX: the set stops there */
	struct buf b;
	buf_init(&b, 0);
	CHECK(buf_puts(&b, "Subject: many\r\n\r\n") == 0);
	for (int i = 0; i < 2 * SPAM_TOKEN_MAX; i++)
		CHECK(buf_printf(&b, "w%06d ", i) == 0);
	struct spam_tokens t;
	spam_token_message(&t, b.data, b.len);
	CHECK_INT(t.n, SPAM_TOKEN_MAX);
	CHECK(has(&t, "subject:many"));
	spam_token_free(&t);
	/* a word past SPAM_TOKEN_SCAN_MAX is not seen */
	buf_reset(&b);
	CHECK(buf_puts(&b, "Subject: big\r\n\r\nfirstword\r\n") == 0);
	while (b.len < SPAM_TOKEN_SCAN_MAX + 10)
		CHECK(buf_puts(&b, "                                                        \r\n") == 0);
	CHECK(buf_puts(&b, "lateword\r\n") == 0);
	spam_token_message(&t, b.data, b.len);
	CHECK(has(&t, "firstword"));
	CHECK(!has(&t, "lateword"));
	spam_token_free(&t);
	/* a million tiny MIME parts (12 MB) costs a bounded prefix */
	buf_reset(&b);
	CHECK(buf_puts(&b, "Content-Type: multipart/mixed; boundary=b\r\n\r\n") == 0);
	for (int i = 0; i < 1000000; i++)
		CHECK(buf_append(&b, "--b\r\n\r\nxyz\r\n", 13) == 0);
	clock_t c0 = clock();
	spam_token_message(&t, b.data, b.len);
	double secs = (double)(clock() - c0) / CLOCKS_PER_SEC;
	CHECK(has(&t, "xyz"));
	CHECK(secs < 2.0);
	spam_token_free(&t);
	/* words longer than SPAM_TOKEN_WORD_MAX are skipped */
	tokenize(&t, "\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa short\r\n");
	CHECK_INT(t.n, 1);
	CHECK(has(&t, "short"));
	spam_token_free(&t);
	/* empty and header-only messages */
	spam_token_message(&t, "", 0);
	CHECK_INT(t.n, 0);
	spam_token_free(&t);
	tokenize(&t, "Subject: only");
	CHECK(has(&t, "subject:only"));
	spam_token_free(&t);
	buf_free(&b);
}

TEST(spam_bayes_math)
{
	CHECK(fabs(spam_bayes_chi2q(0, 2) - 1.0) < 1e-12);
	CHECK(fabs(spam_bayes_chi2q(2, 2) - exp(-1)) < 1e-12);
	/* chi2Q(4, 4) = e^-2 (1 + 2) */
	CHECK(fabs(spam_bayes_chi2q(4, 4) - 3 * exp(-2)) < 1e-12);
	CHECK(spam_bayes_chi2q(5000, 2) == 0.0);
	/* seen once in the one spam: (0.5 * 0.45 + 1) / 1.45 */
	CHECK(fabs(spam_bayes_token_prob(1, 0, 1, 1) - 1.225 / 1.45) < 1e-12);
	CHECK(fabs(spam_bayes_token_prob(0, 1, 1, 1) - 0.225 / 1.45) < 1e-12);
	CHECK(fabs(spam_bayes_token_prob(3, 3, 10, 10) - 0.5) < 1e-12);
	/* ham ratios count, not raw counts: 10 of 100 ham vs 1 of 1 spam */
	CHECK(spam_bayes_token_prob(1, 10, 1, 100) > 0.5);
	CHECK_INT(spam_bayes_points10(0.5, 10), 0);
	CHECK_INT(spam_bayes_points10(1.0, 10), 100);
	CHECK_INT(spam_bayes_points10(0.0, 10), -100);
	CHECK_INT(spam_bayes_points10(0.8, 10), 60);
	/* no ham trained yet: H counts as 1 */
	CHECK(spam_bayes_token_prob(5, 0, 5, 0) > 0.9);
}

TEST(spam_bayes_classify)
{
	const char *tok[] = {"cheap", "meeting", "pills", "unknown", "viagra", "agenda"};
	uint32_t spam[] = {20, 0, 18, 0, 25, 1};
	uint32_t ham[] = {1, 30, 0, 0, 0, 25};
	struct spam_bayes_result r;
	/* the spam words only */
	const char *st[] = {tok[0], tok[2], tok[4]};
	uint32_t ss[] = {spam[0], spam[2], spam[4]}, sh[] = {ham[0], ham[2], ham[4]};
	spam_bayes_classify(st, ss, sh, 3, 30, 30, &r);
	CHECK(r.prob > 0.95);
	CHECK_INT(r.n_clues, 3);
	CHECK_STR(r.clues[0].token, "viagra"); /* strongest first */
	spam_bayes_result_free(&r);
	/* the ham words only */
	const char *ht[] = {tok[1], tok[5]};
	uint32_t hs[] = {spam[1], spam[5]}, hh[] = {ham[1], ham[5]};
	spam_bayes_classify(ht, hs, hh, 2, 30, 30, &r);
	CHECK(r.prob < 0.05);
	spam_bayes_result_free(&r);
	/* no counts: no evidence, 0.5 */
	uint32_t zero[6] = {0};
	spam_bayes_classify(tok, zero, zero, 6, 30, 30, &r);
	CHECK(r.prob == 0.5);
	CHECK_INT(r.n_clues, 0);
	spam_bayes_result_free(&r);
	/* both ways at once: near the middle */
	spam_bayes_classify(tok, spam, ham, 6, 30, 30, &r);
	CHECK(r.prob > 0.2 && r.prob < 0.8);
	CHECK_INT(r.n_clues, 5); /* "unknown" has no counts */
	spam_bayes_result_free(&r);
	spam_bayes_classify(NULL, NULL, NULL, 0, 0, 0, &r);
	CHECK(r.prob == 0.5);
	spam_bayes_result_free(&r);
}

TEST(spam_bayes_many_clues)
{
	/* 3000 clues: no underflow, at most SPAM_BAYES_MAX_CLUES count */
	enum { N = 3000 };
	const char **tok = calloc(N, sizeof *tok);
	char (*names)[16] = calloc(N, sizeof *names);
	uint32_t *s = calloc(N, sizeof *s), *h = calloc(N, sizeof *h);
	CHECK(tok && names && s && h);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "t%d", i);
		tok[i] = names[i];
		s[i] = 100;
	}
	struct spam_bayes_result r;
	spam_bayes_classify(tok, s, h, N, 100, 100, &r);
	CHECK_INT(r.n_clues, SPAM_BAYES_MAX_CLUES);
	CHECK(r.prob > 0.999 && r.prob <= 1.0);
	spam_bayes_result_free(&r);
	free(tok);
	free(names);
	free(s);
	free(h);
}

static const struct spam_rule_weights weights = {1, 2, 4};

TEST(spam_rules)
{
	struct spam_rule_hit h[SPAM_RULES_MAX];
	int64_t now = 1796619600; /* 2026-12-07 05:00:00 UTC */
	const char *good = "Message-ID: <a@b>\r\nDate: Mon, 07 Dec 2026 05:00:00 +0000\r\n\r\nhi\r\n";
	CHECK_INT(spam_rules_check(good, strlen(good), now, &weights, h), 0);
	const char *bad = "Date: Mon, 14 Dec 2026 05:00:00 +0000\r\nMIME-Version: 1.0\r\n"
			  "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n"
			  "--b\r\nContent-Type: application/octet-stream; name=\"INVOICE.PDF.EXE\"\r\n"
			  "Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--b--\r\n";
	CHECK_INT(spam_rules_check(bad, strlen(bad), now, &weights, h), 3);
	CHECK_STR(h[0].name, "MISSING_MESSAGE_ID");
	CHECK_INT(h[0].points10, 10);
	CHECK_STR(h[1].name, "FUTURE_DATE");
	CHECK_INT(h[1].points10, 20);
	CHECK_STR(h[2].name, "EXECUTABLE_ATTACHMENT");
	CHECK_INT(h[2].points10, 40);
	/* a date within a day ahead is clock skew, not a rule */
	const char *skew = "Message-ID: <a@b>\r\nDate: Mon, 07 Dec 2026 20:00:00 +0000\r\n\r\n";
	CHECK_INT(spam_rules_check(skew, strlen(skew), now, &weights, h), 0);
	/* a filename= of Content-Disposition; .exe only at the end counts */
	const char *disp = "Message-ID: <a@b>\r\nContent-Type: multipart/mixed; boundary=b\r\n"
			   "MIME-Version: 1.0\r\n\r\n--b\r\nContent-Type: application/zip\r\n"
			   "Content-Disposition: attachment; filename=\"run.js\"\r\n\r\nx\r\n--b\r\n"
			   "Content-Type: text/plain; name=\"notes.exe.txt\"\r\n\r\ny\r\n--b--\r\n";
	CHECK_INT(spam_rules_check(disp, strlen(disp), now, &weights, h), 1);
	CHECK_STR(h[0].name, "EXECUTABLE_ATTACHMENT");
	/* weight 0: off */
	struct spam_rule_weights off = {0, 0, 0};
	CHECK_INT(spam_rules_check(bad, strlen(bad), now, &off, h), 0);
	CHECK_INT(spam_rules_check("", 0, now, &weights, h), 1); /* no Message-ID */
}
