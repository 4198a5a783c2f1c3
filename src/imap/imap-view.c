/*
 * imap-view.c - the selected mailbox's sequence number <-> UID map as runs
 * of consecutive UIDs (see imap-view.h).  Protocol layer, pure.
 */
#include "imap-view.h"

#include <stdbool.h>
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

/* The element at *pos (range index and offset) of a set as given, a:b
 * from its smaller end; false past the end. */
static bool set_next(const struct imap_seqset *s, size_t *ri, uint64_t *off, uint32_t *out)
{
	while (*ri < s->n) {
		uint32_t lo = s->r[*ri].lo, hi = s->r[*ri].hi;
		if (lo > hi) {
			uint32_t x = lo;
			lo = hi;
			hi = x;
		}
		if ((uint64_t)lo + *off <= hi) {
			*out = (uint32_t)(lo + *off);
			(*off)++;
			return true;
		}
		(*ri)++;
		*off = 0;
	}
	return false;
}

uint32_t imap_view_match(const struct imap_view *v, const struct imap_seqset *seqs,
			 const struct imap_seqset *uids)
{
	size_t si = 0, ui = 0;
	uint64_t so = 0, uo = 0;
	uint32_t seq, uid, from = 1;
	/* sequence numbers ascend, so this stops within v->n + 1 pairs */
	while (set_next(seqs, &si, &so, &seq) && set_next(uids, &ui, &uo, &uid)) {
		if (seq > v->n || imap_view_uid(v, seq) != uid)
			break;
		from = uid == UINT32_MAX ? UINT32_MAX : uid + 1;
	}
	return from;
}

static void missing_add(struct imap_seqset *out, size_t *cap, uint32_t lo, uint32_t hi)
{
	if (out->n == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		out->r = xreallocarray(out->r, *cap, sizeof *out->r);
	}
	out->r[out->n].lo = lo;
	out->r[out->n].hi = hi;
	out->n++;
}

void imap_view_missing(const struct imap_view *v, const struct imap_seqset *set, uint32_t lo,
		       uint32_t hi, struct imap_seqset *out)
{
	size_t cap = out->n;
	for (size_t i = 0; i < set->n; i++) {
		uint32_t a = set->r[i].lo > lo ? set->r[i].lo : lo;
		uint32_t b = set->r[i].hi < hi ? set->r[i].hi : hi;
		if (a > b)
			continue;
		/* walk the runs that meet [a, b]; the gaps between them are missing */
		uint64_t next = a; /* first uid not yet decided */
		for (size_t k = run_from_uid(v, a); k < v->nr && v->r[k].uid <= b; k++) {
			if (v->r[k].uid > next)
				missing_add(out, &cap, (uint32_t)next, v->r[k].uid - 1);
			next = (uint64_t)v->r[k].uid + v->r[k].len;
			if (next > b)
				break;
		}
		if (next <= b)
			missing_add(out, &cap, (uint32_t)next, b);
	}
}

void imap_view_free(struct imap_view *v)
{
	free(v->r);
	memset(v, 0, sizeof *v);
}
