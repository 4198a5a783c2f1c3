/*
 * cli-dmarc.c - `tern dmarc reports [DOMAIN]`: reads the DMARC aggregate
 * reports (RFC 7489 7.2) that other servers sent about our domains and
 * says who sends mail as them, from where, and whether it passed.
 *
 * Reports are looked for where `tern domain dns` tells the world to send
 * them: in every mailbox of the accounts that postmaster@DOMAIN reaches.
 * Each message's attachments that are gzip'd XML (zlib), zip files
 * (libzip) or plain XML are parsed with expat; a report counts for the
 * domain its policy_published names.  Everything read is untrusted and
 * bounded (sizes below); a file that does not parse is skipped with a
 * line saying so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <zip.h>
#include <zlib.h>

#include "buf.h"
#include "cli-int.h"
#include "config.h"
#include "fsutil.h"
#include "dmarc-report.h"
#include "mime.h"
#include "store.h"
#include "xalloc.h"

#define MSG_MAX (32u * 1024 * 1024) /* a report message read */
#define XML_MAX (64u * 1024 * 1024) /* an uncompressed report */
#define PARTS_MAX 64                /* attachments of one message looked at */

static int dmarc_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_dmarc_command = {
	"dmarc",
	"read the DMARC reports other servers send about our domains",
	"usage: tern [-c FILE] dmarc reports [DOMAIN]\n"
	"\n"
	"Reads the DMARC aggregate reports (RFC 7489) in the mailboxes that\n"
	"postmaster@DOMAIN reaches (the rua= address `tern domain dns` publishes),\n"
	"for DOMAIN or every domain of ours, and prints per report who sent mail\n"
	"as the domain, from which address, how many messages, and whether they\n"
	"passed DMARC; then a summary per domain.  Reports may be gzip'd, zipped\n"
	"or plain XML.\n",
	dmarc_run,
};

/* gunzip into out (bounded).  0 or -1. */
static int gunzip(const char *in, size_t n, struct buf *out)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 15 + 32) != Z_OK) /* gzip or zlib header */
		return -1;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	int rc = Z_OK;
	char chunk[65536];
	while (rc == Z_OK) {
		z.next_out = (Bytef *)chunk;
		z.avail_out = sizeof chunk;
		rc = inflate(&z, Z_NO_FLUSH);
		if ((rc == Z_OK || rc == Z_STREAM_END) &&
		    buf_append(out, chunk, sizeof chunk - z.avail_out) < 0)
			rc = Z_MEM_ERROR;
	}
	inflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -1;
}

/* The first .xml member of a zip archive into out (bounded).  0 or -1. */
static int unzip_first(const char *in, size_t n, struct buf *out)
{
	zip_error_t ze;
	zip_error_init(&ze);
	zip_source_t *src = zip_source_buffer_create(in, n, 0, &ze);
	zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY, &ze) : NULL;
	int r = -1;
	if (z == NULL) {
		if (src)
			zip_source_free(src);
		zip_error_fini(&ze);
		return -1;
	}
	zip_int64_t count = zip_get_num_entries(z, 0);
	for (zip_int64_t i = 0; i < count && r < 0; i++) {
		zip_stat_t st;
		if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) < 0 || !(st.valid & ZIP_STAT_SIZE) ||
		    st.size > XML_MAX)
			continue;
		zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)i, 0);
		if (f == NULL)
			continue;
		char chunk[65536];
		zip_int64_t got;
		r = 0;
		while ((got = zip_fread(f, chunk, sizeof chunk)) > 0)
			if (buf_append(out, chunk, (size_t)got) < 0) {
				r = -1;
				break;
			}
		if (got < 0)
			r = -1;
		zip_fclose(f);
	}
	zip_close(z);
	zip_error_fini(&ze);
	return r;
}

struct tally {
	char domain[256];
	long long messages, failed;
	size_t reports;
};

