/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * worker.c - the worker lcore: its main loop, Ethernet demux, the software
 * Toeplitz dispatcher, and adaptive idle.
 *
 * One iteration: RX burst from each of our port queues (dispatching packets
 * that belong to other workers), drain our dispatch ring, drain the shared
 * TX ring of ports where we own queue 0, gw_tcp_poll, slow timers every
 * GW_TICK_MS (ARP retries/expiry, counter copy), flush TX. No locks, no
 * heap, no syscalls and no logging per packet; the only syscalls are the
 * idle sleep or wait when there was nothing to do, and with idle:
 * interrupt a write(2) to wake a waiting worker we queued work for.
 *
 * Software dispatch: a port without hardware RSS (tap, af_packet, memif,
 * af_xdp) delivers flows to whichever queue the kernel or peer chose. Every
 * worker polling such a queue computes the Toeplitz hash with the NIC key
 * (gw_port_rss_hash) over the TCP 4-tuple and hands the packet to its owner
 * (gw_dp_owner) through the owner's MP/SC rte_ring. tcp's flow_is_local uses
 * the same function, so return traffic of our own active opens comes home.
 * ARP is answered by the receiver and fanned out to every worker (each keeps
 * its own cache); ICMP and anything not TCP is handled by the receiver.
 *
 * Adaptive idle (docs/architecture.md "Threads and lcores"): after GW_IDLE_SPINS
 * empty iterations the worker sleeps, starting at GW_IDLE_MIN_US and doubling
 * to GW_IDLE_MAX_US while it received something in the last
 * GW_IDLE_RECENT_MS, to GW_IDLE_DEEP_US after that; any packet resets it.
 * The two ceilings: a packet that arrives during a sleep waits for its end,
 * and a connection's first packet after a quiet spell mostly does, so under
 * traffic, however light, the wait stays short (measured by bench/run
 * --latency80 paced at 10% of saturation: p50 2.8 -> 1.7 ms at 1 ms ->
 * 200 us), while a worker with no traffic at all wakes 1,000 times a second,
 * not 5,000 (2.6% of a core idle instead of 10.8%). While the poll hook says
 * it waits (a handshake parked on an HSM signature) the sleeps wait on its
 * fd too (nap_hook: the answer ends them), or stay at GW_IDLE_MIN_US where
 * it has none; while it says a packet is due soon (a handshake began to
 * wait for its client's next flight in the last 10 ms, tls.c TLS_SOON_MS)
 * they stop at GW_IDLE_SOON_US (measured on one
 * client: p50 paced at 80% 1.28 -> 1.19 and 1.75 -> 1.35 ms, at a higher
 * saturated rate and no more CPU per handshake than the noise). idle: poll
 * never sleeps.
 *
 * idle: interrupt (lc->intr): after the same GW_IDLE_SPINS the worker
 * waits in epoll until its next tick (wait_intr) for its RX queues'
 * interrupt events, its wake_fd (gw_worker_kick: another worker queued a
 * packet for it while it slept; the stop) and the poll hook's fd (HSM
 * answers), except while the hook says it waits (a handshake parked on
 * an HSM signature): then it takes adaptive's shortest sleeps, which end
 * sooner than a wake-up from epoll on the boxes measured. The sleeping
 * flag and a seq_cst fence on both sides make sure a producer either sees
 * it asleep and writes wake_fd or its packet is seen by the re-check
 * before the wait.
 *
 * Busy cycles (gw_dp_worker_info): the TSC cycles of iterations that did
 * work, so "handshakes per core-second" excludes polling and sleeping.
 * Loops: every iteration counts, the progress the systemd watchdog is fed
 * on (gateway.h).
 *
 * Test hook (-Dtest_hooks=true builds only): GW_TEST_STALL_WORKER_AFTER=S
 * makes worker 0 stop iterating S seconds after it started, as a worker
 * stuck in a loop would (it only waits for the stop), so a test can see
 * the watchdog pings stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "dp_counters.h"
#include "net_internal.h"
#include "svc.h"

