/*
 * sieve-ext-date.c - the "date" and "index" extensions (RFC 5260): the
 * date test on a header field's RFC 5322 date-time, the currentdate test
 * on the time of the run, :zone / :originalzone, the date parts, and
 * :index / :last on header, address and date.
 *
 * Part of src/sieve.  A field's date-time is the whole value or the text
 * after its last ';' (as in Received:); obsolete forms (two- and
 * three-digit years, zone names, comments) are read as RFC 5322 4.3 says;
 * an impossible date (February 30th, hour 24) is no date.  Without :zone
 * or :originalzone the server's local zone applies (RFC 5260 4.1).  All
 * currentdate tests of a run see the same instant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "caldate.h"
#include "sieve-private.h"

struct dt {
	int64_t utc; /* seconds since the epoch */
	int zone;    /* the zone written, minutes east of UTC */
};

/* ---- calendar arithmetic (proleptic Gregorian) ---- */

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : d[m - 1];
}

/* ---- RFC 5322 3.3 date-time ---- */

struct scan {
	const char *s;
	size_t n, i;
};

/* Skips blanks and (nested) comments. */
static void cfws(struct scan *c)
{
	int depth = 0;
	while (c->i < c->n) {
		char ch = c->s[c->i];
		if (depth > 0 && ch == '\\' && c->i + 1 < c->n)
			c->i++;
		else if (ch == '(')
			depth++;
		else if (ch == ')' && depth > 0)
			depth--;
		else if (depth == 0 && ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
			return;
		c->i++;
	}
}

/* Up to max digits (at least min): the number, or -1. */
static int64_t digits(struct scan *c, size_t min, size_t max)
{
	size_t k = 0;
	int64_t v = 0;
	while (k < max && c->i < c->n && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
		v = v * 10 + (c->s[c->i] - '0');
		c->i++;
		k++;
	}
	return k >= min ? v : -1;
}

static size_t word(struct scan *c, char *out, size_t cap)
{
	size_t k = 0;
	while (c->i < c->n && ((c->s[c->i] >= 'a' && c->s[c->i] <= 'z') ||
			       (c->s[c->i] >= 'A' && c->s[c->i] <= 'Z'))) {
		if (k + 1 < cap)
			out[k++] = c->s[c->i];
		c->i++;
	}
	out[k] = '\0';
	return k;
}

/* The zone in minutes east of UTC: +hhmm / -hhmm, or an obsolete name
 * (RFC 5322 4.3; military letters count as -0000). */
static bool zone(struct scan *c, int *out)
{
	if (c->i < c->n && (c->s[c->i] == '+' || c->s[c->i] == '-')) {
		int sign = c->s[c->i] == '-' ? -1 : 1;
		c->i++;
		int64_t z = digits(c, 4, 4);
		if (z < 0 || z % 100 > 59)
			return false;
		*out = sign * (int)(z / 100 * 60 + z % 100);
		return true;
	}
	char w[8];
	size_t k = word(c, w, sizeof w);
	static const struct {
		const char *name;
		int hours;
	} names[] = {{"UT", 0},   {"GMT", 0},  {"EST", -5}, {"EDT", -4}, {"CST", -6},
		     {"CDT", -5}, {"MST", -7}, {"MDT", -6}, {"PST", -8}, {"PDT", -7}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcasecmp(w, names[i].name)) {
			*out = names[i].hours * 60;
			return true;
		}
	if (k == 1 && strcasecmp(w, "j") != 0) {
		*out = 0;
		return true;
	}
	return false;
}

static bool parse_datetime(const char *s, size_t n, struct dt *out)
{
	const char *semi = NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] == ';')
			semi = s + i;
	if (semi != NULL) {
		n -= (size_t)(semi + 1 - s);
		s = semi + 1;
	}
	struct scan c = {s, n, 0};
	char w[8];
	cfws(&c);
	size_t save = c.i;
	int dow = -1;                    /* 0 Sunday */
	if (word(&c, w, sizeof w) > 0) { /* day-of-week "," */
		static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
		for (int i = 0; i < 7; i++)
			if (!strcasecmp(w, wd[i]))
				dow = i;
		cfws(&c);
		if (dow < 0 || c.i >= c.n || c.s[c.i] != ',')
			return false;
		c.i++;
		cfws(&c);
	} else {
		c.i = save;
	}
	int64_t day = digits(&c, 1, 2);
	cfws(&c);
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int month = 0;
	if (word(&c, w, sizeof w) == 3)
		for (int i = 0; i < 12; i++)
			if (!strcasecmp(w, months[i]))
				month = i + 1;
	cfws(&c);
	size_t ys = c.i;
	int64_t year = digits(&c, 2, 9);
	size_t yl = c.i - ys;
	if (day < 1 || month == 0 || year < 0)
		return false;
	if (yl == 2)
		year += year < 50 ? 2000 : 1900;
	else if (yl == 3)
		year += 1900;
	cfws(&c);
	int64_t hh = digits(&c, 2, 2), mm = -1, ss = 0;
	cfws(&c);
	if (hh >= 0 && c.i < c.n && c.s[c.i] == ':') {
		c.i++;
		cfws(&c);
		mm = digits(&c, 2, 2);
		cfws(&c);
		if (c.i < c.n && c.s[c.i] == ':') {
			c.i++;
			cfws(&c);
			ss = digits(&c, 2, 2);
		}
	}
	cfws(&c);
	int z;
	if (hh < 0 || mm < 0 || ss < 0 || !zone(&c, &z))
		return false;
	cfws(&c);
	if (c.i != c.n || year > 9999 || day > month_days(year, month) || hh > 23 || mm > 59 ||
	    ss > 60)
		return false;
	int64_t days = caldate_days_from_civil(year, month, (int)day);
	/* RFC 5322 3.3: the day-of-week must be the one of the date */
	if (dow >= 0 && ((days % 7) + 11) % 7 != dow)
		return false;
	out->zone = z;
	out->utc = days * 86400 + hh * 3600 + mm * 60 + ss - (int64_t)z * 60;
	return true;
}

