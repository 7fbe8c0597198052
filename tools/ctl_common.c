/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_common.c - what the command groups that open the token (hsm, pki)
 * share: the options naming the module, token and PIN source, and the
 * refusal of a PIN on the command line, so every group says the same thing
 * and none echoes a PIN it was given by mistake.
 */
#include <getopt.h>
#include <stdbool.h>
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
