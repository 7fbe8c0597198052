/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * gateway.h - the running gateway: what `mtlsgw --config FILE` is, minus
 * argument parsing and the signal loop (tools/mtlsgw.c).
 *
 * A struct gw_gateway owns the start config, the dataplane's params
 * translated from it (the dataplane never sees YAML), the EAL, the TLS
 * control side (HSM handle, ticket keys, the snapshot publisher), the mesh
 * control plane (CA backends, admin API) and the running dataplane:
 *
 *	gw_gateway_create()   load + validate the config, translate it
 *	gw_gateway_start()    EAL, publisher + first snapshot (TLS: HSM, tickets), mesh/admin API, ports, workers
 *	loop: gw_gateway_run()     admin API, up to timeout_ms
 *	      gw_gateway_watchdog() every turn: systemd's watchdog, while workers progress
 *	      gw_gateway_tick()    once a second: ticket keys, reclaim, HSM recovery
 *	      gw_gateway_reload()  SIGHUP: all or nothing
 *	gw_gateway_destroy()  stop workers, ports, TLS, mesh, EAL; free
 *
 * Reload: the file is loaded and validated beside the running config; if
 * it is good and compatible (same listeners: names, addresses, services;
 * the ports and stacks are set up at start), the CA change is staged, a new
 * snapshot (TLS identities with their HSM keys, trust, upstreams) is built,
 * the CA change committed and the snapshot published: new connections use
 * it, established ones keep theirs. Any failure before the commit leaves
 * the CA, its store, the running config and snapshot exactly as they were.
 *
 * systemd (a Type=notify service, sd_notify(3); nothing is sent without
 * NOTIFY_SOCKET): READY=1 when gw_gateway_start has every listener served
 * by every worker; STATUS= "3 listener(s), 2 worker(s), generation 4, 12
 * connection(s)" and how the last reload went, refreshed by the tick when
 * it changes; RELOADING=1 before each reload (SIGHUP or POST /v1/reload)
 * and READY=1 after it, refused or not; WATCHDOG=1 (gw_gateway_watchdog);
 * STOPPING=1 when gw_gateway_destroy begins.
 *
 * Logging: through gw_log.h (module "gateway"); errors also stay in gw_err.
 *
 * Threading: every function runs on the control thread (the main lcore),
 * which never touches a packet. One gateway per process (the EAL is).
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "dataplane.h"
#include "gw_err.h"
#include "metrics.h"
#include "tls_dp.h"

struct gw_gateway_params {
	const char *config; /* the config file; copied; reloads read it again */
	const char *prog;   /* argv[0], for the EAL; borrowed until destroy */
	bool verbose;       /* the EAL argv and DPDK's info messages */
	/*
	 * Tests: control only (TLS, snapshots, mesh and admin API, reload,
	 * tick, status, metrics), no EAL, no ports, no workers.
	 */
	bool no_dataplane;
};

struct gw_gateway;

/*
 * Load and validate p->config (the loader prints every error it finds,
 * FILE:LINE: FIELD: why, on stderr) and translate it into the dataplane's
 * params. Starts nothing. Returns 0 and *out, -EINVAL, -ENOMEM,
 * -GW_E_CONFIG (rejected, message in gw_err_msg()).
 */
GW_MUST_CHECK int gw_gateway_create(const struct gw_gateway_params *p, struct gw_gateway **out);

/*
 * The EAL argv gw_gateway_start would use (mtlsgw --print-eal).
 * 0, -EINVAL, -ENOSPC.
 */
GW_MUST_CHECK int gw_gateway_eal_cmdline(const struct gw_gateway *g, char *buf, size_t len);

/*
 * Read the PIN variable (hsm.h: it is unset then), start the EAL, the TLS
 * control side and the first snapshot, the mesh control plane and admin
 * API, then the ports and workers. The caller blocks the signals it waits
 * for (sigtimedwait) before, so the EAL's threads inherit the mask. Once.
 * Returns 0, or the failing step's error with a message (everything
 * started so far is stopped again by gw_gateway_destroy).
 */
GW_MUST_CHECK int gw_gateway_start(struct gw_gateway *g);

/*
 * Reload the config file (SIGHUP; the admin API's POST /v1/reload does the
 * same with its force flag). All or nothing (see above). 0 reloaded, else
 * the refusing step's error (-GW_E_CONFIG for an incompatible or invalid
 * file) with gw_err_msg(); the running config and snapshot are unchanged,
 * except for the one case logged as such: the CA change was committed and
 * the snapshot could not be published.
 */
int gw_gateway_reload(struct gw_gateway *g);

/*
 * Serve the admin API and the mesh's timed work, waiting up to timeout_ms
 * for a request. 0 after waiting; negative (logged, at most once a minute
 * per error) when the admin API failed and the caller must wait itself.
 */
int gw_gateway_run(struct gw_gateway *g, int timeout_ms);