/* ---- zones and parts ---- */

/* "+hhmm" / "-hhmm" (RFC 5260 4.1) in minutes east of UTC. */
static bool zone_arg(const char *s, int *out)
{
	struct scan c = {s, strlen(s), 0};
	return (s[0] == '+' || s[0] == '-') && zone(&c, out) && c.i == c.n;
}

static int local_zone(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	return (int)(tm.tm_gmtoff / 60);
}

static const char *const date_parts[] = {"year",  "month",  "day",    "date", "julian",
					 "hour",  "minute", "second", "time", "iso8601",
					 "std11", "zone",   "weekday"};

static bool part_known(const char *p)
{
	for (size_t i = 0; i < sizeof date_parts / sizeof date_parts[0]; i++)
		if (!strcasecmp(p, date_parts[i]))
			return true;
	return false;
}

/* The date part of instant t seen in zone z (minutes), into out. */
static void date_part(int64_t t, int z, const char *part, char *out, size_t cap)
{
	int64_t local = t + (int64_t)z * 60;
	int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
	int64_t secs = local - days * 86400;
	int64_t y;
	int m, d;
	caldate_civil_from_days(days, &y, &m, &d);
	int hh = (int)(secs / 3600), mi = (int)(secs / 60 % 60), ss = (int)(secs % 60);
	int az = (z < 0 ? -z : z) % (100 * 60);
	char zs[16];
	snprintf(zs, sizeof zs, "%c%02d%02d", z < 0 ? '-' : '+', az / 60, az % 60);
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int weekday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
	if (!strcasecmp(part, "year"))
		snprintf(out, cap, "%04lld", (long long)y);
	else if (!strcasecmp(part, "month"))
		snprintf(out, cap, "%02d", m);
	else if (!strcasecmp(part, "day"))
		snprintf(out, cap, "%02d", d);
	else if (!strcasecmp(part, "date"))
		snprintf(out, cap, "%04lld-%02d-%02d", (long long)y, m, d);
	else if (!strcasecmp(part, "julian")) /* MJD 0 = 1858-11-17 */
		snprintf(out, cap, "%lld", (long long)(days + 40587));
	else if (!strcasecmp(part, "hour"))
		snprintf(out, cap, "%02d", hh);
	else if (!strcasecmp(part, "minute"))
		snprintf(out, cap, "%02d", mi);
	else if (!strcasecmp(part, "second"))
		snprintf(out, cap, "%02d", ss);
	else if (!strcasecmp(part, "time"))
		snprintf(out, cap, "%02d:%02d:%02d", hh, mi, ss);
	else if (!strcasecmp(part, "iso8601") && z == 0)
		snprintf(out, cap, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, hh, mi,
			 ss);
	else if (!strcasecmp(part, "iso8601"))
		snprintf(out, cap, "%04lld-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", (long long)y, m, d,
			 hh, mi, ss, z < 0 ? '-' : '+', az / 60, az % 60);
	else if (!strcasecmp(part, "std11"))
		snprintf(out, cap, "%s, %02d %s %04lld %02d:%02d:%02d %s", wd[weekday], d,
			 mon[m - 1], (long long)y, hh, mi, ss, zs);
	else if (!strcasecmp(part, "zone"))
		snprintf(out, cap, "%s", zs);
	else if (!strcasecmp(part, "weekday"))
		snprintf(out, cap, "%d", weekday);
	else
		out[0] = '\0';
}

