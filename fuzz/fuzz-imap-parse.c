/*
 * fuzz-imap-parse.c - libFuzzer target for src/imap/imap-parse.c.
 *
 * Feeds the input to the command reader (in pieces whose sizes come from
 * the first byte, so resumption is exercised), parses every command it
 * collects and checks the promises of imap-parse.h: tokens lie inside the
 * command, parentheses balance, literal lengths are exact.  The input is
 * also given to the sequence-set, date, modified UTF-7 and base64 parsers,
 * and every "(" of a command to the QRESYNC parameter parser (whose sets
 * then go through imap_view_match and imap_view_missing);
 * modified UTF-7 must round-trip (decode then encode gives the input back).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-parse.h"
#include "imap-view.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The sequence match data and the known uids of a parsed QRESYNC
 * parameter against a fixed view: the answers stay in their bounds. */
static void check_qresync(const struct imap_qresync *q)
{
	static const uint32_t uids[] = {1, 2, 5, 8, 9, 10, 40, 41, 1000, 4294967294u};
	struct imap_view v = {NULL, 0, 0, 0};
	imap_view_append(&v, uids, sizeof uids / sizeof uids[0]);
	uint32_t from = q->seqs.n ? imap_view_match(&v, &q->seqs, &q->uids) : 1;
	if (from == 0)
		abort();
	struct imap_seqset known = {NULL, 0}, miss = {NULL, 0};
	if (q->known.n) {
		known.r = malloc(q->known.n * sizeof *known.r);
		if (known.r == NULL)
			abort();
		memcpy(known.r, q->known.r, q->known.n * sizeof *known.r);
		known.n = q->known.n;
		imap_seqset_resolve(&known, imap_view_last(&v));
	}
	imap_view_missing(&v, &known, from, 4294967295u, &miss);
	for (size_t i = 0; i < miss.n; i++)
		if (miss.r[i].lo < from || miss.r[i].lo > miss.r[i].hi ||
		    !imap_seqset_has(&known, miss.r[i].lo) || !imap_seqset_has(&known, miss.r[i].hi) ||
		    imap_view_seq(&v, miss.r[i].lo) != 0 || imap_view_seq(&v, miss.r[i].hi) != 0 ||
		    (i > 0 && miss.r[i].lo <= miss.r[i - 1].hi))
			abort();
	imap_seqset_free(&miss);
	imap_seqset_free(&known);
	imap_view_free(&v);
}

static void check_command(char *cmd, size_t n)
{
	/* keep an untouched copy: parsing unescapes quoted strings in place */
	struct imap_command c;
	const char *why;
	enum imap_parse_error e = imap_parse_command(cmd, n, &c, &why);
	if (why == NULL)
		abort();
	if (e == IMAP_PARSE_OK) {
		if (c.tag_len == 0 || c.tag_len > IMAP_TAG_MAX || c.name_len == 0)
			abort();
		int depth = 0;
		for (size_t i = 0; i < c.n_tok; i++) {
			const struct imap_tok *t = &c.tok[i];
			if (t->p < cmd || t->p + t->len > cmd + n)
				abort();
			if (t->type == IMAP_TOK_LPAREN)
				depth++;
			if (t->type == IMAP_TOK_RPAREN)
				depth--;
			if (depth < 0 || depth > IMAP_MAX_DEPTH)
				abort();
			if (t->type == IMAP_TOK_ATOM && t->len == 0)
				abort();
		}
		if (depth != 0 || c.n_tok > IMAP_MAX_TOKENS)
			abort();
		/* every "(" as the start of a QRESYNC select parameter, and what
		 * it parses to against a view with holes (imap-view.h) */
		for (size_t i = 0; i < c.n_tok; i++) {
			struct imap_qresync q;
			size_t used;
			if (c.tok[i].type != IMAP_TOK_LPAREN ||
			    imap_parse_qresync(c.tok + i, c.n_tok - i, &used, &q, &why) < 0)
				continue;
			if (used < 4 || used > c.n_tok - i || q.uidvalidity == 0 || q.modseq == 0 ||
			    q.modseq > UINT64_C(9223372036854775807) || (q.seqs.n == 0) != (q.uids.n == 0))
				abort();
			check_qresync(&q);
			imap_qresync_free(&q);
		}
	}
	imap_command_free(&c);
}

