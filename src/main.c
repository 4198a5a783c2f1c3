/*
 * main.c - process start-up: argument dispatch, and `tern serve`.
 *
 * `serve` runs the nginx-like process model of docs/architecture.md:
 *
 *   master (keeps root if started as root)
 *     - binds the listeners, checks the data folder, forks the workers;
 *     - restarts a worker that dies (a crash costs only its connections);
 *     - relays change notifications between workers (one socketpair each);
 *     - SIGHUP: re-reads the config and tells the workers; SIGTERM/SIGINT:
 *       stops the workers gracefully, then exits.
 *   worker 1..N (unprivileged)
 *     - one single-threaded libevent loop serving every listener;
 *     - dies with the master (PR_SET_PDEATHSIG).
 *
 * Every other sub-command is handed to src/cli.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "authlimit.h"
#include "cli.h"
#include "config.h"
#include "http-metrics.h"
#include "http-server.h"
#include "jmap-server.h"
#include "imap-session.h"
#include "log.h"
#include "managesieve-session.h"
#include "metrics.h"
#include "pop3-session.h"
#include "privdrop.h"
#include "proxy-accept.h"
#include "queue-runner.h"
#include "smtp-session.h"
#include "store.h"
#include "tls.h"
#include "xalloc.h"

#define TERN_VERSION "0.1.0"
#define MAX_WORKERS 64
#define MAX_LISTENERS 11

/* A protocol served by the workers: one server object per worker, made
 * and driven through these functions (each protocol's *-session.h). */
struct proto_ops {
	const char *listen_key;
	void *(*create)(struct event_base *base, struct store *store, const struct config *cfg);
	void (*set_config)(void *srv, const struct config *cfg);
	void (*accept)(void *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen);
	void (*shutdown)(void *srv, void (*cb)(void *ctx), void *ctx);
	size_t (*sessions)(void *srv);
	void (*destroy)(void *srv);
	/* TLS (may be NULL: the protocol has none): hands the server the
	 * worker's TLS state; implicit_tls: TLS from the first byte (RFC 8314
	 * listeners such as pop3s), so each such listener is one row. */
	void (*set_tls)(void *srv, struct tls *tls, bool implicit);
	bool implicit_tls;
	/* Servers that accept their own connections (evhttp): takes the
	 * listener (made without a callback) instead of accepted sockets; the
	 * server disables it on shutdown and frees it. */
	int (*take_listener)(void *srv, struct evconnlistener *l);
};

static void *smtp_create(struct event_base *b, struct store *st, const struct config *c)
{
	return smtp_server_new(b, st, c);
}
static void smtp_set_config(void *srv, const struct config *c)
{
	smtp_server_set_config(srv, c);
}
static void smtp_accept(void *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	smtp_server_accept(srv, fd, sa, salen);
}
static void smtp_shutdown(void *srv, void (*cb)(void *), void *ctx)
{
	smtp_server_shutdown(srv, cb, ctx);
}
static size_t smtp_sessions(void *srv)
{
	return smtp_server_sessions(srv);
}
static void smtp_destroy(void *srv)
{
	struct smtp_server *s = srv;
	smtp_server_free(&s);
}

static void smtp_set_tls(void *srv, struct tls *tls, bool implicit)
{
	smtp_server_set_tls(srv, tls, implicit);
}

/* submission.listen / submissions.listen: the SMTP server in submission
 * mode (RFC 6409; AUTH, sender checks, relay for the authenticated). */
static void *submission_create(struct event_base *b, struct store *st, const struct config *c)
{
	struct smtp_server *srv = smtp_server_new(b, st, c);
	smtp_server_set_submission(srv, true);
	return srv;
}

static void *pop3_create(struct event_base *b, struct store *st, const struct config *c)
{
	return pop3_server_new(b, st, c);
}
static void pop3_set_config(void *srv, const struct config *c)
{
	pop3_server_set_config(srv, c);
}
static void pop3_accept(void *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	pop3_server_accept(srv, fd, sa, salen);
}
static void pop3_shutdown(void *srv, void (*cb)(void *), void *ctx)
{
	pop3_server_shutdown(srv, cb, ctx);
}
static size_t pop3_sessions(void *srv)
{
	return pop3_server_sessions(srv);
}
static void pop3_destroy(void *srv)
{
	struct pop3_server *s = srv;
	pop3_server_free(&s);
}

static void pop3_set_tls(void *srv, struct tls *tls, bool implicit)
{
	pop3_server_set_tls(srv, tls, implicit);
}

static void *managesieve_create(struct event_base *b, struct store *st, const struct config *c)
{
	return managesieve_server_new(b, st, c);
}
static void managesieve_set_config(void *srv, const struct config *c)
{
	managesieve_server_set_config(srv, c);
}
static void managesieve_accept(void *srv, evutil_socket_t fd, const struct sockaddr *sa,
			       int salen)
{
	managesieve_server_accept(srv, fd, sa, salen);
}
static void managesieve_shutdown(void *srv, void (*cb)(void *), void *ctx)
{
	managesieve_server_shutdown(srv, cb, ctx);
}
static size_t managesieve_sessions(void *srv)
{
	return managesieve_server_sessions(srv);
}
static void managesieve_destroy(void *srv)
{
	struct managesieve_server *s = srv;
	managesieve_server_free(&s);
}
static void managesieve_set_tls(void *srv, struct tls *tls, bool implicit)
{
	managesieve_server_set_tls(srv, tls, implicit);
}

static void *imap_create(struct event_base *b, struct store *st, const struct config *c)
{
	return imap_server_new(b, st, c);
}
static void imap_set_config(void *srv, const struct config *c)
{
	imap_server_set_config(srv, c);
}
static void imap_accept(void *srv, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	imap_server_accept(srv, fd, sa, salen);
}
static void imap_shutdown(void *srv, void (*cb)(void *), void *ctx)
{
	imap_server_shutdown(srv, cb, ctx);
}
static size_t imap_sessions(void *srv)
{
	return imap_server_sessions(srv);
}
static void imap_destroy(void *srv)
{
	struct imap_server *s = srv;
	imap_server_free(&s);
}

