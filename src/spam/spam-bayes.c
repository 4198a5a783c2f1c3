/*
 * spam-bayes.c - Robinson token probabilities and the Fisher
 * (chi-square) combination of spam-bayes.h.  Pure arithmetic over the
 * counts it is given; the sums are of logarithms, so hundreds of clues
 * cannot underflow.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spam-bayes.h"
#include "xalloc.h"

double spam_bayes_chi2q(double x2, size_t v)
{
	/* v is even: the series of e^-m m^i / i! for i < v/2 */
	double m = x2 / 2.0;
	double term = exp(-m), sum = term;
	for (size_t i = 1; i < v / 2; i++) {
		term *= m / (double)i;
		sum += term;
	}
	return sum < 1.0 ? sum : 1.0;
}

double spam_bayes_token_prob(uint32_t spam, uint32_t ham, uint64_t n_spam, uint64_t n_ham)
{
	double S = n_spam ? (double)n_spam : 1.0, H = n_ham ? (double)n_ham : 1.0;
	double sr = (double)spam / S, hr = (double)ham / H;
	/* a token trained more often than messages exist (counts of an
	 * old training kept while totals were lowered) is capped at 1 */
	if (sr > 1.0)
		sr = 1.0;
	if (hr > 1.0)
		hr = 1.0;
	double n = (double)spam + (double)ham;
	double p = sr + hr > 0 ? sr / (sr + hr) : SPAM_BAYES_X;
	return (SPAM_BAYES_X * SPAM_BAYES_STRENGTH + n * p) / (SPAM_BAYES_STRENGTH + n);
}

static int by_strength(const void *a, const void *b)
{
	const struct spam_bayes_clue *x = a, *y = b;
	double dx = fabs(x->prob - 0.5), dy = fabs(y->prob - 0.5);
	if (dx != dy)
		return dx > dy ? -1 : 1;
	return strcmp(x->token, y->token); /* the same input, the same clues */
}

void spam_bayes_classify(const char *const *tokens, const uint32_t *spam, const uint32_t *ham,
			 size_t n, uint64_t n_spam, uint64_t n_ham, struct spam_bayes_result *out)
{
	memset(out, 0, sizeof *out);
	out->prob = 0.5;
	out->clues = xcalloc(n ? n : 1, sizeof *out->clues);
	for (size_t i = 0; i < n; i++) {
		if (spam[i] == 0 && ham[i] == 0)
			continue;
		double f = spam_bayes_token_prob(spam[i], ham[i], n_spam, n_ham);
		if (fabs(f - 0.5) < SPAM_BAYES_MIN_DEV)
			continue;
		out->clues[out->n_clues++] =
		    (struct spam_bayes_clue){tokens[i], f, spam[i], ham[i]};
	}
	if (out->n_clues == 0)
		return;
	qsort(out->clues, out->n_clues, sizeof *out->clues, by_strength);
	if (out->n_clues > SPAM_BAYES_MAX_CLUES)
		out->n_clues = SPAM_BAYES_MAX_CLUES;
	double ln_spam = 0, ln_ham = 0;
	for (size_t i = 0; i < out->n_clues; i++) {
		double f = out->clues[i].prob; /* strictly inside (0, 1) */
		ln_spam += log(1.0 - f);
		ln_ham += log(f);
	}
	size_t v = 2 * out->n_clues;
	double s = 1.0 - spam_bayes_chi2q(-2.0 * ln_spam, v);
	double h = 1.0 - spam_bayes_chi2q(-2.0 * ln_ham, v);
	out->prob = (1.0 + s - h) / 2.0;
}

void spam_bayes_result_free(struct spam_bayes_result *r)
{
	free(r->clues);
	memset(r, 0, sizeof *r);
}

int spam_bayes_points10(double prob, uint64_t weight)
{
	if (weight > 1000)
		weight = 1000;
	return (int)lround((double)weight * 10.0 * (2.0 * prob - 1.0));
}
