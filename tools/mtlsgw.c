/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mtlsgw.c - the appliance: `mtlsgw --config FILE`.
 *
 * Loads and validates the config (control), translates it into the
 * dataplane's params (the dataplane never sees YAML), starts the EAL with
 * options generated from it, brings up ports and workers, then the main
 * lcore sleeps in sigtimedwait: it runs control, never touches a packet and
 * never busy-polls.
 *
 * Signals: SIGINT/SIGTERM stop the workers, close the ports (taps
 * disappear), print the counters and exit 0. SIGUSR1 prints the counters
 * (one JSON line on stdout). SIGHUP reloads: the file is loaded and
 * validated beside the running config; if it is good, a new snapshot (TLS
 * identities with their HSM keys, trust, upstreams) is built and published
 * to the workers, new connections use it and established ones keep theirs;
 * otherwise the errors are printed and nothing changes. Listeners cannot be
 * added, removed or moved by a reload (the ports and stacks are set up at
 * start). The signals are
 * blocked before rte_eal_init so every thread the EAL creates inherits the
 * mask and only the main thread ever takes them, synchronously.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include <rte_eal.h>

#include "config.h"
#include "dataplane.h"
#include "hsm.h"
#include "mesh.h"
#include "snapshot.h"
#include "tls_ctx.h"
#include "tls_dp.h"

/* Control's side of TLS: the HSM handle, the ticket keys, the snapshots. */
struct tls_ctl {
	struct gw_hsm *hsm;
	struct gw_tls_ctl *ctl;
	struct gw_snap_pub *pub;
	struct gw_tls_dp *tdp;
	struct gw_tls_dp_params dpp;
	struct gw_cfg *cur; /* the config of the current snapshot (NULL: the start one) */
	uint64_t gen;
	int64_t hsm_fails; /* hs_fail_hsm at the last look */
	time_t hsm_retry;  /* earliest next key reload after HSM failures */
};

/*
 * The mesh control plane (control/mesh.h, issue 7): CA backends, rotation
 * rules, the mesh listeners' identities and the admin API. It wraps the TLS
 * snapshot extension and is told about every publish; see the mesh_*
 * functions below main's helpers.
 */
static struct {
	struct gw_mesh *m;
	struct tls_ctl *t;
	const char *path;           /* the config file, for reloads from the API */
	const struct gw_cfg *start; /* the start config (listeners are fixed) */
	bool force;                 /* the reload in progress was asked with --force */
	struct gw_dp *dp;           /* the running dataplane, for /v1/status (NULL: none) */
} mesh;

static void
usage(FILE *f)
{
	fprintf(f, "usage: mtlsgw --config FILE [--verbose]\n"
		   "       mtlsgw --config FILE --print-eal   (show the EAL options and exit)\n"
		   "       mtlsgw --version\n");
}