static void imap_set_tls(void *srv, struct tls *tls, bool implicit)
{
	imap_server_set_tls(srv, tls, implicit);
}

static void *http_create(struct event_base *b, struct store *st, const struct config *c)
{
	struct http_server *srv = http_server_new(b, st, c);
	/* JMAP answers on the same listeners (src/jmap); srv owns it. */
	jmap_server_attach(srv, b, st);
	return srv;
}
static void http_set_config(void *srv, const struct config *c)
{
	http_server_set_config(srv, c);
}
static void http_shutdown(void *srv, void (*cb)(void *), void *ctx)
{
	http_server_shutdown(srv, cb, ctx);
}
static size_t http_sessions(void *srv)
{
	return http_server_connections(srv);
}
static void http_destroy(void *srv)
{
	struct http_server *s = srv;
	http_server_free(&s);
}
static void http_set_tls(void *srv, struct tls *tls, bool implicit)
{
	http_server_set_tls(srv, tls, implicit);
}
static int http_take_listener(void *srv, struct evconnlistener *l)
{
	return http_server_listen(srv, l);
}

/* metrics.listen: the admin listener (src/http/http-metrics.c). */
static void *metrics_create(struct event_base *b, struct store *st, const struct config *c)
{
	return http_metrics_new(b, st, c);
}
static void metrics_set_tls(void *srv, struct tls *tls, bool implicit)
{
	http_metrics_set_tls(srv, tls);
}

static const struct proto_ops protocols[] = {
	{"smtp.listen", smtp_create, smtp_set_config, smtp_accept, smtp_shutdown, smtp_sessions,
	 smtp_destroy, smtp_set_tls, false, NULL},
	{"submission.listen", submission_create, smtp_set_config, smtp_accept, smtp_shutdown,
	 smtp_sessions, smtp_destroy, smtp_set_tls, false, NULL},
	{"submissions.listen", submission_create, smtp_set_config, smtp_accept, smtp_shutdown,
	 smtp_sessions, smtp_destroy, smtp_set_tls, true, NULL},
	{"imap.listen", imap_create, imap_set_config, imap_accept, imap_shutdown, imap_sessions,
	 imap_destroy, imap_set_tls, false, NULL},
	{"imaps.listen", imap_create, imap_set_config, imap_accept, imap_shutdown, imap_sessions,
	 imap_destroy, imap_set_tls, true, NULL},
	{"pop3.listen", pop3_create, pop3_set_config, pop3_accept, pop3_shutdown, pop3_sessions,
	 pop3_destroy, pop3_set_tls, false, NULL},
	{"pop3s.listen", pop3_create, pop3_set_config, pop3_accept, pop3_shutdown, pop3_sessions,
	 pop3_destroy, pop3_set_tls, true, NULL},
	{"managesieve.listen", managesieve_create, managesieve_set_config, managesieve_accept,
	 managesieve_shutdown, managesieve_sessions, managesieve_destroy, managesieve_set_tls, false,
	 NULL},
	{"http.listen", http_create, http_set_config, NULL, http_shutdown, http_sessions,
	 http_destroy, http_set_tls, false, http_take_listener},
	{"https.listen", http_create, http_set_config, NULL, http_shutdown, http_sessions,
	 http_destroy, http_set_tls, true, http_take_listener},
	/* Last: not one of the counted listeners (enum metrics_listener). */
	{"metrics.listen", metrics_create, http_set_config, NULL, http_shutdown, http_sessions,
	 http_destroy, metrics_set_tls, false, http_take_listener},
};
#define N_PROTOCOLS (sizeof protocols / sizeof protocols[0])
/* The rows before the metrics one are the listeners of metrics.h, in
 * order: a row's index is its enum metrics_listener. */
_Static_assert(N_PROTOCOLS == METRICS_L_COUNT + 1, "protocols[] and enum metrics_listener differ");

struct listener {
	const char *key;  /* config key, for messages */
	size_t proto;     /* index in protocols[] */
	/* One socket per worker slot, all bound to the address with
	 * SO_REUSEPORT, so the kernel spreads new connections evenly over
	 * the workers (one shared socket let whichever worker woke first take
	 * most of them).  The master keeps them all open: connections waiting
	 * on the socket of a worker that died are taken by its successor.
	 * -1 for the queue runner's slot. */
	int fd[MAX_WORKERS];
};

struct worker_slot {
	pid_t pid;
	int notify_fd;        /* master's end of the socketpair */
	struct event *notify_ev;
	int tls_fd;           /* master's end of the TLS channel (new certificates) */
	time_t started;
	int quick_deaths;     /* deaths within 2 s of start, in a row */
};

struct master {
	struct config *cfg;
	struct event_base *base;
	struct listener listeners[MAX_LISTENERS];
	size_t n_listeners;
	struct worker_slot workers[MAX_WORKERS];
	size_t n_workers;
	size_t queue_slot;      /* the queue runner's slot: the last one */
	bool stopping;
	struct event *sig_ev[4];
	struct event *restart_timer;
	struct event *kill_timer;
	struct tls_bundle *tls; /* certificates and keys, read as root; NULL: no TLS */
	int child_tls_fd;       /* worker's end of its TLS channel, during fork */
};

static struct master master;

/* ------------------------------------------------------------- listeners */

