/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svc_tls.c - `tls-echo` and `tls-proxy` (see svc_tls.h).
 *
 * Backpressure without buffers of our own: plaintext is read from TLS only
 * as much as the other side can take right now (gw_tls_write_room for the
 * client, gw_tcp_tx_space for the upstream), so unread records stay in the
 * TCP receive queue and close the sender's window; the upstream's bytes are
 * peeked and consumed only once a TLS record took them.
 *
 * Closing (docs/architecture.md "The data path of one connection", step 8): the client's close_notify or FIN becomes a
 * FIN to the upstream once everything before it was passed on; the
 * upstream's FIN becomes close_notify + FIN to the client; when both
 * directions are done the pair is released. A reset, timeout or TLS error
 * on either side aborts the other.
 */
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>

#include "proxy_v2.h"
#include "svc_internal.h"
#include "svc_tls.h"

#define RELAY_CHUNK 16384

struct tls_svc;

struct tls_pair {
	struct tls_svc *L;
	struct gw_tls_conn *cl;             /* NULL once released */
	struct gw_tcp_conn *up;             /* NULL once released */
	const struct gw_snap_listener *lst; /* of cl's snapshot (cl holds the ref) */
	unsigned tries;                     /* as wide as lst->n_upstreams: no wrap */
	struct gw_svc_pp2 pp2;              /* the PROXY v2 header, before any byte */
	bool up_ok;
	bool cl_fin_done; /* client's close_notify/FIN passed on as FIN */
	bool up_fin_done; /* upstream's FIN passed on as close_notify + FIN */
	struct tls_pair *next_free;
};

struct tls_svc {
	struct gw_svc_tls_params p;
	unsigned rr;
	struct gw_svc_lst_cache cache;
	struct tls_pair *free_head;
	struct tls_pair pairs[]; /* tls-proxy only */
};

/* ---- tls-echo ---- */

/*
 * Plaintext from TLS connection t to where put() sends it: peek, put, then
 * consume only what put took, so a short or refused put (full buffer, mbuf
 * pool empty) loses nothing: the rest stays in t for the next WRITABLE.
 * put returns bytes taken (0 = later) or < 0 on a fatal error.
 * Returns 0, or -EPROTO / put's error.
 */
static int
tls_relay_out(struct gw_tls_conn *t, size_t (*room)(void *),
	long (*put)(void *, const void *, size_t), void *arg)
{
	uint8_t buf[RELAY_CHUNK];

	for (;;) {
		size_t r = room(arg);
		long n, w;

		if (r == 0)
			break; /* WRITABLE will call again */
		n = gw_tls_peek(t, buf, RTE_MIN(r, sizeof(buf)));
		if (n < 0)
			return -EPROTO;
		if (n == 0)
			break;
		w = put(arg, buf, (size_t)n);
		if (w < 0)
			return (int)w;
		if (w == 0)
			break;
		/* the same bytes again, now consumed */
		if (gw_tls_read(t, buf, (size_t)w) != w)
			return -EPROTO;
		if (w < n)
			break;
	}
	return 0;
}

static size_t
echo_room(void *arg)
{
	return gw_tls_write_room(arg);
}

static long
echo_put(void *arg, const void *buf, size_t n)
{
	return gw_tls_write(arg, buf, n);
}

static void
echo_pump(struct gw_tls_conn *t)
{
	if (tls_relay_out(t, echo_room, echo_put, t) < 0) {
		gw_tls_abort(t);
		return;
	}
	if (gw_tls_peer_closed(t))
		gw_tls_close(t); /* close_notify + FIN after the echoed bytes */
}

static void
echo_event(struct gw_tls_conn *t, enum gw_tls_event ev, int reason, void *ctx)
{
	RTE_SET_USED(reason);
	RTE_SET_USED(ctx);
	switch (ev) {
	case GW_TLS_EV_ESTABLISHED:
	case GW_TLS_EV_READABLE:
	case GW_TLS_EV_WRITABLE:
		echo_pump(t);
		break;
	default:
		break;
	}
}

/* ---- tls-proxy ---- */

static void proxy_up_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx);

static void
pair_put(struct tls_pair *pp)
{
	pp->cl = NULL;
	pp->up = NULL;
	pp->next_free = pp->L->free_head;
	pp->L->free_head = pp;
}

