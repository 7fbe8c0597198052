#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Two workers behind one tap through the real mtlsgw (software Toeplitz
# dispatch between them), server key in a fresh SoftHSM token, in our own
# namespace, with `workers: [0, 1]`: on a 2-CPU box (CI) the main lcore
# then has no CPU of its own and floats (control/config.h). Proves:
#  - the config loads and the EAL line places the lcores by the rule;
#  - several concurrent TLS clients land on both workers (the per-worker
#    handshake counters, "tls"."per_worker_hs", both move), data byte-exact;
#  - a TLS 1.3 session from a connection served by worker A resumes on a
#    connection served by worker B (source ports tried until the counters
#    show B resumed it), data byte-exact: the ticket keys are shared;
#  - the new keys reach the running gateway: tls.ticket_lifetime 30m is the
#    tickets' lifetime hint; dataplane.tcp.rcvbuf 128 KiB gives window
#    scale 2 in the SYN-ACK (256 KiB would give 3); with
#    dataplane.tls.idle_timeout 2s an idle TLS connection is closed by the
#    gateway and counted (idle_timeout);
#  - with dataplane.idle: interrupt both workers wait for the tap's RX
#    interrupts (and each other's dispatched packets, and HSM answers) when
#    idle: everything above runs that way, and idle waits are counted.
. "$(dirname "$0")/../lib/common.sh"
. "$GW_SRC/tests/lib/tls.sh"

gw_tls_pki
GW_IDLE=interrupt gw_gateway_config "$T/gw.yaml" "[0, 1]" "$(gw_tls_listener echo 8443 tls-echo --sni \
	--tls 'min_version: "1.3"' --tls 'ticket_lifetime: 30m')"
gw_tls_hsm "$T/gw.yaml"
# the knobs, under dataplane: (before listeners:)
sed -i '/^listeners:/i\
  tls: {handshake_timeout: 8s, idle_timeout: 2s, max_handshakes: 64}\
  tcp: {time_wait: 500ms, handshake_timeout: 5s, idle_timeout: 60s, rto_min: 100ms, sndbuf: 131072, rcvbuf: 131072}' "$T/gw.yaml"

eal=$("$MTLSGW" --config "$T/gw.yaml" --print-eal) || gw_fail "--print-eal: $eal"
cpus=$("$GW_PY" -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')
case "$cpus" in
0,1) want="--lcores=2@(0-1),0@0,1@1 --main-lcore=2 " ;; # CI: main floats on both CPUs
0,1,2*) want="--lcores=2@2,0@0,1@1 --main-lcore=2 " ;;  # a CPU of its own, as before
*) want="--main-lcore=2 " ;;
esac
case "$eal" in
*"$want"*) ;;
*) gw_fail "EAL line for workers [0, 1] on CPUs $cpus: want '$want' in: $eal" ;;
esac
gw_ok "workers [0, 1] on CPUs $cpus: $(echo "$eal" | grep -o -- '--lcores=[^ ]*')"

gw_start_gateway "$T/gw.yaml"
grep -q "2 rxq 2 txq, software RSS dispatch" "$T/gw.err" || gw_fail "ports: $(cat "$T/gw.err")"
grep -q "idle: interrupt: 2 of 2 workers wait for RX interrupts" "$T/gw.err" ||
	gw_fail "idle: interrupt: $(grep -i interrupt "$T/gw.err")"
gw_ok "mtlsgw runs 2 workers on one tap (software dispatch, idle: interrupt), knobs loaded"

# hsm_threads_cpus PID : the gw-hsm threads' count and their CPUs, "N a,b"
hsm_threads_cpus() {
	"$GW_PY" - "$1" <<'PY'
import os, sys
d = "/proc/%s/task" % sys.argv[1]
cpus = set()
n = 0
for t in os.listdir(d):
    if open("%s/%s/comm" % (d, t)).read().startswith("gw-hsm-"):
        n += 1
        cpus |= os.sched_getaffinity(int(t))
print(n, ",".join(map(str, sorted(cpus))))
PY
}
# the HSM threads: on the CPUs no worker uses; all of them here when the
# workers take both CPUs of a 2-CPU box
spare=$("$GW_PY" -c 'import os; s = sorted(os.sched_getaffinity(0) - {0, 1}) or sorted(os.sched_getaffinity(0)); print(",".join(map(str, s)))')
got=$(hsm_threads_cpus "$GW_GW_PID")
[ "$got" = "16 $spare" ] || gw_fail "gw-hsm threads: '$got', want '16 $spare' (CPUs no worker uses)"
grep -q "16 HSM thread(s) on CPU(s) .* (those no worker runs on)" "$T/gw.err" ||
	gw_fail "no HSM threads line: $(grep -i hsm "$T/gw.err")"
gw_ok "16 gw-hsm threads on CPUs $spare (those no worker runs on), and the start says where"

