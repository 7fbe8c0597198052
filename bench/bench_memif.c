/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * bench_memif.c - mtlsgw-bench-memif: load for the gateway's echo service
 * from another DPDK process over memif, with our own TCP on both ends, so
 * the gateway is measured without the kernel or a tap in the path.
 *
 *   mtlsgw-bench-memif --socket PATH --mode stream|cps [--conns N]
 *                      [--seconds S] [--lcore L] [--size BYTES] [--hold]
 *
 * The client is a memif *client* port 10.98.0.3/24 on one worker lcore; the
 * gateway under test is an mtlsgw with a memif server port 10.98.0.2/24 and
 * an echo listener on 10.98.0.2:7 (bench/memif_echo.sh sets both up in a
 * namespace of their own).
 *   stream: N connections each keep writing and reading back; reports
 *           MB/s echoed (each way) and checks every byte that comes back.
 *   cps:    N connections at a time each connect, send SIZE bytes, read
 *           them back, close, and are replaced; reports completed
 *           connections per second.
 * Prints one JSON line. Figures are for comparing, never asserted.
 *
 * --hold: after the JSON line, keep the memif connection until SIGTERM or
 * SIGINT, with this side's worker already stopped. DPDK 22.11's memif PMD
 * tears a connection down on its interrupt thread (flag cleared, regions
 * unmapped) without waiting for a worker inside rte_eth_rx/tx_burst on the
 * same port: a peer that leaves while the other side's worker polls can
 * make that worker touch unmapped memory. With --hold the script stops the
 * gateway first (its workers stop before its port closes) and then us, so
 * neither side is polling when the connection goes away.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "dataplane.h"
#include "tcp.h"

#define MAX_CONNS 4096

enum mode { STREAM, CPS };

struct bconn {
	struct gw_tcp_conn *c;
	uint64_t sent, rcvd; /* stream offsets: byte i of a stream is (i * 131) >> 3 */
	bool done;
};

static struct {
	enum mode mode;
	unsigned conns;
	unsigned size;
	uint32_t server;
	uint16_t port;
	struct gw_tcp_stack *tcp;
	struct bconn bc[MAX_CONNS];
	/* results: written by the worker, read by main after it stopped */
	uint64_t bytes, completed, failed, corrupt, started;
	volatile bool measuring;
} B;

static inline uint8_t
pat(uint64_t i)
{
	return (uint8_t)((i * 131) >> 3);
}

static void bench_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx);

static void
bconn_open(struct bconn *b)
{
	struct gw_tcp_connect_params cp = {
		.raddr = B.server, .rport = B.port, .cb = bench_event, .ctx = b};

	memset(b, 0, sizeof(*b));
	if (gw_tcp_connect(B.tcp, &cp, &b->c) < 0) {
		b->c = NULL; /* hook_poll retries */
		return;
	}
	B.started++;
}

static void
pump(struct bconn *b)
{
	uint8_t buf[8192];
	uint64_t limit = B.mode == CPS ? B.size : UINT64_MAX;

	for (;;) {
		size_t n = gw_tcp_read(b->c, buf, sizeof(buf));

		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++)
			if (buf[i] != pat(b->rcvd + i))
				B.corrupt++;
		b->rcvd += n;
		if (B.measuring)
			B.bytes += n;
	}
	while (b->sent < limit) {
		size_t n = (size_t)RTE_MIN((uint64_t)sizeof(buf), limit - b->sent);
		long w;

		n = RTE_MIN(n, gw_tcp_tx_space(b->c));
		if (n == 0)
			break;
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(b->sent + i);
		w = gw_tcp_write(b->c, buf, n);
		if (w <= 0)
			break;
		b->sent += (uint64_t)w;
	}
	if (B.mode == CPS && b->rcvd == B.size && !b->done) {
		b->done = true;
		if (B.measuring)
			B.completed++;
		gw_tcp_close(b->c);
		bconn_open(b); /* the next one in this slot */
	}
}

static void
bench_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct bconn *b = ctx;

	(void)c;
	(void)reason;
	if (b->c != c)
		return; /* a closed predecessor of this slot */
	switch (ev) {
	case GW_TCP_EV_CONNECTED:
	case GW_TCP_EV_READABLE:
	case GW_TCP_EV_WRITABLE:
		pump(b);
		break;
	case GW_TCP_EV_PEER_FIN:
		break;
	case GW_TCP_EV_CLOSED:
		if (!b->done && B.measuring)
			B.failed++;
		bconn_open(b);
		break;
	}
}

