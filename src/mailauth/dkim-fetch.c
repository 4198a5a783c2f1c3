/*
 * dkim-fetch.c - DKIM key records asked for in advance.  See dkim-fetch.h.
 *
 * Mail-auth layer, over the DNS layer: each pair gets one TXT query; the
 * answers are kept until the fetch is freed.
 */
#include "dkim-fetch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"
#include "dns.h"
#include "xalloc.h"

struct key_answer {
	struct dkim_fetch *f;
	char selector[64];
	char domain[256];
	int status; /* 0 found (rec), 1 none, -1 temporary; 2 still asking */
	struct buf rec;
	struct dns_query *q;
};

struct dkim_fetch {
	struct dns_resolver *res;
	dkim_fetch_cb cb;
	void *ctx;
	struct key_answer **keys; /* each its own allocation: the DNS
				   * callback holds a pointer to it */
	size_t n, pending;
};

struct dkim_fetch *dkim_fetch_new(struct dns_resolver *res, dkim_fetch_cb cb, void *ctx)
{
	struct dkim_fetch *f = xcalloc(1, sizeof *f);
	f->res = res;
	f->cb = cb;
	f->ctx = ctx;
	return f;
}

void dkim_fetch_cancel(struct dkim_fetch *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->keys[i]->q != NULL) {
			dns_query_cancel(&f->keys[i]->q);
			f->keys[i]->status = -1;
		}
	f->pending = 0;
}

void dkim_fetch_free(struct dkim_fetch **fp)
{
	struct dkim_fetch *f = *fp;
	if (f == NULL)
		return;
	dkim_fetch_cancel(f);
	for (size_t i = 0; i < f->n; i++) {
		buf_free(&f->keys[i]->rec);
		free(f->keys[i]);
	}
	free(f->keys);
	free(f);
	*fp = NULL;
}

static void key_dns_cb(void *ctx, const struct dns_rr_result *r)
{
	struct key_answer *k = ctx;
	k->q = NULL;
	if (r->status == DNS_OK && r->n > 0) {
		/* Several records at one selector: the first that is one. */
		k->status = 1;
		for (size_t i = 0; i < r->n && k->status != 0; i++) {
			struct dkim_keyrec kr;
			if (dkim_keyrec_parse((const char *)r->rr[i].data, r->rr[i].len, &kr, NULL,
					      0) == 0) {
				dkim_keyrec_clear(&kr);
				buf_reset(&k->rec);
				if (buf_append(&k->rec, r->rr[i].data, r->rr[i].len) == 0)
					k->status = 0;
			}
		}
		if (k->status != 0) {
			/* None parses: give the first, the verifier says why. */
			buf_reset(&k->rec);
			k->status = buf_append(&k->rec, r->rr[0].data, r->rr[0].len) == 0 ? 0 : -1;
		}
	} else {
		k->status = r->status == DNS_TEMPFAIL ? -1 : 1;
	}
	k->f->pending--;
	k->f->cb(k->f->ctx);
}

void dkim_fetch_add(struct dkim_fetch *f, const char *sel, size_t sl, const char *dom, size_t dl)
{
	if (sl == 0 || dl == 0 || sl >= 64 || dl >= 256 || sl + dl > 240 || f->n >= DKIM_FETCH_MAX)
		return;
	for (size_t i = 0; i < f->n; i++) {
		const struct key_answer *k = f->keys[i];
		if (strlen(k->domain) == dl && strncasecmp(k->domain, dom, dl) == 0 &&
		    strlen(k->selector) == sl && strncasecmp(k->selector, sel, sl) == 0)
			return;
	}
	f->keys = xreallocarray(f->keys, f->n + 1, sizeof *f->keys);
	struct key_answer *k = xcalloc(1, sizeof *k);
	f->keys[f->n++] = k;
	memcpy(k->domain, dom, dl);
	memcpy(k->selector, sel, sl);
	k->f = f;
	k->status = 2;
	buf_init(&k->rec, 0);
	char name[340], err[256];
	snprintf(name, sizeof name, "%s._domainkey.%s", k->selector, k->domain);
	k->q = dns_lookup(f->res, DNS_RR_TXT, name, key_dns_cb, k, err, sizeof err);
	if (k->q == NULL)
		k->status = -1;
	else
		f->pending++;
}

size_t dkim_fetch_pending(const struct dkim_fetch *f)
{
	return f->pending;
}

int dkim_fetch_lookup(void *ctx, const char *selector, const char *domain, struct buf *rec,
		      char *err, size_t errsz)
{
	struct dkim_fetch *f = ctx;
	for (size_t i = 0; i < f->n; i++) {
		struct key_answer *k = f->keys[i];
		if (strcasecmp(k->selector, selector) != 0 || strcasecmp(k->domain, domain) != 0)
			continue;
		if (k->status == 0)
			return buf_append(rec, k->rec.data, k->rec.len) == 0 ? 0 : -1;
		snprintf(err, errsz, k->status == 1 ? "no key record" : "key lookup failed");
		return k->status == 1 ? 1 : -1;
	}
	snprintf(err, errsz, "key not looked up");
	return -1;
}
