/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_arp.c - dataplane/arp.c on a worker without a NIC
 * (tests/lib/gw_net_test.c): answering requests for our address, learning
 * (RFC 826 merge), resolving next hops with the bounded pending queue,
 * retries and giving up, expiry and refresh, gratuitous and conflicting
 * replies, frames from other workers, malformed frames. Time is the
 * worker's lc->now, moved by hand.
 */
#include <string.h>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>

#include "gw_dpdk_test.h"
#include "gw_net_test.h"
#include "gw_test.h"

static const struct rte_ether_addr zero_mac = {{0}};
static const struct rte_ether_addr other_mac = {{0x02, 0, 0, 0, 0, 0x99}};

static const struct rte_arp_hdr *
arp_of(const struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, const struct rte_arp_hdr *, sizeof(struct rte_ether_hdr));
}

static const struct rte_ether_hdr *
eth_of(const struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
}

/* A request from the peer for our address, as received from the port. */
static void
peer_asks(struct gw_lcore *lc, uint32_t sip, const struct rte_ether_addr *sha, bool from_ring)
{
	gw_net_input(lc,
		gw_net_test_arp(
			RTE_ARP_OP_REQUEST, &gw_nt_bcast, sha, sip, &zero_mac, GW_NT_OUR_IP),
		from_ring);
}

/* An IPv4 packet (data at the IPv4 header) from us to dst, as TCP sends. */
static struct rte_mbuf *
ip_pkt(uint32_t dst, uint8_t tag)
{
	struct rte_mbuf *m = gw_net_test_ipv4(GW_NT_OUR_IP, dst, IPPROTO_UDP, &tag, 1);

	rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
	return m;
}

static bool
is_request_for(const struct rte_mbuf *m, uint32_t tip)
{
	const struct rte_arp_hdr *ah = arp_of(m);

	return eth_of(m)->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP) &&
	       rte_is_broadcast_ether_addr(&eth_of(m)->dst_addr) &&
	       ah->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) &&
	       ah->arp_data.arp_tip == rte_cpu_to_be_32(tip) &&
	       ah->arp_data.arp_sip == rte_cpu_to_be_32(GW_NT_OUR_IP) &&
	       rte_is_same_ether_addr(&ah->arp_data.arp_sha, &gw_nt_our_mac) &&
	       rte_is_zero_ether_addr(&ah->arp_data.arp_tha);
}

/* An IPv4 frame to mac whose one payload byte is tag. */
static bool
is_ip_to(const struct rte_mbuf *m, const struct rte_ether_addr *mac, uint8_t tag)
{
	const struct rte_ether_hdr *eh = eth_of(m);

	return eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
	       rte_is_same_ether_addr(&eh->dst_addr, mac) &&
	       rte_is_same_ether_addr(&eh->src_addr, &gw_nt_our_mac) &&
	       m->pkt_len == sizeof(*eh) + sizeof(struct rte_ipv4_hdr) + 1 &&
	       *rte_pktmbuf_mtod_offset(
		       m, const uint8_t *, sizeof(*eh) + sizeof(struct rte_ipv4_hdr)) == tag;
}

