/*
 * config.c - parser and validator for the config file (see config.h).
 *
 * The known keys are one table: name, type, where the value lives, default,
 * and whether a change needs a restart.  Adding a key is adding a row (and
 * a line in docs/config.md, whose "on SIGHUP" column must agree with the
 * restart flag: tests/integration/test_reload.py checks every key).  The
 * table is the one source of the restart flag: the reload code
 * (config_keep_restart_keys) and `tern init`'s "(restart)" notes read it.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "dnsbl.h"
#include "endpoint.h"
#include "log.h"
#include "netaddr.h"
#include "strutil.h"
#include "xalloc.h"

enum cfg_type { CFG_STR, CFG_PATH, CFG_UINT, CFG_SIZE, CFG_BOOL, CFG_LISTEN, CFG_DURATION };

struct cfg_key {
	const char *name;
	enum cfg_type type;
	size_t offset;
	const char *def;
	bool restart; /* change needs a restart */
};

#define STR(f) offsetof(struct config, f)
static const struct cfg_key cfg_keys[] = {
	{"hostname", CFG_STR, STR(hostname), "localhost", false},
	{"data_dir", CFG_PATH, STR(data_dir), "data", true},
	{"user", CFG_STR, STR(user), "", true},
	{"smtp.listen", CFG_LISTEN, STR(smtp_listen), "0.0.0.0:25", true},
	{"submission.listen", CFG_LISTEN, STR(submission_listen), "", true},
	{"submissions.listen", CFG_LISTEN, STR(submissions_listen), "", true},
	{"imap.listen", CFG_LISTEN, STR(imap_listen), "", true},
	{"imaps.listen", CFG_LISTEN, STR(imaps_listen), "", true},
	{"pop3.listen", CFG_LISTEN, STR(pop3_listen), "", true},
	{"pop3s.listen", CFG_LISTEN, STR(pop3s_listen), "", true},
	{"managesieve.listen", CFG_LISTEN, STR(managesieve_listen), "", true},
	{"http.listen", CFG_LISTEN, STR(http_listen), "", true},
	{"https.listen", CFG_LISTEN, STR(https_listen), "", true},
	{"http.webroot", CFG_PATH, STR(http_webroot), "", false},
	{"http.max_header_size", CFG_SIZE, STR(http_max_header_size), "16K", false},
	{"http.max_body_size", CFG_SIZE, STR(http_max_body_size), "64K", false},
	{"http.timeout", CFG_DURATION, STR(http_timeout), "30s", false},
	{"mta_sts.mode", CFG_STR, STR(mta_sts_mode), "testing", false},
	{"mta_sts.max_age", CFG_DURATION, STR(mta_sts_max_age), "7d", false},
	{"jmap.max_size_request", CFG_SIZE, STR(jmap_max_size_request), "10M", false},
	{"jmap.max_calls_in_request", CFG_UINT, STR(jmap_max_calls_in_request), "64", false},
	{"jmap.max_concurrent_requests", CFG_UINT, STR(jmap_max_concurrent_requests), "4", false},
	{"jmap.max_size_upload", CFG_SIZE, STR(jmap_max_size_upload), "20M", false},
	{"jmap.max_concurrent_upload", CFG_UINT, STR(jmap_max_concurrent_upload), "4", false},
	{"jmap.upload_expiry", CFG_DURATION, STR(jmap_upload_expiry), "1d", false},
	{"jmap.auth_cache_ttl", CFG_DURATION, STR(jmap_auth_cache_ttl), "5m", false},
	{"tls.cert", CFG_PATH, STR(tls_cert), "", false},
	{"tls.key", CFG_PATH, STR(tls_key), "", false},
	{"tls.sni_dir", CFG_PATH, STR(tls_sni_dir), "", false},
	{"dns.resolver", CFG_STR, STR(dns_resolver), "", false},
	{"remote_smtp_port", CFG_UINT, STR(remote_smtp_port), "25", false},
	{"workers", CFG_UINT, STR(workers), "0", true},
	{"smtp.max_message_size", CFG_SIZE, STR(smtp_max_message_size), "50M", false},
	{"smtp.max_recipients", CFG_UINT, STR(smtp_max_recipients), "100", false},
	{"smtp.max_connections", CFG_UINT, STR(smtp_max_connections), "5000", false},
	{"smtp.max_errors", CFG_UINT, STR(smtp_max_errors), "10", false},
	{"imap.max_line", CFG_SIZE, STR(imap_max_line), "64K", false},
	{"search.index_max_text", CFG_SIZE, STR(search_index_max_text), "1M", false},
	{"recipient_delimiter", CFG_STR, STR(recipient_delimiter), "+", false},
	{"postmaster", CFG_STR, STR(postmaster), "", false},
	{"log.level", CFG_STR, STR(log_level), "info", false},
	{"allow_plaintext_loopback", CFG_BOOL, STR(allow_plaintext_loopback), "no", false},
	{"auth.scram_iterations", CFG_UINT, STR(auth_scram_iterations), "4096", false},
	{"auth.scram_plus", CFG_BOOL, STR(auth_scram_plus), "no", false},
	{"auth.fail_delay_ms", CFG_UINT, STR(auth_fail_delay_ms), "500", false},
	{"auth.fail_delay_max_ms", CFG_UINT, STR(auth_fail_delay_max_ms), "8000", false},
	{"auth.block_after", CFG_UINT, STR(auth_block_after), "10", false},
	{"auth.block_window", CFG_UINT, STR(auth_block_window), "600", false},
	{"auth.block_time", CFG_UINT, STR(auth_block_time), "900", false},
	{"auth.prefix_v4", CFG_UINT, STR(auth_prefix_v4), "24", false},
	{"auth.prefix_v6", CFG_UINT, STR(auth_prefix_v6), "64", false},
	{"auth.prefix_block_after", CFG_UINT, STR(auth_prefix_block_after), "50", false},
	{"auth.max_pending_per_ip", CFG_UINT, STR(auth_max_pending_per_ip), "8", false},
	{"auth.max_pending_per_account", CFG_UINT, STR(auth_max_pending_per_account), "8", false},
	{"submission.domain_senders", CFG_STR, STR(submission_domain_senders), "", false},
	{"submission.received_user", CFG_BOOL, STR(submission_received_user), "no", false},
	{"queue.retry_min", CFG_DURATION, STR(queue_retry_min), "5m", false},
	{"queue.retry_max", CFG_DURATION, STR(queue_retry_max), "4h", false},
	{"queue.delay_warning", CFG_DURATION, STR(queue_delay_warning), "4h", false},
	{"queue.lifetime", CFG_DURATION, STR(queue_lifetime), "5d", false},
	{"queue.history", CFG_DURATION, STR(queue_history), "7d", false},
	{"queue.max_connections", CFG_UINT, STR(queue_max_connections), "100", false},
	{"queue.max_per_destination", CFG_UINT, STR(queue_max_per_destination), "5", false},
	{"queue.timeout.connect", CFG_DURATION, STR(queue_timeout_connect), "30s", false},
	{"queue.timeout.greeting", CFG_DURATION, STR(queue_timeout_greeting), "5m", false},
	{"queue.timeout.command", CFG_DURATION, STR(queue_timeout_command), "5m", false},
	{"queue.timeout.data_init", CFG_DURATION, STR(queue_timeout_data_init), "2m", false},
	{"queue.timeout.data_block", CFG_DURATION, STR(queue_timeout_data_block), "3m", false},
	{"queue.timeout.data_end", CFG_DURATION, STR(queue_timeout_data_end), "10m", false},
	{"queue.timeout.dns", CFG_DURATION, STR(queue_timeout_dns), "30s", false},
	{"outbound.tls", CFG_STR, STR(outbound_tls), "opportunistic", false},
	{"outbound.ca_file", CFG_PATH, STR(outbound_ca_file), "", false},
	{"outbound.relay", CFG_STR, STR(outbound_relay), "", false},
	{"outbound.relay_user", CFG_STR, STR(outbound_relay_user), "", false},
	{"outbound.relay_password_file", CFG_PATH, STR(outbound_relay_password_file), "", false},
	{"outbound.mta_sts", CFG_BOOL, STR(outbound_mta_sts), "yes", false},
	{"outbound.mta_sts_port", CFG_UINT, STR(outbound_mta_sts_port), "443", false},
	{"sieve.max_script_size", CFG_SIZE, STR(sieve_max_script_size), "1M", false},
	{"sieve.max_scripts", CFG_UINT, STR(sieve_max_scripts), "16", false},
	{"sieve.before", CFG_PATH, STR(sieve_before), "", false},
	{"sieve.after", CFG_PATH, STR(sieve_after), "", false},
	{"sieve.vacation_min_period", CFG_DURATION, STR(sieve_vacation_min_period), "1d", false},
	{"sieve.vacation_max_period", CFG_DURATION, STR(sieve_vacation_max_period), "30d", false},
	{"sieve.duplicate_period", CFG_DURATION, STR(sieve_duplicate_period), "7d", false},
	{"sieve.duplicate_max_period", CFG_DURATION, STR(sieve_duplicate_max_period), "30d", false},
	{"sieve.global_dir", CFG_PATH, STR(sieve_global_dir), "", false},
	{"mailauth.check", CFG_BOOL, STR(mailauth_check), "yes", false},
	{"mailauth.trusted", CFG_STR, STR(mailauth_trusted), "127.0.0.1 ::1", false},
	{"mailauth.dmarc_reject", CFG_STR, STR(mailauth_dmarc_reject), "reject", false},
	{"mailauth.arc_trusted", CFG_STR, STR(mailauth_arc_trusted), "", false},
	{"mailauth.timeout", CFG_DURATION, STR(mailauth_timeout), "20s", false},
	{"mailauth.reports", CFG_BOOL, STR(mailauth_reports), "yes", false},
	{"mailauth.report_interval", CFG_DURATION, STR(mailauth_report_interval), "1d", false},
	{"mailauth.failure_reports", CFG_BOOL, STR(mailauth_failure_reports), "no", false},
	{"mailauth.failure_report_limit", CFG_UINT, STR(mailauth_failure_report_limit), "10", false},
	{"spam.dnsbl", CFG_STR, STR(spam_dnsbl), "", false},
	{"spam.dnswl", CFG_STR, STR(spam_dnswl), "", false},
	{"spam.reject_score", CFG_UINT, STR(spam_reject_score), "5", false},
	{"spam.pregreet_wait", CFG_DURATION, STR(spam_pregreet_wait), "1s", false},
	{"spam.dns_timeout", CFG_DURATION, STR(spam_dns_timeout), "3s", false},
	{"spam.fcrdns_weight", CFG_UINT, STR(spam_fcrdns_weight), "1", false},
	{"spam.helo_weight", CFG_UINT, STR(spam_helo_weight), "1", false},
	{"spam.max_connections_per_ip", CFG_UINT, STR(spam_max_connections_per_ip), "20", false},
	{"spam.connection_rate", CFG_UINT, STR(spam_connection_rate), "0", false},
	{"spam.message_rate", CFG_UINT, STR(spam_message_rate), "0", false},
	{"spam.greylist_delay", CFG_DURATION, STR(spam_greylist_delay), "5m", false},
	{"spam.greylist_expire", CFG_DURATION, STR(spam_greylist_expire), "1d", false},
	{"spam.greylist_keep", CFG_DURATION, STR(spam_greylist_keep), "35d", false},
	{"spam.greylist_auto_allow", CFG_UINT, STR(spam_greylist_auto_allow), "5", false},
	{"spam.greylist_allow", CFG_STR, STR(spam_greylist_allow), "", false},
	{"spam.greylist_spf_passes", CFG_UINT, STR(spam_greylist_spf_passes), "3", false},
	{"spam.content_check", CFG_BOOL, STR(spam_content_check), "yes", false},
	{"spam.junk_score", CFG_UINT, STR(spam_junk_score), "5", false},
	{"spam.content_reject_score", CFG_UINT, STR(spam_content_reject_score), "0", false},
	{"spam.bayes_weight", CFG_UINT, STR(spam_bayes_weight), "10", false},
	{"spam.bayes_min_trained", CFG_UINT, STR(spam_bayes_min_trained), "10", false},
	{"spam.max_tokens", CFG_UINT, STR(spam_max_tokens), "500000", false},
	{"spam.rule_missing_message_id", CFG_UINT, STR(spam_rule_missing_message_id), "1", false},
	{"spam.rule_future_date", CFG_UINT, STR(spam_rule_future_date), "2", false},
	{"spam.rule_executable_attachment", CFG_UINT, STR(spam_rule_executable_attachment), "4",
	 false},
	{"spam.rule_spf_fail", CFG_UINT, STR(spam_rule_spf_fail), "2", false},
	{"spam.rule_spf_softfail", CFG_UINT, STR(spam_rule_spf_softfail), "1", false},
	{"spam.rule_dmarc_fail", CFG_UINT, STR(spam_rule_dmarc_fail), "3", false},
	{"spam.allow_sent_recipients", CFG_BOOL, STR(spam_allow_sent_recipients), "yes", false},
	{"milter.servers", CFG_STR, STR(milter_servers), "", false},
	{"milter.default_action", CFG_STR, STR(milter_default_action), "tempfail", false},
	{"milter.timeout_connect", CFG_DURATION, STR(milter_timeout_connect), "5s", false},
	{"milter.timeout_command", CFG_DURATION, STR(milter_timeout_command), "10s", false},
	{"milter.apply_to_submission", CFG_BOOL, STR(milter_apply_to_submission), "no", false},
	{"quota.default_storage", CFG_SIZE, STR(quota_default_storage), "0", false},
	{"quota.default_messages", CFG_UINT, STR(quota_default_messages), "0", false},
	{"quota.warning_percent", CFG_UINT, STR(quota_warning_percent), "90", false},
	{"metrics.listen", CFG_LISTEN, STR(metrics_listen), "", true},
	{"metrics.tls", CFG_BOOL, STR(metrics_tls), "no", true},
	{"metrics.password", CFG_STR, STR(metrics_password), "", false},
	{"health.min_free_space", CFG_SIZE, STR(health_min_free_space), "256M", false},
	/* PROXY protocol (docs/admin.md "Behind a load balancer"): a listener
	 * kind's row is "KIND.proxy_protocol" for "KIND.listen"
	 * (config_proxy_protocol finds it by that name). */
	{"proxy.trusted", CFG_STR, STR(proxy_trusted), "", false},
	{"proxy.timeout", CFG_DURATION, STR(proxy_timeout), "5s", false},
	{"smtp.proxy_protocol", CFG_BOOL, STR(smtp_proxy_protocol), "no", false},
	{"submission.proxy_protocol", CFG_BOOL, STR(submission_proxy_protocol), "no", false},
	{"submissions.proxy_protocol", CFG_BOOL, STR(submissions_proxy_protocol), "no", false},
	{"imap.proxy_protocol", CFG_BOOL, STR(imap_proxy_protocol), "no", false},
	{"imaps.proxy_protocol", CFG_BOOL, STR(imaps_proxy_protocol), "no", false},
	{"pop3.proxy_protocol", CFG_BOOL, STR(pop3_proxy_protocol), "no", false},
	{"pop3s.proxy_protocol", CFG_BOOL, STR(pop3s_proxy_protocol), "no", false},
	{"managesieve.proxy_protocol", CFG_BOOL, STR(managesieve_proxy_protocol), "no", false},
};
#undef STR
#define N_KEYS (sizeof cfg_keys / sizeof cfg_keys[0])

