/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gateway.c - the running gateway (gateway.h): config -> dataplane params,
 * TLS control (snapshots, reload, ticket keys, HSM recovery), the mesh
 * control plane's callbacks (publish, reload, status, metrics) and the
 * life of the EAL and the dataplane. Moved from tools/mtlsgw.c (issue 11);
 * the function names are the ones it had there. The service manager's side
 * (sd_notify: ready, reloading, status, watchdog, stopping) is at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>

#include <rte_eal.h>
#include <rte_version.h>

#include "access_log.h"
#include "cluster.h"
#include "cluster_cfg.h"
#include "config.h"
#include "dataplane.h"
#include "gateway.h"
#include "gw_cpus.h"
#include "gw_log.h"
#include "gw_ossl.h"
#include "hsm.h"
#include "mesh.h"
#include "snapshot.h"
#include "tls_ctx.h"
#include "tls_dp.h"

#define GW_LOG_MODULE "gateway"

/* Control's side of TLS: the HSM handle, the ticket keys, the snapshots. */
struct tls_ctl {
	struct gw_gateway *gw; /* the gateway this is part of */
	const char *starting;  /* the part tls_start is at, for its error's prefix */
	struct gw_hsm *hsm;
	struct gw_tls_ctl *ctl;
	struct gw_snap_pub *pub;
	struct gw_tls_dp *tdp;
	struct gw_tls_dp_params dpp;
	struct gw_cfg *cur; /* the config of the current snapshot (NULL: the start one) */
	uint64_t gen;
	int64_t hsm_fails; /* hs_fail_hsm at the last look */
	time_t hsm_retry;  /* earliest next key reload after HSM failures */
	/* cluster: set: the fleet's ticket keys replace local rotation (control/cluster.h) */
	struct gw_cluster *cluster;
	uint64_t fleet_serial; /* the fleet's ticket key serial installed (0: none yet) */
	/* the pushed config's shared part running (cluster_cfg.h); NULL: the file alone */
	char *shared;
	uint64_t shared_rev;
};

struct gw_gateway {
	struct tls_ctl tls;
	/*
	 * The mesh control plane (control/mesh.h, issue 7): CA backends,
	 * rotation rules, the mesh listeners' identities and the admin API. It
	 * wraps the TLS snapshot extension and is told about every publish; see
	 * the mesh_* functions.
	 */
	struct {
		struct gw_mesh *m;
		const char *path;           /* the config file, for reloads from the API */
		const struct gw_cfg *start; /* the start config (listeners are fixed) */
		bool force;                 /* the reload in progress was asked with --force */
		struct gw_dp *dp;           /* the running dataplane, for /v1/status (NULL: none) */
	} mesh;
	struct gw_gateway_params p;
	char *path;         /* p.config, owned */
	struct gw_cfg *cfg; /* the start config, owned */
	struct gw_dp_params params;
	struct gw_access_log *alog; /* TLS listeners: the workers' records, drained by run/tick */
	bool eal_up;
	/* The CPUs this process could use before the EAL pinned the main thread. */
	cpu_set_t start_cpus;
	time_t now;  /* tests: the pretended time; 0 = the clock */
	int run_err; /* gw_gateway_run: last error logged, and when */
	time_t run_err_logged;
	enum gw_gateway_step fail_at; /* test hooks */
	/*
	 * systemd (Type=notify, sd_notify(3)): what the service manager was
	 * told, and the watchdog's view of the workers' progress. Nothing is
	 * sent without NOTIFY_SOCKET (ready stays false).
	 */
	struct {
		bool ready;       /* READY=1 sent: STOPPING=1 is due at the end */
		uint64_t wd_usec; /* WatchdogSec= (0: no watchdog) */
		uint64_t wd_next; /* CLOCK_MONOTONIC us of the next progress check */
		uint64_t loops[GW_DP_MAX_WORKERS]; /* each worker's loops at the last check */
		uint64_t stalled;                  /* bit w: worker w stalled (and was named) */
		char reload[GW_ERR_MSG_MAX + 32];  /* how the last reload went ("": none yet) */
		char status[GW_ERR_MSG_MAX + 128]; /* the last STATUS= sent */
		time_t status_at;
	} sd;
};

static time_t
gw_now(const struct gw_gateway *g)
{
	return g->now != 0 ? g->now : time(NULL);
}

/* Both NULL, or the same string. */
static bool
same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Same hsm.env: the same variables with the same values, in the same order. */
static bool
same_env(const struct gw_cfg_hsm *a, const struct gw_cfg_hsm *b)
{
	if (a->n_env != b->n_env)
		return false;
	for (unsigned i = 0; i < a->n_env; i++)
		if (strcmp(a->env[i].name, b->env[i].name) != 0 ||
			strcmp(a->env[i].value, b->env[i].value) != 0)
			return false;
	return true;
}

/* Test hooks: fail at step as if it had failed there. */
static int
step_fails(const struct gw_gateway *g, enum gw_gateway_step step)
{
#ifdef GW_TEST_HOOKS
	if (g->fail_at == step)
		return gw_err_setf(-EIO, GW_HERE, "test hook: reload step %d fails", (int)step);
#else
	(void)g;
	(void)step;
#endif
	return 0;
}

int
gw_gateway_translate(const struct gw_cfg *cfg, struct gw_dp_params *p, struct gw_tls_dp_params *tp)
{
	const struct gw_cfg_dataplane *d = &cfg->dataplane;
	unsigned i;

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
	p->idle = d->idle == GW_IDLE_POLL        ? GW_DP_IDLE_POLL
		  : d->idle == GW_IDLE_INTERRUPT ? GW_DP_IDLE_INTERRUPT
						 : GW_DP_IDLE_ADAPTIVE;
	p->tcp.sndbuf = d->tcp.sndbuf;
	p->tcp.rcvbuf = d->tcp.rcvbuf;
	p->tcp.time_wait_ms = d->tcp.time_wait_ms;
	p->tcp.handshake_timeout_ms = d->tcp.handshake_timeout_ms;
	p->tcp.idle_timeout_ms = d->tcp.idle_timeout_ms;
	p->tcp.rto_min_ms = d->tcp.rto_min_ms;
	/* a TCP and a TLS connection object per slot, on every worker */
	p->max_conns = d->tcp.max_connections;
	tp->worker.max_conns = d->tcp.max_connections;
	/* per worker, shared by its TLS listeners (tls.h) */
	tp->worker.handshake_timeout_ms = d->tls.handshake_timeout_ms;
	tp->worker.idle_timeout_ms = d->tls.idle_timeout_ms;
	tp->worker.max_handshakes = d->tls.max_handshakes;
	/* server signatures on the HSM threads, never blocking a worker (hsm.h) */
	tp->worker.hsm_async = true;
	tp->worker.hsm_timeout_ms = cfg->hsm.sign_timeout_ms;
	tp->hsm.threads = cfg->hsm.threads;
	tp->hsm.queue = cfg->hsm.queue;
	tp->hsm.inline_below_us = cfg->hsm.inline_below_us;
	for (i = 0; i < d->n_ports; i++) {
		const struct gw_cfg_port *cp = &d->ports[i];
		struct gw_dp_port *dp = &p->ports[i];

		dp->dev.name = cp->name;
		dp->dev.device = cp->device;
		dp->dev.mtu = cp->mtu;
		dp->dev.peer_ip = cp->peer_ip;
		dp->dev.peer_prefix_len = cp->peer_prefix_len;
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
		/* the bind only: upstreams come from the snapshot (gw_dp_listener) */
		p->n_listeners++;
		l->name = cl->name;
		l->ip = cl->addr.ip;
		l->port = cl->addr.port;
		l->backlog = cl->backlog;
		l->service = cl->service;
		l->index = i; /* the snapshot builder keeps the config's order */
	}
	tp->n_workers = d->n_workers;
	return 0;
}

