/*
 * cli-init.c - `tern init DIR`: a new, working installation in one folder.
 *
 * Writes DIR/tern.conf (every key: the common ones set and explained, the
 * rest commented out at their defaults; restart-only keys marked
 * "(restart)" from the key table), creates the data folder through the store, optionally
 * adds a first domain, and makes a self-signed TLS certificate for the
 * hostname.  When run as root it also hands the data folder to the user
 * the workers will run as.
 *
 * Order: check every argument and DIR first (exit 2), then create; if any
 * step fails, remove what this run created, so a retry starts clean.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "cli-int.h"
#include "cli.h"
#include "config.h"
#include "fsutil.h"
#include "privdrop.h"
#include "store.h"
#include "strutil.h"
#include "xalloc.h"

#define CERT_DAYS 825
/* The largest port base that keeps every planned listener, up to
 * ManageSieve on N+4190, within 65535. */
#define PORT_BASE_MAX (65535 - 4190)

static int init_run(const char *cfg_path, int argc, char **argv);

const struct cli_command cli_init_command = {
	"init",
	"create a config, data folder and TLS certificate in a new folder",
	"usage: tern init DIR [--hostname H] [--domain D] [--address A] [--port-base N]\n"
	"                     [--resolver IP[:PORT]] [--user NAME] [--data-dir PATH]\n"
	"\n"
	"Creates DIR (which must be empty or not exist) with:\n"
	"  DIR/tern.conf      the config: every key, the common ones explained;\n"
	"                     keys marked (restart) need a restart\n"
	"  DIR/data/          databases and mailboxes\n"
	"  DIR/tls/cert.pem   a self-signed certificate for the hostname\n"
	"  DIR/tls/key.pem    its private key (mode 0600)\n"
	"\n"
	"Options:\n"
	"  --hostname H       our name in banners and the certificate\n"
	"                     (default: this machine's name)\n"
	"  --domain D         add D as a first mail domain\n"
	"  --address A        IP address to listen on (default 127.0.0.1)\n"
	"  --port-base N      listen on N + the standard ports (N+25 SMTP, N+587,\n"
	"                     N+465, N+143, N+993, N+110, N+995) and send to remote\n"
	"                     servers on port N+25; N at most 61345\n"
	"  --resolver IP[:PORT]  DNS resolver to ask (default: the system's);\n"
	"                     IPv6 as [ADDRESS]:PORT\n"
	"  --user NAME        unprivileged user the workers run as when tern is\n"
	"                     started as root (default as root: tern if it exists,\n"
	"                     else nobody)\n"
	"  --data-dir PATH    the data folder (absolute; default DIR/data): a new\n"
	"                     or empty folder, or the data folder of an earlier\n"
	"                     installation, which is kept\n",
	init_run,
};

struct init_args {
	const char *dir;
	const char *hostname_opt;
	const char *domain_opt;
	const char *address_opt;
	const char *port_base_opt;
	const char *resolver_opt;
	const char *user_opt;
	const char *data_dir_opt;

	/* checked and derived */
	char hostname[65];
	char domain[256];
	const char *address;
	bool address_v6;
	uint64_t port_base;
	bool has_port_base;
	const char *resolver;
	char user[256];
	uid_t uid;
	gid_t gid;
	bool as_root;
	bool data_kept; /* --data-dir held an earlier installation's data */
};

/* dir + "/" + name into out[PATH_MAX].  init_run keeps DIR short enough
 * that this never truncates; the check is a guard, not a code path. */
