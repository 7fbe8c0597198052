#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench_run.sh - bench/run end to end, briefly: nginx with the PEM key and
# with the key in a fresh SoftHSM token both complete mutual TLS for every
# connection, mtlsgw is measured (handshakes and record path), and the
# namespace, token and servers are gone afterwards - also when bench/run is
# killed in the middle. Each target must produce real figures (> 0; their
# size is never asserted), and a broken gateway must fail the run. With
# --profile, perf's breakdown per handshake is printed and filled for both
# HSM targets; --concurrency LIST sweeps and --plot draws valid PNG files.
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

: "${GW_BUILD:?}"
RUN=$GW_SRC/bench/run
command -v nginx >/dev/null || GW_TEST_SKIP=1
if [ "${GW_TEST_SKIP:-0}" = 1 ]; then
	echo "SKIP: nginx not installed"
	exit 77
fi

# bench/run's work dirs under our $T: its servers are told apart from those
# of any other bench/run on the machine (a test running beside this one)
export TMPDIR=$T/br
mkdir -p "$TMPDIR"
leftovers() { # namespaces, processes, DPDK runtime dirs bench/run PID left behind
	ip netns list | grep -w "gwbr$1" || true
	pgrep -f "nginx -p $TMPDIR/gwbr" || true
	pgrep -f "mtlsgw --config $TMPDIR/gwbr" || true
	ls -d "/var/run/dpdk/gwbr$1" 2>/dev/null || true
}
# gone PID : nothing of bench/run PID is left, after a bounded wait (a killed
# server is reaped asynchronously, slowly on a loaded machine); else say what
gone() {
	local left pids
	gw_wait 150 test -z "$(leftovers "$1")" && return 0
	left=$(leftovers "$1")
	echo "$left"
	pids=$(grep -E '^[0-9]+$' <<<"$left" | paste -sd, || true)
	[ -z "$pids" ] || ps -o pid,ppid,stat,etime,args -p "$pids" || true
	return 1
}

# rows_ok JSONL LABEL : the target's rows hold real figures: every
# connection completed mTLS (connections_ok > 0, handshakes/s > 0, no
# failure, server CPU read: the whole process's, > 0); for mtlsgw also the
# record path (MB/s echoed > 0), busy cycles read from the admin API
# (GET /v1/status) and the process figure among the parts, the one used
rows_ok() {
	python3 - "$1" "$2" <<'PY'
import json, sys
label = sys.argv[2]
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r.get("label") == label]
hs = [r for r in rows if r.get("echo_bytes", 0) == 0]
rec = [r for r in rows if r.get("echo_bytes", 0) > 0]
ok = bool(hs) and all(r["connections_ok"] > 0 and r["handshakes_per_s"] > 0 and r["failed"] == 0
                      and r["server_cpu_s"] > 0 and r.get("server_cpu_what") == "process"
                      for r in hs)
if label == "mtlsgw":
    ok = ok and bool(rec) and all(r["echo_mb_per_s"] > 0 and r["failed"] == 0 for r in rec)
    ok = ok and all(r.get("server_cpu_parts_s", {}).get("busy", 0) > 0 for r in hs + rec)
    parts = [r.get("server_cpu_parts_s", {}) for r in hs + rec]
    ok = ok and all(p.get("process", 0) == r["server_cpu_s"] for p, r in zip(parts, hs + rec))
print(f"{label}: {len(hs)} handshake row(s), {len(rec)} record row(s): "
      + ", ".join(f'{r.get("handshakes_per_s", 0):.0f} hs/s' if r in hs else
                  f'{r.get("echo_mb_per_s", 0):.1f} MB/s' for r in hs + rec)
      + "; process CPU " + ", ".join(f'{r.get("server_cpu_s", 0):.2f} s' for r in hs + rec))
sys.exit(0 if ok else 1)
PY
}