/* Matches the date part of t against the keys; with :count, one value. */
static int match_date(struct sieve_run *r, const struct sieve_node *n, int64_t t, int z,
		      const char *part)
{
	char v[64];
	date_part(t, z, part, v, sizeof v);
	struct sieve_strlist vals = {NULL, 0};
	sieve_strlist_add(&vals, v, strlen(v));
	bool m = sieve_match_any(r, n, &vals, &n->pos[n->def->sig[1] == 's' ? 2 : 1]);
	sieve_strlist_free(&vals);
	return m;
}

/* The zone to use: :zone's, else (date only) :originalzone's, else the
 * local one; false for a :zone made invalid by a variable. */
static bool target_zone(const struct sieve_node *n, int64_t t, int original, int *z)
{
	if (n->zone.n > 0)
		return zone_arg(n->zone.s[0], z);
	*z = n->origzone ? original : local_zone(t);
	return true;
}

static int check_date(const struct sieve_node *n, struct sieve_error *err)
{
	int z;
	if (n->zone.n > 0 && strstr(n->zone.s[0], "${") == NULL && !zone_arg(n->zone.s[0], &z))
		return sieve_fail(err, n->line, n->col, "invalid :zone \"%.32s\" (+hhmm or -hhmm)",
				  n->zone.s[0]);
	const char *part = n->pos[n->def->sig[1] == 's' ? 1 : 0].s[0];
	if (strstr(part, "${") == NULL && !part_known(part))
		return sieve_fail(err, n->line, n->col, "unknown date part \"%.32s\"", part);
	return 0;
}

static int run_date(struct sieve_run *r, const struct sieve_node *n)
{
	const char *part = n->pos[1].s[0];
	struct sieve_strlist fields = {NULL, 0};
	sieve_header_values(r, n->pos[0].s[0], false, &fields);
	if (n->index > 0)
		sieve_pick_index(n, &fields);
	struct dt d;
	bool ok = fields.n > 0 && parse_datetime(fields.s[0], strlen(fields.s[0]), &d);
	sieve_strlist_free(&fields);
	int z;
	if (n->match == MATCH_COUNT) { /* RFC 5260 4: 1 for a valid date, else 0 */
		struct sieve_strlist none = {NULL, 0};
		if (!ok)
			return sieve_match_any(r, n, &none, &n->pos[2]);
	}
	if (!ok || !part_known(part) || !target_zone(n, d.utc, d.zone, &z))
		return 0;
	return match_date(r, n, d.utc, z, part);
}

static int run_currentdate(struct sieve_run *r, const struct sieve_node *n)
{
	if (r->now == 0)
		r->now = (int64_t)time(NULL);
	const char *part = n->pos[0].s[0];
	int z;
	if (!part_known(part) || !target_zone(n, r->now, 0, &z))
		return 0;
	return match_date(r, n, r->now, z, part);
}

static const struct sieve_def defs[] = {
    {"date", true, "ssl", 0, false, TAGS_MATCH | TAGS_INDEX | TAGS_ZONE | TAGS_ORIGZONE, run_date,
     check_date},
    {"currentdate", true, "sl", 0, false, TAGS_MATCH | TAGS_ZONE, run_currentdate, check_date},
};

const struct sieve_ext sieve_ext_date = {"date", defs, sizeof defs / sizeof defs[0],
					 TAGS_ZONE | TAGS_ORIGZONE, 0};
const struct sieve_ext sieve_ext_index = {"index", NULL, 0, TAGS_INDEX, 0};
