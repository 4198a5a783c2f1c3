/*
 * imap-private.h - what the files of src/imap share: the session and
 * server structs, reply helpers and the command handlers that live in
 * their own files (imap-mailbox.c, imap-fetch.c, imap-message.c,
 * imap-search.c).  Nobody outside src/imap includes this.
 *
 * Memory: a session is kept small because tens of thousands may sit in
 * IDLE.  Everything that only a selected mailbox needs is in struct
 * imap_sel (allocated at SELECT); the command reader releases its buffers
 * between commands (imap_reader_shrink); per-command memory is freed when
 * the command ends.
 */
#ifndef TERN_IMAP_PRIVATE_H
#define TERN_IMAP_PRIVATE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "buf.h"
#include "config.h"
#include "imap-parse.h"
#include "imap-session.h"
#include "imap-view.h"
#include "sasl.h"
#include "store.h"

struct authglue;
struct tls;

enum imap_state {
	IMAP_STATE_NOAUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

/* What the session does with input. */
enum imap_mode {
	IMAP_MODE_READ,    /* reading commands */
	IMAP_MODE_SASL,    /* AUTHENTICATE sent "+ ": next line is a response */
	IMAP_MODE_IDLE,    /* IDLE: waiting for DONE */
	IMAP_MODE_DELAY,   /* an authentication step is running (auth/authglue.h:
			    * password check, limiter delay): read nothing */
	IMAP_MODE_TLS,     /* STARTTLS answered: switch to TLS once the OK is
			    * written; read nothing */
	IMAP_MODE_FETCH,   /* a FETCH is being sent; commands wait */
	IMAP_MODE_COMMIT,  /* a write's commit is being made durable off the
			    * loop (store_commit_launch), or the account's is:
			    * its reply is held, commands wait */
	IMAP_MODE_CLOSING, /* last reply sent, waiting for it to drain */
	IMAP_MODE_DEAD,    /* waiting to be reaped */
};

/* The selected mailbox as this session sees it. */
/* Bytes of the keyword list announced in a mailbox's FLAGS. */
#define IMAP_KEYWORDS_MAX 16384

struct imap_sel {
	int64_t id;
	char *name; /* UTF-8 */
	uint32_t uidvalidity;
	bool readonly;         /* EXAMINE */
	struct imap_view v;    /* sequence numbers <-> uids */
	uint64_t modseq_flags; /* flag changes up to here were reported */
	uint64_t modseq_exp;   /* expunges up to here were reported */
	uint32_t uidnext;      /* the view has every message below this uid */
	uint64_t own[8];       /* modseqs of this session's own STOREs */
	unsigned n_own;
	struct imap_seqset saved;  /* SEARCHRES "$" (RFC 5182), as UIDs */
	struct imap_seqset recent; /* UIDs with \Recent in this session, ascending */
	struct buf keywords;       /* announced in FLAGS (space-separated) */
	/* imap-acl.c: whose mailbox it is (s->acct, or the owner of a
	 * shared one), the session's rights on it (read again before each
	 * command) and the subscription to the owner's notifications */
	struct store_account *acct;
	bool shared;
	char rights[STORE_ACL_RIGHTS_LEN + 1];
	int sub_id;
};

struct imap_compress;

struct imap_session {
	struct imap_server *srv;
	struct imap_session *next, *prev;
	struct imap_session *pending_next; /* on srv->pending (notified in IDLE) */
	struct bufferevent *bev;           /* all socket I/O (STARTTLS may replace it) */
	struct imap_compress *z;           /* COMPRESS=DEFLATE: s->bev is its filter */
	char id[25];
	char ip[INET6_ADDRSTRLEN];
	bool loopback;
	bool rev2;      /* ENABLE IMAP4rev2 */
	bool utf8;      /* ENABLE UTF8=ACCEPT (or rev2) */
	bool condstore; /* a CONDSTORE enabling command was seen (RFC 7162 3.1) */
	bool qresync;   /* ENABLE QRESYNC (RFC 7162 3.2): VANISHED, not EXPUNGE */
	bool notified;  /* the store changed since the last sync */
	bool pending;   /* on srv->pending */
	bool uid_cmd;   /* the running command is a UID command */

