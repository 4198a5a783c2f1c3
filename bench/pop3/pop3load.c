/*
 * pop3load.c - the POP3 load of bench/pop3/run.sh in C (the same as
 * `popload.py retr`, at a fraction of its CPU cost, so that the client takes
 * less of the two cores the servers share with it).
 *
 *   pop3load PORT USERS MESSAGES [WINDOW [QUICKACK]]
 *
 * Forks USERS processes, releases them together; process k logs in as
 * testk@example.test (password "pass"), runs STAT, LIST, RETR 1..MESSAGES
 * (WINDOW commands in flight, default 1), QUIT.  Checks: STAT agrees with
 * LIST, the count is MESSAGES, every RETR's octets (without the stuffing
 * dots) equal LIST's size.  Prints one line of tab-separated key=value
 * fields, the same as popload.py (checksum: the sum of zlib CRC-32s of each
 * RETR body as sent, dot-stuffed, modulo 2^48).  Exit 1 on any failure.
 *
 * Build: cc -O2 -Wall -Wextra -o pop3load pop3load.c -lz
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define RECV_CHUNK (256 * 1024)

struct conn {
	int fd;
	bool quickack;
	char *buf;
	size_t cap, len, pos; /* data is buf[pos..len) */
	uint64_t wire;
	int user;
	char line[1024];
};

struct result {
	uint64_t messages, octets, crc, wire;
};

static void fail(const struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "pop3load: session %d: ", c->user);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	_exit(1);
}

/* Reads more into the buffer; keeps offsets valid (never moves data). */
static void fill(struct conn *c)
{
	if (c->cap - c->len < RECV_CHUNK) {
		size_t ncap = c->cap * 2 > c->len + RECV_CHUNK ? c->cap * 2 : c->len + RECV_CHUNK;
		char *n = realloc(c->buf, ncap);
		if (n == NULL)
			fail(c, "out of memory");
		c->buf = n;
		c->cap = ncap;
	}
	if (c->quickack) {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
	}
	ssize_t r;
	do
		r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		fail(c, "recv: %s", strerror(errno));
	if (r == 0)
		fail(c, "connection closed by the server");
	c->len += (size_t)r;
	c->wire += (uint64_t)r;
}

/* Drops consumed data; only between replies. */
static void compact(struct conn *c)
{
	if (c->pos == 0)
		return;
	memmove(c->buf, c->buf + c->pos, c->len - c->pos);
	c->len -= c->pos;
	c->pos = 0;
}

/* One CRLF line, without it, copied to c->line (cut at its size); the
 * buffer itself is left as received, since multiline() looks back at the
 * status line's CRLF. */
static char *line(struct conn *c)
{
	compact(c);
	size_t start = c->pos;
	for (;;) {
		char *p = memmem(c->buf + start, c->len - start, "\r\n", 2);
		if (p != NULL) {
			size_t n = (size_t)(p - (c->buf + c->pos));
			if (n >= sizeof c->line)
				n = sizeof c->line - 1;
			memcpy(c->line, c->buf + c->pos, n);
			c->line[n] = '\0';
			c->pos = (size_t)(p - c->buf) + 2;
			return c->line;
		}
		start = c->len > c->pos + 1 ? c->len - 1 : c->pos;
		fill(c);
	}
}

/* After a +OK line: [*b, *e) is the multi-line data up to and including the
 * CRLF before the terminating ".CRLF" (as sent); *stuffed is the number of
 * stuffing dots in it (a line starting with "..").  One pass with memchr
 * for '.': only dots right after a CRLF matter (the status line's CRLF
 * counts, for the first line and an empty body). */
