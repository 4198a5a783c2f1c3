/*
 * test-apppass.c - unit tests for src/auth/apppass.c (making and
 * recognising app passwords) and for the app-password path of
 * src/auth/sasl.c: found by id, one hash, main password still working,
 * the matched name reported, lookups failing.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "apppass.h"
#include "password.h"
#include "sasl.h"
#include "test.h"

/* True if every symbol of text is in the alphabet and the dashes are at
 * 4, 9 and 14. */
static bool shape_ok(const char *text)
{
	if (strlen(text) != APPPASS_TEXT_SIZE - 1)
		return false;
	for (size_t i = 0; text[i] != '\0'; i++) {
		if (i % 5 == 4) {
			if (text[i] != '-')
				return false;
		} else if (strchr(APPPASS_ALPHABET, text[i]) == NULL) {
			return false;
		}
	}
	return true;
}

TEST(apppass_alphabet_has_32_unambiguous_symbols)
{
	CHECK_INT(strlen(APPPASS_ALPHABET), 32);
	for (const char *c = "01lo"; *c; c++)
		CHECK(strchr(APPPASS_ALPHABET, *c) == NULL);
	static const char alphabet[] = APPPASS_ALPHABET;
	for (size_t i = 0; i < 32; i++)
		CHECK(strchr(&alphabet[i + 1], alphabet[i]) == NULL);
}

TEST(apppass_generate_shape_and_randomness)
{
	char text[APPPASS_TEXT_SIZE], id[APPPASS_ID_SIZE];
	char first[APPPASS_TEXT_SIZE] = "";
	unsigned seen[32] = {0};
	for (int i = 0; i < 200; i++) {
		CHECK_INT(apppass_generate(text, id), 0);
		CHECK(shape_ok(text));
		CHECK_INT(strlen(id), APPPASS_ID_LEN);
		CHECK(strncmp(text, id, APPPASS_ID_LEN) == 0);
		if (i == 0)
			memcpy(first, text, sizeof first);
		else
			CHECK(strcmp(first, text) != 0);
		for (size_t k = 0; text[k]; k++)
			if (text[k] != '-')
				seen[strchr(APPPASS_ALPHABET, text[k]) - APPPASS_ALPHABET]++;
		/* what it makes, it recognises, unchanged */
		char t2[APPPASS_TEXT_SIZE], id2[APPPASS_ID_SIZE];
		CHECK(apppass_parse(text, strlen(text), t2, id2));
		CHECK_STR(t2, text);
		CHECK_STR(id2, id);
	}
	/* 3200 symbols: every one of the 32 turns up (each ~100 times). */
	for (size_t k = 0; k < 32; k++)
		CHECK(seen[k] > 30);
}

TEST(apppass_parse_forms)
{
	char text[APPPASS_TEXT_SIZE], id[APPPASS_ID_SIZE];
	static const char *const same[] = {
	    "kq7m-2xhz-9tbe-wpa3", "kq7m2xhz9tbewpa3", "KQ7M-2XHZ-9TBE-WPA3",
	    "kq7m 2xhz 9tbe wpa3", "Kq7m2xhZ9tbeWpa3",
	};
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		memset(text, 0, sizeof text);
		CHECK(apppass_parse(same[i], strlen(same[i]), text, id));
		CHECK_STR(text, "kq7m-2xhz-9tbe-wpa3");
		CHECK_STR(id, "kq7m");
	}
	static const char *const other[] = {
	    "",
	    "kq7m-2xhz-9tbe",       /* short */
	    "kq7m-2xhz-9tbe-wpa3a", /* long */
	    "kq7m-2xhz-9tbe-wpa",   /* 15 symbols + 3 dashes */
	    "kq7m-2xhz 9tbe-wpa3",  /* mixed separators */
	    "kq7m_2xhz_9tbe_wpa3",  /* another separator */
	    "kq7m-2xhz-9tbe-wpo3",  /* 'o' is not a symbol */
	    "kq7m-2xhz-9tbe-wp13",  /* nor '1' */
	    "kq7-m2xhz-9tbe-wpa3",  /* dash off its place */
	    "-kq7m2xhz9tbewpa3--",  /* dashes at the ends */
	    "pencil",
	};
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
		strcpy(text, "untouched");
		CHECK(!apppass_parse(other[i], strlen(other[i]), text, id));
		CHECK_STR(text, "untouched");
	}
	/* a NUL inside is not a symbol */
	CHECK(!apppass_parse("kq7m2xhz9tbe\0pa3", 16, text, id));
}