static int path_join(char out[PATH_MAX], const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* ------------------------------------------------------- argument checks */

static bool ip_literal(const char *s, bool *v6)
{
	unsigned char b[16];
	*v6 = false;
	if (inet_pton(AF_INET, s, b) == 1)
		return true;
	if (inet_pton(AF_INET6, s, b) == 1) {
		*v6 = true;
		return true;
	}
	return false;
}

/* IPv4, IPv4:PORT or [IPv6]:PORT, as dns.resolver takes it.  A bare IPv6
 * address is refused: "::1:53" would read both as an address and as an
 * address and a port. */
static bool resolver_ok(const char *s)
{
	bool v6;
	if (ip_literal(s, &v6))
		return !v6;
	char host[INET6_ADDRSTRLEN + 1];
	uint16_t port;
	if (config_split_hostport(s, host, sizeof host, &port) < 0)
		return false;
	if (!ip_literal(host, &v6))
		return false;
	return v6 == (s[0] == '['); /* "::1:53" is ambiguous: IPv6 needs [] */
}

/* --data-dir: absolute (a relative one would be read relative to DIR,
 * which is surprising on a command line), no ".." component, bounded, and
 * writable as a config value (no newline; the config trims blanks). */
static bool data_dir_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || s[0] != '/' || n > PATH_MAX - 512 || s[n - 1] == ' ' || s[n - 1] == '\t')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\n' || s[i] == '\r')
			return false;
	for (const char *p = s; (p = strstr(p, "..")) != NULL; p += 2)
		if (p[-1] == '/' && (p[2] == '/' || p[2] == '\0'))
			return false;
	return true;
}

static int pick_user(const struct cli_command *cmd, struct init_args *a)
{
	a->as_root = geteuid() == 0;
	const char *name = a->user_opt;
	struct passwd *pw = NULL;
	if (name != NULL) {
		pw = getpwnam(name);
		if (pw == NULL)
			return cli_usage_error(cmd, "init", "--user %s: no such user on this system",
					       name);
		if (pw->pw_uid == 0)
			return cli_usage_error(cmd, "init",
					       "--user %s: is root; choose an unprivileged user", name);
	} else if (a->as_root) {
		name = "tern";
		pw = getpwnam(name);
		if (pw == NULL) {
			name = "nobody";
			pw = getpwnam(name);
		}
		if (pw == NULL)
			return cli_fail("init", "running as root, but neither user \"tern\" nor "
						"\"nobody\" exists; give --user NAME");
	}
	if (pw == NULL) {
		a->user[0] = '\0';
		return 0;
	}
	snprintf(a->user, sizeof a->user, "%s", name);
	a->uid = pw->pw_uid;
	a->gid = pw->pw_gid;
	return 0;
}

static int check_args(const struct cli_command *cmd, struct init_args *a)
{
	if (a->dir[0] == '\0')
		return cli_usage_error(cmd, "init", "DIR is empty");

	const char *h = a->hostname_opt;
	if (h != NULL) {
		if (!cli_domain_ok(h))
			return cli_usage_error(cmd, "init", "--hostname \"%s\": not a valid host name",
					       h);
		if (strlen(h) >= sizeof a->hostname)
			return cli_usage_error(cmd, "init",
					       "--hostname \"%s\": longer than %zu characters, too "
					       "long for a certificate",
					       h, sizeof a->hostname - 1);
		snprintf(a->hostname, sizeof a->hostname, "%s", h);
	} else {
		char name[256] = "";
		if (gethostname(name, sizeof name - 1) < 0)
			name[0] = '\0';
		size_t n = strlen(name);
		if (cli_domain_ok(name) && n < sizeof a->hostname)
			memcpy(a->hostname, name, n + 1);
		else
			snprintf(a->hostname, sizeof a->hostname, "localhost");
	}
	strutil_lower(a->hostname, strlen(a->hostname));

	a->domain[0] = '\0';
	if (a->domain_opt != NULL) {
		if (!cli_domain_ok(a->domain_opt) || strlen(a->domain_opt) >= sizeof a->domain)
			return cli_usage_error(cmd, "init", "--domain \"%s\": not a valid domain name",
					       a->domain_opt);
		snprintf(a->domain, sizeof a->domain, "%s", a->domain_opt);
		strutil_lower(a->domain, strlen(a->domain));
	}

	a->address = a->address_opt != NULL ? a->address_opt : "127.0.0.1";
	if (!ip_literal(a->address, &a->address_v6))
		return cli_usage_error(cmd, "init",
				       "--address \"%s\": not an IP address (like 127.0.0.2 or ::1)",
				       a->address);

	a->has_port_base = a->port_base_opt != NULL;
	a->port_base = 0;
	if (a->has_port_base &&
	    strutil_parse_u64(a->port_base_opt, strlen(a->port_base_opt), PORT_BASE_MAX,
			      &a->port_base) < 0)
		return cli_usage_error(cmd, "init", "--port-base \"%s\": not a number from 0 to %d",
				       a->port_base_opt, PORT_BASE_MAX);

	a->resolver = a->resolver_opt != NULL ? a->resolver_opt : "";
	if (a->resolver_opt != NULL && !resolver_ok(a->resolver_opt))
		return cli_usage_error(cmd, "init",
				       "--resolver \"%s\": expected IPv4, IPv4:PORT or [IPv6]:PORT",
				       a->resolver_opt);
	if (a->data_dir_opt != NULL && !data_dir_ok(a->data_dir_opt))
		return cli_usage_error(cmd, "init",
				       "--data-dir \"%s\": expected an absolute path without "
				       "\"..\" and with no blank at either end",
				       a->data_dir_opt);
	return pick_user(cmd, a);
}

