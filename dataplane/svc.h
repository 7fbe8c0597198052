/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svc.h - the plain-TCP services a listener can run on a worker's stack:
 * `echo` (diagnostic: returns every byte, with backpressure) and `tcp-proxy`
 * (relays to an upstream over an active open from the same lcore).
 *
 * The worker calls gw_svc_listen() for each configured listener on each
 * worker lcore's stack (every worker listens on every listener address; RSS
 * picks the worker). What a listener does beyond its bind comes from the
 * snapshot (policy/snap.h), as for the TLS services (svc_tls.h): each
 * accept takes the publisher's current snapshot, finds its listener there
 * by index, and the connection keeps a reference to that snapshot (and
 * reads its upstreams from it) until it ends. A reload that changes a
 * tcp-proxy's upstreams therefore applies to new connections; open ones
 * keep theirs. Dataplane does not read control/config.h.
 *
 * Threading: same rule as tcp.h, call on the stack's lcore, which must be
 * a registered reader of pub (gw_snap_reader_register) that reports
 * quiescent between bursts (worker.c does).
 */
#ifndef GW_SVC_H
#define GW_SVC_H

#include <errno.h>
#include <stdint.h>

#include "gw_alog.h"
#include "gw_err.h"
#include "policy_types.h"
#include "snap.h"
#include "tcp.h"

/*
 * Upstream connects a proxy listener (tcp-proxy, tls-proxy) could not
 * open, by reason (Prometheus mtlsgw_upstream_connect_failures_total
 * {listener, reason}): refused (RST to our SYN), timeout (no SYN-ACK within
 * the TCP handshake timeout; a next hop that never answers ARP ends here
 * too: the SYN is never sent), unreachable (no connect was possible: no
 * source address or route, no free port or connection). Each worker
 * counts its own (plain ++), published with its other counters.
 */
#define GW_SVC_UP_FAILS(X) X(refused) X(timeout) X(unreachable)

enum gw_svc_up_fail {
#define GW_SVC_UP_ENUM_(n) GW_SVC_UP_##n,
	GW_SVC_UP_FAILS(GW_SVC_UP_ENUM_)
#undef GW_SVC_UP_ENUM_
		GW_SVC_UP__COUNT
};

struct gw_svc_up_fails {
	uint64_t v[GW_SVC_UP__COUNT];
};

/* One failure with gw_tcp's reason (-ECONNREFUSED, -ETIMEDOUT, else unreachable). NULL ok. */
static inline void
gw_svc_up_fail_count(struct gw_svc_up_fails *f, int reason)
{
	if (f != NULL)
		f->v[reason == -ECONNREFUSED   ? GW_SVC_UP_refused
			: reason == -ETIMEDOUT ? GW_SVC_UP_timeout
					       : GW_SVC_UP_unreachable]++;
}

struct gw_svc_params {
	uint32_t ip;          /* listen address, network order; 0 = any of ours */
	uint16_t port;        /* network order */
	enum gw_service kind; /* GW_SVC_ECHO or GW_SVC_TCP_PROXY (TLS: svc_tls.h) */
	uint32_t backlog;     /* SYN backlog before cookies; 0 = 128 */
	/*
	 * Its index in every snapshot's listener table (gw_snapshot_listener):
	 * the listener set never changes on a reload, only what each listener
	 * does. An accept whose snapshot has no listener of this kind there
	 * (or no snapshot yet) is refused.
	 */
	unsigned index;
	/*
	 * Where the worker's current snapshot comes from; borrowed, must
	 * outlive the stack. tcp-proxy needs it (its upstreams); echo has no
	 * settings and may run without one (NULL: TCP unit tests), else it
	 * holds its connections' snapshots like every service.
	 */
	struct gw_snap_pub *pub;
	/* tcp-proxy: where this worker counts the listener's upstream connect
	 * failures (borrowed, the worker's own memory); NULL: not counted */
	struct gw_svc_up_fails *up_fails;
	/* tcp-proxy: the worker's access log ring (gw_alog.h): one record per
	 * connection when it ends; borrowed, NULL: none */
	struct gw_alog_ring *alog;
};

/*
 * Start a listener for service p->kind on stack s. The service state is
 * freed with the stack (connections still open then end without events and
 * keep their snapshot references: gw_snap_pub_destroy frees the snapshots
 * regardless). Returns 0, -EINVAL (bad kind, port 0, tcp-proxy without
 * pub), -EADDRINUSE, -ENOSPC, -ENOMEM.
 */
GW_MUST_CHECK int gw_svc_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p);

#endif /* GW_SVC_H */
