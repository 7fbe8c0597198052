/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * net_internal.h - the net layer's internal interface: Ethernet demux
 * (worker.c), ARP (arp.c), IPv4/ICMP and IP output (ipv4.c), buffered TX.
 * Everything here runs on one worker lcore and touches only that lcore's
 * struct gw_lcore plus the read-only struct gw_dp. Functions taking an mbuf
 * consume it on all paths.
 */
#ifndef GW_NET_INTERNAL_H
#define GW_NET_INTERNAL_H

#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dataplane_types.h"

#define GW_STAT(lc, name) ((lc)->st.name++)

/* Ethernet demux of one received frame (data at the Ethernet header). */
void gw_net_input(struct gw_lcore *lc, struct rte_mbuf *m, bool from_ring);

/* ARP frame (data at the Ethernet header). from_ring: a copy fanned out by
 * another worker, to learn from only (that worker answered it). */
void gw_arp_input(struct gw_lcore *lc, struct rte_mbuf *m, unsigned pidx, bool from_ring);

/* IPv4 frame (data at the Ethernet header). */
void gw_ipv4_input(struct gw_lcore *lc, struct rte_mbuf *m, unsigned pidx);

/* tcp's ip_output: m's data at the IPv4 header; route, resolve, send. */
void gw_ip_output(void *net_ctx, struct rte_mbuf *m);

/* tcp's flow_is_local and src_addr callbacks (net_ctx = struct gw_lcore). */
bool gw_net_flow_is_local(
	void *net_ctx, uint32_t laddr, uint32_t raddr, uint16_t lport, uint16_t rport);
uint32_t gw_net_src_addr(void *net_ctx, uint32_t raddr);

/* Route dst: egress port index and next hop. 0 or -ENETUNREACH. */
int gw_net_route(const struct gw_dp *dp, uint32_t dst, unsigned *pidx, uint32_t *nh);

/* Send m (data at the IPv4 header) to next hop nh on port pidx: prepend
 * Ethernet with the cached MAC, or hold m until ARP resolves nh. */
void gw_arp_output(struct gw_lcore *lc, struct rte_mbuf *m, unsigned pidx, uint32_t nh);

/* Slow timers: retries of unresolved next hops, expiry. */
void gw_arp_tick(struct gw_lcore *lc);

/* Free every held packet and forget every entry (worker teardown). */
void gw_arp_flush(struct gw_lcore *lc);

/* Worker lifecycle (worker.c), called on the worker's own lcore. */
int gw_worker_main(void *arg); /* rte_eal_remote_launch entry: setup, loop, teardown */
unsigned gw_worker_iterate(struct gw_lcore *lc);        /* one iteration; packets handled */
GW_MUST_CHECK int gw_worker_setup(struct gw_lcore *lc); /* TCP stack, listeners */
void gw_worker_teardown(struct gw_lcore *lc);           /* free what the worker owns */
/* Idle after an iteration that handled got packets: true if it slept.
 * Adaptive sleeps stay at the shortest while the poll hook waits
 * (hook_waits); with lc->intr it waits in epoll until the next tick. */
bool gw_worker_idle(struct gw_lcore *lc, unsigned got);
/*
 * idle: interrupt: make lc's eventfd and epoll instance and add its RX
 * queues' interrupt events (lc->intr: all of them had one), from the
 * main lcore before the workers start; undo it after they stopped
 * (fds -1 or absent ok). 0, or -errno with a message.
 */
GW_MUST_CHECK int gw_worker_wait_init(struct gw_lcore *lc);
void gw_worker_wait_fini(struct gw_lcore *lc);

/* Write t's wake_fd (idle: interrupt; -1: nothing to wake). */
static inline void
gw_worker_wake(const struct gw_lcore *t)
{
	static const uint64_t one = 1;

	if (t->wake_fd >= 0 && write(t->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN only (the counter is full): it wakes anyway */
	}
}

/*
 * Work was queued for worker t by another thread (its dispatch ring, a TX
 * ring it drains): wake it if it waits in epoll. After the enqueue; a
 * fence and a load when it does not sleep, a write(2) when it does.
 */
static inline void
gw_worker_kick(struct gw_lcore *t)
{
	if (!t->intr)
		return;
	/* pairs with the sleeper's fence between setting sleeping and looking
	 * at its rings: either it sees our packet or we see it asleep */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&t->sleeping, __ATOMIC_RELAXED) != 0 &&
		__atomic_exchange_n(&t->sleeping, 0, __ATOMIC_ACQ_REL) != 0)
		gw_worker_wake(t);
}

/* Which worker owns a TCP flow with this RX hash on port pidx. */
static inline unsigned
gw_dp_owner(const struct gw_dp *dp, unsigned pidx, uint32_t hash)
{
	return (hash % dp->ports[pidx].dev.reta_size) % dp->n_workers;
}

/* Flush one port's TX buffer. Unsent packets stay buffered for next time. */
static inline void
gw_tx_flush(struct gw_lcore *lc, unsigned pidx)
{
	struct gw_txbuf *tb = &lc->tx[pidx];
	struct gw_dp_port_rt *p = &lc->dp->ports[pidx];
	uint16_t sent, i;

	if (tb->n == 0)
		return;
	if (tb->via_ring)
		sent = (uint16_t)rte_ring_mp_enqueue_burst(
			p->txring, (void **)tb->pkts, tb->n, NULL);
	else
		sent = rte_eth_tx_burst(p->dev.port_id, tb->queue, tb->pkts, tb->n);
	if (tb->via_ring) {
		/* counted as tx_pkts by the worker that drains the ring (0) */
		lc->st.txring_tx += sent;
		if (sent != 0)
			gw_worker_kick(&lc->dp->lcores[0]);
	} else {
		for (i = 0; i < sent; i++)
			lc->st.tx_bytes += tb->pkts[i]->pkt_len;
		lc->st.tx_pkts += sent;
	}
	if (sent < tb->n)
		memmove(tb->pkts, tb->pkts + sent, (size_t)(tb->n - sent) * sizeof(tb->pkts[0]));
	tb->n = (uint16_t)(tb->n - sent);
}

/* Queue m (a complete frame) for TX on port pidx. */
static inline void
gw_tx_enqueue(struct gw_lcore *lc, unsigned pidx, struct rte_mbuf *m)
{
	struct gw_txbuf *tb = &lc->tx[pidx];

	if (tb->n == GW_TXBUF) {
		gw_tx_flush(lc, pidx);
		if (tb->n == GW_TXBUF) {
			/* the device keeps refusing: drop the oldest, TCP recovers */
			if (tb->via_ring)
				lc->st.txring_drop++;
			lc->st.tx_drop++;
			rte_pktmbuf_free(tb->pkts[0]);
			memmove(tb->pkts, tb->pkts + 1, (GW_TXBUF - 1) * sizeof(tb->pkts[0]));
			tb->n--;
		}
	}
	tb->pkts[tb->n++] = m;
}

#endif /* GW_NET_INTERNAL_H */