/* 1 if the folder is empty, 0 if not, -1 on error. */
static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	struct dirent *e;
	int empty = 1;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	}
	int rc = errno != 0 && empty ? -1 : empty;
	closedir(d);
	return rc;
}

/* ----------------------------------------------------------- clean-up */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

/* Removes what this run created: the whole folder if we made it, else
 * only what is in it (it was empty when we started). */
static void cleanup(const char *dir, bool created_dir)
{
	char path[PATH_MAX];
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (path_join(path, dir, e->d_name) == 0)
				nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
		}
		closedir(d);
	}
	if (created_dir)
		rmdir(dir);
}

/* --------------------------------------------------------- user access */

/* Checks, as user, that every folder on the way to dir can be searched
 * (so workers that run as user can reach DIR/data).  Runs in a child that
 * gives up root for good.  Returns 0 if so; else 1 with the first folder
 * that blocks in blocker. */
static int user_can_reach(const char *dir, const char *user, char *blocker, size_t blockersz)
{
	int p[2];
	if (pipe(p) < 0)
		return 0; /* cannot tell; do not warn */
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return 0;
	}
	if (pid == 0) {
		close(p[0]);
		char err[256];
		if (privdrop_to_user(user, err, sizeof err) < 0)
			_exit(0);
		char path[PATH_MAX];
		size_t n = strlen(dir);
		if (n >= sizeof path)
			_exit(0);
		memcpy(path, dir, n + 1);
		for (size_t i = 1; i <= n; i++) {
			if (path[i] != '/' && path[i] != '\0')
				continue;
			char save = path[i];
			path[i] = '\0';
			if (access(path, X_OK) < 0) {
				(void)!write(p[1], path, strlen(path));
				_exit(1);
			}
			path[i] = save;
		}
		_exit(0);
	}
	close(p[1]);
	size_t got = 0;
	ssize_t r;
	while (got + 1 < blockersz &&
	       ((r = read(p[0], blocker + got, blockersz - 1 - got)) > 0 || (r < 0 && errno == EINTR)))
		if (r > 0)
			got += (size_t)r;
	blocker[got] = '\0';
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 1 ? 1 : 0;
}

static uid_t chown_uid;
static gid_t chown_gid;

static int chown_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return lchown(path, chown_uid, chown_gid);
}

/* ------------------------------------------------------------- config */

static const struct {
	const char *key;
	unsigned port;
	const char *what;
	const char *lands; /* NULL: served today; else what it waits for */
} listeners[] = {
	{"smtp.listen", 25, "SMTP from other mail servers (the MX service)", NULL},
	{"submission.listen", 587, "submission from mail clients (STARTTLS, AUTH)", NULL},
	{"submissions.listen", 465, "submission with implicit TLS", NULL},
	{"imap.listen", 143, "IMAP mail access (STARTTLS)", NULL},
	{"imaps.listen", 993, "IMAP with implicit TLS", NULL},
	{"pop3.listen", 110, "POP3 mail retrieval (STLS)", NULL},
	{"pop3s.listen", 995, "POP3 with implicit TLS", NULL},
	{"managesieve.listen", 4190, "ManageSieve: Sieve scripts from mail clients (STARTTLS)", NULL},
	{"http.listen", 80, "HTTP: redirects to HTTPS, ACME, client auto-configuration", NULL},
	{"https.listen", 443, "HTTPS: client auto-configuration, MTA-STS policy", NULL},
};
#define N_LISTENERS (sizeof listeners / sizeof listeners[0])

