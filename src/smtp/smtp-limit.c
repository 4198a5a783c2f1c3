/*
 * smtp-limit.c - the per-address rate limits of port 25 (see
 * smtp-limit.h).  The counting is authlimit's; this file decides the
 * replies and the log lines.
 *
 * Reply codes: RFC 5321 4.2.3 gives 421 for "service not available,
 * closing transmission channel" (the server closes after it, 3.8) and
 * 451 for "requested action aborted: local error" (a temporary refusal
 * the client retries, 4.5.4.1).  The enhanced codes (RFC 3463 3.8): X.7.0
 * "other or undefined security status" for the connection limits, X.7.1
 * "delivery not authorized" for a refused transaction.
 */
#include "smtp-limit.h"

#include <stdio.h>

#include "authlimit.h"
#include "config.h"
#include "log.h"
#include "netaddr.h"

bool smtp_limit_applies(const struct config *cfg, const char *ip)
{
	return !netaddr_in_list(ip, cfg->mailauth_trusted);
}

bool smtp_limit_connect(const struct config *cfg, const struct sockaddr *sa, const char *ip,
			const char *log_id, uint64_t *slot, char *line, size_t linesz)
{
	uint32_t n;
	unsigned max_open = (unsigned)cfg->spam_max_connections_per_ip;
	unsigned per_minute = (unsigned)cfg->spam_connection_rate;
	switch (authlimit_conn_open(sa, max_open, per_minute, slot, &n)) {
	case AUTHLIMIT_CONN_OK:
		return true;
	case AUTHLIMIT_CONN_TOO_MANY:
		log_info("smtp session=%s client=%s action=rate_limit limit=connections open=%u "
			 "max=%u result=refuse",
			 log_id, ip, n, max_open);
		snprintf(line, linesz,
			 "421 4.7.0 %s Error: too many connections from %s at once (at most %u); "
			 "try again later",
			 cfg->hostname, ip, max_open);
		return false;
	case AUTHLIMIT_CONN_TOO_FAST:
		break;
	}
	log_info("smtp session=%s client=%s action=rate_limit limit=connection_rate count=%u "
		 "max=%u window=60s result=refuse",
		 log_id, ip, n, per_minute);
	snprintf(line, linesz,
		 "421 4.7.0 %s Error: too many connections from %s this minute (at most %u); "
		 "try again later",
		 cfg->hostname, ip, per_minute);
	return false;
}

void smtp_limit_close(uint64_t *slot)
{
	authlimit_conn_close(slot);
}

bool smtp_limit_message(const struct config *cfg, const struct sockaddr *sa, const char *ip,
			const char *log_id, char *line, size_t linesz)
{
	uint32_t n;
	unsigned per_hour = (unsigned)cfg->spam_message_rate;
	if (authlimit_message(sa, per_hour, &n))
		return true;
	log_info("smtp session=%s client=%s action=rate_limit limit=message_rate count=%u max=%u "
		 "window=1h result=refuse",
		 log_id, ip, n, per_hour);
	snprintf(line, linesz,
		 "451 4.7.1 Error: too many messages from %s this hour (at most %u); try again "
		 "later",
		 ip, per_hour);
	return false;
}
