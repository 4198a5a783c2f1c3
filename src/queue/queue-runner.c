/*
 * queue-runner.c - outbound delivery (see queue-runner.h, docs/outbound.md).
 *
 * Layer src/queue: uses src/store (queue rows, local delivery of DSNs),
 * src/dns (MX), smtp-client.c, queue-dsn.c.
 *
 * Objects:
 *   job    one message for the recipients of one destination domain: the
 *          claimed rows, the open message file, one SMTP transaction;
 *   dest   a destination domain: its waiting jobs, its MX answer, the
 *          connections open to it (at most queue.max_per_destination);
 *   conn   one SMTP connection, walking the MX list (every address of
 *          every host in order) until one greets us, then delivering the
 *          dest's jobs one after another (connection reuse).
 *
 * Durability: recipients are claimed ("sending") in one transaction and
 * every outcome is written (store_queue_update) as soon as the reply is
 * in, before the next command goes out, so a kill -9 loses nothing and
 * repeats nothing the remote acknowledged (it repeats at most the one
 * transaction whose final reply had not been recorded yet).  On start,
 * rows left in "sending" become due again (store_queue_recover).
 */
#include "addr.h"
#include "dkim-keys.h"
#include "queue-dmarc.h"
#include "strutil.h"
#include "header.h"
#include "queue-runner.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "buf.h"
#include "dns.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "mime-7bit.h"
#include "mta-sts-fetch.h"
#include "mta-sts.h"
#include "netaddr.h"
#include "queue-dsn.h"
#include "smtp-client.h"
#include "store.h"
#include "tls.h"
#include "xalloc.h"

#define CLAIM_BATCH 256
#define MAX_IN_FLIGHT 5000 /* recipients claimed at once */
#define POLL_MAX 60        /* seconds between scans at most */
#define SCAN_GAP_MS 10     /* milliseconds between scans at least, when kicked */
#define DELAY_SCAN_GAP 1   /* seconds between checks for delay notices */
#define HEAD_MAX 65536     /* original header copied into DSNs */
/* RFC 8461 3.3: after a failed policy fetch, the same id is not fetched
 * again for five minutes; remembered for this many domains at most. */
#define STS_FAIL_PAUSE 300
#define STS_FAIL_MAX 256
/* RET=FULL returns the whole original only up to this size (RFC 3461 6.2
 * allows the header alone for a bigger one). */
#define RET_FULL_MAX (10 << 20)

struct dest;
struct conn;

struct job {
	struct job *next;
	struct dest *d;
	struct store_queue_message msg;
	int fd;
	bool body_8bit, need_utf8;
	/* fd is a 7-bit copy for a server without 8BITMIME, of this size
	 * (0: fd is the queued file). */
	uint64_t converted_size;
	size_t n;
	struct store_queue_rcpt *rows;
	struct smtp_client_rcpt *cr;
	struct smtp_client_txn txn;
	/* The DSN parameters relayed to a server that offers DSN (RFC 3461
	 * 5.2.1): for MAIL FROM and for each RCPT TO; NULL until then.
	 * dsn_relayed: they went out, so the next hop reports SUCCESS and
	 * DELAY itself and we send no "relayed" notice. */
	char *dsn_mail;
	char **dsn_rcpt;
	bool dsn_relayed;
	/* TLS of the connection that carried the attempt (queue_log);
	 * tls_version "" until a connection took the job. */
	char tls_version[16];
	char tls_cipher[64];
	bool tls_verified;
	char tls_note[200];
};

struct dest {
	struct dest *next;
	struct queue_runner *r;
	char domain[256]; /* or the relay host's name or address */
	bool relay;       /* outbound.relay: domain is that host */
	/* What the mail of this destination asks of the transport: as usual
	 * (MTA-STS applies); REQUIRETLS (RFC 8689 4.2.1: an MX validated by
	 * MTA-STS, verified TLS, a next hop that offers REQUIRETLS); or
	 * "TLS-Required: No" (4.2.2: STARTTLS when offered, no policy). */
	enum tls_mode { TM_NORMAL, TM_REQUIRETLS, TM_OPTIONAL } tls_mode;
	uint16_t port;    /* relay: its port */
	struct job *head, *tail;
	size_t n_waiting;
	size_t n_conns;
	struct dns_query *q;
	struct dns_mx_result *mx; /* NULL until resolved */
	/* The last connection failure, for deferring the jobs when every
	 * host failed. */
	char last_err[1024];
	char last_mx[256];
	char last_ip[64];
	char last_status[8]; /* the status for last_err, "" to guess */
	/* MTA-STS (RFC 8461): the policy is found before the first
	 * connection (TXT record, cache, HTTPS fetch); sts is the one that
	 * applies (NULL: none, or mode none). */
	/* not looked up yet, being looked up, known */
	enum { STS_UNKNOWN, STS_WAIT, STS_DONE } sts_state;
	struct dns_query *sts_q; /* the TXT record, then the policy host */
	struct mtasts_fetch *sts_fetch;
	char sts_id[MTASTS_ID_MAX + 1];
	struct mtasts_policy *sts;
	struct mtasts_policy *sts_cached; /* the unexpired cached one, or NULL */
	char sts_note[200]; /* why no policy applies */
	bool sts_tempfail;  /* ... and whether that may change soon */
	char sts_cached_id[MTASTS_ID_MAX + 1];
	/* A connection went through every address without reaching a
	 * server: open no new connection to this destination until one
	 * connects, or the last one gives up and defers the jobs (otherwise
	 * each failed connection would at once be replaced by a new one). */
	bool failing;
};

struct conn {
	struct conn *next;
	struct dest *d;
	struct smtp_client *c;
	size_t host, addr;
	struct job *job;
	bool flush_wait; /* its last outcome is not committed yet */
	char mx[256];
	char ip[64];
	/* The TLS handshake with this address failed: the next connection
	 * to it goes without STARTTLS (tls_note says why). */
	bool no_tls;
	char tls_note[200];
};

struct queue_runner {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct dkim_keyring *dkim; /* signs our notices */
	struct queue_dmarc *dmarc; /* DMARC aggregate reports */
	struct event *dmarc_ev;    /* their timer */
	struct dns_resolver *dns;
	struct tls_client *tls; /* NULL: outbound.tls = off (or no context) */
	/* outbound.relay, parsed: every message goes there ("" none). */
	char relay_host[256];
	uint16_t relay_port;
	struct event *scan_ev;
	int64_t scan_at; /* when scan_ev fires, 0 if not pending */
	struct dest *dests;
	struct conn *conns;
	size_t n_conns;
	size_t in_flight;
	/* Outcomes waiting for the next flush (group commit): every outcome
	 * of one loop iteration goes into one transaction.  A connection
	 * whose transaction ended waits (flush_wait) until its outcome is
	 * committed before it sends anything else. */
	struct rec *recs;
	size_t n_recs, cap_recs;
	bool recs_dsn; /* a DSN became due: send it after the commit */
	struct event *flush_ev;
	int64_t last_scan_ms;    /* monotonic, when scan_cb last ran */
	/* Failed policy fetches (a ring): domain, id, when, why. */
	struct sts_fail {
		char domain[256];
		char id[MTASTS_ID_MAX + 1];
		int64_t at;
		char why[400];
	} *sts_fails;
	size_t n_sts_fails, next_sts_fail;
	int64_t last_delay_scan; /* time(), last check for delay notices */
};

/* One recipient's outcome, with copies of its strings, until the flush. */
struct rec {
	struct store_queue_outcome o;
	char status[16];
	char reply[512];
	char mx[256];
	char ip[64];
	char tls_version[16];
	char tls_cipher[64];
	char tls_note[200];
};

static void dest_pump(struct dest *d);
static void conn_try(struct conn *k);
static void dsn_run_all(struct queue_runner *r);

/* ------------------------------------------------------------ helpers */

static unsigned secs(uint64_t v)
{
	return v == 0 ? 1 : v > 86400 ? 86400 : (unsigned)v;
}

static void schedule(struct queue_runner *r, int64_t when)
{
	int64_t now = (int64_t)time(NULL);
	if (when < now)
		when = now;
	if (r->scan_at != 0 && r->scan_at <= when)
		return;
	r->scan_at = when;
	struct timeval tv = {(time_t)(when - now), 0};
	evtimer_add(r->scan_ev, &tv);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void queue_runner_kick(struct queue_runner *r)
{
	/* New mail arrives in bursts (a kick per commit of each worker):
	 * one scan per SCAN_GAP_MS at most, so that a scan claims many
	 * messages at once instead of one transaction per message. */
	int64_t wait = r->last_scan_ms + SCAN_GAP_MS - mono_ms();
	if (wait < 0 || wait > SCAN_GAP_MS)
		wait = 0;
	r->scan_at = (int64_t)time(NULL);
	struct timeval tv = {0, (suseconds_t)(wait * 1000)};
	evtimer_add(r->scan_ev, &tv);
}

static bool has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/* Reads the whole file once: 8-bit bytes anywhere? */
static bool file_has_8bit(int fd)
{
	char buf[65536];
	off_t off = 0;
	ssize_t n;
	while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] >= 0x80)
				return true;
		off += n;
	}
	return false;
}

/* The DKIM-Signature fields at the very top of msg (ours: added before
 * the message was queued, above our Received: line): returns their
 * length, with the distinct d= domains they name in doms (at most max). */
static size_t leading_signatures(const char *msg, size_t len, char (*doms)[256], size_t max,
				 size_t *n_doms)
{
	*n_doms = 0;
	struct header h = {0};
	if (header_parse(msg, len, &h) != HEADER_OK)
		return 0;
	size_t k = 0;
	while (k < h.n_fields &&
	       strutil_eq_ci(h.fields[k].name, h.fields[k].name_len, "DKIM-Signature")) {
		struct dkim_taglist tl;
		const struct dkim_tag *d;
		if (dkim_taglist_parse(h.fields[k].value, h.fields[k].value_len, &tl, NULL, 0) ==
			0 &&
		    (d = dkim_taglist_get(&tl, "d")) != NULL && d->val_len < 256) {
			bool seen = false;
			for (size_t i = 0; i < *n_doms && !seen; i++)
				seen = strlen(doms[i]) == d->val_len &&
				       !strncmp(doms[i], d->val, d->val_len);
			if (!seen && *n_doms < max) {
				memcpy(doms[*n_doms], d->val, d->val_len);
				doms[(*n_doms)++][d->val_len] = '\0';
			}
		}
		k++;
	}
	/* Only fields followed by more header: the top of a header section. */
	size_t skip = k > 0 && k < h.n_fields ? (size_t)(h.fields[k].name - msg) : 0;
	if (skip == 0)
		*n_doms = 0;
	header_free(&h);
	return skip;
}