static void print_report(const struct dmarc_report_in *r)
{
	char b[32] = "?", e[32] = "?";
	time_t tb = (time_t)r->begin, te = (time_t)r->end;
	struct tm tm;
	if (gmtime_r(&tb, &tm))
		strftime(b, sizeof b, "%Y-%m-%d %H:%M", &tm);
	if (gmtime_r(&te, &tm))
		strftime(e, sizeof e, "%Y-%m-%d %H:%M", &tm);
	printf("%s: report by ", r->domain);
	cli_put_sanitized(stdout, r->org);
	printf(", %s .. %s UTC (id ", b, e);
	cli_put_sanitized(stdout, r->id);
	printf(")\n");
	for (size_t i = 0; i < r->n; i++) {
		const struct dmarc_report_record *c = &r->rec[i];
		bool pass = !strcmp(c->dkim, "pass") || !strcmp(c->spf, "pass");
		printf("  ");
		cli_put_sanitized(stdout, c->ip);
		printf("  %lld message%s  %s (dkim %s, spf %s)  disposition %s  from ", c->count,
		       c->count == 1 ? "" : "s", pass ? "pass" : "FAIL", c->dkim[0] ? c->dkim : "?",
		       c->spf[0] ? c->spf : "?", c->disposition[0] ? c->disposition : "?");
		cli_put_sanitized(stdout, c->from);
		putchar('\n');
	}
	if (r->overflow)
		printf("  (more than %d records: the rest not shown)\n", DMARC_REPORT_RECORDS_MAX);
}

struct scan {
	struct store_account *acct;
	const char *domain; /* NULL: every domain in tally */
	struct tally *tally;
	size_t n_tally;
	size_t files, bad;
};

/* Looks at one decoded attachment. */
static void look_at(struct scan *sc, const char *ctype, const char *data, size_t n)
{
	struct buf xml;
	buf_init(&xml, XML_MAX);
	int r;
	bool zip = n >= 4 && memcmp(data, "PK\003\004", 4) == 0;
	bool gz = n >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b;
	if (gz)
		r = gunzip(data, n, &xml);
	else if (zip)
		r = unzip_first(data, n, &xml);
	else if (strstr(ctype, "xml") != NULL)
		r = buf_append(&xml, data, n);
	else {
		buf_free(&xml);
		return;
	}
	sc->files++;
	struct dmarc_report_in rep;
	if (r < 0 || dmarc_report_parse(xml.data ? xml.data : "", xml.len, &rep) < 0) {
		sc->bad++;
		buf_free(&xml);
		return;
	}
	buf_free(&xml);
	for (size_t i = 0; i < sc->n_tally; i++) {
		struct tally *t = &sc->tally[i];
		if (strcasecmp(t->domain, rep.domain) != 0)
			continue;
		print_report(&rep);
		t->reports++;
		for (size_t k = 0; k < rep.n; k++) {
			t->messages += rep.rec[k].count;
			if (strcmp(rep.rec[k].dkim, "pass") != 0 && strcmp(rep.rec[k].spf, "pass") != 0)
				t->failed += rep.rec[k].count;
		}
	}
	dmarc_report_in_free(&rep);
}

/* One part (path p[0..np)): a report attachment is read; a multipart is
 * looked into (one level).  false when there is no such part. */
