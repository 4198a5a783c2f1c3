/*
 * imapload.c - the mixed IMAP load of bench/imap/run.sh.
 *
 *   imapload PORT USERS SESSIONS ITERATIONS EXPECT [ROOTPID [BODIES [IDLE_MS [QUICKACK
 *            [SEARCHES]]]]]
 *
 * Forks SESSIONS processes; session s logs in as testK@example.test
 * (K = (s-1) % USERS + 1, password "pass") and waits; once all are logged
 * in they are released together and each runs ITERATIONS times:
 *
 *   SELECT INBOX                         EXISTS = first EXISTS + appends so far
 *   FETCH 1:100 (FLAGS ENVELOPE)         exactly 100 FETCH responses
 *   UID FETCH u BODY.PEEK[]  x BODIES    one FETCH with one non-empty literal;
 *                                        u pseudo-random in 1..MESSAGES (the
 *                                        same u for every server and run)
 *   STORE n +FLAGS (\Flagged)            one FETCH, with \Flagged
 *   STORE n -FLAGS (\Flagged)            one FETCH, without \Flagged
 *   UID SEARCH SUBJECT quarterly         as many UIDs as EXPECT says
 *   UID SEARCH UNSEEN                    idem
 *   UID SEARCH SINCE 1-Jun-2024          idem
 *   APPEND INBOX (\Seen) "01-Jan-2020 ..." {n+}  (LITERAL+; 400-odd octets,
 *                                        matches none of the searches)
 *   IDLE, DONE (after IDLE_MS ms, default 0: DONE at the "+")
 *   NOOP
 *
 * and then logs out.  Every command must end with a tagged OK.  The counts
 * are checked exactly only when each user has one session (SESSIONS <=
 * USERS); otherwise EXISTS, the STOREs' FETCH and the searches' counts
 * are not checked.
 * EXPECT is mailgen.py's expect.tsv (user, messages, subject hits,
 * unseen, since hits).
 *
 * SEARCHES (default 7) is a bit mask of the UID SEARCHes each iteration
 * runs: 1 SUBJECT, 2 UNSEEN, 4 SINCE (0: none).
 *
 * QUICKACK 1 (a diagnostic, never for published figures): set TCP_QUICKACK
 * before every read, so the client never delays its ACKs and a server's
 * Nagle stall (a small last segment held until the ACK) does not show.
 *
 * If ROOTPID is given (not 0), the CPU time (user+system, clock ticks) of
 * that process's tree (plus the children it reaped) is read from /proc at
 * the release and when the last session has finished its loop (before the
 * LOGOUTs), so the server CPU covers exactly the measured commands.
 *
 * Prints one line of tab-separated key=value fields: wall, ops, op/s,
 * rate_sum (the sum over sessions of each one's ops / its own loop time:
 * the rate while all sessions run, which does not wait for the slowest
 * one), fastest (the shortest session loop, s), server CPU, client CPU, octets and checksum (sum of
 * zlib CRC-32s) of the BODY.PEEK[] literals (the same for every server serving the same files), and
 * the median latency in ms of each command.  Exit 1 on any failure.
 *
 * Build: cc -O2 -Wall -Wextra -o imapload imapload.c -lz
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define RECV_CHUNK (64 * 1024)
#define MAX_USERS 1000

enum op {
	OP_SELECT,
	OP_FETCH,
	OP_BODY,
	OP_STORE,
	OP_SUBJECT,
	OP_UNSEEN,
	OP_SINCE,
	OP_APPEND,
	OP_IDLE,
	OP_NOOP,
	N_OPS
};
static const char *const mixed_names[N_OPS] = {"select", "fetch", "body",   "store", "subject",
					       "unseen", "since", "append", "idle",  "noop"};
/* PROFILE=random uses the same ten latency slots under its own names
 * (idle and noop stay empty). */
#define OP_LIST OP_SUBJECT
#define OP_STATUS OP_UNSEEN
#define OP_EXPUNGE OP_SINCE
static const char *const random_names[N_OPS] = {"select", "fetch",   "body",   "store", "list",
						"status", "expunge", "append", "idle",  "noop"};
static const char *const *op_names = mixed_names;

struct expect {
	long messages, subject, unseen, since;
};

struct conn {
	int fd;
	int session, user;
	char *buf;
	size_t cap, len, pos;
	unsigned tag;
};

