/*
 * smtp-spam.c - per-recipient spam scores of a received message and
 * their header fields (smtp-spam.h, docs/spam.md).  The classifier counts
 * only once the user has trained spam.bayes_min_trained messages of each
 * kind; before that its part is 0 and the status says "untrained".
 */
#include "smtp-spam.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "spam-bayes.h"
#include "spam-rules.h"
#include "spam-token.h"
#include "store.h"
#include "xalloc.h"

#define STATUS_TOKENS 5 /* strongest clues named in X-Spam-Status */

void smtp_spam_score_text(int score10, char *out, size_t outsz)
{
	int a = score10 < 0 ? -score10 : score10;
	snprintf(out, outsz, "%s%d.%d", score10 < 0 ? "-" : "", a / 10, a % 10);
}

/* Only plain tokens go into a header field: no 8-bit, no blanks. */
static bool header_safe(const char *tok)
{
	for (const char *p = tok; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == ',')
			return false;
	return true;
}

int smtp_spam_account_score(struct store_account *a, const struct config *cfg,
			    const struct spam_tokens *tk, struct store_spam_totals *tot,
			    struct spam_bayes_result *b, int *points10, char *err, size_t errsz)
{
	memset(b, 0, sizeof *b);
	b->prob = 0.5;
	*points10 = 0;
	if (store_spam_totals(a, tot, err, errsz) < 0)
		return -1;
	if (tot->spam < cfg->spam_bayes_min_trained || tot->ham < cfg->spam_bayes_min_trained)
		return 0;
	uint32_t *s = xcalloc(tk->n ? tk->n : 1, sizeof *s);
	uint32_t *h = xcalloc(tk->n ? tk->n : 1, sizeof *h);
	int rc = store_spam_counts(a, (const char *const *)tk->v, tk->n, s, h, err, errsz);
	if (rc == 0) {
		spam_bayes_classify((const char *const *)tk->v, s, h, tk->n, tot->spam, tot->ham, b);
		*points10 = spam_bayes_points10(b->prob, cfg->spam_bayes_weight);
	}
	free(s);
	free(h);
	return rc;
}

enum smtp_spam_verdict smtp_spam_verdict_at(uint64_t junk, uint64_t reject, int points10)
{
	if (reject > 0 && points10 >= 0 && (uint64_t)points10 >= reject * 10)
		return SMTP_SPAM_REJECT;
	if (points10 >= 0 && (uint64_t)points10 >= junk * 10)
		return SMTP_SPAM_JUNK;
	return SMTP_SPAM_INBOX;
}

void smtp_spam_sieve_results(const struct smtp_spam_rcpt *r, char spamtest[4], char percent[4])
{
	spamtest[0] = percent[0] = '\0';
	if (r->failed)
		return;
	int64_t s = r->score10, j = (int64_t)r->junk_at * 10;
	int64_t top = r->reject_at > 0 ? (int64_t)r->reject_at * 10 : 2 * j;
	int64_t v, pc;
	if (s <= 0) {
		v = 1;
		pc = 0;
	} else if (s < j) {
		v = 1 + 4 * s / j;
		pc = 50 * s / j;
	} else if (s < top) {
		v = 5 + 5 * (s - j) / (top - j);
		pc = 50 + 50 * (s - j) / (top - j);
	} else {
		v = 10;
		pc = 100;
	}
	if (r->verdict == SMTP_SPAM_INBOX) {
		v = v > 4 ? 4 : v;
		pc = pc > 49 ? 49 : pc;
	} else {
		v = v < 5 ? 5 : v;
		pc = pc < 50 ? 50 : pc;
	}
	snprintf(spamtest, 4, "%d", (int)v);
	snprintf(percent, 4, "%d", (int)pc);
}

