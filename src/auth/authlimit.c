/*
 * authlimit.c - the brute-force limiter's shared table (see authlimit.h).
 *
 * Part of src/auth; depends on src/lib (log) and libcrypto (HMAC for the
 * keys, random bytes).  The master maps one shared region before it
 * forks; every worker inherits the mapping, so counting is one locked
 * read-modify-write on memory all processes see.  The region is a file in
 * the data folder when the master gives a path, so the CLI can map it too.
 * The lock is a robust process-shared mutex: a process that dies holding
 * it (crash, SIGKILL) does not wedge the others; the next locker marks it
 * consistent and goes on (the worst case is one half-updated counter).
 *
 * If locking fails for any other reason the limiter fails open (allows,
 * counts nothing) and logs: authentication itself must keep working.
 */
#include "authlimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fsutil.h"
#include "log.h"

#define WAYS 8
/* How long a success marks an IP as known for an account. */
#define KNOWN_MS (30ull * 24 * 3600 * 1000)
/* Longest account name hashed (longer ones are cut: still one key). */
#define ACCOUNT_MAX 255
/* Pending slots untouched this long belong to a process that died. */
#define PENDING_STALE_MS (120ull * 1000)
/* A prefix may hold this many times the per-address pending bound. */
#define PREFIX_PENDING_FACTOR 4
/* The per-account bound while the account is under attack. */
#define ACCOUNT_PENDING_ATTACKED 2
#define TABLE_MAGIC 0x32306c616e726574ull /* "ternal02" */

enum kind {
	K_IP = 1,
	K_ACCOUNT = 2,
	K_PAIR = 3,
	K_PREFIX = 4,
	K_CONN = 5,     /* port 25: open connections (pending) of an address */
	K_CONN_MIN = 6, /* connections in the minute (fails, first_ms) */
	K_MSG_HOUR = 7, /* transactions in the hour (fails, first_ms) */
};
/* Open-connection slots untouched this long belong to a process that died
 * (a live SMTP session idles at most minutes; DATA is bounded too). */
#define CONN_STALE_MS (3600ull * 1000)

struct entry {
	uint64_t key;           /* 0: free */
	uint64_t first_ms;      /* first failure counted in this window */
	uint64_t last_ms;       /* last use, for eviction */
	uint64_t blocked_until; /* ms; 0 if not blocked */
	uint64_t success_ms;    /* K_PAIR: last success */
	uint64_t pending_ms;    /* last change of pending */
	uint32_t fails;
	uint32_t kind;
	uint32_t pending; /* checks in flight */
	uint32_t pad;
};

struct table {
	uint64_t magic;
	uint64_t size; /* bytes mapped */
	pthread_mutex_t lock;
	struct authlimit_config cfg;
	unsigned char secret[32];
	/* n_buckets for the authentication counters, then as many for the
	 * port 25 rates: a flood of new SMTP clients cannot evict the
	 * failure counts of an attacker */
	size_t n_buckets;
	struct entry e[];
};

static struct table *tab;
static size_t tab_size;
static uint64_t (*clock_fn)(void);

static uint64_t real_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The clock is read under the table's lock: a time read before waiting
 * for the lock can be older than one another process stored meanwhile. */
static uint64_t now_ms(void)
{
	return clock_fn != NULL ? clock_fn() : real_now_ms();
}

/* How long ago then was, 0 if it is not in the past (the wall clock can
 * step back; an unsigned difference would wrap and make a live count
 * look stale). */
