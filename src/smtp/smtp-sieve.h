/*
 * smtp-sieve.h - Sieve at local delivery (docs/sieve.md "At delivery"):
 * for one message and one local account, runs the global "before" script,
 * the account's active script and the global "after" script, and turns
 * their actions into the copies to store (mailbox, :create, flags).
 *
 * Sending is done here too, before the copies are stored: a vacation
 * reply (RFC 5230, when sieve_vacation_allowed says so and the account's
 * tracking has no reply within the period) and redirects, each through
 * the queue for remote addresses and delivered at once to local ones.
 *
 * Mail is never lost here: a script that cannot be read, compiled or run,
 * a message file that cannot be read, a redirect that cannot be done and
 * a reject whose notice cannot be sent all end in the INBOX, and are
 * logged.
 */
#ifndef TERN_SMTP_SIEVE_H
#define TERN_SMTP_SIEVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arc.h"

struct config;
struct dkim_keyring;
struct store;
struct sieve_script;

/* One copy to store. */
struct smtp_sieve_copy {
	char *mailbox; /* NULL: INBOX */
	bool create;
	char *flags; /* space-separated IMAP flags, NULL for none */
	bool implicit; /* the implicit keep (no script chose this copy's folder) */
	/* editheader (RFC 5293): a spool file of this copy alone, its header
	 * as the script edited it (NULL: the message file as received); the
	 * plan owns it and drops it when freed */
	char *path;
	int fd;
};

/* A duplicate tracking entry (RFC 7352) to record once delivered. */
struct smtp_sieve_dup {
	char *handle, *id;
	int64_t expires;
	bool last;
};

/* The copies for one account: none means discarded. */
struct smtp_sieve_plan {
	int64_t account;
	struct smtp_sieve_copy *v;
	size_t n;
	/* the duplicate entries of the runs that ended without error */
	struct smtp_sieve_dup *dups;
	size_t n_dups;
	/* A script rejected the message (reject, ereject: RFC 5429): the
	 * SMTP reply "550 5.7.1 REASON", the reason as given, whether it was
	 * ereject, and the recipient.  v holds the INBOX copy to store if the
	 * message can neither be refused nor its notice sent
	 * (smtp_sieve_refuse). */
	char *reject;
	char *reject_reason;
	bool reject_dsn;
	char *reject_to;
};

/* One message, shared by its recipients: the file is read and the global
 * scripts compiled once, when first needed.  Zero it, then set the
 * inputs. */
struct smtp_sieve_msg {
	const char *path;     /* the message file */
	const char *env_from; /* MAIL FROM, "" for the null sender */
	const char *id;       /* for log lines */
	/* internal */
	char *data;
	size_t len;
	int loaded; /* 0 not yet, 1 read, -1 failed */
	bool globals_done;
	struct sieve_script *global[2]; /* before, after */
	/* input: signs what is sent to other servers (NULL: unsigned) */
	struct dkim_keyring *dkim;
	/* input: our verdict on a message checked on port 25 (NULL: not
	 * checked), for the ARC seal on redirects to other servers */
	const char *arc_results;
	enum arc_status arc_cv;
	const char *authserv_id;
	/* input: the SMTP client's IP address (Sieve environment "remote-ip",
	 * RFC 5183); NULL: not known */
	const char *remote_ip;
	/* input, set before each recipient's smtp_sieve_plan: the spamtest
	 * results of the content stage for that recipient (RFC 5235;
	 * smtp_spam_sieve_results), "" when it was not scored */
	char spamtest[4], spamtest_percent[4];
};

/* Fills plan (free with smtp_sieve_plan_free) for account (its RCPT TO
 * address env_to). */
void smtp_sieve_plan(struct store *st, const struct config *cfg, struct smtp_sieve_msg *m,
		     int64_t account, const char *env_to, struct smtp_sieve_plan *plan);
void smtp_sieve_plan_free(struct smtp_sieve_plan *plan);
/* Whether the message is refused at SMTP time: when every one of its n
 * local recipients' plans rejects it and it has no other recipients
 * (others: remote ones).  Then reply gets the reply line (the first
 * reason) and nothing is to be stored.  Else each rejecting recipient's
 * notice (RFC 5429 2.1.2, 2.2.1: a DSN for ereject, an MDN for reject)
 * goes to the envelope sender and its plan stores nothing; no notice is
 * sent to the null sender or to a sender that failed SPF or DMARC (a
 * forgery: the notice would be backscatter), and then too nothing is
 * stored; only a notice that cannot be sent keeps the INBOX copy.  Logs
 * each. */
bool smtp_sieve_refuse(struct store *st, const struct config *cfg, struct smtp_sieve_msg *m,
		       struct smtp_sieve_plan *plans, size_t n, bool others, char *reply,
		       size_t replysz);
/* After every copy of plan was stored (or there were none to store):
 * records its duplicate entries in the account's tracking list (RFC 7352
 * 3: an ID counts once its message is delivered).  A failure is logged:
 * the next copy of the message is then delivered again, never lost.  id:
 * for the log. */
void smtp_sieve_delivered(struct store *st, const struct smtp_sieve_plan *plan, const char *id);
void smtp_sieve_msg_free(struct smtp_sieve_msg *m);

#endif