void smtp_spam_levels_of(struct store *st, const struct config *cfg, const char *name,
			 struct smtp_spam_levels *out)
{
	out->junk = cfg->spam_junk_score;
	out->reject = cfg->spam_content_reject_score;
	out->junk_from[0] = out->reject_from[0] = '\0';
	char err[256];
	const char *at = strchr(name, '@');
	/* the domain's first, then the user's over it */
	const char *names[2] = {at != NULL ? at + 1 : name, at != NULL ? name : ""};
	for (size_t i = 0; i < 2; i++) {
		struct store_spamlevel l;
		if (names[i][0] == '\0' || store_spamlevel_get(st, names[i], &l, err, sizeof err) != 1)
			continue;
		if (l.junk >= 1) {
			out->junk = (uint64_t)l.junk;
			snprintf(out->junk_from, sizeof out->junk_from, "%s", names[i]);
		}
		if (l.reject >= 0) {
			out->reject = (uint64_t)l.reject;
			snprintf(out->reject_from, sizeof out->reject_from, "%s", names[i]);
		}
	}
}

void smtp_spam_levels(struct store *st, const struct config *cfg, int64_t id,
		      struct smtp_spam_levels *out)
{
	char addr[256];
	if (store_account_address(st, id, addr) != 1)
		addr[0] = '\0';
	smtp_spam_levels_of(st, cfg, addr[0] ? addr : "", out);
}

/* The sender-authentication rules (docs/spam.md "Rules") into hits[n..),
 * at most 2; the new count. */
static size_t auth_rules(const struct config *cfg, const struct smtp_spam_sender *snd,
			 struct spam_rule_hit *hits, size_t n)
{
	if (snd == NULL || !snd->checked)
		return n;
	uint64_t spf = snd->spf == SPF_FAIL ? cfg->spam_rule_spf_fail
		       : snd->spf == SPF_SOFTFAIL ? cfg->spam_rule_spf_softfail
						  : 0;
	if (spf > 0)
		hits[n++] = (struct spam_rule_hit){snd->spf == SPF_FAIL ? "SPF_FAIL" : "SPF_SOFTFAIL",
						   (int)spf * 10};
	if (snd->dmarc_fail && cfg->spam_rule_dmarc_fail > 0)
		hits[n++] = (struct spam_rule_hit){"DMARC_FAIL", (int)cfg->spam_rule_dmarc_fail * 10};
	return n;
}

int smtp_spam_rules(const struct config *cfg, const char *msg, size_t len, int64_t now,
		    const struct smtp_spam_sender *snd, char *text, size_t textsz)
{
	struct spam_rule_weights w = {cfg->spam_rule_missing_message_id, cfg->spam_rule_future_date,
				      cfg->spam_rule_executable_attachment};
	struct spam_rule_hit hits[SPAM_RULES_MAX + 2];
	size_t n = spam_rules_check(msg, len, now, &w, hits);
	n = auth_rules(cfg, snd, hits, n);
	int sum = 0;
	size_t o = (size_t)snprintf(text, textsz, "rules=%s", n ? "" : "none");
	for (size_t i = 0; i < n; i++) {
		char pts[32];
		smtp_spam_score_text(hits[i].points10, pts, sizeof pts);
		if (o < textsz)
			o += (size_t)snprintf(text + o, textsz - o, "%s%s:%s", i ? "," : "",
					      hits[i].name, pts);
		sum += hits[i].points10;
	}
	return sum;
}

/* The status text of r: the rules that fired, the classifier's
 * probability and its strongest clues that fit a header field. */
static void status_text(const struct store_spam_totals *tot, const struct config *cfg,
			const char *rules, const struct spam_bayes_result *b,
			struct smtp_spam_rcpt *r)
{
	if (tot->spam < cfg->spam_bayes_min_trained || tot->ham < cfg->spam_bayes_min_trained) {
		snprintf(r->status, sizeof r->status, "%s bayes=untrained", rules);
		return;
	}
	size_t o = (size_t)snprintf(r->status, sizeof r->status, "%s bayes=%.4f tokens=", rules,
				    b->prob);
	if (o >= sizeof r->status)
		return;
	size_t named = 0;
	for (size_t i = 0; i < b->n_clues && named < STATUS_TOKENS; i++) {
		if (!header_safe(b->clues[i].token))
			continue;
		int k = snprintf(r->status + o, sizeof r->status - o, "%s%s:%.2f", named ? "," : "",
				 b->clues[i].token, b->clues[i].prob);
		if (k < 0 || (size_t)k >= sizeof r->status - o)
			break;
		o += (size_t)k;
		named++;
	}
	if (named == 0 && o < sizeof r->status - 1)
		snprintf(r->status + o, sizeof r->status - o, "none");
}