/* ---- TLS control: snapshots, reload, ticket keys, HSM recovery ---- */

/* The next snapshot from cfg, not yet published. */
static int
tls_build(struct tls_ctl *t, const struct gw_cfg *cfg, struct gw_snapshot **s)
{
	struct gw_gateway *g = t->gw;
	struct gw_snapshot_ext ext = {0};

	if (t->ctl != NULL) /* TLS listeners: their SSL_CTX sets */
		gw_tls_ctl_ext(t->ctl, &ext);
	if (g->mesh.m != NULL) {
		struct gw_snapshot_ext tls_ext = ext;

		gw_mesh_ext(g->mesh.m, &tls_ext, &ext); /* mesh trust and identities around TLS */
	}
	return gw_snapshot_build(cfg, t->gen + 1, &ext, s);
}

/* Publish s (consumed on all paths), built from cfg by tls_build. */
static int
tls_publish(struct tls_ctl *t, const struct gw_cfg *cfg, struct gw_snapshot *s)
{
	struct gw_gateway *g = t->gw;
	int rc = step_fails(g, GW_GATEWAY_STEP_PUBLISH);

	if (rc == 0)
		rc = gw_snap_pub_publish(t->pub, s);
	if (rc < 0) {
		gw_snapshot_destroy(s);
		return rc;
	}
	t->gen++;
	return g->mesh.m != NULL ? gw_mesh_published(g->mesh.m, cfg, t->gen) : 0;
}

static int
tls_build_publish(struct tls_ctl *t, const struct gw_cfg *cfg)
{
	struct gw_snapshot *s = NULL;

	GW_GUARD(tls_build(t, cfg, &s));
	return tls_publish(t, cfg, s);
}

static int mesh_start(struct tls_ctl *t, const struct gw_cfg *cfg);

/*
 * Where the HSM threads run: hsm.cpus, each one this process may use, or
 * the CPUs no worker runs on (dataplane.h gw_dp_spare_cpus). Logged.
 */
static int
hsm_cpus(const struct gw_cfg *cfg, cpu_set_t *set)
{
	cpu_set_t allowed;
	char list[256], ok[256];

	if (gw_dp_spare_cpus(set, &allowed) == 0)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE, "no CPU for the HSM threads");
	if (cfg->hsm.n_cpus > 0) {
		CPU_ZERO(set);
		for (unsigned i = 0; i < cfg->hsm.n_cpus; i++) {
			if (!CPU_ISSET(cfg->hsm.cpus[i], &allowed)) {
				(void)gw_cpus_str(&allowed, ok, sizeof(ok));
				return gw_err_setf(-GW_E_CONFIG, GW_HERE,
					"%s: hsm.cpus[%u]: CPU %u is not one this process may run "
					"on (%s)",
					cfg->path, i, cfg->hsm.cpus[i], ok);
			}
			CPU_SET(cfg->hsm.cpus[i], set);
		}
	}
	(void)gw_cpus_str(set, list, sizeof(list));
	GW_LOG_INFO("%u HSM thread(s) on CPU(s) %s%s", cfg->hsm.threads, list,
		cfg->hsm.n_cpus > 0 ? " (hsm.cpus)" : " (those no worker runs on)");
	return 0;
}

/*
 * The listener table: a publisher whose readers are the workers (p->pub),
 * the mesh control plane, the first snapshot, for every config (plain
 * listeners take their upstreams from it too); with TLS listeners first
 * the HSM and the ticket keys, and after it the TLS hooks.
 */
static int
tls_start(struct tls_ctl *t, const struct gw_cfg *cfg, struct gw_dp_params *p)
{
	struct gw_hsm_params hp = {
		.module = cfg->hsm.module,
		.pin_file = cfg->hsm.pin_file,
		.pin_env = cfg->hsm.pin_env,
	};
	struct gw_tls_ctl_params cp = {0};
	bool tls = t->dpp.n_listeners > 0;
	cpu_set_t cpus;
	int rc;

	t->starting = tls ? "TLS" : "listeners";
	if (tls) {
		/* after rte_eal_init: the engine and its sessions belong to this process */
		GW_GUARD(gw_hsm_open(&hp, &t->hsm));
		cp.hsm = t->hsm;
		GW_GUARD(gw_tls_ctl_create(&cp, &t->ctl));
	}
	GW_GUARD(gw_snap_pub_create(p->n_workers > 0 ? p->n_workers : 1, &t->pub));
	p->pub = t->pub;
	t->starting = "CA/admin";
	GW_GUARD(mesh_start(t, cfg)); /* before the first snapshot: it has the identities */
	t->starting = tls ? "TLS" : "listeners";
	GW_GUARD(tls_build_publish(t, cfg));
	if (!tls)
		return 0;
	t->dpp.pub = t->pub;
	GW_GUARD(hsm_cpus(cfg, &cpus));
	t->dpp.hsm.cpus = &cpus;
	rc = gw_tls_dp_create(&t->dpp, &t->tdp);
	t->dpp.hsm.cpus = NULL; /* read at start only */
	if (rc < 0)
		return rc;
	gw_tls_dp_hooks(t->tdp, p);
	return 0;
}

static void
tls_stop(struct tls_ctl *t, const struct gw_cfg *start_cfg)
{
	struct gw_gateway *g = t->gw;

	/* after gw_dp_stop: no reader left, no connection holds a snapshot */
	gw_snap_pub_destroy(t->pub);
	gw_mesh_destroy(g->mesh.m); /* after the snapshots built with its extension */
	g->mesh.m = NULL;
	gw_tls_dp_destroy(t->tdp);
	gw_tls_ctl_destroy(t->ctl);
	gw_hsm_close(t->hsm);
	if (t->hsm != NULL)
		gw_hsm_shutdown();
	if (t->cur != start_cfg)
		gw_cfg_free(t->cur);
}

/*
 * The first cluster key that differs between a and b ("cluster" when one
 * has the section and the other not), or NULL when they are the same.
 */
static const char *
cluster_changed(const struct gw_cfg *a, const struct gw_cfg *b)
{
	const struct gw_cfg_cluster *x = &a->cluster, *y = &b->cluster;

	if (a->has_cluster != b->has_cluster)
		return "cluster";
	if (!a->has_cluster)
		return NULL;
	if (!same_str(x->name, y->name))
		return "cluster.name";
	if (!same_str(x->node, y->node))
		return "cluster.node";
	if (x->n_endpoints != y->n_endpoints)
		return "cluster.etcd.endpoints";
	for (unsigned i = 0; i < x->n_endpoints; i++)
		if (!same_str(x->endpoints[i], y->endpoints[i]))
			return "cluster.etcd.endpoints";
	if (!same_str(x->etcd_ca, y->etcd_ca))
		return "cluster.etcd.ca";
	if (!same_str(x->etcd_cert, y->etcd_cert))
		return "cluster.etcd.cert";
	if (!same_str(x->etcd_key, y->etcd_key))
		return "cluster.etcd.key";
	if (x->timeout_ms != y->timeout_ms)
		return "cluster.etcd.timeout";
	if (!same_str(x->ticket_key, y->ticket_key))
		return "cluster.ticket_key";
	if (x->lease_ttl_s != y->lease_ttl_s)
		return "cluster.lease_ttl";
	return NULL;
}

