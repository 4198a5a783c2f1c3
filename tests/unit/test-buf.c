/* Unit tests for src/lib/buf.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "test.h"

TEST(buf_append_and_printf)
{
	struct buf b = BUF_INIT;
	CHECK_STR(buf_cstr(&b), "");
	CHECK_INT(buf_puts(&b, "hello"), 0);
	CHECK_INT(buf_printf(&b, " %d %s", 42, "x"), 0);
	CHECK_STR(buf_cstr(&b), "hello 42 x");
	CHECK_INT(b.len, 10);
	buf_consume(&b, 6);
	CHECK_STR(buf_cstr(&b), "42 x");
	buf_free(&b);
	CHECK(b.data == NULL);
}

TEST(buf_max_is_enforced)
{
	struct buf b;
	buf_init(&b, 8);
	CHECK_INT(buf_append(&b, "12345678", 8), 0);
	CHECK_INT(buf_append(&b, "9", 1), -1);
	CHECK_INT(b.len, 8);
	CHECK_INT(buf_printf(&b, "%s", "more"), -1);
	CHECK_STR(buf_cstr(&b), "12345678");
	buf_reset(&b);
	CHECK_INT(buf_printf(&b, "%s", "123456789"), -1);
	CHECK_INT(b.len, 0);
	buf_free(&b);
}

TEST(buf_grows_and_keeps_binary)
{
	struct buf b = BUF_INIT;
	char big[10000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i & 0xff);
	for (int i = 0; i < 10; i++)
		CHECK_INT(buf_append(&b, big, sizeof big), 0);
	CHECK_INT(b.len, 100000);
	CHECK(memcmp(b.data + 90000, big, sizeof big) == 0);
	size_t len = 0;
	char *p = buf_steal(&b, &len);
	CHECK_INT(len, 100000);
	CHECK(b.data == NULL && b.len == 0);
	free(p);
}

TEST(buf_reserve_overflow)
{
	struct buf b = BUF_INIT;
	CHECK_INT(buf_reserve(&b, (size_t)-1), -1);
	CHECK_INT(buf_puts(&b, "a"), 0);
	CHECK_INT(buf_reserve(&b, (size_t)-1), -1);
	buf_free(&b);
}
