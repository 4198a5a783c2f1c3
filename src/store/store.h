/*
 * store.h - the mailbox store: the only code that touches the data folder
 * and the databases.  SMTP delivery, IMAP, POP3 and the CLI all use this API.
 *
 * Layout of the data folder (see docs/architecture.md):
 *
 *   DATA/server.db               SQLite (WAL): domains, accounts, aliases, groups,
 *                                queue metadata
 *   DATA/spool/                  messages being received (tmp files)
 *   DATA/queue/                  message files waiting for remote delivery
 *   DATA/accounts/NN/ID/         one folder per account (NN = ID % 100)
 *   DATA/accounts/NN/ID/account.db   SQLite (WAL): mailboxes, messages,
 *                                flags, keywords, modseqs, expunged UIDs
 *   DATA/accounts/NN/ID/msg/     message files, named by message id, written
 *                                once and never changed
 *
 * A message delivered to several local accounts is one file on disk,
 * hard-linked into each account's msg/ folder ("stored once").
 *
 * Conventions: functions return 0 on success and -1 on failure with a
 * human-readable reason in err (size errsz, always NUL-terminated), unless
 * said otherwise.  Strings passed in are copied if kept.  Addresses and
 * domains are compared case-insensitively and stored lower-cased.
 *
 * Concurrency: several processes (workers, the CLI) may use one data folder
 * at once; SQLite locking with a busy timeout serialises writers.  A
 * struct store is used by one thread only.
 */
#ifndef TERN_STORE_H
#define TERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct store;

/* Opens (creating if needed: folders, server.db schema) the data folder.
 * Returns a handle the caller frees with store_close, or NULL with err. */
struct store *store_open(const char *data_dir, char *err, size_t errsz);
/* Closes the server db and every cached account db.  Accepts NULL. */
void store_close(struct store **s);
/* The data folder path given to store_open (owned by the store). */
const char *store_data_dir(const struct store *s);
/* How many account databases stay open at once (default 64; each holds
 * three file descriptors).  The least recently used one is closed when
 * another must open; its handle stays valid and reopens it on use. */
void store_set_account_cache(struct store *s, size_t max_open);

/* ---------------------------------------------------------------- backups */

/* What a backup or restore did (store-backup.c). */
struct store_backup_stats {
	size_t accounts;      /* accounts in the backup */
	size_t message_files; /* message files their databases name */
	size_t queue_files;   /* files of queued messages */
	size_t files_new;     /* files the backup did not have before */
	size_t files_kept;    /* already in the backup from an earlier run */
	size_t files_removed; /* in the backup before, named no more */
	size_t files_linked;  /* files taken as hard links (one file system) */
	size_t files_copied;  /* files taken as copies */
	size_t rounds;        /* databases copied again (files went away) */
	uint64_t bytes_copied;
};
/* Makes dst (a folder the caller made) a consistent copy of the data
 * folder data of a running server, incrementally when dst holds an
 * earlier backup (see the top of store-backup.c).  0, or -1 with err. */
int store_backup(const char *data, const char *dst, struct store_backup_stats *stats, char *err,
		 size_t errsz);
/* Copies the backup src into data, which must be empty or not exist
 * (and no server may use it).  0, or -1 with err. */
int store_restore(const char *src, const char *data, struct store_backup_stats *stats, char *err,
		  size_t errsz);

/* ------------------------------------------------------------------ spool */

/* Files of transactions in progress live in DATA/spool/.  Their maker
 * keeps the descriptor these return open until it has unlinked the file
 * (store_spool_drop): the descriptor carries a lock that tells the
 * clean-up the file is in use.  Each returns a descriptor open for reading
 * and writing, or -1 with errno. */
/* Creates path (O_EXCL, mode 0600) and locks it. */
int store_spool_create(const char *path);
/* Creates DATA/spool/<new unique id>; path (size pathsz) gets its name. */
int store_spool_new(const struct store *s, char *path, size_t pathsz);
/* store_spool_new, then writes a and b (either may be empty) and fsyncs;
 * on error nothing is left behind. */
int store_spool_write(const struct store *s, const void *a, size_t alen, const void *b,
		      size_t blen, char *path, size_t pathsz);
/* Unlinks path and closes *fd (set to -1).  Accepts *fd == -1. */
void store_spool_drop(int *fd, const char *path);
/* Removes what crashed transactions left behind: files in DATA/spool/
 * that no process holds, and files in DATA/queue/ that no process holds
 * and no queue entry still to be delivered names; only files last changed
 * at least min_age seconds ago.  The counts go to *spool_removed and
 * *queue_removed. */
int store_spool_clean(struct store *s, time_t min_age, size_t *spool_removed,
		      size_t *queue_removed, char *err, size_t errsz);

/* -------------------------------------------------------------- DKIM keys */

/* The DKIM keys of our domains (store-dkim.c): a row in server.db and the
 * private key in DATA/dkim/DOMAIN/SELECTOR.pem (0600).  "active" keys
 * sign; the others ("published", rotated out) only stay in DNS until
 * retired. */
#define STORE_DKIM_KEYS_MAX 64 /* keys one domain may have */
struct store_dkim_key {
	char domain[256];
	char selector[64];
	char type[16]; /* "rsa" or "ed25519" */
	bool active;
	int64_t created;
	char record[1024]; /* the TXT record text: v=DKIM1; k=...; p=... */
};
/* Keeps a new active key: writes pem to its file, then the row. */
int store_dkim_add(struct store *s, const char *domain, const char *selector, const char *type,
		   const void *pem, size_t pem_len, const char *record, char *err, size_t errsz);
/* Makes every active key of domain "published", except the selectors in
 * keep (which become or stay active), in one transaction. */
int store_dkim_rotate_out(struct store *s, const char *domain, const char *const *keep,
			  size_t n_keep, char *err, size_t errsz);
/* Keys of domain (NULL: of every domain), by domain, active first, newest
 * first; at most max. */
int store_dkim_list(struct store *s, const char *domain, struct store_dkim_key *out, size_t max,
		    size_t *n_out, char *err, size_t errsz);
/* Deletes one key (row and file). */
int store_dkim_remove(struct store *s, const char *domain, const char *selector, char *err,
		      size_t errsz);
/* Deletes every key of a domain. */
int store_dkim_remove_domain(struct store *s, const char *domain, char *err, size_t errsz);
/* The path of a key's private key file; -1 for a bad selector or domain. */
int store_dkim_key_path(const struct store *s, const char *domain, const char *selector,
			char *out, size_t outsz);

/* ----------------------------------------------- MTA-STS policy cache */

/* One cached MTA-STS policy (RFC 8461 5.1; store-mtasts.c).  policy is
 * the text as served, NUL-terminated, owned (store_mtasts_free). */
struct store_mtasts {
	char id[40];       /* the TXT record's id it was fetched for */
	char *policy;
	size_t policy_len;
	int64_t fetched;   /* time() of the fetch */
	int64_t expires;   /* fetched + max_age */
};
/* The cached policy of domain (lower-case): 1 found, 0 none, -1 err. */
int store_mtasts_get(struct store *s, const char *domain, struct store_mtasts *out, char *err,
		     size_t errsz);
/* Replaces the cached policy of domain.  0 or -1 with err. */
int store_mtasts_put(struct store *s, const char *domain, const char *id, const char *policy,
		     size_t policy_len, int64_t fetched, int64_t expires, char *err, size_t errsz);
void store_mtasts_free(struct store_mtasts *m);

/* -------------------------------------------------------------------- SRS */

/* The Sender Rewriting Scheme (store-srs.c) for mail an alias of ours
 * passes on: the envelope sender alice@example.org becomes
 * SRS0=HHHH=TT=example.org=alice@DOMAIN (HHHH an HMAC with the server's
 * key in DATA/srs.key, TT the day).  store_resolve turns a valid such
 * address of one of our domains back into the original (a remote target),
 * and treats a forged or expired one (older than 21 days) as no such
 * user.  0 or -1. */
int store_srs_forward(struct store *s, const char *sender, const char *domain, char *out,
		      size_t outsz);
/* local (the local part of an address of ours): 0 with the original
 * address in out; -1 not an SRS address; -2 forged, damaged or expired;
 * -3 the key cannot be read. */
int store_srs_reverse(struct store *s, const char *local, char *out, size_t outsz);
/* The pure parts, for tests: encode with key at time now; decode the
 * local part (same results as store_srs_reverse, without -3). */
int store_srs_encode(const unsigned char *key, size_t keylen, const char *sender,
		     const char *domain, time_t now, char *out, size_t outsz);
int store_srs_decode(const unsigned char *key, size_t keylen, const char *local, time_t now,
		     char *out, size_t outsz);

/* ------------------------------------------------------- DMARC evaluations */

/* One DMARC evaluation of a received message (store-dmarc.c), kept until
 * its aggregate report (RFC 7489 7.2) is queued.  Strings are copied. */
struct store_dmarc_event {
	int64_t time;
	const char *policy_domain; /* where the record was found */
	const char *from_domain;   /* RFC5322.From domain */
	const char *ip;            /* the client */
	const char *disposition;   /* none | quarantine | reject */
	const char *dkim, *spf;    /* DMARC-aligned results: pass | fail */
	const char *dkim_domain, *dkim_result; /* first signature ("" if none) */
	const char *spf_domain, *spf_result;
	const char *policy; /* the published policy: "p=.. sp=.. pct=.. adkim=.. aspf=.." */
	const char *rua;    /* the rua URIs, space-separated */
};
int store_dmarc_record(struct store *s, const struct store_dmarc_event *e, char *err,
		       size_t errsz);
/* A policy domain whose oldest unreported event is older than a moment. */
struct store_dmarc_due {
	char policy_domain[256];
	int64_t first;
	char policy[256];
	char rua[1024];
};
int store_dmarc_due(struct store *s, int64_t older_than, struct store_dmarc_due *out, size_t max,
		    size_t *n, char *err, size_t errsz);
/* One row of a report: the events that share these values, counted. */
struct store_dmarc_row {
	char ip[64];
	int64_t count;
	char disposition[16], dkim[8], spf[8];
	char from_domain[256], dkim_domain[256], dkim_result[16], spf_domain[256], spf_result[16];
};
/* The unreported events of policy_domain up to until, grouped (at most
 * max rows, the largest first); *first gets the time of the oldest. */
int store_dmarc_rows(struct store *s, const char *policy_domain, int64_t until,
		     struct store_dmarc_row *out, size_t max, size_t *n, int64_t *first,
		     char *err, size_t errsz);
/* What to do with mail for domain (one of ours) that fails DMARC under
 * p=reject: "reject", "junk" or "tag"; NULL or "" goes back to the
 * server's mailauth.dmarc_reject. */
int store_dmarc_action_set(struct store *s, const char *domain, const char *action, char *err,
			   size_t errsz);
/* 1 with the domain's action in out, 0 none set (the server's key), -1. */
int store_dmarc_action_get(struct store *s, const char *domain, char out[16]);
/* Marks them reported, and forgets reported events older than
 * forget_before. */
int store_dmarc_done(struct store *s, const char *policy_domain, int64_t until,
		     int64_t forget_before, char *err, size_t errsz);

/* DMARC failure reports (RFC 7489 7.3) waiting for the queue runner.
 * _add keeps one (msg: the report without its To: field; ruf: the
 * domain's ruf= URIs, space-separated) unless policy_domain already had
 * per_hour of them in the hour before now: 1 kept, 0 over the limit, -1.
 * _next gives the first unsent one after id `after` (its message
 * appended to msg): 1, 0 none, -1.  _sent marks one sent (its message is
 * dropped; the row counts for the limit until forget_before). */
struct buf;
struct store_dmarc_failure {
	int64_t id;
	char policy_domain[256];
	char ruf[1024];
};
int store_dmarc_failure_add(struct store *s, int64_t now, const char *policy_domain,
			    const char *ruf, const void *msg, size_t len, unsigned per_hour,
			    char *err, size_t errsz);
int store_dmarc_failure_next(struct store *s, int64_t after, struct store_dmarc_failure *out,
			     struct buf *msg, char *err, size_t errsz);
int store_dmarc_failure_sent(struct store *s, int64_t id, int64_t forget_before, char *err,
			     size_t errsz);

