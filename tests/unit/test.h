/*
 * test.h - the unit test registry.  A test file defines tests with
 * TEST(name) { ... } and checks with CHECK*; test-main.c runs every
 * registered test (or those whose name contains argv[1]) and prints
 * "N passed, N failed".
 */
#ifndef TERN_TEST_H
#define TERN_TEST_H

#include <stdint.h>
#include <string.h>

void test_register(const char *name, void (*fn)(void));
void test_fail(const char *file, int line, const char *what);
void test_fail_str(const char *file, int line, const char *what, const char *got,
		   const char *want);
void test_fail_int(const char *file, int line, const char *what, long long got, long long want);

#define TEST(name)                                                              \
	static void test_##name(void);                                          \
	__attribute__((constructor)) static void test_reg_##name(void)          \
	{                                                                       \
		test_register(#name, test_##name);                              \
	}                                                                       \
	static void test_##name(void)

#define CHECK(cond)                                                             \
	do {                                                                    \
		if (!(cond))                                                    \
			test_fail(__FILE__, __LINE__, #cond);                   \
	} while (0)

#define CHECK_STR(got, want)                                                    \
	do {                                                                    \
		const char *g_ = (got), *w_ = (want);                           \
		if (g_ == NULL || w_ == NULL || strcmp(g_, w_) != 0)            \
			test_fail_str(__FILE__, __LINE__, #got, g_, w_);        \
	} while (0)

#define CHECK_INT(got, want)                                                    \
	do {                                                                    \
		long long g_ = (long long)(got), w_ = (long long)(want);        \
		if (g_ != w_)                                                   \
			test_fail_int(__FILE__, __LINE__, #got, g_, w_);        \
	} while (0)

#endif
