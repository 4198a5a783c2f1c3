/*
 * test-base64.c - unit tests for src/lib/base64.c: RFC 4648 section 10
 * vectors both ways, and the strictness of the decoder.
 */
#include <string.h>

#include "base64.h"
#include "test.h"

static const struct {
	const char *plain, *enc;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(base64_rfc4648_vectors)
{
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		char enc[32];
		size_t n = strlen(vectors[i].plain);
		CHECK_INT(base64_encode(vectors[i].plain, n, enc, sizeof enc),
			  (long)strlen(vectors[i].enc));
		CHECK_STR(enc, vectors[i].enc);
		CHECK_INT(base64_encoded_len(n), strlen(vectors[i].enc));
		char dec[32];
		long d = base64_decode(vectors[i].enc, strlen(vectors[i].enc), dec, sizeof dec);
		CHECK_INT(d, (long)n);
		CHECK(d >= 0 && memcmp(dec, vectors[i].plain, n) == 0);
	}
}

TEST(base64_all_bytes_round_trip)
{
	unsigned char in[256], out[256];
	char enc[400];
	for (size_t i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	for (size_t n = 0; n <= 256; n += 1) {
		long e = base64_encode(in, n, enc, sizeof enc);
		CHECK_INT(e, (long)base64_encoded_len(n));
		long d = base64_decode(enc, (size_t)e, out, sizeof out);
		CHECK_INT(d, (long)n);
		CHECK(memcmp(in, out, n) == 0);
	}
	/* "+/" are the last two characters of the alphabet. */
	unsigned char hi[3] = {0xfb, 0xff, 0xbf};
	CHECK_INT(base64_encode(hi, 3, enc, sizeof enc), 4);
	CHECK_STR(enc, "+/+/");
}

TEST(base64_encode_needs_room)
{
	char out[5];
	CHECK_INT(base64_encode("foo", 3, out, 4), -1);
	CHECK_INT(base64_encode("foo", 3, out, 5), 4);
	CHECK_STR(out, "Zm9v");
}

TEST(base64_decode_is_strict)
{
	char out[64];
	static const char *const bad[] = {
	    "Zg",       /* no padding */
	    "Zg=",      /* short padding */
	    "Zm9v\r\n", /* line break */
	    "Zm 9v",    /* blank */
	    "Zg==Zg==", /* padding in the middle */
	    "Z===",     /* three pads */
	    "====",     /* nothing but padding */
	    "Zh==",     /* non-zero unused bits (canonical is Zg==) */
	    "Zm9=",     /* non-zero unused bits (canonical is Zm8=) */
	    "Zm9v-_==", /* URL alphabet */
	    "Zm9\x80",  /* 8-bit byte */
	    "=m9v",     /* pad first */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (base64_decode(bad[i], strlen(bad[i]), out, sizeof out) != -1)
			test_fail_str(__FILE__, __LINE__, "accepted", bad[i], "-1");
	}
	/* A NUL inside is not skipped either. */
	CHECK_INT(base64_decode("Zg\0=", 4, out, sizeof out), -1);
	/* Too small an output buffer. */
	CHECK_INT(base64_decode("Zm9vYmFy", 8, out, 5), -1);
	CHECK_INT(base64_decode("Zm9vYmFy", 8, out, 6), 6);
	CHECK_INT(base64_decoded_max(8), 6);
}