/* ------------------------------------------------------------ greylisting */

/* Greylisting's memory (store-greylist.c, docs/spam.md); the policy (what
 * is checked, the replies) is the caller's. */
struct store_greylist_key {
	const char *net;    /* the client's network: "192.0.2.0/24", "2001:db8::/64" */
	const char *sender; /* envelope sender, lower-cased; "" for <> */
	const char *rcpt;   /* recipient, lower-cased */
};
struct store_greylist_policy {
	int64_t delay;       /* seconds before a retry passes */
	int64_t expire;      /* seconds an unconfirmed triplet waits for its retry */
	int64_t keep;        /* seconds a passed triplet (or network) lives unused */
	unsigned auto_allow; /* passed triplets after which a network skips; 0: never */
};
enum store_greylist_result {
	STORE_GREYLIST_NEW,   /* first seen (or expired): refuse for now */
	STORE_GREYLIST_EARLY, /* retried before the delay: refuse */
	STORE_GREYLIST_PASS,  /* retried after the delay: accept, now known */
	STORE_GREYLIST_KNOWN, /* passed before: accept */
	STORE_GREYLIST_NET,   /* the network is auto-allowed: accept */
};
struct store_greylist_answer {
	enum store_greylist_result result;
	int64_t wait;  /* NEW, EARLY: seconds until a retry passes */
	int64_t first; /* when the triplet was first seen */
};
/* Looks up and updates the triplet k at time now (one transaction, shared
 * by all processes).  0, or -1 with err. */
int store_greylist_check(struct store *s, const struct store_greylist_key *k, int64_t now,
			 const struct store_greylist_policy *p, struct store_greylist_answer *a,
			 char *err, size_t errsz);
/* Forgets expired triplets and networks.  0, or -1 with err. */
int store_greylist_expire(struct store *s, int64_t now, const struct store_greylist_policy *p,
			  char *err, size_t errsz);
/* The passes of sender domain (lower-cased) used in the last keep
 * seconds (0 if none), or -1 on error. */
int store_greylist_sender_passes(struct store *s, const char *domain, int64_t now, int64_t keep);
/* Counts one triplet of sender domain that passed with SPF passing. */
int store_greylist_sender_pass(struct store *s, const char *domain, int64_t now, int64_t keep,
			       char *err, size_t errsz);
/* Turns greylisting of mail for domain on or off (off: the default). */
int store_greylist_domain_set(struct store *s, const char *domain, bool on, char *err,
			      size_t errsz);
/* 1 if mail for domain is greylisted, 0 if not, -1 on error. */
int store_greylist_domain_get(struct store *s, const char *domain);

/* ---------------------------------------------------------------- domains */

int store_domain_add(struct store *s, const char *domain, char *err, size_t errsz);
/* Fails if the domain still has accounts or aliases. */
int store_domain_remove(struct store *s, const char *domain, char *err, size_t errsz);
/* 1 if the domain is ours, 0 if not, -1 on error. */
int store_domain_exists(struct store *s, const char *domain);
/* Calls cb for each domain in name order.  cb returns 0 to go on. */
int store_domain_list(struct store *s, int (*cb)(void *ctx, const char *domain), void *ctx,
		      char *err, size_t errsz);

/* --------------------------------------------------------------- accounts */

struct store_account_info {
	int64_t id;
	char address[256];  /* local@domain, lower-cased */
	char pwhash[256];   /* crypt(3) string, "" if none */
	char scram[256];    /* SCRAM-SHA-256 keys (RFC 5803 style text, see
			     * auth/sasl.h), "" if none (imported hash) */
	int64_t created;    /* unix time */
};

/* Adds an account whose domain must already exist, and creates its folder,
 * account.db and the default mailboxes: INBOX, Sent (\Sent), Drafts
 * (\Drafts), Trash (\Trash), Junk (\Junk), Archive (\Archive).
 * pwhash is a crypt(3) string (see auth/password.h).  *id_out may be NULL. */
int store_account_add(struct store *s, const char *address, const char *pwhash, int64_t *id_out,
		      char *err, size_t errsz);
/* Removes the account row and deletes its folder. */
int store_account_remove(struct store *s, const char *address, char *err, size_t errsz);
/* Sets the password hash and clears the SCRAM keys (they belong to the old
 * password); call store_account_set_scram after it when the new password
 * has keys. */
int store_account_set_password(struct store *s, const char *address, const char *pwhash,
			       char *err, size_t errsz);
/* Sets the account's SCRAM-SHA-256 record ("" clears it): text
 * "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>" as
 * made by sasl_scram_make (printable ASCII, under 256 bytes; the store
 * checks only that).  0, or -1 with err (e.g. no such account). */
int store_account_set_scram(struct store *s, const char *address, const char *scram, char *err,
			    size_t errsz);
/* 1 found (info filled), 0 not found, -1 error. */
int store_account_get(struct store *s, const char *address, struct store_account_info *info);
/* Lists accounts, of one domain or all (domain NULL), in address order. */
int store_account_list(struct store *s, const char *domain,
		       int (*cb)(void *ctx, const struct store_account_info *a), void *ctx,
		       char *err, size_t errsz);

/* ------------------------------------------------------- app passwords */

/* One app password of an account (store-apppass.c; its shape is
 * auth/apppass.h's).  Strings are NUL-terminated. */
struct store_apppass {
	char id[8];       /* the non-secret id in the password (first group) */
	char name[65];    /* the admin's name for it ("phone"), at most 64
			   * bytes (auth/apppass.h, APPPASS_NAME_MAX) */
	char pwhash[256]; /* crypt(3) hash of the canonical password text */
	int64_t created;  /* unix time */
	int64_t last_used; /* unix time of a login with it (to the minute), 0: never */
};

/* Extra results of store_apppass_add (besides 0 and -1). */
#define STORE_APPPASS_NAME_TAKEN (-2) /* the account has one of that name */
#define STORE_APPPASS_ID_TAKEN (-3)   /* ... or with that id: make another */
#define STORE_APPPASS_FULL (-4)       /* it has max_per_account already */

/* Adds an app password to the account: id and pwhash printable tokens,
 * name printable ASCII (spaces allowed).  The count check and the insert
 * are one transaction.  Returns 0, one of the codes above, or -1 (err
 * says why in every failing case). */
int store_apppass_add(struct store *s, int64_t account_id, const char *id, const char *name,
		      const char *pwhash, size_t max_per_account, char *err, size_t errsz);
/* The account's app passwords, oldest first, at most max into rows;
 * *n_out is how many.  0 or -1 with err. */
int store_apppass_list(struct store *s, int64_t account_id, struct store_apppass *rows,
		       size_t max, size_t *n_out, char *err, size_t errsz);
/* The app password of the account with that id.  1 found (*out filled),
 * 0 none, -1 database error.  Called by the login path on the loop. */
int store_apppass_find(struct store *s, int64_t account_id, const char *id,
		       struct store_apppass *out);
/* Deletes the app password called name.  1 removed, 0 no such name, -1
 * with err. */
int store_apppass_remove(struct store *s, int64_t account_id, const char *name, char *err,
			 size_t errsz);
/* Sets last_used to now if it is older (a commit without fsync: see
 * store-apppass.c).  0 or -1 with err. */
int store_apppass_touch(struct store *s, int64_t account_id, const char *id, int64_t now,
			char *err, size_t errsz);

/* ----------------------------------------------------------------- quotas */

/* Storage quotas (store-quota.c, docs/admin.md "Quotas").  Usage is kept
 * exact by the store in the same transaction as every message row that
 * comes or goes, so reading it costs one row.  A limit of 0 is unlimited. */
struct store_quota {
	uint64_t storage;        /* bytes: the sizes of all messages, each copy counted */
	uint64_t messages;       /* messages, in all mailboxes */
	uint64_t storage_limit;  /* bytes, 0 unlimited */
	uint64_t messages_limit; /* 0 unlimited */
	enum store_quota_source {
		STORE_QUOTA_SERVER,  /* quota.default_* */
		STORE_QUOTA_DOMAIN,  /* the account's domain's (store_quota_domain_set) */
		STORE_QUOTA_ACCOUNT, /* the account's own (store_quota_set) */
	} storage_from, messages_from; /* where each limit comes from */
};
/* A limit value for store_quota_set: back to the server's default. */
#define STORE_QUOTA_DEFAULT UINT64_MAX
/* The server's default limits (config quota.default_storage and
 * quota.default_messages), for accounts without their own whose domain
 * has none either. */
void store_set_quota_default(struct store *s, uint64_t storage, uint64_t messages);
/* Sets an account's own limits: NULL leaves one as it is,
 * STORE_QUOTA_DEFAULT makes it its domain's (or the server's) again, 0
 * unlimited. */
int store_quota_set(struct store *s, int64_t account_id, const uint64_t *storage,
		    const uint64_t *messages, char *err, size_t errsz);
/* The same for a domain's limits, which its accounts without their own
 * have (each account has its own usage: not a pool shared by the
 * domain); STORE_QUOTA_DEFAULT the server's.  -1 (err) for a domain that
 * is not ours. */
int store_quota_domain_set(struct store *s, const char *domain, const uint64_t *storage,
			   const uint64_t *messages, char *err, size_t errsz);
/* A domain's limits, STORE_QUOTA_DEFAULT where it has none.  0 or -1. */
int store_quota_domain_get(struct store *s, const char *domain, uint64_t *storage,
			   uint64_t *messages, char *err, size_t errsz);
struct store_account;
/* Usage and limits of an account.  0 or -1. */
int store_quota_get(struct store_account *a, struct store_quota *q, char *err, size_t errsz);
/* Whether `messages` more messages of `bytes` bytes (0: unknown) fit in
 * account id now (SMTP RCPT): FITS; FULL (at or over a limit now, or
 * would be with them: try later); NEVER (larger than a limit itself);
 * UNKNOWN (the account or its database could not be read). */
enum store_quota_fit {
	STORE_QUOTA_FITS,
	STORE_QUOTA_FULL,
	STORE_QUOTA_NEVER,
	STORE_QUOTA_UNKNOWN,
};
enum store_quota_fit store_quota_fits(struct store *s, int64_t account_id, uint64_t bytes,
				      uint64_t messages);
/* The warning of a nearly full account (quota.warning_percent): 1 when
 * account id has just reached percent of a limit and has not been warned
 * since it was last below it (the caller sends the warning now: of
 * concurrent callers only one gets 1), 0 not (also percent 0), -1 error.
 * q gets the usage and limits. */
int store_quota_warn_claim(struct store *s, int64_t account_id, unsigned percent,
			   struct store_quota *q);

/* ---------------------------------------------------------------- aliases */

/* alias is "local@domain", or "@domain" for a catch-all; its domain must be
 * ours.  target is any address (local or remote).  An alias may have several
 * targets: one row each. */
int store_alias_add(struct store *s, const char *alias, const char *target, char *err,
		    size_t errsz);
/* Removes one target, or all targets of alias when target is NULL. */
int store_alias_remove(struct store *s, const char *alias, const char *target, char *err,
		       size_t errsz);
int store_alias_list(struct store *s, const char *domain,
		     int (*cb)(void *ctx, const char *alias, const char *target), void *ctx,
		     char *err, size_t errsz);

/* ----------------------------------------------------------------- groups */

/* A group address (store-group.c): an alias whose targets are its members,
 * with who may post to it, what Reply-To its copies get, and their List-Id
 * (RFC 2919).  Removing its last member (store_alias_remove) removes it. */
enum store_group_policy {
	STORE_GROUP_ANYONE,  /* any sender */
	STORE_GROUP_DOMAINS, /* senders of our domains */
	STORE_GROUP_MEMBERS, /* senders that are members */
};
enum store_group_reply {
	STORE_GROUP_REPLY_NONE,   /* the message's Reply-To as it is */
	STORE_GROUP_REPLY_GROUP,  /* Reply-To: the group (replacing any) */
	STORE_GROUP_REPLY_SENDER, /* Reply-To: the From: addresses, if none */
};
struct store_group {
	char address[256];
	enum store_group_policy policy;
	enum store_group_reply reply_to;
	char list_id[256]; /* "sales.example.com" (no angle brackets) */
};
const char *store_group_policy_name(enum store_group_policy p);
const char *store_group_reply_name(enum store_group_reply r);
/* "anyone"... into *out: 0, or -1 for an unknown name. */
int store_group_policy_parse(const char *name, enum store_group_policy *out);
int store_group_reply_parse(const char *name, enum store_group_reply *out);
/* Makes address (of one of our domains, an ASCII local part) a group if
 * it is not one, then changes the settings given (NULL: as they are; a
 * new group starts as anyone, none).  Members are added with
 * store_alias_add.  0 or -1 with err. */