#define GW_TICK_MS 10
/* empty iterations before a sleep: about 0.1 us each on the boxes measured,
 * and a sleep's 10 us ends soon anyway; 256 spent ~200 us of CPU per
 * handshake at one client (bench/run --profile: 8 idle spells of 256) */
#define GW_IDLE_SPINS 32
#define GW_IDLE_MIN_US 10
#define GW_IDLE_MAX_US 200
#define GW_IDLE_SOON_US 40 /* while the hook expects a packet soon */
#define GW_IDLE_RECENT_MS 1000
#define GW_IDLE_DEEP_US 1000

void
gw_net_input(struct gw_lcore *lc, struct rte_mbuf *m, bool from_ring)
{
	const struct rte_ether_hdr *eh;
	int16_t pidx;

	pidx = m->port < RTE_MAX_ETHPORTS ? lc->dp->port_idx[m->port] : -1;
	if (unlikely(pidx < 0 || rte_pktmbuf_data_len(m) < sizeof(*eh))) {
		GW_STAT(lc, drop_runt);
		goto drop;
	}
	if (unlikely(m->nb_segs != 1)) {
		GW_STAT(lc, drop_multiseg);
		goto drop;
	}
	eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
		if (unlikely(
			    !rte_is_same_ether_addr(&eh->dst_addr, &lc->dp->ports[pidx].dev.mac))) {
			GW_STAT(lc, drop_l2_dst);
			goto drop;
		}
		gw_ipv4_input(lc, m, (unsigned)pidx);
		return;
	}
	if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP)) {
		if (!rte_is_broadcast_ether_addr(&eh->dst_addr) &&
			!rte_is_same_ether_addr(&eh->dst_addr, &lc->dp->ports[pidx].dev.mac)) {
			GW_STAT(lc, drop_l2_dst);
			goto drop;
		}
		gw_arp_input(lc, m, (unsigned)pidx, from_ring);
		return;
	}
	GW_STAT(lc, drop_l2_proto);
drop:
	rte_pktmbuf_free(m);
}

/*
 * Which worker a frame from port pidx belongs to: the owner of its TCP flow,
 * this worker for everything else, or -1 for ARP (everyone).
 */
static int
dispatch_target(const struct gw_lcore *lc, const struct rte_mbuf *m, unsigned pidx)
{
	const struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip;
	const struct rte_tcp_hdr *th;
	unsigned hl;

	if (rte_pktmbuf_data_len(m) < sizeof(*eh) + sizeof(*ip))
		return eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP) ? -1 : lc->idx;
	if (eh->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP) ? -1 : lc->idx;
	ip = (const struct rte_ipv4_hdr *)(eh + 1);
	hl = (ip->version_ihl & 0x0f) * 4u;
	if (ip->next_proto_id != IPPROTO_TCP || hl < sizeof(*ip) ||
		rte_pktmbuf_data_len(m) < sizeof(*eh) + hl + 4 ||
		(ip->fragment_offset &
			rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
		return lc->idx; /* dropped or answered here: no flow to keep together */
	th = (const struct rte_tcp_hdr *)((const char *)ip + hl);
	return (int)gw_dp_owner(lc->dp, pidx,
		gw_port_rss_hash(ip->src_addr, ip->dst_addr, th->src_port, th->dst_port));
}

static void
dispatch_burst(struct gw_lcore *lc, struct rte_mbuf **pkts, uint16_t n, unsigned pidx)
{
	struct gw_dp *dp = lc->dp;
	uint64_t kick = 0; /* workers we queued for (GW_DP_MAX_WORKERS <= 64) */
	uint16_t i;
	unsigned w;

	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		int t = dispatch_target(lc, m, pidx);

		if (t == (int)lc->idx) {
			gw_net_input(lc, m, false);
			continue;
		}
		if (t >= 0) {
			if (rte_ring_mp_enqueue(dp->lcores[t].ring, m) == 0) {
				GW_STAT(lc, dispatch_tx);
				kick |= UINT64_C(1) << t;
			} else {
				GW_STAT(lc, dispatch_drop);
				rte_pktmbuf_free(m);
			}
			continue;
		}
		/* ARP: everyone learns (read-only copies), we answer */
		for (w = 0; w < dp->n_workers; w++) {
			if (w == lc->idx)
				continue;
			rte_mbuf_refcnt_update(m, 1);
			if (rte_ring_mp_enqueue(dp->lcores[w].ring, m) == 0) {
				GW_STAT(lc, dispatch_tx);
				kick |= UINT64_C(1) << w;
			} else {
				GW_STAT(lc, dispatch_drop);
				rte_mbuf_refcnt_update(m, -1);
			}
		}
		gw_net_input(lc, m, false);
	}
	while (kick != 0) { /* once per worker and burst, not per packet */
		gw_worker_kick(&dp->lcores[rte_bsf64(kick)]);
		kick &= kick - 1;
	}
}