static size_t
up_room(void *arg)
{
	return gw_tcp_tx_space(arg);
}

static long
up_put(void *arg, const void *buf, size_t n)
{
	long w = gw_tcp_write(arg, buf, n);

	/* mbuf pool empty: backpressure, as in tcp-proxy; the stack's nobuf
	 * list sends WRITABLE once mbufs are back */
	return w == -ENOBUFS ? 0 : w;
}

/* client -> upstream: take from TLS only what the upstream send buffer took. */
static int
pump_cl_up(struct tls_pair *pp)
{
	GW_GUARD(tls_relay_out(pp->cl, up_room, up_put, pp->up));
	if (!pp->cl_fin_done && gw_tls_peer_closed(pp->cl)) {
		pp->cl_fin_done = true;
		gw_tcp_shutdown(pp->up);
	}
	return 0;
}

/* upstream -> client: peek, one record, consume what it took. */
static void
pump_up_cl(struct tls_pair *pp)
{
	uint8_t buf[RELAY_CHUNK];

	for (;;) {
		size_t room = gw_tls_write_room(pp->cl), n;
		long w;

		if (room == 0 || gw_tcp_rx_avail(pp->up) == 0)
			break;
		n = gw_tcp_peek(pp->up, buf, RTE_MIN(room, sizeof(buf)));
		w = gw_tls_write(pp->cl, buf, n);
		if (w <= 0)
			break;
		gw_tcp_consume(pp->up, (size_t)w);
	}
	if (!pp->up_fin_done && gw_tcp_peer_closed(pp->up)) {
		pp->up_fin_done = true;
		gw_tls_shutdown(pp->cl);
	}
}

static void
pair_abort(struct tls_pair *pp)
{
	if (pp->cl)
		gw_tls_abort(pp->cl);
	if (pp->up)
		gw_tcp_abort(pp->up);
	pair_put(pp);
}

/*
 * The PROXY v2 header goes first and whole. With the mbuf pool empty it may
 * go in pieces: the header is rebuilt (same connection, same bytes) and the
 * rest queued on WRITABLE (gw_svc_pp2_send). Returns 1 when done, 0 to wait,
 * < 0 to abort.
 */
static int
send_pp2(struct tls_pair *pp)
{
	uint8_t hdr[2048];

	if (pp->pp2.done)
		return 1;
	return gw_svc_pp2_send(&pp->pp2, pp->up, hdr, gw_tls_pp2_build(pp->cl, hdr, sizeof(hdr)));
}

static void
relay(struct tls_pair *pp)
{
	int rc;

	if (!pp->up_ok || pp->cl == NULL || pp->up == NULL)
		return;
	rc = send_pp2(pp);
	if (rc < 0) {
		pair_abort(pp);
		return;
	}
	if (rc == 0)
		return; /* the header first: WRITABLE brings us back */
	if (pump_cl_up(pp) < 0) {
		pair_abort(pp);
		return;
	}
	pump_up_cl(pp);
	if (pp->cl_fin_done && pp->up_fin_done) {
		gw_tls_close(pp->cl);
		gw_tcp_close(pp->up);
		pair_put(pp);
	}
}

static bool
connect_next(struct tls_pair *pp)
{
	struct tls_svc *L = pp->L;
	unsigned n = pp->lst->n_upstreams;

	if (pp->cl == NULL || gw_tls_tcp(pp->cl) == NULL)
		return false;
	while (pp->tries < n) {
		unsigned i = L->rr++ % n;
		int rc;

		pp->tries++;
		gw_tls_set_upstream(pp->cl, pp->lst->upstreams[i].ip, pp->lst->upstreams[i].port);
		rc = gw_svc_upstream_connect(gw_tls_tcp(pp->cl), pp->lst->upstreams[i].ip,
			pp->lst->upstreams[i].port, proxy_up_event, pp, &pp->up);
		if (rc == 0)
			return true;
		gw_tls_upstream_failed(L->p.tw, L->p.index, rc); /* unreachable */
		pp->up = NULL;
	}
	gw_tls_set_upstream_failed(pp->cl);
	return false;
}

