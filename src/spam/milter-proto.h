/*
 * milter-proto.h - the Sendmail milter protocol (version 6, as Postfix
 * speaks it), the MTA's side: packets to build, replies to parse.  No
 * I/O: src/smtp/smtp-milter.c runs the conversation on the event loop.
 *
 * A packet is a 4-byte big-endian length (of what follows), one command
 * byte and its data.  Strings in the data are NUL-terminated.  Everything
 * the milter sends is untrusted: every parser here is bounded, takes
 * bytes with a length and returns -1 on anything malformed.
 *
 * Spam layer: computes, never stores, knows no session.
 */
#ifndef TERN_MILTER_PROTO_H
#define TERN_MILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define MILTER_VERSION 6
/* The largest reply packet accepted (its length field): a body chunk a
 * milter may not send us (we never offer SMFIF_CHGBODY), so 64 KiB is
 * far beyond a header or a reply text. */
#define MILTER_REPLY_MAX 65536
/* The largest body chunk we send (the protocol's limit). */
#define MILTER_CHUNK_MAX 65535

/* Commands, MTA to milter (SMFIC_*). */
enum {
	MILTER_C_ABORT = 'A',
	MILTER_C_BODY = 'B',
	MILTER_C_CONNECT = 'C',
	MILTER_C_MACRO = 'D',
	MILTER_C_BODYEOB = 'E',
	MILTER_C_HELO = 'H',
	MILTER_C_HEADER = 'L',
	MILTER_C_MAIL = 'M',
	MILTER_C_EOH = 'N',
	MILTER_C_OPTNEG = 'O',
	MILTER_C_QUIT = 'Q',
	MILTER_C_RCPT = 'R',
	MILTER_C_DATA = 'T',
};

/* Replies, milter to MTA (SMFIR_*). */
enum {
	MILTER_R_ADDRCPT = '+',
	MILTER_R_DELRCPT = '-',
	MILTER_R_ADDRCPT_PAR = '2',
	MILTER_R_SHUTDOWN = '4',
	MILTER_R_ACCEPT = 'a',
	MILTER_R_REPLBODY = 'b',
	MILTER_R_CONTINUE = 'c',
	MILTER_R_DISCARD = 'd',
	MILTER_R_CHGFROM = 'e',
	MILTER_R_CONN_FAIL = 'f',
	MILTER_R_ADDHEADER = 'h',
	MILTER_R_INSHEADER = 'i',
	MILTER_R_SETSYMLIST = 'l',
	MILTER_R_CHGHEADER = 'm',
	MILTER_R_PROGRESS = 'p',
	MILTER_R_QUARANTINE = 'q',
	MILTER_R_REJECT = 'r',
	MILTER_R_SKIP = 's',
	MILTER_R_TEMPFAIL = 't',
	MILTER_R_REPLYCODE = 'y',
	MILTER_R_OPTNEG = 'O',
};

/* Actions a milter may take at the end of the message (SMFIF_*). */
#define MILTER_A_ADDHDRS 0x01u
#define MILTER_A_CHGBODY 0x02u
#define MILTER_A_ADDRCPT 0x04u
#define MILTER_A_DELRCPT 0x08u
#define MILTER_A_CHGHDRS 0x10u
#define MILTER_A_QUARANTINE 0x20u

/* Protocol steps a milter may turn off or not answer (SMFIP_*). */
#define MILTER_P_NOCONNECT 0x01u
#define MILTER_P_NOHELO 0x02u
#define MILTER_P_NOMAIL 0x04u
#define MILTER_P_NORCPT 0x08u
#define MILTER_P_NOBODY 0x10u
#define MILTER_P_NOHDRS 0x20u
#define MILTER_P_NOEOH 0x40u
#define MILTER_P_NR_HDR 0x80u
#define MILTER_P_NOUNKNOWN 0x100u
#define MILTER_P_NODATA 0x200u
#define MILTER_P_SKIP 0x400u
#define MILTER_P_RCPT_REJ 0x800u
#define MILTER_P_NR_CONN 0x1000u
#define MILTER_P_NR_HELO 0x2000u
#define MILTER_P_NR_MAIL 0x4000u
#define MILTER_P_NR_RCPT 0x8000u
#define MILTER_P_NR_DATA 0x10000u
#define MILTER_P_NR_UNKN 0x20000u
#define MILTER_P_NR_EOH 0x40000u
#define MILTER_P_NR_BODY 0x80000u

/* What Tern offers: adding, inserting, changing and deleting header
 * fields, and quarantine; every "skip this step" and "no reply" flag
 * (RCPT_REJ and HDR_LEADSPC are not offered: we never send rejected
 * recipients, and header values go without their leading space). */
#define MILTER_OFFER_ACTIONS (MILTER_A_ADDHDRS | MILTER_A_CHGHDRS | MILTER_A_QUARANTINE)
#define MILTER_OFFER_PROTOCOL                                                                      \
	(MILTER_P_NOCONNECT | MILTER_P_NOHELO | MILTER_P_NOMAIL | MILTER_P_NORCPT |                \
	 MILTER_P_NOBODY | MILTER_P_NOHDRS | MILTER_P_NOEOH | MILTER_P_NR_HDR |                    \
	 MILTER_P_NOUNKNOWN | MILTER_P_NODATA | MILTER_P_SKIP | MILTER_P_NR_CONN |                 \
	 MILTER_P_NR_HELO | MILTER_P_NR_MAIL | MILTER_P_NR_RCPT | MILTER_P_NR_DATA |               \
	 MILTER_P_NR_UNKN | MILTER_P_NR_EOH | MILTER_P_NR_BODY)

