#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The echo service measured over memif from another DPDK process (our TCP
# on both ends, no kernel in the path), in a network namespace of its own:
#   bash bench/memif_echo.sh [BUILD_DIR] [SECONDS]
# Starts mtlsgw (memif server 10.98.0.2, echo on :7, one worker) and
# mtlsgw-bench-memif (memif client 10.98.0.3) on different CPUs, then
# prints stream throughput (1 and 8 connections), connections per second,
# and the gateway's CPU use during each run. Figures only: nothing asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build}
secs=${2:-5}
T=$(mktemp -d /tmp/gwbench.XXXXXX)
ns="gwbench$$"
gw=""
cleanup() {
	[ -n "$gw" ] && kill -TERM "$gw" 2>/dev/null && wait "$gw" 2>/dev/null || true
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns"
cat >"$T/gw.yaml" <<EOC
dataplane:
  workers: [1]
  no_huge: true
  memory_mb: 512
  file_prefix: gwbenchsrv
  ports:
    - name: link
      driver: memif
      device: $T/memif.sock
      address: 10.98.0.2/24
listeners:
  - name: echo
    address: 10.98.0.2:7
    service: echo
    backlog: 4096
EOC
ip netns exec "$ns" "$b/tools/mtlsgw" --config "$T/gw.yaml" >"$T/gw.out" 2>"$T/gw.err" &
gw=$!
for _ in $(seq 100); do grep -qs "mtlsgw: running" "$T/gw.err" && break; sleep 0.1; done
grep -q "mtlsgw: running" "$T/gw.err" || { cat "$T/gw.err"; exit 1; }
hz=$(getconf CLK_TCK)
run() { # run ARGS... : one bench run, with the gateway's CPU share
	local c0 c1 out
	c0=$(awk '{print $14 + $15}' "/proc/$gw/stat")
	# lcore 2 maps to the CPU the gateway's worker (lcore 1) does not use
	out=$(ip netns exec "$ns" "$b/bench/mtlsgw-bench-memif" --socket "$T/memif.sock" \
		--lcore 2 --seconds "$secs" "$@" 2>"$T/bench.err") || { cat "$T/bench.err"; exit 1; }
	c1=$(awk '{print $14 + $15}' "/proc/$gw/stat")
	echo "$out" | sed "s/}\$/,\"gateway_cpu_s\":$(awk -v a="$c0" -v b="$c1" -v h="$hz" 'BEGIN {printf "%.2f", (b - a) / h}')}/"
}
run --mode stream --conns 1
run --mode stream --conns 8
run --mode cps --conns 16 --size 64
