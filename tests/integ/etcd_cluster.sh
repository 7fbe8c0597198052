#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tests/lib/etcd.sh on a 3-member etcd in our own namespace: a key written
# through etcdctl, the leader killed (a new one elected, the key still
# read), all of etcd down and back on its data dirs (the key survived), and
# the members gone with the test.
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/etcd.sh"

gw_netns
gw_etcd_cluster_start "$GW_NS" "$T/etcd" 3 23790
[ "$GW_ETCD_ENDPOINTS" = "http://127.0.0.1:23790,http://127.0.0.1:23792,http://127.0.0.1:23794" ] ||
	gw_fail "GW_ETCD_ENDPOINTS is '$GW_ETCD_ENDPOINTS'"
gw_ok "3 members healthy in $GW_NS: $GW_ETCD_ENDPOINTS"
# loopback of our namespace only: nothing of the cluster on the host's
! ss -Htln "sport = :23790" | grep -q . || gw_fail "the host's namespace has port 23790 open"
gw_ok "the members listen in the test's namespace only"

gw_etcdctl put /mtlsgw/t/k v1 >/dev/null
[ "$(gw_etcdctl get --print-value-only /mtlsgw/t/k)" = v1 ] || gw_fail "get after put"
gw_ok "put and get through etcdctl"

old=$(gw_etcd_wait_leader) || gw_fail "no leader"
start=$(date +%s%N)
gw_etcd_kill "$old"
new=$(gw_etcd_wait_leader 10) || gw_fail "no new leader within 10 s of e$old's death"
[ "$new" != "$old" ] || gw_fail "the dead e$old is still the leader"
for _ in $(seq 50); do
	v=$(gw_etcdctl get --print-value-only /mtlsgw/t/k 2>/dev/null) && [ "$v" = v1 ] && break
	sleep 0.1
done
[ "$v" = v1 ] || gw_fail "key not readable after the leader's death: '$v'"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 5000 ] || gw_fail "a new leader and the key took $ms ms"
gw_ok "leader e$old killed: e$new leads, the key read after $ms ms"

gw_etcd_restart "$old"
gw_etcdctl put /mtlsgw/t/k v2 >/dev/null
gw_ok "e$old restarted on its data dir, the cluster takes writes"

pids="${GW_ETCD_PIDS[*]}"
gw_etcd_stop_all
for p in $pids; do ! kill -0 "$p" 2>/dev/null || gw_fail "member pid $p survived stop_all"; done
gw_expect_fail "deadline exceeded" gw_etcdctl --command-timeout=1s get /mtlsgw/t/k
gw_ok "all of etcd down"

gw_etcd_start_all
[ "$(gw_etcdctl get --print-value-only /mtlsgw/t/k)" = v2 ] || gw_fail "the key did not survive"
gw_etcd_wait_leader >/dev/null || gw_fail "no leader after start_all"
gw_ok "all of etcd back: the key survived, a leader"

# the members go with the test, also when it is killed: a child test sourced
# the same way, SIGTERMed (its trap) and SIGKILLed (pdeathsig, no trap). A
# SIGKILLed child leaves its namespace (empty) and temp dir: ours to remove.
child_leftovers() {
	local f
	for f in "$T"/child.out.ns "$T"/child.out.t; do
		[ -s "$f" ] || continue
		case $f in
		*.ns) ip netns del "$(cat "$f")" 2>/dev/null || true ;;
		*.t) rm -rf "$(cat "$f")" ;;
		esac
		rm -f "$f"
	done
}
gw_at_cleanup child_leftovers
for sig in TERM KILL; do
	: >"$T/child.out"
	(
		# shellcheck disable=SC2016 # for the child's shell
		exec bash -c '. "$GW_SRC/tests/lib/common.sh"; . "$GW_SRC/tests/lib/etcd.sh"
			gw_netns; echo "$GW_NS" >"$1.ns"; echo "$T" >"$1.t"
			gw_etcd_cluster_start "$GW_NS" "$T/etcd" 1 23800
			echo "${GW_ETCD_PIDS[1]}" >"$1"
			setpriv --pdeathsig KILL sleep 60 & wait $!' child "$T/child.out" >"$T/child.log" 2>&1
	) &
	child=$!
	gw_wait 100 test -s "$T/child.out" || gw_fail "the child's etcd did not start"
	epid=$(cat "$T/child.out")
	kill -0 "$epid" || gw_fail "the child's etcd is not running"
	kill -"$sig" "$child"
	wait "$child" 2>/dev/null || true
	gw_wait 50 sh -c "! kill -0 $epid 2>/dev/null" || gw_fail "etcd $epid survived its test's SIG$sig"
	cns=$(cat "$T/child.out.ns")
	ct=$(cat "$T/child.out.t")
	if [ "$sig" = TERM ]; then
		! ip netns list | grep -qw "$cns" || gw_fail "namespace $cns left after SIGTERM"
		[ ! -e "$ct" ] || gw_fail "temp dir $ct left after SIGTERM"
	fi
	child_leftovers
	gw_ok "SIG$sig to the test: its etcd $epid gone"
done
gw_done
