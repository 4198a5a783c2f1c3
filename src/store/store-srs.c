/*
 * store-srs.c - the Sender Rewriting Scheme for mail we forward: the
 * envelope sender of a message an alias of ours passes on to another
 * server becomes an address in our domain,
 *
 *     SRS0=HHHH=TT=example.org=alice@our.domain
 *
 * so that SPF at the next hop checks our domain (which sent it) instead of
 * failing for example.org; a bounce to that address comes back here and
 * goes on to alice@example.org.  HHHH is the first four base32 characters
 * of HMAC-SHA256(key, "TT=example.org=alice") and TT the day (base32, two
 * characters, modulo 1024), so nobody can make us relay to an address of
 * their choice (forged or expired addresses are refused, as the SRS
 * papers of Shevek and Wong describe).  The key is 32 random bytes in
 * DATA/srs.key (0600), made on first use.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fsutil.h"
#include "store-private.h"
#include "strutil.h"

#define SRS_KEY_LEN 32
#define SRS_DAY 86400
#define SRS_MAX_AGE_DAYS 21 /* a bounce may come this long after forwarding */

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* HHHH of "TT=domain=local". */
static void srs_hash(const unsigned char *key, size_t keylen, const char *tt, const char *domain,
		     const char *local, char out[5])
{
	char data[600];
	int n = snprintf(data, sizeof data, "%s=%s=%s", tt, domain, local);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	/* Domains and (for hashing) local parts compare case-insensitively:
	 * some servers change the case of addresses they pass on. */
	strutil_lower(data, (size_t)n);
	HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, (size_t)n, md, &mdlen);
	for (int i = 0; i < 4; i++)
		out[i] = b32[md[i] & 31];
	out[4] = '\0';
}

static void srs_day(time_t now, char out[3])
{
	unsigned d = (unsigned)((uint64_t)now / SRS_DAY) % 1024;
	out[0] = b32[(d >> 5) & 31];
	out[1] = b32[d & 31];
	out[2] = '\0';
}

int store_srs_encode(const unsigned char *key, size_t keylen, const char *sender,
		     const char *domain, time_t now, char *out, size_t outsz)
{
	const char *at = strrchr(sender, '@');
	if (at == NULL || at == sender || at[1] == '\0' || strlen(sender) > 254)
		return -1;
	char local[256], sdom[256];
	size_t ln = (size_t)(at - sender);
	if (ln >= sizeof local || strlen(at + 1) >= sizeof sdom)
		return -1;
	memcpy(local, sender, ln);
	local[ln] = '\0';
	snprintf(sdom, sizeof sdom, "%s", at + 1);
	strutil_lower(sdom, strlen(sdom));
	char tt[3], hh[5];
	srs_day(now, tt);
	srs_hash(key, keylen, tt, sdom, local, hh);
	int n = snprintf(out, outsz, "SRS0=%s=%s=%s=%s@%s", hh, tt, sdom, local, domain);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int store_srs_decode(const unsigned char *key, size_t keylen, const char *local, time_t now,
		     char *out, size_t outsz)
{
	if (strncasecmp(local, "SRS0=", 5) != 0)
		return -1;
	const char *p = local + 5;
	/* HHHH=TT=domain=local; the original local part may hold '='. */
	const char *e1 = strchr(p, '=');
	const char *e2 = e1 ? strchr(e1 + 1, '=') : NULL;
	const char *e3 = e2 ? strchr(e2 + 1, '=') : NULL;
	if (e1 == NULL || e2 == NULL || e3 == NULL || e1 - p != 4 || e2 - e1 - 1 != 2 ||
	    e3 == e2 + 1 || e3[1] == '\0')
		return -2;
	char hh[5], tt[3], sdom[256], slocal[256];
	memcpy(hh, p, 4);
	hh[4] = '\0';
	memcpy(tt, e1 + 1, 2);
	tt[2] = '\0';
	size_t dl = (size_t)(e3 - e2 - 1);
	if (dl >= sizeof sdom || strlen(e3 + 1) >= sizeof slocal)
		return -2;
	memcpy(sdom, e2 + 1, dl);
	sdom[dl] = '\0';
	snprintf(slocal, sizeof slocal, "%s", e3 + 1);
	strutil_lower(hh, 4);
	strutil_lower(tt, 2);
	char want[5];
	srs_hash(key, keylen, tt, sdom, slocal, want);
	if (memcmp(hh, want, 4) != 0)
		return -2;
	/* The day, within SRS_MAX_AGE_DAYS (modulo 1024 days). */
	const char *c0 = strchr(b32, tt[0]), *c1 = strchr(b32, tt[1]);
	if (c0 == NULL || c1 == NULL)
		return -2;
	unsigned then = (unsigned)((c0 - b32) << 5 | (c1 - b32));
	unsigned today = (unsigned)((uint64_t)now / SRS_DAY) % 1024;
	unsigned age = (today + 1024 - then) % 1024;
	if (age > SRS_MAX_AGE_DAYS)
		return -2;
	int n = snprintf(out, outsz, "%s@%s", slocal, sdom);
	return n < 0 || (size_t)n >= outsz ? -2 : 0;
}

/* The key, read (or made) once per process. */
static int srs_key(struct store *s, unsigned char key[SRS_KEY_LEN])
{
	if (s->srs_key_ok) {
		memcpy(key, s->srs_key, SRS_KEY_LEN);
		return 0;
	}
	char path[PATH_MAX];
	if (store_path(path, sizeof path, s->dir, "srs.key") < 0)
		return -1;
	size_t len = 0;
	char *data = fsutil_read_file(path, 4096, &len);
	if (data == NULL && errno == ENOENT) {
		/* Made under a temporary name and linked: of two processes
		 * making it at once, one link wins and both read that one. */
		unsigned char fresh[SRS_KEY_LEN];
		char tmp[PATH_MAX];
		if (fsutil_random(fresh, sizeof fresh) < 0 ||
		    snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid()) >= (int)sizeof tmp ||
		    fsutil_write_file_atomic(tmp, fresh, sizeof fresh, 0600) < 0)
			return -1;
		if (link(tmp, path) == 0) {
			char dir[PATH_MAX];
			snprintf(dir, sizeof dir, "%s", s->dir);
			(void)fsutil_fsync_dir(dir);
		}
		unlink(tmp);
		explicit_bzero(fresh, sizeof fresh);
		data = fsutil_read_file(path, 4096, &len);
	}
	if (data == NULL || len != SRS_KEY_LEN) {
		free(data);
		return -1;
	}
	memcpy(s->srs_key, data, SRS_KEY_LEN);
	explicit_bzero(data, len);
	free(data);
	s->srs_key_ok = true;
	memcpy(key, s->srs_key, SRS_KEY_LEN);
	return 0;
}

int store_srs_forward(struct store *s, const char *sender, const char *domain, char *out,
		      size_t outsz)
{
	unsigned char key[SRS_KEY_LEN];
	if (srs_key(s, key) < 0)
		return -1;
	int r = store_srs_encode(key, sizeof key, sender, domain, time(NULL), out, outsz);
	explicit_bzero(key, sizeof key);
	return r;
}

int store_srs_reverse(struct store *s, const char *local, char *out, size_t outsz)
{
	if (strncasecmp(local, "SRS0=", 5) != 0)
		return -1;
	unsigned char key[SRS_KEY_LEN];
	if (srs_key(s, key) < 0)
		return -3;
	int r = store_srs_decode(key, sizeof key, local, time(NULL), out, outsz);
	explicit_bzero(key, sizeof key);
	return r;
}
