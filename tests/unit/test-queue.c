/*
 * test-queue.c - unit tests for the pure parts of src/queue: the remote
 * reply parser (smtp-reply.c, fed whole and line by line), the EHLO
 * keywords, enhanced status codes, the plain-language explanations
 * (queue-explain.c) and the DSN builder (queue-dsn.c, RFC 3464).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "queue-dsn.h"
#include "queue-explain.h"
#include "smtp-reply.h"
#include "test.h"

static enum smtp_reply_status feed(struct smtp_reply *r, const char *line)
{
	size_t n = strlen(line);
	char *h = malloc(n ? n : 1);
	if (h == NULL)
		abort();
	memcpy(h, line, n);
	enum smtp_reply_status st = smtp_reply_feed(r, h, n);
	free(h);
	return st;
}

TEST(reply_single_and_multi)
{
	struct smtp_reply r;
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "250 2.1.0 Ok"), SMTP_REPLY_DONE);
	CHECK_INT(r.code, 250);
	CHECK_STR(r.text, "2.1.0 Ok");
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "250-mx.example"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250-PIPELINING"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250-SIZE 1000"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250-8bitmime"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250-SMTPUTF8"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250 STARTTLS"), SMTP_REPLY_DONE);
	CHECK_INT(r.n_lines, 6);
	struct smtp_caps c;
	smtp_reply_caps(&r, &c);
	CHECK(c.esmtp && c.pipelining && c.eightbitmime && c.smtputf8 && c.starttls && c.size);
	CHECK(!c.chunking && !c.dsn && !c.auth_plain);
	CHECK_INT(c.size_max, 1000);
	/* AUTH with PLAIN anywhere in its list, any case; CHUNKING, DSN. */
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "250-mx.example"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250-AUTH SCRAM-SHA-256  plain LOGIN"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250-CHUNKING"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250 DSN"), SMTP_REPLY_DONE);
	smtp_reply_caps(&r, &c);
	CHECK(c.auth_plain && c.chunking && c.dsn && !c.pipelining && !c.requiretls);
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "250-mx.example"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250 requiretls"), SMTP_REPLY_DONE);
	smtp_reply_caps(&r, &c);
	CHECK(c.requiretls);
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "250-mx.example"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250-AUTH PLAINX LOGIN"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "250 AUTHPLAIN"), SMTP_REPLY_DONE);
	smtp_reply_caps(&r, &c);
	CHECK(!c.auth_plain);
	/* "NNN" alone ends a reply; text is empty. */
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "354"), SMTP_REPLY_DONE);
	CHECK_STR(r.text, "");
	char one[64];
	smtp_reply_oneline(&r, one, sizeof one);
	CHECK_STR(one, "354");
}

TEST(reply_malformed)
{
	struct smtp_reply r;
	const char *bad[] = {"", "25", "250x", "abc def", "150 no", "650 no", "2a0 x", "250_x"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		smtp_reply_init(&r);
		CHECK_INT(feed(&r, bad[i]), SMTP_REPLY_BAD);
	}
	/* The code may not change inside a reply. */
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "250-a"), SMTP_REPLY_MORE);
	CHECK_INT(feed(&r, "251 b"), SMTP_REPLY_BAD);
	/* Nothing after the last line. */
	smtp_reply_init(&r);
	CHECK_INT(feed(&r, "250 a"), SMTP_REPLY_DONE);
	CHECK_INT(feed(&r, "250 b"), SMTP_REPLY_BAD);
	/* A bounded number of lines. */
	smtp_reply_init(&r);
	enum smtp_reply_status st = SMTP_REPLY_MORE;
	for (int i = 0; i < SMTP_REPLY_MAX_LINES + 5 && st == SMTP_REPLY_MORE; i++)
		st = feed(&r, "250-x");
	CHECK_INT(st, SMTP_REPLY_BAD);
	CHECK_INT(r.n_lines, SMTP_REPLY_MAX_LINES);
}

TEST(reply_text_truncated_and_oneline)
{
	struct smtp_reply r;
	smtp_reply_init(&r);
	char line[3000];
	memset(line, 'x', sizeof line - 1);
	line[sizeof line - 1] = '\0';
	memcpy(line, "550-", 4);
	CHECK_INT(feed(&r, line), SMTP_REPLY_MORE);
	line[3] = ' ';
	CHECK_INT(feed(&r, line), SMTP_REPLY_DONE);
	CHECK_INT(r.text_len, SMTP_REPLY_TEXT_MAX - 1);
	CHECK_INT(strlen(r.text), SMTP_REPLY_TEXT_MAX - 1);
	smtp_reply_init(&r);
	feed(&r, "550-5.1.1 first\tline");
	feed(&r, "550 second \x01 line \xc3\xa9");
	char one[80];
	smtp_reply_oneline(&r, one, sizeof one);
	CHECK_STR(one, "550 5.1.1 first?line second ? line ??");
	smtp_reply_oneline(&r, one, 8);
	CHECK_STR(one, "550 5.1");
}

