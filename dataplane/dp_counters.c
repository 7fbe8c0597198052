/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_counters.c - the dataplane's counters (dp_counters.h, dataplane.h):
 * their groups, generated from the X-macro tables; the worker's publish;
 * control's read of every worker, port and the pool.
 */
#include <stddef.h>
#include <string.h>

#include <rte_common.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "dp_counters.h"
#include "net_internal.h"

_Static_assert(sizeof(struct gw_lcore_counters) % sizeof(uint64_t) == 0, "whole words");
/* the tcp group is the scalar counters, conns the rest of struct gw_tcp_stats */
_Static_assert(
	offsetof(struct gw_tcp_stats, conns) ==
		sizeof(uint64_t) * (sizeof(struct gw_tcp_stats) / sizeof(uint64_t) - GW_TCP_ST_MAX),
	"conns ends struct gw_tcp_stats");

#define GW_CTR_C_(n) {#n, GW_CTR_COUNTER, NULL},
#define GW_CTR_G_(n) {#n, GW_CTR_GAUGE, NULL},

static const struct gw_ctr_desc net_desc[] = {GW_DP_STATS(GW_CTR_C_)};
static const struct gw_ctr_desc tcp_desc[] = {GW_TCP_STATS(GW_CTR_C_)};
static const struct gw_ctr_desc conns_desc[] = {GW_TCP_STATES(GW_CTR_G_)};
static const struct gw_ctr_desc port_desc[] = {GW_PORT_STATS(GW_CTR_C_)};

#undef GW_CTR_C_
#undef GW_CTR_G_

_Static_assert(RTE_DIM(net_desc) == sizeof(struct gw_dp_stats) / sizeof(uint64_t), "net");
_Static_assert(
	RTE_DIM(tcp_desc) + RTE_DIM(conns_desc) == sizeof(struct gw_tcp_stats) / sizeof(uint64_t),
	"tcp");

const struct gw_ctr_group gw_dp_net_group = {
	.name = "net",
	.help = "dataplane packet counter, summed over the workers",
	.d = net_desc,
	.n = RTE_DIM(net_desc),
};
const struct gw_ctr_group gw_dp_tcp_group = {
	.name = "tcp",
	.help = "TCP stack counter, summed over the workers",
	.d = tcp_desc,
	.n = RTE_DIM(tcp_desc),
};
const struct gw_ctr_group gw_dp_conns_group = {
	.name = "conns",
	.help = "TCP connections by state, summed over the workers",
	.d = conns_desc,
	.n = RTE_DIM(conns_desc),
	.label = "state",
	.family = "mtlsgw_tcp_connections",
};
static const char *const up_fail_cols[] = {
#define GW_SVC_UP_NAME_(n) #n,
	GW_SVC_UP_FAILS(GW_SVC_UP_NAME_)
#undef GW_SVC_UP_NAME_
};

_Static_assert(GW_SVC_UP__COUNT <= GW_CTR_TABLE_MAX_COLS, "columns fit a gw_ctr_table");

const struct gw_ctr_table_desc gw_dp_up_fails_table = {
	.name = "mtlsgw_upstream_connect_failures_total",
	.json = "upstream_connect_failures",
	.help = "upstream connections of a proxy listener that could not be opened: refused "
		"(RST), timeout (no answer, or no ARP answer for the next hop), unreachable (no "
		"route, address or port)",
	.row_label = "listener",
	.col_label = "reason",
	.cols = up_fail_cols,
	.n_cols = GW_SVC_UP__COUNT,
};

const struct gw_ctr_group gw_dp_port_group = {
	.name = "port",
	.help = "packets the port's device counted (DPDK eth stats)",
	.d = port_desc,
	.n = RTE_DIM(port_desc),
};

void
gw_dp_publish(struct gw_lcore *lc)
{
	struct gw_lcore_counters c;

	c.net = lc->st;
	if (lc->tcp != NULL)
		gw_tcp_stats_get(lc->tcp, &c.tcp);
	else /* our own last publish: only this lcore writes it */
		c.tcp = lc->pub.tcp;
	c.busy_cycles = lc->busy_cycles;
	memcpy(c.up, lc->up_fail, sizeof(c.up));
	GW_CTR_PUBLISH(&lc->pub_seq, &lc->pub, &c);
}

