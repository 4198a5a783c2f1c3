/*
 * test-sieve-run.c - unit tests for the Sieve parser (errors with
 * positions, require, argument checks, limits) and the interpreter (each
 * command, test and extension; implicit keep and cancel rules; runtime
 * limits leading to the implicit keep).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sieve.h"
#include "test.h"

static const char msg[] = "From: Alice <alice@example.org>\r\n"
			  "To: bob+tag@example.com, \"X, Y\" <xy@Example.NET>\r\n"
			  "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and more\r\n"
			  "\r\n"
			  "body\r\n";

/* Compiles s; returns "OK" or "LINE:COL: message". */
static const char *check(const char *s)
{
	static char out[300];
	struct sieve_script *sc;
	struct sieve_error e;
	if (sieve_compile(s, strlen(s), NULL, &sc, &e) == 0) {
		sieve_script_free(&sc);
		CHECK(sc == NULL);
		return "OK";
	}
	snprintf(out, sizeof out, "%d:%d: %s", e.line, e.col, e.msg);
	return out;
}

static bool box_exists(void *ctx, const char *name)
{
	return !strcmp(name, "Work");
}

/* The scripts include finds for run_on: "p:NAME" personal, "g:NAME"
 * global, then the source; "p:err" fails. */
static const char *inc_scripts[8][2];

static int inc_get(void *ctx, bool global, const char *name, char **src, size_t *len)
{
	char key[200];
	snprintf(key, sizeof key, "%s:%s", global ? "g" : "p", name);
	if (!strcmp(key, "p:err"))
		return -1;
	for (size_t i = 0; i < 8 && inc_scripts[i][0] != NULL; i++)
		if (!strcmp(inc_scripts[i][0], key)) {
			*src = strdup(inc_scripts[i][1]);
			*len = strlen(*src);
			return 1;
		}
	return 0;
}

/* The environment items of run_on (RFC 5183). */
static const char *const test_env[] = {"host", "mx.example.com", "location", "MDA",
				       "remote-host", "", NULL};

/* The duplicate tracking list of run_on: "handle/id" entries that are
 * seen; "err/..." fails. */
static const char *dup_list[4];

static int dup_seen(void *ctx, const char *handle, const char *id)
{
	char key[512];
	snprintf(key, sizeof key, "%s/%s", handle, id);
	for (size_t i = 0; i < 4 && dup_list[i] != NULL; i++)
		if (!strcmp(dup_list[i], key))
			return !strncmp(key, "err/", 4) ? -1 : 1;
	return 0;
}

/* Runs s on message m with limits lim (NULL: the defaults); returns the
 * actions as "a|b|..." ("E:" first on error), then the duplicate entries
 * as "dup HANDLE/ID Ns [last] [seen]|". */
static int64_t run_now; /* currentdate's instant for run_on; 0: the clock */
/* spamtest, spamtest :percent and virustest results for run_on (RFC 5235);
 * NULL: not tested */
static const char *spam_in[3];

static const char *run_on(const char *s, const char *m, const struct sieve_limits *lim)
{
	static char out[1024];
	struct sieve_script *sc;
	struct sieve_error e;
	if (sieve_compile(s, strlen(s), lim, &sc, &e) < 0) {
		snprintf(out, sizeof out, "compile %d:%d: %s", e.line, e.col, e.msg);
		return out;
	}
	struct sieve_input in = {
	    "alice@example.org", "bob+tag@example.com", m, strlen(m), box_exists, NULL, dup_seen,
	    inc_get, test_env, spam_in[0], spam_in[1], spam_in[2]};
	struct sieve_result r;
	struct buf b = BUF_INIT;
	if (sieve_run_at(sc, &in, run_now, &r) < 0)
		buf_printf(&b, "E:%s|", r.error);
	static const char *const names[] = {"keep",   "fileinto", "redirect", "discard",
					    "reject", "ereject",  "vacation"};
	for (size_t i = 0; i < r.n_actions; i++) {
		const struct sieve_action *a = &r.actions[i];
		buf_puts(&b, names[a->type]);
		if (a->implicit)
			buf_puts(&b, "*");
		if (a->arg)
			buf_printf(&b, " %s", a->arg);
		if (a->copy)
			buf_puts(&b, " :copy");
		if (a->create)
			buf_puts(&b, " :create");
		for (size_t k = 0; k < a->n_flags; k++)
			buf_printf(&b, " +%s", a->flags[k]);
		if (a->type == SIEVE_ACT_VACATION) {
			buf_printf(&b, " %llus %s", (unsigned long long)a->seconds, a->handle);
			if (a->subject)
				buf_printf(&b, " s=%s", a->subject);
			if (a->from)
				buf_printf(&b, " f=%s", a->from);
			for (size_t k = 0; k < a->n_addresses; k++)
				buf_printf(&b, " a=%s", a->addresses[k]);
			if (a->mime)
				buf_puts(&b, " mime");
		}
		if (a->header != NULL) {
			/* the edited header, line ends shown as '/' */
			buf_puts(&b, " {");
			for (size_t k = 0; k < a->header_len; k++)
				if (a->header[k] == '\n')
					buf_putc(&b, '/');
				else if (a->header[k] != '\r')
					buf_putc(&b, a->header[k]);
			buf_puts(&b, "}");
		}
		buf_puts(&b, "|");
	}
	for (size_t i = 0; i < r.n_dups; i++)
		buf_printf(&b, "dup %s/%s %llus%s%s|", r.dups[i].handle, r.dups[i].id,
			   (unsigned long long)r.dups[i].seconds, r.dups[i].last ? " last" : "",
			   r.dups[i].seen ? " seen" : "");
	snprintf(out, sizeof out, "%s", buf_cstr(&b));
	buf_free(&b);
	sieve_result_free(&r);
	sieve_script_free(&sc);
	return out;
}

/* Runs s on msg. */
static const char *run(const char *s)
{
	return run_on(s, msg, NULL);
}

TEST(sieve_parse_errors)
{
	CHECK_STR(check("keep;"), "OK");
	CHECK_STR(check("keep"), "1:5: expected ';', found end of script");
	CHECK_STR(check("\n  frob;"), "2:3: unknown command 'frob'");
	CHECK_STR(check("fileinto \"x\";"),
		  "1:1: command 'fileinto' needs its extension in require");
	CHECK_STR(check("require \"nope\";"), "1:1: unsupported extension \"nope\"");
	CHECK_STR(check("keep; require \"fileinto\";"),
		  "1:7: require must come before other commands");
	CHECK_STR(check("else { keep; }"), "1:1: else without a preceding if");
	CHECK_STR(check("if true { } else { } else { }"), "1:22: else without a preceding if");
	CHECK_STR(check("if true keep;"), "1:9: expected '{', found identifier");
	CHECK_STR(check("if header :is \"a\" { }"), "1:19: too few arguments for header");
	CHECK_STR(check("if size 10 { }"), "1:9: too many arguments for size");
	CHECK_STR(check("if size { }"), "1:4: size needs :over or :under");
	CHECK_STR(check("if header :is :contains \"a\" \"b\" { }"),
		  "1:15: tagged argument ':contains' given twice or conflicting");
	CHECK_STR(check("if header :foo \"a\" \"b\" { }"),
		  "1:11: unknown tagged argument ':foo' for header");
	CHECK_STR(check("if header :comparator \"i;nope\" \"a\" \"b\" { }"),
		  "1:23: unknown comparator \"i;nope\"");
	CHECK_STR(check("redirect [\"a@b\", \"c@d\"];"),
		  "1:10: redirect expects a string here, not a list");
	CHECK_STR(check("redirect :copy \"a@b\";"),
		  "1:10: unknown tagged argument ':copy' for redirect");
	CHECK_STR(check("require \"copy\"; redirect :copy \"a@b\";"), "OK");
	CHECK_STR(check("if anyof(true, false { }"), "1:22: expected ',' or ')', found '{'");
	CHECK_STR(check("if exists 1 { }"), "1:11: expected a string list, found number");
}

TEST(sieve_parse_depth_limit)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < 10000; i++)
		buf_puts(&b, "if true {");
	for (int i = 0; i < 10000; i++)
		buf_puts(&b, "}");
	struct sieve_script *sc;
	struct sieve_error e;
	CHECK_INT(sieve_compile(b.data, b.len, NULL, &sc, &e), -1);
	CHECK_STR(e.msg, "nested deeper than 64");
	CHECK(sc == NULL);
	buf_reset(&b);
	for (int i = 0; i < 10000; i++)
		buf_puts(&b, "not ");
	buf_puts(&b, "true { }");
	buf_consume(&b, 0);
	struct buf c = BUF_INIT;
	buf_puts(&c, "if ");
	buf_append(&c, b.data, b.len);
	CHECK_INT(sieve_compile(c.data, c.len, NULL, &sc, &e), -1);
	CHECK_STR(e.msg, "nested deeper than 64");
	buf_free(&c);
	buf_free(&b);
	struct sieve_limits lim = sieve_default_limits;
	lim.max_script = 10;
	CHECK_INT(sieve_compile("keep; keep; keep;", 17, &lim, &sc, &e), -1);
	CHECK_STR(e.msg, "script larger than 10 bytes");
}

TEST(sieve_run_base)
{
	CHECK_STR(run(""), "keep*|");
	CHECK_STR(run("keep; keep;"), "keep|");
	CHECK_STR(run("discard;"), "discard|");
	CHECK_STR(run("discard; keep;"), "discard|keep|");
	CHECK_STR(run("redirect \"a@b.c\"; redirect \"a@b.c\";"), "redirect a@b.c|");
	CHECK_STR(run("redirect \"nobody\";"),
		  "E:redirect to an invalid address \"nobody\"|keep*|");
	CHECK_STR(run("stop; discard;"), "keep*|");
	CHECK_STR(run("if false { discard; } elsif true { redirect \"x@y.z\"; } else { keep; }"),
		  "redirect x@y.z|");
	CHECK_STR(run("if not anyof(false, allof(true, false)) { discard; }"), "discard|");
	CHECK_STR(run("if header :contains \"subject\" \"Grüße\" { discard; }"), "discard|");
	CHECK_STR(run("if header :is \"SUBJECT\" \"grüße AND MORE\" { discard; }"), "discard|");
	CHECK_STR(run("if header :is :comparator \"i;octet\" \"subject\" \"grüße and more\" "
		      "{ discard; }"),
		  "keep*|");
	CHECK_STR(run("if address :domain \"to\" \"example.net\" { discard; }"), "discard|");
	CHECK_STR(run("if address :localpart :is \"to\" \"xy\" { discard; }"), "discard|");
	CHECK_STR(run("if address :all :is \"from\" \"alice@example.org\" { discard; }"),
		  "discard|");
	CHECK_STR(run("if address :all :is \"from\" \"Alice\" { discard; }"), "keep*|");
	CHECK_STR(run("if exists [\"from\", \"to\"] { discard; }"), "discard|");
	CHECK_STR(run("if exists [\"from\", \"cc\"] { discard; }"), "keep*|");
	CHECK_STR(run("if size :over 50 { discard; }"), "discard|");
	CHECK_STR(run("if size :under 50 { discard; }"), "keep*|");
}

