/*
 * smtp-spam.h - the content stage of port 25 at the end of DATA
 * (docs/spam.md "Content stage"): one spam score per local recipient,
 * from that user's own token database, and what it means for the copy
 * (INBOX, the user's Junk folder, refused).
 *
 * SMTP layer: glues src/spam (tokens, classifier) to the store's counts;
 * smtp-session.c applies the verdicts.  Runs on the event loop: the work
 * is bounded by the tokenizer's prefix (SPAM_TOKEN_SCAN_MAX) and one
 * indexed read per token and recipient.
 */
#ifndef TERN_SMTP_SPAM_H
#define TERN_SMTP_SPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "spam-bayes.h"
#include "spam-token.h"
#include "spf.h"
#include "store.h"

struct buf;
struct config;

enum smtp_spam_verdict { SMTP_SPAM_INBOX, SMTP_SPAM_JUNK, SMTP_SPAM_REJECT };

struct smtp_spam_rcpt {
	int score10;                   /* the score in tenths of a point */
	enum smtp_spam_verdict verdict;
	bool failed;                   /* no score (store error): INBOX, logged */
	char junk[512];                /* the user's Junk folder, for SMTP_SPAM_JUNK */
	char status[900];              /* "rules=none bayes=0.9731 tokens=a:0.98,b:0.97" */
	uint64_t junk_at, reject_at;   /* the thresholds that applied (reject 0: never) */
	char why[400];                 /* why it is junk/reject, for the trace */
};

/* What the content stage knows of who sent the message. */
struct smtp_spam_sender {
	char from[ADDR_PATH_MAX + 1];      /* the one RFC5322.From address, or "" */
	char mail_from[ADDR_PATH_MAX + 1]; /* the envelope sender, "" for <> */
	bool checked;                      /* sender authentication ran */
	bool from_verified;                /* DMARC passed for the From: domain */
	bool mail_from_verified;           /* SPF passed for the MAIL FROM domain */
	enum spf_result spf;
	bool dmarc_fail;                   /* failed under p=none (or outside pct=),
					    * and no trusted ARC sealer vouched */
};

struct smtp_spam {
	struct smtp_spam_rcpt *r;      /* one per local recipient; owned */
	size_t n;
	size_t top;                    /* the recipient with the highest score */
};

/* Scores msg[0..len) (the message without our trace lines) for each of
 * the n local accounts.  Never fails: a recipient whose score cannot be
 * computed gets failed = true and INBOX.  Free with smtp_spam_free. */
void smtp_spam_score(struct store *st, const struct config *cfg, const char *msg, size_t len,
		     const struct smtp_spam_sender *snd, const int64_t *accounts, size_t n,
		     struct smtp_spam *out);
void smtp_spam_free(struct smtp_spam *s);

/* The content score of tokens tk for the account a, as the stage
 * computes it: *tot its training, b the classifier's result (no clues
 * and 0.5 while the user has trained fewer than spam.bayes_min_trained of
 * either kind; free with spam_bayes_result_free, also after -1),
 * *points10 the score in tenths.  0 or -1 with err. */
int smtp_spam_account_score(struct store_account *a, const struct config *cfg,
			    const struct spam_tokens *tk, struct store_spam_totals *tot,
			    struct spam_bayes_result *b, int *points10, char *err, size_t errsz);
/* The header and structure rules (src/spam/spam-rules.h, weights from
 * cfg) of msg[0..len) received at now, and the sender-authentication
 * rules of snd (NULL: not known): their points in tenths, and text
 * "rules=NAME:1.0,NAME:2.0" (or "rules=none") into text. */
int smtp_spam_rules(const struct config *cfg, const char *msg, size_t len, int64_t now,
		    const struct smtp_spam_sender *snd, char *text, size_t textsz);
/* What a score in tenths means with these thresholds (reject 0: never). */
enum smtp_spam_verdict smtp_spam_verdict_at(uint64_t junk, uint64_t reject, int points10);
/* The thresholds that apply to a user or a domain's users: the user's
 * own, else the domain's, else cfg's (docs/spam.md "Thresholds per domain
 * and per user"), each with where it comes from ("" for the config, else
 * the address or domain).  A level that cannot be read counts as unset. */
struct smtp_spam_levels {
	uint64_t junk, reject; /* reject 0: never */
	char junk_from[256], reject_from[256];
};
void smtp_spam_levels_of(struct store *st, const struct config *cfg, const char *name,
			 struct smtp_spam_levels *out);
/* The same for the account id. */
void smtp_spam_levels(struct store *st, const struct config *cfg, int64_t id,
		      struct smtp_spam_levels *out);

/* True if every recipient's verdict is SMTP_SPAM_REJECT (and n > 0). */
bool smtp_spam_all_reject(const struct smtp_spam *s);

/* Appends the X-Spam-Score and X-Spam-Status fields of recipient i
 * (CRLF-terminated lines).  0, or -1 (buffer full). */
int smtp_spam_headers(const struct smtp_spam *s, size_t i, const struct config *cfg,
		      struct buf *out);

/* The normalized results of the Sieve spamtest test (RFC 5235 3.2) for
 * recipient r, as decimal strings: spamtest "1".."10", and with :percent
 * "0".."100" (docs/sieve.md "Spamtest").  With J the junk score and T
 * the reject score (2 J when never refused), a score s <= 0 is 1 and 0 %,
 * 0 < s < J is 1..4 and 0..49 %, J <= s < T is 5..9 and 50..99 %, s >= T
 * is 10 and 100 %; then a verdict of INBOX (an allowed sender) caps them
 * at 4 and 49 %, and one of Junk or refuse (a blocked sender) raises
 * them to 5 and 50 %: 5 and above, 50 % and above, is exactly the Junk
 * verdict.  A recipient whose score failed gets "" (not tested). */
void smtp_spam_sieve_results(const struct smtp_spam_rcpt *r, char spamtest[4], char percent[4]);

/* "7.3", "-2.0": a score in tenths as text. */
void smtp_spam_score_text(int score10, char *out, size_t outsz);

#endif
