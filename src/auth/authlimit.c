/*
 * authlimit.c - the brute-force limiter's shared table (see authlimit.h).
 *
 * Part of src/auth; depends on src/lib (log) and libcrypto (HMAC for the
 * keys, random bytes).  The master maps one anonymous shared region
 * before it forks; every worker inherits the mapping, so counting is one
 * locked read-modify-write on memory all processes see.  The lock is a
 * robust process-shared mutex: a worker that dies holding it (crash,
 * SIGKILL) does not wedge the others; the next locker marks it consistent
 * and goes on (the worst case is one half-updated counter).
 *
 * If locking fails for any other reason the limiter fails open (allows,
 * counts nothing) and logs: authentication itself must keep working.
 */
#include "authlimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "config.h"
#include "log.h"

#define WAYS 8
/* How long a success marks an IP as known for an account. */
#define KNOWN_MS (30ull * 24 * 3600 * 1000)
/* Longest account name hashed (longer ones are cut: still one key). */
#define ACCOUNT_MAX 255

enum kind { K_IP = 1, K_ACCOUNT = 2, K_PAIR = 3 };

struct entry {
	uint64_t key;           /* 0: free */
	uint64_t first_ms;      /* first failure counted in this window */
	uint64_t last_ms;       /* last use, for eviction */
	uint64_t blocked_until; /* ms; 0 if not blocked */
	uint64_t success_ms;    /* K_PAIR: last success */
	uint32_t fails;
	uint32_t kind;
};

struct table {
	pthread_mutex_t lock;
	struct authlimit_config cfg;
	unsigned char secret[32];
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

static uint64_t now_ms(void)
{
	return clock_fn != NULL ? clock_fn() : real_now_ms();
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
}

int authlimit_init(const struct authlimit_config *cfg, size_t entries)
{
	if (tab != NULL)
		authlimit_shutdown();
	if (entries == 0)
		entries = AUTHLIMIT_DEFAULT_ENTRIES;
	size_t nb = (entries + WAYS - 1) / WAYS;
	if (nb > (SIZE_MAX - sizeof(struct table)) / (WAYS * sizeof(struct entry))) {
		errno = ENOMEM;
		return -1;
	}
	size_t size = sizeof(struct table) + nb * WAYS * sizeof(struct entry);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	struct table *t = p; /* zero-filled by mmap */
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
		errno = e;
		return -1;
	}
	t->cfg = *cfg;
	t->n_buckets = nb;
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

/* The bytes that name ip's counter: family and address (IPv6: the /64). */
static size_t ip_bytes(const struct sockaddr *sa, unsigned char out[17])
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		out[0] = 4;
		memcpy(out + 1, &in->sin_addr, 4);
		return 5;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		const unsigned char *a = in6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			out[0] = 4;
			memcpy(out + 1, a + 12, 4);
			return 5;
		}
		out[0] = 6;
		memcpy(out + 1, a, 8);
		return 9;
	}
	return 0;
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
	unsigned char msg[1 + 17 + 1 + ACCOUNT_MAX];
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
	struct entry *b = &tab->e[(key >> 8) % tab->n_buckets * WAYS];
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
	if (now - e->first_ms > (uint64_t)tab->cfg.window_s * 1000)
		return 0;
	return e->fails;
}

static bool is_blocked(const struct entry *e, uint64_t now)
{
	return e != NULL && e->blocked_until > now;
}

