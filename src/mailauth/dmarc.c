/*
 * dmarc.c - DMARC policy records, discovery, alignment and disposition
 * (RFC 7489).  Part of src/mailauth: above src/lib, used by the SMTP
 * receiver and `tern auth-check`, which fetch the TXT records and run SPF
 * and DKIM; everything here is pure apart from the Public Suffix List,
 * which libpsl loads once (the newest of its built-in copy and Debian's
 * /usr/share/publicsuffix).
 */
#include "dmarc.h"

#include <libpsl.h>
#include <pthread.h>
#include <string.h>

#include "strutil.h"

/* ------------------------------------------------------------ tag lists */

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One "name=value" of a tag list (DKIM's syntax, RFC 6376 3.2, which RFC
 * 7489 6.3 reuses), white space around name and value trimmed. */
struct tag {
	const char *name, *value;
	size_t name_len, value_len;
	bool has_eq;
};

/* Reads the next tag from p[*pos..n).  Returns false at the end. */
static bool next_tag(const char *p, size_t n, size_t *pos, struct tag *t)
{
	size_t i = *pos;
	if (i >= n)
		return false;
	size_t end = i;
	while (end < n && p[end] != ';')
		end++;
	*pos = end < n ? end + 1 : n;
	size_t eq = i;
	while (eq < end && p[eq] != '=')
		eq++;
	size_t a = i, b = eq;
	while (a < b && is_ws(p[a]))
		a++;
	while (b > a && is_ws(p[b - 1]))
		b--;
	t->name = p + a;
	t->name_len = b - a;
	t->has_eq = eq < end;
	a = t->has_eq ? eq + 1 : end;
	b = end;
	while (a < b && is_ws(p[a]))
		a++;
	while (b > a && is_ws(p[b - 1]))
		b--;
	t->value = p + a;
	t->value_len = b - a;
	return true;
}

static bool parse_policy(const char *v, size_t n, enum dmarc_policy *out)
{
	/* ABNF literals are case-insensitive (RFC 5234 2.3). */
	if (strutil_eq_ci(v, n, "none"))
		*out = DMARC_POLICY_NONE;
	else if (strutil_eq_ci(v, n, "quarantine"))
		*out = DMARC_POLICY_QUARANTINE;
	else if (strutil_eq_ci(v, n, "reject"))
		*out = DMARC_POLICY_REJECT;
	else
		return false;
	return true;
}

static bool parse_mode(const char *v, size_t n, bool *strict)
{
	if (strutil_eq_ci(v, n, "r"))
		*strict = false;
	else if (strutil_eq_ci(v, n, "s"))
		*strict = true;
	else
		return false;
	return true;
}

static bool parse_fo(const char *v, size_t n, unsigned *out)
{
	unsigned bits = 0;
	size_t i = 0;
	for (;;) {
		while (i < n && is_ws(v[i]))
			i++;
		if (i >= n)
			return false;
		switch (v[i]) {
		case '0':
			bits |= DMARC_FO_0;
			break;
		case '1':
			bits |= DMARC_FO_1;
			break;
		case 'd':
		case 'D':
			bits |= DMARC_FO_D;
			break;
		case 's':
		case 'S':
			bits |= DMARC_FO_S;
			break;
		default:
			return false;
		}
		i++;
		while (i < n && is_ws(v[i]))
			i++;
		if (i == n)
			break;
		if (v[i] != ':')
			return false;
		i++;
	}
	*out = bits;
	return true;
}

/* One dmarc-uri: URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ].  The URI
 * part needs a scheme (RFC 3986 3.1) and a non-empty rest with no white
 * space; commas and "!" inside it must be percent-encoded, so they end it. */
