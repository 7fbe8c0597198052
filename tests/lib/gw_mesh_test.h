/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_mesh_test.h - the gateway's control plane minus the packets, shared by
 * tests/unit/test_mesh.c and the integration tests' tests/lib/mesh_srv.c:
 * the real snapshot publisher, the real TLS extension (keys in the token)
 * wrapped by gw_mesh_ext, publish and all-or-nothing reload as mesh.h asks
 * the gateway to do them, and reader threads standing in for the workers
 * (each records the generation it runs). Not thread-safe: one control
 * thread calls these; the reader threads only touch worker_gen and stop.
 */
#ifndef GW_MESH_TEST_H
#define GW_MESH_TEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "config.h"
#include "hsm.h"
#include "mesh.h"
#include "snapshot.h"
#include "tls_ctx.h"

#define GW_MESH_TEST_WORKERS 2

struct gw_mesh_test {
	/* the caller sets these before gw_mesh_test_start */
	const char *cfg_path;   /* what a reload reads */
	struct gw_cfg *running; /* loaded from cfg_path; owned by the harness from start on */
	FILE *log;              /* rejected configs and published generations; NULL: quiet */
	/* set by gw_mesh_test_start */
	struct gw_snap_pub *pub;
	struct gw_mesh *mesh;
	struct gw_tls_ctl *tls;
	struct gw_snapshot_ext ext; /* the TLS extension wrapped by the mesh */
	uint64_t gen;               /* last published generation */
	_Atomic uint64_t worker_gen[GW_MESH_TEST_WORKERS];
	atomic_bool stop;
	pthread_t w[GW_MESH_TEST_WORKERS];
	struct gw_mesh_test_reader {
		struct gw_mesh_test *t;
		unsigned id;
	} rd[GW_MESH_TEST_WORKERS];
	unsigned n_started;
};

/*
 * Create the publisher, the TLS extension on h, the mesh (ops: the two
 * below, status if not NULL, all with t as arg), publish generation 1 and
 * start the reader threads. Returns 0, or a negative code with gw_err set;
 * on error, gw_mesh_test_stop() still frees what was made.
 */
int gw_mesh_test_start(
	struct gw_mesh_test *t, struct gw_hsm *h, int (*status)(void *arg, json_t *obj));

/* Stop the reader threads and free the publisher, mesh, extension and config. */
void gw_mesh_test_stop(struct gw_mesh_test *t);

/* gw_mesh_ops.publish: build generation gen + 1 from running and publish it. */
int gw_mesh_test_publish(void *t);

/*
 * gw_mesh_ops.reload: load cfg_path, stage it in the mesh, build a snapshot
 * on the staged CA, commit, publish; on any refusal or failure the running
 * config, CA and snapshot stay. Returns 0 or the negative code (gw_err set).
 */
int gw_mesh_test_reload(void *t, bool force);

#endif