static uint64_t age_ms(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

void authlimit_set_clock(uint64_t (*fn)(void))
{
	clock_fn = fn;
}

/* Config values are at most UINT32_MAX (config.c checks). */
void authlimit_config_from(const struct config *c, struct authlimit_config *out)
{
	out->fail_delay_ms = (unsigned)c->auth_fail_delay_ms;
	out->fail_delay_max_ms = (unsigned)c->auth_fail_delay_max_ms;
	out->block_after = (unsigned)c->auth_block_after;
	out->window_s = (unsigned)c->auth_block_window;
	out->block_time_s = (unsigned)c->auth_block_time;
	out->prefix_v4 = (unsigned)c->auth_prefix_v4;
	out->prefix_v6 = (unsigned)c->auth_prefix_v6;
	out->prefix_block_after = (unsigned)c->auth_prefix_block_after;
	out->max_pending_ip = (unsigned)c->auth_max_pending_per_ip;
	out->max_pending_account = (unsigned)c->auth_max_pending_per_account;
}

int authlimit_init(const struct authlimit_config *cfg, size_t entries, const char *path)
{
	if (tab != NULL)
		authlimit_shutdown();
	if (entries == 0)
		entries = AUTHLIMIT_DEFAULT_ENTRIES;
	size_t nb = (entries + WAYS - 1) / WAYS;
	if (nb > (SIZE_MAX - sizeof(struct table)) / (2 * WAYS * sizeof(struct entry))) {
		errno = ENOMEM;
		return -1;
	}
	size_t size = sizeof(struct table) + 2 * nb * WAYS * sizeof(struct entry);
	void *p = fsutil_map_new(path, size);
	if (p == MAP_FAILED)
		return -1;
	struct table *t = p; /* zero-filled */
	pthread_mutexattr_t attr;
	int e = pthread_mutexattr_init(&attr);
	if (e == 0)
		e = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (e == 0)
		e = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (e == 0)
		e = pthread_mutex_init(&t->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (e == 0 && RAND_bytes(t->secret, sizeof t->secret) != 1)
		e = EIO;
	if (e != 0) {
		munmap(p, size);
		if (path != NULL)
			unlink(path);
		errno = e;
		return -1;
	}
	t->cfg = *cfg;
	t->n_buckets = nb;
	t->size = size;
	__atomic_store_n(&t->magic, TABLE_MAGIC, __ATOMIC_RELEASE);
	tab = t;
	tab_size = size;
	return 0;
}

int authlimit_attach(const char *path)
{
	if (tab != NULL)
		authlimit_shutdown();
	size_t size;
	void *p = fsutil_map_existing(path, true, sizeof(struct table), &size);
	if (p == MAP_FAILED)
		return -1;
	struct table *t = p;
	if (__atomic_load_n(&t->magic, __ATOMIC_ACQUIRE) != TABLE_MAGIC || t->size != size ||
	    t->n_buckets == 0 ||
	    t->n_buckets > (size - sizeof(struct table)) / (2 * WAYS * sizeof(struct entry))) {
		munmap(p, size);
		errno = EINVAL;
		return -1;
	}
	tab = t;
	tab_size = size;
	return 0;
}

void authlimit_shutdown(void)
{
	if (tab == NULL)
		return;
	munmap(tab, tab_size);
	tab = NULL;
	tab_size = 0;
}

static bool lock(void)
{
	int e = pthread_mutex_lock(&tab->lock);
	if (e == EOWNERDEAD) {
		/* Its holder died mid-update: the table is still usable. */
		pthread_mutex_consistent(&tab->lock);
		log_warn("action=authlimit_recover reason=\"lock holder died\"");
		return true;
	}
	if (e != 0) {
		log_error("action=authlimit_lock error=\"%s\"", strerror(e));
		return false;
	}
	return true;
}

static void unlock(void)
{
	pthread_mutex_unlock(&tab->lock);
}

void authlimit_configure(const struct authlimit_config *cfg)
{
	if (tab == NULL || !lock())
		return;
	tab->cfg = *cfg;
	unlock();
}

/* ------------------------------------------------------------- keys */

/* The address bytes of sa (family tag, then 4 or 16 bytes; IPv4-mapped
 * IPv6 is IPv4), cut to the first bits bits (all if bits is 0 or more
 * than the address has). */
static size_t ip_bytes(const struct sockaddr *sa, unsigned bits4, unsigned bits6,
		       unsigned char out[18])
{
	const unsigned char *a;
	size_t len;
	unsigned bits;
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)
			->sin_addr;
		len = 4;
		bits = bits4;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		a = in6->sin6_addr.s6_addr;
		len = 16;
		bits = bits6;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			a += 12;
			len = 4;
			bits = bits4;
		}
	} else {
		return 0;
	}
	if (bits == 0 || bits > len * 8)
		bits = (unsigned)(len * 8);
	out[0] = len == 4 ? 4 : 6;
	out[1] = (unsigned char)bits;
	memset(out + 2, 0, 16);
	size_t whole = bits / 8;
	memcpy(out + 2, a, whole);
	if (bits % 8)
		out[2 + whole] = (unsigned char)(a[whole] & (0xff << (8 - bits % 8)));
	return 2 + len;
}