static int
translate(const struct gw_cfg *cfg, struct gw_dp_params *p, struct gw_tls_dp_params *tp)
{
	const struct gw_cfg_dataplane *d = &cfg->dataplane;
	unsigned i, u;

	memset(p, 0, sizeof(*p));
	memset(tp, 0, sizeof(*tp));
	if (d->n_workers > GW_DP_MAX_WORKERS || d->n_ports > GW_DP_MAX_PORTS ||
		cfg->n_listeners > GW_DP_MAX_LISTENERS)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"%s: too many workers, ports or listeners for this build", cfg->path);
	memcpy(p->workers, d->workers, sizeof(d->workers[0]) * d->n_workers);
	p->n_workers = d->n_workers;
	p->main_lcore = d->main_lcore;
	p->no_huge = d->no_huge;
	p->memory_mb = d->memory_mb;
	p->file_prefix = d->file_prefix;
	p->idle_poll = d->idle == GW_IDLE_POLL;
	p->tcp.sndbuf = d->tcp.sndbuf;
	p->tcp.rcvbuf = d->tcp.rcvbuf;
	p->tcp.time_wait_ms = d->tcp.time_wait_ms;
	p->tcp.handshake_timeout_ms = d->tcp.handshake_timeout_ms;
	p->tcp.idle_timeout_ms = d->tcp.idle_timeout_ms;
	p->tcp.rto_min_ms = d->tcp.rto_min_ms;
	/* per worker, shared by its TLS listeners (tls.h) */
	tp->worker.handshake_timeout_ms = d->tls.handshake_timeout_ms;
	tp->worker.idle_timeout_ms = d->tls.idle_timeout_ms;
	tp->worker.max_handshakes = d->tls.max_handshakes;
	for (i = 0; i < d->n_ports; i++) {
		const struct gw_cfg_port *cp = &d->ports[i];
		struct gw_dp_port *dp = &p->ports[i];

		dp->dev.name = cp->name;
		dp->dev.device = cp->device;
		dp->dev.mtu = cp->mtu;
		dp->dev.memif_client = cp->memif_role == GW_MEMIF_CLIENT;
		switch (cp->driver) {
		case GW_PORT_TAP:
			dp->dev.kind = GW_PORT_KIND_TAP;
			break;
		case GW_PORT_AF_PACKET:
			dp->dev.kind = GW_PORT_KIND_AF_PACKET;
			break;
		case GW_PORT_AF_XDP:
			dp->dev.kind = GW_PORT_KIND_AF_XDP;
			break;
		case GW_PORT_MEMIF:
			dp->dev.kind = GW_PORT_KIND_MEMIF;
			break;
		case GW_PORT_PCI:
			dp->dev.kind = GW_PORT_KIND_PCI;
			break;
		}
		dp->ip = cp->ip;
		dp->prefix_len = cp->prefix_len;
		dp->gateway = cp->gateway;
	}
	p->n_ports = d->n_ports;
	for (i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *cl = &cfg->listeners[i];
		struct gw_dp_listener *l = &p->listeners[p->n_listeners];

		if (cl->service == GW_SVC_TLS_ECHO || cl->service == GW_SVC_TLS_PROXY) {
			/* TLS listeners run through the TLS hooks (tls_dp.h) */
			struct gw_tls_dp_listener *t = &tp->listeners[tp->n_listeners++];

			snprintf(t->name, sizeof(t->name), "%s", cl->name);
			t->ip = cl->addr.ip;
			t->port = cl->addr.port;
			t->backlog = cl->backlog;
			t->index = i; /* the snapshot builder keeps the config's order */
			t->kind = cl->service;
			continue;
		}
		p->n_listeners++;
		l->name = cl->name;
		l->ip = cl->addr.ip;
		l->port = cl->addr.port;
		l->backlog = cl->backlog;
		l->service = cl->service;
		if (cl->has_upstream) {
			if (cl->upstream.n_servers > GW_DP_MAX_UPSTREAMS)
				return gw_err_setf(-GW_E_CONFIG, GW_HERE,
					"%s: listener '%s': at most %d upstream servers", cfg->path,
					cl->name, GW_DP_MAX_UPSTREAMS);
			for (u = 0; u < cl->upstream.n_servers; u++) {
				l->upstreams[u].ip = cl->upstream.servers[u].ip;
				l->upstreams[u].port = cl->upstream.servers[u].port;
			}
			l->n_upstreams = cl->upstream.n_servers;
		}
	}
	tp->n_workers = d->n_workers;
	return 0;
}

/* ---- TLS control: snapshots, reload, ticket keys, HSM recovery ---- */

/* The next snapshot from cfg, not yet published. */
static int
tls_build(struct tls_ctl *t, const struct gw_cfg *cfg, struct gw_snapshot **s)
{
	struct gw_snapshot_ext ext;

	gw_tls_ctl_ext(t->ctl, &ext);
	if (mesh.m != NULL) {
		struct gw_snapshot_ext tls_ext = ext;

		gw_mesh_ext(mesh.m, &tls_ext, &ext); /* mesh trust and identities around TLS */
	}
	return gw_snapshot_build(cfg, t->gen + 1, &ext, s);
}

