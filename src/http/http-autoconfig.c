/*
 * http-autoconfig.c - answers that let a mail client set itself up from an
 * address alone, and the MTA-STS policy (docs/http.md):
 *
 *   GET  /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=A
 *   GET  /mail/config-v1.1.xml            on host autoconfig.DOMAIN
 *        Thunderbird's clientConfig 1.1
 *   POST /autodiscover/autodiscover.xml   Outlook's POX autodiscover
 *   GET  /apple/profile.mobileconfig?email=A
 *        an Apple configuration profile (unsigned)
 *   GET  /.well-known/mta-sts.txt         on host mta-sts.DOMAIN, HTTPS
 *        only (RFC 8461 3.2)
 *
 * Every value comes from the configuration: our host name and the ports
 * of the listeners that are on.  Answers exist only for our domains
 * (store_domain_exists); accounts are never looked up, so the answers say
 * nothing about whether an address exists.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include "config.h"
#include "http-parse.h"
#include "http-private.h"
#include "store.h"
#include "strutil.h"

#define TB_PATH "/.well-known/autoconfig/mail/config-v1.1.xml"
#define TB_HOST_PATH "/mail/config-v1.1.xml"
#define AD_PATH "/autodiscover/autodiscover.xml"
#define APPLE_PATH "/apple/profile.mobileconfig"
#define STS_PATH "/.well-known/mta-sts.txt"
#define AD_REQUEST_SCHEMA                                                                          \
	"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

/* One service a client may use: what the listeners say. */
struct service {
	unsigned port;
	bool ssl; /* implicit TLS; else STARTTLS */
};

/* Implicit TLS first (RFC 8314 3.3 prefers it), then STARTTLS. */
static bool pick(const char *implicit, const char *starttls, struct service *s)
{
	if ((s->port = http_listen_port(implicit)) != 0) {
		s->ssl = true;
		return true;
	}
	s->ssl = false;
	return (s->port = http_listen_port(starttls)) != 0;
}

struct services {
	struct service imap, pop3, smtp;
	bool has_imap, has_pop3, has_smtp;
};

static bool services_get(const struct config *cfg, struct services *s)
{
	s->has_imap = pick(cfg->imaps_listen, cfg->imap_listen, &s->imap);
	s->has_pop3 = pick(cfg->pop3s_listen, cfg->pop3_listen, &s->pop3);
	s->has_smtp = pick(cfg->submissions_listen, cfg->submission_listen, &s->smtp);
	return (s->has_imap || s->has_pop3) && s->has_smtp;
}

/* The domain of a valid address (lower-cased into dom), if it is ours. */
static bool our_domain(struct store *st, const char *addr, char *dom, size_t domsz)
{
	const char *at = strrchr(addr, '@');
	size_t n = strlen(at + 1);
	if (n >= domsz)
		return false;
	memcpy(dom, at + 1, n + 1);
	strutil_lower(dom, n);
	return store_domain_exists(st, dom) == 1;
}

static bool query_param(const char *query, const char *name, char *out, size_t outsz)
{
	if (query == NULL)
		return false;
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query, &q) < 0)
		return false;
	const char *v = evhttp_find_header(&q, name);
	bool ok = v != NULL && strlen(v) < outsz;
	if (ok)
		memcpy(out, v, strlen(v) + 1);
	evhttp_clear_headers(&q);
	return ok;
}

/* A new body buffer, or NULL after answering 500. */
static struct evbuffer *body_new(struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	if (b == NULL)
		http_reply_text(req, 500, "Internal Server Error", NULL);
	return b;
}

static void send_body(struct evhttp_request *req, struct evbuffer *b, const char *type)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_remove_header(h, "Content-Type");
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static bool is_get(struct evhttp_request *req)
{
	enum evhttp_cmd_type c = evhttp_request_get_command(req);
	return c == EVHTTP_REQ_GET || c == EVHTTP_REQ_HEAD;
}

/* -------------------------------------------------------------- Thunderbird */