static char **str_field(struct config *c, const struct cfg_key *k)
{
	return (char **)(void *)((char *)c + k->offset);
}

static uint64_t *u64_field(struct config *c, const struct cfg_key *k)
{
	return (uint64_t *)(void *)((char *)c + k->offset);
}

static bool *bool_field(struct config *c, const struct cfg_key *k)
{
	return (bool *)(void *)((char *)c + k->offset);
}

int config_split_hostport(const char *s, char *hostbuf, size_t hostsz, uint16_t *port)
{
	const char *colon;
	const char *host = s;
	size_t hostlen;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		host = s + 1;
		hostlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hostlen = (size_t)(colon - s);
	}
	if (hostlen == 0 || hostlen >= hostsz)
		return -1;
	uint64_t p;
	if (strutil_parse_u64(colon + 1, strlen(colon + 1), 65535, &p) < 0 || p == 0)
		return -1;
	memcpy(hostbuf, host, hostlen);
	hostbuf[hostlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

int config_relay_split(const char *s, char *hostbuf, size_t hostsz, uint16_t *port)
{
	if (config_split_hostport(s, hostbuf, hostsz, port) == 0)
		/* An IPv6 address needs its brackets ("::1" is no host ":"). */
		return s[0] != '[' && strchr(hostbuf, ':') != NULL ? -1 : 0;
	size_t n = strlen(s);
	const char *h = s;
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		h = s + 1;
		n -= 2;
	} else if (strchr(s, ':') != NULL || strchr(s, '[') != NULL) {
		return -1;
	}
	if (n == 0 || n >= hostsz)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)h[i] <= ' ' || h[i] == '[' || h[i] == ']')
			return -1;
	memcpy(hostbuf, h, n);
	hostbuf[n] = '\0';
	*port = 25;
	return 0;
}