/* Publish s (consumed on all paths), built from cfg by tls_build. */
static int
tls_publish(struct tls_ctl *t, const struct gw_cfg *cfg, struct gw_snapshot *s)
{
	int rc = gw_snap_pub_publish(t->pub, s);

	if (rc < 0) {
		gw_snapshot_destroy(s);
		return rc;
	}
	t->gen++;
	return mesh.m != NULL ? gw_mesh_published(mesh.m, cfg, t->gen) : 0;
}

static int
tls_build_publish(struct tls_ctl *t, const struct gw_cfg *cfg)
{
	struct gw_snapshot *s = NULL;

	GW_GUARD(tls_build(t, cfg, &s));
	return tls_publish(t, cfg, s);
}

static int mesh_start(struct tls_ctl *t, const struct gw_cfg *cfg);

static int
tls_start(struct tls_ctl *t, const struct gw_cfg *cfg, struct gw_dp_params *p)
{
	struct gw_hsm_params hp = {
		.module = cfg->hsm.module,
		.pin_file = cfg->hsm.pin_file,
		.pin_env = cfg->hsm.pin_env,
	};
	struct gw_tls_ctl_params cp = {0};

	/* after rte_eal_init: the engine and its sessions belong to this process */
	GW_GUARD(gw_hsm_open(&hp, &t->hsm));
	cp.hsm = t->hsm;
	GW_GUARD(gw_tls_ctl_create(&cp, &t->ctl));
	GW_GUARD(gw_snap_pub_create(p->n_workers, &t->pub));
	GW_GUARD(mesh_start(t, cfg)); /* before the first snapshot: it has the identities */
	GW_GUARD(tls_build_publish(t, cfg));
	t->dpp.pub = t->pub;
	GW_GUARD(gw_tls_dp_create(&t->dpp, &t->tdp));
	gw_tls_dp_hooks(t->tdp, p);
	return 0;
}

static void
tls_stop(struct tls_ctl *t, const struct gw_cfg *start_cfg)
{
	/* after gw_dp_stop: no reader left, no connection holds a snapshot */
	gw_snap_pub_destroy(t->pub);
	gw_mesh_destroy(mesh.m); /* after the snapshots built with its extension */
	mesh.m = NULL;
	gw_tls_dp_destroy(t->tdp);
	gw_tls_ctl_destroy(t->ctl);
	gw_hsm_close(t->hsm);
	if (t->hsm != NULL)
		gw_hsm_shutdown();
	if (t->cur != start_cfg)
		gw_cfg_free(t->cur);
}

/* Can the running dataplane take n? Same listeners: names, addresses, services. */
static int
reload_compatible(const struct gw_cfg *o, const struct gw_cfg *n)
{
	if (o->n_listeners != n->n_listeners)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"%s: %u listeners instead of %u: adding or removing listeners needs a "
			"restart",
			n->path, n->n_listeners, o->n_listeners);
	for (unsigned i = 0; i < n->n_listeners; i++) {
		const struct gw_cfg_listener *a = &o->listeners[i], *b = &n->listeners[i];

		if (strcmp(a->name, b->name) != 0 || a->addr.ip != b->addr.ip ||
			a->addr.port != b->addr.port || a->service != b->service)
			return gw_err_setf(-GW_E_CONFIG, GW_HERE,
				"%s: listener '%s' changed name, address or service: that needs a "
				"restart",
				n->path, b->name);
	}
	return 0;
}

/*
 * What a start checks of the HSM, for a reloaded config: its PIN source
 * opens every token its keys (and its CA) live in, in a fresh process
 * (gw_hsm_login_check), since this one is logged in already.
 */
