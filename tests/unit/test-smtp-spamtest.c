/*
 * test-smtp-spamtest.c - the spamtest results (RFC 5235) Sieve sees for
 * a content score (smtp_spam_sieve_results, docs/sieve.md "Spamtest").
 */
#include <stdio.h>
#include <string.h>

#include "smtp-spam.h"
#include "test.h"

/* "SPAMTEST/PERCENT" for score10 with thresholds junk and reject and the
 * verdict they give (or verdict v when v >= 0: the sender lists). */
static const char *results(int score10, uint64_t junk, uint64_t reject, int v)
{
	static char out[16];
	struct smtp_spam_rcpt r;
	memset(&r, 0, sizeof r);
	r.score10 = score10;
	r.junk_at = junk;
	r.reject_at = reject;
	r.verdict = v >= 0 ? (enum smtp_spam_verdict)v : smtp_spam_verdict_at(junk, reject, score10);
	char st[4], pc[4];
	smtp_spam_sieve_results(&r, st, pc);
	snprintf(out, sizeof out, "%s/%s", st, pc);
	return out;
}

TEST(smtp_spamtest_mapping)
{
	/* never refused: the top is twice the junk score */
	CHECK_STR(results(-100, 5, 0, -1), "1/0");
	CHECK_STR(results(0, 5, 0, -1), "1/0");
	CHECK_STR(results(1, 5, 0, -1), "1/1");
	CHECK_STR(results(12, 5, 0, -1), "1/12");
	CHECK_STR(results(13, 5, 0, -1), "2/13");
	CHECK_STR(results(25, 5, 0, -1), "3/25");
	CHECK_STR(results(49, 5, 0, -1), "4/49");
	CHECK_STR(results(50, 5, 0, -1), "5/50");
	CHECK_STR(results(75, 5, 0, -1), "7/75");
	CHECK_STR(results(99, 5, 0, -1), "9/99");
	CHECK_STR(results(100, 5, 0, -1), "10/100");
	CHECK_STR(results(10000, 5, 0, -1), "10/100");
	/* refused from 9: 5..9 spread over 5.0..8.9, 10 from 9.0 */
	CHECK_STR(results(89, 5, 9, -1), "9/98");
	CHECK_STR(results(90, 5, 9, -1), "10/100");
	/* junk and reject at the same score: nothing between */
	CHECK_STR(results(49, 5, 5, -1), "4/49");
	CHECK_STR(results(50, 5, 5, -1), "10/100");
	/* the verdict wins: an allowed sender (INBOX at 9.0), a blocked one
	 * (Junk at 1.0) */
	CHECK_STR(results(90, 5, 0, SMTP_SPAM_INBOX), "4/49");
	CHECK_STR(results(10, 5, 0, SMTP_SPAM_JUNK), "5/50");
	CHECK_STR(results(-30, 5, 0, SMTP_SPAM_JUNK), "5/50");
	/* a failed score: not tested */
	struct smtp_spam_rcpt r;
	memset(&r, 0, sizeof r);
	r.failed = true;
	r.score10 = 100;
	r.junk_at = 5;
	char st[4] = "x", pc[4] = "x";
	smtp_spam_sieve_results(&r, st, pc);
	CHECK_STR(st, "");
	CHECK_STR(pc, "");
}