int store_group_set(struct store *s, const char *address, const enum store_group_policy *policy,
		    const enum store_group_reply *reply_to, char *err, size_t errsz);
/* 1 and *out filled if address is a group, 0 if not, -1 on a database
 * error. */
int store_group_get(struct store *s, const char *address, struct store_group *out);
/* 1 if address is a member of group (compared case-insensitively), 0 if
 * not, -1 on a database error. */
int store_group_is_member(struct store *s, const char *group, const char *address);
/* Lists groups, of one domain or all (domain NULL), in address order. */
int store_group_list(struct store *s, const char *domain,
		     int (*cb)(void *ctx, const struct store_group *g), void *ctx, char *err,
		     size_t errsz);

/* ------------------------------------------------------ recipient lookup */

enum store_rcpt_result {
	STORE_RCPT_OK,        /* deliverable: targets filled */
	STORE_RCPT_NO_USER,   /* our domain, nobody by that name: 550 5.1.1 */
	STORE_RCPT_NOT_OURS,  /* not one of our domains: relay denied */
	STORE_RCPT_LOOP,      /* alias expansion too deep or too wide */
	STORE_RCPT_ERROR,     /* temporary failure (database): 451 */
};

#define STORE_MAX_TARGETS 64
/* Longest "how" of a local target (store_targets.local_via), with NUL. */
#define STORE_VIA_MAX 256

struct store_targets {
	size_t n_local;
	int64_t local[STORE_MAX_TARGETS];        /* account ids, no duplicates */
	/* How the recipient reached each local account, in words for `tern
	 * trace`: "" directly (the account's own address), else the rules on
	 * the way, outermost first, ", "-separated: "plus-addressing",
	 * "alias info@example.test", "the catch-all alias @example.test",
	 * "postmaster: the domain's first account", "postmaster: the server's
	 * first account" (truncated to fit). */
	char local_via[STORE_MAX_TARGETS][STORE_VIA_MAX];
	size_t n_remote;
	char remote[STORE_MAX_TARGETS][256];     /* remote addresses, lower-case domain */
};

/* Where mail for the server's postmaster goes (RFC 5321 4.5.1): a bare
 * "<postmaster>", and postmaster@ a domain of ours that has neither an
 * alias for it nor any account.  address (config key `postmaster`) if not
 * empty; else postmaster@ the host name, or @ its parent domains, the
 * first that is one of our domains; else the server's oldest account.
 * Never a mailbox of another domain chosen by name.  Copied. */
void store_set_postmaster(struct store *s, const char *address, const char *hostname);


/* Resolves one envelope recipient (already syntax-checked, no <>) to
 * accounts and remote addresses.  Order of rules for local@domain:
 *   1. the domain must be ours (case-insensitive), else NOT_OURS;
 *   2. an alias local@domain (expanded recursively, up to 10 levels and
 *      STORE_MAX_TARGETS targets, duplicates dropped);
 *   3. an account local@domain;
 *   4. if delim is a non-empty string and local contains it: the same two
 *      lookups for the part before the first delimiter (plus-addressing);
 *   5. postmaster (any case): an alias or account postmaster@domain, else
 *      the catch-all, else the domain's oldest account, else the server's
 *      oldest account (RFC 5321 4.5.1: postmaster always works);
 *   6. a catch-all alias @domain;
 *   7. NO_USER.
 * Local parts compare case-insensitively.  Each character of delim is a
 * delimiter (as Postfix's recipient_delimiter: "+-" splits at either).
 * Alias targets in our domains go through rules 2-6 again; a target that
 * is an alias already being expanded (a cycle, or "a -> a" kept as a
 * copy) is looked up as an account only.  A local target that resolves to
 * nobody is dropped (logged); if nothing is left the result is NO_USER, or
 * LOOP when a cycle was cut.  A bare "postmaster" (no '@', any case)
 * resolves to the server's oldest account.  out is always cleared first
 * and filled only for OK. */
enum store_rcpt_result store_resolve(struct store *s, const char *address, const char *delim,
				     struct store_targets *out);

/* --------------------------------------------------------------- delivery */

/* Delivers a complete message file (CRLF lines, already fsync'ed, in the
 * same file system as DATA, e.g. under DATA/spool/) to the INBOX of each
 * account in ids.  The file is hard-linked into each account (stored once),
 * each account.db gets its row in one transaction, folders are fsync'ed:
 * when this returns 0 the message is durable in every INBOX.  The caller
 * still owns and later unlinks path.  On -1 nothing is visible in any
 * mailbox that failed (some accounts may have succeeded: *n_done says how
 * many of ids, in order, got it).  Subscribers are notified. */
int store_deliver(struct store *s, const char *path, const int64_t *ids, size_t n_ids,
		  time_t internaldate, size_t *n_done, char *err, size_t errsz);

/* One message for one account, for store_deliver_batch. */
struct store_delivery {
	const char *path;      /* message file, as for store_deliver */
	int64_t account_id;
	time_t internaldate;
	int status;            /* out: 0 delivered, -1 not (nothing visible) */
	uint32_t uid;          /* out: its uid in the mailbox when delivered */
	/* Where and how (Sieve, docs/sieve.md "At delivery"); all zero means
	 * INBOX without flags.  A mailbox that does not exist (or is not a
	 * valid name) means INBOX, unless create: then it is made. */
	const char *mailbox;   /* NULL: INBOX */
	bool create;
	const char *flags;     /* space-separated IMAP flags ("\\Seen $Label1"),
				* unknown system flags and bad keywords dropped */
	bool filed;            /* out: it went into mailbox (not the INBOX fallback) */
};

/* Group commit: delivers several messages (say, from concurrent SMTP
 * sessions) with one msg/ fsync and one database commit per account
 * instead of one per message.  Items of the same path share one file
 * (stored once); within an account, uids follow the order of d.  Each item
 * with status 0 is as durable as after store_deliver; an item with status
 * -1 is visible nowhere.  Returns 0 if every item was delivered, else -1
 * with err describing the first failure.  Subscribers are notified once
 * per account. */
int store_deliver_batch(struct store *s, struct store_delivery *d, size_t n, char *err,
			size_t errsz);

/* Queues a message file for remote recipients: the file is linked into
 * DATA/queue/, and one row per recipient goes into server.db with state
 * "deferred" (the outbound issue delivers them).  sender is the envelope
 * MAIL FROM ("" for the null sender). */
int store_queue_add(struct store *s, const char *path, const char *sender,
		    char (*rcpts)[256], size_t n_rcpts, char *err, size_t errsz);

/* DSN requests (RFC 3461) carried with a queued message.  NOTIFY is a bit
 * set, 0 when the client gave none (then: failure and delay notices, no
 * success notice); the values equal SMTP_DSN_NOTIFY_* of smtp-parse.h. */
enum {
	STORE_DSN_NOTIFY_NEVER = 1,
	STORE_DSN_NOTIFY_SUCCESS = 2,
	STORE_DSN_NOTIFY_FAILURE = 4,
	STORE_DSN_NOTIFY_DELAY = 8,
};
/* RET: 0 not given (headers are returned), FULL or HDRS. */
enum { STORE_DSN_RET_NONE = 0, STORE_DSN_RET_FULL = 1, STORE_DSN_RET_HDRS = 2 };

/* One recipient for store_queue_add_dsn. */
struct store_queue_new_rcpt {
	const char *addr;  /* remote address (or, with delivered, the
			    * local recipient as given in RCPT TO) */
	unsigned notify;   /* STORE_DSN_NOTIFY_* bits, 0 if not given */
	const char *orcpt; /* ORCPT as received ("rfc822;a+2Bb@x"), NULL/"" none */
	bool delivered;    /* already delivered locally and asked for
			    * NOTIFY=SUCCESS: the row starts "delivered" with
			    * its success DSN pending, and is never sent */
	bool expanded;     /* with delivered: the address was an alias of
			    * several targets; the row starts "expanded"
			    * (RFC 3461 5.2.7.3 c, RFC 3464 Action: expanded) */
};

/* store_queue_add with the DSN parameters of the transaction: ret
 * (STORE_DSN_RET_*), envid (ENVID as received, xtext; NULL/"" none) and
 * per recipient NOTIFY and ORCPT.  Same durability and return codes as
 * store_queue_add (which is this with no DSN parameters). */
int store_queue_add_dsn(struct store *s, const char *path, const char *sender, int ret,
			const char *envid, const struct store_queue_new_rcpt *rcpts, size_t n_rcpts,
			char *err, size_t errsz);

/* One local delivery of a message (or its discarding by Sieve), for the
 * delivery log that `tern trace` reads. */
struct store_local_record {
	const char *rcpt; /* the RCPT TO address that reached the account */
	int64_t account_id;
	const char *via;    /* store_targets.local_via: "" directly */
	const char *folder; /* the mailbox it went into ("INBOX"); NULL:
			     * discarded by Sieve (nothing stored) */
	const char *note;   /* what Sieve did, in words ("filed there by
			     * Sieve"), NULL/"" nothing to say */
};

/* The local deliveries of one message. */
struct store_local_item {
	const char *path;   /* the message file: its size, Message-ID and our
			     * Received: line are read from it when queue_id is 0 */
	const char *sender; /* MAIL FROM, "" for the null sender */
	int64_t queue_id;   /* the queued message of the same transaction (its
			     * remote recipients), 0 if none */
	const struct store_local_record *v;
	size_t n;
};

/* One message for store_queue_add_batch: the arguments of
 * store_queue_add_dsn, status (out): 0 queued, -1 not, id (out): its
 * queue id when queued, and local (NULL: none): the local deliveries of
 * the same transaction, logged as store_queue_local_log does but in the
 * queue's own (synced) transaction; local->queue_id is not used. */
struct store_queue_item {
	const char *path;
	const char *sender;
	int ret;
	const char *envid;
	const struct store_queue_new_rcpt *rcpts;
	size_t n_rcpts;
	int status;
	int64_t id;
	const struct store_local_item *local;
	bool requiretls; /* MAIL FROM ... REQUIRETLS (RFC 8689; store-requiretls.c) */
};

/* Queues several messages with one sync of DATA/queue/ and one database
 * transaction (group commit for the SMTP receiver's batch).  Each item
 * with status 0 is as durable as after store_queue_add_dsn; one with
 * status -1 is not queued (an invalid item fails alone, a database error
 * fails the whole batch).  The queue runner is woken once.  Returns 0 if
 * every item was queued, else -1 with err describing the first failure. */
int store_queue_add_batch(struct store *s, struct store_queue_item *items, size_t n, char *err,
			  size_t errsz);

/* Records local deliveries in the delivery log (queue_log rows with event
 * "delivered" or "discarded", the account's address, the folder and how
 * the recipient reached it).  A message without a queue_id gets a
 * finished queue_messages row of its own (no file), so that `tern trace`
 * finds it like a remote one and store_queue_prune forgets it after
 * queue.history.  One transaction for all items, committed without a
 * sync of its own (this is a record of deliveries already durable, not a
 * promise: a power failure may lose the last records, never mail).
 * 0 or -1 (err). */
int store_queue_local_log(struct store *s, const struct store_local_item *items, size_t n,
			  char *err, size_t errsz);

/* The queue runner and `tern queue`/`tern trace` (src/queue, src/cli) use
 * the functions below; the schema is in store-queue.c (docs/outbound.md).
 *
 * A recipient row is in one of these states:
 *   deferred   waiting for next_attempt (new rows start here)
 *   sending    claimed by the queue runner (store_queue_claim); put back to
 *              deferred by store_queue_recover when the runner starts
 *   hold       set aside by `tern queue hold` until released
 *   delivered, expanded, bounced, removed   final: kept for `tern trace` until
 *              store_queue_prune
 * A message's file stays in DATA/queue/ while a recipient is not final or
 * still waits for its DSN (bounce or delay notice); store_queue_finish
 * then unlinks it.  Every attempt and every change of state is one row of
 * the delivery log (store_queue_log). */

