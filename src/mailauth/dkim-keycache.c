/*
 * dkim-keycache.c - decoded DKIM public keys kept between messages.  See
 * dkim-keycache.h.  A small array searched linearly: an entry is a hash
 * compare, then the bytes; DKIM_KEYCACHE_MAX is small.
 */
#include "dkim-keycache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct keycache_entry {
	uint64_t hash;
	char *id; /* type, sel, NUL, dom, NUL, record bytes */
	size_t id_len;
	EVP_PKEY *pk;
	bool testing, strict;
	time_t added;
};

struct dkim_keycache {
	pthread_mutex_t lock;
	struct keycache_entry *e;
	size_t n, max;
	time_t age;
};

struct dkim_keycache *dkim_keycache_new(size_t max, time_t age)
{
	struct dkim_keycache *c = xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	c->max = max > 0 ? max : 1;
	c->age = age;
	c->e = xcalloc(c->max, sizeof *c->e);
	return c;
}

static void entry_clear(struct keycache_entry *e)
{
	free(e->id);
	EVP_PKEY_free(e->pk);
	memset(e, 0, sizeof *e);
}

void dkim_keycache_free(struct dkim_keycache **c)
{
	if (c == NULL || *c == NULL)
		return;
	for (size_t i = 0; i < (*c)->n; i++)
		entry_clear(&(*c)->e[i]);
	free((*c)->e);
	pthread_mutex_destroy(&(*c)->lock);
	free(*c);
	*c = NULL;
}

static struct dkim_keycache *process_cache;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

static void process_free(void)
{
	dkim_keycache_free(&process_cache);
}

static void process_make(void)
{
	process_cache = dkim_keycache_new(DKIM_KEYCACHE_MAX, DKIM_KEYCACHE_AGE);
	atexit(process_free);
}

struct dkim_keycache *dkim_keycache_process(void)
{
	pthread_once(&process_once, process_make);
	return process_cache;
}

/* The identity of an entry, xmalloc'd, and its FNV-1a hash. */
static char *make_id(const char *sel, const char *dom, int type, const char *rec, size_t len,
		     size_t *id_len, uint64_t *hash)
{
	size_t sl = strlen(sel), dl = strlen(dom);
	size_t n = 1 + sl + 1 + dl + 1 + len;
	char *id = xmalloc(n);
	id[0] = (char)type;
	memcpy(id + 1, sel, sl + 1);
	memcpy(id + 2 + sl, dom, dl + 1);
	if (len > 0)
		memcpy(id + 3 + sl + dl, rec, len);
	uint64_t h = 14695981039346656037u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)id[i]) * 1099511628211u;
	*id_len = n;
	*hash = h;
	return id;
}

static struct keycache_entry *find(struct dkim_keycache *c, const char *id, size_t n, uint64_t h)
{
	for (size_t i = 0; i < c->n; i++) {
		struct keycache_entry *e = &c->e[i];
		if (e->hash == h && e->id_len == n && memcmp(e->id, id, n) == 0)
			return e;
	}
	return NULL;
}

static bool expired(const struct dkim_keycache *c, const struct keycache_entry *e, time_t now)
{
	return now < e->added || now - e->added >= c->age;
}

EVP_PKEY *dkim_keycache_get(struct dkim_keycache *c, const char *sel, const char *dom, int type,
			    const char *rec, size_t len, time_t now, bool *testing, bool *strict)
{
	size_t n;
	uint64_t h;
	char *id = make_id(sel, dom, type, rec, len, &n, &h);
	EVP_PKEY *pk = NULL;
	pthread_mutex_lock(&c->lock);
	struct keycache_entry *e = find(c, id, n, h);
	if (e != NULL && !expired(c, e, now) && EVP_PKEY_up_ref(e->pk) == 1) {
		pk = e->pk;
		*testing = e->testing;
		*strict = e->strict;
	}
	pthread_mutex_unlock(&c->lock);
	free(id);
	return pk;
}

void dkim_keycache_put(struct dkim_keycache *c, const char *sel, const char *dom, int type,
		       const char *rec, size_t len, EVP_PKEY *pk, bool testing, bool strict,
		       time_t now)
{
	if (EVP_PKEY_up_ref(pk) != 1)
		return;
	size_t n;
	uint64_t h;
	char *id = make_id(sel, dom, type, rec, len, &n, &h);
	pthread_mutex_lock(&c->lock);
	struct keycache_entry *e = find(c, id, n, h);
	if (e == NULL && c->n < c->max) {
		e = &c->e[c->n++];
	} else if (e == NULL) {
		e = &c->e[0];
		for (size_t i = 0; i < c->n; i++) {
			if (expired(c, &c->e[i], now)) {
				e = &c->e[i];
				break;
			}
			if (c->e[i].added < e->added)
				e = &c->e[i];
		}
	}
	entry_clear(e);
	*e = (struct keycache_entry){.hash = h, .id = id, .id_len = n, .pk = pk,
				     .testing = testing, .strict = strict, .added = now};
	pthread_mutex_unlock(&c->lock);
}

size_t dkim_keycache_count(struct dkim_keycache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->n;
	pthread_mutex_unlock(&c->lock);
	return n;
}