/*
 * For a next hop without 8BITMIME (RFC 6152 3): replaces the job's file by
 * its 7-bit form (mime_to_7bit) in an anonymous memory file.  Our DKIM
 * signatures would not verify over the converted body, so they are made
 * again over it, with the keys of the same domains.  0; -2 when the
 * message cannot be converted, -1 on a local error, why set.  Runs on the
 * event loop: this costs a read and an encode of the message, which only
 * 8-bit mail to such (now rare) servers pays.
 */
static int job_to_7bit(struct job *j, char *why, size_t whysz)
{
	size_t len = 0;
	char *msg = fsutil_read_fd(j->fd, (size_t)1 << 30, &len);
	if (msg == NULL) {
		snprintf(why, whysz, "cannot read the queued message: %s", strerror(errno));
		return -1;
	}
	char doms[4][256];
	size_t n_doms;
	size_t skip = leading_signatures(msg, len, doms, 4, &n_doms);
	/* Quoted-printable makes at most 3.12 octets of one (=XX, and a soft
	 * break every 25 of them), base64 1.37; plus the added fields. */
	struct buf out, sig;
	buf_init(&out, len * 4 + 65536);
	buf_init(&sig, 0);
	int rc = mime_to_7bit(msg + skip, len - skip, &out, why, whysz);
	free(msg);
	if (rc == 0 && skip > 0) {
		const char *cand[4];
		for (size_t i = 0; i < n_doms; i++)
			cand[i] = doms[i];
		char used[256], err[256] = "no key of the signing domain";
		if (dkim_keyring_sign(j->d->r->dkim, cand, n_doms, out.data, out.len, time(NULL),
				      &sig, used, sizeof used, err, sizeof err) <= 0) {
			log_warn("queue id=%lld action=dkim_resign error=\"%s\" note=\"sent "
				 "unsigned\"",
				 (long long)j->msg.id, err);
			buf_reset(&sig);
		}
	}
	int fd = -1;
	if (rc == 0) {
		fd = memfd_create("tern-7bit", MFD_CLOEXEC);
		if (fd < 0 || fsutil_write_all(fd, sig.data, sig.len) < 0 ||
		    fsutil_write_all(fd, out.data, out.len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
			snprintf(why, whysz, "cannot hold the 7-bit copy: %s", strerror(errno));
			if (fd >= 0)
				close(fd);
			rc = -1;
		}
	}
	if (rc == 0) {
		close(j->fd);
		j->fd = fd;
		j->converted_size = sig.len + out.len;
		j->body_8bit = false;
	}
	buf_free(&sig);
	buf_free(&out);
	return rc;
}

/* ------------------------------------------------------------ outcomes */

enum verdict { V_DELIVERED, V_DEFERRED, V_BOUNCED };

/* Adds the outcome of every recipient of job j to the runner's batch (see
 * flush_cb): v, status and reply per recipient; mx/ip of the server that
 * answered (""); attempt: an attempt was made (counts for back-off). */
static void job_record(struct job *j, const enum verdict *v, const char *const *status,
		       const char *const *reply, const char *mx, const char *ip, bool attempt)
{
	struct queue_runner *r = j->d->r;
	const struct config *cfg = r->cfg;
	int64_t now = (int64_t)time(NULL);
	if (r->n_recs + j->n > r->cap_recs) {
		size_t cap = r->cap_recs ? r->cap_recs : 64;
		while (cap < r->n_recs + j->n)
			cap *= 2;
		r->recs = xreallocarray(r->recs, cap, sizeof *r->recs);
		r->cap_recs = cap;
	}
	for (size_t i = 0; i < j->n; i++) {
		struct store_queue_rcpt *row = &j->rows[i];
		struct rec *rc = &r->recs[r->n_recs++];
		memset(rc, 0, sizeof *rc);
		struct store_queue_outcome *o = &rc->o;
		enum verdict vi = v[i];
		snprintf(rc->status, sizeof rc->status, "%s", status[i]);
		if (vi == V_DEFERRED && now - j->msg.created >= (int64_t)cfg->queue_lifetime) {
			vi = V_BOUNCED;
			snprintf(rc->status, sizeof rc->status, "4.4.7");
		}
		snprintf(rc->reply, sizeof rc->reply, "%s", reply[i]);
		snprintf(rc->mx, sizeof rc->mx, "%s", mx);
		snprintf(rc->ip, sizeof rc->ip, "%s", ip);
		snprintf(rc->tls_version, sizeof rc->tls_version, "%s", j->tls_version);
		snprintf(rc->tls_cipher, sizeof rc->tls_cipher, "%s", j->tls_cipher);
		snprintf(rc->tls_note, sizeof rc->tls_note, "%s", j->tls_note);
		o->rcpt_id = row->id;
		o->attempt = attempt;
		o->tls_verified = j->tls_verified;
		/* The string pointers are set at the flush (recs may move). */
		/* RFC 3461 5.2.2: NOTIFY decides; without it, failures only.
		 * A remote that offers DSN got the parameters and reports
		 * success itself (5.2.2 b); one that does not gets a
		 * "relayed" notice from us as soon as it accepted (5.2.2 c). */
		unsigned nt = row->notify;
		if (vi == V_DELIVERED) {
			o->state = "delivered";
			metrics_inc(M_RELAYED);
			if (j->msg.sender[0] && (nt & STORE_DSN_NOTIFY_SUCCESS) && !j->dsn_relayed)
				o->dsn = STORE_DSN_SUCCESS;
		} else if (vi == V_BOUNCED) {
			o->state = "bounced";
			metrics_inc(M_BOUNCED);
			bool want = nt == 0 || (nt & STORE_DSN_NOTIFY_FAILURE);
			o->dsn = j->msg.sender[0] && want ? STORE_DSN_FAILURE : STORE_DSN_NONE;
		} else {
			o->state = "deferred";
			metrics_inc(M_DEFERRED);
			uint64_t delay = secs(cfg->queue_retry_min);
			uint64_t maxd = cfg->queue_retry_max ? cfg->queue_retry_max : delay;
			for (int64_t a = 0; a < row->attempts && delay < maxd; a++)
				delay *= 2;
			if (delay > maxd)
				delay = maxd;
			o->next_attempt = now + (int64_t)delay;
		}
		r->recs_dsn |= o->dsn != 0;
		char esc[300];
		log_escape(esc, sizeof esc, rc->reply, strlen(rc->reply));
		log_info("queue id=%lld rcpt=<%s> result=%s mx=%s ip=%s status=%s reply=%s",
			 (long long)j->msg.id, row->rcpt, o->state, mx[0] ? mx : "-",
			 ip[0] ? ip : "-", rc->status[0] ? rc->status : "-", esc);
	}
	/* After the other events of this loop iteration, so that outcomes
	 * arriving together share one commit. */
	event_active(r->flush_ev, EV_TIMEOUT, 0);
}

/* Commits the batched outcomes (one transaction; finished messages lose
 * their file), schedules the retries, sends DSNs that became due. */
static void flush_records(struct queue_runner *r)
{
	if (r->n_recs == 0)
		return;
	struct store_queue_outcome *o = xcalloc(r->n_recs, sizeof *o);
	for (size_t i = 0; i < r->n_recs; i++) {
		struct rec *rc = &r->recs[i];
		o[i] = rc->o;
		o[i].status = rc->status;
		o[i].reply = rc->reply;
		o[i].mx = rc->mx;
		o[i].ip = rc->ip;
		o[i].tls_version = rc->tls_version;
		o[i].tls_cipher = rc->tls_cipher;
		o[i].tls_note = rc->tls_note;
	}
	char err[512];
	if (store_queue_update(r->store, o, r->n_recs, err, sizeof err) < 0)
		log_error("queue action=update rcpts=%zu error=\"%s\"", r->n_recs, err);
	for (size_t i = 0; i < r->n_recs; i++)
		if (o[i].next_attempt)
			schedule(r, o[i].next_attempt);
	free(o);
	r->n_recs = 0;
	if (r->recs_dsn) {
		r->recs_dsn = false;
		dsn_run_all(r);
	}
}

static void job_free(struct job *j)
{
	struct queue_runner *r = j->d->r;
	if (j->fd >= 0)
		close(j->fd);
	r->in_flight -= j->n;
	if (j->dsn_rcpt)
		for (size_t i = 0; i < j->n; i++)
			free(j->dsn_rcpt[i]);
	free(j->dsn_rcpt);
	free(j->dsn_mail);
	free(j->rows);
	free(j->cr);
	free(j);
}

/* One outcome for every recipient of the job, then free it. */
static void job_all(struct job *j, enum verdict v, const char *status, const char *reply,
		    const char *mx, const char *ip, bool attempt)
{
	enum verdict *vs = xcalloc(j->n, sizeof *vs);
	const char **sts = xcalloc(j->n, sizeof *sts);
	const char **rs = xcalloc(j->n, sizeof *rs);
	for (size_t i = 0; i < j->n; i++) {
		vs[i] = v;
		sts[i] = status;
		rs[i] = reply;
	}
	job_record(j, vs, sts, rs, mx, ip, attempt);
	free(vs);
	free(sts);
	free(rs);
	job_free(j);
}

/* The SMTP transaction of a job ended. */
static void job_txn_done(struct job *j, struct conn *k)
{
	enum verdict *vs = xcalloc(j->n, sizeof *vs);
	const char **sts = xcalloc(j->n, sizeof *sts);
	const char **rs = xcalloc(j->n, sizeof *rs);
	for (size_t i = 0; i < j->n; i++) {
		const struct smtp_client_rcpt *cr = &j->cr[i];
		vs[i] = cr->code / 100 == 2   ? V_DELIVERED
			: cr->code / 100 == 5 ? V_BOUNCED
					      : V_DEFERRED;
		sts[i] = cr->status[0]          ? cr->status
			 : vs[i] == V_DELIVERED ? "2.0.0"
			 : vs[i] == V_BOUNCED   ? "5.0.0"
			 : cr->code != 0        ? "4.0.0"
						: "4.4.2";
		rs[i] = cr->reply;
	}
	job_record(j, vs, sts, rs, k->mx, k->ip, true);
	free(vs);
	free(sts);
	free(rs);
	job_free(j);
}

/* ---------------------------------------------------------------- dests */

/* The destination of a recipient domain, or of the relay host when one is
 * set (then every domain shares it). */
static struct dest *dest_get(struct queue_runner *r, const char *domain, enum tls_mode mode)
{
	bool relay = r->relay_host[0] != '\0';
	const char *name = relay ? r->relay_host : domain;
	for (struct dest *d = r->dests; d; d = d->next)
		if (d->relay == relay && !strcmp(d->domain, name) &&
		    (!relay || d->port == r->relay_port) && d->tls_mode == mode)
			return d;
	struct dest *d = xcalloc(1, sizeof *d);
	d->r = r;
	d->tls_mode = mode;
	d->relay = relay;
	d->port = r->relay_port;
	snprintf(d->domain, sizeof d->domain, "%s", name);
	d->next = r->dests;
	r->dests = d;
	return d;
}

/* Frees destinations with nothing left to do.  Only called at the end of
 * the runner's event handlers, so no caller up the stack holds a dest. */
static void reap_dests(struct queue_runner *r)
{
	for (struct dest **p = &r->dests; *p;) {
		struct dest *d = *p;
		if (d->head != NULL || d->n_conns > 0 || d->q != NULL || d->sts_q != NULL ||
		    d->sts_fetch != NULL) {
			p = &d->next;
			continue;
		}
		*p = d->next;
		free(d->mx);
		free(d->sts);
		free(d->sts_cached);
		free(d);
	}
}

static struct job *dest_take(struct dest *d)
{
	struct job *j = d->head;
	if (j) {
		d->head = j->next;
		if (d->head == NULL)
			d->tail = NULL;
		j->next = NULL;
		d->n_waiting--;
	}
	return j;
}

/* Every waiting job of d gets the same outcome (DNS failure, all hosts
 * unreachable). */
static void dest_fail_all(struct dest *d, enum verdict v, const char *status, const char *why,
			  const char *mx, const char *ip, bool attempt)
{
	struct job *j;
	while ((j = dest_take(d)) != NULL)
		job_all(j, v, status, why, mx, ip, attempt);
}

static void dns_done(void *ctx, const struct dns_mx_result *res)
{
	struct dest *d = ctx;
	d->q = NULL;
	log_info("queue domain=%s action=mx result=%s hosts=%zu", d->domain,
		 dns_status_name(res->status), res->n_hosts);
	switch (res->status) {
	case DNS_OK:
		d->mx = xmalloc(sizeof *d->mx);
		memcpy(d->mx, res, sizeof *d->mx);
		dest_pump(d);
		return;
	case DNS_NXDOMAIN:
		dest_fail_all(d, V_BOUNCED, "5.1.2", res->why, "", "", true);
		break;
	case DNS_NULLMX:
		dest_fail_all(d, V_BOUNCED, "5.1.10", res->why, "", "", true);
		break;
	case DNS_NOHOST:
		dest_fail_all(d, V_DEFERRED, "4.4.4", res->why, "", "", true);
		break;
	case DNS_TEMPFAIL:
		dest_fail_all(d, V_DEFERRED, "4.4.3", res->why, "", "", true);
		break;
	}
	reap_dests(d->r);
}

/* -------------------------------------------------------------- MTA-STS */

/* The policy that applies to d in enforce mode, or NULL. */
static const struct mtasts_policy *sts_enforced(const struct dest *d)
{
	return d->sts != NULL && d->sts->mode == MTASTS_ENFORCE ? d->sts : NULL;
}

/* Discovery is over: p (owned, may be NULL) applies from now on. */
static void sts_finish(struct dest *d, struct mtasts_policy *p, const char *source)
{
	if (p != NULL && p->mode == MTASTS_NONE) {
		free(p);
		p = NULL;
		source = "mode none";
	}
	if (p != d->sts_cached)
		free(d->sts_cached);
	d->sts_cached = NULL;
	free(d->sts);
	d->sts = p;
	d->sts_state = STS_DONE;
	if (p != NULL) {
		char mx[512];
		mtasts_mx_list(p, mx, sizeof mx);
		log_info("queue domain=%s action=mta-sts mode=%s source=%s id=%s mx=\"%s\"",
			 d->domain, mtasts_mode_name(p->mode), source, d->sts_id, mx);
	} else {
		snprintf(d->sts_note, sizeof d->sts_note, "%s", source);
		log_info("queue domain=%s action=mta-sts mode=- source=\"%s\"", d->domain, source);
	}
}

/* No live policy (why): the unexpired cached one applies, if any (RFC
 * 8461 3.3, 5.1). */
static void sts_use_cache(struct dest *d, const char *why)
{
	struct mtasts_policy *p = d->sts_cached;
	if (p != NULL)
		snprintf(d->sts_id, sizeof d->sts_id, "%s", d->sts_cached_id);
	char source[600];
	snprintf(source, sizeof source, "%s%s", why, p ? "; the cached policy applies" : "");
	d->sts_cached = NULL;
	sts_finish(d, p, p ? "cache" : why);
	if (p != NULL)
		log_info("queue domain=%s action=mta-sts note=\"%s\"", d->domain, source);
}

static void sts_continue(struct dest *d)
{
	dest_pump(d);
	reap_dests(d->r);
}

/* Remembers that fetching d's policy for its current id failed. */
static void sts_fail_note(struct dest *d, const char *why)
{
	struct queue_runner *r = d->r;
	if (r->sts_fails == NULL)
		r->sts_fails = xcalloc(STS_FAIL_MAX, sizeof *r->sts_fails);
	struct sts_fail *f = NULL;
	for (size_t i = 0; i < r->n_sts_fails && f == NULL; i++)
		if (!strcmp(r->sts_fails[i].domain, d->domain))
			f = &r->sts_fails[i];
	if (f == NULL) {
		f = &r->sts_fails[r->next_sts_fail];
		r->next_sts_fail = (r->next_sts_fail + 1) % STS_FAIL_MAX;
		if (r->n_sts_fails < STS_FAIL_MAX)
			r->n_sts_fails++;
	}
	snprintf(f->domain, sizeof f->domain, "%s", d->domain);
	snprintf(f->id, sizeof f->id, "%s", d->sts_id);
	f->at = (int64_t)time(NULL);
	snprintf(f->why, sizeof f->why, "%.399s", why);
}

/* A fetch for d's current id failed less than STS_FAIL_PAUSE ago: its
 * reason, else NULL. */
static const char *sts_fail_recent(const struct dest *d)
{
	const struct queue_runner *r = d->r;
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < r->n_sts_fails; i++) {
		const struct sts_fail *f = &r->sts_fails[i];
		if (!strcmp(f->domain, d->domain) && !strcmp(f->id, d->sts_id) &&
		    now - f->at < STS_FAIL_PAUSE && now >= f->at)
			return f->why;
	}
	return NULL;
}