/* Account id sent through the notification hook when a message was
 * queued: the master relays it to the queue runner only. */
#define STORE_NOTIFY_QUEUE ((int64_t)-1)

/* DSN kinds pending for a recipient (struct store_queue_rcpt.dsn). */
enum {
	STORE_DSN_NONE = 0,
	STORE_DSN_FAILURE = 1,
	STORE_DSN_DELAY = 2,
	STORE_DSN_SUCCESS = 3, /* delivered locally, or relayed to a server
				* without DSN, and NOTIFY had SUCCESS */
};

struct store_queue_message {
	int64_t id;             /* the queue id users see */
	char file[25];          /* file name in DATA/queue/ */
	char sender[256];       /* "" for the null sender */
	int64_t created;        /* unix time it was queued */
	char msgid[256];        /* Message-ID header without <>, "" if none */
	char received[512];     /* our first Received: line, unfolded */
	uint64_t size;
	int dsn_ret;            /* STORE_DSN_RET_* */
	char dsn_envid[101];    /* ENVID as received (xtext), "" if none */
	bool requiretls;        /* received with REQUIRETLS (RFC 8689) */
};

struct store_queue_rcpt {
	int64_t id;
	int64_t message_id;
	char rcpt[256];
	char state[16];
	int64_t attempts;
	int64_t next_attempt;
	int64_t updated;        /* time of the last change */
	char status[16];        /* enhanced status of the last result, "4.4.1" */
	char last_reply[512];   /* the remote's last reply, or our reason */
	char remote[300];       /* "mx.example.net [192.0.2.1]" of the last reply */
	int dsn;                /* STORE_DSN_* still to send */
	bool warned;            /* a delay notice was sent */
	unsigned notify;        /* STORE_DSN_NOTIFY_* bits, 0 if not given */
	char orcpt[501];        /* ORCPT as received, "" if none */
};

/* What became of one recipient (store_queue_update). */
struct store_queue_outcome {
	int64_t rcpt_id;
	const char *state;      /* "delivered", "deferred" or "bounced" */
	int64_t next_attempt;   /* for deferred */
	bool attempt;           /* counts as a delivery attempt */
	int dsn;                /* STORE_DSN_* to send now */
	const char *status;     /* enhanced status code */
	const char *reply;      /* remote reply or our reason (one line) */
	const char *mx;         /* host name, "" if no connection */
	const char *ip;         /* address, "" if none */
	/* TLS of the attempt's connection (queue_log; NULL/"" when there
	 * was no connection): tls_version "TLSv1.3" or "none" for
	 * plaintext; tls_note says why a certificate was not verified, or
	 * why a plaintext attempt had no TLS. */
	const char *tls_version;
	const char *tls_cipher;
	bool tls_verified;
	const char *tls_note;
};

/* One row of the delivery log. */
struct store_queue_event {
	int64_t time;
	char rcpt[256];         /* "" for message events */
	char event[16];         /* queued, attempt, delivered, deferred, bounced,
				 * dsn, hold, release, retry, removed,
				 * discarded (local, by Sieve) */
	char status[16];
	char mx[256];
	char ip[64];
	char reply[512];
	/* For attempts (see store_queue_outcome): "" not recorded (no
	 * connection, or a row older than TLS recording), "none", or the
	 * version. */
	char tls_version[16];
	char tls_cipher[64];
	bool tls_verified;
	char tls_note[200];
	/* Local deliveries (store_queue_local_log): the account's address,
	 * the folder ("" when discarded) and how rcpt reached it; "" for
	 * every other event.  reply holds Sieve's note. */
	char account[256];
	char folder[256];
	char via[STORE_VIA_MAX];
};

/* Creates or upgrades the queue tables (called by store_open). */
int store_queue_schema(struct store *s, char *err, size_t errsz);
/* Puts rows left in "sending" (a runner that died) back to deferred, due
 * now.  Called once when the queue runner starts. */
int store_queue_recover(struct store *s, char *err, size_t errsz);
/* Claims up to max deferred recipients due at now (oldest due first):
 * they become "sending" and are copied to out; *n_out says how many. */
int store_queue_claim(struct store *s, int64_t now, size_t max, struct store_queue_rcpt *out,
		      size_t *n_out, char *err, size_t errsz);
/* Earliest next_attempt of a deferred recipient: 1 (set *when), 0 if
 * there is none, -1 on error. */
int store_queue_next_due(struct store *s, int64_t *when);
/* 1 found (m filled), 0 no such message, -1 error. */
int store_queue_message_get(struct store *s, int64_t id, struct store_queue_message *m);
/* Path of a queued message's file. 0 or -1. */
int store_queue_path(struct store *s, const char *file, char *out, size_t outsz);
/* Records the outcomes of n recipients (of any messages) in one
 * transaction, with a log row each.  A row no longer in
 * "sending"/"deferred" (removed or held by the CLI meanwhile) keeps its
 * state; the attempt is still logged.  In the same transaction every
 * message of o with nothing left to do (no recipient waiting, no DSN
 * pending) is finished as store_queue_finish does; its file is removed
 * after the commit.  0, or -1 with err (nothing recorded, unless only the
 * removal of a finished file failed). */
int store_queue_update(struct store *s, const struct store_queue_outcome *o, size_t n,
		       char *err, size_t errsz);
/* Messages with a DSN to send: calls cb for each (message id) until it
 * returns non-zero. */
int store_queue_dsn_pending(struct store *s, int (*cb)(void *ctx, int64_t message_id),
			    void *ctx, char *err, size_t errsz);
/* Marks the DSN of the given kind sent for every recipient of message
 * (a delay notice also sets warned), and logs it. */
int store_queue_dsn_done(struct store *s, int64_t message_id, int kind, char *err,
			 size_t errsz);
/* Deferred recipients queued before created_before and not yet warned:
 * they get dsn = STORE_DSN_DELAY.  *n_out (may be NULL) says how many. */
int store_queue_mark_delayed(struct store *s, int64_t created_before, size_t *n_out,
			     char *err, size_t errsz);
/* Unlinks the message's file if no recipient is active or waits for a DSN.
 * *finished (may be NULL) tells whether it did. */
int store_queue_finish(struct store *s, int64_t message_id, bool *finished, char *err,
		       size_t errsz);
/* Recipients of one message (message_id > 0), or of every message with an
 * active recipient (message_id 0: deferred, sending, hold), in id order. */
int store_queue_rcpts(struct store *s, int64_t message_id,
		      int (*cb)(void *ctx, const struct store_queue_rcpt *r), void *ctx,
		      char *err, size_t errsz);
/* The delivery log of one message, oldest first. */
int store_queue_log(struct store *s, int64_t message_id,
		    int (*cb)(void *ctx, const struct store_queue_event *e), void *ctx,
		    char *err, size_t errsz);
/* Administrative change of every active recipient of a message:
 * "retry" (deferred/hold -> deferred, due now), "hold" (deferred -> hold),
 * "release" (hold -> deferred, due now), "remove" (-> removed; no DSN).
 * *n_changed (may be NULL) counts the rows changed. */
int store_queue_admin(struct store *s, int64_t message_id, const char *action,
		      size_t *n_changed, char *err, size_t errsz);
/* Message ids matching key for `tern trace`: a queue id (digits), the file
 * id, the SMTP id in our Received: line, a Message-ID (with or without
 * <>), or an address (sender, recipient, local recipient as given in RCPT
 * TO, or the account a local delivery went to).  Newest first, at most
 * max. */
int store_queue_find(struct store *s, const char *key, int64_t *ids, size_t max,
		     size_t *n_out, char *err, size_t errsz);
/* Forgets finished messages (no active recipient, file gone) older than
 * before (queued and last changed before it), with their log, local
 * deliveries included.  *n_out (may be NULL) counts them. */
int store_queue_prune(struct store *s, int64_t before, size_t *n_out, char *err,
		      size_t errsz);

/* The queue at a glance (store-queue-stats.c; metrics, `tern status`):
 * messages with a recipient still to deliver, those recipients (deferred,
 * sending, hold), and the unix time the oldest of those messages was
 * queued (0: none).  0, or -1 with err. */
struct store_queue_stats {
	uint64_t messages;
	uint64_t recipients;
	int64_t oldest;
};
int store_queue_stats(struct store *s, struct store_queue_stats *out, char *err, size_t errsz);

/* ------------------------------------------------- mailboxes and messages */

/* Special-use bits (RFC 6154). */
enum {
	STORE_SU_SENT = 1 << 0,
	STORE_SU_DRAFTS = 1 << 1,
	STORE_SU_TRASH = 1 << 2,
	STORE_SU_JUNK = 1 << 3,
	STORE_SU_ARCHIVE = 1 << 4,
	STORE_SU_ALL = 1 << 5,
	STORE_SU_FLAGGED = 1 << 6,
};

/* System flags as bits. */
enum {
	STORE_F_SEEN = 1 << 0,
	STORE_F_ANSWERED = 1 << 1,
	STORE_F_FLAGGED = 1 << 2,
	STORE_F_DELETED = 1 << 3,
	STORE_F_DRAFT = 1 << 4,
};

/* The system flags by IMAP name ("\\Seen"...), in that order. */
struct store_flag_name {
	const char *name;
	unsigned bit;
};
#define STORE_N_SYSTEM_FLAGS 5
extern const struct store_flag_name store_system_flags[STORE_N_SYSTEM_FLAGS];

struct store_mailbox {
	int64_t id;            /* stable, never reused in an account */
	char name[512];        /* UTF-8, hierarchy delimiter '/' */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	unsigned special_use;  /* STORE_SU_* */
	bool subscribed;       /* the name is subscribed (store_mailbox_subscribe) */
	uint32_t messages;     /* count */
	uint32_t unseen;       /* count without \Seen */
	uint32_t recent;       /* count above the recent mark (store_imap_recent) */
	uint64_t size;         /* sum of message sizes */
	uint32_t deleted;      /* count with \Deleted */
	uint64_t deleted_size; /* sum of their sizes */
};

struct store_message {
	uint32_t uid;
	char file_id[25];      /* name of the file in msg/ */
	uint64_t size;         /* exact bytes of the file */
	int64_t internaldate;  /* unix time */
	unsigned flags;        /* STORE_F_* */
	char keywords[1024];   /* space-separated keywords, "" if none */
	uint64_t modseq;
	int64_t thread_id;     /* reserved for threading; 0 until assigned */
};

struct store_account;  /* an open account.db, cached by the store */

/* Opens an account by address (1: found, 0: no such account, -1: error).
 * The handle belongs to the store (do not free it); it stays valid until
 * store_close or store_account_remove of that account (its database may be
 * closed in between to bound open files, see store_set_account_cache; the
 * handle reopens it when used). */
int store_account_open(struct store *s, const char *address, struct store_account **out);
int store_account_open_id(struct store *s, int64_t id, struct store_account **out);
int64_t store_account_id(const struct store_account *a);
/* The account's last modseq and its state counter (bumped by every change,
 * for JMAP).  Either pointer may be NULL.  0 or -1. */
int store_account_state(struct store_account *a, uint64_t *modseq, uint64_t *state);

/* Uploaded blobs of an account (store-blob.c, JMAP RFC 8620 6.1): ids
 * are "G" + the SHA-256 of the bytes in hex. */
#define STORE_BLOB_ID_LEN 65
/* True if id has the form of a blob id. */
bool store_blob_id_ok(const char *id);
/* Stores data[0..len) (fsync'ed before it returns) as a blob kept until
 * expires (unix time; the same bytes again: the later of the two expiries)
 * and writes its id into id_out.  Also drops a few blobs expired at now.
 * 0 or -1 with err. */
int store_blob_put(struct store_account *a, const void *data, size_t len, int64_t now,
		   int64_t expires, char id_out[STORE_BLOB_ID_LEN + 1], char *err, size_t errsz);
/* Opens a blob not expired at now for reading: returns the descriptor
 * (the caller closes it) and sets *size; -2 if there is no such blob (or
 * id is not a blob id); -1 with err on error. */
