/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_counters.c - the counters' seqlock, the read-side snapshot and the
 * stats JSON line (gw_counters.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "gw_counters.h"

void
gw_ctr_publish(uint64_t *seq, uint64_t *pub, const uint64_t *priv, size_t n)
{
	uint64_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);

	/* odd: in flight. The release fence orders the odd seq before the
	 * words (Boehm, "Can seqlocks get along with programming language
	 * memory models?", 2012: writer side) */
	__atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (size_t i = 0; i < n; i++)
		__atomic_store_n(&pub[i], priv[i], __ATOMIC_RELAXED);
	/* even again; release: a reader that sees it sees every word above */
	__atomic_store_n(seq, s + 2, __ATOMIC_RELEASE);
}

void
gw_ctr_read(const uint64_t *seq, uint64_t *out, const uint64_t *pub, size_t n)
{
	for (unsigned tries = 0;; tries++) {
		uint64_t s0 = __atomic_load_n(seq, __ATOMIC_ACQUIRE), s1;

		if ((s0 & 1) == 0) {
			for (size_t i = 0; i < n; i++)
				out[i] = __atomic_load_n(&pub[i], __ATOMIC_RELAXED);
			/* the words' loads before the second seq load */
			__atomic_thread_fence(__ATOMIC_ACQUIRE);
			s1 = __atomic_load_n(seq, __ATOMIC_RELAXED);
			if (s0 == s1)
				return;
		}
		/* the writer may have been preempted mid-copy: let it run */
		if (tries >= 16)
			sched_yield();
	}
}

void
gw_ctr_add(uint64_t *sum, const uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sum[i] += v[i];
}