/* what one command's untagged responses held */
struct resp {
	long exists;   /* last "* n EXISTS", -1 if none */
	long fetches;  /* "* n FETCH" responses */
	long flagged;  /* of which mention want_flag (\Flagged unless set) */
	long expunged; /* "* n EXPUNGE" responses */
	long lists;    /* "* LIST" responses */
	long status;   /* MESSAGES of a "* STATUS" response, -1 if none */
	long searched; /* numbers in "* SEARCH" lines, -1 if none */
	long literals; /* literals received */
	uint64_t octets, crc;
};

struct result {
	uint64_t ops, octets, crc, n_lat[N_OPS];
	double secs; /* this session's loop, from the release to its last op */
	int ok;
};

static int cur_session;
static const char *want_flag = "\\Flagged";
static bool quickack;
static bool logging_out;

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "imapload: session %d: ", cur_session);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	_exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(struct conn *c)
{
	if (c->pos > 0 && c->pos == c->len)
		c->pos = c->len = 0;
	if (c->cap - c->len < RECV_CHUNK) {
		if (c->pos > 0) {
			memmove(c->buf, c->buf + c->pos, c->len - c->pos);
			c->len -= c->pos;
			c->pos = 0;
		}
		if (c->cap - c->len < RECV_CHUNK) {
			size_t ncap =
			    c->cap * 2 > c->len + RECV_CHUNK ? c->cap * 2 : c->len + RECV_CHUNK;
			char *n = realloc(c->buf, ncap);
			if (n == NULL)
				fail("out of memory");
			c->buf = n;
			c->cap = ncap;
		}
	}
	if (quickack) {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
	}
	ssize_t r;
	do
		r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		fail("recv: %s", strerror(errno));
	if (r == 0)
		fail("connection closed by the server");
	c->len += (size_t)r;
}

/* One CRLF line, NUL-terminated in place; valid until the next fill. */
static char *line(struct conn *c, size_t *n)
{
	size_t scan = c->pos;
	for (;;) {
		char *p = memmem(c->buf + scan, c->len - scan, "\r\n", 2);
		if (p != NULL) {
			char *l = c->buf + c->pos;
			*p = '\0';
			*n = (size_t)(p - l);
			c->pos = (size_t)(p - c->buf) + 2;
			return l;
		}
		size_t off = c->len - c->pos;
		fill(c); /* may move the data to the front */
		scan = c->pos + (off > 0 ? off - 1 : 0);
	}
}

/* Reads n literal octets; adds them to r's octets and CRC. */
static void literal(struct conn *c, size_t n, struct resp *r)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	size_t left = n;
	while (left > 0) {
		if (c->pos == c->len)
			fill(c);
		size_t take = c->len - c->pos < left ? c->len - c->pos : left;
		crc = crc32(crc, (const Bytef *)c->buf + c->pos, (uInt)take);
		c->pos += take;
		left -= take;
	}
	r->literals++;
	r->octets += n;
	r->crc += crc;
}

/* A trailing "{n}" or "{n+}" on a line: its n, or -1. */
static long trailing_literal(const char *l, size_t n)
{
	if (n < 3 || l[n - 1] != '}')
		return -1;
	size_t i = n - 1;
	if (i > 0 && l[i - 1] == '+')
		i--;
	size_t end = i;
	while (i > 0 && isdigit((unsigned char)l[i - 1]))
		i--;
	if (i == end || i == 0 || l[i - 1] != '{')
		return -1;
	return strtol(l + i, NULL, 10);
}

static void send_all(struct conn *c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("send: %s", strerror(errno));
		s += r;
		n -= (size_t)r;
	}
}

/* Looks at one untagged line (the first segment of a response). */
static void untagged(const char *l, struct resp *r)
{
	if (strncmp(l, "* BYE", 5) == 0 && !logging_out)
		fail("server said: %.200s", l);
	char *end;
	long num = strtol(l + 2, &end, 10);
	if (end != l + 2) {
		if (strcmp(end, " EXISTS") == 0)
			r->exists = num;
		else if (strcmp(end, " EXPUNGE") == 0)
			r->expunged++;
		else if (strncmp(end, " FETCH (", 8) == 0) {
			r->fetches++;
			if (strstr(end, want_flag) != NULL)
				r->flagged++;
		}
		return;
	}
	if (strncmp(l, "* LIST ", 7) == 0)
		r->lists++;
	if (strncmp(l, "* STATUS ", 9) == 0) {
		const char *m = strstr(l, "MESSAGES ");
		if (m != NULL)
			r->status = strtol(m + 9, NULL, 10);
	}
	if (strncmp(l, "* SEARCH", 8) == 0) {
		long k = 0;
		for (const char *p = l + 8; *p != '\0'; p++)
			if (*p == ' ' && isdigit((unsigned char)p[1]))
				k++;
		r->searched = k;
	}
}

