/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_workers_gw.c - the dataplane with N workers, configured directly
 * through dataplane.h (no YAML): `dp_workers_gw N [IFACE]`.
 *
 * `dp_workers_gw N af_xdp IFACE` uses an af_xdp port instead of a tap: one
 * queue pair for N workers, so worker 0 dispatches everything and the
 * others transmit through the shared TX ring.
 *
 * Why: it was written when the config loader could not give a 2-CPU box
 * (the build machine, CI) two workers; lcore ids are logical now
 * (control/config.h) and tls_workers.sh runs mtlsgw itself with two. This
 * program still lets dp_workers.sh run the bare dataplane with 2-3
 * workers, without TLS, YAML or a token: the software Toeplitz dispatcher, the ARP fan-out and
 * tcp-proxy's choice of local source ports, against kernel peers.
 * Listeners: echo on 10.99.0.2:7, tcp-proxy 10.99.0.2:8080 -> 10.99.0.1:9000
 * (its upstream from the listener table, a snapshot made here by hand).
 * Signals as mtlsgw: SIGUSR1 prints the counters, SIGTERM/SIGINT stop.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>

#include "dataplane.h"

/* The per-worker hooks (for TLS above TCP): count that each runs where it should. */
static unsigned n_init, n_fini;
static uint64_t n_poll[8];

static int
hook_init(void *arg, unsigned w, struct gw_tcp_stack *tcp)
{
	(void)arg;
	if (tcp == NULL || w >= 8)
		return -EINVAL;
	__atomic_fetch_add(&n_init, 1, __ATOMIC_RELAXED);
	return 0;
}

static unsigned
hook_poll(void *arg, unsigned w)
{
	(void)arg;
	n_poll[w]++; /* only worker w writes its slot */
	return 0;
}

/*
 * The listener table the workers read at every accept: one snapshot,
 * listener i of it bound as p->listeners[i]. 0 or a negative error.
 */
static int
listener_table(struct gw_dp_params *p, struct gw_snap_pub **pub)
{
	const struct gw_ep up = {inet_addr("10.99.0.1"), htons(9000)};
	struct gw_snapshot *s = NULL;
	int rc = gw_snap_pub_create(p->n_workers, pub);

	if (rc == 0)
		rc = gw_snapshot_create(1, p->n_listeners, NULL, NULL, &s);
	for (unsigned i = 0; rc == 0 && i < p->n_listeners; i++) {
		struct gw_snap_listener *l = gw_snapshot_listener_add(s);
		bool proxy = p->listeners[i].service == GW_SVC_TCP_PROXY;

		l->service = p->listeners[i].service;
		l->addr = (struct gw_ep){p->listeners[i].ip, p->listeners[i].port};
		rc = gw_snapshot_listener_set(l, p->listeners[i].name, &up, proxy ? 1 : 0);
		p->listeners[i].index = i;
	}
	if (rc == 0) {
		gw_snapshot_seal(s);
		rc = gw_snap_pub_publish(*pub, s);
	}
	if (rc < 0)
		gw_snapshot_destroy(s);
	p->pub = *pub;
	return rc;
}

/* A counter group of the test's own: "hooks":{"init":N} in the stats line. */
static const struct gw_ctr_desc hooks_desc[] = {{"init", GW_CTR_GAUGE, "workers initialised"}};
static const struct gw_ctr_group hooks_group = {
	.name = "hooks", .help = "hook calls", .d = hooks_desc, .n = 1};

static int
hook_stats(void *arg, struct gw_ctr_snap *s)
{
	uint64_t *w;

	(void)arg;
	GW_GUARD(gw_ctr_snap_add(s, &hooks_group, &w));
	w[0] = __atomic_load_n(&n_init, __ATOMIC_RELAXED); /* the sum is the total */
	return 0;
}

static void
hook_fini(void *arg, unsigned w)
{
	(void)arg;
	(void)w;
	__atomic_fetch_add(&n_fini, 1, __ATOMIC_RELAXED);
}

int
main(int argc, char **argv)
{
	static struct gw_dp_params p;
	struct gw_snap_pub *pub = NULL;
	struct gw_dp *dp = NULL;
	sigset_t set;
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 2;

	if (n < 1 || n > 8) {
		fprintf(stderr, "usage: dp_workers_gw N(1..8) [tap|af_xdp IFACE]\n");
		return 2;
	}
	for (unsigned i = 0; i < n; i++)
		p.workers[i] = i + 1;
	p.n_workers = n;
	p.main_lcore = 0;
	p.no_huge = true;
	p.memory_mb = 512;
	p.ports[0].dev.name = "wan";
	p.ports[0].dev.kind =
		argc > 3 && strcmp(argv[2], "af_xdp") == 0 ? GW_PORT_KIND_AF_XDP : GW_PORT_KIND_TAP;
	p.ports[0].dev.device = argc > 3 ? argv[3] : "mtlsgw0";
	p.ports[0].ip = inet_addr("10.99.0.2");
	p.ports[0].prefix_len = 24;
	p.ports[0].gateway = inet_addr("10.99.0.1");
	p.n_ports = 1;
	p.listeners[0] = (struct gw_dp_listener){
		.name = "echo", .ip = inet_addr("10.99.0.2"), .port = htons(7)};
	p.listeners[1] = (struct gw_dp_listener){.name = "proxy",
		.ip = inet_addr("10.99.0.2"),
		.port = htons(8080),
		.service = GW_SVC_TCP_PROXY};
	p.n_listeners = 2;
	p.worker_init = hook_init;
	p.worker_poll = hook_poll;
	p.worker_fini = hook_fini;
	p.stats_read = hook_stats;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (listener_table(&p, &pub) < 0 || gw_dp_eal_init(&p, argv[0]) < 0 ||
		gw_dp_start(&p, &dp) < 0) {
		fprintf(stderr, "dp_workers_gw: %s\n", gw_err_msg());
		return 1;
	}
	fprintf(stderr, "mtlsgw: running: %u worker(s)\n", n);
	for (;;) {
		/* EINTR from the tap PMD's RX signal is not a stop request */
		int sig = sigwaitinfo(&set, NULL);

		if (sig == SIGUSR1)
			gw_dp_stats_json(dp, stdout);
		else if (sig == SIGINT || sig == SIGTERM)
			break;
	}
	gw_dp_stats_json(dp, stdout);
	gw_dp_stop(dp);
	gw_snap_pub_destroy(pub); /* after the workers: no reader left */
	gw_dp_eal_cleanup();
	{
		unsigned polled = 0;

		for (unsigned i = 0; i < n; i++)
			polled += n_poll[i] > 0;
		fprintf(stderr, "hooks: init %u fini %u polled %u\n", n_init, n_fini, polled);
	}
	return 0;
}