TEST(reply_enhanced)
{
	char st[16];
	CHECK_INT(smtp_reply_enhanced("5.1.1 <x>: User unknown", st), 1);
	CHECK_STR(st, "5.1.1");
	CHECK_INT(smtp_reply_enhanced("4.7.1", st), 1);
	CHECK_STR(st, "4.7.1");
	CHECK_INT(smtp_reply_enhanced("5.1.10 Null MX", st), 1);
	CHECK_STR(st, "5.1.10");
	CHECK_INT(smtp_reply_enhanced("2.0.0 Ok", st), 1);
	CHECK_INT(smtp_reply_enhanced("3.0.0 x", st), 0);
	CHECK_STR(st, "");
	CHECK_INT(smtp_reply_enhanced("5.1 x", st), 0);
	CHECK_INT(smtp_reply_enhanced("5.1.1x", st), 0);
	CHECK_INT(smtp_reply_enhanced("5.1234.1 x", st), 0);
	CHECK_INT(smtp_reply_enhanced("User unknown", st), 0);
	CHECK_INT(smtp_reply_enhanced("", st), 0);
}

/* The buffer queue_explain may write into. */
static char xb[QUEUE_EXPLAIN_MAX];
#define EXPLAIN(code, status, text) queue_explain(code, status, text, xb, sizeof xb)
#define EXPLAIN_REPLY(reply, status) queue_explain_reply(reply, status, xb, sizeof xb)