/*
 * Can the running dataplane take n? Same listeners: names, addresses,
 * services; the same cluster section (its agent is set up at start only).
 */
int
gw_gateway_reload_compatible(const struct gw_cfg *o, const struct gw_cfg *n)
{
	const char *cl = cluster_changed(o, n);

	if (cl != NULL)
		return gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"%s: %s changed: the cluster settings are read at start only; restart "
			"the gateway to apply it",
			n->path, cl);
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

/* The loader's error lines: on stderr as always, and one string each in errors. */
static void
reload_errors(json_t *errors, const char *lines)
{
	fputs(lines, stderr);
	for (const char *p = lines; *p;) {
		size_t len = strcspn(p, "\n");

		json_array_append_new(errors, json_stringn(p, len));
		p += len + (p[len] == '\n');
	}
}

/*
 * Load the config file, or with a pushed shared part the file with its
 * listeners: and mtls: blocks replaced by it (cluster_cfg.h).
 */
static int
load_running(const char *path, const char *shared, struct gw_cfg **n, FILE *errs)
{
	struct gw_material m = {0};
	char *merged = NULL;
	int rc;

	if (shared == NULL)
		return gw_cfg_load(path, n, errs);
	rc = gw_material_read(path, 1u << 20, &m);
	if (rc == 0)
		rc = gw_cluster_shared_merge((const char *)m.bytes, shared, &merged);
	if (rc == 0) {
		/* its messages say so: their line numbers count the file's own
		 * lines (without its listeners: and mtls:), then the pushed ones */
		char name[PATH_MAX + 16];

		snprintf(name, sizeof(name), "%s+pushed", path);
		rc = gw_cfg_load_mem(name, merged, strlen(merged), n, errs);
	} else if (errs != NULL)
		fprintf(errs, "%s: %s\n", path, gw_err_msg());
	gw_material_fini(&m);
	free(merged);
	return rc;
}

/*
 * source names who asked, for the log ("SIGHUP", "admin API",
 * "mtlsgw-ctl"); errors (NULL: none wanted) gets every error found.
 * shared: the pushed part to run with (t->shared, or a new revision's);
 * files: a new revision's file digests, checked against what was read.
 */
