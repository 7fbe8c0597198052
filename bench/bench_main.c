/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_main.c - mtlsgw-bench: dispatch to the benchmark modes.
 */
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("mtlsgw-bench %s\n", GW_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: mtlsgw-bench <mode> [args]\n");
	return 2;
}
