/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl.h - what mtlsgw-ctl's command groups share.
 *
 * Each group ("hsm", "pki", "trust", "ca", "status", "setup", "cluster") lives in its own
 * ctl_<group>.c and exports one entry point listed in ctl_main.c. A group
 * gets argv starting at its own name, prints one clear line on error, and
 * returns the process exit code (0 ok, 1 failure/rejected, 2 usage error).
 */
#ifndef GW_CTL_H
#define GW_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

enum { GW_CTL_OK = 0, GW_CTL_FAIL = 1, GW_CTL_USAGE = 2 };

struct gw_ctl_group {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

/* Print "mtlsgw-ctl: <msg>" on stderr; returns code for `return gw_ctl_die(...)`. */
int gw_ctl_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The options of the groups that open the token (ctl_common.c): put
 * GW_CTL_HSM_OPTIONS in the struct option table; gw_ctl_hsm_opt stores the
 * value of one of them in p (true), or returns false for any other c. A
 * group's own option values start at 1000.
 */
struct gw_hsm_params;
enum { GW_CTL_O_MODULE = 900, GW_CTL_O_TOKEN, GW_CTL_O_PIN_FILE, GW_CTL_O_PIN_ENV };
/* clang-format off */
#define GW_CTL_HSM_OPTIONS \
	{"module", required_argument, NULL, GW_CTL_O_MODULE}, \
	{"token", required_argument, NULL, GW_CTL_O_TOKEN}, \
	{"pin-file", required_argument, NULL, GW_CTL_O_PIN_FILE}, \
	{"pin-env", required_argument, NULL, GW_CTL_O_PIN_ENV}
/* clang-format on */
bool gw_ctl_hsm_opt(struct gw_hsm_params *p, int c, const char *arg);

/*
 * What gw_ctl_getopt() refused, as a usage error; returns GW_CTL_USAGE.
 * c is what it returned and bad is argv[optind - 1]: ':' says "<cmd>: BAD
 * needs a value", anything else "<cmd>: unknown option 'BAD' (try --help)".
 * --pin and --so-pin (with or without =VALUE) get why there is none
 * instead, and the value is never printed.
 */
int gw_ctl_bad_option(const char *cmd, int c, const char *bad);

/*
 * getopt_long(argc, argv, ":", opts, NULL) without its abbreviations: GNU
 * getopt takes "--so-pin=1234" for "--so-pin-file=1234" and would go on to
 * read (and name, in its error) a file called after the PIN. A long option
 * not spelt in full returns '?' with argv[optind - 1] the option itself
 * (never a separate value), ready for gw_ctl_bad_option().
 */
struct option;
int gw_ctl_getopt(int argc, char **argv, const struct option *opts);

/*
 * A table printed with each column as wide as its widest cell (no value is
 * ever cut), two spaces apart; the first row is the header. Set n_cols
 * (at most GW_CTL_TABLE_MAX_COLS) in a zeroed struct, add rows, print.
 */
#define GW_CTL_TABLE_MAX_COLS 8

struct gw_ctl_table {
	unsigned n_cols;
	size_t n_rows, cap;
	char **cell; /* [n_rows][n_cols], malloc'ed; NULL after an allocation failed */
	bool failed;
};

/* Add a row of t->n_cols cells, each a const char * (NULL prints "-"), copied. */
void gw_ctl_table_row(struct gw_ctl_table *t, ...);

/* Print (nothing if only the header is there) and free t; t can be reused. */
void gw_ctl_table_print(struct gw_ctl_table *t);

/* o on stdout, indented, in its key order (--json answers). o stays the caller's. */
void gw_ctl_print_json(json_t *o);

#endif /* GW_CTL_H */