/* Makes a path absolute relative to the config file's folder. */
static char *resolve_path(const char *dir, const char *v)
{
	if (v[0] == '\0' || v[0] == '/')
		return xstrdup(v);
	struct buf b = BUF_INIT;
	if (buf_printf(&b, "%s/%s", dir, v) < 0)
		return xstrdup(v);
	return buf_steal(&b, NULL);
}

static int set_value(struct config *c, const struct cfg_key *k, const char *dir, const char *v,
		     char *why, size_t whysz)
{
	uint64_t n;
	switch (k->type) {
	case CFG_STR:
		free(*str_field(c, k));
		*str_field(c, k) = xstrdup(v);
		return 0;
	case CFG_PATH:
		free(*str_field(c, k));
		*str_field(c, k) = resolve_path(dir, v);
		return 0;
	case CFG_LISTEN: {
		char host[256];
		uint16_t port;
		if (v[0] != '\0' && config_split_hostport(v, host, sizeof host, &port) < 0) {
			snprintf(why, whysz, "expected ADDRESS:PORT or nothing, got \"%s\"", v);
			return -1;
		}
		free(*str_field(c, k));
		*str_field(c, k) = xstrdup(v);
		return 0;
	}
	case CFG_UINT:
		if (strutil_parse_u64(v, strlen(v), UINT32_MAX, &n) < 0) {
			snprintf(why, whysz, "expected a whole number, got \"%s\"", v);
			return -1;
		}
		*u64_field(c, k) = n;
		return 0;
	case CFG_SIZE:
		if (strutil_parse_size(v, &n) < 0) {
			snprintf(why, whysz, "expected a size like 50M, got \"%s\"", v);
			return -1;
		}
		*u64_field(c, k) = n;
		return 0;
	case CFG_DURATION:
		if (strutil_parse_duration(v, &n) < 0 || n > UINT32_MAX) {
			snprintf(why, whysz, "expected a duration like 30s, 5m, 4h or 5d, got \"%s\"",
				 v);
			return -1;
		}
		*u64_field(c, k) = n;
		return 0;
	case CFG_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on"))
			*bool_field(c, k) = true;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off"))
			*bool_field(c, k) = false;
		else {
			snprintf(why, whysz, "expected yes or no, got \"%s\"", v);
			return -1;
		}
		return 0;
	}
	return -1;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

/* spam.greylist_allow: addresses and networks, sender addresses
 * (local@domain) and sender domains (domain, @domain). */
static int greylist_allow_check(const char *list)
{
	for (const char *p = list; *p != '\0';) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, " \t,");
		if (n == 0)
			break;
		const char *at = memchr(p, '@', n);
		const char *dom = at != NULL ? at + 1 : p;
		size_t dn = (size_t)(p + n - dom);
		if (at == NULL && netaddr_is_net(p, n)) {
			p += n;
			continue;
		}
		if (dn == 0 || strspn(dom, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					   "0123456789.-") < dn)
			return -1;
		p += n;
	}
	return 0;
}

