/*
 * fuzz-sieve.c - libFuzzer target for the Sieve lexer and parser
 * (src/sieve), and the interpreter on a fixed message when a script
 * compiles.  Checks that an error has a position and a message, that a
 * compiled script runs within its limits, and that a failed run leaves
 * exactly the implicit keep.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool exists(void *ctx, const char *name)
{
	return name[0] == 'A';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char msg[] = "From: A <a@b.c>\r\nTo: d@e.f, \"G\" <g@h>\r\nSubject: "
				  "=?utf-8?q?x=C3=A9?=\r\n\r\nbody\r\n";
	struct sieve_script *s;
	struct sieve_error err;
	if (sieve_compile((const char *)data, size, NULL, &s, &err) < 0) {
		if (s != NULL || err.line < 1 || err.col < 1 || err.msg[0] == '\0')
			abort();
		return 0;
	}
	struct sieve_input in = {"a@b.c", "d+x@e.f", msg, sizeof msg - 1, exists, NULL};
	struct sieve_result r;
	int rc = sieve_run(s, &in, &r);
	if (r.n_actions == 0 || r.n_actions > sieve_default_limits.max_actions)
		abort();
	if (rc < 0 && (r.n_actions != 1 || !r.actions[0].implicit || r.error[0] == '\0'))
		abort();
	sieve_result_free(&r);
	sieve_script_free(&s);
	if (s != NULL)
		abort();
	return 0;
}
