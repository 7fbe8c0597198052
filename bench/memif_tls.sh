#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The TLS record path measured over memif from another DPDK process (our
# TCP on both ends, OpenSSL on both ends, no kernel in the path), in a
# network namespace of its own:
#   bash bench/memif_tls.sh [BUILD_DIR] [SECONDS]
#   GW_PERF=1 bash bench/memif_tls.sh ...   also profile the gateway's worker
# Starts mtlsgw (memif server 10.98.0.2, one worker, idle: adaptive) with
# three listeners: echo :7, tls-echo :8443 and tls-proxy :8444, whose
# upstream is the bench's own plain echo on 10.98.0.3:9000 (over the same
# memif link). mtlsgw-bench-memif (memif client 10.98.0.3, its worker on the
# other CPU) streams through each with 1 and 8 connections: TLS 1.3,
# TLS_AES_128_GCM_SHA256, 16 KiB records, mTLS with the server key in a fresh
# SoftHSM token, every byte checked. One JSON line per run (stdout), then a
# table: MB/s echoed (each way), the gateway worker's CPU seconds, MB per
# worker CPU-second and the same as Gbit/s per core. Figures only: nothing
# asserted beyond "every byte came back right".
#
# GW_PERF=1: perf record -e cpu-clock on the worker thread during each run,
# and the top symbols (software checksums, AES-GCM, memif copies, ...).
#
# The rules of bench/memif_echo.sh hold: each run gets a fresh gateway, and
# the memif connection is only torn down with both workers stopped (the
# bench holds it with --hold, the gateway is stopped first and must exit 0,
# then the bench). A gateway that dies of a signal leaves its core (when
# the core limit allows one) in /tmp/memif_tls.core.PID, named on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
b=$(cd "${1:-build}" && pwd)
secs=${2:-5}
T=$(mktemp -d /tmp/gwbench.XXXXXX)
ns="${GW_BENCH_NS:-gwbench$$}" # dp_bench.sh names it to watch it
gw=""
bench=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$rc" -ne 0 ] && [ -s "$T/gw.err" ]; then
		echo "memif_tls.sh: failed (exit $rc); the last 40 lines of mtlsgw's stderr:" >&2
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

# the PKI and the token as bench/run makes them (the product's own tools
# when this build has them)
. "$SRC/bench/pki.sh"
PKI=$T/pki
if bench_ctl_has_pki "$b/tools/mtlsgw-ctl"; then
	bench_pki_ctl "$b/tools/mtlsgw-ctl" "$PKI" "$T/softhsm" >&2
else
	{ bench_pki "$PKI" && bench_pki_hsm "$PKI" "$T/softhsm"; } >&2
fi
export SOFTHSM2_CONF

mkdir -p "$T/state"
tls_listener() { # tls_listener NAME PORT SERVICE
	cat <<EOL
  - name: $1
    address: 10.98.0.2:$2
    service: $3
    tls:
      min_version: "1.3"
      session_tickets: false
      identity:
        - cert: $PKI/server-hsm.chain.pem
          key: "pkcs11:token=gw;object=server;type=private"
          sni: [$BENCH_SERVERNAME]
    trust:
      mode: ca
      certs: [$PKI/root.pem]
EOL
}
cat >"$T/gw.yaml" <<EOC
dataplane:
  workers: [1]
  idle: adaptive
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
$(tls_listener tls-echo 8443 tls-echo)
$(tls_listener tls-proxy 8444 tls-proxy)
    upstream:
      servers: [10.98.0.3:9000]
hsm:
  module: $BENCH_PKCS11_MODULE
  pin_file: $PKI/pin
