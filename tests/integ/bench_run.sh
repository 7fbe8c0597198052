#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench_run.sh - bench/run end to end, briefly: nginx with the PEM key and
# with the key in a fresh SoftHSM token both complete mutual TLS for every
# connection, the mtlsgw row is either measured or says why not, and the
# namespace, token and servers are gone afterwards - also when bench/run is
# killed in the middle. Figures are printed, never asserted.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

: "${GW_BUILD:?}"
RUN=$GW_SRC/bench/run
command -v nginx >/dev/null || GW_TEST_SKIP=1
if [ "${GW_TEST_SKIP:-0}" = 1 ]; then
	echo "SKIP: nginx not installed"
	exit 77
fi

leftovers() { # namespaces, processes, DPDK runtime dirs bench/run PID left behind
	ip netns list | grep -w "gwbr$1" || true
	pgrep -f "nginx -p /tmp/gwbr" || true
	pgrep -f "mtlsgw --config /tmp/gwbr" || true
	ls -d "/var/run/dpdk/gwbr$1" 2>/dev/null || true
}

# 1. a short complete run
"$RUN" --build "$GW_BUILD" --seconds 1 --warmup 0.5 --record 1M --json "$T/out.jsonl" \
	>"$T/run.log" 2>&1 & pid=$!
wait "$pid" || gw_fail "bench/run failed: $(tail -20 "$T/run.log")"
cat "$T/run.log"
for t in nginx-pem nginx-hsm; do
	grep -q "^$t " "$T/run.log" || gw_fail "no $t row"
	python3 - "$T/out.jsonl" "$t" <<'PY' || gw_fail "$t: $(grep "\"$t\"" "$T/out.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l).get("label") == sys.argv[2]]
ok = rows and all(r["connections_ok"] > 0 and r["failed"] == 0 and r["server_cpu_s"] > 0
                  for r in rows)
sys.exit(0 if ok else 1)
PY
	gw_ok "$t: every connection completed mTLS and got its answer; server CPU read"
done
grep -qE '^mtlsgw ' "$T/run.log" || gw_fail "no mtlsgw line"
if grep -q '"label": "mtlsgw"' "$T/out.jsonl"; then
	# measured: handshakes and the record path both complete, nothing failed
	python3 - "$T/out.jsonl" <<'PY' || gw_fail "mtlsgw: $(grep '"mtlsgw"' "$T/out.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rows = [r for r in rows if r.get("label") == "mtlsgw"]
hs = [r for r in rows if r["echo_bytes"] == 0]
rec = [r for r in rows if r["echo_bytes"] > 0]
ok = (hs and rec and all(r["connections_ok"] > 0 and r["failed"] == 0 and r["server_cpu_s"] > 0
                         for r in hs + rec))
# the worker's busy cycles came through mtlsgw-ctl status (GET /v1/status)
# and grew over the counted run
ok = ok and all(r.get("server_cpu_parts_s", {}).get("busy", 0) > 0 for r in hs + rec)
sys.exit(0 if ok else 1)
PY
	gw_ok "mtlsgw measured: handshakes and record path, 0 failures, busy cycles read from the admin API"
else
	grep -q '^mtlsgw  not built yet: ' "$T/run.log" || gw_fail "mtlsgw neither measured nor explained"
	gw_ok "mtlsgw row: $(grep -m1 -E '^mtlsgw ' "$T/run.log" | cut -c1-100)"
fi
grep -q "^nginx-hsm/nginx-pem: " "$T/run.log" || gw_fail "no HSM ratio"
gw_ok "ratio line printed"
# a SIGKILLed server takes a moment to be reaped: bounded wait, as below
gw_wait 50 test -z "$(leftovers "$pid")" || gw_fail "left behind: $(leftovers "$pid")"
gw_ok "namespace and servers gone after the run"

# 2. killed mid-run: the trap still cleans up
"$RUN" --build "$GW_BUILD" --targets nginx-hsm --seconds 30 --warmup 0.5 >"$T/kill.log" 2>&1 &
pid=$!
gw_wait 300 pgrep -f "nginx -p /tmp/gwbr" || gw_fail "nginx never started: $(cat "$T/kill.log")"
sleep 1
kill -TERM "$pid"
wait "$pid" || true
gw_wait 50 test -z "$(leftovers "$pid")" || gw_fail "left behind after kill: $(leftovers "$pid")"
gw_ok "killed mid-run: namespace and nginx removed"

# 3. the same while the gateway runs (it may exit by itself if it cannot
# terminate TLS: then there is nothing to kill, only to check)
"$RUN" --build "$GW_BUILD" --targets mtlsgw --seconds 30 --warmup 0.5 >"$T/kill2.log" 2>&1 &
pid=$!
if gw_wait 300 pgrep -f "mtlsgw --config /tmp/gwbr"; then
	sleep 2
	kill -TERM "$pid"
fi
wait "$pid" || true
gw_wait 50 test -z "$(leftovers "$pid")" || gw_fail "left behind after kill: $(leftovers "$pid")"
gw_ok "killed while mtlsgw runs: namespace, gateway and DPDK runtime dir removed"

gw_done