static bool look_at_part(struct scan *sc, const struct mime_tree *t, const char *msg,
			 unsigned *p, size_t np, bool go_down)
{
	size_t start, hlen;
	if (mime_section(t, p, np, MIME_SECT_MIME, &start, &hlen) != 1)
		return false;
	char head[2048];
	snprintf(head, sizeof head, "%.*s", (int)(hlen < 2047 ? hlen : 2047), msg + start);
	for (char *c = head; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	if (strstr(head, "multipart/") != NULL) {
		if (go_down)
			for (unsigned j = 1; j <= PARTS_MAX; j++) {
				p[1] = j;
				if (!look_at_part(sc, t, msg, p, 2, false))
					break;
			}
		return true;
	}
	if (strstr(head, "gzip") || strstr(head, "zip") || strstr(head, "xml") ||
	    strstr(head, "octet-stream")) {
		struct buf body;
		buf_init(&body, MSG_MAX);
		if (mime_binary(t, p, np, &body) == 1)
			look_at(sc, head, body.data ? body.data : "", body.len);
		buf_free(&body);
	}
	return true;
}

static int scan_message(void *ctx, const struct store_message *m)
{
	struct scan *sc = ctx;
	char path[4096];
	if (store_message_path(sc->acct, m->file_id, path, sizeof path) < 0)
		return 0;
	size_t len;
	char *msg = fsutil_read_file(path, MSG_MAX, &len);
	if (msg == NULL)
		return 0;
	struct mime_tree *t = mime_parse(msg, len);
	/* The parts of the message, and those of a multipart inside it. */
	for (unsigned i = 1; i <= PARTS_MAX; i++) {
		unsigned p[2] = {i, 0};
		if (!look_at_part(sc, t, msg, p, 1, true))
			break;
	}
	mime_tree_free(&t);
	free(msg);
	return 0;
}

static int scan_mailbox(void *ctx, const struct store_mailbox *mb)
{
	struct scan *sc = ctx;
	char err[256];
	(void)store_message_list(sc->acct, mb->id, 1, UINT32_MAX, scan_message, sc, err, sizeof err);
	return 0;
}

static int add_domain(void *ctx, const char *domain)
{
	struct scan *sc = ctx;
	sc->tally = xreallocarray(sc->tally, sc->n_tally + 1, sizeof *sc->tally);
	memset(&sc->tally[sc->n_tally], 0, sizeof sc->tally[0]);
	snprintf(sc->tally[sc->n_tally].domain, sizeof sc->tally[0].domain, "%s", domain);
	sc->n_tally++;
	return 0;
}

static int dmarc_run(const char *cfg_path, int argc, char **argv)
{
	static const char *const subs[] = {"reports", NULL};
	const struct cli_command *cmd = &cli_dmarc_command;
	const char *sub = NULL;
	char what[WHAT_MAX];
	int rc = cli_pick_sub(cmd, argc, argv, subs, &sub, what);
	if (rc != 0)
		return cli_parse_exit(rc);
	char *pos[1];
	int n_pos;
	rc = cli_parse_sub(cmd, what, argc, argv, NULL, 0, pos, 0, 1, &n_pos);
	if (rc != 0)
		return cli_parse_exit(rc);
	char domain[256] = "";
	if (n_pos > 0 && (rc = cli_check_domain(cmd, what, pos[0], domain, sizeof domain)) != 0)
		return rc;
	struct config *cfg;
	struct store *s = cli_open_store(cfg_path, &cfg, &rc);
	if (s == NULL)
		return rc;
	struct scan sc = {0};
	char err[512];
	if (domain[0]) {
		int e = store_domain_exists(s, domain);
		if (e <= 0) {
			rc = cli_fail(what, e == 0 ? "no such domain %s" : "%s: cannot look it up",
				      domain);
			goto out;
		}
		add_domain(&sc, domain);
	} else if (store_domain_list(s, add_domain, &sc, err, sizeof err) < 0) {
		rc = cli_fail(what, "%s", err);
		goto out;
	}
	/* The accounts postmaster@ each domain reaches, each read once. */
	int64_t seen[STORE_MAX_TARGETS * 4];
	size_t n_seen = 0;
	for (size_t d = 0; d < sc.n_tally; d++) {
		char pm[300];
		snprintf(pm, sizeof pm, "postmaster@%s", sc.tally[d].domain);
		struct store_targets *tg = xcalloc(1, sizeof *tg);
		if (store_resolve(s, pm, cfg->recipient_delimiter, tg) == STORE_RCPT_OK) {
			for (size_t k = 0; k < tg->n_local; k++) {
				bool dup = false;
				for (size_t q = 0; q < n_seen && !dup; q++)
					dup = seen[q] == tg->local[k];
				if (dup || n_seen == sizeof seen / sizeof seen[0])
					continue;
				seen[n_seen++] = tg->local[k];
				if (store_account_open_id(s, tg->local[k], &sc.acct) == 1) {
					(void)store_mailbox_list(sc.acct, scan_mailbox, &sc, err,
								 sizeof err);
				}
			}
		}
		free(tg);
	}
	for (size_t d = 0; d < sc.n_tally; d++) {
		const struct tally *t = &sc.tally[d];
		if (t->reports == 0 && domain[0] == '\0')
			continue;
		if (t->reports == 0)
			printf("%s: no DMARC reports in the mailboxes postmaster@%s reaches\n",
			       t->domain, t->domain);
		else
			printf("Summary for %s: %zu report%s, %lld message%s, %lld failed DMARC%s\n",
			       t->domain, t->reports, t->reports == 1 ? "" : "s", t->messages,
			       t->messages == 1 ? "" : "s", t->failed,
			       t->failed ? " (someone else sends as the domain, or a server of "
					   "yours is not covered by SPF/DKIM)"
					 : "");
	}
	if (sc.bad > 0)
		printf("(%zu attachment%s could not be read as a report)\n", sc.bad,
		       sc.bad == 1 ? "" : "s");
	rc = cli_finish_output(what, CLI_OK);
out:
	free(sc.tally);
	store_close(&s);
	config_free(&cfg);
	return rc;
}