static int open_listener(const char *key, const char *spec, bool reuseport, char *err,
			 size_t errsz)
{
	char host[256];
	uint16_t port;
	if (config_split_hostport(spec, host, sizeof host, &port) < 0) {
		snprintf(err, errsz, "%s = %s: expected ADDRESS:PORT", key, spec);
		return -1;
	}
	char portstr[8];
	snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0) {
		snprintf(err, errsz, "%s = %s: %s", key, spec, gai_strerror(gai));
		return -1;
	}
	int fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    (reuseport ? listen(fd, 4096) : 0) < 0) {
		snprintf(err, errsz, "%s = %s: %s", key, spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void close_listeners(struct master *m)
{
	for (size_t i = 0; i < m->n_listeners; i++)
		for (size_t w = 0; w < MAX_WORKERS; w++)
			if (m->listeners[i].fd[w] >= 0) {
				close(m->listeners[i].fd[w]);
				m->listeners[i].fd[w] = -1;
			}
}

static void open_listeners(struct master *m)
{
	struct {
		const char *key;
		const char *value;
	} keys[] = {
		{"smtp.listen", m->cfg->smtp_listen},
		{"submission.listen", m->cfg->submission_listen},
		{"submissions.listen", m->cfg->submissions_listen},
		{"imap.listen", m->cfg->imap_listen},
		{"imaps.listen", m->cfg->imaps_listen},
		{"pop3.listen", m->cfg->pop3_listen},
		{"pop3s.listen", m->cfg->pop3s_listen},
		{"managesieve.listen", m->cfg->managesieve_listen},
		{"http.listen", m->cfg->http_listen},
		{"https.listen", m->cfg->https_listen},
		{"metrics.listen", m->cfg->metrics_listen},
	};
	_Static_assert(sizeof keys / sizeof keys[0] <= MAX_LISTENERS, "listener table too small");
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (keys[i].value[0] == '\0')
			continue;
		size_t proto = N_PROTOCOLS;
		for (size_t p = 0; p < N_PROTOCOLS; p++)
			if (!strcmp(protocols[p].listen_key, keys[i].key))
				proto = p;
		if (proto < N_PROTOCOLS && protocols[proto].implicit_tls && m->tls == NULL)
			fatal(2, "%s: %s needs a certificate (tls.cert and tls.key)", m->cfg->path,
			      keys[i].key);
		if (proto == N_PROTOCOLS) {
			log_warn("config key=%s value=%s note=\"this protocol is not served by this "
				 "version; key ignored\"",
				 keys[i].key, keys[i].value);
			continue;
		}
		char err[512];
		/* A plain bind first: it fails if anything else (another Tern
		 * too) holds the address, which joining a SO_REUSEPORT group
		 * would hide. */
		int probe = open_listener(keys[i].key, keys[i].value, false, err, sizeof err);
		if (probe < 0)
			fatal(1, "%s: %s", m->cfg->path, err);
		close(probe);
		struct listener *l = &m->listeners[m->n_listeners];
		l->key = keys[i].key;
		l->proto = proto;
		for (size_t w = 0; w < MAX_WORKERS; w++) {
			l->fd[w] = -1;
			if (w >= m->n_workers || w == m->queue_slot)
				continue;
			l->fd[w] = open_listener(keys[i].key, keys[i].value, true, err, sizeof err);
			if (l->fd[w] < 0)
				fatal(1, "%s: %s", m->cfg->path, err);
		}
		m->n_listeners++;
		log_info("listen key=%s address=%s", keys[i].key, keys[i].value);
	}
	if (m->n_listeners == 0)
		fatal(2, "%s: no listener configured (set smtp.listen)", m->cfg->path);

}

/* ---------------------------------------------------------------- reload */

static enum log_level parse_level(const char *s)
{
	if (!strcmp(s, "debug"))
		return LOG_DEBUG;
	if (!strcmp(s, "warn"))
		return LOG_WARN;
	if (!strcmp(s, "error"))
		return LOG_ERROR;
	return LOG_INFO;
}

/* SIGHUP in any process (master, worker, queue runner): reads the config
 * again and keeps the running value of every restart key (config.h), so
 * a process never half-applies one (a worker advertising in autoconfig a
 * port nobody listens on).  Only the master warns about those keys, once
 * per reload.  NULL (logged) if the file does not load. */
static struct config *reload_config(const struct config *running, bool warn)
{
	char err[1024];
	struct config *c = config_load(running->path, err, sizeof err);
	if (c == NULL) {
		log_error("reload result=failed error=\"%s\" note=\"old config kept\"", err);
		return NULL;
	}
	config_keep_restart_keys(c, running, warn);
	log_set_level(parse_level(c->log_level));
	return c;
}

/* ---------------------------------------------------------------- worker */

struct worker {
	struct event_base *base;
	struct config *cfg;
	struct store *store;
	void *servers[N_PROTOCOLS];     /* one server per protocol */
	size_t n_stopped;               /* servers done shutting down */
	struct worker_accept {
		struct worker *w;
		size_t proto;
	} acc[MAX_LISTENERS];
	struct evconnlistener *lev[MAX_LISTENERS];
	size_t n_lev;
	int notify_fd;
	struct event *notify_ev;
	struct event *commit_ev; /* commits made durable off the loop (store.h) */
	struct tls *tls;        /* contexts for new TLS connections */
	int tls_fd;             /* new certificates from the master (SIGHUP) */
	struct event *tls_ev;
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *deadline;
	size_t slot;            /* the master's slot of this worker */
	struct event *gauge_ev; /* open connections into the metrics table */
	struct proxy_accept *proxy; /* PROXY protocol headers being read */
};

static void worker_hand_on(void *ctx, evutil_socket_t fd, const struct sockaddr *csa, int salen);

static void worker_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			     int salen, void *ctx)
{
	struct worker_accept *a = ctx;
	/* Replies are written whole and at once; without this, the last
	 * partial segment of a long answer (a RETR, a FETCH) waits for the
	 * client's delayed ACK (Nagle), about 40 ms each. */
	int one = 1;
	if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* From a trusted proxy: its header first (proxy-accept.h). */
	if (proxy_accept_begin(a->w->proxy, a->w->cfg, protocols[a->proto].listen_key, fd, sa,
			       salen, worker_hand_on, a))
		return;
	worker_hand_on(a, fd, sa, salen);
}

/* Gives an accepted connection to its protocol, with the client's address. */
static void worker_hand_on(void *ctx, evutil_socket_t fd, const struct sockaddr *csa, int salen)
{
	struct worker_accept *a = ctx;
	struct sockaddr_storage ss;
	memcpy(&ss, csa, (size_t)salen);
	struct sockaddr *sa = (struct sockaddr *)&ss;
	protocols[a->proto].accept(a->w->servers[a->proto], fd, sa, salen);
	if (a->proto < METRICS_L_COUNT) {
		metrics_conn((enum metrics_listener)a->proto);
		metrics_set_open(a->w->slot, (enum metrics_listener)a->proto,
				 protocols[a->proto].sessions(a->w->servers[a->proto]));
	}
}