/* The account lower-cased (ASCII), cut at ACCOUNT_MAX. */
static size_t account_bytes(const char *account, unsigned char out[ACCOUNT_MAX])
{
	size_t n = 0;
	if (account == NULL)
		return 0;
	for (; account[n] != '\0' && n < ACCOUNT_MAX; n++) {
		unsigned char c = (unsigned char)account[n];
		out[n] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
	}
	return n;
}

static uint64_t make_key(enum kind k, const unsigned char *a, size_t alen, const unsigned char *b,
			 size_t blen)
{
	unsigned char msg[1 + 18 + 1 + ACCOUNT_MAX];
	size_t n = 0;
	msg[n++] = (unsigned char)k;
	if (alen > 0)
		memcpy(msg + n, a, alen);
	n += alen;
	msg[n++] = 0;
	if (blen > 0)
		memcpy(msg + n, b, blen);
	n += blen;
	unsigned char mac[32];
	unsigned int len = sizeof mac;
	if (HMAC(EVP_sha256(), tab->secret, sizeof tab->secret, msg, n, mac, &len) == NULL)
		return 0;
	uint64_t key;
	memcpy(&key, mac, sizeof key);
	return key != 0 ? key : 1;
}

/* The entry for key (created if create, evicting the least recently used
 * of its bucket), or NULL. */
static struct entry *find(uint64_t key, enum kind k, bool create, uint64_t now)
{
	if (key == 0)
		return NULL;
	size_t first = k >= K_CONN ? tab->n_buckets : 0; /* the rates' half */
	struct entry *b = &tab->e[(first + (key >> 8) % tab->n_buckets) * WAYS];
	struct entry *victim = NULL;
	for (size_t i = 0; i < WAYS; i++) {
		if (b[i].key == key)
			return &b[i];
		if (victim == NULL || b[i].key == 0 ||
		    (victim->key != 0 && b[i].last_ms < victim->last_ms))
			victim = &b[i];
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof *victim);
	victim->key = key;
	victim->kind = (uint32_t)k;
	victim->last_ms = now;
	return victim;
}

/* Failures of e still inside the window. */
static uint32_t live_fails(const struct entry *e, uint64_t now)
{
	if (e == NULL || e->fails == 0)
		return 0;
	if (age_ms(now, e->first_ms) > (uint64_t)tab->cfg.window_s * 1000)
		return 0;
	return e->fails;
}

/* Checks in flight on e (stale ones forgotten). */
static uint32_t live_pending(struct entry *e, uint64_t now)
{
	if (e == NULL)
		return 0;
	if (e->pending != 0 && age_ms(now, e->pending_ms) > PENDING_STALE_MS)
		e->pending = 0;
	return e->pending;
}

static bool is_blocked(const struct entry *e, uint64_t now)
{
	return e != NULL && e->blocked_until > now;
}

static bool known_pair(const struct entry *pair, uint64_t now)
{
	return pair != NULL && pair->success_ms != 0 && age_ms(now, pair->success_ms) < KNOWN_MS;
}

static unsigned delay_for(uint32_t fails)
{
	const struct authlimit_config *c = &tab->cfg;
	if (fails == 0 || c->fail_delay_ms == 0)
		return 0;
	uint64_t d = c->fail_delay_ms;
	for (uint32_t i = 1; i < fails && d < c->fail_delay_max_ms; i++)
		d *= 2;
	if (d > c->fail_delay_max_ms)
		d = c->fail_delay_max_ms;
	return (unsigned)d;
}

/* The four keys for (ip, account); 0 where not applicable. */
struct keys {
	uint64_t ip, prefix, account, pair;
};

