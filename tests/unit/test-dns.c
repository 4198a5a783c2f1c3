/*
 * test-dns.c - unit tests for the pure parts of src/dns/dns.c: MX record
 * parsing, RFC 5321 5.1 ordering, Null MX (RFC 7505) and the
 * classification of answers into permanent and temporary failures; TXT
 * and PTR record data; and dns_lookup end to end against a small DNS
 * server run in the test (A, MX, TXT, PTR, NXDOMAIN, no data, SERVFAIL,
 * cancellation).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns.h"
#include "test.h"

/* Parses rdata from a heap block of exactly n bytes (ASan sees overreads). */
static int parse(const unsigned char *p, size_t n, struct dns_mx *mx)
{
	unsigned char *h = malloc(n ? n : 1);
	if (h == NULL)
		abort();
	memcpy(h, p, n);
	int r = dns_parse_mx_rdata(h, n, mx);
	free(h);
	return r;
}

TEST(dns_mx_rdata)
{
	static const unsigned char mx1[] = {0, 10, 2, 'm', 'x', 1, 'B', 4, 't', 'e', 's', 't', 0};
	struct dns_mx mx;
	CHECK_INT(parse(mx1, sizeof mx1, &mx), 0);
	CHECK_INT(mx.pref, 10);
	CHECK_STR(mx.host, "mx.b.test");
	static const unsigned char null[] = {0, 0, 0};
	CHECK_INT(parse(null, sizeof null, &mx), 0);
	CHECK_STR(mx.host, "");
	CHECK_INT(mx.pref, 0);
	static const unsigned char big[] = {0xff, 0xff, 1, 'a', 0};
	CHECK_INT(parse(big, sizeof big, &mx), 0);
	CHECK_INT(mx.pref, 65535);
	/* Truncated, trailing bytes, compression pointer, bad characters. */
	static const unsigned char trunc[] = {0, 10, 5, 'a', 'b'};
	CHECK_INT(parse(trunc, sizeof trunc, &mx), -1);
	static const unsigned char noend[] = {0, 10, 1, 'a'};
	CHECK_INT(parse(noend, sizeof noend, &mx), -1);
	static const unsigned char trail[] = {0, 10, 1, 'a', 0, 0};
	CHECK_INT(parse(trail, sizeof trail, &mx), -1);
	static const unsigned char ptr[] = {0, 10, 0xc0, 12};
	CHECK_INT(parse(ptr, sizeof ptr, &mx), -1);
	static const unsigned char badc[] = {0, 10, 2, 'a', ' ', 0};
	CHECK_INT(parse(badc, sizeof badc, &mx), -1);
	CHECK_INT(parse(mx1, 2, &mx), -1);
	CHECK_INT(parse(mx1, 0, &mx), -1);
}

static uint32_t calls;
static uint32_t rnd_last(uint32_t bound)
{
	calls++;
	return bound - 1; /* no swap: keeps the input order */
}
static uint32_t rnd_first(uint32_t bound)
{
	calls++;
	return 0;
}

static void set(struct dns_mx *m, const char *host, unsigned pref)
{
	memset(m, 0, sizeof *m);
	snprintf(m->host, sizeof m->host, "%s", host);
	m->pref = pref;
}

TEST(dns_mx_sort_order)
{
	struct dns_mx mx[6];
	set(&mx[0], "c", 30);
	set(&mx[1], "a", 10);
	set(&mx[2], "b", 20);
	set(&mx[3], "a", 40); /* the same host again: dropped */
	set(&mx[4], "d", 20);
	set(&mx[5], "e", 0);
	calls = 0;
	size_t n = dns_mx_sort(mx, 6, rnd_last);
	CHECK_INT(n, 5);
	CHECK_STR(mx[0].host, "e");
	CHECK_STR(mx[1].host, "a");
	CHECK_INT(mx[1].pref, 10);
	CHECK_INT(mx[2].pref, 20);
	CHECK_INT(mx[3].pref, 20);
	CHECK_STR(mx[4].host, "c");
	CHECK_INT(calls, 1); /* one shuffle step for the one pair of equals */
	/* With rnd_first the equal pair is swapped, the rest stays. */
	char first[256];
	snprintf(first, sizeof first, "%s", mx[2].host);
	calls = 0;
	n = dns_mx_sort(mx, n, rnd_first);
	CHECK_INT(n, 5);
	CHECK(strcmp(mx[3].host, first) == 0);
	CHECK_STR(mx[0].host, "e");
	CHECK_STR(mx[4].host, "c");
	/* Equal preferences: every order appears with a real random source. */
	n = dns_mx_sort(mx, 0, rnd_first);
	CHECK_INT(n, 0);
}