static void sts_fetched(void *ctx, const struct mtasts_fetch_result *res)
{
	struct dest *d = ctx;
	d->sts_fetch = NULL;
	char why[600];
	if (!res->ok) {
		d->sts_tempfail = true;
		log_warn("queue domain=%s action=mta-sts result=fetch_failed why=\"%s\"", d->domain,
			 res->why);
		sts_fail_note(d, res->why);
		sts_use_cache(d, res->why);
		sts_continue(d);
		return;
	}
	struct mtasts_policy *p = xmalloc(sizeof *p);
	char perr[200];
	if (mtasts_policy_parse(res->body, res->len, p, perr, sizeof perr) < 0) {
		free(p);
		snprintf(why, sizeof why, "the MTA-STS policy of %s is not valid: %s", d->domain,
			 perr);
		log_warn("queue domain=%s action=mta-sts result=invalid why=\"%s\"", d->domain, why);
		sts_fail_note(d, why);
		sts_use_cache(d, why);
		sts_continue(d);
		return;
	}
	int64_t now = (int64_t)time(NULL);
	char err[256];
	if (store_mtasts_put(d->r->store, d->domain, d->sts_id, res->body, res->len, now,
			     now + (int64_t)p->max_age, err, sizeof err) < 0)
		log_error("queue domain=%s action=mta-sts_cache error=\"%s\"", d->domain, err);
	sts_finish(d, p, "fetched");
	sts_continue(d);
}

/* The policy host's address is known: fetch. */
static void sts_host_done(void *ctx, const struct dns_mx_result *res)
{
	struct dest *d = ctx;
	struct queue_runner *r = d->r;
	d->sts_q = NULL;
	char why[600], err[256];
	if (res->status != DNS_OK || res->n_hosts == 0 || res->hosts[0].n_addrs == 0) {
		d->sts_tempfail = true;
		snprintf(why, sizeof why, "the policy host mta-sts.%s has no address: %.300s",
			 d->domain, res->why);
		sts_use_cache(d, why);
		sts_continue(d);
		return;
	}
	unsigned to = secs(r->cfg->queue_timeout_command);
	d->sts_fetch = mtasts_fetch_start(r->base, d->domain, (uint16_t)r->cfg->outbound_mta_sts_port,
					  (const struct sockaddr *)&res->hosts[0].addrs[0],
					  r->cfg->outbound_ca_file, to < 60 ? to : 60, sts_fetched,
					  d, err, sizeof err);
	if (d->sts_fetch == NULL) {
		snprintf(why, sizeof why, "cannot fetch the MTA-STS policy: %s", err);
		sts_use_cache(d, why);
		sts_continue(d);
	}
}

