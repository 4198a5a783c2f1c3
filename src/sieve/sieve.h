/*
 * sieve.h - the Sieve mail filtering language (RFC 5228) and its
 * extensions: compile a script to a checked tree, run it on one message,
 * get back the list of actions.
 *
 * Pure: the library computes actions and never stores, sends or delivers;
 * it knows no protocol session.  It links src/lib and src/mail only.  The
 * caller (delivery, `tern sieve test`) performs the actions.
 *
 * Every input is untrusted and bounded by struct sieve_limits: script
 * size, nesting depth, string size, actions, redirects and a step budget
 * per run.  A runtime error (a limit reached, incompatible actions) makes
 * sieve_run return -1 with the result holding only the implicit keep, so
 * a broken script never loses mail.
 */
#ifndef TERN_SIEVE_H
#define TERN_SIEVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sieve_limits {
	size_t max_script;    /* bytes of script source */
	size_t max_depth;     /* nesting of blocks and tests */
	size_t max_string;    /* bytes of one string */
	size_t max_actions;   /* actions one run may take */
	size_t max_redirects; /* redirect actions one run may take */
	uint64_t max_steps;   /* commands and tests one run may evaluate */
	size_t max_body;      /* octets of the body (raw or decoded) body tests see */
};

/* The defaults (docs/sieve.md lists them). */
extern const struct sieve_limits sieve_default_limits;

/* An error found while compiling: 1-based line and column of the token
 * at fault and a message. */
struct sieve_error {
	int line;
	int col;
	char msg[256];
};

struct sieve_script;

/* Compiles src[0..n) (not NUL-terminated).  lim may be NULL (defaults).
 * Returns 0 and *out (free with sieve_script_free), or -1 with err filled
 * and *out NULL. */
int sieve_compile(const char *src, size_t n, const struct sieve_limits *lim,
		  struct sieve_script **out, struct sieve_error *err);
void sieve_script_free(struct sieve_script **s);

/* What a run sees.  msg is the whole message (header and body), read
 * through src/mail's header parser; it must outlive the run.
 * mailbox_exists may be NULL (then no mailbox exists). */
struct sieve_input {
	const char *env_from; /* envelope MAIL FROM, "" for the null sender */
	const char *env_to;   /* envelope RCPT TO of this recipient */
	const char *msg;
	size_t msg_len;
	bool (*mailbox_exists)(void *ctx, const char *mailbox);
	void *ctx;
	/* duplicate (RFC 7352): whether the tracking list holds (handle, id)
	 * unexpired: 1 yes, 0 no, -1 error (a runtime error).  NULL: the list
	 * is empty (every test is false). */
	int (*duplicate_seen)(void *ctx, const char *handle, const char *id);
	/* include (RFC 6609): the source of script name among the account's
	 * personal scripts (global false) or the global ones: 1 found (*src
	 * malloc'ed, *len bytes), 0 no such script, -1 error.  NULL: no
	 * script exists. */
	int (*include)(void *ctx, bool global, const char *name, char **src, size_t *len);
	/* environment (RFC 5183): the items known, name and value pairs
	 * ("host", "mail.example.com", ...), ended by a NULL name; NULL: none */
	const char *const *env;
	/* spamtest, spamtestplus, virustest (RFC 5235): the normalized
	 * results, a number "0".."10" (spamtest), "0".."100" (spamtest
	 * :percent), "0".."5" (virustest); NULL: not tested ("0", and a
	 * :count of 0) */
	const char *spamtest;
	const char *spamtest_percent;
	const char *virustest;
};

enum sieve_action_type {
	SIEVE_ACT_KEEP,
	SIEVE_ACT_FILEINTO,
	SIEVE_ACT_REDIRECT,
	SIEVE_ACT_DISCARD,
	SIEVE_ACT_REJECT,
	SIEVE_ACT_EREJECT,
	SIEVE_ACT_VACATION, /* RFC 5230, 6131: arg is the reason */
};

/* A vacation day in seconds; the period when neither :days nor :seconds
 * is given (RFC 5230 4.1).  The caller clamps to its site limits. */
#define SIEVE_VACATION_DAY 86400u
#define SIEVE_VACATION_DEFAULT (7u * SIEVE_VACATION_DAY)

struct sieve_action {
	enum sieve_action_type type;
	char *arg;    /* mailbox, address or reason (owned); NULL for keep/discard */
	char **flags; /* IMAP flags to set on the stored copy (owned) */
	size_t n_flags;
	bool copy;     /* :copy (RFC 3894) */
	bool create;   /* :create (RFC 5490) */
	bool implicit; /* the implicit keep */
	/* SIEVE_ACT_VACATION only (all owned): */
	uint64_t seconds;  /* :seconds, :days x SIEVE_VACATION_DAY, or the default */
	char *subject;     /* :subject (UTF-8, no line breaks), NULL if not given */
	char *from;        /* :from (a checked address list), NULL if not given */
	char **addresses;  /* :addresses */
	size_t n_addresses;
	bool mime;         /* :mime: arg is a MIME entity (header and body) */
	char *handle;      /* the tracking key (RFC 5230 4.2): "h:" and :handle,
			    * or "d:" and a hash of subject, from, mime and reason */
	/* editheader (RFC 5293): for keep, fileinto, redirect and vacation,
	 * the header section (fields and the empty line) as the script had
	 * edited it when it took the action, to use instead of the message's
	 * own first result.header_len bytes; NULL: the message as received.
	 * Fields the script kept are there byte for byte. */
	char *header;
	size_t header_len;
};

