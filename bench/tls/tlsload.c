/*
 * tlsload.c - full TLS handshakes per second against an implicit-TLS IMAP
 * listener (imaps), for bench/tls/run.sh.
 *
 *   tlsload PORT PROCS SECONDS [ROOTPID [SUITES [GROUPS [SNI]]]]
 *
 * Forks PROCS processes; once all have built their client context they are
 * released together and each runs, until SECONDS have passed, a loop of
 *
 *   connect to 127.0.0.1:PORT, TLS 1.3 handshake (SNI, no session offered),
 *   read the IMAP greeting (one line, must start "* OK"), send close_notify,
 *   close
 *
 * so every handshake is a full one: the client never offers a session or
 * PSK (its session cache is off; the tickets the server sends are counted
 * and dropped).  The client does not verify the certificate (a client
 * cost, the same for every server).  TLS 1.3 only; SUITES (default
 * TLS_AES_256_GCM_SHA384) and GROUPS (default X25519) are the only ones
 * offered, so every server negotiates the same cipher and key exchange.
 *
 * If ROOTPID is given (not 0), the CPU time (user+system) of that process's
 * tree plus the children it reaped is read from /proc at the release and
 * 0.5 s after the last client process has finished (so a server that forks
 * a process per connection has reaped the last ones).
 *
 * With TLSLOAD_HIST=FILE in the environment, the latency histogram is
 * added to the one in FILE (created if missing) and the percentiles are
 * those of the sum, so a run made of several slices reports them over all
 * its slices.
 *
 * Prints one line of tab-separated key=value fields: handshakes (completed
 * with a greeting), failed, wall (s), hs_s, server_cpu and client_cpu (s),
 * the 50th/90th/99th percentile of the time from connect() to the
 * greeting (ms), and what the first handshake negotiated (version, cipher,
 * group, the server's signature and key), resumed handshakes (must be 0)
 * and tickets received per handshake.  Exit 1 if any handshake failed.
 *
 * Build: cc -O2 -Wall -Wextra -o tlsload tlsload.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define MAX_PROCS 256
/* Latency histogram: 20 us buckets up to 4 s, then one overflow bucket. */
#define BUCKET_US 20
#define BUCKETS 200000
/* A process that fails this many times in a row gives up. */
#define MAX_FAIL_RUN 50

struct slot {
	uint64_t ok;
	uint64_t failed;
	uint64_t resumed;
	uint64_t tickets;
	char err[256];
	char info[512]; /* what the first handshake negotiated (slot 0 only) */
	uint32_t hist[BUCKETS + 1];
};

static struct slot *slots;
static volatile double *deadline; /* CLOCK_MONOTONIC seconds, shared */
static int my_tickets;            /* tickets seen in the current connection */

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

static void set_err(struct slot *s, const char *what)
{
	if (s->err[0] != '\0')
		return;
	unsigned long e = ERR_peek_last_error();
	char detail[160] = "";
	if (e != 0)
		ERR_error_string_n(e, detail, sizeof detail);
	snprintf(s->err, sizeof s->err, "%s%s%s%s%s", what, errno ? ": " : "",
		 errno ? strerror(errno) : "", detail[0] ? " / " : "", detail);
}

/* Called for every session (ticket) the server sends; returning 0 tells
 * OpenSSL we kept no reference, so it is freed and never offered. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	(void)ssl;
	(void)sess;
	my_tickets++;
	return 0;
}

static SSL_CTX *client_ctx(const char *suites, const char *groups)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	if (c == NULL)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(c, suites) || !SSL_CTX_set1_groups_list(c, groups)) {
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
	/* No internal store: the callback sees each ticket, nothing is kept. */
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(c, new_session_cb);
	return c;
}