int
gw_dp_counters(const struct gw_dp *dp, struct gw_ctr_snap *s)
{
	struct gw_svc_up_fails up[GW_DP_MAX_LISTENERS] = {0};
	uint64_t *net, *tcp, *conns, *dropped;
	unsigned w, i, n_proxy = 0;

	GW_GUARD(gw_ctr_snap_init(s, dp->n_workers));
	s->tsc_hz = dp->tsc_hz;
	GW_GUARD(gw_ctr_snap_add(s, &gw_dp_net_group, &net));
	GW_GUARD(gw_ctr_snap_add(s, &gw_dp_tcp_group, &tcp));
	GW_GUARD(gw_ctr_snap_add(s, &gw_dp_conns_group, &conns));
	for (w = 0; w < dp->n_workers; w++) {
		const struct gw_lcore *lc = &dp->lcores[w];
		struct gw_lcore_counters c;

		GW_CTR_READ(&lc->pub_seq, &c, &lc->pub);
		memcpy(net + (size_t)w * gw_dp_net_group.n, &c.net, sizeof(c.net));
		memcpy(tcp + (size_t)w * gw_dp_tcp_group.n, &c.tcp,
			gw_dp_tcp_group.n * sizeof(uint64_t));
		memcpy(conns + (size_t)w * gw_dp_conns_group.n, c.tcp.conns, sizeof(c.tcp.conns));
		s->lcore[w] = lc->lcore_id;
		s->busy_cycles[w] = c.busy_cycles;
		for (i = 0; i < dp->params->n_listeners; i++)
			gw_ctr_add(up[i].v, c.up[i].v, GW_SVC_UP__COUNT);
	}
	if (dp->params->stats_read != NULL)
		GW_GUARD(dp->params->stats_read(dp->params->hook_arg, s));
	/* one word per worker, written by it alone: read whole, no seqlock */
	GW_GUARD(gw_ctr_snap_add(s, &gw_alog_group, &dropped));
	for (w = 0; w < dp->n_workers; w++)
		dropped[w] = gw_alog_ring_dropped(dp->params->alog[w]);
	/* tcp-proxy rows after the hook's tls-proxy rows: one table */
	for (i = 0; i < dp->params->n_listeners; i++)
		n_proxy += dp->params->listeners[i].service == GW_SVC_TCP_PROXY;
	if (n_proxy > 0) {
		struct gw_ctr_table_row *rows;

		GW_GUARD(gw_ctr_snap_table(s, &gw_dp_up_fails_table, n_proxy, &rows));
		for (i = 0; i < dp->params->n_listeners; i++) {
			const struct gw_dp_listener *l = &dp->params->listeners[i];

			if (l->service != GW_SVC_TCP_PROXY)
				continue;
			snprintf(rows->value, sizeof(rows->value), "%s", l->name);
			memcpy(rows->v, up[i].v, sizeof(up[i].v));
			rows++;
		}
	}
	s->mbufs_in_use = rte_mempool_in_use_count(dp->pool);
	s->mbufs_total = dp->pool->size;
	for (i = 0; i < dp->n_ports; i++) {
		const struct gw_port *pd = &dp->ports[i].dev;
		struct rte_eth_stats es;
		struct gw_ctr_port *p;
		unsigned k = 0;

		GW_GUARD(gw_ctr_snap_port(s, &gw_dp_port_group, &p));
		snprintf(p->name, sizeof(p->name), "%s", pd->name);
		snprintf(p->device, sizeof(p->device), "%s", pd->devname);
		p->rxq = pd->n_rxq;
		p->txq = pd->n_txq;
		p->mtu = pd->mtu;
		p->rss = pd->rss;
		p->rx_cksum_offload = pd->rx_ip_cksum && pd->rx_tcp_cksum;
		p->tx_cksum_offload = pd->tx_ip_cksum && pd->tx_tcp_cksum;
		/* what the device itself dropped (queue full, no mbuf, errors) */
		if (rte_eth_stats_get(pd->port_id, &es) != 0)
			memset(&es, 0, sizeof(es));
#define GW_PORT_STAT_COPY_(n) p->v[k++] = es.n;
		GW_PORT_STATS(GW_PORT_STAT_COPY_)
#undef GW_PORT_STAT_COPY_
	}
	gw_ctr_snap_seal(s);
	return 0;
}

void
gw_dp_stats_json(const struct gw_dp *dp, FILE *f)
{
	struct gw_ctr_snap s;

	if (gw_dp_counters(dp, &s) == 0) {
		gw_ctr_snap_json(&s, f);
	} else {
		/* still one JSON line: readers parse the last line */
		fprintf(f, "{\"error\":\"counters: %s\"}\n",
			gw_err_get()->code == -ENOMEM ? "out of memory" : "read failed");
		fflush(f);
	}
	gw_ctr_snap_fini(&s);
}

int64_t
gw_dp_stat(const struct gw_dp *dp, const char *name)
{
	struct gw_ctr_snap s;
	int64_t v = -1;

	if (gw_dp_counters(dp, &s) == 0) {
		v = gw_ctr_snap_get(&s, "net", name);
		if (v < 0)
			v = gw_ctr_snap_get(&s, "tcp", name);
	}
	gw_ctr_snap_fini(&s);
	return v;
}
