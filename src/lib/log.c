/*
 * log.c - key=value log lines on stderr (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_process[32] = "tern";
static enum log_level log_min = LOG_INFO;

void log_set_process(const char *name)
{
	snprintf(log_process, sizeof log_process, "%s", name);
}

void log_set_level(enum log_level lvl)
{
	log_min = lvl;
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl < log_min)
		return;
	char line[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s[%d] ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[lvl], log_process,
			 (int)getpid());
	if (n < 0)
		return;
	size_t used = (size_t)n;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + used, sizeof line - used - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	used += (size_t)m;
	if (used > sizeof line - 2)
		used = sizeof line - 2;
	line[used++] = '\n';
	/* One write() per line so that lines of several processes never mix. */
	(void)!write(2, line, used);
}

void fatal(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "tern: %s\n", msg);
	exit(code);
}

char *log_escape(char *out, size_t outsz, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (outsz == 0)
		return out;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		int plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\';
		size_t need = plain ? 1 : 4;
		if (o + need + 4 > outsz) { /* keep room for "...\0" */
			if (o + 4 <= outsz) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