/* milter.*: endpoints, the default action, timeouts of 1s..1h. */
static int milter_check(const struct config *c, char *err, size_t errsz)
{
	const char *p = c->milter_servers, *w;
	size_t n, count = 0;
	while ((n = endpoint_next(&p, &w)) > 0) {
		struct sockaddr_storage ss;
		socklen_t len;
		if (endpoint_parse(w, n, &ss, &len) < 0 || ++count > 8) {
			snprintf(err, errsz,
				 "%s: milter.servers lists at most 8 endpoints inet:ADDRESS:PORT "
				 "(an IPv4 address, [IPv6] or localhost) or unix:/path, not \"%.*s\"",
				 c->path, (int)(n > 100 ? 100 : n), w);
			return -1;
		}
	}
	if (strcmp(c->milter_default_action, "tempfail") != 0 &&
	    strcmp(c->milter_default_action, "accept") != 0) {
		snprintf(err, errsz, "%s: milter.default_action must be tempfail or accept", c->path);
		return -1;
	}
	if (c->milter_timeout_connect < 1 || c->milter_timeout_connect > 3600 ||
	    c->milter_timeout_command < 1 || c->milter_timeout_command > 3600) {
		snprintf(err, errsz,
			 "%s: milter.timeout_connect and milter.timeout_command must be 1s..1h",
			 c->path);
		return -1;
	}
	return 0;
}

