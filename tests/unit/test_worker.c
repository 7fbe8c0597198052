/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * test_worker.c - dataplane/worker.c without a NIC (tests/lib/gw_net_test.c,
 * a ring PMD port): one loop iteration's RX bursts (GW_BURST at most per
 * queue), Ethernet demux drops, software dispatch between two workers
 * (TCP flows to their Toeplitz owner, ARP to everyone with one answer,
 * the rest handled where it arrived), the shared TX fallback ring, the poll
 * hook and the per-tick stats copy, the worker as the reader of the
 * listener table (quiescent per iteration), and gw_worker_main's
 * setup/teardown.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_tcp.h>

#include "gw_counters.h"
#include "gw_dpdk_test.h"
#include "gw_net_test.h"
#include "gw_test.h"
#include "port.h"

static const struct rte_ether_addr zero_mac = {{0}};

static struct rte_mbuf *
arp_req(void)
{
	return gw_net_test_arp(RTE_ARP_OP_REQUEST, &gw_nt_bcast, &gw_nt_peer_mac, GW_NT_PEER_IP,
		&zero_mac, GW_NT_OUR_IP);
}

/* The worker the Toeplitz hash gives a TCP segment peer:sport -> us:dport. */
static unsigned
owner(const struct gw_net_test *t, uint16_t sport, uint16_t dport)
{
	return gw_dp_owner(t->dp, 0,
		gw_port_rss_hash(rte_cpu_to_be_32(GW_NT_PEER_IP), rte_cpu_to_be_32(GW_NT_OUR_IP),
			rte_cpu_to_be_16(sport), rte_cpu_to_be_16(dport)));
}

/* A source port whose flow to dport belongs to worker w. */
static uint16_t
sport_for(const struct gw_net_test *t, unsigned w, uint16_t dport)
{
	for (uint16_t p = 40000; p < 60000; p++)
		if (owner(t, p, dport) == w)
			return p;
	abort();
}

static unsigned hook_calls;
static unsigned hook_ret; /* what the hook answers: GW_DP_HOOK_* flags */

static unsigned
count_hook(void *arg, unsigned worker)
{
	(void)arg;
	(void)worker;
	hook_calls++;
	return hook_ret;
}

/* idle: interrupt: one wait of a worker's gw_worker_idle, on a thread. */
static pthread_t waiter;
static int hook_fd = -1;

static int
wait_fd_hook(void *arg, unsigned worker)
{
	(void)arg;
	(void)worker;
	return hook_fd;
}

static void *
wait_main(void *arg)
{
	struct gw_lcore *lc = arg;

	while (!gw_worker_idle(lc, 0)) /* GW_IDLE_SPINS empty polls first */
		;
	return NULL;
}

/* Start a wait with the next tick tick_ms away (0: due already). */
static bool
wait_start(struct gw_lcore *lc, unsigned tick_ms)
{
	lc->empty_polls = 0;
	lc->next_tick = tick_ms ? rte_rdtsc() + rte_get_tsc_hz() / 1000 * tick_ms : 0;
	return pthread_create(&waiter, NULL, wait_main, lc) == 0;
}

/* Start a wait a minute long and return once the worker is asleep, as
 * another thread sees it. */
static bool
wait_asleep(struct gw_lcore *lc)
{
	if (!wait_start(lc, 60000))
		return false;
	for (unsigned i = 0; i < 20000; i++) { /* 20 s */
		if (__atomic_load_n(&lc->sleeping, __ATOMIC_ACQUIRE) != 0)
			return true;
		usleep(1000);
	}
	return false;
}

/* The wait ended within 20 s. */
static bool
wait_join(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	return pthread_timedjoin_np(waiter, NULL, &ts) == 0;
}

