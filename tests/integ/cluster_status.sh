#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# mtlsgw-ctl cluster status: usage and config errors, then, on a one-member
# etcd in our namespace holding member, leader and tickets keys written by
# etcdctl, its JSON and tables (the endpoint that answered after a dead
# one, the leader by the leader key, a member value it does not
# understand, never the sealed ticket keys), no leader or tickets yet, and
# etcd down (exit 1, the endpoints named).
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/etcd.sh"

C=$MTLSGW_CTL
echo_l="  - name: echo
    address: $GW_GW_IP:7
    service: echo"

# --- usage and config errors: no etcd needed
"$C" cluster --help | grep -q '^  status ' || gw_fail "cluster --help lists no status"
gw_ok "cluster --help lists status"
gw_expect_fail "cluster: unknown command 'frob'" "$C" cluster frob
gw_expect_fail "cluster status: unknown option '--jsn'" "$C" cluster status --jsn
gw_expect_fail "cluster status: unexpected argument 'now'" "$C" cluster status --config x now
gw_expect_fail "cluster status: config $T/none.yaml rejected" "$C" cluster status --config "$T/none.yaml"
gw_gateway_config "$T/plain.yaml" "[1]" "$echo_l"
gw_expect_fail "no cluster: section in $T/plain.yaml" "$C" cluster status --config "$T/plain.yaml"
set +e
"$C" cluster status --config "$T/plain.yaml" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || gw_fail "no cluster: section: exit $rc, want 2"
gw_ok "no cluster: section: exit 2"

# cluster_config FILE ENDPOINT... : the one-port config with a cluster: section
cluster_config() {
	local f=$1 eps
	shift
	eps=$(printf '%s, ' "$@")
	gw_gateway_config "$f" "[1]" "$echo_l"
	cat >>"$f" <<EOC
cluster:
  name: fleet1
  node: gw-a
  etcd:
    endpoints: [${eps%, }]
    timeout: 500ms
  ticket_key: "pkcs11:token=gw;object=fleet;type=secret-key"
hsm:
  pin_file: $T/pin
EOC
}
cluster_config "$T/gw.yaml" http://127.0.0.1:23799 http://127.0.0.1:23790
printf '1234\n' >"$T/pin"
chmod 600 "$T/pin"

# --- a one-member etcd with the fleet's keys, written by etcdctl
gw_netns
gw_etcd_cluster_start "$GW_NS" "$T/etcd" 1 23790
now=$(date +%s)
gw_etcdctl put /mtlsgw/fleet1/members/gw-a "{\"node\":\"gw-a\",\"pid\":4242,\"started\":$((now - 600)),\
\"heartbeat\":$((now - 2)),\"generation\":7,\"ticket_serial\":5,\"leader\":true,\
\"etcd\":\"http://127.0.0.1:23790\",\"version\":\"0.1.0\",\
\"config\":{\"revision\":4,\"applied\":3,\"status\":\"error\",\"message\":\"no key\"}}" >/dev/null
gw_etcdctl put /mtlsgw/fleet1/members/gw-b "{\"node\":\"gw-b\",\"pid\":77,\"started\":$((now - 60)),\
\"heartbeat\":$((now - 1)),\"generation\":6,\"ticket_serial\":4,\"leader\":false,\"version\":\"0.1.0\"}" >/dev/null
gw_etcdctl put /mtlsgw/fleet1/members/gw-c 'garbage' >/dev/null
gw_etcdctl put /mtlsgw/fleet1/leader gw-a >/dev/null
gw_etcdctl put /mtlsgw/fleet1/tickets \
	"{\"serial\":5,\"created\":$((now - 60)),\"sealed\":\"U0VBTEVEVElDS0VUS0VZUw==\"}" >/dev/null
# another fleet's keys are not ours
gw_etcdctl put /mtlsgw/fleet10/members/gw-z '{"node":"gw-z"}' >/dev/null