static int check_final(struct config *c, char *err, size_t errsz)
{
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	bool ok = false;
	for (size_t i = 0; i < 4; i++)
		if (!strcmp(c->log_level, levels[i]))
			ok = true;
	if (!ok) {
		snprintf(err, errsz, "%s: log.level must be debug, info, warn or error", c->path);
		return -1;
	}
	if (c->remote_smtp_port == 0 || c->remote_smtp_port > 65535) {
		snprintf(err, errsz, "%s: remote_smtp_port must be 1..65535", c->path);
		return -1;
	}
	if (strlen(c->recipient_delimiter) > 1) {
		snprintf(err, errsz, "%s: recipient_delimiter must be one character or empty",
			 c->path);
		return -1;
	}
	if (c->hostname[0] == '\0') {
		snprintf(err, errsz, "%s: hostname must not be empty", c->path);
		return -1;
	}
	if (c->auth_scram_iterations < 4096 || c->auth_scram_iterations > 10000000) {
		snprintf(err, errsz, "%s: auth.scram_iterations must be 4096..10000000", c->path);
		return -1;
	}
	if (c->auth_fail_delay_max_ms < c->auth_fail_delay_ms ||
	    c->auth_fail_delay_max_ms > 60000) {
		snprintf(err, errsz,
			 "%s: auth.fail_delay_max_ms must be at least auth.fail_delay_ms and at "
			 "most 60000",
			 c->path);
		return -1;
	}
	if (strcmp(c->mta_sts_mode, "enforce") != 0 && strcmp(c->mta_sts_mode, "testing") != 0 &&
	    strcmp(c->mta_sts_mode, "none") != 0) {
		snprintf(err, errsz, "%s: mta_sts.mode must be enforce, testing or none", c->path);
		return -1;
	}
	/* RFC 8461 3.2: max_age is at most 31557600 seconds (about a year). */
	if (c->mta_sts_max_age > 31557600) {
		snprintf(err, errsz, "%s: mta_sts.max_age must be at most 31557600s", c->path);
		return -1;
	}
	if (c->http_max_header_size < 1024 || c->http_max_body_size < 1024 || c->http_timeout == 0) {
		snprintf(err, errsz,
			 "%s: http.max_header_size and http.max_body_size must be at least 1K, "
			 "http.timeout at least 1s",
			 c->path);
		return -1;
	}
	if (c->metrics_tls && !c->tls_cert[0]) {
		snprintf(err, errsz, "%s: metrics.tls needs a certificate (tls.cert)", c->path);
		return -1;
	}
	/* RFC 8620 6.1: an unused upload is kept at least an hour. */
	if (c->jmap_max_size_request < 1024 || c->jmap_max_size_upload < 1024 ||
	    c->jmap_max_size_request > (1u << 30) || c->jmap_max_size_upload > (1u << 30) ||
	    c->jmap_max_calls_in_request == 0 || c->jmap_max_concurrent_requests == 0 ||
	    c->jmap_max_concurrent_upload == 0 || c->jmap_upload_expiry < 3600) {
		snprintf(err, errsz,
			 "%s: jmap.max_size_request and jmap.max_size_upload must be 1K..1G, "
			 "jmap.max_calls_in_request, jmap.max_concurrent_requests and "
			 "jmap.max_concurrent_upload at least 1, jmap.upload_expiry at least 1h",
			 c->path);
		return -1;
	}
	/* A cached login skips the password check and the limiter: keep the
	 * time it is trusted short. */
	if (c->jmap_auth_cache_ttl > 3600) {
		snprintf(err, errsz, "%s: jmap.auth_cache_ttl must be at most 1h (0: off)", c->path);
		return -1;
	}
	if (strcmp(c->outbound_tls, "opportunistic") != 0 && strcmp(c->outbound_tls, "off") != 0) {
		snprintf(err, errsz, "%s: outbound.tls must be opportunistic or off", c->path);
		return -1;
	}
	if (c->outbound_relay[0]) {
		char host[256];
		uint16_t port;
		if (config_relay_split(c->outbound_relay, host, sizeof host, &port) < 0) {
			snprintf(err, errsz,
				 "%s: outbound.relay must be HOST, HOST:PORT, [IPV6] or [IPV6]:PORT",
				 c->path);
			return -1;
		}
	}
	if ((c->outbound_relay_user[0] != '\0') != (c->outbound_relay_password_file[0] != '\0') ||
	    (c->outbound_relay_user[0] && !c->outbound_relay[0])) {
		snprintf(err, errsz,
			 "%s: outbound.relay_user and outbound.relay_password_file go together, "
			 "with outbound.relay",
			 c->path);
		return -1;
	}
	if (c->outbound_mta_sts_port == 0 || c->outbound_mta_sts_port > 65535) {
		snprintf(err, errsz, "%s: outbound.mta_sts_port must be 1..65535", c->path);
		return -1;
	}
	if (netaddr_list_check(c->proxy_trusted) < 0) {
		snprintf(err, errsz,
			 "%s: proxy.trusted must list addresses or networks (192.0.2.1, "
			 "10.0.0.0/8, ::1), separated by spaces",
			 c->path);
		return -1;
	}
	if (c->proxy_timeout < 1 || c->proxy_timeout > 3600) {
		snprintf(err, errsz, "%s: proxy.timeout must be 1s..1h", c->path);
		return -1;
	}
	if (netaddr_list_check(c->mailauth_trusted) < 0) {
		snprintf(err, errsz,
			 "%s: mailauth.trusted must list addresses or networks (192.0.2.1, "
			 "10.0.0.0/8, ::1), separated by spaces",
			 c->path);
		return -1;
	}
	if (strcmp(c->mailauth_dmarc_reject, "reject") != 0 &&
	    strcmp(c->mailauth_dmarc_reject, "junk") != 0 &&
	    strcmp(c->mailauth_dmarc_reject, "tag") != 0) {
		snprintf(err, errsz, "%s: mailauth.dmarc_reject must be reject, junk or tag", c->path);
		return -1;
	}
	if (c->mailauth_report_interval < 1) {
		snprintf(err, errsz, "%s: mailauth.report_interval must be at least 1s", c->path);
		return -1;
	}
	if (c->mailauth_timeout < 1 || c->mailauth_timeout > 300) {
		snprintf(err, errsz, "%s: mailauth.timeout must be 1s..5m", c->path);
		return -1;
	}
	struct dnsbl_zone zones[DNSBL_MAX_ZONES];
	char zerr[200];
	if (dnsbl_parse_zones(c->spam_dnsbl, 0, zones, DNSBL_MAX_ZONES, zerr, sizeof zerr) < 0 ||
	    dnsbl_parse_zones(c->spam_dnswl, 0, zones, DNSBL_MAX_ZONES, zerr, sizeof zerr) < 0) {
		snprintf(err, errsz,
			 "%s: spam.dnsbl and spam.dnswl are lists of zone[=weight] "
			 "(bl.example=5 other.example): %s",
			 c->path, zerr);
		return -1;
	}
	if (c->spam_reject_score < 1 || c->spam_reject_score > DNSBL_WEIGHT_MAX ||
	    c->spam_fcrdns_weight > DNSBL_WEIGHT_MAX || c->spam_helo_weight > DNSBL_WEIGHT_MAX) {
		snprintf(err, errsz,
			 "%s: spam.reject_score must be 1..%d, spam.fcrdns_weight and "
			 "spam.helo_weight 0..%d",
			 c->path, DNSBL_WEIGHT_MAX, DNSBL_WEIGHT_MAX);
		return -1;
	}
	if (c->spam_pregreet_wait > 30 || c->spam_dns_timeout < 1 || c->spam_dns_timeout > 30) {
		snprintf(err, errsz, "%s: spam.pregreet_wait must be 0..30s, spam.dns_timeout 1s..30s",
			 c->path);
		return -1;
	}
	if (c->spam_greylist_delay < 1 || c->spam_greylist_delay > 86400 ||
	    c->spam_greylist_expire <= c->spam_greylist_delay ||
	    c->spam_greylist_keep < c->spam_greylist_expire) {
		snprintf(err, errsz,
			 "%s: spam.greylist_delay must be 1s..1d, spam.greylist_expire longer "
			 "than it, spam.greylist_keep at least spam.greylist_expire",
			 c->path);
		return -1;
	}
	if (greylist_allow_check(c->spam_greylist_allow) < 0) {
		snprintf(err, errsz,
			 "%s: spam.greylist_allow lists client addresses or networks (192.0.2.1, "
			 "198.51.100.0/24), sender addresses (user@example.com) and sender "
			 "domains (example.com, @example.com), separated by spaces",
			 c->path);
		return -1;
	}
	if (c->spam_junk_score < 1 || c->spam_junk_score > 1000 ||
	    c->spam_content_reject_score > 1000 || c->spam_bayes_weight > 1000 ||
	    c->spam_rule_missing_message_id > 1000 || c->spam_rule_future_date > 1000 ||
	    c->spam_rule_executable_attachment > 1000 || c->spam_rule_spf_fail > 1000 ||
	    c->spam_rule_spf_softfail > 1000 || c->spam_rule_dmarc_fail > 1000 ||
	    (c->spam_content_reject_score != 0 &&
	     c->spam_content_reject_score < c->spam_junk_score)) {
		snprintf(err, errsz,
			 "%s: spam.junk_score must be 1..1000, spam.content_reject_score 0 (never) or "
			 "spam.junk_score..1000, spam.bayes_weight and spam.rule_* 0..1000",
			 c->path);
		return -1;
	}
	if (c->spam_max_tokens < 1000 || c->spam_max_tokens > 100000000) {
		snprintf(err, errsz, "%s: spam.max_tokens must be 1000..100000000", c->path);
		return -1;
	}
	if (milter_check(c, err, errsz) < 0)
		return -1;
	if (c->imap_max_line < 8192 || c->imap_max_line > 16 * 1024 * 1024) {
		snprintf(err, errsz, "%s: imap.max_line must be 8K..16M", c->path);
		return -1;
	}
	if (c->search_index_max_text > 64 * 1024 * 1024) {
		snprintf(err, errsz, "%s: search.index_max_text must be 0..64M", c->path);
		return -1;
	}
	if (c->quota_warning_percent > 100) {
		snprintf(err, errsz, "%s: quota.warning_percent must be 0..100", c->path);
		return -1;
	}
	if (c->postmaster[0] != '\0' &&
	    (strchr(c->postmaster, '@') == NULL || c->postmaster[0] == '@' ||
	     strlen(c->postmaster) > 254)) {
		snprintf(err, errsz, "%s: postmaster must be an address (local@domain)", c->path);
		return -1;
	}
	if (c->auth_block_window == 0) {
		snprintf(err, errsz, "%s: auth.block_window must be at least 1 (seconds)", c->path);
		return -1;
	}
	if (c->auth_prefix_v4 < 8 || c->auth_prefix_v4 > 32 || c->auth_prefix_v6 < 16 ||
	    c->auth_prefix_v6 > 128) {
		snprintf(err, errsz, "%s: auth.prefix_v4 must be 8..32 and auth.prefix_v6 16..128",
			 c->path);
		return -1;
	}
	if (c->auth_max_pending_per_ip > 10000 || c->auth_max_pending_per_account > 10000) {
		snprintf(err, errsz,
			 "%s: auth.max_pending_per_ip and auth.max_pending_per_account must be at "
			 "most 10000",
			 c->path);
		return -1;
	}
	return 0;
}