static void tb_server(struct evbuffer *b, const char *tag, const char *type, const char *host,
		      const struct service *s)
{
	evbuffer_add_printf(b, "    <%s type=\"%s\">\n      <hostname>", tag, type);
	http_xml_escape(b, host);
	evbuffer_add_printf(b,
			    "</hostname>\n      <port>%u</port>\n"
			    "      <socketType>%s</socketType>\n"
			    "      <authentication>password-cleartext</authentication>\n"
			    "      <username>%%EMAILADDRESS%%</username>\n    </%s>\n",
			    s->port, s->ssl ? "SSL" : "STARTTLS", tag);
}

static void thunderbird(struct evhttp_request *req, const struct http_ctx *c)
{
	char addr[HTTP_EMAIL_MAX + 1], dom[256];
	struct services sv;
	if (query_param(c->query, "emailaddress", addr, sizeof addr)) {
		if (!http_email_valid(addr, strlen(addr)) ||
		    !our_domain(c->store, addr, dom, sizeof dom))
			goto notfound;
	} else {
		/* autoconfig.DOMAIN without an address: the host names it. */
		if (strncmp(c->host, "autoconfig.", 11) != 0)
			goto notfound;
		snprintf(dom, sizeof dom, "%s", c->host + 11);
		if (store_domain_exists(c->store, dom) != 1)
			goto notfound;
	}
	if (!services_get(c->cfg, &sv))
		goto notfound;
	struct evbuffer *b = body_new(req);
	if (b == NULL)
		return;
	evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			       "<clientConfig version=\"1.1\">\n  <emailProvider id=\"");
	http_xml_escape(b, dom);
	evbuffer_add_printf(b, "\">\n    <domain>");
	http_xml_escape(b, dom);
	evbuffer_add_printf(b, "</domain>\n    <displayName>");
	http_xml_escape(b, dom);
	evbuffer_add_printf(b, "</displayName>\n    <displayShortName>");
	http_xml_escape(b, dom);
	evbuffer_add_printf(b, "</displayShortName>\n");
	if (sv.has_imap)
		tb_server(b, "incomingServer", "imap", c->cfg->hostname, &sv.imap);
	if (sv.has_pop3)
		tb_server(b, "incomingServer", "pop3", c->cfg->hostname, &sv.pop3);
	tb_server(b, "outgoingServer", "smtp", c->cfg->hostname, &sv.smtp);
	evbuffer_add_printf(b, "  </emailProvider>\n</clientConfig>\n");
	send_body(req, b, "application/xml; charset=utf-8");
	return;
notfound:
	http_reply_text(req, 404, "Not Found", NULL);
}

/* --------------------------------------------------------------- Outlook */

static void ad_protocol(struct evbuffer *b, const char *type, const char *host,
			const struct service *s, const char *login)
{
	evbuffer_add_printf(b, "      <Protocol>\n        <Type>%s</Type>\n        <Server>", type);
	http_xml_escape(b, host);
	evbuffer_add_printf(b, "</Server>\n        <Port>%u</Port>\n", s->port);
	evbuffer_add_printf(b, "        <DomainRequired>off</DomainRequired>\n        <LoginName>");
	http_xml_escape(b, login);
	evbuffer_add_printf(b, "</LoginName>\n        <SPA>off</SPA>\n");
	if (s->ssl)
		evbuffer_add_printf(b, "        <SSL>on</SSL>\n");
	else
		evbuffer_add_printf(b, "        <Encryption>TLS</Encryption>\n");
	evbuffer_add_printf(b, "        <AuthRequired>on</AuthRequired>\n      </Protocol>\n");
}