out=$(gw_in "$C" cluster status --config "$T/gw.yaml" --json) || gw_fail "cluster status --json: $out"
case "$out" in *U0VBTEVE*) gw_fail "the sealed ticket keys are printed: $out" ;; esac
"$GW_PY" - "$now" <<EOP || gw_fail "cluster status --json: $out"
import json, sys
now = int(sys.argv[1])
a = json.loads('''$out''')
assert a["Name"] == "fleet1", a
assert a["Endpoint"] == "http://127.0.0.1:23790", a["Endpoint"]
assert a["Leader"] == "gw-a", a
assert a["Tickets"] == {"Serial": 5, "Created": now - 60}, a["Tickets"]
m = {x["Node"]: x for x in a["Members"]}
assert sorted(m) == ["gw-a", "gw-b", "gw-c"], m
assert m["gw-a"]["Leader"] is True and m["gw-b"]["Leader"] is False, m
assert m["gw-a"]["Pid"] == 4242 and m["gw-a"]["Generation"] == 7, m["gw-a"]
assert m["gw-a"]["TicketSerial"] == 5 and m["gw-a"]["Version"] == "0.1.0", m["gw-a"]
assert m["gw-a"]["ConfigRevision"] == 4 and m["gw-a"]["ConfigApplied"] == 3, m["gw-a"]
assert m["gw-a"]["ConfigStatus"] == "error" and m["gw-a"]["ConfigMessage"] == "no key", m["gw-a"]
assert m["gw-b"]["ConfigRevision"] is None, m["gw-b"]
assert 2 <= m["gw-a"]["HeartbeatAge"] <= 30, m["gw-a"]
assert m["gw-c"]["Error"] == "not a JSON object" and m["gw-c"]["Pid"] is None, m["gw-c"]
EOP
gw_ok "--json: endpoint after a dead one, leader, tickets without the keys, 3 members"

out=$(gw_in "$C" cluster status --config "$T/gw.yaml") || gw_fail "cluster status: $out"
case "$out" in *'{'* | *U0VBTEVE*) gw_fail "human output has JSON or the sealed keys: $out" ;; esac
for want in "^cluster   fleet1$" "^endpoint  http://127.0.0.1:23790$" "^leader    gw-a$" \
	"^tickets   serial 5, created [0-9T:-]*Z ([0-9]*s ago)$" \
	"^NODE  *PID  *GENERATION  *TICKET SERIAL  *LEADER  *HEARTBEAT  *VERSION  *CONFIG$" \
	"^gw-a  *4242  *7  *5  *yes  *[0-9]*s  *0.1.0  *4 error$" \
	"^gw-b  *77  *6  *4  *no  *[0-9]*s  *0.1.0  *-$" "^gw-c ?  *-  *-  *-  *no  *-  *-  *-$"; do
	grep -q -- "$want" <<<"$out" || gw_fail "no line /$want/ in: $out"
done
gw_ok "tables: head, members (gw-c marked ?)"

gw_etcdctl del /mtlsgw/fleet1/leader >/dev/null
gw_etcdctl del /mtlsgw/fleet1/tickets >/dev/null
gw_etcdctl del --prefix /mtlsgw/fleet1/members/ >/dev/null
out=$(gw_in "$C" cluster status --config "$T/gw.yaml") || gw_fail "cluster status: $out"
for want in "^leader    none$" "^tickets   none yet$" "^no members$"; do
	grep -q -- "$want" <<<"$out" || gw_fail "no line /$want/ in: $out"
done
gw_ok "no leader, no tickets, no members yet"

gw_etcd_stop_all
gw_expect_fail "cluster status: etcd does not answer at http://127.0.0.1:23799, http://127.0.0.1:23790" \
	gw_in "$C" cluster status --config "$T/gw.yaml"
set +e
gw_in "$C" cluster status --config "$T/gw.yaml" --json >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || gw_fail "etcd down: exit $rc, want 1"
gw_ok "etcd down: exit 1"
gw_done
