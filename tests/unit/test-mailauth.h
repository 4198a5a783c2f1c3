/*
 * test-mailauth.h - helpers shared by the unit tests of src/mailauth.
 */
#ifndef TERN_TEST_MAILAUTH_H
#define TERN_TEST_MAILAUTH_H

#include "buf.h"
#include "dkim.h"

/* A new signing key for example.org with selector sel (made with
 * dkim_keygen, loaded from a temporary PEM file); its DNS record text is
 * appended to record.  NULL on failure. */
struct dkim_signer *test_make_signer(enum dkim_keytype type, const char *sel, struct buf *record);

#endif
