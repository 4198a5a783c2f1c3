/*
 * fuzz-config.c - libFuzzer target for src/lib/config.c.
 *
 * Writes the input to a private temporary file, loads it with
 * config_load() and frees the result.  A failed load must say why.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

/* One file per process, removed at exit; rewritten for every input. */
static void cleanup(void)
{
	if (path[0] != '\0')
		unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (path[0] == '\0') {
		snprintf(path, sizeof path, "/tmp/tern-fuzz-config-XXXXXX");
		int fd = mkstemp(path);
		if (fd < 0)
			abort();
		close(fd);
		atexit(cleanup);
	}
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	if (fclose(f) != 0)
		abort();

	char err[512];
	err[0] = '\0';
	struct config *cfg = config_load(path, err, sizeof err);
	if (cfg == NULL) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof err) == NULL)
			abort();
		return 0;
	}
	if (cfg->hostname == NULL || cfg->hostname[0] == '\0' || cfg->data_dir == NULL ||
	    (cfg->data_dir[0] != '/' && cfg->data_dir[0] != '\0') || cfg->path == NULL)
		abort();
	char host[256];
	uint16_t port;
	if (cfg->smtp_listen != NULL && cfg->smtp_listen[0] != '\0')
		(void)config_split_hostport(cfg->smtp_listen, host, sizeof host, &port);
	if (config_keep_restart_keys(cfg, cfg, false) != 0)
		abort();
	config_free(&cfg);
	if (cfg != NULL)
		abort();
	return 0;
}
