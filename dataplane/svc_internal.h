/* SPDX-License-Identifier: BSD-3-Clause */
/* svc_internal.h - per-service listen functions behind gw_svc_listen(). */
#ifndef GW_SVC_INTERNAL_H
#define GW_SVC_INTERNAL_H

#include "svc.h"

GW_MUST_CHECK int gw_svc_echo_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p);
GW_MUST_CHECK int gw_svc_proxy_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p);

/*
 * The upstream connection of a proxied client connection cl (tcp-proxy and
 * tls-proxy): an active open on cl's stack to ip:port (network order) with
 * cb/ctx into *up. Without a route helper there is no source address for it
 * (-EADDRNOTAVAIL): it then leaves from the address the client used.
 * Returns what gw_tcp_connect() returns.
 */
GW_MUST_CHECK int gw_svc_upstream_connect(struct gw_tcp_conn *cl, uint32_t ip, uint16_t port,
	gw_tcp_event_fn *cb, void *ctx, struct gw_tcp_conn **up);

#endif /* GW_SVC_INTERNAL_H */