static void listen_value(const struct init_args *a, unsigned port, char *out, size_t outsz)
{
	unsigned p = (unsigned)a->port_base + port;
	if (a->address_v6)
		snprintf(out, outsz, "[%s]:%u", a->address, p);
	else
		snprintf(out, outsz, "%s:%u", a->address, p);
}

/* The config is written one key at a time.  A key's comment ends in
 * " (restart)" when the key table (config.c) says a change needs a
 * restart, so this file and the reload code cannot disagree; the keys it
 * does not set come last, commented out at their defaults, so the file
 * names every key. */
struct conf_writer {
	struct buf *b;
	bool *written; /* per key of the table */
	int err;
};

/* "# COMMENT[ (restart)].\nKEY = VALUE\n"; value NULL: the key's default;
 * off: the key line commented out ("# KEY = VALUE").  A key not in the
 * table is a bug here (err set; the config is not written). */
static void put_key(struct conf_writer *w, const char *comment, const char *key,
		    const char *value, bool off)
{
	size_t i;
	if (!config_key_find(key, &i)) {
		w->err = -1;
		return;
	}
	w->written[i] = true;
	bool restart = config_key_restart(i);
	int r = 0;
	if (comment != NULL)
		r |= buf_printf(w->b, "# %s%s.\n", comment, restart ? " (restart)" : "");
	else if (restart)
		r |= buf_puts(w->b, "# (restart)\n");
	if (value == NULL)
		value = config_key_default(i);
	r |= buf_printf(w->b, "%s%s =%s%s\n", off ? "# " : "", key, value[0] ? " " : "", value);
	if (r < 0)
		w->err = -1;
}

static void put_text(struct conf_writer *w, const char *text)
{
	if (buf_puts(w->b, text) < 0)
		w->err = -1;
}

