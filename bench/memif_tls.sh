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
# The rules of bench/memif_lib.sh hold: each run gets a fresh gateway, the
# memif connection is torn down with both workers stopped, and a gateway
# that dies of a signal leaves its core in /tmp/memif_tls.core.PID.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
secs=${2:-5}
. bench/memif_lib.sh
memif_setup memif_tls.sh "${1:-build}"

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
{
	memif_gw_yaml
	cat <<EOC
$(tls_listener tls-echo 8443 tls-echo)
$(tls_listener tls-proxy 8444 tls-proxy)
    upstream:
      servers: [10.98.0.3:9000]
hsm:
  module: $BENCH_PKCS11_MODULE
  pin_file: $PKI/pin
state_dir: $T/state
EOC
} >"$T/gw.yaml"
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
	local name=$1 tid perf_pid=""
	shift
	memif_start_gw
	memif_bench_start --cpu-pid "$gw" "$@"
	if [ "${GW_PERF:-0}" = 1 ] && tid=$(worker_tid); then
		# the bench warms up for 1 s, then measures for $secs
		sleep 1
		perf record -q -e cpu-clock -t "$tid" -o "$T/perf.$name.data" -- sleep "$secs" \
			>/dev/null 2>"$T/perf.err" &
		perf_pid=$!
	fi
	memif_bench_wait "$name"
	[ -z "$perf_pid" ] || wait "$perf_pid" || true
	memif_finish "$name"
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