/* The _mta-sts TXT record (RFC 8461 3.1). */
static void sts_txt_done(void *ctx, const struct dns_rr_result *res)
{
	struct dest *d = ctx;
	struct queue_runner *r = d->r;
	d->sts_q = NULL;
	char why[600], err[256];
	size_t n_sts = 0;
	bool valid = false;
	if (res->status == DNS_OK)
		for (size_t i = 0; i < res->n; i++) {
			char id[MTASTS_ID_MAX + 1];
			int v = mtasts_txt_parse((const char *)res->rr[i].data, res->rr[i].len, id);
			if (v != 0)
				n_sts++;
			if (v == 1) {
				valid = true;
				snprintf(d->sts_id, sizeof d->sts_id, "%s", id);
			}
		}
	if (res->status != DNS_OK || n_sts != 1 || !valid) {
		d->sts_tempfail = res->status == DNS_TEMPFAIL;
		snprintf(why, sizeof why, "%s",
			 res->status == DNS_TEMPFAIL ? "no answer for _mta-sts"
			 : n_sts == 0		     ? "no MTA-STS record"
			 : n_sts > 1		     ? "more than one MTA-STS record"
						     : "the MTA-STS record is not valid");
		d->sts_id[0] = '\0';
		sts_use_cache(d, why);
		sts_continue(d);
		return;
	}
	if (d->sts_cached != NULL && strcmp(d->sts_cached_id, d->sts_id) == 0) {
		sts_finish(d, d->sts_cached, "cache");
		sts_continue(d);
		return;
	}
	const char *failed = sts_fail_recent(d);
	if (failed != NULL) {
		/* RFC 8461 3.3: not again within five minutes for this id */
		d->sts_tempfail = true;
		sts_use_cache(d, failed);
		sts_continue(d);
		return;
	}
	char host[300];
	snprintf(host, sizeof host, "mta-sts.%s", d->domain);
	d->sts_q = dns_resolve_host(r->dns, host, sts_host_done, d, err, sizeof err);
	if (d->sts_q == NULL) {
		snprintf(why, sizeof why, "cannot look up %s: %s", host, err);
		sts_use_cache(d, why);
		sts_continue(d);
	}
}

/* Starts the discovery of d's policy (the unexpired cached one is read
 * first), unless it is done or off.  True once it is done. */
static bool sts_ready(struct dest *d)
{
	struct queue_runner *r = d->r;
	if (d->sts_state == STS_DONE)
		return true;
	if (d->relay || !r->cfg->outbound_mta_sts || d->tls_mode == TM_OPTIONAL) {
		/* "TLS-Required: No" ignores the recipient's policy (RFC 8689
		 * 4.2.2) */
		snprintf(d->sts_note, sizeof d->sts_note, "%s",
			 d->relay			? "a relay host"
			 : d->tls_mode == TM_OPTIONAL ? "the message says TLS-Required: No"
						      : "outbound.mta_sts is off");
		if (d->tls_mode == TM_OPTIONAL)
			log_info("queue domain=%s action=mta-sts mode=- source=\"%s\"", d->domain,
				 d->sts_note);
		d->sts_state = STS_DONE;
		return true;
	}
	if (d->sts_state == STS_WAIT)
		return false;
	d->sts_state = STS_WAIT;
	char err[256];
	struct store_mtasts c;
	int got = store_mtasts_get(r->store, d->domain, &c, err, sizeof err);
	if (got < 0)
		log_error("queue domain=%s action=mta-sts_cache error=\"%s\"", d->domain, err);
	free(d->sts_cached);
	d->sts_cached = NULL;
	if (got > 0 && c.expires > (int64_t)time(NULL)) {
		struct mtasts_policy *p = xmalloc(sizeof *p);
		if (mtasts_policy_parse(c.policy, c.policy_len, p, err, sizeof err) == 0) {
			d->sts_cached = p;
			snprintf(d->sts_cached_id, sizeof d->sts_cached_id, "%.32s", c.id);
		} else {
			free(p);
		}
	}
	if (got > 0)
		store_mtasts_free(&c);
	char name[300];
	snprintf(name, sizeof name, "_mta-sts.%s", d->domain);
	d->sts_q = dns_lookup(r->dns, DNS_RR_TXT, name, sts_txt_done, d, err, sizeof err);
	if (d->sts_q == NULL) {
		char why[600];
		snprintf(why, sizeof why, "cannot look up %s: %s", name, err);
		sts_use_cache(d, why);
	}
	return d->sts_state == STS_DONE;
}

/* Why the TLS of k's session fails d's policy (RFC 8461 4.2), or NULL. */
static const char *sts_tls_failure(const struct conn *k, char *why, size_t whysz)
{
	const struct smtp_client_tls *t = smtp_client_tls(k->c);
	if (t->on && t->verified)
		return NULL;
	const struct queue_runner *r = k->d->r;
	if (t->on)
		snprintf(why, whysz, "the certificate of %.200s [%s] is not valid for it: %s", k->mx,
			 k->ip, t->why);
	else if (r->tls == NULL)
		snprintf(why, whysz, "outbound TLS is off (outbound.tls), so %s [%s] was reached "
				     "without TLS", k->mx, k->ip);
	else if (smtp_client_caps(k->c)->starttls)
		snprintf(why, whysz, "%s [%s] refused STARTTLS", k->mx, k->ip);
	else
		snprintf(why, whysz, "%s [%s] does not offer STARTTLS", k->mx, k->ip);
	return why;
}

/* ---------------------------------------------------------------- conns */

static void conn_free(struct conn *k)
{
	struct queue_runner *r = k->d->r;
	for (struct conn **p = &r->conns; *p; p = &(*p)->next)
		if (*p == k) {
			*p = k->next;
			break;
		}
	smtp_client_free(&k->c);
	r->n_conns--;
	k->d->n_conns--;
	free(k);
}

/* Pumps every dest (a connection slot became free). */
static void pump_all(struct queue_runner *r)
{
	struct dest *d = r->dests;
	while (d) {
		struct dest *next = d->next;
		dest_pump(d);
		d = next;
	}
}

/* The connection has nothing more to do: close it, tidy up. */
static void conn_close(struct conn *k)
{
	struct dest *d = k->d;
	struct queue_runner *r = d->r;
	conn_free(k);
	dest_pump(d);
	pump_all(r);
}

/* Notes on the job what TLS the connection k has (for the attempt's
 * queue_log row). */
static void job_note_tls(struct job *j, const struct conn *k)
{
	const struct queue_runner *r = k->d->r;
	const struct smtp_client_tls *t = smtp_client_tls(k->c);
	j->tls_verified = false;
	j->tls_cipher[0] = j->tls_note[0] = '\0';
	if (t->on) {
		snprintf(j->tls_version, sizeof j->tls_version, "%s", t->version);
		snprintf(j->tls_cipher, sizeof j->tls_cipher, "%s", t->cipher);
		j->tls_verified = t->verified;
		snprintf(j->tls_note, sizeof j->tls_note, "%s", t->why);
		return;
	}
	snprintf(j->tls_version, sizeof j->tls_version, "none");
	if (r->tls == NULL)
		snprintf(j->tls_note, sizeof j->tls_note, "outbound TLS is off");
	else if (k->no_tls)
		snprintf(j->tls_note, sizeof j->tls_note, "%s", k->tls_note);
	else if (smtp_client_caps(k->c)->starttls)
		snprintf(j->tls_note, sizeof j->tls_note, "the server refused STARTTLS");
	else
		snprintf(j->tls_note, sizeof j->tls_note, "the server does not offer STARTTLS");
}

/* Sets the DSN parameters of the job's transaction, for a server that
 * offers DSN.  The parameters are bounded (ENVID 100, ORCPT 500 octets as
 * stored), so a small buffer always holds them. */
static void job_dsn_params(struct job *j)
{
	struct buf b;
	buf_init(&b, 2048);
	if (queue_dsn_mail_params(&b, j->msg.dsn_ret, j->msg.dsn_envid) == 0 && b.len > 0) {
		j->dsn_mail = xstrdup(buf_cstr(&b));
		j->txn.dsn_params = j->dsn_mail;
	}
	j->dsn_rcpt = xcalloc(j->n, sizeof *j->dsn_rcpt);
	for (size_t i = 0; i < j->n; i++) {
		buf_reset(&b);
		const struct store_queue_rcpt *row = &j->rows[i];
		if (queue_dsn_rcpt_params(&b, row->notify, row->orcpt) == 0 && b.len > 0) {
			j->dsn_rcpt[i] = xstrdup(buf_cstr(&b));
			j->cr[i].dsn_params = j->dsn_rcpt[i];
		}
	}
	buf_free(&b);
	j->dsn_relayed = true;
}

static size_t per_dest_limit(const struct queue_runner *r)
{
	return r->cfg->queue_max_per_destination ? r->cfg->queue_max_per_destination : 1;
}

/*
 * Another destination whose mail k may carry (connection reuse per MX
 * host, not only per domain: many domains share a provider's MX): k's
 * host, by name and address, is one of that domain's most preferred MX
 * hosts (RFC 5321 5.1: hosts are tried in preference order, so mail is
 * never handed to a less preferred one while it may be up), jobs wait
 * there, and it has room for one more connection.  *host and *addr: k's
 * place in that domain's MX list.  NULL if none.
 */
static struct dest *dest_sharing_host(const struct conn *k, size_t *host, size_t *addr)
{
	struct queue_runner *r = k->d->r;
	if (k->d->relay)
		return NULL;
	for (struct dest *d = r->dests; d; d = d->next) {
		if (d == k->d || d->relay || d->head == NULL || d->mx == NULL ||
		    d->mx->n_hosts == 0 || d->n_conns >= per_dest_limit(r) ||
		    d->tls_mode != k->d->tls_mode || d->tls_mode == TM_REQUIRETLS)
			continue;
		const struct dns_mx_result *mx = d->mx;
		for (size_t h = 0; h < mx->n_hosts && mx->hosts[h].pref == mx->hosts[0].pref; h++) {
			if (strcasecmp(mx->hosts[h].name, k->mx) != 0)
				continue;
			/* An enforced policy wants its own hosts over verified
			 * TLS (RFC 8461 4). */
			char tmp[600];
			if (sts_enforced(d) != NULL && (!mtasts_mx_match(d->sts, k->mx) ||
							 sts_tls_failure(k, tmp, sizeof tmp) != NULL))
				continue;
			for (size_t a = 0; a < mx->hosts[h].n_addrs; a++) {
				char ip[64];
				bool lo;
				netaddr_format((const struct sockaddr *)&mx->hosts[h].addrs[a], ip,
					       sizeof ip, &lo);
				if (!strcmp(ip, k->ip)) {
					*host = h;
					*addr = a;
					return d;
				}
			}
		}
	}
	return NULL;
}

/* k's destination has no job left: k moves to another one it may serve
 * (dest_sharing_host).  False if there is none. */
static bool conn_move(struct conn *k)
{
	size_t host, addr;
	struct dest *to = dest_sharing_host(k, &host, &addr);
	if (to == NULL)
		return false;
	log_info("queue domain=%s action=reuse mx=%s ip=%s from=%s", to->domain, k->mx, k->ip,
		 k->d->domain);
	k->d->n_conns--;
	k->d = to;
	to->n_conns++;
	to->failing = false;
	k->host = host;
	k->addr = addr;
	return true;
}

