/*
 * fuzz-sieve.c - libFuzzer target for the Sieve lexer and parser
 * (src/sieve), and the interpreter on a fixed message when a script
 * compiles (spamtest giving "5" and "50").  Checks that an error has a
 * position and a message, that a compiled script runs within its limits,
 * and that a failed run leaves exactly the implicit keep.  A vacation
 * action is checked and its reply built (sieve_vacation_allowed,
 * sieve_vacation_reply) on the fixed message and on the input itself
 * read as a message.  The script also runs on the input read as a
 * message (for the body test's MIME walk, and editheader on a fuzzed
 * header).  The duplicate test sees a list answering by the ID's length,
 * an error included.  An action's edited header must be a header section
 * that parses.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "header.h"
#include "sieve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool exists(void *ctx, const char *name)
{
	return name[0] == 'A';
}

/* duplicate (RFC 7352): some IDs seen, some not, one list error */
static int dup_seen(void *ctx, const char *handle, const char *id)
{
	size_t n = strlen(handle) + strlen(id);
	return n % 7 == 6 ? -1 : (int)(n % 2);
}

/* An edited header parses, with no more fields than allowed, and ends
 * with the empty line when the message's did. */
static bool header_ok(const struct sieve_action *a)
{
	struct header h;
	if (header_parse(a->header, a->header_len, &h) != HEADER_OK)
		return false;
	bool ok = h.header_len == a->header_len;
	header_free(&h);
	return ok;
}

/* include (RFC 6609): "self" is the input itself (so loops happen), "b"
 * a fixed script, "err" fails, anything else is missing. */
struct src {
	const char *p;
	size_t n;
};

static int inc_get(void *ctx, bool global, const char *name, char **out, size_t *len)
{
	const struct src *s = ctx;
	static const char b[] = "require [\"include\", \"variables\"]; global \"g\";"
				" set \"g\" \"${g}x\"; if true { return; } discard;";
	if (!strcmp(name, "err"))
		return -1;
	if (!strcmp(name, "self") || !strcmp(name, "b")) {
		const char *p = name[0] == 's' ? s->p : b;
		*len = name[0] == 's' ? s->n : sizeof b - 1;
		*out = malloc(*len + 1);
		if (*out == NULL)
			abort();
		memcpy(*out, p, *len);
		(*out)[*len] = '\0';
		return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct src self_src = {(const char *)data, size};
	static const char msg[] = "From: A <a@b.c>\r\nTo: d@e.f, \"G\" <g@h>\r\nSubject: "
				  "=?utf-8?q?x=C3=A9?=\r\n\r\nbody\r\n";
	struct sieve_script *s;
	struct sieve_error err;
	if (sieve_compile((const char *)data, size, NULL, &s, &err) < 0) {
		if (s != NULL || err.line < 1 || err.col < 1 || err.msg[0] == '\0')
			abort();
		return 0;
	}
	static const char *const env[] = {"host", "h.e.f", "phase", "during", NULL};
	struct sieve_input in = {"a@b.c",  "d+x@e.f", msg,	sizeof msg - 1, exists,
				 &self_src, dup_seen,  inc_get, env, "5", "50", NULL};
	struct sieve_result r;
	int rc = sieve_run(s, &in, &r);
	if (r.n_actions == 0 || r.n_actions > sieve_default_limits.max_actions)
		abort();
	if (rc < 0 && (r.n_actions != 1 || !r.actions[0].implicit || r.error[0] == '\0'))
		abort();
	if ((rc < 0 && r.n_dups != 0) || r.n_dups > sieve_default_limits.max_actions)
		abort();
	for (size_t i = 0; i < r.n_actions; i++)
		if (r.actions[i].header != NULL && !header_ok(&r.actions[i]))
			abort();
	for (size_t i = 0; i < r.n_actions; i++) {
		if (r.actions[i].type != SIEVE_ACT_VACATION)
			continue;
		struct sieve_input as_msg = {"a@b.c", "d@e.f", (const char *)data, size, NULL,
					     NULL,    NULL,    NULL,		      NULL,
					     NULL,    NULL,    NULL};
		const struct sieve_input *ins[2] = {&in, &as_msg};
		for (int k = 0; k < 2; k++) {
			const char *mine[1] = {"d@e.f"};
			const char *why = NULL;
			if (!sieve_vacation_allowed(ins[k], &r.actions[i], mine, 1, &why) &&
			    why == NULL)
				abort();
			struct buf b;
			buf_init(&b, 1 << 20);
			why = NULL;
			if (sieve_vacation_reply(ins[k], &r.actions[i], "d@e.f", "date", "id@h", &b,
						 &why) < 0 &&
			    why == NULL)
				abort();
			buf_free(&b);
		}
	}
	sieve_result_free(&r);
	/* the input read as a message too, so that body tests (RFC 5173)
	 * walk a fuzzed MIME structure */
	struct sieve_input self = {"a@b.c",   "d@e.f",  (const char *)data, size, exists,
				   &self_src, dup_seen, inc_get,	    env, NULL, NULL, NULL};
	rc = sieve_run(s, &self, &r);
	if (r.n_actions == 0 || (rc < 0 && (r.n_actions != 1 || !r.actions[0].implicit)))
		abort();
	for (size_t i = 0; i < r.n_actions; i++)
		if (r.actions[i].header != NULL && !header_ok(&r.actions[i]))
			abort();
	sieve_result_free(&r);
	sieve_script_free(&s);
	if (s != NULL)
		abort();
	return 0;
}