static void describe(SSL *ssl, char *out, size_t outsz)
{
	int nid = SSL_get_negotiated_group(ssl);
	const char *group = "?";
	if (nid > 0 && (nid & TLSEXT_nid_unknown) == 0)
		group = OBJ_nid2sn(nid);
	int type = 0, hash = 0;
	char sig[64] = "?";
	if (SSL_get_peer_signature_type_nid(ssl, &type) == 1 &&
	    SSL_get_peer_signature_nid(ssl, &hash) == 1)
		snprintf(sig, sizeof sig, "%s+%s", type == EVP_PKEY_EC ? "ECDSA" : OBJ_nid2sn(type),
			 OBJ_nid2sn(hash));
	char key[64] = "?";
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (cert != NULL) {
		EVP_PKEY *pk = X509_get0_pubkey(cert);
		if (pk != NULL) {
			char gname[64] = "";
			size_t glen = 0;
			if (EVP_PKEY_get_group_name(pk, gname, sizeof gname, &glen) == 1)
				snprintf(key, sizeof key, "%s-%s", EVP_PKEY_get0_type_name(pk),
					 gname);
			else
				snprintf(key, sizeof key, "%s-%d", EVP_PKEY_get0_type_name(pk),
					 EVP_PKEY_get_bits(pk));
		}
		X509_free(cert);
	}
	snprintf(out, outsz, "version=%s\tcipher=%s\tgroup=%s\tsig=%s\tkey=%s",
		 SSL_get_version(ssl), SSL_get_cipher_name(ssl), group, sig, key);
}

/* One connection; 0 on success (a greeting was read). */
static int one(SSL_CTX *ctx, const struct sockaddr_in *sa, const char *sni, struct slot *s,
	       bool first)
{
	int rc = -1;
	SSL *ssl = NULL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_err(s, "socket");
		return -1;
	}
	struct timeval to = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &to, sizeof to);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &to, sizeof to);
	int on = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
	errno = 0;
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
		set_err(s, "connect");
		goto out;
	}
	ssl = SSL_new(ctx);
	if (ssl == NULL || !SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, sni)) {
		set_err(s, "SSL_new");
		goto out;
	}
	errno = 0;
	ERR_clear_error();
	if (SSL_connect(ssl) != 1) {
		set_err(s, "handshake");
		goto out;
	}
	char buf[1024];
	size_t got = 0;
	while (got < 4 || memchr(buf, '\n', got) == NULL) {
		if (got == sizeof buf) {
			set_err(s, "greeting longer than 1024 octets");
			goto out;
		}
		errno = 0;
		int n = SSL_read(ssl, buf + got, (int)(sizeof buf - got));
		if (n <= 0) {
			set_err(s, "reading the greeting");
			goto out;
		}
		got += (size_t)n;
	}
	if (memcmp(buf, "* OK", 4) != 0) {
		char msg[128];
		size_t l = got < 60 ? got : 60;
		snprintf(msg, sizeof msg, "greeting is not * OK: %.*s", (int)l, buf);
		errno = 0;
		set_err(s, msg);
		goto out;
	}
	if (SSL_session_reused(ssl))
		s->resumed++;
	if (first)
		describe(ssl, s->info, sizeof s->info);
	SSL_shutdown(ssl); /* our close_notify; we do not wait for theirs */
	rc = 0;
out:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return rc;
}

static void child(int idx, int port, const char *suites, const char *groups, const char *sni,
		  int ready_w, int go_r)
{
	struct slot *s = &slots[idx];
	SSL_CTX *ctx = client_ctx(suites, groups);
	if (ctx == NULL) {
		set_err(s, "client context (bad SUITES or GROUPS?)");
		s->failed++;
	}
	char c = 'r';
	if (write(ready_w, &c, 1) != 1)
		_exit(1);
	close(ready_w);
	while (read(go_r, &c, 1) < 0 && errno == EINTR)
		;
	if (ctx == NULL)
		_exit(1);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	double end = *deadline;
	int fail_run = 0;
	bool first = idx == 0;
	double t;
	while ((t = now()) < end) {
		my_tickets = 0;
		if (one(ctx, &sa, sni, s, first) == 0) {
			double us = (now() - t) * 1e6;
			size_t b = (size_t)(us / BUCKET_US);
			s->hist[b < BUCKETS ? b : BUCKETS]++;
			s->ok++;
			s->tickets += (uint64_t)my_tickets;
			first = false;
			fail_run = 0;
		} else {
			s->failed++;
			if (++fail_run >= MAX_FAIL_RUN)
				break;
			usleep(10000);
		}
	}
	SSL_CTX_free(ctx);
	_exit(0);
}

/* ---------------------------------------------------------- server CPU */

