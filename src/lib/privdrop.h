/*
 * privdrop.h - giving up root.  Workers, and CLI commands that write the
 * data folder, run as the configured unprivileged user so that every file
 * in the data folder has one owner.
 */
#ifndef TERN_PRIVDROP_H
#define TERN_PRIVDROP_H

#include <stddef.h>

/* If the process runs as root: switches to user (groups, gid, uid; fails
 * if user is empty or unknown, or if root could be regained).  If not
 * root: does nothing.  Returns 0, or -1 with err set. */
int privdrop_to_user(const char *user, char *err, size_t errsz);

#endif
