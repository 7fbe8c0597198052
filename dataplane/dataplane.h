/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dataplane.h - the dataplane module's contract: start the EAL, the ports and
 * one worker per configured lcore, run until told to stop, report counters.
 *
 * The dataplane never reads control/config.h: gateway/gateway.c translates the
 * config into struct gw_dp_params. Addresses and ports in network byte order.
 *
 * Threading: every function here runs on the main lcore (control), which
 * never touches a packet. Workers run gw_dp's loop on their own lcores
 * (dataplane/worker.c); the only things shared with them are the read-only
 * port table, their rings, and the stop flag.
 */
#ifndef GW_DATAPLANE_H
#define GW_DATAPLANE_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gw_counters.h"
#include "gw_err.h"
#include "policy_types.h"
#include "port.h"
#include "snap.h"

struct gw_tcp_stack;

#define GW_DP_MAX_PORTS 8
#define GW_DP_MAX_WORKERS 64
#define GW_DP_MAX_LISTENERS 64

struct gw_dp_port {
	struct gw_port_params dev; /* driver, device, mtu ... (pool/n_queues are set by gw_dp) */
	uint32_t ip;               /* our address on this port */
	uint8_t prefix_len;        /* on-link subnet */
	uint32_t gateway;          /* default route via this port; 0 = none */
};

/*
 * What a worker binds for one plain listener (svc.h). Everything else it
 * does (a tcp-proxy's upstreams) comes from its listener in the snapshot
 * each accept takes from gw_dp_params.pub, at index.
 */
struct gw_dp_listener {
	const char *name; /* for messages */
	uint32_t ip;
	uint16_t port;
	enum gw_service service; /* GW_SVC_ECHO or GW_SVC_TCP_PROXY (TLS: tls_dp.h) */
	uint32_t backlog;        /* 0 = the stack's default */
	unsigned index;          /* in every snapshot's listener table */
};

/*
 * What a worker does after GW_IDLE_SPINS (worker.c) empty polls:
 * ADAPTIVE sleeps, briefly while traffic flows, longer after a quiet
 * second; POLL never sleeps (a dedicated core); INTERRUPT waits in epoll
 * for its RX queues' interrupts, its dispatch ring and the worker_wait_fd
 * hook until the next slow tick, and wakes at once when a packet comes.
 * A worker with a queue on a port without RX interrupts (af_packet,
 * af_xdp, memif in DPDK 22.11) sleeps adaptively instead; gw_dp_start
 * says so.
 */
enum gw_dp_idle {
	GW_DP_IDLE_ADAPTIVE = 0,
	GW_DP_IDLE_POLL,
	GW_DP_IDLE_INTERRUPT,
};

struct gw_dp_params {
	/*
	 * Lcore ids are logical; EAL --lcores places them: an id that is a CPU
	 * this process may use runs on that CPU, any other id on the
	 * (id mod n)-th of the n allowed CPUs (so workers wrap round-robin
	 * when there are more lcores than CPUs), except the main lcore, which
	 * only sleeps in control and then floats on all allowed CPUs. E.g.
	 * with CPUs 0,1: main 2, workers 0,1 -> "--lcores=2@(0-1),0@0,1@1".
	 */
	unsigned workers[GW_DP_MAX_WORKERS]; /* worker lcore ids */
	unsigned n_workers;
	unsigned main_lcore;
	bool no_huge;            /* EAL --no-huge --no-shconf (tests, demo) */
	unsigned memory_mb;      /* EAL -m; 0 = 512 */
	const char *file_prefix; /* EAL --file-prefix; NULL = "mtlsgw" */
	enum gw_dp_idle idle;    /* what a worker does when there is nothing to do */
	bool verbose;            /* print the EAL argv and DPDK's info messages */
	struct gw_dp_port ports[GW_DP_MAX_PORTS];
	unsigned n_ports;
	struct gw_dp_listener listeners[GW_DP_MAX_LISTENERS];
	unsigned n_listeners;
	/*
	 * The listener table (policy/snap.h), borrowed until gw_dp_stop: each
	 * worker w registers as its reader w (so it needs n_workers readers),
	 * reports quiescent once per loop iteration after the poll hook, and
	 * unregisters after its stack is gone. Every accept takes the current
	 * snapshot. NULL: no snapshot (then only echo listeners, tests).
	 */
	struct gw_snap_pub *pub;
	uint32_t max_conns; /* per worker; 0 = the TCP stack's default */
	unsigned n_mbufs;   /* 0 = sized from memory_mb */
	/* every worker's TCP stack (gw_tcp_stack_params); 0 = the stack's default */
	struct {
		uint32_t sndbuf, rcvbuf;
		uint32_t time_wait_ms, handshake_timeout_ms, idle_timeout_ms, rto_min_ms;
	} tcp;

