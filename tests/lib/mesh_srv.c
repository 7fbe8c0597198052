/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mesh_srv.c - the gateway's control plane without its dataplane, for the
 * integration tests of `mtlsgw-ctl ca|status`: `mesh_srv CONFIG` loads the
 * config, builds and publishes snapshots (the real TLS extension, keys in
 * the token, wrapped by gw_mesh_ext) to two reader threads that play the
 * workers (each reports the generation it runs), and serves the admin API.
 * SIGHUP or POST /v1/reload reloads the file; SIGTERM stops. Everything but
 * the packets is the code mtlsgw runs; the harness (tests/lib/gw_mesh_test.c)
 * is shared with tests/unit/test_mesh.c.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

#include "ca.h"
#include "gw_mesh_test.h"

static struct gw_mesh_test m;
static volatile sig_atomic_t got_hup, got_term;

static int
status(void *arg, json_t *o)
{
	struct gw_mesh_test *t = arg;
	json_t *w = json_array(), *l = json_array();

	for (unsigned i = 0; i < GW_MESH_TEST_WORKERS; i++)
		json_array_append_new(w, json_pack("{s:i,s:I}", "Id", i, "Generation",
						 (json_int_t)atomic_load(&t->worker_gen[i])));
	for (unsigned i = 0; i < t->running->n_listeners; i++)
		json_array_append_new(l, json_string(t->running->listeners[i].name));
	json_object_set_new(o, "Generation", json_integer((json_int_t)t->gen));
	json_object_set_new(o, "Workers", w);
	json_object_set_new(o, "Listeners", l);
	json_object_set_new(o, "HSM", json_pack("{s:s}", "State", "logged in"));
	return 0;
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
	char token[33];
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: mesh_srv CONFIG\n");
		return 2;
	}
	m.cfg_path = argv[1];
	m.log = stderr;
	signal(SIGPIPE, SIG_IGN); /* as mtlsgw does */
	signal(SIGHUP, on_sig);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if (gw_cfg_load(m.cfg_path, &m.running, stderr) < 0)
		return 1;
	gw_ca_params_from_cfg(m.running, &cp, token);
	if (gw_hsm_open(&cp.hsm, &h) < 0 || gw_mesh_test_start(&m, h, status) < 0) {
		fprintf(stderr, "mesh_srv: %s\n", gw_err_msg());
		goto out;
	}
	fprintf(stderr, "mesh_srv: running\n");
	while (!got_term) {
		(void)gw_mesh_run(m.mesh, 100);
		if (got_hup) {
			got_hup = 0;
			if (gw_mesh_test_reload(&m, false) < 0)
				fprintf(stderr, "mesh_srv: reload refused: %s\n", gw_err_msg());
		}
	}
	rc = 0;
out:
	gw_mesh_test_stop(&m);
	gw_hsm_close(h);
	gw_hsm_shutdown();
	return rc;
}