static int build_config(const struct init_args *a, struct buf *b)
{
	char now[32] = "";
	time_t t = time(NULL);
	struct tm tm;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
	struct conf_writer w = {b, xcalloc(config_key_count(), sizeof(bool)), 0};
	if (buf_printf(b,
		       "# tern.conf - written by `tern init` on %s.\n"
		       "#\n"
		       "# Format: one \"key = value\" a line; lines starting with '#' are comments.\n"
		       "# Relative paths are relative to the folder holding this file.  Unknown\n"
		       "# keys are errors.  After a change: `kill -HUP` the master.  Keys marked\n"
		       "# \"(restart)\" need a restart: on SIGHUP the running value stays and the\n"
		       "# log warns.  Every key and its default: docs/config.md.\n"
		       "\n",
		       now) < 0)
		w.err = -1;
	put_key(&w,
		"Our name: in the SMTP greeting, EHLO to other servers, Received:\n"
		"# headers, and the TLS certificate",
		"hostname", a->hostname, false);
	put_text(&w, "\n");
	put_key(&w, "Databases, mailboxes and the queue", "data_dir",
		a->data_dir_opt != NULL ? a->data_dir_opt : "data", false);
	put_text(&w, "\n");
	put_key(&w,
		"When started as root: the unprivileged user the workers and the\n"
		"# admin commands run as; it must own data_dir.  Empty: keep running as\n"
		"# the user that starts tern (which must then not be root)",
		"user", a->user, false);
	put_text(&w, "\n# Listeners, \"ADDRESS:PORT\" (IPv6: \"[ADDRESS]:PORT\"); empty: off.\n");
	for (size_t i = 0; i < N_LISTENERS; i++) {
		char v[80];
		listen_value(a, listeners[i].port, v, sizeof v);
		if (listeners[i].lands == NULL)
			put_key(&w, listeners[i].what, listeners[i].key, v, false);
	}
	bool noted = false;
	for (size_t i = 0; i < N_LISTENERS; i++) {
		char v[80], what[200];
		listen_value(a, listeners[i].port, v, sizeof v);
		if (listeners[i].lands == NULL)
			continue;
		/* Written, but commented out: the file should say what runs. */
		if (!noted)
			put_text(&w, "# Not served by this version yet: uncomment each once its\n"
				     "# protocol lands.\n");
		noted = true;
		snprintf(what, sizeof what, "%s (once %s lands)", listeners[i].what,
			 listeners[i].lands);
		put_key(&w, what, listeners[i].key, v, true);
	}
	put_text(&w, "\n");
	put_key(&w,
		"TLS certificate chain (PEM).  `tern init` made a self-signed one;\n"
		"# replace it with one from a CA for use on the Internet",
		"tls.cert", "tls/cert.pem", false);
	put_key(&w, "Its private key (PEM), readable by its owner only", "tls.key", "tls/key.pem",
		false);
	put_key(&w,
		"More certificates, chosen by the name the client asks for (SNI): a\n"
		"# folder holding one folder per name (mail.example.org or\n"
		"# *.example.org), each with cert.pem and key.pem.  Other names get\n"
		"# tls.cert",
		"tls.sni_dir", "tls/domains", true);
	put_text(&w, "\n");
	put_key(&w,
		"DNS resolver for MX and address lookups, \"IP\" or \"IP:PORT\";\n"
		"# empty: the system's resolvers (/etc/resolv.conf)",
		"dns.resolver", a->resolver, false);
	put_text(&w, "\n");
	char port[24];
	snprintf(port, sizeof port, "%" PRIu64, a->port_base + 25);
	put_key(&w,
		"Port of other servers' SMTP service when relaying mail to them (25\n"
		"# on the Internet; port base + 25 between test instances)",
		"remote_smtp_port", port, false);
	put_text(&w, "\n");
	put_key(&w, "Worker processes; 0: one per CPU", "workers", "0", false);
	put_text(&w, "\n");
	put_key(&w, "Largest message accepted, in bytes (K, M, G suffixes)",
		"smtp.max_message_size", "50M", false);
	put_text(&w, "\n");
	put_key(&w, "Most recipients of one message", "smtp.max_recipients", "100", false);
	put_text(&w, "\n");
	put_key(&w, "Most SMTP connections per worker", "smtp.max_connections", "5000", false);
	put_text(&w, "\n");
	put_key(&w, "Errors one SMTP session may make before it is closed", "smtp.max_errors",
		"10", false);
	put_text(&w, "\n");
	put_key(&w, "user+tag@domain is delivered to user@domain; empty: off",
		"recipient_delimiter", "+", false);
	put_text(&w, "\n");
	put_key(&w, "Least important log lines shown: debug, info, warn or error", "log.level",
		"info", false);
	put_text(&w, "\n");
	put_key(&w, "Allow password logins without TLS from 127.0.0.1/::1 (for tests)",
		"allow_plaintext_loopback", "no", false);
	put_text(&w, "\n");
	/* N+9100 (Prometheus exporters' habit), or 9100 if that is no port */
	char mlisten[80];
	unsigned mport = a->port_base + 9100 <= 65535 ? (unsigned)a->port_base + 9100 : 9100;
	snprintf(mlisten, sizeof mlisten, a->address_v6 ? "[%s]:%u" : "%s:%u", a->address, mport);
	put_key(&w,
		"Metrics for Prometheus: GET /metrics on this admin listener\n"
		"# (docs/admin.md \"Monitoring\"); uncomment to turn it on",
		"metrics.listen", mlisten, true);
	put_key(&w,
		"Who may scrape: empty, only 127.0.0.1 and ::1; else HTTP Basic as\n"
		"# user \"metrics\" with this password, from anywhere",
		"metrics.password", "", true);
	put_key(&w, "HTTPS on the admin listener (with tls.cert)", "metrics.tls", "no", true);
	put_text(&w, "\n# Every other key, at its default (docs/config.md says what each does).\n");
	for (size_t i = 0; i < config_key_count(); i++)
		if (!w.written[i])
			put_key(&w, NULL, config_key_name(i), NULL, true);
	free(w.written);
	return w.err;
}

/* ---------------------------------------------------------------- TLS */

