#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench/memif_echo.sh end to end, 1 s per run: every run reports, no byte
# comes back wrong, connections complete. No timing is asserted.
. "$(dirname "$0")/../lib/common.sh"
: "${GW_BUILD:?}"

out=$(bash "$GW_SRC/bench/memif_echo.sh" "$GW_BUILD" 1) || gw_fail "memif_echo.sh: $out"
echo "$out" | sed 's/^/  /'
[ "$(echo "$out" | grep -c '"corrupt":0')" -eq 3 ] || gw_fail "corrupt bytes or missing runs"
"$GW_PY" - "$out" <<'PY' || gw_fail "a run moved nothing"
import json, sys
runs = [json.loads(l) for l in sys.argv[1].splitlines()]
assert runs[0]["bytes"] > 0 and runs[1]["bytes"] > 0 and runs[2]["completed"] > 0, runs
PY
gw_ok "memif bench: stream x1, stream x8 and cps ran, all bytes checked"
! ip netns list | grep -q '^gwbench' || gw_fail "the bench left its namespace behind"
gw_done