enum list_effect { LIST_NONE, LIST_ALLOW, LIST_BLOCK };

/* "sender=WHAT:PATTERN" into text ("" if it does not fit). */
static void listed_text(char *text, size_t textsz, const char *what, const char *pattern)
{
	int k = snprintf(text, textsz, "sender=%s:%s", what, pattern);
	if (k < 0 || (size_t)k >= textsz)
		text[0] = '\0';
}

/* What the account's sender lists say of snd (docs/spam.md "Sender
 * lists"), and "sender=allowed:PATTERN" (or blocked:, or
 * allowed_unverified:) into text.  A block of either address wins; an
 * allow counts only for an address that is verified (From: by DMARC,
 * MAIL FROM by SPF), since anyone can write any address.  0 or -1. */
static int sender_lists(struct store_account *a, const struct smtp_spam_sender *snd,
			enum list_effect *eff, char *text, size_t textsz, char *err, size_t errsz)
{
	*eff = LIST_NONE;
	text[0] = '\0';
	if (snd == NULL)
		return 0;
	const char *who[2] = {snd->from, snd->mail_from};
	bool verified[2] = {snd->from_verified, snd->mail_from_verified};
	struct store_spamlist_entry e[2];
	int found[2] = {0, 0};
	for (size_t i = 0; i < 2; i++) {
		if (who[i][0] == '\0' || (i == 1 && !strcasecmp(who[1], who[0])))
			continue;
		found[i] = store_spamlist_lookup(a, who[i], &e[i], err, errsz);
		if (found[i] < 0)
			return -1;
		if (found[i] == 1 && e[i].kind == STORE_SPAMLIST_BLOCK) {
			*eff = LIST_BLOCK;
			listed_text(text, textsz, "blocked", e[i].pattern);
			return 0;
		}
	}
	for (size_t i = 0; i < 2; i++) {
		if (found[i] == 1 && verified[i]) {
			*eff = LIST_ALLOW;
			listed_text(text, textsz, "allowed", e[i].pattern);
			return 0;
		}
	}
	for (size_t i = 0; i < 2; i++)
		if (found[i] == 1)
			listed_text(text, textsz, "allowed_unverified", e[i].pattern);
	return 0;
}

/* The verdict for one account into r.  0 or -1. */
static int score_one(struct store *st, const struct config *cfg, const struct spam_tokens *tk,
		     int rules10, const char *rules, const struct smtp_spam_sender *snd, int64_t id,
		     struct smtp_spam_rcpt *r)
{
	char err[256] = "";
	struct store_account *a = NULL;
	struct store_spam_totals tot;
	struct spam_bayes_result b;
	int points10 = 0;
	if (store_account_open_id(st, id, &a) != 1) {
		log_error("smtp action=spam account_id=%lld error=\"no such account\"", (long long)id);
		return -1;
	}
	int rc = smtp_spam_account_score(a, cfg, tk, &tot, &b, &points10, err, sizeof err);
	enum list_effect eff = LIST_NONE;
	char listed[STORE_SPAMLIST_PATTERN_MAX + 32];
	if (rc == 0)
		rc = sender_lists(a, snd, &eff, listed, sizeof listed, err, sizeof err);
	if (rc == 0) {
		char rl[STORE_SPAMLIST_PATTERN_MAX + 256];
		int k = snprintf(rl, sizeof rl, "%s%s%s", rules, listed[0] ? " " : "", listed);
		if (k < 0 || (size_t)k >= sizeof rl)
			snprintf(rl, sizeof rl, "%s", rules);
		status_text(&tot, cfg, rl, &b, r);
	}
	spam_bayes_result_free(&b);
	if (rc == 0) {
		struct smtp_spam_levels lv;
		smtp_spam_levels(st, cfg, id, &lv);
		r->junk_at = lv.junk;
		r->reject_at = lv.reject;
		points10 += rules10;
		r->score10 = points10;
		r->verdict = smtp_spam_verdict_at(r->junk_at, r->reject_at, points10);
		bool rej = r->verdict == SMTP_SPAM_REJECT;
		unsigned long long at = rej ? r->reject_at : r->junk_at;
		const char *from = rej ? lv.reject_from : lv.junk_from;
		if (from[0] == '\0')
			snprintf(r->why, sizeof r->why, "at or above %s %llu",
				 rej ? "spam.content_reject_score" : "spam.junk_score", at);
		else
			snprintf(r->why, sizeof r->why, "at or above the %s score %llu set for %s",
				 rej ? "reject" : "junk", at, from);
		/* an allowed sender is never junked or refused; a blocked one
		 * goes to Junk at least */
		if (eff == LIST_ALLOW) {
			r->verdict = SMTP_SPAM_INBOX;
		} else if (eff == LIST_BLOCK && r->verdict == SMTP_SPAM_INBOX) {
			r->verdict = SMTP_SPAM_JUNK;
			snprintf(r->why, sizeof r->why, "the sender is on the block list (%s)",
				 listed + strlen("sender=blocked:"));
		}
		metrics_inc(r->verdict == SMTP_SPAM_REJECT ? M_SPAM_REJECT : r->verdict == SMTP_SPAM_JUNK ? M_SPAM_JUNK : M_SPAM_HAM);
	}
	if (rc == 0 && r->verdict != SMTP_SPAM_INBOX)
		rc = store_spam_junk_mailbox(a, r->junk, err, sizeof err);
	if (rc < 0)
		log_error("smtp action=spam account_id=%lld error=\"%s\"", (long long)id, err);
	return rc;
}