static void ssl_error(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[256] = "unknown error";
	if (e != 0)
		ERR_error_string_n(e, msg, sizeof msg);
	snprintf(err, errsz, "%s: %s", what, msg);
	ERR_clear_error();
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	if (ext == NULL)
		return -1;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* Writes a BIO's bytes to path atomically with mode. */
static int write_bio(BIO *bio, const char *path, mode_t mode, char *err, size_t errsz)
{
	char *data = NULL;
	long n = BIO_get_mem_data(bio, &data);
	if (n <= 0 || fsutil_write_file_atomic(path, data, (size_t)n, mode) < 0 ||
	    chmod(path, mode) < 0) {
		snprintf(err, errsz, "%s: %s", path, n <= 0 ? "nothing to write" : strerror(errno));
		return -1;
	}
	return 0;
}

/* Makes a self-signed certificate (EC P-256, SHA-256) for the hostname,
 * also valid for localhost, 127.0.0.1 and the listen address, into
 * tlsdir/cert.pem and tlsdir/key.pem (0600). */
static int make_cert(const struct init_args *a, const char *tlsdir, char *err, size_t errsz)
{
	int rc = -1;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIGNUM *serial = NULL;
	BIO *kbio = NULL, *cbio = NULL;
	struct buf san = BUF_INIT;
	char path[PATH_MAX];

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL) {
		ssl_error(err, errsz, "generating the key");
		goto out;
	}
	x = X509_new();
	serial = BN_new();
	if (x == NULL || serial == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL ||
	    /* an hour back, for clocks slightly behind ours */
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) == NULL ||
	    !X509_set_pubkey(x, pkey)) {
		ssl_error(err, errsz, "building the certificate");
		goto out;
	}
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)a->hostname, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name)) {
		ssl_error(err, errsz, "setting the certificate name");
		goto out;
	}
	/* hostname and address were checked: no ',' or ':' can reach here
	 * but an IPv6 literal's, which "IP:" takes as it is. */
	buf_printf(&san, "DNS:%s", a->hostname);
	if (strcmp(a->hostname, "localhost") != 0)
		buf_puts(&san, ",DNS:localhost");
	buf_puts(&san, ",IP:127.0.0.1");
	if (strcmp(a->address, "127.0.0.1") != 0 && strcmp(a->address, "0.0.0.0") != 0 &&
	    strcmp(a->address, "::") != 0)
		buf_printf(&san, ",IP:%s", a->address);
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	/* No keyUsage extension: with one lacking keyCertSign, OpenSSL would
	 * not treat this certificate as its own issuer, and clients that pin
	 * it as their only trust anchor would reject it. */
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, &ctx, NID_subject_alt_name, buf_cstr(&san)) < 0) {
		ssl_error(err, errsz, "adding certificate extensions");
		goto out;
	}
	if (X509_sign(x, pkey, EVP_sha256()) <= 0) {
		ssl_error(err, errsz, "signing the certificate");
		goto out;
	}
	kbio = BIO_new(BIO_s_mem());
	cbio = BIO_new(BIO_s_mem());
	if (kbio == NULL || cbio == NULL ||
	    !PEM_write_bio_PrivateKey(kbio, pkey, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cbio, x)) {
		ssl_error(err, errsz, "encoding the key and certificate");
		goto out;
	}
	if (path_join(path, tlsdir, "key.pem") < 0 || write_bio(kbio, path, 0600, err, errsz) < 0)
		goto out;
	if (path_join(path, tlsdir, "cert.pem") < 0 || write_bio(cbio, path, 0644, err, errsz) < 0)
		goto out;
	rc = 0;
out:
	buf_free(&san);
	if (kbio != NULL) {
		/* The key's PEM text sits in the BIO's memory: wipe it. */
		char *data = NULL;
		long n = BIO_get_mem_data(kbio, &data);
		if (n > 0 && data != NULL)
			OPENSSL_cleanse(data, (size_t)n);
		BIO_free(kbio);
	}
	BIO_free(cbio);
	BN_free(serial);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

/* ---------------------------------------------------------------- run */