static void keys_of(const struct sockaddr *ip, const char *account, struct keys *k)
{
	unsigned char ib[18], pb[18], ab[ACCOUNT_MAX];
	size_t il = ip_bytes(ip, 0, 0, ib);
	size_t pl = ip_bytes(ip, tab->cfg.prefix_v4, tab->cfg.prefix_v6, pb);
	size_t al = account_bytes(account, ab);
	k->ip = il ? make_key(K_IP, ib, il, NULL, 0) : 0;
	k->prefix = pl ? make_key(K_PREFIX, pb, pl, NULL, 0) : 0;
	k->account = al ? make_key(K_ACCOUNT, ab, al, NULL, 0) : 0;
	k->pair = il && al ? make_key(K_PAIR, ib, il, ab, al) : 0;
}

/* The entries of k, found (not made) under the lock. */
struct entries {
	struct entry *ip, *prefix, *account, *pair;
};

static void entries_of(const struct keys *k, bool create, uint64_t now, struct entries *e)
{
	e->ip = find(k->ip, K_IP, create, now);
	e->prefix = find(k->prefix, K_PREFIX, create, now);
	e->account = find(k->account, K_ACCOUNT, create, now);
	e->pair = find(k->pair, K_PAIR, create, now);
}

/* Takes the lock and finds (or, if create, makes) the entries of (ip,
 * account); *now gets the time.  False (nothing held) if the lock failed. */
static bool lock_entries(const struct sockaddr *ip, const char *account, bool create, uint64_t *now,
			 struct entries *e)
{
	struct keys k;
	keys_of(ip, account, &k);
	if (!lock())
		return false;
	*now = now_ms();
	entries_of(&k, create, *now, e);
	return true;
}

/* Under the lock: the end of a block of the address or prefix, or 0. */
static uint64_t block_end(const struct entries *e, uint64_t now)
{
	uint64_t until = 0;
	if (is_blocked(e->ip, now))
		until = e->ip->blocked_until;
	if (is_blocked(e->prefix, now) && e->prefix->blocked_until > until)
		until = e->prefix->blocked_until;
	return until;
}

/* Under the lock: the delay for an answer to (ip, account). */
static unsigned delay_of(const struct entries *e, uint64_t now)
{
	uint32_t fails = live_fails(e->ip, now);
	uint32_t pf = live_fails(e->pair, now);
	if (pf > fails)
		fails = pf;
	if (!known_pair(e->pair, now)) {
		uint32_t af = live_fails(e->account, now);
		if (af > fails)
			fails = af;
	}
	return delay_for(fails);
}

/* --------------------------------------------------------------- API */

void authlimit_check(const struct sockaddr *ip, const char *account, struct authlimit_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (tab == NULL)
		return;
	uint64_t now;
	struct entries e;
	if (!lock_entries(ip, account, false, &now, &e))
		return;
	uint64_t until = block_end(&e, now);
	v->delay_ms = delay_of(&e, now);
	unlock();
	if (until != 0) {
		v->blocked = true;
		v->blocked_until = (int64_t)(until / 1000);
	}
}

/* Counts one failure on e (block_after: failures that start a block, 0
 * never).  Sets *count to the failures counted in the window, this one
 * included, and returns true if this failure starts a block. */
static bool count_fail(struct entry *e, unsigned block_after, uint64_t now, uint32_t *count)
{
	*count = 0;
	if (e == NULL)
		return false;
	if (live_fails(e, now) == 0) {
		e->fails = 0;
		e->first_ms = now;
	}
	if (e->fails < UINT32_MAX)
		e->fails++;
	e->last_ms = now;
	*count = e->fails;
	if (block_after != 0 && e->fails >= block_after && !is_blocked(e, now)) {
		e->blocked_until = now + (uint64_t)tab->cfg.block_time_s * 1000;
		/* The block starts a new count: when it ends, the address
		 * gets block_after more tries, not one. */
		e->fails = 0;
		return true;
	}
	return false;
}

