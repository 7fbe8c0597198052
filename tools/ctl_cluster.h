/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ctl_cluster.h - the pure part of `mtlsgw-ctl cluster status`
 * (ctl_cluster_fmt.c): what the fleet's etcd keys (control/cluster.h) hold,
 * turned into the command's JSON and table cells. No I/O, so
 * tests/unit/test_ctl_cluster.c runs it on crafted values.
 *
 * The values come from other boxes (any writer of etcd, in fact): only the
 * fields named here are read, each of the type the agent writes; a missing
 * or mistyped field is JSON null and "-" in the table, never a guess. The
 * tickets key's "sealed" is never read.
 */
#ifndef GW_CTL_CLUSTER_H
#define GW_CTL_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * members/<node>'s value (val[0..len)) as the command shows it:
 * {"Node", "Pid", "Generation", "TicketSerial", "Leader", "Heartbeat",
 * "HeartbeatAge", "Started", "Version", "Etcd", "ConfigRevision",
 * "ConfigApplied", "ConfigStatus", "ConfigMessage"} (the pushed config the
 * member last tried, the one it runs, "ok"/"error"/"none" and why), plus
 * "Error" when the value
 * is not a JSON object or names another node than its key. node is the
 * key's last part; leader is the leader key's value (NULL: no leader), and
 * "Leader" is whether it names this node (the key decides, not the
 * member's own flag, which is as of its last turn). Heartbeat and Started
 * are unix seconds (integer or real); HeartbeatAge is now - Heartbeat in
 * whole seconds, 0 for a heartbeat ahead of our clock. Returns a new
 * object (the caller's), NULL only when out of memory.
 */
json_t *gw_ctl_cluster_member(
	const char *node, const uint8_t *val, size_t len, const char *leader, int64_t now);

/* The member table's columns, and the header row. */
enum { GW_CTL_MEMBER_COLS = 8, GW_CTL_MEMBER_CELL = 72 };
extern const char *const gw_ctl_member_header[GW_CTL_MEMBER_COLS];

/*
 * One table row from gw_ctl_cluster_member's object: node, pid, generation,
 * ticket serial, leader yes/no, heartbeat age ("3s"), version, config
 * ("4 ok": the pushed revision last tried and how it went); "-" for a
 * null field, "?" after the node when the value was not understood. Cells
 * longer than the cell are cut.
 */
void gw_ctl_cluster_member_cells(json_t *m, char cells[GW_CTL_MEMBER_COLS][GW_CTL_MEMBER_CELL]);

/*
 * The tickets key's value as the command shows it: {"Serial", "Created"}
 * (Created: unix seconds, null if missing). Never the sealed keys. Returns
 * a new object, or NULL when the value is not a JSON object with an
 * integer serial >= 0 (or out of memory).
 */
json_t *gw_ctl_cluster_tickets(const uint8_t *val, size_t len);

#endif /* GW_CTL_CLUSTER_H */
