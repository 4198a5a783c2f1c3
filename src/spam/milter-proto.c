/*
 * milter-proto.c - packets and replies of the milter protocol, and the
 * header section the milters change (see milter-proto.h).
 */
#include "milter-proto.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "xalloc.h"

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Appends the packet header for a packet of len data bytes. */
static int packet_start(struct buf *b, char cmd, size_t len)
{
	if (len >= UINT32_MAX)
		return -1;
	unsigned char h[5];
	put32(h, (uint32_t)len + 1);
	h[4] = (unsigned char)cmd;
	return buf_append(b, h, sizeof h);
}

int milter_proto_packet(struct buf *b, char cmd, const void *data, size_t len)
{
	if (buf_reserve(b, len + 5) < 0 || packet_start(b, cmd, len) < 0)
		return -1;
	return len == 0 ? 0 : buf_append(b, data, len);
}

int milter_proto_optneg(struct buf *b)
{
	unsigned char d[12];
	put32(d, MILTER_VERSION);
	put32(d + 4, MILTER_OFFER_ACTIONS);
	put32(d + 8, MILTER_OFFER_PROTOCOL);
	return milter_proto_packet(b, MILTER_C_OPTNEG, d, sizeof d);
}

int milter_proto_strings(struct buf *b, char cmd, const char *const *s, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(s[i]) + 1;
	if (buf_reserve(b, len + 5) < 0 || packet_start(b, cmd, len) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (buf_append(b, s[i], strlen(s[i]) + 1) < 0)
			return -1;
	return 0;
}

int milter_proto_macros(struct buf *b, char cmd, const char *const *names,
			const char *const *values, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(names[i]) + strlen(values[i]) + 2;
	if (buf_reserve(b, len + 5) < 0 || packet_start(b, MILTER_C_MACRO, len) < 0 ||
	    buf_putc(b, cmd) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (buf_append(b, names[i], strlen(names[i]) + 1) < 0 ||
		    buf_append(b, values[i], strlen(values[i]) + 1) < 0)
			return -1;
	return 0;
}

int milter_proto_connect(struct buf *b, const char *hostname, bool v6, uint16_t port,
			 const char *addr)
{
	size_t hl = strlen(hostname) + 1, al = strlen(addr) + 1;
	size_t len = hl + 1 + 2 + al;
	if (buf_reserve(b, len + 5) < 0 || packet_start(b, MILTER_C_CONNECT, len) < 0)
		return -1;
	unsigned char fp[3] = {v6 ? '6' : '4', (unsigned char)(port >> 8), (unsigned char)port};
	if (buf_append(b, hostname, hl) < 0 || buf_append(b, fp, sizeof fp) < 0 ||
	    buf_append(b, addr, al) < 0)
		return -1;
	return 0;
}

int milter_proto_frame(const unsigned char *p, size_t n, size_t max, char *cmd,
		       const unsigned char **data, size_t *dlen, size_t *used)
{
	if (n < 4)
		return 0;
	uint32_t len = get32(p);
	if (len == 0 || len > max)
		return -1;
	if (n - 4 < len)
		return 0;
	*cmd = (char)p[4];
	*data = p + 5;
	*dlen = len - 1;
	*used = 4 + (size_t)len;
	return 1;
}

int milter_proto_parse_optneg(const unsigned char *d, size_t n, struct milter_optneg *o)
{
	if (n < 12)
		return -1;
	o->version = get32(d);
	o->actions = get32(d + 4);
	o->protocol = get32(d + 8);
	return o->version >= 2 && o->version <= MILTER_VERSION ? 0 : -1;
}

static bool is_code(const unsigned char *p, size_t n)
{
	return n >= 3 && (p[0] == '4' || p[0] == '5') && p[1] >= '0' && p[1] <= '9' &&
	       p[2] >= '0' && p[2] <= '9' && (n == 3 || p[3] == ' ' || p[3] == '-');
}

int milter_proto_parse_replycode(const unsigned char *d, size_t n, char *out, size_t outsz)
{
	const char *s;
	size_t len;
	if (milter_proto_parse_string(d, n, &s, &len) < 0 || outsz < 4)
		return -1;
	const unsigned char *u = (const unsigned char *)s;
	if (!is_code(u, len))
		return -1;
	int code = (u[0] - '0') * 100 + (u[1] - '0') * 10 + (u[2] - '0');
	/* Lines of a multi-line text: each "CODE-text" CRLF, the last
	 * "CODE text"; every line must carry the same code. */
	size_t line = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = u[i];
		if (c == '\r' && i + 1 < len && u[i + 1] == '\n') {
			if (u[line + 3] != '-' || !is_code(u + i + 2, len - i - 2) ||
			    memcmp(u + i + 2, u, 3) != 0)
				return -1;
			line = i + 2;
			i++;
			continue;
		}
		if (c < 0x20 || c > 0x7e)
			return -1;
	}
	if (len - line > 3 && u[line + 3] != ' ')
		return -1;
	size_t tl = len - line;
	if (tl >= outsz)
		tl = outsz - 1;
	memcpy(out, u + line, tl);
	out[tl] = '\0';
	return code;
}

int milter_proto_parse_string(const unsigned char *d, size_t n, const char **s, size_t *slen)
{
	if (n == 0 || d[n - 1] != '\0')
		return -1;
	const void *nul = memchr(d, '\0', n);
	if ((const unsigned char *)nul != d + n - 1)
		return -1;
	*s = (const char *)d;
	*slen = n - 1;
	return 0;
}

static bool name_ok(const char *p, size_t n)
{
	if (n == 0 || n > 76)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= 0x20 || c > 0x7e || c == ':')
			return false;
	}
	return true;
}