int
gw_ctr_find(const struct gw_ctr_group *g, const char *name)
{
	for (unsigned i = 0; i < g->n; i++)
		if (g->d[i].name != NULL && strcmp(g->d[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
gw_ctr_snap_init(struct gw_ctr_snap *s, unsigned n_workers)
{
	memset(s, 0, sizeof(*s));
	s->n_workers = n_workers;
	s->lcore = calloc(n_workers ? n_workers : 1, sizeof(*s->lcore));
	s->busy_cycles = calloc(n_workers ? n_workers : 1, sizeof(*s->busy_cycles));
	if (s->lcore == NULL || s->busy_cycles == NULL) {
		gw_ctr_snap_fini(s);
		return gw_err_setf(-ENOMEM, GW_HERE, "counters: out of memory");
	}
	return 0;
}

void
gw_ctr_snap_fini(struct gw_ctr_snap *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->n_groups; i++) {
		free(s->groups[i].w);
		free(s->groups[i].sum);
	}
	for (unsigned i = 0; i < s->n_ports; i++)
		free(s->ports[i].v);
	for (unsigned i = 0; i < s->n_hists; i++)
		free(s->hists[i].s);
	for (unsigned i = 0; i < s->n_tables; i++)
		free(s->tables[i].r);
	free(s->lcore);
	free(s->busy_cycles);
	memset(s, 0, sizeof(*s));
}

int
gw_ctr_snap_add(struct gw_ctr_snap *s, const struct gw_ctr_group *g, uint64_t **w)
{
	struct gw_ctr_vals *v;

	GW_ENSURE(s != NULL && g != NULL && w != NULL && g->n > 0, -EINVAL);
	if (s->n_groups >= GW_CTR_MAX_GROUPS)
		return gw_err_setf(
			-ENOSPC, GW_HERE, "counters: more than %d groups", GW_CTR_MAX_GROUPS);
	v = &s->groups[s->n_groups];
	v->g = g;
	v->w = calloc((size_t)(s->n_workers ? s->n_workers : 1) * g->n, sizeof(uint64_t));
	v->sum = calloc(g->n, sizeof(uint64_t));
	if (v->w == NULL || v->sum == NULL) {
		free(v->w);
		free(v->sum);
		memset(v, 0, sizeof(*v));
		return gw_err_setf(-ENOMEM, GW_HERE, "counters: out of memory");
	}
	s->n_groups++;
	*w = v->w;
	return 0;
}

int
gw_ctr_snap_port(struct gw_ctr_snap *s, const struct gw_ctr_group *g, struct gw_ctr_port **out)
{
	struct gw_ctr_port *p;

	GW_ENSURE(s != NULL && g != NULL && out != NULL, -EINVAL);
	GW_ENSURE(s->port_group == NULL || s->port_group == g, -EINVAL);
	if (s->n_ports >= GW_CTR_MAX_PORTS)
		return gw_err_setf(
			-ENOSPC, GW_HERE, "counters: more than %d ports", GW_CTR_MAX_PORTS);
	p = &s->ports[s->n_ports];
	memset(p, 0, sizeof(*p));
	p->v = calloc(g->n, sizeof(uint64_t));
	if (p->v == NULL)
		return gw_err_setf(-ENOMEM, GW_HERE, "counters: out of memory");
	s->port_group = g;
	s->n_ports++;
	*out = p;
	return 0;
}

int
gw_ctr_snap_hist(struct gw_ctr_snap *s, const struct gw_ctr_hist_desc *d, unsigned n,
	struct gw_ctr_hist_series **out)
{
	struct gw_ctr_hist *h;

	GW_ENSURE(s != NULL && d != NULL && out != NULL, -EINVAL);
	GW_ENSURE(d->n_bounds <= GW_CTR_HIST_MAX_BOUNDS, -EINVAL);
	if (s->n_hists >= GW_CTR_MAX_HISTS)
		return gw_err_setf(
			-ENOSPC, GW_HERE, "counters: more than %d histograms", GW_CTR_MAX_HISTS);
	h = &s->hists[s->n_hists];
	h->s = calloc(n ? n : 1, sizeof(*h->s));
	if (h->s == NULL)
		return gw_err_setf(-ENOMEM, GW_HERE, "counters: out of memory");
	h->d = d;
	h->n = n;
	s->n_hists++;
	*out = h->s;
	return 0;
}

int
gw_ctr_snap_table(struct gw_ctr_snap *s, const struct gw_ctr_table_desc *d, unsigned n,
	struct gw_ctr_table_row **out)
{
	struct gw_ctr_table *t;

	GW_ENSURE(s != NULL && d != NULL && out != NULL, -EINVAL);
	GW_ENSURE(d->n_cols <= GW_CTR_TABLE_MAX_COLS, -EINVAL);
	for (unsigned i = 0; i < s->n_tables; i++) {
		struct gw_ctr_table_row *r;

		t = &s->tables[i];
		if (t->d != d)
			continue;
		/* d again: more rows of the same family (one JSON member, one HELP) */
		r = realloc(t->r, (t->n + n ? t->n + n : 1) * sizeof(*r));
		if (r == NULL)
			return gw_err_setf(-ENOMEM, GW_HERE, "counters: out of memory");
		memset(r + t->n, 0, n * sizeof(*r));
		t->r = r;
		*out = r + t->n;
		t->n += n;
		return 0;
	}
	if (s->n_tables >= GW_CTR_MAX_TABLES)
		return gw_err_setf(
			-ENOSPC, GW_HERE, "counters: more than %d tables", GW_CTR_MAX_TABLES);
	t = &s->tables[s->n_tables];
	t->r = calloc(n ? n : 1, sizeof(*t->r));
	if (t->r == NULL)
		return gw_err_setf(-ENOMEM, GW_HERE, "counters: out of memory");
	t->d = d;
	t->n = n;
	s->n_tables++;
	*out = t->r;
	return 0;
}

void
gw_ctr_snap_seal(struct gw_ctr_snap *s)
{
	for (unsigned i = 0; i < s->n_groups; i++) {
		struct gw_ctr_vals *v = &s->groups[i];

		memset(v->sum, 0, v->g->n * sizeof(uint64_t));
		for (unsigned w = 0; w < s->n_workers; w++)
			gw_ctr_add(v->sum, v->w + (size_t)w * v->g->n, v->g->n);
	}
}

const struct gw_ctr_vals *
gw_ctr_snap_group(const struct gw_ctr_snap *s, const char *name)
{
	for (unsigned i = 0; i < s->n_groups; i++)
		if (strcmp(s->groups[i].g->name, name) == 0)
			return &s->groups[i];
	return NULL;
}

int64_t
gw_ctr_snap_get(const struct gw_ctr_snap *s, const char *group, const char *name)
{
	for (unsigned i = 0; i < s->n_groups; i++) {
		const struct gw_ctr_vals *v = &s->groups[i];
		int k;

		if (group != NULL && strcmp(v->g->name, group) != 0)
			continue;
		if ((k = gw_ctr_find(v->g, name)) >= 0)
			return (int64_t)v->sum[k];
	}
	return -1;
}

/* A JSON string body: names are ours or the operator's port names. */
static void
json_str(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			fprintf(f, "\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*v);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

/* "<k>":v,... of the members of g named in keys (all when NULL). */
static void
json_members(FILE *f, const struct gw_ctr_group *g, const uint64_t *v, const char *const *keys)
{
	bool first = true;

	if (keys != NULL) {
		for (; *keys; keys++) {
			int k = gw_ctr_find(g, *keys);

			if (k < 0)
				continue;
			fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", *keys, v[k]);
			first = false;
		}
		return;
	}
	for (unsigned i = 0; i < g->n; i++) {
		if (g->d[i].name == NULL)
			continue;
		fprintf(f, "%s\"%s\":%" PRIu64, first ? "" : ",", g->d[i].name, v[i]);
		first = false;
	}
}

/* The per_worker row's columns after "lcore" and before "busy_cycles". */
static const struct {
	const char *group, *name;
} worker_cols[] = {
	{"net", "rx_pkts"},
	{"net", "ring_rx"},
	{"net", "dispatch_tx"},
	{"net", "tcp_rx"},
	{"tcp", "conn_accepted"},
	{"net", "idle_sleeps"},
};

void
gw_ctr_snap_json(const struct gw_ctr_snap *s, FILE *f)
{
	fprintf(f, "{\"workers\":%u,\"tsc_hz\":%" PRIu64, s->n_workers, s->tsc_hz);
	for (unsigned i = 0; i < s->n_groups; i++) {
		const struct gw_ctr_vals *v = &s->groups[i];

		fprintf(f, ",\"%s\":{", v->g->name);
		json_members(f, v->g, v->sum, NULL);
		if (v->g->per_worker != NULL) {
			/* where the work went: a skewed split shows here */
			fprintf(f, ",\"%s\":[", v->g->per_worker);
			for (unsigned w = 0; w < s->n_workers; w++) {
				fputs(w ? ",{" : "{", f);
				json_members(
					f, v->g, v->w + (size_t)w * v->g->n, v->g->worker_keys);
				fputc('}', f);
			}
			fputc(']', f);
		}
		fputc('}', f);
	}
	for (unsigned i = 0; i < s->n_tables; i++) {
		const struct gw_ctr_table *t = &s->tables[i];

		fprintf(f, ",\"%s\":{", t->d->json);
		for (unsigned r = 0; r < t->n; r++) {
			fputs(r ? "," : "", f);
			json_str(f, t->r[r].value);
			fputs(":{", f);
			for (unsigned c = 0; c < t->d->n_cols; c++)
				fprintf(f, "%s\"%s\":%" PRIu64, c ? "," : "", t->d->cols[c],
					t->r[r].v[c]);
			fputc('}', f);
		}
		fputc('}', f);
	}
	/* in use = RX rings + what TCP holds + per-lcore caches: a leak shows as
	 * a figure that keeps growing across idle periods */
	fprintf(f, ",\"mbufs_in_use\":%" PRIu64 ",\"mbufs_total\":%" PRIu64 ",\"ports\":[",
		s->mbufs_in_use, s->mbufs_total);
	for (unsigned i = 0; i < s->n_ports; i++) {
		const struct gw_ctr_port *p = &s->ports[i];

		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		json_str(f, p->name);
		fputs(",\"device\":", f);
		json_str(f, p->device);
		fprintf(f,
			",\"rxq\":%u,\"txq\":%u,\"rss\":%s,\"rx_cksum_offload\":%s,"
			"\"tx_cksum_offload\":%s,\"mtu\":%u,",
			p->rxq, p->txq, p->rss ? "true" : "false",
			p->rx_cksum_offload ? "true" : "false",
			p->tx_cksum_offload ? "true" : "false", p->mtu);
		json_members(f, s->port_group, p->v, NULL);
		fputc('}', f);
	}
	fputs("],\"per_worker\":[", f);
	for (unsigned w = 0; w < s->n_workers; w++) {
		fprintf(f, "%s{\"lcore\":%u", w ? "," : "", s->lcore[w]);
		for (size_t c = 0; c < sizeof(worker_cols) / sizeof(worker_cols[0]); c++) {
			const struct gw_ctr_vals *v = gw_ctr_snap_group(s, worker_cols[c].group);
			int k = v != NULL ? gw_ctr_find(v->g, worker_cols[c].name) : -1;

			if (k >= 0)
				fprintf(f, ",\"%s\":%" PRIu64, worker_cols[c].name,
					v->w[(size_t)w * v->g->n + (size_t)k]);
		}
		fprintf(f, ",\"busy_cycles\":%" PRIu64 "}", s->busy_cycles[w]);
	}
	fputs("]}\n", f);
	fflush(f);
}
