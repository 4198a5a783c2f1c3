/*
 * test-authlimit.c - unit tests for src/auth/authlimit.c with a fake
 * clock: doubling delays and their cap, blocks per IP and per account,
 * the window, IPv6 /64 grouping, resets on success, eviction, and sharing
 * the table with a forked child.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "authlimit.h"
#include "log.h"
#include "test.h"

static uint64_t fake_ms = 1700000000000ull;

static uint64_t fake_now(void)
{
	return fake_ms;
}

static const struct authlimit_config cfg = {
    .fail_delay_ms = 500,
    .fail_delay_max_ms = 4000,
    .block_after = 5,
    .window_s = 600,
    .block_time_s = 900,
    .prefix_v4 = 24,
    .prefix_v6 = 64,
    .prefix_block_after = 12,
    .max_pending_ip = 3,
    .max_pending_account = 4,
};

static void setup(size_t entries)
{
	log_set_level(LOG_ERROR); /* keep the test output readable */
	authlimit_set_clock(fake_now);
	fake_ms = 1700000000000ull;
	if (authlimit_init(&cfg, entries, NULL) < 0)
		test_fail(__FILE__, __LINE__, "authlimit_init");
}

static struct sockaddr_storage v4(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	in->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &in->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	in6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &in6->sin6_addr);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static struct authlimit_verdict check(const struct sockaddr *ip, const char *acct)
{
	struct authlimit_verdict v;
	authlimit_check(ip, acct, &v);
	return v;
}

TEST(authlimit_off_without_init)
{
	log_set_level(LOG_ERROR);
	authlimit_shutdown();
	struct sockaddr_storage a = v4("192.0.2.1");
	for (int i = 0; i < 20; i++)
		authlimit_fail(SA(a), "u@example.test");
	struct authlimit_verdict v = check(SA(a), "u@example.test");
	CHECK(!v.blocked);
	CHECK_INT(v.delay_ms, 0);
}

TEST(authlimit_delay_doubles_to_cap_then_blocks)
{
	setup(0);
	struct sockaddr_storage a = v4("192.0.2.1");
	CHECK_INT(check(SA(a), "u@example.test").delay_ms, 0);
	static const unsigned want[] = {500, 1000, 2000, 4000};
	for (size_t i = 0; i < 4; i++) {
		authlimit_fail(SA(a), "u@example.test");
		struct authlimit_verdict v = check(SA(a), "u@example.test");
		CHECK(!v.blocked);
		CHECK_INT(v.delay_ms, want[i]);
		/* Another account from the same IP is slowed as much. */
		CHECK_INT(check(SA(a), "other@example.test").delay_ms, want[i]);
	}
	/* The 5th failure blocks the IP for block_time. */
	authlimit_fail(SA(a), "u@example.test");
	struct authlimit_verdict v = check(SA(a), "other@example.test");
	CHECK(v.blocked);
	CHECK_INT(v.blocked_until, (int64_t)(fake_ms / 1000) + 900);
	/* Still blocked just before the end, free after. */
	fake_ms += 899 * 1000;
	CHECK(check(SA(a), "other@example.test").blocked);
	fake_ms += 2 * 1000;
	CHECK(!check(SA(a), "other@example.test").blocked);
	authlimit_shutdown();
}

TEST(authlimit_window_forgets_old_failures)
{
	setup(0);
	struct sockaddr_storage a = v4("198.51.100.7");
	for (int i = 0; i < 4; i++)
		authlimit_fail(SA(a), "u@example.test");
	CHECK_INT(check(SA(a), NULL).delay_ms, 4000);
	fake_ms += 601 * 1000; /* past the window */
	CHECK_INT(check(SA(a), NULL).delay_ms, 0);
	/* A failure now starts a new count: no block at the 5th overall. */
	authlimit_fail(SA(a), "u@example.test");
	CHECK(!check(SA(a), NULL).blocked);
	CHECK_INT(check(SA(a), NULL).delay_ms, 500);
	authlimit_shutdown();
}

