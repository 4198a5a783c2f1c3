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
struct store;

struct smtp_grey_client {
	const char *ip;     /* text */
	const char *log_id; /* the session, for the log */
	const char *dnswl;  /* the allow list that lists it, or "" */
};

/* May the message from sender ("" for <>) to rcpt (an address of one of
 * our domains, rcpt_domain its domain) go on?  True to accept; false with
 * the 451 reply in line (size linesz).  Logs its decision. */
bool smtp_grey_rcpt(struct store *st, const struct config *cfg, const struct smtp_grey_client *c,
		    const char *sender, const char *rcpt, const char *rcpt_domain, char *line,
		    size_t linesz);

#endif
