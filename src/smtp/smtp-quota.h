/*
 * smtp-quota.h - the warning of a nearly full account (docs/admin.md
 * "Quotas"): after local deliveries, each account that has just reached
 * quota.warning_percent of a limit gets a short notice in its INBOX, once
 * until its usage is below that again.
 */
#ifndef TERN_SMTP_QUOTA_H
#define TERN_SMTP_QUOTA_H

#include <stddef.h>

struct config;
struct store;
struct store_delivery;

/* For every account of d[0..n) whose item was delivered (status 0).  A
 * notice that cannot be made or stored is logged and not retried (it is a
 * courtesy: the limit itself still holds). */
void smtp_quota_warn(struct store *st, const struct config *cfg, const struct store_delivery *d,
		     size_t n);

#endif
