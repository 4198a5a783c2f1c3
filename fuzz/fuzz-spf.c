/*
 * fuzz-spf.c - libFuzzer target for src/mailauth/spf.c.
 *
 * The input, up to its first NUL byte, is (1) checked as an SPF record,
 * (2) expanded as a macro-string in the domain and the explanation
 * contexts and (3) served as the TXT record of every name while a whole
 * check_host() runs against a fake zone (A/AAAA answers from the bytes
 * after the NUL, MX and PTR answers pointing back into the zone).  What
 * must hold: expansions are NUL-terminated, their length is what was
 * returned, domains are at most 253 bytes, and a check ends within
 * SPF_MAX_QUERIES questions with a result in range.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expand(const char *s, size_t n, const struct spf_ip *ip, bool explain)
{
	char out[SPF_EXPAND_MAX + 1];
	int r = spf_macro_expand(s, n, "Strong-Bad@email.example.com", "email.example.com", ip,
				 "helo.example.org", explain, !explain, out, sizeof out);
	if (r < 0)
		return;
	if ((size_t)r != strlen(out) || (!explain && r > SPF_DOMAIN_MAX))
		abort();
}

static void run(const char *rec, size_t n, const uint8_t *extra, size_t en, const struct spf_ip *ip)
{
	struct spf_request req = {0};
	req.ip = *ip;
	req.helo = "helo.example.org";
	req.mail_from = "strong-bad@email.example.com";
	req.now = 1;
	struct spf_check *c = spf_check_new(&req);
	struct spf_query q;
	size_t steps = 0, off = 0;
	while (spf_step(c, &q) == SPF_STEP_QUERY) {
		if (++steps > SPF_MAX_QUERIES + 1)
			abort();
		struct spf_rr rr[2];
		size_t nrr = 0;
		uint8_t sel = en ? extra[off++ % en] : 0;
		switch (q.type) {
		case SPF_Q_TXT:
			rr[nrr].data = rec;
			rr[nrr++].len = n;
			break;
		case SPF_Q_A:
		case SPF_Q_AAAA: {
			size_t want = q.type == SPF_Q_A ? 4 : 16;
			static uint8_t addr[16];
			for (size_t i = 0; i < want; i++)
				addr[i] = en ? extra[(off + i) % en] : 0;
			off += want;
			if (sel & 1) {
				memcpy(addr, ip->addr, want == 4 ? 4 : 16);
			}
			rr[nrr].data = addr;
			rr[nrr++].len = want;
			break;
		}
		case SPF_Q_MX:
		case SPF_Q_PTR:
			rr[nrr].data = "email.example.com";
			rr[nrr++].len = 17;
			rr[nrr].data = ".";
			rr[nrr++].len = 1;
			break;
		}
		enum spf_dns st = (sel & 0x30) == 0x30   ? SPF_DNS_TEMPFAIL
				  : (sel & 0x30) == 0x20 ? SPF_DNS_NXDOMAIN
							 : SPF_DNS_OK;
		spf_answer(c, st, rr, st == SPF_DNS_OK ? nrr : 0);
	}
	if (spf_result(c) > SPF_PERMERROR || strlen(spf_explanation(c)) > SPF_EXPLAIN_MAX)
		abort();
	spf_check_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const uint8_t *nul = memchr(data, 0, size);
	size_t n = nul ? (size_t)(nul - data) : size;
	const uint8_t *extra = nul ? nul + 1 : data + size;
	size_t en = size - n - (nul ? 1 : 0);

	(void)spf_record_check(p, n, NULL, 0);
	char why[160];
	if (spf_record_check(p, n, why, sizeof why) < 0 && strnlen(why, sizeof why) == sizeof why)
		abort();

	struct spf_ip v4, v6;
	if (spf_ip_parse("192.0.2.3", &v4) < 0 || spf_ip_parse("2001:db8::cb01", &v6) < 0)
		abort();
	expand(p, n, &v4, false);
	expand(p, n, &v6, true);
	run(p, n, extra, en, en && (extra[0] & 0x80) ? &v6 : &v4);
	return 0;
}
