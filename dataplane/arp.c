/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * arp.c - ARP (RFC 826) for one worker lcore: answer for our addresses,
 * learn, and resolve next hops with a small per-lcore cache that holds a
 * bounded queue of packets per unresolved next hop.
 *
 * Each worker keeps its own cache (no sharing, no locks). Whoever receives an
 * ARP frame from a port answers it and fans a reference-counted copy out to
 * every other worker's ring (worker.c), so all caches learn the same
 * bindings; ARP is rare, so the copies cost nothing that matters.
 *
 * The cache is set-associative (GW_ARP_SETS x GW_ARP_WAYS): a bounded probe,
 * no tombstones, and eviction picks the least useful way of a full set.
 */
#include <string.h>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "net_internal.h"

static inline unsigned
arp_set(uint32_t ip)
{
	/* Fibonacci hashing: consecutive host addresses land in different sets */
	return (rte_be_to_cpu_32(ip) * 2654435761u) >> 26; /* 64 sets */
}

static struct gw_arp_entry *
arp_find(struct gw_lcore *lc, uint32_t ip)
{
	struct gw_arp_entry *set = lc->arp.e[arp_set(ip)];
	unsigned w;

	for (w = 0; w < GW_ARP_WAYS; w++)
		if (set[w].state != GW_ARP_FREE && set[w].ip == ip)
			return &set[w];
	return NULL;
}

static void
arp_drop_pending(struct gw_lcore *lc, struct gw_arp_entry *e)
{
	unsigned i;

	for (i = 0; i < e->n_pending; i++)
		rte_pktmbuf_free(e->pending[i]);
	lc->st.arp_unresolved += e->n_pending;
	e->n_pending = 0;
}

/* A slot for ip: free way, else the oldest REACHABLE one, else NULL. */
static struct gw_arp_entry *
arp_alloc(struct gw_lcore *lc, uint32_t ip)
{
	struct gw_arp_entry *set = lc->arp.e[arp_set(ip)], *victim = NULL;
	unsigned w;

	for (w = 0; w < GW_ARP_WAYS; w++) {
		if (set[w].state == GW_ARP_FREE)
			return &set[w];
		if (set[w].state == GW_ARP_REACHABLE &&
			(victim == NULL || set[w].deadline < victim->deadline))
			victim = &set[w];
	}
	return victim; /* never evict a next hop that still holds packets */
}

static struct rte_mbuf *
arp_build(struct gw_lcore *lc, unsigned pidx, uint16_t op, const struct rte_ether_addr *dmac,
	uint32_t tip, const struct rte_ether_addr *tha)
{
	const struct gw_dp_port_rt *p = &lc->dp->ports[pidx];
	struct rte_mbuf *m = rte_pktmbuf_alloc(lc->dp->pool);
	struct rte_ether_hdr *eh;
	struct rte_arp_hdr *ah;

	if (m == NULL) {
		GW_STAT(lc, nombuf);
		return NULL;
	}
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(m, sizeof(*eh) + sizeof(*ah));
	ah = (struct rte_arp_hdr *)(eh + 1);
	eh->dst_addr = *dmac;
	eh->src_addr = p->dev.mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	ah->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = RTE_ETHER_ADDR_LEN;
	ah->arp_plen = 4;
	ah->arp_opcode = rte_cpu_to_be_16(op);
	ah->arp_data.arp_sha = p->dev.mac;
	ah->arp_data.arp_sip = p->ip;
	ah->arp_data.arp_tha = *tha;
	ah->arp_data.arp_tip = tip;
	return m;
}

static void
arp_request(struct gw_lcore *lc, unsigned pidx, uint32_t tip)
{
	static const struct rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
	static const struct rte_ether_addr zero = {{0}};
	struct rte_mbuf *m = arp_build(lc, pidx, RTE_ARP_OP_REQUEST, &bcast, tip, &zero);

	if (m == NULL)
		return;
	GW_STAT(lc, arp_req_tx);
	gw_tx_enqueue(lc, pidx, m);
}

/* Prepend Ethernet to m (data at IPv4) and queue it for TX. */
static void
arp_send_resolved(
	struct gw_lcore *lc, struct rte_mbuf *m, unsigned pidx, const struct rte_ether_addr *dmac)
{
	struct rte_ether_hdr *eh =
		(struct rte_ether_hdr *)rte_pktmbuf_prepend(m, sizeof(struct rte_ether_hdr));

	if (eh == NULL) {
		GW_STAT(lc, nombuf);
		rte_pktmbuf_free(m);
		return;
	}
	eh->dst_addr = *dmac;
	eh->src_addr = lc->dp->ports[pidx].dev.mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	m->l2_len = sizeof(*eh);
	gw_tx_enqueue(lc, pidx, m);
}

/* Record ip -> mac as REACHABLE and release what waited for it. */
static void
arp_learn(struct gw_lcore *lc, struct gw_arp_entry *e, unsigned pidx, uint32_t ip,
	const struct rte_ether_addr *mac)
{
	unsigned i;

	if (e->state == GW_ARP_FREE)
		e->n_pending = 0;
	e->ip = ip;
	e->port = (uint8_t)pidx;
	e->mac = *mac;
	e->state = GW_ARP_REACHABLE;
	e->tries = 0;
	e->deadline = lc->now + (uint64_t)GW_ARP_REACHABLE_S * lc->dp->tsc_hz;
	GW_STAT(lc, arp_learned);
	for (i = 0; i < e->n_pending; i++)
		arp_send_resolved(lc, e->pending[i], e->port, &e->mac);
	e->n_pending = 0;
}