int store_blob_open(struct store_account *a, const char *id, int64_t now, uint64_t *size,
		    char *err, size_t errsz);

/* Sieve scripts of an account (store-sieve.c, docs/sieve.md).  Names are
 * UTF-8 without control characters, 1..STORE_SIEVE_NAME_MAX bytes; at most
 * one script is active.  The store does not check the content: compile it
 * before store_sieve_put. */
#define STORE_SIEVE_NAME_MAX 128
int store_sieve_name_ok(const char *name, char *err, size_t errsz);
/* Stores (or replaces) a script; a new one fails if the account already
 * has max_scripts.  0 or -1 with err. */
int store_sieve_put(struct store_account *a, const char *name, const char *content, size_t len,
		    uint64_t max_scripts, char *err, size_t errsz);
/* The content of script name, or of the active script if name is NULL,
 * into *content (malloc'ed, NUL-terminated, *len bytes without the NUL;
 * free it).  *active (may be NULL) tells if it is the active one.
 * 1 found, 0 none, -1 error. */
int store_sieve_get(struct store_account *a, const char *name, char **content, size_t *len,
		    bool *active, char *err, size_t errsz);
/* Sieve vacation response tracking (RFC 5230 4.2; store-vacation.c): per
 * account, which reply (handle) went to which sender until when.  Senders
 * compare case-insensitively. */
#define STORE_VACATION_MAX 10000 /* rows kept per account; the oldest go first */
/* 1 if a reply with handle went to sender and its period has not ended at
 * now, 0 if not, -1 error. */
int store_vacation_seen(struct store_account *a, const char *sender, const char *handle,
			int64_t now, char *err, size_t errsz);
/* Records that it was sent, valid until `until`, in one synced
 * transaction that also drops the rows expired at now and the oldest
 * beyond STORE_VACATION_MAX.  0 or -1. */
int store_vacation_record(struct store_account *a, const char *sender, const char *handle,
			  int64_t now, int64_t until, char *err, size_t errsz);
/* The Sieve duplicate tracking list (RFC 7352; store-duplicate.c): per
 * account, which (handle, unique ID) was delivered, until when. */
#define STORE_DUPLICATE_MAX 10000 /* rows kept per account; the soonest to expire go first */
/* 1 if (handle, id) is in the list unexpired at now, 0 if not, -1 error. */
int store_duplicate_seen(struct store_account *a, const char *handle, const char *id,
			 int64_t now, char *err, size_t errsz);
struct store_duplicate {
	const char *handle, *id;
	int64_t expires; /* for a new (or expired) entry, or with last */
	bool last;       /* refresh a live entry's expiry too (RFC 7352 :last) */
};
/* Records entries e[0..n) in one synced transaction that also drops the
 * rows expired at now and the soonest to expire beyond
 * STORE_DUPLICATE_MAX.  0 or -1. */
int store_duplicate_record(struct store_account *a, const struct store_duplicate *e, size_t n,
			   int64_t now, char *err, size_t errsz);
/* The address of account id (lower-case) into out.  1 found, 0 no such
 * account, -1 error. */
int store_account_address(struct store *s, int64_t id, char out[256]);
/* Makes name the active script (the others inactive); NULL makes none
 * active.  1 done, 0 no such script, -1 error. */
int store_sieve_activate(struct store_account *a, const char *name, char *err, size_t errsz);
/* Deletes an inactive script.  1 done, 0 no such script, -1 error
 * (also when it is active). */
int store_sieve_delete(struct store_account *a, const char *name, char *err, size_t errsz);
/* Renames script from to to (keeping its content and active flag).
 * 1 done, 0 no script from, -2 a script to exists (nothing changed), -1
 * error. */
int store_sieve_rename(struct store_account *a, const char *from, const char *to, char *err,
		       size_t errsz);
/* Calls cb for each script in name order (cb must not use the store;
 * nonzero stops).  0 or -1. */
int store_sieve_list(struct store_account *a,
		     int (*cb)(void *ctx, const char *name, uint64_t size, bool active), void *ctx,
		     char *err, size_t errsz);

/* Lists mailboxes in name order, with counts filled. */
int store_mailbox_list(struct store_account *a,
		       int (*cb)(void *ctx, const struct store_mailbox *mb), void *ctx, char *err,
		       size_t errsz);
/* 1 found (mb filled, with counts), 0 no such mailbox, -1 error.  "INBOX"
 * matches case-insensitively. */
int store_mailbox_get(struct store_account *a, const char *name, struct store_mailbox *mb);
/* Mailbox names: UTF-8, 1..500 bytes, no control characters, no '*' or
 * '%' (LIST wildcards), no empty level (leading, trailing or double '/').
 * Create makes missing parents ("a", "a/b" for "a/b/c"); new mailboxes are
 * not subscribed.  special_use is STORE_SU_* bits. */
bool store_mailbox_name_ok(const char *name);
int store_mailbox_create(struct store_account *a, const char *name, unsigned special_use,
			 char *err, size_t errsz);
/* Deleting INBOX fails; messages of a deleted mailbox are removed. */
int store_mailbox_delete(struct store_account *a, const char *name, char *err, size_t errsz);
/* Renaming INBOX moves its messages to a new mailbox and leaves INBOX
 * empty (RFC 9051 6.3.6), its children staying where they are.  Other
 * mailboxes keep their id and UIDVALIDITY, and their children (name/...)
 * are renamed too.  Missing parents of the new name are created. */
int store_mailbox_rename(struct store_account *a, const char *from, const char *to, char *err,
			 size_t errsz);
/* Subscriptions are names, apart from the mailboxes: a name no mailbox has
 * may be subscribed, DELETE does not unsubscribe and RENAME does not move
 * a subscription (RFC 9051 6.3.5-6.3.8).  Subscribing a subscribed name
 * and unsubscribing one that is not are no-ops.  0; -1 error (bad name or
 * database); -2 if the account has STORE_SUBSCRIPTIONS_MAX already. */
#define STORE_SUBSCRIPTIONS_MAX 10000
int store_mailbox_subscribe(struct store_account *a, const char *name, bool on, char *err,
			    size_t errsz);
/* Calls cb for each subscribed name, in name order (cb may use the store;
 * nonzero stops).  0 or -1. */
int store_mailbox_subscriptions(struct store_account *a,
				int (*cb)(void *ctx, const char *name), void *ctx, char *err,
				size_t errsz);

/* Appends a message (the file at path, CRLF lines, already fsync'ed) to a
 * mailbox; sets *uid_out.  Same durability as store_deliver.  -2 (nothing
 * stored) over a quota limit, as store_imap_append. */
int store_message_append(struct store_account *a, const char *mailbox, const char *path,
			 unsigned flags, const char *keywords, time_t internaldate,
			 uint32_t *uid_out, char *err, size_t errsz);
/* Lists messages with uid in [uid_lo, uid_hi] in UID order. */
int store_message_list(struct store_account *a, int64_t mailbox_id, uint32_t uid_lo,
		       uint32_t uid_hi, int (*cb)(void *ctx, const struct store_message *m),
		       void *ctx, char *err, size_t errsz);
/* Path of a message's file, into out (size outsz).  0 or -1. */
int store_message_path(struct store_account *a, const char *file_id, char *out, size_t outsz);
/* Sets flags/keywords of one message: mode 0 replace, 1 add, -1 remove;
 * bumps its modseq if anything changed.  *modseq_out may be NULL. */
int store_message_store_flags(struct store_account *a, int64_t mailbox_id, uint32_t uid,
			      int mode, unsigned flags, const char *keywords,
			      uint64_t *modseq_out, char *err, size_t errsz);
/* Copies (or moves, if move) one message to another mailbox; sets the new
 * uid.  The file is shared, not copied.  -2 over a quota limit. */
int store_message_copy(struct store_account *a, int64_t mailbox_id, uint32_t uid,
		       int64_t dest_mailbox_id, bool move, uint32_t *new_uid, char *err,
		       size_t errsz);
/* Expunges one message; remembers its uid and modseq (QRESYNC) and removes
 * the file when no mailbox refers to it any more.  -1 if there is no such
 * message. */
int store_message_expunge(struct store_account *a, int64_t mailbox_id, uint32_t uid, char *err,
			  size_t errsz);

/* Takes an exclusive, non-blocking lock on the account (flock on a file in
 * its folder), held until the returned descriptor is closed; the kernel
 * releases it when the holding process dies.  Separate calls exclude each
 * other even within one process (POP3: one session per maildrop).
 * Returns the descriptor (>= 0, close-on-exec; the caller closes it), or -1
 * with err and errno EWOULDBLOCK when someone else holds the lock (other
 * errno values: the lock file could not be opened). */
int store_account_lock(struct store_account *a, char *err, size_t errsz);

/* ---------------------------------------------------------- notification */

/* Change notifications: whoever changes an account (delivery, flags,
 * expunge) calls store_notify(); subscribers in this process are called
 * back at once, and the hook (set by the process that runs the event loops)
 * forwards the account id to the other processes, which call
 * store_notify_local() when it arrives. */
typedef void (*store_notify_cb)(void *ctx, int64_t account_id);
/* Returns a subscription id (>0) to pass to unsubscribe, or -1.
 * account_id 0 subscribes to every account.  A callback may subscribe and
 * unsubscribe. */
int store_notify_subscribe(struct store *s, int64_t account_id, store_notify_cb cb, void *ctx);
void store_notify_unsubscribe(struct store *s, int sub_id);
/* Sets the function that forwards notifications to other processes. */
void store_notify_set_hook(struct store *s, void (*hook)(void *ctx, int64_t account_id),
			   void *ctx);
/* Called by the store itself after every change; calls local subscribers
 * and the hook. */
void store_notify(struct store *s, int64_t account_id);
/* Calls local subscribers only (for notifications from other processes). */
void store_notify_local(struct store *s, int64_t account_id);

/* ------------------------------------------- commits off the loop (store-commit.c)
 *
 * A worker's event loop must not wait for a disk sync.  A caller that can
 * park its reply arms the account, calls the usual store write functions
 * (store_imap_append, store_imap_expunge, store_imap_copy,
 * store_mailbox_create ...: their API does not change) and launches:
 *
 *     if (store_commit_arm(a)) {
 *             r = store_imap_expunge(a, ...);   (replies are built, held)
 *             if (store_commit_launch(a, done_cb, ctx))
 *                     park;                     (done_cb sends them)
 *             else
 *                     send now;                 (nothing to commit)
 *     }
 *
 * While armed, every begin/commit of the account's database is a savepoint
 * of one open transaction (the caller reads its own changes); the commit
 * of that transaction, after fdatasync of the message files linked and a
 * sync of msg/ (so a row never becomes durable before its file), runs on
 * a commit thread with synchronous=FULL.  SQLite makes a FULL commit
 * visible to readers (this process's and others') only after its WAL sync,
 * so nobody ever sees a state that a power loss could take back.  What
 * must follow a durable commit (unlinking expunged files, store_notify)
 * is held and runs on the loop when it is done, before done_cb.
 * Until then the account is busy: any other use of it in this process
 * (store_account_db) waits for the commit, so callers that cannot wait
 * (IMAP sessions) check store_account_busy first and store_commit_wait.
 * Commits of different accounts run in parallel (STORE_COMMIT_THREADS). */
#define STORE_COMMIT_THREADS 8
/* ok: 0 committed and durable; -1 not (nothing of it happened), err says
 * why. */
typedef void (*store_commit_cb)(void *ctx, int ok, const char *err);
/* Starts the commit threads (once, in a worker, after fork) and returns
 * the descriptor the loop must watch for reading: when it is readable,
 * call store_commit_dispatch.  -1 with err on failure (then nothing is
 * ever deferred: arm returns false). */
int store_commit_enable(struct store *s, char *err, size_t errsz);
/* Runs the completions of the commits that are done: held actions, then
 * each callback (which may arm and launch again). */
void store_commit_dispatch(struct store *s);
/* Arms a (waiting for its commit in flight, if any).  False if commits are
 * not enabled, another account is armed, or a's database cannot open: the
 * store then works as usual, synced on the caller's thread. */
bool store_commit_arm(struct store_account *a);
/* True while a is armed (store internals and callers that sync files of
 * their own: while armed, the store fdatasyncs the files it links). */
