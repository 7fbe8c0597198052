/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svc_internal.h - what the services (svc_echo.c, svc_proxy.c, svc_tls.c)
 * share: per-service listen functions behind gw_svc_listen(), the listen
 * call itself, the accept-time look-up of a listener in the snapshot, and
 * the upstream connect of the two proxies and how they send the PROXY v2
 * header. Worker lcore only.
 */
#ifndef GW_SVC_INTERNAL_H
#define GW_SVC_INTERNAL_H

#include "proxy_v2.h"
#include "snap.h"
#include "svc.h"

GW_MUST_CHECK int gw_svc_echo_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p);
GW_MUST_CHECK int gw_svc_proxy_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p);

/*
 * gw_tcp_listen on ip:port (network order) with accept/ctx; ctx is the
 * service's listener state (malloc'd), freed with the stack, and freed
 * here when the listen fails. Returns what gw_tcp_listen returns.
 */
GW_MUST_CHECK int gw_svc_tcp_listen(struct gw_tcp_stack *s, uint32_t ip, uint16_t port,
	uint32_t backlog, gw_tcp_accept_fn *accept, void *ctx);

/*
 * Client/upstream pairs a proxy listener (tcp-proxy, tls-proxy) sets aside
 * on stack s: each pair holds two of its connections, client and upstream.
 */
static inline uint32_t
gw_svc_proxy_pairs(const struct gw_tcp_stack *s)
{
	return gw_tcp_stack_max_conns(s) / 2;
}

/* The listener a service found in the last snapshot it looked at. */
struct gw_svc_lst_cache {
	uint64_t gen; /* of that snapshot */
	const struct gw_snap_listener *lst;
};

/*
 * Listener index of snap if it runs service kind, else NULL (the accept is
 * refused). Cached per generation, never by pointer: a freed snapshot's
 * address may come back.
 */
const struct gw_snap_listener *gw_svc_snap_listener(struct gw_svc_lst_cache *cache,
	const struct gw_snapshot *snap, unsigned index, enum gw_service kind);

/*
 * The upstream connection of a proxied client connection cl (tcp-proxy and
 * tls-proxy): an active open on cl's stack to ip:port (network order) with
 * cb/ctx into *up. Without a route helper there is no source address for it
 * (-EADDRNOTAVAIL): it then leaves from the address the client used.
 * Returns what gw_tcp_connect() returns.
 */
GW_MUST_CHECK int gw_svc_upstream_connect(struct gw_tcp_conn *cl, uint32_t ip, uint16_t port,
	gw_tcp_event_fn *cb, void *ctx, struct gw_tcp_conn **up);

/*
 * The PROXY v2 header of one proxied connection (tcp-proxy and tls-proxy),
 * as far as it went out. The header goes first and whole: no client byte
 * is relayed before done.
 */
struct gw_svc_pp2 {
	uint16_t sent; /* header bytes queued so far */
	bool done;     /* header whole, or none configured: bytes may follow */
};

/* Start st for a new connection of listener lst (done unless it wants v2). */
void gw_svc_pp2_init(struct gw_svc_pp2 *st, const struct gw_snap_listener *lst);

/*
 * The address block of info from client connection cl: source = the client,
 * destination = the listener address and port it connected to, in network
 * byte order (proxy_v2.h). The other fields of info are not touched.
 */
void gw_svc_pp2_addrs(const struct gw_tcp_conn *cl, struct gw_pp2_info *info);

/*
 * Queue the rest of the header hdr[0..n) on up (n is what gw_pp2_build or
 * gw_tls_pp2_build returned, so a negative n is passed back as the error).
 * The caller rebuilds the same bytes on each call (same connection). With
 * no send room or an empty mbuf pool (-ENOBUFS) what did not go stays for
 * the next call, on GW_TCP_EV_WRITABLE. No allocation.
 * Returns 1 when the header is done (or st was already done), 0 to wait,
 * < 0 to abort the pair (build error, -EPIPE, n shorter than what went).
 */
GW_MUST_CHECK int gw_svc_pp2_send(
	struct gw_svc_pp2 *st, struct gw_tcp_conn *up, const uint8_t *hdr, int n);

#endif /* GW_SVC_INTERNAL_H */