state_dir: $T/state
EOC
start_gw() {
	: >"$T/gw.err"
	# its working directory is $T: a core file lands there
	(cd "$T" && ulimit -c unlimited 2>/dev/null; exec ip netns exec "$ns" "$b/tools/mtlsgw" \
		--config "$T/gw.yaml") >"$T/gw.out" 2>>"$T/gw.err" &
	gw=$!
	for _ in $(seq 600); do
		grep -qs "mtlsgw: running" "$T/gw.err" && return 0
		kill -0 "$gw" 2>/dev/null || break
		sleep 0.1
	done
	echo "memif_tls.sh: mtlsgw did not start" >&2
	exit 1
}
stop() { # stop PID WHAT [LOG] : SIGTERM, wait, fail (showing LOG) unless it exits 0
	local rc=0 core
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" || rc=$?
	[ "$rc" -eq 0 ] && return 0
	echo "memif_tls.sh: $2 exited $rc" >&2
	for core in "$T"/core*; do
		[ -f "$core" ] || continue
		mv "$core" "/tmp/memif_tls.core.$1"
		echo "memif_tls.sh: its core: /tmp/memif_tls.core.$1 (gdb $b/tools/mtlsgw ...)" >&2
	done
	[ -z "${3:-}" ] || cat "$3" >&2
	exit 1
}
worker_tid() { # the gateway's worker thread (DPDK names it lcore-worker-N)
	local t
	for t in /proc/"$gw"/task/*; do
		case $(cat "$t/comm" 2>/dev/null) in
		*worker*) echo "${t##*/}"; return 0 ;;
		esac
	done
	return 1
}
perf_top() { # perf_top DATA : the share of each library, then the top symbols
	perf report -i "$1" --stdio --sort dso --percent-limit 1 2>/dev/null |
		grep -E '^ +[0-9]' | awk '{printf "%s %s; ", $1, $2} END {print ""}'
	perf report -i "$1" --stdio --sort dso,symbol --percent-limit 1.5 2>/dev/null |
		grep -E '^ +[0-9]' | awk '{print $1, $2, $4}' | head -n 12
}
run() { # run CASE ARGS... : one bench run against a fresh gateway
	local name=$1 out tid perf_pid=""
	shift
	start_gw
	: >"$T/bench.out"
	# lcore 2 maps to the CPU the gateway's worker (lcore 1) does not use
	ip netns exec "$ns" "$b/bench/mtlsgw-bench-memif" --socket "$T/memif.sock" \
		--lcore 2 --seconds "$secs" --hold --cpu-pid "$gw" "$@" \
		>"$T/bench.out" 2>"$T/bench.err" &
	bench=$!
	if [ "${GW_PERF:-0}" = 1 ] && tid=$(worker_tid); then
		# the bench warms up for 1 s, then measures for $secs
		sleep 1
		perf record -q -e cpu-clock -t "$tid" -o "$T/perf.$name.data" -- sleep "$secs" \
			>/dev/null 2>"$T/perf.err" &
		perf_pid=$!
	fi
	while ! grep -qs '^{' "$T/bench.out"; do
		kill -0 "$bench" 2>/dev/null || { cat "$T/bench.err" >&2; bench=""; exit 1; }
		kill -0 "$gw" 2>/dev/null || { echo "memif_tls.sh: mtlsgw died during the run: $name" >&2; exit 1; }
		sleep 0.1
	done
	[ -z "$perf_pid" ] || wait "$perf_pid" || true
	out=$(head -1 "$T/bench.out")
	# both workers stopped from here on: gateway first, then the bench
	stop "$gw" "mtlsgw (after: $name)"
	gw=""
	stop "$bench" "mtlsgw-bench-memif ($name)" "$T/bench.err"
	bench=""
	echo "${out%\}},\"case\":\"$name\"}" | tee -a "$T/results.jsonl"
	if [ -n "$perf_pid" ]; then
		echo "# $name: gateway worker profile (perf, cpu-clock), top symbols:"
		perf_top "$T/perf.$name.data" | sed 's/^/#   /'
	fi
}
tls=(--tls --cert "$PKI/client.chain.pem" --key "$PKI/client.key" --ca "$PKI/root.pem"
	--servername "$BENCH_SERVERNAME")
for n in 1 8; do
	run "echo-x$n" --mode stream --conns "$n" --port 7
	run "tls-echo-x$n" --mode stream --conns "$n" --port 8443 "${tls[@]}"
	run "tls-proxy-x$n" --mode stream --conns "$n" --port 8444 --echo-port 9000 "${tls[@]}"
done
echo "# load during the runs: $(uptime | sed 's/.*load/load/')"
python3 - "$T/results.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print("# %-13s %9s %12s %18s %16s" % ("case", "MB/s", "worker CPU s", "MB/worker CPU-s", "Gbit/s per core"))
for r in runs:
    per = r.get("mb_per_worker_cpu_s", 0)
    print("# %-13s %9.1f %12.2f %18.1f %16.2f" % (r["case"], r["mb_per_s"],
          r.get("worker_cpu_s", 0), per, per * 8 / 1000))
PY
