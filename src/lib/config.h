/*
 * config.h - Tern's one configuration file.
 *
 * Format: one "key = value" per line; '#' starts a comment line; blank lines
 * are ignored; values run to the end of the line (surrounding blanks
 * trimmed).  Every key is listed in docs/config.md with its default.
 * Unknown keys, repeated keys and bad values are errors naming FILE:LINE.
 *
 * Relative paths in the file are relative to the folder holding the file.
 */
#ifndef TERN_CONFIG_H
#define TERN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config {
	char *path;             /* the file read (absolute) */
	char *hostname;         /* our name in banners and Received: */
	char *data_dir;         /* absolute */
	char *user;             /* run workers as this user when started as root */
	char *smtp_listen;      /* "ADDR:PORT" or "" for off */
	char *submission_listen;
	char *submissions_listen;
	char *imap_listen;
	char *imaps_listen;
	char *pop3_listen;
	char *pop3s_listen;
	char *managesieve_listen; /* RFC 5804, Sieve script management */
	char *http_listen;      /* plain HTTP: redirects, ACME, autoconfig */
	char *https_listen;
	/* HTTP (docs/http.md). */
	char *http_webroot;     /* static files; "" none */
	uint64_t http_max_header_size;
	uint64_t http_max_body_size;
	uint64_t http_timeout;  /* seconds, per request read/write */
	char *mta_sts_mode;     /* enforce|testing|none (RFC 8461) */
	uint64_t mta_sts_max_age;
	/* JMAP (docs/jmap.md). */
	uint64_t jmap_max_size_request;     /* bytes of one API request */
	uint64_t jmap_max_calls_in_request; /* method calls in one request */
	uint64_t jmap_max_concurrent_requests; /* per account and worker */
	uint64_t jmap_max_size_upload;      /* bytes of one uploaded blob */
	uint64_t jmap_max_concurrent_upload;   /* per account and worker */
	uint64_t jmap_upload_expiry;        /* seconds an unused upload is kept */
	uint64_t jmap_auth_cache_ttl;       /* seconds a checked password is trusted, 0: off */
	char *tls_cert;
	char *tls_key;
	char *tls_sni_dir;         /* DOMAIN/cert.pem + key.pem per SNI name; "" off */
	char *dns_resolver;     /* "IP[:PORT]" or "" for the system resolvers */
	uint64_t remote_smtp_port;
	uint64_t workers;       /* 0: one per CPU */
	uint64_t smtp_max_message_size;
	uint64_t smtp_max_recipients;
	uint64_t smtp_max_connections;  /* per worker */
	uint64_t smtp_max_errors;       /* per session before 421 */
	bool auth_scram_plus;           /* offer SCRAM-SHA-256-PLUS (channel binding) */
	uint64_t imap_max_line;         /* longest IMAP command line outside literals */
	uint64_t search_index_max_text; /* full-text index: text per message, 0 off */
	char *recipient_delimiter;      /* "" disables plus-addressing */
	char *postmaster;               /* the server's postmaster address, "" derived */
	char *log_level;                /* debug|info|warn|error */
	bool allow_plaintext_loopback;
	/* Authentication (auth/sasl.h, auth/authlimit.h; docs/config.md). */
	uint64_t auth_scram_iterations;  /* PBKDF2 rounds of new SCRAM keys */
	uint64_t auth_fail_delay_ms;     /* first delay after a failure */
	uint64_t auth_fail_delay_max_ms; /* cap of the doubling delay */
	uint64_t auth_block_after;       /* failures before a block; 0 never */
	uint64_t auth_block_window;      /* seconds failures are counted */
	uint64_t auth_block_time;        /* seconds a block lasts */
	uint64_t auth_prefix_v4;         /* prefix length of the IPv4 prefix counter */
	uint64_t auth_prefix_v6;         /* prefix length of the IPv6 prefix counter */
	uint64_t auth_prefix_block_after; /* failures of a prefix before a block */
	uint64_t auth_max_pending_per_ip; /* checks in flight per client address */
	uint64_t auth_max_pending_per_account; /* per account, unknown addresses */
	/* Submission (docs/smtp.md "Submission"). */
	char *submission_domain_senders; /* accounts that may send as any address of
					 * their domain; comma/space separated */
	bool submission_received_user;   /* name the user in Received: */
	/* Outbound queue (docs/outbound.md); durations in seconds. */
	uint64_t queue_retry_min;
	uint64_t queue_retry_max;
	uint64_t queue_delay_warning;   /* 0: no delay notices */
	uint64_t queue_lifetime;
	uint64_t queue_history;         /* how long `tern trace` remembers */
	uint64_t queue_max_connections;
	uint64_t queue_max_per_destination;
	uint64_t queue_timeout_connect;
	uint64_t queue_timeout_greeting;
	uint64_t queue_timeout_command;
	uint64_t queue_timeout_data_init;
	uint64_t queue_timeout_data_block;
	uint64_t queue_timeout_data_end;
	uint64_t queue_timeout_dns;
	/* Outbound TLS (docs/outbound.md "TLS"). */
	char *outbound_tls;     /* "opportunistic" or "off" */
	char *outbound_ca_file; /* extra trusted CAs (PEM); "" none */
	/* Smarthost (docs/outbound.md "Relay host"): every message goes to
	 * this one host instead of the recipients' MX. */
	char *outbound_relay;               /* "HOST[:PORT]", "[IPV6][:PORT]"; "" off */
	char *outbound_relay_user;          /* AUTH PLAIN user; "" no AUTH */
	char *outbound_relay_password_file; /* its password (first line) */
	/* MTA-STS (RFC 8461, docs/operations.md "Outgoing transport security") */
	bool outbound_mta_sts;          /* look up and apply policies */
	uint64_t outbound_mta_sts_port; /* the policy host's HTTPS port (443; tests) */
	/* Sieve (docs/sieve.md "Limits"). */
	uint64_t sieve_max_script_size; /* bytes of one stored script */
	uint64_t sieve_max_scripts;     /* scripts per account */
	char *sieve_before;             /* global script run before the user's; "" none */
	char *sieve_after;              /* global script run after the user's; "" none */
	uint64_t sieve_vacation_min_period; /* seconds: the shortest :days/:seconds used */
	uint64_t sieve_vacation_max_period; /* seconds: the longest */
	uint64_t sieve_duplicate_period;     /* seconds a duplicate ID is kept without :seconds */
	uint64_t sieve_duplicate_max_period; /* seconds: the longest :seconds used */
	char *sieve_global_dir;              /* include :global finds NAME.sieve here; "" none */
	bool mailauth_check;            /* SPF, DKIM, DMARC on port 25 */
	char *mailauth_trusted;         /* clients not checked (addresses, networks) */
	char *mailauth_dmarc_reject;    /* reject | junk | tag: DMARC fail under p=reject */
	char *mailauth_arc_trusted;     /* sealers whose ARC pass overrides a DMARC fail */
	uint64_t mailauth_timeout;      /* seconds for all the checks of a message */
	bool mailauth_reports;          /* send DMARC aggregate reports */
	uint64_t mailauth_report_interval; /* seconds between two reports to a domain */
	bool mailauth_failure_reports;  /* send DMARC failure reports (ruf=) */
	uint64_t mailauth_failure_report_limit; /* per reported domain and hour */
	/* Connection stage on port 25 (docs/spam.md). */
	char *spam_dnsbl;               /* "zone[=weight] ..." block lists */
	char *spam_dnswl;               /* allow lists (negative weights) */
	uint64_t spam_reject_score;     /* refuse at or above this score */
	uint64_t spam_pregreet_wait;    /* seconds before the greeting; 0: no check */
	uint64_t spam_dns_timeout;      /* seconds the greeting waits for the lookups */
	uint64_t spam_fcrdns_weight;    /* no forward-confirmed reverse name */
	uint64_t spam_helo_weight;      /* HELO a bare IP or not a FQDN */
	uint64_t spam_max_connections_per_ip; /* port 25, open at once; 0: no bound */
	uint64_t spam_connection_rate;  /* port 25 connections a minute per address; 0 */
	uint64_t spam_message_rate;     /* port 25 transactions an hour per address; 0 */
	/* Greylisting, for the domains that turn it on (docs/spam.md). */
	uint64_t spam_greylist_delay;   /* seconds before a retry passes */
	uint64_t spam_greylist_expire;  /* seconds an unconfirmed triplet lives */
	uint64_t spam_greylist_keep;    /* seconds a passed triplet lives unused */
	uint64_t spam_greylist_auto_allow; /* passes after which a network skips; 0 */
	char *spam_greylist_allow;      /* clients, senders, sender domains never greylisted */
	uint64_t spam_greylist_spf_passes; /* SPF-passing domain history that skips; 0 */
	/* Content stage at the end of DATA, port 25 (docs/spam.md). */
	bool spam_content_check;        /* score messages and file/refuse by score */
	uint64_t spam_junk_score;       /* at or above: the recipient's Junk */
	uint64_t spam_content_reject_score; /* at or above: 550 5.7.1; 0: never */
	uint64_t spam_bayes_weight;     /* classifier points at certainty */
	uint64_t spam_bayes_min_trained; /* spam and ham each before it counts */
	uint64_t spam_max_tokens;       /* tokens kept per user (least recent go) */
	uint64_t spam_rule_missing_message_id; /* rule weights (spam-rules.h) */
	uint64_t spam_rule_future_date;
	uint64_t spam_rule_executable_attachment;
	uint64_t spam_rule_spf_fail;      /* sender authentication in the score */
	uint64_t spam_rule_spf_softfail;
	uint64_t spam_rule_dmarc_fail;
	bool spam_allow_sent_recipients;  /* addresses a user wrote to are allowed */
	/* External filters (milters) at the end of DATA (docs/spam.md). */
	char *milter_servers;           /* "inet:HOST:PORT unix:/path ..."; "": none */
	char *milter_default_action;    /* "tempfail" or "accept" when one fails */
	uint64_t milter_timeout_connect; /* seconds to connect and negotiate */
	uint64_t milter_timeout_command; /* seconds for each reply */
	bool milter_apply_to_submission; /* submission's messages too */
	/* Quotas (docs/admin.md "Quotas"): limits of accounts without their own, 0 none. */
	uint64_t quota_default_storage;  /* bytes */
	uint64_t quota_default_messages;
	uint64_t quota_warning_percent;  /* notice at this % of a limit, 0 none */
	/* Metrics (docs/admin.md "Monitoring"). */
	char *metrics_listen;            /* the admin listener of GET /metrics; "" off */
	bool metrics_tls;                /* HTTPS on it */
	char *metrics_password;          /* HTTP Basic for user "metrics"; "" loopback only */
	uint64_t health_min_free_space;  /* GET /health: 503 below this many free octets */
	/* PROXY protocol (docs/admin.md "Behind a load balancer"). */
	char *proxy_trusted;             /* proxies that must send a header; "" none */
	uint64_t proxy_timeout;          /* seconds a proxy has to send it */
	bool smtp_proxy_protocol;        /* per listener: read it from proxy.trusted */
	bool submission_proxy_protocol;
	bool submissions_proxy_protocol;
	bool imap_proxy_protocol;
	bool imaps_proxy_protocol;
	bool pop3_proxy_protocol;
	bool pop3s_proxy_protocol;
	bool managesieve_proxy_protocol;
};