int
main(void)
{
	struct rte_mbuf *out[64];
	unsigned n;

	GW_TEST_BEGIN();
	if (gw_net_test_eal("test_worker") < 0)
		return 1;

	{ /* one worker: an iteration takes a burst, answers, flushes TX */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		uint64_t bytes = 0;

		EXPECT_TRUE(gw_worker_iterate(lc) == 0);
		for (unsigned i = 0; i < 3; i++) {
			struct rte_mbuf *m = arp_req();

			bytes += m->pkt_len;
			gw_net_test_rx(t, 0, m);
		}
		EXPECT_TRUE(gw_worker_iterate(lc) == 3);
		EXPECT_TRUE(lc->st.rx_pkts == 3 && lc->st.rx_bytes == bytes);
		EXPECT_TRUE(lc->st.arp_reply_tx == 3);
		/* the iteration flushed: the replies are on the port already */
		EXPECT_TRUE(lc->st.tx_pkts == 3 && lc->tx[0].n == 0);
		n = (unsigned)rte_ring_dequeue_burst(t->tx[0], (void **)out, 64, NULL);
		EXPECT_TRUE(n == 3);
		gw_net_test_free_mbufs(out, n);
		/* more than a burst waits for the next iteration */
		for (unsigned i = 0; i < GW_BURST + 8; i++)
			gw_net_test_rx(t, 0,
				gw_net_test_echo(
					GW_NT_PEER_IP, GW_NT_OUR_IP, 1, (uint16_t)i, NULL, 0));
		EXPECT_TRUE(gw_worker_iterate(lc) == GW_BURST);
		EXPECT_TRUE(lc->st.icmp_echo == GW_BURST);
		EXPECT_TRUE(gw_worker_iterate(lc) == 8);
		EXPECT_TRUE(gw_worker_iterate(lc) == 0);
		EXPECT_TRUE(lc->st.icmp_echo == GW_BURST + 8 && lc->st.rx_pkts == GW_BURST + 11);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == GW_BURST + 8);
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* Ethernet demux: what is not for us never reaches ARP or IPv4 */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		struct rte_mbuf *m, *m2;
		struct rte_ether_hdr *eh;

		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		rte_pktmbuf_trim(m, (uint16_t)(m->pkt_len - 13));
		gw_net_test_rx(t, 0, m); /* runt */
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
		gw_net_test_rx(t, 0, m);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		eh->dst_addr = gw_nt_peer_mac; /* unicast to someone else */
		gw_net_test_rx(t, 0, m);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		eh->dst_addr = gw_nt_bcast; /* IPv4 to broadcast: not for an end host */
		gw_net_test_rx(t, 0, m);
		m = gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0);
		m2 = rte_pktmbuf_alloc(gw_net_test_pool());
		rte_pktmbuf_append(m2, 4);
		EXPECT_OK(rte_pktmbuf_chain(m, m2)); /* chained */
		gw_net_test_rx(t, 0, m);
		EXPECT_TRUE(gw_worker_iterate(lc) == 5);
		EXPECT_TRUE(lc->st.drop_runt == 1 && lc->st.drop_l2_proto == 1);
		EXPECT_TRUE(lc->st.drop_l2_dst == 2 && lc->st.drop_multiseg == 1);
		EXPECT_TRUE(lc->st.ip_rx == 0 && lc->st.arp_rx == 0);
		/* a frame from a port that is not ours */
		m = arp_req();
		m->port = (uint16_t)(t->port_id + 1);
		gw_net_input(lc, m, false);
		EXPECT_TRUE(lc->st.drop_runt == 2 && lc->st.arp_rx == 0);
		EXPECT_TRUE(gw_net_test_tx(t, out, 64) == 0);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* two workers, software dispatch */
		struct gw_net_test *t = gw_net_test_new(2);
		struct gw_lcore *w0 = gw_net_test_lc(t, 0), *w1 = gw_net_test_lc(t, 1);
		uint16_t to1 = sport_for(t, 1, 81), to0 = sport_for(t, 0, 81);

		/* ARP on worker 0's queue: 0 answers, both learn */
		gw_net_test_rx(t, 0, arp_req());
		EXPECT_TRUE(gw_worker_iterate(w0) == 1);
		EXPECT_TRUE(w0->st.arp_reply_tx == 1 && w0->st.arp_learned == 1);
		EXPECT_TRUE(w0->st.dispatch_tx == 1);
		EXPECT_TRUE(gw_worker_iterate(w1) == 1);
		EXPECT_TRUE(w1->st.ring_rx == 1 && w1->st.arp_rx == 1);
		EXPECT_TRUE(w1->st.arp_learned == 1 && w1->st.arp_reply_tx == 0);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1);
		gw_net_test_free_mbufs(out, n);
		/* a TCP flow owned by worker 1 arriving at worker 0 moves over;
		 * one owned by worker 0 stays */
		gw_net_test_rx(t, 0,
			gw_net_test_tcp(
				GW_NT_PEER_IP, GW_NT_OUR_IP, to1, 81, 1, 0, RTE_TCP_SYN_FLAG));
		gw_net_test_rx(t, 0,
			gw_net_test_tcp(
				GW_NT_PEER_IP, GW_NT_OUR_IP, to0, 81, 1, 0, RTE_TCP_SYN_FLAG));
		EXPECT_TRUE(gw_worker_iterate(w0) == 2);
		EXPECT_TRUE(w0->st.dispatch_tx == 2 && w0->st.tcp_rx == 1);
		EXPECT_TRUE(w1->st.tcp_rx == 0);
		EXPECT_TRUE(gw_worker_iterate(w1) == 1);
		EXPECT_TRUE(w1->st.ring_rx == 2 && w1->st.tcp_rx == 1);
		n = gw_net_test_tx(t, out, 64); /* one RST from each worker */
		EXPECT_TRUE(n == 2);
		gw_net_test_free_mbufs(out, n);
		/* ICMP is answered where it arrived */
		gw_net_test_rx(t, 1, gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 1, NULL, 0));
		EXPECT_TRUE(gw_worker_iterate(w1) == 1);
		EXPECT_TRUE(w1->st.icmp_echo == 1 && w1->st.dispatch_tx == 0);
		EXPECT_TRUE(gw_worker_iterate(w0) == 0);
		n = gw_net_test_tx(t, out, 64);
		EXPECT_TRUE(n == 1);
		gw_net_test_free_mbufs(out, n);
		/* the owner's ring full: counted and freed, nothing else lost */
		{
			unsigned cap = rte_ring_get_capacity(w1->ring), k = 0;
			struct rte_mbuf *m;

			while (k < cap) {
				m = rte_pktmbuf_alloc(gw_net_test_pool());
				m->port = t->port_id; /* empty: a runt where it lands */
				if (rte_ring_enqueue(w1->ring, m) != 0) {
					rte_pktmbuf_free(m);
					break;
				}
				k++;
			}
			gw_net_test_rx(t, 0,
				gw_net_test_tcp(GW_NT_PEER_IP, GW_NT_OUR_IP, to1, 81, 1, 0,
					RTE_TCP_SYN_FLAG));
			EXPECT_TRUE(gw_worker_iterate(w0) == 1);
			EXPECT_TRUE(w0->st.dispatch_drop == 1);
			n = 0;
			while ((k = gw_worker_iterate(w1)) != 0)
				n += k;
			EXPECT_TRUE(n == cap && w1->st.drop_runt == cap);
		}
		/* the shared TX fallback: worker 1 without a queue of its own
		 * hands frames to the port's ring, worker 0 drains it to its
		 * queue */
		{
			uint64_t tx1 = w1->st.tx_pkts;
			struct rte_ring *r =
				rte_ring_create("nt_txring", 256, SOCKET_ID_ANY, RING_F_SC_DEQ);

			EXPECT_TRUE(r != NULL);
			t->dp->ports[0].txring = r;
			w1->tx[0].via_ring = true;
			w0->tx[0].drains_ring = true;
			gw_net_test_rx(
				t, 1, gw_net_test_echo(GW_NT_PEER_IP, GW_NT_OUR_IP, 1, 2, NULL, 0));
			EXPECT_TRUE(gw_worker_iterate(w1) == 1);
			EXPECT_TRUE(w1->st.txring_tx == 1 && w1->st.tx_pkts == tx1);
			EXPECT_TRUE(rte_ring_count(t->tx[1]) == 0 && rte_ring_count(r) == 1);
			EXPECT_TRUE(gw_worker_iterate(w0) == 1); /* the drained frame counts */
			EXPECT_TRUE(rte_ring_count(r) == 0 && rte_ring_count(t->tx[0]) == 1);
			n = gw_net_test_tx(t, out, 64);
			EXPECT_TRUE(n == 1);
			gw_net_test_free_mbufs(out, n);
			w1->tx[0].via_ring = false;
			w0->tx[0].drains_ring = false;
			t->dp->ports[0].txring = NULL;
			rte_ring_free(r);
		}
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* the poll hook runs every iteration; stats are published each tick */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		struct gw_tcp_stats st;
		struct gw_lcore_counters pub;

		lc->poll_hook = count_hook;
		hook_calls = 0;
		gw_net_test_learn_peer(t);
		gw_net_test_rx(t, 0,
			gw_net_test_tcp(
				GW_NT_PEER_IP, GW_NT_OUR_IP, 40000, 81, 1, 0, RTE_TCP_SYN_FLAG));
		lc->next_tick = UINT64_MAX; /* not due: no copy */
		EXPECT_TRUE(gw_worker_iterate(lc) == 1);
		EXPECT_TRUE(hook_calls == 1);
		GW_CTR_READ(&lc->pub_seq, &pub, &lc->pub);
		EXPECT_TRUE(pub.tcp.rx_seg == 0);
		lc->next_tick = 0; /* due */
		EXPECT_TRUE(gw_worker_iterate(lc) == 0);
		EXPECT_TRUE(hook_calls == 2);
		gw_tcp_stats_get(lc->tcp, &st);
		GW_CTR_READ(&lc->pub_seq, &pub, &lc->pub);
		EXPECT_TRUE(st.rx_seg == 1 && pub.tcp.rx_seg == 1);
		EXPECT_TRUE(memcmp(&st, &pub.tcp, sizeof(st)) == 0);
		EXPECT_TRUE(lc->next_tick > lc->now);
		n = gw_net_test_tx(t, out, 64);
		gw_net_test_free_mbufs(out, n);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* adaptive idle: sleeps double while nothing happens, but stay at the
	   * shortest while the hook waits for an answer no packet brings (a
	   * handshake parked on an HSM signature) */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		uint32_t min_us;

		lc->poll_hook = count_hook;
		hook_ret = 0;
		lc->idle_poll = false;
		EXPECT_TRUE(!gw_worker_idle(lc, 1)); /* work: no sleep, shortest next */
		min_us = lc->sleep_us;
		gw_worker_iterate(lc);
		EXPECT_TRUE(!lc->hook_waits);
		for (unsigned i = 0; i < 300; i++)
			gw_worker_idle(lc, 0);
		EXPECT_TRUE(lc->sleep_us > min_us); /* idle: deeper sleeps */
		hook_ret = 1;
		gw_worker_iterate(lc);
		EXPECT_TRUE(lc->hook_waits);
		EXPECT_TRUE(gw_worker_idle(lc, 0)); /* still sleeps, but briefly */
		EXPECT_TRUE(lc->sleep_us == min_us);
		EXPECT_TRUE(gw_worker_idle(lc, 0));
		EXPECT_TRUE(lc->sleep_us == min_us);
		hook_ret = 0;
		gw_worker_iterate(lc);
		EXPECT_TRUE(!lc->hook_waits);
		gw_worker_idle(lc, 0);
		EXPECT_TRUE(lc->sleep_us > min_us);
		/* traffic in the last second: the sleeps stop at 200 us
		 * (GW_IDLE_MAX_US), so the next packet waits little */
		lc->now = rte_rdtsc();
		EXPECT_TRUE(!gw_worker_idle(lc, 1));
		for (unsigned i = 0; i < 300; i++)
			gw_worker_idle(lc, 0);
		EXPECT_TRUE(lc->sleep_us == 200);
		/* none for longer: they go on to 1 ms (GW_IDLE_DEEP_US), fewer
		 * wake-ups for a worker without traffic */
		lc->now += 2 * lc->recent_cycles;
		for (unsigned i = 0; i < 4; i++)
			gw_worker_idle(lc, 0);
		EXPECT_TRUE(lc->sleep_us == 1000);
		/* a packet: the shortest sleep again, and the low ceiling */
		EXPECT_TRUE(!gw_worker_idle(lc, 1));
		EXPECT_TRUE(lc->sleep_us == min_us);
		for (unsigned i = 0; i < 300; i++)
			gw_worker_idle(lc, 0);
		EXPECT_TRUE(lc->sleep_us == 200);
		/* a handshake waits for its client's next flight (the hook says a
		 * packet is due soon): no sleep longer than 40 us (GW_IDLE_SOON_US),
		 * the one about to be taken included */
		hook_ret = GW_DP_HOOK_SOON;
		gw_worker_iterate(lc);
		EXPECT_TRUE(lc->hook_soon && !lc->hook_waits);
		EXPECT_TRUE(gw_worker_idle(lc, 0));
		EXPECT_TRUE(lc->sleep_us == 40);
		for (unsigned i = 0; i < 10; i++)
			gw_worker_idle(lc, 0);
		EXPECT_TRUE(lc->sleep_us == 40);
		hook_ret = GW_DP_HOOK_SOON | GW_DP_HOOK_WAITS; /* and one parked: shortest */
		gw_worker_iterate(lc);
		EXPECT_TRUE(gw_worker_idle(lc, 0));
		EXPECT_TRUE(lc->sleep_us == min_us);
		hook_ret = 0;
		gw_worker_iterate(lc);
		EXPECT_TRUE(!lc->hook_soon);
		for (unsigned i = 0; i < 10; i++)
			gw_worker_idle(lc, 0);
		EXPECT_TRUE(lc->sleep_us > 40); /* back to the usual ceilings */
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* idle: interrupt. The ring PMD has no RX interrupts, so a worker
	   * polling it sleeps adaptively; one with no RX queue of its own
	   * (as if its queues had them) waits in epoll until its next tick,
	   * and wakes at once for a frame another worker dispatches to it,
	   * for the poll hook's fd (an HSM answer), or for the stop; while
	   * the hook says it waits it sleeps briefly instead. Each
	   * wait is run on a thread with a tick a minute away and joined
	   * with a 20 s limit: a lost wake-up fails, whatever the load. */
		struct gw_net_test *t = gw_net_test_new(2);
		struct gw_lcore *w0 = gw_net_test_lc(t, 0), *w1 = gw_net_test_lc(t, 1);
		struct rte_mbuf *m;
		int efd = eventfd(0, EFD_NONBLOCK);
		uint64_t v;

		t->params.idle = GW_DP_IDLE_INTERRUPT;
		EXPECT_OK(gw_worker_wait_init(w0));
		EXPECT_TRUE(!w0->intr && w0->epfd < 0 && w0->wake_fd < 0);
		w0->n_rxq = 0;
		EXPECT_OK(gw_worker_wait_init(w0));
		EXPECT_TRUE(w0->intr && w0->epfd >= 0 && w0->wake_fd >= 0);
		w0->idle_poll = false;
		/* a frame for worker 0 through worker 1's dispatch */
		EXPECT_TRUE(wait_asleep(w0));
		gw_net_test_rx(t, 1,
			gw_net_test_tcp(GW_NT_PEER_IP, GW_NT_OUR_IP, sport_for(t, 0, 81), 81, 1, 0,
				RTE_TCP_SYN_FLAG));
		EXPECT_TRUE(gw_worker_iterate(w1) == 1 && w1->st.dispatch_tx == 1);
		EXPECT_TRUE(wait_join());
		EXPECT_TRUE(w0->sleeping == 0 && rte_ring_count(w0->ring) == 1);
		/* work already queued when it would sleep: it does not */
		EXPECT_TRUE(wait_start(w0, 60000));
		EXPECT_TRUE(wait_join());
		EXPECT_TRUE(gw_worker_iterate(w0) == 1 && w0->st.ring_rx == 1);
		/* the hook's fd, registered by gw_worker_setup */
		hook_fd = efd;
		t->params.worker_wait_fd = wait_fd_hook;
		gw_worker_teardown(w0);
		EXPECT_OK(gw_worker_setup(w0));
		EXPECT_TRUE(w0->hook_fd == efd);
		EXPECT_TRUE(wait_asleep(w0));
		v = 1;
		EXPECT_TRUE(write(efd, &v, sizeof(v)) == sizeof(v));
		EXPECT_TRUE(wait_join());
		EXPECT_TRUE(read(efd, &v, sizeof(v)) < 0 && errno == EAGAIN); /* taken */
		/* the stop (gw_dp_stop_workers writes every wake_fd) */
		EXPECT_TRUE(wait_asleep(w0));
		v = 1;
		EXPECT_TRUE(write(w0->wake_fd, &v, sizeof(v)) == sizeof(v));
		EXPECT_TRUE(wait_join());
		/* a handshake parked on the HSM (the hook waits): short sleeps,
		 * no epoll, so it returns with nothing to wake it */
		w0->hook_waits = true;
		EXPECT_TRUE(wait_start(w0, 60000));
		EXPECT_TRUE(wait_join());
		EXPECT_TRUE(w0->sleep_us == 10); /* GW_IDLE_MIN_US */
		w0->hook_waits = false;
		/* nothing comes: the tick ends the wait; a tick due: no wait */
		EXPECT_TRUE(wait_start(w0, 50));
		EXPECT_TRUE(wait_join());
		EXPECT_TRUE(wait_start(w0, 0));
		EXPECT_TRUE(wait_join());
		gw_worker_teardown(w0); /* takes the hook fd out of epoll */
		EXPECT_TRUE(w0->hook_fd == -1);
		t->params.worker_wait_fd = NULL;
		EXPECT_OK(gw_worker_setup(w0));
		gw_worker_wait_fini(w0);
		EXPECT_TRUE(!w0->intr && w0->epfd < 0 && w0->wake_fd < 0);
		w0->n_rxq = 1;
		close(efd);
		while ((m = NULL, rte_ring_dequeue(w0->ring, (void **)&m)) == 0)
			rte_pktmbuf_free(m);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	{ /* with a listener table (gw_dp_params.pub) the worker is its reader: it
	   * reports quiescent every iteration, so a replaced snapshot is freed
	   * after the next one, and it is no reader any more after teardown */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = gw_net_test_lc(t, 0);
		struct gw_snap_pub *pub = NULL;
		struct gw_snapshot *s;

		EXPECT_OK(gw_snap_pub_create(1, &pub));
		for (uint64_t gen = 1; gen <= 2; gen++) {
			EXPECT_OK(gw_snapshot_create(gen, 0, NULL, NULL, &s));
			gw_snapshot_seal(s);
			EXPECT_OK(gw_snap_pub_publish(pub, s));
			if (gen == 1) { /* set up again, now with the table */
				gw_worker_teardown(lc);
				t->params.pub = pub;
				EXPECT_OK(gw_worker_setup(lc));
			}
		}
		EXPECT_TRUE(gw_snap_pub_reclaim(pub, false) == 1); /* gen 1: not quiescent yet */
		gw_worker_iterate(lc);
		EXPECT_TRUE(gw_snap_pub_reclaim(pub, false) == 0);
		{ /* and notes the generation it took, for /v1/status */
			struct gw_dp_worker_info wi;

			EXPECT_OK(gw_dp_worker_info(t->dp, 0, &wi));
			EXPECT_TRUE(wi.generation == 2);
		}
		gw_worker_teardown(lc);
		EXPECT_OK(gw_snapshot_create(3, 0, NULL, NULL, &s));
		gw_snapshot_seal(s);
		EXPECT_OK(gw_snap_pub_publish(pub, s)); /* no reader left: freed at once */
		EXPECT_TRUE(gw_snap_pub_reclaim(pub, false) == 0);
		EXPECT_OK(gw_worker_setup(lc)); /* gw_net_test_free tears it down */
		EXPECT_TRUE(gw_net_test_free(t) == 0);
		gw_snap_pub_destroy(pub);
	}
	{ /* gw_worker_main: set up, report ready, stop, tear down; a setup
	   * that fails reports its error and cleans up */
		struct gw_net_test *t = gw_net_test_new(1);
		struct gw_lcore *lc = rte_zmalloc("lc", sizeof(*lc), RTE_CACHE_LINE_SIZE);

		lc->dp = t->dp;
		atomic_store(&t->dp->stop, true);
		EXPECT_TRUE(gw_worker_main(lc) == 0);
		EXPECT_TRUE(atomic_load(&lc->ready) == 1 && lc->tcp == NULL);
		memset(lc, 0, sizeof(*lc));
		lc->dp = t->dp;
		t->params.listeners[0] = (struct gw_dp_listener){.name = "bad",
			.ip = rte_cpu_to_be_32(GW_NT_OUR_IP),
			.port = 0, /* refused by the TCP stack */
			.service = GW_SVC_ECHO};
		t->params.n_listeners = 1;
		EXPECT_TRUE(gw_worker_main(lc) < 0);
		EXPECT_TRUE(atomic_load(&lc->ready) < 0 && lc->tcp == NULL);
		EXPECT_TRUE(strstr(lc->err, "listener 'bad'") != NULL);
		t->params.n_listeners = 0;
		rte_free(lc);
		EXPECT_TRUE(gw_net_test_free(t) == 0);
	}
	rte_eal_cleanup();
	gw_test_eal_dir_remove();
	GW_TEST_END();
}