# extra_ok JSONL LABEL : the extra rows of a target are real (issue 12):
# resumed > 0 (the server really resumed), the paced row kept to its rate
# (at most the asked rate plus 10%: pacing, not performance) and
# completed connections, the idle row held every connection and read the
# RSS twice (a number per connection; its size is not asserted), for
# mtlsgw also the slot object sizes and the mbufs in use
extra_ok() {
	python3 - "$1" "$2" "$IDLE_N" <<'PY'
import json, sys
label, n = sys.argv[2], int(sys.argv[3])
rows = {r["label"]: r for r in (json.loads(l) for l in open(sys.argv[1]) if l.strip())}
res, pac, idl = (rows.get(f"{label}/{k}") for k in ("resumed", "80%", "idle"))
why = []
if not res or not (res["resumed"] > 0 and res["failed"] == 0 and res["server_cpu_s"] > 0):
    why.append(f"resumed: {res}")
if not pac or not (pac["rate"] > 0 and 0 < pac["handshakes_per_s"] <= pac["rate"] * 1.1 + 1
                   and pac["failed"] == 0):
    why.append(f"80%: {pac}")
if not idl or not (idl["held"] == n and idl["failed"] == 0 and idl["rss_before"] > 0
                   and idl["rss_after"] > 0 and isinstance(idl["bytes_per_conn"], float)):
    why.append(f"idle: {idl}")
elif label == "mtlsgw" and not (idl.get("slot_bytes", {}).get("tcp_conn", 0) > 0
                                and isinstance(idl.get("mbufs_after"), int)
                                and idl["mbufs_after"] >= 0):
    why.append(f"idle, mtlsgw's slot sizes / mbufs: {idl}")
if label == "mtlsgw":
    # paced once more at the rate nginx-hsm was given
    same, ng = rows.get("mtlsgw/80%nginx"), rows.get("nginx-hsm/80%")
    if not same or not ng or same["rate"] != ng["rate"] or same["failed"] != 0:
        why.append(f"80% at nginx-hsm's pace: {same}, nginx-hsm's: {ng}")
if pac and not (isinstance(pac.get("ns_tcp_retrans"), int) and pac["ns_tcp_retrans"] >= 0):
    why.append(f"80%: no retransmit count: {pac}")
# --wire: each paced row's capture saw its connections to the answer,
# lost no frame, and split their time into parts that add up
for k in ("80%", "80%nginx") if label == "mtlsgw" else ("80%",):
    r = rows.get(f"{label}/{k}")
    w = (r or {}).get("wire")
    if r and not (w and w["drops"] == 0 and 0.9 * r["connections_ok"] <= w["answered"]
                  <= r["connections_ok"] + r["concurrency"]
                  and 0 < w["server"]["p50"] <= w["total"]["p50"]
                  and 0 < w["client"]["p50"] <= w["total"]["p50"]
                  and w["in_flight"]["p50"] >= -0.001 and w["server_sent_again"] >= 0):
        why.append(f"{label}/{k} off the wire: {w} ({r['connections_ok']} connections)")
if why:
    print(f"{label}: " + "; ".join(why))
    sys.exit(1)
print(f"{label}: {res['resumed']} of {res['handshakes']} handshakes resumed; paced at "
      f"{pac['rate']:.0f}/s got {pac['handshakes_per_s']:.0f}/s; {idl['held']} held, "
      f"{idl['bytes_per_conn']:.0f} bytes each")
PY
}

# machine_ok JSONL MIN : every counted row has its machine reading (steal a
# share, other CPU seconds not negative), and on average at least MIN
# CPU-s per second went to processes bench/run did not start
machine_ok() {
	python3 - "$1" "$2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if "idle" not in r["label"]]
m = [r.get("machine") for r in rows]
ok = bool(rows) and all(x and 0 <= x["steal_pct"] <= 100 and x["other_cpu_s"] >= 0 for x in m)
other = sum(x["other_cpu_s"] for x in m if x) / sum(r["seconds"] for r in rows) if ok else 0
print(f"{len(rows)} rows, {other:.3f} CPU-s per second elsewhere, steal up to "
      f"{max((x or {}).get('steal_pct', -1) for x in m)}%")
sys.exit(0 if ok and other >= float(sys.argv[2]) else 1)
PY
}

# run_why LOG: what bench/run said went wrong (its reasons come before the
# tables, the profile's lines after them), then its last lines
run_why() {
	grep -E "failed|not measured|did not|exited|no mTLS|Traceback|Error" "$1" | head -20
	echo "--- last lines:"
	tail -15 "$1"
}

# 1. a short complete run: every target measured, with real figures
# (a 2 s warm-up: one record-path connection must finish in it on a busy
# box), and the extra rows: resumed, paced at 80%, 200 idle connections
IDLE_N=200
"$RUN" --build "$GW_BUILD" --seconds 2 --warmup 2 --record 256K --json "$T/out.jsonl" \
	--resumed --latency80 --wire --idle "$IDLE_N" >"$T/run.log" 2>&1 & pid=$!
