/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_cluster.c - `mtlsgw-ctl cluster status`: the fleet as etcd holds it
 * (control/cluster.h), read straight from etcd with the config's cluster:
 * section, so it works on any box of the fleet with or without a gateway
 * running: the leader, the ticket keys' serial and age (never the sealed
 * keys), and every member's last report. `mtlsgw-ctl cluster push`: the
 * shared part of a config as the fleet's next revision (cluster_cfg.h),
 * then every member's report of it.
 */
#include <errno.h>
#include <inttypes.h>
#include <unistd.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cluster_cfg.h"
#include "config.h"
#include "ctl.h"
#include "hsm.h"
#include "ctl_cluster.h"
#include "etcd.h"

#define DEFAULT_CONFIG "/etc/mtlsgw/mtlsgw.yaml"
#define DEFAULT_TIMEOUT_MS 2000

static const char status_usage[] =
	"usage: mtlsgw-ctl cluster status [--config FILE] [--json]\n\n"
	"The fleet this box belongs to, read from etcd with the cluster: section of\n"
	"FILE (default " DEFAULT_CONFIG "): its name, the etcd endpoint that\n"
	"answered, the leader, the ticket keys' serial and creation time (never the\n"
	"keys), and each member's last report: node, pid, snapshot generation, ticket\n"
	"serial installed, leader or not, seconds since its heartbeat, version. A\n"
	"member whose value is not understood is marked \"?\" after its name.\n"
	"--json prints {Name, Endpoint, Leader, Tickets, Members} instead.\n"
	"Works without a running gateway; exits 1 when etcd does not answer.\n";

struct members_ctx {
	json_t *arr;
	const char *leader;
	size_t prefix_len;
	int64_t now;
};

static int
on_member(void *arg, const char *key, const uint8_t *val, size_t len, int64_t mod_revision)
{
	struct members_ctx *c = arg;
	json_t *m;

	(void)mod_revision;
	if (strlen(key) <= c->prefix_len)
		return 0;
	m = gw_ctl_cluster_member(key + c->prefix_len, val, len, c->leader, c->now);
	if (m == NULL || json_array_append_new(c->arr, m) < 0)
		return -ENOMEM;
	return 0;
}

