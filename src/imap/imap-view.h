/*
 * imap-view.h - a session's view of its selected mailbox: the UIDs in
 * sequence-number order (RFC 9051 2.3.1), kept as runs of consecutive UIDs
 * so that an IDLE session on a large mailbox costs a few bytes, not four
 * per message.  Pure data structure (no I/O); tested in unit-imap.
 *
 * Costs: lookups by sequence number or UID are binary searches over the
 * runs; removing a message is O(runs); appending is amortised O(1).
 */
#ifndef TERN_IMAP_VIEW_H
#define TERN_IMAP_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "imap-parse.h"

struct imap_run {
	uint32_t uid; /* first uid of the run */
	uint32_t seq; /* its sequence number */
	uint32_t len; /* uids uid .. uid+len-1 */
};

struct imap_view {
	struct imap_run *r; /* owned */
	size_t nr, cap;
	uint32_t n; /* messages */
};

/* Appends uids (ascending, each above the last one in the view). */
void imap_view_append(struct imap_view *v, const uint32_t *uids, size_t n);
/* The uid at sequence number seq (1..n); 0 if out of range. */
uint32_t imap_view_uid(const struct imap_view *v, uint32_t seq);
/* The sequence number of uid, 0 if it is not in the view. */
uint32_t imap_view_seq(const struct imap_view *v, uint32_t uid);
/* The sequence number of the first uid >= uid (n + 1 if none). */
uint32_t imap_view_seq_from(const struct imap_view *v, uint32_t uid);
/* Removes the message at sequence number seq (1..n). */
void imap_view_remove(struct imap_view *v, uint32_t seq);
/* Lowest and highest uid, 0 for an empty view. */
uint32_t imap_view_first(const struct imap_view *v);
uint32_t imap_view_last(const struct imap_view *v);
/* RFC 7162 3.2.5.2: the lowest uid a VANISHED (EARLIER) may name, given
 * the client's sequence match data (seqs[i] should be the message with
 * uids[i]; both sets as given, ascending, the same size, no "*").  The
 * pairs are taken in order up to the first that does not match the view;
 * the answer is one above the uid of the last that did (1 if none). */
uint32_t imap_view_match(const struct imap_view *v, const struct imap_seqset *seqs,
			 const struct imap_seqset *uids);
/* The uids of set (resolved: ascending, merged ranges) from lo up to hi
 * that are not in the view, appended to out as ranges (ascending). */
void imap_view_missing(const struct imap_view *v, const struct imap_seqset *set, uint32_t lo,
		       uint32_t hi, struct imap_seqset *out);
/* Frees the runs; the view becomes empty. */
void imap_view_free(struct imap_view *v);

#endif
