/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cluster_cfg.h - the fleet's shared config: what `mtlsgw-ctl cluster push`
 * stores and every member applies (docs/operations.md, "Fleet").
 *
 * The shared part of a config file is its top-level `listeners:` and
 * `mtls:` blocks, as written (block style: each block runs from its key at
 * column 0 to the next key at column 0). A member's running config is its
 * own file with those blocks replaced by the pushed ones, so what stays per
 * box (ports, dataplane, hsm, admin, state_dir, cluster) stays in the
 * box's file, and a SIGHUP reload keeps the pushed part. Paths in the
 * shared part resolve as in the member's own file (relative ones against
 * its directory): the files must be on every box. The push records, per
 * field, the path and SHA-256 of each trust file it read (anchors, pins,
 * CRLs, provided CA certificates), so a member whose copy differs (or is
 * missing) refuses the revision instead of serving other trust. Identity
 * certificates are each box's own (each box has its own key in its own
 * token): not compared; the reload checks each against its key.
 *
 * /mtlsgw/<name>/config holds one revision:
 *   {"revision":N, "pushed_at":T, "pushed_by":"host", "shared":"<yaml>",
 *    "files":{"<field>":{"path","sha256"},...}, "seal":"<base64>"}
 * (field: "listeners[web].trust.certs[0]", "mtls.backends[ca-1].conf.cert")
 * seal is gw_hsm_seal of the digest below under the fleet's wrapping key
 * (cluster.ticket_key), associated data "mtlsgw/<name>/config/<N>": a
 * member opens it and compares, so a value changed in etcd, or an old one
 * put back under another revision, is refused. The pusher writes N = one
 * more than both the stored revision and any revision a member reports
 * (so a value put back by hand or a deleted key never makes the next push
 * look stale), with a compare on the key's etcd revision, so two pushes
 * at once cannot both land.
 */
#ifndef GW_CLUSTER_CFG_H
#define GW_CLUSTER_CFG_H

#include <stdint.h>

#include <jansson.h>

#include "config.h"
#include "etcd.h"
#include "gw_err.h"
#include "hsm.h"

#define GW_CLUSTER_SHARED_MAX (1u << 20) /* largest shared part, bytes */

/*
 * The shared part of a config file's text: its top-level listeners: and
 * mtls: blocks, verbatim, in file order, into *shared (malloc'd). -EINVAL
 * (with a message) when text has no listeners: block, a flow-style or
 * repeated one, or several YAML documents; -ENOMEM.
 */
GW_MUST_CHECK int gw_cluster_shared_extract(const char *text, char **shared);

/* text with its own top-level listeners: and mtls: blocks replaced by shared, into *out. */
GW_MUST_CHECK int gw_cluster_shared_merge(const char *text, const char *shared, char **out);

/*
 * {field: {path, sha256 hex}} of every trust file the listeners and mtls
 * parts of cfg read (trust anchors, pins, CRLs, provided CA
 * certificates). New reference, NULL on ENOMEM.
 */
json_t *gw_cluster_shared_files(const struct gw_cfg *cfg);

/*
 * 0 when cfg read each field's file of files (gw_cluster_shared_files on
 * the pusher) with the same content, wherever it lives on this box; else
 * -GW_E_CONFIG naming the first field whose file differs ("... differs
 * from the pushed one ...: copy it to this box first") or is missing.
 */
GW_MUST_CHECK int gw_cluster_shared_check_files(const struct gw_cfg *cfg, json_t *files);

/* SHA-256 over the cluster name, revision, shared text and files: what the seal covers. */
void gw_cluster_shared_digest(
	const char *name, uint64_t revision, const char *shared, json_t *files, uint8_t out[32]);

/* The seal's associated data: "mtlsgw/<name>/config/<revision>". */
void gw_cluster_shared_aad(const char *name, uint64_t revision, char *buf, size_t len);

/*
 * Push: cfg was loaded (and validated) from text; store its shared part as
 * the next revision of cfg->cluster's /config key, sealed with h under
 * cfg->cluster.ticket_key. *revision gets the revision stored. -EALREADY
 * when the stored revision already holds exactly this shared part and these
 * files (nothing written); -ESTALE when another push landed in between
 * (try again); the errors of gw_cluster_shared_extract, gw_hsm_seal and
 * gw_etcd_*.
 */
GW_MUST_CHECK int gw_cluster_push(struct gw_etcd *e, struct gw_hsm *h, const struct gw_cfg *cfg,
	const char *text, const char *pushed_by, uint64_t *revision);

#endif /* GW_CLUSTER_CFG_H */