static int
reload_hsm_check(const struct gw_cfg *n)
{
	struct gw_hsm_params hp = {
		.module = n->hsm.module, .pin_file = n->hsm.pin_file, .pin_env = n->hsm.pin_env};
	char labels[GW_DP_MAX_LISTENERS * 2 + 1][33];
	const char *tokens[GW_DP_MAX_LISTENERS * 2 + 1];
	unsigned nt = 0;

	for (unsigned i = 0; i < n->n_listeners; i++) {
		const struct gw_cfg_listener *l = &n->listeners[i];

		for (unsigned j = 0; l->has_tls && j < l->tls.n_identities; j++) {
			unsigned k;

			if (nt == GW_DP_MAX_LISTENERS * 2 ||
				gw_hsm_uri_token(l->tls.identities[j].key, labels[nt], 33) < 0)
				continue; /* the snapshot build names a bad URI */
			for (k = 0; k < nt && strcmp(labels[k], labels[nt]) != 0; k++)
				;
			if (k == nt) {
				tokens[nt] = labels[nt];
				nt++;
			}
		}
	}
	if (n->has_mtls && n->mtls.n_backends) {
		struct gw_ca_params cp;
		unsigned k;

		gw_ca_params_from_cfg(n, &cp, labels[nt]);
		for (k = 0; k < nt && strcmp(labels[k], labels[nt]) != 0; k++)
			;
		if (k == nt) {
			tokens[nt] = labels[nt];
			nt++;
		}
	}
	gw_err_clear();
	return gw_hsm_login_check(&hp, tokens, nt);
}

/* The CPUs this process could use before the EAL pinned the main thread. */
static cpu_set_t start_cpus;

static int
tls_reload(struct tls_ctl *t, const char *path, const struct gw_cfg *start_cfg)
{
	struct gw_snapshot *s = NULL;
	struct gw_cfg *n = NULL;
	uint64_t gen;
	cpu_set_t pinned;
	int rc;

	/*
	 * The loader checks worker lcores against the CPUs we may use; the EAL
	 * has pinned this thread to the main lcore since, so validate with the
	 * affinity the process started with, then pin again.
	 */
	CPU_ZERO(&pinned);
	pthread_getaffinity_np(pthread_self(), sizeof(pinned), &pinned);
	pthread_setaffinity_np(pthread_self(), sizeof(start_cpus), &start_cpus);
	rc = gw_cfg_load(path, &n, stderr);
	pthread_setaffinity_np(pthread_self(), sizeof(pinned), &pinned);
	if (rc < 0) {
		fprintf(stderr,
			"mtlsgw: SIGHUP: %s rejected (errors above); running config unchanged\n",
			path);
		return rc;
	}
	/*
	 * All or nothing: the CA change is staged (mesh.h), the snapshot built
	 * with it, and only then is the CA change committed and the snapshot
	 * published; a failure before the commit leaves the CA, its store and
	 * the running snapshot exactly as they were.
	 */
	if (reload_compatible(start_cfg, n) < 0 || reload_hsm_check(n) < 0 ||
		(mesh.m != NULL && gw_mesh_prepare(mesh.m, n, mesh.force) < 0))
		goto refused;
	if (t->pub != NULL && tls_build(t, n, &s) < 0) {
		gw_mesh_abort(mesh.m);
		goto refused;
	}
	if (mesh.m != NULL && gw_mesh_commit(mesh.m) < 0) {
		gw_snapshot_destroy(s);
		goto refused;
	}
	gen = t->gen;
	if (s != NULL && tls_publish(t, n, s) < 0) {
		fprintf(stderr, "mtlsgw: SIGHUP: %s%s\n", gw_err_msg(),
			t->gen == gen ? ": the CA change is applied, the snapshot not published"
				      : " (after publishing)");
		if (t->gen == gen) { /* nothing refers to n */
			rc = gw_err_get()->code;
			gw_cfg_free(n);
			return rc;
		}
	}
	if (t->cur != start_cfg)
		gw_cfg_free(t->cur);
	t->cur = n;
	fprintf(stderr, "mtlsgw: SIGHUP: reloaded %s (generation %" PRIu64 ")\n", path, t->gen);
	/* the workers' TCP stacks and TLS limits are made once, at start */
	if (memcmp(&start_cfg->dataplane.tls, &n->dataplane.tls, sizeof(n->dataplane.tls)) != 0 ||
		memcmp(&start_cfg->dataplane.tcp, &n->dataplane.tcp, sizeof(n->dataplane.tcp)) != 0)
		fprintf(stderr,
			"mtlsgw: SIGHUP: dataplane.tls / dataplane.tcp changed: the workers "
			"keep the values they started with until a restart\n");
	return 0;
refused:
	rc = gw_err_get()->code;
	fprintf(stderr, "mtlsgw: SIGHUP: %s; running config unchanged\n", gw_err_msg());
	gw_cfg_free(n);
	return rc;
}