static bool parse_uri(const char *v, size_t n, struct dmarc_uri *out)
{
	size_t bang = 0;
	while (bang < n && v[bang] != '!')
		bang++;
	size_t colon = 0;
	while (colon < bang && v[colon] != ':')
		colon++;
	if (colon == 0 || colon >= bang - 1 || colon == bang)
		return false;
	if (!((v[0] >= 'a' && v[0] <= 'z') || (v[0] >= 'A' && v[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < colon; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '-' || c == '.'))
			return false;
	}
	for (size_t i = colon + 1; i < bang; i++)
		if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f)
			return false;
	if (bang > DMARC_URI_MAX)
		return false;
	uint64_t limit = 0;
	if (bang < n) {
		size_t d = bang + 1, e = n;
		unsigned shift = 0;
		char u = v[e - 1];
		if (e > d && (u == 'k' || u == 'K' || u == 'm' || u == 'M' || u == 'g' ||
			      u == 'G' || u == 't' || u == 'T')) {
			shift = (u == 'k' || u == 'K')   ? 10
				: (u == 'm' || u == 'M') ? 20
				: (u == 'g' || u == 'G') ? 30
							 : 40;
			e--;
		}
		if (strutil_parse_u64(v + d, e - d, UINT64_MAX, &limit) < 0)
			return false;
		if (shift && limit > (UINT64_MAX >> shift))
			limit = UINT64_MAX;
		else
			limit <<= shift;
	}
	memcpy(out->uri, v, bang);
	out->uri[bang] = '\0';
	out->max_bytes = limit;
	return true;
}

/* A comma-separated list of dmarc-uri.  Returns whether the list holds at
 * least one valid URI (invalid ones are skipped). */
static bool parse_uri_list(const char *v, size_t n, struct dmarc_uri *list, size_t *count)
{
	bool any = false;
	size_t i = 0;
	*count = 0;
	while (i <= n) {
		size_t e = i;
		while (e < n && v[e] != ',')
			e++;
		size_t a = i, b = e;
		while (a < b && is_ws(v[a]))
			a++;
		while (b > a && is_ws(v[b - 1]))
			b--;
		struct dmarc_uri u;
		if (b > a && parse_uri(v + a, b - a, &u)) {
			any = true;
			if (*count < DMARC_MAX_URIS)
				list[(*count)++] = u;
		}
		i = e + 1;
	}
	return any;
}

enum dmarc_parse dmarc_record_parse(const char *txt, size_t n, struct dmarc_record *out)
{
	memset(out, 0, sizeof *out);
	if (n > DMARC_RECORD_MAX)
		return DMARC_PARSE_TOO_LONG;
	size_t pos = 0;
	struct tag t;
	/* v=DMARC1 first, matched exactly (6.3: %x44 %x4d %x41 %x52 %x43 %x31). */
	if (!next_tag(txt, n, &pos, &t) || !t.has_eq || t.name_len != 1 || t.name[0] != 'v' ||
	    t.value_len != 6 || memcmp(t.value, "DMARC1", 6) != 0)
		return DMARC_PARSE_NOT_DMARC;