struct config *config_load(const char *path, char *err, size_t errsz)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char abs[PATH_MAX];
	if (realpath(path, abs) == NULL)
		snprintf(abs, sizeof abs, "%s", path);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", abs);
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir)
		*slash = '\0';
	else
		snprintf(dir, sizeof dir, "/");

	struct config *c = xcalloc(1, sizeof *c);
	c->path = xstrdup(abs);
	char why[256];
	for (size_t i = 0; i < N_KEYS; i++)
		if (set_value(c, &cfg_keys[i], dir, cfg_keys[i].def, why, sizeof why) < 0)
			abort(); /* a bad default is a bug */

	bool seen[N_KEYS] = {false};
	char line[4096];
	unsigned lineno = 0;
	int failed = 0;
	while (!failed && fgets(line, sizeof line, f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errsz, "%s:%u: line too long", abs, lineno);
			failed = 1;
			break;
		}
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(err, errsz, "%s:%u: expected \"key = value\"", abs, lineno);
			failed = 1;
			break;
		}
		*eq = '\0';
		char *key = trim(s);
		char *val = trim(eq + 1);
		size_t i;
		for (i = 0; i < N_KEYS; i++)
			if (!strcmp(cfg_keys[i].name, key))
				break;
		if (i == N_KEYS) {
			snprintf(err, errsz, "%s:%u: unknown key \"%s\"", abs, lineno, key);
			failed = 1;
		} else if (seen[i]) {
			snprintf(err, errsz, "%s:%u: key \"%s\" given twice", abs, lineno, key);
			failed = 1;
		} else if (set_value(c, &cfg_keys[i], dir, val, why, sizeof why) < 0) {
			snprintf(err, errsz, "%s:%u: %s: %s", abs, lineno, key, why);
			failed = 1;
		}
		if (i < N_KEYS)
			seen[i] = true;
	}
	fclose(f);
	if (!failed && check_final(c, err, errsz) < 0)
		failed = 1;
	if (failed) {
		config_free(&c);
		return NULL;
	}
	return c;
}

