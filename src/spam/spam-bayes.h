/*
 * spam-bayes.h - the statistical classifier: Gary Robinson's token
 * probabilities combined with Fisher's chi-square method (as in
 * SpamBayes; docs/spam.md "Content stage").
 *
 * Spam layer, pure: the caller brings the counts (the user's token
 * database is the store's, store_spam_*), this computes.
 *
 * Per token: p = (s/S) / (s/S + h/H), with s, h the spam and ham
 * messages the token was trained in and S, H the trained spam and ham
 * messages (each at least 1); then f = (SPAM_BAYES_X * SPAM_BAYES_STRENGTH
 * + n * p) / (SPAM_BAYES_STRENGTH + n), n = s + h, so that a token seen
 * rarely stays near the neutral SPAM_BAYES_X.  Tokens with |f - 0.5| <
 * SPAM_BAYES_MIN_DEV are no evidence; of the rest the
 * SPAM_BAYES_MAX_CLUES strongest count.  With m of them: S' = 1 -
 * chi2Q(-2 sum ln(1 - f), 2m), H' = 1 - chi2Q(-2 sum ln f, 2m), and the
 * message's spam probability is (1 + S' - H') / 2: 0 ham, 1 spam, 0.5
 * no evidence (or evidence both ways).
 */
#ifndef TERN_SPAM_BAYES_H
#define TERN_SPAM_BAYES_H

#include <stddef.h>
#include <stdint.h>

#define SPAM_BAYES_X 0.5
#define SPAM_BAYES_STRENGTH 0.45
#define SPAM_BAYES_MIN_DEV 0.1
#define SPAM_BAYES_MAX_CLUES 150

struct spam_bayes_clue {
	const char *token; /* points into the caller's tokens */
	double prob;       /* f above */
	uint32_t spam, ham;
};

struct spam_bayes_result {
	double prob;                   /* 0..1; 0.5 without evidence */
	struct spam_bayes_clue *clues; /* owned; strongest first */
	size_t n_clues;
};

/* f of one token (above). */
double spam_bayes_token_prob(uint32_t spam, uint32_t ham, uint64_t n_spam, uint64_t n_ham);

/* Classifies n tokens with counts spam[i], ham[i] against n_spam spam and
 * n_ham ham messages trained.  Fills out (free with
 * spam_bayes_result_free); never fails. */
void spam_bayes_classify(const char *const *tokens, const uint32_t *spam, const uint32_t *ham,
			 size_t n, uint64_t n_spam, uint64_t n_ham, struct spam_bayes_result *out);

/* Frees out's clues and zeroes it.  Accepts a zeroed result. */
void spam_bayes_result_free(struct spam_bayes_result *r);

/* The classifier's part of a message's score, in tenths of a point:
 * weight * (2 prob - 1), rounded: -weight (sure ham) .. +weight (sure
 * spam), 0 without evidence. */
int spam_bayes_points10(double prob, uint64_t weight);

/* chi2Q(x2, v): the probability that a chi-square variable of v (even)
 * degrees of freedom is at least x2.  For tests. */
double spam_bayes_chi2q(double x2, size_t v);

#endif
