/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svc_proxy.c - the `tcp-proxy` service: each accepted client gets an
 * upstream connection opened from the same lcore (gw_tcp_connect picks a
 * source port whose return traffic RSS brings back here), round robin over
 * the upstreams, moving on when one refuses (RST) or does not answer. Bytes
 * are relayed both ways with backpressure (peek, write what fits, consume
 * that much: the unread rest holds the sender's window shut); a FIN on one
 * side becomes a shutdown on the other once the bytes before it are passed
 * on; an RST or timeout on either side aborts the other.
 *
 * With `proxy_protocol: v2` on the listener the first bytes on the upstream
 * connection, before any client byte, are a PROXY v2 header (proxy_v2.h),
 * as haproxy sends for plain TCP: command PROXY, TCP over IPv4, the client's
 * address and port as source, the listener address and port it connected
 * to as destination, and no TLV (nothing about the client is known beyond
 * its address). tls-proxy sends the same through gw_svc_pp2_send() below,
 * with its TLS TLVs added.
 *
 * The upstreams are the listener's in the snapshot the client's accept took
 * (svc.h): the pair holds that reference until it is released, so a reload
 * applies to new clients only.
 *
 * Pairs come from a fixed array allocated at listen time (control path), so
 * the packet path never allocates.
 */
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>

#include "svc.h"
#include "svc_internal.h"

struct proxy_lst;

struct proxy_pair {
	struct proxy_lst *L;
	struct gw_tcp_conn *cl, *up;        /* NULL once released */
	struct gw_snapshot *snap;           /* the client's accept's reference */
	const struct gw_snap_listener *lst; /* its listener in snap: the upstreams */
	unsigned tries;                     /* upstreams tried: as wide as n_upstreams */
	unsigned up_idx;
	struct gw_svc_pp2 pp2; /* the PROXY v2 header, before any relayed byte */
	bool up_ok;            /* upstream ESTABLISHED */
	bool cl_fin_done;      /* client's FIN passed to upstream */
	bool up_fin_done;      /* upstream's FIN passed to client */
	/* the access log's (gw_alog.h) */
	uint8_t end;                 /* enum gw_alog_end */
	uint16_t cl_port;            /* network order */
	uint32_t cl_ip;              /* network order */
	uint64_t t_accept;           /* rdtsc */
	uint64_t rx_bytes, tx_bytes; /* relayed from / to the client */
	struct proxy_pair *next_free;
};

struct proxy_lst {
	struct gw_svc_params p;
	unsigned rr;
	struct gw_svc_lst_cache cache;
	struct proxy_pair *free_head;
	struct proxy_pair pairs[];
};

static void proxy_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx);

/*
 * The connection's access log record (gw_alog.h): the worker only copies
 * numbers into a ring slot; a full ring drops it (counted there).
 */
static void
proxy_alog(const struct proxy_pair *pp)
{
	const struct proxy_lst *L = pp->L;
	struct gw_alog_rec *r;

	if (L->p.alog == NULL || (r = gw_alog_slot(L->p.alog)) == NULL)
		return;
	memset(r, 0, offsetof(struct gw_alog_rec, sni) + 1); /* no TLS fields */
	gw_alog_stamp(r, pp->t_accept, rte_rdtsc(), rte_get_tsc_hz());
	r->rx_bytes = pp->rx_bytes;
	r->tx_bytes = pp->tx_bytes;
	r->client_ip = pp->cl_ip;
	r->client_port = pp->cl_port;
	if (pp->lst != NULL && pp->tries > 0) {
		r->upstream_ip = pp->lst->upstreams[pp->up_idx].ip;
		r->upstream_port = pp->lst->upstreams[pp->up_idx].port;
	}
	r->listener = (uint16_t)L->p.index;
	r->accepted = 1; /* no handshake to refuse */
	r->end = pp->end;
	r->flags = GW_ALOG_F_PROXY;
	gw_alog_push(L->p.alog);
}

static void
proxy_pair_put(struct proxy_pair *pp)
{
	struct proxy_lst *L = pp->L;

	proxy_alog(pp);
	gw_snapshot_unref(pp->snap);
	pp->snap = NULL;
	pp->lst = NULL;
	pp->cl = pp->up = NULL;
	pp->next_free = L->free_head;
	L->free_head = pp;
}