/* A value folds only with a line end followed by a blank; no other CR or
 * LF, no NUL. */
static bool value_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r') {
			if (i + 1 >= n || p[i + 1] != '\n')
				return false;
			continue;
		}
		if (p[i] == '\n' && (i + 1 >= n || (p[i + 1] != ' ' && p[i + 1] != '\t')))
			return false;
		if (p[i] == '\0')
			return false;
	}
	return true;
}

int milter_proto_parse_header_op(char cmd, const unsigned char *d, size_t n,
				 struct milter_header_op *op)
{
	*op = (struct milter_header_op){.cmd = cmd};
	if (cmd == MILTER_R_INSHEADER || cmd == MILTER_R_CHGHEADER) {
		if (n < 4)
			return -1;
		op->index = get32(d);
		d += 4;
		n -= 4;
	} else if (cmd != MILTER_R_ADDHEADER) {
		return -1;
	}
	const unsigned char *nul = memchr(d, '\0', n);
	if (nul == NULL)
		return -1;
	size_t nl = (size_t)(nul - d);
	const char *v;
	size_t vl;
	if (milter_proto_parse_string(nul + 1, n - nl - 1, &v, &vl) < 0)
		return -1;
	if (!name_ok((const char *)d, nl) || !value_ok(v, vl))
		return -1;
	if (cmd == MILTER_R_CHGHEADER && op->index == 0)
		op->index = 1; /* Sendmail treats 0 as the first, too */
	op->name = (const char *)d;
	op->name_len = nl;
	op->value = v;
	op->value_len = vl;
	return 0;
}

/* ------------------------------------------------- the header section */

void milter_fields_free(struct milter_fields *fs)
{
	for (size_t i = 0; i < fs->n; i++)
		free(fs->f[i].raw);
	free(fs->f);
	*fs = (struct milter_fields){0};
}

static void fields_insert(struct milter_fields *fs, size_t at, char *raw, size_t raw_len,
			  size_t name_len, bool trace)
{
	fs->f = xreallocarray(fs->f, fs->n + 1, sizeof *fs->f);
	memmove(fs->f + at + 1, fs->f + at, (fs->n - at) * sizeof *fs->f);
	fs->f[at] = (struct milter_field){raw, raw_len, name_len, trace};
	fs->n++;
	fs->bytes += raw_len;
}