static void
copy_tcp_stats(struct gw_lcore *lc)
{
	gw_dp_publish(lc); /* dp_counters.h */
}

_Static_assert(GW_DP_MAX_WORKERS <= 64, "dispatch_burst's kick mask");

/* An eventfd fired: take its count (epoll callback, on the worker). */
static void
eventfd_drain(int fd, void *arg)
{
	uint64_t v;

	RTE_SET_USED(arg);
	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: another wake-up took it */
	}
}

static void
epoll_event_init(struct rte_epoll_event *ev, uint32_t tag)
{
	memset(ev, 0, sizeof(*ev));
	ev->epdata.event = EPOLLIN;
	ev->epdata.data = (void *)(uintptr_t)tag;
	ev->epdata.cb_fun = eventfd_drain;
}

int
gw_worker_wait_init(struct gw_lcore *lc)
{
	unsigned i;
	int rc;

	lc->epfd = lc->wake_fd = lc->hook_fd = -1;
	lc->intr = false;
	if (lc->dp->params->idle != GW_DP_IDLE_INTERRUPT)
		return 0;
	for (i = 0; i < lc->n_rxq; i++)
		if (!lc->dp->ports[lc->rxq[i].port_idx].dev.rx_intr)
			return 0; /* sleeps adaptively: gw_dp_start said why */
	lc->epfd = epoll_create1(EPOLL_CLOEXEC);
	lc->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (lc->epfd < 0 || lc->wake_fd < 0) {
		rc = -errno;
		goto fail;
	}
	epoll_event_init(&lc->wake_ev, 0);
	if (rte_epoll_ctl(lc->epfd, EPOLL_CTL_ADD, lc->wake_fd, &lc->wake_ev) < 0) {
		rc = -errno;
		goto fail;
	}
	for (i = 0; i < lc->n_rxq; i++) {
		const struct gw_rxq *q = &lc->rxq[i];

		if (lc->dp->ports[q->port_idx].dev.rx_intr_level) {
			/* the queue's fd itself, level-triggered, never read here */
			epoll_event_init(&lc->rx_ev[i], i + 2);
			lc->rx_ev[i].epdata.cb_fun = NULL;
			rc = lc->dp->ports[q->port_idx].dev.rx_fd[q->queue];
			if (rc >= 0 &&
				rte_epoll_ctl(lc->epfd, EPOLL_CTL_ADD, rc, &lc->rx_ev[i]) == 0)
				continue;
			rc = rc < 0 ? -ENODEV : -errno;
		} else {
			/* DPDK's own event: its callback clears the queue's interrupt */
			rc = rte_eth_dev_rx_intr_ctl_q(q->port_id, q->queue, lc->epfd,
				RTE_INTR_EVENT_ADD, (void *)(uintptr_t)(i + 2));
		}
		if (rc < 0) {
			gw_worker_wait_fini(lc);
			return gw_err_setf(rc, GW_HERE,
				"worker %u: RX interrupt of port '%s' queue %u: %s", lc->idx,
				lc->dp->ports[q->port_idx].dev.name, q->queue, rte_strerror(-rc));
		}
	}
	lc->intr = true;
	return 0;
fail:
	gw_worker_wait_fini(lc);
	return gw_err_setf(
		rc, GW_HERE, "worker %u: epoll for idle: interrupt: %s", lc->idx, strerror(-rc));
}