static uint32_t rnd_libc(uint32_t bound)
{
	return (uint32_t)rand() % bound;
}

TEST(dns_mx_sort_random_among_equals)
{
	int first_seen[3] = {0, 0, 0};
	srand(1);
	for (int round = 0; round < 300; round++) {
		struct dns_mx mx[4];
		set(&mx[0], "h0", 5);
		set(&mx[1], "h1", 5);
		set(&mx[2], "h2", 5);
		set(&mx[3], "backup", 50);
		size_t n = dns_mx_sort(mx, 4, rnd_libc);
		CHECK_INT(n, 4);
		CHECK_STR(mx[3].host, "backup");
		first_seen[mx[0].host[1] - '0']++;
	}
	for (int i = 0; i < 3; i++)
		CHECK(first_seen[i] > 50);
}

TEST(dns_null_mx)
{
	struct dns_mx mx[2];
	set(&mx[0], "", 0);
	CHECK(dns_mx_is_null(mx, 1));
	set(&mx[1], "mx.example", 10);
	CHECK(!dns_mx_is_null(mx, 2));
	CHECK(!dns_mx_is_null(mx + 1, 1));
	CHECK(!dns_mx_is_null(mx, 0));
}

TEST(dns_classify)
{
	/* failed, rcode, havedata, nxdomain */
	CHECK_INT(dns_classify(1, 0, false, false), DNS_TEMPFAIL); /* timeout, network */
	CHECK_INT(dns_classify(0, 0, true, false), DNS_OK);
	CHECK_INT(dns_classify(0, 3, false, true), DNS_NXDOMAIN);
	CHECK_INT(dns_classify(0, 3, false, false), DNS_NXDOMAIN);
	CHECK_INT(dns_classify(0, 2, false, false), DNS_TEMPFAIL); /* SERVFAIL */
	CHECK_INT(dns_classify(0, 5, false, false), DNS_TEMPFAIL); /* REFUSED */
	CHECK_INT(dns_classify(0, 0, false, false), DNS_OK);       /* NODATA */
	CHECK_STR(dns_status_name(DNS_NULLMX), "nullmx");
	CHECK_STR(dns_status_name(DNS_TEMPFAIL), "tempfail");
}

/* Parses TXT rdata from a heap block of exactly n bytes. */
static int parse_txt(const unsigned char *p, size_t n, char *out, size_t outsz, size_t *len)
{
	unsigned char *h = malloc(n ? n : 1);
	if (h == NULL)
		abort();
	memcpy(h, p, n);
	int r = dns_parse_txt_rdata(h, n, out, outsz, len);
	free(h);
	return r;
}

