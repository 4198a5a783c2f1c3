/*
 * dmarc-report.c - DMARC aggregate reports (RFC 7489 7.2 and appendix C):
 * the XML of one report from the grouped evaluations the store keeps,
 * gzip'd (zlib), in a MIME message ready for the queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>
#include <zlib.h>

#include "base64.h"
#include "dmarc-report.h"
#include "xalloc.h"

/* Appends s with the five XML special characters escaped (and control
 * characters dropped: none can come from our own parsers, but the text
 * is someone else's). */
static int xml_text(struct buf *b, const char *s)
{
	int e = 0;
	for (const char *p = s; *p && e == 0; p++) {
		switch (*p) {
		case '&':
			e = buf_puts(b, "&amp;");
			break;
		case '<':
			e = buf_puts(b, "&lt;");
			break;
		case '>':
			e = buf_puts(b, "&gt;");
			break;
		case '"':
			e = buf_puts(b, "&quot;");
			break;
		case '\'':
			e = buf_puts(b, "&apos;");
			break;
		default:
			if ((unsigned char)*p >= 0x20)
				e = buf_putc(b, *p);
		}
	}
	return e;
}

static int elem(struct buf *b, const char *indent, const char *name, const char *text)
{
	int e = buf_printf(b, "%s<%s>", indent, name);
	e |= xml_text(b, text);
	e |= buf_printf(b, "</%s>\n", name);
	return e;
}

/* The value of tag in "p=reject sp=none pct=100 adkim=r aspf=r". */
static void policy_tag(const char *policy, const char *tag, const char *def, char *out,
		       size_t outsz)
{
	snprintf(out, outsz, "%s", def);
	size_t tl = strlen(tag);
	for (const char *p = policy; p && *p;) {
		while (*p == ' ')
			p++;
		if (strncmp(p, tag, tl) == 0 && p[tl] == '=') {
			size_t n = strcspn(p + tl + 1, " ");
			snprintf(out, outsz, "%.*s", (int)n, p + tl + 1);
			return;
		}
		p = strchr(p, ' ');
	}
}

int dmarc_report_xml(const struct dmarc_report_meta *m, const struct store_dmarc_row *rows,
		     size_t n, struct buf *out)
{
	char begin[32], end[32];
	snprintf(begin, sizeof begin, "%lld", (long long)m->begin);
	snprintf(end, sizeof end, "%lld", (long long)m->end);
	int e = buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<feedback>\n");
	e |= buf_puts(out, "  <report_metadata>\n");
	e |= elem(out, "    ", "org_name", m->org_name);
	e |= elem(out, "    ", "email", m->email);
	e |= elem(out, "    ", "report_id", m->report_id);
	e |= buf_puts(out, "    <date_range>\n");
	e |= elem(out, "      ", "begin", begin);
	e |= elem(out, "      ", "end", end);
	e |= buf_puts(out, "    </date_range>\n  </report_metadata>\n");
	char v[32];
	e |= buf_puts(out, "  <policy_published>\n");
	e |= elem(out, "    ", "domain", m->policy_domain);
	policy_tag(m->policy, "adkim", "r", v, sizeof v);
	e |= elem(out, "    ", "adkim", v);
	policy_tag(m->policy, "aspf", "r", v, sizeof v);
	e |= elem(out, "    ", "aspf", v);
	policy_tag(m->policy, "p", "none", v, sizeof v);
	e |= elem(out, "    ", "p", v);
	char p[32];
	snprintf(p, sizeof p, "%s", v);
	policy_tag(m->policy, "sp", p, v, sizeof v);
	e |= elem(out, "    ", "sp", v);
	policy_tag(m->policy, "pct", "100", v, sizeof v);
	e |= elem(out, "    ", "pct", v);
	e |= buf_puts(out, "  </policy_published>\n");
	for (size_t i = 0; i < n && e == 0; i++) {
		const struct store_dmarc_row *r = &rows[i];
		char count[32];
		snprintf(count, sizeof count, "%lld", (long long)r->count);
		e |= buf_puts(out, "  <record>\n    <row>\n");
		e |= elem(out, "      ", "source_ip", r->ip);
		e |= elem(out, "      ", "count", count);
		e |= buf_puts(out, "      <policy_evaluated>\n");
		e |= elem(out, "        ", "disposition", r->disposition);
		e |= elem(out, "        ", "dkim", r->dkim);
		e |= elem(out, "        ", "spf", r->spf);
		e |= buf_puts(out, "      </policy_evaluated>\n    </row>\n");
		e |= buf_puts(out, "    <identifiers>\n");
		e |= elem(out, "      ", "header_from", r->from_domain);
		e |= buf_puts(out, "    </identifiers>\n    <auth_results>\n");
		if (r->dkim_domain[0] != '\0') {
			e |= buf_puts(out, "      <dkim>\n");
			e |= elem(out, "        ", "domain", r->dkim_domain);
			e |= elem(out, "        ", "result", r->dkim_result);
			e |= buf_puts(out, "      </dkim>\n");
		}
		e |= buf_puts(out, "      <spf>\n");
		e |= elem(out, "        ", "domain", r->spf_domain);
		e |= elem(out, "        ", "result", r->spf_result);
		e |= buf_puts(out, "      </spf>\n    </auth_results>\n  </record>\n");
	}
	e |= buf_puts(out, "</feedback>\n");
	return e ? -1 : 0;
}

