/*
 * smtp-commit.h - the commit of accepted messages, shared by the SMTP
 * receiver (port 25 and submission) and JMAP EmailSubmission: for each
 * message its queue copy (ARC-sealed when it was checked here, then
 * DKIM-signed), the fsync of its file, Sieve for each local recipient,
 * one store_deliver_batch for all local copies, one
 * store_queue_add_batch for all queued copies and the delivery log that
 * `tern trace` reads (docs/smtp.md, docs/jmap.md "Submission").
 *
 * It knows no protocol session: a caller describes each message with a
 * struct smtp_commit_msg (pointers into its own data, which must live
 * until smtp_commit_batch returns) and reads the outcome from a struct
 * smtp_commit_result.  Everything runs on the caller's thread: when it
 * returns, a message with code 250 is durable everywhere it goes.
 */
#ifndef TERN_SMTP_COMMIT_H
#define TERN_SMTP_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "arc.h"
#include "smtp-parse.h"
#include "store.h"

struct config;
struct dkim_keyring;
struct smtp_spam;

/* An address as given in RCPT TO. */
struct smtp_rcpt {
	char addr[ADDR_PATH_MAX + 1];
};

/* One message to commit.  Every pointer is the caller's. */
struct smtp_commit_msg {
	const char *id;         /* its id, for logs and the 250 reply */
	const char *client;     /* the client's IP, for Sieve and logs */
	const char *spool_path; /* our trace lines (Return-Path first) + message */
	int spool_fd;           /* open on spool_path: synced here */
	const char *from;       /* envelope sender, "" for the null sender */
	bool submitted;         /* from a user (submission, JMAP): no SRS */
	/* the recipients as given (DKIM and ARC candidate domains, SRS) */
	const struct smtp_rcpt *rcpts;
	size_t n_rcpts;
	/* local accounts, the RCPT TO that reached each and how */
	const int64_t *local;
	const struct smtp_rcpt *local_to;
	const char (*local_via)[STORE_VIA_MAX];
	size_t n_local;
	/* remote targets with their DSN requests */
	const char (*remote)[256];
	const unsigned *remote_notify;
	const char (*remote_orcpt)[SMTP_DSN_ORCPT_MAX + 1];
	size_t n_remote;
	/* local recipients whose success DSN the queue sends */
	const struct smtp_rcpt *ok_local;
	const char (*ok_local_orcpt)[SMTP_DSN_ORCPT_MAX + 1];
	const bool *ok_local_expanded;
	size_t n_ok_local;
	int dsn_ret;
	const char *dsn_envid;
	bool requiretls;
	const char *arc_results; /* port 25: our verdict for an ARC seal; NULL none */
	enum arc_status arc_cv;
	const struct smtp_spam *spam; /* content stage per local recipient; NULL none */
	bool junk;                    /* DMARC quarantine: INBOX copies go to Junk */
	const bool *junk_of;          /* the same per local recipient; NULL none */
};

/* The outcome of one message. */
struct smtp_commit_result {
	int code;         /* 250 durable, 451 not (retry), 550 a Sieve reject */
	char reply[512];  /* the SMTP reply line for it */
	int64_t queue_id; /* its queue entry (remote recipients), 0 none */
};

/* Commits msgs[0..n) as one group commit and fills res[0..n).  Never
 * fails as a whole: each message has its own outcome, and a message not
 * durable is answered 451 (some mailboxes may have it: the client sends
 * again, a duplicate, never a loss). */
void smtp_commit_batch(struct store *st, const struct config *cfg, struct dkim_keyring *dkim,
		       const struct smtp_commit_msg *msgs, size_t n,
		       struct smtp_commit_result *res);

#endif