bool store_commit_armed(const struct store_account *a);
/* Ends the armed section.  True: a commit was handed to a thread and
 * cb(ctx, ...) will be called from store_commit_dispatch (unless
 * store_commit_forget(ctx)).  False: there was nothing to commit (all
 * work was rolled back or read only); cb is never called. */
bool store_commit_launch(struct store_account *a, store_commit_cb cb, void *ctx);
/* True while a commit of a is in flight. */
bool store_account_busy(const struct store_account *a);
/* If a is busy: cb(ctx, ...) is called when its commit is done, 1.  Else
 * 0 and cb is never called. */
int store_commit_wait(struct store_account *a, store_commit_cb cb, void *ctx);
/* ctx goes away: no callback will be made with it. */
void store_commit_forget(struct store *s, void *ctx);

/* ------------------------------------------------ IMAP (store-imap.c) */
/* Added for the IMAP server; same conventions as above. */

struct buf;

/* UIDs of a mailbox's messages with uid >= uid_lo, ascending, into a new
 * array (*uids, caller frees; NULL when *n is 0). */
int store_imap_uids(struct store_account *a, int64_t mailbox_id, uint32_t uid_lo,
		    uint32_t **uids, size_t *n, char *err, size_t errsz);
/* UIDs expunged from a mailbox with a modseq above modseq, ascending, as
 * store_imap_uids.  The store remembers at most STORE_EXPUNGED_MAX expunged
 * uids per mailbox (the oldest are dropped, store-imap.c); *complete is
 * false when some dropped ones had a modseq above modseq, so the list may
 * miss uids (the caller then compares uid lists instead). */
int store_imap_expunged_since(struct store_account *a, int64_t mailbox_id, uint64_t modseq,
			      uint32_t **uids, size_t *n, bool *complete, char *err,
			      size_t errsz);
/* Expunged uids remembered per mailbox (with their modseq, for IMAP
 * QRESYNC and keeping sessions in step). */
#define STORE_EXPUNGED_MAX 10000
/* Changes that bound for this process (tests); 0 restores it. */
void store_set_expunged_max(struct store *s, size_t max);
/* Calls cb (in UID order) for each message with uid <= uid_max whose
 * modseq is above modseq.  cb returns 0 to go on; it may use the store. */
int store_imap_changed_since(struct store_account *a, int64_t mailbox_id, uint64_t modseq,
			     uint32_t uid_max, int (*cb)(void *ctx, const struct store_message *m),
			     void *ctx, char *err, size_t errsz);
/* The name of a mailbox by id into name[512]: 1 found, 0 gone, -1 error. */
int store_imap_mailbox_by_id(struct store_account *a, int64_t mailbox_id, char name[512]);

/* UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ of a mailbox by id (no counts,
 * so cheap): 1, 0 if the mailbox is gone, -1 error. */
int store_imap_mailbox_state(struct store_account *a, int64_t mailbox_id, uint32_t *uidvalidity,
			     uint32_t *uidnext, uint64_t *highestmodseq);
/* The lowest uid without \Seen: 1 (set), 0 none, -1 error. */
int store_imap_first_unseen(struct store_account *a, int64_t mailbox_id, uint32_t *uid);
/* \Recent (RFC 3501 2.3.2): a mailbox keeps the highest uid claimed as
 * recent; the messages above it are recent for the next session that
 * claims them.  With claim, raises the mark to uid_hi atomically, so the
 * caller alone gets uids mark+1 .. uid_hi (SELECT, and new messages a
 * selected session learns of); without, only looks (EXAMINE: a read-only
 * session sees \Recent and leaves it for the next one).  *lo is mark+1,
 * or 0 if no uid up to uid_hi is above the mark.  The claim is committed
 * without a sync of its own (a lost one makes messages recent again).
 * 0, or -1 with err (*lo 0). */
int store_imap_recent(struct store_account *a, int64_t mailbox_id, uint32_t uid_hi, bool claim,
		      uint32_t *lo, char *err, size_t errsz);
/* Calls cb with the keywords (space-separated) of each distinct keyword
 * combination among the mailbox's messages.  0 / -1. */
int store_imap_keyword_sets(struct store_account *a, int64_t mailbox_id,
			    void (*cb)(void *ctx, const char *keywords), void *ctx);

/* Cached IMAP strings of a message file (by file id, shared by copies). */
enum { STORE_IMAP_ENVELOPE = 0, STORE_IMAP_BODY = 1, STORE_IMAP_BODYSTRUCTURE = 2 };
struct store_imap_cache {
	const char *file_id;
	const char *envelope, *body, *bodystructure;
	size_t envelope_len, body_len, bodystructure_len;
	/* Header text for SEARCH (opaque to the store, written by the IMAP
	 * layer); NULL keeps what the row already has (or none). */
	const char *headers;
	size_t headers_len;
};
/* Appends the cached string kind (STORE_IMAP_*) to out: 1 found, 0 not
 * cached, -1 error. */
int store_imap_cache_get(struct store_account *a, const char *file_id, int kind,
			 struct buf *out);
/* Stores n entries in one transaction (not fsync'ed: a cache). */
int store_imap_cache_put(struct store_account *a, const struct store_imap_cache *e, size_t n,
			 char *err, size_t errsz);
/* The cached SEARCH header text of the first max messages of a mailbox
 * with uid in [uid_lo, uid_hi], in uid order, from one query.  has = 0 when the
 * message has no cached text (text NULL); else text is a malloc'ed copy
 * (NUL-terminated, len bytes).  Free with store_imap_headers_free. */
struct store_imap_headers {
	uint32_t uid;
	bool has;
	char *text;
	size_t len;
};
int store_imap_headers_list(struct store_account *a, int64_t mailbox_id, uint32_t uid_lo,
			    uint32_t uid_hi, size_t max, struct store_imap_headers **rows, size_t *n,
			    char *err, size_t errsz);
void store_imap_headers_free(struct store_imap_headers *rows, size_t n);

/* STORE on many messages in one transaction: mode 0 replace, 1 add, -1
 * remove, as store_message_store_flags.  Messages that no longer exist
 * are skipped; those that change share one new modseq (*modseq_out, 0 if
 * nothing changed; may be NULL).  After the commit cb (may be NULL) gets
 * every message that exists, with its flags after the change. */
int store_imap_store_flags(struct store_account *a, int64_t mailbox_id, const uint32_t *uids,
			   size_t n, int mode, unsigned flags, const char *keywords,
			   int (*cb)(void *ctx, const struct store_message *m), void *ctx,
			   uint64_t *modseq_out, char *err, size_t errsz);
/* The same, conditional (RFC 7162 UNCHANGEDSINCE): a message whose modseq
 * is above unchangedsince is not changed and gets modified[i] = true
 * (modified has n entries; may be NULL).  UINT64_MAX: no condition.  cb
 * still gets every message that exists (changed, unchanged or refused). */
int store_imap_store_flags_if(struct store_account *a, int64_t mailbox_id, const uint32_t *uids,
			      size_t n, int mode, unsigned flags, const char *keywords,
			      uint64_t unchangedsince, bool *modified,
			      int (*cb)(void *ctx, const struct store_message *m), void *ctx,
			      uint64_t *modseq_out, char *err, size_t errsz);
/* COPY (or MOVE, if move) of n messages in one transaction, all or
 * nothing; new_uids[i] gets the new uid of uids[i] (0 if that message no
 * longer exists).  The files are shared.  -2 (nothing changed) if it would
 * take the account over a quota limit (store_quota). */
int store_imap_copy(struct store_account *a, int64_t mailbox_id, const uint32_t *uids,
		    size_t n, int64_t dest_mailbox_id, bool move, uint32_t *new_uids,
		    uint64_t *modseq_out, char *err, size_t errsz);
/* One message for store_imap_append. */
struct store_imap_append_msg {
	const char *path;     /* message file, as for store_message_append */
	unsigned flags;       /* STORE_F_* */
	const char *keywords; /* space-separated, or NULL */
	time_t internaldate;
};
/* APPEND (and MULTIAPPEND, RFC 3502) of n messages to one mailbox, all or
 * nothing: the files are linked, the folder synced once and the rows
 * committed in one transaction (same durability as store_message_append).
 * uids[i] gets the uid of msgs[i]; *uidvalidity (may be NULL) the
 * mailbox's.  The caller still owns (and unlinks) the paths.  -2
 * (nothing stored) if they would take the account over a quota limit. */
int store_imap_append(struct store_account *a, const char *mailbox,
		      const struct store_imap_append_msg *msgs, size_t n, uint32_t *uidvalidity,
		      uint32_t *uids, char *err, size_t errsz);
/* Expunges n messages in one transaction; done[i] tells whether uids[i]
 * was there (and is now gone).  Files that lost their last reference are
 * unlinked after the commit. */
int store_imap_expunge(struct store_account *a, int64_t mailbox_id, const uint32_t *uids,
		       size_t n, bool *done, uint64_t *modseq_out, char *err, size_t errsz);

/* The spam classifier's per-user token database (store-spam.c,
 * docs/spam.md).  The store keeps counts of tokens the caller made
 * (src/spam); a message is trained under a key of at most
 * STORE_SPAM_KEY_MAX bytes: the file id of a stored message, or a hash of
 * the bytes `tern spam learn` read. */
#define STORE_SPAM_KEY_MAX 80
enum store_spam_class { STORE_SPAM_NONE = 0, STORE_SPAM_HAM = 1, STORE_SPAM_SPAM = 2 };
struct store_spam_totals {
	uint64_t spam, ham; /* messages trained */
	uint64_t tokens;    /* tokens kept */
};
/* 0 or -1. */
int store_spam_totals(struct store_account *a, struct store_spam_totals *out, char *err,
		      size_t errsz);
/* spam[i], ham[i]: the trained messages that had tokens[i] (0 for a token
 * not kept).  One read transaction.  0 or -1. */
int store_spam_counts(struct store_account *a, const char *const *tokens, size_t n,
		      uint32_t *spam, uint32_t *ham, char *err, size_t errsz);
/* How key was trained (*cls STORE_SPAM_NONE: not, or no longer known).
 * 0 or -1. */
int store_spam_trained(struct store_account *a, const char *key, enum store_spam_class *cls,
		       char *err, size_t errsz);
/* Trains the message key, of tokens[0..n), as cls in one transaction;
 * STORE_SPAM_NONE forgets it.  An earlier training of key the other way
 * is taken back first (its counts with these tokens: the same message
 * gives the same tokens).  Then tokens no longer counted and the least
 * recently trained beyond max_tokens (0: no bound) are dropped.  1 when
 * something changed, 0 when key was already trained as cls, -1 error
 * (nothing changed). */
int store_spam_train(struct store_account *a, const char *key, enum store_spam_class cls,
		     const char *const *tokens, size_t n, int64_t now, uint64_t max_tokens,
		     char *err, size_t errsz);
/* The account's Junk folder into out: the first mailbox with the \Junk
 * special use (RFC 6154), else the one named "Junk", else "Junk" made now
 * with \Junk.  0 or -1. */
int store_spam_junk_mailbox(struct store_account *a, char out[512], char *err, size_t errsz);

/* A user's sender lists for the spam filter (store-spamlist.c,
 * docs/spam.md "Sender lists"): patterns "user@domain" or "@domain" (the
 * domain and its subdomains), lower-cased. */
#define STORE_SPAMLIST_PATTERN_MAX 322
enum store_spamlist_kind { STORE_SPAMLIST_ALLOW = 1, STORE_SPAMLIST_BLOCK = 2 };
enum store_spamlist_origin {
	STORE_SPAMLIST_MANUAL = 0, /* tern spam allow|block */
	STORE_SPAMLIST_SENT = 1,   /* the user wrote to it (submission) */
};
struct store_spamlist_entry {
	char pattern[STORE_SPAMLIST_PATTERN_MAX];
	enum store_spamlist_kind kind;
	enum store_spamlist_origin origin;
	int64_t added, used; /* unix seconds */
};
/* Checks and normalises a pattern ("a@b.example", "@b.example"). 0 or -1. */
int store_spamlist_pattern(const char *in, char out[STORE_SPAMLIST_PATTERN_MAX], char *err,
			   size_t errsz);
