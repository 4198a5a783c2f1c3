/*
 * test-milter-proto.c - unit tests for src/spam/milter-proto.c: packet
 * framing (whole and byte by byte), the negotiation, reply codes, header
 * changes and the header section they apply to; and src/lib/endpoint.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "buf.h"
#include "endpoint.h"
#include "milter-proto.h"
#include "test.h"

TEST(milter_packets)
{
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(milter_proto_optneg(&b), 0);
	CHECK_INT(b.len, 17);
	CHECK(!memcmp(b.data, "\0\0\0\x0dO\0\0\0\x06", 9));
	buf_reset(&b);
	const char *s[] = {"<a@b.example>", "SIZE=10"};
	CHECK_INT(milter_proto_strings(&b, MILTER_C_MAIL, s, 2), 0);
	CHECK_INT(b.len, 5 + 14 + 8);
	CHECK(!memcmp(b.data, "\0\0\0\x17M<a@b.example>\0SIZE=10\0", 27));
	buf_reset(&b);
	const char *n[] = {"i", "{mail_addr}"}, *v[] = {"Q1", "a@b"};
	CHECK_INT(milter_proto_macros(&b, MILTER_C_MAIL, n, v, 2), 0);
	CHECK(!memcmp(b.data,
		      "\0\0\0\x17"
		      "DMi\0Q1\0{mail_addr}\0a@b\0",
		      27));
	buf_reset(&b);
	CHECK_INT(milter_proto_connect(&b, "[192.0.2.1]", false, 2525, "192.0.2.1"), 0);
	CHECK(!memcmp(b.data,
		      "\0\0\0\x1a"
		      "C[192.0.2.1]\0"
		      "4\x09\xdd"
		      "192.0.2.1\0",
		      30));
	buf_free(&b);
}

TEST(milter_frame)
{
	const unsigned char in[] = "\0\0\0\x01"
				   "c"
				   "\0\0\0\x05"
				   "yabcd";
	size_t n = sizeof in - 1;
	char cmd;
	const unsigned char *d;
	size_t dl, used;
	/* byte by byte: nothing until the packet is whole */
	for (size_t k = 0; k < 5; k++)
		CHECK_INT(milter_proto_frame(in, k, 100, &cmd, &d, &dl, &used), 0);
	CHECK_INT(milter_proto_frame(in, n, 100, &cmd, &d, &dl, &used), 1);
	CHECK_INT(cmd, 'c');
	CHECK_INT(dl, 0);
	CHECK_INT(used, 5);
	for (size_t k = 5; k < n; k++)
		CHECK_INT(milter_proto_frame(in + 5, k - 5, 100, &cmd, &d, &dl, &used), 0);
	CHECK_INT(milter_proto_frame(in + 5, n - 5, 100, &cmd, &d, &dl, &used), 1);
	CHECK_INT(cmd, 'y');
	CHECK_INT(dl, 4);
	CHECK(!memcmp(d, "abcd", 4));
	CHECK_INT(
	    milter_proto_frame((const unsigned char *)"\0\0\0\0", 4, 100, &cmd, &d, &dl, &used),
	    -1);
	CHECK_INT(
	    milter_proto_frame((const unsigned char *)"\0\0\0\x65", 4, 100, &cmd, &d, &dl, &used),
	    -1);
	CHECK_INT(
	    milter_proto_frame((const unsigned char *)"\0\0\0\x64", 4, 100, &cmd, &d, &dl, &used),
	    0);
}

TEST(milter_optneg)
{
	struct milter_optneg o;
	CHECK_INT(milter_proto_parse_optneg((const unsigned char *)"\0\0\0\x06\0\0\0\x11\0\0\0\x80",
					    12, &o),
		  0);
	CHECK_INT(o.version, 6);
	CHECK_INT(o.actions, 0x11);
	CHECK_INT(o.protocol, 0x80);
	CHECK_INT(
	    milter_proto_parse_optneg((const unsigned char *)"\0\0\0\x07\0\0\0\0\0\0\0\0", 12, &o),
	    -1);
	CHECK_INT(
	    milter_proto_parse_optneg((const unsigned char *)"\0\0\0\x06\0\0\0\0\0\0\0", 11, &o),
	    -1);
}