int dmarc_report_gzip(const void *data, size_t n, struct buf *out)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	/* 15 + 16: a gzip header and trailer, not a bare zlib stream. */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	uLong bound = deflateBound(&z, (uLong)n);
	if (buf_reserve(out, (size_t)bound) < 0) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out->data + out->len;
	z.avail_out = (uInt)(out->cap - out->len);
	int rc = deflate(&z, Z_FINISH);
	if (rc == Z_STREAM_END)
		out->len += z.total_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

int dmarc_report_message(const struct dmarc_report_meta *m, const char *to, const void *gz,
			 size_t gz_len, time_t now, struct buf *out)
{
	char date[64];
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* RFC 7489 7.2.1.1: receiver "!" policy domain "!" begin "!" end */
	char file[600];
	snprintf(file, sizeof file, "%s!%s!%lld!%lld.xml.gz", m->org_name, m->policy_domain,
		 (long long)m->begin, (long long)m->end);
	const char *boundary = "=_tern_dmarc_report";
	int e = buf_printf(out, "From: DMARC reports <%s>\r\n", m->email);
	e |= buf_printf(out, "To: <%s>\r\n", to);
	/* RFC 7489 7.2.1.1: the subject line */
	e |= buf_printf(out, "Subject: Report Domain: %s Submitter: %s Report-ID: <%s>\r\n",
			m->policy_domain, m->org_name, m->report_id);
	e |= buf_printf(out, "Date: %s\r\n", date);
	e |= buf_printf(out, "Message-ID: <%s@%s>\r\n", m->report_id, m->org_name);
	e |= buf_puts(out, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
	e |= buf_printf(out, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary);
	e |= buf_printf(out, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
	e |= buf_printf(out,
			"This is a DMARC aggregate report (RFC 7489) from %s for %s:\r\n"
			"the messages it received from %s between the times given in the\r\n"
			"attached file, and how they fared.\r\n\r\n",
			m->org_name, m->policy_domain, m->policy_domain);
	e |= buf_printf(out,
			"--%s\r\nContent-Type: application/gzip; name=\"%s\"\r\n"
			"Content-Transfer-Encoding: base64\r\n"
			"Content-Disposition: attachment; filename=\"%s\"\r\n\r\n",
			boundary, file, file);
	size_t b64len = base64_encoded_len(gz_len);
	char *b64 = malloc(b64len + 1);
	if (b64 == NULL || base64_encode(gz, gz_len, b64, b64len + 1) < 0) {
		free(b64);
		return -1;
	}
	for (size_t off = 0; off < b64len && e == 0; off += 76) {
		size_t k = b64len - off < 76 ? b64len - off : 76;
		e |= buf_append(out, b64 + off, k);
		e |= buf_puts(out, "\r\n");
	}
	free(b64);
	e |= buf_printf(out, "\r\n--%s--\r\n", boundary);
	return e ? -1 : 0;
}

/* ---------------------------------------------- reading reports (XML) */

/* Copies s into dst (size n), cut to fit. */
static void copy(char *dst, size_t n, const char *s)
{
	size_t l = strlen(s);
	if (l >= n)
		l = n - 1;
	memcpy(dst, s, l);
	dst[l] = '\0';
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct dmarc_report_in *r = ud;
	(void)attrs;
	if (r->depth < 16)
		snprintf(r->path[r->depth], sizeof r->path[0], "%s", name);
	r->depth++;
	r->text_len = 0;
	if (!strcmp(name, "record"))
		memset(&r->cur, 0, sizeof r->cur);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct dmarc_report_in *r = ud;
	for (int i = 0; i < len && r->text_len + 1 < DMARC_REPORT_TEXT_MAX; i++)
		if (!(r->text_len == 0 && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' ||
					   s[i] == '\t')))
			r->text[r->text_len++] = s[i];
	r->text[r->text_len] = '\0';
}

/* Is the element just closed at path .../parent/name? */
static bool at(const struct dmarc_report_in *r, const char *parent, const char *name)
{
	return r->depth >= 2 && r->depth <= 16 && !strcmp(r->path[r->depth - 1], name) &&
	       !strcmp(r->path[r->depth - 2], parent);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct dmarc_report_in *r = ud;
	while (r->text_len > 0 && (r->text[r->text_len - 1] == ' ' ||
				   r->text[r->text_len - 1] == '\n' || r->text[r->text_len - 1] == '\r' ||
				   r->text[r->text_len - 1] == '\t'))
		r->text[--r->text_len] = '\0';
	const char *t = r->text;
	if (at(r, "report_metadata", "org_name"))
		copy(r->org, sizeof r->org, t);
	else if (at(r, "report_metadata", "report_id"))
		copy(r->id, sizeof r->id, t);
	else if (at(r, "date_range", "begin"))
		r->begin = strtoll(t, NULL, 10);
	else if (at(r, "date_range", "end"))
		r->end = strtoll(t, NULL, 10);
	else if (at(r, "policy_published", "domain"))
		copy(r->domain, sizeof r->domain, t);
	else if (at(r, "row", "source_ip"))
		copy(r->cur.ip, sizeof r->cur.ip, t);
	else if (at(r, "row", "count"))
		r->cur.count = strtoll(t, NULL, 10);
	else if (at(r, "policy_evaluated", "disposition"))
		copy(r->cur.disposition, sizeof r->cur.disposition, t);
	else if (at(r, "policy_evaluated", "dkim"))
		copy(r->cur.dkim, sizeof r->cur.dkim, t);
	else if (at(r, "policy_evaluated", "spf"))
		copy(r->cur.spf, sizeof r->cur.spf, t);
	else if (at(r, "identifiers", "header_from"))
		copy(r->cur.from, sizeof r->cur.from, t);
	else if (!strcmp(name, "record")) {
		if (r->n < DMARC_REPORT_RECORDS_MAX) {
			r->rec = xreallocarray(r->rec, r->n + 1, sizeof *r->rec);
			r->rec[r->n++] = r->cur;
		} else {
			r->overflow = true;
		}
	}
	if (r->depth > 0)
		r->depth--;
	r->text_len = 0;
	r->text[0] = '\0';
}

int dmarc_report_parse(const char *xml, size_t n, struct dmarc_report_in *r)
{
	memset(r, 0, sizeof *r);
	XML_Parser p = XML_ParserCreate(NULL);
	if (p == NULL)
		return -1;
	XML_SetUserData(p, r);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	int ok = n <= INT32_MAX && XML_Parse(p, xml, (int)n, 1) == XML_STATUS_OK;
	XML_ParserFree(p);
	if (!ok || r->domain[0] == '\0') {
		free(r->rec);
		r->rec = NULL;
		return -1;
	}
	return 0;
}


void dmarc_report_in_free(struct dmarc_report_in *r)
{
	free(r->rec);
	r->rec = NULL;
	r->n = 0;
}
