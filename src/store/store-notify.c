/*
 * store-notify.c - change notification.  Subscribers in this process (an
 * IMAP session in IDLE, say) are called at once; the hook, set by the
 * process that runs the event loop, forwards the account id to the other
 * processes, which call store_notify_local when it arrives.
 *
 * A callback may subscribe or unsubscribe (itself or others): removals
 * during a round only clear the entry, and the list is compacted when the
 * outermost round ends; subscriptions added during a round are first
 * called in the next one.
 */
#include <stdlib.h>

#include "store-private.h"
#include "xalloc.h"

int store_notify_subscribe(struct store *s, int64_t account_id, store_notify_cb cb, void *ctx)
{
	if (cb == NULL || s->next_sub_id == INT32_MAX)
		return -1;
	if (s->n_subs == s->cap_subs) {
		s->cap_subs = s->cap_subs ? s->cap_subs * 2 : 8;
		s->subs = xreallocarray(s->subs, s->cap_subs, sizeof *s->subs);
	}
	struct store_sub *sub = &s->subs[s->n_subs++];
	sub->id = s->next_sub_id++;
	sub->account_id = account_id;
	sub->cb = cb;
	sub->ctx = ctx;
	return sub->id;
}

static void compact(struct store *s)
{
	size_t j = 0;
	for (size_t i = 0; i < s->n_subs; i++) {
		if (s->subs[i].cb)
			s->subs[j++] = s->subs[i];
	}
	s->n_subs = j;
	s->subs_dirty = false;
}

void store_notify_unsubscribe(struct store *s, int sub_id)
{
	for (size_t i = 0; i < s->n_subs; i++) {
		if (s->subs[i].id == sub_id) {
			s->subs[i].cb = NULL;
			s->subs_dirty = true;
			break;
		}
	}
	if (s->subs_dirty && s->notify_depth == 0)
		compact(s);
}

void store_notify_set_hook(struct store *s, void (*hook)(void *ctx, int64_t account_id),
			   void *ctx)
{
	s->hook = hook;
	s->hook_ctx = ctx;
}

void store_notify_local(struct store *s, int64_t account_id)
{
	store_indexer_changed(s, account_id);
	size_t n = s->n_subs;
	s->notify_depth++;
	for (size_t i = 0; i < n; i++) {
		/* Re-read each time: a callback may have grown the array. */
		struct store_sub sub = s->subs[i];
		if (sub.cb && (sub.account_id == 0 || sub.account_id == account_id))
			sub.cb(sub.ctx, account_id);
	}
	s->notify_depth--;
	if (s->subs_dirty && s->notify_depth == 0)
		compact(s);
}

void store_notify(struct store *s, int64_t account_id)
{
	if (store_commit_hold_notify(s, account_id))
		return; /* sent when the armed commit is durable */
	store_notify_local(s, account_id);
	if (s->hook)
		s->hook(s->hook_ctx, account_id);
}
