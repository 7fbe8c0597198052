/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_trust.c - `mtlsgw-ctl trust check`: would this listener accept a
 * client presenting this chain, and if not, why?
 *
 * It runs the same code the workers run: the config loader, gw_trust_create
 * for the listener, gw_trust_verify_why on the chain (first certificate = the
 * leaf). One line a person can act on; --json for scripts. Exit 0 accepted,
 * 1 rejected, 2 usage or config error. Offline: no gateway needed.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "ctl.h"
#include "trust.h"

static const char check_usage[] =
	"usage: mtlsgw-ctl trust check --config FILE --listener NAME --chain CHAIN.pem\n"
	"                              [--at YYYY-MM-DD|EPOCH] [--json]\n\n"
	"Would listener NAME of config FILE accept a client presenting CHAIN.pem (PEM,\n"
	"the client's leaf first, then the intermediates it sends)? Prints one line\n"
	"saying so, or which certificate failed which check and why.\n\n"
	"  --config FILE    the mtlsgw config (loaded and validated as the gateway does)\n"
	"  --listener NAME  the listener whose trust and allow rules apply\n"
	"  --chain FILE     the chain the client would send\n"
	"  --at WHEN        check at another time (e.g. before a rotation or an expiry)\n"
	"  --json           print {\"accepted\",\"listener\",\"reason\",\"depth\",\"subject\","
	"\"check\"}\n\n"
	"exit status: 0 accepted, 1 rejected, 2 usage or config error\n";

static int
group_usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw-ctl trust <command> [options] (--help on every command)\n\n"
		   "commands:\n"
		   "  check   would a listener accept this client chain, and if not, why\n");
	return f == stdout ? GW_CTL_OK : GW_CTL_USAGE;
}

/* Print a JSON object on stdout; NULL values are omitted. */
static void
print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);

	if (s != NULL) {
		puts(s);
		free(s);
	}
	json_decref(o);
}

/* A usage/config error: one line on stderr, and in --json mode an object too. */
static int fail_config(bool json, const char *listener, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail_config(bool json, const char *listener, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json)
		print_json(json_pack(
			"{s:b,s:s?,s:s}", "accepted", 0, "listener", listener, "error", msg));
	return gw_ctl_die(GW_CTL_USAGE, "trust check: %s", msg);
}

static int
parse_when(const char *s, time_t *out)
{
	struct tm tm;
	char *end;
	long long v;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end != NULL && (*end == '\0' || (*end == 'T' && strptime(end + 1, "%H:%M:%S", &tm)))) {
		*out = timegm(&tm);
		return 0;
	}
	v = strtoll(s, &end, 10);
	if (*s != '\0' && *end == '\0' && v > 0) {
		*out = (time_t)v;
		return 0;
	}
	return -1;
}

