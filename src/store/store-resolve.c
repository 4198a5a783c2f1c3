/*
 * store-resolve.c - envelope recipient to accounts and remote addresses,
 * following the rule order documented at store_resolve in store.h.
 *
 * Alias expansion is a depth-first walk.  The addresses on the current
 * path are remembered: a target that leads back to one of them is not
 * expanded as an alias again but may still be an account, which is what
 * makes the common "alice -> alice, alice@elsewhere" (keep a copy) work,
 * while a pure cycle ends in LOOP.  Too deep (more than 10 levels) or too
 * wide (more than STORE_MAX_TARGETS targets) is LOOP for the whole
 * recipient: half an expansion is not a delivery anyone asked for.
 *
 * A local target that resolves to nobody is dropped with a warning (an
 * alias pointing at a removed account must not bounce the other targets);
 * if nothing at all is left the recipient is NO_USER, or LOOP if a cycle
 * was cut on the way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "store-private.h"
#include "strutil.h"
#include "xalloc.h"

#define MAX_DEPTH 10

struct resolve {
	struct store *s;
	const char *delim;
	struct store_targets *out;
	const char *path[MAX_DEPTH]; /* aliases being expanded, outermost first */
	size_t depth;
	bool plus[MAX_DEPTH + 1]; /* at that depth, the lookup is of the part
				   * before the delimiter (plus-addressing) */
	bool cut;   /* a cycle was cut somewhere */
	bool loop;  /* too deep or too wide: the answer is LOOP */
	bool error; /* database error: the answer is ERROR */
};

static size_t n_targets(const struct resolve *r)
{
	return r->out->n_local + r->out->n_remote;
}

/* Appends one part of a via text ("a, b"); truncates silently. */
static void via_add(char *via, const char *part, const char *arg)
{
	size_t n = strlen(via);
	if (n + 1 >= STORE_VIA_MAX)
		return;
	snprintf(via + n, STORE_VIA_MAX - n, "%s%s%s", n ? ", " : "", part, arg ? arg : "");
}

/* How the walk reached the account being added (store_targets.local_via):
 * the rules on the path, outermost first; how (NULL: none) is the rule
 * that chose it at the end (the postmaster fallbacks). */
static void make_via(const struct resolve *r, const char *how, char *via)
{
	via[0] = '\0';
	for (size_t d = 0; d <= r->depth; d++) {
		if (r->plus[d])
			via_add(via, "plus-addressing", NULL);
		if (d == r->depth)
			break;
		if (r->path[d][0] == '@')
			via_add(via, "the catch-all alias ", r->path[d]);
		else
			via_add(via, "alias ", r->path[d]);
	}
	if (how != NULL)
		via_add(via, how, NULL);
}

static int add_local(struct resolve *r, int64_t id, const char *how)
{
	struct store_targets *o = r->out;
	for (size_t i = 0; i < o->n_local; i++) {
		if (o->local[i] == id)
			return 0;
	}
	if (o->n_local == STORE_MAX_TARGETS) {
		r->loop = true;
		return -1;
	}
	make_via(r, how, o->local_via[o->n_local]);
	o->local[o->n_local++] = id;
	return 0;
}

static int add_remote(struct resolve *r, const char *addr)
{
	struct store_targets *o = r->out;
	for (size_t i = 0; i < o->n_remote; i++) {
		if (strcmp(o->remote[i], addr) == 0)
			return 0;
	}
	size_t n = strlen(addr);
	if (o->n_remote == STORE_MAX_TARGETS || n >= sizeof o->remote[0]) {
		r->loop = true;
		return -1;
	}
	memcpy(o->remote[o->n_remote++], addr, n + 1);
	return 0;
}

/* Runs a one-column id query with one text parameter: 1 found, 0 not,
 * -1 error. */
static int query_id(struct resolve *r, const char *sql, const char *param, int64_t *id)
{
	sqlite3_stmt *st = store_db_stmt(&r->s->db, sql, NULL, 0);
	if (st == NULL) {
		r->error = true;
		return -1;
	}
	if (param)
		store_db_bind_text(st, 1, param);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r->error = true;
		return -1;
	}
	return rc == SQLITE_ROW;
}

static int domain_ours(struct resolve *r, const char *domain)
{
	int64_t id;
	return query_id(r, "SELECT id FROM domains WHERE name = ?1", domain, &id);
}

static int resolve_local(struct resolve *r, const char *local, const char *domain);

