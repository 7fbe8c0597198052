#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The other port drivers, each in our own namespace with the kernel as peer:
# af_packet (one worker and two, idle: interrupt on its socket) and af_xdp
# on a veth pair (ping, echo SHA-256 identical), and
# memif between two mtlsgw processes: kernel -> tap -> gateway B (tcp-proxy)
# -> memif -> gateway A (echo) and back, which also exercises two ports and
# routing between them.
. "$(dirname "$0")/../lib/common.sh"

gw_netns
# veth hands frames over with checksums still to be filled in (the kernel
# expects the receiving side to be a kernel too): gw_veth has them filled
gw_veth

# DPDK's af_xdp leaves libxdp's umem unfreed at close (ASan build only sees it)
export LSAN_OPTIONS="suppressions=$GW_SRC/tests/integ/dp_lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

run_driver() { # run_driver DRIVER [WORKERS] : gateway on veth0, kernel on veth1
	local drv=$1 workers=${2:-[1]} rc=0 mode sleeps0 late0 sleeps1 late1 nw
	nw=$(($(tr -cd , <<<"$workers" | wc -c) + 1))
	GW_MEMORY_MB=256 GW_DRIVER=$drv GW_DEVICE=veth0 GW_IDLE=interrupt gw_gateway_config "$T/$drv.yaml" "$workers" \
		"  - name: echo
    address: $GW_GW_IP:7
    service: echo"
	gw_log "$T/$drv.err"
	gw_bg ip netns exec "$GW_NS" "$MTLSGW" --config "$T/$drv.yaml" >"$T/$drv.out" 2>"$T/$drv.err"
	GW_GW_PID=$GW_LAST_PID
	gw_wait 150 grep -q "mtlsgw: running" "$T/$drv.err" || { cat "$T/$drv.err" >&2; gw_fail "$drv: no start"; }
	if [ "$drv" = af_packet ]; then
		# idle: interrupt: the port's one queue (a veth has one) is a
		# PACKET_MMAP socket, its wait fd; a second worker polls no queue
		# and waits for what the first hands it
		grep -q "port 'wan' af_packet .*: 1 rxq 1 txq" "$T/$drv.err" &&
			grep -q "idle: interrupt: $nw of $nw workers wait for RX interrupts" "$T/$drv.err" ||
			gw_fail "$drv: the workers do not wait on its socket: $(cat "$T/$drv.err")"
	else
		# idle: interrupt asked for, but af_xdp has no RX interrupts
		grep -q "port 'wan' ($drv) has no RX interrupts: the workers polling it sleep adaptively" \
			"$T/$drv.err" || gw_fail "$drv: no word of the adaptive fallback: $(cat "$T/$drv.err")"
	fi
	# the first frames may come before the XDP socket is bound (slow under
	# ASan): wait for one answer, then ask for both
	gw_wait 50 gw_peer ping "$GW_GW_IP" 1 || gw_fail "$drv: no ping answered in 5 s"
	gw_peer ping "$GW_GW_IP" 2 >/dev/null || gw_fail "$drv: ping"
	out=$(gw_peer echo "$GW_GW_IP" 7 20000000 1) || gw_fail "$drv: $out"
	if [ "$drv" = af_packet ]; then
		read -r sleeps0 late0 < <(GW_STAT_OUT=$T/$drv.out gw_stat idle_sleeps idle_late | paste -sd' ')
	fi
	out2=$(gw_peer echo "$GW_GW_IP" 7 65536 50) || gw_fail "$drv: $out2"
	mode="no RX interrupts: adaptive idle, said so"
	if [ "$drv" = af_packet ]; then
		# 50 connections one after the other: the worker waits between
		# their flights, and every wait ends for a frame, not at the tick
		# with the frame still in the ring (a wake-up lost)
		read -r sleeps1 late1 < <(GW_STAT_OUT=$T/$drv.out gw_stat idle_sleeps idle_late | paste -sd' ')
		[ "$sleeps1" -gt "$sleeps0" ] || gw_fail "$drv: the worker never waited ($sleeps0 -> $sleeps1)"
		[ $((late1 - late0)) -le $(((sleeps1 - sleeps0) / 20 + 1)) ] ||
			gw_fail "$drv: $((late1 - late0)) of $((sleeps1 - sleeps0)) waits ran to the tick with a frame waiting"
		mode="$nw worker(s), idle: interrupt on its socket, $((sleeps1 - sleeps0)) waits, $((late1 - late0)) late"
	fi
	kill -TERM "$GW_GW_PID"
	wait "$GW_GW_PID" || rc=$?
	[ "$rc" -eq 0 ] || gw_fail "$drv: exit $rc"
	gw_in ip link show veth0 >/dev/null || gw_fail "$drv: veth0 gone"
	gw_ok "$drv on veth0 ($mode): ping, $out; $out2; clean stop"
	gw_in ip neigh flush dev veth1
}
run_driver af_packet
# two workers, one queue: the second is woken for the flows it owns
# (software dispatch) and for nothing else
run_driver af_packet "[0, 1]"
run_driver af_xdp

