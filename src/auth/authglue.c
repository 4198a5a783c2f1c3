/*
 * authglue.c - SASL exchanges on the event loop: store lookup, the
 * brute-force limiter, delays as timers and password checks on threads
 * (see authglue.h).
 *
 * Layers: a small library of its own above src/auth and src/store (so the
 * pure SASL and limiter code stays free of the store and of libevent);
 * protocol sessions (src/smtp, src/pop3) link it.
 *
 * The thread pool is per process and starts on the first password check,
 * so it exists only in workers (threads do not survive fork, and the
 * master never checks passwords).  Jobs go through a mutex-protected list;
 * a finished job is put on a done list and an eventfd wakes the loop,
 * which continues the exchange there.  An exchange freed while its job is
 * on a thread is marked cancelled and freed when the job comes back.
 */
#include "authglue.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "apppass.h"
#include "authlimit.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "xalloc.h"

#define POOL_THREADS 2
/* last_used of an app password is written at most this often. */
#define APPPASS_TOUCH_SECONDS 60

enum busy {
	BUSY_NONE,   /* waiting for the session (after CHALLENGE) or finished */
	BUSY_TIMER,  /* an outcome is waiting for the timer (deferral or delay) */
	BUSY_THREAD, /* sasl_server_verify is running on a pool thread */
};

struct authglue {
	struct event_base *base;
	struct store *store;
	struct sasl_server *sasl;
	struct sockaddr_storage client;
	bool has_client;
	char ip[64];
	char proto[16]; /* "managesieve" fits */
	char session[32];
	authglue_cb cb;
	void *cb_ctx;
	struct event *timer;
	enum busy busy;
	bool cancelled;                 /* freed by the session while on a thread */
	bool user_checked;              /* the limiter has seen the username */
	struct authlimit_ticket ticket; /* a credential check in flight */
	int64_t account_id;
	char app_id[8];             /* the app password looked up, "" if none */
	int64_t app_last_used;      /* its last_used as read */
	unsigned char tag_main[32]; /* SHA-256 of the main password's hash */
	unsigned char tag_app[32];  /* ... of the app password's looked up */
	struct authglue_result res; /* the outcome the timer delivers */
	enum sasl_status verified;  /* the pool's answer */
	struct authglue *next;      /* pool lists */
};

/* The checks waiting for a thread, one lane per client address: the
 * threads serve the lanes in turn (one check each, round robin), so that
 * one address with many checks waiting delays another's by about one
 * check, not by all of its own. */
struct lane {
	char ip[64];
	struct authglue *head, *tail;
	struct lane *next;
};

static struct {
	bool started;
	bool failed; /* threads could not be made: check inline */
	pid_t pid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct lane *lanes, *lanes_tail; /* lanes with checks waiting */
	struct authglue *done;
	int efd;
	struct event *ev;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .efd = -1};

static void advance(struct authglue *x, enum sasl_status st);

/* ------------------------------------------------------------ the pool */

static void *pool_thread(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pool.mu);
		while (pool.lanes == NULL)
			pthread_cond_wait(&pool.cv, &pool.mu);
		/* The first check of the first lane; the lane goes to the end
		 * of the line if it has more. */
		struct lane *l = pool.lanes;
		pool.lanes = l->next;
		if (pool.lanes == NULL)
			pool.lanes_tail = NULL;
		struct authglue *x = l->head;
		l->head = x->next;
		x->next = NULL;
		if (l->head == NULL) {
			free(l);
		} else {
			l->next = NULL;
			if (pool.lanes_tail)
				pool.lanes_tail->next = l;
			else
				pool.lanes = l;
			pool.lanes_tail = l;
		}
		pthread_mutex_unlock(&pool.mu);

		/* x->sasl belongs to this thread until the job is on the done
		 * list: the loop touches only x->cancelled meanwhile. */
		enum sasl_status st = sasl_server_verify(x->sasl);

		pthread_mutex_lock(&pool.mu);
		x->verified = st;
		x->next = pool.done;
		pool.done = x;
		pthread_mutex_unlock(&pool.mu);
		uint64_t one = 1;
		(void)!write(pool.efd, &one, sizeof one);
	}
	return NULL;
}

/* Back on the loop: finished checks continue their exchanges. */
static void pool_done_cb(evutil_socket_t fd, short what, void *ctx)
{
	uint64_t n;
	(void)!read(fd, &n, sizeof n);
	pthread_mutex_lock(&pool.mu);
	struct authglue *list = pool.done;
	pool.done = NULL;
	pthread_mutex_unlock(&pool.mu);
	while (list != NULL) {
		struct authglue *x = list;
		list = x->next;
		x->next = NULL;
		x->busy = BUSY_NONE;
		if (x->cancelled) {
			struct authglue *y = x;
			y->cancelled = false;
			authglue_free(&y);
			continue;
		}
		advance(x, x->verified);
	}
}

