/*
 * log.h - key=value logging to stderr.
 *
 * Every line: "<time> <level> <process> key=value ...".  Callers format the
 * key=value part; values that come from the wire must pass through
 * log_escape() first, which truncates and escapes them.
 *
 * Errors policy (style.md): fatal() is for bad config or environment and
 * exits with the given code; recoverable errors return -1 to the caller.
 */
#ifndef TERN_LOG_H
#define TERN_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the process label printed on every line (e.g. "master", "worker1"). */
void log_set_process(const char *name);
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Prints "tern: <message>" to stderr and exits with code. */
void fatal(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Writes a log-safe copy of p[0..n) into out (size outsz, always
 * NUL-terminated): at most outsz-1 bytes, non-printable bytes, spaces, '"'
 * and '\\' as \xNN, truncated with "..." when it does not fit.  Returns out. */
char *log_escape(char *out, size_t outsz, const char *p, size_t n);

#endif
