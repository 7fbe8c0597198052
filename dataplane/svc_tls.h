/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svc_tls.h - the TLS services a listener can run on a worker's stack:
 * `tls-echo` (terminate, echo the plaintext; tests and the bench) and
 * `tls-proxy` (terminate, relay the plaintext to an upstream opened from the
 * same lcore, optionally after a PROXY v2 header naming the client).
 *
 * Like the plain services (svc.h), these read their listener from the
 * current snapshot at every accept, by index: identities, trust, upstreams
 * and proxy_protocol of a reload apply to new connections, while a
 * connection keeps the snapshot it started with (tls.h takes the
 * reference). Same threading rule as tcp.h: call on the stack's lcore,
 * a registered reader of pub.
 */
#ifndef GW_SVC_TLS_H
#define GW_SVC_TLS_H

#include <stdint.h>

#include "gw_err.h"
#include "snap.h"
#include "tcp.h"
#include "tls.h"

struct gw_svc_tls_params {
	uint32_t ip;   /* listen address, network order; 0 = any of ours */
	uint16_t port; /* network order */
	uint32_t backlog;
	enum gw_service kind; /* GW_SVC_TLS_ECHO or GW_SVC_TLS_PROXY */
	/*
	 * Its index in every snapshot's listener table (gw_snapshot_listener):
	 * the listener set never changes on a reload, only what each listener
	 * does. An accept whose snapshot has no listener of this kind there is
	 * refused.
	 */
	unsigned index;
	struct gw_snap_pub *pub;  /* where the worker's current snapshot comes from */
	struct gw_tls_worker *tw; /* this lcore's TLS worker */
};

/*
 * Start a TLS listener on stack s. State is freed with the stack.
 * Returns 0, -EINVAL, -EADDRINUSE, -ENOSPC, -ENOMEM.
 */
GW_MUST_CHECK int gw_svc_tls_listen(struct gw_tcp_stack *s, const struct gw_svc_tls_params *p);

#endif /* GW_SVC_TLS_H */
