#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench_hsm_delay.sh - bench/run --hsm-delay 0,2ms end to end, briefly: both
# HSM targets (nginx-hsm, mtlsgw) run behind tests/lib's delaying PKCS#11
# module (bench/run itself fails a target whose server did not map it), the
# table has a row per delay with both targets' rates, and the JSON rows hold
# real figures: connections completed mTLS (rate > 0). The delay reaches
# both servers: at 2 ms every handshake waits for one signature, so the
# median handshake takes >= 2 ms (a lower bound; no rate and no ratio is
# ever asserted). Bad arguments are refused before anything starts.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

: "${GW_BUILD:?}"
RUN=$GW_SRC/bench/run
if ! command -v nginx >/dev/null; then
	echo "SKIP: nginx not installed"
	exit 77
fi
[ -f "$GW_BUILD/tests/lib/libgw_p11delay.so" ] || gw_fail "libgw_p11delay.so not built in $GW_BUILD"

# 1. refused: a delay with a unit it does not know, nginx-pem (no HSM), a bad cap
for args in "--hsm-delay 2xs" "--hsm-delay 1,,x" "--hsm-delay 2ms --targets nginx-pem" \
	"--hsm-delay 2ms --hsm-max -1"; do
	rc=0
	# shellcheck disable=SC2086 # the words are the arguments
	"$RUN" --build "$GW_BUILD" $args >"$T/bad.log" 2>&1 || rc=$?
	[ "$rc" -ne 0 ] || gw_fail "bench/run $args passed: $(cat "$T/bad.log")"
	grep -q "^bench/run: --hsm-\(delay\|max\)" "$T/bad.log" ||
		gw_fail "bench/run $args: no reason given: $(cat "$T/bad.log")"
	gw_ok "refused: $args: $(head -1 "$T/bad.log")"
done

# 2. a short run: 0 and 2 ms, both targets, 2 s each. 16 clients, not the
# table's 64: 64 handshakes started at once on a server slowed by a busy
# box can all still be in flight when a short window closes
"$RUN" --build "$GW_BUILD" --hsm-delay 0,2ms --concurrency 16 --seconds 2 --warmup 1 \
	--json "$T/hd.jsonl" >"$T/run.log" 2>&1 & pid=$!
wait "$pid" || gw_fail "bench/run --hsm-delay failed: $(tail -40 "$T/run.log")"
cat "$T/run.log"
grep -q "^HSM delay .*mtlsgw hs/s .*nginx hs/s" "$T/run.log" || gw_fail "no table header"
for d in 0 2; do
	grep -qE "^ +$d ms +[0-9.]+ +[0-9.]+ +[0-9.]+ " "$T/run.log" || gw_fail "no $d ms row with both rates"
done
gw_ok "the table has a 0 ms and a 2 ms row, each with both rates"
python3 - "$T/hd.jsonl" <<'PY' || gw_fail "JSON rows: $(cat "$T/hd.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = 0
for us in (0, 2000):
    for label in ("mtlsgw", "nginx-hsm"):
        rs = [r for r in rows if r["hsm_delay_us"] == us and r["label"] == label]
        ok = len(rs) == 1 and rs[0]["connections_ok"] > 0 and rs[0]["handshakes_per_s"] > 0
        # one signature per handshake: none can be quicker than the delay
        ok = ok and rs[0]["p50_us"] >= us
        print(f"{label} at {us} us: " + (f"{rs[0]['handshakes_per_s']:.0f} hs/s, p50 "
              f"{rs[0]['p50_us'] / 1e3:.2f} ms, {rs[0]['failed']} failed" if rs else "no row"))
        bad += not ok
sys.exit(1 if bad else 0)
PY
gw_ok "both targets measured at both delays; at 2 ms the median handshake took >= 2 ms"
gw_wait 50 test -z "$(ip netns list | grep -w "gwbr$pid" || true)" ||
	gw_fail "namespace gwbr$pid left behind"
gw_ok "namespace gone after the run"

gw_done
