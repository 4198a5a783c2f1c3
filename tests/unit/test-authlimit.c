/*
 * test-authlimit.c - unit tests for src/auth/authlimit.c with a fake
 * clock: doubling delays and their cap, blocks per IP and per account,
 * the window, IPv6 /64 grouping, resets on success, eviction, and sharing
 * the table with a forked child.
 */
#include <arpa/inet.h>
#include <stdio.h>
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
};

static void setup(size_t entries)
{
	log_set_level(LOG_ERROR); /* keep the test output readable */
	authlimit_set_clock(fake_now);
	fake_ms = 1700000000000ull;
	if (authlimit_init(&cfg, entries) < 0)
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

TEST(authlimit_ipv6_counts_per_64)
{
	setup(0);
	struct sockaddr_storage a = v6("2001:db8:1:2::1");
	struct sockaddr_storage b = v6("2001:db8:1:2:ffff::9");
	struct sockaddr_storage c = v6("2001:db8:1:3::1");
	for (int i = 0; i < 5; i++)
		authlimit_fail(SA(a), NULL);
	CHECK(check(SA(b), NULL).blocked);  /* same /64 */
	CHECK(!check(SA(c), NULL).blocked); /* next /64 */
	/* IPv4-mapped IPv6 is the IPv4 address. */
	struct sockaddr_storage m = v6("::ffff:192.0.2.50");
	struct sockaddr_storage p = v4("192.0.2.50");
	for (int i = 0; i < 5; i++)
		authlimit_fail(SA(m), NULL);
	CHECK(check(SA(p), NULL).blocked);
	authlimit_shutdown();
}

TEST(authlimit_account_block_spares_known_ips)
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
	struct sockaddr_storage newcomer = v4("198.51.100.1");
	struct authlimit_verdict v = check(SA(newcomer), "victim@example.test");
	CHECK(v.blocked);
	/* Other accounts from there are not affected. */
	CHECK(!check(SA(newcomer), "other@example.test").blocked);
	/* The user's usual IP still gets in, without a delay. */
	v = check(SA(home), "victim@example.test");
	CHECK(!v.blocked);
	CHECK_INT(v.delay_ms, 0);
	authlimit_shutdown();
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
	struct authlimit_config off = {0, 0, 0, 600, 900};
	authlimit_set_clock(fake_now);
	CHECK_INT(authlimit_init(&off, 0), 0);
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
