/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * net_input_fuzz.c - libFuzzer target for the worker's packet input path:
 * Ethernet demux, ARP, IPv4 validation, ICMP echo, and on into TCP and the
 * echo / tcp-proxy services, exactly as a worker runs them (gw_net_input,
 * then gw_tcp_poll, ARP timers and TX flush). The port is a net_null vdev,
 * whose TX frees what we send.
 *
 * Each input is a sequence of records:
 *   u8 flags, u16 len (LE), len bytes of an Ethernet frame
 * flags bit 0: delivered as if dispatched by another worker (from_ring);
 *       bit 1: fix the IPv4 header checksum and the TCP/ICMP checksum, so
 *              the fuzzer gets past them into the protocols;
 *       bit 2: set the destination MAC to ours (else the bytes decide);
 *       bit 3: then let 300 ms pass (ARP retries, TCP timers);
 *       bit 4: then let 301 s pass (ARP expiry and refresh, TCP timeouts).
 * Every input starts from a fresh worker (ARP cache, TCP stack, listeners)
 * and ends with its teardown; then every mbuf must be back in the pool.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "gw_dpdk_test.h"
#include "net_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gw_dp *dp;
static struct gw_dp_params params;
static struct gw_lcore *lc;

/* The listener table (policy/snap.h) the services read at every accept. */
static void
publish_listeners(void)
{
	const struct gw_ep up = {rte_cpu_to_be_32(RTE_IPV4(10, 99, 0, 1)), rte_cpu_to_be_16(9000)};
	struct gw_snapshot *s;

	if (gw_snap_pub_create(1, &params.pub) != 0 ||
		gw_snapshot_create(1, params.n_listeners, NULL, NULL, &s) != 0)
		abort();
	for (unsigned i = 0; i < params.n_listeners; i++) {
		struct gw_dp_listener *b = &params.listeners[i];
		struct gw_snap_listener *l = gw_snapshot_listener_add(s);

		b->index = i;
		l->service = b->service;
		if (gw_snapshot_listener_set(l, b->name, &up, b->service == GW_SVC_TCP_PROXY) != 0)
			abort();
	}
	gw_snapshot_seal(s);
	if (gw_snap_pub_publish(params.pub, s) != 0)
		abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *eal_argv[] = {"net_input_fuzz", "--no-huge", "--no-shconf", "--no-pci", "-m", "256",
		"-l", "0", "--no-telemetry", "--vdev", "net_null0", "--log-level", "*:error", NULL};
	struct rte_eth_conf conf = {0};
	uint16_t pid;

	(void)argc;
	(void)argv;
	if (rte_eal_init((int)RTE_DIM(eal_argv) - 1, eal_argv) < 0)
		abort();
	atexit(gw_test_eal_dir_remove); /* EAL's runtime dir, empty with --no-shconf */
	dp = rte_zmalloc("fuzz_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	lc = rte_zmalloc("fuzz_lc", sizeof(*lc), RTE_CACHE_LINE_SIZE);
	dp->pool = rte_pktmbuf_pool_create(
		"fuzz", 16383, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (dp == NULL || lc == NULL || dp->pool == NULL ||
		rte_eth_dev_get_port_by_name("net_null0", &pid) != 0 ||
		rte_eth_dev_configure(pid, 1, 1, &conf) != 0 ||
		rte_eth_rx_queue_setup(pid, 0, 128, SOCKET_ID_ANY, NULL, dp->pool) != 0 ||
		rte_eth_tx_queue_setup(pid, 0, 128, SOCKET_ID_ANY, NULL) != 0 ||
		rte_eth_dev_start(pid) != 0)
		abort();
	for (unsigned i = 0; i < RTE_MAX_ETHPORTS; i++)
		dp->port_idx[i] = -1;
	dp->port_idx[pid] = 0;
	dp->n_ports = 1;
	dp->n_workers = 1;
	dp->tsc_hz = rte_get_tsc_hz();
	dp->mtu = 1500;
	dp->params = &params;
	dp->ports[0].dev.port_id = pid;
	dp->ports[0].dev.n_rxq = dp->ports[0].dev.n_txq = 1;
	dp->ports[0].dev.reta_size = GW_PORT_SW_RETA;
	dp->ports[0].dev.mtu = 1500;
	dp->ports[0].dev.mac = (struct rte_ether_addr){{0x02, 0, 0, 0, 0, 0x02}};
	dp->ports[0].ip = rte_cpu_to_be_32(RTE_IPV4(10, 99, 0, 2));
	dp->ports[0].mask = rte_cpu_to_be_32(0xffffff00);
	dp->ports[0].gateway = rte_cpu_to_be_32(RTE_IPV4(10, 99, 0, 1));
	params.listeners[0] = (struct gw_dp_listener){.name = "echo",
		.ip = dp->ports[0].ip,
		.port = rte_cpu_to_be_16(7),
		.service = GW_SVC_ECHO,
		.backlog = 4};
	params.listeners[1] = (struct gw_dp_listener){.name = "proxy",
		.ip = dp->ports[0].ip,
		.port = rte_cpu_to_be_16(8080),
		.service = GW_SVC_TCP_PROXY};
	params.n_listeners = 2;
	params.max_conns = 64;
	publish_listeners();
	return 0;
}

/* Make the checksums right so the bytes reach the protocol code. */
static void
fix_checksums(struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip;
	unsigned hl, tot;

	if (m->data_len < sizeof(struct rte_ether_hdr) + sizeof(*ip))
		return;
	ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
	hl = (ip->version_ihl & 0x0f) * 4u;
	tot = rte_be_to_cpu_16(ip->total_length);
	if (hl < sizeof(*ip) || sizeof(struct rte_ether_hdr) + hl > m->data_len)
		return;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	if (tot < hl || sizeof(struct rte_ether_hdr) + tot > m->data_len)
		return;
	if (ip->next_proto_id == IPPROTO_TCP && tot - hl >= sizeof(struct rte_tcp_hdr)) {
		struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)((char *)ip + hl);

		th->cksum = 0;
		th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	} else if (ip->next_proto_id == IPPROTO_ICMP && tot - hl >= sizeof(struct rte_icmp_hdr)) {
		struct rte_icmp_hdr *ic = (struct rte_icmp_hdr *)((char *)ip + hl);

		ic->icmp_cksum = 0;
		ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, tot - hl);
	}
}