/* Starts the threads on first use.  Returns false if checks must run
 * inline. */
static bool pool_ready(struct event_base *base)
{
	if (pool.started && pool.pid == getpid())
		return true;
	if (pool.failed && pool.pid == getpid())
		return false;
	pool.pid = getpid();
	pool.started = false;
	pool.failed = true;
	pool.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool.efd < 0) {
		log_error("auth action=pool error=\"eventfd: %s\" note=\"checking passwords on "
			  "the event loop\"",
			  strerror(errno));
		return false;
	}
	pool.ev = event_new(base, pool.efd, EV_READ | EV_PERSIST, pool_done_cb, NULL);
	if (pool.ev == NULL || event_add(pool.ev, NULL) < 0) {
		log_error("auth action=pool error=\"cannot make the event\"");
		return false;
	}
	/* The threads take no signals: libevent's handlers run on the loop. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int made = 0;
	for (int i = 0; i < POOL_THREADS; i++) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, pool_thread, NULL) == 0)
			made++;
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (made == 0) {
		log_error("auth action=pool error=\"cannot start threads\" note=\"checking "
			  "passwords on the event loop\"");
		return false;
	}
	pool.failed = false;
	pool.started = true;
	return true;
}

static void pool_submit(struct authglue *x)
{
	x->busy = BUSY_THREAD;
	x->next = NULL;
	pthread_mutex_lock(&pool.mu);
	/* Linear: the per-address bound on checks in flight (authlimit)
	 * keeps the lanes short, and a check costs far more than this. */
	struct lane *l = pool.lanes;
	while (l != NULL && strcmp(l->ip, x->ip) != 0)
		l = l->next;
	if (l == NULL) {
		l = xcalloc(1, sizeof *l);
		snprintf(l->ip, sizeof l->ip, "%s", x->ip);
		if (pool.lanes_tail)
			pool.lanes_tail->next = l;
		else
			pool.lanes = l;
		pool.lanes_tail = l;
	}
	if (l->tail)
		l->tail->next = x;
	else
		l->head = x;
	l->tail = x;
	pthread_cond_signal(&pool.cv);
	pthread_mutex_unlock(&pool.mu);
}

/* ------------------------------------------------------------ exchange */

void authglue_cred_tag(const char *pwhash, unsigned char out[32])
{
	unsigned len = 0;
	if (!EVP_Digest(pwhash, strlen(pwhash), out, &len, EVP_sha256(), NULL))
		memset(out, 0, 32); /* all zero: callers cache no such login */
}

static int lookup_cb(void *ctx, const char *user, struct sasl_creds *out)
{
	struct authglue *x = ctx;
	struct store_account_info info;
	int r = store_account_get(x->store, user, &info);
	if (r != 1)
		return r < 0 ? -1 : 0;
	snprintf(out->address, sizeof out->address, "%s", info.address);
	snprintf(out->pwhash, sizeof out->pwhash, "%s", info.pwhash);
	snprintf(out->scram, sizeof out->scram, "%s", info.scram);
	x->account_id = info.id;
	authglue_cred_tag(info.pwhash, x->tag_main);
	explicit_bzero(&info, sizeof info);
	return 1;
}

static int app_lookup_cb(void *ctx, const char *address, const char *id,
			 struct sasl_app_creds *out)
{
	(void)address; /* the account is the one lookup_cb found */
	struct authglue *x = ctx;
	struct store_apppass row;
	int r = store_apppass_find(x->store, x->account_id, id, &row);
	if (r != 1)
		return r < 0 ? -1 : 0;
	snprintf(out->name, sizeof out->name, "%s", row.name);
	snprintf(out->pwhash, sizeof out->pwhash, "%s", row.pwhash);
	snprintf(x->app_id, sizeof x->app_id, "%s", row.id);
	x->app_last_used = row.last_used;
	authglue_cred_tag(row.pwhash, x->tag_app);
	explicit_bzero(&row, sizeof row);
	return 1;
}