wait "$pid" || gw_fail "bench/run failed: $(run_why "$T/run.log")"
cat "$T/run.log"
for t in nginx-pem nginx-hsm mtlsgw; do
	grep -q "^$t " "$T/run.log" || gw_fail "no $t row"
	got=$(rows_ok "$T/out.jsonl" "$t") || gw_fail "$got: $(grep "\"$t\"" "$T/out.jsonl")"
	gw_ok "$got; every connection completed mTLS, server process CPU read"
done
grep -q "^srv CPU s: utime+stime of the whole server process" "$T/run.log" || gw_fail "no CPU note"
grep -qE "^mtlsgw server CPU: the whole process .*process [0-9.]+ s, busy [0-9.]+ s" "$T/run.log" ||
	gw_fail "no mtlsgw CPU parts note: $(grep '^mtlsgw server CPU' "$T/run.log")"
gw_ok "the notes say how server CPU was counted, mtlsgw's busy cycles beside it"
grep -q "^nginx-hsm/nginx-pem: " "$T/run.log" || gw_fail "no HSM ratio"
gw_ok "ratio line printed"
# how quiet the machine was: every counted row carries its reading, the
# summary line gives a verdict (which one depends on the machine)
got=$(machine_ok "$T/out.jsonl" 0) || gw_fail "machine readings: $got"
grep -qE "^machine over the [0-9]+ counted runs: steal .*: (quiet|NOT quiet)" "$T/run.log" ||
	gw_fail "no machine line: $(grep '^machine' "$T/run.log")"
gw_ok "machine: $got; the verdict line printed"
for t in nginx-pem nginx-hsm mtlsgw; do
	got=$(extra_ok "$T/out.jsonl" "$t") || gw_fail "$got"
	gw_ok "$got"
done
for h in "^resumed: " "^latency at 80%: " "^idle: " "^mtlsgw/nginx-hsm: .* in RSS delta" \
	"^mtlsgw\* " "^mtlsgw/nginx-hsm at nginx-hsm's pace, concurrency" "^off the wire (--wire)"; do
	grep -q "$h" "$T/run.log" || gw_fail "no '$h' in the output"
done
gw_ok "the resumed, 80%, off-the-wire and idle tables are printed"
# a SIGKILLed server takes a moment to be reaped: bounded wait, as below
left=$(gone "$pid") || gw_fail "left behind: $left"
gw_ok "namespace and servers gone after the run"

# 1b. --profile: perf samples both servers; the breakdown per handshake is
# printed, and mtlsgw's rows hold samples in several DSO groups, libcrypto
# among them (the signatures and the ECDHE); sizes are not asserted. The
# same run sweeps two concurrencies and plots them (--plot). A busy loop
# beside it, not started by bench/run, must make the machine "NOT quiet".
gw_bg timeout 120 sh -c 'while :; do :; done'
hog=$GW_LAST_PID
"$RUN" --build "$GW_BUILD" --targets nginx-hsm,mtlsgw --seconds 1 --warmup 0.5 --record 0 \
	--concurrency 1,4 --profile --plot "$T/plots" --json "$T/prof.jsonl" >"$T/prof.log" 2>&1 &
pid=$!
wait "$pid" || gw_fail "bench/run --profile failed: $(run_why "$T/prof.log")"
# --retry-noisy 1 with the busy loop still running: the counted run is
# measured again once, the row keeps the dropped attempt's reading
"$RUN" --build "$GW_BUILD" --targets mtlsgw --seconds 1 --warmup 0.5 --record 0 --retry-noisy 1 \
	--json "$T/retry.jsonl" >"$T/retry.log" 2>&1 || gw_fail "--retry-noisy: $(run_why "$T/retry.log")"
kill "$hog" 2>/dev/null || true
cat "$T/prof.log"
got=$(machine_ok "$T/prof.jsonl" 0.2) || gw_fail "a busy loop beside the run not seen: $got"
grep -qE "^machine over the 4 counted runs: .*: NOT quiet, [0-9]+ run" "$T/prof.log" ||
	gw_fail "a busy loop beside the run, yet: $(grep '^machine' "$T/prof.log")"
gw_ok "a busy loop beside the run: $got, NOT quiet"
grep -q "^mtlsgw: the machine was not quiet (steal .* elsewhere): measured again (1 of 1)" \
	"$T/retry.log" || gw_fail "--retry-noisy: no retry said: $(grep -i 'quiet' "$T/retry.log")"
grep -q "^--retry-noisy: 1 attempt(s) dropped" "$T/retry.log" ||
	gw_fail "--retry-noisy: no summary: $(grep -i 'retry' "$T/retry.log")"