static int
tls_reload_with(struct tls_ctl *t, const char *path, const struct gw_cfg *start_cfg,
	const char *source, json_t *errors, const char *shared, json_t *files)
{
	struct gw_gateway *g = t->gw;
	struct gw_snapshot *s = NULL;
	struct gw_cfg *n = NULL;
	char *lines = NULL;
	size_t lines_len = 0;
	FILE *errs = errors ? open_memstream(&lines, &lines_len) : NULL;
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
	pthread_setaffinity_np(pthread_self(), sizeof(g->start_cpus), &g->start_cpus);
	rc = load_running(path, shared, &n, errs ? errs : stderr);
	pthread_setaffinity_np(pthread_self(), sizeof(pinned), &pinned);
	if (errs != NULL) {
		fclose(errs);
		reload_errors(errors, lines ? lines : "");
		free(lines);
	}
	if (rc < 0) {
		GW_LOG_ERR("reload (%s): %s rejected (errors above); running config unchanged",
			source, path);
		return rc;
	}
	for (unsigned i = 0; i < n->n_warnings; i++)
		GW_LOG_WARN("reload (%s): %s", source, n->warnings[i]);
	/*
	 * All or nothing: the CA change is staged (mesh.h), the snapshot built
	 * with it, and only then is the CA change committed and the snapshot
	 * published; a failure before the commit leaves the CA, its store and
	 * the running snapshot exactly as they were.
	 */
	if ((files != NULL && gw_cluster_shared_check_files(n, files) < 0) ||
		gw_gateway_reload_compatible(start_cfg, n) < 0 || reload_hsm_check(n) < 0 ||
		step_fails(g, GW_GATEWAY_STEP_PREPARE) < 0 ||
		(g->mesh.m != NULL && gw_mesh_prepare(g->mesh.m, n, g->mesh.force) < 0))
		goto refused;
	if (t->pub != NULL &&
		(step_fails(g, GW_GATEWAY_STEP_BUILD) < 0 || tls_build(t, n, &s) < 0)) {
		gw_mesh_abort(g->mesh.m);
		goto refused;
	}
	if (g->mesh.m != NULL &&
		(step_fails(g, GW_GATEWAY_STEP_COMMIT) < 0 || gw_mesh_commit(g->mesh.m) < 0)) {
		gw_mesh_abort(g->mesh.m); /* no-op after a failed commit (it aborted) */
		gw_snapshot_destroy(s);
		goto refused;
	}
	gen = t->gen;
	if (s != NULL && tls_publish(t, n, s) < 0) {
		GW_LOG_ERR("reload (%s): %s%s", source, gw_err_msg(),
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
	GW_LOG_INFO("reload (%s): reloaded %s (generation %" PRIu64 ")", source, path, t->gen);
	/* the workers' TCP stacks and TLS limits are made once, at start */
	if (memcmp(&start_cfg->dataplane.tls, &n->dataplane.tls, sizeof(n->dataplane.tls)) != 0 ||
		memcmp(&start_cfg->dataplane.tcp, &n->dataplane.tcp, sizeof(n->dataplane.tcp)) != 0)
		GW_LOG_WARN("reload (%s): dataplane.tls / dataplane.tcp changed: the workers "
			    "keep the values they started with until a restart",
			source);
	/* the PKCS#11 module read its environment once, at start */
	if (!same_env(&start_cfg->hsm, &n->hsm))
		GW_LOG_WARN("reload (%s): hsm.env changed: the process environment (and the "
			    "PKCS#11 module) keep the start values until a restart",
			source);
	/* the HSM threads, their queue and limits are set once, at start (hsm.h) */
	if (start_cfg->hsm.threads != n->hsm.threads || start_cfg->hsm.queue != n->hsm.queue ||
		start_cfg->hsm.sign_timeout_ms != n->hsm.sign_timeout_ms ||
		start_cfg->hsm.inline_below_us != n->hsm.inline_below_us ||
		start_cfg->hsm.n_cpus != n->hsm.n_cpus ||
		memcmp(start_cfg->hsm.cpus, n->hsm.cpus, sizeof(n->hsm.cpus[0]) * n->hsm.n_cpus) !=
			0)
		GW_LOG_WARN("reload (%s): hsm.threads, queue, sign_timeout, inline_below or cpus "
			    "changed: the HSM threads and the workers keep the start values until "
			    "a restart",
			source);
	/* the admin listeners are opened once, at start (docs/config.md "admin") */
	if (!same_str(start_cfg->admin.metrics_address, n->admin.metrics_address))
		GW_LOG_WARN("reload (%s): admin.metrics_address changed (%s -> %s): the "
			    "metrics listener stays %s%s until a restart",
			source,
			start_cfg->admin.metrics_address ? start_cfg->admin.metrics_address : "off",
			n->admin.metrics_address ? n->admin.metrics_address : "off",
			start_cfg->admin.metrics_address ? "on " : "off",
			start_cfg->admin.metrics_address ? start_cfg->admin.metrics_address : "");
	return 0;
refused:
	rc = gw_err_get()->code;
	GW_LOG_ERR("reload (%s): %s; running config unchanged", source, gw_err_msg());
	if (errors != NULL)
		json_array_append_new(errors, json_string(gw_err_msg()));
	gw_cfg_free(n);
	return rc;
}

static int
tls_reload(struct tls_ctl *t, const char *path, const struct gw_cfg *start_cfg, const char *source,
	json_t *errors)
{
	return tls_reload_with(t, path, start_cfg, source, errors, t->shared, NULL);
}

/* <state_dir>/cluster-shared.json: the pushed revision this box last ran. */
static void
shared_path(const struct gw_cfg *cfg, char *buf, size_t len)
{
	snprintf(buf, len, "%s/cluster-shared.json", cfg->state_dir);
}

/* Keep the revision now running, so a restart starts on it (shared_restore). */
static void
shared_save(struct tls_ctl *t)
{
	char path[600], tmp[640];
	json_t *o =
		json_pack("{s:I,s:s}", "revision", (json_int_t)t->shared_rev, "shared", t->shared);
	FILE *f;
	int fd;

	shared_path(t->gw->cfg, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL && fd >= 0)
		close(fd);
	if (o == NULL || f == NULL || json_dumpf(o, f, JSON_COMPACT) < 0 || fclose(f) != 0 ||
		rename(tmp, path) < 0) {
		GW_LOG_ERR("%s: %s; a restart starts on this box's own file until the fleet's "
			   "config is read",
			path, strerror(errno));
		if (f != NULL)
			(void)unlink(tmp);
	}
	json_decref(o);
}

/*
 * A fleet member starts on the pushed revision it last ran (its file with
 * that shared part), not on its file alone: a restart never serves older
 * trust than before, even while etcd is away or the newest revision is one
 * this box refuses. Nothing is restored when the file and that part do not
 * load together any more (said, and the file alone runs).
 */
static void
shared_restore(struct gw_gateway *g)
{
	char path[600];
	struct gw_material m = {0};
	struct gw_cfg *n = NULL;
	json_t *o;
	json_int_t rev = 0;
	const char *shared = NULL;

	if (!g->cfg->has_cluster)
		return;
	shared_path(g->cfg, path, sizeof(path));
	if (gw_material_read(path, GW_CLUSTER_SHARED_MAX * 2, &m) < 0)
		return; /* none yet (ENOENT), or unreadable: the file alone */
	o = json_loadb((const char *)m.bytes, m.len, 0, NULL);
	gw_material_fini(&m);
	if (o == NULL || json_unpack(o, "{s:I,s:s}", "revision", &rev, "shared", &shared) < 0 ||
		rev < 1) {
		GW_LOG_WARN("%s is not a pushed revision: starting on %s alone", path, g->path);
		json_decref(o);
		return;
	}
	if (load_running(g->path, shared, &n, stderr) < 0) {
		GW_LOG_WARN("the fleet's config revision %lld (%s) no longer loads with %s "
			    "(errors above): starting on the file alone",
			(long long)rev, path, g->path);
	} else if ((g->tls.shared = strdup(shared)) != NULL) {
		GW_LOG_INFO("starting on the fleet's config revision %lld (kept in %s)",
			(long long)rev, path);
		gw_cfg_free(g->cfg);
		g->cfg = n;
		n = NULL;
		g->tls.shared_rev = (uint64_t)rev;
	}
	gw_cfg_free(n);
	json_decref(o);
}

/*
 * A pushed config revision the agent handed over: applied as a reload of
 * the file with the new shared part; reported either way. On a refusal the
 * running config (and shared part) stay.
 */
static void
fleet_config(struct tls_ctl *t)
{
	struct gw_gateway *g = t->gw;
	char source[48], msg[GW_ERR_MSG_MAX];
	uint64_t rev;
	char *shared = NULL;
	json_t *files = NULL;
	int rc;

	if (t->cluster == NULL || gw_cluster_take_config(t->cluster, &rev, &shared, &files) == 0)
		return;
	snprintf(source, sizeof(source), "cluster push, revision %" PRIu64, rev);
	rc = tls_reload_with(
		t, g->path, g->mesh.start ? g->mesh.start : g->cfg, source, NULL, shared, files);
	json_decref(files);
	if (rc == 0) {
		free(t->shared);
		t->shared = shared;
		t->shared_rev = rev;
		shared_save(t);
		snprintf(msg, sizeof(msg), "generation %" PRIu64, t->gen);
	} else {
		free(shared);
		snprintf(msg, sizeof(msg), "%s", gw_err_msg());
	}
	gw_cluster_config_report(t->cluster, rev, rc == 0, msg);
	gw_cluster_report(t->cluster, t->gen, t->fleet_serial);
}

static int sd_reload(struct tls_ctl *t, const char *source, json_t *errors);

/* ---- mesh: the admin API's callbacks (control/mesh.h) ---- */

static int
mesh_publish(void *arg)
{
	struct tls_ctl *t = arg;

	return t->pub != NULL ? tls_build_publish(t, t->cur) : 0;
}

static int
mesh_reload(void *arg, struct gw_admin_reload *r)
{
	struct tls_ctl *t = arg;
	struct gw_gateway *g = t->gw;
	int rc;

	g->mesh.force = r->force;
	rc = sd_reload(t, r->source, r->errors);
	g->mesh.force = false;
	r->generation = t->gen;
	return rc;
}

/*
 * Workers[{Id, Lcore, Generation, BusyCycles, Connections, MaxConnections}]
 * and TscHz: which snapshot each worker runs (issue 7), the cycles it spent
 * working, so BusyCycles / TscHz is its busy seconds (bench/run's
 * handshakes per server core-second, issue 6), and its connections against
 * the slots it started with (dataplane.tcp.max_connections, start-only).
 */
static void
status_workers(const struct tls_ctl *t, json_t *o)
{
	const struct gw_gateway *g = t->gw;
	const struct gw_cfg *sc = g->mesh.start ? g->mesh.start : g->cfg;
	json_t *w = json_array();
	struct gw_ctr_snap cs = {0};
	const struct gw_ctr_vals *conns = NULL;

	/* Connections: the worker's TCP connections in any state but CLOSED and LISTEN */
	if (g->mesh.dp != NULL && gw_dp_counters(g->mesh.dp, &cs) == 0)
		conns = gw_ctr_snap_group(&cs, "conns");
	for (unsigned i = 0; i < gw_dp_n_workers(g->mesh.dp); i++) {
		struct gw_dp_worker_info wi;
		uint64_t n = 0;
		json_t *e;

		if (gw_dp_worker_info(g->mesh.dp, i, &wi) < 0)
			continue;
		e = json_pack("{s:i,s:i,s:I}", "Id", (int)i, "Lcore", (int)wi.lcore, "BusyCycles",
			(json_int_t)wi.busy_cycles);
		json_object_set_new(e, "Generation", json_integer((json_int_t)wi.generation));
		json_object_set_new(e, "MaxConnections",
			json_integer((json_int_t)sc->dataplane.tcp.max_connections));
		for (unsigned k = 0; conns != NULL && k < conns->g->n; k++)
			if (conns->g->d[k].name != NULL &&
				strcasecmp(conns->g->d[k].name, "closed") != 0 &&
				strcasecmp(conns->g->d[k].name, "listen") != 0)
				n += conns->w[(size_t)i * conns->g->n + k];
		if (conns != NULL)
			json_object_set_new(e, "Connections", json_integer((json_int_t)n));
		json_array_append_new(w, e);
	}
	gw_ctr_snap_fini(&cs); /* zeroed if never read */
	json_object_set_new(o, "Workers", w);
	json_object_set_new(o, "TscHz", json_integer((json_int_t)gw_dp_tsc_hz(g->mesh.dp)));
}

static int
mesh_status(void *arg, json_t *o)
{
	struct tls_ctl *t = arg;
	const struct gw_cfg *cfg = t->cur ? t->cur : t->gw->mesh.start;
	json_t *l = json_array();

	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		const struct gw_cfg_listener *cl = &cfg->listeners[i];
		char ip[INET_ADDRSTRLEN] = "?", addr[INET_ADDRSTRLEN + 6];

		inet_ntop(AF_INET, &(struct in_addr){.s_addr = cl->addr.ip}, ip, sizeof(ip));
		snprintf(addr, sizeof(addr), "%s:%u", ip, ntohs(cl->addr.port));
		json_array_append_new(
			l, json_pack("{s:s,s:s,s:s,s:s}", "Name", cl->name, "Address", addr,
				   "Service", gw_cfg_service_name(cl->service), "Trust",
				   !cl->has_trust                    ? "none"
				   : cl->trust.mode == GW_TRUST_MESH ? "mesh"
				   : cl->trust.mode == GW_TRUST_CA   ? "ca"
								     : "pinned"));
	}
	json_object_set_new(o, "Listeners", l);
	json_object_set_new(o, "Generation", json_integer((json_int_t)t->gen));
	if (t->cluster != NULL) {
		json_t *c = json_object();

		if (c != NULL && gw_cluster_status(t->cluster, c) == 0)
			json_object_set_new(o, "Cluster", c);
		else
			json_decref(c);
	}
	status_workers(t, o);
	if (t->tdp != NULL) {
		json_object_set_new(o, "TLS",
			json_pack("{s:I,s:I}", "Established",
				(json_int_t)gw_tls_dp_stat(t->tdp, "established"), "Handshaking",
				(json_int_t)gw_tls_dp_stat(t->tdp, "handshaking")));
		json_object_set_new(o, "HSM",
			json_pack("{s:s?,s:I}", "Module", cfg->hsm.module, "SignatureFailures",
				(json_int_t)gw_tls_dp_stat(t->tdp, "hs_fail_hsm")));
	}
	return 0;
}

/*
 * GET /v1/metrics, the gateway's side (control/metrics.h): build info, the counters
 * (dataplane, TCP, TLS through its hook, busy seconds) rendered from the
 * same groups as the SIGUSR1 stats line, so metrics and line never disagree
 * on a name, then the snapshot generations. Certificate expiry follows
 * from mesh.
 */
static int
mesh_metrics(void *arg, struct gw_metrics *m)
{
	struct tls_ctl *t = arg;
	struct gw_dp *dp = t->gw->mesh.dp;
	struct gw_ctr_snap s;
	int rc;

	const char *dpdk = rte_version();

	/* "DPDK 22.11.4" -> "22.11.4", as OpenSSL's version string has no name */
	if (strncmp(dpdk, "DPDK ", 5) == 0)
		dpdk += 5;
	gw_metrics_build_info(m, GW_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING), dpdk);
	gw_metrics_simple(m, "mtlsgw_snapshot_generation", "gauge",
		"generation of the last published snapshot", (int64_t)t->gen);
	if (t->cluster != NULL) {
		gw_metrics_simple(m, "mtlsgw_cluster_etcd_up", "gauge",
			"1 when the fleet's etcd answered the agent's last turn",
			gw_cluster_etcd_up(t->cluster));
		gw_metrics_simple(m, "mtlsgw_cluster_leader", "gauge",
			"1 when this member leads the fleet (rotates the ticket keys)",
			gw_cluster_is_leader(t->cluster));
		gw_metrics_simple(m, "mtlsgw_cluster_ticket_serial", "gauge",
			"the fleet's session ticket key serial installed here",
			(int64_t)t->fleet_serial);
	}
	if (gw_hsm_async_running()) { /* what hsm.inline_below is compared with */
		static const char *const kind[2] = {"ec", "rsa"};
		unsigned us[2] = {gw_hsm_async_sign_us(false), gw_hsm_async_sign_us(true)};

		if (us[0] != UINT_MAX || us[1] != UINT_MAX)
			gw_metrics_family(m, "mtlsgw_hsm_sign_mean_seconds", "gauge",
				"running mean of the workers' recent HSM signatures by key type "
				"(each weighs 1/8)");
		for (int i = 0; i < 2; i++)
			if (us[i] != UINT_MAX)
				gw_metrics_sample_f(m, "mtlsgw_hsm_sign_mean_seconds",
					(const char *const[]){"key", kind[i]}, 1, us[i] / 1e6);
	}
	if (dp == NULL)
		return 0; /* not running yet: no counters */
	if ((rc = gw_dp_counters(dp, &s)) == 0)
		gw_metrics_counters(m, &s);
	gw_ctr_snap_fini(&s);
	GW_GUARD(rc);
	gw_metrics_family(m, "mtlsgw_worker_snapshot_generation", "gauge",
		"generation of the snapshot the worker last took");
	for (unsigned i = 0; i < gw_dp_n_workers(dp); i++) {
		struct gw_dp_worker_info wi;
		char w[16];

		if (gw_dp_worker_info(dp, i, &wi) < 0)
			continue;
		snprintf(w, sizeof(w), "%u", i);
		gw_metrics_sample(m, "mtlsgw_worker_snapshot_generation",
			(const char *const[]){"worker", w}, 1, (int64_t)wi.generation);
	}
	return 0;
}

