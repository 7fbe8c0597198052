/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * snap.c - the snapshot object (snap.h): made empty for the builder, read
 * and referenced by workers, freed by control. No DPDK here (the publisher
 * is snap_pub.c), so control and mtlsgw-ctl link this without DPDK.
 *
 * refs: increments are relaxed (the reader already holds it safely);
 * decrements are RELEASE and the publisher's zero check (gw_snapshot_refs)
 * ACQUIRE, so a worker's last reads of the snapshot happen before control
 * frees it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "snap.h"

#define GW_SNAP_MAGIC_LIVE 0x534e4150u /* "SNAP" */
#define GW_SNAP_MAGIC_DEAD 0xdeadbeefu

struct gw_snapshot {
	uint32_t magic;
	uint64_t generation;
	_Atomic uint32_t refs;
	unsigned n_listeners;
	struct gw_snap_listener *listeners;
	unsigned max_listeners;
	gw_snap_listener_fini_fn *fini; /* for each listener at free time; may be NULL */
	void *fini_arg;
	uint32_t magic_tail; /* written last: a torn build never looks valid */
};

/* ---- snapshots ---- */

static void
listener_free(struct gw_snapshot *s, struct gw_snap_listener *l)
{
	if (s->fini != NULL)
		s->fini(s->fini_arg, l);
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

int
gw_snapshot_create(uint64_t generation, unsigned max_listeners, gw_snap_listener_fini_fn *fini,
	void *arg, struct gw_snapshot **out)
{
	struct gw_snapshot *s;

	GW_ENSURE(out != NULL && generation > 0, -EINVAL);
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	if (max_listeners > 0) {
		s->listeners = calloc(max_listeners, sizeof(*s->listeners));
		if (s->listeners == NULL) {
			free(s);
			return gw_err_set(-ENOMEM, GW_HERE);
		}
	}
	s->generation = generation;
	s->max_listeners = max_listeners;
	s->fini = fini;
	s->fini_arg = arg;
	atomic_init(&s->refs, 0);
	*out = s;
	return 0;
}

struct gw_snap_listener *
gw_snapshot_listener_add(struct gw_snapshot *s)
{
	if (s == NULL || s->n_listeners >= s->max_listeners)
		return NULL;
	return &s->listeners[s->n_listeners++];
}

int
gw_snapshot_listener_set(
	struct gw_snap_listener *l, const char *name, const struct gw_ep *upstreams, unsigned n)
{
	struct gw_ep *u = NULL;
	char *nm;

	GW_ENSURE(l != NULL && name != NULL && (n == 0 || upstreams != NULL), -EINVAL);
	nm = strdup(name);
	if (nm != NULL && n > 0 && (u = calloc(n, sizeof(*u))) != NULL)
		memcpy(u, upstreams, n * sizeof(*u));
	if (nm == NULL || (n > 0 && u == NULL)) {
		free(nm);
		return gw_err_set(-ENOMEM, GW_HERE);
	}
	free(l->name);
	free(l->upstreams);
	l->name = nm;
	l->upstreams = u;
	l->n_upstreams = n;
	return 0;
}

void
gw_snapshot_seal(struct gw_snapshot *s)
{
	s->magic = GW_SNAP_MAGIC_LIVE;
	s->magic_tail = GW_SNAP_MAGIC_LIVE;
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