static int
hook_init(void *arg, unsigned w, struct gw_tcp_stack *tcp)
{
	(void)arg;
	if (w != 0)
		return 0;
	B.tcp = tcp;
	for (unsigned i = 0; i < B.conns; i++)
		bconn_open(&B.bc[i]);
	return 0;
}

/* a slot whose connect failed (pool full of TIME_WAIT, no port) tries again */
static unsigned
hook_poll(void *arg, unsigned w)
{
	(void)arg;
	(void)w;
	for (unsigned i = 0; i < B.conns; i++)
		if (B.bc[i].c == NULL)
			bconn_open(&B.bc[i]);
	return 0; /* nothing arrives without a packet */
}

static void
hook_fini(void *arg, unsigned w)
{
	(void)arg;
	(void)w;
	/* the stack frees the connections without events */
	memset(B.bc, 0, sizeof(B.bc));
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw-bench-memif --socket PATH --mode stream|cps [--conns N] "
		   "[--seconds S] [--lcore L] [--size BYTES] [--hold]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"mode", required_argument, NULL, 'm'},
		{"conns", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 't'},
		{"lcore", required_argument, NULL, 'l'},
		{"size", required_argument, NULL, 'z'},
		{"hold", no_argument, NULL, 'H'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct gw_dp_params p;
	struct gw_dp *dp = NULL;
	const char *sock = NULL;
	unsigned seconds = 5, lcore = 1;
	bool hold = false;
	struct timespec t0, t1;
	sigset_t set;
	double dt;
	int c;

	B.mode = STREAM;
	B.conns = 1;
	B.size = 64;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "stream") == 0)
				B.mode = STREAM;
			else if (strcmp(optarg, "cps") == 0)
				B.mode = CPS;
			else {
				fprintf(stderr, "mtlsgw-bench-memif: --mode stream or cps\n");
				return 2;
			}
			break;
		case 'c':
			B.conns = (unsigned)atoi(optarg);
			break;
		case 't':
			seconds = (unsigned)atoi(optarg);
			break;
		case 'l':
			lcore = (unsigned)atoi(optarg);
			break;
		case 'z':
			B.size = (unsigned)atoi(optarg);
			break;
		case 'H':
			hold = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (sock == NULL || B.conns < 1 || B.conns > MAX_CONNS || seconds < 1 || B.size < 1 ||
		lcore < 1) {
		usage(stderr);
		return 2;
	}
	B.server = inet_addr("10.98.0.2");
	B.port = htons(7);
	p.workers[0] = lcore;
	p.n_workers = 1;
	p.main_lcore = 0;
	p.no_huge = true;
	p.memory_mb = 512;
	p.file_prefix = "gwbench";
	p.ports[0].dev = (struct gw_port_params){
		.name = "bench", .kind = GW_PORT_KIND_MEMIF, .device = sock, .memif_client = true};
	p.ports[0].ip = inet_addr("10.98.0.3");
	p.ports[0].prefix_len = 24;
	p.n_ports = 1;
	/* cps: every closed connection spends 2 s in TIME_WAIT here (we close
	 * first), so the pool bounds the rate at max_conns / 2 per second */
	p.max_conns = 65536;
	p.memory_mb = 1024;
	p.worker_init = hook_init;
	p.worker_poll = hook_poll;
	p.worker_fini = hook_fini;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (gw_dp_eal_init(&p, argv[0]) < 0 || gw_dp_start(&p, &dp) < 0) {
		fprintf(stderr, "mtlsgw-bench-memif: %s\n", gw_err_msg());
		return 1;
	}
	/* one second of warm-up (handshakes, ARP, slow start), then measure */
	sleep(1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	B.measuring = true;
	{
		struct timespec ts = {.tv_sec = seconds};

		(void)sigtimedwait(&set, NULL, &ts);
	}
	B.measuring = false;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	gw_dp_stop(dp);
	dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"mode\":\"%s\",\"conns\":%u,\"seconds\":%.2f,\"bytes\":%" PRIu64
	       ",\"mb_per_s\":%.1f,\"completed\":%" PRIu64 ",\"conns_per_s\":%.0f,"
	       "\"started\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"corrupt\":%" PRIu64 "}\n",
		B.mode == STREAM ? "stream" : "cps", B.conns, dt, B.bytes,
		(double)B.bytes / dt / 1e6, B.completed, (double)B.completed / dt, B.started,
		B.failed, B.corrupt);
	fflush(stdout);
	/* our worker is stopped: the peer may now leave first (see --hold) */
	if (hold)
		(void)sigwaitinfo(&set, NULL);
	rte_eal_cleanup();
	return B.corrupt ? 1 : 0;
}