struct pinfo {
	int pid, ppid;
	long long ticks;
};

static int cmp_pid(const void *a, const void *b)
{
	int x = ((const struct pinfo *)a)->pid, y = ((const struct pinfo *)b)->pid;
	return (x > y) - (x < y);
}

static const struct pinfo *find(const struct pinfo *v, size_t n, int pid)
{
	struct pinfo key = {.pid = pid};
	return bsearch(&key, v, n, sizeof *v, cmp_pid);
}

/* Clock ticks (user+system) of root's process tree plus the children root
 * has reaped; -1 if root is gone. */
static long long tree_cpu(int root)
{
	DIR *d = opendir("/proc");
	if (d == NULL)
		return -1;
	size_t n = 0, cap = 1024;
	struct pinfo *v = malloc(cap * sizeof *v);
	long long reaped = -1;
	struct dirent *de;
	while (v != NULL && (de = readdir(d)) != NULL) {
		int pid = atoi(de->d_name);
		if (pid <= 0)
			continue;
		char path[64], buf[1024];
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		size_t got = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[got] = '\0';
		char *p = strrchr(buf, ')');
		if (p == NULL)
			continue;
		/* after ") ": state ppid pgrp session tty tpgid flags minflt
		 * cminflt majflt cmajflt utime stime cutime cstime */
		int pp;
		unsigned long long ut, st;
		long long cut, cst;
		if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
			   &pp, &ut, &st, &cut, &cst) != 5)
			continue;
		if (n == cap) {
			struct pinfo *nv = realloc(v, 2 * cap * sizeof *v);
			if (nv == NULL) {
				free(v);
				v = NULL;
				break;
			}
			v = nv;
			cap *= 2;
		}
		v[n].pid = pid;
		v[n].ppid = pp;
		v[n].ticks = (long long)(ut + st);
		n++;
		if (pid == root)
			reaped = cut + cst;
	}
	closedir(d);
	if (v == NULL || reaped < 0) {
		free(v);
		return -1;
	}
	qsort(v, n, sizeof *v, cmp_pid);
	long long total = reaped;
	for (size_t i = 0; i < n; i++) {
		const struct pinfo *q = &v[i];
		int hops = 0;
		while (q != NULL && q->pid != root && q->ppid > 1 && hops++ < 64)
			q = find(v, n, q->ppid);
		if (q != NULL && q->pid == root)
			total += v[i].ticks;
	}
	free(v);
	return total;
}

/* ------------------------------------------------------------------ main */

/* Adds the histogram in file (if it exists) to h and writes the sum back. */
static int hist_merge(const char *file, uint64_t *h)
{
	size_t n = BUCKETS + 1;
	uint64_t *old = calloc(n, sizeof *old);
	if (old == NULL)
		return -1;
	FILE *f = fopen(file, "rb");
	if (f != NULL) {
		size_t got = fread(old, sizeof *old, n, f);
		fclose(f);
		if (got != n) {
			free(old);
			errno = EINVAL;
			return -1;
		}
		for (size_t b = 0; b < n; b++)
			h[b] += old[b];
	} else if (errno != ENOENT) {
		free(old);
		return -1;
	}
	free(old);
	f = fopen(file, "wb");
	if (f == NULL)
		return -1;
	size_t put = fwrite(h, sizeof *h, n, f);
	if (fclose(f) != 0 || put != n)
		return -1;
	return 0;
}