/* Creates everything under dir.  Returns 0, or -1 with a message printed. */
static int create_all(const struct init_args *a, const char *dir)
{
	char path[PATH_MAX], err[PATH_MAX + 512];
	struct buf conf = BUF_INIT;
	if (build_config(a, &conf) < 0) {
		buf_free(&conf);
		cli_fail("init", "cannot build the config text");
		return -1;
	}
	int wr = path_join(path, dir, "tern.conf") < 0
			 ? -1
			 : fsutil_write_file_atomic(path, conf.data, conf.len, 0644);
	buf_free(&conf);
	if (wr < 0) {
		cli_fail("init", "%s: %s", path, strerror(errno));
		return -1;
	}
	/* Read the file back exactly as `serve` will: a config init writes
	 * must always load. */
	struct config *cfg = config_load(path, err, sizeof err);
	if (cfg == NULL) {
		cli_fail("init", "the config written does not load (a bug): %s", err);
		return -1;
	}
	struct store *s = store_open(cfg->data_dir, err, sizeof err);
	if (s == NULL) {
		cli_fail("init", "%s: %s", cfg->data_dir, err);
		config_free(&cfg);
		return -1;
	}
	int rc = 0;
	if (a->domain[0] != '\0' && store_domain_add(s, a->domain, err, sizeof err) < 0) {
		cli_fail("init", "--domain %s: %s", a->domain, err);
		rc = -1;
	} else if (a->domain[0] != '\0' && cli_dkim_make(s, "init", a->domain) != 0) {
		rc = -1;
	}
	store_close(&s);
	if (rc < 0) {
		config_free(&cfg);
		return -1;
	}

	char tlsdir[PATH_MAX];
	if (path_join(tlsdir, dir, "tls") < 0 || fsutil_mkdir_p(tlsdir, 0755) < 0) {
		cli_fail("init", "%s: %s", tlsdir, strerror(errno));
		config_free(&cfg);
		return -1;
	}
	if (make_cert(a, tlsdir, err, sizeof err) < 0) {
		cli_fail("init", "%s", err);
		config_free(&cfg);
		return -1;
	}

	if (a->as_root && a->user[0] != '\0') {
		chown_uid = a->uid;
		chown_gid = a->gid;
		if (path_join(path, tlsdir, "key.pem") < 0 ||
		    nftw(cfg->data_dir, chown_entry, 16, FTW_PHYS) != 0 ||
		    lchown(path, a->uid, a->gid) < 0) {
			cli_fail("init", "giving %s to user %s: %s", cfg->data_dir, a->user,
				 strerror(errno));
			config_free(&cfg);
			return -1;
		}
	}
	config_free(&cfg);
	return 0;
}

static void print_done(const struct init_args *a)
{
	char smtp[80];
	listen_value(a, 25, smtp, sizeof smtp);
	printf("Created %s:\n"
	       "  tern.conf       the config (hostname %s, SMTP on %s)\n",
	       a->dir, a->hostname, smtp);
	if (a->data_dir_opt != NULL)
		printf("  %s%s databases and mailboxes", a->data_dir_opt,
		       a->data_kept ? " (kept)" : "");
	else
		printf("  data/           databases and mailboxes");
	printf("%s%s\n"
	       "  tls/cert.pem    self-signed certificate for %s, valid %d days\n"
	       "  tls/key.pem     its private key (mode 0600)\n",
	       a->as_root && a->user[0] ? ", owned by " : "", a->as_root && a->user[0] ? a->user : "",
	       a->hostname, CERT_DAYS);
	if (a->domain[0] != '\0')
		printf("  domain %s added\n", a->domain);
	const char *d = a->domain[0] ? a->domain : "example.org";
	const char *t = cli_program();
	printf("\nNext steps:\n");
	if (a->domain[0] == '\0')
		printf("  %s -c %s/tern.conf domain add %s\n", t, a->dir, d);
	printf("  %s -c %s/tern.conf user add you@%s     (reads the password)\n"
	       "  %s -c %s/tern.conf domain dns %s     (the DNS records to publish)\n"
	       "  %s -c %s/tern.conf serve\n"
	       "Read %s/tern.conf to change ports, limits and the resolver.\n",
	       t, a->dir, d, t, a->dir, d, t, a->dir, a->dir);
}