/* Every second: each listener's open connections into this worker's slot
 * of the metrics table (closes are not seen one by one; a sample is). */
#define GAUGE_INTERVAL 1
static void worker_gauge_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct worker *w = ctx;
	for (size_t p = 0; p < METRICS_L_COUNT; p++)
		metrics_set_open(w->slot, (enum metrics_listener)p,
				 protocols[p].sessions(w->servers[p]));
}

static void worker_accept_error_cb(struct evconnlistener *l, void *ctx)
{
	int e = EVUTIL_SOCKET_ERROR();
	log_warn("accept error=\"%s\"", evutil_socket_error_to_string(e));
}

/* Store hook: tell the master which account changed. */
static void worker_notify_hook(void *ctx, int64_t account_id)
{
	struct worker *w = ctx;
	/* Datagram-style: one 8-byte id per send; if the master is slow we
	 * drop the notice rather than block (IDLE clients then see it on
	 * their next poll). */
	(void)!send(w->notify_fd, &account_id, sizeof account_id, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void worker_commit_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct worker *w = ctx;
	(void)fd;
	(void)what;
	store_commit_dispatch(w->store);
}

static void worker_notify_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct worker *w = ctx;
	int64_t id;
	for (;;) {
		ssize_t n = recv(fd, &id, sizeof id, MSG_DONTWAIT);
		if (n == (ssize_t)sizeof id) {
			store_notify_local(w->store, id);
			continue;
		}
		if (n == 0) { /* master gone */
			event_base_loopexit(w->base, NULL);
		}
		return;
	}
}

/* New certificates from the master (after SIGHUP): new connections use
 * them, established ones keep theirs. */
static void worker_tls_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct worker *w = ctx;
	for (;;) {
		char err[1024];
		struct tls_bundle *b = NULL;
		int r = tls_bundle_recv(fd, &b, err, sizeof err);
		if (r == 0)
			return;
		if (r < 0) {
			log_error("tls action=reload result=failed error=\"%s\"", err);
			event_del(w->tls_ev);
			return;
		}
		if (tls_set_bundle(w->tls, b, err, sizeof err) < 0)
			log_error("tls action=reload result=failed error=\"%s\" note=\"old "
				  "certificates kept\"",
				  err);
		else
			log_info("tls action=reload result=ok certificates=%zu", tls_bundle_pairs(b));
		tls_bundle_free(&b);
	}
}

static void worker_stopped_cb(void *ctx)
{
	struct worker *w = ctx;
	if (++w->n_stopped == N_PROTOCOLS)
		event_base_loopexit(w->base, NULL);
}

static size_t worker_sessions(struct worker *w)
{
	size_t n = 0;
	for (size_t p = 0; p < N_PROTOCOLS; p++)
		n += protocols[p].sessions(w->servers[p]);
	return n;
}

static void worker_deadline_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct worker *w = ctx;
	log_warn("shutdown action=force sessions=%zu", worker_sessions(w));
	event_base_loopexit(w->base, NULL);
}

static void worker_term_cb(evutil_socket_t sig, short what, void *ctx)
{
	struct worker *w = ctx;
	if (w->deadline != NULL)
		return;
	for (size_t i = 0; i < w->n_lev; i++)
		evconnlistener_disable(w->lev[i]);
	/* Connections still sending their PROXY header never reach a
	 * session: closed now, not handed to a server that is stopping. */
	proxy_accept_free(&w->proxy);
	w->deadline = evtimer_new(w->base, worker_deadline_cb, w);
	struct timeval tv = {10, 0};
	evtimer_add(w->deadline, &tv);
	for (size_t p = 0; p < N_PROTOCOLS; p++)
		protocols[p].shutdown(w->servers[p], worker_stopped_cb, w);
}

static void worker_hup_cb(evutil_socket_t sig, short what, void *ctx)
{
	struct worker *w = ctx;
	struct config *c = reload_config(w->cfg, false);
	if (c == NULL)
		return;
	for (size_t p = 0; p < N_PROTOCOLS; p++)
		protocols[p].set_config(w->servers[p], c);
	store_set_postmaster(w->store, c->postmaster, c->hostname);
	store_set_quota_default(w->store, c->quota_default_storage,
					c->quota_default_messages);
	store_set_fts_max_text(w->store, (size_t)c->search_index_max_text);
	config_free(&w->cfg);
	w->cfg = c;
	log_info("reload result=ok");
}

static void free_master_events(struct master *m);

/* SIGTERM, SIGINT and SIGHUP stay blocked from just before fork until the
 * child has installed its handlers, so a signal sent to a worker that is
 * still starting waits for them instead of killing it with the default
 * action.  how: SIG_BLOCK or SIG_UNBLOCK; old may be NULL. */
static void control_signals(int how, sigset_t *old)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(how, &set, old);
}

