/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * svc_echo.c - the diagnostic `echo` service: every byte read is written
 * back. Backpressure is end to end: bytes are only consumed from the receive
 * queue once the send queue took them, so a client that does not read stalls
 * our send buffer, then our receive window, then the client. Keeps no state
 * per connection.
 */
#include <rte_common.h>

#include "svc.h"
#include "svc_internal.h"

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
	RTE_SET_USED(ctx);
	switch (ev) {
	case GW_TCP_EV_READABLE:
	case GW_TCP_EV_WRITABLE:
	case GW_TCP_EV_PEER_FIN:
		echo_pump(c);
		break;
	default: /* CLOSED: nothing to free */
		break;
	}
}

static int
echo_accept(struct gw_tcp_conn *c, void *ctx)
{
	RTE_SET_USED(ctx);
	gw_tcp_set_callback(c, echo_event, NULL);
	return 0;
}

int
gw_svc_echo_listen(struct gw_tcp_stack *s, const struct gw_svc_params *p)
{
	struct gw_tcp_listen_params lp = {
		.laddr = p->ip,
		.lport = p->port,
		.backlog = p->backlog,
		.accept = echo_accept,
	};

	return gw_tcp_listen(s, &lp);
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
