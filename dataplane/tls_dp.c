/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tls_dp.c - the dataplane hooks that run TLS listeners on every worker
 * (see tls_dp.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_lcore.h>

#include "tls_dp.h"

struct tls_dp_worker {
	struct gw_tls_worker *w; /* owned by the worker lcore */
	bool reader;             /* registered with the publisher */
	uint64_t next_copy;      /* tsc of the next counter copy */
	uint64_t ms;             /* tsc ticks per millisecond */
	/* written by the worker, read by control: its own cache lines */
	struct gw_tls_stats st __rte_cache_aligned;
	/* generation of the snapshot the worker last took (0: none yet);
	 * stored only when it changes, so control's reads of this line cost
	 * the worker nothing in the steady state */
	uint64_t gen __rte_cache_aligned;
} __rte_cache_aligned;

struct gw_tls_dp {
	struct gw_tls_dp_params p;
	struct tls_dp_worker *wk; /* n_workers */
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
	*out = t;
	return 0;
}

void
gw_tls_dp_destroy(struct gw_tls_dp *t)
{
	if (t == NULL)
		return;
	free(t->wk);
	free(t);
}

static void
copy_stats(struct tls_dp_worker *k)
{
	struct gw_tls_stats s;
	const uint64_t *src = (const uint64_t *)&s;
	uint64_t *dst = (uint64_t *)&k->st;

	gw_tls_stats_get(k->w, &s);
	/* word by word, so control's relaxed loads never see a torn counter */
	for (size_t i = 0; i < sizeof(s) / sizeof(uint64_t); i++)
		__atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
}

static void
hook_fini(void *arg, unsigned worker)
{
	struct gw_tls_dp *t = arg;
	struct tls_dp_worker *k = &t->wk[worker];

	if (k->w != NULL) {
		copy_stats(k);
		gw_tls_worker_destroy(k->w); /* aborts connections, drops snapshot refs */
		k->w = NULL;
	}
	if (k->reader) {
		gw_snap_reader_unregister(t->p.pub, worker);
		k->reader = false;
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
	GW_GUARD(gw_tls_worker_create(&wp, &k->w));
	k->ms = wp.tsc_hz / 1000;
	GW_GUARD(gw_snap_reader_register(t->p.pub, worker));
	k->reader = true;
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
	copy_stats(k);
	return 0;
}

static void
hook_poll(void *arg, unsigned worker)
{
	struct gw_tls_dp *t = arg;
	struct tls_dp_worker *k = &t->wk[worker];
	const struct gw_snapshot *s = gw_snap_current(t->p.pub);
	uint64_t now = rte_rdtsc(), gen = s != NULL ? gw_snapshot_generation(s) : 0;

	/* what a connection accepted now would take: /v1/status shows it per
	 * worker (a worker stuck on an old generation shows here) */
	if (gen != k->gen)
		__atomic_store_n(&k->gen, gen, __ATOMIC_RELAXED);
	gw_tls_worker_poll(k->w, now);
	if (now >= k->next_copy) {
		k->next_copy = now + k->ms;
		copy_stats(k);
	}
	/* this iteration is over: no pointer from gw_snap_current() survives it */
	gw_snap_reader_quiescent(t->p.pub, worker);
}

static void
hook_stats_json(void *arg, FILE *f)
{
	gw_tls_dp_stats_json(arg, f);
}

void
gw_tls_dp_hooks(struct gw_tls_dp *t, struct gw_dp_params *p)
{
	p->worker_init = hook_init;
	p->worker_poll = hook_poll;
	p->worker_fini = hook_fini;
	p->stats_json = hook_stats_json;
	p->hook_arg = t;
}

void
gw_tls_dp_stats(const struct gw_tls_dp *t, struct gw_tls_stats *sum)
{
	uint64_t *dst = (uint64_t *)sum;

	memset(sum, 0, sizeof(*sum));
	for (unsigned w = 0; w < t->p.n_workers; w++) {
		const uint64_t *src = (const uint64_t *)&t->wk[w].st;

		for (size_t i = 0; i < sizeof(*sum) / sizeof(uint64_t); i++)
			dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	}
}

uint64_t
gw_tls_dp_worker_generation(const struct gw_tls_dp *t, unsigned worker)
{
	if (t == NULL || worker >= t->p.n_workers)
		return 0;
	return __atomic_load_n(&t->wk[worker].gen, __ATOMIC_RELAXED);
}

int64_t
gw_tls_dp_stat(const struct gw_tls_dp *t, const char *name)
{
	struct gw_tls_stats s;
	const char *const *names;
	size_t n;

	gw_tls_dp_stats(t, &s);
	names = gw_tls_stat_names(&n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return (int64_t)((const uint64_t *)&s)[i];
	if (strncmp(name, "reject_", 7) == 0)
		for (unsigned r = 0; r < GW_TRUST_R__COUNT; r++)
			if (strcmp(gw_trust_reason_name((enum gw_trust_reason)r), name + 7) == 0)
				return (int64_t)s.reject[r];
	if (strcmp(name, "handshaking") == 0)
		return (int64_t)s.handshaking;
	if (strcmp(name, "established") == 0)
		return (int64_t)s.established;
	return -1;
}

void
gw_tls_dp_stats_json(const struct gw_tls_dp *t, FILE *f)
{
	struct gw_tls_stats s;
	const char *const *names;
	size_t n;

	gw_tls_dp_stats(t, &s);
	names = gw_tls_stat_names(&n);
	fprintf(f, "\"tls\":{");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\"%s\":%" PRIu64, i ? "," : "", names[i], ((const uint64_t *)&s)[i]);
	for (unsigned r = 1; r < GW_TRUST_R__COUNT; r++)
		fprintf(f, ",\"reject_%s\":%" PRIu64, gw_trust_reason_name((enum gw_trust_reason)r),
			s.reject[r]);
	fprintf(f, ",\"handshaking\":%" PRIu64 ",\"established\":%" PRIu64, s.handshaking,
		s.established);
	/* where the handshakes went, in gw_dp_params.workers order: a skewed
	 * split, or resumption across workers, shows here */
	fprintf(f, ",\"per_worker_hs\":[");
	for (unsigned w = 0; w < t->p.n_workers; w++) {
		const struct gw_tls_stats *k = &t->wk[w].st;

		fprintf(f,
			"%s{\"hs_ok\":%" PRIu64 ",\"hs_full\":%" PRIu64 ",\"hs_resumed\":%" PRIu64
			",\"hs_fail\":%" PRIu64 "}",
			w ? "," : "", __atomic_load_n(&k->hs_ok, __ATOMIC_RELAXED),
			__atomic_load_n(&k->hs_full, __ATOMIC_RELAXED),
			__atomic_load_n(&k->hs_resumed, __ATOMIC_RELAXED),
			__atomic_load_n(&k->hs_fail, __ATOMIC_RELAXED));
	}
	fprintf(f, "]}");
}
