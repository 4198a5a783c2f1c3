/*
 * pop3-parse.c - one POP3 command line, base64 and SASL PLAIN (see
 * pop3-parse.h).  Protocol layer, pure: no I/O, no allocation, only
 * lib/strutil for numbers.
 *
 * The command table says, per verb, what arguments it takes; all checks of
 * argument shape happen here so the session only sees well-formed
 * commands and checks state and message numbers.
 */
#include "pop3-parse.h"

#include <string.h>

#include "strutil.h"

enum arg_kind {
	ARGS_NONE,  /* no argument */
	ARGS_REST,  /* one argument: the rest of the line */
	ARGS_WORDS, /* words, between min and max */
	ARGS_NUMS,  /* numbers, between min and max */
};

static const struct {
	const char *name;
	enum pop3_verb verb;
	enum arg_kind kind;
	size_t min, max;
} verbs[] = {
    {"USER", POP3_VERB_USER, ARGS_REST, 1, 1},  {"PASS", POP3_VERB_PASS, ARGS_REST, 1, 1},
    {"AUTH", POP3_VERB_AUTH, ARGS_WORDS, 0, 2}, {"CAPA", POP3_VERB_CAPA, ARGS_NONE, 0, 0},
    {"STAT", POP3_VERB_STAT, ARGS_NONE, 0, 0},  {"LIST", POP3_VERB_LIST, ARGS_NUMS, 0, 1},
    {"RETR", POP3_VERB_RETR, ARGS_NUMS, 1, 1},  {"DELE", POP3_VERB_DELE, ARGS_NUMS, 1, 1},
    {"NOOP", POP3_VERB_NOOP, ARGS_NONE, 0, 0},  {"RSET", POP3_VERB_RSET, ARGS_NONE, 0, 0},
    {"TOP", POP3_VERB_TOP, ARGS_NUMS, 2, 2},    {"UIDL", POP3_VERB_UIDL, ARGS_NUMS, 0, 1},
    {"QUIT", POP3_VERB_QUIT, ARGS_NONE, 0, 0},  {"APOP", POP3_VERB_APOP, ARGS_WORDS, 2, 2},
    {"STLS", POP3_VERB_STLS, ARGS_NONE, 0, 0},  {"UTF8", POP3_VERB_UTF8, ARGS_NONE, 0, 0},
};

enum pop3_parse_error pop3_parse_command(const char *line, size_t n, struct pop3_cmd *cmd)
{
	memset(cmd, 0, sizeof *cmd);
	size_t vlen = 0;
	while (vlen < n && line[vlen] != ' ')
		vlen++;
	if (vlen == 0)
		return n == 0 ? POP3_PARSE_SYNTAX : POP3_PARSE_UNKNOWN;
	size_t v = 0;
	for (; v < sizeof verbs / sizeof verbs[0]; v++)
		if (strutil_eq_ci(line, vlen, verbs[v].name))
			break;
	if (v == sizeof verbs / sizeof verbs[0])
		return POP3_PARSE_UNKNOWN;
	cmd->verb = verbs[v].verb;

	size_t i = vlen;
	if (verbs[v].kind == ARGS_REST) {
		/* exactly one space, then everything, spaces included */
		if (i + 1 >= n)
			return POP3_PARSE_SYNTAX;
		cmd->arg[0] = line + i + 1;
		cmd->arg_len[0] = n - i - 1;
		cmd->n_args = 1;
		return POP3_PARSE_OK;
	}
	for (;;) {
		while (i < n && line[i] == ' ')
			i++;
		if (i == n)
			break;
		size_t start = i;
		while (i < n && line[i] != ' ')
			i++;
		if (cmd->n_args == verbs[v].max)
			return POP3_PARSE_SYNTAX; /* one argument too many */
		cmd->arg[cmd->n_args] = line + start;
		cmd->arg_len[cmd->n_args] = i - start;
		cmd->n_args++;
	}
	if (cmd->n_args < verbs[v].min)
		return POP3_PARSE_SYNTAX;
	if (verbs[v].kind == ARGS_NUMS) {
		for (size_t k = 0; k < cmd->n_args; k++)
			if (strutil_parse_u64(cmd->arg[k], cmd->arg_len[k], UINT64_MAX,
					      &cmd->num[k]) < 0)
				return POP3_PARSE_BAD_NUMBER;
	}
	return POP3_PARSE_OK;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int pop3_parse_base64(const char *in, size_t n, unsigned char *out, size_t outsz, size_t *out_len)
{
	if (n % 4 != 0)
		return -1;
	size_t o = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		size_t pad = 0;
		for (size_t k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];
			if (c == '=') {
				/* padding: only in the last group, only at its end */
				if (i + 4 != n || k < 2)
					return -1;
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad > 0)
				return -1; /* data after '=' */
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		uint32_t bits = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) |
				((uint32_t)v[2] << 6) | (uint32_t)v[3];
		/* RFC 4648 3.5: the bits left over by padding must be zero */
		if ((pad == 1 && (bits & 0xff) != 0) || (pad == 2 && (bits & 0xffff) != 0))
			return -1;
		size_t take = 3 - pad;
		if (outsz - o < take)
			return -1;
		unsigned char b[3] = {(unsigned char)(bits >> 16), (unsigned char)(bits >> 8),
				      (unsigned char)bits};
		memcpy(out + o, b, take);
		o += take;
	}
	*out_len = o;
	return 0;
}

int pop3_parse_plain(const unsigned char *msg, size_t n, struct pop3_plain *out)
{
	memset(out, 0, sizeof *out);
	if (n == 0)
		return -1;
	const unsigned char *nul1 = memchr(msg, '\0', n);
	if (nul1 == NULL)
		return -1;
	size_t a = (size_t)(nul1 - msg);
	const unsigned char *rest = nul1 + 1;
	size_t rest_n = n - a - 1;
	const unsigned char *nul2 = memchr(rest, '\0', rest_n);
	if (nul2 == NULL)
		return -1;
	size_t c = (size_t)(nul2 - rest);
	size_t p = rest_n - c - 1;
	if (memchr(nul2 + 1, '\0', p) != NULL)
		return -1;
	if (a > 255 || c == 0 || c > 255 || p == 0 || p > 255)
		return -1;
	out->authzid = (const char *)msg;
	out->authzid_len = a;
	out->authcid = (const char *)rest;
	out->authcid_len = c;
	out->passwd = (const char *)(nul2 + 1);
	out->passwd_len = p;
	return 0;
}
