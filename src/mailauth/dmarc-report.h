/*
 * dmarc-report.h - DMARC aggregate reports (RFC 7489 7.2, appendix C):
 * their XML, gzip'd, in a message.  Pure; the queue runner sends them
 * (src/queue/queue-dmarc.c).
 */
#ifndef TERN_DMARC_REPORT_H
#define TERN_DMARC_REPORT_H

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

#endif
