/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config_fuzz.c - libFuzzer target for the config loader: the input is a
 * config file, run through the real gw_cfg_load_mem() (both passes, the
 * libcyaml load and every semantic check), errors formatted and dropped.
 * Relative paths in the input resolve against the current directory, so
 * run it from an empty one. Seeds: tests/fuzz/config/. It also aborts when
 * libcyaml refuses a document the first pass accepted (see below).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char errbuf[1 << 16];
	struct gw_cfg *cfg = NULL;
	bool refused = false;
	FILE *errs = fmemopen(errbuf, sizeof(errbuf), "w");

	if (!errs)
		return 0;
	memset(errbuf, 0, sizeof(errbuf));
	if (gw_cfg_load_check("fuzz.yaml", (const char *)data, size, &cfg, errs, &refused) == 0)
		gw_cfg_free(cfg);
	fclose(errs);
	/*
	 * The first pass (config_yaml.c) is meant to catch everything libcyaml
	 * would refuse, with a line. libcyaml refusing means the two disagree
	 * (as they once did on "0100", octal to libcyaml): a bug to fix.
	 */
	if (refused)
		abort();
	/* one error per line: a value from the input never breaks a line */
	for (const char *l = errbuf; *l; l = strchr(l, '\n') + 1) {
		if (strncmp(l, "fuzz.yaml:", 10) != 0)
			abort();
		if (!strchr(l, '\n'))
			break;
	}
	return 0;
}