void
gw_worker_wait_fini(struct gw_lcore *lc)
{
	unsigned i;

	if (lc->epfd >= 0) {
		for (i = 0; i < lc->n_rxq && lc->intr; i++)
			if (!lc->dp->ports[lc->rxq[i].port_idx].dev.rx_intr_level)
				(void)rte_eth_dev_rx_intr_ctl_q(lc->rxq[i].port_id,
					lc->rxq[i].queue, lc->epfd, RTE_INTR_EVENT_DEL, NULL);
		close(lc->epfd);
	}
	if (lc->wake_fd >= 0)
		close(lc->wake_fd);
	lc->epfd = lc->wake_fd = -1;
	lc->intr = false;
}

/*
 * Is there work another thread queued for us? Read after sleeping is set
 * (gw_worker_kick's other half). TX left in our buffers (a full device)
 * counts too: it must be retried, not slept on.
 */
static bool
queued_work(const struct gw_lcore *lc)
{
	unsigned i;

	if (lc->ring != NULL && rte_ring_count(lc->ring) != 0)
		return true;
	for (i = 0; i < lc->dp->n_ports; i++) {
		if (lc->tx[i].n != 0)
			return true;
		if (lc->tx[i].drains_ring && rte_ring_count(lc->dp->ports[i].txring) != 0)
			return true;
	}
	return false;
}

static unsigned rx_queue(struct gw_lcore *lc, const struct gw_rxq *q);

/*
 * idle: interrupt. Wait until a packet comes on one of our RX queues,
 * another worker queues one for us (gw_worker_kick), the poll hook's fd
 * fires (an HSM answer), or the next slow tick is due (TCP and TLS timers
 * are checked at least that often).
 */
static unsigned
wait_intr(struct gw_lcore *lc)
{
	struct rte_epoll_event ev[GW_DP_MAX_PORTS + 2];
	uint64_t now = rte_rdtsc(), ms = lc->dp->tsc_hz / 1000;
	unsigned i, got = 0;
	int timeout;

	if (lc->next_tick <= now)
		return 0;
	timeout = (int)RTE_MIN((lc->next_tick - now + ms - 1) / ms, (uint64_t)INT_MAX);
	__atomic_store_n(&lc->sleeping, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!queued_work(lc)) {
		for (i = 0; i < lc->n_rxq; i++) /* -ENOTSUP: a level-triggered fd */
			(void)rte_eth_dev_rx_intr_enable(lc->rxq[i].port_id, lc->rxq[i].queue);
		/* a frame that came after the last burst but before the enable
		 * may have raised no interrupt (memif, NICs): look once more */
		for (i = 0; i < lc->n_rxq; i++)
			got += rx_queue(lc, &lc->rxq[i]);
		if (got == 0)
			lc->timed_out = rte_epoll_wait(lc->epfd, ev, RTE_DIM(ev), timeout) == 0;
		for (i = 0; i < lc->n_rxq; i++)
			(void)rte_eth_dev_rx_intr_disable(lc->rxq[i].port_id, lc->rxq[i].queue);
	}
	__atomic_store_n(&lc->sleeping, 0, __ATOMIC_RELAXED);
	return got;
}

/*
 * idle: adaptive while a handshake is parked on an HSM signature: sleep us,
 * or less when the poll hook's fd fires first (the answer; an eventfd,
 * drained here, before the next poll takes the answer: hsm_async.c, a
 * push that finds the ring empty writes it). The naps then grow as idle
 * ones do instead of staying at GW_IDLE_MIN_US to notice the answer soon.
 */
static void
nap_hook(struct gw_lcore *lc, uint32_t us)
{
	struct pollfd pfd = {.fd = lc->hook_fd, .events = POLLIN};
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)us * 1000};

	if (ppoll(&pfd, 1, &ts, NULL) > 0 && (pfd.revents & POLLIN))
		eventfd_drain(lc->hook_fd, NULL);
}