	/*
	 * Optional per-worker hooks for layers above TCP (TLS listeners,
	 * snapshots), each run on the worker's own lcore with its index:
	 * worker_init once the worker's TCP stack and the plain listeners
	 * exist (a negative return fails gw_dp_start with gw_err's message);
	 * worker_poll once per loop iteration, after gw_tcp_poll and before
	 * the worker's quiescent report to pub (must not block; returns
	 * GW_DP_HOOK_* flags: WAITS while the layer waits for work that
	 * arrives without a packet, such as a handshake parked on an HSM
	 * signature: the worker then keeps its idle sleeps at the shortest, so
	 * the answer is picked up within GW_IDLE_MIN_US; SOON while a packet
	 * is due soon, such as a handshake's next flight from its client: the
	 * adaptive sleeps then stop at GW_IDLE_SOON_US); worker_fini before
	 * the stack is destroyed (also after a failed worker_init).
	 * worker_wait_fd (optional), after worker_init: an eventfd that
	 * becomes readable when such work arrives (the worker reads it, and
	 * polls after reading), so that a worker waiting in epoll
	 * (GW_DP_IDLE_INTERRUPT) wakes for it; -1 for none. It must stay open
	 * until worker_fini.
	 */
	int (*worker_init)(void *arg, unsigned worker, struct gw_tcp_stack *tcp);
	unsigned (*worker_poll)(void *arg, unsigned worker);
	int (*worker_wait_fd)(void *arg, unsigned worker);
	void (*worker_fini)(void *arg, unsigned worker);
	/*
	 * Optional: more counter groups for gw_dp_counters (after net, tcp and
	 * conns), on the main lcore: gw_ctr_snap_add each group and fill its
	 * per-worker words (gw_ctr_read of what the workers published).
	 * 0 or a negative error, which fails gw_dp_counters.
	 */
	int (*stats_read)(void *arg, struct gw_ctr_snap *s);
	void *hook_arg;
	/*
	 * Worker w's access log ring (gw_alog.h) for its tcp-proxy listeners:
	 * one record per connection when it ends. Borrowed until gw_dp_stop;
	 * NULL: no records.
	 */
	struct gw_alog_ring *alog[GW_DP_MAX_WORKERS];
};

struct gw_dp;

/* What params.worker_poll returns (flags; see there). */
#define GW_DP_HOOK_WAITS 1u /* work is due that no packet announces */
#define GW_DP_HOOK_SOON 2u  /* a packet is due soon (a handshake's next flight) */

/*
 * Build the EAL argv from p (lcores, memory, --vdev/-a per port, log levels)
 * and call rte_eal_init. prog is argv[0]. Once per process. Returns 0, or
 * -EINVAL (bad params) / the EAL's error with a message (gw_err_msg()).
 */
GW_MUST_CHECK int gw_dp_eal_init(const struct gw_dp_params *p, const char *prog);

/*
 * After gw_dp_eal_init: into *set the CPUs this process could run on before
 * it (the EAL then bound this thread to the main lcore's) that no worker
 * lcore runs on, the main lcore's included: where the gateway's own
 * threads belong (the HSM threads). When the workers take every CPU, all of
 * them. *allowed (may be NULL): every CPU it could run on. Returns the
 * number of CPUs in *set.
 */
int gw_dp_spare_cpus(cpu_set_t *set, cpu_set_t *allowed);

/*
 * rte_eal_cleanup, then remove the EAL's runtime dir (/var/run/dpdk/<file
 * prefix>) if it is empty, as it is with no_huge (--no-shconf); a hugepage
 * primary's files keep it, as DPDK expects. After gw_dp_stop, once.
 */
void gw_dp_eal_cleanup(void);

/*
 * The EAL argv gw_dp_eal_init would use, space-separated, into buf (for
 * messages and tests). Returns 0, -EINVAL or -ENOSPC.
 */