TEST(dns_txt_rdata)
{
	/* Two strings are joined with nothing between them (RFC 7208 3.3). */
	static const unsigned char two[] = {7,   'v', '=', 's', 'p', 'f', '1',
					    ' ', 4,   '-', 'a', 'l', 'l', 0};
	char out[64];
	size_t len = 99;
	CHECK_INT(parse_txt(two, sizeof two, out, sizeof out, &len), 0);
	CHECK_STR(out, "v=spf1 -all");
	CHECK_INT(len, 11);
	/* An empty string and no string at all. */
	static const unsigned char empty[] = {0};
	CHECK_INT(parse_txt(empty, sizeof empty, out, sizeof out, &len), 0);
	CHECK_INT(len, 0);
	CHECK_INT(parse_txt(empty, 0, out, sizeof out, &len), 0);
	CHECK_STR(out, "");
	/* A length past the end, and an output buffer too small. */
	static const unsigned char trunc[] = {5, 'a', 'b'};
	CHECK_INT(parse_txt(trunc, sizeof trunc, out, sizeof out, &len), -1);
	CHECK_INT(parse_txt(two, sizeof two, out, 11, &len), -1);
	CHECK_INT(parse_txt(two, sizeof two, out, 12, &len), 0);
	/* Bytes are kept as they are (the SPF parser judges them). */
	static const unsigned char bin[] = {3, 0xff, ';', ' '};
	CHECK_INT(parse_txt(bin, sizeof bin, out, sizeof out, &len), 0);
	CHECK_INT(len, 3);
	CHECK_INT((unsigned char)out[0], 0xff);
}

TEST(dns_ptr_rdata)
{
	static const unsigned char name[] = {4, 'M', 'a', 'i', 'l', 4, 't', 'e', 's', 't', 0};
	char out[256];
	CHECK_INT(dns_parse_ptr_rdata(name, sizeof name, out), 0);
	CHECK_STR(out, "mail.test");
	static const unsigned char root[] = {0};
	CHECK_INT(dns_parse_ptr_rdata(root, 1, out), 0);
	CHECK_STR(out, "");
	CHECK_INT(dns_parse_ptr_rdata(name, sizeof name - 1, out), -1);
	static const unsigned char trail[] = {1, 'a', 0, 0};
	CHECK_INT(dns_parse_ptr_rdata(trail, sizeof trail, out), -1);
	static const unsigned char ptr[] = {0xc0, 12};
	CHECK_INT(dns_parse_ptr_rdata(ptr, sizeof ptr, out), -1);
	/* Any visible byte but '.' and '\\' (an SPF target may hold them);
	 * an MX exchange stays a host name. */
	static const unsigned char odd[] = {7, 'F', 'o', 'o', ':', 'b', '/', 'z', 1, 'x', 0};
	CHECK_INT(dns_parse_ptr_rdata(odd, sizeof odd, out), 0);
	CHECK_STR(out, "foo:b/z.x");
	static const unsigned char mx_odd[] = {0, 10, 7, 'F', 'o', 'o', ':', 'b', '/', 'z', 1, 'x', 0};
	struct dns_mx mx;
	CHECK_INT(dns_parse_mx_rdata(mx_odd, sizeof mx_odd, &mx), -1);
	static const unsigned char dot[] = {3, 'a', '.', 'b', 0};
	CHECK_INT(dns_parse_ptr_rdata(dot, sizeof dot, out), -1);
	static const unsigned char bsl[] = {3, 'a', '\\', 'b', 0};
	CHECK_INT(dns_parse_ptr_rdata(bsl, sizeof bsl, out), -1);
	static const unsigned char sp[] = {3, 'a', ' ', 'b', 0};
	CHECK_INT(dns_parse_ptr_rdata(sp, sizeof sp, out), -1);
	static const unsigned char hi[] = {3, 'a', 0x80, 'b', 0};
	CHECK_INT(dns_parse_ptr_rdata(hi, sizeof hi, out), -1);
}

/* --------------------------------------------- dns_lookup, end to end */

/* A tiny DNS server on 127.0.0.1 run by the same event loop: libunbound
 * (forwarding to it) resolves in its own thread, so answering here does
 * not deadlock.  It knows a handful of names under "test.". */
struct fake_dns {
	int fd;
	uint16_t port;
	struct event *ev;
	unsigned queries;
};

static size_t put_rr(unsigned char *b, size_t o, uint16_t type, const unsigned char *rd,
		     size_t rdlen)
{
	unsigned char h[12] = {0xc0,
			       12,
			       type >> 8,
			       type & 0xff,
			       0,
			       1,
			       0,
			       0,
			       0,
			       60,
			       (unsigned char)(rdlen >> 8),
			       (unsigned char)rdlen};
	memcpy(b + o, h, sizeof h);
	memcpy(b + o + sizeof h, rd, rdlen);
	return o + sizeof h + rdlen;
}

