/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * snapshot.h - the snapshot builder: a struct gw_cfg compiled into a new,
 * unpublished struct gw_snapshot (policy/snap.h, the worker side: listeners,
 * references, the RCU publisher). Control thread only; this is the one place
 * where config types meet the snapshot.
 */
#ifndef GW_SNAPSHOT_H
#define GW_SNAPSHOT_H

#include <stdint.h>

#include "config.h"
#include "gw_err.h"
#include "snap.h"
#include "trust.h"

/* Hooks a snapshot build calls per listener (all optional). */
struct gw_snapshot_ext {
	void *arg; /* passed back; must outlive every snapshot built with it */
	/* build the TLS side of listener l (sets l->tls); runs after l->trust is built */
	int (*listener_init)(
		void *arg, const struct gw_cfg_listener *lc, struct gw_snap_listener *l);
	/* free what listener_init made; called on build failure too (l->tls may be NULL) */
	void (*listener_fini)(void *arg, struct gw_snap_listener *l);
	/* build the trust instead of gw_trust_create (mesh: the CA backends' roots) */
	int (*trust_build)(void *arg, const struct gw_cfg_listener *lc, struct gw_trust **out);
};

/*
 * Compile cfg into a new, unpublished snapshot with this generation (> 0).
 * cfg is only read (the snapshot copies what it keeps); ext may be NULL.
 * Returns 0 and *out, or the first error (-GW_E_CONFIG for a trust that does
 * not build, with gw_err_msg() naming the listener; -EINVAL, -ENOMEM, or a
 * hook's error). Control thread.
 */
GW_MUST_CHECK int gw_snapshot_build(const struct gw_cfg *cfg, uint64_t generation,
	const struct gw_snapshot_ext *ext, struct gw_snapshot **out);

#endif /* GW_SNAPSHOT_H */
