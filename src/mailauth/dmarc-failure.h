/*
 * dmarc-failure.h - DMARC failure reports (RFC 7489 7.3 and 7.3.1, the
 * Authentication Failure Reporting Format of RFC 6591 on the Abuse
 * Reporting Format of RFC 5965): whether a domain's fo= asks for one, and
 * the report message itself.  Pure; the session decides, the store keeps
 * the report, the queue runner sends it (src/queue/queue-dmarc.c).
 */
#ifndef TERN_DMARC_FAILURE_H
#define TERN_DMARC_FAILURE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "dkim.h"
#include "dmarc.h"

/* The bytes of the original header section a report carries at most (a
 * longer one is cut at a line end). */
#define DMARC_FAILURE_HEADERS_MAX 65536

struct dmarc_failure_meta {
	const char *org_name;      /* our host name */
	const char *email;         /* the report's From: address */
	const char *report_id;     /* unique; the Message-ID's left part */
	const char *from_domain;   /* the RFC5322.From domain (Reported-Domain) */
	const char *ip;            /* the client that sent the message */
	const char *mail_from;     /* its MAIL FROM address, "" for <> */
	const char *delivery;      /* Delivery-Result: delivered, spam, reject */
	const char *auth_results;  /* our Authentication-Results field, CRLF-ended */
	const struct dkim_result *dkim; /* the signatures checked */
	size_t n_dkim;
	bool dkim_aligned, spf_aligned; /* which methods gave an aligned pass */
	const char *spf_domain;    /* the domain SPF checked */
	const char *spf_record;    /* its SPF record, "" when it had none */
	const char *headers;       /* the message's header section as received */
	size_t headers_len;
	time_t arrival;
};

/* True if a record's failure-reporting options fo (DMARC_FO_* bits) ask
 * for a DMARC failure report about a message with verdict v: fo=0 when
 * DMARC failed (no aligned pass at all), fo=1 when either method gave no
 * aligned pass.  fo=d and fo=s ask for DKIM- and SPF-specific reports
 * (RFC 6651, RFC 6652), which Tern does not send ("report generators may
 * choose to adhere to the requested options", 6.3). */
bool dmarc_failure_wanted(unsigned fo, const struct dmarc_verdict *v);

/* Appends the whole report message to out, except its To: field (one is
 * put in front per address when it is sent): a multipart/report of a
 * plain-words part, the message/feedback-report part (Feedback-Type:
 * auth-failure, Auth-Failure: dmarc, Identity-Alignment, the DKIM-* and
 * SPF-DNS fields 7.3.1 asks for) and the original header section as
 * text/rfc822-headers (never the body: see docs/mail-auth.md).  Text
 * from the message or from DNS is reduced to printable US-ASCII and
 * folded to fit.  0 or -1. */
int dmarc_failure_message(const struct dmarc_failure_meta *m, time_t now, struct buf *out);

#endif
