/*
 * proxyproto.h - the PROXY protocol header a load balancer (HAProxy and
 * others) puts in front of a connection to pass on the client's address:
 * version 1 (one text line) and version 2 (binary).  Pure and bounded:
 * the caller reads the bytes, this only parses them.
 */
#ifndef TERN_PROXYPROTO_H
#define TERN_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Version 1: the longest line, CRLF included. */
#define PROXYPROTO_V1_MAX 107
/* Version 2: the fixed part (signature, version/command, family, length). */
#define PROXYPROTO_V2_FIXED 16
/* The longest header accepted (a version 2 one with its TLVs); longer ones
 * are malformed.  HAProxy's headers with every TLV it can send fit. */
#define PROXYPROTO_MAX 2048

/* What a complete header says. */
struct proxyproto_result {
	int version; /* 1 or 2 */
	/* 1: the connection carries a client's address (TCP4/TCP6 in v1, the
	 * PROXY command with an IPv4/IPv6 stream family in v2) in src/dst;
	 * 0: it does not (v1 UNKNOWN, v2 LOCAL, UNSPEC, UNIX or datagram
	 * families): the receiver keeps the connection's own addresses. */
	int has_addr;
	struct sockaddr_storage src; /* the client (address and port) */
	socklen_t src_len;
	struct sockaddr_storage dst; /* the address the client connected to */
	socklen_t dst_len;
};

/* Parses the start of a connection's bytes p[0..n).  Returns the header's
 * length (> 0, at most PROXYPROTO_MAX) with *r filled, 0 if p is a proper
 * prefix of a header that may still be valid (read more), or -1 if it is
 * not a header, with a short reason (a static string) in *why.  A header
 * is never longer than the bytes it needs: the bytes after it belong to
 * the protocol.  why may be NULL. */
long proxyproto_parse(const uint8_t *p, size_t n, struct proxyproto_result *r, const char **why);

#endif
