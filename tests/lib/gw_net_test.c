/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_net_test.c - a worker without a NIC, see gw_net_test.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_tcp.h>

#include "gw_dpdk_test.h"
#include "gw_net_test.h"

const struct rte_ether_addr gw_nt_our_mac = {{0x02, 0, 0, 0, 0, 0x02}};
const struct rte_ether_addr gw_nt_peer_mac = {{0x02, 0, 0, 0, 0, 0x07}};
const struct rte_ether_addr gw_nt_bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

static struct rte_mempool *nt_pool;
static uint16_t nt_port_id = UINT16_MAX;
static unsigned nt_seq;

int
gw_net_test_eal(const char *prog)
{
	char prefix[64];
	char *eal_argv[] = {(char *)prog, "--no-huge", "--no-pci", "-m", "256", "--file-prefix",
		prefix, "-l", "0", "--no-telemetry", "--log-level", "error", NULL};

	/* per process: two builds' tests may run at once */
	snprintf(prefix, sizeof(prefix), "%s_%d", prog, (int)getpid());
	if (rte_eal_init((int)RTE_DIM(eal_argv) - 1, eal_argv) < 0) {
		fprintf(stderr, "FAIL: rte_eal_init (--no-huge -m 256): %s\n",
			rte_strerror(rte_errno));
		return -1;
	}
	nt_pool = rte_pktmbuf_pool_create(
		"gw_net_test", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (nt_pool == NULL) {
		fprintf(stderr, "FAIL: mbuf pool: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

struct rte_mempool *
gw_net_test_pool(void)
{
	return nt_pool;
}

static struct rte_mbuf *
nt_alloc(void)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(nt_pool);

	if (m == NULL) {
		fprintf(stderr, "FAIL: test pool empty\n");
		abort();
	}
	m->port = nt_port_id;
	return m;
}

struct gw_net_test *
gw_net_test_new(unsigned n)
{
	struct gw_net_test *t = calloc(1, sizeof(*t));
	struct rte_eth_conf conf = {0};
	char name[RTE_RING_NAMESIZE];
	unsigned seq = nt_seq++, w;
	int port;

	if (t == NULL || n == 0 || n > GW_NET_TEST_MAX_WORKERS)
		goto fail;
	for (w = 0; w < n; w++) {
		snprintf(name, sizeof(name), "nt%u_rx%u", seq, w);
		t->rx[w] = rte_ring_create(name, 256, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "nt%u_tx%u", seq, w);
		t->tx[w] = rte_ring_create(name, 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
		if (t->rx[w] == NULL || t->tx[w] == NULL)
			goto fail;
	}
	snprintf(name, sizeof(name), "nt%u", seq);
	port = rte_eth_from_rings(name, t->rx, n, t->tx, n, SOCKET_ID_ANY);
	if (port < 0)
		goto fail;
	t->port_id = nt_port_id = (uint16_t)port;
	if (rte_eth_dev_configure(t->port_id, (uint16_t)n, (uint16_t)n, &conf) != 0)
		goto fail;
	for (w = 0; w < n; w++)
		if (rte_eth_rx_queue_setup(
			    t->port_id, (uint16_t)w, 256, SOCKET_ID_ANY, NULL, nt_pool) != 0 ||
			rte_eth_tx_queue_setup(t->port_id, (uint16_t)w, 256, SOCKET_ID_ANY, NULL) !=
				0)
			goto fail;
	if (rte_eth_dev_start(t->port_id) != 0)
		goto fail;

	t->dp = rte_zmalloc("nt_dp", sizeof(*t->dp), RTE_CACHE_LINE_SIZE);
	if (t->dp == NULL)
		goto fail;
	t->dp->lcores = rte_zmalloc("nt_lc", n * sizeof(struct gw_lcore), RTE_CACHE_LINE_SIZE);
	if (t->dp->lcores == NULL)
		goto fail;
	for (unsigned i = 0; i < RTE_MAX_ETHPORTS; i++)
		t->dp->port_idx[i] = -1;
	t->dp->port_idx[t->port_id] = 0;
	t->dp->n_ports = 1;
	t->dp->n_workers = n;
	t->dp->tsc_hz = rte_get_tsc_hz();
	t->dp->mtu = 1500;
	t->dp->pool = nt_pool;
	t->dp->params = &t->params;
	t->dp->ports[0].dev.port_id = t->port_id;
	t->dp->ports[0].dev.n_rxq = t->dp->ports[0].dev.n_txq = (uint16_t)n;
	t->dp->ports[0].dev.reta_size = GW_PORT_SW_RETA;
	t->dp->ports[0].dev.mtu = 1500;
	t->dp->ports[0].dev.mac = gw_nt_our_mac;
	t->dp->ports[0].ip = rte_cpu_to_be_32(GW_NT_OUR_IP);
	t->dp->ports[0].mask = rte_cpu_to_be_32(0xffffff00);
	t->dp->ports[0].gateway = rte_cpu_to_be_32(GW_NT_GW_IP);
	t->params.max_conns = 64;
	for (w = 0; w < n; w++) {
		struct gw_lcore *lc = &t->dp->lcores[w];

		lc->dp = t->dp;
		lc->idx = (uint16_t)w;
		lc->n_rxq = 1;
		lc->rxq[0] = (struct gw_rxq){.port_id = t->port_id,
			.port_idx = 0,
			.queue = (uint16_t)w,
			.dispatch = n > 1};
		lc->tx[0].queue = (uint16_t)w;
		lc->idle_poll = true;
		lc->epfd = lc->wake_fd = lc->hook_fd = -1; /* gw_worker_wait_init: none */
		snprintf(name, sizeof(name), "nt%u_w%u", seq, w);
		lc->ring = rte_ring_create(name, 256, SOCKET_ID_ANY, RING_F_SC_DEQ);
		lc->now = rte_rdtsc();
		if (lc->ring == NULL || gw_worker_setup(lc) < 0)
			goto fail;
	}
	return t;
fail:
	fprintf(stderr, "FAIL: gw_net_test_new(%u): %s / %s\n", n, rte_strerror(rte_errno),
		gw_err_msg());
	return NULL;
}

static void
nt_ring_drain(struct rte_ring *r)
{
	void *m;

	while (r != NULL && rte_ring_dequeue(r, &m) == 0)
		rte_pktmbuf_free(m);
}

unsigned
gw_net_test_free(struct gw_net_test *t)
{
	if (t == NULL)
		return 0;
	for (unsigned w = 0; w < t->dp->n_workers; w++) {
		struct gw_lcore *lc = &t->dp->lcores[w];

		gw_worker_teardown(lc);
		gw_worker_wait_fini(lc);
		nt_ring_drain(lc->ring);
		rte_ring_free(lc->ring);
	}
	for (unsigned w = 0; w < t->dp->n_workers; w++) {
		nt_ring_drain(t->rx[w]);
		nt_ring_drain(t->tx[w]);
	}
	(void)rte_eth_dev_stop(t->port_id);
	(void)rte_eth_dev_close(t->port_id);
	for (unsigned w = 0; w < t->dp->n_workers; w++) {
		rte_ring_free(t->rx[w]);
		rte_ring_free(t->tx[w]);
	}
	rte_free(t->dp->lcores);
	rte_free(t->dp);
	free(t);
	return rte_mempool_in_use_count(nt_pool);
}

void
gw_net_test_rx(struct gw_net_test *t, unsigned q, struct rte_mbuf *m)
{
	if (rte_ring_enqueue(t->rx[q], m) != 0)
		rte_pktmbuf_free(m);
}

unsigned
gw_net_test_tx(struct gw_net_test *t, struct rte_mbuf **out, unsigned max)
{
	unsigned n = 0;

	for (unsigned w = 0; w < t->dp->n_workers; w++)
		gw_tx_flush(&t->dp->lcores[w], 0);
	for (unsigned w = 0; w < t->dp->n_workers && n < max; w++)
		n += rte_ring_dequeue_burst(t->tx[w], (void **)out + n, max - n, NULL);
	return n;
}

void
gw_net_test_free_mbufs(struct rte_mbuf **m, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		rte_pktmbuf_free(m[i]);
}

struct rte_mbuf *
gw_net_test_arp(uint16_t op, const struct rte_ether_addr *dst, const struct rte_ether_addr *sha,
	uint32_t sip, const struct rte_ether_addr *tha, uint32_t tip)
{
	struct rte_mbuf *m = nt_alloc();
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)rte_pktmbuf_append(
		m, sizeof(*eh) + sizeof(struct rte_arp_hdr));
	struct rte_arp_hdr *ah = (struct rte_arp_hdr *)(eh + 1);

	if (eh == NULL)
		abort();
	eh->dst_addr = *dst;
	eh->src_addr = *sha;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	ah->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = RTE_ETHER_ADDR_LEN;
	ah->arp_plen = 4;
	ah->arp_opcode = rte_cpu_to_be_16(op);
	ah->arp_data.arp_sha = *sha;
	ah->arp_data.arp_sip = rte_cpu_to_be_32(sip);
	ah->arp_data.arp_tha = *tha;
	ah->arp_data.arp_tip = rte_cpu_to_be_32(tip);
	return m;
}

static struct rte_ether_hdr *
nt_eth(struct rte_mbuf *m)
{
	struct rte_ether_hdr *eh =
		(struct rte_ether_hdr *)rte_pktmbuf_prepend(m, sizeof(struct rte_ether_hdr));

	eh->dst_addr = gw_nt_our_mac;
	eh->src_addr = gw_nt_peer_mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	return eh;
}

struct rte_ipv4_hdr *
gw_net_test_ip(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));
}

void
gw_net_test_ip_fix(struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip = gw_net_test_ip(m);

	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
}

struct rte_mbuf *
gw_net_test_ipv4(uint32_t src, uint32_t dst, uint8_t proto, const void *payload, unsigned len)
{
	struct rte_mbuf *m = nt_alloc();
	struct rte_ipv4_hdr *ip;

	ip = (struct rte_ipv4_hdr *)rte_pktmbuf_append(m, (uint16_t)(sizeof(*ip) + len));
	if (ip == NULL)
		abort();
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + len));
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->src_addr = rte_cpu_to_be_32(src);
	ip->dst_addr = rte_cpu_to_be_32(dst);
	if (len)
		memcpy(ip + 1, payload, len);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	nt_eth(m);
	return m;
}