/* Relay from -> to as far as to's send buffer allows. */
static void
proxy_pump(struct gw_tcp_conn *from, struct gw_tcp_conn *to, bool *fin_done, uint64_t *bytes)
{
	uint8_t buf[4096];

	for (;;) {
		size_t room = gw_tcp_tx_space(to), n;
		long w;

		if (!room || !gw_tcp_rx_avail(from))
			break;
		n = gw_tcp_peek(from, buf, RTE_MIN(room, sizeof(buf)));
		w = gw_tcp_write(to, buf, n);
		if (w <= 0)
			break;
		gw_tcp_consume(from, (size_t)w);
		*bytes += (uint64_t)w;
		if ((size_t)w < n)
			break;
	}
	if (!*fin_done && gw_tcp_peer_closed(from)) {
		*fin_done = true;
		gw_tcp_shutdown(to); /* half-close travels on */
	}
}

/* Both directions finished: release both handles (FINs already queued). */
static void
proxy_maybe_done(struct proxy_pair *pp)
{
	if (!(pp->cl_fin_done && pp->up_fin_done))
		return;
	gw_tcp_close(pp->cl);
	gw_tcp_close(pp->up);
	proxy_pair_put(pp);
}

/* The address-only PROXY v2 header first: 1 when done, 0 to wait, < 0 to abort. */
static int
proxy_send_pp2(struct proxy_pair *pp)
{
	struct gw_pp2_info pi = {0};
	uint8_t hdr[GW_PP2_HDR_LEN + GW_PP2_INET_LEN];

	if (pp->pp2.done)
		return 1;
	gw_svc_pp2_addrs(pp->cl, &pi);
	return gw_svc_pp2_send(&pp->pp2, pp->up, hdr, gw_pp2_build(hdr, sizeof(hdr), &pi));
}

static void
proxy_relay(struct proxy_pair *pp)
{
	int rc;

	if (!pp->up_ok)
		return;
	rc = proxy_send_pp2(pp);
	if (rc < 0) { /* both are held while up_ok */
		pp->end = GW_ALOG_END_RESET;
		gw_tcp_abort(pp->cl);
		gw_tcp_abort(pp->up);
		proxy_pair_put(pp);
		return;
	}
	if (rc == 0)
		return; /* the header first: WRITABLE brings us back */
	proxy_pump(pp->cl, pp->up, &pp->cl_fin_done, &pp->rx_bytes);
	proxy_pump(pp->up, pp->cl, &pp->up_fin_done, &pp->tx_bytes);
	proxy_maybe_done(pp);
}

int
gw_svc_upstream_connect(struct gw_tcp_conn *cl, uint32_t ip, uint16_t port, gw_tcp_event_fn *cb,
	void *ctx, struct gw_tcp_conn **up)
{
	struct gw_tcp_stack *s = gw_tcp_conn_stack(cl);
	struct gw_tcp_connect_params cp = {.raddr = ip, .rport = port, .cb = cb, .ctx = ctx};
	struct gw_tcp_conn_info ci;
	int rc = gw_tcp_connect(s, &cp, up);

	if (rc == -EADDRNOTAVAIL) {
		/* no route helper: leave from the address the client used */
		gw_tcp_get_info(cl, &ci);
		cp.laddr = ci.laddr;
		rc = gw_tcp_connect(s, &cp, up);
	}
	return rc;
}

void
gw_svc_pp2_init(struct gw_svc_pp2 *st, const struct gw_snap_listener *lst)
{
	st->sent = 0;
	st->done = lst->proxy_protocol != GW_PROXY_V2;
}

void
gw_svc_pp2_addrs(const struct gw_tcp_conn *cl, struct gw_pp2_info *info)
{
	struct gw_tcp_conn_info ci;

	gw_tcp_get_info(cl, &ci);
	info->src_addr = ci.raddr;
	info->src_port = ci.rport;
	info->dst_addr = ci.laddr;
	info->dst_port = ci.lport;
}

int
gw_svc_pp2_send(struct gw_svc_pp2 *st, struct gw_tcp_conn *up, const uint8_t *hdr, int n)
{
	long w;

	if (st->done)
		return 1;
	GW_GUARD(n); /* the build failed (it recorded why) */
	/* shorter than what went: not the header that began to go */
	GW_ENSURE(n > st->sent && n <= UINT16_MAX, -EINVAL);
	w = gw_tcp_write(up, hdr + st->sent, (size_t)(n - st->sent));
	if (w == -ENOBUFS)
		return 0;          /* nothing lost: again on WRITABLE */
	GW_ENSURE(w >= 0, (int)w); /* -EPIPE: the upstream is gone */
	st->sent = (uint16_t)(st->sent + w);
	st->done = st->sent == n;
	return st->done;
}