/* Returns true if it slept. */
bool
gw_worker_idle(struct gw_lcore *lc, unsigned got)
{
	uint32_t ceiling;
	bool hook_nap;

	if (got != 0 || lc->idle_poll) {
		lc->empty_polls = 0;
		lc->sleep_us = GW_IDLE_MIN_US;
		lc->last_work = lc->now;
		return false;
	}
	if (++lc->empty_polls < GW_IDLE_SPINS)
		return false;
	lc->st.idle_sleeps++;
	/* while a handshake waits for its HSM answer, short sleeps as
	 * adaptive takes them: waking from epoll costs more than the
	 * answer's wait (measured on a tap, docs/performance.md) */
	if (lc->intr && !lc->hook_waits) {
		if (wait_intr(lc) != 0) { /* handled: the next iteration sends */
			lc->empty_polls = 0;
			lc->last_work = lc->now;
		}
		return true;
	}
	ceiling = lc->now - lc->last_work < lc->recent_cycles ? GW_IDLE_MAX_US : GW_IDLE_DEEP_US;
	if (lc->hook_soon) /* a handshake's next flight: wake sooner for it */
		ceiling = GW_IDLE_SOON_US;
	hook_nap = lc->hook_waits && lc->hook_fd >= 0 && !lc->intr;
	if (lc->hook_waits && !hook_nap)
		lc->sleep_us = GW_IDLE_MIN_US; /* an answer is due without a packet */
	lc->sleep_us = RTE_MIN(lc->sleep_us, ceiling);
	if (hook_nap)
		nap_hook(lc, lc->sleep_us); /* the answer ends it */
	else
		rte_delay_us_sleep(lc->sleep_us);
	if (lc->sleep_us < ceiling && (!lc->hook_waits || hook_nap))
		lc->sleep_us = RTE_MIN(lc->sleep_us * 2, ceiling);
	return true;
}

/*
 * Packets that left this worker (or were refused by a full device or ring)
 * so far. An iteration that changed it did work even without receiving:
 * a timer retransmitted, a TLS timeout sent close_notify or RST, queued
 * data went out. Timers that fire without sending (TIME_WAIT expiry) are
 * too cheap to count. Read per iteration, never per packet.
 */
static inline uint64_t
tx_mark(const struct gw_lcore *lc)
{
	return lc->st.tx_pkts + lc->st.txring_tx + lc->st.tx_drop;
}

/* One RX burst from q, handled here or dispatched. Returns packets taken. */
static unsigned
rx_queue(struct gw_lcore *lc, const struct gw_rxq *q)
{
	struct rte_mbuf *pkts[GW_BURST];
	uint16_t n, k;

	n = rte_eth_rx_burst(q->port_id, q->queue, pkts, GW_BURST);
	if (n == 0)
		return 0;
	lc->st.rx_pkts += n;
	for (k = 0; k < n; k++)
		lc->st.rx_bytes += pkts[k]->pkt_len;
	if (q->dispatch) {
		dispatch_burst(lc, pkts, n, q->port_idx);
	} else {
		for (k = 0; k < n; k++)
			gw_net_input(lc, pkts[k], false);
	}
	return n;
}

