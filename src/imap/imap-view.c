/*
 * imap-view.c - the selected mailbox's sequence number <-> UID map as runs
 * of consecutive UIDs (see imap-view.h).  Protocol layer, pure.
 */
#include "imap-view.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

static void grow(struct imap_view *v, size_t need)
{
	if (need <= v->cap)
		return;
	size_t cap = v->cap ? v->cap * 2 : 4;
	while (cap < need)
		cap *= 2;
	v->r = xreallocarray(v->r, cap, sizeof *v->r);
	v->cap = cap;
}

void imap_view_append(struct imap_view *v, const uint32_t *uids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct imap_run *last = v->nr ? &v->r[v->nr - 1] : NULL;
		if (last && last->uid + last->len == uids[i]) {
			last->len++;
		} else {
			grow(v, v->nr + 1);
			v->r[v->nr].uid = uids[i];
			v->r[v->nr].seq = v->n + 1;
			v->r[v->nr].len = 1;
			v->nr++;
		}
		v->n++;
	}
}

/* Index of the run holding sequence number seq (1..n). */
static size_t run_of_seq(const struct imap_view *v, uint32_t seq)
{
	size_t lo = 0, hi = v->nr;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->r[mid].seq <= seq)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first run whose last uid is >= uid (nr if none). */
static size_t run_from_uid(const struct imap_view *v, uint32_t uid)
{
	size_t lo = 0, hi = v->nr;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((uint64_t)v->r[mid].uid + v->r[mid].len - 1 < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint32_t imap_view_uid(const struct imap_view *v, uint32_t seq)
{
	if (seq == 0 || seq > v->n)
		return 0;
	const struct imap_run *r = &v->r[run_of_seq(v, seq)];
	return r->uid + (seq - r->seq);
}

uint32_t imap_view_seq(const struct imap_view *v, uint32_t uid)
{
	size_t i = run_from_uid(v, uid);
	if (i == v->nr || uid < v->r[i].uid)
		return 0;
	return v->r[i].seq + (uid - v->r[i].uid);
}

uint32_t imap_view_seq_from(const struct imap_view *v, uint32_t uid)
{
	size_t i = run_from_uid(v, uid);
	if (i == v->nr)
		return v->n + 1;
	if (uid <= v->r[i].uid)
		return v->r[i].seq;
	return v->r[i].seq + (uid - v->r[i].uid);
}

void imap_view_remove(struct imap_view *v, uint32_t seq)
{
	if (seq == 0 || seq > v->n)
		return;
	size_t i = run_of_seq(v, seq);
	struct imap_run *r = &v->r[i];
	uint32_t off = seq - r->seq;
	if (r->len == 1) {
		memmove(&v->r[i], &v->r[i + 1], (v->nr - i - 1) * sizeof *v->r);
		v->nr--;
	} else if (off == 0) {
		r->uid++;
		r->len--;
		i++;
	} else if (off == r->len - 1) {
		r->len--;
		i++;
	} else {
		/* split: [uid, uid+off) and [uid+off+1, uid+len) */
		grow(v, v->nr + 1);
		r = &v->r[i];
		memmove(&v->r[i + 2], &v->r[i + 1], (v->nr - i - 1) * sizeof *v->r);
		v->r[i + 1].uid = r->uid + off + 1;
		v->r[i + 1].seq = r->seq + off + 1;
		v->r[i + 1].len = r->len - off - 1;
		r->len = off;
		v->nr++;
		i++;
	}
	for (; i < v->nr; i++)
		v->r[i].seq--;
	v->n--;
}

uint32_t imap_view_first(const struct imap_view *v)
{
	return v->nr ? v->r[0].uid : 0;
}

uint32_t imap_view_last(const struct imap_view *v)
{
	return v->nr ? v->r[v->nr - 1].uid + v->r[v->nr - 1].len - 1 : 0;
}

void imap_view_free(struct imap_view *v)
{
	free(v->r);
	memset(v, 0, sizeof *v);
}