TEST(authlimit_ipv6_address_blocks_prefix_counts)
{
	setup(0);
	struct sockaddr_storage a = v6("2001:db8:1:2::1");
	struct sockaddr_storage b = v6("2001:db8:1:2:ffff::9");
	for (int i = 0; i < 5; i++)
		authlimit_fail(SA(a), NULL);
	CHECK(check(SA(a), NULL).blocked);
	CHECK(!check(SA(b), NULL).blocked); /* same /64, other address */
	/* The /64 blocks after prefix_block_after failures of its addresses. */
	for (int i = 0; i < 7; i++) {
		char ip[64];
		snprintf(ip, sizeof ip, "2001:db8:1:2::%d", 100 + i);
		struct sockaddr_storage x = v6(ip);
		authlimit_fail(SA(x), NULL);
	}
	CHECK(check(SA(b), NULL).blocked);
	struct sockaddr_storage c = v6("2001:db8:1:3::1");
	CHECK(!check(SA(c), NULL).blocked); /* next /64 */
	/* IPv4-mapped IPv6 is the IPv4 address. */
	struct sockaddr_storage m = v6("::ffff:192.0.2.50");
	struct sockaddr_storage p = v4("192.0.2.50");
	for (int i = 0; i < 5; i++)
		authlimit_fail(SA(m), NULL);
	CHECK(check(SA(p), NULL).blocked);
	authlimit_shutdown();
}

TEST(authlimit_account_is_slowed_never_blocked)
{
	setup(0);
	struct sockaddr_storage home = v4("203.0.113.5");
	authlimit_success(SA(home), "victim@example.test");
	/* Five attackers, one failure each, on one account. */
	for (int i = 0; i < 5; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "192.0.2.%d", 10 + i);
		struct sockaddr_storage a = v4(ip);
		authlimit_fail(SA(a), "Victim@Example.test"); /* case does not matter */
	}
	/* From a new place the owner is slowed, not refused. */
	struct sockaddr_storage newcomer = v4("198.51.100.1");
	struct authlimit_verdict v = check(SA(newcomer), "victim@example.test");
	CHECK(!v.blocked);
	CHECK_INT(v.delay_ms, 4000);
	struct authlimit_ticket t;
	CHECK_INT(authlimit_begin(SA(newcomer), "victim@example.test", &t, &v), AUTHLIMIT_GO);
	authlimit_end(&t);
	/* Other accounts from there are not affected. */
	CHECK_INT(check(SA(newcomer), "other@example.test").delay_ms, 0);
	/* The user's usual IP gets in without a delay. */
	v = check(SA(home), "victim@example.test");
	CHECK(!v.blocked);
	CHECK_INT(v.delay_ms, 0);
	authlimit_shutdown();
}

TEST(authlimit_pending_counts_before_the_check)
{
	setup(0);
	struct sockaddr_storage a = v4("192.0.2.1");
	struct authlimit_ticket t[8];
	struct authlimit_verdict v;
	/* max_pending_ip 3: three go, the fourth is refused and counted */
	for (int i = 0; i < 3; i++)
		CHECK_INT(authlimit_begin(SA(a), "u@example.test", &t[i], &v), AUTHLIMIT_GO);
	CHECK_INT(authlimit_begin(SA(a), "u@example.test", &t[3], &v), AUTHLIMIT_REFUSE);
	CHECK_INT(v.delay_ms, 500);
	/* pending 3 + failed 1 = 4 < 5: one more would go if a slot frees */
	authlimit_end(&t[0]);
	CHECK_INT(authlimit_begin(SA(a), "u@example.test", &t[0], &v), AUTHLIMIT_GO);
	/* pending 3 + failed 1, a refusal makes failed 2: 5 reached */
	CHECK_INT(authlimit_begin(SA(a), "u@example.test", &t[4], &v), AUTHLIMIT_REFUSE);
	for (int i = 0; i < 3; i++) {
		authlimit_result(SA(a), "u@example.test", false, &v);
		authlimit_end(&t[i]);
	}
	/* 2 refusals + 3 failures: blocked, the right password is not tried */
	CHECK_INT(authlimit_begin(SA(a), "u@example.test", &t[5], &v), AUTHLIMIT_BLOCKED);
	CHECK(check(SA(a), NULL).blocked);
	/* another address of the /24 still gets in */
	struct sockaddr_storage b = v4("192.0.2.2");
	CHECK_INT(authlimit_begin(SA(b), "u@example.test", &t[6], &v), AUTHLIMIT_GO);
	authlimit_result(SA(b), "u@example.test", true, &v);
	authlimit_end(&t[6]);
	authlimit_shutdown();
}