/* Gives the connection its next job, or closes it. */
static void conn_next(struct conn *k)
{
	const struct smtp_caps *caps = smtp_client_caps(k->c);
	for (;;) {
		struct job *j = dest_take(k->d);
		if (j == NULL && conn_move(k))
			j = dest_take(k->d);
		if (j == NULL) {
			conn_close(k);
			return;
		}
		job_note_tls(j, k);
		if (caps->size && caps->size_max > 0 && j->msg.size > caps->size_max) {
			char why[512];
			snprintf(
			    why, sizeof why,
			    "message too big for %s: %llu bytes, the server accepts at most %llu",
			    k->mx, (unsigned long long)j->msg.size,
			    (unsigned long long)caps->size_max);
			job_all(j, V_BOUNCED, "5.3.4", why, k->mx, k->ip, true);
			continue;
		}
		if (j->need_utf8 && !caps->smtputf8) {
			char why[512];
			snprintf(why, sizeof why,
				 "an address needs SMTPUTF8, which %s does not support", k->mx);
			job_all(j, V_BOUNCED, "5.6.7", why, k->mx, k->ip, true);
			continue;
		}
		if (j->body_8bit && !caps->eightbitmime) {
			char conv[300], why[800];
			int rc = job_to_7bit(j, conv, sizeof conv);
			if (rc == -2) {
				snprintf(why, sizeof why,
					 "the message has 8-bit data, %s does not support 8BITMIME, "
					 "and it cannot be converted to 7-bit: %s",
					 k->mx, conv);
				job_all(j, V_BOUNCED, "5.6.3", why, k->mx, k->ip, true);
				continue;
			}
			if (rc < 0) {
				log_error("queue id=%lld action=7bit error=\"%s\"",
					  (long long)j->msg.id, conv);
				job_all(j, V_DEFERRED, "4.3.0", conv, k->mx, k->ip, false);
				continue;
			}
			log_info("queue id=%lld action=7bit mx=%s size=%llu", (long long)j->msg.id,
				 k->mx, (unsigned long long)j->converted_size);
		}
		k->job = j;
		j->txn.sender = j->msg.sender;
		j->txn.rcpts = j->cr;
		j->txn.n_rcpts = j->n;
		j->txn.body_fd = j->fd;
		j->txn.size = j->converted_size ? j->converted_size : j->msg.size;
		j->txn.body_8bit = j->body_8bit;
		j->txn.smtputf8 = j->need_utf8;
		/* RFC 8689: passed on (a bounce, from <>, too, when offered) */
		j->txn.requiretls = j->msg.requiretls;
		for (size_t i = 0; i < j->n; i++)
			j->cr[i].addr = j->rows[i].rcpt;
		if (caps->dsn)
			job_dsn_params(j);
		smtp_client_send(k->c, &j->txn);
		return;
	}
}

/* k's server does not meet what its mail needs (MTA-STS, REQUIRETLS):
 * QUIT before MAIL, keep why and status for the deferral or bounce, try
 * the next address. */
static void conn_refuse(struct conn *k, const char *why, const char *status)
{
	struct dest *d = k->d;
	struct queue_runner *r = d->r;
	snprintf(d->last_err, sizeof d->last_err, "%s", why);
	snprintf(d->last_status, sizeof d->last_status, "%s", status);
	snprintf(d->last_mx, sizeof d->last_mx, "%s", k->mx);
	snprintf(d->last_ip, sizeof d->last_ip, "%s", k->ip);
	smtp_client_free(&k->c);
	k->no_tls = false;
	k->addr++;
	conn_try(k);
	reap_dests(r);
}

static void on_ready(void *ctx, struct smtp_client *c, enum smtp_client_result res, int code,
		     const char *why)
{
	struct conn *k = ctx;
	struct queue_runner *r = k->d->r;
	char stswhy[600];
	if (res == SMTP_CLIENT_OK && k->d->tls_mode == TM_REQUIRETLS) {
		/* RFC 8689 4.2.1 steps 4, 5: verified TLS, then REQUIRETLS in
		 * the EHLO reply after STARTTLS */
		const char *st = "5.7.10";
		if (sts_tls_failure(k, stswhy, sizeof stswhy) == NULL) {
			st = "5.7.30";
			if (smtp_client_caps(k->c)->requiretls)
				st = NULL;
			else
				snprintf(stswhy, sizeof stswhy, "%s [%s] does not offer REQUIRETLS",
					 k->mx, k->ip);
		}
		if (st != NULL) {
			log_info("queue domain=%s action=requiretls mx=%s ip=%s result=fail "
				 "why=\"%s\"",
				 k->d->domain, k->mx, k->ip, stswhy);
			char why2[1024];
			snprintf(why2, sizeof why2, "REQUIRETLS: %s", stswhy);
			conn_refuse(k, why2, st);
			return;
		}
	} else if (res == SMTP_CLIENT_OK && k->d->sts != NULL &&
		   sts_tls_failure(k, stswhy, sizeof stswhy) != NULL) {
		if (sts_enforced(k->d) == NULL) {
			log_info("queue domain=%s action=mta-sts mode=testing mx=%s ip=%s "
				 "result=fail why=\"%s\" note=\"delivered anyway\"",
				 k->d->domain, k->mx, k->ip, stswhy);
		} else {
			/* RFC 8461 5: never to this host; the next one may do. */
			char why2[1024];
			snprintf(why2, sizeof why2, "MTA-STS policy of %s (enforce): %s", k->d->domain,
				 stswhy);
			log_info("queue domain=%s action=mta-sts mode=enforce mx=%s ip=%s result=fail "
				 "why=\"%s\"",
				 k->d->domain, k->mx, k->ip, stswhy);
			conn_refuse(k, why2, "4.7.5");
			return;
		}
	}
	if (res == SMTP_CLIENT_OK) {
		k->d->failing = false;
		log_info("queue domain=%s action=connected mx=%s ip=%s", k->d->domain, k->mx,
			 k->ip);
		conn_next(k);
		reap_dests(r);
		return;
	}
	struct dest *d = k->d;
	char esc[300];
	log_escape(esc, sizeof esc, why, strlen(why));
	log_info("queue domain=%s action=connect mx=%s ip=%s result=failed why=%s", d->domain,
		 k->mx, k->ip, esc);
	snprintf(d->last_err, sizeof d->last_err, "%s", why);
	snprintf(d->last_mx, sizeof d->last_mx, "%s", k->mx);
	snprintf(d->last_ip, sizeof d->last_ip, "%s", k->ip);
	d->last_status[0] = '\0';
	smtp_client_free(&k->c);
	if (res == SMTP_CLIENT_TLS && d->tls_mode == TM_REQUIRETLS) {
		snprintf(d->last_err, sizeof d->last_err, "REQUIRETLS: %s", why);
		snprintf(d->last_status, sizeof d->last_status, "5.7.10");
	} else if (res == SMTP_CLIENT_TLS && sts_enforced(d) != NULL) {
		/* No plaintext fallback under an enforced policy. */
		snprintf(d->last_err, sizeof d->last_err, "MTA-STS policy of %s (enforce): %s",
			 d->domain, why);
		snprintf(d->last_status, sizeof d->last_status, "4.7.5");
	}
	if (res == SMTP_CLIENT_AUTH) {
		/* The relay refused our credentials (or could not be sent them
		 * safely): another address of it would say the same.  The
		 * mail waits for the administrator to fix the configuration. */
		dest_fail_all(d, V_DEFERRED, "4.7.0", why, k->mx, k->ip, true);
		conn_close(k);
		reap_dests(r);
		return;
	}
	if (res == SMTP_CLIENT_TLS && !k->no_tls && sts_enforced(d) == NULL &&
	    d->tls_mode != TM_REQUIRETLS) {
		/* Opportunistic TLS (RFC 7435): a handshake that fails is
		 * retried at once with the same address in plaintext. */
		k->no_tls = true;
		snprintf(k->tls_note, sizeof k->tls_note, "%s; sent without TLS", why);
		conn_try(k);
		reap_dests(r);
		return;
	}
	k->no_tls = false;
	k->addr++;
	conn_try(k);
	reap_dests(r);
}

static void on_txn_done(void *ctx, struct smtp_client *c, struct smtp_client_txn *txn)
{
	struct conn *k = ctx;
	struct queue_runner *r = k->d->r;
	struct job *j = k->job;
	k->job = NULL;
	job_txn_done(j, k);
	/* Nothing more goes out on k until the outcome is committed
	 * (flush_cb continues it). */
	k->flush_wait = true;
	reap_dests(r);
}

/* The batch of outcomes is committed; connections that waited for it take
 * their next job. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue_runner *r = arg;
	flush_records(r);
	size_t n = 0;
	for (struct conn *k = r->conns; k; k = k->next)
		n += k->flush_wait;
	if (n > 0) {
		struct conn **wait = xcalloc(n, sizeof *wait);
		size_t i = 0;
		for (struct conn *k = r->conns; k; k = k->next)
			if (k->flush_wait)
				wait[i++] = k;
		/* conn_next/conn_close free only the conn they are given, so
		 * the others in wait stay valid. */
		for (i = 0; i < n; i++) {
			struct conn *k = wait[i];
			k->flush_wait = false;
			if (smtp_client_alive(k->c))
				conn_next(k);
			else
				conn_close(k);
		}
		free(wait);
	}
	reap_dests(r);
}

/* The relay's credentials for k's client: the user from the config, the
 * password from the first line of outbound.relay_password_file, read at
 * each connection (it may change without a reload, and need be readable
 * by the tern user alone).  -1 with why if the file cannot be read. */
static int conn_set_auth(struct conn *k, char *why, size_t whysz)
{
	const struct config *cfg = k->d->r->cfg;
	size_t n = 0;
	char *pass = fsutil_read_file(cfg->outbound_relay_password_file, 4096, &n);
	if (pass == NULL) {
		snprintf(why, whysz, "cannot read outbound.relay_password_file %s: %s",
			 cfg->outbound_relay_password_file, strerror(errno));
		return -1;
	}
	pass[strcspn(pass, "\r\n")] = '\0';
	smtp_client_set_auth(k->c, cfg->outbound_relay_user, pass, cfg->allow_plaintext_loopback);
	explicit_bzero(pass, n);
	free(pass);
	return 0;
}

/* RFC 8461 4.1: may k try its current MX host?  Under an enforced
 * policy a host none of the mx patterns matches is skipped (the reason is
 * kept for the deferral); in testing mode it is tried and logged.  note:
 * log (once per host). */
