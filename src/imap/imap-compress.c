/*
 * imap-compress.c - see imap-compress.h.
 */
#include "imap-compress.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "xalloc.h"

/* Our compressor: a 8 KiB window and 16 KiB of hash chains (zlib's
 * memory formula: (1 << (wbits + 2)) + (1 << (memlevel + 9)) = 48 KiB
 * plus the state), level 3: IMAP responses repeat within a burst, and
 * the machine's two cores serve everyone.  The client's window may be
 * up to 32 KiB: the decompressor takes 15. */
#define Z_OUT_WBITS 12
#define Z_OUT_MEMLEVEL 4
#define Z_OUT_LEVEL 3
#define Z_IN_WBITS 15
#define Z_CHUNK 16384

struct imap_compress {
	struct bufferevent *filter, *under;
	z_stream def, inf;
	bool def_on, def_dirty, inf_on, broken;
	bool shrink; /* free the compressor after the next complete flush */
	struct event *drain_ev;
	struct evbuffer_cb_entry *drain_cb;
	void (*drain_fn)(void *arg);
	void *drain_arg;
	unsigned long long plain_out, wire_out, wire_in, plain_in;
};

static void broken(struct imap_compress *z, struct evbuffer *src)
{
	z->broken = true;
	evbuffer_drain(src, evbuffer_get_length(src));
	/* after this callback: the session may free everything */
	bufferevent_trigger_event(z->filter, BEV_EVENT_ERROR | BEV_EVENT_READING,
				  BEV_TRIG_DEFER_CALLBACKS);
}

static enum bufferevent_filter_result out_filter(struct evbuffer *src, struct evbuffer *dst,
						 ev_ssize_t limit, enum bufferevent_flush_mode mode,
						 void *ctx)
{
	struct imap_compress *z = ctx;
	(void)mode;
	if (z->broken) {
		evbuffer_drain(src, evbuffer_get_length(src));
		return BEV_OK;
	}
	size_t made_total = 0;
	for (;;) {
		size_t avail = evbuffer_get_length(src);
		if (avail == 0 && !z->def_dirty)
			break;
		/* over the limit: stop taking input (a started flush ends) */
		if (avail > 0 && limit >= 0 && made_total >= (size_t)limit)
			break;
		if (!z->def_on) {
			memset(&z->def, 0, sizeof z->def);
			if (deflateInit2(&z->def, Z_OUT_LEVEL, Z_DEFLATED, -Z_OUT_WBITS,
					 Z_OUT_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
				return BEV_ERROR;
			z->def_on = true;
		}
		struct evbuffer_iovec in = {NULL, 0};
		int flush = Z_SYNC_FLUSH;
		if (avail > 0) {
			evbuffer_peek(src, -1, NULL, &in, 1);
			if (in.iov_len > Z_CHUNK)
				in.iov_len = Z_CHUNK;
			flush = Z_NO_FLUSH;
		}
		struct evbuffer_iovec out;
		if (evbuffer_reserve_space(dst, Z_CHUNK, &out, 1) < 1)
			return BEV_ERROR;
		if (out.iov_len > Z_CHUNK * 4)
			out.iov_len = Z_CHUNK * 4;
		z->def.next_in = in.iov_base;
		z->def.avail_in = (uInt)in.iov_len;
		z->def.next_out = out.iov_base;
		z->def.avail_out = (uInt)out.iov_len;
		int r = deflate(&z->def, flush);
		if (r == Z_STREAM_ERROR)
			return BEV_ERROR;
		size_t used = in.iov_len - z->def.avail_in;
		size_t made = out.iov_len - z->def.avail_out;
		out.iov_len = made;
		evbuffer_commit_space(dst, &out, 1);
		if (used > 0) {
			evbuffer_drain(src, used);
			z->def_dirty = true;
		}
		z->plain_out += used;
		z->wire_out += made;
		made_total += made;
		if (flush == Z_SYNC_FLUSH && z->def.avail_out != 0) {
			z->def_dirty = false; /* all out, byte-aligned */
			if (z->shrink) {
				deflateEnd(&z->def);
				z->def_on = false;
				z->shrink = false;
			}
		}
		else if (used == 0 && made == 0)
			break; /* no progress (cannot happen with room on both sides) */
	}
	return BEV_OK;
}

static enum bufferevent_filter_result in_filter(struct evbuffer *src, struct evbuffer *dst,
						ev_ssize_t limit, enum bufferevent_flush_mode mode,
						void *ctx)
{
	struct imap_compress *z = ctx;
	(void)mode;
	if (z->broken) {
		evbuffer_drain(src, evbuffer_get_length(src));
		return BEV_OK;
	}
	if (!z->inf_on) {
		memset(&z->inf, 0, sizeof z->inf);
		if (inflateInit2(&z->inf, -Z_IN_WBITS) != Z_OK)
			return BEV_ERROR;
		z->inf_on = true;
	}
	size_t made_total = 0;
	while (evbuffer_get_length(src) > 0) {
		if (limit >= 0 && made_total >= (size_t)limit)
			break;
		size_t room = Z_CHUNK;
		if (limit >= 0 && (size_t)limit - made_total < room)
			room = (size_t)limit - made_total;
		struct evbuffer_iovec in, out;
		evbuffer_peek(src, -1, NULL, &in, 1);
		if (in.iov_len > Z_CHUNK)
			in.iov_len = Z_CHUNK;
		if (evbuffer_reserve_space(dst, room, &out, 1) < 1)
			return BEV_ERROR;
		if (out.iov_len > room)
			out.iov_len = room;
		z->inf.next_in = in.iov_base;
		z->inf.avail_in = (uInt)in.iov_len;
		z->inf.next_out = out.iov_base;
		z->inf.avail_out = (uInt)out.iov_len;
		int r = inflate(&z->inf, Z_NO_FLUSH);
		size_t used = in.iov_len - z->inf.avail_in;
		size_t made = out.iov_len - z->inf.avail_out;
		out.iov_len = made;
		evbuffer_commit_space(dst, &out, 1);
		evbuffer_drain(src, used);
		z->wire_in += used;
		z->plain_in += made;
		made_total += made;
		if (r == Z_STREAM_END) {
			/* the client ended its stream (RFC 4978 has no end):
			 * what follows is read as a new one */
			inflateReset(&z->inf);
		} else if (r == Z_NEED_DICT || r == Z_DATA_ERROR || r == Z_MEM_ERROR ||
			   r == Z_STREAM_ERROR) {
			broken(z, src);
			return BEV_ERROR;
		} else if (used == 0 && made == 0) {
			break;
		}
	}
	return BEV_OK;
}

static void drain_fire(evutil_socket_t fd, short what, void *arg);

static void free_ctx(void *ctx)
{
	struct imap_compress *z = ctx;
	if (z->def_on)
		deflateEnd(&z->def);
	if (z->inf_on)
		inflateEnd(&z->inf);
	if (z->drain_ev)
		event_free(z->drain_ev);
	free(z);
}

struct bufferevent *imap_compress_wrap(struct bufferevent *under, struct imap_compress **out)
{
	struct imap_compress *z = xcalloc(1, sizeof *z);
	z->under = under;
	z->drain_ev = evtimer_new(bufferevent_get_base(under), drain_fire, z);
	if (z->drain_ev == NULL) {
		free(z);
		return NULL;
	}
	struct bufferevent *f =
	    bufferevent_filter_new(under, in_filter, out_filter,
				   BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, free_ctx, z);
	if (f == NULL) {
		event_free(z->drain_ev);
		free(z);
		return NULL;
	}
	z->filter = f;
	*out = z;
	return f;
}

struct bufferevent *imap_compress_under(const struct imap_compress *z)
{
	return z->under;
}

size_t imap_compress_pending(const struct imap_compress *z)
{
	return evbuffer_get_length(bufferevent_get_output(z->under));
}

static void drain_fire(evutil_socket_t fd, short what, void *arg)
{
	struct imap_compress *z = arg;
	(void)fd;
	(void)what;
	void (*fn)(void *) = z->drain_fn;
	z->drain_fn = NULL;
	if (z->drain_cb != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_output(z->under), z->drain_cb);
		z->drain_cb = NULL;
	}
	if (fn != NULL)
		fn(z->drain_arg);
}

static void drained_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct imap_compress *z = arg;
	(void)info;
	if (evbuffer_get_length(buf) == 0 && z->drain_fn != NULL)
		event_active(z->drain_ev, EV_TIMEOUT, 1);
}