TEST(apppass_names)
{
	CHECK(apppass_name_ok("phone"));
	CHECK(apppass_name_ok("laptop thunderbird"));
	CHECK(apppass_name_ok("a"));
	char n64[65];
	memset(n64, 'x', 64);
	n64[64] = '\0';
	CHECK(apppass_name_ok(n64));
	char n65[66];
	memset(n65, 'x', 65);
	n65[65] = '\0';
	CHECK(!apppass_name_ok(n65));
	CHECK(!apppass_name_ok(""));
	CHECK(!apppass_name_ok(" phone"));
	CHECK(!apppass_name_ok("phone "));
	CHECK(!apppass_name_ok("ph\tone"));
	CHECK(!apppass_name_ok("ph\none"));
	CHECK(!apppass_name_ok("t\xc3\xa9l\xc3\xa9phone"));
}

/* ---------------------------------------------- through sasl_server */

/* One user, main password "pencil", app passwords "phone" (APP_PHONE)
 * and "mainlike" (whose id is also the start of MAIN_SHAPED, the main
 * password of main@example.test). */
#define APP_PHONE "kq7m-2xhz-9tbe-wpa3"
#define MAIN_SHAPED "zzzz-2222-3333-4444"
static int app_lookups;
static bool app_broken;

static const char *hash_of(const char *pw, char *buf, size_t n)
{
	if (buf[0] == '\0' && password_hash(pw, buf, n) < 0)
		buf[0] = '\0';
	return buf;
}

static int lookup(void *ctx, const char *user, struct sasl_creds *out)
{
	(void)ctx;
	static char pencil[256], shaped[256];
	if (!strcasecmp(user, "user@example.test")) {
		snprintf(out->address, sizeof out->address, "user@example.test");
		snprintf(out->pwhash, sizeof out->pwhash, "%s",
			 hash_of("pencil", pencil, sizeof pencil));
		return 1;
	}
	if (!strcmp(user, "main@example.test")) {
		snprintf(out->address, sizeof out->address, "main@example.test");
		snprintf(out->pwhash, sizeof out->pwhash, "%s",
			 hash_of(MAIN_SHAPED, shaped, sizeof shaped));
		return 1;
	}
	return 0;
}

static int app_lookup(void *ctx, const char *address, const char *id, struct sasl_app_creds *out)
{
	(void)ctx;
	static char phone[256], other[256];
	app_lookups++;
	if (app_broken)
		return -1;
	if (!strcmp(address, "user@example.test") && !strcmp(id, "kq7m")) {
		snprintf(out->name, sizeof out->name, "phone");
		snprintf(out->pwhash, sizeof out->pwhash, "%s",
			 hash_of(APP_PHONE, phone, sizeof phone));
		return 1;
	}
	if (!strcmp(address, "main@example.test") && !strcmp(id, "zzzz")) {
		snprintf(out->name, sizeof out->name, "mainlike");
		snprintf(out->pwhash, sizeof out->pwhash, "%s",
			 hash_of("zzzz-9999-8888-7777", other, sizeof other));
		return 1;
	}
	return 0;
}