TEST(sieve_run_matches)
{
	CHECK_STR(run("if header :matches \"subject\" \"gr*more\" { discard; }"), "discard|");
	CHECK_STR(run("if header :matches \"subject\" \"gr??e*\" { discard; }"), "keep*|");
	CHECK_STR(run("if header :matches \"subject\" \"gr????e*\" { discard; }"), "discard|");
	CHECK_STR(run("if header :matches \"subject\" \"*\\\\*\" { discard; }"), "keep*|");
	CHECK_STR(run("if header :matches \"subject\" \"*\" { discard; }"), "discard|");
	CHECK_STR(run("if header :matches \"subject\" \"*a*a*a*a*a*a*a*a*a*a*x\" { discard; }"),
		  "keep*|");
	CHECK_STR(run("if header :contains \"subject\" \"\" { discard; }"), "discard|");
	CHECK_STR(run("if header :is \"x-none\" \"\" { discard; }"), "keep*|");
}

TEST(sieve_run_extensions)
{
	CHECK_STR(run("require \"fileinto\"; fileinto \"A\"; fileinto \"A\";"), "fileinto A|");
	CHECK_STR(run("require [\"fileinto\", \"copy\"]; fileinto :copy \"A\"; redirect :copy "
		      "\"a@b.c\";"),
		  "fileinto A :copy|redirect a@b.c :copy|keep*|");
	CHECK_STR(run("require [\"fileinto\", \"copy\"]; fileinto :copy \"A\"; fileinto \"A\";"),
		  "fileinto A|");
	CHECK_STR(run("require \"reject\"; reject \"no\";"), "reject no|");
	CHECK_STR(run("require \"ereject\"; ereject \"no\";"), "ereject no|");
	CHECK_STR(run("require [\"reject\", \"fileinto\"]; fileinto \"A\"; reject \"no\";"),
		  "E:reject conflicts with an earlier action|keep*|");
	CHECK_STR(run("require \"reject\"; reject \"no\"; keep;"),
		  "E:reject conflicts with an earlier action|keep*|");
	CHECK_STR(run("require \"reject\"; discard; reject \"no\";"), "discard|reject no|");
	CHECK_STR(run("require \"envelope\"; if envelope :localpart \"to\" \"bob+tag\" "
		      "{ discard; }"),
		  "discard|");
	CHECK_STR(run("require \"envelope\"; if envelope :domain \"from\" \"EXAMPLE.org\" "
		      "{ discard; }"),
		  "discard|");
	CHECK_STR(run("require [\"mailbox\", \"fileinto\"]; if mailboxexists \"Work\" "
		      "{ fileinto :create \"Work\"; } if mailboxexists [\"Work\", \"No\"] "
		      "{ discard; }"),
		  "fileinto Work :create|");
	CHECK_STR(run("require [\"imap4flags\", \"fileinto\"]; setflag \"a b\"; addflag "
		      "[\"B\", \"c\"]; removeflag \"a\"; fileinto \"X\"; fileinto :flags "
		      "\"z\" \"Y\";"),
		  "fileinto X +b +c|fileinto Y +z|");
	CHECK_STR(run("require \"imap4flags\"; addflag \"\\\\Seen\"; if hasflag :is "
		      "\"\\\\seen\" { addflag \"hit\"; }"),
		  "keep* +\\Seen +hit|");
	CHECK_STR(run("require \"imap4flags\"; keep :flags \"k\"; addflag \"late\";"), "keep +k|");
}

TEST(sieve_run_subaddress)
{
	CHECK_STR(run("if address :user \"to\" \"bob\" { discard; }"),
		  "compile 1:12: unknown tagged argument ':user' for address");
	CHECK_STR(run("require \"subaddress\"; if address :user \"to\" \"bob\" { discard; }"),
		  "discard|");
	CHECK_STR(run("require \"subaddress\"; if address :detail \"to\" \"tag\" { discard; }"),
		  "discard|");
	/* xy@Example.NET has no detail: nothing to match, not even "" */
	CHECK_STR(run("require \"subaddress\"; if address :detail :is \"to\" \"\" { discard; }"),
		  "keep*|");
	CHECK_STR(run("require [\"subaddress\", \"envelope\"]; if envelope :detail \"to\" "
		      "\"TAG\" { discard; }"),
		  "discard|");
	CHECK_STR(run("require [\"subaddress\", \"envelope\"]; if envelope :user :is \"from\" "
		      "\"alice\" { discard; }"),
		  "discard|");
}

TEST(sieve_run_limits)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "require \"fileinto\";");
	for (int i = 0; i < 40; i++)
		buf_printf(&b, "fileinto \"f%d\";", i);
	CHECK_STR(run(buf_cstr(&b)), "E:more than 32 actions|keep*|");
	buf_reset(&b);
	for (int i = 0; i < 5; i++)
		buf_printf(&b, "redirect \"r%d@x.y\";", i);
	CHECK_STR(run(buf_cstr(&b)), "E:more than 4 redirects|keep*|");
	buf_reset(&b);
	for (int i = 0; i < 60000; i++)
		buf_puts(&b, "if true { } ");
	CHECK_STR(run(buf_cstr(&b)), "E:step budget of 100000 exceeded|keep*|");
	buf_free(&b);
}

TEST(sieve_extension_table)
{
	const char *const *x = sieve_extensions();
	struct buf b = BUF_INIT;
	for (; *x != NULL; x++)
		buf_printf(&b, "%s ", *x);
	CHECK_STR(buf_cstr(&b),
		  "fileinto reject ereject envelope copy mailbox imap4flags subaddress vacation "
		  "vacation-seconds variables relational comparator-i;ascii-numeric body date index "
		  "duplicate editheader include environment ihave encoded-character spamtest "
		  "spamtestplus virustest ");
	buf_free(&b);
}

TEST(sieve_vacation_parse_and_run)
{
	CHECK_STR(run("vacation \"x\";"),
		  "compile 1:1: command 'vacation' needs its extension in require");
	CHECK_STR(run("require \"vacation\"; vacation :seconds 5 \"x\";"),
		  "compile 1:30: unknown tagged argument ':seconds' for vacation");
	CHECK_STR(run("require \"vacation-seconds\"; vacation :days 1 :seconds 5 \"x\";"),
		  "compile 1:46: tagged argument ':seconds' given twice or conflicting");
	CHECK_STR(run("require \"vacation\"; vacation :from \"a, <b@c.d>\" \"x\";"),
		  "compile 1:21: vacation :from \"a, <b@c.d>\" is not a valid address");
	CHECK_STR(run("require \"vacation\"; vacation :subject \"a\r\nBcc: x@y.z\" \"x\";"),
		  "compile 1:21: vacation :subject has a line break");
	CHECK_STR(run("require \"vacation\"; vacation :addresses \"me\" \"x\";"),
		  "compile 1:21: vacation :addresses \"me\" is not an address");
	CHECK_STR(run("require \"vacation\"; vacation :days \"1\" \"x\";"),
		  "compile 1:36: expected a number, found string");
	/* vacation-seconds implies vacation (RFC 6131 2); keep stays */
	CHECK_STR(run("require \"vacation-seconds\"; vacation :seconds 60 :handle \"h\" \"x\";"),
		  "vacation x 60s h:h|keep*|");
	CHECK_STR(run("require \"vacation\"; vacation :days 2 :subject \"S\" :from \"Me "
		      "<me@x.y>\" :addresses [\"a@b.c\", \"d@e.f\"] :mime \"x\"; discard;"),
		  "vacation x 172800s d:2870af49d93151b8 s=S f=Me <me@x.y> a=a@b.c a=d@e.f "
		  "mime|discard|");
	/* the default handle depends on the parameters, counted */
	const char *h1 = run("require \"vacation\"; vacation \"x\";");
	CHECK(strstr(h1, "vacation x 604800s d:") == h1);
	char first[128];
	snprintf(first, sizeof first, "%s", h1);
	CHECK(strcmp(first, run("require \"vacation\"; vacation :subject \"x\" \"x\";")) != 0);
	CHECK_STR(first, run("require \"vacation\"; vacation \"x\";"));
	/* RFC 5230 4.7 */
	CHECK_STR(run("require \"vacation\"; vacation \"a\"; vacation \"b\";"),
		  "E:vacation executed twice|keep*|");
	CHECK_STR(run("require [\"vacation\", \"reject\"]; reject \"r\"; vacation \"a\";"),
		  "E:vacation conflicts with reject|keep*|");
	CHECK_STR(run("require [\"vacation\", \"fileinto\"]; vacation \"a\"; fileinto \"F\";"),
		  "vacation a 604800s d:a1a425e0f6a9c606|fileinto F|");
}

static bool allowed(const char *m, const char *from, const char *addresses, const char **why)
{
	char src[512];
	snprintf(src, sizeof src, "require \"vacation\"; vacation %s \"away\";", addresses);
	struct sieve_script *sc;
	struct sieve_error e;
	CHECK(sieve_compile(src, strlen(src), NULL, &sc, &e) == 0);
	struct sieve_input in = {from, "bob+tag@example.com", m, strlen(m), NULL, NULL, NULL, NULL, NULL,
				 NULL, NULL, NULL};
	struct sieve_result r;
	CHECK(sieve_run(sc, &in, &r) == 0);
	CHECK(r.n_actions == 2 && r.actions[0].type == SIEVE_ACT_VACATION);
	const char *mine[2] = {"bob+tag@example.com", "bob@example.com"};
	*why = "";
	bool ok = sieve_vacation_allowed(&in, &r.actions[0], mine, 2, why);
	sieve_result_free(&r);
	sieve_script_free(&sc);
	return ok;
}

TEST(sieve_vacation_allowed)
{
	const char *why;
	const char *to_bob = "From: a@x.y\r\nTo: Bob <BOB@example.com>\r\n\r\nhi\r\n";
	CHECK(allowed(to_bob, "a@x.y", "", &why));
	CHECK(!allowed(to_bob, "", "", &why));
	CHECK_STR(why, "null sender");
	static const char *const robots[] = {"MAILER-DAEMON@x.y", "owner-list@x.y",
					     "list-request@x.y", "majordomo@x.y", "listserv@x.y"};
	for (size_t i = 0; i < 5; i++) {
		CHECK(!allowed(to_bob, robots[i], "", &why));
		CHECK_STR(why, "automated sender");
	}
	CHECK(!allowed(to_bob, "Bob@Example.com", "", &why));
	CHECK_STR(why, "sender is the user");
	CHECK(!allowed("To: bob@example.com\r\nList-Id: <l.x.y>\r\n\r\n", "a@x.y", "", &why));
	CHECK_STR(why, "mailing list");
	CHECK(!allowed("To: bob@example.com\r\nList-Unsubscribe: <mailto:u@x.y>\r\n\r\n", "a@x.y",
		       "", &why));
	CHECK(!allowed("To: bob@example.com\r\nPrecedence: Bulk\r\n\r\n", "a@x.y", "", &why));
	CHECK_STR(why, "precedence bulk, list or junk");
	CHECK(allowed("To: bob@example.com\r\nPrecedence: first-class\r\n\r\n", "a@x.y", "", &why));
	CHECK(!allowed("To: bob@example.com\r\nAuto-Submitted: auto-replied (v)\r\n\r\n", "a@x.y",
		       "", &why));
	CHECK_STR(why, "auto-submitted");
	CHECK(allowed("To: bob@example.com\r\nAuto-Submitted: No (human)\r\n\r\n", "a@x.y", "",
		      &why));
	CHECK(!allowed("To: carol@example.com\r\nCc: \"bob@example.com\" <d@e.f>\r\n\r\n",
		       "a@x.y", "", &why));
	CHECK_STR(why, "not addressed to the user");
	CHECK(allowed("To: carol@example.com\r\nResent-Cc: x@y.z,\r\n bob+tag@example.com\r\n\r\n",
		      "a@x.y", "", &why));
	CHECK(allowed("To: carol@example.com\r\nBcc: Other <b@OTHER.example>\r\n\r\n", "a@x.y",
		      ":addresses [\"b@other.example\"]", &why));
	CHECK(!allowed(to_bob, "b@other.example", ":addresses \"b@other.example\"", &why));
	CHECK_STR(why, "sender is the user");
}

