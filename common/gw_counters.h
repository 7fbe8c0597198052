/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_counters.h - counters between the workers and control: how a worker
 * publishes its counters, how control reads them, and one description of
 * every counter family from which the sums, the stats JSON line and the
 * Prometheus text are rendered (docs/architecture.md "Metrics").
 *
 * Each family is one X-macro table, declared once beside the code that
 * increments it: GW_DP_STATS (net, dataplane_types.h), GW_TCP_STATS and
 * GW_TCP_STATES (tcp.h), GW_TLS_STATS (tls.h) with GW_TRUST_REASONS
 * (trust.h), GW_PORT_STATS (port.h). The owner of a table generates from it
 * the struct its code increments and a struct gw_ctr_group (names, kinds,
 * help); everything here works on groups, never on names typed twice.
 *
 * Write one way, read one way:
 *  - a worker increments a private struct (plain ++, no atomics on the
 *    fast path) and, every tick, publishes a copy with gw_ctr_publish();
 *  - control reads the published copy with gw_ctr_read(), which returns a
 *    copy consistent across all its words (a seqlock: the writer never
 *    waits, the reader retries while a publish is in flight).
 * The published block is a struct of uint64_t words only (its owner
 * _Static_asserts it); one writer per block. The typed macros refuse, at
 * compile time, a published and a private struct of different types.
 *
 * Threading: gw_ctr_publish on the block's one writer; gw_ctr_read from any
 * thread; a struct gw_ctr_snap belongs to the thread that built it (control).
 *
 * No DPDK, no OpenSSL: control renders these without the dataplane.
 */
#ifndef GW_COUNTERS_H
#define GW_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gw_err.h"

/* ---- publish / read (seqlock over uint64_t words) ---- */

/* Words of a counters struct (owners _Static_assert it is whole words). */
#define GW_CTR_WORDS(s) (sizeof(s) / sizeof(uint64_t))

/*
 * Publish n words of priv into pub under seq (the worker that owns the
 * block, the only writer of pub and seq). Never waits. Each word is stored
 * whole (relaxed atomic); seq is odd while the copy is in flight.
 */
void gw_ctr_publish(uint64_t *seq, uint64_t *pub, const uint64_t *priv, size_t n);

/*
 * Copy n words of pub into out as of one gw_ctr_publish (never a mix of
 * two). Any thread; spins (yielding the CPU after a few tries) only while
 * a publish is in flight, which takes a few hundred nanoseconds.
 */
void gw_ctr_read(const uint64_t *seq, uint64_t *out, const uint64_t *pub, size_t n);

/* Typed forms: pub and priv of the same counters struct type. */
#define GW_CTR_PUBLISH(seq, pub, priv)                                     \
	gw_ctr_publish((seq), (uint64_t *)(pub), (const uint64_t *)(priv), \
		GW_CTR_WORDS(*(priv)) + 0 * sizeof((pub) == (priv)))
#define GW_CTR_READ(seq, out, pub)                                     \
	gw_ctr_read((seq), (uint64_t *)(out), (const uint64_t *)(pub), \
		GW_CTR_WORDS(*(pub)) + 0 * sizeof((out) == (pub)))

/* sum[i] += v[i] for n words. */
void gw_ctr_add(uint64_t *sum, const uint64_t *v, size_t n);

/* ---- description of a family ---- */

enum gw_ctr_kind {
	GW_CTR_COUNTER, /* only grows: Prometheus mtlsgw_<group>_<name>_total */
	GW_CTR_GAUGE,   /* a level now: mtlsgw_<group>_<name> */
};

struct gw_ctr_desc {
	const char *name; /* JSON key and metric name part; NULL: a word not shown */
	uint8_t kind;     /* enum gw_ctr_kind */
	const char *help; /* Prometheus HELP; NULL: the group's */
};

