/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mesh.h - the mesh control plane the gateway runs on its control thread:
 * the CA backends (ca.h), the rotation validators (rotation.h), the mesh
 * listeners' identities and the admin API (admin.h), glued to the snapshot
 * publisher without knowing anything about the dataplane.
 *
 * What it does for the gateway:
 *  - a snapshot extension (gw_mesh_ext) wrapping the TLS one: a mesh
 *    listener's trust is the union of every backend's roots; a mesh listener
 *    without an identity in the file gets the one the enabled backend issued
 *    (key "gw-id-<listener>" in the HSM, spiffe://<td>/gateway/<listener>),
 *    written with its chain to <state_dir>/identity-<listener>.pem, and the
 *    roots to <state_dir>/mesh-roots.pem (listed as the listener's trust
 *    certs, so the TLS side's trust fingerprint changes when roots do);
 *  - gw_mesh_prepare() / _commit() / _abort(): validate and stage the CA
 *    side of a reloaded config, build the snapshot, then make both the
 *    running ones or neither;
 *  - gw_mesh_run(): the admin API, renewal of identities and builtin
 *    issuers at 2/3 of their life (retried on every call until it works),
 *    expiry warnings (gw_log.h, module "ca", level warning) when a root
 *    enters its last 30, 7 or 1 days, and for an issuer or identity in that
 *    window only while its renewal keeps failing (they renew long before);
 *    renewal failures at level error, at most once a minute; a renewal or a
 *    PUT of the CA configuration asks the gateway to publish (ops.publish).
 *  - the same 30/7/1-day warnings for every trust anchor in a listener's
 *    trust files (ca and pinned) and every identity certificate file in the
 *    config, which nothing renews (read when a config is published);
 *  - GET /v1/metrics (metrics.h): the gateway's ops.metrics, then
 *    mtlsgw_cert_expiry_seconds for every CA root, cross-signed root and
 *    issuer (backend=), every listener's anchors (listener=; a mesh
 *    listener's are the backends' roots) and every identity (listener=).
 * "Is B trusted by every worker": the generation that first trusted B must
 * be <= the generation every worker runs, which the publisher answers:
 * after gw_snap_pub_reclaim(pub, wait) every registered reader has passed a
 * quiescent point since the last publish, so the current generation is live
 * everywhere (ops.live_gen overrides this).
 *
 * Control thread only. The gateway keeps the struct gw_cfg it last reported
 * through gw_mesh_published() alive until it reports the next one.
 */
#ifndef GW_MESH_H
#define GW_MESH_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "admin.h"
#include "ca.h"
#include "config.h"
#include "gw_err.h"
#include "metrics.h"
#include "snapshot.h"

struct gw_mesh_ops {
	void *arg;
	/* Build a snapshot from the running config with gw_mesh_ext and publish
	 * it, then call gw_mesh_published(). */
	int (*publish)(void *arg);
	/* Reload the config file: load, gw_mesh_prepare, build, publish,
	 * gw_mesh_published. 0 or <0 with gw_err_msg(). NULL: 501. r as
	 * admin.h's ops->reload gets it. */
	int (*reload)(void *arg, struct gw_admin_reload *r);
	/* The gateway's side of GET /v1/status (listeners, workers, HSM). */
	int (*status)(void *arg, json_t *obj);
	/* Lowest generation every worker runs; NULL: asked of the publisher. */
	uint64_t (*live_gen)(void *arg);
	/* The gateway's side of GET /v1/metrics (counters, generations), written
	 * before the certificate expiry metrics mesh adds. NULL: none. */
	int (*metrics)(void *arg, struct gw_metrics *m);
	/* In a fleet: every member's last report (a new reference; see
	 * rotation.h env.fleet), *down when etcd does not answer, *self this
	 * member's node. NULL (the op or its answer): one box. */
	json_t *(*fleet)(void *arg, bool *down, const char **self);
};

struct gw_mesh_params {
	struct gw_snap_pub *pub; /* may be NULL when ops.live_gen is given */
	struct gw_mesh_ops ops;
};

struct gw_mesh;

/*
 * Bring up the CA backends of cfg (none without an mtls section: the admin
 * API still serves status and reload), issue the mesh listeners'
 * identities, start the admin API on cfg->admin.socket and its metrics
 * port on cfg->admin.metrics_address, each if set. cfg is the
 * running config until gw_mesh_published() names another.
 */
GW_MUST_CHECK int gw_mesh_create(
	const struct gw_cfg *cfg, const struct gw_mesh_params *p, struct gw_mesh **out);
/* Free; only after every snapshot built with gw_mesh_ext is gone. NULL ok. */
void gw_mesh_destroy(struct gw_mesh *m);

/* The extension to build snapshots with; inner (the TLS one) may be NULL. */
void gw_mesh_ext(
	struct gw_mesh *m, const struct gw_snapshot_ext *inner, struct gw_snapshot_ext *out);

/*
 * A reload is all or nothing, the CA included:
 *   gw_mesh_prepare(next)  run the rotation validators against the running
 *                          config (force: skip remove-after-expiry) and
 *                          stage the CA change: a CA for next brought up
 *                          from the store beside the running one (backends
 *                          added/removed, the enabled one switched, the
 *                          identities re-issued), every store write in one
 *                          transaction, files written as *.next. Snapshots
 *                          built with gw_mesh_ext now see the staged CA.
 *   build the snapshot, then either
 *   gw_mesh_commit()       COMMIT, files renamed in place, the staged CA
 *                          becomes the running one (then publish), or
 *   gw_mesh_abort()        ROLLBACK, *.next removed: state.db, files, roots
 *                          listing and enabled backend exactly as before.
 * prepare: -GW_E_CONFIG with the rule named if refused, or the CA's error;
 * nothing changes then. commit: the store's error (aborted then). A stage
 * still open at the next prepare or gw_mesh_published is aborted or
 * committed there. Nothing the running gateway serves from changes before
 * gw_mesh_commit.
 */
GW_MUST_CHECK int gw_mesh_prepare(struct gw_mesh *m, const struct gw_cfg *next, bool force);
GW_MUST_CHECK int gw_mesh_commit(struct gw_mesh *m);
void gw_mesh_abort(struct gw_mesh *m); /* NULL or nothing staged: no-op */

/* A snapshot of generation gen built from cfg is now published. */
GW_MUST_CHECK int gw_mesh_published(struct gw_mesh *m, const struct gw_cfg *cfg, uint64_t gen);

/*
 * Serve the admin API and do timed work (once a second), waiting up to
 * timeout_ms for a request (without an admin socket: sleeping timeout_ms).
 * Returns what gw_admin_run returned (>= 0: ready descriptors; -EIO,
 * -errno of select), 0 without an admin socket, -EINVAL for a NULL m.
 * Renewal and publish failures are logged, not returned: they are retried
 * on the next tick. Control thread.
 */
int gw_mesh_run(struct gw_mesh *m, int timeout_ms);

/* The CA (NULL without backends), borrowed. */
struct gw_ca *gw_mesh_ca(struct gw_mesh *m);

/* The lowest generation every worker runs (see above). */
uint64_t gw_mesh_live_gen(struct gw_mesh *m);

/*
 * What this member tells the fleet's rotation validators (rotation.h) into
 * o: trusts[] (the running backends a snapshot every worker acknowledged
 * trusts) and live_leaves{backend: certificates issued and still valid}.
 * 0, or -ENOMEM. Control thread.
 */
GW_MUST_CHECK int gw_mesh_fleet_report(struct gw_mesh *m, json_t *o);

/*
 * The other fleet members' mesh CA roots (PEM, control/cluster.h
 * gw_cluster_fleet_roots; NULL: none): mesh listeners trust them too, from
 * the next snapshot built, so a client certificate any box's CA issued is
 * accepted on every box. Written to <state_dir>/fleet-roots.pem. Returns
 * 1 when they changed (build and publish a snapshot), 0 when not, or an
 * error (the previous ones stay).
 */
GW_MUST_CHECK int gw_mesh_set_fleet_roots(struct gw_mesh *m, const char *pem);

/* Tests: pretend the time is now (0: the clock). */
void gw_mesh_set_time(struct gw_mesh *m, time_t now);

#endif /* GW_MESH_H */