static bool known_pair(const struct entry *pair, uint64_t now)
{
	return pair != NULL && pair->success_ms != 0 && now - pair->success_ms < KNOWN_MS;
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

/* The three keys for (ip, account); 0 where not applicable. */
struct keys {
	uint64_t ip, account, pair;
};

static void keys_of(const struct sockaddr *ip, const char *account, struct keys *k)
{
	unsigned char ib[17], ab[ACCOUNT_MAX];
	size_t il = ip_bytes(ip, ib);
	size_t al = account_bytes(account, ab);
	k->ip = il ? make_key(K_IP, ib, il, NULL, 0) : 0;
	k->account = al ? make_key(K_ACCOUNT, ab, al, NULL, 0) : 0;
	k->pair = il && al ? make_key(K_PAIR, ib, il, ab, al) : 0;
}

/* --------------------------------------------------------------- API */

void authlimit_check(const struct sockaddr *ip, const char *account, struct authlimit_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (tab == NULL)
		return;
	struct keys k;
	keys_of(ip, account, &k);
	uint64_t now = now_ms();
	if (!lock())
		return;
	struct entry *ie = find(k.ip, K_IP, false, now);
	struct entry *ae = find(k.account, K_ACCOUNT, false, now);
	struct entry *pe = find(k.pair, K_PAIR, false, now);
	bool known = known_pair(pe, now);
	uint64_t until = 0;
	if (is_blocked(ie, now))
		until = ie->blocked_until;
	if (!known && is_blocked(ae, now) && ae->blocked_until > until)
		until = ae->blocked_until;
	uint32_t fails = live_fails(ie, now);
	uint32_t pf = live_fails(pe, now);
	if (pf > fails)
		fails = pf;
	if (!known) {
		uint32_t af = live_fails(ae, now);
		if (af > fails)
			fails = af;
	}
	v->delay_ms = delay_for(fails);
	unlock();
	if (until != 0) {
		v->blocked = true;
		v->blocked_until = (int64_t)(until / 1000);
	}
}

/* Counts one failure on e (may_block: it may start a block).  Sets
 * *count to the failures counted in the window, this one included, and
 * returns true if this failure starts a block. */
static bool count_fail(struct entry *e, bool may_block, uint64_t now, uint32_t *count)
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
	unsigned after = tab->cfg.block_after;
	if (may_block && after != 0 && e->fails >= after && !is_blocked(e, now)) {
		e->blocked_until = now + (uint64_t)tab->cfg.block_time_s * 1000;
		/* The block starts a new count: when it ends, the IP gets
		 * block_after more tries, not one. */
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

void authlimit_fail(const struct sockaddr *ip, const char *account)
{
	char ipt[INET6_ADDRSTRLEN], acct[128];
	ip_text(ip, ipt, sizeof ipt);
	log_escape(acct, sizeof acct, account != NULL && account[0] ? account : "-",
		   account != NULL && account[0] ? strlen(account) : 1);
	if (tab == NULL) {
		log_info("action=auth_fail ip=%s account=%s", ipt, acct);
		return;
	}
	struct keys k;
	keys_of(ip, account, &k);
	uint64_t now = now_ms();
	if (!lock())
		return;
	struct entry *ie = find(k.ip, K_IP, true, now);
	struct entry *ae = find(k.account, K_ACCOUNT, true, now);
	struct entry *pe = find(k.pair, K_PAIR, true, now);
	uint32_t ifails, afails, pfails;
	bool ip_block = count_fail(ie, true, now, &ifails);
	bool acct_block = count_fail(ae, true, now, &afails);
	/* A pair never blocks by itself: the IP and account counters do. */
	(void)count_fail(pe, false, now, &pfails);
	uint64_t block_s = tab->cfg.block_time_s;
	unlock();
	log_info("action=auth_fail ip=%s account=%s ip_fails=%u account_fails=%u", ipt, acct,
		 ifails, afails);
	if (ip_block)
		log_warn("action=auth_block scope=ip ip=%s account=%s seconds=%llu", ipt, acct,
			 (unsigned long long)block_s);
	if (acct_block)
		log_warn("action=auth_block scope=account ip=%s account=%s seconds=%llu", ipt, acct,
			 (unsigned long long)block_s);
}

void authlimit_success(const struct sockaddr *ip, const char *account)
{
	if (tab == NULL)
		return;
	struct keys k;
	keys_of(ip, account, &k);
	uint64_t now = now_ms();
	if (!lock())
		return;
	struct entry *pe = find(k.pair, K_PAIR, true, now);
	if (pe != NULL) {
		pe->fails = 0;
		pe->success_ms = now;
		pe->last_ms = now;
	}
	unlock();
}