/* The fleet's members for the rotation validators (mesh.h ops.fleet); NULL: one box. */
static json_t *
mesh_fleet(void *arg, bool *down, const char **self)
{
	struct tls_ctl *t = arg;

	if (t->cluster == NULL)
		return NULL;
	*down = !gw_cluster_etcd_up(t->cluster);
	*self = gw_cluster_node(t->cluster);
	return gw_cluster_fleet(t->cluster);
}

static int
mesh_start(struct tls_ctl *t, const struct gw_cfg *cfg)
{
	struct gw_gateway *g = t->gw;
	struct gw_mesh_params mp = {.pub = t->pub,
		.ops = {.arg = t,
			.publish = mesh_publish,
			.reload = mesh_reload,
			.status = mesh_status,
			.metrics = mesh_metrics,
			.fleet = mesh_fleet}};

	g->mesh.start = cfg;
	return gw_mesh_create(cfg, &mp, &g->mesh.m);
}

/*
 * Install the fleet's ticket keys the agent unsealed since the last look:
 * the previous one first, so both decrypt. 1 if the current key changed.
 */
static int
fleet_keys(struct tls_ctl *t)
{
	struct gw_cluster_tkeys ks;
	int rc = 0;

	if (t->cluster == NULL || t->ctl == NULL || gw_cluster_take_keys(t->cluster, &ks) == 0)
		return 0;
	if (ks.has_prev)
		rc = gw_tls_ctl_install(
			t->ctl, ks.prev.name, ks.prev.aes, ks.prev.hmac, (time_t)ks.prev.created);
	if (rc >= 0)
		rc = gw_tls_ctl_install(
			t->ctl, ks.cur.name, ks.cur.aes, ks.cur.hmac, (time_t)ks.cur.created);
	if (rc >= 0)
		t->fleet_serial = ks.serial;
	OPENSSL_cleanse(&ks, sizeof(ks));
	if (rc == 1)
		GW_LOG_INFO("fleet session ticket key %" PRIu64 " installed", t->fleet_serial);
	return rc;
}

