/*
 * imap-compress.h - COMPRESS=DEFLATE (RFC 4978): a libevent filter that
 * puts raw DEFLATE (RFC 1951, zlib) between an IMAP session and its
 * socket or TLS bufferevent (compression first, then TLS, as 3 requires).
 *
 * Output: every burst the session writes is compressed and ended by a
 * sync flush, so each response reaches the client whole.  After a sync
 * flush the output is byte-aligned and complete, so a new raw deflate
 * stream may follow it: imap_compress_shrink frees the compressor (its
 * window and hash tables) between bursts, e.g. while a session is in
 * IDLE, and the next burst starts a new one (the client's decompressor
 * sees only more blocks).  The decompressor of the client's stream
 * cannot be freed (the client's window may reach back 32 KiB).
 *
 * Input: at most the filter's read high-water mark is inflated at a time,
 * so a deflate bomb only becomes input the IMAP reader bounds like any
 * other; a stream that does not inflate is a connection error (the
 * session's event callback gets BEV_EVENT_ERROR|BEV_EVENT_READING, after
 * the current callback).
 *
 * Ownership: the filter bufferevent owns the underlying one (freeing it
 * frees both) and the struct imap_compress state.
 */
#ifndef TERN_IMAP_COMPRESS_H
#define TERN_IMAP_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>

struct bufferevent;
struct imap_compress;

/* Wraps under (which must have no callbacks the caller still needs: the
 * filter takes them) in a DEFLATE filter; *out is the state for the
 * calls below.  NULL if zlib or libevent fails (under is left as it is). */
struct bufferevent *imap_compress_wrap(struct bufferevent *under, struct imap_compress **out);

/* The bufferevent below the filter (the TLS one, for close_notify). */
struct bufferevent *imap_compress_under(const struct imap_compress *z);

/* Bytes compressed but not yet taken by the socket. */
size_t imap_compress_pending(const struct imap_compress *z);

/* Calls fn(arg) once, from the event loop, as soon as the underlying
 * output is empty (at once, deferred, if it is already). */
void imap_compress_when_drained(struct imap_compress *z, void (*fn)(void *arg), void *arg);

/* Forgets a when_drained callback; call it before freeing the filter
 * (the underlying bufferevent may go first). */
void imap_compress_cancel(struct imap_compress *z);

/* Frees the compressor now if nothing is pending, else once what has
 * been written is compressed and flushed (the next output starts a new
 * raw deflate stream). */
void imap_compress_shrink(struct imap_compress *z);

/* Bytes in and out of each direction, for the log. */
void imap_compress_counts(const struct imap_compress *z, unsigned long long *plain_out,
			  unsigned long long *wire_out, unsigned long long *wire_in,
			  unsigned long long *plain_in);

#endif
