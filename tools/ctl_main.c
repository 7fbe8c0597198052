/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_main.c - mtlsgw-ctl: dispatch to the command groups.
 */
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* Command groups: each defined in its ctl_<group>.c. */
extern const struct gw_ctl_group gw_ctl_group_hsm, gw_ctl_group_pki;
extern const struct gw_ctl_group gw_ctl_group_trust;
extern const struct gw_ctl_group gw_ctl_group_ca, gw_ctl_group_status;
extern const struct gw_ctl_group gw_ctl_group_reload;
extern const struct gw_ctl_group gw_ctl_group_setup;
extern const struct gw_ctl_group gw_ctl_group_cluster;
static const struct gw_ctl_group *const groups[] = {
	&gw_ctl_group_hsm,
	&gw_ctl_group_pki,
	&gw_ctl_group_trust,
	&gw_ctl_group_ca,
	&gw_ctl_group_status,
	&gw_ctl_group_reload,
	&gw_ctl_group_setup,
	&gw_ctl_group_cluster,
	NULL,
};

int
gw_ctl_die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("mtlsgw-ctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw-ctl <command> [args] (--help on every command)\n\ncommands:\n");
	for (size_t i = 0; groups[i] != NULL; i++)
		fprintf(f, "  %-8s %s\n", groups[i]->name, groups[i]->summary);
}

int
main(int argc, char **argv)
{
	/* a gateway or cfssl closing mid-write is reported, not a silent SIGPIPE death */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return GW_CTL_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return GW_CTL_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("mtlsgw-ctl %s\n", GW_VERSION);
		return GW_CTL_OK;
	}
	for (size_t i = 0; groups[i] != NULL; i++)
		if (strcmp(argv[1], groups[i]->name) == 0)
			return groups[i]->run(argc - 1, argv + 1);
	return gw_ctl_die(GW_CTL_USAGE, "unknown command '%s' (try --help)", argv[1]);
}