struct gw_ctr_group {
	const char *name; /* JSON member ("net", "tcp", "conns", "tls") and metric infix */
	const char *help; /* HELP of its members without their own */
	const struct gw_ctr_desc *d;
	unsigned n; /* words per worker, one per entry of d */
	/*
	 * Set: the group is one gauge family `family` with one sample per
	 * member, labelled label="<member name>" (TCP connections by state).
	 */
	const char *label, *family;
	/*
	 * Set: inside the group's JSON object, member `per_worker` lists for
	 * each worker the members named in worker_keys (NULL-terminated);
	 * Prometheus: mtlsgw_<group>_worker_<name>_total{worker="<i>"}.
	 */
	const char *per_worker;
	const char *const *worker_keys;
	const char *worker_help;
};

/* Index of member name in g, or -1. */
int gw_ctr_find(const struct gw_ctr_group *g, const char *name);

/* ---- histograms (Prometheus histogram families) ---- */

#define GW_CTR_HIST_MAX_BOUNDS 16
#define GW_CTR_MAX_HISTS 2

/*
 * A histogram family: one series per value of label (e.g. listener="api").
 * Workers count per bucket (not cumulative) and sum durations in TSC
 * ticks; the renderer makes the buckets cumulative, adds +Inf, and turns
 * the sum into seconds with the snapshot's tsc_hz.
 */
struct gw_ctr_hist_desc {
	const char *name;     /* family: name_bucket, name_sum, name_count */
	const char *help;     /* HELP */
	const char *label;    /* the series label's key */
	const double *bounds; /* finite upper bounds (seconds), ascending */
	unsigned n_bounds;    /* <= GW_CTR_HIST_MAX_BOUNDS */
};

struct gw_ctr_hist_series {
	char value[64];                         /* of the label */
	uint64_t b[GW_CTR_HIST_MAX_BOUNDS + 1]; /* per bucket; [n_bounds]: above the last */
	uint64_t sum_ticks;                     /* sum of the observations, TSC ticks */
};

struct gw_ctr_hist {
	const struct gw_ctr_hist_desc *d; /* borrowed: static in its owner */
	struct gw_ctr_hist_series *s;     /* [n], summed over the workers by the owner */
	unsigned n;
};

/* ---- tables (counter families with two labels) ---- */

#define GW_CTR_TABLE_MAX_COLS 8
#define GW_CTR_MAX_TABLES 2

/*
 * A counter family labelled by row and column, e.g.
 * mtlsgw_upstream_connect_failures_total{listener="api",reason="refused"}:
 * one row per value of row_label (summed over the workers by the owner),
 * one column per name in cols. JSON: "<json>":{"<row>":{"<col>":v,...},...}.
 */
struct gw_ctr_table_desc {
	const char *name;      /* the Prometheus family (a counter: ends in _total) */
	const char *json;      /* its member in the stats JSON line */
	const char *help;      /* HELP */
	const char *row_label; /* "listener" */
	const char *col_label; /* "reason" */
	const char *const *cols;
	unsigned n_cols; /* <= GW_CTR_TABLE_MAX_COLS */
};

struct gw_ctr_table_row {
	char value[64]; /* of row_label */
	uint64_t v[GW_CTR_TABLE_MAX_COLS];
};

struct gw_ctr_table {
	const struct gw_ctr_table_desc *d; /* borrowed: static in its owner */
	struct gw_ctr_table_row *r;        /* [n] */
	unsigned n;
};

/* ---- one read of every counter: what control renders ---- */

#define GW_CTR_MAX_GROUPS 8
#define GW_CTR_MAX_PORTS 8

struct gw_ctr_vals {
	const struct gw_ctr_group *g; /* borrowed: static in its owner */
	uint64_t *w;                  /* [n_workers][g->n], as published */
	uint64_t *sum;                /* [g->n], filled by gw_ctr_snap_seal */
};

struct gw_ctr_port {
	char name[64], device[64];
	unsigned rxq, txq, mtu;
	bool rss, rx_cksum_offload, tx_cksum_offload;
	uint64_t *v; /* [port_group->n]: the device's own counters */
};