python3 -c 'import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
m = r[0]["machine"]
assert len(r) == 1 and r[0]["connections_ok"] > 0 and m["retried"] == 1, r
assert len(m["dropped"]) == 1 and "elsewhere" in m["dropped"][0], m' "$T/retry.jsonl" ||
	gw_fail "--retry-noisy rows: $(cat "$T/retry.jsonl")"
! "$RUN" --retry-noisy 1 --profile >"$T/retry2.log" 2>&1 || gw_fail "--retry-noisy with --profile ran"
grep -q "not with --profile or --wire" "$T/retry2.log" || gw_fail "$(cat "$T/retry2.log")"
gw_ok "--retry-noisy 1 beside a busy loop: measured again once, the dropped reading kept; refused with --profile"
grep -q "^profile: microseconds of server CPU per handshake" "$T/prof.log" || gw_fail "no profile"
for g in libcrypto libssl libc/malloc kernel DPDK "own code" softhsm/libp11 other "total sampled"; do
	grep -q "^$g  " "$T/prof.log" || gw_fail "profile: no '$g' line"
done
got=$(python3 - "$T/prof.jsonl" <<'PY'
import json, sys
rows = {r["label"]: r for r in map(json.loads, open(sys.argv[1])) if r.get("echo_bytes", 0) == 0}
# the sweep: both targets at both concurrencies, the profile of each
have = sorted((r["label"], r["concurrency"]) for r in map(json.loads, open(sys.argv[1])))
ok = have == [("mtlsgw", 1), ("mtlsgw", 4), ("nginx-hsm", 1), ("nginx-hsm", 4)]
out = [f"rows {have}"]
for label in ("nginx-hsm", "mtlsgw"):
    p = (rows.get(label) or {}).get("profile") or {}
    g = p.get("groups_us_per_hs", {})
    nz = [k for k, v in g.items() if v > 0]
    ok = ok and p.get("samples", 0) > 0 and g.get("libcrypto", 0) > 0 and bool(p.get("top"))
    if label == "mtlsgw":
        ok = ok and len(nz) >= 3 and bool(p.get("threads_us_per_hs"))
    out.append(f"{label}: {p.get('samples', 0)} samples, {p.get('us_per_hs', 0):.0f} us/handshake in "
               + ", ".join(nz))
print("; ".join(out))
sys.exit(0 if ok else 1)
PY
) || gw_fail "profile rows: $got"
gw_ok "--profile: $got"
left=$(gone "$pid") || gw_fail "left behind (perf too): $left"
pgrep -f "perf record .*-o $TMPDIR/gwbr" && gw_fail "perf record left running"
gw_ok "no perf left running"
grep -q "^sweep: handshakes/s" "$T/prof.log" || gw_fail "no sweep summary"
# --plot: concurrency.png, a PNG (signature) that matplotlib reads back as
# an image of some size
[ -f "$T/plots/concurrency.png" ] || gw_fail "no plot: $(ls -la "$T/plots" 2>&1)"
got=$(/usr/bin/python3 - "$T/plots/concurrency.png" <<'PY'
import sys
import matplotlib.image
with open(sys.argv[1], "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
img = matplotlib.image.imread(sys.argv[1])
assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, img.shape
print(f"{img.shape[1]}x{img.shape[0]} PNG")
PY
) || gw_fail "concurrency.png: $got"
gw_ok "--plot: concurrency.png is a $got"
# bench/plot.py alone, on saved --json rows (as bench_hsm_delay's would be):
# HSM-delay rows give hsm-delay.png; rows with nothing to draw fail
python3 -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l); r["hsm_delay_us"] = 1000 * r["concurrency"]; print(json.dumps(r))' \
	"$T/prof.jsonl" >"$T/delay.jsonl"
/usr/bin/python3 "$GW_SRC/bench/plot.py" --out "$T/plots2" "$T/delay.jsonl" >"$T/plot2.log" ||
	gw_fail "plot.py: $(cat "$T/plot2.log")"