void config_free(struct config **cfgp)
{
	if (cfgp == NULL || *cfgp == NULL)
		return;
	struct config *c = *cfgp;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		if (k->type == CFG_STR || k->type == CFG_PATH || k->type == CFG_LISTEN)
			free(*str_field(c, k));
	}
	free(c->path);
	free(c);
	*cfgp = NULL;
}

size_t config_key_count(void)
{
	return N_KEYS;
}

const char *config_key_name(size_t i)
{
	return i < N_KEYS ? cfg_keys[i].name : NULL;
}

const char *config_key_default(size_t i)
{
	return i < N_KEYS ? cfg_keys[i].def : NULL;
}

bool config_key_restart(size_t i)
{
	return i < N_KEYS && cfg_keys[i].restart;
}

bool config_key_find(const char *name, size_t *index)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (!strcmp(cfg_keys[i].name, name)) {
			if (index != NULL)
				*index = i;
			return true;
		}
	return false;
}

bool config_proxy_protocol(const struct config *c, const char *listen_key)
{
	const char *dot = strrchr(listen_key, '.');
	if (dot == NULL || strcmp(dot, ".listen") != 0)
		return false;
	char name[64];
	int n = snprintf(name, sizeof name, "%.*s.proxy_protocol", (int)(dot - listen_key),
			 listen_key);
	size_t i;
	if (n < 0 || (size_t)n >= sizeof name || !config_key_find(name, &i) ||
	    cfg_keys[i].type != CFG_BOOL)
		return false;
	return *(const bool *)(const void *)((const char *)c + cfg_keys[i].offset);
}