static void multiline(struct conn *c, size_t *b, size_t *e, uint64_t *stuffed)
{
	size_t begin = c->pos;
	if (begin < 2)
		fail(c, "multi-line data without a status line");
	size_t i = begin;
	uint64_t dots = 0;
	for (;;) {
		char *d = i < c->len ? memchr(c->buf + i, '.', c->len - i) : NULL;
		if (d == NULL) {
			i = c->len;
			fill(c);
			continue;
		}
		i = (size_t)(d - c->buf);
		if (c->buf[i - 1] != '\n' || c->buf[i - 2] != '\r') {
			i++;
			continue;
		}
		if (i + 2 >= c->len) { /* need two more bytes to decide */
			fill(c);
			continue;
		}
		if (c->buf[i + 1] == '\r' && c->buf[i + 2] == '\n') {
			*b = begin;
			*e = i;
			*stuffed = dots;
			c->pos = i + 3;
			return;
		}
		if (c->buf[i + 1] == '.')
			dots++;
		i += 2;
	}
}

static void send_all(struct conn *c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail(c, "send: %s", strerror(errno));
		s += r;
		n -= (size_t)r;
	}
}

static void command(struct conn *c, const char *fmt, ...)
{
	char cmd[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof cmd)
		fail(c, "command too long");
	send_all(c, cmd, (size_t)n);
}

static char *expect_ok(struct conn *c, const char *what)
{
	char *l = line(c);
	if (strncmp(l, "+OK", 3) != 0)
		fail(c, "%s: %.200s", what, l);
	return l;
}