static void ip_text(const struct sockaddr *sa, char *out, size_t outsz)
{
	const void *a = NULL;
	if (sa != NULL && sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa != NULL && sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, out, (socklen_t)outsz) == NULL)
		snprintf(out, outsz, "-");
}

/* What a failure did, for the log lines written after the lock. */
struct fail_note {
	uint32_t ip_fails, account_fails;
	bool ip_block, prefix_block;
};

/* Under the lock: counts a failure of the address and its prefix (and, if
 * checked, of the account and the pair). */
static void count_failure(struct entries *e, bool checked, uint64_t now, struct fail_note *n)
{
	uint32_t unused;
	n->ip_block = count_fail(e->ip, tab->cfg.block_after, now, &n->ip_fails);
	/* block_after 0 turns every block off, the prefix's too */
	n->prefix_block = count_fail(
	    e->prefix, tab->cfg.block_after ? tab->cfg.prefix_block_after : 0, now, &unused);
	n->account_fails = 0;
	if (checked) {
		/* Accounts and pairs never block: the owner must still get in
		 * from a new place; their failures only slow them down. */
		(void)count_fail(e->account, 0, now, &n->account_fails);
		(void)count_fail(e->pair, 0, now, &unused);
	}
}

static void log_failure(const struct sockaddr *ip, const char *account, const struct fail_note *n,
			const char *what)
{
	char ipt[INET6_ADDRSTRLEN], acct[128];
	ip_text(ip, ipt, sizeof ipt);
	log_escape(acct, sizeof acct, account != NULL && account[0] ? account : "-",
		   account != NULL && account[0] ? strlen(account) : 1);
	log_info("action=%s ip=%s account=%s ip_fails=%u account_fails=%u", what, ipt, acct,
		 n->ip_fails, n->account_fails);
	unsigned long long secs = tab != NULL ? tab->cfg.block_time_s : 0;
	if (n->ip_block)
		log_warn("action=auth_block scope=ip ip=%s account=%s seconds=%llu", ipt, acct,
			 secs);
	if (n->prefix_block)
		log_warn("action=auth_block scope=prefix ip=%s prefix=/%u account=%s seconds=%llu",
			 ipt,
			 ip != NULL && ip->sa_family == AF_INET6 ? tab->cfg.prefix_v6
								 : tab->cfg.prefix_v4,
			 acct, secs);
}

static void pending_add(struct entry *e, uint64_t now, uint64_t *key)
{
	*key = 0;
	if (e == NULL)
		return;
	(void)live_pending(e, now);
	if (e->pending < UINT32_MAX)
		e->pending++;
	e->pending_ms = now;
	e->last_ms = now;
	*key = e->key;
}

enum authlimit_gate authlimit_begin(const struct sockaddr *ip, const char *account,
				    struct authlimit_ticket *t, struct authlimit_verdict *v)
{
	memset(t, 0, sizeof *t);
	memset(v, 0, sizeof *v);
	if (tab == NULL)
		return AUTHLIMIT_GO;
	uint64_t now;
	struct entries e;
	if (!lock_entries(ip, account, true, &now, &e))
		return AUTHLIMIT_GO;
	const struct authlimit_config *c = &tab->cfg;
	enum authlimit_gate g = AUTHLIMIT_GO;
	uint64_t until = block_end(&e, now);
	uint32_t ip_pending = live_pending(e.ip, now);
	uint32_t prefix_pending = live_pending(e.prefix, now);
	bool known = known_pair(e.pair, now);
	uint32_t acct_pending = known ? 0 : live_pending(e.account, now);
	unsigned acct_bound = c->max_pending_account;
	if (acct_bound > ACCOUNT_PENDING_ATTACKED && c->block_after != 0 &&
	    live_fails(e.account, now) >= c->block_after)
		acct_bound = ACCOUNT_PENDING_ATTACKED;
	struct fail_note note = {0};
	if (until != 0) {
		g = AUTHLIMIT_BLOCKED;
		v->blocked = true;
		v->blocked_until = (int64_t)(until / 1000);
	} else if ((c->max_pending_ip != 0 &&
		    (ip_pending >= c->max_pending_ip ||
		     prefix_pending >= PREFIX_PENDING_FACTOR * c->max_pending_ip)) ||
		   (c->block_after != 0 &&
		    (uint64_t)ip_pending + live_fails(e.ip, now) >= c->block_after)) {
		g = AUTHLIMIT_REFUSE;
		count_failure(&e, false, now, &note);
		v->delay_ms = delay_of(&e, now);
	} else if (!known && acct_bound != 0 && acct_pending >= acct_bound) {
		g = AUTHLIMIT_BUSY;
	} else {
		pending_add(e.ip, now, &t->ip);
		pending_add(e.prefix, now, &t->prefix);
		if (!known)
			pending_add(e.account, now, &t->account);
	}
	unlock();
	if (g == AUTHLIMIT_REFUSE)
		log_failure(ip, account, &note, "auth_refused");
	return g;
}