[ "$(head -c 8 "$T/plots2/hsm-delay.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
	gw_fail "hsm-delay.png is not a PNG"
: >"$T/empty.jsonl"
! /usr/bin/python3 "$GW_SRC/bench/plot.py" --out "$T/plots3" "$T/empty.jsonl" 2>/dev/null ||
	gw_fail "plot.py drew something from no rows"
# the extra rows of a whole --json file (resumed, paced, idle) are not drawn
grep '"label": "[a-z-]*/' "$T/out.jsonl" >"$T/extra.jsonl" || gw_fail "no extra rows in out.jsonl"
! /usr/bin/python3 "$GW_SRC/bench/plot.py" --out "$T/plots4" "$T/extra.jsonl" 2>/dev/null ||
	gw_fail "plot.py drew the resumed/paced/idle rows"
gw_ok "bench/plot.py alone: hsm-delay.png from HSM-delay rows, an error for no rows or extra rows only"

# 2. killed mid-run: the trap still cleans up
"$RUN" --build "$GW_BUILD" --targets nginx-hsm --seconds 30 --warmup 0.5 >"$T/kill.log" 2>&1 &
pid=$!
gw_wait 300 pgrep -f "nginx -p $TMPDIR/gwbr" || gw_fail "nginx never started: $(cat "$T/kill.log")"
sleep 1
kill -TERM "$pid"
wait "$pid" || true
left=$(gone "$pid") || gw_fail "left behind after kill: $left"
gw_ok "killed mid-run: namespace and nginx removed"

# 3. the same while the gateway runs (it may exit by itself if it cannot
# terminate TLS: then there is nothing to kill, only to check)
"$RUN" --build "$GW_BUILD" --targets mtlsgw --seconds 30 --warmup 0.5 >"$T/kill2.log" 2>&1 &
pid=$!
if gw_wait 300 pgrep -f "mtlsgw --config $TMPDIR/gwbr"; then
	sleep 2
	kill -TERM "$pid"
fi
wait "$pid" || true
left=$(gone "$pid") || gw_fail "left behind after kill: $left"
gw_ok "killed while mtlsgw runs: namespace, gateway and DPDK runtime dir removed"

# 4. a broken gateway fails the run and the checks above: one that exits at
# start, one that runs but answers nothing (its listener on another port);
# bench/run exits 1, says why with the tail of the gateway's log, and no
# mtlsgw row passes rows_ok. Fake build dirs: the real bench client and
# mtlsgw-ctl, a broken tools/mtlsgw.
broken_build() { # broken_build DIR < SCRIPT : DIR/tools/mtlsgw is SCRIPT
	mkdir -p "$1/bench" "$1/tools"
	ln -s "$GW_BUILD/bench/mtlsgw-bench" "$1/bench/"
	ln -s "$GW_BUILD/tools/mtlsgw-ctl" "$1/tools/"
	cat >"$1/tools/mtlsgw"
	chmod 755 "$1/tools/mtlsgw"
}
broken_build "$T/b-exit" <<'EOS'
#!/bin/sh
echo "mtlsgw: broken on purpose (bench_run.sh)" >&2
exit 1
EOS
broken_build "$T/b-mute" <<EOS
#!/bin/sh
# the listener moves to port 1: the gateway runs, nothing answers on the bench's port
sed -E 's/^(    address: [0-9.]+):[0-9]+\$/\\1:1/' "\$2" >"\$2.mute"
exec "$GW_BUILD/tools/mtlsgw" --config "\$2.mute"
EOS
for b in exit mute; do
	rc=0
	"$RUN" --build "$T/b-$b" --targets mtlsgw --seconds 1 --warmup 0.5 --record 1M \
		--json "$T/$b.jsonl" >"$T/$b.log" 2>&1 & pid=$!
	wait "$pid" || rc=$?
	[ "$rc" -ne 0 ] || gw_fail "bench/run passed with a gateway that does '$b': $(cat "$T/$b.log")"
	! rows_ok "$T/$b.jsonl" mtlsgw >/dev/null || gw_fail "rows_ok passed for a gateway that does '$b'"
	grep -q "^mtlsgw  not measured: " "$T/$b.log" || gw_fail "$b: no reason given: $(cat "$T/$b.log")"
	grep -q "the tail of its log" "$T/$b.log" || gw_fail "$b: no gateway log shown: $(cat "$T/$b.log")"
	left=$(gone "$pid") || gw_fail "left behind: $left"
	gw_ok "broken gateway ($b): bench/run exits $rc: $(grep -m1 '^mtlsgw  not measured' "$T/$b.log" | cut -c1-100)"
done
grep -q "broken on purpose" "$T/exit.log" || gw_fail "the exited gateway's own message is not shown"
grep -q "nothing accepts TCP" "$T/mute.log" || gw_fail "mute: $(cat "$T/mute.log")"
gw_ok "the reasons name the cause: the gateway's own message, nothing accepting TCP"

gw_done
