/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_dp.c - the dataplane hooks that run TLS listeners on every worker
 * (see tls_dp.h).
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_lcore.h>

#include <openssl/async.h>

#include "tls_dp.h"

struct tls_dp_worker {
	struct gw_tls_worker *w; /* owned by the worker lcore */
	uint64_t next_copy;      /* tsc of the next counter copy */
	uint64_t ms;             /* tsc ticks per millisecond */
	uint64_t hist_ok;        /* hs_ok when the histograms were last published */
	/* published by the worker (gw_ctr_publish), read by control
	 * (gw_ctr_read): their own cache lines */
	uint64_t seq __rte_cache_aligned;
	struct gw_tls_stats st;
	/* the handshake latency histograms, by tls_dp listener (not snapshot
	 * index): only n_listeners of them are published */
	uint64_t hseq __rte_cache_aligned;
	struct gw_tls_hs_hist hist[GW_DP_MAX_LISTENERS];
	/* upstream connect failures, by tls_dp listener, likewise */
	uint64_t useq __rte_cache_aligned;
	struct gw_svc_up_fails up[GW_DP_MAX_LISTENERS];
} __rte_cache_aligned;

#define UP_WORDS GW_CTR_WORDS(struct gw_svc_up_fails)

#define HIST_WORDS GW_CTR_WORDS(struct gw_tls_hs_hist)

static const double hs_bounds[GW_TLS_HS_N_BOUNDS] = {GW_TLS_HS_BOUNDS};

_Static_assert(GW_TLS_HS_N_BOUNDS <= GW_CTR_HIST_MAX_BOUNDS, "bounds fit a gw_ctr_hist");
_Static_assert(sizeof(struct gw_tls_hs_hist) == sizeof(uint64_t) * (GW_TLS_HS_N_BOUNDS + 2),
	"struct gw_tls_hs_hist is whole words");
_Static_assert(GW_DP_MAX_LISTENERS <= GW_TLS_HIST_SLOTS, "every listener index has a slot");

const struct gw_ctr_hist_desc gw_tls_dp_hs_hist = {
	.name = "mtlsgw_tls_handshake_seconds",
	.help = "completed TLS handshakes by duration, from the first ClientHello bytes to "
		"the handshake's completion",
	.label = "listener",
	.bounds = hs_bounds,
	.n_bounds = GW_TLS_HS_N_BOUNDS,
};

struct gw_tls_dp {
	struct gw_tls_dp_params p;
	struct tls_dp_worker *wk; /* n_workers */
};

/* The "tls" counter group, from GW_TLS_STATS and GW_TRUST_REASONS, in
 * struct gw_tls_stats order (reject[GW_TRUST_R_OK] is never shown). */