/* PLAIN for user with password; returns the outcome, *out the server. */
static enum sasl_status plain(const char *user, const char *password, bool with_apps,
			      struct sasl_server **out)
{
	struct sasl_params p;
	memset(&p, 0, sizeof p);
	p.lookup = lookup;
	p.app_lookup = with_apps ? app_lookup : NULL;
	struct sasl_server *s = sasl_server_new(SASL_MECH_PLAIN, &p);
	char msg[600];
	int n = snprintf(msg, sizeof msg, "%c%s%c%s", 0, user, 0, password);
	app_lookups = 0;
	enum sasl_status st = sasl_server_start(s, msg, (size_t)n);
	if (st == SASL_VERIFY)
		st = sasl_server_verify(s);
	*out = s;
	return st;
}

TEST(sasl_app_password_logs_in_and_is_named)
{
	struct sasl_server *s;
	static const char *const forms[] = {APP_PHONE, "KQ7M2XHZ9TBEWPA3", "kq7m 2xhz 9tbe wpa3"};
	for (size_t i = 0; i < 3; i++) {
		CHECK_INT(plain("user@example.test", forms[i], true, &s), SASL_OK);
		CHECK_STR(sasl_server_account(s), "user@example.test");
		CHECK_STR(sasl_server_app_name(s), "phone");
		CHECK_INT(app_lookups, 1);
		sasl_server_free(&s);
	}
	/* the main password: no app name, no app lookup (not the shape) */
	CHECK_INT(plain("user@example.test", "pencil", true, &s), SASL_OK);
	CHECK_STR(sasl_server_app_name(s), "");
	CHECK_INT(app_lookups, 0);
	sasl_server_free(&s);
}

TEST(sasl_app_password_wrong_or_unknown_fails_as_credentials)
{
	struct sasl_server *s;
	/* right id, wrong secret */
	CHECK_INT(plain("user@example.test", "kq7m-2xhz-9tbe-wpa4", true, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	CHECK_STR(sasl_server_app_name(s), "");
	sasl_server_free(&s);
	/* an id the user has none of: the main hash is checked, and fails */
	CHECK_INT(plain("user@example.test", "abcd-2xhz-9tbe-wpa3", true, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	CHECK_INT(app_lookups, 1);
	sasl_server_free(&s);
	/* an unknown user is not looked up for app passwords at all */
	CHECK_INT(plain("nobody@example.test", APP_PHONE, true, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	CHECK_INT(app_lookups, 0);
	sasl_server_free(&s);
	/* without an app lookup (a caller that does not offer them) */
	CHECK_INT(plain("user@example.test", APP_PHONE, false, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_CREDENTIALS);
	sasl_server_free(&s);
	/* another user's app password is not this user's */
	CHECK_INT(plain("main@example.test", APP_PHONE, true, &s), SASL_FAIL);
	sasl_server_free(&s);
}

TEST(sasl_main_password_shaped_like_an_app_password)
{
	struct sasl_server *s;
	/* its id "zzzz" is the user's "mainlike": that hash fails, the main
	 * one is then checked and matches */
	CHECK_INT(plain("main@example.test", MAIN_SHAPED, true, &s), SASL_OK);
	CHECK_STR(sasl_server_app_name(s), "");
	CHECK_INT(app_lookups, 1);
	sasl_server_free(&s);
	CHECK_INT(plain("main@example.test", "zzzz-9999-8888-7777", true, &s), SASL_OK);
	CHECK_STR(sasl_server_app_name(s), "mainlike");
	sasl_server_free(&s);
}

TEST(sasl_app_lookup_failure_is_temporary)
{
	struct sasl_server *s;
	app_broken = true;
	CHECK_INT(plain("user@example.test", APP_PHONE, true, &s), SASL_FAIL);
	CHECK_INT(sasl_server_error(s), SASL_ERR_TEMPORARY);
	sasl_server_free(&s);
	/* a password of another shape never asks */
	CHECK_INT(plain("user@example.test", "pencil", true, &s), SASL_OK);
	sasl_server_free(&s);
	app_broken = false;
}