/* Reads responses up to the tagged one for tag (which must be OK).  With
 * until_plus, stops at the first continuation line instead. */
static void responses(struct conn *c, const char *tag, struct resp *r, bool until_plus,
		      const char *what)
{
	size_t tl = strlen(tag);
	for (;;) {
		size_t n;
		char *l = line(c, &n);
		if (until_plus && l[0] == '+')
			return;
		if (l[0] == '*' && l[1] == ' ') {
			untagged(l, r);
			long lit;
			while ((lit = trailing_literal(l, n)) >= 0) {
				literal(c, (size_t)lit, r);
				l = line(c, &n);
			}
			continue;
		}
		if (strncmp(l, tag, tl) == 0 && l[tl] == ' ') {
			if (strncmp(l + tl + 1, "OK", 2) != 0)
				fail("%s: %.200s", what, l);
			return;
		}
		fail("%s: unexpected line %.200s", what, l);
	}
}

/* Sends "TAG " + the formatted command + CRLF (plus a raw tail, for
 * APPEND's literal) and reads its responses into r. */
static void command(struct conn *c, struct resp *r, const char *tail, size_t tail_n,
		    const char *fmt, ...)
{
	char cmd[512], tag[16];
	snprintf(tag, sizeof tag, "A%u", ++c->tag);
	int k = snprintf(cmd, sizeof cmd, "%s ", tag);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(cmd + k, sizeof cmd - (size_t)k, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(k + m) + 2 >= sizeof cmd)
		fail("command too long");
	memcpy(cmd + k + m, "\r\n\0", 3);
	send_all(c, cmd, (size_t)(k + m) + 2);
	if (tail != NULL)
		send_all(c, tail, tail_n);
	*r = (struct resp){.exists = -1, .searched = -1, .status = -1};
	responses(c, tag, r, false, cmd + k);
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

struct params {
	int port, users, sessions;
	long iterations, bodies, idle_ms, searches;
	int profile; /* 0 mixed, 1 random */
	struct expect exp[MAX_USERS + 1];
};

static double *lat[N_OPS];
static size_t n_lat[N_OPS];

static void timed(enum op op, double t0)
{
	lat[op][n_lat[op]++] = (now() - t0) * 1000.0;
}

/* State of one session under PROFILE=random. */
struct rstate {
	uint64_t rng;
	long cur;      /* messages in the mailbox as this session knows it */
	long appended; /* of which this session appended (and may expunge) */
	char *msg;     /* APPEND buffer */
};

#define RANDOM_MSG_MAX (64 * 1024)

/* Writes a real-looking message of one of four sizes into st->msg. */
static int random_message(struct rstate *st, int user, int s, long it)
{
	static const char *const words[] = {"report",  "meeting", "budget", "review",
					    "project", "update",  "notes",  "plan",
					    "invoice", "travel",  "lunch",  "release"};
	static const size_t sizes[] = {600, 2500, 9000, 30000};
	size_t nw = sizeof words / sizeof words[0];
	size_t want = sizes[rng_next(&st->rng) % 4];
	int n = snprintf(st->msg, RANDOM_MSG_MAX,
			 "Return-Path: <sender%ld@partner.test>\r\n"
			 "From: \"Partner %ld\" <sender%ld@partner.test>\r\n"
			 "To: test%d@example.test\r\n"
			 "Subject: %s %s %ld\r\n"
			 "Date: Wed, 1 Jan 2020 12:%02ld:00 +0000\r\n"
			 "Message-ID: <rnd.%d.%ld.%ld@partner.test>\r\n"
			 "MIME-Version: 1.0\r\n"
			 "Content-Type: text/plain; charset=utf-8\r\n"
			 "\r\n",
			 it % 50, it % 50, it % 50, user, words[rng_next(&st->rng) % nw],
			 words[rng_next(&st->rng) % nw], it, it % 60, s, it, (long)getpid());
	if (n < 0)
		fail("message header");
	size_t len = (size_t)n;
	while (len + 80 < want) {
		int k = snprintf(st->msg + len, RANDOM_MSG_MAX - len, "%s %s %s %s %s %s %s.\r\n",
				 words[rng_next(&st->rng) % nw], words[rng_next(&st->rng) % nw],
				 words[rng_next(&st->rng) % nw], words[rng_next(&st->rng) % nw],
				 words[rng_next(&st->rng) % nw], words[rng_next(&st->rng) % nw],
				 words[rng_next(&st->rng) % nw]);
		if (k < 0)
			fail("message body");
		len += (size_t)k;
	}
	return (int)len;
}

/* One loop of the random concurrent profile (issue 25): the proportions
 * are written here and drawn from the session's seeded generator, so both
 * servers see the same command sequence.
 *   1/2  LIST "" "*" and STATUS INBOX (MESSAGES UNSEEN UIDNEXT)
 *   1    SELECT INBOX, FETCH of 20 messages (FLAGS ENVELOPE), UID FETCH of
 *        one whole body (BODY.PEEK[])
 *   1/2  STORE +FLAGS then -FLAGS of one random flag on a random message:
 *        \Flagged, \Answered, \Draft or $Label1..$Label5 (none of which the
 *        mail set carries, so the state comes back; \Seen is left alone
 *        because the mixed profile counts UNSEEN)
 *   1/4  STORE \Deleted + EXPUNGE of a message this session appended
 *   1    APPEND of a message of 0.6, 2.5, 9 or 30 KB
 * Every answer is checked; with one session per mailbox (strict) the
 * counts must be exact.  Returns the number of commands sent. */
static uint64_t random_iter(struct conn *c, const struct expect *e, bool strict, long it, int s,
			    struct rstate *st, struct result *res)
{
	struct resp r;
	uint64_t ops = 0;
	double t;
	if (rng_next(&st->rng) % 2 == 0) {
		t = now();
		command(c, &r, NULL, 0, "LIST \"\" \"*\"");
		timed(OP_LIST, t);
		if (r.lists < 1)
			fail("LIST: no mailboxes");
		t = now();
		command(c, &r, NULL, 0, "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)");
		timed(OP_STATUS, t);
		if (r.status < 0 || (strict && st->cur >= 0 && r.status != st->cur))
			fail("STATUS: MESSAGES %ld, expected %ld", r.status, st->cur);
		ops += 2;
	}
	t = now();
	command(c, &r, NULL, 0, "SELECT INBOX");
	timed(OP_SELECT, t);
	if (r.exists < e->messages || (strict && st->cur >= 0 && r.exists != st->cur))
		fail("SELECT: %ld EXISTS, expected %ld", r.exists, st->cur);
	st->cur = r.exists;
	ops++;

	long a = 1 + (long)(rng_next(&st->rng) % (uint64_t)(e->messages - 19));
	t = now();
	command(c, &r, NULL, 0, "FETCH %ld:%ld (FLAGS ENVELOPE)", a, a + 19);
	timed(OP_FETCH, t);
	if (r.fetches != 20)
		fail("FETCH %ld:%ld: %ld FETCH responses", a, a + 19, r.fetches);
	long uid = 1 + (long)(rng_next(&st->rng) % (uint64_t)e->messages);
	t = now();
	command(c, &r, NULL, 0, "UID FETCH %ld BODY.PEEK[]", uid);
	timed(OP_BODY, t);
	if (r.fetches != 1 || r.literals != 1 || r.octets == 0)
		fail("UID FETCH %ld BODY.PEEK[]: %ld FETCH, %ld literals", uid, r.fetches,
		     r.literals);
	res->octets += r.octets;
	res->crc += r.crc;
	ops += 2;

	if (rng_next(&st->rng) % 2 == 0) {
		static const char *const flags[] = {"\\Flagged", "\\Answered", "\\Draft",
						    "$Label1",   "$Label2",    "$Label3",
						    "$Label4",   "$Label5"};
		const char *f = flags[rng_next(&st->rng) % 8];
		long seq = 1 + (long)(rng_next(&st->rng) % (uint64_t)e->messages);
		want_flag = f;
		t = now();
		command(c, &r, NULL, 0, "STORE %ld +FLAGS (%s)", seq, f);
		timed(OP_STORE, t);
		if (strict && (r.fetches != 1 || r.flagged != 1))
			fail("STORE +FLAGS (%s): %ld FETCH, %ld with it", f, r.fetches, r.flagged);
		t = now();
		command(c, &r, NULL, 0, "STORE %ld -FLAGS (%s)", seq, f);
		timed(OP_STORE, t);
		if (strict && (r.fetches != 1 || r.flagged != 0))
			fail("STORE -FLAGS (%s): %ld FETCH, %ld with it", f, r.fetches, r.flagged);
		want_flag = "\\Flagged";
		ops += 2;
	}

	/* Drawn every loop so the sequence does not depend on strict. */
	bool expunge = rng_next(&st->rng) % 4 == 0;
	if (expunge && strict && st->appended > 0) {
		t = now();
		command(c, &r, NULL, 0, "STORE %ld +FLAGS.SILENT (\\Deleted)", st->cur);
		command(c, &r, NULL, 0, "EXPUNGE");
		timed(OP_EXPUNGE, t);
		if (r.expunged != 1)
			fail("EXPUNGE: %ld EXPUNGE responses, expected 1", r.expunged);
		st->cur--;
		st->appended--;
		ops += 2;
	}

	int mlen = random_message(st, c->user, s, it);
	t = now();
	{
		char tag[16], head[160];
		snprintf(tag, sizeof tag, "A%u", ++c->tag);
		int hn = snprintf(head, sizeof head,
				  "%s APPEND INBOX \"01-Jan-2020 12:00:00 +0000\" {%d+}\r\n", tag,
				  mlen);
		send_all(c, head, (size_t)hn);
		send_all(c, st->msg, (size_t)mlen);
		send_all(c, "\r\n", 2);
		r = (struct resp){.exists = -1, .searched = -1, .status = -1};
		responses(c, tag, &r, false, "APPEND");
	}
	timed(OP_APPEND, t);
	st->cur++;
	st->appended++;
	ops++;
	return ops;
}

static void session(const struct params *p, int s, int ready_fd, int go_fd, int done_fd,
		    int quit_fd)
{
	struct conn c = {.fd = -1, .session = s, .user = (s - 1) % p->users + 1};
	const struct expect *e = &p->exp[c.user];
	bool strict = p->sessions <= p->users;
	struct result res = {0};
	struct resp r;
	cur_session = s;
	for (int i = 0; i < N_OPS; i++) {
		lat[i] = calloc((size_t)p->iterations * (size_t)(p->bodies + 3), sizeof(double));
		if (lat[i] == NULL)
			fail("out of memory");
	}
	c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c.fd < 0)
		fail("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c.fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		fail("connect: %s", strerror(errno));
	size_t n;
	char *g = line(&c, &n);
	if (strncmp(g, "* OK", 4) != 0)
		fail("greeting: %.200s", g);
	command(&c, &r, NULL, 0, "LOGIN test%d@example.test pass", c.user);
	char x = 'r';
	if (write(ready_fd, &x, 1) != 1)
		fail("ready pipe");
	while (read(go_fd, &x, 1) < 0 && errno == EINTR)
		;

	double loop0 = now();
	uint64_t rng = 0x5eed0000ULL + (uint64_t)s;
	long exists0 = -1;
	char msg[1024];
	struct rstate rs = {.rng = rng, .cur = -1};
	if (p->profile == 1) {
		rs.msg = malloc(RANDOM_MSG_MAX);
		if (rs.msg == NULL)
			fail("out of memory");
	}
	for (long it = 0; it < p->iterations && p->profile == 1; it++)
		res.ops += random_iter(&c, e, strict, it, s, &rs, &res);
	for (long it = 0; it < p->iterations && p->profile == 0; it++) {
		double t = now();
		command(&c, &r, NULL, 0, "SELECT INBOX");
		timed(OP_SELECT, t);
		if (r.exists < 0)
			fail("SELECT without EXISTS");
		if (exists0 < 0)
			exists0 = r.exists;
		if (r.exists < e->messages || (strict && r.exists != exists0 + it))
			fail("SELECT: %ld EXISTS, expected %ld", r.exists,
			     strict ? exists0 + it : e->messages);

		t = now();
		command(&c, &r, NULL, 0, "FETCH 1:100 (FLAGS ENVELOPE)");
		timed(OP_FETCH, t);
		if (r.fetches != 100)
			fail("FETCH 1:100: %ld FETCH responses", r.fetches);

		for (long b = 0; b < p->bodies; b++) {
			long uid = 1 + (long)(rng_next(&rng) % (uint64_t)e->messages);
			t = now();
			command(&c, &r, NULL, 0, "UID FETCH %ld BODY.PEEK[]", uid);
			timed(OP_BODY, t);
			if (r.fetches != 1 || r.literals != 1 || r.octets == 0)
				fail("UID FETCH %ld BODY.PEEK[]: %ld FETCH, %ld literals, %" PRIu64
				     " octets",
				     uid, r.fetches, r.literals, r.octets);
			res.octets += r.octets;
			res.crc += r.crc;
		}

		long seq = 1 + (long)(rng_next(&rng) % (uint64_t)e->messages);
		t = now();
		command(&c, &r, NULL, 0, "STORE %ld +FLAGS (\\Flagged)", seq);
		timed(OP_STORE, t);
		if (strict && (r.fetches != 1 || r.flagged != 1))
			fail("STORE +FLAGS: %ld FETCH, %ld flagged", r.fetches, r.flagged);
		t = now();
		command(&c, &r, NULL, 0, "STORE %ld -FLAGS (\\Flagged)", seq);
		timed(OP_STORE, t);
		if (strict && (r.fetches != 1 || r.flagged != 0))
			fail("STORE -FLAGS: %ld FETCH, %ld flagged", r.fetches, r.flagged);

		static const char *const searches[3] = {"SUBJECT quarterly", "UNSEEN",
							"SINCE 1-Jun-2024"};
		long want[3] = {e->subject, e->unseen, e->since};
		for (int k = 0; k < 3; k++) {
			if (!(p->searches & (1L << k)))
				continue;
			t = now();
			command(&c, &r, NULL, 0, "UID SEARCH %s", searches[k]);
			timed((enum op)(OP_SUBJECT + k), t);
			if (r.searched < 0 || (strict && r.searched != want[k]))
				fail("UID SEARCH %s: %ld hits, expected %ld", searches[k],
				     r.searched, want[k]);
		}

		int mlen =
		    snprintf(msg, sizeof msg,
			     "From: Bench Client <bench@client.test>\r\n"
			     "To: test%d@example.test\r\n"
			     "Subject: bench append %d %ld\r\n"
			     "Date: Wed, 1 Jan 2020 12:00:00 +0000\r\n"
			     "Message-ID: <append.%d.%ld.%ld@client.test>\r\n"
			     "\r\n"
			     "A small message appended by bench/imap/imapload.c, session %d,\r\n"
			     "iteration %ld.  It matches none of the searches of the load.\r\n"
			     "%s\r\n",
			     c.user, s, it, s, it, (long)getpid(), s, it,
			     "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
			     "eiusmod tempor incididunt ut labore et dolore magna aliqua.");
		if (mlen < 0 || (size_t)mlen >= sizeof msg)
			fail("message too long");
		/* the literal and the CRLF that ends the command */
		char tail[1100];
		memcpy(tail, msg, (size_t)mlen);
		memcpy(tail + mlen, "\r\n", 2);
		t = now();
		{
			char tag[16];
			snprintf(tag, sizeof tag, "A%u", ++c.tag);
			char head[160];
			int hn = snprintf(
			    head, sizeof head,
			    "%s APPEND INBOX (\\Seen) \"01-Jan-2020 12:00:00 +0000\" {%d+}\r\n",
			    tag, mlen);
			send_all(&c, head, (size_t)hn);
			send_all(&c, tail, (size_t)mlen + 2);
			r = (struct resp){.exists = -1, .searched = -1};
			responses(&c, tag, &r, false, "APPEND");
		}
		timed(OP_APPEND, t);

		t = now();
		{
			char tag[16], cmd[32];
			snprintf(tag, sizeof tag, "A%u", ++c.tag);
			int cn = snprintf(cmd, sizeof cmd, "%s IDLE\r\n", tag);
			send_all(&c, cmd, (size_t)cn);
			r = (struct resp){.exists = -1, .searched = -1};
			responses(&c, tag, &r, true, "IDLE");
			if (p->idle_ms > 0) {
				struct timespec ts = {p->idle_ms / 1000,
						      (p->idle_ms % 1000) * 1000000L};
				nanosleep(&ts, NULL);
			}
			send_all(&c, "DONE\r\n", 6);
			responses(&c, tag, &r, false, "IDLE/DONE");
		}
		timed(OP_IDLE, t);

		t = now();
		command(&c, &r, NULL, 0, "NOOP");
		timed(OP_NOOP, t);
		res.ops += (uint64_t)(7 + p->bodies + ((p->searches & 1) != 0) +
				      ((p->searches & 2) != 0) + ((p->searches & 4) != 0));
	}
	res.secs = now() - loop0;
	for (int i = 0; i < N_OPS; i++)
		res.n_lat[i] = n_lat[i];
	res.ok = 1;
	/* report, then wait for the parent's CPU sample before logging out */
	const char *src = (const char *)&res;
	size_t left = sizeof res;
	while (left > 0) {
		ssize_t w = write(done_fd, src, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			fail("result pipe");
		src += w;
		left -= (size_t)w;
	}
	for (int i = 0; i < N_OPS; i++) {
		src = (const char *)lat[i];
		left = n_lat[i] * sizeof(double);
		while (left > 0) {
			ssize_t w = write(done_fd, src, left);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				fail("result pipe");
			src += w;
			left -= (size_t)w;
		}
	}
	while (read(quit_fd, &x, 1) < 0 && errno == EINTR)
		;
	logging_out = true;
	command(&c, &r, NULL, 0, "LOGOUT");
	close(c.fd);
	_exit(0);
}

/* CPU clock ticks of root's process tree plus its reaped children. */
static long long tree_cpu(int root)
{
	static int ppid[4194304 + 1];
	static long long cpu[4194304 + 1];
	static long long reaped;
	int maxpid = 0;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return -1;
	struct dirent *de;
	memset(ppid, 0, sizeof ppid);
	while ((de = readdir(d)) != NULL) {
		int pid = atoi(de->d_name);
		if (pid <= 0 || pid > 4194304)
			continue;
		char path[64], buf[1024];
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		char *p = strrchr(buf, ')');
		if (p == NULL)
			continue;
		/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
		 * majflt cmajflt utime stime cutime cstime */
		char state;
		int pp;
		unsigned long long ut, st;
		long long cut, cst;
		if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
			   &state, &pp, &ut, &st, &cut, &cst) != 6)
			continue;
		ppid[pid] = pp;
		cpu[pid] = (long long)(ut + st);
		if (pid == root)
			reaped = cut + cst;
		if (pid > maxpid)
			maxpid = pid;
	}
	closedir(d);
	/* walk: a pid is in the tree if following ppid reaches root */
	long long total = reaped;
	for (int pid = 1; pid <= maxpid; pid++) {
		if (ppid[pid] == 0 && pid != root)
			continue;
		int q = pid, hops = 0;
		while (q != root && q > 1 && hops < 64) {
			q = ppid[q];
			hops++;
		}
		if (q == root)
			total += cpu[pid];
	}
	return total;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double tv(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static void read_all(int fd, void *dst, size_t n)
{
	char *p = dst;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "imapload: a session died\n");
			exit(1);
		}
		p += r;
		n -= (size_t)r;
	}
}

