/*
 * test-main.c - runs the registered unit tests (see test.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

struct test_entry {
	const char *name;
	void (*fn)(void);
};

static struct test_entry tests[1024];
static size_t n_tests;
static int current_failed;

void test_register(const char *name, void (*fn)(void))
{
	if (n_tests == sizeof tests / sizeof tests[0]) {
		fprintf(stderr, "too many tests\n");
		exit(2);
	}
	tests[n_tests].name = name;
	tests[n_tests].fn = fn;
	n_tests++;
}

void test_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "  %s:%d: check failed: %s\n", file, line, what);
	current_failed = 1;
}

void test_fail_str(const char *file, int line, const char *what, const char *got,
		   const char *want)
{
	fprintf(stderr, "  %s:%d: %s is \"%s\", expected \"%s\"\n", file, line, what,
		got ? got : "(null)", want ? want : "(null)");
	current_failed = 1;
}

void test_fail_int(const char *file, int line, const char *what, long long got, long long want)
{
	fprintf(stderr, "  %s:%d: %s is %lld, expected %lld\n", file, line, what, got, want);
	current_failed = 1;
}

int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	size_t passed = 0, failed = 0;
	for (size_t i = 0; i < n_tests; i++) {
		if (filter && strstr(tests[i].name, filter) == NULL)
			continue;
		current_failed = 0;
		tests[i].fn();
		if (current_failed) {
			failed++;
			printf("FAIL %s\n", tests[i].name);
		} else {
			passed++;
			printf("ok   %s\n", tests[i].name);
		}
	}
	printf("%zu passed, %zu failed\n", passed, failed);
	return failed ? 1 : 0;
}