/* An entry a successful run asks to add to or refresh in the duplicate
 * tracking list (RFC 7352 3) once the message is delivered; one per
 * distinct (handle, id) the script tested. */
struct sieve_duplicate {
	char *handle;     /* :handle, "" when not given (owned) */
	char *id;         /* the unique ID (owned) */
	uint64_t seconds; /* :seconds; 0 when not given: the caller's default */
	bool last;        /* :last: the expiry moves on each test, seen or not */
	bool seen;        /* what the test answered */
};

struct sieve_result {
	struct sieve_action *actions; /* owned */
	size_t n_actions;
	struct sieve_duplicate *dups; /* owned; none after a runtime error */
	size_t n_dups;
	size_t header_len; /* bytes of the message's own header section (the
			    * part an action's header replaces) */
	char error[256]; /* the runtime error when sieve_run returned -1 */
};

/* Runs s on in.  Returns 0 with res filled (free with sieve_result_free),
 * or -1 on a runtime error: res->error says why and res holds exactly one
 * action, the implicit keep. */
int sieve_run(const struct sieve_script *s, const struct sieve_input *in, struct sieve_result *res);
/* sieve_run with currentdate (RFC 5260 5) seeing the instant now
 * (seconds since the epoch) instead of the clock: for tests. */
int sieve_run_at(const struct sieve_script *s, const struct sieve_input *in, int64_t now,
		 struct sieve_result *res);
void sieve_result_free(struct sieve_result *res);

struct buf;

/* Whether a vacation reply to in->env_from may be sent (RFC 5230 4.5 and
 * 4.6, RFC 3834 2): not to the null sender or an automated sender
 * (MAILER-DAEMON, LISTSERV, majordomo, owner-*, *-request), nor to one of
 * the user's own addresses; not for a message from a list (List-Id,
 * List-Help, -Subscribe, -Unsubscribe, -Post, -Owner, -Archive; Precedence
 * bulk, list or junk) or with Auto-Submitted other than "no"; and only if
 * one of the user's addresses (mine[0..n_mine) and a's :addresses,
 * compared case-insensitively) is in To, Cc, Bcc, Resent-To, Resent-Cc or
 * Resent-Bcc.  Returns true, or false with *why a static reason. */
bool sieve_vacation_allowed(const struct sieve_input *in, const struct sieve_action *a,
			    const char *const *mine, size_t n_mine, const char **why);

/* Appends to out the reply of RFC 5230 5 for the message of in, CRLF
 * lines: From a->from or from_default, To in->env_from, Subject a->subject
 * (RFC 2047-encoded when not ASCII) or "Auto: " and the original subject
 * (or "Automated reply"), Date date, Message-ID <msgid>, In-Reply-To and
 * References from the original Message-ID, Auto-Submitted: auto-replied,
 * then the reason as a UTF-8 text/plain body, or with :mime as the MIME
 * entity it is.  0, or -1 with *why (a line of the reason longer than 998
 * bytes, out of memory). */
int sieve_vacation_reply(const struct sieve_input *in, const struct sieve_action *a,
			 const char *from_default, const char *date, const char *msgid,
			 struct buf *out, const char **why);

/* The extensions this build implements completely, in the order a
 * ManageSieve SIEVE capability would list them: a NULL-terminated array. */
const char *const *sieve_extensions(void);

/* The notice of a reject that could not be done at SMTP time (RFC 5429
 * 2.1.2, 2.2.1; sieve-notice.c), from MAILER-DAEMON@hostname to env_from:
 * for ereject (dsn) a non-delivery report (RFC 3464, Action: failed,
 * Status: 5.7.1), for reject a failure MDN (RFC 8098, Disposition:
 * automatic-action/MDN-sent-automatically; deleted); both say in words
 * that the recipient's filter refused the message, with the reason, and
 * carry the original's header section.  Strings are NUL-terminated. */
struct sieve_notice {
	bool dsn;             /* ereject */
	const char *hostname; /* Reporting-MTA / Reporting-UA */
	const char *env_from; /* the original envelope sender: To: */
	const char *env_to;   /* the recipient whose script rejected */
	const char *reason;   /* UTF-8, as the script gave it */
	const char *date;     /* RFC 5322 date of now */
	const char *arrival;  /* ... of the message's arrival */
	const char *msgid;    /* of the notice, without <> */
	const char *boundary; /* a MIME boundary not in reason */
	const char *msg;      /* the original message */
	size_t len;
};
struct buf;
/* Appends the notice (CRLF lines) to out.  0, or -1 (out's maximum). */
int sieve_notice_build(const struct sieve_notice *n, struct buf *out);

#endif
