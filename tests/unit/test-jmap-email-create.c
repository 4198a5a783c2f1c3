/*
 * test-jmap-email-create.c - unit tests for src/jmap/jmap-email-create.c:
 * the exact message of a text create (fields in property order, header
 * forms, Date and Message-ID as given), the multipart made of textBody,
 * htmlBody and attachments, and the SetErrors of RFC 8621 4.6's rules.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jmap-email-create.h"
#include "jmap-json.h"
#include "test.h"

static int blob(void *ctx, const char *id, struct buf *out)
{
	if (strcmp(id, "Gx") != 0)
		return 0;
	return buf_puts(out, "PDF") == 0 ? 1 : -1;
}

/* Builds the create object json: NULL and the message in out, or the
 * SetError (a string if json does not parse). */
static json_t *build(const char *json, struct buf *out)
{
	char why[200];
	jmap_json_init();
	json_t *o = jmap_json_parse(json, strlen(json), 64, why, sizeof why);
	if (o == NULL)
		return json_string(why);
	json_t *e = jmap_email_build(o, blob, NULL, 0, out);
	json_decref(o);
	return e;
}

TEST(jmap_email_create_text)
{
	struct buf b = BUF_INIT;
	json_t *e =
	    build("{\"mailboxIds\":{\"M1\":true},\"subject\":\"Hi there\","
		  "\"header:List-Post:asURLs\":[\"mailto:l@x\"],"
		  "\"header:X-Raw\":\" raw\\n folded\","
		  "\"to\":[{\"name\":\"A\",\"email\":\"a@x\"}],"
		  "\"sentAt\":\"2020-01-02T03:04:05-05:30\",\"messageId\":[\"id@x\"],"
		  "\"textBody\":[{\"partId\":\"1\"}],\"bodyValues\":{\"1\":{\"value\":\"ok\"}}}",
		  &b);
	CHECK(e == NULL);
	CHECK_STR(buf_cstr(&b), "Subject: Hi there\r\n"
				"List-Post: <mailto:l@x>\r\n"
				"X-Raw: raw\r\n folded\r\n"
				"To: A <a@x>\r\n"
				"Date: Thu, 2 Jan 2020 03:04:05 -0530\r\n"
				"Message-ID: <id@x>\r\n"
				"MIME-Version: 1.0\r\n"
				"Content-Type: text/plain; charset=utf-8\r\n"
				"Content-Transfer-Encoding: 7bit\r\n"
				"\r\n"
				"ok");
	json_decref(e);
	buf_free(&b);
}

TEST(jmap_email_create_multipart)
{
	struct buf b = BUF_INIT;
	json_t *e = build("{\"messageId\":[\"m@x\"],\"sentAt\":\"2020-01-02T03:04:05Z\","
			  "\"textBody\":[{\"partId\":\"t\"}],\"htmlBody\":[{\"partId\":\"h\"}],"
			  "\"attachments\":[{\"blobId\":\"Gx\",\"type\":\"application/pdf\","
			  "\"name\":\"a.pdf\"}],"
			  "\"bodyValues\":{\"t\":{\"value\":\"T\"},\"h\":{\"value\":\"H\"}}}",
			  &b);
	CHECK(e == NULL);
	const char *m = buf_cstr(&b);
	CHECK(strstr(m, "Content-Type: multipart/mixed; boundary=\"=_tern_") != NULL);
	CHECK(strstr(m, "Content-Type: multipart/alternative;\r\n boundary=\"=_tern_") != NULL);
	CHECK(strstr(m, "Content-Type: text/html; charset=utf-8\r\n"
			"Content-Transfer-Encoding: 7bit\r\n\r\nH\r\n--") != NULL);
	CHECK(strstr(m, "Content-Type: application/pdf\r\n"
			"Content-Disposition: attachment; filename=a.pdf\r\n"
			"Content-Transfer-Encoding: base64\r\n\r\nUERG\r\n\r\n--") != NULL);
	json_decref(e);
	buf_free(&b);
}

static void check_error(const char *json, const char *want)
{
	struct buf b = BUF_INIT;
	json_t *e = build(json, &b);
	char *got = e ? jmap_json_dump(e, NULL) : NULL;
	CHECK_STR(got, want);
	free(got);
	json_decref(e);
	buf_free(&b);
}

TEST(jmap_email_create_errors)
{
	check_error("{\"subject\":\"a\",\"header:subject\":\" b\"}",
		    "{\"type\":\"invalidProperties\",\"description\":\"another property gives the "
		    "same header field\",\"properties\":[\"header:subject\"]}");
	check_error("{\"header:Subject:asAddresses\":[]}",
		    "{\"type\":\"invalidProperties\",\"description\":\"a parsed form RFC 8621 "
		    "4.1.2 does not allow for the field\",\"properties\":[\"header:Subject:"
		    "asAddresses\"]}");
	check_error("{\"attachments\":[{\"blobId\":\"Gy\"},{\"blobId\":\"Gz\"}]}",
		    "{\"type\":\"blobNotFound\",\"notFound\":[\"Gy\",\"Gz\"]}");
	check_error("{\"bodyStructure\":{\"type\":\"multipart/mixed\",\"partId\":\"1\"}}",
		    "{\"type\":\"invalidProperties\",\"description\":\"a multipart/* part has "
		    "subParts and nothing else has\",\"properties\":[\"bodyStructure\"]}");
	check_error("{\"textBody\":[{\"partId\":\"1\",\"charset\":\"latin1\"}],"
		    "\"bodyValues\":{\"1\":{\"value\":\"x\"}}}",
		    "{\"type\":\"invalidProperties\",\"description\":\"no charset or size with a "
		    "partId\",\"properties\":[\"textBody\"]}");
}