void authglue_app_used(struct store *s, const char *proto, const char *session,
		       int64_t account_id, const char *app_id, int64_t last_used)
{
	/* last_used is written at most once per APPPASS_TOUCH_SECONDS (the
	 * value read at lookup says whether it is due), so a busy device does
	 * not write the database at each login. */
	int64_t now = (int64_t)time(NULL);
	if (app_id[0] == '\0' || now - last_used < APPPASS_TOUCH_SECONDS)
		return;
	char err[256];
	if (store_apppass_touch(s, account_id, app_id, now, err, sizeof err) < 0)
		log_warn("%s session=%s action=app_password_touch error=\"%s\"", proto, session,
			 err);
}

static const struct sockaddr *client(const struct authglue *x)
{
	return x->has_client ? (const struct sockaddr *)&x->client : NULL;
}

static void timer_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct authglue *x = ctx;
	x->busy = BUSY_NONE;
	struct authglue_result r = x->res;
	if (r.status == AUTHGLUE_CHALLENGE || r.status == AUTHGLUE_OK)
		r.data = sasl_server_data(x->sasl, &r.len);
	if (r.status != AUTHGLUE_CHALLENGE)
		authlimit_end(&x->ticket); /* answered: the check is over */
	/* the callback may free x: nothing touches it afterwards */
	x->cb(x->cb_ctx, &r);
}

/* Delivers res from the loop after delay_ms (0: next iteration). */
static void deliver(struct authglue *x, const struct authglue_result *res, unsigned delay_ms)
{
	x->res = *res;
	x->busy = BUSY_TIMER;
	struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
	evtimer_add(x->timer, &tv);
}

static void log_outcome(const struct authglue *x, const char *result, const char *reason)
{
	char u[128];
	const char *user = sasl_server_user(x->sasl);
	log_escape(u, sizeof u, user, strlen(user));
	/* Which app password, by name, when one was used. */
	const char *app = sasl_server_app_name(x->sasl);
	char e[APPPASS_NAME_MAX * 4 + 1];
	char a[sizeof e + 20] = "";
	if (app[0] != '\0') {
		log_escape(e, sizeof e, app, strlen(app));
		snprintf(a, sizeof a, " app_password=%s", e);
	}
	metrics_auth(x->proto, result);
	log_info("%s session=%s client=%s action=auth mech=%s user=%s result=%s%s%s%s", x->proto,
		 x->session, x->ip, sasl_mech_name(sasl_server_mech(x->sasl)), u[0] ? u : "-",
		 result, reason ? " reason=" : "", reason ? reason : "", a);
}

static void finish_blocked(struct authglue *x, const struct authlimit_verdict *v)
{
	log_outcome(x, "blocked", "brute_force_limit");
	struct authglue_result r = {
	    .status = AUTHGLUE_BLOCKED, .account = "", .blocked_until = v->blocked_until};
	deliver(x, &r, 0);
}

/* Before checking credentials: may they be checked now (authlimit.h)?
 * True with the pending slot held; false if the outcome is delivered. */
static bool gate(struct authglue *x)
{
	if (x->ticket.ip != 0 || x->ticket.prefix != 0 || x->ticket.account != 0)
		return true; /* this attempt holds its slot already */
	const char *user = sasl_server_user(x->sasl);
	struct authlimit_verdict v;
	struct authglue_result r = {.account = ""};
	switch (authlimit_begin(client(x), user[0] ? user : NULL, &x->ticket, &v)) {
	case AUTHLIMIT_GO:
		return true;
	case AUTHLIMIT_BLOCKED:
		finish_blocked(x, &v);
		return false;
	case AUTHLIMIT_REFUSE:
		/* answered exactly like a wrong password, nothing checked */
		log_outcome(x, "failed", "too_many_attempts");
		r.status = AUTHGLUE_FAIL;
		r.error = SASL_ERR_CREDENTIALS;
		deliver(x, &r, v.delay_ms);
		return false;
	case AUTHLIMIT_BUSY:
		log_outcome(x, "busy", "account_checks_in_flight");
		r.status = AUTHGLUE_BUSY;
		deliver(x, &r, 0);
		return false;
	}
	return true;
}

/* Failures that count against the limiter: anything the client could
 * have got right.  A server-side problem (database, no SCRAM keys) is
 * not the client's guess. */
static bool counts(enum sasl_error e)
{
	return e != SASL_ERR_TEMPORARY && e != SASL_ERR_UNAVAILABLE;
}