/*
 * The other members' mesh CA roots changed (their seals checked by the
 * agent): mesh listeners trust them from a new snapshot.
 */
static void
fleet_roots(struct tls_ctl *t)
{
	struct gw_gateway *g = t->gw;
	char *pem;
	int rc;

	if (t->cluster == NULL || g->mesh.m == NULL)
		return;
	pem = gw_cluster_fleet_roots(t->cluster);
	rc = gw_mesh_set_fleet_roots(g->mesh.m, pem);
	free(pem);
	if (rc < 0) {
		GW_LOG_ERR("the fleet's mesh roots not taken: %s", gw_err_msg());
	} else if (rc == 1 && t->pub != NULL) {
		if (tls_build_publish(t, t->cur ? t->cur : g->cfg) == 0) {
			GW_LOG_INFO("mesh listeners trust the fleet's roots as now reported "
				    "(generation %" PRIu64 ")",
				t->gen);
		} else {
			GW_LOG_ERR("the fleet's mesh roots: %s; retried", gw_err_msg());
			rc = gw_mesh_set_fleet_roots(g->mesh.m, NULL); /* changed again next tick */
			(void)rc;
		}
	}
}

/*
 * cluster: join the fleet before the listeners accept (gw_cluster_start
 * waits for the fleet's ticket keys, bounded), and install its keys.
 */
static int
cluster_start(struct tls_ctl *t, const struct gw_cfg *cfg)
{
	struct gw_hsm_params hp = {
		.module = cfg->hsm.module,
		.pin_file = cfg->hsm.pin_file,
		.pin_env = cfg->hsm.pin_env,
	};
	unsigned lifetime = 0;
	struct gw_cluster_params cp = {
		.cfg = &cfg->cluster,
		.hsm = &hp,
		.config_revision = t->shared_rev,
		.join_timeout_ms = 3 * (cfg->cluster.timeout_ms ? cfg->cluster.timeout_ms : 2000),
	};

	if (!cfg->has_cluster)
		return 0;
	/* the leader rotates every (smallest) ticket lifetime, as one box would */
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		unsigned l =
			cfg->listeners[i].has_tls ? cfg->listeners[i].tls.ticket_lifetime_s : 0;

		if (l != 0 && (lifetime == 0 || l < lifetime))
			lifetime = l;
	}
	cp.ticket_lifetime_s = lifetime;
	t->starting = "cluster";
	GW_GUARD(gw_cluster_start(&cp, &t->cluster));
	if (fleet_keys(t) < 0)
		return -1;
	gw_cluster_report(t->cluster, t->gen, t->fleet_serial);
	fleet_config(t); /* the fleet's config and roots, before the listeners accept */
	fleet_roots(t);
	return 0;
}

/* Once a second on the main lcore. */
static void
tls_tick(struct tls_ctl *t)
{
	time_t now = gw_now(t->gw);
	int64_t fails;
	int rc;

	if (t->pub == NULL)
		return;
	gw_snap_pub_reclaim(t->pub, false);
	if (t->ctl == NULL)
		return; /* no TLS listeners: no ticket keys, no HSM */
	if (t->cluster != NULL)
		rc = fleet_keys(t); /* the leader rotates for the fleet */
	else
		rc = gw_tls_ctl_rotate(t->ctl, now, false);
	if (rc == 1 && t->cluster == NULL)
		GW_LOG_INFO("session ticket key rotated (key %" PRIu64 ")",
			gw_tls_ctl_key_serial(t->ctl));
	else if (rc < 0) /* the current key stays: tickets still work, rotation is retried */
		GW_LOG_ERR("session ticket key not rotated: %s", gw_err_msg());
	/*
	 * Signatures failing in the HSM (token gone, key deleted): load the
	 * keys again through a new snapshot, every 5 s while failures go on,
	 * so the workers recover without a restart once the token is back.
	 */
	fails = gw_tls_dp_stat(t->tdp, "hs_fail_hsm");
	if (fails > t->hsm_fails && now >= t->hsm_retry) {
		t->hsm_retry = now + 5;
		if (tls_build_publish(t, t->cur) == 0)
			GW_LOG_WARN("HSM: %" PRId64 " signature failure(s); listener keys "
				    "reloaded from the token (generation %" PRIu64 ")",
				fails - t->hsm_fails, t->gen);
		else
			GW_LOG_ERR("HSM: signatures fail and the keys cannot be reloaded: %s",
				gw_err_msg());
		t->hsm_fails = fails;
	}
}

/* ---- systemd: sd_notify (Type=notify), the watchdog ---- */

static uint64_t
mono_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * "3 listener(s), 2 worker(s), generation 4, 12 connection(s)"
 * (established TCP), then "; <how the last reload went>".
 */
static void
sd_summary(const struct gw_gateway *g, char *buf, size_t len)
{
	int64_t conns = 0;

	if (g->mesh.dp != NULL) {
		struct gw_err saved = *gw_err_get(); /* a reload's error is the caller's */
		struct gw_ctr_snap s;

		if (gw_dp_counters(g->mesh.dp, &s) == 0)
			conns = gw_ctr_snap_get(&s, "conns", "ESTABLISHED");
		gw_ctr_snap_fini(&s);
		*gw_err_get() = saved;
	}
	snprintf(buf, len,
		"%u listener(s), %u worker(s), generation %" PRIu64 ", %" PRId64
		" connection(s)%s%s",
		g->params.n_listeners + g->tls.dpp.n_listeners, g->params.n_workers, g->tls.gen,
		conns < 0 ? 0 : conns, g->sd.reload[0] != '\0' ? "; " : "", g->sd.reload);
}

/*
 * STATUS=<summary>, when it changed (the tick: at most once a second), a
 * minute went by, or force.
 */
static void
sd_status(struct gw_gateway *g, bool force)
{
	char line[sizeof(g->sd.status)];
	time_t now = time(NULL);

	if (!g->sd.ready)
		return;
	sd_summary(g, line, sizeof(line));
	if (!force && strcmp(line, g->sd.status) == 0 && now - g->sd.status_at < 60)
		return;
	memcpy(g->sd.status, line, sizeof(line));
	g->sd.status_at = now;
	sd_notifyf(0, "STATUS=%s", line);
}