static void autodiscover(struct evhttp_request *req, const struct http_ctx *c)
{
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
		http_reply_text(req, 405, "Method Not Allowed", NULL);
		return;
	}
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len > HTTP_XML_SCAN_MAX)
		len = HTTP_XML_SCAN_MAX;
	const char *xml = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	char addr[HTTP_EMAIL_MAX + 1], schema[256], dom[256];
	int n = xml ? http_xml_element_text(xml, len, "EMailAddress", addr, sizeof addr) : -1;
	if (n < 0 || !http_email_valid(addr, (size_t)n)) {
		http_reply_text(req, 400, "Bad Request", NULL);
		return;
	}
	/* Only Outlook's schema; mobilesync (ActiveSync) we do not speak. */
	if (http_xml_element_text(xml, len, "AcceptableResponseSchema", schema, sizeof schema) >=
		0 &&
	    strcmp(schema, AD_REQUEST_SCHEMA) != 0) {
		http_reply_text(req, 404, "Not Found", NULL);
		return;
	}
	struct services sv;
	if (!our_domain(c->store, addr, dom, sizeof dom) || !services_get(c->cfg, &sv)) {
		http_reply_text(req, 404, "Not Found", NULL);
		return;
	}
	struct evbuffer *b = body_new(req);
	if (b == NULL)
		return;
	evbuffer_add_printf(
	    b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
	       "<Autodiscover "
	       "xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n"
	       "  <Response xmlns=\"" AD_REQUEST_SCHEMA "\">\n"
	       "    <Account>\n      <AccountType>email</AccountType>\n"
	       "      <Action>settings</Action>\n");
	if (sv.has_imap)
		ad_protocol(b, "IMAP", c->cfg->hostname, &sv.imap, addr);
	if (sv.has_pop3)
		ad_protocol(b, "POP3", c->cfg->hostname, &sv.pop3, addr);
	ad_protocol(b, "SMTP", c->cfg->hostname, &sv.smtp, addr);
	evbuffer_add_printf(b, "    </Account>\n  </Response>\n</Autodiscover>\n");
	send_body(req, b, "application/xml; charset=utf-8");
}

/* ----------------------------------------------------------------- Apple */

/* A stable UUID for (what, address): SHA-256 of both, shaped as an RFC
 * 9562 version 8 UUID, so downloading the profile again updates the same
 * account on the device. */
static void profile_uuid(const char *what, const char *addr, char out[37])
{
	unsigned char h[32];
	unsigned int hl = 0;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	memset(h, 0, sizeof h);
	if (m != NULL && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1) {
		EVP_DigestUpdate(m, what, strlen(what) + 1);
		EVP_DigestUpdate(m, addr, strlen(addr));
		EVP_DigestFinal_ex(m, h, &hl);
	}
	EVP_MD_CTX_free(m);
	h[6] = (unsigned char)((h[6] & 0x0f) | 0x80);
	h[8] = (unsigned char)((h[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
		 h[13], h[14], h[15]);
}

static void plist_str(struct evbuffer *b, const char *key, const char *val)
{
	evbuffer_add_printf(b, "\t\t\t<key>%s</key>\n\t\t\t<string>", key);
	http_xml_escape(b, val);
	evbuffer_add_printf(b, "</string>\n");
}

/* The five keys of one server: WHICHMailServer{Authentication,HostName,
 * PortNumber,UseSSL,Username}. */
static void plist_server(struct evbuffer *b, const char *which, const char *host,
			 const struct service *s, const char *login)
{
	char key[64];
	snprintf(key, sizeof key, "%sMailServerAuthentication", which);
	plist_str(b, key, "EmailAuthPassword");
	snprintf(key, sizeof key, "%sMailServerHostName", which);
	plist_str(b, key, host);
	evbuffer_add_printf(b,
			    "\t\t\t<key>%sMailServerPortNumber</key>\n"
			    "\t\t\t<integer>%u</integer>\n"
			    "\t\t\t<key>%sMailServerUseSSL</key>\n\t\t\t<%s/>\n",
			    which, s->port, which, s->ssl ? "true" : "false");
	snprintf(key, sizeof key, "%sMailServerUsername", which);
	plist_str(b, key, login);
}

static void apple_profile(struct evhttp_request *req, const struct http_ctx *c)
{
	char addr[HTTP_EMAIL_MAX + 1], dom[256];
	struct services sv;
	if (!is_get(req) || !query_param(c->query, "email", addr, sizeof addr) ||
	    !http_email_valid(addr, strlen(addr)) || !our_domain(c->store, addr, dom, sizeof dom) ||
	    !services_get(c->cfg, &sv)) {
		http_reply_text(req, 404, "Not Found", NULL);
		return;
	}
	const struct service *in = sv.has_imap ? &sv.imap : &sv.pop3;
	char u_acct[37], u_prof[37];
	profile_uuid("account", addr, u_acct);
	profile_uuid("profile", addr, u_prof);
	struct evbuffer *b = body_new(req);
	if (b == NULL)
		return;
	evbuffer_add_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			       "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
			       "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
			       "<plist version=\"1.0\">\n<dict>\n"
			       "\t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n");
	plist_str(b, "EmailAccountDescription", addr);
	plist_str(b, "EmailAccountType", sv.has_imap ? "EmailTypeIMAP" : "EmailTypePOP");
	plist_str(b, "EmailAddress", addr);
	plist_server(b, "Incoming", c->cfg->hostname, in, addr);
	plist_server(b, "Outgoing", c->cfg->hostname, &sv.smtp, addr);
	evbuffer_add_printf(b, "\t\t\t<key>OutgoingPasswordSameAsIncomingPassword</key>\n"
			       "\t\t\t<true/>\n");
	plist_str(b, "PayloadDescription", "Mail account");
	plist_str(b, "PayloadDisplayName", addr);
	evbuffer_add_printf(b, "\t\t\t<key>PayloadIdentifier</key>\n\t\t\t<string>");
	http_xml_escape(b, c->cfg->hostname);
	evbuffer_add_printf(b, ".mail.%s</string>\n", u_acct);
	plist_str(b, "PayloadType", "com.apple.mail.managed");
	plist_str(b, "PayloadUUID", u_acct);
	evbuffer_add_printf(b, "\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n"
			       "\t\t</dict>\n\t</array>\n"
			       "\t<key>PayloadDisplayName</key>\n\t<string>");
	http_xml_escape(b, addr);
	evbuffer_add_printf(b, "</string>\n\t<key>PayloadIdentifier</key>\n\t<string>");
	http_xml_escape(b, c->cfg->hostname);
	evbuffer_add_printf(b,
			    ".profile.%s</string>\n"
			    "\t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n"
			    "\t<key>PayloadType</key>\n\t<string>Configuration</string>\n"
			    "\t<key>PayloadUUID</key>\n\t<string>%s</string>\n"
			    "\t<key>PayloadVersion</key>\n\t<integer>1</integer>\n"
			    "</dict>\n</plist>\n",
			    u_prof, u_prof);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition",
			  "attachment; filename=\"mail.mobileconfig\"");
	send_body(req, b, "application/x-apple-aspen-config");
}

