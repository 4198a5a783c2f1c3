/*
 * msgauth.h - who really sent a message: SPF (RFC 7208) for the client and
 * its MAIL FROM (or HELO), DKIM (RFC 6376) for every signature, DMARC (RFC
 * 7489) for the From: domain, all with asynchronous DNS (dns_lookup) on an
 * event loop, within one time limit; and the Authentication-Results
 * header field (RFC 8601) that says what was found.
 *
 * Used by the SMTP receiver on port 25 and by `tern auth-check`.  The
 * checks never fail: a DNS answer that does not come in time is a
 * temperror for the check that needed it.
 */
#ifndef TERN_MSGAUTH_H
#define TERN_MSGAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "arc.h"
#include "buf.h"
#include "dkim.h"
#include "dmarc.h"
#include "spf.h"

struct event_base;
struct dns_resolver;

struct msgauth_request {
	const char *ip;          /* the client's address, as text */
	const char *helo;        /* its HELO/EHLO name */
	const char *mail_from;   /* MAIL FROM address; "" for the null reverse-path */
	const char *from_domain; /* the RFC5322.From domain; "" when there is none
				  * or several (then DMARC is not applied) */
	const char *receiver;    /* our host name (SPF's %{r}) */
	const char *msg;         /* the message as received, kept by the caller */
	size_t len;              /* until the callback has run */
	unsigned timeout_s;      /* for all the checks together */
};

struct msgauth_result {
	enum spf_result spf;
	bool spf_helo;              /* the identity checked was HELO (null sender) */
	char spf_domain[256];       /* the domain checked */
	char spf_reason[256];
	char spf_record[SPF_RECORD_MAX + 1]; /* the domain's SPF record, "" if none
					      * (for DMARC failure reports) */
	size_t n_dkim;              /* signatures checked (0: not signed) */
	struct dkim_result dkim[DKIM_SIGS_MAX];
	char dkim_error[DKIM_ERR_MAX]; /* the message could not be read for DKIM */
	char from_domain[256];
	bool dmarc_checked;            /* a single From: domain was there */
	struct dmarc_verdict dmarc;
	char dmarc_domain[256];        /* where the policy record was found */
	bool have_record;              /* ... and the record itself */
	struct dmarc_record record;
	struct arc_result arc;         /* the ARC chain (RFC 8617) */
	bool timed_out;                /* some answers did not come in time */
};

typedef void (*msgauth_cb)(void *ctx, const struct msgauth_result *r);

struct msgauth;

/* Starts the checks; cb runs once, later (never from inside this call),
 * on base's loop.  res must outlive the check.  Never fails (out of memory
 * is fatal). */
struct msgauth *msgauth_start(struct event_base *base, struct dns_resolver *res,
			      const struct msgauth_request *req, msgauth_cb cb, void *ctx);
/* Stops a check whose callback has not run (it will not), or frees one
 * whose callback ran.  Accepts NULL; sets *m to NULL. */
void msgauth_free(struct msgauth **m);

/* Appends the results of r as RFC 8601 resinfo text ("spf=pass ...;\r\n\t
 * dkim=...", no authserv-id, no final CRLF), for the ARC-Authentication-
 * Results field of a seal.  0 or -1. */
int msgauth_results(const struct msgauth_result *r, const struct msgauth_request *req,
		    struct buf *out);
/* Appends "Authentication-Results: AUTHSERV-ID; ..." (folded, ending in
 * CRLF) for r to out.  Values that came from outside are written only if
 * they are safe in a header (domain names, selectors); 0 or -1 (out
 * full). */
int msgauth_header(const struct msgauth_result *r, const char *authserv_id,
		   const struct msgauth_request *req, struct buf *out);

/* True if the header field value (of an Authentication-Results field)
 * names authserv_id as its authserv-id (RFC 8601 5: such fields arriving
 * from outside are forgeries, to be removed). */
bool msgauth_is_ours(const char *value, size_t n, const char *authserv_id);

#endif
