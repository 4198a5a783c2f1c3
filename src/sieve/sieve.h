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
};

enum sieve_action_type {
	SIEVE_ACT_KEEP,
	SIEVE_ACT_FILEINTO,
	SIEVE_ACT_REDIRECT,
	SIEVE_ACT_DISCARD,
	SIEVE_ACT_REJECT,
	SIEVE_ACT_EREJECT,
};

struct sieve_action {
	enum sieve_action_type type;
	char *arg;    /* mailbox, address or reason (owned); NULL for keep/discard */
	char **flags; /* IMAP flags to set on the stored copy (owned) */
	size_t n_flags;
	bool copy;     /* :copy (RFC 3894) */
	bool create;   /* :create (RFC 5490) */
	bool implicit; /* the implicit keep */
};

struct sieve_result {
	struct sieve_action *actions; /* owned */
	size_t n_actions;
	char error[256]; /* the runtime error when sieve_run returned -1 */
};

/* Runs s on in.  Returns 0 with res filled (free with sieve_result_free),
 * or -1 on a runtime error: res->error says why and res holds exactly one
 * action, the implicit keep. */
int sieve_run(const struct sieve_script *s, const struct sieve_input *in, struct sieve_result *res);
void sieve_result_free(struct sieve_result *res);

/* The extensions this build implements completely, in the order a
 * ManageSieve SIEVE capability would list them: a NULL-terminated array. */
const char *const *sieve_extensions(void);

#endif