static bool sts_host_allowed(struct conn *k, bool note)
{
	struct dest *d = k->d;
	const char *host = d->mx->hosts[k->host].name;
	if (d->tls_mode == TM_REQUIRETLS && !d->relay && d->sts == NULL) {
		/* RFC 8689 4.2.1 step 2: without DNSSEC (not checked here),
		 * only an MTA-STS policy validates the MX host. */
		snprintf(d->last_err, sizeof d->last_err,
			 "REQUIRETLS: the MX host %s of %s cannot be validated: no MTA-STS policy "
			 "(%s), and DNSSEC is not checked",
			 host, d->domain, d->sts_note);
		snprintf(d->last_status, sizeof d->last_status, "%s",
			 d->sts_tempfail ? "4.7.10" : "5.7.10");
		snprintf(d->last_mx, sizeof d->last_mx, "%s", host);
		d->last_ip[0] = '\0';
		return false;
	}
	if (d->sts == NULL || mtasts_mx_match(d->sts, host))
		return true;
	char pats[300];
	mtasts_mx_list(d->sts, pats, sizeof pats);
	if (d->tls_mode == TM_REQUIRETLS) {
		snprintf(d->last_err, sizeof d->last_err,
			 "REQUIRETLS: the MX host %s is not one the MTA-STS policy of %s allows "
			 "(mx: %s)",
			 host, d->domain, pats);
		snprintf(d->last_status, sizeof d->last_status, "5.7.10");
		snprintf(d->last_mx, sizeof d->last_mx, "%s", host);
		d->last_ip[0] = '\0';
		return false;
	}
	if (sts_enforced(d) == NULL) {
		if (note)
			log_info("queue domain=%s action=mta-sts mode=testing mx=%s result=fail "
				 "why=\"not an mx of the policy (%s)\" note=\"tried anyway\"",
				 d->domain, host, pats);
		return true;
	}
	if (note)
		log_info("queue domain=%s action=mta-sts mode=enforce mx=%s result=skipped "
			 "why=\"not an mx of the policy (%s)\"",
			 d->domain, host, pats);
	snprintf(d->last_err, sizeof d->last_err,
		 "MTA-STS policy of %s (enforce): the MX host %s is not one the policy allows "
		 "(mx: %s)",
		 d->domain, host, pats);
	snprintf(d->last_status, sizeof d->last_status, "4.7.5");
	snprintf(d->last_mx, sizeof d->last_mx, "%s", host);
	d->last_ip[0] = '\0';
	return false;
}

/* Connects to the next address of the MX list, or gives up. */
static void conn_try(struct conn *k)
{
	struct dest *d = k->d;
	struct queue_runner *r = d->r;
	const struct dns_mx_result *mx = d->mx;
	while (k->host < mx->n_hosts &&
	       (k->addr >= mx->hosts[k->host].n_addrs || !sts_host_allowed(k, k->addr == 0))) {
		k->host++;
		k->addr = 0;
	}
	if (k->host >= mx->n_hosts) {
		/* Every address failed.  If another connection to d is alive it
		 * takes the jobs; else they are deferred with the last error. */
		d->failing = d->n_conns > 1;
		if (d->n_conns <= 1) {
			const char *why =
			    d->last_err[0] ? d->last_err : "no mail server could be reached";
			bool timeout = strstr(why, "timeout") != NULL;
			bool reply = why[0] >= '2' && why[0] <= '5' && why[3] == ' ';
			/* RFC 5321: a 5xx greeting from every host is still no
			 * reason to give up on the domain; retry. */
			dest_fail_all(d, d->last_status[0] == '5' ? V_BOUNCED : V_DEFERRED,
				      d->last_status[0] ? d->last_status
				      : timeout		? "4.4.2"
				      : reply		? "4.3.0"
							: "4.4.1",
				      why, d->last_mx, d->last_ip, true);
		}
		conn_close(k);
		return;
	}
	const struct dns_host *h = &mx->hosts[k->host];
	struct sockaddr_storage ss;
	memcpy(&ss, &h->addrs[k->addr], sizeof ss);
	uint16_t port = d->relay ? d->port : (uint16_t)r->cfg->remote_smtp_port;
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)(void *)&ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)(void *)&ss)->sin_port = htons(port);
	bool lo;
	netaddr_format((const struct sockaddr *)&ss, k->ip, sizeof k->ip, &lo);
	snprintf(k->mx, sizeof k->mx, "%s", h->name);
	const struct config *cfg = r->cfg;
	struct smtp_client_timeouts to = {
	    secs(cfg->queue_timeout_connect),    secs(cfg->queue_timeout_greeting),
	    secs(cfg->queue_timeout_command),    secs(cfg->queue_timeout_data_init),
	    secs(cfg->queue_timeout_data_block), secs(cfg->queue_timeout_data_end),
	};
	static const struct smtp_client_cbs cbs = {on_ready, on_txn_done};
	char err[256];
	k->c = smtp_client_connect(r->base, (struct sockaddr *)&ss, h->addr_lens[k->addr], h->name,
				   cfg->hostname, &to, &cbs, k, err, sizeof err);
	if (k->c == NULL) {
		snprintf(d->last_err, sizeof d->last_err, "%s", err);
		d->last_status[0] = '\0';
		k->no_tls = false;
		k->addr++;
		conn_try(k); /* bounded: addr grows every time */
		return;
	}
	if (r->tls != NULL && !k->no_tls)
		smtp_client_set_tls(k->c, r->tls);
	if (d->relay && cfg->outbound_relay_user[0] && conn_set_auth(k, err, sizeof err) < 0) {
		log_error("queue action=relay_auth error=\"%s\"", err);
		smtp_client_free(&k->c);
		dest_fail_all(d, V_DEFERRED, "4.7.0", err, k->mx, k->ip, false);
		conn_close(k);
	}
}

/* A relay host given as an IP address becomes its one-host "MX list"
 * without DNS.  True if it was one. */
static bool relay_literal(struct dest *d)
{
	struct dns_host h;
	memset(&h, 0, sizeof h);
	struct sockaddr_in *a4 = (struct sockaddr_in *)(void *)&h.addrs[0];
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)(void *)&h.addrs[0];
	if (inet_pton(AF_INET, d->domain, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		h.addr_lens[0] = sizeof *a4;
	} else if (inet_pton(AF_INET6, d->domain, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		h.addr_lens[0] = sizeof *a6;
	} else {
		return false;
	}
	h.n_addrs = 1;
	snprintf(h.name, sizeof h.name, "%s", d->domain);
	d->mx = xcalloc(1, sizeof *d->mx);
	d->mx->status = DNS_OK;
	d->mx->n_hosts = 1;
	d->mx->hosts[0] = h;
	return true;
}

static void dest_pump(struct dest *d)
{
	struct queue_runner *r = d->r;
	if (d->head == NULL)
		return;
	if (d->mx == NULL && d->relay)
		(void)relay_literal(d); /* an address needs no DNS */
	if (d->mx == NULL && d->q == NULL) {
		char err[256];
		d->q = d->relay ? dns_resolve_host(r->dns, d->domain, dns_done, d, err, sizeof err)
				: dns_resolve_mx(r->dns, d->domain, dns_done, d, err, sizeof err);
		if (d->q == NULL) {
			dest_fail_all(d, V_DEFERRED, "4.4.3", err, "", "", false);
			return;
		}
	}
	/* The MTA-STS policy is looked up while the MX is (both are needed
	 * before the first connection). */
	if (!sts_ready(d) || d->mx == NULL)
		return;
	if (d->failing)
		return;
	size_t per_dest = per_dest_limit(r);
	size_t total = r->cfg->queue_max_connections ? r->cfg->queue_max_connections : 1;
	/* One more connection while jobs wait that no connection will take
	 * soon; never more than the limits. */
	while (d->n_waiting > d->n_conns && d->n_conns < per_dest && r->n_conns < total) {
		struct conn *k = xcalloc(1, sizeof *k);
		k->d = d;
		k->next = r->conns;
		r->conns = k;
		r->n_conns++;
		d->n_conns++;
		conn_try(k);
		if (d->head == NULL)
			break;
	}
}

/* ----------------------------------------------------------------- DSNs */

struct dsn_ctx {
	int kind;
	struct queue_dsn_rcpt *rc;
	struct store_queue_rcpt *rows;
	size_t n, cap;
};

static int dsn_collect(void *ctx, const struct store_queue_rcpt *row)
{
	struct dsn_ctx *c = ctx;
	if (row->dsn != c->kind)
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		c->rows = xreallocarray(c->rows, c->cap, sizeof *c->rows);
	}
	c->rows[c->n++] = *row;
	return 0;
}

/* Reads the whole queued file for RET=FULL, or NULL (too big, error). */
static char *read_full(const char *path, size_t *len)
{
	*len = 0;
	char *data = fsutil_read_file(path, RET_FULL_MAX, len);
	return data;
}

/* Reads the header section of the queued file (without the empty line). */
static char *read_header(const char *path, size_t *len)
{
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	char *buf = xmalloc(HEAD_MAX + 1);
	size_t n = 0;
	ssize_t got;
	while (n < HEAD_MAX && (got = read(fd, buf + n, HEAD_MAX - n)) > 0)
		n += (size_t)got;
	close(fd);
	buf[n] = '\0';
	char *end = NULL;
	for (size_t i = 0; i + 3 < n; i++)
		if (!memcmp(buf + i, "\r\n\r\n", 4)) {
			end = buf + i + 2;
			break;
		}
	if (end == NULL) {
		/* No body separator within the limit: cut at the last line. */
		char *nl = n ? memrchr(buf, '\n', n) : NULL;
		end = nl ? nl + 1 : buf;
	}
	*len = (size_t)(end - buf);
	return buf;
}

/* Records the local deliveries of a DSN for `tern trace` (a failure is
 * logged only: the report is delivered). */
static void dsn_local_log(struct queue_runner *r, const char *path, const char *sender,
			  const struct store_targets *tg)
{
	struct store_local_record *v = xcalloc(tg->n_local, sizeof *v);
	for (size_t i = 0; i < tg->n_local; i++)
		v[i] = (struct store_local_record){sender, tg->local[i], tg->local_via[i], "INBOX",
						   NULL};
	struct store_local_item it = {path, "", 0, v, tg->n_local};
	char err[256];
	if (store_queue_local_log(r->store, &it, 1, err, sizeof err) < 0)
		log_error("queue action=dsn_local_log error=\"%s\"", err);
	free(v);
}

