/*
 * cli.h - the `tern` sub-commands other than `serve` (which lives in
 * main.c because it owns processes, signals and listeners).
 *
 *   tern init DIR [--hostname H] [--domain D] [--address A] [--port-base N]
 *                 [--resolver IP[:PORT]] [--user NAME]
 *   tern -c FILE domain add|list|remove ...
 *   tern -c FILE user add|list|remove|passwd ...
 *   tern -c FILE alias add|list|remove ...
 *   tern -c FILE mail list USER [MAILBOX]
 *   tern -c FILE mail cat USER MAILBOX UID
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad usage or bad config;
 * every error names the file, line or argument at fault.
 */
#ifndef TERN_CLI_H
#define TERN_CLI_H

#include <stdio.h>

/* Runs one sub-command.  argv[0] is the sub-command name ("init", "user",
 * ...).  cfg_path is the -c argument, or NULL (then "tern.conf" in the
 * current folder, or /etc/tern/tern.conf if that does not exist).
 * Returns the process exit code. */
int cli_run(const char *cfg_path, int argc, char **argv);

/* Remembers how tern was invoked (argv[0] of the process) so that the
 * commands we print for the admin to run next work as printed: a path
 * ("build/tern") is kept, a bare name becomes "tern".  The string must
 * outlive the process's use of cli_program(). */
void cli_set_program(const char *argv0);
/* The program name to print in suggested commands ("tern" by default). */
const char *cli_program(void);

/* Prints the top-level usage text. */
void cli_usage(FILE *f);

/* Loads the config for a sub-command or `serve`: prints the error (naming
 * file and line) and returns NULL on failure (exit code 2). */
struct config *cli_load_config(const char *cfg_path);

#endif
