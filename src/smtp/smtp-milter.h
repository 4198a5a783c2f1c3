/*
 * smtp-milter.h - the external filters (milter.servers; docs/spam.md
 * "External filters (milter)") at the end of DATA: one conversation of
 * the milter protocol (src/spam/milter-proto.h) per milter and message,
 * run on the worker's event loop, the milters one after the other, each
 * seeing the message as the ones before it left it.
 *
 * Ownership: the caller owns the struct smtp_milter (smtp_milter_free)
 * and the spool file; the request's strings need only live through
 * smtp_milter_start (they are copied).  The callback runs once, from the
 * event loop (never inside smtp_milter_start), with the outcome; it may
 * free the struct.  The result's fields are the caller's after the
 * callback (it may take them; smtp_milter_result_free frees what is
 * left).
 */
#ifndef TERN_SMTP_MILTER_H
#define TERN_SMTP_MILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "milter-proto.h"

struct config;
struct event_base;
struct smtp_milter;

struct smtp_milter_request {
	const char *queue_id; /* our transaction id, macro i */
	const char *hostname; /* ours, macro j */
	const char *daemon;   /* "smtp" or "submission", {daemon_name} */
	const char *client_ip;
	uint16_t client_port;
	const char *helo;
	const char *from;      /* envelope sender, "" for <> */
	const char *auth_user; /* "" when not authenticated */
	const char *const *rcpts;
	size_t n_rcpts;
	int spool_fd;     /* read only (pread) */
	size_t skip;      /* spool bytes the milters do not see (Return-Path) */
	size_t trace_len; /* spool bytes of our trace fields */
};

enum smtp_milter_verdict {
	SMTP_MILTER_ACCEPT,   /* go on, with the changes in fields */
	SMTP_MILTER_REJECT,   /* 5xx: reply */
	SMTP_MILTER_TEMPFAIL, /* 4xx: reply (a refusal, or a failure under tempfail) */
	SMTP_MILTER_DISCARD,  /* 250, but keep nothing */
};

struct smtp_milter_result {
	enum smtp_milter_verdict verdict;
	char reply[600]; /* REJECT, TEMPFAIL: the whole SMTP reply line */
	char by[128];    /* the endpoint that decided (REJECT, TEMPFAIL, DISCARD) */
	bool quarantine; /* keep it, but in Junk */
	char quarantine_reason[256];
	char quarantine_by[128];
	bool modified;               /* fields differ from the message's */
	struct milter_fields fields; /* the header section as the milters left it */
	size_t hdr_len;              /* bytes of the original header section after skip */
	bool has_sep;                /* it ended with an empty line */
};

typedef void (*smtp_milter_cb)(void *ctx, struct smtp_milter_result *r);

/* True if messages of this kind go through milters under cfg. */
bool smtp_milter_wanted(const struct config *cfg, bool submission);

/* Starts the conversations (cfg's milter.* keys are read now).  Never
 * NULL; log_id names the session in log lines. */
struct smtp_milter *smtp_milter_start(struct event_base *base, const struct config *cfg,
				      const struct smtp_milter_request *req, const char *log_id,
				      smtp_milter_cb cb, void *ctx);

/* Cancels what is pending (the callback is not called) and frees.
 * Accepts NULL; sets *m to NULL. */
void smtp_milter_free(struct smtp_milter **m);

/* Writes the message with r's header section into a new file beside
 * path (same directory, ".milter" appended), renames it over path and
 * returns its descriptor (the old fd is not closed); *trace_len gets the
 * bytes of our trace fields at the new file's start.  -1 and errno. */
int smtp_milter_rewrite(int fd, const char *path, size_t skip, const struct smtp_milter_result *r,
			size_t *trace_len);

void smtp_milter_result_free(struct smtp_milter_result *r);

#endif