int main(int argc, char **argv)
{
	if (argc < 6 || argc > 12) {
		fputs("usage: imapload PORT USERS SESSIONS ITERATIONS EXPECT [ROOTPID [BODIES "
		      "[IDLE_MS [QUICKACK [SEARCHES [PROFILE]]]]]]\n",
		      stderr);
		return 2;
	}
	static struct params p;
	p.port = atoi(argv[1]);
	p.users = atoi(argv[2]);
	p.sessions = atoi(argv[3]);
	p.iterations = atol(argv[4]);
	int root = argc > 6 ? atoi(argv[6]) : 0;
	p.bodies = argc > 7 ? atol(argv[7]) : 3;
	p.idle_ms = argc > 8 ? atol(argv[8]) : 0;
	quickack = argc > 9 && atoi(argv[9]) != 0;
	p.searches = argc > 10 ? atol(argv[10]) : 7;
	if (argc > 11 && strcmp(argv[11], "random") == 0)
		p.profile = 1;
	else if (argc > 11 && strcmp(argv[11], "mixed") != 0) {
		fputs("imapload: PROFILE is mixed or random\n", stderr);
		return 2;
	}
	if (p.profile == 1)
		op_names = random_names;
	if (p.port <= 0 || p.port > 65535 || p.users < 1 || p.users > MAX_USERS || p.sessions < 1 ||
	    p.sessions > 5000 || p.iterations < 1 || p.bodies < 0 || p.idle_ms < 0 ||
	    p.searches < 0 || p.searches > 7) {
		fputs("imapload: bad arguments\n", stderr);
		return 2;
	}
	FILE *f = fopen(argv[5], "r");
	if (f == NULL) {
		perror(argv[5]);
		return 2;
	}
	char l[256];
	while (fgets(l, sizeof l, f) != NULL) {
		int u;
		struct expect e;
		if (l[0] == '#')
			continue;
		if (sscanf(l, "%d %ld %ld %ld %ld", &u, &e.messages, &e.subject, &e.unseen,
			   &e.since) == 5 &&
		    u >= 1 && u <= MAX_USERS)
			p.exp[u] = e;
	}
	fclose(f);
	for (int u = 1; u <= p.users; u++)
		if (p.exp[u].messages < 100) {
			fprintf(stderr, "imapload: %s: no line for user %d (or < 100 messages)\n",
				argv[5], u);
			return 2;
		}

	int ready[2], go[2], quit[2];
	if (pipe(ready) < 0 || pipe(go) < 0 || pipe(quit) < 0)
		return 1;
	pid_t *pids = calloc((size_t)p.sessions, sizeof *pids);
	int *rfd = calloc((size_t)p.sessions, sizeof *rfd);
	if (pids == NULL || rfd == NULL)
		return 1;
	for (int s = 1; s <= p.sessions; s++) {
		int d[2];
		if (pipe(d) < 0)
			return 1;
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			close(quit[1]);
			close(d[0]);
			session(&p, s, ready[1], go[0], d[1], quit[0]);
		}
		close(d[1]);
		pids[s - 1] = pid;
		rfd[s - 1] = d[0];
	}
	close(ready[1]);
	close(go[0]);
	close(quit[0]);
	for (int s = 0; s < p.sessions; s++) {
		char x;
		ssize_t n;
		do
			n = read(ready[0], &x, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1) {
			fprintf(stderr, "imapload: a session failed to log in\n");
			return 1;
		}
	}
	struct rusage ru0, ru1;
	long long c0 = root > 0 ? tree_cpu(root) : 0;
	getrusage(RUSAGE_CHILDREN, &ru0);
	double t0 = now();
	close(go[1]);

	struct result tot = {0};
	double rate_sum = 0, fastest = 0;
	double *all[N_OPS];
	size_t n_all[N_OPS] = {0};
	for (int i = 0; i < N_OPS; i++) {
		all[i] = calloc((size_t)p.sessions * (size_t)p.iterations * (size_t)(p.bodies + 3),
				sizeof(double));
		if (all[i] == NULL)
			return 1;
	}
	for (int s = 0; s < p.sessions; s++) {
		struct result r;
		read_all(rfd[s], &r, sizeof r);
		if (!r.ok)
			return 1;
		tot.ops += r.ops;
		if (r.secs > 0)
			rate_sum += (double)r.ops / r.secs;
		if (s == 0 || r.secs < fastest)
			fastest = r.secs;
		tot.octets += r.octets;
		tot.crc += r.crc;
		for (int i = 0; i < N_OPS; i++) {
			read_all(rfd[s], all[i] + n_all[i], r.n_lat[i] * sizeof(double));
			n_all[i] += r.n_lat[i];
		}
	}
	double t1 = now();
	long long c1 = root > 0 ? tree_cpu(root) : 0;
	close(quit[1]);
	int errors = 0;
	for (int s = 0; s < p.sessions; s++) {
		int st;
		waitpid(pids[s], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			errors++;
	}
	getrusage(RUSAGE_CHILDREN, &ru1);
	double ccpu = tv(ru1.ru_utime) - tv(ru0.ru_utime) + tv(ru1.ru_stime) - tv(ru0.ru_stime);
	long hz = sysconf(_SC_CLK_TCK);
	double wall = t1 - t0;
	printf("wall=%.3f\tops=%" PRIu64 "\tops_s=%.1f\trate_sum=%.1f\tfastest=%.3f"
	       "\tserver_cpu=%.3f\tclient_cpu=%.3f\toctets=%" PRIu64 "\tchecksum=%012" PRIx64
	       "\terrors=%d",
	       wall, tot.ops, (double)tot.ops / wall, rate_sum, fastest,
	       (double)(c1 - c0) / (double)hz, ccpu, tot.octets, tot.crc & (uint64_t)0xFFFFFFFFFFFF,
	       errors);
	for (int i = 0; i < N_OPS; i++) {
		double med = 0;
		if (n_all[i] > 0) {
			qsort(all[i], n_all[i], sizeof(double), cmp_double);
			med = n_all[i] % 2 ? all[i][n_all[i] / 2]
					   : (all[i][n_all[i] / 2 - 1] + all[i][n_all[i] / 2]) / 2;
		}
		printf("\tms_%s=%.3f", op_names[i], med);
	}
	putchar('\n');
	return errors ? 1 : 0;
}