/* Open the next upstream; false when every one has been tried. */
static bool
proxy_connect_next(struct proxy_pair *pp)
{
	struct proxy_lst *L = pp->L;
	const struct gw_snap_listener *lst = pp->lst;

	while (pp->tries < lst->n_upstreams) {
		unsigned i = L->rr++ % lst->n_upstreams;

		int rc;

		pp->tries++;
		pp->up_idx = i;
		rc = gw_svc_upstream_connect(pp->cl, lst->upstreams[i].ip, lst->upstreams[i].port,
			proxy_event, pp, &pp->up);
		if (rc == 0)
			return true;
		gw_svc_up_fail_count(L->p.up_fails, rc); /* unreachable */
		pp->up = NULL;
	}
	pp->end = GW_ALOG_END_UPSTREAM;
	return false;
}

static void
proxy_event(struct gw_tcp_conn *c, enum gw_tcp_event ev, int reason, void *ctx)
{
	struct proxy_pair *pp = ctx;
	bool is_up = c == pp->up;

	switch (ev) {
	case GW_TCP_EV_CONNECTED:
		pp->up_ok = true;
		proxy_relay(pp);
		break;
	case GW_TCP_EV_READABLE:
	case GW_TCP_EV_WRITABLE:
	case GW_TCP_EV_PEER_FIN:
		proxy_relay(pp);
		break;
	case GW_TCP_EV_CLOSED:
		if (!is_up || pp->up_ok) /* not a connect that failed (the next may not) */
			pp->end = reason == 0 ? GW_ALOG_END_CLOSE : GW_ALOG_END_RESET;
		if (is_up) {
			pp->up = NULL;
			if (!pp->up_ok) /* never connected: refused or timed out */
				gw_svc_up_fail_count(pp->L->p.up_fails, reason);
			if (!pp->up_ok && (reason == -ECONNREFUSED || reason == -ETIMEDOUT) &&
				proxy_connect_next(pp))
				break; /* next upstream */
			gw_tcp_abort(pp->cl);
		} else {
			pp->cl = NULL;
			if (pp->up)
				gw_tcp_abort(pp->up);
		}
		proxy_pair_put(pp);
		break;
	}
}

static int
proxy_accept(struct gw_tcp_conn *c, void *ctx)
{
	struct proxy_lst *L = ctx;
	const struct gw_snapshot *snap = gw_snap_current(L->p.pub);
	const struct gw_snap_listener *lst;
	struct proxy_pair *pp = L->free_head;

	if (snap == NULL)
		return -ENOENT;
	lst = gw_svc_snap_listener(&L->cache, snap, L->p.index, GW_SVC_TCP_PROXY);
	if (lst == NULL)
		return -ENOENT; /* not this listener any more: refuse */
	if (lst->n_upstreams == 0)
		return -EINVAL;
	if (!pp)
		return -ENOMEM; /* refused: the stack answers RST */
	L->free_head = pp->next_free;
	pp->cl = c;
	pp->up = NULL;
	pp->snap = gw_snapshot_ref(snap); /* the connection's, until proxy_pair_put */
	pp->lst = lst;
	pp->tries = 0;
	pp->up_idx = 0;
	gw_svc_pp2_init(&pp->pp2, lst);
	pp->up_ok = pp->cl_fin_done = pp->up_fin_done = false;
	gw_tcp_get_peer(c, &pp->cl_ip, &pp->cl_port);
	pp->t_accept = rte_rdtsc();
	pp->rx_bytes = pp->tx_bytes = 0;
	pp->end = GW_ALOG_END_CLOSE;
	gw_tcp_set_callback(c, proxy_event, pp);
	if (!proxy_connect_next(pp)) {
		proxy_pair_put(pp);
		return -EADDRNOTAVAIL;
	}
	return 0;
}

int
gw_svc_proxy_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p)
{
	uint32_t n = gw_svc_proxy_pairs(s);
	struct proxy_lst *L;

	GW_ENSURE(p->pub != NULL, -EINVAL);
	L = calloc(1, sizeof(*L) + n * sizeof(L->pairs[0]));
	GW_ENSURE(L, -ENOMEM);
	L->p = *p;
	for (uint32_t i = n; i-- > 0;) {
		L->pairs[i].L = L;
		L->pairs[i].next_free = L->free_head;
		L->free_head = &L->pairs[i];
	}
	return gw_svc_tcp_listen(s, p->ip, p->port, p->backlog, proxy_accept, L);
}