TEST(explain)
{
	CHECK_STR(
	    EXPLAIN_REPLY("550 5.1.1 <a@b>: Recipient address rejected: User unknown", "5.1.1"),
	    "The address does not exist at the receiving domain. Check the spelling of the "
	    "address.");
	CHECK(strstr(EXPLAIN(552, "5.2.2", "Mailbox full"), "mailbox is full"));
	CHECK(strstr(EXPLAIN_REPLY("smtp.example [192.0.2.1] refused our credentials: 535 "
				   "5.7.8 Authentication failed",
				   "4.7.0"),
		     "relay host"));
	CHECK(strstr(EXPLAIN_REPLY("the certificate of smtp.example [192.0.2.1] did not "
				   "verify: the relay password is not sent",
				   "4.7.0"),
		     "relay host"));
	CHECK(strstr(EXPLAIN(452, "4.2.2", "Over quota"), "mailbox is full"));
	CHECK(strstr(EXPLAIN(550, "5.7.1", "Message rejected as spam"), "as spam"));
	CHECK(strstr(EXPLAIN(550, "5.7.1", "Rejected by policy"), "policy"));
	CHECK(strstr(EXPLAIN(550, "5.7.23", "SPF check failed"), "SPF"));
	CHECK(strstr(EXPLAIN(550, "5.7.1",
			     "Unauthenticated email is not accepted due to "
			     "domain's DMARC policy"),
		     "DMARC"));
	CHECK(strstr(EXPLAIN(451, "4.7.1", "Greylisted, try again later"), "greylisting"));
	CHECK(strstr(EXPLAIN(0, "5.1.10", "the domain x accepts no mail (Null MX)"), "Null MX"));
	CHECK(strstr(EXPLAIN(0, "5.1.2", "the domain x does not exist (NXDOMAIN)"),
		     "does not exist in DNS"));
	/* The resolver that said so is named (src/dns writes this text). */
	CHECK_STR(EXPLAIN(0, "5.1.2",
			  "the DNS resolver 127.0.0.1:5353 says the domain nosuch.example does "
			  "not exist (NXDOMAIN)"),
		  "The DNS resolver 127.0.0.1:5353 says that the recipient's domain "
		  "nosuch.example does not exist in DNS. Check the part of the address after "
		  "the @ for typing mistakes. If it is spelled correctly, that resolver is "
		  "probably giving wrong answers: the administrator of this mail server should "
		  "check it.");
	CHECK(EXPLAIN(0, "5.1.2",
		      "the DNS resolver 127.0.0.1:5353 says the domain x does "
		      "not exist (NXDOMAIN)") == xb);
	/* A special-use name: no resolver to name, the static sentence. */
	CHECK(strstr(EXPLAIN(0, "5.1.2",
			     "the domain x.invalid does not exist: it is a special-use name "
			     "(RFC 6761) that no DNS server is asked about (NXDOMAIN)"),
		     "Check the part of the address after the @"));
	/* Malformed: no domain between the words. */
	CHECK(strstr(EXPLAIN(0, "5.1.2",
			     "the DNS resolver r says the domain  does not exist"
			     " (NXDOMAIN)"),
		     "The recipient's domain does not exist in DNS."));
	CHECK(strstr(EXPLAIN(0, "4.4.1",
			     "connection to mx [1.2.3.4] failed: connection "
			     "refused"),
		     "refused the connection"));
	CHECK(strstr(EXPLAIN(0, "4.4.2", "timeout talking to mx [1.2.3.4]"), "timeout"));
	CHECK(strstr(EXPLAIN(0, "4.7.0", "TLS handshake failed"), "TLS"));
	CHECK(strstr(EXPLAIN(0, "4.4.3", "temporary DNS failure looking up MX of x"), "DNS"));
	/* A temporary failure (or timeout) names the resolver too. */
	static const char temp[] =
	    "The DNS resolver 10.0.0.1 or 10.0.0.2 (from /etc/resolv.conf) could not look up "
	    "the mail servers of the recipient's domain right now. This is usually temporary; "
	    "delivery is retried automatically. If it keeps happening, the administrator of this "
	    "mail server should check that resolver.";
	CHECK_STR(EXPLAIN(0, "4.4.3",
			  "the DNS resolver 10.0.0.1 or 10.0.0.2 (from /etc/resolv.conf) failed to "
			  "look up MX of x.example (temporary DNS failure: server failure)"),
		  temp);
	CHECK_STR(EXPLAIN(0, "4.4.3",
			  "the DNS resolver 10.0.0.1 or 10.0.0.2 (from /etc/resolv.conf) did not "
			  "answer in time looking up the mail servers of x.example (DNS timeout)"),
		  temp);
	CHECK(strstr(EXPLAIN(0, "4.4.3",
			     "the DNS resolver 10.0.0.1 failed to look up the addresses of the "
			     "mail servers of x.example (temporary DNS failure)"),
		     "The DNS resolver 10.0.0.1 could not look up"));
	CHECK(strstr(EXPLAIN(552, "5.3.4", "Message size exceeds limit"), "larger"));
	CHECK(strstr(EXPLAIN(550, "", "no"), "permanently"));
	CHECK(strstr(EXPLAIN(450, "", "no"), "temporary"));
	CHECK(strstr(EXPLAIN(0, "4.4.7", "last: 451 x"), "time allowed"));
	/* Never NULL, also for nothing at all. */
	CHECK(EXPLAIN(0, NULL, NULL) != NULL);
	CHECK(EXPLAIN_REPLY("", "") != NULL);
}

