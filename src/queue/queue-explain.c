/*
 * queue-explain.c - plain-language explanations of delivery failures (see
 * queue-explain.h).  Layer src/queue, pure.
 *
 * Order matters: the most specific signal wins.  Specific words in the
 * text (SPF, DMARC, greylisting, quota) come first because servers often
 * use generic codes (550 5.7.1) for all of them; then the enhanced status
 * code (RFC 3463, RFC 7505 for Null MX), then the class of the reply code.
 */
#include "queue-explain.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "strutil.h"

/* Case-insensitive substring search in a NUL-terminated text. */
static bool has(const char *text, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = text; *p; p++)
		if (strutil_prefix_ci(p, strlen(p), word))
			return true;
	(void)n;
	return false;
}

static bool status_is(const char *status, const char *want)
{
	return status != NULL && !strcmp(status, want);
}

/* "X.Y.Z" matches "*.Y.Z" patterns given as ".Y.Z". */
static bool status_tail(const char *status, const char *tail)
{
	return status != NULL && status[0] != '\0' && !strcmp(status + 1, tail);
}

/* Our DNS reasons name the resolver (src/dns): "the DNS resolver R says
 * the domain D does not exist (NXDOMAIN)", "the DNS resolver R failed to
 * look up ...", "the DNS resolver R did not answer in time ...".  Finds R
 * (its length in *n) and the rest of the text after it (*after); NULL for
 * a text of another kind. */
static const char *resolver_in(const char *text, size_t *n, const char **after)
{
	static const char lead[] = "the DNS resolver ";
	static const char *const ends[] = {" says the domain ", " failed to look up ",
					   " did not answer in time "};
	const char *r = strstr(text, lead);
	if (r == NULL)
		return NULL;
	r += sizeof lead - 1;
	for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
		const char *e = strstr(r, ends[i]);
		if (e != NULL && e > r) {
			*n = (size_t)(e - r) > 200 ? 200 : (size_t)(e - r);
			*after = e;
			return r;
		}
	}
	return NULL;
}

/* The NXDOMAIN sentence naming the resolver and the domain, into buf;
 * false if text is not our NXDOMAIN reason. */
static bool nxdomain_from(const char *text, char *buf, size_t bufsz)
{
	static const char says[] = " says the domain ", tail[] = " does not exist";
	size_t rn;
	const char *after, *r = resolver_in(text, &rn, &after);
	if (r == NULL || bufsz == 0 || strncmp(after, says, sizeof says - 1) != 0)
		return false;
	const char *d = after + sizeof says - 1;
	const char *e = strstr(d, tail);
	if (e == NULL || e == d)
		return false;
	int n = snprintf(buf, bufsz,
			 "The DNS resolver %.*s says that the recipient's domain %.*s does not "
			 "exist in DNS. Check the part of the address after the @ for typing "
			 "mistakes. If it is spelled correctly, that resolver is probably "
			 "giving wrong answers: the administrator of this mail server should "
			 "check it.",
			 (int)rn, r, (int)(e - d > 255 ? 255 : e - d), d);
	return n > 0;
}

/* The sentence for a temporary DNS failure naming the resolver, into buf;
 * false if text names none. */
static bool dns_temp_from(const char *text, char *buf, size_t bufsz)
{
	size_t rn;
	const char *after, *r = resolver_in(text, &rn, &after);
	if (r == NULL || bufsz == 0)
		return false;
	int n = snprintf(buf, bufsz,
			 "The DNS resolver %.*s could not look up the mail servers of the "
			 "recipient's domain right now. This is usually temporary; delivery is "
			 "retried automatically. If it keeps happening, the administrator of "
			 "this mail server should check that resolver.",
			 (int)rn, r);
	return n > 0;
}