GW_MUST_CHECK int gw_dp_eal_cmdline(
	const struct gw_dp_params *p, const char *prog, char *buf, size_t len);

/*
 * After gw_dp_eal_init: create the mbuf pool, open the ports, launch the
 * workers; each worker creates its TCP stack and listeners on its own lcore.
 * Returns once every worker is polling (0) or one failed (negative, with a
 * message; everything already started is stopped again). p is borrowed
 * and must stay valid until gw_dp_stop().
 */
GW_MUST_CHECK int gw_dp_start(const struct gw_dp_params *p, struct gw_dp **out);

/*
 * Stop the workers (they free their connections) and wait for them; the
 * ports stay open. A memif peer sees no disconnect until gw_dp_stop, which
 * matters because DPDK 22.11's memif PMD unmaps the shared memory on a
 * disconnect without waiting for the peer's worker inside rx/tx_burst: a
 * process stops its workers, then the peer stops, then it closes its ports.
 */
void gw_dp_stop_workers(struct gw_dp *dp);

/*
 * Stop the workers (gw_dp_stop_workers), close the ports (taps disappear),
 * free the pool. NULL ok. Does not call rte_eal_cleanup.
 */
void gw_dp_stop(struct gw_dp *dp);

/*
 * Every counter, read once (gw_counters.h): per worker, as each worker last
 * published it (at most a tick, 10 ms, old), the groups "net" (GW_DP_STATS),
 * "tcp" (GW_TCP_STATS), "conns" (TCP connections by state), then the
 * stats_read hook's, then "access_log" (gw_alog_group: each ring's drops),
 * summed; the upstream connect failures table; each port's device counters (GW_PORT_STATS),
 * the mbuf pool, the workers' lcores and busy cycles. s is initialised here;
 * the caller gw_ctr_snap_fini's it, also on error. Safe while workers run.
 * Returns 0, -ENOMEM, or the hook's error.
 */
GW_MUST_CHECK int gw_dp_counters(const struct gw_dp *dp, struct gw_ctr_snap *s);

/*
 * gw_dp_counters as the stats JSON line (gw_ctr_snap_json) on f; on error
 * the line is {"error":"<message>"}. Safe while workers run.
 */
void gw_dp_stats_json(const struct gw_dp *dp, FILE *f);

/*
 * Upstream connect failures per proxy listener (svc.h, GW_SVC_UP_FAILS):
 * mtlsgw_upstream_connect_failures_total{listener, reason}, JSON
 * "upstream_connect_failures". gw_dp_counters adds the tcp-proxy rows;
 * the stats_read hook may add others (tls_dp.h: tls-proxy) to the same table.
 */
extern const struct gw_ctr_table_desc gw_dp_up_fails_table;

/* Sum of one named counter over the workers (dataplane or tcp); -1 if unknown. */
int64_t gw_dp_stat(const struct gw_dp *dp, const char *name);

/* What control may read about one running worker. */
struct gw_dp_worker_info {
	unsigned lcore;       /* its lcore id (gw_dp_params.workers[w]) */
	uint64_t busy_cycles; /* TSC cycles of loop iterations that did work */
	/* generation of the snapshot it last took from gw_dp_params.pub, once
	 * per loop iteration (new connections on it use that one or a newer
	 * one); 0 before its first loop or without pub */
	uint64_t generation;
	/* iterations of its main loop: a worker that is not stuck moves it at
	 * least every 10 ms (a slow tick), idle or not (the watchdog's progress) */
	uint64_t loops;
};

/* Number of workers (gw_dp_params.n_workers). */
unsigned gw_dp_n_workers(const struct gw_dp *dp);

/*
 * Worker w (0 .. n_workers-1, gw_dp_params.workers order). busy_cycles
 * only grows (as published every tick, gw_dp_counters); divide by
 * gw_dp_tsc_hz() for seconds. Safe while workers run. 0, or -EINVAL
 * for a bad w or NULL.
 */
GW_MUST_CHECK int gw_dp_worker_info(
	const struct gw_dp *dp, unsigned w, struct gw_dp_worker_info *out);

/* The TSC rate busy_cycles count in (rte_get_tsc_hz). */
uint64_t gw_dp_tsc_hz(const struct gw_dp *dp);

#endif /* GW_DATAPLANE_H */