TEST(dsn_build)
{
	struct queue_dsn_rcpt rc[2] = {
	    {"nobody@b.test", "5.1.1",
	     "550 5.1.1 <nobody@b.test>: Recipient address rejected: User unknown",
	     "mx.b.test [192.0.2.3]", 1700000100, NULL, NULL},
	    {"x@null.test", "5.1.10", "the domain null.test accepts no mail (Null MX, RFC 7505)",
	     "", 0, NULL, NULL},
	};
	static const char head[] = "From: <alice@a.test>\r\nSubject: hi\r\n";
	struct queue_dsn d = {
	    .delay = false,
	    .hostname = "mx.a.test",
	    .sender = "alice@a.test",
	    .boundary = "BOUNDARY",
	    .message_id = "id.dsn@mx.a.test",
	    .now = 1700000200,
	    .arrival = 1700000000,
	    .retry_until = 1700432000,
	    .rcpts = rc,
	    .n_rcpts = 2,
	    .orig_header = head,
	    .orig_header_len = sizeof head - 1,
	};
	struct buf b = BUF_INIT;
	CHECK_INT(queue_dsn_build(&b, &d), 0);
	const char *s = buf_cstr(&b);
	CHECK(strstr(s, "\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.a.test>\r\n"
			"To: <alice@a.test>\r\nSubject: Undelivered Mail Returned to Sender\r\n"
			"Message-ID: <id.dsn@mx.a.test>\r\nAuto-Submitted: auto-replied\r\n"
			"MIME-Version: 1.0\r\n"
			"Content-Type: multipart/report; report-type=delivery-status;\r\n"
			"\tboundary=\"BOUNDARY\"\r\n\r\n") != NULL);
	CHECK(strstr(s, "--BOUNDARY\r\nContent-Description: Notification\r\n"
			"Content-Type: text/plain; charset=us-ascii\r\n\r\n") != NULL);
	CHECK(strstr(s, "<nobody@b.test>\r\n    The mail server mx.b.test [192.0.2.3] answered:\r\n"
			"        550 5.1.1 <nobody@b.test>: Recipient address rejected: User\r\n"
			"        unknown\r\n    In plain words:\r\n") != NULL);
	CHECK(
	    strstr(s,
		   "--BOUNDARY\r\nContent-Description: Delivery report\r\n"
		   "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.a.test\r\n"
		   "Arrival-Date: ") != NULL);
	CHECK(strstr(s, "\r\n\r\nFinal-Recipient: rfc822; nobody@b.test\r\nAction: failed\r\n"
			"Status: 5.1.1\r\nRemote-MTA: dns; mx.b.test\r\nDiagnostic-Code: smtp; 550 "
			"5.1.1 <nobody@b.test>: Recipient address rejected: User unknown\r\n"
			"Last-Attempt-Date: ") != NULL);
	CHECK(strstr(s,
		     "\r\n\r\nFinal-Recipient: rfc822; x@null.test\r\nAction: failed\r\n"
		     "Status: 5.1.10\r\nDiagnostic-Code: X-Tern; the domain null.test accepts no "
		     "mail (Null MX, RFC 7505)\r\n\r\n--BOUNDARY\r\n") != NULL);
	CHECK(strstr(s, "Content-Type: text/rfc822-headers\r\n\r\nFrom: <alice@a.test>\r\n"
			"Subject: hi\r\n\r\n--BOUNDARY--\r\n") != NULL);
	/* Every line is short and 7-bit. */
	size_t col = 0;
	for (const char *p = s; *p; p++) {
		CHECK((unsigned char)*p < 0x80);
		col = *p == '\n' ? 0 : col + 1;
		CHECK(col < 998);
	}
	buf_free(&b);

	/* A delay notice. */
	d.delay = true;
	d.n_rcpts = 1;
	rc[0].status = "4.4.1";
	rc[0].reply = "connection to mx.b.test [192.0.2.3] failed: connection refused\x01";
	CHECK_INT(queue_dsn_build(&b, &d), 0);
	s = buf_cstr(&b);
	CHECK(strstr(s, "Subject: Delayed Mail (still being retried)\r\n") != NULL);
	CHECK(strstr(s, "Action: delayed\r\nStatus: 4.4.1\r\n") != NULL);
	CHECK(strstr(s, "Diagnostic-Code: X-Tern; connection to mx.b.test [192.0.2.3] failed: "
			"connection refused?\r\n") != NULL);
	CHECK(strstr(s, "Will-Retry-Until: ") != NULL);
	buf_free(&b);
	/* A buffer too small fails cleanly. */
	buf_init(&b, 100);
	CHECK_INT(queue_dsn_build(&b, &d), -1);
	buf_free(&b);
}

/* RFC 3461: ENVID and ORCPT come back decoded, RET=FULL returns the whole
 * message (failures only), success reports say delivered or relayed. */
