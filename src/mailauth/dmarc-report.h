/*
 * dmarc-report.h - DMARC aggregate reports (RFC 7489 7.2, appendix C):
 * their XML, gzip'd, in a message.  Pure; the queue runner sends them
 * (src/queue/queue-dmarc.c).
 */
#ifndef TERN_DMARC_REPORT_H
#define TERN_DMARC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "store.h"

struct dmarc_report_meta {
	const char *org_name;      /* us: our host name */
	const char *email;         /* our contact, and From: of the report */
	const char *report_id;
	const char *policy_domain; /* the domain reported on */
	const char *policy;        /* "p=.. sp=.. pct=.. adkim=.. aspf=.." */
	int64_t begin, end;        /* the period, seconds since the epoch */
};

/* Appends the report's XML (appendix C) for rows to out.  0 or -1. */
int dmarc_report_xml(const struct dmarc_report_meta *m, const struct store_dmarc_row *rows,
		     size_t n, struct buf *out);
/* Appends data, gzip'd, to out.  0 or -1. */
int dmarc_report_gzip(const void *data, size_t n, struct buf *out);
/* Appends the whole message for the rua address to (7.2.1.1: subject,
 * the file name receiver!domain!begin!end.xml.gz).  0 or -1. */
int dmarc_report_message(const struct dmarc_report_meta *m, const char *to, const void *gz,
			 size_t gz_len, time_t now, struct buf *out);

/* ------------------------------------------- reports that others send */

#define DMARC_REPORT_RECORDS_MAX 10000 /* records of one report kept */
#define DMARC_REPORT_TEXT_MAX 512      /* one element's text looked at */

struct dmarc_report_record {
	char ip[64];
	long long count;
	char disposition[16], dkim[16], spf[16], from[256];
};

struct dmarc_report_in {
	char org[256], id[256], domain[256];
	long long begin, end;
	struct dmarc_report_record *rec; /* owned: dmarc_report_in_free */
	size_t n;
	bool overflow; /* more than DMARC_REPORT_RECORDS_MAX records */
	/* while parsing */
	char path[16][32];
	size_t depth;
	char text[DMARC_REPORT_TEXT_MAX];
	size_t text_len;
	struct dmarc_report_record cur;
};

/* Parses the XML of one aggregate report (untrusted, read with expat;
 * every field bounded) into r.  0, or -1 when it does not parse or names
 * no policy domain (r then holds nothing to free). */
int dmarc_report_parse(const char *xml, size_t n, struct dmarc_report_in *r);
void dmarc_report_in_free(struct dmarc_report_in *r);

#endif
