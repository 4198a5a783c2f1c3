/*
 * proxy-accept.c - the PROXY protocol header of new connections, read on
 * the worker's event loop (see proxy-accept.h).
 *
 * Only a connection from an address of proxy.trusted, on a listener whose
 * KIND.proxy_protocol is on, is asked for a header, and then must send
 * one: anyone else's bytes go to the protocol unread, so a client cannot
 * claim another address.  The header is read without consuming a byte of
 * what follows it: each time the socket is readable the bytes are peeked,
 * and only those that belong to the header (all of them while it is
 * incomplete, exactly its length once complete) are taken off the socket.
 * The deadline is one for the whole header (proxy.timeout), not per read,
 * so a proxy that trickles bytes is closed in time as well.
 */
#include "proxy-accept.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "proxyproto.h"
#include "xalloc.h"

struct pending {
	struct pending *prev, *next;
	struct proxy_accept *pa;
	struct event *ev;
	evutil_socket_t fd;
	struct sockaddr_storage peer; /* the proxy */
	int peer_len;
	char peer_ip[INET6_ADDRSTRLEN];
	const char *listen_key;
	proxy_accept_cb done;
	void *ctx;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	size_t have;              /* header bytes taken off the socket */
	uint8_t buf[PROXYPROTO_MAX];
};

struct proxy_accept {
	struct event_base *base;
	struct pending *head;
	size_t n;
};

struct proxy_accept *proxy_accept_new(struct event_base *base)
{
	struct proxy_accept *pa = xcalloc(1, sizeof *pa);
	pa->base = base;
	return pa;
}

/* Unlinks and frees p; closes its socket if close_fd. */
static void pending_free(struct pending *p, bool close_fd)
{
	struct proxy_accept *pa = p->pa;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pa->head = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	pa->n--;
	event_free(p->ev);
	if (close_fd)
		close(p->fd);
	free(p);
}

void proxy_accept_free(struct proxy_accept **pap)
{
	if (pap == NULL || *pap == NULL)
		return;
	struct proxy_accept *pa = *pap;
	while (pa->head != NULL)
		pending_free(pa->head, true);
	free(pa);
	*pap = NULL;
}

size_t proxy_accept_pending(const struct proxy_accept *pa)
{
	return pa->n;
}

/* The listener's name for logs: the key without ".listen". */
static int listener_len(const char *key)
{
	const char *dot = strrchr(key, '.');
	return (int)(dot != NULL ? (size_t)(dot - key) : strlen(key));
}

static void fail(struct pending *p, const char *why)
{
	log_warn("proxy listener=%.*s peer=%s result=refused error=\"%s\" bytes=%zu",
		 listener_len(p->listen_key), p->listen_key, p->peer_ip, why, p->have);
	metrics_inc(M_PROXY_FAILURES);
	pending_free(p, true);
}

/* Waits for more bytes until the deadline; false if it has passed. */
static bool wait_more(struct pending *p)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t left_us = ((int64_t)p->deadline.tv_sec - now.tv_sec) * 1000000 +
			  ((int64_t)p->deadline.tv_nsec - now.tv_nsec) / 1000;
	if (left_us <= 0)
		return false;
	struct timeval tv = {(time_t)(left_us / 1000000), (suseconds_t)(left_us % 1000000)};
	if (event_add(p->ev, &tv) < 0)
		return false;
	return true;
}

static void pending_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;
	if (what & EV_TIMEOUT) {
		fail(p, "no complete header in time");
		return;
	}
	size_t room = sizeof p->buf - p->have;
	ssize_t n = recv(fd, p->buf + p->have, room, MSG_PEEK);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
			if (!wait_more(p))
				fail(p, "no complete header in time");
			return;
		}
		fail(p, strerror(errno));
		return;
	}
	if (n == 0) {
		fail(p, "closed before the header");
		return;
	}
	struct proxyproto_result r;
	const char *why = "malformed header";
	long len = proxyproto_parse(p->buf, p->have + (size_t)n, &r, &why);
	if (len < 0) {
		p->have += (size_t)n; /* for the log only */
		fail(p, why);
		return;
	}
	/* Take off the socket what belongs to the header: the peeked bytes
	 * are already in buf, at the same place. */
	size_t take = len == 0 ? (size_t)n : (size_t)len - p->have;
	ssize_t got = recv(fd, p->buf + p->have, take, 0);
	if (got < 0 || (size_t)got != take) {
		fail(p, "short read of peeked bytes");
		return;
	}
	p->have += take;
	if (len == 0) {
		if (!wait_more(p))
			fail(p, "no complete header in time");
		return;
	}
	struct sockaddr_storage client;
	int client_len;
	if (r.has_addr) {
		client = r.src;
		client_len = (int)r.src_len;
	} else {
		client = p->peer;
		client_len = p->peer_len;
	}
	char client_ip[INET6_ADDRSTRLEN];
	bool lo;
	netaddr_format((const struct sockaddr *)&client, client_ip, sizeof client_ip, &lo);
	log_debug("proxy listener=%.*s peer=%s client=%s version=%d result=ok",
		  listener_len(p->listen_key), p->listen_key, p->peer_ip, client_ip, r.version);
	proxy_accept_cb done = p->done;
	void *ctx = p->ctx;
	pending_free(p, false);
	done(ctx, fd, (const struct sockaddr *)&client, client_len);
}

bool proxy_accept_begin(struct proxy_accept *pa, const struct config *cfg, const char *listen_key,
			evutil_socket_t fd, const struct sockaddr *sa, int salen,
			proxy_accept_cb done, void *ctx)
{
	if (pa == NULL || cfg->proxy_trusted[0] == '\0' ||
	    !config_proxy_protocol(cfg, listen_key) || salen <= 0 ||
	    (size_t)salen > sizeof(struct sockaddr_storage))
		return false;
	char ip[INET6_ADDRSTRLEN];
	bool lo;
	netaddr_format(sa, ip, sizeof ip, &lo);
	if (!netaddr_in_list(ip, cfg->proxy_trusted))
		return false;

	struct pending *p = xcalloc(1, sizeof *p);
	p->pa = pa;
	p->fd = fd;
	memcpy(&p->peer, sa, (size_t)salen);
	p->peer_len = salen;
	memcpy(p->peer_ip, ip, sizeof ip);
	p->listen_key = listen_key;
	p->done = done;
	p->ctx = ctx;
	clock_gettime(CLOCK_MONOTONIC, &p->deadline);
	p->deadline.tv_sec += (time_t)cfg->proxy_timeout;
	p->ev = event_new(pa->base, fd, EV_READ, pending_cb, p);
	if (p->ev == NULL) {
		log_error("proxy listener=%.*s peer=%s error=\"cannot watch the socket\"",
			  listener_len(listen_key), listen_key, ip);
		close(fd);
		free(p);
		return true;
	}
	p->next = pa->head;
	if (pa->head != NULL)
		pa->head->prev = p;
	pa->head = p;
	pa->n++;
	struct timeval tv = {(time_t)cfg->proxy_timeout, 0};
	if (event_add(p->ev, &tv) < 0)
		fail(p, "cannot watch the socket");
	return true;
}