int milter_fields_split(const char *msg, size_t len, size_t max, struct milter_fields *out,
			size_t *hdr_len, bool *has_sep)
{
	*out = (struct milter_fields){0};
	*has_sep = false;
	size_t pos = 0;
	while (pos < len) {
		if (msg[pos] == '\r' && pos + 1 < len && msg[pos + 1] == '\n') {
			*has_sep = true;
			*hdr_len = pos + 2;
			return 0;
		}
		size_t start = pos, end = pos;
		const char *colon = NULL;
		/* one field: its first line and its continuation lines */
		for (;;) {
			const char *nl = memchr(msg + end, '\n', len - end);
			if (nl == NULL)
				break;
			if (colon == NULL)
				colon = memchr(msg + start, ':', (size_t)(nl - msg) - start);
			if (colon == NULL)
				break;
			end = (size_t)(nl - msg) + 1;
			if (end >= len || (msg[end] != ' ' && msg[end] != '\t'))
				break;
		}
		size_t name_len = colon == NULL ? 0 : (size_t)(colon - (msg + start));
		while (name_len > 0 &&
		       (msg[start + name_len - 1] == ' ' || msg[start + name_len - 1] == '\t'))
			name_len--; /* obsolete blanks before the colon */
		if (end == start || name_len == 0 || out->n >= max ||
		    memchr(msg + start, ' ', name_len) != NULL)
			break; /* not a field (or one too many): the body starts here */
		char *raw = xmalloc(end - start);
		memcpy(raw, msg + start, end - start);
		fields_insert(out, out->n, raw, end - start, name_len, false);
		pos = end;
	}
	*hdr_len = pos;
	return 0;
}

int milter_fields_value(const struct milter_fields *fs, size_t i, struct buf *out)
{
	const struct milter_field *f = &fs->f[i];
	const char *p = memchr(f->raw, ':', f->raw_len);
	size_t at = p == NULL ? f->raw_len : (size_t)(p - f->raw) + 1;
	size_t end = f->raw_len;
	while (at < end && (f->raw[at] == ' ' || f->raw[at] == '\t'))
		at++;
	if (end >= at + 2 && f->raw[end - 2] == '\r' && f->raw[end - 1] == '\n')
		end -= 2;
	else if (end > at && f->raw[end - 1] == '\n')
		end--;
	for (size_t k = at; k < end; k++) {
		if (f->raw[k] == '\r' && k + 1 < end && f->raw[k + 1] == '\n')
			continue;
		if (buf_putc(out, f->raw[k]) < 0)
			return -1;
	}
	return buf_putc(out, '\0');
}

/* "Name: value\r\n" with the value's folds as CRLF. */
static char *field_make(const struct milter_header_op *op, size_t *raw_len)
{
	struct buf b;
	buf_init(&b, 0);
	int r = buf_append(&b, op->name, op->name_len) | buf_append(&b, ": ", 2);
	for (size_t i = 0; i < op->value_len; i++) {
		char c = op->value[i];
		if (c == '\r')
			continue; /* value_ok: always before LF */
		r |= c == '\n' ? buf_append(&b, "\r\n", 2) : buf_putc(&b, c);
	}
	r |= buf_append(&b, "\r\n", 2);
	if (r != 0) {
		buf_free(&b);
		*raw_len = 0;
		return NULL;
	}
	return buf_steal(&b, raw_len);
}

static bool name_is(const struct milter_field *f, const char *name, size_t n)
{
	if (f->name_len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char a = f->raw[i], b = name[i];
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (char)(b - 'A' + 'a');
		if (a != b)
			return false;
	}
	return true;
}

size_t milter_fields_apply(struct milter_fields *fs, const struct milter_header_op *op)
{
	size_t at = fs->n;
	if (op->cmd == MILTER_R_INSHEADER && op->index < fs->n)
		at = op->index;
	if (op->cmd == MILTER_R_CHGHEADER) {
		uint32_t seen = 0;
		for (size_t i = 0; i < fs->n; i++) {
			if (!name_is(&fs->f[i], op->name, op->name_len) || ++seen != op->index)
				continue;
			fs->bytes -= fs->f[i].raw_len;
			free(fs->f[i].raw);
			if (op->value_len == 0) {
				memmove(fs->f + i, fs->f + i + 1, (fs->n - i - 1) * sizeof *fs->f);
				fs->n--;
				return 0;
			}
			size_t raw_len;
			fs->f[i].raw = field_make(op, &raw_len);
			fs->f[i].raw_len = raw_len;
			fs->f[i].name_len = op->name_len;
			fs->f[i].trace = false;
			fs->bytes += raw_len;
			return raw_len;
		}
		if (op->value_len == 0)
			return 0;
	}
	size_t raw_len;
	char *raw = field_make(op, &raw_len);
	if (raw == NULL)
		return 0;
	fields_insert(fs, at, raw, raw_len, op->name_len, false);
	return raw_len;
}

int milter_fields_write(const struct milter_fields *fs, struct buf *out)
{
	for (size_t i = 0; i < fs->n; i++)
		if (buf_append(out, fs->f[i].raw, fs->f[i].raw_len) < 0)
			return -1;
	return 0;
}