/* Expands alias addr (whose targets are t[0..n)). */
static int expand(struct resolve *r, const char *addr, char (*t)[256], size_t n)
{
	if (r->depth == MAX_DEPTH) {
		r->loop = true;
		return -1;
	}
	r->path[r->depth++] = addr;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		char *at = strrchr(t[i], '@');
		if (at == NULL || at == t[i])
			continue; /* not stored by store_alias_add */
		char local[256], domain[256];
		memcpy(local, t[i], (size_t)(at - t[i]));
		local[at - t[i]] = '\0';
		memcpy(domain, at + 1, strlen(at + 1) + 1);
		strutil_lower(domain, strlen(domain));
		int ours = domain_ours(r, domain);
		if (ours < 0) {
			ret = -1;
		} else if (ours == 0) {
			ret = add_remote(r, t[i]);
		} else {
			strutil_lower(local, strlen(local));
			bool cut_before = r->cut;
			r->cut = false;
			int got = resolve_local(r, local, domain);
			if (got < 0) {
				ret = -1;
			} else if (got == 0) {
				char a_esc[128], t_esc[128];
				log_warn("action=resolve alias=%s target=%s result=dropped "
					 "reason=%s",
					 log_escape(a_esc, sizeof a_esc, addr, strlen(addr)),
					 log_escape(t_esc, sizeof t_esc, t[i], strlen(t[i])),
					 r->cut ? "alias_loop" : "no_such_user");
			}
			r->cut = r->cut || cut_before;
		}
	}
	r->depth--;
	return ret;
}

static bool on_path(const struct resolve *r, const char *addr)
{
	for (size_t i = 0; i < r->depth; i++) {
		if (strcmp(r->path[i], addr) == 0)
			return true;
	}
	return false;
}

/* Rules 2 and 3 for local@domain (local "" is the catch-all alias): the
 * number of targets added, or -1 to stop (error or LOOP). */
static int lookup(struct resolve *r, const char *local, const char *domain)
{
	char addr[256];
	size_t ln = strlen(local), dn = strlen(domain);
	if (ln + 1 + dn >= sizeof addr)
		return 0;
	memcpy(addr, local, ln);
	addr[ln] = '@';
	memcpy(addr + ln + 1, domain, dn + 1);
	size_t before = n_targets(r);

	if (on_path(r, addr)) {
		r->cut = true;
	} else {
		/* All targets are read before recursing: the recursion reuses
		 * this cached statement. */
		char(*t)[256] = xmalloc((STORE_MAX_TARGETS + 1) * sizeof *t);
		size_t n = 0;
		sqlite3_stmt *st = store_db_stmt(
		    &r->s->db, "SELECT target FROM aliases WHERE alias = ?1 ORDER BY id LIMIT ?2",
		    NULL, 0);
		int rc = SQLITE_ERROR;
		if (st) {
			store_db_bind_text(st, 1, addr);
			sqlite3_bind_int(st, 2, STORE_MAX_TARGETS + 1);
			while ((rc = sqlite3_step(st)) == SQLITE_ROW)
				store_db_column_text(st, 0, t[n++], sizeof t[0]);
			sqlite3_reset(st);
		}
		int ret = 0;
		if (rc != SQLITE_DONE) {
			r->error = true;
			ret = -1;
		} else if (n > STORE_MAX_TARGETS) {
			r->loop = true;
			ret = -1;
		} else if (n > 0) {
			ret = expand(r, addr, t, n);
		}
		free(t);
		if (ret < 0)
			return -1;
		if (n_targets(r) > before)
			return (int)(n_targets(r) - before);
	}
	if (ln == 0)
		return 0;
	int64_t id;
	int found = query_id(r, "SELECT id FROM accounts WHERE address = ?1", addr, &id);
	if (found < 0)
		return -1;
	if (found && add_local(r, id, NULL) < 0)
		return -1;
	return (int)(n_targets(r) - before);
}

void store_set_postmaster(struct store *s, const char *address, const char *hostname)
{
	snprintf(s->postmaster, sizeof s->postmaster, "%s", address ? address : "");
	snprintf(s->hostname, sizeof s->hostname, "%s", hostname ? hostname : "");
}

/* Adds the server's postmaster (store_set_postmaster) to r's targets,
 * inside r's read transaction.  Returns 1 if one was found, 0 if none, -1
 * on a database error. */
static int server_postmaster(struct resolve *r)
{
	struct store *s = r->s;
	int n = 0;
	if (!s->in_postmaster) {
		s->in_postmaster = true; /* its own rule 5 must not come back here */
		if (s->postmaster[0] != '\0') {
			const char *at = strrchr(s->postmaster, '@');
			char local[256], domain[256];
			size_t ln = at ? (size_t)(at - s->postmaster) : 0;
			if (at != NULL && ln > 0 && ln < sizeof local &&
			    store_name_domain(at + 1, domain, NULL, 0) == 0) {
				memcpy(local, s->postmaster, ln);
				local[ln] = '\0';
				strutil_lower(local, ln);
				int ours = domain_ours(r, domain);
				if (ours < 0)
					n = -1;
				else if (ours > 0)
					n = resolve_local(r, local, domain);
				else
					n = add_remote(r, s->postmaster) < 0 ? -1 : 1;
			}
		} else {
			/* postmaster@ the host name or its nearest parent of ours */
			for (const char *d = s->hostname; n == 0 && d != NULL && *d != '\0';) {
				int ours = domain_ours(r, d);
				if (ours < 0)
					n = -1;
				else if (ours > 0)
					n = resolve_local(r, "postmaster", d);
				if (ours != 0)
					break;
				d = strchr(d, '.');
				if (d != NULL)
					d++;
			}
		}
		s->in_postmaster = false;
		if (n != 0)
			return n;
	}
	/* nothing configured or found: the server's first account */
	int64_t id;
	int found = query_id(r, "SELECT id FROM accounts ORDER BY created, id LIMIT 1", NULL, &id);
	if (found <= 0)
		return found;
	return add_local(r, id, "postmaster: the server's first account") < 0 ? -1 : 1;
}

