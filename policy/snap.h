/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * snap.h - immutable config snapshots (the worker side), published to the workers with one
 * atomic store and freed after an RCU grace period and their last reference
 * (docs/architecture.md "Snapshots").
 *
 * Control builds a struct gw_snapshot from a struct gw_cfg (listeners with
 * their compiled gw_trust, allow rules, upstreams, generation; the builder is
 * control/snapshot.h) and publishes it through a struct gw_snap_pub. This
 * header is everything a worker sees of it: typed, no config.h. Workers:
 *
 *	gw_snap_reader_register(pub, my_id);            // once, before the loop
 *	for (;;) {
 *		const struct gw_snapshot *s = gw_snap_current(pub); // once per burst
 *		... on a new connection: c->snap = gw_snapshot_ref(s); ...
 *		... on close:            gw_snapshot_unref(c->snap); ...
 *		gw_snap_reader_quiescent(pub, my_id);   // burst done: drop `s`
 *	}
 *	gw_snap_reader_unregister(pub, my_id);
 *
 * A pointer from gw_snap_current() is valid until that reader's next
 * quiescent report (or offline); a reference keeps it valid until unref,
 * across any number of publishes. Old snapshots are freed by control
 * (gw_snap_pub_reclaim, called from publish and from control's event loop)
 * once every registered reader has reported quiescent since it was replaced
 * (rte_rcu_qsbr) AND its reference count is zero. Workers never free: an
 * unref is one atomic decrement, so no SSL_CTX_free lands on a fast path.
 *
 * The QSBR variable is allocated with aligned_alloc, not rte_malloc, so the
 * publisher works without rte_eal_init() (unit tests).
 *
 * Libraries: the snapshot object (build, read, references) is in policy_lib,
 * pure C + OpenSSL, which control links; the publisher (gw_snap_pub_*,
 * gw_snap_reader_*, rte_rcu_qsbr) is in policy_rcu_lib, which only the
 * gateway and the workers link, so control and mtlsgw-ctl never link DPDK.
 */
#ifndef GW_SNAP_H
#define GW_SNAP_H

#include <stdbool.h>
#include <stdint.h>

#include "gw_err.h"
#include "policy_types.h"
#include "trust_verify.h"

/* A listener's TLS side (SSL_CTX per identity, SNI, tickets): tls_policy.h. */
struct gw_tls_lst;

/*
 * One listener as the workers see it, plain or TLS: the one listener table
 * of the gateway. Each worker binds it at start (its index here is its
 * index in every snapshot, the config's order) and every accept reads what
 * it does (upstreams, TLS, trust) from the snapshot that connection keeps.
 * Read-only once published.
 */
struct gw_snap_listener {
	char *name;
	struct gw_ep addr; /* network byte order */
	enum gw_service service;
	unsigned backlog;
	bool has_tls;
	int tls_min_version; /* TLS1_2_VERSION / TLS1_3_VERSION; 0 without tls */
	enum gw_client_auth client_auth;
	struct gw_trust *trust;  /* NULL when the listener has no trust section */
	struct gw_ep *upstreams; /* tcp-proxy, tls-proxy: tried round robin; owned */
	unsigned n_upstreams;
	enum gw_proxy_protocol proxy_protocol;
	/*
	 * The per-identity SSL_CTX set (HSM key, chain, SNI map, verify callback
	 * calling gw_trust_verify), made by the builder's listener_init hook
	 * (control/snapshot.h) and freed by the fini given to gw_snapshot_create.
	 * NULL without TLS or without that hook.
	 */
	struct gw_tls_lst *tls;
};

/* Opaque: the generation, the listeners, the reference count, canaries. */
struct gw_snapshot;

/* ---- building (control: control/snapshot.h's gw_snapshot_build) ---- */

/* Called for every listener a snapshot frees (l->tls may be NULL). */
typedef void gw_snap_listener_fini_fn(void *arg, struct gw_snap_listener *l);

/*
 * An empty, not yet valid snapshot with room for max_listeners listeners.
 * fini (may be NULL) is called with arg on each listener when the snapshot
 * is freed. Returns 0 and *out, -EINVAL (generation 0), -ENOMEM. Control.
 */
GW_MUST_CHECK int gw_snapshot_create(uint64_t generation, unsigned max_listeners,
	gw_snap_listener_fini_fn *fini, void *arg, struct gw_snapshot **out);

/*
 * The next listener, zeroed and already counted (so a failure half-way frees
 * what was made), or NULL when max_listeners are there. Control.
 */
struct gw_snap_listener *gw_snapshot_listener_add(struct gw_snapshot *s);

/*
 * Set l's name (copied) and upstreams (a copy of the n endpoints, network
 * order) on a listener being built; what l had is freed. 0, -EINVAL,
 * -ENOMEM (l unchanged). Control (or a test building a listener table).
 */
GW_MUST_CHECK int gw_snapshot_listener_set(
	struct gw_snap_listener *l, const char *name, const struct gw_ep *upstreams, unsigned n);

/* Mark s complete: from now on it is valid and immutable. Control. */
void gw_snapshot_seal(struct gw_snapshot *s);

/* Free a snapshot that was never published (or a failed build). NULL is fine. */
void gw_snapshot_destroy(struct gw_snapshot *s);

uint64_t gw_snapshot_generation(const struct gw_snapshot *s);
unsigned gw_snapshot_n_listeners(const struct gw_snapshot *s);
/* Listener i (< n_listeners), or NULL. */
const struct gw_snap_listener *gw_snapshot_listener(const struct gw_snapshot *s, unsigned i);
/* By name, or NULL. */
const struct gw_snap_listener *gw_snapshot_listener_find(
	const struct gw_snapshot *s, const char *name);
/*
 * True if s is a fully built, not yet freed snapshot (checks its canaries).
 * For tests and debug asserts.
 */
bool gw_snapshot_valid(const struct gw_snapshot *s);

/*
 * Take a reference (a connection keeps its snapshot for its whole life).
 * Only on a snapshot the caller already holds safely: from
 * gw_snap_current() before its next quiescent report, or another reference.
 * Returns s. MT-safe (atomic).
 */
struct gw_snapshot *gw_snapshot_ref(const struct gw_snapshot *s);

/* Drop a reference. Never frees (control does). NULL is fine. MT-safe. */
void gw_snapshot_unref(struct gw_snapshot *s);

/* Current references held (tests, the admin API). */
unsigned gw_snapshot_refs(const struct gw_snapshot *s);

/* ---- publishing ---- */

struct gw_snap_pub;

struct gw_snap_stats {
	uint64_t published; /* snapshots published */
	uint64_t freed;     /* old snapshots freed (the current one is not) */
	unsigned pending;   /* replaced, waiting for the grace period or references */
};

/*
 * A publisher for up to max_readers reader ids (0 .. max_readers-1).
 * Returns 0 and *out, -EINVAL, -ENOMEM.
 */
GW_MUST_CHECK int gw_snap_pub_create(unsigned max_readers, struct gw_snap_pub **out);

/*
 * Free the publisher, the current snapshot and every pending one. Every
 * reader must be unregistered (or stopped) and every reference dropped:
 * snapshots still referenced are freed anyway. NULL is fine.
 */
void gw_snap_pub_destroy(struct gw_snap_pub *p);

/*
 * Make s current with one release store; the previous one starts its grace
 * period. Consumes s on success. -EINVAL (s not consumed) if s is NULL, not
 * valid, or its generation is not above the current one. Then reclaims
 * what it can (never blocks). Control thread only.
 */
GW_MUST_CHECK int gw_snap_pub_publish(struct gw_snap_pub *p, struct gw_snapshot *s);

/*
 * Free every replaced snapshot whose grace period is over and whose
 * references are gone. wait = true blocks until the grace period of all
 * pending snapshots is over (not for references). Returns how many remain
 * pending. Control thread only.
 */
unsigned gw_snap_pub_reclaim(struct gw_snap_pub *p, bool wait);

void gw_snap_pub_stats_get(const struct gw_snap_pub *p, struct gw_snap_stats *st);

/* ---- readers (workers) ---- */

/* Register reader id and put it online. -EINVAL for a bad id. */
GW_MUST_CHECK int gw_snap_reader_register(struct gw_snap_pub *p, unsigned id);

/* Offline and unregister: grace periods stop waiting for it. */
void gw_snap_reader_unregister(struct gw_snap_pub *p, unsigned id);

/* Before blocking (sleeping in adaptive idle, a PKCS#11 call ...) and after. */
void gw_snap_reader_offline(struct gw_snap_pub *p, unsigned id);
void gw_snap_reader_online(struct gw_snap_pub *p, unsigned id);

/* The current snapshot (acquire load), NULL before the first publish. */
const struct gw_snapshot *gw_snap_current(const struct gw_snap_pub *p);

/* "I hold no pointer from gw_snap_current() any more." Once per loop. */
void gw_snap_reader_quiescent(struct gw_snap_pub *p, unsigned id);

#endif /* GW_SNAP_H */
