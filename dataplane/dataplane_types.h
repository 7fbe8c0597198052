/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane_types.h - the dataplane's shared types: the per-lcore worker
 * state (struct gw_lcore), the per-lcore ARP cache, the counters, and the
 * read-only port table all workers share (struct gw_dp). Types only; the
 * functions that work on them are declared in net_internal.h.
 *
 * Layout follows DPDK's l3fwd and VPP: one cache-aligned struct per lcore,
 * hot fields first, counters on their own cache lines so control's reads
 * never share a line with the fast path's writes of other fields.
 */
#ifndef GW_DATAPLANE_TYPES_H
#define GW_DATAPLANE_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_epoll.h>
#include <rte_ether.h>

#include "dataplane.h"
#include "port.h"
#include "svc.h"
#include "tcp.h"

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

#define GW_BURST 32
#define GW_TXBUF 64         /* packets buffered per port before a forced flush */
#define GW_RING_SIZE 4096   /* per-worker dispatch ring */
#define GW_TXRING_SIZE 4096 /* per-port shared-TX fallback ring */

/* Counters of the net layer, one X-macro for fields and names (VPP style). */
#define GW_DP_STATS(X)                                                          \
	X(rx_pkts) /* packets taken from a port queue */                        \
	X(rx_bytes)                                                             \
	X(tx_pkts) /* packets handed to a port queue */                         \
	X(tx_bytes)                                                             \
	X(tx_drop)       /* TX buffer full while the device refused more */     \
	X(ring_rx)       /* packets received from another worker's dispatch */  \
	X(dispatch_tx)   /* packets handed to another worker by software RSS */ \
	X(dispatch_drop) /* that worker's ring was full */                      \
	X(txring_tx)     /* packets sent through the shared-TX fallback ring */ \
	X(txring_drop)   /* shared-TX ring full */                              \
	X(drop_runt)     /* shorter than an Ethernet header */                  \
	X(drop_multiseg) /* chained RX mbuf (jumbo without scatter support) */  \
	X(drop_l2_proto) /* not IPv4 or ARP (IPv6, LLDP ...) */                 \
	X(drop_l2_dst)   /* unicast to another MAC, or multicast */             \
	X(arp_rx)                                                               \
	X(arp_bad)        /* truncated or not Ethernet/IPv4 ARP */              \
	X(arp_req_tx)     /* requests we sent to resolve a next hop */          \
	X(arp_reply_tx)   /* replies for our addresses */                       \
	X(arp_learned)    /* cache entries created or refreshed */              \
	X(arp_queued)     /* packets held while their next hop resolved */      \
	X(arp_queue_drop) /* pending queue of a next hop full */                \
	X(arp_unresolved) /* packets dropped: next hop never answered */        \
	X(arp_cache_full) /* no slot for a new next hop */                      \
	X(ip_rx)          /* IPv4 packets examined */                           \
	X(ip_bad_hdr)     /* truncated, version, IHL */                         \
	X(ip_bad_cksum)                                                         \
	X(ip_bad_len)  /* total length vs frame length */                       \
	X(ip_frag)     /* fragments: not reassembled */                         \
	X(ip_options)  /* IP options: not handled */                            \
	X(ip_not_ours) /* destination is not one of our addresses */            \
	X(ip_martian)  /* source 0, broadcast, multicast, loopback or ours */   \
	X(ip_proto)    /* neither TCP nor ICMP */                               \
	X(ip_no_route) /* output: no port for the destination */                \
	X(icmp_echo)   /* echo requests answered */                             \
	X(icmp_bad)    /* truncated or bad checksum */                          \
	X(icmp_other)  /* other ICMP types, ignored */                          \
	X(tcp_rx)      /* segments handed to TCP */                             \
	X(nombuf)      /* mbuf allocation failed (ARP, prepend) */              \
	X(idle_sleeps) /* idle sleeps (adaptive) or epoll waits (interrupt) */  \
	X(idle_late)   /* interrupt: a wait ran to its tick with a frame waiting */