/* -------------------------------------------------------------- MTA-STS */

static void mta_sts(struct evhttp_request *req, const struct http_ctx *c)
{
	/* RFC 8461 3.3: the policy is fetched over HTTPS from mta-sts.DOMAIN. */
	if (!c->https || !is_get(req) || strncmp(c->host, "mta-sts.", 8) != 0 ||
	    store_domain_exists(c->store, c->host + 8) != 1) {
		http_reply_text(req, 404, "Not Found", NULL);
		return;
	}
	struct evbuffer *b = body_new(req);
	if (b == NULL)
		return;
	/* Our domains' MX is this host (the record `tern init` suggests).
	 * The same bytes as mtasts_policy_format (src/queue/mta-sts.c), whose
	 * hash is the id `tern domain dns` prints. */
	evbuffer_add_printf(b, "version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: %" PRIu64 "\r\n",
			    c->cfg->mta_sts_mode, c->cfg->hostname, c->cfg->mta_sts_max_age);
	send_body(req, b, "text/plain");
}

/* --------------------------------------------------------------- routing */

bool http_autoconfig_plain_path(const char *host, const char *path)
{
	return !strcmp(path, TB_PATH) ||
	       (!strcmp(path, TB_HOST_PATH) && !strncmp(host, "autoconfig.", 11));
}

int http_autoconfig_handle(struct evhttp_request *req, const struct http_ctx *c)
{
	if (!strcmp(c->path, TB_PATH) ||
	    (!strcmp(c->path, TB_HOST_PATH) && !strncmp(c->host, "autoconfig.", 11))) {
		if (!is_get(req)) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  "GET, HEAD");
			http_reply_text(req, 405, "Method Not Allowed", NULL);
		} else
			thunderbird(req, c);
		return 1;
	}
	if (!strcasecmp(c->path, AD_PATH)) {
		autodiscover(req, c);
		return 1;
	}
	if (!strcmp(c->path, APPLE_PATH)) {
		apple_profile(req, c);
		return 1;
	}
	if (!strcmp(c->path, STS_PATH)) {
		mta_sts(req, c);
		return 1;
	}
	return 0;
}