TEST(dsn_build_dsn_extension)
{
	struct queue_dsn_rcpt rc[2] = {
	    {"bob@b.test", "5.1.1", "550 5.1.1 no such user", "mx.b.test [192.0.2.3]", 1700000100,
	     "rfc822;x+2By@a.test", NULL},
	    {"carol@b.test", "5.1.1", "550 5.1.1 no such user", "mx.b.test [192.0.2.3]", 1700000100,
	     NULL, NULL},
	};
	static const char head[] = "From: <alice@a.test>\r\nSubject: hi\r\n";
	static const char full[] = "From: <alice@a.test>\r\nSubject: hi\r\n\r\nThe body.\r\n";
	struct queue_dsn d = {
	    .hostname = "mx.a.test",
	    .sender = "alice@a.test",
	    .boundary = "B",
	    .message_id = "id.dsn@mx.a.test",
	    .now = 1700000200,
	    .arrival = 1700000000,
	    .retry_until = 1700432000,
	    .rcpts = rc,
	    .n_rcpts = 2,
	    .orig_header = head,
	    .orig_header_len = sizeof head - 1,
	    .envid = "QQ+2B1+3D2",
	    .orig_full = full,
	    .orig_full_len = sizeof full - 1,
	};
	struct buf b = BUF_INIT;
	CHECK_INT(queue_dsn_build(&b, &d), 0);
	const char *s = buf_cstr(&b);
	CHECK(strstr(s,
		     "Content-Type: message/delivery-status\r\n\r\n"
		     "Original-Envelope-Id: QQ+1=2\r\nReporting-MTA: dns; mx.a.test\r\n") != NULL);
	CHECK(strstr(s, "\r\n\r\nOriginal-Recipient: rfc822; x+y@a.test\r\n"
			"Final-Recipient: rfc822; bob@b.test\r\nAction: failed\r\n") != NULL);
	CHECK(strstr(s, "\r\n\r\nFinal-Recipient: rfc822; carol@b.test\r\nAction: failed\r\n") !=
	      NULL);
	CHECK(strstr(s,
		     "--B\r\nContent-Description: Undelivered Message\r\n"
		     "Content-Type: message/rfc822\r\n\r\nFrom: <alice@a.test>\r\nSubject: hi\r\n"
		     "\r\nThe body.\r\n\r\n--B--\r\n") != NULL);
	CHECK(strstr(s, "text/rfc822-headers") == NULL);
	buf_free(&b);

	/* A success report: headers only even with RET=FULL; no envid. */
	d.success = true;
	d.envid = NULL;
	rc[0].status = "2.0.0";
	rc[0].reply = "250 2.0.0 Ok: queued as X";
	rc[0].action = "relayed";
	rc[1].status = "2.0.0";
	rc[1].reply = "delivered to the local mailbox";
	rc[1].remote = "";
	rc[1].action = "delivered";
	CHECK_INT(queue_dsn_build(&b, &d), 0);
	s = buf_cstr(&b);
	CHECK(strstr(s, "Subject: Successful Mail Delivery Report\r\n") != NULL);
	CHECK(strstr(s, "Original-Envelope-Id") == NULL);
	CHECK(strstr(s, "<bob@b.test>\r\n    Handed over to the mail server mx.b.test "
			"[192.0.2.3], which answered:\r\n        250 2.0.0 Ok: queued as X\r\n") !=
	      NULL);
	CHECK(strstr(s, "<carol@b.test>\r\n    Delivered to the mailbox.\r\n") != NULL);
	CHECK(strstr(s, "Original-Recipient: rfc822; x+y@a.test\r\n"
			"Final-Recipient: rfc822; bob@b.test\r\nAction: relayed\r\n"
			"Status: 2.0.0\r\nRemote-MTA: dns; mx.b.test\r\n"
			"Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as X\r\n") != NULL);
	CHECK(strstr(s, "\r\n\r\nFinal-Recipient: rfc822; carol@b.test\r\nAction: delivered\r\n"
			"Status: 2.0.0\r\nLast-Attempt-Date: ") != NULL);
	CHECK(strstr(s, "Content-Description: Delivered Message Headers\r\n"
			"Content-Type: text/rfc822-headers\r\n\r\nFrom: <alice@a.test>\r\n"
			"Subject: hi\r\n\r\n--B--\r\n") != NULL);
	CHECK(strstr(s, "The body.") == NULL);
	buf_free(&b);

	/* A delay notice never carries the body either. */
	d.success = false;
	d.delay = true;
	CHECK_INT(queue_dsn_build(&b, &d), 0);
	s = buf_cstr(&b);
	CHECK(strstr(s, "Action: delayed\r\n") != NULL);
	CHECK(strstr(s, "The body.") == NULL);
	buf_free(&b);
}

TEST(dsn_relay_params)
{
	struct buf b = BUF_INIT;
	CHECK_INT(queue_dsn_mail_params(&b, 0, NULL), 0);
	CHECK_STR(buf_cstr(&b), "");
	CHECK_INT(queue_dsn_mail_params(&b, 1, "a+2Bb"), 0);
	CHECK_STR(buf_cstr(&b), " RET=FULL ENVID=a+2Bb");
	buf_free(&b);
	CHECK_INT(queue_dsn_mail_params(&b, 2, ""), 0);
	CHECK_STR(buf_cstr(&b), " RET=HDRS");
	buf_free(&b);
	CHECK_INT(queue_dsn_rcpt_params(&b, 1, NULL), 0);
	CHECK_STR(buf_cstr(&b), " NOTIFY=NEVER");
	buf_free(&b);
	CHECK_INT(queue_dsn_rcpt_params(&b, 2 | 4 | 8, "rfc822;u@d"), 0);
	CHECK_STR(buf_cstr(&b), " NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;u@d");
	buf_free(&b);
	CHECK_INT(queue_dsn_rcpt_params(&b, 8, "no-type"), 0);
	CHECK_STR(buf_cstr(&b), " NOTIFY=DELAY");
	buf_free(&b);
}