static const char *reply(const char *m, const char *params)
{
	static char out[2048];
	char src[1400];
	snprintf(src, sizeof src, "require \"vacation\"; vacation %s;", params);
	struct sieve_script *sc;
	struct sieve_error e;
	CHECK(sieve_compile(src, strlen(src), NULL, &sc, &e) == 0);
	struct sieve_input in = {"a@x.y", "bob@example.com", m, strlen(m), NULL, NULL, NULL, NULL, NULL,
				 NULL, NULL, NULL};
	struct sieve_result r;
	CHECK(sieve_run(sc, &in, &r) == 0);
	struct buf b = BUF_INIT;
	const char *why = NULL;
	if (sieve_vacation_reply(&in, &r.actions[0], "bob@example.com",
				 "Sun, 6 Dec 2026 10:00:00 +0000", "id1@mx.example", &b, &why) < 0)
		snprintf(out, sizeof out, "E:%s", why);
	else
		snprintf(out, sizeof out, "%s", buf_cstr(&b));
	buf_free(&b);
	sieve_result_free(&r);
	sieve_script_free(&sc);
	return out;
}

TEST(sieve_vacation_reply)
{
	CHECK_STR(reply("Subject: Lunch\r\nMessage-ID: <m1@x.y>\r\nReferences: <m0@x.y>\r\n\r\n",
			"\"Away.\nBack Monday.\""),
		  "From: bob@example.com\r\nTo: <a@x.y>\r\nSubject: Auto: Lunch\r\n"
		  "Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <id1@mx.example>\r\n"
		  "In-Reply-To: <m1@x.y>\r\nReferences: <m0@x.y> <m1@x.y>\r\n"
		  "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
		  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n"
		  "\r\nAway.\r\nBack Monday.\r\n");
	/* no Subject, no Message-ID; :subject in UTF-8; :from; 8bit body */
	CHECK_STR(reply("From: a@x.y\r\n\r\n", ":from \"Bob <b@x.y>\" \"Weg.\""),
		  "From: Bob <b@x.y>\r\nTo: <a@x.y>\r\nSubject: Automated reply\r\n"
		  "Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nMessage-ID: <id1@mx.example>\r\n"
		  "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
		  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n"
		  "\r\nWeg.\r\n");
	CHECK(strstr(reply("\r\n", ":subject \"Gr\xc3\xbc\xc3\x9f\x65\" \"B\xc3\xa4r\""),
		     "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n") != NULL);
	CHECK(strstr(reply("\r\n", "\"B\xc3\xa4r\""),
		     "Content-Transfer-Encoding: 8bit\r\n\r\nB\xc3\xa4r\r\n") != NULL);
	/* :mime: the reason is the entity */
	CHECK(strstr(reply("\r\n", ":mime \"Content-Type: text/html\n\n<b>x</b>\""),
		     "MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n") != NULL);
	char big[1200];
	memset(big, 'x', 1100);
	big[0] = '"';
	big[1100] = '"';
	big[1101] = '\0';
	CHECK_STR(reply("\r\n", big), "E:a line of the reason is longer than 998 bytes");
}

TEST(sieve_variables_parse)
{
	CHECK_STR(check("set \"a\" \"b\";"), "1:1: command 'set' needs its extension in require");
	CHECK_STR(check("require \"variables\"; set \"a\" \"b\";"), "OK");
	CHECK_STR(check("require \"variables\"; set \"a.b\" \"x\";"),
		  "1:22: invalid variable name \"a.b\"");
	CHECK_STR(check("require \"variables\"; set \"1\" \"x\";"),
		  "1:22: invalid variable name \"1\"");
	CHECK_STR(check("require \"variables\"; set \"\" \"x\";"), "1:22: invalid variable name \"\"");
	CHECK_STR(check("require \"variables\"; set :lower :upper \"a\" \"x\";"),
		  "1:33: tagged argument ':upper' given twice or conflicting");
	CHECK_STR(check("require \"variables\"; set :lowerfirst :upperfirst \"a\" \"x\";"),
		  "1:38: tagged argument ':upperfirst' given twice or conflicting");
	CHECK_STR(check("require \"variables\"; set :lower :upperfirst :quotewildcard :length "
			"\"a\" \"x\";"),
		  "OK");
	CHECK_STR(check("require \"variables\"; set :frob \"a\" \"x\";"),
		  "1:26: unknown tagged argument ':frob' for set");
	CHECK_STR(check("require \"variables\"; set \"a\";"), "1:29: too few arguments for set");
	CHECK_STR(check("require \"variables\"; set [\"a\"] \"b\";"),
		  "1:26: set expects a string here, not a list");
	CHECK_STR(check("require [\"variables\", \"fileinto\"]; fileinto \"${a.b}\";"),
		  "1:36: variable namespace in \"${a.b}\" is not supported");
	CHECK_STR(check("require [\"variables\", \"fileinto\"]; fileinto \"${10}\";"),
		  "1:36: match variable \"${10}\" beyond ${9}");
	CHECK_STR(check("require [\"variables\", \"fileinto\"]; fileinto \"${009}${x}${}${a!}\";"),
		  "OK");
	/* without variables, "${a.b}" is an ordinary string */
	CHECK_STR(check("require \"fileinto\"; fileinto \"${a.b}\";"), "OK");
	CHECK_STR(check("require \"variables\"; if string :is \"a\" \"b\" { }"), "OK");
	CHECK_STR(check("if string :is \"a\" \"b\" { }"),
		  "1:4: test 'string' needs its extension in require");
	/* imap4flags: the variable name argument needs variables */
	CHECK_STR(check("require \"imap4flags\"; setflag \"v\" \"x\";"),
		  "1:23: too many arguments for setflag");
	CHECK_STR(check("require [\"imap4flags\", \"variables\"]; setflag \"v\" \"x\";"), "OK");
	CHECK_STR(check("require [\"imap4flags\", \"variables\"]; addflag \"v.w\" \"x\";"),
		  "1:38: invalid variable name \"v.w\"");
	/* the number of distinct names is bounded at compile time */
	struct buf b = BUF_INIT;
	buf_puts(&b, "require \"variables\";\n");
	for (int i = 0; i < 256; i++)
		buf_printf(&b, "set \"v%d\" \"x\"; set \"V%d\" \"y\";\n", i, i);
	CHECK_STR(check(buf_cstr(&b)), "OK");
	buf_puts(&b, "set \"one_more\" \"x\";\n");
	CHECK_STR(check(buf_cstr(&b)), "258:1: more than 256 variables");
	buf_free(&b);
	/* a constant value longer than a variable holds */
	buf_puts(&b, "require \"variables\"; set \"a\" \"");
	for (int i = 0; i < 4097; i++)
		buf_putc(&b, 'x');
	buf_puts(&b, "\";");
	CHECK_STR(check(buf_cstr(&b)), "1:22: value longer than 4096 bytes");
	buf_free(&b);
}

TEST(sieve_variables_run)
{
	const char *req = "require [\"variables\", \"fileinto\", \"imap4flags\"];\n";
	char s[2048];
#define RUNV(body) (snprintf(s, sizeof s, "%s%s", req, body), run(s))
	/* RFC 5229 4.1's examples */
	CHECK_STR(RUNV("set \"a\" \"juMBlEd lETteRS\"; set :length \"b\" \"${a}\";"
		       "set :lower \"c\" \"${a}\"; set :upperfirst \"d\" \"${a}\";"
		       "set :upperfirst :lower \"e\" \"${a}\"; set :quotewildcard \"f\" \"Rock*\";"
		       "fileinto \"${b}|${c}|${d}|${e}|${f}\";"),
		  "fileinto 15|jumbled letters|JuMBlEd lETteRS|Jumbled letters|Rock\\*|");
	/* :upper, :lowerfirst, :quotewildcard of ? and \, then :length of that */
	CHECK_STR(RUNV("set :upper \"a\" \"abc\"; set :lowerfirst \"b\" \"ABC\";"
		       "set :quotewildcard :length \"c\" \"a?\\\\\";"
		       "set :length \"d\" \"Gr\xc3\xbc\xc3\x9f\x65\"; set :upper \"e\" \"\xc3\xa4x\";"
		       "fileinto \"${a}|${b}|${c}|${d}|${e}\";"),
		  "fileinto ABC|aBC|5|5|\xc3\xa4X|");
	/* RFC 5229 3's examples; names are case-insensitive; one pass */
	CHECK_STR(RUNV("set \"company\" \"ACME\"; set \"x\" \"${company}\";"
		       "fileinto \"${full}|${COMPANY}|${BAD${Company}|${President, ${Company} Inc.}"
		       "|&%${}!|${doh!}\";"),
		  "fileinto |ACME|${BADACME|${President, ACME Inc.}|&%${}!|${doh!}|");
	CHECK_STR(RUNV("set \"a\" \"${b}\"; set \"b\" \"${a}x\"; set \"c\" \"$\";"
		       "fileinto \"${b}${c}{a}\";"),
		  "fileinto x${a}|");
	CHECK_STR(RUNV("set \"dollar\" \"$\"; set \"t\" \"${dollar}{beep}\"; fileinto \"${t}\";"),
		  "fileinto ${beep}|");
	/* match variables: non-greedy, ${0} the whole value, a failed match
	 * leaves them, out of range is empty */
	CHECK_STR(RUNV("if address :matches \"From\" \"*@*.*\" {"
		       " fileinto \"${0}|${1}|${2}|${3}|${4}|${9}\"; }"),
		  "fileinto alice@example.org|alice|example|org|||");
	CHECK_STR(RUNV("if header :matches \"Subject\" \"Gr?*e *\" {}"
		       "if header :matches \"Subject\" \"nothing*\" {}"
		       "fileinto \"${1}|${2}|${3}|${00003}\";"),
		  "fileinto \xc3|\xbc\xc3\x9f|and more|and more|");
	CHECK_STR(RUNV("if address :all :matches \"To\" [\"*@**.net\", \"x*\"] {"
		       " fileinto \"${0}|${1}|${2}|${3}\"; }"),
		  "fileinto xy@Example.NET|xy||Example|");
	/* the second test is never evaluated (short-circuit): no match vars */
	CHECK_STR(RUNV("if anyof (true, header :matches \"Subject\" \"*\") {"
		       " fileinto \"[${0}]\"; }"),
		  "fileinto []|");
	/* :matches on a variable's value: expansion first, wildcards then */
	CHECK_STR(RUNV("set \"p\" \"*b*\"; if string :matches \"abc\" \"${p}\" {"
		       " fileinto \"m-${1}-${2}\"; }"),
		  "fileinto m-a-c|");
	CHECK_STR(RUNV("set :quotewildcard \"p\" \"*b*\";"
		       "if string :matches \"abc\" \"${p}\" { fileinto \"yes\"; }"
		       "if string :matches \"*b*\" \"${p}\" { fileinto \"literal\"; }"),
		  "fileinto literal|");
	/* string: lists, :contains, the comparator; no whitespace stripping */
	CHECK_STR(RUNV("set \"st\" \" a \"; if string :is [\"x\", \"${st}\"] \" a \" {"
		       " fileinto \"yes\"; } if string :is \"${st}\" \"a\" { fileinto \"no\"; }"),
		  "fileinto yes|");
	CHECK_STR(RUNV("if string :contains :comparator \"i;octet\" \"ABC\" \"b\" {"
		       " fileinto \"no\"; } if string :contains \"ABC\" \"b\" { fileinto \"yes\"; }"),
		  "fileinto yes|");
	/* variables in every argument: redirect, flags, vacation-free */
	CHECK_STR(RUNV("set \"u\" \"carol\"; set \"f\" \"\\\\Seen\";"
		       "redirect \"${u}@example.net\"; fileinto :flags \"${f} x\" \"${u}\";"),
		  "redirect carol@example.net|fileinto carol +\\Seen +x|");
	/* imap4flags with variables (RFC 5232 3) */
	CHECK_STR(RUNV("setflag \"v\" \"\\\\Seen  b\"; addflag \"v\" [\"c\", \"b\"];"
		       "removeflag \"v\" \"B\"; addflag \"intern\";"
		       "if hasflag :is \"v\" \"c\" { fileinto :flags \"${v}\" \"F-${v}\"; }"
		       "if hasflag \"c\" { fileinto \"no\"; } if hasflag [\"w\", \"v\"] \"\\\\seen\" {"
		       " keep; }"),
		  "fileinto F-\\Seen c +\\Seen +c|keep +intern|");
	/* values are truncated at 4096 bytes (at a character boundary) */
	struct buf b = BUF_INIT;
	buf_puts(&b, req);
	buf_puts(&b, "set \"h\" \"");
	for (int i = 0; i < 1050; i++)
		buf_puts(&b, "\xc3\xa4");
	buf_puts(&b, "\"; set \"a\" \"x${h}${h}\"; set :length \"l\" \"${a}\"; set \"b\" \"${a}${a}\";"
		     "set :length \"m\" \"${b}\"; fileinto \"${l}-${m}\";");
	CHECK_STR(run(buf_cstr(&b)), "fileinto 2048-2049|");
	buf_free(&b);
	/* an expanded string is bounded by max_string */
	buf_puts(&b, req);
	buf_puts(&b, "set \"a\" \"");
	for (int i = 0; i < 4000; i++)
		buf_putc(&b, 'y');
	buf_puts(&b, "\"; set \"b\" \"");
	for (int i = 0; i < 40; i++)
		buf_puts(&b, "${a}");
	buf_puts(&b, "\"; set :length \"n\" \"${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}"
		     "${a}${a}${a}${a}${a}\"; fileinto \"${n}\";");
	CHECK_STR(run(buf_cstr(&b)), "fileinto 65536|");
	buf_free(&b);
#undef RUNV
}