/*
 * READY=1 once the gateway serves: every listener bound on every worker
 * (gw_dp_start waited for them) and the admin API up. Reads the watchdog
 * interval; progress is counted from here.
 */
static void
sd_ready(struct gw_gateway *g)
{
	uint64_t usec = 0;
	int rc;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return; /* not a systemd service: nothing to tell */
	rc = sd_watchdog_enabled(0, &usec);
	if (rc < 0)
		GW_LOG_WARN("systemd: WATCHDOG_USEC is not a number of microseconds (%s): no "
			    "watchdog pings",
			strerror(-rc));
	g->sd.wd_usec = rc > 0 ? usec : 0;
	for (unsigned w = 0; w < gw_dp_n_workers(g->mesh.dp); w++) {
		struct gw_dp_worker_info wi;

		if (gw_dp_worker_info(g->mesh.dp, w, &wi) == 0)
			g->sd.loops[w] = wi.loops;
	}
	g->sd.wd_next = mono_usec() + g->sd.wd_usec / 2;
	g->sd.ready = true;
	sd_summary(g, g->sd.status, sizeof(g->sd.status));
	g->sd.status_at = time(NULL);
	sd_notifyf(0, "READY=1\nSTATUS=%s", g->sd.status);
	if (g->sd.wd_usec != 0)
		GW_LOG_INFO("systemd: watchdog every %.1f s, fed while every worker makes progress",
			(double)g->sd.wd_usec / 2e6);
}

/*
 * A reload (SIGHUP, POST /v1/reload) as the service manager sees it:
 * RELOADING=1 before, READY=1 after, whatever the outcome, and STATUS=
 * saying which. The reload's error stays in gw_err for the caller.
 */
static int
sd_reload(struct tls_ctl *t, const char *source, json_t *errors)
{
	struct gw_gateway *g = t->gw;
	int rc;

	if (g->sd.ready)
		sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading %s",
			mono_usec(), g->mesh.path);
	rc = tls_reload(t, g->mesh.path, g->mesh.start, source, errors);
	if (!g->sd.ready)
		return rc;
	if (rc == 0)
		snprintf(g->sd.reload, sizeof(g->sd.reload), "reloaded");
	else
		snprintf(g->sd.reload, sizeof(g->sd.reload), "reload refused (%s)", gw_err_msg());
	for (char *c = g->sd.reload; *c != '\0'; c++) /* STATUS is one line */
		if (*c == '\n')
			*c = ' ';
	sd_notify(0, "READY=1");
	sd_status(g, true);
	return rc;
}

void
gw_gateway_watchdog(struct gw_gateway *g)
{
	bool progress = true;
	uint64_t now;

	if (g == NULL || !g->sd.ready || g->sd.wd_usec == 0 || (now = mono_usec()) < g->sd.wd_next)
		return;
	g->sd.wd_next = now + g->sd.wd_usec / 2;
	for (unsigned w = 0; w < gw_dp_n_workers(g->mesh.dp); w++) {
		struct gw_dp_worker_info wi;
		uint64_t bit = UINT64_C(1) << w;

		if (gw_dp_worker_info(g->mesh.dp, w, &wi) < 0)
			continue;
		if (wi.loops != g->sd.loops[w]) {
			if (g->sd.stalled & bit)
				GW_LOG_INFO("watchdog: worker %u (lcore %u) makes progress again",
					w, wi.lcore);
			g->sd.stalled &= ~bit;
			g->sd.loops[w] = wi.loops;
			continue;
		}
		progress = false;
		if (!(g->sd.stalled & bit)) { /* once per stall */
			GW_LOG_WARN("watchdog: worker %u (lcore %u) made no progress in %.1f s: no "
				    "more watchdog pings, systemd restarts the service when "
				    "WatchdogSec= runs out",
				w, wi.lcore, (double)g->sd.wd_usec / 2e6);
			g->sd.stalled |= bit;
		}
	}
	if (progress)
		sd_notify(0, "WATCHDOG=1");
}

/* ---- the gateway's life (gateway.h) ---- */

/* Say which part of the start failed: "<what>: <message>". Returns the code. */
static int
err_prefix(const char *what)
{
	struct gw_err *e = gw_err_get();
	char msg[GW_ERR_MSG_MAX];

	snprintf(msg, sizeof(msg), "%s", gw_err_msg());
	return gw_err_setf(e->code, e->where, "%s: %s", what, msg);
}

int
gw_gateway_create(const struct gw_gateway_params *p, struct gw_gateway **out)
{
	struct gw_gateway *g;

	GW_ENSURE(p != NULL && p->config != NULL && out != NULL, -EINVAL);
	g = calloc(1, sizeof(*g));
	if (g == NULL || (g->path = strdup(p->config)) == NULL) {
		free(g);
		return gw_err_setf(-ENOMEM, GW_HERE, "gateway: out of memory");
	}
	g->p = *p;
	g->p.config = g->path;
	g->tls.gw = g;
	g->mesh.path = g->path;
	/* before the first certificate is parsed (gw_ossl.h); without it the
	 * gateway is slower, not wrong */
	if (gw_ossl_ec_builtin() < 0)
		GW_LOG_WARN("%s; EC keys take OpenSSL 3.0's slower provider path", gw_err_msg());
	/* the loader prints every error it finds, FILE:LINE: FIELD: why */
	if (gw_cfg_load(g->path, &g->cfg, stderr) < 0) {
		gw_err_setf(-GW_E_CONFIG, GW_HERE,
			"%s: config rejected (errors above), nothing started", g->path);
		goto fail;
	}
	for (unsigned i = 0; i < g->cfg->n_warnings; i++)
		GW_LOG_WARN("%s", g->cfg->warnings[i]);
	shared_restore(g);
	g->tls.cur = g->cfg;
	g->mesh.start = g->cfg;
	if (gw_gateway_translate(g->cfg, &g->params, &g->tls.dpp) < 0)
		goto fail;
	g->params.verbose = p->verbose;
	*out = g;
	return 0;
fail : {
	int rc = gw_err_get()->code;

	gw_gateway_destroy(g);
	return rc;
}
}

int
gw_gateway_eal_cmdline(const struct gw_gateway *g, char *buf, size_t len)
{
	GW_ENSURE(g != NULL, -EINVAL);
	return gw_dp_eal_cmdline(&g->params, g->p.prog ? g->p.prog : "mtlsgw", buf, len);
}

