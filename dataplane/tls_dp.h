/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_dp.h - TLS listeners on the running dataplane, through the
 * dataplane's per-worker hooks (gw_dp_params.worker_init/poll/fini).
 *
 * The listener table is the snapshot's (policy/snap.h), for plain and TLS
 * listeners alike: the dataplane core binds the plain ones (gw_dp_listener)
 * and registers each worker as RCU reader `worker` of the same publisher
 * (gw_dp_params.pub); these hooks bind the TLS ones. On each worker lcore,
 * worker_init creates that lcore's struct gw_tls_worker (tls.h) and starts
 * the TLS listeners (svc_tls.h) on the worker's TCP stack. worker_poll
 * runs the TLS timeouts and copies the counters for control every
 * millisecond (then the worker notes the snapshot's generation and reports
 * quiescent: connections hold references, the loop no pointer).
 * worker_fini aborts the TLS connections. The counters follow
 * gw_counters.h: each worker publishes its struct gw_tls_stats
 * (gw_ctr_publish), control reads them (gw_ctr_read) with gw_tls_dp_stats /
 * gw_tls_dp_stat, and gw_dp_counters through the stats_read hook (group
 * gw_tls_dp_group).
 */
#ifndef GW_TLS_DP_H
#define GW_TLS_DP_H

#include <stdint.h>
#include <stdio.h>

#include "dataplane.h"
#include "gw_counters.h"
#include "gw_err.h"
#include "hsm.h"
#include "snap.h"
#include "svc_tls.h"
#include "tls.h"

struct gw_tls_dp_listener {
	char name[128]; /* for messages */
	unsigned index; /* in every snapshot's listener table (svc_tls.h) */
	uint32_t ip;    /* network order */
	uint16_t port;  /* network order */
	uint32_t backlog;
	enum gw_service kind; /* GW_SVC_TLS_ECHO or GW_SVC_TLS_PROXY */
};

struct gw_tls_dp_params {
	struct gw_snap_pub *pub; /* gw_dp_params.pub (the workers are its readers); borrowed */
	unsigned n_workers;
	struct gw_tls_dp_listener listeners[GW_DP_MAX_LISTENERS];
	unsigned n_listeners;
	struct gw_tls_worker_params worker; /* lcore and tsc_hz are set per worker */
	/* worker.hsm_async: gw_tls_dp_create starts the HSM threads with these
	 * (zeros: defaults), gw_tls_dp_destroy stops them */
	struct gw_hsm_async_params hsm;
	/*
	 * Worker w's access log ring (gw_alog.h; worker.alog is set from it),
	 * borrowed: it must outlive gw_dp_stop. NULL: no records from w. The
	 * same as gw_dp_params.alog[w] (whose drops gw_dp_counters reports).
	 */
	struct gw_alog_ring *alog[GW_DP_MAX_WORKERS];
};

struct gw_tls_dp;

/* Returns 0, -EINVAL, -ENOMEM. Control thread, before gw_dp_start. */
GW_MUST_CHECK int gw_tls_dp_create(const struct gw_tls_dp_params *p, struct gw_tls_dp **out);

/* After gw_dp_stop. NULL ok. */
void gw_tls_dp_destroy(struct gw_tls_dp *t);

/* Point p's worker hooks (and the stats_read hook: group "tls") at t. */
void gw_tls_dp_hooks(struct gw_tls_dp *t, struct gw_dp_params *p);

/* Counters summed over the workers (copies at most a millisecond old).
 * Control thread, any time between create and destroy. */
void gw_tls_dp_stats(const struct gw_tls_dp *t, struct gw_tls_stats *sum);

/*
 * One counter by name (a member of gw_tls_dp_group: a name of
 * GW_TLS_STATS in tls.h, "reject_<reason>", "handshaking" or "established"),
 * summed over the workers; -1 if unknown.
 */
int64_t gw_tls_dp_stat(const struct gw_tls_dp *t, const char *name);

/*
 * The "tls" counter group: GW_TLS_STATS, then reject_<reason> for every
 * gw_trust reason but ok, then the gauges handshaking and established;
 * per worker (JSON "per_worker_hs") hs_ok, hs_full, hs_resumed, hs_fail.
 */
extern const struct gw_ctr_group gw_tls_dp_group;

/*
 * The handshake latency histogram (tls.h, GW_TLS_HS_BOUNDS):
 * mtlsgw_tls_handshake_seconds{listener="<name>"}, one series per TLS
 * listener, recorded per worker without locks, published with the
 * counters (only after a completed handshake) and summed over the workers
 * by the stats_read hook.
 */
extern const struct gw_ctr_hist_desc gw_tls_dp_hs_hist;

/*
 * The stats_read hook also adds a row per tls-proxy listener to the
 * upstream connect failures table (dataplane.h, gw_dp_up_fails_table).
 */

#endif /* GW_TLS_DP_H */