/* One loop iteration; returns packets handled (for idle accounting). */
unsigned
gw_worker_iterate(struct gw_lcore *lc)
{
	struct rte_mbuf *pkts[GW_BURST];
	struct gw_dp *dp = lc->dp;
	unsigned got = 0, i, k;
	uint16_t n;

	for (i = 0; i < lc->n_rxq; i++)
		got += rx_queue(lc, &lc->rxq[i]);
	if (unlikely(lc->timed_out)) {
		/* a frame the wait did not wake us for: a lost wake-up, or one
		 * that came as the tick did (rare; a driver losing interrupts
		 * shows here, counted where the operator can see it) */
		lc->st.idle_late += got != 0;
		lc->timed_out = false;
	}
	if (lc->ring != NULL) {
		n = (uint16_t)rte_ring_sc_dequeue_burst(lc->ring, (void **)pkts, GW_BURST, NULL);
		got += n;
		lc->st.ring_rx += n;
		for (k = 0; k < n; k++)
			gw_net_input(lc, pkts[k], true);
	}
	for (i = 0; i < dp->n_ports; i++) {
		struct gw_txbuf *tb = &lc->tx[i];

		if (!tb->drains_ring)
			continue;
		/* room left in our buffer only: never reorder or drop here */
		n = (uint16_t)rte_ring_sc_dequeue_burst(
			dp->ports[i].txring, (void **)(tb->pkts + tb->n), GW_TXBUF - tb->n, NULL);
		tb->n = (uint16_t)(tb->n + n);
		got += n;
	}
	lc->now = rte_rdtsc();
	if (lc->tcp != NULL)
		gw_tcp_poll(lc->tcp, lc->now);
	if (lc->poll_hook != NULL) {
		unsigned hf = lc->poll_hook(dp->params->hook_arg, lc->idx);

		lc->hook_waits = (hf & GW_DP_HOOK_WAITS) != 0;
		lc->hook_soon = (hf & GW_DP_HOOK_SOON) != 0;
		/* what it wrote (a handshake an HSM answer resumed) goes now,
		 * not after this worker's idle sleep or wait */
		if (lc->tcp != NULL)
			gw_tcp_flush(lc->tcp);
	}
	if (lc->reader) {
		/* what a connection accepted now would take: /v1/status shows it
		 * per worker (a worker stuck on an old generation shows there) */
		uint64_t gen = gw_snapshot_generation(gw_snap_current(dp->params->pub));

		if (gen != lc->snap_gen)
			__atomic_store_n(&lc->snap_gen, gen, __ATOMIC_RELAXED);
		/* this iteration is over: no pointer from gw_snap_current()
		 * survives it (connections hold references) */
		gw_snap_reader_quiescent(dp->params->pub, lc->idx);
	}
	if (lc->now >= lc->next_tick) {
		lc->next_tick = lc->now + dp->tsc_hz * GW_TICK_MS / 1000;
		gw_arp_tick(lc);
		copy_tcp_stats(lc);
	}
	for (i = 0; i < dp->n_ports; i++)
		gw_tx_flush(lc, i);
	return got;
}

/*
 * idle: interrupt on a tap: the tap PMD reads a queue only after its
 * SIGIO handler has counted a frame, and the kernel signals the process,
 * so any thread may run the handler, late when both CPUs are busy; the
 * worker, woken by the queue's fd, found nothing to read and went back to
 * epoll, which reported the fd again at once: about 170 wasted waits per
 * handshake. Owned by the worker's thread (F_SETOWN_EX), the signal is
 * raised on it before the fd wakes it, and handled before epoll_wait
 * returns, so the first burst after the wake-up reads the frame. (The
 * other level-triggered fd, an af_packet queue's socket, is not in
 * O_ASYNC mode: owning it changes nothing.)
 */
static int
own_sigio(const struct gw_lcore *lc)
{
	struct f_owner_ex o = {.type = F_OWNER_TID, .pid = gettid()};
	unsigned i;

	for (i = 0; i < lc->n_rxq && lc->intr; i++) {
		const struct gw_rxq *q = &lc->rxq[i];
		int fd;

		if (!lc->dp->ports[q->port_idx].dev.rx_intr_level)
			continue;
		fd = lc->dp->ports[q->port_idx].dev.rx_fd[q->queue];
		if (fd < 0 || fcntl(fd, F_SETOWN_EX, &o) < 0)
			return gw_err_setf(fd < 0 ? -ENODEV : -errno, GW_HERE,
				"worker %u: port '%s' queue %u: SIGIO to the worker: %s", lc->idx,
				lc->dp->ports[q->port_idx].dev.name, q->queue,
				fd < 0 ? "no fd" : strerror(errno));
	}
	return 0;
}