TEST(sieve_relational)
{
	CHECK_STR(check("if header :count \"eq\" \"to\" \"1\" { }"),
		  "1:11: unknown tagged argument ':count' for header");
	CHECK_STR(check("require \"relational\"; if header :count \"eq\" :comparator "
			"\"i;ascii-numeric\" \"to\" \"1\" { }"),
		  "1:57: comparator \"i;ascii-numeric\" needs comparator-i;ascii-numeric in require");
	CHECK_STR(check("require \"relational\"; if header :count \"xx\" \"to\" \"1\" { }"),
		  "1:40: unknown relational operator \"xx\"");
	CHECK_STR(check("require \"relational\"; if header :value { }"),
		  "1:40: expected a relational operator, found '{'");
	CHECK_STR(check("require \"relational\"; if header :value \"eq\" :is \"to\" \"1\" { }"),
		  "1:45: tagged argument ':is' given twice or conflicting");
	/* ABNF literals are case-insensitive (RFC 5234 2.3); Pigeonhole differs */
	CHECK_STR(check("require \"relational\"; if header :value \"EQ\" \"to\" \"1\" { }"), "OK");
	CHECK_STR(check("require \"comparator-i;ascii-numeric\"; if header :contains :comparator "
			"\"i;ascii-numeric\" \"to\" \"1\" { }"),
		  "1:42: comparator i;ascii-numeric does not support :contains");
	CHECK_STR(check("require \"comparator-i;ascii-numeric\"; if header :comparator "
			"\"i;ascii-numeric\" :matches \"to\" \"1\" { }"),
		  "1:42: comparator i;ascii-numeric does not support :matches");
	const char *req = "require [\"relational\", \"comparator-i;ascii-numeric\", \"fileinto\","
			  " \"envelope\", \"variables\", \"imap4flags\"];\n";
	char s[2048];
#define RUNR(body) (snprintf(s, sizeof s, "%s%s", req, body), run(s))
	/* :count: addresses of To (2) and From (1); fields; RFC 5231 6 */
	CHECK_STR(RUNR("if address :count \"ge\" :comparator \"i;ascii-numeric\" [\"to\", \"from\"]"
		       " \"3\" { fileinto \"a\"; }"
		       "if address :count \"ge\" :comparator \"i;ascii-numeric\" \"to\" \"3\" {"
		       " fileinto \"b\"; }"
		       "if header :count \"eq\" :comparator \"i;ascii-numeric\" [\"to\", \"from\","
		       " \"x-none\"] [\"7\", \"2\"] { fileinto \"c\"; }"),
		  "fileinto a|fileinto c|");
	/* the default comparator compares the count as text: "10" < "9" */
	CHECK_STR(RUNR("if string :count \"gt\" [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
		       "\"9\",\"10\"] \"9\" { fileinto \"num\"; } else { fileinto \"text\"; }"),
		  "fileinto text|");
	/* the empty string counts 0 (RFC 5229 5); the envelope to counts 1 */
	CHECK_STR(RUNR("if string :count \"eq\" :comparator \"i;ascii-numeric\" [\"\", \"x\", \"\"]"
		       " \"1\" { fileinto \"one\"; }"
		       "if envelope :count \"eq\" :comparator \"i;ascii-numeric\" \"to\" \"1\" {"
		       " fileinto \"env\"; }"),
		  "fileinto one|fileinto env|");
	/* :value with i;ascii-numeric: leading digits, leading zeroes,
	 * non-numbers are infinity (RFC 4790 9.1), numbers beyond 64 bits */
	CHECK_STR(RUNR("if string :value \"lt\" :comparator \"i;ascii-numeric\" \"9\" \"10\" {"
		       " fileinto \"a\"; }"
		       "if string :value \"eq\" :comparator \"i;ascii-numeric\" \"007abc\" \"7\" {"
		       " fileinto \"b\"; }"
		       "if string :value \"gt\" :comparator \"i;ascii-numeric\" \"x\""
		       " \"99999999999999999999999\" { fileinto \"c\"; }"
		       "if string :value \"eq\" :comparator \"i;ascii-numeric\" \"x\" \"y\" {"
		       " fileinto \"d\"; }"
		       "if string :is :comparator \"i;ascii-numeric\" \"x\" \"y\" { fileinto \"e\"; }"
		       "if string :value \"lt\" :comparator \"i;ascii-numeric\""
		       " \"18446744073709551616\" \"18446744073709551617\" { fileinto \"f\"; }"
		       "if string :value \"ne\" :comparator \"i;ascii-numeric\" \"0\" \"00\" {"
		       " fileinto \"no\"; }"),
		  "fileinto a|fileinto b|fileinto c|fileinto d|fileinto e|fileinto f|");
	/* :value with the text comparators; each relation */
	CHECK_STR(RUNR("if address :value \"gt\" :all \"from\" \"M\" { fileinto \"N-Z\"; }"
		       "if address :value \"lt\" :all \"from\" \"B\" { fileinto \"A\"; }"
		       "if string :value \"lt\" :comparator \"i;octet\" \"B\" \"a\" { fileinto \"o\"; }"
		       "if string :value \"lt\" \"B\" \"a\" { fileinto \"c\"; }"
		       "if string :value \"le\" \"ab\" \"AB\" { fileinto \"le\"; }"
		       "if string :value \"ge\" \"ab\" \"a\" { fileinto \"ge\"; }"
		       "if string :value \"ne\" \"a\" \"A\" { fileinto \"ne\"; }"
		       "if string :value \"eq\" \"a\" \"A\" { fileinto \"eq\"; }"),
		  "fileinto A|fileinto o|fileinto le|fileinto ge|fileinto eq|");
	/* neither sets match variables; hasflag :count counts flags */
	CHECK_STR(RUNR("if header :matches \"From\" \"*\" {}"
		       "if header :value \"ge\" \"From\" \"A\" { fileinto \"${0}\"; }"
		       "addflag \"a b\"; if hasflag :count \"eq\" :comparator \"i;ascii-numeric\""
		       " \"2\" { fileinto \"two\"; }"),
		  "fileinto Alice <alice@example.org>|fileinto two +a +b|");
#undef RUNR
}

