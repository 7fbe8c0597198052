/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * rotation.h - may this CA change happen now? The validators of the three
 * step rotation (docs/architecture.md "CA backends and rotation", the
 * Kong Mesh seed), and the renewal rule for identities and issuers.
 *
 *   1. add backend B, enabledBackend unchanged: always allowed;
 *   2. enabledBackend A -> B: only once B was in the running config (step 1
 *      came first: "add-before-enable") and a snapshot trusting B is live on
 *      every worker ("enable-after-trust"): the generation that first
 *      trusted B must be <= the generation every worker has acknowledged,
 *      which the snapshot publisher answers (env.live_gen);
 *   3. remove A: never while A is enabled ("remove-not-enabled"), and unless
 *      forced, not while certificates issued by A and recorded in the state
 *      store are unexpired ("remove-after-expiry"; superseded identities do
 *      not count).
 * A backend kept under its name must keep its type and conf (key type, cert,
 * key, url, profile; validities may change): "backend-unchanged".
 * The validators never look at a backend's own root, so rotating away from a
 * backend whose root already expired works.
 *
 * In a fleet the rules hold for the fleet (env.fleet): enable-after-trust
 * waits for every member's report that a live snapshot trusts B, and
 * remove-after-expiry counts every member's unexpired certificates of A.
 *
 * Refusals return -GW_E_CONFIG with gw_err_msg() naming the rule:
 * "rotation rule enable-after-trust: backend ca-2 is not yet trusted by every
 * worker (...)". Nothing is changed by a check. Control thread only.
 */
#ifndef GW_ROTATION_H
#define GW_ROTATION_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "gw_err.h"
#include "state.h"

/* Renew at two thirds of the life [nb, na]; true also when already expired. */
bool gw_rotation_renew_due(time_t nb, time_t na, time_t now);

struct gw_rotation; /* which generation first trusted which backend */

GW_MUST_CHECK int gw_rotation_create(struct gw_rotation **out);
void gw_rotation_destroy(struct gw_rotation *r); /* NULL ok */

/*
 * A snapshot of generation gen built from m (its mesh trust = every backend
 * of m) was published: remember gen for backends not seen before, forget
 * backends m no longer has.
 */
GW_MUST_CHECK int gw_rotation_published(
	struct gw_rotation *r, const struct gw_cfg_mtls *m, uint64_t gen);

/* Generation that first trusted backend, 0 if none does. */
uint64_t gw_rotation_trusted_since(const struct gw_rotation *r, const char *backend);

struct gw_rotation_env {
	uint64_t live_gen;   /* lowest generation every worker has acknowledged */
	struct gw_state *st; /* issued certificates; NULL: the expiry rule sees none */
	time_t now;          /* 0: the clock */
	bool force;          /* skip remove-after-expiry */
	/*
	 * A fleet (cluster:, control/cluster.h), borrowed; NULL for one box:
	 * {"members": [the live members' keys: {node, mesh: {trusts[]}}],
	 *  "leaves": [every box's issued-certificate record, dead boxes' too:
	 *             {node, backends: {name: {live, until}}}]}.
	 * Step 2 also needs every other member to trust the backend, step 3
	 * (unless forced) no box's record to hold certificates of the removed
	 * backend still valid (until > now). fleet_down: etcd does not answer,
	 * the reports are unknown: steps 2 and 3 are refused. self: this
	 * member's node (its own workers and store are checked directly).
	 */
	json_t *fleet;
	bool fleet_down;
	const char *self;
};

/*
 * Check the change from the running mtls section (old; NULL or without
 * backends: first config, anything goes) to new. 0 if allowed.
 */
GW_MUST_CHECK int gw_rotation_check(const struct gw_rotation *r, const struct gw_cfg_mtls *old,
	const struct gw_cfg_mtls *new_, const struct gw_rotation_env *env);

#endif /* GW_ROTATION_H */