/* ---- mesh: the admin API's callbacks (control/mesh.h) ---- */

static int
mesh_publish(void *arg)
{
	struct tls_ctl *t = arg;

	return t->pub != NULL ? tls_build_publish(t, t->cur) : 0;
}

static int
mesh_reload(void *arg, bool force)
{
	int rc;

	mesh.force = force;
	rc = tls_reload(arg, mesh.path, mesh.start);
	mesh.force = false;
	return rc;
}

/*
 * Workers[{Id, Lcore, Generation, BusyCycles}] and TscHz: which snapshot
 * each worker runs (issue 7) and the cycles it spent working, so
 * BusyCycles / TscHz is its busy seconds (bench/run's handshakes per
 * server core-second, issue 6).
 */
static void
status_workers(const struct tls_ctl *t, json_t *o)
{
	json_t *w = json_array();

	for (unsigned i = 0; i < gw_dp_n_workers(mesh.dp); i++) {
		struct gw_dp_worker_info wi;

		json_t *e;

		if (gw_dp_worker_info(mesh.dp, i, &wi) < 0)
			continue;
		e = json_pack("{s:i,s:i,s:I}", "Id", (int)i, "Lcore", (int)wi.lcore, "BusyCycles",
			(json_int_t)wi.busy_cycles);
		json_object_set_new(e, "Generation",
			json_integer((json_int_t)gw_tls_dp_worker_generation(t->tdp, i)));
		json_array_append_new(w, e);
	}
	json_object_set_new(o, "Workers", w);
	json_object_set_new(o, "TscHz", json_integer((json_int_t)gw_dp_tsc_hz(mesh.dp)));
}

static int
mesh_status(void *arg, json_t *o)
{
	struct tls_ctl *t = arg;
	const struct gw_cfg *cfg = t->cur ? t->cur : mesh.start;
	json_t *l = json_array();

	for (unsigned i = 0; i < cfg->n_listeners; i++)
		json_array_append_new(
			l, json_pack("{s:s,s:s}", "Name", cfg->listeners[i].name, "Trust",
				   !cfg->listeners[i].has_trust                    ? "none"
				   : cfg->listeners[i].trust.mode == GW_TRUST_MESH ? "mesh"
				   : cfg->listeners[i].trust.mode == GW_TRUST_CA   ? "ca"
										   : "pinned"));
	json_object_set_new(o, "Listeners", l);
	json_object_set_new(o, "Generation", json_integer((json_int_t)t->gen));
	status_workers(t, o);
	if (t->tdp != NULL) {
		json_object_set_new(o, "TLS",
			json_pack("{s:I,s:I}", "Established",
				(json_int_t)gw_tls_dp_stat(t->tdp, "established"), "Handshaking",
				(json_int_t)gw_tls_dp_stat(t->tdp, "handshaking")));
		json_object_set_new(o, "HSM",
			json_pack("{s:I}", "SignatureFailures",
				(json_int_t)gw_tls_dp_stat(t->tdp, "hs_fail_hsm")));
	}
	return 0;
}

