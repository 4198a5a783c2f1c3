/*
 * fuzz-sasl.c - libFuzzer target for src/auth/sasl.c and src/lib/base64.c.
 *
 * Input: one control byte, then responses, each a 2-byte big-endian length
 * and that many bytes (a short last one is cut to what is left).  The
 * control byte picks the mechanism (bits 0-1), whether the connection
 * offers channel bindings (bit 2), and whether the first response is the
 * initial response (bit 3).  Each response is also base64-decoded and
 * re-encoded (strict decoding must round-trip exactly), and the whole
 * input is parsed as a SCRAM record.
 *
 * The lookup knows "user" (the RFC 7677 keys of "pencil", no crypt hash,
 * so PLAIN/LOGIN never run a slow hash) and "imported" (a hash but no
 * SCRAM keys, and an app password with id "2222" whose hash is locked,
 * so no slow hash either; id "ffff" makes the app lookup fail); the
 * server nonce is the RFC's, so the RFC exchange in the
 * seed corpus reaches success.  Checks: statuses follow the contract
 * (data only where promised, account only after OK, error only after
 * FAIL, done is sticky, an app-password name only after OK).  The
 * whole input is also tried as an app password (apppass_parse): what it
 * accepts must be canonical and parse again to itself.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apppass.h"
#include "base64.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rfc_record[] = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
				 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
				 "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

static int lookup(void *ctx, const char *user, struct sasl_creds *out)
{
	(void)ctx;
	if (!strcmp(user, "user")) {
		snprintf(out->address, sizeof out->address, "user");
		snprintf(out->scram, sizeof out->scram, "%s", rfc_record);
		return 1;
	}
	if (!strcmp(user, "imported")) {
		snprintf(out->address, sizeof out->address, "imported");
		snprintf(out->pwhash, sizeof out->pwhash, "*locked");
		return 1;
	}
	if (!strcmp(user, "fail"))
		return -1;
	return 0;
}

static int app_lookup(void *ctx, const char *address, const char *id,
		      struct sasl_app_creds *out)
{
	(void)ctx;
	if (strcmp(address, "imported") != 0)
		abort(); /* only asked for a user the lookup knew */
	if (strlen(id) != APPPASS_ID_LEN)
		abort();
	if (!strcmp(id, "ffff"))
		return -1;
	if (strcmp(id, "2222") != 0)
		return 0;
	snprintf(out->name, sizeof out->name, "phone");
	snprintf(out->pwhash, sizeof out->pwhash, "*locked");
	return 1;
}

static void check_apppass(const uint8_t *p, size_t n)
{
	char text[APPPASS_TEXT_SIZE], id[APPPASS_ID_SIZE];
	if (!apppass_parse((const char *)p, n, text, id))
		return;
	char t2[APPPASS_TEXT_SIZE], id2[APPPASS_ID_SIZE];
	if (strlen(text) != APPPASS_TEXT_SIZE - 1 || strncmp(text, id, APPPASS_ID_LEN) != 0 ||
	    !apppass_parse(text, strlen(text), t2, id2) || strcmp(t2, text) != 0 ||
	    strcmp(id2, id) != 0)
		abort();
}

static void check_base64(const uint8_t *p, size_t n)
{
	unsigned char *dec = malloc(base64_decoded_max(n) + 1);
	if (dec == NULL)
		return;
	long d = base64_decode((const char *)p, n, dec, base64_decoded_max(n) + 1);
	if (d >= 0) {
		char *enc = malloc(base64_encoded_len((size_t)d) + 1);
		if (enc != NULL) {
			long e =
			    base64_encode(dec, (size_t)d, enc, base64_encoded_len((size_t)d) + 1);
			if (e < 0 || (size_t)e != n || memcmp(enc, p, n) != 0)
				abort();
			free(enc);
		}
	}
	free(dec);
}

static void check_status(struct sasl_server *s, enum sasl_status st)
{
	size_t n;
	sasl_server_data(s, &n);
	if (n > 384)
		abort();
	if (st == SASL_FAIL && (n != 0 || sasl_server_error(s) == SASL_ERR_NONE))
		abort();
	if (st != SASL_FAIL && sasl_server_error(s) != SASL_ERR_NONE)
		abort();
	if ((st == SASL_OK) != (sasl_server_account(s)[0] != '\0'))
		abort();
	if (st != SASL_OK && sasl_server_app_name(s)[0] != '\0')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *rec = malloc(size + 1);
	if (rec != NULL) {
		memcpy(rec, data, size);
		rec[size] = '\0';
		struct sasl_scram_keys k;
		(void)sasl_scram_parse(rec, &k);
		free(rec);
	}

	check_apppass(data, size);
	uint8_t ctl = data[0];
	static const unsigned char cb1[32] = {1, 2, 3};
	static const unsigned char cb2[48] = {4, 5, 6};
	struct sasl_params p;
	memset(&p, 0, sizeof p);
	p.lookup = lookup;
	p.app_lookup = app_lookup;
	if (ctl & 4) {
		p.cbind[0] = (struct sasl_cbind){"tls-exporter", cb1, sizeof cb1};
		p.cbind[1] = (struct sasl_cbind){"tls-server-end-point", cb2, sizeof cb2};
		p.n_cbind = 2;
	}
	struct sasl_server *s = sasl_server_new((enum sasl_mech)(ctl & 3), &p);
	sasl_server_set_nonce(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");

	size_t off = 1;
	bool started = false;
	enum sasl_status st = SASL_CONTINUE;
	if (!(ctl & 8)) {
		st = sasl_server_start(s, NULL, 0);
		check_status(s, st);
		started = true;
	}
	while (off + 2 <= size && st == SASL_CONTINUE) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		const uint8_t *resp = data + off;
		off += len;
		check_base64(resp, len);
		if (!started) {
			st = sasl_server_start(s, resp, len);
			started = true;
		} else {
			st = sasl_server_step(s, resp, len);
		}
		if (st == SASL_VERIFY)
			st = sasl_server_verify(s);
		check_status(s, st);
	}
	if (st == SASL_OK || st == SASL_FAIL) {
		/* Done is sticky. */
		if (sasl_server_step(s, "x", 1) != st)
			abort();
	}
	sasl_server_free(&s);
	return 0;
}
