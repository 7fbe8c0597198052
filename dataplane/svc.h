/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svc.h - the plain-TCP services a listener can run on a worker's stack:
 * `echo` (diagnostic: returns every byte, with backpressure) and `tcp-proxy`
 * (relays to an upstream over an active open from the same lcore).
 *
 * The worker calls gw_svc_listen() for each configured listener on each
 * worker lcore's stack (every worker listens on every listener address; RSS
 * picks the worker). Dataplane does not read control/config.h: gateway/gateway.c
 * translates the config into these params. Same threading rule as tcp.h:
 * call on the stack's lcore.
 */
#ifndef GW_SVC_H
#define GW_SVC_H

#include <stdint.h>

#include "gw_err.h"
#include "policy_types.h"
#include "tcp.h"

#define GW_SVC_MAX_UPSTREAMS 8

struct gw_svc_params {
	uint32_t ip;          /* listen address, network order; 0 = any of ours */
	uint16_t port;        /* network order */
	enum gw_service kind; /* GW_SVC_ECHO or GW_SVC_TCP_PROXY (TLS: svc_tls.h) */
	uint32_t backlog;     /* SYN backlog before cookies; 0 = 128 */
	struct {
		uint32_t ip;   /* network order */
		uint16_t port; /* network order */
	} upstreams[GW_SVC_MAX_UPSTREAMS];
	unsigned n_upstreams; /* tcp-proxy: 1..8, round robin */
};

/*
 * Start a listener for service p->kind on stack s. The service state is
 * freed with the stack. Returns 0, -EINVAL (bad kind, port 0, proxy without
 * upstreams), -EADDRINUSE, -ENOSPC, -ENOMEM.
 */
GW_MUST_CHECK int gw_svc_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p);

#endif /* GW_SVC_H */