/* Delivers a built DSN to sender: local accounts get it in their INBOX,
 * remote addresses through the queue with sender <>.  0 done (or dropped:
 * nobody to give it to), -1 try again later. */
static int dsn_deliver(struct queue_runner *r, const char *sender, const struct buf *b,
		       bool requiretls)
{
	struct store_targets *tg = xcalloc(1, sizeof *tg);
	enum store_rcpt_result res =
	    store_resolve(r->store, sender, r->cfg->recipient_delimiter, tg);
	char path[PATH_MAX], err[256];
	int ret = 0;
	if (res == STORE_RCPT_ERROR) {
		free(tg);
		return -1;
	}
	if (res == STORE_RCPT_NOT_OURS) {
		tg->n_remote = 1;
		snprintf(tg->remote[0], sizeof tg->remote[0], "%s", sender);
	} else if (res != STORE_RCPT_OK) {
		log_warn(
		    "queue action=dsn sender=<%s> result=dropped why=\"no such local address\"",
		    sender);
		free(tg);
		return 0;
	}
	if (tg->n_local > 0) {
		static const char rp[] = "Return-Path: <>\r\n";
		int fd = store_spool_write(r->store, rp, sizeof rp - 1, b->data, b->len, path,
					   sizeof path);
		if (fd < 0) {
			free(tg);
			return -1;
		}
		if (store_deliver(r->store, path, tg->local, tg->n_local, time(NULL), NULL, err,
				  sizeof err) < 0) {
			log_error("queue action=dsn_deliver error=\"%s\"", err);
			ret = -1;
		} else {
			dsn_local_log(r, path, sender, tg);
		}
		store_spool_drop(&fd, path);
	}
	if (ret == 0 && tg->n_remote > 0) {
		/* Our notices are From: MAILER-DAEMON@ our host name: signed by
		 * the keys of its nearest domain of ours that has some. */
		struct buf sig;
		buf_init(&sig, 0);
		const char *cand[1] = {r->cfg->hostname};
		char used[256];
		if (dkim_keyring_sign(r->dkim, cand, 1, b->data, b->len, time(NULL), &sig, used,
				      sizeof used, err, sizeof err) < 0) {
			log_error("queue action=dkim_sign error=\"%s\" note=\"sent unsigned\"", err);
			buf_reset(&sig);
		}
		int fd = store_spool_write(r->store, sig.data, sig.len, b->data, b->len, path,
					   sizeof path);
		buf_free(&sig);
		if (fd < 0) {
			free(tg);
			return -1;
		}
		/* RFC 8689 5: the notice of a REQUIRETLS message carries it too */
		struct store_queue_new_rcpt *nr = xcalloc(tg->n_remote, sizeof *nr);
		for (size_t i = 0; i < tg->n_remote; i++)
			nr[i].addr = tg->remote[i];
		struct store_queue_item it = {path, "", STORE_DSN_RET_NONE, NULL, nr, tg->n_remote,
					      -1, 0, NULL, requiretls};
		int qr = store_queue_add_batch(r->store, &it, 1, err, sizeof err);
		free(nr);
		if (qr < 0 || it.status != 0) {
			log_error("queue action=dsn_queue error=\"%s\"", err);
			ret = -1;
		}
		store_spool_drop(&fd, path);
		queue_runner_kick(r);
	}
	free(tg);
	return ret;
}

/* queue-dmarc.c's way out: like a DSN. */
static int dmarc_deliver(void *ctx, const char *rcpt, const struct buf *msg)
{
	return dsn_deliver(ctx, rcpt, msg, false);
}

/* Every mailauth.report_interval (at most every minute, for the failure
 * reports): the DMARC reports that are due. */
static void dmarc_timer(struct queue_runner *r)
{
	uint64_t s = r->cfg->mailauth_report_interval;
	struct timeval tv = {(time_t)(s < 60 ? s : 60), 0};
	evtimer_add(r->dmarc_ev, &tv);
}

static void dmarc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_runner *r = arg;
	if (r->cfg->mailauth_reports || r->cfg->mailauth_failure_reports)
		queue_dmarc_run(r->dmarc, r->dns, r->cfg, time(NULL));
	dmarc_timer(r);
}

/* Sends the pending DSN of one kind for a message. */
static int dsn_send(struct queue_runner *r, const struct store_queue_message *m, int kind)
{
	struct dsn_ctx c = {kind, NULL, NULL, 0, 0};
	char err[256];
	if (store_queue_rcpts(r->store, m->id, dsn_collect, &c, err, sizeof err) < 0) {
		free(c.rows);
		return -1;
	}
	if (c.n == 0) {
		free(c.rows);
		return 0;
	}
	int ret = 0;
	if (m->sender[0] != '\0') {
		struct queue_dsn_rcpt *rc = xcalloc(c.n, sizeof *rc);
		for (size_t i = 0; i < c.n; i++) {
			rc[i].addr = c.rows[i].rcpt;
			rc[i].status = c.rows[i].status;
			rc[i].reply = c.rows[i].last_reply;
			rc[i].remote = c.rows[i].remote;
			rc[i].last_attempt = (time_t)c.rows[i].updated;
			rc[i].orcpt = c.rows[i].orcpt;
			/* success: an alias of several addresses, relayed to
			 * a server without DSN, or our own mailbox */
			rc[i].action = !strcmp(c.rows[i].state, "expanded") ? "expanded"
				       : c.rows[i].remote[0]                ? "relayed"
									    : "delivered";
		}
		char path[PATH_MAX];
		size_t hlen = 0;
		char *head = NULL;
		size_t flen = 0;
		char *full = NULL;
		if (store_queue_path(r->store, m->file, path, sizeof path) == 0) {
			head = read_header(path, &hlen);
			/* RFC 8689 5: a REQUIRETLS message bounces as with RET=HDRS */
			if (kind == STORE_DSN_FAILURE && m->dsn_ret == STORE_DSN_RET_FULL &&
			    !m->requiretls)
				full = read_full(path, &flen);
		}
		char boundary[64], msgid[400], id[25];
		fsutil_unique_id(id);
		snprintf(boundary, sizeof boundary, "%s/%s", id,
			 kind == STORE_DSN_DELAY     ? "d"
			 : kind == STORE_DSN_SUCCESS ? "s"
						     : "f");
		snprintf(msgid, sizeof msgid, "%s.dsn@%s", id, r->cfg->hostname);
		struct queue_dsn d = {
		    .delay = kind == STORE_DSN_DELAY,
		    .hostname = r->cfg->hostname,
		    .sender = m->sender,
		    .boundary = boundary,
		    .message_id = msgid,
		    .now = time(NULL),
		    .arrival = (time_t)m->created,
		    .retry_until = (time_t)(m->created + (int64_t)r->cfg->queue_lifetime),
		    .rcpts = rc,
		    .n_rcpts = c.n,
		    .orig_header = head ? head : "",
		    .orig_header_len = hlen,
		    .success = kind == STORE_DSN_SUCCESS,
		    .envid = m->dsn_envid,
		    .orig_full = full,
		    .orig_full_len = flen,
		};
		struct buf b;
		buf_init(&b, (4 << 20) + flen);
		if (queue_dsn_build(&b, &d) < 0)
			log_error("queue id=%lld action=dsn error=\"too big\"", (long long)m->id);
		else
			ret = dsn_deliver(r, m->sender, &b, m->requiretls);
		if (ret == 0)
			log_info("queue id=%lld action=dsn kind=%s to=<%s> rcpts=%zu",
				 (long long)m->id,
				 kind == STORE_DSN_DELAY     ? "delay"
				 : kind == STORE_DSN_SUCCESS ? "success"
							     : "failure",
				 m->sender, c.n);
		buf_free(&b);
		free(full);
		free(head);
		free(rc);
	}
	free(c.rows);
	if (ret == 0 && store_queue_dsn_done(r->store, m->id, kind, err, sizeof err) < 0) {
		log_error("queue id=%lld action=dsn_done error=\"%s\"", (long long)m->id, err);
		ret = -1;
	}
	return ret;
}

static int dsn_one(void *ctx, int64_t id)
{
	struct queue_runner *r = ctx;
	struct store_queue_message m;
	if (store_queue_message_get(r->store, id, &m) <= 0)
		return 0;
	if (dsn_send(r, &m, STORE_DSN_FAILURE) < 0 || dsn_send(r, &m, STORE_DSN_DELAY) < 0 ||
	    dsn_send(r, &m, STORE_DSN_SUCCESS) < 0)
		return 0; /* the next scan tries again */
	char err[256];
	if (store_queue_finish(r->store, id, NULL, err, sizeof err) < 0)
		log_error("queue id=%lld action=finish error=\"%s\"", (long long)id, err);
	return 0;
}

static void dsn_run_all(struct queue_runner *r)
{
	char err[256];
	if (store_queue_dsn_pending(r->store, dsn_one, r, err, sizeof err) < 0)
		log_error("queue action=dsn_pending error=\"%s\"", err);
}

/* ----------------------------------------------------------------- scan */

