/*
 * fuzz-smtp-parse.c - libFuzzer target for src/smtp/smtp-parse.c.
 *
 * Parses the input as one command line, with and without SMTPUTF8
 * permission, and checks the promises of smtp-parse.h: the argument points
 * into the line, a parsed address is well formed, and permission only
 * widens what is accepted.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp-parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_cmd c[2];
	enum smtp_parse_error e[2];

	for (int utf8 = 0; utf8 <= 1; utf8++) {
		struct smtp_cmd *cmd = &c[utf8];
		e[utf8] = smtp_parse_command(line, size, utf8, cmd);
		if (e[utf8] == SMTP_PARSE_UNKNOWN && cmd->verb != SMTP_VERB_UNKNOWN)
			abort();
		if (cmd->arg != NULL &&
		    (cmd->arg < line || cmd->arg_len == 0 || cmd->arg + cmd->arg_len > line + size))
			abort();
		if (e[utf8] != SMTP_PARSE_OK)
			continue;
		if (memchr(line, '\0', size) != NULL)
			abort();
		if (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT) {
			size_t ll = strnlen(cmd->addr.local, sizeof cmd->addr.local);
			size_t dl = strnlen(cmd->addr.domain, sizeof cmd->addr.domain);
			if (ll == sizeof cmd->addr.local || dl == sizeof cmd->addr.domain)
				abort();
			if (cmd->null_path != (ll == 0))
				abort();
			if (cmd->null_path && cmd->verb != SMTP_VERB_MAIL)
				abort();
			if (cmd->addr.has_utf8 && !utf8 && !cmd->smtputf8)
				abort();
		}
	}
	if (c[0].verb != c[1].verb)
		abort();
	/* permission only widens: what parses without it parses with it, the
	 * same way */
	if (e[0] == SMTP_PARSE_OK) {
		if (e[1] != SMTP_PARSE_OK)
			abort();
		if (strcmp(c[0].addr.local, c[1].addr.local) != 0 ||
		    strcmp(c[0].addr.domain, c[1].addr.domain) != 0 || c[0].size != c[1].size ||
		    c[0].chunk_size != c[1].chunk_size || c[0].arg != c[1].arg)
			abort();
	}
	return 0;
}