int
gw_worker_setup(struct gw_lcore *lc)
{
	struct gw_dp *dp = lc->dp;
	const struct gw_dp_params *p = dp->params;
	struct gw_tcp_stack_params tp = {
		.lcore = rte_lcore_id(),
		.pool = dp->pool,
		.ip_output = gw_ip_output,
		.net_ctx = lc,
		.tx_cksum_offload = dp->tx_cksum_offload,
		.flow_is_local = gw_net_flow_is_local,
		.src_addr = gw_net_src_addr,
		.max_conns = p->max_conns,
		.tsc_hz = dp->tsc_hz,
		.mtu = dp->mtu,
		.sndbuf = p->tcp.sndbuf,
		.rcvbuf = p->tcp.rcvbuf,
		.time_wait_ms = p->tcp.time_wait_ms,
		.handshake_timeout_ms = p->tcp.handshake_timeout_ms,
		.idle_timeout_ms = p->tcp.idle_timeout_ms,
		.rto_min_ms = p->tcp.rto_min_ms,
		/* the workers share one pool: out-of-order data of all of them
		 * together may pin at most a quarter of it */
		.ooo_mem_max = (uint64_t)dp->pool->size / (4u * dp->n_workers) *
			       rte_pktmbuf_data_room_size(dp->pool),
	};
	unsigned i;
	int rc;

	lc->recent_cycles = dp->tsc_hz / 1000 * GW_IDLE_RECENT_MS;
	lc->last_work = lc->now;
	GW_GUARD(own_sigio(lc));
	GW_GUARD(gw_tcp_stack_create(&tp, &lc->tcp));
	if (p->pub != NULL) {
		GW_GUARD(gw_snap_reader_register(p->pub, lc->idx));
		lc->reader = true;
	}
	for (i = 0; i < p->n_listeners; i++) {
		const struct gw_dp_listener *l = &p->listeners[i];
		struct gw_svc_params sp = {
			.ip = l->ip,
			.port = l->port,
			.kind = l->service,
			.backlog = l->backlog,
			.index = l->index,
			.pub = p->pub,
			.up_fails = &lc->up_fail[i],
			.alog = p->alog[lc->idx],
		};

		rc = gw_svc_listen(lc->tcp, &sp);
		if (rc < 0)
			return gw_err_setf(rc, GW_HERE, "listener '%s': %s", l->name, gw_err_msg());
	}
	if (p->worker_init != NULL) {
		lc->hooked = true;
		GW_GUARD(p->worker_init(p->hook_arg, lc->idx, lc->tcp));
	}
	/* the poll hook's fd: in epoll (idle: interrupt) or the parked naps'
	 * (adaptive: nap_hook) */
	if (p->worker_wait_fd != NULL && !lc->idle_poll)
		lc->hook_fd = p->worker_wait_fd(p->hook_arg, lc->idx);
	if (lc->intr && lc->hook_fd >= 0) {
		epoll_event_init(&lc->hook_ev, 1);
		if (rte_epoll_ctl(lc->epfd, EPOLL_CTL_ADD, lc->hook_fd, &lc->hook_ev) < 0) {
			rc = -errno;
			lc->hook_fd = -1;
			return gw_err_setf(
				rc, GW_HERE, "worker %u: epoll: %s", lc->idx, strerror(-rc));
		}
	}
	return 0;
}

void
gw_worker_teardown(struct gw_lcore *lc)
{
	unsigned i, k;

	copy_tcp_stats(lc);
	if (lc->intr && lc->hook_fd >= 0) /* worker_fini may close it */
		(void)rte_epoll_ctl(lc->epfd, EPOLL_CTL_DEL, lc->hook_fd, &lc->hook_ev);
	lc->hook_fd = -1;
	if (lc->hooked && lc->dp->params->worker_fini != NULL)
		lc->dp->params->worker_fini(lc->dp->params->hook_arg, lc->idx);
	lc->hooked = false;
	/* connections go first: they may still hold packets for ARP/TX */
	gw_tcp_stack_destroy(lc->tcp);
	lc->tcp = NULL;
	if (lc->reader) /* after the stack: no connection reads a snapshot any more */
		gw_snap_reader_unregister(lc->dp->params->pub, lc->idx);
	lc->reader = false;
	gw_arp_flush(lc);
	for (i = 0; i < lc->dp->n_ports; i++) {
		gw_tx_flush(lc, i);
		for (k = 0; k < lc->tx[i].n; k++)
			rte_pktmbuf_free(lc->tx[i].pkts[k]);
		lc->tx[i].n = 0;
	}
	gw_dp_publish(lc); /* what the teardown sent, for the exit line */
}