struct gw_dp_stats {
#define GW_DP_STAT_FIELD_(n) uint64_t n;
	GW_DP_STATS(GW_DP_STAT_FIELD_)
#undef GW_DP_STAT_FIELD_
};

/* What a worker publishes for control every tick (dp_counters.h). */
struct gw_lcore_counters {
	struct gw_dp_stats net;
	struct gw_tcp_stats tcp;
	uint64_t busy_cycles;
	/* tcp-proxy upstream connect failures, by gw_dp_params.listeners index */
	struct gw_svc_up_fails up[GW_DP_MAX_LISTENERS];
};

/* ---- ARP cache: per lcore, set-associative (no tombstones, bounded) ---- */
#define GW_ARP_WAYS 4
#define GW_ARP_SETS 64
#define GW_ARP_PENDING 8 /* packets held per unresolved next hop */
#define GW_ARP_RETRIES 3 /* requests before giving up */
#define GW_ARP_RETRY_MS 1000
#define GW_ARP_REACHABLE_S 300

enum gw_arp_state { GW_ARP_FREE = 0, GW_ARP_INCOMPLETE, GW_ARP_REACHABLE };

struct gw_arp_entry {
	uint32_t ip;   /* network order */
	uint8_t state; /* enum gw_arp_state */
	uint8_t port;  /* port index */
	uint8_t tries; /* requests sent while INCOMPLETE */
	uint8_t n_pending;
	struct rte_ether_addr mac;
	uint64_t deadline; /* tsc: next retry (INCOMPLETE) or expiry (REACHABLE) */
	struct rte_mbuf *pending[GW_ARP_PENDING];
};

struct gw_arp_cache {
	struct gw_arp_entry e[GW_ARP_SETS][GW_ARP_WAYS];
};

/* Per-port TX buffer of one worker (l3fwd's tx_mbufs). */
struct gw_txbuf {
	uint16_t n;
	uint16_t queue;   /* this worker's TX queue on the port */
	bool via_ring;    /* no queue of our own: hand to the port's TX ring */
	bool drains_ring; /* we own queue 0 and drain the port's TX ring */
	struct rte_mbuf *pkts[GW_TXBUF];
};

struct gw_rxq {
	uint16_t port_id;
	uint16_t port_idx;
	uint16_t queue;
	bool dispatch; /* software Toeplitz: packets may belong to other workers */
};

struct gw_dp_port_rt; /* below */

struct gw_lcore {
	/* hot: read every iteration */
	struct gw_dp *dp;
	struct gw_tcp_stack *tcp;
	struct rte_ring *ring; /* MP/SC: packets other workers dispatched to us */
	uint16_t idx;          /* worker index 0..n_workers-1 */
	uint16_t n_rxq;
	bool idle_poll;
	/* idle: interrupt, and every RX queue of ours has an interrupt: idle
	 * waits in epoll on epfd (read by the workers that kick us, set
	 * before they start) */
	bool intr;
	bool timed_out; /* the last wait ran to its tick: idle_late if we receive */
	struct gw_rxq rxq[GW_DP_MAX_PORTS];
	uint64_t now; /* tsc of this iteration */
	/*
	 * Iterations of the main loop so far: the progress control's watchdog
	 * looks for (gw_dp_worker_info). Only this worker stores it (relaxed:
	 * a counter, no data hangs on it); control loads it a few times a
	 * minute.
	 */
	uint64_t loops;
	uint64_t next_tick; /* tsc of the next slow-timer run (ARP, stats copy) */
	uint32_t empty_polls;
	uint32_t sleep_us;
	uint64_t last_work;     /* tsc of the last iteration that received */
	uint64_t recent_cycles; /* GW_IDLE_RECENT_MS (worker.c) in tsc cycles */
	unsigned (*poll_hook)(void *arg, unsigned worker); /* params->worker_poll */
	bool hook_waits; /* the last poll_hook said it waits: short idle sleeps */
	bool hook_soon;  /* ... that a packet is due soon: adaptive sleeps stop low */
	struct gw_txbuf tx[GW_DP_MAX_PORTS];
	struct gw_arp_cache arp;

