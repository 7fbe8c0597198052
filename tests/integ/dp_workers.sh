#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Several workers on one tap (software Toeplitz dispatch between them),
# against kernel peers in our own namespace: ARP fanned out, echo with one
# large and 200 concurrent connections SHA-256 identical, tcp-proxy both
# ways (its upstream connections must pick source ports whose return
# traffic hashes to the same worker), segments really dispatched, and the
# per-worker hooks (worker_init/poll/fini) run once per worker.
# Runs the dataplane through dp_workers_gw (see its header for why).
. "$(dirname "$0")/../lib/common.sh"
gw=${1:?usage: dp_workers.sh PATH_TO_dp_workers_gw}

for n in 2 3; do
	: >"$T/gw.out"
	: >"$T/gw.err"
	gw_netns
	gw_in sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	gw_in sysctl -qw net.ipv6.conf.default.disable_ipv6=1
	gw_log "$T/gw.err"
	gw_bg ip netns exec "$GW_NS" "$gw" "$n" >>"$T/gw.out" 2>>"$T/gw.err"
	GW_GW_PID=$GW_LAST_PID
	gw_wait 150 grep -q "mtlsgw: running" "$T/gw.err" || { cat "$T/gw.err" >&2; gw_fail "no start"; }
	grep -q "$n rxq $n txq, software RSS dispatch" "$T/gw.err" || gw_fail "queues: $(cat "$T/gw.err")"
	gw_in ip addr add "$GW_PEER_IP/24" dev "$GW_TAP"
	gw_in ip link set "$GW_TAP" up
	gw_peer ping "$GW_GW_IP" 3 >/dev/null || gw_fail "$n workers: ping"
	big=$(gw_peer echo "$GW_GW_IP" 7 30000000 1) || gw_fail "$n workers: $big"
	many=$(gw_peer echo "$GW_GW_IP" 7 65536 200) || gw_fail "$n workers: $many"
	gw_bg ip netns exec "$GW_NS" "$GW_PY" "$GW_SRC/tests/integ/dp_peer.py" server 9000 >"$T/up.log" 2>&1
	up=$GW_LAST_PID
	gw_wait 50 grep -q listening "$T/up.log" || gw_fail "upstream server did not start"
	for i in $(seq 6); do
		gw_peer up "$GW_GW_IP" 8080 2000000 >/dev/null || gw_fail "$n workers: proxy up $i"
		gw_peer down "$GW_GW_IP" 8080 2000000 >/dev/null || gw_fail "$n workers: proxy down $i"
	done
	con=$(gw_wait_stat conn_connected 12) || true
	read -r fan disp ddrop < <(gw_stat ring_rx dispatch_tx dispatch_drop | paste -sd' ')
	[ "$fan" -ge 1 ] && [ "$disp" -ge 1 ] || gw_fail "$n workers: nothing dispatched ($disp)"
	[ "$con" -ge 12 ] || gw_fail "$n workers: $con upstream connections, expected 12"
	tail -1 "$T/gw.out" | grep -o "\"per_worker.*" >&2
	gw_ok "$n workers: ping; $big; $many; 12 proxied transfers byte-exact ($disp packets dispatched between workers, $ddrop ring drops)"
	kill -TERM "$up"
	wait "$up" 2>/dev/null || true
	rc=0
	kill -TERM "$GW_GW_PID"
	wait "$GW_GW_PID" || rc=$?
	[ "$rc" -eq 0 ] || gw_fail "$n workers: exit $rc"
	grep -q "\"hooks\":{\"init\":$n}" "$T/gw.out" || gw_fail "$n workers: stats_read hook missing"
	grep -q "hooks: init $n fini $n polled $n" "$T/gw.err" ||
		gw_fail "$n workers: per-worker hooks: $(grep hooks "$T/gw.err")"
	ip netns del "$GW_NS"
	GW_NS=""
done
# --- one queue pair (af_xdp on a veth), 2 workers: worker 0 receives and
# dispatches everything, worker 1 transmits through the shared TX ring
export LSAN_OPTIONS="suppressions=$GW_SRC/tests/integ/dp_lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
: >"$T/gw.out"
: >"$T/gw.err"
gw_netns
gw_veth
gw_log "$T/gw.err"
gw_bg ip netns exec "$GW_NS" "$gw" 2 af_xdp veth0 >>"$T/gw.out" 2>>"$T/gw.err"
GW_GW_PID=$GW_LAST_PID
gw_wait 150 grep -q "mtlsgw: running" "$T/gw.err" || { cat "$T/gw.err" >&2; gw_fail "af_xdp: no start"; }
grep -q "1 rxq 1 txq, software RSS dispatch" "$T/gw.err" || gw_fail "af_xdp queues: $(cat "$T/gw.err")"
gw_peer ping "$GW_GW_IP" 3 >/dev/null || gw_fail "af_xdp 2 workers: ping"
big=$(gw_peer echo "$GW_GW_IP" 7 30000000 1) || gw_fail "af_xdp 2 workers: $big"
many=$(gw_peer echo "$GW_GW_IP" 7 65536 200) || gw_fail "af_xdp 2 workers: $many"
read -r disp txr txd < <(gw_stat dispatch_tx txring_tx txring_drop | paste -sd' ')
[ "$disp" -ge 1000 ] && [ "$txr" -ge 1000 ] || gw_fail "af_xdp: dispatched $disp, via TX ring $txr"
gw_ok "af_xdp, one queue, 2 workers: $big; $many ($disp dispatched, $txr sent via the TX ring, $txd ring drops)"
rc=0
kill -TERM "$GW_GW_PID"
wait "$GW_GW_PID" || rc=$?
[ "$rc" -eq 0 ] || gw_fail "af_xdp 2 workers: exit $rc"
gw_done
