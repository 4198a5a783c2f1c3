/*
 * privdrop.c - switch from root to the configured user (see privdrop.h).
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int privdrop_to_user(const char *user, char *err, size_t errsz)
{
	if (geteuid() != 0)
		return 0;
	if (user == NULL || user[0] == '\0') {
		snprintf(err, errsz, "running as root needs the config key \"user\" (an unprivileged "
				     "account to run as)");
		return -1;
	}
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err, errsz, "user \"%s\" (config key \"user\") does not exist", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errsz, "user \"%s\" is root; choose an unprivileged user", user);
		return -1;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		snprintf(err, errsz, "cannot switch to user %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		snprintf(err, errsz, "could regain root after switching to %s", user);
		return -1;
	}
	/* setuid clears the dumpable flag; keep core dumps possible for
	 * debugging crashes of workers. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}