	/* TLS and authentication */
	bool tls_on;                /* the connection is TLS (handshake may be pending) */
	bool tls_pending;           /* TLS handshake not finished yet */
	bool auth_final;            /* SCRAM's server-final sent as "+ ": "" ends it */
	bool auth_login_cmd;        /* the exchange is the LOGIN command (for logs) */
	enum sasl_mech auth_mech;   /* of the exchange */
	int64_t auth_account_id;    /* with auth_account */
	char *auth_account;         /* account authenticated, while auth_final */
	struct authglue *auth;      /* the AUTHENTICATE / LOGIN exchange in progress */
	struct sockaddr_storage sa; /* the client, for the brute-force limiter */

	enum imap_state state;
	enum imap_mode mode;
	struct imap_reader rd;
	unsigned errors;
	unsigned auth_failures;
	unsigned preauth_cmds;
	char *tag;                  /* tag of IDLE / AUTHENTICATE / LOGIN in progress */
	char *address;              /* after login */
	struct store_account *acct; /* after login; owned by the store */
	int sub_id;                 /* store notification subscription, 0 none */
	struct imap_sel *sel;
	struct imap_fetch *fetch; /* a FETCH in progress (IMAP_MODE_FETCH) */
	/* A write command's responses, held until its commit is durable
	 * (docs/architecture.md "Durability per write"). */
	bool holding;
	struct evbuffer *held;
};

struct imap_server {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct imap_session *sessions;
	size_t n_sessions;
	struct imap_session *dead;
	struct event *reaper;
	struct imap_session *pending; /* IDLE sessions to wake */
	struct event *wake_ev;
	bool shutting_down;
	void (*shutdown_cb)(void *ctx);
	void *shutdown_ctx;
	struct tls *tls;   /* the worker's TLS state; NULL: none */
	bool implicit_tls; /* TLS from the first byte (imaps, RFC 8314) */
};

/* A command's handler: c->tok[first..] are its arguments. */
struct imap_cmdctx {
	struct imap_session *s;
	const char *tag;
	const struct imap_command *c;
	const struct imap_tok *a; /* arguments */
	size_t n;                 /* number of arguments */
	bool uid;                 /* UID form */
};

/* ------------------------------------------------------ imap-session.c */

void imap_reply(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raw bytes to the client. */
void imap_send(struct imap_session *s, const void *p, size_t n);
/* "tag BAD text" and counts an error. */
void imap_bad(struct imap_cmdctx *x, const char *text);
/* "tag NO ..." for a store failure (logged with err). */
void imap_no_store(struct imap_cmdctx *x, const char *what, const char *err);
/* The capability list (no leading "CAPABILITY ") for this session. */
void imap_capabilities(struct imap_session *s, struct buf *out);
/* Converts a mailbox name from the client (mUTF-7 unless UTF-8 is on) to
 * UTF-8 into out[512].  0, or -1 after replying "tag BAD/NO". */
int imap_mailbox_arg(struct imap_cmdctx *x, const struct imap_tok *t, char out[512]);
/* The same for a mailbox that must exist (SELECT, STATUS, DELETE...): a
 * name no mailbox can have is answered NO [NONEXISTENT]. */
int imap_mailbox_arg_existing(struct imap_cmdctx *x, const struct imap_tok *t, char out[512]);
/* Decodes a mailbox name token (modified UTF-7 unless UTF8=ACCEPT) into
 * out; -1, with nothing sent, if no mailbox can have that name. */
int imap_mailbox_decode(const struct imap_session *s, const struct imap_tok *t, char out[512]);
/* Appends a mailbox name (UTF-8) as the client wants it (mUTF-7 for rev1
 * clients), as an IMAP string. */
int imap_mailbox_out(struct imap_session *s, const char *name, struct buf *out);
/* Brings the session's view of the selected mailbox up to date and sends
 * what changed: EXISTS, FETCH FLAGS and (if allow_expunge) EXPUNGE. */
void imap_sync(struct imap_session *s, bool allow_expunge);
/* The store notification callback of a session (ctx): its view is
 * synced at the next point that allows it. */
void imap_notify_cb(void *ctx, int64_t account_id);
/* Leaves the selected state (CLOSE, UNSELECT, SELECT of another). */
void imap_unselect(struct imap_session *s);
/* RFC 7162 3.1: called by every CONDSTORE enabling command.  The first
 * one with a mailbox selected sends "* OK [HIGHESTMODSEQ n]"; from then
 * on untagged FETCH responses carry MODSEQ. */
void imap_condstore_enable(struct imap_session *s);
/* The HIGHESTMODSEQ the client may rely on for the selected mailbox: all
 * changes up to it were reported. */
uint64_t imap_sel_highestmodseq(const struct imap_sel *sel);
/* Largest mod-sequence (RFC 7162: 63 bits). */
#define IMAP_MODSEQ_MAX UINT64_C(9223372036854775807)
/* Parses a mod-sequence token: 1..IMAP_MODSEQ_MAX, or 0.. if zero_ok
 * (mod-sequence-valzer).  0 or -1. */
int imap_modseq_arg(const struct imap_tok *t, bool zero_ok, uint64_t *out);
/* Records a modseq made by this session (not echoed back by imap_sync). */
void imap_own_modseq(struct imap_session *s, uint64_t modseq);
/* Sequence number (1-based) of uid in the view, 0 if absent. */
uint32_t imap_seq_of(const struct imap_sel *sel, uint32_t uid);
/* Parses a sequence set token for the view into a resolved set of UIDS
 * (sequence numbers are turned into the UIDs they name).  0, or -1 after
 * replying BAD. */
int imap_seqset_arg(struct imap_cmdctx *x, const struct imap_tok *t, struct imap_seqset *uids);
/* The sequence numbers (ascending) of the view's messages whose uid is in
 * set (resolved uids); *seqs is a new array (caller frees). */
size_t imap_set_seqs(const struct imap_sel *sel, const struct imap_seqset *set, uint32_t **seqs);
/* Copies a resolved set. */
void imap_seqset_copy(struct imap_seqset *dst, const struct imap_seqset *src);
/* Before an untagged FETCH showing keywords kw: if one of them is not in
 * the selected mailbox's FLAGS yet, adds it and appends "* FLAGS (...)"
 * and "* OK [PERMANENTFLAGS (...)]" to out (RFC 9051 7.3.5). */
void imap_keywords_announce(struct imap_session *s, const char *kw, struct buf *out);
/* Adds the keywords kw (space-separated) missing from sel->keywords,
 * setting *added if any was (the list is bounded: beyond it, none is). */
void imap_keywords_add(struct imap_sel *sel, const char *kw, bool *added);
/* Adds every keyword of the selected mailbox's messages to its list; if
 * one was new and out is not NULL, appends the FLAGS lines to out.  True
 * if one was new. */
bool imap_keywords_load(struct imap_session *s, struct buf *out);
/* Appends the FLAGS and PERMANENTFLAGS lines of the selected mailbox. */
void imap_flags_lines(struct imap_session *s, struct buf *out);
/* Appends "(\Seen \Flagged \Recent kw ...)" for flags, recent and
 * keywords. */
void imap_flags_out(struct buf *out, unsigned flags, bool recent, const char *keywords);
/* \Recent (RFC 3501 2.3.2) as this session sees it.  Finds out which of
 * the view's uids from `from` up are recent here: a read-write session
 * claims those above the mailbox's mark (store_imap_recent), a read-only
 * one only looks; IMAP4rev2 sessions do neither (RFC 9051 has no
 * \Recent).  Called at SELECT (from 1) and when the view grows. */
void imap_recent_learn(struct imap_session *s, uint32_t from);
/* True if the message uid of the view has \Recent in this session. */
bool imap_recent_has(const struct imap_session *s, uint32_t uid);
/* How many messages of the view have \Recent in this session. */
uint32_t imap_recent_count(const struct imap_session *s);
/* Parses a flag list (or a single flag) into system bits and keywords
 * (out[STORE_KEYWORDS_MAX-ish], space separated).  0 or -1. */
int imap_flags_arg(const struct imap_tok *t, size_t n, size_t *used, unsigned *flags, char *kw,
		   size_t kwsz);

/* A FETCH stops producing output above this much unsent output and goes
 * on when the client has read it. */
#define IMAP_FETCH_OUTPUT_HIGH (1024 * 1024)

/* imap-session.c: runs s->fetch (IMAP_MODE_FETCH until it is done). */
void imap_fetch_start(struct imap_session *s);
/* imap-fetch.c: sends more of s->fetch; true when it is complete (tagged
 * reply sent, s->fetch freed).  imap_fetch_free drops it (accepts none). */
bool imap_fetch_more(struct imap_session *s);
void imap_fetch_free(struct imap_session *s);

/* ------------------------------------------------ command handlers */

void imap_cmd_select(struct imap_cmdctx *x); /* SELECT, EXAMINE */
void imap_cmd_create(struct imap_cmdctx *x);
void imap_cmd_delete(struct imap_cmdctx *x);
void imap_cmd_rename(struct imap_cmdctx *x);
void imap_cmd_subscribe(struct imap_cmdctx *x); /* SUBSCRIBE, UNSUBSCRIBE */
void imap_cmd_list(struct imap_cmdctx *x);      /* LIST, LSUB */
void imap_cmd_namespace(struct imap_cmdctx *x);
void imap_cmd_status(struct imap_cmdctx *x);
void imap_cmd_append(struct imap_cmdctx *x);
void imap_cmd_fetch(struct imap_cmdctx *x);
void imap_cmd_store(struct imap_cmdctx *x);
void imap_cmd_copy(struct imap_cmdctx *x);    /* COPY, MOVE */
/* imap-spam.c: the spam classifier learns from COPY/MOVE (new_uids in
 * dest, 0 entries skipped) and from STORE of $Junk / $NotJunk (mode and
 * keywords as the STORE command's). */
void imap_spam_copied(struct imap_session *s, const struct store_mailbox *dest,
		      const uint32_t *new_uids, size_t n);
void imap_spam_stored(struct imap_session *s, int mode, const char *keywords,
		      const uint32_t *uids, size_t n);
void imap_cmd_expunge(struct imap_cmdctx *x); /* EXPUNGE, UID EXPUNGE */
void imap_cmd_close(struct imap_cmdctx *x);   /* CLOSE (expunges) */
void imap_cmd_search(struct imap_cmdctx *x);
void imap_cmd_sort(struct imap_cmdctx *x);   /* SORT, UID SORT (imap-sort.c) */
void imap_cmd_thread(struct imap_cmdctx *x); /* THREAD, UID THREAD (imap-thread.c) */
/* imap-quota.c (RFC 9208) */
void imap_cmd_getquotaroot(struct imap_cmdctx *x);
void imap_cmd_getquota(struct imap_cmdctx *x);
void imap_cmd_setquota(struct imap_cmdctx *x);

/* imap-acl.c (RFC 4314 ACL, RFC 2342 Other Users namespace) */
#define IMAP_ACL_NS_OTHERS "Other Users/"
void imap_cmd_setacl(struct imap_cmdctx *x);
void imap_cmd_deleteacl(struct imap_cmdctx *x);
void imap_cmd_getacl(struct imap_cmdctx *x);
void imap_cmd_listrights(struct imap_cmdctx *x);
void imap_cmd_myrights(struct imap_cmdctx *x);
/* A mailbox as a command names it, with the session's rights on it. */
struct imap_acl_mb {
	struct store_account *owner; /* s->acct, or the sharing account */
	struct store_mailbox mb;     /* its name as the client gave it */
	char rights[STORE_ACL_RIGHTS_LEN + 1];
	bool shared;
};
/* The session's account's address (as the store spells it).  0 or -1. */
int imap_acl_me(struct imap_session *s, char out[256]);
/* True if right r is in rights. */
bool imap_acl_has(const char *rights, char r);
/* Splits "Other Users/<address>/<mailbox>": 1 with *owner and mbname set,
 * 0 for a name of the session's own account (*owner s->acct, mbname the
 * name), -1 for a name in the namespace that names no other account. */
int imap_acl_split(struct imap_session *s, const char *name, struct store_account **owner,
		   char mbname[512]);
/* The session's rights on a mailbox of owner (all, for its own).  0/-1. */
int imap_acl_myrights(struct imap_session *s, struct store_account *owner, int64_t mailbox_id,
		      char out[STORE_ACL_RIGHTS_LEN + 1]);
/* Finds mailbox name (own or shared) that the command needs right need
 * on (0: none): 1 with m filled; 0 after NO [NONEXISTENT] (also when the
 * session may not know it exists) or NO [NOPERM]; -1 after an error. */
int imap_acl_mailbox(struct imap_cmdctx *x, const char *name, char need, struct imap_acl_mb *m);
/* True if the session has right on mailbox mailbox_id listed as name
 * (always for its own). */
bool imap_acl_may(struct imap_session *s, const char *name, int64_t mailbox_id, char right);
/* Appends "* MYRIGHTS name rights" for mailbox mailbox_id listed as
 * name (RFC 8440 LIST RETURN (MYRIGHTS)). */
void imap_acl_myrights_out(struct imap_session *s, const char *name, int64_t mailbox_id,
			   struct buf *b);
/* Adds to v[0..*n) the mailboxes of other accounts the session may list,
 * named "Other Users/<address>/<mailbox>".  0, or -1 with err. */
int imap_acl_list_shared(struct imap_session *s, struct store_mailbox **v, size_t *n, size_t *cap,
			 char *err, size_t errsz);

/* imap-search.c: the SEARCH evaluator, for SORT and THREAD.  Parses the
 * search keys x->a[i..x->n); 0 and *out (free with imap_search_free,
 * which accepts NULL), or -1 after replying BAD. */
/* ESEARCH return options (RFC 4731, RFC 5182 SAVE), for SEARCH and SORT
 * (ESORT, RFC 5267 3). */
enum {
	IMAP_RET_MIN = 1,
	IMAP_RET_MAX = 2,
	IMAP_RET_ALL = 4,
	IMAP_RET_COUNT = 8,
	IMAP_RET_SAVE = 16,
};
/* "RETURN (opt ...)" at x->a[*i]: 1 with *ret set (RETURN () is ALL) and
 * *i past it, 0 when there is none (*ret 0), -1 after replying BAD. */
int imap_search_return(struct imap_cmdctx *x, size_t *i, unsigned *ret);
/* Appends the ESEARCH response (with CRLF) for the hits in answer order
 * (MIN is hits[0], MAX hits[n - 1]); modseqs: theirs, or NULL for no
 * MODSEQ item. */
void imap_esearch_put(struct buf *b, const struct imap_cmdctx *x, unsigned ret,
		      const uint32_t *hits, const uint64_t *modseqs, size_t n);
struct imap_search;
struct smsg;
int imap_search_parse(struct imap_cmdctx *x, size_t i, struct imap_search **out);
void imap_search_free(struct imap_search **q);
/* True if q has a MODSEQ key (SORT then ends with "(MODSEQ n)"). */
bool imap_search_has_modseq(const struct imap_search *q);
/* The largest of v[0..n) (0 if n is 0). */
uint64_t imap_modseq_highest(const uint64_t *v, size_t n);
/* A message that matched, valid during the callback only. */
struct imap_search_hit {
	const struct store_message *m;
	uint32_t seq;
	struct smsg *d; /* for imap_search_header */
};
/* Runs q over the selected mailbox's view in UID order, calling cb for
 * each match.  want_hdr: cb calls imap_search_header (the header cache is
 * read in chunks, and filled for messages that had no row).  0, or -1
 * with err set (a store error). */
int imap_search_run(struct imap_session *s, const struct imap_search *q, bool want_hdr,
		    int (*cb)(void *ctx, const struct imap_search_hit *h), void *ctx, char *err,
		    size_t errsz);
/* Appends the RFC 2047-decoded values of the hit's header fields named
 * name, each followed by "\n" (as mime_search_header).  0 or -1. */
int imap_search_header(const struct imap_search_hit *h, const char *name, struct buf *out);

/* imap-sort.c: keys shared with THREAD.  String keys are cut at this many
 * octets (so memory stays O(messages)). */
#define SORT_STRING_MAX 256
/* The hit's base subject (RFC 5256 2.1), case-folded and cut at
 * SORT_STRING_MAX; *reply (may be NULL) as sortkey_base_subject.  The
 * caller frees the string. */
char *imap_sort_base_subject(const struct imap_search_hit *h, bool *reply);
/* The hit's sent date (RFC 5256 2.2), the internal date when its Date
 * field is missing or has no valid date. */
int64_t imap_sort_sent_date(const struct imap_search_hit *h);
/* The first value of the hit's header field name (RFC 2047-decoded, up
 * to its "\n") into out, which is reset first; empty when absent. */
void imap_sort_field(const struct imap_search_hit *h, const char *name, struct buf *out);
/* The mandatory charset argument at x->a[i]: 0 for UTF-8 and US-ASCII,
 * else -1 after replying BAD (missing) or NO [BADCHARSET]. */
int imap_sort_charset(struct imap_cmdctx *x, size_t i);

/* imap-qresync.c (RFC 7162 3.2). */
/* Removes uids (ascending, of the view) from the view and, unless out is
 * NULL, appends what tells the client: "* VANISHED set" once QRESYNC is
 * enabled, else one "* n EXPUNGE" per message (highest first). */
void imap_expunged_out(struct imap_session *s, const uint32_t *uids, size_t n, struct buf *out);
/* Appends "* VANISHED (EARLIER) set" for the uids of set (resolved) from
 * min_uid up that were expunged with a modseq above modseq (all those not
 * in the view, when the store no longer knows every expunge back to
 * modseq).  Nothing when there are none.  0, or -1 (err set). */
int imap_vanished_earlier(struct imap_session *s, const struct imap_seqset *set,
			  uint32_t min_uid, uint64_t modseq, struct buf *out, char *err,
			  size_t errsz);
/* Appends uids (ascending) as a compact set ("1:3,7"). */
void imap_uids_format(struct buf *b, const uint32_t *uids, size_t n);
/* imap-mailbox.c calls this at the end of SELECT/EXAMINE (QRESYNC ...):
 * sends the VANISHED (EARLIER) and the FETCH of changed flags, then the
 * tagged "OK ok_text".  q is the client's parameter (uidvalidity
 * checked by the caller). */
void imap_qresync_select(struct imap_cmdctx *x, const struct imap_qresync *q,
			 const char *ok_text);
/* imap-fetch.c: a UID FETCH (FLAGS) (CHANGEDSINCE since) of uids
 * (ascending, of the view; taken) that ends with "tag OK ok_text". */
void imap_fetch_changed(struct imap_session *s, const char *tag, uint32_t *uids, size_t n,
			uint64_t since, const char *ok_text);

/* Expunges the \Deleted messages of the view (in set if not NULL) and
 * sends EXPUNGE responses unless silent.  0 or -1 (err set). */
int imap_expunge_deleted(struct imap_session *s, const struct imap_seqset *set, bool silent,
			 char *err, size_t errsz);

#endif