TEST(sieve_relational_null_sender)
{
	const char *src = "require [\"relational\", \"comparator-i;ascii-numeric\", \"envelope\"];"
			  "if envelope :count \"eq\" :comparator \"i;ascii-numeric\" \"from\" \"0\""
			  " { discard; }";
	struct sieve_script *sc;
	struct sieve_error e;
	CHECK_INT(sieve_compile(src, strlen(src), NULL, &sc, &e), 0);
	struct sieve_input in = {"", "bob@example.com", msg, sizeof msg - 1,
				 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
	struct sieve_result r;
	CHECK_INT(sieve_run(sc, &in, &r), 0);
	CHECK_INT((int)r.n_actions, 1);
	CHECK_INT(r.actions[0].type, SIEVE_ACT_DISCARD);
	sieve_result_free(&r);
	in.env_from = "a@b.c";
	CHECK_INT(sieve_run(sc, &in, &r), 0);
	CHECK_INT(r.actions[0].type, SIEVE_ACT_KEEP);
	sieve_result_free(&r);
	sieve_script_free(&sc);
}

static const char mime_msg[] =
    "From: c@example.net\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    "Prologue here.\r\n"
    "--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\nK=F6ln =3D city\r\n"
    "--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "UERGIGJ5dGVz\r\n"
    "--b1\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n"
    "--b2\r\nContent-Type: TEXT/HTML\r\n\r\n<p>Inner html</p>\r\n--b2--\r\n"
    "--b1\r\nContent-Type: message/rfc822\r\n\r\n"
    "Subject: inner subject\r\n\r\ninner body\r\n"
    "--b1--\r\nThe epilogue.\r\n";

TEST(sieve_body)
{
	CHECK_STR(check("if body \"x\" { }"), "1:4: test 'body' needs its extension in require");
	CHECK_STR(check("require \"body\"; if body :raw :text \"x\" { }"),
		  "1:30: tagged argument ':text' given twice or conflicting");
	CHECK_STR(check("require \"body\"; if body :content \"x\" { }"),
		  "1:38: too few arguments for body");
	CHECK_STR(check("require \"body\"; if body :content 1 \"x\" { }"),
		  "1:34: expected a string or a string list, found number");
	CHECK_STR(check("require \"body\"; if header :raw \"a\" \"b\" { }"),
		  "1:27: unknown tagged argument ':raw' for header");
	CHECK_STR(check("require \"body\"; if body :comparator \"i;octet\" :matches :text \"*\" { }"),
		  "OK");
	const char *req = "require [\"body\", \"fileinto\", \"variables\"];\n";
	char s[2048];
#define RUNB(body) (snprintf(s, sizeof s, "%s%s", req, body), run_on(s, mime_msg, NULL))
	/* :raw: undecoded, boundaries and part headers included */
	CHECK_STR(RUNB("if body :raw :contains \"UERGIGJ5dGVz\" { fileinto \"a\"; }"
		       "if body :raw :contains \"PDF bytes\" { fileinto \"b\"; }"
		       "if body :raw :contains \"--b1--\" { fileinto \"c\"; }"
		       "if body :raw :matches \"Prologue*epilogue.\r\n\" { fileinto \"d\"; }"
		       "if body :raw :contains \"Subject: s\" { fileinto \"no\"; }"),
		  "fileinto a|fileinto c|fileinto d|");
	/* :content: decoded, text to UTF-8; type, type/subtype, case,
	 * bad specs match nothing */
	CHECK_STR(RUNB("if body :content \"application\" :is \"PDF bytes\" { fileinto \"a\"; }"
		       "if body :content \"text/plain\" :contains \"K\xc3\xb6ln = city\" {"
		       " fileinto \"b\"; }"
		       "if body :content \"Text/HTML\" :contains \"Inner html\" { fileinto \"c\"; }"
		       "if body :content [\"/plain\", \"text/\", \"text/plain/x\", \"tex\"]"
		       " :contains \"city\" { fileinto \"no\"; }"
		       "if body :content \"image\" :contains \"\" { fileinto \"no2\"; }"),
		  "fileinto a|fileinto b|fileinto c|");
	/* multipart: only prologue and epilogue; message/rfc822: the header */
	CHECK_STR(RUNB("if body :content \"multipart/mixed\" :is \"Prologue here.\" {"
		       " fileinto \"a\"; }"
		       "if body :content \"multipart\" :is \"The epilogue.\r\n\" { fileinto \"b\"; }"
		       "if body :content \"multipart\" :contains \"city\" { fileinto \"no\"; }"
		       "if body :content \"message\" :contains \"inner subject\" { fileinto \"c\"; }"
		       "if body :content \"message\" :contains \"inner body\" { fileinto \"no2\"; }"
		       "if body :content \"text\" :contains \"inner body\" { fileinto \"d\"; }"),
		  "fileinto a|fileinto b|fileinto c|fileinto d|");
	/* :text (the default) is the text parts: html too, as it is */
	CHECK_STR(RUNB("if body :contains \"city\" { fileinto \"a\"; }"
		       "if body :text :contains \"<p>Inner\" { fileinto \"b\"; }"
		       "if body :text :contains \"PDF\" { fileinto \"no\"; }"
		       "if body :text :contains \"Prologue\" { fileinto \"no2\"; }"),
		  "fileinto a|fileinto b|");
	/* :matches sets no match variables (RFC 5173 6); variables expand */
	CHECK_STR(RUNB("if header :matches \"Subject\" \"*\" {}"
		       "if body :matches \"K*n*\" { fileinto \"m-${1}-${0}\"; }"
		       "set \"ct\" \"application\"; if body :content \"${ct}\" :contains \"PDF\" {"
		       " fileinto \"v\"; }"),
		  "fileinto m-s-s|fileinto v|");
	/* a message without MIME: its body is text/plain */
	CHECK_STR(run("require [\"body\", \"fileinto\"]; if body :is \"body\r\n\" { fileinto "
		      "\"a\"; } if body :raw :is \"body\r\n\" { fileinto \"b\"; }"),
		  "fileinto a|fileinto b|");
	/* the bound: only the first max_body octets are seen */
	struct sieve_limits lim = sieve_default_limits;
	lim.max_body = 40;
	CHECK_STR(run_on("require [\"body\", \"fileinto\"]; if body :raw :contains \"Prologue\""
			 " { fileinto \"a\"; } if body :raw :contains \"K=F6ln\" { fileinto \"b\"; }",
			 mime_msg, &lim),
		  "fileinto a|");
	lim.max_body = 20;
	CHECK_STR(run_on("require [\"body\", \"fileinto\"]; if body :content \"\" :contains"
			 " \"Prologue\" { fileinto \"a\"; } if body :content \"text\" :contains"
			 " \"city\" { fileinto \"b\"; }",
			 mime_msg, &lim),
		  "fileinto a|");
#undef RUNB
}

static const char dated_msg[] =
    "Received: from a by b; Mon, 7 Dec 2026 01:30:00 +0100\r\n"
    "Received: from c\r\n by d; Sun, 6 Dec 2026 23:59:59 -0500 (EST)\r\n"
    "Received: from e; not a date\r\n"
    "Date: Sat, 29 Feb 2025 10:00:00 +0000\r\n"
    "X-Leap: 29 Feb 2024 23:00 -0130\r\n"
    "X-Obs: Mon, 1 Mar 99 12:00:60 PDT\r\n"
    "X-Three: 1 Jan 105 00:00 GMT\r\n"
    "X-Bad1: 31 Apr 2026 10:00 +0000\r\n"
    "X-Bad2: 1 Jan 2026 24:00 +0000\r\n"
    "X-Bad3: 1 Jan 2026 10:00 +0060\r\n"
    "X-Bad4: 1 Jan 2026 10:00 +0000 trailing\r\n"
    "X-Bad5: Mon, 1 Jan 2026 10:00 +0000\r\n"
    "\r\nb\r\n";

TEST(sieve_date)
{
	CHECK_STR(check("require \"date\"; if date \"date\" \"year\" \"2026\" { }"), "OK");
	CHECK_STR(check("require \"date\"; if date \"date\" \"yearly\" \"2026\" { }"),
		  "1:20: unknown date part \"yearly\"");
	CHECK_STR(check("require \"date\"; if date :zone \"0100\" \"date\" \"year\" \"x\" { }"),
		  "1:20: invalid :zone \"0100\" (+hhmm or -hhmm)");
	CHECK_STR(check("require \"date\"; if date :zone \"+0160\" \"date\" \"year\" \"x\" { }"),
		  "1:20: invalid :zone \"+0160\" (+hhmm or -hhmm)");
	CHECK_STR(check("require \"date\"; if date :zone \"+0100\" :originalzone \"date\" \"year\""
			" \"x\" { }"),
		  "1:39: tagged argument ':originalzone' given twice or conflicting");
	CHECK_STR(check("require \"date\"; if currentdate :originalzone \"year\" \"x\" { }"),
		  "1:32: unknown tagged argument ':originalzone' for currentdate");
	CHECK_STR(check("require \"date\"; if date \"date\" [\"year\"] \"x\" { }"),
		  "1:32: date expects a string here, not a list");
	CHECK_STR(check("require \"date\"; if date :index 1 \"date\" \"year\" \"x\" { }"),
		  "1:25: unknown tagged argument ':index' for date");
	CHECK_STR(check("require \"index\"; if header :last \"a\" \"b\" { }"),
		  "1:21: :last without :index");
	CHECK_STR(check("require \"index\"; if header :index 0 \"a\" \"b\" { }"),
		  "1:35: :index counts from 1");
	CHECK_STR(check("require [\"index\", \"variables\", \"date\"]; set \"z\" \"x\";"
			" if date :zone \"${z}\" \"date\" \"${z}\" \"x\" { }"),
		  "OK");
	const char *req = "require [\"date\", \"index\", \"fileinto\", \"variables\", \"relational\","
			  " \"comparator-i;ascii-numeric\"];\n";
	char s[4096];
#define RUND(body) (snprintf(s, sizeof s, "%s%s", req, body), run_on(s, dated_msg, NULL))
	/* each date part of the first Received field in its own zone */
	CHECK_STR(RUND("if date :matches :originalzone \"received\" \"std11\" \"*\" { set \"a\" \"${0}\"; }"
		       "if date :matches :originalzone \"received\" \"iso8601\" \"*\" { set \"b\" \"${0}\"; }"
		       "if date :matches :originalzone \"received\" \"julian\" \"*\" { set \"c\" \"${0}\"; }"
		       "if date :matches :originalzone \"received\" \"weekday\" \"*\" { set \"d\" \"${0}\"; }"
		       "if date :matches :originalzone \"received\" \"zone\" \"*\" { set \"e\" \"${0}\"; }"
		       "if date :matches :originalzone \"received\" \"time\" \"*\" { set \"f\" \"${0}\"; }"
		       "fileinto \"${a}|${b}|${c}|${d}|${e}|${f}\";"),
		  "fileinto Mon, 07 Dec 2026 01:30:00 +0100|2026-12-07T01:30:00+01:00|61381|1|"
		  "+0100|01:30:00|");
	/* shifted to other zones: the day changes, Z for zero */
	CHECK_STR(RUND("if date :matches :zone \"+0000\" \"received\" \"iso8601\" \"*\" { set \"a\" \"${0}\"; }"
		       "if date :matches :zone \"-0230\" \"received\" \"date\" \"*\" { set \"b\" \"${0}\"; }"
		       "if date :matches :zone \"-0230\" \"received\" \"hour\" \"*\" { set \"c\" \"${0}\"; }"
		       "if date :matches :zone \"-0230\" \"received\" \"minute\" \"*\" { set \"d\" \"${0}\"; }"
		       "if date :matches :zone \"-0230\" \"received\" \"weekday\" \"*\" { set \"e\" \"${0}\"; }"
		       "fileinto \"${a}|${b}|${c}|${d}|${e}\";"),
		  "fileinto 2026-12-07T00:30:00Z|2026-12-06|22|00|0|");
	/* :index on date (Pigeonhole 2.3 ignores it), :last; an invalid field */
	CHECK_STR(RUND("if date :index 2 :originalzone \"received\" \"zone\" \"-0500\" {"
		       " fileinto \"i2\"; }"
		       "if date :index 2 :last :originalzone \"received\" \"second\" \"59\" {"
		       " fileinto \"last2\"; }"
		       "if date :index 1 :last \"received\" \"year\" \"2026\" { fileinto \"no\"; }"
		       "if date :index 3 :count \"eq\" :comparator \"i;ascii-numeric\" \"received\""
		       " \"year\" \"0\" { fileinto \"c0\"; }"
		       "if date :index 4 \"received\" \"year\" \"2026\" { fileinto \"no2\"; }"),
		  "fileinto i2|fileinto last2|fileinto c0|");
	/* calendar rules, obsolete forms, leap years */
	CHECK_STR(RUND("if date \"date\" \"year\" \"2025\" { fileinto \"feb29-2025\"; }"
		       "if date :originalzone \"x-leap\" \"date\" \"2024-02-29\" { fileinto \"leap\"; }"
		       "if date :zone \"+0000\" \"x-leap\" \"iso8601\" \"2024-03-01T00:30:00Z\" {"
		       " fileinto \"leap-utc\"; }"
		       "if date :zone \"+0000\" \"x-obs\" \"iso8601\" \"1999-03-01T19:01:00Z\" {"
		       " fileinto \"obs\"; }"
		       "if date :originalzone \"x-three\" \"year\" \"2005\" { fileinto \"three\"; }"
		       "if date :originalzone \"x-three\" \"zone\" \"+0000\" { fileinto \"gmt\"; }"
		       "if anyof (date \"x-bad1\" \"year\" \"2026\", date \"x-bad2\" \"year\" \"2026\","
		       " date \"x-bad3\" \"year\" \"2026\", date \"x-bad4\" \"year\" \"2026\","
		       " date \"x-bad5\" \"year\" \"2026\", date \"x-none\" \"year\" \"2026\") {"
		       " fileinto \"bad\"; }"),
		  "fileinto leap|fileinto leap-utc|fileinto obs|fileinto three|fileinto gmt|");
	/* relational on dates */
	CHECK_STR(RUND("if date :value \"lt\" :zone \"+0000\" \"received\" \"date\" \"2026-12-08\" {"
		       " fileinto \"before\"; }"
		       "if date :value \"ge\" :comparator \"i;ascii-numeric\" :zone \"+0000\""
		       " \"received\" \"julian\" \"61381\" { fileinto \"mjd\"; }"),
		  "fileinto before|fileinto mjd|");
	/* currentdate: one instant per run (2026-12-06 10:00:00 UTC, a Sunday);
	 * the local zone is the server's */
	run_now = 1796551200;
	CHECK_STR(RUND("if currentdate :zone \"+0000\" :matches \"std11\" \"*\" { set \"a\" \"${0}\"; }"
		       "if currentdate :zone \"+1400\" :matches \"date\" \"*\" { set \"b\" \"${0}\"; }"
		       "if currentdate :zone \"-1000\" :matches \"iso8601\" \"*\" { set \"c\" \"${0}\"; }"
		       "if currentdate :zone \"+0000\" \"weekday\" \"0\" { set \"d\" \"sunday\"; }"
		       "if currentdate :count \"eq\" :comparator \"i;ascii-numeric\" \"year\" \"1\" {"
		       " set \"e\" \"one\"; }"
		       "fileinto \"${a}|${b}|${c}|${d}|${e}\";"),
		  "fileinto Sun, 06 Dec 2026 10:00:00 +0000|2026-12-07|2026-12-06T00:00:00-10:00|"
		  "sunday|one|");
	run_now = 0;
	CHECK_STR(RUND("if currentdate :value \"ge\" \"year\" \"2024\" { fileinto \"clock\"; }"),
		  "fileinto clock|");
	/* index on header and address, counted over the names in order */
	CHECK_STR(RUND("if header :index 2 :contains \"received\" \"by d\" { fileinto \"h2\"; }"
		       "if header :index 1 :last :contains \"received\" \"not a date\" {"
		       " fileinto \"hl\"; }"
		       "if header :index 5 :matches [\"received\", \"date\", \"x-leap\"] \"29 Feb*\" {"
		       " fileinto \"h5\"; }"
		       "if header :index 4 :contains \"received\" \"\" { fileinto \"no\"; }"),
		  "fileinto h2|fileinto hl|fileinto h5|");
#undef RUND
}

TEST(sieve_vacation_with_variables)
{
	/* the compile-time checks of vacation apply to expanded values */
	CHECK_STR(run("require [\"vacation\", \"variables\"]; set \"s\" text:\r\nHi\r\nBcc: x@y.z\r\n"
		      ".\r\n; vacation :subject \"${s}\" \"x\";"),
		  "E:vacation :subject has a line break|keep*|");
	CHECK_STR(run("require [\"vacation\", \"variables\"]; set \"f\" \"nobody\";"
		      " vacation :from \"${f}\" \"x\";"),
		  "E:vacation :from \"nobody\" is not a valid address|keep*|");
	CHECK_STR(run("require [\"vacation\", \"variables\"]; set \"a\" \"me\";"
		      " vacation :addresses [\"${a}@x.y\", \"${a}\"] \"x\";"),
		  "E:vacation :addresses \"me\" is not an address|keep*|");
	CHECK_STR(run("require [\"vacation\", \"variables\"]; set \"h\" \"Subject: \xc3\xa4\";"
		      " vacation :mime \"${h}\n\nbody\";"),
		  "E:vacation :mime header has 8-bit characters|keep*|");
	CHECK_STR(run("require [\"vacation\", \"variables\"]; if header :matches \"From\" \"*<*>\" {"
		      " vacation :subject \"Re: ${1}\" :from \"${2}\" :handle \"${2}\" \"Away\"; }"),
		  "vacation Away 604800s h:alice@example.org s=Re: Alice  f=alice@example.org|keep*|");
}

static const char dup_msg[] = "From: a@example.org\r\n"
			      "Message-ID:  <m1@example.org> \r\n"
			      "X-List: one\r\n"
			      "\r\n"
			      "body\r\n";

TEST(sieve_duplicate)
{
	const char *req = "require [\"duplicate\", \"fileinto\", \"variables\"];";
	char s[1024];
#define RUNDUP(body) (snprintf(s, sizeof s, "%s%s", req, body), run_on(s, dup_msg, NULL))
	memset(dup_list, 0, sizeof dup_list);
	/* not seen: false, the Message-ID (trimmed) to record */
	CHECK_STR(RUNDUP("if duplicate { discard; }"), "keep*|dup /<m1@example.org> 0s|");
	dup_list[0] = "/<m1@example.org>";
	CHECK_STR(RUNDUP("if duplicate { discard; }"), "discard|dup /<m1@example.org> 0s seen|");
	/* handles are independent; :seconds and :last kept */
	CHECK_STR(RUNDUP("if duplicate :handle \"h\" :seconds 60 :last { discard; }"),
		  "keep*|dup h/<m1@example.org> 60s last|");
	/* :header and :uniqueid; the same ID twice in a run answers the same
	 * and is one entry, a later :last refreshing it */
	CHECK_STR(RUNDUP("if duplicate :header \"x-list\" { fileinto \"a\"; }"
			 "if duplicate :uniqueid \"one\" :seconds 5 :last { fileinto \"b\"; }"),
		  "keep*|dup /one 5s last|");
	dup_list[1] = "/one";
	CHECK_STR(RUNDUP("if duplicate :uniqueid \"${x}one\" { fileinto \"a\"; }"),
		  "fileinto a|dup /one 0s seen|");
	/* no such field: no ID, false, nothing recorded */
	CHECK_STR(RUNDUP("if duplicate :header \"X-None\" { discard; }"), "keep*|");
	/* a runtime error records nothing; a list error is a runtime error */
	dup_list[2] = "err/x";
	CHECK_STR(RUNDUP("if duplicate :handle \"err\" :uniqueid \"x\" { discard; }"),
		  "E:duplicate: the tracking list cannot be read|keep*|");
	CHECK_STR(RUNDUP("if duplicate { fileinto \"\"; }"), "E:fileinto an empty mailbox name|keep*|");
	/* compile errors */
	CHECK_STR(check("require \"duplicate\"; if duplicate :header \"a\" :uniqueid \"b\" {}"),
		  "1:47: tagged argument ':uniqueid' given twice or conflicting");
	CHECK_STR(check("require \"duplicate\"; if duplicate :days 1 {}"),
		  "1:35: unknown tagged argument ':days' for duplicate");
	CHECK_STR(check("require \"duplicate\"; if duplicate :header \"\" {}"),
		  "1:25: duplicate :header needs a field name");
	CHECK_STR(check("require \"duplicate\"; if duplicate \"x\" {}"),
		  "1:35: too many arguments for duplicate");
	CHECK_STR(check("if duplicate {}"), "1:4: test 'duplicate' needs its extension in require");
	CHECK_STR(check("require \"duplicate\"; if duplicate :last :seconds 0 :handle \"\" {}"), "OK");
	memset(dup_list, 0, sizeof dup_list);
#undef RUNDUP
}

static const char edit_msg[] = "Return-Path: <a@example.org>\r\n"
			       "Received: from x by y; Mon, 7 Dec 2026 10:00:00 +0000\r\n"
			       "X-A: one\r\n"
			       "Subject: hi\r\n"
			       "X-A: two\r\n"
			       "X-A:  three\r\n"
			       "\t folded\r\n"
			       "Auto-Submitted: auto-generated\r\n"
			       "\r\n"
			       "body\r\n";

TEST(sieve_editheader)
{
	const char *req = "require [\"editheader\", \"fileinto\", \"variables\"];";
	char s[2048];
#define RUNE(body) (snprintf(s, sizeof s, "%s%s", req, body), run_on(s, edit_msg, NULL))
	/* addheader goes first (after Return-Path), :last at the end; later
	 * tests see it; the implicit keep gets the final header; kept fields
	 * byte for byte */
	CHECK_STR(RUNE("addheader \"X-New\" \"v1\"; addheader :last \"X-End\" \"v2\";"
		       "if header :is \"x-new\" \"v1\" { addheader \"X-Seen\" \"yes\"; }"),
		  "keep* {Return-Path: <a@example.org>/X-Seen: yes/X-New: v1/Received: from x by y;"
		  " Mon, 7 Dec 2026 10:00:00 +0000/X-A: one/Subject: hi/X-A: two/X-A:  three/\t "
		  "folded/Auto-Submitted: auto-generated/X-End: v2//}|");
	/* an action before an edit has the header as it was then (here: as
	 * received, so none); RFC 5293 7's example leaves the message as is */
	CHECK_STR(RUNE("fileinto \"a\"; addheader \"X-Hello\" \"World\";"
		       "deleteheader :index 1 \"X-Hello\"; fileinto \"b\";"),
		  "fileinto a|fileinto b {Return-Path: <a@example.org>/Received: from x by y; Mon, 7 "
		  "Dec 2026 10:00:00 +0000/X-A: one/Subject: hi/X-A: two/X-A:  three/\t folded/"
		  "Auto-Submitted: auto-generated//}|");
	/* deleteheader: all, :index, :index :last, value patterns (unfolded,
	 * as the header test sees them), the first and third of three */
	CHECK_STR(RUNE("deleteheader \"x-a\"; if not exists \"X-A\" { fileinto \"gone\"; }"),
		  "fileinto gone {Return-Path: <a@example.org>/Received: from x by y; Mon, 7 Dec 2026 "
		  "10:00:00 +0000/Subject: hi/Auto-Submitted: auto-generated//}|");
	CHECK_STR(RUNE("deleteheader :index 1 \"X-A\"; deleteheader :index 2 \"X-A\";"
		       "if header :is \"X-A\" \"two\" { fileinto \"t\"; }"),
		  "fileinto t {Return-Path: <a@example.org>/Received: from x by y; Mon, 7 Dec 2026 "
		  "10:00:00 +0000/Subject: hi/X-A: two/Auto-Submitted: auto-generated//}|");
	CHECK_STR(RUNE("deleteheader :index 1 :last :contains \"X-A\" \"three\";"
		       "deleteheader :index 1 :contains \"X-A\" \"two\";"
		       "deleteheader :matches \"subject\" \"h*\"; if exists \"subject\" { fileinto \"s\"; }"),
		  "keep* {Return-Path: <a@example.org>/Received: from x by y; Mon, 7 Dec 2026 "
		  "10:00:00 +0000/X-A: one/X-A: two/Auto-Submitted: auto-generated//}|");
	CHECK_STR(RUNE("deleteheader :is \"X-A\" \"three\t folded\"; deleteheader :index 9 \"X-A\";"),
		  "keep* {Return-Path: <a@example.org>/Received: from x by y; Mon, 7 Dec 2026 "
		  "10:00:00 +0000/X-A: one/Subject: hi/X-A: two/Auto-Submitted: auto-generated//}|");
	/* protected: ignored, so nothing changes */
	CHECK_STR(RUNE("deleteheader \"received\"; deleteheader \"Auto-Submitted\";"
		       "deleteheader \"return-path\"; addheader \"Received\" \"forged\";"),
		  "keep*|");
	/* UTF-8 values as RFC 2047 words, long values folded at 78; the
	 * header test decodes them again */
	CHECK_STR(RUNE("deleteheader \"x-a\"; deleteheader \"subject\";"
		       "addheader \"Subject\" \"Gr\xc3\xbc\xc3\x9f""e\";"
		       "if header :is \"subject\" \"Gr\xc3\xbc\xc3\x9f""e\" { fileinto \"u\"; }"),
		  "fileinto u {Return-Path: <a@example.org>/Subject: =?UTF-8?B?R3LDvMOfZQ==?=/"
		  "Received: from x by y; Mon, 7 Dec 2026 10:00:00 +0000/"
		  "Auto-Submitted: auto-generated//}|");
	CHECK_STR(RUNE("deleteheader \"x-a\"; addheader :last \"X-Long\" \"aaaa bbbb cccc dddd eeee "
		       "ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn oooo pppp\";"),
		  "keep* {Return-Path: <a@example.org>/Received: from x by y; Mon, 7 Dec 2026 "
		  "10:00:00 +0000/Subject: hi/Auto-Submitted: auto-generated/X-Long: aaaa bbbb cccc "
		  "dddd eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm nnnn/ oooo pppp//}|");
	/* a line break in a value is encoded, never a new field */
	CHECK_STR(RUNE("deleteheader \"x-a\"; addheader :last \"X-B\" \"a\r\nBcc: x@y\";"
		       "if header :is \"x-b\" \"a\r\nBcc: x@y\" { fileinto \"b\"; }"
		       "if exists \"bcc\" { fileinto \"bad\"; }"),
		  "fileinto b {Return-Path: <a@example.org>/Received: from x by y; Mon, 7 Dec 2026 "
		  "10:00:00 +0000/Subject: hi/Auto-Submitted: auto-generated/"
		  "X-B: =?UTF-8?B?YQ0KQmNjOiB4QHk=?=//}|");
	/* keep; addheader; keep: one copy (RFC 5293 7) */
	CHECK_STR(RUNE("keep; addheader \"X-Flavor\" \"vanilla\"; keep;"), "keep|");
	/* a runtime error: the implicit keep with the message as received */
	CHECK_STR(RUNE("addheader \"X-A\" \"b\"; fileinto \"\";"),
		  "E:fileinto an empty mailbox name|keep*|");
	/* names: checked at compile time, or at run time from a variable */
	CHECK_STR(check("require \"editheader\"; addheader \"X A\" \"v\";"),
		  "1:23: addheader: \"X A\" is not a valid field name");
	CHECK_STR(check("require \"editheader\"; deleteheader \"a:b\";"),
		  "1:23: deleteheader: \"a:b\" is not a valid field name");
	CHECK_STR(RUNE("set \"n\" \"bad name\"; addheader \"${n}\" \"v\";"),
		  "E:addheader: \"bad name\" is not a valid field name|keep*|");
	CHECK_STR(check("require \"editheader\"; deleteheader :last \"a\";"),
		  "1:23: :last without :index");
	CHECK_STR(check("require \"editheader\"; addheader :index 1 \"a\" \"b\";"),
		  "1:33: unknown tagged argument ':index' for addheader");
	CHECK_STR(check("require \"editheader\"; addheader \"a\";"),
		  "1:36: too few arguments for addheader");
	CHECK_STR(check("require \"editheader\"; deleteheader \"a\" [\"b\", \"c\"];"), "OK");
	CHECK_STR(check("require \"editheader\"; if header :index 1 \"a\" \"b\" {}"),
		  "1:33: unknown tagged argument ':index' for header");
	/* a word longer than a line stays whole on its own line */
	CHECK_STR(RUNE("deleteheader \"x-a\"; addheader \"X-P\" \"a "
		       "01234567890123456789012345678901234567890123456789012345678901234567890123456789"
		       " b\";"),
		  "keep* {Return-Path: <a@example.org>/X-P: a/ "
		  "01234567890123456789012345678901234567890123456789012345678901234567890123456789/"
		  " b/Received: from x by y; Mon, 7 Dec 2026 10:00:00 +0000/Subject: hi/"
		  "Auto-Submitted: auto-generated//}|");
#undef RUNE
}

TEST(sieve_editheader_limit)
{
	/* 4096-byte values (the variable limit) added until 64 KiB is passed */
	struct buf b = BUF_INIT;
	buf_puts(&b, "require [\"editheader\", \"variables\"]; set \"v\" \"");
	for (int i = 0; i < 4000; i++)
		buf_putc(&b, 'a' + i % 26);
	buf_puts(&b, "\";");
	for (int i = 0; i < 17; i++)
		buf_puts(&b, "addheader \"X-Big\" \"${v}\";");
	CHECK_STR(run_on(buf_cstr(&b), edit_msg, NULL),
		  "E:addheader: more than 65536 bytes added|keep*|");
	buf_free(&b);
}

TEST(sieve_include)
{
	memset(inc_scripts, 0, sizeof inc_scripts);
	inc_scripts[0][0] = "p:lib";
	inc_scripts[0][1] = "require [\"fileinto\", \"include\", \"variables\"];"
			    " global \"box\"; if string :is \"${box}\" \"\" { return; }"
			    " fileinto \"${box}\"; set \"local\" \"lib\";";
	inc_scripts[1][0] = "g:spam";
	inc_scripts[1][1] = "require [\"fileinto\", \"include\"];"
			    " if header :contains \"subject\" \"more\" { fileinto \"Spam\"; stop; }";
	inc_scripts[2][0] = "p:loop";
	inc_scripts[2][1] = "require \"include\"; include \"loop\";";
	inc_scripts[3][0] = "p:bad";
	inc_scripts[3][1] = "require \"include\"; frob;";
	inc_scripts[4][0] = "p:count";
	inc_scripts[4][1] = "require [\"include\", \"variables\"];"
			    " set \"global.n\" \"${global.n}x\";";
	inc_scripts[5][0] = "p:deep";
	inc_scripts[5][1] = "require [\"include\", \"variables\"]; set \"global.d\" \"${global.d}.\";"
			    " include \"deep2\";";
	inc_scripts[6][0] = "p:deep2";
	inc_scripts[6][1] = "require \"include\"; include \"deep\";";
	const char *req = "require [\"include\", \"variables\", \"fileinto\"];";
	char s[2048];
#define RUNI(body) (snprintf(s, sizeof s, "%s%s", req, body), run(s))
	/* globals shared, locals not; actions add up, one implicit keep */
	CHECK_STR(RUNI("global \"box\"; set \"box\" \"Lists\"; set \"local\" \"main\";"
		       " include \"lib\"; fileinto \"${local}\";"),
		  "fileinto Lists|fileinto main|");
	/* return ends the included script only; without the global set */
	CHECK_STR(RUNI("include :personal \"lib\"; fileinto \"after\";"), "fileinto after|");
	/* stop in an included script ends everything; :global */
	CHECK_STR(RUNI("include :global \"spam\"; fileinto \"not-reached\";"), "fileinto Spam|");
	/* :once; the global namespace without declaring */
	CHECK_STR(RUNI("include \"count\"; include :once \"count\"; include \"count\";"
		       " fileinto \"n${global.n}\";"),
		  "fileinto nxx|");
	/* :optional skips a missing script; missing is a runtime error */
	CHECK_STR(RUNI("include :optional \"none\"; fileinto \"ok\";"), "fileinto ok|");
	CHECK_STR(RUNI("include \"none\"; fileinto \"ok\";"),
		  "E:include: no personal script \"none\"|keep*|");
	CHECK_STR(RUNI("include :global :optional \"lib\";"), "keep*|");
	/* loops, errors in included scripts, a read error */
	CHECK_STR(RUNI("include \"loop\";"),
		  "E:include: personal script \"loop\" includes itself|keep*|");
	CHECK_STR(RUNI("include \"deep\";"),
		  "E:include: personal script \"deep\" includes itself|keep*|");
	CHECK_STR(RUNI("include \"bad\";"),
		  "E:include: personal script \"bad\" 1:20: unknown command 'frob'|keep*|");
	CHECK_STR(RUNI("include :optional \"err\";"),
		  "E:include: the personal script \"err\" cannot be read|keep*|");
	/* return at the top is stop */
	CHECK_STR(RUNI("fileinto \"a\"; return; fileinto \"b\";"), "fileinto a|");
	/* compile errors */
	CHECK_STR(check("require \"include\"; include :personal :global \"a\";"),
		  "1:38: tagged argument ':global' given twice or conflicting");
	CHECK_STR(check("require [\"include\", \"variables\"]; include \"${a}\";"),
		  "1:35: include takes a constant script name");
	CHECK_STR(check("require \"include\"; include \"a/b\";"),
		  "1:20: include: \"a/b\" is not a script name");
	CHECK_STR(check("require \"include\"; global \"a\";"),
		  "1:20: global needs \"variables\" in require");
	CHECK_STR(check("require [\"include\", \"variables\"]; set \"a\" \"1\"; global \"a\";"),
		  "1:48: variable \"a\" declared global after its use");
	CHECK_STR(check("require [\"include\", \"variables\"]; global [\"a\", \"b\"]; set \"a\" \"1\";"
			" set \"global.c\" \"${global.c}\";"),
		  "OK");
	CHECK_STR(check("require \"variables\"; set \"global.c\" \"1\";"),
		  "1:22: invalid variable name \"global.c\"");
	CHECK_STR(check("require \"include\"; include :once :optional \"a\"; return;"), "OK");
	memset(inc_scripts, 0, sizeof inc_scripts);
#undef RUNI
}

TEST(sieve_environment)
{
	const char *req = "require [\"environment\", \"fileinto\", \"variables\", \"relational\"];";
	char s[1024];
#define RUNV(body) (snprintf(s, sizeof s, "%s%s", req, body), run(s))
	CHECK_STR(RUNV("if environment :is \"host\" \"mx.example.com\" { fileinto \"h\"; }"
		       "if environment \"LOCATION\" \"mda\" { fileinto \"l\"; }"
		       "if environment :matches \"host\" \"*.example.com\" { fileinto \"${1}\"; }"
		       "if environment :is \"remote-host\" \"\" { fileinto \"rh\"; }"),
		  "fileinto h|fileinto l|fileinto mx|fileinto rh|");
	/* an item not given is unknown: false, a count of 0 */
	CHECK_STR(RUNV("if environment :contains \"version\" \"\" { fileinto \"v\"; }"
		       "if environment :count \"eq\" \"version\" \"0\" { fileinto \"none\"; }"),
		  "fileinto none|");
	CHECK_STR(check("if environment \"host\" \"x\" {}"),
		  "1:4: test 'environment' needs its extension in require");
	CHECK_STR(check("require \"environment\"; if environment \"host\" {}"),
		  "1:46: too few arguments for environment");
#undef RUNV
}

TEST(sieve_ihave)
{
	/* supported: true, and the block may use the extension unrequired */
	CHECK_STR(run("require \"ihave\"; if ihave \"fileinto\" { fileinto \"a\"; }"), "fileinto a|");
	CHECK_STR(run("require \"ihave\"; if allof (true, ihave [\"fileinto\", \"copy\"]) {"
		      " fileinto :copy \"B\"; }"),
		  "fileinto B :copy|keep*|");
	/* variables must be required: ihave says it is missing */
	CHECK_STR(run("require [\"ihave\", \"variables\"]; if ihave \"variables\" { frob; }"
		      " else { set \"a\" \"b\"; }"),
		  "keep*|");
	/* outside the block the extension is not enabled */
	CHECK_STR(check("require \"ihave\"; if ihave \"fileinto\" { } fileinto \"a\";"),
		  "1:42: command 'fileinto' needs its extension in require");
	/* not supported: false; the block is read for syntax only */
	CHECK_STR(run("require [\"ihave\", \"fileinto\"]; if ihave \"x-frobnicate\" {"
		      " frobnicate :fast 3 [\"a\", \"b\"] { deeper (x, y :z \"q\"); } }"
		      " elsif ihave [\"fileinto\", \"x-nope\"] { fileinto :nope \"n\"; }"
		      " else { fileinto \"else\"; }"),
		  "fileinto else|");
	CHECK_STR(check("require \"ihave\"; if ihave \"x-frob\" { frob \"a\" }"),
		  "1:47: expected ';', found '}'");
	CHECK_STR(check("require \"ihave\"; if not ihave \"x-frob\" { frob; }"),
		  "1:42: unknown command 'frob'");
	/* error ends the run: the implicit keep */
	CHECK_STR(run("require [\"ihave\", \"fileinto\"]; fileinto \"a\";"
		      " if not ihave \"x-frob\" { error \"no frob here\"; }"),
		  "E:error: no frob here|keep*|");
	CHECK_STR(check("if ihave \"fileinto\" {}"), "1:4: test 'ihave' needs its extension in require");
	CHECK_STR(check("require [\"ihave\", \"variables\"]; if ihave \"${x}\" {}"),
		  "1:36: ihave takes constant names");
}

TEST(sieve_encoded_character)
{
	const char *req = "require [\"encoded-character\", \"fileinto\", \"imap4flags\"];";
	char s[1024];
#define RUNE(body) (snprintf(s, sizeof s, "%s%s", req, body), run(s))
	/* the examples of RFC 5228 2.4.2.4, as the mailbox name */
	CHECK_STR(RUNE("fileinto \"$${hex:40}\";"), "fileinto $@|");
	CHECK_STR(RUNE("fileinto \"${hex: 40 }\";"), "fileinto @|");
	CHECK_STR(RUNE("fileinto \"${HEX: 40}\";"), "fileinto @|");
	CHECK_STR(RUNE("fileinto \"${hex:40\";"), "fileinto ${hex:40|");
	CHECK_STR(RUNE("fileinto \"${hex:400}\";"), "fileinto ${hex:400}|");
	CHECK_STR(RUNE("fileinto \"${hex:4${hex:30}}\";"), "fileinto ${hex:40}|");
	CHECK_STR(RUNE("fileinto \"${unicode:40}\";"), "fileinto @|");
	CHECK_STR(RUNE("fileinto \"${ unicode:40}\";"), "fileinto ${ unicode:40}|");
	CHECK_STR(RUNE("fileinto \"${UNICODE:40}\";"), "fileinto @|");
	CHECK_STR(RUNE("fileinto \"${UnICoDE:0000040}\";"), "fileinto @|");
	CHECK_STR(RUNE("fileinto \"${Unicode:40}\";"), "fileinto @|");
	CHECK_STR(RUNE("fileinto \"${Unicode:Cool}\";"), "fileinto ${Unicode:Cool}|");
	CHECK_STR(check("require \"encoded-character\";\nif header \"x\" \"${unicode:200000}\" {}"),
		  "2:15: encoded character outside 0..D7FF and E000..10FFFF");
	CHECK_STR(check("require \"encoded-character\"; redirect \"${Unicode:DF01}\";"),
		  "1:39: encoded character outside 0..D7FF and E000..10FFFF");
	/* a NUL: refused (Tern's strings would end there) */
	CHECK_STR(check("require \"encoded-character\";\r\nredirect \"a${hex:41 0}@b.c\";"),
		  "2:10: encoded NUL character not supported");
	CHECK_STR(check("require \"encoded-character\"; redirect \"${unicode:0000}\";"),
		  "1:39: encoded NUL character not supported");
	CHECK_STR(RUNE("fileinto \"${hex:00 x}\";"), "fileinto ${hex:00 x}|");
	/* an out-of-range value in a sequence that is not well-formed is no error */
	CHECK_STR(RUNE("fileinto \"${unicode:DF01 x}\";"), "fileinto ${unicode:DF01 x}|");
	CHECK_STR(RUNE("fileinto \"${unicode:FFFFFFFFFFFFFFFFFF\";"),
		  "fileinto ${unicode:FFFFFFFFFFFFFFFFFF|");
	/* several values, blanks (SP, HTAB, CRLF) around and between them */
	CHECK_STR(RUNE("fileinto \"a${hex:62\t63 \r\n 64}e${unicode: 263a 10FFFF E000 }\";"),
		  "fileinto abcde\xe2\x98\xba\xf4\x8f\xbf\xbf\xee\x80\x80|");
	CHECK_STR(RUNE("fileinto \"${hex:}${hex: }${unicode:}${hex:4 }${hex:4\n1}\";"),
		  "fileinto ${hex:}${hex: }${unicode:}\x04${hex:4\n1}|");
	/* after escapes, in multi-line strings, in every argument; not in the
	 * require itself, nor in a script that does not require it */
	CHECK_STR(RUNE("fileinto \"\\${hex:41}\";"), "fileinto A|");
	CHECK_STR(RUNE("fileinto text:\r\n${hex:41 42}\r\n.\r\n;"), "fileinto AB\r\n|");
	CHECK_STR(RUNE("if header :contains \"${hex:53 75 62 6a 65 63 74}\" \"${unicode:fc}\" "
		       "{ fileinto :flags \"${hex:5c}Seen\" \"x\"; }"),
		  "fileinto x +\\Seen|");
	CHECK_STR(run("require \"fileinto\"; fileinto \"${hex:41}\";"), "fileinto ${hex:41}|");
	CHECK_STR(check("require \"encoded-character${hex:00}\";"),
		  "1:1: unsupported extension \"encoded-character${hex:00}\"");
	/* decoded before variables are expanded; a decoded "${" refers to a variable */
	CHECK_STR(run("require [\"encoded-character\", \"variables\", \"fileinto\"];"
		      "set \"a\" \"x\"; fileinto \"${hex:24}{a}-${a}\";"),
		  "fileinto x-x|");
	/* ihave (RFC 5463) enables it for the block */
	CHECK_STR(run("require [\"ihave\", \"fileinto\"]; if ihave \"encoded-character\" "
		      "{ fileinto \"${hex:41}\"; } fileinto \"${hex:42}\";"),
		  "fileinto A|fileinto ${hex:42}|");
#undef RUNE
}

TEST(sieve_spamtest)
{
	const char *req = "require [\"spamtest\", \"fileinto\", \"relational\", "
			  "\"comparator-i;ascii-numeric\"];";
	const char *reqp = "require [\"spamtestplus\", \"fileinto\", \"relational\", "
			   "\"comparator-i;ascii-numeric\"];";
	char s[1024];
#define RUNS(r, body) (snprintf(s, sizeof s, "%s%s", r, body), run(s))
	const char *rfc = /* RFC 5235 3.2.1 */
	    "if spamtest :value \"eq\" :comparator \"i;ascii-numeric\" \"0\""
	    " { fileinto \"INBOX.unclassified\"; }"
	    " elsif spamtest :value \"ge\" :comparator \"i;ascii-numeric\" \"3\""
	    " { fileinto \"INBOX.spam-trap\"; }";
	memset(spam_in, 0, sizeof spam_in);
	CHECK_STR(RUNS(req, rfc), "fileinto INBOX.unclassified|");
	spam_in[0] = "7";
	spam_in[1] = "70";
	CHECK_STR(RUNS(req, rfc), "fileinto INBOX.spam-trap|");
	spam_in[0] = "2";
	CHECK_STR(RUNS(req, rfc), "keep*|");
	/* not tested: "0" for :is and :value, a :count of 0; tested: 1 */
	memset(spam_in, 0, sizeof spam_in);
	CHECK_STR(RUNS(req, "if spamtest \"0\" { fileinto \"is0\"; }"
			    "if spamtest :count \"eq\" :comparator \"i;ascii-numeric\" \"0\""
			    " { fileinto \"count0\"; }"),
		  "fileinto is0|fileinto count0|");
	spam_in[0] = "10";
	spam_in[1] = "100";
	CHECK_STR(RUNS(reqp, "if spamtest :count \"eq\" :comparator \"i;ascii-numeric\" \"1\""
			     " { fileinto \"count1\"; }"
			     "if spamtest :percent :is \"100\" { fileinto \"p100\"; }"
			     "if spamtest :matches \"1?\" { fileinto \"m\"; }"
			     "if spamtest :percent :value \"lt\" :comparator \"i;ascii-numeric\" \"37\""
			     " { fileinto \"low\"; }"),
		  "fileinto count1|fileinto p100|fileinto m|");
	/* RFC 5235 3.2.2's example */
	const char *rfcp =
	    "if spamtest :value \"eq\" :comparator \"i;ascii-numeric\" \"0\""
	    " { fileinto \"INBOX.unclassified\"; }"
	    " elsif spamtest :percent :value \"eq\" :comparator \"i;ascii-numeric\" \"0\""
	    " { fileinto \"INBOX.not-spam\"; }"
	    " elsif spamtest :percent :value \"lt\" :comparator \"i;ascii-numeric\" \"37\""
	    " { fileinto \"INBOX.spam-trap\"; } else { discard; }";
	spam_in[0] = "1";
	spam_in[1] = "0";
	CHECK_STR(RUNS(reqp, rfcp), "fileinto INBOX.not-spam|");
	spam_in[0] = "4";
	spam_in[1] = "36";
	CHECK_STR(RUNS(reqp, rfcp), "fileinto INBOX.spam-trap|");
	spam_in[1] = "37";
	CHECK_STR(RUNS(reqp, rfcp), "discard|");
	memset(spam_in, 0, sizeof spam_in);
	CHECK_STR(RUNS(reqp, rfcp), "fileinto INBOX.unclassified|");
	/* :percent needs spamtestplus (RFC 5235 3.2) */
	CHECK_STR(check("require \"spamtest\"; if spamtest :percent \"0\" {}"),
		  "1:33: unknown tagged argument ':percent' for spamtest");
	CHECK_STR(check("require [\"spamtest\", \"spamtestplus\"]; if spamtest :percent \"0\" {}"),
		  "OK");
	CHECK_STR(check("if spamtest \"0\" {}"), "1:4: test 'spamtest' needs its extension in require");
	CHECK_STR(check("require \"spamtestplus\"; if spamtest :percent :percent \"0\" {}"),
		  "1:46: tagged argument ':percent' given twice or conflicting");
	CHECK_STR(check("require \"spamtest\"; if spamtest [\"1\", \"2\"] {}"),
		  "1:33: spamtest expects a string here, not a list");
	/* virustest: Tern's callers give none, "not tested" */
	const char *reqv = "require [\"virustest\", \"fileinto\", \"relational\", "
			   "\"comparator-i;ascii-numeric\"];";
	CHECK_STR(RUNS(reqv, "if virustest :value \"eq\" :comparator \"i;ascii-numeric\" \"0\""
			     " { fileinto \"unclassified\"; }"
			     "if virustest :count \"eq\" :comparator \"i;ascii-numeric\" \"0\""
			     " { fileinto \"notdone\"; }"
			     "if virustest :value \"ge\" :comparator \"i;ascii-numeric\" \"4\""
			     " { discard; }"),
		  "fileinto unclassified|fileinto notdone|");
	spam_in[2] = "5";
	CHECK_STR(RUNS(reqv, "if virustest :value \"ge\" :comparator \"i;ascii-numeric\" \"4\""
			     " { discard; }"),
		  "discard|");
	CHECK_STR(check("require \"virustest\"; if virustest :percent \"0\" {}"),
		  "1:35: unknown tagged argument ':percent' for virustest");
	memset(spam_in, 0, sizeof spam_in);
#undef RUNS
}