static void
run_timers(void)
{
	gw_tcp_poll(lc->tcp, lc->now);
	gw_arp_tick(lc);
	gw_tx_flush(lc, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned base = rte_mempool_in_use_count(dp->pool);
	size_t off = 0;

	memset(lc, 0, sizeof(*lc));
	lc->dp = dp;
	lc->n_rxq = 0; /* frames come from the input, not the port */
	lc->now = rte_rdtsc();
	if (gw_worker_setup(lc) < 0)
		abort();
	while (off + 3 <= size) {
		uint8_t flags = data[off];
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		struct rte_mbuf *m;
		char *p;

		off += 3;
		len = RTE_MIN(len, size - off);
		len = RTE_MIN(len, (size_t)RTE_MBUF_DEFAULT_DATAROOM);
		m = rte_pktmbuf_alloc(dp->pool);
		if (m == NULL)
			abort();
		p = rte_pktmbuf_append(m, (uint16_t)len);
		memcpy(p, data + off, len);
		off += len;
		m->port = dp->ports[0].dev.port_id;
		if ((flags & 4) && len >= sizeof(struct rte_ether_hdr))
			((struct rte_ether_hdr *)p)->dst_addr = dp->ports[0].dev.mac;
		if (flags & 2)
			fix_checksums(m);
		gw_net_input(lc, m, flags & 1);
		if (flags & 8)
			lc->now += dp->tsc_hz * 3 / 10;
		if (flags & 16)
			lc->now += dp->tsc_hz * (GW_ARP_REACHABLE_S + 1);
		run_timers();
	}
	gw_worker_teardown(lc);
	if (rte_mempool_in_use_count(dp->pool) != base)
		abort(); /* an mbuf leaked somewhere on the input path */
	return 0;
}