static int worker_main(struct master *m, size_t slot, int notify_fd)
{
	char name[32];
	snprintf(name, sizeof name, "worker%zu", slot + 1);
	log_set_process(name);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() == 1)
		_exit(0); /* the master died before we got here */

	/* The master's loop belongs to the master. */
	event_reinit(m->base);
	free_master_events(m);
	event_base_free(m->base);
	m->base = NULL;
	for (size_t i = 0; i < m->n_workers; i++)
		if (m->workers[i].notify_fd >= 0)
			close(m->workers[i].notify_fd);
	for (size_t i = 0; i < m->n_workers; i++)
		if (m->workers[i].tls_fd >= 0)
			close(m->workers[i].tls_fd);

	char err[1024];
	if (privdrop_to_user(m->cfg->user, err, sizeof err) < 0) {
		log_error("worker action=privdrop error=\"%s\"", err);
		_exit(3);
	}
	struct worker w = {0};
	w.cfg = m->cfg;
	m->cfg = NULL;
	w.notify_fd = notify_fd;
	w.store = store_open(w.cfg->data_dir, err, sizeof err);
	if (w.store == NULL) {
		log_error("worker action=store_open error=\"%s\"", err);
		_exit(3);
	}
	store_notify_set_hook(w.store, worker_notify_hook, &w);
	store_set_postmaster(w.store, w.cfg->postmaster, w.cfg->hostname);
	store_set_quota_default(w.store, w.cfg->quota_default_storage,
					w.cfg->quota_default_messages);
	store_set_fts_max_text(w.store, (size_t)w.cfg->search_index_max_text);
	w.base = event_base_new();
	if (w.base == NULL)
		fatal(1, "cannot create event loop");
	/* Without the commit threads, commits are synced on the loop. */
	int commit_fd = store_commit_enable(w.store, err, sizeof err);
	if (commit_fd < 0) {
		log_warn("worker action=commit_threads error=\"%s\"", err);
	} else {
		w.commit_ev = event_new(w.base, commit_fd, EV_READ | EV_PERSIST, worker_commit_cb, &w);
		if (w.commit_ev == NULL || event_add(w.commit_ev, NULL) < 0)
			fatal(1, "cannot watch the commit threads");
		/* the full-text index in the background, each account by one
		 * worker (docs/imap.md "Full-text index") */
		if (store_indexer_start(w.store, slot, m->queue_slot, err, sizeof err) < 0)
			log_warn("worker action=indexer error=\"%s\""
				 " note=\"messages indexed as they are stored\"",
				 err);
	}
	/* Contexts from the bundle the master read (as root) before forking;
	 * then the key bytes are wiped from this process's copy. */
	w.tls = tls_new();
	w.tls_fd = m->child_tls_fd;
	if (m->tls != NULL && tls_set_bundle(w.tls, m->tls, err, sizeof err) < 0) {
		log_error("worker action=tls error=\"%s\"", err);
		_exit(3);
	}
	tls_bundle_free(&m->tls);
	for (size_t p = 0; p < N_PROTOCOLS; p++)
		w.servers[p] = protocols[p].create(w.base, w.store, w.cfg);
	for (size_t p = 0; p < N_PROTOCOLS; p++)
		if (protocols[p].set_tls != NULL)
			protocols[p].set_tls(w.servers[p], w.tls, protocols[p].implicit_tls);
	for (size_t i = 0; i < m->n_listeners; i++) {
		w.acc[i].w = &w;
		w.acc[i].proto = m->listeners[i].proto;
		for (size_t k = 0; k < MAX_WORKERS; k++)
			if (k != slot && m->listeners[i].fd[k] >= 0)
				close(m->listeners[i].fd[k]);
		const struct proto_ops *ops = &protocols[w.acc[i].proto];
		if (ops->take_listener != NULL) {
			struct evconnlistener *l = evconnlistener_new(
			    w.base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, 0, m->listeners[i].fd[slot]);
			if (l == NULL || ops->take_listener(w.servers[w.acc[i].proto], l) < 0)
				fatal(1, "cannot listen on %s", m->listeners[i].key);
			continue;
		}
		struct evconnlistener *l = evconnlistener_new(w.base, worker_accept_cb, &w.acc[i],
							      LEV_OPT_CLOSE_ON_FREE, 0,
							      m->listeners[i].fd[slot]);
		if (l == NULL)
			fatal(1, "cannot listen on %s", m->listeners[i].key);
		evconnlistener_set_error_cb(l, worker_accept_error_cb);
		w.lev[w.n_lev++] = l;
	}
	w.slot = slot;
	w.proxy = proxy_accept_new(w.base);
	w.gauge_ev = event_new(w.base, -1, EV_PERSIST, worker_gauge_cb, &w);
	if (w.gauge_ev == NULL)
		fatal(1, "cannot create the metrics timer");
	struct timeval gauge_tv = {GAUGE_INTERVAL, 0};
	event_add(w.gauge_ev, &gauge_tv);
	w.notify_ev = event_new(w.base, notify_fd, EV_READ | EV_PERSIST, worker_notify_cb, &w);
	w.tls_ev = event_new(w.base, w.tls_fd, EV_READ | EV_PERSIST, worker_tls_cb, &w);
	event_add(w.tls_ev, NULL);
	w.sig_term = evsignal_new(w.base, SIGTERM, worker_term_cb, &w);
	w.sig_int = evsignal_new(w.base, SIGINT, worker_term_cb, &w);
	w.sig_hup = evsignal_new(w.base, SIGHUP, worker_hup_cb, &w);
	event_add(w.notify_ev, NULL);
	event_add(w.sig_term, NULL);
	event_add(w.sig_int, NULL);
	event_add(w.sig_hup, NULL);
	control_signals(SIG_UNBLOCK, NULL);
	log_info("worker action=start");

	event_base_dispatch(w.base);

	log_info("worker action=stop");
	proxy_accept_free(&w.proxy);
	for (size_t p = 0; p < N_PROTOCOLS; p++)
		protocols[p].destroy(w.servers[p]);
	for (size_t i = 0; i < w.n_lev; i++)
		evconnlistener_free(w.lev[i]);
	event_free(w.gauge_ev);
	event_free(w.notify_ev);
	if (w.commit_ev)
		event_free(w.commit_ev);
	event_free(w.tls_ev);
	close(w.tls_fd);
	event_free(w.sig_term);
	event_free(w.sig_int);
	event_free(w.sig_hup);
	if (w.deadline)
		event_free(w.deadline);
	event_base_free(w.base);
	store_close(&w.store);
	close(notify_fd);
	tls_free(&w.tls);
	config_free(&w.cfg);
	return 0;
}

/* ------------------------------------------------------------ queue runner */

/* Removes the spool and queue files of transactions a crash cut short
 * (store_spool_clean), and says so when there were any. */
#define SPOOL_CLEAN_INTERVAL 600 /* seconds between two clean-ups */
#define SPOOL_CLEAN_MIN_AGE 60   /* files younger than this are left alone */
static void spool_clean(struct store *st, time_t min_age)
{
	char err[512];
	size_t n_spool, n_queue;
	if (store_spool_clean(st, min_age, &n_spool, &n_queue, err, sizeof err) < 0)
		log_error("store action=spool_clean error=\"%s\"", err);
	else if (n_spool + n_queue > 0)
		log_info("store action=spool_clean spool_removed=%zu queue_removed=%zu", n_spool,
			 n_queue);
}

/* The queue runner process (design.md: "the queue runner is its own
 * process"): unprivileged like a worker, no listeners; it wakes when the
 * master relays STORE_NOTIFY_QUEUE and on its own timers. */