static int
check(int argc, char **argv)
{
	enum { O_CONFIG = 1, O_LISTENER, O_CHAIN, O_AT, O_JSON, O_HELP };
	static const struct option opts[] = {
		{"config", required_argument, NULL, O_CONFIG},
		{"listener", required_argument, NULL, O_LISTENER},
		{"chain", required_argument, NULL, O_CHAIN},
		{"at", required_argument, NULL, O_AT},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL, *name = NULL, *chain = NULL;
	const struct gw_cfg_listener *l;
	struct gw_trust_verdict v;
	struct gw_trust_why why; /* the words: this is where a verdict is shown */
	struct gw_trust *t = NULL;
	struct gw_cfg *cfg = NULL;
	STACK_OF(X509) *rest = NULL;
	X509 *leaf = NULL;
	bool json = false;
	time_t at = 0;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = gw_ctl_getopt(argc, argv, opts)) != -1) {
		switch (c) {
		case O_CONFIG:
			config = optarg;
			break;
		case O_LISTENER:
			name = optarg;
			break;
		case O_CHAIN:
			chain = optarg;
			break;
		case O_AT:
			if (parse_when(optarg, &at) < 0)
				return gw_ctl_die(GW_CTL_USAGE,
					"trust check: --at '%s' is not a date (YYYY-MM-DD, "
					"YYYY-MM-DDTHH:MM:SS UTC, or seconds since 1970)",
					optarg);
			break;
		case O_JSON:
			json = true;
			break;
		case O_HELP:
			fputs(check_usage, stdout);
			return GW_CTL_OK;
		default:
			return gw_ctl_bad_option("trust check", c, argv[optind - 1]);
		}
	}
	if (optind < argc)
		return gw_ctl_die(
			GW_CTL_USAGE, "trust check: unexpected argument '%s'", argv[optind]);
	if (config == NULL || name == NULL || chain == NULL) {
		fputs(check_usage, stderr);
		return gw_ctl_die(
			GW_CTL_USAGE, "trust check: --config, --listener and --chain are required");
	}

	rc = gw_cfg_load(config, &cfg, stderr);
	if (rc < 0) {
		/* the loader printed every error (file:line: field) on stderr already */
		rc = fail_config(json, name, "config '%s' rejected (%s)", config,
			json ? gw_err_msg() : "errors above");
		goto out;
	}
	l = gw_cfg_listener_find(cfg, name);
	if (l == NULL) {
		char names[512] = "";

		for (unsigned i = 0; i < cfg->n_listeners; i++) {
			size_t n = strlen(names);

			snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "",
				cfg->listeners[i].name);
		}
		rc = fail_config(json, name, "no listener '%s' in %s (listeners: %s)", name, config,
			names[0] ? names : "none");
		goto out;
	}
	if (!l->has_trust) {
		rc = fail_config(json, name,
			"listener '%s' has no trust section: it does not verify client "
			"certificates",
			name);
		goto out;
	}
	rc = gw_trust_create(&l->trust, l->name, &t);
	if (rc < 0) {
		rc = fail_config(json, name, "listener '%s' trust: %s", name, gw_err_msg());
		goto out;
	}

	rc = gw_trust_chain_load(chain, &leaf, &rest);
	if (rc == -GW_E_PARSE) {
		/* the client's bytes are bad: that is a rejection, with its reason */
		memset(&v, 0, sizeof(v));
		memset(&why, 0, sizeof(why));
		v.reason = GW_TRUST_R_MALFORMED;
		v.depth = -1;
		snprintf(why.msg, sizeof(why.msg), "%s", gw_err_msg());
	} else if (rc < 0) {
		rc = fail_config(json, name, "%s", gw_err_msg());
		goto out;
	} else {
		rc = gw_trust_verify_why(t, leaf, rest, at, &v, &why);
		if (rc < 0 && rc != -GW_E_TRUST) {
			rc = fail_config(json, name, "cannot verify: %s", why.msg);
			goto out;
		}
	}

	if (json) {
		print_json(json_pack("{s:b,s:s,s:s,s:i,s:s,s:s}", "accepted", v.accepted,
			"listener", name, "reason", why.msg, "depth", v.depth, "subject",
			why.subject, "check", gw_trust_reason_name(v.reason)));
	} else if (v.accepted) {
		printf("accepted: listener '%s' accepts '%s'\n", name, why.subject);
	} else {
		printf("rejected by listener '%s': %s [check: %s", name, why.msg,
			gw_trust_reason_name(v.reason));
		if (v.depth == 0)
			printf(", the leaf");
		else if (v.depth > 0)
			printf(", depth %d", v.depth);
		printf("]\n");
	}
	rc = v.accepted ? GW_CTL_OK : GW_CTL_FAIL;
out:
	X509_free(leaf);
	sk_X509_pop_free(rest, X509_free);
	gw_trust_destroy(t);
	gw_cfg_free(cfg);
	return rc;
}

static int
trust_run(int argc, char **argv)
{
	if (argc < 2)
		return group_usage(stderr);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return group_usage(stdout);
	if (strcmp(argv[1], "check") != 0)
		return gw_ctl_die(
			GW_CTL_USAGE, "trust: unknown command '%s' (try trust --help)", argv[1]);
	return check(argc - 1, argv + 1);
}

const struct gw_ctl_group gw_ctl_group_trust = {
	.name = "trust",
	.summary = "would a listener accept this client chain, and why not (offline)",
	.run = trust_run,
};
