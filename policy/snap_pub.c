/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * snap_pub.c - publish and reclaim immutable snapshots (snap.h), the one
 * DPDK user of policy (rte_rcu_qsbr).
 *
 * Memory order, in one place:
 *  - publish: the snapshot is fully built, then stored with RELEASE; readers
 *    load with ACQUIRE, so they see every field the builder wrote.
 *  - grace period: rte_rcu_qsbr_start() after the pointer swap (its token
 *    add is a release) and rte_rcu_qsbr_check() (acquire on the readers'
 *    counters). A reader reports quiescent only after it stopped using the
 *    pointer AND after any gw_snapshot_ref() it made, so once the check
 *    passes, every ref taken through the old pointer is visible to us and
 *    no new one can be taken.
 *  - refs: gw_snapshot_refs() is an ACQUIRE load that pairs with the
 *    workers' RELEASE unref (snap.c).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <rte_rcu_qsbr.h>

#include "snap.h"

struct gw_snap_retired {
	struct gw_snapshot *s;
	uint64_t token; /* grace period: rte_rcu_qsbr_start() after the swap */
};

struct gw_snap_pub {
	_Atomic(struct gw_snapshot *) cur;
	struct rte_rcu_qsbr *qsv;
	unsigned max_readers;
	struct gw_snap_retired *retired;
	unsigned n_retired, cap_retired;
	struct gw_snap_stats st;
};

/* ---- the publisher ---- */

int
gw_snap_pub_create(unsigned max_readers, struct gw_snap_pub **out)
{
	struct gw_snap_pub *p;
	size_t sz, align = RTE_CACHE_LINE_SIZE;

	GW_ENSURE(out != NULL && max_readers > 0 && max_readers <= 1024, -EINVAL);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	sz = rte_rcu_qsbr_get_memsize(max_readers);
	/* aligned_alloc wants a size that is a multiple of the alignment */
	sz = (sz + align - 1) / align * align;
	p->qsv = aligned_alloc(align, sz);
	if (p->qsv == NULL) {
		free(p);
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	if (rte_rcu_qsbr_init(p->qsv, max_readers) != 0) {
		free(p->qsv);
		free(p);
		return gw_err_setf(-EINVAL, GW_HERE, "rte_rcu_qsbr_init(%u) failed", max_readers);
	}
	p->max_readers = max_readers;
	atomic_init(&p->cur, NULL);
	*out = p;
	return 0;
}

static bool
retired_done(struct gw_snap_pub *p, struct gw_snap_retired *r, bool wait)
{
	if (rte_rcu_qsbr_check(p->qsv, r->token, wait) != 1)
		return false;
	return gw_snapshot_refs(r->s) == 0;
}

unsigned
gw_snap_pub_reclaim(struct gw_snap_pub *p, bool wait)
{
	unsigned keep = 0;

	if (p == NULL)
		return 0;
	for (unsigned i = 0; i < p->n_retired; i++) {
		if (retired_done(p, &p->retired[i], wait)) {
			gw_snapshot_destroy(p->retired[i].s);
			p->st.freed++;
		} else {
			p->retired[keep++] = p->retired[i];
		}
	}
	p->n_retired = keep;
	p->st.pending = keep;
	return keep;
}

int
gw_snap_pub_publish(struct gw_snap_pub *p, struct gw_snapshot *s)
{
	struct gw_snapshot *old;

	GW_ENSURE(p != NULL && gw_snapshot_valid(s), -EINVAL);
	old = atomic_load_explicit(&p->cur, memory_order_relaxed);
	if (old != NULL && gw_snapshot_generation(s) <= gw_snapshot_generation(old))
		return gw_err_setf(-EINVAL, GW_HERE,
			"snapshot generation %llu is not newer than the current %llu",
			(unsigned long long)gw_snapshot_generation(s),
			(unsigned long long)gw_snapshot_generation(old));
	if (old != NULL && p->n_retired == p->cap_retired) {
		unsigned cap = p->cap_retired ? p->cap_retired * 2 : 8;
		void *n = realloc(p->retired, cap * sizeof(*p->retired));

		if (n == NULL)
			return gw_err_set(-ENOMEM, GW_HERE);
		p->retired = n;
		p->cap_retired = cap;
	}
	/* release: every field of s is visible before the pointer is */
	atomic_store_explicit(&p->cur, s, memory_order_release);
	p->st.published++;
	if (old != NULL) {
		p->retired[p->n_retired].s = old;
		/* the token is taken after the swap: readers quiescent past it no longer hold old */
		p->retired[p->n_retired].token = rte_rcu_qsbr_start(p->qsv);
		p->n_retired++;
	}
	gw_snap_pub_reclaim(p, false);
	return 0;
}

void
gw_snap_pub_stats_get(const struct gw_snap_pub *p, struct gw_snap_stats *st)
{
	if (p != NULL && st != NULL)
		*st = p->st;
}

void
gw_snap_pub_destroy(struct gw_snap_pub *p)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->n_retired; i++)
		gw_snapshot_destroy(p->retired[i].s);
	gw_snapshot_destroy(atomic_load_explicit(&p->cur, memory_order_acquire));
	free(p->retired);
	free(p->qsv);
	free(p);
}

/* ---- readers ---- */

int
gw_snap_reader_register(struct gw_snap_pub *p, unsigned id)
{
	GW_ENSURE(p != NULL && id < p->max_readers, -EINVAL);
	if (rte_rcu_qsbr_thread_register(p->qsv, id) != 0)
		return gw_err_set(-EINVAL, GW_HERE);
	rte_rcu_qsbr_thread_online(p->qsv, id);
	return 0;
}

void
gw_snap_reader_unregister(struct gw_snap_pub *p, unsigned id)
{
	if (p == NULL || id >= p->max_readers)
		return;
	rte_rcu_qsbr_thread_offline(p->qsv, id);
	(void)rte_rcu_qsbr_thread_unregister(p->qsv, id);
}

void
gw_snap_reader_offline(struct gw_snap_pub *p, unsigned id)
{
	rte_rcu_qsbr_thread_offline(p->qsv, id);
}

void
gw_snap_reader_online(struct gw_snap_pub *p, unsigned id)
{
	rte_rcu_qsbr_thread_online(p->qsv, id);
}

const struct gw_snapshot *
gw_snap_current(const struct gw_snap_pub *p)
{
	/* acquire: pairs with the release store in publish */
	return atomic_load_explicit(&((struct gw_snap_pub *)p)->cur, memory_order_acquire);
}

void
gw_snap_reader_quiescent(struct gw_snap_pub *p, unsigned id)
{
	/* burst done: no pointer from gw_snap_current() is used past here */
	rte_rcu_qsbr_quiescent(p->qsv, id);
}
