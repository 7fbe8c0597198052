/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svc_echo.c - the diagnostic `echo` service: every byte read is written
 * back. Backpressure is end to end: bytes are only consumed from the receive
 * queue once the send queue took them, so a client that does not read stalls
 * our send buffer, then our receive window, then the client. Its only state
 * per connection is the snapshot reference it started with (the callback's
 * ctx). Also the listen functions every service shares (svc_internal.h).
 */
#include <stdlib.h>

#include <rte_common.h>

#include "svc.h"
#include "svc_internal.h"

struct echo_lst {
	struct gw_svc_params p;
	struct gw_svc_lst_cache cache;
};

/* Move as much as fits from rx to tx; close once the peer's FIN is reached. */
static void
echo_pump(struct gw_tcp_conn *c)
{
	uint8_t buf[4096];

	for (;;) {
		size_t room = gw_tcp_tx_space(c), n;
		long w;

		if (!room || !gw_tcp_rx_avail(c))
			break;
		n = gw_tcp_peek(c, buf, RTE_MIN(room, sizeof(buf)));
		w = gw_tcp_write(c, buf, n);
		if (w <= 0)
			break; /* -ENOBUFS: WRITABLE will call again */
		gw_tcp_consume(c, (size_t)w);
		if ((size_t)w < n)
			break;
	}
	if (gw_tcp_peer_closed(c))
		gw_tcp_close(c); /* FIN after the echoed bytes */
}

static void
echo_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	RTE_SET_USED(reason);
	switch (ev) {
	case GW_TCP_EV_READABLE:
	case GW_TCP_EV_WRITABLE:
	case GW_TCP_EV_PEER_FIN:
		echo_pump(c);
		break;
	case GW_TCP_EV_CLOSED:
		gw_snapshot_unref(ctx); /* the snapshot the connection started with */
		break;
	default:
		break;
	}
}

static int
echo_accept(struct gw_tcp_conn *c, void *ctx)
{
	struct echo_lst *L = ctx;
	struct gw_snapshot *ref = NULL;

	if (L->p.pub != NULL) {
		const struct gw_snapshot *snap = gw_snap_current(L->p.pub);

		if (snap == NULL ||
			gw_svc_snap_listener(&L->cache, snap, L->p.index, GW_SVC_ECHO) == NULL)
			return -ENOENT; /* not this listener any more: refuse */
		ref = gw_snapshot_ref(snap);
	}
	gw_tcp_set_callback(c, echo_event, ref);
	return 0;
}

int
gw_svc_echo_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p)
{
	struct echo_lst *L = calloc(1, sizeof(*L));

	GW_ENSURE(L, -ENOMEM);
	L->p = *p;
	return gw_svc_tcp_listen(s, p->ip, p->port, p->backlog, echo_accept, L);
}

/* ---- shared by the services (svc_internal.h) ---- */

int
gw_svc_tcp_listen(struct gw_tcp_stack *s, uint32_t ip, uint16_t port, uint32_t backlog,
	gw_tcp_accept_fn *accept, void *ctx)
{
	/* ctx is the listener's: the stack frees it with itself */
	struct gw_tcp_listen_params lp = {.laddr = ip, .lport = port, .backlog = backlog};
	int rc;

	lp.accept = accept;
	lp.ctx = ctx;
	lp.ctx_free = free;
	rc = gw_tcp_listen(s, &lp);
	if (rc < 0)
		free(ctx);
	return rc;
}

const struct gw_snap_listener *
gw_svc_snap_listener(struct gw_svc_lst_cache *cache, const struct gw_snapshot *snap, unsigned index,
	enum gw_service kind)
{
	uint64_t gen = gw_snapshot_generation(snap);

	/* by generation, never by pointer: a freed snapshot's address may come back */
	if (cache->lst == NULL || cache->gen != gen) {
		const struct gw_snap_listener *l = gw_snapshot_listener(snap, index);

		cache->lst = l != NULL && l->service == kind ? l : NULL;
		cache->gen = gen;
	}
	return cache->lst;
}

int
gw_svc_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p)
{
	GW_ENSURE(s && p && p->port, -EINVAL);
	switch (p->kind) {
	case GW_SVC_ECHO:
		return gw_svc_echo_listen(s, p);
	case GW_SVC_TCP_PROXY:
		return gw_svc_proxy_listen(s, p);
	default:
		return gw_err_set(-EINVAL, GW_HERE);
	}
}