int
main(void)
{
	struct rte_mbuf *out[64];
	unsigned n;

	GW_TEST_BEGIN();
	if (gw_net_test_eal("test_arp") < 0)
		return 1;

	{ /* a request for our address: a reply to the asker, and it is learned */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);

		peer_asks(lc, GW_NT_PEER_IP, &gw_nt_peer_mac, false);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1);
		if (n == 1) {
			const struct rte_arp_hdr *ah = arp_of(out[0]);

			EXPECT_TRUE(
				rte_is_same_ether_addr(&eth_of(out[0])->dst_addr, &gw_nt_peer_mac));
			EXPECT_TRUE(
				rte_is_same_ether_addr(&eth_of(out[0])->src_addr, &gw_nt_our_mac));
			EXPECT_TRUE(ah->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY));
			EXPECT_TRUE(rte_is_same_ether_addr(&ah->arp_data.arp_sha, &gw_nt_our_mac));
			EXPECT_TRUE(ah->arp_data.arp_sip == rte_cpu_to_be_32(GW_NT_OUR_IP));
			EXPECT_TRUE(rte_is_same_ether_addr(&ah->arp_data.arp_tha, &gw_nt_peer_mac));
			EXPECT_TRUE(ah->arp_data.arp_tip == rte_cpu_to_be_32(GW_NT_PEER_IP));
		}
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(
			lc->st.arp_rx == 1 && lc->st.arp_reply_tx == 1 && lc->st.arp_learned == 1);
		/* learned: a packet to the peer leaves at once, no request */
		gw_arp_output(lc, ip_pkt(GW_NT_PEER_IP, 7), 0, rte_cpu_to_be_32(GW_NT_PEER_IP));
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_ip_to(out[0], &gw_nt_peer_mac, 7));
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(lc->st.arp_req_tx == 0 && lc->st.arp_queued == 0);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* requests for others: no reply and nothing learned; a copy from
	   * another worker (from_ring) is learned from but not answered */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);

		gw_net_input(lc,
			gw_net_test_arp(RTE_ARP_OP_REQUEST, &gw_nt_bcast, &gw_nt_peer_mac,
				GW_NT_PEER_IP, &zero_mac, RTE_IPV4(10, 99, 0, 50)),
			false);
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0);
		EXPECT_TRUE(lc->st.arp_rx == 1 && lc->st.arp_learned == 0);
		peer_asks(lc, GW_NT_PEER_IP, &gw_nt_peer_mac, true);
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0);
		EXPECT_TRUE(lc->st.arp_reply_tx == 0 && lc->st.arp_learned == 1);
		/* off our subnet, our own address, a probe (sip 0): nothing learned */
		peer_asks(lc, GW_NT_IPV4(192, 168, 1, 1), &other_mac, true);
		peer_asks(lc, GW_NT_OUR_IP, &other_mac, true);
		peer_asks(lc, 0, &other_mac, true);
		EXPECT_TRUE(lc->st.arp_learned == 1);
		gw_arp_output(lc, ip_pkt(GW_NT_IPV4(192, 168, 1, 1), 1), 0,
			rte_cpu_to_be_32(GW_NT_IPV4(192, 168, 1, 1)));
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_request_for(out[0], GW_NT_IPV4(192, 168, 1, 1)));
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* an unresolved next hop: one request, GW_ARP_PENDING packets held
	   * (more dropped), all released in order by the reply */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		uint32_t nh = rte_cpu_to_be_32(GW_NT_PEER_IP);
		bool order = true;

		for (unsigned i = 0; i < GW_ARP_PENDING + 2; i++)
			gw_arp_output(lc, ip_pkt(GW_NT_PEER_IP, (uint8_t)i), 0, nh);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_request_for(out[0], GW_NT_PEER_IP));
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(lc->st.arp_req_tx == 1);
		EXPECT_TRUE(lc->st.arp_queued == GW_ARP_PENDING);
		EXPECT_TRUE(lc->st.arp_queue_drop == 2);
		/* the reply (unicast to us, for us) resolves it */
		gw_net_input(lc,
			gw_net_test_arp(RTE_ARP_OP_REPLY, &gw_nt_our_mac, &gw_nt_peer_mac,
				GW_NT_PEER_IP, &gw_nt_our_mac, GW_NT_OUR_IP),
			false);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == GW_ARP_PENDING);
		for (unsigned i = 0; i < n; i++)
			order &= is_ip_to(out[i], &gw_nt_peer_mac, (uint8_t)i);
		EXPECT_TRUE(order);
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(lc->st.arp_reply_tx == 0); /* replies are not answered */
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* nobody answers: a request per retry interval, then the held
	   * packets are dropped and the entry forgotten */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		uint64_t retry = lc->dp->tsc_hz * GW_ARP_RETRY_MS / 1000;
		uint32_t nh = rte_cpu_to_be_32(GW_NT_GW_IP);

		gw_arp_output(lc, ip_pkt(RTE_IPV4(8, 8, 8, 8), 1), 0, nh);
		gw_arp_output(lc, ip_pkt(RTE_IPV4(8, 8, 8, 8), 2), 0, nh);
		gw_arp_tick(lc); /* not due yet */
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_request_for(out[0], GW_NT_GW_IP));
		gw_net_test_free_mbufs(out, n);
		for (unsigned i = 1; i < GW_ARP_RETRIES; i++) {
			lc->now += retry;
			gw_arp_tick(lc);
			n = gw_net_test_tx(t, out, 64);
			EXPECT_TRUE(n == 1 && is_request_for(out[0], GW_NT_GW_IP));
			gw_net_test_free_mbufs(out, n);
		}
		EXPECT_TRUE(lc->st.arp_req_tx == GW_ARP_RETRIES && lc->st.arp_unresolved == 0);
		lc->now += retry;
		gw_arp_tick(lc);
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0);
		EXPECT_TRUE(lc->st.arp_unresolved == 2);
		/* forgotten: the next packet starts over with a request */
		gw_arp_output(lc, ip_pkt(RTE_IPV4(8, 8, 8, 8), 3), 0, nh);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_request_for(out[0], GW_NT_GW_IP));
		gw_net_test_free_mbufs(out, n);
		/* teardown frees what is still held */
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* expiry: the old MAC stays in use while we ask again; an answer
	   * refreshes it, silence forgets it */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		uint64_t hz = lc->dp->tsc_hz, retry = hz * GW_ARP_RETRY_MS / 1000;
		uint32_t nh = rte_cpu_to_be_32(GW_NT_PEER_IP);

		peer_asks(lc, GW_NT_PEER_IP, &gw_nt_peer_mac, true);
		lc->now += hz * GW_ARP_REACHABLE_S - 1;
		gw_arp_tick(lc);
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0); /* not yet */
		lc->now += 1;
		gw_arp_tick(lc);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_request_for(out[0], GW_NT_PEER_IP));
		gw_net_test_free_mbufs(out, n);
		gw_arp_output(lc, ip_pkt(GW_NT_PEER_IP, 9), 0, nh);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_ip_to(out[0], &gw_nt_peer_mac, 9));
		gw_net_test_free_mbufs(out, n);
		/* answered: fresh for another GW_ARP_REACHABLE_S */
		gw_net_input(lc,
			gw_net_test_arp(RTE_ARP_OP_REPLY, &gw_nt_our_mac, &gw_nt_peer_mac,
				GW_NT_PEER_IP, &gw_nt_our_mac, GW_NT_OUR_IP),
			false);
		lc->now += hz * GW_ARP_REACHABLE_S - 1;
		gw_arp_tick(lc);
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0);
		/* now let it expire unanswered */
		lc->now += 1;
		for (unsigned i = 0; i < GW_ARP_RETRIES; i++) {
			gw_arp_tick(lc);
			n = gw_net_test_tx(t, out, 64);
			EXPECT_TRUE(n == 1 && is_request_for(out[0], GW_NT_PEER_IP));
			gw_net_test_free_mbufs(out, n);
			lc->now += retry;
		}
		gw_arp_tick(lc); /* gives up: forgotten */
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0);
		gw_arp_output(lc, ip_pkt(GW_NT_PEER_IP, 10), 0, nh);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_request_for(out[0], GW_NT_PEER_IP));
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(lc->st.arp_queued == 1);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* gratuitous ARP and conflicting replies: a binding we hold follows
	   * the latest sender (RFC 826 merge); a stranger's gratuitous ARP does
	   * not make a binding */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		uint32_t nh = rte_cpu_to_be_32(GW_NT_PEER_IP);
		uint32_t stranger = RTE_IPV4(10, 99, 0, 60);

		peer_asks(lc, GW_NT_PEER_IP, &gw_nt_peer_mac, true);
		/* gratuitous: sip == tip == peer, broadcast, new MAC */
		gw_net_input(lc,
			gw_net_test_arp(RTE_ARP_OP_REQUEST, &gw_nt_bcast, &other_mac, GW_NT_PEER_IP,
				&zero_mac, GW_NT_PEER_IP),
			false);
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0); /* not for us: no reply */
		gw_arp_output(lc, ip_pkt(GW_NT_PEER_IP, 1), 0, nh);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_ip_to(out[0], &other_mac, 1));
		gw_net_test_free_mbufs(out, n);
		/* a conflicting reply: the original MAC claims it back */
		gw_net_input(lc,
			gw_net_test_arp(RTE_ARP_OP_REPLY, &gw_nt_our_mac, &gw_nt_peer_mac,
				GW_NT_PEER_IP, &gw_nt_our_mac, GW_NT_OUR_IP),
			false);
		gw_arp_output(lc, ip_pkt(GW_NT_PEER_IP, 2), 0, nh);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_ip_to(out[0], &gw_nt_peer_mac, 2));
		gw_net_test_free_mbufs(out, n);
		/* a stranger's gratuitous ARP is not cached */
		gw_net_input(lc,
			gw_net_test_arp(RTE_ARP_OP_REPLY, &gw_nt_bcast, &other_mac, stranger,
				&zero_mac, stranger),
			false);
		gw_arp_output(lc, ip_pkt(stranger, 3), 0, rte_cpu_to_be_32(stranger));
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1 && is_request_for(out[0], stranger));
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* malformed frames are counted and dropped, never answered */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		struct rte_mbuf *m;
		struct rte_arp_hdr *ah;
		static const struct rte_ether_addr mcast = {{0x01, 0, 0x5e, 0, 0, 1}};

		m = gw_net_test_arp(RTE_ARP_OP_REQUEST, &gw_nt_bcast, &gw_nt_peer_mac,
			GW_NT_PEER_IP, &zero_mac, GW_NT_OUR_IP);
		rte_pktmbuf_trim(m, 1); /* truncated */
		gw_net_input(lc, m, false);
		m = gw_net_test_arp(RTE_ARP_OP_REQUEST, &gw_nt_bcast, &gw_nt_peer_mac,
			GW_NT_PEER_IP, &zero_mac, GW_NT_OUR_IP);
		ah = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, sizeof(struct rte_ether_hdr));
		ah->arp_hardware = rte_cpu_to_be_16(6); /* IEEE 802 */
		gw_net_input(lc, m, false);
		m = gw_net_test_arp(RTE_ARP_OP_REQUEST, &gw_nt_bcast, &gw_nt_peer_mac,
			GW_NT_PEER_IP, &zero_mac, GW_NT_OUR_IP);
		ah = rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, sizeof(struct rte_ether_hdr));
		ah->arp_plen = 16;
		gw_net_input(lc, m, false);
		gw_net_input(lc,
			gw_net_test_arp(RTE_ARP_OP_INVREQUEST, &gw_nt_bcast, &gw_nt_peer_mac,
				GW_NT_PEER_IP, &zero_mac, GW_NT_OUR_IP),
			false);
		peer_asks(lc, GW_NT_PEER_IP, &mcast, false);
		peer_asks(lc, GW_NT_PEER_IP, &zero_mac, false);
		EXPECT_TRUE(lc->st.arp_rx == 6 && lc->st.arp_bad == 6);
		EXPECT_TRUE(lc->st.arp_learned == 0 && lc->st.arp_reply_tx == 0);
		/* unicast to another MAC: not even looked at */
		gw_net_input(lc,
			gw_net_test_arp(RTE_ARP_OP_REQUEST, &other_mac, &gw_nt_peer_mac,
				GW_NT_PEER_IP, &zero_mac, GW_NT_OUR_IP),
			false);
		EXPECT_TRUE(lc->st.arp_rx == 6 && lc->st.drop_l2_dst == 1);
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	rte_eal_cleanup();
	gw_test_eal_dir_remove();
	GW_TEST_END();
}
