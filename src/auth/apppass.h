/*
 * apppass.h - app passwords: per-device passwords a user can have beside
 * the main one (`tern user app-password`, docs/security.md "App
 * passwords").  This file knows their shape only: making a new one and
 * recognising one a client sent.  Storage is the store's
 * (store_apppass_*), the login check is SASL's (sasl.h, app_lookup).
 *
 * An app password is 16 symbols of the alphabet APPPASS_ALPHABET (digits
 * and lower-case letters without 0, 1, l and o, so nothing on a phone
 * screen can be read two ways), shown in four groups of four:
 *
 *     kq7m-2xhz-9tbe-wpa3
 *
 * The first group is the password's id: not secret, unique among the
 * user's app passwords, stored in clear beside the hash, so that a login
 * finds the one hash to check instead of trying each (one hash check per
 * login, whatever the user has).  The other twelve symbols are the secret:
 * 60 bits from the kernel's CSPRNG (getrandom), stored only as a yescrypt
 * hash of the whole canonical text.
 *
 * A client may send it with or without the dashes, with spaces instead,
 * in upper or lower case: apppass_parse gives back the canonical text
 * (lower case, with dashes), which is what is hashed.
 */
#ifndef TERN_APPPASS_H
#define TERN_APPPASS_H

#include <stdbool.h>
#include <stddef.h>

#define APPPASS_ALPHABET "23456789abcdefghijkmnpqrstuvwxyz" /* 32 symbols: 5 bits each */
#define APPPASS_SYMBOLS 16                                  /* id + secret */
#define APPPASS_ID_LEN 4                                    /* the first group */
#define APPPASS_TEXT_SIZE 20                                /* "xxxx-xxxx-xxxx-xxxx" and its NUL */
#define APPPASS_ID_SIZE (APPPASS_ID_LEN + 1)
/* Most app passwords one user may have. */
#define APPPASS_MAX_PER_USER 20
/* Longest name (bytes) of an app password ("phone", "laptop thunderbird"). */
#define APPPASS_NAME_MAX 64

/* Makes a new app password from the kernel's CSPRNG: its canonical text
 * into text and its id (the first group) into id.  Returns 0, or -1 if no
 * random bytes could be had (errno set). */
int apppass_generate(char text[APPPASS_TEXT_SIZE], char id[APPPASS_ID_SIZE]);

/* True if in[0..n) has the shape of an app password: 16 symbols of the
 * alphabet (either case), optionally split by '-' or ' ' between the
 * groups of four (all separators the same; none at the ends).  Then its
 * canonical text and id are written to text and id.  Anything else is
 * some other password (false; text and id untouched). */
bool apppass_parse(const char *in, size_t n, char text[APPPASS_TEXT_SIZE],
		   char id[APPPASS_ID_SIZE]);

/* True if name is a usable app-password name: 1..APPPASS_NAME_MAX bytes
 * of printable ASCII (space allowed, not first or last), so it goes into a
 * log line and a listing as it is. */
bool apppass_name_ok(const char *name);

#endif