/*
 * GET /v1/metrics, the gateway's side (control/metrics.h): the counters
 * (dataplane, TCP, TLS through its hook, busy seconds) rendered from the
 * same groups as the SIGUSR1 stats line, so metrics and line never disagree
 * on a name, then the snapshot generations. Certificate expiry follows
 * from mesh.
 */
static int
mesh_metrics(void *arg, struct gw_metrics *m)
{
	struct tls_ctl *t = arg;
	struct gw_ctr_snap s;
	int rc;

	gw_metrics_simple(m, "mtlsgw_snapshot_generation", "gauge",
		"generation of the last published snapshot", (int64_t)t->gen);
	if (mesh.dp == NULL)
		return 0; /* not running yet: no counters */
	if ((rc = gw_dp_counters(mesh.dp, &s)) == 0)
		gw_metrics_counters(m, &s);
	gw_ctr_snap_fini(&s);
	GW_GUARD(rc);
	gw_metrics_family(m, "mtlsgw_worker_snapshot_generation", "gauge",
		"generation of the snapshot the worker last took");
	for (unsigned i = 0; t->tdp != NULL && i < gw_dp_n_workers(mesh.dp); i++) {
		char w[16];

		snprintf(w, sizeof(w), "%u", i);
		gw_metrics_sample(m, "mtlsgw_worker_snapshot_generation",
			(const char *const[]){"worker", w}, 1,
			(int64_t)gw_tls_dp_worker_generation(t->tdp, i));
	}
	return 0;
}

static int
mesh_start(struct tls_ctl *t, const struct gw_cfg *cfg)
{
	struct gw_mesh_params mp = {.pub = t->pub,
		.ops = {.arg = t,
			.publish = mesh_publish,
			.reload = mesh_reload,
			.status = mesh_status,
			.metrics = mesh_metrics}};

	mesh.t = t;
	mesh.start = cfg;
	return gw_mesh_create(cfg, &mp, &mesh.m);
}

/* Once a second on the main lcore. */
static void
tls_tick(struct tls_ctl *t)
{
	time_t now = time(NULL);
	int64_t fails;

	if (t->pub == NULL)
		return;
	if (gw_tls_ctl_rotate(t->ctl, now, false) == 1)
		fprintf(stderr, "mtlsgw: session ticket key rotated (key %" PRIu64 ")\n",
			gw_tls_ctl_key_serial(t->ctl));
	gw_snap_pub_reclaim(t->pub, false);
	/*
	 * Signatures failing in the HSM (token gone, key deleted): load the
	 * keys again through a new snapshot, every 5 s while failures go on,
	 * so the workers recover without a restart once the token is back.
	 */
	fails = gw_tls_dp_stat(t->tdp, "hs_fail_hsm");
	if (fails > t->hsm_fails && now >= t->hsm_retry) {
		t->hsm_retry = now + 5;
		if (tls_build_publish(t, t->cur) == 0)
			fprintf(stderr,
				"mtlsgw: HSM: %" PRId64 " signature failure(s); listener keys "
				"reloaded from the token (generation %" PRIu64 ")\n",
				fails - t->hsm_fails, t->gen);
		else
			fprintf(stderr,
				"mtlsgw: HSM: signatures fail and the keys cannot be "
				"reloaded: %s\n",
				gw_err_msg());
		t->hsm_fails = fails;
	}
}