/* Puts pattern on the list as kind, by hand (replaces an entry from sent
 * mail or of the other kind).  0 or -1 (bad pattern, list full, store). */
int store_spamlist_set(struct store_account *a, const char *pattern,
		       enum store_spamlist_kind kind, int64_t now, char *err, size_t errsz);
/* 1 removed, 0 it was not there, -1 error. */
int store_spamlist_remove(struct store_account *a, const char *pattern, char *err, size_t errsz);
/* The most specific entry for address (the address, its domain, each
 * parent domain): 1 found (*out), 0 none, -1 error. */
int store_spamlist_lookup(struct store_account *a, const char *address,
			  struct store_spamlist_entry *out, char *err, size_t errsz);
/* The user sent mail to addrs[0..n): each becomes (or stays, and is marked
 * used at now) an allow entry from sent mail, unless an entry made by hand
 * is there; bounded (least recently used dropped).  Not synced: losing
 * the last ones on a power failure is harmless.  0 or -1. */
int store_spamlist_note_sent(struct store_account *a, const char *const *addrs, size_t n,
			     int64_t now, char *err, size_t errsz);
/* Calls cb for every entry (by hand first, allow before block, by
 * pattern); a non-zero return of cb stops and is returned. */
int store_spamlist_each(struct store_account *a,
			int (*cb)(void *ctx, const struct store_spamlist_entry *e), void *ctx,
			char *err, size_t errsz);

/* Spam thresholds of a domain or a user's address (store-spamlevel.c,
 * docs/spam.md): -1 where that level sets nothing. */
struct store_spamlevel {
	int64_t junk;   /* 1..1000 */
	int64_t reject; /* 0 (never) or 1..1000 */
};
/* 1 found (*out), 0 none (*out all -1), -1 error. */
int store_spamlevel_get(struct store *s, const char *name, struct store_spamlevel *out,
			char *err, size_t errsz);
/* Sets both of name's values (-1: unset; both -1 removes the entry).  The
 * caller checks the ranges.  0 or -1. */
int store_spamlevel_set(struct store *s, const char *name, const struct store_spamlevel *l,
			char *err, size_t errsz);
/* ------------------------------------------------ full-text index
 * (store-fts.c; docs/imap.md "Full-text index") */

/* Text indexed per message file by default (search.index_max_text). */
#define STORE_FTS_MAX_TEXT_DEFAULT ((size_t)1024 * 1024)
/* Octets of folded text indexed per message file (header and body text
 * together); beyond it the file is marked partial and a miss is checked in
 * the file.  0: new messages are not indexed. */
void store_set_fts_max_text(struct store *s, size_t max);
/* What GET /health reports (store-health.c). */
struct store_health {
	bool database, spool, disk; /* each check: passed */
	uint64_t free_bytes;        /* available in the data folder */
	char why[320];              /* the first failure, in words */
};
/* 0 if the node can take mail now, -1 (h says why). */
int store_health(struct store *s, uint64_t min_free, struct store_health *h);
/* Starts the background indexer thread of s (store-indexer.c), the store
 * of worker slot of n_slots: the worker indexes the accounts with
 * id % n_slots == slot, the others leave theirs pending for it.  0, or -1
 * with err (then messages are indexed in their transaction). */
int store_indexer_start(struct store *s, size_t slot, size_t n_slots, char *err,
			size_t errsz);
/* True if needle (case-folded as SEARCH folds it) can be asked of the
 * index: strict UTF-8 of at least 3 characters (see store-fts.c). */
bool store_fts_needle_ok(const char *needle);
enum store_fts_field {
	STORE_FTS_BODY, /* the decoded text parts */
	STORE_FTS_TEXT, /* those or the header fields */
};
/* One string asked of the index: the uids (ascending, a new array) of the
 * messages whose indexed text holds needle (folded; store_fts_needle_ok). */
struct store_fts_query {
	enum store_fts_field field;
	const char *needle;
	uint32_t *uids; /* set by store_fts_search */
	size_t n;
};
/* Asks q[0..n_q) for the messages of mailbox_id in lo..hi, and lists in
 * *unsure (ascending, a new array) those the index cannot answer for
 * alone: not indexed (yet, or because indexing failed) or indexed in part.
 * A search must read the file of an unsure message that a query did not
 * list.  All in one read transaction.  0, or -1 with nothing allocated. */
int store_fts_search(struct store_account *a, int64_t mailbox_id, uint32_t lo, uint32_t hi,
		     struct store_fts_query *q, size_t n_q, uint32_t **unsure, size_t *n_unsure,
		     char *err, size_t errsz);
struct store_fts_status {
	uint64_t messages; /* rows in all mailboxes */
	uint64_t files;    /* message files they refer to (copies share one) */
	uint64_t complete, partial, failed, unindexed; /* files, by index state */
};
int store_fts_status(struct store_account *a, struct store_fts_status *st, char *err,
		     size_t errsz);
/* Indexes again every message file of mailbox_id (0: of every mailbox),
 * in batches of one transaction each; *done counts the files.  0 / -1. */
int store_fts_rebuild(struct store_account *a, int64_t mailbox_id, uint64_t *done, char *err,
		      size_t errsz);

/* ------------------------------------------------ JMAP (store-jmap.c) */
/* What JMAP Mail needs besides the IMAP view: thread ids and a change log
 * of mailboxes, kept in tables of their own and brought up to date by
 * store_jmap_sync at the start of each JMAP read (docs/jmap.md "Mail"). */

/* A mailbox with JMAP's counts (RFC 8621 2): an Email is a message file
 * (copies in one mailbox count once); unread means neither \Seen nor
 * \Draft; unread_threads counts threads with an unread Email in the
 * mailbox. */
struct store_jmap_mailbox {
	int64_t id;
	char name[512];
	unsigned special_use; /* STORE_SU_* */
	bool subscribed;
	uint32_t total_emails, unread_emails, total_threads, unread_threads;
};

/* Gives every message without a thread id one, and records the changes
 * of the mailboxes, threads and Emails since the last call under a new state (one
 * counter per account for both); sets *state to the state now.  0 or -1
 * with err. */
int store_jmap_sync(struct store_account *a, uint64_t *state, char *err, size_t errsz);

/* The mailboxes now (call store_jmap_sync first), in id order, into a new
 * array (*out, caller frees; *n entries).  0 or -1 with err. */
int store_jmap_mailboxes(struct store_account *a, struct store_jmap_mailbox **out, size_t *n,
			 char *err, size_t errsz);

enum store_jmap_change_kind {
	STORE_JMAP_CREATED = 0,
	STORE_JMAP_UPDATED = 1,
	STORE_JMAP_DESTROYED = 2,
};
struct store_jmap_change {
	int64_t id;   /* mailboxes and threads */
	char key[25]; /* Emails: the message file id */
	enum store_jmap_change_kind kind;
	bool props; /* UPDATED: more than the counts changed */
};

/* The mailboxes changed after state since (not above the current state:
 * the caller checks), in id order, into a new array (*out, caller frees;
 * *n entries); one created and destroyed since is left out.  0 or -1. */
int store_jmap_mailbox_changes(struct store_account *a, uint64_t since,
			       struct store_jmap_change **out, size_t *n, char *err, size_t errsz);
/* The same for threads (props is always true). */
int store_jmap_thread_changes(struct store_account *a, uint64_t since,
			      struct store_jmap_change **out, size_t *n, char *err, size_t errsz);
/* The same for Emails (key set; props always true): an Email changes when
 * a copy is added or expunged or its flags change. */
int store_jmap_email_changes(struct store_account *a, uint64_t since,
			     struct store_jmap_change **out, size_t *n, char *err, size_t errsz);
/* The ids of the threads now (after store_jmap_sync), ascending, at most
 * max + 1 of them (so the caller sees "more than max"), into a new array
 * (*out, caller frees; *n).  0 or -1. */
int store_jmap_thread_ids(struct store_account *a, size_t max, int64_t **out, size_t *n,
			  char *err, size_t errsz);
/* The Emails (message file ids) of a thread, oldest first (by the
 * earliest internal date of the file's copies), appended to out each
 * NUL-terminated; *n of them.  1 found, 0 no such thread, -1 error. */
int store_jmap_thread_get(struct store_account *a, int64_t thread_id, struct buf *out,
			  size_t *n, char *err, size_t errsz);

/* True if s is a 24-character id as made by fsutil_unique_id. */
bool store_name_is_file_id(const char *s, size_t n);

/* One IMAP copy of an Email (a message file in one mailbox). */
struct store_jmap_copy {
	int64_t mailbox_id;
	uint32_t uid;
	uint64_t size;
	int64_t internaldate; /* unix time */
	unsigned flags;       /* STORE_F_* */
	char keywords[1024];  /* space-separated, "" if none */
	uint64_t modseq;
	int64_t thread_id; /* 0 until store_jmap_sync gave one */
};
/* The copies of the Email file_id (a message file id), in mailbox id and
 * uid order, into a new array (*out, caller frees; *n).  1 found, 0 no
 * such Email (no copy left), -1 error. */
int store_jmap_email_copies(struct store_account *a, const char *file_id,
			    struct store_jmap_copy **out, size_t *n, char *err, size_t errsz);
/* Gives every message without a thread id one (what store_jmap_sync does
 * first, without the change log): IMAP's THREADID (RFC 8474) is the same
 * thread id.  0 or -1. */
int store_jmap_thread_assign(struct store_account *a, char *err, size_t errsz);

/* --------------------------------- JMAP Email/get (store-jmapget.c) */
/* The account's Emails (message file ids, NUL-terminated), ascending, at
 * most max + 1 of them (so the caller sees "more than max"), into a new
 * array (*out, caller frees; *n).  0 or -1 with err. */
int store_jmapget_email_ids(struct store_account *a, size_t max, char (**out)[25], size_t *n,
			    char *err, size_t errsz);

/* ------------------------------------------ JMAP query (store-jmapquery.c) */

/* Cache rows (store_imap_cache_put) made from parsed messages by a search
 * (IMAP SEARCH, JMAP Email/query), written when it ends
 * (store-imapfill.c).  Zero it and set max (the most rows one search
 * writes: the next search fills more). */
struct mime_tree; /* src/mail/mime.h */
struct store_imapfill {
	size_t max;
	struct store_imap_cache *e;
	char (*ids)[25];
	struct buf *bufs; /* 4 per row */
	size_t n;
};
/* Queues the row of file_id (parsed as t) with the header text
 * headers[0..headers_len) (textmatch_header_text); nothing when full. */
void store_imapfill_add(struct store_imapfill *q, const char *file_id, const struct mime_tree *t,
			const char *headers, size_t headers_len);
/* Writes the queued rows in one transaction and empties the queue (max
 * kept).  0 or -1 with err (the rows are dropped: a cache). */
int store_imapfill_flush(struct store_account *a, struct store_imapfill *q, char *err,
			 size_t errsz);

/* What Email/query and SearchSnippet/get read (docs/jmap.md "Email/query"). */

/* An Email (a message file) as its copies describe it. */
struct store_jmapq_email {
	char file_id[25];
	int64_t thread_id; /* 0 until store_jmap_sync gave one */
	uint64_t size;
	int64_t received;   /* the earliest internal date of its copies */
	unsigned flags;     /* STORE_F_* set on any copy */
	char *keywords; /* the keywords of any copy, space-separated ("" none) */
	int64_t *mailboxes; /* the mailboxes of its copies, ascending, distinct */
	size_t n_mailboxes;
	char *headers; /* the IMAP cache's decoded header text (store-imap.c), or NULL */
	size_t headers_len;
};
/* Every Email of the account, in file id order, into a new array (*out,
 * free with store_jmapq_emails_free; *n); with headers, each with the
 * cached header text when there is a row.  0 or -1 with err. */
int store_jmapq_emails(struct store_account *a, bool headers, struct store_jmapq_email **out,
		       size_t *n, char *err, size_t errsz);
void store_jmapq_emails_free(struct store_jmapq_email *v, size_t n);
/* kw is a word of the space-separated list (case-insensitive). */
bool store_jmapq_keyword_in(const char *list, const char *kw);

/* One string asked of the full-text index: the message files (file ids,
 * sorted, a new array) whose indexed text holds needle (folded;
 * store_fts_needle_ok). */