struct queue_proc {
	struct event_base *base;
	struct config *cfg;
	struct store *store;
	struct queue_runner *runner;
	int notify_fd;
	struct event *clean_ev; /* spool_clean, every SPOOL_CLEAN_INTERVAL */
};

static void queue_clean_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct queue_proc *q = ctx;
	spool_clean(q->store, SPOOL_CLEAN_MIN_AGE);
}

static void queue_notify_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct queue_proc *q = ctx;
	int64_t id;
	for (;;) {
		ssize_t n = recv(fd, &id, sizeof id, MSG_DONTWAIT);
		if (n == (ssize_t)sizeof id) {
			if (id == STORE_NOTIFY_QUEUE)
				queue_runner_kick(q->runner);
			continue;
		}
		if (n == 0)
			event_base_loopexit(q->base, NULL);
		return;
	}
}

static void queue_store_hook(void *ctx, int64_t account_id)
{
	struct queue_proc *q = ctx;
	(void)!send(q->notify_fd, &account_id, sizeof account_id, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void queue_signal_cb(evutil_socket_t sig, short what, void *ctx)
{
	struct queue_proc *q = ctx;
	if (sig != SIGHUP) {
		event_base_loopexit(q->base, NULL);
		return;
	}
	struct config *c = reload_config(q->cfg, false);
	if (c == NULL)
		return;
	queue_runner_set_config(q->runner, c);
	store_set_postmaster(q->store, c->postmaster, c->hostname);
	store_set_quota_default(q->store, c->quota_default_storage,
					c->quota_default_messages);
	store_set_fts_max_text(q->store, (size_t)c->search_index_max_text);
	config_free(&q->cfg);
	q->cfg = c;
	log_info("reload result=ok");
}

static int queue_main(struct master *m, int notify_fd)
{
	log_set_process("queue");
	prctl(PR_SET_NAME, "tern-queue", 0, 0, 0);
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() == 1)
		_exit(0);
	event_reinit(m->base);
	free_master_events(m);
	event_base_free(m->base);
	m->base = NULL;
	for (size_t i = 0; i < m->n_workers; i++) {
		if (m->workers[i].notify_fd >= 0)
			close(m->workers[i].notify_fd);
		if (m->workers[i].tls_fd >= 0)
			close(m->workers[i].tls_fd);
	}
	close_listeners(m);
	tls_bundle_free(&m->tls);
	char err[1024];
	if (privdrop_to_user(m->cfg->user, err, sizeof err) < 0) {
		log_error("queue action=privdrop error=\"%s\"", err);
		_exit(3);
	}
	struct queue_proc q = {0};
	q.cfg = m->cfg;
	m->cfg = NULL;
	q.notify_fd = notify_fd;
	q.store = store_open(q.cfg->data_dir, err, sizeof err);
	if (q.store == NULL) {
		log_error("queue action=store_open error=\"%s\"", err);
		_exit(3);
	}
	store_notify_set_hook(q.store, queue_store_hook, &q);
	store_set_postmaster(q.store, q.cfg->postmaster, q.cfg->hostname);
	store_set_quota_default(q.store, q.cfg->quota_default_storage,
					q.cfg->quota_default_messages);
	store_set_fts_max_text(q.store, (size_t)q.cfg->search_index_max_text);
	q.base = event_base_new();
	if (q.base == NULL)
		fatal(1, "cannot create event loop");
	q.runner = queue_runner_new(q.base, q.store, q.cfg, err, sizeof err);
	if (q.runner == NULL) {
		log_error("queue action=start error=\"%s\"", err);
		_exit(3);
	}
	struct event *nev = event_new(q.base, notify_fd, EV_READ | EV_PERSIST, queue_notify_cb, &q);
	struct event *sig[3];
	int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < 3; i++) {
		sig[i] = evsignal_new(q.base, sigs[i], queue_signal_cb, &q);
		event_add(sig[i], NULL);
	}
	event_add(nev, NULL);
	q.clean_ev = event_new(q.base, -1, EV_PERSIST, queue_clean_cb, &q);
	if (q.clean_ev == NULL)
		fatal(1, "cannot create the clean-up timer");
	struct timeval clean_tv = {SPOOL_CLEAN_INTERVAL, 0};
	event_add(q.clean_ev, &clean_tv);
	control_signals(SIG_UNBLOCK, NULL);
	log_info("queue action=start");
	event_base_dispatch(q.base);
	log_info("queue action=stop");
	queue_runner_free(&q.runner);
	event_free(q.clean_ev);
	event_free(nev);
	for (size_t i = 0; i < 3; i++)
		event_free(sig[i]);
	event_base_free(q.base);
	store_close(&q.store);
	close(notify_fd);
	config_free(&q.cfg);
	return 0;
}

/* ---------------------------------------------------------------- master */

static void master_notify_cb(evutil_socket_t fd, short what, void *ctx);

static void start_worker(struct master *m, size_t slot)
{
	int sv[2], tv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tv) < 0)
		fatal(1, "socketpair: %s", strerror(errno));
	fflush(NULL);
	sigset_t old_mask;
	control_signals(SIG_BLOCK, &old_mask);
	pid_t pid = fork();
	if (pid != 0)
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
	if (pid < 0) {
		log_error("fork error=\"%s\"", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		close(tv[0]);
		close(tv[1]);
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		close(tv[0]);
		m->child_tls_fd = tv[1];
		exit(slot == m->queue_slot ? queue_main(m, sv[1]) : worker_main(m, slot, sv[1]));
	}
	close(sv[1]);
	close(tv[1]);
	struct worker_slot *ws = &m->workers[slot];
	ws->pid = pid;
	ws->notify_fd = sv[0];
	ws->tls_fd = tv[0];
	ws->started = time(NULL);
	ws->notify_ev = event_new(m->base, sv[0], EV_READ | EV_PERSIST, master_notify_cb, ws);
	event_add(ws->notify_ev, NULL);
	metrics_set_proc(slot, pid, slot == m->queue_slot ? METRICS_P_QUEUE : METRICS_P_WORKER);
	log_info("worker slot=%zu pid=%d action=started", slot + 1, (int)pid);
}