TEST(authlimit_account_bound_is_busy_not_counted)
{
	setup(0);
	struct authlimit_ticket t[6];
	struct authlimit_verdict v;
	for (int i = 0; i < 4; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "192.0.2.%d", 10 + i);
		struct sockaddr_storage a = v4(ip);
		CHECK_INT(authlimit_begin(SA(a), "u@example.test", &t[i], &v), AUTHLIMIT_GO);
	}
	struct sockaddr_storage x = v4("198.51.100.9");
	CHECK_INT(authlimit_begin(SA(x), "u@example.test", &t[4], &v), AUTHLIMIT_BUSY);
	CHECK_INT(check(SA(x), NULL).delay_ms, 0); /* not counted */
	/* an address known to the account is not bound by it */
	struct sockaddr_storage home = v4("203.0.113.5");
	authlimit_success(SA(home), "u@example.test");
	CHECK_INT(authlimit_begin(SA(home), "u@example.test", &t[5], &v), AUTHLIMIT_GO);
	authlimit_end(&t[5]);
	authlimit_end(&t[0]);
	CHECK_INT(authlimit_begin(SA(x), "u@example.test", &t[4], &v), AUTHLIMIT_GO);
	/* stale slots of a dead process expire */
	fake_ms += 121 * 1000;
	struct sockaddr_storage y = v4("198.51.100.10");
	CHECK_INT(authlimit_begin(SA(y), "u@example.test", &t[0], &v), AUTHLIMIT_GO);
	authlimit_shutdown();
}

TEST(authlimit_file_table_unblock)
{
	log_set_level(LOG_ERROR);
	authlimit_set_clock(fake_now);
	char path[] = "/tmp/tern-authlimit-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(authlimit_init(&cfg, 0, path), 0);
	struct sockaddr_storage a = v4("192.0.2.1");
	for (int i = 0; i < 5; i++)
		authlimit_fail(SA(a), "u@example.test");
	CHECK(check(SA(a), NULL).blocked);
	/* another process (the CLI) maps the same file and lifts the block */
	pid_t pid = fork();
	if (pid == 0) {
		struct authlimit_state st;
		if (authlimit_attach(path) < 0 || authlimit_unblock(SA(a), NULL, &st) < 0 ||
		    !st.found || st.blocked_until == 0)
			_exit(1);
		_exit(0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(!check(SA(a), NULL).blocked);
	authlimit_shutdown();
	CHECK_INT(authlimit_attach("/nonexistent/authlimit.table"), -1);
	unlink(path);
}

TEST(authlimit_success_resets_pair_not_ip)
{
	setup(0);
	struct sockaddr_storage a = v4("192.0.2.77");
	for (int i = 0; i < 3; i++)
		authlimit_fail(SA(a), "u@example.test");
	CHECK_INT(check(SA(a), "u@example.test").delay_ms, 2000);
	authlimit_success(SA(a), "u@example.test");
	/* The IP keeps its count: it still gets a delay (and a valid login
	 * to one account does not unlock guessing at others). */
	CHECK_INT(check(SA(a), "other@example.test").delay_ms, 2000);
	for (int i = 0; i < 2; i++)
		authlimit_fail(SA(a), "other@example.test");
	CHECK(check(SA(a), "other@example.test").blocked);
	authlimit_shutdown();
}

TEST(authlimit_eviction_keeps_table_bounded)
{
	setup(8); /* one bucket of 8 entries */
	struct sockaddr_storage a = v4("192.0.2.1");
	for (int i = 0; i < 5; i++)
		authlimit_fail(SA(a), NULL);
	CHECK(check(SA(a), NULL).blocked);
	/* Eight other IPs push the oldest entry out. */
	for (int i = 0; i < 8; i++) {
		char ip[32];
		snprintf(ip, sizeof ip, "198.51.100.%d", i + 1);
		struct sockaddr_storage b = v4(ip);
		fake_ms += 1000;
		authlimit_fail(SA(b), NULL);
	}
	CHECK(!check(SA(a), NULL).blocked);
	authlimit_shutdown();
}

TEST(authlimit_shared_with_child_process)
{
	setup(0);
	struct sockaddr_storage a = v4("192.0.2.99");
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 5; i++)
			authlimit_fail(SA(a), "u@example.test");
		_exit(0);
	}
	CHECK(pid > 0);
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(check(SA(a), "u@example.test").blocked);
	authlimit_shutdown();
}

TEST(authlimit_zero_settings_disable)
{
	struct authlimit_config off = {0, 0, 0, 600, 900, 24, 64, 0, 0, 0};
	authlimit_set_clock(fake_now);
	CHECK_INT(authlimit_init(&off, 0, NULL), 0);
	struct sockaddr_storage a = v4("192.0.2.1");
	for (int i = 0; i < 50; i++)
		authlimit_fail(SA(a), "u@example.test");
	struct authlimit_verdict v = check(SA(a), "u@example.test");
	CHECK(!v.blocked);
	CHECK_INT(v.delay_ms, 0);
	/* Turning blocks on later counts from there. */
	authlimit_configure(&cfg);
	authlimit_fail(SA(a), "u@example.test");
	CHECK(check(SA(a), "u@example.test").blocked);
	authlimit_shutdown();
}