/*
 * Once a second: reclaim replaced snapshots; with TLS listeners, rotate the
 * session ticket key when it is due, and while HSM signatures fail reload
 * the listener keys through a new snapshot (every 5 s); systemd's STATUS=.
 */
void gw_gateway_tick(struct gw_gateway *g);

/*
 * Every turn of the control loop (at most a few hundred ms apart): when
 * the service manager asked for a watchdog (sd_watchdog_enabled: the
 * unit's WatchdogSec=), every half interval send WATCHDOG=1 if each worker
 * made progress (its loop counter, gw_dp_worker_info.loops, moved) since
 * the last check; a worker that did not is named in one warning and no
 * ping is sent, so systemd restarts a gateway whose worker is stuck.
 * Nothing otherwise. NULL ok.
 */
void gw_gateway_watchdog(struct gw_gateway *g);

/* The counters JSON line (SIGUSR1, and at stop) on f. Nothing before start. */
void gw_gateway_stats_json(const struct gw_gateway *g, FILE *f);

/*
 * The gateway's side of GET /v1/status into o: Listeners[{Name, Trust}],
 * Generation, Workers[{Id, Lcore, Generation, BusyCycles, Connections,
 * MaxConnections}], TscHz, and with
 * TLS listeners TLS{Established, Handshaking}, HSM{SignatureFailures}.
 * 0 (o borrowed, members added).
 */
int gw_gateway_status(struct gw_gateway *g, json_t *o);

/*
 * The gateway's side of GET /v1/metrics into m: mtlsgw_snapshot_generation,
 * then once running the counters of the stats line, per-worker snapshot
 * generations and busy seconds. 0, -ENOMEM, or the renderer's error.
 */
GW_MUST_CHECK int gw_gateway_metrics(struct gw_gateway *g, struct gw_metrics *m);

/* Generation of the last published snapshot (0: none yet). */
uint64_t gw_gateway_generation(const struct gw_gateway *g);

/* The running config (the start one until a reload); borrowed until the next reload. */
const struct gw_cfg *gw_gateway_config(const struct gw_gateway *g);

/*
 * The current snapshot: the listener table every worker reads (plain and
 * TLS listeners, in config order, with their upstreams), NULL before start.
 * Borrowed: valid on the control thread until the next publish or reclaim
 * (a reload, the tick, an admin API call).
 */
const struct gw_snapshot *gw_gateway_snapshot(const struct gw_gateway *g);

/* The dataplane's params from the start config (and the TLS listeners'). Borrowed. */
const struct gw_dp_params *gw_gateway_dp_params(const struct gw_gateway *g);
const struct gw_tls_dp_params *gw_gateway_tls_params(const struct gw_gateway *g);

/* Session ticket keys made so far (0 without TLS listeners). */
uint64_t gw_gateway_ticket_key_serial(const struct gw_gateway *g);

/* Stop everything started (workers, ports, TLS, mesh, EAL) and free. NULL ok. */
void gw_gateway_destroy(struct gw_gateway *g);

/* ---- pure helpers, public for their tests ---- */

/*
 * Translate cfg into the dataplane's params p and the TLS listeners' tp
 * (both zeroed first; p/tp point into cfg, which must outlive them): what
 * the workers bind, each listener with its index in the snapshot (config
 * order); what listeners do (upstreams ...) is the snapshot's. p->pub is
 * set by gw_gateway_start. 0, or -GW_E_CONFIG (more workers, ports or
 * listeners than this build has room for), with a message.
 */
GW_MUST_CHECK int gw_gateway_translate(
	const struct gw_cfg *cfg, struct gw_dp_params *p, struct gw_tls_dp_params *tp);

/*
 * Can the dataplane started from o take n? Same listeners: count, names,
 * addresses, services; the same cluster section, key for key (read at
 * start only). 0, or -GW_E_CONFIG naming what needs a restart.
 */
GW_MUST_CHECK int gw_gateway_reload_compatible(const struct gw_cfg *o, const struct gw_cfg *n);

/* ---- tests ---- */

/* Pretend the time is now (0: the clock), for the tick's schedule. */
void gw_gateway_set_time(struct gw_gateway *g, time_t now);

/* The steps of a reload, in order (gw_gateway_fail_at). */
enum gw_gateway_step {
	GW_GATEWAY_STEP_NONE,
	GW_GATEWAY_STEP_PREPARE, /* the CA change staged (gw_mesh_prepare) */
	GW_GATEWAY_STEP_BUILD,   /* the snapshot built */
	GW_GATEWAY_STEP_COMMIT,  /* the CA change committed */
	GW_GATEWAY_STEP_PUBLISH, /* the snapshot published */
};

/*
 * -Dtest_hooks=true builds only: the next reloads fail at step with -EIO
 * as if it had failed there (STEP_PUBLISH: every publish, the tick's
 * too; STEP_NONE: off). 0, -EINVAL; -ENOTSUP in other builds.
 */
int gw_gateway_fail_at(struct gw_gateway *g, enum gw_gateway_step step);

#endif /* GW_GATEWAY_H */