static int code_of(const char *s, char *out)
{
	return milter_proto_parse_replycode((const unsigned char *)s, strlen(s) + 1, out, 100);
}

TEST(milter_replycode)
{
	char out[100];
	CHECK_INT(code_of("554 5.7.1 Virus found", out), 554);
	CHECK_STR(out, "554 5.7.1 Virus found");
	CHECK_INT(code_of("451", out), 451);
	CHECK_STR(out, "451");
	CHECK_INT(code_of("550-5.7.1 one\r\n550 5.7.1 two", out), 550);
	CHECK_STR(out, "550 5.7.1 two");
	CHECK_INT(code_of("550-5.7.1 one\r\n551 5.7.1 two", out), -1);
	CHECK_INT(code_of("550 one\r\n550 two", out), -1);
	CHECK_INT(code_of("250 2.0.0 ok", out), -1);
	CHECK_INT(code_of("55 short", out), -1);
	CHECK_INT(code_of("550x", out), -1);
	CHECK_INT(code_of("550 tab\there", out), -1);
	CHECK_INT(code_of("550 bare\nlf", out), -1);
	/* not NUL-terminated, or a NUL inside */
	CHECK_INT(milter_proto_parse_replycode((const unsigned char *)"550 x", 5, out, 100), -1);
	CHECK_INT(milter_proto_parse_replycode((const unsigned char *)"550\0x\0", 6, out, 100), -1);
	/* cut to the buffer */
	CHECK_INT(milter_proto_parse_replycode((const unsigned char *)"550 abcdef", 11, out, 6),
		  550);
	CHECK_STR(out, "550 a");
}

static int op_of(char cmd, const void *d, size_t n, struct milter_header_op *op)
{
	return milter_proto_parse_header_op(cmd, d, n, op);
}

TEST(milter_header_ops)
{
	struct milter_header_op op;
	CHECK_INT(op_of('h', "X-A\0v\0", 6, &op), 0);
	CHECK_INT(op.name_len, 3);
	CHECK_INT(op.value_len, 1);
	CHECK_INT(op_of('h', "X-A\0line\n\tmore\0", 15, &op), 0);
	CHECK_INT(op_of('h', "X-A\0line\r\n more\0", 16, &op), 0);
	CHECK_INT(op_of('h', "X-A\0line\nmore\0", 14, &op), -1); /* not a fold */
	CHECK_INT(op_of('h', "X-A\0bare\rcr\0", 12, &op), -1);
	CHECK_INT(op_of('h', "X-A\0v\n\0", 7, &op), -1); /* fold to nothing */
	CHECK_INT(op_of('h', "X A\0v\0", 6, &op), -1);
	CHECK_INT(op_of('h', "X:A\0v\0", 6, &op), -1);
	CHECK_INT(op_of('h', "\0v\0", 3, &op), -1);
	CHECK_INT(op_of('h', "X-A\0v", 5, &op), -1);
	CHECK_INT(op_of('h', "X-A\0v\0x\0", 8, &op), -1);
	CHECK_INT(op_of('i', "\0\0\0\x02X\0v\0", 8, &op), 0);
	CHECK_INT(op.index, 2);
	CHECK_INT(op_of('m', "\0\0\0\0X\0\0", 7, &op), 0);
	CHECK_INT(op.index, 1);
	CHECK_INT(op.value_len, 0);
	CHECK_INT(op_of('m', "\0\0\0", 3, &op), -1);
	CHECK_INT(op_of('q', "X\0v\0", 4, &op), -1);
}

