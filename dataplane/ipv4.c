/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ipv4.c - IPv4 input (validation, drop counters by reason), ICMP echo, and
 * IPv4 output (route: on-link or default gateway; ARP; Ethernet) for one
 * worker lcore. We are an end host, not a router: packets not addressed to
 * one of our addresses are dropped, never forwarded.
 *
 * What we do not handle is dropped with a counter rather than half-handled:
 * fragments (a TCP-only gateway with MSS clamped to the MTU never needs
 * them), IP options (RFC 7126 recommends dropping most; nothing we speak
 * uses them), protocols other than TCP and ICMP.
 */
#include <rte_byteorder.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "net_internal.h"
#include "port.h"

int
gw_net_route(const struct gw_dp *dp, uint32_t dst, unsigned *pidx, uint32_t *nh)
{
	unsigned i;

	for (i = 0; i < dp->n_ports; i++) {
		if (((dst ^ dp->ports[i].ip) & dp->ports[i].mask) == 0) {
			*pidx = i;
			*nh = dst;
			return 0;
		}
	}
	for (i = 0; i < dp->n_ports; i++) {
		if (dp->ports[i].gateway != 0) {
			*pidx = i;
			*nh = dp->ports[i].gateway;
			return 0;
		}
	}
	return -ENETUNREACH;
}

void
gw_ip_output(void *net_ctx, struct rte_mbuf *m)
{
	struct gw_lcore *lc = net_ctx;
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv4_hdr *);
	unsigned pidx;
	uint32_t nh;

	if (gw_net_route(lc->dp, ip->dst_addr, &pidx, &nh) < 0) {
		GW_STAT(lc, ip_no_route);
		rte_pktmbuf_free(m);
		return;
	}
	gw_arp_output(lc, m, pidx, nh);
}

uint32_t
gw_net_src_addr(void *net_ctx, uint32_t raddr)
{
	struct gw_lcore *lc = net_ctx;
	unsigned pidx;
	uint32_t nh;

	if (gw_net_route(lc->dp, raddr, &pidx, &nh) < 0)
		return 0;
	return lc->dp->ports[pidx].ip;
}

bool
gw_net_flow_is_local(void *net_ctx, uint32_t laddr, uint32_t raddr, uint16_t lport, uint16_t rport)
{
	struct gw_lcore *lc = net_ctx;
	const struct gw_dp *dp = lc->dp;
	unsigned pidx;
	uint32_t nh;

	if (dp->n_workers == 1)
		return true;
	/* return traffic arrives on the egress port, hashed as it arrives */
	if (gw_net_route(dp, raddr, &pidx, &nh) < 0)
		return true;
	return gw_dp_owner(dp, pidx, gw_port_rss_hash(raddr, laddr, rport, lport)) == lc->idx;
}

static bool
is_ours(const struct gw_dp *dp, uint32_t ip)
{
	unsigned i;

	for (i = 0; i < dp->n_ports; i++)
		if (dp->ports[i].ip == ip)
			return true;
	return false;
}

/* m's data at the IPv4 header (Ethernet removed); header already valid. */
static void
icmp_input(struct gw_lcore *lc, struct rte_mbuf *m, unsigned pidx)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	unsigned hl = sizeof(*ip);
	unsigned len = rte_pktmbuf_pkt_len(m) - hl;
	struct rte_icmp_hdr *ic;
	uint32_t tmp;

	(void)pidx;
	if (len < sizeof(*ic) || rte_pktmbuf_data_len(m) != rte_pktmbuf_pkt_len(m)) {
		GW_STAT(lc, icmp_bad);
		goto drop;
	}
	ic = (struct rte_icmp_hdr *)((char *)ip + hl);
	if (ic->icmp_type != RTE_IP_ICMP_ECHO_REQUEST || ic->icmp_code != 0) {
		GW_STAT(lc, icmp_other);
		goto drop;
	}
	if (rte_raw_cksum(ic, len) != 0xffff) {
		GW_STAT(lc, icmp_bad);
		goto drop;
	}
	/* Reply in place (RFC 792): swap addresses, type 0, same id/seq/data. */
	ic->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	ic->icmp_cksum = 0;
	ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, len);
	tmp = ip->src_addr;
	ip->src_addr = ip->dst_addr;
	ip->dst_addr = tmp;
	ip->time_to_live = 64;
	ip->fragment_offset = 0;
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	m->ol_flags = 0;
	GW_STAT(lc, icmp_echo);
	gw_ip_output(lc, m);
	return;
drop:
	rte_pktmbuf_free(m);
}

void
gw_ipv4_input(struct gw_lcore *lc, struct rte_mbuf *m, unsigned pidx)
{
	struct rte_ipv4_hdr *ip;
	uint32_t avail, hl, tot, src;
	uint64_t ck;

	GW_STAT(lc, ip_rx);
	rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
	avail = rte_pktmbuf_data_len(m);
	if (avail < sizeof(*ip)) {
		GW_STAT(lc, ip_bad_hdr);
		goto drop;
	}
	ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	hl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	if ((ip->version_ihl >> 4) != 4 || hl < sizeof(*ip) || hl > avail) {
		GW_STAT(lc, ip_bad_hdr);
		goto drop;
	}
	ck = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (ck == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
		(ck != RTE_MBUF_F_RX_IP_CKSUM_GOOD && rte_raw_cksum(ip, hl) != 0xffff)) {
		GW_STAT(lc, ip_bad_cksum);
		goto drop;
	}
	tot = rte_be_to_cpu_16(ip->total_length);
	if (tot < hl || tot > rte_pktmbuf_pkt_len(m)) {
		GW_STAT(lc, ip_bad_len);
		goto drop;
	}
	/* Ethernet pads short frames: keep exactly the IP datagram */
	if (tot < rte_pktmbuf_pkt_len(m))
		rte_pktmbuf_trim(m, (uint16_t)(rte_pktmbuf_pkt_len(m) - tot));
	if (ip->fragment_offset &
		rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) {
		GW_STAT(lc, ip_frag);
		goto drop;
	}
	if (!is_ours(lc->dp, ip->dst_addr)) {
		GW_STAT(lc, ip_not_ours);
		goto drop;
	}
	src = rte_be_to_cpu_32(ip->src_addr);
	if (src == 0 || src == 0xffffffffu || (src >> 28) == 0xe || (src >> 24) == 127 ||
		is_ours(lc->dp, ip->src_addr)) {
		GW_STAT(lc, ip_martian);
		goto drop;
	}
	if (hl != sizeof(*ip)) {
		GW_STAT(lc, ip_options);
		goto drop;
	}
	m->l2_len = 0;
	m->l3_len = hl;
	switch (ip->next_proto_id) {
	case IPPROTO_TCP:
		GW_STAT(lc, tcp_rx);
		gw_tcp_input(lc->tcp, m);
		return;
	case IPPROTO_ICMP:
		icmp_input(lc, m, pidx);
		return;
	default:
		GW_STAT(lc, ip_proto);
		goto drop;
	}
drop:
	rte_pktmbuf_free(m);
}