	/* cold: setup and control */
	unsigned lcore_id;
	/*
	 * idle: interrupt (worker.c). epfd holds our RX queues' interrupt
	 * events, wake_fd and the worker_wait_fd hook's fd; every fd is -1
	 * when absent. wake_fd (an eventfd) is written by gw_worker_kick and
	 * gw_dp_stop_workers, read when epoll reports it.
	 */
	int epfd;
	int wake_fd;
	int hook_fd;
	struct rte_epoll_event wake_ev, hook_ev;
	struct rte_epoll_event rx_ev[GW_DP_MAX_PORTS]; /* rx_intr_level queues */
	bool hooked;      /* worker_init was called: worker_fini is due */
	bool reader;      /* registered as params->pub's reader idx */
	atomic_int ready; /* 0 starting, 1 polling, <0 failed (error code) */
	/*
	 * Generation of the snapshot the worker last took from params->pub
	 * (0: none yet): stored (relaxed) only when it changes, read by
	 * control (gw_dp_worker_info), so the steady state costs nothing.
	 */
	uint64_t snap_gen;
	char err[GW_ERR_MSG_MAX];

	/*
	 * Counters (gw_counters.h: written one way, read one way). st and
	 * busy_cycles are this worker's private counters: plain ++ on the fast
	 * path, never read by another thread. Every tick the worker publishes
	 * them with the TCP stack's into pub (gw_dp_publish); control reads
	 * only pub, with gw_ctr_read, on its own cache lines.
	 */
	struct gw_dp_stats st __rte_cache_aligned;
	/*
	 * TSC cycles of the loop iterations that did work (received, sent or
	 * dispatched packets) since the worker started: the handshake work
	 * per core-second comes from it, idle polls and sleeps are not in it.
	 * Beside st, not in it: a running total, not a summed counter.
	 */
	uint64_t busy_cycles;
	struct gw_svc_up_fails up_fail[GW_DP_MAX_LISTENERS]; /* svc_proxy counts here */
	/*
	 * 1 while the worker waits in epoll (or is about to): whoever queues
	 * work for it (a dispatched packet, a frame on a TX ring it drains)
	 * takes it back to 0 and writes wake_fd (gw_worker_kick). A line of
	 * its own: other workers read it once per burst they hand over.
	 */
	uint32_t sleeping __rte_cache_aligned;
	uint64_t pub_seq __rte_cache_aligned; /* gw_ctr_publish's sequence */
	struct gw_lcore_counters pub;
} __rte_cache_aligned;

/* What every worker reads about a port (immutable while workers run). */
struct gw_dp_port_rt {
	struct gw_port dev;
	uint32_t ip;
	uint32_t mask; /* network order */
	uint32_t gateway;
	struct rte_ring *txring; /* shared-TX fallback (NULL if every worker has a queue) */
};

struct gw_dp {
	struct gw_dp_port_rt ports[GW_DP_MAX_PORTS];
	unsigned n_ports;
	int16_t port_idx[RTE_MAX_ETHPORTS]; /* ethdev port id -> index, -1 none */
	unsigned n_workers;
	bool tx_cksum_offload; /* every port fills IPv4+TCP checksums */
	uint16_t mtu;          /* smallest port MTU: the TCP stack's MSS comes from it */
	struct rte_mempool *pool;
	struct gw_lcore *lcores; /* n_workers, rte_zmalloc'd (cache aligned) */
	atomic_bool stop;
	const struct gw_dp_params *params; /* borrowed: valid until gw_dp_stop */
	uint64_t tsc_hz;
};

#endif /* GW_DATAPLANE_TYPES_H */
