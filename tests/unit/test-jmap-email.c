/*
 * test-jmap-email.c - unit tests for src/jmap/jmap-email-parts.c: the
 * header forms of RFC 8621 4.1.2 (with the RFC's own examples), the
 * split of the body by the algorithm of 4.1.4 (the RFC's example
 * structure), body values (charsets, truncation), the preview, the
 * property names and part blob paths.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jmap-email-parts.h"
#include "jmap-json.h"
#include "test.h"

/* Appends the comma-separated names of list to a. */
static void add_names(json_t *a, const char *list)
{
	while (*list) {
		size_t n = strcspn(list, ",");
		json_array_append_new(a, json_stringn(list, n));
		list += n;
		if (*list == ',')
			list++;
	}
}

/* The properties props (comma-separated) of msg as compact JSON, with
 * the body properties bprops (NULL: the default). */
static char *email(const char *msg, const char *props, const char *bprops, size_t max)
{
	jmap_json_init();
	json_t *p = json_array(), *bp = bprops ? json_array() : NULL;
	add_names(p, props);
	if (bprops)
		add_names(bp, bprops);
	struct jmap_email_opts o = {.props = p,
				    .body_props = bp,
				    .fetch_all = true,
				    .max_body_value_bytes = max,
				    .blob_id = "Fb"};
	json_t *obj = json_object();
	jmap_email_parts_fill(msg, strlen(msg), &o, obj);
	char *s = jmap_json_dump(obj, NULL);
	json_decref(obj);
	json_decref(p);
	json_decref(bp);
	return s;
}

#define CHECK_EMAIL(msg, props, bprops, max, want)                                                 \
	do {                                                                                       \
		char *s_ = email(msg, props, bprops, max);                                         \
		CHECK_STR(s_, want);                                                               \
		free(s_);                                                                          \
	} while (0)

TEST(jmap_email_addresses_rfc_example)
{
	/* RFC 8621 4.1.2.3 and 4.1.2.4, the same address-list */
	const char *m = "To: \"  James Smythe\" <james@example.com>, Friends:\r\n"
			"  jane@example.com, =?UTF-8?Q?John_Sm=C3=AEth?=\r\n"
			"  <john@example.com>;\r\n\r\n";
	CHECK_EMAIL(m, "to", NULL, 0,
		    "{\"to\":[{\"name\":\"James Smythe\",\"email\":\"james@example.com\"},"
		    "{\"name\":null,\"email\":\"jane@example.com\"},"
		    "{\"name\":\"John Sm\xc3\xaeth\",\"email\":\"john@example.com\"}]}");
	CHECK_EMAIL(m, "header:To:asGroupedAddresses", NULL, 0,
		    "{\"header:To:asGroupedAddresses\":[{\"name\":null,\"addresses\":"
		    "[{\"name\":\"James Smythe\",\"email\":\"james@example.com\"}]},"
		    "{\"name\":\"Friends\",\"addresses\":"
		    "[{\"name\":null,\"email\":\"jane@example.com\"},"
		    "{\"name\":\"John Sm\xc3\xaeth\",\"email\":\"john@example.com\"}]}]}");
	/* quoted pairs, a comment after the addr-spec as the name, a quoted local part */
	CHECK_EMAIL("From: \"A \\\"B\\\" C\" <a@x>, b@x (Bee), \"q u\"@x\r\n\r\n", "from", NULL, 0,
		    "{\"from\":[{\"name\":\"A \\\"B\\\" C\",\"email\":\"a@x\"},"
		    "{\"name\":\"Bee\",\"email\":\"b@x\"},"
		    "{\"name\":null,\"email\":\"\\\"q u\\\"@x\"}]}");
	/* absent field: null; empty: [] */
	CHECK_EMAIL("Cc:\r\n\r\n", "cc,bcc", NULL, 0, "{\"cc\":[],\"bcc\":null}");
}

