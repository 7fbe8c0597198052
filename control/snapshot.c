/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * snapshot.c - build, publish and reclaim immutable snapshots (snapshot.h).
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
 *  - refs: increments are relaxed (the reader already holds it safely);
 *    decrements are RELEASE and our zero check ACQUIRE, so a worker's last
 *    reads of the snapshot happen before control frees it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <rte_rcu_qsbr.h>

#include "snapshot.h"

#define GW_SNAP_MAGIC_LIVE 0x534e4150u /* "SNAP" */
#define GW_SNAP_MAGIC_DEAD 0xdeadbeefu

struct gw_snapshot {
	uint32_t magic;
	uint64_t generation;
	_Atomic uint32_t refs;
	unsigned n_listeners;
	struct gw_snap_listener *listeners;
	struct gw_snapshot_ext ext; /* for listener_fini at free time */
	bool has_ext;
	uint32_t magic_tail; /* written last: a torn build never looks valid */
};

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

/* ---- snapshots ---- */

static void
listener_free(struct gw_snapshot *s, struct gw_snap_listener *l)
{
	if (s->has_ext && s->ext.listener_fini != NULL)
		s->ext.listener_fini(s->ext.arg, l);
	gw_trust_destroy(l->trust);
	free(l->upstreams);
	free(l->name);
}

static void
snapshot_free(struct gw_snapshot *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->n_listeners; i++)
		listener_free(s, &s->listeners[i]);
	free(s->listeners);
	/* poison: a reader holding a stale pointer sees a dead snapshot */
	s->magic = s->magic_tail = GW_SNAP_MAGIC_DEAD;
	s->n_listeners = 0;
	s->listeners = NULL;
	free(s);
}

void
gw_snapshot_destroy(struct gw_snapshot *s)
{
	snapshot_free(s);
}

static int
listener_build(struct gw_snapshot *s, const struct gw_cfg_listener *lc, struct gw_snap_listener *l)
{
	int rc;

	l->name = strdup(lc->name ? lc->name : "");
	if (l->name == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	l->addr = lc->addr;
	l->service = lc->service;
	l->backlog = lc->backlog;
	l->has_tls = lc->has_tls;
	l->tls_min_version = lc->has_tls ? lc->tls.min_version : 0;
	l->client_auth = lc->has_tls ? lc->tls.client_auth : GW_CLIENT_AUTH_NONE;
	if (lc->has_upstream && lc->upstream.n_servers > 0) {
		l->upstreams = calloc(lc->upstream.n_servers, sizeof(*l->upstreams));
		if (l->upstreams == NULL)
			return gw_err_set(-ENOMEM, GW_HERE);
		memcpy(l->upstreams, lc->upstream.servers,
			lc->upstream.n_servers * sizeof(*l->upstreams));
		l->n_upstreams = lc->upstream.n_servers;
		l->proxy_protocol = lc->upstream.proxy_protocol;
	}
	if (lc->has_trust) {
		if (s->has_ext && s->ext.trust_build != NULL)
			rc = s->ext.trust_build(s->ext.arg, lc, &l->trust);
		else
			rc = gw_trust_create(&lc->trust, lc->name, &l->trust);
		if (rc < 0) {
			char msg[GW_ERR_MSG_MAX];

			snprintf(msg, sizeof(msg), "%s", gw_err_msg());
			return gw_err_setf(rc, GW_HERE, "listener '%s' trust: %s", l->name, msg);
		}
	}
	if (s->has_ext && s->ext.listener_init != NULL)
		GW_GUARD(s->ext.listener_init(s->ext.arg, lc, l));
	return 0;
}

int
gw_snapshot_build(const struct gw_cfg *cfg, uint64_t generation, const struct gw_snapshot_ext *ext,
	struct gw_snapshot **out)
{
	struct gw_snapshot *s;
	int rc = 0;

	GW_ENSURE(cfg != NULL && out != NULL && generation > 0, -EINVAL);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	s->generation = generation;
	if (ext != NULL) {
		s->ext = *ext;
		s->has_ext = true;
	}
	if (cfg->n_listeners > 0) {
		s->listeners = calloc(cfg->n_listeners, sizeof(*s->listeners));
		if (s->listeners == NULL) {
			rc = gw_err_set(-ENOMEM, GW_HERE);
			goto out;
		}
	}
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		/* counted first so a failure half-way frees what was made */
		s->n_listeners++;
		rc = listener_build(s, &cfg->listeners[i], &s->listeners[i]);
		if (rc < 0)
			goto out;
	}
	atomic_init(&s->refs, 0);
	s->magic = GW_SNAP_MAGIC_LIVE;
	s->magic_tail = GW_SNAP_MAGIC_LIVE;
	*out = s;
	s = NULL;
out:
	snapshot_free(s);
	return rc;
}

bool
gw_snapshot_valid(const struct gw_snapshot *s)
{
	return s != NULL && s->magic == GW_SNAP_MAGIC_LIVE && s->magic_tail == GW_SNAP_MAGIC_LIVE &&
	       s->generation > 0;
}

uint64_t
gw_snapshot_generation(const struct gw_snapshot *s)
{
	return s ? s->generation : 0;
}

unsigned
gw_snapshot_n_listeners(const struct gw_snapshot *s)
{
	return s ? s->n_listeners : 0;
}

const struct gw_snap_listener *
gw_snapshot_listener(const struct gw_snapshot *s, unsigned i)
{
	return s && i < s->n_listeners ? &s->listeners[i] : NULL;
}

const struct gw_snap_listener *
gw_snapshot_listener_find(const struct gw_snapshot *s, const char *name)
{
	if (s == NULL || name == NULL)
		return NULL;
	for (unsigned i = 0; i < s->n_listeners; i++)
		if (strcmp(s->listeners[i].name, name) == 0)
			return &s->listeners[i];
	return NULL;
}

struct gw_snapshot *
gw_snapshot_ref(const struct gw_snapshot *s)
{
	struct gw_snapshot *m = (struct gw_snapshot *)s; /* refs is the one mutable field */

	if (m != NULL)
		atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void
gw_snapshot_unref(struct gw_snapshot *s)
{
	if (s != NULL)
		atomic_fetch_sub_explicit(&s->refs, 1, memory_order_release);
}

unsigned
gw_snapshot_refs(const struct gw_snapshot *s)
{
	return s ? atomic_load_explicit(&((struct gw_snapshot *)s)->refs, memory_order_acquire) : 0;
}

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
	return atomic_load_explicit(&r->s->refs, memory_order_acquire) == 0;
}

unsigned
gw_snap_pub_reclaim(struct gw_snap_pub *p, bool wait)
{
	unsigned keep = 0;

	if (p == NULL)
		return 0;
	for (unsigned i = 0; i < p->n_retired; i++) {
		if (retired_done(p, &p->retired[i], wait)) {
			snapshot_free(p->retired[i].s);
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
	if (old != NULL && s->generation <= old->generation)
		return gw_err_setf(-EINVAL, GW_HERE,
			"snapshot generation %llu is not newer than the current %llu",
			(unsigned long long)s->generation, (unsigned long long)old->generation);
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
		snapshot_free(p->retired[i].s);
	snapshot_free(atomic_load_explicit(&p->cur, memory_order_acquire));
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
