/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dp_counters.h - the worker side of the dataplane's counters (the read
 * side, gw_dp_counters, is in dataplane.h; the convention in gw_counters.h).
 *
 * A worker increments its private struct gw_lcore.st (GW_STAT) and
 * busy_cycles and, every tick, publishes them with its TCP stack's counters
 * into gw_lcore.pub: one gw_ctr_publish, never a store control could see
 * half of.
 */
#ifndef GW_DP_COUNTERS_H
#define GW_DP_COUNTERS_H

#include "dataplane_types.h"
#include "gw_counters.h"

/*
 * Publish lc's counters (net, the TCP stack's, busy cycles) for control.
 * On lc's own lcore only. Without a TCP stack (torn down) the TCP part
 * keeps its last published value.
 */
void gw_dp_publish(struct gw_lcore *lc);

/* The groups gw_dp_counters reports, generated from their X-macro tables. */
extern const struct gw_ctr_group gw_dp_net_group;   /* "net": GW_DP_STATS */
extern const struct gw_ctr_group gw_dp_tcp_group;   /* "tcp": GW_TCP_STATS */
extern const struct gw_ctr_group gw_dp_conns_group; /* "conns": GW_TCP_STATES */
extern const struct gw_ctr_group gw_dp_port_group;  /* ports: GW_PORT_STATS */

#endif /* GW_DP_COUNTERS_H */
