/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mesh_srv.c - the gateway's control plane without its dataplane, for the
 * integration tests of `mtlsgw-ctl ca|status`: `mesh_srv CONFIG` loads the
 * config, builds and publishes snapshots (the real TLS extension, keys in
 * the token, wrapped by gw_mesh_ext) to two reader threads that play the
 * workers (each reports the generation it runs), and serves the admin API.
 * SIGHUP or POST /v1/reload reloads the file; SIGTERM stops. Everything but
 * the packets is the code mtlsgw runs.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "config.h"
#include "mesh.h"
#include "snapshot.h"
#include "tls_ctx.h"

#define N_WORKERS 2

static const char *cfg_path;
static struct gw_cfg *running;
static struct gw_snap_pub *pub;
static struct gw_mesh *mesh;
static struct gw_snapshot_ext ext;
static uint64_t gen;
static atomic_bool stop;
static _Atomic uint64_t worker_gen[N_WORKERS];
static volatile sig_atomic_t got_hup, got_term;

static int
publish(void *arg)
{
	struct gw_snapshot *s = NULL;

	(void)arg;
	GW_GUARD(gw_snapshot_build(running, gen + 1, &ext, &s));
	if (gw_snap_pub_publish(pub, s) < 0) {
		gw_snapshot_destroy(s);
		return -EINVAL;
	}
	gen++;
	fprintf(stderr, "mesh_srv: published generation %llu\n", (unsigned long long)gen);
	return gw_mesh_published(mesh, running, gen);
}

static int
reload(void *arg, bool force)
{
	struct gw_cfg *next = NULL, *old = running;
	int rc;

	(void)arg;
	if ((rc = gw_cfg_load(cfg_path, &next, stderr)) < 0)
		return gw_err_setf(rc, GW_HERE, "%s: config rejected: %s", cfg_path, gw_err_msg());
	if ((rc = gw_mesh_prepare(mesh, next, force)) < 0) {
		gw_cfg_free(next);
		return rc;
	}
	/* all or nothing (mesh.h): build on the staged CA, then commit, then publish */
	{
		struct gw_snapshot *s = NULL;

		if ((rc = gw_snapshot_build(next, gen + 1, &ext, &s)) < 0) {
			gw_mesh_abort(mesh);
			gw_cfg_free(next);
			return rc;
		}
		gw_snapshot_destroy(s);
	}
	if ((rc = gw_mesh_commit(mesh)) < 0) {
		gw_cfg_free(next);
		return rc;
	}
	running = next;
	if ((rc = publish(NULL)) < 0) {
		running = old;
		gw_cfg_free(next);
		return rc;
	}
	gw_cfg_free(old);
	return 0;
}

static int
status(void *arg, json_t *o)
{
	json_t *w = json_array(), *l = json_array();

	(void)arg;
	for (unsigned i = 0; i < N_WORKERS; i++)
		json_array_append_new(w, json_pack("{s:i,s:I}", "Id", i, "Generation",
						 (json_int_t)atomic_load(&worker_gen[i])));
	for (unsigned i = 0; i < running->n_listeners; i++)
		json_array_append_new(l, json_string(running->listeners[i].name));
	json_object_set_new(o, "Generation", json_integer((json_int_t)gen));
	json_object_set_new(o, "Workers", w);
	json_object_set_new(o, "Listeners", l);
	json_object_set_new(o, "HSM", json_pack("{s:s}", "State", "logged in"));
	return 0;
}

static void *
worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;

	if (gw_snap_reader_register(pub, id) < 0)
		return NULL;
	while (!atomic_load(&stop)) {
		const struct gw_snapshot *s = gw_snap_current(pub);

		if (s)
			atomic_store(&worker_gen[id], gw_snapshot_generation(s));
		gw_snap_reader_quiescent(pub, id);
		usleep(2000);
	}
	gw_snap_reader_unregister(pub, id);
	return NULL;
}

static void
on_sig(int s)
{
	if (s == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

int
main(int argc, char **argv)
{
	struct gw_ca_params cp;
	struct gw_hsm *h = NULL;
	struct gw_tls_ctl *tls = NULL;
	struct gw_snapshot_ext tls_ext;
	pthread_t w[N_WORKERS];
	char token[33];
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: mesh_srv CONFIG\n");
		return 2;
	}
	cfg_path = argv[1];
	signal(SIGPIPE, SIG_IGN); /* as mtlsgw does */
	signal(SIGHUP, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if (gw_cfg_load(cfg_path, &running, stderr) < 0)
		return 1;
	gw_ca_params_from_cfg(running, &cp, token);
	if (gw_hsm_open(&cp.hsm, &h) < 0 || gw_snap_pub_create(N_WORKERS, &pub) < 0 ||
		gw_tls_ctl_create(&(struct gw_tls_ctl_params){.hsm = h}, &tls) < 0 ||
		gw_mesh_create(running,
			&(struct gw_mesh_params){.pub = pub,
				.ops = {.publish = publish, .reload = reload, .status = status}},
			&mesh) < 0) {
		fprintf(stderr, "mesh_srv: %s\n", gw_err_msg());
		goto out;
	}
	gw_tls_ctl_ext(tls, &tls_ext);
	gw_mesh_ext(mesh, &tls_ext, &ext);
	if (publish(NULL) < 0) {
		fprintf(stderr, "mesh_srv: %s\n", gw_err_msg());
		goto out;
	}
	for (unsigned i = 0; i < N_WORKERS; i++)
		pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)i);
	fprintf(stderr, "mesh_srv: running\n");
	while (!got_term) {
		(void)gw_mesh_run(mesh, 100);
		if (got_hup) {
			got_hup = 0;
			if (reload(NULL, false) < 0)
				fprintf(stderr, "mesh_srv: reload refused: %s\n", gw_err_msg());
		}
	}
	atomic_store(&stop, true);
	for (unsigned i = 0; i < N_WORKERS; i++)
		pthread_join(w[i], NULL);
	rc = 0;
out:
	gw_snap_pub_destroy(pub);
	gw_mesh_destroy(mesh);
	gw_tls_ctl_destroy(tls);
	gw_cfg_free(running);
	gw_hsm_close(h);
	gw_hsm_shutdown();
	return rc;
}
