/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cluster.h - one gateway's membership in a fleet (config `cluster:`):
 * several gateways behind ECMP share their session ticket keys through
 * etcd, so a ticket issued by any box resumes on any other, across
 * rotations (docs/operations.md, "Fleet").
 *
 * Keys, under /mtlsgw/<name>/ (values JSON unless said):
 *
 *   members/<node>   {"node","pid","started","heartbeat","generation",
 *                     "ticket_serial","leader","version","config":{"revision",
 *                     "applied","seen","status":"none|ok|error","message"},
 *                    (seen: the newest revision whose seal opened, the
 *                    floor a push numbers past, even after a refused
 *                    replay reported a lower "revision")
 *                     "mesh":{"trusts":[backends],"roots":"PEM","roots_seal"}}
 *                    (roots: this box's CA roots; roots_seal: their SHA-256
 *                    sealed under the fleet's key, AAD "mtlsgw/<name>/
 *                    roots/<node>"; the others trust only roots whose seal
 *                    opens)
 *   leaves/<node>    {"node","backends":{name:{"live","until"}}}: the box's
 *                    issued certificates still valid per backend and the
 *                    last notAfter; no lease, so a dead box's record stays
 *                    for the rotation validators until it expires.
 *                    attached to the member's lease: it disappears within
 *                    the lease TTL of the member's death.
 *   leader           the leader's node name (plain text), attached to the
 *                    leader's lease; created only when absent (an etcd
 *                    transaction), so one member holds it at a time, and
 *                    its lease's expiry hands the role over.
 *   tickets          {"serial":N,"created":T,"sealed":"<base64>"}: the
 *                    fleet's current and previous session ticket keys,
 *                    sealed (hsm.h gw_hsm_seal, AES-256-GCM in the token)
 *                    under cluster.ticket_key with the associated data
 *                    "mtlsgw/<name>/tickets/<serial>", so no box stores them
 *                    in clear and a blob moved to another cluster or serial
 *                    does not open. Written by the leader only, with a
 *                    compare on the revision it read.
 *   config           the shared config `mtlsgw-ctl cluster push` stored
 *                    (cluster_cfg.h): a newer revision whose seal matches
 *                    is handed to the control thread, which applies it as a
 *                    reload and reports the result in the member key.
 *
 * The agent runs in a thread of its own with its own etcd client and its
 * own HSM handle (the control thread never waits on etcd). Each turn
 * (a third of the lease TTL, at most a second): renew the lease (a new one
 * and a new member key when it expired), write the member key, try to
 * become leader when there is none, as leader make the first ticket keys or
 * rotate them when the current key is a ticket lifetime old, and read the
 * tickets key; a new serial is unsealed and handed to the control thread
 * (gw_cluster_take_keys), which installs it in the TLS ticket ring. A
 * serial lower than the one installed (a replayed or stale value) and a
 * value that does not unseal are refused, logged, and nothing changes.
 *
 * etcd unreachable or without quorum: the gateway keeps serving with the
 * keys it has (no local rotation in a fleet: a ticket key outlives its
 * lifetime until etcd returns), gw_cluster_etcd_up says 0, and the agent
 * catches up when etcd answers again. The leader that loses its lease stops
 * rotating; another member takes over within the TTL.
 *
 * Threading: gw_cluster_* run on the control thread, except where said.
 */
#ifndef GW_CLUSTER_H
#define GW_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "gw_err.h"
#include "hsm.h"

/* One session ticket key as the fleet shares it (policy/tls_internal.h's struct tk). */
struct gw_cluster_tkey {
	uint8_t name[16];
	uint8_t aes[32];
	uint8_t hmac[32];
	int64_t created; /* unix seconds */
};

/* The fleet's ticket keys: current and previous (serial 1 has no previous). */
struct gw_cluster_tkeys {
	uint64_t serial; /* the fleet's rotation count, >= 1 */
	struct gw_cluster_tkey cur, prev;
	bool has_prev;
};