void authlimit_end(struct authlimit_ticket *t)
{
	if (tab == NULL || (t->ip == 0 && t->prefix == 0 && t->account == 0)) {
		memset(t, 0, sizeof *t);
		return;
	}
	if (lock()) {
		uint64_t now = now_ms();
		uint64_t keys[3] = {t->ip, t->prefix, t->account};
		for (size_t i = 0; i < 3; i++) {
			/* evicted meanwhile: nothing to release */
			struct entry *e = find(keys[i], K_IP, false, now);
			if (e != NULL && e->pending > 0) {
				e->pending--;
				e->pending_ms = now;
			}
		}
		unlock();
	}
	memset(t, 0, sizeof *t);
}

void authlimit_fail(const struct sockaddr *ip, const char *account)
{
	struct fail_note note = {0};
	if (tab != NULL) {
		uint64_t now;
		struct entries e;
		if (!lock_entries(ip, account, true, &now, &e))
			return;
		count_failure(&e, true, now, &note);
		unlock();
	}
	log_failure(ip, account, &note, "auth_fail");
}

void authlimit_success(const struct sockaddr *ip, const char *account)
{
	if (tab == NULL)
		return;
	struct keys k;
	keys_of(ip, account, &k);
	if (!lock())
		return;
	uint64_t now = now_ms();
	struct entry *pe = find(k.pair, K_PAIR, true, now);
	if (pe != NULL) {
		pe->fails = 0;
		pe->success_ms = now;
		pe->last_ms = now;
	}
	unlock();
}

void authlimit_result(const struct sockaddr *ip, const char *account, bool ok,
		      struct authlimit_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (ok) {
		authlimit_success(ip, account);
		return;
	}
	authlimit_fail(ip, account);
	authlimit_check(ip, account, v);
	v->blocked = false; /* the answer is a failure, not a block */
}

/* ----------------------------------------- port 25 connection rates */

/* The entry of kind k for the whole address ip, made if missing. */
static struct entry *ip_entry(const struct sockaddr *ip, enum kind k, uint64_t now)
{
	unsigned char ib[18];
	size_t il = ip_bytes(ip, 0, 0, ib);
	return il ? find(make_key(k, ib, il, NULL, 0), k, true, now) : NULL;
}

/* Counts one on e's fixed window of window_ms (it starts at its first
 * count) if fewer than limit are counted there (limit 0: always); returns
 * whether it was counted.  *count gets the window's count. */
static bool window_add(struct entry *e, uint64_t window_ms, unsigned limit, uint64_t now,
		       uint32_t *count)
{
	if (e->fails != 0 && age_ms(now, e->first_ms) > window_ms)
		e->fails = 0;
	if (e->fails == 0)
		e->first_ms = now;
	e->last_ms = now;
	bool ok = limit == 0 || e->fails < limit;
	if (ok && e->fails < UINT32_MAX)
		e->fails++;
	*count = e->fails;
	return ok;
}