/* Whether key k has the same value in a and b. */
static bool same_value(struct config *a, struct config *b, const struct cfg_key *k)
{
	switch (k->type) {
	case CFG_STR:
	case CFG_PATH:
	case CFG_LISTEN:
		return !strcmp(*str_field(a, k), *str_field(b, k));
	case CFG_UINT:
	case CFG_SIZE:
	case CFG_DURATION:
		return *u64_field(a, k) == *u64_field(b, k);
	case CFG_BOOL:
		return *bool_field(a, k) == *bool_field(b, k);
	}
	return false;
}

size_t config_keep_restart_keys(struct config *next, const struct config *running, bool warn)
{
	/* running is only read; the field helpers take a non-const config */
	struct config *old = (struct config *)running;
	size_t n = 0;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		if (!k->restart || same_value(next, old, k))
			continue;
		n++;
		if (warn)
			log_warn("reload key=%s note=\"changed; takes effect after a restart\"",
				 k->name);
		switch (k->type) {
		case CFG_STR:
		case CFG_PATH:
		case CFG_LISTEN:
			free(*str_field(next, k));
			*str_field(next, k) = xstrdup(*str_field(old, k));
			break;
		case CFG_UINT:
		case CFG_SIZE:
		case CFG_DURATION:
			*u64_field(next, k) = *u64_field(old, k);
			break;
		case CFG_BOOL:
			*bool_field(next, k) = *bool_field(old, k);
			break;
		}
	}
	return n;
}