static void session(int k, int port, uint64_t messages, uint64_t window, bool quickack,
		    struct result *res)
{
	struct conn c = {.fd = -1, .quickack = quickack, .user = k};
	c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.fd < 0)
		fail(&c, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct timeval to = {.tv_sec = 120}; /* a stuck server fails the run */
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &to, sizeof to);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c.fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		fail(&c, "connect: %s", strerror(errno));
	expect_ok(&c, "greeting");
	command(&c, "USER test%d@example.test\r\n", k);
	expect_ok(&c, "USER");
	command(&c, "PASS pass\r\n");
	expect_ok(&c, "PASS");
	command(&c, "STAT\r\n");
	uint64_t n_stat, octets_stat;
	if (sscanf(expect_ok(&c, "STAT"), "+OK %" SCNu64 " %" SCNu64, &n_stat, &octets_stat) != 2)
		fail(&c, "STAT: unparsable answer");
	if (n_stat != messages)
		fail(&c, "%" PRIu64 " messages, expected %" PRIu64, n_stat, messages);
	uint64_t *sizes = calloc(n_stat + 1, sizeof *sizes);
	if (sizes == NULL)
		fail(&c, "out of memory");
	command(&c, "LIST\r\n");
	expect_ok(&c, "LIST");
	size_t b, e;
	uint64_t stuffed;
	multiline(&c, &b, &e, &stuffed);
	uint64_t n_list = 0, sum = 0;
	for (size_t p = b; p < e;) {
		char *nl = memmem(c.buf + p, e - p, "\r\n", 2);
		uint64_t num, size;
		if (nl == NULL)
			fail(&c, "LIST: line without CRLF");
		char l[128];
		size_t ln = (size_t)(nl - (c.buf + p));
		if (ln >= sizeof l)
			fail(&c, "LIST: line too long");
		memcpy(l, c.buf + p, ln);
		l[ln] = '\0';
		if (sscanf(l, "%" SCNu64 " %" SCNu64, &num, &size) != 2 || num < 1 ||
		    num > n_stat || sizes[num] != 0)
			fail(&c, "LIST: bad line %.100s", l);
		sizes[num] = size;
		n_list++;
		sum += size;
		p = (size_t)(nl - c.buf) + 2;
	}
	if (n_list != n_stat || sum != octets_stat)
		fail(&c,
		     "STAT %" PRIu64 " %" PRIu64 " but LIST has %" PRIu64 " messages, %" PRIu64
		     " octets",
		     n_stat, octets_stat, n_list, sum);
	uint64_t sent = 0, got = 0;
	if (window < 1)
		window = 1;
	while (got < n_stat) {
		while (sent < n_stat && sent - got < window)
			command(&c, "RETR %" PRIu64 "\r\n", ++sent);
		got++;
		expect_ok(&c, "RETR");
		multiline(&c, &b, &e, &stuffed);
		/* octets without the stuffing: every CRLF ".." lost one dot */
		uint64_t n = e - b - stuffed;
		const char *s = c.buf + b;
		if (n != sizes[got])
			fail(&c, "RETR %" PRIu64 " gave %" PRIu64 " octets, LIST said %" PRIu64,
			     got, n, sizes[got]);
		res->octets += n;
		res->crc += crc32(0L, (const Bytef *)s, (uInt)(e - b));
	}
	command(&c, "QUIT\r\n");
	expect_ok(&c, "QUIT");
	close(c.fd);
	free(sizes);
	free(c.buf);
	res->messages = got;
	res->wire = c.wire;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 6) {
		fputs("usage: pop3load PORT USERS MESSAGES [WINDOW [QUICKACK]]\n", stderr);
		return 2;
	}
	int port = atoi(argv[1]);
	int users = atoi(argv[2]);
	uint64_t messages = strtoull(argv[3], NULL, 10);
	uint64_t window = argc > 4 ? strtoull(argv[4], NULL, 10) : 1;
	bool quickack = argc > 5 && atoi(argv[5]) != 0;
	if (port <= 0 || port > 65535 || users < 1 || users > 1000) {
		fputs("pop3load: bad PORT or USERS\n", stderr);
		return 2;
	}
	int go[2];
	if (pipe(go) < 0)
		return 1;
	pid_t *pids = calloc((size_t)users, sizeof *pids);
	int *rfd = calloc((size_t)users, sizeof *rfd);
	if (pids == NULL || rfd == NULL)
		return 1;
	for (int k = 1; k <= users; k++) {
		int p[2];
		if (pipe(p) < 0)
			return 1;
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			close(go[1]);
			close(p[0]);
			char x;
			while (read(go[0], &x, 1) < 0 && errno == EINTR)
				;
			struct result r = {0};
			session(k, port, messages, window, quickack, &r);
			if (write(p[1], &r, sizeof r) != (ssize_t)sizeof r)
				_exit(1);
			_exit(0);
		}
		close(p[1]);
		pids[k - 1] = pid;
		rfd[k - 1] = p[0];
	}
	close(go[0]);
	struct rusage ru0, ru1;
	getrusage(RUSAGE_CHILDREN, &ru0);
	double t0 = now();
	close(go[1]);
	struct result tot = {0};
	int errors = 0;
	for (int i = 0; i < users; i++) {
		struct result r;
		ssize_t n;
		do
			n = read(rfd[i], &r, sizeof r);
		while (n < 0 && errno == EINTR);
		int st;
		waitpid(pids[i], &st, 0);
		if (n != (ssize_t)sizeof r || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			errors++;
			continue;
		}
		tot.messages += r.messages;
		tot.octets += r.octets;
		tot.crc += r.crc;
		tot.wire += r.wire;
	}
	double t1 = now();
	getrusage(RUSAGE_CHILDREN, &ru1);
	double user = tv(ru1.ru_utime) - tv(ru0.ru_utime);
	double sys = tv(ru1.ru_stime) - tv(ru0.ru_stime);
	printf("wall=%.3f\tmessages=%" PRIu64 "\toctets=%" PRIu64 "\twire=%" PRIu64
	       "\tchecksum=%012" PRIx64 "\tclient_cpu=%.3f\tclient_user=%.3f\tclient_sys=%.3f"
	       "\terrors=%d\n",
	       t1 - t0, tot.messages, tot.octets, tot.wire, tot.crc & (uint64_t)0xFFFFFFFFFFFF,
	       user + sys, user, sys, errors);
	return errors ? 1 : 0;
}
