/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mtlsgw.c - the appliance: `mtlsgw --config FILE`.
 * (Filled in by the dataplane work: EAL from config, ports, workers.)
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void
usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw --config FILE\n       mtlsgw --version\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'V':
			printf("mtlsgw %s\n", GW_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (config == NULL) {
		fprintf(stderr, "mtlsgw: --config FILE is required\n");
		return 2;
	}
	fprintf(stderr, "mtlsgw: config %s: dataplane not built yet\n", config);
	return 1;
}