TEST(authlimit_conn_open_close_and_rate)
{
	setup(0);
	struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2");
	uint64_t slot[3] = {0};
	uint32_t n;
	CHECK_INT(authlimit_conn_open(SA(a), 2, 4, &slot[0], &n), AUTHLIMIT_CONN_OK);
	CHECK_INT(n, 1);
	CHECK_INT(authlimit_conn_open(SA(a), 2, 4, &slot[1], &n), AUTHLIMIT_CONN_OK);
	CHECK_INT(n, 2);
	CHECK_INT(authlimit_conn_open(SA(a), 2, 4, &slot[2], &n), AUTHLIMIT_CONN_TOO_MANY);
	CHECK_INT(n, 2);
	CHECK(slot[2] == 0);
	CHECK_INT(authlimit_conn_open(SA(b), 2, 4, &slot[2], &n), AUTHLIMIT_CONN_OK);
	authlimit_conn_close(&slot[2]);
	CHECK(slot[2] == 0);
	authlimit_conn_close(&slot[1]);
	/* the refused one counted in the minute too: this is the fourth */
	CHECK_INT(authlimit_conn_open(SA(a), 2, 4, &slot[1], &n), AUTHLIMIT_CONN_OK);
	authlimit_conn_close(&slot[1]);
	CHECK_INT(authlimit_conn_open(SA(a), 2, 4, &slot[1], &n), AUTHLIMIT_CONN_TOO_FAST);
	CHECK_INT(n, 5);
	fake_ms += 61 * 1000; /* a new minute */
	CHECK_INT(authlimit_conn_open(SA(a), 2, 4, &slot[1], &n), AUTHLIMIT_CONN_OK);
	CHECK_INT(n, 2); /* slot[0] is still open */
	authlimit_conn_close(&slot[1]);
	/* a slot of a process that died is forgotten after an hour */
	fake_ms += 3601 * 1000;
	CHECK_INT(authlimit_conn_open(SA(a), 1, 0, &slot[1], &n), AUTHLIMIT_CONN_OK);
	CHECK_INT(n, 1);
	authlimit_shutdown();
}

/* A time older than the one stored (another process read the clock
 * later but took the lock first, or the wall clock stepped back) is not
 * an hour-old slot: the open count and the failures stay. */
TEST(authlimit_older_time_keeps_counts)
{
	setup(0);
	struct sockaddr_storage a = v4("192.0.2.1");
	uint64_t slot[3] = {0};
	uint32_t n;
	CHECK_INT(authlimit_conn_open(SA(a), 2, 0, &slot[0], &n), AUTHLIMIT_CONN_OK);
	CHECK_INT(authlimit_conn_open(SA(a), 2, 0, &slot[1], &n), AUTHLIMIT_CONN_OK);
	fake_ms -= 5;
	CHECK_INT(authlimit_conn_open(SA(a), 2, 0, &slot[2], &n), AUTHLIMIT_CONN_TOO_MANY);
	CHECK_INT(n, 2);
	for (unsigned i = 0; i < cfg.block_after; i++)
		authlimit_fail(SA(a), "u@example.test");
	fake_ms -= 1000;
	CHECK(check(SA(a), "u@example.test").blocked);
	authlimit_conn_close(&slot[0]);
	authlimit_conn_close(&slot[1]);
	authlimit_shutdown();
}

TEST(authlimit_message_rate_per_hour)
{
	setup(0);
	struct sockaddr_storage a = v4("192.0.2.1");
	uint32_t n;
	CHECK(authlimit_message(SA(a), 2, &n) && n == 1);
	CHECK(authlimit_message(SA(a), 2, &n) && n == 2);
	CHECK(!authlimit_message(SA(a), 2, &n));
	CHECK_INT(n, 2); /* a refusal is not counted */
	fake_ms += 3599 * 1000;
	CHECK(!authlimit_message(SA(a), 2, &n));
	fake_ms += 2 * 1000;
	CHECK(authlimit_message(SA(a), 2, &n) && n == 1);
	CHECK(authlimit_message(SA(a), 0, &n)); /* 0: no bound */
	authlimit_shutdown();
}
