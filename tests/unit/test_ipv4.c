/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_ipv4.c - dataplane/ipv4.c on a worker without a NIC
 * (tests/lib/gw_net_test.c): header checks with their drop counters
 * (version, IHL, checksum in software and by offload flag, total length,
 * fragments, options, destination, martian sources, protocol), Ethernet
 * padding, TTL, ICMP echo (RFC 792) and what it refuses, delivery to TCP,
 * and routing (on-link, gateway, none).
 */
#include <string.h>

#include <rte_arp.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "gw_dpdk_test.h"
#include "gw_net_test.h"
#include "gw_test.h"

static const uint8_t ping_data[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* Push m through the worker's Ethernet demux; return frames sent. */
static unsigned
run(struct gw_net_test *t, struct rte_mbuf *m, struct rte_mbuf **out)
{
	gw_net_input(gw_net_test_lc(t, 0), m, false);
	return gw_net_test_tx(t, out, 16);
}

/* Drop counters of the IPv4 layer, summed: each bad packet moves one. */
static uint64_t
ip_drops(const struct gw_lcore *lc)
{
	return lc->st.ip_bad_hdr + lc->st.ip_bad_cksum + lc->st.ip_bad_len + lc->st.ip_frag +
	       lc->st.ip_options + lc->st.ip_not_ours + lc->st.ip_martian + lc->st.ip_proto;
}

static bool
cksum_ok(const void *p, unsigned len)
{
	return rte_raw_cksum(p, len) == 0xffff;
}

int
main(void)
{
	struct rte_mbuf *out[16];
	unsigned n;

	GW_TEST_BEGIN();
	if (gw_net_test_eal("test_ipv4") < 0)
		return 1;

	{ /* echo request -> echo reply, in place, to the peer's MAC */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		struct rte_mbuf *m;

		gw_net_test_learn_peer(t);
		m = gw_net_test_echo(
			GW_NT_PEER_IP, GW_NT_OUR_IP, 0x1234, 7, ping_data, sizeof(ping_data));
		gw_net_test_ip(m)->time_to_live = 1; /* an end host takes TTL 1 */
		gw_net_test_ip_fix(m);
		n = run(t, m, out);
		EXPECT_TRUE(n == 1);
		if (n == 1) {
			const struct rte_ether_hdr *eh = rte_pktmbuf_mtod(out[0], void *);
			const struct rte_ipv4_hdr *ip = (const void *)(eh + 1);
			const struct rte_icmp_hdr *ic = (const void *)(ip + 1);
			unsigned ilen = sizeof(*ic) + sizeof(ping_data);

			EXPECT_TRUE(rte_is_same_ether_addr(&eh->dst_addr, &gw_nt_peer_mac));
			EXPECT_TRUE(rte_is_same_ether_addr(&eh->src_addr, &gw_nt_our_mac));
			EXPECT_TRUE(ip->src_addr == rte_cpu_to_be_32(GW_NT_OUR_IP));
			EXPECT_TRUE(ip->dst_addr == rte_cpu_to_be_32(GW_NT_PEER_IP));
			EXPECT_TRUE(ip->time_to_live == 64);
			EXPECT_TRUE(ip->fragment_offset == 0);
			EXPECT_TRUE(cksum_ok(ip, sizeof(*ip)));
			EXPECT_TRUE(out[0]->pkt_len == sizeof(*eh) + sizeof(*ip) + ilen);
			EXPECT_TRUE(ic->icmp_type == RTE_IP_ICMP_ECHO_REPLY && ic->icmp_code == 0);
			EXPECT_TRUE(ic->icmp_ident == rte_cpu_to_be_16(0x1234));
			EXPECT_TRUE(ic->icmp_seq_nb == rte_cpu_to_be_16(7));
			EXPECT_TRUE(memcmp(ic + 1, ping_data, sizeof(ping_data)) == 0);
			EXPECT_TRUE(cksum_ok(ic, ilen));
		}
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(lc->st.ip_rx == 1 && lc->st.icmp_echo == 1 && ip_drops(lc) == 0);
		/* Ethernet padding after the datagram is cut, not echoed */
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, "x", 1);
		memset(rte_pktmbuf_append(m, 17), 0xee, 17);
		n = run(t, m, out);
		EXPECT_TRUE(n == 1 && out[0]->pkt_len == sizeof(struct rte_ether_hdr) +
								 sizeof(struct rte_ipv4_hdr) +
								 sizeof(struct rte_icmp_hdr) + 1);
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(lc->st.icmp_echo == 2);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* ICMP we do not answer: bad checksum, truncated, other types */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		struct rte_mbuf *m;
		struct rte_icmp_hdr *ic;
		uint8_t four[4] = {8, 0, 0, 0};

		gw_net_test_learn_peer(t);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, ping_data, 8);
		ic = rte_pktmbuf_mtod_offset(m, struct rte_icmp_hdr *,
			sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr));
		ic->icmp_cksum ^= 0x0100;
		EXPECT_TRUE(run(t, m, out) == 0);
		EXPECT_TRUE(
			run(t, gw_net_test_ipv4(GW_NT_PEER_IP, GW_NT_OUR_IP, IPPROTO_ICMP, four, 4),
				out) == 0);
		EXPECT_TRUE(lc->st.icmp_bad == 2);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		ic = rte_pktmbuf_mtod_offset(m, struct rte_icmp_hdr *,
			sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr));
		ic->icmp_type = RTE_IP_ICMP_ECHO_REPLY; /* a reply: never answered */
		ic->icmp_cksum = 0;
		ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, sizeof(*ic));
		EXPECT_TRUE(run(t, m, out) == 0);
		EXPECT_TRUE(lc->st.icmp_other == 1 && lc->st.icmp_echo == 0);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* header checks: each bad header is dropped with its own counter */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		struct rte_mbuf *m;
		struct rte_ipv4_hdr *ip;

		gw_net_test_learn_peer(t);
		/* bad checksum */
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		gw_net_test_ip(m)->hdr_checksum ^= 0x0001;
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_bad_cksum == 1);
		/* the NIC said bad: dropped even though the sum is right */
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD;
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_bad_cksum == 2);
		/* the NIC said good: the sum is not checked again */
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		gw_net_test_ip(m)->hdr_checksum ^= 0x0001;
		m->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;
		n = run(t, m, out);
		EXPECT_TRUE(n == 1 && lc->st.icmp_echo == 1);
		gw_net_test_free_mbufs(out, n);
		/* IHL below 5, IHL past the frame, version 6, a runt */
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		gw_net_test_ip(m)->version_ihl = 0x44;
		gw_net_test_ip_fix(m);
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_bad_hdr == 1);
		m = gw_net_test_ipv4(GW_NT_PEER_IP, GW_NT_OUR_IP, IPPROTO_TCP, NULL, 0);
		gw_net_test_ip(m)->version_ihl = 0x4f; /* 60 bytes, the frame has 20 */
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_bad_hdr == 2);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		gw_net_test_ip(m)->version_ihl = 0x65;
		gw_net_test_ip_fix(m);
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_bad_hdr == 3);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		rte_pktmbuf_trim(m, (uint16_t)(m->pkt_len - sizeof(struct rte_ether_hdr) - 19));
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_bad_hdr == 4);
		/* total length longer than the frame, shorter than the header */
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		gw_net_test_ip(m)->total_length = rte_cpu_to_be_16(200);
		gw_net_test_ip_fix(m);
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_bad_len == 1);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		gw_net_test_ip(m)->total_length = rte_cpu_to_be_16(19);
		gw_net_test_ip_fix(m);
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_bad_len == 2);
		/* fragments: more-fragments, or an offset; DF alone is fine */
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		gw_net_test_ip(m)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
		gw_net_test_ip_fix(m);
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_frag == 1);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		gw_net_test_ip(m)->fragment_offset = rte_cpu_to_be_16(185);
		gw_net_test_ip_fix(m);
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_frag == 2);
		/* options: a 24-byte header (NOPs + EOL), checksum right */
		{
			uint8_t pl[4 + 8] = {1, 1, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0};

			m = gw_net_test_ipv4(
				GW_NT_PEER_IP, GW_NT_OUR_IP, IPPROTO_ICMP, pl, sizeof(pl));
			ip = gw_net_test_ip(m);
			ip->version_ihl = 0x46;
			gw_net_test_ip_fix(m);
			EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_options == 1);
		}
		/* not our address (we never forward) */
		m = gw_net_test_echo(GW_NT_PEER_IP, RTE_IPV4(10, 99, 0, 3), 1, 1, NULL, 0);
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_not_ours == 1);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_IPV4(255, 255, 255, 255), 1, 1, NULL, 0);
		EXPECT_TRUE(run(t, m, out) == 0 && lc->st.ip_not_ours == 2);
		/* martian sources */
		{
			const uint32_t bad[] = {0, 0xffffffffu, GW_NT_IPV4(224, 0, 0, 1),
				RTE_IPV4(127, 0, 0, 1), GW_NT_OUR_IP};

			for (unsigned i = 0; i < RTE_DIM(bad); i++)
				EXPECT_TRUE(run(t,
						    gw_net_test_echo(
							    bad[i], GW_NT_OUR_IP, 1, 1, NULL, 0),
						    out) == 0);
			EXPECT_TRUE(lc->st.ip_martian == RTE_DIM(bad));
		}
		/* neither TCP nor ICMP */
		EXPECT_TRUE(
			run(t, gw_net_test_ipv4(GW_NT_PEER_IP, GW_NT_OUR_IP, IPPROTO_UDP, "u", 1),
				out) == 0);
		EXPECT_TRUE(lc->st.ip_proto == 1);
		EXPECT_TRUE(lc->st.icmp_echo == 1 && lc->st.tcp_rx == 0);
		EXPECT_TRUE(ip_drops(lc) == 4 + 2 + 2 + 2 + 1 + 2 + 5 + 1);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* TCP is handed to the stack: a SYN to a closed port gets its RST */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);

		gw_net_test_learn_peer(t);
		n = run(t,
			gw_net_test_tcp(
				GW_NT_PEER_IP, GW_NT_OUR_IP, 40000, 81, 1000, 0, RTE_TCP_SYN_FLAG),
			out);
		EXPECT_TRUE(lc->st.tcp_rx == 1);
		/* RSTs go out at once, not at the next poll */
		EXPECT_TRUE(n == 1);
		if (n == 1) {
			const struct rte_ipv4_hdr *ip = gw_net_test_ip(out[0]);
			const struct rte_tcp_hdr *th = (const void *)(ip + 1);

			EXPECT_TRUE(ip->dst_addr == rte_cpu_to_be_32(GW_NT_PEER_IP));
			EXPECT_TRUE(th->tcp_flags == (RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG));
			EXPECT_TRUE(th->recv_ack == rte_cpu_to_be_32(1001));
		}
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* routing: on-link direct, off-link via the gateway (ARP for it),
	   * nothing without a gateway */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		unsigned pidx = 9;
		uint32_t nh = 0;

		EXPECT_OK(gw_net_route(lc->dp, rte_cpu_to_be_32(GW_NT_PEER_IP), &pidx, &nh));
		EXPECT_TRUE(pidx == 0 && nh == rte_cpu_to_be_32(GW_NT_PEER_IP));
		EXPECT_OK(gw_net_route(lc->dp, rte_cpu_to_be_32(RTE_IPV4(8, 8, 8, 8)), &pidx, &nh));
		EXPECT_TRUE(pidx == 0 && nh == rte_cpu_to_be_32(GW_NT_GW_IP));
		EXPECT_TRUE(gw_net_src_addr(lc, rte_cpu_to_be_32(RTE_IPV4(8, 8, 8, 8))) ==
			    rte_cpu_to_be_32(GW_NT_OUR_IP));
		/* a ping from afar is answered through the gateway: ARP first */
		n = run(t, gw_net_test_echo(RTE_IPV4(8, 8, 8, 8), GW_NT_OUR_IP, 1, 1, NULL, 0),
			out);
		EXPECT_TRUE(n == 1);
		if (n == 1) {
			const struct rte_arp_hdr *ah = rte_pktmbuf_mtod_offset(
				out[0], const struct rte_arp_hdr *, sizeof(struct rte_ether_hdr));

			EXPECT_TRUE(ah->arp_data.arp_tip == rte_cpu_to_be_32(GW_NT_GW_IP));
		}
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(lc->st.arp_queued == 1 && lc->st.icmp_echo == 1);
		lc->dp->ports[0].gateway = 0;
		EXPECT_ERR(gw_net_route(lc->dp, rte_cpu_to_be_32(RTE_IPV4(8, 8, 8, 8)), &pidx, &nh),
			-ENETUNREACH);
		EXPECT_TRUE(gw_net_src_addr(lc, rte_cpu_to_be_32(RTE_IPV4(8, 8, 8, 9))) == 0);
		n = run(t, gw_net_test_echo(RTE_IPV4(8, 8, 8, 9), GW_NT_OUR_IP, 1, 1, NULL, 0),
			out);
		EXPECT_TRUE(n == 0 && lc->st.ip_no_route == 1);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	rte_eal_cleanup();
	gw_test_eal_dir_remove();
	GW_TEST_END();
}