/* RFC 8689 3: the message's header has "TLS-Required: No" (once). */
static bool tls_required_no(const char *path)
{
	size_t len = 0;
	char *head = read_header(path, &len);
	if (head == NULL)
		return false;
	struct header h = {0};
	size_t n_no = 0, n_field = 0;
	if (header_parse(head, len, &h) == HEADER_OK) {
		for (size_t i = 0; i < h.n_fields; i++) {
			if (!strutil_eq_ci(h.fields[i].name, h.fields[i].name_len, "TLS-Required"))
				continue;
			n_field++;
			char v[64];
			size_t vl = header_unfold(h.fields[i].value, h.fields[i].value_len, v,
						  sizeof v);
			size_t a = 0;
			while (a < vl && (v[a] == ' ' || v[a] == '\t'))
				a++;
			while (vl > a && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			n_no += strutil_eq_ci(v + a, vl - a, "No");
		}
		header_free(&h);
	}
	free(head);
	return n_field == 1 && n_no == 1;
}

static int by_message(const void *a, const void *b)
{
	const struct store_queue_rcpt *x = a, *y = b;
	if (x->message_id != y->message_id)
		return x->message_id < y->message_id ? -1 : 1;
	int c = strcmp(addr_domain_of(x->rcpt), addr_domain_of(y->rcpt));
	if (c)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Turns claimed rows (sorted by message, domain) into jobs. */
static void make_jobs(struct queue_runner *r, struct store_queue_rcpt *rows, size_t n)
{
	qsort(rows, n, sizeof *rows, by_message);
	for (size_t i = 0; i < n;) {
		size_t k = i + 1;
		/* One job per message and domain; with a relay host, one per
		 * message (every recipient goes to the same place). */
		while (k < n && rows[k].message_id == rows[i].message_id &&
		       (r->relay_host[0] ||
			!strcmp(addr_domain_of(rows[k].rcpt), addr_domain_of(rows[i].rcpt))))
			k++;
		struct job *j = xcalloc(1, sizeof *j);
		j->fd = -1;
		j->n = k - i;
		j->rows = xcalloc(j->n, sizeof *j->rows);
		memcpy(j->rows, rows + i, j->n * sizeof *j->rows);
		j->cr = xcalloc(j->n, sizeof *j->cr);
		r->in_flight += j->n;
		struct dest *d = dest_get(r, addr_domain_of(rows[i].rcpt), TM_NORMAL);
		j->d = d;
		char path[PATH_MAX];
		int got = store_queue_message_get(r->store, rows[i].message_id, &j->msg);
		if (got > 0 && store_queue_path(r->store, j->msg.file, path, sizeof path) == 0)
			j->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (got <= 0 || j->fd < 0) {
			log_error("queue id=%lld action=open error=\"message file missing\"",
				  (long long)rows[i].message_id);
			if (got > 0)
				job_all(j, V_BOUNCED, "5.3.0",
					"the message file was lost from the queue", "", "", false);
			else
				job_free(j);
			i = k;
			continue;
		}
		enum tls_mode mode = j->msg.requiretls && j->msg.sender[0] ? TM_REQUIRETLS
				     : !j->msg.requiretls && tls_required_no(path) ? TM_OPTIONAL
										: TM_NORMAL;
		if (mode != TM_NORMAL) {
			d = dest_get(r, addr_domain_of(rows[i].rcpt), mode);
			j->d = d;
		}
		j->body_8bit = file_has_8bit(j->fd);
		j->need_utf8 = has_non_ascii(j->msg.sender);
		for (size_t m = 0; m < j->n; m++)
			j->need_utf8 |= has_non_ascii(j->rows[m].rcpt);
		if (d->tail)
			d->tail->next = j;
		else
			d->head = j;
		d->tail = j;
		d->n_waiting++;
		i = k;
	}
}

static void scan_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_runner *r = arg;
	r->scan_at = 0;
	r->last_scan_ms = mono_ms();
	int64_t now = (int64_t)time(NULL);
	char err[256];
	const struct config *cfg = r->cfg;
	/* Delay notices are due in hours, not milliseconds: checked at most
	 * once a second. */
	if (cfg->queue_delay_warning > 0 && now - r->last_delay_scan >= DELAY_SCAN_GAP) {
		r->last_delay_scan = now;
		size_t n = 0;
		if (store_queue_mark_delayed(r->store, now - (int64_t)cfg->queue_delay_warning, &n,
					     err, sizeof err) < 0)
			log_error("queue action=delay_check error=\"%s\"", err);
	}
	dsn_run_all(r);
	struct store_queue_rcpt *rows = xcalloc(CLAIM_BATCH, sizeof *rows);
	while (r->in_flight < MAX_IN_FLIGHT) {
		size_t n = 0;
		if (store_queue_claim(r->store, now, CLAIM_BATCH, rows, &n, err, sizeof err) < 0) {
			log_error("queue action=claim error=\"%s\"", err);
			break;
		}
		if (n == 0)
			break;
		make_jobs(r, rows, n);
		if (n < CLAIM_BATCH)
			break;
	}
	free(rows);
	pump_all(r);
	reap_dests(r);
	/* Old history (`tern trace`) goes once in a while. */
	static int64_t last_prune;
	if (now - last_prune > 3600) {
		last_prune = now;
		if (store_queue_prune(r->store, now - (int64_t)cfg->queue_history, NULL, err,
				      sizeof err) < 0)
			log_error("queue action=prune error=\"%s\"", err);
	}
	int64_t next = now + POLL_MAX;
	int64_t due;
	if (store_queue_next_due(r->store, &due) == 1 && due < next)
		next = due;
	if (r->in_flight >= MAX_IN_FLIGHT && next < now + 1)
		next = now + 1;
	schedule(r, next > now ? next : now + 1);
}

/* ----------------------------------------------------------------- public */

/* The client TLS context for cfg (NULL when outbound.tls = off or it
 * cannot be made: then mail goes in plaintext, which is logged). */
static struct tls_client *make_tls(const struct config *cfg)
{
	if (strcmp(cfg->outbound_tls, "off") == 0)
		return NULL;
	char err[512];
	struct tls_client *tc = tls_client_new(cfg->outbound_ca_file, err, sizeof err);
	if (tc == NULL)
		log_error("queue action=tls_init error=\"%s\" note=\"outbound TLS disabled\"", err);
	return tc;
}

/* Parses outbound.relay (validated when the config was loaded). */
static void set_relay(struct queue_runner *r)
{
	r->relay_host[0] = '\0';
	r->relay_port = 0;
	if (r->cfg->outbound_relay[0] &&
	    config_relay_split(r->cfg->outbound_relay, r->relay_host, sizeof r->relay_host,
			       &r->relay_port) < 0)
		r->relay_host[0] = '\0';
}

struct queue_runner *queue_runner_new(struct event_base *base, struct store *store,
				      const struct config *cfg, char *err, size_t errsz)
{
	struct dns_resolver *dns =
	    dns_resolver_new(base, cfg->dns_resolver, secs(cfg->queue_timeout_dns), err, errsz);
	if (dns == NULL)
		return NULL;
	mtasts_fetch_init();
	struct queue_runner *r = xcalloc(1, sizeof *r);
	r->base = base;
	r->store = store;
	r->cfg = cfg;
	r->dkim = dkim_keyring_new(store);
	r->dns = dns;
	r->tls = make_tls(cfg);
	set_relay(r);
	r->dmarc = queue_dmarc_new(store, dmarc_deliver, r);
	r->dmarc_ev = evtimer_new(base, dmarc_cb, r);
	if (r->dmarc_ev == NULL)
		fatal(1, "out of memory (event)");
	dmarc_timer(r);
	r->scan_ev = evtimer_new(base, scan_cb, r);
	r->flush_ev = event_new(base, -1, 0, flush_cb, r);
	if (r->scan_ev == NULL || r->flush_ev == NULL)
		fatal(1, "out of memory (event)");
	char e[256];
	if (store_queue_recover(store, e, sizeof e) < 0)
		log_error("queue action=recover error=\"%s\"", e);
	queue_runner_kick(r);
	return r;
}

/* A new dns.resolver or queue.timeout.dns on reload: a new resolver
 * context; lookups in flight are asked again through it, and MX answers
 * kept for idle destinations are dropped so the next message asks it. */
static void swap_resolver(struct queue_runner *r, const struct config *old,
			  const struct config *cfg)
{
	if (strcmp(old->dns_resolver, cfg->dns_resolver) == 0 &&
	    old->queue_timeout_dns == cfg->queue_timeout_dns)
		return;
	char err[256];
	struct dns_resolver *dns =
	    dns_resolver_new(r->base, cfg->dns_resolver, secs(cfg->queue_timeout_dns), err,
			     sizeof err);
	if (dns == NULL) {
		log_error("queue action=reload key=dns.resolver error=\"%s\" note=\"old resolver kept\"",
			  err);
		return;
	}
	size_t n = 0, n_again = 0;
	for (struct dest *d = r->dests; d != NULL; d = d->next)
		n++;
	struct dest **again = xcalloc(n ? n : 1, sizeof *again);
	for (struct dest *d = r->dests; d != NULL; d = d->next) {
		if (d->sts_q != NULL) {
			/* discovery starts again on the new resolver */
			dns_query_cancel(&d->sts_q);
			d->sts_state = STS_UNKNOWN;
		}
		if (d->q != NULL || d->sts_state == STS_UNKNOWN) {
			dns_query_cancel(&d->q);
			again[n_again++] = d;
		} else if (d->mx != NULL && d->n_conns == 0) {
			free(d->mx);
			d->mx = NULL;
		}
	}
	queue_dmarc_cancel(r->dmarc); /* its lookups are on the old resolver */
	dns_resolver_free(&r->dns);
	r->dns = dns;
	log_info("queue action=reload key=dns.resolver resolver=%s",
		 cfg->dns_resolver[0] ? cfg->dns_resolver : "system");
	/* the new config first: dest_pump reads limits from r->cfg */
	r->cfg = cfg;
	for (size_t k = 0; k < n_again; k++)
		dest_pump(again[k]);
	free(again);
}

void queue_runner_set_config(struct queue_runner *r, const struct config *cfg)
{
	swap_resolver(r, r->cfg, cfg);
	r->cfg = cfg;
	/* Connections in flight hold their own reference to the old
	 * context (OpenSSL reference counts). */
	tls_client_free(&r->tls);
	r->tls = make_tls(cfg);
	set_relay(r);
}

size_t queue_runner_connections(const struct queue_runner *r)
{
	return r->n_conns;
}

void queue_runner_free(struct queue_runner **rp)
{
	if (rp == NULL || *rp == NULL)
		return;
	struct queue_runner *r = *rp;
	/* Outcomes already known are kept. */
	flush_records(r);
	while (r->conns) {
		struct conn *k = r->conns;
		struct job *j = k->job;
		k->job = NULL;
		if (j)
			job_free(j);
		conn_free(k);
	}
	while (r->dests) {
		struct dest *d = r->dests;
		r->dests = d->next;
		struct job *j;
		while ((j = dest_take(d)) != NULL)
			job_free(j);
		dns_query_cancel(&d->q);
		dns_query_cancel(&d->sts_q);
		mtasts_fetch_cancel(&d->sts_fetch);
		free(d->mx);
		free(d->sts);
		free(d->sts_cached);
		free(d);
	}
	char err[256];
	if (store_queue_recover(r->store, err, sizeof err) < 0)
		log_error("queue action=recover error=\"%s\"", err);
	event_free(r->scan_ev);
	event_free(r->flush_ev);
	dkim_keyring_free(&r->dkim);
	queue_dmarc_free(&r->dmarc);
	event_free(r->dmarc_ev);
	free(r->recs);
	free(r->sts_fails);
	dns_resolver_free(&r->dns);
	tls_client_free(&r->tls);
	free(r);
	*rp = NULL;
}
