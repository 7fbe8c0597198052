/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_common.c - what the command groups that open the token (hsm, pki)
 * share: the options naming the module, token and PIN source, and the
 * refusal of a PIN on the command line, so every group says the same thing
 * and none echoes a PIN it was given by mistake; and the tables the groups
 * print (ca, status, cluster).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "hsm.h"

bool
gw_ctl_hsm_opt(struct gw_hsm_params *p, int c, const char *arg)
{
	switch (c) {
	case GW_CTL_O_MODULE:
		p->module = arg;
		return true;
	case GW_CTL_O_TOKEN:
		p->token = arg;
		return true;
	case GW_CTL_O_PIN_FILE:
		p->pin_file = arg;
		return true;
	case GW_CTL_O_PIN_ENV:
		p->pin_env = arg;
		return true;
	default:
		return false;
	}
}

int
gw_ctl_bad_option(const char *cmd, int c, const char *bad)
{
	bool pin;

	if (c == ':')
		return gw_ctl_die(GW_CTL_USAGE, "%s: %s needs a value", cmd, bad);
	/* there is no --pin on purpose: say why, and where PINs go instead */
	pin = strcmp(bad, "--pin") == 0 || strncmp(bad, "--pin=", 6) == 0 ||
	      strcmp(bad, "--so-pin") == 0 || strncmp(bad, "--so-pin=", 9) == 0;
	return gw_ctl_die(GW_CTL_USAGE, "%s: unknown option '%s'%s", cmd, pin ? "--pin" : bad,
		pin ? ": PINs are read from a file (--pin-file) or a variable "
		      "(--pin-env), never from the command line"
		    : " (try --help)");
}

int
gw_ctl_getopt(int argc, char **argv, const struct option *opts)
{
	int li = -1;
	int c = getopt_long(argc, argv, ":", opts, &li);
	bool separate;
	const char *tok;
	size_t n;

	if (c == -1 || c == '?' || c == ':' || li < 0)
		return c;
	/* pointer equality: a value given as its own word, whatever it holds */
	separate = optarg != NULL && optarg == argv[optind - 1];
	tok = argv[optind - (separate ? 2 : 1)];
	n = strcspn(tok + 2, "=");
	if (strlen(opts[li].name) == n && strncmp(tok + 2, opts[li].name, n) == 0)
		return c;
	if (separate)
		optind--; /* argv[optind - 1] is now the option, not its value */
	return '?';
}

void
gw_ctl_table_row(struct gw_ctl_table *t, ...)
{
	va_list ap;

	if (t->failed)
		return;
	if (t->n_rows == t->cap) {
		size_t ncap = t->cap ? 2 * t->cap : 16;
		char **nc = realloc(t->cell, ncap * t->n_cols * sizeof(*nc));

		if (nc == NULL) {
			t->failed = true;
			return;
		}
		t->cell = nc;
		t->cap = ncap;
	}
	va_start(ap, t);
	for (unsigned c = 0; c < t->n_cols; c++) {
		const char *v = va_arg(ap, const char *);

		t->cell[t->n_rows * t->n_cols + c] = strdup(v ? v : "-");
		if (t->cell[t->n_rows * t->n_cols + c] == NULL)
			t->failed = true;
	}
	va_end(ap);
	t->n_rows++;
}

void
gw_ctl_table_print(struct gw_ctl_table *t)
{
	size_t w[GW_CTL_TABLE_MAX_COLS] = {0};

	for (size_t r = 0; r < t->n_rows; r++)
		for (unsigned c = 0; c < t->n_cols; c++) {
			const char *v = t->cell[r * t->n_cols + c];

			if (v && strlen(v) > w[c])
				w[c] = strlen(v);
		}
	for (size_t r = 0; r < t->n_rows && t->n_rows > 1 && !t->failed; r++) {
		for (unsigned c = 0; c < t->n_cols; c++) {
			const char *v = t->cell[r * t->n_cols + c];

			if (c + 1 < t->n_cols)
				printf("%-*s  ", (int)w[c], v);
			else
				printf("%s\n", v);
		}
	}
	if (t->failed)
		fputs("mtlsgw-ctl: out of memory printing a table\n", stderr);
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cell[i]);
	free(t->cell);
	memset(t, 0, sizeof(*t));
}

void
gw_ctl_print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (s) {
		puts(s);
		free(s);
	}
}