	bool have_p = false, p_ok = false, have_sp = false, sp_ok = true, rua_ok = false;
	bool seen_adkim = false, seen_aspf = false, seen_pct = false, seen_ri = false,
	     seen_fo = false, seen_rua = false, seen_ruf = false;
	enum dmarc_policy p = DMARC_POLICY_NONE, sp = DMARC_POLICY_NONE;
	out->pct = 100;
	out->ri = 86400;
	out->fo = DMARC_FO_0;
	while (next_tag(txt, n, &pos, &t)) {
		if (t.name_len == 0 && !t.has_eq)
			continue; /* empty element, e.g. a trailing ";" */
		bool is_p = strutil_eq_ci(t.name, t.name_len, "p");
		/* 6.4's grammar puts p right after v; records that list it
		 * later are common and mean the same, so p is taken wherever
		 * it stands (a stricter reading would drop their policy). */
		if (is_p) {
			if (!have_p)
				p_ok = parse_policy(t.value, t.value_len, &p);
			have_p = true;
		} else if (strutil_eq_ci(t.name, t.name_len, "sp")) {
			if (!have_sp)
				sp_ok = parse_policy(t.value, t.value_len, &sp);
			have_sp = true;
		} else if (strutil_eq_ci(t.name, t.name_len, "adkim")) {
			if (!seen_adkim && !parse_mode(t.value, t.value_len, &out->adkim_strict))
				out->adkim_strict = false;
			seen_adkim = true;
		} else if (strutil_eq_ci(t.name, t.name_len, "aspf")) {
			if (!seen_aspf && !parse_mode(t.value, t.value_len, &out->aspf_strict))
				out->aspf_strict = false;
			seen_aspf = true;
		} else if (strutil_eq_ci(t.name, t.name_len, "pct")) {
			uint64_t v;
			if (!seen_pct && t.value_len >= 1 && t.value_len <= 3 &&
			    strutil_parse_u64(t.value, t.value_len, 100, &v) == 0)
				out->pct = (unsigned)v;
			seen_pct = true;
		} else if (strutil_eq_ci(t.name, t.name_len, "ri")) {
			uint64_t v;
			if (!seen_ri &&
			    strutil_parse_u64(t.value, t.value_len, UINT32_MAX, &v) == 0)
				out->ri = (uint32_t)v;
			seen_ri = true;
		} else if (strutil_eq_ci(t.name, t.name_len, "fo")) {
			if (!seen_fo && !parse_fo(t.value, t.value_len, &out->fo))
				out->fo = DMARC_FO_0;
			seen_fo = true;
		} else if (strutil_eq_ci(t.name, t.name_len, "rua")) {
			if (!seen_rua)
				rua_ok =
				    parse_uri_list(t.value, t.value_len, out->rua, &out->n_rua);
			seen_rua = true;
		} else if (strutil_eq_ci(t.name, t.name_len, "ruf")) {
			if (!seen_ruf)
				parse_uri_list(t.value, t.value_len, out->ruf, &out->n_ruf);
			seen_ruf = true;
		}
		/* rf= (only "afrf" exists) and unknown tags are ignored (6.3). */
	}
	if (p_ok && sp_ok) {
		out->policy_valid = true;
		out->p = p;
		out->sp = have_sp ? sp : p;
		return DMARC_PARSE_OK;
	}
	if (rua_ok) {
		/* 6.6.3 step 6.1: act as if p=none was published. */
		out->policy_valid = false;
		out->p = out->sp = DMARC_POLICY_NONE;
		return DMARC_PARSE_OK;
	}
	memset(out, 0, sizeof *out);
	return DMARC_PARSE_NO_POLICY;
}

enum dmarc_select dmarc_select(const char *const *txt, const size_t *len, size_t n,
			       struct dmarc_record *out)
{
	size_t found = 0;
	enum dmarc_parse last = DMARC_PARSE_NOT_DMARC;
	struct dmarc_record r;
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < n; i++) {
		enum dmarc_parse pr = dmarc_record_parse(txt[i], len[i], &r);
		if (pr == DMARC_PARSE_NOT_DMARC)
			continue;
		/* An over-long record that starts like DMARC still counts as
		 * one, so that it cannot hide behind another. */
		if (pr == DMARC_PARSE_TOO_LONG &&
		    !(len[i] >= 8 && memcmp(txt[i], "v=DMARC1", 8) == 0))
			continue;
		found++;
		last = pr;
		if (pr == DMARC_PARSE_OK)
			*out = r;
	}
	if (found == 0)
		return DMARC_SELECT_EMPTY;
	if (found > 1 || last != DMARC_PARSE_OK) {
		memset(out, 0, sizeof *out);
		return DMARC_SELECT_STOP;
	}
	return DMARC_SELECT_FOUND;
}

/* ------------------------------------------------ Organizational Domain */

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl_ctx;

static void psl_load(void)
{
	/* psl_latest(NULL) takes the newer of libpsl's built-in list and the
	 * distribution's file; the built-in one serves if the file is gone. */
	psl_ctx = psl_latest(NULL);
	if (psl_ctx == NULL)
		psl_ctx = psl_builtin();
}

/* Lower-cased copy of domain without a trailing dot.  Returns the length
 * or -1. */
static int norm_domain(const char *domain, char *out, size_t outsz)
{
	size_t n = domain ? strlen(domain) : 0;
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n > DMARC_DOMAIN_MAX || n >= outsz)
		return -1;
	memcpy(out, domain, n);
	out[n] = '\0';
	strutil_lower(out, n);
	return (int)n;
}

/* The Organizational Domain of a normalized name; *is_suffix tells when
 * the name is itself a public suffix (or the list does not know it). */
