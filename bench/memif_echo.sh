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
# Each run gets a fresh gateway; the rules of the memif teardown are in
# bench/memif_lib.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-build}
secs=${2:-5}
. bench/memif_lib.sh
memif_setup memif_echo.sh "$b"
memif_gw_yaml >"$T/gw.yaml"
hz=$(getconf CLK_TCK)
run() { # run ARGS... : one bench run against a fresh gateway, with its CPU share
	local c0 c1
	memif_start_gw
	c0=$(awk '{print $14 + $15}' "/proc/$gw/stat")
	memif_bench_start "$@"
	memif_bench_wait "$*"
	c1=$(awk '{print $14 + $15}' "/proc/$gw/stat")
	memif_finish "$*"
	echo "$out" | sed "s/}\$/,\"gateway_cpu_s\":$(awk -v a="$c0" -v b="$c1" -v h="$hz" 'BEGIN {printf "%.2f", (b - a) / h}')}/"
}
run --mode stream --conns 1
run --mode stream --conns 8
run --mode cps --conns 16 --size 64
