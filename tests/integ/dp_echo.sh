#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The echo service through a tap, against the Linux kernel's TCP in our own
# namespace: a large transfer byte-identical (SHA-256), >= 500 concurrent
# connections, and 3% random loss both ways (nftables numgen in the forward
# hook, the client one routed hop away: gw_client_ns). Afterwards no
# connection is left and the mbufs in use are back to where they were.
#
# Sizes: 100 MB clean, 100 MB with loss (~20-30 s: 3% loss makes it
# RTO- and recovery-bound), 500 x 64 KiB concurrent; the same in the ASan
# build. GW_TEST_SCALE=N divides them.
. "$(dirname "$0")/../lib/common.sh"

div=${GW_TEST_SCALE:-1}
big=$((100000000 / div))
lossy=$((100000000 / div))
conns=500
per=65536

gw_gateway_config "$T/gw.yaml" "[1]" "  - name: echo
    address: $GW_GW_IP:7
    service: echo
    backlog: 1024"
gw_start_gateway "$T/gw.yaml"
base=$(gw_stat mbufs_in_use)

out=$(gw_peer echo "$GW_GW_IP" 7 "$big" 1) || gw_fail "echo $big bytes: $out"
gw_ok "$out"

out=$(gw_peer echo "$GW_GW_IP" 7 "$per" "$conns") || gw_fail "echo x$conns: $out"
gw_ok "$out"
acc=$(gw_wait_stat conn_accepted $((conns + 1))) ||
	gw_fail "conn_accepted=$acc, expected >= $((conns + 1))"
gw_ok "gateway accepted $acc connections"

# 3% loss both ways on a routed hop: the client is in its own namespace and
# $GW_NS forwards (gw_client_ns). A drop on the kernel's local output path
# would be re-sent by the kernel itself and never reach us as a hole, so
# the loss must be in the forward hook to hit both TCPs.
gw_client_ns
gw_cin "$GW_PY" "$GW_SRC/tests/integ/dp_peer.py" ping "$GW_GW_IP" 1 >/dev/null ||
	gw_fail "gateway not reachable from the client namespace (routed via $GW_PEER_IP)"
fast0=$(gw_stat tx_fast_rtx)
gw_fwd_loss_start 3
t0=$(date +%s)
out=$(gw_cin "$GW_PY" "$GW_SRC/tests/integ/dp_peer.py" echo "$GW_GW_IP" 7 "$lossy" 1) ||
	gw_fail "echo with 3% loss: $out"
secs=$(($(date +%s) - t0))
gw_fwd_loss_check
fast=$(gw_stat tx_fast_rtx)
gw_ok "3% loss both ways in ${secs}s ($GW_LOSS_SUMMARY, $((fast - fast0)) fast retransmits): $out"
gw_fwd_loss_off

# every connection ends (TIME_WAIT is short on a gateway) and the mbufs
# they held go back to the pool
for _ in $(seq 100); do
	left=$(gw_stat ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT LAST_ACK CLOSING TIME_WAIT |
		awk '{s += $1} END {print s}')
	[ "$left" -eq 0 ] && break
	sleep 0.2
done
[ "$left" -eq 0 ] || gw_fail "$left connections still open"
now=$(gw_stat mbufs_in_use)
[ "$now" -le $((base + 2048)) ] || gw_fail "mbufs in use grew from $base to $now"
gw_ok "all connections closed; mbufs in use $base -> $now"
gw_stop_gateway
gw_done
