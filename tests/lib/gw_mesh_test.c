/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gw_mesh_test.c - the gateway's control plane minus the packets for
 * test_mesh and mesh_srv (gw_mesh_test.h): the order of publish and reload
 * is the one mesh.h asks of the gateway.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "gw_err.h"
#include "gw_mesh_test.h"

int
gw_mesh_test_publish(void *arg)
{
	struct gw_mesh_test *t = arg;
	struct gw_snapshot *s = NULL;

	GW_GUARD(gw_snapshot_build(t->running, t->gen + 1, &t->ext, &s));
	if (gw_snap_pub_publish(t->pub, s) < 0) {
		gw_snapshot_destroy(s);
		return -EINVAL;
	}
	t->gen++;
	if (t->log)
		fprintf(t->log, "published generation %llu\n", (unsigned long long)t->gen);
	return gw_mesh_published(t->mesh, t->running, t->gen);
}

int
gw_mesh_test_reload(void *arg, bool force)
{
	struct gw_mesh_test *t = arg;
	struct gw_cfg *next = NULL, *old = t->running;
	struct gw_snapshot *s = NULL;
	int rc;

	if ((rc = gw_cfg_load(t->cfg_path, &next, t->log)) < 0) {
		char why[GW_ERR_MSG_MAX];

		snprintf(why, sizeof(why), "%s", gw_err_msg());
		return gw_err_setf(rc, GW_HERE, "%s: config rejected: %s", t->cfg_path, why);
	}
	if ((rc = gw_mesh_prepare(t->mesh, next, force)) < 0) {
		gw_cfg_free(next);
		return rc;
	}
	/* all or nothing (mesh.h): build on the staged CA, then commit, then publish */
	if ((rc = gw_snapshot_build(next, t->gen + 1, &t->ext, &s)) < 0) {
		gw_mesh_abort(t->mesh);
		gw_cfg_free(next);
		return rc;
	}
	gw_snapshot_destroy(s);
	if ((rc = gw_mesh_commit(t->mesh)) < 0) {
		gw_cfg_free(next);
		return rc;
	}
	t->running = next;
	if ((rc = gw_mesh_test_publish(t)) < 0) {
		t->running = old;
		gw_cfg_free(next);
		return rc;
	}
	gw_cfg_free(old);
	return 0;
}

/* gw_mesh_ops.reload over gw_mesh_test_reload */
static int
ops_reload(void *arg, struct gw_admin_reload *r)
{
	struct gw_mesh_test *t = arg;
	int rc = gw_mesh_test_reload(t, r->force);

	r->generation = t->gen;
	return rc;
}

/* A worker: takes the current snapshot each loop and reports quiescent. */
static void *
reader(void *arg)
{
	struct gw_mesh_test_reader *rd = arg;
	struct gw_mesh_test *t = rd->t;
	unsigned id = rd->id;

	if (gw_snap_reader_register(t->pub, id) < 0)
		return NULL;
	while (!atomic_load(&t->stop)) {
		const struct gw_snapshot *s = gw_snap_current(t->pub);

		if (s)
			atomic_store(&t->worker_gen[id], gw_snapshot_generation(s));
		gw_snap_reader_quiescent(t->pub, id);
		usleep(1000);
	}
	gw_snap_reader_unregister(t->pub, id);
	return NULL;
}

int
gw_mesh_test_start(struct gw_mesh_test *t, struct gw_hsm *h, int (*status)(void *, json_t *))
{
	struct gw_snapshot_ext tls_ext;

	GW_GUARD(gw_snap_pub_create(GW_MESH_TEST_WORKERS, &t->pub));
	GW_GUARD(gw_tls_ctl_create(&(struct gw_tls_ctl_params){.hsm = h}, &t->tls));
	GW_GUARD(gw_mesh_create(t->running,
		&(struct gw_mesh_params){.pub = t->pub,
			.ops = {.arg = t,
				.publish = gw_mesh_test_publish,
				.reload = ops_reload,
				.status = status}},
		&t->mesh));
	gw_tls_ctl_ext(t->tls, &tls_ext);
	gw_mesh_ext(t->mesh, &tls_ext, &t->ext);
	GW_GUARD(gw_mesh_test_publish(t));
	for (; t->n_started < GW_MESH_TEST_WORKERS; t->n_started++) {
		struct gw_mesh_test_reader *rd = &t->rd[t->n_started];

		*rd = (struct gw_mesh_test_reader){.t = t, .id = t->n_started};
		if (pthread_create(&t->w[rd->id], NULL, reader, rd) != 0)
			return gw_err_setf(-EAGAIN, GW_HERE, "reader thread: cannot start");
	}
	return 0;
}

void
gw_mesh_test_stop(struct gw_mesh_test *t)
{
	atomic_store(&t->stop, true);
	for (unsigned i = 0; i < t->n_started; i++)
		pthread_join(t->w[i], NULL);
	t->n_started = 0;
	gw_snap_pub_destroy(t->pub); /* snapshots first: the ext's arg is the mesh */
	gw_mesh_destroy(t->mesh);
	gw_tls_ctl_destroy(t->tls);
	gw_cfg_free(t->running);
	t->pub = NULL;
	t->mesh = NULL;
	t->tls = NULL;
	t->running = NULL;
}