static void close_slot(struct worker_slot *ws)
{
	if (ws->notify_ev) {
		event_free(ws->notify_ev);
		ws->notify_ev = NULL;
	}
	if (ws->notify_fd >= 0) {
		close(ws->notify_fd);
		ws->notify_fd = -1;
	}
	if (ws->tls_fd >= 0) {
		close(ws->tls_fd);
		ws->tls_fd = -1;
	}
	ws->pid = 0;
}

/* Relays one worker's change notices to every other worker. */
static void master_notify_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct worker_slot *from = ctx;
	int64_t id;
	for (;;) {
		ssize_t n = recv(fd, &id, sizeof id, MSG_DONTWAIT);
		if (n != (ssize_t)sizeof id) {
			if (n == 0 && from->notify_ev) /* worker gone; SIGCHLD cleans up */
				event_del(from->notify_ev);
			return;
		}
		for (size_t i = 0; i < master.n_workers; i++) {
			struct worker_slot *ws = &master.workers[i];
			if (ws == from || ws->notify_fd < 0)
				continue;
			/* "Mail was queued" goes to the queue runner only. */
			if ((id == STORE_NOTIFY_QUEUE) != (i == master.queue_slot))
				continue;
			(void)!send(ws->notify_fd, &id, sizeof id, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
	}
}

static void restart_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct master *m = ctx;
	if (m->stopping)
		return;
	for (size_t i = 0; i < m->n_workers; i++)
		if (m->workers[i].pid == 0)
			start_worker(m, i);
}

static bool all_workers_gone(const struct master *m)
{
	for (size_t i = 0; i < m->n_workers; i++)
		if (m->workers[i].pid != 0)
			return false;
	return true;
}

static void master_sigchld(struct master *m)
{
	int status;
	pid_t pid;
	bool need_restart = false;
	int delay = 0;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < m->n_workers; i++) {
			struct worker_slot *ws = &m->workers[i];
			if (ws->pid != pid)
				continue;
			if (WIFSIGNALED(status))
				log_warn("worker slot=%zu pid=%d action=died signal=%d", i + 1, (int)pid,
					 WTERMSIG(status));
			else
				log_info("worker slot=%zu pid=%d action=exited status=%d", i + 1,
					 (int)pid, WEXITSTATUS(status));
			if (!m->stopping && WIFEXITED(status) && WEXITSTATUS(status) == 3)
				fatal(1, "worker could not start (see the error above); stopping");
			if (time(NULL) - ws->started < 2)
				ws->quick_deaths++;
			else
				ws->quick_deaths = 0;
			if (ws->quick_deaths > 1)
				delay = 1; /* crash loop: slow down restarts */
			close_slot(ws);
			metrics_set_proc(i, 0, METRICS_P_NONE);
			need_restart = true;
		}
	}
	if (m->stopping) {
		if (all_workers_gone(m))
			event_base_loopexit(m->base, NULL);
		return;
	}
	if (need_restart) {
		struct timeval tv = {delay, 0};
		evtimer_add(m->restart_timer, &tv);
	}
}

static void kill_timer_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct master *m = ctx;
	for (size_t i = 0; i < m->n_workers; i++)
		if (m->workers[i].pid > 0)
			kill(m->workers[i].pid, SIGKILL);
}

/* SIGHUP: re-reads every certificate and key (as root) and hands them to
 * the workers; a file that fails its checks keeps the old ones. */
static void master_reload_tls(struct master *m, const struct config *c)
{
	char err[1024];
	struct tls_bundle *b = NULL;
	int r = tls_bundle_load(c, m->tls, &b, err, sizeof err);
	if (r < 0) {
		log_error("tls action=reload result=failed error=\"%s\" note=\"old certificates "
			  "kept\"",
			  err);
		return;
	}
	if (r == 0) {
		if (m->tls != NULL)
			log_warn("tls action=reload note=\"tls.cert is now empty; the old "
				 "certificates stay until a restart\"");
		return;
	}
	tls_bundle_free(&m->tls);
	m->tls = b;
	for (size_t i = 0; i < m->n_workers; i++)
		if (i != m->queue_slot && m->workers[i].pid > 0 && m->workers[i].tls_fd >= 0 &&
		    tls_bundle_send(b, m->workers[i].tls_fd, err, sizeof err) < 0)
			log_error("tls action=reload worker=%zu error=\"%s\"", i + 1, err);
	log_info("tls action=reload result=ok certificates=%zu", tls_bundle_pairs(b));
}

static void master_signal_cb(evutil_socket_t sig, short what, void *ctx)
{
	struct master *m = ctx;
	if (sig == SIGCHLD) {
		master_sigchld(m);
		return;
	}
	if (sig == SIGHUP) {
		struct config *c = reload_config(m->cfg, true);
		if (c == NULL)
			return;
		master_reload_tls(m, c);
		struct authlimit_config alc;
		authlimit_config_from(c, &alc);
		authlimit_configure(&alc);
		/* Kept, so a worker restarted later starts with the reloaded
		 * values (and the running restart keys). */
		config_free(&m->cfg);
		m->cfg = c;
		for (size_t i = 0; i < m->n_workers; i++)
			if (m->workers[i].pid > 0)
				kill(m->workers[i].pid, SIGHUP);
		log_info("reload result=ok");
		return;
	}
	/* SIGTERM / SIGINT */
	if (m->stopping)
		return;
	m->stopping = true;
	log_info("master action=stopping");
	for (size_t i = 0; i < m->n_workers; i++)
		if (m->workers[i].pid > 0)
			kill(m->workers[i].pid, SIGTERM);
	struct timeval tv = {15, 0};
	evtimer_add(m->kill_timer, &tv);
	if (all_workers_gone(m))
		event_base_loopexit(m->base, NULL);
}

static void free_master_events(struct master *m)
{
	for (size_t i = 0; i < 4; i++)
		if (m->sig_ev[i]) {
			event_free(m->sig_ev[i]);
			m->sig_ev[i] = NULL;
		}
	if (m->restart_timer) {
		event_free(m->restart_timer);
		m->restart_timer = NULL;
	}
	if (m->kill_timer) {
		event_free(m->kill_timer);
		m->kill_timer = NULL;
	}
	for (size_t i = 0; i < m->n_workers; i++)
		if (m->workers[i].notify_ev) {
			event_free(m->workers[i].notify_ev);
			m->workers[i].notify_ev = NULL;
		}
}