struct rte_mbuf *
gw_net_test_echo(
	uint32_t src, uint32_t dst, uint16_t id, uint16_t seq, const void *data, unsigned len)
{
	uint8_t buf[sizeof(struct rte_icmp_hdr) + 1024];
	struct rte_icmp_hdr *ic = (struct rte_icmp_hdr *)buf;

	if (len > 1024)
		abort();
	memset(ic, 0, sizeof(*ic));
	ic->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
	ic->icmp_ident = rte_cpu_to_be_16(id);
	ic->icmp_seq_nb = rte_cpu_to_be_16(seq);
	if (len)
		memcpy(ic + 1, data, len);
	ic->icmp_cksum = (uint16_t)~rte_raw_cksum(buf, sizeof(*ic) + len);
	return gw_net_test_ipv4(src, dst, IPPROTO_ICMP, buf, (unsigned)sizeof(*ic) + len);
}

struct rte_mbuf *
gw_net_test_tcp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint32_t seq,
	uint32_t ack, uint8_t flags)
{
	struct rte_mbuf *m = gw_test_tcp_seg(
		nt_pool, src, dst, sport, dport, seq, ack, flags, 65535, NULL, 0, NULL, 0);

	m->port = nt_port_id;
	nt_eth(m);
	return m;
}

void
gw_net_test_learn_peer(struct gw_net_test *t)
{
	struct rte_mbuf *out[8];
	unsigned n;

	for (unsigned w = 0; w < t->dp->n_workers; w++)
		gw_net_input(&t->dp->lcores[w],
			gw_net_test_arp(RTE_ARP_OP_REQUEST, &gw_nt_bcast, &gw_nt_peer_mac,
				GW_NT_PEER_IP, &(struct rte_ether_addr){{0}}, GW_NT_OUR_IP),
			w != 0);
	while ((n = gw_net_test_tx(t, out, 8)) != 0)
		gw_net_test_free_mbufs(out, n);
}