static const char *org_of(const char *name, bool *is_suffix)
{
	pthread_once(&psl_once, psl_load);
	const char *reg = psl_ctx ? psl_registrable_domain(psl_ctx, name) : NULL;
	*is_suffix = reg == NULL;
	return reg ? reg : name;
}

int dmarc_org_domain(const char *domain, char *out, size_t outsz)
{
	char name[DMARC_DOMAIN_MAX + 1];
	if (norm_domain(domain, name, sizeof name) < 0)
		return -1;
	bool suffix;
	const char *org = org_of(name, &suffix);
	size_t n = strlen(org);
	if (n >= outsz)
		return -1;
	memcpy(out, org, n + 1);
	return (int)n;
}

bool dmarc_aligned(const char *from_domain, const char *auth_domain, bool strict)
{
	char a[DMARC_DOMAIN_MAX + 1], b[DMARC_DOMAIN_MAX + 1];
	if (norm_domain(from_domain, a, sizeof a) < 0 || norm_domain(auth_domain, b, sizeof b) < 0)
		return false;
	if (strict)
		return strcmp(a, b) == 0;
	bool sa, sb;
	const char *oa = org_of(a, &sa), *ob = org_of(b, &sb);
	/* A signature or envelope domain that is a public suffix ("d=com")
	 * never aligns (3.1.1), nor does a From domain that is one. */
	return !sa && !sb && strcmp(oa, ob) == 0;
}

/* ------------------------------------------------------------ evaluation */

void dmarc_evaluate(const struct dmarc_input *in, struct dmarc_verdict *out)
{
	memset(out, 0, sizeof *out);
	if (in->record_temperror) {
		out->result = DMARC_RESULT_TEMPERROR;
		return;
	}
	if (in->record == NULL || in->from_domain == NULL)
		return; /* DMARC_RESULT_NONE */
	const struct dmarc_record *r = in->record;

	/* p covers the domain queried; sp the subdomains, which only matters
	 * when the record came from the Organizational Domain (6.3 "sp"). */
	char from[DMARC_DOMAIN_MAX + 1], at[DMARC_DOMAIN_MAX + 1];
	bool subdomain = norm_domain(in->from_domain, from, sizeof from) >= 0 &&
			 norm_domain(in->record_domain, at, sizeof at) >= 0 &&
			 strcmp(from, at) != 0;
	out->policy = subdomain ? r->sp : r->p;

	bool temp = in->spf == DMARC_AUTH_TEMPERROR;
	if (in->spf == DMARC_AUTH_PASS && in->spf_domain &&
	    dmarc_aligned(in->from_domain, in->spf_domain, r->aspf_strict))
		out->spf_aligned = true;
	for (size_t i = 0; i < in->n_dkim; i++) {
		const struct dmarc_dkim_input *d = &in->dkim[i];
		if (d->result == DMARC_AUTH_TEMPERROR)
			temp = true;
		if (d->result == DMARC_AUTH_PASS && d->domain &&
		    dmarc_aligned(in->from_domain, d->domain, r->adkim_strict))
			out->dkim_aligned = true;
	}
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_RESULT_PASS;
		return;
	}
	if (temp) {
		/* 6.6.2: a temporary error means no permanent conclusion. */
		out->result = DMARC_RESULT_TEMPERROR;
		return;
	}
	out->result = DMARC_RESULT_FAIL;
	/* 6.6.4: outside the pct sample, reject becomes quarantine and
	 * quarantine becomes normal handling. */
	enum dmarc_policy d = out->policy;
	if (in->sample >= r->pct && d != DMARC_POLICY_NONE)
		d = d == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
	out->disposition = d;
}

const char *dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_PASS:
		return "pass";
	case DMARC_RESULT_FAIL:
		return "fail";
	case DMARC_RESULT_TEMPERROR:
		return "temperror";
	case DMARC_RESULT_PERMERROR:
		return "permerror";
	case DMARC_RESULT_NONE:
		break;
	}
	return "none";
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_QUARANTINE:
		return "quarantine";
	case DMARC_POLICY_REJECT:
		return "reject";
	case DMARC_POLICY_NONE:
		break;
	}
	return "none";
}
