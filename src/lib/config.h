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
	char *tls_cert;
	char *tls_key;
	char *dns_resolver;     /* "IP[:PORT]" or "" for the system resolvers */
	uint64_t remote_smtp_port;
	uint64_t workers;       /* 0: one per CPU */
	uint64_t smtp_max_message_size;
	uint64_t smtp_max_recipients;
	uint64_t smtp_max_connections;  /* per worker */
	uint64_t smtp_max_errors;       /* per session before 421 */
	char *recipient_delimiter;      /* "" disables plus-addressing */
	char *log_level;                /* debug|info|warn|error */
	bool allow_plaintext_loopback;
};

/* Reads and validates path.  Returns a new config (caller frees with
 * config_free), or NULL with a message naming FILE:LINE written to err
 * (size errsz). */
struct config *config_load(const char *path, char *err, size_t errsz);
void config_free(struct config **cfg);

/* Keys whose change needs a restart (listeners, data_dir, user, workers);
 * returns the name of the first such key that differs, or NULL. */
const char *config_restart_key_changed(const struct config *a, const struct config *b);

/* Splits "ADDR:PORT" / "[V6]:PORT" into host (NUL-terminated in hostbuf)
 * and port.  Returns 0 or -1. */
int config_split_hostport(const char *s, char *hostbuf, size_t hostsz, uint16_t *port);

#endif