/* Test hook: the TSC at which worker 0 stalls (0: never). */
static uint64_t
stall_deadline(const struct gw_lcore *lc, uint64_t now)
{
#ifdef GW_TEST_HOOKS
	const char *v = getenv("GW_TEST_STALL_WORKER_AFTER");

	if (lc->idx == 0 && v != NULL && *v != '\0')
		return now + (uint64_t)(strtod(v, NULL) * (double)lc->dp->tsc_hz) + 1;
#else
	(void)lc;
	(void)now;
#endif
	return 0;
}

/* Test hook: stuck, as far as anyone watching the loops can tell, until the stop. */
static void
stall(struct gw_lcore *lc)
{
	while (!atomic_load_explicit(&lc->dp->stop, memory_order_relaxed))
		rte_delay_us_sleep(1000); /* no spinning: the test box has two cores */
}

int
gw_worker_main(void *arg)
{
	struct gw_lcore *lc = arg;
	struct gw_dp *dp = lc->dp;
	uint64_t t0, stall_at;
	int rc;

	/* short idle sleeps must be short: the default 50 us slack would
	 * round every one of them up */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	lc->now = rte_rdtsc();
	rc = gw_worker_setup(lc);
	if (rc < 0) {
		snprintf(lc->err, sizeof(lc->err), "worker %u (lcore %u): %s", lc->idx,
			lc->lcore_id, gw_err_msg());
		gw_worker_teardown(lc);
		atomic_store(&lc->ready, rc);
		return rc;
	}
	lc->poll_hook = dp->params->worker_poll;
	atomic_store(&lc->ready, 1);
	/*
	 * Busy cycles: one rdtsc per iteration (t1) closes it and opens the
	 * next; an iteration that did work adds its cycles (the HSM signature
	 * of a handshake runs inside the input path, so it is in them). After
	 * an idle sleep the next iteration starts after the sleep.
	 */
	t0 = rte_rdtsc();
	stall_at = stall_deadline(lc, t0);
	while (!atomic_load_explicit(&dp->stop, memory_order_relaxed)) {
		uint64_t tx = tx_mark(lc), t1;
		unsigned got;

		if (unlikely(stall_at != 0 && t0 >= stall_at)) {
			stall(lc);
			break;
		}
		__atomic_store_n(&lc->loops, lc->loops + 1, __ATOMIC_RELAXED);
		got = gw_worker_iterate(lc);

		t1 = rte_rdtsc();
		if (got != 0 || tx_mark(lc) != tx)
			lc->busy_cycles += t1 - t0; /* private: published per tick */
		t0 = gw_worker_idle(lc, got) ? rte_rdtsc() : t1;
	}
	gw_worker_teardown(lc);
	return 0;
}

unsigned
gw_dp_n_workers(const struct gw_dp *dp)
{
	return dp != NULL ? dp->n_workers : 0;
}

int
gw_dp_worker_info(const struct gw_dp *dp, unsigned w, struct gw_dp_worker_info *out)
{
	GW_ENSURE(dp != NULL && out != NULL && w < dp->n_workers, -EINVAL);
	out->lcore = dp->lcores[w].lcore_id;
	out->generation = __atomic_load_n(&dp->lcores[w].snap_gen, __ATOMIC_RELAXED);
	out->loops = __atomic_load_n(&dp->lcores[w].loops, __ATOMIC_RELAXED);
	{
		struct gw_lcore_counters c;

		GW_CTR_READ(&dp->lcores[w].pub_seq, &c, &dp->lcores[w].pub);
		out->busy_cycles = c.busy_cycles;
	}
	return 0;
}

uint64_t
gw_dp_tsc_hz(const struct gw_dp *dp)
{
	return dp != NULL ? dp->tsc_hz : 0;
}