static void
proxy_up_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct tls_pair *pp = ctx;

	RTE_SET_USED(c);
	switch (ev) {
	case GW_TCP_EV_CONNECTED:
		pp->up_ok = true;
		relay(pp);
		break;
	case GW_TCP_EV_READABLE:
	case GW_TCP_EV_WRITABLE:
	case GW_TCP_EV_PEER_FIN:
		relay(pp);
		break;
	case GW_TCP_EV_CLOSED:
		pp->up = NULL;
		if (!pp->up_ok) /* never connected: refused, timed out */
			gw_tls_upstream_failed(pp->L->p.tw, pp->L->p.index,
				reason == -ECONNREFUSED || reason == -ETIMEDOUT ? reason
										: -ETIMEDOUT);
		if (!pp->up_ok && (reason == -ECONNREFUSED || reason == -ETIMEDOUT) &&
			connect_next(pp))
			break; /* next upstream, skipping the refuser */
		pair_abort(pp);
		break;
	}
}

static void
proxy_cl_event(struct gw_tls_conn *t, enum gw_tls_event ev, int reason, void *ctx)
{
	struct tls_pair *pp = ctx;

	RTE_SET_USED(t);
	RTE_SET_USED(reason);
	switch (ev) {
	case GW_TLS_EV_ESTABLISHED:
		/* the upstream only once the client is who it says it is */
		if (!connect_next(pp))
			pair_abort(pp);
		break;
	case GW_TLS_EV_READABLE:
	case GW_TLS_EV_WRITABLE:
		relay(pp);
		break;
	case GW_TLS_EV_CLOSED:
		pp->cl = NULL;
		if (pp->up)
			gw_tcp_abort(pp->up);
		pair_put(pp);
		break;
	}
}

/* ---- listener ---- */

static int
tls_svc_accept(struct gw_tcp_conn *c, void *ctx)
{
	struct tls_svc *L = ctx;
	const struct gw_snapshot *snap = gw_snap_current(L->p.pub);
	const struct gw_snap_listener *lst;
	struct gw_tls_conn *t;
	struct tls_pair *pp;
	int rc;

	if (snap == NULL)
		return -ENOENT;
	lst = gw_svc_snap_listener(&L->cache, snap, L->p.index, L->p.kind);
	if (lst == NULL)
		return -ENOENT; /* not this listener any more: refuse */
	if (L->p.kind == GW_SVC_TLS_ECHO) {
		rc = gw_tls_accept(L->p.tw, c, snap, lst, echo_event, L, &t);
		if (rc == 0)
			gw_tls_set_hist_slot(t, L->p.index);
		return rc;
	}
	if (lst->n_upstreams == 0)
		return -EINVAL;
	pp = L->free_head;
	if (pp == NULL)
		return -ENOMEM;
	L->free_head = pp->next_free;
	memset(&pp->tries, 0, sizeof(*pp) - offsetof(struct tls_pair, tries));
	pp->L = L;
	pp->up = NULL;
	pp->lst = lst;
	gw_svc_pp2_init(&pp->pp2, lst);
	rc = gw_tls_accept(L->p.tw, c, snap, lst, proxy_cl_event, pp, &pp->cl);
	if (rc < 0) {
		pp->cl = NULL;
		pair_put(pp);
	} else {
		gw_tls_set_hist_slot(pp->cl, L->p.index);
	}
	return rc;
}

int
gw_svc_tls_listen(struct gw_tcp_stack *s, const struct gw_svc_tls_params *p)
{
	unsigned n_pairs;
	struct tls_svc *L;

	GW_ENSURE(s && p && p->port && p->pub && p->tw, -EINVAL);
	GW_ENSURE(p->kind == GW_SVC_TLS_ECHO || p->kind == GW_SVC_TLS_PROXY, -EINVAL);
	n_pairs = p->kind == GW_SVC_TLS_PROXY ? gw_svc_proxy_pairs(s) : 0;
	L = calloc(1, sizeof(*L) + n_pairs * sizeof(L->pairs[0]));
	GW_ENSURE(L, -ENOMEM);
	L->p = *p;
	for (unsigned i = n_pairs; i-- > 0;) {
		L->pairs[i].L = L;
		L->pairs[i].next_free = L->free_head;
		L->free_head = &L->pairs[i];
	}
	return gw_svc_tcp_listen(s, p->ip, p->port, p->backlog, tls_svc_accept, L);
}
