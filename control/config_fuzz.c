/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * config_fuzz.c - libFuzzer target for the config loader: the input is a
 * config file, run through the real gw_cfg_load_mem() (both passes, the
 * libcyaml load and every semantic check), errors formatted and dropped.
 * Relative paths in the input resolve against the current directory, so
 * run it from an empty one. Seeds: tests/fuzz/config/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct gw_cfg *cfg = NULL;

	/* a real stream, so the error lines are written as in production */
	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (gw_cfg_load_mem("fuzz.yaml", data, size, &cfg, devnull) == 0)
		gw_cfg_free(cfg);
	return 0;
}