#define GW_TLS_CTR_(n) {#n, GW_CTR_COUNTER, NULL},
#define GW_TLS_REJECT_(n, name) \
	{GW_TRUST_R_##n == GW_TRUST_R_OK ? NULL : "reject_" name, GW_CTR_COUNTER, NULL},
/* clang-format off */
static const struct gw_ctr_desc tls_desc[] = {
	GW_TLS_STATS(GW_TLS_CTR_)
	GW_TRUST_REASONS(GW_TLS_REJECT_)
	{"handshaking", GW_CTR_GAUGE, "TLS handshakes in progress now"},
	{"established", GW_CTR_GAUGE, "established TLS connections now"},
};
/* clang-format on */
#undef GW_TLS_CTR_
#undef GW_TLS_REJECT_

_Static_assert(RTE_DIM(tls_desc) * sizeof(uint64_t) == sizeof(struct gw_tls_stats),
	"tls_desc covers struct gw_tls_stats");
_Static_assert(
	offsetof(struct gw_tls_stats, handshaking) == sizeof(uint64_t) * (RTE_DIM(tls_desc) - 2),
	"gauges end struct gw_tls_stats");

/* where the handshakes went, in gw_dp_params.workers order: a skewed
 * split, or resumption across workers, shows here */
static const char *const tls_worker_keys[] = {"hs_ok", "hs_full", "hs_resumed", "hs_fail", NULL};

const struct gw_ctr_group gw_tls_dp_group = {
	.name = "tls",
	.help = "TLS counter, summed over the workers",
	.d = tls_desc,
	.n = RTE_DIM(tls_desc),
	.per_worker = "per_worker_hs",
	.worker_keys = tls_worker_keys,
	.worker_help = "TLS counter of one worker",
};

int
gw_tls_dp_create(const struct gw_tls_dp_params *p, struct gw_tls_dp **out)
{
	struct gw_tls_dp *t;

	GW_ENSURE(p && out && p->pub && p->n_workers > 0, -EINVAL);
	t = calloc(1, sizeof(*t));
	GW_ENSURE(t, -ENOMEM);
	t->p = *p;
	t->wk = aligned_alloc(RTE_CACHE_LINE_SIZE,
		RTE_ALIGN_CEIL(p->n_workers * sizeof(*t->wk), RTE_CACHE_LINE_SIZE));
	if (t->wk == NULL) {
		free(t);
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	memset(t->wk, 0, p->n_workers * sizeof(*t->wk));
	/*
	 * The HSM threads start here, on the control thread: on p->hsm.cpus
	 * (the gateway gives them the CPUs no worker runs on), else with its
	 * CPU affinity, never a worker lcore's (a busy-polling worker would
	 * share its core with them).
	 */
	if (p->worker.hsm_async) {
		int rc = gw_hsm_async_start(&p->hsm);

		if (rc < 0) {
			free(t->wk);
			free(t);
			return rc;
		}
	}
	*out = t;
	return 0;
}

void
gw_tls_dp_destroy(struct gw_tls_dp *t)
{
	if (t == NULL)
		return;
	/* after gw_dp_stop: every worker ended its parked jobs (hook_fini) */
	if (t->p.worker.hsm_async)
		gw_hsm_async_stop();
	free(t->wk);
	free(t);
}

static void
copy_stats(const struct gw_tls_dp *t, struct tls_dp_worker *k)
{
	struct gw_tls_stats s;

	gw_tls_stats_get(k->w, &s);
	GW_CTR_PUBLISH(&k->seq, &k->st, &s);
	/* a histogram changes only with a completed handshake */
	if (s.hs_ok != k->hist_ok || k->next_copy == 0) {
		struct gw_tls_hs_hist h[GW_DP_MAX_LISTENERS];

		for (unsigned i = 0; i < t->p.n_listeners; i++)
			gw_tls_hs_hist_get(k->w, t->p.listeners[i].index, &h[i]);
		gw_ctr_publish(&k->hseq, (uint64_t *)k->hist, (const uint64_t *)h,
			(size_t)t->p.n_listeners * HIST_WORDS);
		k->hist_ok = s.hs_ok;
	}
	{
		struct gw_svc_up_fails u[GW_DP_MAX_LISTENERS];

		for (unsigned i = 0; i < t->p.n_listeners; i++)
			gw_tls_up_fails_get(k->w, t->p.listeners[i].index, &u[i]);
		gw_ctr_publish(&k->useq, (uint64_t *)k->up, (const uint64_t *)u,
			(size_t)t->p.n_listeners * UP_WORDS);
	}
}

static void
hook_fini(void *arg, unsigned worker)
{
	struct gw_tls_dp *t = arg;
	struct tls_dp_worker *k = &t->wk[worker];

	if (k->w != NULL) {
		copy_stats(t, k);
		gw_tls_worker_destroy(k->w); /* aborts connections, drops snapshot refs */
		k->w = NULL;
		if (t->p.worker.hsm_async)
			ASYNC_cleanup_thread(); /* the jobs are all finished */
	}
}

static int
hook_init(void *arg, unsigned worker, struct gw_tcp_stack *tcp)
{
	struct gw_tls_dp *t = arg;
	struct tls_dp_worker *k = &t->wk[worker];
	struct gw_tls_worker_params wp = t->p.worker;

	GW_ENSURE(worker < t->p.n_workers, -EINVAL);
	wp.lcore = rte_lcore_id();
	wp.tsc_hz = rte_get_tsc_hz();
	wp.alog = t->p.alog[worker];
	/*
	 * One ASYNC job per parked handshake at most: the pool is capped at
	 * the handshake bound and its jobs (with their stacks) are made on
	 * first use.
	 */
	if (wp.hsm_async && ASYNC_init_thread(wp.max_handshakes ? wp.max_handshakes : 512, 0) != 1)
		return gw_err_setf(-ENOMEM, GW_HERE, "OpenSSL ASYNC jobs for worker %u", worker);
	GW_GUARD(gw_tls_worker_create(&wp, &k->w));
	k->ms = wp.tsc_hz / 1000;
	for (unsigned i = 0; i < t->p.n_listeners; i++) {
		const struct gw_tls_dp_listener *l = &t->p.listeners[i];
		struct gw_svc_tls_params sp = {
			.ip = l->ip,
			.port = l->port,
			.backlog = l->backlog,
			.kind = l->kind,
			.index = l->index,
			.pub = t->p.pub,
			.tw = k->w,
		};
		int rc = gw_svc_tls_listen(tcp, &sp);

		if (rc < 0)
			return gw_err_setf(
				rc, GW_HERE, "TLS listener '%s': %s", l->name, gw_err_msg());
	}
	copy_stats(t, k);
	return 0;
}

static unsigned
hook_poll(void *arg, unsigned worker)
{
	struct gw_tls_dp *t = arg;
	struct tls_dp_worker *k = &t->wk[worker];
	uint64_t now = rte_rdtsc();
	unsigned f = gw_tls_worker_poll(k->w, now);

	if (now >= k->next_copy) {
		k->next_copy = now + k->ms;
		copy_stats(t, k);
	}
	return (f & GW_TLS_POLL_PARKED ? GW_DP_HOOK_WAITS : 0) |
	       (f & GW_TLS_POLL_HANDSHAKING ? GW_DP_HOOK_SOON : 0);
}

static int
hook_wait_fd(void *arg, unsigned worker)
{
	struct gw_tls_dp *t = arg;

	return gw_tls_worker_wait_fd(t->wk[worker].w);
}

static int
hook_stats_read(void *arg, struct gw_ctr_snap *s)
{
	const struct gw_tls_dp *t = arg;
	unsigned n_proxy = 0;
	uint64_t *w;

	GW_GUARD(gw_ctr_snap_add(s, &gw_tls_dp_group, &w));
	for (unsigned i = 0; i < t->p.n_workers && i < s->n_workers; i++)
		gw_ctr_read(&t->wk[i].seq, w + (size_t)i * gw_tls_dp_group.n,
			(const uint64_t *)&t->wk[i].st, gw_tls_dp_group.n);
	for (unsigned l = 0; l < t->p.n_listeners; l++)
		n_proxy += t->p.listeners[l].kind == GW_SVC_TLS_PROXY;
	if (n_proxy > 0) { /* one row per tls-proxy listener */
		struct gw_ctr_table_row *rows;

		GW_GUARD(gw_ctr_snap_table(s, &gw_dp_up_fails_table, n_proxy, &rows));
		for (unsigned i = 0; i < t->p.n_workers; i++) {
			struct gw_svc_up_fails u[GW_DP_MAX_LISTENERS];
			unsigned r = 0;

			gw_ctr_read(&t->wk[i].useq, (uint64_t *)u, (const uint64_t *)t->wk[i].up,
				(size_t)t->p.n_listeners * UP_WORDS);
			for (unsigned l = 0; l < t->p.n_listeners; l++) {
				if (t->p.listeners[l].kind != GW_SVC_TLS_PROXY)
					continue;
				snprintf(rows[r].value, sizeof(rows[r].value), "%s",
					t->p.listeners[l].name);
				for (unsigned c = 0; c < GW_SVC_UP__COUNT; c++)
					rows[r].v[c] += u[l].v[c];
				r++;
			}
		}
	}
	if (t->p.n_listeners > 0) {
		struct gw_ctr_hist_series *hs;

		GW_GUARD(gw_ctr_snap_hist(s, &gw_tls_dp_hs_hist, t->p.n_listeners, &hs));
		for (unsigned l = 0; l < t->p.n_listeners; l++)
			snprintf(hs[l].value, sizeof(hs[l].value), "%s", t->p.listeners[l].name);
		/* summed over the workers here: control adds nothing up */
		for (unsigned i = 0; i < t->p.n_workers; i++) {
			struct gw_tls_hs_hist h[GW_DP_MAX_LISTENERS];

			gw_ctr_read(&t->wk[i].hseq, (uint64_t *)h, (const uint64_t *)t->wk[i].hist,
				(size_t)t->p.n_listeners * HIST_WORDS);
			for (unsigned l = 0; l < t->p.n_listeners; l++) {
				for (unsigned b = 0; b <= GW_TLS_HS_N_BOUNDS; b++)
					hs[l].b[b] += h[l].b[b];
				hs[l].sum_ticks += h[l].sum_tsc;
			}
		}
	}
	return 0;
}

void
gw_tls_dp_hooks(struct gw_tls_dp *t, struct gw_dp_params *p)
{
	p->worker_init = hook_init;
	p->worker_poll = hook_poll;
	p->worker_wait_fd = hook_wait_fd;
	p->worker_fini = hook_fini;
	p->stats_read = hook_stats_read;
	p->hook_arg = t;
}

void
gw_tls_dp_stats(const struct gw_tls_dp *t, struct gw_tls_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned w = 0; w < t->p.n_workers; w++) {
		struct gw_tls_stats one;

		GW_CTR_READ(&t->wk[w].seq, &one, &t->wk[w].st);
		gw_ctr_add((uint64_t *)sum, (const uint64_t *)&one, GW_CTR_WORDS(one));
	}
}

int64_t
gw_tls_dp_stat(const struct gw_tls_dp *t, const char *name)
{
	struct gw_tls_stats s;
	int k = gw_ctr_find(&gw_tls_dp_group, name);

	if (k < 0)
		return -1;
	gw_tls_dp_stats(t, &s);
	return (int64_t)((const uint64_t *)&s)[k];
}
