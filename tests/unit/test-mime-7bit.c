/*
 * test-mime-7bit.c - unit tests for mime_to_7bit (src/mail/mime-7bit.c):
 * exact output bytes, and the decoded bodies equal the original ones.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mime-7bit.h"
#include "mime-private.h"
#include "test.h"

/* Converts s; returns the result (static buffer) or NULL, rc in *rc. */
static const char *conv(const char *s, int *rc, char *why, size_t whysz)
{
	static struct buf out;
	buf_free(&out);
	buf_init(&out, 0);
	*rc = mime_to_7bit(s, strlen(s), &out, why, whysz);
	return *rc == 0 ? buf_cstr(&out) : NULL;
}

/* True when s is refused as not convertible, why naming word (if any). */
static bool refused(const char *s, const char *word)
{
	char why[200];
	int rc;
	if (conv(s, &rc, why, sizeof why) != NULL || rc != -2)
		return false;
	return word == NULL || strstr(why, word) != NULL;
}

static bool all_7bit_short(const char *s)
{
	size_t run = 0;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p >= 0x80)
			return false;
		run = *p == '\n' ? 0 : run + 1;
		if (run > 999)
			return false;
	}
	return true;
}

TEST(mime7_plain_8bit_message)
{
	const char *in = "From: a@example.org\r\nSubject: caf\xc3\xa9?\r\n\r\n";
	char why[200];
	int rc;
	/* 8-bit in the header: not convertible. */
	CHECK(refused(in, "header contains 8-bit"));

	in = "From: a@example.org\r\nSubject: hi\r\n\r\nCaf\xc3\xa9 = ok \r\nend\r\n";
	const char *got = conv(in, &rc, why, sizeof why);
	CHECK_INT(rc, 0);
	CHECK_STR(got, "From: a@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
		       "Content-Type: text/plain; charset=unknown-8bit\r\n"
		       "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		       "Caf=C3=A9 =3D ok=20\r\nend\r\n");
}

TEST(mime7_qp_soft_breaks)
{
	/* 80 'a' then an e-acute: soft break after 75, none over 76. */
	char in[400];
	char body[200];
	memset(body, 'a', 80);
	memcpy(body + 80, "\xc3\xa9\r\n", 5);
	snprintf(in, sizeof in,
		 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: 8bit\r\n\r\n%s",
		 body);
	char why[200];
	int rc;
	const char *got = conv(in, &rc, why, sizeof why);
	CHECK_INT(rc, 0);
	char want[600];
	char a75[76], a5[6];
	memset(a75, 'a', 75);
	a75[75] = '\0';
	memset(a5, 'a', 5);
	a5[5] = '\0';
	snprintf(want, sizeof want,
		 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n%s=\r\n%s=C3=A9\r\n",
		 a75, a5);
	CHECK_STR(got, want);
	/* Round trip. */
	const char *b = strstr(got, "\r\n\r\n") + 4;
	struct buf dec;
	buf_init(&dec, 0);
	CHECK_INT(mime_decode_qp(b, strlen(b), 1 << 20, &dec), 0);
	CHECK_INT(dec.len, 84); /* 80 + 2 + CRLF */
	CHECK(memcmp(dec.data, body, 84) == 0);
	buf_free(&dec);
	/* A '-' that a soft break puts at a line start is encoded: "--b1"
	 * there could be taken for a boundary. */
	snprintf(in, sizeof in, "Subject: x\r\n\r\n%s--b1 \xc3\xa9\r\n", a75);
	got = conv(in, &rc, why, sizeof why);
	CHECK_INT(rc, 0);
	snprintf(want, sizeof want,
		 "Subject: x\r\nMIME-Version: 1.0\r\n"
		 "Content-Type: text/plain; charset=unknown-8bit\r\n"
		 "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		 "%s=\r\n=2D-b1 =C3=A9\r\n",
		 a75);
	CHECK_STR(got, want);
}

/* The first, unchanged, part of the multipart test's input and output. */
#define MP_HEAD                                                                                    \
	"MIME-Version: 1.0\r\n"                                                                    \
	"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"                                   \
	"preamble\r\n"                                                                             \
	"--b1\r\n"                                                                                 \
	"Content-Type: text/plain\r\n\r\n"                                                         \
	"plain ascii\r\n"                                                                          \
	"--b1\r\n"                                                                                 \
	"Content-Type: text/plain; charset=iso-8859-1\r\n"

TEST(mime7_multipart)
{
	const char *in = MP_HEAD "Content-Transfer-Encoding: 8bit\r\n\r\n"
				 "\xe9t\xe9\r\n"
				 "--b1\r\n"
				 "Content-Type: application/octet-stream\r\n\r\n"
				 "\x01\xff\xfe\x80"
				 "\r\n--b1--\r\n"
				 "epilogue\r\n";
	char why[200];
	int rc;
	const char *got = conv(in, &rc, why, sizeof why);
	CHECK_INT(rc, 0);
	CHECK_STR(got, MP_HEAD "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
			       "=E9t=E9\r\n"
			       "--b1\r\n"
			       "Content-Type: application/octet-stream\r\n"
			       "Content-Transfer-Encoding: base64\r\n\r\n"
			       "Af/+gA==\r\n"
			       "\r\n--b1--\r\n"
			       "epilogue\r\n");
	CHECK(all_7bit_short(got));
	/* 8-bit in the preamble cannot be converted. */
	CHECK(refused("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
		      "pr\xe9\r\n--x\r\n\r\nhi\r\n--x--\r\n",
		      "preamble"));
}

TEST(mime7_base64_round_trip)
{
	/* 200 binary octets: lines of 76 characters. */
	char in[1024];
	size_t n = (size_t)snprintf(in, sizeof in,
				    "MIME-Version: 1.0\r\nContent-Type: image/png\r\n"
				    "Content-Transfer-Encoding: binary\r\n\r\n");
	char raw[200];
	for (size_t i = 0; i < sizeof raw; i++)
		raw[i] = (char)(0x80 + (i % 100) + 1); /* no NUL, no CR/LF */
	memcpy(in + n, raw, sizeof raw);
	in[n + sizeof raw] = '\0';
	char why[200];
	int rc;
	const char *got = conv(in, &rc, why, sizeof why);
	CHECK_INT(rc, 0);
	CHECK(strstr(got, "Content-Transfer-Encoding: base64\r\n\r\n") != NULL);
	CHECK(strstr(got, "binary") == NULL);
	const char *b = strstr(got, "\r\n\r\n") + 4;
	const char *nl = strstr(b, "\r\n");
	CHECK_INT(nl - b, 76);
	struct buf dec;
	buf_init(&dec, 0);
	CHECK_INT(mime_decode_base64(b, strlen(b), 1 << 20, &dec), 0);
	CHECK_INT(dec.len, sizeof raw);
	CHECK(memcmp(dec.data, raw, sizeof raw) == 0);
	buf_free(&dec);
}

TEST(mime7_message_rfc822)
{
	const char *in = "MIME-Version: 1.0\r\n"
			 "Content-Type: message/rfc822\r\n"
			 "Content-Transfer-Encoding: 8bit\r\n\r\n"
			 "Subject: inner\r\n\r\n"
			 "na\xc3\xafve\r\n";
	char why[200];
	int rc;
	const char *got = conv(in, &rc, why, sizeof why);
	CHECK_INT(rc, 0);
	CHECK_STR(got, "MIME-Version: 1.0\r\n"
		       "Content-Type: message/rfc822\r\n"
		       "Content-Transfer-Encoding: 7bit\r\n\r\n"
		       "Subject: inner\r\n"
		       "MIME-Version: 1.0\r\n"
		       "Content-Type: text/plain; charset=unknown-8bit\r\n"
		       "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		       "na=C3=AFve\r\n");
	/* message/global stays 8-bit: refused. */
	CHECK(refused("MIME-Version: 1.0\r\nContent-Type: message/global\r\n\r\n"
		      "Subject: x\r\n\r\n\xc3\xa9\r\n",
		      "message/global"));
}

TEST(mime7_unchanged_and_refused)
{
	const char *in = "Subject: plain\r\n\r\nJust ASCII.\r\n";
	char why[200];
	int rc;
	CHECK_STR(conv(in, &rc, why, sizeof why), in);
	/* Already encoded yet 8-bit: refused, not double-encoded. */
	CHECK(refused("MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n"
		      "Content-Type: text/plain\r\n\r\n\xff\r\n",
		      NULL));
	/* A 1200-octet ASCII line is re-encoded (lines of at most 76). */
	char big[1400];
	int n = snprintf(big, sizeof big, "Subject: long\r\n\r\n");
	memset(big + n, 'x', 1200);
	memcpy(big + n + 1200, "\r\n", 3);
	const char *got = conv(big, &rc, why, sizeof why);
	CHECK_INT(rc, 0);
	CHECK(strstr(got, "Content-Transfer-Encoding: quoted-printable\r\n") != NULL);
	CHECK(all_7bit_short(got));
	/* out's limit is reported as -1. */
	struct buf small;
	buf_init(&small, 10);
	CHECK_INT(mime_to_7bit(in, strlen(in), &small, why, sizeof why), -1);
	buf_free(&small);
}