int
gw_gateway_start(struct gw_gateway *g)
{
	GW_ENSURE(g != NULL && !g->eal_up && g->mesh.m == NULL, -EINVAL);
	/*
	 * hsm.env (SOFTHSM2_CONF ...) before anything loads the PKCS#11 module,
	 * so a service does not depend on an inherited variable; the reload's
	 * PIN-check child inherits it. A PIN variable is read (and unset,
	 * hsm.h) here too: both before the EAL starts threads that could read
	 * the environment while it changes.
	 */
	for (unsigned i = 0; i < g->cfg->hsm.n_env; i++)
		if (setenv(g->cfg->hsm.env[i].name, g->cfg->hsm.env[i].value, 1) < 0)
			return gw_err_setf(-errno, GW_HERE, "hsm.env.%s: %s",
				g->cfg->hsm.env[i].name, strerror(errno));
	if (g->cfg->hsm.pin_env != NULL) {
		char pin[GW_HSM_PIN_MAX];
		int prc = gw_hsm_pin_read(NULL, g->cfg->hsm.pin_env, pin);

		OPENSSL_cleanse(pin, sizeof(pin));
		GW_GUARD(prc);
	}
	CPU_ZERO(&g->start_cpus);
	pthread_getaffinity_np(pthread_self(), sizeof(g->start_cpus), &g->start_cpus);
	if (!g->p.no_dataplane) {
		GW_GUARD(gw_dp_eal_init(&g->params, g->p.prog ? g->p.prog : "mtlsgw"));
		g->eal_up = true;
	}
	/* the workers' access log rings, before the TLS hooks take them */
	if (g->tls.dpp.n_listeners > 0 || g->params.n_listeners > 0) {
		GW_GUARD(gw_access_log_create(g->cfg, g->params.n_workers, 0, &g->alog));
		for (unsigned w = 0; w < g->params.n_workers; w++)
			g->tls.dpp.alog[w] = g->params.alog[w] = gw_access_log_ring(g->alog, w);
	}
	/* every config: the snapshots and the admin API (status, reload) */
	if (tls_start(&g->tls, g->cfg, &g->params) < 0 || cluster_start(&g->tls, g->cfg) < 0)
		return err_prefix(g->tls.starting);
	if (g->p.no_dataplane) {
		sd_ready(g); /* control only: nothing else to wait for */
		return 0;
	}
	GW_GUARD(gw_dp_start(&g->params, &g->mesh.dp));
	gw_log_banner("running: %u worker(s), %u port(s), %u listener(s)", g->params.n_workers,
		g->params.n_ports, g->params.n_listeners + g->tls.dpp.n_listeners);
	/* the ports are up and every worker listens (gw_dp_start waited for them) */
	sd_ready(g);
	return 0;
}

/* Control's monotonic clock in ms (the access log's rate windows). */
static uint64_t
mono_ms(void)
{
	return mono_usec() / 1000;
}

int
gw_gateway_reload(struct gw_gateway *g)
{
	int rc;

	GW_ENSURE(g != NULL, -EINVAL);
	rc = sd_reload(&g->tls, "SIGHUP", NULL);
	/* SIGHUP also means "logrotate moved the file": reopen with the config
	 * that runs now (the new one, or the old one if the reload was refused) */
	if (g->alog != NULL) {
		gw_access_log_drain(g->alog, mono_ms()); /* the old file's last lines */
		if (gw_access_log_reopen(g->alog, gw_gateway_config(g)) < 0)
			GW_LOG_ERR("SIGHUP: %s; the access log keeps its previous destination",
				gw_err_msg());
	}
	return rc;
}

int
gw_gateway_run(struct gw_gateway *g, int timeout_ms)
{
	time_t now;
	int rc;

	GW_ENSURE(g != NULL && g->mesh.m != NULL, -EINVAL);
	rc = gw_mesh_run(g->mesh.m, timeout_ms);
	gw_access_log_drain(g->alog, mono_ms());
	if (rc >= 0) {
		g->run_err = 0;
		return 0;
	}
	/* a broken admin socket fails on every call: say so once a minute, not 5 times a second */
	now = gw_now(g);
	if (rc != g->run_err || now - g->run_err_logged >= 60) {
		GW_LOG_ERR("admin API: %s; serving packets, retrying", strerror(-rc));
		g->run_err = rc;
		g->run_err_logged = now;
	}
	return rc;
}

void
gw_gateway_tick(struct gw_gateway *g)
{
	if (g == NULL)
		return;
	tls_tick(&g->tls);
	if (g->tls.cluster != NULL) {
		json_t *r = g->mesh.m != NULL ? json_object() : NULL;

		fleet_config(&g->tls);
		gw_cluster_report(g->tls.cluster, g->tls.gen, g->tls.fleet_serial);
		if (r != NULL && gw_mesh_fleet_report(g->mesh.m, r) == 0)
			gw_cluster_report_mesh(g->tls.cluster, r); /* consumed */
		else
			json_decref(r);
		fleet_roots(&g->tls);
	}
	gw_access_log_drain(g->alog, mono_ms());
	sd_status(g, false);
}

void
gw_gateway_stats_json(const struct gw_gateway *g, FILE *f)
{
	if (g != NULL && g->mesh.dp != NULL)
		gw_dp_stats_json(g->mesh.dp, f);
}

int
gw_gateway_status(struct gw_gateway *g, json_t *o)
{
	GW_ENSURE(g != NULL && o != NULL, -EINVAL);
	return mesh_status(&g->tls, o);
}

int
gw_gateway_metrics(struct gw_gateway *g, struct gw_metrics *m)
{
	GW_ENSURE(g != NULL && m != NULL, -EINVAL);
	return mesh_metrics(&g->tls, m);
}

uint64_t
gw_gateway_generation(const struct gw_gateway *g)
{
	return g != NULL ? g->tls.gen : 0;
}

const struct gw_cfg *
gw_gateway_config(const struct gw_gateway *g)
{
	return g == NULL ? NULL : g->tls.cur != NULL ? g->tls.cur : g->cfg;
}

const struct gw_snapshot *
gw_gateway_snapshot(const struct gw_gateway *g)
{
	return g != NULL && g->tls.pub != NULL ? gw_snap_current(g->tls.pub) : NULL;
}

const struct gw_dp_params *
gw_gateway_dp_params(const struct gw_gateway *g)
{
	return g != NULL ? &g->params : NULL;
}

const struct gw_tls_dp_params *
gw_gateway_tls_params(const struct gw_gateway *g)
{
	return g != NULL ? &g->tls.dpp : NULL;
}

uint64_t
gw_gateway_ticket_key_serial(const struct gw_gateway *g)
{
	return g != NULL && g->tls.ctl != NULL ? gw_tls_ctl_key_serial(g->tls.ctl) : 0;
}

void
gw_gateway_destroy(struct gw_gateway *g)
{
	if (g == NULL)
		return;
	if (g->sd.ready)
		sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	gw_dp_stop(g->mesh.dp);
	g->mesh.dp = NULL;
	/* the workers are gone: their last records (connections cut by the stop) */
	gw_access_log_drain(g->alog, mono_ms());
	gw_access_log_destroy(g->alog);
	g->alog = NULL;
	gw_cluster_stop(g->tls.cluster); /* leaves the fleet: member key and leadership */
	g->tls.cluster = NULL;
	free(g->tls.shared);
	tls_stop(&g->tls, g->cfg);
	if (g->eal_up)
		gw_dp_eal_cleanup();
	gw_cfg_free(g->cfg);
	free(g->path);
	free(g);
}

void
gw_gateway_set_time(struct gw_gateway *g, time_t now)
{
	if (g != NULL)
		g->now = now;
}

int
gw_gateway_fail_at(struct gw_gateway *g, enum gw_gateway_step step)
{
	GW_ENSURE(g != NULL, -EINVAL);
#ifdef GW_TEST_HOOKS
	g->fail_at = step;
	return 0;
#else
	(void)step;
	return gw_err_setf(-ENOTSUP, GW_HERE, "reload fault injection needs -Dtest_hooks=true");
#endif
}
