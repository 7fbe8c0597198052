#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The echo service measured over memif from another DPDK process (our TCP
# on both ends, no kernel in the path), in a network namespace of its own:
#   bash bench/memif_echo.sh [BUILD_DIR] [SECONDS]
# Starts mtlsgw (memif server 10.98.0.2, echo on :7, one worker) and
# mtlsgw-bench-memif (memif client 10.98.0.3) on different CPUs, then
# prints stream throughput (1 and 8 connections), connections per second,
# and the gateway's CPU use during each run. Figures only: nothing asserted.
#
# Each run gets a fresh gateway, and the memif connection is only ever torn
# down with both workers stopped: the bench holds it (--hold) after its
# run, the gateway is stopped first (it must exit 0), then the bench. DPDK
# 22.11's memif PMD unmaps a connection's rings on its interrupt thread
# while a worker may still be inside rx/tx_burst on that port (see
# bench/bench_memif.c), which aborted an ASan gateway mid-run when the bench
# simply exited between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build}
secs=${2:-5}
T=$(mktemp -d /tmp/gwbench.XXXXXX)
ns="${GW_BENCH_NS:-gwbench$$}" # dp_bench.sh names it to watch it
gw=""
bench=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# a failure explains itself: the gateway's own last words
	if [ "$rc" -ne 0 ] && [ -s "$T/gw.err" ]; then
		echo "memif_echo.sh: failed (exit $rc); the last 40 lines of mtlsgw's stderr:" >&2
		tail -n 40 "$T/gw.err" >&2
	fi
	[ -n "$gw" ] && kill -TERM "$gw" 2>/dev/null && wait "$gw" 2>/dev/null || true
	[ -n "$bench" ] && kill -TERM "$bench" 2>/dev/null && wait "$bench" 2>/dev/null || true
	ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$T"
	exit "$rc"
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
start_gw() {
	: >"$T/gw.err"
	ip netns exec "$ns" "$b/tools/mtlsgw" --config "$T/gw.yaml" >"$T/gw.out" 2>>"$T/gw.err" &
	gw=$!
	# generous: an ASan gateway on a busy box takes a while
	for _ in $(seq 600); do
		grep -qs "mtlsgw: running" "$T/gw.err" && return 0
		kill -0 "$gw" 2>/dev/null || break
		sleep 0.1
	done
	echo "memif_echo.sh: mtlsgw did not start" >&2
	exit 1
}
stop() { # stop PID WHAT [LOG] : SIGTERM, wait, fail (showing LOG) unless it exits 0
	local rc=0
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" || rc=$?
	[ "$rc" -eq 0 ] && return 0
	echo "memif_echo.sh: $2 exited $rc" >&2
	[ -z "${3:-}" ] || cat "$3" >&2
	exit 1
}
hz=$(getconf CLK_TCK)
run() { # run ARGS... : one bench run against a fresh gateway, with its CPU share
	local c0 c1 out
	start_gw
	c0=$(awk '{print $14 + $15}' "/proc/$gw/stat")
	# lcore 2 maps to the CPU the gateway's worker (lcore 1) does not use
	: >"$T/bench.out"
	ip netns exec "$ns" "$b/bench/mtlsgw-bench-memif" --socket "$T/memif.sock" \
		--lcore 2 --seconds "$secs" --hold "$@" >"$T/bench.out" 2>"$T/bench.err" &
	bench=$!
	while ! grep -qs '^{' "$T/bench.out"; do
		kill -0 "$bench" 2>/dev/null || { cat "$T/bench.err" >&2; bench=""; exit 1; }
		kill -0 "$gw" 2>/dev/null || { echo "memif_echo.sh: mtlsgw died during the run: $*" >&2; exit 1; }
		sleep 0.1
	done
	c1=$(awk '{print $14 + $15}' "/proc/$gw/stat")
	out=$(head -1 "$T/bench.out")
	# both workers stopped from here on: gateway first, then the bench
	stop "$gw" "mtlsgw (after: $*)"
	gw=""
	stop "$bench" "mtlsgw-bench-memif $*" "$T/bench.err"
	bench=""
	echo "$out" | sed "s/}\$/,\"gateway_cpu_s\":$(awk -v a="$c0" -v b="$c1" -v h="$hz" 'BEGIN {printf "%.2f", (b - a) / h}')}/"
}
run --mode stream --conns 1
run --mode stream --conns 8
run --mode cps --conns 16 --size 64