const char *queue_explain(int code, const char *status, const char *text, char *buf, size_t bufsz)
{
	if (text == NULL)
		text = "";
	if (status == NULL)
		status = "";
	bool perm = code >= 500 || (code == 0 && status[0] == '5');

	/* Our own reasons (no SMTP reply). */
	if (status_is(status, "5.1.10") || has(text, "null mx"))
		return "The recipient's domain has declared that it accepts no email at all "
		       "(a \"Null MX\" record). The address cannot receive mail.";
	if (code == 0 && has(text, "nxdomain") && nxdomain_from(text, buf, bufsz))
		return buf;
	if (code == 0 && (has(text, "nxdomain") || has(text, "does not exist")))
		return "The recipient's domain does not exist in DNS. Check the part of the "
		       "address after the @ for typing mistakes.";
	if (code == 0 && has(text, "no address"))
		return "The recipient's domain names mail servers that cannot be found in DNS; "
		       "the domain's DNS is probably misconfigured.";
	if (code == 0 && has(text, "dns") && dns_temp_from(text, buf, bufsz))
		return buf;
	if (code == 0 && has(text, "dns"))
		return "The mail servers of the recipient's domain could not be looked up in DNS "
		       "right now. This is usually temporary; delivery is retried automatically.";
	if (status_tail(status, ".4.7") || has(text, "expired") || has(text, "gave up"))
		return "The message could not be delivered within the time allowed, so the server "
		       "stopped trying.";
	if (has(text, "relay password") || has(text, "refused our credentials") ||
	    has(text, "relay_password_file") || has(text, "offer auth plain"))
		return "The relay host this server sends all mail through (outbound.relay) did "
		       "not accept its login, or could not be sent the password safely. The "
		       "administrator must check the relay settings; the message waits and is "
		       "retried.";
	if (has(text, "tls") && (has(text, "fail") || has(text, "error") || has(text, "handshake")))
		return "A secure (TLS) connection to the receiving server could not be "
		       "established.";
	if (code == 0 && has(text, "refused"))
		return "The receiving mail server refused the connection: it is probably down or "
		       "not accepting mail right now. Delivery is retried automatically.";
	if (has(text, "timeout") || has(text, "timed out"))
		return "The receiving mail server stopped responding (timeout). Delivery is "
		       "retried "
		       "automatically.";
	if (code == 0 && (has(text, "unreachable") || has(text, "connect")))
		return "The receiving mail server could not be reached over the network. Delivery "
		       "is retried automatically.";
	if (status_tail(status, ".6.7") || has(text, "smtputf8"))
		return "The address contains non-ASCII characters, and the receiving server does "
		       "not support internationalized email (SMTPUTF8).";
	if (status_tail(status, ".6.3") || has(text, "8bitmime"))
		return "The message contains 8-bit characters, and the receiving server accepts "
		       "only 7-bit messages.";

	/* What the remote said. */
	if (has(text, "dmarc"))
		return "The receiving server rejected the message because it failed the sender "
		       "domain's DMARC policy (the message does not prove it comes from the "
		       "domain in its From: address).";
	if (has(text, "spf"))
		return "The receiving server rejected the message because the sender domain's SPF "
		       "record does not allow this server to send mail for it.";
	if (has(text, "dkim"))
		return "The receiving server rejected the message because its DKIM signature was "
		       "missing or invalid.";
	if (has(text, "greylist") || has(text, "graylist") || has(text, "greylisted") ||
	    has(text, "grey-list"))
		return "The receiving server uses greylisting: it turns away the first attempt "
		       "from "
		       "an unknown sender on purpose. Delivery is retried automatically; no action "
		       "is needed.";
	if (status_tail(status, ".2.2") || has(text, "quota") || has(text, "mailbox full") ||
	    has(text, "mailbox is full") || has(text, "insufficient storage"))
		return "The recipient's mailbox is full. The recipient must make room before mail "
		       "can be delivered.";
	if (status_tail(status, ".3.4") || status_tail(status, ".2.3") || has(text, "too large") ||
	    has(text, "too big") || has(text, "size exceeds"))
		return "The message is larger than the receiving server accepts. Send a smaller "
		       "message (for example, a link instead of a large attachment).";
	if (has(text, "spam") || has(text, "blocklist") || has(text, "blacklist") ||
	    has(text, "reputation") || has(text, "junk"))
		return "The receiving server rejected the message as spam.";
	if (status_tail(status, ".1.1") || status_tail(status, ".1.0") ||
	    status_tail(status, ".1.6") || has(text, "user unknown") || has(text, "unknown user") ||
	    has(text, "no such user") || has(text, "does not exist") ||
	    has(text, "recipient address rejected") || has(text, "mailbox unavailable") ||
	    has(text, "no mailbox") || has(text, "invalid recipient"))
		return "The address does not exist at the receiving domain. Check the spelling of "
		       "the address.";
	if (status_tail(status, ".2.1") || has(text, "disabled") || has(text, "inactive"))
		return "The recipient's mailbox is disabled and does not accept mail.";
	if (status_tail(status, ".7.1") || has(text, "policy") || has(text, "relay") ||
	    has(text, "denied") || has(text, "not permitted") || has(text, "blocked"))
		return "The receiving server rejected the message because of its policy (for "
		       "example, it does not accept mail from this server or for this address).";
	if (status_tail(status, ".1.2") || has(text, "no mx"))
		return "The recipient's domain does not accept mail (it has no mail server).";
	if (code == 421 || status_tail(status, ".3.2"))
		return "The receiving server is busy or shutting down. Delivery is retried "
		       "automatically.";
	if (perm)
		return "The receiving server refused the message permanently.";
	if (code >= 400 || status[0] == '4')
		return "The receiving server reported a temporary problem. Delivery is retried "
		       "automatically.";
	return "The message was not delivered.";
}

const char *queue_explain_reply(const char *reply, const char *status, char *buf, size_t bufsz)
{
	int code = 0;
	const char *text = reply ? reply : "";
	if (isdigit((unsigned char)text[0]) && isdigit((unsigned char)text[1]) &&
	    isdigit((unsigned char)text[2]) && (text[3] == ' ' || text[3] == '\0')) {
		code = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
		text += text[3] ? 4 : 3;
	}
	return queue_explain(code, status, text, buf, bufsz);
}