void
gw_arp_input(struct gw_lcore *lc, struct rte_mbuf *m, unsigned pidx, bool from_ring)
{
	const struct gw_dp_port_rt *p = &lc->dp->ports[pidx];
	const struct rte_arp_hdr *ah;
	struct gw_arp_entry *e;
	struct rte_ether_addr sha;
	uint32_t sip, tip;
	uint16_t op;

	GW_STAT(lc, arp_rx);
	if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr) + sizeof(*ah)) {
		GW_STAT(lc, arp_bad);
		goto out;
	}
	/* read-only: the mbuf may be shared with other workers' rings */
	ah = rte_pktmbuf_mtod_offset(m, const struct rte_arp_hdr *, sizeof(struct rte_ether_hdr));
	op = rte_be_to_cpu_16(ah->arp_opcode);
	if (ah->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
		ah->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
		ah->arp_hlen != RTE_ETHER_ADDR_LEN || ah->arp_plen != 4 ||
		(op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY)) {
		GW_STAT(lc, arp_bad);
		goto out;
	}
	sip = ah->arp_data.arp_sip;
	tip = ah->arp_data.arp_tip;
	sha = ah->arp_data.arp_sha;
	if (!rte_is_unicast_ether_addr(&sha) || rte_is_zero_ether_addr(&sha)) {
		GW_STAT(lc, arp_bad);
		goto out;
	}
	/* RFC 826 merge: refresh a binding we hold; add one if it is for us.
	 * Probes (sip 0) and addresses off this port's subnet teach nothing. */
	if (sip != 0 && sip != p->ip && ((sip ^ p->ip) & p->mask) == 0) {
		e = arp_find(lc, sip);
		if (e == NULL && tip == p->ip) {
			e = arp_alloc(lc, sip);
			if (e == NULL)
				GW_STAT(lc, arp_cache_full);
			else if (e->state == GW_ARP_REACHABLE)
				e->state = GW_ARP_FREE; /* evicted */
		}
		if (e != NULL)
			arp_learn(lc, e, pidx, sip, &sha);
	}
	if (!from_ring && op == RTE_ARP_OP_REQUEST && tip == p->ip) {
		struct rte_mbuf *r = arp_build(lc, pidx, RTE_ARP_OP_REPLY, &sha, sip, &sha);

		if (r != NULL) {
			GW_STAT(lc, arp_reply_tx);
			gw_tx_enqueue(lc, pidx, r);
		}
	}
out:
	rte_pktmbuf_free(m);
}

void
gw_arp_output(struct gw_lcore *lc, struct rte_mbuf *m, unsigned pidx, uint32_t nh)
{
	struct gw_arp_entry *e = arp_find(lc, nh);

	if (e != NULL && e->state == GW_ARP_REACHABLE) {
		arp_send_resolved(lc, m, e->port, &e->mac);
		return;
	}
	if (e == NULL) {
		e = arp_alloc(lc, nh);
		if (e == NULL) {
			GW_STAT(lc, arp_cache_full);
			rte_pktmbuf_free(m);
			return;
		}
		e->ip = nh;
		e->port = (uint8_t)pidx;
		e->state = GW_ARP_INCOMPLETE;
		e->tries = 1;
		e->n_pending = 0;
		e->deadline = lc->now + lc->dp->tsc_hz * GW_ARP_RETRY_MS / 1000;
		arp_request(lc, pidx, nh);
	}
	if (e->n_pending == GW_ARP_PENDING) {
		GW_STAT(lc, arp_queue_drop);
		rte_pktmbuf_free(m);
		return;
	}
	GW_STAT(lc, arp_queued);
	e->pending[e->n_pending++] = m;
}

void
gw_arp_tick(struct gw_lcore *lc)
{
	unsigned s, w;

	for (s = 0; s < GW_ARP_SETS; s++) {
		for (w = 0; w < GW_ARP_WAYS; w++) {
			struct gw_arp_entry *e = &lc->arp.e[s][w];

			if (e->state == GW_ARP_FREE || lc->now < e->deadline)
				continue;
			if (e->state == GW_ARP_REACHABLE) {
				/* Expired: ask again while still using the old MAC, so a
				 * busy flow never stalls on re-resolution; forget it only
				 * if nobody answers (RFC 1122 2.3.2.1: unused or stale
				 * entries must time out). */
				if (e->tries >= GW_ARP_RETRIES) {
					e->state = GW_ARP_FREE;
					continue;
				}
				e->tries++;
				e->deadline = lc->now + lc->dp->tsc_hz * GW_ARP_RETRY_MS / 1000;
				arp_request(lc, e->port, e->ip);
				continue;
			}
			if (e->tries >= GW_ARP_RETRIES) {
				arp_drop_pending(lc, e);
				e->state = GW_ARP_FREE;
				continue;
			}
			e->tries++;
			e->deadline = lc->now + lc->dp->tsc_hz * GW_ARP_RETRY_MS / 1000;
			arp_request(lc, e->port, e->ip);
		}
	}
}

void
gw_arp_flush(struct gw_lcore *lc)
{
	unsigned s, w;

	for (s = 0; s < GW_ARP_SETS; s++)
		for (w = 0; w < GW_ARP_WAYS; w++) {
			struct gw_arp_entry *e = &lc->arp.e[s][w];

			if (e->state == GW_ARP_INCOMPLETE)
				arp_drop_pending(lc, e);
			e->state = GW_ARP_FREE;
		}
}
