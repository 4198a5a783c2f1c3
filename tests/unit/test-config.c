/* Unit tests for src/lib/config.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/tern-test-config-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return NULL;
	size_t n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		return NULL;
	}
	close(fd);
	return path;
}

TEST(config_defaults_and_values)
{
	char *p = write_tmp("# comment\n\nhostname = mx.example.test\n"
			    "smtp.listen = 127.0.0.1:2525\n"
			    "smtp.max_message_size = 10M\n"
			    "data_dir = mydata\n"
			    "allow_plaintext_loopback = yes\n");
	char err[256];
	struct config *c = config_load(p, err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_STR(c->hostname, "mx.example.test");
		CHECK_STR(c->smtp_listen, "127.0.0.1:2525");
		CHECK_INT(c->smtp_max_message_size, 10 * 1024 * 1024);
		CHECK_INT(c->smtp_max_recipients, 100);
		CHECK_STR(c->recipient_delimiter, "+");
		CHECK(c->allow_plaintext_loopback);
		CHECK_STR(c->data_dir, "/tmp/mydata");
		CHECK_STR(c->imap_listen, "");
	}
	config_free(&c);
	CHECK(c == NULL);
	unlink(p);
}

static void expect_error(const char *text, const char *want)
{
	char *p = write_tmp(text);
	char err[256] = "";
	struct config *c = config_load(p, err, sizeof err);
	CHECK(c == NULL);
	if (strstr(err, want) == NULL)
		test_fail_str(__FILE__, __LINE__, "err", err, want);
	if (strstr(err, p) == NULL)
		test_fail_str(__FILE__, __LINE__, "err names file", err, p);
	config_free(&c);
	unlink(p);
}

TEST(config_errors_name_line)
{
	expect_error("hostname = a\nbogus = 1\n", ":2: unknown key \"bogus\"");
	expect_error("hostname = a\nhostname = b\n", ":2: key \"hostname\" given twice");
	expect_error("\n\nsmtp.listen = nowhere\n", ":3: smtp.listen: expected ADDRESS:PORT");
	expect_error("workers = -1\n", ":1: workers: expected a whole number");
	expect_error("just words\n", ":1: expected \"key = value\"");
	expect_error("smtp.max_message_size = lots\n", ":1: smtp.max_message_size");
	expect_error("allow_plaintext_loopback = maybe\n", ":1: allow_plaintext_loopback");
	expect_error("log.level = loud\n", "log.level must be");
	expect_error("recipient_delimiter = ++\n", "recipient_delimiter");
}

TEST(config_hostport)
{
	char host[64];
	uint16_t port = 0;
	CHECK_INT(config_split_hostport("127.0.0.1:25", host, sizeof host, &port), 0);
	CHECK_STR(host, "127.0.0.1");
	CHECK_INT(port, 25);
	CHECK_INT(config_split_hostport("[::1]:143", host, sizeof host, &port), 0);
	CHECK_STR(host, "::1");
	CHECK_INT(port, 143);
	CHECK_INT(config_split_hostport("host:0", host, sizeof host, &port), -1);
	CHECK_INT(config_split_hostport("host:65536", host, sizeof host, &port), -1);
	CHECK_INT(config_split_hostport(":25", host, sizeof host, &port), -1);
	CHECK_INT(config_split_hostport("host", host, sizeof host, &port), -1);
}

TEST(config_relay_split)
{
	char host[64];
	uint16_t port = 0;
	CHECK_INT(config_relay_split("smtp.example.net", host, sizeof host, &port), 0);
	CHECK_STR(host, "smtp.example.net");
	CHECK_INT(port, 25);
	CHECK_INT(config_relay_split("smtp.example.net:587", host, sizeof host, &port), 0);
	CHECK_STR(host, "smtp.example.net");
	CHECK_INT(port, 587);
	CHECK_INT(config_relay_split("[::1]", host, sizeof host, &port), 0);
	CHECK_STR(host, "::1");
	CHECK_INT(port, 25);
	CHECK_INT(config_relay_split("[::1]:2525", host, sizeof host, &port), 0);
	CHECK_INT(port, 2525);
	CHECK_INT(config_relay_split("::1", host, sizeof host, &port), -1);
	CHECK_INT(config_relay_split("host:0", host, sizeof host, &port), -1);
	CHECK_INT(config_relay_split("[]", host, sizeof host, &port), -1);
	CHECK_INT(config_relay_split("a b", host, sizeof host, &port), -1);
	CHECK_INT(config_relay_split("", host, sizeof host, &port), -1);
	expect_error("outbound.relay = a:b:c\n", "outbound.relay must be");
	expect_error("outbound.relay = relay.test\noutbound.relay_user = u\n",
		     "go together");
	expect_error("outbound.relay_user = u\noutbound.relay_password_file = /p\n",
		     "go together");
}

TEST(config_key_table)
{
	size_t i;
	CHECK(config_key_count() > 60);
	CHECK(config_key_find("workers", &i) && config_key_restart(i));
	CHECK_STR(config_key_name(i), "workers");
	CHECK_STR(config_key_default(i), "0");
	CHECK(config_key_find("smtp.listen", &i) && config_key_restart(i));
	CHECK(config_key_find("postmaster", &i) && !config_key_restart(i));
	CHECK(config_key_find("dns.resolver", &i) && !config_key_restart(i));
	CHECK(!config_key_find("no.such.key", &i));
	CHECK(config_key_name(config_key_count()) == NULL);
	CHECK(!config_key_restart(config_key_count()));
}

TEST(config_restart_keys)
{
	char *p = write_tmp("smtp.listen = 127.0.0.1:2525\n");
	char err[256];
	struct config *a = config_load(p, err, sizeof err);
	unlink(p);
	p = write_tmp("smtp.listen = 127.0.0.1:2526\nhostname = other\n");
	struct config *b = config_load(p, err, sizeof err);
	unlink(p);
	CHECK(a && b);
	if (a && b) {
		CHECK(config_keep_restart_keys(a, a, false) == 0);
		/* b gets a's running smtp.listen back; hostname is reloadable */
		CHECK(config_keep_restart_keys(b, a, false) == 1);
		CHECK_STR(b->smtp_listen, "127.0.0.1:2525");
		CHECK_STR(b->hostname, "other");
		CHECK(config_keep_restart_keys(b, a, false) == 0);
	}
	config_free(&a);
	config_free(&b);
}