static void fake_dns_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fake_dns *f = arg;
	unsigned char q[512], a[1024];
	struct sockaddr_storage from;
	socklen_t fl = sizeof from;
	ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
	if (n < 17)
		return;
	f->queries++;
	/* The question: one name, then type and class. */
	char name[256];
	size_t i = 12, o = 0;
	while (i < (size_t)n && q[i] != 0 && o < 200) {
		size_t len = q[i++];
		if (i + len > (size_t)n)
			return;
		if (o)
			name[o++] = '.';
		for (size_t k = 0; k < len; k++)
			name[o++] = (char)tolower(q[i + k]);
		i += len;
	}
	name[o] = '\0';
	if (i + 5 > (size_t)n)
		return;
	uint16_t type = (uint16_t)(q[i + 1] << 8 | q[i + 2]);
	size_t qend = i + 5;
	memcpy(a, q, qend);
	a[2] = 0x81; /* QR, RD */
	a[3] = 0x80; /* RA, NOERROR */
	a[6] = a[7] = a[8] = a[9] = a[10] = a[11] = 0;
	size_t end = qend;
	unsigned an = 0;
	if (!strcmp(name, "nx.test")) {
		a[3] |= 3;
	} else if (!strcmp(name, "fail.test")) {
		a[3] |= 2;
	} else if (!strcmp(name, "spf.test") && type == DNS_RR_TXT) {
		static const unsigned char t1[] = {7,   'v', '=', 's', 'p', 'f', '1',
						   ' ', 4,   '-', 'a', 'l', 'l'};
		static const unsigned char t2[] = {5, 'o', 't', 'h', 'e', 'r'};
		end = put_rr(a, end, DNS_RR_TXT, t1, sizeof t1);
		end = put_rr(a, end, DNS_RR_TXT, t2, sizeof t2);
		an = 2;
	} else if (!strcmp(name, "spf.test") && type == DNS_RR_A) {
		static const unsigned char ad[] = {192, 0, 2, 7};
		end = put_rr(a, end, DNS_RR_A, ad, sizeof ad);
		an = 1;
	} else if (!strcmp(name, "4.3.2.1.in-addr.arpa") && type == DNS_RR_PTR) {
		static const unsigned char nm[] = {4,   'm', 'a', 'i', 'l', 3,   's', 'p',
						   'f', 4,   't', 'e', 's', 't', 0};
		end = put_rr(a, end, DNS_RR_PTR, nm, sizeof nm);
		an = 1;
	} else if (!strcmp(name, "a\\b c.test") && type == DNS_RR_TXT) {
		/* asked byte for byte, not read as an escape */
		static const unsigned char t[] = {3, 'o', 'd', 'd'};
		end = put_rr(a, end, DNS_RR_TXT, t, sizeof t);
		an = 1;
	} else if (!strcmp(name, "7.2.0.192.in-addr.arpa") && type == DNS_RR_PTR) {
		/* a documentation address: unbound would say NXDOMAIN itself */
		static const unsigned char nm[] = {3, 'd', 'o', 'c', 4, 't', 'e', 's', 't', 0};
		end = put_rr(a, end, DNS_RR_PTR, nm, sizeof nm);
		an = 1;
	} else if (!strcmp(name, "spf.test") && type == DNS_RR_MX) {
		static const unsigned char mx[] = {0,   10, 2,   'm', 'x', 3,   's', 'p',
						   'f', 4,  't', 'e', 's', 't', 0};
		end = put_rr(a, end, DNS_RR_MX, mx, sizeof mx);
		an = 1;
	}
	a[7] = (unsigned char)an;
	(void)sendto(fd, a, end, 0, (struct sockaddr *)&from, fl);
}