gw_in "$GW_PY" - "$GW_GW_IP" "$P" "$SNI" "$T/gw.out" "$GW_GW_PID" <<'PY' || gw_fail "workers"
import hashlib, json, os, re, signal, socket, ssl, subprocess, sys, threading, time
sys.path.insert(0, os.environ["GW_SRC"] + "/tests/integ")
from tls_peer import ctx_for, pump
ip, p, sni, out, pid = sys.argv[1:6]

def stats():
    """The gateway's counters line, fresh (SIGUSR1 appends one)."""
    n = open(out).read().count("\n")
    os.kill(int(pid), signal.SIGUSR1)
    for _ in range(200):
        lines = open(out).read().splitlines()
        if len(lines) > n:
            return json.loads(lines[-1])
        time.sleep(0.05)
    sys.exit("no counters line")

def per_worker(key):
    return [w[key] for w in stats()["tls"]["per_worker_hs"]]

def settled(get, done):
    """Workers copy their counters for control every millisecond: read
    until done(value) or 5 s passed; return the last value."""
    for _ in range(50):
        v = get()
        if done(v):
            break
        time.sleep(0.1)
    return v

def ctx():
    c = ctx_for(p)
    c.minimum_version = ssl.TLSVersion.TLSv1_3
    return c

CTX = ctx()

def echo(s, data):
    """Send data, read it back whole; byte-exact or exit. One thread: an
    SSL object must not be used from two at once."""
    got = bytearray()
    pump(s, data, got.extend, lambda: len(got) >= len(data), tag="echo")
    if hashlib.sha256(got).digest() != hashlib.sha256(data).digest():
        sys.exit("echo differs")

def conn(sport=0, session=None):
    raw = socket.create_connection((ip, 8443), timeout=20, source_address=("", sport))
    return CTX.wrap_socket(raw, server_hostname=sni, session=session)

# --- several concurrent clients: both workers get handshakes
before = per_worker("hs_full")
errs = []
def client(i):
    try:
        s = conn()
        echo(s, os.urandom(256 << 10))
        s.close()
    except BaseException as e:
        errs.append("client %d: %r" % (i, e))
ts = [threading.Thread(target=client, args=(i,)) for i in range(12)]
[t.start() for t in ts]
[t.join() for t in ts]
if errs:
    t = stats()["tls"]
    sys.exit("; ".join(errs) + "; gateway tls counters: " +
             ", ".join("%s %s" % (k, v) for k, v in t.items() if v and k != "per_worker_hs"))
after = settled(lambda: per_worker("hs_full"), lambda v: sum(v) - sum(before) >= 12)
delta = [a - b for a, b in zip(after, before)]
if sum(delta) != 12 or min(delta) < 1:
    sys.exit("handshakes per worker %s, want 12 spread over both" % delta)
print("12 clients, 256 KiB each byte-exact; full handshakes per worker %s" % delta)

# --- a session from worker A resumed on worker B
def which(key, before):
    now = settled(lambda: per_worker(key), lambda v: v != before)
    moved = [i for i, (a, b) in enumerate(zip(now, before)) if a > b]
    if len(moved) != 1:
        sys.exit("%s moved on workers %s (%s -> %s)" % (key, moved, before, now))
    return moved[0], now

b = per_worker("hs_full")
s = conn(sport=41000)
echo(s, os.urandom(64 << 10))  # the tickets arrive after the handshake
sess = s.session
s.close()
if sess is None or not sess.has_ticket:
    sys.exit("no TLS 1.3 ticket received")
if sess.ticket_lifetime_hint != 1800:  # listeners[].tls.ticket_lifetime: 30m
    sys.exit("ticket lifetime hint %d, want 1800" % sess.ticket_lifetime_hint)
a_worker, _ = which("hs_full", b)
for sport in range(41001, 41065):
    b = per_worker("hs_resumed")
    s = conn(sport=sport, session=sess)
    if not s.session_reused:
        sys.exit("port %d: the ticket did not resume" % sport)
    echo(s, os.urandom(64 << 10))
    s.close()
    w, _ = which("hs_resumed", b)
    if w != a_worker:
        print("ticket from worker %d resumed on worker %d (source port %d), 64 KiB byte-exact"
              % (a_worker, w, sport))
        break
else:
    sys.exit("64 resumptions all landed on worker %d" % a_worker)

# --- dataplane.tls.idle_timeout: 2s reached the workers
idle0 = stats()["tls"]["idle_timeout"]
s = conn()
echo(s, b"x" * 100)
# dataplane.tcp.rcvbuf: 131072 reached the stack: its SYN-ACK's window
# scale is the smallest that covers it, 2 (the 256 KiB default gives 3)
ss = subprocess.run(["ss", "-tin", "src", ":%d" % s.getsockname()[1]],
                    capture_output=True, text=True).stdout
m = re.search(r"wscale:(\d+),", ss)
if not m or m.group(1) != "2":
    sys.exit("gateway window scale: %s" % ss)