/* Rules 2 to 6 for local@domain, domain being ours: targets added, 0 for
 * nobody, -1 to stop. */
static int resolve_local(struct resolve *r, const char *local, const char *domain)
{
	int n = lookup(r, local, domain);
	if (n != 0)
		return n;
	if (r->delim && r->delim[0]) {
		/* Each character of delim is a delimiter (like Postfix's
		 * recipient_delimiter); "+" is the usual one. */
		size_t pos = strcspn(local, r->delim);
		if (pos > 0 && local[pos] != '\0') {
			char base[256];
			memcpy(base, local, pos);
			base[pos] = '\0';
			r->plus[r->depth] = true;
			n = lookup(r, base, domain);
			r->plus[r->depth] = false;
			if (n != 0)
				return n;
		}
	}
	n = lookup(r, "", domain);
	if (n != 0)
		return n;
	if (strcmp(local, "postmaster") == 0) {
		int64_t id;
		int found =
		    query_id(r,
			     "SELECT a.id FROM accounts a JOIN domains d ON d.id = a.domain_id"
			     " WHERE d.name = ?1 ORDER BY a.created, a.id LIMIT 1",
			     domain, &id);
		if (found < 0)
			return -1;
		if (found) {
			if (add_local(r, id, "postmaster: the domain's first account") < 0)
				return -1;
			return 1;
		}
		/* a domain without accounts: the server's postmaster */
		return server_postmaster(r);
	}
	return 0;
}

/* "<Postmaster>" with no domain (RFC 5321 4.5.1). */
static enum store_rcpt_result resolve_bare_postmaster(struct store *s, struct store_targets *out)
{
	struct resolve r;
	memset(&r, 0, sizeof r);
	r.s = s;
	r.out = out;
	r.delim = "";
	if (store_db_begin_read(&s->db, NULL, 0) < 0)
		return STORE_RCPT_ERROR;
	int n = server_postmaster(&r);
	store_db_rollback(&s->db);
	if (n < 0 || r.error) {
		memset(out, 0, sizeof *out);
		return STORE_RCPT_ERROR;
	}
	if (r.loop) {
		memset(out, 0, sizeof *out);
		return STORE_RCPT_LOOP;
	}
	return n == 0 ? STORE_RCPT_NO_USER : STORE_RCPT_OK;
}

enum store_rcpt_result store_resolve(struct store *s, const char *address, const char *delim,
				     struct store_targets *out)
{
	memset(out, 0, sizeof *out);
	const char *at = strrchr(address, '@');
	if (at == NULL && strutil_eq_ci(address, strlen(address), "postmaster"))
		return resolve_bare_postmaster(s, out);
	if (at == NULL || at == address)
		return STORE_RCPT_NOT_OURS;
	size_t ln = (size_t)(at - address);
	char local[256], domain[256];
	if (ln >= sizeof local || store_name_domain(at + 1, domain, NULL, 0) < 0)
		return STORE_RCPT_NOT_OURS;
	memcpy(local, address, ln);
	local[ln] = '\0';
	/* A bounce to an address we wrote when forwarding (SRS) goes back to
	 * the original sender; a forged one reaches nobody. */
	if (strncasecmp(local, "SRS0=", 5) == 0) {
		int ours = store_domain_exists(s, domain);
		if (ours < 0)
			return STORE_RCPT_ERROR;
		if (ours > 0) {
			char orig[256];
			int r = store_srs_reverse(s, local, orig, sizeof orig);
			if (r == -3)
				return STORE_RCPT_ERROR;
			if (r < 0)
				return STORE_RCPT_NO_USER;
			char *oat = strrchr(orig, '@');
			strutil_lower(oat + 1, strlen(oat + 1));
			out->n_remote = 1;
			snprintf(out->remote[0], sizeof out->remote[0], "%s", orig);
			return STORE_RCPT_OK;
		}
	}
	strutil_lower(local, ln);

	struct resolve r;
	memset(&r, 0, sizeof r);
	r.s = s;
	r.delim = delim;
	r.out = out;
	/* One read transaction: every lookup sees the same snapshot. */
	if (store_db_begin_read(&s->db, NULL, 0) < 0)
		return STORE_RCPT_ERROR;
	int ours = domain_ours(&r, domain);
	int n = ours > 0 ? resolve_local(&r, local, domain) : 0;
	store_db_rollback(&s->db);

	if (r.error) {
		memset(out, 0, sizeof *out);
		return STORE_RCPT_ERROR;
	}
	if (ours == 0)
		return STORE_RCPT_NOT_OURS;
	if (r.loop) {
		memset(out, 0, sizeof *out);
		return STORE_RCPT_LOOP;
	}
	if (n > 0)
		return STORE_RCPT_OK;
	return r.cut ? STORE_RCPT_LOOP : STORE_RCPT_NO_USER;
}