# --- memif between two gateways; A serves echo, B relays from its tap. Both
# ask for idle: interrupt: DPDK 22.11's memif gives no RX interrupt fd, so
# their workers sleep adaptively and the log says why (B's worker polls a
# tap, which has one, and the memif queue, which has none)
cat >"$T/a.yaml" <<EOC
dataplane:
  workers: [1]
  idle: interrupt
  no_huge: true
  memory_mb: 256
  file_prefix: gwa
  ports:
    - name: link
      driver: memif
      device: $T/memif.sock
      address: 10.98.0.2/24
listeners:
  - name: echo
    address: 10.98.0.2:7
    service: echo
EOC
cat >"$T/b.yaml" <<EOC
dataplane:
  workers: [1]
  idle: interrupt
  no_huge: true
  memory_mb: 256
  file_prefix: gwb
  ports:
    - name: wan
      driver: tap
      device: $GW_TAP
      address: 10.97.0.2/24
    - name: link
      driver: memif
      device: $T/memif.sock
      address: 10.98.0.3/24
      role: client
listeners:
  - name: relay
    address: 10.97.0.2:8080
    service: tcp-proxy
    upstream:
      servers: [10.98.0.2:7]
EOC
gw_log "$T/a.err" "$T/b.err"
gw_bg ip netns exec "$GW_NS" "$MTLSGW" --config "$T/a.yaml" >"$T/a.out" 2>"$T/a.err"
a=$GW_LAST_PID
gw_wait 150 grep -q "mtlsgw: running" "$T/a.err" || { cat "$T/a.err" >&2; gw_fail "memif server: no start"; }
gw_bg ip netns exec "$GW_NS" "$MTLSGW" --config "$T/b.yaml" >"$T/b.out" 2>"$T/b.err"
b=$GW_LAST_PID
gw_wait 150 grep -q "mtlsgw: running" "$T/b.err" || { cat "$T/b.err" >&2; gw_fail "memif client: no start"; }
gw_in ip addr add 10.97.0.1/24 dev "$GW_TAP"
gw_in ip link set "$GW_TAP" up
out=$(gw_peer echo 10.97.0.2 8080 20000000 1) || gw_fail "kernel -> tap -> B -> memif -> A: $out"
out2=$(gw_peer echo 10.97.0.2 8080 65536 50) || gw_fail "via memif, 50 connections: $out2"
for p in "$b" "$a"; do
	rc=0
	kill -TERM "$p"
	wait "$p" || rc=$?
	[ "$rc" -eq 0 ] || gw_fail "memif gateway exit $rc"
done
for g in a b; do
	grep -q "port 'link' (memif) has no RX interrupts" "$T/$g.err" &&
		grep -q "idle: interrupt: 0 of 1 workers wait for RX interrupts" "$T/$g.err" ||
		gw_fail "memif gateway $g: $(grep -i interrupt "$T/$g.err")"
done
gw_ok "kernel -> tap -> gateway B tcp-proxy -> memif -> gateway A echo (memif: adaptive idle, said so): $out; $out2"
gw_done