enum authlimit_conn_gate authlimit_conn_open(const struct sockaddr *ip, unsigned max_open,
					     unsigned per_minute, uint64_t *slot, uint32_t *count)
{
	*slot = 0;
	*count = 0;
	if (tab == NULL || (max_open == 0 && per_minute == 0))
		return AUTHLIMIT_CONN_OK;
	if (!lock())
		return AUTHLIMIT_CONN_OK;
	uint64_t now = now_ms();
	enum authlimit_conn_gate g = AUTHLIMIT_CONN_OK;
	struct entry *rate = per_minute ? ip_entry(ip, K_CONN_MIN, now) : NULL;
	struct entry *open = ip_entry(ip, K_CONN, now);
	uint32_t n = 0;
	/* A refused connection counts in the minute too (limit 0: always). */
	if (rate != NULL)
		(void)window_add(rate, 60 * 1000, 0, now, &n);
	if (rate != NULL && n > per_minute) {
		g = AUTHLIMIT_CONN_TOO_FAST;
		*count = n;
	} else if (open != NULL) {
		if (open->pending != 0 && age_ms(now, open->pending_ms) > CONN_STALE_MS)
			open->pending = 0;
		if (max_open != 0 && open->pending >= max_open) {
			g = AUTHLIMIT_CONN_TOO_MANY;
			*count = open->pending;
		} else {
			/* not pending_add: its two-minute staleness is for
			 * password checks, not for connections */
			open->pending += open->pending < UINT32_MAX;
			open->pending_ms = now;
			open->last_ms = now;
			*slot = open->key;
			*count = open->pending;
		}
	}
	unlock();
	return g;
}

void authlimit_conn_close(uint64_t *slot)
{
	if (tab != NULL && *slot != 0) {
		if (lock()) {
			uint64_t now = now_ms();
			struct entry *e = find(*slot, K_CONN, false, now);
			if (e != NULL && e->pending > 0) {
				e->pending--;
				e->pending_ms = now;
			}
			unlock();
		}
	}
	*slot = 0;
}

bool authlimit_message(const struct sockaddr *ip, unsigned per_hour, uint32_t *count)
{
	*count = 0;
	if (tab == NULL || per_hour == 0)
		return true;
	if (!lock())
		return true;
	uint64_t now = now_ms();
	struct entry *e = ip_entry(ip, K_MSG_HOUR, now);
	bool ok = e == NULL || window_add(e, 3600 * 1000, per_hour, now, count);
	unlock();
	return ok;
}

/* ------------------------------------------------------------ admin */

static void state_of(const struct entry *e, uint64_t now, struct authlimit_state *out, bool prefix)
{
	if (e == NULL)
		return;
	uint32_t fails = live_fails(e, now);
	int64_t until = is_blocked(e, now) ? (int64_t)(e->blocked_until / 1000) : 0;
	if (prefix) {
		out->prefix_found = true;
		out->prefix_fails = fails;
		out->prefix_blocked_until = until;
	} else {
		out->found = true;
		out->fails = fails;
		out->blocked_until = until;
		out->pending = e->pending;
	}
}

/* Looks up (and if clear, resets) ip's entries or the account's. */
static int admin(const struct sockaddr *ip, const char *account, bool clear,
		 struct authlimit_state *out)
{
	memset(out, 0, sizeof *out);
	if (tab == NULL)
		return -1;
	struct keys k;
	keys_of(ip, ip != NULL ? NULL : account, &k);
	if (!lock())
		return -1;
	uint64_t now = now_ms();
	struct entry *main_e =
	    ip != NULL ? find(k.ip, K_IP, false, now) : find(k.account, K_ACCOUNT, false, now);
	struct entry *prefix_e = ip != NULL ? find(k.prefix, K_PREFIX, false, now) : NULL;
	state_of(main_e, now, out, false);
	state_of(prefix_e, now, out, true);
	if (clear) {
		struct entry *es[2] = {main_e, prefix_e};
		for (size_t i = 0; i < 2; i++)
			if (es[i] != NULL) {
				es[i]->fails = 0;
				es[i]->blocked_until = 0;
			}
	}
	unlock();
	return 0;
}

int authlimit_inspect(const struct sockaddr *ip, const char *account, struct authlimit_state *out)
{
	return admin(ip, account, false, out);
}

int authlimit_unblock(const struct sockaddr *ip, const char *account, struct authlimit_state *out)
{
	return admin(ip, account, true, out);
}