static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"verbose", no_argument, NULL, 'v'},
		{"print-eal", no_argument, NULL, 'E'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static struct gw_dp_params params;
	static struct tls_ctl tls;
	const char *config = NULL;
	struct gw_cfg *cfg = NULL;
	struct gw_dp *dp = NULL;
	bool verbose = false, print_eal = false, eal_up = false;
	sigset_t set;
	int c, rc = 1;

	/* a reload's PIN check runs in a fresh copy of this program (hsm.h) */
	if ((rc = gw_hsm_login_check_main(argc, argv)) >= 0)
		return rc;
	rc = 1;
	/* a peer closing mid-write (cfssl, an admin client) is an error, never our death */
	signal(SIGPIPE, SIG_IGN);
	while ((c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'E':
			print_eal = true;
			break;
		case 'V':
			printf("mtlsgw %s\n", GW_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mtlsgw: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (config == NULL) {
		fprintf(stderr, "mtlsgw: --config FILE is required\n");
		return 2;
	}
	/* the loader prints every error it finds, FILE:LINE: FIELD: why */
	if (gw_cfg_load(config, &cfg, stderr) < 0) {
		fprintf(stderr, "mtlsgw: %s: config rejected (errors above), nothing started\n",
			config);
		return 1;
	}
	if (translate(cfg, &params, &tls.dpp) < 0) {
		fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
		goto out;
	}
	params.verbose = verbose;
	if (print_eal) {
		char line[4096];

		if (gw_dp_eal_cmdline(&params, "mtlsgw", line, sizeof(line)) < 0) {
			fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
			goto out;
		}
		printf("%s\n", line);
		rc = 0;
		goto out;
	}

	/*
	 * A PIN variable is read (and unset, hsm.h) here, before the EAL starts
	 * threads that could read the environment while it changes.
	 */
	if (cfg->hsm.pin_env != NULL) {
		char pin[GW_HSM_PIN_MAX];
		int prc = gw_hsm_pin_read(NULL, cfg->hsm.pin_env, pin);

		OPENSSL_cleanse(pin, sizeof(pin));
		if (prc < 0) {
			fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
			goto out;
		}
	}
	block_signals(&set);
	CPU_ZERO(&start_cpus);
	pthread_getaffinity_np(pthread_self(), sizeof(start_cpus), &start_cpus);
	if (gw_dp_eal_init(&params, argv[0]) < 0) {
		fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
		goto out;
	}
	eal_up = true;
	tls.cur = cfg;
	mesh.path = config;
	if (tls.dpp.n_listeners > 0 && tls_start(&tls, cfg, &params) < 0) {
		fprintf(stderr, "mtlsgw: TLS: %s\n", gw_err_msg());
		goto out;
	}
	/* without TLS listeners: still the admin API (status, reload) */
	if (mesh.m == NULL && mesh_start(&tls, cfg) < 0) {
		fprintf(stderr, "mtlsgw: CA/admin: %s\n", gw_err_msg());
		goto out;
	}
	if (gw_dp_start(&params, &dp) < 0) {
		fprintf(stderr, "mtlsgw: %s\n", gw_err_msg());
		goto out;
	}
	mesh.dp = dp;
	fprintf(stderr, "mtlsgw: running: %u worker(s), %u port(s), %u listener(s)\n",
		params.n_workers, params.n_ports, params.n_listeners + tls.dpp.n_listeners);
	for (time_t last_tick = 0;;) {
		/* the admin API waits in select (up to 200 ms), signals are then polled */
		struct timespec ts = {.tv_sec = mesh.m != NULL ? 0 : 1};
		int sig;

		if (mesh.m != NULL)
			(void)gw_mesh_run(mesh.m, 200);
		sig = sigtimedwait(&set, NULL, &ts);

		if (sig == SIGINT || sig == SIGTERM) {
			fprintf(stderr, "mtlsgw: %s: stopping\n", strsignal(sig));
			break;
		}
		if (sig == SIGUSR1)
			gw_dp_stats_json(dp, stdout);
		else if (sig == SIGHUP)
			(void)tls_reload(&tls, config, cfg);
		if (time(NULL) != last_tick) { /* once a second */
			last_tick = time(NULL);
			tls_tick(&tls);
		}
	}
	gw_dp_stats_json(dp, stdout);
	rc = 0;
out:
	mesh.dp = NULL;
	gw_dp_stop(dp);
	tls_stop(&tls, cfg);
	if (eal_up)
		rte_eal_cleanup();
	gw_cfg_free(cfg);
	if (rc == 0 && eal_up)
		fprintf(stderr, "mtlsgw: stopped\n");
	return rc;
}