/* Opens the store once as the worker user, so that a bad data folder is a
 * clear error at start-up and the schema exists before workers race. */
static void check_store(struct master *m)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fatal(1, "fork: %s", strerror(errno));
	if (pid == 0) {
		char err[1024];
		if (privdrop_to_user(m->cfg->user, err, sizeof err) < 0) {
			fprintf(stderr, "tern: %s: %s\n", m->cfg->path, err);
			_exit(2);
		}
		struct store *s = store_open(m->cfg->data_dir, err, sizeof err);
		if (s == NULL) {
			fprintf(stderr, "tern: %s: data_dir: %s\n", m->cfg->path, err);
			_exit(1);
		}
		/* No worker runs yet: what a crash left in the spool goes now
		 * (files still held by a process of an earlier run stay). */
		spool_clean(s, 0);
		store_close(&s);
		_exit(0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* Started as root with `user` set: path (a table in the data folder)
 * goes to that user, so `tern status` run as it can read it. */
static void give_to_user(const struct config *cfg, const char *path)
{
	if (geteuid() != 0 || cfg->user[0] == '\0')
		return;
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL || chown(path, pw->pw_uid, pw->pw_gid) < 0)
		log_warn("master action=chown path=%s user=%s error=\"%s\"", path, cfg->user,
			 pw == NULL ? "no such user" : strerror(errno));
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int serve_main(const char *cfg_path, int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: tern -c FILE serve\n\n"
		       "Runs the server in the foreground, logging to stderr.\n"
		       "SIGHUP reloads the config; SIGTERM stops gracefully.\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "tern: serve: unexpected argument \"%s\"\n", argv[1]);
		return 2;
	}
	struct master *m = &master;
	m->cfg = cli_load_config(cfg_path);
	if (m->cfg == NULL)
		return 2;
	log_set_process("master");
	log_set_level(parse_level(m->cfg->log_level));
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (geteuid() == 0 && m->cfg->user[0] == '\0')
		fatal(2, "%s: running as root needs the key \"user\" (an unprivileged account)",
		      m->cfg->path);
	char tls_err[1024];
	if (tls_bundle_load(m->cfg, NULL, &m->tls, tls_err, sizeof tls_err) < 0)
		fatal(2, "%s: %s", m->cfg->path, tls_err);
	/* Until the handlers below exist, a signal (say a SIGHUP sent as soon
	 * as the ports answer) waits instead of killing the master. */
	control_signals(SIG_BLOCK, NULL);
	check_store(m);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	m->n_workers = m->cfg->workers ? (size_t)m->cfg->workers : (ncpu > 0 ? (size_t)ncpu : 1);
	if (m->n_workers > MAX_WORKERS)
		m->n_workers = MAX_WORKERS;
	/* The queue runner is one more child, in the last slot, started and
	 * restarted like a worker. */
	if (m->n_workers > MAX_WORKERS - 1)
		m->n_workers = MAX_WORKERS - 1;
	m->queue_slot = m->n_workers++;
	open_listeners(m);

	for (size_t i = 0; i < MAX_WORKERS; i++)
		m->workers[i].notify_fd = -1;
	for (size_t i = 0; i < MAX_WORKERS; i++)
		m->workers[i].tls_fd = -1;

	m->base = event_base_new();
	if (m->base == NULL)
		fatal(1, "cannot create event loop");
	int sigs[4] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < 4; i++) {
		m->sig_ev[i] = evsignal_new(m->base, sigs[i], master_signal_cb, m);
		event_add(m->sig_ev[i], NULL);
	}
	control_signals(SIG_UNBLOCK, NULL);
	m->restart_timer = evtimer_new(m->base, restart_cb, m);
	m->kill_timer = evtimer_new(m->base, kill_timer_cb, m);
	log_info("master action=start version=%s hostname=%s workers=%zu", TERN_VERSION,
		 m->cfg->hostname, m->n_workers);
	/* The brute-force limiter's table is shared memory that the workers
	 * inherit, so it must exist before the first fork. */
	struct authlimit_config alc;
	authlimit_config_from(m->cfg, &alc);
	char alpath[4096];
	snprintf(alpath, sizeof alpath, "%s/%s", m->cfg->data_dir, AUTHLIMIT_FILE);
	if (authlimit_init(&alc, 0, alpath) < 0)
		fatal(1, "cannot create the authentication limiter table %s: %s", alpath,
		      strerror(errno));
	/* The shared counters, likewise inherited by every child. */
	char mpath[4096];
	snprintf(mpath, sizeof mpath, "%s/%s", m->cfg->data_dir, METRICS_FILE);
	if (metrics_init(mpath, TERN_VERSION) < 0)
		fatal(1, "cannot create the metrics table %s: %s", mpath, strerror(errno));
	give_to_user(m->cfg, mpath);
	for (size_t i = 0; i < m->n_workers; i++)
		start_worker(m, i);

	event_base_dispatch(m->base);

	for (size_t i = 0; i < m->n_workers; i++)
		close_slot(&m->workers[i]);
	free_master_events(m);
	event_base_free(m->base);
	close_listeners(m);
	log_info("master action=stopped");
	tls_bundle_free(&m->tls);
	config_free(&m->cfg);
	return 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
	const char *cfg_path = NULL;
	cli_set_program(argc > 0 ? argv[0] : NULL);
	int i = 1;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-c")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "tern: -c needs a FILE\n");
				return 2;
			}
			cfg_path = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cli_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("tern %s\n", TERN_VERSION);
			return 0;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "tern: unknown option \"%s\"\n", argv[i]);
			cli_usage(stderr);
			return 2;
		} else {
			break;
		}
	}
	if (i >= argc) {
		cli_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "serve"))
		return serve_main(cfg_path, argc - i, argv + i);
	/* Sub-commands that open the store switch to the configured user
	 * themselves (cli_open_store), so files have one owner. */
	return cli_run(cfg_path, argc - i, argv + i);
}
