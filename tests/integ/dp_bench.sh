#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench/memif_echo.sh and bench/memif_tls.sh end to end, 1 s per run: every
# run reports, no byte comes back wrong, connections complete, the TLS runs
# use TLS_AES_128_GCM_SHA256 and see the gateway's worker CPU. No timing is
# asserted.
. "$(dirname "$0")/../lib/common.sh"
: "${GW_BUILD:?}"
# a name of our own: other runs of the benches may be going on beside us
export GW_BENCH_NS="gwdpb$$"

out=$(bash "$GW_SRC/bench/memif_echo.sh" "$GW_BUILD" 1) || gw_fail "memif_echo.sh: $out"
echo "$out" | sed 's/^/  /'
[ "$(echo "$out" | grep -c '"corrupt":0')" -eq 3 ] || gw_fail "corrupt bytes or missing runs"
"$GW_PY" - "$out" <<'PY' || gw_fail "a run moved nothing"
import json, sys
runs = [json.loads(l) for l in sys.argv[1].splitlines()]
assert runs[0]["bytes"] > 0 and runs[1]["bytes"] > 0 and runs[2]["completed"] > 0, runs
PY
gw_ok "memif bench: stream x1, stream x8 and cps ran, all bytes checked"
! ip netns list | grep -q "^$GW_BENCH_NS\\b" || gw_fail "the bench left its namespace behind"

out=$(bash "$GW_SRC/bench/memif_tls.sh" "$GW_BUILD" 1 2>&1) || gw_fail "memif_tls.sh: $out"
echo "$out" | grep -v '^{' | sed 's/^/  /'
"$GW_PY" - "$out" <<'PY' || gw_fail "memif_tls.sh: a run failed"
import json, sys
runs = {r["case"]: r for r in (json.loads(l) for l in sys.argv[1].splitlines() if l.startswith("{"))}
cases = [s + "-x" + n for n in ("1", "8") for s in ("echo", "tls-echo", "tls-proxy")]
assert sorted(runs) == sorted(cases), sorted(runs)
for name, r in runs.items():
    assert r["bytes"] > 0 and r["corrupt"] == 0 and r["failed"] == 0, r
    assert r["workers"] == 1 and r["worker_cpu_s"] > 0, r
    if name.startswith("tls"):
        assert r["cipher"] == "TLS_AES_128_GCM_SHA256" and r["handshakes"] == r["conns"], r
PY
gw_ok "memif TLS bench: echo, tls-echo, tls-proxy x1 and x8 ran, all bytes checked"
! ip netns list | grep -q "^$GW_BENCH_NS\\b" || gw_fail "memif_tls.sh left its namespace behind"
gw_done