/* ------------------------------------------------------------ building */

/* Appends one packet: cmd and data[0..len).  0, or -1 (b's maximum). */
int milter_proto_packet(struct buf *b, char cmd, const void *data, size_t len);
/* SMFIC_OPTNEG with our version, actions and protocol offer. */
int milter_proto_optneg(struct buf *b);
/* A packet of NUL-terminated strings: cmd, then each of the n strings
 * (with its NUL).  For HELO, MAIL, RCPT, HEADER. */
int milter_proto_strings(struct buf *b, char cmd, const char *const *s, size_t n);
/* SMFIC_MACRO for the step cmd: pairs name, value (n names). */
int milter_proto_macros(struct buf *b, char cmd, const char *const *names,
			const char *const *values, size_t n);
/* SMFIC_CONNECT: hostname, family '4' or '6' with port and address. */
int milter_proto_connect(struct buf *b, const char *hostname, bool v6, uint16_t port,
			 const char *addr);

/* ------------------------------------------------------------- parsing */

/* Finds one whole packet at the start of p[0..n).  1: *cmd, *data and
 * *dlen (into p) are set and *used says how many bytes it took; 0: need
 * more bytes; -1: the length is 0 or above max (the stream is garbage). */
int milter_proto_frame(const unsigned char *p, size_t n, size_t max, char *cmd,
		       const unsigned char **data, size_t *dlen, size_t *used);

struct milter_optneg {
	uint32_t version;
	uint32_t actions;
	uint32_t protocol;
};
/* The milter's SMFIR_OPTNEG (version 2..6; what follows the three
 * numbers, a symbol list, is ignored).  0 or -1. */
int milter_proto_parse_optneg(const unsigned char *d, size_t n, struct milter_optneg *o);

/* SMFIR_REPLYCODE "550 5.7.1 text": a code 4xx or 5xx (first digit 4 or
 * 5, then two digits), then a space or the end; the text printable
 * US-ASCII.  A multi-line text ("550-..." lines joined by CRLF) is cut
 * to its last line's text.  Writes "550 5.7.1 text" (NUL-terminated,
 * cut at outsz) and returns the code, or -1. */
int milter_proto_parse_replycode(const unsigned char *d, size_t n, char *out, size_t outsz);

/* One NUL-terminated string taking all of d[0..n) (SMFIR_QUARANTINE's
 * reason, SMFIR_ADDRCPT's address): *s points into d, *slen its length
 * without the NUL.  0 or -1 (no NUL at the end, or a NUL inside). */
int milter_proto_parse_string(const unsigned char *d, size_t n, const char **s, size_t *slen);

struct milter_header_op {
	char cmd;         /* MILTER_R_ADDHEADER, _INSHEADER or _CHGHEADER */
	uint32_t index;   /* INSHEADER: position (0 first); CHGHEADER: the
			   * index-th field of that name (1 first) */
	const char *name; /* into the packet; not NUL-terminated here */
	size_t name_len;
	const char *value; /* as sent; "" with CHGHEADER deletes */
	size_t value_len;
};
/* Parses SMFIR_ADDHEADER (name, value), SMFIR_INSHEADER and
 * SMFIR_CHGHEADER (a 32-bit index, name, value).  The name must be 1..76
 * printable US-ASCII characters without ':' or space; the value may fold
 * (LF or CRLF followed by a space or tab) and has no other CR or LF.
 * 0 or -1. */
int milter_proto_parse_header_op(char cmd, const unsigned char *d, size_t n,
				 struct milter_header_op *op);

/* ------------------------------------------------- the header section */

/* The header section as the milters see and change it: one entry per
 * field, its bytes as they will be stored ("Name: value" with its CRLF
 * and folds).  Unchanged fields keep their bytes exactly. */
struct milter_field {
	char *raw; /* owned */
	size_t raw_len;
	size_t name_len; /* raw[0..name_len) is the name */
	bool trace;      /* one of our trace fields (not a milter's) */
};
struct milter_fields {
	struct milter_field *f; /* owned */
	size_t n;
	size_t bytes; /* sum of raw_len */
};

/* Splits the header section at the start of msg[0..len) into fields
 * (lines end in CRLF; a line starting with SP or HT continues a field).
 * As in Postfix, the section ends at the empty line (*has_sep, which
 * *hdr_len includes) or else at the first line that is not a field, the
 * end of len, or after max fields: what follows is the body.  Returns 0. */
int milter_fields_split(const char *msg, size_t len, size_t max, struct milter_fields *out,
			size_t *hdr_len, bool *has_sep);
/* The value of field i as a milter gets it: no leading blanks, no
 * trailing CRLF, inner CRLFs as LF.  Appends it and a NUL to out. */
int milter_fields_value(const struct milter_fields *fs, size_t i, struct buf *out);
/* Applies one header operation (milter_proto_parse_header_op).  An
 * INSHEADER past the end and a CHGHEADER of an index beyond the fields
 * of that name add the field at the end; a CHGHEADER with an empty value
 * deletes (nothing, if there is no such field).  Returns the bytes the
 * operation added (the new field's), 0 for a delete. */
size_t milter_fields_apply(struct milter_fields *fs, const struct milter_header_op *op);
/* Appends every field's bytes to out.  0 or -1. */
int milter_fields_write(const struct milter_fields *fs, struct buf *out);
void milter_fields_free(struct milter_fields *fs);

#endif