struct gw_cluster_params {
	const struct gw_cfg_cluster *cfg; /* copied */
	const struct gw_hsm_params *hsm;  /* the gateway's token (module, PIN); copied */
	unsigned ticket_lifetime_s;       /* the leader's rotation period */
	/* at start, wait at most this long for etcd before serving without it */
	unsigned join_timeout_ms;
	/* the pushed config revision the gateway starts on (0: its file alone):
	 * none older or equal is taken again */
	uint64_t config_revision;
};

struct gw_cluster;

/*
 * Start the agent: open the HSM handle and the etcd client, check the
 * ticket_key seals (a wrong URI or a key that cannot encrypt fails here,
 * -GW_E_HSM_KEY / -GW_E_HSM_USAGE), then join: lease, member key, leader
 * election, the fleet's ticket keys (made if this member is the first
 * leader). The join waits at most join_timeout_ms for etcd; when etcd does
 * not answer the gateway starts with its own keys, the agent keeps trying
 * and gw_cluster_etcd_up() says 0. Keys read during the join are waiting
 * in gw_cluster_take_keys() when this returns. Then the thread starts.
 */
GW_MUST_CHECK int gw_cluster_start(const struct gw_cluster_params *p, struct gw_cluster **out);

/* Stop the thread, revoke the lease (the member key and, if held, the leadership go at once). NULL ok. */
void gw_cluster_stop(struct gw_cluster *c);

/*
 * The fleet's ticket keys, if a serial newer than the last one taken has
 * been unsealed since: 1 and *out filled (wipe it after installing), else
 * 0. Any thread.
 */
int gw_cluster_take_keys(struct gw_cluster *c, struct gw_cluster_tkeys *out);

/*
 * The newest pushed config (cluster_cfg.h) whose seal matched, if one came
 * since the last take: 1 with *revision, *shared (malloc'd) and *files (a
 * reference) owned by the caller, else 0. The caller applies it as a
 * reload and says how it went with gw_cluster_config_report.
 */
int gw_cluster_take_config(struct gw_cluster *c, uint64_t *revision, char **shared, json_t **files);

/* How applying revision went (ok: it runs now); the member key reports it. */
void gw_cluster_config_report(
	struct gw_cluster *c, uint64_t revision, bool ok, const char *message);

/* The rotation validators' report (mesh.h gw_mesh_fleet_report) for the member key; consumed. */
void gw_cluster_report_mesh(struct gw_cluster *c, json_t *mesh);

/*
 * The fleet for the rotation validators (rotation.h env.fleet), a new
 * reference: {"members": [every live member's value], "leaves": [every
 * box's leaves record]}, as of the agent's last turn. Any thread.
 */
json_t *gw_cluster_fleet(struct gw_cluster *c);

/*
 * The other members' mesh CA roots whose seal opened under the fleet's
 * key (PEM, in node order; malloc'd), or NULL: what this box's mesh
 * listeners trust besides its own CA's roots. Any thread.
 */
char *gw_cluster_fleet_roots(struct gw_cluster *c);

/* This member's node name (cluster.node). */
const char *gw_cluster_node(const struct gw_cluster *c);

/* What the member key reports next turn: the snapshot generation, the ticket serial installed. */
void gw_cluster_report(struct gw_cluster *c, uint64_t generation, uint64_t ticket_serial);

/* 1 when the last etcd request was answered, else 0. Any thread. */
bool gw_cluster_etcd_up(const struct gw_cluster *c);

/* This member holds the leadership (as of its last turn). Any thread. */
bool gw_cluster_is_leader(const struct gw_cluster *c);

/*
 * GET /v1/cluster: {Name, Node, Leader, IsLeader, EtcdUp, TicketSerial,
 * LastError, Config{Revision, Applied, Status, Message}, Members[{Node,
 * Generation, TicketSerial, Heartbeat, Leader, ConfigRevision,
 * ConfigStatus, ConfigMessage}]} as of the agent's last turn. 0 (o
 * borrowed).
 */
int gw_cluster_status(struct gw_cluster *c, json_t *o);

#endif /* GW_CLUSTER_H */