void imap_compress_when_drained(struct imap_compress *z, void (*fn)(void *arg), void *arg)
{
	z->drain_fn = fn;
	z->drain_arg = arg;
	struct evbuffer *o = bufferevent_get_output(z->under);
	if (evbuffer_get_length(o) == 0) {
		event_active(z->drain_ev, EV_TIMEOUT, 1);
		return;
	}
	if (z->drain_cb == NULL)
		z->drain_cb = evbuffer_add_cb(o, drained_cb, z);
	if (z->drain_cb == NULL) /* no memory for the entry: try at once */
		event_active(z->drain_ev, EV_TIMEOUT, 1);
}

void imap_compress_cancel(struct imap_compress *z)
{
	z->drain_fn = NULL;
	if (z->drain_cb != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_output(z->under), z->drain_cb);
		z->drain_cb = NULL;
	}
	event_del(z->drain_ev);
}

void imap_compress_shrink(struct imap_compress *z)
{
	if (!z->def_on)
		return;
	if (z->def_dirty || evbuffer_get_length(bufferevent_get_output(z->filter)) > 0) {
		z->shrink = true; /* when what is written now is out */
		return;
	}
	deflateEnd(&z->def);
	z->def_on = false;
}

void imap_compress_counts(const struct imap_compress *z, unsigned long long *plain_out,
			  unsigned long long *wire_out, unsigned long long *wire_in,
			  unsigned long long *plain_in)
{
	*plain_out = z->plain_out;
	*wire_out = z->wire_out;
	*wire_in = z->wire_in;
	*plain_in = z->plain_in;
}