void smtp_spam_score(struct store *st, const struct config *cfg, const char *msg, size_t len,
		     const struct smtp_spam_sender *snd, const int64_t *accounts, size_t n,
		     struct smtp_spam *out)
{
	memset(out, 0, sizeof *out);
	out->r = xcalloc(n ? n : 1, sizeof *out->r);
	out->n = n;
	struct spam_tokens tk;
	spam_token_message(&tk, msg, len);
	char rules[200];
	int rules10 =
	    smtp_spam_rules(cfg, msg, len, (int64_t)time(NULL), snd, rules, sizeof rules);
	for (size_t i = 0; i < n; i++) {
		struct smtp_spam_rcpt *r = &out->r[i];
		if (score_one(st, cfg, &tk, rules10, rules, snd, accounts[i], r) < 0) {
			memset(r, 0, sizeof *r);
			r->failed = true; /* never lose mail: INBOX */
		}
		if (!r->failed && (out->r[out->top].failed || r->score10 > out->r[out->top].score10))
			out->top = i;
	}
	spam_token_free(&tk);
}

void smtp_spam_free(struct smtp_spam *s)
{
	free(s->r);
	memset(s, 0, sizeof *s);
}

bool smtp_spam_all_reject(const struct smtp_spam *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->r[i].verdict != SMTP_SPAM_REJECT)
			return false;
	return s->n > 0;
}

int smtp_spam_headers(const struct smtp_spam *s, size_t i, const struct config *cfg,
		      struct buf *out)
{
	const struct smtp_spam_rcpt *r = &s->r[i];
	char score[32];
	smtp_spam_score_text(r->score10, score, sizeof score);
	/* the tokens on a continuation line keep each line short (RFC 5322
	 * 2.1.1) */
	const char *tokens = strstr(r->status, " tokens=");
	int bayes_len = tokens ? (int)(tokens - r->status) : (int)strlen(r->status);
	int rc = buf_printf(out, "X-Spam-Score: %s\r\n", score);
	rc |= buf_printf(out, "X-Spam-Status: %s, score=%s junk_score=%llu reject_score=%llu %.*s",
			 r->verdict == SMTP_SPAM_INBOX ? "No" : "Yes", score,
			 (unsigned long long)r->junk_at, (unsigned long long)r->reject_at, bayes_len,
			 r->status);
	if (tokens != NULL)
		rc |= buf_printf(out, "\r\n\t%s", tokens + 1);
	rc |= buf_puts(out, "\r\n");
	return rc;
}
