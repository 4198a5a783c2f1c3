/*
 * smtp-grey.h - greylisting at RCPT on port 25 (docs/spam.md, RFC 6647):
 * a recipient of a domain that turned it on (`tern domain set DOMAIN
 * --greylist on`) gets 451 4.7.1 the first time a (client network, sender,
 * recipient) triplet is seen, and again until spam.greylist_delay has
 * passed; a retry after that passes, and the triplet is known from then
 * on.  Skipped for clients listed by an allow list of spam.dnswl, for
 * entries of spam.greylist_allow, and for client networks that passed
 * spam.greylist_auto_allow triplets.  The memory is the store's
 * (store_greylist_check), shared by all workers.
 *
 * A failure of the store accepts the recipient (logged): greylisting only
 * delays mail, it must never be why mail is lost or stuck.
 */
#ifndef TERN_SMTP_GREY_H
#define TERN_SMTP_GREY_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct dns_resolver;
struct event_base;
struct smtp_grey_spf;
struct store;

struct smtp_grey_client {
	const char *ip;         /* text */
	const char *log_id;     /* the session, for the log */
	const char *dnswl;      /* the allow list that lists it, or "" */
	const char *spf_domain; /* the domain SPF passed for, or NULL (not
				 * passed, or not checked) */
};

/* True if a recipient of rcpt_domain from a port 25 client needs the SPF
 * result of the transaction (greylisting on for it, and
 * spam.greylist_spf_passes and mailauth.check on). */
bool smtp_grey_wants_spf(struct store *st, const struct config *cfg, const char *rcpt_domain);

typedef void (*smtp_grey_spf_cb)(void *ctx);
/* Starts the SPF check of mail_from ("" for <>: postmaster@helo) from ip,
 * bounded by timeout_s; cb runs once from the event loop (never inside
 * this call) when it is done or timed out.  The caller owns the result
 * (smtp_grey_spf_free, which cancels; the resolver must outlive it). */
struct smtp_grey_spf *smtp_grey_spf_start(struct event_base *base, struct dns_resolver *dns,
					  const char *ip, const char *helo, const char *mail_from,
					  const char *receiver, unsigned timeout_s,
					  smtp_grey_spf_cb cb, void *ctx);
/* After cb: true if SPF passed; domain (size 256) gets the domain it
 * passed for.  Logs the result (log_id names the session). */
bool smtp_grey_spf_passed(const struct smtp_grey_spf *g, const char *log_id, char domain[256]);
/* Accepts NULL; sets *g to NULL. */
void smtp_grey_spf_free(struct smtp_grey_spf **g);

/* May the message from sender ("" for <>) to rcpt (an address of one of
 * our domains, rcpt_domain its domain) go on?  True to accept; false with
 * the 451 reply in line (size linesz).  Logs its decision. */
bool smtp_grey_rcpt(struct store *st, const struct config *cfg, const struct smtp_grey_client *c,
		    const char *sender, const char *rcpt, const char *rcpt_domain, char *line,
		    size_t linesz);

#endif