TEST(milter_fields)
{
	const char *msg =
	    "Received: from x\r\n\tby y\r\nSubject: Hi\r\nsubject:  two\r\n\r\nbody\r\n";
	struct milter_fields fs;
	size_t hl;
	bool sep;
	CHECK_INT(milter_fields_split(msg, strlen(msg), 100, &fs, &hl, &sep), 0);
	CHECK_INT(fs.n, 3);
	CHECK(sep);
	CHECK_INT(hl, strlen(msg) - 6);
	struct buf b;
	buf_init(&b, 0);
	CHECK_INT(milter_fields_value(&fs, 0, &b), 0);
	CHECK_STR(b.data, "from x\n\tby y");
	buf_reset(&b);
	CHECK_INT(milter_fields_value(&fs, 2, &b), 0);
	CHECK_STR(b.data, "two");
	struct milter_header_op op;
	/* change the second Subject, delete the first, insert at 0, add */
	CHECK_INT(op_of('m', "\0\0\0\x02SUBJECT\0new\0", 16, &op), 0);
	CHECK_INT(milter_fields_apply(&fs, &op), 14);
	CHECK_INT(op_of('m', "\0\0\0\x01Subject\0\0", 13, &op), 0);
	CHECK_INT(milter_fields_apply(&fs, &op), 0);
	CHECK_INT(op_of('m', "\0\0\0\x05Subject\0\0", 13, &op), 0); /* no such: nothing */
	CHECK_INT(milter_fields_apply(&fs, &op), 0);
	CHECK_INT(op_of('i', "\0\0\0\0X-Top\0t\0", 12, &op), 0);
	milter_fields_apply(&fs, &op);
	CHECK_INT(op_of('h', "X-End\0a\n b\0", 11, &op), 0);
	milter_fields_apply(&fs, &op);
	CHECK_INT(op_of('m', "\0\0\0\x03X-New\0added\0", 16, &op), 0); /* past the last: added */
	milter_fields_apply(&fs, &op);
	buf_reset(&b);
	CHECK_INT(milter_fields_write(&fs, &b), 0);
	CHECK_INT(b.len, fs.bytes);
	CHECK_INT(buf_putc(&b, '\0'), 0);
	CHECK_STR(b.data, "X-Top: t\r\nReceived: from x\r\n\tby y\r\nSUBJECT: new\r\nX-End: a\r\n "
			  "b\r\nX-New: added\r\n");
	buf_free(&b);
	milter_fields_free(&fs);

	/* no empty line: the section ends at the first line that is not a field */
	const char *odd = "A: 1\r\nnot a field\r\nB: 2\r\n";
	CHECK_INT(milter_fields_split(odd, strlen(odd), 100, &fs, &hl, &sep), 0);
	CHECK_INT(fs.n, 1);
	CHECK(!sep);
	CHECK_INT(hl, 6);
	milter_fields_free(&fs);
	/* a field cut by the end of what was read is body */
	CHECK_INT(milter_fields_split("A: 1\r\nB: 2", 10, 100, &fs, &hl, &sep), 0);
	CHECK_INT(fs.n, 1);
	CHECK_INT(hl, 6);
	milter_fields_free(&fs);
	CHECK_INT(milter_fields_split("A: 1\r\nB: 2\r\n\r\n", 14, 1, &fs, &hl, &sep), 0);
	CHECK_INT(fs.n, 1);
	milter_fields_free(&fs);
}

TEST(endpoint_parse)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *w;
	CHECK_INT(endpoint_parse("inet:127.0.0.1:11332", 20, &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 11332);
	CHECK_INT(endpoint_parse("inet:[::1]:8891", 15, &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET6);
	CHECK_INT(endpoint_parse("inet:localhost:25", 17, &ss, &len), 0);
	CHECK_INT(ss.ss_family, AF_INET);
	CHECK_INT(endpoint_parse("unix:/run/x.sock", 16, &ss, &len), 0);
	CHECK_STR(((struct sockaddr_un *)&ss)->sun_path, "/run/x.sock");
	CHECK_INT(endpoint_parse("inet:milter.example:25", 22, &ss, &len), -1);
	CHECK_INT(endpoint_parse("inet:127.0.0.1:0", 16, &ss, &len), -1);
	CHECK_INT(endpoint_parse("inet:127.0.0.1:65536", 20, &ss, &len), -1);
	CHECK_INT(endpoint_parse("inet:127.0.0.1", 14, &ss, &len), -1);
	CHECK_INT(endpoint_parse("unix:rel", 8, &ss, &len), -1);
	CHECK_INT(endpoint_parse("tcp:1.2.3.4:5", 13, &ss, &len), -1);
	const char *p = " inet:1.2.3.4:5, unix:/a ";
	CHECK_INT(endpoint_next(&p, &w), 14);
	CHECK_INT(endpoint_next(&p, &w), 7);
	CHECK(!memcmp(w, "unix:/a", 7));
	CHECK_INT(endpoint_next(&p, &w), 0);
}