static double percentile(const uint64_t *h, uint64_t total, double p)
{
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)((double)total * p);
	if (want == 0)
		want = 1;
	uint64_t seen = 0;
	for (size_t b = 0; b <= BUCKETS; b++) {
		seen += h[b];
		if (seen >= want)
			return ((double)b + 0.5) * BUCKET_US / 1000.0;
	}
	return (double)BUCKETS * BUCKET_US / 1000.0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr,
			"usage: tlsload PORT PROCS SECONDS [ROOTPID [SUITES [GROUPS [SNI]]]]\n");
		return 2;
	}
	int port = atoi(argv[1]);
	int procs = atoi(argv[2]);
	double seconds = atof(argv[3]);
	int root = argc > 4 ? atoi(argv[4]) : 0;
	const char *suites = argc > 5 ? argv[5] : "TLS_AES_256_GCM_SHA384";
	const char *groups = argc > 6 ? argv[6] : "X25519";
	const char *sni = argc > 7 ? argv[7] : "mx.example.test";
	if (port <= 0 || port > 65535 || procs < 1 || procs > MAX_PROCS || seconds <= 0) {
		fprintf(stderr, "tlsload: bad PORT, PROCS (1..%d) or SECONDS\n", MAX_PROCS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* the deadline, then the slots (on their own cache lines) */
	size_t shsz = 64 + (size_t)procs * sizeof(struct slot);
	void *sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("tlsload: mmap");
		return 1;
	}
	deadline = sh;
	slots = (struct slot *)((char *)sh + 64);
	int ready[2], go[2];
	if (pipe(ready) < 0 || pipe(go) < 0) {
		perror("tlsload: pipe");
		return 1;
	}
	pid_t kids[MAX_PROCS];
	for (int i = 0; i < procs; i++) {
		kids[i] = fork();
		if (kids[i] < 0) {
			perror("tlsload: fork");
			for (int j = 0; j < i; j++)
				kill(kids[j], SIGKILL);
			return 1;
		}
		if (kids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			child(i, port, suites, groups, sni, ready[1], go[0]);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (int i = 0; i < procs; i++) {
		char c;
		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "tlsload: a client process died before the start\n");
			break;
		}
	}
	struct rusage ru0, ru1;
	getrusage(RUSAGE_CHILDREN, &ru0);
	long long c0 = root > 0 ? tree_cpu(root) : 0;
	double t0 = now();
	*deadline = t0 + seconds;
	close(go[1]); /* release */
	for (int i = 0; i < procs; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	double wall = now() - t0;
	getrusage(RUSAGE_CHILDREN, &ru1);
	long long c1 = 0;
	if (root > 0) {
		usleep(500000);
		c1 = tree_cpu(root);
	}
	double hz = (double)sysconf(_SC_CLK_TCK);

	uint64_t ok = 0, failed = 0, resumed = 0, tickets = 0;
	uint64_t *hist = calloc(BUCKETS + 1, sizeof *hist);
	if (hist == NULL)
		return 1;
	for (int i = 0; i < procs; i++) {
		ok += slots[i].ok;
		failed += slots[i].failed;
		resumed += slots[i].resumed;
		tickets += slots[i].tickets;
		for (size_t b = 0; b <= BUCKETS; b++)
			hist[b] += slots[i].hist[b];
		if (slots[i].err[0] != '\0')
			fprintf(stderr, "tlsload: process %d: %llu failed, first: %s\n", i,
				(unsigned long long)slots[i].failed, slots[i].err);
	}
	const char *hfile = getenv("TLSLOAD_HIST");
	if (hfile != NULL && hfile[0] != '\0' && hist_merge(hfile, hist) < 0) {
		fprintf(stderr, "tlsload: %s: %s\n", hfile, strerror(errno));
		return 1;
	}
	uint64_t in_hist = 0; /* this pass's handshakes, or with the file's */
	for (size_t b = 0; b <= BUCKETS; b++)
		in_hist += hist[b];
	double ccpu = tv(ru1.ru_utime) - tv(ru0.ru_utime) + tv(ru1.ru_stime) - tv(ru0.ru_stime);
	double scpu = (root > 0 && c0 >= 0 && c1 >= 0) ? (double)(c1 - c0) / hz : -1;
	printf("handshakes=%llu\tfailed=%llu\twall=%.3f\ths_s=%.1f\tserver_cpu=%.3f\t"
	       "client_cpu=%.3f\tlat_p50=%.3f\tlat_p90=%.3f\tlat_p99=%.3f\tresumed=%llu\t"
	       "tickets=%.2f\t%s\n",
	       (unsigned long long)ok, (unsigned long long)failed, wall, (double)ok / wall, scpu,
	       ccpu, percentile(hist, in_hist, 0.5), percentile(hist, in_hist, 0.9),
	       percentile(hist, in_hist, 0.99), (unsigned long long)resumed,
	       ok ? (double)tickets / (double)ok : 0.0,
	       slots[0].info[0] ? slots[0].info : "version=?");
	free(hist);
	return (failed > 0 || ok == 0) ? 1 : 0;
}
