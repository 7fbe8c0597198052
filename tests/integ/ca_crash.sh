#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The control plane dies in the middle of each rotation step (state.h's
# GW_STATE_CRASH_AT: _exit just before the step's COMMIT, as a kill there
# would) and is started again: it comes back consistent and the step can be
# taken (again). Runs tests/lib/mesh_srv, the gateway's control plane.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/ca.sh"

SRV=${1:?usage: ca_crash.sh MESH_SRV}
ca_init

cfg() { ca_srv_cfg gwk0 10.79.0.2 "$1" "$2"; }

# start mesh_srv, optionally armed to die before the COMMIT labelled $1
start() {
	rm -f "$S"
	gw_log "$T/srv.err"
	GW_STATE_CRASH_AT=${1:-} gw_bg "$SRV" "$T/gw.yaml" 2>>"$T/srv.err"
	SRV_PID=$GW_LAST_PID
	gw_wait 300 test -S "$S" || gw_fail "mesh_srv did not start: $(tail -3 "$T/srv.err")"
}
stop() {
	kill -TERM "$SRV_PID" 2>/dev/null || true
	wait "$SRV_PID" 2>/dev/null || true
}
# the server must have died with status 86 (the crash hook)
died() {
	local rc=0
	wait "$SRV_PID" || rc=$?
	[ "$rc" = 86 ] || gw_fail "mesh_srv exited $rc, expected the crash (86)"
}
# crash_in STEP BACKENDS ENABLED [ARG]... : start armed to die before the
# reconfigure's COMMIT, write the step's file, `ca rotate ARG...` must
# crash the server; then start it again on that file
crash_in() {
	start reconfigure
	cfg "$2" "$3"
	"$C" ca rotate --socket "$S" "${@:4}" >/dev/null 2>&1 && gw_fail "$1 should have crashed"
	died
	start
}
roots() { "$C" ca roots --socket "$S" --json | js '" ".join(r["Name"] + (":active" if r["Active"] else "") for r in d["Roots"])'; }
hist() { sqlite3 "$T/state/state.db" "select group_concat(event || ':' || backend, ' ') from history"; }

# first start dies before its first COMMIT: nothing stored; the next start makes the CA
cfg "$B1" ca-1
rc=0
GW_STATE_CRASH_AT=ca-create "$SRV" "$T/gw.yaml" 2>>"$T/srv.err" || rc=$?
[ "$rc" = 86 ] || gw_fail "first start: exit $rc, expected the crash (86)"
start
[ "$(roots)" = "ca-1:active" ] || gw_fail "after crash at first start: $(roots)"
root1=$("$C" ca roots --socket "$S" --json | js 'd["Roots"][0]["ID"]')
gw_ok "crash in the first start: the next start creates ca-1 (the HSM keys made before are reused)"
stop

# step 1 dies: the restart on the new file adds ca-2 itself
crash_in "step 1" "$B12" ca-1
[ "$(roots)" = "ca-1:active ca-2" ] || gw_fail "after crash in step 1: $(roots)"
[ "$("$C" ca roots --socket "$S" --json | js 'd["Roots"][0]["ID"]')" = "$root1" ] || gw_fail "ca-1 regenerated"
gw_ok "crash in step 1: restart on the new file trusts both, ca-1 unchanged"
stop

# step 2 (file) dies: the restart finishes it (cross-signed root, history)
crash_in "step 2" "$B12" ca-2
[ "$(roots)" = "ca-1 ca-2:active" ] || gw_fail "after crash in step 2: $(roots)"
"$C" ca roots --socket "$S" --json | js 'len(d["Roots"][1]["IntermediateCerts"])' | grep -qx 2 ||
	gw_fail "step 2 finished at start without the cross-signed root"
gw_ok "crash in step 2: the restart enables ca-2 with its cross-signed root"
stop

# step 3 dies: the restart marks ca-1 removed
crash_in "step 3" "$B2" ca-2 --force
[ "$(roots)" = "ca-2:active" ] || gw_fail "after crash in step 3: $(roots)"
[ "$(sqlite3 "$T/state/state.db" "select removed > 0 from ca where name='ca-1'")" = 1 ] ||
	gw_fail "ca-1 not marked removed"
h=$(hist)
[ "$h" = "add:ca-1 add:ca-2 enable:ca-2 remove:ca-1" ] || gw_fail "history: $h"
gw_ok "crash in step 3: restart on the final file; history complete, each event once"
[ "$(sqlite3 "$T/state/state.db" 'pragma integrity_check')" = ok ] || gw_fail "integrity"
gw_ok "state.db integrity_check ok"
stop
gw_done
