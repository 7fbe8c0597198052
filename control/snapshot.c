/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * snapshot.c - compile a struct gw_cfg into a new snapshot (snapshot.h):
 * each listener's name, address, service, upstreams, its trust (built here
 * or by the ext's trust_build) and its TLS side (the ext's listener_init).
 * The snapshot object itself, its references and its publisher are
 * policy's (policy/snap.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

static int
listener_build(const struct gw_snapshot_ext *ext, const struct gw_cfg_listener *lc,
	struct gw_snap_listener *l)
{
	int rc;

	l->name = strdup(lc->name ? lc->name : "");
	if (l->name == NULL)
		return gw_err_set(-ENOMEM, GW_HERE);
	l->addr.ip = lc->addr.ip;
	l->addr.port = lc->addr.port;
	l->service = lc->service;
	l->backlog = lc->backlog;
	l->has_tls = lc->has_tls;
	l->tls_min_version = lc->has_tls ? lc->tls.min_version : 0;
	l->client_auth = lc->has_tls ? lc->tls.client_auth : GW_CLIENT_AUTH_NONE;
	if (lc->has_upstream && lc->upstream.n_servers > 0) {
		l->upstreams = calloc(lc->upstream.n_servers, sizeof(*l->upstreams));
		if (l->upstreams == NULL)
			return gw_err_set(-ENOMEM, GW_HERE);
		for (unsigned i = 0; i < lc->upstream.n_servers; i++) {
			l->upstreams[i].ip = lc->upstream.servers[i].ip;
			l->upstreams[i].port = lc->upstream.servers[i].port;
		}
		l->n_upstreams = lc->upstream.n_servers;
		l->proxy_protocol = lc->upstream.proxy_protocol;
	}
	if (lc->has_trust) {
		if (ext != NULL && ext->trust_build != NULL)
			rc = ext->trust_build(ext->arg, lc, &l->trust);
		else
			rc = gw_trust_create(&lc->trust, lc->name, &l->trust);
		if (rc < 0) {
			char msg[GW_ERR_MSG_MAX];

			snprintf(msg, sizeof(msg), "%s", gw_err_msg());
			return gw_err_setf(rc, GW_HERE, "listener '%s' trust: %s", l->name, msg);
		}
	}
	if (ext != NULL && ext->listener_init != NULL)
		GW_GUARD(ext->listener_init(ext->arg, lc, l));
	return 0;
}

int
gw_snapshot_build(const struct gw_cfg *cfg, uint64_t generation, const struct gw_snapshot_ext *ext,
	struct gw_snapshot **out)
{
	struct gw_snapshot *s = NULL;
	int rc;

	GW_ENSURE(cfg != NULL && out != NULL && generation > 0, -EINVAL);
	GW_GUARD(gw_snapshot_create(generation, cfg->n_listeners,
		ext != NULL ? ext->listener_fini : NULL, ext != NULL ? ext->arg : NULL, &s));
	for (unsigned i = 0; i < cfg->n_listeners; i++) {
		/* counted by _add, so a failure half-way frees what was made */
		rc = listener_build(ext, &cfg->listeners[i], gw_snapshot_listener_add(s));
		if (rc < 0)
			goto out;
	}
	gw_snapshot_seal(s);
	*out = s;
	s = NULL;
	rc = 0;
out:
	gw_snapshot_destroy(s);
	return rc;
}