struct store_jmapq_fts {
	enum store_fts_field field;
	const char *needle;
	char (*ids)[25]; /* set by store_jmapq_fts */
	size_t n;
};
/* Asks q[0..n_q) of the whole account's index, and lists in *unsure
 * (sorted, a new array) the files it cannot answer for alone (as
 * store_fts_search).  0 or -1 with err. */
int store_jmapq_fts(struct store_account *a, struct store_jmapq_fts *q, size_t n_q,
		    char (**unsure)[25], size_t *n_unsure, char *err, size_t errsz);

/* ---------------------------------- JMAP set (store-jmapset.c) */
/* Email/import (RFC 8621 4.8): the message data[0..len) (CRLF lines:
 * the caller checked) into the mailboxes mailbox_ids[0..n) (n >= 1) with
 * flags (STORE_F_*), keywords (space-separated, or NULL) and
 * internaldate: an APPEND to the first, a COPY of it to each other, all
 * or nothing.  file_id gets the new message file's id (the Email).  0;
 * -2 over a quota limit (nothing stored); -3 a mailbox does not exist;
 * -1 error with err. */
int store_jmapset_import(struct store_account *a, const char *data, size_t len,
			 const int64_t *mailbox_ids, size_t n, unsigned flags, const char *keywords,
			 time_t internaldate, char file_id[25], char *err, size_t errsz);

/* ------------------------- JMAP VacationResponse (store-jmapvacation.c) */
/* The VacationResponse (RFC 8621 8) of an account.  The JMAP properties
 * as given (NULL: null; dates as UTCDate strings, from_time / to_time
 * their Unix times), and what delivery sends: reason (the text, or a
 * MIME entity when mime) as a Sieve vacation's.  A new account's is all
 * zero (disabled, state 0). */
struct store_jmapvacation {
	bool enabled;
	char *from_date, *to_date;
	int64_t from_time, to_time;
	char *subject, *text_body, *html_body;
	char *reason;
	bool mime;
	uint64_t state; /* 0 until first set, then one more at each set */
};
/* Reads v (free with store_jmapvacation_free).  0 or -1 with err. */
int store_jmapvacation_get(struct store_account *a, struct store_jmapvacation *v, char *err,
			   size_t errsz);
/* Replaces it with v (its state ignored) if the state is still
 * old_state, the state becoming old_state + 1: 0; -2 the state moved
 * (nothing written); -1 error with err. */
int store_jmapvacation_put(struct store_account *a, const struct store_jmapvacation *v,
			   uint64_t old_state, char *err, size_t errsz);
/* Whether it answers a message arriving at now (enabled, within the
 * dates). */
bool store_jmapvacation_active(const struct store_jmapvacation *v, int64_t now);
void store_jmapvacation_free(struct store_jmapvacation *v);
/* ---------------------------------- identities (store-identity.c) */
/* A sending identity (RFC 8621 6).  reply_to and bcc are NULL (none) or
 * EmailAddress lists as the caller writes them (jmap-identity.c: one
 * "email<TAB>name" line each, no TAB when the name is null); the store
 * only keeps and bounds them.  Strings are owned (store_identity_free). */
#define STORE_IDENTITY_MAX 100                    /* per account */
#define STORE_IDENTITY_NAME_MAX 256               /* bytes */
#define STORE_IDENTITY_ADDRS_MAX 8192             /* bytes of reply_to, of bcc */
#define STORE_IDENTITY_SIGNATURE_MAX (64 * 1024)  /* bytes of each signature */
struct store_identity {
	int64_t id;
	bool is_default; /* the user's own address: never removed */
	char *name, *email, *reply_to, *bcc, *text_signature, *html_signature;
	uint64_t created, modseq;
};
void store_identity_free(struct store_identity *v, size_t n);
/* Every identity of the account, by id (the default one made on the
 * first call), into a new array; *state the identities' state.  0 or -1. */
int store_identity_list(struct store_account *a, struct store_identity **out, size_t *n,
			uint64_t *state, char *err, size_t errsz);
enum store_identity_change_kind {
	STORE_IDENTITY_CREATED,
	STORE_IDENTITY_UPDATED,
	STORE_IDENTITY_DESTROYED,
};
struct store_identity_change {
	int64_t id;
	enum store_identity_change_kind kind;
};
/* The identities changed since state since, by id, into a new array;
 * *state the state now.  0 or -1. */
int store_identity_changes(struct store_account *a, uint64_t since,
			   struct store_identity_change **out, size_t *n, uint64_t *state, char *err,
			   size_t errsz);
/* Adds in (email required; NULL strings empty; whether in->email may be
 * sent as is the caller's check: store_may_send_as).  0 with *id; -2 a
 * field too long, -3 the account has STORE_IDENTITY_MAX; -1 error. */
int store_identity_add(struct store_account *a, const struct store_identity *in, int64_t *id,
		       char *err, size_t errsz);
/* Changes identity id: every non-NULL string of in but email; reply_to
 * and bcc when set_reply_to / set_bcc (NULL then clears).  1 done, 0 no
 * such identity, -2 a field too long, -1 error. */
int store_identity_update(struct store_account *a, int64_t id, const struct store_identity *in,
			  bool set_reply_to, bool set_bcc, char *err, size_t errsz);
/* Removes identity id.  1 done, 0 none, -2 the default identity, -1. */
int store_identity_remove(struct store_account *a, int64_t id, char *err, size_t errsz);
/* May account_id send as address (RFC 6409 8.1, docs/jmap.md
 * "Submission")?  Its own address; any address that resolves to it
 * (aliases, plus-addressing with delim: store_resolve); any address of
 * its domain when it is listed in domain_senders (the config key
 * submission.domain_senders); "*@domain" when domain_senders lets it or
 * the domain's catch-all alias delivers to it.  1 yes, 0 no, -1 error. */
int store_may_send_as(struct store *s, int64_t account_id, const char *address,
		      const char *delim, const char *domain_senders);

/* ------------------------------------------- mailbox ACLs (store-acl.c)
 *
 * RFC 4314 access control lists, in the owner's account.db.  Rights are
 * letters of STORE_ACL_RIGHTS, kept in that order; identifiers are
 * "anyone" or an account address (the caller checks which exist).  The
 * owner's own rights are implicit and never stored. */
#define STORE_ACL_RIGHTS "lrswipkxtea"
#define STORE_ACL_RIGHTS_LEN 11
/* What an identifier other than the owner can be granted: 'k' (create
 * below), 'x' (delete) and 'a' (administer) stay the owner's, so nobody
 * else renames, deletes or re-shares a mailbox. */
#define STORE_ACL_OTHERS_RIGHTS "lrswipte"
#define STORE_ACL_IDENT_MAX 255
#define STORE_ACL_MAX 64 /* identifiers per mailbox */
/* 1..STORE_ACL_IDENT_MAX bytes of visible characters. */
bool store_acl_ident_ok(const char *ident);
/* The rights of rights in canonical order into out; -1 if a letter is not
 * a right (out then has the known ones). */
int store_acl_canon(const char *rights, char out[STORE_ACL_RIGHTS_LEN + 1]);
/* Sets ident's rights on mailbox_id (replacing them; only letters of
 * STORE_ACL_OTHERS_RIGHTS); "" removes the entry.  Notifies the account.  0, -2 (the ACL has STORE_ACL_MAX
 * identifiers), -1 with err. */
int store_acl_set(struct store_account *a, int64_t mailbox_id, const char *ident,
		  const char *rights, char *err, size_t errsz);
/* cb for each entry of the mailbox's ACL, by identifier; a negative
 * return stops and is returned.  0 or -1. */
int store_acl_list(struct store_account *a, int64_t mailbox_id,
		   int (*cb)(void *ctx, const char *ident, const char *rights), void *ctx,
		   char *err, size_t errsz);
/* The rights ident has on mailbox_id (its entry and anyone's), canonical,
 * "" for none.  0 or -1. */
int store_acl_rights(struct store_account *a, int64_t mailbox_id, const char *ident,
		     char out[STORE_ACL_RIGHTS_LEN + 1], char *err, size_t errsz);
/* cb for each mailbox of a where ident (or anyone) has some right, with
 * those rights (canonical).  0, cb's negative return, or -1. */
int store_acl_granted(struct store_account *a, const char *ident,
		      int (*cb)(void *ctx, int64_t mailbox_id, const char *rights), void *ctx,
		      char *err, size_t errsz);
/* cb with the id of each account that may have granted ident (or anyone)
 * a right (a superset: check with store_acl_granted).  0, cb's negative
 * return, or -1. */
int store_acl_owners(struct store *s, const char *ident,
		     int (*cb)(void *ctx, int64_t owner_id), void *ctx, char *err, size_t errsz);
/* ------------------- JMAP EmailSubmission records (store-submission.c) */

/* One EmailSubmission (RFC 8621 7), as sent. */
struct store_submission {
	int64_t id;
	int64_t identity_id;
	char email_id[25];  /* the Email's message file id */
	int64_t thread_id;
	int64_t send_at;    /* unix time */
	char *mail_from;    /* the envelope's mailFrom */
	/* one line per rcptTo address: "ADDRESS" alone when it reached only
	 * local accounts, else "ADDRESS<TAB>REMOTE,REMOTE..." its remote
	 * targets (the queue's recipients) */
	char *rcpts;
	int64_t queue_id;   /* the queue entry of the remote targets, 0 none */
	char *local_reply;  /* the reply local delivery gave ("250 ...") */
	uint64_t modseq;
	char *status;       /* the deliveryStatus last seen (the JMAP layer's
			     * text), "" not yet */
};
enum store_submission_change_kind {
	STORE_SUBMISSION_CREATED,
	STORE_SUBMISSION_UPDATED,
	STORE_SUBMISSION_DESTROYED,
};
struct store_submission_change {
	int64_t id;
	enum store_submission_change_kind kind;
};
/* Adds in (id and modseq are set here) with *id.  0 or -1. */
int store_submission_add(struct store_account *a, const struct store_submission *in,
			 int64_t *id, char *err, size_t errsz);
/* The records not destroyed, by id, into a new array (free with
 * store_submission_free); *state the largest modseq.  0 or -1. */
int store_submission_list(struct store_account *a, struct store_submission **out, size_t *n,
			  uint64_t *state, char *err, size_t errsz);
/* The records changed since the state since, by id, into a new array
 * (free()); *state the state now.  0 or -1. */
int store_submission_changes(struct store_account *a, uint64_t since,
			     struct store_submission_change **out, size_t *n, uint64_t *state,
			     char *err, size_t errsz);
/* Records status as the deliveryStatus of id, with a new modseq when it
 * differs from the one recorded (so /changes reports it).  0 or -1. */
int store_submission_set_status(struct store_account *a, int64_t id, const char *status,
				char *err, size_t errsz);
/* Destroys the record id: 1, 0 no such record, -1 error. */
int store_submission_destroy(struct store_account *a, int64_t id, char *err, size_t errsz);
void store_submission_free(struct store_submission *v, size_t n);
/* ------------------------------------------------------- web sessions */

/* One sign-in of the web app (store-websession.c, docs/webmail.md). */
struct store_websession {
	unsigned char id_hash[32];   /* SHA-256 of the session id (the cookie) */
	int64_t account_id;
	char app_id[8];              /* the app password signed in with, "" main */
	unsigned char cred_tag[32];  /* authglue_result's cred_tag at sign-in */
	int64_t created, expires;    /* unix times */
	char account[256];           /* find: the account's address */
};

/* Stores a new session (and deletes the expired ones).  0 or -1 with err. */
int store_websession_add(struct store *s, const struct store_websession *ws, char *err,
			 size_t errsz);
/* The unexpired session whose id hashes to id_hash.  1 found (*out
 * filled), 0 none, -1 database error (logged). */
int store_websession_find(struct store *s, const unsigned char id_hash[32], int64_t now,
			  struct store_websession *out);
/* Deletes one session: 1 done, 0 none, -1 with err. */
int store_websession_remove(struct store *s, const unsigned char id_hash[32], char *err,
			    size_t errsz);
/* Deletes all the account's sessions: how many, or -1 with err. */
long store_websession_remove_account(struct store *s, int64_t account_id, char *err,
				     size_t errsz);

#endif