static int init_run(const char *cfg_path, int argc, char **argv)
{
	(void)cfg_path; /* init makes a config; it reads none */
	const struct cli_command *cmd = &cli_init_command;
	struct init_args a;
	memset(&a, 0, sizeof a);
	const struct cli_option opts[] = {
		{"--hostname", &a.hostname_opt}, {"--domain", &a.domain_opt},
		{"--address", &a.address_opt},   {"--port-base", &a.port_base_opt},
		{"--resolver", &a.resolver_opt}, {"--user", &a.user_opt},
		{"--data-dir", &a.data_dir_opt},
	};
	char *pos[1];
	int n_pos;
	int rc = cli_parse_args(cmd, "init", argc, argv, 1, opts, sizeof opts / sizeof opts[0], pos,
				1, &n_pos);
	if (rc == CLI_HELP) {
		fputs(cmd->usage, stdout);
		return CLI_OK;
	}
	if (rc != 0)
		return rc;
	if (n_pos < 1)
		return cli_usage_error(cmd, "init", "missing DIR");
	a.dir = pos[0];
	if ((rc = check_args(cmd, &a)) != 0)
		return rc;

	struct stat st;
	/* --data-dir: new, empty, or an earlier installation's (kept). */
	bool data_created = false, data_new = false;
	if (a.data_dir_opt != NULL) {
		if (stat(a.data_dir_opt, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return cli_usage_error(cmd, "init", "--data-dir %s: exists and is not a folder",
						       a.data_dir_opt);
			int e = dir_is_empty(a.data_dir_opt);
			char db[PATH_MAX];
			if (e < 0 || path_join(db, a.data_dir_opt, "server.db") < 0)
				return cli_fail("init", "%s: %s", a.data_dir_opt, strerror(errno));
			if (e == 0 && access(db, F_OK) < 0)
				return cli_usage_error(cmd, "init",
						       "--data-dir %s: folder is not empty and holds no "
						       "server.db (give a new or empty folder, or a Tern data folder)",
						       a.data_dir_opt);
			data_new = e == 1;
			a.data_kept = e == 0;
		} else if (errno != ENOENT) {
			return cli_fail("init", "%s: %s", a.data_dir_opt, strerror(errno));
		} else {
			data_created = data_new = true;
		}
	}

	/* DIR: new, or an empty folder. */
	bool created = false;
	if (stat(a.dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return cli_usage_error(cmd, "init", "%s: exists and is not a folder", a.dir);
		int e = dir_is_empty(a.dir);
		if (e < 0)
			return cli_fail("init", "%s: %s", a.dir, strerror(errno));
		if (e == 0)
			return cli_usage_error(cmd, "init",
					       "%s: folder is not empty (give a new or empty folder)",
					       a.dir);
	} else if (errno != ENOENT) {
		return cli_fail("init", "%s: %s", a.dir, strerror(errno));
	} else {
		if (fsutil_mkdir_p(a.dir, 0755) < 0)
			return cli_fail("init", "creating %s: %s", a.dir, strerror(errno));
		created = true;
	}
	char dir[PATH_MAX];
	const char *why = NULL;
	if (realpath(a.dir, dir) == NULL)
		why = strerror(errno);
	else if (strlen(dir) > PATH_MAX - 512) /* room for data/accounts/... */
		why = "path too long";
	if (why != NULL) {
		rc = cli_fail("init", "%s: %s", a.dir, why);
		if (created)
			rmdir(a.dir);
		return rc;
	}

	if (a.as_root && a.user[0] != '\0') {
		char blocker[PATH_MAX];
		if (user_can_reach(dir, a.user, blocker, sizeof blocker) == 1) {
			struct stat bst;
			char mode[64] = "";
			if (stat(blocker, &bst) == 0)
				snprintf(mode, sizeof mode, " (mode %04o, owner uid %u)",
					 (unsigned)(bst.st_mode & 07777), (unsigned)bst.st_uid);
			fprintf(stderr,
				"tern: init: warning: user %s cannot reach %s: the folder %s%s "
				"blocks it, so `tern serve` and the admin commands, which run as "
				"%s, will fail; move DIR, open that folder to %s, or give --user\n",
				a.user, dir, blocker, mode, a.user, a.user);
		}
	}

	if (create_all(&a, dir) < 0) {
		cleanup(dir, created);
		if (data_new)
			cleanup(a.data_dir_opt, data_created);
		return CLI_FAIL;
	}
	print_done(&a);
	if (fflush(stdout) != 0)
		return cli_fail("init", "writing to stdout: %s", strerror(errno));
	return CLI_OK;
}
