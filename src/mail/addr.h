/*
 * addr.h - RFC 5321 address syntax (Path, Mailbox) as used in SMTP
 * MAIL FROM / RCPT TO, with the RFC 6531 (SMTPUTF8) extension.
 *
 * Mailbox    = Local-part "@" ( Domain / address-literal )
 * Local-part = Dot-string / Quoted-string
 * Domain     = sub-domain *("." sub-domain)
 * address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General ) "]"
 *
 * Limits (RFC 5321 4.5.3.1): local part <= 64 octets, domain <= 255,
 * path <= 256 (all counted as sent on the wire), and an ASCII domain label
 * <= 63 (RFC 1035).  Pure functions, no allocation: safe for fuzzing.
 */
#ifndef TERN_ADDR_H
#define TERN_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256

enum addr_error {
	ADDR_OK = 0,
	ADDR_ERR_SYNTAX,     /* not a valid mailbox */
	ADDR_ERR_TOO_LONG,   /* a length limit was passed */
	ADDR_ERR_UTF8,       /* non-ASCII without SMTPUTF8, or invalid UTF-8 */
};

struct addr {
	/* The local part as it appears on the wire (quotes kept for a
	 * Quoted-string) and in canonical form: quotes and backslash escapes
	 * removed where the result is a valid Dot-string, else kept quoted. */
	char local[ADDR_LOCAL_MAX + 3];
	/* Domain names are lower-cased (ASCII letters only); an address
	 * literal is kept as sent, brackets included.  Empty only when the
	 * caller filled the struct itself (SMTP's "<postmaster>"). */
	char domain[ADDR_DOMAIN_MAX + 1];
	bool domain_is_literal;
	bool has_utf8;                    /* non-ASCII in local or domain */
};

/* Parses a Mailbox (no angle brackets) from p[0..n).  utf8_ok allows
 * RFC 6531 UTF-8 in local part and domain.  Returns ADDR_OK and fills out;
 * on error out is cleared. */
enum addr_error addr_parse_mailbox(const char *p, size_t n, bool utf8_ok, struct addr *out);

/* Parses a Path "<...>" from p[0..n) and returns in *consumed how many bytes
 * it took (parameters may follow).  A source route "<@a,@b:user@d>" is
 * accepted and ignored (RFC 5321 4.1.2).  With allow_null, "<>" is accepted
 * and sets *is_null.  Returns ADDR_OK and fills out (unless null; out is
 * cleared on error and for "<>").  is_null and consumed may be NULL. */
enum addr_error addr_parse_path(const char *p, size_t n, bool utf8_ok, bool allow_null,
				struct addr *out, bool *is_null, size_t *consumed);

/* Writes "local@domain" (just "local" if the domain is empty) into buf
 * (size bufsz, NUL-terminated).  Returns the length, or -1 if it does not
 * fit (buf is then "" if bufsz > 0). */
int addr_format(const struct addr *a, char *buf, size_t bufsz);

/* The domain part of an address "local@domain" (after its last '@'), or
 * "" when it has none. */
const char *addr_domain_of(const char *address);

/* Checks that p[0..n) is valid UTF-8 (no overlongs, no surrogates). */
bool addr_utf8_valid(const char *p, size_t n);

#endif
