/*
 * smtp-quota.c - the warning of a nearly full account (smtp-quota.h).
 * store_quota_warn_claim decides (atomically, so two workers delivering
 * at once send one notice); this file writes the notice and delivers it
 * like a bounce to a local sender: Return-Path <>, From MAILER-DAEMON.
 */
#include "smtp-quota.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "store.h"

/* "1.5 MB" style, for people (the exact numbers follow in bytes). */
static void human(uint64_t bytes, char *out, size_t outsz)
{
	static const char *const units[] = {"bytes", "KB", "MB", "GB", "TB"};
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(out, outsz, "%llu bytes", (unsigned long long)bytes);
	else
		snprintf(out, outsz, "%.1f %s", v, units[u]);
}

static int build(struct buf *b, const struct config *cfg, const char *address,
		 const struct store_quota *q)
{
	char date[64], id[25];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	fsutil_unique_id(id);
	int r = 0;
	r |= buf_puts(b, "Return-Path: <>\r\n");
	r |= buf_printf(b, "Date: %s\r\n", date);
	r |= buf_printf(b, "From: Mail System <MAILER-DAEMON@%s>\r\n", cfg->hostname);
	r |= buf_printf(b, "To: <%s>\r\n", address);
	r |= buf_puts(b, "Subject: Your mailbox is almost full\r\n");
	r |= buf_printf(b, "Message-ID: <%s.quota@%s>\r\n", id, cfg->hostname);
	r |= buf_puts(b, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
			 "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
	r |= buf_printf(b, "Your mailbox %s is almost full:\r\n\r\n", address);
	if (q->storage_limit != 0) {
		char used[32], lim[32];
		human(q->storage, used, sizeof used);
		human(q->storage_limit, lim, sizeof lim);
		r |= buf_printf(b, "  storage: %s of %s (%.0f%%; %llu of %llu bytes)\r\n", used,
				lim, (double)q->storage * 100.0 / (double)q->storage_limit,
				(unsigned long long)q->storage,
				(unsigned long long)q->storage_limit);
	}
	if (q->messages_limit != 0)
		r |= buf_printf(b, "  messages: %llu of %llu (%.0f%%)\r\n",
				(unsigned long long)q->messages,
				(unsigned long long)q->messages_limit,
				(double)q->messages * 100.0 / (double)q->messages_limit);
	r |=
	    buf_puts(b, "\r\nWhen it is full, new mail for you is refused: the senders' servers\r\n"
			"try again for a while, then return it to the senders.  Delete the\r\n"
			"mail you do not need (and empty the Trash) to make room.\r\n");
	return r == 0 ? 0 : -1;
}

static void warn_one(struct store *st, const struct config *cfg, int64_t id)
{
	struct store_quota q;
	int r = store_quota_warn_claim(st, id, (unsigned)cfg->quota_warning_percent, &q);
	if (r <= 0) {
		if (r < 0)
			log_error("smtp action=quota_warning account=%lld error=\"cannot read the "
				  "quota\"",
				  (long long)id);
		return;
	}
	char address[256];
	if (store_account_address(st, id, address) != 1)
		return;
	struct buf b;
	buf_init(&b, 0);
	char path[PATH_MAX], err[256] = "";
	int fd = -1;
	if (build(&b, cfg, address, &q) < 0) {
		snprintf(err, sizeof err, "cannot make the notice");
	} else if ((fd = store_spool_write(st, b.data, b.len, NULL, 0, path, sizeof path)) < 0) {
		snprintf(err, sizeof err, "spool: %s", strerror(errno));
	} else if (store_deliver(st, path, &id, 1, time(NULL), NULL, err, sizeof err) == 0) {
		err[0] = '\0';
	}
	if (fd >= 0)
		store_spool_drop(&fd, path);
	buf_free(&b);
	if (err[0] != '\0')
		log_error("smtp action=quota_warning account=%lld error=\"%s\"", (long long)id,
			  err);
	else
		log_info(
		    "smtp action=quota_warning account=%lld address=%s storage=%llu messages=%llu",
		    (long long)id, address, (unsigned long long)q.storage,
		    (unsigned long long)q.messages);
}

void smtp_quota_warn(struct store *st, const struct config *cfg, const struct store_delivery *d,
		     size_t n)
{
	if (cfg->quota_warning_percent == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (d[i].status != 0)
			continue;
		size_t j;
		for (j = 0; j < i; j++)
			if (d[j].status == 0 && d[j].account_id == d[i].account_id)
				break;
		if (j == i)
			warn_one(st, cfg, d[i].account_id);
	}
}