TEST(jmap_email_text_nfc)
{
	/* RFC 8621 4.1.2.2 step 5: "e" + U+0301 becomes U+00E9, in the Text
	 * form and in address names (also after RFC 2047 decoding); Raw is
	 * left alone */
	CHECK_EMAIL("Subject: Caf"
		    "e\xcc\x81 =?utf-8?q?e=CC=81?=\r\n"
		    "From: Jose\xcc\x81 <j@x>\r\n\r\n",
		    "subject,from,header:Subject", NULL, 0,
		    "{\"subject\":\"Caf\xc3\xa9 \xc3\xa9\","
		    "\"from\":[{\"name\":\"Jos\xc3\xa9\",\"email\":\"j@x\"}],"
		    "\"header:Subject\":\" Cafe\xcc\x81 =?utf-8?q?e=CC=81?=\"}");
}

TEST(jmap_email_dates)
{
	struct {
		const char *v, *want;
	} cases[] = {
	    {"Mon, 7 Dec 2026 09:08:07 +0100", "\"2026-12-07T09:08:07+01:00\""},
	    {"7 Dec 2026 09:08 -0000", "\"2026-12-07T09:08:00Z\""},
	    {"Sun, 6 Dec 26 23:00:00 PDT (comment)", "\"2026-12-06T23:00:00-07:00\""},
	    {"1 Jan 99 00:00:00 GMT", "\"1999-01-01T00:00:00Z\""},
	    {"29 Feb 2024 12:00:00 +0000", "\"2024-02-29T12:00:00Z\""},
	    {"29 Feb 2025 12:00:00 +0000", "null"},
	    {"32 Dec 2026 09:08:07 +0100", "null"},
	    {"7 Foo 2026 09:08:07 +0100", "null"},
	    {"7 Dec 2026 24:08:07 +0100", "null"},
	    {"7 Dec 2026 09:08:07 +01", "null"},
	    {"7 Dec 2026 09:08:07 +0100 trailing", "null"},
	    {"yesterday", "null"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char msg[256], want[128];
		snprintf(msg, sizeof msg, "Date: %s\r\n\r\n", cases[i].v);
		snprintf(want, sizeof want, "{\"sentAt\":%s}", cases[i].want);
		CHECK_EMAIL(msg, "sentAt", NULL, 0, want);
	}
}

TEST(jmap_email_ids_urls_text_raw)
{
	const char *m = "Message-ID: <a@b>\r\n"
			"References: <x@y> (c)\r\n <z@w>\r\n"
			"In-Reply-To: not one\r\n"
			"List-Unsubscribe: <mailto:u@l?subject=x>, <https://l/u>\r\n"
			"List-Post: NO\r\n"
			"Subject:  =?utf-8?b?w6k=?= =?utf-8?b?w6k=?= x \r\n"
			"X-Raw: a\xff\x00"
			"b\r\n"
			"\r\n";
	CHECK_EMAIL(m,
		    "messageId,references,inReplyTo,header:List-Unsubscribe:asURLs,"
		    "header:List-Post:asURLs,subject,header:Subject",
		    NULL, 0,
		    "{\"messageId\":[\"a@b\"],\"references\":[\"x@y\",\"z@w\"],\"inReplyTo\":null,"
		    "\"header:List-Unsubscribe:asURLs\":[\"mailto:u@l?subject=x\",\"https://l/u\"],"
		    "\"header:List-Post:asURLs\":null,"
		    "\"subject\":\"\xc3\xa9\xc3\xa9 x \","
		    "\"header:Subject\":\"  =?utf-8?b?w6k=?= =?utf-8?b?w6k=?= x \"}");
}

TEST(jmap_email_parse_structure_rfc_example)
{
	/* RFC 8621 4.1.4's example: textBody A B C D K, htmlBody A E K,
	 * attachments C F G H J */
	const char *m =
	    "Content-Type: multipart/mixed; boundary=m0\r\n\r\n"
	    "--m0\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\nA\r\n"
	    "--m0\r\nContent-Type: multipart/mixed; boundary=m1\r\n\r\n"
	    "--m1\r\nContent-Type: multipart/alternative; boundary=a1\r\n\r\n"
	    "--a1\r\nContent-Type: multipart/mixed; boundary=m2\r\n\r\n"
	    "--m2\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\nB\r\n"
	    "--m2\r\nContent-Type: image/jpeg\r\nContent-Disposition: inline\r\n\r\nC\r\n"
	    "--m2\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\nD\r\n"
	    "--m2--\r\n"
	    "--a1\r\nContent-Type: multipart/related; boundary=r1\r\n\r\n"
	    "--r1\r\nContent-Type: text/html\r\n\r\nE\r\n"
	    "--r1\r\nContent-Type: image/jpeg\r\n\r\nF\r\n"
	    "--r1--\r\n"
	    "--a1--\r\n"
	    "--m1\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment\r\n\r\nG\r\n"
	    "--m1\r\nContent-Type: application/x-excel\r\n\r\nH\r\n"
	    "--m1\r\nContent-Type: message/rfc822\r\n\r\nSubject: J\r\n\r\nJ\r\n"
	    "--m1--\r\n"
	    "--m0\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n\r\nK\r\n"
	    "--m0--\r\n";
	CHECK_EMAIL(m, "textBody,htmlBody,attachments,hasAttachment", "partId", 0,
		    "{\"textBody\":[{\"partId\":\"1\"},{\"partId\":\"2.1.1.1\"},"
		    "{\"partId\":\"2.1.1.2\"},{\"partId\":\"2.1.1.3\"},{\"partId\":\"3\"}],"
		    "\"htmlBody\":[{\"partId\":\"1\"},{\"partId\":\"2.1.2.1\"},{\"partId\":\"3\"}],"
		    "\"attachments\":[{\"partId\":\"2.1.1.2\"},{\"partId\":\"2.1.2.2\"},"
		    "{\"partId\":\"2.2\"},{\"partId\":\"2.3\"},{\"partId\":\"2.4\"}],"
		    "\"hasAttachment\":true}");
	CHECK(jmap_email_has_attachment(m, strlen(m)));
	const char *inline_only =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
	    "--b\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n"
	    "\r\nP\r\n--b--\r\n";
	CHECK(!jmap_email_has_attachment(inline_only, strlen(inline_only)));
}

TEST(jmap_email_body_values)
{
	/* ISO-8859-1 quoted-printable, CRLF to LF, truncation on a code point */
	const char *m = "Content-Type: text/plain; charset=ISO-8859-1\r\n"
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
			"caf=E9\r\nna=EFve\r\n";
	CHECK_EMAIL(m, "bodyValues", NULL, 0,
		    "{\"bodyValues\":{\"1\":{\"value\":\"caf\xc3\xa9\\nna\xc3\xafve\\n\","
		    "\"isEncodingProblem\":false,\"isTruncated\":false}}}");
	CHECK_EMAIL(m, "bodyValues", NULL, 4,
		    "{\"bodyValues\":{\"1\":{\"value\":\"caf\","
		    "\"isEncodingProblem\":false,\"isTruncated\":true}}}");
	CHECK_EMAIL(m, "bodyValues", NULL, 5,
		    "{\"bodyValues\":{\"1\":{\"value\":\"caf\xc3\xa9\","
		    "\"isEncodingProblem\":false,\"isTruncated\":true}}}");
	/* HTML is not cut inside a tag */
	CHECK_EMAIL("Content-Type: text/html\r\n\r\nab<a href=x>c", "bodyValues", NULL, 6,
		    "{\"bodyValues\":{\"1\":{\"value\":\"ab\","
		    "\"isEncodingProblem\":false,\"isTruncated\":true}}}");
	/* invalid UTF-8 */
	CHECK_EMAIL("Content-Type: text/plain; charset=utf-8\r\n\r\na\xc3(", "bodyValues", NULL, 0,
		    "{\"bodyValues\":{\"1\":{\"value\":\"a\xef\xbf\xbd(\","
		    "\"isEncodingProblem\":true,\"isTruncated\":false}}}");
}

TEST(jmap_email_preview)
{
	CHECK_EMAIL("Content-Type: text/html\r\n\r\n<html><style>p {x}</style><p>Tom &amp; "
		    "Jerry</p>\r\n\r\n<p>  again</p>",
		    "preview", NULL, 0, "{\"preview\":\"Tom & Jerry again\"}");
	/* 300 "é": at most 256 characters */
	struct buf b = BUF_INIT;
	buf_puts(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	for (int i = 0; i < 300; i++)
		buf_puts(&b, "\xc3\xa9");
	char *s = email(buf_cstr(&b), "preview", NULL, 0);
	CHECK_INT(strlen(s), strlen("{\"preview\":\"\"}") + 512);
	free(s);
	buf_free(&b);
}

TEST(jmap_email_prop_names_and_paths)
{
	char why[256];
	CHECK(jmap_email_prop_ok("header:X-Foo", false, why, sizeof why));
	CHECK(jmap_email_prop_ok("header:X-Foo:asDate:all", false, why, sizeof why));
	CHECK(jmap_email_prop_ok("header:from:asAddresses", false, why, sizeof why));
	CHECK(jmap_email_prop_ok("header:Content-Type", true, why, sizeof why));
	CHECK(jmap_email_prop_ok("subParts", true, why, sizeof why));
	CHECK(!jmap_email_prop_ok("subParts", false, why, sizeof why));
	CHECK(!jmap_email_prop_ok("subject", true, why, sizeof why));
	CHECK(!jmap_email_prop_ok("header:From:asDate", false, why, sizeof why));
	CHECK(!jmap_email_prop_ok("header:Subject:asURLs", false, why, sizeof why));
	CHECK(!jmap_email_prop_ok("header:X:all:asRaw", false, why, sizeof why));
	CHECK(!jmap_email_prop_ok("header:X:asraw", false, why, sizeof why));
	CHECK(!jmap_email_prop_ok("header:", false, why, sizeof why));
	CHECK(!jmap_email_prop_ok("header:\xc3\xa9", false, why, sizeof why));
	unsigned path[4];
	size_t n;
	CHECK(jmap_email_parts_path("_1_20", path, 4, &n));
	CHECK_INT(n, 2);
	CHECK_INT(path[1], 20);
	CHECK(!jmap_email_parts_path("", path, 4, &n));
	CHECK(!jmap_email_parts_path("_", path, 4, &n));
	CHECK(!jmap_email_parts_path("_01", path, 4, &n));
	CHECK(!jmap_email_parts_path("_1_", path, 4, &n));
	CHECK(!jmap_email_parts_path("_1_2_3_4_5", path, 4, &n));
	CHECK(!jmap_email_parts_path("_99999999999", path, 4, &n));
	/* a part's blob is its decoded content */
	const char *m = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			"--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--b--\r\n";
	struct buf out = BUF_INIT;
	unsigned one[] = {1}, two[] = {2};
	CHECK_INT(jmap_email_parts_blob(m, strlen(m), one, 1, &out), 1);
	CHECK_STR(buf_cstr(&out), "hi");
	CHECK_INT(jmap_email_parts_blob(m, strlen(m), two, 1, &out), 0);
	/* past an attached message the numbers are those of that message */
	const char *f = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			"--b\r\n\r\ntext\r\n"
			"--b\r\nContent-Type: message/rfc822\r\n\r\n"
			"Content-Type: multipart/mixed; boundary=c\r\n\r\n"
			"--c\r\n\r\nin1\r\n--c\r\nContent-Transfer-Encoding: base64\r\n\r\n"
			"aW4y\r\n--c--\r\n"
			"--b--\r\n";
	unsigned p22[] = {2, 2}, p21[] = {2, 1}, p12[] = {1, 2}, p23[] = {2, 3};
	buf_reset(&out);
	CHECK_INT(jmap_email_parts_blob(f, strlen(f), p22, 2, &out), 1);
	CHECK_STR(buf_cstr(&out), "in2");
	buf_reset(&out);
	CHECK_INT(jmap_email_parts_blob(f, strlen(f), p21, 2, &out), 1);
	CHECK_STR(buf_cstr(&out), "in1");
	CHECK_INT(jmap_email_parts_blob(f, strlen(f), p12, 2, &out), 0);
	CHECK_INT(jmap_email_parts_blob(f, strlen(f), p23, 2, &out), 0);
	buf_free(&out);
}
