/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl.h - what mtlsgw-ctl's command groups share.
 *
 * Each group ("hsm", "pki", "trust", "ca", "status") lives in its own
 * ctl_<group>.c and exports one entry point listed in ctl_main.c. A group
 * gets argv starting at its own name, prints one clear line on error, and
 * returns the process exit code (0 ok, 1 failure/rejected, 2 usage error).
 */
#ifndef GW_CTL_H
#define GW_CTL_H

#include <stdio.h>

enum { GW_CTL_OK = 0, GW_CTL_FAIL = 1, GW_CTL_USAGE = 2 };

struct gw_ctl_group {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

/* Print "mtlsgw-ctl: <msg>" on stderr; returns code for `return gw_ctl_die(...)`. */
int gw_ctl_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* GW_CTL_H */