struct gw_ctr_snap {
	unsigned n_workers;
	uint64_t tsc_hz;
	struct gw_ctr_vals groups[GW_CTR_MAX_GROUPS]; /* in JSON order */
	unsigned n_groups;
	unsigned *lcore;       /* [n_workers] */
	uint64_t *busy_cycles; /* [n_workers] TSC cycles of loop iterations that did work */
	uint64_t mbufs_in_use, mbufs_total;
	const struct gw_ctr_group *port_group; /* NULL: no ports */
	struct gw_ctr_port ports[GW_CTR_MAX_PORTS];
	unsigned n_ports;
	struct gw_ctr_hist hists[GW_CTR_MAX_HISTS];
	unsigned n_hists;
	struct gw_ctr_table tables[GW_CTR_MAX_TABLES];
	unsigned n_tables;
};

/* Zero s for n_workers workers (allocates). 0 or -ENOMEM. */
GW_MUST_CHECK int gw_ctr_snap_init(struct gw_ctr_snap *s, unsigned n_workers);

/* Free what s holds; s may be zeroed, or half built. */
void gw_ctr_snap_fini(struct gw_ctr_snap *s);

/*
 * Append group g; *w points at its zeroed [n_workers][g->n] words for the
 * caller to fill. 0, -ENOSPC (GW_CTR_MAX_GROUPS), -ENOMEM, -EINVAL.
 */
GW_MUST_CHECK int gw_ctr_snap_add(
	struct gw_ctr_snap *s, const struct gw_ctr_group *g, uint64_t **w);

/*
 * Append a port with the device counters of port_group g (set once; every
 * port uses the same group). Fills *out; 0, -ENOSPC, -ENOMEM, -EINVAL.
 */
GW_MUST_CHECK int gw_ctr_snap_port(
	struct gw_ctr_snap *s, const struct gw_ctr_group *g, struct gw_ctr_port **out);

/*
 * Append histogram family d with n zeroed series (*out, for the caller to
 * name and fill). 0, -ENOSPC (GW_CTR_MAX_HISTS), -ENOMEM, -EINVAL (no d,
 * or more than GW_CTR_HIST_MAX_BOUNDS bounds).
 */
GW_MUST_CHECK int gw_ctr_snap_hist(struct gw_ctr_snap *s, const struct gw_ctr_hist_desc *d,
	unsigned n, struct gw_ctr_hist_series **out);

/*
 * Append table d with n zeroed rows (*out, for the caller to name and
 * fill); when s has d already, n more rows of it (two owners, one family). 0, -ENOSPC (GW_CTR_MAX_TABLES), -ENOMEM, -EINVAL (no d, or more
 * than GW_CTR_TABLE_MAX_COLS columns).
 */
GW_MUST_CHECK int gw_ctr_snap_table(struct gw_ctr_snap *s, const struct gw_ctr_table_desc *d,
	unsigned n, struct gw_ctr_table_row **out);

/* Sum every group over the workers. After the last gw_ctr_snap_add. */
void gw_ctr_snap_seal(struct gw_ctr_snap *s);

/* The vals of group name, or NULL. */
const struct gw_ctr_vals *gw_ctr_snap_group(const struct gw_ctr_snap *s, const char *name);

/*
 * Sum of member name of group (NULL: the first group that has it), or -1
 * if no group has it. After gw_ctr_snap_seal.
 */
int64_t gw_ctr_snap_get(const struct gw_ctr_snap *s, const char *group, const char *name);

/*
 * The stats JSON line (SIGUSR1, exit; tests read it): one object, then
 * "\n", then fflush:
 *   {"workers":N,"tsc_hz":H,"<group>":{"<name>":v,...[,"<per_worker>":[{..}]]},...,
 *    "mbufs_in_use":M,"mbufs_total":T,"ports":[{name,device,rxq,txq,rss,
 *    rx_cksum_offload,tx_cksum_offload,mtu,<port counters>}],
 *    "per_worker":[{"lcore":L,"rx_pkts":..,"ring_rx":..,"dispatch_tx":..,
 *    "tcp_rx":..,"conn_accepted":..,"idle_sleeps":..,"busy_cycles":..}]}
 * Groups with a label are objects of their members too ("conns"); each
 * table follows the groups as "<json>":{"<row>":{"<col>":v,...}}.
 */
void gw_ctr_snap_json(const struct gw_ctr_snap *s, FILE *f);

#endif /* GW_COUNTERS_H */