static void check_seqset(const char *p, size_t n)
{
	struct imap_seqset s;
	if (imap_parse_seqset(p, n, &s) < 0)
		return;
	imap_seqset_resolve(&s, 1000);
	for (size_t i = 0; i < s.n; i++) {
		if (s.r[i].lo == 0 || s.r[i].lo > s.r[i].hi)
			abort();
		if (i > 0 && (uint64_t)s.r[i - 1].hi + 1 >= s.r[i].lo)
			abort(); /* sorted and merged */
		if (!imap_seqset_has(&s, s.r[i].lo) || !imap_seqset_has(&s, s.r[i].hi))
			abort();
	}
	struct buf b = BUF_INIT;
	imap_seqset_format(&s, &b);
	struct imap_seqset s2;
	if (s.n > 0) {
		if (imap_parse_seqset(b.data, b.len, &s2) < 0 || s2.n != s.n)
			abort();
		imap_seqset_free(&s2);
	}
	buf_free(&b);
	imap_seqset_free(&s);
}

static void check_mutf7(const char *p, size_t n)
{
	struct buf u = BUF_INIT, back = BUF_INIT;
	if (imap_mutf7_decode(p, n, &u) == 0) {
		if (imap_mutf7_encode(u.data ? u.data : "", u.len, &back) < 0)
			abort();
		if (back.len != n || (n && memcmp(back.data, p, n) != 0))
			abort();
	}
	buf_free(&u);
	buf_free(&back);
	struct buf m = BUF_INIT;
	(void)imap_mutf7_encode(p, n, &m);
	buf_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t step = (size_t)(data[0] % 17) + 1;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;

	struct imap_reader r;
	imap_reader_init(&r, 512, 1024);
	r.literal_minus = (data[0] & 0x80) != 0;
	size_t i = 0;
	bool stop = false;
	while (i < n && !stop) {
		size_t len = n - i < step ? n - i : step;
		size_t off = 0;
		while (off < len && !stop) {
			size_t used;
			enum imap_read_result e =
			    imap_reader_feed(&r, in + i + off, len - off, &used);
			if (used > len - off)
				abort();
			off += used;
			switch (e) {
			case IMAP_READ_COMMAND: {
				char *copy = malloc(r.cmd.len ? r.cmd.len : 1);
				if (copy == NULL)
					abort();
				memcpy(copy, r.cmd.data ? r.cmd.data : "", r.cmd.len);
				check_command(copy, r.cmd.len);
				free(copy);
				imap_reader_next(&r);
				break;
			}
			case IMAP_READ_LITERAL_REFUSED: {
				char tag[IMAP_TAG_MAX + 1];
				imap_reader_tag(&r, tag, sizeof tag);
				imap_reader_next(&r);
				break;
			}
			case IMAP_READ_LINE_TOO_LONG: {
				char tag[IMAP_TAG_MAX + 1];
				imap_reader_tag(&r, tag, sizeof tag);
				imap_reader_next(&r);
				break;
			}
			case IMAP_READ_GARBAGE:
			case IMAP_READ_FATAL:
				stop = true;
				break;
			case IMAP_READ_CONTINUE:
			case IMAP_READ_MORE:
				break;
			}
			if (e == IMAP_READ_MORE && used == 0)
				break;
		}
		i += len;
	}
	imap_reader_free(&r);

	/* the whole input as one command, and to the small parsers */
	char *copy = malloc(n ? n : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, in, n);
	check_command(copy, n);
	free(copy);
	check_seqset(in, n);
	check_mutf7(in, n);
	time_t t;
	(void)imap_parse_datetime(in, n, &t);
	int64_t d;
	(void)imap_parse_date(in, n, &d);
	unsigned char out[256];
	size_t len;
	if (n <= 340 && imap_base64_decode(in, n, out, sizeof out, &len) == 0 && len > n)
		abort();
	return 0;
}