/* Reads and validates path.  Returns a new config (caller frees with
 * config_free), or NULL with a message naming FILE:LINE written to err
 * (size errsz). */
struct config *config_load(const char *path, char *err, size_t errsz);
void config_free(struct config **cfg);

/* The key table (config.c), for `tern init` and tests: i < config_key_count().
 * config_key_restart: a change needs a restart (listeners, data_dir, user,
 * workers); every other key is applied on SIGHUP. */
size_t config_key_count(void);
const char *config_key_name(size_t i);
const char *config_key_default(size_t i);
bool config_key_restart(size_t i);
/* Whether name is a key; its index into *index (may be NULL). */
bool config_key_find(const char *name, size_t *index);

/* Whether the listener of listen_key ("smtp.listen") reads a PROXY
 * protocol header from the proxies of proxy.trusted: the value of its
 * "KIND.proxy_protocol" key; false for a listener without one. */
bool config_proxy_protocol(const struct config *c, const char *listen_key);

/* On SIGHUP: for every restart key whose value in next differs from the
 * running config, puts the running value back into next (the running
 * process cannot apply it: its sockets are bound, its data folder open),
 * and with warn logs `reload key=K note="changed; takes effect after a
 * restart"`.  Returns how many keys differed. */
size_t config_keep_restart_keys(struct config *next, const struct config *running, bool warn);

/* Splits "ADDR:PORT" / "[V6]:PORT" into host (NUL-terminated in hostbuf)
 * and port.  Returns 0 or -1. */
int config_split_hostport(const char *s, char *hostbuf, size_t hostsz, uint16_t *port);
/* The same for outbound.relay, where the port may be left out (25):
 * "HOST", "HOST:PORT", "[IPV6]", "[IPV6]:PORT".  0 or -1. */
int config_relay_split(const char *s, char *hostbuf, size_t hostsz, uint16_t *port);

#endif
