/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mtlsgw.c - the appliance: `mtlsgw --config FILE`.
 *
 * Loads and validates the config (control), translates it into the
 * dataplane's params (the dataplane never sees YAML), starts the EAL with
 * options generated from it, brings up ports and workers, then the main
 * lcore sleeps in sigtimedwait: it runs control, never touches a packet and
 * never busy-polls.
 *
 * Signals: SIGINT/SIGTERM stop the workers, close the ports (taps
 * disappear), print the counters and exit 0. SIGUSR1 prints the counters
 * (one JSON line on stdout). SIGHUP is reserved for reload. The signals are
 * blocked before rte_eal_init so every thread the EAL creates inherits the
 * mask and only the main thread ever takes them, synchronously.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>

#include "config.h"
#include "dataplane.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw --config FILE [--verbose]\n"
		   "       mtlsgw --config FILE --print-eal   (show the EAL options and exit)\n"
		   "       mtlsgw --version\n");
}

static int
translate(const struct gw_cfg *cfg, struct gw_dp_params *p)
{
	const struct gw_cfg_dataplane *d = &cfg->dataplane;
	unsigned i, u;

	memset(p, 0, sizeof(*p));
	if (d->n_workers > GW_DP_MAX_WORKERS || d->n_ports > GW_DP_MAX_PORTS ||
		cfg->n_listeners > GW_DP_MAX_LISTENERS)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"%s: too many workers, ports or listeners for this build", cfg->path);
	memcpy(p->workers, d->workers, sizeof(d->workers[0]) * d->n_workers);
	p->n_workers = d->n_workers;
	p->main_lcore = d->main_lcore;
	p->no_huge = d->no_huge;
	p->memory_mb = d->memory_mb;
	p->file_prefix = d->file_prefix;
	p->idle_poll = d->idle == GW_IDLE_POLL;
	for (i = 0; i < d->n_ports; i++) {
		const struct gw_cfg_port *cp = &d->ports[i];
		struct gw_dp_port *dp = &p->ports[i];

		dp->dev.name = cp->name;
		dp->dev.device = cp->device;
		dp->dev.mtu = cp->mtu;
		dp->dev.memif_client = cp->memif_role == GW_MEMIF_CLIENT;
		switch (cp->driver) {
		case GW_PORT_TAP:
			dp->dev.kind = GW_PORT_KIND_TAP;
			break;
		case GW_PORT_AF_PACKET:
			dp->dev.kind = GW_PORT_KIND_AF_PACKET;
			break;
		case GW_PORT_AF_XDP:
			dp->dev.kind = GW_PORT_KIND_AF_XDP;
			break;
		case GW_PORT_MEMIF:
			dp->dev.kind = GW_PORT_KIND_MEMIF;
			break;
		case GW_PORT_PCI:
			dp->dev.kind = GW_PORT_KIND_PCI;
			break;
		}
		dp->ip = cp->ip;
		dp->prefix_len = cp->prefix_len;
		dp->gateway = cp->gateway;
	}
	p->n_ports = d->n_ports;
	for (i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *cl = &cfg->listeners[i];
		struct gw_dp_listener *l = &p->listeners[i];

		l->name = cl->name;
		l->ip = cl->addr.ip;
		l->port = cl->addr.port;
		l->backlog = cl->backlog;
		switch (cl->service) {
		case GW_SVC_ECHO:
			l->service = GW_DP_SVC_ECHO;
			break;
		case GW_SVC_TCP_PROXY:
			l->service = GW_DP_SVC_TCP_PROXY;
			break;
		default:
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"%s: listener '%s': TLS services are not available in this build "
				"yet (use echo or tcp-proxy)",
				cfg->path, cl->name);
		}
		if (cl->has_upstream) {
			if (cl->upstream.n_servers > GW_DP_MAX_UPSTREAMS)
				return gw_err_setf(-GW_E_CONFIG, GW_HERE,
					"%s: listener '%s': at most %d upstream servers", cfg->path,
					cl->name, GW_DP_MAX_UPSTREAMS);
			for (u = 0; u < cl->upstream.n_servers; u++) {
				l->upstreams[u].ip = cl->upstream.servers[u].ip;
				l->upstreams[u].port = cl->upstream.servers[u].port;
			}
			l->n_upstreams = cl->upstream.n_servers;
		}
	}
	p->n_listeners = cfg->n_listeners;
	return 0;
}

static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"verbose", no_argument, NULL, 'v'},
		{"print-eal", no_argument, NULL, 'E'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct gw_dp_params params;
	const char *config = NULL;
	struct gw_cfg *cfg = NULL;
	struct gw_dp *dp = NULL;
	bool verbose = false, print_eal = false, eal_up = false;
	sigset_t set;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'E':
			print_eal = true;
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
	if (optind < argc) {
		fprintf(stderr, "mtlsgw: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (config == NULL) {
		fprintf(stderr, "mtlsgw: --config FILE is required\n");
		return 2;
	}
	/* the loader prints every error it finds, FILE:LINE: FIELD: why */
	if (gw_cfg_load(config, &cfg, stderr) < 0) {
		fprintf(stderr, "mtlsgw: %s: config rejected (errors above), nothing started\n",
			config);
		return 1;
	}
	if (translate(cfg, &params) < 0) {
		fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
		goto out;
	}
	params.verbose = verbose;
	if (print_eal) {
		char line[4096];

		if (gw_dp_eal_cmdline(&params, "mtlsgw", line, sizeof(line)) < 0) {
			fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
			goto out;
		}
		printf("%s\n", line);
		rc = 0;
		goto out;
	}

	block_signals(&set);
	if (gw_dp_eal_init(&params, argv[0]) < 0) {
		fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
		goto out;
	}
	eal_up = true;
	if (gw_dp_start(&params, &dp) < 0) {
		fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
		goto out;
	}
	fprintf(stderr, "mtlsgw: running: %u worker(s), %u port(s), %u listener(s)\n",
		params.n_workers, params.n_ports, params.n_listeners);
	for (;;) {
		struct timespec ts = {.tv_sec = 1};
		int sig = sigtimedwait(&set, NULL, &ts);

		if (sig == SIGINT || sig == SIGTERM) {
			fprintf(stderr, "mtlsgw: %s: stopping\n", strsignal(sig));
			break;
		}
		if (sig == SIGUSR1)
			gw_dp_stats_json(dp, stdout);
		else if (sig == SIGHUP)
			fprintf(stderr, "mtlsgw: SIGHUP: reload is not implemented yet; "
					"running config unchanged\n");
	}
	gw_dp_stats_json(dp, stdout);
	rc = 0;
out:
	gw_dp_stop(dp);
	if (eal_up)
		rte_eal_cleanup();
	gw_cfg_free(cfg);
	if (rc == 0 && eal_up)
		fprintf(stderr, "mtlsgw: stopped\n");
	return rc;
}