/* The endpoints, comma separated, for the message that none answered. */
static void
endpoint_list(const struct gw_cfg_cluster *cl, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < cl->n_endpoints && used < len; i++) {
		int w = snprintf(out + used, len - used, "%s%s", i ? ", " : "", cl->endpoints[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* rc from an etcd call: the command's failure line, naming the endpoints. */
static int
etcd_failed(const struct gw_cfg_cluster *cl, int rc, const char *what)
{
	char eps[512];

	endpoint_list(cl, eps, sizeof(eps));
	if (rc == -GW_E_ETCD)
		return gw_ctl_die(GW_CTL_FAIL, "cluster status: etcd does not answer at %s: %s",
			eps, gw_err_msg());
	return gw_ctl_die(GW_CTL_FAIL, "cluster status: reading %s from etcd (%s): %s", what, eps,
		gw_err_msg());
}

static void
print_human(json_t *a, int64_t now)
{
	json_t *t = json_object_get(a, "Tickets"), *m;
	struct gw_ctl_table tab = {.n_cols = GW_CTL_MEMBER_COLS};
	const char *const *h = gw_ctl_member_header;
	size_t i;

	printf("cluster   %s\n", json_string_value(json_object_get(a, "Name")));
	printf("endpoint  %s\n", json_string_value(json_object_get(a, "Endpoint")));
	printf("leader    %s\n", json_string_value(json_object_get(a, "Leader"))
					 ? json_string_value(json_object_get(a, "Leader"))
					 : "none");
	if (t == NULL || json_is_null(t)) {
		printf("tickets   none yet\n");
	} else {
		json_t *c = json_object_get(t, "Created");

		printf("tickets   serial %" JSON_INTEGER_FORMAT,
			json_integer_value(json_object_get(t, "Serial")));
		if (json_is_integer(c)) {
			time_t ct = (time_t)json_integer_value(c);
			char when[32] = "?";
			struct tm tm;

			if (gmtime_r(&ct, &tm))
				strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf(", created %s (%llds ago)", when,
				(long long)(now > ct ? now - ct : 0));
		}
		putchar('\n');
	}
	putchar('\n');
	gw_ctl_table_row(&tab, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
	json_array_foreach(json_object_get(a, "Members"), i, m)
	{
		char c[GW_CTL_MEMBER_COLS][GW_CTL_MEMBER_CELL];

		gw_ctl_cluster_member_cells(m, c);
		gw_ctl_table_row(&tab, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
	}
	if (tab.n_rows == 1)
		printf("no members\n");
	gw_ctl_table_print(&tab);
}

/*
 * After the options: no argument left, FILE loads (the loader's errors on
 * stderr) and has a cluster: section, and its hsm.env is set as the
 * gateway sets it, before the PKCS#11 module loads. GW_CTL_OK or the exit.
 */
static int
fleet_cfg(const char *cmd, const char *usage, int argc, char **argv, const char *path,
	struct gw_cfg **cfg)
{
	if (optind < argc) {
		fputs(usage, stderr);
		return gw_ctl_die(GW_CTL_USAGE, "%s: unexpected argument '%s'", cmd, argv[optind]);
	}
	if (gw_cfg_load(path, cfg, stderr) < 0)
		return gw_ctl_die(GW_CTL_USAGE, "%s: config %s rejected", cmd, path);
	if (!(*cfg)->has_cluster)
		return gw_ctl_die(GW_CTL_USAGE, "%s: no cluster: section in %s", cmd, path);
	for (unsigned i = 0; i < (*cfg)->hsm.n_env; i++)
		(void)setenv((*cfg)->hsm.env[i].name, (*cfg)->hsm.env[i].value, 1);
	return GW_CTL_OK;
}

/* The token of cfg's hsm: section, logged in. */
static int
fleet_hsm(const struct gw_cfg *cfg, struct gw_hsm **h)
{
	return gw_hsm_open(&(struct gw_hsm_params){.module = cfg->hsm.module,
				   .pin_file = cfg->hsm.pin_file,
				   .pin_env = cfg->hsm.pin_env},
		h);
}

/* The fleet's etcd client; h (may be NULL) loads a pkcs11: etcd.key. */
static int
fleet_etcd(const struct gw_cfg_cluster *cl, struct gw_hsm *h, struct gw_etcd **e)
{
	return gw_etcd_open(
		&(struct gw_etcd_params){.endpoints = (const char *const *)cl->endpoints,
			.n_endpoints = cl->n_endpoints,
			.ca_file = cl->etcd_ca,
			.cert_file = cl->etcd_cert,
			.key_file = cl->etcd_key,
			.hsm = h,
			.timeout_ms = cl->timeout_ms ? cl->timeout_ms : DEFAULT_TIMEOUT_MS},
		e);
}

static int
cluster_status(int argc, char **argv)
{
	enum { O_CONFIG = 1000, O_JSON, O_HELP };
	static const struct option opts[] = {
		{"config", required_argument, NULL, O_CONFIG},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_CONFIG;
	bool json = false;
	struct gw_cfg *cfg = NULL;
	const struct gw_cfg_cluster *cl;
	struct gw_etcd *e = NULL;
	struct gw_hsm *h = NULL;
	struct members_ctx mc = {0};
	json_t *a = NULL, *tickets = NULL;
	uint8_t *val = NULL;
	size_t len = 0;
	char key[GW_CFG_CLUSTER_NAME_MAX + 64], *leader = NULL;
	int c, rc = GW_CTL_FAIL, r;

	optind = 1;
	opterr = 0;
	while ((c = gw_ctl_getopt(argc, argv, opts)) != -1) {
		switch (c) {
		case O_CONFIG:
			path = optarg;
			break;
		case O_JSON:
			json = true;
			break;
		case O_HELP:
			fputs(status_usage, stdout);
			return GW_CTL_OK;
		default:
			fputs(status_usage, stderr);
			return gw_ctl_bad_option("cluster status", c, argv[optind - 1]);
		}
	}
	if ((rc = fleet_cfg("cluster status", status_usage, argc, argv, path, &cfg)) != GW_CTL_OK)
		goto out;
	rc = GW_CTL_FAIL;
	cl = &cfg->cluster;
	/* a pkcs11: etcd.key is in the token: the client loads it through a handle */
	if (cl->etcd_key != NULL && strncmp(cl->etcd_key, "pkcs11:", 7) == 0 &&
		fleet_hsm(cfg, &h) < 0) {
		gw_ctl_die(GW_CTL_FAIL, "cluster status: %s", gw_err_msg());
		goto out;
	}
	if (fleet_etcd(cl, h, &e) < 0) {
		gw_ctl_die(GW_CTL_FAIL, "cluster status: %s", gw_err_msg());
		goto out;
	}

	snprintf(key, sizeof(key), "/mtlsgw/%s/leader", cl->name);
	r = gw_etcd_get(e, key, &val, &len, NULL);
	if (r < 0 && r != -ENOENT) {
		rc = etcd_failed(cl, r, key);
		goto out;
	}
	leader = (char *)val; /* NUL-terminated by gw_etcd_get; NULL: no leader */
	val = NULL;

	snprintf(key, sizeof(key), "/mtlsgw/%s/tickets", cl->name);
	r = gw_etcd_get(e, key, &val, &len, NULL);
	if (r < 0 && r != -ENOENT) {
		rc = etcd_failed(cl, r, key);
		goto out;
	}
	if (r == 0 && (tickets = gw_ctl_cluster_tickets(val, len)) == NULL)
		tickets = json_pack("{s:s}", "Error", "not a JSON object with a serial");
	if (val) /* sealed, but still the fleet's keys: not left in freed memory */
		OPENSSL_cleanse(val, len);
	free(val);
	val = NULL;

	mc.arr = json_array();
	mc.leader = leader;
	mc.now = (int64_t)time(NULL);
	snprintf(key, sizeof(key), "/mtlsgw/%s/members/", cl->name);
	mc.prefix_len = strlen(key);
	if (mc.arr == NULL) {
		gw_ctl_die(GW_CTL_FAIL, "cluster status: out of memory");
		goto out;
	}
	if ((r = gw_etcd_get_prefix(e, key, on_member, &mc)) < 0) {
		rc = r == -ENOMEM ? gw_ctl_die(GW_CTL_FAIL, "cluster status: out of memory")
				  : etcd_failed(cl, r, key);
		goto out;
	}
	a = json_pack("{s:s,s:s,s:s?,s:O?,s:O}", "Name", cl->name, "Endpoint", gw_etcd_endpoint(e),
		"Leader", leader, "Tickets", tickets, "Members", mc.arr);
	if (a == NULL) {
		gw_ctl_die(GW_CTL_FAIL, "cluster status: out of memory");
		goto out;
	}
	if (json)
		gw_ctl_print_json(a);
	else
		print_human(a, mc.now);
	rc = GW_CTL_OK;
out:
	json_decref(a);
	json_decref(mc.arr);
	json_decref(tickets);
	free(leader);
	gw_etcd_close(e);
	gw_hsm_close(h);
	gw_cfg_free(cfg);
	return rc;
}

static const char push_usage[] =
	"usage: mtlsgw-ctl cluster push [--config FILE] [--wait SECONDS]\n\n"
	"Store the shared part of FILE (default " DEFAULT_CONFIG "), its top-level\n"
	"listeners: and mtls: blocks as written, as the fleet's next config revision\n"
	"in etcd, with the path and SHA-256 of every trust file they read, sealed\n"
	"with the fleet's wrapping key (cluster.ticket_key, in this box's token).\n"
	"FILE is checked first as the gateway checks a config: a bad one is never\n"
	"stored. Every member applies the revision as a reload of its own file with\n"
	"those blocks replaced (its own ports, hsm, admin, cluster stay) and reports\n"
	"how it went; push waits up to SECONDS (default 15, 0: not at all) for every\n"
	"member's report and prints them. Exit 0 when every member runs the\n"
	"revision; 1 when one refused it (it keeps serving its previous config) or\n"
	"did not report in time, or etcd or the token failed; 2 for a usage or\n"
	"config error. Pushing what the stored revision holds already stores\n"
	"nothing and says so.\n";

/* The members' reports of revision rev: all reported (1), all ok (*ok), as a table. */
static int
push_reports(struct gw_etcd *e, const char *name, uint64_t rev, bool print, bool *ok)
{
	struct members_ctx mc = {.arr = json_array(), .now = (int64_t)time(NULL)};
	char key[GW_CFG_CLUSTER_NAME_MAX + 64];
	struct gw_ctl_table tab = {.n_cols = 4};
	size_t i;
	json_t *m;
	int all = 1, r;

	*ok = true;
	snprintf(key, sizeof(key), "/mtlsgw/%s/members/", name);
	mc.prefix_len = strlen(key);
	if (mc.arr == NULL || (r = gw_etcd_get_prefix(e, key, on_member, &mc)) < 0) {
		json_decref(mc.arr);
		return -1;
	}
	if (print)
		gw_ctl_table_row(&tab, "NODE", "REVISION", "STATUS", "MESSAGE");
	json_array_foreach(mc.arr, i, m)
	{
		json_t *r = json_object_get(m, "ConfigRevision");
		const char *st = json_string_value(json_object_get(m, "ConfigStatus"));
		const char *msg = json_string_value(json_object_get(m, "ConfigMessage"));
		bool done = json_is_integer(r) && (uint64_t)json_integer_value(r) == rev && st;
		char rv[32];

		if (!done)
			all = 0;
		if (!done || strcmp(st, "ok") != 0)
			*ok = false;
		snprintf(rv, sizeof(rv), "%" JSON_INTEGER_FORMAT,
			json_is_integer(r) ? json_integer_value(r) : 0);
		if (print)
			gw_ctl_table_row(&tab, json_string_value(json_object_get(m, "Node")),
				json_is_integer(r) ? rv : "-", done ? st : "waiting",
				msg && *msg ? msg : "-");
	}
	if (json_array_size(mc.arr) == 0)
		all = 0, *ok = false;
	if (print)
		gw_ctl_table_print(&tab);
	else
		free(tab.cell);
	json_decref(mc.arr);
	return all;
}

static int
cluster_push(int argc, char **argv)
{
	enum { O_CONFIG = 1000, O_WAIT, O_HELP };
	static const struct option opts[] = {
		{"config", required_argument, NULL, O_CONFIG},
		{"wait", required_argument, NULL, O_WAIT},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *path = DEFAULT_CONFIG;
	unsigned long wait_s = 15;
	struct gw_cfg *cfg = NULL;
	struct gw_material text = {0};
	struct gw_hsm *h = NULL;
	struct gw_etcd *e = NULL;
	char host[256] = "?", *end;
	uint64_t rev = 0;
	bool ok = false;
	int c, rc = GW_CTL_FAIL, r;

	optind = 1;
	opterr = 0;
	while ((c = gw_ctl_getopt(argc, argv, opts)) != -1) {
		switch (c) {
		case O_CONFIG:
			path = optarg;
			break;
		case O_WAIT:
			wait_s = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || wait_s > 3600)
				return gw_ctl_die(GW_CTL_USAGE,
					"cluster push: --wait '%s': seconds, 0..3600", optarg);
			break;
		case O_HELP:
			fputs(push_usage, stdout);
			return GW_CTL_OK;
		default:
			fputs(push_usage, stderr);
			return gw_ctl_bad_option("cluster push", c, argv[optind - 1]);
		}
	}
	if ((rc = fleet_cfg("cluster push", push_usage, argc, argv, path, &cfg)) != GW_CTL_OK)
		goto out;
	rc = GW_CTL_FAIL;
	if (gw_material_read(path, 1u << 20, &text) < 0) {
		gw_ctl_die(GW_CTL_FAIL, "cluster push: %s", gw_err_msg());
		goto out;
	}
	if (fleet_hsm(cfg, &h) < 0 || fleet_etcd(&cfg->cluster, h, &e) < 0) {
		gw_ctl_die(GW_CTL_FAIL, "cluster push: %s", gw_err_msg());
		goto out;
	}
	(void)gethostname(host, sizeof(host) - 1);
	r = gw_cluster_push(e, h, cfg, (const char *)text.bytes, host, &rev);
	if (r == -EALREADY) {
		printf("%s\n", gw_err_msg());
	} else if (r < 0) {
		if (r == -EINVAL)
			rc = GW_CTL_USAGE;
		gw_ctl_die(rc, "cluster push: %s (nothing pushed)", gw_err_msg());
		goto out;
	} else {
		printf("revision %" PRIu64 " stored in /mtlsgw/%s/config\n", rev,
			cfg->cluster.name);
	}
	fflush(stdout);
	if (wait_s == 0) {
		rc = GW_CTL_OK;
		goto out;
	}
	for (unsigned long i = 0; i <= wait_s * 4; i++) {
		r = push_reports(e, cfg->cluster.name, rev, false, &ok);
		if (r != 0)
			break;
		usleep(250 * 1000);
	}
	r = push_reports(e, cfg->cluster.name, rev, true, &ok);
	if (r < 0)
		gw_ctl_die(GW_CTL_FAIL, "cluster push: reading the reports: %s", gw_err_msg());
	else if (r == 0)
		gw_ctl_die(GW_CTL_FAIL,
			"cluster push: not every member reported revision %" PRIu64 " within %lus",
			rev, wait_s);
	else if (!ok)
		gw_ctl_die(GW_CTL_FAIL,
			"cluster push: revision %" PRIu64 " refused by a member (it keeps serving "
			"its previous config)",
			rev);
	else
		rc = GW_CTL_OK;
out:
	gw_etcd_close(e);
	gw_hsm_close(h);
	gw_material_fini(&text);
	gw_cfg_free(cfg);
	return rc;
}

static int
cluster_group(int argc, char **argv)
{
	bool help = argc >= 2 && strcmp(argv[1], "--help") == 0;

	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return cluster_status(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "push") == 0)
		return cluster_push(argc - 1, argv + 1);
	fprintf(help ? stdout : stderr,
		"usage: mtlsgw-ctl cluster <command> [options] (--help on every command)\n\n"
		"commands:\n"
		"  status   the fleet in etcd: leader, ticket serial, members\n"
		"  push     a config's listeners and trust as the fleet's next revision\n");
	if (argc >= 2 && !help)
		return gw_ctl_die(GW_CTL_USAGE,
			"cluster: unknown command '%s' (try cluster --help)", argv[1]);
	return help ? GW_CTL_OK : GW_CTL_USAGE;
}

const struct gw_ctl_group gw_ctl_group_cluster = {
	.name = "cluster",
	.summary = "the fleet in etcd: status (leader, tickets, members), push (shared config)",
	.run = cluster_group,
};
