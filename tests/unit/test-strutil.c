/* Unit tests for src/lib/strutil.c. */
#include "strutil.h"
#include "test.h"

TEST(strutil_parse_u64)
{
	uint64_t v = 0;
	CHECK_INT(strutil_parse_u64("0", 1, 10, &v), 0);
	CHECK_INT(v, 0);
	CHECK_INT(strutil_parse_u64("18446744073709551615", 20, UINT64_MAX, &v), 0);
	CHECK(v == UINT64_MAX);
	CHECK_INT(strutil_parse_u64("18446744073709551616", 20, UINT64_MAX, &v), -1);
	CHECK_INT(strutil_parse_u64("99999999999999999999", 20, UINT64_MAX, &v), -1);
	CHECK_INT(strutil_parse_u64("", 0, 10, &v), -1);
	CHECK_INT(strutil_parse_u64("-1", 2, 10, &v), -1);
	CHECK_INT(strutil_parse_u64("+1", 2, 10, &v), -1);
	CHECK_INT(strutil_parse_u64(" 1", 2, 10, &v), -1);
	CHECK_INT(strutil_parse_u64("11", 2, 10, &v), -1);
	CHECK_INT(strutil_parse_u64("10", 2, 10, &v), 0);
	CHECK_INT(strutil_parse_u64("123abc", 3, 1000, &v), 0);
	CHECK_INT(v, 123);
}

TEST(strutil_sizes_and_durations)
{
	uint64_t v = 0;
	CHECK_INT(strutil_parse_size("50M", &v), 0);
	CHECK(v == 50ull * 1024 * 1024);
	CHECK_INT(strutil_parse_size("2k", &v), 0);
	CHECK_INT(v, 2048);
	CHECK_INT(strutil_parse_size("100", &v), 0);
	CHECK_INT(v, 100);
	CHECK_INT(strutil_parse_size("M", &v), -1);
	CHECK_INT(strutil_parse_size("5X", &v), -1);
	CHECK_INT(strutil_parse_size("99999999999999999G", &v), -1);
	/* quota sizes (tern user quota, quota.default_storage) */
	CHECK_INT(strutil_parse_size("500M", &v), 0);
	CHECK(v == 524288000ull);
	CHECK_INT(strutil_parse_size("2G", &v), 0);
	CHECK(v == 2147483648ull);
	CHECK_INT(strutil_parse_size("2g", &v), 0);
	CHECK(v == 2147483648ull);
	CHECK_INT(strutil_parse_size("0", &v), 0);
	CHECK_INT(v, 0);
	CHECK_INT(strutil_parse_size("", &v), -1);
	CHECK_INT(strutil_parse_size("-1M", &v), -1);
	CHECK_INT(strutil_parse_size("1.5G", &v), -1);
	CHECK_INT(strutil_parse_size("1 G", &v), -1);
	CHECK_INT(strutil_parse_size("1GB", &v), -1);
	CHECK_INT(strutil_parse_size("17179869183G", &v), 0); /* largest that fits */
	CHECK(v == 17179869183ull * 1024 * 1024 * 1024);
	CHECK_INT(strutil_parse_size("17179869184G", &v), -1);
	CHECK_INT(strutil_parse_duration("5m", &v), 0);
	CHECK_INT(v, 300);
	CHECK_INT(strutil_parse_duration("4h", &v), 0);
	CHECK_INT(v, 14400);
	CHECK_INT(strutil_parse_duration("5d", &v), 0);
	CHECK_INT(v, 432000);
}

TEST(strutil_case)
{
	CHECK(strutil_eq_ci("HeLLo", 5, "hello"));
	CHECK(!strutil_eq_ci("HeLLo", 4, "hello"));
	CHECK(strutil_prefix_ci("MAIL FROM:<>", 12, "mail from:"));
	CHECK(!strutil_prefix_ci("MAI", 3, "mail"));
	char s[] = "ABC.def";
	strutil_lower(s, 7);
	CHECK_STR(s, "abc.def");
}