static int fake_dns_start(struct event_base *base, struct fake_dns *f)
{
	memset(f, 0, sizeof *f);
	f->fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (f->fd < 0)
		return -1;
	struct sockaddr_in sa = {0};
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	if (bind(f->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    getsockname(f->fd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	f->port = ntohs(sa.sin_port);
	f->ev = event_new(base, f->fd, EV_READ | EV_PERSIST, fake_dns_cb, f);
	return f->ev == NULL ? -1 : event_add(f->ev, NULL);
}

struct lookup_out {
	struct event_base *base;
	int *pending;
	bool called;
	enum dns_status status;
	size_t n, dropped;
	char rr[4][300];
	size_t len[4];
};

static void lookup_done(void *ctx, const struct dns_rr_result *r)
{
	struct lookup_out *o = ctx;
	o->called = true;
	o->status = r->status;
	o->n = r->n;
	o->dropped = r->n_dropped;
	for (size_t i = 0; i < r->n && i < 4; i++) {
		memcpy(o->rr[i], r->rr[i].data, r->rr[i].len < 299 ? r->rr[i].len : 299);
		o->rr[i][r->rr[i].len < 299 ? r->rr[i].len : 299] = '\0';
		o->len[i] = r->rr[i].len;
	}
	if (--*o->pending == 0)
		event_base_loopbreak(o->base);
}

static void give_up(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

TEST(dns_lookup_async)
{
	struct event_base *base = event_base_new();
	CHECK(base != NULL);
	struct fake_dns f;
	CHECK_INT(fake_dns_start(base, &f), 0);
	char fwd[64], err[256];
	snprintf(fwd, sizeof fwd, "127.0.0.1:%u", (unsigned)f.port);
	struct dns_resolver *r = dns_resolver_new(base, fwd, 5, err, sizeof err);
	CHECK(r != NULL);
	if (r == NULL)
		return;
	int pending = 0;
	static const struct {
		enum dns_rrtype type;
		const char *name;
	} qs[] = {{DNS_RR_TXT, "spf.test"},  {DNS_RR_A, "spf.test."},
		  {DNS_RR_MX, "SPF.test"},   {DNS_RR_PTR, "4.3.2.1.in-addr.arpa"},
		  {DNS_RR_TXT, "nx.test"},   {DNS_RR_AAAA, "spf.test"},
		  {DNS_RR_TXT, "fail.test"}, {DNS_RR_TXT, "a\\b c.test"},
		  {DNS_RR_PTR, "7.2.0.192.in-addr.arpa"}, {DNS_RR_TXT, "cancelled.test"}};
	struct lookup_out out[10];
	struct dns_query *last = NULL;
	for (size_t i = 0; i < 10; i++) {
		memset(&out[i], 0, sizeof out[i]);
		out[i].base = base;
		out[i].pending = &pending;
		last = dns_lookup(r, qs[i].type, qs[i].name, lookup_done, &out[i], err, sizeof err);
		CHECK(last != NULL);
		CHECK(!out[i].called); /* never from inside dns_lookup */
		pending++;
	}
	dns_query_cancel(&last); /* its callback must not run */
	CHECK(last == NULL);
	pending--;
	CHECK(dns_lookup(r, (enum dns_rrtype)99, "x.test", lookup_done, &out[0], err, sizeof err) ==
	      NULL);
	struct event *guard = evtimer_new(base, give_up, base);
	struct timeval tv = {20, 0};
	evtimer_add(guard, &tv);
	event_base_dispatch(base);
	CHECK_INT(pending, 0);

	CHECK_INT(out[0].status, DNS_OK);
	CHECK_INT(out[0].n, 2);
	/* The RRset order is the server's: check both are there. */
	bool spf = !strcmp(out[0].rr[0], "v=spf1 -all") || !strcmp(out[0].rr[1], "v=spf1 -all");
	bool other = !strcmp(out[0].rr[0], "other") || !strcmp(out[0].rr[1], "other");
	CHECK(spf && other);
	CHECK_INT(out[1].status, DNS_OK);
	CHECK_INT(out[1].n, 1);
	CHECK_INT(out[1].len[0], 4);
	CHECK(memcmp(out[1].rr[0], "\xc0\x00\x02\x07", 4) == 0);
	CHECK_INT(out[2].n, 1);
	CHECK_STR(out[2].rr[0], "mx.spf.test");
	CHECK_INT(out[3].n, 1);
	CHECK_STR(out[3].rr[0], "mail.spf.test");
	CHECK_INT(out[4].status, DNS_NXDOMAIN);
	CHECK_INT(out[4].n, 0);
	CHECK_INT(out[5].status, DNS_OK); /* the name exists, no AAAA */
	CHECK_INT(out[5].n, 0);
	CHECK_INT(out[6].status, DNS_TEMPFAIL);
	CHECK_INT(out[7].n, 1);
	CHECK_STR(out[7].rr[0], "odd");
	CHECK_INT(out[8].n, 1);
	CHECK_STR(out[8].rr[0], "doc.test");
	CHECK(!out[9].called);

	event_free(guard);
	dns_resolver_free(&r);
	event_free(f.ev);
	close(f.fd);
	event_base_free(base);
}

/* Fills out from a resolv.conf text given as a C string. */
static const char *rc_name(const char *text, char *out, size_t outsz)
{
	dns_resolvconf_name(text, strlen(text), out, outsz);
	return out;
}

TEST(dns_resolvconf_name)
{
	char out[DNS_RESOLVER_NAME_MAX];
	CHECK_STR(rc_name("nameserver 127.0.0.53\noptions edns0\n", out, sizeof out),
		  "127.0.0.53 (from /etc/resolv.conf)");
	CHECK_STR(rc_name("# comment\nsearch example.test\n\tnameserver\t10.0.0.1 # main\n"
			  "nameserver 2001:db8::1\r\nnameserver fe80::1%eth0",
			  out, sizeof out),
		  "10.0.0.1 or 2001:db8::1 or fe80::1%eth0 (from /etc/resolv.conf)");
	CHECK_STR(rc_name("nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\n"
			  "nameserver 4.4.4.4\nnameserver 5.5.5.5\n",
			  out, sizeof out),
		  "1.1.1.1 or 2.2.2.2 or 3.3.3.3 or ... (from /etc/resolv.conf)");
	/* Not addresses, not the keyword, commented out: none. */
	CHECK_STR(rc_name("nameserver dns.example\nnameservers 1.2.3.4\n#nameserver 1.2.3.4\n"
			  "nameserver\nnameserver 1.2.3.4x",
			  out, sizeof out),
		  "built into Tern (recursive: /etc/resolv.conf names no nameserver)");
	CHECK_STR(rc_name("", out, sizeof out),
		  "built into Tern (recursive: /etc/resolv.conf names no nameserver)");
	/* Bounded: a small buffer is truncated, always terminated. */
	char small[12];
	CHECK_STR(rc_name("nameserver 10.0.0.1\nnameserver 10.0.0.2\n", small, sizeof small),
		  "10.0.0.1 (f");
	/* Byte by byte: no read past len. */
	const char *text = "nameserver 192.0.2.1\n";
	for (size_t n = 0; n <= strlen(text); n++) {
		char *copy = malloc(n ? n : 1);
		memcpy(copy, text, n);
		dns_resolvconf_name(copy, n, out, sizeof out);
		free(copy);
		CHECK(strlen(out) < sizeof out);
	}
}

TEST(dns_special_use)
{
	CHECK(dns_special_use("x.invalid", false));
	CHECK(dns_special_use("INVALID.", true));
	CHECK(dns_special_use("a.b.onion", true));
	CHECK(dns_special_use("localhost", true));
	CHECK(dns_special_use("printer.home.arpa", true));
	CHECK(dns_special_use("nowhere.test", false));
	CHECK(!dns_special_use("nowhere.test", true)); /* the forwarder is asked */
	CHECK(!dns_special_use("notinvalid", false));
	CHECK(!dns_special_use("invalid.example", false));
	CHECK(!dns_special_use("arpa", false));
	CHECK(!dns_special_use("", false));
}