/* Continues the exchange after start, step or a password check. */
static void advance(struct authglue *x, enum sasl_status st)
{
	const char *user = sasl_server_user(x->sasl);
	if (!x->user_checked && user[0] != '\0' && st != SASL_FAIL) {
		/* the username is known: may it be tried from here? */
		x->user_checked = true;
		struct authlimit_verdict v;
		authlimit_check(client(x), user, &v);
		if (v.blocked) {
			finish_blocked(x, &v);
			return;
		}
	}
	struct authglue_result r = {.account = ""};
	switch (st) {
	case SASL_CONTINUE:
		r.status = AUTHGLUE_CHALLENGE;
		deliver(x, &r, 0);
		return;
	case SASL_VERIFY:
		if (!gate(x))
			return;
		if (pool_ready(x->base)) {
			pool_submit(x);
			return;
		}
		advance(x, sasl_server_verify(x->sasl));
		return;
	case SASL_OK:
		authlimit_success(client(x), sasl_server_account(x->sasl));
		log_outcome(x, "ok", NULL);
		if (sasl_server_app_name(x->sasl)[0] != '\0')
			authglue_app_used(x->store, x->proto, x->session, x->account_id,
					  x->app_id, x->app_last_used);
		r.status = AUTHGLUE_OK;
		r.account = sasl_server_account(x->sasl);
		r.app_password = sasl_server_app_name(x->sasl);
		r.account_id = x->account_id;
		r.app_id = r.app_password[0] != '\0' ? x->app_id : "";
		memcpy(r.cred_tag, r.app_password[0] != '\0' ? x->tag_app : x->tag_main,
		       sizeof r.cred_tag);
		deliver(x, &r, 0);
		return;
	case SASL_FAIL:
		break;
	}
	enum sasl_error e = sasl_server_error(x->sasl);
	r.status = AUTHGLUE_FAIL;
	r.error = e;
	unsigned delay = 0;
	log_outcome(x, "failed", sasl_error_name(e));
	if (counts(e)) {
		struct authlimit_verdict v;
		authlimit_result(client(x), user[0] ? user : NULL, false, &v);
		delay = v.delay_ms;
		log_info("%s session=%s client=%s action=auth_delay ms=%u", x->proto, x->session,
			 x->ip, delay);
	}
	deliver(x, &r, delay);
}

struct authglue *authglue_start(const struct authglue_params *p, const void *ir, size_t len)
{
	struct authglue *x = xcalloc(1, sizeof *x);
	x->base = p->base;
	x->store = p->store;
	x->cb = p->cb;
	x->cb_ctx = p->cb_ctx;
	snprintf(x->ip, sizeof x->ip, "%s", p->client_ip ? p->client_ip : "unknown");
	snprintf(x->proto, sizeof x->proto, "%s", p->proto ? p->proto : "auth");
	snprintf(x->session, sizeof x->session, "%s", p->session_id ? p->session_id : "-");
	if (p->client != NULL) {
		socklen_t sl = p->client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								: sizeof(struct sockaddr_in);
		memcpy(&x->client, p->client, sl);
		x->has_client = true;
	}
	x->timer = evtimer_new(p->base, timer_cb, x);
	if (x->timer == NULL)
		fatal(1, "cannot create event");
	struct sasl_params sp = {.lookup = lookup_cb, .app_lookup = app_lookup_cb, .lookup_ctx = x};
	for (size_t i = 0; i < p->n_cbind && i < SASL_MAX_CBIND; i++)
		sp.cbind[sp.n_cbind++] = p->cbind[i];
	x->sasl = sasl_server_new(p->mech, &sp);

	struct authlimit_verdict v;
	authlimit_check(client(x), NULL, &v);
	if (v.blocked) {
		finish_blocked(x, &v);
		return x;
	}
	advance(x, sasl_server_start(x->sasl, ir, len));
	return x;
}

void authglue_step(struct authglue *x, const void *resp, size_t len)
{
	if (x->busy != BUSY_NONE)
		return; /* a session bug: nothing was asked for */
	/* Once the username is known, a step may check a proof (SCRAM's
	 * client-final) or bring the password (LOGIN): it is an attempt. */
	if (x->user_checked && !gate(x))
		return;
	advance(x, sasl_server_step(x->sasl, resp, len));
}

const char *authglue_user(const struct authglue *x)
{
	return sasl_server_user(x->sasl);
}

void authglue_free(struct authglue **xp)
{
	struct authglue *x = *xp;
	if (x == NULL)
		return;
	*xp = NULL;
	if (x->busy == BUSY_THREAD) {
		x->cancelled = true; /* pool_done_cb frees it */
		return;
	}
	authlimit_end(&x->ticket);
	if (x->timer != NULL)
		event_free(x->timer);
	sasl_server_free(&x->sasl);
	explicit_bzero(x, sizeof *x);
	free(x);
}
