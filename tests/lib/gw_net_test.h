/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_net_test.h - a worker without a NIC for the net layer's unit tests
 * (tests/unit/test_arp.c, test_ipv4.c, test_worker.c): an in-process EAL
 * (--no-huge), one port made from rte_rings by the ring PMD (the test
 * enqueues frames on its RX queues and dequeues what the workers send from
 * its TX queues), and a struct gw_dp with 1..GW_NET_TEST_MAX_WORKERS
 * workers set up by gw_worker_setup() exactly as gw_dp_start does, minus
 * the lcores: the test calls the worker functions itself.
 *
 * Addresses (network order in the dp, host order here): we are 10.99.0.2/24
 * with MAC 02:00:00:00:00:02, the gateway is 10.99.0.1. Not thread-safe.
 */
#ifndef GW_NET_TEST_H
#define GW_NET_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "net_internal.h"

#define GW_NET_TEST_MAX_WORKERS 2
/* DPDK's RTE_IPV4() shifts an int, undefined for a first octet >= 128 */
#define GW_NT_IPV4(a, b, c, d) \
	((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define GW_NT_OUR_IP RTE_IPV4(10, 99, 0, 2)
#define GW_NT_GW_IP RTE_IPV4(10, 99, 0, 1)
#define GW_NT_PEER_IP RTE_IPV4(10, 99, 0, 7)

extern const struct rte_ether_addr gw_nt_our_mac, gw_nt_peer_mac, gw_nt_bcast;

struct gw_net_test {
	struct gw_dp *dp;
	struct gw_dp_params params;
	struct rte_ring *rx[GW_NET_TEST_MAX_WORKERS], *tx[GW_NET_TEST_MAX_WORKERS];
	uint16_t port_id;
};

/* EAL with a per-pid file prefix and the shared mbuf pool. 0 or -1 (printed). */
int gw_net_test_eal(const char *prog);
struct rte_mempool *gw_net_test_pool(void);

/* A port and n_workers set-up workers (software dispatch when n > 1);
 * max_conns per TCP stack, no listeners. NULL on failure (printed). */
struct gw_net_test *gw_net_test_new(unsigned n_workers);

/* Tear the workers down, drain and free rings, close the port. Returns the
 * mbufs still in use from the pool afterwards (0: nothing leaked). */
unsigned gw_net_test_free(struct gw_net_test *t);

/* Worker w. */
static inline struct gw_lcore *
gw_net_test_lc(struct gw_net_test *t, unsigned w)
{
	return &t->dp->lcores[w];
}

/* Frame m arrives on RX queue q of the port (read by gw_worker_iterate). */
void gw_net_test_rx(struct gw_net_test *t, unsigned q, struct rte_mbuf *m);

/* Flush every worker's TX buffer, then take up to max frames the port sent
 * (queue order). Returns how many. */
unsigned gw_net_test_tx(struct gw_net_test *t, struct rte_mbuf **out, unsigned max);

/* Free n mbufs. */
void gw_net_test_free_mbufs(struct rte_mbuf **m, unsigned n);

/* An Ethernet + ARP frame (our port's mbuf->port set). IPs host order. */
struct rte_mbuf *gw_net_test_arp(uint16_t op, const struct rte_ether_addr *dst,
	const struct rte_ether_addr *sha, uint32_t sip, const struct rte_ether_addr *tha,
	uint32_t tip);

/* An Ethernet (to our MAC, from the peer) + IPv4 (TTL 64, DF, valid
 * checksum) frame carrying len bytes of payload of protocol proto. */
struct rte_mbuf *gw_net_test_ipv4(
	uint32_t src, uint32_t dst, uint8_t proto, const void *payload, unsigned len);

/* An ICMP echo request (id, seq, len bytes of data) as gw_net_test_ipv4. */
struct rte_mbuf *gw_net_test_echo(
	uint32_t src, uint32_t dst, uint16_t id, uint16_t seq, const void *data, unsigned len);

/* Ethernet + TCP segment (gw_test_tcp_seg behind an Ethernet header). */
struct rte_mbuf *gw_net_test_tcp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
	uint32_t seq, uint32_t ack, uint8_t flags);

/* m's IPv4 header (behind Ethernet), and its header checksum recomputed. */
struct rte_ipv4_hdr *gw_net_test_ip(struct rte_mbuf *m);
void gw_net_test_ip_fix(struct rte_mbuf *m);

/* Teach every worker's ARP cache the peer (a request from it for us, from
 * the port on queue 0 as a worker would fan it out) and drop the replies. */
void gw_net_test_learn_peer(struct gw_net_test *t);

#endif /* GW_NET_TEST_H */