s.settimeout(30)
try:
    r = s.recv(1)
except (ssl.SSLError, ConnectionError) as e:
    r = b""
if r:
    sys.exit("idle connection got data instead of a close")
idle1 = settled(lambda: stats()["tls"]["idle_timeout"], lambda v: v > idle0)
if idle1 != idle0 + 1:
    sys.exit("idle_timeout %d -> %d, want +1" % (idle0, idle1))
print("ticket lifetime hint 1800 s (tls.ticket_lifetime), gateway window scale 2 "
      "(dataplane.tcp.rcvbuf), idle TLS connection closed and counted "
      "(dataplane.tls.idle_timeout)")
PY
gw_ok "2 workers: concurrent clients on both, ticket resumption across workers, idle timeout"
tail -1 "$T/gw.out" | grep -o '"per_worker_hs":[^]]*]' >&2

# idle: interrupt wakes for every frame, and only for one: one client at a
# time (the worker waits between every flight), no frame found only at a
# tick (a lost wake-up, the tap's edge spent before its frame could be
# read, made most handshakes wait for one: 240 late in 370 handshakes),
# and no storm of waits that end at once.
read -r sleeps0 late0 < <(gw_stat idle_sleeps idle_late | paste -sd' ')
out=$(gw_in "$MTLSGW_BENCH" tls --connect "$GW_GW_IP:8443" --servername "$SNI" \
	--cert "$P/client.chain.pem" --key "$P/client.key" --ca "$P/root.pem" \
	--seconds 2 --concurrency 1 --json) || gw_fail "sequential handshakes: $out"
read -r sleeps1 late1 < <(gw_stat idle_sleeps idle_late | paste -sd' ')
n=$("$GW_PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["connections_ok"] if d["failed"] == 0 else -1)' "$out")
[ "$n" -ge 20 ] || gw_fail "sequential handshakes: $out"
[ "$sleeps1" -gt "$sleeps0" ] || gw_fail "the workers never waited (idle_sleeps $sleeps0 -> $sleeps1)"
# a handshake takes a few waits (one per flight) and, while it is parked
# on its signature, 10 us sleeps until the gw-hsm thread answers (about
# 57 per handshake in a sanitizer build on a busy 2-core VM), plus the
# ticks of 2 s; a worker woken for a frame it cannot read yet (its SIGIO
# handled on another thread) took about 170 per handshake
[ $((sleeps1 - sleeps0)) -le $((100 * n + 1000)) ] ||
	gw_fail "idle: interrupt: $((sleeps1 - sleeps0)) waits for $n handshakes: woken for nothing"
[ $((late1 - late0)) -le $((n / 20 + 1)) ] ||
	gw_fail "idle: interrupt: $((late1 - late0)) waits in $n handshakes ran to the tick with a frame waiting"
gw_ok "idle: interrupt: $n sequential handshakes, $((sleeps1 - sleeps0)) waits, $((late1 - late0)) ran late"

# a reload that changes a dataplane knob: accepted, and says it needs a restart
sed -i 's/idle_timeout: 2s/idle_timeout: 3s/' "$T/gw.yaml"
kill -HUP "$GW_GW_PID"
gw_wait 100 grep -q "dataplane.tls / dataplane.tcp changed" "$T/gw.err" ||
	gw_fail "reload with a changed knob: $(tail -3 "$T/gw.err")"
gw_ok "SIGHUP with dataplane.tls changed: reloaded, told the workers keep theirs until a restart"

gw_stop_gateway
gw_ok "clean stop"

# hsm.cpus: the HSM threads where it says; a CPU this process may not use
# stops the start, named
last=$("$GW_PY" -c 'import os; print(max(os.sched_getaffinity(0)))')
sed -i "/^hsm:/a\\
  threads: 2\\
  cpus: [$last]" "$T/gw.yaml"
gw_start_gateway "$T/gw.yaml"
got=$(hsm_threads_cpus "$GW_GW_PID")
[ "$got" = "2 $last" ] || gw_fail "hsm.cpus [$last]: gw-hsm threads '$got', want '2 $last'"
grep -q "2 HSM thread(s) on CPU(s) $last (hsm.cpus)" "$T/gw.err" ||
	gw_fail "no HSM threads line: $(grep -i hsm "$T/gw.err")"
gw_stop_gateway
sed -i "s/cpus: \[$last\]/cpus: [$last, 1023]/" "$T/gw.yaml"
rc=0
gw_in "$MTLSGW" --config "$T/gw.yaml" >"$T/bad.out" 2>"$T/bad.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "hsm.cpus\[1\]: CPU 1023 is not one this process may run on" "$T/bad.err" ||
	gw_fail "hsm.cpus [$last, 1023]: exit $rc: $(tail -3 "$T/bad.err")"
gw_ok "hsm.cpus [$last]: 2 gw-hsm threads there; CPU 1023 refused at start, named"
gw_done
